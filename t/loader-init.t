#!/usr/bin/perl

# The loader as its pid namespace's init (issue 20): started as pid 1, it
# forks the loader proper and stays behind as init.  When that fork fails
# (the project's tasks all taken, here RLIMIT_NPROC of a uid of its own),
# the start fails with the reason on the readiness pipe and the service's
# code never runs: not its constructor, not its main.  An init that went
# on as the loader ran the tenant's code as pid 1 (and, started by the
# warm loader with a shared memory, in the root process's memory).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use POSIX ();
use Test::More;
use Shuttle::Test;

plan skip_all => 'pid namespaces and uids take root' if $> != 0;

my $t = Shuttle::Test->new;
my $dir = $t->testdir;
my $repo = Shuttle::Test::repo();
my $loader = $ENV{SHUTTLE_LOADER} // "$repo/build/bin/shuttle-loader";

plan skip_all => "$loader is not built (make)" unless -x $loader;
plan skip_all => 'unshare(1) or setpriv(1) missing'
    unless -x '/usr/bin/unshare' && -x '/usr/bin/setpriv';

# a service whose constructor and main leave a mark, as hostile code
# would run there
my $mark = "$dir/marks";
mkdir $mark;
chmod 0777, $mark;
$t->write_file('marker.c', <<"EOF");
#include <shuttle.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static void
mark(const char *what)
{
    char  path[512];

    snprintf(path, sizeof(path), "$mark/%s-pid%d", what, (int) getpid());
    close(open(path, O_WRONLY | O_CREAT, 0644));
}

__attribute__((constructor)) static void
ctor(void)
{
    mark("constructor");
}

static void
hello(shuttle_req *req, shuttle_res *res)
{
    shuttle_printf(res, 200, "pid %d\\n", (int) getpid());
}

SHUTTLE_MAIN(app)
{
    mark("main");
    shuttle_get(app, "/", hello);
    return 0;
}
EOF
my $so = "$dir/marker.so";
my $out = `cc -O2 -fPIC -shared -Wall -I$repo/include $dir/marker.c -o $so 2>&1`;
die "cc failed:\n$out" if $?;
chmod 0755, $dir, $so;

my $uid = 234567;

# runs the loader as pid 1 of a new pid namespace, as uid $uid, with
# RLIMIT_NPROC $nproc; returns (exit status, first line on the pipe)
sub run_init {
    my ($nproc) = @_;
    my $sock = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                     LocalPort => 0, Proto => 'tcp')
        or die "listen: $!";
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $r;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/loader.log";
        open STDERR, '>&', \*STDOUT;
        # descriptors 3 and 4, kept across the exec (a dup2 onto itself
        # would keep perl's close-on-exec)
        my $s = POSIX::dup(fileno($sock));
        my $p = POSIX::dup(fileno($w));
        POSIX::dup2($s, 3) or POSIX::_exit(126);
        POSIX::dup2($p, 4) or POSIX::_exit(126);
        exec '/usr/bin/unshare', '--pid', '--fork', '--kill-child',
             '/usr/bin/setpriv', "--reuid=$uid", "--regid=$uid",
             '--clear-groups', '--inh-caps=-all',
             '/usr/bin/prlimit', "--nproc=$nproc:$nproc", '--',
             $loader, '--listen-fd', '3', '--ready-fd', '4',
             '--name', 'marker', $so
            or POSIX::_exit(127);
    }
    close $w;

    my $line = '';
    my $port = $sock->sockport;
    close $sock;
    if ($nproc > 1) {
        # it serves: ready, then the answer says its pid
        $line = <$r> // '';
        my $resp = Shuttle::Test::http_get($port, 'localhost', '/');
        $line .= $resp->{body} // '';
        kill 'KILL', $pid;     # --kill-child: the namespace goes too
    } else {
        $line = <$r> // '';
    }
    my $end = time + 10;
    while (waitpid($pid, POSIX::WNOHANG()) == 0 && time < $end) {
        select(undef, undef, undef, 0.02);
    }
    if (time >= $end) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    return ($? >> 8, $line);
}

sub marks {
    opendir my $d, $mark or die "$mark: $!";
    my @m = sort grep { !/^\./ } readdir $d;
    unlink map { "$mark/$_" } @m;
    return "@m";
}

# /usr/bin/prlimit is in util-linux, like unshare and setpriv
ok(-x '/usr/bin/prlimit', 'prlimit is there');

# enough tasks: init forks, the loader is pid 2, the service runs there
my ($rc, $line) = run_init(64);
like($line, qr/^ready\n/, 'with tasks to spare: the loader under its init '
                          . 'is ready');
like($line, qr/pid 2\n/, '... and the service runs as pid 2, init as 1');
like(marks(), qr/^constructor-pid2 main-pid2$/,
     '... its constructor and main ran in the loader, not in init');

# no task to spare: init cannot fork
($rc, $line) = run_init(1);
like($line, qr/^error: cannot start the loader under its init: fork: /,
     'no task to spare: the start fails, saying init could not fork');
is($rc, 1, '... exit status 1');
is(marks(), '', "... and none of the service's code ran, as pid 1 or else");
like($t->read_file('loader.log') // '',
     qr/error: cannot start the loader under its init: fork: Resource temporarily unavailable/,
     '... the log says why');

done_testing();
