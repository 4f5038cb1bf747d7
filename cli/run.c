
/*
 * shuttle run [DIR] [--port N] [--no-sandbox]: the project built with the
 * builder's own rules (builder/build.c) into DIR/.shuttle/service.so and
 * served by shuttle-loader on 127.0.0.1:PORT in the foreground.
 *
 * Both run in the platform's sandbox (builder/sandbox.h), the
 * unprivileged way: a user namespace mapping the caller to itself, so the
 * project sees /usr, its own directory and little else, a build has no
 * network and a service may not bind: this process binds the port and
 * hands the loader the socket, as the builder does.  Where the kernel
 * gives no user namespace, it says so and runs them as they are.
 *
 * The loader runs in its own process group with a readiness pipe, so
 * the terminal's Ctrl-C reaches this process alone, which passes each
 * signal on once: the first drains the loader, a second cuts it.  The
 * loader dies with this process (PR_SET_PDEATHSIG).
 */


#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build.h"
#include "cli.h"
#include "resources.h"


#define CLI_RUN_PORT  8000


static int cli_run_paths(cli_t *cli, char *include, char *loader,
    size_t size);
static int cli_run_resources(cli_t *cli, const char *top, const char *so,
    const char *postgres, int *fd);
static pid_t cli_run_loader(const char *loader, const char *listen,
    const char *name, const char *so, int ready_fd, int res_fd,
    const sigset_t *mask);
static pid_t cli_run_sandboxed(cli_t *cli, shuttle_sandbox_t *sb,
    const char *top, const char *loader, const char *addr,
    const char *name, const char *so, int ready_fd, int res_fd,
    const sigset_t *mask);
static int cli_run_serve(cli_t *cli, pid_t pid, int ready_fd, int sfd,
    int port, int sandboxed);


int
cli_run(cli_t *cli, int argc, char **argv)
{
    int                   c, sfd, rc, fds[2], resfd, nosandbox;
    char                  include[PATH_MAX], loader[PATH_MAX],
                          top[PATH_MAX], shuttle_dir[PATH_MAX + 16],
                          so[PATH_MAX + 32], err[1024], listen[64],
                          name[64], *end;
    long                  port;
    pid_t                 pid;
    sigset_t              mask, old;
    struct timespec       t0, t1;
    const char           *dir, *postgres;
    shuttle_bind_t        binds[2];
    shuttle_spawn_t       sp;
    shuttle_limits_t      limits;
    shuttle_sandbox_t    *sb;
    shuttle_build_opts_t  o;
    shuttle_manifest_t    m;
    static struct option  opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "postgres", required_argument, NULL, 'P' },
        { "no-sandbox", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 }
    };

    port = CLI_RUN_PORT;
    postgres = NULL;
    nosandbox = 0;

    while ((c = cli_getopt(cli, argc, argv, "p:", opts)) != -1) {
        if (c == 'P') {
            postgres = optarg;
            continue;
        }

        if (c == 'S') {
            nosandbox = 1;
            continue;
        }

        port = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || port < 1 || port > 65535) {
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

    snprintf(shuttle_dir, sizeof(shuttle_dir), "%s/.shuttle", top);
    snprintf(so, sizeof(so), "%s/service.so", shuttle_dir);

    if (mkdir(shuttle_dir, 0755) != 0 && errno != EEXIST) {
        cli_error(cli, "cannot create %s: %s", shuttle_dir, strerror(errno));
        return CLI_USAGE;
    }

    sb = NULL;

    if (!nosandbox) {
        sb = shuttle_sandbox_create("shuttle-run", SHUTTLE_SANDBOX_USERNS,
                                    err, sizeof(err));
        if (sb == NULL) {
            fprintf(stderr, "shuttle run: no sandbox here (%s): the project "
                    "runs with your rights\n", err);
        }
    }

    /* the build: its output on stderr, Ctrl-C cancels it */

    cli_on_interrupt();

    memset(&o, 0, sizeof(o));
    o.src_dir = top;
    o.out = so;
    o.include_dir = include;
    o.log_fd = STDERR_FILENO;
    o.cancel = (volatile int *) &cli_interrupted;

    if (sb != NULL) {
        memset(&limits, 0, sizeof(limits));
        limits.nofile = SHUTTLE_LIMIT_NOFILE;

        memset(&sp, 0, sizeof(sp));
        sp.project = name;
        sp.limits = &limits;
        sp.die_with_parent = 1;

        binds[0].path = top;
        binds[0].rw = 1;
        binds[0].optional = 0;
        binds[1].path = include;
        binds[1].rw = 0;
        binds[1].optional = 0;

        sp.binds = binds;
        sp.nbinds = 2;

        o.sandbox = sb;
        o.spawn = &sp;
    }

    fprintf(stderr, "Building %s\n", top);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    if (shuttle_build(&o, err, sizeof(err)) != 0) {
        if (cli_interrupted) {
            signal(cli_interrupted, SIG_DFL);
            raise(cli_interrupted);
        }

        cli_error(cli, "%s: %s", name, err);
        return CLI_FAILED;
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "Built %s in %.2f s\n", so,
            (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

    /* the resources it declares, provisioned here: under .shuttle/ */

    if (cli_run_resources(cli, top, so, postgres, &resfd) != CLI_OK) {
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
        signal(cli_interrupted, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        raise(cli_interrupted);
        return CLI_FAILED;
    }

    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_error(cli, "pipe: %s", strerror(errno));
        return CLI_FAILED;
    }

    snprintf(listen, sizeof(listen), "127.0.0.1:%ld", port);

    pid = sb != NULL ? cli_run_sandboxed(cli, sb, top, loader, listen, name,
                                         so, fds[1], resfd, &old)
                     : cli_run_loader(loader, listen, name, so, fds[1],
                                      resfd, &old);
    close(fds[1]);

    if (resfd != -1) {
        close(resfd);
    }

    if (pid == -1) {
        if (sb == NULL) {
            cli_error(cli, "cannot start %s: %s", loader, strerror(errno));
        }

        close(fds[0]);
        return CLI_FAILED;
    }

    rc = cli_run_serve(cli, pid, fds[0], sfd, (int) port, sb != NULL);

    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);

    return rc;
}


/*
 * Beside this program, the SDK header for the build (the first of
 * ../include, ../../include and /usr/local/include holding shuttle.h:
 * installed, or in the source tree) and shuttle-loader.
 */

static int
cli_run_paths(cli_t *cli, char *include, char *loader, size_t size)
{
    int          i;
    char         exe[PATH_MAX], *dir, header[PATH_MAX + 16];
    ssize_t      n;
    const char  *candidates[3];

    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0) {
        cli_error(cli, "cannot find this program: /proc/self/exe: %s",
                  strerror(errno));
        return CLI_USAGE;
    }

    exe[n] = '\0';
    dir = dirname(exe);

    candidates[0] = "%s/../include";
    candidates[1] = "%s/../../include";
    candidates[2] = "/usr/local/include";

    include[0] = '\0';

    for (i = 0; i < 3; i++) {
        snprintf(header, sizeof(header), candidates[i], dir);

        if (realpath(header, include) != NULL
            && snprintf(header, sizeof(header), "%s/shuttle.h", include) > 0
            && access(header, R_OK) == 0)
        {
            break;
        }

        include[0] = '\0';
    }

    if (include[0] == '\0') {
        cli_error(cli, "cannot find shuttle.h in %s/../include, "
                  "%s/../../include or /usr/local/include: is shuttle "
                  "installed (make install)?", dir, dir);
        return CLI_USAGE;
    }

    snprintf(loader, size, "%s/shuttle-loader", dir);

    if (access(loader, X_OK) != 0) {
        cli_error(cli, "cannot run %s: %s; is shuttle installed (make "
                  "install)?", loader, strerror(errno));
        return CLI_USAGE;
    }

    return CLI_OK;
}


static pid_t
cli_run_loader(const char *loader, const char *listen, const char *name,
    const char *so, int ready_fd, int res_fd, const sigset_t *mask)
{
    int     fd;
    char   *argv[12];
    pid_t   pid, parent;

    parent = getpid();

    pid = fork();
    if (pid != 0) {
        return pid;
    }

    /* the child: its own process group, gone when its parent is */

    setpgid(0, 0);

    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
        _exit(1);
    }

    fd = open("/dev/null", O_RDONLY);
    if (fd > 0) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }

    /* the pipe as fd 3, kept across exec */
    if (ready_fd != 3) {
        if (dup2(ready_fd, 3) == -1) {
            _exit(1);
        }

    } else {
        fcntl(3, F_SETFD, 0);
    }

    /* the resources as fd 4 */
    if (res_fd != -1 && dup2(res_fd, 4) == -1) {
        _exit(1);
    }

    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);

    argv[0] = (char *) "shuttle-loader";
    argv[1] = (char *) "--listen";
    argv[2] = (char *) listen;
    argv[3] = (char *) "--ready-fd";
    argv[4] = (char *) "3";
    argv[5] = (char *) "--name";
    argv[6] = (char *) name;

    if (res_fd != -1) {
        argv[7] = (char *) "--resources-fd";
        argv[8] = (char *) "4";
        argv[9] = (char *) so;
        argv[10] = NULL;

    } else {
        argv[7] = (char *) so;
        argv[8] = NULL;
    }

    execv(loader, argv);

    fprintf(stderr, "shuttle run: cannot run %s: %s\n", loader,
            strerror(errno));
    _exit(127);
}


/*
 * The loader in the sandbox: the socket bound here (a service may not
 * bind), the project's directory its own, the loader program and
 * PostgreSQL's usual socket directories to see.
 */

static pid_t
cli_run_sandboxed(cli_t *cli, shuttle_sandbox_t *sb, const char *top,
    const char *loader, const char *addr, const char *name,
    const char *so, int ready_fd, int res_fd, const sigset_t *mask)
{
    int                 fd, one, fds[6];
    char               *argv[12], err[1024];
    pid_t               pid;
    size_t              n;
    shuttle_bind_t      binds[4];
    shuttle_spawn_t     sp;
    shuttle_limits_t    limits;
    struct sockaddr_in  sa;

    char  *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                      NULL };

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t) atoi(strchr(addr, ':') + 1));
    one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1
        || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(fd, 511) != 0)
    {
        cli_error(cli, "the loader did not start: cannot listen on %s: %s",
                  addr, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    n = 0;
    argv[n++] = "shuttle-loader";
    argv[n++] = "--listen-fd";
    argv[n++] = "3";
    argv[n++] = "--ready-fd";
    argv[n++] = "4";
    argv[n++] = "--name";
    argv[n++] = (char *) name;

    if (res_fd != -1) {
        argv[n++] = "--resources-fd";
        argv[n++] = "5";
    }

    argv[n++] = (char *) so;
    argv[n] = NULL;

    fds[0] = -1;
    fds[1] = STDOUT_FILENO;
    fds[2] = STDERR_FILENO;
    fds[3] = fd;
    fds[4] = ready_fd;
    fds[5] = res_fd;

    memset(&limits, 0, sizeof(limits));
    limits.nofile = SHUTTLE_LIMIT_NOFILE;

    n = 0;
    binds[n].path = top;
    binds[n].rw = 1;
    binds[n++].optional = 0;
    binds[n].path = loader;
    binds[n].rw = 0;
    binds[n++].optional = 0;
    binds[n].path = "/run/postgresql";
    binds[n].rw = 0;
    binds[n++].optional = 1;
    binds[n].path = "/var/run/postgresql";
    binds[n].rw = 0;
    binds[n++].optional = 1;

    memset(&sp, 0, sizeof(sp));
    sp.kind = SHUTTLE_SANDBOX_SERVICE;
    sp.project = name;
    sp.limits = &limits;
    sp.binds = binds;
    sp.nbinds = n;
    sp.cwd = top;
    sp.fds = fds;
    sp.nfds = res_fd != -1 ? 6 : 5;
    sp.setsid = 1;
    sp.die_with_parent = 1;

    (void) mask;

    if (shuttle_sandbox_spawn(sb, &sp, loader, argv, envp, &pid, err,
                              sizeof(err))
        != 0)
    {
        cli_error(cli, "the loader did not start: %s", err);
        close(fd);
        return -1;
    }

    close(fd);

    return pid;
}


/*
 * Waits for the loader's "ready" (or "error: ..."), passing signals on,
 * until it exits.  Returns the exit code of shuttle run.
 */

static int
cli_run_serve(cli_t *cli, pid_t pid, int ready_fd, int sfd, int port,
    int sandboxed)
{
    int                       status, ready, stopping, nfds;
    char                      buf[1024], *nl;
    size_t                    len;
    ssize_t                   n;
    struct pollfd             pfd[2];
    struct signalfd_siginfo   si;

    ready = 0;
    stopping = 0;
    len = 0;

    for ( ;; ) {
        nfds = 0;

        pfd[nfds].fd = sfd;
        pfd[nfds].events = POLLIN;
        nfds++;

        if (ready_fd != -1) {
            pfd[nfds].fd = ready_fd;
            pfd[nfds].events = POLLIN;
            nfds++;
        }

        if (poll(pfd, nfds, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }

            cli_error(cli, "poll: %s", strerror(errno));
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return CLI_FAILED;
        }

        if (nfds > 1 && pfd[1].revents) {
            n = read(ready_fd, buf + len, sizeof(buf) - 1 - len);

            if (n > 0) {
                len += n;
                buf[len] = '\0';

                nl = strchr(buf, '\n');
                if (nl != NULL || len == sizeof(buf) - 1) {
                    if (nl != NULL) {
                        *nl = '\0';
                    }

                    if (strcmp(buf, "ready") == 0) {
                        ready = 1;
                        fprintf(stderr, "Serving on http://127.0.0.1:%d/ "
                                "(Ctrl-C stops)\n", port);
                        printf("http://127.0.0.1:%d/\n", port);
                        fflush(stdout);

                    } else {
                        cli_error(cli, "the loader did not start: %s",
                                  strncmp(buf, "error: ", 7) == 0
                                  ? buf + 7 : buf);
                    }

                    close(ready_fd);
                    ready_fd = -1;
                }

            } else if (n == 0 || errno != EINTR) {
                close(ready_fd);
                ready_fd = -1;
            }
        }

        if (pfd[0].revents == 0) {
            continue;
        }

        if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
            continue;
        }

        if (si.ssi_signo != SIGCHLD) {
            /* each signal once to the loader: a second one cuts it */
            if (!stopping) {
                fprintf(stderr, "\nStopping (again to cut the requests in "
                        "flight)\n");
            }

            stopping = 1;
            kill(pid, si.ssi_signo);
            continue;
        }

        if (waitpid(pid, &status, WNOHANG) != pid) {
            continue;
        }

        if (sandboxed) {
            status = shuttle_sandbox_status(status);
        }

        if (ready_fd != -1) {
            close(ready_fd);
        }

        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && ready) {
            fprintf(stderr, "Stopped\n");
            return CLI_OK;
        }

        if (ready || !WIFEXITED(status) || WEXITSTATUS(status) != 1) {
            if (WIFSIGNALED(status)) {
                cli_error(cli, "the loader was killed by signal %d",
                          WTERMSIG(status));

            } else {
                cli_error(cli, "the loader exited with status %d",
                          WEXITSTATUS(status));
            }
        }

        return stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0
               ? CLI_OK : CLI_FAILED;
    }
}


/*
 * What "shuttle run" gives the loader for the service's declarations:
 * SQLite files under DIR/.shuttle/sqlite/, the --postgres database,
 * DIR/Secrets.json, the static folder served by the loader itself.
 * *fd: a memfd with the JSON, or -1 when nothing is declared.
 */

static int
cli_run_resources(cli_t *cli, const char *top, const char *so,
    const char *postgres, int *fd)
{
    int             rc;
    char            path[PATH_MAX + 256], err[512], *text;
    size_t          i, n;
    json_t         *root, *obj, *secrets, *v;
    const char     *key;
    struct stat     st;
    json_error_t    jerr;
    shuttle_res_t  *res;

    *fd = -1;

    if (shuttle_resources_read(so, &res, &n, err, sizeof(err)) != 0) {
        cli_error(cli, "%s", err);
        return CLI_FAILED;
    }

    if (n == 0) {
        return CLI_OK;
    }

    rc = CLI_FAILED;
    root = json_object();

    for (i = 0; i < n; i++) {

        switch (res[i].kind) {

        case SHUTTLE_RES_KIND_SQLITE:
            snprintf(path, sizeof(path), "%s/.shuttle/sqlite", top);

            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                cli_error(cli, "cannot create %s: %s", path,
                          strerror(errno));
                goto done;
            }

            obj = json_object_get(root, "sqlite");
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, "sqlite", obj);
            }

            snprintf(path, sizeof(path), "%s/.shuttle/sqlite/%s.db", top,
                     res[i].name);
            json_object_set_new(obj, res[i].name, json_string(path));

            fprintf(stderr, "SQLite \"%s\": %s\n", res[i].name, path);
            break;

        case SHUTTLE_RES_KIND_POSTGRES:
            if (postgres == NULL) {
                cli_error(cli, "the service declares SHUTTLE_POSTGRES(\"%s\"):"
                          " give shuttle run a database with --postgres "
                          "\"host=... dbname=... user=...\"", res[i].name);
                goto done;
            }

            obj = json_object_get(root, "postgres");
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, "postgres", obj);
            }

            json_object_set_new(obj, res[i].name, json_string(postgres));
            break;

        case SHUTTLE_RES_KIND_SECRETS:
            snprintf(path, sizeof(path), "%s/Secrets.json", top);

            if (stat(path, &st) != 0) {
                secrets = json_object();

            } else {
                secrets = json_load_file(path, JSON_REJECT_DUPLICATES,
                                         &jerr);

                if (secrets == NULL || !json_is_object(secrets)) {
                    cli_error(cli, "%s: not a JSON object of \"KEY\": "
                              "\"VALUE\"%s%s", path, secrets ? "" : ": ",
                              secrets ? "" : jerr.text);
                    json_decref(secrets);
                    goto done;
                }

                json_object_foreach(secrets, key, v) {
                    if (!json_is_string(v)) {
                        cli_error(cli, "%s: the value of \"%s\" is not a "
                                  "string", path, key);
                        json_decref(secrets);
                        goto done;
                    }
                }
            }

            fprintf(stderr, "Secrets: %zu from %s\n",
                    json_object_size(secrets), path);
            json_object_set_new(root, "secrets", secrets);
            break;

        case SHUTTLE_RES_KIND_STATIC:
            snprintf(path, sizeof(path), "%s/%s", top, res[i].name);

            if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
                cli_error(cli, "SHUTTLE_STATIC(\"%s\"): the project has no "
                          "folder %s", res[i].name, res[i].name);
                goto done;
            }

            json_object_set_new(root, "static",
                                json_pack("{s:s}", "dir", path));
            break;
        }
    }

    text = json_dumps(root, JSON_COMPACT);

    *fd = text ? memfd_create("shuttle-resources", MFD_CLOEXEC) : -1;

    if (*fd == -1 || write(*fd, text, strlen(text)) != (ssize_t) strlen(text)
        || lseek(*fd, 0, SEEK_SET) == -1)
    {
        cli_error(cli, "resources: %s", strerror(errno));

        if (*fd != -1) {
            close(*fd);
            *fd = -1;
        }

    } else {
        rc = CLI_OK;
    }

    free(text);

done:

    json_decref(root);
    free(res);

    return rc;
}
