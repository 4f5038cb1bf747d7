
/*
 * Provisioning resources declared in code (docs/resources.md).
 *
 *   sqlite    DATA/projects/NAME/resources/sqlite/DB.db, made here with
 *             its first page (WAL mode), so that a filesystem with no room
 *             for it fails the deploy; the loader's start gives the
 *             directory to the project's uid
 *   postgres  role shuttle_NAME with a random password and a connection
 *             limit, in the group role shuttle-tenants; database
 *             shuttle_NAME_DB owned by it, CONNECT revoked from PUBLIC,
 *             and a role of the same name (NOLOGIN) that shuttle_NAME is
 *             in: pg_hba.conf's "samerole" matches it; the password kept
 *             in the store (0600).  The first use of the server revokes
 *             CONNECT on postgres and template1 from PUBLIC
 *   secrets   nothing to make: the store's secrets table
 *   static    the project's folder moved to DATA/static/NAME/ID/
 *
 * Every step is idempotent: a redeploy, rollback or restart finds what
 * exists and reuses it.  The store row of a resource is written once it
 * exists.
 */


#include "provision.h"
#include "provision_int.h"


static int prov_sqlite(shuttle_serve_t *s, const char *project,
    const char *owner, const shuttle_res_t *r, char *err, size_t errlen);
static int prov_sqlite_create(const char *dir, const char *name, char *err,
    size_t errlen);
static int prov_postgres(shuttle_serve_t *s, const char *project,
    const char *owner, const shuttle_res_t *r, char *err, size_t errlen);
static int prov_static(shuttle_serve_t *s, const char *project, int64_t id,
    const char *owner, const shuttle_res_t *r, const char *src, char *err,
    size_t errlen);
static void prov_link(int dir, const char *name, char *err, size_t errlen);


int
shuttle_provision(shuttle_serve_t *s, const char *project, int64_t id,
    const char *so, const char *src, char *err, size_t errlen)
{
    int                rc;
    size_t             i, n;
    char               e[512];
    shuttle_res_t     *res;
    shuttle_project_t  p;

    if (shuttle_resources_read(so, &res, &n, err, errlen) != 0) {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    if (shuttle_store_project(s->store, project, &p, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "project %s: %s", project, e);
        free(res);
        return -1;
    }

    /* data kept from a deleted project of the same name is its owner's */
    if (shuttle_store_kept_owner(s->store, project, e, sizeof(e)) == 0
        && strcmp(e, p.owner) != 0)
    {
        snprintf(err, errlen, "project %s: the databases and secrets kept "
                 "under this name belong to another key", project);
        free(res);
        return -1;
    }

    rc = 0;

    for (i = 0; i < n && rc == 0; i++) {

        switch (res[i].kind) {

        case SHUTTLE_RES_KIND_SQLITE:
            rc = prov_sqlite(s, project, p.owner, &res[i], err, errlen);
            break;

        case SHUTTLE_RES_KIND_POSTGRES:
            rc = prov_postgres(s, project, p.owner, &res[i], err, errlen);
            break;

        case SHUTTLE_RES_KIND_SECRETS:
            rc = shuttle_store_resource_put(s->store, project, p.owner,
                                            "secrets", "", "{}", err,
                                            errlen);
            break;

        case SHUTTLE_RES_KIND_STATIC:
            rc = prov_static(s, project, id, p.owner, &res[i], src, err,
                             errlen);
            break;
        }

        if (rc == 0) {
            shuttle_serve_note(s, project, id, "provisioned %s \"%s\"",
                               shuttle_res_kind_name(res[i].kind),
                               res[i].name);
        }
    }

    free(res);

    return rc;
}


static int
prov_sqlite(shuttle_serve_t *s, const char *project, const char *owner,
    const shuttle_res_t *r, char *err, size_t errlen)
{
    char  dir[SHUTTLE_PATH_MAX];

    if ((size_t) snprintf(dir, sizeof(dir), "%s/projects/%s/resources/sqlite",
                          s->conf.data, project)
        >= sizeof(dir))
    {
        snprintf(err, errlen, "sqlite \"%s\": path too long", r->name);
        return -1;
    }

    if (prov_mkdirs(dir, err, errlen) != 0
        || prov_sqlite_create(dir, r->name, err, errlen) != 0)
    {
        return -1;
    }

    return shuttle_store_resource_put(s->store, project, owner, "sqlite",
                                      r->name, "{}", err, errlen);
}


/*
 * DIR/NAME.db with its first page written; one that exists is the
 * project's data, left alone.  What a failed creation made is removed.
 */

static int
prov_sqlite_create(const char *dir, const char *name, char *err,
    size_t errlen)
{
    int           rc, i;
    char          path[SHUTTLE_PATH_MAX], extra[SHUTTLE_PATH_MAX + 16];
    sqlite3      *db;
    struct stat   st;

    static const char  *suffix[] = { "-journal", "-wal", "-shm" };

    if ((size_t) snprintf(path, sizeof(path), "%s/%s.db", dir, name)
        >= sizeof(path))
    {
        snprintf(err, errlen, "sqlite \"%s\": path too long", name);
        return -1;
    }

    if (lstat(path, &st) == 0) {
        return 0;
    }

    if (errno != ENOENT) {
        snprintf(err, errlen, "sqlite \"%s\": %s: %s", name, path,
                 strerror(errno));
        return -1;
    }

    db = NULL;

    /* the folder is the project's uid's: a link made there since is
       refused, never followed */
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE
                         | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    }

    if (rc == SQLITE_OK) {
        (void) sqlite3_close(db);
        return 0;
    }

    /* SQLite says "database or disk is full" for ENOSPC */

    if ((rc & 0xff) == SQLITE_FULL) {
        snprintf(err, errlen, "sqlite \"%s\": creating %s: no space left on "
                 "device", name, path);

    } else {
        snprintf(err, errlen, "sqlite \"%s\": creating %s: %s", name, path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    }

    (void) sqlite3_close(db);

    (void) unlink(path);

    for (i = 0; i < 3; i++) {
        snprintf(extra, sizeof(extra), "%s%s", path, suffix[i]);
        (void) unlink(extra);
    }

    return -1;
}


static int
prov_postgres(shuttle_serve_t *s, const char *project, const char *owner,
    const shuttle_res_t *r, char *err, size_t errlen)
{
    int            rc, exists;
    char           role[PROV_PG_IDENT_MAX + 1], db[PROV_PG_IDENT_MAX + 1];
    char           info[PROV_INFO_MAX], password[33], what[160];
    char           value[PROV_PG_IDENT_MAX + 1];
    char          *qrole, *qdb, *qpass, *qtenants;
    json_t        *j;
    PGconn        *pg;
    unsigned char  rnd[16];
    size_t         i;

    snprintf(what, sizeof(what), "postgres \"%s\"", r->name);

    if (s->conf.postgres == NULL) {
        snprintf(err, errlen, "%s: no PostgreSQL server configured: start "
                 "shuttle-builder with --postgres \"host=... user=...\" "
                 "(an admin connection)", what);
        return -1;
    }

    prov_ident(role, "shuttle_", project, "");
    prov_ident(db, "shuttle_", project, r->name);

    /* the role's password: the one kept, or a new one */

    password[0] = '\0';

    if (shuttle_store_resource_get(s->store, project, "postgres", "",
                                   info, sizeof(info))
        == 0)
    {
        j = json_loads(info, 0, NULL);

        if (j != NULL && json_is_string(json_object_get(j, "password"))) {
            snprintf(password, sizeof(password), "%s",
                     json_string_value(json_object_get(j, "password")));
        }

        json_decref(j);
    }

    pg = prov_pg_admin(s, what, err, errlen);
    if (pg == NULL) {
        return -1;
    }

    rc = -1;
    qrole = PQescapeIdentifier(pg, role, strlen(role));
    qdb = PQescapeIdentifier(pg, db, strlen(db));
    qtenants = PQescapeIdentifier(pg, PROV_PG_TENANTS,
                                  sizeof(PROV_PG_TENANTS) - 1);
    qpass = NULL;

    if (qrole == NULL || qdb == NULL || qtenants == NULL) {
        snprintf(err, errlen, "%s: %s", what, PQerrorMessage(pg));
        goto done;
    }

    /* the group of every project's role, that pg_hba.conf names */
    if (prov_pg_group(pg, what, PROV_PG_TENANTS, qtenants, err, errlen)
        != 0)
    {
        goto done;
    }

    exists = prov_pg_value(pg, "SELECT rolcanlogin::text FROM pg_roles "
                           "WHERE rolname = $1", role, value, sizeof(value),
                           err, errlen);
    if (exists == -1) {
        goto done;
    }

    if (exists && strcmp(value, "true") != 0) {
        snprintf(err, errlen, "%s: role %s exists and may not log in: the "
                 "name is taken (another project's database has it)", what,
                 role);
        goto done;
    }

    if (password[0] == '\0' || !exists) {
        if (password[0] == '\0') {
            if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
                snprintf(err, errlen, "%s: getrandom: %s", what,
                         strerror(errno));
                goto done;
            }

            for (i = 0; i < sizeof(rnd); i++) {
                snprintf(password + 2 * i, 3, "%02x", rnd[i]);
            }
        }

        qpass = PQescapeLiteral(pg, password, strlen(password));
        if (qpass == NULL) {
            snprintf(err, errlen, "%s: %s", what, PQerrorMessage(pg));
            goto done;
        }

        if (prov_pg_exec(pg, what, err, errlen, "%s ROLE %s LOGIN PASSWORD %s "
                         "CONNECTION LIMIT %u", exists ? "ALTER" : "CREATE",
                         qrole, qpass, s->conf.postgres_connections)
            != 0)
        {
            goto done;
        }

        /* the role's row: name "", the password with it */
        if (prov_info(json_pack("{s:s, s:s}", "role", role, "password",
                                password), info, sizeof(info)) != 0
            || shuttle_store_resource_put(s->store, project, owner,
                                          "postgres", "", info, err, errlen)
               != 0)
        {
            goto done;
        }

    } else if (prov_pg_exec(pg, what, err, errlen,
                            "ALTER ROLE %s CONNECTION LIMIT %u", qrole,
                            s->conf.postgres_connections)
               != 0)
    {
        goto done;              /* a role of before, or another limit */
    }

    if (prov_pg_exec(pg, what, err, errlen, "GRANT %s TO %s", qtenants,
                     qrole)
        != 0)
    {
        goto done;
    }

    shuttle_fault("provisioning");

    exists = prov_pg_value(pg, "SELECT pg_get_userbyid(datdba) "
                           "FROM pg_database WHERE datname = $1", db, value,
                           sizeof(value), err, errlen);
    if (exists == -1) {
        goto done;
    }

    if (exists && strcmp(value, role) != 0) {
        snprintf(err, errlen, "%s: database %s exists and belongs to role "
                 "%s, not %s: the name is taken", what, db, value, role);
        goto done;
    }

    /*
     * The database's role first: its name may be another project's role.
     * PUBLIC's CONNECT revoked each time: a database of before, or one
     * whose provisioning stopped after its CREATE.
     */

    if (prov_pg_group(pg, what, db, qdb, err, errlen) != 0
        || (!exists
            && prov_pg_exec(pg, what, err, errlen,
                            "CREATE DATABASE %s OWNER %s", qdb, qrole) != 0)
        || prov_pg_exec(pg, what, err, errlen,
                        "REVOKE ALL ON DATABASE %s FROM PUBLIC", qdb) != 0
        || prov_pg_exec(pg, what, err, errlen, "GRANT %s TO %s", qdb, qrole)
           != 0)
    {
        goto done;
    }

    if (prov_info(json_pack("{s:s, s:s}", "database", db, "role", role),
                  info, sizeof(info)) != 0)
    {
        snprintf(err, errlen, "%s: out of memory", what);
        goto done;
    }

    rc = shuttle_store_resource_put(s->store, project, owner, "postgres",
                                    r->name, info, err, errlen);

done:

    PQfreemem(qrole);
    PQfreemem(qdb);
    PQfreemem(qpass);
    PQfreemem(qtenants);
    PQfinish(pg);

    return rc;
}


static int
prov_static(shuttle_serve_t *s, const char *project, int64_t id,
    const char *owner, const shuttle_res_t *r, const char *src, char *err,
    size_t errlen)
{
    int          rc, sfd, fd, dfd;
    char         to[32], dir[SHUTTLE_PATH_MAX];

    sfd = -1;
    fd = -1;
    dfd = -1;
    rc = -1;

    /*
     * The build ran as the tenant and may have left links anywhere in the
     * source: in the folder's path (x -> another project's directory) or
     * in the folder (public/db -> another project's database), which
     * nginx would follow as its workers' user.  The folder is resolved
     * beneath the source with no link followed, and it holds files and
     * folders only.
     */

    sfd = shuttle_fsafe_open(s->conf.data, src, O_PATH | O_DIRECTORY, 0);

    if (sfd == -1) {
        snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s: %s", r->name, src,
                 strerror(errno));
        goto done;
    }

    fd = shuttle_fsafe_openat(sfd, r->name, O_RDONLY | O_DIRECTORY, 0);

    if (fd == -1) {
        if (errno == ELOOP || errno == EXDEV) {
            prov_link(sfd, r->name, err, errlen);

        } else {
            snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): the project has "
                     "no folder %s", r->name, r->name);
        }

        goto done;
    }

    snprintf(dir, sizeof(dir), "%s", r->name);

    if (prov_plain(fd, r->name, dir, strlen(dir), sizeof(dir), err, errlen)
        != 0)
    {
        goto done;
    }

    snprintf(dir, sizeof(dir), "%s/static/%s", s->conf.data, project);
    snprintf(to, sizeof(to), "%lld", (long long) id);

    if (prov_mkdirs(dir, err, errlen) != 0) {
        goto done;
    }

    dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    /* the extraction made files 0644 and directories 0755: nginx's
       workers read them where they are moved to, on the same file system */
    if (dfd == -1 || shuttle_fsafe_rename(sfd, r->name, dfd, to) == -1) {
        snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): publishing to %s/%s: "
                 "%s", r->name, dir, to, strerror(errno));
        goto done;
    }

    rc = shuttle_store_resource_put(s->store, project, owner, "static",
                                    r->name, "{}", err, errlen);

done:

    if (sfd != -1) {
        (void) close(sfd);
    }

    if (fd != -1) {
        (void) close(fd);
    }

    if (dfd != -1) {
        (void) close(dfd);
    }

    return rc;
}


/* err names the first component of name, beneath dir, that is a link
   (or leaves dir) */

static void
prov_link(int dir, const char *name, char *err, size_t errlen)
{
    int     fd;
    char    part[SHUTTLE_PATH_MAX];
    size_t  i, n;

    n = strlen(name);

    for (i = 1; i <= n && i < sizeof(part); i++) {
        if (i < n && name[i] != '/') {
            continue;
        }

        memcpy(part, name, i);
        part[i] = '\0';

        fd = shuttle_fsafe_openat(dir, part, O_PATH, 0);

        if (fd == -1 && errno == ELOOP) {
            snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s is a "
                     "symbolic link: a static folder and its path are "
                     "folders, never links", name, part);
            return;
        }

        if (fd == -1) {
            snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s: %s", name,
                     part, errno == EXDEV ? "outside the project"
                                          : strerror(errno));
            return;
        }

        (void) close(fd);
    }

    snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s", name,
             strerror(ELOOP));
}
