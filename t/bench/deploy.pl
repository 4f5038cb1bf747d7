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
    my $cli = Shuttle::Platform::shuttle_bin();
    my (@diff, @cli, @true);

    deploy_bench_time(undef, $cli, '--version') for 1 .. 3;
    for my $i (1 .. $CLI_STARTS) {
        my ($c, $t);
        if ($i % 2) {
            $c = deploy_bench_time(undef, $cli, '--version');
            $t = deploy_bench_time(undef, '/bin/true', '--version');
        } else {
            $t = deploy_bench_time(undef, '/bin/true', '--version');
            $c = deploy_bench_time(undef, $cli, '--version');
        }
        push @cli, $c;
        push @true, $t;
        push @diff, $c - $t;
    }
    deploy_bench_summary('cli_start_ms', \@diff, \@cli, \@true);
}

# shuttle deploy to the new version answering, against cc alone
sub bench_deploy_overhead {
    my $repo = Shuttle::Test::repo();
    my $p = Shuttle::Platform->new;
    my $proj = $p->testdir . '/overhead';
    my $ccdir = $p->testdir . '/overhead-cc';
    my %env = $p->cli_env;
    my $cli = Shuttle::Platform::shuttle_bin();

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
        my ($body) = @_;
        my $r = eval { $p->app_get('overhead', '/hello', timeout => 2) };
        return $r && $r->{status} == 200 && $r->{body} eq $body;
    };

    my (@diff, @dep, @ccms);
    for my $i (0 .. $OVERHEAD_ROUNDS) {
        my $body = "Hello, round $i!\n";
        (my $src = $main) =~ s/Hello, world!\\n/Hello, round $i!\\n/
            or die "bench: no greeting in examples/hello/src/main.c\n";
        $write->("$proj/src/main.c", $src);
        $write->("$ccdir/src/main.c", $src);

        my $deploy = sub {
            my $t0 = time;
            deploy_bench_time(\%env, $cli, 'deploy', $proj);
            until ($answers->($body)) {
                die "bench: round $i of overhead does not answer\n"
                    . $p->builder_log if time - $t0 > 30;
            }
            return (time - $t0) * 1000;
        };
        my ($d, $c);
        if ($i % 2) {
            $d = $deploy->();
            $c = deploy_bench_time(undef, @cc);
        } else {
            $c = deploy_bench_time(undef, @cc);
            $d = $deploy->();
        }
        # round 0 makes the project: its first deploy is not a redeploy
        next if $i == 0;
        push @dep, $d;
        push @ccms, $c;
        push @diff, $d - $c;
        printf "# overhead %d/%d: shuttle deploy %.1f ms, cc %.1f ms\n",
               $i, $OVERHEAD_ROUNDS, $d, $c;
    }
    $p->stop;
    deploy_bench_summary('deploy_overhead_ms', \@diff, \@dep, \@ccms);
}

1;
