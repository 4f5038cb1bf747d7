
/*
 * Fuzz target: the ELF resource reader (shuttle_resources_read() of
 * builder/build/resources.c).  The input is the service.so.
 */


#include <stdlib.h>

#include "resources.h"
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          n;
    char            err[512];
    const char     *path;
    shuttle_res_t  *res;

    path = fuzz_file("service.so", data, size);

    res = NULL;

    if (shuttle_resources_read(path, &res, &n, err, sizeof(err)) == 0) {
        free(res);
    }

    return 0;
}
