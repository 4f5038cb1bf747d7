
/*
 * Loaders: start, switch, supervise, stop.
 */


#include "supervise.h"
#include "supervise_int.h"


shuttle_supervise_t *
shuttle_supervise_create(shuttle_serve_t *s)
{
    char                  err[128];
    shuttle_supervise_t  *sup;

    sup = calloc(1, sizeof(shuttle_supervise_t));
    if (sup == NULL) {
        return NULL;
    }

    sup->s = s;
    sup->next_port = s->conf.port_lo;
    sup->keeper_fd = -1;

    if (sup_ep_open(err, sizeof(err)) != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "supervisor: %s", err);
        free(sup);
        return NULL;
    }

    return sup;
}


void
shuttle_supervise_destroy(shuttle_supervise_t *sup)
{
    sup_loader_t  *l;
    sup_dying_t   *d;
    sup_later_t   *t;

    if (sup == NULL) {
        return;
    }

    /* first: the sockets closed below stay the keeper's */
    sup_keeper_close(sup);

    while ((t = sup->later) != NULL) {
        sup->later = t->next;
        free(t);
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

    sup_ep_close();

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

    sup_keep(sup, l);

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
    int              fresh;
    char             err[SHUTTLE_REASON_MAX];
    uint16_t         port;
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

    /* its socket: the keeper's copy, or one bound anew on its port */

    port = d->state.u.running.port;

    if (port != 0) {
        l->listen_fd = sup_kept_take(sup, d->id, port, &fresh);

        if (l->listen_fd != -1) {
            l->port = port;

            if (fresh) {
                sup_keep(sup, l);
            }
        }
    }

    if (old_pid > 0 && sup_adopt(sup, l, old_pid) == 0) {
        /* in place: the same process, the same port, nothing to switch */
        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: loader pid %d on "
                    "127.0.0.1:%u adopted%s", l->project, (long long) l->id,
                    (int) l->pid, (unsigned) port,
                    l->listen_fd != -1 ? ""
                    : " (its socket not kept: a crash restarts it on "
                      "another port)");
        l->port = port;
        return;
    }

    if (l->listen_fd == -1) {
        l->listen_fd = sup_bind(sup, &l->port, err, sizeof(err));

        if (l->listen_fd == -1) {
            sup_crash(sup, l, err);
            return;
        }

        sup_keep(sup, l);
    }

    if (d->state.u.running.idle_since != 0) {
        /* idle it stays, on its socket: as it was, the store untouched */
        l->pid = 0;
        l->phase = SUP_IDLE;
        l->purpose = SUP_RESTART;
        l->idle_since = d->state.u.running.idle_since;
        l->idle = 0;                    /* set as it is spawned */

        sup_sync(l);
        sup_changed(sup);

        if (l->port != port) {
            sup_go_idle(sup, l, l->idle_since);
        }

        return;
    }

    /* no loader: one starts from the main loop, once the API is up */

    l->phase = SUP_BACKOFF;
    l->deadline = shuttle_mono_ms();
    sup_due(sup, l->deadline);
    sup_changed(sup);

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: no loader alive: a "
                "new one starts on 127.0.0.1:%u", l->project,
                (long long) l->id, (unsigned) l->port);
}


int
shuttle_supervise_start_later(shuttle_supervise_t *sup, int64_t id,
    const char *project, const char *reason)
{
    sup_later_t  *t, **p;

    t = calloc(1, sizeof(sup_later_t));
    if (t == NULL) {
        return -1;
    }

    t->id = id;
    t->reason = reason;
    snprintf(t->project, sizeof(t->project), "%s", project);

    for (p = &sup->later; *p != NULL; p = &(*p)->next) { /* void */ }

    *p = t;

    return 0;
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

    sup_keep(sup, l);

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

    sup_changed(sup);

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
    int             status, verdict, idle, unknown;
    char            what[128], msg[SUP_READY_MAX + 128];
    pid_t           pid;
    int64_t         id;
    sup_dying_t    *d, **dp;
    sup_loader_t   *l, *next;

    sup_changed(sup);

    if (sup->keeper_pid > 0
        && waitpid(sup->keeper_pid, &status, WNOHANG) == sup->keeper_pid)
    {
        sup->keeper_pid = 0;
    }

    /*
     * Handling an exit may free other loaders (a switch stops the old
     * one): the walk starts over after each; an exit is reaped once.
     */

    for (l = sup->loaders; l != NULL; l = next) {
        next = l->next;

        if (l->pid <= 0) {
            continue;
        }

        /*
         * An adopted loader is not our child: its exit shows on its
         * pidfd, its status is its parent's (init's) to know.  One that
         * may go idle is taken to have (its socket kept: the next
         * connection starts it again), one that may not crashed.
         */

        unknown = l->adopted;

        if (unknown) {
            if (!sup_pidfd_exited(l->pidfd)) {
                continue;
            }

            pid = l->pid;
            sup_unwatch(&l->w_pid);
            close(l->pidfd);
            l->adopted = 0;
            status = 0;
            snprintf(what, sizeof(what), "exited (adopted from the builder "
                     "before: not our child, its exit status unknown)");

        } else {
            pid = waitpid(l->pid, &status, WNOHANG);

            if (pid != l->pid) {
                continue;
            }

            status = sup_status(sup, status);
            sup_exit_text(status, what, sizeof(what));
            sup_oom(sup, l, status, what, sizeof(what));
        }

        l->pid = 0;
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

        if (unknown) {
            /* its --idle, as the project's is now (not read at start) */
            l->idle = sup_idle_ms(sup, l->project);
            idle = l->idle > 0 && l->listen_fd != -1
                   && strncmp(what, "hung", 4) != 0;
        }

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

        if (d->adopted) {
            if (!sup_pidfd_exited(d->pidfd)) {
                dp = &d->next;
                continue;
            }

            sup_unwatch(&d->w);
            close(d->pidfd);
            pid = 0;
            shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: loader pid %d "
                        "exited (adopted: its status unknown)", d->project,
                        (long long) d->id, (int) d->pid);

        } else {
            pid = waitpid(d->pid, &status, WNOHANG);
        }

        if (!d->adopted && pid != d->pid && !(pid == -1 && errno == ECHILD))
        {
            dp = &d->next;
            continue;
        }

        if (!d->adopted && pid == d->pid) {
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


void
shuttle_supervise_sigchld(shuttle_supervise_t *sup)
{
    int        rc;
    siginfo_t  si;

    /*
     * Each wake's warm helper exits and is waited for by the sandbox's
     * code, a build's child by its thread: their SIGCHLD finds nothing
     * waitable, and walks no loader.  An adopted loader's exit shows on
     * its pidfd; one signalled to stop is on the dying list.
     */

    memset(&si, 0, sizeof(siginfo_t));
    rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL);

    if (sup->dying == NULL
        && ((rc == 0 && si.si_pid == 0) || (rc == -1 && errno == ECHILD)))
    {
        return;
    }

    shuttle_supervise_reap(sup);
}


/* the epoll set of every fd the supervisor waits on: readable, an event */

int
shuttle_supervise_fd(shuttle_supervise_t *sup)
{
    (void) sup;

    return sup_ep_fd();
}


#define SUP_EVENTS  64


void
shuttle_supervise_io(shuttle_supervise_t *sup)
{
    int                 i, n, verdict, reap;
    char                msg[SUP_READY_MAX + 128];
    sup_watch_t        *w;
    sup_loader_t       *l;
    struct epoll_event  ev[SUP_EVENTS];

    n = epoll_wait(sup_ep_fd(), ev, SUP_EVENTS, 0);

    if (n <= 0) {
        if (n == -1 && errno != EINTR) {
            shuttle_log(SHUTTLE_LOG_ERROR, "epoll_wait: %s", strerror(errno));
        }

        return;
    }

    /* an fd closed while the batch is handled takes its event out */
    sup_ep_batch(ev, n);
    sup_changed(sup);

    reap = 0;

    for (i = 0; i < n; i++) {
        w = ev[i].data.ptr;

        if (w == NULL) {
            continue;
        }

        switch (w->kind) {

        case SUP_W_KEEPER:
            sup_keeper_lost(sup);
            continue;

        case SUP_W_PID:
        case SUP_W_DYING:
            reap = 1;
            continue;

        case SUP_W_REFUSED:
            sup_linger(sup, w->obj, 0);
            continue;

        case SUP_W_HC:
            l = w->obj;

            if (l->hc_state != SUP_HC_NONE) {
                sup_hc_io(sup, l, (short) ev[i].events);
            }

            continue;
        }

        /* SUP_W_MAIN */

        l = w->obj;

        if (l->phase == SUP_IDLE) {
            if (shuttle_mono_ms() < l->refuse_until) {
                sup_refuse(sup, l, l->wake_error);

            } else {
                sup_wake(sup, l, "a request");
            }

            continue;
        }

        if (l->phase != SUP_STARTING) {
            continue;
        }

        verdict = sup_read_ready(l, msg, sizeof(msg));

        if (verdict == SUP_READY) {
            sup_ready(sup, l);

        } else if (verdict == SUP_FAILED) {
            sup_start_failed(sup, l, msg, 0, 0);
        }
    }

    sup_ep_batch(NULL, 0);

    if (reap) {
        shuttle_supervise_reap(sup);
    }
}


/* the next timer, in ms from now; -1: none */

int
shuttle_supervise_timeout(shuttle_supervise_t *sup)
{
    int64_t  now;

    if (sup->later != NULL) {
        return 0;
    }

    if (sup->due == 0) {
        return -1;
    }

    now = shuttle_mono_ms();

    return sup->due <= now ? 0 : (int) (sup->due - now);
}


/* the earliest of every timer: walked only when one is due */

static int64_t
sup_next_due(shuttle_supervise_t *sup)
{
    int64_t         next;
    sup_dying_t    *d;
    sup_loader_t   *l;
    sup_refused_t  *r;

    next = INT64_MAX;

    for (l = sup->loaders; l != NULL; l = l->next) {
        if (l->phase != SUP_RUNNING && l->phase != SUP_IDLE
            && l->deadline < next)
        {
            next = l->deadline;
        }

        if (l->phase == SUP_RUNNING && sup->s->conf.health_ms > 0
            && l->pid > 0 && l->hc_at < next)
        {
            next = l->hc_at;
        }
    }

    for (r = sup->refused; r != NULL; r = r->next) {
        if (r->deadline < next) {
            next = r->deadline;
        }
    }

    if (sup->warm_at != 0 && sup->warm_at < next) {
        next = sup->warm_at;
    }

    for (d = sup->dying; d != NULL; d = d->next) {
        if (d->kill_at && d->kill_at < next) {
            next = d->kill_at;
        }
    }

    if (sup->census_at != 0 && sup->census_at < next) {
        next = sup->census_at;
    }

    /* 0 is none: a timer due at 0 is due at once */
    return next == INT64_MAX ? 0 : next == 0 ? 1 : next;
}


void
shuttle_supervise_timers(shuttle_supervise_t *sup)
{
    char            err[SHUTTLE_REASON_MAX];
    int64_t         now;
    sup_later_t    *t;
    sup_dying_t    *d;
    sup_loader_t   *l, *next;
    sup_refused_t  *r, *rnext;

    /* what startup left to the loop: started now, the API up */

    while ((t = sup->later) != NULL) {
        sup->later = t->next;

        (void) shuttle_supervise_start(sup, t->id, t->project, t->reason,
                                       err, sizeof(err));
        free(t);
    }

    now = shuttle_mono_ms();

    /* the timers walked only when one is due, not every turn */

    if (sup->due == 0 || now < sup->due) {
        return;
    }

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
            sup_keep(sup, l);
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

    if (sup->census_at != 0 && sup->census_at <= now) {
        sup->census_at = 0;
        sup_census(sup);
    }

    sup->due = sup_next_due(sup);
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
shuttle_supervise_shutdown(shuttle_supervise_t *sup, unsigned wait_ms,
    int all)
{
    char              err[512];
    int64_t           end;
    sigset_t          chld;
    sup_dying_t      *d;
    sup_loader_t     *l, *next;
    shuttle_serve_t  *s;
    struct timespec   ts;

    s = sup->s;

    if (!all) {
        /*
         * The loaders serve on while no builder runs, and the next one
         * adopts them; a first start cut short fails, as it always did.
         */

        for (l = sup->loaders; l != NULL; l = next) {
            next = l->next;

            if (l->purpose == SUP_NEW && l->phase == SUP_STARTING) {
                sup_unlink(sup, l);

                if (l->pid > 0) {
                    sup_signal(sup, l->pid, l->id, l->project, l->leaf,
                               SIGKILL);
                }

                (void) shuttle_deploy_fail(s, l->project, l->id,
                                           "builder stopped", -1);
                sup_free(l);
            }
        }

        shuttle_log(SHUTTLE_LOG_INFO, "%u loaders left serving for the "
                    "next builder (shuttle-builder stop --all stops them)",
                    shuttle_supervise_count(sup));

        /* the sockets closed on exit stay the keeper's; a loader
           draining finishes on its own */
        sup_keeper_close(sup);
        shuttle_supervise_reap(sup);

        return;
    }

    while (all && (l = sup->loaders) != NULL) {

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
