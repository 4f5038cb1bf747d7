
/*
 * The zone's own header, for its files only (zone.h is its contract):
 * the mapping's layout as the builder sees it, and the functions its
 * files share.
 *
 *   zone.c          the file and its mapping: open, attach, create,
 *                   lock, repair, close
 *   slots.c         the slots: set, delete, get, room, rebuild, walk,
 *                   resize; the file written, the helpers
 */

#ifndef SHUTTLE_BUILDER_ZONE_INT_H
#define SHUTTLE_BUILDER_ZONE_INT_H

/* after zone.h: it uses that header's types (and is not included by it,
   so the part and its own header make no include circle) */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"


#define ZONE_NONE     UINT32_MAX

/* a reopen per pass; only a rebuild racing every pass makes this run out */
#define ZONE_LOCK_TRIES  100

/* beside the zone: a resize asked of its running writer, and the answer */
#define ZONE_RESIZE      ".resize"
#define ZONE_RESIZE_DONE ".resize.done"


/*
 * A retired generation's slots, freed off the caller's thread.  The file is
 * unlinked, and whoever drops the last reference to it frees its page cache
 * then: all of it, since the repairs read every slot (90 ms for 16 MiB on
 * a slow VM).  That must not be an nginx worker, which would block in
 * munmap() on its next request.  So, 2 s after the retirement (every
 * worker's lookup sees "retired" first and maps the successor; none is
 * still reading a slot), a thread punches the slots out of the file and
 * closes it: a worker's munmap() then has the header page to free.
 */

typedef struct {
    int     fd;
    size_t  size;
} zone_retired_t;

/* shared between the files of this part */

void zone_unmap(shuttle_zone_t *z);
void zone_release(int fd, size_t size);
int zone_make(const char *path, const struct stat *like,
    uint32_t capacity, uint64_t generation, char **tmp, int *fdp,
    shuttle_zone_header_t **hdrp, size_t *sizep, char *err, size_t errlen);
void zone_unmake(char *tmp, int fd, shuttle_zone_header_t *hdr,
    size_t size);
int zone_writable(shuttle_zone_t *z, char *err, size_t errlen);
uint32_t zone_find(shuttle_zone_header_t *hdr, const char *name,
    size_t len, uint32_t *reuse, uint32_t *empty);
void zone_write(shuttle_zone_slot_t *s, const shuttle_zone_slot_t *v);
void zone_resize_asked(shuttle_zone_t *z);
void zone_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t zone_now_ms(void);
void zone_sync_dir(const char *path);


#endif /* SHUTTLE_BUILDER_ZONE_INT_H */
