#!/usr/bin/perl

# t/bench/epoll.pl: wakes among many idle projects, this builder beside a
# baseline one (BENCH_EPOLL_BASELINE_BUILDER: a build of an earlier
# commit), restarted into in turn on the same data; required by bench.pl
# after density.pl (it uses that file's helpers).
#
#   epoll_wake_ms_p50, _p99   a request to a random idle project, 20 a
#                   round 0.3 s apart, BENCH_EPOLL_ROUNDS (3) rounds a
#                   builder, the builders alternating; p50/p99 of all
#   epoll_main_cpu_pct_idle   the builder's main thread's CPU over 10 s,
#                   all idle, median of the rounds
#   each with _baseline: the same by the baseline builder, same run; and
#   with _20: the same first with BENCH_EPOLL_FEW (20) projects
#
# BENCH_EPOLL (2000) projects of examples/hello, --idle 1s.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

my $EPOLL_N = $ENV{BENCH_EPOLL} // 2000;
my $EPOLL_ROUNDS = $ENV{BENCH_EPOLL_ROUNDS} // 3;
my $EPOLL_FEW = $ENV{BENCH_EPOLL_FEW} // 20;

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

    # the same first with BENCH_EPOLL_FEW (20) projects, then with all
    my @few = @names[0 .. $EPOLL_FEW - 1];
    density_deploy($p, $tgz, $EPOLL_FEW, @few);
    my %few = epoll_rounds($p, $base, \@args, @few);
    density_deploy($p, $tgz, $EPOLL_N, @names[$EPOLL_FEW .. $#names]);
    my %all = epoll_rounds($p, $base, \@args, @names);
    $p->stop;

    main::figure("epoll_projects", $EPOLL_N);
    for my $n ($EPOLL_FEW, $EPOLL_N) {
        my $r = $n == $EPOLL_N ? \%all : \%few;
        my $nsfx = $n == $EPOLL_N ? '' : "_$n";
        for my $which ('new', 'baseline') {
            my $sfx = $nsfx . ($which eq 'baseline' ? '_baseline' : '');
            my @w = @{ $r->{wakes}{$which} };
            main::figure("epoll_wake_ms_p50$sfx",
                         sprintf('%.1f', main::pct(50, @w)));
            main::figure("epoll_wake_ms_p99$sfx",
                         sprintf('%.1f', main::pct(99, @w)));
            main::figure("epoll_main_cpu_pct_idle$sfx",
                         sprintf('%.2f', main::median(@{$r->{cpu}{$which}})));
        }
    }
}

# BENCH_EPOLL_ROUNDS rounds, this builder then the baseline each round
sub epoll_rounds {
    my ($p, $base, $args, @names) = @_;
    my (%wakes, %cpu);
    for my $round (1 .. $EPOLL_ROUNDS) {
        for my $which ('new', 'baseline') {
            local $ENV{SHUTTLE_BUILDER} = $base if $which eq 'baseline';
            density_restart($p, \@names, 0, [], @$args);
            density_wait_states($p, 'all idle', 120,
                                sub { ($_[0]{idle} // 0) == @names });
            my @ms = density_wakes($p, @names);
            # the woken idle again (--idle 1s), then the loop's own CPU
            density_wait_states($p, 'all idle', 120,
                                sub { ($_[0]{idle} // 0) == @names });
            my $c = main_cpu_pct($p, 10);
            printf "# %d projects, round %d, %s builder: wakes p50 %.1f "
                   . "p99 %.1f ms, main thread %.2f%% CPU all idle\n",
                   scalar @names, $round, $which, main::pct(50, @ms),
                   main::pct(99, @ms), $c;
            push @{$wakes{$which}}, @ms;
            push @{$cpu{$which}}, $c;
        }
    }
    return (wakes => \%wakes, cpu => \%cpu);
}

1;
