
/*
 * shuttle-builder serve: options, startup and reconciliation, the event
 * loop, and the stop.
 */


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
#include "serve.h"
#include "supervise.h"
#include "tenant.h"


#define SERVE_ERRLEN        1024
#define SERVE_BACKLOG       128

#define SERVE_DATA          "/var/lib/shuttle"
#define SERVE_SOCKET        "/run/shuttle/builder.sock"
#define SERVE_PORT_LO       20000
#define SERVE_PORT_HI       29999
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


static void serve_usage(FILE *f);
static int serve_args(int argc, char **argv, serve_args_t *a);
static int serve_conf(shuttle_serve_conf_t *conf, serve_args_t *a,
    char *err, size_t errlen);
static int serve_sandbox(shuttle_serve_t *s, int off, char *err,
    size_t errlen);
static int serve_tenants(shuttle_serve_conf_t *conf, serve_args_t *a,
    char *err, size_t errlen);
static int serve_limit_number(const char *opt, const char *value,
    unsigned long min, unsigned long max, unsigned *out, char *err,
    size_t errlen);
static int serve_limit_size(const char *opt, const char *value,
    uint64_t *out, char *err, size_t errlen);
static char *serve_abs(const char *path);
static char *serve_join(const char *dir, const char *name);
static char *serve_exe_dir(void);
static int serve_number(const char *s, unsigned long min, unsigned long max,
    unsigned long *out);
static int serve_size(const char *s, uint64_t *out);
static char *serve_read_line(const char *path, char *err, size_t errlen);
static int serve_mkdirs(const char *path, mode_t mode, char *err,
    size_t errlen);
static int serve_same_fs(shuttle_serve_t *s, char *err, size_t errlen);
static int serve_open_zone(shuttle_serve_t *s, char *err, size_t errlen);
static int serve_open_store(shuttle_serve_t *s, char *err, size_t errlen);
static void serve_repair_zone(shuttle_serve_t *s);
static int serve_check_socket(const char *path, char *err, size_t errlen);
static int serve_listen(shuttle_serve_t *s, char *err, size_t errlen);
static int serve_signals(sigset_t *set);
static int serve_reconcile(shuttle_serve_t *s, char *err, size_t errlen);
static int serve_collect(const shuttle_deployment_t *d, void *data);
static int serve_resume(shuttle_serve_t *s, const shuttle_deployment_t *d);
static void serve_orphan(pid_t pid, const char *so, void *data);
static void serve_remains(shuttle_serve_t *s);
static int serve_collect_name(const shuttle_project_t *p, void *data);
static int serve_collect_slot(const shuttle_zone_slot_t *slot, void *data);
static int serve_names_add(serve_names_t *n, const char *name, size_t len);
static int serve_names_has(serve_names_t *n, const char *name);
static void serve_names_free(serve_names_t *n);
static int serve_loop(shuttle_serve_t *s, int sigfd);
static void serve_messages(shuttle_serve_t *s);
static void serve_delete(shuttle_serve_t *s, shuttle_msg_t *m);
static void serve_stop(shuttle_serve_t *s, const char *why);
static void serve_free(shuttle_serve_t *s);


int
shuttle_serve_main(int argc, char **argv)
{
    int               rc, sigfd, fd;
    char              err[SERVE_ERRLEN];
    sigset_t          set;
    serve_args_t      a;
    struct rlimit     rl;
    shuttle_serve_t  *s;

    memset(&a, 0, sizeof(serve_args_t));
    shuttle_metrics_init();

    rc = serve_args(argc, argv, &a);
    if (rc != -1) {
        return rc;
    }

    /*
     * The modes of what it makes are its own, whatever umask it was started
     * with: nginx's workers enter the data directory, the projects' uids
     * their sandbox's new root (an operator's umask 077 failed every
     * build: "exec /usr/bin/cc: Permission denied")
     */
    umask(022);

    /* 0, 1 and 2 open: a descriptor of ours must never land there */

    do {
        fd = open("/dev/null", O_RDWR);
    } while (fd != -1 && fd <= STDERR_FILENO);

    if (fd != -1) {
        close(fd);
    }

    s = calloc(1, sizeof(shuttle_serve_t));
    if (s == NULL) {
        fprintf(stderr, "shuttle-builder serve: %s\n", strerror(ENOMEM));
        return 1;
    }

    s->wake_fd = -1;
    s->zone.fd = -1;
    (void) pthread_mutex_init(&s->zone_lock, NULL);
    (void) pthread_mutex_init(&s->lock, NULL);
    (void) pthread_cond_init(&s->changed, NULL);

    if (serve_conf(&s->conf, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "shuttle-builder serve: %s\n", err);
        free(s);
        return 2;
    }

    /*
     * A descriptor or three per project: its socket (kept while it is
     * idle, too), a loader's readiness pipe, a refused connection.  As
     * many as the hard limit allows; the loaders get --nofile.
     */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (s->conf.log != NULL
        && shuttle_log_open(s->conf.log, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "shuttle-builder serve: %s\n", err);
        goto failed;
    }

    if (serve_sandbox(s, a.no_sandbox != NULL, err, sizeof(err)) != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
        goto failed;
    }

    /* before any thread: every thread inherits the blocked signals */

    sigfd = serve_signals(&set);
    if (sigfd == -1) {
        shuttle_log(SHUTTLE_LOG_ERROR, "signalfd: %s", strerror(errno));
        goto failed;
    }

    if (serve_mkdirs(s->conf.data, 0755, err, sizeof(err)) != 0
        || serve_mkdirs(s->conf.spool, 0700, err, sizeof(err)) != 0
        || serve_same_fs(s, err, sizeof(err)) != 0
        || serve_open_zone(s, err, sizeof(err)) != 0
        || serve_check_socket(s->conf.socket, err, sizeof(err)) != 0)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
        goto failed;
    }

    if (s->conf.nginx_user != NULL
        && chown(s->conf.spool, s->conf.uid, s->conf.gid) == -1)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "spool %s: chown to %s: %s",
                    s->conf.spool, s->conf.nginx_user, strerror(errno));
        goto failed;
    }

    if (serve_open_store(s, err, sizeof(err)) != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
        goto failed;
    }

    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd == -1) {
        shuttle_log(SHUTTLE_LOG_ERROR, "eventfd: %s", strerror(errno));
        goto failed;
    }

    s->sup = shuttle_supervise_create(s);
    if (s->sup == NULL) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", strerror(ENOMEM));
        goto failed;
    }

    s->queue = shuttle_queue_create(s->conf.jobs, shuttle_deploy_run, s, err,
                                    sizeof(err));
    if (s->queue == NULL) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
        goto failed;
    }

    if (serve_reconcile(s, err, sizeof(err)) != 0
        || serve_listen(s, err, sizeof(err)) != 0)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
        serve_stop(s, "startup failed");
        goto failed;
    }

    if (access(s->conf.loader, X_OK) != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "loader %s: %s: deployments will fail "
                    "to start (see --loader)", s->conf.loader,
                    strerror(errno));
    }

    shuttle_provision_announce(s);

    shuttle_log(SHUTTLE_LOG_INFO, "ready: pid %d, socket %s, data %s, zone "
                "%s, ports %u-%u, %u build jobs, loader %s, SDK %s",
                (int) getpid(), s->conf.socket, s->conf.data, s->conf.zone,
                (unsigned) s->conf.port_lo, (unsigned) s->conf.port_hi,
                s->conf.jobs, s->conf.loader, s->conf.sdk_include);

    rc = serve_loop(s, sigfd);

    serve_free(s);

    return rc;

failed:

    if (s->queue != NULL) {
        shuttle_queue_stop(s->queue);
    }

    if (s->conf.log != NULL) {
        /* whoever started it looks here first */
        fprintf(stderr, "shuttle-builder serve: did not start, see %s\n",
                s->conf.log);
    }

    serve_free(s);

    return 1;
}


void
shuttle_serve_zone_sync(shuttle_serve_t *s, const char *project)
{
    int                   rc;
    char                  err[512];
    uint32_t              addr;
    shuttle_project_t     p;
    shuttle_zone_slot_t   slot;
    shuttle_serve_view_t  v;

    pthread_mutex_lock(&s->zone_lock);

    rc = shuttle_store_project(s->store, project, &p, err, sizeof(err));

    if (rc == SHUTTLE_STORE_NOT_FOUND
        || (rc == 0 && shuttle_serve_view(s, &p, &v) != 0))
    {
        if (shuttle_zone_get(&s->zone, project, &slot) == SHUTTLE_ZONE_FOUND
            && shuttle_zone_del(&s->zone, project, err, sizeof(err)) != 0)
        {
            shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
        }

        goto done;
    }

    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "zone %s: %s", project, err);
        goto done;
    }

    addr = v.port ? htonl(INADDR_LOOPBACK) : 0;

    /* an unchanged slot is left alone: nginx sees no write at all */

    if (shuttle_zone_get(&s->zone, project, &slot) == SHUTTLE_ZONE_FOUND
        && slot.state == v.state && slot.addr == addr
        && slot.port == v.port && slot.deployment == (uint64_t) v.deployment)
    {
        goto done;
    }

    if (shuttle_zone_set(&s->zone, project, v.state, addr, v.port,
                         (uint64_t) v.deployment, err, sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", err);
    }

done:

    pthread_mutex_unlock(&s->zone_lock);
}


/*
 * The project's zone view: its current deployment when it has one (idle:
 * its socket waits for a connection; no socket at the moment: loading),
 * else its latest deployment's state.
 */

int
shuttle_serve_view(shuttle_serve_t *s, const shuttle_project_t *p,
    shuttle_serve_view_t *v)
{
    char                  err[512];
    shuttle_deployment_t  d;

    memset(v, 0, sizeof(shuttle_serve_view_t));

    if (p->current != 0
        && shuttle_store_deployment(s->store, p->current, &d, err,
                                    sizeof(err)) == 0
        && d.state.tag == SHUTTLE_DEPLOY_RUNNING)
    {
        v->deployment = d.id;
        v->port = d.state.u.running.port;
        v->state = v->port == 0 ? SHUTTLE_STATE_LOADING
                   : d.state.u.running.idle_since ? SHUTTLE_STATE_IDLE
                   : SHUTTLE_STATE_RUNNING;
        v->since = d.state.u.running.idle_since;
        return 0;
    }

    if (p->latest != 0
        && shuttle_store_deployment(s->store, p->latest, &d, err,
                                    sizeof(err)) == 0
        && d.state.tag != SHUTTLE_DEPLOY_DELETED)
    {
        v->deployment = d.id;
        v->state = shuttle_deploy_zone_state(d.state.tag);
        return 0;
    }

    return -1;
}


void
shuttle_serve_post(shuttle_serve_t *s, shuttle_msg_t *m)
{
    uint64_t        one;
    shuttle_msg_t **last;

    pthread_mutex_lock(&s->lock);

    if (m->wait && s->stopping) {
        m->rc = -2;
        snprintf(m->err, sizeof(m->err), "the builder is stopping");
        pthread_mutex_unlock(&s->lock);
        return;
    }

    for (last = &s->msgs; *last != NULL; last = &(*last)->next) {
        /* the tail */
    }

    m->next = NULL;
    *last = m;

    one = 1;
    (void) !write(s->wake_fd, &one, sizeof(one));

    while (m->wait && !m->done) {
        pthread_cond_wait(&s->changed, &s->lock);
    }

    pthread_mutex_unlock(&s->lock);
}


void
shuttle_serve_changed(shuttle_serve_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->changes++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}


void
shuttle_serve_wait(shuttle_serve_t *s, uint64_t *seen, unsigned ms)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long) (ms % 1000) * 1000000;

    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }

    pthread_mutex_lock(&s->lock);

    if (s->changes == *seen && !s->stopping) {
        (void) pthread_cond_timedwait(&s->changed, &s->lock, &ts);
    }

    *seen = s->changes;

    pthread_mutex_unlock(&s->lock);
}


void
shuttle_serve_note(shuttle_serve_t *s, const char *project, int64_t id,
    const char *fmt, ...)
{
    int      fd, n;
    char     path[SHUTTLE_PATH_MAX], line[SHUTTLE_REASON_MAX + 64];
    va_list  args;

    if (shuttle_deploy_path(path, sizeof(path), s->conf.data, project, id,
                            "build.log") != 0)
    {
        return;
    }

    n = snprintf(line, sizeof(line), "shuttle: ");

    va_start(args, fmt);
    n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, args);
    va_end(args);

    if ((size_t) n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }

    line[n++] = '\n';

    fd = shuttle_fsafe_open(s->conf.data, path, O_WRONLY | O_APPEND | O_CREAT,
                            0640);
    if (fd == -1) {
        return;
    }

    (void) !write(fd, line, n);
    close(fd);
}


static void
serve_usage(FILE *f)
{
    fputs(
"usage: shuttle-builder serve [OPTIONS]\n"
"\n"
"Runs the builder: the hand-off of uploads from nginx and the management\n"
"API on a unix socket, the build queue, the loaders, the routing zone.\n"
"\n"
"options:\n"
"  --data DIR            state, projects, and the defaults below\n"
"                        (" SERVE_DATA ")\n"
"  --zone PATH           the routing zone nginx maps (DATA/zone)\n"
"  --socket PATH         the API's unix socket (" SERVE_SOCKET ")\n"
"  --spool DIR           where nginx writes uploads (DATA/spool)\n"
"  --ports LO-HI         loaders' ports on 127.0.0.1 (20000-29999)\n"
"  --jobs N              builds at once (the number of CPUs)\n"
"  --nginx-user USER     owner of the socket (0600) and of the spool,\n"
"                        so nginx's workers reach them (default root)\n"
"  --api-keys FILE       nginx's shuttle_api_keys file: a request on the\n"
"                        socket speaks for the key whose secret it sends\n"
"                        (Authorization: Bearer); read again when it\n"
"                        changes.  Without it only root's requests, which\n"
"                        may name a key (X-Shuttle-Key, key=), are taken\n"
"  --apps-url TEMPLATE   a project's URL, {name} replaced, e.g.\n"
"                        http://{name}.apps.example.com\n"
"  --log FILE            log there, not to stderr\n"
"  --loader PATH         shuttle-loader (beside this program)\n"
"  --sdk-include DIR     the directory of shuttle.h (../include beside\n"
"                        this program, or /usr/local/include)\n"
"  --build-timeout SEC   a build's wall clock limit (120)\n"
"  --start-timeout SEC   a loader's time to be ready (10)\n"
"  --idle DURATION       a project with no request for this long is\n"
"                        scaled to zero: its loader stops, its socket\n"
"                        stays, the next request starts it again (15m;\n"
"                        0 never; 30s, 2h, 500ms ...)\n"
"  --health-check DURATION  each running loader is asked \"OPTIONS *\"\n"
"                        this often; one that does not answer three times\n"
"                        in a row is killed and restarted (10s; 0 never)\n"
"  --health-timeout DURATION  an answer's time (5s)\n"
"\n"
"tenants: each project runs as a uid of its own, sandboxed, in limits:\n"
"  --uids LO-HI          the projects' uids and gids (200000-299999)\n"
"  --memory SIZE         RAM of a project's service, and of a build (256m)\n"
"  --tasks N             processes and threads of each (64)\n"
"  --cpu WEIGHT          CPU share, 1-10000; 100 is an equal share (100)\n"
"  --nofile N            open files of one process (1024)\n"
"  --file-size SIZE      bytes of one file written (1g)\n"
"  --disk SIZE           bytes of a project's data (1g)\n"
"  --key-jobs N          builds at once of one key (half of --jobs)\n"
"  --key-projects N      live projects of one key (100)\n"
"  --service-network none|host  none: each service in a network namespace\n"
"                        of its own, only its listening socket and a\n"
"                        loopback (default); host: the host's network,\n"
"                        for services that connect out (they then reach\n"
"                        every port of this host too)\n"
"  --no-sandbox          run tenants' code as the builder's user, without\n"
"                        namespaces, filters or limits: one developer's\n"
"                        own machine only; logged\n"
"\n"
"what an upload may hold (a SIZE takes a k, m or g suffix):\n"
"  --max-files N         entries, directories included (10000)\n"
"  --max-size SIZE       bytes of all files together (256m)\n"
"  --max-file-size SIZE  bytes of one file (64m)\n"
"  --max-depth N         path components of an entry (16)\n"
"\n"
"PostgreSQL, for services that declare SHUTTLE_POSTGRES():\n"
"  --postgres DSN        an admin connection (libpq), e.g.\n"
"                        \"host=/run/postgresql user=postgres\"; each\n"
"                        project gets a role and databases of its own\n"
"  --postgres-file FILE  the DSN read from FILE (keeps a password out of\n"
"                        the process list)\n"
"  --postgres-socket DIR the server's unix socket directory, which services\n"
"                        connect through (the DSN's host when it is a\n"
"                        directory): give it when the DSN is TCP\n"
"  --postgres-connections N  connections of one project's role (10)\n"
"\n"
"signals:\n"
"  SIGTERM, SIGINT  stop: API closed, builds cancelled, loaders stopped\n"
"                   (running deployments start again with the builder)\n"
"  SIGQUIT          exit at once, loaders keep serving; the next builder\n"
"                   takes them over\n"
"  SIGHUP           reopen the --log file\n", f);
}


/* -1: go on; else the exit status */

static int
serve_args(int argc, char **argv, serve_args_t *a)
{
    int           i;
    size_t        len;
    const char   *arg, *eq, *value;
    serve_opt_t  *o;

    serve_opt_t  opts[] = {
        { "--data", &a->data },
        { "--zone", &a->zone },
        { "--socket", &a->socket },
        { "--spool", &a->spool },
        { "--ports", &a->ports },
        { "--jobs", &a->jobs },
        { "--nginx-user", &a->nginx_user },
        { "--api-keys", &a->api_keys },
        { "--apps-url", &a->apps_url },
        { "--log", &a->log },
        { "--loader", &a->loader },
        { "--sdk-include", &a->sdk_include },
        { "--build-timeout", &a->build_timeout },
        { "--start-timeout", &a->start_timeout },
        { "--idle", &a->idle },
        { "--health-check", &a->health },
        { "--health-timeout", &a->health_timeout },
        { "--max-files", &a->max_files },
        { "--max-size", &a->max_size },
        { "--max-file-size", &a->max_file_size },
        { "--max-depth", &a->max_depth },
        { "--postgres", &a->postgres },
        { "--postgres-file", &a->postgres_file },
        { "--postgres-socket", &a->postgres_socket },
        { "--postgres-connections", &a->postgres_connections },
        { "--uids", &a->uids },
        { "--memory", &a->memory },
        { "--tasks", &a->tasks },
        { "--cpu", &a->cpu },
        { "--nofile", &a->nofile },
        { "--file-size", &a->file_size },
        { "--disk", &a->disk },
        { "--key-jobs", &a->key_jobs },
        { "--key-projects", &a->key_projects },
        { "--no-sandbox", &a->no_sandbox },
        { "--service-network", &a->service_network },
        { NULL, NULL }
    };

    for (i = 0; i < argc; i++) {
        arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            serve_usage(stdout);
            return 0;
        }

        eq = strchr(arg, '=');
        len = eq ? (size_t) (eq - arg) : strlen(arg);

        for (o = opts; o->name != NULL; o++) {
            if (strlen(o->name) == len && strncmp(arg, o->name, len) == 0) {
                break;
            }
        }

        if (o->name == NULL) {
            fprintf(stderr, "shuttle-builder serve: unknown option \"%s\" "
                    "(see shuttle-builder serve --help)\n", arg);
            return 2;
        }

        if (o->value == &a->no_sandbox) {
            if (eq != NULL) {
                fprintf(stderr, "shuttle-builder serve: %s takes no "
                        "value\n", o->name);
                return 2;
            }

            value = "";

        } else if (eq != NULL) {
            value = eq + 1;

        } else if (i + 1 < argc) {
            value = argv[++i];

        } else {
            fprintf(stderr, "shuttle-builder serve: %s needs a value\n",
                    o->name);
            return 2;
        }

        *o->value = value;
    }

    return -1;
}


static int
serve_conf(shuttle_serve_conf_t *conf, serve_args_t *a, char *err,
    size_t errlen)
{
    char           *exe, *dir, *p, *h, kerr[512];
    size_t          i;
    unsigned long   n, lo, hi;
    struct passwd  *pw;

    const char  *sdk[] = { "../include", "../../include" };

    memset(conf, 0, sizeof(shuttle_serve_conf_t));
    conf->uid = (uid_t) -1;
    conf->gid = (gid_t) -1;

    conf->data = serve_abs(a->data ? a->data : SERVE_DATA);
    conf->zone = a->zone ? serve_abs(a->zone)
                         : serve_join(conf->data, "zone");
    conf->spool = a->spool ? serve_abs(a->spool)
                           : serve_join(conf->data, "spool");
    conf->socket = serve_abs(a->socket ? a->socket : SERVE_SOCKET);
    conf->log = a->log ? serve_abs(a->log) : NULL;
    conf->apps_url = a->apps_url;

    if (conf->data == NULL || conf->zone == NULL || conf->spool == NULL
        || conf->socket == NULL || (a->log && conf->log == NULL))
    {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return -1;
    }

    if (a->service_network != NULL) {
        if (strcmp(a->service_network, "host") != 0
            && strcmp(a->service_network, "none") != 0)
        {
            snprintf(err, errlen, "--service-network \"%s\" is not none "
                     "or host", a->service_network);
            return -1;
        }

        conf->host_network = strcmp(a->service_network, "host") == 0;
    }

    conf->port_lo = SERVE_PORT_LO;
    conf->port_hi = SERVE_PORT_HI;

    if (a->ports != NULL) {
        p = strchr(a->ports, '-');

        if (p == NULL) {
            snprintf(err, errlen, "--ports \"%s\" is not LO-HI", a->ports);
            return -1;
        }

        *p = '\0';

        if (serve_number(a->ports, 1, 65535, &lo) != 0
            || serve_number(p + 1, 1, 65535, &hi) != 0 || lo > hi)
        {
            *p = '-';
            snprintf(err, errlen, "--ports \"%s\" is not LO-HI, "
                     "1 <= LO <= HI <= 65535", a->ports);
            return -1;
        }

        *p = '-';
        conf->port_lo = (uint16_t) lo;
        conf->port_hi = (uint16_t) hi;
    }

    n = (unsigned long) sysconf(_SC_NPROCESSORS_ONLN);
    conf->jobs = n >= 1 && n <= 1024 ? (unsigned) n : 1;

    if (a->jobs != NULL) {
        if (serve_number(a->jobs, 1, 1024, &n) != 0) {
            snprintf(err, errlen, "--jobs \"%s\" is not a number in 1-1024",
                     a->jobs);
            return -1;
        }

        conf->jobs = (unsigned) n;
    }

    n = SERVE_BUILD_TIMEOUT;

    if (a->build_timeout != NULL
        && serve_number(a->build_timeout, 1, 86400, &n) != 0)
    {
        snprintf(err, errlen, "--build-timeout \"%s\" is not a number of "
                 "seconds in 1-86400", a->build_timeout);
        return -1;
    }

    conf->build_timeout_ms = (unsigned) n * 1000;

    n = SERVE_START_TIMEOUT;

    if (a->start_timeout != NULL
        && serve_number(a->start_timeout, 1, 3600, &n) != 0)
    {
        snprintf(err, errlen, "--start-timeout \"%s\" is not a number of "
                 "seconds in 1-3600", a->start_timeout);
        return -1;
    }

    conf->start_timeout_ms = (unsigned) n * 1000;

    conf->idle_ms = SERVE_IDLE_MS;

    if (a->idle != NULL && shuttle_duration_parse(a->idle, &conf->idle_ms)
                           != 0)
    {
        snprintf(err, errlen, "--idle \"%s\" is not a duration (15m, 30s, "
                 "500ms, 0 for never) of at most a year", a->idle);
        return -1;
    }

    conf->health_ms = SERVE_HEALTH_MS;
    conf->health_timeout_ms = SERVE_HEALTH_TIMEOUT_MS;

    if (a->health != NULL
        && shuttle_duration_parse(a->health, &conf->health_ms) != 0)
    {
        snprintf(err, errlen, "--health-check \"%s\" is not a duration "
                 "(10s, 1m, 0 for never)", a->health);
        return -1;
    }

    if (a->health_timeout != NULL
        && (shuttle_duration_parse(a->health_timeout,
                                   &conf->health_timeout_ms) != 0
            || conf->health_timeout_ms == 0))
    {
        snprintf(err, errlen, "--health-timeout \"%s\" is not a duration "
                 "(5s, 500ms)", a->health_timeout);
        return -1;
    }

    shuttle_extract_defaults(&conf->upload);

    if (a->max_files != NULL) {
        if (serve_number(a->max_files, 1, 10000000, &n) != 0) {
            snprintf(err, errlen, "--max-files \"%s\" is not a number in "
                     "1-10000000", a->max_files);
            return -1;
        }

        conf->upload.max_entries = n;
    }

    if (a->max_size != NULL
        && serve_size(a->max_size, &conf->upload.max_total) != 0)
    {
        snprintf(err, errlen, "--max-size \"%s\" is not a size such as "
                 "512k, 256m or 2g", a->max_size);
        return -1;
    }

    if (a->max_file_size != NULL
        && serve_size(a->max_file_size, &conf->upload.max_file) != 0)
    {
        snprintf(err, errlen, "--max-file-size \"%s\" is not a size such "
                 "as 512k, 64m or 1g", a->max_file_size);
        return -1;
    }

    if (a->postgres != NULL && a->postgres_file != NULL) {
        snprintf(err, errlen, "give one of --postgres and --postgres-file");
        return -1;
    }

    if (a->postgres != NULL) {
        conf->postgres = strdup(a->postgres);

    } else if (a->postgres_file != NULL) {
        conf->postgres = serve_read_line(a->postgres_file, err, errlen);

        if (conf->postgres == NULL) {
            return -1;
        }
    }

    if (a->postgres_socket != NULL
        && (conf->postgres == NULL || a->postgres_socket[0] != '/'))
    {
        snprintf(err, errlen, "--postgres-socket \"%s\": %s",
                 a->postgres_socket, conf->postgres == NULL
                 ? "give --postgres too" : "not an absolute path");
        return -1;
    }

    conf->postgres_socket = a->postgres_socket;
    conf->postgres_connections = SERVE_PG_CONNECTIONS;

    if (a->postgres_connections != NULL) {
        if (serve_number(a->postgres_connections, 1, 10000, &n) != 0) {
            snprintf(err, errlen, "--postgres-connections \"%s\" is not a "
                     "number in 1-10000", a->postgres_connections);
            return -1;
        }

        conf->postgres_connections = (unsigned) n;
    }

    if (a->max_depth != NULL) {
        if (serve_number(a->max_depth, 1, 256, &n) != 0) {
            snprintf(err, errlen, "--max-depth \"%s\" is not a number in "
                     "1-256", a->max_depth);
            return -1;
        }

        conf->upload.max_depth = (unsigned) n;
    }

    if (a->nginx_user != NULL) {
        pw = getpwnam(a->nginx_user);

        if (pw == NULL) {
            snprintf(err, errlen, "--nginx-user: no user \"%s\"",
                     a->nginx_user);
            return -1;
        }

        conf->nginx_user = a->nginx_user;
        conf->uid = pw->pw_uid;
        conf->gid = pw->pw_gid;
    }

    if (a->api_keys != NULL) {
        p = serve_abs(a->api_keys);

        if (p == NULL) {
            snprintf(err, errlen, "--api-keys %s: %s", a->api_keys,
                     strerror(ENOMEM));
            return -1;
        }

        conf->keys = shuttle_keyring_open(p, kerr, sizeof(kerr));
        free(p);

        if (conf->keys == NULL) {
            snprintf(err, errlen, "--api-keys: %s", kerr);
            return -1;
        }
    }

    if (serve_tenants(conf, a, err, errlen) != 0) {
        return -1;
    }

    exe = serve_exe_dir();

    if (a->loader != NULL) {
        conf->loader = serve_abs(a->loader);

    } else if (exe != NULL) {
        conf->loader = serve_join(exe, "shuttle-loader");
    }

    if (conf->loader == NULL) {
        free(exe);
        snprintf(err, errlen, "no loader: give --loader PATH");
        return -1;
    }

    if (a->sdk_include != NULL) {
        conf->sdk_include = serve_abs(a->sdk_include);
    }

    for (i = 0; conf->sdk_include == NULL && exe != NULL && i < 2; i++) {
        dir = serve_join(exe, sdk[i]);
        h = dir ? serve_join(dir, "shuttle.h") : NULL;

        if (h != NULL && access(h, R_OK) == 0) {
            conf->sdk_include = realpath(dir, NULL);
        }

        free(h);
        free(dir);
    }

    free(exe);

    if (conf->sdk_include == NULL
        && access("/usr/local/include/shuttle.h", R_OK) == 0)
    {
        conf->sdk_include = strdup("/usr/local/include");
    }

    if (conf->sdk_include == NULL) {
        snprintf(err, errlen, "no shuttle.h beside this program nor in "
                 "/usr/local/include: give --sdk-include DIR");
        return -1;
    }

    return 0;
}


/*
 * Tenants' code runs sandboxed, as a uid of its project's: that takes a
 * root builder.  Anything less is refused, unless the operator said
 * --no-sandbox, and then said loudly.
 */

static int
serve_sandbox(shuttle_serve_t *s, int off, char *err, size_t errlen)
{
    char        instance[32], warm[256];
    uint32_t    h;
    const char *p;

    if (off) {
        shuttle_log(SHUTTLE_LOG_WARN, "sandbox: off (--no-sandbox): every "
                    "project's build and service runs as uid %d with the "
                    "builder's rights; one developer's machine only",
                    (int) getuid());
        return 0;
    }

    if (geteuid() != 0) {
        /* what a user may have: namespaces of a user namespace, no uid
           of a project's own, no cgroup */

        s->conf.sandbox = shuttle_sandbox_create("shuttle", 0, err, errlen);

        if (s->conf.sandbox == NULL) {
            snprintf(err + strlen(err), errlen - strlen(err), "; the "
                     "builder runs as uid %d, not root, and this kernel "
                     "gives it no user namespace: it will not run other "
                     "people's code; run it as root, or pass --no-sandbox "
                     "for your own projects alone", (int) geteuid());
            return -1;
        }

        shuttle_log(SHUTTLE_LOG_WARN, "sandbox: %s; not root: every "
                    "project runs as uid %d, each in namespaces of its own "
                    "(a user namespace), without cgroup limits; for many "
                    "tenants run the builder as root",
                    shuttle_sandbox_describe(s->conf.sandbox),
                    (int) geteuid());
        return 0;
    }

    /* the cgroups of this data directory's builder, whoever runs beside */

    for (p = s->conf.data, h = 2166136261u; *p != '\0'; p++) {
        h = (h ^ (unsigned char) *p) * 16777619u;
    }

    snprintf(instance, sizeof(instance), "shuttle-%08x", h);

    s->conf.sandbox = shuttle_sandbox_create(instance, 0, err, errlen);
    if (s->conf.sandbox == NULL) {
        return -1;
    }

    /*
     * A warm loader spawns the services' loaders without an exec (see
     * sandbox.c); the builder adopts them, as their subreaper.  Without
     * one, loaders are exec'd as before.
     */
    errno = 0;
    warm[0] = '\0';

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1
        || shuttle_sandbox_warm(s->conf.sandbox, s->conf.loader,
                                s->conf.host_network, warm, sizeof(warm))
           != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "sandbox: no warm loader (%s): each "
                    "loader starts with an exec", errno ? strerror(errno)
                                                        : warm);
    }

    /* without a cgroup, the limits are weaker: a warning */
    shuttle_log(shuttle_sandbox_cgroup(s->conf.sandbox)
                == SHUTTLE_CGROUP_NONE ? SHUTTLE_LOG_WARN : SHUTTLE_LOG_INFO,
                "sandbox: %s; services' network: %s; projects' uids "
                "%u-%u; limits of a project: memory %llu MiB, %u tasks, "
                "cpu weight %u, %u open files, files up to %llu MiB, data "
                "up to %llu MiB; a key: %u builds at once, %u projects",
                shuttle_sandbox_describe(s->conf.sandbox),
                s->conf.host_network ? "the host's (--service-network "
                                       "host: they reach its ports)"
                                     : "a namespace each, no way out",
                (unsigned) s->conf.uid_lo, (unsigned) s->conf.uid_hi,
                (unsigned long long) (s->conf.limits.memory >> 20),
                s->conf.limits.tasks, s->conf.limits.cpu,
                s->conf.limits.nofile,
                (unsigned long long) (s->conf.limits.file_size >> 20),
                (unsigned long long) (s->conf.limits.disk >> 20),
                s->conf.key_jobs, s->conf.key_projects);

    return 0;
}


/* --uids, the limits, the quotas per key; the sandbox itself is made
 * once the log is open */

static int
serve_tenants(shuttle_serve_conf_t *conf, serve_args_t *a, char *err,
    size_t errlen)
{
    char           *p;
    unsigned long   lo, hi;

    conf->uid_lo = SERVE_UID_LO;
    conf->uid_hi = SERVE_UID_HI;

    if (a->uids != NULL) {
        p = strchr(a->uids, '-');

        if (p != NULL) {
            *p = '\0';
        }

        if (p == NULL || serve_number(a->uids, 1, 0xfffffffeUL, &lo) != 0
            || serve_number(p + 1, 1, 0xfffffffeUL, &hi) != 0 || lo > hi)
        {
            if (p != NULL) {
                *p = '-';
            }

            snprintf(err, errlen, "--uids \"%s\" is not LO-HI, "
                     "1 <= LO <= HI < 4294967295", a->uids);
            return -1;
        }

        *p = '-';
        conf->uid_lo = (uid_t) lo;
        conf->uid_hi = (uid_t) hi;
    }

    conf->limits.memory = SHUTTLE_LIMIT_MEMORY;
    conf->limits.tasks = SHUTTLE_LIMIT_TASKS;
    conf->limits.cpu = SHUTTLE_LIMIT_CPU;
    conf->limits.nofile = SHUTTLE_LIMIT_NOFILE;
    conf->limits.file_size = SHUTTLE_LIMIT_FILE_SIZE;
    conf->limits.disk = SHUTTLE_LIMIT_DISK;

    conf->key_jobs = conf->jobs / 2 > 0 ? conf->jobs / 2 : 1;
    conf->key_projects = SERVE_KEY_PROJECTS;

    if (serve_limit_size("--memory", a->memory, &conf->limits.memory, err,
                         errlen) != 0
        || serve_limit_number("--tasks", a->tasks, 4, 1000000,
                              &conf->limits.tasks, err, errlen) != 0
        || serve_limit_number("--cpu", a->cpu, 1, 10000,
                              &conf->limits.cpu, err, errlen) != 0
        || serve_limit_number("--nofile", a->nofile, 16, 1048576,
                              &conf->limits.nofile, err, errlen) != 0
        || serve_limit_size("--file-size", a->file_size,
                            &conf->limits.file_size, err, errlen) != 0
        || serve_limit_size("--disk", a->disk, &conf->limits.disk, err,
                            errlen) != 0
        || serve_limit_number("--key-jobs", a->key_jobs, 1, 1024,
                              &conf->key_jobs, err, errlen) != 0
        || serve_limit_number("--key-projects", a->key_projects, 1,
                              1000000, &conf->key_projects, err, errlen)
           != 0)
    {
        return -1;
    }

    return 0;
}


static int
serve_limit_number(const char *opt, const char *value, unsigned long min,
    unsigned long max, unsigned *out, char *err, size_t errlen)
{
    unsigned long  n;

    if (value == NULL) {
        return 0;
    }

    if (serve_number(value, min, max, &n) != 0) {
        snprintf(err, errlen, "%s \"%s\" is not a number in %lu-%lu", opt,
                 value, min, max);
        return -1;
    }

    *out = (unsigned) n;

    return 0;
}


static int
serve_limit_size(const char *opt, const char *value, uint64_t *out,
    char *err, size_t errlen)
{
    if (value == NULL) {
        return 0;
    }

    if (serve_size(value, out) != 0) {
        snprintf(err, errlen, "%s \"%s\" is not a size such as 512k, "
                 "256m or 2g", opt, value);
        return -1;
    }

    return 0;
}


static char *
serve_abs(const char *path)
{
    char  cwd[PATH_MAX];

    if (path[0] == '/') {
        return strdup(path);
    }

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        return NULL;
    }

    return serve_join(cwd, path);
}


static char *
serve_join(const char *dir, const char *name)
{
    char    *p;
    size_t   len;

    len = strlen(dir) + 1 + strlen(name) + 1;

    p = malloc(len);
    if (p == NULL) {
        return NULL;
    }

    snprintf(p, len, "%s/%s", dir, name);

    return p;
}


static char *
serve_exe_dir(void)
{
    char  *exe, *slash;

    exe = realpath("/proc/self/exe", NULL);
    if (exe == NULL) {
        return NULL;
    }

    slash = strrchr(exe, '/');

    if (slash == NULL || slash == exe) {
        free(exe);
        return NULL;
    }

    *slash = '\0';

    return exe;
}


static int
serve_number(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
    char           *end;
    unsigned long   n;

    if (*s < '0' || *s > '9') {
        return -1;
    }

    errno = 0;
    n = strtoul(s, &end, 10);

    if (errno != 0 || *end != '\0' || n < min || n > max) {
        return -1;
    }

    *out = n;

    return 0;
}


/* the first line of a small file, without its newline */

static char *
serve_read_line(const char *path, char *err, size_t errlen)
{
    FILE    *f;
    char     buf[4096], *line;
    size_t   len;

    f = fopen(path, "re");

    if (f == NULL) {
        snprintf(err, errlen, "--postgres-file %s: %s", path,
                 strerror(errno));
        return NULL;
    }

    if (fgets(buf, sizeof(buf), f) == NULL) {
        buf[0] = '\0';
    }

    fclose(f);

    len = strcspn(buf, "\r\n");
    buf[len] = '\0';

    if (len == 0) {
        snprintf(err, errlen, "--postgres-file %s: no DSN on its first line",
                 path);
        return NULL;
    }

    line = strdup(buf);

    if (line == NULL) {
        snprintf(err, errlen, "--postgres-file %s: out of memory", path);
    }

    return line;
}


/* "4096", "512k", "256m", "2g": 1 byte to 1 TiB */

static int
serve_size(const char *s, uint64_t *out)
{
    char                *end;
    unsigned             shift;
    unsigned long long   n;

    if (*s < '0' || *s > '9') {
        return -1;
    }

    errno = 0;
    n = strtoull(s, &end, 10);

    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        shift = 0;
    }

    if (errno != 0 || *end != '\0' || n == 0 || n > (1ULL << 40) >> shift) {
        return -1;
    }

    *out = (uint64_t) n << shift;

    return 0;
}


/* mkdir -p; the last component gets mode */

static int
serve_mkdirs(const char *path, mode_t mode, char *err, size_t errlen)
{
    char         *dir, *p;
    struct stat   st;

    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: not a directory", path);
            return -1;
        }

        return 0;
    }

    dir = strdup(path);
    if (dir == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
        return -1;
    }

    for (p = dir + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }

        *p = '\0';

        if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
            snprintf(err, errlen, "directory %s: %s", dir, strerror(errno));
            free(dir);
            return -1;
        }

        *p = '/';
    }

    free(dir);

    if (mkdir(path, mode) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "directory %s: %s", path, strerror(errno));
        return -1;
    }

    return 0;
}


/* an upload is renamed from the spool into its deployment, never copied */

static int
serve_same_fs(shuttle_serve_t *s, char *err, size_t errlen)
{
    struct stat  spool, data;

    if (stat(s->conf.spool, &spool) == -1 || stat(s->conf.data, &data) == -1)
    {
        snprintf(err, errlen, "spool %s, data %s: %s", s->conf.spool,
                 s->conf.data, strerror(errno));
        return -1;
    }

    if (spool.st_dev != data.st_dev) {
        snprintf(err, errlen, "spool %s and data %s are on different "
                 "filesystems: an upload must be renamed into its "
                 "deployment, not copied", s->conf.spool, s->conf.data);
        return -1;
    }

    return 0;
}


static int
serve_open_zone(shuttle_serve_t *s, char *err, size_t errlen)
{
    char   cmd[256];
    pid_t  owner;

    if (shuttle_zone_open(&s->zone, s->conf.zone, 0, err, errlen) != 0) {
        return -1;
    }

    if (shuttle_zone_lock(&s->zone, 0, err, errlen) == 0) {
        serve_repair_zone(s);

        /* nginx's workers read it through their group, no one else */
        if (s->conf.nginx_user != NULL && geteuid() == 0
            && (fchown(s->zone.fd, (uid_t) -1, s->conf.gid) == -1
                || fchmod(s->zone.fd, 0640) == -1))
        {
            snprintf(err, errlen, "zone %s: giving it to %s's group: %s",
                     s->conf.zone, s->conf.nginx_user, strerror(errno));
            return -1;
        }

        return 0;
    }

    owner = shuttle_proc_lock_owner(s->conf.zone);

    if (owner > 0) {
        if (shuttle_proc_cmdline(owner, cmd, sizeof(cmd)) != 0) {
            strcpy(cmd, "?");
        }

        snprintf(err, errlen, "zone %s is held by another builder, pid %d "
                 "(%s): one builder per zone", s->conf.zone, (int) owner,
                 cmd);
    }

    shuttle_zone_close(&s->zone);

    return -1;
}


/*
 * Slots a writer left torn (a builder killed in the middle of a write)
 * block their project's requests until written again: repaired at start
 * and every SERVE_REPAIR_MS, under the zone lock, where no write of ours
 * is in progress.
 */

static void
serve_repair_zone(shuttle_serve_t *s)
{
    unsigned  n;

    pthread_mutex_lock(&s->zone_lock);
    n = shuttle_zone_repair(&s->zone);
    pthread_mutex_unlock(&s->zone_lock);

    if (n != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "zone %s: %u slot(s) left torn by a "
                    "writer that died in the middle: repaired", s->conf.zone,
                    n);
    }
}


/*
 * DATA/shuttle.db, DATA/projects/ (root's alone: the loaders see their
 * deployments through their sandbox's mounts), and DATA/static/ (nginx's
 * workers' group reads it, no one else)
 */

static int
serve_open_store(shuttle_serve_t *s, char *err, size_t errlen)
{
    int    rc;
    char  *db, *projects, *pub;

    db = serve_join(s->conf.data, "shuttle.db");
    projects = serve_join(s->conf.data, "projects");
    pub = serve_join(s->conf.data, "static");

    if (db == NULL || projects == NULL || pub == NULL) {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        rc = -1;

    } else {
        s->store = shuttle_store_open(db, s->conf.data, err, errlen);
        rc = s->store ? serve_mkdirs(projects, 0700, err, errlen) : -1;

        if (rc == 0 && chmod(projects, 0700) == -1) {
            snprintf(err, errlen, "directory %s: chmod: %s", projects,
                     strerror(errno));
            rc = -1;
        }

        if (rc == 0) {
            rc = serve_mkdirs(pub, 0755, err, errlen);
        }

        if (rc == 0 && s->conf.nginx_user != NULL && geteuid() == 0
            && (chown(pub, 0, s->conf.gid) == -1 || chmod(pub, 0750) == -1))
        {
            snprintf(err, errlen, "directory %s: giving it to %s's group: %s",
                     pub, s->conf.nginx_user, strerror(errno));
            rc = -1;
        }
    }

    free(db);
    free(projects);
    free(pub);

    return rc;
}


/* a socket file left by a builder that died is removed; a live one is not */

static int
serve_check_socket(const char *path, char *err, size_t errlen)
{
    int                 fd, rc;
    struct stat         st;
    struct sockaddr_un  sun;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "socket %s: path longer than %zu bytes", path,
                 sizeof(sun.sun_path) - 1);
        return -1;
    }

    if (lstat(path, &st) == -1) {
        return 0;
    }

    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "socket %s: the path exists and is not a "
                 "socket", path);
        return -1;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }

    memset(&sun, 0, sizeof(struct sockaddr_un));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);

    rc = connect(fd, (struct sockaddr *) &sun, sizeof(sun));
    close(fd);

    if (rc == 0) {
        snprintf(err, errlen, "socket %s is live: another builder answers "
                 "there", path);
        return -1;
    }

    if (unlink(path) == -1 && errno != ENOENT) {
        snprintf(err, errlen, "socket %s: removing the stale one: %s", path,
                 strerror(errno));
        return -1;
    }

    return 0;
}


static int
serve_listen(shuttle_serve_t *s, char *err, size_t errlen)
{
    int                 fd;
    char               *dir, *slash;
    struct sockaddr_un  sun;

    dir = strdup(s->conf.socket);
    if (dir == NULL) {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return -1;
    }

    slash = strrchr(dir, '/');

    if (slash != NULL && slash != dir) {
        *slash = '\0';

        if (serve_mkdirs(dir, 0755, err, errlen) != 0) {
            free(dir);
            return -1;
        }
    }

    free(dir);

    if (serve_check_socket(s->conf.socket, err, errlen) != 0) {
        return -1;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }

    memset(&sun, 0, sizeof(struct sockaddr_un));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, s->conf.socket);

    /*
     * No one connects before listen(2), after the chmod and chown below.
     * (Not umask(077) around bind(2): the umask is the process's, and a
     * build's sandbox cloned by another thread meanwhile made its new
     * root's directories 0700, which its uid could not enter.)
     */

    if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) == -1) {
        snprintf(err, errlen, "socket %s: bind: %s", s->conf.socket,
                 strerror(errno));
        close(fd);
        return -1;
    }

    if (chmod(s->conf.socket, 0600) == -1) {
        snprintf(err, errlen, "socket %s: chmod: %s", s->conf.socket,
                 strerror(errno));
        goto failed;
    }

    if (s->conf.nginx_user != NULL
        && chown(s->conf.socket, s->conf.uid, s->conf.gid) == -1)
    {
        snprintf(err, errlen, "socket %s: chown to %s: %s", s->conf.socket,
                 s->conf.nginx_user, strerror(errno));
        goto failed;
    }

    if (listen(fd, SERVE_BACKLOG) == -1) {
        snprintf(err, errlen, "socket %s: listen: %s", s->conf.socket,
                 strerror(errno));
        goto failed;
    }

    s->api = shuttle_api_start(s, fd, err, errlen);
    if (s->api == NULL) {
        goto failed;
    }

    return 0;

failed:

    close(fd);
    (void) unlink(s->conf.socket);

    return -1;
}


static int
serve_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGHUP);

    if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0) {
        return -1;
    }

    signal(SIGPIPE, SIG_IGN);

    return signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
}


/*
 * The store says where every deployment was when the last builder
 * stopped; make it so again:
 *
 *   building, built, loading   failed: "builder restarted during build"
 *   running, not current       superseded (a switch cut short)
 *   running, current           a fresh loader, then the old one goes
 *   queued                     queued again, in upload order
 *
 * and the zone is written anew from the store.
 */

static int
serve_reconcile(shuttle_serve_t *s, char *err, size_t errlen)
{
    char                   so[SHUTTLE_PATH_MAX], reason[64];
    size_t                 i;
    pid_t                  pid;
    int64_t                superseded, by;
    serve_list_t           list, again;
    serve_names_t          live, zoned;
    shuttle_project_t      p;
    shuttle_store_note_t   note;
    shuttle_deployment_t  *d;
    shuttle_deploy_state_t to;

    memset(&list, 0, sizeof(serve_list_t));
    memset(&again, 0, sizeof(serve_list_t));
    memset(&live, 0, sizeof(serve_names_t));
    memset(&zoned, 0, sizeof(serve_names_t));

    /* cut short in the middle */

    if (shuttle_store_each_in_state(s->store,
                                    (1u << SHUTTLE_DEPLOY_BUILDING)
                                    | (1u << SHUTTLE_DEPLOY_BUILT)
                                    | (1u << SHUTTLE_DEPLOY_LOADING),
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];

        /* a loader it was starting, if that is still what the pid is */

        if (d->state.tag == SHUTTLE_DEPLOY_LOADING
            && d->state.u.loading.pid > 0
            && shuttle_deploy_path(so, sizeof(so), s->conf.data, d->project,
                                   d->id, "service.so") == 0
            && shuttle_proc_is_loader(d->state.u.loading.pid, so))
        {
            (void) kill(d->state.u.loading.pid, SIGTERM);
        }

        if (serve_resume(s, d) == 1 && serve_collect(d, &again) != 0) {
            snprintf(err, errlen, "%s", strerror(ENOMEM));
            goto failed;
        }
    }

    list.nelts = 0;

    /* running: the current one of each project gets a fresh loader */

    if (shuttle_store_each_in_state(s->store, 1u << SHUTTLE_DEPLOY_RUNNING,
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];

        if (shuttle_store_project(s->store, d->project, &p, err, errlen) != 0)
        {
            p.current = 0;
        }

        /* an older one still running: a switch cut short by a crash */

        if (p.current != 0 && p.current != d->id) {
            to.tag = SHUTTLE_DEPLOY_SUPERSEDED;
            to.u.superseded.by = p.current;

            snprintf(reason, sizeof(reason), "superseded by #%lld",
                     (long long) p.current);

            memset(&note, 0, sizeof(shuttle_store_note_t));
            note.reason = reason;
            note.build_ms = -1;
            note.start_ms = -1;

            if (shuttle_store_transition(s->store, d->id, &to, &note, NULL,
                                         err, errlen)
                != 0)
            {
                shuttle_log(SHUTTLE_LOG_WARN, "%s", err);
            }

            /*
             * Its loader serves until the zone routes to the new one:
             * then, no running deployment's, it is stopped with the
             * orphans below.
             */

            d->id = 0;
            continue;
        }

        pid = d->state.u.running.pid;

        if (pid > 0
            && shuttle_deploy_path(so, sizeof(so), s->conf.data, d->project,
                                   d->id, "service.so") == 0
            && shuttle_proc_is_loader(pid, so))
        {
            /* still serving: the zone keeps its port until the takeover */
            continue;
        }

        /* nothing serves it: the zone says loading until a loader does */

        if (d->state.u.running.port != 0
            && shuttle_store_set_loader(s->store, d->id, 0, 0, err, errlen)
               != 0)
        {
            goto failed;
        }
    }

    /* the zone: every live project's slot from the store, no other */

    if (shuttle_store_each_project(s->store, NULL, serve_collect_name, &live,
                                   err, errlen)
        != 0)
    {
        goto failed;
    }

    if (shuttle_zone_each(&s->zone, serve_collect_slot, &zoned) < 0) {
        snprintf(err, errlen, "zone %s: %s", s->conf.zone, strerror(ENOMEM));
        goto failed;
    }

    for (i = 0; i < zoned.nelts; i++) {
        if (!serve_names_has(&live, zoned.names[i])
            && shuttle_zone_del(&s->zone, zoned.names[i], err, errlen) != 0)
        {
            goto failed;
        }
    }

    for (i = 0; i < live.nelts; i++) {
        shuttle_serve_zone_sync(s, live.names[i]);
    }

    if (shuttle_zone_rebuild(&s->zone, 0, err, errlen) != 0) {
        goto failed;
    }

    /* queued again, in upload order */

    list.nelts = 0;

    if (shuttle_store_each_in_state(s->store, 1u << SHUTTLE_DEPLOY_QUEUED,
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];

        if (access(d->state.u.queued.upload, R_OK) != 0) {
            (void) shuttle_deploy_fail(s, d->project, d->id,
                                       "upload lost while the builder was "
                                       "down", -1);
            continue;
        }

        if (shuttle_queue_push(s->queue, d->id, d->project, &superseded, &by)
            != 0)
        {
            snprintf(err, errlen, "%s", strerror(ENOMEM));
            goto failed;
        }

        if (superseded != 0) {
            shuttle_deploy_supersede(s, d->project, superseded, by);
        }

        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: queued again",
                    d->project, (long long) d->id);
    }

    /* and the running ones: a fresh loader each */

    free(list.elts);
    memset(&list, 0, sizeof(serve_list_t));

    if (shuttle_store_each_in_state(s->store, 1u << SHUTTLE_DEPLOY_RUNNING,
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];
        pid = d->state.u.running.pid;

        if (pid > 0
            && (shuttle_deploy_path(so, sizeof(so), s->conf.data, d->project,
                                    d->id, "service.so") != 0
                || !shuttle_proc_is_loader(pid, so)))
        {
            d->state.u.running.pid = 0;
        }
    }

    /*
     * Any other loader of ours is an orphan: one a killed builder was
     * starting (a restart's, a rollback's), one of a deployment it was
     * deleting, or one it was replacing (a switch cut short: the zone
     * routes to the new one by now).
     */

    (void) shuttle_proc_each_loader(s->conf.data, serve_orphan, &list);

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];
        shuttle_supervise_takeover(s->sup, d, d->state.u.running.pid);
    }

    /* what was built, or starting, when the builder was killed: again */

    for (i = 0; i < again.nelts; i++) {
        d = &again.elts[i];

        (void) shuttle_supervise_start(s->sup, d->id, d->project,
                                       "builder restarted while it started: "
                                       "starting it again", err, errlen);
    }

    serve_remains(s);
    shuttle_deploy_purge_resume(s);

    free(list.elts);
    free(again.elts);
    serve_names_free(&live);
    serve_names_free(&zoned);

    return 0;

failed:

    free(list.elts);
    free(again.elts);
    serve_names_free(&live);
    serve_names_free(&zoned);

    return -1;
}


/*
 * A deployment the builder was building, or starting, when it was
 * killed: its source tree goes, and
 *
 *   building, its upload kept       queued again (0)
 *   built or loading, service.so    started again (1: the caller does,
 *                                   once the running ones are taken over)
 *   anything missing                failed, saying which (-1)
 */

static int
serve_resume(shuttle_serve_t *s, const shuttle_deployment_t *d)
{
    char                    err[256], path[SHUTTLE_PATH_MAX];
    const char             *file, *why;
    shuttle_store_note_t    note;
    shuttle_deploy_state_t  to;

    if (shuttle_deploy_path(path, sizeof(path), s->conf.data, d->project,
                            d->id, "src") == 0)
    {
        (void) shuttle_rmtree(s->conf.data, path);
    }

    file = d->state.tag == SHUTTLE_DEPLOY_BUILDING ? "upload.tar.gz"
                                                   : "service.so";

    if (shuttle_deploy_path(path, sizeof(path), s->conf.data, d->project,
                            d->id, file) != 0
        || access(path, R_OK) != 0)
    {
        why = d->state.tag == SHUTTLE_DEPLOY_BUILDING
              ? "builder restarted during the build; its upload is gone"
              : "builder restarted while it started; its service.so is gone";
        (void) shuttle_deploy_fail(s, d->project, d->id, why, -1);
        shuttle_deploy_clean(s, d->project, d->id);
        return -1;
    }

    if (d->state.tag != SHUTTLE_DEPLOY_BUILDING) {
        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: %s when the builder "
                    "stopped: starting it again", d->project,
                    (long long) d->id, shuttle_deploy_name(d->state.tag));
        return 1;
    }

    memset(&note, 0, sizeof(shuttle_store_note_t));
    note.reason = "builder restarted during the build: built again";
    note.build_ms = -1;
    note.start_ms = -1;

    to.tag = SHUTTLE_DEPLOY_QUEUED;

    if (shuttle_store_transition(s->store, d->id, &to, &note, NULL, err,
                                 sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", d->project,
                    (long long) d->id, err);
        (void) shuttle_deploy_fail(s, d->project, d->id, err, -1);
        shuttle_deploy_clean(s, d->project, d->id);
        return -1;
    }

    return 0;
}


/* a loader no running deployment has: stopped */

static void
serve_orphan(pid_t pid, const char *so, void *data)
{
    size_t         i;
    serve_list_t  *list;

    list = data;

    for (i = 0; i < list->nelts; i++) {
        if (list->elts[i].state.u.running.pid == pid) {
            return;
        }
    }

    shuttle_log(SHUTTLE_LOG_WARN, "an orphan loader, pid %d of %s: no "
                "running deployment has it: SIGTERM", (int) pid, so);

    (void) kill(pid, SIGTERM);
}


/*
 * What a killed builder was deleting: the directories of deployments the
 * store has as deleted.
 */

static void
serve_remains(shuttle_serve_t *s)
{
    int                   rc;
    char                  path[SHUTTLE_PATH_MAX];
    char                 *end;
    DIR                  *projects, *deployments;
    int64_t               id;
    struct dirent        *p, *e;
    shuttle_deploy_tag_t  tag;

    snprintf(path, sizeof(path), "%s/projects", s->conf.data);

    projects = opendir(path);
    if (projects == NULL) {
        return;
    }

    while ((p = readdir(projects)) != NULL) {
        if (!shuttle_valid_name(p->d_name, strlen(p->d_name))
            || snprintf(path, sizeof(path), "%s/projects/%s/deployments",
                        s->conf.data, p->d_name) >= (int) sizeof(path))
        {
            continue;
        }

        deployments = opendir(path);
        if (deployments == NULL) {
            continue;
        }

        while ((e = readdir(deployments)) != NULL) {
            id = strtoll(e->d_name, &end, 10);

            if (id <= 0 || *end != '\0') {
                continue;
            }

            rc = shuttle_store_state(s->store, id, &tag);

            /* one the store does not know (a restored backup's) stays */
            if (rc == 0 && tag == SHUTTLE_DEPLOY_DELETED) {
                snprintf(path, sizeof(path), "%s/projects/%s/deployments/%s",
                         s->conf.data, p->d_name, e->d_name);
                shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: deleted: "
                            "removing %s", p->d_name, (long long) id, path);
                (void) shuttle_rmtree(s->conf.data, path);
            }
        }

        closedir(deployments);
    }

    closedir(projects);
}


static int
serve_collect(const shuttle_deployment_t *d, void *data)
{
    size_t                 n;
    serve_list_t          *list;
    shuttle_deployment_t  *elts;

    list = data;

    if (list->nelts == list->nalloc) {
        n = list->nalloc ? list->nalloc * 2 : 8;
        elts = realloc(list->elts, n * sizeof(shuttle_deployment_t));

        if (elts == NULL) {
            return -1;
        }

        list->elts = elts;
        list->nalloc = n;
    }

    list->elts[list->nelts++] = *d;

    return 0;
}


static int
serve_collect_name(const shuttle_project_t *p, void *data)
{
    return serve_names_add(data, p->name, strlen(p->name));
}


static int
serve_collect_slot(const shuttle_zone_slot_t *slot, void *data)
{
    if (slot->name_len > SHUTTLE_ZONE_NAME_MAX) {
        return 0;
    }

    return serve_names_add(data, slot->name, slot->name_len);
}


static int
serve_names_add(serve_names_t *n, const char *name, size_t len)
{
    char    **names, *copy;
    size_t    size;

    if (n->nelts == n->nalloc) {
        size = n->nalloc ? n->nalloc * 2 : 16;
        names = realloc(n->names, size * sizeof(char *));

        if (names == NULL) {
            return -1;
        }

        n->names = names;
        n->nalloc = size;
    }

    copy = strndup(name, len);
    if (copy == NULL) {
        return -1;
    }

    n->names[n->nelts++] = copy;

    return 0;
}


static int
serve_names_has(serve_names_t *n, const char *name)
{
    size_t  i;

    for (i = 0; i < n->nelts; i++) {
        if (strcmp(n->names[i], name) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
serve_names_free(serve_names_t *n)
{
    size_t  i;

    for (i = 0; i < n->nelts; i++) {
        free(n->names[i]);
    }

    free(n->names);
}


static int
serve_loop(shuttle_serve_t *s, int sigfd)
{
    int                      timeout, reap;
    char                     err[SERVE_ERRLEN];
    size_t                   n, nalloc;
    int64_t                  now, repair_at;
    ssize_t                  len;
    uint64_t                 count;
    struct pollfd           *pfd, *p;
    struct signalfd_siginfo  si;

    nalloc = 8;
    pfd = calloc(nalloc, sizeof(struct pollfd));
    repair_at = shuttle_mono_ms() + SERVE_REPAIR_MS;

    if (pfd == NULL) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s", strerror(ENOMEM));
        serve_stop(s, "out of memory");
        return 1;
    }

    for ( ;; ) {
        n = shuttle_supervise_nfds(s->sup) + 2;

        if (n > nalloc) {
            p = realloc(pfd, n * 2 * sizeof(struct pollfd));

            if (p == NULL) {
                shuttle_log(SHUTTLE_LOG_ERROR, "%s", strerror(ENOMEM));
                continue;
            }

            pfd = p;
            nalloc = n * 2;
        }

        pfd[0].fd = sigfd;
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = s->wake_fd;
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;

        n = 2 + shuttle_supervise_fds(s->sup, pfd + 2, nalloc - 2);

        timeout = shuttle_supervise_timeout(s->sup);

        now = shuttle_mono_ms();

        if (now >= repair_at) {
            serve_repair_zone(s);
            repair_at = now + SERVE_REPAIR_MS;
        }

        if (timeout < 0 || timeout > repair_at - now) {
            timeout = (int) (repair_at - now);
        }

        if (poll(pfd, n, timeout) == -1 && errno != EINTR) {
            shuttle_log(SHUTTLE_LOG_ERROR, "poll: %s", strerror(errno));
        }

        reap = 0;

        while ((len = read(sigfd, &si, sizeof(si))) == sizeof(si)) {

            switch (si.ssi_signo) {

            case SIGCHLD:
                reap = 1;
                break;

            case SIGTERM:
            case SIGINT:
                free(pfd);
                serve_stop(s, si.ssi_signo == SIGTERM ? "SIGTERM"
                                                      : "SIGINT");
                return 0;

            case SIGQUIT:
                shuttle_log(SHUTTLE_LOG_INFO, "SIGQUIT: exiting now, %u "
                            "loaders left serving for the next builder",
                            shuttle_supervise_count(s->sup));
                _exit(0);

            case SIGHUP:
                if (shuttle_log_reopen(err, sizeof(err)) != 0) {
                    shuttle_log(SHUTTLE_LOG_ERROR, "SIGHUP: %s", err);

                } else {
                    shuttle_log(SHUTTLE_LOG_INFO, "SIGHUP: log reopened");
                }

                break;

            default:
                shuttle_log(SHUTTLE_LOG_INFO, "signal %u ignored",
                            si.ssi_signo);
            }
        }

        if (reap) {
            shuttle_supervise_reap(s->sup);
        }

        if (pfd[1].revents & POLLIN) {
            (void) !read(s->wake_fd, &count, sizeof(count));
        }

        serve_messages(s);

        shuttle_supervise_io(s->sup, pfd + 2, n - 2);
        shuttle_supervise_timers(s->sup);
    }
}


static void
serve_messages(shuttle_serve_t *s)
{
    shuttle_msg_t  *m, *next;

    pthread_mutex_lock(&s->lock);
    m = s->msgs;
    s->msgs = NULL;
    pthread_mutex_unlock(&s->lock);

    for ( ; m != NULL; m = next) {
        next = m->next;

        switch (m->type) {

        case SHUTTLE_MSG_BUILT:
            (void) shuttle_supervise_start(s->sup, m->id, m->project, NULL,
                                           m->err, sizeof(m->err));
            free(m);
            break;

        case SHUTTLE_MSG_ROLLBACK:
            m->rc = shuttle_supervise_start(s->sup, m->id, m->project,
                                            m->reason, m->err,
                                            sizeof(m->err));

            pthread_mutex_lock(&s->lock);
            m->done = 1;
            pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
            break;

        case SHUTTLE_MSG_RESTART:
            m->rc = shuttle_supervise_renew(s->sup, m->id, m->project,
                                            m->err, sizeof(m->err));

            pthread_mutex_lock(&s->lock);
            m->done = 1;
            pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
            break;

        case SHUTTLE_MSG_DELETE:
            serve_delete(s, m);

            pthread_mutex_lock(&s->lock);
            m->done = 1;
            pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
            break;
        }
    }
}


/*
 * DELETE /v1/projects/NAME: its waiting build dropped, its running one
 * cancelled, every deployment deleted in the store, its loaders stopped,
 * its zone slot removed, its deployments' directories too (resources/
 * stays).
 */

static void
serve_delete(shuttle_serve_t *s, shuttle_msg_t *m)
{
    char  *dir;

    if (s->stopping) {
        m->rc = -2;
        snprintf(m->err, sizeof(m->err), "the builder is stopping");
        return;
    }

    (void) shuttle_queue_cancel(s->queue, m->project);

    m->rc = shuttle_store_delete_project(s->store, m->project,
                                         "project deleted", m->err,
                                         sizeof(m->err));
    if (m->rc != 0) {
        return;
    }

    shuttle_fault("delete");

    shuttle_supervise_stop_project(s->sup, m->project);
    shuttle_serve_zone_sync(s, m->project);

    dir = malloc(strlen(s->conf.data) + strlen(m->project) + 32);

    if (dir != NULL) {
        sprintf(dir, "%s/projects/%s/deployments", s->conf.data, m->project);

        if (shuttle_rmtree(s->conf.data, dir) != 0) {
            shuttle_log(SHUTTLE_LOG_WARN, "project %s: removing %s: %s",
                        m->project, dir, strerror(errno));
        }

        free(dir);
    }

    /* its databases and secrets stay for a redeploy, unless purged */
    shuttle_provision_unpublish(s, m->project);

    shuttle_log(SHUTTLE_LOG_INFO, "project %s deleted", m->project);

    shuttle_serve_changed(s);
}


static void
serve_stop(shuttle_serve_t *s, const char *why)
{
    unsigned  running, waiting;

    shuttle_log(SHUTTLE_LOG_INFO, "%s: stopping", why);

    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    s->changes++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);

    /* a DELETE waiting for main would hold its connection open */
    serve_messages(s);

    if (s->api != NULL) {
        shuttle_api_stop(s->api);
        s->api = NULL;
        (void) unlink(s->conf.socket);
    }

    shuttle_queue_counts(s->queue, &running, &waiting);

    if (running) {
        shuttle_log(SHUTTLE_LOG_INFO, "cancelling %u builds", running);
    }

    shuttle_queue_stop(s->queue);

    /* built meanwhile: they fail, "builder stopped" */
    serve_messages(s);

    shuttle_supervise_shutdown(s->sup, SHUTTLE_STOP_GRACE_MS);

    shuttle_log(SHUTTLE_LOG_INFO, "stopped%s", waiting ? " (queued "
                "deployments wait for the next start)" : "");
}


static void
serve_free(shuttle_serve_t *s)
{
    shuttle_api_stop(s->api);
    shuttle_supervise_destroy(s->sup);

    if (s->queue != NULL) {
        shuttle_queue_destroy(s->queue);
    }

    shuttle_store_close(s->store);

    if (s->zone.hdr != NULL) {
        shuttle_zone_close(&s->zone);
    }

    if (s->wake_fd != -1) {
        close(s->wake_fd);
    }

    free(s->conf.data);
    free(s->conf.zone);
    free(s->conf.socket);
    free(s->conf.spool);
    free(s->conf.loader);
    free(s->conf.sdk_include);
    free(s->conf.log);
    shuttle_keyring_close(s->conf.keys);

    if (s->conf.sandbox != NULL) {
        shuttle_sandbox_destroy(s->conf.sandbox);
    }

    free(s);
}
