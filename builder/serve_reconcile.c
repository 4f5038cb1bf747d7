
/*
 * shuttle-builder serve: at startup, what the store, the zone and the
 * running loaders say reconciled (serve_int.h).
 */

#include "serve.h"
#include "serve_int.h"


static int serve_collect(const shuttle_deployment_t *d, void *data);
static int serve_resume(shuttle_serve_t *s, const shuttle_deployment_t *d);
static void serve_orphan(pid_t pid, const char *so, void *data);
static void serve_remains(shuttle_serve_t *s);
static int serve_collect_name(const shuttle_project_t *p, void *data);
static int serve_collect_slot(const shuttle_zone_slot_t *slot, void *data);
static int serve_names_add(serve_names_t *n, const char *name, size_t len);
static int serve_names_has(serve_names_t *n, const char *name);
static void serve_names_free(serve_names_t *n);
static int serve_collect_current(const shuttle_project_t *p, void *data);
static int serve_current_cmp(const void *one, const void *two);


/* each live project's current deployment: one query at start, not one a
   deployment (startup time with thousands of projects) */
typedef struct {
    char                    name[SHUTTLE_NAME_MAX + 1];
    int64_t                 current;
} serve_current_t;


typedef struct {
    serve_current_t        *elts;
    size_t                  nelts;
    size_t                  nalloc;
} serve_currents_t;


/*
 * The store says where every deployment was when the last builder
 * stopped; make it so again:
 *
 *   building                   queued again: built again
 *   built, loading             started again (from the main loop)
 *   running, not current       superseded (a switch cut short)
 *   running, current           its loader adopted in place, on its port
 *                              (none alive: idle again, or a new one
 *                              started from the main loop, on the
 *                              socket the keeper kept)
 *   queued                     queued again, in upload order
 *
 * and the zone is written anew from the store.  Nothing is spawned
 * here: the API opens right after, whatever the number of projects.
 */

int
serve_reconcile(shuttle_serve_t *s, char *err, size_t errlen)
{
    char                   so[SHUTTLE_PATH_MAX], reason[64];
    size_t                 i;
    pid_t                  pid;
    int64_t                superseded, by;
    serve_list_t           list, again;
    serve_names_t          live, zoned;
    serve_current_t        key, *cur;
    serve_currents_t       currents;
    shuttle_store_note_t   note;
    shuttle_deployment_t  *d;
    shuttle_deploy_state_t to;

    memset(&list, 0, sizeof(serve_list_t));
    memset(&again, 0, sizeof(serve_list_t));
    memset(&live, 0, sizeof(serve_names_t));
    memset(&zoned, 0, sizeof(serve_names_t));
    memset(&currents, 0, sizeof(serve_currents_t));

    /* the sockets the keeper kept while no builder ran */

    if (shuttle_supervise_keeper(s->sup, err, errlen) != 0) {
        shuttle_log(SHUTTLE_LOG_ERROR, "%s: the loaders' sockets are not "
                    "kept across a restart", err);
    }

    /* cut short in the middle */

    if (shuttle_store_each_in_state(s->store,
                                    (1u << SHUTTLE_DEPLOY_BUILDING)
                                    | (1u << SHUTTLE_DEPLOY_BUILT)
                                    | (1u << SHUTTLE_DEPLOY_LOADING),
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];

        /* a loader it was starting, if that is still what the pid is */

        if (d->state.tag == SHUTTLE_DEPLOY_LOADING
            && d->state.u.loading.pid > 0
            && shuttle_deploy_path(so, sizeof(so), s->conf.data, d->project,
                                   d->id, "service.so") == 0
            && shuttle_proc_is_loader(d->state.u.loading.pid, so))
        {
            (void) kill(d->state.u.loading.pid, SIGTERM);
        }

        if (serve_resume(s, d) == 1 && serve_collect(d, &again) != 0) {
            snprintf(err, errlen, "%s", strerror(ENOMEM));
            goto failed;
        }
    }

    list.nelts = 0;

    /* running: the current one of each project gets a fresh loader */

    if (shuttle_store_each_in_state(s->store, 1u << SHUTTLE_DEPLOY_RUNNING,
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    if (shuttle_store_each_project(s->store, NULL, serve_collect_current,
                                   &currents, err, errlen)
        != 0)
    {
        goto failed;
    }

    qsort(currents.elts, currents.nelts, sizeof(serve_current_t),
          serve_current_cmp);

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];

        snprintf(key.name, sizeof(key.name), "%s", d->project);
        cur = currents.nelts == 0 ? NULL
              : bsearch(&key, currents.elts, currents.nelts,
                        sizeof(serve_current_t), serve_current_cmp);

        /* an older one still running: a switch cut short by a crash */

        if (cur != NULL && cur->current != 0 && cur->current != d->id) {
            to.tag = SHUTTLE_DEPLOY_SUPERSEDED;
            to.u.superseded.by = cur->current;

            snprintf(reason, sizeof(reason), "superseded by #%lld",
                     (long long) cur->current);

            memset(&note, 0, sizeof(shuttle_store_note_t));
            note.reason = reason;
            note.build_ms = -1;
            note.start_ms = -1;

            if (shuttle_store_transition(s->store, d->id, &to, &note, NULL,
                                         err, errlen)
                != 0)
            {
                shuttle_log(SHUTTLE_LOG_WARN, "%s", err);
            }

            /*
             * Its loader serves until the zone routes to the new one:
             * then, no running deployment's, it is stopped with the
             * orphans below.
             */

            d->id = 0;
            continue;
        }

        pid = d->state.u.running.pid;

        if (pid > 0
            && shuttle_deploy_path(so, sizeof(so), s->conf.data, d->project,
                                   d->id, "service.so") == 0
            && shuttle_proc_is_loader(pid, so))
        {
            /* still serving: the zone keeps its port until the takeover */
            continue;
        }

        /*
         * Nothing serves it: its port stays in the zone if the keeper
         * kept its socket (connections wait in its backlog for the next
         * loader); else the zone says loading until a loader does.
         */

        if (d->state.u.running.port != 0
            && !shuttle_supervise_kept(s->sup, d->state.u.running.port)
            && shuttle_store_set_loader(s->store, d->id, 0, 0, err, errlen)
               != 0)
        {
            goto failed;
        }
    }

    /* the zone: every live project's slot from the store, no other */

    if (shuttle_store_each_project(s->store, NULL, serve_collect_name, &live,
                                   err, errlen)
        != 0)
    {
        goto failed;
    }

    if (shuttle_zone_each(&s->zone, serve_collect_slot, &zoned) < 0) {
        snprintf(err, errlen, "zone %s: %s", s->conf.zone, strerror(ENOMEM));
        goto failed;
    }

    for (i = 0; i < zoned.nelts; i++) {
        if (!serve_names_has(&live, zoned.names[i])
            && shuttle_zone_del(&s->zone, zoned.names[i], err, errlen) != 0)
        {
            goto failed;
        }
    }

    for (i = 0; i < live.nelts; i++) {
        shuttle_serve_zone_sync(s, live.names[i]);
    }

    if (shuttle_zone_rebuild(&s->zone, 0, err, errlen) != 0) {
        goto failed;
    }

    /* queued again, in upload order */

    list.nelts = 0;

    if (shuttle_store_each_in_state(s->store, 1u << SHUTTLE_DEPLOY_QUEUED,
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];

        if (access(d->state.u.queued.upload, R_OK) != 0) {
            (void) shuttle_deploy_fail(s, d->project, d->id,
                                       "upload lost while the builder was "
                                       "down", -1);
            continue;
        }

        if (shuttle_queue_push(s->queue, d->id, d->project, &superseded, &by)
            != 0)
        {
            snprintf(err, errlen, "%s", strerror(ENOMEM));
            goto failed;
        }

        if (superseded != 0) {
            shuttle_deploy_supersede(s, d->project, superseded, by);
        }

        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: queued again",
                    d->project, (long long) d->id);
    }

    /* and the running ones: a fresh loader each */

    free(list.elts);
    memset(&list, 0, sizeof(serve_list_t));

    if (shuttle_store_each_in_state(s->store, 1u << SHUTTLE_DEPLOY_RUNNING,
                                    serve_collect, &list, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];
        pid = d->state.u.running.pid;

        if (pid > 0
            && (shuttle_deploy_path(so, sizeof(so), s->conf.data, d->project,
                                    d->id, "service.so") != 0
                || !shuttle_proc_is_loader(pid, so)))
        {
            d->state.u.running.pid = 0;
        }
    }

    /*
     * Any other loader of ours is an orphan: one a killed builder was
     * starting (a restart's, a rollback's), one of a deployment it was
     * deleting, or one it was replacing (a switch cut short: the zone
     * routes to the new one by now).
     */

    (void) shuttle_proc_each_loader(s->conf.data, serve_orphan, &list);

    for (i = 0; i < list.nelts; i++) {
        d = &list.elts[i];
        shuttle_supervise_takeover(s->sup, d, d->state.u.running.pid);
    }

    shuttle_supervise_kept_done(s->sup);

    /* what was built, or starting, when the builder was killed: again,
       from the main loop */

    for (i = 0; i < again.nelts; i++) {
        d = &again.elts[i];

        if (shuttle_supervise_start_later(s->sup, d->id, d->project,
                                          "builder restarted while it "
                                          "started: starting it again")
            != 0)
        {
            snprintf(err, errlen, "%s", strerror(ENOMEM));
            goto failed;
        }
    }

    serve_remains(s);
    shuttle_deploy_purge_resume(s);

    free(list.elts);
    free(again.elts);
    free(currents.elts);
    serve_names_free(&live);
    serve_names_free(&zoned);

    return 0;

failed:

    free(list.elts);
    free(again.elts);
    free(currents.elts);
    serve_names_free(&live);
    serve_names_free(&zoned);

    return -1;
}


/*
 * A deployment the builder was building, or starting, when it was
 * killed: its source tree goes, and
 *
 *   building, its upload kept       queued again (0)
 *   built or loading, service.so    started again (1: the caller does,
 *                                   once the running ones are taken over)
 *   anything missing                failed, saying which (-1)
 */

static int
serve_resume(shuttle_serve_t *s, const shuttle_deployment_t *d)
{
    char                    err[256], path[SHUTTLE_PATH_MAX];
    const char             *file, *why;
    shuttle_store_note_t    note;
    shuttle_deploy_state_t  to;

    if (shuttle_deploy_path(path, sizeof(path), s->conf.data, d->project,
                            d->id, "src") == 0)
    {
        (void) shuttle_rmtree(s->conf.data, path);
    }

    file = d->state.tag == SHUTTLE_DEPLOY_BUILDING ? "upload.tar.gz"
                                                   : "service.so";

    if (shuttle_deploy_path(path, sizeof(path), s->conf.data, d->project,
                            d->id, file) != 0
        || access(path, R_OK) != 0)
    {
        why = d->state.tag == SHUTTLE_DEPLOY_BUILDING
              ? "builder restarted during the build; its upload is gone"
              : "builder restarted while it started; its service.so is gone";
        (void) shuttle_deploy_fail(s, d->project, d->id, why, -1);
        shuttle_deploy_clean(s, d->project, d->id);
        return -1;
    }

    if (d->state.tag != SHUTTLE_DEPLOY_BUILDING) {
        shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: %s when the builder "
                    "stopped: starting it again", d->project,
                    (long long) d->id, shuttle_deploy_name(d->state.tag));
        return 1;
    }

    memset(&note, 0, sizeof(shuttle_store_note_t));
    note.reason = "builder restarted during the build: built again";
    note.build_ms = -1;
    note.start_ms = -1;

    to.tag = SHUTTLE_DEPLOY_QUEUED;

    if (shuttle_store_transition(s->store, d->id, &to, &note, NULL, err,
                                 sizeof(err))
        != 0)
    {
        shuttle_log(SHUTTLE_LOG_WARN, "deploy %s #%lld: %s", d->project,
                    (long long) d->id, err);
        (void) shuttle_deploy_fail(s, d->project, d->id, err, -1);
        shuttle_deploy_clean(s, d->project, d->id);
        return -1;
    }

    return 0;
}


/* a loader no running deployment has: stopped */

static void
serve_orphan(pid_t pid, const char *so, void *data)
{
    char           shown[1024];
    size_t         i;
    serve_list_t  *list;

    list = data;

    for (i = 0; i < list->nelts; i++) {
        if (list->elts[i].state.u.running.pid == pid) {
            return;
        }
    }

    /* its command line is the tenant's to rewrite */
    shuttle_log_escape(shown, sizeof(shown), so, strlen(so));

    shuttle_log(SHUTTLE_LOG_WARN, "an orphan loader, pid %d of %s: no "
                "running deployment has it: SIGTERM", (int) pid, shown);

    (void) kill(pid, SIGTERM);
}


/*
 * What a killed builder was deleting: the directories of deployments the
 * store has as deleted.
 */

static void
serve_remains(shuttle_serve_t *s)
{
    int                   rc;
    char                  path[SHUTTLE_PATH_MAX];
    char                 *end;
    DIR                  *projects, *deployments;
    int64_t               id;
    struct dirent        *p, *e;
    shuttle_deploy_tag_t  tag;

    snprintf(path, sizeof(path), "%s/projects", s->conf.data);

    projects = opendir(path);
    if (projects == NULL) {
        return;
    }

    while ((p = readdir(projects)) != NULL) {
        if (!shuttle_valid_name(p->d_name, strlen(p->d_name))
            || snprintf(path, sizeof(path), "%s/projects/%s/deployments",
                        s->conf.data, p->d_name) >= (int) sizeof(path))
        {
            continue;
        }

        deployments = opendir(path);
        if (deployments == NULL) {
            continue;
        }

        while ((e = readdir(deployments)) != NULL) {
            id = strtoll(e->d_name, &end, 10);

            if (id <= 0 || *end != '\0') {
                continue;
            }

            rc = shuttle_store_state(s->store, id, &tag);

            /* one the store does not know (a restored backup's) stays */
            if (rc == 0 && tag == SHUTTLE_DEPLOY_DELETED) {
                snprintf(path, sizeof(path), "%s/projects/%s/deployments/%s",
                         s->conf.data, p->d_name, e->d_name);
                shuttle_log(SHUTTLE_LOG_INFO, "deploy %s #%lld: deleted: "
                            "removing %s", p->d_name, (long long) id, path);
                (void) shuttle_rmtree(s->conf.data, path);
            }
        }

        closedir(deployments);
    }

    closedir(projects);
}


static int
serve_collect(const shuttle_deployment_t *d, void *data)
{
    size_t                 n;
    serve_list_t          *list;
    shuttle_deployment_t  *elts;

    list = data;

    if (list->nelts == list->nalloc) {
        n = list->nalloc ? list->nalloc * 2 : 8;
        elts = realloc(list->elts, n * sizeof(shuttle_deployment_t));

        if (elts == NULL) {
            return -1;
        }

        list->elts = elts;
        list->nalloc = n;
    }

    list->elts[list->nelts++] = *d;

    return 0;
}


static int
serve_collect_name(const shuttle_project_t *p, void *data)
{
    return serve_names_add(data, p->name, strlen(p->name));
}


static int
serve_collect_slot(const shuttle_zone_slot_t *slot, void *data)
{
    if (slot->name_len > SHUTTLE_ZONE_NAME_MAX) {
        return 0;
    }

    return serve_names_add(data, slot->name, slot->name_len);
}


static int
serve_names_add(serve_names_t *n, const char *name, size_t len)
{
    char    **names, *copy;
    size_t    size;

    if (n->nelts == n->nalloc) {
        size = n->nalloc ? n->nalloc * 2 : 16;
        names = realloc(n->names, size * sizeof(char *));

        if (names == NULL) {
            return -1;
        }

        n->names = names;
        n->nalloc = size;
    }

    copy = strndup(name, len);
    if (copy == NULL) {
        return -1;
    }

    n->names[n->nelts++] = copy;

    return 0;
}


static int
serve_names_has(serve_names_t *n, const char *name)
{
    size_t  i;

    for (i = 0; i < n->nelts; i++) {
        if (strcmp(n->names[i], name) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
serve_names_free(serve_names_t *n)
{
    size_t  i;

    for (i = 0; i < n->nelts; i++) {
        free(n->names[i]);
    }

    free(n->names);
}


static int
serve_collect_current(const shuttle_project_t *p, void *data)
{
    size_t             n;
    serve_current_t   *elts;
    serve_currents_t  *c;

    c = data;

    if (c->nelts == c->nalloc) {
        n = c->nalloc ? c->nalloc * 2 : 64;
        elts = realloc(c->elts, n * sizeof(serve_current_t));

        if (elts == NULL) {
            return -1;
        }

        c->elts = elts;
        c->nalloc = n;
    }

    snprintf(c->elts[c->nelts].name, sizeof(c->elts[c->nelts].name), "%s",
             p->name);
    c->elts[c->nelts++].current = p->current;

    return 0;
}


static int
serve_current_cmp(const void *one, const void *two)
{
    return strcmp(((const serve_current_t *) one)->name,
                  ((const serve_current_t *) two)->name);
}
