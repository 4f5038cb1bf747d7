
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
 *   resources, secrets, uids, limits: by project name, see below
 *   resources    project (name), owner, kind, name, info: declared in code
 *   secrets      project (name), owner, key, value
 *   uids         uid (also the gid), project (name), owner: each
 *                project's own, unique both ways
 *
 * WAL, synchronous=FULL, foreign keys on; the schema version is PRAGMA
 * user_version.  One connection, one writer: every call takes the
 * store's mutex, so any thread may call.  Times are ms since the epoch.
 *
 * Every commit survives the builder's death (SIGKILL): the WAL is in the
 * kernel's page cache once COMMIT returns.  The commits that must also
 * survive the machine's (power, kernel) are synced to the disk: an
 * accepted upload (enqueue), the switch to running, a failure, a
 * delete, secrets, resources.  The steps between queued and running
 * (building, built, loading, a loader's port and pid) and the previous
 * deployment superseded by the switch are not synced on their own: the
 * next synced commit carries them, and a power loss before it leaves the
 * deployment in an earlier state of its way, as a builder killed then
 * would (no process of a build or a loader outlives the machine; a start
 * supersedes an older running one again).  That is 2 fdatasyncs per
 * deploy, not 7.
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
#include <sys/types.h>

#include "state.h"


#define SHUTTLE_STORE_SCHEMA     5

#define SHUTTLE_STORE_NOT_FOUND  1
#define SHUTTLE_STORE_FORBIDDEN  2     /* the project is another key's */
#define SHUTTLE_STORE_REFUSED    3     /* an illegal transition */
#define SHUTTLE_STORE_LIMIT      4     /* the key has --key-projects */
#define SHUTTLE_STORE_DAMAGED    5     /* the file is not a sound store */


typedef struct shuttle_store_s  shuttle_store_t;


typedef struct {
    int64_t                 id;
    char                    name[SHUTTLE_NAME_MAX + 1];
    char                    owner[SHUTTLE_KEY_MAX + 1];
    int64_t                 created;
    int64_t                 updated;    /* the latest deployment's change */
    int64_t                 current;    /* running deployment, 0: none */
    int64_t                 latest;     /* newest deployment, 0: none */
    int64_t                 idle_ms;    /* its idle timeout, -1: the
                                           builder's --idle, 0: never */
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

/* a row of the projects' listing (shuttle_store_each_project_view) */
typedef struct {
    shuttle_project_t       project;
    shuttle_deployment_t    latest;     /* id 0: none */
    shuttle_deploy_tag_t    current;    /* the current one's state, 0: none */
    uint16_t                current_port;
    int64_t                 current_idle_since;
    const char             *limits;     /* the operator's, NULL: none */
    unsigned                resources;  /* declared in its code */
} shuttle_project_view_t;

typedef int (*shuttle_store_view_pt)(const shuttle_project_view_t *v,
    void *data);


/*
 * Opens the store at path, creating it when there is no file.  An
 * existing file is checked first by shuttle_store_verify() (its header,
 * every page: PRAGMA quick_check) and refused, left exactly as it was
 * (no -wal or -shm made, no lock, no migration), when it is damaged or
 * of a newer schema than SHUTTLE_STORE_SCHEMA: err names the file, the
 * cause and what to do (restore a backup).  An older schema is migrated.
 */
shuttle_store_t *shuttle_store_open(const char *path, const char *data_dir,
    char *err, size_t errlen);
void shuttle_store_close(shuttle_store_t *st);

/* what shuttle_store_verify() found in a sound file */
typedef struct {
    int                     version;     /* PRAGMA user_version */
    int64_t                 projects;    /* live ones; -1: no such table */
    int64_t                 deployments; /* -1: no such table */
} shuttle_store_info_t;

/*
 * Checks the SQLite file at path without changing anything on disk, with
 * PRAGMA check ("quick_check" or "integrity_check").  With no -wal file
 * beside it (its last writer closed it) the file alone is the database:
 * it is read as immutable, which takes no lock and creates no -wal or
 * -shm.  With a -wal (its writer was killed, or runs) it is read through
 * the WAL, read-only: the -shm is used, or made when missing.  Returns 0
 * and what it found in *info; SHUTTLE_STORE_DAMAGED when the file is
 * empty, not SQLite's or has damaged pages, with err saying what SQLite
 * found; -1 when it could not be read (err).
 */
int shuttle_store_verify(const char *path, const char *check,
    shuttle_store_info_t *info, char *err, size_t errlen);

/*
 * A new deployment of project name by key owner, queued: the project is
 * created (owned by owner) when it has no live row.  Refused, with err
 * saying why and nothing written:
 *
 *   SHUTTLE_STORE_FORBIDDEN  another key's live project holds the name
 *                            (it ran once, or a deployment of it is on
 *                            its way), or another key's data is kept
 *                            under it (resources, secrets, or the uid of
 *                            its deleted project that ran: held until
 *                            that key purges it);
 *   SHUTTLE_STORE_LIMIT      the project would be a new one of owner's,
 *                            who holds max_projects already (0: no
 *                            limit).
 *
 * A project holds its name, and counts toward its key's projects, once
 * one of its deployments ran, or while one is on its way.  A project
 * whose deployments all failed before any ran holds nothing: another
 * key's upload takes the name (that row becomes deleted, its
 * deployments and build logs stay readable by id to their key).
 */
int shuttle_store_enqueue(shuttle_store_t *st, const char *name,
    const char *owner, unsigned max_projects, int64_t *id, char *err,
    size_t errlen);

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
/* running deployment id is idle since (ms), its socket on port */
int shuttle_store_set_idle(shuttle_store_t *st, int64_t id, uint16_t port,
    int64_t since, char *err, size_t errlen);

/* a project's own idle timeout: ms, 0 never, -1 the builder's --idle */
int shuttle_store_set_project_idle(shuttle_store_t *st, const char *name,
    int64_t ms, char *err, size_t errlen);

int shuttle_store_set_loader(shuttle_store_t *st, int64_t id,
    uint16_t port, pid_t pid, char *err, size_t errlen);

/*
 * An operator's limits for project (shuttle-builder limits), a JSON object
 * of the keys of shuttle_limits_t it changes ({"memory": 536870912}); the
 * rest are the builder's defaults.  They outlive the project, like its
 * data.  get: 0 and json, SHUTTLE_STORE_NOT_FOUND, or -1; set: json NULL
 * removes them.
 */
int shuttle_store_limits_get(shuttle_store_t *st, const char *project,
    char *json, size_t size);
int shuttle_store_limits_set(shuttle_store_t *st, const char *project,
    const char *json, char *err, size_t errlen);

/*
 * The reason of a running deployment, not a transition: why its loader
 * was last restarted (a crash, out of memory), for the API to show.
 */
int shuttle_store_set_reason(shuttle_store_t *st, int64_t id,
    const char *reason, char *err, size_t errlen);

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
 * For the metrics: how many deployments are in each state (count[tag],
 * SHUTTLE_DEPLOY_LAST + 1 of them, NONE: a state this builder does not
 * know), and how many live (not deleted) projects there are.
 */
int shuttle_store_census(shuttle_store_t *st, uint64_t *count,
    uint64_t *projects, char *err, size_t errlen);

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

/* resource_put and secret_set: SHUTTLE_STORE_FORBIDDEN when the row is
 * another key's (nothing changed) */
int shuttle_store_resource_put(shuttle_store_t *st, const char *project,
    const char *owner, const char *kind, const char *name, const char *info,
    char *err, size_t errlen);
/* 0 with info, SHUTTLE_STORE_NOT_FOUND, or -1 */
int shuttle_store_resource_get(shuttle_store_t *st, const char *project,
    const char *kind, const char *name, char *info, size_t infolen);
int shuttle_store_each_resource(shuttle_store_t *st, const char *project,
    shuttle_store_resource_pt handler, void *data, char *err, size_t errlen);
/* the key owning project's kept resources, secrets or uid (see
 * shuttle_store_enqueue()): 0, NOT_FOUND, -1 */
int shuttle_store_kept_owner(shuttle_store_t *st, const char *project,
    char *owner, size_t size);
/* owner's resources, secrets and uid under the name project are gone */
int shuttle_store_purge(shuttle_store_t *st, const char *project,
    const char *owner, char *err, size_t errlen);

/*
 * The uid of project, which is also its gid: builds and loaders of the
 * project run as it.  The uid recorded for the name is returned; else
 * the lowest uid in [lo, hi] that no other project holds, that is not 0
 * and not one of avoid[navoid] (nginx's, the builder's) is recorded,
 * for the owner of the project's live row (or of its last one), and
 * returned.  A recorded uid no longer in [lo, hi], or now in avoid[], is
 * replaced the same way.
 *
 * The uid is stable across redeploys and kept across a plain delete,
 * like the project's resources and secrets, for the same owner: it holds
 * the name against other keys once the project ran (see
 * shuttle_store_enqueue()).  It is freed by shuttle_store_purge(), and
 * when another key takes the name of a project that never ran.  Two
 * projects never share one (the table's UNIQUE constraints).
 *
 * 0 with *uid; SHUTTLE_STORE_NOT_FOUND when no project has the name; -1
 * with err "no free uid in LO-HI for project NAME" when the range is
 * used up, or a database error.
 */
int shuttle_store_project_uid(shuttle_store_t *st, const char *project,
    uid_t lo, uid_t hi, const uid_t *avoid, size_t navoid, uid_t *uid,
    char *err, size_t errlen);

int shuttle_store_secret_set(shuttle_store_t *st, const char *project,
    const char *owner, const char *key, const char *value, char *err,
    size_t errlen);
/* 0, or SHUTTLE_STORE_NOT_FOUND when owner had no such secret */
int shuttle_store_secret_del(shuttle_store_t *st, const char *project,
    const char *owner, const char *key, char *err, size_t errlen);
int shuttle_store_each_secret(shuttle_store_t *st, const char *project,
    shuttle_store_secret_pt handler, void *data, char *err, size_t errlen);

/* live projects of owner (NULL: every owner), by name */
int shuttle_store_each_project(shuttle_store_t *st, const char *owner,
    shuttle_store_project_pt handler, void *data, char *err,
    size_t errlen);
/* up to limit projects named after "after", in one query, with what the
 * listing shows; the handler runs with the store held: no store call */
int shuttle_store_each_project_view(shuttle_store_t *st, const char *owner,
    const char *after, unsigned limit, shuttle_store_view_pt handler,
    void *data, char *err, size_t errlen);

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
