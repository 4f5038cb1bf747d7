
/*
 * shuttle: the command line of shuttle for nginx.
 *
 *   shuttle [--api URL] [--key KEY] COMMAND [ARGS]
 *
 * This file holds the command table with every command's help, the
 * global options, option parsing shared by the commands, and the
 * helpers every command uses to name a project and report an error.
 */


#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "build.h"


#define CLI_OPT_API      1001
#define CLI_OPT_KEY      1002
#define CLI_OPT_VERSION  1003

#define CLI_MAX_OPTIONS  32


static void cli_usage(FILE *f);
static const cli_command_t *cli_command(const char *name);
static int cli_help(cli_t *cli, int argc, char **argv);
static void cli_signal(int signo);


volatile sig_atomic_t  cli_interrupted;
int                    cli_interrupt_fd = -1;
static int             cli_interrupt_wfd = -1;


#define CLI_GLOBAL_HELP                                                       \
"\nglobal options, before or after the command:\n"                           \
"  --api URL     the platform's API; default: $SHUTTLE_API, then the\n"     \
"                config file (shuttle login), then " CLI_DEFAULT_API "\n"     \
"  --key KEY     the API key; default: $SHUTTLE_API_KEY, then the config\n" \
"                file\n"                                                     \
"  -h, --help    this help\n"


const cli_command_t  cli_commands[] = {

    { "init", cli_init, "create a new project, ready to deploy",
"usage: shuttle init [DIR] [--name NAME]\n"
"\n"
"Creates a project in DIR (default: the current directory, made if\n"
"missing) that deploys as is:\n"
"\n"
"  shuttle.json     the manifest: {\"name\": NAME}\n"
"  src/main.c       a small service written against shuttle.h\n"
"  .shuttleignore   what shuttle deploy leaves out, gitignore-style\n"
"  README.md        how to run, deploy and watch it\n"
"\n"
"Existing files are never overwritten.\n"
"\n"
"options:\n"
"  --name NAME   the project's name, a DNS label (default: DIR's name,\n"
"                lowercased, other characters made '-')\n" },

    { "deploy", cli_deploy, "pack, upload and build the project; print its URL",
"usage: shuttle deploy [DIR] [--name NAME] [--no-follow] [--dry-run]\n"
"\n"
"Packs the project in DIR (default: the current directory) as a gzip'd\n"
"tar, uploads it, shows the build log live and each state change, and\n"
"once the new deployment runs prints its URL on stdout; the previous\n"
"deployment serves until then.\n"
"\n"
"Left out of the upload: .git, .shuttle/, service.so, *.o, and what\n"
"DIR/.shuttleignore lists: one gitignore-style pattern a line, '#'\n"
"comments, '!' to take a pattern back, a trailing '/' for directories\n"
"only, a '/' at the start or inside to anchor it at DIR, '*' '?' '[...]'\n"
"within a name and '**' across directories.  Symbolic links and other\n"
"special files are refused: list them in .shuttleignore or replace them.\n"
"\n"
"options:\n"
"  --name NAME   the project (default: \"name\" in DIR/shuttle.json, else\n"
"                DIR's name)\n"
"  --no-follow   upload, print the deployment's id and return\n"
"  --dry-run     list the files that would be uploaded; upload nothing\n"
"\n"
"exit status: 0 running, 1 the deployment failed (its reason and log are\n"
"shown), 2 usage or packing error, 3 API or network error\n" },

    { "status", cli_status, "a project's state, URL and deployments",
"usage: shuttle status [NAME] [--json]\n"
"\n"
"Shows the project's state, URL, the deployment serving it and the\n"
"latest one.  NAME defaults to \"name\" in ./shuttle.json, else the\n"
"current directory's name.\n"
"\n"
"options:\n"
"  --json        the project as the API returns it\n" },

    { "list", cli_list, "your projects",
"usage: shuttle list [--json]\n"
"\n"
"Lists the projects of your key: name, state, serving deployment, last\n"
"change, URL.\n"
"\n"
"options:\n"
"  --json        the projects as the API returns them\n" },

    { "deployments", cli_deployments, "a project's deployment history",
"usage: shuttle deployments [NAME] [--json]\n"
"\n"
"Lists the project's deployments, newest first: state, build time, start\n"
"time, age, and why it failed.\n"
"\n"
"options:\n"
"  --json        the deployments as the API returns them\n" },

    { "logs", cli_logs, "build and runtime logs",
"usage: shuttle logs [NAME] [--deployment ID] [--build | --runtime] [-f]\n"
"\n"
"Prints the build log of the project's latest deployment, then the\n"
"runtime log (what the service writes: stdout, stderr, shuttle_log())\n"
"of the deployment serving the project, the same one unless the latest\n"
"failed; each under a header naming it.  With --build or --runtime,\n"
"that log alone, as is, without a header.  With --deployment, that\n"
"deployment's logs.\n"
"\n"
"options:\n"
"  --deployment ID   that deployment's logs\n"
"  --build           the build log only\n"
"  --runtime         the runtime log only\n"
"  -f, --follow      keep printing as lines are written, until\n"
"                    interrupted (Ctrl-C); a build still running is\n"
"                    followed to its end, then the service's log; after\n"
"                    a redeploy the new deployment's log follows on\n" },

    { "rollback", cli_rollback, "serve a previous deployment again",
"usage: shuttle rollback [NAME] [ID]\n"
"\n"
"Makes deployment ID (default: the previous successful one) serve the\n"
"project again, without rebuilding it, with no downtime.  A single\n"
"argument made of digits is an ID; give both to roll back a project\n"
"whose name is a number.\n" },

    { "restart", cli_restart, "run the serving deployment in a new loader",
"usage: shuttle restart [NAME]\n"
"\n"
"Starts the deployment serving the project again in a fresh loader,\n"
"without rebuilding it, with no downtime: the old loader serves until\n"
"the new one is ready.  The new one reads the project's secrets as\n"
"they are now.  Prints the URL on stdout.\n" },

    { "scale", cli_scale, "when the project scales to zero",
"usage: shuttle scale [NAME] --idle DURATION|never|default\n"
"\n"
"A project that has had no request for DURATION (5m, 30s, 2h) is scaled\n"
"to zero: its loader stops, and the next request starts it again in\n"
"milliseconds, that request answered, not refused.  never keeps it\n"
"running; default is the platform's setting (shuttle status shows it).\n"
"A running service is restarted to take the new setting; an idle one\n"
"takes it when it wakes.\n" },

    { "delete", cli_delete, "stop and remove a project",
"usage: shuttle delete NAME [--yes] [--purge]\n"
"\n"
"Stops the project's service and removes its deployments; its name is\n"
"free again.  Its databases and secrets are kept for a redeploy under\n"
"the same name by the same key, unless --purge.  Asks first on a\n"
"terminal; refuses to run without --yes when stdin is not a terminal.\n"
"\n"
"options:\n"
"  -y, --yes     do not ask\n"
"  --purge       also drop its databases (SQLite files, PostgreSQL\n"
"                database and role) and its secrets, for good\n"
"\n"
"exit status: 0 deleted, 1 not confirmed, 2 usage, 3 API error\n" },

    { "secrets", cli_secrets, "set, list or remove the project's secrets",
"usage: shuttle secrets set KEY=VALUE... [--name NAME]\n"
"       shuttle secrets set KEY [--name NAME]   (the value from stdin)\n"
"       shuttle secrets list [--name NAME] [--json]\n"
"       shuttle secrets rm KEY... [--name NAME]\n"
"\n"
"Secrets are kept by the platform, never in the upload or in a log, and\n"
"read by a service that declares SHUTTLE_SECRETS() with\n"
"shuttle_secret(app, \"KEY\"); a change reaches it with its next\n"
"deployment.  Names are [A-Za-z_][A-Za-z0-9_]{0,63}; list shows names\n"
"only.  KEY without =VALUE reads the value from stdin, which keeps it\n"
"out of the shell's history.\n"
"\n"
"options:\n"
"  --name NAME   the project (default: \"name\" in ./shuttle.json, else\n"
"                the current directory's name)\n"
"  --json        list: the API's answer\n" },

    { "run", cli_run, "build and serve the project locally",
"usage: shuttle run [DIR] [--port N] [--postgres DSN] [--no-sandbox]\n"
"\n"
"Builds the project in DIR (default: the current directory) with the\n"
"platform's rules and serves it with shuttle-loader on\n"
"http://127.0.0.1:PORT/ in the foreground, no nginx or builder needed.\n"
"Ctrl-C stops it, letting requests in flight end.\n"
"\n"
"Both run in the platform's sandbox, on a copy: what deploy would\n"
"upload, less every dot folder (.git...), in a scratch directory under\n"
"~/.cache/shuttle/run/ removed after the run.  DIR itself is never\n"
"written but for .shuttle/sqlite/.  Their output comes through pipes;\n"
"they cannot reach the terminal.\n"
"\n"
"The resources the service declares are provisioned locally: SQLite\n"
"databases in DIR/.shuttle/sqlite/, secrets from DIR/Secrets.json\n"
"({\"KEY\": \"VALUE\"}), the static folder served by the loader, and\n"
"PostgreSQL from --postgres.\n"
"\n"
"options:\n"
"  -p, --port N      the port (default 8000)\n"
"  --postgres DSN    the database a SHUTTLE_POSTGRES() gets (libpq\n"
"                    connection string) by its socket directory\n"
"                    (host=/run/postgresql): the service has a network\n"
"                    of its own, a TCP address is out of its reach\n"
"  --no-sandbox      run the build and the service with your rights\n"
"                    (a project you trust only)\n"
"\n"
"exit status: 0 stopped, 1 the build or the start failed, 2 usage\n" },

    { "login", cli_login, "save the API URL and key",
"usage: shuttle login [--api URL] [--key KEY]\n"
"\n"
"Checks the key against the API and saves both in\n"
"$XDG_CONFIG_HOME/shuttle/config.json (default ~/.config), mode 0600,\n"
"for the commands that follow.  Without --key, reads the key from the\n"
"terminal (not echoed) or from stdin.  The API defaults to\n"
"$SHUTTLE_API, then the config file, then " CLI_DEFAULT_API ".\n" },

    { "help", cli_help, "a command's help",
"usage: shuttle help [COMMAND]\n" },

    { NULL, NULL, NULL, NULL }
};


int
main(int argc, char **argv)
{
    int                   c, rc;
    cli_t                 cli;
    const cli_command_t  *cmd;
    static struct option  opts[] = {
        { "api",     required_argument, NULL, CLI_OPT_API },
        { "key",     required_argument, NULL, CLI_OPT_KEY },
        { "version", no_argument,       NULL, CLI_OPT_VERSION },
        { "help",    no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    memset(&cli, 0, sizeof(cli));
    cli.cmd = "";
    cli.color_out = cli_color_for(STDOUT_FILENO);
    cli.color_err = cli_color_for(STDERR_FILENO);

    opterr = 0;

    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (c) {

        case CLI_OPT_API:
            cli.flag_api = optarg;
            break;

        case CLI_OPT_KEY:
            cli.flag_key = optarg;
            break;

        case CLI_OPT_VERSION:
            printf("shuttle %s\n", SHUTTLE_CLI_VERSION);
            return CLI_OK;

        case 'h':
            cli_usage(stdout);
            return CLI_OK;

        case ':':
            fprintf(stderr, "shuttle: %s needs a value\n", argv[optind - 1]);
            return CLI_USAGE;

        default:
            fprintf(stderr, "shuttle: unknown option %s (see shuttle "
                    "--help)\n", argv[optind - 1]);
            return CLI_USAGE;
        }
    }

    if (optind == argc) {
        cli_usage(stderr);
        return CLI_USAGE;
    }

    cmd = cli_command(argv[optind]);
    if (cmd == NULL) {
        fprintf(stderr, "shuttle: unknown command \"%s\" (see shuttle "
                "--help)\n", argv[optind]);
        return CLI_USAGE;
    }

    cli.cmd = cmd->name;

    /* the command parses its own arguments, from argv[1] */
    argc -= optind;
    argv += optind;
    optind = 0;

    rc = cmd->handler(&cli, argc, argv);

    cli_api_done(&cli);
    free(cli.api);
    free(cli.key);

    return rc;
}


static void
cli_usage(FILE *f)
{
    const cli_command_t  *cmd;

    fprintf(f, "shuttle %s: deploy C services to a shuttle platform\n\n"
            "usage: shuttle [--api URL] [--key KEY] COMMAND [ARGS]\n\n"
            "commands:\n", SHUTTLE_CLI_VERSION);

    for (cmd = cli_commands; cmd->name; cmd++) {
        fprintf(f, "  %-12s %s\n", cmd->name, cmd->summary);
    }

    fputs(CLI_GLOBAL_HELP
          "  --version     print the version\n"
          "\n"
          "A new project: shuttle init demo && cd demo && shuttle deploy\n"
          "\n"
          "exit status: 0 success, 1 deployment failed, 2 usage error,\n"
          "3 API or network error\n", f);
}


static const cli_command_t *
cli_command(const char *name)
{
    const cli_command_t  *cmd;

    for (cmd = cli_commands; cmd->name; cmd++) {
        if (strcmp(cmd->name, name) == 0) {
            return cmd;
        }
    }

    return NULL;
}


static int
cli_help(cli_t *cli, int argc, char **argv)
{
    const cli_command_t  *cmd;

    if (cli_getopt(cli, argc, argv, "", NULL) != -1) {
        return CLI_USAGE;
    }

    if (optind >= argc) {
        cli_usage(stdout);
        return CLI_OK;
    }

    cmd = cli_command(argv[optind]);
    if (cmd == NULL) {
        return cli_usage_error(cli, "unknown command \"%s\"", argv[optind]);
    }

    fputs(cmd->help, stdout);
    fputs(CLI_GLOBAL_HELP, stdout);

    return CLI_OK;
}


/*
 * getopt_long() over a command's arguments with the global options
 * (--api, --key, --help) added: those are handled here, as are unknown
 * options and missing values (exit 2).  Returns the next option of the
 * command's own, or -1 with optind at the first operand.
 */

int
cli_getopt(cli_t *cli, int argc, char **argv, const char *shortopts,
    const struct option *longopts)
{
    int                   c;
    size_t                n;
    const cli_command_t  *cmd;
    static char           shorts[64];
    static struct option  all[CLI_MAX_OPTIONS];

    n = 0;
    while (longopts && longopts[n].name && n < CLI_MAX_OPTIONS - 4) {
        all[n] = longopts[n];
        n++;
    }

    all[n++] = (struct option) { "api", required_argument, NULL, CLI_OPT_API };
    all[n++] = (struct option) { "key", required_argument, NULL, CLI_OPT_KEY };
    all[n++] = (struct option) { "help", no_argument, NULL, 'h' };
    all[n] = (struct option) { NULL, 0, NULL, 0 };

    snprintf(shorts, sizeof(shorts), ":h%s", shortopts);
    opterr = 0;

    for ( ;; ) {
        c = getopt_long(argc, argv, shorts, all, NULL);

        switch (c) {

        case CLI_OPT_API:
            cli->flag_api = optarg;
            continue;

        case CLI_OPT_KEY:
            cli->flag_key = optarg;
            continue;

        case 'h':
            cmd = cli_command(cli->cmd);
            fputs(cmd->help, stdout);
            fputs(CLI_GLOBAL_HELP, stdout);
            exit(CLI_OK);

        case ':':
            exit(cli_usage_error(cli, "%s needs a value", argv[optind - 1]));

        case '?':
            if (optopt && optopt < 256) {
                exit(cli_usage_error(cli, "unknown option -%c", optopt));
            }
            exit(cli_usage_error(cli, "unknown option %s", argv[optind - 1]));

        default:
            return c;
        }
    }
}


int
cli_usage_error(cli_t *cli, const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "shuttle %s: ", cli->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see shuttle %s --help)\n", cli->cmd);

    return CLI_USAGE;
}


void
cli_error(cli_t *cli, const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "%sshuttle %s:%s ", cli_c(cli->color_err, "\033[1;31m"),
            cli->cmd, cli_c(cli->color_err, "\033[0m"));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}


/* a project name is a DNS label: 1..63 of a-z, 0-9, '-', no '-' at an end */

int
cli_is_label(const char *s)
{
    size_t  i, len;

    len = strlen(s);
    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The project a command is about: the flag (or operand), else the
 * manifest's name in dir, else dir's name.  Returns CLI_OK, or
 * CLI_USAGE after saying why there is no valid name.
 */

int
cli_project_name(cli_t *cli, const char *dir, const char *flag, char *name,
    size_t size)
{
    char                 err[512], path[PATH_MAX];
    const char          *from;
    shuttle_manifest_t   m;

    if (flag != NULL) {
        if (!cli_is_label(flag)) {
            cli_error(cli, "\"%s\" is not a project name: a DNS label, 1 to "
                      "63 of a-z, 0-9 and '-', not starting or ending with "
                      "'-'", flag);
            return CLI_USAGE;
        }

        snprintf(name, size, "%s", flag);
        return CLI_OK;
    }

    if (shuttle_manifest_read(dir, &m, err, sizeof(err)) != 0) {
        cli_error(cli, "%s/%s", strcmp(dir, ".") == 0 ? "." : dir, err);
        return CLI_USAGE;
    }

    if (m.name != NULL) {
        snprintf(name, size, "%s", m.name);
        shuttle_manifest_free(&m);
        return CLI_OK;
    }

    shuttle_manifest_free(&m);

    if (realpath(dir, path) == NULL) {
        cli_error(cli, "%s: %s", dir, strerror(errno));
        return CLI_USAGE;
    }

    from = basename(path);

    if (!cli_is_label(from)) {
        cli_error(cli, "the directory name \"%s\" is not a project name (a "
                  "DNS label: a-z, 0-9, '-'): give one with --name or as "
                  "\"name\" in shuttle.json", from);
        return CLI_USAGE;
    }

    snprintf(name, size, "%s", from);

    return CLI_OK;
}


/*
 * SIGINT, SIGTERM and SIGHUP set cli_interrupted and make
 * cli_interrupt_fd readable, so a transfer waiting in curl_multi_poll()
 * wakes at once and ends cleanly.
 */

void
cli_on_interrupt(void)
{
    int               fds[2];
    struct sigaction  sa;

    if (cli_interrupt_fd == -1 && pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
        cli_interrupt_fd = fds[0];
        cli_interrupt_wfd = fds[1];
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli_signal;
    sigemptyset(&sa.sa_mask);

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}


static void
cli_signal(int signo)
{
    int  saved;

    saved = errno;
    cli_interrupted = signo;

    if (cli_interrupt_wfd != -1) {
        if (write(cli_interrupt_wfd, "", 1) < 0) {
            /* full: a wake-up is pending already */
        }
    }

    errno = saved;
}
