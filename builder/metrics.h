
/*
 * The builder's metrics: GET /metrics on its socket, the Prometheus text
 * exposition format 0.0.4.
 *
 * Two kinds of figures.  Counted as things happen, in memory since the
 * builder started (a restart resets them, as Prometheus expects of a
 * counter): uploads accepted and refused, build and start durations,
 * loader crashes, restarts, wakes, health checks failed, rollbacks.
 * Asked for at each scrape: deployments by state and live projects (one
 * query each of the store), the build queue, the loaders main supervises
 * (main publishes their census after each turn of its loop).
 *
 * Every label value is one of a fixed enum below: no project name, no id,
 * nothing a key holder chooses, so the series are bounded whatever is
 * deployed.
 *
 * Any thread may count: counters are C11 atomics, no lock.
 */


#ifndef SHUTTLE_BUILDER_METRICS_H
#define SHUTTLE_BUILDER_METRICS_H


#include <stddef.h>
#include <stdint.h>

#include "core.h"


typedef enum {
    SHUTTLE_METRIC_DEPLOYS = 0,     /* uploads accepted (202) */
    SHUTTLE_METRIC_CRASHES,         /* loaders that died unasked */
    SHUTTLE_METRIC_RESTARTS,        /* loaders started again after one */
    SHUTTLE_METRIC_WAKES,           /* idle projects given a loader */
    SHUTTLE_METRIC_WAKE_FAILURES,   /* ... whose loader did not come up */
    SHUTTLE_METRIC_IDLES,           /* loaders stopped for idleness */
    SHUTTLE_METRIC_HEALTH_FAILURES, /* health checks failed */
    SHUTTLE_METRIC_ROLLBACKS,       /* asked for with the API */
    SHUTTLE_METRIC_AUTO_ROLLBACKS,  /* after a crash loop */
    SHUTTLE_METRIC_LAST
} shuttle_metric_t;


/* why an upload was turned away: the label of uploads_refused_total */
typedef enum {
    SHUTTLE_REFUSED_BAD_NAME = 0,   /* project or key name not valid */
    SHUTTLE_REFUSED_FORBIDDEN,      /* the project is another key's */
    SHUTTLE_REFUSED_QUOTA,          /* the key has --key-projects */
    SHUTTLE_REFUSED_ZONE_FULL,      /* no slot left for a new project */
    SHUTTLE_REFUSED_TOO_LARGE,      /* over an extraction limit */
    SHUTTLE_REFUSED_BAD_ARCHIVE,    /* not a tar.gz, or a bad entry */
    SHUTTLE_REFUSED_NO_SPACE,       /* the disk is full */
    SHUTTLE_REFUSED_UNAVAILABLE,    /* the builder is stopping */
    SHUTTLE_REFUSED_OTHER,          /* the spool file, the store ... */
    SHUTTLE_REFUSED_LAST
} shuttle_refused_t;


/* what a loader started for: the label of start_duration_seconds */
typedef enum {
    SHUTTLE_START_DEPLOY = 0,       /* a new deployment, or a rollback */
    SHUTTLE_START_RESTART,          /* after a crash, or asked for */
    SHUTTLE_START_TAKEOVER,         /* running when the builder started */
    SHUTTLE_START_WAKE,             /* idle, and a connection came */
    SHUTTLE_START_LAST
} shuttle_start_kind_t;


/* the loaders main supervises, by phase */
typedef struct {
    unsigned  starting;             /* spawned, not ready yet */
    unsigned  running;
    unsigned  backoff;              /* died, restarted after a delay */
    unsigned  idle;                 /* scaled to zero, socket kept */
} shuttle_loaders_census_t;


void shuttle_metrics_init(void);

void shuttle_metrics_count(shuttle_metric_t m);
void shuttle_metrics_refused(shuttle_refused_t why);

/* a build that ran (extracted, compiled, built or failed), in ms */
void shuttle_metrics_build(int64_t ms);
/* a loader's spawn to its "ready", in us */
void shuttle_metrics_start(shuttle_start_kind_t kind, int64_t us);

/* main: after each turn of its loop */
void shuttle_metrics_loaders(const shuttle_loaders_census_t *c);

/* the refusal an errno of shuttle_extract() stands for */
shuttle_refused_t shuttle_metrics_extract_refusal(int err);

/*
 * The text of GET /metrics, malloc'd (*len bytes); NULL with err when
 * the store cannot be read or out of memory.
 */
char *shuttle_metrics_text(shuttle_serve_t *s, size_t *len, char *err,
    size_t errlen);


#endif /* SHUTTLE_BUILDER_METRICS_H */
