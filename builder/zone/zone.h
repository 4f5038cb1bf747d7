
/*
 * The routing zone, writer side: create, lock, edit, list and rebuild the
 * zone file laid out in include/shuttle_zone.h.
 *
 * shuttle_zone_open() maps a zone read/write, creating it for capacity
 * projects (0: the default) when it is missing; shuttle_zone_open_ro()
 * maps an existing zone read-only, to print it.  Edits (set, del,
 * rebuild) need the writer lock, shuttle_zone_lock(), held until unlock
 * or close.  shuttle_zone_get() answers like shuttle_zone_lookup(); the
 * others return 0, or -1 with a message in err naming the zone or the
 * project and the cause.
 *
 * A zone holds at most its capacity of projects.  Past it, setting a new
 * project fails, and shuttle_zone_room() says so beforehand, with the
 * message a deploy fails with: the zone, its capacity and the command
 * that grows it.  A resize of a zone that a running builder holds is
 * asked of that builder (shuttle_zone_ask_resize()): it carries it out
 * on its next periodic pass (shuttle_zone_repair()).
 */


#ifndef SHUTTLE_BUILDER_ZONE_H
#define SHUTTLE_BUILDER_ZONE_H


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shuttle_zone.h"


/* 2^25 slots of 128 bytes: a 4 GiB file, sparse */
#define SHUTTLE_ZONE_CAPACITY_MAX  (1u << 24)


typedef struct {
    int                     fd;
    char                   *path;
    shuttle_zone_header_t  *hdr;        /* the mapping, NULL when closed */
    size_t                  size;
    dev_t                   dev;
    ino_t                   ino;
    uint32_t                capacity;   /* for a zone created on reopen */
    unsigned                readonly:1;
    unsigned                locked:1;
    unsigned                created:1;  /* this open created the file */
} shuttle_zone_t;


/* a copy of each LIVE slot; a non-zero return stops the walk */
typedef int (*shuttle_zone_each_pt)(const shuttle_zone_slot_t *slot,
    void *data);


uint32_t shuttle_zone_nslots(uint32_t capacity);

int shuttle_zone_open(shuttle_zone_t *z, const char *path, uint32_t capacity,
    char *err, size_t errlen);
int shuttle_zone_open_ro(shuttle_zone_t *z, const char *path, char *err,
    size_t errlen);
int shuttle_zone_lock(shuttle_zone_t *z, int wait, char *err, size_t errlen);
void shuttle_zone_unlock(shuttle_zone_t *z);
int shuttle_zone_replaced(shuttle_zone_t *z);

int shuttle_zone_set(shuttle_zone_t *z, const char *name, unsigned state,
    uint32_t addr_be, uint16_t port, uint64_t deployment, char *err,
    size_t errlen);
int shuttle_zone_del(shuttle_zone_t *z, const char *name, char *err,
    size_t errlen);
int shuttle_zone_get(shuttle_zone_t *z, const char *name,
    shuttle_zone_slot_t *out);
/* 0 when the name has a slot or a new one fits; else -1, err says why */
int shuttle_zone_room(shuttle_zone_t *z, const char *name, char *err,
    size_t errlen);
/*
 * The writer's periodic pass.  Slots a writer left torn (odd sequence: it
 * died in the middle): a LIVE one whose name is whole is written again as
 * it is, anything else becomes a tombstone; either way readers can copy
 * it again.  Then a resize asked by shuttle_zone_ask_resize() is carried
 * out (and logged).  Only for the zone's writer, under its lock (no
 * write of its own in progress: any odd slot is stuck).  Returns how many
 * slots it repaired.
 */
unsigned shuttle_zone_repair(shuttle_zone_t *z);

int shuttle_zone_rebuild(shuttle_zone_t *z, uint32_t capacity, char *err,
    size_t errlen);
long shuttle_zone_each(shuttle_zone_t *z, shuttle_zone_each_pt handler,
    void *data);

/*
 * Asks the running writer of the zone at path (a builder, which holds its
 * lock) to rebuild it for capacity projects, and waits up to timeout_ms
 * for its answer: 0 once done, else -1 with the writer's reason or the
 * timeout in err.  One ask at a time.
 */
int shuttle_zone_ask_resize(const char *path, uint32_t capacity,
    int timeout_ms, char *err, size_t errlen);

void shuttle_zone_close(shuttle_zone_t *z);


#endif /* SHUTTLE_BUILDER_ZONE_H */
