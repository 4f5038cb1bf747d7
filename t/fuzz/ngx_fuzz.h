
/*
 * What the module's fuzz targets share (t/fuzz/mod*.c): they #include the
 * module's own source files and link with ngx_fuzz.c, which stands in for
 * the parts of nginx that code calls (Debian's nginx-dev tree has headers
 * only, no nginx objects to link with):
 *
 *   - the error log: ngx_log_error_core() and ngx_conf_log_error() walk
 *     the format as nginx's ngx_vslprintf() does and read every argument
 *     it names (a %V's bytes, a %s up to its NUL), so a wrong argument is
 *     a crash or a sanitizer's report; with FUZZ_NGX_LOG=1 in the
 *     environment the formats are printed to stderr;
 *   - pools and arrays: every allocation is a malloc() of its exact size,
 *     freed by fuzz_ngx_reset();
 *   - ngx_read_file() (pread()), ngx_cached_time (fuzz_ngx_time);
 *   - mmap(): a target #defines mmap and munmap to fuzz_ngx_mmap() and
 *     fuzz_ngx_munmap() before it includes the module's file; a mapping is
 *     then a malloc() of exactly the size asked for, holding the file's
 *     bytes, so AddressSanitizer sees a read past what was mapped, and a
 *     read after munmap().
 *
 * Every other nginx function the included files refer to is in
 * ngx_unreached.c: it aborts.
 */


#ifndef SHUTTLE_NGX_FUZZ_H
#define SHUTTLE_NGX_FUZZ_H


#include <ngx_config.h>
#include <ngx_core.h>


extern ngx_time_t  fuzz_ngx_time;


/* a log at every level, and a pool; both valid until the process exits */
ngx_log_t *fuzz_ngx_log(void);
ngx_pool_t *fuzz_ngx_pool(void);

/* frees what the pools gave since the last call */
void fuzz_ngx_reset(void);

void *fuzz_ngx_mmap(void *addr, size_t len, int prot, int flags, int fd,
    off_t offset);
int fuzz_ngx_munmap(void *addr, size_t len);

/* how many mappings are not unmapped yet */
ngx_uint_t fuzz_ngx_mappings(void);


#endif /* SHUTTLE_NGX_FUZZ_H */
