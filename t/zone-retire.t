#!/usr/bin/perl

# A retired zone generation does not cost an nginx worker its page cache.
# The builder's rebuild (here: at its restart) renames a new generation over
# the zone; the old file is unlinked, and whoever drops the last reference
# to it frees its page cache, every page of it after the repairs read them:
# 90 ms of munmap() in a worker's request for a 16 MiB zone.  So the
# builder punches the retired file's slots out 2 s after retiring it: a
# worker that still maps it then holds the header page and no more.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new;
my $t = $p->t;
my $resident = Shuttle::Test::repo() . '/build/t/page-resident';

my $r = $p->upload('alice', 'hello', Shuttle::Test::repo() . '/examples/hello');
is($r->{status}, 202, 'hello deployed');
ok($t->wait_until(sub {
       my $g = eval { $p->app_get('hello', '/hello') };
       $g && $g->{status} == 200 }, 30),
   'hello answers through nginx: the worker maps the zone');

# every page of the zone in the page cache, as the builder's repairs leave it
open my $fh, '<', $t->zone or die "zone: $!";
binmode $fh;
1 while read $fh, my $buf, 1 << 20;
close $fh;

my ($worker) = $t->worker_pids;
my $ino = (stat $t->zone)[1];

$t->builder_stop('TERM');
$p->start_builder;
isnt((stat $t->zone)[1], $ino, 'the restarted builder rebuilt the zone: a '
     . 'new file at the path');

# the worker, with no request since, still maps the retired generation
my ($range) = map { /^([0-9a-f]+-[0-9a-f]+) .*zone \(deleted\)$/ ? $1 : () }
              split /\n/, $t->read_file("/proc/$worker/maps") // '';
ok($range, "worker $worker still maps the retired generation ($range)");
my $file = "/proc/$worker/map_files/$range";

my ($in, $pages) = split ' ', `$resident $file`;
cmp_ok($in, '>', $pages / 2, "right after the rebuild: $in of its $pages "
       . 'pages in the page cache');

ok($t->wait_until(sub {
       ($in) = split ' ', `$resident $file`;
       defined $in && $in <= 2 }, 10),
   "2 s later the builder punched its slots out: $in page(s) left");

$r = $p->app_get('hello', '/hello');
is($r->{status}, 200, 'the next request maps the new generation: 200');
unlike($t->read_file("/proc/$worker/maps") // '', qr/zone \(deleted\)/,
       '... and lets the retired one go');

$p->stop;
done_testing;
