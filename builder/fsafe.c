
/*
 * Root's file operations on paths a tenant could have shaped: see
 * fsafe.h.
 */


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsafe.h"


#define FSAFE_RESOLVE   (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS               \
                         | RESOLVE_NO_MAGICLINKS)
#define FSAFE_CHOWN_MAX_DEPTH  128


typedef struct {
    char    **subdirs;      /* names, left to remove */
    size_t    nsubdirs;
    size_t    next;
    dev_t     dev;
    ino_t     ino;
} rmtree_level_t;


static int fsafe_split(const char *root, const char *path, int *rootfd,
    const char **rel);
static int fsafe_parent(const char *root, const char *path,
    const char **name);
static int rmtree_at(int at, const char *name);
static int rmtree_open(int at, const char *name, struct stat *st);
static int rmtree_scan(int fd, rmtree_level_t *level);
static void rmtree_free(rmtree_level_t *level);
static int chown_tree(int fd, uid_t uid, gid_t gid, unsigned depth);
static DIR *fsafe_opendir(int fd);


int
shuttle_fsafe_openat(int dirfd, const char *rel, int flags, mode_t mode)
{
    struct open_how  how;

    memset(&how, 0, sizeof(struct open_how));
    how.flags = (unsigned) (flags | O_CLOEXEC);
    how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode
                                                                      : 0;
    how.resolve = FSAFE_RESOLVE;

    return (int) syscall(SYS_openat2, dirfd, rel, &how,
                         sizeof(struct open_how));
}


int
shuttle_fsafe_open(const char *root, const char *path, int flags,
    mode_t mode)
{
    int          fd, rootfd, saved;
    const char  *rel;

    if (root == NULL) {
        return open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    }

    if (fsafe_split(root, path, &rootfd, &rel) != 0) {
        return -1;
    }

    fd = shuttle_fsafe_openat(rootfd, rel, flags, mode);

    saved = errno;
    (void) close(rootfd);
    errno = saved;

    return fd;
}


int
shuttle_rmtree(const char *root, const char *path)
{
    int          at, rc, saved;
    char        *copy;
    size_t       len;
    const char  *name;

    /* "dir/" would follow a link dir: the name alone */
    copy = strdup(path);
    if (copy == NULL) {
        return -1;
    }

    len = strlen(copy);

    while (len > 1 && copy[len - 1] == '/') {
        copy[--len] = '\0';
    }

    rc = -1;
    at = fsafe_parent(root, copy, &name);

    if (at == -1) {
        rc = errno == ENOENT ? 0 : -1;
        goto done;
    }

    rc = rmtree_at(at, name);

    if (at != AT_FDCWD) {
        saved = errno;
        (void) close(at);
        errno = saved;
    }

done:

    saved = errno;
    free(copy);
    errno = saved;

    return rc;
}


int
shuttle_fsafe_chown(const char *root, const char *path, uid_t uid,
    gid_t gid, char *err, size_t errlen)
{
    int  fd, rc;

    if (uid == getuid() && gid == getgid()) {
        return 0;               /* a builder that is not root: ours */
    }

    fd = shuttle_fsafe_open(root, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                            0);

    rc = fd == -1 ? -1 : chown_tree(fd, uid, gid, 0);

    if (rc != 0) {
        snprintf(err, errlen, "chown %s to uid %u: %s%s", path,
                 (unsigned) uid,
                 errno == ELOOP ? "a symbolic link on the way: "
                                : errno == EMLINK ? "too deep: " : "",
                 strerror(errno));
    }

    if (fd != -1) {
        (void) close(fd);
    }

    return rc;
}


int
shuttle_fsafe_rename(int dir, const char *name, int todir, const char *to)
{
    int          at, rc, saved;
    char        *parent, *slash;
    const char  *last;
    struct stat  st;

    parent = strdup(name);
    if (parent == NULL) {
        return -1;
    }

    slash = strrchr(parent, '/');

    if (slash == NULL) {
        at = shuttle_fsafe_openat(dir, ".", O_PATH | O_DIRECTORY, 0);
        last = name;

    } else {
        *slash = '\0';
        at = shuttle_fsafe_openat(dir, parent, O_PATH | O_DIRECTORY, 0);
        last = name + (slash - parent) + 1;
    }

    rc = -1;

    if (at == -1) {
        goto done;
    }

    if (fstatat(at, last, &st, AT_SYMLINK_NOFOLLOW) == -1) {
        goto done;
    }

    if (S_ISLNK(st.st_mode)) {
        errno = ELOOP;
        goto done;
    }

    if (rmtree_at(todir, to) != 0) {
        goto done;
    }

    rc = renameat(at, last, todir, to);

done:

    saved = errno;

    if (at != -1) {
        (void) close(at);
    }

    free(parent);
    errno = saved;

    return rc;
}


/* a descriptor of root (followed: the operator's) and path's part under it */

static int
fsafe_split(const char *root, const char *path, int *rootfd,
    const char **rel)
{
    size_t  len;

    len = strlen(root);

    while (len > 1 && root[len - 1] == '/') {
        len--;
    }

    if (strncmp(path, root, len) != 0
        || (path[len] != '/' && path[len] != '\0'))
    {
        errno = EXDEV;
        return -1;
    }

    path += len;

    while (*path == '/') {
        path++;
    }

    *rel = *path ? path : ".";

    *rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

    return *rootfd == -1 ? -1 : 0;
}


/*
 * A descriptor of path's parent (path has no trailing "/"), resolved
 * beneath root with no link followed (trusted for root NULL), and path's
 * last component.
 */

static int
fsafe_parent(const char *root, const char *path, const char **name)
{
    int          fd, rootfd, saved;
    char        *parent;
    const char  *rel, *slash;

    slash = strrchr(path, '/');

    if (root == NULL) {
        *name = path;

        if (slash == NULL) {
            return AT_FDCWD;
        }

        parent = strndup(path, slash == path ? 1 : (size_t) (slash - path));
        if (parent == NULL) {
            return -1;
        }

        *name = slash + 1;
        fd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);

        saved = errno;
        free(parent);
        errno = saved;

        return fd;
    }

    if (fsafe_split(root, path, &rootfd, &rel) != 0) {
        return -1;
    }

    if (rel[0] == '.' && rel[1] == '\0') {
        /* root itself: from its parent, trusted as root is */
        (void) close(rootfd);
        return fsafe_parent(NULL, path, name);
    }

    /* rel's last component; path ends with it */
    slash = strrchr(rel, '/');
    *name = slash ? slash + 1 : rel;

    if (slash == NULL) {
        return rootfd;
    }

    parent = strndup(rel, (size_t) (slash - rel));

    if (parent == NULL) {
        (void) close(rootfd);
        return -1;
    }

    fd = shuttle_fsafe_openat(rootfd, parent, O_PATH | O_DIRECTORY, 0);

    saved = errno;
    free(parent);
    (void) close(rootfd);
    errno = saved;

    return fd;
}


/*
 * The walk holds one descriptor, of the directory it is in, and goes back
 * up through "..", checking that it arrives where it came from: a tree
 * of any depth can go, and a directory moved meanwhile stops the walk
 * rather than sending it elsewhere.
 */

static int
rmtree_at(int at, const char *top)
{
    int              fd, next, saved;
    size_t           depth, nlevels, i;
    const char      *name;
    struct stat      st;
    rmtree_level_t  *levels, *level, *more;

    fd = rmtree_open(at, top, &st);

    if (fd == -1) {
        if (errno == ENOENT) {
            return 0;
        }

        if (errno != ENOTDIR && errno != ELOOP) {
            return -1;
        }

        return (unlinkat(at, top, 0) == -1 && errno != ENOENT) ? -1 : 0;
    }

    nlevels = 16;
    depth = 0;
    levels = calloc(nlevels, sizeof(rmtree_level_t));

    if (levels == NULL) {
        goto failed;
    }

    for ( ;; ) {
        /* fd and st are a directory to empty, one level deeper */

        if (depth == nlevels) {
            more = realloc(levels, 2 * nlevels * sizeof(rmtree_level_t));

            if (more == NULL) {
                goto failed;
            }

            levels = more;
            memset(&levels[nlevels], 0, nlevels * sizeof(rmtree_level_t));
            nlevels *= 2;
        }

        level = &levels[depth++];
        level->dev = st.st_dev;
        level->ino = st.st_ino;

        if (rmtree_scan(fd, level) != 0) {
            goto failed;
        }

        for ( ;; ) {
            if (level->next < level->nsubdirs) {
                name = level->subdirs[level->next++];
                next = rmtree_open(fd, name, &st);

                if (next != -1) {
                    break;
                }

                if (errno == ENOENT) {
                    continue;
                }

                /* made a link or a file since the scan */
                if ((errno == ENOTDIR || errno == ELOOP)
                    && unlinkat(fd, name, 0) == 0)
                {
                    continue;
                }

                goto failed;
            }

            /* level is empty: up, and remove it */

            rmtree_free(level);

            if (--depth == 0) {
                goto done;
            }

            level = &levels[depth - 1];
            next = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

            if (next == -1) {
                goto failed;
            }

            (void) close(fd);
            fd = next;

            if (fstat(fd, &st) == -1) {
                goto failed;
            }

            if (st.st_dev != level->dev || st.st_ino != level->ino) {
                errno = ESTALE;
                goto failed;
            }

            name = level->subdirs[level->next - 1];

            if (unlinkat(fd, name, AT_REMOVEDIR) == -1 && errno != ENOENT) {
                goto failed;
            }
        }

        (void) close(fd);
        fd = next;
    }

done:

    (void) close(fd);
    free(levels);

    return (unlinkat(at, top, AT_REMOVEDIR) == -1 && errno != ENOENT) ? -1
                                                                      : 0;

failed:

    saved = errno;

    (void) close(fd);

    if (levels != NULL) {
        for (i = 0; i < nlevels; i++) {
            rmtree_free(&levels[i]);
        }

        free(levels);
    }

    errno = saved;

    return -1;
}


/*
 * Opens a directory to empty it, and gives its owner the rights that
 * takes: a build may leave directories unreadable or read-only.
 */

static int
rmtree_open(int at, const char *name, struct stat *st)
{
    int   fd, rc, saved;
    char  proc[64];

    fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd == -1 && errno == EACCES) {
        fd = openat(at, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd == -1) {
            return -1;
        }

        /* fchmod() refuses an O_PATH descriptor, its /proc name does not */
        (void) snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        rc = chmod(proc, 0700);
        (void) close(fd);

        if (rc == -1) {
            errno = EACCES;
            return -1;
        }

        fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                              | O_CLOEXEC);
    }

    if (fd == -1) {
        return -1;
    }

    if (fstat(fd, st) == -1
        || ((st->st_mode & 0700) != 0700
            && fchmod(fd, (st->st_mode & 07777) | 0700) == -1))
    {
        saved = errno;
        (void) close(fd);
        errno = saved;
        return -1;
    }

    return fd;
}


/* removes what is not a directory in fd, and lists the directories */

static int
rmtree_scan(int fd, rmtree_level_t *level)
{
    int             isdir, saved;
    DIR            *dir;
    char          **more;
    size_t          n;
    struct stat     st;
    struct dirent  *de;

    dir = fsafe_opendir(fd);

    if (dir == NULL) {
        return -1;
    }

    n = 0;

    for ( ;; ) {
        errno = 0;
        de = readdir(dir);

        if (de == NULL) {
            if (errno != 0) {
                goto failed;
            }

            break;
        }

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }

        isdir = (de->d_type == DT_DIR);

        if (de->d_type == DT_UNKNOWN) {
            if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
                if (errno == ENOENT) {
                    continue;
                }

                goto failed;
            }

            isdir = S_ISDIR(st.st_mode);
        }

        if (!isdir) {
            if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT) {
                continue;
            }

            if (errno != EISDIR) {
                goto failed;
            }
        }

        if (level->nsubdirs == n) {
            n = n ? 2 * n : 8;
            more = realloc(level->subdirs, n * sizeof(char *));

            if (more == NULL) {
                goto failed;
            }

            level->subdirs = more;
        }

        level->subdirs[level->nsubdirs] = strdup(de->d_name);

        if (level->subdirs[level->nsubdirs] == NULL) {
            goto failed;
        }

        level->nsubdirs++;
    }

    (void) closedir(dir);

    return 0;

failed:

    saved = errno;
    (void) closedir(dir);
    errno = saved;

    return -1;
}


static void
rmtree_free(rmtree_level_t *level)
{
    size_t  i;

    for (i = 0; i < level->nsubdirs; i++) {
        free(level->subdirs[i]);
    }

    free(level->subdirs);
    memset(level, 0, sizeof(rmtree_level_t));
}


/* fd, a directory, and everything under it, one descriptor a level */

static int
chown_tree(int fd, uid_t uid, gid_t gid, unsigned depth)
{
    int             sub, rc, saved;
    DIR            *dir;
    struct dirent  *de;

    if (fchown(fd, uid, gid) == -1) {
        return -1;
    }

    if (depth == FSAFE_CHOWN_MAX_DEPTH) {
        errno = EMLINK;
        return -1;
    }

    dir = fsafe_opendir(fd);

    if (dir == NULL) {
        return -1;
    }

    rc = 0;

    for ( ;; ) {
        errno = 0;
        de = readdir(dir);

        if (de == NULL) {
            rc = errno ? -1 : 0;
            break;
        }

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }

        sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                                     | O_CLOEXEC);

        if (sub != -1) {
            rc = chown_tree(sub, uid, gid, depth + 1);
            saved = errno;
            (void) close(sub);
            errno = saved;

        } else if (errno == ENOTDIR || errno == ELOOP) {
            /* a file, or a link: its own owner, never its target's */
            rc = fchownat(fd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);

            if (rc == -1 && errno == ENOENT) {
                rc = 0;                 /* gone since */
            }

        } else if (errno != ENOENT) {
            rc = -1;
        }

        if (rc != 0) {
            break;
        }
    }

    saved = errno;
    (void) closedir(dir);
    errno = saved;

    return rc;
}


/* a directory stream of fd's directory, fd itself left open */

static DIR *
fsafe_opendir(int fd)
{
    int   dfd, saved;
    DIR  *dir;

    dfd = dup(fd);

    if (dfd == -1) {
        return NULL;
    }

    dir = fdopendir(dfd);

    if (dir == NULL) {
        saved = errno;
        (void) close(dfd);
        errno = saved;
    }

    return dir;
}
