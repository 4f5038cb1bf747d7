#!/usr/bin/perl

# The builder's main loop waits on one epoll set, not on a poll() over
# every idle socket: each idle project's listening socket is in the set
# (the kernel's fdinfo of the builder's eventpoll descriptor lists it); a
# woken project's socket leaves the set while its loader runs (the loader
# accepts on it: the builder polling it too would spin), and is back once
# the project is idle again; a deleted project's socket is gone from it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new(builder_args => ['--idle', '1s'],
                               upstream_keepalive_timeout => '100ms');
my $t = $p->t;
my $repo = Shuttle::Test::repo();
my @names = qw(ep1 ep2 ep3);

sub states {
    my $r = $p->v1('alice', 'GET', '/v1/projects');
    my %n;
    $n{ $_->{state} // '' }++ for @{ $r->{json}{projects} // [] };
    return \%n;
}

# the first "port" anywhere in the project's deployments (one here)
sub port_of {
    my ($name) = @_;
    my $r = $p->v1('alice', 'GET', "/v1/projects/$name/deployments");
    my @todo = ($r->{json});
    while (defined(my $j = shift @todo)) {
        if (ref $j eq 'HASH') {
            return $j->{port} if ($j->{port} // '') =~ /^[1-9]\d*\z/;
            push @todo, values %$j;
        } elsif (ref $j eq 'ARRAY') {
            push @todo, @$j;
        }
    }
    return undef;
}

# the TCP ports listened on by the builder's descriptors: {fd => port}
sub listening {
    my ($pid) = @_;
    my %port_of_inode;
    open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    while (<$fh>) {
        my @f = split;
        next unless ($f[3] // '') eq '0A';          # LISTEN
        $port_of_inode{ $f[9] } = hex((split /:/, $f[1])[1]);
    }
    my %fds;
    opendir my $d, "/proc/$pid/fd" or die "/proc/$pid/fd: $!";
    for my $fd (grep { /^\d+\z/ } readdir $d) {
        my $l = readlink("/proc/$pid/fd/$fd") // next;
        $fds{$fd} = $port_of_inode{$1}
            if $l =~ /^socket:\[(\d+)\]\z/ && exists $port_of_inode{$1};
    }
    return \%fds;
}

# the ports of the builder's epoll sets: one set per eventpoll descriptor
sub watched_ports {
    my $pid = $p->builder_pid;
    my $listen = listening($pid);
    my @sets;
    opendir my $d, "/proc/$pid/fd" or die "/proc/$pid/fd: $!";
    for my $fd (grep { /^\d+\z/ } readdir $d) {
        my $l = readlink("/proc/$pid/fd/$fd") // next;
        next unless $l eq 'anon_inode:[eventpoll]';
        open my $fh, '<', "/proc/$pid/fdinfo/$fd" or next;
        my %ports;
        while (<$fh>) {
            $ports{ $listen->{$1} } = 1
                if /^tfd:\s*(\d+)/ && defined $listen->{$1};
        }
        push @sets, \%ports;
    }
    return @sets;
}

# the set that holds $port, if any
sub in_a_set {
    my ($port) = @_;
    return scalar grep { $_->{$port} } watched_ports();
}

for my $name (@names) {
    my $r = $p->upload('alice', $name, "$repo/examples/hello");
    is($r->{status}, 202, "POST /deploy?project=$name: 202");
}

my $last;
ok($t->wait_until(sub { $last = states(); ($last->{idle} // 0) == 3 }, 120),
   'the three deployed and idle (' . join(', ', map { "$_ $last->{$_}" }
                                          sort keys %$last) . ')');

my %port = map { ($_ => scalar port_of($_)) } @names;
ok((grep { defined } values %port) == 3, 'each project has its port: '
   . join(', ', map { "$_ " . ($port{$_} // 'none') } @names));

my @sets = watched_ports();
cmp_ok(scalar @sets, '>=', 1, 'the builder has an epoll descriptor');
my @holding = grep { my $s = $_; !grep { !$s->{ $port{$_} } } @names }
              @sets;
is(scalar @holding, 1, 'one epoll set holds all three idle sockets ('
   . join(', ', map { $port{$_} } @names) . ')');

# a wake: the socket is the loader's while it runs
my $r = $p->app_get('ep1', '/hello', timeout => 30);
is($r->{status}, 200, 'GET ep1/hello through nginx: 200 (woken)');
is($r->{body}, "Hello, world!\n", '... its answer');

is(in_a_set($port{ep1}), 0, "ep1 running: its socket ($port{ep1}) out "
   . 'of the epoll set');
is(in_a_set($port{ep2}), 1, 'ep2 still idle: its socket in the set');
is(in_a_set($port{ep3}), 1, 'ep3 still idle: its socket in the set');

ok($t->wait_until(sub { $last = states(); ($last->{idle} // 0) == 3 }, 60),
   'ep1 idle again');
ok($t->wait_until(sub { in_a_set($port{ep1}) == 1 }, 10),
   'ep1 idle: its socket back in the epoll set');

# a second wake of the same project: watched the same way again
$r = $p->app_get('ep1', '/hello', timeout => 30);
is($r->{status}, 200, 'GET ep1/hello again: 200 (woken again)');

# deleted: its socket closed, out of the set
$r = $p->v1('alice', 'DELETE', '/v1/projects/ep2');
ok($r->{status} >= 200 && $r->{status} < 300,
   "DELETE /v1/projects/ep2: $r->{status}");
ok($t->wait_until(sub { in_a_set($port{ep2}) == 0 }, 10),
   'ep2 deleted: its socket out of the epoll set');
is(in_a_set($port{ep3}), 1, 'ep3 idle: its socket still in the set');

unlike($p->builder_log, qr/epoll_ctl/, 'no epoll_ctl error in the builder '
       . 'log');

$p->stop;

done_testing();
