
/*
 * The sandbox: the seccomp filters of a build and of a service
 * (sandbox_int.h).
 */

#include "sandbox.h"
#include "sandbox_int.h"

/* the calls a service may not make: SIGSYS (logged by the loader) */
static const char *const  sb_denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "swapon", "swapoff", "reboot", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    "unshare", "setns", "userfaultfd", "acct", "quotactl", "syslog",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
    "fanotify_init", "nfsservctl", "vhangup", "uselib",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "personality",
    NULL
};


/*
 * A filter of libseccomp's making, exported as classic BPF: a service's
 * raises SIGSYS for what it may not do, a build's answers EPERM.  Both
 * refuse clone(2) and clone3(2) asking for namespaces (clone3 with ENOSYS,
 * which makes glibc fall back to clone, whose flags a filter can read).
 * A service may bind(2) only a 12-byte address, a netlink one (glibc's
 * getaddrinfo() binds such a socket to learn the host's addresses): no
 * AF_INET or AF_INET6 address is that short, so no port can be taken.
 */

int
sb_filter(shuttle_sandbox_t *sb, shuttle_sandbox_kind_e kind, char *err,
    size_t errlen)
{
    int                  rc, fd, nr;
    char                *buf;
    off_t                size;
    uint32_t             deny;
    scmp_filter_ctx      ctx;
    const char *const   *name;
    const uint64_t       ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC
                              | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
                              | CLONE_NEWCGROUP;

    deny = kind == SHUTTLE_SANDBOX_SERVICE ? SCMP_ACT_TRAP
                                           : SCMP_ACT_ERRNO(EPERM);

    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        snprintf(err, errlen, "sandbox: seccomp_init failed");
        return -1;
    }

    /* a binary tree of the calls: an allowed one is found in log n */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

    for (name = sb_denied; rc == 0 && *name != NULL; name++) {
        nr = seccomp_syscall_resolve_name(*name);

        if (nr != __NR_SCMP_ERROR) {
            rc = seccomp_rule_add(ctx, deny, nr, 0);
        }
    }

    /* any namespace flag: one rule per flag, libseccomp has no "!= 0" */

    if (rc == 0) {
        for (uint64_t bit = 1; rc == 0 && bit != 0 && bit <= ns;
             bit <<= 1)
        {
            if (ns & bit) {
                rc = seccomp_rule_add(ctx, deny, SCMP_SYS(clone), 1,
                                      SCMP_A0(SCMP_CMP_MASKED_EQ, bit,
                                              bit));
            }
        }
    }

    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
                              0);
    }

    if (rc == 0 && kind == SHUTTLE_SANDBOX_SERVICE) {
        rc = seccomp_rule_add(ctx, deny, SCMP_SYS(bind), 1,
                              SCMP_A2(SCMP_CMP_NE, 12));

        if (rc == 0) {
            rc = seccomp_rule_add(ctx, deny, SCMP_SYS(listen), 0);
        }
    }

    if (rc != 0) {
        snprintf(err, errlen, "sandbox: seccomp rule: %s", strerror(-rc));
        seccomp_release(ctx);
        return -1;
    }

    /* the program, exported to a memfd and read back */

    fd = memfd_create("shuttle-seccomp", MFD_CLOEXEC);
    rc = fd == -1 ? -errno : seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);

    size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    buf = size > 0 ? malloc(size) : NULL;

    if (buf == NULL || pread(fd, buf, size, 0) != size
        || size % sizeof(struct sock_filter) != 0)
    {
        snprintf(err, errlen, "sandbox: seccomp filter: %s",
                 strerror(rc ? -rc : errno ? errno : EINVAL));
        free(buf);
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    close(fd);

    sb->filter[kind].filter = (struct sock_filter *) buf;
    sb->filter[kind].len = (unsigned short) (size
                                             / sizeof(struct sock_filter));

    return 0;
}
