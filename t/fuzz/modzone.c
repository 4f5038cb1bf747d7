
/*
 * Fuzz target: a hostile zone file as an nginx worker meets it
 * (ngx_shuttle_module/ngx_http_shuttle_zone.c over include/shuttle_zone.h):
 * the bytes, copied into a buffer of their exact size (8-byte aligned, as
 * a mapping is), are checked with shuttle_zone_check(); when it accepts,
 * the slot count is copied out of the header once, as the module does, and
 * a few names are looked up with shuttle_zone_find(): a DNS label cut from
 * the first slot that is not empty, "alpha", a 63-character label made of
 * the input's last bytes, and two names that must be refused.  The buffer
 * has the input's exact size, so AddressSanitizer catches a probe that
 * leaves [base, base + size) of a zone whose header was accepted.  The
 * input is the zone file.
 */


#include <stdlib.h>

#include "shuttle_zone.h"
#include "fuzz.h"


static size_t fuzz_modzone_label(const uint8_t *data, size_t size,
    size_t off, char *name);
static void fuzz_modzone_find(const void *base, uint32_t nslots,
    const char *name, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                    first[SHUTTLE_ZONE_NAME_MAX + 1];
    char                    tail[SHUTTLE_ZONE_NAME_MAX + 1];
    char                    big[SHUTTLE_ZONE_NAME_MAX + 2];
    size_t                  i, n, off;
    uint32_t                nslots;
    const uint8_t          *s;
    shuttle_zone_header_t  *hdr;

    /* malloc(): aligned for any type, hence for the header's uint64_t */

    hdr = malloc(size ? size : 1);
    if (hdr == NULL) {
        abort();
    }

    if (size) {
        memcpy(hdr, data, size);
    }

    if (shuttle_zone_check(hdr, size) != NULL) {
        free(hdr);
        return 0;
    }

    /* the module's copy, never read again from the file */

    nslots = hdr->nslots;

    if (SHUTTLE_ZONE_HEADER_SIZE + (uint64_t) nslots * SHUTTLE_ZONE_SLOT_SIZE
        > size)
    {
        abort();
    }

    (void) __atomic_load_n(&hdr->retired, __ATOMIC_ACQUIRE);

    /* a label from the name field of the first slot not empty */

    n = 0;
    first[0] = '\0';

    for (i = 0; i < nslots; i++) {
        s = (const uint8_t *) shuttle_zone_slot(hdr, i);

        if (s[4] != SHUTTLE_SLOT_EMPTY) {
            off = (size_t) (s - (const uint8_t *) hdr)
                  + offsetof(shuttle_zone_slot_t, name);
            n = fuzz_modzone_label(data, size, off, first);
            break;
        }
    }

    fuzz_modzone_find(hdr, nslots, first, n);
    fuzz_modzone_find(hdr, nslots, "alpha", 5);

    /* 63 characters of [a-z0-9] from the input's last bytes */

    for (i = 0; i < SHUTTLE_ZONE_NAME_MAX; i++) {
        n = data[size - 1 - i % size] % 36;
        tail[i] = (char) (n < 26 ? 'a' + n : '0' + n - 26);
    }

    tail[SHUTTLE_ZONE_NAME_MAX] = '\0';

    fuzz_modzone_find(hdr, nslots, tail, SHUTTLE_ZONE_NAME_MAX);

    /* refused without a probe: empty, and one byte too long */

    memset(big, 'a', sizeof(big));

    fuzz_modzone_find(hdr, nslots, big, 0);
    fuzz_modzone_find(hdr, nslots, big, SHUTTLE_ZONE_NAME_MAX + 1);

    free(hdr);

    return 0;
}


/* a lowercase DNS label from data[off..], as a Host header would give it */

static size_t
fuzz_modzone_label(const uint8_t *data, size_t size, size_t off, char *name)
{
    size_t  n;
    char    c;

    /* no '-' at either end */

    while (off < size && data[off] == '-') {
        off++;
    }

    for (n = 0; n < SHUTTLE_ZONE_NAME_MAX && off + n < size; n++) {
        c = (char) data[off + n];

        if (c >= 'A' && c <= 'Z') {
            c = (char) (c - 'A' + 'a');
        }

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
fuzz_modzone_find(const void *base, uint32_t nslots, const char *name,
    size_t len)
{
    int                  rc;
    const char          *state;
    shuttle_zone_slot_t  slot;

    memset(&slot, 0, sizeof(slot));

    rc = shuttle_zone_find(base, nslots, name, len, &slot);

    switch (rc) {

    case SHUTTLE_ZONE_FOUND:
        /* what the module then trusts: the name it asked for */

        if (len == 0 || len > SHUTTLE_ZONE_NAME_MAX
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

    case SHUTTLE_ZONE_BUSY:
        if (slot.name_len != len || memcmp(slot.name, name, len) != 0) {
            abort();
        }

        break;

    case SHUTTLE_ZONE_NOT_FOUND:
        break;

    default:
        abort();
    }
}
