
/*
 * Fuzz target: an HTTP request as a loader receives it from nginx, through
 * the loader's own server (loader/http.c, request.c, route.c, response.c):
 * loader_http_start() with one thread, a listening socket on 127.0.0.1,
 * and per input a connection accepted by loader_http_accept(), the input
 * written to it raw, then the write side shut.  The routes' handler reads
 * what a service reads of a request (route parameters, the query, headers,
 * the body and the body as JSON: shuttle_req_*()) and answers with all of
 * it, as JSON and in response headers (shuttle_json(), shuttle_header()).
 *
 * What the loader sends must be an HTTP/1.x response.  The connection is
 * given up 500 ms after the input if no answer came, 100 ms after an
 * answer not followed by a close (see below).  The input is the bytes of the connection: one or
 * more requests.
 */


#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loader.h"
#include "fuzz.h"


#define FUZZ_REQUEST_WAIT_MS  500
#define FUZZ_REQUEST_MORE_MS  100


static void fuzz_request_start(void);
static void fuzz_request_echo(shuttle_req *req, shuttle_res *res);


static const char  *fuzz_request_routes[][2] = {
    { "GET", "/" },
    { "GET", "/users/:id" },
    { "POST", "/users/:id/posts/:post" },
    { "*", "/files/*rest" },
    { "PUT", "/json" },
    { "DELETE", "/:x/:y" },
};

static loader_http_t       fuzz_request_http;
static struct sockaddr_in  fuzz_request_addr;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            fd, rc;
    char           buf[65536], head[8];
    size_t         nhead;
    ssize_t        n;
    struct pollfd  pfd;

    fuzz_request_start();

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1
        || connect(fd, (struct sockaddr *) &fuzz_request_addr,
                   sizeof(fuzz_request_addr)) != 0)
    {
        perror("fuzz request: connect");
        exit(2);
    }

    /* the loader accepts when its socket is readable: so does this */

    pfd.fd = fuzz_request_http.listen_fd;
    pfd.events = POLLIN;

    if (poll(&pfd, 1, 5000) != 1
        || loader_http_accept(&fuzz_request_http) != 0)
    {
        fprintf(stderr, "fuzz request: loader_http_accept failed\n");
        exit(2);
    }

    /* the loader may answer and close before it has read everything */
    (void) send(fd, data, size, MSG_NOSIGNAL);
    (void) shutdown(fd, SHUT_WR);

    nhead = 0;

    for ( ;; ) {
        pfd.fd = fd;
        pfd.events = POLLIN;

        rc = poll(&pfd, 1, nhead ? FUZZ_REQUEST_MORE_MS
                                 : FUZZ_REQUEST_WAIT_MS);

        if (rc == 0) {
            /*
             * No answer, or no close after one.  libmicrohttpd (epoll,
             * edge-triggered, MHD_USE_TURBO) may miss a FIN that arrives
             * with the last bytes: it reads the bytes, not the end, and
             * waits for more until its timeout (LOADER_IDLE_TIMEOUT).
             * Not the parsing under test: the connection is given up.
             */
            break;
        }

        n = read(fd, buf, sizeof(buf));

        if (n <= 0) {
            break;
        }

        while (nhead < sizeof(head) && n > 0) {
            head[nhead] = buf[nhead];
            nhead++;
            n--;
        }
    }

    close(fd);

    if (nhead > 0
        && (nhead < 7 || memcmp(head, "HTTP/1.", 7) != 0))
    {
        /* what was sent back is not an HTTP/1.x response */
        abort();
    }

    return 0;
}


static void
fuzz_request_start(void)
{
    int           lfd;
    char          err[256];
    size_t        i;
    socklen_t     len;
    shuttle_app  *app;
    static int    started;

    if (started) {
        return;
    }

    fuzz_std_fds();

    app = loader_app_create();
    if (app == NULL) {
        abort();
    }

    for (i = 0; i < sizeof(fuzz_request_routes) / sizeof(fuzz_request_routes[0]);
         i++)
    {
        if (shuttle_route(app, fuzz_request_routes[i][0],
                          fuzz_request_routes[i][1], fuzz_request_echo)
            != 0)
        {
            abort();
        }
    }

    shuttle_app_set_max_body(app, 16384);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    memset(&fuzz_request_addr, 0, sizeof(fuzz_request_addr));
    fuzz_request_addr.sin_family = AF_INET;
    fuzz_request_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(fuzz_request_addr);

    if (lfd == -1
        || bind(lfd, (struct sockaddr *) &fuzz_request_addr, len) != 0
        || listen(lfd, 16) != 0
        || getsockname(lfd, (struct sockaddr *) &fuzz_request_addr, &len)
           != 0)
    {
        perror("fuzz request: listen");
        exit(2);
    }

    if (loader_http_start(&fuzz_request_http, app, lfd, 1, err, sizeof(err))
        != 0)
    {
        fprintf(stderr, "fuzz request: %s\n", err);
        exit(2);
    }

    started = 1;
}


static void
fuzz_request_echo(shuttle_req *req, shuttle_res *res)
{
    size_t        i, len;
    json_t       *j;
    const char   *s;
    json_error_t  jerr;

    static const char  *params[] = { "id", "post", "rest", "x", "y" };
    static const char  *queries[] = { "q", "Q", "", "a b" };

    s = shuttle_req_body(req, &len);

    if (strlen(s) > len) {
        /* the body is NUL-terminated at its length, not beyond */
        abort();
    }

    j = json_object();

    /* a string that is not UTF-8 is left out: json_string() refuses it */

    (void) json_object_set_new(j, "method",
                               json_string(shuttle_req_method(req)));
    (void) json_object_set_new(j, "path", json_string(shuttle_req_path(req)));

    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        s = shuttle_req_param(req, params[i]);
        if (s != NULL) {
            (void) json_object_set_new(j, params[i], json_string(s));
        }
    }

    for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        s = shuttle_req_query(req, queries[i]);
        if (s != NULL) {
            (void) json_object_set_new(j, queries[i], json_string(s));
        }
    }

    s = shuttle_req_header(req, "Content-Type");
    if (s != NULL) {
        (void) json_object_set_new(j, "type", json_string(s));
    }

    (void) json_object_set_new(j, "length", json_integer(len));
    (void) json_object_set_new(j, "json", shuttle_req_json(req, &jerr));

    /* values a service may well put in a header: refused or sent */
    (void) shuttle_header(res, "X-Id", shuttle_req_param(req, "id"));
    (void) shuttle_header(res, "X-Q", shuttle_req_query(req, "q"));

    if (shuttle_req_app(req) == NULL) {
        abort();
    }

    (void) shuttle_json(res, 200, j);
}
