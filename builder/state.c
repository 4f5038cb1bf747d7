
/*
 * Deployment states: names and the legal transitions.
 */


#include <stdio.h>
#include <string.h>

#include "state.h"


#define S(tag)  (1u << SHUTTLE_DEPLOY_ ## tag)


static const char  *state_names[] = {
    "none", "queued", "building", "built", "loading", "running", "failed",
    "stopped", "superseded", "crashed", "deleted"
};


/* state_next[from]: the states "from" may become */

static const unsigned  state_next[] = {
    /* none */       S(QUEUED),
    /* queued */     S(BUILDING) | S(SUPERSEDED) | S(FAILED) | S(DELETED),
    /* building */   S(BUILT) | S(FAILED) | S(DELETED)
                     | S(QUEUED),            /* again, after a crash */
    /* built */      S(LOADING) | S(FAILED) | S(DELETED),
    /* loading */    S(RUNNING) | S(FAILED) | S(DELETED)
                     | S(LOADING),           /* again, after a crash */
    /* running */    S(RUNNING) | S(SUPERSEDED) | S(CRASHED) | S(STOPPED)
                     | S(DELETED),
    /* failed */     S(DELETED),
    /* stopped */    S(LOADING) | S(DELETED),
    /* superseded */ S(LOADING) | S(DELETED),
    /* crashed */    S(DELETED),
    /* deleted */    0
};


const char *
shuttle_deploy_name(shuttle_deploy_tag_t tag)
{
    return (unsigned) tag <= SHUTTLE_DEPLOY_LAST ? state_names[tag]
                                                 : "unknown";
}


shuttle_deploy_tag_t
shuttle_deploy_tag(const char *name)
{
    unsigned  i;

    for (i = 1; i <= SHUTTLE_DEPLOY_LAST; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            return (shuttle_deploy_tag_t) i;
        }
    }

    return SHUTTLE_DEPLOY_NONE;
}


int
shuttle_deploy_can(shuttle_deploy_tag_t from, shuttle_deploy_tag_t to)
{
    if ((unsigned) from > SHUTTLE_DEPLOY_LAST
        || (unsigned) to > SHUTTLE_DEPLOY_LAST)
    {
        return 0;
    }

    return (state_next[from] & (1u << to)) != 0;
}


int
shuttle_deploy_settled(shuttle_deploy_tag_t tag)
{
    switch (tag) {

    case SHUTTLE_DEPLOY_RUNNING:
    case SHUTTLE_DEPLOY_FAILED:
    case SHUTTLE_DEPLOY_STOPPED:
    case SHUTTLE_DEPLOY_SUPERSEDED:
    case SHUTTLE_DEPLOY_CRASHED:
    case SHUTTLE_DEPLOY_DELETED:
        return 1;

    default:
        return 0;
    }
}


unsigned
shuttle_deploy_zone_state(shuttle_deploy_tag_t tag)
{
    switch (tag) {

    case SHUTTLE_DEPLOY_QUEUED:
        return SHUTTLE_STATE_QUEUED;

    case SHUTTLE_DEPLOY_BUILDING:
    case SHUTTLE_DEPLOY_BUILT:
        return SHUTTLE_STATE_BUILDING;

    case SHUTTLE_DEPLOY_LOADING:
        return SHUTTLE_STATE_LOADING;

    case SHUTTLE_DEPLOY_RUNNING:
        return SHUTTLE_STATE_RUNNING;

    case SHUTTLE_DEPLOY_STOPPED:
        return SHUTTLE_STATE_STOPPED;

    case SHUTTLE_DEPLOY_FAILED:
    case SHUTTLE_DEPLOY_CRASHED:
    case SHUTTLE_DEPLOY_SUPERSEDED:
    default:
        return SHUTTLE_STATE_FAILED;
    }
}


int
shuttle_deploy_path(char *buf, size_t len, const char *data,
    const char *project, int64_t id, const char *file)
{
    int  n;

    if (file != NULL) {
        n = snprintf(buf, len, "%s/projects/%s/deployments/%lld/%s", data,
                     project, (long long) id, file);

    } else {
        n = snprintf(buf, len, "%s/projects/%s/deployments/%lld", data,
                     project, (long long) id);
    }

    return n < 0 || (size_t) n >= len ? -1 : 0;
}
