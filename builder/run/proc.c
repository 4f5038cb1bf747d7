
/*
 * Processes, as /proc shows them.
 */


#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "proc.h"


#define PROC_CMDLINE_MAX  8192


static ssize_t proc_read_cmdline(pid_t pid, char *buf, size_t len);


/*
 * /proc/locks lines read "1: FLOCK  ADVISORY  WRITE 4242 fd:01:131 0 EOF";
 * a waiter's line has "->" after the number.
 */

pid_t
shuttle_proc_lock_owner(const char *path)
{
    FILE         *f;
    long          pid;
    char          line[256], kind[16], mode[16], access[16];
    pid_t         owner;
    unsigned      maj, min;
    struct stat   st;
    unsigned long ino;

    if (stat(path, &st) == -1) {
        return 0;
    }

    f = fopen("/proc/locks", "re");
    if (f == NULL) {
        return 0;
    }

    owner = 0;

    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "->") != NULL) {
            continue;
        }

        if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%lu", kind, mode,
                   access, &pid, &maj, &min, &ino)
            != 7)
        {
            continue;
        }

        if (strcmp(kind, "FLOCK") == 0
            && strcmp(access, "WRITE") == 0
            && ino == (unsigned long) st.st_ino
            && maj == major(st.st_dev) && min == minor(st.st_dev))
        {
            owner = (pid_t) pid;
            break;
        }
    }

    fclose(f);

    return owner;
}


int
shuttle_proc_cmdline(pid_t pid, char *buf, size_t len)
{
    ssize_t  n, i;

    n = proc_read_cmdline(pid, buf, len);
    if (n <= 0) {
        return -1;
    }

    while (n > 0 && buf[n - 1] == '\0') {
        n--;
    }

    for (i = 0; i < n; i++) {
        if (buf[i] == '\0') {
            buf[i] = ' ';
        }
    }

    buf[n] = '\0';

    return 0;
}


int
shuttle_proc_is_loader(pid_t pid, const char *so)
{
    char         buf[PROC_CMDLINE_MAX];
    ssize_t      n;
    const char  *arg0, *last, *base, *p;

    if (pid <= 1) {
        return 0;
    }

    n = proc_read_cmdline(pid, buf, sizeof(buf));
    if (n <= 0) {
        return 0;
    }

    while (n > 0 && buf[n - 1] == '\0') {
        n--;
    }

    buf[n] = '\0';

    arg0 = buf;
    base = strrchr(arg0, '/');
    base = base ? base + 1 : arg0;

    if (strcmp(base, "shuttle-loader") != 0) {
        return 0;
    }

    /* the last argument */

    last = buf;

    for (p = buf; p < buf + n; p++) {
        if (*p == '\0') {
            last = p + 1;
        }
    }

    return last != arg0 && strcmp(last, so) == 0;
}


int
shuttle_proc_each_loader(const char *dir,
    void (*found)(pid_t pid, const char *so, void *data), void *data)
{
    int             n;
    char            buf[PROC_CMDLINE_MAX], path[64], stat[512];
    long            pid, ppid;
    size_t          dlen;
    ssize_t         len, i;
    const char     *so, *p;
    DIR            *d;
    FILE           *f;
    struct dirent  *e;

    d = opendir("/proc");
    if (d == NULL) {
        return -1;
    }

    dlen = strlen(dir);
    n = 0;

    while ((e = readdir(d)) != NULL) {
        pid = strtol(e->d_name, NULL, 10);

        if (pid <= 1) {
            continue;
        }

        len = proc_read_cmdline((pid_t) pid, buf, sizeof(buf));
        if (len <= 0) {
            continue;
        }

        while (len > 0 && buf[len - 1] == '\0') {
            len--;
        }

        buf[len] = '\0';

        p = strrchr(buf, '/');
        p = p ? p + 1 : buf;

        if (strcmp(p, "shuttle-loader") != 0) {
            continue;
        }

        so = buf;

        for (i = 0; i < len; i++) {
            if (buf[i] == '\0') {
                so = buf + i + 1;
            }
        }

        if (so == buf || strncmp(so, dir, dlen) != 0 || so[dlen] != '/') {
            continue;
        }

        /* a sandboxed loader's child: its parent is the one to stop */

        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "re");
        ppid = 0;

        if (f != NULL) {
            if (fgets(stat, sizeof(stat), f) != NULL
                && (p = strrchr(stat, ')')) != NULL)
            {
                (void) sscanf(p + 1, " %*c %ld", &ppid);
            }

            fclose(f);
        }

        if (ppid > 1 && shuttle_proc_is_loader((pid_t) ppid, so)) {
            continue;
        }

        found((pid_t) pid, so, data);
        n++;
    }

    closedir(d);

    return n;
}


static ssize_t
proc_read_cmdline(pid_t pid, char *buf, size_t len)
{
    int      fd;
    char     path[64];
    ssize_t  n, total;

    snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long) pid);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    total = 0;

    while ((size_t) total < len - 1) {
        n = read(fd, buf + total, len - 1 - total);

        if (n <= 0) {
            break;
        }

        total += n;
    }

    close(fd);

    return total;
}
