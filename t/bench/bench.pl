#!/usr/bin/perl

# make bench: the benchmarks of shuttle for nginx, against 127.0.0.1 with
# wrk.  Every figure is a ratio to (or measured beside) a baseline run in
# the same nginx in the same run, so the machine's speed cancels out.
#
#   route_ratio      requests/s through a "shuttle_route" upstream over
#                    requests/s through a static upstream { server; keepalive }
#                    to the same backend (medians of BENCH_RUNS runs each,
#                    static and route runs alternating)
#   route_ratio_10k  the same with 10,000 more projects in the zone
#   loader_ratio     requests/s of GET /hello served by a shuttle-loader
#                    running examples/hello directly (no nginx in front)
#                    over requests/s of nginx's "return 200" (the
#                    backend), both on the same one CPU: the loader with
#                    --threads 1 like nginx's one worker
#   loader_ratio_bare  the same with the loader unsandboxed; loader_ratio
#                    (both: the median of the ratios of each round, the
#                    three fronts measured one after the other in a round)
#                    is the loader as the builder runs it: in its sandbox,
#                    the service's seccomp filter on (shuttle-builder
#                    sandbox), the listening socket handed to it
#   sandbox_ms       a loader's start to ready (start_ms, the builder's
#                    measure: spawn, sandbox, dlopen, the service's main,
#                    "ready") of the deploys below, median; sandbox_ms_bare
#                    the same by a builder run with --no-sandbox
#   deploy_ms        shuttle deploy of examples/hello as a new project,
#                    from the CLI's start to the first 200 from its URL,
#                    against a whole local platform (nginx, builder,
#                    loaders); median of BENCH_DEPLOYS (7) deploys
#   deploy_post_ms   the same from POST /deploy of the tarball (curl's
#                    path, no CLI) to the first 200
#   wake_ms          GET /hello through nginx to an idle project (scaled
#                    to zero: no loader) to its response, p50 and p99 of
#                    BENCH_WAKES (50) wakes, in its sandbox; warm_ms the
#                    same request to the running loader, in the same run;
#                    wake_ready_ms the builder's spawn to ready of those
#                    wakes, wake_spawn_ms its part before the loader runs;
#                    the same with _hostnet: services in the host's
#                    network (--service-network host), the baseline of
#                    what a network namespace per loader costs
#   density_*        BENCH_DENSITY (1000) projects on one platform: idle,
#                    then a share running, a builder restart: see
#                    t/bench/density.pl; BENCH_DENSITY=0 skips it
#
# One nginx, worker_processes 1 (pinned to one CPU when there are two,
# wrk on the other), serving the backend, the static front and the route
# front; the deploy figures use a second nginx (Shuttle::Platform) after
# the first one stopped.  The output ends with a block:
#
#   == shuttle bench ==
#   route_ratio 0.987
#   ...
#
# one "name value" line per figure.  A new benchmark is a sub that calls
# figure(NAME, VALUE), added to @BENCHES.
#
# Environment: BENCH_SECONDS (3) per run, BENCH_RUNS (5) of each kind,
# BENCH_DEPLOYS (7) deploys of each kind, BENCH_WAKES (50),
# BENCH_DENSITY (1000 projects; 0 skips it), BENCH_ONLY (a comma-separated
# list of route, loader, deploy, wake, density: only those),
# BENCH_WARMUP (1) seconds of warm-up per front, BENCH_PIN=0 to not pin
# CPUs, BENCH_STATIC_ONLY=1 (or SHUTTLE_TEST_NO_MODULE=1) to measure the
# static front alone (no module needed), SHUTTLE_TEST_KEEP=1 to keep the
# nginx prefix.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Temp;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);

use Shuttle::Test;
use Shuttle::Platform;

# the deploy's overhead over cc and the CLI's start (overhead, cli_start)
require "$FindBin::Bin/deploy.pl";
require "$FindBin::Bin/wake.pl";    # bench_wake_socket

$| = 1;

my $SECONDS = $ENV{BENCH_SECONDS} // 3;
my $RUNS = $ENV{BENCH_RUNS} // 5;
my $DEPLOYS = $ENV{BENCH_DEPLOYS} // 7;
my $WARMUP = $ENV{BENCH_WARMUP} // 1;
my $WAKES = $ENV{BENCH_WAKES} // 50;
my $DENSITY = $ENV{BENCH_DENSITY} // 1000;
require "$FindBin::Bin/density.pl";     # bench_density
require "$FindBin::Bin/epoll.pl";       # bench_epoll
# BENCH_ONLY=wake,density: those of route, loader, deploy, wake, density
my %ONLY = map { $_ => 1 } split /,/, $ENV{BENCH_ONLY} // '';
sub want { !%ONLY || $ONLY{$_[0]} }
my $STATIC_ONLY = $ENV{BENCH_STATIC_ONLY} || $ENV{SHUTTLE_TEST_NO_MODULE}
                  || grep { $_ eq '--static-only' } @ARGV;
my $DOMAIN = 'apps.test';
my $WRK = $ENV{WRK} // 'wrk';

# the benchmarks, in order; each gets the harness
my @BENCHES = (
    \&bench_route,
    \&bench_route_10k,
    \&bench_loader,
);


# figures ------------------------------------------------------------------

my @FIGURES;

sub figure {
    my ($name, $value) = @_;
    push @FIGURES, [$name, $value];
    print "# $name $value\n";
}

sub print_figures {
    print "\n== shuttle bench ==\n";
    print "$_->[0] $_->[1]\n" for @FIGURES;
}

# the p-th percentile (0-100) of a list, nearest rank
sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return undef unless @v;
    my $i = int($p / 100 * @v + 0.999999) - 1;
    $i = 0 if $i < 0;
    $i = $#v if $i > $#v;
    return $v[$i];
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    my $m = int(@v / 2);
    return @v % 2 ? $v[$m] : ($v[$m - 1] + $v[$m]) / 2;
}

sub fmt_rps   { sprintf '%.0f', $_[0] }
sub fmt_ratio { sprintf '%.3f', $_[0] }


# CPUs ---------------------------------------------------------------------

# the CPUs this process may run on, from Cpus_allowed_list
sub allowed_cpus {
    open my $fh, '<', '/proc/self/status' or return;
    my ($list) = map { /^Cpus_allowed_list:\s*(\S+)/ ? $1 : () } <$fh>;
    return unless $list;
    my @c;
    for (split /,/, $list) {
        push @c, /^(\d+)-(\d+)$/ ? ($1 .. $2) : ($_ + 0);
    }
    return @c;
}

my @CPUS = allowed_cpus();
my $PIN = ($ENV{BENCH_PIN} // 1) && @CPUS >= 2 && -x '/usr/bin/taskset';
my ($NGINX_CPU, $WRK_CPU) = $PIN ? @CPUS[0, 1] : ();


# wrk ----------------------------------------------------------------------

# one wrk run: requests/s; dies on a non-2xx/3xx response or when wrk fails
sub wrk {
    my ($port, $host, $seconds, $path) = @_;

    my @cmd = ($WRK, '-t1', '-c32', "-d${seconds}s", '-H', "Host: $host",
               "http://127.0.0.1:$port" . ($path // '/'));
    unshift @cmd, 'taskset', '-c', $WRK_CPU if $PIN;

    open my $fh, '-|', @cmd or die "bench: $cmd[0]: $!\n";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    die "bench: @cmd: exit " . ($? >> 8) . "\n$out" if $?;

    my ($rps) = $out =~ /^Requests\/sec:\s*([\d.]+)/m
        or die "bench: no Requests/sec from wrk:\n$out";
    my ($bad) = $out =~ /^\s*Non-2xx or 3xx responses:\s*(\d+)/m;
    if ($bad) {
        die "bench: $bad non-2xx/3xx responses from 127.0.0.1:$port "
            . "(Host: $host):\n$out";
    }
    if ($out =~ /^\s*Socket errors:\s*(.*)$/m) {
        print "# wrk socket errors on port $port: $1\n";
    }

    return $rps;
}

# the front answers 200 "ok" for $host, or dies saying what it said
sub check_front {
    my ($t, $port, $host, $what) = @_;
    my $r = http_get($port, $host, '/');
    unless (($r->{status} // 0) == 200 && ($r->{body} // '') eq "ok\n") {
        die "bench: $what (127.0.0.1:$port, Host: $host) answered "
            . ($r->{status} // 'nothing') . ":\n$r->{raw}\n"
            . "error log:\n" . $t->log_tail(10);
    }
}

# static and route runs alternating: the medians and every run's figure
sub compare {
    my ($t, $suffix, $host) = @_;
    my ($ps, $pr) = ($t->port('S'), $t->port('R'));

    check_front($t, $ps, $host, 'the static front');
    check_front($t, $pr, $host, 'the route front');

    # the route front is the module's: a project not in the zone is a 404
    my $r = http_get($pr, "no-such-project.$DOMAIN", '/');
    die "bench: the route front answered " . ($r->{status} // 'nothing')
        . " for a project not in the zone, not 404:\n$r->{raw}\n"
        unless ($r->{status} // 0) == 404;

    if ($WARMUP > 0) {
        wrk($ps, $host, $WARMUP);
        wrk($pr, $host, $WARMUP);
    }

    my (@s, @r);
    for my $i (1 .. $RUNS) {
        push @s, wrk($ps, $host, $SECONDS);
        push @r, wrk($pr, $host, $SECONDS);
        printf "# run %d/%d%s: static %.0f route %.0f req/s\n",
               $i, $RUNS, $suffix ? " ($suffix)" : '', $s[-1], $r[-1];
    }

    my ($ms, $mr) = (median(@s), median(@r));
    figure("route_ratio$suffix", fmt_ratio($mr / $ms));
    figure("static_rps$suffix", fmt_rps($ms));
    figure("route_rps$suffix", fmt_rps($mr));
    figure("static_rps_runs$suffix", join(',', map { fmt_rps($_) } @s));
    figure("route_rps_runs$suffix", join(',', map { fmt_rps($_) } @r));
}


# the benchmarks -----------------------------------------------------------

sub bench_route {
    my ($t) = @_;
    compare($t, '', "bench.$DOMAIN");
}

sub bench_route_10k {
    my ($t) = @_;

    my $b = $t->port('B');
    my $list = join '', map { sprintf "p%05d 127.0.0.1:%d running 1\n", $_, $b }
                        1 .. 10000;
    $t->zone_cmd('load', $t->write_file('projects-10k', $list));

    my $live = () = $t->zone_cmd('list') =~ /\n/g;
    die "bench: the zone lists $live projects, not 10001\n" if $live != 10001;

    my $name = sprintf 'p%05d', 1 + int rand 10000;
    print "# 10,000 projects loaded; routing $name.$DOMAIN\n";
    compare($t, '_10k', "$name.$DOMAIN");
}

# examples/hello built as the builder's default rule builds it, run by a
# loader on the nginx CPU with one thread, against nginx's return 200
sub bench_loader {
    my ($t) = @_;
    my $repo = Shuttle::Test::repo();
    my $so = $t->testdir . '/hello.so';
    my $loader = Shuttle::Platform::loader_bin();

    system('cc', '-std=gnu11', '-O2', '-g', '-fPIC', '-shared', '-Wall',
           "-I$repo/include", "$repo/examples/hello/src/main.c", '-o', $so)
        == 0 or die "bench: cannot build examples/hello\n";

    # the loader as the builder runs it: sandboxed, the service's seccomp
    # filter on, the socket handed to it; and bare, binding its own
    my $pl = $t->port('L');
    my $ps = $t->port('X');
    $t->_release_ports;     # the loaders bind them, or we do
    my @bare = ($loader, '--listen', "127.0.0.1:$pl", '--threads', 1, $so);
    unshift @bare, 'taskset', '-c', $NGINX_CPU if $PIN;
    my $bare = $t->spawn(@bare);

    my $lsock;
    {
        local $^F = 1000;   # kept across exec: the loader's --listen-fd
        $lsock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => $ps, Listen => 511,
                                       ReuseAddr => 1)
            or die "bench: listen on $ps: $@\n";
    }
    my $lfd = fileno($lsock);
    (my $sodir = $so) =~ s{/[^/]+$}{};
    my @sandboxed = (Shuttle::Test::builder(), 'sandbox', '--fds', $lfd + 1,
                     '--bind', $sodir, '--bind', $loader, '--',
                     $loader, '--listen-fd', $lfd, '--threads', 1, $so);
    unshift @sandboxed, 'taskset', '-c', $NGINX_CPU if $PIN;
    my $sandboxed = $t->spawn(@sandboxed);
    close $lsock;

    for my $port ($pl, $ps) {
        my $r;
        $t->wait_until(sub { $r = eval { http_get($port, 'localhost',
                                                  '/hello') } }, 10);
        die "bench: the loader on $port does not answer:\n"
            . ($t->spawn_log(1) // '') . ($t->spawn_log(2) // '')
            unless $r && $r->{status} == 200
                   && $r->{body} eq "Hello, world!\n";
    }

    my $pb = $t->port('B');
    check_front($t, $pb, 'localhost', 'nginx return 200');

    if ($WARMUP > 0) {
        wrk($pb, 'localhost', $WARMUP);
        wrk($pl, 'localhost', $WARMUP, '/hello');
        wrk($ps, 'localhost', $WARMUP, '/hello');
    }

    my (@n, @l, @s);
    for my $i (1 .. $RUNS) {
        push @n, wrk($pb, 'localhost', $SECONDS);
        push @s, wrk($ps, 'localhost', $SECONDS, '/hello');
        push @l, wrk($pl, 'localhost', $SECONDS, '/hello');
        printf "# run %d/%d: nginx return 200 %.0f, loader sandboxed %.0f, "
               . "bare %.0f req/s\n", $i, $RUNS, $n[-1], $s[-1], $l[-1];
    }
    $t->stop_spawned($bare);
    $t->stop_spawned($sandboxed);

    # the ratio of each round (the three measured one after the other),
    # then their median: a machine that slows down for a while slows a
    # round, not one side
    my ($mn, $ml, $ms) = (median(@n), median(@l), median(@s));
    figure('loader_ratio', fmt_ratio(median(map { $s[$_] / $n[$_] } 0 .. $#n)));
    figure('loader_ratio_bare',
           fmt_ratio(median(map { $l[$_] / $n[$_] } 0 .. $#n)));
    figure('nginx_return_rps', fmt_rps($mn));
    figure('loader_rps', fmt_rps($ms));
    figure('loader_bare_rps', fmt_rps($ml));
    figure('nginx_return_rps_runs', join(',', map { fmt_rps($_) } @n));
    figure('loader_rps_runs', join(',', map { fmt_rps($_) } @s));
    figure('loader_bare_rps_runs', join(',', map { fmt_rps($_) } @l));
}

# a whole platform; examples/hello deployed as new projects: with the
# CLI, and with a POST of the tarball; each time until its URL answers
sub bench_deploy {
    my $repo = Shuttle::Test::repo();
    my $p = Shuttle::Platform->new;
    my @start;
    my $tgz = `tar czf - -C $repo/examples/hello .`;
    die "bench: tar czf examples/hello failed\n" if $? || !length $tgz;

    my $answers = sub {
        my ($name) = @_;
        my $r = eval { $p->app_get($name, '/hello', timeout => 2) };
        return $r && $r->{status} == 200 && $r->{body} eq "Hello, world!\n";
    };
    my $until_answers = sub {
        my ($name, $t0) = @_;
        my $end = $t0 + 30;
        until ($answers->($name)) {
            die "bench: $name does not answer after 30 s\n"
                . $p->builder_log if time > $end;
            sleep 0.002;
        }
        return (time - $t0) * 1000;
    };

    my (@cli, @post);
    for my $i (1 .. $DEPLOYS) {
        my $name = "cli$i";
        my $t0 = time;
        my ($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/hello",
                                        '--name', $name]);
        die "bench: shuttle deploy --name $name: exit $rc\n$err" if $rc;
        push @cli, $until_answers->($name, $t0);

        $name = "post$i";
        $t0 = time;
        post_deploy($p, $name, $tgz);
        push @post, $until_answers->($name, $t0);
        push @start, start_ms($p, $name);
        printf "# deploy %d/%d: shuttle deploy %.0f ms, POST /deploy %.0f ms\n",
               $i, $DEPLOYS, $cli[-1], $post[-1];
    }
    $p->stop;

    my @bare = bench_bare_starts($tgz);
    figure('sandbox_ms', sprintf('%.0f', median(@start)));
    figure('sandbox_ms_bare', sprintf('%.0f', median(@bare)));
    figure('sandbox_ms_runs', join(',', @start));
    figure('sandbox_ms_bare_runs', join(',', @bare));

    figure('deploy_ms', sprintf('%.0f', median(@cli)));
    figure('deploy_post_ms', sprintf('%.0f', median(@post)));
    figure('deploy_ms_runs', join(',', map { sprintf '%.0f', $_ } @cli));
    figure('deploy_post_ms_runs', join(',', map { sprintf '%.0f', $_ } @post));
}

# POST /deploy of the tarball as project $name: its deployment id
sub post_deploy {
    my ($p, $name, $tgz) = @_;
    my $r = http_get($p->port, 'localhost', "/deploy?project=$name",
                     method => 'POST', body => $tgz,
                     headers => [Authorization => 'Bearer ' . $p->key,
                                 'Content-Type' => 'application/gzip']);
    die "bench: POST /deploy?project=$name: $r->{status}\n$r->{body}"
        unless $r->{status} == 202;
    return JSON::PP::decode_json($r->{body})->{id};
}

# the start_ms (a loader's start to ready, as the builder measures it) of
# the project's latest deployment
sub start_ms {
    my ($p, $name) = @_;
    my $r = $p->v1('alice', 'GET', "/v1/projects/$name");
    my $id = $r->{json}{latest}{id} // $r->{json}{current}
        // die "bench: no deployment of $name: $r->{body}\n";
    $id = $id->{id} if ref $id;
    my $d = $p->v1('alice', 'GET', "/v1/deployments/$id")->{json};
    return $d->{start_ms} // die "bench: no start_ms for $name #$id\n";
}

# the same starts by a builder given --no-sandbox: loaders as bare
# processes of the builder's user
sub bench_bare_starts {
    my ($tgz) = @_;
    my $p = Shuttle::Platform->new(builder_args => ['--no-sandbox']);
    my @start;
    for my $i (1 .. $DEPLOYS) {
        my $name = "bare$i";
        my $id = post_deploy($p, $name, $tgz);
        $p->t->wait_deployment('alice', $id, qr/^running$/, 30);
        push @start, start_ms($p, $name);
    }
    $p->stop;
    printf "# loader start to ready, bare (--no-sandbox): %s ms\n",
           join(', ', @start);
    return @start;
}

# scale to zero: the request that wakes an idle project, and the same
# request to its running loader; then the same wakes with the services in
# the host's network (--service-network host), the baseline of what a
# network namespace of each loader's own costs: the _hostnet figures
sub bench_wake {
    bench_wake_one('', []);
    bench_wake_one('_hostnet', ['--service-network', 'host']);
}

sub bench_wake_one {
    my ($suffix, $args) = @_;
    my $repo = Shuttle::Test::repo();
    my $p = Shuttle::Platform->new(builder_args => ['--idle', '300ms', @$args],
                                   upstream_keepalive_timeout => '100ms');
    my $tgz = `tar czf - -C $repo/examples/hello .`;
    my $id = post_deploy($p, 'hello', $tgz);
    $p->t->wait_deployment('alice', $id, qr/^running$/, 30);

    my $state = sub { $p->v1('alice', 'GET', '/v1/projects/hello')->{json}{state} // '' };
    my $get = sub {
        my $t0 = time;
        my $r = $p->app_get('hello', '/hello', timeout => 5);
        my $ms = (time - $t0) * 1000;
        die "bench: GET /hello: $r->{status} $r->{body}\n"
            unless $r->{status} == 200 && $r->{body} eq "Hello, world!\n";
        return $ms;
    };

    my (@wake, @warm);
    for my $i (1 .. $WAKES) {
        $p->t->wait_until(sub { $state->() eq 'idle' }, 10)
            or die "bench: hello does not go idle\n" . $p->builder_log;
        die "bench: a loader runs while hello is idle\n" if $p->t->loader_pids;
        push @wake, $get->();
        push @warm, $get->();
    }
    my $log = $p->builder_log;
    $p->stop;

    my @ready = $log =~ /woken by a request: pid \d+ on \S+, ready in (\d+) ms/g;
    my @spawn = map { $_ / 1000 } $log =~ /woken by a request: loader pid \d+ \(spawned in (\d+) us\)/g;
    printf "# %d wakes%s: %s ms\n", scalar @wake, $suffix,
           join(', ', map { sprintf '%.1f', $_ } @wake);
    figure("wake_ms_p50$suffix", sprintf('%.1f', pct(50, @wake)));
    figure("wake_ms_p99$suffix", sprintf('%.1f', pct(99, @wake)));
    figure("warm_ms_p50$suffix", sprintf('%.2f', pct(50, @warm)));
    figure("warm_ms_p99$suffix", sprintf('%.2f', pct(99, @warm)));
    figure("wake_spawn_ms_p50$suffix", sprintf('%.1f', pct(50, @spawn)));
    figure("wake_ready_ms_p50$suffix", pct(50, @ready));
}

sub bench_static {
    my ($t) = @_;
    my $host = "bench.$DOMAIN";
    my $ps = $t->port('S');

    check_front($t, $ps, $host, 'the static front');
    wrk($ps, $host, $WARMUP) if $WARMUP > 0;

    my @s;
    for my $i (1 .. $RUNS) {
        push @s, wrk($ps, $host, $SECONDS);
        printf "# run %d/%d: static %.0f req/s\n", $i, $RUNS, $s[-1];
    }
    figure('static_rps', fmt_rps(median(@s)));
    figure('static_rps_runs', join(',', map { fmt_rps($_) } @s));
}


# main ---------------------------------------------------------------------

system("$WRK -v >/dev/null 2>&1");
die "bench: wrk is not installed (make deps)\n" if $? == -1 || ($? >> 8) == 127;

my $t = Shuttle::Test->new;

my $route_conf = '';
unless ($STATIC_ONLY) {
    $t->zone_cmd('set', 'bench', '127.0.0.1:' . $t->port('B'), 'running', 1);

    $route_conf = <<'EOF';
    shuttle_zone %%ZONE%%;

    upstream shuttle_up {
        shuttle_route;
        keepalive 32;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:%%PORT_R%% backlog=1024;
        shuttle_apps apps.test;
        access_log off;

        location / {
            proxy_pass http://shuttle_up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
EOF
}

$t->write_nginx_conf(<<'EOF' . $route_conf,
    keepalive_requests 1000000;

    upstream static_up {
        server 127.0.0.1:%%PORT_B%%;
        keepalive 32;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:%%PORT_B%% backlog=1024;
        keepalive_requests 100000;
        access_log off;

        location / {
            return 200 "ok\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_S%% backlog=1024;
        access_log off;

        location / {
            proxy_pass http://static_up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
EOF
    worker_processes => 1,
    access_log => 0,
    main => $PIN ? "worker_cpu_affinity 1" . ('0' x $NGINX_CPU) . ";\n" : '',
);

$t->run;

printf "# nginx %s, 1 worker%s; wrk -t1 -c32, %d runs of %ss each\n",
       $t->nginx_pid,
       $PIN ? " on CPU $NGINX_CPU, wrk on CPU $WRK_CPU" : ' (not pinned)',
       $RUNS, $SECONDS;

if ($STATIC_ONLY) {
    print "# static only: the route benchmarks are skipped\n";
    bench_static($t);
} else {
    for my $b (@BENCHES) {
        my $name = $b == \&bench_loader ? 'loader' : 'route';
        $b->($t) if want($name);
    }
}

my $alerts = () = ($t->error_log // '') =~ /\[(?:alert|crit|emerg)\]/g;
figure('nginx_alerts', $alerts);

$t->stop;

unless ($STATIC_ONLY) {
    bench_deploy() if want('deploy');
    bench_cli_start() if want('cli_start');
    bench_deploy_overhead() if want('overhead');
    bench_wake() if want('wake');
    bench_wake_socket() if want('wake') || want('wake_socket');
    bench_density() if $DENSITY > 0 && want('density');
    bench_epoll() if want('epoll') && %ONLY;
}

print_figures();
