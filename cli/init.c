
/*
 * shuttle init [DIR] [--name NAME]: a new project that deploys as is.
 */


#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"


static int cli_init_name(const char *dir, char *name, size_t size);
static int cli_init_write(cli_t *cli, const char *dir, const char *file,
    const char *text, int keep);


static const char  cli_init_main[] =
"/*\n"
" * %1$s: a service for shuttle.\n"
" *\n"
" *   shuttle run      builds it and serves it on http://127.0.0.1:8000/\n"
" *   shuttle deploy   puts it online and prints its URL\n"
" *\n"
" * The SDK is one header, shuttle.h: routes, requests, responses, JSON\n"
" * (jansson's json_t) and shuttle_log().\n"
" */\n"
"\n"
"#include <shuttle.h>\n"
"\n"
"\n"
"/* GET / */\n"
"static void\n"
"home(shuttle_req *req, shuttle_res *res)\n"
"{\n"
"    shuttle_text(res, 200, \"Hello from %1$s! Try /hello/yourname\\n\");\n"
"}\n"
"\n"
"\n"
"/* GET /hello/:name, the name from the path */\n"
"static void\n"
"hello(shuttle_req *req, shuttle_res *res)\n"
"{\n"
"    const char  *name;\n"
"\n"
"    name = shuttle_req_param(req, \"name\");\n"
"\n"
"    /* a line in the runtime log: shuttle logs -f */\n"
"    shuttle_log(\"saying hello to %%s\", name);\n"
"\n"
"    shuttle_printf(res, 200, \"Hello, %%s!\\n\", name);\n"
"}\n"
"\n"
"\n"
"/* GET /health, as JSON */\n"
"static void\n"
"health(shuttle_req *req, shuttle_res *res)\n"
"{\n"
"    shuttle_json(res, 200, json_pack(\"{s:s}\", \"status\", \"ok\"));\n"
"}\n"
"\n"
"\n"
"SHUTTLE_MAIN(app)\n"
"{\n"
"    shuttle_get(app, \"/\", home);\n"
"    shuttle_get(app, \"/hello/:name\", hello);\n"
"    shuttle_get(app, \"/health\", health);\n"
"    return 0;\n"
"}\n";


static const char  cli_init_ignore[] =
"# What shuttle deploy leaves out, one gitignore-style pattern a line:\n"
"# *.log (anywhere), build/ (directories only), /notes.txt (at the top),\n"
"# !keep.log (taken back).  .git, .shuttle/, service.so, *.o and\n"
"# Secrets.json are always left out.\n"
"*.log\n"
"*.tmp\n";


static const char  cli_init_readme[] =
"# %1$s\n"
"\n"
"A C service for shuttle, written against `shuttle.h`.\n"
"\n"
"    shuttle run        # build and serve on http://127.0.0.1:8000/\n"
"    shuttle deploy     # build and serve on the platform, print the URL\n"
"    shuttle logs -f    # the build log, then what the service logs\n"
"    shuttle status     # state, URL, deployments\n"
"\n"
"- `src/main.c`: the service; every `src/*.c` is compiled into it.\n"
"- `shuttle.json`: the manifest: the project's name, and the pkg-config\n"
"  libraries to link (`\"libs\": [\"sqlite3\"]`).\n"
"- `.shuttleignore`: what `shuttle deploy` leaves out.\n"
"- `.shuttle/`: what `shuttle run` keeps (its SQLite databases);\n"
"  `Secrets.json` (`{\"KEY\": \"VALUE\"}`): secrets for\n"
"  `shuttle run`.  Neither is uploaded; keep both out of git.  On the\n"
"  platform: `shuttle secrets set KEY=VALUE`.\n"
"\n"
"Routes: `GET /`, `GET /hello/:name`, `GET /health`.\n";


int
cli_init(cli_t *cli, int argc, char **argv)
{
    int                   c, rc;
    char                  name[64], path[PATH_MAX], *text, *json;
    json_t               *manifest;
    const char           *dir, *flag_name;
    static struct option  opts[] = {
        { "name", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 }
    };

    flag_name = NULL;

    while ((c = cli_getopt(cli, argc, argv, "n:", opts)) != -1) {
        flag_name = optarg;
    }

    if (argc - optind > 1) {
        return cli_usage_error(cli, "one directory at most");
    }

    dir = optind < argc ? argv[optind] : ".";

    if (flag_name != NULL) {
        if (!cli_is_label(flag_name)) {
            return cli_usage_error(cli, "\"%s\" is not a project name: a DNS "
                                   "label, 1 to 63 of a-z, 0-9 and '-', not "
                                   "starting or ending with '-'", flag_name);
        }

        snprintf(name, sizeof(name), "%s", flag_name);

    } else if (cli_init_name(dir, name, sizeof(name)) != 0) {
        return cli_usage_error(cli, "cannot make a project name of \"%s\": "
                               "give one with --name", dir);
    }

    /* the two files that make a project: never replaced */
    snprintf(path, sizeof(path), "%s/shuttle.json", dir);
    if (access(path, F_OK) == 0) {
        cli_error(cli, "%s exists: %s is a project already", path, dir);
        return CLI_USAGE;
    }

    snprintf(path, sizeof(path), "%s/src/main.c", dir);
    if (access(path, F_OK) == 0) {
        cli_error(cli, "%s exists: not replacing it", path);
        return CLI_USAGE;
    }

    if ((mkdir(dir, 0755) != 0 && errno != EEXIST)
        || (snprintf(path, sizeof(path), "%s/src", dir) > 0
            && mkdir(path, 0755) != 0 && errno != EEXIST))
    {
        cli_error(cli, "cannot create %s: %s", path, strerror(errno));
        return CLI_USAGE;
    }

    manifest = json_pack("{s:s}", "name", name);
    json = json_dumps(manifest, JSON_INDENT(4));
    json_decref(manifest);

    if (json == NULL || asprintf(&text, "%s\n", json) < 0) {
        cli_error(cli, "out of memory");
        return CLI_USAGE;
    }

    free(json);

    rc = cli_init_write(cli, dir, "shuttle.json", text, 0);
    free(text);

    if (rc == CLI_OK) {
        if (asprintf(&text, cli_init_main, name) < 0) {
            cli_error(cli, "out of memory");
            return CLI_USAGE;
        }

        rc = cli_init_write(cli, dir, "src/main.c", text, 0);
        free(text);
    }

    if (rc == CLI_OK) {
        rc = cli_init_write(cli, dir, ".shuttleignore", cli_init_ignore, 1);
    }

    if (rc == CLI_OK) {
        if (asprintf(&text, cli_init_readme, name) < 0) {
            cli_error(cli, "out of memory");
            return CLI_USAGE;
        }

        rc = cli_init_write(cli, dir, "README.md", text, 1);
        free(text);
    }

    if (rc != CLI_OK) {
        return rc;
    }

    fprintf(stderr, "Created project %s in %s\n\n", name, dir);

    if (strcmp(dir, ".") != 0) {
        fprintf(stderr, "  cd %s\n", dir);
    }

    fprintf(stderr, "  shuttle run       # try it on http://127.0.0.1:8000/\n"
                    "  shuttle deploy    # put it online\n");

    return CLI_OK;
}


/* dir's name as a DNS label: lowercased, the rest made '-' */

static int
cli_init_name(const char *dir, char *name, size_t size)
{
    char        path[PATH_MAX], *base, *p;
    size_t      n;

    if (realpath(dir, path) == NULL) {
        snprintf(path, sizeof(path), "%s", dir);
    }

    base = basename(path);
    n = 0;

    for (p = base; *p && n + 1 < size && n < 63; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
            name[n++] = *p;

        } else if (*p >= 'A' && *p <= 'Z') {
            name[n++] = *p - 'A' + 'a';

        } else if (n > 0 && name[n - 1] != '-') {
            name[n++] = '-';
        }
    }

    while (n > 0 && name[n - 1] == '-') {
        n--;
    }

    name[n] = '\0';

    return cli_is_label(name) ? 0 : -1;
}


/* a new file; when keep, an existing one is kept and said so */

static int
cli_init_write(cli_t *cli, const char *dir, const char *file,
    const char *text, int keep)
{
    int      fd;
    char     path[PATH_MAX];
    size_t   len;

    snprintf(path, sizeof(path), "%s/%s", dir, file);

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

    if (fd == -1 && errno == EEXIST && keep) {
        fprintf(stderr, "kept the existing %s\n", path);
        return CLI_OK;
    }

    if (fd == -1) {
        cli_error(cli, "cannot create %s: %s", path, strerror(errno));
        return CLI_USAGE;
    }

    len = strlen(text);

    if (write(fd, text, len) != (ssize_t) len) {
        cli_error(cli, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return CLI_USAGE;
    }

    close(fd);

    return CLI_OK;
}
