
/*
 * tap.h: TAP output for the C unit tests (t/unit/NAME.c), one copy.
 *
 *     ok(cond, "what %s", ...)    one test: "ok N - what", or "not ok"
 *     tap_done()                  the plan, "1..N"; the exit status
 *
 * A test that keeps the message of the last error in a string defines
 * TAP_LAST_ERROR (an expression) before including this: a failed test
 * prints it as a diagnostic.
 */

#ifndef SHUTTLE_T_TAP_H
#define SHUTTLE_T_TAP_H


#include <stdarg.h>
#include <stdio.h>


static int  tap_n;
static int  tap_failed;


static int ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));


static int
ok(int cond, const char *fmt, ...)
{
    va_list  args;

    tap_n++;

    printf("%sok %d - ", cond ? "" : "not ", tap_n);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");

    if (!cond) {
        tap_failed++;
#ifdef TAP_LAST_ERROR
        printf("#   last error: %s\n", TAP_LAST_ERROR);
#endif
    }

    fflush(stdout);

    return cond;
}


static int __attribute__((unused))
tap_done(void)
{
    printf("1..%d\n", tap_n);

    return tap_failed ? 1 : 0;
}


#endif /* SHUTTLE_T_TAP_H */
