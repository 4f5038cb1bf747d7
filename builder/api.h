
/*
 * The builder's HTTP API on its unix socket (libmicrohttpd, a thread per
 * connection).  Every answer but a log is JSON, errors {"error": "..."}.
 *
 * Every request that speaks for a key carries the key itself,
 * "Authorization: Bearer SECRET", as the client sent it to nginx: the
 * builder finds the key's name from it in the --api-keys file (nginx's
 * shuttle_api_keys), 401 without a valid one.  A name the request gives
 * (X-Shuttle-Key, key=) is taken from a root peer alone, the operator's
 * tools: nginx's workers' uid speaks for no key by itself.
 *
 * From nginx's shuttle_deploy, the hand-off of an upload it wrote into
 * the spool directory, with the uploader's bearer key:
 *
 *   POST /deploy?project=NAME&file=SPOOLFILE      (&key=KEY from root)
 *       202 {"id": ID, "project": NAME, "state": "queued"}
 *       401 no valid key; 400 bad project, key or file name; 403 the
 *       project is another key's, another key's data is kept under the
 *       name, or the key has --key-projects live projects already (the
 *       body says which).  The
 *       spool file is renamed into the deployment, or removed when the
 *       upload is refused; a refused upload creates nothing.
 *
 * Whatever comes in on this socket speaks for a key: only root, nginx's
 * workers (--nginx-user) and the builder's own uid may connect and be
 * answered (SO_PEERCRED); any other uid gets 403 naming it, and a
 * warning in the builder's log.
 *
 * The metrics, without a key (nginx lets its own host only scrape them):
 *
 *   GET /metrics
 *       200, text/plain; version=0.0.4: Prometheus text (metrics.h)
 *
 * The management API, proxied by nginx after shuttle_auth (the client's
 * Authorization header passed on); a key sees its own projects only (404
 * for the others').  api.c's route table holds every route
 * ("shuttle-builder routes" prints it):
 *
 *   GET    /v1/projects                     {"projects": [PROJECT...]}
 *   GET    /v1/projects/NAME                PROJECT
 *   DELETE /v1/projects/NAME                {"project": NAME,
 *                                            "deleted": true,
 *                                            "purged": BOOL}; ?purge=1
 *                                           drops its databases, secrets
 *                                           and uid too, and also works
 *                                           on a name deleted before
 *                                           whose kept data is the key's
 *   GET    /v1/projects/NAME/deployments    {"project": NAME,
 *                                            "deployments": [DEPLOYMENT...]}
 *                                           newest first, ?limit=N (100)
 *   POST   /v1/projects/NAME/rollback       body {} or {"deployment": ID}:
 *                                           a superseded deployment (the
 *                                           one replaced last) serves
 *                                           again, no build; answers once
 *                                           it does: {"id", "project",
 *                                           "state": "running"}; 409 when
 *                                           there is none, or a deploy is
 *                                           under way
 *   GET    /v1/deployments/ID               DEPLOYMENT, with transitions
 *   GET    /v1/deployments/ID/logs          the build log, text/plain;
 *                                           ?follow=1 streams it as it
 *                                           grows until the deployment
 *                                           settles; ?runtime=1: its
 *                                           runtime log (the loader's
 *                                           output), followed while the
 *                                           deployment is on its way to
 *                                           running or runs
 *
 *   PROJECT     {name, owner, state (its zone state: queued building
 *               loading running failed stopped), url (with --apps-url),
 *               current (the running deployment's id or null), latest
 *               (DEPLOYMENT or null), created, updated}
 *   DEPLOYMENT  {id, project, state, reason, created, updated, build_ms,
 *               start_ms, port, superseded_by,
 *               transitions: [{state, at, reason}]}
 *
 * Times are ISO 8601 UTC strings with milliseconds; unknown values null.
 */


#ifndef SHUTTLE_BUILDER_API_H
#define SHUTTLE_BUILDER_API_H


#include <stddef.h>

#include "serve.h"


#define SHUTTLE_API_LIST_LIMIT  100
#define SHUTTLE_API_LIST_MAX    1000


/* serves on fd, a listening unix socket */
shuttle_api_t *shuttle_api_start(shuttle_serve_t *s, int fd, char *err,
    size_t errlen);

/* closes the socket and waits for the connections to end */
void shuttle_api_stop(shuttle_api_t *api);

/* shuttle-builder routes: prints the API's routes, "METHOD PATH" a line */
int shuttle_api_routes_main(int argc, char **argv);

/*
 * The hand-off's arguments (POST /deploy?project=&key=&file=): a key's
 * name, [A-Za-z0-9_.-]{1,64}; a file of the spool, a name (1-255 bytes,
 * no '/', not starting with '.'), never a path.  The project is a DNS
 * label (shuttle_valid_name()).
 */
int shuttle_api_valid_key(const char *key);
int shuttle_api_valid_spool_name(const char *name);


#endif /* SHUTTLE_BUILDER_API_H */
