#!/usr/bin/perl

# Issue 11, item 4: a zone that is missing costs a worker one open() a
# second, not one a request.  A worker is traced (strace) while it answers
# 200 requests for an app with no zone file: it may try the file once in
# each second the requests span, no more.  Then the zone appears and the
# app is served within a second, without a reload.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use Shuttle::Test;

plan skip_all => 'needs strace' unless grep { -x "$_/strace" }
                                       split /:/, $ENV{PATH};

my $t = Shuttle::Test->new;

$t->write_nginx_conf(<<'EOF2');
    shuttle_zone %%ZONE%%;

    upstream apps {
        shuttle_route;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;
        location / { proxy_pass http://apps; }
    }

    server {
        listen 127.0.0.1:%%PORT_A%%;
        location / { return 200 "A\n"; }
    }
EOF2

$t->run;

my $port = $t->port(1);
my @workers = $t->worker_pids;
my $zone = $t->zone;

# strace on every worker: the zone's open()s, to a file
my $trace = $t->testdir . '/trace';
my $strace = fork // die "fork: $!";
if ($strace == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    exec 'strace', '-f', '-e', 'trace=open,openat', '-o', $trace,
         map { ('-p', $_) } @workers;
    POSIX::_exit(127);
}

# attached: the trace file says so once strace runs
$t->wait_until(sub { -e $trace }, 5);
sleep 0.3;

my $t0 = time;
my $n503 = 0;
for (1 .. 200) {
    $n503++ if http_get($port, 'alpha.apps.test', '/')->{status} == 503;
}
my $seconds = int(time) - int($t0) + 1;

kill 'INT', $strace;
waitpid($strace, 0);

is($n503, 200, '200 requests with no zone: 503 each');
my $opens = () = $t->read_file('trace') =~ /open(at)?\(.*\Q$zone\E/g;
ok($opens <= $seconds * @workers,
   "... the zone tried $opens times in $seconds s by "
   . @workers . " worker(s): once a second at most");

# the zone appears: served within a second or so, no reload
$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('A'), 'running', 1);
my $until = time + 3;
my $r;
do { $r = http_get($port, 'alpha.apps.test', '/') }
    until $r->{status} == 200 || time > $until || !sleep 0.05;
is($r->{status}, 200, 'the zone appears: the app answers, no reload');


# issue 11, item 2: the file is validated once, then only what was
# validated is used; a file rewritten or shrunk under the mapping gives a
# 503 and an error-log line, never a dead worker

sub poke {
    my ($offset, $pack) = @_;
    open my $fh, '+<', $zone or die "$zone: $!";
    binmode $fh;
    sysseek($fh, $offset, 0);
    syswrite($fh, $pack) == length $pack or die "write $zone: $!";
    close $fh;
}

sub workers_alive {
    my @now = $t->worker_pids;
    return "@now" eq "@workers"
           && $t->error_log !~ /exited on signal/;
}

# the header rewritten in place: a huge slot count, a header size past
# the end of the file
poke(20, pack('V', 0x40000000));
poke(12, pack('V', 0x7fffffff));
for (1 .. 20) {
    $r = http_get($port, 'alpha.apps.test', '/');
    http_get($port, "p$_.apps.test", '/');
}
is($r->{status}, 200, 'the header rewritten in place: still served from '
                      . 'what was validated');
ok(workers_alive(), '... and no worker died');

# truncated under the mapping
truncate $zone, 256 or die "truncate: $!";
$r = http_get($port, 'alpha.apps.test', '/');
is($r->{status}, 503, 'the file truncated to 256 bytes: 503');
ok(workers_alive(), '... and no worker died');
like($t->error_log, qr/shuttle zone "\Q$zone\E": the file shrank under its mapping/,
     '... the error log says why');

# a new zone, then a short file copied over it (the same inode)
unlink $zone;
$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('A'), 'running', 1);
$t->wait_until(sub { http_get($port, 'alpha.apps.test', '/')->{status}
                     == 200 }, 3);
my $short = $t->testdir . '/short';
$t->write_file('short', 'x' x 4096);
system('cp', $short, $zone) == 0 or die 'cp';
for (1 .. 20) {
    $r = http_get($port, 'alpha.apps.test', '/');
}
isnt($r->{status}, 200, 'a short file copied over it: not served '
                        . "($r->{status})");
ok(workers_alive(), '... and no worker died');

done_testing();
