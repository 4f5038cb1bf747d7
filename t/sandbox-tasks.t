#!/usr/bin/perl

# Each loader has a cgroup leaf of its own (issue 20): a tenant's serving
# loader that took every task --tasks allows (threads that sleep) cannot
# starve the next loader of the project, whose namespace's init must fork
# the loader proper.  A restart then comes up as it should, the service
# under its init (pid 2, never pid 1), and the old loader's leaf is gone
# once it exited.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $p = Shuttle::Platform->new(
    keys => ['alice'],
    builder_args => ['--tasks', '24', '--uids', '235000-235999']);
my $t = $p->t;
my $repo = Shuttle::Test::repo();

# the pids hierarchy's directory of this builder's projects: its own
# cgroup, then "shuttle-" and the FNV-1a hash of its data directory
sub pids_base {
    my $data = $t->builder_data;
    my $h = 2166136261;
    for my $c (unpack 'C*', $data) {
        $h = (($h ^ $c) * 16777619) % 4294967296;
    }
    open my $fh, '<', '/proc/' . $p->builder_pid . '/cgroup' or die $!;
    my ($v1, $v2);
    while (<$fh>) {
        chomp;
        my ($n, $ctl, $path) = split /:/, $_, 3;
        $v1 = $path if grep { $_ eq 'pids' } split /,/, $ctl;
        $v2 = $path if $ctl eq '';
    }
    $v1 = '' if defined $v1 && $v1 eq '/';
    $v2 = '' if defined $v2 && $v2 eq '/';
    return defined $v1 ? sprintf('/sys/fs/cgroup/pids%s/shuttle-%08x', $v1, $h)
                       : sprintf('/sys/fs/cgroup%s/shuttle-%08x', $v2, $h);
}

sub leaves {
    my $dir = pids_base() . '/tasker';
    opendir my $d, $dir or return ();
    return sort grep { /^loader-/ && -d "$dir/$_" } readdir $d;
}

my $src = "$repo/t/sandbox/tasker";
my $dir = $p->testdir . '/tasker';
make_path("$dir/src");
copy("$src/shuttle.json", "$dir/shuttle.json") or die $!;
copy("$src/src/tasker.c", "$dir/src/tasker.c") or die $!;

my $r = $p->upload('alice', 'tasker', $dir);
is($r->{status}, 202, 'tasker uploaded') or diag explain $r;
my $d = $t->wait_deployment('alice', $r->{json}{id}, qr/^(running|failed)$/,
                            20);
is($d->{state}, 'running', 'tasker runs');

sub get { my $r = $p->app_get('tasker', $_[0]); "$r->{status} $r->{body}" }

is(get('/pid'), "200 pid 2\n", 'the service is pid 2, under its init');

my @before = leaves();
is(scalar @before, 1, "one loader, one cgroup leaf (@before)");
like($before[0] // '', qr/^loader-$d->{id}-\d+$/,
     '... named after its deployment');
is($t->read_file(pids_base() . "/tasker/$before[0]/pids.max") // '',
   "24\n", '... with the limit, --tasks 24');

my ($made) = get('/threads') =~ /made (\d+)/;
ok(defined $made && $made > 0 && $made < 24,
   "the service took every task it could ($made threads)");
is($t->read_file(pids_base() . "/tasker/$before[0]/pids.current") // '',
   "24\n", '... its leaf is full');

$r = $p->v1('alice', 'POST', '/v1/projects/tasker/restart');
ok($r->{status} >= 200 && $r->{status} < 300,
   "a restart comes up beside it ($r->{status})") or diag explain $r;
is(get('/pid'), "200 pid 2\n", '... the new loader under its init too');

ok($t->wait_until(sub { my @l = leaves(); @l == 1 && $l[0] ne $before[0] },
                  15),
   "the old loader's leaf is gone once it exited: " . join(' ', leaves()));

done_testing();
