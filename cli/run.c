
/*
 * shuttle run [DIR] [--port N] [--no-sandbox]: the project built with the
 * builder's own rules (builder/build/) and served by shuttle-loader on
 * 127.0.0.1:PORT in the foreground.
 *
 * The project is the tenant's, hostile until proven otherwise (a cloned
 * repository's Makefile): its folder is never given to it.  What
 * "shuttle deploy" would upload (pack.c's rules: never .git, .shuttle/,
 * Secrets.json, what .shuttleignore lists), less every dot folder, is
 * copied into a scratch directory of its own ($XDG_CACHE_HOME/shuttle/run/
 * NAME.XXXXXX, else ~/.cache/..., else $TMPDIR/shuttle-run-UID/...; that
 * folder the caller's own, writable by no one else), built there into
 * service.so beside the copy, served from there read-only, and removed
 * when the run ends.  The one folder of the project the service writes
 * is its SQLite data, DIR/.shuttle/sqlite/, when it declares some.
 *
 * Both run in the platform's sandbox (builder/sandbox/sandbox.h), the
 * unprivileged way: a user namespace mapping the caller to itself, so the
 * project sees /usr, its copy and little else, a build has no network
 * and a service may not bind: this process binds the port and hands the
 * loader the socket, as the builder does.  A service has a network of its
 * own (sandbox.c): PostgreSQL is reached through its socket directory,
 * bound in.  Where the kernel gives no user namespace (or --no-sandbox),
 * it says loudly what is then not protected and runs them as they are.
 *
 * Neither sees the terminal: stdin is /dev/null, stdout and stderr are
 * pipes this process relays, control characters shown as ^X when they
 * go to a terminal, and each runs in a session of its own (no
 * controlling terminal: /dev/tty does not open).
 *
 * The loader runs in its own process group with a readiness pipe, so
 * the terminal's Ctrl-C reaches this process alone, which passes each
 * signal on once: the first drains the loader, a second cuts it.  The
 * loader dies with this process (PR_SET_PDEATHSIG).
 */


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


static int cli_run_scratch(cli_t *cli, cli_run_t *r);
static int cli_run_copy(cli_t *cli, cli_run_t *r);
static int cli_run_copy_dir(cli_t *cli, cli_ignore_t *ig, const char *from,
    const char *to, const char *rel, int depth);
static int cli_run_copy_file(cli_t *cli, const char *from, const char *to,
    const struct stat *st);
static void cli_run_remove(int dfd, const char *name, int depth);
static int cli_run_pipe(cli_t *cli, cli_relay_t *rl, int to, int *wfd);
static int cli_run_relay(cli_relay_t *rl, int drain);
static void *cli_run_relay_thread(void *arg);
static void cli_run_write(cli_relay_t *rl, const char *buf, size_t n);
static void cli_run_write_all(int fd, const char *buf, size_t n);
static void cli_run_unsafe(const char *why);
static int cli_run_paths(cli_t *cli, char *include, char *loader,
    size_t size);
static int cli_run_postgres(cli_t *cli, cli_run_t *r, int sandboxed);
static int cli_run_resources(cli_t *cli, cli_run_t *r, int *fd);
static pid_t cli_run_loader(const char *loader, const char *listen,
    const char *name, const char *so, int ready_fd, int res_fd,
    const int *out, const sigset_t *mask);
static pid_t cli_run_sandboxed(cli_t *cli, shuttle_sandbox_t *sb,
    cli_run_t *r, const char *addr, int ready_fd, int res_fd,
    const int *out, const sigset_t *mask);
static int cli_run_serve(cli_t *cli, pid_t pid, int ready_fd, int sfd,
    int port, int sandboxed, cli_relay_t *out);


int
cli_run(cli_t *cli, int argc, char **argv)
{
    int                   c, rc;
    char                  include[PATH_MAX], loader[PATH_MAX],
                          top[PATH_MAX], err[1024], name[64], *end;
    cli_run_t             r;
    const char           *dir;
    shuttle_manifest_t    m;
    static struct option  opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "postgres", required_argument, NULL, 'P' },
        { "no-sandbox", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 }
    };

    memset(&r, 0, sizeof(r));
    r.port = CLI_RUN_PORT;

    while ((c = cli_getopt(cli, argc, argv, "p:", opts)) != -1) {
        if (c == 'P') {
            r.postgres = optarg;
            continue;
        }

        if (c == 'S') {
            r.nosandbox = 1;
            continue;
        }

        r.port = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || r.port < 1
            || r.port > 65535)
        {
            return cli_usage_error(cli, "\"%s\" is not a port number",
                                   optarg);
        }
    }

    if (argc - optind > 1) {
        return cli_usage_error(cli, "one directory at most");
    }

    dir = optind < argc ? argv[optind] : ".";

    if (realpath(dir, top) == NULL) {
        return cli_usage_error(cli, "%s: %s", dir, strerror(errno));
    }

    if (shuttle_manifest_read(top, &m, err, sizeof(err)) != 0) {
        cli_error(cli, "%s/%s", dir, err);
        return CLI_USAGE;
    }

    snprintf(name, sizeof(name), "%s", m.name ? m.name : basename(top));
    shuttle_manifest_free(&m);

    if (cli_run_paths(cli, include, loader, PATH_MAX) != CLI_OK) {
        return CLI_USAGE;
    }

    r.top = top;
    r.name = name;
    r.include = include;
    r.loader = loader;

    cli_on_interrupt();

    rc = cli_run_copy(cli, &r);

    if (rc == CLI_OK) {
        rc = cli_run_scratch(cli, &r);
    }

    if (r.scratch[0] != '\0') {
        cli_run_remove(AT_FDCWD, r.scratch, 0);
    }

    if (rc == CLI_RUN_SIGNALLED || (rc != CLI_OK && cli_interrupted)) {
        signal(cli_interrupted, SIG_DFL);
        raise(cli_interrupted);
        return CLI_FAILED;
    }

    return rc;
}


/* the build and the service, in the scratch directory made */

static int
cli_run_scratch(cli_t *cli, cli_run_t *r)
{
    int                   c, sfd, rc, fds[2], resfd, logfd, out[2];
    char                  err[1024], listen[64];
    pid_t                 pid;
    sigset_t              mask, old, all;
    pthread_t             relay;
    struct timespec       t0, t1;
    cli_relay_t           rl, outs[2];
    shuttle_bind_t        binds[2];
    shuttle_spawn_t       sp;
    shuttle_limits_t      limits;
    shuttle_sandbox_t    *sb;
    shuttle_build_opts_t  o;

    sb = NULL;

    if (!r->nosandbox) {
        sb = shuttle_sandbox_create("shuttle-run", SHUTTLE_SANDBOX_USERNS,
                                    err, sizeof(err));
        if (sb == NULL) {
            fprintf(stderr, "shuttle run: no sandbox here (%s)\n", err);
            cli_run_unsafe("this kernel gives no user namespace");
        }

    } else {
        cli_run_unsafe("--no-sandbox");
    }

    if (cli_run_postgres(cli, r, sb != NULL) != CLI_OK) {
        return CLI_USAGE;
    }

    /*
     * The build: its output through a pipe relayed by a thread (signals
     * blocked there), Ctrl-C cancels it.
     */

    if (cli_run_pipe(cli, &rl, STDERR_FILENO, &logfd) != CLI_OK) {
        return CLI_FAILED;
    }

    rl.stop = eventfd(0, EFD_CLOEXEC);
    rc = rl.stop == -1 ? errno : 0;

    if (rc == 0) {
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&relay, NULL, cli_run_relay_thread, &rl);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }

    if (rc != 0) {
        cli_error(cli, "cannot relay the build's output: %s", strerror(rc));
        close(logfd);
        close(rl.from);
        if (rl.stop != -1) {
            close(rl.stop);
        }
        return CLI_FAILED;
    }

    memset(&o, 0, sizeof(o));
    o.src_dir = r->src;
    o.out = r->so;
    o.include_dir = r->include;
    o.log_fd = logfd;
    o.cancel = (volatile int *) &cli_interrupted;

    if (sb != NULL) {
        memset(&limits, 0, sizeof(limits));
        limits.nofile = SHUTTLE_LIMIT_NOFILE;

        memset(&sp, 0, sizeof(sp));
        sp.project = r->name;
        sp.limits = &limits;
        sp.die_with_parent = 1;

        binds[0].path = r->src;
        binds[0].rw = 1;
        binds[0].optional = 0;
        binds[1].path = r->include;
        binds[1].rw = 0;
        binds[1].optional = 0;

        sp.binds = binds;
        sp.nbinds = 2;

        o.sandbox = sb;
        o.spawn = &sp;
    }

    fprintf(stderr, "Building %s (a copy in %s)\n", r->top, r->scratch);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    rc = shuttle_build(&o, err, sizeof(err));

    /* what the build wrote, to the last byte, before anything else */
    close(logfd);
    (void) eventfd_write(rl.stop, 1);
    pthread_join(relay, NULL);
    close(rl.from);
    close(rl.stop);

    if (rc != 0) {
        if (cli_interrupted) {
            return CLI_RUN_SIGNALLED;
        }

        cli_error(cli, "%s: %s", r->name, err);
        return CLI_FAILED;
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "Built %s in %.2f s\n", r->so,
            (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

    /* the resources it declares, provisioned here: under .shuttle/ */

    if (cli_run_resources(cli, r, &resfd) != CLI_OK) {
        return CLI_FAILED;
    }

    /* the loader: signals from here on are read from a signalfd */

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);

    if (sigprocmask(SIG_BLOCK, &mask, &old) != 0
        || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) == -1)
    {
        cli_error(cli, "signalfd: %s", strerror(errno));
        return CLI_FAILED;
    }

    if (cli_interrupted) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return CLI_RUN_SIGNALLED;
    }

    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_error(cli, "pipe: %s", strerror(errno));
        return CLI_FAILED;
    }

    /* its stdout and stderr: pipes, relayed by cli_run_serve() */

    if (cli_run_pipe(cli, &outs[0], STDOUT_FILENO, &out[0]) != CLI_OK) {
        return CLI_FAILED;
    }

    if (cli_run_pipe(cli, &outs[1], STDERR_FILENO, &out[1]) != CLI_OK) {
        return CLI_FAILED;
    }

    snprintf(listen, sizeof(listen), "127.0.0.1:%ld", r->port);

    pid = sb != NULL ? cli_run_sandboxed(cli, sb, r, listen, fds[1], resfd,
                                         out, &old)
                     : cli_run_loader(r->loader, listen, r->name, r->so,
                                      fds[1], resfd, out, &old);
    close(fds[1]);
    close(out[0]);
    close(out[1]);

    if (resfd != -1) {
        close(resfd);
    }

    if (pid == -1) {
        if (sb == NULL) {
            cli_error(cli, "cannot start %s: %s", r->loader,
                      strerror(errno));
        }

        close(fds[0]);
        close(outs[0].from);
        close(outs[1].from);
        return CLI_FAILED;
    }

    rc = cli_run_serve(cli, pid, fds[0], sfd, (int) r->port, sb != NULL,
                       outs);

    for (c = 0; c < 2; c++) {
        if (outs[c].from != -1) {
            close(outs[c].from);
        }
    }

    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);

    return rc;
}


/*
 * What "shuttle deploy" would upload, less the dot folders, copied into
 * a new scratch directory: r->scratch, r->src and r->so set.
 */

static int
cli_run_copy(cli_t *cli, cli_run_t *r)
{
    int            rc;
    char           base[PATH_MAX], err[1024], *p, c;
    const char    *env;
    struct stat    st;
    cli_ignore_t  *ig;

    if ((env = getenv("XDG_CACHE_HOME")) != NULL && env[0] == '/') {
        snprintf(base, sizeof(base), "%s/shuttle/run", env);

    } else if ((env = getenv("HOME")) != NULL && env[0] == '/') {
        snprintf(base, sizeof(base), "%s/.cache/shuttle/run", env);

    } else {
        env = getenv("TMPDIR");
        snprintf(base, sizeof(base), "%s/shuttle-run-%lu",
                 env != NULL && env[0] == '/' ? env : "/tmp",
                 (unsigned long) getuid());
    }

    /* mkdir -p, 0700 for what it makes */

    for (p = base + 1; ; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }

        c = *p;
        *p = '\0';

        if (mkdir(base, 0700) != 0 && errno != EEXIST) {
            cli_error(cli, "cannot create %s: %s", base, strerror(errno));
            return CLI_USAGE;
        }

        *p = c;

        if (c == '\0') {
            break;
        }
    }

    /* where no one else may swap what is made in it (a shared /tmp) */

    if (lstat(base, &st) != 0 || !S_ISDIR(st.st_mode)
        || st.st_uid != geteuid() || (st.st_mode & 022) != 0)
    {
        cli_error(cli, "%s is not a folder of yours that only you can "
                  "write: refused for the scratch copy", base);
        return CLI_USAGE;
    }

    if ((size_t) snprintf(r->scratch, sizeof(r->scratch), "%s/%s.XXXXXX",
                          base, r->name)
        >= sizeof(r->scratch)
        || mkdtemp(r->scratch) == NULL)
    {
        cli_error(cli, "cannot create a scratch directory in %s: %s", base,
                  strerror(errno));
        r->scratch[0] = '\0';
        return CLI_USAGE;
    }

    snprintf(r->src, sizeof(r->src), "%s/src", r->scratch);
    snprintf(r->so, sizeof(r->so), "%s/service.so", r->scratch);

    if (mkdir(r->src, 0755) != 0) {
        cli_error(cli, "cannot create %s: %s", r->src, strerror(errno));
        return CLI_USAGE;
    }

    ig = cli_ignore_load(r->top, err, sizeof(err));
    if (ig == NULL) {
        cli_error(cli, "%s", err);
        return CLI_USAGE;
    }

    rc = cli_run_copy_dir(cli, ig, r->top, r->src, "", 0);

    cli_ignore_free(ig);

    return rc;
}


/* pack.c's walk, into files: the same choices, the same refusals */

static int
cli_run_copy_dir(cli_t *cli, cli_ignore_t *ig, const char *from,
    const char *to, const char *rel, int depth)
{
    int              n, i, rc, is_dir;
    char             path[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
    const char      *kind;
    struct stat      st;
    struct dirent  **names;

    if (depth > CLI_RUN_MAX_DEPTH) {
        cli_error(cli, "%s: more than %d directories deep", rel,
                  CLI_RUN_MAX_DEPTH);
        return CLI_USAGE;
    }

    snprintf(src, sizeof(src), "%s%s%s", from, rel[0] ? "/" : "", rel);

    n = scandir(src, &names, NULL, alphasort);
    if (n < 0) {
        cli_error(cli, "%s: %s", src, strerror(errno));
        return CLI_USAGE;
    }

    rc = CLI_OK;

    for (i = 0; i < n; i++) {
        if (cli_interrupted) {
            rc = CLI_FAILED;                /* cli_run() raises it */
        }

        if (rc != CLI_OK || strcmp(names[i]->d_name, ".") == 0
            || strcmp(names[i]->d_name, "..") == 0)
        {
            free(names[i]);
            continue;
        }

        if ((size_t) snprintf(path, sizeof(path), "%s%s%s", rel,
                              rel[0] ? "/" : "", names[i]->d_name)
            >= sizeof(path)
            || (size_t) snprintf(src, sizeof(src), "%s/%s", from, path)
               >= sizeof(src)
            || (size_t) snprintf(dst, sizeof(dst), "%s/%s", to, path)
               >= sizeof(dst))
        {
            cli_error(cli, "%s/%s: path too long", rel, names[i]->d_name);
            rc = CLI_USAGE;
            free(names[i]);
            continue;
        }

        if (lstat(src, &st) != 0) {
            cli_error(cli, "%s: %s", src, strerror(errno));
            rc = CLI_USAGE;
            free(names[i]);
            continue;
        }

        is_dir = S_ISDIR(st.st_mode);

        /* what deploy leaves out, and every dot folder (.git, .vscode) */

        if (cli_ignore_match(ig, path, is_dir)
            || (is_dir && names[i]->d_name[0] == '.'))
        {
            free(names[i]);
            continue;
        }

        free(names[i]);

        if (is_dir) {
            if (mkdir(dst, 0755) != 0) {
                cli_error(cli, "cannot create %s: %s", dst, strerror(errno));
                rc = CLI_USAGE;
                continue;
            }

            rc = cli_run_copy_dir(cli, ig, from, to, path, depth + 1);
            continue;
        }

        if (S_ISREG(st.st_mode)) {
            rc = cli_run_copy_file(cli, src, dst, &st);
            continue;
        }

        kind = S_ISLNK(st.st_mode) ? "a symbolic link"
               : S_ISFIFO(st.st_mode) ? "a FIFO"
               : S_ISSOCK(st.st_mode) ? "a socket" : "a device";

        cli_error(cli, "%s is %s: the platform takes regular files and "
                  "directories only (replace it with what it points to, or "
                  "list it in .shuttleignore)", path, kind);
        rc = CLI_USAGE;
    }

    free(names);

    return rc;
}


static int
cli_run_copy_file(cli_t *cli, const char *from, const char *to,
    const struct stat *st)
{
    int      in, out, rc;
    char     buf[65536];
    ssize_t  n;

    in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in == -1) {
        cli_error(cli, "%s: %s", from, strerror(errno));
        return CLI_USAGE;
    }

    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
               (st->st_mode & 0111) ? 0755 : 0644);
    if (out == -1) {
        cli_error(cli, "cannot create %s: %s", to, strerror(errno));
        close(in);
        return CLI_USAGE;
    }

    rc = CLI_OK;

    /* in the kernel (a reflink where the filesystem has them), else by
     * hand */

    do {
        n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    } while (n > 0);

    if (n == -1 && errno != EXDEV && errno != ENOSYS && errno != EINVAL
        && errno != EOPNOTSUPP)
    {
        cli_error(cli, "%s to %s: %s", from, to, strerror(errno));
        rc = CLI_USAGE;
    }

    while (rc == CLI_OK && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 || write(out, buf, n) != n) {
            cli_error(cli, "%s to %s: %s", from, to,
                      n < 0 ? strerror(errno) : "cannot write");
            rc = CLI_USAGE;
            break;
        }
    }

    close(in);

    if (close(out) != 0 && rc == CLI_OK) {
        cli_error(cli, "%s: %s", to, strerror(errno));
        rc = CLI_USAGE;
    }

    return rc;
}


/*
 * rm -rf name (from dfd), whatever modes the build left: a directory is
 * made 0700 before it is read.  Symbolic links are removed, not
 * followed.
 */

static void
cli_run_remove(int dfd, const char *name, int depth)
{
    int             fd;
    DIR            *d;
    struct dirent  *de;

    if (unlinkat(dfd, name, 0) == 0 || errno != EISDIR
        || depth > CLI_RUN_MAX_DEPTH * 2)
    {
        return;
    }

    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1 && errno == EACCES
        && fchmodat(dfd, name, 0700, 0) == 0)
    {
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                               | O_CLOEXEC);
    }

    if (fd == -1) {
        return;
    }

    (void) fchmod(fd, 0700);

    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }

    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            cli_run_remove(fd, de->d_name, depth + 1);
        }
    }

    closedir(d);

    (void) unlinkat(dfd, name, AT_REMOVEDIR);
}


/* a pipe for one of the tenant's outputs: *wfd its write end, to give */

static int
cli_run_pipe(cli_t *cli, cli_relay_t *rl, int to, int *wfd)
{
    int  fds[2];

    memset(rl, 0, sizeof(cli_relay_t));
    rl->from = -1;
    rl->stop = -1;
    rl->to = to;
    rl->tty = isatty(to);

    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_error(cli, "pipe: %s", strerror(errno));
        return CLI_FAILED;
    }

    /* ours alone non-blocking: the write end is another description */
    (void) fcntl(fds[0], F_SETFL, O_NONBLOCK);

    rl->from = fds[0];
    *wfd = fds[1];

    return CLI_OK;
}


/*
 * Reads what is there (all of it with drain: until nothing is left,
 * without waiting).  0 while the pipe is open, -1 once it is done.
 */

static int
cli_run_relay(cli_relay_t *rl, int drain)
{
    char     buf[16384];
    ssize_t  n;

    for ( ;; ) {
        n = read(rl->from, buf, sizeof(buf));

        if (n > 0) {
            cli_run_write(rl, buf, n);

            if (drain) {
                continue;
            }

            return 0;
        }

        if (n == -1 && errno == EINTR) {
            continue;
        }

        return n == -1 && errno == EAGAIN && !drain ? 0 : -1;
    }
}


/* the build's: until the pipe ends, or stop says the build is over */

static void *
cli_run_relay_thread(void *arg)
{
    cli_relay_t    *rl;
    struct pollfd   pfd[2];

    rl = arg;

    pfd[0].fd = rl->from;
    pfd[0].events = POLLIN;
    pfd[1].fd = rl->stop;
    pfd[1].events = POLLIN;

    for ( ;; ) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }

            break;
        }

        if (pfd[1].revents) {
            /* the build is over: what it left, and no waiting for a
             * process that escaped it (no sandbox) and holds the pipe */
            (void) cli_run_relay(rl, 1);
            break;
        }

        if (pfd[0].revents && cli_run_relay(rl, 0) != 0) {
            break;
        }
    }

    return NULL;
}


/*
 * The tenant's bytes to our stdout or stderr; to a terminal, its control
 * characters (C0 but tab and newline, DEL, C1 as UTF-8) as ^X or ?, so
 * that no escape sequence of theirs drives the terminal.
 */

static void
cli_run_write(cli_relay_t *rl, const char *buf, size_t n)
{
    char           out[16384 * 2 + 4];
    size_t         i, k;
    unsigned char  c;

    if (!rl->tty) {
        cli_run_write_all(rl->to, buf, n);
        return;
    }

    k = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) buf[i];

        if (rl->c2) {
            rl->c2 = 0;

            if (c >= 0x80 && c <= 0x9f) {
                out[k++] = '?';
                continue;
            }

            out[k++] = (char) 0xc2;
        }

        if (c == 0xc2) {
            rl->c2 = 1;

        } else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            out[k++] = '^';
            out[k++] = c == 0x7f ? '?' : (char) (c + '@');

        } else {
            out[k++] = (char) c;
        }

        if (k > sizeof(out) - 4) {
            cli_run_write_all(rl->to, out, k);
            k = 0;
        }
    }

    cli_run_write_all(rl->to, out, k);
}


static void
cli_run_write_all(int fd, const char *buf, size_t n)
{
    ssize_t  w;

    while (n > 0) {
        w = write(fd, buf, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }

            return;
        }

        buf += w;
        n -= w;
    }
}


static void
cli_run_unsafe(const char *why)
{
    fprintf(stderr,
        "shuttle run: WARNING: NO SANDBOX (%s). The project's Makefile and "
        "its service run as you, with your rights: they can read and write "
        "all your files (this project's .git included, whose config and "
        "hooks git runs), open your terminal's device, reach every port "
        "and socket of this machine and the network, and signal your "
        "processes. Run only a project you trust this way.\n", why);
}


/*
 * Beside this program, the SDK header for the build (the first of
 * ../include, ../../include and /usr/local/include holding shuttle.h:
 * installed, or in the source tree) and shuttle-loader.
 */

static int
cli_run_paths(cli_t *cli, char *include, char *loader, size_t size)
{
    int          i;
    char         exe[PATH_MAX], *dir, header[PATH_MAX + 16];
    ssize_t      n;
    const char  *candidates[3];

    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0) {
        cli_error(cli, "cannot find this program: /proc/self/exe: %s",
                  strerror(errno));
        return CLI_USAGE;
    }

    exe[n] = '\0';
    dir = dirname(exe);

    candidates[0] = "%s/../include";
    candidates[1] = "%s/../../include";
    candidates[2] = "/usr/local/include";

    include[0] = '\0';

    for (i = 0; i < 3; i++) {
        snprintf(header, sizeof(header), candidates[i], dir);

        if (realpath(header, include) != NULL
            && snprintf(header, sizeof(header), "%s/shuttle.h", include) > 0
            && access(header, R_OK) == 0)
        {
            break;
        }

        include[0] = '\0';
    }

    if (include[0] == '\0') {
        cli_error(cli, "cannot find shuttle.h in %s/../include, "
                  "%s/../../include or /usr/local/include: is shuttle "
                  "installed (make install)?", dir, dir);
        return CLI_USAGE;
    }

    snprintf(loader, size, "%s/shuttle-loader", dir);

    if (access(loader, X_OK) != 0) {
        cli_error(cli, "cannot run %s: %s; is shuttle installed (make "
                  "install)?", loader, strerror(errno));
        return CLI_USAGE;
    }

    return CLI_OK;
}


static pid_t
cli_run_loader(const char *loader, const char *listen, const char *name,
    const char *so, int ready_fd, int res_fd, const int *out,
    const sigset_t *mask)
{
    int     fd;
    char   *argv[12];
    pid_t   pid, parent;

    parent = getpid();

    pid = fork();
    if (pid != 0) {
        return pid;
    }

    /*
     * the child: a session of its own (no controlling terminal), gone
     * when its parent is; stdout and stderr the pipes
     */

    setsid();

    if (dup2(out[0], STDOUT_FILENO) == -1
        || dup2(out[1], STDERR_FILENO) == -1)
    {
        _exit(1);
    }

    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
        _exit(1);
    }

    fd = open("/dev/null", O_RDONLY);
    if (fd > 0) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }

    /* the pipe as fd 3, kept across exec */
    if (ready_fd != 3) {
        if (dup2(ready_fd, 3) == -1) {
            _exit(1);
        }

    } else {
        fcntl(3, F_SETFD, 0);
    }

    /* the resources as fd 4 */
    if (res_fd != -1 && dup2(res_fd, 4) == -1) {
        _exit(1);
    }

    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);

    argv[0] = (char *) "shuttle-loader";
    argv[1] = (char *) "--listen";
    argv[2] = (char *) listen;
    argv[3] = (char *) "--ready-fd";
    argv[4] = (char *) "3";
    argv[5] = (char *) "--name";
    argv[6] = (char *) name;

    if (res_fd != -1) {
        argv[7] = (char *) "--resources-fd";
        argv[8] = (char *) "4";
        argv[9] = (char *) so;
        argv[10] = NULL;

    } else {
        argv[7] = (char *) so;
        argv[8] = NULL;
    }

    execv(loader, argv);

    fprintf(stderr, "shuttle run: cannot run %s: %s\n", loader,
            strerror(errno));
    _exit(127);
}


/*
 * The loader in the sandbox: the socket bound here (a service may not
 * bind), the scratch directory (the copy and service.so) read-only, the
 * loader program, its SQLite folder and PostgreSQL's socket directories
 * to see.
 */

static pid_t
cli_run_sandboxed(cli_t *cli, shuttle_sandbox_t *sb, cli_run_t *r,
    const char *addr, int ready_fd, int res_fd, const int *out,
    const sigset_t *mask)
{
    int                 fd, one, fds[6];
    char               *argv[12], err[1024];
    pid_t               pid;
    size_t              n;
    shuttle_bind_t      binds[6];
    shuttle_spawn_t     sp;
    shuttle_limits_t    limits;
    struct sockaddr_in  sa;

    char  *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                      NULL };

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t) atoi(strchr(addr, ':') + 1));
    one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1
        || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(fd, 511) != 0)
    {
        cli_error(cli, "the loader did not start: cannot listen on %s: %s",
                  addr, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    n = 0;
    argv[n++] = "shuttle-loader";
    argv[n++] = "--listen-fd";
    argv[n++] = "3";
    argv[n++] = "--ready-fd";
    argv[n++] = "4";
    argv[n++] = "--name";
    argv[n++] = (char *) r->name;

    if (res_fd != -1) {
        argv[n++] = "--resources-fd";
        argv[n++] = "5";
    }

    argv[n++] = r->so;
    argv[n] = NULL;

    fds[0] = -1;
    fds[1] = out[0];
    fds[2] = out[1];
    fds[3] = fd;
    fds[4] = ready_fd;
    fds[5] = res_fd;

    memset(&limits, 0, sizeof(limits));
    limits.nofile = SHUTTLE_LIMIT_NOFILE;

    n = 0;
    binds[n].path = r->scratch;
    binds[n].rw = 0;
    binds[n++].optional = 0;
    binds[n].path = r->loader;
    binds[n].rw = 0;
    binds[n++].optional = 0;

    if (r->sqlite[0] != '\0') {
        binds[n].path = r->sqlite;
        binds[n].rw = 1;
        binds[n++].optional = 0;
    }

    if (r->pgdir[0] != '\0') {
        binds[n].path = r->pgdir;
        binds[n].rw = 0;
        binds[n++].optional = 0;
    }

    binds[n].path = "/run/postgresql";
    binds[n].rw = 0;
    binds[n++].optional = 1;
    binds[n].path = "/var/run/postgresql";
    binds[n].rw = 0;
    binds[n++].optional = 1;

    memset(&sp, 0, sizeof(sp));
    sp.kind = SHUTTLE_SANDBOX_SERVICE;
    sp.project = r->name;
    sp.limits = &limits;
    sp.binds = binds;
    sp.nbinds = n;
    sp.cwd = r->src;
    sp.fds = fds;
    sp.nfds = res_fd != -1 ? 6 : 5;
    sp.setsid = 1;
    sp.die_with_parent = 1;

    (void) mask;

    if (shuttle_sandbox_spawn(sb, &sp, r->loader, argv, envp, &pid, err,
                              sizeof(err))
        != 0)
    {
        cli_error(cli, "the loader did not start: %s", err);
        close(fd);
        return -1;
    }

    close(fd);

    return pid;
}


/*
 * Waits for the loader's "ready" (or "error: ..."), passing signals on,
 * until it exits.  Returns the exit code of shuttle run.
 */

static int
cli_run_serve(cli_t *cli, pid_t pid, int ready_fd, int sfd, int port,
    int sandboxed, cli_relay_t *out)
{
    int                       status, ready, stopping, nfds, ri, oi[2], i;
    char                      buf[1024], *nl;
    size_t                    len;
    ssize_t                   n;
    struct pollfd             pfd[4];
    struct signalfd_siginfo   si;

    ready = 0;
    stopping = 0;
    len = 0;

    for ( ;; ) {
        nfds = 0;

        pfd[nfds].fd = sfd;
        pfd[nfds].events = POLLIN;
        nfds++;

        ri = -1;

        if (ready_fd != -1) {
            ri = nfds;
            pfd[nfds].fd = ready_fd;
            pfd[nfds].events = POLLIN;
            nfds++;
        }

        /* the loader's stdout and stderr, relayed */

        for (i = 0; i < 2; i++) {
            oi[i] = -1;

            if (out[i].from != -1) {
                oi[i] = nfds;
                pfd[nfds].fd = out[i].from;
                pfd[nfds].events = POLLIN;
                nfds++;
            }
        }

        if (poll(pfd, nfds, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }

            cli_error(cli, "poll: %s", strerror(errno));
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return CLI_FAILED;
        }

        for (i = 0; i < 2; i++) {
            if (oi[i] != -1 && pfd[oi[i]].revents
                && cli_run_relay(&out[i], 0) != 0)
            {
                close(out[i].from);
                out[i].from = -1;
            }
        }

        if (ri != -1 && pfd[ri].revents) {
            n = read(ready_fd, buf + len, sizeof(buf) - 1 - len);

            if (n > 0) {
                len += n;
                buf[len] = '\0';

                nl = strchr(buf, '\n');
                if (nl != NULL || len == sizeof(buf) - 1) {
                    if (nl != NULL) {
                        *nl = '\0';
                    }

                    if (strcmp(buf, "ready") == 0) {
                        ready = 1;
                        fprintf(stderr, "Serving on http://127.0.0.1:%d/ "
                                "(Ctrl-C stops)\n", port);
                        printf("http://127.0.0.1:%d/\n", port);
                        fflush(stdout);

                    } else {
                        cli_error(cli, "the loader did not start: %s",
                                  strncmp(buf, "error: ", 7) == 0
                                  ? buf + 7 : buf);
                    }

                    close(ready_fd);
                    ready_fd = -1;
                }

            } else if (n == 0 || errno != EINTR) {
                close(ready_fd);
                ready_fd = -1;
            }
        }

        if (pfd[0].revents == 0) {
            continue;
        }

        if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
            continue;
        }

        if (si.ssi_signo != SIGCHLD) {
            /* each signal once to the loader: a second one cuts it */
            if (!stopping) {
                fprintf(stderr, "\nStopping (again to cut the requests in "
                        "flight)\n");
            }

            stopping = 1;
            kill(pid, si.ssi_signo);
            continue;
        }

        if (waitpid(pid, &status, WNOHANG) != pid) {
            continue;
        }

        /* what it wrote last, without waiting on anything it left */

        for (i = 0; i < 2; i++) {
            if (out[i].from != -1) {
                (void) cli_run_relay(&out[i], 1);
            }
        }

        if (sandboxed) {
            status = shuttle_sandbox_status(status);
        }

        if (ready_fd != -1) {
            close(ready_fd);
        }

        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && ready) {
            fprintf(stderr, "Stopped\n");
            return CLI_OK;
        }

        if (ready || !WIFEXITED(status) || WEXITSTATUS(status) != 1) {
            if (WIFSIGNALED(status)) {
                cli_error(cli, "the loader was killed by signal %d",
                          WTERMSIG(status));

            } else {
                cli_error(cli, "the loader exited with status %d",
                          WEXITSTATUS(status));
            }
        }

        return stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0
               ? CLI_OK : CLI_FAILED;
    }
}


/*
 * --postgres's DSN: in the sandbox, a service reaches no TCP port of this
 * machine (a network namespace of its own), so the server must be
 * named by its socket directory (host=/dir, or none: libpq's
 * /run/postgresql), which is bound in: r->pgdir.
 */

static int
cli_run_postgres(cli_t *cli, cli_run_t *r, int sandboxed)
{
    size_t       n;
    const char  *p, *host, *end;
    char         tcp[256];

    if (r->postgres == NULL || !sandboxed) {
        return CLI_OK;
    }

    host = NULL;
    n = 0;

    if (strncmp(r->postgres, "postgresql://", 13) == 0
        || strncmp(r->postgres, "postgres://", 11) == 0)
    {
        /* postgresql://[user[:pw]@][host][:port][/db][?host=/dir&...] */
        p = strstr(r->postgres, "://") + 3;
        end = p + strcspn(p, "/?");

        host = memrchr(p, '@', end - p);
        host = host != NULL ? host + 1 : p;
        n = strcspn(host, ":/?");

        p = strchr(end, '?');

        while (p != NULL) {
            p++;

            if (strncmp(p, "host=", 5) == 0) {
                host = p + 5;
                n = strcspn(host, "&");
            }

            p = strchr(p, '&');
        }

        if (n >= 3 && strncasecmp(host, "%2F", 3) == 0) {
            cli_error(cli, "--postgres: give the socket directory as "
                      "?host=/dir, not %%2F-encoded");
            return CLI_USAGE;
        }

    } else {
        /* key=value pairs: the last host= wins, as in libpq */
        for (p = r->postgres; *p != '\0'; p++) {
            if ((p == r->postgres || p[-1] == ' ' || p[-1] == '\t')
                && (strncmp(p, "host=", 5) == 0
                    || strncmp(p, "hostaddr=", 9) == 0))
            {
                host = strchr(p, '=') + 1;

                if (host[0] == '\'') {
                    host++;
                    n = strcspn(host, "'");

                } else {
                    n = strcspn(host, " \t");
                }

                if (p[4] == 'a') {
                    /* hostaddr is an IP address whatever host says */
                    break;
                }
            }
        }
    }

    if (host == NULL || n == 0) {
        return CLI_OK;               /* libpq's default socket directory */
    }

    snprintf(tcp, sizeof(tcp), "%.*s", (int) n, host);

    if (host[0] != '/') {
        cli_error(cli, "--postgres: host \"%s\" is out of the sandbox's "
                  "reach: the service has a network of its own, with no TCP "
                  "port of this machine or another; give the server's socket "
                  "directory (host=/run/postgresql), or --no-sandbox", tcp);
        return CLI_USAGE;
    }

    if (memchr(host, ',', n) != NULL || n >= sizeof(r->pgdir)) {
        cli_error(cli, "--postgres: host \"%s\": one socket directory, "
                  "bound into the sandbox, not a list", tcp);
        return CLI_USAGE;
    }

    memcpy(r->pgdir, host, n);
    r->pgdir[n] = '\0';

    return CLI_OK;
}


/*
 * What "shuttle run" gives the loader for the service's declarations:
 * SQLite files under DIR/.shuttle/sqlite/ (the one folder of the project
 * the service writes: r->sqlite), the --postgres database,
 * DIR/Secrets.json, the static folder of the copy served by the loader
 * itself.  *fd: a memfd with the JSON, or -1 when nothing is declared.
 */

static int
cli_run_resources(cli_t *cli, cli_run_t *r, int *fd)
{
    int             rc;
    char            path[PATH_MAX + 256], err[512], *text,
                    real[PATH_MAX];
    size_t          i, n;
    json_t         *root, *obj, *secrets, *v;
    const char     *key;
    struct stat     st;
    json_error_t    jerr;
    shuttle_res_t  *res;

    *fd = -1;

    if (shuttle_resources_read(r->so, &res, &n, err, sizeof(err)) != 0) {
        cli_error(cli, "%s", err);
        return CLI_FAILED;
    }

    if (n == 0) {
        return CLI_OK;
    }

    rc = CLI_FAILED;
    root = json_object();

    for (i = 0; i < n; i++) {

        switch (res[i].kind) {

        case SHUTTLE_RES_KIND_SQLITE:
            snprintf(path, sizeof(path), "%s/.shuttle", r->top);

            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                cli_error(cli, "cannot create %s: %s", path,
                          strerror(errno));
                goto done;
            }

            snprintf(r->sqlite, sizeof(r->sqlite), "%s/.shuttle/sqlite",
                     r->top);

            if (mkdir(r->sqlite, 0755) != 0 && errno != EEXIST) {
                cli_error(cli, "cannot create %s: %s", r->sqlite,
                          strerror(errno));
                goto done;
            }

            /*
             * bound in writable: a folder of the project's, not a link a
             * cloned repository made to .git/hooks or elsewhere
             */
            if (realpath(r->sqlite, real) == NULL
                || strcmp(real, r->sqlite) != 0
                || lstat(r->sqlite, &st) != 0 || !S_ISDIR(st.st_mode))
            {
                cli_error(cli, "%s is not a folder of the project's own "
                          "(a symbolic link?): refused, the service's "
                          "SQLite data would be written elsewhere",
                          r->sqlite);
                goto done;
            }

            obj = json_object_get(root, "sqlite");
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, "sqlite", obj);
            }

            snprintf(path, sizeof(path), "%s/%s.db", r->sqlite,
                     res[i].name);
            json_object_set_new(obj, res[i].name, json_string(path));

            fprintf(stderr, "SQLite \"%s\": %s\n", res[i].name, path);
            break;

        case SHUTTLE_RES_KIND_POSTGRES:
            if (r->postgres == NULL) {
                cli_error(cli, "the service declares SHUTTLE_POSTGRES(\"%s\"):"
                          " give shuttle run a database with --postgres "
                          "\"host=... dbname=... user=...\"", res[i].name);
                goto done;
            }

            obj = json_object_get(root, "postgres");
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, "postgres", obj);
            }

            json_object_set_new(obj, res[i].name, json_string(r->postgres));
            break;

        case SHUTTLE_RES_KIND_SECRETS:
            snprintf(path, sizeof(path), "%s/Secrets.json", r->top);

            if (stat(path, &st) != 0) {
                secrets = json_object();

            } else {
                secrets = json_load_file(path, JSON_REJECT_DUPLICATES,
                                         &jerr);

                if (secrets == NULL || !json_is_object(secrets)) {
                    cli_error(cli, "%s: not a JSON object of \"KEY\": "
                              "\"VALUE\"%s%s", path, secrets ? "" : ": ",
                              secrets ? "" : jerr.text);
                    json_decref(secrets);
                    goto done;
                }

                json_object_foreach(secrets, key, v) {
                    if (!json_is_string(v)) {
                        cli_error(cli, "%s: the value of \"%s\" is not a "
                                  "string", path, key);
                        json_decref(secrets);
                        goto done;
                    }
                }
            }

            fprintf(stderr, "Secrets: %zu from %s\n",
                    json_object_size(secrets), path);
            json_object_set_new(root, "secrets", secrets);
            break;

        case SHUTTLE_RES_KIND_STATIC:
            snprintf(path, sizeof(path), "%s/%s", r->src, res[i].name);

            if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
                cli_error(cli, "SHUTTLE_STATIC(\"%s\"): the project has no "
                          "folder %s", res[i].name, res[i].name);
                goto done;
            }

            json_object_set_new(root, "static",
                                json_pack("{s:s}", "dir", path));
            break;
        }
    }

    text = json_dumps(root, JSON_COMPACT);

    *fd = text ? memfd_create("shuttle-resources", MFD_CLOEXEC) : -1;

    if (*fd == -1 || write(*fd, text, strlen(text)) != (ssize_t) strlen(text)
        || lseek(*fd, 0, SEEK_SET) == -1)
    {
        cli_error(cli, "resources: %s", strerror(errno));

        if (*fd != -1) {
            close(*fd);
            *fd = -1;
        }

    } else {
        rc = CLI_OK;
    }

    free(text);

done:

    json_decref(root);
    free(res);

    return rc;
}
