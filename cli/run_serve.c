
/*
 * shuttle run: the loader, its paths, spawned in the sandbox or not, and
 * served until a signal; PostgreSQL and the resources it is given
 * (run_int.h).
 */

#include "run_int.h"


/*
 * Beside this program, the SDK header for the build (the first of
 * ../include, ../../include and /usr/local/include holding shuttle.h:
 * installed, or in the source tree) and shuttle-loader.
 */

int
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


pid_t
cli_run_loader(const char *loader, const char *listen, const char *name,
    const char *so, int ready_fd, int res_fd, const int *out,
    const sigset_t *mask)
{
    int     fd;
    char   *argv[12];
    pid_t   pid, parent;

    parent = getpid();

    pid = fork();
    if (pid != 0) {
        return pid;
    }

    /*
     * the child: a session of its own (no controlling terminal), gone
     * when its parent is; stdout and stderr the pipes
     */

    setsid();

    if (dup2(out[0], STDOUT_FILENO) == -1
        || dup2(out[1], STDERR_FILENO) == -1)
    {
        _exit(1);
    }

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
 * bind), the scratch directory (the copy and service.so) read-only, the
 * loader program, its SQLite folder and PostgreSQL's socket directories
 * to see.
 */

pid_t
cli_run_sandboxed(cli_t *cli, shuttle_sandbox_t *sb, cli_run_t *r,
    const char *addr, int ready_fd, int res_fd, const int *out,
    const sigset_t *mask)
{
    int                 fd, one, fds[6];
    char               *argv[12], err[1024];
    pid_t               pid;
    size_t              n;
    shuttle_bind_t      binds[6];
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
    argv[n++] = (char *) r->name;

    if (res_fd != -1) {
        argv[n++] = "--resources-fd";
        argv[n++] = "5";
    }

    argv[n++] = r->so;
    argv[n] = NULL;

    fds[0] = -1;
    fds[1] = out[0];
    fds[2] = out[1];
    fds[3] = fd;
    fds[4] = ready_fd;
    fds[5] = res_fd;

    memset(&limits, 0, sizeof(limits));
    limits.nofile = SHUTTLE_LIMIT_NOFILE;

    n = 0;
    binds[n].path = r->scratch;
    binds[n].rw = 0;
    binds[n++].optional = 0;
    binds[n].path = r->loader;
    binds[n].rw = 0;
    binds[n++].optional = 0;

    if (r->sqlite[0] != '\0') {
        binds[n].path = r->sqlite;
        binds[n].rw = 1;
        binds[n++].optional = 0;
    }

    if (r->pgdir[0] != '\0') {
        binds[n].path = r->pgdir;
        binds[n].rw = 0;
        binds[n++].optional = 0;
    }

    binds[n].path = "/run/postgresql";
    binds[n].rw = 0;
    binds[n++].optional = 1;
    binds[n].path = "/var/run/postgresql";
    binds[n].rw = 0;
    binds[n++].optional = 1;

    memset(&sp, 0, sizeof(sp));
    sp.kind = SHUTTLE_SANDBOX_SERVICE;
    sp.project = r->name;
    sp.limits = &limits;
    sp.binds = binds;
    sp.nbinds = n;
    sp.cwd = r->src;
    sp.fds = fds;
    sp.nfds = res_fd != -1 ? 6 : 5;
    sp.setsid = 1;
    sp.die_with_parent = 1;

    (void) mask;

    if (shuttle_sandbox_spawn(sb, &sp, r->loader, argv, envp, &pid, err,
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

int
cli_run_serve(cli_t *cli, pid_t pid, int ready_fd, int sfd, int port,
    int sandboxed, cli_relay_t *out)
{
    int                       status, ready, stopping, nfds, ri, oi[2], i;
    char                      buf[1024], *nl;
    size_t                    len;
    ssize_t                   n;
    struct pollfd             pfd[4];
    struct signalfd_siginfo   si;

    ready = 0;
    stopping = 0;
    len = 0;

    for ( ;; ) {
        nfds = 0;

        pfd[nfds].fd = sfd;
        pfd[nfds].events = POLLIN;
        nfds++;

        ri = -1;

        if (ready_fd != -1) {
            ri = nfds;
            pfd[nfds].fd = ready_fd;
            pfd[nfds].events = POLLIN;
            nfds++;
        }

        /* the loader's stdout and stderr, relayed */

        for (i = 0; i < 2; i++) {
            oi[i] = -1;

            if (out[i].from != -1) {
                oi[i] = nfds;
                pfd[nfds].fd = out[i].from;
                pfd[nfds].events = POLLIN;
                nfds++;
            }
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

        for (i = 0; i < 2; i++) {
            if (oi[i] != -1 && pfd[oi[i]].revents
                && cli_run_relay(&out[i], 0) != 0)
            {
                close(out[i].from);
                out[i].from = -1;
            }
        }

        if (ri != -1 && pfd[ri].revents) {
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

        /* what it wrote last, without waiting on anything it left */

        for (i = 0; i < 2; i++) {
            if (out[i].from != -1) {
                (void) cli_run_relay(&out[i], 1);
            }
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
 * --postgres's DSN: in the sandbox, a service reaches no TCP port of this
 * machine (a network namespace of its own), so the server must be
 * named by its socket directory (host=/dir, or none: libpq's
 * /run/postgresql), which is bound in: r->pgdir.
 */

int
cli_run_postgres(cli_t *cli, cli_run_t *r, int sandboxed)
{
    size_t       n;
    const char  *p, *host, *end;
    char         tcp[256];

    if (r->postgres == NULL || !sandboxed) {
        return CLI_OK;
    }

    host = NULL;
    n = 0;

    if (strncmp(r->postgres, "postgresql://", 13) == 0
        || strncmp(r->postgres, "postgres://", 11) == 0)
    {
        /* postgresql://[user[:pw]@][host][:port][/db][?host=/dir&...] */
        p = strstr(r->postgres, "://") + 3;
        end = p + strcspn(p, "/?");

        host = memrchr(p, '@', end - p);
        host = host != NULL ? host + 1 : p;
        n = strcspn(host, ":/?");

        p = strchr(end, '?');

        while (p != NULL) {
            p++;

            if (strncmp(p, "host=", 5) == 0) {
                host = p + 5;
                n = strcspn(host, "&");
            }

            p = strchr(p, '&');
        }

        if (n >= 3 && strncasecmp(host, "%2F", 3) == 0) {
            cli_error(cli, "--postgres: give the socket directory as "
                      "?host=/dir, not %%2F-encoded");
            return CLI_USAGE;
        }

    } else {
        /* key=value pairs: the last host= wins, as in libpq */
        for (p = r->postgres; *p != '\0'; p++) {
            if ((p == r->postgres || p[-1] == ' ' || p[-1] == '\t')
                && (strncmp(p, "host=", 5) == 0
                    || strncmp(p, "hostaddr=", 9) == 0))
            {
                host = strchr(p, '=') + 1;

                if (host[0] == '\'') {
                    host++;
                    n = strcspn(host, "'");

                } else {
                    n = strcspn(host, " \t");
                }

                if (p[4] == 'a') {
                    /* hostaddr is an IP address whatever host says */
                    break;
                }
            }
        }
    }

    if (host == NULL || n == 0) {
        return CLI_OK;               /* libpq's default socket directory */
    }

    snprintf(tcp, sizeof(tcp), "%.*s", (int) n, host);

    if (host[0] != '/') {
        cli_error(cli, "--postgres: host \"%s\" is out of the sandbox's "
                  "reach: the service has a network of its own, with no TCP "
                  "port of this machine or another; give the server's socket "
                  "directory (host=/run/postgresql), or --no-sandbox", tcp);
        return CLI_USAGE;
    }

    if (memchr(host, ',', n) != NULL || n >= sizeof(r->pgdir)) {
        cli_error(cli, "--postgres: host \"%s\": one socket directory, "
                  "bound into the sandbox, not a list", tcp);
        return CLI_USAGE;
    }

    memcpy(r->pgdir, host, n);
    r->pgdir[n] = '\0';

    return CLI_OK;
}


/*
 * What "shuttle run" gives the loader for the service's declarations:
 * SQLite files under DIR/.shuttle/sqlite/ (the one folder of the project
 * the service writes: r->sqlite), the --postgres database,
 * DIR/Secrets.json, the static folder of the copy served by the loader
 * itself.  *fd: a memfd with the JSON, or -1 when nothing is declared.
 */

int
cli_run_resources(cli_t *cli, cli_run_t *r, int *fd)
{
    int             rc;
    char            path[PATH_MAX + 256], err[512], *text,
                    real[PATH_MAX];
    size_t          i, n;
    json_t         *root, *obj, *secrets, *v;
    const char     *key;
    struct stat     st;
    json_error_t    jerr;
    shuttle_res_t  *res;

    *fd = -1;

    if (shuttle_resources_read(r->so, &res, &n, err, sizeof(err)) != 0) {
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
            snprintf(path, sizeof(path), "%s/.shuttle", r->top);

            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                cli_error(cli, "cannot create %s: %s", path,
                          strerror(errno));
                goto done;
            }

            snprintf(r->sqlite, sizeof(r->sqlite), "%s/.shuttle/sqlite",
                     r->top);

            if (mkdir(r->sqlite, 0755) != 0 && errno != EEXIST) {
                cli_error(cli, "cannot create %s: %s", r->sqlite,
                          strerror(errno));
                goto done;
            }

            /*
             * bound in writable: a folder of the project's, not a link a
             * cloned repository made to .git/hooks or elsewhere
             */
            if (realpath(r->sqlite, real) == NULL
                || strcmp(real, r->sqlite) != 0
                || lstat(r->sqlite, &st) != 0 || !S_ISDIR(st.st_mode))
            {
                cli_error(cli, "%s is not a folder of the project's own "
                          "(a symbolic link?): refused, the service's "
                          "SQLite data would be written elsewhere",
                          r->sqlite);
                goto done;
            }

            obj = json_object_get(root, "sqlite");
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, "sqlite", obj);
            }

            snprintf(path, sizeof(path), "%s/%s.db", r->sqlite,
                     res[i].name);
            json_object_set_new(obj, res[i].name, json_string(path));

            fprintf(stderr, "SQLite \"%s\": %s\n", res[i].name, path);
            break;

        case SHUTTLE_RES_KIND_POSTGRES:
            if (r->postgres == NULL) {
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

            json_object_set_new(obj, res[i].name, json_string(r->postgres));
            break;

        case SHUTTLE_RES_KIND_SECRETS:
            snprintf(path, sizeof(path), "%s/Secrets.json", r->top);

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
            snprintf(path, sizeof(path), "%s/%s", r->src, res[i].name);

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
