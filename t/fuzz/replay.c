
/*
 * The replay driver: runs a fuzz target on each file named on the command
 * line, without libFuzzer.  Exits 0 when every input was read and ran to
 * its end, and says how many on its last line of stderr; a crash (or a
 * sanitizer report, built with -fsanitize) is the failure it exists to
 * show.
 *
 *     build/t/fuzz-replay-keys t/fuzz/corpus/keys/ *
 */


#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"


int
main(int argc, char **argv)
{
    int       i;
    long      len;
    FILE     *f;
    uint8_t  *data;

    for (i = 1; i < argc; i++) {
        f = fopen(argv[i], "rb");

        if (f == NULL || fseek(f, 0, SEEK_END) != 0
            || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        {
            perror(argv[i]);
            return 2;
        }

        /* an exact-size buffer, so that a sanitizer sees overreads */
        data = malloc(len ? len : 1);

        if (data == NULL || fread(data, 1, len, f) != (size_t) len) {
            perror(argv[i]);
            return 2;
        }

        fclose(f);

        LLVMFuzzerTestOneInput(data, len);

        free(data);
    }

    fprintf(stderr, "%d inputs\n", argc - 1);

    return 0;
}
