#!/usr/bin/perl

# Resources declared in code, end to end: the real CLI, nginx, builder,
# loaders, SQLite and a private PostgreSQL server.  examples/todo's items
# survive a redeploy and builder restarts; two projects cannot see each
# other's databases (SQLite files, PostgreSQL roles); secrets reach the
# service and never show in a log or an API answer; examples/guestbook's
# static files are served by nginx, with their types, while the
# service's routes win; a bad declaration fails the build clearly.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new(postgres => 1);
my $t = $p->t;
my $pg = $p->pg;
my $repo = Shuttle::Test::repo();
my $work = $p->testdir . '/work';
make_path($work);

sub deploy {
    my ($dir, @args) = @_;
    my ($rc, $out, $err) = $p->cli(['deploy', $dir, @args]);
    return ($rc, $out, $err);
}

sub req {
    my ($name, $method, $path, $body) = @_;
    my $r = http_get($p->port, "$name.localhost", $path, method => $method,
                     defined $body
                     ? (body => encode_json($body),
                        headers => ['Content-Type' => 'application/json'])
                     : ());
    $r->{json} = eval { decode_json($r->{body}) };
    return $r;
}

sub project_json {
    my ($name) = @_;
    my ($rc, $out) = $p->cli(['status', $name, '--json']);
    return $rc ? {} : decode_json($out);
}

sub resource {
    my ($name, $type) = @_;
    my ($res) = grep { $_->{type} eq $type }
                @{ project_json($name)->{resources} // [] };
    return $res;
}


# todo: SQLite, through a redeploy and builder restarts -------------------------

my ($rc, $out, $err) = deploy("$repo/examples/todo");
is($rc, 0, 'shuttle deploy examples/todo') or diag $err, $p->builder_log;

my $r = req('todo', 'POST', '/todos', { title => 'write the tests' });
is($r->{status}, 201, 'POST /todos: 201');
is_deeply($r->{json}, { id => 1, title => 'write the tests', done => JSON::PP::false },
          '... the item');
$r = req('todo', 'POST', '/todos', { title => 'ship it' });
is($r->{json}{id}, 2, 'a second item');
$r = req('todo', 'PUT', '/todos/1', { done => JSON::PP::true });
is($r->{status}, 200, 'PUT /todos/1: 200');
ok($r->{json}{done}, '... done');
is(req('todo', 'POST', '/todos', { name => 'x' })->{status}, 400,
   'POST without a title: 400');
is(req('todo', 'POST', '/todos', 'a string')->{status}, 400,
   'POST of a JSON string: 400');
$r = req('todo', 'GET', '/todos/99');
is($r->{status}, 404, 'GET /todos/99: 404');
like($r->{json}{error} // '', qr/todo 99 not found/, '... saying so');
is(req('todo', 'GET', '/todos/x1')->{status}, 400, 'GET /todos/x1: 400');

my @want = ({ id => 1, title => 'write the tests', done => JSON::PP::true },
            { id => 2, title => 'ship it', done => JSON::PP::false });
is_deeply(req('todo', 'GET', '/todos')->{json}, \@want, 'GET /todos lists both');

my $sqlite = resource('todo', 'sqlite');
is($sqlite->{name}, 'main', 'status --json: the SQLite database "main"');
cmp_ok($sqlite->{size} // 0, '>', 0, "... of $sqlite->{size} bytes");
($rc, $out) = $p->cli(['status', 'todo']);
like($out, qr/sqlite\s+main/, 'shuttle status shows it');

($rc, $out, $err) = deploy("$repo/examples/todo");
is($rc, 0, 'redeploy todo');
is_deeply(req('todo', 'GET', '/todos')->{json}, \@want,
          '... the items are still there');

is($t->builder_stop('TERM') >> 8, 0, 'the builder stops (SIGTERM)');
$p->start_builder;
ok($t->wait_until(sub { req('todo', 'GET', '/todos')->{status} == 200 }, 15),
   '... and starts again: todo answers');
is_deeply(req('todo', 'GET', '/todos')->{json}, \@want, '... with its items');

is($t->builder_stop('KILL') & 127, 9, 'the builder is killed (SIGKILL)');
$p->start_builder;
ok($t->wait_until(sub {
        my @l = $t->loader_pids;
        return @l == 1 && req('todo', 'GET', '/todos')->{status} == 200;
    }, 15), '... the next one takes todo over');
is_deeply(req('todo', 'GET', '/todos')->{json}, \@want, '... with its items');


($rc, $out, $err) = $p->cli(['rollback', 'todo']);
is($rc, 0, 'shuttle rollback todo') or diag $err;
is_deeply(req('todo', 'GET', '/todos')->{json}, \@want,
          '... the previous deployment has the same items');


# two projects, two databases ---------------------------------------------------

($rc, $out, $err) = deploy("$repo/examples/todo", '--name', 'todo2');
is($rc, 0, 'the same code as project todo2') or diag $err;
is_deeply(req('todo2', 'GET', '/todos')->{json}, [], "todo2 sees none of todo's items");
req('todo2', 'POST', '/todos', { title => 'mine' });
is(scalar @{ req('todo', 'GET', '/todos')->{json} }, 2, '... and todo none of its');


# guestbook: PostgreSQL and static files ----------------------------------------

($rc, $out, $err) = deploy("$repo/examples/guestbook");
is($rc, 0, 'shuttle deploy examples/guestbook') or diag $err, $p->builder_log;

$r = req('guestbook', 'POST', '/api/entries', { name => 'Ann', message => 'Hello!' });
is($r->{status}, 201, 'POST /api/entries: 201');
is($r->{json}{name}, 'Ann', '... the entry');
$r = req('guestbook', 'GET', '/api/entries');
is_deeply([ map { "$_->{name}: $_->{message}" } @{ $r->{json} // [] } ],
          ['Ann: Hello!'], 'GET /api/entries lists it');

($rc, $out, $err) = deploy("$repo/examples/guestbook");
is($rc, 0, 'redeploy guestbook');
is(scalar @{ req('guestbook', 'GET', '/api/entries')->{json} // [] }, 1,
   '... the entry survives');

my $pgres = resource('guestbook', 'postgres');
ok($pgres && $pgres->{database}, "status: the PostgreSQL database "
   . ($pgres->{database} // '?'));
is($pgres->{server}, '127.0.0.1:' . $pg->port, '... on the server ' . ($pgres->{server} // '?'));
($rc, $out) = $p->cli(['status', 'guestbook']);
like($out, qr/postgres\s+main \(database shuttle_guestbook_main on 127\.0\.0\.1:\d+\)/,
     'shuttle status shows where');
like($pg->psql('SELECT count(*) FROM entries', db => $pgres->{database}),
     qr/^1$/m, '... holds the entry, seen with psql');

# static: nginx serves the file, with its type and nginx's validators
$r = http_get($p->port, 'guestbook.localhost', '/style.css');
is($r->{status}, 200, 'GET /style.css: 200');
like($r->{headers}{'content-type'}, qr{^text/css}, '... text/css');
is($r->{body}, $t->read_file("$repo/examples/guestbook/public/style.css"),
   '... the file');
ok($r->{headers}{etag} && $r->{headers}{'last-modified'},
   '... with ETag and Last-Modified: nginx sent the file');
like($r->{headers}{'cache-control'} // '', qr/max-age=\d+/, '... and Cache-Control');
ok(!exists $r->{headers}{'x-accel-redirect'}, '... no X-Accel-Redirect leaks out');

my $etag = $r->{headers}{etag};
$r = http_get($p->port, 'guestbook.localhost', '/style.css',
              headers => ['If-None-Match' => $etag]);
is($r->{status}, 304, 'If-None-Match: 304');

$r = http_get($p->port, 'guestbook.localhost', '/');
is($r->{status}, 200, 'GET /: index.html');
like($r->{headers}{'content-type'}, qr{^text/html}, '... text/html');
like($r->{body}, qr/<title>Guestbook<\/title>/, '... the page');

$r = http_get($p->port, 'guestbook.localhost', '/app.js');
like($r->{headers}{'content-type'}, qr{javascript}, 'app.js: a JavaScript type');

is(http_get($p->port, 'guestbook.localhost', '/nothing.css')->{status}, 404,
   'a missing file: 404');
is(http_get($p->port, 'guestbook.localhost', '/_shuttle_static/guestbook/')->{status},
   404, 'the internal location cannot be reached from outside');

# a route wins over a file of the same path
my $gb2 = "$work/gb2";
system('cp', '-r', "$repo/examples/guestbook", $gb2) == 0 or die 'cp';
make_path("$gb2/public/api");
$t->write_file("$gb2/public/api/entries", "a file that loses\n");
($rc, $out, $err) = deploy($gb2, '--name', 'gb2');
is($rc, 0, 'guestbook with a file public/api/entries, as gb2') or diag $err;
$r = req('gb2', 'GET', '/api/entries');
is_deeply($r->{json}, [], '... GET /api/entries is the route (gb2 has its own, empty, database)');

# gb2's role cannot open guestbook's database
my $gb2res = resource('gb2', 'postgres');
isnt($gb2res->{database}, $pgres->{database}, 'gb2 has a database of its own');
my ($prc, $pout) = $pg->psql(q{SELECT rolname FROM pg_roles WHERE rolname LIKE 'shuttle_%' ORDER BY 1});
my @roles = split /\n/, $pout;
cmp_ok(scalar @roles, '>=', 2, "a role per project: @roles");
$pout = $pg->psql(qq{SELECT has_database_privilege('shuttle_gb2', '$pgres->{database}', 'CONNECT')::text});
like($pout, qr/^false$/m, "shuttle_gb2 may not connect to $pgres->{database}");

# and with its own password, as its service would, it cannot
my $db = $t->builder_data . '/shuttle.db';
my ($info) = `sqlite3 $db "SELECT info FROM resources WHERE project = 'gb2' AND kind = 'postgres' AND name = ''"`;
my $gbpw = eval { decode_json($info)->{password} } // '';
ok(length $gbpw >= 16, "gb2's role has a password of its own in the store");
($prc, $pout) = $pg->psql('SELECT count(*) FROM entries', db => $gb2res->{database},
                          user => 'shuttle_gb2', password => $gbpw, socket => 1);
is($prc, 0, "gb2's role opens gb2's database") or diag $pout;
($prc, $pout) = $pg->psql('SELECT count(*) FROM entries', db => $pgres->{database},
                          user => 'shuttle_gb2', password => $gbpw, socket => 1);
isnt($prc, 0, "gb2's role cannot open guestbook's database");
like($pout, qr/pg_hba\.conf rejects connection .*database "$pgres->{database}"/,
     "... pg_hba.conf rejects it");
is((stat $db)[2] & 0777, 0600, 'the store holding it is 0600');


# secrets -------------------------------------------------------------------------

my $secret = 'sv-' . join '', map { ('a'..'z')[rand 26] } 1 .. 20;
my $sdir = "$work/greeter";
$t->write_file("$sdir/shuttle.json", qq({"name": "greeter"}\n));
$t->write_file("$sdir/src/main.c", <<'EOF');
#include <shuttle.h>

SHUTTLE_SECRETS();

static void
greet(shuttle_req *req, shuttle_res *res)
{
    const char  *v = shuttle_secret(shuttle_req_app(req), "GREETING");

    shuttle_text(res, 200, v ? v : "(none)");
}

SHUTTLE_MAIN(app)
{
    if (shuttle_secret(app, "BREAK") != NULL) {
        return 1;
    }

    shuttle_get(app, "/", greet);
    return 0;
}
EOF

# a local Secrets.json (for shuttle run) is never uploaded
$t->write_file("$sdir/Secrets.json", qq({"GREETING": "local"}\n));
($rc, $out, $err) = $p->cli(['deploy', $sdir, '--dry-run']);
is($rc, 0, 'deploy --dry-run');
unlike($out . $err, qr/Secrets\.json/, '... Secrets.json is not in the upload');
like($out . $err, qr{src/main\.c}, '... src/main.c is');

($rc, $out, $err) = $p->cli(['secrets', 'set', "GREETING=$secret", '--name', 'greeter']);
is($rc, 0, 'shuttle secrets set GREETING=...') or diag $err;
($rc, $out, $err) = deploy($sdir);
is($rc, 0, 'deploy greeter') or diag $err;
is(req('greeter', 'GET', '/')->{body}, $secret, 'the service reads the secret');

($rc, $out) = $p->cli(['secrets', 'list', '--name', 'greeter']);
like($out, qr/^GREETING$/m, 'secrets list: the name');
my @seen = grep { index($_->[1], $secret) >= 0 } (
    ['secrets list', $out],
    ['status --json', scalar(($p->cli(['status', 'greeter', '--json']))[1])],
    ['logs', scalar(($p->cli(['logs', 'greeter']))[1])],
    ['the builder log', $p->builder_log],
    ['nginx error log', $t->error_log // ''],
    ['build.log', join '', map { $t->read_file($_) // '' }
                  glob($t->builder_data . '/projects/greeter/deployments/*/*.log')],
);
is_deeply([ map { $_->[0] } @seen ], [], 'the value shows nowhere');


# a new value, shuttle restart: the service sees it, no request fails meanwhile

my $secret2 = "$secret-two";
($rc, $out, $err) = $p->cli(['secrets', 'set', 'GREETING', '--name', 'greeter'],
                            stdin => "$secret2\n");
is($rc, 0, 'shuttle secrets set GREETING, the value from stdin') or diag $err;
is(req('greeter', 'GET', '/')->{body}, $secret, '... the service still has the old value');

my $clog = $p->testdir . '/client.log';
my $cstop = $p->testdir . '/client.stop';
my $client = fork // die "fork: $!";
if ($client == 0) {
    my ($n, @bad) = (0);
    until (-e $cstop) {
        my $res = eval { http_get($p->port, 'greeter.localhost', '/', timeout => 5) };
        $n++;
        push @bad, $res ? "$res->{status} $res->{body}" : "error: $@"
            unless $res && $res->{status} == 200
                   && ($res->{body} eq $secret || $res->{body} eq $secret2);
    }
    open my $fh, '>', $clog or POSIX::_exit(1);
    print $fh "$n\n", map { "$_\n" } @bad;
    close $fh;
    POSIX::_exit(0);
}
END { if ($client) { kill 'KILL', $client; waitpid($client, 0) } }

my $before = () = ($t->read_file('access.log') // '') =~ /^/mg;
$t->wait_until(sub { (() = ($t->read_file('access.log') // '') =~ /^/mg) > $before + 20 }, 10);
($rc, $out, $err) = $p->cli(['restart', 'greeter']);
is($rc, 0, 'shuttle restart greeter') or diag $err, $p->builder_log;
is($out, $p->app_url('greeter') . "\n", '... prints the URL');
is(req('greeter', 'GET', '/')->{body}, $secret2, '... the service has the new value');
$before = () = ($t->read_file('access.log') // '') =~ /^/mg;
$t->wait_until(sub { (() = ($t->read_file('access.log') // '') =~ /^/mg) > $before + 20 }, 10);
$t->write_file($cstop, '');
waitpid($client, 0);
$client = 0;
my ($n, @bad) = split /\n/, $t->read_file($clog) // "0\nno client log";
cmp_ok($n, '>', 40, "a client made $n requests across the restart");
is_deeply(\@bad, [], '... every one answered');
is(scalar(grep { index($_, $secret2) >= 0 } $p->builder_log,
          join('', map { $t->read_file($_) // '' }
                   glob($t->builder_data . '/projects/greeter/deployments/*/*.log'))),
   0, 'the new value is in no log either');

# a restart that does not come up leaves the old loader serving
($rc, $out, $err) = $p->cli(['secrets', 'set', 'BREAK=1', '--name', 'greeter']);
my $t0 = time;
($rc, $out, $err) = $p->cli(['restart', 'greeter']);
is($rc, 3, 'a restart whose service fails to start: exit 3');
like($err, qr/did not start; the old one goes on serving/, '... saying so');
cmp_ok(time - $t0, '<', 5, '... at once, not after a timeout');
is(req('greeter', 'GET', '/')->{body}, $secret2, '... and the old loader serves');
($rc, $out) = $p->cli(['status', 'greeter', '--json']);
is(eval { decode_json($out)->{state} }, 'running', '... the project is running');

($rc, $out, $err) = $p->cli(['secrets', 'rm', 'GREETING', 'BREAK', '--name', 'greeter']);
is($rc, 0, 'shuttle secrets rm GREETING BREAK');
($rc, $out, $err) = $p->cli(['secrets', 'list', '--name', 'greeter']);
is($out, '', '... list: none');
($rc, $out, $err) = $p->cli(['secrets', 'set', '1BAD=x', '--name', 'greeter']);
is($rc, 3, 'a bad secret name: refused (exit 3)');
like($err, qr/not \[A-Za-z_\]/, '... saying what a name is');


# delete keeps the data for a redeploy; --purge removes it ---------------------------

($rc, $out, $err) = $p->cli(['delete', 'todo', '--yes']);
is($rc, 0, 'shuttle delete todo');
like($err, qr/kept for a redeploy/, '... says the data is kept');
($rc, $out, $err) = deploy("$repo/examples/todo");
is($rc, 0, 'todo deployed again');
is_deeply(req('todo', 'GET', '/todos')->{json}, \@want, '... with its items');

($rc, $out, $err) = $p->cli(['delete', 'todo', '--yes', '--purge']);
is($rc, 0, 'shuttle delete todo --purge');
ok(!-e $t->builder_data . '/projects/todo/resources', '... its SQLite files are gone');
($rc, $out, $err) = deploy("$repo/examples/todo");
is_deeply(req('todo', 'GET', '/todos')->{json}, [], 'todo deployed again: empty');

($rc, $out, $err) = $p->cli(['delete', 'gb2', '--yes', '--purge']);
is($rc, 0, 'shuttle delete gb2 --purge') or diag $err;
like($pg->psql(q{SELECT count(*) FROM pg_database WHERE datname = 'shuttle_gb2_main'}),
     qr/^0$/m, "... its PostgreSQL database is dropped");
like($pg->psql(q{SELECT count(*) FROM pg_roles WHERE rolname = 'shuttle_gb2'}),
     qr/^0$/m, '... and its role');
like($pg->psql(qq{SELECT count(*) FROM pg_database WHERE datname = '$pgres->{database}'}),
     qr/^1$/m, "guestbook's database is still there");


# a bad declaration fails the build -------------------------------------------------

my $bad = "$work/bad";
$t->write_file("$bad/shuttle.json", qq({"name": "bad"}\n));
$t->write_file("$bad/src/main.c", <<'EOF');
#include <shuttle.h>

SHUTTLE_SQLITE("Main DB");

static void
h(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "unreachable\n");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/", h);
    return 0;
}
EOF
($rc, $out, $err) = deploy($bad);
is($rc, 1, 'SHUTTLE_SQLITE("Main DB"): deploy exits 1');
like($err, qr/SHUTTLE_SQLITE\("Main DB"\).*database name/,
     '... naming the declaration and the rule');

# a static folder that is not there
$t->write_file("$bad/src/main.c", $t->read_file("$bad/src/main.c")
               =~ s/SHUTTLE_SQLITE\("Main DB"\)/SHUTTLE_STATIC("publc")/r);
($rc, $out, $err) = deploy($bad);
is($rc, 1, 'SHUTTLE_STATIC("publc") without the folder: exit 1');
like($err, qr/SHUTTLE_STATIC\("publc"\): the project has no folder publc/,
     '... saying so');

# PostgreSQL declared, none configured: the deployment says how to configure it
$p->stop;
my $q = Shuttle::Platform->new;
($rc, $out, $err) = $q->cli(['deploy', "$repo/examples/guestbook"]);
is($rc, 1, 'guestbook on a builder without --postgres: exit 1');
like($err, qr/postgres "main": no PostgreSQL server configured: start shuttle-builder with --postgres/,
     '... saying how to configure one');

done_testing;
