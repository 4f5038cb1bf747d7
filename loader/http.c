
/*
 * HTTP, through libmicrohttpd.
 *
 * One libmicrohttpd daemon per thread, each with its own epoll loop and
 * no listening socket of its own: the main thread accepts and hands the
 * connections to the daemons in turn.  The loader, not libmicrohttpd,
 * owns the listening socket, so that it can stop accepting at once on
 * SIGTERM (MHD_quiesce_daemon() of libmicrohttpd 0.9.75 races with the
 * daemon's own epoll threads, and may abort the process).  Keep-alive
 * is on.
 *
 * Every connection is counted from its accept() to libmicrohttpd's
 * CLOSED notification, and listed from its STARTED notification to the
 * CLOSED one, which comes before the socket is closed; each listed one
 * knows whether a request is in progress on it.  A drain closes the idle
 * ones and waits for the count to come down to 0: every response from
 * then on says Connection: close.
 *
 * The access handler is called when a request's headers are in, then
 * with each piece of its body, then once more when it is all in: the
 * route's handler runs then.  A request without a body lives on the
 * stack of its thread in that last call; a request with a body gets a
 * loader_request_t of its own, and its body is read whole, up to the
 * app's limit.
 */


#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"


static enum MHD_Result loader_http_request(void *cls,
    struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size,
    void **ctx);
static enum MHD_Result loader_http_health(struct MHD_Connection *conn,
    void **ctx);
static enum MHD_Result loader_http_begin(loader_http_t *h,
    struct MHD_Connection *conn, const char *url, const char *method,
    void **ctx);
static void loader_http_body(loader_http_t *h, loader_request_t *lr,
    const char *data, size_t size);
static enum MHD_Result loader_http_run(loader_http_t *h,
    loader_request_t *lr);
static enum MHD_Result loader_http_unrouted(loader_http_t *h,
    loader_request_t *lr);
static enum MHD_Result loader_http_refuse_body(loader_http_t *h,
    loader_request_t *lr);
static void loader_http_completed(void *cls, struct MHD_Connection *conn,
    void **ctx, enum MHD_RequestTerminationCode toe);
static void loader_http_connection(void *cls, struct MHD_Connection *conn,
    void **socket_ctx, enum MHD_ConnectionNotificationCode code);
static void loader_http_log(void *cls, const char *fmt, va_list args);


/* the context of a request without a body: nothing to free */
static char  loader_http_nobody;
static char  loader_http_probe;


int
loader_http_start(loader_http_t *h, shuttle_app *app, int listen_fd,
    unsigned threads, char *err, size_t errlen)
{
    unsigned        i, flags, limit;
    struct rlimit   rl;

    h->app = app;
    h->listen_fd = listen_fd;
    h->ndaemons = 0;
    h->next = 0;
    h->nconns = 0;
    h->conns.next = &h->conns;
    h->conns.prev = &h->conns;
    h->quiet = loader_http_now();
    atomic_init(&h->draining, 0);

    if (pthread_mutex_init(&h->mutex, NULL) != 0) {
        snprintf(err, errlen, "pthread_mutex_init failed");
        return -1;
    }

    h->drained_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->drained_fd == -1) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }

    h->daemons = calloc(threads, sizeof(struct MHD_Daemon *));
    if (h->daemons == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    /* a connection is a descriptor: as many as the process may open */
    limit = 1000;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }

        if (rl.rlim_cur > 64) {
            limit = rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur - 64;
        }
    }

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC
            | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_TURBO | MHD_USE_ERROR_LOG;

    for (i = 0; i < threads; i++) {
        h->error[0] = '\0';
        atomic_store(&h->starting, 1);

        h->daemons[i] = MHD_start_daemon(flags, 0, NULL, NULL,
                            loader_http_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, loader_http_log, h,
                            MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned) LOADER_IDLE_TIMEOUT,
                            MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_NOTIFY_COMPLETED,
                                loader_http_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION,
                                loader_http_connection, h,
                            MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
                            MHD_OPTION_END);

        atomic_store(&h->starting, 0);

        if (h->daemons[i] == NULL) {
            snprintf(err, errlen, "libmicrohttpd failed to start: %s",
                     h->error[0] ? h->error : "no reason given");

            while (i-- > 0) {
                MHD_stop_daemon(h->daemons[i]);
            }

            return -1;
        }

        h->ndaemons++;
    }

    return 0;
}


/*
 * Accepts what the listening socket has and hands each connection to the
 * next daemon.  -1 when the process is out of descriptors: the caller
 * waits a little before accepting again.
 */
int
loader_http_accept(loader_http_t *h)
{
    int                       fd;
    socklen_t                 len;
    struct sockaddr_storage   ss;

    for ( ;; ) {
        len = sizeof(ss);
        fd = accept4(h->listen_fd, (struct sockaddr *) &ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            switch (errno) {

            case EAGAIN:
            case EINTR:
                return 0;

            case ECONNABORTED:
            case EPROTO:
            case EPERM:
                continue;

            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                loader_log("accept: %s, not accepting for a while",
                           strerror(errno));
                return -1;

            default:
                loader_log("accept: %s", strerror(errno));
                return -1;
            }
        }

        /*
         * Counted from now: the daemon may be busy in a handler for a
         * while before it starts the connection, and notifies CLOSED
         * for every connection it started.  One it fails to start (no
         * memory) goes unnotified: a drain then lasts its whole timeout.
         */
        pthread_mutex_lock(&h->mutex);
        h->nconns++;
        pthread_mutex_unlock(&h->mutex);

        /* the daemon takes the socket, and closes it on a failure */
        if (MHD_add_connection(h->daemons[h->next], fd,
                               (struct sockaddr *) &ss, len)
            != MHD_YES)
        {
            loader_log("a new connection: refused by libmicrohttpd: %s",
                       strerror(errno));

            pthread_mutex_lock(&h->mutex);
            if (--h->nconns == 0) {
                h->quiet = loader_http_now();
            }
            pthread_mutex_unlock(&h->mutex);
        }

        h->next = (h->next + 1) % h->ndaemons;
    }
}


/*
 * Stops accepting and closes the idle connections; returns the number of
 * requests in progress.  The loader closes its descriptor of the
 * listening socket, and only that: once no other process holds the
 * socket (the builder closes its copy when it stops a loader) new
 * connections are refused, and a loader started on the same socket to
 * take over goes on accepting.
 *
 * A connection is idle when no request is in progress on it and its
 * socket has nothing unread: a request whose bytes wait there (its
 * thread busy with another) is served like one in progress.
 */
unsigned
loader_http_drain(loader_http_t *h)
{
    int             unread;
    unsigned        busy;
    loader_conn_t  *c;

    close(h->listen_fd);
    h->listen_fd = -1;

    busy = 0;

    pthread_mutex_lock(&h->mutex);

    atomic_store(&h->draining, 1);

    for (c = h->conns.next; c != &h->conns; c = c->next) {
        if (ioctl(c->fd, FIONREAD, &unread) == -1) {
            unread = 0;
        }

        if (unread > 0 || atomic_load(&c->busy)) {
            busy++;
            continue;
        }

        /* libmicrohttpd reads the end of it and closes it */
        shutdown(c->fd, SHUT_RDWR);
    }

    pthread_mutex_unlock(&h->mutex);

    return busy;
}


unsigned
loader_http_busy(loader_http_t *h)
{
    unsigned        busy;
    loader_conn_t  *c;

    busy = 0;

    pthread_mutex_lock(&h->mutex);

    for (c = h->conns.next; c != &h->conns; c = c->next) {
        if (atomic_load(&c->busy)) {
            busy++;
        }
    }

    pthread_mutex_unlock(&h->mutex);

    return busy;
}


unsigned
loader_http_connections(loader_http_t *h)
{
    unsigned  n;

    pthread_mutex_lock(&h->mutex);
    n = h->nconns;
    pthread_mutex_unlock(&h->mutex);

    return n;
}


/*
 * Milliseconds since the last connection closed (or the daemons started),
 * or -1 while one is open: --idle's clock.  Connections, not requests:
 * nginx keeps an idle upstream connection open until its keepalive_timeout,
 * and a loader that went idle with one open would cut a connection nginx
 * may be reusing that very moment.
 */
int64_t
loader_http_quiet(loader_http_t *h)
{
    int64_t  ms;

    pthread_mutex_lock(&h->mutex);
    ms = h->nconns == 0 ? loader_http_now() - h->quiet : -1;
    pthread_mutex_unlock(&h->mutex);

    return ms < -1 ? 0 : ms;
}


int64_t
loader_http_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* closes every connection left */
void
loader_http_stop(loader_http_t *h)
{
    unsigned  i;

    for (i = 0; i < h->ndaemons; i++) {
        MHD_stop_daemon(h->daemons[i]);
    }

    h->ndaemons = 0;

    if (h->listen_fd != -1) {
        close(h->listen_fd);
        h->listen_fd = -1;
    }

    close(h->drained_fd);
}


static enum MHD_Result
loader_http_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **ctx)
{
    loader_http_t     *h;
    loader_request_t  *lr, stack_lr;

    h = cls;
    lr = *ctx;

    if (lr == NULL) {
        if (method[0] == 'O' && strcmp(method, "OPTIONS") == 0
            && strcmp(url, "*") == 0)
        {
            return loader_http_health(conn, ctx);
        }

        return loader_http_begin(h, conn, url, method, ctx);
    }

    if (lr == (void *) &loader_http_probe) {
        return loader_http_health(conn, ctx);
    }

    if (lr == (void *) &loader_http_nobody) {
        /* the request is all in */
        loader_request_init(&stack_lr, h->app, conn, method, url);
        return loader_http_run(h, &stack_lr);
    }

    if (*upload_data_size != 0) {
        loader_http_body(h, lr, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    /* the body is in */

    if (lr->body_status != 0) {
        return loader_http_refuse_body(h, lr);
    }

    return loader_http_run(h, lr);
}


/*
 * "OPTIONS * HTTP/1.1", the builder's health check (never nginx's: it
 * sends no "*"): 204 from the thread that would run a request, no
 * service code, and a connection that does not count as activity for
 * --idle.
 */
static enum MHD_Result
loader_http_health(struct MHD_Connection *conn, void **ctx)
{
    enum MHD_Result                  ret;
    struct MHD_Response             *r;
    loader_conn_t                   *c;
    const union MHD_ConnectionInfo  *info;

    if (*ctx == NULL) {
        info = MHD_get_connection_info(conn,
                                       MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (info != NULL && info->socket_context != NULL) {
            c = info->socket_context;
            c->probe = 1;
        }

        /* answered in the next call, once the request is all in */
        *ctx = &loader_http_probe;
        return MHD_YES;
    }

    r = MHD_create_response_from_buffer(0, (void *) "",
                                        MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }

    ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);

    return ret;
}


/* the headers are in */
static enum MHD_Result
loader_http_begin(loader_http_t *h, struct MHD_Connection *conn,
    const char *url, const char *method, void **ctx)
{
    char                              *end;
    const char                        *cl, *te;
    uint64_t                           length;
    loader_conn_t                     *c;
    loader_request_t                  *lr;
    const union MHD_ConnectionInfo    *info;

    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info != NULL && info->socket_context != NULL) {
        c = info->socket_context;
        atomic_store_explicit(&c->busy, 1, memory_order_relaxed);
    }

    te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);

    /*
     * A response queued now, before libmicrohttpd has seen the end of the
     * request, would close the connection: even without a body, the
     * handler runs in the next call.
     */
    if (te == NULL && (cl == NULL || (cl[0] == '0' && cl[1] == '\0'))) {
        *ctx = &loader_http_nobody;
        return MHD_YES;
    }

    lr = malloc(sizeof(loader_request_t));
    if (lr == NULL) {
        *ctx = &loader_http_nobody;
        loader_log("%s %s: out of memory", method, url);
        return loader_response_error(conn, 500, "500 internal error: out "
                                     "of memory\n", NULL, 1);
    }

    loader_request_init(lr, h->app, conn, method, url);
    *ctx = lr;

    /* no route, no need for the body */
    lr->route = loader_route_find(h->app, &lr->req);
    if (lr->route == NULL) {
        return loader_http_unrouted(h, lr);
    }

    if (te == NULL) {
        /* libmicrohttpd has checked it is a number */
        length = strtoull(cl, &end, 10);

        if (length > h->app->max_body) {
            lr->body_status = 413;
            return loader_http_refuse_body(h, lr);
        }

        lr->req.body = malloc(length + 1);
        if (lr->req.body == NULL) {
            lr->body_status = 500;
            return loader_http_refuse_body(h, lr);
        }

        lr->body_size = length + 1;
        lr->req.body[0] = '\0';
    }

    return MHD_YES;
}


static void
loader_http_body(loader_http_t *h, loader_request_t *lr, const char *data,
    size_t size)
{
    char    *body;
    size_t   need, n;

    if (lr->body_status != 0) {
        /* refused: the rest is read and dropped, then 413 is sent */
        return;
    }

    if (size > h->app->max_body - lr->req.body_len) {
        lr->body_status = 413;
        free(lr->req.body);
        lr->req.body = NULL;
        lr->req.body_len = 0;
        return;
    }

    need = lr->req.body_len + size + 1;

    if (need > lr->body_size) {
        /* a chunked body: doubled, up to the limit */
        n = lr->body_size ? lr->body_size * 2 : 4096;
        if (n < need) {
            n = need;
        }

        if (n > h->app->max_body + 1) {
            n = h->app->max_body + 1;
        }

        body = realloc(lr->req.body, n);
        if (body == NULL) {
            lr->body_status = 500;
            free(lr->req.body);
            lr->req.body = NULL;
            lr->req.body_len = 0;
            return;
        }

        lr->req.body = body;
        lr->body_size = n;
    }

    memcpy(lr->req.body + lr->req.body_len, data, size);
    lr->req.body_len += size;
    lr->req.body[lr->req.body_len] = '\0';
}


static enum MHD_Result
loader_http_run(loader_http_t *h, loader_request_t *lr)
{
    enum MHD_Result  rc;

    if (lr->route == NULL) {
        lr->route = loader_route_find(h->app, &lr->req);

        if (lr->route == NULL) {
            rc = loader_http_unrouted(h, lr);
            loader_request_free(lr);
            return rc;
        }
    }

    lr->route->handler(&lr->req, &lr->res);

    rc = loader_response_send(lr, atomic_load(&h->draining));

    loader_request_free(lr);

    return rc;
}


/* 404, or 405 when routes of other methods match the path */
static enum MHD_Result
loader_http_unrouted(loader_http_t *h, loader_request_t *lr)
{
    shuttle_req      *req;
    enum MHD_Result   rc;
    char              allow[256], text[LOADER_ERRLEN];

    req = &lr->req;

    if (loader_route_allow(h->app, req->path, allow, sizeof(allow)) == 0) {

        /* a path no route takes: the static folder's, if there is one */
        if (loader_resources_static(req, atomic_load(&h->draining), &rc)
            == 0)
        {
            return rc;
        }

        snprintf(text, sizeof(text), "404 not found: no route for %s\n",
                 req->path);
        return loader_response_error(req->conn, 404, text, NULL,
                                     atomic_load(&h->draining));
    }

    snprintf(text, sizeof(text), "405 method not allowed: %s %s (allowed: "
             "%s)\n", req->method, req->path, allow);

    return loader_response_error(req->conn, 405, text, allow,
                                 atomic_load(&h->draining));
}


/* 413, or 500 when there was no memory for the body */
static enum MHD_Result
loader_http_refuse_body(loader_http_t *h, loader_request_t *lr)
{
    char  text[LOADER_ERRLEN];

    if (lr->body_status == 413) {
        snprintf(text, sizeof(text), "413 request body too large: more "
                 "than %zu bytes\n", h->app->max_body);

    } else {
        loader_log("%s %s: out of memory for the body", lr->req.method,
                   lr->req.path);
        snprintf(text, sizeof(text), "500 internal error: out of memory "
                 "for the body\n");
    }

    /* the body may be unread: the connection is closed after this */
    return loader_response_error(lr->req.conn, lr->body_status, text, NULL,
                                 1);
}


static void
loader_http_completed(void *cls, struct MHD_Connection *conn, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
    loader_conn_t                   *c;
    loader_request_t                *lr;
    const union MHD_ConnectionInfo  *info;

    lr = *ctx;

    if (lr != NULL && lr != (void *) &loader_http_nobody
        && lr != (void *) &loader_http_probe)
    {
        loader_request_free(lr);
        free(lr);
    }

    *ctx = NULL;

    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info != NULL && info->socket_context != NULL) {
        c = info->socket_context;
        atomic_store_explicit(&c->busy, 0, memory_order_relaxed);
    }
}


static void
loader_http_connection(void *cls, struct MHD_Connection *conn,
    void **socket_ctx, enum MHD_ConnectionNotificationCode code)
{
    uint64_t                         one;
    loader_http_t                   *h;
    loader_conn_t                   *c;
    const union MHD_ConnectionInfo  *info;

    h = cls;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        info = MHD_get_connection_info(conn,
                                       MHD_CONNECTION_INFO_CONNECTION_FD);

        c = malloc(sizeof(loader_conn_t));
        if (c == NULL || info == NULL) {
            /* unlisted: a drain cannot close it while it is idle */
            loader_log("a new connection: out of memory");
            free(c);
            *socket_ctx = NULL;
            return;
        }

        c->fd = info->connect_fd;
        c->probe = 0;
        atomic_init(&c->busy, 0);

        pthread_mutex_lock(&h->mutex);

        c->next = &h->conns;
        c->prev = h->conns.prev;
        h->conns.prev->next = c;
        h->conns.prev = c;

        pthread_mutex_unlock(&h->mutex);

        *socket_ctx = c;
        return;
    }

    c = *socket_ctx;
    *socket_ctx = NULL;

    pthread_mutex_lock(&h->mutex);

    if (c != NULL) {
        c->prev->next = c->next;
        c->next->prev = c->prev;
    }

    if (--h->nconns == 0 && (c == NULL || !c->probe)) {
        h->quiet = loader_http_now();
    }

    if (h->nconns == 0 && atomic_load(&h->draining)) {
        one = 1;
        if (write(h->drained_fd, &one, sizeof(one)) == -1
            && errno != EAGAIN)
        {
            loader_log("eventfd write: %s", strerror(errno));
        }
    }

    pthread_mutex_unlock(&h->mutex);

    free(c);
}


static void
loader_http_log(void *cls, const char *fmt, va_list args)
{
    loader_http_t  *h;
    va_list         copy;

    h = cls;

    if (atomic_load(&h->starting)) {
        va_copy(copy, args);
        vsnprintf(h->error, sizeof(h->error), fmt, copy);
        va_end(copy);

        h->error[strcspn(h->error, "\n")] = '\0';
    }

    loader_log_va("libmicrohttpd", fmt, args);
}
