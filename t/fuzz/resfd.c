
/*
 * Fuzz target: what a loader reads on --resources-fd (loader/resources.c):
 * loader_resources_load() on a descriptor of the input, then what a
 * service asks of it: shuttle_sqlite(), shuttle_postgres() and
 * shuttle_secret() for the names the input declares and for a name it
 * does not.  loader/resources.c is included here whole, so that its state
 * is reset between inputs (a loader reads it once and exits on an error).
 *
 * Nothing leaves the fuzz directory: a SQLite database is opened in memory
 * whatever its path, and libpq is never loaded (a "postgres" section then
 * fails the load, after it was parsed).  The static folder's realpath() is
 * the real one.  The input is the JSON object.
 */


#include <dlfcn.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "fuzz.h"


static int fuzz_resfd_sqlite_open(const char *path, sqlite3 **s, int flags,
    const char *vfs);
static void *fuzz_resfd_dlopen(const char *file, int mode);
static char *fuzz_resfd_dlerror(void);


#define sqlite3_open_v2  fuzz_resfd_sqlite_open
#define dlopen           fuzz_resfd_dlopen
#define dlerror          fuzz_resfd_dlerror

#include "../../loader/resources.c"

#undef sqlite3_open_v2
#undef dlopen
#undef dlerror


static void fuzz_resfd_reset(void);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          fd;
    char         err[LOADER_ERRLEN];
    size_t       i;
    const char  *key, *v;
    json_t      *root, *secrets, *value;

    fuzz_std_fds();

    fd = open(fuzz_file("resources.json", data, size), O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        abort();
    }

    err[0] = '\0';

    if (loader_resources_load(fd, err, sizeof(err)) != 0) {
        if (err[0] == '\0') {
            /* a failure says why */
            abort();
        }

        fuzz_resfd_reset();
        return 0;
    }

    if (loader_res.nsqlite > LOADER_RES_MAX_DBS
        || loader_res.npg > LOADER_RES_MAX_DBS)
    {
        abort();
    }

    for (i = 0; i < loader_res.nsqlite; i++) {
        if (shuttle_sqlite(NULL, loader_res.sqlite[i].name) == NULL) {
            abort();
        }
    }

    (void) shuttle_sqlite(NULL, "fuzz-not-declared");
    (void) shuttle_postgres(NULL, "fuzz-not-declared");

    /* a secret is the string the input gave it, or NULL */

    root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      NULL);
    secrets = json_object_get(root, "secrets");

    json_object_foreach(secrets, key, value) {
        v = shuttle_secret(NULL, key);

        if (json_is_string(value)
            ? (v == NULL || strcmp(v, json_string_value(value)) != 0)
            : v != NULL)
        {
            abort();
        }
    }

    (void) shuttle_secret(NULL, "FUZZ_NOT_DECLARED");

    json_decref(root);

    fuzz_resfd_reset();

    return 0;
}


/* as at the loader's exit: the main thread's handles closed, all freed */

static void
fuzz_resfd_reset(void)
{
    size_t             i;
    loader_handles_t  *hs;

    if (loader_res.key_made) {
        hs = pthread_getspecific(loader_res.key);

        if (hs != NULL) {
            loader_res_close(hs);
            (void) pthread_setspecific(loader_res.key, NULL);
        }

        (void) pthread_key_delete(loader_res.key);
    }

    for (i = 0; i < loader_res.nsqlite; i++) {
        free(loader_res.sqlite[i].name);
        free(loader_res.sqlite[i].where);
    }

    for (i = 0; i < loader_res.npg; i++) {
        free(loader_res.pg[i].name);
        free(loader_res.pg[i].where);
    }

    /* a database that failed half-way: its name kept, not counted */

    if (loader_res.nsqlite < LOADER_RES_MAX_DBS) {
        free(loader_res.sqlite[loader_res.nsqlite].name);
        free(loader_res.sqlite[loader_res.nsqlite].where);
    }

    if (loader_res.npg < LOADER_RES_MAX_DBS) {
        free(loader_res.pg[loader_res.npg].name);
        free(loader_res.pg[loader_res.npg].where);
    }

    json_decref(loader_res.secrets);
    free(loader_res.static_uri);
    free(loader_res.static_dir);

    memset(&loader_res, 0, sizeof(loader_resources_t));
}


static int
fuzz_resfd_sqlite_open(const char *path, sqlite3 **s, int flags,
    const char *vfs)
{
    if (path == NULL || path[0] == '\0') {
        /* loader_res_dbs() takes non-empty strings only */
        abort();
    }

    return sqlite3_open_v2(":memory:", s, flags, vfs);
}


static void *
fuzz_resfd_dlopen(const char *file, int mode)
{
    return NULL;
}


static char *
fuzz_resfd_dlerror(void)
{
    return (char *) "not loaded by the fuzz target";
}
