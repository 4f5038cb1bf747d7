
/*
 * The store's own header, for its files only (store.h is its contract):
 * the handle, the SQL shared between the files, and the statement
 * helpers of sql.c every file of the store runs its queries with.
 *
 *   db.c            the database: open, close, verify, the schema and its
 *                   migrations, the names of the projects it holds
 *   deployments.c   a deployment's way: enqueue, claim, transitions, the
 *                   loader, limits, reasons, idleness
 *   projects.c      projects and the reads: delete, project, deployment,
 *                   state, census, the iterators
 *   sql.c           errors, statements, transactions, binding and reading
 *                   rows, the transition record
 *   resources.c     resources, secrets, kept owners, purge, tenant uids
 */

#ifndef SHUTTLE_BUILDER_STORE_INT_H
#define SHUTTLE_BUILDER_STORE_INT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"


/* what shuttle_store_verify() says is wrong with a file */
#define STORE_CAUSE_LEN     400

/* the WAL's space, reserved at open: about its size between checkpoints */
#define STORE_WAL_RESERVE   (4 * 1024 * 1024)


struct shuttle_store_s {
    sqlite3          *db;
    char             *path;
    char             *data;         /* the data directory, for paths */
    pthread_mutex_t   lock;
};


/* names, sorted as SQLite's ORDER BY sorts them (memcmp) */
typedef struct {
    char                  **names;
    size_t                  n;
    size_t                  size;
    unsigned                nomem:1;
} store_names_t;


/* a value bound to a statement's ?N */
typedef struct {
    const char             *text;       /* with is_text; NULL binds NULL */
    int64_t                 n;
    unsigned                is_text:1;
} store_arg_t;


/*
 * Whether the live project row p holds its name against other keys, and
 * counts toward its key's --key-projects: it has run once, or has a
 * deployment on its way.  A project whose deployments all failed before
 * one ran holds nothing: another key may take the name (the row is
 * marked deleted then; its deployments and their build logs stay
 * readable by id to their key, as a deleted project's are).  While the
 * CLI follows a first build, the deployment is on its way: the name
 * cannot change hands under it.
 */
#define STORE_HOLDS                                                           \
    "(p.current IS NOT NULL OR EXISTS (SELECT 1 FROM deployments d "        \
    "WHERE d.project = p.id AND (d.running_since IS NOT NULL "              \
    "OR d.state IN ('queued', 'building', 'built', 'loading', "             \
    "'running'))))"

/*
 * The key whose data under the name ?1 is kept: resources, secrets, or a
 * uid recorded for a project of the name that ran (a uid allocated for
 * builds that all failed holds nothing).
 */
#define STORE_KEPT_OWNER                                                      \
    "SELECT owner FROM resources WHERE project = ?1 "                       \
    "UNION ALL SELECT owner FROM secrets WHERE project = ?1 "               \
    "UNION ALL SELECT u.owner FROM uids u WHERE u.project = ?1 "            \
    "AND EXISTS (SELECT 1 FROM projects p JOIN deployments d "              \
    "ON d.project = p.id WHERE p.name = u.project AND p.owner = u.owner "   \
    "AND d.running_since IS NOT NULL) "


#define STORE_DEPLOYMENT_COLUMNS                                              \
    "SELECT d.id, d.project, p.name, p.owner, d.state, d.reason, "          \
    "d.created, d.updated, d.upload, d.build_started, d.so, d.port, "       \
    "d.pid, d.running_since, d.superseded_by, d.log, d.build_ms, "          \
    "d.start_ms, d.idle_since "                                             \
    "FROM deployments d JOIN projects p ON p.id = d.project "

#define STORE_PROJECT_COLUMNS                                                 \
    "SELECT p.id, p.name, p.owner, p.created, p.current, "                  \
    "(SELECT max(id) FROM deployments WHERE project = p.id), "              \
    "(SELECT max(updated) FROM deployments WHERE project = p.id), "         \
    "p.idle_ms FROM projects p "


/* the rows are copied out first: the handler may use the store */

typedef struct {
    char  *a;
    char  *b;
    char  *c;
} store_row3_t;

/* shared between the files of this part */

void store_error(shuttle_store_t *st, char *err, size_t errlen,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int store_exec(shuttle_store_t *st, const char *sql, char *err,
    size_t errlen);
sqlite3_stmt *store_prepare(shuttle_store_t *st, const char *sql,
    char *err, size_t errlen);
int store_begin(shuttle_store_t *st, char *err, size_t errlen);
int store_commit(shuttle_store_t *st, char *err, size_t errlen);
int store_unsynced(shuttle_store_t *st, int unsynced, char *err,
    size_t errlen);
void store_rollback(shuttle_store_t *st);
void store_bind_text(sqlite3_stmt *stmt, int i, const char *s);
void store_bind_int(sqlite3_stmt *stmt, int i, int64_t v, int set);
void store_copy(char *dst, size_t size, sqlite3_stmt *stmt, int i);
int64_t store_int(sqlite3_stmt *stmt, int i, int64_t dflt);
void store_read_deployment(sqlite3_stmt *stmt,
    shuttle_deployment_t *d);
void store_read_project(sqlite3_stmt *stmt, shuttle_project_t *p);
int store_record(shuttle_store_t *st, int64_t id,
    shuttle_deploy_tag_t tag, int64_t at, const char *reason, char *err,
    size_t errlen);
int store_steps(shuttle_store_t *st, const char *const *sql,
    size_t nsql, const store_arg_t *args, int nargs, const char *what,
    const char *project, char *err, size_t errlen);
int store_run(shuttle_store_t *st, const char *sql,
    const char *const *args, int nargs, const char *what, int *changes,
    char *err, size_t errlen);


#endif /* SHUTTLE_BUILDER_STORE_INT_H */
