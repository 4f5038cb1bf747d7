
/*
 * A deployment's way from upload to service.so, in a worker thread:
 *
 *   queued -> building: upload.tar.gz extracted into src/ (removed
 *   after), src/ built into service.so; src/ is removed after the build,
 *   failed or not (the build log keeps what went wrong) -> built, handed
 *   to the main thread to start (supervise.c).
 *
 * Any failure makes the deployment failed with a one-line reason, which
 * ends its build.log too; the project's running deployment, if any, keeps
 * serving.  A rejected upload leaves nothing in the deployment's
 * directory but build.log.
 */


#ifndef SHUTTLE_BUILDER_DEPLOY_H
#define SHUTTLE_BUILDER_DEPLOY_H


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue.h"
#include "serve.h"


/* the build queue's job: data is the shuttle_serve_t */
void shuttle_deploy_run(shuttle_job_t *job, void *data);

/*
 * Makes deployment id failed with reason: the build log's last line, the
 * transition, then the zone and the daemon's log.  build_ms: how long the
 * build ran, -1 unknown.  Returns 0, or -1 when the store refused (the
 * deployment was deleted meanwhile).
 */
int shuttle_deploy_fail(shuttle_serve_t *s, const char *project, int64_t id,
    const char *reason, int64_t build_ms);

/* a queued deployment replaced by a newer upload: superseded, upload
 * removed */
void shuttle_deploy_supersede(shuttle_serve_t *s, const char *project,
    int64_t id, int64_t by);

/* removes what a dead deployment leaves but its build.log; all of its
 * directory once it is deleted */
void shuttle_deploy_clean(shuttle_serve_t *s, const char *project,
    int64_t id);


/*
 * The tenant of project: its uid and gid (the same number, from the
 * store, allocated on first use and kept), and the limits its sandbox
 * gets, written to *limits, which sp then points to.  0, or -1 with err.
 * Without a sandbox (--no-sandbox), or as a builder that is not root,
 * the uid is the builder's.
 */
int shuttle_deploy_tenant(shuttle_serve_t *s, const char *project,
    shuttle_spawn_t *sp, shuttle_limits_t *limits, char *err,
    size_t errlen);

/* the project's limits: the defaults, then the operator's (the store) */
void shuttle_deploy_limits(shuttle_serve_t *s, const char *project,
    shuttle_limits_t *limits);

/*
 * A purge's intent, made durable before it starts: <data>/projects/NAME/
 * purging holds the key that asked.  The caller removes the file (path)
 * when the purge is done or failed; shuttle_deploy_purge_resume(), at
 * start, finishes every purge a killed builder left half done.
 */
int shuttle_deploy_purge_mark(shuttle_serve_t *s, const char *project,
    const char *key, char *path, size_t size, char *err, size_t errlen);
void shuttle_deploy_purge_resume(shuttle_serve_t *s);


#endif /* SHUTTLE_BUILDER_DEPLOY_H */
