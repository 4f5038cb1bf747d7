/*
 * guestbook: PostgreSQL for the entries, a static page for the rest.
 *
 *   GET  /api/entries                                200 [entries], newest first
 *   POST /api/entries  {"name": "...", "message": "..."}  201 the entry
 *   GET  /, /style.css, /app.js                      public/, served by nginx
 *
 * SHUTTLE_POSTGRES("main") gives the project a database and a role of its
 * own on the platform's PostgreSQL server; SHUTTLE_STATIC("public")
 * publishes public/, which nginx serves itself for every path no route of
 * the service takes.
 */

#include <shuttle.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


SHUTTLE_POSTGRES("main");
SHUTTLE_STATIC("public");


#define GUEST_NAME_MAX     100
#define GUEST_MESSAGE_MAX  2000


static void
guest_error(shuttle_res *res, int status, const char *msg)
{
    shuttle_json(res, status, json_pack("{s:s}", "error", msg));
}


static json_t *
guest_row(PGresult *r, int i)
{
    return json_pack("{s:I, s:s, s:s, s:s}", "id",
                     (json_int_t) strtoll(PQgetvalue(r, i, 0), NULL, 10),
                     "name", PQgetvalue(r, i, 1),
                     "message", PQgetvalue(r, i, 2),
                     "created", PQgetvalue(r, i, 3));
}


static void
guest_list(shuttle_req *req, shuttle_res *res)
{
    int        i, n;
    json_t    *list;
    PGconn    *pg;
    PGresult  *r;

    pg = shuttle_postgres(shuttle_req_app(req), "main");

    if (pg == NULL) {
        guest_error(res, 503, "no database connection");
        return;
    }

    r = PQexec(pg, "SELECT id, name, message, "
                   "to_char(created AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                   "FROM entries ORDER BY id DESC LIMIT 100");

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        shuttle_log("list: %s", PQerrorMessage(pg));
        PQclear(r);
        guest_error(res, 500, "database error");
        return;
    }

    list = json_array();
    n = PQntuples(r);

    for (i = 0; i < n; i++) {
        json_array_append_new(list, guest_row(r, i));
    }

    PQclear(r);

    shuttle_json(res, 200, list);
}


static void
guest_add(shuttle_req *req, shuttle_res *res)
{
    json_t        *body;
    PGconn        *pg;
    PGresult      *r;
    const char    *name, *message, *values[2];
    json_error_t   err;

    body = shuttle_req_json(req, &err);

    if (body == NULL
        || json_unpack(body, "{s:s, s:s}", "name", &name,
                       "message", &message) != 0)
    {
        guest_error(res, 400, "the body must be {\"name\": \"...\", "
                    "\"message\": \"...\"}");
        return;
    }

    if (name[0] == '\0' || strlen(name) > GUEST_NAME_MAX
        || message[0] == '\0' || strlen(message) > GUEST_MESSAGE_MAX)
    {
        guest_error(res, 400, "a name of 1 to 100 bytes and a message of "
                    "1 to 2000 bytes, please");
        return;
    }

    pg = shuttle_postgres(shuttle_req_app(req), "main");

    if (pg == NULL) {
        guest_error(res, 503, "no database connection");
        return;
    }

    values[0] = name;
    values[1] = message;

    r = PQexecParams(pg, "INSERT INTO entries (name, message) "
                         "VALUES ($1, $2) RETURNING id, name, message, "
                         "to_char(created AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                     2, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        shuttle_log("add: %s", PQerrorMessage(pg));
        PQclear(r);
        guest_error(res, 500, "database error");
        return;
    }

    shuttle_json(res, 201, guest_row(r, 0));
    PQclear(r);
}


SHUTTLE_MAIN(app)
{
    PGconn    *pg;
    PGresult  *r;

    pg = shuttle_postgres(app, "main");

    if (pg == NULL) {
        return 1;
    }

    r = PQexec(pg, "CREATE TABLE IF NOT EXISTS entries ("
                   " id bigserial PRIMARY KEY,"
                   " name text NOT NULL,"
                   " message text NOT NULL,"
                   " created timestamptz NOT NULL DEFAULT now())");

    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        shuttle_log("cannot create the entries table: %s",
                    PQerrorMessage(pg));
        PQclear(r);
        return 1;
    }

    PQclear(r);

    shuttle_get(app, "/api/entries", guest_list);
    shuttle_post(app, "/api/entries", guest_add);

    return 0;
}
