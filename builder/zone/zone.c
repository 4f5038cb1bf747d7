
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


#include "zone.h"
#include "zone_int.h"


static int zone_attach(shuttle_zone_t *z, char *err, size_t errlen);
static int zone_map(shuttle_zone_t *z, int fd, char *err, size_t errlen);
static int zone_create(shuttle_zone_t *z, char *err, size_t errlen);
static void zone_recount(shuttle_zone_t *z);


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


void
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


void
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

int
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


void
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


int
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

uint32_t
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
