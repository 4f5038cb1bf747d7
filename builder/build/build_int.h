
/*
 * The build's own header, for its files only (build.h is its contract):
 * a build's record, its argument vectors, and the functions its files
 * share.  Linked by the builder and by the CLI (shuttle run builds with
 * the builder's rules): it includes nothing of the builder but the
 * sandbox.
 *
 *   build.c           shuttle_build(): the defaults, the sources, pkg-config,
 *                     make, the result moved into place
 *   build_exec.c      running a step: checked, spawned in the sandbox,
 *                     waited for, logged; argument vectors
 *   build_manifest.c  shuttle.json read and checked
 */

#ifndef SHUTTLE_BUILDER_BUILD_INT_H
#define SHUTTLE_BUILDER_BUILD_INT_H

/* after build.h: it uses that header's types (and is not included by it,
   so the part and its own header make no include circle) */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shuttle_zone.h>



#define BUILD_PATH         "/usr/local/bin:/usr/bin:/bin"
#define BUILD_TICK_MS      50        /* how often *cancel is looked at */
#define BUILD_NOPIDFD_MS   10        /* the same for a child, without pidfd */
#define BUILD_CAPTURE_MAX  65536     /* bytes of pkg-config's output */
#define BUILD_QUOTED       64        /* bytes of an untrusted name in err */
#define BUILD_FULL         (1024 * 1024)  /* bytes free: a full filesystem */

/* every descriptor but 0, 1 and 2 closed in the child, glibc 2.34 */
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 34)
#define BUILD_CLOSEFROM    1
#endif
#endif
#ifndef BUILD_CLOSEFROM
#define BUILD_CLOSEFROM    0
#endif

#define BUILD_MAKEFILE     "Makefile"
#define BUILD_SERVICE      "service.so"
#define BUILD_MANIFEST     "shuttle.json"

#define BUILD_NAME_RULE    "1..63 of a-z, 0-9, '-', no '-' at either end"
#define BUILD_LIB_CHARS    "[A-Za-z0-9._+-]+"


typedef struct {
    char    **v;        /* n strings, then NULL */
    size_t    n;
    size_t    size;
    int       nomem;    /* an addition failed: the list is incomplete */
} build_args_t;


typedef struct {
    char      *data;
    size_t     len;
    size_t     size;
    int        overflow;
} build_buf_t;


typedef struct {
    const shuttle_build_opts_t  *o;
    char                        *src_dir;       /* absolute, resolved */
    char                        *out;           /* absolute */
    char                        *include_dir;   /* absolute */
    char                        *home;          /* "HOME=..." */
    char                        *shuttle_include;
    char                        *env[6];
    int                          log_fd;        /* ours, >= 3, cloexec */
    unsigned                     timeout_ms;
    int64_t                      deadline;      /* build_now() */
    char                         sandbox_err[256];
    char                        *err;
    size_t                       errlen;
} build_ctx_t;


typedef enum {
    BUILD_RUNNING = 0,
    BUILD_TIMEDOUT,
    BUILD_CANCELLED,
    BUILD_BROKEN
} build_stop_e;

/* shared between the files of this part */

int build_check(build_ctx_t *ctx);
int build_run(build_ctx_t *ctx, build_args_t *args,
    build_buf_t *capture, int *status);
void build_failed(build_ctx_t *ctx, const char *what,
    const char *name, int status);
int64_t build_now(void);
void build_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void build_args_add(build_args_t *a, const char *s);
void build_args_addf(build_args_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void build_args_push(build_args_t *a, char *s);
int build_args_cmp(const void *one, const void *two);
void build_args_free(build_args_t *a);
const char *build_quote(const char *s, size_t len, char *buf,
    size_t size);


#endif /* SHUTTLE_BUILDER_BUILD_INT_H */
