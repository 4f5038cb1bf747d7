
/*
 * The routing zone, reader side.  Each worker maps the file read-only on
 * its first lookup and keeps the mapping; a missing or unusable file is
 * tried again at most once a second.  A retired generation (the builder
 * renamed a successor over the path) and, once a second, a changed inode
 * make the worker map the path again.  Lookups copy one slot at a time
 * under its seqlock: no lock, no allocation, no system call.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_shuttle_module.h"


static ngx_int_t ngx_http_shuttle_zone_changed(ngx_http_shuttle_zone_t *zone);
static void ngx_http_shuttle_zone_fail(ngx_http_shuttle_zone_t *zone,
    ngx_log_t *log, ngx_err_t err, const char *reason);


ngx_uint_t
ngx_http_shuttle_zone_lookup(ngx_http_shuttle_zone_t *zone, ngx_str_t *name,
    shuttle_zone_slot_t *slot, ngx_log_t *log)
{
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

    switch (shuttle_zone_lookup(zone->hdr, (char *) name->data, name->len,
                                slot))
    {
    case SHUTTLE_ZONE_FOUND:
        return NGX_HTTP_SHUTTLE_FOUND;

    case SHUTTLE_ZONE_BUSY:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "shuttle zone \"%s\": slot of project \"%V\" stayed "
                      "torn for %d reads", zone->path.data, name,
                      SHUTTLE_ZONE_READ_TRIES);
        return NGX_HTTP_SHUTTLE_BUSY;

    default:
        return NGX_HTTP_SHUTTLE_UNKNOWN;
    }
}


/* at most once a second: is the path still the file we have mapped? */

static ngx_int_t
ngx_http_shuttle_zone_changed(ngx_http_shuttle_zone_t *zone)
{
    struct stat  st;

    if (zone->checked == ngx_time()) {
        return 0;
    }

    zone->checked = ngx_time();

    if (stat((char *) zone->path.data, &st) == -1) {
        /* keep serving from the mapping we have */
        return 0;
    }

    return st.st_ino != zone->ino || st.st_dev != zone->dev;
}


ngx_int_t
ngx_http_shuttle_zone_map(ngx_http_shuttle_zone_t *zone, ngx_log_t *log)
{
    void                   *p;
    size_t                  size;
    ngx_fd_t                fd;
    ngx_err_t               err;
    const char             *reason;
    struct stat             st;
    shuttle_zone_header_t  *hdr;

    zone->checked = ngx_time();

    fd = ngx_open_file(zone->path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_http_shuttle_zone_fail(zone, log, ngx_errno, "open() failed");
        return NGX_ERROR;
    }

    if (fstat(fd, &st) == -1) {
        err = ngx_errno;
        (void) ngx_close_file(fd);
        ngx_http_shuttle_zone_fail(zone, log, err, "fstat() failed");
        return NGX_ERROR;
    }

    size = (size_t) st.st_size;

    if (size < sizeof(shuttle_zone_header_t)) {
        (void) ngx_close_file(fd);
        ngx_http_shuttle_zone_fail(zone, log, 0,
                                   "file is shorter than a zone header");
        return NGX_ERROR;
    }

    p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    err = ngx_errno;

    (void) ngx_close_file(fd);

    if (p == MAP_FAILED) {
        ngx_http_shuttle_zone_fail(zone, log, err, "mmap() failed");
        return NGX_ERROR;
    }

    hdr = p;
    reason = shuttle_zone_check(hdr, size);

    if (reason != NULL) {
        (void) munmap(p, size);
        ngx_http_shuttle_zone_fail(zone, log, 0, reason);
        return NGX_ERROR;
    }

    ngx_http_shuttle_zone_unmap(zone);

    zone->hdr = hdr;
    zone->size = size;
    zone->ino = st.st_ino;
    zone->dev = st.st_dev;
    zone->error = NULL;
    zone->failed = 0;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "shuttle zone \"%s\": generation %uL mapped, %uD slots",
                  zone->path.data, hdr->generation, hdr->nslots);

    return NGX_OK;
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
        (void) munmap(zone->hdr, zone->size);
        zone->hdr = NULL;
    }
}
