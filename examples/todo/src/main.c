/*
 * todo: a JSON todo API on SQLite, the database declared in the code.
 *
 *   POST   /todos       {"title": "..."}              201 the new item
 *   GET    /todos                                      200 [items]
 *   GET    /todos/:id                                  200 the item
 *   PUT    /todos/:id   {"title": "...", "done": true} 200 the item
 *   DELETE /todos/:id                                  204
 *
 * An item is {"id": 1, "title": "...", "done": false}.  Bad input gets
 * 400, an unknown id 404, each with {"error": "..."}.
 *
 * SHUTTLE_SQLITE("main") makes the platform provision a SQLite database
 * that survives redeploys; shuttle_sqlite() hands each thread its own
 * connection to it.
 */

#include <shuttle.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


SHUTTLE_SQLITE("main");


#define TODO_TITLE_MAX  500


static sqlite3 *
todo_db(shuttle_req *req)
{
    return shuttle_sqlite(shuttle_req_app(req), "main");
}


static void
todo_error(shuttle_res *res, int status, const char *msg)
{
    shuttle_json(res, status, json_pack("{s:s}", "error", msg));
}


static void
todo_db_error(shuttle_res *res, sqlite3 *db, const char *what)
{
    shuttle_log("%s: %s", what, db ? sqlite3_errmsg(db) : "no database");
    todo_error(res, 500, "database error");
}


static void
todo_not_found(shuttle_res *res, sqlite3_int64 id)
{
    char  msg[64];

    snprintf(msg, sizeof(msg), "todo %lld not found", (long long) id);
    todo_error(res, 404, msg);
}


/* runs a prepared statement that writes, and finalizes it; 0, or -1
   after a 500 */

static int
todo_write(shuttle_res *res, sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int  rc;

    rc = sqlite3_step(st);
    sqlite3_finalize(st);

    if (rc != SQLITE_DONE) {
        todo_db_error(res, db, what);
        return -1;
    }

    return 0;
}


/* the :id parameter: a positive integer, or 0 after a 400 */

static sqlite3_int64
todo_id(shuttle_req *req, shuttle_res *res)
{
    char          *end;
    const char    *s;
    long long      id;

    s = shuttle_req_param(req, "id");

    errno = 0;
    id = strtoll(s, &end, 10);

    if (*s < '1' || *s > '9' || *end != '\0' || errno != 0) {
        todo_error(res, 400, "a todo id is a positive integer");
        return 0;
    }

    return id;
}


static json_t *
todo_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:b}",
                     "id", (json_int_t) sqlite3_column_int64(st, 0),
                     "title", (const char *) sqlite3_column_text(st, 1),
                     "done", sqlite3_column_int(st, 2));
}


/* answers with item id, or 404 */

static void
todo_send(shuttle_req *req, shuttle_res *res, sqlite3_int64 id, int status)
{
    int            rc;
    sqlite3       *db;
    sqlite3_stmt  *st;

    db = todo_db(req);

    if (db == NULL || sqlite3_prepare_v2(db, "SELECT id, title, done "
                                         "FROM todos WHERE id = ?",
                                         -1, &st, NULL) != SQLITE_OK)
    {
        todo_db_error(res, db, "select");
        return;
    }

    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        shuttle_json(res, status, todo_row(st));

    } else if (rc == SQLITE_DONE) {
        todo_not_found(res, id);

    } else {
        todo_db_error(res, db, "select");
    }

    sqlite3_finalize(st);
}


/*
 * The body as a JSON object with a valid title (required or not) and
 * done; 0, or -1 after a 400.
 */

static int
todo_input(shuttle_req *req, shuttle_res *res, int need_title,
    const char **title, int *done)
{
    json_t        *body, *t, *d;
    json_error_t   err;
    char           msg[256];

    body = shuttle_req_json(req, &err);

    if (body == NULL || !json_is_object(body)) {
        snprintf(msg, sizeof(msg), "the body must be a JSON object%s%s",
                 body ? "" : ": ", body ? "" : err.text);
        todo_error(res, 400, msg);
        return -1;
    }

    t = json_object_get(body, "title");
    d = json_object_get(body, "done");

    if (t == NULL && need_title) {
        todo_error(res, 400, "\"title\" is required");
        return -1;
    }

    if (t != NULL) {
        if (!json_is_string(t) || json_string_length(t) == 0
            || json_string_length(t) > TODO_TITLE_MAX
            || strlen(json_string_value(t)) != json_string_length(t))
        {
            todo_error(res, 400, "\"title\" must be a non-empty string of "
                       "at most 500 bytes");
            return -1;
        }

        *title = json_string_value(t);
    }

    if (d != NULL) {
        if (!json_is_boolean(d)) {
            todo_error(res, 400, "\"done\" must be true or false");
            return -1;
        }

        *done = json_is_true(d);
    }

    return 0;
}


static void
todo_create(shuttle_req *req, shuttle_res *res)
{
    int            done;
    const char    *title;
    sqlite3       *db;
    sqlite3_stmt  *st;

    title = NULL;
    done = 0;

    if (todo_input(req, res, 1, &title, &done) != 0) {
        return;
    }

    db = todo_db(req);

    if (db == NULL || sqlite3_prepare_v2(db, "INSERT INTO todos (title, done) "
                                         "VALUES (?, ?)", -1, &st, NULL)
                      != SQLITE_OK)
    {
        todo_db_error(res, db, "insert");
        return;
    }

    sqlite3_bind_text(st, 1, title, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, done);

    if (todo_write(res, db, st, "insert") != 0) {
        return;
    }

    todo_send(req, res, sqlite3_last_insert_rowid(db), 201);
}


static void
todo_list(shuttle_req *req, shuttle_res *res)
{
    int            rc;
    json_t        *list;
    sqlite3       *db;
    sqlite3_stmt  *st;

    db = todo_db(req);

    if (db == NULL || sqlite3_prepare_v2(db, "SELECT id, title, done "
                                         "FROM todos ORDER BY id",
                                         -1, &st, NULL) != SQLITE_OK)
    {
        todo_db_error(res, db, "list");
        return;
    }

    list = json_array();

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_array_append_new(list, todo_row(st));
    }

    sqlite3_finalize(st);

    if (rc != SQLITE_DONE) {
        json_decref(list);
        todo_db_error(res, db, "list");
        return;
    }

    shuttle_json(res, 200, list);
}


static void
todo_get(shuttle_req *req, shuttle_res *res)
{
    sqlite3_int64  id;

    id = todo_id(req, res);

    if (id != 0) {
        todo_send(req, res, id, 200);
    }
}


static void
todo_update(shuttle_req *req, shuttle_res *res)
{
    int             done;
    const char     *title;
    sqlite3        *db;
    sqlite3_int64   id;
    sqlite3_stmt   *st;

    id = todo_id(req, res);

    if (id == 0) {
        return;
    }

    title = NULL;
    done = -1;

    if (todo_input(req, res, 0, &title, &done) != 0) {
        return;
    }

    db = todo_db(req);

    if (db == NULL || sqlite3_prepare_v2(db, "UPDATE todos SET "
                                         "title = coalesce(?, title), "
                                         "done = coalesce(?, done) "
                                         "WHERE id = ?", -1, &st, NULL)
                      != SQLITE_OK)
    {
        todo_db_error(res, db, "update");
        return;
    }

    if (title != NULL) {
        sqlite3_bind_text(st, 1, title, -1, SQLITE_TRANSIENT);
    }

    if (done != -1) {
        sqlite3_bind_int(st, 2, done);
    }

    sqlite3_bind_int64(st, 3, id);

    if (todo_write(res, db, st, "update") != 0) {
        return;
    }

    if (sqlite3_changes(db) == 0) {
        todo_not_found(res, id);
        return;
    }

    todo_send(req, res, id, 200);
}


static void
todo_delete(shuttle_req *req, shuttle_res *res)
{
    sqlite3        *db;
    sqlite3_int64   id;
    sqlite3_stmt   *st;

    id = todo_id(req, res);

    if (id == 0) {
        return;
    }

    db = todo_db(req);

    if (db == NULL || sqlite3_prepare_v2(db, "DELETE FROM todos WHERE id = ?",
                                         -1, &st, NULL) != SQLITE_OK)
    {
        todo_db_error(res, db, "delete");
        return;
    }

    sqlite3_bind_int64(st, 1, id);

    if (todo_write(res, db, st, "delete") != 0) {
        return;
    }

    if (sqlite3_changes(db) == 0) {
        todo_not_found(res, id);
        return;
    }

    shuttle_bytes(res, 204, NULL, "", 0);
}


SHUTTLE_MAIN(app)
{
    char     *err;
    sqlite3  *db;

    db = shuttle_sqlite(app, "main");

    if (db == NULL) {
        return 1;
    }

    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS todos ("
                         " id INTEGER PRIMARY KEY,"
                         " title TEXT NOT NULL,"
                         " done INTEGER NOT NULL DEFAULT 0)",
                     NULL, NULL, &err) != SQLITE_OK)
    {
        shuttle_log("cannot create the todos table: %s", err);
        sqlite3_free(err);
        return 1;
    }

    shuttle_post(app, "/todos", todo_create);
    shuttle_get(app, "/todos", todo_list);
    shuttle_get(app, "/todos/:id", todo_get);
    shuttle_put(app, "/todos/:id", todo_update);
    shuttle_delete(app, "/todos/:id", todo_delete);

    return 0;
}
