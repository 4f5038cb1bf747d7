
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


#include "build.h"
#include "build_int.h"


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
