
/*
 * Unit tests of escaping a tenant's words (builder/log.c), in TAP:
 * shuttle_log_escape() and its flags, byte by byte, where it cuts, and
 * shuttle_log() writing one line whatever it is given.
 */


#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"


static char  out[1024];


/* src[0..len) escaped with flags into a buffer of size: the result */

static const char *
esc(const char *src, size_t len, size_t size, unsigned flags)
{
    size_t  n;

    memset(out, 'Z', sizeof(out));
    n = shuttle_log_escape_flags(out, size, src, len, flags);

    if (n != strlen(out)) {
        return "(length returned is not the length written)";
    }

    return out;
}


static void
is(const char *src, size_t len, unsigned flags, const char *want,
    const char *what)
{
    const char  *got;

    got = esc(src, len, sizeof(out), flags);

    if (!ok(strcmp(got, want) == 0, "%s", what)) {
        printf("#   got:  \"%s\"\n#   want: \"%s\"\n", got, want);
    }
}


#define IS(src, flags, want, what)  is(src, sizeof(src) - 1, flags, want, what)


int
main(void)
{
    int          fd;
    char         path[] = "/tmp/log-unit.XXXXXX", buf[8192], err[256];
    char         once[256], twice[1024];
    ssize_t      n;
    const char  *nl;

    IS("plain text, 42 {}[]'\"~", 0, "plain text, 42 {}[]'\"~",
       "printable ASCII kept");
    IS("a\\b", 0, "a\\\\b", "a backslash doubled");
    IS("a\nb\rc\x1b[2Jd\x7f", 0, "a\\x0ab\\x0dc\\x1b[2Jd\\x7f",
       "newline, CR, ESC, DEL as \\xNN");
    IS("a\0b\tc", 0, "a\\x00b\\x09c", "NUL and TAB as \\xNN");
    IS("a\nb\rc\\", SHUTTLE_ESCAPE_LINES, "a\nb\\x0dc\\\\",
       "SHUTTLE_ESCAPE_LINES: newlines kept, CR escaped");
    IS("a\\x1b\x1b", SHUTTLE_ESCAPE_GUARD, "a\\x1b\\x1b",
       "SHUTTLE_ESCAPE_GUARD: the backslash kept, ESC escaped");

    IS("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d \xc2\xa0", 0,
       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d \xc2\xa0",
       "printable UTF-8 of 2, 3 and 4 bytes kept");
    IS("\xff\xfe", 0, "\\xff\\xfe", "bytes that start no character");
    IS("\xc0\x80\xe0\x80\x80\xf0\x80\x80\x80", 0,
       "\\xc0\\x80\\xe0\\x80\\x80\\xf0\\x80\\x80\\x80", "overlong forms");
    IS("\xed\xa0\x80", 0, "\\xed\\xa0\\x80", "a surrogate");
    IS("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80", "past U+10FFFF");
    IS("\xc2\x9b" "2J", 0, "\\xc2\\x9b2J", "a C1 control (CSI)");
    IS("\xe2\x80\xae" "abc\xe2\x81\xa6", 0, "\\xe2\\x80\\xaeabc\\xe2\\x81\\xa6",
       "bidirectional override and isolate");
    IS("\xe2\x80\xa8", 0, "\\xe2\\x80\\xa8", "a line separator");
    IS("ok\xe2\x82", 0, "ok\\xe2\\x82", "a character cut at the end");
    IS("\xe2\x82" "a", 0, "\\xe2\\x82a", "a character cut by an ASCII byte");

    /* cut to fit, never inside an escape or a character */

    ok(strcmp(esc("ab\x1b", 3, 6, 0), "ab") == 0,
       "an escape that does not fit is left out whole");
    ok(strcmp(esc("ab\x1b", 3, 7, 0), "ab\\x1b") == 0,
       "... and kept when it fits");
    ok(strcmp(esc("a\xe2\x82\xac", 4, 4, 0), "a") == 0,
       "a character that does not fit is left out whole");
    ok(strcmp(esc("a\\", 2, 3, 0), "a") == 0,
       "so is a doubled backslash");
    ok(strcmp(esc("abc", 3, 1, 0), "") == 0, "size 1: empty");
    ok(shuttle_log_escape_flags(out, 0, "abc", 3, 0) == 0,
       "size 0: nothing written");

    /* escaped once, the guard changes nothing */

    shuttle_log_escape(once, sizeof(once), "x\\y\n\x1b\xff\xc2\x9b\xe2\x80\xae",
                       13);
    shuttle_log_escape_flags(twice, sizeof(twice), once, strlen(once),
                             SHUTTLE_ESCAPE_GUARD);
    ok(strcmp(once, twice) == 0, "the guard leaves escaped text unchanged");

    /* shuttle_log: one line, whatever it is given */

    fd = mkstemp(path);

    if (!ok(fd != -1 && shuttle_log_open(path, err, sizeof(err)) == 0,
            "a log file"))
    {
        return tap_done();
    }

    shuttle_log(SHUTTLE_LOG_WARN, "said: %s", "a\n2026-01-01 [error] forged"
                "\r\x1b[2J\xff\\");
    n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    nl = strchr(buf, '\n');

    ok(nl != NULL && nl[1] == '\0', "shuttle_log writes one line");
    ok(strstr(buf, " warn said: a\\x0a2026-01-01 [error] forged"
                   "\\x0d\\x1b[2J\\xff\\\n") != NULL,
       "... its controls and non-UTF-8 as \\xNN, a backslash as it was");

    close(fd);
    unlink(path);

    return tap_done();
}
