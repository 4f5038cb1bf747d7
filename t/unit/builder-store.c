
/*
 * Unit tests of the deployment state machine (builder/state.c) and of the
 * builder's store (builder/store/), in TAP.  The database lives in a
 * mkdtemp directory under /tmp, removed at the end.
 */


#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "extract.h"
#include "fsafe.h"
#include "state.h"
#include "store.h"
#include "store_int.h"


#define ERRLEN  512


static char  tmpdir[] = "/tmp/builder-store.XXXXXX";
static char  err[ERRLEN];

#define TAP_LAST_ERROR  err
#include "tap.h"


static int to(shuttle_store_t *st, int64_t id, shuttle_deploy_tag_t tag,
    int64_t *prev);
static long count(const char *db, const char *sql);
static long synchronous(shuttle_store_t *st);
static const char *text(const char *db, const char *sql);
static int text_row(void *data, int n, char **v, char **names);
static int count_row(void *data, int n, char **v, char **names);
static int each_count(const shuttle_deployment_t *d, void *data);
static void tenants(shuttle_store_t *st, const char *db);
static void fail(shuttle_store_t *st, int64_t id);
static int exists(const char *db, const char *suffix);
static char *slurp(const char *path, size_t *len);
static void spill(const char *path, const char *bytes, size_t len);
static void damaged(const char *db);
static void ids_after_restore(const char *db);
static void killed_writer(const char *db);


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


/* PRAGMA synchronous of the store's own connection (store_int.h) */

static long
synchronous(shuttle_store_t *st)
{
    long           v;
    sqlite3_stmt  *stmt;

    v = -1;

    if (sqlite3_prepare_v2(st->db, "PRAGMA synchronous", -1, &stmt, NULL)
        == SQLITE_OK)
    {
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            v = sqlite3_column_int(stmt, 0);
        }

        sqlite3_finalize(stmt);
    }

    return v;
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


/* a build that failed */

static void
fail(shuttle_store_t *st, int64_t id)
{
    (void) to(st, id, SHUTTLE_DEPLOY_BUILDING, NULL);
    (void) to(st, id, SHUTTLE_DEPLOY_FAILED, NULL);
}


/* tenants: uids, names held by kept data, projects per key */

static void
tenants(shuttle_store_t *st, const char *db)
{
    int                    rc;
    uid_t                  u1, u2, u;
    int64_t                a, b, c2;
    shuttle_project_t      p;
    shuttle_deployment_t   d;
    static const uid_t     avoid[] = { 200000, 65534 };

    /* uids */

    shuttle_store_enqueue(st, "u1", "alice", 0, &a, err, ERRLEN);
    rc = shuttle_store_project_uid(st, "u1", 200000, 200009, avoid, 2, &u1,
                                   err, ERRLEN);
    ok(rc == 0 && u1 == 200001, "u1's uid: the lowest free, not avoided "
       "(%u)", (unsigned) u1);
    ok(shuttle_store_project_uid(st, "u1", 200000, 200009, avoid, 2, &u,
                                 err, ERRLEN) == 0 && u == u1,
       "... the same again");

    shuttle_store_enqueue(st, "u2", "bob", 0, &b, err, ERRLEN);
    rc = shuttle_store_project_uid(st, "u2", 200000, 200009, avoid, 2, &u2,
                                   err, ERRLEN);
    ok(rc == 0 && u2 == 200002, "u2's uid: the next one (%u)",
       (unsigned) u2);

    shuttle_store_enqueue(st, "u3", "bob", 0, &b, err, ERRLEN);
    rc = shuttle_store_project_uid(st, "u3", 0, 1, NULL, 0, &u, err,
                                   ERRLEN);
    ok(rc == 0 && u == 1, "a range from 0: never uid 0 (%u)", (unsigned) u);

    shuttle_store_enqueue(st, "u4", "bob", 0, &b, err, ERRLEN);
    rc = shuttle_store_project_uid(st, "u4", 200001, 200002, NULL, 0, &u,
                                   err, ERRLEN);
    ok(rc == -1 && strcmp(err, "no free uid in 200001-200002 for project "
                          "u4") == 0, "a range used up: %s", err);
    ok(shuttle_store_project_uid(st, "nobody", 200000, 200009, NULL, 0, &u,
                                 err, ERRLEN) == SHUTTLE_STORE_NOT_FOUND,
       "no uid for a project that does not exist");
    ok(count(db, "SELECT count(*) FROM uids")
       == count(db, "SELECT count(DISTINCT uid) FROM uids"),
       "no uid shared");

    to(st, a, SHUTTLE_DEPLOY_BUILDING, NULL);
    to(st, a, SHUTTLE_DEPLOY_BUILT, NULL);
    to(st, a, SHUTTLE_DEPLOY_LOADING, NULL);
    to(st, a, SHUTTLE_DEPLOY_RUNNING, NULL);
    shuttle_store_delete_project(st, "u1", "deleted", err, ERRLEN);
    shuttle_store_enqueue(st, "u1", "alice", 0, &a, err, ERRLEN);
    ok(shuttle_store_project_uid(st, "u1", 200000, 200009, avoid, 2, &u,
                                 err, ERRLEN) == 0 && u == u1,
       "u1 deleted and deployed again: the same uid");

    shuttle_store_delete_project(st, "u1", "deleted", err, ERRLEN);
    rc = shuttle_store_enqueue(st, "u1", "bob", 0, &b, err, ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN && strstr(err, "held by another key"),
       "deleted, its uid kept: bob cannot take u1 (%s)", err);

    ok(shuttle_store_purge(st, "u1", "bob", err, ERRLEN) == 0
       && shuttle_store_enqueue(st, "u1", "bob", 0, &b, err, ERRLEN)
          == SHUTTLE_STORE_FORBIDDEN, "bob's purge of u1 frees nothing");
    ok(shuttle_store_purge(st, "u1", "alice", err, ERRLEN) == 0
       && count(db, "SELECT count(*) FROM uids WHERE project = 'u1'") == 0,
       "alice's purge of u1 frees its uid");

    shuttle_store_enqueue(st, "u5", "carol", 0, &b, err, ERRLEN);
    ok(shuttle_store_project_uid(st, "u5", 200000, 200009, avoid, 2, &u,
                                 err, ERRLEN) == 0 && u == u1,
       "... which the next project gets (%u)", (unsigned) u);
    ok(shuttle_store_enqueue(st, "u1", "bob", 0, &b, err, ERRLEN) == 0,
       "and bob may take u1 now");

    /* a project that never ran holds nothing */

    shuttle_store_enqueue(st, "flop", "alice", 0, &a, err, ERRLEN);
    rc = shuttle_store_enqueue(st, "flop", "bob", 0, &b, err, ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN, "alice's first flop is queued: bob "
       "cannot take it");
    shuttle_store_project_uid(st, "flop", 200000, 200009, avoid, 2, &u,
                              err, ERRLEN);
    fail(st, a);
    rc = shuttle_store_enqueue(st, "flop", "bob", 0, &b, err, ERRLEN);
    ok(rc == 0 && shuttle_store_project(st, "flop", &p, err, ERRLEN) == 0
       && strcmp(p.owner, "bob") == 0 && p.latest == b,
       "its build failed, it never ran: bob takes flop");
    ok(shuttle_store_deployment(st, a, &d, err, ERRLEN) == 0
       && strcmp(d.owner, "alice") == 0
       && d.state.tag == SHUTTLE_DEPLOY_FAILED,
       "... alice's failed #%lld is still hers to read", (long long) a);
    ok(count(db, "SELECT count(*) FROM uids WHERE project = 'flop' "
             "AND owner = 'alice'") == 0,
       "... and the uid of its build is freed");
    ok(shuttle_store_project_uid(st, "flop", 200000, 200009, avoid, 2, &u,
                                 err, ERRLEN) == 0
       && count(db, "SELECT count(*) FROM uids WHERE project = 'flop' "
                "AND owner = 'bob'") == 1, "bob's flop has a uid of its own");

    /* secrets kept under a name hold it; another key's are not touched */

    shuttle_store_secret_set(st, "sec", "alice", "TOKEN", "a", err, ERRLEN);
    rc = shuttle_store_enqueue(st, "sec", "bob", 0, &b, err, ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN, "alice's secrets hold sec: bob's "
       "upload refused (%s)", err);
    ok(count(db, "SELECT count(*) FROM projects WHERE name = 'sec'") == 0,
       "... nothing created");
    rc = shuttle_store_secret_set(st, "sec", "bob", "TOKEN", "b", err,
                                  ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN && strcmp(text(db, "SELECT value FROM "
       "secrets WHERE project = 'sec'"), "a") == 0,
       "bob cannot overwrite alice's secret (%s)", err);
    rc = shuttle_store_secret_set(st, "sec", "bob", "OTHER", "b", err,
                                  ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN && count(db, "SELECT count(*) FROM "
       "secrets WHERE project = 'sec'") == 1,
       "nor add one of his under alice's name");
    rc = shuttle_store_secret_set(st, "u5", "bob", "OTHER", "b", err,
                                  ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN, "nor under carol's live u5");
    ok(shuttle_store_secret_del(st, "sec", "bob", "TOKEN", err, ERRLEN)
       == SHUTTLE_STORE_NOT_FOUND
       && count(db, "SELECT count(*) FROM secrets WHERE project = 'sec'")
          == 1, "nor delete it");
    rc = shuttle_store_resource_put(st, "sec", "bob", "sqlite", "main",
                                    "{}", err, ERRLEN);
    ok(rc == 0, "a resource row of bob's beside it (a legacy mix)");
    rc = shuttle_store_resource_put(st, "sec", "alice", "sqlite", "main",
                                    "{\"x\":1}", err, ERRLEN);
    ok(rc == SHUTTLE_STORE_FORBIDDEN, "... alice cannot take it over (%s)",
       err);

    /* projects per key */

    ok(shuttle_store_enqueue(st, "c1", "dave", 2, &a, err, ERRLEN) == 0
       && shuttle_store_enqueue(st, "c2", "dave", 2, &c2, err, ERRLEN) == 0,
       "dave: two projects with a limit of 2");
    rc = shuttle_store_enqueue(st, "c3", "dave", 2, &b, err, ERRLEN);
    ok(rc == SHUTTLE_STORE_LIMIT && strcmp(err, "key dave has 2 projects, "
       "the limit (--key-projects 2): delete one to deploy project c3")
       == 0, "a third: refused (%s)", err);
    ok(count(db, "SELECT count(*) FROM projects WHERE name = 'c3'") == 0,
       "... nothing created");
    ok(shuttle_store_enqueue(st, "c1", "dave", 2, &a, err, ERRLEN) == 0,
       "a redeploy of c1 at the limit: queued");

    shuttle_store_enqueue(st, "c2", "dave", 2, &b, err, ERRLEN);
    fail(st, c2);
    fail(st, b);
    ok(shuttle_store_enqueue(st, "c3", "dave", 2, &b, err, ERRLEN) == 0,
       "c2's builds all failed: it does not count, c3 is created");
    rc = shuttle_store_enqueue(st, "c2", "dave", 2, &b, err, ERRLEN);
    ok(rc == SHUTTLE_STORE_LIMIT, "... and c2 again is over the limit");
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

    rc = shuttle_store_enqueue(st, "hello", "alice", 0, &a, err, ERRLEN);
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

    rc = shuttle_store_enqueue(st, "hello", "bob", 0, &b, err, ERRLEN);
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
    ok(synchronous(st) == 2, "the store's connection syncs its commits "
       "again after the unsynced ones (PRAGMA synchronous %ld, FULL is 2)",
       synchronous(st));

    shuttle_store_enqueue(st, "hello", "alice", 0, &b, err, ERRLEN);
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

    shuttle_store_enqueue(st, "other", "bob", 0, &c, err, ERRLEN);

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

    rc = shuttle_store_enqueue(st, "hello", "bob", 0, &c, err, ERRLEN);
    ok(rc == 0 && shuttle_store_project(st, "hello", &p, err, ERRLEN) == 0
       && strcmp(p.owner, "bob") == 0,
       "the name is free: bob's hello");
    ok(c > b, "deployment ids are never reused (#%lld)", (long long) c);

    tenants(st, db);

    shuttle_store_close(st);

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    ok(st != NULL && shuttle_store_project(st, "hello", &p, err, ERRLEN) == 0
       && strcmp(p.owner, "bob") == 0,
       "opened again: the same state");
    shuttle_store_close(st);

    {
        sqlite3  *h;

        sqlite3_open(db, &h);
        sqlite3_exec(h, "DROP TABLE uids; DROP TABLE limits; "
                     "ALTER TABLE deployments DROP COLUMN idle_since; "
                     "ALTER TABLE projects DROP COLUMN idle_ms; "
                     "PRAGMA user_version = 2", NULL, NULL, NULL);
        sqlite3_close(h);
    }

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    ok(st != NULL && count(db, "PRAGMA user_version") == SHUTTLE_STORE_SCHEMA
       && count(db, "SELECT count(*) FROM uids") == 0
       && count(db, "SELECT count(*) FROM limits") == 0
       && shuttle_store_project(st, "hello", &p, err, ERRLEN) == 0
       && count(db, "SELECT count(*) FROM secrets") > 0,
       "a version 2 store migrates to %d: uids, limits, idle, the rest "
       "kept",
       SHUTTLE_STORE_SCHEMA);

    /* an operator's limits for a project */
    {
        char  json[256];

        ok(shuttle_store_limits_get(st, "hello", json, sizeof(json))
           == SHUTTLE_STORE_NOT_FOUND, "limits: none at first");
        ok(shuttle_store_limits_set(st, "hello", "{\"memory\": 1048576}",
                                    err, ERRLEN) == 0
           && shuttle_store_limits_set(st, "hello", "{\"tasks\": 8}", err,
                                       ERRLEN) == 0
           && shuttle_store_limits_get(st, "hello", json, sizeof(json)) == 0
           && strcmp(json, "{\"tasks\": 8}") == 0,
           "limits: set, replaced, read back (%s)", json);
        ok(shuttle_store_limits_set(st, "hello", NULL, err, ERRLEN) == 0
           && shuttle_store_limits_get(st, "hello", json, sizeof(json))
              == SHUTTLE_STORE_NOT_FOUND, "limits: removed");
    }

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
    ok(!exists(db, "-wal") && !exists(db, "-shm"),
       "... and no -wal or -shm made");

    {
        sqlite3  *h;

        sqlite3_open(db, &h);
        sqlite3_exec(h, "PRAGMA user_version = 5", NULL, NULL, NULL);
        sqlite3_close(h);
    }

    damaged(db);
    ids_after_restore(db);
    killed_writer(db);

    shuttle_rmtree(NULL, tmpdir);

    return tap_done();
}


static int
exists(const char *db, const char *suffix)
{
    char  path[512];

    snprintf(path, sizeof(path), "%s%s", db, suffix);

    return access(path, F_OK) == 0;
}


static char *
slurp(const char *path, size_t *len)
{
    FILE  *f;
    char  *buf;
    long   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);

    buf = malloc(n > 0 ? n : 1);
    if (buf != NULL && fread(buf, 1, n, f) != (size_t) n) {
        free(buf);
        buf = NULL;
    }

    fclose(f);
    *len = (size_t) n;

    return buf;
}


static void
spill(const char *path, const char *bytes, size_t len)
{
    FILE  *f;

    f = fopen(path, "wb");
    if (f != NULL) {
        if (fwrite(bytes, 1, len, f) != len) {
            perror(path);
        }

        fclose(f);
    }
}


/* a damaged store is refused, and left byte for byte as it was */

static void
damaged(const char *db)
{
    int                    i, rc;
    char                  *good, *bad, *after;
    size_t                 len, blen, alen, page;
    shuttle_store_t       *st;
    shuttle_store_info_t   info;

    static const char  *what[] = {
        "garbage over its header", "truncated to half", "emptied",
        "its last page overwritten", "a page in the middle overwritten"
    };

    good = slurp(db, &len);
    if (!ok(good != NULL && len >= 4 * 4096, "the store, %zu bytes", len)) {
        free(good);
        return;
    }

    rc = shuttle_store_verify(db, "integrity_check", &info, err, ERRLEN);
    ok(rc == 0 && info.version == SHUTTLE_STORE_SCHEMA
       && info.projects > 0 && info.deployments > 0,
       "shuttle_store_verify: sound, version %d, %lld projects, %lld "
       "deployments", info.version, (long long) info.projects,
       (long long) info.deployments);
    ok(!exists(db, "-wal") && !exists(db, "-shm"),
       "... and no -wal or -shm made");

    bad = malloc(len);
    page = 4096;

    for (i = 0; bad != NULL && i < 5; i++) {
        memcpy(bad, good, len);
        blen = len;

        switch (i) {

        case 0:
            memset(bad, 0xa5, 100);
            break;

        case 1:
            blen = len / 2 / page * page;
            break;

        case 2:
            blen = 0;
            break;

        case 3:
            memset(bad + len - page, 0xff, page);
            break;

        default:
            memset(bad + (len / page / 2) * page, 0xff, page);
        }

        spill(db, bad, blen);

        st = shuttle_store_open(db, tmpdir, err, ERRLEN);
        ok(st == NULL && strstr(err, " is damaged (") != NULL
           && strstr(err, db) != NULL && strstr(err, "backup") != NULL,
           "a store with %s: refused (%s)", what[i], err);
        shuttle_store_close(st);

        after = slurp(db, &alen);
        ok(after != NULL && alen == blen && memcmp(after, bad, blen) == 0
           && !exists(db, "-wal") && !exists(db, "-shm"),
           "... left as it was, no -wal or -shm made");
        free(after);
    }

    free(bad);

    spill(db, good, len);
    free(good);

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    ok(st != NULL, "the sound store back: opened");
    shuttle_store_close(st);
}


/*
 * A store restored from a backup knows fewer deployments than were
 * made: the ids go on past those of the directories under projects/.
 */

static void
ids_after_restore(const char *db)
{
    int               rc;
    char              path[512];
    int64_t           id, next;
    shuttle_store_t  *st;

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    id = 0;
    rc = st != NULL ? shuttle_store_enqueue(st, "later", "carol", 0, &id,
                                            err, ERRLEN)
                    : -1;
    shuttle_store_close(st);

    if (!ok(rc == 0, "carol's project later: #%lld", (long long) id)) {
        return;
    }

    snprintf(path, sizeof(path), "%s/projects", tmpdir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/projects/later", tmpdir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/projects/later/deployments", tmpdir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/projects/later/deployments/%lld",
             tmpdir, (long long) id + 7);
    mkdir(path, 0755);

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    next = 0;
    rc = st != NULL ? shuttle_store_enqueue(st, "later", "carol", 0, &next,
                                            err, ERRLEN)
                    : -1;
    ok(rc == 0 && next == id + 8,
       "a deployment directory #%lld the store does not know of: the next "
       "id is #%lld", (long long) id + 7, (long long) next);
    shuttle_store_close(st);
}


/*
 * A builder killed leaves its -wal and -shm, its last transactions in
 * the WAL: the check reads through them, and the store opens with them.
 */

static void
killed_writer(const char *db)
{
    int                    rc, status;
    pid_t                  pid;
    int64_t                id;
    shuttle_store_t       *st;
    shuttle_project_t      p;
    shuttle_store_info_t   before, after;

    rc = shuttle_store_verify(db, "quick_check", &before, err, ERRLEN);

    pid = fork();

    if (pid == 0) {
        st = shuttle_store_open(db, tmpdir, err, ERRLEN);

        if (st == NULL
            || shuttle_store_enqueue(st, "walled", "dave", 0, &id, err,
                                     ERRLEN) != 0)
        {
            _exit(1);
        }

        _exit(0);                   /* no close: as if killed */
    }

    status = -1;
    (void) waitpid(pid, &status, 0);

    ok(rc == 0 && status == 0 && exists(db, "-wal") && exists(db, "-shm"),
       "a writer gone without closing the store: its -wal and -shm left");

    rc = shuttle_store_verify(db, "quick_check", &after, err, ERRLEN);
    ok(rc == 0 && after.projects == before.projects + 1,
       "... the check reads through its WAL: %lld projects, then %lld",
       (long long) before.projects, (long long) after.projects);

    st = shuttle_store_open(db, tmpdir, err, ERRLEN);
    ok(st != NULL && shuttle_store_project(st, "walled", &p, err, ERRLEN)
                     == 0
       && strcmp(p.owner, "dave") == 0,
       "... and the store opens with its last transaction");
    shuttle_store_close(st);
}
