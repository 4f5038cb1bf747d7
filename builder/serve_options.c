
/*
 * shuttle-builder serve: the options, their checks and defaults, the
 * sandbox and the tenants' limits (serve_int.h).
 */

#include "serve.h"
#include "serve_int.h"


static void serve_usage(FILE *f);
static int serve_tenants(shuttle_serve_conf_t *conf, serve_args_t *a,
    char *err, size_t errlen);
static int serve_limit_number(const char *opt, const char *value,
    unsigned long min, unsigned long max, unsigned *out, char *err,
    size_t errlen);
static int serve_limit_size(const char *opt, const char *value,
    uint64_t *out, char *err, size_t errlen);
static char *serve_abs(const char *path);
static char *serve_exe_dir(void);
static int serve_number(const char *s, unsigned long min, unsigned long max,
    unsigned long *out);
static int serve_size(const char *s, uint64_t *out);
static char *serve_read_line(const char *path, char *err, size_t errlen);


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
"  --ports LO-HI         loaders' ports on 127.0.0.1 (10000-32767)\n"
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
"  SIGTERM, SIGINT  stop: API closed, builds cancelled; the loaders keep\n"
"                   serving, the next builder adopts them in place\n"
"  SIGQUIT          exit at once, loaders keep serving, the same\n"
"  SIGUSR2          stop everything: loaders stopped (they drain), the\n"
"                   socket keeper too (shuttle-builder stop --all)\n"
"  SIGHUP           reopen the --log file\n", f);
}


/* -1: go on; else the exit status */

int
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


int
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

int
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


/*
 * What this builder's own limits allow, said at its start: the ports of
 * --ports (a project's socket, and a second one while a deploy or a
 * takeover replaces its loader), its open files (raised to the hard
 * limit: a socket per project, idle or running, and for a running loader
 * a health check's connection or a starting one's pipe), the kernel's
 * pid_max (tasks of running loaders).  Less room for descriptors than
 * the ports hold: a warning, the operator raises LimitNOFILE.
 */

void
serve_capacity(shuttle_serve_t *s)
{
    long           pid_max;
    char           line[32];
    FILE          *f;
    unsigned long  ports, idle, running;
    struct rlimit  rl;

    ports = (unsigned long) s->conf.port_hi - s->conf.port_lo + 1;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        rl.rlim_cur = 1048576;
    }

    idle = rl.rlim_cur > SERVE_FDS_SPARE ? rl.rlim_cur - SERVE_FDS_SPARE : 0;
    running = idle / 2;

    pid_max = 0;
    f = fopen("/proc/sys/kernel/pid_max", "r");

    if (f != NULL) {
        if (fgets(line, sizeof(line), f) != NULL) {
            pid_max = strtol(line, NULL, 10);
        }

        fclose(f);
    }

    shuttle_log(idle < ports / 2 ? SHUTTLE_LOG_WARN : SHUTTLE_LOG_INFO,
                "capacity: ports %u-%u: %lu projects, each with a second "
                "port while a deploy or takeover replaces its loader; "
                "%llu open files: %lu idle projects or %lu running%s; "
                "kernel.pid_max %ld", (unsigned) s->conf.port_lo,
                (unsigned) s->conf.port_hi, ports / 2,
                (unsigned long long) rl.rlim_cur, idle, running,
                idle < ports / 2 ? " (fewer than the ports hold: raise the "
                                   "builder's open files limit, "
                                   "LimitNOFILE in its unit)" : "",
                pid_max);
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


char *
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

int
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
