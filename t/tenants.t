#!/usr/bin/perl

# Tenants on one platform: keys alice and ali (a prefix of alice's name),
# through the real nginx.  Every route of the builder's API, as its own
# table lists them ("shuttle-builder routes"), refuses ali on alice's
# project and alice on ali's, and changes nothing; a name whose data
# alice keeps is not ali's to take until she purges it; a first deploy
# that failed holds no name and counts toward no limit; a key has at most
# --key-projects projects and --key-jobs builds at once, while the other
# key's build goes on.  The builder's socket answers only root and
# nginx's workers (SO_PEERCRED), whatever header a process of another uid
# forges; and nginx's workers' uid speaks for no key by itself: the
# builder checks the bearer key (--api-keys), so a process of that uid
# naming alice, without her secret, reads and deploys nothing of hers.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new(keys => ['alice', 'ali'],
                               builder_args => ['--jobs', '2',
                                                '--key-jobs', '1',
                                                '--key-projects', '3']);
my $t = $p->t;
my $repo = Shuttle::Test::repo();
my $hello = "$repo/examples/hello";
my $data = $t->builder_data;

# hello, built by its own Makefile; with a file "hold" in it, the build
# waits until the test puts a file "go" beside it
$t->write_file('gated/src/main.c', $t->read_file("$hello/src/main.c"));
$t->write_file('gated/hold', '');
$t->write_file('gated/Makefile', <<'EOF');
service.so: src/main.c
	@echo waiting for go
	@while [ -e hold ] && [ ! -e go ]; do sleep 0.02; done
	$(CC) -std=gnu11 -O2 -fPIC -shared -I$(SHUTTLE_INCLUDE) -o $@ src/main.c
EOF
my $gated = $t->testdir . '/gated';

$t->write_file('broken/src/main.c', "this is not C\n");
my $broken = $t->testdir . '/broken';

sub deployment { $p->v1($_[0], 'GET', "/v1/deployments/$_[1]")->{json} }

sub wait_state {
    my ($who, $id, $re) = @_;
    my $d;
    $t->wait_until(sub { $d = deployment($who, $id); ($d->{state} // '') =~ $re },
                   30);
    return $d;
}

sub at {
    my ($d, $state) = @_;
    my ($tr) = grep { $_->{state} eq $state } @{ $d->{transitions} // [] };
    return $tr ? $tr->{at} : '';
}

sub go { $t->write_file("$data/projects/$_[0]/deployments/$_[1]/src/go", '') }

sub secret_in_store {
    my ($project, $key) = @_;
    my ($rc, $out) = Shuttle::Platform::run_cmd(
        ['sqlite3', "$data/shuttle.db", "SELECT owner || ':' || value "
         . "FROM secrets WHERE project = '$project' AND key = '$key'"],
        env => { PATH => $ENV{PATH} });
    chomp $out;
    return $out;
}


# builds per key: --jobs 2, --key-jobs 1 -----------------------------------

my $r = $p->upload('alice', 'slow1', $gated);
is($r->{status}, 202, 'alice uploads slow1 (its build waits for a go)')
    or diag explain $r;
my $a1 = $r->{json}{id};
ok(wait_state('alice', $a1, qr/^building$/), "slow1 #$a1 is building");

unlink "$gated/hold";
$r = $p->upload('alice', 'slow2', $gated);      # not held: builds at once
my $a2 = $r->{json}{id};
$t->write_file('gated/hold', '');
$r = $p->upload('ali', 'slow3', $gated);
my $l1 = $r->{json}{id};
is($r->{status}, 202, "alice's slow2 #$a2 and ali's slow3 #$l1 uploaded");

ok(wait_state('ali', $l1, qr/^building$/),
   "ali's #$l1 builds in the second job");
is(deployment('alice', $a2)->{state}, 'queued',
   "alice's #$a2, uploaded before it, waits: alice has her one build");

go('slow3', $l1);
my $d = wait_state('ali', $l1, qr/^(running|failed)$/);
is($d->{state}, 'running', "ali's #$l1 runs");
is(deployment('alice', $a2)->{state}, 'queued',
   "... a job is free, #$a2 still waits for alice's #$a1");

go('slow1', $a1);
my $d1 = wait_state('alice', $a1, qr/^(running|failed)$/);
is($d1->{state}, 'running', "alice's #$a1 runs");
my $d2 = wait_state('alice', $a2, qr/^(running|failed)$/);
is($d2->{state}, 'running', "... then #$a2 built and runs");
ok(at($d2, 'building') ge at($d1, 'built'),
   "... #$a2 began building once #$a1 was built");
ok(at($d2, 'building') gt at($d, 'building'),
   "... after ali's later upload #$l1 had begun");


# a first deploy that failed holds nothing ---------------------------------

my ($rc, $out, $err) = $p->cli(['deploy', $broken]);
isnt($rc, 0, "alice's first deploy of broken fails") or diag $out;
my $list = $p->v1('alice', 'GET', '/v1/projects/broken/deployments')->{json};
my $failed = $list->{deployments}[0]{id};
is($list->{deployments}[0]{state}, 'failed', "... #$failed failed");


# projects per key: --key-projects 3 ----------------------------------------

($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/todo"]);
is($rc, 0, 'alice deploys todo: her third project, broken does not count')
    or diag $err;

$r = $p->upload('alice', 'four', $hello);
is($r->{status}, 403, 'a fourth project of alice: 403');
is($r->{json}{error}, 'key alice has 3 projects, the limit '
   . '(--key-projects 3): delete one to deploy project four',
   '... naming the limit');
is($p->v1('alice', 'GET', '/v1/projects/four')->{status}, 404,
   '... no project four');
ok(!-e "$data/projects/four", '... nothing of it on disk');
$r = $p->upload('alice', 'slow1', $hello);
is($r->{status}, 202, '... a redeploy of slow1 at the limit is taken');
wait_state('alice', $r->{json}{id}, qr/^(running|failed)$/);

$r = $p->upload('ali', 'broken', $hello);
is($r->{status}, 202, "ali takes broken: alice's never ran");
my $lb = $r->{json}{id};
is(wait_state('ali', $lb, qr/^(running|failed)$/)->{state}, 'running',
   "... ali's #$lb runs");
is($p->v1('ali', 'GET', '/v1/projects/broken')->{json}{owner}, 'ali',
   '... owned by ali');
$r = $p->v1('alice', 'GET', "/v1/deployments/$failed/logs");
is($r->{status}, 200, "alice still reads her failed #${failed}'s build log");
like($r->{body}, qr/error/, '... with the compiler\'s error');
is($p->v1('ali', 'GET', "/v1/deployments/$failed/logs")->{status}, 404,
   '... ali cannot');


# every route of the API: ali on alice's todo, alice on ali's broken -------

# the router's own table, "METHOD PATH" a line, "{...}" any one segment
my ($rrc, $rout, $rerr) = Shuttle::Platform::run_cmd(
    [Shuttle::Test::builder(), 'routes'], env => { PATH => $ENV{PATH} });
is($rrc, 0, 'shuttle-builder routes') or diag $rerr;
my @table = map { [split / /, $_, 2] } grep { /\S/ } split /\n/, $rout;
ok(scalar(grep { "@$_" eq 'PUT /v1/projects/{project}/scale' } @table),
   scalar(@table) . ' routes, PUT /v1/projects/{project}/scale among them');

# routes that name no project or deployment: what covers each
my %unnamed = (
    'POST /deploy'     => 'the uploads of another key\'s project below',
    'GET /metrics'     => 'speaks for no key: for the host alone',
    'GET /v1/projects' => 'lists the caller\'s projects only, below',
);

# how each route is tried, beyond "{...}" filled in with the project,
# its current deployment and its secret TOKEN: queries and bodies that
# would succeed for the owner.  Any other route is tried bare (PUT and
# POST with {}).
my %tries = (
    'DELETE /v1/projects/{project}' => [['?purge=1'], ['']],
    'POST /v1/projects/{project}/rollback' => [['', {}],
                                               ['', { deployment => 'ID' }]],
    'PUT /v1/projects/{project}/secrets' => [['', { TOKEN => 'stolen' }],
                                             ['', { OTHER => 'planted' }]],
    'PUT /v1/projects/{project}/scale' => [['', { idle => '5m' }],
                                           ['', { idle => undef }]],
    'GET /v1/deployments/{deployment}/logs' => [[''], ['?runtime=1'],
                                                ['?follow=1']],
);

# the requests to try on $project (deployment $id): [method, path, body]
sub requests_on {
    my ($project, $id) = @_;
    my @req;
    for my $route (@table) {
        my ($method, $path) = @$route;
        if ($path !~ /\{/) {
            ok(exists $unnamed{"$method $path"},
               "$method $path names no project: "
               . ($unnamed{"$method $path"} // 'NOT COVERED by this test'));
            next;
        }
        my %fill = (project => $project, deployment => $id,
                    secret => 'TOKEN');
        (my $real = $path) =~ s/\{(\w+)\}/$fill{$1} \/\/ die "{$1} in $path"/ge;
        my $default = $method =~ /^(PUT|POST)$/ ? [['', {}]] : [['']];
        for my $try (@{ $tries{"$method $path"} // $default }) {
            my ($query, $body) = @$try;
            $body = { map { $_ => (($body->{$_} // '') eq 'ID'
                                   ? $id : $body->{$_}) } keys %$body }
                if ref $body;
            push @req, [$method, "$real$query", $body];
        }
    }
    # deletions last: the others must find the project there
    return ((grep { $_->[0] ne 'DELETE' } @req),
            (grep { $_->[0] eq 'DELETE' } @req));
}

sub secrets_in_store {
    my ($project) = @_;
    my ($rc, $out) = Shuttle::Platform::run_cmd(
        ['sqlite3', "$data/shuttle.db", "SELECT owner || ':' || key || '=' "
         . "|| value FROM secrets WHERE project = '$project' ORDER BY key"],
        env => { PATH => $ENV{PATH} });
    return $out;
}

# all that the owner sees of $project, and what runs it
sub snapshot {
    my ($owner, $project, $path) = @_;
    return {
        project     => $p->v1($owner, 'GET', "/v1/projects/$project")->{json},
        deployments => $p->v1($owner, 'GET',
                              "/v1/projects/$project/deployments")->{json},
        secrets     => $p->v1($owner, 'GET',
                              "/v1/projects/$project/secrets")->{json},
        stored      => secrets_in_store($project),
        # the project's own loaders: another's (a replaced one still
        # draining, an idle one woken) may come and go meanwhile
        loaders     => [grep { Shuttle::Test::_cmdline($_)
                                   =~ m{/projects/\Q$project\E/} }
                        $t->loader_pids],
        answers     => $p->app_get($project, $path)->{status},
        resources   => -d "$data/projects/$project/resources" ? 1 : 0,
    };
}

# $who tries every route on $owner's $project: 404 each time, nothing of
# the project in the answer, and nothing changed
sub cross {
    my ($who, $owner, $project, $app) = @_;
    my $before = snapshot($owner, $project, $app);
    my $id = $before->{project}{current};
    ok($id && deployment($owner, $id)->{state} eq 'running',
       "$owner\'s $project runs #$id");
    is($before->{answers}, 200, "... and answers $app");
    is_deeply($before->{secrets}{secrets}, ['TOKEN'], '... its secret TOKEN');
    ok(@{ $before->{loaders} }, "... its loader runs: @{ $before->{loaders} }");

    for my $req (requests_on($project, $id)) {
        my ($method, $path, $body) = @$req;
        $r = $p->v1($who, $method, $path,
                    defined $body ? (body => $body) : ());
        is($r->{status}, 404, "$who: $method $path of $owner\'s: 404")
            or diag $r->{body};
        unlike($r->{body}, qr/$owner-token|TOKEN|"owner"/,
               "... nothing of $owner\'s in the answer");
    }

    is_deeply(snapshot($owner, $project, $app), $before,
              "$owner\'s $project: nothing changed (the project, its "
              . 'deployments, secrets, loader, answers, resources)');
}

$r = $p->v1('alice', 'PUT', '/v1/projects/todo/secrets',
            body => { TOKEN => 'alice-token' });
is($r->{status}, 200, 'alice sets the secret TOKEN of todo');
$r = $p->v1('ali', 'PUT', '/v1/projects/broken/secrets',
            body => { TOKEN => 'ali-token' });
is($r->{status}, 200, 'ali sets the secret TOKEN of broken');

my $todo = $p->v1('alice', 'GET', '/v1/projects/todo')->{json};
my $id = $todo->{current};
my $dir = "$data/projects/todo";

cross('ali', 'alice', 'todo', '/todos');
cross('alice', 'ali', 'broken', '/hello');

$r = $p->v1('ali', 'GET', '/v1/projects/todo',
            headers => ['X-Shuttle-Key' => 'alice']);
is($r->{status}, 404, 'ali sending X-Shuttle-Key: alice through nginx: '
                      . 'still ali (404)');
$r = $p->v1('ali', 'GET', '/v1/projects');
is_deeply([sort map { $_->{name} } @{ $r->{json}{projects} }],
          ['broken', 'slow3'], 'ali: GET /v1/projects lists ali\'s own');
$r = $p->v1('alice', 'GET', '/v1/projects');
is_deeply([sort map { $_->{name} } @{ $r->{json}{projects} }],
          ['slow1', 'slow2', 'todo'], '... alice\'s, hers');
$r = $p->upload('ali', 'todo', $hello, query => '&key=alice');
is($r->{status}, 403, 'ali uploads todo (with ?key=alice): 403');
is($r->{json}{error}, 'project todo belongs to another key',
   '... it belongs to another key');
$r = $p->upload('alice', 'broken', $hello);
is($r->{status}, 403, 'alice uploads broken: 403');
is($p->v1('alice', 'GET', '/v1/projects/todo')->{json}{current}, $id,
   "todo: #$id still current");
is(secret_in_store('todo', 'TOKEN'), 'alice:alice-token',
   '... alice\'s secret unchanged');


# kept data holds the name --------------------------------------------------

$r = $p->v1('alice', 'DELETE', '/v1/projects/todo');
is($r->{status}, 200, 'alice deletes todo, keeping its data');

$r = $p->upload('ali', 'todo', $hello);
is($r->{status}, 403, 'ali uploads todo: 403');
like($r->{json}{error}, qr/^project todo is held by another key: the databases, secrets or uid of its deleted project are kept/,
     '... the name is held');
is($p->v1('ali', 'GET', '/v1/projects/todo')->{status}, 404,
   '... no project of ali\'s');
for my $route ([GET => '/v1/projects/todo/secrets'],
               [PUT => '/v1/projects/todo/secrets', { TOKEN => 'ali' }],
               [DELETE => '/v1/projects/todo/secrets/TOKEN'],
               [DELETE => '/v1/projects/todo?purge=1'])
{
    my ($method, $path, $body) = @$route;
    $r = $p->v1('ali', $method, $path, defined $body ? (body => $body) : ());
    is($r->{status}, 404, "ali: $method $path of the kept todo: 404");
}
is(secret_in_store('todo', 'TOKEN'), 'alice:alice-token',
   'alice\'s secret is unchanged');
ok(-d "$dir/resources", '... and her database kept');

$r = $p->v1('alice', 'DELETE', '/v1/projects/todo?purge=1');
is($r->{status}, 200, 'alice purges the deleted todo');
ok(!-e "$dir/resources", '... its database is gone');
is(secret_in_store('todo', 'TOKEN'), '', '... its secret too');

$r = $p->upload('ali', 'todo', $hello);
is($r->{status}, 202, 'now ali may deploy todo');
is(wait_state('ali', $r->{json}{id}, qr/^(running|failed)$/)->{state},
   'running', '... and it runs');


# the builder's socket: SO_PEERCRED -----------------------------------------

my $sock = $t->builder_socket;
my $nobody = getpwnam('nobody');
my $ngid = (getpwnam('nobody'))[3];

$r = $p->builder_request_as(12345, 12345, 'GET', '/v1/projects',
                            key => 'alice');
like($r->{error} // '', qr/connect/,
     'uid 12345 cannot connect to the socket (0600, nginx\'s user)');

# as if the socket were reachable: the builder still checks who speaks
chmod 0666, $sock or die "chmod $sock: $!";

$r = $p->builder_request_as(12345, 12345, 'GET', '/v1/projects',
                            key => 'alice');
is($r->{status}, 403, 'the socket open to all: uid 12345 with '
                      . 'X-Shuttle-Key: alice: 403');
is($r->{json}{error}, 'uid 12345 may not speak for a key on this socket: '
   . "only root and nginx's workers (nobody)", '... naming the uid and why');
like($p->builder_log, qr/warn api: GET \/v1\/projects from uid 12345 \(pid \d+\) refused/,
     '... a warning in the builder\'s log');

$t->write_file('spool/forged', 'x' x 100);
$r = $p->builder_request_as(12345, 12345, 'POST',
                            '/deploy?project=todo&key=alice&file=forged');
is($r->{status}, 403, 'a forged hand-off from uid 12345: 403');
ok(-e $t->builder_spool . '/forged', '... the spool file not even touched');
is($p->v1('ali', 'GET', '/v1/projects/todo/deployments')->{json}
       {deployments}[0]{state}, 'running',
   '... ali\'s todo unchanged');

unlink $t->builder_spool . '/forged';
chmod 0600, $sock;


# nginx's workers' uid speaks for no key by itself ---------------------------

# What nginx's workers run as (nobody here, www-data on Debian, PHP-FPM's
# user too) reaches the socket; a process of that uid that names alice
# without her secret gets nothing of hers.

sub as_nginx { $p->builder_request_as($nobody, $ngid, @_) }

sub names { [sort map { $_->{name} } @{ $_[0]{json}{projects} // [] }] }

$r = as_nginx('GET', '/v1/projects', key => 'alice');
is($r->{status}, 401, "uid $nobody (nginx's workers) with X-Shuttle-Key: "
                      . 'alice, no secret: 401');
is($r->{json}{error}, "no key: uid $nobody speaks for a key only with the "
   . "key's secret (Authorization: Bearer); a key's name (X-Shuttle-Key, "
   . 'key=) is taken from root alone', '... the secret is wanted');
unlike($r->{body}, qr/slow1/, '... none of alice\'s projects listed');
like($p->builder_log, qr/warn api: GET \/v1\/projects from uid $nobody refused: it names key "alice" without the key's secret/,
     '... a warning in the builder\'s log');

$r = as_nginx('GET', '/v1/projects', key => 'alice',
              bearer => $p->key('ali'));
is($r->{status}, 200, '... with ali\'s secret and X-Shuttle-Key: alice: '
                      . '200');
is_deeply(names($r), ['broken', 'slow3', 'todo'],
          '... ali\'s projects: the key is the secret\'s, not the header\'s');

$r = as_nginx('GET', '/v1/projects', bearer => 'sk_' . ('0' x 64));
is($r->{status}, 401, '... a secret that is no key\'s: 401');
is($r->{json}{error}, 'invalid bearer key', '... invalid');

$r = as_nginx('GET', '/v1/projects', bearer => $p->key('alice'));
is($r->{status}, 200, '... alice\'s secret, as nginx passes it on: 200');
is_deeply(names($r), ['slow1', 'slow2'], '... alice\'s projects');

# every route that speaks for a key, on alice's slow1, naming alice
my $slow1 = $p->v1('alice', 'GET', '/v1/projects/slow1')->{json};
my $before = snapshot('alice', 'slow1', '/hello');
for my $req (requests_on('slow1', $slow1->{current})) {
    my ($method, $path, $body) = @$req;
    $r = as_nginx($method, $path, key => 'alice',
                  defined $body ? (body => JSON::PP::encode_json($body),
                                   headers => ['Content-Type'
                                               => 'application/json'])
                                : ());
    is($r->{status}, 401, "uid $nobody naming alice: $method $path: 401");
}

# a forged hand-off: a tarball copied into the spool, then key=alice
my ($trc, $tout) = Shuttle::Platform::run_cmd(
    ['tar', 'czf', $t->builder_spool . '/forged', '-C', $hello, '.'],
    env => { PATH => $ENV{PATH} });
is($trc, 0, 'a tarball of hello copied into the spool') or diag $tout;
chown $nobody, $ngid, $t->builder_spool . '/forged';

$r = as_nginx('POST', '/deploy?project=slow1&key=alice&file=forged');
is($r->{status}, 401, "a forged hand-off from uid $nobody (key=alice, no "
                      . 'secret): 401');
ok(-e $t->builder_spool . '/forged', '... the spool file not touched');

$r = as_nginx('POST', '/deploy?project=slow1&key=alice&file=forged',
              bearer => $p->key('ali'));
is($r->{status}, 403, '... with ali\'s secret (key=alice): 403');
is($r->{json}{error}, 'project slow1 belongs to another key',
   '... the upload is ali\'s, and slow1 is alice\'s');
ok(!-e $t->builder_spool . '/forged', '... the refused upload removed');
is_deeply(snapshot('alice', 'slow1', '/hello'), $before,
          'alice\'s slow1: nothing changed (no deployment, no secret, the '
          . 'same loader)');

# the operator's tools, as root, may still name a key
$r = $t->builder_request('GET', '/v1/projects', key => 'alice');
is($r->{status}, 200, 'root naming alice (X-Shuttle-Key): 200');
is_deeply(names($r), ['slow1', 'slow2'], '... alice\'s projects');


# the builder reads the keys file again when it changes ----------------------

my $carol = $p->add_key('carol');
$r = as_nginx('GET', '/v1/projects', bearer => $carol);
is($r->{status}, 200, 'a key added while the builder runs: 200 at once');
is_deeply(names($r), [], '... no projects of carol\'s');

my ($krc, $kout, $kerr) = Shuttle::Platform::run_cmd(
    [Shuttle::Test::builder(), 'keys', '--file', $p->testdir . '/api_keys',
     'del', 'carol'], env => { PATH => $ENV{PATH} });
is($krc, 0, 'carol\'s key deleted') or diag $kerr;
$r = as_nginx('GET', '/v1/projects', bearer => $carol);
is($r->{status}, 401, '... refused at once: 401');
like($p->builder_log, qr/api keys: \S+api_keys read again: 2 keys/,
     '... the builder read the file again');

done_testing;
