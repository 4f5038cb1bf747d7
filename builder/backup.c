
/*
 * shuttle-builder backup FILE: see backup.h.
 *
 * The copy is written to FILE.tmp by SQLite's online backup API in one
 * step (one read transaction of the store: a consistent snapshot, which
 * in WAL mode blocks no writer), checked with PRAGMA integrity_check,
 * fsynced, then renamed over FILE and the directory fsynced: FILE is the
 * previous backup or the new one, never half of one.
 */


#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "log.h"
#include "state.h"
#include "store.h"


#define BACKUP_OK       0
#define BACKUP_FAILED   1
#define BACKUP_USAGE    2

#define BACKUP_DATA     "/var/lib/shuttle"
#define BACKUP_ERRLEN   (4 * SHUTTLE_PATH_MAX)
#define BACKUP_TRIES    500         /* 10 ms apart, while the store is busy */


typedef struct {
    const char  *store;         /* DATA/shuttle.db */
    const char  *file;          /* FILE */
    char         tmp[SHUTTLE_PATH_MAX];
    int64_t      pages;
    int64_t      projects;
    int64_t      deployments;
    off_t        size;
} backup_t;


static void backup_usage(FILE *f);
static int backup_copy(backup_t *b, char *err, size_t errlen);
static int backup_check(backup_t *b, char *err, size_t errlen);
static int backup_sync(const char *path, int dir, char *err, size_t errlen);
static void backup_unlink_tmp(backup_t *b);


int
shuttle_backup_main(int argc, char **argv)
{
    int          i, rc;
    char         err[BACKUP_ERRLEN], store[SHUTTLE_PATH_MAX], *dir;
    int64_t      t0;
    backup_t     b;
    const char  *data;
    struct stat  st, fst;

    memset(&b, 0, sizeof(backup_t));
    data = BACKUP_DATA;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            backup_usage(stdout);
            return BACKUP_OK;
        }

        if (strcmp(argv[i], "--data") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "shuttle-builder backup: --data needs a "
                        "directory\n");
                return BACKUP_USAGE;
            }

            data = argv[++i];
            continue;
        }

        if (strncmp(argv[i], "--data=", 7) == 0) {
            data = argv[i] + 7;
            continue;
        }

        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "shuttle-builder backup: unknown option \"%s\" "
                    "(see shuttle-builder backup --help)\n", argv[i]);
            return BACKUP_USAGE;
        }

        if (b.file != NULL) {
            fprintf(stderr, "shuttle-builder backup: one FILE\n");
            return BACKUP_USAGE;
        }

        b.file = argv[i];
    }

    if (b.file == NULL || b.file[0] == '\0') {
        backup_usage(stderr);
        return BACKUP_USAGE;
    }

    if ((size_t) snprintf(store, sizeof(store), "%s/shuttle.db", data)
            >= sizeof(store)
        || (size_t) snprintf(b.tmp, sizeof(b.tmp), "%s.tmp", b.file)
            >= sizeof(b.tmp))
    {
        fprintf(stderr, "shuttle-builder backup: path too long\n");
        return BACKUP_USAGE;
    }

    b.store = store;

    if (stat(store, &st) == -1) {
        fprintf(stderr, "shuttle-builder backup: store %s: %s%s\n", store,
                strerror(errno), errno == ENOENT ? " (see --data)" : "");
        return BACKUP_FAILED;
    }

    /* the copy must not land on the store it copies */

    if ((stat(b.file, &fst) == 0 && fst.st_dev == st.st_dev
         && fst.st_ino == st.st_ino)
        || (stat(b.tmp, &fst) == 0 && fst.st_dev == st.st_dev
            && fst.st_ino == st.st_ino))
    {
        fprintf(stderr, "shuttle-builder backup: %s is the store itself\n",
                b.file);
        return BACKUP_USAGE;
    }

    t0 = shuttle_mono_ms();

    if (backup_copy(&b, err, sizeof(err)) != 0) {
        fprintf(stderr, "shuttle-builder backup: %s\n", err);
        backup_unlink_tmp(&b);
        return BACKUP_FAILED;
    }

    rc = backup_check(&b, err, sizeof(err));

    if (rc == SHUTTLE_STORE_DAMAGED) {
        fprintf(stderr, "shuttle-builder backup: store %s is damaged (%s, "
                "in its copy): %s not written, a previous backup there is "
                "untouched\n", store, err, b.file);
        backup_unlink_tmp(&b);
        return BACKUP_FAILED;
    }

    if (rc != 0) {
        fprintf(stderr, "shuttle-builder backup: %s: %s\n", b.tmp, err);
        backup_unlink_tmp(&b);
        return BACKUP_FAILED;
    }

    if (backup_sync(b.tmp, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "shuttle-builder backup: %s\n", err);
        backup_unlink_tmp(&b);
        return BACKUP_FAILED;
    }

    if (rename(b.tmp, b.file) == -1) {
        fprintf(stderr, "shuttle-builder backup: rename %s to %s: %s\n",
                b.tmp, b.file, strerror(errno));
        backup_unlink_tmp(&b);
        return BACKUP_FAILED;
    }

    /* the rename itself, on disk */

    dir = strdup(b.file);

    if (dir == NULL
        || backup_sync(dirname(dir), 1, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "shuttle-builder backup: %s\n",
                dir ? err : strerror(ENOMEM));
        free(dir);
        return BACKUP_FAILED;
    }

    free(dir);

    printf("backup of %s: %s, %lld projects, %lld deployments, %lld bytes "
           "(%lld pages), integrity_check ok, %lld ms\n", store, b.file,
           (long long) b.projects, (long long) b.deployments,
           (long long) b.size, (long long) b.pages,
           (long long) (shuttle_mono_ms() - t0));

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "shuttle-builder backup: writing to stdout: %s\n",
                strerror(errno));
        return BACKUP_FAILED;
    }

    return BACKUP_OK;
}


static void
backup_usage(FILE *f)
{
    fputs(
"usage: shuttle-builder backup [--data DIR] FILE\n"
"\n"
"Copies the builder's store, DIR/shuttle.db (" BACKUP_DATA "), to FILE\n"
"while the builder runs: a consistent snapshot taken with SQLite's online\n"
"backup API, which holds up no deploy.  The copy is written to FILE.tmp,\n"
"checked (PRAGMA integrity_check), synced to disk, then renamed over\n"
"FILE: FILE is the previous backup or the new one, never half of one.\n"
"It holds secrets and database passwords: it is made mode 0600.\n"
"\n"
"The store is the platform's state (projects, owners, deployments,\n"
"secrets, uids, limits), not the projects' files under DIR/projects/\n"
"(builds, logs, SQLite databases): back those up as files.\n"
"\n"
"To restore: stop the builder (SIGTERM), copy FILE over DIR/shuttle.db,\n"
"remove DIR/shuttle.db-wal and DIR/shuttle.db-shm, start the builder.\n"
"What came after the backup is gone from the state; the builder's log\n"
"names the directories of projects made since (DIR/projects/NAME): move\n"
"them aside, or the next key to deploy that name is given their files.\n"
"\n"
"exit status: 0 done, 1 failed (the store is damaged, or FILE could not\n"
"be written), 2 usage error\n", f);
}


static int
backup_copy(backup_t *b, char *err, size_t errlen)
{
    int              fd, rc, n;
    sqlite3         *src, *dst;
    sqlite3_backup  *bk;

    /* what a backup killed half way left: a hot journal would be "rolled
       back" into the fresh file */

    backup_unlink_tmp(b);

    fd = open(b->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", b->tmp, strerror(errno));
        return -1;
    }

    close(fd);

    src = NULL;
    dst = NULL;
    rc = -1;

    /*
     * Read-write, so that SQLite reads the store as the builder writes
     * it: through its WAL, under its locks.  Never created; with no
     * builder running, the -wal and -shm it makes go with its close.
     */

    if (sqlite3_open_v2(b->store, &src, SQLITE_OPEN_READWRITE, NULL)
        != SQLITE_OK)
    {
        snprintf(err, errlen, "store %s: %s", b->store,
                 src ? sqlite3_errmsg(src) : strerror(ENOMEM));
        goto done;
    }

    (void) sqlite3_busy_timeout(src, 5000);

    if (sqlite3_open_v2(b->tmp, &dst, SQLITE_OPEN_READWRITE, NULL)
        != SQLITE_OK)
    {
        snprintf(err, errlen, "%s: %s", b->tmp,
                 dst ? sqlite3_errmsg(dst) : strerror(ENOMEM));
        goto done;
    }

    /* a crash leaves a FILE.tmp nobody renames: no journal is needed */

    if (sqlite3_exec(dst, "PRAGMA journal_mode = OFF", NULL, NULL, NULL)
        != SQLITE_OK)
    {
        snprintf(err, errlen, "%s: %s", b->tmp, sqlite3_errmsg(dst));
        goto done;
    }

    bk = sqlite3_backup_init(dst, "main", src, "main");
    if (bk == NULL) {
        snprintf(err, errlen, "%s: %s", b->tmp, sqlite3_errmsg(dst));
        goto done;
    }

    /* all pages in one step: one read transaction of the store */

    for (n = 0; n < BACKUP_TRIES; n++) {
        rc = sqlite3_backup_step(bk, -1);

        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
            break;
        }

        sqlite3_sleep(10);
    }

    b->pages = sqlite3_backup_pagecount(bk);

    (void) sqlite3_backup_finish(bk);

    if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
            snprintf(err, errlen, "store %s is damaged (%s): %s not "
                     "written, a previous backup there is untouched",
                     b->store, sqlite3_errstr(rc), b->file);

        } else {
            snprintf(err, errlen, "copying %s to %s: %s", b->store, b->tmp,
                     (rc & 0xff) == SQLITE_FULL
                     ? strerror(ENOSPC) : sqlite3_errmsg(dst));
        }

        rc = -1;
        goto done;
    }

    rc = 0;

done:

    if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == 0) {
        snprintf(err, errlen, "%s: close: %s", b->tmp, sqlite3_errmsg(dst));
        rc = -1;
    }

    (void) sqlite3_close_v2(src);

    return rc;
}


/* the copy is checked, and counted, with no -wal or -shm made beside it */

static int
backup_check(backup_t *b, char *err, size_t errlen)
{
    int                   rc;
    struct stat           st;
    shuttle_store_info_t  info;

    rc = shuttle_store_verify(b->tmp, "integrity_check", &info, err, errlen);
    if (rc != 0) {
        return rc;
    }

    if (stat(b->tmp, &st) == -1) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }

    b->size = st.st_size;
    b->projects = info.projects;
    b->deployments = info.deployments;

    return 0;
}


static int
backup_sync(const char *path, int dir, char *err, size_t errlen)
{
    int  fd;

    fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);

    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }

    if (fsync(fd) == -1) {
        snprintf(err, errlen, "%s: fsync: %s", path, strerror(errno));
        close(fd);
        return -1;
    }

    close(fd);

    return 0;
}


static void
backup_unlink_tmp(backup_t *b)
{
    char  name[SHUTTLE_PATH_MAX + 16];

    (void) unlink(b->tmp);
    (void) snprintf(name, sizeof(name), "%s-journal", b->tmp);
    (void) unlink(name);
}
