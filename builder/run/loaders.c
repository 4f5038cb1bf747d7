
/*
 * Loaders: stopping, signalling, releasing and finding them, and their
 * exit status and log tail in words (supervise_int.h).
 */

#include "supervise.h"
#include "supervise_int.h"


/* stops a loader on purpose: its socket closes, its process gets sig */

void
sup_stop(shuttle_supervise_t *sup, sup_loader_t *l, int sig)
{
    sup_unlink(sup, l);

    if (l->pid > 0) {
        sup_signal(sup, l->pid, l->id, l->project, l->leaf, sig);

        if (l->adopted && sup->dying != NULL && sup->dying->pid == l->pid) {
            /* its exit shows on its pidfd, not to waitpid() */
            sup_unwatch(&l->w_pid);
            sup->dying->pidfd = l->pidfd;
            sup->dying->adopted = 1;
            l->adopted = 0;
            sup_watch(&sup->dying->w, SUP_W_DYING, sup->dying,
                      sup->dying->pidfd, EPOLLIN);
        }
    }

    if (l->old_pid > 0 && shuttle_proc_is_loader(l->old_pid, l->so)) {
        (void) kill(l->old_pid, SIGTERM);
    }

    sup_free(l);
}


/* a loader's cgroup leaf, once it has exited: what is left killed */

void
sup_release(shuttle_supervise_t *sup, const char *project, char *leaf)
{
    if (leaf[0] != '\0') {
        shuttle_sandbox_release(sup->s->conf.sandbox, project, leaf);
        leaf[0] = '\0';
    }
}


void
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
    sup_due(sup, d->kill_at);

    d->next = sup->dying;
    sup->dying = d;
}


void
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


void
sup_free(sup_loader_t *l)
{
    sup_hc_close(l);

    /* out of the set while its fds are open; its events of the batch
       dropped */
    sup_unwatch(&l->w_main);
    sup_unwatch(&l->w_pid);

    if (l->listen_fd != -1) {
        /* closed on purpose: the keeper's copy too (not on exit) */
        sup_unkeep(l->port);
        close(l->listen_fd);
    }

    if (l->adopted) {
        close(l->pidfd);
    }

    if (l->ready_fd != -1) {
        close(l->ready_fd);
    }

    free(l);
}


sup_loader_t *
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

int
sup_status(shuttle_supervise_t *sup, int status)
{
    return sup->s->conf.sandbox != NULL ? shuttle_sandbox_status(status)
                                        : status;
}


void
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

void
sup_tail(const char *dir, char *buf, size_t len)
{
    int       fd, lines;
    char      path[SHUTTLE_PATH_MAX + 16], *p, *start;
    char      esc[SUP_TAIL_BYTES * 4 + 1];
    size_t    k;
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
        p = memchr(buf, '\n', n);
        start = p ? p + 1 : buf;
    }

    /* the tenant's bytes, each line escaped: the last lines that fit */

    k = shuttle_log_escape_flags(esc, sizeof(esc), start, buf + n - start,
                                 SHUTTLE_ESCAPE_LINES);
    p = esc;

    while ((size_t) (esc + k - p) >= len) {
        start = memchr(p, '\n', esc + k - p);
        p = start != NULL ? start + 1 : esc + k - (len - 1);
    }

    while ((*p & 0xc0) == 0x80) {
        p++;                            /* not in the middle of a character */
    }

    memcpy(buf, p, esc + k - p + 1);
}


/*
 * The epoll set of the main loop (one supervisor a process): every fd it
 * waits on, each with its watch.
 */

static int                  sup_ep = -1;
static struct epoll_event  *sup_batch;      /* being handled */
static int                  sup_nbatch;


int
sup_ep_open(char *err, size_t errlen)
{
    sup_ep = epoll_create1(EPOLL_CLOEXEC);

    if (sup_ep == -1) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return -1;
    }

    return 0;
}


void
sup_ep_close(void)
{
    if (sup_ep != -1) {
        close(sup_ep);
        sup_ep = -1;
    }
}


int
sup_ep_fd(void)
{
    return sup_ep;
}


void
sup_ep_batch(struct epoll_event *ev, int n)
{
    sup_batch = ev;
    sup_nbatch = n;
}


void
sup_watch(sup_watch_t *w, int kind, void *obj, int fd, uint32_t events)
{
    int                 op;
    struct epoll_event  ev;

    if (w->on && w->fd == fd && w->events == events) {
        return;
    }

    if (w->on && w->fd != fd) {
        sup_unwatch(w);
    }

    if (fd == -1 || sup_ep == -1) {
        return;
    }

    w->kind = kind;
    w->obj = obj;

    memset(&ev, 0, sizeof(struct epoll_event));
    ev.events = events;
    ev.data.ptr = w;

    op = w->on ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    if (epoll_ctl(sup_ep, op, fd, &ev) == -1
        && !(op == EPOLL_CTL_ADD && errno == EEXIST
             && epoll_ctl(sup_ep, EPOLL_CTL_MOD, fd, &ev) == 0))
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "epoll_ctl(%s) of fd %d: %s",
                    op == EPOLL_CTL_ADD ? "add" : "mod", fd,
                    strerror(errno));
        return;
    }

    w->on = 1;
    w->fd = fd;
    w->events = events;
}


void
sup_unwatch(sup_watch_t *w)
{
    int  i;

    if (!w->on) {
        return;
    }

    if (epoll_ctl(sup_ep, EPOLL_CTL_DEL, w->fd, NULL) == -1) {
        shuttle_log(SHUTTLE_LOG_ERROR, "epoll_ctl(del) of fd %d: %s",
                    w->fd, strerror(errno));
    }

    w->on = 0;

    for (i = 0; i < sup_nbatch; i++) {
        if (sup_batch[i].data.ptr == w) {
            sup_batch[i].data.ptr = NULL;
        }
    }
}


/* l's watches as its state wants them */

void
sup_sync(sup_loader_t *l)
{
    sup_watch(&l->w_main, SUP_W_MAIN, l,
              l->phase == SUP_IDLE ? l->listen_fd : l->ready_fd, EPOLLIN);

    sup_watch(&l->w_hc, SUP_W_HC, l,
              l->hc_state != SUP_HC_NONE ? l->hc_fd : -1,
              l->hc_state == SUP_HC_CONNECTING ? EPOLLOUT : EPOLLIN);

    sup_watch(&l->w_pid, SUP_W_PID, l, l->adopted ? l->pidfd : -1, EPOLLIN);
}


/* a timer set: the timers are walked at the earliest */

void
sup_due(shuttle_supervise_t *sup, int64_t at)
{
    if (at != 0 && (sup->due == 0 || at < sup->due)) {
        sup->due = at;
    }
}


/* a loader's state may have changed: the census follows, in a while */

void
sup_changed(shuttle_supervise_t *sup)
{
    if (sup->census_at == 0) {
        sup->census_at = shuttle_mono_ms() + SUP_CENSUS_MS;
        sup_due(sup, sup->census_at);
    }
}
