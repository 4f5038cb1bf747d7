
/*
 * A deployment's state: a tagged union, one struct per state holding the
 * data that state owns (the second devlog's DeploymentState, in C).
 *
 *   queued --> building --> built --> loading --> running --> superseded
 *     |           |             |          |          |  ^  +--> crashed
 *     |           +-------------+----------+--> failed +--+  +--> stopped
 *     +--> superseded (a newer upload came while it waited)
 *
 * and every state but deleted --> deleted.  running --> running is a new
 * loader for the same deployment (restarted after a crash, or taken over
 * by a restarted builder): same state, new port or pid.  superseded or
 * stopped --> loading is a rollback: its service.so, kept, runs again.
 *
 * Running{port 0, pid 0} is a deployment meant to run that has no loader
 * at the moment (the builder was stopped): its state is the desired one,
 * and a starting builder gives it a loader again.
 *
 * The store writes a transition before its effect takes place (before the
 * zone changes, before a loader is signalled), and refuses a transition
 * shuttle_deploy_can() does not allow.
 */


#ifndef SHUTTLE_BUILDER_STATE_H
#define SHUTTLE_BUILDER_STATE_H


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shuttle_zone.h"


#define SHUTTLE_NAME_MAX     SHUTTLE_ZONE_NAME_MAX   /* a project name */
#define SHUTTLE_KEY_MAX      64                      /* a key name */
#define SHUTTLE_PATH_MAX     1024
#define SHUTTLE_REASON_MAX   2048


/* in the order of a deployment's way up to running; the ends after it */
typedef enum {
    SHUTTLE_DEPLOY_NONE = 0,
    SHUTTLE_DEPLOY_QUEUED,
    SHUTTLE_DEPLOY_BUILDING,
    SHUTTLE_DEPLOY_BUILT,
    SHUTTLE_DEPLOY_LOADING,
    SHUTTLE_DEPLOY_RUNNING,
    SHUTTLE_DEPLOY_FAILED,
    SHUTTLE_DEPLOY_STOPPED,
    SHUTTLE_DEPLOY_SUPERSEDED,
    SHUTTLE_DEPLOY_CRASHED,
    SHUTTLE_DEPLOY_DELETED
} shuttle_deploy_tag_t;

#define SHUTTLE_DEPLOY_LAST  SHUTTLE_DEPLOY_DELETED


typedef struct {
    char      upload[SHUTTLE_PATH_MAX];   /* .../ID/upload.tar.gz */
} shuttle_queued_t;

typedef struct {
    int64_t   started;                    /* ms since the epoch */
} shuttle_building_t;

typedef struct {
    char      so[SHUTTLE_PATH_MAX];       /* .../ID/service.so */
} shuttle_built_t;

typedef struct {
    uint16_t  port;                       /* 127.0.0.1:port, bound */
    pid_t     pid;                        /* 0 until spawned */
} shuttle_loading_t;

typedef struct {
    uint16_t  port;                       /* 0: no loader at the moment */
    pid_t     pid;
    int64_t   started;                    /* when it became ready */
    int64_t   idle_since;                 /* scaled to zero then, 0: not
                                             idle (port: the socket the
                                             builder keeps for it) */
} shuttle_running_t;

typedef struct {
    char      reason[SHUTTLE_REASON_MAX];
} shuttle_failed_t;

typedef struct {
    int64_t   by;                         /* the deployment that won */
} shuttle_superseded_t;

typedef struct {
    char      reason[SHUTTLE_REASON_MAX];
    char      log[SHUTTLE_REASON_MAX];    /* last lines of runtime.log */
} shuttle_crashed_t;


typedef struct {
    shuttle_deploy_tag_t        tag;
    union {
        shuttle_queued_t        queued;
        shuttle_building_t      building;
        shuttle_built_t         built;
        shuttle_loading_t       loading;
        shuttle_running_t       running;
        shuttle_failed_t        failed;
        shuttle_superseded_t    superseded;
        shuttle_crashed_t       crashed;
        /* stopped and deleted hold nothing */
    } u;
} shuttle_deploy_state_t;


/* lowercase, as in SQLite and in the API: "queued" ... "deleted" */
const char *shuttle_deploy_name(shuttle_deploy_tag_t tag);
shuttle_deploy_tag_t shuttle_deploy_tag(const char *name);

int shuttle_deploy_can(shuttle_deploy_tag_t from, shuttle_deploy_tag_t to);

/* no more transitions but to deleted: the log of it is complete */
int shuttle_deploy_settled(shuttle_deploy_tag_t tag);

/* the zone state a deployment in this state shows when it is the latest */
unsigned shuttle_deploy_zone_state(shuttle_deploy_tag_t tag);

/*
 * DATA/projects/NAME/deployments/ID[/FILE] into buf; -1 when it does not
 * fit.
 */
int shuttle_deploy_path(char *buf, size_t len, const char *data,
    const char *project, int64_t id, const char *file);


#endif /* SHUTTLE_BUILDER_STATE_H */
