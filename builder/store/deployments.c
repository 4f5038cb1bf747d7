
/*
 * The store: a deployment's way (enqueue, claim, transitions), its loader,
 * the projects' limits, reasons and idleness (store.h).
 */

#include "store_int.h"


static int store_claim(shuttle_store_t *st, const char *name,
    const char *owner, int64_t released, int64_t now, char *err,
    size_t errlen);
static int store_count_projects(shuttle_store_t *st, const char *name,
    const char *owner, unsigned max, char *err, size_t errlen);
static int store_state_is(shuttle_store_t *st, int64_t id,
    shuttle_deploy_tag_t tag);


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
    int                    rc, set, unsynced;
    int64_t                now, project, current;
    const char            *reason;
    sqlite3_stmt          *stmt;
    shuttle_deploy_tag_t   from;

    now = shuttle_now_ms();
    rc = -1;

    /* the steps on the way to running: synced by the next commit that is
       (store.h) */
    unsynced = to->tag == SHUTTLE_DEPLOY_BUILDING
               || to->tag == SHUTTLE_DEPLOY_BUILT
               || to->tag == SHUTTLE_DEPLOY_LOADING;

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

    /*
     * A running deployment superseded by the one that just ran: the
     * switch, synced, made that one current; a start after a power loss
     * supersedes the older one again (serve_reconcile.c).  The state is
     * read before the transaction, the pragma being refused inside one;
     * the mutex keeps it (one connection, one writer).
     */

    if (to->tag == SHUTTLE_DEPLOY_SUPERSEDED
        && store_state_is(st, id, SHUTTLE_DEPLOY_RUNNING))
    {
        unsynced = 1;
    }

    if ((unsynced && store_unsynced(st, 1, err, errlen) != 0)
        || store_begin(st, err, errlen) != 0)
    {
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

    if (unsynced && store_unsynced(st, 0, err, errlen) != 0) {
        /* the connection stays unsynced: no commit may count on it */
        rc = -1;
    }

    pthread_mutex_unlock(&st->lock);

    return rc;
}


/* deployment id is in state tag now; with the mutex held */

static int
store_state_is(shuttle_store_t *st, int64_t id, shuttle_deploy_tag_t tag)
{
    int            is;
    sqlite3_stmt  *stmt;

    if (sqlite3_prepare_v2(st->db, "SELECT state FROM deployments "
                           "WHERE id = ?1", -1, &stmt, NULL)
        != SQLITE_OK)
    {
        return 0;
    }

    store_bind_int(stmt, 1, id, 1);

    is = sqlite3_step(stmt) == SQLITE_ROW
         && shuttle_deploy_tag((const char *) sqlite3_column_text(stmt, 0))
            == tag;

    sqlite3_finalize(stmt);

    return is;
}


int
shuttle_store_set_loader(shuttle_store_t *st, int64_t id, uint16_t port,
    pid_t pid, char *err, size_t errlen)
{
    int            rc;
    sqlite3_stmt  *stmt;

    rc = -1;

    pthread_mutex_lock(&st->lock);

    /* a loader does not outlive the machine: not synced (store.h) */
    if (store_unsynced(st, 1, err, errlen) != 0) {
        goto done;
    }

    stmt = store_prepare(st, "UPDATE deployments SET port = ?1, pid = ?2 "
                         "WHERE id = ?3 AND state IN ('loading', "
                         "'running')", err, errlen);
    if (stmt == NULL) {
        goto synced;
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

synced:

    if (store_unsynced(st, 0, err, errlen) != 0) {
        rc = -1;
    }

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
