#!/usr/bin/perl

# The routing zone at its capacity, on a whole platform (the real nginx
# with the module, the builder, its loaders, the CLI), with its running
# projects served through nginx all along:
#
#   1. The zone full: a zone of capacity 2 holds two running projects; a
#      third project's `shuttle deploy` fails, saying which zone is full,
#      its capacity and the command that grows it; nothing else changes
#      (the zone, the loaders, the projects, the spool) and the two keep
#      answering (a client loops on them: 0 failed requests).
#   2. `shuttle-builder zone PATH resize 4` while the builder runs: the
#      builder, the zone's one writer, carries it out on its next pass
#      (within 5 s) and nginx's workers map the new generation on their
#      next request.  Under wrk (connections kept alive, so the loaders'
#      upstream connections too) and the client, from before the resize
#      until after the retired generation's slots are punched out of its
#      file (2 s after): nothing fails.  Then the third project deploys
#      and answers.
#   3. A resize below the projects the zone holds is refused by the
#      builder, saying so, and changes nothing.
#
# make faults (Shuttle::Fault::full) resizes four more times under load.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Time::HiRes qw(time sleep);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;
use Shuttle::Wrk;

plan skip_all => 'the sandbox takes root' if $> != 0;
plan skip_all => "$Shuttle::Wrk::WRK is not installed"
    unless Shuttle::Wrk::available();
plan skip_all => Shuttle::Platform::shuttle_bin() . ' is not built (make)'
    unless -x Shuttle::Platform::shuttle_bin();

my $T0 = time;
my $FULL = Shuttle::Fault::full();
my $WORKERS = 2;

my $p = Shuttle::Platform->new(worker_processes => $WORKERS);
my $t = $p->t;
my $dir = $p->testdir;
my $zone = $t->zone;
my $data = $t->builder_data;

# the zone made small while no project is in it: the builder, started
# again, keeps the capacity it finds
$p->stop_builder;
$t->zone_cmd('resize', 2);
$p->start_builder;


# projects -------------------------------------------------------------------

# a service answering "NAME vV" on /
# a service answering "NAME vN" on /
sub app { Shuttle::Fault::app_src($p, @_) }

sub deploy {
    my ($name) = @_;
    my $src = app($name, 1);
    return $p->cli(['deploy', $src], dir => $src);
}

sub body_of {
    my ($name) = @_;
    my $r = eval { $p->app_get($name, '/', timeout => 10) };
    return $r && $r->{status} == 200 ? $r->{body} : '';
}

sub zone_info {
    return { $t->zone_cmd('info') =~ /^(\w+) (\d+)$/mg };
}

# what a deploy that fails must leave as it was
sub platform_state {
    my $projects = $p->v1('alice', 'GET', '/v1/projects')->{json};
    opendir my $dh, $t->builder_spool;
    return {
        zone => scalar $t->zone_cmd('list'),
        loaders => join(' ', $t->loader_pids),
        projects => join(' ', sort map { $_->{name} }
                              @{ $projects->{projects} // [] }),
        dirs => join(' ', sort map { s{.*/}{}r } glob "$data/projects/*"),
        spool => join(' ', grep { !/^\./ } readdir $dh),
    };
}

# the builder's descriptors of retired zone files (unlinked): each is
# closed once its slots are punched out, 2 s after the rebuild
sub retired_zones_open {
    my $b = $p->builder_pid;
    opendir my $dh, "/proc/$b/fd" or return 0;
    return scalar grep {
        (readlink("/proc/$b/fd/$_") // '') =~ /\Q$zone\E\S* \(deleted\)$/
    } readdir $dh;
}

my %load_ok = (one => "one v1\n", two => "two v1\n");

sub load_start {
    return {
        wrk => Shuttle::Wrk->start($p, ['one', 'two'],
                                   ok => [values %load_ok]),
        client => Shuttle::Fault::client($p, ['one', 'two'],
                                         ok => qr/^(?:one|two) v1\n\z/),
    };
}

# stops both, checks both, and reports the fault in one line
sub load_stop {
    my ($what, $l, %o) = @_;
    $l->{client}->wait_served(4);
    my $c = $l->{client}->stop;
    my $w = $l->{wrk}->stop;
    diag 'wrk: ' . Shuttle::Wrk::says($w);

    cmp_ok($w->{requests}, '>', 0, "$what: wrk was served");
    is($w->{bad} + $w->{status} + $w->{non2xx}, 0,
       "$what: wrk: every answer 200 from its project")
        or diag join "\n", @{ $w->{samples} };
    is($w->{socket_errors}, 0, "$what: wrk: no socket error");
    Shuttle::Fault::all_served($c, "$what: the client");

    Shuttle::Fault::report($what, {
        served => $c->{served} + $w->{served},
        failed => $c->{failed} + $w->{failed},
        bad => [@{ $c->{bad} }, @{ $w->{samples} }],
    }, note => sprintf('wrk %d req, p50 %.1f ms, p99 %.1f ms, %d socket '
                       . 'errors; client p50 %.1f ms, p99 %.1f ms%s',
                       $w->{requests}, $w->{p50}, $w->{p99},
                       $w->{socket_errors}, $c->{p50}, $c->{p99},
                       $o{note} ? "; $o{note}" : ''));
}

# `shuttle-builder zone resize` with the builder running, under load: done
# by the builder, mapped by nginx, and served through after the retired
# generation was punched
sub resize_under_load {
    my ($capacity, $l) = @_;
    my $before = zone_info();
    my $mark = $t->log_mark;
    my $t1 = time;
    my ($rc, $out, $err) = $t->zone_run('resize', $capacity);
    my $took = time - $t1;
    is($rc, 0, "zone resize $capacity with the builder running: done in "
       . sprintf('%.2f s', $took)) or diag $err;

    my $after = zone_info();
    ok($after->{capacity} == $capacity
       && $after->{generation} > $before->{generation}
       && $after->{live} == $before->{live},
       "a new generation ($after->{generation}) for $capacity projects, "
       . "the $after->{live} projects in it");
    like($p->builder_log, qr/zone \Q$zone\E: resized for $capacity projects/,
         'the builder log says so');

    ok($t->wait_for_log(qr/shuttle zone .* generation $after->{generation} mapped/,
                        10, from => $mark),
       'nginx maps the new generation');
    ok($t->wait_until(sub { !retired_zones_open() }, 10),
       'the retired generation was punched out and closed');

    # every worker routes now, through the new generation only
    my @names = (sort keys %load_ok) x 20;
    my @bad = grep { body_of($_) ne $load_ok{$_} } @names;
    is(scalar @bad, 0, 'after that, ' . @names . ' requests answered by '
       . 'their projects');

    return $took;
}


# the platform ---------------------------------------------------------------

is(zone_info()->{capacity}, 2, 'the zone: capacity 2');
for my $name (qw(one two)) {
    my ($rc, $out, $err) = deploy($name);
    is($rc, 0, "$name deployed") or diag $err;
    is(body_of($name), "$name v1\n", "$name answers");
}
is(zone_info()->{live}, 2, 'the zone is full');


# 1. the zone full -------------------------------------------------------------

{
    my $what = 'zone full (capacity 2): a third project\'s deploy';
    my $before = platform_state();
    my $mark = length($p->builder_log);
    my $c = Shuttle::Fault::client($p, ['one', 'two'],
                                   ok => qr/^(?:one|two) v1\n\z/);

    my ($rc, $out, $err) = deploy('three');
    my $after = platform_state();

    isnt($rc, 0, 'shuttle deploy of a new project fails');
    like($err, qr/zone \Q$zone\E is full/, 'its error names the zone');
    like($err, qr/\b2 projects, its capacity/, '... and its capacity');
    like($err, qr/shuttle-builder zone \Q$zone\E resize \d+/,
         '... and the command that grows it');

    for my $k (qw(projects dirs loaders)) {
        is($after->{$k}, $before->{$k}, "nothing else changed: $k");
    }
    for my $k (qw(zone spool)) {
        is($after->{$k}, $before->{$k}, "nothing else changed: $k");
    }

    my $three = $p->app_get('three', '/');
    is($three->{status}, 404, 'three is not routed: 404');
    like(substr($p->builder_log, $mark),
         qr/zone \Q$zone\E is full: 2 projects, its capacity; the operator makes room for more with "shuttle-builder zone \Q$zone\E resize 4"/,
         'the builder log says the zone is full, and what to do');
    is(zone_info()->{live}, 2, 'the zone still holds its 2 projects');
    is(Shuttle::Fault::metric($p,
           'shuttle_uploads_refused_total{reason="zone_full"}'), 1,
       '/metrics counts the upload refused: zone_full');

    $c->wait_served(4);
    my $r = $c->stop;
    Shuttle::Fault::all_served($r, 'the running projects, the zone full',
                               min => 4);
    Shuttle::Fault::report($what, $r, note => sprintf('%s; p50 %.1f ms, '
        . 'p99 %.1f ms', $rc ? "refused (exit $rc), naming the zone"
                             : 'NOT refused: "running", not routed (404)',
        $r->{p50}, $r->{p99}));
}


# 2. resize under load, then the third project -------------------------------

{
    my $what = 'zone resize 2 -> 4 with the builder running, under wrk and '
               . 'a client';
    my $l = load_start();
    my $took = resize_under_load(4, $l);
    load_stop($what, $l, note => sprintf('resize %.2f s', $took));

    my ($rc, $out, $err) = deploy('three');
    is($rc, 0, 'after it, three deploys') or diag $err;
    is(body_of('three'), "three v1\n", 'three answers');
    like($t->zone_cmd('list'), qr/^three running /m, 'three is in the zone');
}

if ($FULL) {
    my @sizes = (8, 64, 3, 1000);
    my $what = 'zone resized ' . join(' -> ', 4, @sizes)
               . ' with the builder running, under wrk and a client';
    my $l = load_start();
    my @took = map { resize_under_load($_, $l) } @sizes;
    load_stop($what, $l, note => sprintf('resizes %s s',
                                         join(', ', map { sprintf '%.2f', $_ }
                                                    @took)));
}


# 3. a resize below what the zone holds -------------------------------------

{
    my $before = zone_info();
    my ($rc, $out, $err) = $t->zone_run('resize', 2);
    is($rc >> 8, 1, 'zone resize 2 with 3 projects in the zone: refused');
    like($err, qr/asked of the running builder, pid \d+ .*zone \Q$zone\E holds 3 projects, more than capacity 2/,
         'saying that the builder refused it and why') or diag $err;
    is_deeply(zone_info(), $before, 'the zone is unchanged');
    is(body_of('three'), "three v1\n", 'three still answers');
}

diag sprintf 'faults-zone.t: %.1f s', time - $T0;

done_testing;
