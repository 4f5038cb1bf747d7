
/*
 * The sandbox: the child between clone(2) and execve(2), its ids,
 * namespaces, loopback and descriptors (sandbox_int.h).
 */

#include "sandbox.h"
#include "sandbox_int.h"


static int sb_child_fds(sb_child_t *c);
static int sb_child_close(sb_child_t *c);
static int sb_child_cmdline(sb_child_t *c);
static int sb_child_ids(sb_child_t *c);


/* the child ------------------------------------------------------------ */


int
sb_child_fail(sb_child_t *c, const char *step, const char *object)
{
    c->error = errno;
    c->step = step;
    c->object = object;

    if (c->warm_fd != -1) {
        /* the warm loader's child has its own memory: it says so */
        sb_warm_report(c->warm_fd, 'F', step, object, c->error);
    }

    _exit(127);
}


int
sb_child(void *arg)
{
    int                      i, sig;
    sb_child_t              *c;
    struct sigaction         dfl;
    const shuttle_spawn_t   *sp;
    const shuttle_limits_t  *l;
    struct rlimit            rl;

    c = arg;
    sp = c->sp;
    l = sp->limits;

    /*
     * A umask of its own, not the builder's of the moment: the new root's
     * directories must be 0755 for the project's uid to enter them
     */
    umask(022);

    /*
     * The caller's descriptors go first: a builder killed now must not
     * leave its API's listening socket open in this child while it sets
     * the sandbox up (the next builder would find the socket "live")
     */
    if (sb_child_close(c) != 0) {
        return sb_child_fail(c, "close_range", NULL);
    }

    /* default dispositions, then the signals may come */

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;

    for (sig = 1; sig < _NSIG; sig++) {
        (void) sigaction(sig, &dfl, NULL);
    }

    for (i = 0; i < c->nprocs; i++) {
        if (write(c->procs[i], "0", 1) != 1) {
            return sb_child_fail(c, "join cgroup", NULL);
        }
    }

    if (c->run != NULL && sb_child_cmdline(c) != 0) {
        return sb_child_fail(c, "command line", NULL);
    }

    if (sp->setsid && setsid() == -1) {
        return sb_child_fail(c, "setsid", NULL);
    }

    if (c->sb->userns && sb_child_ids(c) != 0) {
        return -1;
    }

    /* a service's loopback: its own, for what it talks to itself */
    if (sp->kind == SHUTTLE_SANDBOX_SERVICE && !sp->host_network
        && !c->based && sb_loopback_up() != 0)
    {
        return sb_child_fail(c, "loopback", "lo");
    }

    /* after the mounts: /dev/null is the sandbox's own */

    if (sb_child_mounts(c) != 0 || sb_child_fds(c) != 0) {
        return -1;
    }

    if (sp->cwd != NULL && chdir(sp->cwd) == -1) {
        return sb_child_fail(c, "chdir", sp->cwd);
    }

    if (sethostname("shuttle", 7) == -1) {
        /* no UTS namespace of its own: the host's name stays */
    }

    /* limits a process carries: open files, file size, no core */

    if (l->nofile) {
        rl.rlim_cur = rl.rlim_max = l->nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            return sb_child_fail(c, "setrlimit", "RLIMIT_NOFILE");
        }
    }

    if (l->file_size) {
        rl.rlim_cur = rl.rlim_max = l->file_size;
        if (setrlimit(RLIMIT_FSIZE, &rl) == -1) {
            return sb_child_fail(c, "setrlimit", "RLIMIT_FSIZE");
        }
    }

    rl.rlim_cur = rl.rlim_max = 0;
    (void) setrlimit(RLIMIT_CORE, &rl);

    if (c->sb->cgroup == SHUTTLE_CGROUP_NONE) {
        /* no cgroup: the uid's processes and one's address space */

        if (l->tasks && !c->sb->userns) {
            rl.rlim_cur = rl.rlim_max = l->tasks;
            (void) setrlimit(RLIMIT_NPROC, &rl);
        }

        /* what it writes to memory of its own: heap and anonymous
           mappings, not the address space its threads' arenas reserve */
        if (l->memory) {
            rl.rlim_cur = rl.rlim_max = l->memory;
            (void) setrlimit(RLIMIT_DATA, &rl);
        }
    }

    /* no capability can come back: the bounding set goes first */

    for (i = 0; i <= CAP_LAST_CAP; i++) {
        if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) == -1 && errno != EINVAL) {
            return sb_child_fail(c, "drop capabilities", NULL);
        }
    }

    if (!c->sb->userns) {
        if (setgroups(0, NULL) == -1) {
            return sb_child_fail(c, "setgroups", NULL);
        }

        if (setresgid(sp->gid, sp->gid, sp->gid) == -1) {
            return sb_child_fail(c, "setresgid", NULL);
        }

        if (setresuid(sp->uid, sp->uid, sp->uid) == -1) {
            return sb_child_fail(c, "setresuid", NULL);
        }
    }

    {
        struct __user_cap_header_struct  hdr;
        struct __user_cap_data_struct    data[2];

        memset(&hdr, 0, sizeof(hdr));
        memset(data, 0, sizeof(data));
        hdr.version = _LINUX_CAPABILITY_VERSION_3;

        if (syscall(SYS_capset, &hdr, data) == -1) {
            return sb_child_fail(c, "capset", NULL);
        }
    }

    /* after the uid changed, which clears it */
    if (sp->die_with_parent
        && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1)
    {
        return sb_child_fail(c, "prctl", "PR_SET_PDEATHSIG");
    }

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
        return sb_child_fail(c, "no_new_privs", NULL);
    }

    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
              &c->sb->filter[sp->kind], 0, 0) == -1)
    {
        return sb_child_fail(c, "seccomp", NULL);
    }

    (void) sigprocmask(SIG_SETMASK, &c->none, NULL);

    if (c->run != NULL) {
        /* a warm loader's child: no exec, the program is here already */
        sb_warm_report(c->warm_fd, 'K', NULL, NULL, 0);
        close(c->warm_fd);
        c->warm_fd = -1;
        environ = (char **) c->envp;

        for (i = 0; c->argv[i] != NULL; i++) {
            /* void */
        }

        exit(c->run(i, (char **) c->argv));
    }

    execve(c->path, c->argv, c->envp);

    return sb_child_fail(c, "exec", c->path);
}


/*
 * A warm loader's child shows its own command line, as an exec'd loader
 * would (ps, and the builder's takeover, read it), not "--warm": written
 * over the warm loader's arguments, which a padding argument made long
 * enough (prctl PR_SET_MM would need CAP_SYS_RESOURCE).
 */

char    *sb_warm_args;
size_t   sb_warm_args_len;

static int
sb_child_cmdline(sb_child_t *c)
{
    int      i;
    char    *p, *end;

    p = sb_warm_args;
    end = sb_warm_args + sb_warm_args_len;

    for (i = 0; c->argv[i] != NULL; i++) {
        if (strlen(c->argv[i]) + 1 > (size_t) (end - p)) {
            errno = E2BIG;
            return -1;
        }

        p = stpcpy(p, c->argv[i]) + 1;
    }

    memset(p, 0, end - p);

    return 0;
}


/* a user namespace mapping us to ourselves, as unprivileged tools do */

static int
sb_child_ids(sb_child_t *c)
{
    int   n;
    char  map[64];

    if (sb_child_file("/proc/self/setgroups", "deny") != 0) {
        return sb_child_fail(c, "write", "/proc/self/setgroups");
    }

    n = snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) c->outer_uid,
                 (unsigned) c->outer_uid);
    (void) n;

    if (sb_child_file("/proc/self/uid_map", map) != 0) {
        return sb_child_fail(c, "write", "/proc/self/uid_map");
    }

    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) c->outer_gid,
             (unsigned) c->outer_gid);

    if (sb_child_file("/proc/self/gid_map", map) != 0) {
        return sb_child_fail(c, "write", "/proc/self/gid_map");
    }

    return 0;
}


/* "ip link set lo up" in the network namespace we are in */

int
sb_loopback_up(void)
{
    int           fd, rc;
    struct ifreq  ifr;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }

    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);

    rc = ioctl(fd, SIOCGIFFLAGS, &ifr);

    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }

    close(fd);

    return rc;
}


/* every descriptor closed but those the child needs: fds, cgroup.procs,
   the warm loader's socket; no allocation, a shared memory's child */

static int
sb_child_close(sb_child_t *c)
{
    int     keep[SB_WARM_FDS + 1], n, i, j, fd, from;
    size_t  k;

    n = 0;

    for (k = 0; k < c->sp->nfds; k++) {
        if (c->sp->fds[k] >= 0) {
            keep[n++] = c->sp->fds[k];
        }
    }

    for (i = 0; i < c->nprocs; i++) {
        keep[n++] = c->procs[i];
    }

    for (i = 0; c->pivoted && i < (int) c->sp->nbinds; i++) {
        if (c->bindfd[i] != -1) {
            keep[n++] = c->bindfd[i];
        }
    }

    if (c->warm_fd != -1) {
        keep[n++] = c->warm_fd;
    }

    for (i = 1; i < n; i++) {
        fd = keep[i];

        for (j = i; j > 0 && keep[j - 1] > fd; j--) {
            keep[j] = keep[j - 1];
        }

        keep[j] = fd;
    }

    from = 3;

    for (i = 0; i < n; i++) {
        if (keep[i] > from
            && syscall(SYS_close_range, from, keep[i] - 1, 0) == -1)
        {
            return -1;
        }

        if (keep[i] + 1 > from) {
            from = keep[i] + 1;
        }
    }

    return syscall(SYS_close_range, from, ~0U, 0) == -1 ? -1 : 0;
}


/* fds[i] becomes descriptor i; nothing else stays open */

static int
sb_child_fds(sb_child_t *c)
{
    int     i, high[SB_MAX_FDS], null;
    size_t  n;

    n = c->sp->nfds;

    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null == -1) {
        return sb_child_fail(c, "open", "/dev/null");
    }

    for (i = 0; i < (int) n; i++) {
        high[i] = fcntl(c->sp->fds[i] >= 0 ? c->sp->fds[i] : null,
                        F_DUPFD_CLOEXEC, SB_MAX_FDS + 3);
        if (high[i] == -1) {
            return sb_child_fail(c, "dup", NULL);
        }
    }

    for (i = 0; i < (int) n; i++) {
        if (dup2(high[i], i) == -1) {
            return sb_child_fail(c, "dup2", NULL);
        }
    }

    for (i = (int) n; i < 3; i++) {
        if (dup2(null, i) == -1) {
            return sb_child_fail(c, "dup2", NULL);
        }
    }

    if (c->warm_fd != -1) {
        /* the warm loader's socket (SB_WARM_FD) stays, for the report */
        if (syscall(SYS_close_range, n > 3 ? n : 3, SB_WARM_FD - 1, 0)
                == -1
            || syscall(SYS_close_range, SB_WARM_FD + 1, ~0U, 0) == -1)
        {
            return sb_child_fail(c, "close_range", NULL);
        }

        return 0;
    }

    if (syscall(SYS_close_range, n > 3 ? n : 3, ~0U, 0) == -1) {
        return sb_child_fail(c, "close_range", NULL);
    }

    return 0;
}
