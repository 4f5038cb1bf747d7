
/*
 * Fuzz target: a hostile zone file as an nginx worker meets it, through
 * the module's own code: ngx_shuttle_module/ngx_http_shuttle_zone.c is
 * included here whole and its ngx_http_shuttle_zone_lookup() maps the file
 * (ngx_http_shuttle_zone_map(): open, fstat, mmap, shuttle_zone_check()),
 * looks names up in it, and maps it again when the builder retires the
 * generation or the path changes.
 *
 * mmap() is ngx_fuzz.c's: a mapping is a malloc() of exactly the size the
 * module asked for, so AddressSanitizer sees a probe past [base, base +
 * size) of a zone whose header was accepted, and any read of a mapping the
 * module dropped.  (A real mapping would read zeros to the end of its last
 * page.)  The SIGBUS path (a file shrunk under a real mapping) is not run.
 *
 * The input is a zone file, optionally followed by "\n#remap#\n" and a
 * second zone file.  The first is written to the zone's path and looked
 * up: "alpha", a DNS label cut from the first slot that is not empty, a
 * 63-character label made of the input's last bytes, and two names that
 * must not be found.  With a second file, the builder's steps follow: the
 * mapped generation is marked retired, the second file renamed over the
 * path, a second passes, and the same names are looked up again: the
 * module must map the new file and drop the old mapping.  Without one,
 * a second passes and the names are looked up again in the same file.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_fuzz.h"
#include "fuzz.h"

#define mmap    fuzz_ngx_mmap
#define munmap  fuzz_ngx_munmap

#include "ngx_http_shuttle_zone.c"

#undef mmap
#undef munmap


#define FUZZ_REMAP  "\n#remap#\n"


static void fuzz_modzone_lookups(ngx_http_shuttle_zone_t *zone,
    const uint8_t *data, size_t size);
static size_t fuzz_modzone_label(ngx_http_shuttle_zone_t *zone, char *name);
static void fuzz_modzone_find(ngx_http_shuttle_zone_t *zone,
    const char *name, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     path[128], next[128];
    size_t                   asize;
    const uint8_t           *b;
    ngx_http_shuttle_zone_t  zone;

    b = memmem(data, size, FUZZ_REMAP, sizeof(FUZZ_REMAP) - 1);
    asize = (b != NULL) ? (size_t) (b - data) : size;

    fuzz_ngx_time.sec = 1000000;

    ngx_memzero(&zone, sizeof(ngx_http_shuttle_zone_t));

    (void) snprintf(path, sizeof(path), "%s", fuzz_file("zone", data, asize));
    zone.path.data = (u_char *) path;
    zone.path.len = ngx_strlen(path);

    fuzz_modzone_lookups(&zone, data, size);

    if (b != NULL) {
        b += sizeof(FUZZ_REMAP) - 1;

        (void) snprintf(next, sizeof(next), "%s",
                        fuzz_file("zone.next", b, data + size - b));

        if (rename(next, path) != 0) {
            abort();
        }

        if (zone.hdr != NULL) {
            /* the mapping is ours: a malloc() */
            __atomic_store_n(&zone.hdr->retired, 1, __ATOMIC_RELEASE);
        }
    }

    fuzz_ngx_time.sec++;

    fuzz_modzone_lookups(&zone, data, size);

    ngx_http_shuttle_zone_unmap(&zone);

    if (fuzz_ngx_mappings() != 0) {
        /* a mapping the module lost */
        abort();
    }

    return 0;
}


static void
fuzz_modzone_lookups(ngx_http_shuttle_zone_t *zone, const uint8_t *data,
    size_t size)
{
    char    first[SHUTTLE_ZONE_NAME_MAX + 1];
    char    tail[SHUTTLE_ZONE_NAME_MAX + 1];
    char    big[SHUTTLE_ZONE_NAME_MAX + 2];
    size_t  i, n;

    /* the first lookup maps the file */

    fuzz_modzone_find(zone, "alpha", 5);

    if (zone->hdr != NULL) {
        /* what the module trusts from now on, checked against the file */

        if (zone->nslots == 0 || (zone->nslots & (zone->nslots - 1)) != 0
            || SHUTTLE_ZONE_HEADER_SIZE
               + (uint64_t) zone->nslots * SHUTTLE_ZONE_SLOT_SIZE
               > zone->size)
        {
            abort();
        }

        n = fuzz_modzone_label(zone, first);
        fuzz_modzone_find(zone, first, n);
    }

    /* 63 characters of [a-z0-9] from the input's last bytes */

    for (i = 0; size > 0 && i < SHUTTLE_ZONE_NAME_MAX; i++) {
        n = data[size - 1 - i % size] % 36;
        tail[i] = (char) (n < 26 ? 'a' + n : '0' + n - 26);
    }

    tail[SHUTTLE_ZONE_NAME_MAX] = '\0';

    if (size > 0) {
        fuzz_modzone_find(zone, tail, SHUTTLE_ZONE_NAME_MAX);
    }

    /* not found without a probe: empty, and one byte too long */

    memset(big, 'a', sizeof(big));

    fuzz_modzone_find(zone, big, 0);
    fuzz_modzone_find(zone, big, SHUTTLE_ZONE_NAME_MAX + 1);
}


/* a lowercase DNS label from the first slot not empty, as a Host gives it */

static size_t
fuzz_modzone_label(ngx_http_shuttle_zone_t *zone, char *name)
{
    char            c;
    size_t          i, n, off, len;
    const uint8_t  *s;

    for (i = 0; i < zone->nslots; i++) {
        s = (const uint8_t *) shuttle_zone_slot(zone->hdr, i);

        if (s[4] != SHUTTLE_SLOT_EMPTY) {
            break;
        }
    }

    if (i == zone->nslots) {
        name[0] = '\0';
        return 0;
    }

    s += offsetof(shuttle_zone_slot_t, name);
    len = SHUTTLE_ZONE_SLOT_SIZE - offsetof(shuttle_zone_slot_t, name);

    /* no '-' at either end */

    for (off = 0; off < len && s[off] == '-'; off++) {
        /* void */
    }

    for (n = 0; n < SHUTTLE_ZONE_NAME_MAX && off + n < len; n++) {
        c = (char) ngx_tolower(s[off + n]);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            break;
        }

        name[n] = c;
    }

    while (n > 0 && name[n - 1] == '-') {
        n--;
    }

    name[n] = '\0';

    if (n > 0 && !shuttle_valid_name(name, n)) {
        abort();
    }

    return n;
}


static void
fuzz_modzone_find(ngx_http_shuttle_zone_t *zone, const char *name, size_t len)
{
    ngx_str_t            str;
    ngx_uint_t           rc;
    const char          *state;
    shuttle_zone_slot_t  slot;

    memset(&slot, 0, sizeof(slot));

    str.data = (u_char *) name;
    str.len = len;

    rc = ngx_http_shuttle_zone_lookup(zone, &str, &slot, fuzz_ngx_log());

    switch (rc) {

    case NGX_HTTP_SHUTTLE_FOUND:
        /* what the module then trusts: the name it asked for */

        if (zone->hdr == NULL || len == 0 || len > SHUTTLE_ZONE_NAME_MAX
            || slot.kind != SHUTTLE_SLOT_LIVE
            || slot.name_len != len || memcmp(slot.name, name, len) != 0
            || slot.hash != shuttle_zone_hash(name, len))
        {
            abort();
        }

        state = shuttle_zone_state_name(slot.state);

        if (state == NULL || state[0] == '\0') {
            abort();
        }

        break;

    case NGX_HTTP_SHUTTLE_BUSY:
        if (zone->hdr == NULL
            || slot.name_len != len || memcmp(slot.name, name, len) != 0)
        {
            abort();
        }

        break;

    case NGX_HTTP_SHUTTLE_NO_ZONE:
        if (zone->hdr != NULL) {
            abort();
        }

        break;

    case NGX_HTTP_SHUTTLE_UNKNOWN:
        if (zone->hdr == NULL) {
            abort();
        }

        break;

    default:
        abort();
    }
}
