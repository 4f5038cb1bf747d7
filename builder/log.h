
/*
 * The builder's log: one line per event, written with one write(2) so
 * lines from different threads never mix:
 *
 *     2026-11-24T10:32:10.484Z info deploy hello #7: running on ...
 *
 * Lines go to stderr until shuttle_log_open() names a file, which is
 * opened O_APPEND; shuttle_log_reopen() opens it again (after logrotate
 * moved it: the daemon does on SIGHUP).  Thread-safe.
 *
 * The time helpers are the builder's one clock: shuttle_now_ms() is wall
 * time (stored in SQLite, shown in the API), shuttle_mono_ms() is the
 * monotonic clock of the event loop's timers.
 */


#ifndef SHUTTLE_BUILDER_LOG_H
#define SHUTTLE_BUILDER_LOG_H


#include <stddef.h>
#include <stdint.h>


#define SHUTTLE_LOG_INFO   0
#define SHUTTLE_LOG_WARN   1
#define SHUTTLE_LOG_ERROR  2

/* "2026-11-24T10:32:10.484Z" and its NUL */
#define SHUTTLE_ISO_TIME_LEN  25


int shuttle_log_open(const char *path, char *err, size_t errlen);
int shuttle_log_reopen(char *err, size_t errlen);
void shuttle_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int64_t shuttle_now_ms(void);
int64_t shuttle_mono_ms(void);
int64_t shuttle_mono_us(void);
char *shuttle_iso_time(int64_t ms, char *buf);


#endif /* SHUTTLE_BUILDER_LOG_H */
