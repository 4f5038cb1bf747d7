
/*
 * loader.h: the inside of shuttle-loader, the process that runs one
 * deployment: it loads service.so, serves it over HTTP with
 * libmicrohttpd and drains on SIGTERM.
 *
 *   main.c      the command line, startup, readiness, signals, draining
 *   log.c       timestamped log lines on stderr (and shuttle_log())
 *   service.c   dlopen(), the ABI check, the service's main
 *   route.c     the app: routes, their patterns, matching a path
 *   http.c      the libmicrohttpd daemon: requests in, bodies, in-flight
 *               count, quiesce and stop
 *   request.c   the request pool and the shuttle_req_* functions
 *   response.c  the shuttle_res functions and sending a response
 *   resources.c the databases, secrets and static folder of
 *               --resources-fd, and their SDK functions
 *
 * The SDK functions of include/shuttle.h are defined in route.c,
 * request.c, response.c and log.c, and exported to the service by
 * linking with -rdynamic.
 */

#ifndef SHUTTLE_LOADER_H
#define SHUTTLE_LOADER_H


#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>

#include <microhttpd.h>

#include <shuttle.h>
#include <shuttle_loader.h>


#define LOADER_ERRLEN          512

/* bytes a request's pool holds before it allocates */
#define LOADER_POOL_SIZE       1024

/* response headers a handler may set */
#define LOADER_MAX_HEADERS     32

/*
 * Seconds an idle connection is kept.  Longer than nginx's upstream
 * keepalive_timeout (60 s): nginx closes its idle pooled connections
 * first, and never sends a request on one the loader is closing.
 */
#define LOADER_IDLE_TIMEOUT    120


/* log.c ------------------------------------------------------------------ */

void loader_log_init(const char *name);
void loader_log(const char *fmt, ...) SHUTTLE_PRINTF(1, 2);
void loader_log_va(const char *who, const char *fmt, va_list args);
/* async-signal-safe: msg as is, with the time and the name */
void loader_log_raw(const char *msg);


/* route.c ---------------------------------------------------------------- */

#define LOADER_SEG_LITERAL     0
#define LOADER_SEG_PARAM       1    /* :name */
#define LOADER_SEG_REST        2    /* *name, last */

typedef struct {
    int                    kind;
    const char            *text;      /* the literal, or the name */
    size_t                 len;
} loader_segment_t;

typedef struct {
    char                  *method;    /* "*": any */
    char                  *pattern;   /* as registered; segs point in */
    shuttle_handler        handler;
    loader_segment_t      *segs;
    size_t                 nsegs;
    size_t                 nparams;
} loader_route_t;

struct shuttle_app_s {
    loader_route_t        *routes;    /* most specific first */
    size_t                 nroutes;
    size_t                 nalloc;
    void                  *data;
    size_t                 max_body;
    int                    serving;   /* routes are fixed */
    char                   error[LOADER_ERRLEN];  /* first route refused */
};

shuttle_app *loader_app_create(void);
loader_route_t *loader_route_find(shuttle_app *app, shuttle_req *req);
size_t loader_route_allow(shuttle_app *app, const char *path, char *buf,
    size_t size);
int loader_token(const char *s);


/* request.c -------------------------------------------------------------- */

typedef struct loader_pool_block_s  loader_pool_block_t;

struct loader_pool_block_s {
    loader_pool_block_t   *next;
};

typedef struct {
    char                  *pos;
    char                  *end;
    loader_pool_block_t   *blocks;    /* allocated when the buffer is full */
    _Alignas(max_align_t) char buf[LOADER_POOL_SIZE];
} loader_pool_t;

typedef struct {
    const char            *name;      /* in the route's pattern */
    size_t                 name_len;
    const char            *value;     /* in the pool */
} loader_param_t;

struct shuttle_req_s {
    struct MHD_Connection *conn;
    shuttle_app           *app;
    const char            *method;
    const char            *path;
    char                  *body;      /* NUL-terminated */
    size_t                 body_len;
    loader_param_t         params[SHUTTLE_MAX_PARAMS];
    size_t                 nparams;
    loader_pool_t         *pool;
};

typedef struct {
    const char            *name;
    const char            *value;
} loader_header_t;

struct shuttle_res_s {
    int                    status;
    struct MHD_Response   *response;  /* the body, once set */
    const char            *type;      /* the body function's Content-Type */
    loader_header_t        headers[LOADER_MAX_HEADERS];
    size_t                 nheaders;
    loader_pool_t         *pool;
};

/* a request from its headers to its completion */
typedef struct {
    shuttle_req            req;
    shuttle_res            res;
    loader_route_t        *route;
    size_t                 body_size;  /* allocated for req.body */
    int                    body_status; /* 413, 500: the body was refused */
    loader_pool_t          pool;
} loader_request_t;

void loader_request_init(loader_request_t *lr, shuttle_app *app,
    struct MHD_Connection *conn, const char *method, const char *path);
void loader_request_free(loader_request_t *lr);
void *loader_palloc(loader_pool_t *pool, size_t size);
char *loader_pstrndup(loader_pool_t *pool, const char *s, size_t len);


/* response.c ------------------------------------------------------------- */

enum MHD_Result loader_response_send(loader_request_t *lr, int close);
enum MHD_Result loader_response_error(struct MHD_Connection *conn,
    int status, const char *text, const char *allow, int close);


/* http.c ----------------------------------------------------------------- */

/* an open connection, from libmicrohttpd's STARTED to its CLOSED */
typedef struct loader_conn_s  loader_conn_t;

struct loader_conn_s {
    int                    fd;
    atomic_int             busy;       /* between a request's headers and
                                          its completion */
    int                    probe;      /* the builder's health check: its
                                          close leaves the idle clock */
    loader_conn_t         *prev;
    loader_conn_t         *next;
};

typedef struct {
    struct MHD_Daemon    **daemons;    /* one per thread */
    unsigned               ndaemons;
    unsigned               next;       /* the daemon for the next socket */
    shuttle_app           *app;
    int                    listen_fd;  /* -1 once draining */
    atomic_int             draining;
    int                    drained_fd; /* eventfd: written when, draining,
                                          the last connection closes */
    pthread_mutex_t        mutex;      /* conns, nconns */
    loader_conn_t          conns;      /* the started ones; the head */
    unsigned               nconns;     /* accepted and not closed */
    atomic_int             starting;   /* keep libmicrohttpd's messages */
    int64_t                quiet;      /* monotonic ms the last connection
                                          closed (or the start); nconns 0 */
    char                   error[LOADER_ERRLEN];  /* the last of them */
} loader_http_t;

int loader_http_start(loader_http_t *h, shuttle_app *app, int listen_fd,
    unsigned threads, char *err, size_t errlen);
int loader_http_accept(loader_http_t *h);
unsigned loader_http_drain(loader_http_t *h);
unsigned loader_http_busy(loader_http_t *h);
unsigned loader_http_connections(loader_http_t *h);
int64_t loader_http_quiet(loader_http_t *h);
int64_t loader_http_now(void);
void loader_http_stop(loader_http_t *h);


/* resources.c ------------------------------------------------------------ */

int loader_resources_load(int fd, char *err, size_t errlen);
int loader_pq_open(char *err, size_t errlen);

/*
 * bytes the project's SQLite databases may hold together (--disk-limit,
 * 0: no limit): each database opened gets a PRAGMA max_page_count of
 * what the limit leaves once the other files of its directory are
 * counted, so a write past it fails with SQLITE_FULL.
 */
void loader_resources_limit(unsigned long long bytes);
int loader_resources_static(shuttle_req *req, int last,
    enum MHD_Result *rc);


/* service.c -------------------------------------------------------------- */

typedef int (*loader_main_pt)(shuttle_app *app);

loader_main_pt loader_service_load(const char *path, char *err,
    size_t errlen);
int loader_service_main(loader_main_pt main, shuttle_app *app, int ready_fd,
    char *err, size_t errlen);
void loader_service_exiting(void);


#endif /* SHUTTLE_LOADER_H */
