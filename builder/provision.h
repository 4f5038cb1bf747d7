
/*
 * Provisioning the resources a service declares (docs/resources.md):
 * after its build, in the build worker, each declared resource is made
 * to exist (idempotently) and recorded in the store; when a loader
 * starts, the JSON it reads on --resources-fd is made from the store.
 */


#ifndef SHUTTLE_BUILDER_PROVISION_H
#define SHUTTLE_BUILDER_PROVISION_H


#include <jansson.h>
#include <stdint.h>

#include "serve.h"


/*
 * Reads the declarations of the built so and provisions them for
 * deployment id of project: SQLite directories, the PostgreSQL role and
 * databases, the static folder published from src (the extracted
 * project, still there).  Lines go to the build log.  0, or -1 with err
 * naming the declaration and the cause.
 */
int shuttle_provision(shuttle_serve_t *s, const char *project, int64_t id,
    const char *so, const char *src, char *err, size_t errlen);

/*
 * The loader's --resources-fd JSON for deployment id (its service.so at
 * so): a malloc'd string, or NULL in *json when it declares nothing.
 * 0, or -1 with err.
 */
int shuttle_provision_json(shuttle_serve_t *s, const char *project,
    int64_t id, const char *so, char **json, char *err, size_t errlen);

/* the project's resources for the API: [{"type": ...}, ...], no secret */
json_t *shuttle_provision_describe(shuttle_serve_t *s, const char *project);

/* drops the project's databases, files, secrets and uid, owner's; 0, or
 * -1 with err (nothing dropped when the data kept under the name is
 * another key's) */
int shuttle_provision_purge(shuttle_serve_t *s, const char *project,
    const char *owner, char *err, size_t errlen);

/* removes the published static folders of project (all deployments) */
void shuttle_provision_unpublish(shuttle_serve_t *s, const char *project);

/* the directory of the PostgreSQL server's unix socket that services
 * connect through (--postgres-socket, or the admin DSN's host when it is
 * one): buf, or NULL when there is none */
const char *shuttle_provision_pg_socket(shuttle_serve_t *s, char *buf,
    size_t size);

/* logs, at start, how services will reach PostgreSQL, or that they
 * cannot */
void shuttle_provision_announce(shuttle_serve_t *s);


#endif /* SHUTTLE_BUILDER_PROVISION_H */
