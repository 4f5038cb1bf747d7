#!/usr/bin/perl

# PostgreSQL as a hostile tenant tries it (issue 20): t/sandbox/pgprobe,
# deployed, connects with what the builder gave it.  It reaches the server
# through the unix socket the builder names (the admin connection is TCP,
# --postgres-socket gives the directory); it cannot connect to "postgres",
# "template1" or another project's database (CONNECT revoked, and
# pg_hba.conf's lines of docs/operators-guide.md: samerole,
# +shuttle-tenants); its role
# has a connection limit, so holding connections does not lock the other
# project out; a provisioning brings roles and databases made before these
# rules back in line.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $LIMIT = 5;
my $p = Shuttle::Platform->new(postgres => 1,
                               builder_args => ['--postgres-connections',
                                                $LIMIT]);
my $t = $p->t;
my $pg = $p->pg;
my $repo = Shuttle::Test::repo();
my $sockdir = $pg->socket_dir;

sub get {
    my ($name, $path) = @_;
    return $p->app_get($name, $path)->{body} // '';
}

sub password_of {
    my ($project) = @_;
    my $db = $t->builder_data . '/shuttle.db';
    my ($info) = `sqlite3 $db "SELECT info FROM resources WHERE project = '$project' AND kind = 'postgres' AND name = ''"`;
    return eval { decode_json($info)->{password} } // '';
}

sub tenant_psql {
    my ($project, $db, %opts) = @_;
    return $pg->psql('SELECT current_database()', db => $db,
                     user => "shuttle_$project",
                     password => password_of($project), socket => 1, %opts);
}

like($p->builder_log, qr/postgres: services connect through the unix socket in \Q$sockdir\E \(port \d+\)/,
     'the builder says at start what services will use');

my ($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/guestbook"]);
is($rc, 0, 'guestbook deploys') or diag $err, $p->builder_log;
($rc, $out, $err) = $p->cli(['deploy', "$repo/t/sandbox/pgprobe"]);
is($rc, 0, 'pgprobe deploys') or diag $err, $p->builder_log;

like(get('pgprobe', '/where'), qr/^host=\Q$sockdir\E port=\d+$/m,
     "a service's DSN names the socket's directory, not the TCP address");


# postgres, template1, another project's database ---------------------------

for my $db ('postgres', 'template1') {
    like($pg->psql("SELECT has_database_privilege('public', '$db', 'CONNECT')::text"),
         qr/^false$/m, "PUBLIC may not connect to $db");
    like(get('pgprobe', "/db?name=$db"),
         qr/^refused: .*pg_hba\.conf rejects connection .*user "shuttle_pgprobe", database "$db"/m,
         "the service cannot connect to $db");
    ($rc, $out) = tenant_psql('pgprobe', $db);
    isnt($rc, 0, "... nor psql as its role with its password") or diag $out;
}
like($pg->psql(q{SELECT has_database_privilege('shuttle_pgprobe', 'postgres', 'CONNECT')::text}),
     qr/^false$/m, 'its role has no CONNECT on postgres (were pg_hba.conf to let it)');

my @revoked = $p->builder_log =~ /revoked CONNECT on databases postgres, template1 from PUBLIC/g;
is(scalar @revoked, 1, 'the builder logged the revoke once, for two provisionings');

like(get('pgprobe', '/db?name=shuttle_guestbook_main'),
     qr/^refused: .*pg_hba\.conf rejects connection .*database "shuttle_guestbook_main"/m,
     "the service cannot connect to guestbook's database");
like($pg->psql(q{SELECT has_database_privilege('shuttle_pgprobe', 'shuttle_guestbook_main', 'CONNECT')::text}),
     qr/^false$/m, "... nor has its role CONNECT on it");
($rc, $out) = tenant_psql('pgprobe', 'shuttle_guestbook_main');
isnt($rc, 0, '... nor psql as its role') or diag $out;

like(get('pgprobe', '/db?name=shuttle_pgprobe_main'),
     qr/^connected to shuttle_pgprobe_main$/m, 'its own database: connected');
($rc, $out) = tenant_psql('pgprobe', 'shuttle_pgprobe_main');
is($rc, 0, '... and with psql through the socket') or diag $out;
($rc, $out) = tenant_psql('pgprobe', 'shuttle_pgprobe_main', socket => 0);
like($out, qr/pg_hba\.conf rejects connection for host "127\.0\.0\.1"/,
     '... not over TCP');


# a connection limit per role ---------------------------------------------

like($pg->psql(q{SELECT rolname || '=' || rolconnlimit FROM pg_roles WHERE rolname LIKE 'shuttle\_%' AND rolcanlogin ORDER BY 1}),
     qr/^shuttle_guestbook=$LIMIT\nshuttle_pgprobe=$LIMIT$/m,
     "each role has CONNECTION LIMIT $LIMIT (--postgres-connections)");

$out = get('pgprobe', '/hold?n=50');
like($out, qr/too many connections for role "shuttle_pgprobe"/,
     'the service holds connections until its role has no more') or diag $out;
my ($held) = $out =~ /^held (\d+)/m;
cmp_ok($held // 50, '<', $LIMIT, "... it got $held of 50");
# (a refused backend may show a moment longer)
my $count = sub {
    ($pg->psql(q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'shuttle_pgprobe'}) =~ /(\d+)/)[0];
};
$t->wait_until(sub { $count->() == $LIMIT }, 5);
is($count->(), $LIMIT, "... the server holds $LIMIT of its role's");
($rc, $out) = tenant_psql('pgprobe', 'shuttle_pgprobe_main');
like($out, qr/too many connections for role "shuttle_pgprobe"/,
     '... psql as its role is refused too');

($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/guestbook"]);
is($rc, 0, 'meanwhile guestbook deploys again: its new loader connects')
    or diag $err, $p->builder_log;
my $r = http_get($p->port, 'guestbook.localhost', '/api/entries',
                 method => 'POST',
                 body => encode_json({ name => 'Ann', message => 'Hi' }),
                 headers => ['Content-Type' => 'application/json']);
is($r->{status}, 201, '... and serves: POST an entry') or diag $r->{body};
like(get('guestbook', '/api/entries'), qr/"name":\s*"Ann"/, '... reads it back');

like(get('pgprobe', '/release'), qr/^released $held$/m, 'pgprobe lets go');


# roles and databases made before: brought in line by a provisioning -------

$pg->psql('ALTER ROLE shuttle_guestbook CONNECTION LIMIT -1');
$pg->psql('GRANT CONNECT ON DATABASE shuttle_guestbook_main TO PUBLIC');
$pg->psql('REVOKE "shuttle_guestbook_main" FROM shuttle_guestbook');
($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/guestbook"]);
is($rc, 0, 'guestbook, its role without a limit, its database open to '
   . 'PUBLIC, deploys again') or diag $err;
like($pg->psql(q{SELECT rolconnlimit FROM pg_roles WHERE rolname = 'shuttle_guestbook'}),
     qr/^$LIMIT$/m, '... its role has the limit again');
like($pg->psql(q{SELECT has_database_privilege('public', 'shuttle_guestbook_main', 'CONNECT')::text}),
     qr/^false$/m, '... PUBLIC may not connect to its database');
like(get('guestbook', '/api/entries'), qr/"name":\s*"Ann"/,
     '... and it serves from its database');

# names taken: a project's role named as another's database, or the reverse
($rc, $out, $err) = $p->cli(['deploy', "$repo/t/sandbox/pgprobe", '--name',
                             'pgprobe-main']);
is($rc, 1, "project pgprobe-main, its role named as pgprobe's database: "
   . 'refused');
like($err, qr/role shuttle_pgprobe_main exists and may not log in: the name is taken/,
     '... saying so');
like($pg->psql(q{SELECT rolcanlogin::text FROM pg_roles WHERE rolname = 'shuttle_pgprobe_main'}),
     qr/^false$/m, '... the database\'s role still may not log in');
($rc, $out, $err) = $p->cli(['deploy', "$repo/t/sandbox/pgprobe", '--name',
                             'dbx-main']);
is($rc, 0, 'project dbx-main: role shuttle_dbx_main') or diag $err;
($rc, $out, $err) = $p->cli(['deploy', "$repo/t/sandbox/pgprobe", '--name',
                             'dbx']);
is($rc, 1, 'project dbx, its database shuttle_dbx_main named as that role: '
   . 'refused');
like($err, qr/role shuttle_dbx_main exists and may log in: the name is taken/,
     '... saying so');
like($pg->psql(q{SELECT count(*) FROM pg_database WHERE datname = 'shuttle_dbx_main'}),
     qr/^0$/m, '... and no database made');
like($pg->psql(q{SELECT count(*) FROM pg_auth_members WHERE roleid = 'shuttle_dbx_main'::regrole}),
     qr/^0$/m, '... nor anyone in dbx-main\'s role');

# a builder started again finds the server as it left it: nothing to revoke
$p->stop_builder;
$p->start_builder;
($rc, $out, $err) = $p->cli(['deploy', "$repo/t/sandbox/pgprobe"]);
is($rc, 0, 'pgprobe deploys on a builder started again') or diag $err;
@revoked = $p->builder_log =~ /revoked CONNECT on databases postgres, template1 from PUBLIC/g;
is(scalar @revoked, 1, '... which had nothing to revoke');

# what the builder says at start when services cannot reach the server
sub restart_with {
    my (@pg) = @_;
    my @args = @{ $p->{builder_args} };
    my ($i) = grep { $args[$_] eq '--postgres' } 0 .. $#args;
    splice @args, $i, scalar @args - $i, @pg;
    my $mark = length $p->builder_log;
    $p->stop_builder;
    $t->builder_start('--apps-url', 'http://{name}.localhost:' . $p->port,
                      '--loader', Shuttle::Platform::loader_bin(),
                      '--sdk-include', "$repo/include", @args);
    return substr($p->builder_log, $mark);
}
my $log = restart_with('--postgres', $pg->admin_dsn);
like($log, qr/warn postgres: services are given the admin DSN's host 127\.0\.0\.1 and port \d+, no unix socket .*give --postgres-socket DIR/,
     'a TCP admin DSN alone: the builder warns that services have no socket');
$log = restart_with('--postgres', $pg->admin_dsn, '--postgres-socket',
                    $t->testdir);
like($log, qr/warn postgres: services connect through the unix socket in \Q${\ $t->testdir }\E \(port \d+\), but there is no socket/,
     'a directory without the socket: it warns');
my ($brc, $bout) = $t->builder_run('--postgres', $pg->admin_dsn,
                                   '--postgres-socket', 'run/postgresql');
like($bout, qr/--postgres-socket "run\/postgresql": not an absolute path/,
     'a relative --postgres-socket: refused');

$p->stop;

done_testing();
