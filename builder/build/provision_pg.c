
/*
 * Provisioning: the PostgreSQL side (the admin connection, the guard, the
 * roles, databases and DSNs) and the helpers (provision_int.h).
 */

#include "provision.h"
#include "provision_int.h"


static void prov_pg_guard(PGconn *pg);
static void prov_pg_notice(void *arg, const char *message);
static const char *prov_pg_opt(shuttle_serve_t *s, const char *key,
    char *buf, size_t size);
static void prov_dsn_add(char *buf, size_t size, const char *key,
    const char *value);
static void prov_chomp(char *s);


/* mkdir -p, 0755: nginx's workers go through DATA/static */

int
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

void
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


PGconn *
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

int
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


int
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

int
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

int
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

char *
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

const char *
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
