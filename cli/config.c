
/*
 * Settings and shuttle login.
 *
 * The API URL and the key come from, in this order: --api and --key,
 * SHUTTLE_API and SHUTTLE_API_KEY, the config file that shuttle login
 * writes, $XDG_CONFIG_HOME/shuttle/config.json (default ~/.config):
 *
 *     {"api": "https://api.example.com", "key": "sk_..."}
 *
 * kept mode 0600 in a directory of mode 0700.
 */


#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"


static int cli_config_read(cli_t *cli, json_t **config);
static int cli_config_write(cli_t *cli, const char *path);
static int cli_read_key(cli_t *cli, char *key, size_t size);
static int cli_mkdirs(const char *dir, mode_t mode);


int
cli_config_path(char *path, size_t size)
{
    int             n;
    const char     *xdg, *home;
    struct passwd  *pw;

    xdg = getenv("XDG_CONFIG_HOME");

    if (xdg != NULL && xdg[0] == '/') {
        n = snprintf(path, size, "%s/shuttle/config.json", xdg);

    } else {
        home = getenv("HOME");

        if (home == NULL || home[0] == '\0') {
            pw = getpwuid(getuid());
            if (pw == NULL) {
                return -1;
            }
            home = pw->pw_dir;
        }

        n = snprintf(path, size, "%s/.config/shuttle/config.json", home);
    }

    return (n < 0 || (size_t) n >= size) ? -1 : 0;
}


/*
 * Resolves cli->api and cli->key.  Returns CLI_OK, or an exit code after
 * saying what is wrong: a bad config file or URL (CLI_USAGE), no key
 * when need_key (CLI_API: the API would refuse).
 */

int
cli_settings(cli_t *cli, int need_key)
{
    int          rc;
    size_t       len;
    json_t      *config;
    const char  *api, *key, *env, *rest;
    static char  path[PATH_MAX];

    config = NULL;
    api = NULL;
    key = NULL;

    if (cli->flag_api != NULL) {
        api = cli->flag_api;
        cli->api_from = "--api";

    } else if ((env = getenv("SHUTTLE_API")) != NULL && env[0] != '\0') {
        api = env;
        cli->api_from = "SHUTTLE_API";
    }

    if (cli->flag_key != NULL) {
        key = cli->flag_key;
        cli->key_from = "--key";

    } else if ((env = getenv("SHUTTLE_API_KEY")) != NULL && env[0] != '\0') {
        key = env;
        cli->key_from = "SHUTTLE_API_KEY";
    }

    if (api == NULL || key == NULL) {
        rc = cli_config_read(cli, &config);
        if (rc != CLI_OK) {
            return rc;
        }

        if (config != NULL) {
            cli_config_path(path, sizeof(path));

            if (api == NULL && (api = cli_str(config, "api", NULL)) != NULL) {
                cli->api_from = path;
            }

            if (key == NULL && (key = cli_str(config, "key", NULL)) != NULL) {
                cli->key_from = path;
            }
        }
    }

    if (api == NULL) {
        api = CLI_DEFAULT_API;
        cli->api_from = "the default";
    }

    if (strncmp(api, "http://", 7) != 0 && strncmp(api, "https://", 8) != 0) {
        cli_error(cli, "the API URL \"%s\" (from %s) does not start with "
                  "http:// or https://", api, cli->api_from);
        json_decref(config);
        return CLI_USAGE;
    }

    /* "http://" and "https:///" name no host: "http:" once trimmed */
    rest = api + (api[4] == 's' ? 8 : 7);

    if (rest[strspn(rest, "/")] == '\0') {
        cli_error(cli, "the API URL \"%s\" (from %s) names no host", api,
                  cli->api_from);
        json_decref(config);
        return CLI_USAGE;
    }

    free(cli->api);
    free(cli->key);
    cli->api = strdup(api);
    cli->key = key ? strdup(key) : NULL;
    json_decref(config);

    if (cli->api == NULL || (key != NULL && cli->key == NULL)) {
        cli_error(cli, "out of memory");
        return CLI_API;
    }

    len = strlen(cli->api);
    while (len > 0 && cli->api[len - 1] == '/') {
        cli->api[--len] = '\0';
    }

    if (need_key && cli->key == NULL) {
        cli_error(cli, "no API key for %s: log in with `shuttle login --key "
                  "KEY`, or set SHUTTLE_API_KEY", cli->api);
        return CLI_API;
    }

    return CLI_OK;
}


/* *config is NULL when there is no config file */

static int
cli_config_read(cli_t *cli, json_t **config)
{
    char          path[PATH_MAX];
    json_error_t  jerr;

    *config = NULL;

    if (cli_config_path(path, sizeof(path)) != 0 || access(path, F_OK) != 0) {
        return CLI_OK;
    }

    *config = json_load_file(path, 0, &jerr);

    if (*config == NULL) {
        cli_error(cli, "%s: %s (line %d); fix it or run shuttle login "
                  "again", path, jerr.text, jerr.line);
        return CLI_USAGE;
    }

    if (!json_is_object(*config)) {
        cli_error(cli, "%s: not a JSON object; fix it or run shuttle login "
                  "again", path);
        json_decref(*config);
        *config = NULL;
        return CLI_USAGE;
    }

    return CLI_OK;
}


int
cli_login(cli_t *cli, int argc, char **argv)
{
    int      rc;
    char     path[PATH_MAX], key[1024];
    size_t   n;
    json_t  *projects;

    if (cli_getopt(cli, argc, argv, "", NULL) != -1) {
        return CLI_USAGE;
    }

    if (optind < argc) {
        return cli_usage_error(cli, "unexpected argument \"%s\"",
                               argv[optind]);
    }

    rc = cli_settings(cli, 0);
    if (rc != CLI_OK) {
        return rc;
    }

    if (cli->flag_key != NULL) {
        snprintf(key, sizeof(key), "%s", cli->flag_key);

    } else {
        rc = cli_read_key(cli, key, sizeof(key));
        if (rc != CLI_OK) {
            return rc;
        }
    }

    free(cli->key);
    cli->key = strdup(key);
    cli->key_from = cli->flag_key ? "--key" : "the key given";
    explicit_bzero(key, sizeof(key));

    if (cli->key == NULL) {
        cli_error(cli, "out of memory");
        return CLI_API;
    }

    projects = cli_api_call(cli, NULL, "GET", "/v1/projects", NULL, NULL);
    if (projects == NULL) {
        fprintf(stderr, "nothing saved\n");
        return CLI_API;
    }

    if (cli_config_path(path, sizeof(path)) != 0) {
        cli_error(cli, "cannot find the config directory: set HOME or "
                  "XDG_CONFIG_HOME");
        json_decref(projects);
        return CLI_USAGE;
    }

    rc = cli_config_write(cli, path);
    if (rc == CLI_OK) {
        n = json_array_size(json_object_get(projects, "projects"));
        fprintf(stderr, "Logged in to %s (%zu project%s); saved in %s\n",
                cli->api, n, n == 1 ? "" : "s", path);
    }

    json_decref(projects);

    return rc;
}


/* a key from the terminal, not echoed, or the first line of stdin */

static int
cli_read_key(cli_t *cli, char *key, size_t size)
{
    int             tty;
    size_t          len;
    struct termios  old, quiet;

    tty = isatty(STDIN_FILENO);

    if (tty) {
        fprintf(stderr, "API key for %s: ", cli->api);
        fflush(stderr);

        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);

        } else {
            tty = 0;
        }
    }

    if (fgets(key, size, stdin) == NULL) {
        key[0] = '\0';
    }

    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }

    len = strlen(key);
    while (len > 0 && (key[len - 1] == '\n' || key[len - 1] == '\r'
                       || key[len - 1] == ' '))
    {
        key[--len] = '\0';
    }

    if (len == 0) {
        return cli_usage_error(cli, "no key given: use --key KEY, or type "
                               "it when asked");
    }

    return CLI_OK;
}


/* the config file, replaced atomically, never readable by others */

static int
cli_config_write(cli_t *cli, const char *path)
{
    int      fd;
    char     dir[PATH_MAX], tmp[PATH_MAX + 16], *slash;
    json_t  *config;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    *slash = '\0';

    if (cli_mkdirs(dir, 0700) != 0) {
        cli_error(cli, "cannot create %s: %s", dir, strerror(errno));
        return CLI_USAGE;
    }

    snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long) getpid());

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1) {
        cli_error(cli, "cannot create %s: %s", tmp, strerror(errno));
        return CLI_USAGE;
    }

    config = json_pack("{s:s, s:s}", "api", cli->api, "key", cli->key);

    if (fchmod(fd, 0600) != 0
        || config == NULL
        || json_dumpfd(config, fd, JSON_INDENT(4) | JSON_PRESERVE_ORDER) != 0
        || write(fd, "\n", 1) != 1
        || fsync(fd) != 0)
    {
        cli_error(cli, "cannot write %s: %s", tmp, strerror(errno));
        json_decref(config);
        close(fd);
        unlink(tmp);
        return CLI_USAGE;
    }

    json_decref(config);

    if (close(fd) != 0 || rename(tmp, path) != 0) {
        cli_error(cli, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return CLI_USAGE;
    }

    return CLI_OK;
}


static int
cli_mkdirs(const char *dir, mode_t mode)
{
    char  path[PATH_MAX], *p;

    snprintf(path, sizeof(path), "%s", dir);

    for (p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, mode) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }

    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        return -1;
    }

    return 0;
}
