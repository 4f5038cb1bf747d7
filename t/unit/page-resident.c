
/*
 * page-resident PATH
 *
 * Prints how many of the file's pages are in the page cache (mincore(2)
 * on a read-only mapping of it), and how many it has.  PATH may be a
 * /proc/PID/map_files/ link: a retired zone generation, unlinked, that an
 * nginx worker still maps.  A helper of t/zone-retire.t.
 */


#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


int
main(int argc, char **argv)
{
    int             fd;
    void           *p;
    long            page;
    size_t          i, n, resident;
    struct stat     st;
    unsigned char  *vec;

    if (argc != 2) {
        fprintf(stderr, "usage: page-resident PATH\n");
        return 2;
    }

    fd = open(argv[1], O_RDONLY | O_CLOEXEC);

    if (fd == -1 || fstat(fd, &st) == -1 || st.st_size == 0) {
        fprintf(stderr, "page-resident: %s: %s\n", argv[1],
                fd == -1 ? strerror(errno) : "empty or unreadable");
        return 1;
    }

    page = sysconf(_SC_PAGESIZE);
    n = ((size_t) st.st_size + page - 1) / page;

    p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    vec = malloc(n);

    if (p == MAP_FAILED || vec == NULL || mincore(p, st.st_size, vec) == -1)
    {
        fprintf(stderr, "page-resident: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }

    for (i = 0, resident = 0; i < n; i++) {
        resident += vec[i] & 1;
    }

    printf("%zu %zu\n", resident, n);

    return 0;
}
