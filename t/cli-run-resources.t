#!/usr/bin/perl

# shuttle run provisions what the service declares, locally: a SQLite
# database under .shuttle/sqlite/ that outlives the run, secrets from
# Secrets.json, the static folder served by the loader with its type, a
# PostgreSQL database from --postgres (a private server, through its
# socket directory: the service has a network of its own), and clear
# errors: PostgreSQL declared without --postgres or by a TCP address, a
# bad Secrets.json, a .shuttle/sqlite that is a link out of the project.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Postgres;

my $bin = Shuttle::Platform::shuttle_bin();
my $t = Shuttle::Test->new;
my $dir = $t->testdir;
my $repo = Shuttle::Test::repo();
make_path("$dir/home");

my %env = (PATH => $ENV{PATH} // '/usr/bin:/bin', HOME => "$dir/home",
           LANG => 'C');

my @running;
my $runs = 0;
END { for (@running) { kill 'KILL', $_; waitpid($_, 0) } }

# shuttle run in the background until it serves; its pid
sub run_bg {
    my ($project, $port, @args) = @_;
    my $n = ++$runs;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/run-$n.out";
        open STDERR, '>', "$dir/run-$n.err";
        %ENV = %env;
        chdir $project or POSIX::_exit(126);
        exec $bin, 'run', '--port', $port, @args or POSIX::_exit(127);
    }
    push @running, $pid;
    my $up = $t->wait_until(sub {
        return -1 if waitpid($pid, WNOHANG) == $pid;
        return ($t->read_file("$dir/run-$n.err") // '') =~ /^Serving on /m ? 1 : 0;
    }, 20);
    return ($pid, $n, $up);
}

sub stop_bg {
    my ($pid) = @_;
    kill 'INT', $pid;
    my $end = time + 10;
    sleep 0.02 until waitpid($pid, WNOHANG) == $pid || time > $end;
    @running = grep { $_ != $pid } @running;
}

sub get {
    my ($port, $method, $path, $body) = @_;
    my $r = http_get($port, 'localhost', $path, method => $method,
                     defined $body ? (body => encode_json($body)) : ());
    $r->{json} = eval { decode_json($r->{body}) };
    return $r;
}


# todo: SQLite under .shuttle/, kept across runs

my $todo = "$dir/todo";
system('cp', '-r', "$repo/examples/todo", $todo) == 0 or die 'cp';

my $port = $t->port('A');
$t->_release_ports;
my ($pid, $n, $up) = run_bg($todo, $port);
is($up, 1, 'shuttle run examples/todo serves')
    or diag $t->read_file("$dir/run-$n.err");
like($t->read_file("$dir/run-$n.err"), qr{SQLite "main": \Q$todo\E/\.shuttle/sqlite/main\.db},
     '... saying where its SQLite database is');
is(get($port, 'POST', '/todos', { title => 'local' })->{status}, 201, 'POST /todos');
stop_bg($pid);
ok(-s "$todo/.shuttle/sqlite/main.db", 'the database file is in .shuttle/sqlite/');

($pid, $n, $up) = run_bg($todo, $port);
is_deeply([ map { $_->{title} } @{ get($port, 'GET', '/todos')->{json} // [] } ],
          ['local'], 'a second run finds the item');
stop_bg($pid);

# a cloned repository's .shuttle/sqlite, a link to where git runs things:
# not bound writable into the sandbox
my $hooked = "$dir/hooked";
system('cp', '-r', "$repo/examples/todo", $hooked) == 0 or die 'cp';
make_path("$hooked/.git/hooks", "$hooked/.shuttle");
symlink('../.git/hooks', "$hooked/.shuttle/sqlite") or die "symlink: $!";
my ($rc, $out, $err) = Shuttle::Platform::run_cmd([$bin, 'run', '--port', $port],
                                                  env => \%env, dir => $hooked);
is($rc, 1, '.shuttle/sqlite a link to .git/hooks: exit 1');
like($err, qr{\Q$hooked\E/\.shuttle/sqlite is not a folder of the project's own},
     '... saying so');
opendir(my $hd, "$hooked/.git/hooks") or die "hooks: $!";
is_deeply([ grep { !/^\.\.?$/ } readdir $hd ], [], '... nothing written in .git/hooks');


# secrets from Secrets.json, static files from the loader

my $web = "$dir/web";
$t->write_file("$web/shuttle.json", qq({"name": "web"}\n));
$t->write_file("$web/public/site.css", "body { color: teal }\n");
$t->write_file("$web/public/index.html", "<h1>web</h1>\n");
$t->write_file("$web/Secrets.json", qq({"TOKEN": "local-token"}\n));
$t->write_file("$web/src/main.c", <<'EOF');
#include <shuttle.h>

SHUTTLE_SECRETS();
SHUTTLE_STATIC("public");

static void
token(shuttle_req *req, shuttle_res *res)
{
    const char  *v = shuttle_secret(shuttle_req_app(req), "TOKEN");

    shuttle_text(res, 200, v ? v : "(none)");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/token", token);
    return 0;
}
EOF

($pid, $n, $up) = run_bg($web, $port);
is($up, 1, 'shuttle run of a service with secrets and a static folder')
    or diag $t->read_file("$dir/run-$n.err");
is(get($port, 'GET', '/token')->{body}, 'local-token', 'the secret from Secrets.json');
my $r = get($port, 'GET', '/site.css');
is($r->{status}, 200, 'GET /site.css: 200');
like($r->{headers}{'content-type'}, qr{^text/css}, '... text/css');
is($r->{body}, "body { color: teal }\n", '... the file');
is(get($port, 'GET', '/')->{body}, "<h1>web</h1>\n", 'GET /: index.html');
is(get($port, 'GET', '/missing.css')->{status}, 404, 'a missing file: 404');
is(get($port, 'GET', '/../shuttle.json')->{status}, 404, '"..": 404');
stop_bg($pid);

$t->write_file("$web/Secrets.json", "[1, 2]\n");
($rc, $out, $err) = Shuttle::Platform::run_cmd([$bin, 'run', '--port', $port],
                                                  env => \%env, dir => $web);
is($rc, 1, 'a Secrets.json that is not an object: exit 1');
like($err, qr/Secrets\.json: not a JSON object/, '... saying so');


# PostgreSQL: refused without --postgres, served with it

my $gb = "$dir/guestbook";
system('cp', '-r', "$repo/examples/guestbook", $gb) == 0 or die 'cp';
($rc, $out, $err) = Shuttle::Platform::run_cmd([$bin, 'run', '--port', $port],
                                               env => \%env, dir => $gb);
is($rc, 1, 'guestbook without --postgres: exit 1');
like($err, qr/SHUTTLE_POSTGRES\("main"\): give shuttle run a database with --postgres/,
     '... saying what to give');

my $pg = Shuttle::Postgres->new($t);
my $dsn = $pg->create_db('gb_local', 'gb_local', 'pw-local');

# by TCP: out of the sandbox's network, refused before anything starts
($rc, $out, $err) = Shuttle::Platform::run_cmd(
    [$bin, 'run', '--port', $port, '--postgres', $dsn], env => \%env, dir => $gb);
is($rc, 2, 'guestbook with a TCP --postgres: exit 2');
like($err, qr/--postgres: host "127\.0\.0\.1" is out of the sandbox's reach: .*network of its own.*socket directory/,
     '... saying to give the socket directory');
($rc, $out, $err) = Shuttle::Platform::run_cmd(
    [$bin, 'run', '--port', $port, '--postgres',
     "postgresql://gb_local:pw-local\@localhost:$pg->{port}/gb_local"],
    env => \%env, dir => $gb);
like($err, qr/--postgres: host "localhost" is out of the sandbox's reach/,
     '... as a URI too');

# by its socket directory, bound into the sandbox
my $sockdir = $pg->socket_dir;  # the directory, made reachable
$dsn =~ s/host=\S+/host=$sockdir/;
($pid, $n, $up) = run_bg($gb, $port, '--postgres', $dsn);
is($up, 1, 'guestbook with --postgres serves') or diag $t->read_file("$dir/run-$n.err");
is(get($port, 'POST', '/api/entries', { name => 'Lo', message => 'cal' })->{status},
   201, 'POST /api/entries');
like($pg->psql('SELECT name FROM entries', db => 'gb_local'), qr/^Lo$/m,
     '... the row is in the given database');
stop_bg($pid);

done_testing;
