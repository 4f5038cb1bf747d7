
/*
 * Log lines on stderr, which the builder keeps as the deployment's runtime
 * log.  Every line is written with one write(2), so lines of concurrent
 * threads never mix:
 *
 *     2025-11-24T10:12:13.456Z hello loader: ready
 *     2025-11-24T10:12:14.001Z hello: a line of the service's
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"


#define LOADER_LOG_STAMP   24          /* 2025-11-24T10:12:13.456Z */
#define LOADER_LOG_LINE    2048        /* a longer line is allocated */
#define LOADER_LOG_NAME    64


static size_t loader_log_stamp(char *buf);
static char *loader_log_digits(char *p, unsigned long v, int width);
static char *loader_log_cpy(char *p, char *end, const char *s);
static void loader_log_write(const char *buf, size_t len);


static char  loader_log_name[LOADER_LOG_NAME] = "service";


void
loader_log_init(const char *name)
{
    if (name != NULL && name[0] != '\0') {
        snprintf(loader_log_name, sizeof(loader_log_name), "%s", name);
    }
}


void
loader_log(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    loader_log_va("loader", fmt, args);
    va_end(args);
}


void
shuttle_log(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    loader_log_va(NULL, fmt, args);
    va_end(args);
}


void
loader_log_va(const char *who, const char *fmt, va_list args)
{
    int      n;
    char    *line, *p, *end;
    size_t   head, len;
    va_list  copy;
    char     buf[LOADER_LOG_LINE];

    end = buf + sizeof(buf);

    p = buf + loader_log_stamp(buf);
    *p++ = ' ';
    p = loader_log_cpy(p, end, loader_log_name);
    if (who != NULL) {
        p = loader_log_cpy(p, end, " ");
        p = loader_log_cpy(p, end, who);
    }
    p = loader_log_cpy(p, end, ": ");
    head = p - buf;

    va_copy(copy, args);
    n = vsnprintf(p, end - p - 1, fmt, copy);
    va_end(copy);

    if (n < 0) {
        n = 0;
    }

    line = buf;
    len = head + n;

    if (len >= sizeof(buf) - 1) {
        line = malloc(len + 2);

        if (line == NULL) {
            line = buf;
            len = sizeof(buf) - 2;

        } else {
            memcpy(line, buf, head);
            vsnprintf(line + head, n + 1, fmt, args);
        }
    }

    if (len == head || line[len - 1] != '\n') {
        line[len++] = '\n';
    }

    loader_log_write(line, len);

    if (line != buf) {
        free(line);
    }
}


void
loader_log_raw(const char *msg)
{
    char  *p, *end;
    char   buf[LOADER_LOG_LINE];

    end = buf + sizeof(buf) - 1;

    p = buf + loader_log_stamp(buf);
    p = loader_log_cpy(p, end, " ");
    p = loader_log_cpy(p, end, loader_log_name);
    p = loader_log_cpy(p, end, " loader: ");
    p = loader_log_cpy(p, end, msg);

    if (p == buf || p[-1] != '\n') {
        *p++ = '\n';
    }

    loader_log_write(buf, p - buf);
}


/*
 * The time in UTC, computed by hand rather than with gmtime_r(), which
 * may take a lock: loader_log_raw() is called from signal handlers.
 */
static size_t
loader_log_stamp(char *buf)
{
    char             *p;
    long              days, secs, era, doe, yoe, doy, mp, y, m, d;
    struct timespec   ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    days = ts.tv_sec / 86400;
    secs = ts.tv_sec % 86400;

    /* days since 1970-01-01 to a civil date, in 400-year eras from 0000 */
    days += 719468;
    era = days / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = yoe + era * 400 + (m <= 2);

    p = loader_log_digits(buf, y, 4);
    *p++ = '-';
    p = loader_log_digits(p, m, 2);
    *p++ = '-';
    p = loader_log_digits(p, d, 2);
    *p++ = 'T';
    p = loader_log_digits(p, secs / 3600, 2);
    *p++ = ':';
    p = loader_log_digits(p, secs / 60 % 60, 2);
    *p++ = ':';
    p = loader_log_digits(p, secs % 60, 2);
    *p++ = '.';
    p = loader_log_digits(p, ts.tv_nsec / 1000000, 3);
    *p++ = 'Z';

    return LOADER_LOG_STAMP;
}


static char *
loader_log_digits(char *p, unsigned long v, int width)
{
    int  i;

    for (i = width - 1; i >= 0; i--) {
        p[i] = '0' + v % 10;
        v /= 10;
    }

    return p + width;
}


static char *
loader_log_cpy(char *p, char *end, const char *s)
{
    while (*s != '\0' && p < end) {
        *p++ = *s++;
    }

    return p;
}


static void
loader_log_write(const char *buf, size_t len)
{
    ssize_t  n;

    while (len > 0) {
        n = write(STDERR_FILENO, buf, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            return;
        }

        buf += n;
        len -= n;
    }
}
