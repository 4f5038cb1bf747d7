
/*
 * shuttle.h: the service SDK of shuttle for nginx, the one header a
 * service is written against.  It is the contract between a service and
 * shuttle-loader, the process that runs it.
 *
 * A service is a shared object, compiled with nothing but this header:
 *
 *     cc -O2 -fPIC -shared -I<dir of shuttle.h> <the .c files> -o service.so
 *
 * The functions declared here live in shuttle-loader, which exports them
 * (and jansson's json_* functions) to the service it loads; a service
 * links no library for them.  The smallest service:
 *
 *     #include <shuttle.h>
 *
 *     static void
 *     hello(shuttle_req *req, shuttle_res *res)
 *     {
 *         shuttle_text(res, 200, "Hello, world!\n");
 *     }
 *
 *     SHUTTLE_MAIN(app)
 *     {
 *         shuttle_get(app, "/hello", hello);
 *         return 0;
 *     }
 *
 * Life of a service
 *
 *   The loader dlopen()s service.so, checks that it was built against the
 *   SDK ABI the loader speaks (SHUTTLE_ABI below), and calls the service's
 *   main, the function SHUTTLE_MAIN defines, once, before any request.
 *   Main registers the routes, sets up whatever the service needs, and
 *   returns 0; any other value fails the deployment, and so does a route
 *   main could not register.  Then the loader serves HTTP: every request
 *   whose method and path match a route runs that route's handler, on one
 *   of the loader's threads (one per CPU unless the platform sets their
 *   number), each serving its share of the connections.  Handlers run
 *   concurrently: state they share is theirs to protect.  A handler that
 *   blocks holds up the other connections of its thread.  The library
 *   stays loaded until the process ends; on SIGTERM the loader stops
 *   accepting connections, lets the requests in progress finish, and
 *   exits.
 *
 *   A service that crashes takes its own loader down, nothing else: the
 *   platform restarts it.
 *
 * Ownership
 *
 *   Strings the SDK returns belong to the SDK and live as long as the
 *   object they came from: the request's until the handler returns, the
 *   app's for the life of the process.  Strings and buffers a service
 *   passes in are copied before the call returns, except the json_t
 *   shuttle_json() takes over.
 *
 * Threads
 *
 *   Registration functions (shuttle_route() and friends,
 *   shuttle_app_set_*) may only be called from main.  shuttle_req_* and
 *   shuttle_res_* functions may only be called by the thread running the
 *   handler the request was passed to, while it runs.  shuttle_log() may
 *   be called from anywhere.
 *
 * Signals
 *
 *   The loader catches SIGTERM and SIGINT (to drain) and SIGPIPE (a
 *   write to a closed socket or pipe fails with EPIPE); a service leaves
 *   them alone.  Programs a service runs get the default handling of all
 *   three.
 */

#ifndef SHUTTLE_H
#define SHUTTLE_H

#include <stddef.h>
#include <jansson.h>

#include <shuttle_res.h>

#ifdef __cplusplus
extern "C" {
#endif


/*
 * The version of the ABI this header describes.  It changes when a
 * service built against an older header would no longer run correctly,
 * and the loader refuses a service whose SHUTTLE_ABI is not its own.
 */
#ifndef SHUTTLE_ABI
#define SHUTTLE_ABI  1
#endif


#if defined(__GNUC__)
#define SHUTTLE_EXPORT         __attribute__((visibility("default")))
#define SHUTTLE_PRINTF(f, a)   __attribute__((format(printf, f, a)))
#else
#define SHUTTLE_EXPORT
#define SHUTTLE_PRINTF(f, a)
#endif


/*
 * The three objects a service meets, all opaque:
 *
 *   shuttle_app   the service as a whole: its routes and its data; one
 *                 per process, passed to main
 *   shuttle_req   one HTTP request, passed to a handler
 *   shuttle_res   the response to that request, passed along with it
 */
typedef struct shuttle_app_s  shuttle_app;
typedef struct shuttle_req_s  shuttle_req;
typedef struct shuttle_res_s  shuttle_res;

/*
 * A route's handler.  It answers by calling one of the body functions
 * (shuttle_text(), shuttle_bytes(), shuttle_json(), shuttle_printf())
 * before it returns; the response is sent when it returns.  A handler
 * that sets no body gets a 500 response, and a line in the log.
 */
typedef void (*shuttle_handler)(shuttle_req *req, shuttle_res *res);


/*
 * SHUTTLE_MAIN(app) { ... }
 *
 * Defines the service's entry point, a function of one argument named by
 * the macro, returning int, and next to it the symbol through which the
 * loader learns the ABI the service was built against:
 *
 *     const unsigned shuttle_service_abi = SHUTTLE_ABI;
 *     int shuttle_service_main(shuttle_app *app) { ... }
 *
 * Use it once per service, at file scope.  Main runs before the service
 * serves any request; 0 means ready, anything else fails the deployment
 * ("service main returned N").
 */
SHUTTLE_EXPORT extern const unsigned shuttle_service_abi;
SHUTTLE_EXPORT int shuttle_service_main(shuttle_app *app);

#define SHUTTLE_MAIN(app)                                                     \
    const unsigned shuttle_service_abi = SHUTTLE_ABI;                         \
    int shuttle_service_main(shuttle_app *app)


/*
 * Routes
 *
 * shuttle_route() sends requests with the given method and a path that
 * matches pattern to handler.  The method is an HTTP method token
 * ("GET", "POST", ...), compared exactly, or "*" for every method.  A
 * HEAD request runs the GET route of its path when there is no HEAD
 * route (the loader sends the head of the response without its body).
 *
 * A pattern is an absolute path of segments separated by '/', each one
 * of:
 *
 *     todos    a literal, which matches itself exactly
 *     :name    a parameter, which matches one non-empty segment; the
 *              handler reads it with shuttle_req_param(req, "name")
 *     *name    a rest, the last segment only, which matches the rest of
 *              the path, slashes included, possibly empty
 *
 * "/todos/:id" matches "/todos/42" with id "42"; "/files" followed by a
 * rest segment "*path" matches "/files/a/b.txt" with path "a/b.txt", and
 * "/files" and "/files/" with path "".
 *
 * Paths are matched after percent-decoding, without the query string;
 * "/todos" and "/todos/" are different paths.  When several routes match
 * a path, the most specific one wins: segment by segment from the left, a
 * literal beats a parameter, which beats a rest segment.
 *
 * A request whose path matches no route gets 404; one whose path matches
 * routes of other methods only gets 405 with an Allow header listing
 * them.
 *
 * Returns 0, or -1 when the route is refused: a pattern that is not an
 * absolute path, an empty or repeated parameter name, a rest segment that
 * is not the last one, more than SHUTTLE_MAX_PARAMS parameters, the same
 * method and pattern twice, a call outside main.  A refused route is
 * logged and fails the deployment when main returns, whatever main
 * returns, so a service may ignore the result.
 *
 * shuttle_get() and the others are shuttle_route() with that method.
 */
#define SHUTTLE_MAX_PARAMS  16

int shuttle_route(shuttle_app *app, const char *method, const char *pattern,
    shuttle_handler handler);

int shuttle_get(shuttle_app *app, const char *pattern,
    shuttle_handler handler);
int shuttle_post(shuttle_app *app, const char *pattern,
    shuttle_handler handler);
int shuttle_put(shuttle_app *app, const char *pattern,
    shuttle_handler handler);
int shuttle_delete(shuttle_app *app, const char *pattern,
    shuttle_handler handler);
int shuttle_patch(shuttle_app *app, const char *pattern,
    shuttle_handler handler);


/*
 * The app
 *
 * shuttle_app_set_data() stores one pointer of the service's own (a
 * database handle, a configuration struct) that every handler can reach
 * with shuttle_app_get_data(shuttle_req_app(req)).  The loader never
 * looks at it.
 *
 * shuttle_app_set_max_body() sets the largest request body the loader
 * accepts, in bytes (SHUTTLE_MAX_BODY_DEFAULT unless set).  A request
 * with a larger body gets 413 and never reaches a handler.
 */
#define SHUTTLE_MAX_BODY_DEFAULT  (1024 * 1024)

void shuttle_app_set_data(shuttle_app *app, void *data);
void *shuttle_app_get_data(shuttle_app *app);
void shuttle_app_set_max_body(shuttle_app *app, size_t max);


/*
 * Requests
 *
 * shuttle_req_method()  the request's method, "GET"...
 * shuttle_req_path()    its path, percent-decoded, without the query
 * shuttle_req_param()   the value of the route's ":name" or "*name"
 *                       segment in this path, NULL for a name the route
 *                       does not have
 * shuttle_req_query()   the value of the query parameter name (exact
 *                       case), decoded; "" when it has no value
 *                       ("?flag"), NULL when absent; the first one when
 *                       repeated
 * shuttle_req_header()  the value of the request header name, compared
 *                       case-insensitively, NULL when absent
 * shuttle_req_body()    the request body, which the loader reads whole
 *                       before the handler runs; its length in *len (when
 *                       len is not NULL).  Never NULL: a request without a
 *                       body has "" of length 0.  The body may hold NUL
 *                       bytes; one more NUL follows its last byte, so a
 *                       text body can be used as a C string.
 * shuttle_req_json()    the body parsed as JSON: a new reference the
 *                       caller must json_decref(), or NULL with the
 *                       reason in *err (when err is not NULL)
 * shuttle_req_app()     the app the request came to
 */
const char *shuttle_req_method(shuttle_req *req);
const char *shuttle_req_path(shuttle_req *req);
const char *shuttle_req_param(shuttle_req *req, const char *name);
const char *shuttle_req_query(shuttle_req *req, const char *name);
const char *shuttle_req_header(shuttle_req *req, const char *name);
const char *shuttle_req_body(shuttle_req *req, size_t *len);
json_t *shuttle_req_json(shuttle_req *req, json_error_t *err);
shuttle_app *shuttle_req_app(shuttle_req *req);


/*
 * Responses
 *
 * A response is a status, headers and a body.  A body function sets the
 * status and the body together, and the Content-Type that goes with the
 * body; calling one again replaces the body.
 *
 * shuttle_text()    text, a C string, as "text/plain; charset=utf-8"
 * shuttle_bytes()   len bytes at data, as type (NULL: no Content-Type)
 * shuttle_json()    json serialised compactly, as "application/json";
 *                   takes over the caller's reference to json, even when
 *                   it fails, so shuttle_json(res, 200, json_pack(...))
 *                   leaks nothing; a NULL json is a 500
 * shuttle_printf()  printf-style text, as shuttle_text()
 *
 * shuttle_status() changes the status of the response.
 *
 * shuttle_header() sets a response header, replacing one of the same name
 * (case-insensitive) set before; a NULL value removes it.  A Content-Type
 * set this way wins over the type of the body function, whichever comes
 * first.  Content-Length, Transfer-Encoding, Connection and Date are the
 * loader's and are refused.
 *
 * A status is 200 to 599; any other fails the call.  These functions
 * return 0, or -1 with a line in the log (a bad status or header, no
 * memory); after a failure the handler can still answer otherwise, and
 * if it does not, the request gets a 500.
 */
int shuttle_text(shuttle_res *res, int status, const char *text);
int shuttle_bytes(shuttle_res *res, int status, const char *type,
    const void *data, size_t len);
int shuttle_json(shuttle_res *res, int status, json_t *json);
int shuttle_printf(shuttle_res *res, int status, const char *fmt, ...)
    SHUTTLE_PRINTF(3, 4);
int shuttle_status(shuttle_res *res, int status);
int shuttle_header(shuttle_res *res, const char *name, const char *value);


/*
 * Resources: what a service needs, declared beside its code
 *
 *     SHUTTLE_SQLITE("main");       a persistent SQLite database "main"
 *     SHUTTLE_POSTGRES("main");     a PostgreSQL database "main" of the
 *                                   project's own, on the platform's server
 *     SHUTTLE_SECRETS();            read access to the project's secrets
 *     SHUTTLE_STATIC("public");     the project's folder public/, served
 *                                   by nginx itself
 *
 * Each declaration, at file scope, is a record in the "shuttle_res"
 * section of service.so.  The platform reads that section from the file,
 * without running the service, provisions what it declares before the
 * loader starts, and fails the build when a declaration is wrong, naming
 * it.  Database names are [a-z][a-z0-9_]{0,31}; a static folder is a
 * relative path inside the project, one per service.
 *
 * shuttle_sqlite()    the calling thread's own connection to the SQLite
 *                     database name (WAL mode, a 5 s busy timeout), opened
 *                     on its first use in that thread; NULL, with a line in
 *                     the log, when name was not declared or cannot be
 *                     opened.  Include <sqlite3.h> to use it.
 * shuttle_postgres()  the calling thread's own connection to the
 *                     PostgreSQL database name (libpq's PGconn), connected
 *                     on its first use in that thread and reset when it
 *                     broke; NULL, with a line in the log, when name was
 *                     not declared or the server cannot be reached.
 *                     Include <libpq-fe.h> to use it.
 * shuttle_secret()    the value of the project's secret key, NULL when it
 *                     is not set or SHUTTLE_SECRETS() was not declared.
 *                     Secrets are read when the loader starts: a change
 *                     reaches the service with the next deploy or restart.
 *
 * Connections belong to the thread that got them: use them in that
 * thread (main's in main, a handler's in the handler), never share them.
 *
 * Static files: a GET or HEAD request that no route takes is answered
 * from the static folder by nginx, with the file's type and its caching
 * headers; index.html answers for a directory.  Routes win over files.
 */
#define SHUTTLE_RES_CAT2(a, b)  a ## b
#define SHUTTLE_RES_CAT(a, b)   SHUTTLE_RES_CAT2(a, b)

#if defined(__GNUC__)
#define SHUTTLE_RES_DECLARE(kind, name)                                       \
    _Static_assert(sizeof(name) <= SHUTTLE_RES_NAME_MAX,                      \
                   "a resource name is at most 119 bytes");                   \
    __attribute__((used, section("shuttle_res"), aligned(8)))                 \
    static const shuttle_resource_decl                                        \
        SHUTTLE_RES_CAT(shuttle_res_decl_, __COUNTER__) =                     \
        { SHUTTLE_RES_MAGIC, SHUTTLE_ABI, kind, name }
#endif

#define SHUTTLE_SQLITE(name)    SHUTTLE_RES_DECLARE(SHUTTLE_RES_SQLITE, name)
#define SHUTTLE_POSTGRES(name)  SHUTTLE_RES_DECLARE(SHUTTLE_RES_POSTGRES, name)
#define SHUTTLE_SECRETS()       SHUTTLE_RES_DECLARE(SHUTTLE_RES_SECRETS, "")
#define SHUTTLE_STATIC(folder)  SHUTTLE_RES_DECLARE(SHUTTLE_RES_STATIC, folder)

struct sqlite3;
struct pg_conn;

struct sqlite3 *shuttle_sqlite(shuttle_app *app, const char *name);
struct pg_conn *shuttle_postgres(shuttle_app *app, const char *name);
const char *shuttle_secret(shuttle_app *app, const char *key);


/*
 * Logging
 *
 * shuttle_log() writes one line, printf-style, to the service's log (the
 * loader's stderr, which the platform keeps as the deployment's runtime
 * log), prefixed with the time (UTC, milliseconds) and the project's
 * name; a trailing newline is added when the format has none.  Lines
 * from concurrent threads are never interleaved.
 */
void shuttle_log(const char *fmt, ...) SHUTTLE_PRINTF(1, 2);


#ifdef __cplusplus
}
#endif

#endif /* SHUTTLE_H */
