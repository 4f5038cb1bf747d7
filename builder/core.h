
/*
 * shuttle-builder core: the daemon's context, shared by every subsystem.
 *
 * shuttle_serve_t is the daemon (nginx's ngx_cycle_t): its configuration,
 * the store, the build queue, the zone and the lock that guards it, and
 * the message queue by which the other threads hand work to the main
 * thread.  serve.c (startup) creates and fills it, then wires the
 * subsystems to it: the build queue runs deploy.c's job, main drives
 * supervise.c, api.c answers on the socket.  A subsystem includes this
 * header, never serve.h nor another subsystem's to reach the daemon: so
 * the include graph has no circle (make check-includes).
 *
 * The functions here are the only ones the subsystems call on the daemon:
 *
 *   shuttle_serve_post()       any thread: a message for main (it starts,
 *                              rolls back, restarts and deletes); main
 *                              reads them in serve.c's loop
 *   shuttle_serve_changed()    any thread: a deployment changed
 *   shuttle_serve_wait()       the API's log followers wait for that
 *   shuttle_serve_zone_sync()  any thread: writes a project's zone slot
 *                              from the store, under zone_lock
 *   shuttle_serve_view()       what that slot says, from the store
 *   shuttle_serve_note()       a line in a deployment's build.log
 *
 * It includes only the headers of the types it holds (extract, queue,
 * sandbox, state, store, zone), none of which includes a part of the
 * daemon; the supervisor and the API are opaque pointers here, set by
 * serve.c.
 */


#ifndef SHUTTLE_BUILDER_CORE_H
#define SHUTTLE_BUILDER_CORE_H


#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "extract.h"
#include "queue.h"
#include "sandbox.h"
#include "state.h"
#include "store.h"
#include "zone.h"


typedef struct shuttle_supervise_s  shuttle_supervise_t;
typedef struct shuttle_api_s        shuttle_api_t;
typedef struct shuttle_keyring_s    shuttle_keyring_t;


typedef struct {
    char                   *data;           /* absolute paths */
    char                   *zone;
    char                   *socket;
    char                   *spool;
    char                   *loader;
    char                   *sdk_include;
    char                   *log;
    const char             *apps_url;       /* "http://{name}.example" */
    const char             *nginx_user;
    uid_t                   uid;            /* --nginx-user's, or -1 */
    gid_t                   gid;
    shuttle_keyring_t      *keys;           /* --api-keys, or NULL */
    uint16_t                port_lo;
    uint16_t                port_hi;
    unsigned                jobs;
    unsigned                build_timeout_ms;
    unsigned                start_timeout_ms;
    int64_t                 idle_ms;        /* --idle, 0: never */
    int64_t                 health_ms;      /* --health-check, 0: never */
    int64_t                 health_timeout_ms;
    shuttle_extract_limits_t  upload;       /* what an upload may hold */
    char                   *postgres;       /* the admin DSN, or NULL */
    const char             *postgres_socket;    /* the services' socket
                                                   directory, or NULL */
    unsigned                postgres_connections;   /* of a tenant role */

    shuttle_sandbox_t      *sandbox;        /* NULL: --no-sandbox */
    unsigned                host_network:1; /* --service-network host */
    uid_t                   uid_lo;         /* --uids: the projects' */
    uid_t                   uid_hi;
    shuttle_limits_t        limits;         /* of every project */
    unsigned                key_jobs;       /* builds at once of one key */
    unsigned                key_projects;   /* live projects of one key */
} shuttle_serve_conf_t;


typedef enum {
    SHUTTLE_MSG_BUILT = 1,      /* id is built: start it */
    SHUTTLE_MSG_DELETE,         /* delete project (the sender waits) */
    SHUTTLE_MSG_ROLLBACK,       /* start id again (the sender waits) */
    SHUTTLE_MSG_RESTART         /* a new loader for running id (waits) */
} shuttle_msg_type_t;


typedef struct shuttle_msg_s {
    shuttle_msg_type_t      type;
    int64_t                 id;
    char                    project[SHUTTLE_NAME_MAX + 1];
    unsigned                wait:1;     /* on the sender's stack: it waits */
    unsigned                purge:1;    /* DELETE: its data goes next */
    unsigned                done:1;
    const char             *reason;    /* ROLLBACK: for the transition */
    int                     rc;
    char                    err[512];
    struct shuttle_msg_s   *next;
} shuttle_msg_t;


typedef struct {
    shuttle_serve_conf_t    conf;
    shuttle_store_t        *store;
    shuttle_queue_t        *queue;
    shuttle_supervise_t    *sup;
    shuttle_api_t          *api;

    pthread_mutex_t         zone_lock;
    shuttle_zone_t          zone;

    int                     wake_fd;        /* eventfd: msgs for main */
    pthread_mutex_t         lock;           /* msgs, changes */
    pthread_cond_t          changed;
    shuttle_msg_t          *msgs;
    uint64_t                changes;        /* deployments that changed */
    int64_t                 renew_failed;   /* the last deployment whose
                                               restart did not come up */

    volatile int            stopping;
} shuttle_serve_t;


/* the zone-level view of a project: what its zone slot says */
typedef struct {
    unsigned                state;          /* SHUTTLE_STATE_* */
    uint16_t                port;
    int64_t                 deployment;
    int64_t                 since;          /* idle: since when, ms */
} shuttle_serve_view_t;



/* writes the project's zone slot from the store (deletes it when the
 * project is gone) */
void shuttle_serve_zone_sync(shuttle_serve_t *s, const char *project);
int shuttle_serve_view(shuttle_serve_t *s, const shuttle_project_t *p,
    shuttle_serve_view_t *v);

/* a message for main; with m->wait set, returns once main handled it */
void shuttle_serve_post(shuttle_serve_t *s, shuttle_msg_t *m);

/* a deployment changed: wakes log followers */
void shuttle_serve_changed(shuttle_serve_t *s);
/* waits up to ms for a change after *seen */
void shuttle_serve_wait(shuttle_serve_t *s, uint64_t *seen, unsigned ms);

/* a line in a deployment's build.log ("shuttle: ..." lines are ours) */
void shuttle_serve_note(shuttle_serve_t *s, const char *project, int64_t id,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));


#endif /* SHUTTLE_BUILDER_CORE_H */
