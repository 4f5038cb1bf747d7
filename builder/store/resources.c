
/*
 * The store: a project's resources and secrets, the key whose data is kept
 * under a name, purges, and the tenants' uids (store.h).
 */

#include "store_int.h"


static int store_uid_avoided(uid_t uid, const uid_t *avoid,
    size_t navoid);


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

int
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


int
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
