
/*
 * Fuzz target: the API's answers as the CLI reads them (cli/api.c and the
 * commands that use them): the CLI's own main(), renamed cli_main(), runs
 * a command against a stand-in API on 127.0.0.1 that answers every
 * request with the input's bytes, raw: status line, headers, body.  libcurl
 * parses the HTTP; cli_api_call(), cli_xfer_fail() and the commands read
 * the status and the JSON (errors, projects, deployments, secrets, logs).
 *
 * The input's first byte picks the command (list, status, deployments,
 * logs, rollback, restart, scale, delete, secrets list/set/rm, login,
 * each with --api and --key); the rest is the answer.  A command must end
 * (the stand-in closes each connection after its answer) with an exit
 * status of the CLI's: 0 to 3.
 */


#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz.h"


#define FUZZ_CLIAPI_ARGS  8


int cli_main(int argc, char **argv);

static void fuzz_cliapi_start(void);
static void *fuzz_cliapi_serve(void *arg);
static void *fuzz_cliapi_answer_one(void *arg);


static const char  *fuzz_cliapi_commands[][FUZZ_CLIAPI_ARGS] = {
    { "list", NULL },
    { "list", "--json", NULL },
    { "status", "demo", NULL },
    { "deployments", "demo", NULL },
    { "deployments", "demo", "--json", NULL },
    { "logs", "demo", NULL },
    { "logs", "demo", "--build", "--deployment", "4", NULL },
    { "rollback", "demo", NULL },
    { "rollback", "demo", "3", NULL },
    { "restart", "demo", NULL },
    { "scale", "demo", "--idle", "5m", NULL },
    { "delete", "demo", "--yes", NULL },
    { "secrets", "list", "--name", "demo", NULL },
    { "secrets", "set", "A=1", "B=2", "--name", "demo", NULL },
    { "secrets", "rm", "A", "--name", "demo", NULL },
    { "login", NULL },
};

static pthread_mutex_t  fuzz_cliapi_mutex = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t   *fuzz_cliapi_answer;
static size_t           fuzz_cliapi_answer_len;
static int              fuzz_cliapi_fd = -1;
static char             fuzz_cliapi_url[64];


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           argc, rc;
    char         *argv[FUZZ_CLIAPI_ARGS + 6];
    size_t        i, ncommands;
    const char  **cmd;

    if (size == 0) {
        return 0;
    }

    fuzz_cliapi_start();

    ncommands = sizeof(fuzz_cliapi_commands)
                / sizeof(fuzz_cliapi_commands[0]);
    cmd = fuzz_cliapi_commands[data[0] % ncommands];

    argc = 0;
    argv[argc++] = (char *) "shuttle";
    argv[argc++] = (char *) "--api";
    argv[argc++] = fuzz_cliapi_url;
    argv[argc++] = (char *) "--key";
    argv[argc++] = (char *) "sk_fuzz";

    for (i = 0; cmd[i] != NULL; i++) {
        argv[argc++] = (char *) cmd[i];
    }

    argv[argc] = NULL;

    pthread_mutex_lock(&fuzz_cliapi_mutex);
    fuzz_cliapi_answer = data + 1;
    fuzz_cliapi_answer_len = size - 1;
    pthread_mutex_unlock(&fuzz_cliapi_mutex);

    optind = 0;
    rc = cli_main(argc, argv);

    if (rc < 0 || rc > 3) {
        abort();
    }

    return 0;
}


static void
fuzz_cliapi_start(void)
{
    int                 fd;
    socklen_t           len;
    pthread_t           t;
    struct sockaddr_in  sin;

    if (fuzz_cliapi_fd != -1) {
        return;
    }

    fuzz_std_fds();

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sin);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1
        || bind(fd, (struct sockaddr *) &sin, len) != 0
        || listen(fd, 16) != 0
        || getsockname(fd, (struct sockaddr *) &sin, &len) != 0)
    {
        perror("fuzz cliapi: listen");
        exit(2);
    }

    snprintf(fuzz_cliapi_url, sizeof(fuzz_cliapi_url),
             "http://127.0.0.1:%u", (unsigned) ntohs(sin.sin_port));

    fuzz_cliapi_fd = fd;

    /* the key comes with --key: nothing is read from the terminal */
    unsetenv("SHUTTLE_API");
    unsetenv("SHUTTLE_API_KEY");
    setenv("NO_COLOR", "1", 1);
    setenv("XDG_CONFIG_HOME", fuzz_dir(), 1);

    if (pthread_create(&t, NULL, fuzz_cliapi_serve, NULL) != 0) {
        exit(2);
    }

    pthread_detach(t);
}


/* a thread per connection: the CLI may hold one while it opens another */

static void *
fuzz_cliapi_serve(void *arg)
{
    int        c;
    pthread_t  t;

    for ( ;; ) {
        c = accept4(fuzz_cliapi_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c == -1) {
            continue;
        }

        if (pthread_create(&t, NULL, fuzz_cliapi_answer_one,
                           (void *) (intptr_t) c)
            != 0)
        {
            close(c);
            continue;
        }

        pthread_detach(t);
    }

    return NULL;
}


/* the request's head read (a body after it is not), the answer sent */

static void *
fuzz_cliapi_answer_one(void *arg)
{
    int       c;
    char     *answer, buf[16384];
    size_t    have, len;
    ssize_t   n;

    c = (int) (intptr_t) arg;
    have = 0;

    while (have < sizeof(buf) - 1) {
        n = read(c, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0) {
            break;
        }

        have += n;
        buf[have] = '\0';

        if (strstr(buf, "\r\n\r\n") != NULL) {
            break;
        }
    }

    /* a copy: the input is the fuzzer's only while the command runs */

    pthread_mutex_lock(&fuzz_cliapi_mutex);
    len = fuzz_cliapi_answer_len;
    answer = malloc(len ? len : 1);

    if (answer != NULL) {
        memcpy(answer, fuzz_cliapi_answer, len);
    }

    pthread_mutex_unlock(&fuzz_cliapi_mutex);

    if (answer != NULL) {
        (void) send(c, answer, len, MSG_NOSIGNAL);
        free(answer);
    }

    (void) shutdown(c, SHUT_WR);

    /* until the CLI closes: the answer is not cut by a reset */
    while (read(c, buf, sizeof(buf)) > 0) {
        /* void */
    }

    close(c);

    return NULL;
}
