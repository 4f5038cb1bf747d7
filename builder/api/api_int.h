
/*
 * The API's own header, for its files only (api.h is its contract): a
 * request, the route table's entry, and the functions its files share.
 *
 *   api.c           the server: start, stop, the route table, a request's
 *                   way to its handler, the peer and its key, and the
 *                   hand-off of an upload (POST /deploy)
 *   projects.c      GET /metrics, the projects: list, show, delete,
 *                   purge, restart, scale, secrets
 *   deployments.c   a project's deployments, rollback, a deployment, its
 *                   logs
 *   json.c          ownership checks, the JSON of a project and of a
 *                   deployment, answers, the helpers
 */

#ifndef SHUTTLE_BUILDER_API_INT_H
#define SHUTTLE_BUILDER_API_INT_H

/* after api.h: it uses that header's types (and is not included by it,
   so the part and its own header make no include circle) */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy.h"
#include "fsafe.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "provision.h"
#include "tenant.h"


#define API_SEGMENTS       5
#define API_URL_MAX        1024
#define API_FOLLOW_WAIT_MS 100
#define API_FOLLOW_BLOCK   16384
#define API_TIMEOUT_S      120
#define API_BODY_MAX       65536     /* secrets: PUT of a few values */
#define API_ROLLBACK_SLACK 5000        /* ms past --start-timeout */


struct shuttle_api_s {
    shuttle_serve_t        *s;
    struct MHD_Daemon      *mhd;
};


/* a request's body, read before the request is handled */
typedef struct {
    size_t                  len;
    unsigned                too_long:1;
    char                    data[API_BODY_MAX + 1];
} api_body_t;


typedef struct {
    shuttle_api_t          *api;
    shuttle_serve_t        *s;
    struct MHD_Connection  *c;
    const char             *method;
    const char             *url;
    const char             *key;
    char                    keyname[SHUTTLE_KEY_MAX + 1];
    uid_t                   uid;        /* the peer's (SO_PEERCRED) */
    api_body_t             *body;
    char                    path[API_URL_MAX];
    char                   *seg[API_SEGMENTS];
    int                     nseg;
} api_req_t;


/* GET .../logs?follow=1 */
typedef struct {
    shuttle_serve_t        *s;
    int64_t                 id;
    int                     fd;
    int                     runtime;    /* runtime.log: on while it runs */
    int                     last;       /* settled: what is left, then end */
    uint64_t                seen;
    char                    path[SHUTTLE_PATH_MAX];
} api_follow_t;




typedef struct {
    shuttle_api_t          *api;
    json_t                 *array;
} api_list_t;


/* the deployment a rollback without an id goes back to */
typedef struct {
    const char             *data;
    int64_t                 current;
    int64_t                 id;
    int64_t                 updated;
    shuttle_deploy_tag_t    latest;     /* the newest one's state */
    int64_t                 latest_id;
} api_previous_t;


/*
 * The routes, all of them: api_route() dispatches by this table alone, and
 * "shuttle-builder routes" prints it.  "{...}" stands for any one segment.
 * Every route under /v1/ speaks for a key, the caller's (api_key()), and
 * touches that key's projects and deployments only.
 */

typedef struct {
    const char             *method;
    const char             *path;
    enum MHD_Result       (*handler)(api_req_t *r);
} api_route_t;

/* shared between the files of this part */

enum MHD_Result api_metrics(api_req_t *r);
enum MHD_Result api_projects(api_req_t *r);
enum MHD_Result api_project(api_req_t *r);
enum MHD_Result api_project_delete(api_req_t *r);
enum MHD_Result api_project_restart(api_req_t *r);
enum MHD_Result api_project_scale(api_req_t *r);
enum MHD_Result api_secrets(api_req_t *r);
enum MHD_Result api_project_deployments(api_req_t *r);
enum MHD_Result api_project_rollback(api_req_t *r);
int api_find_previous(api_req_t *r, const shuttle_project_t *p,
    api_previous_t *prev, char *err, size_t errlen);
enum MHD_Result api_deployment(api_req_t *r);
enum MHD_Result api_logs(api_req_t *r);
int api_own_project(api_req_t *r, const char *name,
    shuttle_project_t *p, enum MHD_Result *ret);
int api_own_deployment(api_req_t *r, const char *id,
    shuttle_deployment_t *d, enum MHD_Result *ret);
json_t *api_project_json(shuttle_api_t *api,
    const shuttle_project_t *p);
json_t *api_project_json_of(shuttle_api_t *api, const shuttle_project_t *p,
    const shuttle_serve_view_t *v, const shuttle_deployment_t *latest,
    const shuttle_limits_t *limits, json_t *resources);
json_t *api_deployment_json(shuttle_api_t *api,
    const shuttle_deployment_t *d, int transitions);
int api_add_deployment(const shuttle_deployment_t *d, void *data);
ssize_t api_follow_read(void *cls, uint64_t pos, char *buf,
    size_t max);
json_t *api_url(shuttle_api_t *api, const char *name);
void api_follow_free(void *cls);
enum MHD_Result api_json(struct MHD_Connection *c, unsigned status,
    json_t *j);
enum MHD_Result api_error(struct MHD_Connection *c, unsigned status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
enum MHD_Result api_method(api_req_t *r, const char *allow);
enum MHD_Result api_text(struct MHD_Connection *c,
    struct MHD_Response *resp);
int api_mkdirs(const char *path, size_t from);
void api_completed(void *cls, struct MHD_Connection *c,
    void **req_cls, enum MHD_RequestTerminationCode toe);
void api_mhd_log(void *cls, const char *fmt, va_list ap);


#endif /* SHUTTLE_BUILDER_API_INT_H */
