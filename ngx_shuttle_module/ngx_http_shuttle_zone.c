
/*
 * The routing zone, reader side.  Each worker maps the file read-only on
 * its first lookup and keeps the mapping; a missing or unusable file is
 * tried again at most once a second.  A retired generation (the builder
 * renamed a successor over the path) and, once a second, a changed inode
 * make the worker map the path again.  Lookups copy one slot at a time
 * under its seqlock: no lock, no allocation, no system call.
 *
 * The file is validated once, when mapped, and only what was validated is
 * used after: the slot count copied into the worker's memory, the exact
 * header and slot sizes, never beyond the size checked.  Someone may
 * still shrink the file under the mapping (truncate, or cp over it), even
 * between the fstat() that sized a new mapping and the reading of its
 * header: reading a page past the file's new end raises SIGBUS.  A
 * handler of ours, installed before the first mapping, guards the one
 * mapping being read: it puts zeros in its place and lets the read
 * finish.  A lookup then drops the mapping and answers as with no zone
 * (503); a map refuses the new file.  Either says why in the error log.
 * Any other SIGBUS is left as it was.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_shuttle_module.h"


/* the mapping the SIGBUS handler may replace, and what it did */
static u_char *volatile           ngx_http_shuttle_zone_guard_start;
static volatile size_t            ngx_http_shuttle_zone_guard_size;
static volatile sig_atomic_t      ngx_http_shuttle_zone_faulted;
static ngx_uint_t                 ngx_http_shuttle_zone_guard_set;
static struct sigaction           ngx_http_shuttle_zone_sigbus_prev;


static ngx_int_t ngx_http_shuttle_zone_changed(ngx_http_shuttle_zone_t *zone);
static void ngx_http_shuttle_zone_close(ngx_http_shuttle_zone_t *zone,
    ngx_fd_t fd, ngx_log_t *log);
static ngx_int_t ngx_http_shuttle_zone_guard(ngx_log_t *log);
static void ngx_http_shuttle_zone_cover(void *start, size_t size);
static void ngx_http_shuttle_zone_sigbus(int signo, siginfo_t *si,
    void *context);
static void ngx_http_shuttle_zone_fail(ngx_http_shuttle_zone_t *zone,
    ngx_log_t *log, ngx_err_t err, const char *reason);


ngx_uint_t
ngx_http_shuttle_zone_lookup(ngx_http_shuttle_zone_t *zone, ngx_str_t *name,
    shuttle_zone_slot_t *slot, ngx_log_t *log)
{
    int  rc;

    if (zone->hdr == NULL
        || __atomic_load_n(&zone->hdr->retired, __ATOMIC_ACQUIRE)
        || ngx_http_shuttle_zone_changed(zone))
    {
        /* a map that failed is tried again once a second, not per request */

        if (zone->failed != ngx_time()) {
            (void) ngx_http_shuttle_zone_map(zone, log);
        }

        if (zone->hdr == NULL) {
            return NGX_HTTP_SHUTTLE_NO_ZONE;
        }
    }

    rc = shuttle_zone_find(zone->hdr, zone->nslots, (char *) name->data,
                           name->len, slot);

    if (ngx_http_shuttle_zone_faulted) {
        ngx_http_shuttle_zone_faulted = 0;

        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "shuttle zone \"%s\": the file shrank under its "
                      "mapping (truncated or written over in place): "
                      "not used until it is whole again", zone->path.data);

        ngx_http_shuttle_zone_unmap(zone);
        zone->failed = ngx_time();
        zone->error = NULL;

        return NGX_HTTP_SHUTTLE_NO_ZONE;
    }

    switch (rc) {

    case SHUTTLE_ZONE_FOUND:
        return NGX_HTTP_SHUTTLE_FOUND;

    case SHUTTLE_ZONE_BUSY:

        /* until the builder repairs the slot: a warning a second */

        if (zone->torn != ngx_time()) {
            zone->torn = ngx_time();

            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "shuttle zone \"%s\": slot of project \"%V\" "
                          "stayed torn for %d reads", zone->path.data, name,
                          SHUTTLE_ZONE_READ_TRIES);
        }

        return NGX_HTTP_SHUTTLE_BUSY;

    default:
        return NGX_HTTP_SHUTTLE_UNKNOWN;
    }
}


/* at most once a second: is the path still the file we have mapped? */

static ngx_int_t
ngx_http_shuttle_zone_changed(ngx_http_shuttle_zone_t *zone)
{
    ngx_file_info_t  fi;

    if (zone->checked == ngx_time()) {
        return 0;
    }

    zone->checked = ngx_time();

    if (ngx_file_info(zone->path.data, &fi) == NGX_FILE_ERROR) {
        /* keep serving from the mapping we have */
        return 0;
    }

    return ngx_file_uniq(&fi) != zone->ino || fi.st_dev != zone->dev
           || (size_t) ngx_file_size(&fi) != zone->size;
}


ngx_int_t
ngx_http_shuttle_zone_map(ngx_http_shuttle_zone_t *zone, ngx_log_t *log)
{
    void                   *p;
    size_t                  size;
    uint32_t                nslots;
    uint64_t                generation;
    ngx_fd_t                fd;
    ngx_err_t               err;
    const char             *reason;
    ngx_file_info_t         fi;
    shuttle_zone_header_t  *hdr;

    zone->checked = ngx_time();

    /* the new mapping's header is read under the guard too */

    if (ngx_http_shuttle_zone_guard(log) != NGX_OK) {
        ngx_http_shuttle_zone_fail(zone, log, ngx_errno,
                                   "sigaction(SIGBUS) failed");
        return NGX_ERROR;
    }

    fd = ngx_open_file(zone->path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_http_shuttle_zone_fail(zone, log, ngx_errno, "open() failed");
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;
        ngx_http_shuttle_zone_close(zone, fd, log);
        ngx_http_shuttle_zone_fail(zone, log, err,
                                   ngx_fd_info_n " failed");
        return NGX_ERROR;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size < sizeof(shuttle_zone_header_t)) {
        ngx_http_shuttle_zone_close(zone, fd, log);
        ngx_http_shuttle_zone_fail(zone, log, 0,
                                   "file is shorter than a zone header");
        return NGX_ERROR;
    }

    p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    err = ngx_errno;

    ngx_http_shuttle_zone_close(zone, fd, log);

    if (p == MAP_FAILED) {
        ngx_http_shuttle_zone_fail(zone, log, err, "mmap() failed");
        return NGX_ERROR;
    }

    hdr = p;

    ngx_http_shuttle_zone_cover(p, size);

    reason = shuttle_zone_check(hdr, size);
    nslots = hdr->nslots;
    generation = hdr->generation;

    ngx_http_shuttle_zone_cover(zone->hdr, zone->size);

    if (ngx_http_shuttle_zone_faulted) {
        ngx_http_shuttle_zone_faulted = 0;
        reason = "the file shrank while it was mapped (truncated or "
                 "written over in place)";
    }

    if (reason != NULL) {
        (void) munmap(p, size);
        ngx_http_shuttle_zone_fail(zone, log, 0, reason);
        return NGX_ERROR;
    }

    ngx_http_shuttle_zone_unmap(zone);

    zone->hdr = hdr;
    zone->size = size;
    zone->nslots = nslots;
    ngx_http_shuttle_zone_cover(hdr, size);
    zone->ino = ngx_file_uniq(&fi);
    zone->dev = fi.st_dev;
    zone->error = NULL;
    zone->failed = 0;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "shuttle zone \"%s\": generation %uL mapped, %uD slots",
                  zone->path.data, generation, nslots);

    return NGX_OK;
}


static void
ngx_http_shuttle_zone_close(ngx_http_shuttle_zone_t *zone, ngx_fd_t fd,
    ngx_log_t *log)
{
    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", zone->path.data);
    }
}


/*
 * A zone that cannot be used is tried again on the first lookup of the
 * next second; the reason is logged when it changes, not on every request.
 */

static void
ngx_http_shuttle_zone_fail(ngx_http_shuttle_zone_t *zone, ngx_log_t *log,
    ngx_err_t err, const char *reason)
{
    ngx_uint_t  level;

    zone->failed = ngx_time();

    if (zone->error == reason) {
        return;
    }

    zone->error = reason;

    level = (err == NGX_ENOENT) ? NGX_LOG_WARN : NGX_LOG_ERR;

    ngx_log_error(level, log, err, "shuttle zone \"%s\": %s%s",
                  zone->path.data, reason,
                  zone->hdr ? ", keeping the previous mapping" : "");
}


void
ngx_http_shuttle_zone_unmap(ngx_http_shuttle_zone_t *zone)
{
    if (zone->hdr != NULL) {
        if (ngx_http_shuttle_zone_guard_start == (u_char *) zone->hdr) {
            ngx_http_shuttle_zone_cover(NULL, 0);
        }

        (void) munmap(zone->hdr, zone->size);
        zone->hdr = NULL;
    }
}


/* the SIGBUS handler, once per worker, chained to whatever was there */

static ngx_int_t
ngx_http_shuttle_zone_guard(ngx_log_t *log)
{
    struct sigaction  sa;

    if (ngx_http_shuttle_zone_guard_set) {
        return NGX_OK;
    }

    ngx_memzero(&sa, sizeof(struct sigaction));
    sa.sa_sigaction = ngx_http_shuttle_zone_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);

    if (sigaction(SIGBUS, &sa, &ngx_http_shuttle_zone_sigbus_prev) == -1) {
        return NGX_ERROR;
    }

    ngx_http_shuttle_zone_guard_set = 1;

    return NGX_OK;
}


/*
 * The mapping the handler guards from now on: one at a time, the one the
 * worker reads.  The barrier keeps the compiler from moving reads of the
 * mapping before the guard is set.
 */

static void
ngx_http_shuttle_zone_cover(void *start, size_t size)
{
    ngx_http_shuttle_zone_guard_start = start;
    ngx_http_shuttle_zone_guard_size = start ? size : 0;

    ngx_memory_barrier();
}


/*
 * A fault inside the guarded mapping: the file shrank.  Zeros (an empty
 * zone) take the mapping's place, so the read that faulted finishes; the
 * lookup sees the flag.  Elsewhere: the previous disposition, and the
 * fault comes again under it.  mmap(2) is a plain system call here.
 */

static void
ngx_http_shuttle_zone_sigbus(int signo, siginfo_t *si, void *context)
{
    u_char  *a, *start;
    size_t   size;

    start = ngx_http_shuttle_zone_guard_start;
    size = ngx_http_shuttle_zone_guard_size;
    a = si->si_addr;

    if (start != NULL && a >= start && a < start + size
        && mmap(start, size, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
           != MAP_FAILED)
    {
        ngx_http_shuttle_zone_faulted = 1;
        return;
    }

    (void) sigaction(SIGBUS, &ngx_http_shuttle_zone_sigbus_prev, NULL);
}
