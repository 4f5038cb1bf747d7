
/*
 * The socket keeper, its messages, and `shuttle-builder stop --all`
 * (keeper.h).
 */


#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keeper.h"
#include "proc.h"


#define KEEPER_CLIENTS   8
#define KEEPER_STOP_MS   15000      /* loaders: SIGTERM, then SIGKILL */
#define KEEPER_WAIT_MS   60000      /* a builder's stop of everything */


typedef struct {
    int64_t      id;
    unsigned     port;
    int          fd;
} keeper_entry_t;


typedef struct {
    keeper_entry_t  *elts;
    size_t           nelts;
    size_t           nalloc;
} keeper_t;


/* the loaders stop --all signalled, waited for together */
typedef struct {
    pid_t           *pids;
    size_t           n;
} keeper_pids_t;


static int keeper_serve(keeper_t *k, int fd);
static void keeper_drop(keeper_t *k, unsigned port);
static int keeper_put(keeper_t *k, int64_t id, unsigned port, int fd);
static int keeper_wait_pid(pid_t pid, int ms);
static void keeper_stop_loader(pid_t pid, const char *so, void *data);
static int64_t keeper_ms(void);


int
shuttle_keeper_main(int argc, char **argv)
{
    int                  lfd, fd, ready, i, n, one;
    char                *end;
    size_t               j;
    keeper_t             k;
    socklen_t            len;
    struct ucred         cred;
    struct pollfd        pfd[1 + KEEPER_CLIENTS];
    struct sockaddr_un   sun;

    ready = -1;

    if (argc >= 1 && (strcmp(argv[0], "--help") == 0
                      || strcmp(argv[0], "-h") == 0))
    {
        printf("usage: shuttle-builder keep [--ready-fd N] SOCKET\n\n"
               "holds the loaders' listening sockets across builder "
               "restarts;\nthe builder starts it (see "
               "docs/internals.md, \"Reliability\")\n");
        return 0;
    }

    if (argc == 3 && strcmp(argv[0], "--ready-fd") == 0) {
        ready = (int) strtol(argv[1], &end, 10);

        if (*end != '\0' || ready < 3) {
            fprintf(stderr, "shuttle-builder keep: --ready-fd \"%s\": not "
                    "a descriptor above 2\n", argv[1]);
            return 2;
        }

        argv += 2;
        argc -= 2;
    }

    if (argc != 1 || strlen(argv[0]) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "usage: shuttle-builder keep [--ready-fd N] "
                "SOCKET (a path shorter than %zu bytes)\n",
                sizeof(sun.sun_path));
        return 2;
    }

    /* "exe" otherwise, spawned as /proc/self/exe: ps and ss say what it is */
    (void) prctl(PR_SET_NAME, "shuttle-keeper", 0, 0, 0);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);

    memset(&k, 0, sizeof(keeper_t));
    memset(&sun, 0, sizeof(struct sockaddr_un));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, argv[0]);

    /* a keeper that answers there already: this one is not needed */

    fd = shuttle_keeper_connect(argv[0]);
    if (fd != -1) {
        close(fd);
        fprintf(stderr, "shuttle-builder keep: %s: a keeper answers "
                "there already\n", argv[0]);
        return 1;
    }

    (void) unlink(argv[0]);

    lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (lfd == -1
        || bind(lfd, (struct sockaddr *) &sun, sizeof(sun)) == -1
        || chmod(argv[0], 0600) == -1
        || listen(lfd, KEEPER_CLIENTS) == -1)
    {
        fprintf(stderr, "shuttle-builder keep: socket %s: %s\n", argv[0],
                strerror(errno));
        return 1;
    }

    if (ready != -1) {
        (void) !write(ready, "ready\n", 6);
        close(ready);
    }

    for (i = 0; i < KEEPER_CLIENTS + 1; i++) {
        pfd[i].fd = -1;
        pfd[i].events = POLLIN;
    }

    pfd[0].fd = lfd;

    for ( ;; ) {
        n = poll(pfd, KEEPER_CLIENTS + 1, -1);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return 1;
        }

        if (pfd[0].revents & POLLIN) {
            fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            len = sizeof(cred);

            if (fd != -1
                && (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)
                    == -1
                    || cred.uid != geteuid()))
            {
                /* root's alone (the mode says so too) */
                close(fd);
                fd = -1;
            }

            for (i = 1; fd != -1 && i < KEEPER_CLIENTS + 1; i++) {
                if (pfd[i].fd == -1) {
                    pfd[i].fd = fd;
                    fd = -1;
                }
            }

            if (fd != -1) {
                close(fd);
            }
        }

        for (i = 1; i < KEEPER_CLIENTS + 1; i++) {
            if (pfd[i].fd == -1 || pfd[i].revents == 0) {
                continue;
            }

            one = keeper_serve(&k, pfd[i].fd);

            if (one != 0) {
                pfd[i].fd = -1;         /* closed by keeper_serve */
            }

            if (one == 1) {
                /* quit */
                for (j = 0; j < k.nelts; j++) {
                    close(k.elts[j].fd);
                }

                (void) unlink(argv[0]);
                return 0;
            }
        }
    }
}


/* one message of the client on fd: 0, -1 when fd was closed, 1: quit */

static int
keeper_serve(keeper_t *k, int fd)
{
    int          pass, n;
    char         msg[SHUTTLE_KEEPER_MSG], out[SHUTTLE_KEEPER_MSG];
    size_t       i;
    unsigned     port;
    long long    id;

    n = shuttle_keeper_recv(fd, msg, sizeof(msg), &pass);

    if (n <= 0) {
        if (pass != -1) {
            close(pass);
        }
        close(fd);
        return -1;
    }

    if (sscanf(msg, "put %lld %u", &id, &port) == 2 && pass != -1) {
        if (keeper_put(k, (int64_t) id, port, pass) != 0) {
            close(pass);
        }
        return 0;
    }

    if (pass != -1) {
        close(pass);
    }

    if (sscanf(msg, "drop %u", &port) == 1) {
        keeper_drop(k, port);
        return 0;
    }

    if (strcmp(msg, "list") == 0) {
        for (i = 0; i < k->nelts; i++) {
            snprintf(out, sizeof(out), "fd %lld %u",
                     (long long) k->elts[i].id, k->elts[i].port);

            if (shuttle_keeper_send(fd, out, k->elts[i].fd) != 0) {
                close(fd);
                return -1;
            }
        }

        snprintf(out, sizeof(out), "end %zu", k->nelts);
        (void) shuttle_keeper_send(fd, out, -1);
        return 0;
    }

    if (strcmp(msg, "quit") == 0) {
        close(fd);
        return 1;
    }

    close(fd);

    return -1;
}


static int
keeper_put(keeper_t *k, int64_t id, unsigned port, int fd)
{
    size_t           n;
    keeper_entry_t  *elts;

    keeper_drop(k, port);

    if (k->nelts == k->nalloc) {
        n = k->nalloc ? k->nalloc * 2 : 64;
        elts = realloc(k->elts, n * sizeof(keeper_entry_t));

        if (elts == NULL) {
            return -1;
        }

        k->elts = elts;
        k->nalloc = n;
    }

    k->elts[k->nelts].id = id;
    k->elts[k->nelts].port = port;
    k->elts[k->nelts].fd = fd;
    k->nelts++;

    return 0;
}


static void
keeper_drop(keeper_t *k, unsigned port)
{
    size_t  i;

    for (i = 0; i < k->nelts; i++) {
        if (k->elts[i].port == port) {
            close(k->elts[i].fd);
            k->elts[i] = k->elts[--k->nelts];
            return;
        }
    }
}


int
shuttle_keeper_connect(const char *path)
{
    int                 fd;
    struct sockaddr_un  sun;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    memset(&sun, 0, sizeof(struct sockaddr_un));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);

    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }

    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == -1) {
        close(fd);
        return -1;
    }

    return fd;
}


int
shuttle_keeper_send(int fd, const char *msg, int pass)
{
    char            ctl[CMSG_SPACE(sizeof(int))];
    ssize_t         n;
    struct iovec    iov;
    struct msghdr   mh;
    struct cmsghdr *c;

    memset(&mh, 0, sizeof(struct msghdr));
    iov.iov_base = (void *) msg;
    iov.iov_len = strlen(msg);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;

    if (pass != -1) {
        memset(ctl, 0, sizeof(ctl));
        mh.msg_control = ctl;
        mh.msg_controllen = sizeof(ctl);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass, sizeof(int));
    }

    do {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);

    return n == (ssize_t) iov.iov_len ? 0 : -1;
}


int
shuttle_keeper_recv(int fd, char *buf, size_t len, int *pass)
{
    char            ctl[CMSG_SPACE(sizeof(int))];
    ssize_t         n;
    struct iovec    iov;
    struct msghdr   mh;
    struct cmsghdr *c;

    *pass = -1;

    memset(&mh, 0, sizeof(struct msghdr));
    iov.iov_base = buf;
    iov.iov_len = len - 1;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof(ctl);

    do {
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    } while (n == -1 && errno == EINTR);

    if (n < 0) {
        return -1;
    }

    for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
            && c->cmsg_len == CMSG_LEN(sizeof(int)))
        {
            memcpy(pass, CMSG_DATA(c), sizeof(int));
        }
    }

    buf[n] = '\0';

    return (int) n;
}


/*
 * shuttle-builder stop --all: a running builder gets SIGUSR2 and stops
 * everything itself; with none, this stops the loaders under DATA and
 * the keeper.
 */

int
shuttle_stop_main(int argc, char **argv)
{
    int            fd, all, i, rc, left;
    size_t         j;
    int64_t        end;
    keeper_pids_t  sent;
    char           keeper[sizeof(((struct sockaddr_un *) 0)->sun_path)
                          + 16];
    pid_t               pid;
    socklen_t           len;
    const char         *sock, *data;
    struct ucred        cred;
    struct sockaddr_un  sun;

    sock = "/run/shuttle/builder.sock";
    data = "/var/lib/shuttle";
    all = 0;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all = 1;

        } else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            sock = argv[++i];

        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];

        } else {
            fprintf(strcmp(argv[i], "--help") == 0 ? stdout : stderr,
                    "usage: shuttle-builder stop --all [--socket PATH] "
                    "[--data DIR]\n\n"
                    "stops the builder, every loader it runs and its "
                    "socket keeper\n(a builder's SIGTERM leaves the "
                    "loaders serving, for the next one)\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    if (!all) {
        fprintf(stderr, "shuttle-builder stop: --all is required (it "
                "stops the loaders too; a SIGTERM to the builder stops "
                "the builder alone)\n");
        return 2;
    }

    rc = 0;

    /* the builder answering on its socket: its pid from the connection */

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd != -1) {
        memset(&sun, 0, sizeof(struct sockaddr_un));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
        len = sizeof(cred);

        if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == 0
            && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
            && cred.pid > 1)
        {
            pid = cred.pid;
            close(fd);
            fd = -1;

            if (kill(pid, SIGUSR2) == -1) {
                fprintf(stderr, "shuttle-builder stop: builder pid %d: "
                        "SIGUSR2: %s\n", (int) pid, strerror(errno));
                return 1;
            }

            if (keeper_wait_pid(pid, KEEPER_WAIT_MS) != 0) {
                fprintf(stderr, "shuttle-builder stop: builder pid %d did "
                        "not exit within %d s\n", (int) pid,
                        KEEPER_WAIT_MS / 1000);
                return 1;
            }

            printf("builder pid %d stopped, with its loaders\n", (int) pid);
        }

        if (fd != -1) {
            close(fd);
        }
    }

    /* what is left: loaders under DATA (none if the builder stopped them),
       SIGTERM to all, then waited for together; SIGKILL after the grace */

    memset(&sent, 0, sizeof(keeper_pids_t));

    if (shuttle_proc_each_loader(data, keeper_stop_loader, &sent) < 0) {
        fprintf(stderr, "shuttle-builder stop: /proc: %s\n",
                strerror(errno));
        rc = 1;
    }

    end = keeper_ms() + KEEPER_STOP_MS;

    for (j = 0; j < sent.n; j++) {
        left = (int) (end - keeper_ms());

        if (keeper_wait_pid(sent.pids[j], left > 0 ? left : 0) != 0) {
            fprintf(stderr, "shuttle-builder stop: loader pid %d did not "
                    "stop within %d s: SIGKILL\n", (int) sent.pids[j],
                    KEEPER_STOP_MS / 1000);
            (void) kill(sent.pids[j], SIGKILL);
            (void) keeper_wait_pid(sent.pids[j], 2000);
        }
    }

    if (sent.n > 0) {
        printf("%zu loaders stopped\n", sent.n);
    }

    free(sent.pids);

    snprintf(keeper, sizeof(keeper), "%s%s", sock, SHUTTLE_KEEPER_SUFFIX);

    fd = shuttle_keeper_connect(keeper);

    if (fd != -1) {
        (void) shuttle_keeper_send(fd, "quit", -1);
        close(fd);
        printf("socket keeper %s stopped\n", keeper);
    }

    return rc;
}


static void
keeper_stop_loader(pid_t pid, const char *so, void *data)
{
    pid_t          *pids;
    keeper_pids_t  *sent;

    sent = data;

    (void) kill(pid, SIGTERM);

    pids = realloc(sent->pids, (sent->n + 1) * sizeof(pid_t));
    if (pids == NULL) {
        return;
    }

    sent->pids = pids;
    sent->pids[sent->n++] = pid;
}


static int64_t
keeper_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* 0 once pid has exited, -1 if it runs after ms */

static int
keeper_wait_pid(pid_t pid, int ms)
{
    int            pfd;
    struct pollfd  p;

    pfd = (int) syscall(SYS_pidfd_open, pid, 0);

    if (pfd == -1) {
        return errno == ESRCH ? 0 : -1;
    }

    p.fd = pfd;
    p.events = POLLIN;

    if (poll(&p, 1, ms) == 1) {
        close(pfd);
        return 0;
    }

    close(pfd);

    return -1;
}
