
/*
 * The tenants' sandbox: namespaces, a root of our own, a uid of the
 * project's, cgroup limits, rlimits and a seccomp filter, all set up by
 * one child between clone(2) and execve(2).  See sandbox.h.
 *
 * The child is a clone(CLONE_VM | CLONE_VFORK) of the calling thread, as
 * glibc's posix_spawn() is: no page table is copied, the caller sleeps
 * until the exec, and the child reports a failure by writing the step
 * and errno into the caller's memory.  Since it shares the memory of a
 * threaded process, it only makes system calls: everything it needs
 * (paths, the BPF programs, the cgroup.procs descriptors) is ready
 * before the clone, and it runs with every signal blocked until it has
 * reset their dispositions.
 * The child execs before any code of a tenant's runs; a warm loader's
 * child, which runs the loader without an exec, is a fork(2) of it: no
 * privileged process ever shares its memory with tenant code.
 *
 * The root is built as bubblewrap builds one: a tmpfs is mounted over
 * /tmp and pivot_root(2)ed to, the old root stays reachable at /oldroot
 * (its /tmp uncovered again) as the source of every bind; the new root is
 * assembled in /newroot, then pivot_root(".", ".") stacks it on top and
 * the old one is detached.
 */


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include "sandbox.h"


#define SB_STACK        (256 * 1024)
#define SB_PATH         4096
#define SB_MAX_BINDS    32
#define SB_MAX_FDS      16
#define SB_WARM_FD      (SB_MAX_FDS * 2 + 8)   /* above sb_child_fds' dups */
#define SB_WARM_MAX     (64 * 1024)             /* a spawn request */
#define SB_WARM_POOL    1           /* warm loaders kept (2 did not make a
                                       burst of wakes faster: each refill is
                                       an exec, and the CPU is the limit) */
#define SB_WARM_ARGS    4096        /* the longest command line it takes */
#define SB_CONTROLLERS  3             /* memory, pids, cpu */
#define SB_TMPFS_ROOT   "/tmp"        /* where the scratch root goes */

/* the calls a service may not make: SIGSYS (logged by the loader) */
static const char *const  sb_denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "swapon", "swapoff", "reboot", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    "unshare", "setns", "userfaultfd", "acct", "quotactl", "syslog",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
    "fanotify_init", "nfsservctl", "vhangup", "uselib",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "personality",
    NULL
};

/* what a project sees of /etc, read-only when the host has it */
static const char *const  sb_etc[] = {
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
    "/etc/host.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
    "/etc/localtime", "/etc/ssl", "/etc/ca-certificates",
    "/etc/alternatives", "/etc/mime.types",
    NULL
};

static const char *const  sb_dev[] = {
    "null", "zero", "full", "random", "urandom", "tty", NULL
};

static const char *const  sb_links[][2] = {
    { "usr/bin", "/newroot/bin" }, { "usr/sbin", "/newroot/sbin" },
    { "usr/lib", "/newroot/lib" }, { "usr/lib64", "/newroot/lib64" },
    { "usr/lib32", "/newroot/lib32" }, { "usr/libx32", "/newroot/libx32" },
    { "/proc/self/fd", "/newroot/dev/fd" },
    { "/proc/self/fd/0", "/newroot/dev/stdin" },
    { "/proc/self/fd/1", "/newroot/dev/stdout" },
    { "/proc/self/fd/2", "/newroot/dev/stderr" },
};

static const char *const  sb_controllers[SB_CONTROLLERS] = {
    "memory", "pids", "cpu"
};


struct shuttle_sandbox_s {
    unsigned                userns:1;   /* not root: a user namespace */
    shuttle_cgroup_e        cgroup;
    char                   *base[SB_CONTROLLERS];   /* our subtree, per
                                                       controller (v2: [0]) */
    struct sock_fprog       filter[2];  /* by shuttle_sandbox_kind_e */
    char                    describe[256];
    int                     warm_fd[SB_WARM_POOL];  /* the warm loaders'
                                                       sockets, a stack */
    pid_t                   warm_pid[SB_WARM_POOL];
    unsigned                nwarm;
    unsigned                warm_host_network:1;  /* the pool's loaders
                                                     keep the host's */
    char                   *warm_path;  /* the program it runs */
};


/* everything the child needs, computed by the parent */
typedef struct {
    const shuttle_sandbox_t *sb;
    const shuttle_spawn_t   *sp;
    const char              *path;
    char *const             *argv;
    char *const             *envp;
    int                      procs[SB_CONTROLLERS];  /* cgroup.procs */
    int                      nprocs;
    uid_t                    outer_uid;  /* userns: who we are outside */
    gid_t                    outer_gid;
    char                     passwd[512];
    sigset_t                 all;
    sigset_t                 none;

    /* the child's report, read after the vfork-like clone returns */
    const char              *step;
    const char              *object;
    int                      error;

    /* a warm loader's child: it reports on warm_fd, then runs run() */
    int                      warm_fd;
    int                      based;     /* sb_child_mounts_base() done */
    shuttle_sandbox_run_pt   run;
} sb_child_t;


static int sb_probe(shuttle_sandbox_t *sb, char *err, size_t errlen);
static int sb_detect_cgroup(shuttle_sandbox_t *sb, const char *instance,
    char *err, size_t errlen);
static char *sb_own_cgroup(const char *controller, int v2);
static char *sb_mount_of(const char *controller, int v2);
static int sb_filter(shuttle_sandbox_t *sb, shuttle_sandbox_kind_e kind,
    char *err, size_t errlen);
static int sb_cgroup_enter(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    sb_child_t *c, char *err, size_t errlen);
static int sb_cgroup_dir(const char *base, const char *project,
    const char *leaf, char *dir, size_t size);
static int sb_write(const char *dir, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sb_child(void *arg);
static int sb_child_fail(sb_child_t *c, const char *step,
    const char *object);
static int sb_child_mounts(sb_child_t *c);
static int sb_child_mounts_base(sb_child_t *c);
static int sb_child_mounts_own(sb_child_t *c);
static int sb_child_bind(sb_child_t *c, const char *src, const char *dst,
    int rw);
static int sb_child_mkdirs(char *path);
static int sb_child_file(const char *path, const char *data);
static int sb_child_fds(sb_child_t *c);
static int sb_child_cmdline(sb_child_t *c);
static int sb_warm_spawn(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    sb_child_t *c, pid_t *pid, char *err, size_t errlen);
static void sb_warm_report(int fd, int what, const char *step,
    const char *object, int error);
static void sb_warm_drop(shuttle_sandbox_t *sb);
static int sb_child_ids(sb_child_t *c);
static int sb_loopback_up(void);
static size_t sb_cat(char *buf, size_t size, const char *a, const char *b);
static void sb_remove_tree(const char *dir);


shuttle_sandbox_t *
shuttle_sandbox_create(const char *instance, unsigned flags, char *err,
    size_t errlen)
{
    int                 n;
    shuttle_sandbox_t  *sb;

    sb = calloc(1, sizeof(shuttle_sandbox_t));
    if (sb == NULL) {
        snprintf(err, errlen, "sandbox: %s", strerror(ENOMEM));
        return NULL;
    }

    sb->userns = (geteuid() != 0 || (flags & SHUTTLE_SANDBOX_USERNS)) != 0;

    if (sb->userns) {
        sb->cgroup = SHUTTLE_CGROUP_NONE;

    } else if (sb_detect_cgroup(sb, instance, err, errlen) != 0) {
        shuttle_sandbox_destroy(sb);
        return NULL;
    }

    if (sb_filter(sb, SHUTTLE_SANDBOX_BUILD, err, errlen) != 0
        || sb_filter(sb, SHUTTLE_SANDBOX_SERVICE, err, errlen) != 0)
    {
        shuttle_sandbox_destroy(sb);
        return NULL;
    }

    if (sb_probe(sb, err, errlen) != 0) {
        shuttle_sandbox_destroy(sb);
        return NULL;
    }

    n = snprintf(sb->describe, sizeof(sb->describe), "%s, ",
                 sb->userns ? "user, mount, pid, network namespaces"
                            : "mount, pid, network namespaces");

    switch (sb->cgroup) {

    case SHUTTLE_CGROUP_V2:
        snprintf(sb->describe + n, sizeof(sb->describe) - n,
                 "cgroup v2 at %s (memory, pids, cpu), seccomp",
                 sb->base[0]);
        break;

    case SHUTTLE_CGROUP_V1:
        snprintf(sb->describe + n, sizeof(sb->describe) - n,
                 "cgroup v1 at %s (memory, pids, cpu), seccomp",
                 sb->base[0]);
        break;

    default:
        snprintf(sb->describe + n, sizeof(sb->describe) - n,
                 "no cgroup: limits are rlimits (data, processes of "
                 "the project's uid), seccomp");
    }

    return sb;
}


/*
 * /usr/bin/true spawned once, outside any cgroup: what this kernel and
 * these rights allow is known at start, not at the first deploy.
 */

static int
sb_probe(shuttle_sandbox_t *sb, char *err, size_t errlen)
{
    int                 status;
    pid_t               pid;
    shuttle_spawn_t     sp;
    shuttle_limits_t    limits;
    shuttle_cgroup_e    cgroup;

    char  *argv[] = { "true", NULL };
    char  *envp[] = { NULL };

    memset(&sp, 0, sizeof(sp));
    memset(&limits, 0, sizeof(limits));
    sp.kind = SHUTTLE_SANDBOX_BUILD;
    sp.project = "probe";
    sp.uid = 65534;
    sp.gid = 65534;
    sp.limits = &limits;

    cgroup = sb->cgroup;
    sb->cgroup = SHUTTLE_CGROUP_NONE;

    if (shuttle_sandbox_spawn(sb, &sp, "/usr/bin/true", argv, envp, &pid,
                              err, errlen)
        != 0)
    {
        sb->cgroup = cgroup;
        return -1;
    }

    sb->cgroup = cgroup;

    while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {
        /* void */
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "sandbox: /usr/bin/true in a sandbox ended "
                 "with status 0x%x", (unsigned) status);
        return -1;
    }

    return 0;
}


void
shuttle_sandbox_destroy(shuttle_sandbox_t *sb)
{
    int  i;

    for (i = 0; i < SB_CONTROLLERS; i++) {
        free(sb->base[i]);
    }

    while (sb->nwarm > 0) {
        sb_warm_drop(sb);
    }

    free(sb->warm_path);
    free(sb->filter[0].filter);
    free(sb->filter[1].filter);
    free(sb);
}


const char *
shuttle_sandbox_describe(shuttle_sandbox_t *sb)
{
    return sb->describe;
}


shuttle_cgroup_e
shuttle_sandbox_cgroup(shuttle_sandbox_t *sb)
{
    return sb->cgroup;
}


int
shuttle_sandbox_uids(shuttle_sandbox_t *sb)
{
    return !sb->userns;
}


/*
 * cgroup v2 when /sys/fs/cgroup is one (cgroup.controllers at its top),
 * else the v1 hierarchies of memory, pids and cpu.  Our subtree is
 * INSTANCE under the builder's own cgroup, so an operator's limits on
 * the builder's service bound the tenants too.  In v2 a cgroup with
 * processes cannot hand controllers to children: the builder moves
 * itself into a leaf of its own first, as systemd's delegation asks.
 */

static int
sb_detect_cgroup(shuttle_sandbox_t *sb, const char *instance, char *err,
    size_t errlen)
{
    int    i, v2;
    char  *mnt, *own, path[SB_PATH], self[SB_PATH], leaf[SB_PATH];

    v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;

    for (i = 0; i < (v2 ? 1 : SB_CONTROLLERS); i++) {
        mnt = sb_mount_of(sb_controllers[i], v2);
        own = mnt ? sb_own_cgroup(sb_controllers[i], v2) : NULL;

        if (mnt == NULL || own == NULL) {
            free(mnt);
            free(own);
            break;
        }

        snprintf(path, sizeof(path), "%s%s/%s", mnt,
                 strcmp(own, "/") == 0 ? "" : own, instance);

        /*
         * v2: a cgroup with processes cannot hand controllers down, so
         * we move into a leaf of our own first (the root may do both);
         * where that or the controllers are refused (not delegated to
         * us), we go without cgroups, and say so.
         */

        if (v2) {
            snprintf(self, sizeof(self), "%s%s", mnt,
                     strcmp(own, "/") == 0 ? "" : own);

            if (strcmp(own, "/") != 0
                && (sb_cat(leaf, sizeof(leaf), self, "/builder")
                    >= sizeof(leaf)
                    || (mkdir(leaf, 0755) == -1 && errno != EEXIST)
                    || sb_write(leaf, "cgroup.procs", "0") != 0))
            {
                free(mnt);
                free(own);
                break;
            }

            if (sb_write(self, "cgroup.subtree_control",
                         "+memory +pids +cpu") != 0
                || (mkdir(path, 0755) == -1 && errno != EEXIST)
                || sb_write(path, "cgroup.subtree_control",
                            "+memory +pids +cpu") != 0)
            {
                free(mnt);
                free(own);
                break;
            }

            free(mnt);
            free(own);

        } else {
            free(mnt);
            free(own);

            if (mkdir(path, 0755) == -1 && errno != EEXIST) {
                snprintf(err, errlen, "sandbox: cgroup %s: %s", path,
                         strerror(errno));
                return -1;
            }
        }

        sb->base[i] = strdup(path);
        if (sb->base[i] == NULL) {
            snprintf(err, errlen, "sandbox: %s", strerror(ENOMEM));
            return -1;
        }
    }

    if (i == (v2 ? 1 : SB_CONTROLLERS)) {
        sb->cgroup = v2 ? SHUTTLE_CGROUP_V2 : SHUTTLE_CGROUP_V1;
        return 0;
    }

    /* some controller is missing: rlimits alone */

    for (i = 0; i < SB_CONTROLLERS; i++) {
        free(sb->base[i]);
        sb->base[i] = NULL;
    }

    sb->cgroup = SHUTTLE_CGROUP_NONE;

    return 0;
}


/* the mount point of controller's hierarchy (v2: the unified one) */

static char *
sb_mount_of(const char *controller, int v2)
{
    FILE    *f;
    char     line[1024], mnt[512], type[64], opts[512], *p, *found;
    size_t   len;

    f = fopen("/proc/self/mounts", "re");
    if (f == NULL) {
        return NULL;
    }

    found = NULL;
    len = strlen(controller);

    while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%*s %511s %63s %511s", mnt, type, opts) != 3) {
            continue;
        }

        if (v2) {
            if (strcmp(type, "cgroup2") == 0
                && strcmp(mnt, "/sys/fs/cgroup") == 0)
            {
                found = strdup(mnt);
            }

            continue;
        }

        if (strcmp(type, "cgroup") != 0) {
            continue;
        }

        for (p = strtok(opts, ","); p != NULL; p = strtok(NULL, ",")) {
            if (strlen(p) == len && strncmp(p, controller, len) == 0) {
                found = strdup(mnt);
                break;
            }
        }
    }

    fclose(f);

    return found;
}


/* our own cgroup in controller's hierarchy, from /proc/self/cgroup */

static char *
sb_own_cgroup(const char *controller, int v2)
{
    FILE    *f;
    char     line[1024], *ctl, *path, *p, *found;
    size_t   len;

    f = fopen("/proc/self/cgroup", "re");
    if (f == NULL) {
        return NULL;
    }

    found = NULL;
    len = strlen(controller);

    while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';

        ctl = strchr(line, ':');
        path = ctl ? strchr(ctl + 1, ':') : NULL;

        if (path == NULL) {
            continue;
        }

        *path++ = '\0';
        ctl++;

        if (v2) {
            if (*ctl == '\0') {
                found = strdup(path);
            }

            continue;
        }

        for (p = strtok(ctl, ","); p != NULL; p = strtok(NULL, ",")) {
            if (strlen(p) == len && strncmp(p, controller, len) == 0) {
                found = strdup(path);
                break;
            }
        }
    }

    fclose(f);

    return found;
}


/*
 * A filter of libseccomp's making, exported as classic BPF: a service's
 * raises SIGSYS for what it may not do, a build's answers EPERM.  Both
 * refuse clone(2) and clone3(2) asking for namespaces (clone3 with ENOSYS,
 * which makes glibc fall back to clone, whose flags a filter can read).
 * A service may bind(2) only a 12-byte address, a netlink one (glibc's
 * getaddrinfo() binds such a socket to learn the host's addresses): no
 * AF_INET or AF_INET6 address is that short, so no port can be taken.
 */

static int
sb_filter(shuttle_sandbox_t *sb, shuttle_sandbox_kind_e kind, char *err,
    size_t errlen)
{
    int                  rc, fd, nr;
    char                *buf;
    off_t                size;
    uint32_t             deny;
    scmp_filter_ctx      ctx;
    const char *const   *name;
    const uint64_t       ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC
                              | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
                              | CLONE_NEWCGROUP;

    deny = kind == SHUTTLE_SANDBOX_SERVICE ? SCMP_ACT_TRAP
                                           : SCMP_ACT_ERRNO(EPERM);

    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        snprintf(err, errlen, "sandbox: seccomp_init failed");
        return -1;
    }

    /* a binary tree of the calls: an allowed one is found in log n */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

    for (name = sb_denied; rc == 0 && *name != NULL; name++) {
        nr = seccomp_syscall_resolve_name(*name);

        if (nr != __NR_SCMP_ERROR) {
            rc = seccomp_rule_add(ctx, deny, nr, 0);
        }
    }

    /* any namespace flag: one rule per flag, libseccomp has no "!= 0" */

    if (rc == 0) {
        for (uint64_t bit = 1; rc == 0 && bit != 0 && bit <= ns;
             bit <<= 1)
        {
            if (ns & bit) {
                rc = seccomp_rule_add(ctx, deny, SCMP_SYS(clone), 1,
                                      SCMP_A0(SCMP_CMP_MASKED_EQ, bit,
                                              bit));
            }
        }
    }

    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
                              0);
    }

    if (rc == 0 && kind == SHUTTLE_SANDBOX_SERVICE) {
        rc = seccomp_rule_add(ctx, deny, SCMP_SYS(bind), 1,
                              SCMP_A2(SCMP_CMP_NE, 12));

        if (rc == 0) {
            rc = seccomp_rule_add(ctx, deny, SCMP_SYS(listen), 0);
        }
    }

    if (rc != 0) {
        snprintf(err, errlen, "sandbox: seccomp rule: %s", strerror(-rc));
        seccomp_release(ctx);
        return -1;
    }

    /* the program, exported to a memfd and read back */

    fd = memfd_create("shuttle-seccomp", MFD_CLOEXEC);
    rc = fd == -1 ? -errno : seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);

    size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    buf = size > 0 ? malloc(size) : NULL;

    if (buf == NULL || pread(fd, buf, size, 0) != size
        || size % sizeof(struct sock_filter) != 0)
    {
        snprintf(err, errlen, "sandbox: seccomp filter: %s",
                 strerror(rc ? -rc : errno ? errno : EINVAL));
        free(buf);
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    close(fd);

    sb->filter[kind].filter = (struct sock_filter *) buf;
    sb->filter[kind].len = (unsigned short) (size
                                             / sizeof(struct sock_filter));

    return 0;
}


int
shuttle_sandbox_spawn(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    const char *path, char *const argv[], char *const envp[], pid_t *pid,
    char *err, size_t errlen)
{
    int          flags, i, status, rc;
    char        *stack;
    pid_t        child;
    sigset_t     old;
    sb_child_t   c;

    if (sp->nbinds > SB_MAX_BINDS || sp->nfds > SB_MAX_FDS) {
        snprintf(err, errlen, "sandbox %s: too many binds or descriptors",
                 sp->project);
        return -1;
    }

    memset(&c, 0, sizeof(sb_child_t));
    c.sb = sb;
    c.sp = sp;
    c.path = path;
    c.argv = argv;
    c.envp = envp;
    c.outer_uid = getuid();
    c.outer_gid = getgid();

    for (i = 0; i < SB_CONTROLLERS; i++) {
        c.procs[i] = -1;
    }

    snprintf(c.passwd, sizeof(c.passwd),
             "root:x:0:0:root:/:/usr/sbin/nologin\n"
             "%s:x:%u:%u:shuttle project %s:/tmp:/usr/sbin/nologin\n"
             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
             sp->project,
             (unsigned) (sb->userns ? c.outer_uid : sp->uid),
             (unsigned) (sb->userns ? c.outer_gid : sp->gid), sp->project);

    if (sb_cgroup_enter(sb, sp, &c, err, errlen) != 0) {
        goto failed;
    }

    c.warm_fd = -1;

    if (sb->nwarm > 0 && sp->kind == SHUTTLE_SANDBOX_SERVICE
        && !sp->die_with_parent && !sb->userns
        && sp->host_network == sb->warm_host_network
        && strcmp(path, sb->warm_path) == 0)
    {
        /* the warm loader, if it is still there, saves an exec */
        rc = sb_warm_spawn(sb, sp, &c, pid, err, errlen);

        if (rc != 1) {
            for (i = 0; i < c.nprocs; i++) {
                close(c.procs[i]);
            }

            return rc;
        }
    }

    stack = mmap(NULL, SB_STACK, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        snprintf(err, errlen, "sandbox %s: stack: %s", sp->project,
                 strerror(errno));
        goto failed;
    }

    flags = CLONE_VM | CLONE_VFORK | SIGCHLD | CLONE_NEWNS | CLONE_NEWPID
            | CLONE_NEWIPC | CLONE_NEWUTS;

    if (sp->kind == SHUTTLE_SANDBOX_BUILD || !sp->host_network) {
        flags |= CLONE_NEWNET;
    }

    if (sb->userns) {
        flags |= CLONE_NEWUSER;
    }

    sigfillset(&c.all);
    sigemptyset(&c.none);

    /* no handler of ours may run on the child's stack */
    pthread_sigmask(SIG_SETMASK, &c.all, &old);

    child = clone(sb_child, stack + SB_STACK, flags, &c);

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    munmap(stack, SB_STACK);

    if (child == -1) {
        snprintf(err, errlen, "sandbox %s: clone: %s", sp->project,
                 strerror(errno));
        goto failed;
    }

    if (c.step != NULL) {
        /* it told us why, then exited */
        while (waitpid(child, &status, __WALL) == -1 && errno == EINTR) {
            /* void */
        }

        snprintf(err, errlen, "sandbox %s: %s%s%s: %s", sp->project,
                 c.step, c.object ? " " : "", c.object ? c.object : "",
                 strerror(c.error));
        goto failed;
    }

    for (i = 0; i < c.nprocs; i++) {
        close(c.procs[i]);
    }

    *pid = child;

    return 0;

failed:

    for (i = 0; i < c.nprocs; i++) {
        close(c.procs[i]);
    }

    return -1;
}


/*
 * The project's cgroup, its limits written: PROJECT/LEAF under each of
 * our hierarchies; the child joins it by writing "0" to the cgroup.procs
 * the parent opened.
 */

static int
sb_cgroup_enter(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    sb_child_t *c, char *err, size_t errlen)
{
    int                      i, n;
    char                     dir[SB_PATH], proj[SB_PATH];
    const shuttle_limits_t  *l;

    if (sb->cgroup == SHUTTLE_CGROUP_NONE) {
        return 0;
    }

    l = sp->limits;
    n = sb->cgroup == SHUTTLE_CGROUP_V2 ? 1 : SB_CONTROLLERS;

    for (i = 0; i < n; i++) {
        if (sb_cgroup_dir(sb->base[i], sp->project, NULL, proj,
                          sizeof(proj)) != 0
            || sb_cgroup_dir(sb->base[i], sp->project, sp->cgroup, dir,
                             sizeof(dir)) != 0)
        {
            snprintf(err, errlen, "sandbox %s: cgroup name too long",
                     sp->project);
            return -1;
        }

        if ((mkdir(proj, 0755) == -1 && errno != EEXIST)
            || (sb->cgroup == SHUTTLE_CGROUP_V2
                && sb_write(proj, "cgroup.subtree_control",
                            "+memory +pids +cpu") != 0)
            || (mkdir(dir, 0755) == -1 && errno != EEXIST))
        {
            snprintf(err, errlen, "sandbox %s: cgroup %s: %s", sp->project,
                     dir, strerror(errno));
            return -1;
        }

        if (sb->cgroup == SHUTTLE_CGROUP_V2) {
            if ((l->memory && (sb_write(dir, "memory.max", "%llu",
                                        (unsigned long long) l->memory)
                               != 0
                               || sb_write(dir, "memory.swap.max", "0")
                                  != 0))
                || (l->tasks && sb_write(dir, "pids.max", "%u", l->tasks)
                                != 0)
                || (l->cpu && sb_write(dir, "cpu.weight", "%u", l->cpu)
                              != 0))
            {
                snprintf(err, errlen, "sandbox %s: cgroup %s: limits: %s",
                         sp->project, dir, strerror(errno));
                return -1;
            }

        } else if (i == 0 && l->memory) {
            if (sb_write(dir, "memory.limit_in_bytes", "%llu",
                         (unsigned long long) l->memory) != 0)
            {
                snprintf(err, errlen, "sandbox %s: cgroup %s: memory "
                         "limit: %s", sp->project, dir, strerror(errno));
                return -1;
            }

            /* RAM and swap together, where swap is accounted; else no
               swapping at all for it */
            if (sb_write(dir, "memory.memsw.limit_in_bytes", "%llu",
                         (unsigned long long) l->memory) != 0)
            {
                (void) sb_write(dir, "memory.swappiness", "0");
            }

        } else if (i == 1 && l->tasks
                   && sb_write(dir, "pids.max", "%u", l->tasks) != 0)
        {
            snprintf(err, errlen, "sandbox %s: cgroup %s: pids.max: %s",
                     sp->project, dir, strerror(errno));
            return -1;

        } else if (i == 2 && l->cpu
                   && sb_write(dir, "cpu.shares", "%u",
                               l->cpu * 1024 / 100 > 2
                               ? l->cpu * 1024 / 100 : 2) != 0)
        {
            snprintf(err, errlen, "sandbox %s: cgroup %s: cpu.shares: %s",
                     sp->project, dir, strerror(errno));
            return -1;
        }

        sb_cat(proj, sizeof(proj), dir, "/cgroup.procs");

        c->procs[i] = open(proj, O_WRONLY | O_CLOEXEC);
        if (c->procs[i] == -1) {
            snprintf(err, errlen, "sandbox %s: %s: %s", sp->project, proj,
                     strerror(errno));
            return -1;
        }

        c->nprocs = i + 1;
    }

    return 0;
}


static int
sb_cgroup_dir(const char *base, const char *project, const char *leaf,
    char *dir, size_t size)
{
    int  n;

    n = leaf ? snprintf(dir, size, "%s/%s/%s", base, project, leaf)
             : snprintf(dir, size, "%s/%s", base, project);

    return n < 0 || (size_t) n >= size ? -1 : 0;
}


long
shuttle_sandbox_oom_kills(shuttle_sandbox_t *sb, const char *project,
    const char *leaf)
{
    FILE        *f;
    long         n, kills;
    char         dir[SB_PATH], line[128];
    const char  *file, *key;

    if (sb == NULL || sb->cgroup == SHUTTLE_CGROUP_NONE
        || sb_cgroup_dir(sb->base[0], project, leaf, dir, sizeof(dir)) != 0)
    {
        return -1;
    }

    file = sb->cgroup == SHUTTLE_CGROUP_V2 ? "/memory.events"
                                           : "/memory.oom_control";
    key = "oom_kill %ld";

    if (sb_cat(dir, sizeof(dir), dir, file) >= sizeof(dir)) {
        return -1;
    }

    f = fopen(dir, "re");
    if (f == NULL) {
        return -1;
    }

    kills = -1;

    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, key, &n) == 1) {
            kills = n;
        }
    }

    fclose(f);

    return kills;
}


void
shuttle_sandbox_release(shuttle_sandbox_t *sb, const char *project,
    const char *leaf)
{
    int   i, n;
    char  dir[SB_PATH];

    if (sb == NULL || sb->cgroup == SHUTTLE_CGROUP_NONE) {
        return;
    }

    n = sb->cgroup == SHUTTLE_CGROUP_V2 ? 1 : SB_CONTROLLERS;

    for (i = 0; i < n; i++) {
        if (sb_cgroup_dir(sb->base[i], project, leaf, dir, sizeof(dir))
            == 0)
        {
            sb_remove_tree(dir);
        }
    }
}


/* kills the processes of cgroup dir and its children, removes them */

static void
sb_remove_tree(const char *dir)
{
    FILE           *f;
    long            pid;
    char            path[SB_PATH];
    DIR            *d;
    struct dirent  *e;

    d = opendir(dir);
    if (d == NULL) {
        return;
    }

    while ((e = readdir(d)) != NULL) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.') {
            if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir,
                                  e->d_name) < sizeof(path))
            {
                sb_remove_tree(path);
            }
        }
    }

    closedir(d);

    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);

    f = fopen(path, "re");
    if (f != NULL) {
        while (fscanf(f, "%ld", &pid) == 1) {
            (void) kill((pid_t) pid, SIGKILL);
        }

        fclose(f);
    }

    /* an rmdir fails while a killed process is still going away */

    for (int tries = 0; tries < 100; tries++) {
        if (rmdir(dir) == 0 || errno != EBUSY) {
            return;
        }

        usleep(1000);
    }
}


static int
sb_write(const char *dir, const char *file, const char *fmt, ...)
{
    int      fd, n, rc;
    char     path[SB_PATH], buf[64];
    va_list  args;

    if (sb_cat(path, sizeof(path), dir, "/") >= sizeof(path)
        || sb_cat(path, sizeof(path), path, file) >= sizeof(path))
    {
        errno = ENAMETOOLONG;
        return -1;
    }

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    rc = write(fd, buf, n) == n ? 0 : -1;

    n = errno;
    close(fd);
    errno = n;

    return rc;
}


/* a + b into buf (a may be buf); the length it needed */

static size_t
sb_cat(char *buf, size_t size, const char *a, const char *b)
{
    size_t  la, lb;

    la = strlen(a);
    lb = strlen(b);

    if (la + lb + 1 > size) {
        return la + lb + 1;
    }

    memmove(buf, a, la);
    memcpy(buf + la, b, lb + 1);

    return la + lb;
}


int
shuttle_sandbox_status(int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) > 128
        && WEXITSTATUS(status) < 128 + 65)
    {
        return WEXITSTATUS(status) - 128;
    }

    return status;
}


const char *
shuttle_sandbox_size(uint64_t n, char *buf, size_t size)
{
    if (n >= (1ULL << 30) && n % (1ULL << 30) == 0) {
        snprintf(buf, size, "%llu GiB", (unsigned long long) (n >> 30));

    } else if (n >= (1ULL << 20) && n % (1ULL << 20) == 0) {
        snprintf(buf, size, "%llu MiB", (unsigned long long) (n >> 20));

    } else if (n >= 1024 && n % 1024 == 0) {
        snprintf(buf, size, "%llu KiB", (unsigned long long) (n >> 10));

    } else {
        snprintf(buf, size, "%llu bytes", (unsigned long long) n);
    }

    return buf;
}


/* the child ------------------------------------------------------------ */


static int
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


static int
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

static char    *sb_warm_args;
static size_t   sb_warm_args_len;

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

static int
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


static int
sb_child_mounts(sb_child_t *c)
{
    if (!c->based && sb_child_mounts_base(c) != 0) {
        return -1;
    }

    return sb_child_mounts_own(c);
}


/* what every sandbox's root has: a warm loader makes it ahead */

static int
sb_child_mounts_base(sb_child_t *c)
{
    int                      i;
    char                     dst[SB_PATH], src[SB_PATH];

    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1) {
        return sb_child_fail(c, "mount --make-rprivate", "/");
    }

    /* a scratch root, the old one kept at /oldroot */

    if (mount("tmpfs", SB_TMPFS_ROOT, "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=1m") == -1)
    {
        return sb_child_fail(c, "mount tmpfs", SB_TMPFS_ROOT);
    }

    if (mkdir(SB_TMPFS_ROOT "/oldroot", 0755) == -1
        || mkdir(SB_TMPFS_ROOT "/newroot", 0755) == -1)
    {
        return sb_child_fail(c, "mkdir", SB_TMPFS_ROOT);
    }

    if (syscall(SYS_pivot_root, SB_TMPFS_ROOT, SB_TMPFS_ROOT "/oldroot")
        == -1)
    {
        return sb_child_fail(c, "pivot_root", SB_TMPFS_ROOT);
    }

    if (chdir("/") == -1) {
        return sb_child_fail(c, "chdir", "/");
    }

    /* the new root, on a tmpfs of its own */

    if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=1m") == -1)
    {
        return sb_child_fail(c, "mount tmpfs", "/");
    }

    if (sb_child_bind(c, "/oldroot/usr", "/newroot/usr", 0) != 0) {
        return -1;
    }

    for (i = 0; i < (int) (sizeof(sb_links) / sizeof(sb_links[0])); i++) {
        if (strncmp(sb_links[i][1], "/newroot/dev/", 13) == 0) {
            continue;
        }

        sb_cat(src, sizeof(src), "/oldroot/", sb_links[i][0]);

        if (access(src, F_OK) == 0
            && symlink(sb_links[i][0], sb_links[i][1]) == -1)
        {
            return sb_child_fail(c, "symlink", sb_links[i][1]);
        }
    }

    /* /etc: a few of the host's files, and who we are */

    if (mkdir("/newroot/etc", 0755) == -1) {
        return sb_child_fail(c, "mkdir", "/etc");
    }

    for (i = 0; sb_etc[i] != NULL; i++) {
        sb_cat(src, sizeof(src), "/oldroot", sb_etc[i]);
        sb_cat(dst, sizeof(dst), "/newroot", sb_etc[i]);

        if (access(src, F_OK) == 0 && sb_child_bind(c, src, dst, 0) != 0) {
            return -1;
        }
    }

    /* /dev, /tmp */

    if (mkdir("/newroot/dev", 0755) == -1
        || mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
                 "mode=0755,size=64k") == -1)
    {
        return sb_child_fail(c, "mount", "/dev");
    }

    for (i = 0; sb_dev[i] != NULL; i++) {
        sb_cat(src, sizeof(src), "/oldroot/dev/", sb_dev[i]);
        sb_cat(dst, sizeof(dst), "/newroot/dev/", sb_dev[i]);

        if (sb_child_bind(c, src, dst, 1) != 0) {
            return -1;
        }
    }

    for (i = 0; i < (int) (sizeof(sb_links) / sizeof(sb_links[0])); i++) {
        if (strncmp(sb_links[i][1], "/newroot/dev/", 13) == 0
            && symlink(sb_links[i][0], sb_links[i][1]) == -1)
        {
            return sb_child_fail(c, "symlink", sb_links[i][1]);
        }
    }

    if (mkdir("/newroot/tmp", 01777) == -1
        || mount("tmpfs", "/newroot/tmp", "tmpfs",
                 MS_NOSUID | MS_NODEV, "mode=1777,size=64m") == -1)
    {
        return sb_child_fail(c, "mount", "/tmp");
    }

    return 0;
}


/* the spawn's own: who it is, its /proc, the caller's binds; into it */

static int
sb_child_mounts_own(sb_child_t *c)
{
    int                      i;
    char                     dst[SB_PATH], src[SB_PATH];
    const shuttle_spawn_t   *sp;

    sp = c->sp;

    if (sb_child_file("/newroot/etc/passwd", c->passwd) != 0) {
        return sb_child_fail(c, "write", "/etc/passwd");
    }

    /* mounted from inside the pid namespace: its own processes */

    if (mkdir("/newroot/proc", 0555) == -1
        || mount("proc", "/newroot/proc", "proc",
                 MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == -1)
    {
        return sb_child_fail(c, "mount", "/proc");
    }

    /* the caller's: the project's own directories, the loader */

    for (i = 0; i < (int) sp->nbinds; i++) {
        if (strncmp(sp->binds[i].path, "/usr/", 5) == 0) {
            continue;                   /* seen through /usr */
        }

        sb_cat(src, sizeof(src), "/oldroot", sp->binds[i].path);
        sb_cat(dst, sizeof(dst), "/newroot", sp->binds[i].path);

        if (sp->binds[i].optional && access(src, F_OK) != 0) {
            continue;
        }

        if (sb_child_bind(c, src, dst, sp->binds[i].rw) != 0) {
            return -1;
        }
    }

    /* into it; the old root detached */

    if (chdir("/newroot") == -1
        || syscall(SYS_pivot_root, ".", ".") == -1)
    {
        return sb_child_fail(c, "pivot_root", "/newroot");
    }

    if (umount2(".", MNT_DETACH) == -1) {
        return sb_child_fail(c, "umount", "the old root");
    }

    if (chdir("/") == -1) {
        return sb_child_fail(c, "chdir", "/");
    }

    /* the root itself read-only: only /tmp and the binds are written */

    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID
                                | MS_NODEV, NULL) == -1)
    {
        return sb_child_fail(c, "remount read-only", "/");
    }

    return 0;
}


/* src on dst (made as a file or a directory as src is), read-only unless
 * rw, never set-uid; the flags the kernel locked kept */

static int
sb_child_bind(sb_child_t *c, const char *src, const char *dst, int rw)
{
    int             fd;
    char            path[SB_PATH];
    unsigned long   flags;
    struct stat     st;
    struct statvfs  vfs;

    if (stat(src, &st) == -1) {
        return sb_child_fail(c, "bind", src + 8);
    }

    sb_cat(path, sizeof(path), dst, "");

    if (S_ISDIR(st.st_mode)) {
        if (sb_child_mkdirs(path) != 0) {
            return sb_child_fail(c, "mkdir", dst + 8);
        }

    } else {
        *strrchr(path, '/') = '\0';

        if (sb_child_mkdirs(path) != 0) {
            return sb_child_fail(c, "mkdir", dst + 8);
        }

        fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd == -1) {
            return sb_child_fail(c, "create", dst + 8);
        }

        close(fd);
    }

    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) == -1) {
        return sb_child_fail(c, "bind", src + 8);
    }

    if (statvfs(dst, &vfs) == -1) {
        return sb_child_fail(c, "statvfs", dst + 8);
    }

    flags = MS_BIND | MS_REMOUNT | MS_NOSUID;
    flags |= rw ? 0 : MS_RDONLY;
    flags |= (vfs.f_flag & ST_NODEV) ? MS_NODEV : 0;
    flags |= (vfs.f_flag & ST_NOEXEC) ? MS_NOEXEC : 0;
    flags |= (vfs.f_flag & ST_NOATIME) ? MS_NOATIME : 0;
    flags |= (vfs.f_flag & ST_NODIRATIME) ? MS_NODIRATIME : 0;
    flags |= (vfs.f_flag & ST_RELATIME) ? MS_RELATIME : 0;
    flags |= (vfs.f_flag & ST_RDONLY) ? MS_RDONLY : 0;

    if (mount(NULL, dst, NULL, flags, NULL) == -1) {
        return sb_child_fail(c, "remount", dst + 8);
    }

    return 0;
}


/* mkdir -p, in place on path */

static int
sb_child_mkdirs(char *path)
{
    char  *p;

    for (p = path + 1; ; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }

        char  ch = *p;

        *p = '\0';

        if (mkdir(path, 0755) == -1 && errno != EEXIST) {
            *p = ch;
            return -1;
        }

        *p = ch;

        if (ch == '\0') {
            return 0;
        }
    }
}


static int
sb_child_file(const char *path, const char *data)
{
    int      fd;
    size_t   len;
    ssize_t  n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        return -1;
    }

    len = strlen(data);
    n = write(fd, data, len);
    close(fd);

    return n == (ssize_t) len ? 0 : -1;
}


/*
 * The warm loader.  Most of a loader's start is the dynamic linker and the
 * constructors of the libraries it links (GnuTLS, through libmicrohttpd):
 * about 6 of a wake's milliseconds.  So the builder keeps one loader
 * started ahead, as root, outside any sandbox, its libraries loaded:
 * "shuttle-loader --warm" waiting on a socket (fd 3).  A spawn of a
 * service's loader sends it the request, the descriptors with it; it
 * clones a child into new namespaces, sharing its memory (the warm
 * process exits at once), which sets the sandbox up as sb_child() does,
 * reports "K" (or "F" with the step that failed), and runs the loader's
 * main instead of exec'ing it.  The warm process sends the child's pid
 * ("P") and exits; the builder, a child subreaper, adopts the child.  The
 * builder starts the next warm loader a moment later.
 *
 * The request, one SOCK_SEQPACKET message: fixed fields, then strings
 * (NUL-terminated), then the BPF program; the descriptors as SCM_RIGHTS:
 * the spawn's present fds, then the cgroup.procs ones.
 */

typedef struct {
    uint32_t                kind;
    uint32_t                cgroup;
    uint32_t                uid;
    uint32_t                gid;
    uint32_t                setsid;
    uint32_t                nbinds;
    uint32_t                nfds;
    uint32_t                fdmask;     /* which of fds[] were sent */
    uint32_t                nprocs;
    uint32_t                nargv;
    uint32_t                nenvp;
    uint32_t                nfilter;    /* BPF instructions */
    shuttle_limits_t        limits;
    uint8_t                 rw[SB_MAX_BINDS];
    uint8_t                 optional[SB_MAX_BINDS];
} sb_warm_head_t;


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


/* 0: spawned; -1: failed (err says why); 1: no warm loader after all */

static int
sb_warm_spawn(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    sb_child_t *c, pid_t *pid, char *err, size_t errlen)
{
    int              fds[SB_MAX_FDS + SB_CONTROLLERS], nsend, i, n, status;
    int              fd;
    char            *buf, reply[512], *p;
    char             cmsg[CMSG_SPACE(sizeof(int)
                                     * (SB_MAX_FDS + SB_CONTROLLERS))];
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

    for (n = 0, off = 0; c->argv[n] != NULL; n++) {
        off += strlen(c->argv[n]) + 1;
    }

    if (off + strlen(sb->warm_path) + 8 > SB_WARM_ARGS) {
        /* its command line would not fit where the warm one is */
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

    fd = sb->warm_fd[sb->nwarm - 1];
    len = sendmsg(fd, &msg, MSG_NOSIGNAL);
    free(buf);

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


static void
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


static void
sb_warm_drop(shuttle_sandbox_t *sb)
{
    if (sb->nwarm == 0) {
        return;
    }

    sb->nwarm--;
    close(sb->warm_fd[sb->nwarm]);

    /* it exits at once on EOF, or has exited */
    while (waitpid(sb->warm_pid[sb->nwarm], NULL, 0) == -1 && errno == EINTR)
    {
        /* void */
    }
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
    int                 fds[SB_MAX_FDS + SB_CONTROLLERS], nfds, i, k;
    int                 host_network;
    char               *buf, pidmsg[32];
    char                cmsg[CMSG_SPACE(sizeof(int)
                                        * (SB_MAX_FDS + SB_CONTROLLERS))];
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

    nfds = 0;

    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            if (nfds > SB_MAX_FDS + SB_CONTROLLERS) {
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

    /*
     * A fork, never a clone(CLONE_VM): this process is root outside the
     * sandbox, the child will run the tenant's code, and nothing the
     * child does (a constructor of the service, run by an init that
     * could not fork its loader) may reach this memory.
     */
    child = fork();

    if (child == 0) {
        _exit(sb_child(&c) == 0 ? 0 : 127);
    }

    if (child == -1) {
        sb_warm_report(fd, 'F', "clone", NULL, errno);
        _exit(1);
    }

    snprintf(pidmsg, sizeof(pidmsg), "P%ld", (long) child);
    (void) !send(fd, pidmsg, strlen(pidmsg) + 1, MSG_NOSIGNAL);

    /* the builder adopts the child: it is a subreaper */
    _exit(0);
}
