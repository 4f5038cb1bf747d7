
/*
 * The platform's HTTP API.
 *
 * Every transfer runs on one curl multi handle, whose connection pool
 * keeps the connection to nginx alive from the upload to the last
 * request, through at most two easy handles that are reset and reused:
 * slot 0 for the request at hand, slot 1 for a poll beside a stream.
 * Waits are curl_multi_poll() on the sockets plus the interrupt pipe, so
 * Ctrl-C ends a follow at once and nothing ever sleeps.
 */


#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"


/* bodies up to this size go without "Expect: 100-continue" */
#define CLI_EXPECT_MIN    (1024 * 1024)


static size_t cli_xfer_write(char *data, size_t size, size_t n, void *ctx);
static int cli_xfer_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow);
static void cli_xfer_start(cli_t *cli, cli_xfer_t *x);
static void cli_xfer_finish(cli_t *cli, CURLMsg *msg);
static const char *cli_xfer_message(cli_xfer_t *x, char *buf, size_t size);
static long long cli_now_ms(void);


int
cli_api_init(cli_t *cli)
{
    if (cli->multi != NULL) {
        return 0;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }

    cli->multi = curl_multi_init();

    return cli->multi ? 0 : -1;
}


void
cli_api_done(cli_t *cli)
{
    int  i;

    for (i = 0; i < 2; i++) {
        if (cli->easy[i] != NULL) {
            curl_easy_cleanup(cli->easy[i]);
            cli->easy[i] = NULL;
        }
    }

    if (cli->multi != NULL) {
        curl_multi_cleanup(cli->multi);
        cli->multi = NULL;
        curl_global_cleanup();
    }
}


/*
 * Prepares x for METHOD api/PATH on the easy handle of slot.  Set
 * x->upload (and a Content-Type with x->headers) or x->sink before
 * running it.
 */

void
cli_xfer_init(cli_t *cli, cli_xfer_t *x, int slot, const char *what,
    const char *method, const char *path)
{
    char   auth[1200];
    CURL  *easy;

    memset(x, 0, sizeof(cli_xfer_t));

    if (cli_api_init(cli) != 0) {
        cli_error(cli, "cannot initialise libcurl");
        exit(CLI_API);
    }

    if (cli->easy[slot] == NULL) {
        cli->easy[slot] = curl_easy_init();
        if (cli->easy[slot] == NULL) {
            cli_error(cli, "cannot initialise libcurl");
            exit(CLI_API);
        }

    } else {
        curl_easy_reset(cli->easy[slot]);
    }

    easy = cli->easy[slot];
    x->easy = easy;
    x->what = what;

    snprintf(x->url, sizeof(x->url), "%s%s", cli->api, path);

    curl_easy_setopt(easy, CURLOPT_URL, x->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT,
                     "shuttle/" SHUTTLE_CLI_VERSION);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, cli_xfer_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);

    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);

    } else if (strcmp(method, "POST") == 0) {
        /* an empty body unless x->upload says otherwise, never stdin */
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");

    } else {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    }

    if (cli->key != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cli->key);
        x->headers = curl_slist_append(x->headers, auth);
        explicit_bzero(auth, sizeof(auth));
    }
}


void
cli_xfer_free(cli_xfer_t *x)
{
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    cli_buf_free(&x->body);
}


static void
cli_xfer_start(cli_t *cli, cli_xfer_t *x)
{
    if (x->upload != NULL) {
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) x->upload_len);
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->upload);

        /* a small body goes at once, not after a 100 Continue */
        if (x->upload_len < CLI_EXPECT_MIN) {
            x->headers = curl_slist_append(x->headers, "Expect:");
        }
    }

    if (x->progress) {
        curl_easy_setopt(x->easy, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(x->easy, CURLOPT_XFERINFOFUNCTION,
                         cli_xfer_progress);
        curl_easy_setopt(x->easy, CURLOPT_XFERINFODATA, x);
    }

    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);

    x->status = 0;
    x->result = CURLE_OK;
    x->errbuf[0] = '\0';
    x->body.len = 0;
    x->running = 1;

    curl_multi_add_handle(cli->multi, x->easy);
}


/*
 * Runs x to its end.  Returns 0 when it ended (x->result and x->status
 * tell how), 1 when interrupted.
 */

int
cli_xfer_run(cli_t *cli, cli_xfer_t *x)
{
    return cli_xfer_follow(cli, x, NULL, NULL, NULL, 0);
}


/*
 * Runs stream to its end and, while it runs, poll again and again,
 * interval_ms after the start and after each answer, on_poll() called
 * with each answer, and with NULL before each poll starts (non-zero: no
 * more polls).  A poll still running when the stream ends is dropped.
 * Returns 0 when the stream ended, 1 when interrupted.
 */

int
cli_xfer_follow(cli_t *cli, cli_xfer_t *stream, cli_xfer_t *poll,
    int (*on_poll)(void *ctx, cli_xfer_t *poll), void *ctx,
    unsigned interval_ms)
{
    int                  running, left, nfds;
    long long            now, next_poll, timeout;
    CURLMsg             *msg;
    struct curl_waitfd   intr;

    cli_xfer_start(cli, stream);

    next_poll = cli_now_ms() + interval_ms;

    for ( ;; ) {
        curl_multi_perform(cli->multi, &running);

        while ((msg = curl_multi_info_read(cli->multi, &left)) != NULL) {
            cli_xfer_finish(cli, msg);
        }

        now = cli_now_ms();

        if (poll != NULL && poll->done) {
            poll->done = 0;

            if (on_poll(ctx, poll) != 0) {
                poll = NULL;

            } else {
                next_poll = now + interval_ms;
            }
        }

        if (!stream->running) {
            break;
        }

        if (cli_interrupted) {
            curl_multi_remove_handle(cli->multi, stream->easy);
            stream->running = 0;
            if (poll != NULL && poll->running) {
                curl_multi_remove_handle(cli->multi, poll->easy);
                poll->running = 0;
            }
            return 1;
        }

        timeout = 1000;

        if (poll != NULL && !poll->running) {
            if (now >= next_poll) {
                if (on_poll(ctx, NULL) != 0) {
                    poll = NULL;
                    continue;
                }

                cli_xfer_start(cli, poll);
                continue;
            }

            timeout = next_poll - now;
        }

        nfds = 0;
        if (cli_interrupt_fd != -1) {
            intr.fd = cli_interrupt_fd;
            intr.events = CURL_WAIT_POLLIN;
            intr.revents = 0;
            nfds = 1;
        }

        curl_multi_poll(cli->multi, nfds ? &intr : NULL, nfds, (int) timeout,
                        NULL);
    }

    if (poll != NULL && poll->running) {
        curl_multi_remove_handle(cli->multi, poll->easy);
        poll->running = 0;
    }

    return 0;
}


static void
cli_xfer_finish(cli_t *cli, CURLMsg *msg)
{
    char        *priv;
    cli_xfer_t  *x;

    if (msg->msg != CURLMSG_DONE) {
        return;
    }

    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    x = (cli_xfer_t *) priv;

    x->result = msg->data.result;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    curl_multi_remove_handle(cli->multi, x->easy);
    x->running = 0;
    x->done = 1;

    if (x->progress) {
        fputc('\n', stderr);
        x->progress = 0;
    }
}


static size_t
cli_xfer_write(char *data, size_t size, size_t n, void *ctx)
{
    size_t       len;
    cli_xfer_t  *x;

    x = ctx;
    len = size * n;

    if (x->status == 0) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    }

    if (x->sink != NULL && x->status >= 200 && x->status < 300) {
        return x->sink(x->sink_ctx, data, len) == 0 ? len : 0;
    }

    return cli_buf_add(&x->body, data, len) == 0 ? len : 0;
}


static int
cli_xfer_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
    int          pct, i;
    char         now[32], total[32], bar[33];
    cli_xfer_t  *x;
    static int   last = -1;

    x = ctx;

    if (!x->progress || ultotal <= 0) {
        return 0;
    }

    pct = (int) (ulnow * 100 / ultotal);
    if (pct == last) {
        return 0;
    }

    last = pct;

    for (i = 0; i < 32; i++) {
        bar[i] = i < pct * 32 / 100 ? '#' : ' ';
    }
    bar[32] = '\0';

    cli_size((size_t) ulnow, now, sizeof(now));
    cli_size((size_t) ultotal, total, sizeof(total));
    fprintf(stderr, "\r  uploading [%s] %3d%%  %s of %s ", bar, pct, now,
            total);

    return 0;
}


json_t *
cli_xfer_json(cli_xfer_t *x)
{
    return json_loadb(x->body.data ? x->body.data : "", x->body.len, 0,
                      NULL);
}


/*
 * Says why x did not succeed, naming the cause, and returns the exit
 * code: CLI_API.
 */

int
cli_xfer_fail(cli_t *cli, cli_xfer_t *x)
{
    char         buf[512], pre[160];
    const char  *msg, *how;

    /* "hello: " before the message, or nothing */
    snprintf(pre, sizeof(pre), "%s%s", x->what ? x->what : "",
             x->what && x->what[0] ? ": " : "");

    how = "log in with `shuttle login --key KEY`, or set SHUTTLE_API_KEY";

    if (x->result != CURLE_OK) {
        switch (x->result) {

        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SSL_CONNECT_ERROR:
            cli_error(cli, "%scannot reach the API at %s (from %s): %s",
                      pre, cli->api, cli->api_from,
                      x->errbuf[0] ? x->errbuf
                                   : curl_easy_strerror(x->result));
            break;

        default:
            cli_error(cli, "%s%s: %s", pre, x->url,
                      x->errbuf[0] ? x->errbuf
                                   : curl_easy_strerror(x->result));
        }

        return CLI_API;
    }

    msg = cli_xfer_message(x, buf, sizeof(buf));

    switch (x->status) {

    case 401:
        cli_error(cli, "%sthe API at %s refused the key%s%s (401: %s); %s",
                  pre, cli->api, cli->key_from ? " from " : "",
                  cli->key_from ? cli->key_from : "",
                  msg ? msg : "unauthorized", how);
        break;

    case 403:
        cli_error(cli, "%sforbidden (403): %s", pre,
                  msg ? msg : "the key may not do this");
        break;

    case 413:
        cli_error(cli, "%supload of %zu bytes is over the server's limit "
                  "(413 from %s: nginx's client_max_body_size)", pre,
                  x->upload_len, cli->api);
        break;

    case 500:
        if (msg != NULL) {
            cli_error(cli, "%s%s (500)", pre, msg);

        } else {
            /* nginx's own page: an upload it could not write, a full
               disk for one, is told only in its error log */
            cli_error(cli, "%sthe platform at %s failed (500) without "
                      "saying why: its operator finds the cause in "
                      "nginx's error log", pre, cli->api);
        }

        break;

    case 502:
    case 503:
    case 504:
        cli_error(cli, "%sthe platform at %s is unavailable (%ld): %s",
                  pre, cli->api, x->status,
                  msg ? msg : "no answer from the builder");
        break;

    default:
        if (msg != NULL) {
            cli_error(cli, "%s%s (%ld)", pre, msg, x->status);

        } else {
            cli_error(cli, "%s%s answered %ld: is %s a shuttle API?",
                      pre, x->url, x->status, cli->api);
        }
    }

    return CLI_API;
}


/* the "error" of a JSON answer, else NULL */

static const char *
cli_xfer_message(cli_xfer_t *x, char *buf, size_t size)
{
    json_t      *j;
    const char  *s;

    j = cli_xfer_json(x);
    s = cli_str(j, "error", NULL);

    if (s == NULL) {
        json_decref(j);
        return NULL;
    }

    snprintf(buf, size, "%s", s);
    json_decref(j);

    return buf;
}


/*
 * METHOD PATH with body (JSON, or NULL), expecting a 2xx JSON answer: the
 * answer, or NULL after saying what went wrong.  *status, when given, is
 * the answer's status (0 when none came).
 */

json_t *
cli_api_call(cli_t *cli, const char *what, const char *method,
    const char *path, json_t *body, long *status)
{
    char        *text;
    json_t      *j;
    cli_xfer_t   x;

    cli_xfer_init(cli, &x, 0, what, method, path);

    text = NULL;

    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        x.upload = text;
        x.upload_len = text ? strlen(text) : 0;
        x.headers = curl_slist_append(x.headers,
                                      "Content-Type: application/json");
    }

    if (cli_xfer_run(cli, &x) != 0) {
        cli_xfer_free(&x);
        free(text);
        return NULL;
    }

    free(text);

    if (status != NULL) {
        *status = x.result == CURLE_OK ? x.status : 0;
    }

    if (x.result != CURLE_OK || x.status < 200 || x.status > 299) {
        cli_xfer_fail(cli, &x);
        cli_xfer_free(&x);
        return NULL;
    }

    j = cli_xfer_json(&x);

    if (j == NULL) {
        cli_error(cli, "%s answered %ld without JSON: is %s a shuttle API?",
                  x.url, x.status, cli->api);
    }

    cli_xfer_free(&x);

    return j;
}


/*
 * GET path, its 2xx body into sink as it comes.  Returns CLI_OK, -1 when
 * interrupted, or CLI_API after saying what went wrong.
 */

int
cli_api_stream(cli_t *cli, const char *what, const char *path,
    cli_sink_pt sink, void *ctx)
{
    int          rc;
    cli_xfer_t   x;

    cli_xfer_init(cli, &x, 0, what, "GET", path);
    x.sink = sink;
    x.sink_ctx = ctx;

    if (cli_xfer_run(cli, &x) != 0) {
        cli_xfer_free(&x);
        return -1;
    }

    rc = CLI_OK;

    if (x.result != CURLE_OK || x.status < 200 || x.status > 299) {
        rc = cli_xfer_fail(cli, &x);
    }

    cli_xfer_free(&x);

    return rc;
}


static long long
cli_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
