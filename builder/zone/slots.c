
/*
 * The zone: its slots written, deleted, read, rebuilt and walked, and a
 * resize asked of nginx (zone_int.h).
 */

#include "zone.h"
#include "zone_int.h"


static int zone_put(shuttle_zone_t *z, const char *name, size_t len,
    unsigned state, uint32_t addr_be, uint16_t port, uint64_t deployment,
    int rebuild, char *err, size_t errlen);
static void zone_full(shuttle_zone_t *z, char *err, size_t errlen);
static int zone_resize_paths(const char *path, char *req, char *done);
static int zone_write_file(const char *path, const char *text);


void
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

void
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


void
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


int64_t
zone_now_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* best effort: makes a link or rename durable; the zone works without */

void
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
