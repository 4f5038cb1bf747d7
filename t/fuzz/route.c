
/*
 * Fuzz target: the loader's request routing (loader/route.c): patterns
 * registered, then requests' methods and paths matched against them, as
 * http.c does (loader_route_find(), then loader_route_allow() for 405).
 *
 * The input is lines.  "+METHOD PATTERN" registers a route, beside a few
 * fixed ones; any other line "METHOD PATH" is a request.
 */


#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "fuzz.h"


#define FUZZ_ROUTES_MAX  64


static void fuzz_route_handler(shuttle_req *req, shuttle_res *res);


static const char  *fuzz_routes[][2] = {
    { "GET", "/" },
    { "GET", "/users/:id" },
    { "POST", "/users/:id/posts/:post" },
    { "*", "/files/*rest" },
    { "GET", "/a/b/c" },
    { "DELETE", "/:x/:y" },
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              *text, *line, *next, *sp, allow[256];
    size_t             i, nadded;
    shuttle_app       *app;
    loader_request_t   lr;

    app = loader_app_create();
    text = malloc(size + 1);

    if (app == NULL || text == NULL) {
        abort();
    }

    memcpy(text, data, size);
    text[size] = '\0';

    for (i = 0; i < sizeof(fuzz_routes) / sizeof(fuzz_routes[0]); i++) {
        (void) shuttle_route(app, fuzz_routes[i][0], fuzz_routes[i][1],
                             fuzz_route_handler);
    }

    nadded = 0;

    for (line = text; line != NULL; line = next) {
        next = strchr(line, '\n');

        if (next != NULL) {
            *next++ = '\0';
        }

        sp = strchr(line, ' ');

        if (sp == NULL) {
            continue;
        }

        *sp++ = '\0';

        if (line[0] == '+') {
            if (nadded++ < FUZZ_ROUTES_MAX) {
                (void) shuttle_route(app, line + 1, sp, fuzz_route_handler);
            }

            continue;
        }

        loader_request_init(&lr, app, NULL, line, sp);

        if (loader_route_find(app, &lr.req) == NULL) {
            (void) loader_route_allow(app, sp, allow, sizeof(allow));
        }

        loader_request_free(&lr);
    }

    for (i = 0; i < app->nroutes; i++) {
        free(app->routes[i].method);
        free(app->routes[i].pattern);
        free(app->routes[i].segs);
    }

    free(app->routes);
    free(app);
    free(text);

    return 0;
}


static void
fuzz_route_handler(shuttle_req *req, shuttle_res *res)
{
}
