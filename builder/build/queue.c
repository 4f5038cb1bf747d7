
/*
 * The build queue and its worker threads.
 */


#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"


typedef struct queue_busy_s {
    int64_t                 id;         /* the job that made it busy */
    char                    project[SHUTTLE_NAME_MAX + 1];
    char                    key[SHUTTLE_KEY_MAX + 1];
    struct queue_busy_s    *next;
} queue_busy_t;


struct shuttle_queue_s {
    pthread_mutex_t         lock;
    pthread_cond_t          wake;
    shuttle_job_t          *waiting;    /* upload order */
    shuttle_job_t          *running;
    queue_busy_t           *busy;
    shuttle_queue_run_pt    run;
    void                   *data;
    unsigned                per_key;
    shuttle_queue_key_pt    key_of;
    void                   *key_data;
    pthread_t              *threads;
    unsigned                nthreads;
    unsigned                stopping:1;
};


static void *queue_worker(void *arg);
static shuttle_job_t *queue_next(shuttle_queue_t *q);
static int queue_is_busy(shuttle_queue_t *q, const char *project);
static int queue_key_full(shuttle_queue_t *q, const char *key);
static void queue_unlink(shuttle_job_t **list, shuttle_job_t *job);


shuttle_queue_t *
shuttle_queue_create(unsigned workers, shuttle_queue_run_pt run, void *data,
    char *err, size_t errlen)
{
    int               rc;
    shuttle_queue_t  *q;

    q = calloc(1, sizeof(shuttle_queue_t));
    if (q == NULL) {
        snprintf(err, errlen, "build queue: %s", strerror(ENOMEM));
        return NULL;
    }

    q->threads = calloc(workers, sizeof(pthread_t));
    if (q->threads == NULL) {
        free(q);
        snprintf(err, errlen, "build queue: %s", strerror(ENOMEM));
        return NULL;
    }

    (void) pthread_mutex_init(&q->lock, NULL);
    (void) pthread_cond_init(&q->wake, NULL);
    q->run = run;
    q->data = data;

    for (q->nthreads = 0; q->nthreads < workers; q->nthreads++) {
        rc = pthread_create(&q->threads[q->nthreads], NULL, queue_worker, q);

        if (rc != 0) {
            snprintf(err, errlen, "build queue: worker %u: %s", q->nthreads,
                     strerror(rc));
            shuttle_queue_stop(q);
            shuttle_queue_destroy(q);
            return NULL;
        }
    }

    return q;
}


int
shuttle_queue_push(shuttle_queue_t *q, int64_t id, const char *project,
    int64_t *superseded, int64_t *by)
{
    void                  *key_data;
    shuttle_job_t         *job, *j, **last;
    shuttle_queue_key_pt   key_of;

    *superseded = 0;
    *by = 0;

    job = calloc(1, sizeof(shuttle_job_t));
    if (job == NULL) {
        return -1;
    }

    job->id = id;
    snprintf(job->project, sizeof(job->project), "%s", project);

    pthread_mutex_lock(&q->lock);
    key_of = q->key_of;
    key_data = q->key_data;
    pthread_mutex_unlock(&q->lock);

    if (key_of != NULL) {
        key_of(project, job->key, sizeof(job->key), key_data);
    }

    pthread_mutex_lock(&q->lock);

    for (j = q->waiting; j != NULL; j = j->next) {
        if (strcmp(j->project, project) == 0) {
            break;
        }
    }

    if (j != NULL && j->id > id) {
        /* a newer upload already waits: this one is out of date */
        *superseded = id;
        *by = j->id;
        free(job);
        pthread_mutex_unlock(&q->lock);
        return 0;
    }

    if (j != NULL) {
        *superseded = j->id;
        *by = id;
        queue_unlink(&q->waiting, j);
        free(j);
    }

    for (last = &q->waiting; *last != NULL; last = &(*last)->next) {
        /* the tail */
    }

    *last = job;

    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);

    return 0;
}


void
shuttle_queue_limit_keys(shuttle_queue_t *q, unsigned per_key,
    shuttle_queue_key_pt key_of, void *data)
{
    shuttle_job_t  *j;
    queue_busy_t   *b;

    pthread_mutex_lock(&q->lock);

    q->per_key = per_key;
    q->key_of = key_of;
    q->key_data = data;

    for (j = q->waiting; j != NULL && key_of != NULL; j = j->next) {
        key_of(j->project, j->key, sizeof(j->key), data);
    }

    for (b = q->busy; b != NULL && key_of != NULL; b = b->next) {
        key_of(b->project, b->key, sizeof(b->key), data);
    }

    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
}


void
shuttle_queue_done(shuttle_queue_t *q, const char *project, int64_t id)
{
    queue_busy_t  *b, **p;

    pthread_mutex_lock(&q->lock);

    for (p = &q->busy; *p != NULL; p = &(*p)->next) {
        b = *p;

        if (b->id == id && strcmp(b->project, project) == 0) {
            *p = b->next;
            free(b);
            break;
        }
    }

    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
}


int64_t
shuttle_queue_cancel(shuttle_queue_t *q, const char *project)
{
    int64_t         id;
    shuttle_job_t  *j;

    id = 0;

    pthread_mutex_lock(&q->lock);

    for (j = q->waiting; j != NULL; j = j->next) {
        if (strcmp(j->project, project) == 0) {
            id = j->id;
            queue_unlink(&q->waiting, j);
            free(j);
            break;
        }
    }

    for (j = q->running; j != NULL; j = j->next) {
        if (strcmp(j->project, project) == 0) {
            j->cancel = 1;
        }
    }

    pthread_mutex_unlock(&q->lock);

    return id;
}


void
shuttle_queue_counts(shuttle_queue_t *q, unsigned *running,
    unsigned *waiting)
{
    shuttle_job_t  *j;

    *running = 0;
    *waiting = 0;

    pthread_mutex_lock(&q->lock);

    for (j = q->running; j != NULL; j = j->next) {
        (*running)++;
    }

    for (j = q->waiting; j != NULL; j = j->next) {
        (*waiting)++;
    }

    pthread_mutex_unlock(&q->lock);
}


void
shuttle_queue_stop(shuttle_queue_t *q)
{
    unsigned        i;
    shuttle_job_t  *j;

    pthread_mutex_lock(&q->lock);

    q->stopping = 1;

    for (j = q->running; j != NULL; j = j->next) {
        j->cancel = 1;
    }

    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);

    for (i = 0; i < q->nthreads; i++) {
        (void) pthread_join(q->threads[i], NULL);
    }

    q->nthreads = 0;
}


void
shuttle_queue_destroy(shuttle_queue_t *q)
{
    shuttle_job_t  *j;
    queue_busy_t   *b;

    while ((j = q->waiting) != NULL) {
        q->waiting = j->next;
        free(j);
    }

    while ((b = q->busy) != NULL) {
        q->busy = b->next;
        free(b);
    }

    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q);
}


static void *
queue_worker(void *arg)
{
    shuttle_queue_t  *q;
    shuttle_job_t    *job;
    queue_busy_t     *b;

    q = arg;

    pthread_mutex_lock(&q->lock);

    while (!q->stopping) {
        job = queue_next(q);

        if (job == NULL) {
            pthread_cond_wait(&q->wake, &q->lock);
            continue;
        }

        b = calloc(1, sizeof(queue_busy_t));
        if (b == NULL) {
            /* try again when memory or another job frees up */
            pthread_cond_wait(&q->wake, &q->lock);
            continue;
        }

        queue_unlink(&q->waiting, job);
        job->next = q->running;
        q->running = job;

        b->id = job->id;
        memcpy(b->project, job->project, sizeof(b->project));
        memcpy(b->key, job->key, sizeof(b->key));
        b->next = q->busy;
        q->busy = b;

        pthread_mutex_unlock(&q->lock);

        q->run(job, q->data);

        pthread_mutex_lock(&q->lock);

        queue_unlink(&q->running, job);
        free(job);
    }

    pthread_mutex_unlock(&q->lock);

    return NULL;
}


/* the oldest waiting job whose project is not busy and whose key is
 * under its limit */

static shuttle_job_t *
queue_next(shuttle_queue_t *q)
{
    shuttle_job_t  *j;

    for (j = q->waiting; j != NULL; j = j->next) {
        if (!queue_is_busy(q, j->project) && !queue_key_full(q, j->key)) {
            return j;
        }
    }

    return NULL;
}


static int
queue_key_full(shuttle_queue_t *q, const char *key)
{
    unsigned       n;
    queue_busy_t  *b;

    if (q->per_key == 0 || key[0] == '\0') {
        return 0;
    }

    n = 0;

    for (b = q->busy; b != NULL; b = b->next) {
        n += strcmp(b->key, key) == 0;
    }

    return n >= q->per_key;
}


static int
queue_is_busy(shuttle_queue_t *q, const char *project)
{
    queue_busy_t  *b;

    for (b = q->busy; b != NULL; b = b->next) {
        if (strcmp(b->project, project) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
queue_unlink(shuttle_job_t **list, shuttle_job_t *job)
{
    shuttle_job_t  **p;

    for (p = list; *p != NULL; p = &(*p)->next) {
        if (*p == job) {
            *p = job->next;
            job->next = NULL;
            return;
        }
    }
}
