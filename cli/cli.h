
/*
 * shuttle, the command line of shuttle for nginx: what the commands share.
 *
 *   main.c      the command table, global options, option parsing, help
 *   config.c    settings (flags, SHUTTLE_API/SHUTTLE_API_KEY, config file)
 *               and shuttle login
 *   api.c       the platform's HTTP API over libcurl: one multi handle, so
 *               one keepalive connection pool, and every error message
 *   pack.c      the project as a gzip'd tar in memory, .shuttleignore
 *   term.c      terminal output: colors, tables, times, sizes
 *   init.c      shuttle init
 *   deploy.c    shuttle deploy, and following a deployment to its end
 *   project.c   status, list, deployments, rollback, delete
 *   logs.c      shuttle logs
 *   run.c       shuttle run: the builder's rules and the loader, locally
 *
 * Messages for people go to stderr; stdout carries what a script wants
 * (the URL of a deploy, tables, --json).
 */


#ifndef SHUTTLE_CLI_H
#define SHUTTLE_CLI_H


#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <curl/curl.h>
#include <jansson.h>


#define SHUTTLE_CLI_VERSION    "0.1.0"

#define CLI_DEFAULT_API        "http://localhost:8080"

/* exit codes */
#define CLI_OK                 0
#define CLI_FAILED             1     /* a deployment failed or crashed */
#define CLI_USAGE              2     /* bad command line or local input */
#define CLI_API                3     /* the API refused, or is unreachable */


typedef struct {
    char              *data;
    size_t             len;
    size_t             cap;
} cli_buf_t;


/* a sink for a streamed response body; non-zero aborts the transfer */
typedef int (*cli_sink_pt)(void *ctx, const char *data, size_t len);


/* one HTTP exchange with the API */
typedef struct {
    CURL                *easy;
    struct curl_slist   *headers;
    const char          *what;       /* for messages: "deploy hello" */
    char                 url[2048];

    const char          *upload;     /* request body, or NULL */
    size_t               upload_len;

    cli_sink_pt          sink;       /* 2xx bodies go here when set */
    void                *sink_ctx;

    long                 status;     /* 0: no answer */
    cli_buf_t            body;       /* the response, unless sunk */
    CURLcode             result;
    char                 errbuf[CURL_ERROR_SIZE];
    unsigned             running:1;
    unsigned             done:1;     /* ended, not yet seen by its owner */
    unsigned             progress:1; /* an upload bar on stderr */
} cli_xfer_t;


typedef struct {
    const char          *cmd;        /* the command, for messages */

    /* settings: from flags, then the environment, then the config file */
    const char          *flag_api;
    const char          *flag_key;
    char                *api;        /* base URL, no trailing '/' */
    char                *key;
    const char          *api_from;   /* where api came from, for messages */
    const char          *key_from;

    int                  color_out;  /* colors on stdout, on stderr */
    int                  color_err;

    CURLM               *multi;      /* the connection pool */
    CURL                *easy[2];    /* a request, and a poll beside it */
} cli_t;


typedef struct {
    const char          *name;
    int                (*handler)(cli_t *cli, int argc, char **argv);
    const char          *summary;
    const char          *help;
} cli_command_t;


/* main.c */
int cli_getopt(cli_t *cli, int argc, char **argv, const char *shortopts,
    const struct option *longopts);
int cli_usage_error(cli_t *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_error(cli_t *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cli_project_name(cli_t *cli, const char *dir, const char *flag,
    char *name, size_t size);
int cli_is_label(const char *s);
void cli_on_interrupt(void);
extern volatile sig_atomic_t  cli_interrupted;
extern int                    cli_interrupt_fd;

/* config.c */
int cli_settings(cli_t *cli, int need_key);
int cli_config_path(char *path, size_t size);
int cli_login(cli_t *cli, int argc, char **argv);

/* api.c */
/* lazy.c: libcurl loaded in a thread of its own, then waited for */
void cli_lazy_preload(void);
void cli_lazy_preloaded(void);

int cli_api_init(cli_t *cli);
void cli_api_done(cli_t *cli);
void cli_xfer_init(cli_t *cli, cli_xfer_t *x, int slot, const char *what,
    const char *method, const char *path);
void cli_xfer_free(cli_xfer_t *x);
int cli_xfer_run(cli_t *cli, cli_xfer_t *x);
int cli_xfer_follow(cli_t *cli, cli_xfer_t *stream, cli_xfer_t *poll,
    int (*on_poll)(void *ctx, cli_xfer_t *poll), void *ctx,
    unsigned interval_ms);
json_t *cli_xfer_json(cli_xfer_t *x);
int cli_xfer_fail(cli_t *cli, cli_xfer_t *x);
json_t *cli_api_call(cli_t *cli, const char *what, const char *method,
    const char *path, json_t *body, long *status);
json_t *cli_api_show(cli_t *cli, const char *what, const char *path,
    int json, int *rc);
int cli_api_stream(cli_t *cli, const char *what, const char *path,
    cli_sink_pt sink, void *ctx);

/* pack.c */
typedef struct {
    cli_buf_t            tar;        /* the tar.gz */
    size_t               files;
    size_t               bytes;      /* of the files, before compression */
} cli_pack_t;

int cli_pack(const char *dir, cli_pack_t *p, FILE *list, char *err,
    size_t errlen);
void cli_pack_free(cli_pack_t *p);

typedef struct cli_ignore_s  cli_ignore_t;

cli_ignore_t *cli_ignore_load(const char *dir, char *err, size_t errlen);
int cli_ignore_match(const cli_ignore_t *ig, const char *path, int is_dir);
void cli_ignore_free(cli_ignore_t *ig);

/* term.c */
int cli_color_for(int fd);
const char *cli_c(int on, const char *code);
const char *cli_state_color(const char *state);
void cli_ago(const char *iso, char *buf, size_t size);
void cli_ms(json_t *ms, char *buf, size_t size);
void cli_size(size_t n, char *buf, size_t size);
int cli_buf_add(cli_buf_t *b, const void *data, size_t len);
void cli_buf_free(cli_buf_t *b);
void cli_print_json(json_t *j);
const char *cli_str(json_t *obj, const char *key, const char *dflt);
long long cli_int(json_t *obj, const char *key, long long dflt);
int cli_state_settled(const char *state);
long long cli_serving(json_t *project);

typedef struct {
    size_t               ncols;
    size_t               nrows;
    char               **cells;      /* nrows * ncols, strdup()ed */
    const char         **colors;     /* one per cell, or NULL */
} cli_table_t;

int cli_table_row(cli_table_t *t, const char **cells, const char **colors);
void cli_table_print(cli_table_t *t, int color);
void cli_table_free(cli_table_t *t);

/* the commands */
int cli_init(cli_t *cli, int argc, char **argv);
int cli_deploy(cli_t *cli, int argc, char **argv);
int cli_status(cli_t *cli, int argc, char **argv);
int cli_list(cli_t *cli, int argc, char **argv);
int cli_deployments(cli_t *cli, int argc, char **argv);
int cli_logs(cli_t *cli, int argc, char **argv);
int cli_rollback(cli_t *cli, int argc, char **argv);
int cli_delete(cli_t *cli, int argc, char **argv);
int cli_run(cli_t *cli, int argc, char **argv);
int cli_secrets(cli_t *cli, int argc, char **argv);
int cli_restart(cli_t *cli, int argc, char **argv);
int cli_scale(cli_t *cli, int argc, char **argv);
int cli_project_operand(cli_t *cli, int argc, char **argv, char *name,
    size_t size);

extern const cli_command_t  cli_commands[];


#endif /* SHUTTLE_CLI_H */
