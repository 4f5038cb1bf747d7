
/*
 * The builder's metrics (see metrics.h).
 */


#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "store.h"


#define METRICS_BUILD_BUCKETS  11
#define METRICS_START_BUCKETS  13
#define METRICS_BUCKETS_MAX    13


/* a histogram's buckets hold what is over the bound before theirs only
   (the text adds them up), the last one what is over all bounds; the sum
   in the unit observed */
typedef struct {
    atomic_uint_fast64_t    bucket[METRICS_BUCKETS_MAX + 1];
    atomic_uint_fast64_t    sum;
} metrics_histogram_t;


static const double  metrics_build_le[METRICS_BUILD_BUCKETS] = {
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300
};

static const double  metrics_start_le[METRICS_START_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};


static const char  *metrics_refused_names[SHUTTLE_REFUSED_LAST] = {
    "bad_name", "forbidden", "quota", "zone_full", "too_large",
    "bad_archive", "no_space", "unavailable", "other"
};

static const char  *metrics_start_names[SHUTTLE_START_LAST] = {
    "deploy", "restart", "takeover", "wake"
};


/* name, help; the _total ones are counters */
static const struct {
    const char  *name;
    const char  *help;
} metrics_counters[SHUTTLE_METRIC_LAST] = {
    { "shuttle_deploys_total",
      "Uploads the builder accepted (202) and queued." },
    { "shuttle_loader_crashes_total",
      "Loaders that died without being asked to, or whose restart did "
      "not come up." },
    { "shuttle_loader_restarts_total",
      "Loaders started again on the same socket after a crash." },
    { "shuttle_wakes_total",
      "Idle projects given a loader again (a connection came, or a "
      "restart)." },
    { "shuttle_wake_failures_total",
      "Wakes whose loader did not come up." },
    { "shuttle_idles_total",
      "Loaders that stopped for want of requests (scaled to zero)." },
    { "shuttle_health_check_failures_total",
      "Health checks of running loaders that failed." },
    { NULL, NULL },             /* the rollbacks: one family, two labels */
    { NULL, NULL }
};


static struct {
    atomic_uint_fast64_t      counter[SHUTTLE_METRIC_LAST];
    atomic_uint_fast64_t      refused[SHUTTLE_REFUSED_LAST];
    metrics_histogram_t       build;                    /* ms */
    metrics_histogram_t       start[SHUTTLE_START_LAST]; /* us */
    atomic_uint               loaders[4];   /* the census's fields */
    int64_t                   started;      /* wall clock ms */
} metrics;


static void metrics_observe(metrics_histogram_t *h, const double *le,
    size_t n, double scale, int64_t v);
static void metrics_histogram(FILE *f, const char *name, const char *label,
    const char *value, const metrics_histogram_t *h, const double *le,
    size_t n, double scale);
static void metrics_family(FILE *f, const char *name, const char *type,
    const char *help);


void
shuttle_metrics_init(void)
{
    metrics.started = shuttle_now_ms();
}


void
shuttle_metrics_count(shuttle_metric_t m)
{
    if ((unsigned) m < SHUTTLE_METRIC_LAST) {
        atomic_fetch_add_explicit(&metrics.counter[m], 1,
                                  memory_order_relaxed);
    }
}


void
shuttle_metrics_refused(shuttle_refused_t why)
{
    if ((unsigned) why >= SHUTTLE_REFUSED_LAST) {
        why = SHUTTLE_REFUSED_OTHER;
    }

    atomic_fetch_add_explicit(&metrics.refused[why], 1, memory_order_relaxed);
}


void
shuttle_metrics_build(int64_t ms)
{
    metrics_observe(&metrics.build, metrics_build_le, METRICS_BUILD_BUCKETS,
                    1e3, ms);
}


void
shuttle_metrics_start(shuttle_start_kind_t kind, int64_t us)
{
    if ((unsigned) kind < SHUTTLE_START_LAST) {
        metrics_observe(&metrics.start[kind], metrics_start_le,
                        METRICS_START_BUCKETS, 1e6, us);
    }
}


void
shuttle_metrics_loaders(const shuttle_loaders_census_t *c)
{
    atomic_store_explicit(&metrics.loaders[0], c->starting,
                          memory_order_relaxed);
    atomic_store_explicit(&metrics.loaders[1], c->running,
                          memory_order_relaxed);
    atomic_store_explicit(&metrics.loaders[2], c->backoff,
                          memory_order_relaxed);
    atomic_store_explicit(&metrics.loaders[3], c->idle,
                          memory_order_relaxed);
}


shuttle_refused_t
shuttle_metrics_extract_refusal(int err)
{
    switch (err) {

    case EFBIG:
        return SHUTTLE_REFUSED_TOO_LARGE;

    case ENOSPC:
    case EDQUOT:
        return SHUTTLE_REFUSED_NO_SPACE;

    case EINVAL:
        return SHUTTLE_REFUSED_BAD_ARCHIVE;

    default:
        return SHUTTLE_REFUSED_OTHER;
    }
}


char *
shuttle_metrics_text(shuttle_serve_t *s, size_t *len, char *err,
    size_t errlen)
{
    char       *text;
    FILE       *f;
    size_t      i;
    unsigned    running, waiting;
    uint64_t    states[SHUTTLE_DEPLOY_LAST + 1], projects;

    static const char  *loader_phases[4] = {
        "starting", "running", "backoff", "idle"
    };

    if (shuttle_store_census(s->store, states, &projects, err, errlen) != 0)
    {
        return NULL;
    }

    shuttle_queue_counts(s->queue, &running, &waiting);

    text = NULL;
    *len = 0;

    f = open_memstream(&text, len);
    if (f == NULL) {
        snprintf(err, errlen, "metrics: %s", strerror(errno));
        return NULL;
    }

    metrics_family(f, "shuttle_deployments", "gauge",
                   "Deployments in the store, by state.");

    for (i = SHUTTLE_DEPLOY_QUEUED; i <= SHUTTLE_DEPLOY_LAST; i++) {
        fprintf(f, "shuttle_deployments{state=\"%s\"} %llu\n",
                shuttle_deploy_name((shuttle_deploy_tag_t) i),
                (unsigned long long) states[i]);
    }

    metrics_family(f, "shuttle_projects", "gauge",
                   "Projects in the store, deleted ones left out.");
    fprintf(f, "shuttle_projects %llu\n", (unsigned long long) projects);

    metrics_family(f, "shuttle_queue_length", "gauge",
                   "Deployments waiting in the build queue.");
    fprintf(f, "shuttle_queue_length %u\n", waiting);

    metrics_family(f, "shuttle_builds_running", "gauge",
                   "Deployments a build worker has taken and not yet "
                   "handed over (extracting, building, starting).");
    fprintf(f, "shuttle_builds_running %u\n", running);

    metrics_family(f, "shuttle_loaders", "gauge",
                   "Loaders the builder supervises, by phase (idle: scaled "
                   "to zero, its socket kept, woken by a connection).");

    for (i = 0; i < 4; i++) {
        fprintf(f, "shuttle_loaders{state=\"%s\"} %u\n", loader_phases[i],
                atomic_load_explicit(&metrics.loaders[i],
                                     memory_order_relaxed));
    }

    for (i = 0; i < SHUTTLE_METRIC_LAST; i++) {
        if (metrics_counters[i].name == NULL) {
            continue;
        }

        metrics_family(f, metrics_counters[i].name, "counter",
                       metrics_counters[i].help);
        fprintf(f, "%s %llu\n", metrics_counters[i].name,
                (unsigned long long)
                atomic_load_explicit(&metrics.counter[i],
                                     memory_order_relaxed));
    }

    metrics_family(f, "shuttle_rollbacks_total", "counter",
                   "Rollbacks: asked for with the API, or automatic after a "
                   "new deployment crash-looped.");
    fprintf(f, "shuttle_rollbacks_total{kind=\"requested\"} %llu\n"
            "shuttle_rollbacks_total{kind=\"automatic\"} %llu\n",
            (unsigned long long)
            atomic_load_explicit(&metrics.counter[SHUTTLE_METRIC_ROLLBACKS],
                                 memory_order_relaxed),
            (unsigned long long)
            atomic_load_explicit(
                &metrics.counter[SHUTTLE_METRIC_AUTO_ROLLBACKS],
                memory_order_relaxed));

    metrics_family(f, "shuttle_uploads_refused_total", "counter",
                   "Uploads turned away, at the hand-off or when extracted, "
                   "by reason.");

    for (i = 0; i < SHUTTLE_REFUSED_LAST; i++) {
        fprintf(f, "shuttle_uploads_refused_total{reason=\"%s\"} %llu\n",
                metrics_refused_names[i],
                (unsigned long long)
                atomic_load_explicit(&metrics.refused[i],
                                     memory_order_relaxed));
    }

    metrics_family(f, "shuttle_build_duration_seconds", "histogram",
                   "Builds, from the upload's extraction to service.so and "
                   "its resources, succeeded or failed.");
    metrics_histogram(f, "shuttle_build_duration_seconds", NULL, NULL,
                      &metrics.build, metrics_build_le,
                      METRICS_BUILD_BUCKETS, 1e3);

    metrics_family(f, "shuttle_start_duration_seconds", "histogram",
                   "Loaders, from their spawn to their readiness, by what "
                   "they were started for.");

    for (i = 0; i < SHUTTLE_START_LAST; i++) {
        metrics_histogram(f, "shuttle_start_duration_seconds", "kind",
                          metrics_start_names[i], &metrics.start[i],
                          metrics_start_le, METRICS_START_BUCKETS, 1e6);
    }

    metrics_family(f, "process_start_time_seconds", "gauge",
                   "When the builder started, in seconds since the epoch.");
    fprintf(f, "process_start_time_seconds %.3f\n",
            (double) metrics.started / 1e3);

    if (fclose(f) != 0 || text == NULL) {
        snprintf(err, errlen, "metrics: %s", strerror(ENOMEM));
        free(text);
        return NULL;
    }

    return text;
}


/* v in 1/scale s */

static void
metrics_observe(metrics_histogram_t *h, const double *le, size_t n,
    double scale, int64_t v)
{
    size_t  i;

    if (v < 0) {
        v = 0;
    }

    for (i = 0; i < n && (double) v > le[i] * scale; i++) {
        /* void */
    }

    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, (uint64_t) v, memory_order_relaxed);
}


/*
 * Read while others observe, the buckets, sum and count of a histogram
 * may be one observation apart; +Inf is the buckets' total, so the
 * buckets are cumulative and +Inf and _count agree in every scrape.
 */

static void
metrics_histogram(FILE *f, const char *name, const char *label,
    const char *value, const metrics_histogram_t *h, const double *le,
    size_t n, double scale)
{
    char      l[64], lc[64];
    size_t    i;
    uint64_t  total;

    if (label != NULL) {
        snprintf(l, sizeof(l), "%s=\"%s\",", label, value);
        snprintf(lc, sizeof(lc), "{%s=\"%s\"}", label, value);

    } else {
        l[0] = '\0';
        lc[0] = '\0';
    }

    total = 0;

    for (i = 0; i <= n; i++) {
        total += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);

        if (i < n) {
            fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, l, le[i],
                    (unsigned long long) total);

        } else {
            fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, l,
                    (unsigned long long) total);
        }
    }

    fprintf(f, "%s_sum%s %.6f\n", name, lc,
            (double) atomic_load_explicit(&h->sum, memory_order_relaxed)
            / scale);
    fprintf(f, "%s_count%s %llu\n", name, lc, (unsigned long long) total);
}


static void
metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}
