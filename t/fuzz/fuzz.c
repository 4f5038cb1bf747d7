
/*
 * The fuzz targets' private directory and input files.
 */


#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"


static void fuzz_cleanup(void);
static int fuzz_remove(const char *path, const struct stat *st, int flag,
    struct FTW *ftw);


static char  fuzz_path[64];


const char *
fuzz_dir(void)
{
    const char  *tmp;

    if (fuzz_path[0] != '\0') {
        return fuzz_path;
    }

    tmp = getenv("TMPDIR");

    snprintf(fuzz_path, sizeof(fuzz_path), "%s/shuttle-fuzz.XXXXXX",
             tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");

    if (mkdtemp(fuzz_path) == NULL) {
        perror("fuzz: mkdtemp");
        exit(2);
    }

    atexit(fuzz_cleanup);

    return fuzz_path;
}


const char *
fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    FILE        *f;
    static char  path[128];

    snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);

    f = fopen(path, "w");

    if (f == NULL
        || (size > 0 && fwrite(data, 1, size, f) != size)
        || fclose(f) != 0)
    {
        perror(path);
        exit(2);
    }

    return path;
}


void
fuzz_std_fds(void)
{
    int  fd;

    for ( ;; ) {
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);

        if (fd == -1) {
            perror("fuzz: /dev/null");
            exit(2);
        }

        if (fd > 2) {
            close(fd);
            return;
        }

        /* not O_CLOEXEC as 0, 1 or 2: what a child inherits */
        (void) fcntl(fd, F_SETFD, 0);
    }
}


static void
fuzz_cleanup(void)
{
    if (nftw(fuzz_path, fuzz_remove, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        perror(fuzz_path);
    }
}


static int
fuzz_remove(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
    return remove(path);
}
