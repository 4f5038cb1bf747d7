
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


#include "sandbox.h"
#include "sandbox_int.h"


static int sb_probe(shuttle_sandbox_t *sb, char *err, size_t errlen);
static int sb_detect_cgroup(shuttle_sandbox_t *sb, const char *instance,
    char *err, size_t errlen);
static char *sb_own_cgroup(const char *controller, int v2);
static char *sb_mount_of(const char *controller, int v2);


static const char *const  sb_controllers[SB_CONTROLLERS] = {
    "memory", "pids", "cpu"
};


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
