#!/usr/bin/perl

# shuttle-builder serve, driven the way nginx drives it: an upload written
# into the spool, POST /deploy?project&key&file on the unix socket, then
# the management API with X-Shuttle-Key.  Deploy examples/hello and get
# "Hello, world!" from its loader, redeploy, a build error, ownership,
# names, the zone, delete.  Other behaviours: t/builder-*.t.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $hello = Shuttle::Test::repo() . '/examples/hello';

# hello's source with another greeting, and one that does not compile
sub hello_saying {
    my ($name, $text) = @_;
    $t->write_file("$name/src/main.c", <<"EOF");
#include <shuttle.h>

static void
hello(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "$text\\n");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/hello", hello);
    return 0;
}
EOF
    return $t->testdir . "/$name";
}

my $again = hello_saying('again', 'Hello again!');

$t->write_file('broken/src/main.c', <<'EOF');
#include <shuttle.h>

SHUTTLE_MAIN(app)
{
    return no_such_thing;
}
EOF
my $broken = $t->testdir . '/broken';

$t->builder_start;

my $spool = $t->builder_spool;

sub spooled { -e "$spool/$_[0]" }

sub get_hello {
    my ($port) = @_;
    my $r = eval { http_get($port, 'localhost', '/hello') };
    return $r ? $r->{body} : "no answer: $@";
}


# one builder per zone, per socket ----------------------------------------

my $bpid = $t->builder_pid;

my ($rc, $out, $err) = $t->zone_run(qw(set intruder 127.0.0.1:1 running));
isnt($rc, 0, 'zone set refused while the builder runs');
like($err, qr/zone \S+ is in use by a running builder, pid $bpid /,
     'the refusal names the builder and its pid');

($rc, $out) = $t->builder_run;
isnt($rc, 0, 'a second builder on the same zone refuses to start');
like($out, qr/zone \S+ is held by another builder, pid $bpid /,
     '... naming the zone and the other pid');

($rc, $out) = $t->builder_run('--zone', $t->testdir . '/other-zone',
                              '--data', $t->testdir . '/other-data');
isnt($rc, 0, 'a builder on a live socket refuses to start');
like($out, qr/socket \S+builder\.sock is live/, '... naming the socket');

# the keys it checks bearer keys against: read at start, like nginx's
($rc, $out) = $t->builder_run('--api-keys', $t->testdir . '/no-keys');
is($rc >> 8, 2, 'a builder whose --api-keys file is missing refuses to start');
like($out, qr/--api-keys: \S+\/no-keys: No such file or directory/,
     '... naming the file');
$t->write_file('bad-keys', "# a comment\n\nalice:" . ('ab' x 32) . "\n"
                           . "bob:abc\n");
($rc, $out) = $t->builder_run('--api-keys', $t->testdir . '/bad-keys');
is($rc >> 8, 2, '... or malformed');
like($out, qr/--api-keys: \S+\/bad-keys line 4 is not "name:sha256-hex"/,
     '... naming the line');


# the API's manners -------------------------------------------------------

my $r = $t->builder_request('GET', '/v1/projects');
is($r->{status}, 401, 'no X-Shuttle-Key: 401');
is($r->{headers}{'content-type'}, 'application/json', '... as JSON');
like($r->{json}{error}, qr/key/, '... saying a key is missing');

$r = $t->api('alice', 'GET', '/v1/nothing');
is($r->{status}, 404, 'unknown path: 404');
like($r->{json}{error}, qr{not found: /v1/nothing}, '... as a JSON error');

$r = $t->builder_request('GET', '/');
is($r->{status}, 404, 'GET /: 404');

$r = $t->api('alice', 'POST', '/v1/projects');
is($r->{status}, 405, 'POST /v1/projects: 405');
is($r->{headers}{allow}, 'GET', '... with Allow');
like($r->{json}{error}, qr/method not allowed/, '... as a JSON error');

$r = $t->builder_request('GET', '/deploy?project=hello');
is($r->{status}, 405, 'GET /deploy: 405');

$r = $t->api('alice', 'GET', '/v1/projects');
is($r->{status}, 200, 'GET /v1/projects');
is_deeply($r->{json}, { projects => [] }, '... none yet');


# names and spool files the hand-off refuses ------------------------------

for my $bad ('Hello', '-hello', 'hello-', 'hel.lo', 'a' x 64, '') {
    my $file = "bad-name-" . length($bad);
    $r = $t->deploy($bad, $hello, file => $file);
    is($r->{status}, 400, "project name '$bad': 400");
    like($r->{json}{error}, qr/DNS label/, '... a DNS label is wanted');
    ok(!spooled($file), '... and the upload is removed from the spool');
}

$r = $t->deploy('hello', $hello, key => 'al ice', file => 'bad-key');
is($r->{status}, 400, 'key name with a space: 400');
ok(!spooled('bad-key'), '... upload removed');

$t->write_file('outside', 'not an upload');
for my $file ('../outside', '.hidden', 'x/y') {
    $r = $t->builder_request('POST', "/deploy?project=hello&key=alice"
                                     . "&file=$file");
    is($r->{status}, 400, "spool file '$file': 400");
    like($r->{json}{error}, qr/spool/, '... naming the spool');
}
ok(-e $t->testdir . '/outside', 'a file outside the spool is left alone');

$r = $t->builder_request('POST', '/deploy?project=hello&key=alice'
                                 . '&file=0000099999');
is($r->{status}, 400, 'a spool file that is not there: 400');

mkdir "$spool/adir";
$r = $t->builder_request('POST', '/deploy?project=hello&key=alice'
                                 . '&file=adir');
is($r->{status}, 400, 'a directory in the spool: 400');
like($r->{json}{error}, qr/not a regular file/, '... not a regular file');

is($t->zone_cmd('list'), '', 'nothing refused reached the zone');


# deploy hello ------------------------------------------------------------

$r = $t->deploy('hello', $hello, file => '0000000001');
is($r->{status}, 202, 'POST /deploy: 202');
is($r->{headers}{'content-type'}, 'application/json', '... JSON');
my $id1 = $r->{json}{id};
like($id1, qr/^\d+$/, '... with the deployment id');
is_deeply($r->{json}, { id => $id1, project => 'hello', state => 'queued',
                         url => undef },
          '... {id, project, state: queued, url: null (no --apps-url)}');
ok(!spooled('0000000001'), 'the upload left the spool (renamed)');

my $d1 = $t->wait_deployment('alice', $id1, qr/^(running|failed)$/);
is($d1->{state}, 'running', "deployment #$id1 is running");
my $port1 = $d1->{port};
like($port1, qr/^\d+$/, '... on a port');
my ($lo, $hi) = $t->builder_ports;
ok($port1 >= $lo && $port1 <= $hi, "... of the builder's range $lo-$hi");
is(get_hello($port1), "Hello, world!\n", 'GET /hello answers Hello, world!');

is($t->zone_cmd('list'), "hello running 127.0.0.1:$port1 $id1\n",
   'the zone routes hello to it');

is_deeply([ map { $_->{state} } @{ $d1->{transitions} } ],
          [qw(queued building built loading running)],
          'its transitions: queued building built loading running');
like($_->{at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
     "... $_->{state} at an ISO 8601 UTC time with ms")
    for @{ $d1->{transitions} };
ok(defined $d1->{build_ms} && defined $d1->{start_ms},
   "build_ms $d1->{build_ms}, start_ms $d1->{start_ms}");

# what the loader got from the builder: stdin /dev/null, stdout and
# stderr its runtime.log, fd 3 the listening socket, nothing of the
# builder's (its database, zone, log, socket, spool)
my ($lpid) = $t->loader_pids;

# sandboxed, the loader proper is the only child of its namespace's init
for my $pid (grep { /^\d+$/ } do { opendir my $dh, '/proc'; readdir $dh }) {
    open my $fh, '<', "/proc/$pid/stat" or next;
    my $stat = <$fh> // '';
    if ($stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $lpid) {
        $lpid = $pid;
        last;
    }
}

my %fds = map { $_ => readlink("/proc/$lpid/fd/$_") // '' }
          grep { /^\d+$/ } do { opendir my $dh, "/proc/$lpid/fd"; readdir $dh };
is($fds{0}, '/dev/null', "loader $lpid: stdin /dev/null");
like($fds{1}, qr{/deployments/$id1/runtime\.log$}, '... stdout runtime.log');
is($fds{2}, $fds{1}, '... stderr too');
like($fds{3}, qr/^socket:/, '... fd 3 its listening socket');
my $testdir = $t->testdir;
is_deeply([ grep { $fds{$_} =~ m{^\Q$testdir\E/(?!data/projects/hello/)} }
            sort keys %fds ], [], '... no other file of the builder');

if ($> == 0) {
    my @st = stat $t->builder_socket;
    is($st[2] & 07777, 0600, 'the socket is 0600');
    is($st[4], scalar getpwnam('nobody'), '... owned by --nginx-user nobody');
    is((stat $spool)[4], scalar getpwnam('nobody'), '... so is the spool');
}

my $dir1 = $t->builder_data . "/projects/hello/deployments/$id1";
ok(-f "$dir1/service.so", 'service.so is kept');
ok(!-e "$dir1/upload.tar.gz", 'the upload is removed once extracted');
ok(!-e "$dir1/src", 'the source is removed once built');

$r = $t->api('alice', 'GET', "/v1/deployments/$id1/logs");
is($r->{status}, 200, 'GET /v1/deployments/ID/logs');
like($r->{headers}{'content-type'}, qr{^text/plain}, '... text/plain');
my $lines = join '.*', '^shuttle: extracting', '^shuttle: building',
                       '^cc .*main\.c', '^shuttle: starting',
                       "^shuttle: running on 127\\.0\\.0\\.1:$port1\$";
like($r->{body}, qr/$lines/ms,
     '... extracting, building, the compiler, starting, running on');

$r = $t->api('alice', 'GET', "/v1/deployments/$id1/logs?runtime=1");
is($r->{status}, 200, 'GET /v1/deployments/ID/logs?runtime=1');
like($r->{body}, qr/^\S+ hello loader: ready$/m, "... the loader's output");
unlike($r->{body}, qr/^shuttle: /m, '... not the build log');

$r = $t->api('alice', 'GET', '/v1/projects/hello');
is($r->{status}, 200, 'GET /v1/projects/hello');
my $p = $r->{json};
is($p->{name}, 'hello', '... name');
is($p->{owner}, 'alice', '... owner: the key that deployed it first');
is($p->{state}, 'running', '... state');
is($p->{current}, $id1, '... current deployment');
is($p->{latest}{id}, $id1, '... latest deployment');
ok(exists $p->{url}, '... url (null without --apps-url)');
like($p->{created}, qr/Z$/, '... created');

$r = $t->api('alice', 'GET', '/v1/projects');
is_deeply([ map { $_->{name} } @{ $r->{json}{projects} } ], ['hello'],
          "alice's projects: hello");


# another key -------------------------------------------------------------

$r = $t->deploy('hello', $hello, key => 'bob', file => 'bobs');
is($r->{status}, 403, "bob deploys alice's hello: 403");
is($r->{json}{error}, 'project hello belongs to another key',
   '... it belongs to another key');
ok(!spooled('bobs'), "... bob's upload removed");

$r = $t->api('bob', 'GET', '/v1/projects/hello');
is($r->{status}, 404, "bob cannot see alice's project");
is($r->{json}{error}, 'project hello not found', '... not found');
is($t->api('bob', 'GET', "/v1/deployments/$id1")->{status}, 404,
   "... nor her deployment");
is($t->api('bob', 'GET', "/v1/deployments/$id1/logs")->{status}, 404,
   "... nor its log");
is($t->api('bob', 'DELETE', '/v1/projects/hello')->{status}, 404,
   "... nor delete it");
is_deeply($t->api('bob', 'GET', '/v1/projects')->{json}, { projects => [] },
          "bob's projects: none");


# redeploy: the switch ----------------------------------------------------

my ($loader1) = $t->loader_pids;
ok($loader1, "hello's loader, pid $loader1");

$r = $t->deploy('hello', $again);
is($r->{status}, 202, 'redeploy: 202');
my $id2 = $r->{json}{id};
my $d2 = $t->wait_deployment('alice', $id2, qr/^(running|failed)$/);
is($d2->{state}, 'running', "deployment #$id2 is running");
my $port2 = $d2->{port};
isnt($port2, $port1, "... on another port, $port2");
is(get_hello($port2), "Hello again!\n", '... with the new greeting');
is($t->zone_cmd('list'), "hello running 127.0.0.1:$port2 $id2\n",
   'the zone switched to it');

$d1 = $t->api('alice', 'GET', "/v1/deployments/$id1")->{json};
is($d1->{state}, 'superseded', "#$id1 is superseded");
is($d1->{superseded_by}, $id2, "... by #$id2");
ok($t->wait_until(sub { !$t->pid_alive($loader1) }),
   "... its loader $loader1 exited");
my @left = $t->loader_pids;
is(scalar @left, 1, "one loader left, #${id2}'s");


# a build error leaves the running one serving ----------------------------

$r = $t->deploy('hello', $broken);
my $id3 = $r->{json}{id};
my $d3 = $t->wait_deployment('alice', $id3, qr/^(running|failed)$/);
is($d3->{state}, 'failed', "bad C: #$id3 failed");
like($d3->{reason}, qr/build failed/, "... reason: $d3->{reason}");
is($d3->{port}, undef, '... no port');

$r = $t->api('alice', 'GET', "/v1/deployments/$id3/logs");
like($r->{body}, qr/main\.c:\d+:\d+: error: \S*no_such_thing\S* undeclared/,
     "the build log holds the compiler's error");
like($r->{body}, qr/^shuttle: failed: build failed/m,
     '... and ends with the reason');

is(get_hello($port2), "Hello again!\n", "#$id2 still serves");
is($t->zone_cmd('list'), "hello running 127.0.0.1:$port2 $id2\n",
   '... and the zone still routes to it');

$p = $t->api('alice', 'GET', '/v1/projects/hello')->{json};
is($p->{state}, 'running', 'the project is still running');
is($p->{current}, $id2, "... #$id2");
is($p->{latest}{id}, $id3, "... its latest deployment is #$id3");
is($p->{latest}{state}, 'failed', '... failed');

$r = $t->api('alice', 'GET', '/v1/projects/hello/deployments');
is($r->{status}, 200, 'GET /v1/projects/hello/deployments');
is_deeply([ map { [$_->{id}, $_->{state}] } @{ $r->{json}{deployments} } ],
          [ [$id3, 'failed'], [$id2, 'running'], [$id1, 'superseded'] ],
          '... newest first, with their states');


# rollback: a replaced deployment serves again, no build -----------------

$r = $t->api('alice', 'POST', '/v1/projects/hello/rollback', body => '{}');
is($r->{status}, 200, 'POST /v1/projects/hello/rollback {}: 200');
is_deeply($r->{json}, { id => $id1, project => 'hello', state => 'running' },
          "... #$id1, the one replaced last, runs again");
my $port1b = $t->api('alice', 'GET', "/v1/deployments/$id1")->{json}{port};
is(get_hello($port1b), "Hello, world!\n", '... and answers at once');
is($t->zone_cmd('list'), "hello running 127.0.0.1:$port1b $id1\n",
   '... the zone routes to it');
is($t->api('alice', 'GET', "/v1/deployments/$id2")->{json}{state},
   'superseded', "#$id2 is superseded now");
ok($t->wait_until(sub { my @l = $t->loader_pids; @l == 1 }),
   '... its loader stopped');

$r = $t->api('alice', 'POST', '/v1/projects/hello/rollback',
             body => qq({"deployment": $id2}));
is($r->{status}, 200, "rollback to #$id2 by id");
$port2 = $t->api('alice', 'GET', "/v1/deployments/$id2")->{json}{port};
is(get_hello($port2), "Hello again!\n", "... #$id2 serves again");
is($t->api('alice', 'GET', '/v1/projects/hello/deployments')
     ->{json}{deployments}[0]{id}, $id3, '... and no deployment was added');

$r = $t->api('alice', 'POST', '/v1/projects/hello/rollback',
             body => qq({"deployment": $id3}));
is($r->{status}, 409, "rollback to the failed #$id3: 409");
like($r->{json}{error}, qr/#$id3 is failed/, "... it is failed");

$r = $t->api('alice', 'POST', '/v1/projects/hello/rollback',
             body => 'deployment=1');
is($r->{status}, 400, 'a body that is not JSON: 400');

$r = $t->api('bob', 'POST', '/v1/projects/hello/rollback', body => '{}');
is($r->{status}, 404, "bob cannot roll back alice's project");


# a first deploy that fails: the zone says so -----------------------------

$r = $t->deploy('oops', $broken);
my $id4 = $r->{json}{id};
$t->wait_deployment('alice', $id4, qr/^failed$/);
like($t->zone_cmd('list'), qr/^oops failed 0\.0\.0\.0:0 $id4$/m,
     "a project with nothing running: its zone slot is failed, #$id4");
is($t->api('alice', 'GET', '/v1/projects/oops')->{json}{state}, 'failed',
   '... and so is its state');
$r = $t->api('alice', 'POST', '/v1/projects/oops/rollback', body => '{}');
is($r->{status}, 409, 'nothing to roll back to: 409');
is($r->{json}{error}, 'project oops has no earlier deployment to roll back to',
   '... saying so');


# delete ------------------------------------------------------------------

my ($loader2) = $t->loader_pids;
my $resources = $t->builder_data . '/projects/hello/resources';
$t->write_file("$resources/main.db", 'data that outlives deployments');

$r = $t->api('alice', 'DELETE', '/v1/projects/hello');
is($r->{status}, 200, 'DELETE /v1/projects/hello');
is_deeply($r->{json}, { project => 'hello', deleted => JSON::PP::true(),
                        purged => JSON::PP::false() },
          '... {project, deleted: true, purged: false}');
ok($t->wait_until(sub { !$t->pid_alive($loader2) }),
   "its loader $loader2 stopped");
unlike($t->zone_cmd('list'), qr/^hello /m, 'its zone slot is gone');
ok(!-e $t->builder_data . '/projects/hello/deployments',
   'its deployments are removed');
ok(-f "$resources/main.db", '... its resources/ are kept');
is($t->api('alice', 'GET', '/v1/projects/hello')->{status}, 404,
   'GET it: 404');
is($t->api('alice', 'GET', "/v1/deployments/$id2")->{json}{state}, 'deleted',
   "#$id2 is deleted");
is($t->api('alice', 'DELETE', '/v1/projects/hello')->{status}, 404,
   'DELETE it again: 404');

$r = $t->deploy('hello', $hello, key => 'bob');
is($r->{status}, 403, 'bob cannot take hello: what alice keeps holds it');
like($r->{json}{error}, qr/^project hello is held by another key/,
     '... saying so');
$r = $t->api('alice', 'DELETE', '/v1/projects/hello?purge=1');
is($r->{status}, 200, 'alice purges the deleted hello');
ok(!-e $resources, '... its resources/ are gone');

$r = $t->deploy('hello', $hello, key => 'bob');
is($r->{status}, 202, 'the name is free: bob deploys hello');
my $d5 = $t->wait_deployment('bob', $r->{json}{id}, qr/^(running|failed)$/);
is($d5->{state}, 'running', '... and it runs');
is(get_hello($d5->{port}), "Hello, world!\n", '... Hello, world!');
is($t->api('bob', 'GET', '/v1/projects/hello')->{json}{owner}, 'bob',
   '... owned by bob');


# SIGTERM -----------------------------------------------------------------

my @loaders = $t->loader_pids;
is($t->builder_stop('TERM'), 0, 'SIGTERM: the builder exits 0');
is(scalar(grep { $t->pid_alive($_) } @loaders), scalar @loaders,
   '... its loaders serve on, for the next builder to adopt');
ok(!-e $t->builder_socket, '... its socket removed');
like($t->builder_log, qr/^\S+Z info ready: /m,
     'its log lines are timestamped (ISO 8601 UTC, ms) and leveled');

done_testing;
