#!/usr/bin/perl

# Tenant isolation, tried as a hostile tenant would: a probe service
# (t/sandbox/probe) and a probe Makefile (t/sandbox/buildprobe) deployed
# through the real nginx like any project, each trying what a tenant must
# not do and saying what happened.  Every attack of issue 10 is refused:
# another uid than root's, nginx's or another project's; /etc/shadow,
# another project's database, shuttle.db, the keys, the zone and the
# builder's socket out of sight; no other process visible or
# signalable; no port taken (bind and listen refused, and said so in the
# runtime log); no capability, no namespace, ptrace or mount: every call
# of the seccomp filter's list refused by the filter, each said so in the
# runtime log; a fork bomb stops at --tasks; memory past --memory kills
# that loader alone, reported, restarted; SQLite past --disk fails the
# write; a file past --file-size fails; a build has no network and
# leaves no process behind, not even after a timeout.  What a service
# needs still works: its own SQLite database (its network:
# t/sandbox-net.t).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP;
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $p = Shuttle::Platform->new(
    keys => ['alice', 'bob'],
    builder_args => ['--memory', '96m', '--tasks', '24', '--disk', '2m',
                     '--file-size', '8m', '--build-timeout', '4',
                     '--uids', '231000-231999']);
my $t = $p->t;
my $repo = Shuttle::Test::repo();
my $data = $t->builder_data;
my $work = $p->testdir . '/work';
make_path($work);

sub project_dir {
    my ($name, $from) = @_;
    my $dir = "$work/$name";
    make_path("$dir/src");
    for my $f (glob("$from/*"), glob("$from/src/*")) {
        next if -d $f;
        (my $rel = $f) =~ s{^\Q$from\E/}{};
        copy($f, "$dir/$rel") or die "copy $f: $!";
    }
    return $dir;
}

sub deploy {
    my ($who, $name, $dir, $re) = @_;
    my $r = $p->upload($who, $name, $dir);
    die "deploy $name: $r->{status} $r->{body}" if $r->{status} != 202;
    return $t->wait_deployment($who, $r->{json}{id},
                               $re // qr/^(running|failed)$/, 20);
}

sub probe {
    my ($name, $path) = @_;
    my $r = $p->app_get($name, $path);
    return $r->{status} == 200 ? $r->{body} : "HTTP $r->{status}";
}

sub qs { my ($s) = @_; $s =~ s/([^A-Za-z0-9\/._-])/sprintf('%%%02X', ord $1)/ge; $s }

sub runtime_log {
    my ($name, $id) = @_;
    return $t->read_file("data/projects/$name/deployments/$id/runtime.log")
        // '';
}

# the builder says what it uses
like($p->builder_log, qr/sandbox: mount, pid, network namespaces, cgroup (v1|v2)/,
     'the builder logs the sandbox it uses and the cgroup version');


# two tenants: bob's victim, alice's probe -----------------------------------

my $probe_src = "$repo/t/sandbox/probe";
my $vd = deploy('bob', 'victim', project_dir('victim', $probe_src));
is($vd->{state}, 'running', "bob's victim runs");
my $d = deploy('alice', 'probe', project_dir('probe', $probe_src));
is($d->{state}, 'running', "alice's probe runs, sandboxed");

my $id = probe('probe', '/id');
my ($uid, $gid) = $id =~ /uid=(\d+) gid=(\d+)/;
ok(defined $uid && $uid >= 231000 && $uid <= 231999,
   "a uid of the project's, from --uids ($id)");
is($gid, $uid, '... and a gid of the same number');
like($id, qr/ngroups=0 /, '... no supplementary group');
my ($vuid) = probe('victim', '/id') =~ /uid=(\d+)/;
ok(defined $vuid && $vuid != $uid, "another project, another uid ($vuid)");
my $nobody = getpwnam('nobody');
ok($uid != 0 && $uid != $nobody, "... neither root's nor nginx's");

my $st = probe('probe', '/status');
like($st, qr/^CapEff:\s+0+$/m, 'no effective capability');
like($st, qr/^CapBnd:\s+0+$/m, '... none in the bounding set');
like($st, qr/^NoNewPrivs:\s+1$/m, 'no_new_privs');
like($st, qr/^Seccomp:\s+2$/m, 'a seccomp filter');

# redeploy: the uid stays
$d = deploy('alice', 'probe', "$work/probe");
is(probe('probe', '/id') =~ /uid=(\d+)/ && $1, $uid,
   'a redeploy keeps the uid');


# what it sees ------------------------------------------------------------

like(probe('probe', '/read?path=/etc/shadow'), qr/^error: No such file/,
     '/etc/shadow: not there');
like(probe('probe', '/read?path=' . qs("$data/shuttle.db")),
     qr/^error: No such file/, 'shuttle.db: not there');
like(probe('probe', '/read?path=' . qs($p->testdir . '/api_keys')),
     qr/^error: No such file/, 'the key file: not there');
like(probe('probe', '/read?path=' . qs($t->zone)),
     qr/^error: No such file/, 'the zone: not there');
like(probe('probe', '/connect?path=' . qs($t->builder_socket)),
     qr/^error: No such file/, "the builder's socket: not there");
like(probe('probe', '/read?path='
           . qs("$data/projects/victim/resources/sqlite/main.db")),
     qr/^error: No such file/, "bob's database: not there");
like(probe('probe', '/ls?path=' . qs("$data/projects")),
     qr/^ok \. \.\. probe$|^ok \.\. \. probe$|^ok (\S+ ){0,2}probe$/,
     '... of the projects, only its own is seen');
# /root holds at most the way to the platform's own programs (a clone of
# this repository there, as CI has), never root's files
my ($lead) = "$repo/" =~ m{^/root/([^/]+)/};
my $rootls = probe('probe', '/ls?path=/root');
ok($rootls =~ /^error: No such file/
   || (defined $lead && $rootls =~ /^ok( (\.|\.\.|\Q$lead\E))+$/),
   "root's files: not there ($rootls)");
like(probe('probe', '/read?path=/root/.profile'), qr/^error: No such file/,
     "... not root's .profile");
like(probe('probe', '/write?path=/usr/bin/probe'), qr/^error: Read-only/,
     '/usr is read-only');
like(probe('probe', '/write?path=' . qs("$data/projects/probe/deployments/"
                                         . "$d->{id}/service.so")),
     qr/^error: Read-only/, 'its own deployment is read-only');
like(probe('probe', '/write?path=/tmp/mine'), qr/^ok/, 'a private /tmp');
like(probe('probe', '/write?path=' . qs("$data/projects/probe/resources/"
                                         . "sqlite/mine")),
     qr/^ok/, 'its SQLite directory is its own to write');

my @pids = split ' ', probe('probe', '/procs');
ok(@pids && @pids <= 3 && (grep { $_ == 1 } @pids),
   "its own pid namespace: /proc shows @pids");
like(probe('probe', '/kill?pid=' . $p->builder_pid), qr/^error: No such process/,
     "the builder's pid is nothing there");
like(probe('probe', '/kill?pid=' . $t->nginx_pid), qr/^error: No such process/,
     "... nor nginx's");


# what it may not do ---------------------------------------------------------

my $bind = probe('probe', '/bind');
like($bind, qr/^bind: Operation not permitted$/m, 'bind: refused');
like($bind, qr/^listen: Operation not permitted$/m, 'listen: refused');
ok($t->wait_until(sub {
       runtime_log('probe', $d->{id})
           =~ /sandbox: system call bind refused \(seccomp\)/ }),
   '... and the runtime log says so');

# Every call the filter lists is refused by the filter, not by the
# kernel for want of a capability (which gives the same EPERM): each one
# adds its own line to the runtime log, named or numbered, once.  The
# calls: those below, which the filter must keep, and any other that
# sb_denied[] of builder/sandbox/seccomp.c lists (read here: a call added
# there is tried too, and the probe must know it).
my @must = qw(
    ptrace process_vm_readv process_vm_writev kcmp mount umount2
    pivot_root chroot move_mount open_tree fsopen fsconfig fsmount
    fspick mount_setattr swapon swapoff reboot kexec_load
    kexec_file_load init_module finit_module delete_module bpf
    perf_event_open keyctl add_key request_key unshare setns userfaultfd
    acct quotactl syslog settimeofday clock_settime clock_adjtime
    adjtimex sethostname setdomainname iopl ioperm open_by_handle_at
    name_to_handle_at lookup_dcookie fanotify_init nfsservctl vhangup
    uselib io_uring_setup io_uring_enter io_uring_register personality
);
my $sandbox_c = $t->read_file("$repo/builder/sandbox/seccomp.c") // '';
my ($denied) = $sandbox_c =~ /\bsb_denied\[\]\s*=\s*\{(.*?)\};/s;
my %listed = map { $_ => 1 } ($denied // '') =~ /"(\w+)"/g;
is(join(' ', grep { !$listed{$_} } @must), '',
   'sb_denied[] of builder/sandbox/seccomp.c lists every call it must');
my %seen;
my @denied = grep { !$seen{$_}++ } @must, sort keys %listed;

for my $call (@denied, 'clone_ns') {
    my $logged = $call eq 'clone_ns' ? 'clone \(new namespaces\)'
                                     : quotemeta $call;
    my $count = sub {
        my ($nr) = @_;
        my @l = runtime_log('probe', $d->{id})
            =~ /sandbox: system call (?:$logged|$nr) refused \(seccomp\)/g;
        return scalar @l;
    };
    my $before = $count->('none');
    my $said = probe('probe', "/syscall?name=$call");
    if ($said =~ /^absent on this machine/) {
        note("$call: no such call on this machine");
        next;
    }
    my ($nr) = $said =~ /\(system call (\d+)\)$/m;
    like($said, qr/^error: Operation not permitted \(system call \d+\)$/,
         "$call: refused with EPERM");
    ok(defined $nr && $t->wait_until(sub { $count->($nr) == $before + 1 }, 2),
       "... by the seccomp filter: its line in the runtime log")
        or diag "$call: $said";
}

like(probe('probe', '/tcp?port=' . $p->port), qr/^error: /,
     "the host's ports are out of reach (here nginx's): see sandbox-net.t");

my $fork = probe('probe', '/fork?n=100');
my ($made) = $fork =~ /forked (\d+) of 100/;
ok(defined $made && $made < 24, "a fork bomb stops at --tasks 24 ($fork)");
like(probe('probe', '/id'), qr/^uid=/, '... and the service serves on');

like(probe('probe', '/bigfile?mb=20'), qr/^error after 8 MiB: File too large/,
     'a file past --file-size 8m: the write fails');

my $fill = probe('probe', '/fill');
like($fill, qr/^error after (\d+) KiB: database or disk is full/,
     "SQLite past --disk 2m: the write fails ($fill)");
my ($kib) = $fill =~ /after (\d+) KiB/;
ok($kib && $kib <= 2048, '... within the limit');
like(probe('probe', '/id'), qr/^uid=/, '... and the service serves on');


# memory: the loader is killed, said so, restarted; others serve ------------

my $r = $p->app_get('probe', '/alloc?mb=200', method => 'POST',
                    timeout => 30);
isnt($r->{status}, 200, "200 MiB past --memory 96m: no answer ($r->{status})");
ok($t->wait_until(sub {
       runtime_log('probe', $d->{id}) =~ /out of memory \(its limit, --memory, is 96 MiB\)/ }, 10),
   '... the runtime log says out of memory, naming the limit');
ok($t->wait_until(sub {
       $p->builder_log =~ /probe #$d->{id}: loader .*out of memory/ }),
   '... so does the builder log');
like($p->v1('alice', 'GET', "/v1/deployments/$d->{id}")->{json}{reason},
     qr/^restarted: loader pid \d+ killed: out of memory \(its limit, --memory, is 96 MiB\)/,
     '... and so does the deployment, through the API');
like(probe('victim', '/id'), qr/^uid=/, "bob's victim served all along");
ok($t->wait_until(sub { probe('probe', '/id') =~ /^uid=/ }, 10),
   'the probe is restarted and serves again');
like($p->app_get('probe', '/alloc?mb=16', method => 'POST')->{body},
     qr/^ok allocated/,
     '... and allocates what fits');


# the operator's limits for one project -------------------------------------

my ($rc, $out) = run_builder('limits', '--data', $data, 'probe', '--memory',
                             '48m', '--tasks', '16');
is($rc, 0, 'shuttle-builder limits probe --memory 48m --tasks 16');
is($out, qq{probe {"memory":50331648,"tasks":16}\n}, '... shows them');
($rc, $out) = run_builder('limits', '--data', $data, 'probe', '--memory',
                          '1x');
is($rc, 2, 'a bad size: usage error');
like($out, qr/--memory "1x" is not a size/, '... naming it');

$r = $p->v1('alice', 'POST', '/v1/projects/probe/restart', body => {});
is($r->{status}, 200, 'probe restarted') or diag $r->{body};
my $lim = $p->v1('alice', 'GET', '/v1/projects/probe')->{json}{limits};
is($lim->{memory}, 48 << 20, "the project's limits in the API: memory");
is($lim->{tasks}, 16, '... tasks');
is($p->v1('bob', 'GET', '/v1/projects/victim')->{json}{limits}{memory},
   96 << 20, "bob's victim keeps the defaults");
($made) = probe('probe', '/fork?n=100') =~ /forked (\d+) of 100/;
ok(defined $made && $made < 16, "the fork bomb stops sooner ($made)");
$d = $p->v1('alice', 'GET', '/v1/projects/probe')->{json}{latest};
$r = $p->app_get('probe', '/alloc?mb=64', method => 'POST', timeout => 30);
isnt($r->{status}, 200, '64 MiB past its own 48 MiB: no answer');
ok($t->wait_until(sub {
       runtime_log('probe', $d->{id}) =~ /out of memory \(its limit, --memory, is 48 MiB\)/ }, 10),
   "... the runtime log names the project's own limit");
($rc, $out) = run_builder('limits', '--data', $data, 'probe', '--reset');
is($out, "probe: the builder's defaults\n", '--reset: back to the defaults');

sub run_builder {
    my ($rc, $out, $err) = Shuttle::Platform::run_cmd(
        [Shuttle::Test::builder(), @_], env => { PATH => $ENV{PATH} });
    return ($rc, $out . $err);
}


# a build ------------------------------------------------------------------

my $bp = project_dir('buildprobe', "$repo/t/sandbox/buildprobe");
copy("$repo/examples/hello/src/main.c", "$bp/src/main.c") or die "copy: $!";
$t->write_file("work/buildprobe/port", $p->port);
$d = deploy('alice', 'buildprobe', $bp);
is($d->{state}, 'running', 'the probe Makefile builds a service');
my $log = $p->v1('alice', 'GET', "/v1/deployments/$d->{id}/logs")->{body};
my ($buid) = $log =~ /probe: id: (\d+) /;
ok($buid && $buid >= 231000 && $buid != $uid,
   "a build runs as its project's uid ($buid)");
like($log, qr/probe: shadow: refused/, 'a build cannot read /etc/shadow');
like($log, qr/probe: root's files: absent/, "... sees no root's files");
like($log, qr/probe: network: refused/, '... has no network');
ok(!grep({ Shuttle::Test::_cmdline($_) =~ /^sleep 777[12]/ }
         all_pids()),
   'setsid and double fork: nothing of the build is left');

# a build that times out with a daemon of its own
my $hang = project_dir('hang', "$repo/t/sandbox/buildprobe");
$t->write_file('work/hang/Makefile', <<'EOF');
service.so:
	setsid sleep 7773 > /dev/null 2>&1 < /dev/null &
	sleep 7774
EOF
$d = deploy('alice', 'hang', $hang, qr/^failed$/);
like($d->{reason}, qr/build timed out after 4 s/, 'a build past --build-timeout: failed');
ok($t->wait_until(sub {
       !grep { Shuttle::Test::_cmdline($_) =~ /^sleep 777[34]/ } all_pids() }),
   '... and its daemon died with it');

# a build that leaves a link in its static folder: nginx would follow it,
# as its workers' user, to another project's database; the build fails
my $leak = "$work/leak";
make_path("$leak/src");
$t->write_file('work/leak/src/main.c', <<'EOF');
#include <shuttle.h>

SHUTTLE_STATIC("public");

SHUTTLE_MAIN(app)
{
    return 0;
}
EOF
$t->write_file('work/leak/Makefile', <<"EOF");
service.so: src/main.c
	mkdir -p public/css
	ln -s $data/projects/victim/resources/sqlite/main.db public/css/db
	\$(CC) -std=gnu11 -fPIC -shared -I\$(SHUTTLE_INCLUDE) -o \$@ \$<
EOF
$d = deploy('alice', 'leak', $leak, qr/^(running|failed)$/);
is($d->{state}, 'failed', 'a link in the static folder: the build fails');
like($d->{reason}, qr{SHUTTLE_STATIC\("public"\): public/css/db is a symbolic link: only files and folders are published},
     '... naming it');
ok(!-e "$data/static/leak", '... and nothing of it is published');
my @sq = stat "$data/projects/victim/resources/sqlite";
is($sq[2] & 07777, 0700, "bob's SQLite directory is his uid's alone (0700)");

sub all_pids {
    opendir my $dh, '/proc' or return;
    return grep { /^\d+$/ } readdir $dh;
}

$p->stop;

done_testing();
