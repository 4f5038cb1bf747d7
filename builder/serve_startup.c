
/*
 * shuttle-builder serve: at startup, the zone, the store, the socket and
 * the signals opened (serve_int.h).
 */

#include "serve.h"
#include "serve_int.h"


/* an upload is renamed from the spool into its deployment, never copied */

int
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


int
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

void
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

int
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

int
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


int
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


int
serve_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR2);

    if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0) {
        return -1;
    }

    signal(SIGPIPE, SIG_IGN);

    return signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
}
