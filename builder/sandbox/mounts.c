
/*
 * The sandbox: the child's root, the base every tenant gets, the
 * project's own, the binds (sandbox_int.h).
 */

#include "sandbox.h"
#include "sandbox_int.h"


static int sb_child_mounts_own(sb_child_t *c);
static int sb_child_mounts_moved(sb_child_t *c);
static int sb_child_move(sb_child_t *c, int fd, const char *dst, int rw);
static int sb_child_bind(sb_child_t *c, const char *src, const char *dst,
    int rw);
static int sb_child_mkdirs(char *path);


/* what a project sees of /etc, read-only when the host has it */
static const char *const  sb_etc[] = {
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
    "/etc/host.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
    "/etc/localtime", "/etc/ssl", "/etc/ca-certificates",
    "/etc/alternatives", "/etc/mime.types",
    NULL
};

static const char *const  sb_dev[] = {
    "null", "zero", "full", "random", "urandom", "tty", NULL
};

static const char *const  sb_links[][2] = {
    { "usr/bin", "/newroot/bin" }, { "usr/sbin", "/newroot/sbin" },
    { "usr/lib", "/newroot/lib" }, { "usr/lib64", "/newroot/lib64" },
    { "usr/lib32", "/newroot/lib32" }, { "usr/libx32", "/newroot/libx32" },
    { "/proc/self/fd", "/newroot/dev/fd" },
    { "/proc/self/fd/0", "/newroot/dev/stdin" },
    { "/proc/self/fd/1", "/newroot/dev/stdout" },
    { "/proc/self/fd/2", "/newroot/dev/stderr" },
};


int
sb_child_mounts(sb_child_t *c)
{
    if (!c->based && sb_child_mounts_base(c) != 0) {
        return -1;
    }

    return c->pivoted ? sb_child_mounts_moved(c) : sb_child_mounts_own(c);
}


/*
 * A warm loader's, ahead: into the new root, the old one detached (the
 * detach waits for an RCU grace period); /proc's mount point made, its
 * mount left to the child in the new pid namespace.
 */

int
sb_child_mounts_pivot(sb_child_t *c)
{
    if (mkdir("/newroot/proc", 0555) == -1) {
        return sb_child_fail(c, "mkdir", "/proc");
    }

    if (chdir("/newroot") == -1
        || syscall(SYS_pivot_root, ".", ".") == -1)
    {
        return sb_child_fail(c, "pivot_root", "/newroot");
    }

    if (umount2(".", MNT_DETACH) == -1) {
        return sb_child_fail(c, "umount", "the old root");
    }

    if (chdir("/") == -1) {
        return sb_child_fail(c, "chdir", "/");
    }

    return 0;
}


/* what every sandbox's root has: a warm loader makes it ahead */

int
sb_child_mounts_base(sb_child_t *c)
{
    int                      i;
    char                     dst[SB_PATH], src[SB_PATH];

    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1) {
        return sb_child_fail(c, "mount --make-rprivate", "/");
    }

    /* a scratch root, the old one kept at /oldroot */

    if (mount("tmpfs", SB_TMPFS_ROOT, "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=1m") == -1)
    {
        return sb_child_fail(c, "mount tmpfs", SB_TMPFS_ROOT);
    }

    if (mkdir(SB_TMPFS_ROOT "/oldroot", 0755) == -1
        || mkdir(SB_TMPFS_ROOT "/newroot", 0755) == -1)
    {
        return sb_child_fail(c, "mkdir", SB_TMPFS_ROOT);
    }

    if (syscall(SYS_pivot_root, SB_TMPFS_ROOT, SB_TMPFS_ROOT "/oldroot")
        == -1)
    {
        return sb_child_fail(c, "pivot_root", SB_TMPFS_ROOT);
    }

    if (chdir("/") == -1) {
        return sb_child_fail(c, "chdir", "/");
    }

    /* the new root, on a tmpfs of its own */

    if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=1m") == -1)
    {
        return sb_child_fail(c, "mount tmpfs", "/");
    }

    if (sb_child_bind(c, "/oldroot/usr", "/newroot/usr", 0) != 0) {
        return -1;
    }

    for (i = 0; i < (int) (sizeof(sb_links) / sizeof(sb_links[0])); i++) {
        if (strncmp(sb_links[i][1], "/newroot/dev/", 13) == 0) {
            continue;
        }

        sb_cat(src, sizeof(src), "/oldroot/", sb_links[i][0]);

        if (access(src, F_OK) == 0
            && symlink(sb_links[i][0], sb_links[i][1]) == -1)
        {
            return sb_child_fail(c, "symlink", sb_links[i][1]);
        }
    }

    /* /etc: a few of the host's files, and who we are */

    if (mkdir("/newroot/etc", 0755) == -1) {
        return sb_child_fail(c, "mkdir", "/etc");
    }

    for (i = 0; sb_etc[i] != NULL; i++) {
        sb_cat(src, sizeof(src), "/oldroot", sb_etc[i]);
        sb_cat(dst, sizeof(dst), "/newroot", sb_etc[i]);

        if (access(src, F_OK) == 0 && sb_child_bind(c, src, dst, 0) != 0) {
            return -1;
        }
    }

    /* /dev, /tmp */

    if (mkdir("/newroot/dev", 0755) == -1
        || mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
                 "mode=0755,size=64k") == -1)
    {
        return sb_child_fail(c, "mount", "/dev");
    }

    for (i = 0; sb_dev[i] != NULL; i++) {
        sb_cat(src, sizeof(src), "/oldroot/dev/", sb_dev[i]);
        sb_cat(dst, sizeof(dst), "/newroot/dev/", sb_dev[i]);

        if (sb_child_bind(c, src, dst, 1) != 0) {
            return -1;
        }
    }

    for (i = 0; i < (int) (sizeof(sb_links) / sizeof(sb_links[0])); i++) {
        if (strncmp(sb_links[i][1], "/newroot/dev/", 13) == 0
            && symlink(sb_links[i][0], sb_links[i][1]) == -1)
        {
            return sb_child_fail(c, "symlink", sb_links[i][1]);
        }
    }

    if (mkdir("/newroot/tmp", 01777) == -1
        || mount("tmpfs", "/newroot/tmp", "tmpfs",
                 MS_NOSUID | MS_NODEV, "mode=1777,size=64m") == -1)
    {
        return sb_child_fail(c, "mount", "/tmp");
    }

    return 0;
}


/* the spawn's own: who it is, its /proc, the caller's binds; into it */

static int
sb_child_mounts_own(sb_child_t *c)
{
    int                      i;
    char                     dst[SB_PATH], src[SB_PATH];
    const shuttle_spawn_t   *sp;

    sp = c->sp;

    if (sb_child_file("/newroot/etc/passwd", c->passwd) != 0) {
        return sb_child_fail(c, "write", "/etc/passwd");
    }

    /* mounted from inside the pid namespace: its own processes */

    if (mkdir("/newroot/proc", 0555) == -1
        || mount("proc", "/newroot/proc", "proc",
                 MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == -1)
    {
        return sb_child_fail(c, "mount", "/proc");
    }

    /* the caller's: the project's own directories, the loader */

    for (i = 0; i < (int) sp->nbinds; i++) {
        if (strncmp(sp->binds[i].path, "/usr/", 5) == 0) {
            continue;                   /* seen through /usr */
        }

        sb_cat(src, sizeof(src), "/oldroot", sp->binds[i].path);
        sb_cat(dst, sizeof(dst), "/newroot", sp->binds[i].path);

        if (sp->binds[i].optional && access(src, F_OK) != 0) {
            continue;
        }

        if (sb_child_bind(c, src, dst, sp->binds[i].rw) != 0) {
            return -1;
        }
    }

    /* into it; the old root detached */

    if (chdir("/newroot") == -1
        || syscall(SYS_pivot_root, ".", ".") == -1)
    {
        return sb_child_fail(c, "pivot_root", "/newroot");
    }

    if (umount2(".", MNT_DETACH) == -1) {
        return sb_child_fail(c, "umount", "the old root");
    }

    if (chdir("/") == -1) {
        return sb_child_fail(c, "chdir", "/");
    }

    /* the root itself read-only: only /tmp and the binds are written */

    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID
                                | MS_NODEV, NULL) == -1)
    {
        return sb_child_fail(c, "remount read-only", "/");
    }

    return 0;
}


/*
 * The spawn's own in a root made ahead (c->pivoted): who it is, its
 * /proc, the binds' trees the spawner cloned (bindfd[]) moved in; then
 * the root read-only, as sb_child_mounts_own() leaves it.
 */

static int
sb_child_mounts_moved(sb_child_t *c)
{
    int                      i;
    const shuttle_spawn_t   *sp;

    sp = c->sp;

    if (sb_child_file("/etc/passwd", c->passwd) != 0) {
        return sb_child_fail(c, "write", "/etc/passwd");
    }

    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) == -1)
    {
        return sb_child_fail(c, "mount", "/proc");
    }

    for (i = 0; i < (int) sp->nbinds; i++) {
        if (c->bindfd[i] == -1) {
            if (strncmp(sp->binds[i].path, "/usr/", 5) == 0
                || sp->binds[i].optional)
            {
                continue;               /* seen through /usr, or absent */
            }

            errno = ENOENT;
            return sb_child_fail(c, "bind", sp->binds[i].path);
        }

        if (sb_child_move(c, c->bindfd[i], sp->binds[i].path,
                          sp->binds[i].rw)
            != 0)
        {
            return -1;
        }

        close(c->bindfd[i]);
        c->bindfd[i] = -1;
    }

    if (chdir("/") == -1) {
        return sb_child_fail(c, "chdir", "/");
    }

    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID
                                | MS_NODEV, NULL) == -1)
    {
        return sb_child_fail(c, "remount read-only", "/");
    }

    return 0;
}


/* a detached tree on dst (made as a file or a directory as the tree's
 * root is): private, never set-uid, read-only unless rw, every mount of
 * it; the flags the kernel locked kept */

static int
sb_child_move(sb_child_t *c, int fd, const char *dst, int rw)
{
    int                tfd;
    char               path[SB_PATH];
    struct stat        st;
    struct mount_attr  attr;

    if (fstat(fd, &st) == -1) {
        return sb_child_fail(c, "bind", dst);
    }

    if (sb_cat(path, sizeof(path), dst, "") >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return sb_child_fail(c, "bind", dst);
    }

    if (S_ISDIR(st.st_mode)) {
        if (sb_child_mkdirs(path) != 0) {
            return sb_child_fail(c, "mkdir", dst);
        }

    } else {
        *strrchr(path, '/') = '\0';

        if (path[0] != '\0' && sb_child_mkdirs(path) != 0) {
            return sb_child_fail(c, "mkdir", dst);
        }

        tfd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (tfd == -1) {
            return sb_child_fail(c, "create", dst);
        }

        close(tfd);
    }

    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_NOSUID | (rw ? 0 : MOUNT_ATTR_RDONLY);
    attr.propagation = MS_PRIVATE;

    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE,
                &attr, sizeof(attr))
        == -1)
    {
        return sb_child_fail(c, "remount", dst);
    }

    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst,
                MOVE_MOUNT_F_EMPTY_PATH)
        == -1)
    {
        return sb_child_fail(c, "bind", dst);
    }

    return 0;
}


/* src on dst (made as a file or a directory as src is), read-only unless
 * rw, never set-uid; the flags the kernel locked kept */

static int
sb_child_bind(sb_child_t *c, const char *src, const char *dst, int rw)
{
    int             fd;
    char            path[SB_PATH];
    unsigned long   flags;
    struct stat     st;
    struct statvfs  vfs;

    if (stat(src, &st) == -1) {
        return sb_child_fail(c, "bind", src + 8);
    }

    sb_cat(path, sizeof(path), dst, "");

    if (S_ISDIR(st.st_mode)) {
        if (sb_child_mkdirs(path) != 0) {
            return sb_child_fail(c, "mkdir", dst + 8);
        }

    } else {
        *strrchr(path, '/') = '\0';

        if (sb_child_mkdirs(path) != 0) {
            return sb_child_fail(c, "mkdir", dst + 8);
        }

        fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd == -1) {
            return sb_child_fail(c, "create", dst + 8);
        }

        close(fd);
    }

    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) == -1) {
        return sb_child_fail(c, "bind", src + 8);
    }

    if (statvfs(dst, &vfs) == -1) {
        return sb_child_fail(c, "statvfs", dst + 8);
    }

    flags = MS_BIND | MS_REMOUNT | MS_NOSUID;
    flags |= rw ? 0 : MS_RDONLY;
    flags |= (vfs.f_flag & ST_NODEV) ? MS_NODEV : 0;
    flags |= (vfs.f_flag & ST_NOEXEC) ? MS_NOEXEC : 0;
    flags |= (vfs.f_flag & ST_NOATIME) ? MS_NOATIME : 0;
    flags |= (vfs.f_flag & ST_NODIRATIME) ? MS_NODIRATIME : 0;
    flags |= (vfs.f_flag & ST_RELATIME) ? MS_RELATIME : 0;
    flags |= (vfs.f_flag & ST_RDONLY) ? MS_RDONLY : 0;

    if (mount(NULL, dst, NULL, flags, NULL) == -1) {
        return sb_child_fail(c, "remount", dst + 8);
    }

    return 0;
}


/* mkdir -p, in place on path */

static int
sb_child_mkdirs(char *path)
{
    char  *p;

    for (p = path + 1; ; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }

        char  ch = *p;

        *p = '\0';

        if (mkdir(path, 0755) == -1 && errno != EEXIST) {
            *p = ch;
            return -1;
        }

        *p = ch;

        if (ch == '\0') {
            return 0;
        }
    }
}


int
sb_child_file(const char *path, const char *data)
{
    int      fd;
    size_t   len;
    ssize_t  n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        return -1;
    }

    len = strlen(data);
    n = write(fd, data, len);
    close(fd);

    return n == (ssize_t) len ? 0 : -1;
}
