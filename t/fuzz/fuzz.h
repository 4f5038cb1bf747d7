
/*
 * What the fuzz targets share.  Each t/fuzz/TARGET.c defines
 * LLVMFuzzerTestOneInput(); clang links it with libFuzzer ("make fuzz"),
 * gcc with replay.c, which feeds it the files of t/fuzz/corpus/TARGET/
 * ("make test").  The parsers under test read files, so a target writes
 * its input to a file in a private directory first: fuzz_dir(), made once
 * per process and removed at exit.
 */


#ifndef SHUTTLE_FUZZ_H
#define SHUTTLE_FUZZ_H


#include <stddef.h>
#include <stdint.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the process's directory, "/tmp/shuttle-fuzz.XXXXXX"; exits on error */
const char *fuzz_dir(void);

/* name (in fuzz_dir()) holding data; its full path, static, or exits */
const char *fuzz_file(const char *name, const uint8_t *data, size_t size);

/*
 * Descriptors 0, 1 and 2 open, on /dev/null when libFuzzer closed them
 * (make fuzz's -close_fd_mask=3): else a socket or a file opened by the
 * code under test takes them, and what it prints goes there.
 */
void fuzz_std_fds(void);


#endif /* SHUTTLE_FUZZ_H */
