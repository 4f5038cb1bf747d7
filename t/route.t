#!/usr/bin/perl

# Routing <project>.apps.test through the zone: nginx starts before the
# zone exists, picks it up without a reload, sends each project to its own
# backend over the upstream keepalive pool, answers for every state, and
# follows the zone's edits, a torn slot, a new generation and a replaced
# file on the next request.  The backends are servers of the same nginx
# that print which backend and which connection served them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;

$t->write_nginx_conf(<<'EOF');
    shuttle_zone %%ZONE%%;

    upstream apps {
        shuttle_route;
        keepalive 16;
    }

    log_format shuttle '$shuttle_project|$shuttle_state|$shuttle_deployment'
                       '|$status|$upstream_addr';

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;

        access_log %%TESTDIR%%/shuttle.log shuttle;
        add_header X-Project $shuttle_project always;
        add_header X-State $shuttle_state always;
        add_header X-Deployment $shuttle_deployment always;

        location / {
            proxy_pass http://apps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_A%%;
        access_log off;
        location / { return 200 "A conn=$connection host=$host uri=$request_uri\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_B%%;
        access_log off;
        location / { return 200 "B conn=$connection\n"; }
    }
EOF

$t->run;

my $port = $t->port(1);
my $a = '127.0.0.1:' . $t->port('A');
my $b = '127.0.0.1:' . $t->port('B');
my @workers = $t->worker_pids;

sub get { http_get($port, @_) }

sub backend_conn {
    my ($r) = @_;
    return $r->{body} =~ /conn=(\d+)/ ? $1 : undef;
}


# no zone yet ----------------------------------------------------------------

ok(!-e $t->zone, 'nginx runs with no zone file');
my $r = get('alpha.apps.test', '/');
is($r->{status}, 503, 'no zone: 503');
is($r->{headers}{'retry-after'}, '1', 'no zone: Retry-After');
like($r->{body}, qr/platform starting/, 'no zone: says the platform starts');
is($r->{headers}{'x-state'}, 'starting', 'no zone: $shuttle_state');
is($r->{headers}{'content-type'}, 'text/plain', 'answers are text/plain');


# the zone appears: two projects, two backends --------------------------------

$t->zone_cmd('set', 'alpha', $a, 'running', 7);
$t->zone_cmd('set', 'beta', $b, 'running', 8);

# a worker that found no zone tries again in the next second
$t->wait_until(sub { ($r = get('alpha.apps.test', '/x?y=1'))->{status}
                     == 200 }, 3);
is($r->{status}, 200, 'zone appeared: alpha answers without a reload');
like($r->{body}, qr/^A conn=\d+ host=alpha\.apps\.test uri=\/x\?y=1$/,
     'alpha reaches backend A with its Host and URI');
is($r->{headers}{'x-project'}, 'alpha', '$shuttle_project in a header');
is($r->{headers}{'x-state'}, 'running', '$shuttle_state in a header');
is($r->{headers}{'x-deployment'}, '7', '$shuttle_deployment in a header');

$r = get('beta.apps.test', '/');
is($r->{status}, 200, 'beta answers');
like($r->{body}, qr/^B conn=/, 'beta reaches backend B');
is($r->{headers}{'x-deployment'}, '8', 'beta: its deployment');

ok($t->wait_for_log(qr/shuttle zone ".*": generation \d+ mapped/),
   'the worker logs the mapping');
ok($t->wait_for_log(qr/^alpha\|running\|7\|200\|\Q$a\E$/, 5,
                    file => 'shuttle.log'),
   'the variables in log_format, with the upstream address');

# uppercase, a port and a final dot in Host are the same host
for my $host ('ALPHA.Apps.Test', 'alpha.apps.test:8080', 'alpha.apps.test.') {
    $r = get($host, '/');
    is($r->{status} . ' ' . substr($r->{body} // '', 0, 1), '200 A',
       "Host \"$host\" routes to alpha");
}


# the keepalive pool ------------------------------------------------------------

# separate client connections, alternating projects: each backend still
# sees one upstream connection
my (%seen_a, %seen_b);
for my $i (1 .. 10) {
    my $ra = get('alpha.apps.test', "/ka$i");
    my $rb = get('beta.apps.test', "/ka$i");
    $seen_a{ backend_conn($ra) // 'none' }++;
    $seen_b{ backend_conn($rb) // 'none' }++;
}
is(scalar(keys %seen_a), 1, 'backend A saw one connection for 10 requests')
    or diag explain \%seen_a;
is(scalar(keys %seen_b), 1, 'backend B saw one connection for 10 requests')
    or diag explain \%seen_b;
isnt((keys %seen_a)[0], (keys %seen_b)[0], '... each its own');

my @ka = http_keepalive($port, 'alpha.apps.test', map { "/k$_" } 1 .. 5);
is(scalar(grep { $_->{status} == 200 } @ka), 5,
   'five requests on one client connection');
is(scalar(keys %{{ map { backend_conn($_) // '' => 1 } @ka }}), 1,
   '... one upstream connection');


# names and hosts ------------------------------------------------------------------

$r = get('gamma.apps.test', '/');
is($r->{status}, 404, 'unknown project: 404');
like($r->{body}, qr/no project "gamma"/, 'unknown project: named');
is($r->{headers}{'x-state'}, 'unknown', 'unknown project: $shuttle_state');

for my $host ('a_b.apps.test', '-alpha.apps.test', 'alpha-.apps.test',
              ('x' x 64) . '.apps.test', 'x.alpha.apps.test')
{
    $r = get($host, '/');
    is($r->{status}, 400, "\"$host\": 400");
    like($r->{body}, qr/is not a project name \(a DNS label/,
         "\"$host\": says what a name is");
}

$r = get(('x' x 63) . '.apps.test', '/');
is($r->{status}, 404, 'a 63-character label is a name (unknown: 404)');

for my $host ('apps.test', 'alpha.other.test', '.apps.test') {
    $r = get($host, '/');
    is($r->{status}, 404, "host \"$host\": 404")
        or diag $r->{raw};
}
like(get('alpha.other.test', '/')->{body},
     qr/host "alpha\.other\.test" is not <project>\.apps\.test/,
     'a host outside the domain is named');


# every state, on the next request ------------------------------------------------

my %want = (
    queued   => [503, 1, qr/project "alpha" is queued \(deployment 9\)/],
    building => [503, 1, qr/project "alpha" is building \(deployment 9\)/],
    loading  => [503, 1, qr/project "alpha" is loading \(deployment 9\)/],
    failed   => [502, 0, qr/project "alpha": deployment 9 failed/],
    stopped  => [503, 0, qr/project "alpha" is stopped/],
);

for my $state (qw(queued building loading failed stopped)) {
    $t->zone_cmd('set', 'alpha', $a, $state, 9);
    $r = get('alpha.apps.test', '/');
    my ($status, $retry, $body) = @{ $want{$state} };
    is($r->{status}, $status, "$state: $status");
    is(defined $r->{headers}{'retry-after'}, !!$retry,
       "$state: " . ($retry ? 'Retry-After' : 'no Retry-After'));
    like($r->{body}, $body, "$state: says so");
    is($r->{headers}{'x-state'}, $state, "$state: \$shuttle_state");
}

# idle: proxied all the same, to the socket the builder keeps for it
$t->zone_cmd('set', 'alpha', $a, 'idle', 9);
$r = get('alpha.apps.test', '/');
is($r->{status}, 200, 'idle: proxied (200), not refused');
like($r->{body}, qr/^A /, 'idle: to the address of its slot');
ok(!defined $r->{headers}{'retry-after'}, 'idle: no Retry-After');
is($r->{headers}{'x-state'}, 'idle', 'idle: $shuttle_state');

# back to running, on the other backend
$t->zone_cmd('set', 'alpha', $b, 'running', 10);
$r = get('alpha.apps.test', '/');
like($r->{body}, qr/^B /, 'alpha moved to backend B on the next request');
is($r->{headers}{'x-deployment'}, '10', '... deployment 10');

$t->zone_cmd('del', 'beta');
is(get('beta.apps.test', '/')->{status}, 404, 'deleted project: 404');

is_deeply([$t->worker_pids], \@workers, 'all of it without a reload');


# a torn slot ----------------------------------------------------------------------

my $poke = Shuttle::Test::repo() . '/build/t/zone-poke';
my $mark = $t->log_mark;
system($poke, $t->zone, 'alpha', 'odd') == 0 or die "zone-poke odd failed";
$r = get('alpha.apps.test', '/');
is($r->{status}, 503, 'a slot left torn (odd seq): 503');
is($r->{headers}{'retry-after'}, '1', '... with Retry-After');
like($r->{body}, qr/project "alpha" is being updated/, '... says so');
ok($t->wait_for_log(qr/\[warn\].*slot of project "alpha" stayed torn/, 5,
                    from => $mark), '... and warns in the error log');

# issue 21: a warning a second while it stays torn, not one a request
my $t0 = time;
for (1 .. 100) { get('alpha.apps.test', '/') }
my $seconds = int(time) - int($t0) + 1;
my $warns = () = substr($t->error_log, $mark)
                 =~ /slot of project "alpha" stayed torn/g;
ok($warns <= $seconds + 1, "101 requests in $seconds s: $warns warnings, "
                           . 'one a second at most');
is(get('gamma.apps.test', '/')->{status}, 404,
   '... other lookups go on meanwhile');

system($poke, $t->zone, 'alpha', 'even') == 0 or die "zone-poke even failed";
is(get('alpha.apps.test', '/')->{status}, 200, 'the slot written: 200');


# 10,000 projects -----------------------------------------------------------------

my $list = join '', map { sprintf "p%05d %s running %d\n", $_, $a, $_ }
                    1 .. 10_000;
my $file = $t->write_file('projects.txt', $list);
$t->zone_cmd('load', $file);

my $info = $t->zone_cmd('info');
like($info, qr/live\D+10001\b/, 'the zone holds 10,001 projects');

my $ok = 0;
for my $n (1, 2, 5000, 7777, 9999, 10_000) {
    my $name = sprintf 'p%05d', $n;
    $r = get("$name.apps.test", '/');
    $ok++ if $r->{status} == 200 && $r->{body} =~ /^A /
             && $r->{headers}{'x-deployment'} eq $n;
}
is($ok, 6, 'six of 10,000 projects route to their deployment');
is(get('p10001.apps.test', '/')->{status}, 404, 'a name not among them: 404');


# a new generation, a replaced file -----------------------------------------------

$mark = $t->log_mark;
$t->zone_cmd('resize', 20_000);
$r = get('p00042.apps.test', '/');
is($r->{status}, 200, 'after a resize (new generation) p00042 answers');
is($r->{headers}{'x-deployment'}, '42', '... with its deployment');
ok($t->wait_for_log(qr/generation \d+ mapped, 32768 slots/, 5, from => $mark),
   '... from the new generation, remapped without a reload');

# the path is checked at most once a second per worker
$mark = $t->log_mark;
unlink $t->zone or die "unlink zone: $!";
$t->zone_cmd('set', 'solo', $b, 'running', 99);
my $until = time + 3;
do { $r = get('solo.apps.test', '/') }
    while ($r->{status} != 200 && time < $until);
is($r->{status} . ' ' . substr($r->{body} // '', 0, 1), '200 B',
   'a zone file replaced by a new one is picked up within a second');
is(get('p00042.apps.test', '/')->{status}, 404,
   '... and the old one is gone');

# a zone file removed under nginx: the last mapping keeps routing
unlink $t->zone or die "unlink zone: $!";
$until = time + 2;
my $served = 0;
while (time < $until) {
    $served++ if get('solo.apps.test', '/')->{status} == 200;
}
ok($served > 0 && get('solo.apps.test', '/')->{status} == 200,
   'a removed zone file: the mapping in use keeps routing');

is_deeply([$t->worker_pids], \@workers, 'still the same workers');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');

done_testing;
