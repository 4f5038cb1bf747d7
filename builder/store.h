
/*
 * The builder's state in SQLite: DATA/shuttle.db.
 *
 *   projects     id, name, owner (the key name that deployed it first),
 *                created, current (the deployment serving it, or NULL),
 *                deleted (NULL while it lives: a live name is unique)
 *   deployments  id, project, state and the data of that state (upload,
 *                build_started, so, port, pid, running_since,
 *                superseded_by, log), reason, created, updated,
 *                build_ms, start_ms
 *   transitions  deployment, state, at, reason: every state a deployment
 *                went through
 *
 * WAL, synchronous=FULL, foreign keys on; the schema version is PRAGMA
 * user_version.  One connection, one writer: every call takes the
 * store's mutex, so any thread may call.  Times are ms since the epoch.
 *
 * A transition is one transaction: the state, its data, the transitions
 * row, and the project's current deployment change together, and an
 * illegal transition (shuttle_deploy_can()) changes nothing.
 *
 * The shuttle_store_each_*() calls run their callback with the mutex
 * held: a callback must not call the store.  A non-zero return stops the
 * walk.  Functions return 0, SHUTTLE_STORE_NOT_FOUND, or -1 with err set
 * (naming the database, the deployment or the project, and the cause).
 */


#ifndef SHUTTLE_BUILDER_STORE_H
#define SHUTTLE_BUILDER_STORE_H


#include <stddef.h>
#include <stdint.h>

#include "state.h"


#define SHUTTLE_STORE_SCHEMA     2

#define SHUTTLE_STORE_NOT_FOUND  1
#define SHUTTLE_STORE_FORBIDDEN  2     /* the project is another key's */
#define SHUTTLE_STORE_REFUSED    3     /* an illegal transition */


typedef struct shuttle_store_s  shuttle_store_t;


typedef struct {
    int64_t                 id;
    char                    name[SHUTTLE_NAME_MAX + 1];
    char                    owner[SHUTTLE_KEY_MAX + 1];
    int64_t                 created;
    int64_t                 updated;    /* the latest deployment's change */
    int64_t                 current;    /* running deployment, 0: none */
    int64_t                 latest;     /* newest deployment, 0: none */
} shuttle_project_t;


typedef struct {
    int64_t                 id;
    int64_t                 project_id;
    char                    project[SHUTTLE_NAME_MAX + 1];
    char                    owner[SHUTTLE_KEY_MAX + 1];
    int64_t                 created;
    int64_t                 updated;
    int64_t                 build_ms;   /* -1: not known */
    int64_t                 start_ms;   /* -1: not known */
    char                    reason[SHUTTLE_REASON_MAX];  /* "" none */
    shuttle_deploy_state_t  state;
} shuttle_deployment_t;


typedef struct {
    shuttle_deploy_tag_t    state;
    int64_t                 at;
    const char             *reason;     /* NULL: none */
} shuttle_transition_t;


/* what a transition records besides the state's own data */
typedef struct {
    const char             *reason;     /* NULL: none */
    int64_t                 build_ms;   /* -1: unchanged */
    int64_t                 start_ms;   /* -1: unchanged */
} shuttle_store_note_t;


typedef int (*shuttle_store_project_pt)(const shuttle_project_t *p,
    void *data);
typedef int (*shuttle_store_deployment_pt)(const shuttle_deployment_t *d,
    void *data);
typedef int (*shuttle_store_transition_pt)(const shuttle_transition_t *t,
    void *data);


shuttle_store_t *shuttle_store_open(const char *path, const char *data_dir,
    char *err, size_t errlen);
void shuttle_store_close(shuttle_store_t *st);

/*
 * A new deployment of project name by key owner, queued: the project is
 * created (owned by owner) when it has no live row.  SHUTTLE_STORE_FORBIDDEN
 * when another key owns it.
 */
int shuttle_store_enqueue(shuttle_store_t *st, const char *name,
    const char *owner, int64_t *id, char *err, size_t errlen);

/*
 * Moves deployment id to the state *to.  *prev (may be NULL) gets the
 * project's current deployment before the change, for a transition to
 * running, which makes id current.  SHUTTLE_STORE_REFUSED when the
 * transition is illegal from the state it is in; err says which.
 */
int shuttle_store_transition(shuttle_store_t *st, int64_t id,
    const shuttle_deploy_state_t *to, const shuttle_store_note_t *note,
    int64_t *prev, char *err, size_t errlen);

/* the port and pid of a loading or running deployment, not a transition */
int shuttle_store_set_loader(shuttle_store_t *st, int64_t id,
    uint16_t port, pid_t pid, char *err, size_t errlen);

/* every deployment of the live project name becomes deleted, and the name
 * is free */
int shuttle_store_delete_project(shuttle_store_t *st, const char *name,
    const char *reason, char *err, size_t errlen);

int shuttle_store_project(shuttle_store_t *st, const char *name,
    shuttle_project_t *p, char *err, size_t errlen);
int shuttle_store_deployment(shuttle_store_t *st, int64_t id,
    shuttle_deployment_t *d, char *err, size_t errlen);
int shuttle_store_state(shuttle_store_t *st, int64_t id,
    shuttle_deploy_tag_t *tag);

/*
 * Resources and secrets, by project name: they outlive a deleted project
 * (until purged), so a redeploy by the same owner finds its data again.
 * info is a JSON object of the kind's own (a PostgreSQL database's role
 * and password); resources and secrets never leave the builder but as
 * the API and the loaders need them.
 */
typedef int (*shuttle_store_resource_pt)(const char *kind, const char *name,
    const char *info, void *data);
typedef int (*shuttle_store_secret_pt)(const char *key, const char *value,
    void *data);

int shuttle_store_resource_put(shuttle_store_t *st, const char *project,
    const char *owner, const char *kind, const char *name, const char *info,
    char *err, size_t errlen);
/* 0 with info, SHUTTLE_STORE_NOT_FOUND, or -1 */
int shuttle_store_resource_get(shuttle_store_t *st, const char *project,
    const char *kind, const char *name, char *info, size_t infolen);
int shuttle_store_each_resource(shuttle_store_t *st, const char *project,
    shuttle_store_resource_pt handler, void *data, char *err, size_t errlen);
/* the key owning project's kept resources or secrets: 0, NOT_FOUND, -1 */
int shuttle_store_kept_owner(shuttle_store_t *st, const char *project,
    char *owner, size_t size);
int shuttle_store_purge(shuttle_store_t *st, const char *project, char *err,
    size_t errlen);

int shuttle_store_secret_set(shuttle_store_t *st, const char *project,
    const char *owner, const char *key, const char *value, char *err,
    size_t errlen);
/* 0, or SHUTTLE_STORE_NOT_FOUND when there was no such secret */
int shuttle_store_secret_del(shuttle_store_t *st, const char *project,
    const char *key, char *err, size_t errlen);
int shuttle_store_each_secret(shuttle_store_t *st, const char *project,
    shuttle_store_secret_pt handler, void *data, char *err, size_t errlen);

/* live projects of owner (NULL: every owner), by name */
int shuttle_store_each_project(shuttle_store_t *st, const char *owner,
    shuttle_store_project_pt handler, void *data, char *err,
    size_t errlen);

/* the deployments of a project row, newest first, at most limit */
int shuttle_store_each_deployment(shuttle_store_t *st, int64_t project_id,
    unsigned limit, shuttle_store_deployment_pt handler, void *data,
    char *err, size_t errlen);

/* deployments whose state is in mask (1 << tag), oldest first */
int shuttle_store_each_in_state(shuttle_store_t *st, unsigned mask,
    shuttle_store_deployment_pt handler, void *data, char *err,
    size_t errlen);

int shuttle_store_each_transition(shuttle_store_t *st, int64_t id,
    shuttle_store_transition_pt handler, void *data, char *err,
    size_t errlen);


#endif /* SHUTTLE_BUILDER_STORE_H */
