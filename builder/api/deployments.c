
/*
 * The API: a project's deployments, its rollback, a deployment and its
 * logs, followed (api_int.h).
 */

#include "api.h"
#include "api_int.h"


static int api_previous(const shuttle_deployment_t *d, void *data);


enum MHD_Result
api_project_deployments(api_req_t *r)
{
    char               err[512], *end;
    long               limit;
    api_list_t         list;
    const char        *arg;
    enum MHD_Result    ret;
    shuttle_project_t  p;

    if (api_own_project(r, r->seg[2], &p, &ret) != 0) {
        return ret;
    }

    limit = SHUTTLE_API_LIST_LIMIT;
    arg = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "limit");

    if (arg != NULL) {
        errno = 0;
        limit = strtol(arg, &end, 10);

        if (errno || *end != '\0' || end == arg || limit < 1
            || limit > SHUTTLE_API_LIST_MAX)
        {
            return api_error(r->c, MHD_HTTP_BAD_REQUEST, "limit \"%s\" is "
                             "not a number in 1-%d", arg,
                             SHUTTLE_API_LIST_MAX);
        }
    }

    list.api = r->api;
    list.array = json_array();

    if (shuttle_store_each_deployment(r->s->store, p.id, (unsigned) limit,
                                      api_add_deployment, &list, err,
                                      sizeof(err))
        != 0)
    {
        json_decref(list.array);
        shuttle_log(SHUTTLE_LOG_ERROR, "GET %s: %s", r->url, err);
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    return api_json(r->c, MHD_HTTP_OK,
                    json_pack("{ssso}", "project", p.name, "deployments",
                              list.array));
}


/*
 * POST /v1/projects/NAME/rollback, body {} or {"deployment": ID}: a
 * superseded deployment (by default the one replaced last) runs again,
 * from its kept service.so, no build.  Answers once it serves:
 * {"id": ID, "project": NAME, "state": "running"}; 409 when there is
 * nothing to go back to or a deployment is on its way.
 */

enum MHD_Result
api_project_rollback(api_req_t *r)
{
    int                    rc;
    char                   so[SHUTTLE_PATH_MAX], reason[128];
    json_t                *j, *v;
    int64_t                id, end;
    uint64_t               seen;
    json_error_t           jerr;
    api_previous_t         prev;
    shuttle_msg_t          m;
    enum MHD_Result        ret;
    shuttle_project_t      p;
    shuttle_deploy_tag_t   tag;
    shuttle_deployment_t  *d;

    if (api_own_project(r, r->seg[2], &p, &ret) != 0) {
        return ret;
    }

    id = 0;

    if (r->body->too_long) {
        return api_error(r->c, MHD_HTTP_CONTENT_TOO_LARGE, "rollback %s: "
                         "the body is over %d bytes", p.name, API_BODY_MAX);
    }

    if (r->body->len > 0) {
        j = json_loadb(r->body->data, r->body->len, 0, &jerr);

        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            return api_error(r->c, MHD_HTTP_BAD_REQUEST, "rollback %s: the "
                             "body is not a JSON object", p.name);
        }

        v = json_object_get(j, "deployment");

        if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1))
        {
            json_decref(j);
            return api_error(r->c, MHD_HTTP_BAD_REQUEST, "rollback %s: "
                             "\"deployment\" is not a deployment id",
                             p.name);
        }

        id = v ? json_integer_value(v) : 0;
        json_decref(j);
    }

    if (api_find_previous(r, &p, &prev, so, sizeof(so)) != 0) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", so);
    }

    if (!shuttle_deploy_settled(prev.latest)) {
        return api_error(r->c, MHD_HTTP_CONFLICT, "rollback %s: deployment "
                         "#%lld is %s; try again once it settles", p.name,
                         (long long) prev.latest_id,
                         shuttle_deploy_name(prev.latest));
    }

    if (id == 0) {
        if (prev.id == 0) {
            return api_error(r->c, MHD_HTTP_CONFLICT, "project %s has no "
                             "earlier deployment to roll back to", p.name);
        }

        id = prev.id;
    }

    d = malloc(sizeof(shuttle_deployment_t));
    if (d == NULL) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                         strerror(ENOMEM));
    }

    rc = shuttle_store_deployment(r->s->store, id, d, so, sizeof(so));
    tag = d->state.tag;

    if (rc != 0 || d->project_id != p.id) {
        free(d);
        return api_error(r->c, MHD_HTTP_NOT_FOUND, "deployment %lld of %s "
                         "not found", (long long) id, p.name);
    }

    free(d);

    if (tag == SHUTTLE_DEPLOY_RUNNING && p.current == id) {
        return api_json(r->c, MHD_HTTP_OK,
                        json_pack("{sIssss}", "id", (json_int_t) id,
                                  "project", p.name, "state", "running"));
    }

    if (tag != SHUTTLE_DEPLOY_SUPERSEDED && tag != SHUTTLE_DEPLOY_STOPPED) {
        return api_error(r->c, MHD_HTTP_CONFLICT, "rollback %s: deployment "
                         "#%lld is %s; only one that was replaced can run "
                         "again", p.name, (long long) id,
                         shuttle_deploy_name(tag));
    }

    if (shuttle_deploy_path(so, sizeof(so), r->s->conf.data, p.name, id,
                            "service.so") != 0
        || access(so, R_OK) != 0)
    {
        return api_error(r->c, MHD_HTTP_CONFLICT, "rollback %s: deployment "
                         "#%lld has no service.so any more", p.name,
                         (long long) id);
    }

    /* main starts it; then it is this thread's to wait for */

    snprintf(reason, sizeof(reason), "rollback with key %s", r->key);

    memset(&m, 0, sizeof(shuttle_msg_t));
    m.type = SHUTTLE_MSG_ROLLBACK;
    m.id = id;
    m.wait = 1;
    m.reason = reason;
    snprintf(m.project, sizeof(m.project), "%s", p.name);

    seen = 0;
    shuttle_serve_wait(r->s, &seen, 0);

    shuttle_serve_post(r->s, &m);

    if (m.rc != 0) {
        return api_error(r->c, m.rc == -2 ? MHD_HTTP_SERVICE_UNAVAILABLE
                                          : MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "rollback %s to #%lld: %s", p.name, (long long) id,
                         m.err);
    }

    shuttle_metrics_count(SHUTTLE_METRIC_ROLLBACKS);

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: %s", p.name,
                (long long) id, reason);

    end = shuttle_mono_ms() + r->s->conf.start_timeout_ms
          + API_ROLLBACK_SLACK;

    while (shuttle_mono_ms() < end) {
        if (shuttle_store_state(r->s->store, id, &tag) != 0) {
            break;
        }

        if (tag == SHUTTLE_DEPLOY_RUNNING
            && shuttle_store_project(r->s->store, p.name, &p, so,
                                     sizeof(so)) == 0
            && p.current == id)
        {
            return api_json(r->c, MHD_HTTP_OK,
                            json_pack("{sIssss}", "id", (json_int_t) id,
                                      "project", p.name, "state",
                                      "running"));
        }

        if (tag != SHUTTLE_DEPLOY_LOADING && tag != SHUTTLE_DEPLOY_RUNNING) {
            break;
        }

        shuttle_serve_wait(r->s, &seen, API_FOLLOW_WAIT_MS);
    }

    d = malloc(sizeof(shuttle_deployment_t));

    if (d != NULL
        && shuttle_store_deployment(r->s->store, id, d, so, sizeof(so)) == 0
        && d->state.tag == SHUTTLE_DEPLOY_FAILED)
    {
        ret = api_error(r->c, MHD_HTTP_BAD_GATEWAY, "rollback %s to #%lld: "
                        "%s", p.name, (long long) id, d->reason);
        free(d);
        return ret;
    }

    free(d);

    return api_error(r->c, MHD_HTTP_GATEWAY_TIMEOUT, "rollback %s to #%lld: "
                     "not running in time", p.name, (long long) id);
}


/* the deployment a rollback without an id goes back to, and the newest */

int
api_find_previous(api_req_t *r, const shuttle_project_t *p,
    api_previous_t *prev, char *err, size_t errlen)
{
    memset(prev, 0, sizeof(api_previous_t));
    prev->data = r->s->conf.data;
    prev->current = p->current;

    return shuttle_store_each_deployment(r->s->store, p->id,
                                         SHUTTLE_API_LIST_MAX, api_previous,
                                         prev, err, errlen);
}


/* newest first: the latest's state, and the superseded one replaced last */

static int
api_previous(const shuttle_deployment_t *d, void *data)
{
    char             so[SHUTTLE_PATH_MAX];
    api_previous_t  *prev;

    prev = data;

    if (prev->latest_id == 0) {
        prev->latest_id = d->id;
        prev->latest = d->state.tag;
    }

    /* superseded once it ran, not while it waited for a build */

    if (d->id != prev->current
        && d->state.tag == SHUTTLE_DEPLOY_SUPERSEDED
        && d->updated > prev->updated
        && shuttle_deploy_path(so, sizeof(so), prev->data, d->project, d->id,
                               "service.so") == 0
        && access(so, F_OK) == 0)
    {
        prev->id = d->id;
        prev->updated = d->updated;
    }

    return 0;
}


enum MHD_Result
api_deployment(api_req_t *r)
{
    json_t                *j;
    enum MHD_Result        ret;
    shuttle_deployment_t  *d;

    d = malloc(sizeof(shuttle_deployment_t));
    if (d == NULL) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                         strerror(ENOMEM));
    }

    if (api_own_deployment(r, r->seg[2], d, &ret) != 0) {
        free(d);
        return ret;
    }

    j = api_deployment_json(r->api, d, 1);
    free(d);

    return api_json(r->c, MHD_HTTP_OK, j);
}


enum MHD_Result
api_logs(api_req_t *r)
{
    int                    fd, runtime;
    char                   path[SHUTTLE_PATH_MAX];
    const char            *follow, *arg;
    struct stat            st;
    api_follow_t          *f;
    enum MHD_Result        ret;
    struct MHD_Response   *resp;
    shuttle_deployment_t  *d;

    d = malloc(sizeof(shuttle_deployment_t));
    if (d == NULL) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                         strerror(ENOMEM));
    }

    if (api_own_deployment(r, r->seg[2], d, &ret) != 0) {
        free(d);
        return ret;
    }

    arg = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                      "runtime");
    runtime = arg != NULL && strcmp(arg, "0") != 0
              && strcmp(arg, "false") != 0;

    if (shuttle_deploy_path(path, sizeof(path), r->s->conf.data, d->project,
                            d->id, runtime ? "runtime.log" : "build.log")
        != 0)
    {
        free(d);
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "data path too long");
    }

    /* the deployment's directory is root's: a link there is followed by
       no one */
    fd = shuttle_fsafe_open(r->s->conf.data, path, O_RDONLY, 0);

    if (fd == -1 && (errno == ELOOP || errno == EXDEV)) {
        ret = api_error(r->c, MHD_HTTP_FORBIDDEN, "deployment #%lld: %s is "
                        "a symbolic link: not read", (long long) d->id,
                        runtime ? "runtime.log" : "build.log");
        free(d);
        return ret;
    }

    follow = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                         "follow");

    if (follow != NULL && strcmp(follow, "0") != 0
        && strcmp(follow, "false") != 0)
    {
        f = calloc(1, sizeof(api_follow_t));
        if (f == NULL) {
            if (fd != -1) {
                close(fd);
            }

            free(d);
            return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                             strerror(ENOMEM));
        }

        f->s = r->s;
        f->id = d->id;
        f->fd = fd;
        f->runtime = runtime;
        memcpy(f->path, path, sizeof(path));
        free(d);

        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                                 API_FOLLOW_BLOCK,
                                                 api_follow_read, f,
                                                 api_follow_free);
        if (resp == NULL) {
            api_follow_free(f);
            return MHD_NO;
        }

        return api_text(r->c, resp);
    }

    free(d);

    if (fd != -1 && fstat(fd, &st) == 0) {
        resp = MHD_create_response_from_fd((uint64_t) st.st_size, fd);

        if (resp == NULL) {
            close(fd);
        }

    } else {
        if (fd != -1) {
            close(fd);
        }

        resp = MHD_create_response_from_buffer(0, (void *) "",
                                               MHD_RESPMEM_PERSISTENT);
    }

    if (resp == NULL) {
        return MHD_NO;
    }

    return api_text(r->c, resp);
}
