
/*
 * shuttle logs [NAME] [--deployment ID] [--build | --runtime] [-f]
 *
 * By default the build log of the latest deployment, then the runtime
 * log of the deployment serving the project (the same one, unless the
 * latest failed), each under a "==> ... <==" header as tail(1) writes
 * for several files.  --build or --runtime: that log alone, as is.
 *
 * -f follows: the build log until the deployment settles (the API ends
 * that stream), then the runtime log until interrupted; when a redeploy
 * or a rollback replaces the serving deployment, its runtime log ends
 * and the new one's follows.  Ctrl-C ends it with exit status 0.
 */


#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"


#define CLI_LOGS_BUILD     1
#define CLI_LOGS_RUNTIME   2


typedef struct {
    cli_t               *cli;
    const char          *name;
    char                 what[96];
    int                  follow;
    int                  headers;
    size_t               bytes;      /* of the log being printed */
} cli_logs_t;


static int cli_logs_show(cli_logs_t *l, long long id, int runtime);
static int cli_logs_sink(void *ctx, const char *data, size_t len);
static long long cli_logs_serving(cli_logs_t *l, json_t **project);


int
cli_logs(cli_t *cli, int argc, char **argv)
{
    int                   c, rc, which;
    char                  name[64], *end;
    json_t               *project;
    long long             id, dep;
    cli_logs_t            l;
    static struct option  opts[] = {
        { "deployment", required_argument, NULL, 'd' },
        { "build",      no_argument,       NULL, 'b' },
        { "runtime",    no_argument,       NULL, 'r' },
        { "follow",     no_argument,       NULL, 'f' },
        { NULL, 0, NULL, 0 }
    };

    memset(&l, 0, sizeof(l));
    which = CLI_LOGS_BUILD | CLI_LOGS_RUNTIME;
    dep = -1;

    while ((c = cli_getopt(cli, argc, argv, "d:f", opts)) != -1) {
        switch (c) {

        case 'd':
            dep = strtoll(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || dep < 0) {
                return cli_usage_error(cli, "\"%s\" is not a deployment ID",
                                       optarg);
            }
            break;

        case 'b':
            if (which == CLI_LOGS_RUNTIME) {
                return cli_usage_error(cli, "--build or --runtime, not both");
            }
            which = CLI_LOGS_BUILD;
            break;

        case 'r':
            if (which == CLI_LOGS_BUILD) {
                return cli_usage_error(cli, "--build or --runtime, not both");
            }
            which = CLI_LOGS_RUNTIME;
            break;

        case 'f':
            l.follow = 1;
            break;
        }
    }

    rc = cli_project_operand(cli, argc, argv, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    l.cli = cli;
    l.name = name;
    l.headers = (which == (CLI_LOGS_BUILD | CLI_LOGS_RUNTIME));
    snprintf(l.what, sizeof(l.what), "%s", name);

    if (l.follow) {
        cli_on_interrupt();
    }

    if (which & CLI_LOGS_BUILD) {
        id = dep;

        if (id < 0) {
            project = NULL;
            if (cli_logs_serving(&l, &project) == -2) {
                return CLI_API;
            }

            id = cli_int(json_object_get(project, "latest"), "id", -1);
            json_decref(project);

            if (id < 0) {
                fprintf(stderr, "%s has no deployments yet: shuttle "
                        "deploy\n", name);
                return CLI_OK;
            }
        }

        rc = cli_logs_show(&l, id, 0);
        if (rc != CLI_OK || cli_interrupted) {
            return rc;
        }
    }

    if (!(which & CLI_LOGS_RUNTIME)) {
        return CLI_OK;
    }

    id = dep;

    if (id < 0) {
        id = cli_logs_serving(&l, NULL);

        if (id == -2) {
            return CLI_API;
        }

        if (id < 0) {
            fprintf(stderr, "%s is not running: it has no runtime log\n",
                    name);
            return CLI_OK;
        }
    }

    for ( ;; ) {
        rc = cli_logs_show(&l, id, 1);

        if (rc != CLI_OK || !l.follow || dep >= 0 || cli_interrupted) {
            return rc;
        }

        /* the deployment stopped: another may serve the project now */
        dep = cli_logs_serving(&l, NULL);

        if (dep == -2) {
            return CLI_API;
        }

        if (dep < 0) {
            fprintf(stderr, "deployment %lld stopped; %s runs no other\n",
                    id, name);
            return CLI_OK;
        }

        if (dep == id) {
            cli_error(cli, "%s: the runtime log of deployment %lld ended "
                      "while it runs (%s/v1/deployments/%lld/logs"
                      "?runtime=1&follow=1)", name, id, cli->api, id);
            return CLI_API;
        }

        fprintf(stderr, "deployment %lld now serves %s\n", dep, name);
        id = dep;
        dep = -1;
    }
}


/*
 * The id of the deployment serving the project (-1: none), the project
 * in *project when asked for; -2 after an error said.
 */

static long long
cli_logs_serving(cli_logs_t *l, json_t **project)
{
    char        path[128];
    json_t     *p;
    long long   id;

    snprintf(path, sizeof(path), "/v1/projects/%s", l->name);

    p = cli_api_call(l->cli, l->what, "GET", path, NULL, NULL);
    if (p == NULL) {
        return -2;
    }

    id = cli_serving(p);

    if (project != NULL) {
        *project = p;

    } else {
        json_decref(p);
    }

    return id;
}


static int
cli_logs_show(cli_logs_t *l, long long id, int runtime)
{
    int    rc, c;
    char   path[160];

    c = l->cli->color_out;

    if (l->headers) {
        printf("%s==> %s log of deployment %lld <==%s\n", cli_c(c, "\033[1m"),
               runtime ? "runtime" : "build", id, cli_c(c, "\033[0m"));
        fflush(stdout);
    }

    snprintf(path, sizeof(path), "/v1/deployments/%lld/logs%s%s", id,
             runtime ? "?runtime=1" : "",
             l->follow ? (runtime ? "&follow=1" : "?follow=1") : "");

    l->bytes = 0;

    rc = cli_api_stream(l->cli, l->what, path, cli_logs_sink, l);

    if (rc == -1) {
        /* interrupted: that is how -f ends */
        rc = CLI_OK;
    }

    if (rc == CLI_OK && l->headers) {
        if (l->bytes == 0) {
            printf("(empty)\n");

        } else {
            printf("\n");
        }

        fflush(stdout);
    }

    return rc;
}


static int
cli_logs_sink(void *ctx, const char *data, size_t len)
{
    cli_logs_t  *l;

    l = ctx;
    l->bytes += len;

    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
        return -1;
    }

    return 0;
}
