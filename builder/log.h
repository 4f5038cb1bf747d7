
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
 * Tenant text (what a loader says on its ready pipe, lines of a runtime
 * or build log, names from a tenant's files) enters a line or a
 * deployment's reason through shuttle_log_escape(): control bytes (\n,
 * \r, ESC, DEL, the C1 controls) and bytes that are not UTF-8 are shown
 * as \xNN, a backslash as \\; printable UTF-8 is kept.
 * SHUTTLE_ESCAPE_LINES keeps \n, each line escaped: the last lines of a
 * log quoted in a reason stay lines.  SHUTTLE_ESCAPE_GUARD leaves
 * backslashes alone, so that text escaped already passes unchanged:
 * shuttle_log() guards each whole line so (a line of the log is one line,
 * without a terminal control, whatever a caller passes), and so is a
 * failed deployment's reason.
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

#define SHUTTLE_ESCAPE_LINES  0x1       /* \n kept */
#define SHUTTLE_ESCAPE_GUARD  0x2       /* \ kept: escaped text unchanged */

/* "2026-11-24T10:32:10.484Z" and its NUL */
#define SHUTTLE_ISO_TIME_LEN  25


int shuttle_log_open(const char *path, char *err, size_t errlen);
int shuttle_log_reopen(char *err, size_t errlen);
void shuttle_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t shuttle_log_escape(char *dst, size_t size, const char *src,
    size_t len);
size_t shuttle_log_escape_flags(char *dst, size_t size, const char *src,
    size_t len, unsigned flags);

int64_t shuttle_now_ms(void);
int64_t shuttle_mono_ms(void);
int64_t shuttle_mono_us(void);
char *shuttle_iso_time(int64_t ms, char *buf);


#endif /* SHUTTLE_BUILDER_LOG_H */
