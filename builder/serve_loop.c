
/*
 * shuttle-builder serve: the event loop, the messages other threads post
 * to main, the stop (serve_int.h).
 */

#include "serve.h"
#include "serve_int.h"


static void serve_messages(shuttle_serve_t *s);
static void serve_delete(shuttle_serve_t *s, shuttle_msg_t *m);


int
serve_loop(shuttle_serve_t *s, int sigfd)
{
    int                      timeout, reap;
    char                     err[SERVE_ERRLEN];
    int64_t                  now, repair_at;
    ssize_t                  len;
    uint64_t                 count;
    struct pollfd            pfd[3];
    struct signalfd_siginfo  si;

    repair_at = shuttle_mono_ms() + SERVE_REPAIR_MS;

    /*
     * Three fds, however many loaders: the supervisor's are in its epoll
     * set, its events found their loader in O(1) (shuttle_supervise_io).
     */

    pfd[0].fd = sigfd;
    pfd[0].events = POLLIN;
    pfd[1].fd = s->wake_fd;
    pfd[1].events = POLLIN;
    pfd[2].fd = shuttle_supervise_fd(s->sup);
    pfd[2].events = POLLIN;

    for ( ;; ) {
        pfd[0].revents = 0;
        pfd[1].revents = 0;
        pfd[2].revents = 0;

        timeout = shuttle_supervise_timeout(s->sup);

        now = shuttle_mono_ms();

        if (now >= repair_at) {
            serve_repair_zone(s);
            repair_at = now + SERVE_REPAIR_MS;
        }

        if (timeout < 0 || timeout > repair_at - now) {
            timeout = (int) (repair_at - now);
        }

        if (poll(pfd, 3, timeout) == -1 && errno != EINTR) {
            shuttle_log(SHUTTLE_LOG_ERROR, "poll: %s", strerror(errno));
        }

        reap = 0;

        while ((len = read(sigfd, &si, sizeof(si))) == sizeof(si)) {

            switch (si.ssi_signo) {

            case SIGCHLD:
                reap = 1;
                break;

            case SIGTERM:
            case SIGINT:
                serve_stop(s, si.ssi_signo == SIGTERM ? "SIGTERM"
                                                      : "SIGINT", 0);
                return 0;

            case SIGUSR2:
                /* shuttle-builder stop --all */
                serve_stop(s, "SIGUSR2 (stop --all): the loaders too", 1);
                return 0;

            case SIGQUIT:
                shuttle_log(SHUTTLE_LOG_INFO, "SIGQUIT: exiting now, %u "
                            "loaders left serving for the next builder",
                            shuttle_supervise_count(s->sup));
                _exit(0);

            case SIGHUP:
                if (shuttle_log_reopen(err, sizeof(err)) != 0) {
                    shuttle_log(SHUTTLE_LOG_ERROR, "SIGHUP: %s", err);

                } else {
                    shuttle_log(SHUTTLE_LOG_INFO, "SIGHUP: log reopened");
                }

                break;

            default:
                shuttle_log(SHUTTLE_LOG_INFO, "signal %u ignored",
                            si.ssi_signo);
            }
        }

        if (reap) {
            shuttle_supervise_sigchld(s->sup);
        }

        if (pfd[1].revents & POLLIN) {
            (void) !read(s->wake_fd, &count, sizeof(count));
        }

        serve_messages(s);

        if (pfd[2].revents & POLLIN) {
            shuttle_supervise_io(s->sup);
        }

        shuttle_supervise_timers(s->sup);
    }
}


static void
serve_messages(shuttle_serve_t *s)
{
    shuttle_msg_t  *m, *next;

    pthread_mutex_lock(&s->lock);
    m = s->msgs;
    s->msgs = NULL;
    pthread_mutex_unlock(&s->lock);

    for ( ; m != NULL; m = next) {
        next = m->next;

        switch (m->type) {

        case SHUTTLE_MSG_BUILT:
            (void) shuttle_supervise_start(s->sup, m->id, m->project, NULL,
                                           m->err, sizeof(m->err));
            free(m);
            break;

        case SHUTTLE_MSG_ROLLBACK:
            m->rc = shuttle_supervise_start(s->sup, m->id, m->project,
                                            m->reason, m->err,
                                            sizeof(m->err));

            pthread_mutex_lock(&s->lock);
            m->done = 1;
            pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
            break;

        case SHUTTLE_MSG_RESTART:
            m->rc = shuttle_supervise_renew(s->sup, m->id, m->project,
                                            m->err, sizeof(m->err));

            pthread_mutex_lock(&s->lock);
            m->done = 1;
            pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
            break;

        case SHUTTLE_MSG_DELETE:
            serve_delete(s, m);

            pthread_mutex_lock(&s->lock);
            m->done = 1;
            pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
            break;
        }
    }
}


/*
 * DELETE /v1/projects/NAME: its waiting build dropped, its running one
 * cancelled, every deployment deleted in the store, its loaders stopped,
 * its zone slot removed, its deployments' directories too (resources/
 * stays).
 */

static void
serve_delete(shuttle_serve_t *s, shuttle_msg_t *m)
{
    char  *dir;

    if (s->stopping) {
        m->rc = -2;
        snprintf(m->err, sizeof(m->err), "the builder is stopping");
        return;
    }

    (void) shuttle_queue_cancel(s->queue, m->project);

    m->rc = shuttle_store_delete_project(s->store, m->project,
                                         "project deleted", m->err,
                                         sizeof(m->err));
    if (m->rc != 0) {
        return;
    }

    shuttle_fault("delete");

    shuttle_supervise_stop_project(s->sup, m->project);

    if (m->purge) {
        /*
         * No drain when its data goes: a loader still writing there would
         * race the purge's removal.  Whatever is left in the project's
         * cgroup is killed, and gone when this returns.
         */
        shuttle_sandbox_release(s->conf.sandbox, m->project, NULL);
    }

    shuttle_serve_zone_sync(s, m->project);

    dir = malloc(strlen(s->conf.data) + strlen(m->project) + 32);

    if (dir != NULL) {
        sprintf(dir, "%s/projects/%s/deployments", s->conf.data, m->project);

        if (shuttle_rmtree(s->conf.data, dir) != 0) {
            shuttle_log(SHUTTLE_LOG_WARN, "project %s: removing %s: %s",
                        m->project, dir, strerror(errno));
        }

        free(dir);
    }

    /* its databases and secrets stay for a redeploy, unless purged */
    shuttle_provision_unpublish(s, m->project);

    shuttle_log(SHUTTLE_LOG_INFO, "project %s deleted", m->project);

    shuttle_serve_changed(s);
}


void
serve_stop(shuttle_serve_t *s, const char *why, int all)
{
    unsigned  running, waiting;

    shuttle_log(SHUTTLE_LOG_INFO, "%s: stopping", why);

    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    s->changes++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);

    /* a DELETE waiting for main would hold its connection open */
    serve_messages(s);

    if (s->api != NULL) {
        shuttle_api_stop(s->api);
        s->api = NULL;
        (void) unlink(s->conf.socket);
    }

    shuttle_queue_counts(s->queue, &running, &waiting);

    if (running) {
        shuttle_log(SHUTTLE_LOG_INFO, "cancelling %u builds", running);
    }

    shuttle_queue_stop(s->queue);

    /* built meanwhile: they fail, "builder stopped" */
    serve_messages(s);

    shuttle_supervise_shutdown(s->sup, SHUTTLE_STOP_GRACE_MS, all);

    if (all) {
        shuttle_supervise_keeper_quit(s->sup);
    }

    shuttle_log(SHUTTLE_LOG_INFO, "stopped%s", waiting ? " (queued "
                "deployments wait for the next start)" : "");
}


void
serve_free(shuttle_serve_t *s)
{
    shuttle_api_stop(s->api);
    shuttle_supervise_destroy(s->sup);

    if (s->queue != NULL) {
        shuttle_queue_destroy(s->queue);
    }

    shuttle_store_close(s->store);

    if (s->zone.hdr != NULL) {
        shuttle_zone_close(&s->zone);
    }

    if (s->wake_fd != -1) {
        close(s->wake_fd);
    }

    free(s->conf.data);
    free(s->conf.zone);
    free(s->conf.socket);
    free(s->conf.spool);
    free(s->conf.loader);
    free(s->conf.sdk_include);
    free(s->conf.log);
    shuttle_keyring_close(s->conf.keys);

    if (s->conf.sandbox != NULL) {
        shuttle_sandbox_destroy(s->conf.sandbox);
    }

    free(s);
}
