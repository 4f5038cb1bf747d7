
/*
 * shuttle-loader: runs one deployment of a service.
 *
 *   shuttle-loader [--listen-fd N | --listen ADDR:PORT] [--ready-fd N]
 *                  [--threads N] [--drain-timeout SEC] [--name NAME]
 *                  [--resources-fd N] [--disk-limit BYTES] [--idle SEC]
 *                  SERVICE.so
 *
 * The builder starts it with a socket it has bound and listens on as
 * --listen-fd 3 and a pipe as --ready-fd; "shuttle run" and the tests
 * use --listen.  The loader writes "ready\n" on the pipe once it serves,
 * or "error: <why>\n" and exits 1 when it cannot start.
 *
 * --resources-fd N is a descriptor to read to its end: the JSON object of
 * the resources the platform provisioned (docs/resources.md), opened
 * before the service's main runs.
 *
 * --idle SEC: once no connection has been open for SEC seconds, the loader
 * stops accepting and exits with SHUTTLE_LOADER_EXIT_IDLE
 * (include/shuttle_loader.h); what comes later waits in the backlog of the
 * socket, which the builder keeps, for the loader it starts then.
 *
 * SIGTERM or SIGINT drains: the loader accepts for 100 ms more (a
 * request routed to it just before the builder switched the zone may
 * still be on its way), stops accepting (it closes its descriptor of the
 * listening socket), closes its idle connections, lets
 * the requests in flight finish (answered with Connection: close), then
 * exits 0; after --drain-timeout seconds it exits 0 anyway, cutting what
 * is left.  A second signal cuts at once.
 *
 * The main thread accepts connections and reads signals; the requests
 * are served by --threads threads of libmicrohttpd (see http.c).
 *
 * Started as pid 1 of a pid namespace (the platform's sandbox), it first
 * forks: pid 1 stays behind as the namespace's init, passing SIGTERM,
 * SIGINT, SIGHUP and SIGQUIT on to the loader (pid 2), reaping whatever
 * the service leaves orphaned, and exiting as the loader does (killed by
 * signal N: status 128 + N, as a shell says it, since the kernel does not
 * let an init die of its own signal).  So the service keeps the signal
 * semantics of an ordinary process (abort() kills it with SIGABRT).
 * An init that cannot fork (the project's tasks all taken) fails the
 * start: the service never runs as pid 1.
 */


#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "sandbox.h"


#define LOADER_DRAIN_TIMEOUT   10.0
#define LOADER_MAX_THREADS     1024
#define LOADER_BACKLOG         511

#define LOADER_USAGE                                                          \
    "usage: shuttle-loader [--listen-fd N | --listen ADDR:PORT] "            \
    "[--ready-fd N]\n"                                                       \
    "                      [--threads N] [--drain-timeout SEC] "            \
    "[--name NAME]\n"                                                        \
    "                      [--resources-fd N] [--disk-limit BYTES] "        \
    "[--idle SEC]\n"                                                        \
    "                      SERVICE.so\n"


typedef struct {
    const char      *service;
    const char      *listen;          /* ADDR:PORT to bind, or NULL */
    int              listen_fd;       /* inherited, or -1 */
    int              ready_fd;        /* -1: none */
    unsigned         threads;
    double           drain_timeout;
    const char      *name;
    int              resources_fd;    /* -1: none */
    unsigned long long  disk_limit;   /* bytes of SQLite data, 0: none */
    int64_t          idle;            /* ms, 0: never idle */
} loader_conf_t;


static int loader_main(int argc, char **argv);
static void loader_init(void);
static void loader_args(loader_conf_t *conf, int argc, char **argv);
static int loader_arg_int(const char *opt, const char *value, long min,
    long max);
static int loader_listen(loader_conf_t *conf, char *addr, size_t addrlen);
static int loader_listen_bind(const char *spec);
static int loader_listen_check(int fd);
static void loader_addr(int fd, char *buf, size_t size);
static int loader_signals(void);
static void loader_signal(int signo);
static void loader_signal_pipe(int signo);
static void loader_signal_sys(int signo, siginfo_t *si, void *ctx);
static int loader_cat(char *buf, size_t size, int n, const char *s);
static void loader_ready(loader_conf_t *conf);
static void loader_serve(loader_http_t *h, int sigfd);
static int loader_idle_timeout(loader_http_t *h);
static void *loader_watchdog(void *arg);
static void loader_fail(const char *fmt, ...) SHUTTLE_PRINTF(1, 2);


/* the one copy of the configuration; --ready-fd for loader_fail() */
static loader_conf_t   loader_conf = {
    NULL, NULL, -1, -1, 0, LOADER_DRAIN_TIMEOUT, NULL, -1, 0, 0
};

/* the last signal caught, and the eventfd that tells the main thread */
static volatile sig_atomic_t  loader_signo;
static int                    loader_signal_fd = -1;

/* set by whoever ends the process first: the drain or the watchdog */
static atomic_int      loader_ending;

static loader_http_t   loader_http;


int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--warm") == 0) {
        /* started ahead by the builder: see builder/sandbox/warm.c */
        shuttle_sandbox_warm_serve(3, loader_main, argc, argv);
    }

    return loader_main(argc, argv);
}


static int
loader_main(int argc, char **argv)
{
    int             sigfd, fd;
    shuttle_app    *app;
    loader_main_pt  main_fn;
    char            addr[128], err[LOADER_ERRLEN];

    /* the service's printf() lines reach the runtime log as they come */
    setvbuf(stdout, NULL, _IOLBF, 0);

    loader_args(&loader_conf, argc, argv);

    loader_log_init(loader_conf.name);

    if (getpid() == 1) {
        loader_init();
    }

    sigfd = loader_signals();

    loader_log("started: pid %d, service %s, SDK ABI %u, %u threads",
               (int) getpid(), loader_conf.service, (unsigned) SHUTTLE_ABI,
               loader_conf.threads);

    fd = loader_listen(&loader_conf, addr, sizeof(addr));

    app = loader_app_create();
    if (app == NULL) {
        loader_fail("out of memory");
    }

    loader_resources_limit(loader_conf.disk_limit);

    if (loader_conf.resources_fd != -1
        && loader_resources_load(loader_conf.resources_fd, err, sizeof(err))
           != 0)
    {
        loader_fail("%s", err);
    }

    main_fn = loader_service_load(loader_conf.service, err, sizeof(err));
    if (main_fn == NULL) {
        loader_fail("%s", err);
    }

    if (loader_service_main(main_fn, app, loader_conf.ready_fd, err,
                            sizeof(err))
        != 0)
    {
        loader_fail("%s", err);
    }

    if (app->error[0] != '\0') {
        loader_fail("%s", app->error);
    }

    if (app->nroutes == 0) {
        loader_log("the service registered no route: every request will "
                   "get 404");
    }

    app->serving = 1;

    if (loader_http_start(&loader_http, app, fd, loader_conf.threads, err,
                          sizeof(err))
        != 0)
    {
        loader_fail("%s", err);
    }

    loader_log("listening on %s, %zu routes", addr, app->nroutes);

    loader_ready(&loader_conf);

    loader_serve(&loader_http, sigfd);

    return 0;
}


/* pid 1: the namespace's init, the loader its only child (see above) */

static void
loader_init(void)
{
    int        status, sig;
    pid_t      loader, pid;
    sigset_t   all, old;
    siginfo_t  si;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);

    loader = fork();

    if (loader == -1) {
        /*
         * Never a loader without its init: the service would run as the
         * namespace's pid 1, with signal semantics of its own.  The
         * project's task limit (its cgroup's pids.max) is the likely
         * cause.
         */
        sigprocmask(SIG_SETMASK, &old, NULL);
        loader_fail("cannot start the loader under its init: fork: %s "
                    "(the project's task limit?)", strerror(errno));
    }

    if (loader == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return;
    }

    /*
     * Init keeps stdin, stdout and stderr, nothing else: above all not
     * the listening socket, which would otherwise stay open while the
     * loader drains after closing its own, and queue connections nobody
     * accepts.
     */

    (void) syscall(SYS_close_range, STDERR_FILENO + 1, ~0U, 0);

    for ( ;; ) {
        sig = sigwaitinfo(&all, &si);

        if (sig == -1) {
            continue;
        }

        if (sig != SIGCHLD) {
            if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP
                || sig == SIGQUIT || sig == SIGUSR1 || sig == SIGUSR2)
            {
                (void) kill(loader, sig);
            }

            continue;
        }

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != loader) {
                continue;
            }

            if (WIFSIGNALED(status)) {
                _exit(128 + WTERMSIG(status));
            }

            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
        }
    }
}


static void
loader_args(loader_conf_t *conf, int argc, char **argv)
{
    int          i;
    long         n;
    char        *end;
    double       idle;
    size_t       optlen;
    cpu_set_t    cpus;
    const char  *arg, *opt, *value, *eq;

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(LOADER_USAGE, stdout);
            exit(0);
        }

        if (arg[0] != '-' || arg[1] != '-') {
            if (conf->service != NULL) {
                loader_fail("more than one service: %s and %s",
                            conf->service, arg);
            }

            conf->service = arg;
            continue;
        }

        /* --opt value, or --opt=value */
        opt = arg;
        eq = strchr(arg, '=');

        if (eq != NULL) {
            optlen = eq - arg;
            value = eq + 1;

        } else {
            optlen = strlen(arg);

            if (i + 1 == argc) {
                loader_fail("%s: a value is missing\n%s", arg, LOADER_USAGE);
            }

            value = argv[++i];
        }

#define LOADER_OPT(name)                                                      \
        (optlen == sizeof(name) - 1 && strncmp(opt, name, optlen) == 0)

        if (LOADER_OPT("--listen-fd")) {
            conf->listen_fd = loader_arg_int("--listen-fd", value, 0,
                                             65535);

        } else if (LOADER_OPT("--listen")) {
            conf->listen = value;

        } else if (LOADER_OPT("--ready-fd")) {
            conf->ready_fd = loader_arg_int("--ready-fd", value, 0, 65535);

            if (fcntl(conf->ready_fd, F_SETFD, FD_CLOEXEC) == -1) {
                n = conf->ready_fd;
                conf->ready_fd = -1;
                loader_fail("--ready-fd %ld: %s", n, strerror(errno));
            }

        } else if (LOADER_OPT("--threads")) {
            conf->threads = loader_arg_int("--threads", value, 1,
                                           LOADER_MAX_THREADS);

        } else if (LOADER_OPT("--drain-timeout")) {
            errno = 0;
            conf->drain_timeout = strtod(value, &end);

            if (errno != 0 || end == value || *end != '\0'
                || !isfinite(conf->drain_timeout)
                || conf->drain_timeout < 0
                || conf->drain_timeout > 86400)
            {
                loader_fail("--drain-timeout \"%s\": not a number of "
                            "seconds from 0 to 86400", value);
            }

        } else if (LOADER_OPT("--resources-fd")) {
            conf->resources_fd = loader_arg_int("--resources-fd", value, 0,
                                                65535);

            if (fcntl(conf->resources_fd, F_SETFD, FD_CLOEXEC) == -1) {
                loader_fail("--resources-fd %d: %s", conf->resources_fd,
                            strerror(errno));
            }

        } else if (LOADER_OPT("--disk-limit")) {
            errno = 0;
            conf->disk_limit = strtoull(value, &end, 10);

            if (errno != 0 || end == value || *end != '\0'
                || value[0] == '-')
            {
                loader_fail("--disk-limit \"%s\": not a number of bytes",
                            value);
            }

        } else if (LOADER_OPT("--idle")) {
            errno = 0;
            idle = strtod(value, &end);

            if (errno != 0 || end == value || *end != '\0'
                || !isfinite(idle) || idle < 0 || idle > 31536000)
            {
                loader_fail("--idle \"%s\": not a number of seconds from 0 "
                            "to 31536000", value);
            }

            conf->idle = (int64_t) (idle * 1000);

        } else if (LOADER_OPT("--name")) {
            if (value[0] == '\0' || strlen(value) > 63) {
                loader_fail("--name \"%s\": 1 to 63 characters", value);
            }

            conf->name = value;

        } else {
            loader_fail("unknown option %.*s\n%s", (int) optlen, opt,
                        LOADER_USAGE);
        }

#undef LOADER_OPT
    }

    if (conf->service == NULL) {
        loader_fail("no service given\n%s", LOADER_USAGE);
    }

    if ((conf->listen == NULL) == (conf->listen_fd == -1)) {
        loader_fail("give one of --listen-fd and --listen\n%s",
                    LOADER_USAGE);
    }

    if (conf->threads == 0) {
        /* the CPUs this process may run on: all the online ones, or fewer
           under taskset or a cpuset */
        n = sched_getaffinity(0, sizeof(cpus), &cpus) == 0
            ? CPU_COUNT(&cpus) : sysconf(_SC_NPROCESSORS_ONLN);

        conf->threads = n < 1 ? 1 : n > LOADER_MAX_THREADS
                                    ? LOADER_MAX_THREADS : n;
    }
}


static int
loader_arg_int(const char *opt, const char *value, long min, long max)
{
    long   n;
    char  *end;

    errno = 0;
    n = strtol(value, &end, 10);

    if (errno != 0 || end == value || *end != '\0' || n < min || n > max) {
        loader_fail("%s \"%s\": not a number from %ld to %ld", opt, value,
                    min, max);
    }

    return (int) n;
}


/* the listening socket, bound here or inherited; its address to addr */
static int
loader_listen(loader_conf_t *conf, char *addr, size_t addrlen)
{
    int  fd;

    if (conf->listen != NULL) {
        fd = loader_listen_bind(conf->listen);

    } else {
        fd = conf->listen_fd;

        if (loader_listen_check(fd) != 0) {
            loader_fail("--listen-fd %d: %s", fd, strerror(errno));
        }
    }

    /* accepted from until EAGAIN: accept() must never block */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1
        || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
    {
        loader_fail("listening socket %d: fcntl: %s", fd, strerror(errno));
    }

    loader_addr(fd, addr, addrlen);

    return fd;
}


static int
loader_listen_bind(const char *spec)
{
    int               fd, rc, one, saved;
    char             *host, *port;
    size_t            len;
    struct addrinfo   hints, *res, *ai;
    char              buf[256];

    len = strlen(spec);
    if (len >= sizeof(buf)) {
        loader_fail("--listen \"%s\": too long", spec);
    }

    memcpy(buf, spec, len + 1);

    port = strrchr(buf, ':');
    if (port == NULL || port[1] == '\0') {
        loader_fail("--listen \"%s\": not ADDR:PORT", spec);
    }

    *port++ = '\0';
    host = buf;

    /* [::1]:8000 */
    if (host[0] == '[' && port - buf >= 3 && port[-2] == ']') {
        host++;
        port[-2] = '\0';
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;

    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        loader_fail("--listen %s: %s", spec, gai_strerror(rc));
    }

    fd = -1;
    saved = 0;

    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd == -1) {
            saved = errno;
            continue;
        }

        one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
            && listen(fd, LOADER_BACKLOG) == 0)
        {
            break;
        }

        saved = errno;
        close(fd);
        fd = -1;
    }

    freeaddrinfo(res);

    if (fd == -1) {
        loader_fail("--listen %s: %s", spec, strerror(saved));
    }

    return fd;
}


/* a TCP socket that listens, or -1 with errno */
static int
loader_listen_check(int fd)
{
    int          v;
    socklen_t    len;
    struct stat  st;

    if (fstat(fd, &st) == -1) {
        return -1;
    }

    if (!S_ISSOCK(st.st_mode)) {
        errno = ENOTSOCK;
        return -1;
    }

    len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) == -1) {
        return -1;
    }

    if (v != SOCK_STREAM) {
        errno = ESOCKTNOSUPPORT;
        return -1;
    }

    len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == -1) {
        return -1;
    }

    if (!v) {
        errno = EINVAL;
        return -1;
    }

    return 0;
}


static void
loader_addr(int fd, char *buf, size_t size)
{
    socklen_t                len;
    struct sockaddr_storage  ss;
    struct sockaddr_in      *sin;
    struct sockaddr_in6     *sin6;
    char                     ip[INET6_ADDRSTRLEN];

    len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *) &ss, &len) == -1) {
        snprintf(buf, size, "socket %d", fd);
        return;
    }

    switch (ss.ss_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) &ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, ntohs(sin->sin_port));
        break;

    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) &ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, ntohs(sin6->sin6_port));
        break;

    default:
        snprintf(buf, size, "socket %d (family %d)", fd, ss.ss_family);
    }
}


/*
 * SIGTERM and SIGINT write to an eventfd the main thread polls.  They are
 * caught, not blocked: the service's threads and the programs it runs
 * get the usual signals (a caught signal is reset by exec, a blocked one
 * would stay blocked), and Linux gives a signal sent to the process to
 * its main thread first.  SIGPIPE is caught and does nothing, so that a
 * write to a closed pipe or socket fails with EPIPE instead of killing
 * the process, again without leaving SIGPIPE ignored in what it runs.
 */
static int
loader_signals(void)
{
    struct sigaction  sa;

    loader_signal_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loader_signal_fd == -1) {
        loader_fail("eventfd: %s", strerror(errno));
    }

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;

    sa.sa_handler = loader_signal;

    if (sigaction(SIGTERM, &sa, NULL) == -1
        || sigaction(SIGINT, &sa, NULL) == -1)
    {
        loader_fail("sigaction: %s", strerror(errno));
    }

    sa.sa_handler = loader_signal_pipe;

    if (sigaction(SIGPIPE, &sa, NULL) == -1) {
        loader_fail("sigaction: %s", strerror(errno));
    }

    /* past --file-size a write fails with EFBIG, it does not kill */

    sa.sa_handler = SIG_IGN;

    if (sigaction(SIGXFSZ, &sa, NULL) == -1) {
        loader_fail("sigaction: %s", strerror(errno));
    }

    /* what the sandbox's seccomp filter refuses: EPERM, and a line */

    sa.sa_handler = NULL;
    sa.sa_sigaction = loader_signal_sys;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;

    if (sigaction(SIGSYS, &sa, NULL) == -1) {
        loader_fail("sigaction: %s", strerror(errno));
    }

    return loader_signal_fd;
}


/* s appended to buf at n, as much as fits: async-signal-safe */

static int
loader_cat(char *buf, size_t size, int n, const char *s)
{
    while (*s != '\0' && (size_t) n + 1 < size) {
        buf[n++] = *s++;
    }

    return n;
}


/*
 * The sandbox's filter traps what a service may not do (sandbox.h): the
 * call fails with EPERM, as if the kernel had refused it, and the runtime
 * log says which.  Async-signal-safe: a write(2) of a line built here.
 */

static void
loader_signal_sys(int signo, siginfo_t *si, void *ctx)
{
    int          nr, saved, n;
    char         line[160], num[16], *p;
    ucontext_t  *uc;
    const char  *name;

    saved = errno;
    uc = ctx;
    nr = si->si_syscall;

    switch (nr) {
    case SYS_bind: name = "bind"; break;
    case SYS_listen: name = "listen"; break;
    case SYS_ptrace: name = "ptrace"; break;
    case SYS_mount: name = "mount"; break;
    case SYS_umount2: name = "umount2"; break;
    case SYS_unshare: name = "unshare"; break;
    case SYS_setns: name = "setns"; break;
    case SYS_clone: name = "clone (new namespaces)"; break;
    case SYS_bpf: name = "bpf"; break;
    case SYS_perf_event_open: name = "perf_event_open"; break;
    case SYS_keyctl: name = "keyctl"; break;
    case SYS_add_key: name = "add_key"; break;
    case SYS_request_key: name = "request_key"; break;
    case SYS_kexec_load: name = "kexec_load"; break;
    case SYS_init_module: name = "init_module"; break;
    case SYS_finit_module: name = "finit_module"; break;
    case SYS_delete_module: name = "delete_module"; break;
    case SYS_personality: name = "personality"; break;
    case SYS_chroot: name = "chroot"; break;
    case SYS_pivot_root: name = "pivot_root"; break;
    case SYS_reboot: name = "reboot"; break;
    case SYS_process_vm_readv: name = "process_vm_readv"; break;
    case SYS_process_vm_writev: name = "process_vm_writev"; break;
    case SYS_userfaultfd: name = "userfaultfd"; break;
    default: name = NULL;
    }

    p = num + sizeof(num);
    *--p = '\0';

    do {
        *--p = (char) ('0' + nr % 10);
        nr /= 10;
    } while (nr > 0 && p > num);

    n = 0;
    n = loader_cat(line, sizeof(line), n,
                   "shuttle-loader: sandbox: system call ");
    n = loader_cat(line, sizeof(line), n, name ? name : p);
    n = loader_cat(line, sizeof(line), n, " refused (seccomp): EPERM\n");

    (void) !write(STDERR_FILENO, line, n);

#if defined(__x86_64__)
    uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
    uc->uc_mcontext.regs[0] = (unsigned long long) -EPERM;
#endif

    errno = saved;
}


static void
loader_signal(int signo)
{
    int       saved;
    uint64_t  one;

    saved = errno;

    loader_signo = signo;

    one = 1;
    if (write(loader_signal_fd, &one, sizeof(one)) == -1) {
        /* the counter is full: the main thread has enough to read */
    }

    errno = saved;
}


static void
loader_signal_pipe(int signo)
{
    /* the write that caused it fails with EPIPE */
}


static void
loader_ready(loader_conf_t *conf)
{
    if (conf->ready_fd != -1) {
        if (write(conf->ready_fd, "ready\n", 6) != 6) {
            loader_log("--ready-fd %d: write: %s", conf->ready_fd,
                       strerror(errno));
        }

        close(conf->ready_fd);
        conf->ready_fd = -1;
    }

    loader_log("ready");
}


#define LOADER_DRAIN_GRACE_MS   100


/*
 * Told to stop, a loader still accepts for LOADER_DRAIN_GRACE_MS: the
 * builder sends SIGTERM just after it switched the zone to another
 * loader, and an nginx worker that read the old port an instant before
 * may still be connecting (it tries once).
 */
static void
loader_serve_grace(loader_http_t *h)
{
    int            timeout;
    int64_t        end, now;
    struct pollfd  pfd;

    end = loader_http_now() + LOADER_DRAIN_GRACE_MS;

    loader_log("stopping: %s received; accepting for %d ms more",
               loader_signo == SIGINT ? "SIGINT" : "SIGTERM",
               LOADER_DRAIN_GRACE_MS);

    pfd.fd = h->listen_fd;
    pfd.events = POLLIN;

    for ( ;; ) {
        now = loader_http_now();

        if (now >= end) {
            break;
        }

        timeout = (int) (end - now);
        pfd.revents = 0;

        if (poll(&pfd, 1, timeout) <= 0) {
            continue;
        }

        if (loader_http_accept(h) != 0) {
            break;              /* out of descriptors: drain now */
        }
    }
}


/* accepts until a signal, then drains and ends the process */
static void
loader_serve(loader_http_t *h, int sigfd)
{
    int                       backoff, timeout, rc;
    uint64_t                  count;
    unsigned                  busy;
    pthread_t                 tid;
    pthread_attr_t            attr;
    struct pollfd             pfd[2];

    pfd[0].fd = sigfd;
    pfd[0].events = POLLIN;
    pfd[1].fd = h->listen_fd;
    pfd[1].events = POLLIN;

    backoff = 0;

    for ( ;; ) {
        pfd[0].revents = 0;
        pfd[1].revents = 0;

        timeout = backoff ? 100 : loader_idle_timeout(h);

        /* out of descriptors: the listening socket rests for 100 ms */
        rc = poll(pfd, backoff ? 1 : 2, timeout);

        if (rc == -1) {
            if (errno != EINTR) {
                loader_fail("poll: %s", strerror(errno));
            }

            continue;
        }

        if (rc == 0 && !backoff) {
            loader_idle_timeout(h);
            continue;
        }

        if ((pfd[0].revents & POLLIN)
            && read(sigfd, &count, sizeof(count)) == sizeof(count))
        {
            break;
        }

        backoff = 0;

        if (pfd[1].revents & POLLIN) {
            backoff = loader_http_accept(h) != 0;
        }
    }

    loader_serve_grace(h);

    busy = loader_http_drain(h);

    loader_log("draining: %s received, %u requests in flight",
               loader_signo == SIGINT ? "SIGINT" : "SIGTERM", busy);

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    if (pthread_create(&tid, &attr, loader_watchdog, NULL) != 0) {
        loader_log("the drain timeout cannot be kept: no thread for it");
    }

    pthread_attr_destroy(&attr);

    pfd[1].fd = h->drained_fd;

    while (loader_http_connections(h) != 0) {
        pfd[0].revents = 0;
        pfd[1].revents = 0;

        if (poll(pfd, 2, -1) == -1) {
            if (errno == EINTR) {
                continue;
            }

            loader_log("poll: %s", strerror(errno));
            break;
        }

        if ((pfd[0].revents & POLLIN)
            && read(sigfd, &count, sizeof(count)) > 0
            && atomic_exchange(&loader_ending, 1) == 0)
        {
            loader_log("exited: a second signal, %u requests cut",
                       loader_http_busy(h));
            loader_service_exiting();
            _exit(0);
        }

        if ((pfd[1].revents & POLLIN)
            && read(h->drained_fd, &count, sizeof(count)) == -1)
        {
            /* EAGAIN: read already */
        }
    }

    if (atomic_exchange(&loader_ending, 1) != 0) {
        /* the watchdog ends the process */
        for ( ;; ) {
            pause();
        }
    }

    loader_http_stop(h);

    loader_log("exited: drained");
    loader_service_exiting();

    exit(0);
}


/*
 * --idle: the ms poll() may wait before the loader is to go idle, -1 for
 * ever; when that time has come and no connection waits in the backlog,
 * the loader exits SHUTTLE_LOADER_EXIT_IDLE instead.  Only the main thread
 * accepts, so no connection can open between the check and the exit; one
 * that comes after it waits in the backlog for the next loader.
 */
#define LOADER_IDLE_RECHECK_MS  250

static int
loader_idle_timeout(loader_http_t *h)
{
    int64_t        quiet;
    struct pollfd  pfd;

    if (loader_conf.idle == 0) {
        return -1;
    }

    quiet = loader_http_quiet(h);

    if (quiet == -1) {
        /*
         * A connection is open: look again soon.  Not once the idle time
         * is over: the builder's health checks, a connection every few
         * seconds that does not count, would each put it off again.
         */
        return loader_conf.idle < LOADER_IDLE_RECHECK_MS
               ? (int) loader_conf.idle : LOADER_IDLE_RECHECK_MS;
    }

    if (quiet < loader_conf.idle) {
        return (int) (loader_conf.idle - quiet);
    }

    pfd.fd = h->listen_fd;
    pfd.events = POLLIN;
    pfd.revents = 0;

    if (poll(&pfd, 1, 0) != 0) {
        return 0;
    }

    loader_log("idle: no connection for %.1f s, exiting; the next request "
               "starts the service again", (double) quiet / 1000);

    loader_http_stop(h);
    loader_service_exiting();

    exit(SHUTTLE_LOADER_EXIT_IDLE);
}


static void *
loader_watchdog(void *arg)
{
    double           timeout;
    struct timespec  ts;

    timeout = loader_conf.drain_timeout;

    ts.tv_sec = (time_t) timeout;
    ts.tv_nsec = (long) ((timeout - (double) ts.tv_sec) * 1e9);

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }

    if (atomic_exchange(&loader_ending, 1) != 0) {
        return NULL;
    }

    loader_log("exited: drain timeout after %g s, %u requests cut",
               timeout, loader_http_busy(&loader_http));
    loader_service_exiting();

    _exit(0);
}


static void
loader_fail(const char *fmt, ...)
{
    int      n;
    va_list  args;
    char     msg[LOADER_ERRLEN + 64], line[LOADER_ERRLEN + 80];

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    loader_log("error: %s", msg);

    if (loader_conf.ready_fd != -1) {
        /* one line: the usage, if any, is for the log only */
        n = snprintf(line, sizeof(line), "error: %.*s\n",
                     (int) strcspn(msg, "\n"), msg);

        if (write(loader_conf.ready_fd, line, n) != n) {
            /* nobody reads it: the log has the reason */
        }
    }

    loader_service_exiting();

    exit(1);
}
