#!/usr/bin/perl

# Loaders under supervision: one killed with SIGKILL comes back on the
# same port; a service that fails or crashes as it starts fails its
# deployment with the loader's message and the end of its runtime.log; one
# too slow to start fails on --start-timeout; one that keeps crashing
# becomes crashed, its zone slot failed.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $hello = Shuttle::Test::repo() . '/examples/hello';

sub service {
    my ($name, $main, $top) = @_;
    $top //= '';
    $t->write_file("$name/src/main.c", <<"EOF");
#include <shuttle.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

$top

static void
hello(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "Hello, world!\\n");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/hello", hello);
$main
}
EOF
    return $t->testdir . "/$name";
}

my $refuses = service('refuses', '    return 1;');
my $aborts = service('aborts', <<'EOF');
    fprintf(stderr, "no database configured\n");
    abort();
EOF
my $sleeps = service('sleeps', "    sleep(30);\n    return 0;");
my $crashes = service('crashes', <<'EOF', <<'EOF2');
    pthread_t  t;

    pthread_create(&t, NULL, later, NULL);
    return 0;
EOF
static void *
later(void *arg)
{
    usleep(100000);
    fprintf(stderr, "crashing now\n");
    abort();
}
EOF2

$t->builder_start('--start-timeout', '1');


# SIGKILL: restarted, same port ----------------------------------------------

my $r = $t->deploy('hello', $hello);
my $id = $r->{json}{id};
my $d = $t->wait_deployment('alice', $id, qr/^running$/);
my $port = $d->{port};
my ($pid) = $t->loader_pids;

kill 'KILL', $pid;
my ($new) = $t->wait_until(sub {
    my @p = grep { $_ != $pid } $t->loader_pids;
    return $p[0];
});
ok($new, "loader $pid killed: a new one, $new");
is(http_get($port, 'localhost', '/hello')->{body}, "Hello, world!\n",
   "... serving on the same port, $port");
is($t->zone_cmd('list'), "hello running 127.0.0.1:$port $id\n",
   '... the zone unchanged');

$d = $t->api('alice', 'GET', "/v1/deployments/$id")->{json};
is($d->{state}, 'running', "#$id is still running");
like($d->{transitions}[-1]{reason},
     qr/^loader restarted after pid $pid killed\b.*: pid $new on /,
     '... its last transition says the loader restarted, and after what');


# services that do not start ------------------------------------------------

$r = $t->deploy('refuses', $refuses);
$d = $t->wait_deployment('alice', $r->{json}{id}, qr/^(running|failed)$/);
is($d->{state}, 'failed', 'main returns 1: failed');
like($d->{reason}, qr/^start failed: service main returned 1/,
     "... with the loader's message");
like($d->{reason}, qr/last lines of runtime\.log:\n.*loader/s,
     '... and the end of the runtime log');

$r = $t->deploy('aborts', $aborts);
$d = $t->wait_deployment('alice', $r->{json}{id}, qr/^(running|failed)$/);
is($d->{state}, 'failed', 'main aborts: failed');
like($d->{reason}, qr/^start failed: .*signal 6/,
     '... of SIGABRT');
like($d->{reason}, qr/no database configured/,
     '... what the service said is in the reason');
like($t->zone_cmd('list'), qr/^aborts failed 0\.0\.0\.0:0 $d->{id}$/m,
     '... zone: failed');

$r = $t->deploy('sleeps', $sleeps);
$d = $t->wait_deployment('alice', $r->{json}{id}, qr/^(running|failed)$/);
is($d->{state}, 'failed', 'main sleeps past --start-timeout 1: failed');
like($d->{reason}, qr/not ready within 1000 ms/, "... reason: not ready");
ok($t->wait_until(sub { !grep { /sleeps/ } map { Shuttle::Test::_cmdline($_) }
                                                $t->loader_pids }),
   '... its loader is gone');

is(http_get($port, 'localhost', '/hello')->{body}, "Hello, world!\n",
   'hello serves on through all that');


# a crash loop --------------------------------------------------------------

$r = $t->deploy('crashes', $crashes);
$id = $r->{json}{id};
$d = $t->wait_deployment('alice', $id, qr/^(crashed|failed)$/, 20);
is($d->{state}, 'crashed', 'a service that keeps crashing: crashed');
like($d->{reason},
     qr/^loader crashed 5 times within 60 s, last: pid \d+ killed by signal 6/,
     "... after 5 crashes");
like($d->{reason}, qr/crashing now/, '... with the end of its runtime log');
is(scalar(grep { $_->{state} eq 'running' } @{ $d->{transitions} }), 5,
   '... it ran 5 times, restarted 4');
like($t->zone_cmd('list'), qr/^crashes failed 0\.0\.0\.0:0 $id$/m,
     '... zone: failed');
is($t->api('alice', 'GET', '/v1/projects/crashes')->{json}{state}, 'failed',
   '... project state: failed');
ok(!grep({ Shuttle::Test::_cmdline($_) =~ /crashes/ } $t->loader_pids),
   '... no loader left for it');

done_testing;
