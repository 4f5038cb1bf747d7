/*
 * netprobe: a hostile tenant's service, for t/sandbox-net.t.  Each route
 * tries to reach something on the host through the network and answers
 * with what happened: "ok ..." or "error: <strerror>".
 *
 *   GET /tcp?port=N&host=A     connect to A:N (A 127.0.0.1 unless given)
 *   GET /http?port=N&path=P    GET P from 127.0.0.1:N: the status line
 *   GET /abstract?name=N       connect to the abstract unix socket @N
 *   GET /proc?file=F           the lines of /proc/net/F (tcp, tcp6, unix)
 *   GET /diag                  every TCP socket sock_diag lists: "port
 *                              state" pairs
 *   GET /links                 the network interfaces and whether up
 *   GET /self                  connect to its own loopback: a listener is
 *                              refused (no bind), so "refused" is the
 *                              loopback answering
 */

#define _GNU_SOURCE

#include <shuttle.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>


static int
netprobe_tcp_fd(const char *host, int port)
{
    int                 fd;
    struct sockaddr_in  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);

    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1) {
        return -1;
    }

    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == -1) {
        close(fd);
        return -1;
    }

    return fd;
}


static void
netprobe_tcp(shuttle_req *req, shuttle_res *res)
{
    int          fd;
    const char  *host;

    host = shuttle_req_query(req, "host");
    fd = netprobe_tcp_fd(host ? host : "127.0.0.1",
                         atoi(shuttle_req_query(req, "port")));

    if (fd == -1) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        return;
    }

    close(fd);
    shuttle_text(res, 200, "ok connected\n");
}


static void
netprobe_http(shuttle_req *req, shuttle_res *res)
{
    int          fd, n;
    char         buf[512];
    const char  *path;

    fd = netprobe_tcp_fd("127.0.0.1", atoi(shuttle_req_query(req, "port")));
    if (fd == -1) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        return;
    }

    path = shuttle_req_query(req, "path");
    n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.0\r\nHost: localhost\r\n"
                 "\r\n", path ? path : "/");

    if (write(fd, buf, n) != n || (n = read(fd, buf, sizeof(buf) - 1)) < 0)
    {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        close(fd);
        return;
    }

    close(fd);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    shuttle_printf(res, 200, "ok %s\n", buf);
}


static void
netprobe_abstract(shuttle_req *req, shuttle_res *res)
{
    int                 fd, rc;
    size_t              len;
    socklen_t           salen;
    const char         *name;
    struct sockaddr_un  sa;

    name = shuttle_req_query(req, "name");
    len = strlen(name);

    if (len + 1 > sizeof(sa.sun_path)) {
        shuttle_text(res, 400, "name too long\n");
        return;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path + 1, name, len);
    salen = offsetof(struct sockaddr_un, sun_path) + 1 + len;

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    rc = connect(fd, (struct sockaddr *) &sa, salen);

    if (rc == -1) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
    } else {
        shuttle_text(res, 200, "ok connected\n");
    }

    close(fd);
}


static void
netprobe_proc(shuttle_req *req, shuttle_res *res)
{
    FILE        *f;
    char         path[64], line[512], out[32768];
    size_t       n;
    const char  *file;

    file = shuttle_req_query(req, "file");

    if (file == NULL || strchr(file, '/') != NULL || strlen(file) > 16) {
        shuttle_text(res, 400, "file?\n");
        return;
    }

    snprintf(path, sizeof(path), "/proc/net/%s", file);

    f = fopen(path, "r");
    if (f == NULL) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        return;
    }

    n = snprintf(out, sizeof(out), "ok\n");

    while (fgets(line, sizeof(line), f) != NULL && n < sizeof(out) - 1) {
        n += snprintf(out + n, sizeof(out) - n, "%s", line);
    }

    fclose(f);
    shuttle_text(res, 200, out);
}


static void
netprobe_diag(shuttle_req *req, shuttle_res *res)
{
    int                          fd;
    char                         buf[16384], out[8192];
    size_t                       n;
    ssize_t                      len;
    struct nlmsghdr             *h;
    struct inet_diag_msg        *m;
    struct sockaddr_nl           sa;
    struct {
        struct nlmsghdr          nlh;
        struct inet_diag_req_v2  r;
    }                            q;

    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd == -1) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        return;
    }

    memset(&q, 0, sizeof(q));
    q.nlh.nlmsg_len = sizeof(q);
    q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    q.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    q.r.sdiag_family = AF_INET;
    q.r.sdiag_protocol = IPPROTO_TCP;
    q.r.idiag_states = ~0U;

    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;

    if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *) &sa, sizeof(sa))
        == -1)
    {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        close(fd);
        return;
    }

    n = snprintf(out, sizeof(out), "ok");

    for ( ;; ) {
        len = recv(fd, buf, sizeof(buf), 0);
        if (len <= 0) {
            break;
        }

        for (h = (struct nlmsghdr *) buf; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len))
        {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
            {
                goto done;
            }

            m = NLMSG_DATA(h);

            if (n < sizeof(out) - 32) {
                n += snprintf(out + n, sizeof(out) - n, " %u:%u",
                              (unsigned) ntohs(m->id.idiag_sport),
                              (unsigned) m->idiag_state);
            }
        }
    }

done:

    close(fd);
    snprintf(out + n, sizeof(out) - n, "\n");
    shuttle_text(res, 200, out);
}


static void
netprobe_links(shuttle_req *req, shuttle_res *res)
{
    char             out[1024];
    size_t           n;
    struct ifaddrs  *ifa, *i;

    if (getifaddrs(&ifa) == -1) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        return;
    }

    n = snprintf(out, sizeof(out), "ok");

    for (i = ifa; i != NULL && n < sizeof(out) - 64; i = i->ifa_next) {
        if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET) {
            n += snprintf(out + n, sizeof(out) - n, " %s:%s", i->ifa_name,
                          (i->ifa_flags & IFF_UP) ? "up" : "down");
        }
    }

    freeifaddrs(ifa);
    snprintf(out + n, sizeof(out) - n, "\n");
    shuttle_text(res, 200, out);
}


static void
netprobe_self(shuttle_req *req, shuttle_res *res)
{
    int  fd;

    /* port 9: nothing listens in its own namespace */
    fd = netprobe_tcp_fd("127.0.0.1", 9);

    if (fd == -1) {
        shuttle_printf(res, 200, "error: %s\n", strerror(errno));
        return;
    }

    close(fd);
    shuttle_text(res, 200, "ok connected\n");
}


SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/tcp", netprobe_tcp);
    shuttle_get(app, "/http", netprobe_http);
    shuttle_get(app, "/abstract", netprobe_abstract);
    shuttle_get(app, "/proc", netprobe_proc);
    shuttle_get(app, "/diag", netprobe_diag);
    shuttle_get(app, "/links", netprobe_links);
    shuttle_get(app, "/self", netprobe_self);
    return 0;
}
