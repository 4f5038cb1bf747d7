
/*
 * shuttle run [DIR] [--port N] [--no-sandbox]: the project built with the
 * builder's own rules (builder/build/) and served by shuttle-loader on
 * 127.0.0.1:PORT in the foreground.
 *
 * The project is the tenant's, hostile until proven otherwise (a cloned
 * repository's Makefile): its folder is never given to it.  What
 * "shuttle deploy" would upload (pack.c's rules: never .git, .shuttle/,
 * Secrets.json, what .shuttleignore lists), less every dot folder, is
 * copied into a scratch directory of its own ($XDG_CACHE_HOME/shuttle/run/
 * NAME.XXXXXX, else ~/.cache/..., else $TMPDIR/shuttle-run-UID/...; that
 * folder the caller's own, writable by no one else), built there into
 * service.so beside the copy, served from there read-only, and removed
 * when the run ends.  The one folder of the project the service writes
 * is its SQLite data, DIR/.shuttle/sqlite/, when it declares some.
 *
 * Both run in the platform's sandbox (builder/sandbox/sandbox.h), the
 * unprivileged way: a user namespace mapping the caller to itself, so the
 * project sees /usr, its copy and little else, a build has no network
 * and a service may not bind: this process binds the port and hands the
 * loader the socket, as the builder does.  A service has a network of its
 * own (sandbox.c): PostgreSQL is reached through its socket directory,
 * bound in.  Where the kernel gives no user namespace (or --no-sandbox),
 * it says loudly what is then not protected and runs them as they are.
 *
 * Neither sees the terminal: stdin is /dev/null, stdout and stderr are
 * pipes this process relays, control characters shown as ^X when they
 * go to a terminal, and each runs in a session of its own (no
 * controlling terminal: /dev/tty does not open).
 *
 * The loader runs in its own process group with a readiness pipe, so
 * the terminal's Ctrl-C reaches this process alone, which passes each
 * signal on once: the first drains the loader, a second cuts it.  The
 * loader dies with this process (PR_SET_PDEATHSIG).
 */


#include "run_int.h"


static int cli_run_scratch(cli_t *cli, cli_run_t *r);


int
cli_run(cli_t *cli, int argc, char **argv)
{
    int                   c, rc;
    char                  include[PATH_MAX], loader[PATH_MAX],
                          top[PATH_MAX], err[1024], name[64], *end;
    cli_run_t             r;
    const char           *dir;
    shuttle_manifest_t    m;
    static struct option  opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "postgres", required_argument, NULL, 'P' },
        { "no-sandbox", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 }
    };

    memset(&r, 0, sizeof(r));
    r.port = CLI_RUN_PORT;

    while ((c = cli_getopt(cli, argc, argv, "p:", opts)) != -1) {
        if (c == 'P') {
            r.postgres = optarg;
            continue;
        }

        if (c == 'S') {
            r.nosandbox = 1;
            continue;
        }

        r.port = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || r.port < 1
            || r.port > 65535)
        {
            return cli_usage_error(cli, "\"%s\" is not a port number",
                                   optarg);
        }
    }

    if (argc - optind > 1) {
        return cli_usage_error(cli, "one directory at most");
    }

    dir = optind < argc ? argv[optind] : ".";

    if (realpath(dir, top) == NULL) {
        return cli_usage_error(cli, "%s: %s", dir, strerror(errno));
    }

    if (shuttle_manifest_read(top, &m, err, sizeof(err)) != 0) {
        cli_error(cli, "%s/%s", dir, err);
        return CLI_USAGE;
    }

    snprintf(name, sizeof(name), "%s", m.name ? m.name : basename(top));
    shuttle_manifest_free(&m);

    if (cli_run_paths(cli, include, loader, PATH_MAX) != CLI_OK) {
        return CLI_USAGE;
    }

    r.top = top;
    r.name = name;
    r.include = include;
    r.loader = loader;

    cli_on_interrupt();

    rc = cli_run_copy(cli, &r);

    if (rc == CLI_OK) {
        rc = cli_run_scratch(cli, &r);
    }

    if (r.scratch[0] != '\0') {
        cli_run_remove(AT_FDCWD, r.scratch, 0);
    }

    if (rc == CLI_RUN_SIGNALLED || (rc != CLI_OK && cli_interrupted)) {
        signal(cli_interrupted, SIG_DFL);
        raise(cli_interrupted);
        return CLI_FAILED;
    }

    return rc;
}


/* the build and the service, in the scratch directory made */

static int
cli_run_scratch(cli_t *cli, cli_run_t *r)
{
    int                   c, sfd, rc, fds[2], resfd, logfd, out[2];
    char                  err[1024], listen[64];
    pid_t                 pid;
    sigset_t              mask, old, all;
    pthread_t             relay;
    struct timespec       t0, t1;
    cli_relay_t           rl, outs[2];
    shuttle_bind_t        binds[2];
    shuttle_spawn_t       sp;
    shuttle_limits_t      limits;
    shuttle_sandbox_t    *sb;
    shuttle_build_opts_t  o;

    sb = NULL;

    if (!r->nosandbox) {
        sb = shuttle_sandbox_create("shuttle-run", SHUTTLE_SANDBOX_USERNS,
                                    err, sizeof(err));
        if (sb == NULL) {
            fprintf(stderr, "shuttle run: no sandbox here (%s)\n", err);
            cli_run_unsafe("this kernel gives no user namespace");
        }

    } else {
        cli_run_unsafe("--no-sandbox");
    }

    if (cli_run_postgres(cli, r, sb != NULL) != CLI_OK) {
        return CLI_USAGE;
    }

    /*
     * The build: its output through a pipe relayed by a thread (signals
     * blocked there), Ctrl-C cancels it.
     */

    if (cli_run_pipe(cli, &rl, STDERR_FILENO, &logfd) != CLI_OK) {
        return CLI_FAILED;
    }

    rl.stop = eventfd(0, EFD_CLOEXEC);
    rc = rl.stop == -1 ? errno : 0;

    if (rc == 0) {
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&relay, NULL, cli_run_relay_thread, &rl);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }

    if (rc != 0) {
        cli_error(cli, "cannot relay the build's output: %s", strerror(rc));
        close(logfd);
        close(rl.from);
        if (rl.stop != -1) {
            close(rl.stop);
        }
        return CLI_FAILED;
    }

    memset(&o, 0, sizeof(o));
    o.src_dir = r->src;
    o.out = r->so;
    o.include_dir = r->include;
    o.log_fd = logfd;
    o.cancel = (volatile int *) &cli_interrupted;

    if (sb != NULL) {
        memset(&limits, 0, sizeof(limits));
        limits.nofile = SHUTTLE_LIMIT_NOFILE;

        memset(&sp, 0, sizeof(sp));
        sp.project = r->name;
        sp.limits = &limits;
        sp.die_with_parent = 1;

        binds[0].path = r->src;
        binds[0].rw = 1;
        binds[0].optional = 0;
        binds[1].path = r->include;
        binds[1].rw = 0;
        binds[1].optional = 0;

        sp.binds = binds;
        sp.nbinds = 2;

        o.sandbox = sb;
        o.spawn = &sp;
    }

    fprintf(stderr, "Building %s (a copy in %s)\n", r->top, r->scratch);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    rc = shuttle_build(&o, err, sizeof(err));

    /* what the build wrote, to the last byte, before anything else */
    close(logfd);
    (void) eventfd_write(rl.stop, 1);
    pthread_join(relay, NULL);
    close(rl.from);
    close(rl.stop);

    if (rc != 0) {
        if (cli_interrupted) {
            return CLI_RUN_SIGNALLED;
        }

        cli_error(cli, "%s: %s", r->name, err);
        return CLI_FAILED;
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "Built %s in %.2f s\n", r->so,
            (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

    /* the resources it declares, provisioned here: under .shuttle/ */

    if (cli_run_resources(cli, r, &resfd) != CLI_OK) {
        return CLI_FAILED;
    }

    /* the loader: signals from here on are read from a signalfd */

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);

    if (sigprocmask(SIG_BLOCK, &mask, &old) != 0
        || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) == -1)
    {
        cli_error(cli, "signalfd: %s", strerror(errno));
        return CLI_FAILED;
    }

    if (cli_interrupted) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return CLI_RUN_SIGNALLED;
    }

    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_error(cli, "pipe: %s", strerror(errno));
        return CLI_FAILED;
    }

    /* its stdout and stderr: pipes, relayed by cli_run_serve() */

    if (cli_run_pipe(cli, &outs[0], STDOUT_FILENO, &out[0]) != CLI_OK) {
        return CLI_FAILED;
    }

    if (cli_run_pipe(cli, &outs[1], STDERR_FILENO, &out[1]) != CLI_OK) {
        return CLI_FAILED;
    }

    snprintf(listen, sizeof(listen), "127.0.0.1:%ld", r->port);

    pid = sb != NULL ? cli_run_sandboxed(cli, sb, r, listen, fds[1], resfd,
                                         out, &old)
                     : cli_run_loader(r->loader, listen, r->name, r->so,
                                      fds[1], resfd, out, &old);
    close(fds[1]);
    close(out[0]);
    close(out[1]);

    if (resfd != -1) {
        close(resfd);
    }

    if (pid == -1) {
        if (sb == NULL) {
            cli_error(cli, "cannot start %s: %s", r->loader,
                      strerror(errno));
        }

        close(fds[0]);
        close(outs[0].from);
        close(outs[1].from);
        return CLI_FAILED;
    }

    rc = cli_run_serve(cli, pid, fds[0], sfd, (int) r->port, sb != NULL,
                       outs);

    for (c = 0; c < 2; c++) {
        if (outs[c].from != -1) {
            close(outs[c].from);
        }
    }

    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);

    return rc;
}
