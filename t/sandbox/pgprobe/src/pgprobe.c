/*
 * pgprobe: a hostile tenant's service on PostgreSQL, for
 * t/postgres-tenants.t.  It connects with what the platform gave it (its
 * role, its password, the server's address) and answers with what
 * happened.
 *
 *   GET /where                 the host and port of its own connection
 *   GET /db?name=D             a new connection to database D, its role's
 *   GET /hold?n=N              opens N more connections to its own
 *                              database and keeps those it got
 *   GET /release               closes those
 */

#include <shuttle.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


SHUTTLE_POSTGRES("main");


#define PGPROBE_MAX  256

static pthread_mutex_t  pgprobe_lock = PTHREAD_MUTEX_INITIALIZER;
static PGconn          *pgprobe_held[PGPROBE_MAX];
static int              pgprobe_nheld;


/* a connection as the service's own role, to database db */

static PGconn *
pgprobe_connect(shuttle_req *req, const char *db)
{
    char    dsn[1024];
    PGconn  *own;

    own = shuttle_postgres(shuttle_req_app(req), "main");
    if (own == NULL) {
        return NULL;
    }

    snprintf(dsn, sizeof(dsn), "host='%s' port='%s' user='%s' "
             "password='%s' dbname='%s' connect_timeout=5", PQhost(own),
             PQport(own), PQuser(own), PQpass(own), db ? db : PQdb(own));

    return PQconnectdb(dsn);
}


static void
pgprobe_where(shuttle_req *req, shuttle_res *res)
{
    PGconn  *own;

    own = shuttle_postgres(shuttle_req_app(req), "main");
    if (own == NULL) {
        shuttle_printf(res, 500, "no connection\n");
        return;
    }

    shuttle_printf(res, 200, "host=%s port=%s\n", PQhost(own), PQport(own));
}


static void
pgprobe_db(shuttle_req *req, shuttle_res *res)
{
    PGconn  *pg;

    pg = pgprobe_connect(req, shuttle_req_query(req, "name"));

    if (pg == NULL) {
        shuttle_printf(res, 500, "no connection of its own\n");
        return;
    }

    if (PQstatus(pg) == CONNECTION_OK) {
        shuttle_printf(res, 200, "connected to %s\n", PQdb(pg));
    } else {
        shuttle_printf(res, 200, "refused: %s", PQerrorMessage(pg));
    }

    PQfinish(pg);
}


static void
pgprobe_hold(shuttle_req *req, shuttle_res *res)
{
    int          i, n, got;
    char         last[512];
    PGconn      *pg;
    const char  *arg;

    arg = shuttle_req_query(req, "n");
    n = arg ? atoi(arg) : 1;
    got = 0;
    last[0] = '\0';

    pthread_mutex_lock(&pgprobe_lock);

    for (i = 0; i < n && pgprobe_nheld < PGPROBE_MAX; i++) {
        pg = pgprobe_connect(req, NULL);

        if (pg != NULL && PQstatus(pg) == CONNECTION_OK) {
            pgprobe_held[pgprobe_nheld++] = pg;
            got++;
            continue;
        }

        if (pg != NULL) {
            snprintf(last, sizeof(last), "%s", PQerrorMessage(pg));
            PQfinish(pg);
        }
    }

    pthread_mutex_unlock(&pgprobe_lock);

    shuttle_printf(res, 200, "held %d\n%s", got, last);
}


static void
pgprobe_release(shuttle_req *req, shuttle_res *res)
{
    int  n;

    pthread_mutex_lock(&pgprobe_lock);

    n = pgprobe_nheld;

    while (pgprobe_nheld > 0) {
        PQfinish(pgprobe_held[--pgprobe_nheld]);
    }

    pthread_mutex_unlock(&pgprobe_lock);

    shuttle_printf(res, 200, "released %d\n", n);
}


SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/where", pgprobe_where);
    shuttle_get(app, "/db", pgprobe_db);
    shuttle_get(app, "/hold", pgprobe_hold);
    shuttle_get(app, "/release", pgprobe_release);
    return 0;
}
