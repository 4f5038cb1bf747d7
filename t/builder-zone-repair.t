#!/usr/bin/perl

# Issue 11, item 8: a zone slot a writer left torn (a builder killed in
# the middle of writing it: odd sequence) is repaired by the builder, at
# start and on its own schedule, so the project serves again without
# waiting for its slot to be written for some other reason.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new;
my $t = $p->t;
my $repo = Shuttle::Test::repo();
my $poke = "$repo/build/t/zone-poke";

my ($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/hello"]);
is($rc, 0, 'hello deploys') or diag $err;
is($p->app_get('hello', '/hello')->{status}, 200, 'hello answers');

# torn while the builder runs: repaired on its schedule (every 5 s).  The
# deploy's own zone writes are over once the zone shows it running.
ok($t->wait_until(sub { $t->zone_cmd('list') =~ /^hello running / }, 5),
   'the zone shows hello running');
system($poke, $t->zone, 'hello', 'odd') == 0 or die 'zone-poke';
is($p->app_get('hello', '/hello')->{status}, 503,
   'its slot left torn: 503 "being updated"');
ok($t->wait_until(sub { $p->app_get('hello', '/hello')->{status} == 200 },
                  8),
   'the builder repairs it: 200 again, within its 5 s schedule');
ok($t->wait_until(sub { $p->builder_log =~ /warn zone \S+: 1 slot\(s\) left torn by a writer that died in the middle: repaired/ }, 8),
   '... and says so in its log');

# torn while no builder runs: repaired when one starts
$p->stop_builder;
system($poke, $t->zone, 'hello', 'odd') == 0 or die 'zone-poke';
is($p->app_get('hello', '/hello')->{status}, 503,
   'torn with no builder running: 503');
$p->start_builder;
ok($t->wait_until(sub { $p->app_get('hello', '/hello')->{status} == 200 },
                  5),
   'a builder that starts repairs it');

$p->stop;

done_testing();
