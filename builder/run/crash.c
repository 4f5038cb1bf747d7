
/*
 * Loaders: ready (the switch) or not (a failed start), crashes, the crash
 * loop and the fallback to the deployment before (supervise_int.h).
 */

#include "supervise.h"
#include "supervise_int.h"


static int64_t sup_fallback(shuttle_supervise_t *sup, const char *project,
    int64_t id);


void
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
        sup_unwatch(&l->w_main);
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
    sup_changed(sup);

    if (l->hc_at == 0 && s->conf.health_ms > 0) {
        /* its first health check (the timers are not walked each turn) */
        l->hc_at = shuttle_mono_ms() + s->conf.health_ms;
        sup_due(sup, l->hc_at);
    }

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

void
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
        sup_unwatch(&l->w_main);
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

void
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
        sup_due(sup, l->deadline);
        sup_changed(sup);
        sup_sync(l);

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

unsigned
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

void
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
