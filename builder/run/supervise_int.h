
/*
 * The supervisor's own header, for its files only (supervise.h is its
 * contract): a loader's record and the supervisor's, and the functions
 * its files share.
 *
 *   supervise.c     what main calls: create, start, renew, take over,
 *                   stop, reap, the readiness pipes, the timers, shutdown
 *   health.c        the health checks of running loaders
 *   spawn.c         a loader's socket and process, in its sandbox; its
 *                   "ready" read
 *   crash.c         ready or not: the switch, a failed start, crashes,
 *                   the crash loop and the fallback deployment
 *   idle.c          scale to zero: idle loaders stopped, woken by a
 *                   connection; the census for the metrics
 *   loaders.c       stopping, signalling, releasing and finding loaders
 *   kept.c          the socket keeper's client: every listening socket
 *                   put there, dropped, and taken back at start; the
 *                   loaders of the builder before adopted
 */

#ifndef SHUTTLE_BUILDER_SUPERVISE_INT_H
#define SHUTTLE_BUILDER_SUPERVISE_INT_H

/* after supervise.h: it uses that header's types (and is not included by it,
   so the part and its own header make no include circle) */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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
#include "keeper.h"
#include "log.h"
#include "proc.h"
#include "metrics.h"
#include "provision.h"
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


/*
 * An fd the main loop waits on, in the supervisor's epoll set: the event
 * carries a pointer to its watch (epoll_event.data.ptr), the watch its
 * object, so an event finds its loader in O(1).  A watch is removed from
 * the set before its fd closes (an fd shared with the keeper or a loader
 * would stay in the set), and from the batch of events being handled.
 */

#define SUP_W_MAIN     1            /* a loader's readiness pipe, or its
                                       listening socket when idle */
#define SUP_W_HC       2            /* a loader's health check */
#define SUP_W_PID      3            /* an adopted loader's pidfd */
#define SUP_W_DYING    4            /* an adopted dying loader's pidfd */
#define SUP_W_REFUSED  5            /* a refused connection */
#define SUP_W_KEEPER   6            /* the keeper's connection */

typedef struct {
    void                   *obj;
    int                     fd;
    uint32_t                events;
    int                     kind;
    unsigned                on:1;       /* in the set (calloc: not) */
} sup_watch_t;


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
    int                     pidfd;          /* adopted only: its exit */
    unsigned                adopted:1;      /* a builder before us
                                               started it: not our child,
                                               its exit seen on pidfd */
    sup_watch_t             w_main;         /* ready_fd, or listen_fd when
                                               idle */
    sup_watch_t             w_hc;
    sup_watch_t             w_pid;
    struct sup_loader_s    *next;
} sup_loader_t;


/* a connection refused with a 502, read to its end before it is closed */
typedef struct sup_refused_s {
    int                     fd;
    int64_t                 deadline;
    sup_watch_t             w;
    struct sup_refused_s   *next;
} sup_refused_t;


/* a loader sent a signal, waited for until it is reaped */
typedef struct sup_dying_s {
    pid_t                   pid;
    int64_t                 id;
    char                    project[SHUTTLE_NAME_MAX + 1];
    char                    leaf[SUP_LEAF_MAX];
    int64_t                 kill_at;        /* SIGKILL then; 0: sent */
    int                     pidfd;          /* adopted only */
    unsigned                adopted:1;
    sup_watch_t             w;
    struct sup_dying_s     *next;
} sup_dying_t;


/* a socket the keeper gave back at start, until a deployment takes it */
typedef struct {
    int64_t                 id;
    uint16_t                port;
    int                     fd;             /* -1: taken */
} sup_kept_t;


/* a deployment to start once the main loop runs (not at startup) */
typedef struct sup_later_s {
    int64_t                 id;
    char                    project[SHUTTLE_NAME_MAX + 1];
    const char             *reason;
    struct sup_later_s     *next;
} sup_later_t;


struct shuttle_supervise_s {
    shuttle_serve_t        *s;
    sup_loader_t           *loaders;
    sup_dying_t            *dying;
    sup_refused_t          *refused;
    uint32_t                next_port;
    int64_t                 warm_at;        /* start the next warm loader
                                               then (monotonic ms), 0 */
    int                     keeper_fd;      /* the keeper's connection */
    pid_t                   keeper_pid;     /* when it is our child */
    char                    keeper[SHUTTLE_PATH_MAX];   /* its socket */
    sup_kept_t             *kept;           /* given back at start */
    size_t                  nkept;
    sup_later_t            *later;
    sup_watch_t             w_keeper;
    int64_t                 due;            /* the next timer, monotonic
                                               ms: the timers are walked
                                               then, not every turn; 0 */
    int64_t                 census_at;      /* the next census, 0: none
                                               due (nothing changed) */
};


#define SUP_CENSUS_MS      100          /* the loaders gauges lag this */


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


/* the superseded deployment that id replaced, its service.so still there */

typedef struct {
    const char  *data;
    int64_t      by;
    int64_t      found;
} sup_fallback_t;

/* shared between the files of this part */

void sup_hc_start(shuttle_supervise_t *sup, sup_loader_t *l,
    int64_t now);
void sup_hc_io(shuttle_supervise_t *sup, sup_loader_t *l,
    short revents);
void sup_hc_done(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *failed);
void sup_hc_close(sup_loader_t *l);
int sup_bind(shuttle_supervise_t *sup, uint16_t *port, char *err,
    size_t errlen);
int sup_high_fd(int fd);
int sup_spawn(shuttle_supervise_t *sup, sup_loader_t *l, char *err,
    size_t errlen);
void sup_oom(shuttle_supervise_t *sup, sup_loader_t *l, int status,
    char *what, size_t len);
int sup_read_ready(sup_loader_t *l, char *msg, size_t len);
void sup_ready(shuttle_supervise_t *sup, sup_loader_t *l);
void sup_start_failed(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *why, int exited, int timeout);
void sup_crash(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *what);
unsigned sup_count_crash(sup_loader_t *l);
void sup_crashed(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *what);
int64_t sup_idle_ms(shuttle_supervise_t *sup, const char *project);
void sup_go_idle(shuttle_supervise_t *sup, sup_loader_t *l,
    int64_t since);
void sup_wake(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *by);
void sup_wake_failed(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *why);
void sup_census(shuttle_supervise_t *sup);
void sup_refuse(shuttle_supervise_t *sup, sup_loader_t *l,
    const char *why);
void sup_linger(shuttle_supervise_t *sup, sup_refused_t *r,
    int eof);
void sup_stop(shuttle_supervise_t *sup, sup_loader_t *l, int sig);
void sup_release(shuttle_supervise_t *sup, const char *project,
    char *leaf);
void sup_signal(shuttle_supervise_t *sup, pid_t pid, int64_t id,
    const char *project, const char *leaf, int sig);
void sup_unlink(shuttle_supervise_t *sup, sup_loader_t *l);
void sup_free(sup_loader_t *l);
sup_loader_t *sup_find(shuttle_supervise_t *sup, int64_t id);
int sup_status(shuttle_supervise_t *sup, int status);
void sup_exit_text(int status, char *buf, size_t len);
void sup_tail(const char *dir, char *buf, size_t len);
void sup_keep(shuttle_supervise_t *sup, sup_loader_t *l);
void sup_unkeep(uint16_t port);
int sup_keeper_open(shuttle_supervise_t *sup, char *err, size_t errlen);
void sup_keeper_close(shuttle_supervise_t *sup);
void sup_keeper_lost(shuttle_supervise_t *sup);
int sup_kept_take(shuttle_supervise_t *sup, int64_t id, uint16_t port,
    int *fresh);
int sup_adopt(shuttle_supervise_t *sup, sup_loader_t *l, pid_t pid);
int sup_pidfd_exited(int pidfd);
int sup_ep_open(char *err, size_t errlen);
void sup_ep_close(void);
int sup_ep_fd(void);
void sup_ep_batch(struct epoll_event *ev, int n);
void sup_watch(sup_watch_t *w, int kind, void *obj, int fd,
    uint32_t events);
void sup_unwatch(sup_watch_t *w);
void sup_sync(sup_loader_t *l);
void sup_due(shuttle_supervise_t *sup, int64_t at);
void sup_changed(shuttle_supervise_t *sup);


#endif /* SHUTTLE_BUILDER_SUPERVISE_INT_H */
