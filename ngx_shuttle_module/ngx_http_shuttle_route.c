
/*
 * "shuttle_route": an upstream whose one peer is chosen per request, from
 * the zone slot the apps phase handler found for the request's Host.
 *
 * The peer is a plain sockaddr, so the keepalive module, placed after this
 * directive, caches connections per loader address as it does for static
 * servers: a project keeps its warm connections until its port changes.
 * That is safe across tenants: a cached connection is a TCP connection to
 * one loader process, which serves one project; when that loader exits
 * its connections close with it, and a later loader given the same port
 * (another project's, even) is reached only by new connections, made
 * after the zone named it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_shuttle_module.h"


static ngx_int_t ngx_http_shuttle_init_upstream(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_shuttle_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_shuttle_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_shuttle_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);

#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_shuttle_set_session(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_shuttle_save_session(ngx_peer_connection_t *pc,
    void *data);
#endif


/* the placeholder server's address: never connected to */
static struct sockaddr_in  ngx_http_shuttle_route_sin;
static ngx_addr_t          ngx_http_shuttle_route_addr = {
    (struct sockaddr *) &ngx_http_shuttle_route_sin,
    sizeof(struct sockaddr_in),
    ngx_string("shuttle_route")
};


static ngx_int_t
ngx_http_shuttle_init_upstream(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_uint_t                      i;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_shuttle_main_conf_t   *smcf;

    if (us->servers->nelts != 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" in %s:%ui has \"shuttle_route\" "
                      "and \"server\" directives: its peers come from "
                      "the zone, remove the \"server\" lines",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    /*
     * "zone" copies an upstream's peers into shared memory when the
     * cycle's zones are initialized; this one has none, its peer is
     * chosen per request.
     */

    if (us->shm_zone != NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" in %s:%ui has \"shuttle_route\" "
                      "and \"zone\": its peer is chosen from the shuttle "
                      "zone per request, remove \"zone\"",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_shuttle_module);

    if (smcf->zone.path.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" in %s:%ui has \"shuttle_route\" "
                      "but the http block has no \"shuttle_zone\"",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    /* set up as a shuttle_route upstream: off the list of those to be */

    uscfp = smcf->routes->elts;

    for (i = 0; i < smcf->routes->nelts; i++) {
        if (uscfp[i] == us) {
            uscfp[i] = NULL;
        }
    }

    us->peer.init = ngx_http_shuttle_init_peer;

    return NGX_OK;
}


/*
 * "least_conn", "hash", "ip_hash" and "random" after "shuttle_route" take
 * its place (nginx only warns "load balancing method redefined"): its
 * upstream was never set up.
 */

ngx_int_t
ngx_http_shuttle_route_check(ngx_conf_t *cf,
    ngx_http_shuttle_main_conf_t *smcf)
{
    ngx_uint_t                      i;
    ngx_http_upstream_srv_conf_t  **uscfp;

    uscfp = smcf->routes->elts;

    for (i = 0; i < smcf->routes->nelts; i++) {
        if (uscfp[i] == NULL) {
            continue;
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" in %s:%ui has \"shuttle_route\" "
                      "and a balancing method after it (least_conn, hash, "
                      "ip_hash, random): its peer comes from the zone, "
                      "remove the method (only \"keepalive\" may follow)",
                      &uscfp[i]->host, uscfp[i]->file_name, uscfp[i]->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_int_t                      rc;
    ngx_http_upstream_t           *u;
    ngx_http_shuttle_ctx_t        *ctx;
    ngx_http_shuttle_srv_conf_t   *sscf;
    ngx_http_shuttle_main_conf_t  *smcf;

    ctx = ngx_http_shuttle_resolve(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    /*
     * The slot again: the request may have taken long since it was
     * resolved (a buffered upload), and the project may have switched to
     * a new loader meanwhile, its old one stopped.
     */

    if (ctx->result == NGX_HTTP_SHUTTLE_FOUND) {
        smcf = ngx_http_get_module_main_conf(r, ngx_http_shuttle_module);
        ctx->result = ngx_http_shuttle_zone_lookup(&smcf->zone,
                                                   &ctx->project,
                                                   &ctx->slot,
                                                   r->connection->log);
    }

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_shuttle_module);

    if (sscf->domain.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "upstream \"%V\": no running project for host \"%V\""
                      " (is \"shuttle_apps\" set in this server?)",
                      &us->host, &r->headers_in.server);
        return NGX_ERROR;
    }

    rc = ngx_http_shuttle_answer(r, ctx);

    if (rc != NGX_DECLINED) {
        /*
         * The project stopped running while the request was on its way
         * (a long upload): it is answered here as a new request would be,
         * and finalized.  The upstream, its cleanup gone, takes it as
         * finalized already and only lets go of its reference to it.
         */

        u = r->upstream;

        r->main->count++;
        *u->cleanup = NULL;
        u->cleanup = NULL;

        ngx_http_finalize_request(r, rc);

        return NGX_ERROR;
    }

    ctx->sin.sin_family = AF_INET;
    ctx->sin.sin_addr.s_addr = ctx->slot.addr;
    ctx->sin.sin_port = htons(ctx->slot.port);

    ctx->peer_name.data = ctx->peer_text;
    ctx->peer_name.len = ngx_sock_ntop((struct sockaddr *) &ctx->sin,
                                       sizeof(struct sockaddr_in),
                                       ctx->peer_text, NGX_SOCKADDR_STRLEN,
                                       1);

    r->upstream->peer.data = ctx;
    r->upstream->peer.get = ngx_http_shuttle_get_peer;
    r->upstream->peer.free = ngx_http_shuttle_free_peer;
    r->upstream->peer.tries = 1;

#if (NGX_HTTP_SSL)
    r->upstream->peer.set_session = ngx_http_shuttle_set_session;
    r->upstream->peer.save_session = ngx_http_shuttle_save_session;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_shuttle_ctx_t  *ctx = data;

    pc->sockaddr = (struct sockaddr *) &ctx->sin;
    pc->socklen = sizeof(struct sockaddr_in);
    pc->name = &ctx->peer_name;

    return NGX_OK;
}


static void
ngx_http_shuttle_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    if (pc->tries) {
        pc->tries--;
    }
}


#if (NGX_HTTP_SSL)

/*
 * "proxy_pass https://": no TLS session is kept to be resumed.  A peer is
 * whichever loader serves a project at the time, not a server of the
 * upstream to keep a session with; "keepalive" keeps the connections,
 * and with them their handshakes.
 */

static ngx_int_t
ngx_http_shuttle_set_session(ngx_peer_connection_t *pc, void *data)
{
    return NGX_OK;
}


static void
ngx_http_shuttle_save_session(ngx_peer_connection_t *pc, void *data)
{
    return;
}

#endif


char *
ngx_http_shuttle_route(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_upstream_server_t     *us;
    ngx_http_shuttle_main_conf_t   *smcf;
    ngx_http_upstream_srv_conf_t   *uscf, **uscfp;

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    /*
     * "keepalive" wraps whatever peer selection is set when it is read, so
     * it must come after us: were it first, we would silently replace it.
     */

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shuttle_route\" must come first in upstream "
                           "\"%V\": \"keepalive\" and other balancing "
                           "directives must follow it", &uscf->host);
        return NGX_CONF_ERROR;
    }

    if (uscf->servers->nelts) {
        return "cannot be used with \"server\" directives: the peers "
               "come from the zone";
    }

    uscf->peer.init_upstream = ngx_http_shuttle_init_upstream;
    uscf->flags = NGX_HTTP_UPSTREAM_CREATE;

    /*
     * The upstream block wants a server; ours stands for the zone.  It has
     * an address, down, so that a balancing method put after us, which
     * would set up round robin peers, is refused with our message rather
     * than "no servers in upstream".
     */

    us = ngx_array_push(uscf->servers);
    if (us == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(us, sizeof(ngx_http_upstream_server_t));
    ngx_str_set(&us->name, "shuttle_route");
    us->addrs = &ngx_http_shuttle_route_addr;
    us->naddrs = 1;
    us->weight = 1;
    us->down = 1;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_shuttle_module);
    smcf->route = 1;

    if (smcf->routes == NULL) {
        smcf->routes = ngx_array_create(cf->pool, 2,
                                     sizeof(ngx_http_upstream_srv_conf_t *));
        if (smcf->routes == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    uscfp = ngx_array_push(smcf->routes);
    if (uscfp == NULL) {
        return NGX_CONF_ERROR;
    }

    *uscfp = uscf;

    return NGX_CONF_OK;
}
