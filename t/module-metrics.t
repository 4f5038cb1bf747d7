#!/usr/bin/perl

# The module's metrics: "shuttle_metrics" prints, in Prometheus' text
# format, what two workers counted in shared memory: each project's
# requests by status class and its loaders' response times, the requests
# that named no project (never by their Host), the uploads nginx refused.
# The counts are exact across workers, survive a reload, and past the
# zone's room the projects count as "_other".  Backends are servers of the
# same nginx, and one slow backend of Perl's.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $alice = 'sk_' . ('b2' x 32);
$t->write_file('api_keys', 'alice:' . sha256_hex($alice) . "\n");

$t->write_nginx_conf(<<'EOF', worker_processes => 2);
    shuttle_zone %%ZONE%%;
    shuttle_builder unix:%%TESTDIR%%/no-builder.sock;
    shuttle_metrics_zone 32k;

    upstream apps {
        shuttle_route;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;

        location / {
            proxy_pass http://apps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name localhost;

        shuttle_api_keys %%TESTDIR%%/api_keys;
        client_max_body_size 1k;

        location = /deploy { shuttle_deploy; }

        location = /metrics/nginx {
            allow 127.0.0.1;
            deny all;
            shuttle_metrics;
        }

        location = /metrics/closed {
            deny all;
            shuttle_metrics;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_A%%;
        access_log off;
        location / { return 200 "A\n"; }
        location /fail { return 500 "no\n"; }
        location /missing { return 404; }
    }
EOF


# the zone before nginx: the workers map it as they start
my $port = $t->port(1);
my $a = '127.0.0.1:' . $t->port('A');
my $slow_port = $t->port('S');

$t->zone_cmd('set', 'alpha', $a, 'running', 1);
$t->zone_cmd('set', 'beta', $a, 'running', 2);
$t->zone_cmd('set', 'sleepy', "127.0.0.1:$slow_port", 'running', 3);
$t->zone_cmd('set', 'later', $a, 'building', 4);

$t->run;

# a slow backend of Perl's, started after run(): the harness holds the
# ports it handed out until then
my $slow = $t->spawn($^X, '-e', <<'EOF', $slow_port);
use IO::Socket::INET;
use Time::HiRes qw(sleep);
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0],
                              Listen => 16, ReuseAddr => 1) or die "$!";
while (my $c = $l->accept) {
    my $req = '';
    while ($req !~ /\r\n\r\n/) { sysread($c, $req, 4096, length $req) or last }
    sleep 0.15;
    print $c "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow\n";
    close $c;
}
EOF

$t->wait_until(sub {
    IO::Socket::INET->new(PeerAddr => "127.0.0.1:$slow_port")
}, 10) or BAIL_OUT('the slow backend did not start: '
                   . ($t->spawn_log(1) // ''));

sub get { http_get($port, @_) }

# the page, parsed: { 'name{labels}' => value }, and the families seen
sub scrape {
    my $r = get('localhost', '/metrics/nginx');
    die "GET /metrics/nginx: $r->{status}" unless $r->{status} == 200;

    my (%v, %help, %type, @order);
    for my $line (split /\n/, $r->{body}) {
        if ($line =~ /^# HELP (\w+) \S/) {
            $help{$1} = 1;
        } elsif ($line =~ /^# TYPE (\w+) (counter|gauge|histogram)$/) {
            $type{$1} = $2;
            push @order, $1;
        } elsif ($line =~ /^(\w+)(\{[^}]*\})? (\d+(?:\.\d+)?)$/) {
            $v{'#bad'} .= "twice: $line\n" if exists $v{$1 . ($2 // '')};
            $v{$1 . ($2 // '')} = $3;
        } else {
            $v{'#bad'} .= "$line\n";
        }
    }
    return { v => \%v, help => \%help, type => \%type, order => \@order,
             raw => $r->{body}, headers => $r->{headers} };
}

# a request is counted in its log phase, an instant after its answer went
# out: scrape until the counts the test expects are there (or 5 s)
sub settled {
    my ($cond) = @_;
    my $m;
    $t->wait_until(sub { $m = scrape(); $cond->($m) }, 5);
    return $m;
}

sub req   { $_[0]{v}{"shuttle_http_requests_total{project=\"$_[1]\",class=\"$_[2]\"}"} }
sub count { $_[0]{v}{"shuttle_upstream_response_seconds_count{project=\"$_[1]\"}"} }
sub bucket {
    $_[0]{v}{"shuttle_upstream_response_seconds_bucket{project=\"$_[1]\",le=\"$_[2]\"}"}
}
sub projects {
    my ($m) = @_;
    my %p;
    for (keys %{ $m->{v} }) { $p{$1} = 1 if /project="([^"]*)"/ }
    return sort keys %p;
}


# the format -------------------------------------------------------------------

my $m = scrape();
is($m->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   'Content-Type of the text format');
ok(!defined $m->{v}{'#bad'}, 'every line is a comment or a sample')
    or diag($m->{v}{'#bad'});
is_deeply([ projects($m) ], [ '_other' ], 'before any request: "_other" only');

for my $f (qw(shuttle_http_requests_total shuttle_upstream_response_seconds
              shuttle_http_unrouted_requests_total
              shuttle_deploy_requests_total shuttle_deploy_refused_total
              shuttle_metrics_projects shuttle_metrics_projects_limit))
{
    ok($m->{type}{$f} && $m->{help}{$f}, "$f has TYPE and HELP");
}
my %once;
ok(!(grep { $once{$_}++ } @{ $m->{order} }), 'each family appears once');

my $limit = $m->{v}{shuttle_metrics_projects_limit};
ok($limit > 10 && $limit < 200, "a 32k zone holds $limit projects");

is(get('localhost', '/metrics/closed')->{status}, 403,
   'allow/deny apply to the location');
my $r = http($port, "POST /metrics/nginx HTTP/1.0\r\nHost: localhost\r\n"
                    . "Content-Length: 0\r\n\r\n");
is($r->{status}, 405, 'POST is not allowed');


# counts, exact across two workers --------------------------------------------

# a new connection each: both workers count
for (1 .. 40) { get('alpha.apps.test', '/') }
for (1 .. 7)  { get('alpha.apps.test', '/fail') }
for (1 .. 3)  { get('alpha.apps.test', '/missing') }
for (1 .. 5)  { get('beta.apps.test', '/') }
for (1 .. 2)  { get('later.apps.test', '/') }

$m = settled(sub { count($_[0], 'alpha') == 50 && req($_[0], 'beta', '2xx') == 5
                   && req($_[0], 'later', '5xx') == 2 });
is(req($m, 'alpha', '2xx'), 40, 'alpha: 40 2xx');
is(req($m, 'alpha', '5xx'), 7, 'alpha: 7 5xx');
is(req($m, 'alpha', '4xx'), 3, 'alpha: 3 4xx');
is(req($m, 'alpha', '1xx') + req($m, 'alpha', '3xx'), 0, 'alpha: no 1xx, 3xx');
is(req($m, 'beta', '2xx'), 5, 'beta: its own 5');
is(req($m, 'later', '5xx'), 2, 'a building project: its 503s count');
is(count($m, 'alpha'), 50, 'alpha: 50 upstream times');
is(bucket($m, 'alpha', '+Inf'), 50, '+Inf bucket = count');
ok(!defined count($m, 'later') || count($m, 'later') == 0,
   'no upstream time for answers nginx gave itself');
is($m->{v}{shuttle_metrics_projects}, 3, 'three projects have entries');

# histogram: cumulative, and a 150 ms answer in its bucket
for (1 .. 3) { is(get('sleepy.apps.test', '/')->{body}, "slow\n", 'slow') }
$m = settled(sub { count($_[0], 'sleepy') == 3 });
is(count($m, 'sleepy'), 3, 'sleepy: 3 observations');
is(bucket($m, 'sleepy', '0.100'), 0, 'not at or under 100 ms');
is(bucket($m, 'sleepy', '1.000'), 3, 'all at or under 1 s');
my $sum = $m->{v}{'shuttle_upstream_response_seconds_sum{project="sleepy"}'};
ok($sum >= 0.45 && $sum < 0.75, "sum of 3 x 150 ms: $sum s");

my @le = map { /le="([^"]+)"/ ? $1 : () }
         grep { /^shuttle_upstream_response_seconds_bucket\{project="alpha"/ }
         split /\n/, $m->{raw};
my @cum = map { bucket($m, 'alpha', $_) } @le;
is($le[-1], '+Inf', 'the last bucket is +Inf');
ok(!(grep { $cum[$_] < $cum[$_ - 1] } 1 .. $#cum), 'buckets are cumulative');


# requests that name no project: counted by reason, never by Host ------------

my %un0 = map { $_ => $m->{v}{"shuttle_http_unrouted_requests_total{reason=\"$_\"}"} }
          qw(unknown_project bad_name bad_host);
for my $i (1 .. 30) { get("nosuch$i.apps.test", '/') }
get('bad_name.apps.test', '/');
get('elsewhere.example', '/');
my $un = sub { $_[0]{v}{"shuttle_http_unrouted_requests_total{reason=\"$_[1]\"}"} };
$m = settled(sub { $un->($_[0], 'unknown_project') - $un0{unknown_project} == 30
                   && $un->($_[0], 'bad_name') - $un0{bad_name} == 1 });
is($m->{v}{'shuttle_http_unrouted_requests_total{reason="unknown_project"}'}
   - $un0{unknown_project}, 30, '30 unknown projects counted');
is($m->{v}{'shuttle_http_unrouted_requests_total{reason="bad_name"}'}
   - $un0{bad_name}, 1, 'a bad name counted');
is_deeply([ projects($m) ], [ qw(_other alpha beta later sleepy) ],
          'no label for a Host that is not a project');


# under load: wrk's answers, all counted ---------------------------------------

SKIP: {
    skip 'no wrk', 1 unless -x '/usr/bin/wrk';
    my $before = req(scrape(), 'beta', '2xx');
    my $out = `wrk -t2 -c8 -d1s -H 'Host: beta.apps.test' http://127.0.0.1:$port/ 2>&1`;
    my ($n) = $out =~ /(\d+) requests in/;
    my $got;
    settled(sub { my $g = req($_[0], 'beta', '2xx') - $before;
                  my $same = defined $got && $g == $got;
                  $got = $g; $same });
    # wrk stops reading with up to one answer per connection in flight
    ok(defined $n && $got >= $n && $got <= $n + 8,
       "wrk's $n answers, nginx counted $got") or diag($out);
}


# uploads nginx refused -------------------------------------------------------

$r = http($port, "POST /deploy HTTP/1.0\r\nHost: localhost\r\n"
                 . "Content-Length: 3\r\n\r\nabc");
is($r->{status}, 401, 'upload without a key: 401');
$r = http($port, "POST /deploy HTTP/1.0\r\nHost: localhost\r\n"
                 . "Authorization: Bearer $alice\r\n"
                 . "X-Shuttle-Project: alpha\r\n"
                 . "Content-Length: 2048\r\n\r\n" . ('x' x 2048));
is($r->{status}, 413, 'upload over client_max_body_size: 413');
$m = settled(sub { $_[0]{v}{'shuttle_deploy_requests_total{class="4xx"}'} == 2 });
is($m->{v}{'shuttle_deploy_refused_total{reason="unauthorized"}'}, 1,
   'refused: unauthorized');
is($m->{v}{'shuttle_deploy_refused_total{reason="too_large"}'}, 1,
   'refused: too large');
is($m->{v}{'shuttle_deploy_requests_total{class="4xx"}'}, 2,
   'deploy answers by class');


# a reload keeps the counts -----------------------------------------------------

my $alpha = req($m, 'alpha', '2xx');
$t->reload;
get('alpha.apps.test', '/');
is(req(settled(sub { req($_[0], 'alpha', '2xx') > $alpha }), 'alpha', '2xx'),
   $alpha + 1, 'a reload keeps the counts');


# past the room: "_other" ----------------------------------------------------

my $used = scrape()->{v}{shuttle_metrics_projects};
my $extra = $limit - $used + 5;
for my $i (1 .. $extra) { $t->zone_cmd('set', "p$i", $a, 'running', 10 + $i) }
for my $i (1 .. $extra) {
    my $s = get("p$i.apps.test", '/')->{status};
    $s == 200 or diag("p$i: $s");
}
$m = settled(sub { req($_[0], '_other', '2xx') == 5 });
is($m->{v}{shuttle_metrics_projects}, $limit, 'entries stop at the limit');
is(req($m, '_other', '2xx'), 5, 'the 5 projects past it count as _other');
my @labels = projects($m);
is(scalar @labels, $limit + 1, 'labels: the limit, and _other');
ok(!defined $m->{v}{'#bad'}, 'a full table prints well-formed');


# off -----------------------------------------------------------------------

my $conf = $t->conf;
$conf =~ s/shuttle_metrics_zone 32k;/shuttle_metrics_zone off;/;
$t->write_file('nginx.conf', $conf);
$t->reload;
$t->wait_until(sub { get('localhost', '/metrics/nginx')->{body} =~ /is off/ },
               5);
like(get('localhost', '/metrics/nginx')->{body}, qr/^# shuttle_metrics_zone is off/,
     'off: the page says so');
is(get('alpha.apps.test', '/')->{status}, 200, 'off: projects still served');

$conf =~ s/shuttle_metrics_zone off;/shuttle_metrics_zone 1;/;
$t->write_file('nginx.conf', $conf);
my ($ok, $out) = $t->nginx_test;
ok(!$ok && $out =~ /"shuttle_metrics_zone" takes a size of at least/,
   'a size too small is refused with the reason');

done_testing;
