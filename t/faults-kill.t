#!/usr/bin/perl

# The builder SIGKILLed in each state of a deployment, at a fault point
# of its own (SHUTTLE_FAULT=POINT: builder/fault.h) where timing alone
# would only hope to hit it: queued, extracting, building (the compiler
# running), built, loading, the switch, running, a rollback, a restart, a
# delete, a purge and the provisioning of a PostgreSQL database.  After
# each, `shuttle-builder serve` starts again and:
#
#   - the store passes integrity_check, every deployment settles in a
#     state whose reason says what happened, and what was uploaded is
#     built and runs (an interrupted build is built again);
#   - the project that was serving never stopped (a client loops on it
#     through nginx the whole time: 0 failed requests);
#   - no orphan: the loaders are exactly the running deployments', the
#     ports listening in the builder's range exactly theirs, the spool
#     empty, no build tree, upload or deleted project's directory left,
#     no process of an interrupted build, no database but the store's.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Time::HiRes qw(time sleep);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $p = Shuttle::Platform->new(postgres => 'socket',
                               builder_args => ['--jobs', '1']);
my $t = $p->t;
my $dir = $p->testdir;

# ports enough for every loader and the ones a takeover starts beside them
my @ports = $t->port_range(100);
push @{ $p->{builder_args} }, '--ports', "$ports[0]-$ports[1]";
my $data = $t->builder_data;
my $repo = Shuttle::Test::repo();
my $tag = 4 + int(rand(1000)) / 1000;      # a sleep no other test runs


# projects -------------------------------------------------------------------

# a service answering "NAME vN" on /; slow => a compiler that runs for as
# long as the test lets it
sub app {
    my ($name, $v, %opt) = @_;
    my $make = <<EOF;
service.so: src/main.c
	sleep $tag
	\$(CC) -std=gnu11 -O2 -fPIC -shared -I\$(SHUTTLE_INCLUDE) -o \$@ src/main.c
EOF
    return Shuttle::Fault::app_src($p, $name, $v,
                                   $opt{slow} ? (makefile => $make) : ());
}

sub guestbook {
    my ($name) = @_;
    my $src = "$dir/src/$name";
    system('cp', '-r', "$repo/examples/guestbook", $src) == 0
        or die "cp -r $repo/examples/guestbook: $?";
    $t->write_file("$src/shuttle.json",
                   qq({"name": "$name", "libs": ["libpq"]}\n));
    return $src;
}

sub deploy {
    my ($name, $src) = @_;
    my $r = $p->upload('alice', $name, $src);
    die "deploy $name: POST /deploy: $r->{status} $r->{body}"
        unless $r->{status} == 202 || $r->{status} == 201
               || $r->{status} == 200;
    return $r->{json}{id};
}

# an upload the builder may stop in at a fault point before it answered
# (its build thread reaches the point while the answer is still unsent):
# sent from a child, which gets an answer or none; the id from the store
my @uploads;
sub deploy_bg {
    my ($name, $src) = @_;
    my $pid = fork // die "deploy_bg $name: fork: $!";
    if ($pid == 0) {
        eval { $p->upload('alice', $name, $src) };
        POSIX::_exit(0);
    }
    push @uploads, $pid;
}

sub last_id {
    my ($name) = @_;
    waitpid($_, 0) for splice @uploads;
    my ($row) = store_rows('SELECT max(d.id) FROM deployments d '
        . "JOIN projects p ON p.id = d.project WHERE p.name = '$name'");
    return $row && $row->[0] =~ /^\d+$/ ? $row->[0]
         : die "last_id $name: no deployment in the store";
}

sub deployment {
    my ($id) = @_;
    return $p->v1('alice', 'GET', "/v1/deployments/$id")->{json} // {};
}

sub wait_state {
    my ($id, $re, $timeout) = @_;
    my $d;
    $t->wait_until(sub { $d = deployment($id); ($d->{state} // '') =~ $re },
                   $timeout // 30);
    return $d;
}

sub get_body {
    my ($name) = @_;
    my $r = eval { $p->app_get($name, '/', timeout => 5) };
    return $r && $r->{status} == 200 ? $r->{body} : '';
}


# the builder, killed at a point ---------------------------------------------

# starts the builder (after killing the one that runs, if any) with
# SHUTTLE_FAULT=$point
sub restart {
    my ($point) = @_;
    $t->builder_stop('KILL') if $p->builder_pid;
    local $ENV{SHUTTLE_FAULT} = $point // '';
    $p->start_builder;
}

# a builder started anew has adopted every running deployment's loader in
# place: the loaders are the ones the store names, and none was started
# to take one over
sub taken_over {
    $t->wait_until(sub {
        my @want = sort { $a <=> $b } map { $_->[0] }
            store_rows("SELECT pid FROM deployments WHERE state = 'running'");
        join(' ', sort { $a <=> $b } $t->loader_pids) eq join(' ', @want);
    }, 15);
}

# the builder stopped itself at its fault point
sub stopped_at {
    my ($point) = @_;
    my $pid = $p->builder_pid;
    my $ok = $t->wait_until(sub {
        open my $fh, '<', "/proc/$pid/stat" or return 0;
        my $stat = <$fh>;
        return (split ' ', $stat =~ s/^.*\) //r)[0] eq 'T';
    }, 30);
    ok($ok, "the builder stopped at the fault point '$point'")
        or diag $p->builder_log;
    like($p->builder_log, qr/fault point \Q$point\E: stopping/,
         "... and logged it");
    return $ok;
}

# the builder killed at $point while it does what $method $path asks (the
# request, in a child, gets no answer), then started again
sub kill_during {
    my ($point, $method, $path) = @_;
    restart($point);
    taken_over();
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $p->v1('alice', $method, $path,
               $method eq 'POST' ? (body => {}) : ());
        POSIX::_exit(0);
    }
    stopped_at($point);
    restart();
    waitpid($pid, 0);
}

# the deployments of every project, from the store itself
sub store_rows { Shuttle::Fault::store_rows($p, @_) }

sub settle {
    return $t->wait_until(sub {
        !grep { !$Shuttle::Fault::SETTLED{$_->[0]} }
            store_rows('SELECT state FROM deployments');
    }, 60);
}

sub listening_ports { Shuttle::Fault::listening_ports(@ports) }

sub pg_databases {
    my $out = $p->pg->psql(
        "SELECT datname FROM pg_database WHERE datname LIKE 'shuttle_%' "
        . 'ORDER BY 1');
    return grep { length } split /\n/, $out;
}

# everything the store says, and nothing else
sub consistent {
    my ($what) = @_;

    ok(settle(), "$what: every deployment settles")
        or diag explain [store_rows('SELECT id, state, reason '
                                    . 'FROM deployments')];

    is(`sqlite3 $data/shuttle.db 'PRAGMA integrity_check' 2>&1`, "ok\n",
       "$what: the store passes integrity_check");

    my @running = store_rows("SELECT d.id, p.name, d.pid, d.port "
        . "FROM deployments d JOIN projects p ON p.id = d.project "
        . "WHERE d.state = 'running' ORDER BY d.id");
    my @current = store_rows('SELECT current FROM projects '
        . 'WHERE deleted IS NULL AND current IS NOT NULL ORDER BY current');
    is_deeply([map { $_->[0] } @running], [map { $_->[0] } @current],
              "$what: the running deployments are the projects' current");

    # the takeover of the restart: wait for each loader to be the store's
    my @pids;
    $t->wait_until(sub {
        @running = store_rows("SELECT d.id, p.name, d.pid, d.port "
            . "FROM deployments d JOIN projects p ON p.id = d.project "
            . "WHERE d.state = 'running' ORDER BY d.id");
        @pids = sort { $a <=> $b } $t->loader_pids;
        join(' ', @pids) eq join(' ', sort { $a <=> $b }
                                      map { $_->[2] } @running)
        && join(' ', listening_ports()) eq join(' ', sort { $a <=> $b }
                                                     map { $_->[3] } @running);
    }, 15);
    is_deeply(\@pids, [sort { $a <=> $b } map { $_->[2] } @running],
              "$what: the loaders are the running deployments', no other");
    is_deeply([listening_ports()],
              [sort { $a <=> $b } map { $_->[3] } @running],
              "$what: the ports listening are theirs, no other")
        or diag explain [\@running, `ss -ltnp`];

    opendir my $dh, $t->builder_spool;
    my @spool = grep { !/^\./ } readdir $dh;
    is("@spool", '', "$what: the spool is empty");

    my @left = grep { -e } map { glob "$data/projects/*/deployments/*/$_" }
                           qw(src upload.tar.gz);
    is("@left", '', "$what: no build tree or upload left");

    my %dirs = map { $_ => 1 } glob "$data/projects/*/deployments/*";
    my @deleted = grep { $dirs{"$data/projects/$_->[0]/deployments/$_->[1]"} }
        store_rows("SELECT p.name, d.id FROM deployments d "
                   . "JOIN projects p ON p.id = d.project "
                   . "WHERE d.state = 'deleted'");
    is_deeply(\@deleted, [], "$what: no deleted deployment's directory");

    my @orphans = grep { /sleep \Q$tag\E/ } `ps -eo pid,args`;
    is("@orphans", '', "$what: no process of an interrupted build");

    my %kept = map { $_->[0] => 1 }
        store_rows("SELECT json_extract(info, '\$.database') FROM resources "
                   . "WHERE kind = 'postgres' AND name <> ''");
    is_deeply([pg_databases()], [sort keys %kept],
              "$what: the databases are the store's, no other");
}


# a platform serving, a client on it all along --------------------------------

# on --ports from the start: a running loader is adopted on its port, and
# the ports listening are those of the range
restart();
my $base = deploy('base', app('base', 1));
# a first test line early: a death after it is located
is(wait_state($base, qr/^running$/)->{state}, 'running',
   "base #$base runs (nginx on port ${\ $p->port})");
my $client = Shuttle::Fault::client($p, ['base'], ok => qr/^base v1$/,
                                     pause => 0.005);

# extracting ---------------------------------------------------------------

restart('extracting');
deploy_bg('ex', app('ex', 1));
stopped_at('extracting');
restart('built');
stopped_at('built');      # the upload, extracted again, then built
restart();
my $ex = last_id('ex');
my $d = wait_state($ex, qr/^(running|failed)$/);
is($d->{state}, 'running', 'killed while extracting: built again, running')
    or diag explain $d;
is(get_body('ex'), "ex v1\n", '... and it serves');
consistent('killed while extracting, then when built');


# queued behind a build, the compiler running --------------------------------

my $slow = deploy('slow', app('slow', 1, slow => 1));
my $queued = deploy('queued', app('queued', 1));
wait_state($slow, qr/^building$/);
ok($t->wait_until(sub { grep { /sleep \Q$tag\E/ } `ps -eo args` }, 10),
   'the compiler runs');
is(deployment($queued)->{state}, 'queued', 'another waits in the queue');
restart();
$d = wait_state($queued, qr/^(running|failed)$/);
is($d->{state}, 'running', 'killed while one queued: it is built, runs')
    or diag explain $d;
$d = wait_state($slow, qr/^(running|failed)$/, 60);
is($d->{state}, 'running', 'killed while compiling: built again, runs')
    or diag explain $d;
like(join(' ', map { $_->{reason} // '' }
           @{ $p->v1('alice', 'GET', "/v1/deployments/$slow")
                  ->{json}{transitions} // [] }),
     qr/builder restarted/, '... and its history says why');
is(get_body('queued'), "queued v1\n", 'the queued one serves');
is(get_body('slow'), "slow v1\n", 'the interrupted one serves');
consistent('killed while compiling, one queued');


# loading, then the switch ---------------------------------------------------

my $app1 = deploy('app', app('app', 1));
wait_state($app1, qr/^running$/);
my $app_client = Shuttle::Fault::client($p, ['app'], ok => qr/^app v\d$/,
                                         pause => 0.005);

restart('loading');
deploy_bg('app', app('app', 2));
stopped_at('loading');
restart('switch');
stopped_at('switch');
restart();
my $app2 = last_id('app');
$d = wait_state($app2, qr/^(running|failed)$/);
is($d->{state}, 'running', 'killed while loading, then at the switch: '
   . 'the new deployment runs') or diag explain $d;
is(deployment($app1)->{state}, 'superseded', '... the old one superseded');
is(get_body('app'), "app v2\n", '... and the new one serves');
# building, built and loading are not synced to the disk on their own
# (store.h): a SIGKILL must lose none of them all the same
is(join(' ', (map { $_->{state} }
              @{ $p->v1('alice', 'GET', "/v1/deployments/$app2")
                     ->{json}{transitions} // [] })[0 .. 3]),
   'queued building built loading',
   '... and its history kept every step before the kill');
consistent('killed while loading, then at the switch');


# running ------------------------------------------------------------------

restart();
is(get_body('app'), "app v2\n", 'killed while running: it serves on');
consistent('killed while running');


# a rollback ---------------------------------------------------------------

kill_during('rollback', 'POST', '/v1/projects/app/rollback');
$d = wait_state($app1, qr/^(running|failed|superseded)$/);
is($d->{state}, 'running', 'killed during a rollback: the rollback is '
   . 'carried out') or diag explain $d;
$t->wait_until(sub { get_body('app') eq "app v1\n" }, 10);
is(get_body('app'), "app v1\n", '... v1 serves');
is(deployment($app2)->{state}, 'superseded', '... v2 superseded');
consistent('killed during a rollback');


# a restart ----------------------------------------------------------------

kill_during('restart', 'POST', '/v1/projects/app/restart');
is(deployment($app1)->{state}, 'running', 'killed during a restart: it runs');
is(get_body('app'), "app v1\n", '... and serves');
consistent('killed during a restart');

my $r = $app_client->stop;
Shuttle::Fault::all_served($r, 'app, rolled back and restarted');
Shuttle::Fault::report('builder SIGKILLed: loading, switch, running, '
                       . 'rollback, restart (client on that project)', $r);


# a delete -----------------------------------------------------------------

my $gone = deploy('gone', app('gone', 1));
wait_state($gone, qr/^running$/);
kill_during('delete', 'DELETE', '/v1/projects/gone');
is((store_rows("SELECT state FROM deployments WHERE id = $gone"))[0][0],
   'deleted',
   'killed during a delete: the project is deleted');
is($p->app_get('gone', '/')->{status}, 404, '... and not routed');
consistent('killed during a delete');


# provisioning, then a purge -------------------------------------------------

restart('provisioning');
deploy_bg('gb', guestbook('gb'));
stopped_at('provisioning');
restart();
my $gb = last_id('gb');
$d = wait_state($gb, qr/^(running|failed)$/, 60);
is($d->{state}, 'running', 'killed while provisioning PostgreSQL: built '
   . 'again, runs') or diag explain $d;
is_deeply([pg_databases()], ['shuttle_gb_main'], '... with its database');
consistent('killed while provisioning PostgreSQL');

$r = $p->v1('alice', 'DELETE', '/v1/projects/gb');
is($r->{status}, 200, 'gb deleted, its database kept') or diag $r->{body};
kill_during('purge', 'DELETE', '/v1/projects/gb?purge=1');
$t->wait_until(sub { !pg_databases() }, 10);
is_deeply([pg_databases()], [], 'killed during a purge: the purge is '
   . 'finished, no database left');
my @left = store_rows("SELECT kind, name FROM resources WHERE project = 'gb'");
is_deeply(\@left, [], '... and no resource in the store');
my ($role) = $p->pg->psql("SELECT count(*) FROM pg_roles "
                          . "WHERE rolname LIKE 'shuttle_gb%'") =~ /(\d+)/;
is($role, 0, '... nor its role');
consistent('killed during a purge');


# the client on base, all along ------------------------------------------------

$r = $client->stop;
Shuttle::Fault::all_served($r, 'base, serving all along');
Shuttle::Fault::report('builder SIGKILLed at 11 points (queued, extracting, '
                       . 'building, built, loading, switch, running, '
                       . 'rollback, restart, delete, purge, provisioning)',
                       $r);

$p->stop;

done_testing();
