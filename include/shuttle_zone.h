/*
 * shuttle_zone.h: the routing zone, the contract between shuttle-builder
 * (the one writer) and every nginx worker (readers).
 *
 * The zone is a file of fixed size, mapped MAP_SHARED by both sides.  It
 * holds a header and a power-of-two array of fixed-width slots, one per
 * project, found by open addressing (linear probing) on the FNV-1a hash of
 * the project name.  There are no pointers in the file: every field is an
 * integer or a fixed character array, so any process maps it anywhere.
 *
 * Who writes what
 *
 *   The builder creates the file (all zeroes, then the header), and is the
 *   only process that ever writes a slot.  It serialises its own writers
 *   with flock(2) on the file; readers never take that lock.
 *
 *   A slot is written under its own seqlock: the writer makes "seq" odd,
 *   writes the fields, then makes "seq" even again (one more than the odd
 *   value).  A reader copies the slot between two reads of "seq" and
 *   retries when they differ or are odd, at most SHUTTLE_ZONE_READ_TRIES
 *   times.  A writer that died mid-write leaves "seq" odd; the next write
 *   of that slot starts from the odd value and leaves it even.  No reader
 *   ever waits on anything another process holds.
 *
 *   The file is never shrunk, truncated or rewritten in place as a whole.
 *   To grow it or to drop accumulated tombstones the builder writes a new
 *   file with generation + 1, renames it over the path, and then sets
 *   "retired" in the old file's header.  A reader that sees "retired" maps
 *   the path again.  Readers also compare the path's inode now and then, so
 *   a zone removed and created anew by hand is noticed too.
 *
 * Slot lifecycle: EMPTY (all zero) -> LIVE -> TOMBSTONE -> LIVE ...
 *   A probe stops at an EMPTY slot and skips TOMBSTONE slots.  An insert
 *   reuses the first TOMBSTONE met on the probe path.  Slots never move, so
 *   a reader probing concurrently with a writer can miss only the one
 *   project being inserted or deleted at that moment, never another.
 */

#ifndef SHUTTLE_ZONE_H
#define SHUTTLE_ZONE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>


#define SHUTTLE_ZONE_MAGIC        0x454e4f5a4c545453ULL  /* "STTLZONE" */
#define SHUTTLE_ZONE_ABI          1

#define SHUTTLE_ZONE_HEADER_SIZE  256
#define SHUTTLE_ZONE_SLOT_SIZE    128

/* a project name is a DNS label: 1..63 of [a-z0-9-], no '-' at either end */
#define SHUTTLE_ZONE_NAME_MAX     63

/*
 * default capacity: live projects a zone created without a size holds;
 * slots = the power of two at or above capacity * 4 / 3 (load <= 0.75)
 */
#define SHUTTLE_ZONE_DEFAULT_CAPACITY  50000

/* reads of a slot that is being written before a reader gives up */
#define SHUTTLE_ZONE_READ_TRIES   64


/* slot.kind */
#define SHUTTLE_SLOT_EMPTY        0
#define SHUTTLE_SLOT_LIVE         1
#define SHUTTLE_SLOT_TOMBSTONE    2


/*
 * slot.state: what nginx does with a request for the project.
 *
 *   QUEUED, BUILDING, LOADING   503 with Retry-After: a deployment is coming
 *   RUNNING                     proxied to addr:port
 *   FAILED                      502 naming the deployment that failed
 *   IDLE                        scaled to zero: proxied to addr:port, where
 *                               the builder's socket queues the connection
 *                               until the loader it starts accepts it
 *   STOPPED                     503: the project is stopped by its owner
 */
#define SHUTTLE_STATE_NONE        0
#define SHUTTLE_STATE_QUEUED      1
#define SHUTTLE_STATE_BUILDING    2
#define SHUTTLE_STATE_LOADING     3
#define SHUTTLE_STATE_RUNNING     4
#define SHUTTLE_STATE_FAILED      5
#define SHUTTLE_STATE_IDLE        6
#define SHUTTLE_STATE_STOPPED     7
#define SHUTTLE_STATE_MAX         7


/*
 * The header, at offset 0.  Written once by the builder when it creates the
 * file; afterwards only "retired", "live" and "tombstones" change.
 */
typedef struct {
    uint64_t  magic;        /* SHUTTLE_ZONE_MAGIC */
    uint32_t  abi;          /* SHUTTLE_ZONE_ABI; readers refuse others */
    uint32_t  header_size;  /* offset of slot 0 */
    uint32_t  slot_size;    /* SHUTTLE_ZONE_SLOT_SIZE */
    uint32_t  nslots;       /* a power of two */
    uint32_t  capacity;     /* most live projects the writer will insert */
    uint32_t  retired;      /* 1: a newer generation lives at the path */
    uint64_t  generation;   /* 1 for a first zone, +1 for each successor */
    int64_t   created_ms;   /* creation time, ms since the epoch */
    uint32_t  live;         /* LIVE slots (writer's count, informational) */
    uint32_t  tombstones;   /* TOMBSTONE slots (writer's count) */
    uint8_t   reserved[SHUTTLE_ZONE_HEADER_SIZE - 56];
} shuttle_zone_header_t;


/*
 * A slot.  Every field but "seq" is written only inside the slot's seqlock.
 */
typedef struct {
    uint32_t  seq;          /* seqlock: odd while a write is in progress */
    uint8_t   kind;         /* SHUTTLE_SLOT_* */
    uint8_t   state;        /* SHUTTLE_STATE_* */
    uint8_t   name_len;     /* bytes of name, 1..SHUTTLE_ZONE_NAME_MAX */
    uint8_t   reserved0;
    uint32_t  hash;         /* shuttle_zone_hash(name) */
    uint32_t  addr;         /* upstream IPv4 address, network byte order */
    uint16_t  port;         /* upstream port, host byte order */
    uint16_t  reserved1;
    uint32_t  reserved2;
    uint64_t  deployment;   /* id of the deployment this slot describes */
    int64_t   created_ms;   /* when the project got this slot */
    int64_t   updated_ms;   /* time of the last write */
    char      name[SHUTTLE_ZONE_NAME_MAX + 1];  /* lowercase, NUL padded */
    uint8_t   reserved3[SHUTTLE_ZONE_SLOT_SIZE - 112];
} shuttle_zone_slot_t;


typedef char shuttle_zone_header_size_check[
    sizeof(shuttle_zone_header_t) == SHUTTLE_ZONE_HEADER_SIZE ? 1 : -1];
typedef char shuttle_zone_slot_size_check[
    sizeof(shuttle_zone_slot_t) == SHUTTLE_ZONE_SLOT_SIZE ? 1 : -1];


/* results of shuttle_zone_lookup() */
#define SHUTTLE_ZONE_FOUND        0
#define SHUTTLE_ZONE_NOT_FOUND    1
#define SHUTTLE_ZONE_BUSY         2   /* a slot stayed torn: try again */


static inline uint32_t
shuttle_zone_hash(const char *name, size_t len)
{
    uint32_t  h;
    size_t    i;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) name[i];
        h *= 16777619u;
    }

    return h;
}


/* between two reads of a slot being written: let the writer run */
static inline void
shuttle_zone_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__ ("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__ ("yield");
#endif
}


static inline shuttle_zone_slot_t *
shuttle_zone_slot(const shuttle_zone_header_t *zh, uint32_t i)
{
    return (shuttle_zone_slot_t *) ((char *) zh + zh->header_size
                                    + (size_t) i * zh->slot_size);
}


/*
 * Copies a slot consistently into *out.  Returns 0, or -1 when every try
 * saw a write in progress.
 *
 * The seqlock's barriers: the writer makes seq odd, then (a release fence)
 * writes the fields, then makes seq even with a release store.  The
 * reader loads seq with acquire, so the fields it copies next are no
 * older than that seq; copies them with relaxed atomic loads, word by
 * word (a racing write is expected and caught, not undefined behaviour);
 * then an acquire fence orders those loads before the second load of seq.
 * Equal and even, the copy is one version of the slot.
 */
static inline int
shuttle_zone_read_slot(const shuttle_zone_slot_t *s, shuttle_zone_slot_t *out)
{
    int              n;
    size_t           i;
    uint32_t         s1, s2;
    uint64_t        *dst;
    const uint64_t  *src;

    src = (const uint64_t *) (const void *) s;
    dst = (uint64_t *) (void *) out;

    for (n = 0; n < SHUTTLE_ZONE_READ_TRIES; n++) {
        s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

        /* copied even when odd: a torn copy still says whose slot it is */

        for (i = 0; i < sizeof(shuttle_zone_slot_t) / sizeof(uint64_t); i++) {
            dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        }

        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

        if (s1 == s2 && !(s1 & 1)) {
            return 0;
        }

        shuttle_zone_cpu_pause();
    }

    return -1;
}


/*
 * Finds the LIVE slot of a project name (already lowercase) among the
 * nslots slots of the zone at base and copies it into *out.  nslots is
 * the caller's copy of a validated header's (shuttle_zone_check()), never
 * re-read from a file someone may rewrite; the slots are where the exact
 * header and slot sizes put them.  O(1) expected, no allocation, no
 * lock.  The probe is bounded by the slot count, so a damaged file cannot
 * make it loop.  A slot that stays torn (a writer died in it) is stepped
 * over unless the torn copy names this project: SHUTTLE_ZONE_BUSY then.
 */
static inline int
shuttle_zone_find(const void *base, uint32_t nslots, const char *name,
    size_t len, shuttle_zone_slot_t *out)
{
    uint32_t              hash, mask, i, n;
    shuttle_zone_slot_t  *s;

    if (len == 0 || len > SHUTTLE_ZONE_NAME_MAX || nslots == 0) {
        return SHUTTLE_ZONE_NOT_FOUND;
    }

    hash = shuttle_zone_hash(name, len);
    mask = nslots - 1;

    for (n = 0, i = hash & mask; n < nslots; n++, i = (i + 1) & mask) {
        s = (shuttle_zone_slot_t *) ((char *) base + SHUTTLE_ZONE_HEADER_SIZE
                                     + (size_t) i * SHUTTLE_ZONE_SLOT_SIZE);

        if (shuttle_zone_read_slot(s, out) != 0) {
            /* torn: busy if what the copy says is this name, else on */

            if (out->hash == hash && out->name_len == len
                && memcmp(out->name, name, len) == 0)
            {
                return SHUTTLE_ZONE_BUSY;
            }

            continue;
        }

        if (out->kind == SHUTTLE_SLOT_EMPTY) {
            break;
        }

        if (out->kind == SHUTTLE_SLOT_LIVE
            && out->hash == hash
            && out->name_len == len
            && memcmp(out->name, name, len) == 0)
        {
            return SHUTTLE_ZONE_FOUND;
        }
    }

    return SHUTTLE_ZONE_NOT_FOUND;
}


/* the same in a zone whose header is the one to trust (the builder's) */
static inline int
shuttle_zone_lookup(const shuttle_zone_header_t *zh, const char *name,
    size_t len, shuttle_zone_slot_t *out)
{
    return shuttle_zone_find(zh, zh->nslots, name, len, out);
}


/*
 * Checks a mapped header against the file size.  Returns NULL when the
 * zone is usable, else the reason.
 */
static inline const char *
shuttle_zone_check(const shuttle_zone_header_t *zh, size_t size)
{
    if (size < SHUTTLE_ZONE_HEADER_SIZE) {
        return "file is shorter than a zone header";
    }

    if (zh->magic != SHUTTLE_ZONE_MAGIC) {
        return "not a shuttle zone (bad magic)";
    }

    if (zh->abi != SHUTTLE_ZONE_ABI) {
        return "zone ABI version differs from this build's";
    }

    if (zh->slot_size != SHUTTLE_ZONE_SLOT_SIZE
        || zh->header_size != SHUTTLE_ZONE_HEADER_SIZE
        || zh->nslots == 0 || (zh->nslots & (zh->nslots - 1)) != 0
        || zh->header_size + (uint64_t) zh->nslots * zh->slot_size > size)
    {
        return "zone header does not match the file size";
    }

    return NULL;
}


static inline const char *
shuttle_zone_state_name(unsigned state)
{
    static const char  *names[] = {
        "none", "queued", "building", "loading", "running", "failed",
        "idle", "stopped"
    };

    return state <= SHUTTLE_STATE_MAX ? names[state] : "unknown";
}


/* a DNS label: 1..63 of [a-z0-9-], not starting or ending with '-' */
static inline int
shuttle_valid_name(const char *name, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > SHUTTLE_ZONE_NAME_MAX
        || name[0] == '-' || name[len - 1] == '-')
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return 0;
        }
    }

    return 1;
}


#endif /* SHUTTLE_ZONE_H */
