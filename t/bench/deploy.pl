# The deploy's overhead over cc, and the CLI's start, as PAIRED
# differences (bench.pl requires this file; its figure(), median() and
# pct() are main's).
#
#   deploy_overhead_ms   for each of BENCH_OVERHEAD_ROUNDS (11) rounds:
#                        the time of "shuttle deploy" of a project whose
#                        source changed (a new greeting, so it compiles
#                        and the new version is told from the old) until
#                        that new version answers through nginx, minus
#                        the time of the builder's cc command line alone
#                        on the same source in the same round (the order
#                        of the two alternating); median and p90 of the
#                        differences, and both medians beside them
#   cli_start_ms         "shuttle --version" minus /bin/true, paired the
#                        same way, BENCH_CLI_STARTS (101) rounds
#   deploy_fdatasyncs    the builder's fdatasync() calls during one more
#                        redeploy (perf record -a of the syscall's
#                        tracepoint while the CLI runs, counted by the
#                        builder's pid; skipped without perf)
#
# BENCH_BEFORE=DIR (a shuttle-builder and a shuttle built from an older
# commit) measures that pair too, in the same rounds, on a platform of its
# own beside the first: the _before figures, the before/after comparison
# in the same run.
#
# Both are started by the same fork and exec (run_cmd), so perl's own
# cost cancels out in the difference.

use strict;
use warnings;

use File::Path qw(make_path);
use POSIX ();
use Time::HiRes qw(sleep time);

my $OVERHEAD_ROUNDS = $ENV{BENCH_OVERHEAD_ROUNDS} // 11;
my $CLI_STARTS = $ENV{BENCH_CLI_STARTS} // 101;
my $BEFORE = $ENV{BENCH_BEFORE};

# the milliseconds that fork, exec and wait of @cmd take (its output to
# /dev/null); dies when it fails
sub deploy_bench_time {
    my ($env, @cmd) = @_;
    my $t0 = time;
    my $pid = fork // die "bench: fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        %ENV = %$env if $env;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $ms = (time - $t0) * 1000;
    die "bench: @cmd: exit " . ($? >> 8) . "\n" if $?;
    return $ms;
}

sub deploy_bench_summary {
    my ($name, $diff, $a, $b) = @_;
    figure($name, sprintf('%.1f', median(@$diff)));
    figure("${name}_p90", sprintf('%.1f', pct(90, @$diff)));
    figure("${name}_runs", join(',', map { sprintf '%.1f', $_ } @$diff));
    figure("${name}_subject", sprintf('%.1f', median(@$a)));
    figure("${name}_baseline", sprintf('%.1f', median(@$b)));
}

# shuttle --version against /bin/true, alternating which goes first
sub bench_cli_start {
    my @clis = (['', Shuttle::Platform::shuttle_bin()],
                $BEFORE ? (['_before', "$BEFORE/shuttle"]) : ());
    my (%diff, %cli, @true);

    for my $c (@clis) {
        deploy_bench_time(undef, $c->[1], '--version') for 1 .. 3;
    }
    for my $i (1 .. $CLI_STARTS) {
        # /bin/true, then each CLI, in an order turning with $i
        my @order = (undef, @clis);
        push @order, shift @order for 1 .. $i % @order;
        my %ms;
        for my $c (@order) {
            $ms{ $c ? $c->[0] : 'true' }
                = deploy_bench_time(undef, $c ? $c->[1] : '/bin/true',
                                    '--version');
        }
        push @true, $ms{true};
        for my $c (@clis) {
            push @{ $cli{ $c->[0] } }, $ms{ $c->[0] };
            push @{ $diff{ $c->[0] } }, $ms{ $c->[0] } - $ms{true};
        }
    }
    for my $c (@clis) {
        deploy_bench_summary("cli_start_ms$c->[0]", $diff{ $c->[0] },
                             $cli{ $c->[0] }, \@true);
    }
}

# shuttle deploy to the new version answering, against cc alone
sub bench_deploy_overhead {
    my $repo = Shuttle::Test::repo();
    my $p = Shuttle::Platform->new;
    my $proj = $p->testdir . '/overhead';
    my $ccdir = $p->testdir . '/overhead-cc';

    # [suffix, platform, CLI]: this build's, and the one before it
    my @sides = (['', $p, Shuttle::Platform::shuttle_bin()]);
    if ($BEFORE) {
        local $ENV{SHUTTLE_BUILDER} = "$BEFORE/shuttle-builder";
        push @sides, ['_before', Shuttle::Platform->new, "$BEFORE/shuttle"];
    }

    make_path("$proj/src", "$ccdir/src");
    open my $fh, '<', "$repo/examples/hello/src/main.c" or die "bench: $!\n";
    my $main = do { local $/; <$fh> };
    close $fh;
    my $write = sub {
        my ($file, $text) = @_;
        open my $out, '>', $file or die "bench: $file: $!\n";
        print $out $text;
        close $out or die "bench: $file: $!\n";
    };
    $write->("$proj/shuttle.json", qq({"name": "overhead"}\n));

    # the builder's command line (builder/build/build.c: build_default)
    my @cc = ('cc', '-std=gnu11', '-O2', '-g', '-fPIC', '-shared', '-Wall',
              "-I$repo/include", "$ccdir/src/main.c", '-o',
              "$ccdir/service.so");

    my $answers = sub {
        my ($pf, $body) = @_;
        my $r = eval { $pf->app_get('overhead', '/hello', timeout => 2) };
        return $r && $r->{status} == 200 && $r->{body} eq $body;
    };

    my (%diff, %dep, @ccms);
    for my $i (0 .. $OVERHEAD_ROUNDS) {
        my $body = "Hello, round $i!\n";
        (my $src = $main) =~ s/Hello, world!\\n/Hello, round $i!\\n/
            or die "bench: no greeting in examples/hello/src/main.c\n";
        $write->("$proj/src/main.c", $src);
        $write->("$ccdir/src/main.c", $src);

        my $deploy = sub {
            my ($side) = @_;
            my ($suffix, $pf, $cli) = @$side;
            my %env = $pf->cli_env;
            my $t0 = time;
            deploy_bench_time(\%env, $cli, 'deploy', $proj);
            until ($answers->($pf, $body)) {
                die "bench: round $i of overhead$suffix does not answer\n"
                    . $pf->builder_log if time - $t0 > 30;
            }
            return (time - $t0) * 1000;
        };

        # cc and each side, in an order turning with $i
        my @order = (undef, @sides);
        push @order, shift @order for 1 .. $i % @order;
        my ($c, %d);
        for my $side (@order) {
            if ($side) {
                $d{ $side->[0] } = $deploy->($side);
            } else {
                $c = deploy_bench_time(undef, @cc);
            }
        }

        # round 0 makes the project: its first deploy is not a redeploy
        next if $i == 0;
        push @ccms, $c;
        for my $side (@sides) {
            push @{ $dep{ $side->[0] } }, $d{ $side->[0] };
            push @{ $diff{ $side->[0] } }, $d{ $side->[0] } - $c;
        }
        printf "# overhead %d/%d: cc %.1f ms, %s\n", $i, $OVERHEAD_ROUNDS, $c,
               join(', ', map { sprintf 'shuttle deploy%s %.1f ms', $_->[0],
                                        $d{ $_->[0] } } @sides);
    }
    deploy_bench_syncs($proj, $main, $write, @sides);
    $_->[1]->stop for @sides;
    for my $side (@sides) {
        deploy_bench_summary("deploy_overhead_ms$side->[0]",
                             $diff{ $side->[0] }, $dep{ $side->[0] }, \@ccms);
    }
    # what this build saves over the one before, round by round
    if ($BEFORE) {
        my @gain = map { $dep{_before}[$_] - $dep{''}[$_] } 0 .. $#ccms;
        figure('deploy_gain_ms', sprintf('%.1f', median(@gain)));
        figure('deploy_gain_ms_runs', join(',', map { sprintf '%.1f', $_ }
                                                @gain));
    }
}

# the fdatasyncs of each side's builder in one redeploy, if perf can tell
sub deploy_bench_syncs {
    my ($proj, $main, $write, @sides) = @_;
    my $perf = (grep { -x "$_/perf" } split /:/, $ENV{PATH} // '')[0];
    unless ($perf) {
        print "# deploy_fdatasyncs: no perf in PATH, skipped\n";
        return;
    }
    for my $side (@sides) {
        my ($suffix, $pf, $cli) = @$side;
        (my $src = $main) =~ s/Hello, world!/Hello, syncs$suffix!/;
        $write->("$proj/src/main.c", $src);
        my $data = $pf->testdir . "/perf$suffix.data";
        my %env = ($pf->cli_env, PATH => $ENV{PATH});
        eval {
            deploy_bench_time(\%env, "$perf/perf", 'record', '-q', '-a',
                              '-e', 'syscalls:sys_enter_fdatasync',
                              '-o', $data, '--', $cli, 'deploy', $proj);
        };
        if ($@) {
            print "# deploy_fdatasyncs$suffix: perf record failed: $@";
            next;
        }
        my $pid = $pf->builder_pid;
        open my $fh, '-|', "$perf/perf", 'script', '-i', $data, '-F', 'pid'
            or die "bench: perf script: $!\n";
        my $n = grep { /^\s*(\d+)\s*$/ && $1 == $pid } <$fh>;
        close $fh;
        figure("deploy_fdatasyncs$suffix", $n);
    }
}

1;
