/*
 * tasker: a tenant's service that takes every task its cgroup allows,
 * for t/sandbox-tasks.t.
 *
 *   GET /pid       its pid (2: the loader under its namespace's init)
 *   GET /threads   starts threads that sleep until none more can be had:
 *                  "made N"
 */

#define _GNU_SOURCE

#include <shuttle.h>

#include <pthread.h>
#include <unistd.h>


static void *
tasker_sleep(void *arg)
{
    for ( ;; ) {
        pause();
    }

    return NULL;
}


static void
tasker_pid(shuttle_req *req, shuttle_res *res)
{
    shuttle_printf(res, 200, "pid %d\n", (int) getpid());
}


static void
tasker_threads(shuttle_req *req, shuttle_res *res)
{
    int             n;
    pthread_t       t;
    pthread_attr_t  attr;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);

    for (n = 0; n < 10000; n++) {
        if (pthread_create(&t, &attr, tasker_sleep, NULL) != 0) {
            break;
        }
    }

    shuttle_printf(res, 200, "made %d\n", n);
}


SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/pid", tasker_pid);
    shuttle_get(app, "/threads", tasker_threads);
    return 0;
}
