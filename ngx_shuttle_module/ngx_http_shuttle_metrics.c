
/*
 * The module's metrics: what nginx saw of each project, in shared memory,
 * and "shuttle_metrics", which prints them in Prometheus' text format.
 *
 * The table is one array of fixed-size entries in a shared memory zone
 * ("shuttle_metrics_zone", 1m unless set), a project per entry, found by
 * open addressing on the zone's FNV-1a hash of its name.  Entries are
 * never freed: a project keeps its entry, and its counts, until the zone
 * is made anew (nginx restarted, or the zone's size changed).
 *
 * The request path takes no lock.  Every count is a 64-bit atomic add
 * (on 32-bit platforms too), in the log phase, of a request the routing
 * zone resolved to a project: the Host header of any other request is
 * never a label.  A project meets its entry by its hash and name; the
 * first request of a project claims an empty entry with a compare-and-
 * swap of the entry's key (0 -> hash and CLAIMED), writes the name, then
 * marks it READY.  A probe passes over the entries of other hashes,
 * whatever their state, without waiting.  One that meets a CLAIMED entry
 * of its own hash waits for it a few hundred pauses; if it stays CLAIMED
 * (its claimer is preempted, or died in those instructions), the request
 * is counted under "_other": a project never gets a second entry, so
 * the page never prints it twice.  When three quarters of the entries
 * are used, further projects are counted together under the project
 * "_other", which no project name can be: the labels stay bounded by the
 * table, whatever the requests.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_shuttle_module.h"


#define NGX_HTTP_SHUTTLE_METRICS_SIZE     (1024 * 1024)

/* the low bits of an entry's key; the hash of its name is above them */
#define NGX_HTTP_SHUTTLE_ENTRY_EMPTY      0
#define NGX_HTTP_SHUTTLE_ENTRY_CLAIMED    1
#define NGX_HTTP_SHUTTLE_ENTRY_READY      2
#define NGX_HTTP_SHUTTLE_ENTRY_STATE      3

/* pauses a worker waits for an entry another worker is naming */
#define NGX_HTTP_SHUTTLE_CLAIM_SPINS      1024

/* the upstream response time's buckets, in ms; the last one is +Inf */
static ngx_msec_t  ngx_http_shuttle_buckets[] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};

#define NGX_HTTP_SHUTTLE_NBUCKETS                                            \
    (sizeof(ngx_http_shuttle_buckets) / sizeof(ngx_msec_t) + 1)


typedef struct {
    uint64_t                  key;         /* hash << 32 | ..._ENTRY_* */
    u_char                    name_len;
    u_char                    name[SHUTTLE_ZONE_NAME_MAX + 1];

    uint64_t                  status[5];   /* 1xx .. 5xx */
    uint64_t                  bucket[NGX_HTTP_SHUTTLE_NBUCKETS];
    uint64_t                  time_ms;     /* the sum of the observations */
} ngx_http_shuttle_entry_t;


/* the requests of an apps server the routing zone resolved to no project */
#define NGX_HTTP_SHUTTLE_UNROUTED  5

static char  *ngx_http_shuttle_unrouted_reason[NGX_HTTP_SHUTTLE_UNROUTED] = {
    "no_zone",          /* NGX_HTTP_SHUTTLE_NO_ZONE */
    "bad_host",         /* NGX_HTTP_SHUTTLE_BAD_HOST */
    "bad_name",         /* NGX_HTTP_SHUTTLE_BAD_NAME */
    "unknown_project",  /* NGX_HTTP_SHUTTLE_UNKNOWN */
    "busy"              /* NGX_HTTP_SHUTTLE_BUSY */
};


/* what "shuttle_deploy" locations answered, by the module's reasons */
#define NGX_HTTP_SHUTTLE_DEPLOY_REFUSED  3

static char  *ngx_http_shuttle_refused_reason[NGX_HTTP_SHUTTLE_DEPLOY_REFUSED]
    = { "unauthorized", "too_large", "no_space" };


typedef struct {
    ngx_uint_t                nentries;    /* of the table, "_other" not */
    ngx_uint_t                limit;       /* entries claimed at most */
    ngx_atomic_t              used;

    uint64_t                  unrouted[NGX_HTTP_SHUTTLE_UNROUTED];
    uint64_t                  deploys[5];  /* by status class */
    uint64_t                  refused[NGX_HTTP_SHUTTLE_DEPLOY_REFUSED];

    ngx_http_shuttle_entry_t  other;
    ngx_http_shuttle_entry_t  entry[1];
} ngx_http_shuttle_metrics_t;


static ngx_int_t ngx_http_shuttle_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_shuttle_entry_t *ngx_http_shuttle_metrics_entry(
    ngx_http_shuttle_metrics_t *m, uint32_t hash, ngx_str_t *name);
static ngx_uint_t ngx_http_shuttle_metrics_status(ngx_http_request_t *r);
static void ngx_http_shuttle_metrics_deploy(ngx_http_request_t *r,
    ngx_http_shuttle_metrics_t *m);
static u_char *ngx_http_shuttle_metrics_families(u_char *p, u_char *last,
    ngx_http_shuttle_metrics_t *m);
static u_char *ngx_http_shuttle_metrics_project(u_char *p, u_char *last,
    ngx_uint_t family, ngx_http_shuttle_entry_t *e);
static void ngx_http_shuttle_metrics_add(uint64_t *counter, uint64_t n);
static uint64_t ngx_http_shuttle_metrics_get(uint64_t *counter);


ngx_int_t
ngx_http_shuttle_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_shuttle_main_conf_t *smcf)
{
    ngx_str_t        name;
    ngx_shm_zone_t  *shm_zone;

    if (smcf->metrics_size == 0) {
        return NGX_OK;                                  /* "off" */
    }

    if (smcf->metrics_size == NGX_CONF_UNSET_SIZE) {
        smcf->metrics_size = NGX_HTTP_SHUTTLE_METRICS_SIZE;
    }

    ngx_str_set(&name, "shuttle_metrics");

    shm_zone = ngx_shared_memory_add(cf, &name, smcf->metrics_size,
                                     &ngx_http_shuttle_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_shuttle_metrics_init_zone;

    smcf->metrics = shm_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_shuttle_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                       size;
    ngx_uint_t                   n;
    ngx_slab_pool_t             *shpool;
    ngx_http_shuttle_metrics_t  *m;

    /* a reload with the same size: the counts go on */

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    /*
     * As many entries as the pages left after the slab pool's own
     * bookkeeping hold: ask for seven eighths of the zone, less by an
     * eighth at a time until the pool gives it.
     */

    size = shm_zone->shm.size / 8 * 7;

    for ( ;; ) {
        if (size < sizeof(ngx_http_shuttle_metrics_t)) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "\"shuttle_metrics_zone\" of %uz bytes is too "
                          "small for one project", shm_zone->shm.size);
            return NGX_ERROR;
        }

        m = ngx_slab_calloc(shpool, size);
        if (m != NULL) {
            break;
        }

        size -= size / 8;
    }

    n = (size - sizeof(ngx_http_shuttle_metrics_t))
        / sizeof(ngx_http_shuttle_entry_t) + 1;

    m->nentries = n;
    m->limit = n - n / 4;

    ngx_memcpy(m->other.name, "_other", sizeof("_other") - 1);
    m->other.name_len = sizeof("_other") - 1;
    m->other.key = NGX_HTTP_SHUTTLE_ENTRY_READY;

    shpool->data = m;
    shm_zone->data = m;

    ngx_log_error(NGX_LOG_INFO, shm_zone->shm.log, 0,
                  "shuttle metrics: %uz bytes count %ui projects",
                  shm_zone->shm.size, m->limit);

    return NGX_OK;
}


/*
 * The log phase: one request counted, atomically, into its project's
 * entry (or the unrouted, or the deploy counters).
 */

ngx_int_t
ngx_http_shuttle_metrics_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                     i, cls, tries;
    ngx_msec_t                     ms;
    ngx_http_shuttle_ctx_t        *ctx;
    ngx_http_shuttle_entry_t      *e;
    ngx_http_upstream_state_t     *state;
    ngx_http_shuttle_metrics_t    *m;
    ngx_http_shuttle_srv_conf_t   *sscf;
    ngx_http_shuttle_loc_conf_t   *slcf;
    ngx_http_shuttle_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_shuttle_module);
    m = smcf->metrics->data;

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_shuttle_module);

    if (sscf->domain.len == 0) {
        slcf = ngx_http_get_module_loc_conf(r, ngx_http_shuttle_module);

        if (slcf->deploy) {
            ngx_http_shuttle_metrics_deploy(r, m);
        }

        return NGX_OK;
    }

    /* resolved already, unless an internal redirect dropped the ctx */

    ctx = ngx_http_shuttle_resolve(r);
    if (ctx == NULL) {
        return NGX_OK;
    }

    if (ctx->result != NGX_HTTP_SHUTTLE_FOUND) {
        if (ctx->result < NGX_HTTP_SHUTTLE_UNROUTED) {
            ngx_http_shuttle_metrics_add(&m->unrouted[ctx->result], 1);
        }

        return NGX_OK;
    }

    e = ngx_http_shuttle_metrics_entry(m, ctx->slot.hash, &ctx->project);

    cls = ngx_http_shuttle_metrics_status(r) / 100;

    if (cls >= 1 && cls <= 5) {
        ngx_http_shuttle_metrics_add(&e->status[cls - 1], 1);
    }

    if (r->upstream_states == NULL || r->upstream_states->nelts == 0) {
        return NGX_OK;
    }

    /*
     * The time spent in the project's loaders, every try of the request
     * (a try cut short before its end has no time: -1, as in
     * $upstream_response_time's "-").
     */

    ms = 0;
    tries = 0;
    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {
        if (state[i].peer != NULL
            && state[i].response_time != (ngx_msec_t) -1)
        {
            ms += state[i].response_time;
            tries++;
        }
    }

    if (tries == 0) {
        return NGX_OK;
    }

    for (i = 0; i < NGX_HTTP_SHUTTLE_NBUCKETS - 1; i++) {
        if (ms <= ngx_http_shuttle_buckets[i]) {
            break;
        }
    }

    ngx_http_shuttle_metrics_add(&e->bucket[i], 1);
    ngx_http_shuttle_metrics_add(&e->time_ms, ms);

    return NGX_OK;
}


/* the status the access log shows: an error's, else the answer's */

static ngx_uint_t
ngx_http_shuttle_metrics_status(ngx_http_request_t *r)
{
    return r->err_status ? r->err_status : r->headers_out.status;
}


static void
ngx_http_shuttle_metrics_deploy(ngx_http_request_t *r,
    ngx_http_shuttle_metrics_t *m)
{
    ngx_uint_t  cls, reason;

    cls = ngx_http_shuttle_metrics_status(r) / 100;

    if (cls >= 1 && cls <= 5) {
        ngx_http_shuttle_metrics_add(&m->deploys[cls - 1], 1);
    }

    switch (ngx_http_shuttle_metrics_status(r)) {

    case NGX_HTTP_UNAUTHORIZED:
        reason = 0;
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        reason = 1;
        break;

    case NGX_HTTP_INSUFFICIENT_STORAGE:
        reason = 2;
        break;

    default:
        return;
    }

    ngx_http_shuttle_metrics_add(&m->refused[reason], 1);
}


/* the project's entry, claimed on its first request; never NULL */

static ngx_http_shuttle_entry_t *
ngx_http_shuttle_metrics_entry(ngx_http_shuttle_metrics_t *m, uint32_t hash,
    ngx_str_t *name)
{
    uint64_t                   key, claimed, ready;
    ngx_uint_t                 i, n, spins;
    ngx_http_shuttle_entry_t  *e;

    claimed = (uint64_t) hash << 32 | NGX_HTTP_SHUTTLE_ENTRY_CLAIMED;
    ready = (uint64_t) hash << 32 | NGX_HTTP_SHUTTLE_ENTRY_READY;

    i = hash % m->nentries;

    for (n = 0; n < m->nentries; n++, i = (i + 1) % m->nentries) {
        e = &m->entry[i];

        key = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);

        if (key == NGX_HTTP_SHUTTLE_ENTRY_EMPTY) {

            if (m->used >= m->limit) {
                return &m->other;
            }

            if (__atomic_compare_exchange_n(&e->key, &key, claimed, 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
            {
                (void) ngx_atomic_fetch_add(&m->used, 1);

                e->name_len = (u_char) name->len;
                ngx_memcpy(e->name, name->data, name->len);

                __atomic_store_n(&e->key, ready, __ATOMIC_RELEASE);

                return e;
            }

            /* another worker claimed it first: "key" is its key now */
        }

        if (key >> 32 != hash) {
            continue;
        }

        for (spins = 0;
             key == claimed && spins < NGX_HTTP_SHUTTLE_CLAIM_SPINS;
             spins++)
        {
            ngx_cpu_pause();
            key = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);
        }

        if (key == claimed) {
            /* not named yet: the project may be the one it is for */
            return &m->other;
        }

        if (e->name_len == name->len
            && ngx_memcmp(e->name, name->data, name->len) == 0)
        {
            return e;
        }
    }

    return &m->other;
}


static void
ngx_http_shuttle_metrics_add(uint64_t *counter, uint64_t n)
{
    (void) __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}


static uint64_t
ngx_http_shuttle_metrics_get(uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}


/* "shuttle_metrics_zone SIZE | off" */

char *
ngx_http_shuttle_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_main_conf_t  *smcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (smcf->metrics_size != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        smcf->metrics_size = 0;
        return NGX_CONF_OK;
    }

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shuttle_metrics_zone\" takes a size of at "
                           "least %uzk, or \"off\", not \"%V\"",
                           8 * ngx_pagesize / 1024, &value[1]);
        return NGX_CONF_ERROR;
    }

    smcf->metrics_size = size;

    return NGX_CONF_OK;
}


/* "shuttle_metrics": the location's content handler */

char *
ngx_http_shuttle_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_shuttle_loc_conf_t  *slcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate, or the location has a handler already";
    }

    clcf->handler = ngx_http_shuttle_metrics_handler;
    slcf->metrics = 1;

    return NGX_CONF_OK;
}


/* the families, each line's longest form (the numbers are 20 digits) */

#define NGX_HTTP_SHUTTLE_LINE_MAX                                            \
    (sizeof("shuttle_upstream_response_seconds_bucket{project=\"\","         \
            "le=\"+Inf\"} \n") - 1 + SHUTTLE_ZONE_NAME_MAX + NGX_INT64_LEN   \
     + 8)

/* a project's lines, at most */
#define NGX_HTTP_SHUTTLE_PROJECT_MAX                                         \
    ((5 + NGX_HTTP_SHUTTLE_NBUCKETS + 2) * NGX_HTTP_SHUTTLE_LINE_MAX)

#define NGX_HTTP_SHUTTLE_FAMILY_REQUESTS   0
#define NGX_HTTP_SHUTTLE_FAMILY_TIME       1


ngx_int_t
ngx_http_shuttle_metrics_handler(ngx_http_request_t *r)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     i, lines;
    ngx_chain_t                    out;
    ngx_http_shuttle_metrics_t    *m;
    ngx_http_shuttle_main_conf_t  *smcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_shuttle_module);
    m = smcf->metrics ? smcf->metrics->data : NULL;

    /* the projects' lines, and the rest's (help texts, globals): 8k */

    lines = 0;

    if (m != NULL) {
        for (i = 0; i < m->nentries; i++) {
            if ((ngx_http_shuttle_metrics_get(&m->entry[i].key)
                 & NGX_HTTP_SHUTTLE_ENTRY_STATE)
                == NGX_HTTP_SHUTTLE_ENTRY_READY)
            {
                lines++;
            }
        }

        /* "_other", and room for projects counted while printing */
        lines = (lines + 1 + 64) * (5 + NGX_HTTP_SHUTTLE_NBUCKETS + 2);
    }

    size = lines * NGX_HTTP_SHUTTLE_LINE_MAX + 8192;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_http_shuttle_metrics_families(b->last, b->end, m);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (b->last == b->pos) {
        b->sync = 1;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static u_char *
ngx_http_shuttle_metrics_families(u_char *p, u_char *last,
    ngx_http_shuttle_metrics_t *m)
{
    ngx_uint_t                     i, family;
    ngx_http_shuttle_entry_t      *e;

    static char  *help[] = {
        "# HELP shuttle_http_requests_total Requests nginx answered for "
        "a project, by status class.\n"
        "# TYPE shuttle_http_requests_total counter\n",

        "# HELP shuttle_upstream_response_seconds Time a project's loaders "
        "took to answer nginx, every try of a request together "
        "(millisecond resolution).\n"
        "# TYPE shuttle_upstream_response_seconds histogram\n"
    };

    if (m == NULL) {
        return ngx_slprintf(p, last,
                            "# shuttle_metrics_zone is off, or no server "
                            "has shuttle_apps: no counts\n");
    }

    for (family = 0; family < 2; family++) {

        p = ngx_slprintf(p, last, "%s", help[family]);

        for (i = 0; i < m->nentries; i++) {
            e = &m->entry[i];

            if ((__atomic_load_n(&e->key, __ATOMIC_ACQUIRE)
                 & NGX_HTTP_SHUTTLE_ENTRY_STATE)
                != NGX_HTTP_SHUTTLE_ENTRY_READY)
            {
                continue;
            }

            /* more new projects than the room kept for them: next time */

            if ((size_t) (last - p) < NGX_HTTP_SHUTTLE_PROJECT_MAX + 4096) {
                break;
            }

            p = ngx_http_shuttle_metrics_project(p, last, family, e);
        }

        p = ngx_http_shuttle_metrics_project(p, last, family, &m->other);
    }

    p = ngx_slprintf(p, last,
                     "# HELP shuttle_http_unrouted_requests_total Requests "
                     "to an apps server that named no project nginx "
                     "routes, by reason.\n"
                     "# TYPE shuttle_http_unrouted_requests_total counter\n");

    for (i = 0; i < NGX_HTTP_SHUTTLE_UNROUTED; i++) {
        p = ngx_slprintf(p, last,
                         "shuttle_http_unrouted_requests_total"
                         "{reason=\"%s\"} %uL\n",
                         ngx_http_shuttle_unrouted_reason[i],
                         ngx_http_shuttle_metrics_get(&m->unrouted[i]));
    }

    p = ngx_slprintf(p, last,
                     "# HELP shuttle_deploy_requests_total Uploads to "
                     "shuttle_deploy locations, by the answer's status "
                     "class.\n"
                     "# TYPE shuttle_deploy_requests_total counter\n");

    for (i = 0; i < 5; i++) {
        p = ngx_slprintf(p, last,
                         "shuttle_deploy_requests_total{class=\"%uixx\"} "
                         "%uL\n", i + 1,
                         ngx_http_shuttle_metrics_get(&m->deploys[i]));
    }

    p = ngx_slprintf(p, last,
                     "# HELP shuttle_deploy_refused_total Uploads nginx "
                     "refused before the builder saw them, by reason.\n"
                     "# TYPE shuttle_deploy_refused_total counter\n");

    for (i = 0; i < NGX_HTTP_SHUTTLE_DEPLOY_REFUSED; i++) {
        p = ngx_slprintf(p, last,
                         "shuttle_deploy_refused_total{reason=\"%s\"} %uL\n",
                         ngx_http_shuttle_refused_reason[i],
                         ngx_http_shuttle_metrics_get(&m->refused[i]));
    }

    p = ngx_slprintf(p, last,
                     "# HELP shuttle_metrics_projects Projects with counts "
                     "of their own; past the limit, they count as "
                     "\"_other\".\n"
                     "# TYPE shuttle_metrics_projects gauge\n"
                     "shuttle_metrics_projects %uA\n"
                     "# HELP shuttle_metrics_projects_limit Projects the "
                     "shuttle_metrics_zone holds.\n"
                     "# TYPE shuttle_metrics_projects_limit gauge\n"
                     "shuttle_metrics_projects_limit %ui\n",
                     m->used, m->limit);

    return p;
}


static u_char *
ngx_http_shuttle_metrics_project(u_char *p, u_char *last, ngx_uint_t family,
    ngx_http_shuttle_entry_t *e)
{
    uint64_t     n, count, bucket[NGX_HTTP_SHUTTLE_NBUCKETS];
    ngx_str_t    name;
    ngx_uint_t   i;

    name.len = e->name_len;
    name.data = e->name;

    if (family == NGX_HTTP_SHUTTLE_FAMILY_REQUESTS) {
        for (i = 0; i < 5; i++) {
            p = ngx_slprintf(p, last,
                             "shuttle_http_requests_total{project=\"%V\","
                             "class=\"%uixx\"} %uL\n",
                             &name, i + 1,
                             ngx_http_shuttle_metrics_get(&e->status[i]));
        }

        return p;
    }

    /* one copy of the buckets: "+Inf" and "_count" are the same number */

    for (i = 0; i < NGX_HTTP_SHUTTLE_NBUCKETS; i++) {
        bucket[i] = ngx_http_shuttle_metrics_get(&e->bucket[i]);
    }

    count = 0;

    for (i = 0; i < NGX_HTTP_SHUTTLE_NBUCKETS - 1; i++) {
        count += bucket[i];
        n = ngx_http_shuttle_buckets[i];

        p = ngx_slprintf(p, last,
                         "shuttle_upstream_response_seconds_bucket"
                         "{project=\"%V\",le=\"%uL.%03uL\"} %uL\n",
                         &name, n / 1000, n % 1000, count);
    }

    count += bucket[i];
    n = ngx_http_shuttle_metrics_get(&e->time_ms);

    return ngx_slprintf(p, last,
                        "shuttle_upstream_response_seconds_bucket"
                        "{project=\"%V\",le=\"+Inf\"} %uL\n"
                        "shuttle_upstream_response_seconds_sum"
                        "{project=\"%V\"} %uL.%03uL\n"
                        "shuttle_upstream_response_seconds_count"
                        "{project=\"%V\"} %uL\n",
                        &name, count, &name, n / 1000, n % 1000,
                        &name, count);
}
