
/*
 * The daemon's startup, for its files only (serve.h is its contract):
 * the options as given, what startup collects, and the functions its
 * files share.
 *
 *   serve.c            shuttle_serve_main(): options, startup, the wiring
 *                      of the subsystems to the core, the loop, the stop
 *   serve_options.c    the options: usage, parsing, the configuration,
 *                      the sandbox and the tenants' limits
 *   serve_startup.c    the data directory, the zone, the store, the socket
 *                      and the signals opened
 *   serve_reconcile.c  what the store, the zone and /proc say at start,
 *                      reconciled: resumed, taken over, cleaned
 *   serve_loop.c       the event loop, the messages to main, the stop
 */

#ifndef SHUTTLE_BUILDER_SERVE_INT_H
#define SHUTTLE_BUILDER_SERVE_INT_H

/* after serve.h: it uses that header's types (and is not included by it,
   so the part and its own header make no include circle) */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "api.h"
#include "deploy.h"
#include "extract.h"
#include "fault.h"
#include "fsafe.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "provision.h"
#include "proc.h"
#include "supervise.h"
#include "tenant.h"


#define SERVE_ERRLEN        1024
#define SERVE_BACKLOG       128
#define SERVE_FDS_SPARE     64          /* the builder's own, its API's */

#define SERVE_DATA          "/var/lib/shuttle"
#define SERVE_SOCKET        "/run/shuttle/builder.sock"
/* below Linux's ephemeral ports (32768-60999): 10,000 projects, each
   with a second port while a deploy or a takeover replaces its loader */
#define SERVE_PORT_LO       10000
#define SERVE_PORT_HI       32767
#define SERVE_BUILD_TIMEOUT 120
#define SERVE_START_TIMEOUT 10
#define SERVE_IDLE_MS       (15 * 60 * 1000)
#define SERVE_HEALTH_MS     (10 * 1000)
#define SERVE_HEALTH_TIMEOUT_MS  (5 * 1000)
#define SERVE_UID_LO        200000
#define SERVE_UID_HI        299999
#define SERVE_KEY_PROJECTS  100
#define SERVE_PG_CONNECTIONS  10        /* of a tenant role */
#define SERVE_REPAIR_MS     5000        /* torn zone slots looked for */

#define SERVE_OPT_VALUE     1


typedef struct {
    const char             *name;
    const char            **value;
} serve_opt_t;


/* the options as given, before defaults and checks */
typedef struct {
    const char             *data;
    const char             *zone;
    const char             *socket;
    const char             *spool;
    const char             *ports;
    const char             *jobs;
    const char             *nginx_user;
    const char             *api_keys;
    const char             *apps_url;
    const char             *log;
    const char             *loader;
    const char             *sdk_include;
    const char             *build_timeout;
    const char             *start_timeout;
    const char             *idle;
    const char             *health;
    const char             *health_timeout;
    const char             *max_files;
    const char             *max_size;
    const char             *max_file_size;
    const char             *max_depth;
    const char             *postgres;
    const char             *postgres_file;
    const char             *postgres_socket;
    const char             *postgres_connections;
    const char             *uids;
    const char             *memory;
    const char             *tasks;
    const char             *cpu;
    const char             *nofile;
    const char             *file_size;
    const char             *disk;
    const char             *key_jobs;
    const char             *key_projects;
    const char             *no_sandbox;
    const char             *service_network;
} serve_args_t;


/* deployments collected from the store at startup */
typedef struct {
    shuttle_deployment_t   *elts;
    size_t                  nelts;
    size_t                  nalloc;
} serve_list_t;


typedef struct {
    char                  **names;
    size_t                  nelts;
    size_t                  nalloc;
} serve_names_t;

/* shared between the files of this part */

int serve_args(int argc, char **argv, serve_args_t *a);
int serve_conf(shuttle_serve_conf_t *conf, serve_args_t *a,
    char *err, size_t errlen);
void serve_capacity(shuttle_serve_t *s);
int serve_sandbox(shuttle_serve_t *s, int off, char *err,
    size_t errlen);
char *serve_join(const char *dir, const char *name);
int serve_mkdirs(const char *path, mode_t mode, char *err,
    size_t errlen);
int serve_same_fs(shuttle_serve_t *s, char *err, size_t errlen);
int serve_open_zone(shuttle_serve_t *s, char *err, size_t errlen);
void serve_repair_zone(shuttle_serve_t *s);
int serve_open_store(shuttle_serve_t *s, char *err, size_t errlen);
int serve_check_socket(const char *path, char *err, size_t errlen);
int serve_listen(shuttle_serve_t *s, char *err, size_t errlen);
int serve_signals(sigset_t *set);
int serve_reconcile(shuttle_serve_t *s, char *err, size_t errlen);
int serve_loop(shuttle_serve_t *s, int sigfd);
void serve_stop(shuttle_serve_t *s, const char *why, int all);
void serve_free(shuttle_serve_t *s);


#endif /* SHUTTLE_BUILDER_SERVE_INT_H */
