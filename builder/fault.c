
/*
 * Fault points: see fault.h.
 */


#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"


static const char  *fault_points;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;


static void
fault_init(void)
{
    fault_points = getenv("SHUTTLE_FAULT");
}


void
shuttle_fault(const char *point)
{
    size_t       len;
    const char  *p, *end;

    (void) pthread_once(&fault_once, fault_init);

    if (fault_points == NULL || fault_points[0] == '\0') {
        return;
    }

    len = strlen(point);

    for (p = fault_points; *p != '\0'; p = *end ? end + 1 : end) {
        end = strchrnul(p, ',');

        if ((size_t) (end - p) == len && memcmp(p, point, len) == 0) {
            shuttle_log(SHUTTLE_LOG_WARN, "fault point %s: stopping "
                        "(SHUTTLE_FAULT)", point);
            (void) raise(SIGSTOP);
            return;
        }
    }
}
