
/*
 * The store's statement helpers: errors, statements, transactions, binding
 * and reading rows, recording a transition (store_int.h).
 */

#include "store_int.h"


/* the store's internals, called with the mutex held */

void
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


int
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


sqlite3_stmt *
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


int
store_begin(shuttle_store_t *st, char *err, size_t errlen)
{
    return store_exec(st, "BEGIN IMMEDIATE", err, errlen);
}


int
store_commit(shuttle_store_t *st, char *err, size_t errlen)
{
    return store_exec(st, "COMMIT", err, errlen);
}


/*
 * The commits that follow, outside a transaction, are synced to the disk
 * (synchronous=FULL, the store's default) or not (NORMAL: in WAL mode
 * they survive the process, not the machine, until the next synced one).
 */

int
store_unsynced(shuttle_store_t *st, int unsynced, char *err, size_t errlen)
{
    return store_exec(st, unsynced ? "PRAGMA synchronous = NORMAL"
                                   : "PRAGMA synchronous = FULL",
                      err, errlen);
}


void
store_rollback(shuttle_store_t *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        (void) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
}


void
store_bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s == NULL) {
        (void) sqlite3_bind_null(stmt, i);

    } else {
        (void) sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
    }
}


void
store_bind_int(sqlite3_stmt *stmt, int i, int64_t v, int set)
{
    if (set) {
        (void) sqlite3_bind_int64(stmt, i, v);

    } else {
        (void) sqlite3_bind_null(stmt, i);
    }
}


void
store_copy(char *dst, size_t size, sqlite3_stmt *stmt, int i)
{
    const char  *s;

    s = (const char *) sqlite3_column_text(stmt, i);

    snprintf(dst, size, "%s", s ? s : "");
}


int64_t
store_int(sqlite3_stmt *stmt, int i, int64_t dflt)
{
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL) {
        return dflt;
    }

    return sqlite3_column_int64(stmt, i);
}


void
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


void
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


int
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
