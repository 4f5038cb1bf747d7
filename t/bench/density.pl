#!/usr/bin/perl

# t/bench/density.pl: BENCH_DENSITY projects on one platform, required by
# bench.pl (it uses that file's figure, pct and median).
#
#   density_*        BENCH_DENSITY (1000; 10000 for the figures of
#                    docs/benchmarks.md) projects of examples/hello (one
#                    tarball, N names) on one platform, the builder with
#                    its default limits but --ports (the test harness's
#                    ports are 10000-32767: the loaders take the ephemeral
#                    range here, 33000-60999):
#     deploy_s       the POSTs (4 clients at once) to every project
#                    deployed, its loader ready, gone idle (--idle 1s)
#     idle_*         all idle, no loader: PSS (KiB) and descriptors of the
#                    builder and of nginx per project, over the same
#                    figures with no project (measured first, same run)
#     api_ms, list_ms  GET /v1/projects and "shuttle list", median of 5,
#                    with BENCH_DENSITY_FEW (20) projects and with all
#     wake_ms        a request to a random idle project (sandboxed loader
#                    woken), p50/p99 of 20, 0.3 s apart, with FEW projects
#                    and with all; then every wake of the share below
#     restart_*      SIGTERM to the builder and a new one: the old one's
#                    exit, the new one's API (its socket answers), the zone
#                    right (20 random projects answer through nginx): all
#                    idle, then with the share running
#     running_*      BENCH_DENSITY_RUNNING (N/10) woken and kept running:
#                    PSS, descriptors and tasks per running project, over
#                    all idle
#     main_cpu_pct   the builder's main thread's CPU (its event loop:
#                    health checks, idle sockets, timers) over 10 s, all
#                    idle and with the share running (health checks every
#                    10 s, the default; BENCH_DENSITY_HEALTH=1s: every
#                    second); _baseline: the same by the
#                    builder BENCH_DENSITY_BASELINE_BUILDER names (a build
#                    of an earlier commit), after a restart into it, and
#                    api_ms, list_ms by that builder
#     pid_max_projects  kernel.pid_max over the tasks of a running
#                    project: how many may run at once

use strict;
use warnings;

use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

use Shuttle::Test;
use Shuttle::Platform;

my $N = $ENV{BENCH_DENSITY} // 1000;
my $FEW = $ENV{BENCH_DENSITY_FEW} // 20;
my $SHARE = $ENV{BENCH_DENSITY_RUNNING} // int($N / 10);
my ($PORT_LO, $PORT_HI) = split /-/, $ENV{BENCH_DENSITY_PORTS}
                                    // '33000-60999';
my $TICK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
# the running share's --health-check (the builder's default: 10s)
my @HEALTH = $ENV{BENCH_DENSITY_HEALTH}
             ? ('--health-check', $ENV{BENCH_DENSITY_HEALTH}) : ();

# the processes of the platform: (builder, [nginx's], [the builder's
# descendants: loaders, their inits, the warm loader])
sub density_pids {
    my ($p) = @_;
    my %kids;
    opendir my $dh, '/proc' or return;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $st = <$fh> // next;
        my ($ppid) = $st =~ /\) \S+ (\d+)/ or next;
        push @{ $kids{$ppid} }, $pid;
    }
    my $tree = sub {
        my @todo = @_;
        my @all;
        while (defined(my $pid = shift @todo)) {
            push @all, $pid;
            push @todo, @{ $kids{$pid} // [] };
        }
        return @all;
    };
    my $b = $p->builder_pid;
    return ($b, [$tree->($p->t->nginx_pid)],
            [grep { $_ != $b } $tree->($b)]);
}

# {builder,nginx,loaders}_{kib,fds}, loaders_tasks
sub density_usage {
    my ($p) = @_;
    my ($b, $nginx, $loaders) = density_pids($p);
    my %u;
    for my $part (['builder', [$b]], ['nginx', $nginx],
                  ['loaders', $loaders])
    {
        my ($name, $pids) = @$part;
        my ($kb, $fds, $tasks) = (0, 0, 0);
        for my $pid (@$pids) {
            if (open my $fh, '<', "/proc/$pid/smaps_rollup") {
                while (<$fh>) { $kb += $1 if /^Pss:\s+(\d+) kB/ }
            }
            if (opendir my $d, "/proc/$pid/fd") {
                $fds += grep { /^\d+$/ } readdir $d;
            }
            if (opendir my $d, "/proc/$pid/task") {
                $tasks += grep { /^\d+$/ } readdir $d;
            }
        }
        @u{"${name}_kib", "${name}_fds", "${name}_tasks"} = ($kb, $fds, $tasks);
    }
    return \%u;
}

# the builder's main thread's CPU time, in seconds
sub main_cpu {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/task/$pid/stat" or return 0;
    my $st = <$fh> // return 0;
    my @f = split ' ', ($st =~ /\) (.*)/)[0];
    return ($f[11] + $f[12]) / $TICK;
}

sub main_cpu_pct {
    my ($p, $seconds) = @_;
    my $c0 = main_cpu($p->builder_pid);
    my $t0 = time;
    sleep $seconds;
    return 100 * (main_cpu($p->builder_pid) - $c0) / (time - $t0);
}

# a JSON decoder that keeps up with 10,000 projects, where there is one
my $JSON = eval { require Cpanel::JSON::XS; Cpanel::JSON::XS->new }
           // JSON::PP->new;

# GET $path of the API as alice, a minute at most
sub density_api {
    my ($p, $path, %opts) = @_;
    return Shuttle::Test::http_get($p->port, 'localhost', $path,
        timeout => 120, %opts,
        headers => [Authorization => 'Bearer ' . $p->key('alice'),
                    @{ $opts{headers} // [] }]);
}

# project states from GET /v1/projects: {state => count}
sub density_states {
    my ($p) = @_;
    my $r = density_api($p, '/v1/projects');
    die "bench: GET /v1/projects: $r->{status}\n" unless $r->{status} == 200;
    my %n;
    $n{ $_->{state} // '' }++ for @{ $JSON->decode($r->{body})->{projects} };
    return \%n;
}

# POST /deploy?project=$name of the tarball
sub density_post {
    my ($p, $name, $tgz) = @_;
    my $r = density_api($p, "/deploy?project=$name", method => 'POST',
                        body => $tgz,
                        headers => ['Content-Type' => 'application/gzip']);
    die "bench: POST /deploy?project=$name: $r->{status}\n$r->{body}"
        unless $r->{status} == 202;
}

sub density_wait_states {
    my ($p, $what, $timeout, $cond) = @_;
    my $t0 = time;
    my $last;
    while (time - $t0 < $timeout) {
        $last = density_states($p);
        my @bad = grep { /fail/ } keys %$last;
        die "bench: $what: " . join(', ', map { "$_ $last->{$_}" } @bad)
            . "\n" . substr($p->builder_log, -3000) if @bad;
        return time - $t0 if $cond->($last);
        sleep 2;
    }
    die "bench: $what: not within ${timeout}s: "
        . join(', ', map { "$_ $last->{$_}" } sort keys %$last) . "\n";
}

# GET /hello of a project: ms, 200 or it dies
sub density_get {
    my ($p, $name) = @_;
    my $t0 = time;
    my $r = $p->app_get($name, '/hello', timeout => 30);
    my $ms = (time - $t0) * 1000;
    die "bench: GET $name/hello: $r->{status} $r->{body}\n"
        unless $r->{status} == 200 && $r->{body} eq "Hello, world!\n";
    return $ms;
}

sub density_timed {
    my ($runs, $code) = @_;
    my @ms;
    for (1 .. $runs) {
        my $t0 = time;
        $code->();
        push @ms, (time - $t0) * 1000;
    }
    return main::median(@ms);
}

# the answer whole, not decoded (Perl's JSON decoder is slower than the
# API): its projects counted by their URLs
sub density_api_ms {
    my ($p, $n) = @_;
    return density_timed(5, sub {
        my $r = density_api($p, '/v1/projects');
        my $got = () = $r->{body} =~ /"url":/g;
        die "bench: GET /v1/projects: $r->{status}, $got projects of $n\n"
            unless $r->{status} == 200 && $got == $n;
    });
}

sub density_list_ms {
    my ($p, $n) = @_;
    return density_timed(5, sub {
        my ($rc, $out, $err) = $p->cli(['list'], timeout => 300);
        die "bench: shuttle list: $rc $err\n" unless $rc == 0;
        my $lines = () = $out =~ /^d\d+/mg;
        die "bench: shuttle list: $lines projects of $n\n" if $lines != $n;
    });
}

# deploys @names, 4 clients POSTing at once: seconds until all are idle
sub density_deploy {
    my ($p, $tgz, $total, @names) = @_;
    my $t0 = time;
    my @kids;
    for my $c (0 .. 3) {
        my @mine = @names[grep { $_ % 4 == $c } 0 .. $#names];
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $ok = eval { density_post($p, $_, $tgz) for @mine; 1 };
            print STDERR $@ unless $ok;
            POSIX::_exit($ok ? 0 : 1);
        }
        push @kids, $pid;
    }
    for (@kids) {
        waitpid($_, 0);
        die "bench: a deploying client failed\n" if $?;
    }
    my $posted = time - $t0;
    density_wait_states($p, "deploy of $total", 3 * 3600,
                        sub { ($_[0]{idle} // 0) == $total });
    my $s = time - $t0;
    printf "# %d projects: POSTed in %.1f s, all deployed and idle in "
           . "%.1f s\n", scalar @names, $posted, $s;
    return $s;
}

# 20 random idle projects woken, 0.3 s apart: ms of each
sub density_wakes {
    my ($p, @names) = @_;
    my @order = sort { rand() <=> 0.5 } @names;
    my @ms;
    for my $name (@order[0 .. 19]) {
        sleep 0.3;
        push @ms, density_get($p, $name);
    }
    return @ms;
}

# the builder again, with other options than the platform's
sub density_start_builder {
    my ($p, @args) = @_;
    local $p->{builder_args} = [@args];
    return $p->start_builder;
}

# SIGTERM and a new builder with @args: (stop s, API s, zone right s);
# the zone is right once the store's states are and @sample answer
# through nginx
sub density_restart {
    my ($p, $names, $running, $sample, @args) = @_;
    my $t0 = time;
    $p->t->builder_stop('TERM', 600);
    my $stop = time - $t0;
    $t0 = time;
    {
        local $Shuttle::Test::TIMEOUT = 600;
        density_start_builder($p, @args);
    }
    my $api = time - $t0;
    # every project in its state again, and 20 answer through nginx
    density_wait_states($p, 'restart', 600, sub {
        ($_[0]{running} // 0) == $running
            && ($_[0]{idle} // 0) + $running == @$names });
    density_get($p, $_) for @$sample;
    my $zone = time - $t0;
    printf "# restart with %d running: stopped in %.1f s, API in %.1f s, "
           . "zone right in %.1f s\n", $running, $stop, $api, $zone;
    return ($stop, $api, $zone);
}

sub bench_density {
    my $repo = Shuttle::Test::repo();
    my @args = ('--ports', "$PORT_LO-$PORT_HI", '--jobs', '2',
                '--key-jobs', '2', '--key-projects', $N + 10);
    my $p = Shuttle::Platform->new(builder_args => [@args, '--idle', '1s'],
                                   upstream_keepalive_timeout => '100ms');
    my $tgz = `tar czf - -C $repo/examples/hello .`;
    my @names = map { sprintf 'd%05d', $_ } 1 .. $N;
    my @few = @names[0 .. $FEW - 1];

    my $u0 = density_usage($p);
    printf "# no project: builder %d KiB, %d fds; nginx %d KiB, %d fds\n",
           @$u0{qw(builder_kib builder_fds nginx_kib nginx_fds)};

    # a few first: the baselines of the API, list and wake figures
    density_deploy($p, $tgz, $FEW, @few);
    my $api_few = density_api_ms($p, $FEW);
    my $list_few = density_list_ms($p, $FEW);
    my @wake_few = density_wakes($p, @few);

    my $deploy_s = density_deploy($p, $tgz, $N, @names[$FEW .. $N - 1]);
    sleep 2;
    my $ui = density_usage($p);
    printf "# %d idle: builder %d KiB, %d fds; nginx %d KiB, %d fds\n", $N,
           @$ui{qw(builder_kib builder_fds nginx_kib nginx_fds)};
    my $api_all = density_api_ms($p, $N);
    my $list_all = density_list_ms($p, $N);
    my @wake_all = density_wakes($p, @names);
    printf "# GET /v1/projects %.1f ms (%.1f with %d), shuttle list %.1f ms "
           . "(%.1f with %d)\n", $api_all, $api_few, $FEW, $list_all,
           $list_few, $FEW;
    printf "# wakes with %d: %s ms\n# with %d: %s ms\n", $FEW,
           join(', ', map { sprintf '%.1f', $_ } @wake_few), $N,
           join(', ', map { sprintf '%.1f', $_ } @wake_all);

    # all idle (the API says; a loader the warm loader forked has not
    # the cmdline loader_pids looks for); the next builder keeps a woken
    # loader running
    density_wait_states($p, 'the wakes idle again', 60,
                        sub { ($_[0]{idle} // 0) == $N });
    # the zone checked by waking 20 of the share: they stay running
    my @share = (sort { rand() <=> 0.5 } @names)[0 .. $SHARE - 1];
    my @r_idle = density_restart($p, \@names, 0, [@share[0 .. 19]], @args,
                                 '--idle', '10m', @HEALTH);
    my $cpu_idle = main_cpu_pct($p, 10);

    my @wake_share = map { density_get($p, $_) } @share[20 .. $#share];
    density_wait_states($p, "$SHARE woken", 60,
                        sub { ($_[0]{running} // 0) == $SHARE });
    sleep 2;
    my $ur = density_usage($p);
    printf "# %d running: loaders %d KiB, %d fds, %d tasks\n", $SHARE,
           @$ur{qw(loaders_kib loaders_fds loaders_tasks)};

    # a restart with them running; then the main thread's CPU once the
    # new builder's first health checks are due (10 s after its loaders)
    my @r_run = density_restart($p, \@names, $SHARE, [@share[0 .. 19]],
                                @args, '--idle', '10m', @HEALTH);
    sleep 12;
    my $cpu_run = main_cpu_pct($p, 10);

    # the same with another builder binary (the commit before, say): the
    # baseline of the health checks' cost, in the same run
    my ($cpu_base, $api_base, $list_base);
    if (my $old = $ENV{BENCH_DENSITY_BASELINE_BUILDER}) {
        local $ENV{SHUTTLE_BUILDER} = $old;
        density_restart($p, \@names, $SHARE, [@share[0 .. 19]], @args,
                        '--idle', '10m', @HEALTH);
        sleep 12;
        $cpu_base = main_cpu_pct($p, 10);
        $api_base = density_api_ms($p, $N);
        $list_base = density_list_ms($p, $N);
        printf "# the baseline builder: GET /v1/projects %.1f ms, shuttle "
               . "list %.1f ms\n", $api_base, $list_base;
    }
    printf "# builder main thread: %.1f%% CPU with %d running (%s), %.1f%% "
           . "all idle\n", $cpu_run, $SHARE, defined $cpu_base
           ? sprintf('%.1f%% by the baseline builder', $cpu_base) : '',
           $cpu_idle;
    $p->stop;

    my $per = sub { my ($k, $u1, $u2, $n) = @_; ($u2->{$k} - $u1->{$k}) / $n };
    my $tasks = $per->('loaders_tasks', $ui, $ur, $SHARE)
                + $per->('builder_tasks', $ui, $ur, $SHARE);
    my $pid_max = do {
        open my $fh, '<', '/proc/sys/kernel/pid_max'; <$fh> // 32768 } + 0;

    main::figure('density_projects', $N);
    main::figure('density_deploy_s', sprintf('%.0f', $deploy_s));
    main::figure('density_deploy_per_s',
                 sprintf('%.1f', ($N - $FEW) / $deploy_s));
    for my $k (qw(builder nginx)) {
        main::figure("density_idle_${k}_kib_per_project",
                     sprintf('%.1f', $per->("${k}_kib", $u0, $ui, $N)));
        main::figure("density_idle_${k}_fds_per_project",
                     sprintf('%.2f', $per->("${k}_fds", $u0, $ui, $N)));
    }
    main::figure('density_api_ms', sprintf('%.1f', $api_all));
    main::figure("density_api_ms_$FEW", sprintf('%.1f', $api_few));
    main::figure('density_list_ms', sprintf('%.1f', $list_all));
    main::figure("density_list_ms_$FEW", sprintf('%.1f', $list_few));
    main::figure('density_wake_ms_p50', sprintf('%.1f', main::pct(50, @wake_all)));
    main::figure('density_wake_ms_p99', sprintf('%.1f', main::pct(99, @wake_all)));
    main::figure("density_wake_ms_p50_$FEW", sprintf('%.1f', main::pct(50, @wake_few)));
    main::figure("density_wake_ms_p99_$FEW", sprintf('%.1f', main::pct(99, @wake_few)));
    main::figure('density_share_wake_ms_p50', sprintf('%.1f', main::pct(50, @wake_share)));
    main::figure('density_share_wake_ms_p99', sprintf('%.1f', main::pct(99, @wake_share)));
    main::figure('density_running', $SHARE);
    main::figure('density_running_kib_per_project', sprintf('%.0f',
        $per->('loaders_kib', $ui, $ur, $SHARE)
        + $per->('builder_kib', $ui, $ur, $SHARE)
        + $per->('nginx_kib', $ui, $ur, $SHARE)));
    main::figure('density_running_fds_per_project', sprintf('%.2f',
        $per->('loaders_fds', $ui, $ur, $SHARE)
        + $per->('builder_fds', $ui, $ur, $SHARE)
        + $per->('nginx_fds', $ui, $ur, $SHARE)));
    main::figure('density_running_tasks_per_project', sprintf('%.2f', $tasks));
    main::figure('density_pid_max_projects', sprintf('%.0f', $pid_max / $tasks));
    main::figure('density_main_cpu_pct_idle', sprintf('%.1f', $cpu_idle));
    main::figure('density_main_cpu_pct_running', sprintf('%.1f', $cpu_run));
    if (defined $cpu_base) {
        main::figure('density_main_cpu_pct_running_baseline',
                     sprintf('%.1f', $cpu_base));
        main::figure('density_api_ms_baseline', sprintf('%.1f', $api_base));
        main::figure('density_list_ms_baseline',
                     sprintf('%.1f', $list_base));
    }
    main::figure('density_restart_idle_stop_s', sprintf('%.1f', $r_idle[0]));
    main::figure('density_restart_idle_api_s', sprintf('%.1f', $r_idle[1]));
    main::figure('density_restart_idle_zone_s', sprintf('%.1f', $r_idle[2]));
    main::figure('density_restart_running_stop_s', sprintf('%.1f', $r_run[0]));
    main::figure('density_restart_running_api_s', sprintf('%.1f', $r_run[1]));
    main::figure('density_restart_running_zone_s', sprintf('%.1f', $r_run[2]));
}

1;
