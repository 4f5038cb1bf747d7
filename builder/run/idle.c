
/*
 * Loaders: scale to zero, idle loaders stopped and woken by a connection,
 * and the census of them all (supervise_int.h).
 */

#include "supervise.h"
#include "supervise_int.h"


/* the project's idle timeout: its own, or the builder's --idle */

int64_t
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

void
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
        sup_unwatch(&l->w_main);
        close(l->ready_fd);
        l->ready_fd = -1;
    }

    /* its socket polled for the next connection */
    sup_sync(l);
    sup_changed(sup);

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

void
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

void
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

void
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

void
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
        sup_due(sup, r->deadline);
        r->next = sup->refused;
        sup->refused = r;

        memset(&r->w, 0, sizeof(sup_watch_t));
        sup_watch(&r->w, SUP_W_REFUSED, r, fd, EPOLLIN);
    }
}


/* a refused connection readable, or out of time (eof: close it now) */

void
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

    sup_unwatch(&r->w);
    close(r->fd);

    for (p = &sup->refused; *p != NULL; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }

    free(r);
}
