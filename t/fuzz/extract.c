
/*
 * Fuzz target: unpacking a deploy's tarball under the deploy contract
 * (shuttle_extract() of builder/build/extract.c, libarchive underneath).  The
 * input is the tarball; small limits, so that they are reached too.
 */


#include <stdio.h>

#include "extract.h"
#include "fsafe.h"
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                      dir[128], err[512];
    const char               *path;
    shuttle_extract_limits_t  limits;

    limits.max_entries = 64;
    limits.max_total = 1024 * 1024;
    limits.max_file = 256 * 1024;
    limits.max_depth = 8;

    path = fuzz_file("app.tar.gz", data, size);
    snprintf(dir, sizeof(dir), "%s/src", fuzz_dir());

    (void) shuttle_extract(path, dir, &limits, err, sizeof(err));
    shuttle_rmtree(NULL, dir);

    return 0;
}
