
/*
 * Fuzz target: a hostile zone file as the builder meets it (builder/zone/zone.c
 * over include/shuttle_zone.h): opened read-only and walked, as "zone
 * list" does; then opened for writing, locked, edited and rebuilt, as the
 * builder does at start.  The input is the zone file.
 */


#include "zone.h"
#include "fuzz.h"


static int fuzz_zone_each(const shuttle_zone_slot_t *slot, void *data);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                  err[512];
    const char           *path;
    shuttle_zone_t        z;
    shuttle_zone_slot_t   slot;

    path = fuzz_file("zone", data, size);

    if (shuttle_zone_open_ro(&z, path, err, sizeof(err)) == 0) {
        (void) shuttle_zone_each(&z, fuzz_zone_each, NULL);
        (void) shuttle_zone_get(&z, "hello", &slot);
        shuttle_zone_close(&z);
    }

    if (shuttle_zone_open(&z, path, 4, err, sizeof(err)) != 0) {
        return 0;
    }

    if (shuttle_zone_lock(&z, 0, err, sizeof(err)) == 0) {
        (void) shuttle_zone_set(&z, "fuzz", SHUTTLE_STATE_RUNNING,
                                0x0100007f, 8080, 1, err, sizeof(err));
        (void) shuttle_zone_get(&z, "fuzz", &slot);
        (void) shuttle_zone_del(&z, "hello", err, sizeof(err));
        (void) shuttle_zone_each(&z, fuzz_zone_each, NULL);
        (void) shuttle_zone_rebuild(&z, 4, err, sizeof(err));
        (void) shuttle_zone_get(&z, "fuzz", &slot);
    }

    shuttle_zone_close(&z);

    return 0;
}


static int
fuzz_zone_each(const shuttle_zone_slot_t *slot, void *data)
{
    return slot->name_len == 0;
}
