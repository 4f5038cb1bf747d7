
/*
 * Loaders: the listening socket, the process in its sandbox, and what it
 * says on its readiness pipe (supervise_int.h).
 */

#include "supervise.h"
#include "supervise_int.h"


static int sup_spawn_sandboxed(shuttle_supervise_t *sup, sup_loader_t *l,
    const int *fds, size_t nfds, char **argv, char **envp, pid_t *pid,
    char *err, size_t errlen);
static const char *sup_postgres_dir(shuttle_serve_t *s, char *buf,
    size_t size);


int
sup_bind(shuttle_supervise_t *sup, uint16_t *port, char *err, size_t errlen)
{
    int                  fd, one;
    uint32_t             lo, hi, n, i, p;
    struct sockaddr_in   sin;

    one = 1;
    lo = sup->s->conf.port_lo;
    hi = sup->s->conf.port_hi;
    n = hi - lo + 1;

    for (i = 0; i < n; i++) {
        p = lo + (sup->next_port - lo + i) % n;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -1;
        }

        /*
         * A drained loader's connections wait in TIME_WAIT on its port
         * for a minute: without SO_REUSEADDR a range of N ports would
         * take N starts a minute.  A port listened on stays refused.
         */
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

        memset(&sin, 0, sizeof(struct sockaddr_in));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t) p);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0) {

            if (listen(fd, SUP_BACKLOG) == -1) {
                if (errno == EADDRINUSE) {
                    close(fd);
                    continue;
                }

                snprintf(err, errlen, "listen 127.0.0.1:%u: %s", p,
                         strerror(errno));
                close(fd);
                return -1;
            }

            sup->next_port = p + 1 > hi ? lo : p + 1;
            *port = (uint16_t) p;

            return sup_high_fd(fd);
        }

        if (errno != EADDRINUSE && errno != EACCES) {
            snprintf(err, errlen, "bind 127.0.0.1:%u: %s", p,
                     strerror(errno));
            close(fd);
            return -1;
        }

        close(fd);
    }

    snprintf(err, errlen, "no free port in %u-%u", lo, hi);

    return -1;
}


/* keeps fds 0-4 clear: the loader's are dup2()ed there */

int
sup_high_fd(int fd)
{
    int  high;

    if (fd == -1 || fd >= SUP_FIRST_FD) {
        return fd;
    }

    high = fcntl(fd, F_DUPFD_CLOEXEC, SUP_FIRST_FD);
    close(fd);

    return high;
}


int
sup_spawn(shuttle_supervise_t *sup, sup_loader_t *l, char *err,
    size_t errlen)
{
    int                         rc, p[2], logfd, resfd, fds[6];
    char                       *json;
    char                        log[SHUTTLE_PATH_MAX + 16];
    char                        env_project[SHUTTLE_NAME_MAX + 32];
    char                        env_id[64];
    char                       *argv[15], *envp[5];
    char                        disk[32], idle[32];
    size_t                      n;
    shuttle_limits_t            limits;
    pid_t                       pid;
    sigset_t                    mask, dflt;
    shuttle_serve_t            *s;
    posix_spawnattr_t           attr;
    posix_spawn_file_actions_t  fa;

    s = sup->s;
    l->spawning = shuttle_mono_us();

    snprintf(log, sizeof(log), "%s/runtime.log", l->dir);

    /* the resources it declares, on a memfd: never on a command line */

    if (shuttle_provision_json(s, l->project, l->id, l->so, &json, err,
                               errlen)
        != 0)
    {
        return -1;
    }

    resfd = -1;

    if (json != NULL) {
        resfd = memfd_create("shuttle-resources", MFD_CLOEXEC);

        if (resfd == -1 || write(resfd, json, strlen(json))
                           != (ssize_t) strlen(json)
            || lseek(resfd, 0, SEEK_SET) == -1)
        {
            snprintf(err, errlen, "resources: memfd: %s", strerror(errno));
            explicit_bzero(json, strlen(json));
            free(json);
            if (resfd != -1) {
                close(resfd);
            }
            return -1;
        }

        explicit_bzero(json, strlen(json));
        free(json);

        resfd = sup_high_fd(resfd);
        if (resfd == -1) {
            snprintf(err, errlen, "fcntl: %s", strerror(errno));
            return -1;
        }
    }

    logfd = shuttle_fsafe_open(s->conf.data, log, O_WRONLY | O_CREAT
                               | O_APPEND, 0640);
    if (logfd == -1) {
        snprintf(err, errlen, "runtime log %s: %s", log, strerror(errno));
        if (resfd != -1) {
            close(resfd);
        }
        return -1;
    }

    if (pipe2(p, O_CLOEXEC) == -1) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(logfd);
        if (resfd != -1) {
            close(resfd);
        }
        return -1;
    }

    logfd = sup_high_fd(logfd);
    p[0] = sup_high_fd(p[0]);
    p[1] = sup_high_fd(p[1]);

    if (logfd == -1 || p[0] == -1 || p[1] == -1) {
        snprintf(err, errlen, "fcntl: %s", strerror(errno));
        goto failed;
    }

    (void) fcntl(p[0], F_SETFL, O_NONBLOCK);

    snprintf(env_project, sizeof(env_project), "SHUTTLE_PROJECT=%s",
             l->project);
    snprintf(env_id, sizeof(env_id), "SHUTTLE_DEPLOYMENT=%lld",
             (long long) l->id);

    argv[0] = s->conf.loader;
    argv[1] = "--listen-fd";
    argv[2] = "3";
    argv[3] = "--ready-fd";
    argv[4] = "4";
    argv[5] = "--name";
    argv[6] = l->project;
    argv[7] = "--disk-limit";
    shuttle_deploy_limits(s, l->project, &limits);
    snprintf(disk, sizeof(disk), "%llu",
             s->conf.sandbox != NULL ? (unsigned long long) limits.disk
                                     : 0ULL);
    argv[8] = disk;
    n = 9;

    l->idle = sup_idle_ms(sup, l->project);

    if (l->idle > 0) {
        snprintf(idle, sizeof(idle), "%.3f", (double) l->idle / 1000);
        argv[n++] = "--idle";
        argv[n++] = idle;
    }

    if (resfd != -1) {
        argv[n++] = "--resources-fd";
        argv[n++] = "5";
    }

    argv[n++] = l->so;
    argv[n] = NULL;

    envp[0] = "PATH=/usr/local/bin:/usr/bin:/bin";
    envp[1] = "LANG=C.UTF-8";
    envp[2] = env_project;
    envp[3] = env_id;
    envp[4] = NULL;

    if (s->conf.sandbox != NULL) {
        fds[0] = -1;
        fds[1] = logfd;
        fds[2] = logfd;
        fds[3] = l->listen_fd;
        fds[4] = p[1];
        fds[5] = resfd;

        rc = sup_spawn_sandboxed(sup, l, fds, resfd != -1 ? 6 : 5, argv,
                                 envp, &pid, err, errlen);

        if (!shuttle_sandbox_warm_ready(s->conf.sandbox)
            && sup->warm_at == 0)
        {
            sup->warm_at = shuttle_mono_ms() + SUP_WARM_DELAY_MS;
            sup_due(sup, sup->warm_at);
        }

        if (rc != 0) {
            goto failed;
        }

        goto spawned;
    }

    (void) posix_spawn_file_actions_init(&fa);
    (void) posix_spawn_file_actions_adddup2(&fa, l->listen_fd, 3);
    (void) posix_spawn_file_actions_adddup2(&fa, p[1], 4);

    if (resfd != -1) {
        (void) posix_spawn_file_actions_adddup2(&fa, resfd, 5);
    }
    (void) posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
                                            0);
    (void) posix_spawn_file_actions_adddup2(&fa, logfd, 1);
    (void) posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    (void) posix_spawn_file_actions_addclosefrom_np(&fa, SUP_FIRST_FD);
    (void) posix_spawn_file_actions_addchdir_np(&fa, l->dir);

    /* the builder blocks these for its signalfd and ignores SIGPIPE */

    sigemptyset(&mask);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGCHLD);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGQUIT);
    sigaddset(&dflt, SIGHUP);

    (void) posix_spawnattr_init(&attr);
    (void) posix_spawnattr_setsigmask(&attr, &mask);
    (void) posix_spawnattr_setsigdefault(&attr, &dflt);
    (void) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK
                                           | POSIX_SPAWN_SETSIGDEF
                                           | POSIX_SPAWN_SETSID);

    rc = posix_spawn(&pid, s->conf.loader, &fa, &attr, argv, envp);

    (void) posix_spawn_file_actions_destroy(&fa);
    (void) posix_spawnattr_destroy(&attr);

    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s", s->conf.loader,
                 strerror(rc));
        goto failed;
    }

spawned:

    close(p[1]);
    close(logfd);

    if (resfd != -1) {
        close(resfd);
    }

    l->pid = pid;
    l->ready_fd = p[0];
    l->nready = 0;
    l->phase = SUP_STARTING;
    l->spawned = shuttle_mono_ms();
    l->deadline = l->spawned + s->conf.start_timeout_ms;

    /* its readiness pipe polled instead of its socket */
    sup_sync(l);
    sup_due(sup, l->deadline);
    sup_changed(sup);

    return 0;

failed:

    if (p[0] != -1) {
        close(p[0]);
    }

    if (p[1] != -1) {
        close(p[1]);
    }

    if (logfd != -1) {
        close(logfd);
    }

    if (resfd != -1) {
        close(resfd);
    }

    return -1;
}


/*
 * A loader killed while its cgroup's OOM kills went up died of its memory
 * limit: what says so, naming the limit, and so does its runtime log.
 */

void
sup_oom(shuttle_supervise_t *sup, sup_loader_t *l, int status, char *what,
    size_t len)
{
    int    fd, n;
    long   kills;
    char   line[256], limit[32], path[SHUTTLE_PATH_MAX + 16];

    if (sup->s->conf.sandbox == NULL || !WIFSIGNALED(status)
        || WTERMSIG(status) != SIGKILL)
    {
        return;
    }

    kills = shuttle_sandbox_oom_kills(sup->s->conf.sandbox, l->project,
                                      l->leaf);

    if (kills <= l->ooms || kills < 0) {
        return;
    }

    l->ooms = kills;

    shuttle_sandbox_size(l->memory, limit, sizeof(limit));
    snprintf(what, len, "killed: out of memory (its limit, --memory, is "
             "%s)", limit);

    n = snprintf(line, sizeof(line), "shuttle: loader %s\n", what);
    snprintf(path, sizeof(path), "%s/runtime.log", l->dir);

    fd = shuttle_fsafe_open(sup->s->conf.data, path, O_WRONLY | O_APPEND, 0);
    if (fd != -1) {
        (void) !write(fd, line, n);
        close(fd);
    }
}


/*
 * The loader in its project's sandbox: it sees its deployment (read-only),
 * its SQLite directory (read-write, the project's), the loader program
 * and the PostgreSQL server's socket directory; it runs as the project's
 * uid, in its cgroup "service", with the service's seccomp filter.
 */

static int
sup_spawn_sandboxed(shuttle_supervise_t *sup, sup_loader_t *l,
    const int *fds, size_t nfds, char **argv, char **envp, pid_t *pid,
    char *err, size_t errlen)
{
    char              sqlite[SHUTTLE_PATH_MAX], pg[SHUTTLE_PATH_MAX];
    size_t            n;
    shuttle_bind_t    binds[4];
    shuttle_spawn_t   sp;
    shuttle_limits_t  limits;
    shuttle_serve_t  *s;

    s = sup->s;

    if (shuttle_deploy_tenant(s, l->project, &sp, &limits, err, errlen)
        != 0)
    {
        return -1;
    }

    l->memory = limits.memory;

    if ((size_t) snprintf(sqlite, sizeof(sqlite),
                          "%s/projects/%s/resources/sqlite", s->conf.data,
                          l->project)
        >= sizeof(sqlite))
    {
        snprintf(err, errlen, "sqlite directory: path too long");
        return -1;
    }

    n = 0;

    binds[n].path = l->dir;
    binds[n].rw = 0;
    binds[n++].optional = 0;

    binds[n].path = s->conf.loader;
    binds[n].rw = 0;
    binds[n++].optional = 0;

    if (access(sqlite, F_OK) == 0) {
        /* the project's alone: no other uid reads its data, nginx's
           workers following some link included */
        if (shuttle_fsafe_chown(s->conf.data, sqlite, sp.uid, sp.gid, err,
                                errlen) != 0) {
            return -1;
        }

        if (sp.uid != getuid() && chmod(sqlite, 0700) == -1) {
            snprintf(err, errlen, "chmod %s: %s", sqlite, strerror(errno));
            return -1;
        }

        binds[n].path = sqlite;
        binds[n].rw = 1;
        binds[n++].optional = 0;
    }

    if (sup_postgres_dir(s, pg, sizeof(pg)) != NULL) {
        binds[n].path = pg;
        binds[n].rw = 0;
        binds[n++].optional = 1;
    }

    /*
     * A cgroup leaf of its own: the limits are each loader's, so a
     * loader that filled its tasks cannot starve the next one's start
     */
    snprintf(l->leaf, sizeof(l->leaf), "loader-%lld-%lld",
             (long long) l->id, (long long) l->spawning);

    sp.kind = SHUTTLE_SANDBOX_SERVICE;
    sp.cgroup = l->leaf;
    sp.host_network = s->conf.host_network;
    sp.binds = binds;
    sp.nbinds = n;
    sp.cwd = l->dir;
    sp.fds = fds;
    sp.nfds = nfds;
    sp.setsid = 1;

    l->ooms = shuttle_sandbox_oom_kills(s->conf.sandbox, l->project,
                                        l->leaf);

    return shuttle_sandbox_spawn(s->conf.sandbox, &sp, s->conf.loader, argv,
                                 envp, pid, err, errlen);
}


/* the directory of the PostgreSQL server's socket that services connect
 * through (--postgres-socket, or the admin DSN's host=/run/postgresql) */

static const char *
sup_postgres_dir(shuttle_serve_t *s, char *buf, size_t size)
{
    return shuttle_provision_pg_socket(s, buf, size);
}


/*
 * Reads what the loader wrote on its pipe: SUP_READY, SUP_FAILED with the
 * reason in msg, or SUP_WAITING for more.
 */

int
sup_read_ready(sup_loader_t *l, char *msg, size_t len)
{
    char     *nl, shown[SUP_READY_MAX];
    ssize_t   n;

    msg[0] = '\0';

    if (l->ready_fd == -1) {
        return SUP_WAITING;
    }

    for ( ;; ) {
        n = read(l->ready_fd, l->ready + l->nready,
                 sizeof(l->ready) - 1 - l->nready);

        if (n > 0) {
            l->nready += n;
            l->ready[l->nready] = '\0';

            if (l->nready < sizeof(l->ready) - 1) {
                continue;
            }
        }

        if (n == -1 && errno == EINTR) {
            continue;
        }

        break;
    }

    nl = memchr(l->ready, '\n', l->nready);

    if (nl == NULL && n != 0 && l->nready < sizeof(l->ready) - 1) {
        /* EAGAIN: a line to come */
        return SUP_WAITING;
    }

    if (nl != NULL) {
        *nl = '\0';
    }

    sup_unwatch(&l->w_main);
    close(l->ready_fd);
    l->ready_fd = -1;

    if (nl != NULL && strcmp(l->ready, "ready") == 0) {
        return SUP_READY;
    }

    /* the loader runs the tenant's code: what it says is escaped */

    n = nl != NULL ? nl - l->ready : (ssize_t) l->nready;

    if (n >= 7 && strncmp(l->ready, "error: ", 7) == 0) {
        shuttle_log_escape(msg, len, l->ready + 7, n - 7);

    } else if (l->nready == 0) {
        snprintf(msg, len, "loader closed its readiness pipe without a "
                 "word");

    } else {
        shuttle_log_escape(shown, sizeof(shown), l->ready, n);
        snprintf(msg, len, "loader said \"%s\" instead of ready", shown);
    }

    return SUP_FAILED;
}
