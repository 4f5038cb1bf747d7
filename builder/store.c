
/*
 * The builder's state in SQLite.
 */


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"


/* what shuttle_store_verify() says is wrong with a file */
#define STORE_CAUSE_LEN     400

/* the WAL's space, reserved at open: about its size between checkpoints */
#define STORE_WAL_RESERVE   (4 * 1024 * 1024)


struct shuttle_store_s {
    sqlite3          *db;
    char             *path;
    char             *data;         /* the data directory, for paths */
    pthread_mutex_t   lock;
};


/* names, sorted as SQLite's ORDER BY sorts them (memcmp) */
typedef struct {
    char                  **names;
    size_t                  n;
    size_t                  size;
    unsigned                nomem:1;
} store_names_t;


/* a value bound to a statement's ?N */
typedef struct {
    const char             *text;       /* with is_text; NULL binds NULL */
    int64_t                 n;
    unsigned                is_text:1;
} store_arg_t;


static const char  store_schema[] =
    "CREATE TABLE projects ("
    "    id             INTEGER PRIMARY KEY,"
    "    name           TEXT NOT NULL,"
    "    owner          TEXT NOT NULL,"
    "    created        INTEGER NOT NULL,"
    "    current        INTEGER REFERENCES deployments (id),"
    "    deleted        INTEGER"
    ");"
    "CREATE UNIQUE INDEX projects_live_name ON projects (name)"
    "    WHERE deleted IS NULL;"
    "CREATE TABLE deployments ("
    "    id             INTEGER PRIMARY KEY AUTOINCREMENT,"
    "    project        INTEGER NOT NULL REFERENCES projects (id),"
    "    state          TEXT NOT NULL,"
    "    reason         TEXT,"
    "    created        INTEGER NOT NULL,"
    "    updated        INTEGER NOT NULL,"
    "    upload         TEXT,"
    "    build_started  INTEGER,"
    "    so             TEXT,"
    "    port           INTEGER,"
    "    pid            INTEGER,"
    "    running_since  INTEGER,"
    "    superseded_by  INTEGER,"
    "    log            TEXT,"
    "    build_ms       INTEGER,"
    "    start_ms       INTEGER"
    ");"
    "CREATE INDEX deployments_project ON deployments (project, id);"
    "CREATE INDEX deployments_state ON deployments (state);"
    "CREATE TABLE transitions ("
    "    id             INTEGER PRIMARY KEY,"
    "    deployment     INTEGER NOT NULL REFERENCES deployments (id),"
    "    state          TEXT NOT NULL,"
    "    at             INTEGER NOT NULL,"
    "    reason         TEXT"
    ");"
    "CREATE INDEX transitions_deployment ON transitions (deployment, id);";


/* version 2: resources declared in code, and secrets */
static const char  store_schema_2[] =
    "CREATE TABLE resources ("
    "    project        TEXT NOT NULL,"
    "    owner          TEXT NOT NULL,"
    "    kind           TEXT NOT NULL,"
    "    name           TEXT NOT NULL,"
    "    info           TEXT NOT NULL,"
    "    created        INTEGER NOT NULL,"
    "    PRIMARY KEY (project, kind, name)"
    ");"
    "CREATE TABLE secrets ("
    "    project        TEXT NOT NULL,"
    "    owner          TEXT NOT NULL,"
    "    key            TEXT NOT NULL,"
    "    value          TEXT NOT NULL,"
    "    updated        INTEGER NOT NULL,"
    "    PRIMARY KEY (project, key)"
    ");";


/* version 3: a uid (and gid) of each project's own, kept like its data */
static const char  store_schema_3[] =
    "CREATE TABLE uids ("
    "    uid            INTEGER PRIMARY KEY,"
    "    project        TEXT NOT NULL UNIQUE,"
    "    owner          TEXT NOT NULL,"
    "    created        INTEGER NOT NULL"
    ");";


/* version 4: an operator's limits for a project, beside the defaults */
static const char  store_schema_4[] =
    "CREATE TABLE limits ("
    "    project        TEXT PRIMARY KEY,"
    "    limits         TEXT NOT NULL,"
    "    updated        INTEGER NOT NULL"
    ");";


/*
 * version 5: scale to zero.  A running deployment whose loader stopped for
 * want of requests is idle since then (its socket waits, held by the
 * builder); a project may have an idle timeout of its own (ms, 0: never).
 */
static const char  store_schema_5[] =
    "ALTER TABLE deployments ADD COLUMN idle_since INTEGER;"
    "ALTER TABLE projects ADD COLUMN idle_ms INTEGER;";


/*
 * Whether the live project row p holds its name against other keys, and
 * counts toward its key's --key-projects: it has run once, or has a
 * deployment on its way.  A project whose deployments all failed before
 * one ran holds nothing: another key may take the name (the row is
 * marked deleted then; its deployments and their build logs stay
 * readable by id to their key, as a deleted project's are).  While the
 * CLI follows a first build, the deployment is on its way: the name
 * cannot change hands under it.
 */
#define STORE_HOLDS                                                           \
    "(p.current IS NOT NULL OR EXISTS (SELECT 1 FROM deployments d "        \
    "WHERE d.project = p.id AND (d.running_since IS NOT NULL "              \
    "OR d.state IN ('queued', 'building', 'built', 'loading', "             \
    "'running'))))"

/*
 * The key whose data under the name ?1 is kept: resources, secrets, or a
 * uid recorded for a project of the name that ran (a uid allocated for
 * builds that all failed holds nothing).
 */
#define STORE_KEPT_OWNER                                                      \
    "SELECT owner FROM resources WHERE project = ?1 "                       \
    "UNION ALL SELECT owner FROM secrets WHERE project = ?1 "               \
    "UNION ALL SELECT u.owner FROM uids u WHERE u.project = ?1 "            \
    "AND EXISTS (SELECT 1 FROM projects p JOIN deployments d "              \
    "ON d.project = p.id WHERE p.name = u.project AND p.owner = u.owner "   \
    "AND d.running_since IS NOT NULL) "


#define STORE_DEPLOYMENT_COLUMNS                                              \
    "SELECT d.id, d.project, p.name, p.owner, d.state, d.reason, "          \
    "d.created, d.updated, d.upload, d.build_started, d.so, d.port, "       \
    "d.pid, d.running_since, d.superseded_by, d.log, d.build_ms, "          \
    "d.start_ms, d.idle_since "                                             \
    "FROM deployments d JOIN projects p ON p.id = d.project "

#define STORE_PROJECT_COLUMNS                                                 \
    "SELECT p.id, p.name, p.owner, p.created, p.current, "                  \
    "(SELECT max(id) FROM deployments WHERE project = p.id), "              \
    "(SELECT max(updated) FROM deployments WHERE project = p.id), "         \
    "p.idle_ms FROM projects p "


static void store_error(shuttle_store_t *st, char *err, size_t errlen,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int store_exec(shuttle_store_t *st, const char *sql, char *err,
    size_t errlen);
static int store_migrate(shuttle_store_t *st, char *err, size_t errlen);
static int store_has_journal(const char *path);
static int store_scan_projects(shuttle_store_t *st, char *err,
    size_t errlen);
static void store_reserve(shuttle_store_t *st);
static int store_names_add(store_names_t *a, const char *name);
static int store_names_cmp(const void *one, const void *two);
static void store_names_free(store_names_t *a);
static char *store_uri(const char *path, const char *query);
static sqlite3_stmt *store_prepare(shuttle_store_t *st, const char *sql,
    char *err, size_t errlen);
static int store_begin(shuttle_store_t *st, char *err, size_t errlen);
static int store_commit(shuttle_store_t *st, char *err, size_t errlen);
static void store_rollback(shuttle_store_t *st);
static void store_bind_text(sqlite3_stmt *stmt, int i, const char *s);
static void store_bind_int(sqlite3_stmt *stmt, int i, int64_t v, int set);
static void store_copy(char *dst, size_t size, sqlite3_stmt *stmt, int i);
static int64_t store_int(sqlite3_stmt *stmt, int i, int64_t dflt);
static void store_read_deployment(sqlite3_stmt *stmt,
    shuttle_deployment_t *d);
static void store_read_project(sqlite3_stmt *stmt, shuttle_project_t *p);
static int store_each_deployment(shuttle_store_t *st, const char *sql,
    const int64_t *args, int nargs, unsigned mask,
    shuttle_store_deployment_pt handler, void *data, char *err,
    size_t errlen);
static int store_steps(shuttle_store_t *st, const char *const *sql,
    size_t nsql, const store_arg_t *args, int nargs, const char *what,
    const char *project, char *err, size_t errlen);
static int store_run(shuttle_store_t *st, const char *sql,
    const char *const *args, int nargs, const char *what, int *changes,
    char *err, size_t errlen);
static int store_claim(shuttle_store_t *st, const char *name,
    const char *owner, int64_t released, int64_t now, char *err,
    size_t errlen);
static int store_count_projects(shuttle_store_t *st, const char *name,
    const char *owner, unsigned max, char *err, size_t errlen);
static int store_uid_avoided(uid_t uid, const uid_t *avoid,
    size_t navoid);
static int store_record(shuttle_store_t *st, int64_t id,
    shuttle_deploy_tag_t tag, int64_t at, const char *reason, char *err,
    size_t errlen);


shuttle_store_t *
shuttle_store_open(const char *path, const char *data_dir, char *err,
    size_t errlen)
{
    int                   rc;
    char                  cause[STORE_CAUSE_LEN];
    struct stat           sb;
    shuttle_store_t      *st;
    shuttle_store_info_t  info;

    st = calloc(1, sizeof(shuttle_store_t));
    if (st == NULL) {
        snprintf(err, errlen, "store %s: %s", path, strerror(ENOMEM));
        return NULL;
    }

    st->path = strdup(path);
    st->data = strdup(data_dir);

    if (st->path == NULL || st->data == NULL) {
        snprintf(err, errlen, "store %s: %s", path, strerror(ENOMEM));
        goto failed;
    }

    (void) pthread_mutex_init(&st->lock, NULL);

    /* an existing store is checked before anything may write to it */

    if (stat(path, &sb) == 0) {
        rc = shuttle_store_verify(path, "quick_check", &info, cause,
                                  sizeof(cause));

        if (rc == SHUTTLE_STORE_DAMAGED) {
            snprintf(err, errlen, "store %s is damaged (%s): left as it "
                     "is; restore it from a backup (see shuttle-builder "
                     "backup --help), or move it aside to start with an "
                     "empty store", path, cause);
            goto failed;
        }

        if (rc != 0) {
            snprintf(err, errlen, "store %s: %s", path, cause);
            goto failed;
        }

        if (info.version > SHUTTLE_STORE_SCHEMA) {
            snprintf(err, errlen, "store %s: schema version %d is newer "
                     "than this builder's (%d): a newer shuttle-builder "
                     "wrote it; left as it is: run that builder, or restore "
                     "a backup taken with this one", path, info.version,
                     SHUTTLE_STORE_SCHEMA);
            goto failed;
        }

    } else if (errno != ENOENT) {
        snprintf(err, errlen, "store %s: %s", path, strerror(errno));
        goto failed;
    }

    rc = sqlite3_open_v2(path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         | SQLITE_OPEN_FULLMUTEX, NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "store %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto failed;
    }

    (void) sqlite3_busy_timeout(st->db, 5000);

    /* it holds secrets and database passwords: the builder's alone (the
       WAL and shm files take the database file's mode) */
    if (chmod(path, 0600) == -1) {
        snprintf(err, errlen, "store %s: chmod: %s", path, strerror(errno));
        goto failed;
    }

    if (store_exec(st, "PRAGMA journal_mode = WAL", err, errlen) != 0
        || store_exec(st, "PRAGMA synchronous = FULL", err, errlen) != 0
        || store_exec(st, "PRAGMA foreign_keys = ON", err, errlen) != 0
        || store_migrate(st, err, errlen) != 0
        || store_scan_projects(st, err, errlen) != 0)
    {
        goto failed;
    }

    store_reserve(st);

    return st;

failed:

    shuttle_store_close(st);
    return NULL;
}


void
shuttle_store_close(shuttle_store_t *st)
{
    if (st == NULL) {
        return;
    }

    if (st->db != NULL) {
        (void) sqlite3_close_v2(st->db);
    }

    free(st->path);
    free(st->data);
    free(st);
}


int
shuttle_store_verify(const char *path, const char *check,
    shuttle_store_info_t *info, char *err, size_t errlen)
{
    int            rc, sqlrc, n;
    char          *uri, sql[64];
    size_t         len;
    sqlite3       *db;
    struct stat    sb;
    sqlite3_stmt  *stmt;
    const char    *row;

    if (stat(path, &sb) == -1) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }

    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        return -1;
    }

    if (sb.st_size == 0) {
        /* SQLite would take it for a new database */
        snprintf(err, errlen, "the file is empty: truncated?");
        return SHUTTLE_STORE_DAMAGED;
    }

    uri = store_uri(path, store_has_journal(path) ? "mode=ro"
                                                  : "mode=ro&immutable=1");
    if (uri == NULL) {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return -1;
    }

    db = NULL;
    rc = -1;

    sqlrc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                            NULL);
    sqlite3_free(uri);

    if (sqlrc != SQLITE_OK) {
        snprintf(err, errlen, "%s",
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlrc));
        goto done;
    }

    (void) sqlite3_busy_timeout(db, 5000);

    /* every page: a damaged header, page or tree, a truncated file */

    snprintf(sql, sizeof(sql), "PRAGMA %s", check);

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        sqlrc = sqlite3_errcode(db);
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        goto sqlite_error;
    }

    /* "PRAGMA quick_check: " and the first two problems: enough to say
       what is wrong */

    len = (size_t) snprintf(err, errlen, "%s: ", sql);
    n = 0;

    while ((sqlrc = sqlite3_step(stmt)) == SQLITE_ROW) {
        row = (const char *) sqlite3_column_text(stmt, 0);

        if (row == NULL || strcmp(row, "ok") == 0) {
            continue;
        }

        /* the first one comes after "*** in database main ***\n" */

        if (strncmp(row, "*** ", 4) == 0 && strchr(row, '\n') != NULL) {
            row = strchr(row, '\n') + 1;
        }

        if (n++ < 2 && len < errlen) {
            snprintf(err + len, errlen - len, "%s%s", n > 1 ? "; " : "",
                     row);
            len = strlen(err);

        } else if (n == 3 && len < errlen) {
            snprintf(err + len, errlen - len, "; ...");
            len = strlen(err);
        }
    }

    sqlite3_finalize(stmt);

    if (sqlrc != SQLITE_DONE) {
        sqlrc = sqlite3_errcode(db);
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        goto sqlite_error;
    }

    if (n > 0) {
        /* one line in a log */
        for (len = 0; err[len] != '\0'; len++) {
            if ((unsigned char) err[len] < 0x20) {
                err[len] = ' ';
            }
        }

        rc = SHUTTLE_STORE_DAMAGED;
        goto done;
    }

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL)
        != SQLITE_OK)
    {
        sqlrc = sqlite3_errcode(db);
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        goto sqlite_error;
    }

    sqlrc = sqlite3_step(stmt);
    info->version = sqlrc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_finalize(stmt);

    if (sqlrc != SQLITE_ROW) {
        sqlrc = sqlite3_errcode(db);
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        goto sqlite_error;
    }

    /* a new database has no tables yet */

    info->projects = -1;
    info->deployments = -1;

    if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM projects "
                           "WHERE deleted IS NULL), (SELECT count(*) "
                           "FROM deployments)", -1, &stmt, NULL)
        == SQLITE_OK)
    {
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            info->projects = sqlite3_column_int64(stmt, 0);
            info->deployments = sqlite3_column_int64(stmt, 1);
        }

        sqlite3_finalize(stmt);
    }

    err[0] = '\0';
    rc = 0;
    goto done;

sqlite_error:

    if ((sqlrc & 0xff) == SQLITE_CORRUPT || (sqlrc & 0xff) == SQLITE_NOTADB) {
        rc = SHUTTLE_STORE_DAMAGED;
    }

done:

    (void) sqlite3_close_v2(db);

    return rc;
}


/*
 * The WAL's space is reserved ahead (fallocate, its size unchanged): on
 * a full filesystem the builder still records what happens, a deploy
 * that failed for want of space with its reason, rather than leaving it
 * in a state that says nothing.  SQLite writes the WAL from its start
 * again after each checkpoint and, journal_size_limit at its default,
 * never truncates it while the store is open; it is removed, and its
 * reservation with it, when the builder closes the store.  A
 * reservation the filesystem cannot make is logged, not fatal.
 */

static void
store_reserve(shuttle_store_t *st)
{
    int   fd;
    char  wal[SHUTTLE_PATH_MAX + 8];

    if ((size_t) snprintf(wal, sizeof(wal), "%s-wal", st->path)
        >= sizeof(wal))
    {
        return;
    }

    fd = open(wal, O_WRONLY | O_CLOEXEC);
    if (fd == -1) {
        return;
    }

    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, STORE_WAL_RESERVE) == -1
        && errno != EOPNOTSUPP)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "store %s: reserving %d MiB for its "
                    "WAL: %s: on a full filesystem, state changes may not "
                    "be recorded", st->path, STORE_WAL_RESERVE >> 20,
                    strerror(errno));
    }

    close(fd);
}


/*
 * What DATA/projects holds beside what the store knows, for a store
 * restored from a backup: deployment ids are never given twice (those
 * made after the backup have their directories, deployments/ID, and the
 * ids go on past them); a project made after the backup, which the
 * store knows nothing of, is told in the log: its files would be given
 * to whichever key deploys its name next.
 */

static int
store_scan_projects(shuttle_store_t *st, char *err, size_t errlen)
{
    int             rc;
    DIR            *projects, *deployments;
    char            path[SHUTTLE_PATH_MAX], *end;
    int64_t         max, id, seq;
    const char     *name;
    sqlite3_stmt   *stmt;
    struct dirent  *p, *d;
    store_names_t   known;

    if ((size_t) snprintf(path, sizeof(path), "%s/projects", st->data)
        >= sizeof(path))
    {
        return 0;
    }

    projects = opendir(path);
    if (projects == NULL) {
        return 0;
    }

    max = 0;

    /* every name the store has rows under, sorted */

    stmt = store_prepare(st, "SELECT name FROM projects UNION "
                         "SELECT project FROM resources UNION "
                         "SELECT project FROM uids ORDER BY 1", err, errlen);
    if (stmt == NULL) {
        closedir(projects);
        return -1;
    }

    memset(&known, 0, sizeof(store_names_t));

    while (sqlite3_step(stmt) == SQLITE_ROW) {
        if (store_names_add(&known,
                            (const char *) sqlite3_column_text(stmt, 0))
            != 0)
        {
            break;
        }
    }

    sqlite3_finalize(stmt);

    while ((p = readdir(projects)) != NULL) {
        if (p->d_name[0] == '.'
            || (size_t) snprintf(path, sizeof(path), "%s/projects/%s/"
                                 "deployments", st->data, p->d_name)
               >= sizeof(path))
        {
            continue;
        }

        name = p->d_name;

        if (!known.nomem
            && bsearch(&name, known.names, known.n, sizeof(char *),
                       store_names_cmp)
               == NULL)
        {
            shuttle_log(SHUTTLE_LOG_WARN, "store %s: %s/projects/%s is not "
                        "a project it knows (restored from a backup?): the "
                        "next key to deploy %s would be given its files; "
                        "move the directory aside", st->path, st->data,
                        p->d_name, p->d_name);
        }

        deployments = opendir(path);
        if (deployments == NULL) {
            continue;
        }

        while ((d = readdir(deployments)) != NULL) {
            if (d->d_name[0] < '1' || d->d_name[0] > '9') {
                continue;
            }

            errno = 0;
            id = strtoll(d->d_name, &end, 10);

            if (errno == 0 && *end == '\0' && id > max) {
                max = id;
            }
        }

        closedir(deployments);
    }

    store_names_free(&known);
    closedir(projects);

    if (max == 0) {
        return 0;
    }

    stmt = store_prepare(st, "SELECT seq FROM sqlite_sequence "
                         "WHERE name = 'deployments'", err, errlen);
    if (stmt == NULL) {
        return -1;
    }

    rc = sqlite3_step(stmt);
    seq = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);

    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_error(st, err, errlen, "deployment ids");
        return -1;
    }

    if (max <= seq) {
        return 0;
    }

    stmt = store_prepare(st, rc == SQLITE_ROW
                         ? "UPDATE sqlite_sequence SET seq = ?1 "
                           "WHERE name = 'deployments'"
                         : "INSERT INTO sqlite_sequence (name, seq) "
                           "VALUES ('deployments', ?1)", err, errlen);
    if (stmt == NULL) {
        return -1;
    }

    store_bind_int(stmt, 1, max, 1);

    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);

    if (rc != SQLITE_DONE) {
        store_error(st, err, errlen, "deployment ids");
        return -1;
    }

    shuttle_log(SHUTTLE_LOG_WARN, "store %s: deployment ids went up to "
                "#%lld, the store knew of #%lld (restored from a backup?): "
                "new deployments are numbered past #%lld", st->path,
                (long long) max, (long long) seq, (long long) max);

    return 0;
}


static int
store_names_add(store_names_t *a, const char *name)
{
    char   **names;
    size_t   n;

    if (a->n == a->size) {
        n = a->size ? a->size * 2 : 64;
        names = realloc(a->names, n * sizeof(char *));

        if (names == NULL) {
            a->nomem = 1;
            return -1;
        }

        a->names = names;
        a->size = n;
    }

    a->names[a->n] = strdup(name != NULL ? name : "");

    if (a->names[a->n] == NULL) {
        a->nomem = 1;
        return -1;
    }

    a->n++;

    return 0;
}


static int
store_names_cmp(const void *one, const void *two)
{
    return strcmp(*(char *const *) one, *(char *const *) two);
}


static void
store_names_free(store_names_t *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->names[i]);
    }

    free(a->names);
}


/* a journal beside the database holds some of it (a writer was killed) */

static int
store_has_journal(const char *path)
{
    int          i;
    char         name[SHUTTLE_PATH_MAX + 16];
    struct stat  sb;

    static const char  *suffix[] = { "-wal", "-journal" };

    for (i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "%s%s", path, suffix[i]);

        if (lstat(name, &sb) == 0 || errno != ENOENT) {
            return 1;
        }
    }

    return 0;
}


/* file:PATH?QUERY, the path %-escaped but for unreserved bytes and '/' */

static char *
store_uri(const char *path, const char *query)
{
    char                 *uri, *p;
    size_t                len;
    const unsigned char  *c;

    static const char  hex[] = "0123456789ABCDEF";

    len = strlen(path);

    uri = sqlite3_malloc64(sizeof("file:") + 3 * len + 1 + strlen(query));
    if (uri == NULL) {
        return NULL;
    }

    p = uri + sprintf(uri, "file:");

    for (c = (const unsigned char *) path; *c != '\0'; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
            || (*c >= '0' && *c <= '9') || strchr("/-._~", *c) != NULL)
        {
            *p++ = (char) *c;

        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 0xf];
        }
    }

    sprintf(p, "?%s", query);

    return uri;
}


static int
store_migrate(shuttle_store_t *st, char *err, size_t errlen)
{
    int            version;
    sqlite3_stmt  *stmt;

    stmt = store_prepare(st, "PRAGMA user_version", err, errlen);
    if (stmt == NULL) {
        return -1;
    }

    version = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0)
                                               : 0;
    sqlite3_finalize(stmt);

    if (version == SHUTTLE_STORE_SCHEMA) {
        return 0;
    }

    if (version > SHUTTLE_STORE_SCHEMA) {
        snprintf(err, errlen, "store %s: schema version %d is newer than "
                 "this builder's (%d): a newer builder wrote it", st->path,
                 version, SHUTTLE_STORE_SCHEMA);
        return -1;
    }

    /*
     * version 0: a new database; 1: before resources; 2: before uids;
     * 3: before limits; 4: before idle
     */

    if (store_begin(st, err, errlen) != 0) {
        return -1;
    }

    if ((version < 1 && store_exec(st, store_schema, err, errlen) != 0)
        || (version < 2 && store_exec(st, store_schema_2, err, errlen) != 0)
        || (version < 3 && store_exec(st, store_schema_3, err, errlen) != 0)
        || (version < 4 && store_exec(st, store_schema_4, err, errlen) != 0)
        || store_exec(st, store_schema_5, err, errlen) != 0
        || store_exec(st, "PRAGMA user_version = 5", err, errlen) != 0
        || store_commit(st, err, errlen) != 0)
    {
        store_rollback(st);
        return -1;
    }

    return 0;
}


int
shuttle_store_enqueue(shuttle_store_t *st, const char *name,
    const char *owner, unsigned max_projects, int64_t *id, char *err,
    size_t errlen)
{
    int            rc, counted;
    char           upload[SHUTTLE_PATH_MAX];
    int64_t        now, project, released;
    sqlite3_stmt  *stmt;

    now = shuttle_now_ms();
    rc = -1;
    stmt = NULL;
    project = 0;
    released = 0;
    counted = 0;

    pthread_mutex_lock(&st->lock);

    if (store_begin(st, err, errlen) != 0) {
        goto done;
    }

    stmt = store_prepare(st, "SELECT p.id, p.owner, " STORE_HOLDS
                         " FROM projects p WHERE p.name = ?1 "
                         "AND p.deleted IS NULL", err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_text(stmt, 1, name);

    if (sqlite3_step(stmt) == SQLITE_ROW) {

        if (strcmp((const char *) sqlite3_column_text(stmt, 1), owner) == 0) {
            project = sqlite3_column_int64(stmt, 0);
            counted = sqlite3_column_int(stmt, 2);

        } else if (sqlite3_column_int(stmt, 2)) {
            snprintf(err, errlen, "project %s belongs to another key", name);
            rc = SHUTTLE_STORE_FORBIDDEN;
            goto failed;

        } else {
            /* another key's, but it never ran: the name is free */
            released = sqlite3_column_int64(stmt, 0);
        }
    }

    sqlite3_finalize(stmt);
    stmt = NULL;

    if (project == 0) {
        rc = store_claim(st, name, owner, released, now, err, errlen);
        if (rc != 0) {
            goto failed;
        }

        rc = -1;
    }

    if (!counted && max_projects > 0) {
        rc = store_count_projects(st, name, owner, max_projects, err, errlen);
        if (rc != 0) {
            goto failed;
        }

        rc = -1;
    }

    if (project == 0) {
        stmt = store_prepare(st, "INSERT INTO projects (name, owner, "
                             "created) VALUES (?1, ?2, ?3)", err, errlen);
        if (stmt == NULL) {
            goto failed;
        }

        store_bind_text(stmt, 1, name);
        store_bind_text(stmt, 2, owner);
        store_bind_int(stmt, 3, now, 1);

        if (sqlite3_step(stmt) != SQLITE_DONE) {
            store_error(st, err, errlen, "project %s: insert", name);
            goto failed;
        }

        sqlite3_finalize(stmt);
        stmt = NULL;

        project = sqlite3_last_insert_rowid(st->db);
    }

    stmt = store_prepare(st, "INSERT INTO deployments (project, state, "
                         "created, updated) VALUES (?1, 'queued', ?2, ?2)",
                         err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_int(stmt, 1, project, 1);
    store_bind_int(stmt, 2, now, 1);

    if (sqlite3_step(stmt) != SQLITE_DONE) {
        store_error(st, err, errlen, "project %s: new deployment", name);
        goto failed;
    }

    sqlite3_finalize(stmt);
    stmt = NULL;

    *id = sqlite3_last_insert_rowid(st->db);

    if (shuttle_deploy_path(upload, sizeof(upload), st->data, name, *id,
                            "upload.tar.gz")
        != 0)
    {
        snprintf(err, errlen, "deploy %s #%lld: data path too long", name,
                 (long long) *id);
        goto failed;
    }

    stmt = store_prepare(st, "UPDATE deployments SET upload = ?1 "
                         "WHERE id = ?2", err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_text(stmt, 1, upload);
    store_bind_int(stmt, 2, *id, 1);

    if (sqlite3_step(stmt) != SQLITE_DONE) {
        store_error(st, err, errlen, "deployment %lld: upload",
                    (long long) *id);
        goto failed;
    }

    sqlite3_finalize(stmt);
    stmt = NULL;

    snprintf(upload, sizeof(upload), "uploaded with key %s", owner);

    if (store_record(st, *id, SHUTTLE_DEPLOY_QUEUED, now, upload, err, errlen)
        != 0
        || store_commit(st, err, errlen) != 0)
    {
        goto failed;
    }

    rc = 0;
    goto done;

failed:

    if (stmt != NULL) {
        sqlite3_finalize(stmt);
    }

    store_rollback(st);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


/*
 * The name becomes owner's, in enqueue's transaction: refused when
 * another key's data is kept under it; else the row of another key's
 * project that never ran (released, 0: none) is marked deleted, and a
 * uid recorded for it is freed.
 */

static int
store_claim(shuttle_store_t *st, const char *name, const char *owner,
    int64_t released, int64_t now, char *err, size_t errlen)
{
    int            rc;
    size_t         i;
    sqlite3_stmt  *stmt;

    static const char  *sql[] = {
        "UPDATE projects SET deleted = ?3, current = NULL WHERE id = ?4",
        "DELETE FROM uids WHERE project = ?1 AND owner <> ?2"
    };

    stmt = store_prepare(st, "SELECT owner FROM (" STORE_KEPT_OWNER ") "
                         "WHERE owner <> ?2 LIMIT 1", err, errlen);
    if (stmt == NULL) {
        return -1;
    }

    store_bind_text(stmt, 1, name);
    store_bind_text(stmt, 2, owner);

    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);

    if (rc == SQLITE_ROW) {
        snprintf(err, errlen, "project %s is held by another key: the "
                 "databases, secrets or uid of its deleted project are "
                 "kept under this name until that key purges them", name);
        return SHUTTLE_STORE_FORBIDDEN;
    }

    if (rc != SQLITE_DONE) {
        store_error(st, err, errlen, "project %s: kept data", name);
        return -1;
    }

    for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        if (i == 0 && released == 0) {
            continue;
        }

        stmt = store_prepare(st, sql[i], err, errlen);
        if (stmt == NULL) {
            return -1;
        }

        store_bind_text(stmt, 1, name);
        store_bind_text(stmt, 2, owner);
        store_bind_int(stmt, 3, now, 1);
        store_bind_int(stmt, 4, released, 1);

        rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);

        if (rc != SQLITE_DONE) {
            store_error(st, err, errlen, "project %s: release", name);
            return -1;
        }
    }

    if (released != 0) {
        shuttle_log(SHUTTLE_LOG_INFO, "project %s: its project that never "
                    "ran is released to key %s", name, owner);
    }

    return 0;
}


/* SHUTTLE_STORE_LIMIT when owner holds max projects besides name */

static int
store_count_projects(shuttle_store_t *st, const char *name,
    const char *owner, unsigned max, char *err, size_t errlen)
{
    int            rc;
    int64_t        n;
    sqlite3_stmt  *stmt;

    stmt = store_prepare(st, "SELECT count(*) FROM projects p "
                         "WHERE p.owner = ?1 AND p.deleted IS NULL "
                         "AND p.name <> ?2 AND " STORE_HOLDS, err, errlen);
    if (stmt == NULL) {
        return -1;
    }

    store_bind_text(stmt, 1, owner);
    store_bind_text(stmt, 2, name);

    rc = sqlite3_step(stmt);
    n = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);

    if (rc != SQLITE_ROW) {
        store_error(st, err, errlen, "projects of key %s", owner);
        return -1;
    }

    if (n >= (int64_t) max) {
        snprintf(err, errlen, "key %s has %lld projects, the limit "
                 "(--key-projects %u): delete one to deploy project %s",
                 owner, (long long) n, max, name);
        return SHUTTLE_STORE_LIMIT;
    }

    return 0;
}


int
shuttle_store_transition(shuttle_store_t *st, int64_t id,
    const shuttle_deploy_state_t *to, const shuttle_store_note_t *note,
    int64_t *prev, char *err, size_t errlen)
{
    int                    rc, set;
    int64_t                now, project, current;
    const char            *reason;
    sqlite3_stmt          *stmt;
    shuttle_deploy_tag_t   from;

    now = shuttle_now_ms();
    rc = -1;

    switch (to->tag) {

    case SHUTTLE_DEPLOY_FAILED:
        reason = to->u.failed.reason;
        break;

    case SHUTTLE_DEPLOY_CRASHED:
        reason = to->u.crashed.reason;
        break;

    default:
        reason = note != NULL ? note->reason : NULL;
    }

    if (prev != NULL) {
        *prev = 0;
    }

    pthread_mutex_lock(&st->lock);

    if (store_begin(st, err, errlen) != 0) {
        goto done;
    }

    stmt = store_prepare(st, "SELECT d.state, d.project, p.current "
                         "FROM deployments d JOIN projects p "
                         "ON p.id = d.project WHERE d.id = ?1", err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_int(stmt, 1, id, 1);

    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        snprintf(err, errlen, "deployment %lld not found", (long long) id);
        rc = SHUTTLE_STORE_NOT_FOUND;
        goto failed;
    }

    from = shuttle_deploy_tag((const char *) sqlite3_column_text(stmt, 0));
    project = sqlite3_column_int64(stmt, 1);
    current = store_int(stmt, 2, 0);

    sqlite3_finalize(stmt);

    if (!shuttle_deploy_can(from, to->tag)) {
        snprintf(err, errlen, "deployment %lld: no transition from %s to %s",
                 (long long) id, shuttle_deploy_name(from),
                 shuttle_deploy_name(to->tag));
        rc = SHUTTLE_STORE_REFUSED;
        goto failed;
    }

    stmt = store_prepare(st,
        "UPDATE deployments SET state = ?1, reason = ?2, updated = ?3, "
        "idle_since = NULL, "
        "build_started = coalesce(?4, build_started), "
        "so = coalesce(?5, so), port = coalesce(?6, port), "
        "pid = coalesce(?7, pid), "
        "running_since = coalesce(?8, running_since), "
        "superseded_by = coalesce(?9, superseded_by), "
        "log = coalesce(?10, log), build_ms = coalesce(?11, build_ms), "
        "start_ms = coalesce(?12, start_ms) WHERE id = ?13", err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_text(stmt, 1, shuttle_deploy_name(to->tag));
    store_bind_text(stmt, 2, reason);
    store_bind_int(stmt, 3, now, 1);

    switch (to->tag) {

    case SHUTTLE_DEPLOY_BUILDING:
        store_bind_int(stmt, 4, to->u.building.started, 1);
        break;

    case SHUTTLE_DEPLOY_BUILT:
        store_bind_text(stmt, 5, to->u.built.so);
        break;

    case SHUTTLE_DEPLOY_LOADING:
        store_bind_int(stmt, 6, to->u.loading.port, 1);
        store_bind_int(stmt, 7, to->u.loading.pid, 1);
        break;

    case SHUTTLE_DEPLOY_RUNNING:
        store_bind_int(stmt, 6, to->u.running.port, 1);
        store_bind_int(stmt, 7, to->u.running.pid, 1);
        store_bind_int(stmt, 8, to->u.running.started, 1);
        break;

    case SHUTTLE_DEPLOY_SUPERSEDED:
        store_bind_int(stmt, 9, to->u.superseded.by, 1);
        break;

    case SHUTTLE_DEPLOY_CRASHED:
        store_bind_text(stmt, 10, to->u.crashed.log);
        break;

    default:
        break;
    }

    set = note != NULL && note->build_ms >= 0;
    store_bind_int(stmt, 11, set ? note->build_ms : 0, set);
    set = note != NULL && note->start_ms >= 0;
    store_bind_int(stmt, 12, set ? note->start_ms : 0, set);
    store_bind_int(stmt, 13, id, 1);

    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite3_finalize(stmt);
        store_error(st, err, errlen, "deployment %lld: %s", (long long) id,
                    shuttle_deploy_name(to->tag));
        goto failed;
    }

    sqlite3_finalize(stmt);

    /* the project's current deployment */

    stmt = NULL;

    if (to->tag == SHUTTLE_DEPLOY_RUNNING && current != id) {
        stmt = store_prepare(st, "UPDATE projects SET current = ?1 "
                             "WHERE id = ?2", err, errlen);

    } else if (to->tag != SHUTTLE_DEPLOY_RUNNING && current == id) {
        stmt = store_prepare(st, "UPDATE projects SET current = NULL "
                             "WHERE id = ?2 AND ?1 IS NOT NULL", err, errlen);

    } else {
        goto record;
    }

    if (stmt == NULL) {
        goto failed;
    }

    store_bind_int(stmt, 1, id, 1);
    store_bind_int(stmt, 2, project, 1);

    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite3_finalize(stmt);
        store_error(st, err, errlen, "deployment %lld: current",
                    (long long) id);
        goto failed;
    }

    sqlite3_finalize(stmt);

record:

    if (store_record(st, id, to->tag, now, reason, err, errlen) != 0
        || store_commit(st, err, errlen) != 0)
    {
        goto failed;
    }

    if (prev != NULL && to->tag == SHUTTLE_DEPLOY_RUNNING) {
        *prev = current;
    }

    rc = 0;
    goto done;

failed:

    store_rollback(st);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_set_loader(shuttle_store_t *st, int64_t id, uint16_t port,
    pid_t pid, char *err, size_t errlen)
{
    int            rc;
    sqlite3_stmt  *stmt;

    rc = -1;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, "UPDATE deployments SET port = ?1, pid = ?2 "
                         "WHERE id = ?3 AND state IN ('loading', "
                         "'running')", err, errlen);
    if (stmt == NULL) {
        goto done;
    }

    store_bind_int(stmt, 1, port, 1);
    store_bind_int(stmt, 2, pid, 1);
    store_bind_int(stmt, 3, id, 1);

    if (sqlite3_step(stmt) != SQLITE_DONE) {
        store_error(st, err, errlen, "deployment %lld: loader",
                    (long long) id);

    } else {
        rc = sqlite3_changes(st->db) ? 0 : SHUTTLE_STORE_NOT_FOUND;
    }

    sqlite3_finalize(stmt);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_limits_get(shuttle_store_t *st, const char *project,
    char *json, size_t size)
{
    int            rc;
    sqlite3_stmt  *stmt;

    rc = -1;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, "SELECT limits FROM limits WHERE project = ?1",
                         NULL, 0);

    if (stmt != NULL) {
        store_bind_text(stmt, 1, project);

        switch (sqlite3_step(stmt)) {

        case SQLITE_ROW:
            snprintf(json, size, "%s",
                     (const char *) sqlite3_column_text(stmt, 0));
            rc = 0;
            break;

        case SQLITE_DONE:
            rc = SHUTTLE_STORE_NOT_FOUND;
            break;

        default:
            break;
        }

        sqlite3_finalize(stmt);
    }

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_limits_set(shuttle_store_t *st, const char *project,
    const char *json, char *err, size_t errlen)
{
    const char  *args[2];

    args[0] = project;
    args[1] = json;

    if (json == NULL) {
        return store_run(st, "DELETE FROM limits WHERE project = ?1", args,
                         1, "limits", NULL, err, errlen);
    }

    return store_run(st, "INSERT INTO limits (project, limits, updated) "
                     "VALUES (?1, ?2, ?3) ON CONFLICT (project) DO UPDATE "
                     "SET limits = ?2, updated = ?3", args, 2, "limits",
                     NULL, err, errlen);
}


int
shuttle_store_set_reason(shuttle_store_t *st, int64_t id, const char *reason,
    char *err, size_t errlen)
{
    int          changes;
    char         sid[32];
    const char  *args[2];

    /* the id as text: SQLite compares it with the INTEGER column as one */
    snprintf(sid, sizeof(sid), "%lld", (long long) id);

    args[0] = reason;
    args[1] = sid;

    if (store_run(st, "UPDATE deployments SET reason = ?1 WHERE id = ?2 "
                  "AND state = 'running'", args, 2, "deployment reason",
                  &changes, err, errlen)
        != 0)
    {
        return -1;
    }

    return changes ? 0 : SHUTTLE_STORE_NOT_FOUND;
}


/* running deployment id scaled to zero at since (ms), its socket on port */

int
shuttle_store_set_idle(shuttle_store_t *st, int64_t id, uint16_t port,
    int64_t since, char *err, size_t errlen)
{
    int          changes;
    char         sid[32], sport[16], ssince[32];
    const char  *args[3];

    snprintf(sid, sizeof(sid), "%lld", (long long) id);
    snprintf(sport, sizeof(sport), "%u", (unsigned) port);
    snprintf(ssince, sizeof(ssince), "%lld", (long long) since);

    args[0] = ssince;
    args[1] = sport;
    args[2] = sid;

    if (store_run(st, "UPDATE deployments SET idle_since = ?1, port = ?2, "
                  "pid = 0 WHERE id = ?3 AND state = 'running'", args, 3,
                  "deployment idle", &changes, err, errlen)
        != 0)
    {
        return -1;
    }

    return changes ? 0 : SHUTTLE_STORE_NOT_FOUND;
}


/* the live project's own idle timeout: ms, 0 never, -1 the builder's */

int
shuttle_store_set_project_idle(shuttle_store_t *st, const char *name,
    int64_t ms, char *err, size_t errlen)
{
    int          changes;
    char         sms[32];
    const char  *args[2];

    snprintf(sms, sizeof(sms), "%lld", (long long) ms);

    args[0] = ms >= 0 ? sms : NULL;
    args[1] = name;

    if (store_run(st, "UPDATE projects SET idle_ms = ?1 WHERE name = ?2 "
                  "AND deleted IS NULL", args, 2, "project idle", &changes,
                  err, errlen)
        != 0)
    {
        return -1;
    }

    return changes ? 0 : SHUTTLE_STORE_NOT_FOUND;
}


int
shuttle_store_delete_project(shuttle_store_t *st, const char *name,
    const char *reason, char *err, size_t errlen)
{
    int            rc;
    int64_t        now, project;
    store_arg_t    args[3];
    sqlite3_stmt  *stmt;

    static const char  *sql[] = {
        "INSERT INTO transitions (deployment, state, at, reason) "
        "SELECT id, 'deleted', ?2, ?3 FROM deployments "
        "WHERE project = ?1 AND state <> 'deleted' ORDER BY id",

        "UPDATE deployments SET state = 'deleted', reason = ?3, "
        "updated = ?2 WHERE project = ?1 AND state <> 'deleted' "
        "AND ?2 IS NOT NULL",

        "UPDATE projects SET deleted = ?2, current = NULL "
        "WHERE id = ?1 AND ?3 IS NOT NULL"
    };

    now = shuttle_now_ms();
    rc = -1;

    pthread_mutex_lock(&st->lock);

    if (store_begin(st, err, errlen) != 0) {
        goto done;
    }

    stmt = store_prepare(st, "SELECT id FROM projects WHERE name = ?1 "
                         "AND deleted IS NULL", err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_text(stmt, 1, name);

    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        snprintf(err, errlen, "project %s not found", name);
        rc = SHUTTLE_STORE_NOT_FOUND;
        goto failed;
    }

    project = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);

    memset(args, 0, sizeof(args));
    args[0].n = project;
    args[1].n = now;
    args[2].text = reason;
    args[2].is_text = 1;

    rc = store_steps(st, sql, sizeof(sql) / sizeof(sql[0]), args, 3,
                     "delete", name, err, errlen);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;

failed:

    store_rollback(st);
    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_project(shuttle_store_t *st, const char *name,
    shuttle_project_t *p, char *err, size_t errlen)
{
    int            rc;
    sqlite3_stmt  *stmt;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, STORE_PROJECT_COLUMNS
                         "WHERE p.name = ?1 AND p.deleted IS NULL",
                         err, errlen);
    if (stmt == NULL) {
        rc = -1;
        goto done;
    }

    store_bind_text(stmt, 1, name);

    rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW) {
        store_read_project(stmt, p);
        rc = 0;

    } else if (rc == SQLITE_DONE) {
        snprintf(err, errlen, "project %s not found", name);
        rc = SHUTTLE_STORE_NOT_FOUND;

    } else {
        store_error(st, err, errlen, "project %s", name);
        rc = -1;
    }

    sqlite3_finalize(stmt);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_deployment(shuttle_store_t *st, int64_t id,
    shuttle_deployment_t *d, char *err, size_t errlen)
{
    int            rc;
    sqlite3_stmt  *stmt;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, STORE_DEPLOYMENT_COLUMNS "WHERE d.id = ?1",
                         err, errlen);
    if (stmt == NULL) {
        rc = -1;
        goto done;
    }

    store_bind_int(stmt, 1, id, 1);

    rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW) {
        store_read_deployment(stmt, d);
        rc = 0;

    } else if (rc == SQLITE_DONE) {
        snprintf(err, errlen, "deployment %lld not found", (long long) id);
        rc = SHUTTLE_STORE_NOT_FOUND;

    } else {
        store_error(st, err, errlen, "deployment %lld", (long long) id);
        rc = -1;
    }

    sqlite3_finalize(stmt);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_state(shuttle_store_t *st, int64_t id,
    shuttle_deploy_tag_t *tag)
{
    int            rc;
    char           err[256];
    sqlite3_stmt  *stmt;

    rc = -1;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, "SELECT state FROM deployments WHERE id = ?1",
                         err, sizeof(err));

    if (stmt != NULL) {
        store_bind_int(stmt, 1, id, 1);

        if (sqlite3_step(stmt) == SQLITE_ROW) {
            *tag = shuttle_deploy_tag(
                       (const char *) sqlite3_column_text(stmt, 0));
            rc = 0;

        } else {
            rc = SHUTTLE_STORE_NOT_FOUND;
        }

        sqlite3_finalize(stmt);
    }

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_census(shuttle_store_t *st, uint64_t *count,
    uint64_t *projects, char *err, size_t errlen)
{
    int                   rc;
    sqlite3_stmt         *stmt;
    shuttle_deploy_tag_t  tag;

    memset(count, 0, (SHUTTLE_DEPLOY_LAST + 1) * sizeof(uint64_t));
    *projects = 0;

    pthread_mutex_lock(&st->lock);

    /* the projects' row last: the one whose state is NULL */

    stmt = store_prepare(st, "SELECT state, count(*) FROM deployments "
                         "GROUP BY state UNION ALL "
                         "SELECT NULL, count(*) FROM projects "
                         "WHERE deleted IS NULL", err, errlen);
    if (stmt == NULL) {
        rc = -1;
        goto done;
    }

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {

        if (sqlite3_column_type(stmt, 0) == SQLITE_NULL) {
            *projects = (uint64_t) sqlite3_column_int64(stmt, 1);
            continue;
        }

        tag = shuttle_deploy_tag((const char *) sqlite3_column_text(stmt, 0));
        count[tag] += (uint64_t) sqlite3_column_int64(stmt, 1);
    }

    if (rc != SQLITE_DONE) {
        store_error(st, err, errlen, "census");
        rc = -1;

    } else {
        rc = 0;
    }

    sqlite3_finalize(stmt);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_each_project(shuttle_store_t *st, const char *owner,
    shuttle_store_project_pt handler, void *data, char *err, size_t errlen)
{
    int                 rc;
    sqlite3_stmt       *stmt;
    shuttle_project_t   p;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, STORE_PROJECT_COLUMNS
                         "WHERE p.deleted IS NULL "
                         "AND (?1 IS NULL OR p.owner = ?1) ORDER BY p.name",
                         err, errlen);
    if (stmt == NULL) {
        rc = -1;
        goto done;
    }

    store_bind_text(stmt, 1, owner);

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        store_read_project(stmt, &p);

        if (handler(&p, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }

    if (rc != SQLITE_DONE) {
        store_error(st, err, errlen, "projects");
        rc = -1;

    } else {
        rc = 0;
    }

    sqlite3_finalize(stmt);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_each_deployment(shuttle_store_t *st, int64_t project_id,
    unsigned limit, shuttle_store_deployment_pt handler, void *data,
    char *err, size_t errlen)
{
    int64_t  args[] = { project_id, limit };

    return store_each_deployment(st, STORE_DEPLOYMENT_COLUMNS
                                 "WHERE d.project = ?1 ORDER BY d.id DESC "
                                 "LIMIT ?2", args, 2, ~0u, handler, data,
                                 err, errlen);
}


int
shuttle_store_each_in_state(shuttle_store_t *st, unsigned mask,
    shuttle_store_deployment_pt handler, void *data, char *err,
    size_t errlen)
{
    return store_each_deployment(st, STORE_DEPLOYMENT_COLUMNS
                                 "WHERE d.state <> 'deleted' ORDER BY d.id",
                                 NULL, 0, mask, handler, data, err, errlen);
}


/*
 * The deployments sql selects, its ?1..?nargs bound to args, those whose
 * state is in mask passed to handler (under the store's lock) until it
 * returns non-zero.  0, or -1 with err.
 */

static int
store_each_deployment(shuttle_store_t *st, const char *sql,
    const int64_t *args, int nargs, unsigned mask,
    shuttle_store_deployment_pt handler, void *data, char *err,
    size_t errlen)
{
    int                    rc, i;
    sqlite3_stmt          *stmt;
    shuttle_deployment_t  *d;

    d = malloc(sizeof(shuttle_deployment_t));
    if (d == NULL) {
        snprintf(err, errlen, "deployments: %s", strerror(ENOMEM));
        return -1;
    }

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, sql, err, errlen);
    if (stmt == NULL) {
        rc = -1;
        goto done;
    }

    for (i = 0; i < nargs; i++) {
        store_bind_int(stmt, i + 1, args[i], 1);
    }

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        store_read_deployment(stmt, d);

        if ((mask & (1u << d->state.tag)) == 0) {
            continue;
        }

        if (handler(d, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }

    if (rc != SQLITE_DONE) {
        store_error(st, err, errlen, "deployments");
        rc = -1;

    } else {
        rc = 0;
    }

    sqlite3_finalize(stmt);

done:

    pthread_mutex_unlock(&st->lock);

    free(d);

    return rc;
}


int
shuttle_store_each_transition(shuttle_store_t *st, int64_t id,
    shuttle_store_transition_pt handler, void *data, char *err,
    size_t errlen)
{
    int                    rc;
    sqlite3_stmt          *stmt;
    shuttle_transition_t   t;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, "SELECT state, at, reason FROM transitions "
                         "WHERE deployment = ?1 ORDER BY id", err, errlen);
    if (stmt == NULL) {
        rc = -1;
        goto done;
    }

    store_bind_int(stmt, 1, id, 1);

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        t.state = shuttle_deploy_tag(
                      (const char *) sqlite3_column_text(stmt, 0));
        t.at = sqlite3_column_int64(stmt, 1);
        t.reason = (const char *) sqlite3_column_text(stmt, 2);

        if (handler(&t, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }

    if (rc != SQLITE_DONE) {
        store_error(st, err, errlen, "deployment %lld: transitions",
                    (long long) id);
        rc = -1;

    } else {
        rc = 0;
    }

    sqlite3_finalize(stmt);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


/* the store's internals, called with the mutex held */

static void
store_error(shuttle_store_t *st, char *err, size_t errlen, const char *fmt,
    ...)
{
    int      n;
    va_list  args;

    n = snprintf(err, errlen, "store %s: ", st->path);

    if (n < 0 || (size_t) n >= errlen) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err + n, errlen - n, fmt, args);
    va_end(args);

    n = strlen(err);

    if ((size_t) n < errlen) {
        snprintf(err + n, errlen - n, ": %s", sqlite3_errmsg(st->db));
    }
}


static int
store_exec(shuttle_store_t *st, const char *sql, char *err, size_t errlen)
{
    char  *msg;

    msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "store %s: %s", st->path,
                 msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }

    return 0;
}


static sqlite3_stmt *
store_prepare(shuttle_store_t *st, const char *sql, char *err,
    size_t errlen)
{
    sqlite3_stmt  *stmt;

    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        store_error(st, err, errlen, "prepare");
        return NULL;
    }

    return stmt;
}


static int
store_begin(shuttle_store_t *st, char *err, size_t errlen)
{
    return store_exec(st, "BEGIN IMMEDIATE", err, errlen);
}


static int
store_commit(shuttle_store_t *st, char *err, size_t errlen)
{
    return store_exec(st, "COMMIT", err, errlen);
}


static void
store_rollback(shuttle_store_t *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        (void) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
}


static void
store_bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s == NULL) {
        (void) sqlite3_bind_null(stmt, i);

    } else {
        (void) sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
    }
}


static void
store_bind_int(sqlite3_stmt *stmt, int i, int64_t v, int set)
{
    if (set) {
        (void) sqlite3_bind_int64(stmt, i, v);

    } else {
        (void) sqlite3_bind_null(stmt, i);
    }
}


static void
store_copy(char *dst, size_t size, sqlite3_stmt *stmt, int i)
{
    const char  *s;

    s = (const char *) sqlite3_column_text(stmt, i);

    snprintf(dst, size, "%s", s ? s : "");
}


static int64_t
store_int(sqlite3_stmt *stmt, int i, int64_t dflt)
{
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL) {
        return dflt;
    }

    return sqlite3_column_int64(stmt, i);
}


static void
store_read_deployment(sqlite3_stmt *stmt, shuttle_deployment_t *d)
{
    shuttle_deploy_state_t  *s;

    memset(d, 0, sizeof(shuttle_deployment_t));

    d->id = sqlite3_column_int64(stmt, 0);
    d->project_id = sqlite3_column_int64(stmt, 1);
    store_copy(d->project, sizeof(d->project), stmt, 2);
    store_copy(d->owner, sizeof(d->owner), stmt, 3);
    store_copy(d->reason, sizeof(d->reason), stmt, 5);
    d->created = sqlite3_column_int64(stmt, 6);
    d->updated = sqlite3_column_int64(stmt, 7);
    d->build_ms = store_int(stmt, 16, -1);
    d->start_ms = store_int(stmt, 17, -1);

    s = &d->state;
    s->tag = shuttle_deploy_tag((const char *) sqlite3_column_text(stmt, 4));

    switch (s->tag) {

    case SHUTTLE_DEPLOY_QUEUED:
        store_copy(s->u.queued.upload, sizeof(s->u.queued.upload), stmt, 8);
        break;

    case SHUTTLE_DEPLOY_BUILDING:
        s->u.building.started = store_int(stmt, 9, 0);
        break;

    case SHUTTLE_DEPLOY_BUILT:
        store_copy(s->u.built.so, sizeof(s->u.built.so), stmt, 10);
        break;

    case SHUTTLE_DEPLOY_LOADING:
        s->u.loading.port = (uint16_t) store_int(stmt, 11, 0);
        s->u.loading.pid = (pid_t) store_int(stmt, 12, 0);
        break;

    case SHUTTLE_DEPLOY_RUNNING:
        s->u.running.port = (uint16_t) store_int(stmt, 11, 0);
        s->u.running.pid = (pid_t) store_int(stmt, 12, 0);
        s->u.running.started = store_int(stmt, 13, 0);
        s->u.running.idle_since = store_int(stmt, 18, 0);
        break;

    case SHUTTLE_DEPLOY_FAILED:
        memcpy(s->u.failed.reason, d->reason, sizeof(d->reason));
        break;

    case SHUTTLE_DEPLOY_SUPERSEDED:
        s->u.superseded.by = store_int(stmt, 14, 0);
        break;

    case SHUTTLE_DEPLOY_CRASHED:
        memcpy(s->u.crashed.reason, d->reason, sizeof(d->reason));
        store_copy(s->u.crashed.log, sizeof(s->u.crashed.log), stmt, 15);
        break;

    default:
        break;
    }
}


static void
store_read_project(sqlite3_stmt *stmt, shuttle_project_t *p)
{
    memset(p, 0, sizeof(shuttle_project_t));

    p->id = sqlite3_column_int64(stmt, 0);
    store_copy(p->name, sizeof(p->name), stmt, 1);
    store_copy(p->owner, sizeof(p->owner), stmt, 2);
    p->created = sqlite3_column_int64(stmt, 3);
    p->current = store_int(stmt, 4, 0);
    p->latest = store_int(stmt, 5, 0);
    p->updated = store_int(stmt, 6, p->created);
    p->idle_ms = store_int(stmt, 7, -1);
}


static int
store_record(shuttle_store_t *st, int64_t id, shuttle_deploy_tag_t tag,
    int64_t at, const char *reason, char *err, size_t errlen)
{
    int            rc;
    sqlite3_stmt  *stmt;

    stmt = store_prepare(st, "INSERT INTO transitions (deployment, state, "
                         "at, reason) VALUES (?1, ?2, ?3, ?4)", err, errlen);
    if (stmt == NULL) {
        return -1;
    }

    store_bind_int(stmt, 1, id, 1);
    store_bind_text(stmt, 2, shuttle_deploy_name(tag));
    store_bind_int(stmt, 3, at, 1);
    store_bind_text(stmt, 4, reason);

    rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : -1;

    if (rc != 0) {
        store_error(st, err, errlen, "deployment %lld: transition",
                    (long long) id);
    }

    sqlite3_finalize(stmt);

    return rc;
}


int
shuttle_store_resource_put(shuttle_store_t *st, const char *project,
    const char *owner, const char *kind, const char *name, const char *info,
    char *err, size_t errlen)
{
    int          changes;
    char         what[256];
    const char  *args[] = { project, owner, kind, name, info };

    snprintf(what, sizeof(what), "resource %s %s of %s", kind, name,
             project);

    if (store_run(st, "INSERT INTO resources (project, owner, kind, "
                  "name, info, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                  "ON CONFLICT (project, kind, name) DO UPDATE "
                  "SET info = ?5 WHERE resources.owner = ?2", args, 5, what,
                  &changes, err, errlen)
        != 0)
    {
        return -1;
    }

    if (changes == 0) {
        snprintf(err, errlen, "%s: it belongs to another key", what);
        return SHUTTLE_STORE_FORBIDDEN;
    }

    return 0;
}


int
shuttle_store_resource_get(shuttle_store_t *st, const char *project,
    const char *kind, const char *name, char *info, size_t infolen)
{
    int            rc;
    char           err[256];
    sqlite3_stmt  *stmt;

    rc = -1;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, "SELECT info FROM resources WHERE project = ?1 "
                         "AND kind = ?2 AND name = ?3", err, sizeof(err));

    if (stmt != NULL) {
        store_bind_text(stmt, 1, project);
        store_bind_text(stmt, 2, kind);
        store_bind_text(stmt, 3, name);

        if (sqlite3_step(stmt) == SQLITE_ROW) {
            store_copy(info, infolen, stmt, 0);
            rc = 0;

        } else {
            rc = SHUTTLE_STORE_NOT_FOUND;
        }

        sqlite3_finalize(stmt);
    }

    pthread_mutex_unlock(&st->lock);

    return rc;
}


/* the rows are copied out first: the handler may use the store */

typedef struct {
    char  *a;
    char  *b;
    char  *c;
} store_row3_t;


static int
store_rows(shuttle_store_t *st, const char *sql, const char *project,
    int ncols, store_row3_t **rows, size_t *n, char *err, size_t errlen)
{
    int            rc, i;
    size_t         nalloc;
    char         **col;
    sqlite3_stmt  *stmt;
    store_row3_t  *r, *grown;

    *rows = NULL;
    *n = 0;
    nalloc = 0;
    rc = -1;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, sql, err, errlen);

    if (stmt == NULL) {
        goto done;
    }

    store_bind_text(stmt, 1, project);

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == nalloc) {
            nalloc = nalloc ? nalloc * 2 : 8;
            grown = realloc(*rows, nalloc * sizeof(store_row3_t));

            if (grown == NULL) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                goto done;
            }

            *rows = grown;
        }

        r = &(*rows)[*n];
        memset(r, 0, sizeof(store_row3_t));
        (*n)++;

        for (i = 0; i < ncols; i++) {
            col = i == 0 ? &r->a : i == 1 ? &r->b : &r->c;
            *col = strdup(sqlite3_column_text(stmt, i)
                          ? (const char *) sqlite3_column_text(stmt, i) : "");

            if (*col == NULL) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                goto done;
            }
        }
    }

    if (rc != SQLITE_DONE) {
        store_error(st, err, errlen, "%s of %s", sql, project);
        rc = -1;
        goto done;
    }

    rc = 0;

done:

    if (stmt != NULL) {
        sqlite3_finalize(stmt);
    }

    pthread_mutex_unlock(&st->lock);

    return rc;
}


static void
store_rows_free(store_row3_t *rows, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(rows[i].a);
        free(rows[i].b);
        free(rows[i].c);
    }

    free(rows);
}


int
shuttle_store_each_resource(shuttle_store_t *st, const char *project,
    shuttle_store_resource_pt handler, void *data, char *err, size_t errlen)
{
    int            rc;
    size_t         i, n;
    store_row3_t  *rows;

    if (store_rows(st, "SELECT kind, name, info FROM resources "
                   "WHERE project = ?1 ORDER BY kind, name", project, 3,
                   &rows, &n, err, errlen)
        != 0)
    {
        store_rows_free(rows, n);
        return -1;
    }

    rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        rc = handler(rows[i].a, rows[i].b, rows[i].c, data);
    }

    store_rows_free(rows, n);

    return rc;
}


int
shuttle_store_each_secret(shuttle_store_t *st, const char *project,
    shuttle_store_secret_pt handler, void *data, char *err, size_t errlen)
{
    int            rc;
    size_t         i, n;
    store_row3_t  *rows;

    if (store_rows(st, "SELECT key, value FROM secrets WHERE project = ?1 "
                   "ORDER BY key", project, 2, &rows, &n, err, errlen)
        != 0)
    {
        store_rows_free(rows, n);
        return -1;
    }

    rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        rc = handler(rows[i].a, rows[i].b, data);
    }

    store_rows_free(rows, n);

    return rc;
}


int
shuttle_store_kept_owner(shuttle_store_t *st, const char *project,
    char *owner, size_t size)
{
    int            rc;
    char           err[256];
    sqlite3_stmt  *stmt;

    rc = -1;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, STORE_KEPT_OWNER "LIMIT 1", err, sizeof(err));

    if (stmt != NULL) {
        store_bind_text(stmt, 1, project);

        if (sqlite3_step(stmt) == SQLITE_ROW) {
            store_copy(owner, size, stmt, 0);
            rc = 0;

        } else {
            rc = SHUTTLE_STORE_NOT_FOUND;
        }

        sqlite3_finalize(stmt);
    }

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_purge(shuttle_store_t *st, const char *project,
    const char *owner, char *err, size_t errlen)
{
    int            rc;
    store_arg_t    args[2];

    static const char  *sql[] = {
        "DELETE FROM resources WHERE project = ?1 AND owner = ?2",
        "DELETE FROM secrets WHERE project = ?1 AND owner = ?2",
        "DELETE FROM uids WHERE project = ?1 AND owner = ?2"
    };

    memset(args, 0, sizeof(args));
    args[0].text = project;
    args[0].is_text = 1;
    args[1].text = owner;
    args[1].is_text = 1;

    pthread_mutex_lock(&st->lock);

    rc = store_begin(st, err, errlen) == 0
         ? store_steps(st, sql, sizeof(sql) / sizeof(sql[0]), args, 2,
                       "purge", project, err, errlen)
         : -1;

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_project_uid(shuttle_store_t *st, const char *project,
    uid_t lo, uid_t hi, const uid_t *avoid, size_t navoid, uid_t *uid,
    char *err, size_t errlen)
{
    int            rc, found;
    char           owner[SHUTTLE_KEY_MAX + 1];
    int64_t        used;
    uint64_t       cand;
    sqlite3_stmt  *stmt;

    rc = -1;
    stmt = NULL;

    pthread_mutex_lock(&st->lock);

    if (store_begin(st, err, errlen) != 0) {
        goto done;
    }

    /* the live project's owner, else the last one's of the name */

    stmt = store_prepare(st, "SELECT owner FROM projects WHERE name = ?1 "
                         "ORDER BY deleted IS NULL DESC, id DESC LIMIT 1",
                         err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_text(stmt, 1, project);

    if (sqlite3_step(stmt) != SQLITE_ROW) {
        snprintf(err, errlen, "uid of project %s: no such project",
                 project);
        rc = SHUTTLE_STORE_NOT_FOUND;
        goto failed;
    }

    store_copy(owner, sizeof(owner), stmt, 0);
    sqlite3_finalize(stmt);

    stmt = store_prepare(st, "SELECT uid FROM uids WHERE project = ?1",
                         err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_text(stmt, 1, project);

    found = 0;

    if (sqlite3_step(stmt) == SQLITE_ROW) {
        used = sqlite3_column_int64(stmt, 0);

        /* kept while it is still one a project may have */
        if (used >= lo && used <= hi && used != 0
            && !store_uid_avoided((uid_t) used, avoid, navoid))
        {
            *uid = (uid_t) used;
            rc = 0;
            sqlite3_finalize(stmt);
            stmt = NULL;
            store_rollback(st);     /* nothing written */
            goto done;
        }

        found = 1;
    }

    sqlite3_finalize(stmt);

    /* the lowest uid no row holds: walk the used ones in order */

    stmt = store_prepare(st, "SELECT uid FROM uids WHERE uid BETWEEN ?1 "
                         "AND ?2 ORDER BY uid", err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_int(stmt, 1, lo, 1);
    store_bind_int(stmt, 2, hi, 1);

    cand = lo > 0 ? lo : 1;

    for ( ;; ) {
        while (cand <= hi && store_uid_avoided((uid_t) cand, avoid, navoid))
        {
            cand++;
        }

        if (cand > hi) {
            break;
        }

        rc = sqlite3_step(stmt);

        if (rc != SQLITE_ROW) {
            break;
        }

        used = sqlite3_column_int64(stmt, 0);

        if ((uint64_t) used > cand) {
            break;
        }

        if ((uint64_t) used == cand) {
            cand++;
        }
    }

    if (rc != SQLITE_ROW && rc != SQLITE_DONE && cand <= hi) {
        store_error(st, err, errlen, "uid of project %s", project);
        rc = -1;
        goto failed;
    }

    rc = -1;
    sqlite3_finalize(stmt);

    if (cand > hi) {
        stmt = NULL;
        snprintf(err, errlen, "no free uid in %lu-%lu for project %s",
                 (unsigned long) lo, (unsigned long) hi, project);
        goto failed;
    }

    stmt = store_prepare(st, found
                         ? "UPDATE uids SET uid = ?1, owner = ?3 "
                           "WHERE project = ?2"
                         : "INSERT INTO uids (uid, project, owner, created) "
                           "VALUES (?1, ?2, ?3, ?4)", err, errlen);
    if (stmt == NULL) {
        goto failed;
    }

    store_bind_int(stmt, 1, (int64_t) cand, 1);
    store_bind_text(stmt, 2, project);
    store_bind_text(stmt, 3, owner);
    store_bind_int(stmt, 4, shuttle_now_ms(), !found);

    if (sqlite3_step(stmt) != SQLITE_DONE) {
        store_error(st, err, errlen, "uid %lu of project %s",
                    (unsigned long) cand, project);
        goto failed;
    }

    sqlite3_finalize(stmt);
    stmt = NULL;

    if (store_commit(st, err, errlen) != 0) {
        goto failed;
    }

    *uid = (uid_t) cand;
    rc = 0;
    goto done;

failed:

    if (stmt != NULL) {
        sqlite3_finalize(stmt);
    }

    store_rollback(st);

done:

    pthread_mutex_unlock(&st->lock);

    return rc;
}


static int
store_uid_avoided(uid_t uid, const uid_t *avoid, size_t navoid)
{
    size_t  i;

    for (i = 0; i < navoid; i++) {
        if (avoid[i] == uid) {
            return 1;
        }
    }

    return 0;
}


/*
 * One statement that writes: ?1..?nargs are args, ?(nargs + 1) the time
 * now; *changes (may be NULL) the rows it changed.  0, or -1 with err.
 */

/*
 * Each of the nsql statements, ?1..?nargs bound to args, run to its end,
 * then the transaction the caller began (under the lock) committed; or
 * rolled back, and -1 with err ("project PROJECT: WHAT: why").
 */

static int
store_steps(shuttle_store_t *st, const char *const *sql, size_t nsql,
    const store_arg_t *args, int nargs, const char *what,
    const char *project, char *err, size_t errlen)
{
    int            i, rc;
    size_t         k;
    sqlite3_stmt  *stmt;

    for (k = 0; k < nsql; k++) {
        stmt = store_prepare(st, sql[k], err, errlen);
        if (stmt == NULL) {
            return -1;
        }

        for (i = 0; i < nargs; i++) {
            if (args[i].is_text) {
                store_bind_text(stmt, i + 1, args[i].text);

            } else {
                store_bind_int(stmt, i + 1, args[i].n, 1);
            }
        }

        rc = sqlite3_step(stmt);

        if (rc != SQLITE_DONE) {
            store_error(st, err, errlen, "project %s: %s", project, what);
        }

        sqlite3_finalize(stmt);

        if (rc != SQLITE_DONE) {
            store_rollback(st);
            return -1;
        }
    }

    if (store_commit(st, err, errlen) != 0) {
        store_rollback(st);
        return -1;
    }

    return 0;
}


static int
store_run(shuttle_store_t *st, const char *sql, const char *const *args,
    int nargs, const char *what, int *changes, char *err, size_t errlen)
{
    int            rc, i;
    sqlite3_stmt  *stmt;

    rc = -1;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st, sql, err, errlen);

    if (stmt != NULL) {
        for (i = 0; i < nargs; i++) {
            store_bind_text(stmt, i + 1, args[i]);
        }

        if (sqlite3_bind_parameter_count(stmt) > nargs) {
            store_bind_int(stmt, nargs + 1, shuttle_now_ms(), 1);
        }

        if (sqlite3_step(stmt) == SQLITE_DONE) {
            rc = 0;

            if (changes != NULL) {
                *changes = sqlite3_changes(st->db);
            }

        } else {
            store_error(st, err, errlen, "%s", what);
        }

        sqlite3_finalize(stmt);
    }

    pthread_mutex_unlock(&st->lock);

    return rc;
}


int
shuttle_store_secret_set(shuttle_store_t *st, const char *project,
    const char *owner, const char *key, const char *value, char *err,
    size_t errlen)
{
    int          changes;
    char         what[256];
    const char  *args[] = { project, owner, key, value };

    /* the message names the key, never the value */
    snprintf(what, sizeof(what), "secret %s of %s", key, project);

    /* not under a name another key's live project or kept data holds */

    if (store_run(st, "INSERT INTO secrets (project, owner, key, value, "
                  "updated) SELECT ?1, ?2, ?3, ?4, ?5 "
                  "WHERE NOT EXISTS (SELECT 1 FROM projects WHERE name = ?1 "
                  "AND deleted IS NULL AND owner <> ?2) "
                  "AND NOT EXISTS (SELECT 1 FROM (" STORE_KEPT_OWNER ") "
                  "WHERE owner <> ?2) "
                  "ON CONFLICT (project, key) DO UPDATE SET "
                  "value = ?4, updated = ?5 WHERE secrets.owner = ?2", args,
                  4, what, &changes, err, errlen)
        != 0)
    {
        return -1;
    }

    if (changes == 0) {
        snprintf(err, errlen, "%s: it belongs to another key", what);
        return SHUTTLE_STORE_FORBIDDEN;
    }

    return 0;
}


int
shuttle_store_secret_del(shuttle_store_t *st, const char *project,
    const char *owner, const char *key, char *err, size_t errlen)
{
    int          changes;
    char         what[256];
    const char  *args[] = { project, key, owner };

    snprintf(what, sizeof(what), "secret %s of %s", key, project);

    if (store_run(st, "DELETE FROM secrets WHERE project = ?1 AND key = ?2 "
                  "AND owner = ?3", args, 3, what, &changes, err, errlen)
        != 0)
    {
        return -1;
    }

    return changes ? 0 : SHUTTLE_STORE_NOT_FOUND;
}
