#!/usr/bin/perl

# shuttle run on a cloned repository, under a terminal of its own: the
# project's Makefile and its service are the tenant's, hostile.  The
# build tries to append to .git/config (git's fsmonitor would run it
# outside the sandbox), to write into the project folder, to list its
# dot folders, and both the build and the service try the developer's
# terminal: /dev/tty, their descriptors 0-2 as a terminal (reading what
# the developer types, TIOCSTI) and escape sequences on their output.
# After the run the project's tree is byte for byte what it was, nothing
# of the terminal was reached, and the service built from the copy
# answered.  The service's network (its own namespace): the test's
# abstract unix socket and a port it listens on are out of reach.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use Fcntl qw(O_RDWR O_NOCTTY :mode);
use File::Find;
use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(sleep time);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $bin = Shuttle::Platform::shuttle_bin();
plan skip_all => "$bin is not built (make)" unless -x $bin;
plan skip_all => 'git is not installed' if system('git --version >/dev/null 2>&1');

my $t = Shuttle::Test->new;
my $dir = $t->testdir;
make_path("$dir/home");

my %env = (PATH => $ENV{PATH} // '/usr/bin:/bin', HOME => "$dir/home",
           LANG => 'C', GIT_CONFIG_NOSYSTEM => 1);

my $proj = "$dir/iso";


# the project: a git clone with dot folders, a hostile Makefile -------------

# what the build and the service try against the terminal: one report
$t->write_file("$proj/probe.h", <<'EOF');
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static size_t
probe_report(const char *who, char *buf, size_t size)
{
    int            fd, i;
    char           c, data[256];
    size_t         n;
    ssize_t        r;
    struct pollfd  p;

    c = '#';
    n = 0;

    fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0) {
        n += snprintf(buf + n, size - n, "%s DEVTTY-OPENED\n", who);
        (void) write(fd, "DEVTTY-WRITTEN\n", 15);
        if (ioctl(fd, TIOCSTI, &c) == 0) {
            n += snprintf(buf + n, size - n, "%s TIOCSTI-OK tty\n", who);
        }
        close(fd);

    } else {
        n += snprintf(buf + n, size - n, "%s devtty: %s\n", who,
                      strerror(errno));
    }

    for (i = 0; i < 3; i++) {
        if (isatty(i)) {
            n += snprintf(buf + n, size - n, "%s FD%d-IS-TTY\n", who, i);
        }

        if (ioctl(i, TIOCSTI, &c) == 0) {
            n += snprintf(buf + n, size - n, "%s TIOCSTI-OK fd%d\n", who, i);
        }

        if (i != 0 && !isatty(i)) {
            continue;
        }

        p.fd = i;
        p.events = POLLIN;

        if (poll(&p, 1, isatty(i) ? 3000 : 0) > 0
            && (r = read(i, data, sizeof(data) - 1)) > 0)
        {
            data[r] = '\0';
            n += snprintf(buf + n, size - n, "%s STOLE fd%d: %s\n", who, i,
                          data);
        }
    }

    n += snprintf(buf + n, size - n, "%s PROBED\n", who);

    return n;
}
EOF

$t->write_file("$proj/probe.c", <<'EOF');
#include "probe.h"

int
main(void)
{
    char    buf[4096];
    size_t  n;

    n = probe_report("BUILD", buf, sizeof(buf));
    (void) write(2, buf, n);
    return 0;
}
EOF

$t->write_file("$proj/src/main.c", <<'EOF');
#include <shuttle.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "../probe.h"

static void
hello(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "built from the copy\n");
}

static void
tty(shuttle_req *req, shuttle_res *res)
{
    char  buf[4096];

    probe_report("SERVICE", buf, sizeof(buf));
    (void) write(2, "\033]0;PWNED-TITLE\007\n", 18);
    (void) write(1, "\033]0;PWNED-TITLE\007\n", 18);
    shuttle_text(res, 200, buf);
}

/* connect() to 127.0.0.1:PORT and to the abstract unix socket NAME */
static void
net(shuttle_req *req, shuttle_res *res)
{
    int                  fd, tcp, abstract;
    size_t               len;
    const char          *name;
    struct sockaddr_in   sin;
    struct sockaddr_un   sun;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(atoi(shuttle_req_param(req, "port")));

    fd = socket(AF_INET, SOCK_STREAM, 0);
    tcp = fd >= 0 && connect(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0;
    if (fd >= 0) {
        close(fd);
    }

    name = shuttle_req_param(req, "name");
    len = strlen(name);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path + 1, name, len);

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    abstract = fd >= 0
               && connect(fd, (struct sockaddr *) &sun,
                          offsetof(struct sockaddr_un, sun_path) + 1 + len)
                  == 0;
    if (fd >= 0) {
        close(fd);
    }

    shuttle_printf(res, 200, "tcp %s, abstract %s\n",
                   tcp ? "connected" : "refused",
                   abstract ? "connected" : "refused");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/", hello);
    shuttle_get(app, "/tty", tty);
    shuttle_get(app, "/net/:port/:name", net);
    return 0;
}
EOF

$t->write_file("$proj/shuttle.json", qq({"name": "iso"}\n));
$t->write_file("$proj/.vscode/settings.json", "{}\n");
$t->write_file("$proj/.env", "TOKEN=developer-only\n");
# left out as deploy leaves them out: .shuttleignore, Secrets.json
$t->write_file("$proj/.shuttleignore", "*.private\n");
$t->write_file("$proj/notes.private", "developer-only\n");
$t->write_file("$proj/Secrets.json", qq({"TOKEN": "developer-only"}\n));

# each attack from the build, both by a relative and an absolute path
$t->write_file("$proj/Makefile", <<"EOF");
service.so: src/main.c probe.h
\t-printf '[core]\\n\\tfsmonitor = "touch /tmp/pwned"\\n' >> .git/config
\t-printf '[core]\\n\\tfsmonitor = "touch /tmp/pwned"\\n' >> $proj/.git/config
\t-echo pwned > written-by-build.txt
\t-echo pwned > $proj/written-by-build-abs.txt
\t-echo pwned > .vscode/tasks.json
\t\@echo "DOTS: `ls -A . $proj 2>&1 | tr '\\n' ' '`"
\t\$(CC) -o probe probe.c
\t./probe
\t\@printf '\\033]0;PWNED-TITLE\\007\\n'
\t\$(CC) -std=gnu11 -shared -fPIC -O2 -I\$(SHUTTLE_INCLUDE) -o service.so src/main.c
EOF

sub git {
    my ($rc, $out, $err) = Shuttle::Platform::run_cmd(['git', @_],
        env => \%env, dir => $proj);
    die "git @_: $err" if $rc;
    return $out;
}

git('init', '-q');
git('-c', 'user.name=t', '-c', 'user.email=t@t', 'add', '-A');
git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'hostile');

# the whole tree, .git included: names, types, modes, contents
sub tree_sum {
    my @e;
    find({ no_chdir => 1, wanted => sub {
        my $f = $File::Find::name;
        my @st = lstat $f or return;
        my $c = '';
        if (S_ISREG($st[2])) {
            open my $fh, '<', $f or die "$f: $!";
            local $/;
            $c = <$fh> // '';
        } elsif (S_ISLNK($st[2])) {
            $c = readlink $f;
        }
        push @e, join "\0", $f, $st[2], sha256_hex($c);
    } }, $proj);
    return sha256_hex(join "\n", sort @e);
}

my $before = tree_sum();
my $config = $t->read_file("$proj/.git/config");


# shuttle run under a pseudo-terminal: its stdio and controlling tty ------------

# a pty pair by hand (IO::Pty is not always there): /dev/ptmx, unlock
use constant { TIOCSPTLCK => 0x40045431, TIOCGPTN => 0x80045430,
               TIOCSCTTY => 0x540E };

sub pty_run {
    my (@args) = @_;
    sysopen(my $master, '/dev/ptmx', O_RDWR | O_NOCTTY) or die "ptmx: $!";
    my $zero = pack('i', 0);
    ioctl($master, TIOCSPTLCK, $zero) or die "TIOCSPTLCK: $!";
    my $n = pack('i', 0);
    ioctl($master, TIOCGPTN, $n) or die "TIOCGPTN: $!";
    my $slave = '/dev/pts/' . unpack('i', $n);

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $master;
        POSIX::setsid();
        sysopen(my $s, $slave, O_RDWR) or POSIX::_exit(125);
        ioctl($s, TIOCSCTTY, my $z = 0);
        POSIX::dup2(fileno $s, $_) for 0 .. 2;
        %ENV = %env;
        chdir $proj or POSIX::_exit(126);
        exec $bin, 'run', @args or POSIX::_exit(127);
    }
    return { pid => $pid, master => $master, out => '' };
}

# reads the terminal until $re matches what it showed, or the timeout
sub pty_until {
    my ($p, $re, $timeout) = @_;
    my $sel = IO::Select->new($p->{master});
    my $end = time + ($timeout // 60);
    while (time < $end) {
        return 1 if $p->{out} =~ $re;
        next unless $sel->can_read(0.2);
        my $r = sysread($p->{master}, my $buf, 65536);
        return 0 unless $r;            # EIO: every slave closed
        (my $b = $buf) =~ s{\r}{}g;
        $p->{out} .= $b;
    }
    return $p->{out} =~ $re ? 1 : 0;
}

sub pty_type { syswrite($_[0]{master}, $_[1]) }

my @running;
END {
    for (@running) { kill 'KILL', $_; waitpid($_, 0) }
}

my $port = $t->port('A');
$t->_release_ports;

my $run = pty_run('--port', $port);
push @running, $run->{pid};

# what the developer types while the build runs: nobody but the
# terminal's own programs may read it
pty_type($run, "typed-during-build\n");

ok(pty_until($run, qr/^Serving on /m, 90), 'shuttle run serves')
    or diag $run->{out};

my $r = http_get($port, 'localhost', '/');
is($r->{body}, "built from the copy\n", 'the service built by the hostile Makefile answers');

pty_type($run, "typed-while-serving\n");
$r = http_get($port, 'localhost', '/tty');
is($r->{status}, 200, 'GET /tty: the service probed its terminal');
like($r->{body}, qr/^SERVICE PROBED$/m, '... to the end');
unlike($r->{body}, qr/STOLE/, '... and read nothing the developer typed')
    or diag $r->{body};
unlike($r->{body}, qr/IS-TTY/, '... none of its descriptors 0-2 is a terminal');
unlike($r->{body}, qr/DEVTTY-OPENED/, '... /dev/tty does not open');
like($r->{body}, qr/^SERVICE devtty: /m, '... (it says why)');
unlike($r->{body}, qr/TIOCSTI-OK/, '... no TIOCSTI');

# the network: the test's abstract socket and port, out of the
# service's reach (its own network namespace, builder/sandbox/)
my $abstract = "shuttle-test-$$";
my $unix = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => "\0$abstract",
                                 Listen => 5) or die "abstract socket: $!";
my $tcp = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Listen => 5, ReuseAddr => 1) or die "listen: $@";
my $hostport = $tcp->sockport;

# the same probe from here (no sandbox) connects: the test's sockets work
{
    my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => "\0$abstract");
    ok($c, 'the abstract socket answers outside the sandbox');
}

$r = http_get($port, 'localhost', "/net/$hostport/$abstract");
is($r->{status}, 200, 'GET /net: the service tried both');
like($r->{body}, qr/^tcp refused/, '... a port the host listens on is out of reach');
like($r->{body}, qr/abstract refused$/m, '... and an abstract unix socket too');

kill 'INT', $run->{pid};
pty_until($run, qr/^Stopped/m, 20);
my $end = time + 20;
sleep 0.02 until waitpid($run->{pid}, WNOHANG) == $run->{pid} || time > $end;
is($? >> 8, 0, 'Ctrl-C: shuttle run exits 0');
@running = ();

my $out = $run->{out};

# the build's attacks
is($t->read_file("$proj/.git/config"), $config, '.git/config is unchanged');
ok(!-e "$proj/written-by-build.txt" && !-e "$proj/written-by-build-abs.txt",
   'the build wrote nothing into the project folder');
is(tree_sum(), $before, 'the project\'s whole tree is byte for byte what it was');
like($out, qr/^DOTS: /m, 'the build listed what it sees');
my ($dots) = $out =~ /^DOTS: (.*)$/m;
unlike($dots // '', qr/\.git\b/, '... no .git');
unlike($dots // '', qr/\.vscode/, '... no other dot folder');
like($dots // '', qr/\bMakefile\b.*\bsrc\b/, '... the project\'s files');
unlike($dots // '', qr/notes\.private|Secrets\.json/,
       '... but what deploy leaves out (.shuttleignore, Secrets.json)');

# the build's probe, and both outputs on the terminal
like($out, qr/^BUILD PROBED/m, 'the build probed its terminal');
unlike($out, qr/(BUILD|SERVICE) STOLE/, 'nothing typed was read by the build')
    or diag $out;
unlike($out, qr/BUILD FD\d-IS-TTY/, '... none of its descriptors is a terminal');
unlike($out, qr/DEVTTY-(OPENED|WRITTEN)/, '... no /dev/tty');
unlike($out, qr/TIOCSTI-OK/, '... no TIOCSTI');
unlike($out, qr/\e\]0;PWNED/, 'no escape sequence of theirs reached the terminal raw');
like($out, qr/\^\[\]0;PWNED-TITLE\^G/, '... it was shown escaped');

my ($scratch) = $out =~ /^Building \S+ \(a copy in (\S+)\)/m;
ok(defined $scratch, 'the build ran in a copy, named');
ok(defined $scratch && !-e $scratch, '... removed after the run');


# --no-sandbox: said loudly, what it leaves open; the output still piped ---

my $plain = "$dir/plain";
$t->write_file("$plain/shuttle.json", qq({"name": "plain"}\n));
$t->write_file("$plain/probe.h", $t->read_file("$proj/probe.h"));
$t->write_file("$plain/src/main.c", $t->read_file("$proj/src/main.c"));
$proj = $plain;

$run = pty_run('--port', $port, '--no-sandbox');
push @running, $run->{pid};
ok(pty_until($run, qr/^Serving on /m, 90), 'shuttle run --no-sandbox serves')
    or diag $run->{out};
like($run->{out}, qr/^shuttle run: WARNING: NO SANDBOX \(--no-sandbox\)\. .*run as you, with your rights: .*\.git included.*open your terminal's device.*reach every port/m,
     '... saying loudly what is then not protected');

pty_type($run, "typed-unsandboxed\n");
$r = http_get($port, 'localhost', '/tty');
like($r->{body}, qr/^SERVICE PROBED$/m, 'its service probed its terminal');
unlike($r->{body}, qr/STOLE|IS-TTY|DEVTTY-OPENED|TIOCSTI-OK/,
       '... its stdio pipes, in a session of its own: no terminal')
    or diag $r->{body};

kill 'INT', $run->{pid};
pty_until($run, qr/^Stopped/m, 20);
$end = time + 20;
sleep 0.02 until waitpid($run->{pid}, WNOHANG) == $run->{pid} || time > $end;
is($? >> 8, 0, '... and stops on Ctrl-C');
unlike($run->{out}, qr/\e\]0;PWNED/, '... its output escaped on the terminal');
@running = ();

done_testing;
