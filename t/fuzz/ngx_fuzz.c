
/*
 * The parts of nginx that the module's fuzz targets run: see ngx_fuzz.h.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_fuzz.h"


#define FUZZ_NGX_MAPS_MAX  16


typedef struct {
    void                 *addr;
    size_t                len;
} fuzz_ngx_map_t;


static void fuzz_ngx_format(ngx_uint_t level, ngx_err_t err,
    const char *fmt, va_list args);


ngx_time_t                 fuzz_ngx_time;
volatile ngx_time_t       *ngx_cached_time = &fuzz_ngx_time;
volatile ngx_msec_t        ngx_current_msec;
ngx_rbtree_t               ngx_event_timer_rbtree;
ngx_module_t               ngx_http_shuttle_module;

static ngx_log_t           fuzz_ngx_log_;
static ngx_pool_t          fuzz_ngx_pool_;
static void              **fuzz_ngx_allocs;
static size_t              fuzz_ngx_nallocs, fuzz_ngx_nalloced;
static fuzz_ngx_map_t      fuzz_ngx_maps[FUZZ_NGX_MAPS_MAX];


ngx_log_t *
fuzz_ngx_log(void)
{
    fuzz_ngx_log_.log_level = NGX_LOG_DEBUG;

    return &fuzz_ngx_log_;
}


ngx_pool_t *
fuzz_ngx_pool(void)
{
    fuzz_ngx_pool_.log = fuzz_ngx_log();

    return &fuzz_ngx_pool_;
}


void
fuzz_ngx_reset(void)
{
    size_t  i;

    for (i = 0; i < fuzz_ngx_nallocs; i++) {
        free(fuzz_ngx_allocs[i]);
    }

    fuzz_ngx_nallocs = 0;
}


/* pools: an exact-size malloc() each, kept until fuzz_ngx_reset() */

void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    void   *p, **a;
    size_t  n;

    if (fuzz_ngx_nallocs == fuzz_ngx_nalloced) {
        n = fuzz_ngx_nalloced ? 2 * fuzz_ngx_nalloced : 64;
        a = realloc(fuzz_ngx_allocs, n * sizeof(void *));

        if (a == NULL) {
            return NULL;
        }

        fuzz_ngx_allocs = a;
        fuzz_ngx_nalloced = n;
    }

    p = malloc(size ? size : 1);

    if (p != NULL) {
        fuzz_ngx_allocs[fuzz_ngx_nallocs++] = p;
    }

    return p;
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return ngx_pnalloc(pool, size);
}


ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a;

    a = ngx_pnalloc(p, sizeof(ngx_array_t));
    if (a == NULL) {
        return NULL;
    }

    a->elts = ngx_pnalloc(p, n * size);
    if (a->elts == NULL) {
        return NULL;
    }

    a->nelts = 0;
    a->size = size;
    a->nalloc = n;
    a->pool = p;

    return a;
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *new;

    if (a->nelts == a->nalloc) {
        new = ngx_pnalloc(a->pool, 2 * a->size * a->nalloc);
        if (new == NULL) {
            return NULL;
        }

        ngx_memcpy(new, a->elts, a->size * a->nalloc);
        a->elts = new;
        a->nalloc *= 2;
    }

    return (u_char *) a->elts + a->size * a->nelts++;
}


ssize_t
ngx_read_file(ngx_file_t *file, u_char *buf, size_t size, off_t offset)
{
    ssize_t  n;

    n = pread(file->fd, buf, size, offset);

    if (n == -1) {
        ngx_log_error(NGX_LOG_CRIT, file->log, ngx_errno,
                      "pread() \"%s\" failed", file->name.data);
        return NGX_ERROR;
    }

    file->offset += n;

    return n;
}


/* mappings: an exact-size malloc() each, holding the file's bytes */

void *
fuzz_ngx_mmap(void *addr, size_t len, int prot, int flags, int fd,
    off_t offset)
{
    void     *p;
    ssize_t   n;
    size_t    i;

    /* the module maps the zone read-only, shared, whole, nowhere fixed */

    if (addr != NULL || prot != PROT_READ || flags != MAP_SHARED
        || offset != 0)
    {
        abort();
    }

    if (len == 0) {
        errno = EINVAL;
        return MAP_FAILED;
    }

    for (i = 0; i < FUZZ_NGX_MAPS_MAX; i++) {
        if (fuzz_ngx_maps[i].addr == NULL) {
            break;
        }
    }

    if (i == FUZZ_NGX_MAPS_MAX) {
        /* mappings leak */
        abort();
    }

    p = malloc(len);
    if (p == NULL) {
        errno = ENOMEM;
        return MAP_FAILED;
    }

    n = pread(fd, p, len, 0);

    if (n < 0) {
        free(p);
        return MAP_FAILED;
    }

    /* past the file's end: what a mapping reads in its last page */
    memset((u_char *) p + n, 0, len - n);

    fuzz_ngx_maps[i].addr = p;
    fuzz_ngx_maps[i].len = len;

    return p;
}


int
fuzz_ngx_munmap(void *addr, size_t len)
{
    size_t  i;

    for (i = 0; i < FUZZ_NGX_MAPS_MAX; i++) {
        if (fuzz_ngx_maps[i].addr == addr) {
            break;
        }
    }

    /* not a mapping, or not all of it */

    if (addr == NULL || i == FUZZ_NGX_MAPS_MAX
        || fuzz_ngx_maps[i].len != len)
    {
        abort();
    }

    free(addr);
    fuzz_ngx_maps[i].addr = NULL;

    return 0;
}


ngx_uint_t
fuzz_ngx_mappings(void)
{
    size_t      i;
    ngx_uint_t  n;

    n = 0;

    for (i = 0; i < FUZZ_NGX_MAPS_MAX; i++) {
        n += (fuzz_ngx_maps[i].addr != NULL);
    }

    return n;
}


/* logs */

void ngx_cdecl
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    va_list  args;

    if (log == NULL) {
        abort();
    }

    va_start(args, fmt);
    fuzz_ngx_format(level, err, fmt, args);
    va_end(args);
}


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    va_list  args;

    if (cf == NULL || cf->log == NULL) {
        abort();
    }

    va_start(args, fmt);
    fuzz_ngx_format(level, err, fmt, args);
    va_end(args);
}


/*
 * The conversions of ngx_vslprintf(), each argument read with its type;
 * strings are copied into the line, so a bad pointer or a %V longer than
 * its bytes is read here.
 */

static void
fuzz_ngx_format(ngx_uint_t level, ngx_err_t err, const char *fmt,
    va_list args)
{
    u_char                 line[2048], *p, *last, *s;
    size_t                 slen, n;
    ngx_uint_t             sign;
    ngx_str_t             *v;
    ngx_variable_value_t  *vv;
    long long              i;
    unsigned long long     u;

    p = line;
    last = line + sizeof(line) - 1;

    while (*fmt) {
        if (*fmt != '%') {
            if (p < last) {
                *p++ = *fmt;
            }

            fmt++;
            continue;
        }

        fmt++;
        slen = (size_t) -1;
        sign = 1;

        while (*fmt >= '0' && *fmt <= '9') {
            fmt++;
        }

        for ( ;; ) {
            switch (*fmt) {

            case 'u':
            case 'X':
            case 'x':
                sign = 0;
                fmt++;
                continue;

            case 'm':
                fmt++;
                continue;

            case '.':
                fmt++;

                while (*fmt >= '0' && *fmt <= '9') {
                    fmt++;
                }

                break;

            case '*':
                slen = va_arg(args, size_t);
                fmt++;
                continue;

            default:
                break;
            }

            break;
        }

        s = NULL;
        n = 0;
        i = 0;
        u = 0;

        switch (*fmt) {

        case 'V':
            v = va_arg(args, ngx_str_t *);
            s = v->data;
            n = v->len;
            break;

        case 'v':
            vv = va_arg(args, ngx_variable_value_t *);
            s = vv->data;
            n = vv->len;
            break;

        case 's':
            s = va_arg(args, u_char *);
            n = (slen == (size_t) -1) ? ngx_strlen(s) : slen;
            break;

        case 'O':
            i = va_arg(args, off_t);
            break;

        case 'P':
            i = va_arg(args, ngx_pid_t);
            break;

        case 'T':
            i = va_arg(args, time_t);
            break;

        case 'M':
            u = va_arg(args, ngx_msec_t);
            break;

        case 'z':
            if (sign) {
                i = va_arg(args, ssize_t);
            } else {
                u = va_arg(args, size_t);
            }

            break;

        case 'i':
            if (sign) {
                i = va_arg(args, ngx_int_t);
            } else {
                u = va_arg(args, ngx_uint_t);
            }

            break;

        case 'd':
            if (sign) {
                i = va_arg(args, int);
            } else {
                u = va_arg(args, u_int);
            }

            break;

        case 'l':
            if (sign) {
                i = va_arg(args, long);
            } else {
                u = va_arg(args, u_long);
            }

            break;

        case 'D':
            if (sign) {
                i = va_arg(args, int32_t);
            } else {
                u = va_arg(args, uint32_t);
            }

            break;

        case 'L':
            if (sign) {
                i = va_arg(args, int64_t);
            } else {
                u = va_arg(args, uint64_t);
            }

            break;

        case 'A':
            if (sign) {
                i = va_arg(args, ngx_atomic_int_t);
            } else {
                u = va_arg(args, ngx_atomic_uint_t);
            }

            break;

        case 'f':
            i = (long long) va_arg(args, double);
            break;

        case 'r':
            i = va_arg(args, rlim_t);
            break;

        case 'p':
            u = (uintptr_t) va_arg(args, void *);
            break;

        case 'c':
            i = va_arg(args, int);
            break;

        case 'Z':
        case 'N':
        case '%':
            break;

        case '\0':
            /* a format that ends in '%' */
            abort();

        default:
            break;
        }

        fmt++;

        if (s != NULL) {
            while (n-- && p < last) {
                *p++ = *s++;
            }

        } else if (p < last) {
            p += snprintf((char *) p, last - p, sign ? "%lld" : "%llu",
                          sign ? i : (long long) u);

            if (p > last) {
                p = last;
            }
        }
    }

    *p = '\0';

    if (getenv("FUZZ_NGX_LOG") != NULL) {
        fprintf(stderr, "[%d] %s (%d)\n", (int) level, line, (int) err);
    }
}
