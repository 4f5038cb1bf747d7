
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


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "extract.h"
#include "fault.h"
#include "fsafe.h"
#include "log.h"
#include "provision.h"
#include "resources.h"
#include "store.h"


#define PROV_PG_IDENT_MAX   63      /* PostgreSQL's NAMEDATALEN - 1 */
#define PROV_INFO_MAX       2048
#define PROV_PG_TENANTS     "shuttle-tenants"   /* the tenant roles' group:
                                                   no prov_ident() has '-' */


static int prov_sqlite(shuttle_serve_t *s, const char *project,
    const char *owner, const shuttle_res_t *r, char *err, size_t errlen);
static int prov_sqlite_create(const char *dir, const char *name, char *err,
    size_t errlen);
static int prov_postgres(shuttle_serve_t *s, const char *project,
    const char *owner, const shuttle_res_t *r, char *err, size_t errlen);
static int prov_static(shuttle_serve_t *s, const char *project, int64_t id,
    const char *owner, const shuttle_res_t *r, const char *src, char *err,
    size_t errlen);
static int prov_mkdirs(const char *path, char *err, size_t errlen);
static void prov_link(int dir, const char *name, char *err, size_t errlen);
static int prov_plain(int fd, const char *name, char *path, size_t len,
    size_t size, char *err, size_t errlen);
static void prov_ident(char *buf, const char *prefix, const char *name,
    const char *suffix);
static PGconn *prov_pg_admin(shuttle_serve_t *s, const char *what,
    char *err, size_t errlen);
static int prov_pg_exec(PGconn *pg, const char *what, char *err,
    size_t errlen, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int prov_pg_exists(PGconn *pg, const char *sql, const char *name,
    char *err, size_t errlen);
static int prov_pg_value(PGconn *pg, const char *sql, const char *name,
    char *buf, size_t size, char *err, size_t errlen);
static int prov_pg_group(PGconn *pg, const char *what, const char *name,
    const char *qname, char *err, size_t errlen);
static void prov_pg_guard(PGconn *pg);
static void prov_pg_notice(void *arg, const char *message);
static const char *prov_pg_opt(shuttle_serve_t *s, const char *key,
    char *buf, size_t size);
static char *prov_pg_dsn(shuttle_serve_t *s, const char *db,
    const char *user, const char *password);
static void prov_dsn_add(char *buf, size_t size, const char *key,
    const char *value);
static void prov_chomp(char *s);
static const char *prov_pg_where(shuttle_serve_t *s, char *buf,
    size_t size);
static int prov_info(json_t *j, char *info, size_t size);
static int prov_secret(const char *key, const char *value, void *data);
static int64_t prov_size(shuttle_serve_t *s, const char *path,
    int64_t *files);
static int64_t prov_size_at(int fd, int64_t *files);
static int prov_describe(const char *kind, const char *name,
    const char *info, void *data);
static int prov_purge_one(const char *kind, const char *name,
    const char *info, void *data);


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


/* the loader's JSON ---------------------------------------------------- */

int
shuttle_provision_json(shuttle_serve_t *s, const char *project, int64_t id,
    const char *so, char **json, char *err, size_t errlen)
{
    int             rc;
    size_t          i, n;
    char            path[SHUTTLE_PATH_MAX], info[PROV_INFO_MAX];
    char            role_info[PROV_INFO_MAX], uri[SHUTTLE_PATH_MAX];
    char           *dsn;
    json_t         *root, *obj, *j, *r;
    const char     *db, *role, *password;
    shuttle_res_t  *res;

    *json = NULL;

    if (shuttle_resources_read(so, &res, &n, err, errlen) != 0) {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    rc = -1;
    root = json_object();

    for (i = 0; i < n; i++) {

        switch (res[i].kind) {

        case SHUTTLE_RES_KIND_SQLITE:
            obj = json_object_get(root, "sqlite");
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, "sqlite", obj);
            }

            snprintf(path, sizeof(path),
                     "%s/projects/%s/resources/sqlite/%s.db", s->conf.data,
                     project, res[i].name);
            json_object_set_new(obj, res[i].name, json_string(path));
            break;

        case SHUTTLE_RES_KIND_POSTGRES:
            if (shuttle_store_resource_get(s->store, project, "postgres",
                                           res[i].name, info, sizeof(info))
                != 0
                || shuttle_store_resource_get(s->store, project, "postgres",
                                              "", role_info,
                                              sizeof(role_info))
                   != 0)
            {
                snprintf(err, errlen, "postgres \"%s\": not provisioned",
                         res[i].name);
                goto done;
            }

            j = json_loads(info, 0, NULL);
            r = json_loads(role_info, 0, NULL);

            db = j ? json_string_value(json_object_get(j, "database")) : NULL;
            role = r ? json_string_value(json_object_get(r, "role")) : NULL;
            password = r ? json_string_value(json_object_get(r, "password"))
                         : NULL;

            dsn = db && role && password && s->conf.postgres
                  ? prov_pg_dsn(s, db, role, password) : NULL;

            json_decref(j);
            json_decref(r);

            if (dsn == NULL) {
                snprintf(err, errlen, "postgres \"%s\": %s", res[i].name,
                         s->conf.postgres ? "no connection for it"
                                          : "no PostgreSQL server configured "
                                            "(--postgres)");
                goto done;
            }

            obj = json_object_get(root, "postgres");
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, "postgres", obj);
            }

            json_object_set_new(obj, res[i].name, json_string(dsn));
            free(dsn);
            break;

        case SHUTTLE_RES_KIND_SECRETS:
            obj = json_object();
            json_object_set_new(root, "secrets", obj);

            if (shuttle_store_each_secret(s->store, project, prov_secret,
                                          obj, err, errlen)
                != 0)
            {
                goto done;
            }

            break;

        case SHUTTLE_RES_KIND_STATIC:
            snprintf(uri, sizeof(uri), "/_shuttle_static/%s/%lld/", project,
                     (long long) id);
            json_object_set_new(root, "static",
                                json_pack("{s:s}", "uri", uri));
            break;
        }
    }

    *json = json_dumps(root, JSON_COMPACT);

    if (*json == NULL) {
        snprintf(err, errlen, "resources: out of memory");
        goto done;
    }

    rc = 0;

done:

    json_decref(root);
    free(res);

    return rc;
}


static int
prov_secret(const char *key, const char *value, void *data)
{
    return json_object_set_new(data, key, json_string(value));
}


/* the API's view ---------------------------------------------------------- */

typedef struct {
    shuttle_serve_t  *s;
    const char       *project;
    json_t           *list;
    PGconn           *pg;
    char             *err;
    size_t            errlen;
    int               pass;         /* purge: 0 databases, 1 roles */
} prov_walk_t;


json_t *
shuttle_provision_describe(shuttle_serve_t *s, const char *project)
{
    char         err[256];
    prov_walk_t  w;

    memset(&w, 0, sizeof(prov_walk_t));
    w.s = s;
    w.project = project;
    w.list = json_array();

    if (w.list == NULL
        || shuttle_store_each_resource(s->store, project, prov_describe, &w,
                                       err, sizeof(err))
           != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "resources of %s: %s", project, err);
    }

    return w.list;
}


/*
 * The size of a file, or of the files under a directory, beneath the data
 * directory: a link the project left there counts for nothing, and what
 * it names is never looked at.
 */

static int64_t
prov_size(shuttle_serve_t *s, const char *path, int64_t *files)
{
    int      fd;
    int64_t  total;

    fd = shuttle_fsafe_open(s->conf.data, path, O_PATH, 0);

    if (fd == -1) {
        return 0;
    }

    total = prov_size_at(fd, files);
    (void) close(fd);

    return total;
}


/* fd: an O_PATH descriptor, of a link itself when it is one */

static int64_t
prov_size_at(int fd, int64_t *files)
{
    int             dfd, sub;
    DIR            *d;
    int64_t         total;
    struct stat     st;
    struct dirent  *e;

    if (fstat(fd, &st) == -1) {
        return 0;
    }

    if (S_ISREG(st.st_mode)) {
        (*files)++;
        return st.st_size;
    }

    if (!S_ISDIR(st.st_mode)) {
        return 0;
    }

    dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = dfd == -1 ? NULL : fdopendir(dfd);

    if (d == NULL) {
        if (dfd != -1) {
            (void) close(dfd);
        }

        return 0;
    }

    total = 0;

    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }

        sub = openat(dfd, e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

        if (sub != -1) {
            total += prov_size_at(sub, files);
            (void) close(sub);
        }
    }

    closedir(d);

    return total;
}


static int
prov_describe(const char *kind, const char *name, const char *info,
    void *data)
{
    char           path[SHUTTLE_PATH_MAX];
    json_t        *o, *j;
    int64_t        files, size;
    prov_walk_t   *w;
    shuttle_project_t  p;

    w = data;
    files = 0;

    if (strcmp(kind, "sqlite") == 0) {
        /* the database and its write-ahead log */
        snprintf(path, sizeof(path), "%s/projects/%s/resources/sqlite/%s.db",
                 w->s->conf.data, w->project, name);
        size = prov_size(w->s, path, &files);

        if (strlen(path) + 4 < sizeof(path)) {
            strcat(path, "-wal");
            size += prov_size(w->s, path, &files);
        }

        o = json_pack("{s:s, s:s, s:I}", "type", "sqlite", "name", name,
                      "size", (json_int_t) size);

    } else if (strcmp(kind, "postgres") == 0) {
        if (name[0] == '\0') {
            return 0;                   /* the role's row */
        }

        j = json_loads(info, 0, NULL);
        o = json_pack("{s:s, s:s, s:s?, s:s?}", "type", "postgres", "name",
                      name, "database",
                      j ? json_string_value(json_object_get(j, "database"))
                        : NULL,
                      "server", prov_pg_where(w->s, path, sizeof(path)));
        json_decref(j);

    } else if (strcmp(kind, "secrets") == 0) {
        o = json_pack("{s:s, s:I}", "type", "secrets", "count",
                      (json_int_t) 0);

        j = json_object();
        if (o != NULL && j != NULL
            && shuttle_store_each_secret(w->s->store, w->project, prov_secret,
                                         j, path, sizeof(path))
               == 0)
        {
            json_object_set_new(o, "count",
                                json_integer((json_int_t) json_object_size(j)));
        }
        json_decref(j);

    } else if (strcmp(kind, "static") == 0) {
        /* the serving deployment's copy */
        size = 0;

        if (shuttle_store_project(w->s->store, w->project, &p, path,
                                  sizeof(path)) == 0
            && p.current != 0)
        {
            snprintf(path, sizeof(path), "%s/static/%s/%lld",
                     w->s->conf.data, w->project, (long long) p.current);
            size = prov_size(w->s, path, &files);
        }

        o = json_pack("{s:s, s:s, s:I, s:I}", "type", "static", "folder",
                      name, "files", (json_int_t) files, "size",
                      (json_int_t) size);

    } else {
        return 0;
    }

    if (o != NULL) {
        json_array_append_new(w->list, o);
    }

    return 0;
}


/* purging ------------------------------------------------------------------ */

int
shuttle_provision_purge(shuttle_serve_t *s, const char *project,
    const char *owner, char *err, size_t errlen)
{
    char         path[SHUTTLE_PATH_MAX];
    char         kept[SHUTTLE_KEY_MAX + 1];
    prov_walk_t  w;

    if (shuttle_store_kept_owner(s->store, project, kept, sizeof(kept)) == 0
        && strcmp(kept, owner) != 0)
    {
        snprintf(err, errlen, "purge %s: the data kept under this name "
                 "belongs to another key", project);
        return -1;
    }

    memset(&w, 0, sizeof(prov_walk_t));
    w.s = s;
    w.project = project;
    w.err = err;
    w.errlen = errlen;
    err[0] = '\0';

    /* the databases, then the role that owns them */
    for (w.pass = 0; w.pass < 2; w.pass++) {
        if (shuttle_store_each_resource(s->store, project, prov_purge_one,
                                        &w, err, errlen)
            != 0)
        {
            PQfinish(w.pg);
            return -1;
        }

        if (w.pass == 0) {
            shuttle_fault("purge");
        }
    }

    PQfinish(w.pg);

    snprintf(path, sizeof(path), "%s/projects/%s/resources", s->conf.data,
             project);
    (void) shuttle_rmtree(s->conf.data, path);

    shuttle_provision_unpublish(s, project);

    return shuttle_store_purge(s->store, project, owner, err, errlen);
}


/* drops one PostgreSQL database (pass 0) or the project's role (pass 1) */

static int
prov_purge_one(const char *kind, const char *name, const char *info,
    void *data)
{
    int           rc;
    char         *q;
    json_t       *j;
    const char   *ident;
    prov_walk_t  *w;

    w = data;

    if (strcmp(kind, "postgres") != 0 || w->s->conf.postgres == NULL
        || (name[0] == '\0') != (w->pass == 1))
    {
        return 0;
    }

    if (w->pg == NULL) {
        w->pg = prov_pg_admin(w->s, "purge", w->err, w->errlen);
        if (w->pg == NULL) {
            return -1;
        }
    }

    j = json_loads(info, 0, NULL);
    ident = j ? json_string_value(json_object_get(j, name[0] ? "database"
                                                              : "role"))
              : NULL;

    if (ident == NULL) {
        json_decref(j);
        return 0;
    }

    q = PQescapeIdentifier(w->pg, ident, strlen(ident));
    rc = -1;

    if (q != NULL) {
        rc = name[0]
             ? prov_pg_exec(w->pg, "purge", w->err, w->errlen,
                            "DROP DATABASE IF EXISTS %s WITH (FORCE)", q)
             : prov_pg_exec(w->pg, "purge", w->err, w->errlen,
                            "DROP ROLE IF EXISTS %s", q);

        /* the database's role (pg_hba.conf's samerole), never a login */
        if (rc == 0 && name[0]) {
            rc = prov_pg_exists(w->pg, "SELECT 1 FROM pg_roles WHERE "
                                "rolname = $1 AND NOT rolcanlogin", ident,
                                w->err, w->errlen);
            rc = rc == 1 ? prov_pg_exec(w->pg, "purge", w->err, w->errlen,
                                        "DROP ROLE %s", q)
                         : rc;
        }

        PQfreemem(q);
    }

    json_decref(j);

    return rc;
}


void
shuttle_provision_unpublish(shuttle_serve_t *s, const char *project)
{
    char  path[SHUTTLE_PATH_MAX];

    if ((size_t) snprintf(path, sizeof(path), "%s/static/%s", s->conf.data,
                          project)
        < sizeof(path))
    {
        (void) shuttle_rmtree(s->conf.data, path);
    }
}


/* helpers ------------------------------------------------------------------ */

static int
prov_info(json_t *j, char *info, size_t size)
{
    size_t  n;

    if (j == NULL) {
        return -1;
    }

    n = json_dumpb(j, info, size - 1, JSON_COMPACT);
    json_decref(j);

    if (n == 0 || n >= size) {
        return -1;
    }

    info[n] = '\0';

    return 0;
}


/*
 * Everything in fd, the folder path (len its length in the buffer of size
 * bytes: the static folder name, or a folder in it), is a regular file or
 * a folder, links not followed.  0, or -1 with err naming the first that
 * is not.
 */

static int
prov_plain(int fd, const char *name, char *path, size_t len, size_t size,
    char *err, size_t errlen)
{
    int             rc, sub;
    DIR            *d;
    size_t          n;
    struct stat     st;
    struct dirent  *e;

    sub = dup(fd);
    d = sub == -1 ? NULL : fdopendir(sub);

    if (d == NULL) {
        snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s: %s", name, path,
                 strerror(errno));

        if (sub != -1) {
            (void) close(sub);
        }

        return -1;
    }

    rc = 0;

    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }

        n = strlen(e->d_name);

        if (len + 1 + n >= size) {
            snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): a path is too "
                     "long", name);
            rc = -1;
            break;
        }

        path[len] = '/';
        memcpy(path + len + 1, e->d_name, n + 1);

        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
            snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s: %s", name,
                     path, strerror(errno));
            rc = -1;

        } else if (S_ISDIR(st.st_mode)) {
            sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                                        | O_CLOEXEC);

            if (sub == -1) {
                snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s: %s",
                         name, path, strerror(errno));
                rc = -1;

            } else {
                rc = prov_plain(sub, name, path, len + 1 + n, size, err,
                                errlen);
                (void) close(sub);
            }

        } else if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "SHUTTLE_STATIC(\"%s\"): %s is %s: "
                     "only files and folders are published", name, path,
                     S_ISLNK(st.st_mode) ? "a symbolic link"
                                         : "not a regular file");
            rc = -1;
        }

        path[len] = '\0';
    }

    closedir(d);

    return rc;
}


/* mkdir -p, 0755: nginx's workers go through DATA/static */

static int
prov_mkdirs(const char *path, char *err, size_t errlen)
{
    char  buf[SHUTTLE_PATH_MAX], *p, c;

    snprintf(buf, sizeof(buf), "%s", path);

    for (p = buf + 1; ; p++) {
        c = *p;

        if (c != '/' && c != '\0') {
            continue;
        }

        *p = '\0';

        if (mkdir(buf, 0755) == -1 && errno != EEXIST) {
            snprintf(err, errlen, "mkdir %s: %s", buf, strerror(errno));
            return -1;
        }

        if (c == '\0') {
            return 0;
        }

        *p = '/';
    }
}


/*
 * prefix + name [+ "_" + suffix], '-' made '_', within PostgreSQL's 63
 * bytes: a longer one is cut and ends with a hash of the whole.
 */

static void
prov_ident(char *buf, const char *prefix, const char *name,
    const char *suffix)
{
    char      full[256], *p;
    size_t    len;
    uint32_t  h;

    snprintf(full, sizeof(full), "%s%s%s%s", prefix, name,
             suffix[0] ? "_" : "", suffix);

    for (p = full; *p != '\0'; p++) {
        if (*p == '-') {
            *p = '_';
        }
    }

    len = strlen(full);

    if (len <= PROV_PG_IDENT_MAX) {
        memcpy(buf, full, len + 1);
        return;
    }

    /* FNV-1a of the whole name */
    h = 2166136261u;

    for (p = full; *p != '\0'; p++) {
        h = (h ^ (unsigned char) *p) * 16777619u;
    }

    snprintf(buf, PROV_PG_IDENT_MAX + 1, "%.*s_%08x",
             PROV_PG_IDENT_MAX - 9, full, (unsigned) h);
}


static PGconn *
prov_pg_admin(shuttle_serve_t *s, const char *what, char *err,
    size_t errlen)
{
    PGconn  *pg;

    pg = PQconnectdb(s->conf.postgres);

    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "%s: cannot connect to PostgreSQL "
                 "(--postgres): %s", what,
                 pg ? PQerrorMessage(pg) : "out of memory");
        prov_chomp(err);
        PQfinish(pg);
        return NULL;
    }

    /* "role is already a member": not for the builder's stderr */
    PQsetNoticeProcessor(pg, prov_pg_notice, NULL);

    prov_pg_guard(pg);

    return pg;
}


static void
prov_pg_notice(void *arg, const char *message)
{
}


/*
 * Once a process, on the server's first use: PUBLIC (so every tenant
 * role) may no longer connect to postgres and template1.  Superusers and
 * the databases' owners still may.  Logged when it revoked something.
 */

static void
prov_pg_guard(PGconn *pg)
{
    int                     i, n;
    char                    names[64], err[256], *q;
    PGresult               *r;
    static int              done;
    static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;

    static const char  *sql = "SELECT datname FROM pg_database "
                              "WHERE datname IN ('postgres', 'template1') "
                              "AND has_database_privilege('public', oid, "
                              "'CONNECT') ORDER BY 1";

    pthread_mutex_lock(&lock);

    if (done) {
        pthread_mutex_unlock(&lock);
        return;
    }

    r = PQexec(pg, sql);

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
        prov_chomp(err);
        shuttle_log(SHUTTLE_LOG_WARN, "postgres: who may connect to postgres "
                    "and template1: %s", err);
        PQclear(r);
        pthread_mutex_unlock(&lock);
        return;
    }

    n = PQntuples(r);
    names[0] = '\0';

    for (i = 0; i < n; i++) {
        snprintf(names + strlen(names), sizeof(names) - strlen(names),
                 "%s%s", i ? ", " : "", PQgetvalue(r, i, 0));

        q = PQescapeIdentifier(pg, PQgetvalue(r, i, 0),
                               strlen(PQgetvalue(r, i, 0)));

        if (q == NULL
            || prov_pg_exec(pg, "postgres", err, sizeof(err),
                            "REVOKE CONNECT ON DATABASE %s FROM PUBLIC", q)
               != 0)
        {
            shuttle_log(SHUTTLE_LOG_WARN, "postgres: database %s: %s",
                        PQgetvalue(r, i, 0),
                        q ? err : PQerrorMessage(pg));
        }

        PQfreemem(q);
    }

    PQclear(r);

    if (n > 0) {
        r = PQexec(pg, sql);

        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
            shuttle_log(SHUTTLE_LOG_INFO, "postgres: revoked CONNECT on "
                        "databases %s from PUBLIC: projects' roles cannot "
                        "connect to them (superusers and the owners still "
                        "can)", names);
        } else {
            shuttle_log(SHUTTLE_LOG_WARN, "postgres: PUBLIC may still "
                        "connect to %s (the admin role is neither a "
                        "superuser nor their owner): as a superuser, REVOKE "
                        "CONNECT ON DATABASE postgres, template1 FROM PUBLIC",
                        names);
        }

        PQclear(r);
    }

    done = 1;

    pthread_mutex_unlock(&lock);
}


/* a NOLOGIN role name (qname quoted), made when missing; one that may
 * log in is another's: an error */

static int
prov_pg_group(PGconn *pg, const char *what, const char *name,
    const char *qname, char *err, size_t errlen)
{
    int   rc;
    char  login[8];

    rc = prov_pg_value(pg, "SELECT (rolcanlogin OR rolsuper)::text "
                       "FROM pg_roles WHERE rolname = $1", name, login,
                       sizeof(login), err, errlen);
    if (rc == -1) {
        return -1;
    }

    if (rc == 0) {
        return prov_pg_exec(pg, what, err, errlen, "CREATE ROLE %s NOLOGIN",
                            qname);
    }

    if (strcmp(login, "false") != 0) {
        snprintf(err, errlen, "%s: role %s exists and may log in: the name "
                 "is taken (another project's role, or the server's)", what,
                 name);
        return -1;
    }

    return 0;
}


static int
prov_pg_exec(PGconn *pg, const char *what, char *err, size_t errlen,
    const char *fmt, ...)
{
    char       sql[1024];
    va_list    args;
    PGresult  *r;

    va_start(args, fmt);
    vsnprintf(sql, sizeof(sql), fmt, args);
    va_end(args);

    r = PQexec(pg, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        /* the statement is not quoted: it may hold a password */
        snprintf(err, errlen, "%s: PostgreSQL: %s", what,
                 PQresultErrorMessage(r));
        prov_chomp(err);
        PQclear(r);
        return -1;
    }

    PQclear(r);

    return 0;
}


/* 1 when the query with $1 = name has a row, 0 when not, -1 */

static int
prov_pg_exists(PGconn *pg, const char *sql, const char *name, char *err,
    size_t errlen)
{
    int        rc;
    PGresult  *r;

    r = PQexecParams(pg, sql, 1, NULL, &name, NULL, NULL, 0);

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "PostgreSQL: %s", PQresultErrorMessage(r));
        prov_chomp(err);
        PQclear(r);
        return -1;
    }

    rc = PQntuples(r) > 0;
    PQclear(r);

    return rc;
}


/* as prov_pg_exists(), the first column of the row in buf */

static int
prov_pg_value(PGconn *pg, const char *sql, const char *name, char *buf,
    size_t size, char *err, size_t errlen)
{
    int        rc;
    PGresult  *r;

    r = PQexecParams(pg, sql, 1, NULL, &name, NULL, NULL, 0);

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "PostgreSQL: %s", PQresultErrorMessage(r));
        prov_chomp(err);
        PQclear(r);
        return -1;
    }

    rc = PQntuples(r) > 0;
    snprintf(buf, size, "%s", rc ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);

    return rc;
}


/*
 * the project's DSN: the server's socket directory that its sandbox sees
 * (shuttle_provision_pg_socket()) and the admin DSN's port, or, with no
 * socket directory, the admin DSN's host and port; its own role
 */

static char *
prov_pg_dsn(shuttle_serve_t *s, const char *db, const char *user,
    const char *password)
{
    char               buf[2048], dir[SHUTTLE_PATH_MAX];
    const char        *sock;
    PQconninfoOption  *opts, *o;

    opts = PQconninfoParse(s->conf.postgres, NULL);
    if (opts == NULL) {
        return NULL;
    }

    buf[0] = '\0';
    sock = shuttle_provision_pg_socket(s, dir, sizeof(dir));

    if (sock != NULL) {
        prov_dsn_add(buf, sizeof(buf), "host", sock);
    }

    for (o = opts; o->keyword != NULL; o++) {
        if (o->val != NULL && o->val[0] != '\0'
            && (strcmp(o->keyword, "port") == 0
                || strcmp(o->keyword, "connect_timeout") == 0
                || (sock == NULL
                    && (strcmp(o->keyword, "host") == 0
                        || strcmp(o->keyword, "hostaddr") == 0
                        || strcmp(o->keyword, "sslmode") == 0))))
        {
            prov_dsn_add(buf, sizeof(buf), o->keyword, o->val);
        }
    }

    PQconninfoFree(opts);

    prov_dsn_add(buf, sizeof(buf), "dbname", db);
    prov_dsn_add(buf, sizeof(buf), "user", user);
    prov_dsn_add(buf, sizeof(buf), "password", password);

    return strdup(buf);
}


const char *
shuttle_provision_pg_socket(shuttle_serve_t *s, char *buf, size_t size)
{
    if (s->conf.postgres == NULL) {
        return NULL;
    }

    if (s->conf.postgres_socket != NULL) {
        if (strlen(s->conf.postgres_socket) >= size) {
            return NULL;
        }

        snprintf(buf, size, "%s", s->conf.postgres_socket);
        return buf;
    }

    if (prov_pg_opt(s, "host", buf, size) == NULL || buf[0] != '/') {
        return NULL;
    }

    return buf;
}


void
shuttle_provision_announce(shuttle_serve_t *s)
{
    char         dir[SHUTTLE_PATH_MAX], host[256], port[16];
    char         path[SHUTTLE_PATH_MAX + 32];
    struct stat  st;

    if (s->conf.postgres == NULL) {
        return;
    }

    if (prov_pg_opt(s, "port", port, sizeof(port)) == NULL) {
        snprintf(port, sizeof(port), "5432");
    }

    if (shuttle_provision_pg_socket(s, dir, sizeof(dir)) == NULL) {
        shuttle_log(SHUTTLE_LOG_WARN, "postgres: services are given the "
                    "admin DSN's host %s and port %s, no unix socket (the "
                    "DSN's host is no directory and --postgres-socket is not "
                    "given): a service in a network namespace of its own "
                    "cannot reach them; give --postgres-socket DIR",
                    prov_pg_opt(s, "host", host, sizeof(host))
                    ? host : "(libpq's default)", port);
        return;
    }

    snprintf(path, sizeof(path), "%s/.s.PGSQL.%s", dir, port);

    if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        shuttle_log(SHUTTLE_LOG_WARN, "postgres: services connect through "
                    "the unix socket in %s (port %s), but there is no socket "
                    "%s: they cannot reach PostgreSQL until the server "
                    "listens there (unix_socket_directories)", dir, port,
                    path);
        return;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "postgres: services connect through the "
                "unix socket in %s (port %s), which each sandbox sees; a "
                "project's role: CONNECTION LIMIT %u, in role "
                PROV_PG_TENANTS " (pg_hba.conf)", dir, port,
                s->conf.postgres_connections);
}


/* the admin DSN's value of key in buf, or NULL when it has none */

static const char *
prov_pg_opt(shuttle_serve_t *s, const char *key, char *buf, size_t size)
{
    const char        *v;
    PQconninfoOption  *opts, *o;

    opts = PQconninfoParse(s->conf.postgres, NULL);
    if (opts == NULL) {
        return NULL;
    }

    v = NULL;

    for (o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, key) == 0 && o->val != NULL
            && o->val[0] != '\0' && strlen(o->val) < size)
        {
            snprintf(buf, size, "%s", o->val);
            v = buf;
        }
    }

    PQconninfoFree(opts);

    return v;
}


/* "host:port" of the admin DSN, for the API (no user, no password) */

static const char *
prov_pg_where(shuttle_serve_t *s, char *buf, size_t size)
{
    const char        *host, *port;
    PQconninfoOption  *opts, *o;

    if (s->conf.postgres == NULL
        || (opts = PQconninfoParse(s->conf.postgres, NULL)) == NULL)
    {
        return NULL;
    }

    host = "localhost";
    port = "5432";

    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0') {
            continue;
        }

        if (strcmp(o->keyword, "host") == 0
            || strcmp(o->keyword, "hostaddr") == 0)
        {
            host = o->val;

        } else if (strcmp(o->keyword, "port") == 0) {
            port = o->val;
        }
    }

    snprintf(buf, size, "%s:%s", host, port);
    PQconninfoFree(opts);

    return buf;
}


/* key='value' with ' and \ escaped */

static void
prov_dsn_add(char *buf, size_t size, const char *key, const char *value)
{
    size_t  len;

    len = strlen(buf);

    len += snprintf(buf + len, size - len, "%s%s='", len ? " " : "", key);

    for ( /* void */ ; *value != '\0' && len + 3 < size; value++) {
        if (*value == '\'' || *value == '\\') {
            buf[len++] = '\\';
        }

        buf[len++] = *value;
    }

    if (len + 2 < size) {
        buf[len++] = '\'';
    }

    buf[len] = '\0';
}


static void
prov_chomp(char *s)
{
    size_t  len;

    len = strlen(s);

    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ')) {
        s[--len] = '\0';
    }
}
