#!/usr/bin/perl

# The builder's store, shuttle.db, under faults:
#
#   - `shuttle-builder backup FILE` copies it while the builder runs and
#     deploys: FILE passes integrity_check, is mode 0600, holds what the
#     store held; the deploys it ran beside go on;
#   - a builder started on a damaged store (garbage over its header, the
#     file truncated or emptied, a page overwritten) or on one of a newer
#     schema refuses to start, saying which file, why and what to do, and
#     touches nothing: the file's bytes, no -wal or -shm made, the zone,
#     the spool and the projects' files as they were, the loaders left
#     by the builder that quit still serving through nginx;
#   - a restore (the builder stopped, the backup copied over shuttle.db,
#     its -wal and -shm removed, the builder started) brings the projects
#     back as they were at the backup, serving; what came after is gone,
#     and a new deploy after it works (deployment ids are not reused).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::MD5;
use File::Copy qw(copy);
use File::Find;
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

my $p = Shuttle::Platform->new(builder_args => ['--jobs', '1']);
my $t = $p->t;
my $dir = $p->testdir;
my $data = $t->builder_data;
my $db = "$data/shuttle.db";
my $builder = Shuttle::Test::builder();
my $repo = Shuttle::Test::repo();


# projects -------------------------------------------------------------------

# a service answering "NAME vN" on /
# a service answering "NAME vN" on /
sub app { Shuttle::Fault::app_src($p, @_) }

sub deploy {
    my ($name, $v) = @_;
    my $r = $p->upload('alice', $name, app($name, $v));
    die "POST /deploy $name: $r->{status} $r->{body}"
        unless $r->{status} == 202;
    return $r->{json}{id};
}

sub wait_running {
    my ($id) = @_;
    my $d;
    $t->wait_until(sub {
        $d = $p->v1('alice', 'GET', "/v1/deployments/$id")->{json} // {};
        ($d->{state} // '') =~ /^(running|failed)$/;
    }, 30);
    return $d->{state} // '';
}

sub body {
    my ($name) = @_;
    my $r = eval { $p->app_get($name, '/', timeout => 5) };
    return $r ? ($r->{status} == 200 ? $r->{body} : $r->{status}) : 'error';
}

sub sql {
    my ($file, $q) = @_;
    my $out = `sqlite3 '$file' "$q" 2>&1`;
    chomp $out;
    return $out;
}

sub backup {
    my ($file) = @_;
    return Shuttle::Platform::run_cmd([$builder, 'backup', '--data', $data,
                                       $file],
                                      env => { PATH => $ENV{PATH} });
}


# a store to back up, a builder deploying ----------------------------------------

my $one = deploy('one', 1);
my $two = deploy('two', 1);
is(wait_running($one), 'running', "one #$one runs");
is(wait_running($two), 'running', "two #$two runs");

my $c = Shuttle::Fault::client($p, ['one', 'two'], ok => qr/^(one|two) v\d$/);

# backups while the builder writes: a deploy goes through its states
my $two2 = deploy('two', 2);
my ($n, $bad, $last) = (0, 0, '');
until ($n >= 3 && ($p->v1('alice', 'GET', "/v1/deployments/$two2")
                     ->{json}{state} // '') =~ /^(running|failed)$/)
{
    my ($rc, $out, $err) = backup("$dir/during.db");
    $n++;
    $bad++ if $rc != 0 || sql("$dir/during.db", 'PRAGMA integrity_check')
                          ne 'ok';
    $last = "$rc $out$err";
    last if $n > 200;
}
is($bad, 0, "$n backups during a deploy: each done, each passes "
   . 'integrity_check') or diag $last;
is(wait_running($two2), 'running', "... and the deploy, two #$two2, ran "
   . 'beside them');
is(body('two'), "two v2\n", '... two v2 serves');

my ($rc, $out, $err) = backup("$dir/backup.db");
is($rc, 0, 'shuttle-builder backup --data DATA backup.db: exit 0')
    or diag $err;
my ($projects, $size, $ms) =
    $out =~ /: \Q$dir\E\/backup\.db, (\d+) projects, \d+ deployments, (\d+) bytes .*integrity_check ok, (\d+) ms$/m;
is($projects, 2, "... it says so: $out");
is((stat "$dir/backup.db")[2] & 07777, 0600, '... the file is mode 0600');
ok(!-e "$dir/backup.db.tmp" && !-e "$dir/backup.db.tmp-journal",
   '... no backup.db.tmp left');
ok(!-e "$dir/backup.db-wal" && !-e "$dir/backup.db-shm",
   '... nor a -wal or -shm of it');
is(sql("$dir/backup.db", 'PRAGMA integrity_check'), 'ok',
   '... it passes integrity_check');
is(sql("$dir/backup.db", 'SELECT group_concat(name) FROM (SELECT name '
       . 'FROM projects WHERE deleted IS NULL ORDER BY name)'), 'one,two',
   '... and holds the projects');
is(sql("$dir/backup.db", "SELECT state FROM deployments WHERE id = $two2"),
   'running', "... two #$two2 running");

my $r = $c->stop;
Shuttle::Fault::all_served($r, "one and two during $n backups and a deploy");
Shuttle::Fault::report("shuttle-builder backup x$n while the builder runs "
                       . 'and deploys', $r,
                       note => "2 projects, $size bytes, $ms ms");

($rc, $out, $err) = backup($db);
is($rc, 2, 'a backup over the store itself: refused');
like($err, qr/is the store itself/, "... $err");

($rc, $out, $err) = Shuttle::Platform::run_cmd(
    [$builder, 'backup', '--data', "$dir/nowhere", "$dir/x.db"],
    env => { PATH => $ENV{PATH} });
is($rc, 1, 'no store in --data: exit 1');
like($err, qr{store \Q$dir\E/nowhere/shuttle\.db: No such file}, "... $err");


# after the backup: what a restore forgets ---------------------------------------

my $late = deploy('late', 1);
my $one2 = deploy('one', 2);
is(wait_running($late), 'running', "late #$late, after the backup, runs");
is(wait_running($one2), 'running', "one #$one2, after the backup, runs");
# and the loader of one's first deployment has drained and gone (it
# accepts for 100 ms after its SIGTERM, then finishes its requests)
ok($t->wait_until(sub { my @l = $t->loader_pids; @l == 3 }, 10),
   "... one's replaced loader gone: a loader each for one, two, late")
    or diag join(' ', $t->loader_pids);


# a damaged store, a newer one: the builder refuses, touches nothing ---------------

# the builder quits leaving its loaders serving; its WAL is checkpointed
# into shuttle.db (which a builder stopped by SIGTERM leaves alone)
is($t->builder_stop('QUIT'), 0, 'the builder quits (SIGQUIT), loaders '
   . 'serving');
is(sql($db, 'PRAGMA wal_checkpoint(TRUNCATE)'), '0|0|0',
   '... its WAL checkpointed');
ok(!-e "$db-wal" && !-e "$db-shm", '... no -wal or -shm left');
copy($db, "$dir/good.db") or die "copy: $!";
my $dbsize = -s $db;
my $root = sql($db, "SELECT rootpage FROM sqlite_schema "
                    . "WHERE name = 'deployments'");

# every file of the data directory, the zone and the spool, with its bytes
sub snapshot {
    my %s;
    find({ no_chdir => 1, wanted => sub {
        return if -d $_;
        open my $fh, '<', $_ or return;
        binmode $fh;
        $s{$_} = Digest::MD5->new->addfile($fh)->hexdigest;
    } }, $data, $t->builder_spool, $t->zone);
    return \%s;
}

sub overwrite {
    my ($off, $bytes) = @_;
    open my $fh, '+<', $db or die "$db: $!";
    binmode $fh;
    seek $fh, $off, 0;
    print $fh $bytes;
    close $fh;
}

# the builder as an operator starts it, in the foreground, its messages
# on stderr; killed if it does start
sub start_refused {
    my @cmd = grep { defined }
        $t->_builder_cmd('--apps-url', 'http://{name}.localhost:' . $p->port,
                         '--loader', Shuttle::Platform::loader_bin(),
                         '--sdk-include', "$repo/include", '--jobs', '1');
    for my $i (0 .. $#cmd - 1) {
        splice(@cmd, $i, 2), last if $cmd[$i] eq '--log';
    }
    return Shuttle::Platform::run_cmd(\@cmd, env => { PATH => $ENV{PATH} },
                                      timeout => 20);
}

my @loaders = $t->loader_pids;
my @cases = (
    ['garbage over its header', sub { overwrite(0, "\xA5" x 100) },
     qr/is damaged \(file is not a database\)/],
    ['truncated to half its size', sub { truncate $db, int($dbsize / 8192) * 4096 },
     qr/is damaged \(database disk image is malformed\)/],
    ['emptied (0 bytes)', sub { truncate $db, 0 },
     qr/is damaged \(the file is empty: truncated\?\)/],
    ["a page overwritten (page $root, the deployments' tree)",
     sub { overwrite(($root - 1) * 4096, "\xFF" x 4096) },
     qr/is damaged \((PRAGMA quick_check: .*[Pp]age $root|database disk image is malformed)/],
    ['of a newer schema (user_version 99)',
     sub { sql($db, 'PRAGMA user_version = 99') },
     qr/schema version 99 is newer than this builder's \(\d+\): a newer shuttle-builder wrote it; left as it is/],
);

for my $case (@cases) {
    my ($what, $damage, $re) = @$case;

    copy("$dir/good.db", $db) or die "copy: $!";
    $damage->();
    ok(!-e "$db-wal" && !-e "$db-shm", "$what: no -wal or -shm");
    my $before = snapshot();

    my $c = Shuttle::Fault::client($p, ['one', 'two', 'late'],
                                   ok => qr/^(one|two|late) v\d$/);
    my ($rc, $out, $err) = start_refused();
    my $body = body('one');
    $c->wait_served(6);
    my $r = $c->stop;

    my ($line) = grep { /\Q$db\E/ } split /\n/, $err;
    is($rc, 1, "builder started on a store $what: exit 1");
    like($line // $err, qr/error store \Q$db\E:? $re/, "... it says why: "
         . ($line // $err));
    like($err, qr/restore it from a backup|restore a backup/,
         '... and what to do');
    my $after = snapshot();
    is_deeply($after, $before, '... it touched nothing: shuttle.db, the '
              . 'zone, the spool, the projects\' files as they were');
    ok(!-e "$db-wal" && !-e "$db-shm", '... made no -wal or -shm');
    is(join(' ', $t->loader_pids), join(' ', @loaders),
       '... the loaders are those the builder that quit left');
    is($body, "one v2\n", '... and they serve through nginx');
    Shuttle::Fault::all_served($r, "the loaders left, a store $what",
                               min => 6);
    Shuttle::Fault::report("builder started on a store $what: refused, "
                           . 'file unchanged', $r,
                           lost => $after->{$db} eq $before->{$db} ? 0 : 1);
}


# the good store back: the builder takes its loaders over ---------------------------

copy("$dir/good.db", $db) or die "copy: $!";
$p->start_builder;
ok($t->wait_until(sub { body('one') eq "one v2\n" && body('late') eq "late v1\n" }, 15),
   'the undamaged store back: the builder starts, one v2 and late serve');


# a restore ------------------------------------------------------------------------

is($t->builder_stop('TERM'), 0, 'restore: the builder stops (SIGTERM)');
copy("$dir/backup.db", $db) or die "copy: $!";
unlink "$db-wal", "$db-shm";
$p->start_builder;

ok($t->wait_until(sub { body('one') eq "one v1\n" && body('two') eq "two v2\n" }, 15),
   '... the backup copied over shuttle.db, the builder started: one v1 '
   . 'and two v2 serve, as at the backup');
is(body('late'), 404, '... late, deployed after the backup, is unknown: 404');
like($p->builder_log, qr{warn store \Q$db\E: \Q$data\E/projects/late is not a project it knows \(restored from a backup\?\)},
     "... and the builder's log says its files are left");
my $list = $p->v1('alice', 'GET', '/v1/projects')->{json}{projects} // [];
is(join(',', sort map { $_->{name} } @$list), 'one,two',
   '... the API lists one and two');
is(sql($db, 'PRAGMA integrity_check'), 'ok', '... the store is sound');

my $one3 = deploy('one', 3);
is(wait_running($one3), 'running', "a deploy after the restore: one #$one3 runs");
cmp_ok($one3, '>', $one2, "... a new deployment id (#$one3, after #$one2 of "
       . 'before the restore)');
is(body('one'), "one v3\n", '... and serves');
my $log = $p->v1('alice', 'GET', "/v1/deployments/$one3/logs")->{body} // '';
unlike($log, qr/one-v2/, '... its build log is its own');
Shuttle::Fault::report('shuttle.db restored from a backup (builder stopped, '
                       . 'file copied, -wal and -shm removed, started)',
                       undef,
                       note => 'projects as at the backup, serving; a '
                               . 'deploy after it runs');

$p->stop;

done_testing;
