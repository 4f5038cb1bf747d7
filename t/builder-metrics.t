#!/usr/bin/perl

# The builder's GET /metrics, Prometheus text 0.0.4, through the real
# nginx (location = /metrics, 127.0.0.1 only) and on the builder's socket:
# no key needed there while /v1/ still wants one; every family has HELP
# and TYPE, every sample parses, histograms are cumulative with +Inf equal
# to _count; a deploy moves deployments{state="running"}, the projects
# gauge and the build and start histograms; refused uploads count under a
# fixed reason (bad_archive, too_large, bad_name, forbidden); a loader
# killed with SIGKILL counts a crash and a restart; two projects scaled to
# zero count two idles, a request to one a wake of that one alone (the
# other stays idle), and the loaders gauges follow; project names never
# become label values; a rollback counts as requested.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

# nginx's cached connections to a loader close after 300 ms: a project
# scaled to zero goes idle once its 1 s is over
my $p = Shuttle::Platform->new(keys => ['alice', 'bob'],
                               builder_args => ['--max-file-size', '64k'],
                               upstream_keepalive_timeout => '300ms');
my $t = $p->t;
my $hello = Shuttle::Test::repo() . '/examples/hello';

# GET /metrics through nginx, no key: { status, headers, body, samples,
# families }, the text checked as it is parsed
sub scrape {
    my $r = http_get($p->port, 'localhost', '/metrics');
    return $r unless $r->{status} == 200;
    my (%samples, %families, @bad);

    for my $line (split /\n/, $r->{body}) {
        if ($line =~ /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/) {
            $families{$2}{$1} = $3;
            next;
        }
        my ($name, $labels, $value) =
            $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/;
        if (defined $name
            && $value =~ /^(?:[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?
                              |[-+]?Inf|NaN)$/x)
        {
            $labels //= '';
            my %l;
            my $rest = $labels =~ s/^\{|\}$//gr;
            while ($rest =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?//) {
                $l{$1} = $2;
            }
            push @bad, $line if $rest ne '';
            push @{ $samples{$name} }, { labels => \%l, value => $value,
                                         line => $line };
            next;
        }
        push @bad, $line;
    }

    $r->{samples} = \%samples;
    $r->{families} = \%families;
    $r->{bad} = \@bad;
    return $r;
}

# the value of NAME{LABELS}; undef when there is no such sample
sub value {
    my ($m, $name, %want) = @_;
    for my $s (@{ $m->{samples}{$name} // [] }) {
        next if keys %{ $s->{labels} } != keys %want;
        next if grep { ($s->{labels}{$_} // '') ne $want{$_} } keys %want;
        return $s->{value};
    }
    return undef;
}

# polls the metrics until $cond->($m) holds; the last scrape
sub wait_metrics {
    my ($cond, $timeout) = @_;
    my $m;
    $t->wait_until(sub { $m = scrape(); $m->{status} == 200 && $cond->($m) },
                   $timeout // 10);
    return $m;
}

# the family of a sample name: NAME, or NAME less _bucket, _sum, _count
sub family_of {
    my ($m, $name) = @_;
    return $name if $m->{families}{$name};
    return $1 if $name =~ /^(.+)_(?:bucket|sum|count)$/
                 && ($m->{families}{$1}{TYPE} // '') eq 'histogram';
    return undef;
}

# every check the format must pass, as one list of failures
sub format_errors {
    my ($m) = @_;
    my @e = map { "not a sample or comment: $_" } @{ $m->{bad} };

    for my $f (sort keys %{ $m->{families} }) {
        push @e, "$f: no HELP" unless defined $m->{families}{$f}{HELP};
        push @e, "$f: no TYPE" unless defined $m->{families}{$f}{TYPE};
        push @e, "$f: TYPE $m->{families}{$f}{TYPE}"
            unless ($m->{families}{$f}{TYPE} // '')
                   =~ /^(?:counter|gauge|histogram)$/;
        push @e, "$f: not a shuttle_ or process_ name"
            unless $f =~ /^(?:shuttle|process)_/;
    }

    for my $name (sort keys %{ $m->{samples} }) {
        my $f = family_of($m, $name);
        push @e, "$name: no family (HELP, TYPE)" unless defined $f;
        push @e, "$name: a counter without _total"
            if defined $f && $m->{families}{$f}{TYPE} eq 'counter'
               && $name !~ /_total$/;
    }

    # histograms: per label set, buckets rising, +Inf = _count
    for my $f (grep { $m->{families}{$_}{TYPE} eq 'histogram' }
               keys %{ $m->{families} })
    {
        my %series;
        for my $s (@{ $m->{samples}{"${f}_bucket"} // [] }) {
            my %l = %{ $s->{labels} };
            my $le = delete $l{le};
            push @e, "$s->{line}: no le" unless defined $le;
            my $key = join ',', map { "$_=$l{$_}" } sort keys %l;
            push @{ $series{$key} }, [$le, $s->{value}];
        }
        push @e, "$f: no buckets" unless %series;
        for my $key (sort keys %series) {
            my @b = @{ $series{$key} };
            my %l = map { split /=/, $_, 2 } grep { length } split /,/, $key;
            for my $i (1 .. $#b) {
                push @e, "$f\{$key}: le $b[$i][0] before $b[$i-1][0]"
                    unless $b[$i][0] eq '+Inf' || $b[$i][0] > $b[$i-1][0];
                push @e, "$f\{$key}: bucket le=$b[$i][0] ($b[$i][1]) under "
                         . "le=$b[$i-1][0] ($b[$i-1][1])"
                    if $b[$i][1] < $b[$i-1][1];
            }
            push @e, "$f\{$key}: the last bucket is not +Inf"
                unless $b[-1][0] eq '+Inf';
            my $count = value($m, "${f}_count", %l);
            my $sum = value($m, "${f}_sum", %l);
            push @e, "$f\{$key}: no _count" unless defined $count;
            push @e, "$f\{$key}: no _sum" unless defined $sum;
            push @e, "$f\{$key}: +Inf $b[-1][1], _count " . ($count // '-')
                unless defined $count && $b[-1][1] == $count;
        }
    }

    return @e;
}

# every series, NAME{LABELS} without the value
sub series {
    my ($m) = @_;
    return sort map { my $s = $_; map { $_->{line} =~ s/ \S+$//r }
                      @{ $m->{samples}{$s} } } keys %{ $m->{samples} };
}

sub hist_count {
    my ($m, $name, %l) = @_;
    return value($m, "${name}_count", %l) // 0;
}

sub start_count {
    my ($m) = @_;
    my $n = 0;
    $n += $_->{value} for @{ $m->{samples}{'shuttle_start_duration_seconds_count'} };
    return $n;
}

sub project { $p->v1('alice', 'GET', "/v1/projects/$_[0]")->{json} // {} }


# before any deploy --------------------------------------------------------

my $m0 = scrape();
is($m0->{status}, 200, 'GET /metrics through nginx, no key: 200');
like($m0->{headers}{'content-type'} // '',
     qr{^text/plain; version=0\.0\.4; charset=utf-8$},
     'Content-Type: text/plain; version=0.0.4; charset=utf-8');
is_deeply([format_errors($m0)], [], 'the text parses: HELP, TYPE, samples, '
          . 'histograms');

my @states = qw(queued building built loading running failed stopped
                superseded crashed deleted);
is_deeply([map { value($m0, 'shuttle_deployments', state => $_) } @states],
          [(0) x @states], 'shuttle_deployments: every state, all 0');
is(value($m0, 'shuttle_projects'), 0, 'shuttle_projects 0');
is(value($m0, 'shuttle_queue_length'), 0, 'shuttle_queue_length 0');
is(value($m0, 'shuttle_builds_running'), 0, 'shuttle_builds_running 0');
is(value($m0, 'shuttle_loaders', state => $_), 0,
   "shuttle_loaders{state=\"$_\"} 0") for qw(starting running backoff idle);
is(hist_count($m0, 'shuttle_build_duration_seconds'), 0,
   'no build observed yet');
for my $name (qw(shuttle_deploys_total shuttle_loader_crashes_total
                 shuttle_loader_restarts_total shuttle_wakes_total
                 shuttle_idles_total shuttle_health_check_failures_total))
{
    is(value($m0, $name), 0, "$name 0");
}
is(value($m0, 'shuttle_uploads_refused_total', reason => $_), 0,
   "shuttle_uploads_refused_total{reason=\"$_\"} 0")
    for qw(bad_name forbidden quota zone_full too_large bad_archive
           no_space unavailable other);
cmp_ok(value($m0, 'process_start_time_seconds') // 0, '>', 1.5e9,
       'process_start_time_seconds: a time');

my $r = $t->builder_request('GET', '/metrics');
is($r->{status}, 200, 'on the builder\'s socket, no X-Shuttle-Key: 200');
$r = $t->builder_request('GET', '/v1/projects');
is($r->{status}, 401, '... /v1/projects without a key still 401');
$r = $t->builder_request('POST', '/metrics', body => '');
is($r->{status}, 405, 'POST /metrics: 405');
is($r->{headers}{allow}, 'GET', '... Allow: GET');
$r = http_get($p->port, 'localhost', '/v1/projects');
is($r->{status}, 401, 'through nginx, /v1/projects without a key: 401');


# a deploy ------------------------------------------------------------------

$r = $p->upload('alice', 'hello', $hello);
is($r->{status}, 202, 'hello uploaded: 202') or diag $r->{body};
$t->wait_deployment('alice', $r->{json}{id}, qr/^running$/, 60);

my $m1 = wait_metrics(sub {
    value($_[0], 'shuttle_deployments', state => 'running') >= 1
    && value($_[0], 'shuttle_loaders', state => 'running') == 1
});
is(value($m1, 'shuttle_deployments', state => 'running'), 1,
   'shuttle_deployments{state="running"} 1');
is(value($m1, 'shuttle_projects'), 1, 'shuttle_projects 1');
is(value($m1, 'shuttle_loaders', state => 'running'), 1,
   'shuttle_loaders{state="running"} 1');
is(value($m1, 'shuttle_deploys_total'), 1, 'shuttle_deploys_total 1');
is(hist_count($m1, 'shuttle_build_duration_seconds'), 1,
   'the build histogram counts one build');
cmp_ok(value($m1, 'shuttle_build_duration_seconds_sum'), '>', 0,
       '... its sum is its time');
is(hist_count($m1, 'shuttle_start_duration_seconds', kind => 'deploy'), 1,
   'the start histogram counts one start, kind="deploy"');
cmp_ok(value($m1, 'shuttle_start_duration_seconds_bucket', kind => 'deploy',
             le => '10'), '==', 1, '... within 10 s');
is(value($m1, 'shuttle_queue_length'), 0, 'the queue is empty again');
is_deeply([format_errors($m1)], [], 'the text still parses');


# refused uploads -------------------------------------------------------------

sub refused { value($_[0], 'shuttle_uploads_refused_total', reason => $_[1]) }

# not a tar.gz: accepted, then refused as it is extracted
$t->write_file('junk.tar.gz', "this is not a gzip'd tarball\n" x 10);
$r = $t->deploy('junk', $t->testdir . '/junk.tar.gz');
is($r->{status}, 202, 'a broken tarball is handed over: 202');
$t->wait_deployment('alice', $r->{json}{id}, qr/^failed$/, 30);
my $m2 = wait_metrics(sub { refused($_[0], 'bad_archive') == 1 });
is(refused($m2, 'bad_archive'), 1, 'uploads_refused_total{reason="bad_archive"} 1');

# over --max-file-size 64k
$t->write_file('big/src/main.c', "#include <shuttle.h>\n");
$t->write_file('big/blob.txt', join('', map { sprintf "%08d\n", $_ } 1 .. 10000));
$r = $p->upload('alice', 'big', $t->testdir . '/big');
is($r->{status}, 202, 'an upload with a 90 KB file: 202');
$t->wait_deployment('alice', $r->{json}{id}, qr/^failed$/, 30);
$m2 = wait_metrics(sub { refused($_[0], 'too_large') == 1 });
is(refused($m2, 'too_large'), 1, 'uploads_refused_total{reason="too_large"} 1');

# a name the builder refuses (nginx checks it too: straight to the socket)
$r = $t->deploy('Not_A_Label', $hello);
is($r->{status}, 400, 'project "Not_A_Label" handed over: 400');

# another key's project
$r = $p->upload('bob', 'hello', $hello);
is($r->{status}, 403, 'bob uploads alice\'s hello: 403');

$m2 = scrape();
is(refused($m2, 'bad_name'), 1, 'uploads_refused_total{reason="bad_name"} 1');
is(refused($m2, 'forbidden'), 1,
   'uploads_refused_total{reason="forbidden"} 1');
is(refused($m2, $_), 0, "uploads_refused_total{reason=\"$_\"} still 0")
    for qw(quota zone_full no_space unavailable other);
is(value($m2, 'shuttle_deploys_total'), 3,
   'shuttle_deploys_total 3: the two accepted, then failed, count');
is(value($m2, 'shuttle_deployments', state => 'failed'), 2,
   'shuttle_deployments{state="failed"} 2');
is(hist_count($m2, 'shuttle_build_duration_seconds'), 1,
   'no build ran for them');


# a crash ------------------------------------------------------------------------

my ($loader) = $t->loader_pids;
ok($loader, "hello's loader: pid $loader");
kill 'KILL', $loader;

my $m3 = wait_metrics(sub {
    value($_[0], 'shuttle_loader_crashes_total') == 1
    && value($_[0], 'shuttle_loader_restarts_total') == 1
    && value($_[0], 'shuttle_loaders', state => 'running') == 1
    && hist_count($_[0], 'shuttle_start_duration_seconds',
                  kind => 'restart') == 1
}, 15);
is(value($m3, 'shuttle_loader_crashes_total'), 1,
   'SIGKILL: shuttle_loader_crashes_total 1');
is(value($m3, 'shuttle_loader_restarts_total'), 1,
   '... shuttle_loader_restarts_total 1');
is(hist_count($m3, 'shuttle_start_duration_seconds', kind => 'restart'), 1,
   '... the restart\'s start observed, kind="restart"');
is(value($m3, 'shuttle_loaders', state => 'running'), 1,
   '... running again');
is($p->app_get('hello', '/hello')->{status}, 200, '... and serving');


# idle, then a wake ----------------------------------------------------------------

# two projects idle, hello and other ("other v1"); a request to one wakes
# it alone (whichever the builder lists first, a wake of the wrong one
# counts two wakes or leaves no idle loader)
$r = $p->upload('alice', 'other', Shuttle::Fault::app_src($p, 'other', 1));
is($r->{status}, 202, 'other uploaded: 202') or diag $r->{body};
$t->wait_deployment('alice', $r->{json}{id}, qr/^running$/, 60);
for my $name ('hello', 'other') {
    $r = $p->v1('alice', 'PUT', "/v1/projects/$name/scale",
                body => { idle => '1s' });
    is($r->{status}, 200, "$name scales to zero after 1s")
        or diag $r->{body};
}

my $m4 = wait_metrics(sub {
    value($_[0], 'shuttle_loaders', state => 'idle') == 2
}, 15);
is(value($m4, 'shuttle_loaders', state => 'idle'), 2,
   'no request for 1 s: shuttle_loaders{state="idle"} 2');
is(value($m4, 'shuttle_loaders', state => 'running'), 0,
   '... shuttle_loaders{state="running"} 0');
is(value($m4, 'shuttle_idles_total'), 2, '... shuttle_idles_total 2');
is(value($m4, 'shuttle_wakes_total'), 0, '... no wake yet');
is(value($m4, 'shuttle_deployments', state => 'running'), 2,
   '... their deployments stay running');

$r = $p->app_get('hello', '/hello');
is($r->{status}, 200, 'a request wakes hello: 200');
is($r->{body}, "Hello, world!\n", '... hello answers');

# requests meanwhile: it does not go idle again while this looks
my $m5 = wait_metrics(sub {
    $p->app_get('hello', '/hello')->{status} == 200
    && value($_[0], 'shuttle_wakes_total') >= 1
    && value($_[0], 'shuttle_loaders', state => 'running') >= 1
});
is(value($m5, 'shuttle_wakes_total'), 1, 'shuttle_wakes_total 1');
is(value($m5, 'shuttle_loaders', state => 'idle'), 1,
   'shuttle_loaders{state="idle"} 1: other');
is(value($m5, 'shuttle_loaders', state => 'running'), 1,
   'shuttle_loaders{state="running"} 1: hello');
is(project('other')->{state}, 'idle', 'other is idle still');
is(hist_count($m5, 'shuttle_start_duration_seconds', kind => 'wake'), 1,
   'the wake\'s start observed, kind="wake"');
is(value($m5, 'shuttle_loader_crashes_total'), 1,
   'going idle and waking are no crash');
is_deeply([format_errors($m5)], [], 'the text still parses');

# the other way round: both idle, a request to other
my $m8 = wait_metrics(sub {
    value($_[0], 'shuttle_loaders', state => 'idle') == 2
}, 15);
is(value($m8, 'shuttle_loaders', state => 'idle'), 2, 'both idle again');
$r = $p->app_get('other', '/');
is($r->{status}, 200, 'a request wakes other: 200');
is($r->{body}, "other v1\n", '... other answers');
$m8 = wait_metrics(sub {
    $p->app_get('other', '/')->{status} == 200
    && value($_[0], 'shuttle_wakes_total') >= 2
    && value($_[0], 'shuttle_loaders', state => 'running') >= 1
});
is(value($m8, 'shuttle_wakes_total'), 2, 'shuttle_wakes_total 2');
is(value($m8, 'shuttle_loaders', state => 'idle'), 1,
   'shuttle_loaders{state="idle"} 1: hello');
is(project('hello')->{state}, 'idle', 'hello is idle still');

# back to never: the rest does not race with idleness
for my $name ('hello', 'other') {
    $r = $p->v1('alice', 'PUT', "/v1/projects/$name/scale",
                body => { idle => 'never' });
    is($r->{status}, 200, "$name never scales to zero again");
}


# bounded cardinality --------------------------------------------------------------

my @before = series(scrape());
my @names = map { "card-$_-x" . int(rand(1e6)) } 1 .. 3;
for my $name (@names) {
    $r = $t->deploy($name, $t->testdir . '/junk.tar.gz');
    is($r->{status}, 202, "project $name handed over: 202");
    $t->wait_deployment('alice', $r->{json}{id}, qr/^failed$/, 30);
}
my $m6 = wait_metrics(sub { refused($_[0], 'bad_archive') == 4 });
is(refused($m6, 'bad_archive'), 4, 'three more bad archives counted');
is_deeply([series($m6)], \@before,
          'the same series as before: no new label value');
my @named = grep { my $l = $_; grep { index($l, $_) >= 0 } @names }
            split /\n/, $m6->{body};
is_deeply(\@named, [], 'no project name anywhere in the text');
is(value($m6, 'shuttle_projects'), 7,
   'shuttle_projects 7: hello, other, junk, big and the three');
is_deeply([format_errors($m6)], [], 'the text still parses');



# a rollback ------------------------------------------------------------------------

$r = $p->upload('alice', 'hello', $hello);
is($r->{status}, 202, 'hello uploaded again: 202');
$t->wait_deployment('alice', $r->{json}{id}, qr/^running$/, 60);
my $starts = hist_count(scrape(), 'shuttle_start_duration_seconds',
                        kind => 'deploy');

$r = $p->v1('alice', 'POST', '/v1/projects/hello/rollback', body => {});
is($r->{status}, 200, 'hello rolled back to the first deployment')
    or diag $r->{body};
my $m7 = wait_metrics(sub {
    value($_[0], 'shuttle_rollbacks_total', kind => 'requested') == 1
    && hist_count($_[0], 'shuttle_start_duration_seconds',
                  kind => 'deploy') == $starts + 1
});
is(value($m7, 'shuttle_rollbacks_total', kind => 'requested'), 1,
   'shuttle_rollbacks_total{kind="requested"} 1');
is(value($m7, 'shuttle_rollbacks_total', kind => 'automatic'), 0,
   'shuttle_rollbacks_total{kind="automatic"} 0');
is(hist_count($m7, 'shuttle_start_duration_seconds', kind => 'deploy'),
   $starts + 1, '... its loader\'s start observed');
is(value($m7, 'shuttle_deployments', state => 'superseded'), 1,
   'shuttle_deployments{state="superseded"} 1: the one rolled back from');
is(value($m7, 'shuttle_deployments', state => 'running'), 2,
   'shuttle_deployments{state="running"} 2: hello\'s and other\'s');
is_deeply([format_errors($m7)], [], 'the text still parses');

done_testing();
