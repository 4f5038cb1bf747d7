
/*
 * Unpacking a deploy's tarball.
 *
 * shuttle_extract() unpacks a gzip'd tar archive (ustar, pax or GNU) into
 * a directory it creates, and holds the archive to the deploy contract:
 * regular files and directories only, every path inside the directory,
 * and the limits below.  It either extracts every entry or leaves nothing
 * on disk; then err says which entry failed and why, e.g.
 *
 *     entry "src/evil": symbolic links are not allowed
 *
 * Extracted files are 0644, or 0755 when the archive gives them any
 * execute bit; directories are 0755; owners and times are not restored.
 */


#ifndef SHUTTLE_BUILDER_EXTRACT_H
#define SHUTTLE_BUILDER_EXTRACT_H


#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint64_t  max_entries;  /* archive members, directories included */
    uint64_t  max_total;    /* bytes of file data, all files together */
    uint64_t  max_file;     /* bytes of data in one file */
    unsigned  max_depth;    /* path components, the file name included */
} shuttle_extract_limits_t;


#define SHUTTLE_EXTRACT_MAX_ENTRIES  10000
#define SHUTTLE_EXTRACT_MAX_TOTAL    (256 * 1024 * 1024)
#define SHUTTLE_EXTRACT_MAX_FILE     (64 * 1024 * 1024)
#define SHUTTLE_EXTRACT_MAX_DEPTH    16


void shuttle_extract_defaults(shuttle_extract_limits_t *limits);

/*
 * Extracts the tar.gz at tarball into dir, which must not exist and is
 * created 0755; its parent must exist.  limits may be NULL for the
 * defaults.  Returns 0, or -1 with everything it created removed, dir
 * included, and a message in err naming the tarball, the directory or
 * the entry, and the cause; errno then says whose fault it was: EINVAL
 * the archive's (not a tar.gz, a forbidden or broken entry), EFBIG over a
 * limit, else the system's (ENOSPC, EIO ...) reading the tarball or
 * writing the tree.
 */
int shuttle_extract(const char *tarball, const char *dir,
    const shuttle_extract_limits_t *limits, char *err, size_t errlen);

#endif /* SHUTTLE_BUILDER_EXTRACT_H */
