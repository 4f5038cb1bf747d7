
/*
 * Fuzz target: the shuttle.json reader (shuttle_manifest_read() of
 * builder/build/build_manifest.c).  The input is the project's shuttle.json.
 */


#include "build.h"
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 err[512];
    shuttle_manifest_t   m;

    fuzz_file("shuttle.json", data, size);

    if (shuttle_manifest_read(fuzz_dir(), &m, err, sizeof(err)) == 0) {
        shuttle_manifest_free(&m);
    }

    return 0;
}
