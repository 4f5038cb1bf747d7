
/*
 * The builder's log and clocks.
 */


#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"


#define LOG_LINE_MAX  4096


static size_t log_utf8(const unsigned char *p, size_t len);


static int          log_fd = STDERR_FILENO;
static const char  *log_path;


int
shuttle_log_open(const char *path, char *err, size_t errlen)
{
    int  fd, old;

    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    if (fd == -1) {
        snprintf(err, errlen, "log %s: %s", path, strerror(errno));
        return -1;
    }

    /* a line being written meanwhile goes to one file or the other */

    old = log_fd;
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
    log_path = path;

    if (old != STDERR_FILENO) {
        close(old);
    }

    return 0;
}


int
shuttle_log_reopen(char *err, size_t errlen)
{
    if (log_path == NULL) {
        return 0;
    }

    return shuttle_log_open(log_path, err, errlen);
}


void
shuttle_log(int level, const char *fmt, ...)
{
    int         n, saved;
    char        line[LOG_LINE_MAX], msg[LOG_LINE_MAX];
    size_t      len;
    va_list     args;
    const char *name;

    static const char  *names[] = { "info", "warn", "error" };

    saved = errno;

    name = level >= 0 && level <= SHUTTLE_LOG_ERROR ? names[level] : "info";

    shuttle_iso_time(shuttle_now_ms(), line);
    len = SHUTTLE_ISO_TIME_LEN - 1;

    n = snprintf(line + len, sizeof(line) - len, " %s ", name);
    len += n;

    va_start(args, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    if (n < 0) {
        n = 0;
    }

    /* one line, whatever it quotes: a \n or an ESC in it shown as \xNN */

    len += shuttle_log_escape_flags(line + len, sizeof(line) - len - 1, msg,
                                    (size_t) n < sizeof(msg) ? (size_t) n
                                                             : sizeof(msg) - 1,
                                    SHUTTLE_ESCAPE_GUARD);
    line[len++] = '\n';

    /* one write: O_APPEND keeps concurrent lines whole */
    (void) !write(__atomic_load_n(&log_fd, __ATOMIC_ACQUIRE), line, len);

    errno = saved;
}


size_t
shuttle_log_escape(char *dst, size_t size, const char *src, size_t len)
{
    return shuttle_log_escape_flags(dst, size, src, len, 0);
}


/*
 * src[0..len) into dst, NUL-terminated, as much as fits in size without
 * cutting an escape or a character; returns the length written.
 */

size_t
shuttle_log_escape_flags(char *dst, size_t size, const char *src,
    size_t len, unsigned flags)
{
    size_t                i, n, k;
    unsigned char         c;
    const unsigned char  *p;

    static const char  hex[] = "0123456789abcdef";

    if (size == 0) {
        return 0;
    }

    p = (const unsigned char *) src;
    n = 0;

    for (i = 0; i < len; i += k) {
        c = p[i];
        k = 1;

        if (c == '\\' && !(flags & SHUTTLE_ESCAPE_GUARD)) {
            if (n + 2 >= size) {
                break;
            }

            dst[n++] = '\\';
            dst[n++] = '\\';
            continue;
        }

        if ((c >= 0x20 && c < 0x7f)
            || (c == '\n' && (flags & SHUTTLE_ESCAPE_LINES)))
        {
            if (n + 1 >= size) {
                break;
            }

            dst[n++] = (char) c;
            continue;
        }

        if (c >= 0x80) {
            k = log_utf8(p + i, len - i);

            if (k > 0) {
                if (n + k >= size) {
                    break;
                }

                memcpy(dst + n, p + i, k);
                n += k;
                continue;
            }

            k = 1;
        }

        /* a control byte, DEL, a byte of no printable character */

        if (n + 4 >= size) {
            break;
        }

        dst[n++] = '\\';
        dst[n++] = 'x';
        dst[n++] = hex[c >> 4];
        dst[n++] = hex[c & 0xf];
    }

    dst[n] = '\0';

    return n;
}


/*
 * The length of the printable UTF-8 character at p, 0 if it is none: an
 * invalid or overlong sequence, a surrogate, a C1 control (U+0080 to
 * U+009F, which terminals obey), a line or paragraph separator, or a
 * bidirectional override or isolate (U+202A to U+202E, U+2066 to U+2069:
 * they reorder what a reader sees).
 */

static size_t
log_utf8(const unsigned char *p, size_t len)
{
    size_t         k, i;
    unsigned char  lo, hi;

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        k = 2;
        lo = p[0] == 0xc2 ? 0xa0 : 0x80;
        hi = 0xbf;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        k = 3;
        lo = p[0] == 0xe0 ? 0xa0 : 0x80;
        hi = p[0] == 0xed ? 0x9f : 0xbf;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        k = 4;
        lo = p[0] == 0xf0 ? 0x90 : 0x80;
        hi = p[0] == 0xf4 ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if (len < k || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < k; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    if (p[0] == 0xe2
        && ((p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae)
            || (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)))
    {
        return 0;
    }

    return k;
}


int64_t
shuttle_now_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
shuttle_mono_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
shuttle_mono_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/* ISO 8601 UTC with milliseconds into buf[SHUTTLE_ISO_TIME_LEN] */

char *
shuttle_iso_time(int64_t ms, char *buf)
{
    int        frac;
    time_t     sec;
    struct tm  tm;

    sec = (time_t) (ms / 1000);
    frac = (int) (ms % 1000);

    if (frac < 0) {
        frac += 1000;
        sec--;
    }

    if (gmtime_r(&sec, &tm) == NULL
        || strftime(buf, SHUTTLE_ISO_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm)
           != SHUTTLE_ISO_TIME_LEN - 6)
    {
        strcpy(buf, "0000-00-00T00:00:00");
    }

    buf[19] = '.';
    buf[20] = (char) ('0' + frac / 100);
    buf[21] = (char) ('0' + frac / 10 % 10);
    buf[22] = (char) ('0' + frac % 10);
    buf[23] = 'Z';
    buf[24] = '\0';

    return buf;
}
