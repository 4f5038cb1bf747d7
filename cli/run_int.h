
/*
 * shuttle run's own header, for its files only: a run's record, the
 * output relays, and the functions its files share.
 *
 *   run.c           the command: options, the scratch directory, the run
 *   run_copy.c      the project copied into the scratch directory, and
 *                   the scratch directory removed
 *   run_io.c        the build's and the loader's output relayed to the
 *                   terminal, control characters shown
 *   run_serve.c     the loader: its paths, spawned (sandboxed or not),
 *                   served until a signal; PostgreSQL and the resources
 */

#ifndef SHUTTLE_BUILDER_RUN_INT_H
#define SHUTTLE_BUILDER_RUN_INT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build.h"
#include "cli.h"
#include "resources.h"


#define CLI_RUN_PORT       8000
#define CLI_RUN_MAX_DEPTH  64
#define CLI_RUN_SIGNALLED  (-1)     /* cli_run_scratch(): raise the signal */


typedef struct {
    const char          *top;        /* the project, never given to it */
    const char          *name;
    const char          *include;
    const char          *loader;
    const char          *postgres;
    char                 scratch[PATH_MAX];  /* NAME.XXXXXX */
    char                 src[PATH_MAX + 8];  /* scratch/src: the copy */
    char                 so[PATH_MAX + 16];  /* scratch/service.so */
    char                 sqlite[PATH_MAX + 32];  /* DIR/.shuttle/sqlite,
                                                    or "" */
    char                 pgdir[PATH_MAX];    /* --postgres's socket
                                                directory, or "" */
    long                 port;
    int                  nosandbox;
} cli_run_t;


/* one output of the tenant's, relayed to one of ours */
typedef struct {
    int                  from;       /* the pipe's read end, or -1 */
    int                  to;         /* STDOUT_FILENO, STDERR_FILENO */
    int                  tty;        /* "to" is a terminal: ^X */
    int                  c2;         /* the last byte was 0xc2 */
    int                  stop;       /* the thread's: an eventfd, or -1 */
} cli_relay_t;

/* shared between the files of this part */

int cli_run_copy(cli_t *cli, cli_run_t *r);
void cli_run_remove(int dfd, const char *name, int depth);
int cli_run_pipe(cli_t *cli, cli_relay_t *rl, int to, int *wfd);
int cli_run_relay(cli_relay_t *rl, int drain);
void *cli_run_relay_thread(void *arg);
void cli_run_unsafe(const char *why);
int cli_run_paths(cli_t *cli, char *include, char *loader,
    size_t size);
pid_t cli_run_loader(const char *loader, const char *listen,
    const char *name, const char *so, int ready_fd, int res_fd,
    const int *out, const sigset_t *mask);
pid_t cli_run_sandboxed(cli_t *cli, shuttle_sandbox_t *sb,
    cli_run_t *r, const char *addr, int ready_fd, int res_fd,
    const int *out, const sigset_t *mask);
int cli_run_serve(cli_t *cli, pid_t pid, int ready_fd, int sfd,
    int port, int sandboxed, cli_relay_t *out);
int cli_run_postgres(cli_t *cli, cli_run_t *r, int sandboxed);
int cli_run_resources(cli_t *cli, cli_run_t *r, int *fd);


#endif /* SHUTTLE_BUILDER_RUN_INT_H */
