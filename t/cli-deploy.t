#!/usr/bin/perl

# The shuttle CLI against a real platform (nginx with the module, the
# builder, loaders; t/lib/Shuttle/Platform.pm): the newcomer's
# "shuttle init demo && cd demo && shuttle deploy" gives a URL that
# answers; status, list, deployments (and --json), logs; a build error
# (exit 1, the compiler's message, the old version still serving); a
# service that fails to start; --no-follow then logs -f; login and the
# config file; delete; and every error path: 401 (and where the key came
# from), 403, 404, 413, 503 with the builder down.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use JSON::PP;
use Time::HiRes qw(time);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

plan skip_all => Shuttle::Platform::shuttle_bin() . ' is not built (make)'
    unless -x Shuttle::Platform::shuttle_bin();

my $p = Shuttle::Platform->new(keys => ['alice', 'bob'],
                               client_max_body_size => '256k');
my $t = $p->t;
my $work = $p->testdir . '/work';
make_path($work);

my $url = $p->app_url('demo');


# the newcomer: init, deploy, the URL answers ----------------------------------

my ($rc, $out, $err) = $p->cli(['init', 'demo'], dir => $work);
is($rc, 0, 'shuttle init demo') or diag $err;

my $demo = "$work/demo";
my $access_mark = -s $t->access_log_file // 0;
my $t0 = time;
($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
my $took = time - $t0;

is($rc, 0, 'shuttle deploy: exit 0') or diag $err, $p->builder_log;
is($out, "$url\n", 'stdout: the URL alone');
like($err, qr/^Deployment (\d+): queued$/m, 'the deployment and its state');
my ($id1) = $err =~ /^Deployment (\d+)/m;
like($err, qr/^  (?!\|).*building.*\n(.*\n)*  \| cc .*src\/main\.c.*\n(.*\n)*  (?!\|).*running/m,
     'the state changes, the build log indented under "building"');
like($err, qr/^demo is running \(deployment $id1, [\d.]+ s\)$/m,
     'the end: running');

# the URL came with the 202, the log tells each state and its end says
# "running": the CLI makes two requests, the upload and the log's stream
# (nginx logs the stream when it ends)
$t->wait_for_log(qr{"GET /v1/deployments/$id1/logs\?follow=1 }, 10,
                 file => 'access.log', from => $access_mark);
my @asked = map { /"(\S+ \S+) HTTP/ ? $1 : $_ }
            split /\n/, substr($t->access_log // '', $access_mark);
is(join(', ', @asked),
   "POST /deploy?project=demo, GET /v1/deployments/$id1/logs?follow=1",
   'the deploy asked for nothing but the upload and its log');
diag sprintf 'shuttle deploy of a new project, CLI start to running: '
             . '%.0f ms', $took * 1000;

my $r = $p->app_get('demo', '/');
is($r->{status}, 200, 'the URL answers');
is($r->{body}, "Hello from demo! Try /hello/yourname\n", '... with the service');
is($p->app_get('demo', '/hello/ann')->{body}, "Hello, ann!\n",
   '... every route of it');


# status, list, deployments ----------------------------------------------------

($rc, $out, $err) = $p->cli(['status'], dir => $demo);
is($rc, 0, 'status (the name from shuttle.json): exit 0') or diag $err;
like($out, qr/^demo  running  \Q$url\E\n  serving   deployment $id1\n/,
     'status: state, URL, the deployment serving');
like($out, qr/^  latest    deployment $id1, running .*\(build \d+ ms, start \d+ ms\)$/m,
     'status: the latest deployment and its durations');

($rc, $out) = $p->cli(['status', 'demo', '--json']);
my $j = decode_json($out);
is($j->{name}, 'demo', 'status --json: the project as the API says');
is($j->{latest}{id}, $id1, 'status --json: its latest deployment');

($rc, $out) = $p->cli(['list']);
like($out, qr/^NAME\s+STATE\s+DEPLOYMENT\s+UPDATED\s+URL\n/, 'list: a table');
like($out, qr/^demo\s+running\s+$id1\s+.*\Q$url\E$/m, 'list: demo in it');
($rc, $out) = $p->cli(['list', '--json']);
is_deeply([map { $_->{name} } @{ decode_json($out)->{projects} }], ['demo'],
          'list --json');


# a build error: exit 1, the compiler's words, the old version serving ---------

my $main = $t->read_file("$demo/src/main.c");
$t->write_file("$demo/src/main.c", $main =~ s/return 0;/return 0 oops/r);

($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
is($rc, 1, 'a build error: exit 1');
is($out, '', '... no URL on stdout');
my ($id2) = $err =~ /^Deployment (\d+)/m;
like($err, qr/^  \| src\/main\.c:\d+:\d+: error: expected \S+ before \S+oops/m,
     '... the compiler\'s message, streamed');
like($err, qr/^shuttle deploy: demo: deployment $id2 failed: build failed: cc exited with status 1/m,
     '... the reason');
like($err, qr/^deployment $id1 still serves \Q$url\E$/m,
     '... and which deployment still serves');
is($p->app_get('demo', '/')->{body}, "Hello from demo! Try /hello/yourname\n",
   'the old version still answers');

($rc, $out) = $p->cli(['deployments', 'demo']);
like($out, qr/^ID\s+STATE\s+BUILD\s+START\s+CREATED\s+REASON\n$id2\s+failed\s+\d+ ms\s+-\s+.*build failed.*\n$id1\s+running\s+\d+ ms\s+\d+ ms\s/,
     'deployments: newest first, states, durations, the reason');
($rc, $out) = $p->cli(['deployments', 'demo', '--json']);
is_deeply([map { $_->{id} } @{ decode_json($out)->{deployments} }],
          [$id2, $id1], 'deployments --json');

($rc, $out) = $p->cli(['logs', '--build'], dir => $demo);
like($out, qr/error: expected \S+ before \S+oops/,
     'logs --build: the latest deployment\'s build log');
($rc, $out) = $p->cli(['logs', 'demo', '--build', '--deployment', $id1]);
unlike($out, qr/error:/, 'logs --deployment ID: that deployment\'s');
like($out, qr/^cc .*src\/main\.c/m, '... its compile line');
($rc, $out) = $p->cli(['logs', 'demo']);
like($out, qr/^==> build log of deployment $id2 <==\n(.*\n)*==> runtime log of deployment $id1 <==\n/,
     'logs: the latest build log, then the serving deployment\'s runtime log');


# a redeploy that works; a service that does not start ---------------------------

$t->write_file("$demo/src/main.c", $main =~ s/Hello from/Hi again from/r);
($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
is($rc, 0, 'a fixed redeploy: exit 0') or diag $err;
is($p->app_get('demo', '/')->{body}, "Hi again from demo! Try /hello/yourname\n",
   'the new version answers');
my ($id3) = $err =~ /^Deployment (\d+)/m;

$t->write_file("$demo/src/main.c", $main =~ s/return 0;/return 3;/r);
($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
is($rc, 1, 'a service whose main fails: exit 1');
like($err, qr/^shuttle deploy: demo: deployment \d+ failed: .*main returned 3/m,
     '... the loader\'s reason');
is($p->app_get('demo', '/')->{body}, "Hi again from demo! Try /hello/yourname\n",
   '... and the previous one still answers');
$t->write_file("$demo/src/main.c", $main);


# --no-follow, then logs -f -------------------------------------------------------

($rc, $out, $err) = $p->cli(['deploy', '--no-follow'], dir => $demo);
is($rc, 0, 'deploy --no-follow: exit 0');
like($out, qr/^(\d+)\n\z/, '... the deployment id on stdout');
my ($id5) = $out =~ /^(\d+)/;
like($err, qr/shuttle logs demo --deployment $id5 -f/, '... how to follow it');

($rc, $out, $err) = $p->cli(['logs', '--build', '--deployment', $id5, '-f'],
                            dir => $demo);
is($rc, 0, 'logs --build -f of a deployment: ends when it settles');
like($out, qr/^cc .*src\/main\.c/m, '... with the build log');
is(decode_json(($p->cli(['status', '--json'], dir => $demo))[1])->{latest}{state},
   'running', '... and it is running then');


# errors: 401, 403, 404, 413 ------------------------------------------------------

($rc, $out, $err) = $p->cli(['deploy', '--key', 'sk_wrong'], dir => $demo);
is($rc, 3, 'a wrong key: exit 3');
like($err, qr/the API at \Q${\ $p->api }\E refused the key from --key \(401: invalid bearer key\); log in with `shuttle login --key KEY`, or set SHUTTLE_API_KEY/,
     'a wrong key: 401, where the key came from, how to log in');

($rc, $out, $err) = $p->cli(['status', 'demo'],
                            env => { SHUTTLE_API_KEY => 'sk_wrong' });
like($err, qr/refused the key from SHUTTLE_API_KEY/, 'SHUTTLE_API_KEY named');
($rc) = $p->cli(['status', 'demo', '--key', $p->key('alice')],
                env => { SHUTTLE_API_KEY => 'sk_wrong' });
is($rc, 0, '--key wins over SHUTTLE_API_KEY');

($rc, $out, $err) = $p->cli(['deploy'], dir => $demo,
                            env => { SHUTTLE_API_KEY => $p->key('bob') });
is($rc, 3, 'another key\'s project: exit 3');
like($err, qr/demo: forbidden \(403\): .*demo/, '... 403, naming the project');

($rc, $out, $err) = $p->cli(['status', 'demo'],
                            env => { SHUTTLE_API_KEY => $p->key('bob') });
is($rc, 3, 'status of another key\'s project: exit 3');
like($err, qr/project demo not found \(404\)/, '... not found for that key');

my $big = "$work/big";
$t->write_file("$big/src/main.c", $main);
# 400 kB that gzip cannot shrink, over the 256k limit
$t->write_file("$big/blob.bin", join '', map { chr int rand 256 } 1 .. 400_000);
($rc, $out, $err) = $p->cli(['deploy'], dir => $big);
is($rc, 3, 'over client_max_body_size: exit 3');
like($err, qr/big: upload of (\d+) bytes is over the server's limit \(413/,
     '... 413: the upload\'s size, the limit');


# login and the config file -------------------------------------------------------

my $cfg = $p->testdir . '/home/config/shuttle/config.json';

($rc, $out, $err) = $p->cli(['login', '--key', 'sk_wrong'],
                            env => { SHUTTLE_API_KEY => undef });
is($rc, 3, 'login with a wrong key: exit 3');
ok(!-e $cfg, '... nothing saved');

($rc, $out, $err) = $p->cli(['login'], stdin => $p->key('alice') . "\n",
                            env => { SHUTTLE_API_KEY => undef });
is($rc, 0, 'login, the key on stdin: exit 0') or diag $err;
like($err, qr/Logged in to \Q${\ $p->api }\E \(1 project\); saved in \Q$cfg\E/,
     '... says where it saved what');
is((stat $cfg)[2] & 07777, 0600, 'the config file is 0600');
is_deeply(decode_json($t->read_file($cfg)),
          { api => $p->api, key => $p->key('alice') },
          'the config file: the API and the key');

($rc, $out, $err) = $p->cli(['status', 'demo'],
    env => { SHUTTLE_API => undef, SHUTTLE_API_KEY => undef });
is($rc, 0, 'with the config file alone, commands work') or diag $err;


# delete ----------------------------------------------------------------------------

($rc, $out, $err) = $p->cli(['delete', 'demo', '--yes']);
is($rc, 0, 'delete --yes: exit 0') or diag $err;
like($err, qr/^Deleted demo \(its databases and secrets are kept for a redeploy; --purge removes them\)$/m,
     '... says so, and that its data is kept');
($rc, $out, $err) = $p->cli(['status', 'demo']);
is($rc, 3, 'a deleted project: not found');
is($p->app_get('demo', '/')->{status}, 404, 'its URL: 404');


# the builder down: 503 ----------------------------------------------------------

$p->stop_builder;
($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
is($rc, 3, 'the builder down: exit 3');
like($err, qr/the platform at \S+ is unavailable \(503\): .*cannot connect to the builder/,
     '... 503, and why');

done_testing;
