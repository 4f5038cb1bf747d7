
/*
 * The store: deleting a project, and the reads (a project, a deployment,
 * the states, the census, the iterators) (store.h).
 */

#include "store_int.h"


static int store_each_deployment(shuttle_store_t *st, const char *sql,
    const int64_t *args, int nargs, unsigned mask,
    shuttle_store_deployment_pt handler, void *data, char *err,
    size_t errlen);


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


/*
 * GET /v1/projects in one query a chunk, not five a project: the latest
 * deployment's columns first (store_read_deployment reads them from 0),
 * the project's after them, the current deployment's state, the
 * operator's limits, the number of resources.  The caller asks again
 * with the last name it got: the store is held a chunk at a time.
 */

int
shuttle_store_each_project_view(shuttle_store_t *st, const char *owner,
    const char *after, unsigned limit, shuttle_store_view_pt handler,
    void *data, char *err, size_t errlen)
{
    int                      rc;
    const char              *tag;
    sqlite3_stmt            *stmt;
    shuttle_project_t       *p;
    shuttle_project_view_t   v;

    pthread_mutex_lock(&st->lock);

    stmt = store_prepare(st,
        "SELECT d.id, d.project, p.name, p.owner, d.state, d.reason, "
        "d.created, d.updated, d.upload, d.build_started, d.so, d.port, "
        "d.pid, d.running_since, d.superseded_by, d.log, d.build_ms, "
        "d.start_ms, d.idle_since, "
        "p.id, p.name, p.owner, p.created, p.current, "
        "(SELECT max(id) FROM deployments WHERE project = p.id), "
        "(SELECT max(updated) FROM deployments WHERE project = p.id), "
        "p.idle_ms, c.state, c.port, c.idle_since, l.limits, "
        "(SELECT count(*) FROM resources r WHERE r.project = p.name) "
        "FROM projects p "
        "LEFT JOIN deployments d ON d.id = "
        "    (SELECT max(id) FROM deployments WHERE project = p.id) "
        "LEFT JOIN deployments c ON c.id = p.current "
        "LEFT JOIN limits l ON l.project = p.name "
        "WHERE p.deleted IS NULL AND (?1 IS NULL OR p.owner = ?1) "
        "AND p.name > ?2 ORDER BY p.name LIMIT ?3", err, errlen);
    if (stmt == NULL) {
        rc = -1;
        goto done;
    }

    store_bind_text(stmt, 1, owner);
    store_bind_text(stmt, 2, after);
    (void) sqlite3_bind_int64(stmt, 3, limit);

    p = &v.project;

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (sqlite3_column_type(stmt, 0) == SQLITE_NULL) {
            memset(&v.latest, 0, sizeof(shuttle_deployment_t));

        } else {
            store_read_deployment(stmt, &v.latest);
        }

        memset(p, 0, sizeof(shuttle_project_t));
        p->id = sqlite3_column_int64(stmt, 19);
        store_copy(p->name, sizeof(p->name), stmt, 20);
        store_copy(p->owner, sizeof(p->owner), stmt, 21);
        p->created = sqlite3_column_int64(stmt, 22);
        p->current = store_int(stmt, 23, 0);
        p->latest = store_int(stmt, 24, 0);
        p->updated = store_int(stmt, 25, p->created);
        p->idle_ms = store_int(stmt, 26, -1);

        tag = (const char *) sqlite3_column_text(stmt, 27);
        v.current = tag != NULL ? shuttle_deploy_tag(tag) : 0;
        v.current_port = (uint16_t) store_int(stmt, 28, 0);
        v.current_idle_since = store_int(stmt, 29, 0);
        v.limits = (const char *) sqlite3_column_text(stmt, 30);
        v.resources = (unsigned) sqlite3_column_int64(stmt, 31);

        if (handler(&v, data) != 0) {
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
