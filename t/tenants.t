#!/usr/bin/perl

# Tenants on one platform: keys alice and bob, through the real nginx.
# Every /v1 route refuses bob on alice's project and changes nothing; a
# name whose data alice keeps is not bob's to take until she purges it;
# a first deploy that failed holds no name and counts toward no limit;
# a key has at most --key-projects projects and --key-jobs builds at
# once, while the other key's build goes on; and the builder's socket
# answers only root and nginx's workers (SO_PEERCRED), whatever header
# a process of another uid forges.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new(keys => ['alice', 'bob'],
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
$r = $p->upload('bob', 'slow3', $gated);
my $b1 = $r->{json}{id};
is($r->{status}, 202, "alice's slow2 #$a2 and bob's slow3 #$b1 uploaded");

ok(wait_state('bob', $b1, qr/^building$/),
   "bob's #$b1 builds in the second job");
is(deployment('alice', $a2)->{state}, 'queued',
   "alice's #$a2, uploaded before it, waits: alice has her one build");

go('slow3', $b1);
my $d = wait_state('bob', $b1, qr/^(running|failed)$/);
is($d->{state}, 'running', "bob's #$b1 runs");
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
   "... after bob's later upload #$b1 had begun");


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

$r = $p->upload('bob', 'broken', $hello);
is($r->{status}, 202, "bob takes broken: alice's never ran");
my $bb = $r->{json}{id};
is(wait_state('bob', $bb, qr/^(running|failed)$/)->{state}, 'running',
   "... bob's #$bb runs");
is($p->v1('bob', 'GET', '/v1/projects/broken')->{json}{owner}, 'bob',
   '... owned by bob');
$r = $p->v1('alice', 'GET', "/v1/deployments/$failed/logs");
is($r->{status}, 200, "alice still reads her failed #${failed}'s build log");
like($r->{body}, qr/error/, '... with the compiler\'s error');
is($p->v1('bob', 'GET', "/v1/deployments/$failed/logs")->{status}, 404,
   '... bob cannot');


# every /v1 route: bob on alice's todo --------------------------------------

$r = $p->v1('alice', 'PUT', '/v1/projects/todo/secrets',
            body => { TOKEN => 'alice-token' });
is($r->{status}, 200, 'alice sets the secret TOKEN of todo');

my $todo = $p->v1('alice', 'GET', '/v1/projects/todo')->{json};
my $id = $todo->{current};
ok($id && deployment('alice', $id)->{state} eq 'running', "todo runs #$id");
is($p->app_get('todo', '/todos')->{status}, 200, '... and answers');
my $dir = "$data/projects/todo";
my @before = ($t->loader_pids);

my @routes = (
    [GET    => '/v1/projects/todo'],
    [GET    => '/v1/projects/todo/deployments'],
    [POST   => '/v1/projects/todo/rollback', {}],
    [POST   => "/v1/projects/todo/rollback", { deployment => $id }],
    [POST   => '/v1/projects/todo/restart'],
    [GET    => '/v1/projects/todo/secrets'],
    [PUT    => '/v1/projects/todo/secrets', { TOKEN => 'bob-token' }],
    [PUT    => '/v1/projects/todo/secrets', { OTHER => 'bob' }],
    [DELETE => '/v1/projects/todo/secrets/TOKEN'],
    [GET    => "/v1/deployments/$id"],
    [GET    => "/v1/deployments/$id/logs"],
    [GET    => "/v1/deployments/$id/logs?runtime=1"],
    [GET    => "/v1/deployments/$id/logs?follow=1"],
    [DELETE => '/v1/projects/todo?purge=1'],
    [DELETE => '/v1/projects/todo'],
);

for my $route (@routes) {
    my ($method, $path, $body) = @$route;
    $r = $p->v1('bob', $method, $path, defined $body ? (body => $body) : ());
    is($r->{status}, 404, "bob: $method $path: 404");
    unlike($r->{body}, qr/alice-token|TOKEN|"owner"/,
           '... nothing of alice\'s in the answer');
}

$r = $p->v1('bob', 'GET', '/v1/projects/todo',
            headers => ['X-Shuttle-Key' => 'alice']);
is($r->{status}, 404, 'bob sending X-Shuttle-Key: alice through nginx: '
                      . 'still bob (404)');
$r = $p->v1('bob', 'GET', '/v1/projects');
ok(!grep({ $_->{name} eq 'todo' } @{ $r->{json}{projects} }),
   'bob: GET /v1/projects does not list todo');
$r = $p->upload('bob', 'todo', $hello, query => '&key=alice');
is($r->{status}, 403, 'bob uploads todo (with ?key=alice): 403');
is($r->{json}{error}, 'project todo belongs to another key',
   '... it belongs to another key');

# nothing changed
$r = $p->v1('alice', 'GET', '/v1/projects/todo');
is($r->{status}, 200, 'alice: todo is still there');
is($r->{json}{current}, $id, "... #$id still current");
is_deeply([$t->loader_pids], \@before, '... its loader was not restarted');
is($p->app_get('todo', '/todos')->{status}, 200, '... it answers');
is_deeply($p->v1('alice', 'GET', '/v1/projects/todo/secrets')->{json},
          { project => 'todo', secrets => ['TOKEN'] },
          '... its secrets: TOKEN alone');
is(secret_in_store('todo', 'TOKEN'), 'alice:alice-token',
   '... alice\'s, unchanged');
ok(-d "$dir/resources", '... its resources are there');


# kept data holds the name --------------------------------------------------

$r = $p->v1('alice', 'DELETE', '/v1/projects/todo');
is($r->{status}, 200, 'alice deletes todo, keeping its data');

$r = $p->upload('bob', 'todo', $hello);
is($r->{status}, 403, 'bob uploads todo: 403');
like($r->{json}{error}, qr/^project todo is held by another key: the databases, secrets or uid of its deleted project are kept/,
     '... the name is held');
is($p->v1('bob', 'GET', '/v1/projects/todo')->{status}, 404,
   '... no project of bob\'s');
for my $route ([GET => '/v1/projects/todo/secrets'],
               [PUT => '/v1/projects/todo/secrets', { TOKEN => 'bob' }],
               [DELETE => '/v1/projects/todo/secrets/TOKEN'],
               [DELETE => '/v1/projects/todo?purge=1'])
{
    my ($method, $path, $body) = @$route;
    $r = $p->v1('bob', $method, $path, defined $body ? (body => $body) : ());
    is($r->{status}, 404, "bob: $method $path of the kept todo: 404");
}
is(secret_in_store('todo', 'TOKEN'), 'alice:alice-token',
   'alice\'s secret is unchanged');
ok(-d "$dir/resources", '... and her database kept');

$r = $p->v1('alice', 'DELETE', '/v1/projects/todo?purge=1');
is($r->{status}, 200, 'alice purges the deleted todo');
ok(!-e "$dir/resources", '... its database is gone');
is(secret_in_store('todo', 'TOKEN'), '', '... its secret too');

$r = $p->upload('bob', 'todo', $hello);
is($r->{status}, 202, 'now bob may deploy todo');
is(wait_state('bob', $r->{json}{id}, qr/^(running|failed)$/)->{state},
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
is($p->v1('bob', 'GET', '/v1/projects/todo/deployments')->{json}
       {deployments}[0]{state}, 'running',
   '... bob\'s todo unchanged');

$r = $p->builder_request_as($nobody, $ngid, 'GET', '/v1/projects',
                            key => 'alice');
is($r->{status}, 200, "nginx's workers' uid ($nobody): 200");
$r = $t->builder_request('GET', '/v1/projects', key => 'alice');
is($r->{status}, 200, 'root: 200');
unlink $t->builder_spool . '/forged';
chmod 0600, $sock;

done_testing;
