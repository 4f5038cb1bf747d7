
/*
 * The sandbox's own header, for its files only (sandbox.h is its
 * contract): the sandbox's record, the child's plan, and the functions
 * its files share.  The sandbox is a library of its own: the builder, the
 * loader (a warm loader sets a sandbox up itself) and the CLI link this
 * folder, and it includes nothing else of the project.
 *
 *   sandbox.c       create, probe, destroy; the cgroup found at start
 *   seccomp.c       the seccomp filters (sb_denied[]: the calls refused)
 *   spawn.c         a spawn: the clone, the cgroup entered, OOM kills,
 *                   release, status
 *   child.c         the child between clone(2) and execve(2): ids,
 *                   namespaces, loopback, descriptors
 *   mounts.c        the child's root: the base, the project's own, binds
 *   warm.c          the warm loader: spawned ahead, handed a project
 */

#ifndef SHUTTLE_BUILDER_SANDBOX_INT_H
#define SHUTTLE_BUILDER_SANDBOX_INT_H

/* after sandbox.h: it uses that header's types (and is not included by it,
   so the part and its own header make no include circle) */

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



#define SB_STACK        (256 * 1024)
#define SB_PATH         4096
#define SB_MAX_BINDS    32
#define SB_MAX_FDS      16
#define SB_WARM_FDS     (SB_MAX_FDS + SB_CONTROLLERS + SB_MAX_BINDS)
#define SB_WARM_FD      (SB_MAX_FDS * 2 + 8 + SB_WARM_FDS)  /* above
                                 sb_child_fds' dups and what it receives */
#define SB_WARM_MAX     (64 * 1024)             /* a spawn request */
#define SB_WARM_POOL    10          /* warm loaders kept: a burst of wakes
                                       takes them as they come, the oldest
                                       (ready) first, while the pool refills
                                       in the background */
#define SB_WARM_ARGS    4096        /* the longest command line it takes */
#define SB_CONTROLLERS  3             /* memory, pids, cpu */
#define SB_TMPFS_ROOT   "/tmp"        /* where the scratch root goes */


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
    int                      pivoted;   /* and in its new root already:
                                           the binds come as bindfd[] */
    int                      bindfd[SB_MAX_BINDS];  /* -1: none */
    shuttle_sandbox_run_pt   run;
} sb_child_t;


/*
 * The warm loaders.  Most of a loader's start is the dynamic linker and
 * the constructors of the libraries it links (GnuTLS, through
 * libmicrohttpd): about 6 of a wake's milliseconds.  So the builder keeps
 * a pool of loaders started ahead (SB_WARM_POOL), as root, outside any
 * sandbox, their libraries loaded: "shuttle-loader --warm" with a socket
 * at fd 3.  Each, ahead of any request: unshares its namespaces, makes
 * the root every sandbox has, pivots into it and detaches the host's (the
 * detach waits for an RCU grace period), then forks its child, pid 1 of
 * the new pid namespace, which waits for the request on the socket; the
 * warm process says the child's pid ("P") and waits until it is used.  A
 * spawn of a service's loader sends the request, the descriptors with it
 * and the binds as trees the builder cloned (open_tree(2)); the child
 * joins the cgroup (v1: through "tasks", no grace period), moves the
 * trees in, sets its ids and filter as sb_child() does, reports "K" (or
 * "F" with the step that failed), and runs the loader's main instead of
 * exec'ing it.  The warm process exits; the builder, a child subreaper,
 * adopts the child, and refills the pool in the background.
 *
 * The request, one SOCK_SEQPACKET message: fixed fields, then strings
 * (NUL-terminated), then the BPF program; the descriptors as SCM_RIGHTS:
 * the spawn's present fds, then the cgroup ones ("tasks" or cgroup.procs),
 * then the binds' trees (present[]).
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
    uint8_t                 present[SB_MAX_BINDS];  /* its tree was sent */
} sb_warm_head_t;

/* shared between the files of this part */

int sb_filter(shuttle_sandbox_t *sb, shuttle_sandbox_kind_e kind,
    char *err, size_t errlen);
int sb_write(const char *dir, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t sb_cat(char *buf, size_t size, const char *a, const char *b);
int sb_child_fail(sb_child_t *c, const char *step,
    const char *object);
int sb_child(void *arg);
extern char    *sb_warm_args;
extern size_t   sb_warm_args_len;
int sb_loopback_up(void);
int sb_child_mounts(sb_child_t *c);
int sb_child_mounts_base(sb_child_t *c);
int sb_child_mounts_pivot(sb_child_t *c);
int sb_child_file(const char *path, const char *data);
int sb_warm_spawn(shuttle_sandbox_t *sb, const shuttle_spawn_t *sp,
    sb_child_t *c, pid_t *pid, char *err, size_t errlen);
void sb_warm_report(int fd, int what, const char *step,
    const char *object, int error);
void sb_warm_drop(shuttle_sandbox_t *sb);


#endif /* SHUTTLE_BUILDER_SANDBOX_INT_H */
