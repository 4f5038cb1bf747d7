
/*
 * Loaders across builder restarts: the socket keeper's client (each
 * listening socket put there as it is bound, dropped as it is closed on
 * purpose, all taken back at start) and the adoption of the loaders a
 * builder before this one started (supervise_int.h, keeper.h).
 */

#include "supervise.h"
#include "supervise_int.h"

#include <sys/syscall.h>


#define SUP_KEEPER_WAIT_MS  2000


static int sup_keeper_spawn(shuttle_supervise_t *sup, char *err,
    size_t errlen);
static int sup_keeper_list(shuttle_supervise_t *sup, char *err,
    size_t errlen);
static int sup_bind_port(uint16_t port);
static void sup_leaf_of(pid_t pid, char *leaf, size_t len);


/* the keeper's connection, for sup_unkeep() from sup_free() */
static int  sup_keeper_conn = -1;


int
shuttle_supervise_keeper(shuttle_supervise_t *sup, char *err, size_t errlen)
{
    return sup_keeper_open(sup, err, errlen);
}


/* a socket kept for port, not taken yet */

int
shuttle_supervise_kept(shuttle_supervise_t *sup, uint16_t port)
{
    size_t  i;

    for (i = 0; i < sup->nkept; i++) {
        if (sup->kept[i].fd != -1 && sup->kept[i].port == port) {
            return 1;
        }
    }

    return 0;
}


/*
 * At start: the keeper that answers at SOCKET.keeper (one is started if
 * none does), and the sockets it kept, for sup_kept_take().
 */

int
sup_keeper_open(shuttle_supervise_t *sup, char *err, size_t errlen)
{
    if ((size_t) snprintf(sup->keeper, sizeof(sup->keeper), "%s%s",
                          sup->s->conf.socket, SHUTTLE_KEEPER_SUFFIX)
        >= sizeof(sup->keeper))
    {
        snprintf(err, errlen, "keeper socket %s%s: path too long",
                 sup->s->conf.socket, SHUTTLE_KEEPER_SUFFIX);
        return -1;
    }

    sup->keeper_fd = shuttle_keeper_connect(sup->keeper);

    if (sup->keeper_fd == -1) {
        if (sup_keeper_spawn(sup, err, errlen) != 0) {
            return -1;
        }

        sup->keeper_fd = shuttle_keeper_connect(sup->keeper);

        if (sup->keeper_fd == -1) {
            snprintf(err, errlen, "keeper %s: connect: %s", sup->keeper,
                     strerror(errno));
            return -1;
        }

    } else if (sup_keeper_list(sup, err, errlen) != 0) {
        close(sup->keeper_fd);
        sup->keeper_fd = -1;
        return -1;
    }

    /* a keeper that stopped reading never blocks the main loop: a put
       it cannot take is logged, and lost */
    (void) fcntl(sup->keeper_fd, F_SETFL, O_NONBLOCK);

    sup_keeper_conn = sup->keeper_fd;

    /* readable: it closed, it died */
    sup_watch(&sup->w_keeper, SUP_W_KEEPER, sup, sup->keeper_fd, EPOLLIN);

    return 0;
}


/* `shuttle-builder keep`, in a session of its own: ready once it says so */

static int
sup_keeper_spawn(shuttle_supervise_t *sup, char *err, size_t errlen)
{
    int                         rc, p[2];
    char                        buf[16];
    char                       *argv[6];
    pid_t                       pid;
    ssize_t                     n;
    sigset_t                    mask, dflt;
    struct pollfd               pfd;
    posix_spawnattr_t           attr;
    posix_spawn_file_actions_t  fa;

    if (pipe2(p, O_CLOEXEC) == -1) {
        snprintf(err, errlen, "keeper: pipe: %s", strerror(errno));
        return -1;
    }

    argv[0] = "shuttle-builder";
    argv[1] = "keep";
    argv[2] = "--ready-fd";
    argv[3] = "3";
    argv[4] = sup->keeper;
    argv[5] = NULL;

    (void) posix_spawn_file_actions_init(&fa);
    (void) posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
                                            0);
    (void) posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY,
                                            0);
    (void) posix_spawn_file_actions_adddup2(&fa, 1, 2);
    (void) posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    (void) posix_spawn_file_actions_addclosefrom_np(&fa, 4);

    sigemptyset(&mask);
    sigfillset(&dflt);
    sigdelset(&dflt, SIGKILL);
    sigdelset(&dflt, SIGSTOP);

    (void) posix_spawnattr_init(&attr);
    (void) posix_spawnattr_setsigmask(&attr, &mask);
    (void) posix_spawnattr_setsigdefault(&attr, &dflt);
    (void) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK
                                           | POSIX_SPAWN_SETSIGDEF
                                           | POSIX_SPAWN_SETSID);

    /* this very program, even if a package upgrade replaced the file */
    rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, NULL);

    (void) posix_spawn_file_actions_destroy(&fa);
    (void) posix_spawnattr_destroy(&attr);
    close(p[1]);

    if (rc != 0) {
        snprintf(err, errlen, "keeper: cannot run /proc/self/exe: %s",
                 strerror(rc));
        close(p[0]);
        return -1;
    }

    sup->keeper_pid = pid;

    pfd.fd = p[0];
    pfd.events = POLLIN;

    n = 0;

    if (poll(&pfd, 1, SUP_KEEPER_WAIT_MS) == 1) {
        n = read(p[0], buf, sizeof(buf));
    }

    close(p[0]);

    if (n != 6 || memcmp(buf, "ready\n", 6) != 0) {
        snprintf(err, errlen, "keeper pid %d on %s: not ready within %d ms",
                 (int) pid, sup->keeper, SUP_KEEPER_WAIT_MS);
        (void) kill(pid, SIGKILL);
        return -1;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "socket keeper started: pid %d on %s",
                (int) pid, sup->keeper);

    return 0;
}


/* what the keeper kept: every socket, with its deployment and port */

static int
sup_keeper_list(shuttle_supervise_t *sup, char *err, size_t errlen)
{
    int            fd, n;
    char           msg[SHUTTLE_KEEPER_MSG];
    unsigned       port;
    long long      id;
    sup_kept_t    *k;
    struct pollfd  pfd;

    if (shuttle_keeper_send(sup->keeper_fd, "list", -1) != 0) {
        snprintf(err, errlen, "keeper %s: list: %s", sup->keeper,
                 strerror(errno));
        return -1;
    }

    pfd.fd = sup->keeper_fd;
    pfd.events = POLLIN;

    for ( ;; ) {
        if (poll(&pfd, 1, SUP_KEEPER_WAIT_MS) != 1) {
            snprintf(err, errlen, "keeper %s: no answer to list within %d "
                     "ms", sup->keeper, SUP_KEEPER_WAIT_MS);
            return -1;
        }

        n = shuttle_keeper_recv(sup->keeper_fd, msg, sizeof(msg), &fd);

        if (n <= 0) {
            snprintf(err, errlen, "keeper %s: list: %s", sup->keeper,
                     n == 0 ? "connection closed" : strerror(errno));
            return -1;
        }

        if (strncmp(msg, "end ", 4) == 0) {
            break;
        }

        if (fd == -1 || sscanf(msg, "fd %lld %u", &id, &port) != 2
            || port == 0 || port > 65535)
        {
            if (fd != -1) {
                close(fd);
            }
            continue;
        }

        k = realloc(sup->kept, (sup->nkept + 1) * sizeof(sup_kept_t));

        if (k == NULL) {
            close(fd);
            snprintf(err, errlen, "%s", strerror(ENOMEM));
            return -1;
        }

        sup->kept = k;
        k[sup->nkept].id = (int64_t) id;
        k[sup->nkept].port = (uint16_t) port;
        k[sup->nkept].fd = fd;
        sup->nkept++;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "socket keeper %s: %zu sockets kept",
                sup->keeper, sup->nkept);

    return 0;
}


/*
 * The listening socket on port for deployment id: the keeper's if it is
 * one (a TCP socket of 127.0.0.1:port that listens), else one bound on
 * that port anew (*fresh: the keeper has no copy of it yet); -1 when
 * neither.
 */

int
sup_kept_take(shuttle_supervise_t *sup, int64_t id, uint16_t port,
    int *fresh)
{
    int                  fd, listening;
    size_t               i;
    socklen_t            len;
    struct sockaddr_in   sin;

    *fresh = 0;

    for (i = 0; i < sup->nkept; i++) {
        if (sup->kept[i].fd == -1 || sup->kept[i].port != port) {
            continue;
        }

        fd = sup->kept[i].fd;
        sup->kept[i].fd = -1;

        len = sizeof(sin);
        memset(&sin, 0, sizeof(sin));

        if (getsockname(fd, (struct sockaddr *) &sin, &len) == 0
            && sin.sin_family == AF_INET && ntohs(sin.sin_port) == port
            && (len = sizeof(listening),
                getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)
                == 0)
            && listening)
        {
            if (sup->kept[i].id != id) {
                shuttle_log(SHUTTLE_LOG_INFO, "socket keeper: port %u was "
                            "#%lld's, now #%lld's", (unsigned) port,
                            (long long) sup->kept[i].id, (long long) id);
            }

            return sup_high_fd(fd);
        }

        shuttle_log(SHUTTLE_LOG_WARN, "socket keeper: the socket kept for "
                    "port %u is not a socket listening on it: closed",
                    (unsigned) port);
        close(fd);
        break;
    }

    /* none kept: bound anew on the same port, the zone's */

    fd = sup_bind_port(port);

    if (fd != -1) {
        *fresh = 1;
        shuttle_log(SHUTTLE_LOG_INFO, "deploy #%lld: no socket kept for "
                    "port %u: bound anew on it", (long long) id,
                    (unsigned) port);
    }

    return fd;
}


/* the sockets of the keeper's that no deployment took: dropped */

void
shuttle_supervise_kept_done(shuttle_supervise_t *sup)
{
    size_t  i;

    for (i = 0; i < sup->nkept; i++) {
        if (sup->kept[i].fd == -1) {
            continue;
        }

        shuttle_log(SHUTTLE_LOG_INFO, "socket keeper: port %u (#%lld) is "
                    "no running deployment's: dropped",
                    (unsigned) sup->kept[i].port,
                    (long long) sup->kept[i].id);

        close(sup->kept[i].fd);
        sup_unkeep(sup->kept[i].port);
    }

    free(sup->kept);
    sup->kept = NULL;
    sup->nkept = 0;
}


static int
sup_bind_port(uint16_t port)
{
    int                  fd, one;
    struct sockaddr_in   sin;

    one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }

    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sin, 0, sizeof(struct sockaddr_in));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(fd, SUP_BACKLOG) == -1)
    {
        close(fd);
        return -1;
    }

    return sup_high_fd(fd);
}


/* l's socket, bound (or taken back): a copy to the keeper */

void
sup_keep(shuttle_supervise_t *sup, sup_loader_t *l)
{
    char  msg[SHUTTLE_KEEPER_MSG];

    if (sup->keeper_fd == -1 || l->listen_fd == -1) {
        return;
    }

    snprintf(msg, sizeof(msg), "put %lld %u", (long long) l->id,
             (unsigned) l->port);

    if (shuttle_keeper_send(sup->keeper_fd, msg, l->listen_fd) != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "socket keeper: deploy %s #%lld: "
                    "put port %u: %s", l->project, (long long) l->id,
                    (unsigned) l->port, strerror(errno));
    }
}


/* a socket closed on purpose: the keeper's copy too */

void
sup_unkeep(uint16_t port)
{
    char  msg[SHUTTLE_KEEPER_MSG];

    if (sup_keeper_conn == -1 || port == 0) {
        return;
    }

    snprintf(msg, sizeof(msg), "drop %u", (unsigned) port);
    (void) shuttle_keeper_send(sup_keeper_conn, msg, -1);
}


/* the builder exits: what the keeper holds stays there */

void
sup_keeper_close(shuttle_supervise_t *sup)
{
    size_t  i;

    for (i = 0; i < sup->nkept; i++) {
        if (sup->kept[i].fd != -1) {
            close(sup->kept[i].fd);
        }
    }

    free(sup->kept);
    sup->kept = NULL;
    sup->nkept = 0;

    if (sup->keeper_fd != -1) {
        sup_unwatch(&sup->w_keeper);
        close(sup->keeper_fd);
        sup->keeper_fd = -1;
    }

    sup_keeper_conn = -1;
}


/* the everything stop: the keeper exits, closing what it kept */

void
shuttle_supervise_keeper_quit(shuttle_supervise_t *sup)
{
    if (sup->keeper_fd != -1) {
        (void) shuttle_keeper_send(sup->keeper_fd, "quit", -1);
        shuttle_log(SHUTTLE_LOG_INFO, "socket keeper %s: stopped",
                    sup->keeper);
    }

    sup_keeper_close(sup);
}


/* the keeper's connection closed: it died; another, given every socket */

void
sup_keeper_lost(shuttle_supervise_t *sup)
{
    char           err[512];
    unsigned       n;
    sup_loader_t  *l;

    sup_unwatch(&sup->w_keeper);
    close(sup->keeper_fd);
    sup->keeper_fd = -1;
    sup_keeper_conn = -1;

    if (sup->s->stopping) {
        return;
    }

    shuttle_log(SHUTTLE_LOG_WARN, "socket keeper %s: gone: starting "
                "another", sup->keeper);

    if (sup_keeper_spawn(sup, err, sizeof(err)) != 0
        || (sup->keeper_fd = shuttle_keeper_connect(sup->keeper)) == -1)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "socket keeper: %s: the loaders' "
                    "sockets are not kept across a restart",
                    err[0] ? err : strerror(errno));
        return;
    }

    sup_keeper_conn = sup->keeper_fd;

    /* every socket: blocking meanwhile, so that none is lost to a full
       send buffer */
    n = 0;

    for (l = sup->loaders; l != NULL; l = l->next) {
        sup_keep(sup, l);
        n++;
    }

    (void) fcntl(sup->keeper_fd, F_SETFL, O_NONBLOCK);

    sup_watch(&sup->w_keeper, SUP_W_KEEPER, sup, sup->keeper_fd, EPOLLIN);

    shuttle_log(SHUTTLE_LOG_INFO, "socket keeper %s: the sockets of %u "
                "loaders handed to the new keeper", sup->keeper, n);
}


/*
 * pid, a loader of l's service that a builder before this one started,
 * is l's: watched on a pidfd (it is not our child), its cgroup leaf read
 * from /proc.  -1 if it is gone already.
 */

int
sup_adopt(shuttle_supervise_t *sup, sup_loader_t *l, pid_t pid)
{
    int  fd;

    fd = (int) syscall(SYS_pidfd_open, pid, 0);

    /* the pidfd first, then the check: the pid cannot be reused between */
    if (fd == -1 || !shuttle_proc_is_loader(pid, l->so)) {
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    l->pid = pid;
    l->pidfd = fd;
    l->adopted = 1;
    l->phase = SUP_RUNNING;
    sup_sync(l);
    sup_changed(sup);

    if (sup->s->conf.health_ms > 0) {
        l->hc_at = shuttle_mono_ms() + sup->s->conf.health_ms;
        sup_due(sup, l->hc_at);
    }
    l->purpose = SUP_RESTART;
    l->idle = 0;                        /* read when it exits */
    l->spawned = shuttle_mono_ms();

    sup_leaf_of(pid, l->leaf, sizeof(l->leaf));

    return 0;
}


/* its cgroup leaf, "loader-ID-SPAWNING", the last part of its path */

static void
sup_leaf_of(pid_t pid, char *leaf, size_t len)
{
    char   path[64], line[1024], *p;
    FILE  *f;

    leaf[0] = '\0';

    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);

    f = fopen(path, "re");
    if (f == NULL) {
        return;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        p = strrchr(line, '/');

        if (p != NULL && strncmp(p + 1, "loader-", 7) == 0
            && strlen(p + 1) < len)
        {
            strcpy(leaf, p + 1);
            break;
        }
    }

    fclose(f);
}


int
sup_pidfd_exited(int pidfd)
{
    struct pollfd  pfd;

    pfd.fd = pidfd;
    pfd.events = POLLIN;
    pfd.revents = 0;

    return poll(&pfd, 1, 0) == 1;
}
