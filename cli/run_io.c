
/*
 * shuttle run: the output of the build and of the loader relayed to the
 * terminal, control characters shown as ^X (run_int.h).
 */

#include "run_int.h"


static void cli_run_write(cli_relay_t *rl, const char *buf, size_t n);
static void cli_run_write_all(int fd, const char *buf, size_t n);


/* a pipe for one of the tenant's outputs: *wfd its write end, to give */

int
cli_run_pipe(cli_t *cli, cli_relay_t *rl, int to, int *wfd)
{
    int  fds[2];

    memset(rl, 0, sizeof(cli_relay_t));
    rl->from = -1;
    rl->stop = -1;
    rl->to = to;
    rl->tty = isatty(to);

    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_error(cli, "pipe: %s", strerror(errno));
        return CLI_FAILED;
    }

    /* ours alone non-blocking: the write end is another description */
    (void) fcntl(fds[0], F_SETFL, O_NONBLOCK);

    rl->from = fds[0];
    *wfd = fds[1];

    return CLI_OK;
}


/*
 * Reads what is there (all of it with drain: until nothing is left,
 * without waiting).  0 while the pipe is open, -1 once it is done.
 */

int
cli_run_relay(cli_relay_t *rl, int drain)
{
    char     buf[16384];
    ssize_t  n;

    for ( ;; ) {
        n = read(rl->from, buf, sizeof(buf));

        if (n > 0) {
            cli_run_write(rl, buf, n);

            if (drain) {
                continue;
            }

            return 0;
        }

        if (n == -1 && errno == EINTR) {
            continue;
        }

        return n == -1 && errno == EAGAIN && !drain ? 0 : -1;
    }
}


/* the build's: until the pipe ends, or stop says the build is over */

void *
cli_run_relay_thread(void *arg)
{
    cli_relay_t    *rl;
    struct pollfd   pfd[2];

    rl = arg;

    pfd[0].fd = rl->from;
    pfd[0].events = POLLIN;
    pfd[1].fd = rl->stop;
    pfd[1].events = POLLIN;

    for ( ;; ) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }

            break;
        }

        if (pfd[1].revents) {
            /* the build is over: what it left, and no waiting for a
             * process that escaped it (no sandbox) and holds the pipe */
            (void) cli_run_relay(rl, 1);
            break;
        }

        if (pfd[0].revents && cli_run_relay(rl, 0) != 0) {
            break;
        }
    }

    return NULL;
}


/*
 * The tenant's bytes to our stdout or stderr; to a terminal, its control
 * characters (C0 but tab and newline, DEL, C1 as UTF-8) as ^X or ?, so
 * that no escape sequence of theirs drives the terminal.
 */

static void
cli_run_write(cli_relay_t *rl, const char *buf, size_t n)
{
    char           out[16384 * 2 + 4];
    size_t         i, k;
    unsigned char  c;

    if (!rl->tty) {
        cli_run_write_all(rl->to, buf, n);
        return;
    }

    k = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) buf[i];

        if (rl->c2) {
            rl->c2 = 0;

            if (c >= 0x80 && c <= 0x9f) {
                out[k++] = '?';
                continue;
            }

            out[k++] = (char) 0xc2;
        }

        if (c == 0xc2) {
            rl->c2 = 1;

        } else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            out[k++] = '^';
            out[k++] = c == 0x7f ? '?' : (char) (c + '@');

        } else {
            out[k++] = (char) c;
        }

        if (k > sizeof(out) - 4) {
            cli_run_write_all(rl->to, out, k);
            k = 0;
        }
    }

    cli_run_write_all(rl->to, out, k);
}


static void
cli_run_write_all(int fd, const char *buf, size_t n)
{
    ssize_t  w;

    while (n > 0) {
        w = write(fd, buf, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }

            return;
        }

        buf += w;
        n -= w;
    }
}


void
cli_run_unsafe(const char *why)
{
    fprintf(stderr,
        "shuttle run: WARNING: NO SANDBOX (%s). The project's Makefile and "
        "its service run as you, with your rights: they can read and write "
        "all your files (this project's .git included, whose config and "
        "hooks git runs), open your terminal's device, reach every port "
        "and socket of this machine and the network, and signal your "
        "processes. Run only a project you trust this way.\n", why);
}
