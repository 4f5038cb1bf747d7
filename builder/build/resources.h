
/*
 * The resources a service declares (SHUTTLE_SQLITE, SHUTTLE_POSTGRES,
 * SHUTTLE_SECRETS, SHUTTLE_STATIC in shuttle.h), read from the
 * "shuttle_res" section of its service.so with libelf: from the file,
 * never by loading or running it.  Used by the builder after a build and
 * by "shuttle run".  docs/resources.md is the contract.
 */


#ifndef SHUTTLE_BUILDER_RESOURCES_H
#define SHUTTLE_BUILDER_RESOURCES_H


#include <stddef.h>

#include <shuttle_res.h>


typedef enum {
    SHUTTLE_RES_KIND_SQLITE = SHUTTLE_RES_SQLITE,
    SHUTTLE_RES_KIND_POSTGRES = SHUTTLE_RES_POSTGRES,
    SHUTTLE_RES_KIND_SECRETS = SHUTTLE_RES_SECRETS,
    SHUTTLE_RES_KIND_STATIC = SHUTTLE_RES_STATIC
} shuttle_res_kind_t;


typedef struct {
    shuttle_res_kind_t  kind;
    char                name[SHUTTLE_RES_NAME_MAX];
} shuttle_res_t;


#define SHUTTLE_RES_DB_NAME_MAX  32
#define SHUTTLE_RES_MAX          256     /* declarations in one service */


/*
 * Reads and checks every declaration in so_path.  Returns 0 with a
 * malloc'd array in *res (NULL when *n is 0: a service without the
 * section declares nothing), duplicates merged, in declaration order; or
 * -1 with err naming the file and the declaration, e.g.
 *
 *     service.so: SHUTTLE_SQLITE("Main DB"): a database name is
 *     [a-z][a-z0-9_]{0,31}
 */
int shuttle_resources_read(const char *so_path, shuttle_res_t **res,
    size_t *n, char *err, size_t errlen);

/* "sqlite", "postgres", "secrets", "static" */
const char *shuttle_res_kind_name(shuttle_res_kind_t kind);

/* "SHUTTLE_SQLITE" ... */
const char *shuttle_res_kind_macro(shuttle_res_kind_t kind);


#endif /* SHUTTLE_BUILDER_RESOURCES_H */
