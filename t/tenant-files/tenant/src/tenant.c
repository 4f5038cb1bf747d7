/*
 * tenant: a hostile tenant's service, for t/tenant-files.t.  It plants
 * symbolic links where its uid may write (its SQLite directory), for the
 * builder to meet them as root.
 *
 *   GET /hello               "hello from tenant", and the SQLite database
 *                            made (the directory is there to write in)
 *   GET /link?to=T&name=N    symlink(T, DIR/N), DIR the database's folder
 *   GET /public.txt          (no route: nginx serves public/public.txt)
 */

#define _GNU_SOURCE

#include <shuttle.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


SHUTTLE_SQLITE("main");
SHUTTLE_STATIC("public");


static void
tenant_hello(shuttle_req *req, shuttle_res *res)
{
    sqlite3  *db;

    db = shuttle_sqlite(shuttle_req_app(req), "main");
    (void) sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS t (v)", NULL, NULL,
                        NULL);
    shuttle_text(res, 200, "hello from tenant\n");
}


static void
tenant_link(shuttle_req *req, shuttle_res *res)
{
    char         path[4096], *slash;
    sqlite3     *db;
    const char  *file, *to, *name;

    db = shuttle_sqlite(shuttle_req_app(req), "main");
    file = db ? sqlite3_db_filename(db, "main") : NULL;
    to = shuttle_req_query(req, "to");
    name = shuttle_req_query(req, "name");

    if (file == NULL || to == NULL || name == NULL) {
        shuttle_text(res, 400, "error: no database, to or name\n");
        return;
    }

    snprintf(path, sizeof(path), "%s", file);
    slash = strrchr(path, '/');
    if (slash != NULL) {
        *slash = '\0';
    }

    snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", name);

    if (symlink(to, path) == -1) {
        shuttle_printf(res, 200, "error: %s: %s\n", path, strerror(errno));
        return;
    }

    shuttle_printf(res, 200, "ok %s -> %s\n", path, to);
}


SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/hello", tenant_hello);
    shuttle_get(app, "/link", tenant_link);
    return 0;
}
