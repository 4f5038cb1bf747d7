
/*
 * The build queue: deployments wait here in upload order until a worker
 * thread builds them.
 *
 * Per project, one deployment at a time: a project is busy from the
 * moment a worker takes its job until shuttle_queue_done() (the build
 * failed, or its loader started or failed to); meanwhile its later jobs
 * wait.  A project has at most one waiting job: a newer upload replaces
 * (supersedes) an older one still waiting.  Different projects build at
 * once, up to the number of workers.
 *
 * Fairness between keys: with shuttle_queue_limit_keys(), a job is
 * charged to its project's key, and at most per_key projects of one key
 * are busy at once.  A worker passes over a waiting job whose key is at
 * its limit and takes the next one of another key: one key's uploads
 * wait behind each other, never in front of another key's.
 *
 * The queue knows jobs by deployment id and project name only; what a job
 * does is the run callback's, called in a worker thread.  job->cancel
 * becomes non-zero when the job should stop early (its project deleted,
 * the builder stopping).
 */


#ifndef SHUTTLE_BUILDER_QUEUE_H
#define SHUTTLE_BUILDER_QUEUE_H


#include <stddef.h>
#include <stdint.h>

#include "state.h"


typedef struct shuttle_queue_s  shuttle_queue_t;


typedef struct shuttle_job_s {
    int64_t                 id;
    char                    project[SHUTTLE_NAME_MAX + 1];
    char                    key[SHUTTLE_KEY_MAX + 1];  /* "": not known */
    volatile int            cancel;
    struct shuttle_job_s   *next;
} shuttle_job_t;


typedef void (*shuttle_queue_run_pt)(shuttle_job_t *job, void *data);

/* writes the key that project's jobs are charged to into key (size
 * bytes); "" when not known: such a job is not limited */
typedef void (*shuttle_queue_key_pt)(const char *project, char *key,
    size_t size, void *data);


shuttle_queue_t *shuttle_queue_create(unsigned workers,
    shuttle_queue_run_pt run, void *data, char *err, size_t errlen);

/*
 * Queues deployment id of project.  When the project already has a job
 * waiting, the older of the two is dropped: *superseded is its id and
 * *by the other's; both are 0 when nothing was dropped.  -1 when out of
 * memory.
 */
int shuttle_queue_push(shuttle_queue_t *q, int64_t id, const char *project,
    int64_t *superseded, int64_t *by);

/*
 * At most per_key jobs of one key busy at once (0: no limit).  key_of
 * names a job's key: called as a job is pushed, outside the queue's
 * lock, and here, under it, for the jobs already in the queue (so
 * key_of must not call the queue).
 */
void shuttle_queue_limit_keys(shuttle_queue_t *q, unsigned per_key,
    shuttle_queue_key_pt key_of, void *data);

/* job id is over: its project is no longer busy, its next job may start */
void shuttle_queue_done(shuttle_queue_t *q, const char *project, int64_t id);

/* drops the project's waiting job (its id, or 0) and cancels its running
 * one */
int64_t shuttle_queue_cancel(shuttle_queue_t *q, const char *project);

/* jobs running or waiting, for the log */
void shuttle_queue_counts(shuttle_queue_t *q, unsigned *running,
    unsigned *waiting);

/* cancels the running jobs and waits for the workers to end; waiting
 * jobs stay where they are (and in the store, queued) */
void shuttle_queue_stop(shuttle_queue_t *q);
void shuttle_queue_destroy(shuttle_queue_t *q);


#endif /* SHUTTLE_BUILDER_QUEUE_H */
