/*
 * tenant: a hostile tenant's service, for t/tenant-files.t.  It plants
 * symbolic links where its uid may write (its SQLite directory), for the
 * builder to meet them as root.
 *
 *   GET /hello               "hello from tenant", and the SQLite database
 *                            made (the directory is there to write in)
 *   GET /link?to=T&name=N    symlink(T, DIR/N), DIR the database's folder
 *   GET /flip?to=T&n=N       DIR/d, a folder of N files f0..fN-1, and
 *                            DIR/d.link, a link to T, then a thread that
 *                            exchanges the two (renameat2 RENAME_EXCHANGE)
 *                            for as long as the service runs
 *   GET /public.txt          (no route: nginx serves public/public.txt)
 */

#define _GNU_SOURCE

#include <shuttle.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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


static char  flip_d[4096], flip_link[4096], flip_to[4096];


/* d is a folder half of the time, a link the other half, never missing */

static void *
tenant_flipper(void *arg)
{
    int  i;

    for ( ;; ) {
        (void) renameat2(AT_FDCWD, flip_d, AT_FDCWD, flip_link,
                         RENAME_EXCHANGE);

        for (i = 0; i < 100; i++) {
            (void) getppid();
        }
    }

    return NULL;
}


static void
tenant_flip(shuttle_req *req, shuttle_res *res)
{
    int          i, n, fd;
    char         path[4200], *slash;
    sqlite3     *db;
    pthread_t    t;
    const char  *file, *to, *arg;

    db = shuttle_sqlite(shuttle_req_app(req), "main");
    file = db ? sqlite3_db_filename(db, "main") : NULL;
    to = shuttle_req_query(req, "to");
    arg = shuttle_req_query(req, "n");

    if (file == NULL || to == NULL || arg == NULL || flip_to[0] != '\0') {
        shuttle_text(res, 400, "error: no database, to or n, or flipping\n");
        return;
    }

    snprintf(flip_to, sizeof(flip_to), "%s", to);
    snprintf(flip_d, sizeof(flip_d), "%s", file);
    slash = strrchr(flip_d, '/');
    if (slash != NULL) {
        *slash = '\0';
    }

    snprintf(flip_d + strlen(flip_d), sizeof(flip_d) - strlen(flip_d), "/d");
    snprintf(flip_link, sizeof(flip_link), "%s.link", flip_d);

    (void) mkdir(flip_d, 0755);
    (void) symlink(flip_to, flip_link);
    n = atoi(arg);

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/f%d", flip_d, i);
        fd = open(path, O_WRONLY | O_CREAT, 0644);
        if (fd != -1) {
            close(fd);
        }
    }

    if (pthread_create(&t, NULL, tenant_flipper, NULL) != 0) {
        shuttle_text(res, 500, "error: pthread_create\n");
        return;
    }

    shuttle_printf(res, 200, "ok flipping %s -> %s, %d files\n", flip_d, to,
                   n);
}


/* a request in flight for a while: a loader told to stop drains it */

static void
tenant_sleep(shuttle_req *req, shuttle_res *res)
{
    int          fd;
    char         path[4200], *slash;
    sqlite3     *db;
    const char  *ms, *file;

    /* "sleeping" beside its database says it is under way */
    db = shuttle_sqlite(shuttle_req_app(req), "main");
    file = db ? sqlite3_db_filename(db, "main") : NULL;

    if (file != NULL) {
        snprintf(path, sizeof(path), "%s", file);
        slash = strrchr(path, '/');
        if (slash != NULL) {
            snprintf(slash, sizeof(path) - (slash - path), "/sleeping");
            fd = open(path, O_WRONLY | O_CREAT, 0644);
            if (fd != -1) {
                close(fd);
            }
        }
    }

    ms = shuttle_req_query(req, "ms");
    usleep(ms ? atoi(ms) * 1000 : 0);
    shuttle_text(res, 200, "slept\n");
}


SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/flip", tenant_flip);
    shuttle_get(app, "/sleep", tenant_sleep);
    shuttle_get(app, "/hello", tenant_hello);
    shuttle_get(app, "/link", tenant_link);
    return 0;
}
