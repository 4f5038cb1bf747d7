#!/usr/bin/perl

# The deploy pipeline end to end, every step through nginx: POST /deploy
# with a bearer key, the builder building and starting a loader, the zone
# switched, the app answering at http://hello.localhost:PORT/.  A
# redeploy, a build error, a service that fails to start and every class
# of hostile tarball happen while a client loops on the app, which gets
# an answer every time.  Refusals: no key, a wrong key, another key's
# project, bad names, an over-size upload.  A loader killed with SIGKILL
# comes back; a builder killed with SIGKILL leaves the app serving and
# the next builder takes it over with no failed request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Compress::Gzip qw(gzip $GzipError);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new(
    keys => ['alice', 'bob'],
    client_max_body_size => '256k',
    builder_args => ['--max-files', 50, '--max-size', '1m',
                     '--max-file-size', '512k', '--max-depth', 8]);
my $t = $p->t;
my $port = $p->port;
my $data = $t->builder_data;
my $repo = Shuttle::Test::repo();


# uploads --------------------------------------------------------------------

# one ustar member: name, type ('0' file, '5' directory, '1' hard link,
# '2' symbolic link, '3' character device, '4' block device, '6' FIFO),
# data, link, mode
sub member {
    my (%e) = @_;
    my $type = $e{type} // '0';
    my $data = $type eq '0' ? $e{data} // '' : '';
    my ($prefix, $name) = ('', $e{name});
    ($prefix, $name) = ($1, $2) if length $name > 100
                                   && $name =~ m{^(.{1,155})/(.{1,100})$};

    my $h = pack('a100 a8 a8 a8 a12 a12 a8 a1 a100 a6 a2 a32 a32 a8 a8 a155 a12',
                 $name, sprintf('%07o', $e{mode} // ($type eq '5' ? 0755 : 0644)),
                 '0000000', '0000000', sprintf('%011o', length $data),
                 sprintf('%011o', 1700000000), ' ' x 8, $type,
                 $e{link} // '', 'ustar', '00', 'root', 'root',
                 '0000001', '0000003', $prefix, '');
    substr($h, 148, 8) = sprintf("%06o\0 ", unpack('%32C*', $h));
    return $h . $data . "\0" x ((512 - length($data) % 512) % 512);
}

sub tar { join('', map { member(%$_) } @_) . "\0" x 1024 }

sub tgz {
    my $tar = tar(@_);
    gzip(\$tar => \my $gz) or die "gzip: $GzipError";
    return $gz;
}

my $hello_main = $t->read_file("$repo/examples/hello/src/main.c");
(my $again_main = $hello_main) =~ s/Hello, world!/Hello again!/
    or die "examples/hello/src/main.c has no \"Hello, world!\"";

# a project: shuttle.json and src/main.c, and more members
sub project {
    my ($main, @more) = @_;
    return tgz({ name => 'shuttle.json', data => qq({"name": "hello"}\n) },
               { name => 'src/', type => '5' },
               { name => 'src/main.c', data => $main }, @more);
}

sub deploy {
    my ($name, $body, %o) = @_;
    my @h = ('Content-Type' => 'application/gzip');
    my $key = exists $o{key} ? $o{key} : $p->key('alice');
    push @h, Authorization => "Bearer $key" if defined $key;
    my $r = http_get($port, 'localhost', "/deploy?project=$name",
                     method => 'POST', headers => \@h, body => $body);
    $r->{json} = eval { decode_json($r->{body}) };
    return $r;
}

sub api {
    my ($path, %o) = @_;
    my $r = http_get($port, 'localhost', $path, method => $o{method} // 'GET',
                     headers => [Authorization => 'Bearer '
                                 . $p->key($o{as} // 'alice')]);
    $r->{json} = eval { decode_json($r->{body}) };
    return $r;
}

# polls the deployment through nginx until its state matches
sub settle {
    my ($id, $re) = @_;
    $re //= qr/^(running|failed|crashed)$/;
    my $d;
    $t->wait_until(sub {
        $d = api("/v1/deployments/$id")->{json};
        return $d && ($d->{state} // '') =~ $re;
    }, 30);
    return $d // {};
}

sub body_of { my $r = eval { $p->app_get(@_) }; $r ? $r->{body} : "no answer: $@" }

sub spool_empty {
    $t->wait_until(sub {
        opendir my $d, $t->builder_spool or return 0;
        return !grep { !/^\.\.?$/ } readdir $d;
    }, 5);
}


# deploy hello -----------------------------------------------------------------

my $t0 = time;
my $r = deploy('hello', project($hello_main));
is($r->{status}, 202, 'POST /deploy?project=hello: 202');
is($r->{headers}{'content-type'}, 'application/json', '... JSON');
like($r->{json}{id} // '', qr/^\d+$/, '... with the deployment id');
is($r->{json}{project}, 'hello', '... the project');
is($r->{json}{state}, 'queued', '... and the state: queued');
my $first = $r->{json}{id};

my $d = settle($first);
is($d->{state}, 'running', "#$first runs") or diag explain $d;
$r = $p->app_get('hello', '/hello');
is($r->{status}, 200, 'http://hello.localhost/hello answers 200');
is($r->{body}, "Hello, world!\n", '... Hello, world!');
diag sprintf 'POST /deploy to the first answer: %.0f ms', (time - $t0) * 1000;
ok(spool_empty(), 'the upload left the spool (the builder took it)');


# refusals: the running app does not notice ---------------------------------------

$r = deploy('hello', project($again_main), key => undef);
is($r->{status}, 401, 'no key: 401');
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer /,
     '... WWW-Authenticate: Bearer');

$r = deploy('hello', project($again_main), key => 'sk_' . 'f' x 64);
is($r->{status}, 401, 'a wrong key: 401');

$r = deploy('hello', project($again_main), key => $p->key('bob'));
is($r->{status}, 403, "bob's key on alice's project: 403");
like($r->{json}{error} // '', qr/hello/, '... naming the project');
is(api('/v1/projects/hello', as => 'bob')->{status}, 404,
   '... bob does not see it in the API either');
is_deeply([ map { $_->{name} } @{ api('/v1/projects', as => 'bob')->{json}{projects} // [] } ],
          [], "... nor in bob's list");

for my $name ('Hello', 'a_b', '-x', 'x' x 64, '') {
    $r = deploy($name, project($again_main));
    is($r->{status}, 400, "project \"$name\": 400");
}

my $noise = join '', map { chr int rand 256 } 1 .. 300 * 1024;
$r = deploy('hello', $noise);
is($r->{status}, 413, 'an upload over client_max_body_size (256k): 413');

ok(spool_empty(), 'refused uploads leave nothing in the spool');
is(api('/v1/projects/hello')->{json}{current}, $first,
   "no new deployment: #$first is current");
is(body_of('hello', '/hello'), "Hello, world!\n", '... and serves');


# a client loops on the app while deployments come and go --------------------------

my $clog = $t->testdir . '/client.log';
my $cstop = $t->testdir . '/client.stop';
my $client;

sub client_start {
    my ($ok) = @_;          # the bodies that count as an answer
    unlink $clog, $cstop;
    $client = fork // die "fork: $!";
    return if $client;
    my ($n, @bad) = (0);
    until (-e $cstop) {
        my $res = eval { $p->app_get('hello', '/hello', timeout => 5) };
        $n++;
        push @bad, $res ? "$res->{status} $res->{body}" : "error: $@"
            unless $res && $res->{status} == 200 && $res->{body} =~ $ok;
    }
    open my $fh, '>', $clog or POSIX::_exit(1);
    print $fh "$n\n", map { "$_\n" } @bad;
    close $fh;
    POSIX::_exit(0);
}

sub client_requests { 0 + (() = ($t->read_file('access.log') // '') =~ /^/mg) }

sub client_runs {
    my $before = client_requests();
    return $t->wait_until(sub { client_requests() >= $before + 20 }, 10);
}

# (requests, failures)
sub client_stop {
    $t->write_file($cstop, '');
    my $end = time + 10;
    sleep 0.02 until waitpid($client, WNOHANG) == $client || time > $end;
    kill 'KILL', $client and waitpid($client, 0) if kill 0, $client;
    $client = undef;
    my ($n, @bad) = split /\n/, $t->read_file($clog) // "0\nno client log";
    return ($n, @bad);
}

END { if ($client) { kill 'KILL', $client; waitpid($client, 0) } }

client_start(qr/^Hello(, world| again)!$/);
ok(client_runs(), 'a client loops on http://hello.localhost/hello');


# a redeploy

$r = deploy('hello', project($again_main));
is($r->{status}, 202, 'redeploy a changed hello: 202');
my $again = $r->{json}{id};
is(settle($again)->{state}, 'running', "#$again runs");
is(body_of('hello', '/hello'), "Hello again!\n",
   'the new version answers as soon as it runs');
is(settle($first, qr/^superseded$/)->{state}, 'superseded',
   "#$first is superseded");
is(join(', ', map { "$_->{id} $_->{state}" }
              @{ api('/v1/projects/hello/deployments')->{json}{deployments} // [] }),
   "$again running, $first superseded", 'the history, newest first');
ok(client_runs(), 'the client goes on');


# a build error

$r = deploy('hello', project("#include <shuttle.h>\n\nSHUTTLE_MAIN(app)\n"
                             . "{\n    return no_such_thing;\n}\n"));
my $broken = $r->{json}{id};
$d = settle($broken);
is($d->{state}, 'failed', "bad C: #$broken failed");
like($d->{reason}, qr/build failed/, "... reason: $d->{reason}");
$r = api("/v1/deployments/$broken/logs");
is($r->{status}, 200, 'its build log, through nginx');
like($r->{body}, qr{src/main\.c:5:\d+: error: \S+no_such_thing\S+ undeclared},
     "... holds the compiler's message");
is(body_of('hello', '/hello'), "Hello again!\n", 'the old version serves');
is(api('/v1/projects/hello')->{json}{current}, $again,
   "... #$again is still current");
ok(client_runs(), 'the client goes on');


# a service that fails as it starts

$r = deploy('hello', project(<<'EOF'));
#include <shuttle.h>
#include <stdio.h>
#include <stdlib.h>

SHUTTLE_MAIN(app)
{
    fprintf(stderr, "cannot start: no configuration\n");
    abort();
}
EOF
my $aborts = $r->{json}{id};
$d = settle($aborts);
is($d->{state}, 'failed', "a service that aborts as it starts: #$aborts failed");
like($d->{reason}, qr/^start failed: .*signal 6/, "... reason: start failed");
like($d->{reason}, qr/cannot start: no configuration/,
     '... with the end of its runtime log');
is(body_of('hello', '/hello'), "Hello again!\n", 'the old version serves');
ok(client_runs(), 'the client goes on');


# hostile tarballs: each fails its deployment naming the entry, and leaves
# nothing on disk

my $zeros = "\0" x (400 * 1024);
my %hostile = (
    'symbolic link' => [ [ { name => 'src/evil', type => '2', link => '/etc/passwd' } ],
                         qr{entry "src/evil": symbolic links are not allowed} ],
    'hard link'     => [ [ { name => 'src/again.c', type => '1', link => 'src/main.c' } ],
                         qr{entry "src/again\.c": hard links are not allowed} ],
    'character device' => [ [ { name => 'src/tty', type => '3' } ],
                            qr{entry "src/tty": character devices are not allowed} ],
    'block device'  => [ [ { name => 'src/sda', type => '4' } ],
                         qr{entry "src/sda": block devices are not allowed} ],
    'FIFO'          => [ [ { name => 'src/pipe', type => '6' } ],
                         qr{entry "src/pipe": FIFOs are not allowed} ],
    'absolute path' => [ [ { name => $t->testdir . '/abs.c', data => "int a;\n" } ],
                         qr{entry "\S+/abs\.c": absolute paths are not allowed} ],
    '".." path'     => [ [ { name => 'src/../../escape.c', data => "int e;\n" } ],
                         qr{entry "src/\.\./\.\./escape\.c": "\.\." components are not allowed} ],
    'too many entries' => [ [ map { { name => "src/f$_.h", data => "\n" } } 1 .. 60 ],
                            qr{entry "src/f\d+\.h": more than 50 entries in the archive} ],
    'too big a file' => [ [ { name => 'src/big.bin', data => "\0" x (600 * 1024) } ],
                          qr{entry "src/big\.bin": 614400 bytes, over the limit of 524288 per file} ],
    'too many bytes' => [ [ map { { name => "src/z$_.bin", data => $zeros } } 1 .. 3 ],
                         qr{entry "src/z3\.bin": the files add up to more than the limit of 1048576 bytes} ],
    'too deep'      => [ [ { name => 'a/b/c/d/e/f/g/h/i.c', data => "\n" } ],
                         qr{entry "a/b/c/d/e/f/g/h/i\.c": more than 8 path components} ],
);

for my $case (sort keys %hostile) {
    my ($more, $why) = @{ $hostile{$case} };
    $r = deploy('hello', project($again_main, @$more));
    is($r->{status}, 202, "$case: accepted for a build");
    my $id = $r->{json}{id};
    $d = settle($id);
    is($d->{state}, 'failed', "$case: #$id failed");
    like($d->{reason}, $why, "... $d->{reason}");

    my $dir = "$data/projects/hello/deployments/$id";
    opendir my $dh, $dir or die "$dir: $!";
    is_deeply([ sort grep { !/^\.\.?$/ } readdir $dh ], ['build.log'],
              '... nothing left on disk but its build.log');
    like(api("/v1/deployments/$id/logs")->{body}, $why,
         '... whose build log says why');
}

ok(!-e $t->testdir . '/abs.c', 'the absolute path was not written');
ok(!-e "$data/projects/hello/escape.c" && !-e "$data/projects/escape.c",
   'the ".." entry landed nowhere');

for my $case ('a plain tar', 'not an archive') {
    my $body = $case eq 'a plain tar'
             ? tar({ name => 'src/main.c', data => $again_main })
             : "this is not gzip\n" x 10;
    $r = deploy('hello', $body);
    my $id = $r->{json}{id};
    $d = settle($id);
    is($d->{state}, 'failed', "$case: #$id failed");
    like($d->{reason}, qr/upload: not a gzip'd tar archive/, "... $d->{reason}");
}

is(body_of('hello', '/hello'), "Hello again!\n",
   'after all of them, the old version serves');
is(api('/v1/projects/hello')->{json}{current}, $again,
   "... #$again is still current");
ok(client_runs(), 'the client goes on');

my ($n, @bad) = client_stop();
cmp_ok($n, '>', 100, "the client made $n requests meanwhile");
is_deeply(\@bad, [], '... every one answered 200 by a version of hello');
ok(spool_empty(), 'the spool is empty');


# a loader killed with SIGKILL comes back -----------------------------------------

my @loaders = $t->loader_pids;
is(scalar @loaders, 1, 'one loader runs hello') or diag "loaders: @loaders";
kill 'KILL', $loaders[0];
my $back;
ok($t->wait_until(sub {
        ($back) = grep { $_ != $loaders[0] } $t->loader_pids;
        return $back && body_of('hello', '/hello') eq "Hello again!\n";
    }, 15), "loader $loaders[0] killed: loader " . ($back // '?')
            . ' serves hello again');
is(api("/v1/deployments/$again")->{json}{state}, 'running',
   "#$again is still running");


# the builder killed with SIGKILL: the app serves, the next builder adopts it -------

client_start(qr/^Hello again!$/);
ok(client_runs(), 'the client loops again');

my $status = $t->builder_stop('KILL');
is($status & 127, 9, 'the builder is killed');
ok(client_runs(), 'the app serves without a builder');
$r = deploy('hello', project($hello_main));
is($r->{status}, 503, 'POST /deploy meanwhile: 503');
like($r->{json}{error} // '', qr/cannot connect to the builder/, '... saying why');

$p->start_builder;
is_deeply([$t->loader_pids], [$back],
          "the next builder adopted hello's loader $back in place");
ok(client_runs(), 'the client goes on');

($n, @bad) = client_stop();
cmp_ok($n, '>', 40, "the client made $n requests across the restart");
is_deeply(\@bad, [], '... every one answered by hello');

$r = deploy('hello', project($hello_main));
is($r->{status}, 202, 'a deploy after the restart: 202');
is(settle($r->{json}{id})->{state}, 'running', '... runs');
is(body_of('hello', '/hello'), "Hello, world!\n", '... and answers');

done_testing;
