
/*
 * Building a deployment's project into service.so.
 *
 * shuttle_build() compiles an extracted project with one of two rules:
 *
 *   - the project's own Makefile, when it has one at its top:
 *
 *         make -C SRC_DIR service.so
 *
 *     with SHUTTLE_INCLUDE=INCLUDE_DIR and CC=cc in its environment
 *     (CFLAGS is left to the Makefile); SRC_DIR/service.so is then moved
 *     to out;
 *
 *   - otherwise the default rule, one compiler run over the project's
 *     src/NAME.c files, sorted:
 *
 *         cc -std=gnu11 -O2 -g -fPIC -shared -Wall -IINCLUDE_DIR
 *             [-ISRC_DIR/include] src/a.c src/b.c ... -o OUT
 *             [pkg-config --cflags --libs -- LIBS]
 *
 *     where LIBS are the pkg-config packages listed in shuttle.json;
 *     cc applies their -I and -D flags wherever they stand, and their -l
 *     flags must follow the sources.
 *
 * shuttle.json is read, and must be valid, for either rule.
 *
 * With o->sandbox, every program runs in the project's sandbox
 * (sandbox.h: its uid, no network, its limits, only its source, the SDK
 * and /usr to see) as pid 1 of a pid namespace, so that whatever it
 * leaves behind dies with it; o->spawn->binds must hold src_dir (rw)
 * and include_dir.
 *
 * Every program runs as a child (no shell) in its own process group, in
 * SRC_DIR, with stdin from /dev/null, stdout and stderr on log_fd, and a
 * minimal environment of its own: PATH=/usr/local/bin:/usr/bin:/bin,
 * LANG=C.UTF-8, HOME=SRC_DIR, SHUTTLE_INCLUDE=INCLUDE_DIR and CC=cc,
 * nothing of the caller's.
 * Each command line is written to log_fd before it runs, so the log reads
 * like make's output.  When the build ends, early or not, whatever is
 * left of each process group is killed.
 *
 * shuttle_build() is thread-safe: builds of different projects may run
 * at once in different threads.  It changes no process-wide state (no
 * chdir, no signal handlers) and waits for its own children only; the
 * process must not reap them for it (waitpid(-1, ...), SIGCHLD ignored).
 */


#ifndef SHUTTLE_BUILDER_BUILD_H
#define SHUTTLE_BUILDER_BUILD_H


#include <stddef.h>

#include "sandbox.h"


#define SHUTTLE_BUILD_TIMEOUT_MS     120000

/* after SIGTERM, how long a build has to exit before SIGKILL */
#define SHUTTLE_BUILD_KILL_GRACE_MS  1000

#define SHUTTLE_MANIFEST_MAX_SIZE    65536
#define SHUTTLE_MANIFEST_MAX_LIBS    64
#define SHUTTLE_MANIFEST_MAX_LIB     128   /* bytes of one package name */


typedef struct {
    const char    *src_dir;      /* the extracted project (read/write) */
    const char    *out;          /* path of the service.so to produce */
    const char    *include_dir;  /* the directory holding shuttle.h */
    int            log_fd;       /* build.log: every line of output */
    unsigned       timeout_ms;   /* wall clock, 0: SHUTTLE_BUILD_TIMEOUT_MS */
    volatile int  *cancel;       /* NULL, or set non-zero (by another
                                    thread) to stop the build */
    shuttle_sandbox_t        *sandbox;  /* NULL: programs run as we do */
    const shuttle_spawn_t    *spawn;    /* with sandbox: the project, its
                                           uid, limits and binds (fds and
                                           cwd are the build's) */
} shuttle_build_opts_t;


/*
 * shuttle.json, the project's optional manifest:
 *
 *     {"name": "hello", "libs": ["sqlite3"]}
 *
 * name is a DNS label (1..63 of a-z, 0-9, '-', no '-' at either end);
 * libs are pkg-config package names, [A-Za-z0-9._+-]+, linked by the
 * default rule (a Makefile links what it wants).  Both are optional;
 * other keys are ignored.
 */
typedef struct {
    char     *name;    /* NULL when absent */
    char    **libs;    /* nlibs names, NULL when there are none */
    size_t    nlibs;
} shuttle_manifest_t;


/*
 * Builds o->src_dir into o->out, replacing any file at o->out.  Returns 0
 * when out exists as a regular file; else -1, out removed, and a one-line
 * reason in err, e.g.
 *
 *     build failed: cc exited with status 1 (see build log)
 *     build timed out after 120 s
 *     build cancelled
 *     shuttle.json: libs[1]: unknown library "nosuch" (pkg-config)
 *     Makefile did not produce service.so
 *
 * or that there is nothing to build: no Makefile and no .c file in src/.
 * A relative path in o is taken from the current directory.  log_fd is
 * the caller's; it is written to, never closed; -1 discards the output.
 * The build stops, as on a timeout, soon after *o->cancel becomes
 * non-zero.
 */
int shuttle_build(const shuttle_build_opts_t *o, char *err, size_t errlen);

/*
 * Reads src_dir/shuttle.json into m.  A missing file is an empty manifest.
 * Returns 0, or -1 with m empty and err naming shuttle.json and the
 * cause, e.g.  shuttle.json: invalid JSON at line 3: ...  Release m with
 * shuttle_manifest_free() after a success.
 */
int shuttle_manifest_read(const char *src_dir, shuttle_manifest_t *m,
    char *err, size_t errlen);

void shuttle_manifest_free(shuttle_manifest_t *m);


#endif /* SHUTTLE_BUILDER_BUILD_H */
