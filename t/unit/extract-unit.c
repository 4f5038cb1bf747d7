
/*
 * Unit tests of tarball extraction and tree removal (builder/extract.c),
 * in TAP.  Every archive is made here: with libarchive's writer, or byte
 * by byte where a hostile archive needs what the writer will not write.
 * Files live in a mkdtemp directory under /tmp that is removed at the
 * end.  Each failing extraction is checked twice: the message names the
 * cause, and the target directory is gone.
 */


#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "extract.h"
#include "fsafe.h"


#define ERRLEN  1024


static char  tmpdir[] = "/tmp/extract-unit.XXXXXX";
static char  err[ERRLEN];

#define TAP_LAST_ERROR  err
#include "tap.h"


static char *
tpath(const char *name)
{
    static int   i;
    static char  bufs[8][512];

    /* a few paths may be used at once; keep what must live longer */
    i = (i + 1) % 8;
    snprintf(bufs[i], sizeof(bufs[i]), "%s/%s", tmpdir, name);

    return bufs[i];
}


static int
exists(const char *path)
{
    struct stat  st;

    return lstat(path, &st) == 0;
}


static mode_t
mode_of(const char *path)
{
    struct stat  st;

    if (lstat(path, &st) == -1) {
        return (mode_t) -1;
    }

    return st.st_mode & 07777;
}


/* the file's content as a string, or "" when it cannot be read */

static char *
slurp(const char *path)
{
    int          fd;
    ssize_t      n;
    static char  buf[4096];

    buf[0] = '\0';
    fd = open(path, O_RDONLY);

    if (fd == -1) {
        return buf;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);

    return buf;
}


/* bytes that gzip cannot shrink, the same for the same seed */

static void
noise(unsigned char *buf, size_t len, uint32_t seed)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = (unsigned char) (seed >> 16);
    }
}


static void
spit(const char *path, const void *data, size_t len)
{
    FILE  *f;

    f = fopen(path, "w");

    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        printf("Bail out! writing %s: %s\n", path, strerror(errno));
        exit(1);
    }
}


static void
make_symlink(const char *target, const char *path)
{
    if (symlink(target, path) == -1) {
        printf("Bail out! symlink %s: %s\n", path, strerror(errno));
        exit(1);
    }
}


/* archives made with libarchive's writer -------------------------------- */


static struct archive *
tgz_open(const char *name)
{
    struct archive  *a;

    a = archive_write_new();

    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK
        || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK
        || archive_write_open_filename(a, tpath(name)) != ARCHIVE_OK)
    {
        printf("Bail out! %s: %s\n", name, archive_error_string(a));
        exit(1);
    }

    return a;
}


static void
tgz_add(struct archive *a, const char *path, mode_t type, mode_t perm,
    const void *data, size_t len, const char *link)
{
    struct archive_entry  *e;

    e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, type == AE_IFREG ? (int64_t) len : 0);
    archive_entry_set_mtime(e, 1700000000, 0);

    if (type == AE_IFLNK) {
        archive_entry_set_symlink(e, link);

    } else if (link != NULL) {
        archive_entry_set_hardlink(e, link);
        archive_entry_set_size(e, 0);
    }

    if (type == AE_IFCHR || type == AE_IFBLK) {
        archive_entry_set_rdevmajor(e, 1);
        archive_entry_set_rdevminor(e, 3);
    }

    if (archive_write_header(a, e) != ARCHIVE_OK) {
        printf("Bail out! %s: %s\n", path, archive_error_string(a));
        exit(1);
    }

    if (data != NULL && len > 0 && link == NULL
        && archive_write_data(a, data, len) != (la_ssize_t) len)
    {
        printf("Bail out! %s: %s\n", path, archive_error_string(a));
        exit(1);
    }

    archive_entry_free(e);
}


static void
tgz_file(struct archive *a, const char *path, mode_t perm, const char *data)
{
    tgz_add(a, path, AE_IFREG, perm, data, strlen(data), NULL);
}


static void
tgz_dir(struct archive *a, const char *path, mode_t perm)
{
    tgz_add(a, path, AE_IFDIR, perm, NULL, 0, NULL);
}


static void
tgz_close(struct archive *a)
{
    if (archive_write_close(a) != ARCHIVE_OK) {
        printf("Bail out! closing: %s\n", archive_error_string(a));
        exit(1);
    }

    archive_write_free(a);
}


/* a tarball holding one file of the given name and content */

static const char *
tgz_one(const char *name, const char *path, const char *data)
{
    struct archive  *a;

    a = tgz_open(name);
    tgz_file(a, "ok.c", 0644, "int ok;\n");
    tgz_file(a, path, 0644, data);
    tgz_close(a);

    return tpath(name);
}


/* archives made byte by byte ------------------------------------------- */


typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          size;
} tar_t;


static void
tar_put(tar_t *t, const void *data, size_t len)
{
    while (t->len + len + 512 > t->size) {
        t->size = t->size ? 2 * t->size : 65536;
        t->data = realloc(t->data, t->size);

        if (t->data == NULL) {
            printf("Bail out! out of memory\n");
            exit(1);
        }
    }

    memcpy(t->data + t->len, data, len);
    t->len += len;

    memset(t->data + t->len, 0, (512 - t->len % 512) % 512);
    t->len += (512 - t->len % 512) % 512;
}


static void
tar_header(tar_t *t, const char *name, char type, uint64_t size)
{
    unsigned       i, sum;
    unsigned char  h[512];

    memset(h, 0, sizeof(h));
    strncpy((char *) h, name, 100);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    snprintf((char *) h + 124, 12, "%011llo", (unsigned long long) size);
    memcpy(h + 136, "14524722400", 12);
    memset(h + 148, ' ', 8);
    h[156] = (unsigned char) type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);

    for (sum = 0, i = 0; i < sizeof(h); i++) {
        sum += h[i];
    }

    snprintf((char *) h + 148, 8, "%06o", sum);
    tar_put(t, h, sizeof(h));
}


/* a pax extended header: "len key=value\n" records */

static void
tar_pax(tar_t *t, const char *const *kv)
{
    int     n, len;
    char    rec[600];
    char    body[4096];
    size_t  used;

    for (used = 0; *kv != NULL; kv++) {
        len = (int) strlen(*kv) + 3;

        for ( ;; ) {
            n = snprintf(rec, sizeof(rec), "%d %s\n", len, *kv);

            if (n == len) {
                break;
            }

            len = n;
        }

        memcpy(body + used, rec, (size_t) n);
        used += (size_t) n;
    }

    tar_header(t, "PaxHeaders/x", 'x', used);
    tar_put(t, body, used);
}


/* writes the bytes gzip'd, or as they are */

static const char *
tar_write(tar_t *t, const char *name, int gzip, int end)
{
    unsigned char          zero[1024];
    struct archive        *a;
    struct archive_entry  *e;

    if (end) {
        memset(zero, 0, sizeof(zero));
        tar_put(t, zero, sizeof(zero));
    }

    if (!gzip) {
        spit(tpath(name), t->data, t->len);
        free(t->data);
        return tpath(name);
    }

    a = archive_write_new();
    e = archive_entry_new();
    archive_entry_set_pathname(e, "raw");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (int64_t) t->len);

    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK
        || archive_write_set_format_raw(a) != ARCHIVE_OK
        || archive_write_open_filename(a, tpath(name)) != ARCHIVE_OK
        || archive_write_header(a, e) != ARCHIVE_OK
        || archive_write_data(a, t->data, t->len) != (la_ssize_t) t->len
        || archive_write_close(a) != ARCHIVE_OK)
    {
        printf("Bail out! %s: %s\n", name, archive_error_string(a));
        exit(1);
    }

    archive_entry_free(e);
    archive_write_free(a);
    free(t->data);

    return tpath(name);
}


/* extraction ------------------------------------------------------------ */


static int
extract(const char *tarball, const shuttle_extract_limits_t *limits)
{
    err[0] = '\0';

    return shuttle_extract(tarball, tpath("out"), limits, err, sizeof(err));
}


static void
fails(const char *what, const char *tarball,
    const shuttle_extract_limits_t *limits, const char *expect)
{
    int  rc;

    rc = extract(tarball, limits);
    printf("# %s\n", err);

    ok(rc == -1 && strstr(err, expect) != NULL, "%s: refused with \"%s\"",
       what, expect);
    ok(!exists(tpath("out")), "%s: nothing left on disk", what);

    shuttle_rmtree(NULL, tpath("out"));
}


static void
test_good(void)
{
    mode_t                    old;
    char                      out[512];
    unsigned char             big[4096], back[4096];
    struct archive           *a;
    FILE                     *f;
    size_t                    n;
    shuttle_extract_limits_t  limits;

    shuttle_extract_defaults(&limits);

    ok(limits.max_entries == 10000 && limits.max_total == 256 << 20
       && limits.max_file == 64 << 20 && limits.max_depth == 16,
       "defaults: 10000 entries, 256 MiB, 64 MiB a file, depth 16");

    noise(big, sizeof(big), 1);

    a = tgz_open("good.tgz");
    tgz_dir(a, "./", 0755);
    tgz_dir(a, "./src/", 0700);
    tgz_file(a, "./src/main.c", 0644, "int main(void) { return 0; }\n");
    tgz_file(a, "shuttle.json", 0600, "{\"name\": \"hello\"}\n");
    tgz_file(a, "lib/util/deep/x.h", 0444, "#define X 1\n");
    tgz_dir(a, "lib", 0700);
    tgz_file(a, "bin//run.sh", 0700, "#!/bin/sh\n");
    tgz_file(a, "empty.txt", 0644, "");
    tgz_add(a, "big.bin", AE_IFREG, 0644, big, sizeof(big), NULL);
    tgz_add(a, "suid", AE_IFREG, 04755, "x", 1, NULL);
    tgz_add(a, "sgid", AE_IFREG, 02644, "x", 1, NULL);
    tgz_dir(a, "sticky", 01777);
    tgz_close(a);

    limits.max_file = sizeof(big);
    limits.max_depth = 4;

    /* the modes must not depend on the builder's umask */
    old = umask(077);
    ok(extract(tpath("good.tgz"), &limits) == 0 && err[0] == '\0',
       "a good project extracts (umask 077)");
    umask(old);

    snprintf(out, sizeof(out), "%s", tpath("out"));

    ok(strcmp(slurp(tpath("out/src/main.c")),
              "int main(void) { return 0; }\n") == 0,
       "src/main.c has its content");
    ok(strcmp(slurp(tpath("out/shuttle.json")), "{\"name\": \"hello\"}\n")
       == 0, "shuttle.json has its content");
    ok(strcmp(slurp(tpath("out/lib/util/deep/x.h")), "#define X 1\n") == 0,
       "a file under directories the archive does not list");
    ok(exists(tpath("out/empty.txt"))
       && slurp(tpath("out/empty.txt"))[0] == '\0', "an empty file");

    f = fopen(tpath("out/big.bin"), "r");
    n = f ? fread(back, 1, sizeof(back), f) : 0;

    if (f) {
        fclose(f);
    }

    ok(n == sizeof(big) && memcmp(big, back, n) == 0,
       "a file exactly at the size limit, byte for byte");

    ok(mode_of(out) == 0755, "the directory is 0755");
    ok(mode_of(tpath("out/src")) == 0755, "a 0700 directory is 0755");
    ok(mode_of(tpath("out/lib")) == 0755
       && mode_of(tpath("out/lib/util")) == 0755
       && mode_of(tpath("out/lib/util/deep")) == 0755,
       "directories made for their files are 0755");
    ok(mode_of(tpath("out/src/main.c")) == 0644, "a 0644 file is 0644");
    ok(mode_of(tpath("out/shuttle.json")) == 0644, "a 0600 file is 0644");
    ok(mode_of(tpath("out/lib/util/deep/x.h")) == 0644,
       "a 0444 file is 0644");
    ok(mode_of(tpath("out/bin/run.sh")) == 0755, "a 0700 file is 0755");
    ok(mode_of(tpath("out/suid")) == 0755, "setuid is dropped");
    ok(mode_of(tpath("out/sgid")) == 0644, "setgid is dropped");
    ok(mode_of(tpath("out/sticky")) == 0755, "sticky is dropped");

    ok(shuttle_rmtree(NULL, out) == 0 && !exists(out), "rmtree removes it");
}


static void
test_types(void)
{
    struct archive  *a;

    a = tgz_open("symlink.tgz");
    tgz_file(a, "src/main.c", 0644, "int x;\n");
    tgz_add(a, "src/evil", AE_IFLNK, 0777, NULL, 0, "/etc/passwd");
    tgz_close(a);
    fails("a symbolic link", tpath("symlink.tgz"), NULL,
          "entry \"src/evil\": symbolic links are not allowed");

    a = tgz_open("hardlink.tgz");
    tgz_file(a, "src/main.c", 0644, "int x;\n");
    tgz_add(a, "src/hard", AE_IFREG, 0644, NULL, 0, "src/main.c");
    tgz_close(a);
    fails("a hard link", tpath("hardlink.tgz"), NULL,
          "entry \"src/hard\": hard links are not allowed");

    a = tgz_open("hardlink-out.tgz");
    tgz_add(a, "passwd", AE_IFREG, 0644, NULL, 0, "/etc/passwd");
    tgz_close(a);
    fails("a hard link out of the tree", tpath("hardlink-out.tgz"), NULL,
          "entry \"passwd\": hard links are not allowed");

    a = tgz_open("chr.tgz");
    tgz_add(a, "null", AE_IFCHR, 0666, NULL, 0, NULL);
    tgz_close(a);
    fails("a character device", tpath("chr.tgz"), NULL,
          "entry \"null\": character devices are not allowed");

    a = tgz_open("blk.tgz");
    tgz_add(a, "sda", AE_IFBLK, 0660, NULL, 0, NULL);
    tgz_close(a);
    fails("a block device", tpath("blk.tgz"), NULL,
          "entry \"sda\": block devices are not allowed");

    a = tgz_open("fifo.tgz");
    tgz_file(a, "a.c", 0644, "int a;\n");
    tgz_add(a, "pipe", AE_IFIFO, 0644, NULL, 0, NULL);
    tgz_close(a);
    fails("a FIFO", tpath("fifo.tgz"), NULL,
          "entry \"pipe\": FIFOs are not allowed");
}


static void
test_paths(void)
{
    int                       i;
    char                      deep[128];
    struct archive           *a;
    shuttle_extract_limits_t  limits;

    fails("an absolute path",
          tgz_one("abs.tgz", tpath("abs-escape"), "owned\n"), NULL,
          "absolute paths are not allowed");
    ok(!exists(tpath("abs-escape")), "an absolute path: not written");

    fails("\"../x\"", tgz_one("dotdot.tgz", "../x", "owned\n"), NULL,
          "entry \"../x\": \"..\" components are not allowed");
    ok(!exists(tpath("x")), "\"../x\": not written beside the directory");

    fails("\"a/../../y\"", tgz_one("dotdot2.tgz", "a/../../y", "owned\n"),
          NULL, "entry \"a/../../y\": \"..\" components are not allowed");
    ok(!exists(tpath("y")), "\"a/../../y\": not written");

    fails("\"a/..\"", tgz_one("dotdot3.tgz", "a/..", "x"), NULL,
          "\"..\" components are not allowed");

    fails("a newline in a name", tgz_one("nl.tgz", "src/a\nb.c", "x"), NULL,
          "entry \"src/a\\x0ab.c\": control characters in names are not "
          "allowed");

    fails("an escape in a name", tgz_one("esc.tgz", "\x1b[2Jx.c", "x"), NULL,
          "control characters in names are not allowed");

    fails("DEL in a name", tgz_one("del.tgz", "x\x7f.c", "x"), NULL,
          "control characters in names are not allowed");

    a = tgz_open("dup.tgz");
    tgz_file(a, "src/a.c", 0644, "one\n");
    tgz_file(a, "./src/a.c", 0644, "two\n");
    tgz_close(a);
    fails("the same file twice", tpath("dup.tgz"), NULL,
          "entry \"./src/a.c\": a duplicate of an earlier entry");

    a = tgz_open("dupdir.tgz");
    tgz_dir(a, "src", 0755);
    tgz_dir(a, "src/", 0755);
    tgz_close(a);
    fails("the same directory twice", tpath("dupdir.tgz"), NULL,
          "entry \"src/\": a duplicate of an earlier entry");

    a = tgz_open("filedir.tgz");
    tgz_file(a, "src/a.c", 0644, "x");
    tgz_file(a, "src", 0644, "x");
    tgz_close(a);
    fails("a file over a directory", tpath("filedir.tgz"), NULL,
          "entry \"src\": a file where earlier entries have a directory");

    a = tgz_open("dirfile.tgz");
    tgz_file(a, "src", 0644, "x");
    tgz_file(a, "src/a.c", 0644, "x");
    tgz_close(a);
    fails("a file under a file", tpath("dirfile.tgz"), NULL,
          "entry \"src/a.c\": parent \"src\" is a file");

    shuttle_extract_defaults(&limits);
    limits.max_depth = 4;

    a = tgz_open("depth4.tgz");
    tgz_file(a, "a/b/c/d.c", 0644, "x");
    tgz_close(a);
    ok(extract(tpath("depth4.tgz"), &limits) == 0,
       "4 path components with a limit of 4");
    shuttle_rmtree(NULL, tpath("out"));

    a = tgz_open("depth5.tgz");
    tgz_file(a, "a/b/c/d/e.c", 0644, "x");
    tgz_close(a);
    fails("5 path components", tpath("depth5.tgz"), &limits,
          "entry \"a/b/c/d/e.c\": more than 4 path components");

    a = tgz_open("depth5dir.tgz");
    tgz_dir(a, "./a/b/c/d/e/", 0755);
    tgz_close(a);
    fails("a directory 5 deep", tpath("depth5dir.tgz"), &limits,
          "more than 4 path components");

    deep[0] = '\0';

    for (i = 0; i < 17; i++) {
        strcat(deep, "d/");
    }

    strcat(deep, "x.c");
    fails("18 components, the default limit", tgz_one("deep.tgz", deep, "x"),
          NULL, "more than 16 path components");
}


static void
test_limits(void)
{
    int                       i;
    char                      name[32];
    unsigned char            *zeros;
    struct archive           *a;
    shuttle_extract_limits_t  limits;

    shuttle_extract_defaults(&limits);
    limits.max_entries = 5;

    a = tgz_open("five.tgz");
    tgz_dir(a, "src", 0755);

    for (i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "src/%d.c", i);
        tgz_file(a, name, 0644, "x");
    }

    tgz_close(a);
    ok(extract(tpath("five.tgz"), &limits) == 0,
       "5 entries with a limit of 5");
    shuttle_rmtree(NULL, tpath("out"));

    a = tgz_open("six.tgz");

    for (i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "%d.c", i);
        tgz_file(a, name, 0644, "x");
    }

    tgz_close(a);
    fails("6 entries", tpath("six.tgz"), &limits,
          "entry \"5.c\": more than 5 entries in the archive");

    shuttle_extract_defaults(&limits);
    limits.max_file = 1000;

    zeros = calloc(1, 8 << 20);

    a = tgz_open("file.tgz");
    tgz_add(a, "ok.bin", AE_IFREG, 0644, zeros, 1000, NULL);
    tgz_add(a, "big.bin", AE_IFREG, 0644, zeros, 1001, NULL);
    tgz_close(a);
    fails("a file over the limit", tpath("file.tgz"), &limits,
          "entry \"big.bin\": 1001 bytes, over the limit of 1000 per file");

    shuttle_extract_defaults(&limits);
    limits.max_total = 3000;

    a = tgz_open("total.tgz");

    for (i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "part%d.bin", i);
        tgz_add(a, name, AE_IFREG, 0644, zeros, 1000, NULL);
    }

    tgz_close(a);
    fails("files over the total", tpath("total.tgz"), &limits,
          "entry \"part3.bin\": the files add up to more than the limit of "
          "3000 bytes");

    /* 8 MiB of zeros: some 8 KiB of gzip */
    shuttle_extract_defaults(&limits);
    limits.max_total = 1 << 20;

    a = tgz_open("bomb.tgz");
    tgz_add(a, "zeros", AE_IFREG, 0644, zeros, 8 << 20, NULL);
    tgz_close(a);
    fails("a gzip bomb", tpath("bomb.tgz"), &limits,
          "entry \"zeros\": the files add up to more than the limit of "
          "1048576 bytes");

    free(zeros);
}


/*
 * A GNU sparse file (pax, format 1.0) of size real, with its only data at
 * offset; the map may place it past the size.
 */

static const char *
sparse(const char *name, size_t real, size_t offset, size_t data)
{
    char            map[512], realsize[64], *bytes;
    tar_t           t;
    const char     *kv[5];

    snprintf(realsize, sizeof(realsize), "GNU.sparse.realsize=%zu", real);
    kv[0] = "GNU.sparse.major=1";
    kv[1] = "GNU.sparse.minor=0";
    kv[2] = "GNU.sparse.name=lie.bin";
    kv[3] = realsize;
    kv[4] = NULL;

    memset(&t, 0, sizeof(t));
    memset(map, 0, sizeof(map));
    snprintf(map, sizeof(map), "1\n%zu\n%zu\n", offset, data);

    bytes = malloc(data);
    memset(bytes, 'A', data);

    tar_pax(&t, kv);
    tar_header(&t, "GNUSparseFile.0/lie.bin", '0', 512 + data);
    tar_put(&t, map, sizeof(map));
    tar_put(&t, bytes, data);
    free(bytes);

    return tar_write(&t, name, 1, 1);
}


static void
test_lies(void)
{
    int                       fd;
    char                      half[512];
    tar_t                     t;
    struct stat               st;
    unsigned char             blob[65536], *big;
    struct archive           *a;
    shuttle_extract_limits_t  limits;

    shuttle_extract_defaults(&limits);
    limits.max_file = 1000;

    ok(extract(sparse("sparse.tgz", 1000, 600, 100), &limits) == 0
       && stat(tpath("out/lie.bin"), &st) == 0 && st.st_size == 1000
       && slurp(tpath("out/lie.bin"))[0] == '\0'
       && strncmp(slurp(tpath("out/lie.bin")) + 600, "AAAA", 4) == 0,
       "a sparse file");
    shuttle_rmtree(NULL, tpath("out"));

    fails("a sparse map beyond the header's size",
          sparse("sparse-lie.tgz", 10, 0, 5000), &limits,
          "entry \"lie.bin\": data beyond the 10 bytes its header gives");

    fails("a sparse map beyond the header's size, under the limit",
          sparse("sparse-lie2.tgz", 10, 0, 500), &limits,
          "entry \"lie.bin\": data beyond the 10 bytes its header gives");

    /* the header says 100000 bytes, the archive ends after 1000 */
    memset(&t, 0, sizeof(t));
    noise(blob, sizeof(blob), 2);
    tar_header(&t, "short.bin", '0', 100000);
    tar_put(&t, blob, 1000);
    fails("a header longer than the data", tar_write(&t, "short.tgz", 1, 0),
          NULL, "entry \"short.bin\": ");

    /* the header says 10 bytes, 5000 follow: the rest is no header */
    memset(&t, 0, sizeof(t));
    tar_header(&t, "ten.bin", '0', 10);
    memset(blob, 'A', 5000);
    tar_put(&t, blob, 5000);
    fails("a header shorter than the data", tar_write(&t, "ten.tgz", 1, 1),
          NULL, "ten.tgz: ");

    /* names the tar writer would not write */
    memset(&t, 0, sizeof(t));
    tar_header(&t, "", '0', 1);
    tar_put(&t, "x", 1);
    fails("an empty name", tar_write(&t, "noname.tgz", 1, 1), NULL,
          "entry \"\": empty path");

    memset(&t, 0, sizeof(t));
    tar_header(&t, ".", '0', 1);
    tar_put(&t, "x", 1);
    fails("a file named \".\"", tar_write(&t, "dotfile.tgz", 1, 1), NULL,
          "entry \".\": empty path");

    /* half of a good tarball whose data gzip cannot shrink */
    big = malloc(1 << 20);
    noise(big, 1 << 20, 3);
    a = tgz_open("whole.tgz");
    tgz_file(a, "src/main.c", 0644, "int main(void) { return 0; }\n");
    tgz_add(a, "src/blob", AE_IFREG, 0644, big, 1 << 20, NULL);
    tgz_close(a);
    free(big);

    snprintf(half, sizeof(half), "%s", tpath("whole.tgz"));

    fd = open(half, O_RDWR);
    fstat(fd, &st);
    ok(ftruncate(fd, st.st_size / 2) == 0, "cut a tarball in half");
    close(fd);
    fails("half a tarball", half, NULL, "entry \"src/blob\": ");

    fd = open(half, O_RDWR);
    ok(ftruncate(fd, 100) == 0, "cut a tarball to 100 bytes");
    close(fd);

    fails("100 bytes of a tarball", half, NULL, "whole.tgz: ");
}


static void
test_formats(void)
{
    tar_t                  t;
    unsigned char          junk[4096];
    struct archive        *a;
    struct archive_entry  *e;

    a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, tpath("plain.tar"));
    e = archive_entry_new();
    archive_entry_set_pathname(e, "a.c");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 2);
    archive_write_header(a, e);
    archive_write_data(a, "x\n", 2);
    archive_write_close(a);
    archive_write_free(a);

    fails("a plain tar", tpath("plain.tar"), NULL,
          "plain.tar: not a gzip'd tar archive");

    a = archive_write_new();
    archive_write_set_format_zip(a);
    archive_write_open_filename(a, tpath("x.zip"));
    archive_write_header(a, e);
    archive_write_data(a, "x\n", 2);
    archive_write_close(a);
    archive_write_free(a);

    fails("a zip", tpath("x.zip"), NULL, "x.zip: not a gzip'd tar archive");

    a = archive_write_new();

    if (archive_write_add_filter_bzip2(a) == ARCHIVE_OK) {
        archive_write_set_format_pax_restricted(a);
        archive_write_open_filename(a, tpath("x.tar.bz2"));
        archive_write_header(a, e);
        archive_write_data(a, "x\n", 2);
        archive_write_close(a);

        fails("a tar.bz2", tpath("x.tar.bz2"), NULL,
              "x.tar.bz2: not a gzip'd tar archive");

    } else {
        ok(1, "# SKIP no bzip2 in this libarchive");
        ok(1, "# SKIP no bzip2 in this libarchive");
    }

    archive_write_free(a);
    archive_entry_free(e);

    noise(junk, sizeof(junk), 4);
    spit(tpath("junk.tgz"), junk, sizeof(junk));
    fails("garbage", tpath("junk.tgz"), NULL,
          "junk.tgz: not a gzip'd tar archive");

    memset(&t, 0, sizeof(t));
    tar_put(&t, junk, sizeof(junk));
    fails("gzip'd garbage", tar_write(&t, "gzjunk.tgz", 1, 0), NULL,
          "gzjunk.tgz: not a gzip'd tar archive");

    spit(tpath("empty.tgz"), "", 0);
    fails("an empty file", tpath("empty.tgz"), NULL,
          "empty.tgz: not a gzip'd tar archive");

    fails("a missing tarball", tpath("missing.tgz"), NULL,
          "missing.tgz: No such file or directory");

    fails("a directory for a tarball", tmpdir, NULL, "not a regular file");
}


/* what tar(1) makes of a tree: GNU long names, pax UTF-8 names */

static void
test_tar(void)
{
    int          i;
    char         cmd[1024], longdir[512], longfile[600];
    const char  *format[] = { "gnu", "pax" };

    if (system("tar --version >/dev/null 2>&1") != 0) {
        for (i = 0; i < 4; i++) {
            ok(1, "# SKIP no tar(1)");
        }

        return;
    }

    snprintf(longdir, sizeof(longdir), "%s", tpath("tree"));
    mkdir(longdir, 0755);

    for (i = 0; i < 3; i++) {
        strcat(longdir, "/a-directory-name-well-over-the-hundred-bytes-"
               "of-a-ustar-name-field-once-repeated");
        mkdir(longdir, 0755);
    }

    snprintf(longfile, sizeof(longfile), "%s/main.c", longdir);
    spit(longfile, "long\n", 5);
    mkdir(tpath("tree/caf\xc3\xa9"), 0755);
    spit(tpath("tree/caf\xc3\xa9/\xc3\xbc.c"), "utf-8\n", 6);

    for (i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "tar -C %s --format=%s -czf %s/tar.tgz .",
                 tpath("tree"), format[i], tmpdir);

        ok(system(cmd) == 0 && extract(tpath("tar.tgz"), NULL) == 0,
           "tar(1), format %s: extracts", format[i]);

        snprintf(longfile, sizeof(longfile), "%s/out%s/main.c", tmpdir,
                 longdir + strlen(tpath("tree")));

        ok(strcmp(slurp(longfile), "long\n") == 0
           && strcmp(slurp(tpath("out/caf\xc3\xa9/\xc3\xbc.c")), "utf-8\n")
              == 0, "tar(1), format %s: long and UTF-8 names", format[i]);

        shuttle_rmtree(NULL, tpath("out"));
    }

    shuttle_rmtree(NULL, tpath("tree"));
}


static void
test_target(void)
{
    int   rc, cwd;
    char  tgz[512];

    snprintf(tgz, sizeof(tgz), "%s",
             tgz_one("target.tgz", "src/main.c", "int main;\n"));

    mkdir(tpath("exists"), 0700);
    spit(tpath("exists/keep"), "keep\n", 5);

    rc = shuttle_extract(tgz, tpath("exists"), NULL, err, sizeof(err));
    ok(rc == -1 && strstr(err, "exists: already exists") != NULL,
       "an existing directory: refused");
    ok(strcmp(slurp(tpath("exists/keep")), "keep\n") == 0
       && mode_of(tpath("exists")) == 0700
       && !exists(tpath("exists/src")),
       "an existing directory: left as it was");

    rc = shuttle_extract(tgz, tpath("nowhere/out"), NULL, err, sizeof(err));
    ok(rc == -1 && strstr(err, "nowhere/out: parent") != NULL
       && !exists(tpath("nowhere")), "a missing parent: refused");

    /* the path to the directory may go through a symbolic link */
    mkdir(tpath("real"), 0755);
    make_symlink("real", tpath("link"));

    rc = shuttle_extract(tgz, tpath("link/out/"), NULL, err, sizeof(err));
    ok(rc == 0 && strcmp(slurp(tpath("real/out/src/main.c")), "int main;\n")
       == 0, "a directory reached through a symbolic link");

    cwd = open(".", O_RDONLY | O_DIRECTORY);

    if (cwd == -1 || chdir(tpath("real")) == -1) {
        printf("Bail out! chdir %s: %s\n", tpath("real"), strerror(errno));
        exit(1);
    }

    rc = shuttle_extract(tgz, "relative", NULL, err, sizeof(err));
    ok(rc == 0 && strcmp(slurp("relative/src/main.c"), "int main;\n") == 0,
       "a relative directory");

    if (fchdir(cwd) == -1) {
        printf("Bail out! fchdir: %s\n", strerror(errno));
        exit(1);
    }

    close(cwd);
}


/* as nobody when root, since root needs no rights to remove anything */

static int
rmtree_unprivileged(void)
{
    int    status;
    char   dir[] = "/tmp/extract-unit-perm.XXXXXX";
    char   path[128];
    pid_t  pid;

    pid = fork();

    if (pid == -1) {
        return 0;
    }

    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) == -1 || setuid(65534) == -1)) {
            _exit(2);
        }

        if (mkdtemp(dir) == NULL) {
            _exit(3);
        }

        snprintf(path, sizeof(path), "%s/locked", dir);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/locked/inner", dir);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/locked/inner/f", dir);
        spit(path, "f", 1);
        chmod(path, 0);
        snprintf(path, sizeof(path), "%s/locked/inner", dir);
        chmod(path, 0);
        snprintf(path, sizeof(path), "%s/locked", dir);
        chmod(path, 0500);
        chmod(dir, 0);

        if (shuttle_rmtree(NULL, dir) != 0 || exists(dir)) {
            printf("# rmtree %s: %s\n", dir, strerror(errno));
            fflush(stdout);
            _exit(1);
        }

        _exit(0);
    }

    if (waitpid(pid, &status, 0) != pid) {
        return 0;
    }

    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}


static void
test_rmtree(void)
{
    int            i, fd, next;
    struct rlimit  rl, low;

    mkdir(tpath("outside"), 0755);
    spit(tpath("outside/precious"), "precious\n", 9);

    mkdir(tpath("tree"), 0755);
    mkdir(tpath("tree/a"), 0755);
    mkdir(tpath("tree/a/b"), 0755);
    spit(tpath("tree/a/f"), "f", 1);
    make_symlink(tpath("outside"), tpath("tree/a/to-dir"));
    make_symlink(tpath("outside/precious"), tpath("tree/to-file"));
    mkfifo(tpath("tree/a/fifo"), 0644);

    ok(shuttle_rmtree(NULL, tpath("tree")) == 0 && !exists(tpath("tree")),
       "rmtree: a tree with links and a FIFO");
    ok(strcmp(slurp(tpath("outside/precious")), "precious\n") == 0,
       "rmtree: does not follow symbolic links");

    make_symlink(tpath("outside"), tpath("link-to-dir"));
    ok(shuttle_rmtree(NULL, tpath("link-to-dir")) == 0
       && !exists(tpath("link-to-dir")) && exists(tpath("outside/precious")),
       "rmtree: a symbolic link itself is removed, not its target");

    ok(shuttle_rmtree(NULL, tpath("no-such")) == 0, "rmtree: a missing path");

    /* beneath a root: no link on the way is followed, nothing outside */
    make_symlink(tpath("outside"), tpath("via"));
    errno = 0;
    ok(shuttle_rmtree(tmpdir, tpath("via/precious")) == -1 && errno == ELOOP
       && exists(tpath("outside/precious")),
       "rmtree beneath a root: a link on the way is refused (ELOOP)");
    errno = 0;
    ok(shuttle_rmtree(tpath("via"), tpath("outside")) == -1
       && errno == EXDEV && exists(tpath("outside/precious")),
       "rmtree beneath a root: a path outside it is refused (EXDEV)");
    ok(shuttle_rmtree(tmpdir, tpath("via")) == 0 && !exists(tpath("via"))
       && exists(tpath("outside/precious")),
       "rmtree beneath a root: a link as the last component is removed");

    /* deeper than the descriptors allowed */
    mkdir(tpath("deep"), 0755);
    fd = open(tpath("deep"), O_RDONLY | O_DIRECTORY);

    for (i = 0; i < 300 && fd != -1; i++) {
        mkdirat(fd, "d", 0755);
        next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        close(fd);
        fd = next;
    }

    if (fd != -1) {
        close(fd);
    }

    getrlimit(RLIMIT_NOFILE, &rl);
    low = rl;
    low.rlim_cur = 32;
    setrlimit(RLIMIT_NOFILE, &low);

    ok(i == 300 && shuttle_rmtree(NULL, tpath("deep")) == 0
       && !exists(tpath("deep")), "rmtree: 300 deep with 32 descriptors");

    setrlimit(RLIMIT_NOFILE, &rl);

    ok(rmtree_unprivileged(), "rmtree: directories a build made unreadable "
       "or read-only, without privileges");
}


int
main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }

    test_good();
    test_types();
    test_paths();
    test_limits();
    test_lies();
    test_formats();
    test_tar();
    test_target();
    test_rmtree();

    ok(shuttle_rmtree(NULL, tmpdir) == 0 && !exists(tmpdir),
       "the test directory is removed");

    return tap_done();
}
