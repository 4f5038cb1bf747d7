#!/usr/bin/perl

# Builder restarts are invisible to traffic.  N projects, half running
# (never idle), half scaled to zero (idle after 1 s); a client loops on a
# running one, another on one that goes idle and wakes over and over.
# The builder is restarted with SIGTERM, SIGINT and SIGKILL; each time:
#
#   - no request fails, and requests are served all along;
#   - every running loader is adopted in place: the same pids, the same
#     ports, no second loader;
#   - the idle projects stay idle on the same ports: their sockets are
#     held by the socket keeper while no builder runs, and a request made
#     then waits in the backlog (seen in /proc/net/tcp) and is answered
#     once the new builder is up;
#   - the new builder's API answers within 1 s of its start.
#
# N is 20; under make faults (SHUTTLE_FAULTS_FULL=1) it is
# $SHUTTLE_RESTART_N (1000), and the figures are printed.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $N = Shuttle::Fault::full() ? $ENV{SHUTTLE_RESTART_N} // 1000 : 20;
$N = 4 if $N < 4;

my $p = Shuttle::Platform->new(builder_args => ['--idle', '0',
                                                '--jobs', '2',
                                                '--key-projects', $N + 10],
                               upstream_keepalive_timeout => '300ms');
my $t = $p->t;
my $dir = $p->testdir;
my @ports = $t->port_range($N + 40);
push @{ $p->{builder_args} }, '--ports', "$ports[0]-$ports[1]";
$t->builder_stop('TERM');
$t->kill_keeper;
$p->start_builder;

my @names = map { "p$_" } 1 .. $N;
my @running = @names[0 .. $N / 2 - 1];
my @idle = @names[$N / 2 .. $N - 1];
my $busy = $running[0];         # a client loops on it
my $waker = $idle[0];           # and one on it: idle, woken, idle ...
my $late = $idle[1];            # a request while no builder runs


# the projects -------------------------------------------------------------

my %id;
for my $name (@names) {
    my $r = $p->upload('alice', $name, Shuttle::Fault::app_src($p, $name, 1));
    die "deploy $name: $r->{status} $r->{body}" unless $r->{status} == 202;
    $id{$name} = $r->{json}{id};
}

sub zone {
    my %z;
    for (split /\n/, $t->zone_cmd('list')) {
        my ($name, $state, $addr) = split ' ';
        $z{$name} = [$state, $addr];
    }
    return \%z;
}

ok($t->wait_until(sub {
       my $z = zone();
       !grep { ($z->{$_}[0] // '') ne 'running' } @names }, 60 + $N),
   "$N projects deployed, all running");

for my $name (@idle) {
    my $r = $p->v1('alice', 'PUT', "/v1/projects/$name/scale",
                   body => { idle => '1s' });
    die "scale $name: $r->{status} $r->{body}" unless $r->{status} == 200;
}

ok($t->wait_until(sub {
       my $z = zone();
       !grep { ($z->{$_}[0] // '') ne 'idle' } @idle }, 30 + $N / 10),
   (scalar @idle) . ' of them scaled to zero: idle');

# pid and port of each running deployment, as the store has them
sub loaders {
    my %l;
    for (Shuttle::Fault::store_rows($p,
             "SELECT p.name, d.pid, d.port, d.idle_since FROM deployments d "
             . "JOIN projects p ON p.id = d.project "
             . "WHERE d.state = 'running'"))
    {
        $l{ $_->[0] } = { pid => $_->[1], port => $_->[2],
                          idle => $_->[3] ? 1 : 0 };
    }
    return \%l;
}

# connections waiting in the accept queue of 127.0.0.1:$port (LISTEN)
sub backlog {
    my ($port) = @_;
    open my $fh, '<', '/proc/net/tcp' or return 0;
    while (<$fh>) {
        my @f = split;
        next unless ($f[3] // '') eq '0A';
        my ($addr, $hex) = split /:/, $f[1];
        next unless hex($hex) == $port;
        return hex((split /:/, $f[4])[1]);
    }
    return 0;
}

# the project a loader serves, from its command line (its service.so)
sub project_of {
    my ($pid) = @_;
    return Shuttle::Test::_cmdline($pid) =~ m{/projects/([^/]+)/deployments/}
           ? $1 : "pid $pid";
}

# a GET in a child process: its answer in $file ("STATUS BODY")
sub get_later {
    my ($name, $file) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $r = eval { $p->app_get($name, '/', timeout => 20) };
        open my $fh, '>', "$file.tmp" or POSIX::_exit(1);
        print $fh $r ? "$r->{status} $r->{body}" : "error: $@";
        close $fh;
        rename "$file.tmp", $file;
        POSIX::_exit(0);
    }
    return $pid;
}


# the restarts -------------------------------------------------------------

my $data = $t->builder_data;
my (@served, @failed, @api_ms, @restart_ms);

for my $sig (qw(TERM INT KILL)) {
    my $busy_c = Shuttle::Fault::client($p, [$busy], ok => qr/^$busy v1$/);
    my $waker_c = Shuttle::Fault::client($p, [$waker],
                                         ok => qr/^$waker v1$/, pause => 1.3);

    ok($t->wait_until(sub { (zone()->{$late}[0] // '') eq 'idle' }, 10),
       "SIG$sig: $late is idle");
    my $before = loaders();
    my @pids = $t->loader_pids;
    my %of = map { $_ => project_of($_) } @pids;
    my $keeper = $t->keeper_pid;
    sleep 1;                    # the clients at work

    my $t0 = time;
    my $status = $t->builder_stop($sig);
    ok(defined $status, "SIG$sig: the builder is gone");

    # a request to an idle project while no builder runs
    my $file = "$dir/late.$sig";
    my $child = get_later($late, $file);
    my $port = $before->{$late}{port};
    ok($t->wait_until(sub { backlog($port) >= 1 }, 10),
       "... a request to idle $late waits in the backlog of its port "
       . "$port, held by the socket keeper");

    my $t1 = time;
    $p->start_builder;
    my $r = $t->builder_request('GET', "/v1/projects/$busy",
                                key => "alice");
    my $api = (time - $t1) * 1000;
    my $restart = (time - $t0) * 1000;
    is($r->{status}, 200, sprintf('... the new builder answers GET '
       . '/v1/projects/%s %d ms after its start', $busy, $api));
    cmp_ok($api, '<', 1000, '... within 1 s');
    push @api_ms, $api;
    push @restart_ms, $restart;

    waitpid($child, 0);
    is($t->read_file("late.$sig") // '', "200 $late v1\n",
       "... and the request made while no builder ran is answered by "
       . "$late");

    my $after = loaders();
    my @wrong = grep {
        my $b = $before->{$_};
        my $a = $after->{$_} // {};
        $_ ne $waker && $_ ne $late
        && ($b->{port} != ($a->{port} // 0)
            || ($b->{idle} ? !$a->{idle} : ($b->{pid} != ($a->{pid} // 0))))
    } @names;
    is("@wrong", '', "... every running loader kept its pid and port, "
       . "every idle project its port and its idleness");
    is($after->{$late}{port}, $port, "... $late woke on its port $port");
    # the loaders started or gone meanwhile: only $late's (woken) and
    # $waker's (idle and woken by its client)
    my %was = map { $_ => 1 } @pids;
    my @started = grep { !$was{$_} } $t->loader_pids;
    my @gone = grep { !$t->pid_alive($_) } @pids;
    is(join(' ', grep { $_ ne $late && $_ ne $waker }
                 map { $of{$_} // project_of($_) } @started), '',
       '... and no loader was started but those woken');
    is(join(' ', grep { $_ ne $late && $_ ne $waker }
                 map { $of{$_} } @gone), '',
       '... nor stopped but those gone idle');
    is($t->keeper_pid, $keeper, "... the socket keeper $keeper the same");
    like(zone()->{$idle[-1]}[1] // '', qr/:$before->{$idle[-1]}{port}$/,
         '... the zone unchanged');

    sleep 1;
    my $rb = $busy_c->stop;
    my $rw = $waker_c->stop;
    my $res = { served => $rb->{served} + $rw->{served},
                failed => $rb->{failed} + $rw->{failed},
                bad => [@{ $rb->{bad} }, @{ $rw->{bad} }],
                p50 => $rb->{p50}, p99 => $rb->{p99} };
    is($res->{failed}, 0, "... no request failed");
    cmp_ok($rb->{served}, '>', 0, "... $rb->{served} served on $busy");
    cmp_ok($rw->{served}, '>', 0, "... $rw->{served} on $waker");
    Shuttle::Fault::report("builder SIG$sig, $N projects (half idle)", $res,
        note => sprintf('API up %.0f ms after the start, restart %.0f ms',
                        $api, $restart));
}

diag(sprintf 'N=%d: API up after %s ms; stop+start %s ms', $N,
     join(', ', map { sprintf '%.0f', $_ } @api_ms),
     join(', ', map { sprintf '%.0f', $_ } @restart_ms));

done_testing;
