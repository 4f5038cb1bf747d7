
/*
 * Unit tests of the deployment state machine (builder/state.c) and of the
 * builder's store (builder/store.c), in TAP.  The database lives in a
 * mkdtemp directory under /tmp, removed at the end.
 */


#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extract.h"
#include "state.h"
#include "store.h"


#define ERRLEN  512


static char  tmpdir[] = "/tmp/builder-store.XXXXXX";
static char  err[ERRLEN];

#define TAP_LAST_ERROR  err
#include "tap.h"


static int to(shuttle_store_t *st, int64_t id, shuttle_deploy_tag_t tag,
    int64_t *prev);
static long count(const char *db, const char *sql);
static const char *text(const char *db, const char *sql);
static int text_row(void *data, int n, char **v, char **names);
static int count_row(void *data, int n, char **v, char **names);
static int each_count(const shuttle_deployment_t *d, void *data);


/* a transition with the data of the state made up */

static int
to(shuttle_store_t *st, int64_t id, shuttle_deploy_tag_t tag, int64_t *prev)
{
    shuttle_deploy_state_t  s;

    memset(&s, 0, sizeof(shuttle_deploy_state_t));
    s.tag = tag;

    switch (tag) {

    case SHUTTLE_DEPLOY_BUILDING:
        s.u.building.started = 1;
        break;

    case SHUTTLE_DEPLOY_BUILT:
        strcpy(s.u.built.so, "/x/service.so");
        break;

    case SHUTTLE_DEPLOY_LOADING:
        s.u.loading.port = 20001;
        break;

    case SHUTTLE_DEPLOY_RUNNING:
        s.u.running.port = 20001;
        s.u.running.pid = 4242;
        s.u.running.started = 2;
        break;

    case SHUTTLE_DEPLOY_FAILED:
        strcpy(s.u.failed.reason, "build failed: cc exited with status 1");
        break;

    case SHUTTLE_DEPLOY_CRASHED:
        strcpy(s.u.crashed.reason, "loader crashed");
        strcpy(s.u.crashed.log, "last words");
        break;

    case SHUTTLE_DEPLOY_SUPERSEDED:
        s.u.superseded.by = 99;
        break;

    default:
        break;
    }

    return shuttle_store_transition(st, id, &s, NULL, prev, err, ERRLEN);
}


static long
count(const char *db, const char *sql)
{
    long      n;
    sqlite3  *h;

    n = -1;

    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        (void) sqlite3_exec(h, sql, count_row, &n, NULL);
    }

    sqlite3_close(h);

    return n;
}


static const char *
text(const char *db, const char *sql)
{
    sqlite3      *h;
    static char   buf[256];

    buf[0] = '\0';

    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        (void) sqlite3_exec(h, sql, text_row, buf, NULL);
    }

    sqlite3_close(h);

    return buf;
}


static int
text_row(void *data, int n, char **v, char **names)
{
    snprintf(data, 256, "%s", v[0] ? v[0] : "");
    return 0;
}


static int
count_row(void *data, int n, char **v, char **names)
{
    *(long *) data = v[0] ? atol(v[0]) : -1;
    return 0;
}


static int
each_count(const shuttle_deployment_t *d, void *data)
{
    (*(int *) data)++;
    return 0;
}


int
main(void)
{
    int                    rc, n;
    char                   db[256], sql[256];
    int64_t                a, b, c, prev;
    shuttle_store_t       *st;
    shuttle_project_t      p;
    shuttle_deployment_t   d;
    shuttle_deploy_tag_t   tag;

    if (mkdtemp(tmpdir) == NULL) {
        printf("1..0 # skip mkdtemp: cannot make %s\n", tmpdir);
        return 0;
    }

    /* the state machine */

    ok(shuttle_deploy_can(SHUTTLE_DEPLOY_QUEUED, SHUTTLE_DEPLOY_BUILDING)
       && shuttle_deploy_can(SHUTTLE_DEPLOY_BUILDING, SHUTTLE_DEPLOY_BUILT)
       && shuttle_deploy_can(SHUTTLE_DEPLOY_BUILT, SHUTTLE_DEPLOY_LOADING)
       && shuttle_deploy_can(SHUTTLE_DEPLOY_LOADING, SHUTTLE_DEPLOY_RUNNING)
       && shuttle_deploy_can(SHUTTLE_DEPLOY_RUNNING,
                             SHUTTLE_DEPLOY_SUPERSEDED),
       "queued, building, built, loading, running, superseded");
    ok(shuttle_deploy_can(SHUTTLE_DEPLOY_RUNNING, SHUTTLE_DEPLOY_RUNNING),
       "running -> running (a new loader)");
    ok(shuttle_deploy_can(SHUTTLE_DEPLOY_SUPERSEDED, SHUTTLE_DEPLOY_LOADING),
       "superseded -> loading (a rollback)");
    ok(!shuttle_deploy_can(SHUTTLE_DEPLOY_QUEUED, SHUTTLE_DEPLOY_RUNNING),
       "queued -> running: refused");
    ok(!shuttle_deploy_can(SHUTTLE_DEPLOY_FAILED, SHUTTLE_DEPLOY_LOADING),
       "failed -> loading: refused");
    ok(!shuttle_deploy_can(SHUTTLE_DEPLOY_CRASHED, SHUTTLE_DEPLOY_RUNNING),
       "crashed -> running: refused");

    for (n = 0, tag = SHUTTLE_DEPLOY_NONE; tag <= SHUTTLE_DEPLOY_LAST; tag++) {
        n += shuttle_deploy_can(SHUTTLE_DEPLOY_DELETED, tag);
    }

    ok(n == 0, "deleted -> anything: refused");

    for (n = 0, tag = SHUTTLE_DEPLOY_QUEUED; tag < SHUTTLE_DEPLOY_DELETED;
         tag++)
    {
        n += shuttle_deploy_can(tag, SHUTTLE_DEPLOY_DELETED);
    }

    ok(n == SHUTTLE_DEPLOY_DELETED - SHUTTLE_DEPLOY_QUEUED,
       "anything but deleted -> deleted");

    for (n = 0, tag = SHUTTLE_DEPLOY_QUEUED; tag <= SHUTTLE_DEPLOY_LAST;
         tag++)
    {
        n += shuttle_deploy_tag(shuttle_deploy_name(tag)) == tag;
    }

    ok(n == SHUTTLE_DEPLOY_LAST, "every state's name is lowercase and "
       "reads back (%s ... %s)", shuttle_deploy_name(SHUTTLE_DEPLOY_QUEUED),
       shuttle_deploy_name(SHUTTLE_DEPLOY_DELETED));

    /* the store */

    snprintf(db, sizeof(db), "%s/shuttle.db", tmpdir);

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    if (!ok(st != NULL, "a new store")) {
        printf("1..%d\n", tap_n);
        return 1;
    }

    ok(count(db, "PRAGMA user_version") == SHUTTLE_STORE_SCHEMA,
       "schema version %d (PRAGMA user_version)", SHUTTLE_STORE_SCHEMA);
    ok(strcmp(text(db, "PRAGMA journal_mode"), "wal") == 0,
       "journal_mode wal");

    rc = shuttle_store_enqueue(st, "hello", "alice", &a, err, ERRLEN);
    ok(rc == 0 && a > 0, "alice's first upload: project hello, #%lld",
       (long long) a);

    rc = shuttle_store_project(st, "hello", &p, err, ERRLEN);
    ok(rc == 0 && strcmp(p.owner, "alice") == 0 && p.latest == a
       && p.current == 0, "hello belongs to alice, #%lld latest, none "
       "current", (long long) a);

    rc = shuttle_store_deployment(st, a, &d, err, ERRLEN);
    snprintf(sql, sizeof(sql), "%s/projects/hello/deployments/%lld/"
             "upload.tar.gz", tmpdir, (long long) a);
    ok(rc == 0 && d.state.tag == SHUTTLE_DEPLOY_QUEUED
       && strcmp(d.state.u.queued.upload, sql) == 0,
       "queued, its upload path in its state");

    rc = shuttle_store_enqueue(st, "hello", "bob", &b, err, ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN, "bob's upload to hello: forbidden "
       "(%s)", err);
    ok(count(db, "SELECT count(*) FROM deployments") == 1,
       "... and nothing written");

    ok(to(st, a, SHUTTLE_DEPLOY_BUILDING, NULL) == 0
       && to(st, a, SHUTTLE_DEPLOY_BUILT, NULL) == 0
       && to(st, a, SHUTTLE_DEPLOY_LOADING, NULL) == 0
       && to(st, a, SHUTTLE_DEPLOY_RUNNING, &prev) == 0,
       "#%lld: building, built, loading, running", (long long) a);
    ok(prev == 0, "... there was no current deployment before");

    shuttle_store_project(st, "hello", &p, err, ERRLEN);
    ok(p.current == a, "... it is current now");

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM transitions "
             "WHERE deployment = %lld", (long long) a);
    ok(count(db, sql) == 5, "... five transitions recorded");

    rc = to(st, a, SHUTTLE_DEPLOY_BUILDING, NULL);
    ok(rc == SHUTTLE_STORE_REFUSED, "running -> building: refused (%s)",
       err);
    ok(count(db, sql) == 5
       && shuttle_store_state(st, a, &tag) == 0
       && tag == SHUTTLE_DEPLOY_RUNNING,
       "... still running, no transition recorded");

    rc = shuttle_store_deployment(st, a, &d, err, ERRLEN);
    ok(rc == 0 && d.state.u.running.port == 20001
       && d.state.u.running.pid == 4242,
       "running holds its port and pid");

    ok(shuttle_store_set_loader(st, a, 0, 0, err, ERRLEN) == 0
       && shuttle_store_deployment(st, a, &d, err, ERRLEN) == 0
       && d.state.tag == SHUTTLE_DEPLOY_RUNNING
       && d.state.u.running.port == 0,
       "running with no loader (the builder stopped): still running");
    ok(count(db, sql) == 5, "... not a transition");

    shuttle_store_enqueue(st, "hello", "alice", &b, err, ERRLEN);
    rc = to(st, b, SHUTTLE_DEPLOY_BUILDING, NULL)
         || to(st, b, SHUTTLE_DEPLOY_BUILT, NULL)
         || to(st, b, SHUTTLE_DEPLOY_LOADING, NULL)
         || to(st, b, SHUTTLE_DEPLOY_RUNNING, &prev);
    ok(rc == 0 && prev == a, "#%lld runs: the previous current was #%lld",
       (long long) b, (long long) prev);
    ok(to(st, a, SHUTTLE_DEPLOY_SUPERSEDED, NULL) == 0
       && shuttle_store_project(st, "hello", &p, err, ERRLEN) == 0
       && p.current == b,
       "#%lld superseded, #%lld stays current", (long long) a,
       (long long) b);

    ok(to(st, b, SHUTTLE_DEPLOY_CRASHED, NULL) == 0
       && shuttle_store_project(st, "hello", &p, err, ERRLEN) == 0
       && p.current == 0,
       "#%lld crashed: no current deployment", (long long) b);
    ok(shuttle_store_deployment(st, b, &d, err, ERRLEN) == 0
       && strcmp(d.state.u.crashed.log, "last words") == 0
       && strcmp(d.reason, "loader crashed") == 0,
       "... its reason and log lines kept");

    shuttle_store_enqueue(st, "other", "bob", &c, err, ERRLEN);

    n = 0;
    shuttle_store_each_in_state(st, (1u << SHUTTLE_DEPLOY_QUEUED)
                                    | (1u << SHUTTLE_DEPLOY_CRASHED),
                                each_count, &n, err, ERRLEN);
    ok(n == 2, "deployments by state: one queued, one crashed");

    rc = shuttle_store_delete_project(st, "hello", "project deleted", err,
                                      ERRLEN);
    ok(rc == 0, "delete hello");
    ok(shuttle_store_state(st, a, &tag) == 0 && tag == SHUTTLE_DEPLOY_DELETED
       && shuttle_store_state(st, b, &tag) == 0
       && tag == SHUTTLE_DEPLOY_DELETED,
       "... its deployments are deleted");
    ok(shuttle_store_project(st, "hello", &p, err, ERRLEN)
       == SHUTTLE_STORE_NOT_FOUND, "... the project is gone");
    ok(to(st, a, SHUTTLE_DEPLOY_RUNNING, NULL) == SHUTTLE_STORE_REFUSED,
       "... and a deleted deployment moves no more");
    ok(shuttle_store_delete_project(st, "hello", "again", err, ERRLEN)
       == SHUTTLE_STORE_NOT_FOUND, "delete it again: not found");

    rc = shuttle_store_enqueue(st, "hello", "bob", &c, err, ERRLEN);
    ok(rc == 0 && shuttle_store_project(st, "hello", &p, err, ERRLEN) == 0
       && strcmp(p.owner, "bob") == 0,
       "the name is free: bob's hello");
    ok(c > b, "deployment ids are never reused (#%lld)", (long long) c);

    shuttle_store_close(st);

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    ok(st != NULL && shuttle_store_project(st, "hello", &p, err, ERRLEN) == 0
       && strcmp(p.owner, "bob") == 0,
       "opened again: the same state");
    shuttle_store_close(st);

    {
        sqlite3  *h;

        sqlite3_open(db, &h);
        sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL);
        sqlite3_close(h);
    }

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    ok(st == NULL && strstr(err, "schema version 99 is newer") != NULL,
       "a newer schema: refused (%s)", err);

    shuttle_rmtree(tmpdir);

    return tap_done();
}
