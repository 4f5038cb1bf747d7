
/*
 * The routing zone, writer side.
 *
 * A zone file appears at its path only complete: it is made under a
 * temporary name in the same directory, then linked (a first zone) or
 * renamed (a new generation) into place.  The writer lock is flock(2) on
 * the file at the path; whoever takes it checks afterwards that the file
 * it locked is still the one at the path, since a rebuild may have
 * replaced it while the lock was awaited.
 *
 * The zone holds at most its capacity of projects, an operator's choice
 * (shuttle-builder zone resize).  While a builder runs it is the one
 * writer, so a resize is asked of it: the asker writes the capacity into
 * PATH.resize, the builder carries the request out on its next periodic
 * pass (shuttle_zone_repair(), every few seconds) and answers in
 * PATH.resize.done, "ok" or "error: " and why.
 */


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
#include "zone.h"


#define ZONE_NONE     UINT32_MAX

/* a reopen per pass; only a rebuild racing every pass makes this run out */
#define ZONE_LOCK_TRIES  100

/* beside the zone: a resize asked of its running writer, and the answer */
#define ZONE_RESIZE      ".resize"
#define ZONE_RESIZE_DONE ".resize.done"


static void zone_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int64_t zone_now_ms(void);
static void zone_sync_dir(const char *path);
static int zone_attach(shuttle_zone_t *z, char *err, size_t errlen);
static int zone_map(shuttle_zone_t *z, int fd, char *err, size_t errlen);
static void zone_unmap(shuttle_zone_t *z);
static int zone_make(const char *path, const struct stat *like,
    uint32_t capacity, uint64_t generation, char **tmp, int *fdp,
    shuttle_zone_header_t **hdrp, size_t *sizep, char *err, size_t errlen);
static void zone_unmake(char *tmp, int fd, shuttle_zone_header_t *hdr,
    size_t size);
static int zone_create(shuttle_zone_t *z, char *err, size_t errlen);
static void zone_recount(shuttle_zone_t *z);
static int zone_writable(shuttle_zone_t *z, char *err, size_t errlen);
static uint32_t zone_find(shuttle_zone_header_t *hdr, const char *name,
    size_t len, uint32_t *reuse, uint32_t *empty);
static void zone_write(shuttle_zone_slot_t *s, const shuttle_zone_slot_t *v);
static void zone_release(int fd, size_t size);
static int zone_put(shuttle_zone_t *z, const char *name, size_t len,
    unsigned state, uint32_t addr_be, uint16_t port, uint64_t deployment,
    int rebuild, char *err, size_t errlen);
static void zone_full(shuttle_zone_t *z, char *err, size_t errlen);
static int zone_resize_paths(const char *path, char *req, char *done);
static void zone_resize_asked(shuttle_zone_t *z);
static int zone_write_file(const char *path, const char *text);


uint32_t
shuttle_zone_nslots(uint32_t capacity)
{
    uint64_t  want, n;

    want = ((uint64_t) capacity * 4 + 2) / 3;

    for (n = 2; n < want; n <<= 1) {
        /* void */
    }

    return (uint32_t) n;
}


int
shuttle_zone_open(shuttle_zone_t *z, const char *path, uint32_t capacity,
    char *err, size_t errlen)
{
    memset(z, 0, sizeof(shuttle_zone_t));
    z->fd = -1;

    if (capacity == 0) {
        capacity = SHUTTLE_ZONE_DEFAULT_CAPACITY;
    }

    if (capacity > SHUTTLE_ZONE_CAPACITY_MAX) {
        zone_error(err, errlen, "zone %s: capacity %u is out of range 1..%u",
                   path, capacity, SHUTTLE_ZONE_CAPACITY_MAX);
        return -1;
    }

    z->capacity = capacity;
    z->path = strdup(path);

    if (z->path == NULL) {
        zone_error(err, errlen, "zone %s: %s", path, strerror(errno));
        return -1;
    }

    if (zone_attach(z, err, errlen) != 0) {
        shuttle_zone_close(z);
        return -1;
    }

    return 0;
}


int
shuttle_zone_open_ro(shuttle_zone_t *z, const char *path, char *err,
    size_t errlen)
{
    memset(z, 0, sizeof(shuttle_zone_t));
    z->fd = -1;
    z->readonly = 1;
    z->path = strdup(path);

    if (z->path == NULL) {
        zone_error(err, errlen, "zone %s: %s", path, strerror(errno));
        return -1;
    }

    if (zone_attach(z, err, errlen) != 0) {
        shuttle_zone_close(z);
        return -1;
    }

    return 0;
}


/*
 * Maps the file at z->path; a writable zone that is missing is created.
 * Another process may create, replace or remove the file meanwhile, hence
 * the few passes.
 */

static int
zone_attach(shuttle_zone_t *z, char *err, size_t errlen)
{
    int  fd, n;

    for (n = 0; n < 8; n++) {
        fd = open(z->path, (z->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);

        if (fd != -1) {
            return zone_map(z, fd, err, errlen);
        }

        if (errno != ENOENT || z->readonly) {
            zone_error(err, errlen, "zone %s: open: %s", z->path,
                       strerror(errno));
            return -1;
        }

        if (zone_create(z, err, errlen) != 0) {
            return -1;
        }
    }

    zone_error(err, errlen, "zone %s: open: the file keeps disappearing",
               z->path);
    return -1;
}


static int
zone_map(shuttle_zone_t *z, int fd, char *err, size_t errlen)
{
    void                   *p;
    size_t                  size;
    struct stat             st;
    const char             *reason;
    shuttle_zone_header_t  *hdr;

    if (fstat(fd, &st) == -1) {
        zone_error(err, errlen, "zone %s: fstat: %s", z->path,
                   strerror(errno));
        goto failed;
    }

    if (!S_ISREG(st.st_mode)) {
        zone_error(err, errlen, "zone %s: not a regular file", z->path);
        goto failed;
    }

    size = (size_t) st.st_size;

    if (size < sizeof(shuttle_zone_header_t)) {
        zone_error(err, errlen, "zone %s: file is shorter than a zone header",
                   z->path);
        goto failed;
    }

    p = mmap(NULL, size, z->readonly ? PROT_READ : PROT_READ | PROT_WRITE,
             MAP_SHARED, fd, 0);

    if (p == MAP_FAILED) {
        zone_error(err, errlen, "zone %s: mmap: %s", z->path,
                   strerror(errno));
        goto failed;
    }

    reason = shuttle_zone_check(p, size);

    /*
     * A rebuild sizes the next file for the capacity: one that the slots
     * could never hold would make a small file a huge one.
     */
    hdr = p;

    if (reason == NULL && hdr->capacity > hdr->nslots) {
        reason = "zone header's capacity is larger than its slots";
    }

    if (reason != NULL) {
        zone_error(err, errlen, "zone %s: %s", z->path, reason);
        (void) munmap(p, size);
        goto failed;
    }

    z->fd = fd;
    z->hdr = p;
    z->size = size;
    z->dev = st.st_dev;
    z->ino = st.st_ino;

    return 0;

failed:

    (void) close(fd);
    return -1;
}


static void
zone_unmap(shuttle_zone_t *z)
{
    if (z->hdr != NULL) {
        (void) munmap(z->hdr, z->size);
        z->hdr = NULL;
    }

    if (z->fd != -1) {
        (void) close(z->fd);
        z->fd = -1;
    }

    z->locked = 0;
}


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


static void *
zone_release_thread(void *arg)
{
    zone_retired_t  *r;
    struct timespec  ts;

    r = arg;

    ts.tv_sec = 2;
    ts.tv_nsec = 0;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }

    /* not every file system punches holes: then nothing is gained */
    (void) fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     SHUTTLE_ZONE_HEADER_SIZE,
                     (off_t) (r->size - SHUTTLE_ZONE_HEADER_SIZE));

    (void) close(r->fd);
    free(r);

    return NULL;
}


static void
zone_release(int fd, size_t size)
{
    char             path[64];
    pthread_t        tid;
    zone_retired_t  *r;
    pthread_attr_t   attr;

    if (fd == -1 || size <= SHUTTLE_ZONE_HEADER_SIZE) {
        return;
    }

    r = malloc(sizeof(zone_retired_t));
    if (r == NULL) {
        return;
    }

    /* a descriptor of its own: a dup() would keep the writer's flock */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    r->fd = open(path, O_RDWR | O_CLOEXEC);
    r->size = size;

    if (r->fd == -1) {
        free(r);
        return;
    }

    (void) pthread_attr_init(&attr);
    (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    if (pthread_create(&tid, &attr, zone_release_thread, r) != 0) {
        (void) close(r->fd);
        free(r);
    }

    (void) pthread_attr_destroy(&attr);
}


/*
 * Makes a zone file under a temporary name beside path: full size (sparse),
 * mode 0644 so that nginx workers can read it, or like's mode and group
 * (the zone it replaces: the builder gives it to nginx's workers' group),
 * the header written, mapped read/write.
 */

static int
zone_make(const char *path, const struct stat *like, uint32_t capacity,
    uint64_t generation, char **tmp, int *fdp, shuttle_zone_header_t **hdrp,
    size_t *sizep, char *err, size_t errlen)
{
    int                     fd;
    char                   *name;
    void                   *p;
    size_t                  len, size;
    uint32_t                nslots;
    shuttle_zone_header_t  *hdr;

    nslots = shuttle_zone_nslots(capacity);
    size = SHUTTLE_ZONE_HEADER_SIZE + (size_t) nslots * SHUTTLE_ZONE_SLOT_SIZE;

    len = strlen(path) + sizeof(".new.XXXXXX");
    name = malloc(len);

    if (name == NULL) {
        zone_error(err, errlen, "zone %s: %s", path, strerror(errno));
        return -1;
    }

    (void) snprintf(name, len, "%s.new.XXXXXX", path);

    fd = mkostemp(name, O_CLOEXEC);

    if (fd == -1) {
        zone_error(err, errlen, "zone %s: creating %s: %s", path, name,
                   strerror(errno));
        free(name);
        return -1;
    }

    if ((like != NULL && fchown(fd, (uid_t) -1, like->st_gid) == -1)
        || fchmod(fd, like ? like->st_mode & 0777 : 0644) == -1)
    {
        zone_error(err, errlen, "zone %s: fchmod %s: %s", path, name,
                   strerror(errno));
        goto failed;
    }

    if (ftruncate(fd, (off_t) size) == -1) {
        zone_error(err, errlen, "zone %s: ftruncate %s to %zu bytes: %s",
                   path, name, size, strerror(errno));
        goto failed;
    }

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    if (p == MAP_FAILED) {
        zone_error(err, errlen, "zone %s: mmap %s: %s", path, name,
                   strerror(errno));
        goto failed;
    }

    hdr = p;
    hdr->magic = SHUTTLE_ZONE_MAGIC;
    hdr->abi = SHUTTLE_ZONE_ABI;
    hdr->header_size = SHUTTLE_ZONE_HEADER_SIZE;
    hdr->slot_size = SHUTTLE_ZONE_SLOT_SIZE;
    hdr->nslots = nslots;
    hdr->capacity = capacity;
    hdr->retired = 0;
    hdr->generation = generation;
    hdr->created_ms = zone_now_ms();
    hdr->live = 0;
    hdr->tombstones = 0;

    *tmp = name;
    *fdp = fd;
    *hdrp = hdr;
    *sizep = size;

    return 0;

failed:

    (void) close(fd);
    (void) unlink(name);
    free(name);

    return -1;
}


static void
zone_unmake(char *tmp, int fd, shuttle_zone_header_t *hdr, size_t size)
{
    (void) munmap(hdr, size);
    (void) close(fd);
    (void) unlink(tmp);
    free(tmp);
}


/*
 * A first zone: link(2) puts the finished file in place unless another
 * process was quicker, in which case its zone is used.
 */

static int
zone_create(shuttle_zone_t *z, char *err, size_t errlen)
{
    int                     fd;
    char                   *tmp;
    size_t                  size;
    shuttle_zone_header_t  *hdr;

    if (zone_make(z->path, NULL, z->capacity, 1, &tmp, &fd, &hdr, &size,
                  err, errlen)
        != 0)
    {
        return -1;
    }

    if (fsync(fd) == -1) {
        zone_error(err, errlen, "zone %s: fsync %s: %s", z->path, tmp,
                   strerror(errno));
        zone_unmake(tmp, fd, hdr, size);
        return -1;
    }

    if (link(tmp, z->path) == -1) {

        if (errno == EEXIST) {
            zone_unmake(tmp, fd, hdr, size);
            return 0;
        }

        zone_error(err, errlen, "zone %s: link from %s: %s", z->path, tmp,
                   strerror(errno));
        zone_unmake(tmp, fd, hdr, size);
        return -1;
    }

    zone_unmake(tmp, fd, hdr, size);
    zone_sync_dir(z->path);

    z->created = 1;

    return 0;
}


int
shuttle_zone_lock(shuttle_zone_t *z, int wait, char *err, size_t errlen)
{
    int  n;

    if (z->readonly || z->hdr == NULL) {
        zone_error(err, errlen, "zone %s: not open for writing", z->path);
        return -1;
    }

    if (z->locked) {
        return 0;
    }

    for (n = 0; n < ZONE_LOCK_TRIES; n++) {

        if (flock(z->fd, LOCK_EX | (wait ? 0 : LOCK_NB)) == -1) {

            if (errno == EINTR) {
                continue;
            }

            if (errno == EWOULDBLOCK) {
                zone_error(err, errlen, "zone %s is owned by another writer "
                           "(a running shuttle-builder?)", z->path);
                return -1;
            }

            zone_error(err, errlen, "zone %s: flock: %s", z->path,
                       strerror(errno));
            return -1;
        }

        z->locked = 1;

        if (!shuttle_zone_replaced(z)) {
            zone_recount(z);
            return 0;
        }

        /* a rebuild renamed a new generation over the one we locked */

        zone_unmap(z);

        if (zone_attach(z, err, errlen) != 0) {
            return -1;
        }
    }

    zone_error(err, errlen, "zone %s: replaced %d times while locking it",
               z->path, ZONE_LOCK_TRIES);
    return -1;
}


void
shuttle_zone_unlock(shuttle_zone_t *z)
{
    if (z->locked) {
        (void) flock(z->fd, LOCK_UN);
        z->locked = 0;
    }
}


/* is the mapped file retired, or no longer the file at the path? */

int
shuttle_zone_replaced(shuttle_zone_t *z)
{
    struct stat  st;

    if (z->hdr == NULL
        || __atomic_load_n(&z->hdr->retired, __ATOMIC_ACQUIRE))
    {
        return 1;
    }

    if (stat(z->path, &st) == -1) {
        return 1;
    }

    return st.st_dev != z->dev || st.st_ino != z->ino;
}


/* a writer that died mid-edit may have left the counters wrong */

static void
zone_recount(shuttle_zone_t *z)
{
    uint32_t              i, live, tombstones;
    shuttle_zone_slot_t  *s;

    live = 0;
    tombstones = 0;

    for (i = 0; i < z->hdr->nslots; i++) {
        s = shuttle_zone_slot(z->hdr, i);

        if (s->kind == SHUTTLE_SLOT_LIVE) {
            live++;

        } else if (s->kind == SHUTTLE_SLOT_TOMBSTONE) {
            tombstones++;
        }
    }

    z->hdr->live = live;
    z->hdr->tombstones = tombstones;
}


static int
zone_writable(shuttle_zone_t *z, char *err, size_t errlen)
{
    if (z->hdr == NULL || z->readonly || !z->locked) {
        zone_error(err, errlen, "zone %s: not locked for writing", z->path);
        return -1;
    }

    return 0;
}


/*
 * Probes for the LIVE slot of a name.  Returns its index or ZONE_NONE;
 * *reuse gets the first TOMBSTONE on the path and *empty the EMPTY slot
 * that ended it (ZONE_NONE for none).  The writer reads its own writes,
 * so no seqlock here, and a slot left torn by a dead writer is matched by
 * name like any other: the next write of it repairs it.
 */

static uint32_t
zone_find(shuttle_zone_header_t *hdr, const char *name, size_t len,
    uint32_t *reuse, uint32_t *empty)
{
    uint32_t              hash, mask, i, n;
    shuttle_zone_slot_t  *s;

    hash = shuttle_zone_hash(name, len);
    mask = hdr->nslots - 1;

    *reuse = ZONE_NONE;
    *empty = ZONE_NONE;

    for (n = 0, i = hash & mask; n < hdr->nslots; n++, i = (i + 1) & mask) {
        s = shuttle_zone_slot(hdr, i);

        if (s->kind == SHUTTLE_SLOT_EMPTY) {
            *empty = i;
            return ZONE_NONE;
        }

        if (s->kind == SHUTTLE_SLOT_LIVE) {

            if (s->hash == hash && s->name_len == len
                && memcmp(s->name, name, len) == 0)
            {
                return i;
            }

        } else if (s->kind == SHUTTLE_SLOT_TOMBSTONE && *reuse == ZONE_NONE) {
            *reuse = i;
        }
    }

    return ZONE_NONE;
}


/*
 * Writes a whole slot but its seq under the seqlock.  An odd seq means a
 * writer died inside this very protocol: the write goes on from it.
 */

unsigned
shuttle_zone_repair(shuttle_zone_t *z)
{
    uint32_t                i;
    unsigned                n;
    shuttle_zone_slot_t     v, *s;
    shuttle_zone_header_t  *hdr;

    if (zone_writable(z, NULL, 0) != 0) {
        return 0;
    }

    hdr = z->hdr;
    n = 0;

    for (i = 0; i < hdr->nslots; i++) {
        s = shuttle_zone_slot(hdr, i);

        if ((__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) & 1) == 0) {
            continue;
        }

        memcpy(&v, s, sizeof(shuttle_zone_slot_t));

        if (v.kind == SHUTTLE_SLOT_LIVE
            && !(v.name_len <= SHUTTLE_ZONE_NAME_MAX
                 && shuttle_valid_name(v.name, v.name_len)
                 && v.hash == shuttle_zone_hash(v.name, v.name_len)))
        {
            /* half a name: nobody's slot any more */
            memset(&v, 0, sizeof(shuttle_zone_slot_t));
            v.kind = SHUTTLE_SLOT_TOMBSTONE;

            if (hdr->live != 0) {
                hdr->live--;
            }

            hdr->tombstones++;
        }

        zone_write(s, &v);
        n++;
    }

    zone_resize_asked(z);

    return n;
}


static void
zone_write(shuttle_zone_slot_t *s, const shuttle_zone_slot_t *v)
{
    uint32_t  seq;

    seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

    if ((seq & 1) == 0) {
        seq++;
        __atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
    }

    __atomic_thread_fence(__ATOMIC_RELEASE);

    memcpy((char *) s + sizeof(s->seq), (const char *) v + sizeof(v->seq),
           sizeof(shuttle_zone_slot_t) - sizeof(s->seq));

    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
}


int
shuttle_zone_set(shuttle_zone_t *z, const char *name, unsigned state,
    uint32_t addr_be, uint16_t port, uint64_t deployment, char *err,
    size_t errlen)
{
    size_t  len;

    if (zone_writable(z, err, errlen) != 0) {
        return -1;
    }

    len = strnlen(name, SHUTTLE_ZONE_NAME_MAX + 1);

    if (!shuttle_valid_name(name, len)) {
        zone_error(err, errlen, "project name \"%.*s\" is not a DNS label "
                   "(1..63 of a-z, 0-9, '-', no '-' at either end)",
                   (int) len, name);
        return -1;
    }

    if (state == SHUTTLE_STATE_NONE || state > SHUTTLE_STATE_MAX) {
        zone_error(err, errlen, "project %s: state %u is out of range 1..%d",
                   name, state, SHUTTLE_STATE_MAX);
        return -1;
    }

    if (state == SHUTTLE_STATE_RUNNING && port == 0) {
        zone_error(err, errlen, "project %s: running with port 0", name);
        return -1;
    }

    return zone_put(z, name, len, state, addr_be, port, deployment, 1,
                    err, errlen);
}


static int
zone_put(shuttle_zone_t *z, const char *name, size_t len, unsigned state,
    uint32_t addr_be, uint16_t port, uint64_t deployment, int rebuild,
    char *err, size_t errlen)
{
    int64_t                 now;
    uint32_t                i, reuse, empty, used;
    shuttle_zone_slot_t     v, *s;
    shuttle_zone_header_t  *hdr;

    hdr = z->hdr;
    now = zone_now_ms();

    i = zone_find(hdr, name, len, &reuse, &empty);

    if (i != ZONE_NONE) {
        s = shuttle_zone_slot(hdr, i);

        memcpy(&v, s, sizeof(shuttle_zone_slot_t));

        if (v.created_ms == 0) {
            v.created_ms = now;
        }

        goto write;
    }

    if (hdr->live >= hdr->capacity) {
        zone_full(z, err, errlen);
        return -1;
    }

    if (reuse == ZONE_NONE) {
        /* an EMPTY slot is taken: keep 1/8 of them to end probes short */

        used = hdr->live + hdr->tombstones + 1;

        if (rebuild
            && (empty == ZONE_NONE || used > (uint64_t) hdr->nslots * 7 / 8))
        {
            if (shuttle_zone_rebuild(z, 0, err, errlen) != 0) {
                return -1;
            }

            return zone_put(z, name, len, state, addr_be, port, deployment,
                            0, err, errlen);
        }

        if (empty == ZONE_NONE || used >= hdr->nslots) {
            zone_error(err, errlen, "zone %s is full: %u projects in %u "
                       "slots", z->path, hdr->live, hdr->nslots);
            return -1;
        }
    }

    s = shuttle_zone_slot(hdr, reuse != ZONE_NONE ? reuse : empty);

    memset(&v, 0, sizeof(shuttle_zone_slot_t));
    v.created_ms = now;

    hdr->live++;

    if (reuse != ZONE_NONE && hdr->tombstones != 0) {
        hdr->tombstones--;
    }

write:

    v.kind = SHUTTLE_SLOT_LIVE;
    v.state = (uint8_t) state;
    v.name_len = (uint8_t) len;
    v.hash = shuttle_zone_hash(name, len);
    v.addr = addr_be;
    v.port = port;
    v.deployment = deployment;
    v.updated_ms = now;
    memset(v.name, 0, sizeof(v.name));
    memcpy(v.name, name, len);

    zone_write(s, &v);

    return 0;
}


/*
 * A project that does not fit is told which zone is full and at what
 * capacity, and what the operator can do: its deploy fails with this.
 */

static void
zone_full(shuttle_zone_t *z, char *err, size_t errlen)
{
    uint64_t  more;

    more = (uint64_t) z->hdr->capacity * 2;

    if (z->hdr->capacity >= SHUTTLE_ZONE_CAPACITY_MAX) {
        zone_error(err, errlen, "zone %s is full: its capacity, %u "
                   "projects, is the largest a zone can have", z->path,
                   z->hdr->capacity);
        return;
    }

    if (more > SHUTTLE_ZONE_CAPACITY_MAX) {
        more = SHUTTLE_ZONE_CAPACITY_MAX;
    }

    zone_error(err, errlen, "zone %s is full: %u projects, its capacity; "
               "the operator makes room for more with \"shuttle-builder "
               "zone %s resize %" PRIu64 "\"", z->path, z->hdr->capacity,
               z->path, more);
}


int
shuttle_zone_room(shuttle_zone_t *z, const char *name, char *err,
    size_t errlen)
{
    size_t    len;
    uint32_t  reuse, empty;

    if (z->hdr == NULL) {
        zone_error(err, errlen, "zone %s: not open", z->path);
        return -1;
    }

    len = strnlen(name, SHUTTLE_ZONE_NAME_MAX + 1);

    if (len != 0 && len <= SHUTTLE_ZONE_NAME_MAX
        && zone_find(z->hdr, name, len, &reuse, &empty) != ZONE_NONE)
    {
        return 0;
    }

    if (z->hdr->live < z->hdr->capacity) {
        return 0;
    }

    zone_full(z, err, errlen);

    return -1;
}


int
shuttle_zone_del(shuttle_zone_t *z, const char *name, char *err,
    size_t errlen)
{
    size_t                len;
    uint32_t              i, reuse, empty;
    shuttle_zone_slot_t   v;

    if (zone_writable(z, err, errlen) != 0) {
        return -1;
    }

    len = strnlen(name, SHUTTLE_ZONE_NAME_MAX + 1);

    i = ZONE_NONE;

    if (len != 0 && len <= SHUTTLE_ZONE_NAME_MAX) {
        i = zone_find(z->hdr, name, len, &reuse, &empty);
    }

    if (i == ZONE_NONE) {
        zone_error(err, errlen, "project %.*s is not in the zone %s",
                   (int) len, name, z->path);
        return -1;
    }

    memset(&v, 0, sizeof(shuttle_zone_slot_t));
    v.kind = SHUTTLE_SLOT_TOMBSTONE;

    zone_write(shuttle_zone_slot(z->hdr, i), &v);

    z->hdr->live -= z->hdr->live ? 1 : 0;
    z->hdr->tombstones++;

    return 0;
}


/* SHUTTLE_ZONE_FOUND, SHUTTLE_ZONE_NOT_FOUND or SHUTTLE_ZONE_BUSY */

int
shuttle_zone_get(shuttle_zone_t *z, const char *name,
    shuttle_zone_slot_t *out)
{
    if (z->hdr == NULL) {
        return SHUTTLE_ZONE_NOT_FOUND;
    }

    return shuttle_zone_lookup(z->hdr, name,
                               strnlen(name, SHUTTLE_ZONE_NAME_MAX + 1), out);
}


/*
 * Writes the next generation: every LIVE slot re-inserted into a new file
 * for capacity (0: the current one), locked, renamed over the path; then
 * retires the old file, whose readers map the path again.
 */

int
shuttle_zone_rebuild(shuttle_zone_t *z, uint32_t capacity, char *err,
    size_t errlen)
{
    int                     fd;
    char                   *tmp;
    size_t                  size;
    uint32_t                i, j, mask, live;
    struct stat             st;
    shuttle_zone_slot_t    *s, *d;
    shuttle_zone_header_t  *old, *hdr;

    if (zone_writable(z, err, errlen) != 0) {
        return -1;
    }

    old = z->hdr;

    if (capacity == 0) {
        capacity = old->capacity ? old->capacity
                                 : SHUTTLE_ZONE_DEFAULT_CAPACITY;
    }

    if (capacity > SHUTTLE_ZONE_CAPACITY_MAX) {
        zone_error(err, errlen, "zone %s: capacity %u is out of range 1..%u",
                   z->path, capacity, SHUTTLE_ZONE_CAPACITY_MAX);
        return -1;
    }

    live = 0;

    for (i = 0; i < old->nslots; i++) {
        s = shuttle_zone_slot(old, i);
        live += s->kind == SHUTTLE_SLOT_LIVE;
    }

    if (live > capacity) {
        zone_error(err, errlen, "zone %s holds %u projects, more than "
                   "capacity %u", z->path, live, capacity);
        return -1;
    }

    if (fstat(z->fd, &st) == -1) {
        zone_error(err, errlen, "zone %s: %s", z->path, strerror(errno));
        return -1;
    }

    if (zone_make(z->path, &st, capacity, old->generation + 1, &tmp, &fd,
                  &hdr, &size, err, errlen)
        != 0)
    {
        return -1;
    }

    mask = hdr->nslots - 1;
    live = 0;

    for (i = 0; i < old->nslots; i++) {
        s = shuttle_zone_slot(old, i);

        if (s->kind != SHUTTLE_SLOT_LIVE
            || !shuttle_valid_name(s->name, s->name_len))
        {
            continue;
        }

        j = shuttle_zone_hash(s->name, s->name_len) & mask;

        for ( ;; ) {
            d = shuttle_zone_slot(hdr, j);

            if (d->kind == SHUTTLE_SLOT_EMPTY) {
                break;
            }

            j = (j + 1) & mask;
        }

        memcpy(d, s, sizeof(shuttle_zone_slot_t));
        d->seq = 0;
        d->hash = shuttle_zone_hash(s->name, s->name_len);

        live++;
    }

    hdr->live = live;

    /* the successor is ours before any other writer can open it */

    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        zone_error(err, errlen, "zone %s: flock %s: %s", z->path, tmp,
                   strerror(errno));
        goto failed;
    }

    if (fsync(fd) == -1 || fstat(fd, &st) == -1) {
        zone_error(err, errlen, "zone %s: fsync %s: %s", z->path, tmp,
                   strerror(errno));
        goto failed;
    }

    if (rename(tmp, z->path) == -1) {
        zone_error(err, errlen, "zone %s: rename from %s: %s", z->path, tmp,
                   strerror(errno));
        goto failed;
    }

    zone_sync_dir(z->path);
    free(tmp);

    __atomic_store_n(&old->retired, 1, __ATOMIC_RELEASE);

    zone_release(z->fd, z->size);
    zone_unmap(z);

    z->fd = fd;
    z->hdr = hdr;
    z->size = size;
    z->dev = st.st_dev;
    z->ino = st.st_ino;
    z->locked = 1;
    z->created = 0;

    return 0;

failed:

    zone_unmake(tmp, fd, hdr, size);
    return -1;
}


/*
 * Calls handler with a consistent copy of each LIVE slot.  Returns the
 * number of slots skipped because they stayed torn, or -1 when handler
 * stopped the walk.
 */

long
shuttle_zone_each(shuttle_zone_t *z, shuttle_zone_each_pt handler,
    void *data)
{
    long                 torn;
    uint32_t             i;
    shuttle_zone_slot_t  copy;

    torn = 0;

    for (i = 0; z->hdr != NULL && i < z->hdr->nslots; i++) {

        if (shuttle_zone_read_slot(shuttle_zone_slot(z->hdr, i), &copy)
            != 0)
        {
            torn++;
            continue;
        }

        if (copy.kind != SHUTTLE_SLOT_LIVE) {
            continue;
        }

        if (handler(&copy, data) != 0) {
            return -1;
        }
    }

    return torn;
}


/*
 * The asking side: writes PATH.resize and waits for PATH.resize.done.
 * The request is renamed into place whole, so the writer never reads
 * half of one; the answer of an earlier ask is removed first.
 */

int
shuttle_zone_ask_resize(const char *path, uint32_t capacity, int timeout_ms,
    char *err, size_t errlen)
{
    int              fd, waited;
    char             req[PATH_MAX], done[PATH_MAX], text[32], answer[600];
    ssize_t          n;
    struct timespec  ts;

    if (zone_resize_paths(path, req, done) != 0) {
        zone_error(err, errlen, "zone %s: path too long", path);
        return -1;
    }

    if (unlink(done) == -1 && errno != ENOENT) {
        zone_error(err, errlen, "zone %s: unlink %s: %s", path, done,
                   strerror(errno));
        return -1;
    }

    snprintf(text, sizeof(text), "%u\n", capacity);

    if (zone_write_file(req, text) != 0) {
        zone_error(err, errlen, "zone %s: writing the request %s: %s", path,
                   req, strerror(errno));
        return -1;
    }

    ts.tv_sec = 0;
    ts.tv_nsec = 20 * 1000000;

    for (waited = 0; waited < timeout_ms; waited += 20) {
        fd = open(done, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

        if (fd == -1) {
            (void) nanosleep(&ts, NULL);
            continue;
        }

        n = read(fd, answer, sizeof(answer) - 1);
        (void) close(fd);
        (void) unlink(done);

        answer[n > 0 ? n : 0] = '\0';
        answer[strcspn(answer, "\n")] = '\0';

        if (strcmp(answer, "ok") == 0) {
            return 0;
        }

        zone_error(err, errlen, "%s", strncmp(answer, "error: ", 7) == 0
                                      ? answer + 7 : answer);
        return -1;
    }

    (void) unlink(req);

    zone_error(err, errlen, "no answer to the request %s in %d s (is the "
               "writer a shuttle-builder older than this command?)", req,
               timeout_ms / 1000);

    return -1;
}


/*
 * The request's and the answer's paths, beside the zone's real path: the
 * asker and the writer may name the zone differently (a relative path, a
 * symbolic link).
 */

static int
zone_resize_paths(const char *path, char *req, char *done)
{
    char         real[PATH_MAX];
    const char  *p;

    p = realpath(path, real) != NULL ? real : path;

    if (snprintf(req, PATH_MAX, "%s" ZONE_RESIZE, p) >= PATH_MAX
        || snprintf(done, PATH_MAX, "%s" ZONE_RESIZE_DONE, p) >= PATH_MAX)
    {
        return -1;
    }

    return 0;
}


/*
 * The writer's side, under its lock, on its periodic pass: a resize that
 * PATH.resize asks for is carried out, logged, and answered.
 */

static void
zone_resize_asked(shuttle_zone_t *z)
{
    int             fd;
    char            req[PATH_MAX], done[PATH_MAX], text[32], err[512];
    char            answer[sizeof(err) + 8];
    char           *end;
    ssize_t         n;
    unsigned long   capacity;

    if (zone_resize_paths(z->path, req, done) != 0) {
        return;
    }

    fd = open(req, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd == -1) {
        return;
    }

    n = read(fd, text, sizeof(text) - 1);
    (void) close(fd);

    text[n > 0 ? n : 0] = '\0';

    errno = 0;
    capacity = strtoul(text, &end, 10);

    if (text[0] < '0' || text[0] > '9' || errno != 0
        || (*end != '\0' && strcmp(end, "\n") != 0)
        || capacity == 0 || capacity > SHUTTLE_ZONE_CAPACITY_MAX)
    {
        zone_error(err, sizeof(err), "zone %s: the resize request is not "
                   "a capacity in 1..%u", z->path,
                   SHUTTLE_ZONE_CAPACITY_MAX);

    } else if (shuttle_zone_rebuild(z, (uint32_t) capacity, err,
                                    sizeof(err))
               == 0)
    {
        err[0] = '\0';
    }

    if (err[0] == '\0') {
        shuttle_log(SHUTTLE_LOG_INFO, "zone %s: resized for %u projects "
                    "(%u slots, generation %" PRIu64 "), as asked by "
                    "shuttle-builder zone resize", z->path,
                    z->hdr->capacity, z->hdr->nslots, z->hdr->generation);
        snprintf(answer, sizeof(answer), "ok\n");

    } else {
        shuttle_log(SHUTTLE_LOG_ERROR, "zone %s: resize asked by "
                    "shuttle-builder zone: %s", z->path, err);
        snprintf(answer, sizeof(answer), "error: %s\n", err);
    }

    if (zone_write_file(done, answer) != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "zone %s: answering the resize "
                    "request in %s: %s", z->path, done, strerror(errno));
    }

    (void) unlink(req);
}


/* a small file put in place whole: written beside it, then renamed */

static int
zone_write_file(const char *path, const char *text)
{
    int     fd, e;
    char    tmp[PATH_MAX];
    size_t  len;

    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int) sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    fd = mkostemp(tmp, O_CLOEXEC);

    if (fd == -1) {
        return -1;
    }

    len = strlen(text);

    if (fchmod(fd, 0644) == -1 || write(fd, text, len) != (ssize_t) len) {
        e = errno ? errno : EIO;
        (void) close(fd);
        (void) unlink(tmp);
        errno = e;
        return -1;
    }

    if (close(fd) == -1 || rename(tmp, path) == -1) {
        e = errno;
        (void) unlink(tmp);
        errno = e;
        return -1;
    }

    return 0;
}


void
shuttle_zone_close(shuttle_zone_t *z)
{
    zone_unmap(z);

    free(z->path);
    z->path = NULL;
}


static void
zone_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (errlen == 0) {
        return;
    }

    va_start(args, fmt);
    (void) vsnprintf(err, errlen, fmt, args);
    va_end(args);
}


static int64_t
zone_now_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* best effort: makes a link or rename durable; the zone works without */

static void
zone_sync_dir(const char *path)
{
    int    fd;
    char  *dir, *slash;

    dir = strdup(path);

    if (dir == NULL) {
        return;
    }

    slash = strrchr(dir, '/');

    if (slash == dir) {
        slash[1] = '\0';

    } else if (slash != NULL) {
        *slash = '\0';
    }

    fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd != -1) {
        (void) fsync(fd);
        (void) close(fd);
    }

    free(dir);
}
