
/*
 * Unit tests of the zone writer (builder/zone/) and of the reader side
 * of include/shuttle_zone.h, in TAP.  Files live in a mkdtemp directory
 * under /tmp that is removed at the end.
 */


#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zone.h"


#define ERRLEN  512


static char  tmpdir[] = "/tmp/zone-unit.XXXXXX";
static char  err[ERRLEN];

#define TAP_LAST_ERROR  err
#include "tap.h"


static char *
zpath(const char *name)
{
    static char  buf[256];

    snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);

    return buf;
}


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
sleep_ms(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }
}


/* temporary files (NAME.new.XXXXXX) left in tmpdir */

static int
count_temps(void)
{
    int             n;
    DIR            *d;
    struct dirent  *e;

    n = 0;
    d = opendir(tmpdir);

    if (d == NULL) {
        return -1;
    }

    while ((e = readdir(d)) != NULL) {
        n += strstr(e->d_name, ".new.") != NULL;
    }

    closedir(d);

    return n;
}


static void
cleanup(void)
{
    DIR            *d;
    char            path[512];
    struct dirent  *e;

    d = opendir(tmpdir);

    if (d == NULL) {
        return;
    }

    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
    }

    closedir(d);
    rmdir(tmpdir);
}


/* a zone at tmpdir/name, created and locked; exits when that fails */

static void
zone_new(shuttle_zone_t *z, const char *name, uint32_t capacity)
{
    if (shuttle_zone_open(z, zpath(name), capacity, err, ERRLEN) != 0
        || shuttle_zone_lock(z, 0, err, ERRLEN) != 0)
    {
        printf("Bail out! zone %s: %s\n", name, err);
        cleanup();
        exit(1);
    }
}


static int
set(shuttle_zone_t *z, const char *name, uint16_t port, uint64_t dep)
{
    return shuttle_zone_set(z, name, SHUTTLE_STATE_RUNNING,
                            htonl(0x7f000001), port, dep, err, ERRLEN);
}


static int
found(shuttle_zone_t *z, const char *name)
{
    shuttle_zone_slot_t  slot;

    return shuttle_zone_get(z, name, &slot) == SHUTTLE_ZONE_FOUND;
}


/* the slot holding name, by a scan that ignores seq */

static shuttle_zone_slot_t *
slot_of(shuttle_zone_t *z, const char *name)
{
    uint32_t              i;
    size_t                len;
    shuttle_zone_slot_t  *s;

    len = strlen(name);

    for (i = 0; i < z->hdr->nslots; i++) {
        s = shuttle_zone_slot(z->hdr, i);

        if (s->kind == SHUTTLE_SLOT_LIVE && s->name_len == len
            && memcmp(s->name, name, len) == 0)
        {
            return s;
        }
    }

    return NULL;
}


static uint32_t
index_of(shuttle_zone_t *z, const char *name)
{
    shuttle_zone_slot_t  *s;

    s = slot_of(z, name);

    if (s == NULL) {
        return UINT32_MAX;
    }

    return (uint32_t) (((char *) s - (char *) z->hdr - z->hdr->header_size)
                       / z->hdr->slot_size);
}


static void
test_create(void)
{
    struct stat     st, st2;
    shuttle_zone_t  z, z2;

    ok(shuttle_zone_nslots(50000) == 131072
       && shuttle_zone_nslots(4) == 8
       && shuttle_zone_nslots(3) == 4
       && shuttle_zone_nslots(12) == 16
       && shuttle_zone_nslots(13) == 32
       && shuttle_zone_nslots(1) == 2,
       "nslots: the power of two at or above capacity * 4 / 3");

    ok(shuttle_zone_open(&z, zpath("default"), 0, err, ERRLEN) == 0,
       "open creates a zone");

    ok(z.created && z.hdr->magic == SHUTTLE_ZONE_MAGIC
       && z.hdr->abi == SHUTTLE_ZONE_ABI
       && z.hdr->header_size == SHUTTLE_ZONE_HEADER_SIZE
       && z.hdr->slot_size == SHUTTLE_ZONE_SLOT_SIZE
       && z.hdr->retired == 0 && z.hdr->generation == 1
       && z.hdr->live == 0 && z.hdr->tombstones == 0,
       "new zone header: magic, abi, sizes, generation 1, empty");

    ok(z.hdr->nslots == 131072 && z.hdr->capacity == 50000,
       "default capacity 50000 in 131072 slots");

    ok(z.hdr->created_ms > now_ms() - 60000
       && z.hdr->created_ms <= now_ms(),
       "created_ms is now");

    ok(stat(zpath("default"), &st) == 0
       && st.st_size == 256 + 131072 * 128 && z.size == (size_t) st.st_size
       && (st.st_mode & 0777) == 0644,
       "file: 256 + 131072 * 128 bytes, mode 0644");

    ok(count_temps() == 0, "no temporary file left behind");

    ok(shuttle_zone_open(&z2, zpath("default"), 10, err, ERRLEN) == 0
       && !z2.created && stat(zpath("default"), &st2) == 0
       && st2.st_ino == st.st_ino && z2.hdr->nslots == 131072,
       "open of an existing zone uses it, whatever the capacity asked");

    ok(shuttle_zone_lock(&z, 0, err, ERRLEN) == 0, "writer lock taken");

    ok(shuttle_zone_lock(&z2, 0, err, ERRLEN) == -1
       && strstr(err, "is owned by another writer") != NULL
       && strstr(err, zpath("default")) != NULL,
       "second writer refused: %s", err);

    ok(set(&z2, "x", 1, 1) == -1 && strstr(err, "not locked") != NULL,
       "set without the lock refused");

    shuttle_zone_close(&z);

    ok(shuttle_zone_lock(&z2, 0, err, ERRLEN) == 0,
       "lock free again once the first writer closed");

    shuttle_zone_close(&z2);

    ok(shuttle_zone_open(&z, zpath("default"), SHUTTLE_ZONE_CAPACITY_MAX + 1,
                         err, ERRLEN) == -1
       && strstr(err, "out of range") != NULL,
       "capacity above the maximum refused");

    ok(shuttle_zone_open_ro(&z, zpath("missing"), err, ERRLEN) == -1
       && strstr(err, "No such file") != NULL
       && access(zpath("missing"), F_OK) == -1,
       "read-only open of a missing zone fails, creates nothing");
}


static void
test_set_get_del(void)
{
    int64_t               created;
    shuttle_zone_t        z;
    shuttle_zone_slot_t   slot, *s;

    zone_new(&z, "basic", 0);

    ok(shuttle_zone_set(&z, "hello", SHUTTLE_STATE_RUNNING,
                        htonl(0x7f000001), 8001, 12, err, ERRLEN) == 0,
       "set hello");

    ok(shuttle_zone_get(&z, "hello", &slot) == SHUTTLE_ZONE_FOUND
       && slot.kind == SHUTTLE_SLOT_LIVE
       && slot.state == SHUTTLE_STATE_RUNNING
       && slot.addr == htonl(0x7f000001) && slot.port == 8001
       && slot.deployment == 12 && slot.name_len == 5
       && strcmp(slot.name, "hello") == 0
       && slot.hash == shuttle_zone_hash("hello", 5)
       && slot.created_ms == slot.updated_ms && slot.created_ms > 0
       && (slot.seq & 1) == 0,
       "get hello: every field round-trips");

    ok(z.hdr->live == 1 && z.hdr->tombstones == 0, "live 1");

    s = slot_of(&z, "hello");
    created = slot.created_ms;

    sleep_ms(5);

    ok(shuttle_zone_set(&z, "hello", SHUTTLE_STATE_BUILDING,
                        htonl(0x0a000001), 0, 13, err, ERRLEN) == 0
       && shuttle_zone_get(&z, "hello", &slot) == SHUTTLE_ZONE_FOUND
       && slot.state == SHUTTLE_STATE_BUILDING
       && slot.addr == htonl(0x0a000001) && slot.port == 0
       && slot.deployment == 13,
       "update in place: new fields, port 0 allowed while building");

    ok(slot.created_ms == created && slot.updated_ms >= created + 5
       && slot_of(&z, "hello") == s && z.hdr->live == 1,
       "update keeps created_ms and the slot, moves updated_ms");

    ok(shuttle_zone_get(&z, "nobody", &slot) == SHUTTLE_ZONE_NOT_FOUND
       && shuttle_zone_get(&z, "", &slot) == SHUTTLE_ZONE_NOT_FOUND,
       "unknown and empty names not found");

    ok(shuttle_zone_del(&z, "hello", err, ERRLEN) == 0
       && shuttle_zone_get(&z, "hello", &slot) == SHUTTLE_ZONE_NOT_FOUND
       && z.hdr->live == 0 && z.hdr->tombstones == 1,
       "del: not found afterwards, one tombstone");

    ok(s->kind == SHUTTLE_SLOT_TOMBSTONE && s->name_len == 0
       && s->deployment == 0 && s->port == 0 && s->name[0] == '\0'
       && (s->seq & 1) == 0,
       "the deleted slot is a cleared tombstone");

    ok(shuttle_zone_del(&z, "hello", err, ERRLEN) == -1
       && strstr(err, "project hello is not in the zone") != NULL,
       "del of a missing project: %s", err);

    shuttle_zone_close(&z);
}


static void
test_validation(void)
{
    int              i, bad;
    char             name[80];
    shuttle_zone_t   z;
    static const char  *invalid[] = {
        "Hello", "-ab", "ab-", "", "a.b", "a_b", " a", "a b", "caf\xc3\xa9",
        "a/b", NULL
    };

    zone_new(&z, "valid", 16);

    bad = 0;

    for (i = 0; invalid[i] != NULL; i++) {
        if (set(&z, invalid[i], 80, 1) != -1
            || strstr(err, "is not a DNS label") == NULL)
        {
            bad++;
        }
    }

    memset(name, 'a', 64);
    name[64] = '\0';

    ok(bad == 0 && set(&z, name, 80, 1) == -1 && z.hdr->live == 0,
       "invalid names refused: upper case, '-' at an end, empty, dot, "
       "underscore, space, non-ASCII, slash, 64 characters");

    name[63] = '\0';

    ok(set(&z, name, 80, 1) == 0 && found(&z, name)
       && set(&z, "a", 80, 1) == 0 && set(&z, "0-9", 80, 1) == 0
       && set(&z, "x--y", 80, 1) == 0,
       "63 characters, one character, digits and inner '-' accepted");

    ok(shuttle_zone_set(&z, "s", 0, 0, 80, 1, err, ERRLEN) == -1
       && shuttle_zone_set(&z, "s", SHUTTLE_STATE_MAX + 1, 0, 80, 1,
                           err, ERRLEN) == -1
       && strstr(err, "out of range") != NULL && !found(&z, "s"),
       "states none and %d refused", SHUTTLE_STATE_MAX + 1);

    ok(shuttle_zone_set(&z, "s", SHUTTLE_STATE_RUNNING, 0, 0, 1,
                        err, ERRLEN) == -1 && !found(&z, "s"),
       "running with port 0 refused");

    bad = 0;

    for (i = SHUTTLE_STATE_QUEUED; i <= SHUTTLE_STATE_MAX; i++) {
        if (shuttle_zone_set(&z, "s", i, 0, 1, 1, err, ERRLEN) != 0) {
            bad++;
        }
    }

    ok(bad == 0, "every state 1..%d accepted", SHUTTLE_STATE_MAX);

    shuttle_zone_close(&z);
}


/*
 * Names whose hashes share the home slot in an 8-slot zone make one probe
 * chain; deleting from its middle must not cut the chain.
 */

static void
test_collisions(void)
{
    int                   i, n, bad;
    char                  names[6][16], buf[16];
    uint32_t              home, base;
    shuttle_zone_t        z;
    shuttle_zone_slot_t   slot;

    zone_new(&z, "small", 4);

    ok(z.hdr->nslots == 8 && z.hdr->capacity == 4, "capacity 4: 8 slots");

    home = shuttle_zone_hash("c0", 2) & 7;
    n = 0;

    for (i = 0; n < 6 && i < 100000; i++) {
        snprintf(buf, sizeof(buf), "c%d", i);

        if ((shuttle_zone_hash(buf, strlen(buf)) & 7) == home) {
            strcpy(names[n++], buf);
        }
    }

    if (n < 6) {
        ok(0, "six names sharing a home slot");
        shuttle_zone_close(&z);
        return;
    }

    bad = 0;

    for (i = 0; i < 4; i++) {
        bad += set(&z, names[i], 100 + i, i) != 0;
    }

    base = index_of(&z, names[0]);

    for (i = 1; i < 4; i++) {
        bad += index_of(&z, names[i]) != ((base + i) & 7);
    }

    ok(bad == 0 && base == home,
       "4 colliding names fill 4 slots in a row from slot %u", home);

    ok(set(&z, "extra", 1, 1) == -1
       && strstr(err, "is full: 4 projects") != NULL && !found(&z, "extra")
       && z.hdr->live == 4,
       "a fifth project refused: %s", err);

    ok(set(&z, names[2], 2000, 7) == 0
       && shuttle_zone_get(&z, names[2], &slot) == SHUTTLE_ZONE_FOUND
       && slot.port == 2000,
       "a full zone still updates its projects");

    ok(shuttle_zone_del(&z, names[1], err, ERRLEN) == 0
       && !found(&z, names[1])
       && found(&z, names[0]) && found(&z, names[2]) && found(&z, names[3]),
       "delete in the middle of the chain: the rest still found");

    ok(shuttle_zone_del(&z, names[2], err, ERRLEN) == 0
       && found(&z, names[3]) && !found(&z, names[4]),
       "two tombstones in a row: the chain's tail still found");

    ok(set(&z, names[4], 104, 4) == 0
       && index_of(&z, names[4]) == ((base + 1) & 7)
       && z.hdr->tombstones == 1 && z.hdr->live == 3,
       "an insert reuses the first tombstone on its path");

    ok(set(&z, names[3], 303, 3) == 0
       && index_of(&z, names[3]) == ((base + 3) & 7) && z.hdr->live == 3
       && shuttle_zone_get(&z, names[3], &slot) == SHUTTLE_ZONE_FOUND
       && slot.port == 303,
       "an update past a tombstone stays in its own slot");

    ok(set(&z, names[5], 105, 5) == 0
       && index_of(&z, names[5]) == ((base + 2) & 7)
       && z.hdr->tombstones == 0 && z.hdr->live == 4
       && found(&z, names[0]) && found(&z, names[3]) && found(&z, names[4]),
       "the next insert takes the next tombstone; all found");

    shuttle_zone_close(&z);
}


static void
test_torn(void)
{
    uint32_t              seq;
    shuttle_zone_t        z;
    shuttle_zone_slot_t   slot, *s;

    zone_new(&z, "torn", 16);

    set(&z, "torn", 1000, 1);
    set(&z, "other", 1001, 2);

    s = slot_of(&z, "torn");
    seq = s->seq;
    s->seq = seq + 1;

    ok(shuttle_zone_get(&z, "torn", &slot) == SHUTTLE_ZONE_BUSY,
       "a slot left odd by a dead writer: lookup says busy");

    ok(set(&z, "torn", 1002, 3) == 0 && (s->seq & 1) == 0
       && s->seq == seq + 2 && slot_of(&z, "torn") == s
       && shuttle_zone_get(&z, "torn", &slot) == SHUTTLE_ZONE_FOUND
       && slot.port == 1002 && slot.deployment == 3 && z.hdr->live == 2,
       "the next set of it goes on from the odd seq and repairs it");

    s->seq++;

    ok(shuttle_zone_del(&z, "torn", err, ERRLEN) == 0 && (s->seq & 1) == 0
       && shuttle_zone_get(&z, "torn", &slot) == SHUTTLE_ZONE_NOT_FOUND
       && found(&z, "other"),
       "a del of an odd slot repairs it too");

    shuttle_zone_close(&z);
}


static void
test_rebuild(void)
{
    int                   i, bad;
    char                  name[32];
    struct stat           st, st2;
    shuttle_zone_t        z, r, w;
    shuttle_zone_slot_t   slot;

    zone_new(&z, "rebuild", 16);

    for (i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        set(&z, name, 2000 + i, i);
    }

    for (i = 0; i < 12; i += 3) {
        snprintf(name, sizeof(name), "r%d", i);
        shuttle_zone_del(&z, name, err, ERRLEN);
    }

    stat(zpath("rebuild"), &st);

    ok(shuttle_zone_open_ro(&r, zpath("rebuild"), err, ERRLEN) == 0
       && r.hdr->generation == 1 && r.hdr->tombstones == 4,
       "a reader maps generation 1 with 4 tombstones");

    ok(shuttle_zone_rebuild(&z, 0, err, ERRLEN) == 0, "rebuild");

    ok(r.hdr->retired == 1 && r.hdr->generation == 1,
       "the old mapping is retired");

    ok(z.hdr->generation == 2 && z.hdr->retired == 0
       && z.hdr->live == 8 && z.hdr->tombstones == 0
       && z.hdr->capacity == 16 && z.hdr->nslots == 32,
       "new generation 2: 8 live, no tombstones, same capacity");

    bad = 0;

    for (i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "r%d", i);

        if (i % 3 == 0) {
            bad += found(&z, name);

        } else {
            bad += shuttle_zone_get(&z, name, &slot) != SHUTTLE_ZONE_FOUND
                   || slot.port != 2000 + i || slot.deployment != (uint64_t) i
                   || (slot.seq & 1) != 0;
        }
    }

    ok(bad == 0, "every live project carried over, deleted ones not");

    ok(stat(zpath("rebuild"), &st2) == 0 && st2.st_ino != st.st_ino
       && (st2.st_mode & 0777) == 0644 && count_temps() == 0,
       "a new file at the path, mode 0644, no temporary file left");

    shuttle_zone_close(&r);

    ok(shuttle_zone_open_ro(&r, zpath("rebuild"), err, ERRLEN) == 0
       && r.hdr->generation == 2 && found(&r, "r1"),
       "a reader mapping the path again gets generation 2");

    ok(shuttle_zone_open(&w, zpath("rebuild"), 0, err, ERRLEN) == 0
       && shuttle_zone_lock(&w, 0, err, ERRLEN) == -1
       && strstr(err, "owned by another writer") != NULL,
       "the writer lock moved to the new file");

    shuttle_zone_close(&w);

    ok(shuttle_zone_rebuild(&z, 100, err, ERRLEN) == 0
       && z.hdr->generation == 3 && z.hdr->capacity == 100
       && z.hdr->nslots == 256 && z.hdr->live == 8 && found(&z, "r11")
       && r.hdr->retired == 1,
       "resize to 100: generation 3, 256 slots, projects kept");

    ok(shuttle_zone_rebuild(&z, 7, err, ERRLEN) == -1
       && strstr(err, "holds 8 projects") != NULL
       && z.hdr->generation == 3 && found(&z, "r11"),
       "a resize below the live count refused: %s", err);

    shuttle_zone_close(&r);

    /* a writer that opened generation 3, then waited for the lock */

    ok(shuttle_zone_open(&w, zpath("rebuild"), 0, err, ERRLEN) == 0
       && w.hdr->generation == 3, "a second writer opens generation 3");

    ok(shuttle_zone_rebuild(&z, 0, err, ERRLEN) == 0
       && z.hdr->generation == 4, "the first rebuilds to generation 4");

    shuttle_zone_close(&z);

    ok(shuttle_zone_lock(&w, 0, err, ERRLEN) == 0
       && w.hdr->generation == 4 && w.hdr->retired == 0
       && set(&w, "late", 1, 1) == 0,
       "the second, once locked, notices and works on generation 4");

    ok(shuttle_zone_open_ro(&r, zpath("rebuild"), err, ERRLEN) == 0
       && found(&r, "late") && found(&r, "r1"),
       "its edit lands in the file at the path");

    shuttle_zone_close(&r);
    shuttle_zone_close(&w);
}


/* churn in a small zone: tombstones pile up until set() rebuilds */

static void
test_churn(void)
{
    int              i, bad, remaps;
    char             name[32];
    shuttle_zone_t   z, r;

    zone_new(&z, "churn", 4);

    set(&z, "keep-a", 1, 1);
    set(&z, "keep-b", 2, 2);

    shuttle_zone_open_ro(&r, zpath("churn"), err, ERRLEN);

    bad = 0;
    remaps = 0;

    for (i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "tmp%d", i);

        bad += set(&z, name, 3, (uint64_t) i) != 0;
        bad += !found(&z, name) || !found(&z, "keep-a") || !found(&z, "keep-b");
        bad += shuttle_zone_del(&z, name, err, ERRLEN) != 0;
        bad += found(&z, name);
        bad += (uint64_t) z.hdr->live + z.hdr->tombstones > 7;

        /* what an nginx worker does */

        if (r.hdr->retired) {
            shuttle_zone_close(&r);
            shuttle_zone_open_ro(&r, zpath("churn"), err, ERRLEN);
            remaps++;
        }

        bad += !found(&r, "keep-a") || !found(&r, "keep-b");
    }

    ok(bad == 0, "500 set/del cycles: lookups right all along");

    ok(z.hdr->generation > 10 && remaps > 10 && z.hdr->live == 2
       && z.hdr->tombstones <= 7 - 2 && count_temps() == 0,
       "tombstones rebuilt away: generation %llu, a reader remapped %d "
       "times", (unsigned long long) z.hdr->generation, remaps);

    shuttle_zone_close(&r);
    shuttle_zone_close(&z);
}


static int
count_live(const shuttle_zone_slot_t *slot, void *data)
{
    (*(long *) data)++;

    return 0;
}


static void
test_many(void)
{
    int                   i, bad;
    long                  n;
    char                  name[32];
    shuttle_zone_t        z;
    shuttle_zone_slot_t   slot;

    zone_new(&z, "many", 0);

    bad = 0;

    for (i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "project-%d", i);
        bad += set(&z, name, (uint16_t) (1024 + i), (uint64_t) i) != 0;
    }

    ok(bad == 0 && z.hdr->live == 10000 && z.hdr->generation == 1,
       "10000 projects set in a default zone");

    for (i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "project-%d", i);
        bad += shuttle_zone_get(&z, name, &slot) != SHUTTLE_ZONE_FOUND
               || slot.deployment != (uint64_t) i || slot.port != 1024 + i;
    }

    ok(bad == 0, "all 10000 found with their fields");

    n = 0;

    ok(shuttle_zone_each(&z, count_live, &n) == 0 && n == 10000,
       "each() visits 10000 live slots");

    shuttle_zone_close(&z);
}


static int
write_file(const char *name, const void *data, size_t len, off_t size)
{
    int      fd;
    ssize_t  n;

    fd = open(zpath(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd == -1) {
        return -1;
    }

    n = write(fd, data, len);

    if (n != (ssize_t) len || (size && ftruncate(fd, size) == -1)) {
        close(fd);
        return -1;
    }

    return close(fd);
}


static void
test_check(void)
{
    char                    junk[4096];
    shuttle_zone_t          z;
    shuttle_zone_header_t  *h;
    static union {
        shuttle_zone_header_t  hdr;
        char                   bytes[256 + 8 * 128];
    } u;

    h = &u.hdr;
    h->magic = SHUTTLE_ZONE_MAGIC;
    h->abi = SHUTTLE_ZONE_ABI;
    h->header_size = SHUTTLE_ZONE_HEADER_SIZE;
    h->slot_size = SHUTTLE_ZONE_SLOT_SIZE;
    h->nslots = 8;
    h->capacity = 4;

    ok(shuttle_zone_check(h, sizeof(u)) == NULL, "check: a sound header");

    ok(shuttle_zone_check(h, 100) != NULL
       && strstr(shuttle_zone_check(h, 100), "shorter") != NULL,
       "check: a file shorter than a header");

    h->magic++;
    ok(shuttle_zone_check(h, sizeof(u)) != NULL, "check: bad magic");
    h->magic--;

    h->abi++;
    ok(shuttle_zone_check(h, sizeof(u)) != NULL
       && strstr(shuttle_zone_check(h, sizeof(u)), "ABI") != NULL,
       "check: another ABI");
    h->abi--;

    h->nslots = 6;
    ok(shuttle_zone_check(h, sizeof(u)) != NULL,
       "check: slot count not a power of two");
    h->nslots = 8;

    ok(shuttle_zone_check(h, sizeof(u) - 1) != NULL,
       "check: slots beyond the end of the file");

    h->slot_size = 64;
    ok(shuttle_zone_check(h, sizeof(u)) != NULL, "check: another slot size");
    h->slot_size = SHUTTLE_ZONE_SLOT_SIZE;

    memset(junk, 'x', sizeof(junk));

    ok(write_file("junk", junk, sizeof(junk), 0) == 0
       && shuttle_zone_open(&z, zpath("junk"), 0, err, ERRLEN) == -1
       && strstr(err, "bad magic") != NULL
       && strncmp(err, "zone /tmp/", 10) == 0,
       "open refuses a file that is no zone: %s", err);

    ok(write_file("short", junk, 10, 0) == 0
       && shuttle_zone_open(&z, zpath("short"), 0, err, ERRLEN) == -1
       && strstr(err, "shorter") != NULL,
       "open refuses a short file: %s", err);

    ok(write_file("empty", junk, 0, 0) == 0
       && shuttle_zone_open_ro(&z, zpath("empty"), err, ERRLEN) == -1
       && strstr(err, "shorter") != NULL,
       "open refuses an empty file");

    ok(write_file("big", &u, sizeof(u), 200 * 1024) == 0
       && shuttle_zone_open(&z, zpath("big"), 0, err, ERRLEN) == 0
       && z.hdr->nslots == 8 && z.size == 200 * 1024,
       "a file longer than its slots is accepted");

    shuttle_zone_close(&z);
}


/*
 * A writer that comes while a reader copies the slot, made certain rather
 * than hoped for.  The slot straddles two pages: its first part (seq,
 * kind, state, hash, addr, port) at the end of one, the rest (deployment,
 * times, name) at the start of the next, which is inaccessible.  The
 * reader copies the first part, then faults on the second: the fault's
 * handler plays the writer at that very moment, between the reader's
 * first read of seq and its copy of the rest, then lets the reader go on.
 * The lookup is the one nginx makes (shuttle_zone_find()) on a zone of
 * one slot.  A torn copy would pair the first version's port and address
 * with a later version's deployment.
 */

#define PAUSED_SPLIT  offsetof(shuttle_zone_slot_t, deployment)

typedef enum {
    PAUSED_WRITE,       /* the writer writes the slot whole: seq + 2 */
    PAUSED_HALF         /* it makes seq odd, writes half and stops */
} paused_mode_t;

static char                 *paused_page;
static size_t                paused_size;
static shuttle_zone_slot_t  *paused_slot;
static paused_mode_t         paused_mode;
static volatile int          paused_faults;


static void
paused_version(shuttle_zone_slot_t *v, uint64_t k)
{
    memset(v, 0, sizeof(shuttle_zone_slot_t));
    v->kind = SHUTTLE_SLOT_LIVE;
    v->state = SHUTTLE_STATE_RUNNING;
    v->name_len = 4;
    v->hash = shuttle_zone_hash("torn", 4);
    v->addr = htonl(0x7f000000 + (uint32_t) k);
    v->port = (uint16_t) (1000 + k);
    v->deployment = k;
    memcpy(v->name, "torn", 4);
}


/* the slot's copy is one version: its port and address are its deployment's */

static int
paused_whole(const shuttle_zone_slot_t *c, uint64_t k)
{
    return c->deployment == k && c->port == 1000 + k
           && c->addr == htonl(0x7f000000 + (uint32_t) k)
           && c->name_len == 4 && memcmp(c->name, "torn", 5) == 0;
}


static void
paused_writer(int sig, siginfo_t *si, void *uc)
{
    char                 *b;
    uint32_t              seq;
    shuttle_zone_slot_t   v;

    b = si->si_addr;

    if (b < paused_page + paused_size
        || b >= paused_page + 2 * paused_size
        || mprotect(paused_page + paused_size, paused_size,
                    PROT_READ | PROT_WRITE) != 0)
    {
        signal(SIGSEGV, SIG_DFL);
        return;
    }

    paused_faults++;

    /* the writer's steps (builder/zone/), seq on the page already read */

    seq = __atomic_load_n(&paused_slot->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&paused_slot->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);

    paused_version(&v, paused_mode == PAUSED_WRITE ? 2 : 3);

    if (paused_mode == PAUSED_HALF) {
        /* the rest, not the part the reader copied: paused mid-slot */
        memcpy((char *) paused_slot + PAUSED_SPLIT,
               (char *) &v + PAUSED_SPLIT,
               sizeof(shuttle_zone_slot_t) - PAUSED_SPLIT);
        return;
    }

    memcpy((char *) paused_slot + sizeof(v.seq), (char *) &v + sizeof(v.seq),
           sizeof(shuttle_zone_slot_t) - sizeof(v.seq));
    __atomic_store_n(&paused_slot->seq, seq + 2, __ATOMIC_RELEASE);
}


/* a lookup that faults mid-copy, the writer doing mode then */

static int
paused_lookup(paused_mode_t mode, shuttle_zone_slot_t *out)
{
    int               rc;
    struct sigaction  sa, old;

    paused_mode = mode;
    paused_faults = 0;

    memset(&sa, 0, sizeof(struct sigaction));
    sa.sa_sigaction = paused_writer;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);

    if (mprotect(paused_page + paused_size, paused_size, PROT_NONE) != 0
        || sigaction(SIGSEGV, &sa, &old) != 0)
    {
        return -1;
    }

    memset(out, 0, sizeof(shuttle_zone_slot_t));
    rc = shuttle_zone_find((char *) paused_slot - SHUTTLE_ZONE_HEADER_SIZE,
                           1, "torn", 4, out);

    sigaction(SIGSEGV, &old, NULL);

    return rc;
}


static void
test_paused_writer(void)
{
    int                   rc;
    shuttle_zone_slot_t   v, c;

    paused_size = (size_t) sysconf(_SC_PAGESIZE);
    paused_page = mmap(NULL, 2 * paused_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (paused_page == MAP_FAILED) {
        printf("Bail out! mmap: %s\n", strerror(errno));
        cleanup();
        exit(1);
    }

    /* the slot's first part ends where the second page starts */

    paused_slot = (shuttle_zone_slot_t *) (paused_page + paused_size
                                           - PAUSED_SPLIT);

    paused_version(&v, 1);
    *paused_slot = v;
    paused_slot->seq = 2;

    rc = paused_lookup(PAUSED_WRITE, &c);

    ok(paused_faults == 1 && rc == SHUTTLE_ZONE_FOUND && paused_whole(&c, 2),
       "a write from start to end while the reader copies: the reader "
       "reads again and gets the new version whole (%d faults, rc %d, "
       "deployment %llu port %u)", paused_faults, rc,
       (unsigned long long) c.deployment, (unsigned) c.port);

    ok(paused_slot->seq == 4 && paused_whole(paused_slot, 2),
       "... the write went through: seq 4");

    rc = paused_lookup(PAUSED_HALF, &c);

    ok(paused_faults == 1 && rc == SHUTTLE_ZONE_BUSY,
       "a writer paused mid-slot while the reader copies: busy, no torn "
       "slot (%d faults, rc %d, deployment %llu port %u)", paused_faults, rc,
       (unsigned long long) c.deployment, (unsigned) c.port);

    ok(paused_slot->seq == 5, "... the slot is odd while the writer is away");

    /* the writer comes back: the first part, then seq even */

    paused_version(&v, 3);
    memcpy((char *) paused_slot + sizeof(v.seq), (char *) &v + sizeof(v.seq),
           PAUSED_SPLIT - sizeof(v.seq));
    __atomic_store_n(&paused_slot->seq, 6, __ATOMIC_RELEASE);

    rc = shuttle_zone_find((char *) paused_slot - SHUTTLE_ZONE_HEADER_SIZE,
                           1, "torn", 4, &c);

    ok(rc == SHUTTLE_ZONE_FOUND && paused_whole(&c, 3),
       "the write finished: the new version, whole");

    munmap(paused_page, 2 * paused_size);
}


/*
 * A child rewrites one slot as fast as it can with records whose fields
 * agree (port and address follow the deployment); the parent reads it
 * meanwhile and must never see fields of two different writes.
 */

static void
test_concurrent(void)
{
    int                   status, j;
    long                  reads, busy, mixed, changes;
    pid_t                 pid;
    int64_t               end;
    uint64_t              k, last;
    shuttle_zone_t        z;
    shuttle_zone_slot_t   slot;

    zone_new(&z, "race", 16);
    set(&z, "hot", 1, 0);
    set(&z, "cold", 2, 2);

    pid = fork();

    if (pid == 0) {
        end = now_ms() + 300;

        for (k = 1; now_ms() < end; ) {
            for (j = 0; j < 256; j++, k++) {
                if (shuttle_zone_set(&z, "hot", SHUTTLE_STATE_RUNNING,
                                     (uint32_t) (k * 2654435761u),
                                     (uint16_t) (k % 65535 + 1), k,
                                     err, ERRLEN) != 0)
                {
                    _exit(1);
                }
            }
        }

        _exit(0);
    }

    reads = 0;
    busy = 0;
    mixed = 0;
    changes = 0;
    last = 0;

    while (waitpid(pid, &status, WNOHANG) == 0) {

        switch (shuttle_zone_get(&z, "hot", &slot)) {

        case SHUTTLE_ZONE_FOUND:
            reads++;

            if (slot.deployment == 0) {
                mixed += slot.port != 1;

            } else if (slot.port != slot.deployment % 65535 + 1
                       || slot.addr != (uint32_t) (slot.deployment
                                                   * 2654435761u)
                       || slot.name_len != 3 || memcmp(slot.name, "hot", 4)
                       || slot.state != SHUTTLE_STATE_RUNNING)
            {
                mixed++;
            }

            changes += slot.deployment != last;
            last = slot.deployment;
            break;

        case SHUTTLE_ZONE_BUSY:
            busy++;
            break;

        default:
            mixed++;
        }
    }

    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "the writer process ran its 0.3 s");

    ok(mixed == 0 && changes > 1,
       "seqlock: %ld reads saw %ld changes, %ld mixed records, %ld busy",
       reads, changes, mixed, busy);

    ok(found(&z, "cold") && (slot_of(&z, "hot")->seq & 1) == 0,
       "the slot is even and its neighbour intact afterwards");

    shuttle_zone_close(&z);
}


int
main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }

    test_create();
    test_set_get_del();
    test_validation();
    test_collisions();
    test_torn();
    test_rebuild();
    test_churn();
    test_many();
    test_check();
    test_paused_writer();
    test_concurrent();

    cleanup();

    return tap_done();
}
