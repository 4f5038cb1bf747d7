
/*
 * The builder's state in SQLite (store.h): the database itself, opened,
 * closed and verified, its schema and migrations.
 */


#include "store_int.h"


static int store_migrate(shuttle_store_t *st, char *err, size_t errlen);
static int store_has_journal(const char *path);
static int store_scan_projects(shuttle_store_t *st, char *err,
    size_t errlen);
static void store_reserve(shuttle_store_t *st);
static int store_names_add(store_names_t *a, const char *name);
static int store_names_cmp(const void *one, const void *two);
static void store_names_free(store_names_t *a);
static char *store_uri(const char *path, const char *query);


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
