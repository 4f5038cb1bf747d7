
/*
 * Fuzz target: the builder's answer to a POST /deploy as the module relays
 * it to the client, through the module's own code:
 * ngx_shuttle_module/ngx_http_shuttle_api.c is included here whole.  The
 * request to the builder is made by ngx_http_shuttle_deploy_request() and
 * taken as sent; then the read event of the builder's connection is
 * handed, as nginx's event loop would, to the handler the module set
 * (ngx_http_shuttle_deploy_event(): ngx_http_shuttle_deploy_read(), which
 * reads the answer into its buffer, and ngx_http_shuttle_deploy_relay(),
 * which parses it with nginx's ngx_http_parse_status_line() and
 * ngx_http_parse_header_line(), t/fuzz/ngx_fuzz_parse.c's stand-ins, and
 * answers the client).
 *
 * The input:
 *
 *   - byte 0: bits 0-3, K, how many chunk sizes follow; bits 4-5, how the
 *     builder's connection ends once the answer is read: 0, closed (recv()
 *     returns 0); 1, reset (NGX_ERROR); 2, never (NGX_AGAIN, then the
 *     read timer fires); 3, closed, but ngx_handle_read_event() fails;
 *   - K bytes: the sizes of what each recv() hands out in turn, cycled
 *     (never more than asked); 0 is NGX_AGAIN, the handler then returns
 *     and is called again, as on the next event; no sizes, or all 0: all
 *     that is asked for;
 *   - the rest: the builder's answer.
 *
 * An empty input is an empty answer.  Checked, for every input: nothing
 * read or written out of bounds (the buffers are exact-size allocations),
 * no recv() nor event after the connection is closed; the connection is
 * closed and the request finalized once, with NGX_OK, after a header sent
 * once with a status of 200-599, "application/json" and a Content-Length
 * that is the length of the body sent, which ends the answer.  Either the
 * builder's answer is relayed (its body a piece of the answer buffer):
 * then the answer was read whole, to its close, is at most the buffer's
 * size, its status is the one of the status line, its body every byte
 * after the first empty line, and the upload is the builder's for a 2xx
 * only; or the module's own {"error":"..."} answer: 502 for an answer too
 * long or not valid, 503 for a reset, 504 for the timeout (the upload then
 * left to the builder), 500 for ngx_handle_read_event()'s failure.  An
 * answer of the plain form the builder sends ("HTTP/1.x NNN text", headers
 * "Name: value", CRLFs) must be relayed.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_fuzz.h"
#include "fuzz.h"

#include "ngx_http_shuttle_api.c"


#define FUZZ_END_CLOSE    0
#define FUZZ_END_RESET    1
#define FUZZ_END_HANG     2
#define FUZZ_END_EVFAIL   3


typedef struct {
    const u_char          *answer;
    size_t                 len;
    size_t                 fed;
    const u_char          *sizes;
    ngx_uint_t             nsizes;
    ngx_uint_t             calls;
    ngx_uint_t             end;

    ngx_connection_t      *peer;        /* the builder's connection */
    ngx_http_request_t    *request;
    ngx_http_shuttle_deploy_t  *deploy;

    unsigned               armed:1;
    unsigned               hung:1;
    unsigned               reset:1;
    unsigned               evfailed:1;
    unsigned               closed_by_peer:1;
    unsigned               last:1;

    ngx_uint_t             closes;
    ngx_uint_t             headers;
    ngx_uint_t             finalized;
    ngx_int_t              rc;

    ngx_uint_t             status;
    off_t                  content_length;
    ngx_str_t              content_type;
    const u_char          *body_start;  /* the first buffer's pos */
    size_t                 body_len;
    u_char                 body[2 * NGX_MAX_ERROR_STR + 8192];
} fuzz_modrelay_t;


static ssize_t fuzz_modrelay_recv(ngx_connection_t *c, u_char *buf,
    size_t size);
static void fuzz_modrelay_check(const u_char *answer, size_t len);
static ngx_int_t fuzz_modrelay_plain(const u_char *answer, size_t len,
    ngx_uint_t *code);
static size_t fuzz_modrelay_body(const u_char *answer, size_t len);
static void fuzz_modrelay_json_error(void);


static fuzz_modrelay_t  fuzz;

static ngx_str_t        fuzz_builder =
    ngx_string("unix:/run/shuttle/builder.sock");
static ngx_str_t        fuzz_file_name = ngx_string("0000000042");


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void                       **ctxs;
    ngx_uint_t                   i, k, round, limit;
    ngx_pool_t                  *pool;
    ngx_event_t                 *rev, *wev;
    ngx_connection_t            *c, *peer;
    ngx_http_request_t          *r;
    ngx_http_shuttle_ctx_t      *ctx;
    ngx_http_shuttle_deploy_t   *d;

    ngx_memzero(&fuzz, offsetof(fuzz_modrelay_t, body));

    k = size ? (data[0] & 0x0f) : 0;

    if (size && k > size - 1) {
        k = size - 1;
    }

    fuzz.end = size ? ((data[0] >> 4) & 0x03) : FUZZ_END_CLOSE;
    fuzz.sizes = data + (size ? 1 : 0);
    fuzz.answer = data + (size ? 1 : 0) + k;
    fuzz.len = size ? size - 1 - k : 0;

    for (i = 0; i < k && fuzz.sizes[i] == 0; i++) { /* void */ }

    fuzz.nsizes = (i == k) ? 0 : k;

    pool = fuzz_ngx_pool();

    /* the client's request, as the module's handlers left it */

    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    ctx = ngx_pcalloc(pool, sizeof(ngx_http_shuttle_ctx_t));
    ctxs = ngx_pcalloc(pool, sizeof(void *));
    d = ngx_pcalloc(pool, sizeof(ngx_http_shuttle_deploy_t));

    /* and the builder's connection, as ngx_event_connect_peer() made it */

    peer = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    rev = ngx_pcalloc(pool, sizeof(ngx_event_t));
    wev = ngx_pcalloc(pool, sizeof(ngx_event_t));

    if (c == NULL || r == NULL || ctx == NULL || ctxs == NULL || d == NULL
        || peer == NULL || rev == NULL || wev == NULL)
    {
        abort();
    }

    c->log = fuzz_ngx_log();
    c->pool = pool;
    c->fd = 3;

    r->connection = c;
    r->pool = pool;
    r->main = r;
    r->method = NGX_HTTP_POST;
    r->http_version = NGX_HTTP_VERSION_11;
    r->ctx = ctxs;
    ctxs[ngx_http_shuttle_module.ctx_index] = ctx;

    ngx_str_set(&ctx->key, "ci");
    ngx_str_set(&ctx->secret, "sk_fuzz");
    ctx->deploy = d;

    d->request = r;
    ngx_str_set(&d->project, "fuzz");

    if (ngx_http_shuttle_deploy_request(r, d, &fuzz_file_name) != NGX_OK) {
        abort();
    }

    /* the request to the builder fills its buffer exactly; it went out */

    if (d->out->last != d->out->end) {
        abort();
    }

    d->out->pos = d->out->last;

    peer->fd = 4;
    peer->log = c->log;
    peer->pool = pool;
    peer->read = rev;
    peer->write = wev;
    peer->recv = fuzz_modrelay_recv;
    peer->data = d;

    rev->data = peer;
    rev->log = c->log;
    rev->handler = ngx_http_shuttle_deploy_event;
    wev->data = peer;
    wev->log = c->log;
    wev->write = 1;
    wev->handler = ngx_http_shuttle_deploy_sent;

    d->peer.connection = peer;
    d->peer.name = &fuzz_builder;
    d->peer.log = c->log;

    fuzz.peer = peer;
    fuzz.request = r;
    fuzz.deploy = d;

    /*
     * The event loop: a read event at a time, until the request is
     * finalized.  A handler that returns without finalizing it must have
     * asked for the next event.  Each round reads a byte, or says
     * NGX_AGAIN for a size 0, and not K of those in a row.
     */

    limit = (fuzz.len + 3) * (k + 1) + 4;

    for (round = 0; ; round++) {
        fuzz.armed = 0;
        rev->ready = 1;

        rev->handler(rev);

        if (fuzz.finalized) {
            break;
        }

        if (!fuzz.armed || round == limit) {
            abort();
        }

        if (fuzz.hung) {
            rev->timedout = 1;
        }
    }

    fuzz_modrelay_check(fuzz.answer, fuzz.len);

    fuzz_ngx_reset();

    return 0;
}


/* the builder's side of the socket: the answer in chunks */

static ssize_t
fuzz_modrelay_recv(ngx_connection_t *c, u_char *buf, size_t size)
{
    size_t   n;

    if (c != fuzz.peer || c->fd == (ngx_socket_t) -1 || fuzz.finalized
        || size == 0)
    {
        abort();
    }

    /* all of [buf, buf + size) is the module's to be written */

    buf[0] = 0xa5;
    buf[size - 1] = 0xa5;

    if (fuzz.fed == fuzz.len) {
        switch (fuzz.end) {

        case FUZZ_END_RESET:
            fuzz.reset = 1;
            c->read->error = 1;
            c->read->ready = 0;
            return NGX_ERROR;

        case FUZZ_END_HANG:
            fuzz.hung = 1;
            c->read->ready = 0;
            return NGX_AGAIN;

        default:
            fuzz.closed_by_peer = 1;
            c->read->eof = 1;
            c->read->ready = 0;
            return 0;
        }
    }

    n = size;

    if (fuzz.nsizes) {
        n = fuzz.sizes[fuzz.calls++ % fuzz.nsizes];

        if (n == 0) {
            c->read->ready = 0;
            return NGX_AGAIN;
        }
    }

    n = ngx_min(n, size);
    n = ngx_min(n, fuzz.len - fuzz.fed);

    ngx_memcpy(buf, fuzz.answer + fuzz.fed, n);
    fuzz.fed += n;

    if (n < size) {
        c->read->ready = 0;
    }

    return n;
}


static void
fuzz_modrelay_check(const u_char *answer, size_t len)
{
    size_t                      off;
    ngx_uint_t                  code, relayed;
    ngx_buf_t                  *in;
    ngx_http_shuttle_deploy_t  *d;

    d = fuzz.deploy;
    in = d->in;

    if (fuzz.finalized != 1 || fuzz.rc != NGX_OK || fuzz.headers != 1
        || fuzz.closes != 1 || d->peer.connection != NULL
        || fuzz.status < 200 || fuzz.status > 599
        || fuzz.content_type.len != sizeof("application/json") - 1
        || ngx_strncmp(fuzz.content_type.data, "application/json",
                       fuzz.content_type.len) != 0
        || fuzz.content_length < 0)
    {
        abort();
    }

    /* the body was sent whole, and ended the answer */

    if (!fuzz.request->header_only
        && (!fuzz.last || (off_t) fuzz.body_len != fuzz.content_length))
    {
        abort();
    }

    /* the module's own answers have a body, never a 204 or 304 */

    relayed = fuzz.request->header_only || fuzz.content_length == 0
              || (fuzz.body_start >= in->start && fuzz.body_start < in->end);

    if (getenv("FUZZ_NGX_LOG") != NULL) {
        fprintf(stderr, "answer: %lu, %s, %ld bytes\n",
                (unsigned long) fuzz.status,
                relayed ? "relayed" : "the module's", (long) fuzz.body_len);
    }

    if (relayed) {

        /* the answer was read whole, to the builder's close */

        if (fuzz.fed != len || !fuzz.closed_by_peer
            || len > NGX_HTTP_SHUTTLE_ANSWER_MAX
            || (size_t) (in->last - in->start) != len
            || ngx_memcmp(in->start, answer, len) != 0)
        {
            abort();
        }

        /* its status, its body after the first empty line */

        if (len < sizeof("HTTP/1.0 200") - 1
            || ngx_strncmp(answer, "HTTP/", 5) != 0)
        {
            abort();
        }

        off = fuzz_modrelay_body(answer, len);

        if ((off_t) (len - off) != fuzz.content_length
            || (!fuzz.request->header_only && fuzz.content_length
                && (fuzz.body_start != in->start + off
                    || ngx_memcmp(fuzz.body, answer + off, len - off) != 0)))
        {
            abort();
        }

        if (fuzz_modrelay_plain(answer, len, &code) == NGX_OK
            && code != fuzz.status)
        {
            abort();
        }

        if (d->handed != (fuzz.status < 300)) {
            abort();
        }

        return;
    }

    fuzz_modrelay_json_error();

    switch (fuzz.status) {

    case NGX_HTTP_BAD_GATEWAY:
        if (len > NGX_HTTP_SHUTTLE_ANSWER_MAX) {
            break;
        }

        if (!fuzz.closed_by_peer || fuzz.fed != len) {
            abort();
        }

        /* an answer of the builder's plain form is not refused */

        if (fuzz_modrelay_plain(answer, len, &code) == NGX_OK) {
            abort();
        }

        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        if (!fuzz.reset) {
            abort();
        }

        break;

    case NGX_HTTP_GATEWAY_TIME_OUT:
        if (!fuzz.hung || !d->handed) {
            abort();
        }

        break;

    case NGX_HTTP_INTERNAL_SERVER_ERROR:
        if (!fuzz.evfailed) {
            abort();
        }

        break;

    default:
        abort();
    }

    if (fuzz.status != NGX_HTTP_GATEWAY_TIME_OUT && d->handed) {
        abort();
    }
}


/*
 * An answer of the plain form the builder (libmicrohttpd) sends: NGX_OK
 * and its status, else NGX_DECLINED:
 *
 *     "HTTP/1." [01] " " [2-5] DIGIT DIGIT [" " text] CRLF
 *     (NAME ":" [" "] text CRLF)*
 *     CRLF
 *     body
 *
 * NAME of letters, digits and '-'; text of printable ASCII.
 */

static ngx_int_t
fuzz_modrelay_plain(const u_char *answer, size_t len, ngx_uint_t *code)
{
    const u_char  *p, *last, *name;

    p = answer;
    last = answer + len;

    if (len < sizeof("HTTP/1.0 200\r\n\r\n") - 1
        || ngx_strncmp(p, "HTTP/1.", 7) != 0
        || (p[7] != '0' && p[7] != '1') || p[8] != ' '
        || p[9] < '2' || p[9] > '5'
        || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
    {
        return NGX_DECLINED;
    }

    *code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    p += 12;

    if (p < last && *p == ' ') {
        while (p < last && *p >= 0x20 && *p < 0x7f) {
            p++;
        }
    }

    if (last - p < 2 || p[0] != CR || p[1] != LF) {
        return NGX_DECLINED;
    }

    p += 2;

    for ( ;; ) {
        if (last - p >= 2 && p[0] == CR && p[1] == LF) {
            return NGX_OK;
        }

        name = p;

        while (p < last
               && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                   || (*p >= '0' && *p <= '9') || *p == '-'))
        {
            p++;
        }

        if (p == name || p == last || *p != ':') {
            return NGX_DECLINED;
        }

        p++;

        while (p < last && *p >= 0x20 && *p < 0x7f) {
            p++;
        }

        if (last - p < 2 || p[0] != CR || p[1] != LF) {
            return NGX_DECLINED;
        }

        p += 2;
    }
}


/* where the body starts: after the first empty line (LF or CRLF) */

static size_t
fuzz_modrelay_body(const u_char *answer, size_t len)
{
    size_t  i;

    for (i = 0; i + 1 < len; i++) {
        if (answer[i] != LF) {
            continue;
        }

        if (answer[i + 1] == LF) {
            return i + 2;
        }

        if (i + 2 < len && answer[i + 1] == CR && answer[i + 2] == LF) {
            return i + 3;
        }
    }

    /* a relayed answer has its empty line */
    abort();
}


/* {"error":"deploy \"fuzz\": REASON (BUILDER)"}\n, a JSON string */

static void
fuzz_modrelay_json_error(void)
{
    size_t   i;
    u_char  *s;

    static const char  head[] = "{\"error\":\"deploy \\\"fuzz\\\": ";

    s = fuzz.body;

    if (fuzz.body_len < sizeof(head) - 1 + sizeof("\"}\n") - 1
        || ngx_memcmp(s, head, sizeof(head) - 1) != 0
        || ngx_memcmp(s + fuzz.body_len - 3, "\"}\n", 3) != 0)
    {
        abort();
    }

    for (i = sizeof(head) - 1; i < fuzz.body_len - 3; i++) {
        if (s[i] < 0x20 || s[i] == '"') {
            abort();
        }

        if (s[i] == '\\') {
            if (++i == fuzz.body_len - 3
                || memchr("\"\\/bfnrtu", s[i], 9) == NULL)
            {
                abort();
            }
        }
    }
}


/*
 * nginx's functions the relay runs, as nginx answers them, recording
 * what reached the client
 */

void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_pnalloc(pool, size);

    if (p != NULL) {
        ngx_memzero(p, size);
    }

    return p;
}


ngx_buf_t *
ngx_create_temp_buf(ngx_pool_t *pool, size_t size)
{
    ngx_buf_t  *b;

    b = ngx_calloc_buf(pool);
    if (b == NULL) {
        return NULL;
    }

    b->start = ngx_pnalloc(pool, size);
    if (b->start == NULL) {
        return NULL;
    }

    b->pos = b->start;
    b->last = b->start;
    b->end = b->start + size;
    b->temporary = 1;

    return b;
}


ngx_int_t
ngx_handle_read_event(ngx_event_t *rev, ngx_uint_t flags)
{
    if (rev != fuzz.peer->read || fuzz.peer->fd == (ngx_socket_t) -1
        || fuzz.finalized)
    {
        abort();
    }

    fuzz.armed = 1;

    if (fuzz.end == FUZZ_END_EVFAIL) {
        fuzz.evfailed = 1;
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_close_connection(ngx_connection_t *c)
{
    if (c != fuzz.peer || c->fd == (ngx_socket_t) -1) {
        abort();
    }

    c->fd = (ngx_socket_t) -1;
    fuzz.closes++;
}


void
ngx_http_run_posted_requests(ngx_connection_t *c)
{
    if (c != fuzz.request->connection) {
        abort();
    }
}


ngx_int_t
ngx_http_discard_request_body(ngx_http_request_t *r)
{
    return NGX_OK;
}


ngx_int_t
ngx_http_send_header(ngx_http_request_t *r)
{
    if (r != fuzz.request || fuzz.headers++ || fuzz.finalized) {
        abort();
    }

    fuzz.status = r->headers_out.status;
    fuzz.content_length = r->headers_out.content_length_n;
    fuzz.content_type = r->headers_out.content_type;

    /* as nginx's header filter: these have no body */

    if (fuzz.status == NGX_HTTP_NO_CONTENT
        || fuzz.status == NGX_HTTP_NOT_MODIFIED)
    {
        r->header_only = 1;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_output_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t        n;
    ngx_chain_t  *cl;

    if (r != fuzz.request || fuzz.headers != 1 || fuzz.last
        || fuzz.finalized)
    {
        abort();
    }

    for (cl = in; cl; cl = cl->next) {
        n = cl->buf->last - cl->buf->pos;

        if (cl->buf->last < cl->buf->pos
            || n > sizeof(fuzz.body) - fuzz.body_len)
        {
            abort();
        }

        if (fuzz.body_start == NULL) {
            fuzz.body_start = cl->buf->pos;
        }

        /* every byte sent is read */
        ngx_memcpy(fuzz.body + fuzz.body_len, cl->buf->pos, n);
        fuzz.body_len += n;

        if (cl->buf->last_buf) {
            fuzz.last = 1;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_send_special(ngx_http_request_t *r, ngx_uint_t flags)
{
    if (r != fuzz.request || fuzz.headers != 1 || fuzz.last
        || fuzz.finalized || !(flags & NGX_HTTP_LAST))
    {
        abort();
    }

    fuzz.last = 1;

    return NGX_OK;
}


void
ngx_http_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    if (r != fuzz.request || fuzz.finalized++) {
        abort();
    }

    fuzz.rc = rc;
}


/* nginx's JSON escaping, for {"error":"..."} */

uintptr_t
ngx_escape_json(u_char *dst, u_char *src, size_t size)
{
    u_char   ch;
    size_t   i, extra;

    static const u_char  hex[] = "0123456789abcdef";

    extra = 0;

    for (i = 0; i < size; i++) {
        ch = src[i];

        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            if (dst) {
                *dst++ = ch;
            }

            continue;
        }

        if (ch == '"' || ch == '\\' || ch == '\n' || ch == '\r'
            || ch == '\t' || ch == '\b' || ch == '\f')
        {
            extra += 1;

            if (dst) {
                *dst++ = '\\';
                *dst++ = (ch == '\n') ? 'n' : (ch == '\r') ? 'r'
                         : (ch == '\t') ? 't' : (ch == '\b') ? 'b'
                         : (ch == '\f') ? 'f' : ch;
            }

            continue;
        }

        extra += sizeof("\\u0000") - 2;

        if (dst) {
            dst = ngx_cpymem(dst, "\\u00", 4);
            *dst++ = hex[ch >> 4];
            *dst++ = hex[ch & 0xf];
        }
    }

    return dst ? (uintptr_t) dst : (uintptr_t) extra;
}


/*
 * ngx_vslprintf() for the formats the relay's answers use: %V, %s, %*s,
 * %d, %i, %ui, %O, %%; any other conversion aborts
 */

u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    u_char      *s;
    size_t       n, slen;
    ngx_str_t   *v;
    ngx_uint_t   unsign;
    char         num[32];

    while (*fmt && buf < last) {
        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        fmt++;
        slen = (size_t) -1;
        unsign = 0;

        if (*fmt == '*') {
            slen = va_arg(args, size_t);
            fmt++;
        }

        if (*fmt == 'u') {
            unsign = 1;
            fmt++;
        }

        s = NULL;
        n = 0;

        switch (*fmt) {

        case 'V':
            v = va_arg(args, ngx_str_t *);
            s = v->data;
            n = v->len;
            break;

        case 's':
            s = va_arg(args, u_char *);
            n = (slen == (size_t) -1) ? ngx_strlen(s) : slen;
            break;

        case 'd':
            n = snprintf(num, sizeof(num), unsign ? "%u" : "%d",
                         va_arg(args, int));
            break;

        case 'i':
            if (unsign) {
                n = snprintf(num, sizeof(num), "%lu",
                             (unsigned long) va_arg(args, ngx_uint_t));
            } else {
                n = snprintf(num, sizeof(num), "%ld",
                             (long) va_arg(args, ngx_int_t));
            }

            break;

        case 'O':
            n = snprintf(num, sizeof(num), "%lld",
                         (long long) va_arg(args, off_t));
            break;

        case '%':
            n = snprintf(num, sizeof(num), "%%");
            break;

        default:
            abort();
        }

        fmt++;

        if (s == NULL) {
            s = (u_char *) num;
        }

        n = ngx_min(n, (size_t) (last - buf));
        buf = ngx_cpymem(buf, s, n);
    }

    return buf;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}
