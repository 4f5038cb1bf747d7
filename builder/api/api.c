
/*
 * The builder's HTTP API (see api.h).
 */


#include "api.h"
#include "api_int.h"


static enum MHD_Result api_handler(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **req_cls);
static enum MHD_Result api_route(api_req_t *r);
static int api_match(const char *path, api_req_t *r);
static int api_peer(api_req_t *r, enum MHD_Result *ret);
static unsigned api_key(api_req_t *r, const char *named, char *err,
    size_t errlen);
static void api_key_of(const char *project, char *key, size_t size,
    void *data);
static enum MHD_Result api_deploy(api_req_t *r);
static enum MHD_Result api_refuse(api_req_t *r, shuttle_refused_t why,
    unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


static const api_route_t  api_routes[] = {
    { "POST",   "/deploy",                             api_deploy },
    { "GET",    "/metrics",                            api_metrics },
    { "GET",    "/v1/projects",                        api_projects },
    { "GET",    "/v1/projects/{project}",              api_project },
    { "DELETE", "/v1/projects/{project}",              api_project_delete },
    { "GET",    "/v1/projects/{project}/deployments",
      api_project_deployments },
    { "POST",   "/v1/projects/{project}/rollback",     api_project_rollback },
    { "GET",    "/v1/projects/{project}/secrets",      api_secrets },
    { "PUT",    "/v1/projects/{project}/secrets",      api_secrets },
    { "POST",   "/v1/projects/{project}/restart",      api_project_restart },
    { "PUT",    "/v1/projects/{project}/scale",        api_project_scale },
    { "DELETE", "/v1/projects/{project}/secrets/{secret}", api_secrets },
    { "GET",    "/v1/deployments/{deployment}",        api_deployment },
    { "GET",    "/v1/deployments/{deployment}/logs",   api_logs },
    { NULL, NULL, NULL }
};


shuttle_api_t *
shuttle_api_start(shuttle_serve_t *s, int fd, char *err, size_t errlen)
{
    shuttle_api_t  *api;

    api = calloc(1, sizeof(shuttle_api_t));
    if (api == NULL) {
        snprintf(err, errlen, "api: %s", strerror(ENOMEM));
        return NULL;
    }

    api->s = s;

    api->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION
                                | MHD_USE_INTERNAL_POLLING_THREAD
                                | MHD_USE_POLL | MHD_USE_ITC
                                | MHD_USE_ERROR_LOG,
                                0, NULL, NULL, api_handler, api,
                                MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log,
                                NULL,
                                MHD_OPTION_LISTEN_SOCKET, fd,
                                MHD_OPTION_NOTIFY_COMPLETED, api_completed,
                                NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned int) API_TIMEOUT_S,
                                MHD_OPTION_END);

    if (api->mhd == NULL) {
        snprintf(err, errlen, "socket %s: libmicrohttpd did not start",
                 s->conf.socket);
        free(api);
        return NULL;
    }

    /* keys come in here: from now on, a key's builds take turns */
    shuttle_queue_limit_keys(s->queue, s->conf.key_jobs, api_key_of, s);

    return api;
}


/* a job's key, for the queue: its project's owner */

static void
api_key_of(const char *project, char *key, size_t size, void *data)
{
    char               err[512];
    shuttle_serve_t   *s;
    shuttle_project_t  p;

    s = data;

    if (shuttle_store_project(s->store, project, &p, err, sizeof(err)) != 0)
    {
        key[0] = '\0';
        return;
    }

    snprintf(key, size, "%s", p.owner);
}


void
shuttle_api_stop(shuttle_api_t *api)
{
    if (api == NULL) {
        return;
    }

    MHD_stop_daemon(api->mhd);
    free(api);
}


/* shuttle-builder routes: the table, one "METHOD PATH" a line */

int
shuttle_api_routes_main(int argc, char **argv)
{
    int                 help;
    const api_route_t  *rt;

    if (argc > 0) {
        help = strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0;

        fprintf(help ? stdout : stderr, "usage: shuttle-builder routes\n\n"
                "Prints the routes of the builder's API, one \"METHOD "
                "PATH\" a line;\n\"{...}\" stands for any one segment "
                "of a path.\n");

        return help ? 0 : 2;
    }

    for (rt = api_routes; rt->method != NULL; rt++) {
        printf("%s %s\n", rt->method, rt->path);
    }

    return fflush(stdout) == 0 ? 0 : 1;
}


static enum MHD_Result
api_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
    char        *p, *save, *tok;
    size_t       n;
    api_req_t    r;
    api_body_t  *body;

    if (*req_cls == NULL) {
        /* the headers: the body, if any, comes in the next calls */
        body = calloc(1, sizeof(api_body_t));
        if (body == NULL) {
            return MHD_NO;
        }

        *req_cls = body;
        return MHD_YES;
    }

    body = *req_cls;

    if (*upload_data_size != 0) {
        n = *upload_data_size;

        if (body->len + n > API_BODY_MAX) {
            body->too_long = 1;

        } else {
            memcpy(body->data + body->len, upload_data, n);
            body->len += n;
        }

        *upload_data_size = 0;
        return MHD_YES;
    }

    memset(&r, 0, sizeof(api_req_t));
    r.body = body;
    r.api = cls;
    r.s = r.api->s;
    r.c = c;
    r.method = method;
    r.url = url;

    if (strlen(url) >= sizeof(r.path)) {
        return api_error(c, MHD_HTTP_URI_TOO_LONG, "path too long");
    }

    strcpy(r.path, url);

    for (p = r.path, tok = strtok_r(p, "/", &save);
         tok != NULL;
         tok = strtok_r(NULL, "/", &save))
    {
        if (r.nseg == API_SEGMENTS) {
            return api_error(c, MHD_HTTP_NOT_FOUND, "not found: %s", url);
        }

        r.seg[r.nseg++] = tok;
    }

    return api_route(&r);
}


static enum MHD_Result
api_route(api_req_t *r)
{
    char                err[512], allow[64];
    size_t              n;
    unsigned            status;
    enum MHD_Result     ret;
    const api_route_t  *rt;

    if (api_peer(r, &ret) != 0) {
        if (r->nseg == 1 && strcmp(r->seg[0], "deploy") == 0) {
            shuttle_metrics_refused(SHUTTLE_REFUSED_FORBIDDEN);
        }

        return ret;
    }

    /*
     * /v1/: the caller's key, whatever the path; /deploy finds its key
     * itself (api_deploy()); /metrics needs none: nginx lets only its own
     * host (allow 127.0.0.1) scrape
     */

    if (r->nseg > 0 && strcmp(r->seg[0], "v1") == 0) {
        status = api_key(r, MHD_lookup_connection_value(r->c,
                                                        MHD_HEADER_KIND,
                                                        "X-Shuttle-Key"),
                         err, sizeof(err));

        if (status != 0) {
            return api_error(r->c, status, "%s", err);
        }

        if (r->key == NULL || !shuttle_api_valid_key(r->key)) {
            return api_error(r->c, MHD_HTTP_UNAUTHORIZED,
                             "no key: send the key's secret "
                             "(Authorization: Bearer), as nginx passes it "
                             "on, or, as root, its name (X-Shuttle-Key)");
        }
    }

    allow[0] = '\0';
    n = 0;

    for (rt = api_routes; rt->method != NULL; rt++) {
        if (!api_match(rt->path, r)) {
            continue;
        }

        if (strcmp(rt->method, r->method) == 0) {
            return rt->handler(r);
        }

        n += snprintf(allow + n, sizeof(allow) - n, "%s%s",
                      n ? ", " : "", rt->method);

        if (n >= sizeof(allow)) {
            n = sizeof(allow) - 1;
        }
    }

    if (n != 0) {
        return api_method(r, allow);
    }

    return api_error(r->c, MHD_HTTP_NOT_FOUND, "not found: %s", r->url);
}


/* the request's path has the route's segments; "{...}" takes any one */

static int
api_match(const char *path, api_req_t *r)
{
    int          i;
    size_t       len;
    const char  *p, *end;

    p = path;

    for (i = 0; *p == '/'; i++) {
        p++;
        end = strchrnul(p, '/');
        len = end - p;

        if (i == r->nseg) {
            return 0;
        }

        if (p[0] != '{'
            && (strlen(r->seg[i]) != len || memcmp(r->seg[i], p, len) != 0))
        {
            return 0;
        }

        p = end;
    }

    return i == r->nseg;
}


/*
 * Who may speak on this socket: only nginx's workers, root, and the
 * builder's own uid; the peer's uid is the kernel's word, taken at
 * connect() (SO_PEERCRED): a tenant's process that reaches the socket is
 * refused whatever it sends.  Which key a request speaks for is
 * api_key()'s.  0, else the answer is in *ret.
 */

static int
api_peer(api_req_t *r, enum MHD_Result *ret)
{
    char                             who[256];
    uid_t                            self;
    socklen_t                        len;
    struct ucred                     cred;
    const union MHD_ConnectionInfo  *ci;

    ci = MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    len = sizeof(struct ucred);

    if (ci == NULL
        || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)
           == -1)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "api: %s %s: the peer's "
                    "credentials (SO_PEERCRED): %s", r->method, r->url,
                    ci == NULL ? "no socket" : strerror(errno));
        *ret = api_error(r->c, MHD_HTTP_FORBIDDEN, "the peer of this socket "
                         "is not known (SO_PEERCRED): refused");
        return -1;
    }

    self = geteuid();
    r->uid = cred.uid;

    if (cred.uid == 0 || cred.uid == self
        || (r->s->conf.nginx_user != NULL && cred.uid == r->s->conf.uid))
    {
        return 0;
    }

    if (r->s->conf.nginx_user != NULL && self == 0) {
        snprintf(who, sizeof(who), "only root and nginx's workers (%s)",
                 r->s->conf.nginx_user);

    } else if (r->s->conf.nginx_user != NULL) {
        snprintf(who, sizeof(who), "only root, nginx's workers (%s) and "
                 "the builder's uid %u", r->s->conf.nginx_user,
                 (unsigned) self);

    } else if (self == 0) {
        snprintf(who, sizeof(who), "only root (the builder has no "
                 "--nginx-user)");

    } else {
        snprintf(who, sizeof(who), "only root and the builder's uid %u",
                 (unsigned) self);
    }

    shuttle_log(SHUTTLE_LOG_WARN, "api: %s %.200s from uid %u (pid %d) "
                "refused: it may not speak for a key on this socket: %s",
                r->method, r->url, (unsigned) cred.uid, (int) cred.pid, who);

    *ret = api_error(r->c, MHD_HTTP_FORBIDDEN, "uid %u may not speak for a "
                     "key on this socket: %s", (unsigned) cred.uid, who);
    return -1;
}


/*
 * The key a request speaks for, in r->key: the one whose secret it sends,
 * "Authorization: Bearer SECRET", found in the --api-keys file (nginx
 * passes the client's header on, on /v1/ and in the hand-off).  Only a
 * root peer may name a key without its secret (named: X-Shuttle-Key, or
 * the hand-off's key=), for the operator's own tools on the socket; the
 * caller checks the name.  nginx's workers' uid names none: it is
 * www-data, PHP-FPM's too, and whatever runs as it could name any key.
 * 0, else the HTTP status, with the reason in err.
 */

static unsigned
api_key(api_req_t *r, const char *named, char *err, size_t errlen)
{
    size_t       len;
    const char  *auth, *secret;

    auth = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_AUTHORIZATION);

    if (auth != NULL) {
        if (strncasecmp(auth, "Bearer ", sizeof("Bearer ") - 1) != 0) {
            snprintf(err, errlen, "the Authorization header is not "
                     "\"Bearer <key>\"");
            return MHD_HTTP_UNAUTHORIZED;
        }

        secret = auth + sizeof("Bearer ") - 1;

        while (*secret == ' ') {
            secret++;
        }

        for (len = strlen(secret); len > 0 && secret[len - 1] == ' '; len--) {
            /* void */
        }

        if (r->s->conf.keys == NULL) {
            snprintf(err, errlen, "a bearer key, but the builder has no "
                     "--api-keys to check it against");
            return MHD_HTTP_UNAUTHORIZED;
        }

        if (len == 0
            || shuttle_keyring_name(r->s->conf.keys, secret, len, r->keyname,
                                    sizeof(r->keyname))
               != 0)
        {
            snprintf(err, errlen, "invalid bearer key");
            return MHD_HTTP_UNAUTHORIZED;
        }

        r->key = r->keyname;
        return 0;
    }

    if (r->uid == 0) {
        r->key = named;
        return 0;
    }

    if (named != NULL) {
        shuttle_log(SHUTTLE_LOG_WARN, "api: %s %.200s from uid %u refused: "
                    "it names key \"%s\" without the key's secret",
                    r->method, r->url, (unsigned) r->uid,
                    shuttle_api_valid_key(named) ? named : "(not a name)");
    }

    snprintf(err, errlen, "no key: uid %u speaks for a key only with the "
             "key's secret (Authorization: Bearer)%s", (unsigned) r->uid,
             r->s->conf.keys == NULL
             ? ", which the builder, without --api-keys, cannot check"
             : "; a key's name (X-Shuttle-Key, key=) is taken from root "
               "alone");

    return MHD_HTTP_UNAUTHORIZED;
}


/*
 * POST /deploy?project=NAME&file=SPOOLFILE, with the uploader's
 * "Authorization: Bearer SECRET"; from root, &key=NAME instead
 */

static enum MHD_Result
api_deploy(api_req_t *r)
{
    int               rc;
    char              spool[SHUTTLE_PATH_MAX], upload[SHUTTLE_PATH_MAX];
    char              err[SHUTTLE_REASON_MAX];
    json_t           *j;
    int64_t           id, superseded, by;
    unsigned          status;
    const char       *project, *key, *file;
    struct stat       st;
    shuttle_serve_t  *s;

    s = r->s;

    /* whose upload: before anything is touched */

    status = api_key(r, MHD_lookup_connection_value(r->c,
                                                    MHD_GET_ARGUMENT_KIND,
                                                    "key"),
                     err, sizeof(err));

    if (status != 0) {
        return api_refuse(r, SHUTTLE_REFUSED_FORBIDDEN, status, "%s", err);
    }

    key = r->key;

    project = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                          "project");
    file = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "file");

    /* the file first: refusals remove it, when it is one of the spool's */

    if (file == NULL || !shuttle_api_valid_spool_name(file)
        || snprintf(spool, sizeof(spool), "%s/%s", s->conf.spool, file)
           >= (int) sizeof(spool))
    {
        return api_refuse(r, SHUTTLE_REFUSED_OTHER, MHD_HTTP_BAD_REQUEST,
                          "file \"%s\" is not the name of a file in the "
                          "spool directory", file ? file : "");
    }

    if (lstat(spool, &st) == -1) {
        return api_refuse(r, SHUTTLE_REFUSED_OTHER, MHD_HTTP_BAD_REQUEST,
                          "spool file %s: %s", file, strerror(errno));
    }

    if (!S_ISREG(st.st_mode)) {
        (void) unlink(spool);
        return api_refuse(r, SHUTTLE_REFUSED_OTHER, MHD_HTTP_BAD_REQUEST,
                          "spool file %s is not a regular file", file);
    }

    if (project == NULL || !shuttle_valid_name(project, strlen(project))) {
        (void) unlink(spool);
        return api_refuse(r, SHUTTLE_REFUSED_BAD_NAME, MHD_HTTP_BAD_REQUEST,
                          "project name \"%s\" is not a DNS label (1-63 of "
                          "a-z, 0-9 and '-', no '-' at either end)",
                          project ? project : "");
    }

    if (key == NULL || !shuttle_api_valid_key(key)) {
        (void) unlink(spool);
        return api_refuse(r, SHUTTLE_REFUSED_BAD_NAME, MHD_HTTP_BAD_REQUEST,
                          "key name \"%s\" is not 1-64 of A-Z, a-z, 0-9, "
                          "'_', '.' and '-'", key ? key : "");
    }

    if (s->stopping) {
        (void) unlink(spool);
        return api_refuse(r, SHUTTLE_REFUSED_UNAVAILABLE,
                          MHD_HTTP_SERVICE_UNAVAILABLE,
                          "the builder is stopping");
    }

    /* a new project must have room in the zone: else nothing is made */

    pthread_mutex_lock(&s->zone_lock);
    rc = shuttle_zone_room(&s->zone, project, err, sizeof(err));
    pthread_mutex_unlock(&s->zone_lock);

    if (rc != 0) {
        (void) unlink(spool);
        shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s with key %s: refused: %s",
                    project, key, err);
        return api_refuse(r, SHUTTLE_REFUSED_ZONE_FULL,
                          MHD_HTTP_INSUFFICIENT_STORAGE, "deploy %s: %s",
                          project, err);
    }

    rc = shuttle_store_enqueue(s->store, project, key, s->conf.key_projects,
                               &id, err, sizeof(err));

    if (rc != 0) {
        (void) unlink(spool);

        if (rc == SHUTTLE_STORE_FORBIDDEN || rc == SHUTTLE_STORE_LIMIT) {
            shuttle_log(SHUTTLE_LOG_INFO, "deploy %s with key %s: refused: "
                        "%s", project, key, err);
            return api_refuse(r, rc == SHUTTLE_STORE_LIMIT
                                 ? SHUTTLE_REFUSED_QUOTA
                                 : SHUTTLE_REFUSED_FORBIDDEN,
                              MHD_HTTP_FORBIDDEN, "%s", err);
        }

        shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s: %s", project, err);
        return api_refuse(r, SHUTTLE_REFUSED_OTHER,
                          MHD_HTTP_INTERNAL_SERVER_ERROR, "deploy %s: %s",
                          project, err);
    }

    if (shuttle_deploy_path(upload, sizeof(upload), s->conf.data, project,
                            id, "upload.tar.gz") != 0
        || api_mkdirs(upload, strlen(s->conf.data)) != 0
        || rename(spool, upload) != 0)
    {
        rc = errno;
        snprintf(err, sizeof(err), "upload: moving spool file %.255s into "
                 "the deployment: %s", file, strerror(rc));
        (void) unlink(spool);
        (void) shuttle_deploy_fail(s, project, id, err, -1);
        return api_refuse(r, rc == ENOSPC || rc == EDQUOT
                             ? SHUTTLE_REFUSED_NO_SPACE
                             : SHUTTLE_REFUSED_OTHER,
                          MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "deploy %s #%lld: %s", project, (long long) id,
                          err);
    }

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: queued (key %s, %lld "
                "bytes)", project, (long long) id, key,
                (long long) st.st_size);

    if (shuttle_queue_push(s->queue, id, project, &superseded, &by) != 0) {
        (void) shuttle_deploy_fail(s, project, id, "out of memory", -1);
        return api_refuse(r, SHUTTLE_REFUSED_OTHER,
                          MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "deploy %s #%lld: out of memory", project,
                          (long long) id);
    }

    if (superseded != 0) {
        shuttle_deploy_supersede(s, project, superseded, by);
    }

    shuttle_metrics_count(SHUTTLE_METRIC_DEPLOYS);

    shuttle_serve_zone_sync(s, project);
    shuttle_serve_changed(s);

    /* the URL too: "shuttle deploy" asks for nothing after "running" */
    j = json_pack("{sIsss" "sso}", "id", (json_int_t) id, "project", project,
                  "state", superseded == id ? "superseded" : "queued",
                  "url", api_url(r->api, project));

    return api_json(r->c, MHD_HTTP_ACCEPTED, j);
}


/* an upload turned away at the hand-off: counted by reason, then told */

static enum MHD_Result
api_refuse(api_req_t *r, shuttle_refused_t why, unsigned status,
    const char *fmt, ...)
{
    char     msg[SHUTTLE_REASON_MAX];
    va_list  args;

    shuttle_metrics_refused(why);

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    return api_json(r->c, status, json_pack("{ss}", "error", msg));
}
