
/*
 * The service: loading service.so, checking the ABI it was built against,
 * and running its main once.
 *
 * While main runs, the loader watches for the two ways a main can end the
 * process before it returns, so that the builder reads why on the ready
 * pipe rather than a bare end of file: exit() (an on_exit() handler sees
 * the status) and a crash (a handler for the fatal signals reports it,
 * then lets the signal kill the process as it would have).  Once main
 * has returned, a crash is the process's to die of, unobserved.
 */


#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"


static void loader_service_on_exit(int status, void *arg);
static void loader_service_crash(int signo);
static void loader_service_report(const char *msg);


static const int     loader_service_fatal[] = {
    SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP
};

static const char   *loader_service_fatal_names[] = {
    "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT", "SIGSYS", "SIGTRAP"
};

#define LOADER_SERVICE_NFATAL \
    (sizeof(loader_service_fatal) / sizeof(loader_service_fatal[0]))

static volatile sig_atomic_t  loader_service_in_main;
static volatile sig_atomic_t  loader_service_leaving;
static int                    loader_service_ready_fd = -1;


loader_main_pt
loader_service_load(const char *path, char *err, size_t errlen)
{
    void              *handle;
    char              *rel;
    const unsigned    *abi;
    loader_main_pt     main_fn;

    /* without a slash dlopen() would search the library path */
    rel = NULL;

    if (strchr(path, '/') == NULL) {
        rel = malloc(strlen(path) + 3);
        if (rel == NULL) {
            snprintf(err, errlen, "dlopen %s: out of memory", path);
            return NULL;
        }

        strcpy(rel, "./");
        strcat(rel, path);
    }

    /* kept open for the life of the process: never dlclose()d */
    handle = dlopen(rel ? rel : path, RTLD_NOW | RTLD_LOCAL);

    if (handle == NULL) {
        snprintf(err, errlen, "dlopen %s: %s", path, dlerror());

        /* libpq's own calls, without a PostgreSQL database declared */
        if (strstr(err, "undefined symbol: PQ") != NULL
            && loader_pq_open(err, errlen) == 0)
        {
            handle = dlopen(rel ? rel : path, RTLD_NOW | RTLD_LOCAL);

            if (handle == NULL) {
                snprintf(err, errlen, "dlopen %s: %s", path, dlerror());
            }
        }
    }

    free(rel);

    if (handle == NULL) {
        return NULL;
    }

    abi = dlsym(handle, "shuttle_service_abi");
    if (abi == NULL) {
        snprintf(err, errlen, "%s: no shuttle_service_abi symbol, the "
                 "service was not built with SHUTTLE_MAIN() of shuttle.h",
                 path);
        return NULL;
    }

    if (*abi != SHUTTLE_ABI) {
        snprintf(err, errlen, "%s: SDK ABI %u, this loader speaks %u",
                 path, *abi, (unsigned) SHUTTLE_ABI);
        return NULL;
    }

    main_fn = (loader_main_pt) dlsym(handle, "shuttle_service_main");
    if (main_fn == NULL) {
        snprintf(err, errlen, "%s: no shuttle_service_main symbol, the "
                 "service was not built with SHUTTLE_MAIN() of shuttle.h",
                 path);
        return NULL;
    }

    return main_fn;
}


int
loader_service_main(loader_main_pt main_fn, shuttle_app *app, int ready_fd,
    char *err, size_t errlen)
{
    int               rc;
    size_t            i;
    struct sigaction  sa, old[LOADER_SERVICE_NFATAL];

    loader_service_ready_fd = ready_fd;

    if (on_exit(loader_service_on_exit, NULL) != 0) {
        loader_log("on_exit: cannot register, an exit() in the service "
                   "will go unreported");
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = loader_service_crash;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);

    for (i = 0; i < LOADER_SERVICE_NFATAL; i++) {
        sigaction(loader_service_fatal[i], &sa, &old[i]);
    }

    loader_service_in_main = 1;

    rc = main_fn(app);

    loader_service_in_main = 0;

    for (i = 0; i < LOADER_SERVICE_NFATAL; i++) {
        sigaction(loader_service_fatal[i], &old[i], NULL);
    }

    if (rc != 0) {
        snprintf(err, errlen, "service main returned %d", rc);
        return -1;
    }

    return 0;
}


/* the loader itself exits from now on: nothing to report */
void
loader_service_exiting(void)
{
    loader_service_leaving = 1;
}


static void
loader_service_on_exit(int status, void *arg)
{
    char  msg[128];

    if (loader_service_leaving) {
        return;
    }

    if (loader_service_in_main) {
        snprintf(msg, sizeof(msg), "service main called exit(%d)", status);
        loader_service_report(msg);
        return;
    }

    loader_log("exited: the service called exit(%d)", status);
}


static void
loader_service_crash(int signo)
{
    int          v;
    size_t       i, len, n;
    const char  *name;
    char         msg[96], digits[8];

    name = "?";

    for (i = 0; i < LOADER_SERVICE_NFATAL; i++) {
        if (loader_service_fatal[i] == signo) {
            name = loader_service_fatal_names[i];
        }
    }

    /* "service main crashed: signal 11 (SIGSEGV)", without snprintf() */
    n = 0;
    v = signo;

    do {
        digits[n++] = '0' + v % 10;
        v /= 10;
    } while (v > 0 && n < sizeof(digits));

    len = 0;
    memcpy(msg, "service main crashed: signal ", 29);
    len += 29;

    while (n > 0) {
        msg[len++] = digits[--n];
    }

    msg[len++] = ' ';
    msg[len++] = '(';
    memcpy(msg + len, name, strlen(name));
    len += strlen(name);
    msg[len++] = ')';
    msg[len] = '\0';

    loader_service_report(msg);

    /* the handler is reset: the signal now kills as it would have */
    raise(signo);
}


/* async-signal-safe: "error: msg" on the ready pipe and in the log */
static void
loader_service_report(const char *msg)
{
    size_t  len, n;
    char    line[256];

    memcpy(line, "error: ", 7);
    len = 7;

    n = strlen(msg);
    if (n > sizeof(line) - len - 1) {
        n = sizeof(line) - len - 1;
    }

    memcpy(line + len, msg, n);
    len += n;
    line[len] = '\0';

    loader_log_raw(line);

    if (loader_service_ready_fd != -1) {
        line[len++] = '\n';

        if (write(loader_service_ready_fd, line, len) == -1) {
            /* nobody reads it: the log has the reason */
        }
    }
}
