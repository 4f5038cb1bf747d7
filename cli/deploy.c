
/*
 * shuttle deploy [DIR] [--name NAME] [--no-follow] [--dry-run]
 *
 * Pack, POST /deploy?project=NAME, then follow the deployment: its build
 * log streamed (GET /v1/deployments/ID/logs?follow=1, which ends when the
 * deployment settles), the builder's own lines in it ("shuttle:
 * building") shown as the state changes; then the project's URL on
 * stdout when it runs.  Nothing waits on a timer: the end of the stream
 * is the end of the deployment.  When the stream ended whole on the
 * builder's "running on" line and the 202 gave the URL, that is all:
 * no request is made after the new version runs.  Otherwise one GET of
 * the deployment says how it settled (and one of the project its URL).
 * Should the log tell no state (another builder), GET
 * /v1/deployments/ID is polled beside the stream for its transitions.
 *
 * SHUTTLE_TRACE=1 prints on stderr when each step ended, in ms since the
 * command started ("trace: +12.3 ms packed"): packed, libcurl loaded,
 * the upload's answer, each line of the builder's own in the log, the
 * end.
 */


#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"


/*
 * While the log streams, how often the deployment's state is asked, as
 * long as the log does not tell it: a quick deploy ends before the first
 * poll.
 */
#define CLI_DEPLOY_POLL_MS     250

/* when no log stream could be had: the same question, on its own */
#define CLI_DEPLOY_WAIT_MS     50

#define CLI_DEPLOY_TAIL        20

/* how the builder's own lines in a build log start */
#define CLI_NARRATION          "shuttle: "
#define CLI_NARRATION_LEN      (sizeof(CLI_NARRATION) - 1)

/* its last one when the deployment runs (builder/run/crash.c) */
#define CLI_RUNNING_ON         "running on "
#define CLI_RUNNING_ON_LEN     (sizeof(CLI_RUNNING_ON) - 1)


typedef struct {
    cli_t               *cli;
    const char          *name;
    long long            id;
    char                 state[32];  /* in the upload's answer */
    char                 what[128];
    size_t               shown;      /* transitions printed */
    cli_buf_t            line;       /* a log line not ended yet */
    size_t               log_bytes;  /* of build log printed */
    int                  narrated;   /* the log tells the state changes */
    int                  running_on; /* its last narration: running on */
    int                  has_url;    /* the 202 said the URL */
    int                  trace;      /* SHUTTLE_TRACE=1 */
    char                 url[1024];
    struct timespec      t0;
} cli_deploy_t;


static int cli_deploy_pack(cli_deploy_t *d, const char *dir,
    cli_pack_t *pack, int dry_run);
static int cli_deploy_upload(cli_deploy_t *d, cli_pack_t *pack);
static int cli_deploy_follow(cli_deploy_t *d);
static int cli_deploy_log(void *ctx, const char *data, size_t len);
static void cli_deploy_log_line(cli_deploy_t *d);
static void cli_deploy_log_flush(cli_deploy_t *d);
static int cli_deploy_poll(void *ctx, cli_xfer_t *poll);
static void cli_deploy_show(cli_deploy_t *d, json_t *dep);
static int cli_deploy_end(cli_deploy_t *d, json_t *dep);
static void cli_deploy_running(cli_deploy_t *d, const char *url);
static void cli_deploy_tail(cli_deploy_t *d);
static double cli_deploy_elapsed(cli_deploy_t *d);
static void cli_deploy_trace(cli_deploy_t *d, const char *step, int len);


int
cli_deploy(cli_t *cli, int argc, char **argv)
{
    int                   c, rc, follow, dry_run;
    char                  name[64];
    cli_pack_t            pack;
    struct stat           st;
    cli_deploy_t          d;
    const char           *dir, *flag_name;
    static struct option  opts[] = {
        { "name",      required_argument, NULL, 'n' },
        { "no-follow", no_argument,       NULL, 'F' },
        { "dry-run",   no_argument,       NULL, 'D' },
        { NULL, 0, NULL, 0 }
    };

    memset(&d, 0, sizeof(d));
    clock_gettime(CLOCK_MONOTONIC, &d.t0);
    d.trace = getenv("SHUTTLE_TRACE") != NULL
              && strcmp(getenv("SHUTTLE_TRACE"), "1") == 0;

    flag_name = NULL;
    follow = 1;
    dry_run = 0;

    while ((c = cli_getopt(cli, argc, argv, "n:", opts)) != -1) {
        switch (c) {
        case 'n':
            flag_name = optarg;
            break;
        case 'F':
            follow = 0;
            break;
        case 'D':
            dry_run = 1;
            break;
        }
    }

    if (argc - optind > 1) {
        return cli_usage_error(cli, "one directory at most");
    }

    dir = optind < argc ? argv[optind] : ".";

    if (stat(dir, &st) != 0) {
        return cli_usage_error(cli, "%s: %s", dir, strerror(errno));
    }

    if (!S_ISDIR(st.st_mode)) {
        return cli_usage_error(cli, "%s: not a directory", dir);
    }

    rc = cli_project_name(cli, dir, flag_name, name, sizeof(name));
    if (rc != CLI_OK) {
        return rc;
    }

    if (!dry_run) {
        rc = cli_settings(cli, 1);
        if (rc != CLI_OK) {
            return rc;
        }
    }

    d.cli = cli;
    d.name = name;
    snprintf(d.what, sizeof(d.what), "%s", name);

    /* libarchive, then libcurl load (cli/lazy.c): libcurl while the
       project packs */
    if (!dry_run) {
        cli_lazy_preload();
    }

    rc = cli_deploy_pack(&d, dir, &pack, dry_run);
    cli_deploy_trace(&d, "packed", -1);

    cli_lazy_preloaded();
    cli_deploy_trace(&d, "libcurl loaded", -1);

    if (rc != CLI_OK || dry_run) {
        return rc;
    }

    rc = cli_deploy_upload(&d, &pack);
    cli_pack_free(&pack);

    if (rc != CLI_OK) {
        return rc;
    }

    cli_deploy_trace(&d, "uploaded", -1);

    snprintf(d.what, sizeof(d.what), "%s: deployment %lld", name, d.id);

    if (!follow) {
        fprintf(stderr, "Deployment %lld of %s is %s; follow it with: "
                "shuttle logs %s --deployment %lld -f\n", d.id, name,
                d.state, name, d.id);
        printf("%lld\n", d.id);
        return CLI_OK;
    }

    fprintf(stderr, "Deployment %lld: %s%s%s\n", d.id,
            cli_c(cli->color_err, cli_state_color(d.state)), d.state,
            cli_c(cli->color_err, "\033[0m"));

    /* the first transition, shown just now */
    d.shown = 1;

    rc = cli_deploy_follow(&d);
    cli_deploy_trace(&d, "followed", -1);

    cli_buf_free(&d.line);

    return rc;
}


/* packs dir; with dry_run, lists the files on stdout instead of more */

static int
cli_deploy_pack(cli_deploy_t *d, const char *dir, cli_pack_t *pack,
    int dry_run)
{
    int      rc;
    char     err[1024], size[32], gz[32], *text;
    FILE    *list;
    size_t   len;

    /* the list is printed once all the files could be packed */
    list = NULL;
    text = NULL;

    if (dry_run && (list = open_memstream(&text, &len)) == NULL) {
        cli_error(d->cli, "open_memstream: %s", strerror(errno));
        return CLI_USAGE;
    }

    rc = cli_pack(dir, pack, list, err, sizeof(err));

    if (list != NULL) {
        fclose(list);

        if (rc == 0) {
            fwrite(text, 1, len, stdout);
        }

        free(text);
    }

    if (rc != 0) {
        cli_error(d->cli, "%s: cannot pack %s: %s", d->name, dir, err);
        return CLI_USAGE;
    }

    cli_size(pack->bytes, size, sizeof(size));
    cli_size(pack->tar.len, gz, sizeof(gz));

    if (dry_run) {
        fprintf(stderr, "%s: %zu files, %s (%s as tar.gz) would be "
                "uploaded; nothing was\n", d->name, pack->files, size, gz);
        cli_pack_free(pack);
        return CLI_OK;
    }

    fprintf(stderr, "Deploying %s%s%s to %s: %zu files, %s (%s as tar.gz)\n",
            cli_c(d->cli->color_err, "\033[1m"), d->name,
            cli_c(d->cli->color_err, "\033[0m"), d->cli->api, pack->files,
            size, gz);

    return CLI_OK;
}


/* POST /deploy?project=NAME: d->id and d->state from the 202 */

static int
cli_deploy_upload(cli_deploy_t *d, cli_pack_t *pack)
{
    int          rc;
    char         path[128];
    json_t      *answer;
    cli_t       *cli;
    cli_xfer_t   x;

    cli = d->cli;

    snprintf(path, sizeof(path), "/deploy?project=%s", d->name);

    cli_xfer_init(cli, &x, 0, d->what, "POST", path);
    x.upload = pack->tar.data;
    x.upload_len = pack->tar.len;
    x.headers = curl_slist_append(x.headers,
                                  "Content-Type: application/gzip");
    x.progress = isatty(STDERR_FILENO) && pack->tar.len >= 1024 * 1024;

    if (cli_xfer_run(cli, &x) != 0) {
        cli_xfer_free(&x);
        return CLI_API;
    }

    if (x.result != CURLE_OK || x.status != 202) {
        rc = cli_xfer_fail(cli, &x);
        cli_xfer_free(&x);
        return rc;
    }

    answer = cli_xfer_json(&x);
    cli_xfer_free(&x);

    d->id = cli_int(answer, "id", -1);
    snprintf(d->state, sizeof(d->state), "%s",
             cli_str(answer, "state", "queued"));

    /* a builder that says it (null: no --apps-url, "" printed) */
    if (json_object_get(answer, "url") != NULL) {
        d->has_url = 1;
        snprintf(d->url, sizeof(d->url), "%s", cli_str(answer, "url", ""));
    }
    json_decref(answer);

    if (d->id < 0) {
        cli_error(cli, "%s: the API's 202 answer has no deployment id: is "
                  "%s a shuttle API?", d->name, cli->api);
        return CLI_API;
    }

    return CLI_OK;
}


static int
cli_deploy_follow(cli_deploy_t *d)
{
    int               rc, interrupted;
    char              path[128], dep_path[128];
    json_t           *dep;
    cli_t            *cli;
    cli_xfer_t        stream, poll;
    struct timespec   wait;

    cli = d->cli;

    snprintf(path, sizeof(path), "/v1/deployments/%lld/logs?follow=1", d->id);
    snprintf(dep_path, sizeof(dep_path), "/v1/deployments/%lld", d->id);

    cli_xfer_init(cli, &stream, 0, d->what, "GET", path);
    stream.sink = cli_deploy_log;
    stream.sink_ctx = d;

    cli_xfer_init(cli, &poll, 1, d->what, "GET", dep_path);

    cli_on_interrupt();

    interrupted = cli_xfer_follow(cli, &stream, &poll, cli_deploy_poll, d,
                                  CLI_DEPLOY_POLL_MS);

    cli_deploy_log_flush(d);

    /*
     * The stream ended whole (it ends when the deployment settles) on the
     * builder's "running on": it runs, and the 202 said the URL.
     */

    if (!interrupted && stream.result == CURLE_OK && stream.status == 200
        && d->running_on && d->has_url)
    {
        cli_xfer_free(&stream);
        cli_xfer_free(&poll);
        cli_deploy_running(d, d->url);
        return CLI_OK;
    }

    cli_xfer_free(&stream);
    cli_xfer_free(&poll);

    /*
     * The stream ends when the deployment settles: one GET says how.  Had
     * it ended early (a proxy cutting it, an error), ask until it settles.
     */

    wait.tv_sec = 0;
    wait.tv_nsec = CLI_DEPLOY_WAIT_MS * 1000000L;
    dep = NULL;

    while (!interrupted) {
        dep = cli_api_call(cli, d->what, "GET", dep_path, NULL, NULL);

        if (dep == NULL) {
            if (cli_interrupted) {
                interrupted = 1;
                break;
            }

            return CLI_API;
        }

        cli_deploy_show(d, dep);

        if (cli_state_settled(cli_str(dep, "state", ""))) {
            break;
        }

        json_decref(dep);
        dep = NULL;

        nanosleep(&wait, NULL);
        interrupted = cli_interrupted != 0;
    }

    if (interrupted) {
        json_decref(dep);
        fprintf(stderr, "\nStopped following; deployment %lld goes on: "
                "shuttle status %s\n", d->id, d->name);
        signal(cli_interrupted, SIG_DFL);
        raise(cli_interrupted);
        return CLI_FAILED;
    }

    rc = cli_deploy_end(d, dep);
    json_decref(dep);

    return rc;
}


/*
 * The build log's sink: whole lines.  The builder tells its own steps in
 * the log ("shuttle: building"): those read as the state changes, the
 * rest (the compiler's) is indented under them.
 */

static int
cli_deploy_log(void *ctx, const char *data, size_t len)
{
    const char    *nl;
    cli_deploy_t  *d;

    d = ctx;
    d->log_bytes += len;

    while (len > 0) {
        nl = memchr(data, '\n', len);

        if (cli_buf_add(&d->line, data, nl ? (size_t) (nl - data) : len)
            != 0)
        {
            return -1;
        }

        if (nl == NULL) {
            break;
        }

        cli_deploy_log_line(d);

        len -= nl - data + 1;
        data = nl + 1;
    }

    return 0;
}


static void
cli_deploy_log_line(cli_deploy_t *d)
{
    int          color;
    size_t       len;
    const char  *line;

    color = d->cli->color_err;
    line = d->line.data ? d->line.data : "";
    len = d->line.len;

    if (len > CLI_NARRATION_LEN
        && memcmp(line, CLI_NARRATION, CLI_NARRATION_LEN) == 0)
    {
        d->narrated = 1;
        cli_deploy_trace(d, line + CLI_NARRATION_LEN,
                         (int) (len - CLI_NARRATION_LEN));
        d->running_on = len - CLI_NARRATION_LEN > CLI_RUNNING_ON_LEN
                        && memcmp(line + CLI_NARRATION_LEN, CLI_RUNNING_ON,
                                  CLI_RUNNING_ON_LEN) == 0;
        fprintf(stderr, "  %s%.*s%s\n", cli_c(color, "\033[1m"),
                (int) (len - CLI_NARRATION_LEN), line + CLI_NARRATION_LEN,
                cli_c(color, "\033[0m"));

    } else {
        fprintf(stderr, "  %s| %.*s%s\n", cli_c(color, "\033[2m"),
                (int) len, line, cli_c(color, "\033[0m"));
    }

    d->line.len = 0;
}


static void
cli_deploy_log_flush(cli_deploy_t *d)
{
    if (d->line.len > 0) {
        cli_deploy_log_line(d);
    }
}


/*
 * Each answer of the poll beside the stream: the new state changes.  Once
 * the log tells them, no poll (NULL: asked before one starts).
 */

static int
cli_deploy_poll(void *ctx, cli_xfer_t *poll)
{
    json_t        *dep;
    cli_deploy_t  *d;

    d = ctx;

    if (d->narrated) {
        return 1;
    }

    if (poll == NULL) {
        return 0;
    }

    if (poll->result != CURLE_OK || poll->status != 200) {
        /* the stream and the final GET say what is wrong, if anything */
        return 1;
    }

    dep = cli_xfer_json(poll);
    cli_deploy_show(d, dep);
    json_decref(dep);

    return 0;
}


/* the transitions of dep not shown yet, one line each */

static void
cli_deploy_show(cli_deploy_t *d, json_t *dep)
{
    int          color, failure;
    char         ms[32], extra[64];
    json_t      *transitions, *t;
    const char  *state, *reason;

    color = d->cli->color_err;
    transitions = json_object_get(dep, "transitions");

    for ( /* void */ ; d->shown < json_array_size(transitions); d->shown++) {
        t = json_array_get(transitions, d->shown);
        state = cli_str(t, "state", "?");
        reason = cli_str(t, "reason", NULL);
        extra[0] = '\0';

        if (strcmp(state, "built") == 0) {
            cli_ms(json_object_get(dep, "build_ms"), ms, sizeof(ms));
            if (strcmp(ms, "-") != 0) {
                snprintf(extra, sizeof(extra), " in %s", ms);
            }

        } else if (strcmp(state, "running") == 0) {
            cli_ms(json_object_get(dep, "start_ms"), ms, sizeof(ms));
            if (strcmp(ms, "-") != 0) {
                snprintf(extra, sizeof(extra), ", started in %s", ms);
            }
        }

        if (d->narrated) {
            continue;
        }

        /* a failure's reason closes the output, once */
        failure = strcmp(state, "failed") == 0
                  || strcmp(state, "crashed") == 0;

        fprintf(stderr, "  %s%s%s%s%s%s\n",
                cli_c(color, cli_state_color(state)), state,
                cli_c(color, "\033[0m"), extra,
                reason && !failure ? ": " : "",
                reason && !failure ? reason : "");
    }
}


static int
cli_deploy_end(cli_deploy_t *d, json_t *dep)
{
    char         path[128];
    json_t      *project;
    cli_t       *cli;
    const char  *state, *url;
    long long    serving;

    cli = d->cli;
    state = cli_str(dep, "state", "");

    snprintf(path, sizeof(path), "/v1/projects/%s", d->name);

    if (strcmp(state, "running") == 0) {
        if (d->has_url) {
            cli_deploy_running(d, d->url);
            return CLI_OK;
        }

        project = cli_api_call(cli, d->what, "GET", path, NULL, NULL);
        if (project == NULL) {
            return CLI_API;
        }

        url = cli_str(project, "url", "");
        cli_deploy_running(d, url);

        json_decref(project);
        return CLI_OK;
    }

    if (strcmp(state, "superseded") == 0) {
        cli_error(cli, "%s was superseded by a newer deployment of %s "
                  "before it ran", d->what, d->name);
        return CLI_FAILED;
    }

    /*
     * The build log was shown as it was written; when it could not be,
     * its end now.  A failure past the build has the runtime log's last
     * lines in its reason.
     */

    if (d->log_bytes == 0) {
        cli_deploy_tail(d);
    }

    cli_error(cli, "%s %s: %s", d->what, state,
              cli_str(dep, "reason", "no reason given"));

    /* a failed deployment leaves the one before it serving */
    project = cli_api_call(cli, d->what, "GET", path, NULL, NULL);
    serving = cli_serving(project);

    if (serving >= 0 && serving != d->id) {
        fprintf(stderr, "deployment %lld still serves %s\n", serving,
                cli_str(project, "url", d->name));
    }

    json_decref(project);

    return CLI_FAILED;
}


static void
cli_deploy_running(cli_deploy_t *d, const char *url)
{
    cli_t  *cli;

    cli = d->cli;

    fprintf(stderr, "%s%s is running%s (deployment %lld, %.2f s)\n",
            cli_c(cli->color_err, "\033[1;32m"), d->name,
            cli_c(cli->color_err, "\033[0m"), d->id,
            cli_deploy_elapsed(d));
    printf("%s\n", url);
    fflush(stdout);
}


/* the last lines of the deployment's build log, if any */

static void
cli_deploy_tail(cli_deploy_t *d)
{
    int          n;
    char         path[160];
    const char  *p, *end;
    cli_xfer_t   x;

    snprintf(path, sizeof(path), "/v1/deployments/%lld/logs", d->id);

    cli_xfer_init(d->cli, &x, 0, d->what, "GET", path);

    if (cli_xfer_run(d->cli, &x) == 0 && x.result == CURLE_OK
        && x.status == 200 && x.body.len > 0)
    {
        end = x.body.data + x.body.len;
        while (end > x.body.data && end[-1] == '\n') {
            end--;
        }

        n = 0;
        for (p = end; p > x.body.data; p--) {
            if (p[-1] == '\n' && ++n == CLI_DEPLOY_TAIL) {
                break;
            }
        }

        fprintf(stderr, "%sthe build log, last lines:%s\n",
                cli_c(d->cli->color_err, "\033[1m"),
                cli_c(d->cli->color_err, "\033[0m"));

        cli_deploy_log(d, p, end - p);
        cli_deploy_log_flush(d);
    }

    cli_xfer_free(&x);
}


static double
cli_deploy_elapsed(cli_deploy_t *d)
{
    struct timespec  now;

    clock_gettime(CLOCK_MONOTONIC, &now);

    return (now.tv_sec - d->t0.tv_sec)
           + (now.tv_nsec - d->t0.tv_nsec) / 1e9;
}


/* with SHUTTLE_TRACE=1: when step ended (len -1: a C string) */

static void
cli_deploy_trace(cli_deploy_t *d, const char *step, int len)
{
    if (d->trace) {
        fprintf(stderr, "trace: +%.1f ms %.*s\n",
                cli_deploy_elapsed(d) * 1000,
                len < 0 ? (int) strlen(step) : len, step);
    }
}
