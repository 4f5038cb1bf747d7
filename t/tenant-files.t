#!/usr/bin/perl

# Root's file operations on what a tenant could have shaped (issue 20).
# A hostile tenant plants symbolic links where its uid writes: its build's
# source (a Makefile's ln -s) and its running service's SQLite directory
# (t/tenant-files/tenant, GET /link).  The builder, as root, meets them
# when it publishes a static folder, removes a tree (a build's source, a
# purge), gives a tree to the project's uid (chown), and reads a log:
# each refuses the link, or removes the link itself, and touches nothing
# outside; nor does a running service that swaps a folder of its own with
# a link (renameat2 RENAME_EXCHANGE) while root gives it the folder, which
# had nftw(3)+lchown(2) chown root's files by path.  The reported attack
# first: SHUTTLE_STATIC("x/deployments") with x a link to another
# project's directory moved that project's deployments/ into the
# attacker's public static space.
#
# And what other local users see: a project's directory, its logs and
# service.so, and the zone are not theirs to read; nginx's workers still
# serve static files and route.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use POSIX ();
use IO::Socket::INET;
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $p = Shuttle::Platform->new(keys => ['alice', 'bob'],
                               builder_args => ['--uids', '233000-233999']);
my $t = $p->t;
my $repo = Shuttle::Test::repo();
my $data = $t->builder_data;
my $dir = $p->testdir;
my $work = "$dir/work";
my $tenant = "$repo/t/tenant-files/tenant";

# a folder of a project, from t/tenant-files/tenant and files given
sub project {
    my ($name, %files) = @_;
    my $d = "$work/$name";
    make_path("$d/src", "$d/public");
    copy("$tenant/shuttle.json", "$d/shuttle.json") or die "copy: $!";
    copy("$tenant/public/public.txt", "$d/public/public.txt")
        or die "copy: $!";
    copy("$tenant/src/tenant.c", "$d/src/tenant.c") or die "copy: $!"
        unless exists $files{'src/main.c'};
    $t->write_file("work/$name/$_", $files{$_}) for keys %files;
    return $d;
}

sub deploy {
    my ($who, $name, $d) = @_;
    my $r = $p->upload($who, $name, $d);
    die "deploy $name: $r->{status} $r->{body}" if $r->{status} != 202;
    return $t->wait_deployment($who, $r->{json}{id}, qr/^(running|failed)$/,
                               30);
}

sub get { my $r = $p->app_get(@_); "$r->{status} $r->{body}" }

sub qs { my ($s) = @_; $s =~ s/([^A-Za-z0-9\/._-])/sprintf('%%%02X', ord $1)/ge; $s }

sub owner { my @st = lstat $_[0]; @st ? "$st[4]:$st[5]" : 'missing' }

# root's, outside every project: a folder and a file only root reads
make_path("$dir/outside/deployments", "$dir/outside/keep");
$t->write_file('outside/keep/secret', "TOPSECRET outside\n");
chmod 0600, "$dir/outside/keep/secret";
$t->write_file('outside/deployments/marker', "root's\n");
my $secret = "$dir/outside/keep/secret";


# bob's victim ---------------------------------------------------------------

my $vd = deploy('bob', 'victim', project('victim'));
is($vd->{state}, 'running', "bob's victim runs");
my $vid = $vd->{id};
is(get('victim', '/hello'), "200 hello from tenant\n", '... and answers');
my $vdir = "$data/projects/victim/deployments/$vid";
ok(-f "$vdir/service.so", "... its service.so in $vdir");
my $vdb = "$data/projects/victim/resources/sqlite/main.db";
ok(-f $vdb, '... its SQLite database made');
my $vowner = owner($vdb);
like($vowner, qr/^23\d{4}:23\d{4}$/, "... owned by its uid ($vowner)");


# 1. the static folder's path through a link, from a build -----------------

# the reported attack: x -> the victim's project directory
my $static_main = <<'EOF';
#include <shuttle.h>

SHUTTLE_STATIC("x/deployments");

SHUTTLE_MAIN(app)
{
    return 0;
}
EOF

my $ad = deploy('alice', 'attack', project('attack',
    'src/main.c' => $static_main,
    'Makefile' => <<"EOF"));
service.so: src/main.c
	ln -s $data/projects/victim x
	mkdir -p deep/er
	ln -s $dir/outside deep/er/out
	ln -s $dir/outside out
	\$(CC) -std=gnu11 -fPIC -shared -I\$(SHUTTLE_INCLUDE) -o \$@ \$<
EOF
is($ad->{state}, 'failed', 'SHUTTLE_STATIC("x/deployments"), x a link to '
   . "another project: the deploy fails");
like($ad->{reason} // '',
     qr{SHUTTLE_STATIC\("x/deployments"\): x is a symbolic link},
     '... its reason naming the link') or diag $ad->{reason};
ok(-f "$vdir/service.so", "the victim's deployments/ is where it was");
ok(!-e "$data/static/attack/$ad->{id}", "... nothing published for attack");
is(get('victim', '/hello'), "200 hello from tenant\n",
   '... and the victim serves');
my $r = $p->v1('bob', 'POST', '/v1/projects/victim/restart', body => {});
is($r->{status}, 200, '... and starts again') or diag $r->{body};
is(get('victim', '/hello'), "200 hello from tenant\n", '... and serves');

# the same to a root-owned folder outside every project, by a relative link
my $od = deploy('alice', 'attack2', project('attack2',
    'src/main.c' => $static_main =~ s{x/deployments}{y/deployments}r,
    'Makefile' => <<'EOF'));
service.so: src/main.c
	ln -s ../../../../../../outside y
	$(CC) -std=gnu11 -fPIC -shared -I$(SHUTTLE_INCLUDE) -o $@ $<
EOF
is($od->{state}, 'failed', 'y -> ../../../../../../outside: the deploy fails');
like($od->{reason} // '',
     qr{SHUTTLE_STATIC\("y/deployments"\): y is a symbolic link},
     '... naming the link');
ok(-f "$dir/outside/deployments/marker", '... the outside folder stays');
is(owner("$dir/outside/deployments"), '0:0', '... root\'s');


# 2. removing a tree with links in it -----------------------------------------

# the failed build's source is gone; its links to the outside went alone
ok(!-e "$data/projects/attack/deployments/$ad->{id}/src",
   "the failed build's source is removed");
ok(-f $secret && -f "$dir/outside/deployments/marker",
   '... the folder its links named is untouched');

# a running service's links, removed by a purge
my $sd = deploy('alice', 'svc', project('svc'));
is($sd->{state}, 'running', "alice's svc runs");
is(get('svc', '/hello'), "200 hello from tenant\n", '... and has its database');
like(get('svc', '/link?name=escape&to=' . qs("$dir/outside")),
     qr/^200 ok /, '... it links its SQLite folder to the outside');
like(get('svc', '/link?name=victimdb&to=' . qs($vdb)),
     qr/^200 ok /, "... and to the victim's database");

# 3. chown: the restart gives the SQLite folder to svc's uid again
$r = $p->v1('alice', 'POST', '/v1/projects/svc/restart', body => {});
is($r->{status}, 200, 'svc restarted over its links') or diag $r->{body};
is(owner($vdb), $vowner, "... the victim's database keeps its owner");
is(owner("$dir/outside"), '0:0', '... the outside folder too');
is(owner($secret), '0:0', '... and what is in it');

$r = $p->v1('alice', 'DELETE', '/v1/projects/svc?purge=1');
is($r->{status}, 200, 'svc deleted and purged') or diag $r->{body};
ok(!-e "$data/projects/svc/resources", '... its resources are gone');
ok(-f $secret, '... the folder its link named is untouched');
ok(-f $vdb, "... and the victim's database");
is(get('victim', '/hello'), "200 hello from tenant\n", 'the victim serves');


# 3b. a rename race: while the builder gives the SQLite folder to racer's uid
# for a restart, the running racer exchanges its folder d, of files
# f0..f999, with a link to a folder of root's files of the same names,
# back and forth
$sd = deploy('alice', 'racer', project('racer'));
is($sd->{state}, 'running', "alice's racer runs");
is(get('racer', '/hello'), "200 hello from tenant\n", '... and has its database');
my $race = "$dir/outside-race";
make_path($race);
for my $i (0 .. 999) {
    $t->write_file("outside-race/f$i", "root's\n");
    chmod 0600, "$race/f$i";
}
my $taken = 0;
for my $try (1 .. 10) {
    like(get('racer', '/flip?n=1000&to=' . qs($race)), qr/^200 ok flipping/,
         "racer exchanges its folder d and a link ($try)");
    $r = $p->v1('alice', 'POST', '/v1/projects/racer/restart', body => {});
    is($r->{status}, 200, '... restarted meanwhile') or diag $r->{body};
    $taken = grep { owner("$race/f$_") ne '0:0' } 0 .. 999;
    last if $taken;
}
is($taken, 0, "... none of root's files changed owner");

# a purge while the service still exchanges its folder and the link: its
# loaders are killed first, not drained, so nothing writes there meanwhile
like(get('racer', '/flip?n=1000&to=' . qs($race)), qr/^200 ok flipping/,
     'racer exchanges its folder and the link again');
# a request in flight for 3 s: a drained loader would go on flipping
my $slow = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p->port)
    or die "connect: $!";
print $slow "GET /sleep?ms=3000 HTTP/1.1\r\nHost: racer.localhost\r\n"
          . "Connection: close\r\n\r\n";
ok($t->wait_until(sub { -e "$data/projects/racer/resources/sqlite/sleeping" },
                  5),
   '... one request of its in flight');
$r = $p->v1('alice', 'DELETE', '/v1/projects/racer?purge=1');
is($r->{status}, 200, '... deleted and purged meanwhile') or diag $r->{body};
ok(!-e "$data/projects/racer/resources", '... its resources are all gone');
is(scalar(grep { -f "$race/f$_" && owner("$race/f$_") eq '0:0' } 0 .. 999),
   1000, "... and root's files the link named are all there, root's");


# 4. reading a log that is a link ---------------------------------------------

# (a victim of its own for what follows, whatever the attacks above did)
$vd = deploy('bob', 'victim', "$work/victim");
is($vd->{state}, 'running', "bob's victim deployed again");
$vid = $vd->{id};
$vdir = "$data/projects/victim/deployments/$vid";

# The deployment's directory is root's: no tenant writes there.  A link in
# it stands for one that got there some other way; the API follows none.
for my $log ('runtime.log', 'build.log') {
    my $path = "$vdir/$log";
    rename $path, "$path.real" or die "rename $path: $!";
    symlink $secret, $path or die "symlink $path: $!";
    my $q = $log eq 'runtime.log' ? '?runtime=1' : '';
    # (a runtime log is followed while it runs: build.log's follow ends)
    for my $follow ('', $q ? () : '?follow=1') {
        my $r = $p->v1('bob', 'GET', "/v1/deployments/$vid/logs$q$follow");
        unlike($r->{body}, qr/TOPSECRET/,
               "$log a link to a root file$follow: none of its bytes");
        next if $follow;
        isnt($r->{status}, 200, '... refused') or diag $r->{body};
        like($r->{body}, qr/\Q$log\E.*symbolic link/, '... saying why');
    }
    unlink $path;
    rename "$path.real", $path or die "rename $path.real: $!";
}


# 5. what other local users read ------------------------------------------

my $nobody = getpwnam('nobody');
my $nogroup = (getpwnam('nobody'))[3];
my $stranger = 64321;       # neither nginx's, nor root's, nor a project's

# [ok, errno] of reading a file as $stranger
sub read_as {
    my ($uid, $gid, $path) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $( = $gid;
        $) = "$gid $gid";
        $< = $> = $uid;
        POSIX::_exit(3) if $> != $uid;
        my $fh;
        POSIX::_exit(open($fh, '<', $path) && defined(sysread($fh, my $b, 1))
                     ? 0 : 1);
    }
    waitpid($pid, 0);
    return $? >> 8;
}

for my $f ("$vdir/runtime.log", "$vdir/build.log", "$vdir/service.so",
           $t->zone, $vdb)
{
    ok(-e $f, "$f exists");
    is(read_as($stranger, $stranger, $f), 1,
       "... another local user cannot read it");
}

my @st = stat $t->zone;
is(sprintf('%04o', $st[2] & 07777), '0640', 'the zone is 0640');
is($st[5], $nogroup, "... of nginx's workers' group");
@st = stat "$data/projects";
is(sprintf('%04o', $st[2] & 07777), '0700',
   "the projects' directories: root's alone");
@st = stat "$vdir/runtime.log";
is($st[2] & 007, 0, "... its runtime.log neither");
@st = stat "$data/static";
is($st[2] & 007, 0, 'the static files: nothing for others');
is($st[5], $nogroup, "... nginx's workers' group");

# nginx's workers still read the zone and the static files
my $vstatic = "$data/static/victim/$vid/public.txt";
ok(-f $vstatic, "the victim's static file is published");
is(read_as($stranger, $stranger, $vstatic), 1,
   '... another local user cannot read it');
is(read_as($nobody, $nogroup, $vstatic), 0, "... nginx's workers can");
is(get('victim', '/public.txt'), "200 public file of a tenant\n",
   'nginx serves it');
is(get('victim', '/hello'), "200 hello from tenant\n", '... and routes');

$p->stop;

done_testing();
