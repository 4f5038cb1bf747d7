
/*
 * The commands about projects as they are on the platform:
 *
 *   shuttle status [NAME] [--json]       GET /v1/projects/NAME
 *   shuttle list [--json]                GET /v1/projects
 *   shuttle deployments [NAME] [--json]  GET /v1/projects/NAME/deployments
 *   shuttle rollback [NAME] [ID]         POST /v1/projects/NAME/rollback
 *   shuttle delete NAME [--yes]          DELETE /v1/projects/NAME
 */


#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"


static int cli_project_args(cli_t *cli, int argc, char **argv, int *json,
    char *name, size_t size);
static int cli_is_number(const char *s);


static const struct option  cli_json_opts[] = {
    { "json", no_argument, NULL, 'j' },
    { NULL, 0, NULL, 0 }
};


/* [NAME] [--json], and the settings with a key */

static int
cli_project_args(cli_t *cli, int argc, char **argv, int *json, char *name,
    size_t size)
{
    *json = 0;

    while (cli_getopt(cli, argc, argv, "", cli_json_opts) != -1) {
        *json = 1;
    }

    if (name != NULL) {
        return cli_project_operand(cli, argc, argv, name, size);
    }

    if (optind < argc) {
        return cli_usage_error(cli, "unexpected argument \"%s\"",
                               argv[optind]);
    }

    return cli_settings(cli, 1);
}


/* after the options: [NAME], the project's name, then the settings */

int
cli_project_operand(cli_t *cli, int argc, char **argv, char *name,
    size_t size)
{
    int  rc;

    if (argc - optind > 1) {
        return cli_usage_error(cli, "one project name at most");
    }

    rc = cli_project_name(cli, ".", optind < argc ? argv[optind] : NULL,
                          name, size);
    if (rc != CLI_OK) {
        return rc;
    }

    return cli_settings(cli, 1);
}


/*
 * GET path: the answer to show, or NULL with *rc: CLI_API when the call
 * failed (it said why), CLI_OK when json asked for the answer as is and it
 * is printed.
 */

json_t *
cli_api_show(cli_t *cli, const char *what, const char *path, int json,
    int *rc)
{
    json_t  *answer;

    answer = cli_api_call(cli, what, "GET", path, NULL, NULL);

    if (answer == NULL) {
        *rc = CLI_API;
        return NULL;
    }

    if (json) {
        cli_print_json(answer);
        json_decref(answer);
        *rc = CLI_OK;
        return NULL;
    }

    return answer;
}


/* "  resources sqlite main (12.0 kB)", then one a line */

static void
cli_print_resources(json_t *list)
{
    char         size[32], more[160];
    size_t       i;
    json_t      *r;
    const char  *type;

    for (i = 0; i < json_array_size(list); i++) {
        r = json_array_get(list, i);
        type = cli_str(r, "type", "?");
        more[0] = '\0';

        if (strcmp(type, "sqlite") == 0) {
            cli_size((size_t) cli_int(r, "size", 0), size, sizeof(size));
            snprintf(more, sizeof(more), "%s (%s)", cli_str(r, "name", ""),
                     size);

        } else if (strcmp(type, "postgres") == 0) {
            snprintf(more, sizeof(more), "%s (database %s on %s)",
                     cli_str(r, "name", ""), cli_str(r, "database", "?"),
                     cli_str(r, "server", "?"));

        } else if (strcmp(type, "secrets") == 0) {
            snprintf(more, sizeof(more), "(%lld set)",
                     cli_int(r, "count", 0));

        } else if (strcmp(type, "static") == 0) {
            cli_size((size_t) cli_int(r, "size", 0), size, sizeof(size));
            snprintf(more, sizeof(more), "%s/ (%lld files, %s)",
                     cli_str(r, "folder", ""), cli_int(r, "files", 0), size);
        }

        printf("  %-9s %-8s %s\n", i == 0 ? "resources" : "", type, more);
    }
}


int
cli_status(cli_t *cli, int argc, char **argv)
{
    int          rc, json, c;
    char         name[64], path[128], ago[64], build[32], start[32];
    json_t      *p, *latest;
    const char  *state, *reason, *after;

    rc = cli_project_args(cli, argc, argv, &json, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    snprintf(path, sizeof(path), "/v1/projects/%s", name);

    p = cli_api_show(cli, name, path, json, &rc);
    if (p == NULL) {
        return rc;
    }

    c = cli->color_out;
    state = cli_str(p, "state", "-");

    printf("%s%s%s  %s%s%s  %s\n", cli_c(c, "\033[1m"),
           cli_str(p, "name", name), cli_c(c, "\033[0m"),
           cli_c(c, cli_state_color(state)), state, cli_c(c, "\033[0m"),
           cli_str(p, "url", ""));

    if (cli_serving(p) >= 0) {
        printf("  serving   deployment %lld\n", cli_serving(p));

    } else {
        printf("  serving   nothing\n");
    }

    after = cli_str(p, "idle_after", NULL);

    if (after != NULL && strcmp(after, "never") == 0) {
        printf("  idle      never scales to zero%s\n",
               json_is_true(json_object_get(p, "idle_default"))
               ? " (default)" : "");

    } else if (after != NULL) {
        printf("  idle      scales to zero after %s without a request%s\n",
               after, json_is_true(json_object_get(p, "idle_default"))
                      ? " (default)" : "");
    }

    if (cli_str(p, "idle_since", NULL) != NULL) {
        cli_ago(cli_str(p, "idle_since", NULL), ago, sizeof(ago));
        printf("            idle since %s (%s): the next request starts "
               "it\n", cli_str(p, "idle_since", ""), ago);
    }

    latest = json_object_get(p, "latest");

    if (json_is_object(latest)) {
        state = cli_str(latest, "state", "-");
        reason = cli_str(latest, "reason", NULL);
        cli_ago(cli_str(latest, "updated", NULL), ago, sizeof(ago));
        cli_ms(json_object_get(latest, "build_ms"), build, sizeof(build));
        cli_ms(json_object_get(latest, "start_ms"), start, sizeof(start));

        printf("  latest    deployment %lld, %s%s%s %s (build %s, start %s)"
               "\n", cli_int(latest, "id", 0),
               cli_c(c, cli_state_color(state)), state, cli_c(c, "\033[0m"),
               ago, build, start);

        if (reason != NULL) {
            printf("            %s\n", reason);
        }
    }

    cli_ago(cli_str(p, "created", NULL), ago, sizeof(ago));
    printf("  created   %s (%s)\n", cli_str(p, "created", "-"), ago);

    if (cli_str(p, "owner", NULL) != NULL) {
        printf("  owner     %s\n", cli_str(p, "owner", NULL));
    }

    cli_print_resources(json_object_get(p, "resources"));

    json_decref(p);

    return CLI_OK;
}


int
cli_list(cli_t *cli, int argc, char **argv)
{
    int           rc, json;
    char          ago[64], dep[32];
    size_t        i;
    json_t       *answer, *projects, *p;
    cli_table_t   t;
    const char   *row[5], *colors[5];

    rc = cli_project_args(cli, argc, argv, &json, NULL, 0);
    if (rc != CLI_OK) {
        return rc;
    }

    answer = cli_api_show(cli, NULL, "/v1/projects", json, &rc);
    if (answer == NULL) {
        return rc;
    }

    projects = json_object_get(answer, "projects");

    if (json_array_size(projects) == 0) {
        fprintf(stderr, "No projects yet: shuttle init, then shuttle "
                "deploy\n");
        json_decref(answer);
        return CLI_OK;
    }

    memset(&t, 0, sizeof(t));
    t.ncols = 5;

    row[0] = "NAME";
    row[1] = "STATE";
    row[2] = "DEPLOYMENT";
    row[3] = "UPDATED";
    row[4] = "URL";
    cli_table_row(&t, row, NULL);

    memset(colors, 0, sizeof(colors));

    json_array_foreach(projects, i, p) {
        row[0] = cli_str(p, "name", "?");
        row[1] = cli_str(p, "state", "-");
        colors[1] = cli_state_color(row[1]);

        if (cli_serving(p) >= 0) {
            snprintf(dep, sizeof(dep), "%lld", cli_serving(p));
            row[2] = dep;

        } else {
            row[2] = "-";
        }

        cli_ago(cli_str(p, "updated", NULL), ago, sizeof(ago));
        row[3] = ago;
        row[4] = cli_str(p, "url", "-");

        cli_table_row(&t, row, colors);
    }

    cli_table_print(&t, cli->color_out);
    cli_table_free(&t);
    json_decref(answer);

    return CLI_OK;
}


int
cli_deployments(cli_t *cli, int argc, char **argv)
{
    int           rc, json;
    char          name[64], path[128], id[32], ago[64], build[32], start[32];
    size_t        i;
    json_t       *answer, *deps, *d;
    cli_table_t   t;
    const char   *row[6], *colors[6];

    rc = cli_project_args(cli, argc, argv, &json, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    snprintf(path, sizeof(path), "/v1/projects/%s/deployments", name);

    answer = cli_api_show(cli, name, path, json, &rc);
    if (answer == NULL) {
        return rc;
    }

    deps = json_object_get(answer, "deployments");

    if (json_array_size(deps) == 0) {
        fprintf(stderr, "%s has no deployments yet: shuttle deploy\n", name);
        json_decref(answer);
        return CLI_OK;
    }

    memset(&t, 0, sizeof(t));
    t.ncols = 6;

    row[0] = "ID";
    row[1] = "STATE";
    row[2] = "BUILD";
    row[3] = "START";
    row[4] = "CREATED";
    row[5] = "REASON";
    cli_table_row(&t, row, NULL);

    memset(colors, 0, sizeof(colors));

    json_array_foreach(deps, i, d) {
        snprintf(id, sizeof(id), "%lld", cli_int(d, "id", 0));
        cli_ms(json_object_get(d, "build_ms"), build, sizeof(build));
        cli_ms(json_object_get(d, "start_ms"), start, sizeof(start));
        cli_ago(cli_str(d, "created", NULL), ago, sizeof(ago));

        row[0] = id;
        row[1] = cli_str(d, "state", "-");
        colors[1] = cli_state_color(row[1]);
        row[2] = build;
        row[3] = start;
        row[4] = ago;
        row[5] = cli_str(d, "reason", "");

        cli_table_row(&t, row, colors);
    }

    cli_table_print(&t, cli->color_out);
    cli_table_free(&t);
    json_decref(answer);

    return CLI_OK;
}


int
cli_rollback(cli_t *cli, int argc, char **argv)
{
    int          rc, nargs;
    char         name[64], path[128], what[96];
    json_t      *body, *answer, *p;
    long long    id;
    const char  *name_arg, *id_arg;

    if (cli_getopt(cli, argc, argv, "", NULL) != -1) {
        return CLI_USAGE;
    }

    nargs = argc - optind;
    name_arg = NULL;
    id_arg = NULL;

    if (nargs > 2) {
        return cli_usage_error(cli, "a project name and an ID at most");
    }

    if (nargs == 2) {
        name_arg = argv[optind];
        id_arg = argv[optind + 1];

    } else if (nargs == 1) {
        if (cli_is_number(argv[optind])) {
            id_arg = argv[optind];

        } else {
            name_arg = argv[optind];
        }
    }

    if (id_arg != NULL && !cli_is_number(id_arg)) {
        return cli_usage_error(cli, "\"%s\" is not a deployment ID", id_arg);
    }

    rc = cli_project_name(cli, ".", name_arg, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    rc = cli_settings(cli, 1);
    if (rc != CLI_OK) {
        return rc;
    }

    id = id_arg ? strtoll(id_arg, NULL, 10) : -1;

    body = id_arg ? json_pack("{s:I}", "deployment", (json_int_t) id)
                  : json_object();

    snprintf(path, sizeof(path), "/v1/projects/%s/rollback", name);
    snprintf(what, sizeof(what), "%s", name);

    answer = cli_api_call(cli, what, "POST", path, body, NULL);
    json_decref(body);

    if (answer == NULL) {
        return CLI_API;
    }

    id = cli_int(answer, "id", id);
    json_decref(answer);

    snprintf(path, sizeof(path), "/v1/projects/%s", name);
    p = cli_api_call(cli, what, "GET", path, NULL, NULL);

    fprintf(stderr, "%s now runs deployment %lld again\n", name, id);

    if (p != NULL) {
        printf("%s\n", cli_str(p, "url", ""));
        json_decref(p);
    }

    return CLI_OK;
}


int
cli_restart(cli_t *cli, int argc, char **argv)
{
    int      rc, json;
    char     name[64], path[128], what[96];
    json_t  *answer, *p;

    rc = cli_project_args(cli, argc, argv, &json, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    snprintf(path, sizeof(path), "/v1/projects/%s/restart", name);
    snprintf(what, sizeof(what), "%s", name);

    answer = cli_api_call(cli, what, "POST", path, NULL, NULL);
    if (answer == NULL) {
        return CLI_API;
    }

    fprintf(stderr, "%s restarted: deployment %lld in a new loader, pid "
            "%lld\n", name, cli_int(answer, "id", 0),
            cli_int(answer, "pid", 0));
    json_decref(answer);

    snprintf(path, sizeof(path), "/v1/projects/%s", name);
    p = cli_api_call(cli, what, "GET", path, NULL, NULL);

    if (p != NULL) {
        printf("%s\n", cli_str(p, "url", ""));
        json_decref(p);
    }

    return CLI_OK;
}


/* shuttle scale [NAME] --idle DURATION|never|default */

int
cli_scale(cli_t *cli, int argc, char **argv)
{
    int                   rc, c;
    char                  name[64], path[128];
    json_t               *answer, *body;
    const char           *idle, *since;
    static struct option  opts[] = {
        { "idle", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 }
    };

    idle = NULL;

    while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
        idle = optarg;
    }

    if (idle == NULL) {
        return cli_usage_error(cli, "give --idle DURATION (5m, 30s, 2h), "
                               "--idle never or --idle default");
    }

    rc = cli_project_operand(cli, argc, argv, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    body = json_pack("{so}", "idle", strcmp(idle, "default") == 0
                                     ? json_null() : json_string(idle));
    if (body == NULL) {
        cli_error(cli, "out of memory");
        return CLI_FAILED;
    }

    snprintf(path, sizeof(path), "/v1/projects/%s/scale", name);

    answer = cli_api_call(cli, name, "PUT", path, body, NULL);
    json_decref(body);

    if (answer == NULL) {
        return CLI_API;
    }

    since = cli_str(answer, "idle_since", NULL);

    if (strcmp(cli_str(answer, "idle_after", ""), "never") == 0) {
        fprintf(stderr, "%s never scales to zero%s\n", name,
                since ? " once woken" : "");

    } else {
        fprintf(stderr, "%s scales to zero after %s without a request%s"
                "\n", name, cli_str(answer, "idle_after", "?"),
                json_is_true(json_object_get(answer, "idle_default"))
                ? " (the platform's default)" : "");
    }

    json_decref(answer);

    return CLI_OK;
}


int
cli_delete(cli_t *cli, int argc, char **argv)
{
    int                   rc, yes, purge, c;
    char                  path[128], what[96], line[64];
    json_t               *answer;
    const char           *name;
    static struct option  opts[] = {
        { "yes", no_argument, NULL, 'y' },
        { "purge", no_argument, NULL, 'P' },
        { NULL, 0, NULL, 0 }
    };

    yes = 0;
    purge = 0;

    while ((c = cli_getopt(cli, argc, argv, "y", opts)) != -1) {
        if (c == 'P') {
            purge = 1;
        } else {
            yes = 1;
        }
    }

    if (argc - optind != 1) {
        return cli_usage_error(cli, "give the name of the project to delete");
    }

    name = argv[optind];

    if (!cli_is_label(name)) {
        return cli_usage_error(cli, "\"%s\" is not a project name", name);
    }

    rc = cli_settings(cli, 1);
    if (rc != CLI_OK) {
        return rc;
    }

    if (!yes) {
        if (!isatty(STDIN_FILENO)) {
            cli_error(cli, "refusing to delete %s without --yes: stdin is "
                      "not a terminal to ask on", name);
            return CLI_USAGE;
        }

        fprintf(stderr, "Delete %s: stop its service and remove all its "
                "deployments%s? [y/N] ", name,
                purge ? ", its databases and its secrets"
                      : " (its databases and secrets are kept)");
        fflush(stderr);

        if (fgets(line, sizeof(line), stdin) == NULL
            || (strcmp(line, "y\n") != 0 && strcmp(line, "yes\n") != 0
                && strcmp(line, "Y\n") != 0))
        {
            fprintf(stderr, "%s was not deleted\n", name);
            return CLI_FAILED;
        }
    }

    snprintf(path, sizeof(path), "/v1/projects/%s%s", name,
             purge ? "?purge=1" : "");
    snprintf(what, sizeof(what), "%s", name);

    answer = cli_api_call(cli, what, "DELETE", path, NULL, NULL);
    if (answer == NULL) {
        return CLI_API;
    }

    json_decref(answer);
    fprintf(stderr, purge ? "Deleted %s, its databases and its secrets\n"
                          : "Deleted %s (its databases and secrets are kept "
                            "for a redeploy; --purge removes them)\n", name);

    return CLI_OK;
}


static int
cli_is_number(const char *s)
{
    if (*s == '\0') {
        return 0;
    }

    for ( /* void */ ; *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
    }

    return 1;
}
