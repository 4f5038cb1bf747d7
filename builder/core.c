
/*
 * shuttle-builder core: the daemon's context, the messages to main, the
 * zone's writer (core.h).
 */


#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core.h"
#include "fsafe.h"
#include "log.h"


void
shuttle_serve_zone_sync(shuttle_serve_t *s, const char *project)
{
    int                   rc;
    char                  err[512];
    uint32_t              addr;
    shuttle_project_t     p;
    shuttle_zone_slot_t   slot;
    shuttle_serve_view_t  v;

    pthread_mutex_lock(&s->zone_lock);

    rc = shuttle_store_project(s->store, project, &p, err, sizeof(err));

    if (rc == SHUTTLE_STORE_NOT_FOUND
        || (rc == 0 && shuttle_serve_view(s, &p, &v) != 0))
    {
        if (shuttle_zone_get(&s->zone, project, &slot) == SHUTTLE_ZONE_FOUND
            && shuttle_zone_del(&s->zone, project, err, sizeof(err)) != 0)
        {
            shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
        }

        goto done;
    }

    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "zone %s: %s", project, err);
        goto done;
    }

    addr = v.port ? htonl(INADDR_LOOPBACK) : 0;

    /* an unchanged slot is left alone: nginx sees no write at all */

    if (shuttle_zone_get(&s->zone, project, &slot) == SHUTTLE_ZONE_FOUND
        && slot.state == v.state && slot.addr == addr
        && slot.port == v.port && slot.deployment == (uint64_t) v.deployment)
    {
        goto done;
    }

    if (shuttle_zone_set(&s->zone, project, v.state, addr, v.port,
                         (uint64_t) v.deployment, err, sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
    }

done:

    pthread_mutex_unlock(&s->zone_lock);
}


/*
 * The project's zone view: its current deployment when it has one (idle:
 * its socket waits for a connection; no socket at the moment: loading),
 * else its latest deployment's state.
 */

int
shuttle_serve_view(shuttle_serve_t *s, const shuttle_project_t *p,
    shuttle_serve_view_t *v)
{
    char                  err[512];
    shuttle_deployment_t  d;

    memset(v, 0, sizeof(shuttle_serve_view_t));

    if (p->current != 0
        && shuttle_store_deployment(s->store, p->current, &d, err,
                                    sizeof(err)) == 0
        && d.state.tag == SHUTTLE_DEPLOY_RUNNING)
    {
        v->deployment = d.id;
        v->port = d.state.u.running.port;
        v->state = v->port == 0 ? SHUTTLE_STATE_LOADING
                   : d.state.u.running.idle_since ? SHUTTLE_STATE_IDLE
                   : SHUTTLE_STATE_RUNNING;
        v->since = d.state.u.running.idle_since;
        return 0;
    }

    if (p->latest != 0
        && shuttle_store_deployment(s->store, p->latest, &d, err,
                                    sizeof(err)) == 0
        && d.state.tag != SHUTTLE_DEPLOY_DELETED)
    {
        v->deployment = d.id;
        v->state = shuttle_deploy_zone_state(d.state.tag);
        return 0;
    }

    return -1;
}


void
shuttle_serve_post(shuttle_serve_t *s, shuttle_msg_t *m)
{
    uint64_t        one;
    shuttle_msg_t **last;

    pthread_mutex_lock(&s->lock);

    if (m->wait && s->stopping) {
        m->rc = -2;
        snprintf(m->err, sizeof(m->err), "the builder is stopping");
        pthread_mutex_unlock(&s->lock);
        return;
    }

    for (last = &s->msgs; *last != NULL; last = &(*last)->next) {
        /* the tail */
    }

    m->next = NULL;
    *last = m;

    one = 1;
    (void) !write(s->wake_fd, &one, sizeof(one));

    while (m->wait && !m->done) {
        pthread_cond_wait(&s->changed, &s->lock);
    }

    pthread_mutex_unlock(&s->lock);
}


void
shuttle_serve_changed(shuttle_serve_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->changes++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}


void
shuttle_serve_wait(shuttle_serve_t *s, uint64_t *seen, unsigned ms)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long) (ms % 1000) * 1000000;

    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }

    pthread_mutex_lock(&s->lock);

    if (s->changes == *seen && !s->stopping) {
        (void) pthread_cond_timedwait(&s->changed, &s->lock, &ts);
    }

    *seen = s->changes;

    pthread_mutex_unlock(&s->lock);
}


void
shuttle_serve_note(shuttle_serve_t *s, const char *project, int64_t id,
    const char *fmt, ...)
{
    int      fd, n;
    char     path[SHUTTLE_PATH_MAX], line[SHUTTLE_REASON_MAX + 64];
    va_list  args;

    if (shuttle_deploy_path(path, sizeof(path), s->conf.data, project, id,
                            "build.log") != 0)
    {
        return;
    }

    n = snprintf(line, sizeof(line), "shuttle: ");

    va_start(args, fmt);
    n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, args);
    va_end(args);

    if ((size_t) n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }

    line[n++] = '\n';

    fd = shuttle_fsafe_open(s->conf.data, path, O_WRONLY | O_APPEND | O_CREAT,
                            0640);
    if (fd == -1) {
        return;
    }

    (void) !write(fd, line, n);
    close(fd);
}
