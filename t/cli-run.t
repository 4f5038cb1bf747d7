#!/usr/bin/perl

# shuttle run: a project made by shuttle init, built with the builder's
# rules in a copy of it (a scratch directory under the XDG cache, gone
# after the run) and served by the real shuttle-loader on
# 127.0.0.1:PORT in the foreground, no nginx, no builder; the service's
# log on the terminal; SIGINT (Ctrl-C) drains and stops it, exit 0.  A
# build error and a port in use exit 1, saying why.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $bin = Shuttle::Platform::shuttle_bin();
plan skip_all => "$bin is not built (make)" unless -x $bin;
plan skip_all => Shuttle::Platform::loader_bin() . ' is not built (make)'
    unless -x Shuttle::Platform::loader_bin();

my $t = Shuttle::Test->new;
my $dir = $t->testdir;
make_path("$dir/home");

my %env = (PATH => $ENV{PATH} // '/usr/bin:/bin', HOME => "$dir/home",
           LANG => 'C');

my ($rc, $out, $err) = Shuttle::Platform::run_cmd([$bin, 'init', 'demo'],
    env => \%env, dir => $dir);
is($rc, 0, 'shuttle init demo') or diag $err;

my $demo = "$dir/demo";

# shuttle run in the background, its output in files; stopped by pid
my @running;

sub run_bg {
    my ($port, $n) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/run-$n.out";
        open STDERR, '>', "$dir/run-$n.err";
        %ENV = %env;
        chdir $demo or POSIX::_exit(126);
        exec $bin, 'run', '--port', $port or POSIX::_exit(127);
    }
    push @running, $pid;
    return $pid;
}

# waits for the exit of $pid: its status (128 + signal), undef on timeout
sub reap {
    my ($pid, $timeout) = @_;
    my $end = time + ($timeout // 10);
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            @running = grep { $_ != $pid } @running;
            return ($? & 127) ? 128 + ($? & 127) : $? >> 8;
        }
        sleep 0.02;
    }
    return undef;
}

sub cmdline {
    open my $fh, '<', "/proc/$_[0]/cmdline" or return '';
    local $/;
    return join ' ', split /\0/, <$fh> // '';
}

sub children {
    my ($ppid) = @_;
    opendir my $d, '/proc' or return;
    return grep {
        my $fh;
        open($fh, '<', "/proc/$_/stat")
            && (<$fh> // '') =~ /^\d+ \(.*\) \S (\d+)/s && $1 == $ppid
    } grep { /^\d+$/ } readdir $d;
}

END {
    for my $pid (@running) {
        kill 'TERM', $pid;
        reap($pid, 5) // do { kill 'KILL', $pid; waitpid($pid, 0) };
    }
}


# serving ----------------------------------------------------------------------------

# a port locked for this test, not held: shuttle run binds it
my ($port) = $t->port_range(1);

my $pid = run_bg($port, 1);

# ready: the URL is printed on stdout once the loader says "ready"
ok($t->wait_until(sub { ($t->read_file('run-1.out') // '') =~ m{^http://} },
                  20),
   'shuttle run prints its URL once the service is ready')
    or diag $t->read_file('run-1.err');
is($t->read_file('run-1.out'), "http://127.0.0.1:$port/\n",
   'the URL on stdout is http://127.0.0.1:PORT/');

my $errs = $t->read_file('run-1.err');
my $cache = "$dir/home/.cache/shuttle/run";
my ($scratch) = $errs =~ m{^Building \Q$demo\E \(a copy in (\Q$cache\E/demo\.\w{6})\)$}m;
ok($scratch, 'built in a copy, in the XDG cache') or diag $errs;
$scratch //= '/nonexistent';
ok(-f "$scratch/service.so", '... into service.so beside the copy');
ok(-f "$scratch/src/src/main.c" && !-e "$demo/.shuttle",
   '... the project\'s files copied, nothing written in the project');
like($errs, qr{^cc .*-I\S*/include src/main\.c -o \Q$scratch\E/src/service\.so$}m,
     'the build command is shown, with the SDK include directory');

my $r = http_get($port, 'localhost', '/');
is($r->{status}, 200, 'GET /: 200');
is($r->{body}, "Hello from demo! Try /hello/yourname\n", 'GET /: the body');

$r = http_get($port, 'localhost', '/hello/bob');
is($r->{body}, "Hello, bob!\n", 'GET /hello/bob: a path parameter');

$r = http_get($port, 'localhost', '/health');
is($r->{headers}{'content-type'}, 'application/json', 'GET /health: JSON');

ok($t->wait_until(sub { ($t->read_file('run-1.err') // '')
                        =~ /saying hello to bob/ }),
   'the service\'s log is on the terminal');

# the loader in its sandbox: the init of its pid namespace, and the
# loader proper as its only child; the port bound by shuttle run
my @loaders = children($pid);
is(scalar @loaders, 1, 'one process under shuttle run');
like(cmdline($loaders[0]), qr/^shuttle-loader --listen-fd 3 .*\Q$scratch\E\/service\.so$/,
     '... shuttle-loader, given the socket, with the service built');
is(scalar(children($loaders[0])), 1, '... the loader proper under it');
like(do { open my $fh, '<', "/proc/$loaders[0]/status"; local $/; <$fh> },
     qr/^Seccomp:\s+2$/m, '... sandboxed: a seccomp filter');

kill 'INT', $pid;
is(reap($pid), 0, 'SIGINT (Ctrl-C): shuttle run exits 0');
like($t->read_file('run-1.err'), qr/draining.*\n(.*\n)*Stopped\n\z/,
     'the loader drained, then "Stopped"');
ok(!-e "/proc/$loaders[0]", 'the loader is gone');
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port),
   'nothing listens on the port any more');
ok(!-e $scratch, 'the copy is removed');


# the port in use ------------------------------------------------------------------

my $busy = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                 Listen => 1, ReuseAddr => 1)
    or die "bind $port: $@";
$pid = run_bg($port, 2);
is(reap($pid, 20), 1, 'the port in use: exit 1');
like($t->read_file('run-2.err'),
     qr/shuttle run: the loader did not start: .*\Q127.0.0.1:$port\E/,
     '... the loader\'s reason, naming the address');
close $busy;


# a build error ----------------------------------------------------------------------

my $main = $t->read_file("$demo/src/main.c");
$t->write_file("$demo/src/main.c", $main =~ s/return 0;/return 0 oops/r);

($rc, $out, $err) = Shuttle::Platform::run_cmd([$bin, 'run', '--port', $port],
    env => \%env, dir => $demo, timeout => 30);
is($rc, 1, 'a build error: exit 1');
like($err, qr/src\/main\.c:\d+:\d+: error: /, 'the compiler\'s message shown');
like($err, qr/^shuttle run: demo: build failed: cc exited with status 1/m,
     'the reason, naming the project');
opendir(my $cd, $cache) or die "$cache: $!";
is_deeply([ grep { !/^\.\.?$/ } readdir $cd ], [],
          'no copy left from the failure');


# the scratch copy's folder: $XDG_CACHE_HOME's, only if no one else may
# write it (on a shared machine, who could swap the copy)
$t->write_file("$demo/src/main.c", $main);
my $xdg = "$dir/xdg";
make_path("$xdg/shuttle/run");
chmod 0777, "$xdg/shuttle/run";
($rc, $out, $err) = Shuttle::Platform::run_cmd([$bin, 'run', '--port', $port],
    env => { %env, XDG_CACHE_HOME => $xdg }, dir => $demo, timeout => 30);
is($rc, 2, 'a scratch folder others may write: exit 2');
like($err, qr{^shuttle run: \Q$xdg\E/shuttle/run is not a folder of yours that only you can write}m,
     '... saying so');
unlike($err, qr/^Building/m, '... before anything is copied or built');

done_testing;
