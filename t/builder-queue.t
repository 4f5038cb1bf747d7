#!/usr/bin/perl

# The build queue, with one build job: uploads wait in order, a newer
# upload of a project supersedes its older one still waiting, a first
# deploy shows "queued" in the zone while a redeploy leaves the zone alone
# until the switch; and GET .../logs?follow=1 streams a build log as it
# is written, ending when the deployment settles.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test qw(:DEFAULT http_request read_response);

my $t = Shuttle::Test->new;
my $hello = Shuttle::Test::repo() . '/examples/hello';

# hello, built by its own Makefile, slowly: it holds the one build job
$t->write_file('slow/src/main.c', $t->read_file("$hello/src/main.c"));
$t->write_file('slow/Makefile', <<'EOF');
service.so: src/main.c
	@echo compiling slowly
	sleep 1
	$(CC) -std=gnu11 -O2 -fPIC -shared -I$(SHUTTLE_INCLUDE) -o $@ src/main.c
EOF
my $slow = $t->testdir . '/slow';

$t->builder_start('--jobs', '1', '--apps-url', 'http://{name}.apps.test');

sub state_of { $t->api('alice', 'GET', "/v1/deployments/$_[0]")->{json} }

sub transition_at {
    my ($d, $state) = @_;
    my ($tr) = grep { $_->{state} eq $state } @{ $d->{transitions} };
    return $tr ? $tr->{at} : undef;
}


# the one job is busy: later uploads wait -----------------------------------

my $r = $t->deploy('slow', $slow);
my $s1 = $r->{json}{id};
ok($t->wait_until(sub { state_of($s1)->{state} eq 'building' }),
   "slow #$s1 is building");

$r = $t->deploy('fast', $hello);
my $f1 = $r->{json}{id};
is($r->{json}{state}, 'queued', "fast #$f1 is queued");
like($t->zone_cmd('list'), qr/^fast queued 0\.0\.0\.0:0 $f1$/m,
     "a first deploy puts its zone slot in queued (#$f1)");

$r = $t->deploy('fast', $hello);
my $f2 = $r->{json}{id};
is($r->{json}{state}, 'queued', "fast #$f2 is queued");

my $d = state_of($f1);
is($d->{state}, 'superseded', "#$f1, still waiting, is superseded");
is($d->{superseded_by}, $f2, "... by #$f2");
ok(!-e $t->builder_data . "/projects/fast/deployments/$f1/upload.tar.gz",
   '... its upload removed');
like($t->api('alice', 'GET', "/v1/deployments/$f1/logs")->{body},
     qr/superseded by #$f2/, '... its log says so');
like($t->zone_cmd('list'), qr/^fast queued 0\.0\.0\.0:0 $f2$/m,
     "the zone shows #$f2 queued");


# follow the slow build -----------------------------------------------------

my $s = $t->builder_connect;
print $s http_request('builder', "/v1/deployments/$s1/logs?follow=1",
                      headers => [ 'X-Shuttle-Key' => 'alice' ]);
my $buf = '';

ok($t->read_until($s, \$buf, qr/compiling slowly/),
   'logs?follow=1 streams the build log as it is written');
is(state_of($s1)->{state}, 'building', '... while the build runs');
like($buf, qr/^HTTP\/1\.1 200 /, '... 200');
like($buf, qr/^Transfer-Encoding: chunked\r$/mi, '... chunked');

$r = read_response($s, \$buf, timeout => 10);
close $s;
ok(!$r->{incomplete}, 'the stream ends');
is(state_of($s1)->{state}, 'running', '... once the deployment settled');
like($r->{body}, qr/^shuttle: running on 127\.0\.0\.1:\d+$/m,
     '... with its last line');

my $d1 = $t->wait_deployment('alice', $f2, qr/^(running|failed)$/);
is($d1->{state}, 'running', "fast #$f2 ran after slow #$s1");
my $slow1 = state_of($s1);
ok(transition_at($d1, 'building') ge transition_at($slow1, 'built'),
   '... its build started once the one job was free');

$r = $t->api('alice', 'GET', "/v1/deployments/$s1/logs?follow=1");
like($r->{body}, qr/running on/, 'following a settled deployment: its log');


# a redeploy leaves the zone alone until the switch -------------------------

my $port = $slow1->{port};
my $zone = "slow running 127.0.0.1:$port $s1";

$r = $t->deploy('slow', $slow);
my $s2 = $r->{json}{id};
like($t->zone_cmd('list'), qr/^\Q$zone\E$/m,
     "redeploy #$s2 queued: the zone still routes to #$s1");
ok($t->wait_until(sub { state_of($s2)->{state} eq 'building' }),
   "#$s2 is building");
like($t->zone_cmd('list'), qr/^\Q$zone\E$/m, '... the zone has not changed');

$d = $t->wait_deployment('alice', $s2, qr/^(running|failed)$/);
is($d->{state}, 'running', "#$s2 is running");
like($t->zone_cmd('list'), qr/^slow running 127\.0\.0\.1:$d->{port} $s2$/m,
     '... and now the zone routes to it');

is($t->api('alice', 'GET', '/v1/projects/slow')->{json}{url},
   'http://slow.apps.test', 'the project URL from --apps-url');


# two jobs: two projects of a key build at once (--key-jobs 2); SIGTERM
# cancels them ---------------------------------------------------------------

$t->builder_stop;
$t->builder_start('--jobs', '2', '--key-jobs', '2');

my @ids = map { $t->deploy("slow$_", $slow)->{json}{id} } 1 .. 2;
ok($t->wait_until(sub {
       2 == grep { state_of($_)->{state} eq 'building' } @ids }),
   "--jobs 2: slow1 #$ids[0] and slow2 #$ids[1] build at once");

$r = $t->deploy('fast', $hello);
my $f3 = $r->{json}{id};
is(state_of($f3)->{state}, 'queued', "#$f3 waits: both jobs are busy");

is($t->builder_stop('TERM'), 0, 'SIGTERM during the builds');
$t->builder_start('--jobs', '2', '--key-jobs', '2');

for my $id (@ids) {
    $d = state_of($id);
    is($d->{state}, 'failed', "#$id failed");
    is($d->{reason}, 'builder stopped', '... builder stopped');
}
$d = $t->wait_deployment('alice', $f3, qr/^(running|failed)$/);
is($d->{state}, 'running', "#$f3, still queued at the stop, ran after it");

done_testing;
