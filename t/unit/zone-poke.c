
/*
 * zone-poke PATH NAME odd|even
 *
 * Makes the slot of project NAME look like a writer died in the middle of
 * writing it (seq odd), or ends that (seq even), for the nginx tests.  It
 * scans every slot instead of probing, since a lookup refuses the torn
 * slot this tool is after.
 */


#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shuttle_zone.h"


int
main(int argc, char **argv)
{
    int                     fd, odd;
    void                   *p;
    size_t                  len;
    uint32_t                i, seq;
    const char             *path, *name, *reason;
    struct stat             st;
    shuttle_zone_slot_t    *s;
    shuttle_zone_header_t  *hdr;

    if (argc != 4
        || (strcmp(argv[3], "odd") != 0 && strcmp(argv[3], "even") != 0))
    {
        fprintf(stderr, "usage: zone-poke PATH NAME odd|even\n");
        return 2;
    }

    path = argv[1];
    name = argv[2];
    odd = strcmp(argv[3], "odd") == 0;
    len = strlen(name);

    fd = open(path, O_RDWR);

    if (fd == -1) {
        fprintf(stderr, "zone-poke: zone %s: open: %s\n", path,
                strerror(errno));
        return 1;
    }

    if (fstat(fd, &st) == -1) {
        fprintf(stderr, "zone-poke: zone %s: fstat: %s\n", path,
                strerror(errno));
        return 1;
    }

    if ((size_t) st.st_size < sizeof(shuttle_zone_header_t)) {
        fprintf(stderr, "zone-poke: zone %s: file is shorter than a zone "
                "header\n", path);
        return 1;
    }

    p = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
             fd, 0);

    if (p == MAP_FAILED) {
        fprintf(stderr, "zone-poke: zone %s: mmap: %s\n", path,
                strerror(errno));
        return 1;
    }

    hdr = p;
    reason = shuttle_zone_check(hdr, (size_t) st.st_size);

    if (reason != NULL) {
        fprintf(stderr, "zone-poke: zone %s: %s\n", path, reason);
        return 1;
    }

    for (i = 0; i < hdr->nslots; i++) {
        s = shuttle_zone_slot(hdr, i);
        seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

        if ((s->kind != SHUTTLE_SLOT_LIVE && !(seq & 1))
            || s->name_len != len || memcmp(s->name, name, len) != 0)
        {
            continue;
        }

        if ((int) (seq & 1) != odd) {
            __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
        }

        return 0;
    }

    fprintf(stderr, "zone-poke: project %s is not in the zone %s\n", name,
            path);

    return 1;
}
