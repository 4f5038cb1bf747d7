
/*
 * Loaders: starting a built deployment, switching the project to it,
 * restarting a loader that dies, stopping loaders.  Main thread only.
 *
 * Start: the builder binds 127.0.0.1:<a free port of --ports> and listens
 * itself, then spawns
 *
 *     shuttle-loader --listen-fd 3 --ready-fd 4 --name PROJECT SO
 *
 * in a new session (it outlives the builder), cwd the deployment's
 * directory, stdin /dev/null, stdout and stderr appended to its
 * runtime.log, no other descriptor.  It answers on the pipe at fd 4:
 * "ready\n", or "error: <why>\n" and exit.  Ready within --start-timeout:
 * the deployment becomes running, the zone slot points at the new port,
 * the previous running deployment becomes superseded and its loader gets
 * SIGTERM (it drains, then exits).  Anything else fails the deployment
 * with the loader's message and the last lines of its runtime.log, and
 * the previous deployment keeps serving.
 *
 * The builder keeps its copy of each running deployment's listening
 * socket: a loader that dies is restarted on the same socket, so the zone
 * does not change and connections wait in the backlog meanwhile.
 * Restarts back off from 100 ms, doubling, up to 5 s; the fifth crash
 * within 60 s makes the deployment crashed (zone: failed).  A loader
 * stopped on purpose has its socket closed.
 *
 * Takeover: a deployment running when the builder starts keeps its
 * loader (the pid in the store, if /proc shows it is a shuttle-loader of
 * that service.so): adopted in place, on its port, watched on a pidfd.
 * Every listening socket has a copy in the socket keeper (keeper.h),
 * which outlives the builder: the new one takes them back, so an idle
 * deployment's port, or a dead loader's, keeps its connections waiting
 * in the backlog until a loader accepts them.
 */


#ifndef SHUTTLE_BUILDER_SUPERVISE_H
#define SHUTTLE_BUILDER_SUPERVISE_H


#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.h"


#define SHUTTLE_BACKOFF_MIN_MS     100
#define SHUTTLE_BACKOFF_MAX_MS     5000
#define SHUTTLE_CRASH_LIMIT        5          /* crashes ... */
#define SHUTTLE_CRASH_WINDOW_MS    60000      /* ... within this: crashed */
#define SHUTTLE_STOP_GRACE_MS      15000      /* SIGTERM, then SIGKILL */


shuttle_supervise_t *shuttle_supervise_create(shuttle_serve_t *s);
void shuttle_supervise_destroy(shuttle_supervise_t *sup);

/*
 * Starts deployment id of project, built (or superseded: a rollback), and
 * switches to it once it is ready.  0: it is loading; -1: it did not get
 * that far, err says why (a built one is failed then).
 */
int shuttle_supervise_start(shuttle_supervise_t *sup, int64_t id,
    const char *project, const char *reason, char *err, size_t errlen);

/* restart a running deployment's loader beside it (secrets changed) */
int shuttle_supervise_renew(shuttle_supervise_t *sup, int64_t id,
    const char *project, char *err, size_t errlen);
/*
 * A running deployment found at startup, its loader old_pid (0: none
 * alive): adopted in place on its port, the socket the keeper kept; with
 * none, idle again on that socket or started from the main loop.
 */
void shuttle_supervise_takeover(shuttle_supervise_t *sup,
    const shuttle_deployment_t *d, pid_t old_pid);

/* the project was deleted: its loaders get SIGTERM, its sockets close */
void shuttle_supervise_stop_project(shuttle_supervise_t *sup,
    const char *project);

/* SIGCHLD: reaps the loaders this builder started, only those */
void shuttle_supervise_reap(shuttle_supervise_t *sup);
/* the same, without the walk of every loader when no child of ours is
   waitable (a build's or the warm helper's was waited for by its code) */
void shuttle_supervise_sigchld(shuttle_supervise_t *sup);

/* one fd to poll, readable when any of the supervisor's is (an epoll
   set: idle sockets, readiness pipes, pidfds, health checks, the keeper);
   then handle what is ready, in O(1) an event */
int shuttle_supervise_fd(shuttle_supervise_t *sup);
void shuttle_supervise_io(shuttle_supervise_t *sup);

/* ms until the next timer, -1: none; then run the timers due */
int shuttle_supervise_timeout(shuttle_supervise_t *sup);
void shuttle_supervise_timers(shuttle_supervise_t *sup);

/* loaders this builder runs (starting, running, restarting) */
unsigned shuttle_supervise_count(shuttle_supervise_t *sup);

/*
 * The builder stops: starting deployments fail ("builder stopped"); the
 * running loaders go on serving, for the next builder to adopt.  all
 * (stop --all): running ones stay running in the store without a
 * loader, every loader gets SIGTERM, waited for up to wait_ms, then
 * SIGKILL, and the socket keeper exits.
 */
void shuttle_supervise_shutdown(shuttle_supervise_t *sup, unsigned wait_ms,
    int all);

/*
 * At start, before anything binds: the socket keeper (started if none
 * answers) and the sockets it kept; kept(): one for port, not taken yet;
 * kept_done(): those no deployment took are dropped.
 */
int shuttle_supervise_keeper(shuttle_supervise_t *sup, char *err,
    size_t errlen);
int shuttle_supervise_kept(shuttle_supervise_t *sup, uint16_t port);
void shuttle_supervise_kept_done(shuttle_supervise_t *sup);
void shuttle_supervise_keeper_quit(shuttle_supervise_t *sup);

/* shuttle_supervise_start() from the main loop's next turn (reason: a
   string that lives as long as the program) */
int shuttle_supervise_start_later(shuttle_supervise_t *sup, int64_t id,
    const char *project, const char *reason);


#endif /* SHUTTLE_BUILDER_SUPERVISE_H */
