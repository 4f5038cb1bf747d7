#!/usr/bin/perl

# t/bench/epoll.pl: wakes among many idle projects, this builder beside a
# baseline one (BENCH_EPOLL_BASELINE_BUILDER: a build of an earlier
# commit), restarted into in turn on the same data; required by bench.pl
# after density.pl (it uses that file's helpers).
#
#   epoll_wake_ms_p50, _p99   a request to a random idle project, 20 a
#                   round 0.3 s apart, BENCH_EPOLL_ROUNDS (3) rounds a
#                   builder, the builders alternating; p50/p99 of all
#   epoll_main_cpu_pct_idle   the builder's main thread's CPU over 5 s,
#                   all idle, median of the rounds
#   each with _baseline: the same by the baseline builder, same run
#
# BENCH_EPOLL (2000) projects of examples/hello, --idle 1s.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

my $EPOLL_N = $ENV{BENCH_EPOLL} // 2000;
my $EPOLL_ROUNDS = $ENV{BENCH_EPOLL_ROUNDS} // 3;

sub bench_epoll {
    my $repo = Shuttle::Test::repo();
    my $base = $ENV{BENCH_EPOLL_BASELINE_BUILDER}
        or die "bench: epoll: BENCH_EPOLL_BASELINE_BUILDER names the "
               . "baseline shuttle-builder\n";
    my @args = ('--ports', '33000-60999', '--jobs', '2', '--key-jobs', '2',
                '--key-projects', $EPOLL_N + 10, '--idle', '1s');
    my $p = Shuttle::Platform->new(builder_args => [@args],
                                   upstream_keepalive_timeout => '100ms');
    my $tgz = `tar czf - -C $repo/examples/hello .`;
    my @names = map { sprintf 'e%05d', $_ } 1 .. $EPOLL_N;

    density_deploy($p, $tgz, $EPOLL_N, @names);

    my (%wakes, %cpu);
    for my $round (1 .. $EPOLL_ROUNDS) {
        for my $which ('new', 'baseline') {
            local $ENV{SHUTTLE_BUILDER} = $base if $which eq 'baseline';
            density_restart($p, \@names, 0, [], @args);
            density_wait_states($p, 'all idle', 120,
                                sub { ($_[0]{idle} // 0) == $EPOLL_N });
            my @ms = density_wakes($p, @names);
            # the woken idle again (--idle 1s), then the loop's own CPU
            density_wait_states($p, 'all idle', 120,
                                sub { ($_[0]{idle} // 0) == $EPOLL_N });
            my $c = main_cpu_pct($p, 5);
            printf "# round %d, %s builder: wakes p50 %.1f p99 %.1f ms, "
                   . "main thread %.2f%% CPU all idle\n", $round, $which,
                   main::pct(50, @ms), main::pct(99, @ms), $c;
            push @{$wakes{$which}}, @ms;
            push @{$cpu{$which}}, $c;
        }
    }
    $p->stop;

    for my $which ('new', 'baseline') {
        my $sfx = $which eq 'baseline' ? '_baseline' : '';
        main::figure("epoll_projects", $EPOLL_N) if $which eq 'new';
        main::figure("epoll_wake_ms_p50$sfx",
                     sprintf('%.1f', main::pct(50, @{$wakes{$which}})));
        main::figure("epoll_wake_ms_p99$sfx",
                     sprintf('%.1f', main::pct(99, @{$wakes{$which}})));
        main::figure("epoll_main_cpu_pct_idle$sfx",
                     sprintf('%.2f', main::median(@{$cpu{$which}})));
    }
}

1;
