
/*
 * The sandbox: a spawn (the clone, the cgroup it enters), its OOM kills,
 * its release and status, and the cgroup files (sandbox_int.h).
 */

#include "sandbox.h"
#include "sandbox_int.h"


static int sb_cgroup_enter(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    sb_child_t *c, char *err, size_t errlen);
static int sb_cgroup_dir(const char *base, const char *project,
    const char *leaf, char *dir, size_t size);
static void sb_remove_tree(const char *dir);


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
 * our hierarchies; the child joins it by writing "0" to the file the
 * parent opened ("tasks" in v1, cgroup.procs in v2).
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

        /*
         * v1: its "tasks", not "cgroup.procs": the child is one thread,
         * and moving one thread (itself) takes no write lock of the
         * kernel's cgroup_threadgroup_rwsem, whose taking waits for an
         * RCU grace period (10 ms and more on a busy machine: most of a
         * wake).  v2 has no such file for a domain cgroup.
         */
        sb_cat(proj, sizeof(proj), dir,
               sb->cgroup == SHUTTLE_CGROUP_V1 ? "/tasks" : "/cgroup.procs");

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


int
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

size_t
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
