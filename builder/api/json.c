
/*
 * The API: whose a project or a deployment is, their JSON, the answers
 * (JSON, errors, text) and the helpers of the handlers (api_int.h).
 */

#include "api.h"
#include "api_int.h"


static int api_add_transition(const shuttle_transition_t *t, void *data);
static json_t *api_time(int64_t ms);
static int api_parse_id(const char *s, int64_t *id);


/* 0: the key's project in *p; else the answer is queued in *ret */

int
api_own_project(api_req_t *r, const char *name, shuttle_project_t *p,
    enum MHD_Result *ret)
{
    int   rc;
    char  err[512];

    if (!shuttle_valid_name(name, strlen(name))) {
        *ret = api_error(r->c, MHD_HTTP_BAD_REQUEST, "project name \"%s\" is "
                         "not a DNS label", name);
        return -1;
    }

    rc = shuttle_store_project(r->s->store, name, p, err, sizeof(err));

    if (rc == 0 && strcmp(p->owner, r->key) == 0) {
        return 0;
    }

    if (rc == -1) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s %s: %s", r->method, r->url, err);
        *ret = api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
        return -1;
    }

    *ret = api_error(r->c, MHD_HTTP_NOT_FOUND, "project %s not found", name);

    return -1;
}


int
api_own_deployment(api_req_t *r, const char *id, shuttle_deployment_t *d,
    enum MHD_Result *ret)
{
    int      rc;
    char     err[512];
    int64_t  n;

    if (api_parse_id(id, &n) != 0) {
        *ret = api_error(r->c, MHD_HTTP_NOT_FOUND, "deployment %s not found",
                         id);
        return -1;
    }

    rc = shuttle_store_deployment(r->s->store, n, d, err, sizeof(err));

    if (rc == 0 && strcmp(d->owner, r->key) == 0) {
        return 0;
    }

    if (rc == -1) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s %s: %s", r->method, r->url, err);
        *ret = api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
        return -1;
    }

    *ret = api_error(r->c, MHD_HTTP_NOT_FOUND, "deployment %lld not found",
                     (long long) n);

    return -1;
}


json_t *
api_project_json(shuttle_api_t *api, const shuttle_project_t *p)
{
    char                   err[512];
    json_t                *j;
    shuttle_limits_t       limits;
    shuttle_deployment_t  *d;
    shuttle_serve_view_t   v;

    memset(&v, 0, sizeof(shuttle_serve_view_t));
    (void) shuttle_serve_view(api->s, p, &v);

    d = NULL;

    if (p->latest != 0) {
        d = malloc(sizeof(shuttle_deployment_t));

        if (d != NULL
            && shuttle_store_deployment(api->s->store, p->latest, d, err,
                                        sizeof(err)) != 0)
        {
            free(d);
            d = NULL;
        }
    }

    /* what its sandbox gets: the defaults and the operator's for it */
    shuttle_deploy_limits(api->s, p->name, &limits);

    j = api_project_json_of(api, p, &v, d, &limits,
                            shuttle_provision_describe(api->s, p->name));
    free(d);

    return j;
}


/* the same from what the caller looked up: latest NULL is none; the
 * resources' JSON is taken */

json_t *
api_project_json_of(shuttle_api_t *api, const shuttle_project_t *p,
    const shuttle_serve_view_t *v, const shuttle_deployment_t *latest,
    const shuttle_limits_t *limits, json_t *resources)
{
    char     idle[32];
    json_t  *j;

    j = json_object();

    json_object_set_new(j, "name", json_string(p->name));
    json_object_set_new(j, "owner", json_string(p->owner));
    json_object_set_new(j, "state",
                        json_string(shuttle_zone_state_name(v->state)));
    json_object_set_new(j, "url", api_url(api, p->name));
    json_object_set_new(j, "current",
                        p->current ? json_integer(p->current) : json_null());
    json_object_set_new(j, "latest", latest != NULL
                                     ? api_deployment_json(api, latest, 0)
                                     : json_null());
    json_object_set_new(j, "created", api_time(p->created));
    json_object_set_new(j, "updated", api_time(p->updated));
    json_object_set_new(j, "resources", resources);

    /* scale to zero: after what, whose setting, since when */
    shuttle_duration_text(p->idle_ms >= 0 ? p->idle_ms
                                          : api->s->conf.idle_ms,
                          idle, sizeof(idle));
    json_object_set_new(j, "idle_after", json_string(idle));
    json_object_set_new(j, "idle_default", json_boolean(p->idle_ms < 0));
    json_object_set_new(j, "idle_since",
                        v->state == SHUTTLE_STATE_IDLE ? api_time(v->since)
                                                       : json_null());

    json_object_set_new(j, "limits", shuttle_limits_json(limits));

    return j;
}


json_t *
api_deployment_json(shuttle_api_t *api, const shuttle_deployment_t *d,
    int transitions)
{
    char                           err[512];
    json_t                        *j, *list;
    unsigned                       port;
    const shuttle_deploy_state_t  *st;

    st = &d->state;

    switch (st->tag) {

    case SHUTTLE_DEPLOY_LOADING:
        port = st->u.loading.port;
        break;

    case SHUTTLE_DEPLOY_RUNNING:
        port = st->u.running.port;
        break;

    default:
        port = 0;
    }

    j = json_object();

    json_object_set_new(j, "id", json_integer(d->id));
    json_object_set_new(j, "project", json_string(d->project));
    json_object_set_new(j, "state",
                        json_string(shuttle_deploy_name(st->tag)));
    json_object_set_new(j, "reason", d->reason[0] ? json_string(d->reason)
                                                  : json_null());
    json_object_set_new(j, "created", api_time(d->created));
    json_object_set_new(j, "updated", api_time(d->updated));
    json_object_set_new(j, "build_ms", d->build_ms >= 0
                                       ? json_integer(d->build_ms)
                                       : json_null());
    json_object_set_new(j, "start_ms", d->start_ms >= 0
                                       ? json_integer(d->start_ms)
                                       : json_null());
    json_object_set_new(j, "port", port ? json_integer(port) : json_null());

    if (st->tag == SHUTTLE_DEPLOY_RUNNING) {
        json_object_set_new(j, "idle_since",
                            api_time(st->u.running.idle_since));
    }

    if (st->tag == SHUTTLE_DEPLOY_SUPERSEDED) {
        json_object_set_new(j, "superseded_by",
                            json_integer(st->u.superseded.by));
    }

    if (!transitions) {
        return j;
    }

    list = json_array();

    if (shuttle_store_each_transition(api->s->store, d->id,
                                      api_add_transition, list, err,
                                      sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "deployment %lld: %s",
                    (long long) d->id, err);
    }

    json_object_set_new(j, "transitions", list);

    return j;
}


static int
api_add_transition(const shuttle_transition_t *t, void *data)
{
    json_t  *list;

    list = data;

    json_array_append_new(list,
        json_pack("{ssso}", "state", shuttle_deploy_name(t->state),
                  "at", api_time(t->at)));

    json_object_set_new(json_array_get(list, json_array_size(list) - 1),
                        "reason", t->reason ? json_string(t->reason)
                                            : json_null());

    return 0;
}


int
api_add_deployment(const shuttle_deployment_t *d, void *data)
{
    api_list_t  *list;

    list = data;

    json_array_append_new(list->array,
                          api_deployment_json(list->api, d, 0));

    return 0;
}


static json_t *
api_time(int64_t ms)
{
    char  buf[SHUTTLE_ISO_TIME_LEN];

    if (ms <= 0) {
        return json_null();
    }

    return json_string(shuttle_iso_time(ms, buf));
}


/* --apps-url with {name} replaced, or null */

json_t *
api_url(shuttle_api_t *api, const char *name)
{
    char        url[1024];
    size_t      n, len;
    const char *t, *p;

    t = api->s->conf.apps_url;

    if (t == NULL) {
        return json_null();
    }

    n = 0;
    len = strlen(name);

    for (p = t; *p != '\0' && n < sizeof(url) - 1; p++) {
        if (strncmp(p, "{name}", 6) == 0 && n + len < sizeof(url) - 1) {
            memcpy(url + n, name, len);
            n += len;
            p += 5;
            continue;
        }

        url[n++] = *p;
    }

    url[n] = '\0';

    return json_string(url);
}


ssize_t
api_follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    ssize_t                n;
    api_follow_t          *f;
    shuttle_deploy_tag_t   tag;

    f = cls;

    for ( ;; ) {
        if (f->fd == -1) {
            f->fd = shuttle_fsafe_open(f->s->conf.data, f->path, O_RDONLY, 0);

            if (f->fd == -1 && (errno == ELOOP || errno == EXDEV)) {
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }

        if (f->fd != -1) {
            n = pread(f->fd, buf, max, (off_t) pos);

            if (n > 0) {
                return n;
            }
        }

        if (f->last) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }

        /*
         * nothing new: the end once the deployment settles, or for its
         * runtime log, once it no longer runs
         */

        if (f->s->stopping
            || shuttle_store_state(f->s->store, f->id, &tag) != 0
            || (f->runtime ? tag > SHUTTLE_DEPLOY_RUNNING
                           : shuttle_deploy_settled(tag)))
        {
            f->last = 1;
            continue;
        }

        shuttle_serve_wait(f->s, &f->seen, API_FOLLOW_WAIT_MS);
    }
}


void
api_follow_free(void *cls)
{
    api_follow_t  *f;

    f = cls;

    if (f->fd != -1) {
        close(f->fd);
    }

    free(f);
}


enum MHD_Result
api_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char                 *body;
    size_t                len;
    enum MHD_Result       ret;
    struct MHD_Response  *resp;

    body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (body == NULL) {
        return MHD_NO;
    }

    len = strlen(body);

    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }

    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   "application/json");

    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return ret;
}


enum MHD_Result
api_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char     msg[SHUTTLE_REASON_MAX];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    return api_json(c, status, json_pack("{ss}", "error", msg));
}


enum MHD_Result
api_method(api_req_t *r, const char *allow)
{
    char                 *body;
    char                  msg[API_URL_MAX + 128];
    json_t               *j;
    enum MHD_Result       ret;
    struct MHD_Response  *resp;

    snprintf(msg, sizeof(msg), "%s %s: method not allowed (allowed: %s)",
             r->method, r->url, allow);

    j = json_pack("{ss}", "error", msg);
    body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (body == NULL) {
        return MHD_NO;
    }

    resp = MHD_create_response_from_buffer(strlen(body), body,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }

    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   "application/json");
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);

    ret = MHD_queue_response(r->c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    MHD_destroy_response(resp);

    return ret;
}


enum MHD_Result
api_text(struct MHD_Connection *c, struct MHD_Response *resp)
{
    enum MHD_Result  ret;

    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   "text/plain; charset=utf-8");

    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);

    return ret;
}


/* a base name of the spool: no '/', no leading '.' */

int
shuttle_api_valid_spool_name(const char *name)
{
    size_t  len;

    len = strlen(name);

    return len > 0 && len <= 255 && name[0] != '.'
           && strchr(name, '/') == NULL;
}


static int
api_parse_id(const char *s, int64_t *id)
{
    size_t   i;
    int64_t  n;

    n = 0;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i == 18) {
            return -1;
        }

        n = n * 10 + (s[i] - '0');
    }

    if (i == 0 || n == 0) {
        return -1;
    }

    *id = n;

    return 0;
}


/* creates the directories of path (a file's) below its first from bytes */

int
api_mkdirs(const char *path, size_t from)
{
    char    dir[SHUTTLE_PATH_MAX];
    char   *p, *slash;
    size_t  len;

    slash = strrchr(path, '/');
    len = slash ? (size_t) (slash - path) : 0;

    if (len <= from || len >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    memcpy(dir, path, len);
    dir[len] = '\0';

    for (p = strchr(dir + from + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = '\0';

        if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
            return -1;
        }

        *p = '/';
    }

    if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
        return -1;
    }

    return 0;
}


void
api_completed(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
    free(*req_cls);
    *req_cls = NULL;
}


void
api_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char  msg[1024];
    int   n;

    n = vsnprintf(msg, sizeof(msg), fmt, ap);

    while (n > 0 && (size_t) n < sizeof(msg) && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }

    shuttle_log(SHUTTLE_LOG_WARN, "api: %s", msg);
}
