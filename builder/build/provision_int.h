
/*
 * Provisioning's own header, for its files only (provision.h is its
 * contract): the functions its files share.
 *
 *   provision.c           the declarations provisioned after a build:
 *                         SQLite, PostgreSQL, static folders
 *   provision_json.c      the loader's --resources-fd JSON, the API's
 *                         description, purges, unpublishing, the helpers
 *   provision_pg.c        the PostgreSQL side: the admin connection, the
 *                         guard, roles, databases, the socket, the DSNs
 */

#ifndef SHUTTLE_BUILDER_PROVISION_INT_H
#define SHUTTLE_BUILDER_PROVISION_INT_H

/* after provision.h: it uses that header's types (and is not included by it,
   so the part and its own header make no include circle) */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "extract.h"
#include "fault.h"
#include "fsafe.h"
#include "log.h"
#include "resources.h"
#include "store.h"


#define PROV_PG_IDENT_MAX   63      /* PostgreSQL's NAMEDATALEN - 1 */
#define PROV_INFO_MAX       2048
#define PROV_PG_TENANTS     "shuttle-tenants"   /* the tenant roles' group:
                                                   no prov_ident() has '-' */


/* the API's view ---------------------------------------------------------- */

typedef struct {
    shuttle_serve_t  *s;
    const char       *project;
    json_t           *list;
    PGconn           *pg;
    char             *err;
    size_t            errlen;
    int               pass;         /* purge: 0 databases, 1 roles */
} prov_walk_t;

/* shared between the files of this part */

int prov_info(json_t *j, char *info, size_t size);
int prov_plain(int fd, const char *name, char *path, size_t len,
    size_t size, char *err, size_t errlen);
int prov_mkdirs(const char *path, char *err, size_t errlen);
void prov_ident(char *buf, const char *prefix, const char *name,
    const char *suffix);
PGconn *prov_pg_admin(shuttle_serve_t *s, const char *what,
    char *err, size_t errlen);
int prov_pg_group(PGconn *pg, const char *what, const char *name,
    const char *qname, char *err, size_t errlen);
int prov_pg_exec(PGconn *pg, const char *what, char *err,
    size_t errlen, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int prov_pg_exists(PGconn *pg, const char *sql, const char *name,
    char *err, size_t errlen);
int prov_pg_value(PGconn *pg, const char *sql, const char *name,
    char *buf, size_t size, char *err, size_t errlen);
char *prov_pg_dsn(shuttle_serve_t *s, const char *db,
    const char *user, const char *password);
const char *prov_pg_where(shuttle_serve_t *s, char *buf,
    size_t size);


#endif /* SHUTTLE_BUILDER_PROVISION_INT_H */
