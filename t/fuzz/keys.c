
/*
 * Fuzz target: the API keys file (builder/keys.c), as "shuttle-builder
 * keys" list, add and del read it, and as the builder's --api-keys reads
 * it (shuttle_keyring_open(), then a lookup of the first line's name as
 * if it were a secret).  The input is the file; del is asked
 * for the name its first line starts with, so that a found line is cut
 * out as often as a missing one is reported.
 */


#include <string.h>

#include "keys.h"
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t              n;
    char                name[72], err[512], found[72];
    const char         *path;
    char               *argv[5];
    shuttle_keyring_t  *kr;

    n = 0;

    while (n < size && n < sizeof(name) - 1 && data[n] != ':'
           && data[n] != '\n' && data[n] != '\0')
    {
        name[n] = data[n];
        n++;
    }

    name[n] = '\0';

    path = fuzz_file("api_keys", data, size);

    kr = shuttle_keyring_open(path, err, sizeof(err));
    if (kr != NULL) {
        (void) shuttle_keyring_name(kr, name, n, found, sizeof(found));
        shuttle_keyring_close(kr);
    }

    argv[0] = (char *) "--file";
    argv[1] = (char *) path;
    argv[2] = (char *) "list";
    argv[3] = NULL;
    shuttle_keys_main(3, argv);

    argv[2] = (char *) "del";
    argv[3] = n > 0 ? name : (char *) "nobody";
    argv[4] = NULL;
    shuttle_keys_main(4, argv);

    argv[2] = (char *) "add";
    argv[3] = (char *) "fuzz";
    shuttle_keys_main(4, argv);

    argv[2] = (char *) "del";
    shuttle_keys_main(4, argv);

    return 0;
}
