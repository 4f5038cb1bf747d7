
/*
 * shuttle-builder serve: the daemon's start, which wires the subsystems
 * to the core (core.h), runs the loop and stops; serve_int.h names the
 * files of each step.
 */


#include "serve.h"
#include "serve_int.h"


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

    serve_capacity(s);

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
        serve_stop(s, "startup failed", 0);
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
