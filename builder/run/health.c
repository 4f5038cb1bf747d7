
/*
 * Loaders: health checks of the running ones (supervise_int.h).
 */

#include "supervise.h"
#include "supervise_int.h"


/*
 * A health check: a connection to the loader's port, "OPTIONS *", and
 * its answer within --health-timeout.  A loader that stops answering
 * (stopped, or every thread stuck in the service) fails SUP_HC_FAILS in
 * a row and is killed; its exit is a crash like any other: restarted
 * with backoff, "hung" in the logs and the deployment's reason.
 *
 * Nothing here blocks, and the main loop turns for the checks of many
 * loaders at once, not two or three times per check (each turn walks
 * every loader): the next check is due on a grid of SUP_HC_SLOT_MS, so
 * the checks of a slot start in one turn and their answers arrive
 * together; at most SUP_HC_BURST start in one turn, the others a
 * millisecond later, so a turn stays short with 10,000 running.
 */

#define SUP_HC_SLOT_MS  100
#define SUP_HC_BURST    64


static int64_t sup_hc_next(int64_t now, int64_t interval);


static int64_t   sup_hc_turn;           /* the ms of the last start */
static unsigned  sup_hc_started;        /* checks started in that ms */


void
sup_hc_start(shuttle_supervise_t *sup, sup_loader_t *l, int64_t now)
{
    int                 fd;
    struct sockaddr_in  sin;

    if (now != sup_hc_turn) {
        sup_hc_turn = now;
        sup_hc_started = 0;
    }

    if (sup_hc_started >= SUP_HC_BURST) {
        l->hc_at = now + 1;
        sup_due(sup, l->hc_at);
        return;
    }

    sup_hc_started++;

    l->hc_at = now + sup->s->conf.health_timeout_ms;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: health check: "
                    "socket: %s", l->project, (long long) l->id,
                    strerror(errno));
        l->hc_at = sup_hc_next(now, sup->s->conf.health_ms);
        sup_due(sup, l->hc_at);
        return;
    }

    memset(&sin, 0, sizeof(struct sockaddr_in));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(l->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    l->hc_fd = fd;
    l->hc_state = SUP_HC_CONNECTING;
    sup_due(sup, l->hc_at);
    sup_sync(l);

    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        && errno != EINPROGRESS)
    {
        sup_hc_done(sup, l, strerror(errno));
        return;
    }

    /* on loopback it is mostly connected already: POLLOUT at once */
}


void
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
        sup_sync(l);
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


void
sup_hc_done(shuttle_supervise_t *sup, sup_loader_t *l, const char *failed)
{
    sup_hc_close(l);
    l->hc_at = sup_hc_next(shuttle_mono_ms(), sup->s->conf.health_ms);
    sup_due(sup, l->hc_at);

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


void
sup_hc_close(sup_loader_t *l)
{
    if (l->hc_state != SUP_HC_NONE) {
        sup_unwatch(&l->w_hc);
        close(l->hc_fd);
        l->hc_state = SUP_HC_NONE;
    }
}


/* the first slot of the grid at or after now + interval */

static int64_t
sup_hc_next(int64_t now, int64_t interval)
{
    int64_t  at;

    at = now + interval;

    return at + (SUP_HC_SLOT_MS - at % SUP_HC_SLOT_MS) % SUP_HC_SLOT_MS;
}
