
/*
 * shuttle for nginx: the API host.
 *
 * "shuttle_api_keys" loads the hashed bearer keys; "shuttle_auth on" checks
 * the key in the access phase (the builder's proxied /v1/ API) and sets
 * $shuttle_key; "shuttle_deploy" is the content handler of POST /deploy:
 * the key is checked before the body is read, nginx writes the body into
 * the builder's spool directory itself, and the builder is told about it
 * over its unix socket without blocking the worker, with the client's
 * bearer key: the builder checks it again and takes the key's name from
 * it, never from nginx.  The builder's answer is relayed as is.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/statvfs.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_shuttle_module.h"


#define NGX_HTTP_SHUTTLE_HASH_LEN     32        /* SHA-256 */
#define NGX_HTTP_SHUTTLE_ANSWER_MAX   4096      /* the builder's answer */


typedef struct {
    ngx_str_t                    name;
    u_char                       hash[NGX_HTTP_SHUTTLE_HASH_LEN];
} ngx_http_shuttle_key_t;


/* a POST /deploy on its way to the builder */
typedef struct {
    ngx_http_request_t          *request;
    ngx_str_t                    project;
    ngx_peer_connection_t        peer;
    ngx_buf_t                   *out;       /* the request to the builder */
    ngx_buf_t                   *in;        /* its answer */
    ngx_uint_t                   handed;    /* the builder owns the upload */
} ngx_http_shuttle_deploy_t;


static ngx_int_t ngx_http_shuttle_authenticate(ngx_http_request_t *r,
    ngx_http_shuttle_loc_conf_t *slcf, const char **reason);
static ngx_int_t ngx_http_shuttle_challenge(ngx_http_request_t *r,
    const char *reason);
static ngx_int_t ngx_http_shuttle_unauthorized(ngx_http_request_t *r,
    const char *reason);
static ngx_int_t ngx_http_shuttle_deploy_room(ngx_http_request_t *r);
static void ngx_http_shuttle_deploy_body(ngx_http_request_t *r);
static void ngx_http_shuttle_deploy_cleanup(void *data);
static ngx_int_t ngx_http_shuttle_deploy_request(ngx_http_request_t *r,
    ngx_http_shuttle_deploy_t *d, ngx_str_t *file);
static void ngx_http_shuttle_deploy_event(ngx_event_t *ev);
static void ngx_http_shuttle_deploy_write(ngx_event_t *wev);
static void ngx_http_shuttle_deploy_sent(ngx_event_t *wev);
static void ngx_http_shuttle_deploy_read(ngx_event_t *rev);
static void ngx_http_shuttle_deploy_relay(ngx_http_shuttle_deploy_t *d);
static void ngx_http_shuttle_deploy_fail(ngx_http_shuttle_deploy_t *d,
    ngx_uint_t status, const char *reason);
static void ngx_http_shuttle_deploy_close(ngx_http_shuttle_deploy_t *d);
static ngx_int_t ngx_http_shuttle_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_shuttle_load_keys(ngx_conf_t *cf,
    ngx_http_shuttle_loc_conf_t *slcf);
static ngx_int_t ngx_http_shuttle_hex_decode(u_char *dst, u_char *src,
    size_t n);


/*
 * "shuttle_auth on": the access phase.  The key's name goes to $shuttle_key
 * (for logs); the builder behind proxy_pass gets the client's
 * Authorization header as is, and checks the key itself.
 */

ngx_int_t
ngx_http_shuttle_auth_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    const char                   *reason;
    ngx_http_shuttle_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_shuttle_module);

    if (!slcf->auth) {
        return NGX_DECLINED;
    }

    rc = ngx_http_shuttle_authenticate(r, slcf, &reason);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    /*
     * The status, as auth_basic returns it: the access phase applies
     * "satisfy any", nginx finalizes the request, and "error_page 401"
     * answers it where the operator set one.
     */

    if (ngx_http_shuttle_challenge(r, reason) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_UNAUTHORIZED;
}


/*
 * NGX_OK with the key's name in the request's ctx, NGX_DECLINED with the
 * reason there is none, or NGX_HTTP_INTERNAL_SERVER_ERROR.
 */

static ngx_int_t
ngx_http_shuttle_authenticate(ngx_http_request_t *r,
    ngx_http_shuttle_loc_conf_t *slcf, const char **reason)
{
    u_char                   hash[NGX_HTTP_SHUTTLE_HASH_LEN];
    ngx_str_t                token;
    ngx_uint_t               i, found;
    unsigned int             len;
    ngx_http_shuttle_ctx_t  *ctx;
    ngx_http_shuttle_key_t  *key;

    ctx = ngx_http_shuttle_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->key.len) {
        return NGX_OK;
    }

    *reason = "missing bearer key: send \"Authorization: Bearer <key>\"";

    if (r->headers_in.authorization == NULL) {
        return NGX_DECLINED;
    }

    token = r->headers_in.authorization->value;

    if (token.len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(token.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    token.data += sizeof("Bearer ") - 1;
    token.len -= sizeof("Bearer ") - 1;

    while (token.len && token.data[0] == ' ') {
        token.data++;
        token.len--;
    }

    while (token.len && token.data[token.len - 1] == ' ') {
        token.len--;
    }

    *reason = "invalid bearer key";

    if (token.len == 0 || slcf->keys == NULL) {
        return NGX_DECLINED;
    }

    if (EVP_Digest(token.data, token.len, hash, &len, EVP_sha256(), NULL)
        != 1)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "shuttle: EVP_Digest(sha256) failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* every key is compared, in constant time */

    found = NGX_CONF_UNSET_UINT;
    key = slcf->keys->elts;

    for (i = 0; i < slcf->keys->nelts; i++) {
        if (CRYPTO_memcmp(hash, key[i].hash, NGX_HTTP_SHUTTLE_HASH_LEN) == 0) {
            found = i;
        }
    }

    if (found == NGX_CONF_UNSET_UINT) {
        return NGX_DECLINED;
    }

    ctx->key = key[found].name;
    ctx->secret = token;

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_unauthorized(ngx_http_request_t *r, const char *reason)
{
    if (ngx_http_shuttle_challenge(r, reason) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_shuttle_json_error(r, NGX_HTTP_UNAUTHORIZED, "%s",
                                       reason);
}


/* the reason logged, and "WWW-Authenticate: Bearer" for the answer */

static ngx_int_t
ngx_http_shuttle_challenge(ngx_http_request_t *r, const char *reason)
{
    ngx_table_elt_t  *h;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "shuttle: %s", reason);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Bearer realm=\"shuttle\"");

    r->headers_out.www_authenticate = h;

    return NGX_OK;
}


/* "shuttle_deploy": POST /deploy?project=NAME */

ngx_int_t
ngx_http_shuttle_deploy_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                     project;
    const char                   *reason;
    ngx_pool_cleanup_t           *cln;
    ngx_http_shuttle_ctx_t       *ctx;
    ngx_http_shuttle_deploy_t    *d;
    ngx_http_shuttle_loc_conf_t  *slcf;

    if (r->method != NGX_HTTP_POST) {
        if (ngx_http_shuttle_allow(r, "POST") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_shuttle_json_error(r, NGX_HTTP_NOT_ALLOWED,
                                           "use POST /deploy?project=NAME");
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_shuttle_module);

    /* before a byte of the body is read */

    rc = ngx_http_shuttle_authenticate(r, slcf, &reason);

    if (rc == NGX_DECLINED) {
        return ngx_http_shuttle_unauthorized(r, reason);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_arg(r, (u_char *) "project", sizeof("project") - 1, &project)
        != NGX_OK)
    {
        return ngx_http_shuttle_json_error(r, NGX_HTTP_BAD_REQUEST,
                                           "missing ?project=NAME");
    }

    if (!shuttle_valid_name((char *) project.data, project.len)) {
        return ngx_http_shuttle_json_error(r, NGX_HTTP_BAD_REQUEST,
                                           "\"%V\" is not a project name "
                                           "(a DNS label: 1-63 of a-z, 0-9 "
                                           "and '-', not at either end)",
                                           &project);
    }

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_shuttle_deploy_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->request = r;
    d->project = project;

    rc = ngx_http_shuttle_deploy_room(r);

    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_shuttle_get_ctx(r);
    ctx->deploy = d;

    /* an upload the builder did not take is removed with the request */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_shuttle_deploy_cleanup;
    cln->data = d;

    /*
     * the location's client_body_temp_path is the spool directory: the
     * file nginx writes is the one the builder renames into place
     */

    r->request_body_in_file_only = 1;
    r->request_body_in_persistent_file = 1;
    r->request_body_file_log_level = 0;

    /* "client_body_in_file_only clean" must not remove it under the
       builder: it is the builder's once handed over */
    r->request_body_in_clean_file = 0;

    rc = ngx_http_read_client_request_body(r, ngx_http_shuttle_deploy_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * An upload of a known length that the spool's file system cannot hold
 * is refused before a byte of it is read, saying so (nginx would fail
 * half way with its own 500 and the cause in its error log only).  One
 * statvfs(2) per deploy, none on the request path of the apps.
 */

static ngx_int_t
ngx_http_shuttle_deploy_room(ngx_http_request_t *r)
{
    off_t                          avail;
    u_char                         path[NGX_MAX_PATH + 1];
    struct statvfs                 vfs;
    ngx_http_shuttle_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_shuttle_module);

    if (r->headers_in.content_length_n <= 0 || smcf->spool == NULL
        || smcf->spool->name.len > NGX_MAX_PATH)
    {
        return NGX_OK;
    }

    ngx_cpystrn(path, smcf->spool->name.data, smcf->spool->name.len + 1);

    if (statvfs((char *) path, &vfs) == -1) {
        return NGX_OK;      /* the write will tell */
    }

    avail = (off_t) vfs.f_bavail * (off_t) vfs.f_frsize;

    if (avail >= r->headers_in.content_length_n) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "shuttle: upload of %O bytes refused: no space left on "
                  "device: the spool %V has %O bytes free",
                  r->headers_in.content_length_n, &smcf->spool->name, avail);

    return ngx_http_shuttle_json_error(r, NGX_HTTP_INSUFFICIENT_STORAGE,
                                       "upload of %O bytes: no space left "
                                       "on device: the platform's spool has "
                                       "%O bytes free; its operator frees "
                                       "some", r->headers_in.content_length_n,
                                       avail);
}


static void
ngx_http_shuttle_deploy_body(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      file;
    ngx_temp_file_t               *tf;
    ngx_file_info_t                fi;
    struct sockaddr_un            *saun;
    ngx_http_shuttle_ctx_t        *ctx;
    ngx_http_shuttle_deploy_t     *d;
    ngx_http_shuttle_main_conf_t  *smcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_shuttle_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_http_shuttle_module);
    d = ctx->deploy;

    tf = r->request_body ? r->request_body->temp_file : NULL;

    if (tf == NULL || tf->offset == 0) {
        rc = ngx_http_shuttle_json_error(r, NGX_HTTP_BAD_REQUEST,
                                         "empty upload: send the project "
                                         "as a gzip'd tar body");
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* the builder is told the file's name in the spool, not a path */

    file = tf->file.name;

    while (file.len && file.data[file.len - 1] != '/') {
        file.len--;
    }

    file.data += file.len;
    file.len = tf->file.name.len - file.len;

    if (ngx_http_shuttle_deploy_request(r, d, &file) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /*
     * No socket file: the builder is not running.  nginx would log the
     * failed connect() at "crit", which a client must not be able to
     * cause.
     */

    saun = (struct sockaddr_un *) smcf->builder->sockaddr;

    if (ngx_file_info(saun->sun_path, &fi) == NGX_FILE_ERROR
        && ngx_errno == NGX_ENOENT)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, NGX_ENOENT,
                      "shuttle: deploy \"%V\": connect() to %V failed, "
                      "is shuttle-builder running?", &d->project,
                      &smcf->builder->name);
        d->peer.name = &smcf->builder->name;
        ngx_http_shuttle_deploy_fail(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "cannot connect to the builder");
        return;
    }

    d->peer.sockaddr = smcf->builder->sockaddr;
    d->peer.socklen = smcf->builder->socklen;
    d->peer.name = &smcf->builder->name;
    d->peer.get = ngx_event_get_peer;
    d->peer.log = r->connection->log;
    d->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&d->peer);

    if (rc == NGX_ERROR || rc == NGX_DECLINED || rc == NGX_BUSY) {
        ngx_http_shuttle_deploy_fail(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "cannot connect to the builder");
        return;
    }

    d->peer.connection->data = d;
    d->peer.connection->pool = r->pool;
    d->peer.connection->read->handler = ngx_http_shuttle_deploy_event;
    d->peer.connection->write->handler = ngx_http_shuttle_deploy_event;

    /* one shuttle_builder_timeout for the whole hand-off: connect, send,
       answer */

    ngx_add_timer(d->peer.connection->write, smcf->builder_timeout);
    ngx_add_timer(d->peer.connection->read, smcf->builder_timeout);

    if (rc == NGX_OK) {
        ngx_http_shuttle_deploy_write(d->peer.connection->write);
    }
}


/*
 * "POST /deploy?project=..&file=.. HTTP/1.0" to the builder, with the
 * client's "Authorization: Bearer <key>": the builder finds whose upload
 * it is from the key itself
 */

static ngx_int_t
ngx_http_shuttle_deploy_request(ngx_http_request_t *r,
    ngx_http_shuttle_deploy_t *d, ngx_str_t *file)
{
    size_t                   len;
    ngx_buf_t               *b;
    ngx_http_shuttle_ctx_t  *ctx;

    static const char        head[] = "POST /deploy?project=";
    static const char        auth[] = " HTTP/1.0" CRLF
                                      "Host: shuttle-builder" CRLF
                                      "Authorization: Bearer ";
    static const char        tail[] = CRLF "Content-Length: 0" CRLF CRLF;

    ctx = ngx_http_get_module_ctx(r, ngx_http_shuttle_module);

    /*
     * the name is a DNS label, the file name nginx's digits; the key is
     * the one of a valid key's hash, from a header line of the request
     */

    len = sizeof(head) - 1 + d->project.len
          + sizeof("&file=") - 1 + file->len
          + sizeof(auth) - 1 + ctx->secret.len
          + sizeof(tail) - 1;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_sprintf(b->last, "%s%V&file=%V%s%V%s", head, &d->project,
                          file, auth, &ctx->secret, tail);

    d->out = b;

    d->in = ngx_create_temp_buf(r->pool, NGX_HTTP_SHUTTLE_ANSWER_MAX);
    if (d->in == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The builder connection's events: they finalize the request from outside
 * its own handlers, so the requests that posted (subrequests, the
 * request's own posted events) run here after, as ngx_http_upstream does.
 */

static void
ngx_http_shuttle_deploy_event(ngx_event_t *ev)
{
    ngx_connection_t           *c, *rc;
    ngx_http_shuttle_deploy_t  *d;

    c = ev->data;
    d = c->data;
    rc = d->request->connection;

    if (ev->write) {
        ngx_http_shuttle_deploy_write(ev);

    } else {
        ngx_http_shuttle_deploy_read(ev);
    }

    ngx_http_run_posted_requests(rc);
}


static void
ngx_http_shuttle_deploy_write(ngx_event_t *wev)
{
    int                            err;
    ssize_t                        n;
    socklen_t                      len;
    ngx_connection_t              *c;
    ngx_http_shuttle_deploy_t     *d;

    c = wev->data;
    d = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, wev->log, NGX_ETIMEDOUT,
                      "shuttle: deploy \"%V\": builder %V did not take "
                      "the upload in time", &d->project, d->peer.name);
        ngx_http_shuttle_deploy_fail(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "the builder does not answer");
        return;
    }

    if (d->out->pos == d->out->start) {

        /* the first write: did the connect() succeed? */

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_log_error(NGX_LOG_ERR, wev->log, err,
                          "shuttle: connect() to builder %V failed",
                          d->peer.name);
            ngx_http_shuttle_deploy_fail(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "cannot connect to the builder");
            return;
        }
    }

    while (d->out->pos < d->out->last) {
        n = c->send(c, d->out->pos, d->out->last - d->out->pos);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_shuttle_deploy_fail(d,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR,
                                             "internal error");
            }
            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_shuttle_deploy_fail(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "the builder closed the "
                                         "connection");
            return;
        }

        d->out->pos += n;
    }

    /* all sent: wait for the answer */

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    wev->handler = ngx_http_shuttle_deploy_sent;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_shuttle_deploy_fail(d, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "internal error");
        return;
    }

    if (c->read->ready) {
        ngx_http_shuttle_deploy_read(c->read);
    }
}


static void
ngx_http_shuttle_deploy_sent(ngx_event_t *wev)
{
    /* nothing more to send */
}


static void
ngx_http_shuttle_deploy_read(ngx_event_t *rev)
{
    u_char                      extra;
    ssize_t                     n;
    ngx_buf_t                  *b;
    ngx_connection_t           *c;
    ngx_http_shuttle_deploy_t  *d;

    c = rev->data;
    d = c->data;
    b = d->in;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, rev->log, NGX_ETIMEDOUT,
                      "shuttle: deploy \"%V\": builder %V did not answer "
                      "in time", &d->project, d->peer.name);

        if (d->out->pos < d->out->last) {
            ngx_http_shuttle_deploy_fail(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "the builder does not answer");
            return;
        }

        /*
         * The builder has the whole hand-off: it may have queued the
         * upload, and taken its file, already.  The file is left to it,
         * and the client is not told the deploy failed.
         */

        d->handed = 1;

        ngx_http_shuttle_deploy_fail(d, NGX_HTTP_GATEWAY_TIME_OUT,
                                     "the builder did not answer in time: "
                                     "whether it queued the upload is "
                                     "unknown, see the project's "
                                     "deployments before deploying again");
        return;
    }

    if (d->out->pos < d->out->last) {
        /* an early close shows here too; the write handler reports it */
        return;
    }

    for ( ;; ) {
        if (b->last == b->end) {
            /* full: an answer of exactly this size ends here */

            n = c->recv(c, &extra, 1);

            if (n == 0) {
                break;
            }

            if (n > 0) {
                ngx_log_error(NGX_LOG_ERR, rev->log, 0,
                              "shuttle: deploy \"%V\": builder %V answered "
                              "more than %d bytes", &d->project,
                              d->peer.name, NGX_HTTP_SHUTTLE_ANSWER_MAX);
                ngx_http_shuttle_deploy_fail(d, NGX_HTTP_BAD_GATEWAY,
                                             "invalid answer from the "
                                             "builder");
                return;
            }

        } else {
            n = c->recv(c, b->last, b->end - b->last);
        }

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_shuttle_deploy_fail(d,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR,
                                             "internal error");
            }
            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_shuttle_deploy_fail(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "the builder closed the "
                                         "connection");
            return;
        }

        if (n == 0) {
            break;
        }

        b->last += n;
    }

    /* HTTP/1.0: the answer ends with the connection */

    ngx_http_shuttle_deploy_relay(d);
}


static void
ngx_http_shuttle_deploy_relay(ngx_http_shuttle_deploy_t *d)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_http_status_t    status;
    ngx_http_request_t  *r;

    r = d->request;
    b = d->in;

    ngx_memzero(&status, sizeof(ngx_http_status_t));
    r->state = 0;

    rc = ngx_http_parse_status_line(r, b, &status);

    if (rc != NGX_OK) {
        goto invalid;
    }

    /* skip the headers: every answer of the builder is JSON */

    for ( ;; ) {
        rc = ngx_http_parse_header_line(r, b, 1);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_HTTP_PARSE_HEADER_DONE) {
            break;
        }

        goto invalid;
    }

    if (status.code < 200 || status.code > 599) {
        goto invalid;
    }

    d->handed = (status.code >= 200 && status.code < 300);

    ngx_http_shuttle_deploy_close(d);

    if (status.code >= 500) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "shuttle: deploy \"%V\": builder answered %ui: %*s",
                      &d->project, status.code,
                      (size_t) (b->last - b->pos), b->pos);
    }

    rc = ngx_http_shuttle_send(r, status.code, b->pos, b->last - b->pos);

    ngx_http_finalize_request(r, rc);
    return;

invalid:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "shuttle: deploy \"%V\": builder %V sent an invalid "
                  "answer", &d->project, d->peer.name);

    ngx_http_shuttle_deploy_fail(d, NGX_HTTP_BAD_GATEWAY,
                                 "invalid answer from the builder");
}


static void
ngx_http_shuttle_deploy_fail(ngx_http_shuttle_deploy_t *d, ngx_uint_t status,
    const char *reason)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = d->request;

    ngx_http_shuttle_deploy_close(d);

    rc = ngx_http_shuttle_json_error(r, status, "deploy \"%V\": %s (%V)",
                                     &d->project, reason, d->peer.name);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_shuttle_deploy_close(ngx_http_shuttle_deploy_t *d)
{
    if (d->peer.connection) {
        ngx_close_connection(d->peer.connection);
        d->peer.connection = NULL;
    }
}


/*
 * The request's pool goes: a connection to the builder still open is
 * closed, and an upload the builder did not take (refused, unreachable,
 * over the size limit, cut by the client) is removed from the spool.
 */

static void
ngx_http_shuttle_deploy_cleanup(void *data)
{
    ngx_http_shuttle_deploy_t *d = data;

    ngx_temp_file_t     *tf;
    ngx_http_request_t  *r;

    ngx_http_shuttle_deploy_close(d);

    r = d->request;

    if (d->handed || r->request_body == NULL) {
        return;
    }

    tf = r->request_body->temp_file;

    if (tf == NULL || tf->file.name.data == NULL) {
        return;
    }

    if (ngx_delete_file(tf->file.name.data) == NGX_FILE_ERROR
        && ngx_errno != NGX_ENOENT)
    {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      ngx_delete_file_n " \"%s\" failed",
                      tf->file.name.data);
    }
}


/* {"error":"..."}, the answer of every refusal of the API host */

ngx_int_t
ngx_http_shuttle_json_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...)
{
    u_char    *p, *body, msg[NGX_MAX_ERROR_STR];
    size_t     n, len;
    va_list    args;

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    n = p - msg;
    len = sizeof("{\"error\":\"\"}\n") - 1 + n + ngx_escape_json(NULL, msg, n);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, "{\"error\":\"", sizeof("{\"error\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, msg, n);
    p = ngx_cpymem(p, "\"}\n", sizeof("\"}\n") - 1);

    return ngx_http_shuttle_send(r, status, body, p - body);
}


/* a complete answer with a JSON body; the request is finalized with it */

static ngx_int_t
ngx_http_shuttle_send(ngx_http_request_t *r, ngx_uint_t status, u_char *body,
    size_t len)
{
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_chain_t  out;

    /*
     * A refusal: no "100 Continue" goes out first, as with nginx's own
     * error pages, so a client is not invited to send a body for nothing.
     */
    r->expect_tested = 1;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    /* an empty body ends the answer too, else the header stays buffered */

    if (len == 0) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* an "Allow" header for a 405 */

ngx_int_t
ngx_http_shuttle_allow(ngx_http_request_t *r, char *methods)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = (u_char *) methods;
    h->value.len = ngx_strlen(methods);

    return NGX_OK;
}


/* $shuttle_key: the name of the key the request authenticated with */

ngx_int_t
ngx_http_shuttle_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_shuttle_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_shuttle_module);

    /*
     * Not cacheable: empty until the access phase authenticates the
     * request, the key's name after; a value taken earlier (a log format,
     * a map) must not stick.
     */

    v->no_cacheable = 1;

    if (ctx == NULL || ctx->key.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->key.len;
    v->valid = 1;
    v->not_found = 0;
    v->data = ctx->key.data;

    return NGX_OK;
}


/* configuration ----------------------------------------------------------- */


char *
ngx_http_shuttle_api_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->keys != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    slcf->keys_file = value[1];

    if (ngx_conf_full_name(cf->cycle, &slcf->keys_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_shuttle_load_keys(cf, slcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The keys file: "name:sha256-hex" lines, '#' comments and blank lines.
 * Read once, as nginx reads its configuration (a reload picks up new keys).
 */

static ngx_int_t
ngx_http_shuttle_load_keys(ngx_conf_t *cf, ngx_http_shuttle_loc_conf_t *slcf)
{
    u_char                  *p, *last, *line, *colon, *end, *buf, c;
    ssize_t                  n;
    ngx_fd_t                 fd;
    ngx_uint_t               lineno, i;
    ngx_file_t               file;
    ngx_file_info_t          fi;
    ngx_http_shuttle_key_t  *key;

    fd = ngx_open_file(slcf->keys_file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                       0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "shuttle_api_keys: cannot open \"%s\"",
                           slcf->keys_file.data);
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = slcf->keys_file;
    file.log = cf->log;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 16 * 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "shuttle_api_keys: \"%s\" cannot be read or is "
                           "over 16 MB", slcf->keys_file.data);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(cf->temp_pool, ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, buf, ngx_file_size(&fi), 0);

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed",
                      slcf->keys_file.data);
    }

    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    slcf->keys = ngx_array_create(cf->pool, 4, sizeof(ngx_http_shuttle_key_t));
    if (slcf->keys == NULL) {
        return NGX_ERROR;
    }

    last = buf + n;
    lineno = 0;

    for (line = buf; line < last; line = end + 1) {
        lineno++;

        end = ngx_strlchr(line, last, '\n');
        if (end == NULL) {
            end = last;
        }

        p = end;
        while (p > line && (p[-1] == '\r' || p[-1] == ' ' || p[-1] == '\t')) {
            p--;
        }

        while (line < p && (*line == ' ' || *line == '\t')) {
            line++;
        }

        if (line == p || *line == '#') {
            continue;
        }

        colon = ngx_strlchr(line, p, ':');

        if (colon == NULL || colon == line || colon - line > 64
            || p - (colon + 1) != 2 * NGX_HTTP_SHUTTLE_HASH_LEN)
        {
            goto invalid;
        }

        for (i = 0; line + i < colon; i++) {
            c = line[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '-'
                  || c == '.'))
            {
                goto invalid;
            }
        }

        key = ngx_array_push(slcf->keys);
        if (key == NULL) {
            return NGX_ERROR;
        }

        key->name.len = colon - line;
        key->name.data = ngx_pnalloc(cf->pool, key->name.len);
        if (key->name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(key->name.data, line, key->name.len);

        if (ngx_http_shuttle_hex_decode(key->hash, colon + 1,
                                        NGX_HTTP_SHUTTLE_HASH_LEN)
            != NGX_OK)
        {
            goto invalid;
        }
    }

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "shuttle_api_keys: \"%s\" line %ui is not "
                       "\"name:sha256-hex\" (a name of [A-Za-z0-9_.-], "
                       "64 hex digits)", slcf->keys_file.data, lineno);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_shuttle_hex_decode(u_char *dst, u_char *src, size_t n)
{
    u_char      c;
    ngx_uint_t  i, v;

    for (i = 0; i < 2 * n; i++) {
        c = ngx_tolower(src[i]);

        if (c >= '0' && c <= '9') {
            v = c - '0';

        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;

        } else {
            return NGX_ERROR;
        }

        if (i % 2 == 0) {
            dst[i / 2] = (u_char) (v << 4);

        } else {
            dst[i / 2] |= (u_char) v;
        }
    }

    return NGX_OK;
}
