
/*
 * The API: GET /metrics, and the projects: list, show, delete, purge,
 * restart, scale, secrets (api_int.h).
 */

#include "api.h"
#include "api_int.h"


static int api_kept_only(api_req_t *r, const char *name);
static enum MHD_Result api_purge(api_req_t *r, const char *name);
static int api_secret_name(const char *key, const char *value, void *data);
static int api_secret_key(const char *key);


/* GET /metrics: Prometheus text (metrics.h) */

enum MHD_Result
api_metrics(api_req_t *r)
{
    char                 *text, err[512];
    size_t                len;
    enum MHD_Result       ret;
    struct MHD_Response  *resp;

    text = shuttle_metrics_text(r->s, &len, err, sizeof(err));

    if (text == NULL) {
        shuttle_log(SHUTTLE_LOG_ERROR, "GET /metrics: %s", err);
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }

    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   "text/plain; version=0.0.4; "
                                   "charset=utf-8");

    ret = MHD_queue_response(r->c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);

    return ret;
}


/*
 * GET /v1/projects: the store is read API_PROJECTS_CHUNK projects a query
 * (a row has the latest deployment, the current one's state, the limits;
 * shuttle_store_each_project_view), not five queries a project: 10,000
 * projects list in a fraction of the time, and the store is held a chunk
 * at a time.  Only the resources of a project that has some are read on
 * their own (their sizes are on disk).
 */

#define API_PROJECTS_CHUNK  256

typedef struct {
    shuttle_api_t          *api;
    json_t                 *list;
    size_t                  n;              /* in this chunk */
    char                    last[SHUTTLE_NAME_MAX + 1];
    json_t                 *with[API_PROJECTS_CHUNK];  /* resources */
    size_t                  nwith;
} api_views_t;


static int
api_add_view(const shuttle_project_view_t *pv, void *data)
{
    char                   err[256];
    json_t                *j;
    api_views_t           *all;
    shuttle_limits_t       limits;
    shuttle_serve_view_t   v;

    all = data;

    /* what shuttle_serve_view() says, from the row */
    memset(&v, 0, sizeof(shuttle_serve_view_t));

    if (pv->project.current != 0 && pv->current == SHUTTLE_DEPLOY_RUNNING) {
        v.deployment = pv->project.current;
        v.port = pv->current_port;
        v.state = v.port == 0 ? SHUTTLE_STATE_LOADING
                  : pv->current_idle_since ? SHUTTLE_STATE_IDLE
                  : SHUTTLE_STATE_RUNNING;
        v.since = pv->current_idle_since;

    } else if (pv->latest.id != 0
               && pv->latest.state.tag != SHUTTLE_DEPLOY_DELETED)
    {
        v.deployment = pv->latest.id;
        v.state = shuttle_deploy_zone_state(pv->latest.state.tag);
    }

    /* what shuttle_deploy_limits() says, from the row */
    limits = all->api->s->conf.limits;

    if (pv->limits != NULL
        && shuttle_limits_merge(&limits, pv->limits, err, sizeof(err)) != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "project %s: %s: the defaults apply",
                    pv->project.name, err);
        limits = all->api->s->conf.limits;
    }

    j = api_project_json_of(all->api, &pv->project, &v,
                            pv->latest.id != 0 ? &pv->latest : NULL,
                            &limits, json_array());

    if (json_array_append_new(all->list, j) != 0) {
        return -1;
    }

    if (pv->resources > 0 && all->nwith < API_PROJECTS_CHUNK) {
        all->with[all->nwith++] = j;
    }

    all->n++;
    memcpy(all->last, pv->project.name, sizeof(all->last));

    return 0;
}


enum MHD_Result
api_projects(api_req_t *r)
{
    char          err[512];
    json_t       *j, *name;
    size_t        i;
    api_views_t  *all;

    all = calloc(1, sizeof(api_views_t));
    if (all == NULL) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                         strerror(ENOMEM));
    }

    all->api = r->api;
    all->list = json_array();

    do {
        all->n = 0;
        all->nwith = 0;

        if (shuttle_store_each_project_view(r->s->store, r->key, all->last,
                                            API_PROJECTS_CHUNK, api_add_view,
                                            all, err, sizeof(err))
            != 0)
        {
            json_decref(all->list);
            free(all);
            shuttle_log(SHUTTLE_LOG_ERROR, "GET /v1/projects: %s", err);
            return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                             err);
        }

        /* the store is free again: the resources of those with some */
        for (i = 0; i < all->nwith; i++) {
            j = all->with[i];
            name = json_object_get(j, "name");

            json_object_set_new(j, "resources",
                                shuttle_provision_describe(r->s,
                                                  json_string_value(name)));
        }

    } while (all->n == API_PROJECTS_CHUNK);

    j = all->list;
    free(all);

    return api_json(r->c, MHD_HTTP_OK, json_pack("{so}", "projects", j));
}


enum MHD_Result
api_project(api_req_t *r)
{
    char               err[512];
    json_t            *j;
    api_previous_t     prev;
    enum MHD_Result    ret;
    shuttle_project_t  p;

    if (api_own_project(r, r->seg[2], &p, &ret) != 0) {
        return ret;
    }

    /* where "shuttle rollback" (a body of {}) would go: null for nowhere */

    if (api_find_previous(r, &p, &prev, err, sizeof(err)) != 0) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    j = api_project_json(r->api, &p);

    if (j != NULL) {
        json_object_set_new(j, "rollback_to", prev.id
                                              ? json_integer(prev.id)
                                              : json_null());
    }

    return api_json(r->c, MHD_HTTP_OK, j);
}


enum MHD_Result
api_project_delete(api_req_t *r)
{
    int                purging;
    const char        *purge;
    enum MHD_Result    ret;
    shuttle_msg_t      m;
    shuttle_project_t  p;

    purge = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                        "purge");
    purging = purge != NULL && strcmp(purge, "0") != 0;

    /* deleted before: ?purge=1 drops what the key kept under the name */

    if (purging && api_kept_only(r, r->seg[2])) {
        return api_purge(r, r->seg[2]);
    }

    if (api_own_project(r, r->seg[2], &p, &ret) != 0) {
        return ret;
    }

    /* loaders are main's: it stops them, and answers */

    memset(&m, 0, sizeof(shuttle_msg_t));
    m.type = SHUTTLE_MSG_DELETE;
    m.wait = 1;
    m.purge = purging;
    snprintf(m.project, sizeof(m.project), "%s", p.name);

    shuttle_serve_post(r->s, &m);

    if (m.rc == SHUTTLE_STORE_NOT_FOUND) {
        return api_error(r->c, MHD_HTTP_NOT_FOUND, "project %s not found",
                         p.name);
    }

    if (m.rc != 0) {
        return api_error(r->c, m.rc == -2 ? MHD_HTTP_SERVICE_UNAVAILABLE
                                          : MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "delete %s: %s", p.name, m.err);
    }

    if (purging) {
        return api_purge(r, p.name);
    }

    return api_json(r->c, MHD_HTTP_OK,
                    json_pack("{sssbsb}", "project", p.name, "deleted", 1,
                              "purged", 0));
}


/* no live project of the name, and what is kept under it is the key's */

static int
api_kept_only(api_req_t *r, const char *name)
{
    char               err[512], owner[SHUTTLE_KEY_MAX + 1];
    shuttle_project_t  p;

    return shuttle_valid_name(name, strlen(name))
           && shuttle_store_project(r->s->store, name, &p, err, sizeof(err))
              == SHUTTLE_STORE_NOT_FOUND
           && shuttle_store_kept_owner(r->s->store, name, owner,
                                       sizeof(owner)) == 0
           && strcmp(owner, r->key) == 0;
}


/* the deleted project's databases, files, secrets and uid are dropped */

static enum MHD_Result
api_purge(api_req_t *r, const char *name)
{
    int   rc;
    char  err[512], mark[SHUTTLE_PATH_MAX];

    /* a builder killed in the middle finishes it at its next start */

    if (shuttle_deploy_purge_mark(r->s, name, r->key, mark, sizeof(mark), err,
                           sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "purge %s: %s", name, err);
        return api_error(r->c, MHD_HTTP_INSUFFICIENT_STORAGE, "delete %s: "
                         "deleted, but not purged: %s", name, err);
    }

    rc = shuttle_provision_purge(r->s, name, r->key, err, sizeof(err));

    (void) unlink(mark);

    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "purge %s: %s", name, err);
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "delete %s: deleted, but its resources were not "
                         "all removed: %s", name, err);
    }

    shuttle_log(SHUTTLE_LOG_INFO, "project %s purged by key %s: its "
                "databases, secrets and uid are gone", name, r->key);

    return api_json(r->c, MHD_HTTP_OK,
                    json_pack("{sssbsb}", "project", name, "deleted", 1,
                              "purged", 1));
}


/*
 * POST /v1/projects/NAME/restart: the serving deployment in a fresh
 * loader (which reads the secrets anew), no build; the old loader serves
 * until the new one is ready, then drains.  Answers once the new one
 * serves: {"id": ID, "project": NAME, "state": "running", "pid": PID}.
 */

enum MHD_Result
api_project_restart(api_req_t *r)
{
    int                    failed;
    char                   err[512];
    pid_t                  old;
    int64_t                id, end;
    uint64_t               seen;
    shuttle_msg_t          m;
    enum MHD_Result        ret;
    shuttle_project_t      p;
    shuttle_deployment_t  *d;

    if (api_own_project(r, r->seg[2], &p, &ret) != 0) {
        return ret;
    }

    id = p.current;

    d = malloc(sizeof(shuttle_deployment_t));
    if (d == NULL) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                         strerror(ENOMEM));
    }

    if (id == 0
        || shuttle_store_deployment(r->s->store, id, d, err, sizeof(err))
           != 0
        || d->state.tag != SHUTTLE_DEPLOY_RUNNING)
    {
        free(d);
        return api_error(r->c, MHD_HTTP_CONFLICT, "restart %s: no "
                         "deployment is running", p.name);
    }

    old = d->state.u.running.pid;

    pthread_mutex_lock(&r->s->lock);
    if (r->s->renew_failed == id) {
        r->s->renew_failed = 0;
    }
    pthread_mutex_unlock(&r->s->lock);

    memset(&m, 0, sizeof(shuttle_msg_t));
    m.type = SHUTTLE_MSG_RESTART;
    m.id = id;
    m.wait = 1;
    snprintf(m.project, sizeof(m.project), "%s", p.name);

    seen = 0;
    shuttle_serve_wait(r->s, &seen, 0);

    shuttle_serve_post(r->s, &m);

    if (m.rc != 0) {
        free(d);
        return api_error(r->c, MHD_HTTP_CONFLICT, "restart %s: %s", p.name,
                         m.err);
    }

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: restart with key %s",
                p.name, (long long) id, r->key);

    end = shuttle_mono_ms() + r->s->conf.start_timeout_ms
          + API_ROLLBACK_SLACK;

    while (shuttle_mono_ms() < end) {
        if (shuttle_store_deployment(r->s->store, id, d, err, sizeof(err))
            != 0)
        {
            break;
        }

        if (d->state.tag == SHUTTLE_DEPLOY_RUNNING
            && d->state.u.running.pid != old && d->state.u.running.pid > 0)
        {
            ret = api_json(r->c, MHD_HTTP_OK,
                           json_pack("{sIsssssi}", "id", (json_int_t) id,
                                     "project", p.name, "state", "running",
                                     "pid", (int) d->state.u.running.pid));
            free(d);
            return ret;
        }

        if (d->state.tag != SHUTTLE_DEPLOY_RUNNING) {
            break;
        }

        pthread_mutex_lock(&r->s->lock);
        failed = r->s->renew_failed == id;
        pthread_mutex_unlock(&r->s->lock);

        if (failed) {
            free(d);
            return api_error(r->c, MHD_HTTP_BAD_GATEWAY, "restart %s: the "
                             "new loader of #%lld did not start; the old one "
                             "goes on serving (shuttle logs says why)",
                             p.name, (long long) id);
        }

        shuttle_serve_wait(r->s, &seen, API_FOLLOW_WAIT_MS);
    }

    free(d);

    return api_error(r->c, MHD_HTTP_GATEWAY_TIMEOUT, "restart %s: the new "
                     "loader of #%lld did not become ready; the old one "
                     "goes on serving (see shuttle logs)", p.name,
                     (long long) id);
}


/*
 * PUT /v1/projects/NAME/scale {"idle": "5m" | "never" | null}: the time
 * without a request after which the project scales to zero, its own
 * ("never": it never does) or, null, the builder's --idle.  A running
 * loader is restarted to take it; an idle project takes it on its next
 * wake.  Answers the project.
 */

enum MHD_Result
api_project_scale(api_req_t *r)
{
    char                  err[512], text[32];
    json_t               *j, *v;
    int64_t               ms;
    json_error_t          jerr;
    shuttle_msg_t         m;
    enum MHD_Result       ret;
    shuttle_project_t     p;
    shuttle_serve_view_t  view;

    if (api_own_project(r, r->seg[2], &p, &ret) != 0) {
        return ret;
    }

    if (r->body->too_long) {
        return api_error(r->c, MHD_HTTP_CONTENT_TOO_LARGE, "scale %s: the "
                         "body is over %d bytes", p.name, API_BODY_MAX);
    }

    j = json_loadb(r->body->data, r->body->len, JSON_REJECT_DUPLICATES,
                   &jerr);
    v = json_is_object(j) && json_object_size(j) == 1
        ? json_object_get(j, "idle") : NULL;

    ms = -1;

    if (v == NULL
        || !(json_is_null(v)
             || (json_is_string(v)
                 && shuttle_duration_parse(json_string_value(v), &ms) == 0)))
    {
        json_decref(j);
        return api_error(r->c, MHD_HTTP_BAD_REQUEST, "scale %s: the body "
                         "must be {\"idle\": DURATION}, a duration such as "
                         "\"5m\", \"30s\" or \"never\", or null for the "
                         "builder's default", p.name);
    }

    json_decref(j);

    if (ms > 0 && ms < 1000) {
        return api_error(r->c, MHD_HTTP_BAD_REQUEST, "scale %s: idle after "
                         "%lld ms: the shortest is 1s", p.name,
                         (long long) ms);
    }

    if (shuttle_store_set_project_idle(r->s->store, p.name, ms, err,
                                       sizeof(err))
        != 0)
    {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    shuttle_duration_text(ms >= 0 ? ms : r->s->conf.idle_ms, text,
                          sizeof(text));
    shuttle_log(SHUTTLE_LOG_INFO, "project %s: idle after %s%s, set by key "
                "%s", p.name, text, ms >= 0 ? "" : " (the default)", r->key);

    /* the running loader got the old --idle: a fresh one gets the new;
       an idle one takes it when it wakes */

    memset(&view, 0, sizeof(shuttle_serve_view_t));
    (void) shuttle_serve_view(r->s, &p, &view);

    if (p.current != 0 && view.state == SHUTTLE_STATE_RUNNING) {
        memset(&m, 0, sizeof(shuttle_msg_t));
        m.type = SHUTTLE_MSG_RESTART;
        m.id = p.current;
        m.wait = 1;
        snprintf(m.project, sizeof(m.project), "%s", p.name);

        shuttle_serve_post(r->s, &m);
    }

    if (shuttle_store_project(r->s->store, p.name, &p, err, sizeof(err))
        != 0)
    {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    return api_json(r->c, MHD_HTTP_OK, api_project_json(r->api, &p));
}


/*
 * GET /v1/projects/NAME/secrets: {"project": NAME, "secrets": [KEY...]},
 * names only.  PUT with {"KEY": "VALUE", ...} sets them, for a project of
 * the key's or a name nobody holds (secrets may come before the first
 * deploy).  DELETE /v1/projects/NAME/secrets/KEY removes one.  Values
 * never leave the builder but for the loaders.
 */

enum MHD_Result
api_secrets(api_req_t *r)
{
    int                rc;
    char               err[512], owner[SHUTTLE_KEY_MAX + 1];
    json_t            *j, *v, *names;
    const char        *name, *key;
    json_error_t       jerr;
    enum MHD_Result    ret;
    shuttle_project_t  p;

    name = r->seg[2];

    if (!shuttle_valid_name(name, strlen(name))) {
        return api_error(r->c, MHD_HTTP_BAD_REQUEST, "project name \"%s\" "
                         "is not a DNS label", name);
    }

    rc = shuttle_store_project(r->s->store, name, &p, err, sizeof(err));

    if (rc == -1) {
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    if (rc == 0 && strcmp(p.owner, r->key) != 0) {
        return api_error(r->c, MHD_HTTP_NOT_FOUND, "project %s not found",
                         name);
    }

    if (rc != 0) {
        /* no live project: kept secrets must be the key's */
        rc = shuttle_store_kept_owner(r->s->store, name, owner,
                                      sizeof(owner));

        if ((rc == 0 && strcmp(owner, r->key) != 0)
            || (rc != 0 && strcmp(r->method, "PUT") != 0))
        {
            return api_error(r->c, MHD_HTTP_NOT_FOUND, "project %s not "
                             "found", name);
        }
    }

    if (strcmp(r->method, "DELETE") == 0) {
        key = r->seg[4];

        rc = shuttle_store_secret_del(r->s->store, name, r->key, key, err,
                                      sizeof(err));
        if (rc == SHUTTLE_STORE_NOT_FOUND) {
            return api_error(r->c, MHD_HTTP_NOT_FOUND, "project %s has no "
                             "secret %s", name, key);
        }

        if (rc != 0) {
            return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                             err);
        }

        shuttle_log(SHUTTLE_LOG_INFO, "project %s: secret %s removed by "
                    "key %s", name, key, r->key);

        return api_json(r->c, MHD_HTTP_OK,
                        json_pack("{sssssb}", "project", name, "secret", key,
                                  "deleted", 1));
    }

    if (strcmp(r->method, "PUT") == 0) {
        if (r->body->too_long) {
            return api_error(r->c, MHD_HTTP_CONTENT_TOO_LARGE, "secrets of "
                             "%s: the body is over %d bytes", name,
                             API_BODY_MAX);
        }

        j = json_loadb(r->body->data, r->body->len, JSON_REJECT_DUPLICATES,
                       &jerr);

        if (j == NULL || !json_is_object(j) || json_object_size(j) == 0) {
            json_decref(j);
            return api_error(r->c, MHD_HTTP_BAD_REQUEST, "secrets of %s: "
                             "the body must be a JSON object of "
                             "\"KEY\": \"VALUE\" pairs", name);
        }

        json_object_foreach(j, key, v) {
            /* the answer before the body goes: key is the body's */

            if (!api_secret_key(key)) {
                ret = api_error(r->c, MHD_HTTP_BAD_REQUEST, "secret name "
                                "\"%.64s\" is not [A-Za-z_][A-Za-z0-9_]"
                                "{0,63}", key);
                json_decref(j);
                return ret;
            }

            if (!json_is_string(v)
                || strlen(json_string_value(v)) != json_string_length(v))
            {
                ret = api_error(r->c, MHD_HTTP_BAD_REQUEST, "secret %s: "
                                "the value must be a string without NUL "
                                "bytes", key);
                json_decref(j);
                return ret;
            }
        }

        json_object_foreach(j, key, v) {
            rc = shuttle_store_secret_set(r->s->store, name, r->key, key,
                                          json_string_value(v), err,
                                          sizeof(err));
            if (rc != 0) {
                json_decref(j);
                if (rc == SHUTTLE_STORE_FORBIDDEN) {
                    return api_error(r->c, MHD_HTTP_NOT_FOUND, "project %s "
                                     "not found", name);
                }

                return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                                 err);
            }

            shuttle_log(SHUTTLE_LOG_INFO, "project %s: secret %s set by key "
                        "%s", name, key, r->key);
        }

        json_decref(j);
    }

    names = json_array();

    if (shuttle_store_each_secret(r->s->store, name, api_secret_name, names,
                                  err, sizeof(err))
        != 0)
    {
        json_decref(names);
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    return api_json(r->c, MHD_HTTP_OK,
                    json_pack("{ssso}", "project", name, "secrets", names));
}


static int
api_secret_name(const char *key, const char *value, void *data)
{
    return json_array_append_new(data, json_string(key));
}


/* [A-Za-z_][A-Za-z0-9_]{0,63} */

static int
api_secret_key(const char *key)
{
    size_t  i;
    char    c;

    for (i = 0; key[i] != '\0'; i++) {
        c = key[i];

        if (i == 64
            || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'
                 || (i > 0 && c >= '0' && c <= '9')))
        {
            return 0;
        }
    }

    return i > 0;
}
