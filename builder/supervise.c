
/*
 * Loaders: start, switch, supervise, stop.
 */


#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include <shuttle_loader.h>

#include "deploy.h"
#include "fault.h"
#include "fsafe.h"
#include "log.h"
#include "proc.h"
#include "metrics.h"
#include "provision.h"
#include "supervise.h"
#include "tenant.h"


#define SUP_BACKLOG        511
#define SUP_READY_MAX      512
#define SUP_TAIL_LINES     10
#define SUP_TAIL_BYTES     1536
#define SUP_FIRST_FD       6          /* 0-5 are the loader's contract */
#define SUP_LINGER_MS      2000       /* a refused connection's reading */
#define SUP_FALLBACK_MS    (10 * 60 * 1000)  /* a new deployment that
                                               crash-loops this soon goes
                                               back to the one before */
#define SUP_WARM_DELAY_MS  10         /* a used warm loader's successor
                                         starts after the loader it
                                         spawned had the CPU to itself */


typedef enum {
    SUP_STARTING = 0,               /* spawned, waiting for "ready" */
    SUP_RUNNING,
    SUP_BACKOFF,                    /* died: restarted at the deadline */
    SUP_IDLE                        /* scaled to zero: no process, the
                                       socket polled for a connection */
} sup_phase_t;


typedef enum {
    SUP_NEW = 0,                    /* a deployment's first loader */
    SUP_RESTART,                    /* after a crash, same socket */
    SUP_TAKEOVER,                   /* running before the builder started */
    SUP_WAKE                        /* idle, a connection came */
} sup_purpose_t;


#define SUP_LEAF_MAX  48


typedef struct sup_loader_s {
    int64_t                 id;
    char                    project[SHUTTLE_NAME_MAX + 1];
    char                    so[SHUTTLE_PATH_MAX];
    char                    dir[SHUTTLE_PATH_MAX];
    sup_phase_t             phase;
    sup_purpose_t           purpose;
    pid_t                   pid;            /* 0: none at the moment */
    int                     listen_fd;
    uint16_t                port;
    int                     ready_fd;       /* -1 unless starting */
    char                    ready[SUP_READY_MAX];
    size_t                  nready;
    int64_t                 spawned;        /* monotonic ms */
    int64_t                 spawning;       /* monotonic us, as the spawn
                                               began: its start time */
    int64_t                 deadline;       /* start timeout or restart */
    int64_t                 crashes[SHUTTLE_CRASH_LIMIT];
    unsigned                ncrashes;       /* within the window */
    pid_t                   old_pid;        /* takeover: the old loader */
    pid_t                   replaces;       /* renew: the supervised loader
                                               stopped once this is ready */
    char                    leaf[SUP_LEAF_MAX];  /* its cgroup: every
                                               loader a leaf of its own,
                                               "loader-ID-SPAWNING" */
    long                    ooms;           /* the cgroup's OOM kills when
                                               it was spawned */
    uint64_t                memory;         /* its memory limit */
    int64_t                 idle;           /* the --idle it got, ms */
    int64_t                 idle_since;     /* wall clock ms, idle only */
    int64_t                 refuse_until;   /* idle: a wake failed, and
                                               until then connections get
                                               502 without another try */
    const char             *woken_by;       /* SUP_WAKE: "a request" ... */
    char                    wake_error[SHUTTLE_REASON_MAX + 64];
                                            /* why the last wake failed:
                                               the 502s until refuse_until */
    int64_t                 wake_at;        /* SUP_WAKE: monotonic us */
    int                     hc_fd;          /* a health check's connection,
                                               when hc_state */
    int                     hc_state;       /* SUP_HC_* */
    int64_t                 hc_at;          /* running: the next check, or
                                               the one on its way's
                                               deadline (monotonic ms) */
    unsigned                hc_failed;      /* checks failed in a row */
    unsigned                hc_killed:1;    /* killed for not answering */
    char                    crash[160];     /* the last crash: "pid 42
                                               killed by signal 9" */
    int64_t                 live_at;        /* went live (monotonic ms):
                                               a crash loop soon after
                                               falls back; 0 unknown */
    struct sup_loader_s    *next;
} sup_loader_t;


/* a connection refused with a 502, read to its end before it is closed */
typedef struct sup_refused_s {
    int                     fd;
    int64_t                 deadline;
    struct sup_refused_s   *next;
} sup_refused_t;


/* a loader sent a signal, waited for until it is reaped */
typedef struct sup_dying_s {
    pid_t                   pid;
    int64_t                 id;
    char                    project[SHUTTLE_NAME_MAX + 1];
    char                    leaf[SUP_LEAF_MAX];
    int64_t                 kill_at;        /* SIGKILL then; 0: sent */
    struct sup_dying_s     *next;
} sup_dying_t;


struct shuttle_supervise_s {
    shuttle_serve_t        *s;
    sup_loader_t           *loaders;
    sup_dying_t            *dying;
    sup_refused_t          *refused;
    uint32_t                next_port;
    int64_t                 warm_at;        /* start the next warm loader
                                               then (monotonic ms), 0 */
};


/* a running loader's health check: "OPTIONS *", answered without the
   service's code (loader/http.c) */
#define SUP_HC_NONE        0
#define SUP_HC_CONNECTING  1
#define SUP_HC_SENT        2
#define SUP_HC_FAILS       3            /* in a row: killed */
#define SUP_HC_REQUEST     "OPTIONS * HTTP/1.1\r\nHost: shuttle-builder\r\n" \
                           "Connection: close\r\n\r\n"


/* the readiness pipe's verdict */
#define SUP_WAITING   0
#define SUP_READY     1
#define SUP_FAILED    2


static void sup_hc_start(shuttle_supervise_t *sup, sup_loader_t *l,
    int64_t now);
static void sup_hc_io(shuttle_supervise_t *sup, sup_loader_t *l,
    short revents);
static void sup_hc_done(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *failed);
static void sup_hc_close(sup_loader_t *l);
static int64_t sup_fallback(shuttle_supervise_t *sup, const char *project,
    int64_t id);
static int sup_bind(shuttle_supervise_t *sup, uint16_t *port, char *err,
    size_t errlen);
static int sup_high_fd(int fd);
static int sup_spawn(shuttle_supervise_t *sup, sup_loader_t *l, char *err,
    size_t errlen);
static int sup_spawn_sandboxed(shuttle_supervise_t *sup, sup_loader_t *l,
    const int *fds, size_t nfds, char **argv, char **envp, pid_t *pid,
    char *err, size_t errlen);
static const char *sup_postgres_dir(shuttle_serve_t *s, char *buf,
    size_t size);
static int sup_read_ready(sup_loader_t *l, char *msg, size_t len);
static void sup_ready(shuttle_supervise_t *sup, sup_loader_t *l);
static void sup_start_failed(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *why, int exited, int timeout);
static void sup_crash(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *what);
static void sup_stop(shuttle_supervise_t *sup, sup_loader_t *l, int sig);
static void sup_release(shuttle_supervise_t *sup, const char *project,
    char *leaf);
static void sup_signal(shuttle_supervise_t *sup, pid_t pid, int64_t id,
    const char *project, const char *leaf, int sig);
static void sup_unlink(shuttle_supervise_t *sup, sup_loader_t *l);
static void sup_free(sup_loader_t *l);
static sup_loader_t *sup_find(shuttle_supervise_t *sup, int64_t id);
static int sup_status(shuttle_supervise_t *sup, int status);
static void sup_exit_text(int status, char *buf, size_t len);
static void sup_oom(shuttle_supervise_t *sup, sup_loader_t *l, int status,
    char *what, size_t len);
static void sup_tail(const char *dir, char *buf, size_t len);
static int64_t sup_idle_ms(shuttle_supervise_t *sup, const char *project);
static void sup_go_idle(shuttle_supervise_t *sup, sup_loader_t *l,
    int64_t since);
static void sup_wake(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *by);
static void sup_wake_failed(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *why);
static unsigned sup_count_crash(sup_loader_t *l);
static void sup_crashed(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *what);
static void sup_census(shuttle_supervise_t *sup);
static void sup_refuse(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *why);
static void sup_linger(shuttle_supervise_t *sup, sup_refused_t *r,
    int eof);


shuttle_supervise_t *
shuttle_supervise_create(shuttle_serve_t *s)
{
    shuttle_supervise_t  *sup;

    sup = calloc(1, sizeof(shuttle_supervise_t));
    if (sup == NULL) {
        return NULL;
    }

    sup->s = s;
    sup->next_port = s->conf.port_lo;

    return sup;
}


void
shuttle_supervise_destroy(shuttle_supervise_t *sup)
{
    sup_loader_t  *l;
    sup_dying_t   *d;

    if (sup == NULL) {
        return;
    }

    while ((l = sup->loaders) != NULL) {
        sup->loaders = l->next;
        sup_free(l);
    }

    while ((d = sup->dying) != NULL) {
        sup->dying = d->next;
        free(d);
    }

    while (sup->refused != NULL) {
        sup_linger(sup, sup->refused, 1);
    }

    free(sup);
}


int
shuttle_supervise_start(shuttle_supervise_t *sup, int64_t id,
    const char *project, const char *reason, char *err, size_t errlen)
{
    int                     rc;
    sup_loader_t           *l;
    shuttle_serve_t        *s;
    shuttle_store_note_t    note;
    shuttle_deploy_tag_t    tag;
    shuttle_deploy_state_t  to;

    s = sup->s;

    if (s->stopping) {
        snprintf(err, errlen, "builder stopped");
        goto refused;
    }

    l = calloc(1, sizeof(sup_loader_t));

    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        goto refused;
    }

    l->id = id;
    l->listen_fd = -1;
    l->ready_fd = -1;
    l->purpose = SUP_NEW;
    snprintf(l->project, sizeof(l->project), "%s", project);

    if (shuttle_deploy_path(l->dir, sizeof(l->dir), s->conf.data, project,
                            id, NULL) != 0
        || shuttle_deploy_path(l->so, sizeof(l->so), s->conf.data, project,
                               id, "service.so") != 0)
    {
        snprintf(err, errlen, "data path too long");
        sup_free(l);
        goto refused;
    }

    l->listen_fd = sup_bind(sup, &l->port, err, errlen);
    if (l->listen_fd == -1) {
        sup_free(l);
        goto refused;
    }

    memset(&note, 0, sizeof(shuttle_store_note_t));
    note.reason = reason;
    note.build_ms = -1;
    note.start_ms = -1;

    to.tag = SHUTTLE_DEPLOY_LOADING;
    to.u.loading.port = l->port;
    to.u.loading.pid = 0;

    rc = shuttle_store_transition(s->store, id, &to, &note, NULL, err,
                                  errlen);
    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: not started: %s",
                    project, (long long) id, err);
        shuttle_deploy_clean(s, project, id);
        shuttle_queue_done(s->queue, project, id);
        sup_free(l);
        return -1;
    }

    shuttle_serve_note(s, project, id, "starting on 127.0.0.1:%u%s%s",
                       (unsigned) l->port, reason ? ": " : "",
                       reason ? reason : "");

    l->next = sup->loaders;
    sup->loaders = l;

    if (sup_spawn(sup, l, err, errlen) != 0) {
        sup_start_failed(sup, l, err, 1, 0);
        return -1;
    }

    if (shuttle_store_set_loader(s->store, id, l->port, l->pid, err,
                                 errlen)
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", project,
                    (long long) id, err);
    }

    shuttle_serve_zone_sync(s, project);
    shuttle_serve_changed(s);

    shuttle_fault(reason != NULL ? "rollback" : "loading");

    return 0;

refused:

    /* before the loading transition: a built one fails, others stay */

    if (shuttle_store_state(s->store, id, &tag) == 0
        && tag == SHUTTLE_DEPLOY_BUILT)
    {
        (void) shuttle_deploy_fail(s, project, id, err, -1);
    }

    shuttle_queue_done(s->queue, project, id);

    return -1;
}


void
shuttle_supervise_takeover(shuttle_supervise_t *sup,
    const shuttle_deployment_t *d, pid_t old_pid)
{
    char             err[SHUTTLE_REASON_MAX];
    sup_loader_t    *l;
    shuttle_serve_t *s;

    s = sup->s;

    l = calloc(1, sizeof(sup_loader_t));
    if (l == NULL) {
        shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s #%lld: takeover: %s",
                    d->project, (long long) d->id, strerror(ENOMEM));
        return;
    }

    l->id = d->id;
    l->listen_fd = -1;
    l->ready_fd = -1;
    l->purpose = SUP_TAKEOVER;
    l->old_pid = old_pid;
    snprintf(l->project, sizeof(l->project), "%s", d->project);

    if (shuttle_deploy_path(l->dir, sizeof(l->dir), s->conf.data, d->project,
                            d->id, NULL) != 0
        || shuttle_deploy_path(l->so, sizeof(l->so), s->conf.data,
                               d->project, d->id, "service.so") != 0)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s #%lld: takeover: data "
                    "path too long", d->project, (long long) d->id);
        free(l);
        return;
    }

    l->next = sup->loaders;
    sup->loaders = l;

    l->listen_fd = sup_bind(sup, &l->port, err, sizeof(err));

    if (l->listen_fd != -1 && d->state.u.running.idle_since != 0
        && old_pid == 0)
    {
        /* idle it stays, on a socket of this builder's */
        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: idle, its socket "
                    "re-created on 127.0.0.1:%u", l->project,
                    (long long) l->id, (unsigned) l->port);
        sup_go_idle(sup, l, d->state.u.running.idle_since);
        return;
    }

    if (l->listen_fd == -1 || sup_spawn(sup, l, err, sizeof(err)) != 0) {
        sup_crash(sup, l, err);
        return;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: taking over: new loader "
                "pid %d on 127.0.0.1:%u%s", l->project, (long long) l->id,
                (int) l->pid, (unsigned) l->port,
                old_pid ? "" : " (no old loader alive)");
}


/*
 * A fresh loader for running deployment id, beside the one serving it:
 * once the new one is ready the zone points to it and the old one
 * drains.  For secrets changed since the deployment started.
 */

int
shuttle_supervise_renew(shuttle_supervise_t *sup, int64_t id,
    const char *project, char *err, size_t errlen)
{
    sup_loader_t     *l, *old;
    shuttle_serve_t  *s;

    s = sup->s;

    if (s->stopping) {
        snprintf(err, errlen, "builder stopped");
        return -1;
    }

    for (old = sup->loaders; old != NULL; old = old->next) {
        if (old->id == id && old->phase == SUP_RUNNING && old->pid > 0
            && old->replaces == 0)
        {
            break;
        }
    }

    if (old == NULL) {
        l = sup_find(sup, id);

        if (l != NULL && l->phase == SUP_IDLE) {
            /* a fresh loader is what it gets anyway: now */
            l->refuse_until = 0;
            sup_wake(sup, l, "a restart");
            return l->phase == SUP_STARTING ? 0 : -1;
        }

        snprintf(err, errlen, "deployment #%lld has no running loader",
                 (long long) id);
        return -1;
    }

    for (l = sup->loaders; l != NULL; l = l->next) {
        if (l->id == id && l != old) {
            snprintf(err, errlen, "deployment #%lld is being restarted "
                     "already", (long long) id);
            return -1;
        }
    }

    l = calloc(1, sizeof(sup_loader_t));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    l->id = id;
    l->listen_fd = -1;
    l->ready_fd = -1;
    l->purpose = SUP_TAKEOVER;
    l->replaces = old->pid;
    snprintf(l->project, sizeof(l->project), "%s", project);
    memcpy(l->dir, old->dir, sizeof(l->dir));
    memcpy(l->so, old->so, sizeof(l->so));

    l->listen_fd = sup_bind(sup, &l->port, err, errlen);

    if (l->listen_fd == -1) {
        sup_free(l);
        return -1;
    }

    l->next = sup->loaders;
    sup->loaders = l;

    if (sup_spawn(sup, l, err, errlen) != 0) {
        sup->loaders = l->next;
        sup_free(l);
        return -1;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: restarting: new loader "
                "pid %d on 127.0.0.1:%u beside pid %d", project,
                (long long) id, (int) l->pid, (unsigned) l->port,
                (int) old->pid);

    shuttle_fault("restart");

    return 0;
}


void
shuttle_supervise_stop_project(shuttle_supervise_t *sup,
    const char *project)
{
    sup_loader_t  *l, *next;

    for (l = sup->loaders; l != NULL; l = next) {
        next = l->next;

        if (strcmp(l->project, project) != 0) {
            continue;
        }

        if (l->purpose == SUP_NEW && l->phase == SUP_STARTING) {
            shuttle_queue_done(sup->s->queue, l->project, l->id);
        }

        sup_stop(sup, l, SIGTERM);
    }
}


void
shuttle_supervise_reap(shuttle_supervise_t *sup)
{
    int             status, verdict, idle;
    char            what[128], msg[SUP_READY_MAX + 128];
    pid_t           pid;
    int64_t         id;
    sup_dying_t    *d, **dp;
    sup_loader_t   *l, *next;

    /*
     * Handling an exit may free other loaders (a switch stops the old
     * one): the walk starts over after each; an exit is reaped once.
     */

    for (l = sup->loaders; l != NULL; l = next) {
        next = l->next;

        if (l->pid <= 0) {
            continue;
        }

        pid = waitpid(l->pid, &status, WNOHANG);

        if (pid != l->pid) {
            continue;
        }

        l->pid = 0;
        status = sup_status(sup, status);
        sup_exit_text(status, what, sizeof(what));
        sup_oom(sup, l, status, what, sizeof(what));
        sup_release(sup, l->project, l->leaf);

        sup_hc_close(l);
        l->hc_at = 0;

        if (l->hc_killed) {
            l->hc_killed = 0;
            snprintf(what, sizeof(what), "hung: no answer to %d health "
                     "checks in a row, killed", SUP_HC_FAILS);
        }

        idle = l->idle > 0 && WIFEXITED(status)
               && WEXITSTATUS(status) == SHUTTLE_LOADER_EXIT_IDLE;

        if (l->phase == SUP_RUNNING && idle) {
            sup_go_idle(sup, l, shuttle_now_ms());
            next = sup->loaders;
            continue;
        }

        if (l->phase == SUP_RUNNING) {
            snprintf(msg, sizeof(msg), "pid %d %s", (int) pid, what);
            sup_crash(sup, l, msg);
            next = sup->loaders;
            continue;
        }

        /* starting: what it said on the pipe before it went */

        verdict = sup_read_ready(l, msg, sizeof(msg));

        if (verdict == SUP_READY) {
            /* ready, and dead already: ready, then a crash */
            id = l->id;
            l->pid = pid;
            sup_ready(sup, l);

            l = sup_find(sup, id);

            if (l != NULL && l->pid == pid) {
                l->pid = 0;

                if (idle) {
                    /* idle already: the builder was slow to look */
                    sup_go_idle(sup, l, shuttle_now_ms());

                } else {
                    sup_crash(sup, l, what);
                }
            }

            next = sup->loaders;
            continue;
        }

        if (verdict == SUP_FAILED) {
            snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " (%s)",
                     what);

        } else {
            snprintf(msg, sizeof(msg), "loader %s before it was ready",
                     what);
        }

        sup_start_failed(sup, l, msg, 1, 0);
        next = sup->loaders;
    }

    for (dp = &sup->dying; *dp != NULL; /* void */) {
        d = *dp;

        pid = waitpid(d->pid, &status, WNOHANG);

        if (pid != d->pid && !(pid == -1 && errno == ECHILD)) {
            dp = &d->next;
            continue;
        }

        if (pid == d->pid) {
            status = sup_status(sup, status);
            sup_exit_text(status, what, sizeof(what));
            shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: loader pid %d "
                        "%s", d->project, (long long) d->id, (int) d->pid,
                        what);
        }

        sup_release(sup, d->project, d->leaf);

        *dp = d->next;
        free(d);
    }
}


size_t
shuttle_supervise_nfds(shuttle_supervise_t *sup)
{
    size_t         n;
    sup_loader_t  *l;

    n = 0;

    sup_refused_t *r;

    for (l = sup->loaders; l != NULL; l = l->next) {
        n += l->ready_fd != -1 || l->phase == SUP_IDLE;
        n += l->hc_state != SUP_HC_NONE;
    }

    for (r = sup->refused; r != NULL; r = r->next) {
        n++;
    }

    return n;
}


size_t
shuttle_supervise_fds(shuttle_supervise_t *sup, struct pollfd *pfd,
    size_t n)
{
    size_t          i;
    sup_loader_t   *l;
    sup_refused_t  *r;

    i = 0;

    for (l = sup->loaders; l != NULL && i < n; l = l->next) {
        if (l->ready_fd != -1 || l->phase == SUP_IDLE) {
            /* idle: a connection in the backlog makes it readable */
            pfd[i].fd = l->phase == SUP_IDLE ? l->listen_fd : l->ready_fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
            i++;
        }

        if (l->hc_state != SUP_HC_NONE && i < n) {
            pfd[i].fd = l->hc_fd;
            pfd[i].events = l->hc_state == SUP_HC_CONNECTING ? POLLOUT
                                                              : POLLIN;
            pfd[i].revents = 0;
            i++;
        }
    }

    for (r = sup->refused; r != NULL && i < n; r = r->next) {
        pfd[i].fd = r->fd;
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
        i++;
    }

    return i;
}


void
shuttle_supervise_io(shuttle_supervise_t *sup, const struct pollfd *pfd,
    size_t n)
{
    int             verdict;
    char            msg[SUP_READY_MAX + 128];
    size_t          i;
    sup_loader_t   *l;
    sup_refused_t  *r;

    for (i = 0; i < n; i++) {
        if (pfd[i].revents == 0) {
            continue;
        }

        for (l = sup->loaders; l != NULL; l = l->next) {
            if ((l->ready_fd == pfd[i].fd && l->phase == SUP_STARTING)
                || (l->listen_fd == pfd[i].fd && l->phase == SUP_IDLE))
            {
                break;
            }

            if (l->hc_state != SUP_HC_NONE && l->hc_fd == pfd[i].fd) {
                sup_hc_io(sup, l, pfd[i].revents);
                break;
            }
        }

        if (l != NULL && l->phase == SUP_RUNNING) {
            continue;       /* a health check's */
        }

        if (l == NULL) {
            for (r = sup->refused; r != NULL; r = r->next) {
                if (r->fd == pfd[i].fd) {
                    sup_linger(sup, r, 0);
                    break;
                }
            }

            continue;
        }

        if (l->phase == SUP_IDLE) {
            if (shuttle_mono_ms() < l->refuse_until) {
                sup_refuse(sup, l, l->wake_error);

            } else {
                sup_wake(sup, l, "a request");
            }

            continue;
        }

        verdict = sup_read_ready(l, msg, sizeof(msg));

        if (verdict == SUP_READY) {
            sup_ready(sup, l);

        } else if (verdict == SUP_FAILED) {
            sup_start_failed(sup, l, msg, 0, 0);
        }
    }
}


int
shuttle_supervise_timeout(shuttle_supervise_t *sup)
{
    int64_t         now, next;
    sup_dying_t    *d;
    sup_loader_t   *l;
    sup_refused_t  *r;

    now = shuttle_mono_ms();
    next = -1;

    for (l = sup->loaders; l != NULL; l = l->next) {
        if (l->phase != SUP_RUNNING && l->phase != SUP_IDLE
            && (next == -1 || l->deadline < next))
        {
            next = l->deadline;
        }

        if (l->phase == SUP_RUNNING && sup->s->conf.health_ms > 0
            && l->pid > 0 && (next == -1 || l->hc_at < next))
        {
            next = l->hc_at;
        }
    }

    for (r = sup->refused; r != NULL; r = r->next) {
        if (next == -1 || r->deadline < next) {
            next = r->deadline;
        }
    }

    if (sup->warm_at != 0 && (next == -1 || sup->warm_at < next)) {
        next = sup->warm_at;
    }

    for (d = sup->dying; d != NULL; d = d->next) {
        if (d->kill_at && (next == -1 || d->kill_at < next)) {
            next = d->kill_at;
        }
    }

    if (next == -1) {
        return -1;
    }

    return next <= now ? 0 : (int) (next - now);
}


void
shuttle_supervise_timers(shuttle_supervise_t *sup)
{
    char            err[SHUTTLE_REASON_MAX];
    int64_t         now;
    sup_dying_t    *d;
    sup_loader_t   *l, *next;
    sup_refused_t  *r, *rnext;

    now = shuttle_mono_ms();

    if (sup->warm_at != 0 && sup->warm_at <= now) {
        sup->warm_at = 0;

        /* one at a time, until the pool is full */

        if (shuttle_sandbox_warm(sup->s->conf.sandbox, sup->s->conf.loader,
                                 sup->s->conf.host_network, err,
                                 sizeof(err))
            != 0)
        {
            shuttle_log(SHUTTLE_LOG_WARN, "%s: the next loaders start with "
                        "an exec", err);

        } else if (!shuttle_sandbox_warm_ready(sup->s->conf.sandbox)) {
            sup->warm_at = now + SUP_WARM_DELAY_MS;
        }
    }

    for (r = sup->refused; r != NULL; r = rnext) {
        rnext = r->next;

        if (r->deadline <= now) {
            sup_linger(sup, r, 1);
        }
    }

    for (l = sup->loaders; l != NULL; l = next) {
        next = l->next;

        if (l->phase == SUP_RUNNING && sup->s->conf.health_ms > 0
            && l->pid > 0)
        {
            if (l->hc_at == 0) {
                l->hc_at = now + sup->s->conf.health_ms;

            } else if (l->hc_at <= now) {
                if (l->hc_state != SUP_HC_NONE) {
                    sup_hc_done(sup, l, "no answer in time");

                } else {
                    sup_hc_start(sup, l, now);
                }
            }

            continue;
        }

        if (l->phase == SUP_RUNNING || l->phase == SUP_IDLE
            || l->deadline > now)
        {
            continue;
        }

        if (l->phase == SUP_STARTING) {
            snprintf(err, sizeof(err), "loader not ready within %u ms",
                     sup->s->conf.start_timeout_ms);
            sup_start_failed(sup, l, err, 0, 1);
            continue;
        }

        /* SUP_BACKOFF: again, on the same socket */

        if (l->purpose == SUP_NEW) {
            l->purpose = SUP_RESTART;
        }

        if (l->listen_fd == -1) {
            l->listen_fd = sup_bind(sup, &l->port, err, sizeof(err));
        }

        if (l->listen_fd == -1 || sup_spawn(sup, l, err, sizeof(err)) != 0) {
            sup_crash(sup, l, err);
            continue;
        }

        shuttle_metrics_count(SHUTTLE_METRIC_RESTARTS);

        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: loader restarted, "
                    "pid %d", l->project, (long long) l->id, (int) l->pid);
    }

    for (d = sup->dying; d != NULL; d = d->next) {
        if (d->kill_at && d->kill_at <= now) {
            shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: loader pid %d "
                        "still there after SIGTERM: SIGKILL", d->project,
                        (long long) d->id, (int) d->pid);
            (void) kill(d->pid, SIGKILL);
            d->kill_at = 0;
        }
    }

    sup_census(sup);
}


unsigned
shuttle_supervise_count(shuttle_supervise_t *sup)
{
    unsigned       n;
    sup_loader_t  *l;

    n = 0;

    for (l = sup->loaders; l != NULL; l = l->next) {
        n++;
    }

    return n;
}


void
shuttle_supervise_shutdown(shuttle_supervise_t *sup, unsigned wait_ms)
{
    char              err[512];
    int64_t           end;
    sigset_t          chld;
    sup_dying_t      *d;
    sup_loader_t     *l;
    shuttle_serve_t  *s;
    struct timespec   ts;

    s = sup->s;

    while ((l = sup->loaders) != NULL) {

        if (l->purpose == SUP_NEW && l->phase == SUP_STARTING) {
            sup_unlink(sup, l);

            if (l->pid > 0) {
                sup_signal(sup, l->pid, l->id, l->project, l->leaf,
                           SIGKILL);
            }

            (void) shuttle_deploy_fail(s, l->project, l->id,
                                       "builder stopped", -1);
            sup_free(l);
            continue;
        }

        /* running: it stays so in the store, with no loader for now */

        if (shuttle_store_set_loader(s->store, l->id, 0, 0, err, sizeof(err))
            != 0)
        {
            shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", l->project,
                        (long long) l->id, err);
        }

        shuttle_serve_zone_sync(s, l->project);

        sup_stop(sup, l, SIGTERM);
    }

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);

    end = shuttle_mono_ms() + wait_ms;

    for ( ;; ) {
        shuttle_supervise_reap(sup);

        if (sup->dying == NULL) {
            return;
        }

        if (shuttle_mono_ms() >= end) {
            break;
        }

        /* SIGCHLD is blocked in every thread: wait for the next one */
        ts.tv_sec = 0;
        ts.tv_nsec = 100 * 1000000;
        (void) sigtimedwait(&chld, NULL, &ts);
    }

    for (d = sup->dying; d != NULL; d = d->next) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: loader pid %d did "
                    "not stop in %u ms: SIGKILL", d->project,
                    (long long) d->id, (int) d->pid, wait_ms);
        (void) kill(d->pid, SIGKILL);
        d->kill_at = 0;
    }

    end = shuttle_mono_ms() + 2000;

    while (sup->dying != NULL && shuttle_mono_ms() < end) {
        ts.tv_sec = 0;
        ts.tv_nsec = 50 * 1000000;
        (void) sigtimedwait(&chld, NULL, &ts);
        shuttle_supervise_reap(sup);
    }
}


/* binds and listens on 127.0.0.1:<the next free port of the range> */

/*
 * A health check: a connection to the loader's port, "OPTIONS *", and
 * its answer within --health-timeout.  A loader that stops answering
 * (stopped, or every thread stuck in the service) fails SUP_HC_FAILS in
 * a row and is killed; its exit is a crash like any other: restarted
 * with backoff, "hung" in the logs and the deployment's reason.
 */

static void
sup_hc_start(shuttle_supervise_t *sup, sup_loader_t *l, int64_t now)
{
    int                 fd;
    struct sockaddr_in  sin;

    l->hc_at = now + sup->s->conf.health_timeout_ms;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: health check: "
                    "socket: %s", l->project, (long long) l->id,
                    strerror(errno));
        l->hc_at = now + sup->s->conf.health_ms;
        return;
    }

    memset(&sin, 0, sizeof(struct sockaddr_in));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(l->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    l->hc_fd = fd;
    l->hc_state = SUP_HC_CONNECTING;

    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        && errno != EINPROGRESS)
    {
        sup_hc_done(sup, l, strerror(errno));
        return;
    }

    /* on loopback it is mostly connected already: POLLOUT at once */
}


static void
sup_hc_io(shuttle_supervise_t *sup, sup_loader_t *l, short revents)
{
    int        err;
    char       buf[64];
    ssize_t    n;
    socklen_t  len;

    if (l->hc_state == SUP_HC_CONNECTING) {
        len = sizeof(err);

        if (getsockopt(l->hc_fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
            err = errno;
        }

        if (err != 0) {
            sup_hc_done(sup, l, strerror(err));
            return;
        }

        n = send(l->hc_fd, SUP_HC_REQUEST, sizeof(SUP_HC_REQUEST) - 1,
                 MSG_NOSIGNAL);

        if (n != (ssize_t) sizeof(SUP_HC_REQUEST) - 1) {
            sup_hc_done(sup, l, n == -1 ? strerror(errno) : "short send");
            return;
        }

        l->hc_state = SUP_HC_SENT;
        return;
    }

    n = recv(l->hc_fd, buf, sizeof(buf) - 1, 0);

    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }

    if (n <= 0) {
        sup_hc_done(sup, l, n == 0 ? "closed without an answer"
                                   : strerror(errno));
        return;
    }

    /* any HTTP answer: the loader's threads run */
    buf[n] = '\0';
    sup_hc_done(sup, l, strncmp(buf, "HTTP/1.", 7) == 0 ? NULL
                                                        : "not HTTP");
}


static void
sup_hc_done(shuttle_supervise_t *sup, sup_loader_t *l, const char *failed)
{
    sup_hc_close(l);
    l->hc_at = shuttle_mono_ms() + sup->s->conf.health_ms;

    if (failed == NULL) {
        if (l->hc_failed > 0) {
            shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: loader pid %d "
                        "answers its health check again", l->project,
                        (long long) l->id, (int) l->pid);
        }

        l->hc_failed = 0;
        return;
    }

    l->hc_failed++;
    shuttle_metrics_count(SHUTTLE_METRIC_HEALTH_FAILURES);

    shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: loader pid %d on "
                "127.0.0.1:%u: health check failed (%u of %d): %s",
                l->project, (long long) l->id, (int) l->pid,
                (unsigned) l->port, l->hc_failed, SUP_HC_FAILS, failed);

    if (l->hc_failed < SUP_HC_FAILS || l->pid <= 0) {
        return;
    }

    shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s #%lld: loader pid %d is hung: "
                "no answer to %d health checks in a row: SIGKILL", l->project,
                (long long) l->id, (int) l->pid, SUP_HC_FAILS);

    l->hc_failed = 0;
    l->hc_killed = 1;
    (void) kill(l->pid, SIGKILL);
}


static void
sup_hc_close(sup_loader_t *l)
{
    if (l->hc_state != SUP_HC_NONE) {
        close(l->hc_fd);
        l->hc_state = SUP_HC_NONE;
    }
}


static int
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

static int
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


static int
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

static void
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

static int
sup_read_ready(sup_loader_t *l, char *msg, size_t len)
{
    char     *nl;
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

    close(l->ready_fd);
    l->ready_fd = -1;

    if (nl != NULL && strcmp(l->ready, "ready") == 0) {
        return SUP_READY;
    }

    if (strncmp(l->ready, "error: ", 7) == 0) {
        snprintf(msg, len, "%s", l->ready + 7);

    } else if (l->nready == 0) {
        snprintf(msg, len, "loader closed its readiness pipe without a "
                 "word");

    } else {
        snprintf(msg, len, "loader said \"%s\" instead of ready", l->ready);
    }

    return SUP_FAILED;
}


static void
sup_ready(shuttle_supervise_t *sup, sup_loader_t *l)
{
    int                     rc;
    char                    err[512], reason[384];
    int64_t                 prev, start_ms;
    sup_loader_t           *old;
    shuttle_serve_t        *s;
    shuttle_store_note_t    note;
    shuttle_deploy_state_t  to;

    s = sup->s;
    start_ms = shuttle_mono_ms() - l->spawned;

    shuttle_metrics_start(l->purpose == SUP_NEW ? SHUTTLE_START_DEPLOY
                          : l->purpose == SUP_WAKE ? SHUTTLE_START_WAKE
                          : l->purpose == SUP_RESTART || l->replaces
                            ? SHUTTLE_START_RESTART
                          : SHUTTLE_START_TAKEOVER,
                          shuttle_mono_us() - l->spawning);

    if (l->ready_fd != -1) {
        close(l->ready_fd);
        l->ready_fd = -1;
    }

    memset(&note, 0, sizeof(shuttle_store_note_t));
    note.build_ms = -1;
    note.start_ms = l->purpose == SUP_NEW ? start_ms : -1;

    if (l->purpose == SUP_NEW) {
        shuttle_serve_note(s, l->project, l->id, "running on 127.0.0.1:%u",
                           (unsigned) l->port);

    } else {
        if (l->purpose == SUP_WAKE) {
            snprintf(reason, sizeof(reason), "woken by %s: pid %d on "
                     "127.0.0.1:%u, ready in %lld ms", l->woken_by,
                     (int) l->pid, (unsigned) l->port,
                     (long long) start_ms);

        } else if (l->purpose == SUP_RESTART && l->crash[0] != '\0') {
            snprintf(reason, sizeof(reason), "loader restarted after %s: "
                     "pid %d on 127.0.0.1:%u", l->crash, (int) l->pid,
                     (unsigned) l->port);

        } else {
            snprintf(reason, sizeof(reason), "%s: pid %d on 127.0.0.1:%u",
                     l->purpose == SUP_RESTART ? "loader restarted"
                     : l->replaces ? "restarted"
                                   : "taken over by a new builder",
                     (int) l->pid, (unsigned) l->port);
        }
        note.reason = reason;
    }

    to.tag = SHUTTLE_DEPLOY_RUNNING;
    to.u.running.port = l->port;
    to.u.running.pid = l->pid;
    to.u.running.started = shuttle_now_ms();

    rc = shuttle_store_transition(s->store, l->id, &to, &note, &prev, err,
                                  sizeof(err));
    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: ready, but %s: "
                    "stopping its loader", l->project, (long long) l->id,
                    err);

        if (l->purpose == SUP_NEW) {
            shuttle_queue_done(s->queue, l->project, l->id);
        }

        sup_stop(sup, l, SIGTERM);
        return;
    }

    l->phase = SUP_RUNNING;

    if (l->purpose == SUP_NEW) {
        shuttle_fault("switch");
    }

    shuttle_serve_zone_sync(s, l->project);

    if (l->purpose != SUP_NEW) {
        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: %s", l->project,
                    (long long) l->id, reason);

        if (l->old_pid > 0) {
            if (shuttle_proc_is_loader(l->old_pid, l->so)) {
                shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: SIGTERM to "
                            "the old loader pid %d", l->project,
                            (long long) l->id, (int) l->old_pid);
                (void) kill(l->old_pid, SIGTERM);
            }

            l->old_pid = 0;
        }

        if (l->replaces > 0) {
            for (old = sup->loaders; old != NULL; old = old->next) {
                if (old != l && old->id == l->id
                    && (old->pid == l->replaces || old->phase == SUP_IDLE))
                {
                    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: the "
                                "previous loader pid %d drains", l->project,
                                (long long) l->id, (int) old->pid);
                    sup_stop(sup, old, SIGTERM);
                    break;
                }
            }

            l->replaces = 0;
        }

        l->purpose = SUP_RESTART;
        shuttle_serve_changed(s);
        return;
    }

    l->live_at = shuttle_mono_ms();

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: running on 127.0.0.1:%u "
                "(loader pid %d, ready in %lld ms)", l->project,
                (long long) l->id, (unsigned) l->port, (int) l->pid,
                (long long) start_ms);

    l->purpose = SUP_RESTART;

    if (prev != 0 && prev != l->id) {
        snprintf(reason, sizeof(reason), "superseded by #%lld",
                 (long long) l->id);

        memset(&note, 0, sizeof(shuttle_store_note_t));
        note.reason = reason;
        note.build_ms = -1;
        note.start_ms = -1;

        to.tag = SHUTTLE_DEPLOY_SUPERSEDED;
        to.u.superseded.by = l->id;

        if (shuttle_store_transition(s->store, prev, &to, &note, NULL, err,
                                     sizeof(err))
            != 0)
        {
            shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", l->project,
                        (long long) prev, err);
        }

        old = sup_find(sup, prev);

        if (old != NULL) {
            shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: superseded by "
                        "#%lld, SIGTERM to its loader pid %d", l->project,
                        (long long) prev, (long long) l->id, (int) old->pid);
            sup_stop(sup, old, SIGTERM);
        }
    }

    shuttle_queue_done(s->queue, l->project, l->id);
    shuttle_serve_changed(s);
}


/* the loader did not come up; exited: it is gone (reaped, or never ran) */

static void
sup_start_failed(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *why, int exited, int timeout)
{
    char              tail[SUP_TAIL_BYTES + 1];
    char              reason[SHUTTLE_REASON_MAX];
    char              project[SHUTTLE_NAME_MAX + 1], leaf[SUP_LEAF_MAX];
    pid_t             pid;
    int64_t           id;
    shuttle_serve_t  *s;

    s = sup->s;

    if (l->ready_fd != -1) {
        close(l->ready_fd);
        l->ready_fd = -1;
    }

    /* the state first, then the signal to what is left of the loader */

    pid = exited ? 0 : l->pid;
    id = l->id;
    memcpy(project, l->project, sizeof(project));
    memcpy(leaf, l->leaf, sizeof(leaf));

    l->pid = 0;

    if (l->replaces != 0) {
        /* a restart that did not come up: the loader it was to replace
           goes on serving, and the deployment stays running */
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: restart failed, "
                    "loader pid %d goes on serving: %s", project,
                    (long long) id, (int) l->replaces, why);
        shuttle_serve_note(s, project, id, "restart failed: %s", why);

        sup_unlink(sup, l);
        sup_free(l);

        pthread_mutex_lock(&s->lock);
        s->renew_failed = id;
        pthread_mutex_unlock(&s->lock);

        shuttle_serve_changed(s);

    } else if (l->purpose == SUP_WAKE) {
        sup_wake_failed(sup, l, why);

    } else if (l->purpose != SUP_NEW) {
        sup_crash(sup, l, why);

    } else {
        sup_tail(l->dir, tail, sizeof(tail));

        snprintf(reason, sizeof(reason), "start failed: %s%s%s", why,
                 tail[0] ? "\nlast lines of runtime.log:\n" : "", tail);

        sup_unlink(sup, l);

        (void) shuttle_deploy_fail(s, project, id, reason, -1);
        shuttle_queue_done(s->queue, project, id);

        sup_free(l);
    }

    if (pid > 0) {
        /* it said why and is on its way out; not ready in time: no mercy */
        sup_signal(sup, pid, id, project, leaf,
                   timeout ? SIGKILL : SIGTERM);
    }
}


/* a running loader died, or a restart did not come up */

static void
sup_crash(shuttle_supervise_t *sup, sup_loader_t *l, const char *what)
{
    char              err[512], serr[256];
    unsigned          n, backoff;
    shuttle_serve_t  *s;

    s = sup->s;
    n = sup_count_crash(l);

    shuttle_metrics_count(SHUTTLE_METRIC_CRASHES);

    snprintf(l->crash, sizeof(l->crash), "%s", what);

    if (n < SHUTTLE_CRASH_LIMIT) {
        backoff = SHUTTLE_BACKOFF_MIN_MS << (n - 1);

        if (backoff > SHUTTLE_BACKOFF_MAX_MS) {
            backoff = SHUTTLE_BACKOFF_MAX_MS;
        }

        l->phase = SUP_BACKOFF;
        l->deadline = shuttle_mono_ms() + backoff;

        /* the API says why it was restarted */
        snprintf(err, sizeof(err), "restarted: loader %s", what);
        (void) shuttle_store_set_reason(s->store, l->id, err, serr,
                                        sizeof(serr));

        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: loader %s; restart "
                    "in %u ms (crash %u of %u in %d s)", l->project,
                    (long long) l->id, what, backoff, n, SHUTTLE_CRASH_LIMIT,
                    SHUTTLE_CRASH_WINDOW_MS / 1000);
        return;
    }

    sup_crashed(sup, l, what);
}


/* one more crash of l: how many within the window now */

static unsigned
sup_count_crash(sup_loader_t *l)
{
    int64_t   now;
    unsigned  i, n;

    now = shuttle_mono_ms();

    for (i = 0, n = 0; i < l->ncrashes; i++) {
        if (now - l->crashes[i] < SHUTTLE_CRASH_WINDOW_MS) {
            l->crashes[n++] = l->crashes[i];
        }
    }

    l->crashes[n < SHUTTLE_CRASH_LIMIT ? n++ : SHUTTLE_CRASH_LIMIT - 1] = now;
    l->ncrashes = n;

    return n;
}


/* SHUTTLE_CRASH_LIMIT crashes within the window: the deployment crashed */

static void
sup_crashed(shuttle_supervise_t *sup, sup_loader_t *l, const char *what)
{
    int                     cut, fresh;
    char                    err[512], reason[128];
    char                    project[SHUTTLE_NAME_MAX + 1];
    int64_t                 id, prev, l_live;
    shuttle_serve_t        *s;
    shuttle_deploy_state_t *to;

    s = sup->s;
    l_live = l->live_at;
    id = l->id;

    /*
     * A deployment that crash-loops minutes after it went live is most
     * likely its own fault: the one it replaced, which served until
     * then, serves again.  One that ran for longer stays crashed (the
     * cause is more likely outside: its database, its secrets).  Found
     * while it is still the project's current one.
     */

    fresh = l_live != 0 && shuttle_mono_ms() - l_live < SUP_FALLBACK_MS;
    prev = fresh ? sup_fallback(sup, l->project, id) : 0;

    to = malloc(sizeof(shuttle_deploy_state_t));

    if (to != NULL) {
        to->tag = SHUTTLE_DEPLOY_CRASHED;
        sup_tail(l->dir, to->u.crashed.log, SUP_TAIL_BYTES + 1);

        /* cut to fit if it must */
        cut = snprintf(to->u.crashed.reason, sizeof(to->u.crashed.reason),
                 "loader crashed %u times within %d s, last: %s%s%s",
                 SHUTTLE_CRASH_LIMIT, SHUTTLE_CRASH_WINDOW_MS / 1000, what,
                 to->u.crashed.log[0] ? "\nlast lines of runtime.log:\n"
                                      : "",
                 to->u.crashed.log);

        if (cut < 0) {
            to->u.crashed.reason[0] = '\0';
        }

        if (shuttle_store_transition(s->store, l->id, to, NULL, NULL, err,
                                     sizeof(err))
            != 0)
        {
            shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", l->project,
                        (long long) l->id, err);
        }

        free(to);
    }

    shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s #%lld: crashed: loader died "
                "%u times within %d s, last %s", l->project,
                (long long) l->id, SHUTTLE_CRASH_LIMIT,
                SHUTTLE_CRASH_WINDOW_MS / 1000, what);

    memcpy(project, l->project, sizeof(project));

    sup_stop(sup, l, SIGTERM);

    if (prev != 0) {
        snprintf(reason, sizeof(reason), "automatic rollback: #%lld "
                 "crash-looped %lld s after it went live", (long long) id,
                 (long long) ((shuttle_mono_ms() - l_live) / 1000));

        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s: #%lld, which "
                    "it replaced, starts again", project, (long long) id,
                    reason, (long long) prev);

        if (shuttle_supervise_start(sup, prev, project, reason, err,
                                    sizeof(err))
            != 0)
        {
            shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s #%lld: automatic "
                        "rollback: %s", project, (long long) prev, err);

        } else {
            shuttle_metrics_count(SHUTTLE_METRIC_AUTO_ROLLBACKS);
        }
    }

    shuttle_serve_zone_sync(s, project);
    shuttle_serve_changed(s);
}


/* the superseded deployment that id replaced, its service.so still there */

typedef struct {
    const char  *data;
    int64_t      by;
    int64_t      found;
} sup_fallback_t;


static int
sup_fallback_one(const shuttle_deployment_t *d, void *data)
{
    char             so[SHUTTLE_PATH_MAX];
    sup_fallback_t  *f;

    f = data;

    if (d->state.tag == SHUTTLE_DEPLOY_SUPERSEDED
        && d->state.u.superseded.by == f->by
        && shuttle_deploy_path(so, sizeof(so), f->data, d->project, d->id,
                               "service.so") == 0
        && access(so, R_OK) == 0)
    {
        f->found = d->id;
        return 1;
    }

    return 0;
}


static int64_t
sup_fallback(shuttle_supervise_t *sup, const char *project, int64_t id)
{
    char               err[256];
    sup_fallback_t     f;
    shuttle_project_t  p;

    if (shuttle_store_project(sup->s->store, project, &p, err, sizeof(err))
        != 0
        || p.current != id)
    {
        return 0;
    }

    f.data = sup->s->conf.data;
    f.by = id;
    f.found = 0;

    if (shuttle_store_each_deployment(sup->s->store, p.id, 64,
                                      sup_fallback_one, &f, err, sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", project,
                    (long long) id, err);
        return 0;
    }

    return f.found;
}


/* the project's idle timeout: its own, or the builder's --idle */

static int64_t
sup_idle_ms(shuttle_supervise_t *sup, const char *project)
{
    char               err[256];
    shuttle_project_t  p;

    if (shuttle_store_project(sup->s->store, project, &p, err, sizeof(err))
            == 0
        && p.idle_ms >= 0)
    {
        return p.idle_ms;
    }

    return sup->s->conf.idle_ms;
}


/*
 * The loader exited for want of connections (or the builder starts with
 * the deployment idle): no process, the socket kept and polled, the zone
 * says idle.  The next connection waits in the backlog for sup_wake().
 */

static void
sup_go_idle(shuttle_supervise_t *sup, sup_loader_t *l, int64_t since)
{
    int               ran;
    char              err[256], after[32];
    shuttle_serve_t  *s;

    s = sup->s;

    ran = l->phase == SUP_RUNNING;
    l->pid = 0;
    l->phase = SUP_IDLE;
    l->purpose = SUP_RESTART;
    l->idle_since = since;
    l->replaces = 0;

    if (l->ready_fd != -1) {
        close(l->ready_fd);
        l->ready_fd = -1;
    }

    if (shuttle_store_set_idle(s->store, l->id, l->port, since, err,
                               sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: idle: %s",
                    l->project, (long long) l->id, err);
    }

    shuttle_duration_text(l->idle, after, sizeof(after));

    if (l->idle > 0 && ran) {
        shuttle_metrics_count(SHUTTLE_METRIC_IDLES);
        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: idle: no request "
                    "for %s, its loader stopped; the next one on "
                    "127.0.0.1:%u starts it", l->project, (long long) l->id,
                    after, (unsigned) l->port);
    }

    shuttle_serve_zone_sync(s, l->project);
    shuttle_serve_changed(s);
}


/*
 * Idle, and a connection waits (or a restart): a loader on the socket,
 * which accepts what waited once it is ready.  Nothing waits for it here.
 */

static void
sup_wake(shuttle_supervise_t *sup, sup_loader_t *l, const char *by)
{
    char  err[SHUTTLE_REASON_MAX];

    l->purpose = SUP_WAKE;
    l->woken_by = by;
    l->wake_at = shuttle_mono_us();

    shuttle_metrics_count(SHUTTLE_METRIC_WAKES);

    if (sup_spawn(sup, l, err, sizeof(err)) != 0) {
        sup_wake_failed(sup, l, err);
        return;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: woken by %s: loader "
                "pid %d (spawned in %lld us)", l->project, (long long) l->id,
                by, (int) l->pid, (long long) (shuttle_mono_us() - l->wake_at));
}


/*
 * A loader started on wake did not come up: what waited gets a 502 that
 * says why, and so do the connections of the next while (the crash
 * backoff); then the next connection tries again.  The crash limit makes
 * the deployment crashed, as for a running loader.
 */

static void
sup_wake_failed(shuttle_supervise_t *sup, sup_loader_t *l, const char *why)
{
    char              msg[SHUTTLE_REASON_MAX + 64], serr[256];
    unsigned          n, backoff;
    shuttle_serve_t  *s;

    s = sup->s;

    shuttle_metrics_count(SHUTTLE_METRIC_WAKE_FAILURES);

    snprintf(msg, sizeof(msg), "wake failed: %s", why);
    snprintf(l->wake_error, sizeof(l->wake_error), "%s", msg);

    sup_refuse(sup, l, msg);

    n = sup_count_crash(l);

    if (n >= SHUTTLE_CRASH_LIMIT) {
        sup_crashed(sup, l, msg);
        return;
    }

    backoff = SHUTTLE_BACKOFF_MIN_MS << (n - 1);

    if (backoff > SHUTTLE_BACKOFF_MAX_MS) {
        backoff = SHUTTLE_BACKOFF_MAX_MS;
    }

    (void) shuttle_store_set_reason(s->store, l->id, msg, serr,
                                    sizeof(serr));

    shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s; requests get 502 "
                "for %u ms, then the next one tries again (failure %u of %u "
                "in %d s)", l->project, (long long) l->id, msg, backoff, n,
                SHUTTLE_CRASH_LIMIT, SHUTTLE_CRASH_WINDOW_MS / 1000);

    sup_go_idle(sup, l, l->idle_since ? l->idle_since : shuttle_now_ms());

    l->refuse_until = shuttle_mono_ms() + backoff;
}


/* the loaders by phase, for the metrics: after each turn of main's loop */

static void
sup_census(shuttle_supervise_t *sup)
{
    sup_loader_t              *l;
    shuttle_loaders_census_t   c;

    memset(&c, 0, sizeof(shuttle_loaders_census_t));

    for (l = sup->loaders; l != NULL; l = l->next) {

        switch (l->phase) {

        case SUP_STARTING:
            c.starting++;
            break;

        case SUP_RUNNING:
            c.running++;
            break;

        case SUP_BACKOFF:
            c.backoff++;
            break;

        case SUP_IDLE:
            c.idle++;
            break;
        }
    }

    shuttle_metrics_loaders(&c);
}


/*
 * Every connection waiting on l's socket gets "502 Bad Gateway" saying
 * why, then is read to its end (or SUP_LINGER_MS) before it is closed: a
 * close with the request unread would reset the connection, and nginx
 * could lose the answer.
 */

static void
sup_refuse(shuttle_supervise_t *sup, sup_loader_t *l, const char *why)
{
    int             fd, len, body;
    char            buf[4096], text[SHUTTLE_REASON_MAX + 160];
    sup_refused_t  *r;

    body = snprintf(text, sizeof(text), "%s: deployment #%lld could not "
                    "start: %s\n", l->project, (long long) l->id,
                    why != NULL ? why : "see shuttle logs");

    if (body < 0 || (size_t) body >= sizeof(text)) {
        body = (int) strlen(text);
    }

    len = snprintf(buf, sizeof(buf), "HTTP/1.1 502 Bad Gateway\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %d\r\n"
                   "Connection: close\r\n\r\n%s", body, text);

    if (len < 0 || (size_t) len >= sizeof(buf)) {
        len = (int) strlen(buf);
    }

    for ( ;; ) {
        fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }

            return;
        }

        while (read(fd, text, sizeof(text)) > 0) {
            /* the request: unread, the close would reset */
        }

        (void) !write(fd, buf, len);
        (void) shutdown(fd, SHUT_WR);

        r = malloc(sizeof(sup_refused_t));

        if (r == NULL) {
            close(fd);
            continue;
        }

        r->fd = fd;
        r->deadline = shuttle_mono_ms() + SUP_LINGER_MS;
        r->next = sup->refused;
        sup->refused = r;
    }
}


/* a refused connection readable, or out of time (eof: close it now) */

static void
sup_linger(shuttle_supervise_t *sup, sup_refused_t *r, int eof)
{
    char             buf[4096];
    ssize_t          n;
    sup_refused_t  **p;

    if (!eof) {
        do {
            n = read(r->fd, buf, sizeof(buf));
        } while (n > 0);

        eof = n == 0 || (errno != EAGAIN && errno != EINTR);
    }

    if (!eof) {
        return;
    }

    close(r->fd);

    for (p = &sup->refused; *p != NULL; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }

    free(r);
}


/* stops a loader on purpose: its socket closes, its process gets sig */

static void
sup_stop(shuttle_supervise_t *sup, sup_loader_t *l, int sig)
{
    sup_unlink(sup, l);

    if (l->pid > 0) {
        sup_signal(sup, l->pid, l->id, l->project, l->leaf, sig);
    }

    if (l->old_pid > 0 && shuttle_proc_is_loader(l->old_pid, l->so)) {
        (void) kill(l->old_pid, SIGTERM);
    }

    sup_free(l);
}


/* a loader's cgroup leaf, once it has exited: what is left killed */

static void
sup_release(shuttle_supervise_t *sup, const char *project, char *leaf)
{
    if (leaf[0] != '\0') {
        shuttle_sandbox_release(sup->s->conf.sandbox, project, leaf);
        leaf[0] = '\0';
    }
}


static void
sup_signal(shuttle_supervise_t *sup, pid_t pid, int64_t id,
    const char *project, const char *leaf, int sig)
{
    sup_dying_t  *d;

    (void) kill(pid, sig);

    d = calloc(1, sizeof(sup_dying_t));
    if (d == NULL) {
        return;
    }

    d->pid = pid;
    d->id = id;
    snprintf(d->project, sizeof(d->project), "%s", project);
    snprintf(d->leaf, sizeof(d->leaf), "%s", leaf);
    d->kill_at = sig == SIGKILL ? 0
                                : shuttle_mono_ms() + SHUTTLE_STOP_GRACE_MS;

    d->next = sup->dying;
    sup->dying = d;
}


static void
sup_unlink(shuttle_supervise_t *sup, sup_loader_t *l)
{
    sup_loader_t  **p;

    for (p = &sup->loaders; *p != NULL; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            l->next = NULL;
            return;
        }
    }
}


static void
sup_free(sup_loader_t *l)
{
    sup_hc_close(l);

    if (l->listen_fd != -1) {
        close(l->listen_fd);
    }

    if (l->ready_fd != -1) {
        close(l->ready_fd);
    }

    free(l);
}


static sup_loader_t *
sup_find(shuttle_supervise_t *sup, int64_t id)
{
    sup_loader_t  *l;

    for (l = sup->loaders; l != NULL; l = l->next) {
        if (l->id == id) {
            return l;
        }
    }

    return NULL;
}


/*
 * A sandboxed loader is the init of its pid namespace, which exits
 * 128 + N when the loader proper was killed by signal N (loader/main.c):
 * the wait status of that signal.
 */

static int
sup_status(shuttle_supervise_t *sup, int status)
{
    return sup->s->conf.sandbox != NULL ? shuttle_sandbox_status(status)
                                        : status;
}


static void
sup_exit_text(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));

    } else if (WIFSIGNALED(status)) {
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));

    } else {
        snprintf(buf, len, "ended (status 0x%x)", (unsigned) status);
    }
}


/* the last lines of DIR/runtime.log, at most len - 1 bytes */

static void
sup_tail(const char *dir, char *buf, size_t len)
{
    int       fd, lines;
    char      path[SHUTTLE_PATH_MAX + 16], *p, *start;
    off_t     size, from;
    ssize_t   n;

    buf[0] = '\0';

    snprintf(path, sizeof(path), "%s/runtime.log", dir);

    /* dir is root's: its runtime.log, never what a link there names */
    fd = shuttle_fsafe_open(NULL, path, O_RDONLY, 0);
    if (fd == -1) {
        return;
    }

    size = lseek(fd, 0, SEEK_END);
    from = size > (off_t) (len - 1) ? size - (off_t) (len - 1) : 0;

    n = pread(fd, buf, len - 1, from);
    close(fd);

    if (n <= 0) {
        buf[0] = '\0';
        return;
    }

    while (n > 0 && buf[n - 1] == '\n') {
        n--;
    }

    buf[n] = '\0';

    /* from the start of the SUP_TAIL_LINES-th line from the end */

    start = buf;
    lines = 0;

    for (p = buf + n; p > buf; p--) {
        if (p[-1] == '\n' && ++lines == SUP_TAIL_LINES) {
            start = p;
            break;
        }
    }

    if (start == buf && from > 0) {
        /* a cut first line: drop it */
        p = strchr(buf, '\n');
        start = p ? p + 1 : buf;
    }

    memmove(buf, start, strlen(start) + 1);
}
