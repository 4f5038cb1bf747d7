
/*
 * The app and its routes.  The service registers routes from its main;
 * they are parsed into segments once, kept most specific first, and
 * never change while the loader serves, so request threads read them
 * without a lock.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loader.h"


/* methods an Allow header lists at most */
#define LOADER_MAX_ALLOW  32


typedef struct {
    const char  *value;
    size_t       len;
} loader_capture_t;


static int loader_route_parse(loader_route_t *r, char *err, size_t errlen);
static int loader_route_cmp(loader_route_t *a, loader_route_t *b);
static int loader_route_method(loader_route_t *r, const char *method);
static int loader_route_match(loader_route_t *r, const char *path,
    loader_capture_t *cap);
static void loader_route_allow_add(const char **seen, size_t *nseen,
    const char *method);
static void loader_route_refuse(shuttle_app *app, const char *method,
    const char *pattern, const char *why);


shuttle_app *
loader_app_create(void)
{
    shuttle_app  *app;

    app = calloc(1, sizeof(shuttle_app));
    if (app == NULL) {
        return NULL;
    }

    app->max_body = SHUTTLE_MAX_BODY_DEFAULT;

    return app;
}


void
shuttle_app_set_data(shuttle_app *app, void *data)
{
    app->data = data;
}


void *
shuttle_app_get_data(shuttle_app *app)
{
    return app->data;
}


void
shuttle_app_set_max_body(shuttle_app *app, size_t max)
{
    if (app->serving) {
        loader_log("shuttle_app_set_max_body: called while serving, "
                   "ignored (call it from main)");
        return;
    }

    app->max_body = max;
}


int
shuttle_route(shuttle_app *app, const char *method, const char *pattern,
    shuttle_handler handler)
{
    size_t           i, n;
    loader_route_t   r, *routes;
    char             err[256];

    if (method == NULL || pattern == NULL) {
        loader_route_refuse(app, method ? method : "(null)",
                            pattern ? pattern : "(null)",
                            "NULL method or pattern");
        return -1;
    }

    if (app->serving) {
        loader_route_refuse(app, method, pattern,
                            "routes are registered in main, before serving");
        return -1;
    }

    if (handler == NULL) {
        loader_route_refuse(app, method, pattern, "NULL handler");
        return -1;
    }

    if (strcmp(method, "*") != 0 && !loader_token(method)) {
        loader_route_refuse(app, method, pattern,
                            "the method is not an HTTP token");
        return -1;
    }

    memset(&r, 0, sizeof(r));
    r.handler = handler;
    r.method = strdup(method);
    r.pattern = strdup(pattern);

    if (r.method == NULL || r.pattern == NULL) {
        loader_route_refuse(app, method, pattern, "out of memory");
        goto failed;
    }

    if (loader_route_parse(&r, err, sizeof(err)) != 0) {
        loader_route_refuse(app, method, pattern, err);
        goto failed;
    }

    for (i = 0; i < app->nroutes; i++) {
        if (strcmp(app->routes[i].method, r.method) == 0
            && loader_route_cmp(&app->routes[i], &r) == 0)
        {
            snprintf(err, sizeof(err), "the same as \"%s %s\", "
                     "registered before", app->routes[i].method,
                     app->routes[i].pattern);
            loader_route_refuse(app, method, pattern, err);
            goto failed;
        }
    }

    if (app->nroutes == app->nalloc) {
        n = app->nalloc ? app->nalloc * 2 : 8;
        routes = realloc(app->routes, n * sizeof(loader_route_t));
        if (routes == NULL) {
            loader_route_refuse(app, method, pattern, "out of memory");
            goto failed;
        }

        app->routes = routes;
        app->nalloc = n;
    }

    /* after every route at least as specific: the earlier wins a tie */
    for (i = app->nroutes; i > 0; i--) {
        if (loader_route_cmp(&app->routes[i - 1], &r) <= 0) {
            break;
        }
    }

    memmove(&app->routes[i + 1], &app->routes[i],
            (app->nroutes - i) * sizeof(loader_route_t));
    app->routes[i] = r;
    app->nroutes++;

    return 0;

failed:

    free(r.method);
    free(r.pattern);
    free(r.segs);

    return -1;
}


int
shuttle_get(shuttle_app *app, const char *pattern, shuttle_handler handler)
{
    return shuttle_route(app, "GET", pattern, handler);
}


int
shuttle_post(shuttle_app *app, const char *pattern, shuttle_handler handler)
{
    return shuttle_route(app, "POST", pattern, handler);
}


int
shuttle_put(shuttle_app *app, const char *pattern, shuttle_handler handler)
{
    return shuttle_route(app, "PUT", pattern, handler);
}


int
shuttle_delete(shuttle_app *app, const char *pattern,
    shuttle_handler handler)
{
    return shuttle_route(app, "DELETE", pattern, handler);
}


int
shuttle_patch(shuttle_app *app, const char *pattern, shuttle_handler handler)
{
    return shuttle_route(app, "PATCH", pattern, handler);
}


/*
 * The first route, most specific first, that takes the request's method
 * and path; its parameters are copied into the request.  NULL when none
 * does: loader_route_allow() tells 405 from 404.
 */
loader_route_t *
loader_route_find(shuttle_app *app, shuttle_req *req)
{
    size_t             i, k, p;
    loader_route_t    *r;
    loader_capture_t   cap[SHUTTLE_MAX_PARAMS];

    for (i = 0; i < app->nroutes; i++) {
        r = &app->routes[i];

        if (!loader_route_method(r, req->method)
            || !loader_route_match(r, req->path, cap))
        {
            continue;
        }

        p = 0;

        for (k = 0; k < r->nsegs; k++) {
            if (r->segs[k].kind == LOADER_SEG_LITERAL) {
                continue;
            }

            req->params[p].name = r->segs[k].text;
            req->params[p].name_len = r->segs[k].len;
            req->params[p].value = loader_pstrndup(req->pool, cap[p].value,
                                                   cap[p].len);
            if (req->params[p].value == NULL) {
                return NULL;
            }

            p++;
        }

        req->nparams = p;

        return r;
    }

    return NULL;
}


/*
 * The methods of the routes that match path, as an Allow header value
 * ("GET, HEAD, POST"), each once; 0 when no route matches the path.
 */
size_t
loader_route_allow(shuttle_app *app, const char *path, char *buf,
    size_t size)
{
    int                n;
    size_t             i, k, nseen, len;
    const char        *seen[LOADER_MAX_ALLOW];
    loader_route_t    *r;
    loader_capture_t   cap[SHUTTLE_MAX_PARAMS];

    nseen = 0;

    for (i = 0; i < app->nroutes && nseen + 2 <= LOADER_MAX_ALLOW; i++) {
        r = &app->routes[i];

        if (!loader_route_match(r, path, cap)) {
            continue;
        }

        loader_route_allow_add(seen, &nseen, r->method);

        /* a GET route answers HEAD too */
        if (strcmp(r->method, "GET") == 0) {
            loader_route_allow_add(seen, &nseen, "HEAD");
        }
    }

    len = 0;
    buf[0] = '\0';

    for (k = 0; k < nseen; k++) {
        n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                     seen[k]);
        if (n < 0 || (size_t) n >= size - len) {
            buf[len] = '\0';
            break;
        }

        len += n;
    }

    return len;
}


/*
 * Splits r->pattern into segments: "/a/:b/c" has three, "/" has none.
 * The segments point into a copy of the pattern, cut at its slashes; the
 * pattern itself is kept as registered, for messages.
 */
static int
loader_route_parse(loader_route_t *r, char *err, size_t errlen)
{
    char              *copy, *p, *e;
    size_t             n, i, k;
    loader_segment_t  *s;

    p = r->pattern;

    if (p[0] != '/') {
        snprintf(err, errlen, "the pattern does not start with '/'");
        return -1;
    }

    n = 0;
    for (e = p; *e != '\0'; e++) {
        if (*e == '/') {
            n++;
        }
    }

    if (strcmp(p, "/") == 0) {
        n = 0;
    }

    /* the segments, then a copy of the pattern for them to point in */
    r->segs = malloc(n * sizeof(loader_segment_t) + strlen(p) + 1);
    if (r->segs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    copy = (char *) (r->segs + n);
    strcpy(copy, p);

    r->nsegs = n;
    r->nparams = 0;

    p = copy + 1;

    for (i = 0; i < n; i++) {
        s = &r->segs[i];

        e = strchr(p, '/');
        if (e != NULL) {
            *e = '\0';
        }

        if (p[0] == ':' || p[0] == '*') {
            s->kind = p[0] == ':' ? LOADER_SEG_PARAM : LOADER_SEG_REST;
            s->text = p + 1;
            s->len = strlen(p + 1);

            if (s->len == 0) {
                snprintf(err, errlen, "segment %zu: a parameter without "
                         "a name", i + 1);
                return -1;
            }

            if (s->kind == LOADER_SEG_REST && i + 1 != n) {
                snprintf(err, errlen, "segment %zu: \"*%s\" is not the "
                         "last segment", i + 1, s->text);
                return -1;
            }

            for (k = 0; k < i; k++) {
                if (r->segs[k].kind != LOADER_SEG_LITERAL
                    && strcmp(r->segs[k].text, s->text) == 0)
                {
                    snprintf(err, errlen, "segment %zu: parameter \"%s\" "
                             "named twice", i + 1, s->text);
                    return -1;
                }
            }

            if (++r->nparams > SHUTTLE_MAX_PARAMS) {
                snprintf(err, errlen, "more than %d parameters",
                         SHUTTLE_MAX_PARAMS);
                return -1;
            }

        } else {
            s->kind = LOADER_SEG_LITERAL;
            s->text = p;
            s->len = strlen(p);
        }

        p = e ? e + 1 : p + strlen(p);
    }

    return 0;
}


/*
 * Orders routes by specificity: segment by segment, a literal before a
 * parameter before a rest; then shorter first.  0 for two patterns that
 * match the same paths.
 */
static int
loader_route_cmp(loader_route_t *a, loader_route_t *b)
{
    size_t             i;
    int                c;
    loader_segment_t  *sa, *sb;

    for (i = 0; i < a->nsegs && i < b->nsegs; i++) {
        sa = &a->segs[i];
        sb = &b->segs[i];

        if (sa->kind != sb->kind) {
            return sa->kind - sb->kind;
        }

        if (sa->kind == LOADER_SEG_LITERAL) {
            c = strcmp(sa->text, sb->text);
            if (c != 0) {
                return c < 0 ? -1 : 1;
            }
        }
    }

    if (a->nsegs != b->nsegs) {
        return a->nsegs < b->nsegs ? -1 : 1;
    }

    return 0;
}


static int
loader_route_method(loader_route_t *r, const char *method)
{
    const char  *m;

    m = r->method;

    if (m[0] == method[0] && strcmp(m, method) == 0) {
        return 1;
    }

    if (m[0] == '*' && m[1] == '\0') {
        return 1;
    }

    return method[0] == 'H' && strcmp(method, "HEAD") == 0
           && strcmp(m, "GET") == 0;
}


/* the values of the route's parameters in path go to cap */
static int
loader_route_match(loader_route_t *r, const char *path,
    loader_capture_t *cap)
{
    size_t             i, len, p;
    const char        *s, *e;
    loader_segment_t  *seg;

    if (path[0] != '/') {
        return 0;
    }

    s = path + 1;

    if (r->nsegs == 0) {
        return *s == '\0';
    }

    p = 0;

    for (i = 0; i < r->nsegs; i++) {
        seg = &r->segs[i];

        if (seg->kind == LOADER_SEG_REST) {
            cap[p].value = s;
            cap[p].len = strlen(s);
            return 1;
        }

        for (e = s; *e != '\0' && *e != '/'; e++) {
            /* void */
        }

        len = e - s;

        if (seg->kind == LOADER_SEG_LITERAL) {
            if (len != seg->len || memcmp(s, seg->text, len) != 0) {
                return 0;
            }

        } else {
            if (len == 0) {
                return 0;
            }

            cap[p].value = s;
            cap[p].len = len;
            p++;
        }

        if (*e == '\0') {
            /* the path ends: so must the pattern, but for a rest */
            if (i + 1 == r->nsegs) {
                return 1;
            }

            if (i + 2 == r->nsegs
                && r->segs[i + 1].kind == LOADER_SEG_REST)
            {
                cap[p].value = e;
                cap[p].len = 0;
                return 1;
            }

            return 0;
        }

        s = e + 1;
    }

    /* the pattern ended, the path goes on */
    return 0;
}


/* a token of RFC 9110: a method, a header name */
int
loader_token(const char *s)
{
    if (*s == '\0') {
        return 0;
    }

    for ( /* void */ ; *s != '\0'; s++) {
        if (*s <= ' ' || *s >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *s)) {
            return 0;
        }
    }

    return 1;
}


static void
loader_route_allow_add(const char **seen, size_t *nseen, const char *method)
{
    size_t  i;

    if (strcmp(method, "*") == 0) {
        return;
    }

    for (i = 0; i < *nseen; i++) {
        if (strcmp(seen[i], method) == 0) {
            return;
        }
    }

    seen[(*nseen)++] = method;
}


static void
loader_route_refuse(shuttle_app *app, const char *method,
    const char *pattern, const char *why)
{
    loader_log("route \"%s %s\" refused: %s", method, pattern, why);

    /* main fails for it; from a handler, the log is all there is */
    if (!app->serving && app->error[0] == '\0') {
        snprintf(app->error, sizeof(app->error), "route \"%s %s\": %s",
                 method, pattern, why);
    }
}
