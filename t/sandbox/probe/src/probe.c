/*
 * probe: a hostile tenant's service, for t/sandbox.t.  Each route tries
 * one thing a tenant must not be able to do (or one it must) and answers
 * with what happened: "ok ..." or "error: <strerror>".
 *
 *   GET /id                    uid, gid, supplementary groups
 *   GET /status                CapEff, CapBnd, NoNewPrivs, Seccomp
 *   GET /read?path=P           open and read a file
 *   GET /write?path=P          create a file and write to it
 *   GET /ls?path=P             the names in a directory
 *   GET /connect?path=P        connect to a unix socket
 *   GET /tcp?port=N            connect to 127.0.0.1:N (outbound network)
 *   GET /bind                  bind 127.0.0.1:0, then listen on a socket
 *   GET /procs                 the pids /proc shows
 *   GET /kill?pid=N            kill(N, 0)
 *   GET /syscall?name=N        a call of the sandbox's sb_denied[] (those
 *                              below with arguments of their own, the others
 *                              with zeros), or clone_ns; says the call's
 *                              number: "error: ... (system call N)"
 *   GET /fork?n=N              fork N children that wait; how many were made
 *   POST /alloc?mb=N           allocate and touch N MiB (a POST: nginx
 *                              retries no POST on another connection)
 *   GET /fill                  insert 64 KiB blobs into SQLite until it fails
 *   GET /bigfile?mb=N          write N MiB to a file in /tmp
 */

#define _GNU_SOURCE

#include <shuttle.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>


SHUTTLE_SQLITE("main");


/* what sb_denied[] of builder/sandbox/seccomp.c lists; -1: not here */

#ifndef SYS_ptrace
#define SYS_ptrace  -1
#endif
#ifndef SYS_process_vm_readv
#define SYS_process_vm_readv  -1
#endif
#ifndef SYS_process_vm_writev
#define SYS_process_vm_writev  -1
#endif
#ifndef SYS_kcmp
#define SYS_kcmp  -1
#endif
#ifndef SYS_mount
#define SYS_mount  -1
#endif
#ifndef SYS_umount2
#define SYS_umount2  -1
#endif
#ifndef SYS_pivot_root
#define SYS_pivot_root  -1
#endif
#ifndef SYS_chroot
#define SYS_chroot  -1
#endif
#ifndef SYS_move_mount
#define SYS_move_mount  -1
#endif
#ifndef SYS_open_tree
#define SYS_open_tree  -1
#endif
#ifndef SYS_fsopen
#define SYS_fsopen  -1
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig  -1
#endif
#ifndef SYS_fsmount
#define SYS_fsmount  -1
#endif
#ifndef SYS_fspick
#define SYS_fspick  -1
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr  -1
#endif
#ifndef SYS_swapon
#define SYS_swapon  -1
#endif
#ifndef SYS_swapoff
#define SYS_swapoff  -1
#endif
#ifndef SYS_reboot
#define SYS_reboot  -1
#endif
#ifndef SYS_kexec_load
#define SYS_kexec_load  -1
#endif
#ifndef SYS_kexec_file_load
#define SYS_kexec_file_load  -1
#endif
#ifndef SYS_init_module
#define SYS_init_module  -1
#endif
#ifndef SYS_finit_module
#define SYS_finit_module  -1
#endif
#ifndef SYS_delete_module
#define SYS_delete_module  -1
#endif
#ifndef SYS_bpf
#define SYS_bpf  -1
#endif
#ifndef SYS_perf_event_open
#define SYS_perf_event_open  -1
#endif
#ifndef SYS_keyctl
#define SYS_keyctl  -1
#endif
#ifndef SYS_add_key
#define SYS_add_key  -1
#endif
#ifndef SYS_request_key
#define SYS_request_key  -1
#endif
#ifndef SYS_unshare
#define SYS_unshare  -1
#endif
#ifndef SYS_setns
#define SYS_setns  -1
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd  -1
#endif
#ifndef SYS_acct
#define SYS_acct  -1
#endif
#ifndef SYS_quotactl
#define SYS_quotactl  -1
#endif
#ifndef SYS_syslog
#define SYS_syslog  -1
#endif
#ifndef SYS_settimeofday
#define SYS_settimeofday  -1
#endif
#ifndef SYS_clock_settime
#define SYS_clock_settime  -1
#endif
#ifndef SYS_clock_adjtime
#define SYS_clock_adjtime  -1
#endif
#ifndef SYS_adjtimex
#define SYS_adjtimex  -1
#endif
#ifndef SYS_sethostname
#define SYS_sethostname  -1
#endif
#ifndef SYS_setdomainname
#define SYS_setdomainname  -1
#endif
#ifndef SYS_iopl
#define SYS_iopl  -1
#endif
#ifndef SYS_ioperm
#define SYS_ioperm  -1
#endif
#ifndef SYS_open_by_handle_at
#define SYS_open_by_handle_at  -1
#endif
#ifndef SYS_name_to_handle_at
#define SYS_name_to_handle_at  -1
#endif
#ifndef SYS_lookup_dcookie
#define SYS_lookup_dcookie  -1
#endif
#ifndef SYS_fanotify_init
#define SYS_fanotify_init  -1
#endif
#ifndef SYS_nfsservctl
#define SYS_nfsservctl  -1
#endif
#ifndef SYS_vhangup
#define SYS_vhangup  -1
#endif
#ifndef SYS_uselib
#define SYS_uselib  -1
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup  -1
#endif
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter  -1
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register  -1
#endif
#ifndef SYS_personality
#define SYS_personality  -1
#endif

static const struct {
    const char  *name;
    long         nr;
} probe_calls[] = {
    { "ptrace", SYS_ptrace },
    { "process_vm_readv", SYS_process_vm_readv },
    { "process_vm_writev", SYS_process_vm_writev },
    { "kcmp", SYS_kcmp },
    { "mount", SYS_mount },
    { "umount2", SYS_umount2 },
    { "pivot_root", SYS_pivot_root },
    { "chroot", SYS_chroot },
    { "move_mount", SYS_move_mount },
    { "open_tree", SYS_open_tree },
    { "fsopen", SYS_fsopen },
    { "fsconfig", SYS_fsconfig },
    { "fsmount", SYS_fsmount },
    { "fspick", SYS_fspick },
    { "mount_setattr", SYS_mount_setattr },
    { "swapon", SYS_swapon },
    { "swapoff", SYS_swapoff },
    { "reboot", SYS_reboot },
    { "kexec_load", SYS_kexec_load },
    { "kexec_file_load", SYS_kexec_file_load },
    { "init_module", SYS_init_module },
    { "finit_module", SYS_finit_module },
    { "delete_module", SYS_delete_module },
    { "bpf", SYS_bpf },
    { "perf_event_open", SYS_perf_event_open },
    { "keyctl", SYS_keyctl },
    { "add_key", SYS_add_key },
    { "request_key", SYS_request_key },
    { "unshare", SYS_unshare },
    { "setns", SYS_setns },
    { "userfaultfd", SYS_userfaultfd },
    { "acct", SYS_acct },
    { "quotactl", SYS_quotactl },
    { "syslog", SYS_syslog },
    { "settimeofday", SYS_settimeofday },
    { "clock_settime", SYS_clock_settime },
    { "clock_adjtime", SYS_clock_adjtime },
    { "adjtimex", SYS_adjtimex },
    { "sethostname", SYS_sethostname },
    { "setdomainname", SYS_setdomainname },
    { "iopl", SYS_iopl },
    { "ioperm", SYS_ioperm },
    { "open_by_handle_at", SYS_open_by_handle_at },
    { "name_to_handle_at", SYS_name_to_handle_at },
    { "lookup_dcookie", SYS_lookup_dcookie },
    { "fanotify_init", SYS_fanotify_init },
    { "nfsservctl", SYS_nfsservctl },
    { "vhangup", SYS_vhangup },
    { "uselib", SYS_uselib },
    { "io_uring_setup", SYS_io_uring_setup },
    { "io_uring_enter", SYS_io_uring_enter },
    { "io_uring_register", SYS_io_uring_register },
    { "personality", SYS_personality },
};


static void
probe_result(shuttle_res *res, int rc, const char *what)
{
    if (rc == -1) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
    } else {
        shuttle_printf(res, 200, "ok %s\n", what ? what : "");
    }
}


static void
probe_id(shuttle_req *req, shuttle_res *res)
{
    gid_t  groups[64];
    int    n;

    n = getgroups(64, groups);
    shuttle_printf(res, 200, "uid=%d gid=%d euid=%d egid=%d ngroups=%d "
                   "pid=%d\n", (int) getuid(), (int) getgid(),
                   (int) geteuid(), (int) getegid(), n, (int) getpid());
}


static void
probe_status(shuttle_req *req, shuttle_res *res)
{
    FILE  *f;
    char   line[256], out[1024];
    size_t n;

    out[0] = '\0';
    n = 0;
    f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        probe_result(res, -1, NULL);
        return;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Cap", 3) == 0 || strncmp(line, "NoNewPrivs", 10)
            == 0 || strncmp(line, "Seccomp:", 8) == 0)
        {
            n += snprintf(out + n, sizeof(out) - n, "%s", line);
        }
    }

    fclose(f);
    shuttle_text(res, 200, out);
}


static void
probe_read(shuttle_req *req, shuttle_res *res)
{
    int      fd;
    char     buf[4096], what[64];
    ssize_t  n;

    fd = open(shuttle_req_query(req, "path"), O_RDONLY);
    if (fd == -1) {
        probe_result(res, -1, NULL);
        return;
    }

    n = read(fd, buf, sizeof(buf));
    close(fd);
    snprintf(what, sizeof(what), "%zd bytes", n);
    probe_result(res, n < 0 ? -1 : 0, what);
}


static void
probe_write(shuttle_req *req, shuttle_res *res)
{
    int  fd, rc;

    fd = open(shuttle_req_query(req, "path"), O_WRONLY | O_CREAT | O_APPEND,
              0644);
    if (fd == -1) {
        probe_result(res, -1, NULL);
        return;
    }

    rc = write(fd, "x", 1) == 1 ? 0 : -1;
    close(fd);
    probe_result(res, rc, "written");
}


static void
probe_ls(shuttle_req *req, shuttle_res *res)
{
    DIR            *d;
    char            out[8192];
    size_t          n;
    struct dirent  *e;

    d = opendir(shuttle_req_query(req, "path"));
    if (d == NULL) {
        probe_result(res, -1, NULL);
        return;
    }

    n = snprintf(out, sizeof(out), "ok");
    while ((e = readdir(d)) != NULL && n < sizeof(out) - 300) {
        n += snprintf(out + n, sizeof(out) - n, " %s", e->d_name);
    }
    closedir(d);
    shuttle_printf(res, 200, "%s\n", out);
}


static void
probe_connect(shuttle_req *req, shuttle_res *res)
{
    int                 fd, rc;
    struct sockaddr_un  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
             shuttle_req_query(req, "path"));

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    rc = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
    probe_result(res, rc, "connected");
    close(fd);
}


static void
probe_tcp(shuttle_req *req, shuttle_res *res)
{
    int                 fd, rc;
    struct sockaddr_in  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(atoi(shuttle_req_query(req, "port")));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    rc = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
    probe_result(res, rc, "connected");
    close(fd);
}


static void
probe_bind(shuttle_req *req, shuttle_res *res)
{
    int                 fd, fd2, rc, rc2, e1, e2;
    struct sockaddr_in  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    rc = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
    e1 = errno;

    fd2 = socket(AF_INET, SOCK_STREAM, 0);
    rc2 = listen(fd2, 16);
    e2 = errno;

    close(fd);
    close(fd2);

    shuttle_printf(res, 200, "bind: %s\nlisten: %s\n",
                   rc == 0 ? "ok" : strerror(e1),
                   rc2 == 0 ? "ok" : strerror(e2));
}


static void
probe_procs(shuttle_req *req, shuttle_res *res)
{
    DIR            *d;
    char            out[8192];
    size_t          n;
    struct dirent  *e;

    d = opendir("/proc");
    if (d == NULL) {
        probe_result(res, -1, NULL);
        return;
    }

    n = 0;
    out[0] = '\0';
    while ((e = readdir(d)) != NULL && n < sizeof(out) - 32) {
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
            n += snprintf(out + n, sizeof(out) - n, "%s ", e->d_name);
        }
    }
    closedir(d);
    shuttle_printf(res, 200, "%s\n", out);
}


static void
probe_kill(shuttle_req *req, shuttle_res *res)
{
    probe_result(res, kill(atoi(shuttle_req_query(req, "pid")), 0),
                 "signalable");
}


static void
probe_syscall(shuttle_req *req, shuttle_res *res)
{
    int                      rc;
    long                     nr;
    size_t                   i;
    const char              *name;
    struct perf_event_attr   pe;

    name = shuttle_req_query(req, "name");
    nr = -2;

    for (i = 0; name != NULL && i < sizeof(probe_calls)
                                    / sizeof(probe_calls[0]); i++)
    {
        if (strcmp(name, probe_calls[i].name) == 0) {
            nr = probe_calls[i].nr;
        }
    }

    if (name != NULL && strcmp(name, "clone_ns") == 0) {
        nr = SYS_clone;
    }

    if (nr == -2) {
        shuttle_text(res, 400, "unknown call: add it to probe_calls[]\n");
        return;
    }

    if (nr == -1) {
        shuttle_text(res, 200, "absent on this machine\n");
        return;
    }

    errno = 0;

    if (strcmp(name, "ptrace") == 0) {
        rc = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
    } else if (strcmp(name, "mount") == 0) {
        rc = mount("none", "/tmp", "tmpfs", 0, NULL);
    } else if (strcmp(name, "unshare") == 0) {
        rc = unshare(CLONE_NEWUSER);
    } else if (strcmp(name, "setns") == 0) {
        rc = setns(0, 0);
    } else if (strcmp(name, "personality") == 0) {
        rc = personality(READ_IMPLIES_EXEC);
    } else if (strcmp(name, "perf_event_open") == 0) {
        memset(&pe, 0, sizeof(pe));
        pe.size = sizeof(pe);
        rc = (int) syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
    } else if (strcmp(name, "chroot") == 0) {
        rc = chroot("/tmp");
    } else if (strcmp(name, "clone_ns") == 0) {
        rc = (int) syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
        if (rc == 0) {
            _exit(0);
        }
        if (rc > 0) {
            waitpid(rc, NULL, 0);
        }
    } else {
        /* zeros: what none of them can do harm with, filtered or not */
        rc = (int) syscall(nr, 0, 0, 0, 0, 0, 0);
    }

    shuttle_printf(res, 200, "%s%s (system call %ld)\n",
                   rc == -1 ? "error: " : "ok ",
                   rc == -1 ? strerror(errno) : "allowed", nr);
}


static void
probe_fork(shuttle_req *req, shuttle_res *res)
{
    int    i, n, made, err;
    pid_t  pids[1024];

    n = atoi(shuttle_req_query(req, "n"));
    if (n > 1024) {
        n = 1024;
    }

    err = 0;
    for (made = 0; made < n; made++) {
        pids[made] = fork();
        if (pids[made] == 0) {
            pause();
            _exit(0);
        }
        if (pids[made] == -1) {
            err = errno;
            break;
        }
    }

    for (i = 0; i < made; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }

    shuttle_printf(res, 200, "forked %d of %d%s%s\n", made, n,
                   err ? ": " : "", err ? strerror(err) : "");
}


static void
probe_alloc(shuttle_req *req, shuttle_res *res)
{
    int              mb;
    size_t           i, n;
    unsigned long    sum;
    volatile char   *p;

    mb = atoi(shuttle_req_query(req, "mb"));
    n = (size_t) mb << 20;
    p = malloc(n);
    if (p == NULL) {
        probe_result(res, -1, NULL);
        return;
    }

    /* every page written and read back: nothing for the compiler to drop */
    for (i = 0; i < n; i += 4096) {
        p[i] = (char) i;
    }

    for (i = 0, sum = 0; i < n; i += 4096) {
        sum += (unsigned char) p[i];
    }

    shuttle_printf(res, 200, "ok allocated %d MiB (%lu)\n", mb, sum);
    free((void *) p);
}


static void
probe_fill(shuttle_req *req, shuttle_res *res)
{
    int            rc, n;
    char          *blob;
    sqlite3       *db;
    sqlite3_stmt  *st;

    db = shuttle_sqlite(shuttle_req_app(req), "main");
    sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS fill (b BLOB)", NULL, NULL,
                 NULL);

    blob = calloc(1, 65536);
    sqlite3_prepare_v2(db, "INSERT INTO fill VALUES (?1)", -1, &st, NULL);

    rc = SQLITE_DONE;
    for (n = 0; n < 4096; n++) {
        sqlite3_bind_blob(st, 1, blob, 65536, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            break;
        }
    }

    sqlite3_finalize(st);
    free(blob);

    shuttle_printf(res, 200, "%s after %d KiB: %s\n",
                   rc == SQLITE_DONE ? "ok" : "error", n * 64,
                   rc == SQLITE_DONE ? "" : sqlite3_errstr(rc));
}


static void
probe_bigfile(shuttle_req *req, shuttle_res *res)
{
    int     fd, mb, i, rc;
    char   *buf;

    mb = atoi(shuttle_req_query(req, "mb"));
    fd = open("/tmp/big", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1) {
        probe_result(res, -1, NULL);
        return;
    }

    buf = calloc(1, 1 << 20);
    rc = 0;
    for (i = 0; i < mb; i++) {
        if (write(fd, buf, 1 << 20) != 1 << 20) {
            rc = -1;
            break;
        }
    }

    free(buf);
    close(fd);
    unlink("/tmp/big");

    if (rc == -1) {
        shuttle_printf(res, 200, "error after %d MiB: %s\n", i,
                       strerror(errno));
        return;
    }

    shuttle_printf(res, 200, "ok %d MiB\n", mb);
}


SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/id", probe_id);
    shuttle_get(app, "/status", probe_status);
    shuttle_get(app, "/read", probe_read);
    shuttle_get(app, "/write", probe_write);
    shuttle_get(app, "/ls", probe_ls);
    shuttle_get(app, "/connect", probe_connect);
    shuttle_get(app, "/tcp", probe_tcp);
    shuttle_get(app, "/bind", probe_bind);
    shuttle_get(app, "/procs", probe_procs);
    shuttle_get(app, "/kill", probe_kill);
    shuttle_get(app, "/syscall", probe_syscall);
    shuttle_get(app, "/fork", probe_fork);
    shuttle_post(app, "/alloc", probe_alloc);
    shuttle_get(app, "/fill", probe_fill);
    shuttle_get(app, "/bigfile", probe_bigfile);
    return 0;
}
