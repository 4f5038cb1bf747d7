
/*
 * The sandbox: the warm loader, spawned ahead and handed a project
 * (sandbox_int.h).
 */

#include "sandbox.h"
#include "sandbox_int.h"


static int sb_warm_trees(const shuttle_spawn_t *sp, sb_warm_head_t *h,
    int *fds, char *err, size_t errlen);
static void sb_warm_close(int *fds, int n);


static size_t
sb_warm_put(char *buf, size_t off, const void *data, size_t len)
{
    if (off == (size_t) -1 || len > SB_WARM_MAX - off) {
        return (size_t) -1;
    }

    memcpy(buf + off, data, len);

    return off + len;
}


static size_t
sb_warm_str(char *buf, size_t off, const char *s)
{
    return sb_warm_put(buf, off, s ? s : "", strlen(s ? s : "") + 1);
}


/* the next string at *off of a message of len bytes, or NULL */
static const char *
sb_warm_get(const char *buf, size_t len, size_t *off)
{
    const char  *s, *nul;

    if (*off >= len) {
        return NULL;
    }

    s = buf + *off;
    nul = memchr(s, '\0', len - *off);

    if (nul == NULL) {
        return NULL;
    }

    *off += nul - s + 1;

    return s;
}


/*
 * The spawn's binds as detached copies of their trees, made here in the
 * host's mount namespace (open_tree(2), OPEN_TREE_CLONE): the warm
 * loader is in its new root already, the host's out of its reach, and
 * only moves them in (move_mount(2)).  Those under /usr (seen through
 * the sandbox's /usr) and the optional ones that are missing are not
 * sent.  The number of descriptors put in fds, or -1 with err.
 */

static int
sb_warm_trees(const shuttle_spawn_t *sp, sb_warm_head_t *h, int *fds,
    char *err, size_t errlen)
{
    int     i, n, fd;

    n = 0;

    for (i = 0; i < (int) sp->nbinds; i++) {
        h->present[i] = 0;

        if (strncmp(sp->binds[i].path, "/usr/", 5) == 0) {
            continue;
        }

        fd = (int) syscall(SYS_open_tree, AT_FDCWD, sp->binds[i].path,
                           OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
                           | AT_RECURSIVE);

        if (fd == -1) {
            if (sp->binds[i].optional && errno == ENOENT) {
                continue;
            }

            snprintf(err, errlen, "sandbox %s: bind %s: %s", sp->project,
                     sp->binds[i].path, strerror(errno));
            sb_warm_close(fds, n);
            return -1;
        }

        h->present[i] = 1;
        fds[n++] = fd;
    }

    return n;
}


static void
sb_warm_close(int *fds, int n)
{
    while (n > 0) {
        close(fds[--n]);
    }
}


/* 0: spawned; -1: failed (err says why); 1: no warm loader after all */

int
sb_warm_spawn(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    sb_child_t *c, pid_t *pid, char *err, size_t errlen)
{
    int              fds[SB_WARM_FDS], nsend, ntrees, i, n, status;
    int              fd;
    char            *buf, reply[512], *p;
    char             cmsg[CMSG_SPACE(sizeof(int) * SB_WARM_FDS)];
    size_t           off;
    ssize_t          len;
    pid_t            child;
    struct iovec     iov;
    struct msghdr    msg;
    struct pollfd    pfd;
    struct cmsghdr  *cm;
    sb_warm_head_t   h;

    buf = malloc(SB_WARM_MAX);
    if (buf == NULL) {
        return 1;
    }

    memset(&h, 0, sizeof(sb_warm_head_t));
    h.kind = sp->kind;
    h.cgroup = sb->cgroup;
    h.uid = sp->uid;
    h.gid = sp->gid;
    h.setsid = sp->setsid;
    h.nbinds = sp->nbinds;
    h.nfds = sp->nfds;
    h.nprocs = c->nprocs;
    h.nfilter = sb->filter[sp->kind].len;
    h.limits = *sp->limits;

    nsend = 0;

    for (i = 0; i < (int) sp->nfds; i++) {
        if (sp->fds[i] >= 0) {
            h.fdmask |= 1u << i;
            fds[nsend++] = sp->fds[i];
        }
    }

    for (i = 0; i < c->nprocs; i++) {
        fds[nsend++] = c->procs[i];
    }

    for (i = 0; i < (int) sp->nbinds; i++) {
        h.rw[i] = sp->binds[i].rw;
        h.optional[i] = sp->binds[i].optional;
    }

    ntrees = sb_warm_trees(sp, &h, fds + nsend, err, errlen);

    if (ntrees == -1) {
        free(buf);
        return -1;
    }

    nsend += ntrees;

    for (n = 0, off = 0; c->argv[n] != NULL; n++) {
        off += strlen(c->argv[n]) + 1;
    }

    if (off + strlen(sb->warm_path) + 8 > SB_WARM_ARGS) {
        /* its command line would not fit where the warm one is */
        sb_warm_close(fds + nsend - ntrees, ntrees);
        free(buf);
        return 1;
    }

    h.nargv = n;
    for (n = 0; c->envp[n] != NULL; n++) { /* void */ }
    h.nenvp = n;

    off = sb_warm_put(buf, 0, &h, sizeof(h));
    off = sb_warm_str(buf, off, sp->project);
    off = sb_warm_str(buf, off, sp->cgroup);
    off = sb_warm_str(buf, off, sp->cwd);
    off = sb_warm_str(buf, off, c->path);
    off = sb_warm_str(buf, off, c->passwd);

    for (i = 0; i < (int) sp->nbinds; i++) {
        off = sb_warm_str(buf, off, sp->binds[i].path);
    }

    for (i = 0; i < (int) h.nargv; i++) {
        off = sb_warm_str(buf, off, c->argv[i]);
    }

    for (i = 0; i < (int) h.nenvp; i++) {
        off = sb_warm_str(buf, off, c->envp[i]);
    }

    off = sb_warm_put(buf, off, sb->filter[sp->kind].filter,
                      h.nfilter * sizeof(struct sock_filter));

    if (off == (size_t) -1) {
        sb_warm_close(fds + nsend - ntrees, ntrees);
        free(buf);
        return 1;
    }

    iov.iov_base = buf;
    iov.iov_len = off;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;

    if (nsend > 0) {
        msg.msg_control = cmsg;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nsend);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nsend);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nsend);
    }

    fd = sb->warm_fd[0];               /* the oldest: likely ready */
    len = sendmsg(fd, &msg, MSG_NOSIGNAL);
    free(buf);
    sb_warm_close(fds + nsend - ntrees, ntrees);

    if (len != (ssize_t) off) {
        /* gone: the exec way, this time */
        sb_warm_drop(sb);
        return 1;
    }

    /*
     * "P pid" from the warm loader, "K" or "F..." from its child, in
     * either order: the child shares the socket and may be first.
     */

    child = -1;
    status = 1;
    err[0] = '\0';

    while (child == -1 || status == 1) {
        pfd.fd = fd;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, 10000) <= 0) {
            snprintf(err, errlen, "sandbox %s: the warm loader did not "
                     "answer", sp->project);
            status = -1;
            break;
        }

        len = recv(fd, reply, sizeof(reply) - 1, 0);

        if (len <= 0) {
            if (status == 1) {
                snprintf(err, errlen, "sandbox %s: the warm loader ended "
                         "without a word", sp->project);
                status = -1;
            }

            break;
        }

        reply[len] = '\0';

        switch (reply[0]) {

        case 'P':
            child = (pid_t) atol(reply + 1);
            break;

        case 'K':
            status = 0;
            break;

        case 'F':
            /* F step \0 object \0 errno */
            p = reply + 1;
            off = strlen(p) + 1;

            if ((size_t) len > off + 1) {
                snprintf(err, errlen, "sandbox %s: %s%s%s: %s", sp->project,
                         p, reply[1 + off] ? " " : "", reply + 1 + off,
                         strerror(atoi(reply + 1 + off
                                       + strlen(reply + 1 + off) + 1)));
            } else {
                snprintf(err, errlen, "sandbox %s: %s", sp->project, p);
            }

            status = -1;
            break;

        default:
            snprintf(err, errlen, "sandbox %s: the warm loader said "
                     "\"%.32s\"", sp->project, reply);
            status = -1;
        }

        if (status == -1 && reply[0] != 'F') {
            break;
        }
    }

    if (status == 0 && child <= 0) {
        snprintf(err, errlen, "sandbox %s: the warm loader did not say its "
                 "child's pid", sp->project);
        status = -1;
    }

    if (status == 0) {
        *pid = child;
    }

    /* used up: it exits once its child is on its way */
    sb_warm_drop(sb);

    if (status == -1 && child > 0) {
        (void) kill(child, SIGKILL);
        (void) waitpid(child, NULL, __WALL);
    }

    return status;
}


void
sb_warm_report(int fd, int what, const char *step, const char *object,
    int error)
{
    int     n;
    char    buf[512];

    buf[0] = (char) what;
    n = 1;

    if (what == 'F') {
        n += snprintf(buf + n, sizeof(buf) - n - 64, "%s",
                      step ? step : "") + 1;
        n += snprintf(buf + n, sizeof(buf) - n - 32, "%s",
                      object ? object : "") + 1;
        n += snprintf(buf + n, sizeof(buf) - n, "%d", error) + 1;
    }

    (void) !send(fd, buf, n, MSG_NOSIGNAL);
}


void
sb_warm_drop(shuttle_sandbox_t *sb)
{
    if (sb->nwarm == 0) {
        return;
    }

    /* the oldest, the one a spawn uses */

    close(sb->warm_fd[0]);

    /* it exits at once on EOF, or has exited */
    while (waitpid(sb->warm_pid[0], NULL, 0) == -1 && errno == EINTR) {
        /* void */
    }

    sb->nwarm--;
    memmove(&sb->warm_fd[0], &sb->warm_fd[1], sb->nwarm * sizeof(int));
    memmove(&sb->warm_pid[0], &sb->warm_pid[1], sb->nwarm * sizeof(pid_t));
}


int
shuttle_sandbox_warm(shuttle_sandbox_t *sb, const char *path,
    int host_network, char *err, size_t errlen)
{
    int                         sv[2], rc;
    char                       *argv[5], pad[SB_WARM_ARGS + 1];
    char                       *envp[1];
    pid_t                       pid;
    sigset_t                    mask, dflt;
    posix_spawnattr_t           attr;
    posix_spawn_file_actions_t  fa;

    if (sb->userns) {
        return 0;
    }

    if (sb->nwarm > 0 && sb->warm_host_network != (unsigned) !!host_network)
    {
        /* for services of the other kind of network */
        while (sb->nwarm > 0) {
            sb_warm_drop(sb);
        }
    }

    if (sb->nwarm == SB_WARM_POOL) {
        return 0;
    }

    sb->warm_host_network = !!host_network;

    if (sb->warm_path == NULL || strcmp(sb->warm_path, path) != 0) {
        free(sb->warm_path);
        sb->warm_path = strdup(path);

        if (sb->warm_path == NULL) {
            snprintf(err, errlen, "warm loader: %s", strerror(ENOMEM));
            return -1;
        }
    }

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
        snprintf(err, errlen, "warm loader: socketpair: %s",
                 strerror(errno));
        return -1;
    }

    memset(pad, ' ', SB_WARM_ARGS);
    pad[SB_WARM_ARGS] = '\0';

    argv[0] = (char *) path;
    argv[1] = "--warm";
    argv[2] = host_network ? "--host-network" : "--own-network";
    argv[3] = pad;              /* room for the command line to come */
    argv[4] = NULL;
    envp[0] = NULL;

    (void) posix_spawn_file_actions_init(&fa);
    (void) posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
    (void) posix_spawn_file_actions_adddup2(&fa, 0, 1);
    (void) posix_spawn_file_actions_adddup2(&fa, 0, 2);
    (void) posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    (void) posix_spawn_file_actions_addclosefrom_np(&fa, 4);

    sigemptyset(&mask);
    sigfillset(&dflt);
    sigdelset(&dflt, SIGKILL);
    sigdelset(&dflt, SIGSTOP);

    (void) posix_spawnattr_init(&attr);
    (void) posix_spawnattr_setsigmask(&attr, &mask);
    (void) posix_spawnattr_setsigdefault(&attr, &dflt);
    (void) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK
                                           | POSIX_SPAWN_SETSIGDEF
                                           | POSIX_SPAWN_SETSID);

    rc = posix_spawn(&pid, path, &fa, &attr, argv, envp);

    (void) posix_spawn_file_actions_destroy(&fa);
    (void) posix_spawnattr_destroy(&attr);
    close(sv[1]);

    if (rc != 0) {
        close(sv[0]);
        snprintf(err, errlen, "warm loader: cannot run %s: %s", path,
                 strerror(rc));
        return -1;
    }

    sb->warm_fd[sb->nwarm] = sv[0];
    sb->warm_pid[sb->nwarm] = pid;
    sb->nwarm++;

    return 0;
}


int
shuttle_sandbox_warm_ready(shuttle_sandbox_t *sb)
{
    return sb->nwarm == SB_WARM_POOL;
}


/*
 * The warm loader's side (shuttle-loader --warm): waits for one request on
 * fd, clones the sandboxed child that runs run(), answers, exits.  Never
 * returns.
 */

void
shuttle_sandbox_warm_serve(int fd, shuttle_sandbox_run_pt run, int wargc,
    char **wargv)
{
    int                 fds[SB_WARM_FDS], nfds, i, k, gate[2];
    int                 host_network;
    char               *buf, pidmsg[32];
    char                cmsg[CMSG_SPACE(sizeof(int) * SB_WARM_FDS)];
    size_t              off;
    ssize_t             len;
    pid_t               child;
    struct iovec        iov;
    struct msghdr       msg;
    struct cmsghdr     *cm;
    sb_warm_head_t      h;
    sb_child_t          c;
    shuttle_spawn_t     sp;
    shuttle_limits_t    limits;
    shuttle_bind_t      binds[SB_MAX_BINDS];
    int                 spfds[SB_MAX_FDS];
    const char         *path, *str;
    char              **argv, **envp;
    static shuttle_sandbox_t  sb;

    sb_warm_args = wargv[0];
    sb_warm_args_len = wargv[wargc - 1] + strlen(wargv[wargc - 1]) + 1
                       - wargv[0];

    buf = malloc(SB_WARM_MAX);
    if (buf == NULL) {
        _exit(1);
    }

    /*
     * Ahead of the request: the namespaces (the pid one for the child to
     * come, its init; a network one with its loopback up) and the part
     * of the root every sandbox has.
     */
    memset(&c, 0, sizeof(c));
    c.warm_fd = -1;

    host_network = wargc > 2 && strcmp(wargv[2], "--host-network") == 0;

    if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
                | (host_network ? 0 : CLONE_NEWNET))
        == -1
        || (!host_network && sb_loopback_up() != 0))
    {
        _exit(1);
    }

    (void) sb_child_mounts_base(&c);     /* _exit()s when it fails */

    /*
     * Into the new root, the host's detached, ahead too: the detach waits
     * for an RCU grace period (milliseconds on a busy machine), which a
     * wake then does not; the spawn's binds come as trees to move in.
     */
    (void) sb_child_mounts_pivot(&c);    /* _exit()s when it fails */

    /*
     * The child, forked ahead too (a wake pays no fork): pid 1 of the new
     * pid namespace, it waits for the request itself.  This process says
     * the child's pid now (the builder reads it after its request) and
     * stays its parent until the request came (the child says "U" on the
     * gate) or the child ended unused (then it reaps it): only a used
     * child becomes the builder's (its subreaper's) to reap.
     *
     * A fork, never a clone(CLONE_VM): this process is root outside the
     * sandbox, the child will run the tenant's code, and nothing the
     * child does (a constructor of the service, run by an init that
     * could not fork its loader) may reach this memory.
     */
    if (pipe2(gate, O_CLOEXEC) == -1) {
        _exit(1);
    }

    child = fork();

    if (child == -1) {
        _exit(1);
    }

    if (child > 0) {
        close(gate[1]);

        snprintf(pidmsg, sizeof(pidmsg), "P%ld", (long) child);
        (void) !send(fd, pidmsg, strlen(pidmsg) + 1, MSG_NOSIGNAL);
        close(fd);

        do {
            len = read(gate[0], pidmsg, 1);
        } while (len == -1 && errno == EINTR);

        if (len != 1) {
            /* unused, gone: reaped here */
            while (waitpid(child, NULL, 0) == -1 && errno == EINTR) {
                /* void */
            }
        }

        /* used: the builder adopts the child, it is a subreaper */
        _exit(0);
    }

    close(gate[0]);

    iov.iov_base = buf;
    iov.iov_len = SB_WARM_MAX;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg;
    msg.msg_controllen = sizeof(cmsg);

    do {
        len = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    } while (len == -1 && errno == EINTR);

    if (len < (ssize_t) sizeof(sb_warm_head_t)) {
        /* the builder went, or sent nonsense */
        _exit(0);
    }

    /* used: its parent goes, the builder adopts it */
    (void) !write(gate[1], "U", 1);
    close(gate[1]);

    nfds = 0;

    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            if (nfds > SB_WARM_FDS) {
                _exit(1);
            }
            memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
        }
    }

    memcpy(&h, buf, sizeof(h));
    off = sizeof(h);

    if (h.nbinds > SB_MAX_BINDS || h.nfds > SB_MAX_FDS
        || h.nprocs > SB_CONTROLLERS || h.kind > SHUTTLE_SANDBOX_SERVICE
        || h.nargv > 4096 || h.nenvp > 4096)
    {
        _exit(1);
    }

    memset(&sp, 0, sizeof(sp));
    memset(&c, 0, sizeof(c));
    c.based = 1;
    c.pivoted = 1;
    limits = h.limits;

    sp.kind = h.kind;
    sp.uid = h.uid;
    sp.gid = h.gid;
    sp.setsid = h.setsid;
    sp.limits = &limits;
    sp.nbinds = h.nbinds;
    sp.binds = binds;
    sp.nfds = h.nfds;
    sp.fds = spfds;

    sp.project = sb_warm_get(buf, len, &off);
    sp.cgroup = sb_warm_get(buf, len, &off);
    sp.cwd = sb_warm_get(buf, len, &off);
    path = sb_warm_get(buf, len, &off);
    str = sb_warm_get(buf, len, &off);

    if (sp.project == NULL || sp.cgroup == NULL || sp.cwd == NULL
        || path == NULL || str == NULL || strlen(str) >= sizeof(c.passwd))
    {
        _exit(1);
    }

    if (sp.cwd[0] == '\0') {
        sp.cwd = NULL;
    }

    memcpy(c.passwd, str, strlen(str) + 1);

    for (i = 0; i < (int) h.nbinds; i++) {
        binds[i].path = sb_warm_get(buf, len, &off);
        binds[i].rw = h.rw[i] != 0;
        binds[i].optional = h.optional[i] != 0;

        if (binds[i].path == NULL) {
            _exit(1);
        }
    }

    argv = calloc(h.nargv + 1, sizeof(char *));
    envp = calloc(h.nenvp + 1, sizeof(char *));

    if (argv == NULL || envp == NULL) {
        _exit(1);
    }

    for (i = 0; i < (int) h.nargv; i++) {
        argv[i] = (char *) sb_warm_get(buf, len, &off);
        if (argv[i] == NULL) {
            _exit(1);
        }
    }

    for (i = 0; i < (int) h.nenvp; i++) {
        envp[i] = (char *) sb_warm_get(buf, len, &off);
        if (envp[i] == NULL) {
            _exit(1);
        }
    }

    if (len - off != h.nfilter * sizeof(struct sock_filter)) {
        _exit(1);
    }

    sb.userns = 0;
    sb.cgroup = h.cgroup;
    sb.nwarm = 0;
    sb.filter[h.kind].len = (unsigned short) h.nfilter;
    sb.filter[h.kind].filter = (struct sock_filter *) (buf + off);

    /* the descriptors in the order they were sent */

    k = 0;

    for (i = 0; i < (int) h.nfds; i++) {
        spfds[i] = (h.fdmask & (1u << i)) && k < nfds ? fds[k++] : -1;
    }

    c.nprocs = 0;

    for (i = 0; i < (int) h.nprocs && k < nfds; i++) {
        c.procs[c.nprocs++] = fds[k++];
    }

    for (i = 0; i < SB_MAX_BINDS; i++) {
        c.bindfd[i] = -1;

        if (i < (int) h.nbinds && h.present[i]) {
            if (k >= nfds) {
                /* a bind would be missing */
                _exit(1);
            }

            c.bindfd[i] = fds[k++];
        }
    }

    c.sb = &sb;
    c.sp = &sp;
    c.path = path;
    c.argv = argv;
    c.envp = envp;
    c.outer_uid = getuid();
    c.outer_gid = getgid();
    c.run = run;
    sigfillset(&c.all);
    sigemptyset(&c.none);

    if (dup2(fd, SB_WARM_FD) == -1) {
        _exit(1);
    }

    c.warm_fd = SB_WARM_FD;

    _exit(sb_child(&c) == 0 ? 0 : 127);
}
