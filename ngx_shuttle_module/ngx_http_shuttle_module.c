
/*
 * shuttle for nginx: routes <project>.<domain> to the project's loader.
 *
 * A server with "shuttle_apps DOMAIN" takes the project name from its Host
 * header and looks the project up in the routing zone in the precontent
 * phase, after nginx's access controls: a project that is not running
 * gets a short answer here; a running one goes on to the location's
 * proxy_pass, whose "shuttle_route" upstream takes the peer from the zone
 * again when it connects.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_shuttle_module.h"


/* seconds a client is told to wait for a project that is on its way */
#define NGX_HTTP_SHUTTLE_RETRY_AFTER  1


static ngx_int_t ngx_http_shuttle_apps_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_shuttle_respond(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t retry, const char *fmt, ...);

static ngx_int_t ngx_http_shuttle_project_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_shuttle_state_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_shuttle_deployment_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_shuttle_add_variables(ngx_conf_t *cf);
static void *ngx_http_shuttle_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_shuttle_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_shuttle_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_shuttle_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_shuttle_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_shuttle_apps(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_shuttle_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_shuttle_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_shuttle_builder(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_shuttle_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_shuttle_deploy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_shuttle_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_shuttle_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_shuttle_init_process(ngx_cycle_t *cycle);
static void ngx_http_shuttle_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_shuttle_commands[] = {

    { ngx_string("shuttle_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_shuttle_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("shuttle_apps"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_shuttle_apps,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("shuttle_route"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS,
      ngx_http_shuttle_route,
      0,
      0,
      NULL },

    { ngx_string("shuttle_builder"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_shuttle_builder,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("shuttle_builder_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_shuttle_main_conf_t, builder_timeout),
      NULL },

    { ngx_string("shuttle_spool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_shuttle_spool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("shuttle_api_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_shuttle_api_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("shuttle_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_shuttle_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_shuttle_loc_conf_t, auth),
      NULL },

    { ngx_string("shuttle_deploy"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_shuttle_deploy,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("shuttle_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_shuttle_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("shuttle_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_shuttle_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_shuttle_module_ctx = {
    ngx_http_shuttle_add_variables,        /* preconfiguration */
    ngx_http_shuttle_init,                 /* postconfiguration */

    ngx_http_shuttle_create_main_conf,     /* create main configuration */
    ngx_http_shuttle_init_main_conf,       /* init main configuration */

    ngx_http_shuttle_create_srv_conf,      /* create server configuration */
    ngx_http_shuttle_merge_srv_conf,       /* merge server configuration */

    ngx_http_shuttle_create_loc_conf,      /* create location configuration */
    ngx_http_shuttle_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_shuttle_module = {
    NGX_MODULE_V1,
    &ngx_http_shuttle_module_ctx,          /* module context */
    ngx_http_shuttle_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_shuttle_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_shuttle_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_shuttle_vars[] = {

    { ngx_string("shuttle_project"), NULL,
      ngx_http_shuttle_project_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("shuttle_state"), NULL,
      ngx_http_shuttle_state_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("shuttle_deployment"), NULL,
      ngx_http_shuttle_deployment_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("shuttle_key"), NULL,
      ngx_http_shuttle_key_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_shuttle_apps_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_shuttle_ctx_t       *ctx;
    ngx_http_shuttle_srv_conf_t  *sscf;

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_shuttle_module);

    if (sscf->domain.len == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_shuttle_resolve(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_shuttle_answer(r, ctx);

    if (rc == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * The answer to a request whose project is not to be proxied, sent; or
 * NGX_DECLINED for a running one.  The phase handler asks, and the
 * upstream peer again when it connects.
 */

ngx_int_t
ngx_http_shuttle_answer(ngx_http_request_t *r, ngx_http_shuttle_ctx_t *ctx)
{
    const char                   *state;
    ngx_http_shuttle_srv_conf_t  *sscf;

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_shuttle_module);

    switch (ctx->result) {

    case NGX_HTTP_SHUTTLE_FOUND:
        break;

    case NGX_HTTP_SHUTTLE_NO_ZONE:
        return ngx_http_shuttle_respond(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        NGX_HTTP_SHUTTLE_RETRY_AFTER,
                                        "shuttle: platform starting, "
                                        "no routing zone yet");

    case NGX_HTTP_SHUTTLE_BAD_HOST:
        return ngx_http_shuttle_respond(r, NGX_HTTP_NOT_FOUND, 0,
                                        "shuttle: host \"%V\" is not "
                                        "<project>.%V",
                                        &r->headers_in.server,
                                        &sscf->domain);

    case NGX_HTTP_SHUTTLE_BAD_NAME:
        return ngx_http_shuttle_respond(r, NGX_HTTP_BAD_REQUEST, 0,
                                        "shuttle: \"%V\" is not a project "
                                        "name (a DNS label: a-z, 0-9 and "
                                        "'-')", &ctx->project);

    case NGX_HTTP_SHUTTLE_UNKNOWN:
        return ngx_http_shuttle_respond(r, NGX_HTTP_NOT_FOUND, 0,
                                        "shuttle: no project \"%V\"",
                                        &ctx->project);

    default: /* NGX_HTTP_SHUTTLE_BUSY */
        return ngx_http_shuttle_respond(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        NGX_HTTP_SHUTTLE_RETRY_AFTER,
                                        "shuttle: project \"%V\" is being "
                                        "updated, retry", &ctx->project);
    }

    state = shuttle_zone_state_name(ctx->slot.state);

    switch (ctx->slot.state) {

    case SHUTTLE_STATE_RUNNING:
    case SHUTTLE_STATE_IDLE:
        /*
         * Idle: the builder holds the project's listening socket, so the
         * connection waits in its backlog while the builder starts a
         * loader on it; nothing here waits or polls.
         */
        if (ctx->slot.port != 0) {
            return NGX_DECLINED;
        }

        return ngx_http_shuttle_respond(r, NGX_HTTP_BAD_GATEWAY, 0,
                                        "shuttle: project \"%V\" is %s "
                                        "but has no address", &ctx->project,
                                        state);

    case SHUTTLE_STATE_QUEUED:
    case SHUTTLE_STATE_BUILDING:
    case SHUTTLE_STATE_LOADING:
        return ngx_http_shuttle_respond(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        NGX_HTTP_SHUTTLE_RETRY_AFTER,
                                        "shuttle: project \"%V\" is %s "
                                        "(deployment %uL)", &ctx->project,
                                        state, ctx->slot.deployment);

    case SHUTTLE_STATE_FAILED:
        return ngx_http_shuttle_respond(r, NGX_HTTP_BAD_GATEWAY, 0,
                                        "shuttle: project \"%V\": "
                                        "deployment %uL failed",
                                        &ctx->project, ctx->slot.deployment);

    case SHUTTLE_STATE_STOPPED:
        return ngx_http_shuttle_respond(r, NGX_HTTP_SERVICE_UNAVAILABLE, 0,
                                        "shuttle: project \"%V\" is "
                                        "stopped", &ctx->project);

    default:
        return ngx_http_shuttle_respond(r, NGX_HTTP_BAD_GATEWAY, 0,
                                        "shuttle: project \"%V\" has "
                                        "unknown state %ud", &ctx->project,
                                        (ngx_uint_t) ctx->slot.state);
    }
}


ngx_http_shuttle_ctx_t *
ngx_http_shuttle_get_ctx(ngx_http_request_t *r)
{
    ngx_http_shuttle_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_shuttle_module);
    if (ctx != NULL) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_shuttle_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_shuttle_module);

    return ctx;
}


/*
 * What the request's Host names, looked up once and kept in the request's
 * ctx for the phase handler, the upstream peer and the variables.
 */

ngx_http_shuttle_ctx_t *
ngx_http_shuttle_resolve(ngx_http_request_t *r)
{
    ngx_str_t                     *host;
    ngx_http_shuttle_ctx_t        *ctx;
    ngx_http_shuttle_srv_conf_t   *sscf;
    ngx_http_shuttle_main_conf_t  *smcf;

    ctx = ngx_http_shuttle_get_ctx(r);
    if (ctx == NULL || ctx->resolved) {
        return ctx;
    }

    ctx->resolved = 1;
    ctx->result = NGX_HTTP_SHUTTLE_BAD_HOST;

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_shuttle_module);
    host = &r->headers_in.server;

    /* nginx has lowercased the host and dropped its port and final dot */

    if (sscf->domain.len == 0
        || host->len < sscf->domain.len + 2
        || host->data[host->len - sscf->domain.len - 1] != '.'
        || ngx_strncmp(host->data + host->len - sscf->domain.len,
                       sscf->domain.data, sscf->domain.len) != 0)
    {
        return ctx;
    }

    ctx->project.data = host->data;
    ctx->project.len = host->len - sscf->domain.len - 1;

    if (!shuttle_valid_name((char *) ctx->project.data, ctx->project.len)) {
        ctx->result = NGX_HTTP_SHUTTLE_BAD_NAME;
        return ctx;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_shuttle_module);

    ctx->result = ngx_http_shuttle_zone_lookup(&smcf->zone, &ctx->project,
                                               &ctx->slot,
                                               r->connection->log);

    return ctx;
}


static ngx_int_t
ngx_http_shuttle_respond(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t retry, const char *fmt, ...)
{
    u_char           *last, text[NGX_MAX_ERROR_STR];
    va_list           args;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    /*
     * A refusal: no "100 Continue" goes out first, as with nginx's own
     * error pages, so a client is not invited to send a body for nothing.
     */
    r->expect_tested = 1;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    va_start(args, fmt);
    last = ngx_vslprintf(text, text + sizeof(text) - 1, fmt, args);
    va_end(args);

    *last++ = LF;

    r->headers_out.status = status;
    r->headers_out.content_length_n = last - text;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (retry) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        ngx_str_set(&h->key, "Retry-After");
        h->value.len = ngx_sprintf(h->value.data, "%ui", retry)
                       - h->value.data;
    }

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, last - text);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->pos, text, last - text);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_shuttle_project_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_shuttle_ctx_t  *ctx;

    ctx = ngx_http_shuttle_resolve(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->project.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->project.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = ctx->project.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_state_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char              *state;
    ngx_http_shuttle_ctx_t  *ctx;

    ctx = ngx_http_shuttle_resolve(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    switch (ctx->result) {

    case NGX_HTTP_SHUTTLE_FOUND:
        state = shuttle_zone_state_name(ctx->slot.state);
        break;

    case NGX_HTTP_SHUTTLE_UNKNOWN:
        state = "unknown";
        break;

    case NGX_HTTP_SHUTTLE_NO_ZONE:
        state = "starting";
        break;

    case NGX_HTTP_SHUTTLE_BUSY:
        state = "busy";
        break;

    default:
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_strlen(state);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = (u_char *) state;

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_deployment_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p;
    ngx_http_shuttle_ctx_t  *ctx;

    ctx = ngx_http_shuttle_resolve(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->result != NGX_HTTP_SHUTTLE_FOUND) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%uL", ctx->slot.deployment) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_shuttle_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_shuttle_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_shuttle_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_shuttle_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->zone = { 0 };
     *     smcf->builder = NULL;
     *     smcf->spool_name = { 0, NULL };
     *     smcf->spool = NULL;
     *     smcf->apps = 0;
     *     smcf->route = 0;
     *     smcf->routes = NULL;
     *     smcf->deploy = 0;
     *     smcf->auth = 0;
     *     smcf->metrics = NULL;
     */

    smcf->builder_timeout = NGX_CONF_UNSET_MSEC;
    smcf->metrics_size = NGX_CONF_UNSET_SIZE;

    return smcf;
}


static char *
ngx_http_shuttle_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_shuttle_main_conf_t  *smcf = conf;

    u_char      *p;
    ngx_str_t   *zone;

    if (smcf->apps && smcf->zone.path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shuttle_apps\" needs \"shuttle_zone\" "
                           "in the http block");
        return NGX_CONF_ERROR;
    }

    if (smcf->route && ngx_http_shuttle_route_check(cf, smcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(smcf->builder_timeout, 10000);

    /* what nginx sees of the projects and the uploads, counted */

    if ((smcf->apps || smcf->deploy)
        && ngx_http_shuttle_metrics_add_zone(cf, smcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (!smcf->deploy) {
        return NGX_CONF_OK;
    }

    if (smcf->builder == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shuttle_deploy\" needs \"shuttle_builder\" "
                           "in the http block");
        return NGX_CONF_ERROR;
    }

    /* the default spool is the "spool" directory beside the zone */

    if (smcf->spool_name.len == 0) {
        zone = &smcf->zone.path;

        if (zone->len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"shuttle_deploy\" needs \"shuttle_spool\" "
                               "(or \"shuttle_zone\", beside which the "
                               "spool is) in the http block");
            return NGX_CONF_ERROR;
        }

        p = zone->data + zone->len;
        while (p > zone->data && p[-1] != '/') {
            p--;
        }

        smcf->spool_name.len = (p - zone->data) + sizeof("spool") - 1;
        smcf->spool_name.data = ngx_pnalloc(cf->pool,
                                            smcf->spool_name.len + 1);
        if (smcf->spool_name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(ngx_cpymem(smcf->spool_name.data, zone->data,
                              p - zone->data),
                   "spool", sizeof("spool"));
    }

    /* created at startup, owned by the workers' user, as temp paths are */

    smcf->spool = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (smcf->spool == NULL) {
        return NGX_CONF_ERROR;
    }

    smcf->spool->name = smcf->spool_name;
    smcf->spool->conf_file = cf->conf_file->file.name.data;
    smcf->spool->line = cf->conf_file->line;

    if (ngx_add_path(cf, &smcf->spool) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_shuttle_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_shuttle_srv_conf_t  *sscf;

    sscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_shuttle_srv_conf_t));
    if (sscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     sscf->domain = { 0, NULL };
     */

    return sscf;
}


static char *
ngx_http_shuttle_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_shuttle_srv_conf_t  *prev = parent;
    ngx_http_shuttle_srv_conf_t  *conf = child;

    ngx_conf_merge_str_value(conf->domain, prev->domain, "");

    return NGX_CONF_OK;
}


static void *
ngx_http_shuttle_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_shuttle_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_shuttle_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     slcf->keys_file = { 0, NULL };
     *     slcf->deploy = 0;
     *     slcf->metrics = 0;
     *     slcf->temp_path = NULL;
     */

    slcf->keys = NGX_CONF_UNSET_PTR;
    slcf->auth = NGX_CONF_UNSET;

    return slcf;
}


static char *
ngx_http_shuttle_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_shuttle_loc_conf_t  *prev = parent;
    ngx_http_shuttle_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_shuttle_main_conf_t  *smcf;

    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_str_value(conf->keys_file, prev->keys_file, "");
    ngx_conf_merge_value(conf->auth, prev->auth, 0);

    /* the core module has merged every level already */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    conf->temp_path = clcf->client_body_temp_path;

    /*
     * An "if" or "limit_except" block in a "shuttle_deploy" location
     * serves with the location's handler: its uploads are deploys too.
     */

    if (prev->deploy && clcf->noname && clcf->handler == NULL) {
        conf->deploy = 1;
    }

    if ((conf->deploy && clcf->handler != NULL
         && clcf->handler != ngx_http_shuttle_deploy_handler)
        || (conf->metrics
            && clcf->handler != ngx_http_shuttle_metrics_handler))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "location \"%V\" has \"%s\" and another "
                           "content handler (\"proxy_pass\" or the like): "
                           "one of them answers, remove the other",
                           &clcf->name, conf->deploy ? "shuttle_deploy"
                                                     : "shuttle_metrics");
        return NGX_CONF_ERROR;
    }

    if ((conf->auth || conf->deploy) && conf->keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" needs \"shuttle_api_keys\"",
                           conf->deploy ? "shuttle_deploy" : "shuttle_auth");
        return NGX_CONF_ERROR;
    }

    if (conf->deploy) {

        /* a path of the location's own is not its parent's */

        if (!clcf->noname && prev->temp_path != NULL
            && conf->temp_path != prev->temp_path)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "location \"%V\" has \"shuttle_deploy\" and "
                               "\"client_body_temp_path\": its uploads go "
                               "to the builder's spool (shuttle_spool), "
                               "remove \"client_body_temp_path\"",
                               &clcf->name);
            return NGX_CONF_ERROR;
        }

        /*
         * Its request bodies are written straight into the builder's
         * spool; the locations nested in it keep the temporary path they
         * inherited.
         */

        smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_shuttle_module);
        clcf->client_body_temp_path = smcf->spool;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_shuttle_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_main_conf_t  *smcf = conf;

    ngx_str_t  *value;

    if (smcf->zone.path.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    smcf->zone.path = value[1];

    /* the result is NUL-terminated, as the argument was */

    if (ngx_conf_full_name(cf->cycle, &smcf->zone.path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_shuttle_apps(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_srv_conf_t  *sscf = conf;

    u_char                        *p;
    ngx_str_t                     *value, domain;
    ngx_uint_t                     i;
    ngx_http_shuttle_main_conf_t  *smcf;

    if (sscf->domain.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    domain = value[1];

    /* "*.apps.example.com" and ".apps.example.com" mean apps.example.com */

    if (domain.len > 2 && domain.data[0] == '*' && domain.data[1] == '.') {
        domain.data += 2;
        domain.len -= 2;

    } else if (domain.len > 1 && domain.data[0] == '.') {
        domain.data++;
        domain.len--;
    }

    if (domain.len == 0 || domain.data[domain.len - 1] == '.') {
        goto invalid;
    }

    p = ngx_pnalloc(cf->pool, domain.len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < domain.len; i++) {
        p[i] = ngx_tolower(domain.data[i]);

        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')
              || p[i] == '-' || p[i] == '.'))
        {
            goto invalid;
        }
    }

    sscf->domain.data = p;
    sscf->domain.len = domain.len;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_shuttle_module);
    smcf->apps = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid domain \"%V\" in \"shuttle_apps\", "
                       "expected a host name such as apps.example.com",
                       &value[1]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_shuttle_builder(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_main_conf_t  *smcf = conf;

    ngx_url_t   u;
    ngx_str_t  *value;

    if (smcf->builder) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "unix:", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shuttle_builder\" takes the builder's socket "
                           "as unix:PATH, not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = value[1];
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in \"shuttle_builder\" \"%V\"",
                           u.err ? u.err : "invalid address", &value[1]);
        return NGX_CONF_ERROR;
    }

    smcf->builder = &u.addrs[0];

    return NGX_CONF_OK;
}


static char *
ngx_http_shuttle_spool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_main_conf_t  *smcf = conf;

    ngx_str_t  *value;

    if (smcf->spool_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    smcf->spool_name = value[1];

    while (smcf->spool_name.len > 1
           && smcf->spool_name.data[smcf->spool_name.len - 1] == '/')
    {
        smcf->spool_name.len--;
    }

    if (ngx_conf_full_name(cf->cycle, &smcf->spool_name, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_shuttle_deploy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_loc_conf_t  *slcf = conf;

    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_shuttle_main_conf_t  *smcf;

    if (slcf->deploy) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /*
     * Its request bodies go to the builder's spool (merge_loc_conf sets
     * the path): a client_body_temp_path of the location's own would be
     * overridden silently.  One before this directive is refused here,
     * one after by merge_loc_conf.
     */

    if (clcf->client_body_temp_path != NULL) {
        return "cannot share a location with \"client_body_temp_path\": "
               "its uploads go to the builder's spool (shuttle_spool)";
    }

    clcf->handler = ngx_http_shuttle_deploy_handler;

    slcf->deploy = 1;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_shuttle_module);
    smcf->deploy = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_shuttle_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_loc_conf_t  *slcf = conf;

    char                          *rv;
    ngx_http_shuttle_main_conf_t  *smcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv == NGX_CONF_OK && slcf->auth) {
        smcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_shuttle_module);
        smcf->auth = 1;
    }

    return rv;
}


static ngx_int_t
ngx_http_shuttle_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt           *h;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_shuttle_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_shuttle_module);
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * The lookup after nginx's own access controls: a dynamic module's
     * handler runs first in its phase, so in preaccess it ran before
     * limit_req and limit_conn, and anywhere up to access before allow,
     * deny and auth_basic.  In precontent, a flood of Hosts is throttled
     * and a refused client learns nothing of a project.
     */

    if (smcf->apps) {
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_shuttle_apps_handler;
    }

    if (smcf->auth) {
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_shuttle_auth_handler;
    }

    if (smcf->metrics) {
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_shuttle_metrics_log_handler;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_init_process(ngx_cycle_t *cycle)
{
    ngx_http_shuttle_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_shuttle_module);

    if (smcf == NULL || smcf->zone.path.len == 0) {
        return NGX_OK;
    }

    /* a zone that is not there yet is mapped by the first lookup after */

    (void) ngx_http_shuttle_zone_map(&smcf->zone, cycle->log);

    return NGX_OK;
}


static void
ngx_http_shuttle_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_shuttle_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_shuttle_module);

    if (smcf != NULL) {
        ngx_http_shuttle_zone_unmap(&smcf->zone);
    }
}
