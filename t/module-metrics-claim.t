#!/usr/bin/perl

# Issue 21, item 5: a project counted twice.  The first request of a
# project claims an entry in the metrics zone, names it, then marks it
# ready.  A worker that meets the entry still claimed (its claimer was
# preempted between the two, or died there) must not claim a second entry
# for the same project: once the first claimer finishes, the page would
# print every series of the project twice.
#
# The preempted claimer is made here: the test writes the entry's key in
# nginx's shared memory (through /proc/PID/mem) back to "claimed", sends
# requests, then marks it ready again, as the claimer would when it runs
# again.  The page is then read line by line, duplicates included.

use strict;
use warnings;
no warnings qw(portable);

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

plan skip_all => 'needs root (writes nginx\'s memory)' unless $> == 0;

my $t = Shuttle::Test->new;

$t->write_nginx_conf(<<'EOF');
    shuttle_zone %%ZONE%%;
    shuttle_metrics_zone 32k;

    upstream apps {
        shuttle_route;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;
        location / { proxy_pass http://apps; }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name localhost;
        location = /metrics/nginx { shuttle_metrics; }
    }

    server {
        listen 127.0.0.1:%%PORT_A%%;
        access_log off;
        location / { return 200 "A\n"; }
    }
EOF

$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('A'), 'running', 1);
$t->run;

my $port = $t->port(1);
my ($worker) = $t->worker_pids;

sub get { http_get($port, @_) }

# every sample line of the page: [ 'name{labels}', value ], in order
sub samples {
    my $r = get('localhost', '/metrics/nginx');
    die "GET /metrics/nginx: $r->{status}" unless $r->{status} == 200;
    return map { /^(\S+) (\d+(?:\.\d+)?)$/ ? [ $1, $2 ] : () }
           split /\n/, $r->{body};
}

sub requests {
    my ($project) = @_;
    return grep { $_->[0] eq "shuttle_http_requests_total"
                             . "{project=\"$project\",class=\"2xx\"}" }
           samples();
}

sub settled {
    my ($project, $n) = @_;
    $t->wait_until(sub {
        my @s = requests($project);
        my $sum = 0;
        $sum += $_->[1] for @s;
        $sum == $n;
    }, 5);
    return requests($project);
}

is(get('alpha.apps.test', '/')->{status}, 200, 'alpha answers');
my @s = settled('alpha', 1);
is(scalar @s, 1, 'alpha has one series of 2xx');

# alpha's entry in the shared memory: its name, after its key (8 bytes,
# aligned) and the name's length
open my $maps, '<', "/proc/$worker/maps" or die "maps: $!";
my @shm = map { /^([0-9a-f]+)-([0-9a-f]+) rw-s .*\/dev\/zero/
                ? [ hex $1, hex $2 ] : () } <$maps>;
close $maps;

open my $mem, '+<', "/proc/$worker/mem" or die "/proc/$worker/mem: $!";
binmode $mem;
my $key_at;
for my $m (@shm) {
    my $buf = '';
    sysseek($mem, $m->[0], 0) or next;
    sysread($mem, $buf, $m->[1] - $m->[0]) or next;
    my $at = index($buf, "\x05alpha\x00");
    next if $at < 0;
    $key_at = $m->[0] + (($at - 8) & ~7);
    last;
}
ok(defined $key_at, "alpha's entry found in the metrics zone")
    or BAIL_OUT('no entry');

sub key_state {
    my ($state) = @_;
    my $buf;
    sysseek($mem, $key_at, 0);
    sysread($mem, $buf, 8) == 8 or die "read key: $!";
    my $key = unpack('Q<', $buf);
    return $key & 3 unless defined $state;
    sysseek($mem, $key_at, 0);
    syswrite($mem, pack('Q<', ($key & ~3) | $state)) == 8
        or die "write key: $!";
}

is(key_state(), 2, 'the entry is ready');

# the claimer "preempted": the entry claimed, not yet ready
key_state(1);
is(get('alpha.apps.test', '/')->{status}, 200, "alpha's entry claimed: "
                                               . 'alpha still answers')
    for 1 .. 3;

# the claimer runs again and marks it ready
key_state(2);
is(get('alpha.apps.test', '/')->{status}, 200, 'alpha answers');

my $other;
$t->wait_until(sub {
    my ($a) = map { $_->[1] } requests('alpha');
    ($other) = map { $_->[1] } grep {
        $_->[0] eq 'shuttle_http_requests_total{project="_other",'
                   . 'class="2xx"}' } samples();
    ($a // 0) + ($other // 0) >= 5;
}, 5);

@s = requests('alpha');
is(scalar @s, 1, 'alpha is printed once, not twice')
    or diag(join "\n", map { "@$_" } @s);
is($s[0][1] + $other, 5, 'every request counted once: '
                         . "alpha $s[0][1], _other $other");
is($s[0][1], 2, "alpha's own entry counted the requests before and after");
my ($used) = map { $_->[1] } grep { $_->[0] eq 'shuttle_metrics_projects' }
             samples();
is($used, 1, 'one entry used');

done_testing();
