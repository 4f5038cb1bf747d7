
/*
 * shuttle run: the project copied into the scratch directory (what
 * "shuttle deploy" would upload), and that directory removed (run_int.h).
 */

#include "run_int.h"


static int cli_run_copy_dir(cli_t *cli, cli_ignore_t *ig, const char *from,
    const char *to, const char *rel, int depth);
static int cli_run_copy_file(cli_t *cli, const char *from, const char *to,
    const struct stat *st);


/*
 * What "shuttle deploy" would upload, less the dot folders, copied into
 * a new scratch directory: r->scratch, r->src and r->so set.
 */

int
cli_run_copy(cli_t *cli, cli_run_t *r)
{
    int            rc;
    char           base[PATH_MAX], err[1024], *p, c;
    const char    *env;
    struct stat    st;
    cli_ignore_t  *ig;

    if ((env = getenv("XDG_CACHE_HOME")) != NULL && env[0] == '/') {
        snprintf(base, sizeof(base), "%s/shuttle/run", env);

    } else if ((env = getenv("HOME")) != NULL && env[0] == '/') {
        snprintf(base, sizeof(base), "%s/.cache/shuttle/run", env);

    } else {
        env = getenv("TMPDIR");
        snprintf(base, sizeof(base), "%s/shuttle-run-%lu",
                 env != NULL && env[0] == '/' ? env : "/tmp",
                 (unsigned long) getuid());
    }

    /* mkdir -p, 0700 for what it makes */

    for (p = base + 1; ; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }

        c = *p;
        *p = '\0';

        if (mkdir(base, 0700) != 0 && errno != EEXIST) {
            cli_error(cli, "cannot create %s: %s", base, strerror(errno));
            return CLI_USAGE;
        }

        *p = c;

        if (c == '\0') {
            break;
        }
    }

    /* where no one else may swap what is made in it (a shared /tmp) */

    if (lstat(base, &st) != 0 || !S_ISDIR(st.st_mode)
        || st.st_uid != geteuid() || (st.st_mode & 022) != 0)
    {
        cli_error(cli, "%s is not a folder of yours that only you can "
                  "write: refused for the scratch copy", base);
        return CLI_USAGE;
    }

    if ((size_t) snprintf(r->scratch, sizeof(r->scratch), "%s/%s.XXXXXX",
                          base, r->name)
        >= sizeof(r->scratch)
        || mkdtemp(r->scratch) == NULL)
    {
        cli_error(cli, "cannot create a scratch directory in %s: %s", base,
                  strerror(errno));
        r->scratch[0] = '\0';
        return CLI_USAGE;
    }

    snprintf(r->src, sizeof(r->src), "%s/src", r->scratch);
    snprintf(r->so, sizeof(r->so), "%s/service.so", r->scratch);

    if (mkdir(r->src, 0755) != 0) {
        cli_error(cli, "cannot create %s: %s", r->src, strerror(errno));
        return CLI_USAGE;
    }

    ig = cli_ignore_load(r->top, err, sizeof(err));
    if (ig == NULL) {
        cli_error(cli, "%s", err);
        return CLI_USAGE;
    }

    rc = cli_run_copy_dir(cli, ig, r->top, r->src, "", 0);

    cli_ignore_free(ig);

    return rc;
}


/* pack.c's walk, into files: the same choices, the same refusals */

static int
cli_run_copy_dir(cli_t *cli, cli_ignore_t *ig, const char *from,
    const char *to, const char *rel, int depth)
{
    int              n, i, rc, is_dir;
    char             path[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
    const char      *kind;
    struct stat      st;
    struct dirent  **names;

    if (depth > CLI_RUN_MAX_DEPTH) {
        cli_error(cli, "%s: more than %d directories deep", rel,
                  CLI_RUN_MAX_DEPTH);
        return CLI_USAGE;
    }

    snprintf(src, sizeof(src), "%s%s%s", from, rel[0] ? "/" : "", rel);

    n = scandir(src, &names, NULL, alphasort);
    if (n < 0) {
        cli_error(cli, "%s: %s", src, strerror(errno));
        return CLI_USAGE;
    }

    rc = CLI_OK;

    for (i = 0; i < n; i++) {
        if (cli_interrupted) {
            rc = CLI_FAILED;                /* cli_run() raises it */
        }

        if (rc != CLI_OK || strcmp(names[i]->d_name, ".") == 0
            || strcmp(names[i]->d_name, "..") == 0)
        {
            free(names[i]);
            continue;
        }

        if ((size_t) snprintf(path, sizeof(path), "%s%s%s", rel,
                              rel[0] ? "/" : "", names[i]->d_name)
            >= sizeof(path)
            || (size_t) snprintf(src, sizeof(src), "%s/%s", from, path)
               >= sizeof(src)
            || (size_t) snprintf(dst, sizeof(dst), "%s/%s", to, path)
               >= sizeof(dst))
        {
            cli_error(cli, "%s/%s: path too long", rel, names[i]->d_name);
            rc = CLI_USAGE;
            free(names[i]);
            continue;
        }

        if (lstat(src, &st) != 0) {
            cli_error(cli, "%s: %s", src, strerror(errno));
            rc = CLI_USAGE;
            free(names[i]);
            continue;
        }

        is_dir = S_ISDIR(st.st_mode);

        /* what deploy leaves out, and every dot folder (.git, .vscode) */

        if (cli_ignore_match(ig, path, is_dir)
            || (is_dir && names[i]->d_name[0] == '.'))
        {
            free(names[i]);
            continue;
        }

        free(names[i]);

        if (is_dir) {
            if (mkdir(dst, 0755) != 0) {
                cli_error(cli, "cannot create %s: %s", dst, strerror(errno));
                rc = CLI_USAGE;
                continue;
            }

            rc = cli_run_copy_dir(cli, ig, from, to, path, depth + 1);
            continue;
        }

        if (S_ISREG(st.st_mode)) {
            rc = cli_run_copy_file(cli, src, dst, &st);
            continue;
        }

        kind = S_ISLNK(st.st_mode) ? "a symbolic link"
               : S_ISFIFO(st.st_mode) ? "a FIFO"
               : S_ISSOCK(st.st_mode) ? "a socket" : "a device";

        cli_error(cli, "%s is %s: the platform takes regular files and "
                  "directories only (replace it with what it points to, or "
                  "list it in .shuttleignore)", path, kind);
        rc = CLI_USAGE;
    }

    free(names);

    return rc;
}


static int
cli_run_copy_file(cli_t *cli, const char *from, const char *to,
    const struct stat *st)
{
    int      in, out, rc;
    char     buf[65536];
    ssize_t  n;

    in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in == -1) {
        cli_error(cli, "%s: %s", from, strerror(errno));
        return CLI_USAGE;
    }

    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
               (st->st_mode & 0111) ? 0755 : 0644);
    if (out == -1) {
        cli_error(cli, "cannot create %s: %s", to, strerror(errno));
        close(in);
        return CLI_USAGE;
    }

    rc = CLI_OK;

    /* in the kernel (a reflink where the filesystem has them), else by
     * hand */

    do {
        n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    } while (n > 0);

    if (n == -1 && errno != EXDEV && errno != ENOSYS && errno != EINVAL
        && errno != EOPNOTSUPP)
    {
        cli_error(cli, "%s to %s: %s", from, to, strerror(errno));
        rc = CLI_USAGE;
    }

    while (rc == CLI_OK && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 || write(out, buf, n) != n) {
            cli_error(cli, "%s to %s: %s", from, to,
                      n < 0 ? strerror(errno) : "cannot write");
            rc = CLI_USAGE;
            break;
        }
    }

    close(in);

    if (close(out) != 0 && rc == CLI_OK) {
        cli_error(cli, "%s: %s", to, strerror(errno));
        rc = CLI_USAGE;
    }

    return rc;
}


/*
 * rm -rf name (from dfd), whatever modes the build left: a directory is
 * made 0700 before it is read.  Symbolic links are removed, not
 * followed.
 */

void
cli_run_remove(int dfd, const char *name, int depth)
{
    int             fd;
    DIR            *d;
    struct dirent  *de;

    if (unlinkat(dfd, name, 0) == 0 || errno != EISDIR
        || depth > CLI_RUN_MAX_DEPTH * 2)
    {
        return;
    }

    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1 && errno == EACCES
        && fchmodat(dfd, name, 0700, 0) == 0)
    {
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                               | O_CLOEXEC);
    }

    if (fd == -1) {
        return;
    }

    (void) fchmod(fd, 0700);

    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }

    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            cli_run_remove(fd, de->d_name, depth + 1);
        }
    }

    closedir(d);

    (void) unlinkat(dfd, name, AT_REMOVEDIR);
}
