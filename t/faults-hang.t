#!/usr/bin/perl

# A loader that hangs, stops answering without dying (SIGSTOPped here:
# every thread of it stopped, as a deadlock would leave it): the
# builder's health check ("OPTIONS *" to its port, --health-check) finds
# it, kills it after three checks in a row without an answer, and the
# restart serves again; the builder log, the runtime log and the
# deployment's reason say "hung".  A loader that answers is never killed,
# and the health check does not keep an idle project awake.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Time::HiRes qw(time sleep);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

my $p = Shuttle::Platform->new(
    builder_args => ['--health-check', '300ms', '--health-timeout', '200ms',
                     '--idle', '0'],
    upstream_keepalive_timeout => '1s');
my $t = $p->t;
my $repo = Shuttle::Test::repo();

my ($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/hello"]);
is($rc, 0, 'hello deploys') or diag $err;
my ($id) = $err =~ /^Deployment (\d+)/m;

sub hello_ok {
    my $r = eval { $p->app_get('hello', '/hello', timeout => 2) };
    return $r && $r->{status} == 200 && $r->{body} eq "Hello, world!\n";
}

ok(hello_ok(), 'it answers');


# a loader that answers its health checks is left alone ----------------------

my ($pid) = $t->loader_pids;
my $mark = length $p->builder_log;
# 10 checks' worth
my $end = time + 3;
my ($asked, $answered) = (0, 0);
while (time < $end) { $asked++; $answered += hello_ok(); sleep 0.05 }
cmp_ok($asked, '>=', 10, "$asked requests to hello in 3 s");
is($answered, $asked, "... each answered 200 \"Hello, world!\" by hello");
is(($t->loader_pids)[0], $pid, 'a loader that answers is left alone');
unlike(substr($p->builder_log, $mark), qr/health check failed/,
       '... no health check failed');


# all its threads stopped: hung -----------------------------------------------

# the loader and what it runs (a sandboxed loader is an init and its child)
sub family {
    my ($top) = @_;
    my @all = ($top);
    for (my $i = 0; $i < @all; $i++) {
        for my $f (glob "/proc/$all[$i]/task/*/children") {
            open my $fh, '<', $f or next;
            push @all, split ' ', (<$fh> // '');
        }
    }
    return @all;
}

my @stopped = family($pid);
my $t0 = time;
kill 'STOP', @stopped;

my $r = eval { $p->app_get('hello', '/hello', timeout => 1) };
ok(!$r || $r->{status} != 200, 'a stopped loader does not answer');

ok($t->wait_until(sub { $p->builder_log =~ /loader pid $pid is hung/ }, 10),
   'the builder finds it hung')
    or diag $p->builder_log;
my $found = time - $t0;
like($p->builder_log, qr/health check failed \(1 of 3\)/,
     '... after health checks that failed');

my $new;
ok($t->wait_until(sub {
       ($new) = grep { $_ != $pid } $t->loader_pids;
       $new && hello_ok();
   }, 10), 'killed and restarted: it answers again')
    or diag $p->builder_log;
my $back = time - $t0;
ok(!kill(0, $pid), '... the hung loader is gone');

my $d = $p->v1('alice', 'GET', "/v1/deployments/$id")->{json};
is($d->{state}, 'running', 'the deployment is running');
like($d->{reason} // '',
     qr/restarted after pid $pid hung: no answer to 3 health checks in a row/,
     '... and its reason says it hung') or diag explain $d;
like($p->builder_log, qr/loader pid $pid hung: no answer to 3 health checks/,
     'the builder log says so');
cmp_ok(Shuttle::Fault::metric($p, 'shuttle_health_check_failures_total') // 0,
       '>=', 3, '/metrics counts the failed health checks');
cmp_ok(Shuttle::Fault::metric($p, 'shuttle_loader_restarts_total') // 0,
       '>=', 1, '... and the restart');

Shuttle::Fault::report('a loader hung (SIGSTOP), health check 300ms/200ms',
    undef, note => sprintf('found in %.1f s, serving again in %.1f s',
                           $found, $back));


# an idle project: the health check does not wake it, nor keep it awake ------

$r = $p->v1('alice', 'PUT', '/v1/projects/hello/scale',
            body => { idle => '1s' });
is($r->{status}, 200, 'hello scales to zero after 1s') or diag $r->{body};
ok($t->wait_until(sub {
       ($p->v1('alice', 'GET', '/v1/projects/hello')->{json}{state} // '')
           eq 'idle'
   }, 15), 'it goes idle though the health check asks every 300 ms')
    or diag $p->builder_log;
ok($t->wait_until(sub { !$t->loader_pids }, 5), '... no loader')
    or diag explain [map { `cat /proc/$_/cmdline` } $t->loader_pids];
ok(hello_ok(), 'and a request wakes it');

$p->stop;

done_testing();
