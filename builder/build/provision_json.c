
/*
 * Provisioning: what a loader reads on --resources-fd, what the API
 * shows, purges and unpublishing (provision_int.h).
 */

#include "provision.h"
#include "provision_int.h"


static int prov_secret(const char *key, const char *value, void *data);
static int64_t prov_size(shuttle_serve_t *s, const char *path,
    int64_t *files);
static int64_t prov_size_at(int fd, int64_t *files);
static int prov_describe(const char *kind, const char *name,
    const char *info, void *data);
static int prov_purge_one(const char *kind, const char *name,
    const char *info, void *data);


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

int
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

int
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
