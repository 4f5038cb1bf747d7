
/*
 * A build's steps run: checked, spawned in the sandbox with a deadline,
 * waited for and logged; their argument vectors (build_int.h).
 */

#include "build.h"
#include "build_int.h"


static void build_log(build_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int build_spawn(build_ctx_t *ctx, const char *path, char **argv,
    int out_fd, pid_t *pid);
static int build_wait(build_ctx_t *ctx, const char *name, pid_t pid,
    int cap_fd, build_buf_t *capture, int *status);
static build_stop_e build_stopped(build_ctx_t *ctx);
static void build_full(build_ctx_t *ctx);
static int build_which(const char *name, char *path, size_t size);
static void build_log_command(build_ctx_t *ctx, build_args_t *args);
static void build_write(int fd, const char *data, size_t len);
static const char *build_duration(unsigned ms, char *buf, size_t size);
static int build_buf_add(build_buf_t *b, const char *data, size_t len,
    size_t max);


/* the project is untrusted: out must be a file, not a link to one */

int
build_check(build_ctx_t *ctx)
{
    struct stat  st;

    if (lstat(ctx->out, &st) == -1) {
        build_error(ctx->err, ctx->errlen, "%s: %s", ctx->out,
                    errno == ENOENT ? "the build did not produce it"
                                    : strerror(errno));
        return -1;
    }

    if (S_ISLNK(st.st_mode)) {
        build_error(ctx->err, ctx->errlen,
                    "%s is a symbolic link, refused", ctx->out);
        return -1;
    }

    if (!S_ISREG(st.st_mode)) {
        build_error(ctx->err, ctx->errlen,
                    "%s is not a regular file, refused", ctx->out);
        return -1;
    }

    return 0;
}


/*
 * Runs args in the project and waits for it.  Its output goes to the log,
 * or, with capture, its stdout goes there.  Returns 0 and its wait status,
 * or -1 and err: it could not run, the build timed out or was cancelled.
 */

int
build_run(build_ctx_t *ctx, build_args_t *args, build_buf_t *capture,
    int *status)
{
    int    rc, fds[2], fd;
    char   path[PATH_MAX];
    pid_t  pid;

    if (args->nomem) {
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        return -1;
    }

    if (build_stopped(ctx) != BUILD_RUNNING) {
        return -1;
    }

    if (build_which(args->v[0], path, sizeof(path)) != 0) {
        build_error(ctx->err, ctx->errlen, "cannot run %s: not found in "
                    BUILD_PATH, args->v[0]);
        return -1;
    }

    fds[0] = -1;
    fds[1] = -1;

    if (capture != NULL) {

        if (pipe2(fds, O_CLOEXEC) == -1) {
            build_error(ctx->err, ctx->errlen, "cannot run %s: pipe: %s",
                        args->v[0], strerror(errno));
            return -1;
        }

        if (fds[1] < 3) {
            fd = fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
            close(fds[1]);
            fds[1] = fd;

            if (fd == -1) {
                build_error(ctx->err, ctx->errlen, "cannot run %s: %s",
                            args->v[0], strerror(errno));
                close(fds[0]);
                return -1;
            }
        }
    }

    build_log_command(ctx, args);

    rc = build_spawn(ctx, path, args->v,
                     capture != NULL ? fds[1] : ctx->log_fd, &pid);

    if (fds[1] != -1) {
        close(fds[1]);
    }

    if (rc != 0) {
        build_error(ctx->err, ctx->errlen, "cannot run %s: %s", args->v[0],
                    ctx->sandbox_err[0] ? ctx->sandbox_err : strerror(rc));

        if (fds[0] != -1) {
            close(fds[0]);
        }

        return -1;
    }

    rc = build_wait(ctx, args->v[0], pid, fds[0], capture, status);

    if (fds[0] != -1) {
        close(fds[0]);
    }

    return rc;
}


static int
build_spawn(build_ctx_t *ctx, const char *path, char **argv, int out_fd,
    pid_t *pid)
{
    int                         rc, fds[3];
    sigset_t                    none, all;
    shuttle_spawn_t             sp;
    posix_spawnattr_t           attr;
    posix_spawn_file_actions_t  fa;

    if (ctx->o->sandbox != NULL) {
        fds[0] = -1;
        fds[1] = out_fd;
        fds[2] = ctx->log_fd;

        sp = *ctx->o->spawn;
        sp.kind = SHUTTLE_SANDBOX_BUILD;
        sp.cwd = ctx->src_dir;
        sp.fds = fds;
        sp.nfds = 3;
        sp.setsid = 1;

        if (shuttle_sandbox_spawn(ctx->o->sandbox, &sp, path, argv,
                                  ctx->env, pid, ctx->sandbox_err,
                                  sizeof(ctx->sandbox_err))
            != 0)
        {
            build_log(ctx, "shuttle: %s\n", ctx->sandbox_err);
            return EPERM;
        }

        return 0;
    }

    rc = posix_spawn_file_actions_init(&fa);

    if (rc != 0) {
        return rc;
    }

    rc = posix_spawnattr_init(&attr);

    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }

    sigemptyset(&none);
    sigfillset(&all);

    rc = posix_spawn_file_actions_adddup2(&fa, ctx->log_fd, 2);

    if (rc == 0) {
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    }

    if (rc == 0) {
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
                                              0);
    }

    if (rc == 0) {
        rc = posix_spawn_file_actions_addchdir_np(&fa, ctx->src_dir);
    }

#if (BUILD_CLOSEFROM)
    if (rc == 0) {
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    }
#endif

    if (rc == 0) {
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP
                                             | POSIX_SPAWN_SETSIGMASK
                                             | POSIX_SPAWN_SETSIGDEF);
    }

    if (rc == 0) {
        rc = posix_spawnattr_setpgroup(&attr, 0);
    }

    if (rc == 0) {
        rc = posix_spawnattr_setsigmask(&attr, &none);
    }

    if (rc == 0) {
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    }

    if (rc == 0) {
        rc = posix_spawn(pid, path, &fa, &attr, argv, ctx->env);
    }

    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);

    return rc;
}


/*
 * Waits for pid, reading cap_fd into capture meanwhile, until it exits,
 * the deadline passes or *cancel is set; then kills its process group
 * and reaps it.
 */

static int
build_wait(build_ctx_t *ctx, const char *name, pid_t pid, int cap_fd,
    build_buf_t *capture, int *status)
{
    int            n, rc, pidfd, exited, wait_ms;
    char           buf[4096], dur[32];
    ssize_t        got;
    int64_t        now, kill_at;
    siginfo_t      si;
    build_stop_e   stop;
    struct pollfd  pfd[2];

    pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
    stop = BUILD_RUNNING;
    kill_at = 0;
    exited = 0;

    for ( ;; ) {
        now = build_now();

        if (stop == BUILD_RUNNING) {
            stop = build_stopped(ctx);

            if (stop != BUILD_RUNNING) {
                build_log(ctx, "shuttle: %s, stopping %s\n",
                          stop == BUILD_CANCELLED ? "build cancelled"
                                                  : "build timed out",
                          name);
                (void) kill(-pid, SIGTERM);
                kill_at = now + SHUTTLE_BUILD_KILL_GRACE_MS;
            }

        } else if (now >= kill_at) {
            break;
        }

        wait_ms = (int) ((stop == BUILD_RUNNING ? ctx->deadline : kill_at)
                         - now);

        if (wait_ms < 0) {
            wait_ms = 0;
        }

        if (ctx->o->cancel != NULL && wait_ms > BUILD_TICK_MS) {
            wait_ms = BUILD_TICK_MS;
        }

        if (pidfd == -1 && wait_ms > BUILD_NOPIDFD_MS) {
            wait_ms = BUILD_NOPIDFD_MS;
        }

        n = 0;

        if (pidfd != -1) {
            pfd[n].fd = pidfd;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }

        if (cap_fd != -1) {
            pfd[n].fd = cap_fd;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }

        rc = poll(pfd, n, wait_ms);

        if (rc == -1 && errno != EINTR) {
            build_error(ctx->err, ctx->errlen, "waiting for %s: poll: %s",
                        name, strerror(errno));
            stop = BUILD_BROKEN;
            break;
        }

        if (cap_fd != -1 && rc > 0 && pfd[n - 1].revents) {
            got = read(cap_fd, buf, sizeof(buf));

            if (got > 0) {
                if (build_buf_add(capture, buf, got, BUILD_CAPTURE_MAX)
                    != 0)
                {
                    build_error(ctx->err, ctx->errlen, "build: %s",
                                strerror(ENOMEM));
                    stop = BUILD_BROKEN;
                    break;
                }

            } else if (got == 0 || errno != EINTR) {
                cap_fd = -1;
            }
        }

        if (pidfd != -1) {
            exited = rc > 0 && pfd[0].revents != 0;

        } else {
            si.si_pid = 0;
            exited = waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT)
                     == 0 && si.si_pid == pid;
        }

        if (exited) {
            break;
        }
    }

    /*
     * Not reaped yet, pid still names our process group: whatever is left
     * in it, a background job or a process that ignored SIGTERM, dies.
     */

    (void) kill(-pid, SIGKILL);

    while (exited && cap_fd != -1 && stop == BUILD_RUNNING) {
        pfd[0].fd = cap_fd;
        pfd[0].events = POLLIN;
        wait_ms = (int) (ctx->deadline - build_now());

        if (wait_ms <= 0 || poll(pfd, 1, wait_ms) <= 0) {
            break;
        }

        got = read(cap_fd, buf, sizeof(buf));

        if (got <= 0) {
            break;
        }

        if (build_buf_add(capture, buf, got, BUILD_CAPTURE_MAX) != 0) {
            build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
            stop = BUILD_BROKEN;
        }
    }

    if (pidfd != -1) {
        close(pidfd);
    }

    while ((rc = waitpid(pid, status, 0)) == -1 && errno == EINTR) {
        /* void */
    }

    if (rc == -1 && stop == BUILD_RUNNING) {
        build_error(ctx->err, ctx->errlen, "waiting for %s: %s", name,
                    strerror(errno));
        return -1;
    }

    switch (stop) {

    case BUILD_RUNNING:
        return 0;

    case BUILD_TIMEDOUT:
        build_error(ctx->err, ctx->errlen, "build timed out after %s",
                    build_duration(ctx->timeout_ms, dur, sizeof(dur)));
        return -1;

    case BUILD_CANCELLED:
        build_error(ctx->err, ctx->errlen, "build cancelled");
        return -1;

    default:
        return -1;
    }
}


/* BUILD_RUNNING, or why the build must stop, with err set */

static build_stop_e
build_stopped(build_ctx_t *ctx)
{
    char  dur[32];

    if (ctx->o->cancel != NULL && *ctx->o->cancel) {
        build_error(ctx->err, ctx->errlen, "build cancelled");
        return BUILD_CANCELLED;
    }

    if (build_now() >= ctx->deadline) {
        build_error(ctx->err, ctx->errlen, "build timed out after %s",
                    build_duration(ctx->timeout_ms, dur, sizeof(dur)));
        return BUILD_TIMEDOUT;
    }

    return BUILD_RUNNING;
}


void
build_failed(build_ctx_t *ctx, const char *what, const char *name,
    int status)
{
    const char  *sig;

    if (WIFEXITED(status)) {
        build_error(ctx->err, ctx->errlen,
                    "%s: %s exited with status %d (see build log)",
                    what, name, WEXITSTATUS(status));
        build_full(ctx);
        return;
    }

    sig = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;

    build_error(ctx->err, ctx->errlen,
                "%s: %s was killed by signal %d (SIG%s) (see build log)",
                what, name, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                sig ? sig : "?");
    build_full(ctx);
}


/*
 * A build that failed where next to no space is left failed for want of
 * it, all but surely, and the tools' own words ("No space left on
 * device") may not have reached the build log, on the same filesystem:
 * its reason says so.
 */

static void
build_full(build_ctx_t *ctx)
{
    size_t               len;
    struct statvfs       vfs;
    unsigned long long   avail;

    if (ctx->err == NULL || statvfs(ctx->src_dir, &vfs) == -1) {
        return;
    }

    avail = (unsigned long long) vfs.f_bavail * vfs.f_frsize;

    if (avail >= BUILD_FULL) {
        return;
    }

    len = strlen(ctx->err);

    if (len < ctx->errlen) {
        snprintf(ctx->err + len, ctx->errlen - len, ": no space left on "
                 "device (%llu KiB free on the filesystem of %s)",
                 avail >> 10, ctx->src_dir);
    }
}


/* the program in BUILD_PATH, not in the caller's PATH */

static int
build_which(const char *name, char *path, size_t size)
{
    size_t              i;
    static const char  *dirs[] = { "/usr/local/bin", "/usr/bin", "/bin" };

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if ((size_t) snprintf(path, size, "%s/%s", dirs[i], name) < size
            && access(path, X_OK) == 0)
        {
            return 0;
        }
    }

    return -1;
}


/* the command line, quoted as a shell would need it, like make echoes */

static void
build_log_command(build_ctx_t *ctx, build_args_t *args)
{
    size_t        i;
    const char   *p, *safe;
    build_buf_t   line;

    memset(&line, 0, sizeof(line));
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "0123456789_-+=./,:@%";

    for (i = 0; i < args->n; i++) {
        p = args->v[i];

        if (i > 0) {
            build_buf_add(&line, " ", 1, SIZE_MAX);
        }

        if (*p != '\0' && strspn(p, safe) == strlen(p)) {
            build_buf_add(&line, p, strlen(p), SIZE_MAX);
            continue;
        }

        build_buf_add(&line, "'", 1, SIZE_MAX);

        for ( /* void */ ; *p; p++) {
            if (*p == '\'') {
                build_buf_add(&line, "'\\''", 4, SIZE_MAX);

            } else {
                build_buf_add(&line, p, 1, SIZE_MAX);
            }
        }

        build_buf_add(&line, "'", 1, SIZE_MAX);
    }

    build_buf_add(&line, "\n", 1, SIZE_MAX);

    if (line.data != NULL) {
        build_write(ctx->log_fd, line.data, line.len);
    }

    free(line.data);
}


static void
build_log(build_ctx_t *ctx, const char *fmt, ...)
{
    int      n;
    char     buf[512];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n > 0) {
        build_write(ctx->log_fd, buf,
                    (size_t) n < sizeof(buf) ? (size_t) n : sizeof(buf) - 1);
    }
}


/* the log is the caller's to watch: a failed write loses output only */

static void
build_write(int fd, const char *data, size_t len)
{
    ssize_t  n;

    while (len) {
        n = write(fd, data, len);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            return;
        }

        data += n;
        len -= n;
    }
}


int64_t
build_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static const char *
build_duration(unsigned ms, char *buf, size_t size)
{
    if (ms % 1000 == 0) {
        snprintf(buf, size, "%u s", ms / 1000);

    } else {
        snprintf(buf, size, "%u ms", ms);
    }

    return buf;
}


void
build_error(char *err, size_t errlen, const char *fmt, ...)
{
    char     *p;
    va_list   args;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);

    /* one line, whatever a path or a tool said */

    for (p = err; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
}


void
build_args_add(build_args_t *a, const char *s)
{
    build_args_push(a, strdup(s));
}


void
build_args_addf(build_args_t *a, const char *fmt, ...)
{
    char     *s;
    va_list   args;

    va_start(args, fmt);

    if (vasprintf(&s, fmt, args) == -1) {
        s = NULL;
    }

    va_end(args);

    build_args_push(a, s);
}


/* takes s, NULL meaning its allocation failed */

void
build_args_push(build_args_t *a, char *s)
{
    char    **v;
    size_t    size;

    if (s == NULL || a->nomem) {
        free(s);
        a->nomem = 1;
        return;
    }

    if (a->n + 2 > a->size) {
        size = a->size ? a->size * 2 : 16;
        v = realloc(a->v, size * sizeof(char *));

        if (v == NULL) {
            free(s);
            a->nomem = 1;
            return;
        }

        a->v = v;
        a->size = size;
    }

    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}


int
build_args_cmp(const void *one, const void *two)
{
    return strcmp(*(char *const *) one, *(char *const *) two);
}


void
build_args_free(build_args_t *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->v[i]);
    }

    free(a->v);
    memset(a, 0, sizeof(build_args_t));
}


/* appends what fits under max bytes, noting the overflow; -1: no memory */

static int
build_buf_add(build_buf_t *b, const char *data, size_t len, size_t max)
{
    char    *p;
    size_t   size;

    if (len > max - b->len) {
        len = max - b->len;
        b->overflow = 1;
    }

    if (b->len + len + 1 > b->size) {
        size = b->size ? b->size : 256;

        while (size < b->len + len + 1) {
            size *= 2;
        }

        p = realloc(b->data, size);

        if (p == NULL) {
            return -1;
        }

        b->data = p;
        b->size = size;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';

    return 0;
}
