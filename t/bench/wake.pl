# make bench, its wakes beside socket activation (bench.pl requires this
# file; BENCH_ONLY=wake_socket runs only it).
#
#   wake_socket_*    GET /hello through nginx to an idle project (scaled
#                    to zero: the builder holds its socket, no loader),
#                    in its sandbox, beside the same GET through the same
#                    nginx to a plain C HTTP server started from nothing
#                    by socket activation: a holder that listens and,
#                    on the first connection, forks and execs the server
#                    on its listening socket (inetd's "wait", as
#                    systemd-socket-activate does); the server, like a
#                    loader, exits after 300 ms without a connection.
#                    One at a time (_one), and bursts of 10 back-to-back
#                    GETs to 10 DIFFERENT idle projects (_burst), each
#                    beside 10 different servers; BENCH_WAKE_ROUNDS (20)
#                    rounds, the platform and the baseline alternating.
#                    p50 and p99 of each, their difference and ratio.

use strict;
use warnings;

use File::Temp;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

my $WAKE_ROUNDS = $ENV{BENCH_WAKE_ROUNDS} // 20;
my $WAKE_BURST  = 10;

# the baseline: a holder and a plain server, compiled here
my $HOLDER_C = <<'EOF';
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

int
main(int argc, char **argv)
{
    int                 fd, one;
    pid_t               pid;
    struct pollfd       pfd;
    struct sockaddr_in  sin;

    one = 1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(fd, 511) == -1)
    {
        perror("holder: bind");
        return 1;
    }

    for ( ;; ) {
        pfd.fd = fd;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, -1) <= 0) {
            continue;
        }

        pid = fork();

        if (pid == 0) {
            dup2(fd, 3);
            execv(argv[2], argv + 2);
            _exit(127);
        }

        while (waitpid(pid, NULL, 0) == -1) { /* void */ }
    }
}
EOF

my $SERVER_C = <<'EOF';
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#define MAXC 64

static const char  resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    "Content-Length: 14\r\n\r\nHello, world!\n";

int
main(void)
{
    int            n, i, fd;
    char           buf[8192];
    struct pollfd  p[MAXC + 1];

    p[0].fd = 3;
    p[0].events = POLLIN;
    n = 1;

    for ( ;; ) {
        if (poll(p, n, 300) == 0 && n == 1) {
            return 0;                   /* 300 ms without a connection */
        }

        for (i = n - 1; i >= 1; i--) {
            if (p[i].revents == 0) {
                continue;
            }

            if (read(p[i].fd, buf, sizeof(buf)) <= 0) {
                close(p[i].fd);
                p[i] = p[--n];
                continue;
            }

            /* one request per read: nginx sends a GET whole */
            (void) !write(p[i].fd, resp, sizeof(resp) - 1);
        }

        if ((p[0].revents & POLLIN) && n <= MAXC) {
            fd = accept(3, NULL, NULL);
            if (fd != -1) {
                p[n].fd = fd;
                p[n].events = POLLIN;
                p[n].revents = 0;
                n++;
            }
        }
    }
}
EOF

sub wake_free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1)
        or die "bench: a free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub wake_compile {
    my ($dir, $name, $src) = @_;
    open my $fh, '>', "$dir/$name.c" or die "$dir/$name.c: $!";
    print $fh $src;
    close $fh;
    system('cc', '-O2', '-o', "$dir/$name", "$dir/$name.c") == 0
        or die "bench: cc $name.c failed\n";
    return "$dir/$name";
}

# the children of pid (the holder's server, when one runs)
sub wake_children {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/task/$pid/children" or return ();
    my $c = <$fh> // '';
    return split ' ', $c;
}

sub bench_wake_socket {
    my $repo = Shuttle::Test::repo();
    my $tmp = File::Temp->newdir('shuttle-wake-XXXXXX', TMPDIR => 1);
    my $holder = wake_compile("$tmp", 'holder', $HOLDER_C);
    my $server = wake_compile("$tmp", 'server', $SERVER_C);

    my @names = map { sprintf 'w%02d', $_ } 1 .. $WAKE_BURST;
    my @base = map { sprintf 'b%02d', $_ } 1 .. $WAKE_BURST;
    my %port = map { $_ => wake_free_port() } @base;

    # the baseline through the same nginx, as nginx reaches a loader: an
    # upstream with keepalive, closed after 100 ms idle
    my $extra = join '', map { <<"EOF" } @base;
    upstream $_ {
        server 127.0.0.1:$port{$_};
        keepalive 16;
        keepalive_timeout 100ms;
    }
    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name $_.localhost;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://$_;
        }
    }
EOF

    my $p = Shuttle::Platform->new(builder_args => ['--idle', '300ms'],
                                   upstream_keepalive_timeout => '100ms',
                                   http_extra => $extra);

    my %holder;
    for my $b (@base) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open STDIN, '<', '/dev/null';
            exec $holder, $port{$b}, $server;
            POSIX::_exit(127);
        }
        $holder{$b} = $pid;
    }

    my $ok = eval {
        my $tgz = `tar czf - -C $repo/examples/hello .`;
        my %id = map { $_ => post_deploy($p, $_, $tgz) } @names;
        $p->t->wait_deployment('alice', $id{$_}, qr/^running$/, 60)
            for @names;
        wake_rounds($p, \@names, \@base, \%holder);
        1;
    };
    my $err = $@;

    kill 'KILL', values %holder;
    waitpid $_, 0 for values %holder;
    $p->stop;
    die $err unless $ok;
}

sub wake_rounds {
    my ($p, $names, $base, $holder) = @_;
    my (@one, @one_base, @burst, @burst_base);

    my $get = sub {
        my ($name) = @_;
        my $t0 = time;
        my $r = $p->app_get($name, '/hello', timeout => 5);
        my $ms = (time - $t0) * 1000;
        die "bench: GET $name/hello: $r->{status} $r->{body}\n"
            unless $r->{status} == 200 && $r->{body} eq "Hello, world!\n";
        return $ms;
    };

    # every project idle (no loader), every holder without its server
    my $idle = sub {
        my ($list) = @_;
        my $r = $p->v1('alice', 'GET', '/v1/projects');
        my %state = map { $_->{name} => $_->{state} // '' }
                    @{ $r->{json}{projects} // [] };
        return !grep { ($state{$_} // '') ne 'idle' } @$list;
    };
    my $wait_platform = sub {
        my ($list) = @_;
        $p->t->wait_until(sub { $idle->($list) && !$p->t->loader_pids }, 20)
            or die "bench: @$list do not go idle\n" . $p->builder_log;
        # as for the baseline: nothing else in flight (the API's answer
        # above, the builder's store) when the wake comes
        sleep 0.15;
    };
    my $wait_base = sub {
        my ($list) = @_;
        $p->t->wait_until(sub {
            !grep { wake_children($holder->{$_}) } @$list }, 20)
            or die "bench: a baseline server does not exit\n";
        # nginx's keepalive connections to it closed (100 ms)
        sleep 0.15;
    };

    for my $round (1 .. $WAKE_ROUNDS) {
        # one at a time, the order alternating
        my @pair = $round % 2 ? ('p', 'b') : ('b', 'p');
        for my $w (@pair) {
            if ($w eq 'p') {
                $wait_platform->([$names->[0]]);
                push @one, $get->($names->[0]);
            } else {
                $wait_base->([$base->[0]]);
                push @one_base, $get->($base->[0]);
            }
        }

        # bursts: 10 different ones back to back
        for my $w (@pair) {
            if ($w eq 'p') {
                $wait_platform->($names);
                push @burst, $get->($_) for @$names;
            } else {
                $wait_base->($base);
                push @burst_base, $get->($_) for @$base;
            }
        }
    }

    printf "# wakes one at a time: %s ms\n#   baseline: %s ms\n",
           join(', ', map { sprintf '%.1f', $_ } @one),
           join(', ', map { sprintf '%.1f', $_ } @one_base);
    printf "# wakes in bursts of %d: %s ms\n#   baseline: %s ms\n",
           $WAKE_BURST, join(', ', map { sprintf '%.1f', $_ } @burst),
           join(', ', map { sprintf '%.1f', $_ } @burst_base);

    for my $f (['one', \@one, \@one_base], ['burst', \@burst, \@burst_base])
    {
        my ($k, $w, $b) = @$f;
        for my $q (50, 99) {
            my ($pw, $pb) = (pct($q, @$w), pct($q, @$b));
            figure("wake_socket_${k}_ms_p$q", sprintf('%.1f', $pw));
            figure("wake_socket_${k}_base_ms_p$q", sprintf('%.1f', $pb));
            figure("wake_socket_${k}_diff_ms_p$q", sprintf('%.1f', $pw - $pb));
            figure("wake_socket_${k}_ratio_p$q",
                   fmt_ratio($pb > 0 ? $pw / $pb : 0));
        }
    }
}

1;
