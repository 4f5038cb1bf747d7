
/*
 * The tenants' sandbox: spawn this command for this project, with these
 * mounts and limits.  Builds (build.c), loaders (supervise.c) and
 * `shuttle run` (cli/run.c) start tenant code through this one call.
 *
 * A sandboxed process is started by clone(2) into new mount, pid, IPC,
 * UTS and network namespaces: a build's network namespace has nothing
 * but a loopback that is down, a service's a loopback that is up (unless
 * the spawn asks for the host's network).  A service so reaches nothing
 * on the host: no port, no abstract unix socket, no /proc/net of the
 * host's; what it serves comes through the listening socket the caller
 * bound on the host and passes in.  Before it execs the command, the
 * child, still root in those namespaces:
 *
 *   - joins the project's cgroup (v2, or the v1 memory, pids and cpu
 *     hierarchies), whose limits the parent wrote before the clone;
 *   - builds a new root on a tmpfs: /usr read-only with the /bin, /lib,
 *     /lib64 and /sbin links of a merged-/usr system, a few files of /etc
 *     (the dynamic linker's cache, name resolution, TLS roots, the
 *     alternatives cc goes through) read-only, a private /tmp (tmpfs), a
 *     /dev of null, zero, full, random, urandom and tty, a /proc of its
 *     own pid namespace, and the caller's binds at their own paths; then
 *     pivot_root(2)s into it and drops the old root;
 *   - sets its rlimits (open files, file size, and tasks where no cgroup
 *     counts them), its gid, no supplementary groups, its uid, empties
 *     every capability set including the bounding set, sets
 *     no_new_privs and loads the seccomp filter of its kind.
 *
 * The command is pid 1 of its namespace: when it exits, the kernel kills
 * whatever it left behind (setsid, double fork and daemons included).
 *
 * The seccomp filters are built once with libseccomp and exported as BPF,
 * so the child, a vfork-like clone of a threaded parent, only makes
 * system calls.  A service's filter makes the calls it refuses raise
 * SIGSYS, which the loader turns into an EPERM and a line in the runtime
 * log naming the call; a build's filter answers EPERM.
 *
 * Where the builder is not root (or the kernel refuses namespaces), a
 * sandbox can still be had in an unprivileged user namespace mapping the
 * caller to itself (shuttle run does that): the same mounts, filters and
 * rlimits, no cgroup, no uid of the project's.
 */


#ifndef SHUTTLE_BUILDER_SANDBOX_H
#define SHUTTLE_BUILDER_SANDBOX_H


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>


#define SHUTTLE_LIMIT_MEMORY     (256ULL << 20)
#define SHUTTLE_LIMIT_TASKS      64
#define SHUTTLE_LIMIT_CPU        100          /* weight, 1-10000 */
#define SHUTTLE_LIMIT_NOFILE     1024
#define SHUTTLE_LIMIT_FILE_SIZE  (1ULL << 30)   /* --disk's: a database
                                                 may fill it */
#define SHUTTLE_LIMIT_DISK       (1ULL << 30)
#define SHUTTLE_SANDBOX_TMP      (64ULL << 20) /* bytes of a private /tmp */


typedef struct shuttle_sandbox_s  shuttle_sandbox_t;


/* a project's limits; 0 leaves one unlimited */
typedef struct {
    uint64_t                memory;     /* bytes of RAM (and swap) */
    unsigned                tasks;      /* processes and threads */
    unsigned                cpu;        /* CPU weight: 100 an equal share */
    unsigned                nofile;     /* open files of one process */
    uint64_t                file_size;  /* bytes of one written file */
    uint64_t                disk;       /* bytes of the project's data */
} shuttle_limits_t;


typedef enum {
    SHUTTLE_SANDBOX_BUILD = 0,  /* no network; the build filter */
    SHUTTLE_SANDBOX_SERVICE     /* a network namespace of its own (only
                                   a loopback) unless host_network;
                                   bind/listen refused */
} shuttle_sandbox_kind_e;


typedef enum {
    SHUTTLE_CGROUP_NONE = 0,
    SHUTTLE_CGROUP_V1,
    SHUTTLE_CGROUP_V2
} shuttle_cgroup_e;


typedef struct {
    const char             *path;       /* absolute, the same inside */
    unsigned                rw:1;       /* else read-only */
    unsigned                optional:1; /* a missing source is skipped */
} shuttle_bind_t;


typedef struct {
    shuttle_sandbox_kind_e  kind;
    const char             *project;    /* names the cgroup */
    const char             *cgroup;     /* its leaf: "service", "build" */
    uid_t                   uid;        /* the project's (root sandbox) */
    gid_t                   gid;
    const shuttle_limits_t *limits;
    const shuttle_bind_t   *binds;
    size_t                  nbinds;
    const char             *cwd;        /* inside; NULL: / */
    const int              *fds;        /* fds[i] becomes descriptor i */
    size_t                  nfds;
    unsigned                setsid:1;   /* a session of its own */
    unsigned                die_with_parent:1;  /* SIGKILL when the
                                                   spawning thread ends */
    unsigned                host_network:1;     /* a service: the host's
                                                   network, the operator's
                                                   opt-in for outbound
                                                   connections */
} shuttle_spawn_t;


/*
 * What this machine offers, found once: namespaces (as root, or in a
 * user namespace), the cgroup version and its controllers, seccomp.
 * The projects' cgroups go under instance, a directory made in the
 * caller's own cgroup.  flags: SHUTTLE_SANDBOX_USERNS to take the
 * unprivileged way even as root.  NULL with err when no sandbox can be
 * had.
 */
#define SHUTTLE_SANDBOX_USERNS   0x01

shuttle_sandbox_t *shuttle_sandbox_create(const char *instance,
    unsigned flags, char *err, size_t errlen);
void shuttle_sandbox_destroy(shuttle_sandbox_t *sb);

/* e.g. "namespaces, cgroup v1 (memory, pids, cpu), seccomp" */
const char *shuttle_sandbox_describe(shuttle_sandbox_t *sb);
shuttle_cgroup_e shuttle_sandbox_cgroup(shuttle_sandbox_t *sb);
/* 1 when processes run as the project's uid (a root builder) */
int shuttle_sandbox_uids(shuttle_sandbox_t *sb);

/*
 * Spawns path (an absolute path inside the sandbox) with argv and envp.
 * 0 and *pid, or -1 with err naming what failed in the child or the
 * parent ("sandbox hello: mount /usr: Permission denied").
 */
int shuttle_sandbox_spawn(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    const char *path, char *const argv[], char *const envp[], pid_t *pid,
    char *err, size_t errlen);

/*
 * The warm loaders (sandbox.c): path started ahead, as "path --warm" with
 * a socket at fd 3, its libraries loaded, its namespaces made (a network
 * one too, unless host_network); a service spawn of path with the same
 * host_network is done by one, without an exec or a fork, and uses it
 * up.  shuttle_sandbox_warm() starts one if the pool (10) is not full;
 * warm_ready says whether it is.  A builder that calls
 * this must be a child subreaper (prctl PR_SET_CHILD_SUBREAPER): it adopts
 * the loaders so spawned.  Not in a user namespace sandbox (then 0, and
 * nothing started).  warm_ready: whether one waits.
 */
typedef int (*shuttle_sandbox_run_pt)(int argc, char **argv);

int shuttle_sandbox_warm(shuttle_sandbox_t *sb, const char *path,
    int host_network, char *err, size_t errlen);
int shuttle_sandbox_warm_ready(shuttle_sandbox_t *sb);

/* the loader's side: serves one spawn on fd with run() as its main;
 * never returns */
void shuttle_sandbox_warm_serve(int fd, shuttle_sandbox_run_pt run,
    int argc, char **argv);

/*
 * How many processes of project's cgroup leaf the kernel killed for
 * memory so far (-1: not known).  A caller compares it before and after.
 */
long shuttle_sandbox_oom_kills(shuttle_sandbox_t *sb, const char *project,
    const char *leaf);

/* kills what is left in the project's cgroup leaf (all leaves when NULL)
 * and removes it */
void shuttle_sandbox_release(shuttle_sandbox_t *sb, const char *project,
    const char *leaf);

/*
 * The wait status of a loader spawned here as it would be unsandboxed:
 * its pid namespace's init exits 128 + N when the loader was killed by
 * signal N (loader/main.c).
 */
int shuttle_sandbox_status(int status);

/* "256m" style size for messages */
const char *shuttle_sandbox_size(uint64_t n, char *buf, size_t size);

/* shuttle-builder sandbox: a command in a sandbox (sandbox_main.c) */
int shuttle_sandbox_main(int argc, char **argv);


#endif /* SHUTTLE_BUILDER_SANDBOX_H */
