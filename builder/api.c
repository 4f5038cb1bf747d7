
/*
 * The builder's HTTP API (see api.h).
 */


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

#include "api.h"
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


/* GET /v1/projects collects rows, then builds each project's JSON */
typedef struct {
    shuttle_project_t      *elts;
    size_t                  nelts;
    size_t                  nalloc;
} api_projects_t;


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
static enum MHD_Result api_metrics(api_req_t *r);
static enum MHD_Result api_projects(api_req_t *r);
static enum MHD_Result api_project(api_req_t *r);
static enum MHD_Result api_project_delete(api_req_t *r);
static int api_kept_only(api_req_t *r, const char *name);
static enum MHD_Result api_purge(api_req_t *r, const char *name);
static enum MHD_Result api_project_deployments(api_req_t *r);
static enum MHD_Result api_project_rollback(api_req_t *r);
static enum MHD_Result api_secrets(api_req_t *r);
static enum MHD_Result api_project_restart(api_req_t *r);
static enum MHD_Result api_project_scale(api_req_t *r);
static int api_secret_name(const char *key, const char *value, void *data);
static int api_secret_key(const char *key);
static int api_previous(const shuttle_deployment_t *d, void *data);
static int api_find_previous(api_req_t *r, const shuttle_project_t *p,
    api_previous_t *prev, char *err, size_t errlen);
static enum MHD_Result api_deployment(api_req_t *r);
static enum MHD_Result api_logs(api_req_t *r);
static int api_own_project(api_req_t *r, const char *name,
    shuttle_project_t *p, enum MHD_Result *ret);
static int api_own_deployment(api_req_t *r, const char *id,
    shuttle_deployment_t *d, enum MHD_Result *ret);
static json_t *api_project_json(shuttle_api_t *api,
    const shuttle_project_t *p);
static json_t *api_deployment_json(shuttle_api_t *api,
    const shuttle_deployment_t *d, int transitions);
static int api_add_transition(const shuttle_transition_t *t, void *data);
static int api_add_deployment(const shuttle_deployment_t *d, void *data);
static int api_add_project(const shuttle_project_t *p, void *data);
static json_t *api_time(int64_t ms);
static json_t *api_url(shuttle_api_t *api, const char *name);
static ssize_t api_follow_read(void *cls, uint64_t pos, char *buf,
    size_t max);
static void api_follow_free(void *cls);
static enum MHD_Result api_json(struct MHD_Connection *c, unsigned status,
    json_t *j);
static enum MHD_Result api_error(struct MHD_Connection *c, unsigned status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result api_method(api_req_t *r, const char *allow);
static enum MHD_Result api_text(struct MHD_Connection *c,
    struct MHD_Response *resp);
static int api_parse_id(const char *s, int64_t *id);
static int api_mkdirs(const char *path, size_t from);
static void api_mhd_log(void *cls, const char *fmt, va_list ap);
static void api_completed(void *cls, struct MHD_Connection *c,
    void **req_cls, enum MHD_RequestTerminationCode toe);


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


int
shuttle_api_valid_key(const char *key)
{
    size_t  i;
    char    c;

    for (i = 0; key[i] != '\0'; i++) {
        c = key[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
        {
            return 0;
        }
    }

    return i >= 1 && i <= SHUTTLE_KEY_MAX;
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

    j = json_pack("{sIsss" "s}", "id", (json_int_t) id, "project", project,
                  "state", superseded == id ? "superseded" : "queued");

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


/* GET /metrics: Prometheus text (metrics.h) */

static enum MHD_Result
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


static enum MHD_Result
api_projects(api_req_t *r)
{
    char             err[512];
    json_t          *list;
    size_t           i;
    api_projects_t   all;

    memset(&all, 0, sizeof(api_projects_t));

    if (shuttle_store_each_project(r->s->store, r->key, api_add_project,
                                   &all, err, sizeof(err))
        != 0)
    {
        free(all.elts);
        shuttle_log(SHUTTLE_LOG_ERROR, "GET /v1/projects: %s", err);
        return api_error(r->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }

    list = json_array();

    for (i = 0; i < all.nelts; i++) {
        json_array_append_new(list, api_project_json(r->api, &all.elts[i]));
    }

    free(all.elts);

    return api_json(r->c, MHD_HTTP_OK, json_pack("{so}", "projects", list));
}


static enum MHD_Result
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


static enum MHD_Result
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

static enum MHD_Result
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

static enum MHD_Result
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

static enum MHD_Result
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


static enum MHD_Result
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

static enum MHD_Result
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

static int
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


static enum MHD_Result
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


static enum MHD_Result
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


/* 0: the key's project in *p; else the answer is queued in *ret */

static int
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


static int
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


static json_t *
api_project_json(shuttle_api_t *api, const shuttle_project_t *p)
{
    char                   err[512], idle[32];
    json_t                *j, *latest;
    shuttle_limits_t       limits;
    shuttle_deployment_t  *d;
    shuttle_serve_view_t   v;

    memset(&v, 0, sizeof(shuttle_serve_view_t));
    (void) shuttle_serve_view(api->s, p, &v);

    latest = json_null();

    if (p->latest != 0) {
        d = malloc(sizeof(shuttle_deployment_t));

        if (d != NULL
            && shuttle_store_deployment(api->s->store, p->latest, d, err,
                                        sizeof(err)) == 0)
        {
            latest = api_deployment_json(api, d, 0);
        }

        free(d);
    }

    j = json_object();

    json_object_set_new(j, "name", json_string(p->name));
    json_object_set_new(j, "owner", json_string(p->owner));
    json_object_set_new(j, "state",
                        json_string(shuttle_zone_state_name(v.state)));
    json_object_set_new(j, "url", api_url(api, p->name));
    json_object_set_new(j, "current",
                        p->current ? json_integer(p->current) : json_null());
    json_object_set_new(j, "latest", latest);
    json_object_set_new(j, "created", api_time(p->created));
    json_object_set_new(j, "updated", api_time(p->updated));
    json_object_set_new(j, "resources",
                        shuttle_provision_describe(api->s, p->name));

    /* scale to zero: after what, whose setting, since when */
    shuttle_duration_text(p->idle_ms >= 0 ? p->idle_ms
                                          : api->s->conf.idle_ms,
                          idle, sizeof(idle));
    json_object_set_new(j, "idle_after", json_string(idle));
    json_object_set_new(j, "idle_default", json_boolean(p->idle_ms < 0));
    json_object_set_new(j, "idle_since",
                        v.state == SHUTTLE_STATE_IDLE ? api_time(v.since)
                                                      : json_null());

    /* what its sandbox gets: the defaults and the operator's for it */
    shuttle_deploy_limits(api->s, p->name, &limits);
    json_object_set_new(j, "limits", shuttle_limits_json(&limits));

    return j;
}


static json_t *
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


static int
api_add_deployment(const shuttle_deployment_t *d, void *data)
{
    api_list_t  *list;

    list = data;

    json_array_append_new(list->array,
                          api_deployment_json(list->api, d, 0));

    return 0;
}


static int
api_add_project(const shuttle_project_t *p, void *data)
{
    size_t              n;
    api_projects_t     *all;
    shuttle_project_t  *elts;

    all = data;

    if (all->nelts == all->nalloc) {
        n = all->nalloc ? all->nalloc * 2 : 16;
        elts = realloc(all->elts, n * sizeof(shuttle_project_t));

        if (elts == NULL) {
            return -1;
        }

        all->elts = elts;
        all->nalloc = n;
    }

    all->elts[all->nelts++] = *p;

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

static json_t *
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


static ssize_t
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


static void
api_follow_free(void *cls)
{
    api_follow_t  *f;

    f = cls;

    if (f->fd != -1) {
        close(f->fd);
    }

    free(f);
}


static enum MHD_Result
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


static enum MHD_Result
api_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char     msg[SHUTTLE_REASON_MAX];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    return api_json(c, status, json_pack("{ss}", "error", msg));
}


static enum MHD_Result
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


static enum MHD_Result
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

static int
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


static void
api_completed(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
    free(*req_cls);
    *req_cls = NULL;
}


static void
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
