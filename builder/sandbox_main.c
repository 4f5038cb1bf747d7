
/*
 * shuttle-builder sandbox: one command run in a project's sandbox, as the
 * builder would run it, for an operator who wants to see what a tenant
 * sees, and for make bench (a loader under the service filter).
 *
 *   shuttle-builder sandbox [--build] [--uid N] [--bind DIR]...
 *       [--bind-rw DIR]... [--cwd DIR] [--fds N] -- PROGRAM [ARG]...
 *
 * Signals TERM, INT and HUP are passed on; the exit status is the
 * program's (killed by signal N: 128 + N).
 */


#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"


#define SANDBOX_MAX_BINDS  16
#define SANDBOX_MAX_FDS    16


static void
sandbox_usage(FILE *f)
{
    fputs(
"usage: shuttle-builder sandbox [OPTIONS] -- PROGRAM [ARG]...\n"
"\n"
"Runs PROGRAM in a project's sandbox as the builder runs a loader (or,\n"
"with --build, a build): its own namespaces, root, uid, limits and\n"
"seccomp filter.  Root only.\n"
"\n"
"options:\n"
"  --build          the build's sandbox: no network, the build's filter\n"
"  --uid N          the uid and gid to run as (65534)\n"
"  --bind DIR       DIR visible, read-only (as many as needed)\n"
"  --bind-rw DIR    DIR visible, writable\n"
"  --cwd DIR        the working directory (/)\n"
"  --fds N          descriptors 3 to N-1 passed on (3: none)\n", f);
}


int
shuttle_sandbox_main(int argc, char **argv)
{
    int                 i, fds[SANDBOX_MAX_FDS], nfds, status, sfd;
    char                err[1024], *end;
    pid_t               pid;
    sigset_t            mask;
    shuttle_bind_t      binds[SANDBOX_MAX_BINDS];
    shuttle_spawn_t     sp;
    shuttle_limits_t    limits;
    shuttle_sandbox_t  *sb;
    struct signalfd_siginfo  si;

    char  *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                      NULL };

    memset(&sp, 0, sizeof(sp));
    memset(&limits, 0, sizeof(limits));
    sp.kind = SHUTTLE_SANDBOX_SERVICE;
    sp.project = "sandbox";
    sp.cgroup = "command";
    sp.uid = 65534;
    sp.gid = 65534;
    sp.binds = binds;
    nfds = 3;

    limits.memory = SHUTTLE_LIMIT_MEMORY;
    limits.tasks = SHUTTLE_LIMIT_TASKS;
    limits.cpu = SHUTTLE_LIMIT_CPU;
    limits.nofile = SHUTTLE_LIMIT_NOFILE;
    limits.file_size = SHUTTLE_LIMIT_FILE_SIZE;
    sp.limits = &limits;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            sandbox_usage(stdout);
            return 0;
        }

        if (strcmp(argv[i], "--build") == 0) {
            sp.kind = SHUTTLE_SANDBOX_BUILD;
            continue;
        }

        if (i + 1 == argc) {
            fprintf(stderr, "shuttle-builder sandbox: %s needs a value\n",
                    argv[i]);
            return 2;
        }

        if ((strcmp(argv[i], "--bind") == 0
             || strcmp(argv[i], "--bind-rw") == 0)
            && sp.nbinds < SANDBOX_MAX_BINDS)
        {
            binds[sp.nbinds].path = argv[i + 1];
            binds[sp.nbinds].rw = argv[i][6] == '-';
            binds[sp.nbinds].optional = 0;
            sp.nbinds++;

        } else if (strcmp(argv[i], "--cwd") == 0) {
            sp.cwd = argv[i + 1];

        } else if (strcmp(argv[i], "--uid") == 0) {
            sp.uid = (uid_t) strtoul(argv[i + 1], &end, 10);
            sp.gid = (gid_t) sp.uid;

            if (*end != '\0' || sp.uid == 0) {
                fprintf(stderr, "shuttle-builder sandbox: --uid \"%s\": "
                        "a number, not 0\n", argv[i + 1]);
                return 2;
            }

        } else if (strcmp(argv[i], "--fds") == 0) {
            nfds = atoi(argv[i + 1]);

            if (nfds < 3 || nfds > SANDBOX_MAX_FDS) {
                fprintf(stderr, "shuttle-builder sandbox: --fds \"%s\": "
                        "3 to %d\n", argv[i + 1], SANDBOX_MAX_FDS);
                return 2;
            }

        } else {
            fprintf(stderr, "shuttle-builder sandbox: unknown option "
                    "\"%s\"\n", argv[i]);
            sandbox_usage(stderr);
            return 2;
        }

        i++;
    }

    if (i >= argc || argv[i][0] != '/') {
        fprintf(stderr, "shuttle-builder sandbox: give -- and a program's "
                "absolute path\n");
        return 2;
    }

    for (int fd = 0; fd < nfds; fd++) {
        fds[fd] = fd;
    }

    sp.fds = fds;
    sp.nfds = nfds;
    sp.die_with_parent = 1;

    sb = shuttle_sandbox_create("shuttle-sandbox", 0, err, sizeof(err));
    if (sb == NULL) {
        fprintf(stderr, "shuttle-builder sandbox: %s\n", err);
        return 1;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    if (sfd == -1
        || shuttle_sandbox_spawn(sb, &sp, argv[i], argv + i, envp, &pid, err,
                                 sizeof(err))
           != 0)
    {
        fprintf(stderr, "shuttle-builder sandbox: %s\n",
                sfd == -1 ? strerror(errno) : err);
        shuttle_sandbox_destroy(sb);
        return 1;
    }

    for ( ;; ) {
        if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
            continue;
        }

        if (si.ssi_signo != SIGCHLD) {
            (void) kill(pid, (int) si.ssi_signo);
            continue;
        }

        if (waitpid(pid, &status, WNOHANG) == pid) {
            break;
        }
    }

    shuttle_sandbox_release(sb, sp.project, NULL);
    shuttle_sandbox_destroy(sb);

    status = shuttle_sandbox_status(status);

    return WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                               : WEXITSTATUS(status);
}
