
/*
 * What /proc says about other processes: who holds a file's flock(2)
 * lock, and whether a pid (pids are reused) is still the process we
 * think it is.
 */


#ifndef SHUTTLE_BUILDER_PROC_H
#define SHUTTLE_BUILDER_PROC_H


#include <stddef.h>
#include <sys/types.h>


/* the pid holding an flock(2) write lock on path, or 0 when none is seen */
pid_t shuttle_proc_lock_owner(const char *path);

/* the command line of pid, arguments separated by spaces; -1 when gone */
int shuttle_proc_cmdline(pid_t pid, char *buf, size_t len);

/*
 * Is pid a live shuttle-loader running service so (an absolute path, its
 * last argument)?
 */
int shuttle_proc_is_loader(pid_t pid, const char *so);

/*
 * Calls found(pid, so, data) for each live shuttle-loader whose service
 * (its last argument) is under dir: the top one of each, not the child
 * a sandboxed loader's init runs.  Returns the number found, -1 when
 * /proc cannot be read.
 */
int shuttle_proc_each_loader(const char *dir,
    void (*found)(pid_t pid, const char *so, void *data), void *data);


#endif /* SHUTTLE_BUILDER_PROC_H */
