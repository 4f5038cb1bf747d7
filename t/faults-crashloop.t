#!/usr/bin/perl

# A new deployment that becomes ready and then crash-loops (every request
# kills it): the builder restarts it with backoff, declares it Crashed
# after 5 crashes within 60 s, and, since it went live minutes ago, the
# deployment it replaced serves again (an automatic rollback), without a
# build.  The crashed one says why; the one back says it was rolled back.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

my $p = Shuttle::Platform->new;
my $t = $p->t;
my $dir = $p->testdir;

sub app {
    my ($v, $body) = @_;
    return Shuttle::Fault::app_src($p, 'loop', $v, body => $body);
}

my ($rc, $out, $err) = $p->cli(['deploy', app(1, '')]);
is($rc, 0, 'v1 deploys') or diag $err;
my ($v1) = $err =~ /^Deployment (\d+)/m;
is($p->app_get('loop', '/')->{body}, "loop v1\n", 'v1 serves');

# v2 is ready (its main returns), then dies on every request
($rc, $out, $err) = $p->cli(['deploy', app(2, '*(volatile int *) 0 = 1;')]);
is($rc, 0, 'v2 deploys: it becomes ready') or diag $err;
my ($v2) = $err =~ /^Deployment (\d+)/m;

# requests meanwhile: each crashes it, until the builder gives up on it
my ($n, $body) = (0, '');
$t->wait_until(sub {
    $n++;
    my $r = eval { $p->app_get('loop', '/', timeout => 5) };
    $body = $r ? $r->{body} : '';
    $body eq "loop v1\n";
}, 30);
is($body, "loop v1\n", "after $n requests, v1 serves again")
    or diag $p->builder_log;

my $d2 = $p->v1('alice', 'GET', "/v1/deployments/$v2")->{json};
is($d2->{state}, 'crashed', 'v2 is crashed');
like($d2->{reason}, qr/loader crashed 5 times within 60 s, last: pid \d+ killed by signal 11/,
     '... and says why');

my $d1 = $p->v1('alice', 'GET', "/v1/deployments/$v1")->{json};
is($d1->{state}, 'running', 'v1 is running');
like(join("\n", map { "$_->{state}: " . ($_->{reason} // '') }
               @{ $d1->{transitions} // [] }),
     qr/loading: automatic rollback: #$v2 crash-looped \d+ s after it went live\nrunning/,
     '... and its history says it is back in an automatic rollback')
    or diag explain $d1;
is($d1->{build_ms}, $p->v1('alice', 'GET', "/v1/deployments/$v1")
                       ->{json}{build_ms}, '... without a build');
is($p->v1('alice', 'GET', '/v1/projects/loop')->{json}{current} // '',
   $v1, 'the project\'s current deployment is v1');
like($p->builder_log, qr/deploy loop #$v2: automatic rollback: #$v2 crash-looped \d+ s after it went live: #$v1, which it replaced, starts again/,
     'the builder log says so');
is(Shuttle::Fault::metric($p, 'shuttle_rollbacks_total{kind="automatic"}'), 1,
   '/metrics counts one automatic rollback');
cmp_ok(Shuttle::Fault::metric($p, 'shuttle_loader_crashes_total') // 0,
       '>=', 5, '... and the crashes before it');

# it stays so: a request later is still v1, and nothing restarts v2
my $c = Shuttle::Fault::client($p, ['loop'], ok => qr/^loop v1\n\z/,
                               pause => 0.01);
$t->wait_until(sub { 0 }, 1);
my $r = $c->stop;
Shuttle::Fault::all_served($r, 'then v1 serves', min => 10);
Shuttle::Fault::report('a new deployment crash-loops after it is ready',
    $r, note => "automatic rollback to the one it replaced after $n "
                . 'requests');

$p->stop;

done_testing();
