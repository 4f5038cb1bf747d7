#!/usr/bin/perl

# The local platform of `make run` (conf/local.sh) from a clone that only
# root can enter, as a root user's clone in /root (mode 0700): nginx's
# workers (nobody) cannot reach .run/, so the data they need (the socket,
# the spool, the zone, static files, nginx's temporary files) lives in a
# directory outside the clone, .run/data a symlink to it, and the clone's
# modes are left alone.  The URL answers, a second project deploys, a
# second start keeps the projects, stop stops every process (by pid).
# Then a clone nobody can enter keeps today's layout, all under .run/.
#
# A copy of the built tree (conf/, include/, dashboard/, examples/hello,
# build/bin, the module), so nothing is rebuilt; SHUTTLE_LOCAL_STATE points
# to the test's own directory, never to /var/lib/shuttle-local.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use Test::More;

my $REPO = "$FindBin::Bin/..";
my @BUILT = ('build/bin/shuttle-builder', 'build/bin/shuttle-loader',
             'build/bin/shuttle', 'build/modules/ngx_http_shuttle_module.so');

plan skip_all => 'needs root: the workers are nobody only then' if $> != 0;
for my $f (@BUILT) {
    plan skip_all => "$f is not built (make)" unless -e "$REPO/$f";
}
plan skip_all => 'no /usr/sbin/nginx' unless -x ($ENV{NGINX} // '/usr/sbin/nginx');
plan skip_all => 'no user nobody' unless defined getpwnam('nobody');

my (@dirs, %pids, @started);

END {
    my $rc = $?;
    # whatever a failed test left running: stop, then the pids it saw
    for my $repo (@started) {
        system("sh $repo/conf/local.sh stop >/dev/null 2>&1")
            if -d "$repo/.run";
    }
    for my $pid (keys %pids) {
        kill 'KILL', $pid if alive($pid);
    }
    remove_tree($_) for grep { defined && -d } @dirs;
    $? = $rc;
}

# the clone: a copy of what conf/local.sh uses, in a directory of $mode
sub clone_into {
    my ($parent) = @_;
    my $repo = "$parent/repo";
    make_path("$repo/build/bin", "$repo/build/modules", "$repo/examples");
    system('cp', '-a', "$REPO/conf", "$REPO/include", "$REPO/dashboard",
           $repo) == 0 or die "cp conf include dashboard: $?";
    system('cp', '-a', "$REPO/examples/hello", "$repo/examples/") == 0
        or die "cp examples/hello: $?";
    for my $f (@BUILT) {
        system('cp', '-a', "$REPO/$f", "$repo/$f") == 0 or die "cp $f: $?";
    }
    return $repo;
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub local_sh {
    my ($repo, @args) = @_;
    my $q = join ' ', map { "'$_'" } @args;
    my $out = `sh '$repo/conf/local.sh' $q 2>&1`;
    return ($? >> 8, $out);
}

sub alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    # a zombie is gone for our purposes
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // '';
    return $stat !~ /^\d+ \(.*\) Z /s;
}

sub read_pid {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    my $pid = <$fh>;
    return undef unless defined $pid && $pid =~ /^(\d+)/;
    return $1;
}

# the pids of $root and of all its descendants
sub tree {
    my (@roots) = @_;
    my %children;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        $children{$2}{$1} = 1 if $line =~ /^(\d+) \(.*\) \S (\d+) /s;
    }
    my @all;
    my @todo = grep { defined } @roots;
    while (defined(my $pid = shift @todo)) {
        push @all, $pid;
        push @todo, keys %{ $children{$pid} || {} };
    }
    return @all;
}

sub running {
    my ($repo) = @_;
    my @p = tree(read_pid("$repo/.run/builder.pid"),
                 read_pid("$repo/.run/nginx/nginx.pid"));
    $pids{$_} = 1 for @p;
    return @p;
}

sub all_gone {
    my (@p) = @_;
    for (1 .. 50) {
        return 1 unless grep { alive($_) } @p;
        sleep 0.1;
    }
    diag 'still running: ' . join ' ', grep { alive($_) } @p;
    return 0;
}

sub get {
    my ($url) = @_;
    return scalar `curl -s --max-time 5 '$url'`;
}

sub mode { sprintf '%04o', (stat $_[0])[2] & 07777 }


# a clone only root can enter ---------------------------------------------------

my $top = tempdir('shuttle-local-run-XXXXXX', TMPDIR => 1);
push @dirs, $top;
chmod 0700, $top;
my $repo = clone_into($top);
chmod 0700, $repo;

# the test's own state root, where nobody can go
my $state = tempdir('shuttle-local-state-XXXXXX', TMPDIR => 1);
push @dirs, $state;
chmod 0755, $state;
$ENV{SHUTTLE_LOCAL_STATE} = $state;

my $hash = substr(sha256_hex($repo), 0, 12);
my $data = "$state/$hash/data";

my $port = free_port();
push @started, $repo;
my ($rc, $out) = local_sh($repo, 'start', $port);
is($rc, 0, 'conf/local.sh start from a clone in a 0700 directory')
    or diag $out, `tail -n 20 '$repo/.run/builder.log' '$repo/.run/nginx/error.log' 2>&1`;

my $url = "http://hello.localhost:$port/hello";
like($out, qr/^  shuttle is running: \Q$url\E$/m, 'it prints the URL');
like($out, qr/\Q$state\/$hash\E/, 'and says where the data is');
like(get($url), qr/Hello/, 'the URL answers Hello');
like(get("http://127.0.0.1:$port/dashboard/"), qr/<title>/,
     'the dashboard, from outside the clone the workers cannot enter');
like(get("http://127.0.0.1:$port/metrics"), qr/^shuttle_deployments\{/m,
     "the builder's metrics");
like(get("http://127.0.0.1:$port/metrics/nginx"),
     qr/^shuttle_http_requests_total\{project="hello",class="2xx"\} [1-9]/m,
     "nginx's metrics count hello's requests");

is(readlink("$repo/.run/data"), $data,
   '.run/data links to STATE/<hash of the clone>/data');
ok(-S "$state/$hash/builder.sock", 'the socket is beside it');
ok(-e "$data/zone", 'the zone is there');
is(mode($repo), '0700', "the clone's mode is left alone");
is(mode($top), '0700', "and its parent's");
is(mode("$repo/.run/env"), '0600', '.run/env is 0600');
like(`cat '$repo/.run/env'`,
     qr/^export SHUTTLE_API=http:\/\/localhost:$port\nexport SHUTTLE_API_KEY=\S+\n\z/,
     '.run/env: SHUTTLE_API and SHUTTLE_API_KEY');
is(system('setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
          'test', '-x', $data), 0, 'nobody reaches the data');

# a second project, deployed as a developer would, through the spool;
# it also says which client address nginx gave it
my $h2 = "$top/hello2";
make_path("$h2/src");
open my $fh, '>', "$h2/shuttle.json" or die "$h2/shuttle.json: $!";
print $fh qq({"name": "hello2"}\n);
close $fh;
open $fh, '>', "$h2/src/main.c" or die "$h2/src/main.c: $!";
print $fh <<'EOF';
#include <shuttle.h>

static void
hello(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "Hello from hello2!\n");
}

static void
client(shuttle_req *req, shuttle_res *res)
{
    const char  *xff, *real;

    xff = shuttle_req_header(req, "X-Forwarded-For");
    real = shuttle_req_header(req, "X-Real-IP");
    shuttle_printf(res, 200, "xff=%s real=%s\n", xff ? xff : "-",
                   real ? real : "-");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/hello", hello);
    shuttle_get(app, "/client", client);
    return 0;
}
EOF
close $fh;

my $env = `cat '$repo/.run/env'`;
my ($api) = $env =~ /SHUTTLE_API=(\S+)/;
my ($key) = $env =~ /SHUTTLE_API_KEY=(\S+)/;
my $dout = `SHUTTLE_API='$api' SHUTTLE_API_KEY='$key' NO_COLOR=1 '$repo/build/bin/shuttle' deploy '$h2' 2>&1`;
is($?, 0, 'a second deploy (hello2)') or diag $dout;
my $url2 = "http://hello2.localhost:$port/hello";
like(get($url2), qr/Hello/, 'hello2 answers');
is(scalar `curl -s --max-time 5 -H 'X-Forwarded-For: 10.9.9.9' -H 'X-Real-IP: 10.9.9.9' 'http://hello2.localhost:$port/client'`,
   "xff=127.0.0.1 real=127.0.0.1\n",
   "a client's forged X-Forwarded-For and X-Real-IP: the service sees the "
   . "address nginx saw, alone");

my @first = running($repo);
ok(@first >= 4, 'builder, nginx (master and workers), loaders: '
   . scalar(@first) . ' processes');

# a second start, as make run IDLE=2s does: the first is stopped, the
# projects are kept, and scale to zero after 2 s without a request
{
    local $ENV{IDLE} = '2s';
    ($rc, $out) = local_sh($repo, 'start', $port);
}
is($rc, 0, 'a second start, IDLE=2s') or diag $out;
ok(all_gone(@first), "the first start's processes are gone");
like(get($url2), qr/Hello/, 'hello2 still answers');
is(readlink("$repo/.run/data"), $data, 'the same data');

sub project_state {
    my $j = `curl -s --max-time 5 -H 'Authorization: Bearer $key' '$api/v1/projects/$_[0]'`;
    return $j =~ /"state":\s*"(\w+)"/ ? $1 : '';
}
# the loaders of project $name: their command line names it
sub loaders_of {
    my ($name) = @_;
    return grep {
        my $cmd = '';
        if (open my $fh, '<', "/proc/$_/cmdline") {
            local $/;
            $cmd = <$fh> // '';
        }
        $cmd =~ m{shuttle-loader\0.*\0--name\0\Q$name\E\0}s && alive($_);
    } map { m{/proc/(\d+)$} ? $1 : () } glob '/proc/[0-9]*';
}

# both idle, a request to one wakes it alone, each way round: whichever
# the builder lists first, a wake of the wrong one shows
my %body = (hello => "Hello, world!\n", hello2 => "Hello from hello2!\n");
for my $pair (['hello2', 'hello'], ['hello', 'hello2']) {
    my ($wake, $stay) = @$pair;
    my $end = time + 15;
    sleep 0.2 until (project_state('hello') eq 'idle'
                     && project_state('hello2') eq 'idle') || time > $end;
    is(project_state($_), 'idle', "$_ is idle after 2 s (IDLE=2s)")
        for 'hello', 'hello2';
    is_deeply([loaders_of($stay)], [], "... $stay has no loader");
    is(get("http://$wake.localhost:$port/hello"), $body{$wake},
       "the next request to $wake is answered by $wake");
    ok(scalar loaders_of($wake), "... ${wake}'s loader started");
    is_deeply([loaders_of($stay)], [], "... ${stay}'s did not");
    is(project_state($stay), 'idle', "... $stay is idle still");
}

my @second = running($repo);
($rc, $out) = local_sh($repo, 'stop');
is($rc, 0, 'conf/local.sh stop') or diag $out;
like($out, qr/^nginx stopped\nbuilder stopped\n\z/, 'it stops nginx and the builder');
ok(all_gone(@second), 'every process is gone (' . scalar(@second) . ' pids)');
is(get($url), '', 'the URL no longer answers');

($rc, $out) = local_sh($repo, 'stop');
is($rc, 0, 'stop again: nothing to stop, exit 0') or diag $out;
is(mode($repo), '0700', "the clone's mode is still 0700");


# a clone nobody can enter: today's layout ---------------------------------------

my $open = tempdir('shuttle-local-open-XXXXXX', TMPDIR => 1);
push @dirs, $open;
chmod 0755, $open;
my $repo2 = clone_into($open);
chmod 0755, $repo2;

$port = free_port();
push @started, $repo2;
($rc, $out) = local_sh($repo2, 'start', $port);
is($rc, 0, 'start from a clone nobody can enter') or diag $out;
ok(-d "$repo2/.run/data" && !-l "$repo2/.run/data", '.run/data is a directory');
ok(-S "$repo2/.run/builder.sock", 'the socket is .run/builder.sock');
unlike($out, qr/cannot enter/, 'nothing said about the data');
like(get("http://hello.localhost:$port/hello"), qr/Hello/, 'the URL answers');
ok(!-e "$state/" . substr(sha256_hex($repo2), 0, 12),
   'nothing outside the clone');

my @third = running($repo2);
($rc, $out) = local_sh($repo2, 'stop');
is($rc, 0, 'stop') or diag $out;
ok(all_gone(@third), 'every process is gone (' . scalar(@third) . ' pids)');

done_testing;
