#!/usr/bin/perl

# Scale to zero, through the real nginx, builder and loaders: a project
# with no request for --idle goes idle (its loader gone, its socket kept by
# the builder, the zone, the API, "shuttle status" and the runtime log say
# so); the next GET and the next POST are answered, not refused; clients
# running across idle -> wake -> idle see no failure; idle survives a
# builder restart (SIGTERM and SIGKILL) and a restart of the project; a
# loader that cannot start on wake gets its waiting requests a 502 that
# says why, and the next one after the cause is gone is served;
# "shuttle scale" sets a project's own timeout, "never" included; of two
# idle projects, a request to one wakes that one alone.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use Shuttle::Test;
use Shuttle::Platform;

# nginx's cached connections to a loader close after 300 ms, before the
# 1 s idle time is over: the loader never goes idle under one
my $p = Shuttle::Platform->new(builder_args => ['--idle', '1s'],
                               upstream_keepalive_timeout => '300ms');
my $t = $p->t;
my $dir = $p->testdir;
my $data = $t->builder_data;

$t->write_file('echo/src/main.c', <<'EOF');
#include <shuttle.h>
#include <stdio.h>
#include <string.h>

SHUTTLE_SECRETS();

static void
root(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "echo here\n");
}

static void
echo(shuttle_req *req, shuttle_res *res)
{
    size_t       len;
    const char  *body;

    body = shuttle_req_body(req, &len);
    shuttle_printf(res, 200, "got %zu: %.*s", len, (int) len,
                   body ? body : "");
}

SHUTTLE_MAIN(app)
{
    if (shuttle_secret(app, "FAIL") != NULL) {
        fprintf(stderr, "FAIL is set: not starting\n");
        return 1;
    }

    shuttle_get(app, "/", root);
    shuttle_post(app, "/echo", echo);
    return 0;
}
EOF

sub project { $p->v1('alice', 'GET', "/v1/projects/$_[0]")->{json} // {} }
sub state   { project($_[0])->{state} // '' }

sub wait_state {
    my ($name, $want, $timeout) = @_;
    return $t->wait_until(sub { state($name) eq $want }, $timeout // 10);
}

sub get_root  { $p->app_get('echo', '/') }
sub post_echo {
    my ($body) = @_;
    return http_get($p->port, 'echo.localhost', '/echo', method => 'POST',
                    body => $body,
                    headers => ['Content-Type' => 'text/plain']);
}

my ($rc, $out, $err) = $p->cli(['deploy', '--no-follow'],
                               dir => "$dir/echo");
is($rc, 0, 'shuttle deploy echo') or diag $out, $err;
ok(wait_state('echo', 'running', 30), 'echo runs');

my $r = get_root();
is($r->{status}, 200, 'GET / while running: 200');
my ($loader) = $t->loader_pids;
ok($loader, "its loader: pid $loader");
my $port = project('echo')->{latest}{port};


# idle --------------------------------------------------------------------

my $before = time;
ok(wait_state('echo', 'idle', 10), 'no request for 1 s: echo is idle');
my $took = time - $before;
cmp_ok($took, '>=', 0.5, sprintf('... not before its time (%.2f s after '
       . 'the last request)', $took));
ok($t->wait_until(sub { !$t->pid_alive($loader) }, 5),
   "its loader $loader is gone");
is_deeply([$t->loader_pids], [], 'no loader runs');

my $proj = project('echo');
is($proj->{latest}{state}, 'running', 'the deployment stays running');
ok($proj->{idle_since}, "idle_since: $proj->{idle_since}");
is($proj->{latest}{port}, $port, "the port stays the project's ($port)");
is($proj->{idle_after}, '1s', 'idle_after: 1s (the builder\'s --idle)');

my $zone = `${\ Shuttle::Test::builder()} zone $dir/zone list 2>&1`;
like($zone, qr/^echo idle 127\.0\.0\.1:$port /m, 'the zone says idle');

my $id = $proj->{current};
my $runtime = "$data/projects/echo/deployments/$id/runtime.log";
like($t->read_file($runtime), qr/idle: no connection for [\d.]+ s, exiting/,
     'the runtime log says so');
like($p->builder_log, qr/deploy echo #$id: idle: no request for 1s/,
     '... and the builder log');

($rc, $out) = $p->cli(['status', 'echo']);
like($out, qr/^echo\s+idle\s/m, 'shuttle status: idle');
like($out, qr/scales to zero after 1s without a request \(default\)/,
     '... after 1s, the default');
like($out, qr/idle since /, '... since when');

($rc, $out) = $p->cli(['list']);
like($out, qr/^echo\s+idle\b/m, 'shuttle list: idle');


# wake: a GET, then a POST ------------------------------------------------

my $t0 = time;
$r = get_root();
my $wake_ms = (time - $t0) * 1000;
is($r->{status}, 200, sprintf('the next GET is served: 200 (in %.1f ms)',
                              $wake_ms));
is($r->{body}, "echo here\n", '... with its body');
ok(!defined $r->{headers}{'retry-after'}, '... no Retry-After');
is(state('echo'), 'running', 'echo runs again');
my ($woken) = $t->loader_pids;
ok($woken && $woken != $loader, "a new loader, pid $woken");
like($p->builder_log, qr/deploy echo #$id: woken by a request/,
     'the builder log says it was woken');

ok(wait_state('echo', 'idle', 10), 'idle again');
$r = post_echo('a post that wakes it');
is($r->{status}, 200, 'a POST to the idle project: 200');
is($r->{body}, 'got 20: a post that wakes it', '... its body reached the '
   . 'service whole');


# a client across idle -> wake -> idle -----------------------------------

# after each GET and POST the client sleeps 1.1 to 1.6 s: the project goes
# idle 1.3 s after a request (nginx closes its connection after 300 ms,
# then 1 s without one), so requests meet it just before, as and just after
# it goes idle, and as it wakes; nginx never retries the POSTs
my $idles = () = $p->builder_log =~ /deploy echo #$id: idle:/g;
my ($total, $failed) = (0, 0);
for my $n (1 .. 12) {
    for my $post (0, 1) {
        my $res = eval {
            $post ? post_echo("req-$n")
                  : http_get($p->port, 'echo.localhost', '/', timeout => 5) };
        my $ok = $res && ($res->{status} // 0) == 200
                 && $res->{body} eq ($post ? 'got ' . length("req-$n")
                                             . ": req-$n"
                                           : "echo here\n");
        $total++;
        unless ($ok) {
            $failed++;
            diag "request $n: " . ($res ? "$res->{status} $res->{body}"
                                        : $@);
        }
    }
    sleep(1.1 + rand(0.5));
}
my $cycles = (() = $p->builder_log =~ /deploy echo #$id: idle:/g) - $idles;
is($failed, 0, "$total requests, GETs and POSTs, across the transitions: "
   . 'none failed');
cmp_ok($cycles, '>=', 3, "while echo went idle $cycles times and woke");


# a builder restart -------------------------------------------------------

ok(wait_state('echo', 'idle', 10), 'echo is idle');
$t->builder_stop('TERM');
$p->start_builder;
ok(wait_state('echo', 'idle', 10), 'after a builder restart (SIGTERM) it '
   . 'is idle still');
is_deeply([$t->loader_pids], [], '... with no loader');
my $port2 = project('echo')->{latest}{port};
like(`${\ Shuttle::Test::builder()} zone $dir/zone list 2>&1`,
     qr/^echo idle 127\.0\.0\.1:$port2 /m,
     "... on a socket of the new builder's ($port2)");
$r = get_root();
is($r->{status}, 200, '... and the next request wakes it: 200');

ok(wait_state('echo', 'idle', 10), 'idle again');
$t->builder_stop('KILL');
$p->start_builder;
ok(wait_state('echo', 'idle', 10), 'after a SIGKILLed builder too');
$r = post_echo('after a kill');
is($r->{status}, 200, '... and a POST wakes it: 200');
is($r->{body}, 'got 12: after a kill', '... answered by the service');


# a restart of an idle project ------------------------------------------

ok(wait_state('echo', 'idle', 10), 'idle');
($rc, $out, $err) = $p->cli(['restart', 'echo']);
is($rc, 0, 'shuttle restart of the idle project') or diag $err;
is(state('echo'), 'running', '... starts it now');
# (a loader that went idle may still be on its way out under load: wait)
ok($t->wait_until(sub { scalar(my @l = $t->loader_pids) == 1 }, 5),
   '... one loader: ' . join(' ', $t->loader_pids));


# a wake that fails -------------------------------------------------------

ok(wait_state('echo', 'idle', 10), 'idle');
$r = $p->v1('alice', 'PUT', '/v1/projects/echo/secrets',
            body => { FAIL => '1' });
is($r->{status}, 200, 'a secret set that makes the service refuse to '
   . 'start');

my $mark = length $p->builder_log;
$r = get_root();
is($r->{status}, 502, 'the request that wakes it: 502');
like($r->{body}, qr/echo: deployment #$id could not start: wake failed: /,
     '... saying what could not start');
like($r->{body}, qr/FAIL is set: not starting|main returned/,
     '... and why') or diag $r->{body};
# the next one comes in the backoff (no new try) or after it (a new try
# that fails the same): either way, the same reason
$r = get_root();
is($r->{status}, 502, 'the next request: 502 too');
like($r->{body}, qr/echo: deployment #$id could not start: wake failed: .*main returned/,
     '... with the same reason') or diag $r->{body};
$proj = project('echo');
like($proj->{latest}{reason}, qr/^wake failed: /,
     "the deployment's reason says so: $proj->{latest}{reason}");
is($proj->{state}, 'idle', 'the project stays idle');
like(substr($p->builder_log, $mark), qr/deploy echo #$id: wake failed: /,
     'the builder log says so');

$r = $p->v1('alice', 'DELETE', '/v1/projects/echo/secrets/FAIL');
is($r->{status}, 200, 'the secret removed');
ok($t->wait_until(sub { get_root()->{status} == 200 }, 10),
   'a later request wakes it: 200');
# the loader answers from the socket's backlog as soon as it listens,
# maybe before the builder read its "ready"
ok(wait_state('echo', 'running', 5), 'running');


# shuttle scale ---------------------------------------------------------

($rc, $out, $err) = $p->cli(['scale', 'echo', '--idle', 'never']);
is($rc, 0, 'shuttle scale echo --idle never') or diag $err;
like($err, qr/echo never scales to zero/, '... says so');
is(project('echo')->{idle_after}, 'never', 'idle_after: never');
get_root();
sleep 2.5;
is(state('echo'), 'running', '2.5 s without a request: still running');

($rc, $out, $err) = $p->cli(['scale', 'echo', '--idle', '2s']);
is($rc, 0, 'shuttle scale echo --idle 2s') or diag $err;
like($err, qr/scales to zero after 2s without a request/, '... says so');
get_root();
$before = time;
ok(wait_state('echo', 'idle', 10), 'idle');
cmp_ok(time - $before, '>=', 1.5, sprintf('... after its own 2 s (%.2f s)',
                                           time - $before));

($rc, $out, $err) = $p->cli(['scale', 'echo', '--idle', 'soon']);
isnt($rc, 0, 'shuttle scale --idle soon: refused');
like($err, qr/a duration such as "5m"/, '... saying what a duration is');

($rc, $out, $err) = $p->cli(['scale', 'echo', '--idle', 'default']);
is($rc, 0, 'shuttle scale echo --idle default');
is(project('echo')->{idle_after}, '1s', 'idle_after: 1s again');
ok(project('echo')->{idle_default}, '... the default');
ok(wait_state('echo', 'idle', 10), 'idle');
($rc, $out, $err) = $p->cli(['scale', 'echo', '--idle', '5m']);
is($rc, 0, 'shuttle scale of an idle project') or diag $err;
is(state('echo'), 'idle', '... leaves it idle: the next wake takes it');
is_deeply([$t->loader_pids], [], '... no loader started');
($rc) = $p->cli(['scale', 'echo', '--idle', 'default']);



# a redeploy and a rollback --------------------------------------------

# version 2 answers "echo v2"; idle; the wake is version 2's; a rollback
# to version 1 while idle; the next wake is version 1's
my $v1 = $t->read_file('echo/src/main.c');
(my $v2 = $v1) =~ s/echo here\\n/echo v2\\n/ or die 'no body to change';
$t->write_file('echo/src/main.c', $v2);
($rc, $out, $err) = $p->cli(['deploy'], dir => "$dir/echo");
is($rc, 0, 'version 2 deployed') or diag $err;
is(get_root()->{body}, "echo v2\n", '... and serves');
ok(wait_state('echo', 'idle', 10), 'idle');
is(get_root()->{body}, "echo v2\n", 'the wake is version 2\'s');

ok(wait_state('echo', 'idle', 10), 'idle');
($rc, $out, $err) = $p->cli(['rollback', 'echo', $id]);
is($rc, 0, "a rollback to #$id while idle") or diag $err;
is(project('echo')->{current}, $id, "#$id serves");
ok(wait_state('echo', 'idle', 10), 'idle again');
$r = get_root();
is($r->{status}, 200, 'the next request wakes it');
is($r->{body}, "echo here\n", '... version 1 answers');



# the warm loaders -------------------------------------------------------

# the builder keeps a pool of loaders started ahead (10), each with its
# child forked ahead, pid 1 of its namespaces, waiting for a request; a
# wake hands one child the service's loader (no exec, no fork), which
# shows its own command line; without them (killed), a wake execs a
# loader as before
my $POOL = 10;

sub warm_pids {
    my ($parent) = @_;
    $parent //= $p->builder_pid;
    return grep {
        my $st = $t->read_file("/proc/$_/stat") // '';
        my $cmd = $t->read_file("/proc/$_/cmdline") // '';
        $st =~ /\) \S+ $parent / && $cmd =~ /shuttle-loader\0--warm\0/
    } map { m{/proc/(\d+)$} ? $1 : () } glob '/proc/[0-9]*';
}

# a process's namespaces, "mnt:[...] pid:[...] ..."
sub namespaces {
    my ($pid) = @_;
    return join ' ', map { readlink("/proc/$pid/ns/$_") // "$_:?" }
                     qw(mnt pid_for_children net ipc uts);
}

my @warm;
ok($t->wait_until(sub { @warm = warm_pids(); @warm == $POOL }, 10),
   "a pool of $POOL warm loaders waits: pid @warm");
my %waiting = map { $_ => [warm_pids($_)] } @warm;
is(scalar(grep { @{ $waiting{$_} } == 1 } @warm), $POOL,
   '... each with its child forked ahead');
ok(wait_state('echo', 'idle', 10), 'idle');
is(get_root()->{status}, 200, 'a wake');
my ($l) = $t->loader_pids;
like($t->read_file("/proc/$l/cmdline") // '',
     qr{shuttle-loader\0--listen-fd\0003\0.*\0--name\0echo\0.*service\.so\0},
     "the woken loader $l shows its own command line");
my @used = grep { !$t->pid_alive($_) } @warm;
is(scalar @used, 1, "one warm loader was used up: @used");
is_deeply([$l], $waiting{ $used[0] // 0 } // [],
          '... its child forked ahead is the woken loader\'s init');
my $ns = namespaces($l);
my @next;
ok($t->wait_until(sub { @next = warm_pids(); @next == $POOL }, 10),
   "the pool refilled: pid @next");

# the next wake: another child, namespaces of its own
ok(wait_state('echo', 'idle', 10), 'idle');
is(get_root()->{status}, 200, 'a wake');
my ($l2) = $t->loader_pids;
isnt($l2, $l, "another loader, $l2");
my @ns2 = split ' ', namespaces($l2);
is(scalar(grep { my $x = $_; grep { $_ eq $x } split ' ', $ns } @ns2), 0,
   "... no namespace of the one before: $ns / @ns2");

my @children = map { warm_pids($_) } @next;
kill 'KILL', @next, @children;
ok(wait_state('echo', 'idle', 10), 'the warm loaders killed; idle');
$r = get_root();
is($r->{status}, 200, 'a wake without them: 200');
is($r->{body}, "echo here\n", '... answered by the service');



# two idle projects: a wake wakes the one asked, alone -------------------

# echo and other both idle; a request to one starts its loader alone and
# is answered by it; the other stays as it was: no loader, idle in the API,
# the zone and the store.  Each way round: whichever comes first in the
# builder's list, a wake of the wrong one shows.
sub loaders_of {
    my ($name) = @_;
    return grep {
        ($t->read_file("/proc/$_/cmdline") // '') =~ /\0--name\0\Q$name\E\0/
    } $t->loader_pids;
}

sub store_idle_since {
    my ($name) = @_;
    my $out = `sqlite3 $data/shuttle.db "SELECT d.idle_since FROM projects p
               JOIN deployments d ON d.id = p.current
               WHERE p.name = '$name' AND p.deleted IS NULL" 2>&1`;
    chomp $out;
    return $out;
}

(my $other = $v1) =~ s/echo here\\n/other here\\n/
    or die 'no body to change';
$t->write_file('other/src/main.c', $other);
($rc, $out, $err) = $p->cli(['deploy'], dir => "$dir/other");
is($rc, 0, 'a second project, other, deployed') or diag $err;
is($p->app_get('other', '/')->{body}, "other here\n", '... and serves');

for my $pair (['echo', 'other'], ['other', 'echo']) {
    my ($wake, $stay) = @$pair;
    ok(wait_state('echo', 'idle', 10) && wait_state('other', 'idle', 10),
       "echo and other are idle (to wake $wake)");
    ok($t->wait_until(sub { !$t->loader_pids }, 5), '... no loader runs');
    my $since = store_idle_since($stay);
    like($since, qr/^\d+$/, "$stay is idle in the store since $since");

    $mark = length $p->builder_log;
    $r = $p->app_get($wake, '/');
    is($r->{status}, 200, "a request to $wake: 200");
    is($r->{body}, "$wake here\n", "... answered by $wake");
    my @l = loaders_of($wake);
    is(scalar @l, 1, "... its loader started: pid @l");
    is_deeply([loaders_of($stay)], [], "$stay: no loader started");
    is_deeply([$t->loader_pids], \@l, '... no loader but ' . $wake . "'s");
    is(state($wake), 'running', "$wake runs");
    is(state($stay), 'idle', "$stay is idle still in the API");
    like(`${\ Shuttle::Test::builder()} zone $dir/zone list 2>&1`,
         qr/^$stay idle 127\.0\.0\.1:\d+ /m, '... in the zone');
    is(store_idle_since($stay), $since, '... and in the store, since then');
    my $log = substr($p->builder_log, $mark);
    like($log, qr/deploy $wake #\d+: woken by a request/,
         "the builder log: $wake woken");
    unlike($log, qr/deploy $stay #\d+: woken/, "... $stay not");
}

$p->stop;
is_deeply([$t->loader_pids], [], 'no loader left');

done_testing;
