
/*
 * Root's file operations on paths a tenant could have shaped.
 *
 * The builder runs as root.  A project's uid writes in its deployment's
 * source while it builds and in its resources while it runs: it can leave
 * symbolic links there, or rename a directory while root walks it.  Root
 * must never be sent elsewhere by either (another project's directory,
 * /etc), so every operation here on such a path:
 *
 *   - resolves it beneath a directory the tenant cannot change, root (the
 *     data directory), with openat2(2) and RESOLVE_BENEATH |
 *     RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: a symbolic link in any
 *     component, the last one included, fails with ELOOP; ".." out of root
 *     or an absolute link with EXDEV.  Nothing is followed.
 *   - goes on from the descriptor it opened, one component at a time
 *     (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, unlinkat, fchownat, renameat), and
 *     never walks a path again: a directory renamed under the walk takes
 *     the walk with it, inside the tree, never out of it.
 *
 * root is a directory the operator gave (its own path is trusted and
 * followed); path is root or a path under it, as callers build it
 * ("ROOT/projects/NAME/..."): one that does not start with root fails with
 * EXDEV.  root NULL trusts path but its last component: for trees the
 * caller made itself (an extraction that failed, the tests' files).
 *
 * Every function returns 0 or a descriptor, or -1 with errno set; those
 * that take err also say there what failed and why, naming the path.
 */


#ifndef SHUTTLE_BUILDER_FSAFE_H
#define SHUTTLE_BUILDER_FSAFE_H


#include <stddef.h>
#include <sys/types.h>


/* openat2(2) beneath dirfd, no link followed; O_CLOEXEC is added */
int shuttle_fsafe_openat(int dirfd, const char *rel, int flags, mode_t mode);

/* the same from a path under root (see above) */
int shuttle_fsafe_open(const char *root, const char *path, int flags,
    mode_t mode);

/*
 * Removes path and, if it is a directory, everything under it; a link is
 * removed, never followed, and so is a link in path itself (the link, not
 * what it names).  A missing path is not an error.  A bounded number of
 * descriptors, whatever the depth.
 */
int shuttle_rmtree(const char *root, const char *path);

/* chown -R with no link followed (a link's own owner changes) */
int shuttle_fsafe_chown(const char *root, const char *path, uid_t uid,
    gid_t gid, char *err, size_t errlen);

/*
 * Moves dir/name to todir/to (renameat(2)); name may have several
 * components, each resolved beneath dir with no link followed; a target
 * that exists is removed first.  dir and todir are descriptors of
 * directories the caller opened safely.
 */
int shuttle_fsafe_rename(int dir, const char *name, int todir,
    const char *to);


#endif /* SHUTTLE_BUILDER_FSAFE_H */
