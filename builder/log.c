
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
    char        line[LOG_LINE_MAX];
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
    n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, args);
    va_end(args);

    if (n < 0) {
        n = 0;
    }

    len += (size_t) n < sizeof(line) - len - 1 ? (size_t) n
                                                : sizeof(line) - len - 2;
    line[len++] = '\n';

    /* one write: O_APPEND keeps concurrent lines whole */
    (void) !write(__atomic_load_n(&log_fd, __ATOMIC_ACQUIRE), line, len);

    errno = saved;
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
