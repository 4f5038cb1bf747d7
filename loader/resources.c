
/*
 * The resources the platform provisioned for the service, as given on
 * --resources-fd (docs/resources.md): SQLite databases, PostgreSQL
 * databases, secrets, the static folder.  shuttle_sqlite(),
 * shuttle_postgres() and shuttle_secret() are defined here.
 *
 * Connections are per thread: each thread has an array of handles, one
 * per database, opened on first use and closed when the thread ends (a
 * pthread key's destructor) or, for the main thread, at exit.
 */


#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "loader.h"


#define LOADER_RES_MAX_INPUT   (1024 * 1024)
#define LOADER_RES_MAX_DBS     64
#define LOADER_SQLITE_BUSY_MS  5000


typedef struct {
    char                  *name;
    char                  *where;        /* a path, or a conninfo */
} loader_db_t;


/*
 * libpq, opened only for a service that declares a PostgreSQL database
 * (or calls libpq itself): linked in, it and what it needs (OpenSSL,
 * Kerberos, LDAP) cost every loader's start about 11 ms.
 */
static struct {
    PGconn          *(*connectdb)(const char *conninfo);
    ConnStatusType   (*status)(const PGconn *conn);
    char            *(*error_message)(const PGconn *conn);
    void             (*finish)(PGconn *conn);
    void             (*reset)(PGconn *conn);
} loader_pq;

typedef struct {
    sqlite3              **sqlite;
    PGconn               **pg;
} loader_handles_t;

typedef struct {
    loader_db_t            sqlite[LOADER_RES_MAX_DBS];
    size_t                 nsqlite;
    loader_db_t            pg[LOADER_RES_MAX_DBS];
    size_t                 npg;
    json_t                *secrets;      /* NULL: not declared */
    char                  *static_uri;   /* "/_shuttle_static/NAME/ID/" */
    char                  *static_dir;   /* "/abs/project/public" */
    pthread_key_t          key;
    int                    key_made;
} loader_resources_t;


static int loader_res_dbs(json_t *obj, const char *what, loader_db_t *dbs,
    size_t *n, char *err, size_t errlen);
static loader_handles_t *loader_res_handles(void);
static void loader_res_close(void *data);
static sqlite3 *loader_res_sqlite_open(loader_db_t *db, char *err,
    size_t errlen);
static PGconn *loader_res_pg_open(loader_db_t *db, char *err,
    size_t errlen);
static int loader_res_path_ok(const char *path);
static const char *loader_res_type(const char *path);


static loader_resources_t  loader_res;


/*
 * Reads the JSON object on fd to its end, and opens every database in
 * this (the main) thread, so that a database that cannot be opened fails
 * the start.  0, or -1 with err.
 */

int
loader_resources_load(int fd, char *err, size_t errlen)
{
    char          *buf;
    size_t         len, size;
    ssize_t        n;
    json_t        *root, *v;
    json_error_t   jerr;
    const char    *key;
    size_t         i;
    loader_handles_t  *hs;

    size = 4096;
    len = 0;
    buf = malloc(size);

    if (buf == NULL) {
        snprintf(err, errlen, "--resources-fd: out of memory");
        return -1;
    }

    for ( ;; ) {
        if (len == size) {
            if (size >= LOADER_RES_MAX_INPUT) {
                free(buf);
                snprintf(err, errlen, "--resources-fd: more than %d bytes",
                         LOADER_RES_MAX_INPUT);
                return -1;
            }

            size *= 2;
            buf = realloc(buf, size);

            if (buf == NULL) {
                snprintf(err, errlen, "--resources-fd: out of memory");
                return -1;
            }
        }

        n = read(fd, buf + len, size - len);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1) {
            free(buf);
            snprintf(err, errlen, "--resources-fd %d: %s", fd,
                     strerror(errno));
            return -1;
        }

        if (n == 0) {
            break;
        }

        len += n;
    }

    close(fd);

    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);

    if (root == NULL || !json_is_object(root)) {
        snprintf(err, errlen, "--resources-fd: not a JSON object%s%s",
                 root ? "" : ": ", root ? "" : jerr.text);
        json_decref(root);
        return -1;
    }

    json_object_foreach(root, key, v) {

        if (strcmp(key, "sqlite") == 0) {
            if (loader_res_dbs(v, "sqlite", loader_res.sqlite,
                               &loader_res.nsqlite, err, errlen) != 0)
            {
                goto failed;
            }

        } else if (strcmp(key, "postgres") == 0) {
            if (loader_res_dbs(v, "postgres", loader_res.pg,
                               &loader_res.npg, err, errlen) != 0
                || (loader_res.npg > 0 && loader_pq_open(err, errlen) != 0))
            {
                goto failed;
            }

        } else if (strcmp(key, "secrets") == 0) {
            if (!json_is_object(v)) {
                snprintf(err, errlen, "--resources-fd: \"secrets\" is not "
                         "an object");
                goto failed;
            }

            loader_res.secrets = json_incref(v);

        } else if (strcmp(key, "static") == 0) {
            if (!json_is_object(v) || json_object_size(v) != 1
                || !(json_is_string(json_object_get(v, "uri"))
                     || json_is_string(json_object_get(v, "dir"))))
            {
                snprintf(err, errlen, "--resources-fd: \"static\" is "
                         "{\"uri\": ...} or {\"dir\": ...}");
                goto failed;
            }

            if (json_object_get(v, "uri") != NULL) {
                loader_res.static_uri = strdup(json_string_value(
                                            json_object_get(v, "uri")));
            } else {
                loader_res.static_dir = realpath(json_string_value(
                                            json_object_get(v, "dir")), NULL);

                if (loader_res.static_dir == NULL) {
                    snprintf(err, errlen, "static folder %s: %s",
                             json_string_value(json_object_get(v, "dir")),
                             strerror(errno));
                    goto failed;
                }
            }

        } else {
            snprintf(err, errlen, "--resources-fd: unknown key \"%s\"", key);
            goto failed;
        }
    }

    json_decref(root);

    if (pthread_key_create(&loader_res.key, loader_res_close) != 0) {
        snprintf(err, errlen, "pthread_key_create() failed");
        return -1;
    }

    loader_res.key_made = 1;

    /* the main thread's handles: open now, so that a failure is a failed
       start, and main can create its tables */
    hs = loader_res_handles();

    if (hs == NULL) {
        snprintf(err, errlen, "resources: out of memory");
        return -1;
    }

    for (i = 0; i < loader_res.nsqlite; i++) {
        hs->sqlite[i] = loader_res_sqlite_open(&loader_res.sqlite[i], err,
                                               errlen);
        if (hs->sqlite[i] == NULL) {
            return -1;
        }
    }

    for (i = 0; i < loader_res.npg; i++) {
        hs->pg[i] = loader_res_pg_open(&loader_res.pg[i], err, errlen);
        if (hs->pg[i] == NULL) {
            return -1;
        }
    }

    if (loader_res.nsqlite + loader_res.npg > 0 || loader_res.secrets
        || loader_res.static_uri || loader_res.static_dir)
    {
        loader_log("resources: %zu SQLite, %zu PostgreSQL database(s)%s%s",
                   loader_res.nsqlite, loader_res.npg,
                   loader_res.secrets ? ", secrets" : "",
                   loader_res.static_uri || loader_res.static_dir
                   ? ", static files" : "");
    }

    return 0;

failed:

    json_decref(root);
    return -1;
}


static int
loader_res_dbs(json_t *obj, const char *what, loader_db_t *dbs, size_t *n,
    char *err, size_t errlen)
{
    json_t      *v;
    const char  *name;

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "--resources-fd: \"%s\" is not an object",
                 what);
        return -1;
    }

    json_object_foreach(obj, name, v) {
        if (*n == LOADER_RES_MAX_DBS) {
            snprintf(err, errlen, "--resources-fd: more than %d %s "
                     "databases", LOADER_RES_MAX_DBS, what);
            return -1;
        }

        if (!json_is_string(v) || json_string_length(v) == 0) {
            snprintf(err, errlen, "--resources-fd: %s \"%s\" is not a "
                     "non-empty string", what, name);
            return -1;
        }

        dbs[*n].name = strdup(name);
        dbs[*n].where = strdup(json_string_value(v));

        if (dbs[*n].name == NULL || dbs[*n].where == NULL) {
            snprintf(err, errlen, "--resources-fd: out of memory");
            return -1;
        }

        (*n)++;
    }

    return 0;
}


static loader_handles_t *
loader_res_handles(void)
{
    loader_handles_t  *hs;

    hs = pthread_getspecific(loader_res.key);

    if (hs != NULL) {
        return hs;
    }

    hs = calloc(1, sizeof(loader_handles_t));
    if (hs == NULL) {
        return NULL;
    }

    hs->sqlite = calloc(loader_res.nsqlite + 1, sizeof(sqlite3 *));
    hs->pg = calloc(loader_res.npg + 1, sizeof(PGconn *));

    if (hs->sqlite == NULL || hs->pg == NULL
        || pthread_setspecific(loader_res.key, hs) != 0)
    {
        free(hs->sqlite);
        free(hs->pg);
        free(hs);
        return NULL;
    }

    return hs;
}


static void
loader_res_close(void *data)
{
    size_t             i;
    loader_handles_t  *hs;

    hs = data;

    for (i = 0; i < loader_res.nsqlite; i++) {
        if (hs->sqlite[i] != NULL) {
            sqlite3_close_v2(hs->sqlite[i]);
        }
    }

    for (i = 0; i < loader_res.npg; i++) {
        if (hs->pg[i] != NULL) {
            loader_pq.finish(hs->pg[i]);
        }
    }

    free(hs->sqlite);
    free(hs->pg);
    free(hs);
}


static unsigned long long  loader_res_disk;


/* loads libpq, with its symbols global for the service's own calls */
int
loader_pq_open(char *err, size_t errlen)
{
    void  *h;

    if (loader_pq.connectdb != NULL) {
        return 0;
    }

    h = dlopen("libpq.so.5", RTLD_NOW | RTLD_GLOBAL);

    if (h == NULL) {
        snprintf(err, errlen, "PostgreSQL: libpq: %s", dlerror());
        return -1;
    }

    *(void **) &loader_pq.status = dlsym(h, "PQstatus");
    *(void **) &loader_pq.error_message = dlsym(h, "PQerrorMessage");
    *(void **) &loader_pq.finish = dlsym(h, "PQfinish");
    *(void **) &loader_pq.reset = dlsym(h, "PQreset");

    if (loader_pq.status == NULL || loader_pq.error_message == NULL
        || loader_pq.finish == NULL || loader_pq.reset == NULL)
    {
        snprintf(err, errlen, "PostgreSQL: libpq.so.5 lacks a function");
        return -1;
    }

    /* last: it says the others are there */
    *(void **) &loader_pq.connectdb = dlsym(h, "PQconnectdb");

    if (loader_pq.connectdb == NULL) {
        snprintf(err, errlen, "PostgreSQL: libpq.so.5 lacks PQconnectdb");
        return -1;
    }

    return 0;
}


void
loader_resources_limit(unsigned long long bytes)
{
    loader_res_disk = bytes;
}


/* bytes of the files beside path (its own, -wal and -shm, excluded) */

static unsigned long long
loader_res_others(const char *path)
{
    DIR                 *d;
    char                 dir[PATH_MAX], file[PATH_MAX * 2];
    const char          *base, *slash;
    struct stat          st;
    struct dirent       *e;
    unsigned long long   total;

    slash = strrchr(path, '/');
    if (slash == NULL || (size_t) (slash - path) >= sizeof(dir)) {
        return 0;
    }

    memcpy(dir, path, slash - path);
    dir[slash - path] = '\0';
    base = slash + 1;

    d = opendir(dir);
    if (d == NULL) {
        return 0;
    }

    total = 0;

    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, strlen(base)) == 0) {
            continue;
        }

        snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);

        if (lstat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            total += (unsigned long long) st.st_blocks * 512;
        }
    }

    closedir(d);

    return total;
}


static int
loader_res_sqlite_limit(loader_db_t *db, sqlite3 *s, char *err,
    size_t errlen)
{
    char                 sql[64];
    sqlite3_stmt        *stmt;
    unsigned long long   page, others, pages;

    if (loader_res_disk == 0) {
        return 0;
    }

    page = 4096;

    if (sqlite3_prepare_v2(s, "PRAGMA page_size", -1, &stmt, NULL)
        == SQLITE_OK)
    {
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            page = (unsigned long long) sqlite3_column_int64(stmt, 0);
        }

        sqlite3_finalize(stmt);
    }

    others = loader_res_others(db->where);
    pages = others < loader_res_disk ? (loader_res_disk - others) / page
                                     : 1;

    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %llu",
             pages > 0 ? pages : 1);

    if (sqlite3_exec(s, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite \"%s\": %s: %s", db->name, db->where,
                 sqlite3_errmsg(s));
        return -1;
    }

    return 0;
}


static sqlite3 *
loader_res_sqlite_open(loader_db_t *db, char *err, size_t errlen)
{
    int       rc;
    char     *msg;
    sqlite3  *s;

    rc = sqlite3_open_v2(db->where, &s, SQLITE_OPEN_READWRITE
                         | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite \"%s\": %s: %s", db->name, db->where,
                 s ? sqlite3_errmsg(s) : sqlite3_errstr(rc));
        sqlite3_close_v2(s);
        return NULL;
    }

    sqlite3_busy_timeout(s, LOADER_SQLITE_BUSY_MS);

    msg = NULL;

    if (sqlite3_exec(s, "PRAGMA journal_mode=WAL", NULL, NULL, &msg)
        != SQLITE_OK)
    {
        snprintf(err, errlen, "sqlite \"%s\": %s: %s", db->name, db->where,
                 msg ? msg : sqlite3_errmsg(s));
        sqlite3_free(msg);
        sqlite3_close_v2(s);
        return NULL;
    }

    if (loader_res_sqlite_limit(db, s, err, errlen) != 0) {
        sqlite3_close_v2(s);
        return NULL;
    }

    return s;
}


static PGconn *
loader_res_pg_open(loader_db_t *db, char *err, size_t errlen)
{
    size_t   len;
    PGconn  *pg;

    pg = loader_pq.connectdb(db->where);

    if (pg == NULL || loader_pq.status(pg) != CONNECTION_OK) {
        /* libpq's message: never the password */
        snprintf(err, errlen, "postgres \"%s\": %s", db->name,
                 pg ? loader_pq.error_message(pg) : "out of memory");

        len = strlen(err);
        while (len > 0 && (err[len - 1] == '\n' || err[len - 1] == ' ')) {
            err[--len] = '\0';
        }

        loader_pq.finish(pg);
        return NULL;
    }

    return pg;
}


struct sqlite3 *
shuttle_sqlite(shuttle_app *app, const char *name)
{
    size_t             i;
    char               err[LOADER_ERRLEN];
    loader_handles_t  *hs;

    for (i = 0; i < loader_res.nsqlite; i++) {
        if (strcmp(loader_res.sqlite[i].name, name) == 0) {
            break;
        }
    }

    if (i == loader_res.nsqlite) {
        loader_log("shuttle_sqlite(\"%s\"): no such database: declare it "
                   "with SHUTTLE_SQLITE(\"%s\")", name, name);
        return NULL;
    }

    hs = loader_res_handles();
    if (hs == NULL) {
        loader_log("shuttle_sqlite(\"%s\"): out of memory", name);
        return NULL;
    }

    if (hs->sqlite[i] == NULL) {
        hs->sqlite[i] = loader_res_sqlite_open(&loader_res.sqlite[i], err,
                                               sizeof(err));
        if (hs->sqlite[i] == NULL) {
            loader_log("%s", err);
        }
    }

    return hs->sqlite[i];
}


struct pg_conn *
shuttle_postgres(shuttle_app *app, const char *name)
{
    size_t             i;
    char               err[LOADER_ERRLEN];
    loader_handles_t  *hs;

    for (i = 0; i < loader_res.npg; i++) {
        if (strcmp(loader_res.pg[i].name, name) == 0) {
            break;
        }
    }

    if (i == loader_res.npg) {
        loader_log("shuttle_postgres(\"%s\"): no such database: declare it "
                   "with SHUTTLE_POSTGRES(\"%s\")", name, name);
        return NULL;
    }

    hs = loader_res_handles();
    if (hs == NULL) {
        loader_log("shuttle_postgres(\"%s\"): out of memory", name);
        return NULL;
    }

    if (hs->pg[i] != NULL && loader_pq.status(hs->pg[i]) == CONNECTION_BAD) {
        loader_pq.reset(hs->pg[i]);

        if (loader_pq.status(hs->pg[i]) == CONNECTION_BAD) {
            loader_log("postgres \"%s\": reconnecting: %s", name,
                       loader_pq.error_message(hs->pg[i]));
            loader_pq.finish(hs->pg[i]);
            hs->pg[i] = NULL;
        }
    }

    if (hs->pg[i] == NULL) {
        hs->pg[i] = loader_res_pg_open(&loader_res.pg[i], err, sizeof(err));
        if (hs->pg[i] == NULL) {
            loader_log("%s", err);
        }
    }

    return hs->pg[i];
}


const char *
shuttle_secret(shuttle_app *app, const char *key)
{
    json_t  *v;

    if (loader_res.secrets == NULL) {
        loader_log("shuttle_secret(\"%s\"): secrets were not declared: add "
                   "SHUTTLE_SECRETS() to the service", key);
        return NULL;
    }

    v = json_object_get(loader_res.secrets, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}


/*
 * A GET or HEAD that no route takes, when a static folder is declared:
 * X-Accel-Redirect to nginx's internal location, or (shuttle run) the
 * file itself.  MHD_NO-like -1 when this is not for static files: the
 * caller answers 404.
 */

int
loader_resources_static(shuttle_req *req, int last, enum MHD_Result *rc)
{
    int                   fd;
    char                  path[PATH_MAX], real[PATH_MAX], *uri;
    size_t                len;
    struct stat           st;
    const char           *p;
    struct MHD_Response  *r;

    if (loader_res.static_uri == NULL && loader_res.static_dir == NULL) {
        return -1;
    }

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
    {
        return -1;
    }

    p = req->path;

    if (p[0] != '/' || !loader_res_path_ok(p)) {
        return -1;
    }

    if (loader_res.static_uri != NULL) {
        len = strlen(loader_res.static_uri) + strlen(p);
        uri = loader_palloc(req->pool, len + 1);

        if (uri == NULL) {
            return -1;
        }

        snprintf(uri, len + 1, "%s%s", loader_res.static_uri, p + 1);

        r = MHD_create_response_from_buffer(0, (void *) "",
                                            MHD_RESPMEM_PERSISTENT);
        if (r == NULL) {
            return -1;
        }

        MHD_add_response_header(r, "X-Accel-Redirect", uri);

        if (last) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
        }

        *rc = MHD_queue_response(req->conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);

        return 0;
    }

    /* the folder itself: a file under it, index.html for a directory */
    len = strlen(p);

    if ((size_t) snprintf(path, sizeof(path), "%s%s%s", loader_res.static_dir,
                          p, p[len - 1] == '/' ? "index.html" : "")
        >= sizeof(path))
    {
        return -1;
    }

    if (realpath(path, real) == NULL
        || strncmp(real, loader_res.static_dir,
                   strlen(loader_res.static_dir)) != 0
        || real[strlen(loader_res.static_dir)] != '/')
    {
        return -1;
    }

    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd == -1) {
        return -1;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }

    r = MHD_create_response_from_fd((uint64_t) st.st_size, fd);

    if (r == NULL) {
        close(fd);
        return -1;
    }

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            loader_res_type(real));

    if (last) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    }

    *rc = MHD_queue_response(req->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);

    return 0;
}


/* no "..", "//", "%", "?", "#", "\" or control characters */

static int
loader_res_path_ok(const char *path)
{
    const char     *p;
    unsigned char   c;

    for (p = path; *p != '\0'; p++) {
        c = (unsigned char) *p;

        if (c < 0x20 || c == 0x7f || c == '%' || c == '?' || c == '#'
            || c == '\\')
        {
            return 0;
        }

        if (c == '/' && (p[1] == '/'
                         || (p[1] == '.' && (p[2] == '/' || p[2] == '\0'))
                         || (p[1] == '.' && p[2] == '.'
                             && (p[3] == '/' || p[3] == '\0'))))
        {
            return 0;
        }
    }

    return 1;
}


static const char *
loader_res_type(const char *path)
{
    size_t       i;
    const char  *ext;

    static const char  *types[][2] = {
        { "html", "text/html; charset=utf-8" },
        { "htm", "text/html; charset=utf-8" },
        { "css", "text/css; charset=utf-8" },
        { "js", "text/javascript; charset=utf-8" },
        { "mjs", "text/javascript; charset=utf-8" },
        { "json", "application/json" },
        { "txt", "text/plain; charset=utf-8" },
        { "svg", "image/svg+xml" },
        { "png", "image/png" },
        { "jpg", "image/jpeg" },
        { "jpeg", "image/jpeg" },
        { "gif", "image/gif" },
        { "ico", "image/x-icon" },
        { "webp", "image/webp" },
        { "wasm", "application/wasm" },
        { "woff", "font/woff" },
        { "woff2", "font/woff2" },
        { "map", "application/json" },
        { "xml", "application/xml" },
        { "pdf", "application/pdf" },
    };

    ext = strrchr(path, '.');

    if (ext != NULL && strchr(ext, '/') == NULL) {
        for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strcasecmp(ext + 1, types[i][0]) == 0) {
                return types[i][1];
            }
        }
    }

    return "application/octet-stream";
}
