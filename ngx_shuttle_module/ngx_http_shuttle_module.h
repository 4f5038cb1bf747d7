
/*
 * shuttle for nginx: the nginx module.
 *
 *   ngx_http_shuttle_module.c   directives, variables, the apps phase handler
 *   ngx_http_shuttle_zone.c     the routing zone, mapped read-only per worker
 *   ngx_http_shuttle_route.c    "shuttle_route": the upstream peer per request
 *   ngx_http_shuttle_api.c      the API host: keys, "shuttle_auth",
 *                               "shuttle_deploy" and the hand-off
 *   ngx_http_shuttle_metrics.c  counts per project in shared memory,
 *                               "shuttle_metrics"
 */


#ifndef _NGX_HTTP_SHUTTLE_MODULE_H_INCLUDED_
#define _NGX_HTTP_SHUTTLE_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <shuttle_zone.h>


/* this worker's view of the zone file */
typedef struct {
    ngx_str_t                    path;      /* NUL-terminated */

    shuttle_zone_header_t       *hdr;       /* NULL: not mapped */
    size_t                       size;      /* of the mapping, validated */
    uint32_t                     nslots;    /* the validated header's */
    ino_t                        ino;
    dev_t                        dev;
    time_t                       checked;   /* last stat() of the path */
    time_t                       failed;    /* last map that failed */
    time_t                       torn;      /* last torn slot logged */

    const char                  *error;     /* last reason logged */
} ngx_http_shuttle_zone_t;


typedef struct {
    ngx_http_shuttle_zone_t      zone;

    ngx_addr_t                  *builder;   /* "shuttle_builder unix:PATH" */
    ngx_msec_t                   builder_timeout;
    ngx_str_t                    spool_name;
    ngx_path_t                  *spool;     /* uploads for the builder */

    ngx_uint_t                   apps;      /* a "shuttle_apps" is set */
    ngx_uint_t                   route;     /* a "shuttle_route" is set */
    ngx_array_t                 *routes;    /* their upstreams not set up
                                               yet, NULLs after */
    ngx_uint_t                   deploy;    /* a "shuttle_deploy" is set */
    ngx_uint_t                   auth;      /* a "shuttle_auth on" is set */

    size_t                       metrics_size;  /* 0: "off" */
    ngx_shm_zone_t              *metrics;
} ngx_http_shuttle_main_conf_t;


typedef struct {
    ngx_str_t                    domain;    /* lowercase, no leading dot */
} ngx_http_shuttle_srv_conf_t;


typedef struct {
    ngx_array_t                 *keys;      /* ngx_http_shuttle_key_t */
    ngx_str_t                    keys_file;
    ngx_flag_t                   auth;

    ngx_uint_t                   deploy;    /* "shuttle_deploy" answers */
    ngx_uint_t                   metrics;   /* "shuttle_metrics" answers */

    /* client_body_temp_path as the core module merged it, before ours */
    ngx_path_t                  *temp_path;
} ngx_http_shuttle_loc_conf_t;


/* what a request resolved to; found once per request, kept in its ctx */

#define NGX_HTTP_SHUTTLE_NO_ZONE       0
#define NGX_HTTP_SHUTTLE_BAD_HOST      1   /* not "<label>.<domain>" */
#define NGX_HTTP_SHUTTLE_BAD_NAME      2   /* "<not a label>.<domain>" */
#define NGX_HTTP_SHUTTLE_UNKNOWN       3   /* no such project in the zone */
#define NGX_HTTP_SHUTTLE_BUSY          4   /* its slot stayed torn */
#define NGX_HTTP_SHUTTLE_FOUND         5

typedef struct {
    unsigned                     resolved:1;
    ngx_uint_t                   result;
    ngx_str_t                    project;   /* from the Host header */
    shuttle_zone_slot_t          slot;      /* valid when FOUND */

    /* the peer, when the project is running */
    struct sockaddr_in           sin;
    ngx_str_t                    peer_name;
    u_char                       peer_text[NGX_SOCKADDR_STRLEN];

    ngx_str_t                    key;       /* authenticated key's name */
    ngx_str_t                    secret;    /* its bearer key, as sent */
    void                        *deploy;    /* a POST /deploy in flight */
} ngx_http_shuttle_ctx_t;


ngx_int_t ngx_http_shuttle_zone_map(ngx_http_shuttle_zone_t *zone,
    ngx_log_t *log);
ngx_uint_t ngx_http_shuttle_zone_lookup(ngx_http_shuttle_zone_t *zone,
    ngx_str_t *name, shuttle_zone_slot_t *slot, ngx_log_t *log);
void ngx_http_shuttle_zone_unmap(ngx_http_shuttle_zone_t *zone);

ngx_http_shuttle_ctx_t *ngx_http_shuttle_get_ctx(ngx_http_request_t *r);
ngx_http_shuttle_ctx_t *ngx_http_shuttle_resolve(ngx_http_request_t *r);
ngx_int_t ngx_http_shuttle_answer(ngx_http_request_t *r,
    ngx_http_shuttle_ctx_t *ctx);

ngx_int_t ngx_http_shuttle_auth_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_shuttle_deploy_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_shuttle_json_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *fmt, ...);
ngx_int_t ngx_http_shuttle_allow(ngx_http_request_t *r, char *methods);
ngx_int_t ngx_http_shuttle_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

char *ngx_http_shuttle_route(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_shuttle_route_check(ngx_conf_t *cf,
    ngx_http_shuttle_main_conf_t *smcf);
char *ngx_http_shuttle_api_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

char *ngx_http_shuttle_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_shuttle_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_shuttle_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_shuttle_main_conf_t *smcf);
ngx_int_t ngx_http_shuttle_metrics_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_shuttle_metrics_handler(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_shuttle_module;


#endif /* _NGX_HTTP_SHUTTLE_MODULE_H_INCLUDED_ */
