#!/usr/bin/perl

# The data filesystem full.  The builder's data directory (and the spool
# in it, as it must be: an upload is renamed into its deployment) is a
# small tmpfs of the test's own; a file of zeros fills it.  Then:
#
#   - an upload (POST /deploy through nginx), a build's extraction, a
#     build (the compiler's output), the provisioning of a SQLite
#     database and a SQLite write by a running service each fail, and
#     say why: "no space left on device", or SQLite's "database or disk
#     is full", and the object;
#   - nothing already stored is lost: the store passes integrity_check
#     and records every failure with its reason, the running projects
#     serve all along (a client loops on them) with their data, and an
#     earlier deployment still rolls back;
#   - once the file of zeros is removed, everything works again with no
#     restart: deploys, provisioning, the service's writes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

plan skip_all => 'mounting a tmpfs takes root' if $> != 0;

my $p = Shuttle::Platform->new(builder_args => ['--jobs', '1']);
my $t = $p->t;
my $dir = $p->testdir;
my $data = $t->builder_data;
my $spool = $t->builder_spool;
my $filler = "$data/filler";
my $mounted;

# the mount goes before the test's directory does, however the test ends
END {
    local $?;
    if ($mounted) {
        $p->stop;
        system('umount', $data) == 0 or system('umount', '-l', $data);
    }
}

sub run {
    my (@cmd) = @_;
    my ($rc, $out, $err) = Shuttle::Platform::run_cmd(\@cmd,
        env => { PATH => $ENV{PATH} });
    die "@cmd: exit $rc: $out$err" if $rc;
    return $out;
}


# DATA on a 24 MiB tmpfs, the spool in it --------------------------------------

$t->builder_stop('TERM');
rename $data, "$data.old" or die "rename $data: $!";
mkdir $data or die "mkdir $data: $!";
run('mount', '-t', 'tmpfs', '-o', 'size=24m,mode=0755', 'tmpfs', $data);
$mounted = 1;
run('cp', '-a', "$data.old/.", "$data/");
run('rm', '-rf', "$data.old");
my ($uid, $gid) = (stat $spool)[4, 5];
mkdir "$data/spool", 0700 or die "mkdir $data/spool: $!";
chown $uid, $gid, "$data/spool";
run('rm', '-rf', $spool);
symlink "$data/spool", $spool or die "symlink $spool: $!";
$p->start_builder;

sub fill {
    my ($leave) = @_;
    system("dd if=/dev/zero of=$filler bs=64k >/dev/null 2>&1");
    truncate $filler, (-s $filler) - $leave if $leave;
}

sub free_kib {
    my ($line) = (`df -k --output=avail $data`)[1];
    return $line =~ /(\d+)/ ? $1 : -1;
}


# projects -------------------------------------------------------------------

# a service answering "NAME vN" on /; with sqlite, POST /add?kb=N adds a
# row of N KiB to its database (SQLite's error in a 500), GET /count
# counts them.  make: a Makefile that waits, before the compiler or
# after it, for the test to say go.
sub app {
    my ($name, $v, %o) = @_;
    my $src = "$dir/src/$name-v$v";
    my $libs = $o{sqlite} ? '"libs": ["sqlite3"]' : '"libs": []';
    $t->write_file("$src/shuttle.json", qq({"name": "$name", $libs}\n));
    my $db = $o{sqlite} ? <<'EOF' : '';
SHUTTLE_SQLITE("main");

static void
add(shuttle_req *req, shuttle_res *res)
{
    char           msg[256];
    const char    *kb;
    sqlite3       *db;
    sqlite3_stmt  *st;

    db = shuttle_sqlite(shuttle_req_app(req), "main");
    kb = shuttle_req_query(req, "kb");

    if (db == NULL) {
        shuttle_text(res, 500, "no database (see the runtime log)\n");
        return;
    }

    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS notes (b BLOB)",
                     NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(db, "INSERT INTO notes VALUES (zeroblob(?))",
                              -1, &st, NULL) != SQLITE_OK)
    {
        snprintf(msg, sizeof(msg), "sqlite: %s\n", sqlite3_errmsg(db));
        shuttle_text(res, 500, msg);
        return;
    }

    sqlite3_bind_int(st, 1, (kb ? atoi(kb) : 1) * 1024);

    if (sqlite3_step(st) != SQLITE_DONE) {
        snprintf(msg, sizeof(msg), "sqlite: %s\n", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        shuttle_text(res, 500, msg);
        return;
    }

    sqlite3_finalize(st);
    shuttle_text(res, 201, "added\n");
}

static void
count(shuttle_req *req, shuttle_res *res)
{
    char           msg[64];
    sqlite3       *db;
    sqlite3_stmt  *st;

    db = shuttle_sqlite(shuttle_req_app(req), "main");

    if (db == NULL || sqlite3_prepare_v2(db, "SELECT count(*) FROM notes",
                                         -1, &st, NULL) != SQLITE_OK)
    {
        shuttle_text(res, 500, "no notes\n");
        return;
    }

    sqlite3_step(st);
    snprintf(msg, sizeof(msg), "%d\n", sqlite3_column_int(st, 0));
    sqlite3_finalize(st);
    shuttle_text(res, 200, msg);
}
EOF
    my $routes = $o{sqlite} ? 'shuttle_post(app, "/add", add);'
                              . ' shuttle_get(app, "/count", count);' : '';
    $t->write_file("$src/src/main.c", <<EOF);
#include <shuttle.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

$db
static void
root(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "$name v$v\\n");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/", root);
    $routes
    return 0;
}
EOF
    my $cc = '$(CC) -std=gnu11 -O2 -fPIC -shared -I$(SHUTTLE_INCLUDE)'
             . ' -o $@ src/main.c -lsqlite3';
    my $wait = "touch waiting\n\twhile [ ! -e go ]; do sleep 0.01; done";
    $t->write_file("$src/Makefile", "service.so: src/main.c\n"
                   . ($o{make} eq 'before' ? "\t$wait\n\t$cc\n"
                                           : "\t$cc\n\t$wait\n"))
        if $o{make};
    # a file of zeros: a small upload, a big extraction
    if ($o{zeros}) {
        open my $fh, '>', "$src/zeros.bin" or die "$src/zeros.bin: $!";
        print $fh "\0" x ($o{zeros} * 1024);
        close $fh;
    }
    return $src;
}

sub upload {
    my ($name, $v, %o) = @_;
    return $p->upload('alice', $name, app($name, $v, %o));
}

sub deploy {
    my ($name, $v, %o) = @_;
    my $r = upload($name, $v, %o);
    die "POST /deploy $name: $r->{status} $r->{body}"
        unless $r->{status} == 202;
    return $r->{json}{id};
}

sub deployment {
    my ($id) = @_;
    return $p->v1('alice', 'GET', "/v1/deployments/$id")->{json} // {};
}

sub settled {
    my ($id) = @_;
    my $d;
    $t->wait_until(sub {
        $d = deployment($id);
        ($d->{state} // '') =~ /^(running|failed)$/;
    }, 30);
    return $d;
}

sub get {
    my ($name, $path, %o) = @_;
    my $r = eval { $p->app_get($name, $path, timeout => 10, %o) };
    return $r ? "$r->{status} $r->{body}" : 'error';
}

sub src_dir {
    my ($name, $id) = @_;
    return "$data/projects/$name/deployments/$id/src";
}

# the build of #id waits in its Makefile: the disk filled, then go
sub at_waiting {
    my ($name, $id, $leave) = @_;
    my $src = src_dir($name, $id);
    $t->wait_until(sub { -e "$src/waiting" }, 30)
        or die "#$id never reached its Makefile's wait:\n"
               . $p->builder_log;
    fill($leave);
    open my $fh, '>', "$src/go" or die "$src/go: $!";
    close $fh;
}

sub store_ok {
    return `sqlite3 $data/shuttle.db 'PRAGMA integrity_check' 2>&1`
           =~ /^ok$/ ? 1 : 0;
}


# a platform serving ---------------------------------------------------------

my $notes1 = deploy('notes', 1, sqlite => 1);
is(settled($notes1)->{state}, 'running', "notes #$notes1 runs");
my $notes2 = deploy('notes', 2, sqlite => 1);
is(settled($notes2)->{state}, 'running', "notes #$notes2 runs");
my $hello = deploy('hello', 1);
is(settled($hello)->{state}, 'running', "hello #$hello runs");
is(get('notes', '/add?kb=1', method => 'POST'), "201 added\n",
   "notes adds a row") for 1 .. 3;
is(get('notes', '/count'), "200 3\n", '... it has 3');

sub backup {
    my ($file) = @_;
    return Shuttle::Platform::run_cmd(
        [Shuttle::Test::builder(), 'backup', '--data', $data, $file],
        env => { PATH => $ENV{PATH} });
}

my ($rc, $out, $err) = backup("$data/backup.db");
is($rc, 0, 'a backup of the store, on the data filesystem') or diag $err;
my $backup = $t->read_file("$data/backup.db");

my $c = Shuttle::Fault::client($p, ['notes', 'hello'],
                               ok => qr/^(notes v[12]|hello v1)$/);
my $lost = 0;
my $r;


# an upload ------------------------------------------------------------------

fill();
is(free_kib(), 0, 'the data filesystem is full');

$r = upload('hello', 2);
is($r->{status}, 507, "POST /deploy with it full: 507");
like($r->{body}, qr/no space left on device: the platform's spool has \d+ bytes free/i,
     '... saying no space left on device, before a byte is read');
my ($crc, $cout, $cerr) = $p->cli(['deploy', app('hello', 2)]);
isnt($crc, 0, 'shuttle deploy with it full: fails');
like($cerr, qr/no space left on device/,
     "... and says why: $cerr");
opendir my $dh, "$data/spool";
my @left = grep { !/^\./ } readdir $dh;
is("@left", '', '... nothing left in the spool');
like($t->error_log, qr/upload of \d+ bytes refused: no space left on device: the spool \S+ has \d+ bytes free/,
     "... nginx's error log says why");
Shuttle::Fault::report('data filesystem full: POST /deploy through nginx',
                       undef, note => "$r->{status}, \"no space left on "
                       . 'device\", nothing read or left in the spool');


# a build's extraction: a small upload, 4 MiB of zeros in it --------------------

unlink $filler;
fill(1024 * 1024);
my $ex = deploy('zeros', 1, zeros => 4096);
my $d = settled($ex);
is($d->{state}, 'failed', "an upload that unpacks past the free space: "
   . "#$ex failed");
like($d->{reason}, qr/entry "\.\/zeros\.bin": .*No space left on device/,
     "... $d->{reason}");
ok(!-e src_dir('zeros', $ex), '... nothing of it left');
Shuttle::Fault::report('data filesystem full: a build unpacking the upload',
                       undef, note => $d->{reason});


# a build: the compiler's output --------------------------------------------------

unlink $filler;
my $bf = deploy('hello', 3, make => 'before');
at_waiting('hello', $bf);
$d = settled($bf);
is($d->{state}, 'failed', "a build with the disk full: #$bf failed");
like($d->{reason}, qr/build failed: make exited with status \d+ .*no space left on device \(\d+ KiB free on the filesystem of \Q$data\E\/projects\/hello\/deployments\/$bf\/src\)/,
     "... $d->{reason}");
is(get('hello', '/'), "200 hello v1\n", '... hello v1 serves on');
Shuttle::Fault::report('data filesystem full: a build (the compiler '
                       . 'writing service.so)', undef, note => $d->{reason});


# a provisioning: a new project's SQLite database ----------------------------------

unlink $filler;
my $pf = deploy('fresh', 1, sqlite => 1, make => 'after');
at_waiting('fresh', $pf);
$d = settled($pf);
is($d->{state}, 'failed', "a new project's SQLite database with the disk "
   . "full: #$pf failed");
like($d->{reason}, qr/sqlite "main": creating \Q$data\E\/projects\/fresh\/resources\/sqlite\/main\.db: no space left on device/,
     "... $d->{reason}");
ok(!-e "$data/projects/fresh/resources/sqlite/main.db",
   '... no database file left half made');
Shuttle::Fault::report('data filesystem full: provisioning a SQLite '
                       . 'database', undef, note => $d->{reason});


# a running service's write ---------------------------------------------------------

fill();
is(free_kib(), 0, 'the disk is full again');
my $w = get('notes', '/add?kb=512', method => 'POST');
like($w, qr/^500 sqlite: database or disk is full$/,
     "a service's SQLite write: $w");
is(get('notes', '/count'), "200 3\n", '... its 3 rows are read on');
$lost += 3 - (get('notes', '/count') =~ /^200 (\d+)/ ? $1 : 0);
Shuttle::Fault::report('data filesystem full: a SQLite write by a running '
                       . 'service', undef, note => $w =~ s/\n//r);


($rc, $out, $err) = backup("$data/backup.db");
is($rc, 1, 'shuttle-builder backup onto the full filesystem: exit 1');
like($err, qr/backup\.db\.tmp: .*No space left on device/, "... $err");
ok(!-e "$data/backup.db.tmp", '... no backup.db.tmp left');
ok($t->read_file("$data/backup.db") eq $backup,
   '... the previous backup untouched');
Shuttle::Fault::report('data filesystem full: shuttle-builder backup onto '
                       . 'it', undef, note => $err =~ s/\n//r);


# what was stored ---------------------------------------------------------------------

ok(store_ok(), 'the store passes integrity_check');
$lost++ unless store_ok();
my $rb = $p->v1('alice', 'POST', '/v1/projects/notes/rollback', body => {});
is($rb->{status}, 200, 'notes rolls back, the disk full') or diag $rb->{body};
ok($t->wait_until(sub { get('notes', '/') eq "200 notes v1\n" }, 15),
   "... notes #$notes1 serves");
is(get('notes', '/count'), "200 3\n", '... with its rows');

$r = $c->stop;
Shuttle::Fault::all_served($r, 'the running projects, the disk full');
Shuttle::Fault::report('data filesystem full: the running projects '
                       . '(store sound, rollback done)', $r, lost => $lost);


# space again: no restart needed ---------------------------------------------------------

my $c2 = Shuttle::Fault::client($p, ['notes', 'hello'],
                                ok => qr/^(notes v\d|hello v\d)$/);
unlink $filler;
cmp_ok(free_kib(), '>', 1024, 'the file of zeros removed');

is(get('notes', '/add?kb=512', method => 'POST'), "201 added\n",
   'the service writes again');
is(get('notes', '/count'), "200 4\n", '... 4 rows');

my $ok1 = deploy('fresh', 2, sqlite => 1);
is(settled($ok1)->{state}, 'running', "fresh #$ok1 deploys, its database "
   . 'provisioned') or diag explain deployment($ok1);
is(get('fresh', '/add', method => 'POST'), "201 added\n", '... and written');
my $ok2 = deploy('hello', 4);
is(settled($ok2)->{state}, 'running', "hello #$ok2 deploys");
is(get('hello', '/'), "200 hello v4\n", '... and serves');
$rb = $p->v1('alice', 'POST', '/v1/projects/notes/rollback',
             body => { deployment => $notes2 });
is($rb->{status}, 200, "notes back to #$notes2");
ok($t->wait_until(sub { get('notes', '/') eq "200 notes v2\n" }, 15),
   '... serving');
ok(store_ok(), 'the store passes integrity_check');

$r = $c2->stop;
Shuttle::Fault::all_served($r, 'the running projects, space again');
Shuttle::Fault::report('data filesystem full, then space again: deploy, '
                       . 'provisioning, service writes with no restart',
                       $r);

done_testing;
