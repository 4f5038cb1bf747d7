
/*
 * Extract and build a deployment, in a worker thread.
 */


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "deploy.h"
#include "extract.h"
#include "fault.h"
#include "fsafe.h"
#include "metrics.h"
#include "tenant.h"
#include "provision.h"
#include "log.h"


static int deploy_path(shuttle_serve_t *s, const char *project, int64_t id,
    const char *file, char *buf);
static void deploy_upload_error(char *err, const char *upload);


void
shuttle_deploy_run(shuttle_job_t *job, void *data)
{
    int                     rc, fd;
    char                    err[SHUTTLE_REASON_MAX];
    char                    reason[SHUTTLE_REASON_MAX];
    char                    upload[SHUTTLE_PATH_MAX], src[SHUTTLE_PATH_MAX];
    char                    log[SHUTTLE_PATH_MAX], so[SHUTTLE_PATH_MAX];
    int64_t                 t0, build_ms;
    shuttle_serve_t        *s;
    shuttle_msg_t          *m;
    shuttle_store_note_t    note;
    shuttle_bind_t          binds[2];
    shuttle_spawn_t         sp;
    shuttle_limits_t        limits;
    shuttle_build_opts_t    o;
    shuttle_deploy_state_t  to;

    s = data;
    fd = -1;
    t0 = shuttle_mono_ms();
    build_ms = -1;
    upload[0] = '\0';
    src[0] = '\0';

    if (deploy_path(s, job->project, job->id, "upload.tar.gz", upload) != 0
        || deploy_path(s, job->project, job->id, "src", src) != 0
        || deploy_path(s, job->project, job->id, "build.log", log) != 0
        || deploy_path(s, job->project, job->id, "service.so", so) != 0)
    {
        snprintf(err, sizeof(err), "data path too long");
        goto failed;
    }

    if (job->cancel) {
        snprintf(err, sizeof(err), "%s", s->stopping ? "builder stopped"
                                                     : "cancelled");
        goto failed;
    }

    memset(&note, 0, sizeof(shuttle_store_note_t));
    note.build_ms = -1;
    note.start_ms = -1;

    to.tag = SHUTTLE_DEPLOY_BUILDING;
    to.u.building.started = shuttle_now_ms();

    rc = shuttle_store_transition(s->store, job->id, &to, &note, NULL, err,
                                  sizeof(err));
    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: not built: %s",
                    job->project, (long long) job->id, err);
        shuttle_deploy_clean(s, job->project, job->id);
        shuttle_queue_done(s->queue, job->project, job->id);
        return;
    }

    shuttle_serve_zone_sync(s, job->project);
    shuttle_serve_changed(s);

    /* a new project that found the zone full in a race: nothing starts */

    pthread_mutex_lock(&s->zone_lock);
    rc = shuttle_zone_room(&s->zone, job->project, err, sizeof(err));
    pthread_mutex_unlock(&s->zone_lock);

    if (rc != 0) {
        shuttle_metrics_refused(SHUTTLE_REFUSED_ZONE_FULL);
        goto failed;
    }

    fd = shuttle_fsafe_open(s->conf.data, log, O_WRONLY | O_CREAT | O_APPEND,
                            0640);
    if (fd == -1) {
        snprintf(err, sizeof(err), "build log %s: %s", log, strerror(errno));
        goto failed;
    }

    shuttle_serve_note(s, job->project, job->id, "extracting the upload");

    if (shuttle_extract(upload, src, &s->conf.upload, err, sizeof(err)) != 0) {
        shuttle_metrics_refused(shuttle_metrics_extract_refusal(errno));
        deploy_upload_error(err, upload);
        goto failed;
    }

    /* the upload stays until the build is done: a builder killed meanwhile
       builds it again at its next start */

    if (job->cancel) {
        snprintf(err, sizeof(err), "%s", s->stopping ? "builder stopped"
                                                     : "cancelled");
        goto failed;
    }

    memset(&o, 0, sizeof(shuttle_build_opts_t));

    if (s->conf.sandbox != NULL) {
        /* the project's uid builds, seeing its source and the SDK */

        if (shuttle_deploy_tenant(s, job->project, &sp, &limits, err,
                                  sizeof(err))
            != 0
            || shuttle_fsafe_chown(s->conf.data, src, sp.uid, sp.gid, err,
                                  sizeof(err))
               != 0)
        {
            goto failed;
        }

        binds[0].path = src;
        binds[0].rw = 1;
        binds[0].optional = 0;
        binds[1].path = s->conf.sdk_include;
        binds[1].rw = 0;
        binds[1].optional = 0;

        sp.cgroup = "build";
        sp.die_with_parent = 1;     /* a builder killed ends its builds */
        sp.binds = binds;
        sp.nbinds = 2;

        o.sandbox = s->conf.sandbox;
        o.spawn = &sp;
    }

    shuttle_serve_note(s, job->project, job->id, "building");

    o.src_dir = src;
    o.out = so;
    o.include_dir = s->conf.sdk_include;
    o.log_fd = fd;
    o.timeout_ms = s->conf.build_timeout_ms;
    o.cancel = &job->cancel;

    rc = shuttle_build(&o, err, sizeof(err));

    if (o.sandbox != NULL) {
        /* its cgroup, with anything that found a way to stay */
        shuttle_sandbox_release(s->conf.sandbox, job->project, "build");
    }

    /* the resources it declares, while the project is still there for
       its static folder */
    if (rc == 0 && !job->cancel) {
        rc = shuttle_provision(s, job->project, job->id, so, src, err,
                               sizeof(err));
    }

    build_ms = shuttle_mono_ms() - t0;

    if (!job->cancel) {
        shuttle_metrics_build(build_ms);
    }

    /* the build tree: removed on the way out (failed:), or once the
       loader is on its way (a few ms of a tree walk after cc) */

    if (rc != 0) {
        if (job->cancel && s->stopping) {
            snprintf(err, sizeof(err), "builder stopped");
        }

        goto failed;
    }

    (void) unlink(upload);

    close(fd);
    fd = -1;

    shuttle_serve_note(s, job->project, job->id, "built in %lld ms",
                       (long long) build_ms);

    to.tag = SHUTTLE_DEPLOY_BUILT;
    memcpy(to.u.built.so, so, sizeof(so));
    note.build_ms = build_ms;

    rc = shuttle_store_transition(s->store, job->id, &to, &note, NULL, err,
                                  sizeof(err));
    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: built, not started: "
                    "%s", job->project, (long long) job->id, err);
        shuttle_deploy_clean(s, job->project, job->id);
        shuttle_queue_done(s->queue, job->project, job->id);
        return;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: built in %lld ms",
                job->project, (long long) job->id, (long long) build_ms);

    shuttle_fault("built");

    shuttle_serve_changed(s);

    m = calloc(1, sizeof(shuttle_msg_t));

    if (m == NULL) {
        (void) shuttle_rmtree(s->conf.data, src);
        (void) shuttle_deploy_fail(s, job->project, job->id,
                                   "out of memory", build_ms);
        shuttle_queue_done(s->queue, job->project, job->id);
        return;
    }

    /* main starts it, and ends the project's turn in the queue */

    m->type = SHUTTLE_MSG_BUILT;
    m->id = job->id;
    memcpy(m->project, job->project, sizeof(m->project));

    shuttle_serve_post(s, m);

    (void) shuttle_rmtree(s->conf.data, src);

    return;

failed:

    if (fd != -1) {
        close(fd);
    }

    if (upload[0] != '\0') {
        (void) unlink(upload);
    }

    if (src[0] != '\0') {
        (void) shuttle_rmtree(s->conf.data, src);
    }

    /* the words of a build, an upload, a declaration: one line (log.h) */
    shuttle_log_escape_flags(reason, sizeof(reason), err, strlen(err),
                             SHUTTLE_ESCAPE_GUARD);

    (void) shuttle_deploy_fail(s, job->project, job->id, reason, build_ms);
    shuttle_queue_done(s->queue, job->project, job->id);
}


int
shuttle_deploy_fail(shuttle_serve_t *s, const char *project, int64_t id,
    const char *reason, int64_t build_ms)
{
    int                     rc;
    char                    err[512];
    shuttle_store_note_t    note;
    shuttle_deploy_state_t  to;

    /* what it quotes of the tenant's, no control byte but \n (log.h) */

    to.tag = SHUTTLE_DEPLOY_FAILED;
    shuttle_log_escape_flags(to.u.failed.reason, sizeof(to.u.failed.reason),
                             reason, strlen(reason),
                             SHUTTLE_ESCAPE_LINES | SHUTTLE_ESCAPE_GUARD);
    reason = to.u.failed.reason;

    /* the log first: a follower that sees the state settle reads it all */

    shuttle_serve_note(s, project, id, "failed: %s", reason);

    memset(&note, 0, sizeof(shuttle_store_note_t));
    note.build_ms = build_ms;
    note.start_ms = -1;

    rc = shuttle_store_transition(s->store, id, &to, &note, NULL, err,
                                  sizeof(err));
    if (rc != 0) {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s (%s)", project,
                    (long long) id, reason, err);
        shuttle_deploy_clean(s, project, id);
        return -1;
    }

    shuttle_log(SHUTTLE_LOG_ERROR, "deploy %s #%lld: %s", project,
                (long long) id, reason);

    shuttle_serve_zone_sync(s, project);
    shuttle_serve_changed(s);

    return 0;
}


void
shuttle_deploy_supersede(shuttle_serve_t *s, const char *project,
    int64_t id, int64_t by)
{
    char                    err[512], upload[SHUTTLE_PATH_MAX];
    shuttle_store_note_t    note;
    shuttle_deploy_state_t  to;

    shuttle_serve_note(s, project, id, "superseded by #%lld before it was "
                       "built", (long long) by);

    snprintf(err, sizeof(err), "superseded by #%lld", (long long) by);

    memset(&note, 0, sizeof(shuttle_store_note_t));
    note.reason = err;
    note.build_ms = -1;
    note.start_ms = -1;

    to.tag = SHUTTLE_DEPLOY_SUPERSEDED;
    to.u.superseded.by = by;

    if (shuttle_store_transition(s->store, id, &to, &note, NULL, err,
                                 sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", project,
                    (long long) id, err);
        return;
    }

    shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: superseded by #%lld "
                "while queued", project, (long long) id, (long long) by);

    if (deploy_path(s, project, id, "upload.tar.gz", upload) == 0) {
        (void) unlink(upload);
    }

    shuttle_serve_changed(s);
}


void
shuttle_deploy_clean(shuttle_serve_t *s, const char *project, int64_t id)
{
    char                  path[SHUTTLE_PATH_MAX];
    shuttle_deploy_tag_t  tag;

    if (shuttle_store_state(s->store, id, &tag) == 0
        && tag == SHUTTLE_DEPLOY_DELETED
        && deploy_path(s, project, id, NULL, path) == 0)
    {
        (void) shuttle_rmtree(s->conf.data, path);
        return;
    }

    if (deploy_path(s, project, id, "upload.tar.gz", path) == 0) {
        (void) unlink(path);
    }

    if (deploy_path(s, project, id, "src", path) == 0) {
        (void) shuttle_rmtree(s->conf.data, path);
    }
}


int
shuttle_deploy_tenant(shuttle_serve_t *s, const char *project,
    shuttle_spawn_t *sp, shuttle_limits_t *limits, char *err, size_t errlen)
{
    uid_t   uid, avoid[2];
    size_t  n;

    memset(sp, 0, sizeof(shuttle_spawn_t));
    sp->project = project;

    shuttle_deploy_limits(s, project, limits);
    sp->limits = limits;

    if (s->conf.sandbox == NULL || !shuttle_sandbox_uids(s->conf.sandbox)) {
        sp->uid = getuid();
        sp->gid = getgid();
        return 0;
    }

    n = 0;
    avoid[n++] = getuid();

    if (s->conf.nginx_user != NULL) {
        avoid[n++] = s->conf.uid;
    }

    if (shuttle_store_project_uid(s->store, project, s->conf.uid_lo,
                                  s->conf.uid_hi, avoid, n, &uid, err,
                                  errlen)
        != 0)
    {
        return -1;
    }

    sp->uid = uid;
    sp->gid = (gid_t) uid;

    return 0;
}


void
shuttle_deploy_limits(shuttle_serve_t *s, const char *project,
    shuttle_limits_t *limits)
{
    char  json[1024], err[256];

    *limits = s->conf.limits;

    if (shuttle_store_limits_get(s->store, project, json, sizeof(json)) == 0
        && shuttle_limits_merge(limits, json, err, sizeof(err)) != 0)
    {
        /* the command checked them: a hand-edited store */
        shuttle_log(SHUTTLE_LOG_WARN, "project %s: %s: the defaults apply",
                    project, err);
        *limits = s->conf.limits;
    }
}


int
shuttle_deploy_purge_mark(shuttle_serve_t *s, const char *project,
    const char *key, char *path, size_t size, char *err, size_t errlen)
{
    int     fd, n;
    size_t  len;

    n = snprintf(path, size, "%s/projects/%s", s->conf.data, project);

    if (n < 0 || (size_t) n + sizeof("/purging") > size) {
        snprintf(err, errlen, "data path too long");
        return -1;
    }

    if (mkdir(path, 0755) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "directory %s: %s", path, strerror(errno));
        return -1;
    }

    strcat(path, "/purging");
    len = strlen(key);

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd == -1
        || write(fd, key, len) != (ssize_t) len
        || fsync(fd) == -1)
    {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));

        if (fd != -1) {
            close(fd);
            (void) unlink(path);
        }

        return -1;
    }

    close(fd);

    return 0;
}


void
shuttle_deploy_purge_resume(shuttle_serve_t *s)
{
    int             fd;
    char            path[SHUTTLE_PATH_MAX], key[SHUTTLE_KEY_MAX + 1];
    char            err[512];
    DIR            *d;
    ssize_t         n;
    struct dirent  *e;

    snprintf(path, sizeof(path), "%s/projects", s->conf.data);

    d = opendir(path);
    if (d == NULL) {
        return;
    }

    while ((e = readdir(d)) != NULL) {
        if (!shuttle_valid_name(e->d_name, strlen(e->d_name))
            || snprintf(path, sizeof(path), "%s/projects/%s/purging",
                        s->conf.data, e->d_name) >= (int) sizeof(path))
        {
            continue;
        }

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            continue;
        }

        n = read(fd, key, sizeof(key) - 1);
        close(fd);
        key[n > 0 ? n : 0] = '\0';

        if (shuttle_provision_purge(s, e->d_name, key, err, sizeof(err))
            != 0)
        {
            shuttle_log(SHUTTLE_LOG_ERROR, "project %s: the purge a killed "
                        "builder began: %s", e->d_name, err);

        } else {
            shuttle_log(SHUTTLE_LOG_INFO, "project %s: the purge a killed "
                        "builder began is finished", e->d_name);
        }

        (void) unlink(path);
    }

    closedir(d);
}


static int
deploy_path(shuttle_serve_t *s, const char *project, int64_t id,
    const char *file, char *buf)
{
    return shuttle_deploy_path(buf, SHUTTLE_PATH_MAX, s->conf.data, project,
                               id, file);
}


/* "tarball /var/lib/.../upload.tar.gz: why" says "upload: why" to users */

static void
deploy_upload_error(char *err, const char *upload)
{
    size_t  len;

    len = strlen(upload);

    if (strncmp(err, "tarball ", 8) == 0
        && strncmp(err + 8, upload, len) == 0
        && strncmp(err + 8 + len, ": ", 2) == 0)
    {
        memcpy(err, "upload", 6);
        memmove(err + 6, err + 8 + len, strlen(err + 8 + len) + 1);
    }
}
