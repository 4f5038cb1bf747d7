
/*
 * Unpacking a deploy's tarball.
 *
 * libarchive reads the archive and its write_disk side creates the files,
 * but the policy is ours, checked on each header before anything of the
 * entry is written: its type, its path (relative, normalised, without
 * ".." or control characters, not seen before), the depth and the count.
 * Each entry reaches write_disk under a header of our own (path, type,
 * mode, size), so nothing else the archive says gets to the disk, and
 * each missing parent directory is written the same way before its
 * first child, so that every directory is 0755 whatever the umask.
 *
 * The limits on data are checked against each file's header, then the
 * data is counted as it streams: none may land past the header's size,
 * which a sparse map could otherwise do.
 *
 * write_disk works on paths, so every path it sees starts with the target
 * directory resolved by realpath(3): its checks for symbolic links and
 * ".." components then hold for that prefix as well.  The prefix makes
 * every path absolute, which ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS would
 * refuse; absolute names are refused here instead, before the prefix.
 */


#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extract.h"
#include "fsafe.h"
#include "fault.h"


#define EXTRACT_BLOCK     65536

/* libarchive's ARCHIVE_ERRNO_FILE_FORMAT, which archive.h does not define */
#ifdef EFTYPE
#define EXTRACT_EFORMAT   EFTYPE
#else
#define EXTRACT_EFORMAT   EILSEQ
#endif

#define EXTRACT_QUOTED    200       /* bytes of an entry's name in err */

/* PERM makes the modes we give exact, whatever the umask */
#define EXTRACT_FLAGS     (ARCHIVE_EXTRACT_PERM                              \
                           | ARCHIVE_EXTRACT_SECURE_SYMLINKS                 \
                           | ARCHIVE_EXTRACT_SECURE_NODOTDOT                 \
                           | ARCHIVE_EXTRACT_NO_OVERWRITE)


typedef struct {
    char      *path;        /* relative to the target directory */
    unsigned   dir:1;
    unsigned   named:1;     /* an entry of the archive, not only a parent */
} extract_node_t;


typedef struct {
    extract_node_t  *nodes;
    size_t           size;      /* a power of two */
    size_t           used;
} extract_set_t;


typedef struct {
    const char                *tarball;
    const char                *dir;
    shuttle_extract_limits_t   limits;
    int                        fd;
    struct archive            *in;
    struct archive            *out;
    struct archive_entry      *entry;   /* the header out is given */
    extract_set_t              set;     /* every path extracted so far */
    uint64_t                   entries;
    uint64_t                   total;   /* bytes of data, all files */
    size_t                     rootlen;
    size_t                     pathlen;
    char                      *err;
    size_t                     errlen;
    int                        cause;   /* the errno to leave, 0: the
                                           archive's (EINVAL) */

    /* the resolved target directory, then "/" and the current entry */
    char                       path[PATH_MAX];

    /* the current entry's name as the archive gives it, quoted */
    char                       name[EXTRACT_QUOTED * 4 + 8];

    /* libarchive's message, with the system's error it kept */
    char                       why[256];
} extract_ctx_t;


static void extract_error(extract_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *extract_why(extract_ctx_t *ctx, struct archive *a);
static int extract_root(extract_ctx_t *ctx);
static int extract_open(extract_ctx_t *ctx);
static int extract_next(extract_ctx_t *ctx);
static int extract_entry(extract_ctx_t *ctx, struct archive_entry *e);
static const char *extract_forbidden(struct archive_entry *e);
static int extract_path(extract_ctx_t *ctx, const char *raw,
    unsigned *depth);
static int extract_parents(extract_ctx_t *ctx);
static int extract_header(extract_ctx_t *ctx, mode_t type, mode_t perm,
    int64_t size);
static int extract_data(extract_ctx_t *ctx, int64_t size);
static void extract_close(extract_ctx_t *ctx);
static void extract_quote(extract_ctx_t *ctx, const char *raw);
static int extract_set_init(extract_set_t *set);
static extract_node_t *extract_set_find(extract_set_t *set, const char *path,
    size_t len);
static int extract_set_add(extract_set_t *set, extract_node_t *node,
    const char *path, size_t len, unsigned dir, unsigned named);
static void extract_set_free(extract_set_t *set);


void
shuttle_extract_defaults(shuttle_extract_limits_t *limits)
{
    limits->max_entries = SHUTTLE_EXTRACT_MAX_ENTRIES;
    limits->max_total = SHUTTLE_EXTRACT_MAX_TOTAL;
    limits->max_file = SHUTTLE_EXTRACT_MAX_FILE;
    limits->max_depth = SHUTTLE_EXTRACT_MAX_DEPTH;
}


int
shuttle_extract(const char *tarball, const char *dir,
    const shuttle_extract_limits_t *limits, char *err, size_t errlen)
{
    int             rc;
    size_t          len;
    extract_ctx_t   c, *ctx;

    if (errlen > 0) {
        err[0] = '\0';
    }

    ctx = &c;
    memset(ctx, 0, sizeof(extract_ctx_t));

    ctx->tarball = tarball;
    ctx->dir = dir;
    ctx->fd = -1;
    ctx->err = err;
    ctx->errlen = errlen;

    if (limits != NULL) {
        ctx->limits = *limits;

    } else {
        shuttle_extract_defaults(&ctx->limits);
    }

    if (extract_root(ctx) != 0) {
        errno = ctx->cause != 0 ? ctx->cause : EIO;
        return -1;
    }

    rc = extract_open(ctx);

    while (rc == 0) {
        rc = extract_next(ctx);
    }

    if (rc == 1) {
        rc = 0;

        if (archive_write_close(ctx->out) != ARCHIVE_OK) {
            extract_error(ctx, "directory %s: %s", dir,
                          extract_why(ctx, ctx->out));
            rc = -1;
        }
    }

    extract_close(ctx);

    if (rc != 0) {
        ctx->path[ctx->rootlen] = '\0';

        if (shuttle_rmtree(NULL, ctx->path) != 0 && errlen > 0) {
            len = strlen(err);
            (void) snprintf(err + len, errlen - len,
                            "; removing directory %s: %s", dir,
                            strerror(errno));
        }

        errno = ctx->cause != 0 ? ctx->cause : EINVAL;
    }

    return rc;
}


/* resolves and creates the target directory: ctx->path, ctx->rootlen */

static int
extract_root(extract_ctx_t *ctx)
{
    int          n;
    size_t       len;
    char        *slash;
    const char  *parent, *name;
    char         copy[PATH_MAX], resolved[PATH_MAX];

    len = strlen(ctx->dir);

    while (len > 1 && ctx->dir[len - 1] == '/') {
        len--;
    }

    if (len >= sizeof(copy)) {
        extract_error(ctx, "directory %s: name too long", ctx->dir);
        return -1;
    }

    memcpy(copy, ctx->dir, len);
    copy[len] = '\0';

    slash = strrchr(copy, '/');

    if (slash == NULL) {
        parent = ".";
        name = copy;

    } else if (slash == copy) {
        parent = "/";
        name = slash + 1;

    } else {
        *slash = '\0';
        parent = copy;
        name = slash + 1;
    }

    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    {
        extract_error(ctx, "directory %s: not a name for a new directory",
                      ctx->dir);
        return -1;
    }

    if (realpath(parent, resolved) == NULL) {
        extract_error(ctx, "directory %s: parent %s: %s", ctx->dir, parent,
                      strerror(errno));
        return -1;
    }

    n = snprintf(ctx->path, sizeof(ctx->path), "%s/%s",
                 strcmp(resolved, "/") == 0 ? "" : resolved, name);

    if (n < 0 || (size_t) n >= sizeof(ctx->path)) {
        extract_error(ctx, "directory %s: name too long", ctx->dir);
        return -1;
    }

    ctx->rootlen = (size_t) n;

    if (mkdir(ctx->path, 0755) == -1) {
        ctx->cause = errno;

        if (errno == EEXIST) {
            extract_error(ctx, "directory %s: already exists", ctx->dir);

        } else {
            extract_error(ctx, "directory %s: %s", ctx->dir, strerror(errno));
        }

        return -1;
    }

    if (chmod(ctx->path, 0755) == -1) {
        extract_error(ctx, "directory %s: chmod: %s", ctx->dir,
                      strerror(errno));
        (void) rmdir(ctx->path);
        return -1;
    }

    return 0;
}


static int
extract_open(extract_ctx_t *ctx)
{
    int          rc;
    struct stat  st;

    ctx->fd = open(ctx->tarball, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (ctx->fd == -1 || fstat(ctx->fd, &st) == -1) {
        ctx->cause = errno;
        extract_error(ctx, "tarball %s: %s", ctx->tarball, strerror(errno));
        return -1;
    }

    if (!S_ISREG(st.st_mode)) {
        ctx->cause = EIO;
        extract_error(ctx, "tarball %s: not a regular file", ctx->tarball);
        return -1;
    }

    ctx->in = archive_read_new();
    ctx->out = archive_write_disk_new();
    ctx->entry = archive_entry_new();

    if (ctx->in == NULL || ctx->out == NULL || ctx->entry == NULL
        || extract_set_init(&ctx->set) != 0)
    {
        extract_error(ctx, "tarball %s: out of memory", ctx->tarball);
        return -1;
    }

    if (archive_read_support_filter_gzip(ctx->in) != ARCHIVE_OK
        || archive_read_support_format_tar(ctx->in) != ARCHIVE_OK)
    {
        extract_error(ctx, "tarball %s: %s", ctx->tarball,
                      extract_why(ctx, ctx->in));
        return -1;
    }

    if (archive_write_disk_set_options(ctx->out, EXTRACT_FLAGS)
        != ARCHIVE_OK)
    {
        extract_error(ctx, "directory %s: %s", ctx->dir,
                      extract_why(ctx, ctx->out));
        return -1;
    }

    /* the filters and the format are chosen here, from the first bytes */
    rc = archive_read_open_fd(ctx->in, ctx->fd, EXTRACT_BLOCK);

    if (rc != ARCHIVE_OK && archive_errno(ctx->in) != EXTRACT_EFORMAT) {
        extract_error(ctx, "tarball %s: %s", ctx->tarball,
                      extract_why(ctx, ctx->in));
        return -1;
    }

    /* without a gzip layer the "none" filter takes the input as it is */
    if (rc != ARCHIVE_OK
        || archive_filter_code(ctx->in, 0) != ARCHIVE_FILTER_GZIP)
    {
        extract_error(ctx, "tarball %s: not a gzip'd tar archive",
                      ctx->tarball);
        return -1;
    }

    return 0;
}


/* 0: an entry extracted, 1: the end of the archive, -1: an error */

static int
extract_next(extract_ctx_t *ctx)
{
    int                    rc;
    struct archive_entry  *e;

    rc = archive_read_next_header(ctx->in, &e);

    if (rc == ARCHIVE_EOF) {
        return 1;
    }

    /*
     * A warning mostly leaves the entry whole: a name not in this locale's
     * charset (kept as its bytes), a malformed pax record (ignored).  The
     * checks apply to the entry as it is given, if it has a name at all.
     */
    if (rc != ARCHIVE_OK
        && (rc != ARCHIVE_WARN || archive_entry_pathname(e) == NULL))
    {
        extract_error(ctx, "tarball %s: %s", ctx->tarball,
                      extract_why(ctx, ctx->in));
        return -1;
    }

    return extract_entry(ctx, e);
}


static int
extract_entry(extract_ctx_t *ctx, struct archive_entry *e)
{
    mode_t           type, perm;
    size_t           len;
    int64_t          size;
    unsigned         depth;
    const char      *raw, *forbidden, *key;
    extract_node_t  *node;

    raw = archive_entry_pathname(e);
    extract_quote(ctx, raw);

    ctx->entries++;

    if (ctx->entries > ctx->limits.max_entries) {
        ctx->cause = EFBIG;
        extract_error(ctx, "entry %s: more than %llu entries in the archive",
                      ctx->name,
                      (unsigned long long) ctx->limits.max_entries);
        return -1;
    }

    forbidden = extract_forbidden(e);

    if (forbidden != NULL) {
        extract_error(ctx, "entry %s: %s are not allowed", ctx->name,
                      forbidden);
        return -1;
    }

    if (raw == NULL) {
        extract_error(ctx, "entry %s: the name cannot be read", ctx->name);
        return -1;
    }

    type = archive_entry_filetype(e);

    if (extract_path(ctx, raw, &depth) != 0) {
        return -1;
    }

    if (depth == 0) {
        if (type == AE_IFDIR) {
            return 0;   /* "./", the target directory itself */
        }

        extract_error(ctx, "entry %s: empty path", ctx->name);
        return -1;
    }

    if (depth > ctx->limits.max_depth) {
        ctx->cause = EFBIG;
        extract_error(ctx, "entry %s: more than %u path components",
                      ctx->name, ctx->limits.max_depth);
        return -1;
    }

    if (extract_parents(ctx) != 0) {
        return -1;
    }

    key = ctx->path + ctx->rootlen + 1;
    len = ctx->pathlen - ctx->rootlen - 1;
    node = extract_set_find(&ctx->set, key, len);

    if (node->path != NULL) {
        if (node->named) {
            extract_error(ctx, "entry %s: a duplicate of an earlier entry",
                          ctx->name);
            return -1;
        }

        if (type != AE_IFDIR) {
            extract_error(ctx, "entry %s: a file where earlier entries have "
                          "a directory", ctx->name);
            return -1;
        }

        node->named = 1;
        return 0;
    }

    if (extract_set_add(&ctx->set, node, key, len, type == AE_IFDIR, 1) != 0) {
        extract_error(ctx, "entry %s: out of memory", ctx->name);
        return -1;
    }

    if (type == AE_IFDIR) {
        return extract_header(ctx, AE_IFDIR, 0755, 0);
    }

    size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;

    if (size < 0) {
        size = 0;
    }

    if ((uint64_t) size > ctx->limits.max_file) {
        ctx->cause = EFBIG;
        extract_error(ctx, "entry %s: %lld bytes, over the limit of %llu "
                      "per file", ctx->name, (long long) size,
                      (unsigned long long) ctx->limits.max_file);
        return -1;
    }

    if ((uint64_t) size > ctx->limits.max_total - ctx->total) {
        ctx->cause = EFBIG;
        extract_error(ctx, "entry %s: the files add up to more than the "
                      "limit of %llu bytes", ctx->name,
                      (unsigned long long) ctx->limits.max_total);
        return -1;
    }

    perm = (archive_entry_perm(e) & 0111) ? 0755 : 0644;

    if (extract_header(ctx, AE_IFREG, perm, size) != 0) {
        return -1;
    }

    if (extract_data(ctx, size) != 0) {
        return -1;
    }

    shuttle_fault("extracting");

    return 0;
}


/* what the entry is, in the plural, when it is not allowed */

static const char *
extract_forbidden(struct archive_entry *e)
{
    if (archive_entry_hardlink(e) != NULL) {
        return "hard links";
    }

    if (archive_entry_symlink(e) != NULL) {
        return "symbolic links";
    }

    switch (archive_entry_filetype(e)) {

    case AE_IFREG:
    case AE_IFDIR:
        return NULL;

    case AE_IFLNK:
        return "symbolic links";

    case AE_IFCHR:
        return "character devices";

    case AE_IFBLK:
        return "block devices";

    case AE_IFIFO:
        return "FIFOs";

    case AE_IFSOCK:
        return "sockets";

    default:
        return "files of unknown type";
    }
}


/*
 * Appends "/" and the normalised raw name to the target directory in
 * ctx->path: no empty or "." components, no trailing slash.
 */

static int
extract_path(extract_ctx_t *ctx, const char *raw, unsigned *depth)
{
    char           *dst, *end;
    size_t          len;
    unsigned        n;
    const char     *p, *q;
    unsigned char   c;

    if (raw[0] == '/') {
        extract_error(ctx, "entry %s: absolute paths are not allowed",
                      ctx->name);
        return -1;
    }

    for (p = raw; *p != '\0'; p++) {
        c = (unsigned char) *p;

        if (c < 0x20 || c == 0x7f) {
            extract_error(ctx, "entry %s: control characters in names are "
                          "not allowed", ctx->name);
            return -1;
        }
    }

    dst = ctx->path + ctx->rootlen;
    end = ctx->path + sizeof(ctx->path);
    n = 0;

    for (p = raw; *p != '\0'; p = (*q == '/') ? q + 1 : q) {
        q = strchr(p, '/');

        if (q == NULL) {
            q = p + strlen(p);
        }

        len = (size_t) (q - p);

        if (len == 0 || (len == 1 && p[0] == '.')) {
            continue;
        }

        if (len == 2 && p[0] == '.' && p[1] == '.') {
            extract_error(ctx, "entry %s: \"..\" components are not allowed",
                          ctx->name);
            return -1;
        }

        if ((size_t) (end - dst) <= len + 1) {
            extract_error(ctx, "entry %s: path too long", ctx->name);
            return -1;
        }

        *dst++ = '/';
        memcpy(dst, p, len);
        dst += len;
        n++;
    }

    *dst = '\0';

    ctx->pathlen = (size_t) (dst - ctx->path);
    *depth = n;

    return 0;
}


/* writes the directories above ctx->path that are not there yet */

static int
extract_parents(extract_ctx_t *ctx)
{
    char            *key, *slash;
    size_t           len;
    extract_node_t  *node;

    key = ctx->path + ctx->rootlen + 1;

    for (slash = strchr(key, '/'); slash != NULL;
         slash = strchr(slash + 1, '/'))
    {
        len = (size_t) (slash - key);
        node = extract_set_find(&ctx->set, key, len);

        if (node->path != NULL) {
            if (!node->dir) {
                extract_error(ctx, "entry %s: parent \"%.*s\" is a file",
                              ctx->name, (int) len, key);
                return -1;
            }

            continue;
        }

        if (extract_set_add(&ctx->set, node, key, len, 1, 0) != 0) {
            extract_error(ctx, "entry %s: out of memory", ctx->name);
            return -1;
        }

        *slash = '\0';

        if (extract_header(ctx, AE_IFDIR, 0755, 0) != 0) {
            return -1;
        }

        *slash = '/';
    }

    return 0;
}


static int
extract_header(extract_ctx_t *ctx, mode_t type, mode_t perm, int64_t size)
{
    (void) archive_entry_clear(ctx->entry);

    archive_entry_copy_pathname(ctx->entry, ctx->path);
    archive_entry_set_filetype(ctx->entry, type);
    archive_entry_set_perm(ctx->entry, perm);
    archive_entry_set_size(ctx->entry, size);

    if (archive_write_header(ctx->out, ctx->entry) != ARCHIVE_OK) {
        extract_error(ctx, "entry %s: %s", ctx->name,
                      extract_why(ctx, ctx->out));
        return -1;
    }

    if (type == AE_IFDIR
        && archive_write_finish_entry(ctx->out) != ARCHIVE_OK)
    {
        extract_error(ctx, "entry %s: %s", ctx->name,
                      extract_why(ctx, ctx->out));
        return -1;
    }

    return 0;
}


static int
extract_data(extract_ctx_t *ctx, int64_t size)
{
    int          rc;
    size_t       len;
    int64_t      offset;
    const void  *buf;

    for ( ;; ) {
        rc = archive_read_data_block(ctx->in, &buf, &len, &offset);

        if (rc == ARCHIVE_EOF) {
            break;
        }

        if (rc != ARCHIVE_OK) {
            extract_error(ctx, "entry %s: %s", ctx->name,
                          extract_why(ctx, ctx->in));
            return -1;
        }

        /*
         * The header's size is what the limits were checked against; a
         * sparse map can place data past it, and gzip'd zeros cost little.
         */
        if (offset < 0 || offset > size || len > (uint64_t) (size - offset)) {
            extract_error(ctx, "entry %s: data beyond the %lld bytes its "
                          "header gives", ctx->name, (long long) size);
            return -1;
        }

        if (len > 0
            && archive_write_data_block(ctx->out, buf, len, offset)
               != ARCHIVE_OK)
        {
            extract_error(ctx, "entry %s: %s", ctx->name,
                          extract_why(ctx, ctx->out));
            return -1;
        }
    }

    if (archive_write_finish_entry(ctx->out) != ARCHIVE_OK) {
        extract_error(ctx, "entry %s: %s", ctx->name,
                      extract_why(ctx, ctx->out));
        return -1;
    }

    ctx->total += (uint64_t) size;

    return 0;
}


static void
extract_close(extract_ctx_t *ctx)
{
    if (ctx->in != NULL) {
        (void) archive_read_free(ctx->in);
    }

    /* after a failure this sets the modes of the directories made so far */
    if (ctx->out != NULL) {
        (void) archive_write_free(ctx->out);
    }

    if (ctx->entry != NULL) {
        archive_entry_free(ctx->entry);
    }

    if (ctx->fd != -1) {
        (void) close(ctx->fd);
    }

    extract_set_free(&ctx->set);
}


/* the name in double quotes, with C escapes, shortened if need be */

static void
extract_quote(extract_ctx_t *ctx, const char *raw)
{
    char           *dst;
    size_t          n;
    unsigned char   c;

    if (raw == NULL) {
        (void) snprintf(ctx->name, sizeof(ctx->name), "#%llu",
                        (unsigned long long) ctx->entries + 1);
        return;
    }

    dst = ctx->name;
    *dst++ = '"';

    for (n = 0; raw[n] != '\0' && n < EXTRACT_QUOTED; n++) {
        c = (unsigned char) raw[n];

        if (c == '"' || c == '\\') {
            *dst++ = '\\';
            *dst++ = (char) c;

        } else if (c < 0x20 || c == 0x7f) {
            dst += sprintf(dst, "\\x%02x", c);

        } else {
            *dst++ = (char) c;
        }
    }

    if (raw[n] != '\0') {
        memcpy(dst, "...", 3);
        dst += 3;
    }

    *dst++ = '"';
    *dst = '\0';
}


static void
extract_error(extract_ctx_t *ctx, const char *fmt, ...)
{
    va_list  args;

    if (ctx->errlen == 0) {
        return;
    }

    va_start(args, fmt);
    (void) vsnprintf(ctx->err, ctx->errlen, fmt, args);
    va_end(args);
}


static const char *
extract_why(extract_ctx_t *ctx, struct archive *a)
{
    int          e;
    const char  *msg, *sys;

    msg = archive_error_string(a);
    e = archive_errno(a);

    if (msg == NULL) {
        msg = "unknown libarchive error";
    }

    /*
     * Writing to disk, "Write failed" says less than the system's error it
     * comes from (ENOSPC); reading, errno is libarchive's code for a bad
     * format, not the system's.
     */

    if (a != ctx->out || e <= 0 || e == EINVAL || e == EILSEQ) {
        return msg;
    }

    ctx->cause = e;             /* the disk's, not the archive's */

    if (strstr(msg, (sys = strerror(e))) != NULL) {
        return msg;
    }

    snprintf(ctx->why, sizeof(ctx->why), "%s: %s", msg, sys);

    return ctx->why;
}


static int
extract_set_init(extract_set_t *set)
{
    set->size = 64;
    set->used = 0;
    set->nodes = calloc(set->size, sizeof(extract_node_t));

    return (set->nodes == NULL) ? -1 : 0;
}


/* the node holding path, or the empty node where it would go */

static extract_node_t *
extract_set_find(extract_set_t *set, const char *path, size_t len)
{
    size_t           i;
    uint64_t         hash;
    extract_node_t  *node;

    hash = 14695981039346656037ULL;     /* FNV-1a */

    for (i = 0; i < len; i++) {
        hash ^= (unsigned char) path[i];
        hash *= 1099511628211ULL;
    }

    for (i = (size_t) hash & (set->size - 1); /* void */;
         i = (i + 1) & (set->size - 1))
    {
        node = &set->nodes[i];

        if (node->path == NULL
            || (strncmp(node->path, path, len) == 0
                && node->path[len] == '\0'))
        {
            return node;
        }
    }
}


/* fills the empty node found for path; a later find must start over */

static int
extract_set_add(extract_set_t *set, extract_node_t *node, const char *path,
    size_t len, unsigned dir, unsigned named)
{
    size_t           i;
    extract_set_t    bigger;
    extract_node_t  *slot;

    node->path = strndup(path, len);

    if (node->path == NULL) {
        return -1;
    }

    node->dir = dir;
    node->named = named;
    set->used++;

    if (set->used * 2 <= set->size) {
        return 0;
    }

    bigger.size = set->size * 2;
    bigger.used = set->used;
    bigger.nodes = calloc(bigger.size, sizeof(extract_node_t));

    if (bigger.nodes == NULL) {
        return -1;
    }

    for (i = 0; i < set->size; i++) {
        if (set->nodes[i].path != NULL) {
            slot = extract_set_find(&bigger, set->nodes[i].path,
                                    strlen(set->nodes[i].path));
            *slot = set->nodes[i];
        }
    }

    free(set->nodes);
    *set = bigger;

    return 0;
}


static void
extract_set_free(extract_set_t *set)
{
    size_t  i;

    if (set->nodes == NULL) {
        return;
    }

    for (i = 0; i < set->size; i++) {
        free(set->nodes[i].path);
    }

    free(set->nodes);
    set->nodes = NULL;
}
