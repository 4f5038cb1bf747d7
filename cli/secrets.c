
/*
 * shuttle secrets set KEY=VALUE... | KEY (the value from stdin)
 * shuttle secrets list [--json]
 * shuttle secrets rm KEY...
 *
 * The builder keeps them (PUT, GET, DELETE /v1/projects/NAME/secrets);
 * a service that declares SHUTTLE_SECRETS() reads them from its next
 * deployment on.  Values are never printed.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"


#define CLI_SECRET_MAX  65536


static int cli_secrets_set(cli_t *cli, const char *name, int argc,
    char **argv);
static int cli_secrets_rm(cli_t *cli, const char *name, int argc,
    char **argv);
static int cli_secrets_list(cli_t *cli, const char *name, int json);
static char *cli_secret_stdin(cli_t *cli, const char *key);


int
cli_secrets(cli_t *cli, int argc, char **argv)
{
    int                   rc, c, json;
    char                  name[64];
    const char           *flag, *sub;
    static struct option  opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 }
    };

    flag = NULL;
    json = 0;

    while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
        if (c == 'n') {
            flag = optarg;
        } else {
            json = 1;
        }
    }

    if (optind >= argc) {
        return cli_usage_error(cli, "give set, list or rm");
    }

    sub = argv[optind++];

    rc = cli_project_name(cli, ".", flag, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    rc = cli_settings(cli, 1);
    if (rc != CLI_OK) {
        return rc;
    }

    if (strcmp(sub, "set") == 0) {
        return cli_secrets_set(cli, name, argc - optind, argv + optind);
    }

    if (strcmp(sub, "rm") == 0) {
        return cli_secrets_rm(cli, name, argc - optind, argv + optind);
    }

    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0) {
        if (optind < argc) {
            return cli_usage_error(cli, "secrets list takes no argument");
        }

        return cli_secrets_list(cli, name, json);
    }

    return cli_usage_error(cli, "unknown secrets command \"%s\": set, list "
                           "or rm", sub);
}


static int
cli_secrets_set(cli_t *cli, const char *name, int argc, char **argv)
{
    int          i, rc;
    char         path[128], what[96], *value, *key;
    json_t      *body, *answer;
    const char  *eq;

    if (argc == 0) {
        return cli_usage_error(cli, "give KEY=VALUE, or KEY to read its "
                               "value from stdin");
    }

    body = json_object();

    for (i = 0; i < argc; i++) {
        eq = strchr(argv[i], '=');

        key = eq ? strndup(argv[i], eq - argv[i]) : strdup(argv[i]);
        value = eq ? strdup(eq + 1) : cli_secret_stdin(cli, argv[i]);

        if (key == NULL || value == NULL || key[0] == '\0') {
            rc = key != NULL && key[0] == '\0';
            free(key);
            free(value);
            json_decref(body);
            return rc ? cli_usage_error(cli, "\"%s\": no name before '='",
                                        argv[i])
                      : CLI_USAGE;
        }

        json_object_set_new(body, key, json_string(value));

        explicit_bzero(value, strlen(value));
        free(value);
        free(key);
    }

    snprintf(path, sizeof(path), "/v1/projects/%s/secrets", name);
    snprintf(what, sizeof(what), "%s", name);

    answer = cli_api_call(cli, what, "PUT", path, body, NULL);
    json_decref(body);

    if (answer == NULL) {
        return CLI_API;
    }

    json_decref(answer);

    fprintf(stderr, "Set %d secret%s of %s; deploy again for the service "
            "to see %s\n", argc, argc == 1 ? "" : "s", name,
            argc == 1 ? "it" : "them");

    return CLI_OK;
}


static int
cli_secrets_rm(cli_t *cli, const char *name, int argc, char **argv)
{
    int      i;
    char     path[256], what[160];
    json_t  *answer;

    if (argc == 0) {
        return cli_usage_error(cli, "give the names of the secrets to "
                               "remove");
    }

    for (i = 0; i < argc; i++) {
        if (strlen(argv[i]) > 64 || strchr(argv[i], '/') != NULL
            || argv[i][0] == '\0')
        {
            return cli_usage_error(cli, "\"%s\" is not a secret name",
                                   argv[i]);
        }
    }

    for (i = 0; i < argc; i++) {
        snprintf(path, sizeof(path), "/v1/projects/%s/secrets/%s", name,
                 argv[i]);
        snprintf(what, sizeof(what), "%s: secret %s", name, argv[i]);

        answer = cli_api_call(cli, what, "DELETE", path, NULL, NULL);
        if (answer == NULL) {
            return CLI_API;
        }

        json_decref(answer);
        fprintf(stderr, "Removed secret %s of %s\n", argv[i], name);
    }

    return CLI_OK;
}


static int
cli_secrets_list(cli_t *cli, const char *name, int json)
{
    int      rc;
    char     path[128];
    size_t   i;
    json_t  *answer, *list;

    snprintf(path, sizeof(path), "/v1/projects/%s/secrets", name);

    answer = cli_api_show(cli, name, path, json, &rc);
    if (answer == NULL) {
        return rc;
    }

    list = json_object_get(answer, "secrets");

    for (i = 0; i < json_array_size(list); i++) {
        printf("%s\n", json_string_value(json_array_get(list, i)));
    }

    if (json_array_size(list) == 0) {
        fprintf(stderr, "%s has no secrets\n", name);
    }

    json_decref(answer);

    return CLI_OK;
}


/* the value of key from stdin: a line on a terminal (not echoed by the
   shell's history), else all of stdin without its last newline */

static char *
cli_secret_stdin(cli_t *cli, const char *key)
{
    char    *buf;
    size_t   len, n;

    if (isatty(STDIN_FILENO)) {
        fprintf(stderr, "Value of %s: ", key);
        fflush(stderr);
    }

    buf = malloc(CLI_SECRET_MAX + 1);
    if (buf == NULL) {
        return NULL;
    }

    len = 0;

    while (len < CLI_SECRET_MAX
           && (n = fread(buf + len, 1, CLI_SECRET_MAX - len, stdin)) > 0)
    {
        len += n;

        if (isatty(STDIN_FILENO) && memchr(buf, '\n', len) != NULL) {
            break;
        }
    }

    if (len == CLI_SECRET_MAX) {
        free(buf);
        cli_error(cli, "the value of %s is over %d bytes", key,
                  CLI_SECRET_MAX);
        return NULL;
    }

    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }

    buf[len] = '\0';

    return buf;
}
