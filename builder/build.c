
/*
 * Building a deployment's project into service.so.
 *
 * A build is a short sequence of children: pkg-config when shuttle.json
 * lists libraries, then cc, or make alone for a project with a Makefile.
 * Each is started by posix_spawn() from a full path found in our own
 * PATH, never through a shell, with the file actions doing what a child
 * would do between fork and exec: its own process group, the log on
 * stdout and stderr, /dev/null on stdin, the project as its directory,
 * every other descriptor closed, default signal dispositions and an
 * empty signal mask whatever the calling thread had.
 *
 * The parent waits for that one pid, through a pidfd where the kernel
 * has them, polling *cancel every BUILD_TICK_MS.  A child's exit is seen
 * before it is reaped, so that its pid, and thus its process group, is
 * still ours when the group is killed: after every exit, to take down
 * what a Makefile left in the background, and after the SIGTERM grace
 * of a timeout or a cancel.
 */


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

#include "build.h"


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


static void build_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void build_log(build_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int build_init(build_ctx_t *ctx, const shuttle_build_opts_t *o);
static void build_done(build_ctx_t *ctx);
static char *build_absolute(const char *path);
static int build_default(build_ctx_t *ctx, shuttle_manifest_t *m);
static int build_sources(build_ctx_t *ctx, build_args_t *srcs);
static int build_pkg_config(build_ctx_t *ctx, shuttle_manifest_t *m,
    build_args_t *flags);
static int build_make(build_ctx_t *ctx);
static int build_move(build_ctx_t *ctx, const char *from);
static int build_copy(build_ctx_t *ctx, const char *from);
static int build_check(build_ctx_t *ctx);
static int build_run(build_ctx_t *ctx, build_args_t *args,
    build_buf_t *capture, int *status);
static int build_spawn(build_ctx_t *ctx, const char *path, char **argv,
    int out_fd, pid_t *pid);
static int build_wait(build_ctx_t *ctx, const char *name, pid_t pid,
    int cap_fd, build_buf_t *capture, int *status);
static build_stop_e build_stopped(build_ctx_t *ctx);
static void build_failed(build_ctx_t *ctx, const char *what,
    const char *name, int status);
static void build_full(build_ctx_t *ctx);
static int build_which(const char *name, char *path, size_t size);
static void build_log_command(build_ctx_t *ctx, build_args_t *args);
static void build_write(int fd, const char *data, size_t len);
static int64_t build_now(void);
static const char *build_duration(unsigned ms, char *buf, size_t size);
static void build_args_add(build_args_t *a, const char *s);
static void build_args_addf(build_args_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void build_args_push(build_args_t *a, char *s);
static int build_args_cmp(const void *one, const void *two);
static void build_args_free(build_args_t *a);
static int build_buf_add(build_buf_t *b, const char *data, size_t len,
    size_t max);
static int build_manifest_parse(json_t *root, shuttle_manifest_t *m,
    char *err, size_t errlen);
static int build_valid_lib(const char *s, size_t len);
static const char *build_json_type(json_t *v);
static const char *build_quote(const char *s, size_t len, char *buf,
    size_t size);


int
shuttle_build(const shuttle_build_opts_t *o, char *err, size_t errlen)
{
    int                 rc;
    char               *makefile;
    build_ctx_t         ctx;
    struct stat         st;
    shuttle_manifest_t  m;

    memset(&ctx, 0, sizeof(ctx));
    memset(&m, 0, sizeof(m));
    ctx.log_fd = -1;
    ctx.err = err;
    ctx.errlen = errlen;

    if (build_init(&ctx, o) != 0) {
        build_done(&ctx);
        return -1;
    }

    rc = -1;
    makefile = NULL;

    if (unlink(ctx.out) == -1 && errno != ENOENT) {
        build_error(err, errlen, "%s: %s", ctx.out, strerror(errno));
        goto done;
    }

    if (shuttle_manifest_read(ctx.src_dir, &m, err, errlen) != 0) {
        goto done;
    }

    if (asprintf(&makefile, "%s/" BUILD_MAKEFILE, ctx.src_dir) == -1) {
        makefile = NULL;
        build_error(err, errlen, "build: %s", strerror(ENOMEM));
        goto done;
    }

    if (lstat(makefile, &st) == 0) {

        if (!S_ISREG(st.st_mode)) {
            build_error(err, errlen, BUILD_MAKEFILE " is not a regular file");
            goto done;
        }

        rc = build_make(&ctx);

    } else if (errno == ENOENT) {
        rc = build_default(&ctx, &m);

    } else {
        build_error(err, errlen, BUILD_MAKEFILE ": %s", strerror(errno));
        goto done;
    }

    if (rc == 0) {
        rc = build_check(&ctx);
    }

done:

    if (rc != 0) {
        (void) unlink(ctx.out);
    }

    free(makefile);
    shuttle_manifest_free(&m);
    build_done(&ctx);

    return rc;
}


static int
build_init(build_ctx_t *ctx, const shuttle_build_opts_t *o)
{
    int          fd;
    struct stat  st;

    if (o == NULL || o->src_dir == NULL || o->out == NULL
        || o->include_dir == NULL)
    {
        build_error(ctx->err, ctx->errlen,
                    "build: src_dir, out and include_dir are required");
        return -1;
    }

    ctx->o = o;
    ctx->timeout_ms = o->timeout_ms ? o->timeout_ms
                                    : SHUTTLE_BUILD_TIMEOUT_MS;
    ctx->deadline = build_now() + ctx->timeout_ms;

    ctx->src_dir = realpath(o->src_dir, NULL);

    if (ctx->src_dir == NULL) {
        build_error(ctx->err, ctx->errlen, "project directory %s: %s",
                    o->src_dir, strerror(errno));
        return -1;
    }

    if (stat(ctx->src_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
        build_error(ctx->err, ctx->errlen,
                    "project directory %s: not a directory", o->src_dir);
        return -1;
    }

    /* the children run in src_dir: relative paths are made absolute */
    ctx->out = build_absolute(o->out);
    ctx->include_dir = build_absolute(o->include_dir);

    if (ctx->out == NULL || ctx->include_dir == NULL) {
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(errno));
        return -1;
    }

    if (asprintf(&ctx->home, "HOME=%s", ctx->src_dir) == -1) {
        ctx->home = NULL;
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        return -1;
    }

    if (asprintf(&ctx->shuttle_include, "SHUTTLE_INCLUDE=%s",
                 ctx->include_dir) == -1)
    {
        ctx->shuttle_include = NULL;
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        return -1;
    }

    ctx->env[0] = (char *) "PATH=" BUILD_PATH;
    ctx->env[1] = (char *) "LANG=C.UTF-8";
    ctx->env[2] = ctx->home;
    ctx->env[3] = ctx->shuttle_include;
    ctx->env[4] = (char *) "CC=cc";
    ctx->env[5] = NULL;

    /*
     * A descriptor of our own, above the standard ones, so that the file
     * actions that make a child's 0, 1 and 2 never overwrite their source.
     */

    if (o->log_fd >= 0) {
        ctx->log_fd = fcntl(o->log_fd, F_DUPFD_CLOEXEC, 3);

    } else {
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

        if (fd != -1) {
            ctx->log_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
            close(fd);
        }
    }

    if (ctx->log_fd == -1) {
        build_error(ctx->err, ctx->errlen, "build log (descriptor %d): %s",
                    o->log_fd, strerror(errno));
        return -1;
    }

    return 0;
}


static void
build_done(build_ctx_t *ctx)
{
    if (ctx->log_fd != -1) {
        close(ctx->log_fd);
    }

    free(ctx->src_dir);
    free(ctx->out);
    free(ctx->include_dir);
    free(ctx->home);
    free(ctx->shuttle_include);
}


static char *
build_absolute(const char *path)
{
    char  *abs, cwd[PATH_MAX];

    if (path[0] == '/') {
        return strdup(path);
    }

    if (getcwd(cwd, sizeof(cwd)) == NULL
        || asprintf(&abs, "%s/%s", cwd, path) == -1)
    {
        return NULL;
    }

    return abs;
}


/* cc -std=gnu11 ... src/a.c src/b.c -o OUT [pkg-config's flags] */

static int
build_default(build_ctx_t *ctx, shuttle_manifest_t *m)
{
    int           rc, status;
    char         *inc, *so;
    size_t        i, len;
    struct stat   st;
    build_args_t  srcs, flags, args;

    memset(&srcs, 0, sizeof(srcs));
    memset(&flags, 0, sizeof(flags));
    memset(&args, 0, sizeof(args));
    inc = NULL;
    so = NULL;
    rc = -1;

    if (build_sources(ctx, &srcs) != 0) {
        goto done;
    }

    if (srcs.n == 0) {
        build_error(ctx->err, ctx->errlen, "no src/*.c and no Makefile");
        goto done;
    }

    if (m->nlibs && build_pkg_config(ctx, m, &flags) != 0) {
        goto done;
    }

    build_args_add(&args, "cc");
    build_args_add(&args, "-std=gnu11");
    build_args_add(&args, "-O2");
    build_args_add(&args, "-g");
    build_args_add(&args, "-fPIC");
    build_args_add(&args, "-shared");
    build_args_add(&args, "-Wall");
    build_args_addf(&args, "-I%s", ctx->include_dir);

    if (asprintf(&inc, "%s/include", ctx->src_dir) == -1) {
        inc = NULL;
        args.nomem = 1;

    } else if (stat(inc, &st) == 0 && S_ISDIR(st.st_mode)) {
        build_args_addf(&args, "-I%s", inc);
    }

    for (i = 0; i < srcs.n; i++) {
        build_args_add(&args, srcs.v[i]);
    }

    /* in a sandbox, cc may write in the project alone: moved after */

    len = strlen(ctx->src_dir);

    if (ctx->o->sandbox != NULL
        && !(strncmp(ctx->out, ctx->src_dir, len) == 0
             && ctx->out[len] == '/')
        && asprintf(&so, "%s/" BUILD_SERVICE, ctx->src_dir) == -1)
    {
        so = NULL;
        args.nomem = 1;
    }

    build_args_add(&args, "-o");
    build_args_add(&args, so != NULL ? so : ctx->out);

    /*
     * pkg-config's output as a whole goes after the sources: the -l
     * flags must follow the objects, and cc applies -I, -D and -pthread
     * wherever they stand.
     */

    for (i = 0; i < flags.n; i++) {
        build_args_add(&args, flags.v[i]);
    }

    if (build_run(ctx, &args, NULL, &status) != 0) {
        goto done;
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        build_failed(ctx, "build failed", "cc", status);
        goto done;
    }

    rc = so != NULL ? build_move(ctx, so) : 0;

done:

    free(so);
    free(inc);
    build_args_free(&srcs);
    build_args_free(&flags);
    build_args_free(&args);

    return rc;
}


/* the regular files src/NAME.c, as "src/NAME.c", sorted bytewise */

static int
build_sources(build_ctx_t *ctx, build_args_t *srcs)
{
    int             fd;
    DIR            *dir;
    char           *path;
    size_t          len;
    struct stat     st;
    struct dirent  *de;

    if (asprintf(&path, "%s/src", ctx->src_dir) == -1) {
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        return -1;
    }

    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    free(path);

    if (fd == -1) {

        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
            return 0;
        }

        build_error(ctx->err, ctx->errlen, "src: %s", strerror(errno));
        return -1;
    }

    dir = fdopendir(fd);

    if (dir == NULL) {
        build_error(ctx->err, ctx->errlen, "src: %s", strerror(errno));
        close(fd);
        return -1;
    }

    for ( ;; ) {
        errno = 0;
        de = readdir(dir);

        if (de == NULL) {
            break;
        }

        len = strlen(de->d_name);

        if (de->d_name[0] == '.' || len < 3
            || strcmp(de->d_name + len - 2, ".c") != 0)
        {
            continue;
        }

        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1
            || !S_ISREG(st.st_mode))
        {
            continue;
        }

        build_args_addf(srcs, "src/%s", de->d_name);
    }

    if (errno != 0) {
        build_error(ctx->err, ctx->errlen, "src: %s", strerror(errno));
        closedir(dir);
        return -1;
    }

    closedir(dir);

    if (srcs->nomem) {
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        return -1;
    }

    if (srcs->n) {
        qsort(srcs->v, srcs->n, sizeof(char *), build_args_cmp);
    }

    return 0;
}


/*
 * pkg-config --cflags --libs -- LIBS, its words into flags.  When it
 * fails, each library is asked for in turn, to name the one missing.
 */

static int
build_pkg_config(build_ctx_t *ctx, shuttle_manifest_t *m,
    build_args_t *flags)
{
    int           rc, status, escaped;
    char         *p, *end, *w;
    size_t        i;
    build_buf_t   out;
    build_args_t  args;

    memset(&out, 0, sizeof(out));
    memset(&args, 0, sizeof(args));
    rc = -1;

    build_args_add(&args, "pkg-config");
    build_args_add(&args, "--cflags");
    build_args_add(&args, "--libs");
    build_args_add(&args, "--");

    for (i = 0; i < m->nlibs; i++) {
        build_args_add(&args, m->libs[i]);
    }

    if (build_run(ctx, &args, &out, &status) != 0) {
        goto done;
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {

        for (i = 0; i < m->nlibs; i++) {
            build_args_free(&args);
            build_args_add(&args, "pkg-config");
            build_args_add(&args, "--exists");
            build_args_add(&args, "--");
            build_args_add(&args, m->libs[i]);

            if (build_run(ctx, &args, NULL, &status) != 0) {
                goto done;
            }

            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                build_error(ctx->err, ctx->errlen,
                            BUILD_MANIFEST ": libs[%zu]: unknown library "
                            "\"%s\" (pkg-config)", i, m->libs[i]);
                goto done;
            }
        }

        build_failed(ctx, BUILD_MANIFEST ": libs", "pkg-config", status);
        goto done;
    }

    if (out.overflow) {
        build_error(ctx->err, ctx->errlen, BUILD_MANIFEST ": libs: "
                    "pkg-config wrote more than %d bytes", BUILD_CAPTURE_MAX);
        goto done;
    }

    /* words split at blanks, a backslash escaping the next byte */

    p = out.data;
    end = out.len ? out.data + out.len : p;

    while (p < end) {

        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n')) {
            p++;
        }

        if (p == end) {
            break;
        }

        w = p;
        i = 0;
        escaped = 0;

        while (p < end) {

            if (escaped) {
                escaped = 0;

            } else if (*p == '\\') {
                escaped = 1;
                p++;
                continue;

            } else if (*p == ' ' || *p == '\t' || *p == '\n') {
                break;
            }

            w[i++] = *p++;
        }

        /* the word shrank in place; its end is always before p */
        build_args_push(flags, strndup(w, i));
    }

    if (flags->nomem) {
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        goto done;
    }

    rc = 0;

done:

    free(out.data);
    build_args_free(&args);

    return rc;
}


/* make -C SRC_DIR service.so, then SRC_DIR/service.so to out */

static int
build_make(build_ctx_t *ctx)
{
    int           rc, status;
    char         *so, target[PATH_MAX], quoted[BUILD_QUOTED * 4 + 8];
    ssize_t       n;
    struct stat   st;
    build_args_t  args;

    memset(&args, 0, sizeof(args));
    so = NULL;
    rc = -1;

    build_args_add(&args, "make");
    build_args_add(&args, "-C");
    build_args_add(&args, ctx->src_dir);
    build_args_add(&args, BUILD_SERVICE);

    if (build_run(ctx, &args, NULL, &status) != 0) {
        goto done;
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        build_failed(ctx, "build failed", "make", status);
        goto done;
    }

    if (asprintf(&so, "%s/" BUILD_SERVICE, ctx->src_dir) == -1) {
        so = NULL;
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        goto done;
    }

    if (lstat(so, &st) == -1) {

        if (errno == ENOENT) {
            build_error(ctx->err, ctx->errlen,
                        BUILD_MAKEFILE " did not produce " BUILD_SERVICE);

        } else {
            build_error(ctx->err, ctx->errlen, BUILD_SERVICE ": %s",
                        strerror(errno));
        }

        goto done;
    }

    if (S_ISLNK(st.st_mode)) {
        n = readlink(so, target, sizeof(target));

        build_error(ctx->err, ctx->errlen,
                    BUILD_MAKEFILE " made " BUILD_SERVICE " a symbolic link "
                    "to %s, refused: it must be a regular file",
                    n > 0 ? build_quote(target, n, quoted, sizeof(quoted))
                          : "somewhere");
        goto done;
    }

    if (!S_ISREG(st.st_mode)) {
        build_error(ctx->err, ctx->errlen,
                    BUILD_MAKEFILE " made " BUILD_SERVICE " something other "
                    "than a regular file, refused");
        goto done;
    }

    rc = build_move(ctx, so);

done:

    free(so);
    build_args_free(&args);

    return rc;
}


static int
build_move(build_ctx_t *ctx, const char *from)
{
    if (rename(from, ctx->out) == 0) {
        return 0;
    }

    if (errno != EXDEV) {
        build_error(ctx->err, ctx->errlen, BUILD_SERVICE " to %s: %s",
                    ctx->out, strerror(errno));
        return -1;
    }

    if (build_copy(ctx, from) != 0) {
        return -1;
    }

    (void) unlink(from);

    return 0;
}


/* across file systems: a copy, refusing anything but a regular file */

static int
build_copy(build_ctx_t *ctx, const char *from)
{
    int          in, out, rc;
    char         buf[65536];
    ssize_t      n;
    struct stat  st;

    in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (in == -1) {
        build_error(ctx->err, ctx->errlen, BUILD_SERVICE ": %s",
                    strerror(errno));
        return -1;
    }

    if (fstat(in, &st) == -1 || !S_ISREG(st.st_mode)) {
        build_error(ctx->err, ctx->errlen,
                    BUILD_SERVICE " is not a regular file, refused");
        close(in);
        return -1;
    }

    out = open(ctx->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);

    if (out == -1) {
        build_error(ctx->err, ctx->errlen, "%s: %s", ctx->out,
                    strerror(errno));
        close(in);
        return -1;
    }

    rc = 0;

    for ( ;; ) {
        n = read(in, buf, sizeof(buf));

        if (n == 0) {
            break;
        }

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            build_error(ctx->err, ctx->errlen, BUILD_SERVICE ": %s",
                        strerror(errno));
            rc = -1;
            break;
        }

        if (write(out, buf, n) != n) {
            build_error(ctx->err, ctx->errlen, "%s: %s", ctx->out,
                        errno ? strerror(errno) : "short write");
            rc = -1;
            break;
        }
    }

    close(in);

    if (close(out) == -1 && rc == 0) {
        build_error(ctx->err, ctx->errlen, "%s: %s", ctx->out,
                    strerror(errno));
        rc = -1;
    }

    return rc;
}


/* the project is untrusted: out must be a file, not a link to one */

static int
build_check(build_ctx_t *ctx)
{
    struct stat  st;

    if (lstat(ctx->out, &st) == -1) {
        build_error(ctx->err, ctx->errlen, "%s: %s", ctx->out,
                    errno == ENOENT ? "the build did not produce it"
                                    : strerror(errno));
        return -1;
    }

    if (S_ISLNK(st.st_mode)) {
        build_error(ctx->err, ctx->errlen,
                    "%s is a symbolic link, refused", ctx->out);
        return -1;
    }

    if (!S_ISREG(st.st_mode)) {
        build_error(ctx->err, ctx->errlen,
                    "%s is not a regular file, refused", ctx->out);
        return -1;
    }

    return 0;
}


/*
 * Runs args in the project and waits for it.  Its output goes to the log,
 * or, with capture, its stdout goes there.  Returns 0 and its wait status,
 * or -1 and err: it could not run, the build timed out or was cancelled.
 */

static int
build_run(build_ctx_t *ctx, build_args_t *args, build_buf_t *capture,
    int *status)
{
    int    rc, fds[2], fd;
    char   path[PATH_MAX];
    pid_t  pid;

    if (args->nomem) {
        build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
        return -1;
    }

    if (build_stopped(ctx) != BUILD_RUNNING) {
        return -1;
    }

    if (build_which(args->v[0], path, sizeof(path)) != 0) {
        build_error(ctx->err, ctx->errlen, "cannot run %s: not found in "
                    BUILD_PATH, args->v[0]);
        return -1;
    }

    fds[0] = -1;
    fds[1] = -1;

    if (capture != NULL) {

        if (pipe2(fds, O_CLOEXEC) == -1) {
            build_error(ctx->err, ctx->errlen, "cannot run %s: pipe: %s",
                        args->v[0], strerror(errno));
            return -1;
        }

        if (fds[1] < 3) {
            fd = fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
            close(fds[1]);
            fds[1] = fd;

            if (fd == -1) {
                build_error(ctx->err, ctx->errlen, "cannot run %s: %s",
                            args->v[0], strerror(errno));
                close(fds[0]);
                return -1;
            }
        }
    }

    build_log_command(ctx, args);

    rc = build_spawn(ctx, path, args->v,
                     capture != NULL ? fds[1] : ctx->log_fd, &pid);

    if (fds[1] != -1) {
        close(fds[1]);
    }

    if (rc != 0) {
        build_error(ctx->err, ctx->errlen, "cannot run %s: %s", args->v[0],
                    ctx->sandbox_err[0] ? ctx->sandbox_err : strerror(rc));

        if (fds[0] != -1) {
            close(fds[0]);
        }

        return -1;
    }

    rc = build_wait(ctx, args->v[0], pid, fds[0], capture, status);

    if (fds[0] != -1) {
        close(fds[0]);
    }

    return rc;
}


static int
build_spawn(build_ctx_t *ctx, const char *path, char **argv, int out_fd,
    pid_t *pid)
{
    int                         rc, fds[3];
    sigset_t                    none, all;
    shuttle_spawn_t             sp;
    posix_spawnattr_t           attr;
    posix_spawn_file_actions_t  fa;

    if (ctx->o->sandbox != NULL) {
        fds[0] = -1;
        fds[1] = out_fd;
        fds[2] = ctx->log_fd;

        sp = *ctx->o->spawn;
        sp.kind = SHUTTLE_SANDBOX_BUILD;
        sp.cwd = ctx->src_dir;
        sp.fds = fds;
        sp.nfds = 3;
        sp.setsid = 1;

        if (shuttle_sandbox_spawn(ctx->o->sandbox, &sp, path, argv,
                                  ctx->env, pid, ctx->sandbox_err,
                                  sizeof(ctx->sandbox_err))
            != 0)
        {
            build_log(ctx, "shuttle: %s\n", ctx->sandbox_err);
            return EPERM;
        }

        return 0;
    }

    rc = posix_spawn_file_actions_init(&fa);

    if (rc != 0) {
        return rc;
    }

    rc = posix_spawnattr_init(&attr);

    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }

    sigemptyset(&none);
    sigfillset(&all);

    rc = posix_spawn_file_actions_adddup2(&fa, ctx->log_fd, 2);

    if (rc == 0) {
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    }

    if (rc == 0) {
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
                                              0);
    }

    if (rc == 0) {
        rc = posix_spawn_file_actions_addchdir_np(&fa, ctx->src_dir);
    }

#if (BUILD_CLOSEFROM)
    if (rc == 0) {
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    }
#endif

    if (rc == 0) {
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP
                                             | POSIX_SPAWN_SETSIGMASK
                                             | POSIX_SPAWN_SETSIGDEF);
    }

    if (rc == 0) {
        rc = posix_spawnattr_setpgroup(&attr, 0);
    }

    if (rc == 0) {
        rc = posix_spawnattr_setsigmask(&attr, &none);
    }

    if (rc == 0) {
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    }

    if (rc == 0) {
        rc = posix_spawn(pid, path, &fa, &attr, argv, ctx->env);
    }

    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);

    return rc;
}


/*
 * Waits for pid, reading cap_fd into capture meanwhile, until it exits,
 * the deadline passes or *cancel is set; then kills its process group
 * and reaps it.
 */

static int
build_wait(build_ctx_t *ctx, const char *name, pid_t pid, int cap_fd,
    build_buf_t *capture, int *status)
{
    int            n, rc, pidfd, exited, wait_ms;
    char           buf[4096], dur[32];
    ssize_t        got;
    int64_t        now, kill_at;
    siginfo_t      si;
    build_stop_e   stop;
    struct pollfd  pfd[2];

    pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
    stop = BUILD_RUNNING;
    kill_at = 0;
    exited = 0;

    for ( ;; ) {
        now = build_now();

        if (stop == BUILD_RUNNING) {
            stop = build_stopped(ctx);

            if (stop != BUILD_RUNNING) {
                build_log(ctx, "shuttle: %s, stopping %s\n",
                          stop == BUILD_CANCELLED ? "build cancelled"
                                                  : "build timed out",
                          name);
                (void) kill(-pid, SIGTERM);
                kill_at = now + SHUTTLE_BUILD_KILL_GRACE_MS;
            }

        } else if (now >= kill_at) {
            break;
        }

        wait_ms = (int) ((stop == BUILD_RUNNING ? ctx->deadline : kill_at)
                         - now);

        if (wait_ms < 0) {
            wait_ms = 0;
        }

        if (ctx->o->cancel != NULL && wait_ms > BUILD_TICK_MS) {
            wait_ms = BUILD_TICK_MS;
        }

        if (pidfd == -1 && wait_ms > BUILD_NOPIDFD_MS) {
            wait_ms = BUILD_NOPIDFD_MS;
        }

        n = 0;

        if (pidfd != -1) {
            pfd[n].fd = pidfd;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }

        if (cap_fd != -1) {
            pfd[n].fd = cap_fd;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }

        rc = poll(pfd, n, wait_ms);

        if (rc == -1 && errno != EINTR) {
            build_error(ctx->err, ctx->errlen, "waiting for %s: poll: %s",
                        name, strerror(errno));
            stop = BUILD_BROKEN;
            break;
        }

        if (cap_fd != -1 && rc > 0 && pfd[n - 1].revents) {
            got = read(cap_fd, buf, sizeof(buf));

            if (got > 0) {
                if (build_buf_add(capture, buf, got, BUILD_CAPTURE_MAX)
                    != 0)
                {
                    build_error(ctx->err, ctx->errlen, "build: %s",
                                strerror(ENOMEM));
                    stop = BUILD_BROKEN;
                    break;
                }

            } else if (got == 0 || errno != EINTR) {
                cap_fd = -1;
            }
        }

        if (pidfd != -1) {
            exited = rc > 0 && pfd[0].revents != 0;

        } else {
            si.si_pid = 0;
            exited = waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT)
                     == 0 && si.si_pid == pid;
        }

        if (exited) {
            break;
        }
    }

    /*
     * Not reaped yet, pid still names our process group: whatever is left
     * in it, a background job or a process that ignored SIGTERM, dies.
     */

    (void) kill(-pid, SIGKILL);

    while (exited && cap_fd != -1 && stop == BUILD_RUNNING) {
        pfd[0].fd = cap_fd;
        pfd[0].events = POLLIN;
        wait_ms = (int) (ctx->deadline - build_now());

        if (wait_ms <= 0 || poll(pfd, 1, wait_ms) <= 0) {
            break;
        }

        got = read(cap_fd, buf, sizeof(buf));

        if (got <= 0) {
            break;
        }

        if (build_buf_add(capture, buf, got, BUILD_CAPTURE_MAX) != 0) {
            build_error(ctx->err, ctx->errlen, "build: %s", strerror(ENOMEM));
            stop = BUILD_BROKEN;
        }
    }

    if (pidfd != -1) {
        close(pidfd);
    }

    while ((rc = waitpid(pid, status, 0)) == -1 && errno == EINTR) {
        /* void */
    }

    if (rc == -1 && stop == BUILD_RUNNING) {
        build_error(ctx->err, ctx->errlen, "waiting for %s: %s", name,
                    strerror(errno));
        return -1;
    }

    switch (stop) {

    case BUILD_RUNNING:
        return 0;

    case BUILD_TIMEDOUT:
        build_error(ctx->err, ctx->errlen, "build timed out after %s",
                    build_duration(ctx->timeout_ms, dur, sizeof(dur)));
        return -1;

    case BUILD_CANCELLED:
        build_error(ctx->err, ctx->errlen, "build cancelled");
        return -1;

    default:
        return -1;
    }
}


/* BUILD_RUNNING, or why the build must stop, with err set */

static build_stop_e
build_stopped(build_ctx_t *ctx)
{
    char  dur[32];

    if (ctx->o->cancel != NULL && *ctx->o->cancel) {
        build_error(ctx->err, ctx->errlen, "build cancelled");
        return BUILD_CANCELLED;
    }

    if (build_now() >= ctx->deadline) {
        build_error(ctx->err, ctx->errlen, "build timed out after %s",
                    build_duration(ctx->timeout_ms, dur, sizeof(dur)));
        return BUILD_TIMEDOUT;
    }

    return BUILD_RUNNING;
}


static void
build_failed(build_ctx_t *ctx, const char *what, const char *name,
    int status)
{
    const char  *sig;

    if (WIFEXITED(status)) {
        build_error(ctx->err, ctx->errlen,
                    "%s: %s exited with status %d (see build log)",
                    what, name, WEXITSTATUS(status));
        build_full(ctx);
        return;
    }

    sig = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;

    build_error(ctx->err, ctx->errlen,
                "%s: %s was killed by signal %d (SIG%s) (see build log)",
                what, name, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                sig ? sig : "?");
    build_full(ctx);
}


/*
 * A build that failed where next to no space is left failed for want of
 * it, all but surely, and the tools' own words ("No space left on
 * device") may not have reached the build log, on the same filesystem:
 * its reason says so.
 */

static void
build_full(build_ctx_t *ctx)
{
    size_t               len;
    struct statvfs       vfs;
    unsigned long long   avail;

    if (ctx->err == NULL || statvfs(ctx->src_dir, &vfs) == -1) {
        return;
    }

    avail = (unsigned long long) vfs.f_bavail * vfs.f_frsize;

    if (avail >= BUILD_FULL) {
        return;
    }

    len = strlen(ctx->err);

    if (len < ctx->errlen) {
        snprintf(ctx->err + len, ctx->errlen - len, ": no space left on "
                 "device (%llu KiB free on the filesystem of %s)",
                 avail >> 10, ctx->src_dir);
    }
}


/* the program in BUILD_PATH, not in the caller's PATH */

static int
build_which(const char *name, char *path, size_t size)
{
    size_t              i;
    static const char  *dirs[] = { "/usr/local/bin", "/usr/bin", "/bin" };

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if ((size_t) snprintf(path, size, "%s/%s", dirs[i], name) < size
            && access(path, X_OK) == 0)
        {
            return 0;
        }
    }

    return -1;
}


/* the command line, quoted as a shell would need it, like make echoes */

static void
build_log_command(build_ctx_t *ctx, build_args_t *args)
{
    size_t        i;
    const char   *p, *safe;
    build_buf_t   line;

    memset(&line, 0, sizeof(line));
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "0123456789_-+=./,:@%";

    for (i = 0; i < args->n; i++) {
        p = args->v[i];

        if (i > 0) {
            build_buf_add(&line, " ", 1, SIZE_MAX);
        }

        if (*p != '\0' && strspn(p, safe) == strlen(p)) {
            build_buf_add(&line, p, strlen(p), SIZE_MAX);
            continue;
        }

        build_buf_add(&line, "'", 1, SIZE_MAX);

        for ( /* void */ ; *p; p++) {
            if (*p == '\'') {
                build_buf_add(&line, "'\\''", 4, SIZE_MAX);

            } else {
                build_buf_add(&line, p, 1, SIZE_MAX);
            }
        }

        build_buf_add(&line, "'", 1, SIZE_MAX);
    }

    build_buf_add(&line, "\n", 1, SIZE_MAX);

    if (line.data != NULL) {
        build_write(ctx->log_fd, line.data, line.len);
    }

    free(line.data);
}


static void
build_log(build_ctx_t *ctx, const char *fmt, ...)
{
    int      n;
    char     buf[512];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n > 0) {
        build_write(ctx->log_fd, buf,
                    (size_t) n < sizeof(buf) ? (size_t) n : sizeof(buf) - 1);
    }
}


/* the log is the caller's to watch: a failed write loses output only */

static void
build_write(int fd, const char *data, size_t len)
{
    ssize_t  n;

    while (len) {
        n = write(fd, data, len);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            return;
        }

        data += n;
        len -= n;
    }
}


static int64_t
build_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static const char *
build_duration(unsigned ms, char *buf, size_t size)
{
    if (ms % 1000 == 0) {
        snprintf(buf, size, "%u s", ms / 1000);

    } else {
        snprintf(buf, size, "%u ms", ms);
    }

    return buf;
}


static void
build_error(char *err, size_t errlen, const char *fmt, ...)
{
    char     *p;
    va_list   args;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);

    /* one line, whatever a path or a tool said */

    for (p = err; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
}


static void
build_args_add(build_args_t *a, const char *s)
{
    build_args_push(a, strdup(s));
}


static void
build_args_addf(build_args_t *a, const char *fmt, ...)
{
    char     *s;
    va_list   args;

    va_start(args, fmt);

    if (vasprintf(&s, fmt, args) == -1) {
        s = NULL;
    }

    va_end(args);

    build_args_push(a, s);
}


/* takes s, NULL meaning its allocation failed */

static void
build_args_push(build_args_t *a, char *s)
{
    char    **v;
    size_t    size;

    if (s == NULL || a->nomem) {
        free(s);
        a->nomem = 1;
        return;
    }

    if (a->n + 2 > a->size) {
        size = a->size ? a->size * 2 : 16;
        v = realloc(a->v, size * sizeof(char *));

        if (v == NULL) {
            free(s);
            a->nomem = 1;
            return;
        }

        a->v = v;
        a->size = size;
    }

    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}


static int
build_args_cmp(const void *one, const void *two)
{
    return strcmp(*(char *const *) one, *(char *const *) two);
}


static void
build_args_free(build_args_t *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->v[i]);
    }

    free(a->v);
    memset(a, 0, sizeof(build_args_t));
}


/* appends what fits under max bytes, noting the overflow; -1: no memory */

static int
build_buf_add(build_buf_t *b, const char *data, size_t len, size_t max)
{
    char    *p;
    size_t   size;

    if (len > max - b->len) {
        len = max - b->len;
        b->overflow = 1;
    }

    if (b->len + len + 1 > b->size) {
        size = b->size ? b->size : 256;

        while (size < b->len + len + 1) {
            size *= 2;
        }

        p = realloc(b->data, size);

        if (p == NULL) {
            return -1;
        }

        b->data = p;
        b->size = size;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';

    return 0;
}


int
shuttle_manifest_read(const char *src_dir, shuttle_manifest_t *m,
    char *err, size_t errlen)
{
    int           fd, rc;
    char         *path, *buf;
    size_t        len;
    ssize_t       n;
    json_t       *root;
    struct stat   st;
    json_error_t  jerr;

    memset(m, 0, sizeof(shuttle_manifest_t));

    if (asprintf(&path, "%s/" BUILD_MANIFEST, src_dir) == -1) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
        return -1;
    }

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    free(path);

    if (fd == -1) {

        if (errno == ENOENT) {
            return 0;
        }

        build_error(err, errlen, BUILD_MANIFEST ": %s",
                    errno == ELOOP ? "a symbolic link, not a file"
                                   : strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) == -1) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(errno));
        close(fd);
        return -1;
    }

    if (!S_ISREG(st.st_mode)) {
        build_error(err, errlen, BUILD_MANIFEST ": not a regular file");
        close(fd);
        return -1;
    }

    if (st.st_size > SHUTTLE_MANIFEST_MAX_SIZE) {
        build_error(err, errlen, BUILD_MANIFEST ": larger than %d bytes",
                    SHUTTLE_MANIFEST_MAX_SIZE);
        close(fd);
        return -1;
    }

    buf = malloc(SHUTTLE_MANIFEST_MAX_SIZE + 1);

    if (buf == NULL) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
        close(fd);
        return -1;
    }

    len = 0;

    for ( ;; ) {
        n = read(fd, buf + len, SHUTTLE_MANIFEST_MAX_SIZE + 1 - len);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        len += n;

        if (len > SHUTTLE_MANIFEST_MAX_SIZE) {
            break;
        }
    }

    close(fd);

    if (n == -1) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(errno));
        free(buf);
        return -1;
    }

    if (len > SHUTTLE_MANIFEST_MAX_SIZE) {
        build_error(err, errlen, BUILD_MANIFEST ": larger than %d bytes",
                    SHUTTLE_MANIFEST_MAX_SIZE);
        free(buf);
        return -1;
    }

    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);

    if (root == NULL) {
        build_error(err, errlen, BUILD_MANIFEST ": invalid JSON at line %d: "
                    "%s", jerr.line, jerr.text);
        return -1;
    }

    rc = build_manifest_parse(root, m, err, errlen);
    json_decref(root);

    if (rc != 0) {
        shuttle_manifest_free(m);
    }

    return rc;
}


static int
build_manifest_parse(json_t *root, shuttle_manifest_t *m, char *err,
    size_t errlen)
{
    char         quoted[BUILD_QUOTED * 4 + 8];
    size_t       i, len, nlibs;
    json_t      *name, *libs, *lib;
    const char  *s;

    if (!json_is_object(root)) {
        build_error(err, errlen, BUILD_MANIFEST ": the top level is %s, "
                    "not an object", build_json_type(root));
        return -1;
    }

    name = json_object_get(root, "name");

    if (name != NULL) {

        if (!json_is_string(name)) {
            build_error(err, errlen, BUILD_MANIFEST ": \"name\" is %s, "
                        "not a string", build_json_type(name));
            return -1;
        }

        s = json_string_value(name);
        len = json_string_length(name);

        if (!shuttle_valid_name(s, len)) {
            build_error(err, errlen, BUILD_MANIFEST ": name %s is not a DNS "
                        "label (" BUILD_NAME_RULE ")",
                        build_quote(s, len, quoted, sizeof(quoted)));
            return -1;
        }

        m->name = strndup(s, len);

        if (m->name == NULL) {
            build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
            return -1;
        }
    }

    libs = json_object_get(root, "libs");

    if (libs == NULL) {
        return 0;
    }

    if (!json_is_array(libs)) {
        build_error(err, errlen, BUILD_MANIFEST ": \"libs\" is %s, not an "
                    "array of strings", build_json_type(libs));
        return -1;
    }

    nlibs = json_array_size(libs);

    if (nlibs > SHUTTLE_MANIFEST_MAX_LIBS) {
        build_error(err, errlen, BUILD_MANIFEST ": \"libs\" has %zu entries, "
                    "more than %d", nlibs, SHUTTLE_MANIFEST_MAX_LIBS);
        return -1;
    }

    if (nlibs == 0) {
        return 0;
    }

    m->libs = calloc(nlibs, sizeof(char *));

    if (m->libs == NULL) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
        return -1;
    }

    json_array_foreach(libs, i, lib) {

        if (!json_is_string(lib)) {
            build_error(err, errlen, BUILD_MANIFEST ": libs[%zu] is %s, not "
                        "a string", i, build_json_type(lib));
            return -1;
        }

        s = json_string_value(lib);
        len = json_string_length(lib);

        if (!build_valid_lib(s, len)) {
            build_error(err, errlen, BUILD_MANIFEST ": libs[%zu]: %s is not "
                        "a pkg-config package name (" BUILD_LIB_CHARS ", "
                        "at most %d bytes)", i,
                        build_quote(s, len, quoted, sizeof(quoted)),
                        SHUTTLE_MANIFEST_MAX_LIB);
            return -1;
        }

        m->libs[i] = strndup(s, len);

        if (m->libs[i] == NULL) {
            build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
            return -1;
        }

        m->nlibs++;
    }

    return 0;
}


void
shuttle_manifest_free(shuttle_manifest_t *m)
{
    size_t  i;

    for (i = 0; i < m->nlibs; i++) {
        free(m->libs[i]);
    }

    free(m->libs);
    free(m->name);
    memset(m, 0, sizeof(shuttle_manifest_t));
}


static int
build_valid_lib(const char *s, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > SHUTTLE_MANIFEST_MAX_LIB) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '+' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


static const char *
build_json_type(json_t *v)
{
    switch (json_typeof(v)) {

    case JSON_OBJECT:
        return "an object";

    case JSON_ARRAY:
        return "an array";

    case JSON_STRING:
        return "a string";

    case JSON_INTEGER:
        return "an integer";

    case JSON_REAL:
        return "a number";

    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";

    default:
        return "null";
    }
}


/* an untrusted string for err: quoted, escaped, cut at BUILD_QUOTED bytes */

static const char *
build_quote(const char *s, size_t len, char *buf, size_t size)
{
    size_t          i, n;
    unsigned char   c;

    n = 0;
    buf[n++] = '"';

    for (i = 0; i < len && i < BUILD_QUOTED && n + 8 < size; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = c;

        } else if (c < 0x20 || c >= 0x7f) {
            n += snprintf(buf + n, size - n, "\\x%02x", c);

        } else {
            buf[n++] = c;
        }
    }

    if (i < len && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }

    buf[n++] = '"';
    buf[n] = '\0';

    return buf;
}
