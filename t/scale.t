#!/usr/bin/perl

# The platform's own limits at a moderate scale (issue 23: 10,000 projects
# on one box; t/bench/density.pl measures those): 300 projects deployed
# and idle, the builder restarted, then all 300 woken and running at once,
# on a port range of 300 + 2 ports (a project keeps its one port idle and
# running; a deploy takes one more for a moment): none refused for want
# of a port.  The builder starts with a soft open files limit of 128, too
# few for 300 idle projects' sockets: it raises its own to the hard limit
# and says so at its start.  GET /v1/projects reads the store 256
# projects a query (300: two chunks): each entry of the listing is what the project's own
# GET /v1/projects/NAME says (one of them, todo, with a SQLite database,
# one with an operator's limits), idle and running.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp;
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use Shuttle::Test;
use Shuttle::Platform;

my $N = $ENV{SHUTTLE_SCALE_PROJECTS} // 300;

# the builder under a soft limit of 256 open files (the hard one as it is)
my $wrap = File::Temp->new(SUFFIX => '.sh');
my $real = Shuttle::Test::builder();
print $wrap "#!/bin/sh\nulimit -S -n 128 || exit 126\nexec '$real' \"\$@\"\n";
close $wrap;
chmod 0755, $wrap->filename;
local $ENV{SHUTTLE_BUILDER} = $wrap->filename;

my $p = Shuttle::Platform->new(upstream_keepalive_timeout => '100ms');
my $t = $p->t;

my ($lo, $hi) = $t->port_range($N + 2);
my @args = ('--ports', "$lo-$hi", '--jobs', '2', '--key-jobs', '2',
            '--key-projects', $N + 10);

# the builder again, with @more options
sub builder_again {
    my (@more) = @_;
    $t->builder_stop('TERM', 60);
    local $p->{builder_args} = [@args, @more];
    local $Shuttle::Test::TIMEOUT = 60;
    return $p->start_builder;
}

sub states {
    my $r = $p->v1('alice', 'GET', '/v1/projects');
    my %n;
    $n{ $_->{state} // '' }++ for @{ $r->{json}{projects} // [] };
    return \%n;
}

sub soft_hard_nofile {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/limits" or return;
    while (<$fh>) {
        return ($1, $2) if /^Max open files\s+(\d+)\s+(\d+)/;
    }
    return;
}

my $t0 = time;
my $pid = builder_again('--idle', '1s');

# its soft limit is the hard one, and its start says what it allows
my ($soft, $hard) = soft_hard_nofile($pid);
cmp_ok($hard, '>', $N + 64, "the hard open files limit ($hard) holds "
       . "$N projects: the test means something");
is($soft, $hard, 'the builder raised its soft open files limit (128) to '
   . 'the hard one');
like($p->builder_log, qr/capacity: ports \Q$lo-$hi\E: \d+ projects.*; \Q$hard\E open files: \d+ idle projects/,
     'its start says how many projects its ports and open files allow');

# every project deployed (one tarball, $N names, 4 clients at once) and
# gone idle
my $repo = Shuttle::Test::repo();
my %tgz = (hello => scalar `tar czf - -C $repo/examples/hello .`,
           todo => scalar `tar czf - -C $repo/examples/todo .`);
my @names = ((map { sprintf 's%03d', $_ } 1 .. $N - 1), 'todo');

my @kids;
for my $c (0 .. 3) {
    my @mine = @names[grep { $_ % 4 == $c } 0 .. $#names];
    my $kid = fork // die "fork: $!";
    if ($kid == 0) {
        for my $name (@mine) {
            my $r = Shuttle::Test::http_get($p->port, 'localhost',
                "/deploy?project=$name", method => 'POST',
                body => $tgz{ $name eq 'todo' ? 'todo' : 'hello' },
                headers => [Authorization => 'Bearer ' . $p->key,
                            'Content-Type' => 'application/gzip']);
            if ($r->{status} != 202) {
                print STDERR "POST $name: $r->{status} $r->{body}\n";
                POSIX::_exit(1);
            }
        }
        POSIX::_exit(0);
    }
    push @kids, $kid;
}
my $posted = 0;
for (@kids) {
    waitpid($_, 0);
    $posted++ if $? == 0;
}
is($posted, 4, "$N deploys POSTed by 4 clients at once");

my $last = {};
ok($t->wait_until(sub { $last = states(); ($last->{idle} // 0) == $N
                        || grep { /fail/ } keys %$last }, 240)
   && ($last->{idle} // 0) == $N,
   "all $N deployed and idle (" . join(', ', map { "$_ $last->{$_}" }
                                        sort keys %$last) . ')')
    or diag(substr($p->builder_log, -4000));
note(sprintf '%d projects deployed and idle in %.0f s', $N, time - $t0);
ok($t->wait_until(sub { !$t->loader_pids }, 30), 'no loader runs');

# every entry of the listing is the project's own view
sub listing_is_views {
    my ($what) = @_;
    my $list = $p->v1('alice', 'GET', '/v1/projects')->{json}{projects};
    my $json = JSON::PP->new->canonical;
    my @differ;
    for my $e (@{ $list // [] }) {
        my $own = $p->v1('alice', 'GET', "/v1/projects/$e->{name}")->{json};
        delete $own->{rollback_to};
        push @differ, "$e->{name}: " . $json->encode($e) . ' is not '
                      . $json->encode($own)
            unless $json->encode($e) eq $json->encode($own);
    }
    is(scalar @{ $list // [] }, $N, "$what: GET /v1/projects lists $N");
    is(join("\n", @differ[0 .. ($#differ > 2 ? 2 : $#differ)]), '',
       "$what: each entry is GET /v1/projects/NAME's");
}

# an operator's limits for one
my ($rc, $out, $err) = Shuttle::Platform::run_cmd(
    [$real, 'limits', '--data', $t->builder_data, 's002', '--memory', '48m',
     '--tasks', '16'], env => { PATH => $ENV{PATH} });
is($rc, 0, 'shuttle-builder limits s002 --memory 48m --tasks 16') or diag $err;

# a builder restart with them idle, a long --idle this time, and health
# checks every 300 ms: all woken, all running at once on the ports they
# had, all answering their checks
builder_again('--idle', '10m', '--health-check', '300ms');
my $mark = length $p->builder_log;
$last = states();
is($last->{idle} // 0, $N, "after a restart all $N are idle");
listing_is_views('all idle');
my $todo = $p->v1('alice', 'GET', '/v1/projects/todo')->{json};
is(scalar @{ $todo->{resources} // [] }, 1, 'todo has its database');
is($p->v1('alice', 'GET', '/v1/projects/s002')->{json}{limits}{memory},
   48 << 20, 's002 has its limits');

my @bad;
for my $name (@names) {
    my $todo = $name eq 'todo';
    my $r = $p->app_get($name, $todo ? '/todos' : '/hello', timeout => 10);
    push @bad, "$name: $r->{status}"
        unless $r->{status} == 200
               && ($todo || $r->{body} eq "Hello, world!\n");
}
is("@bad", '', "all $N woken, each answers");

my @loaders = $t->loader_pids;
is(scalar @loaders, $N, "$N loaders run at once");
$last = states();
is($last->{running} // 0, $N, "the API says $N running");
listing_is_views('all running');

# a second and a half of health checks, 300 loaders on a 100 ms grid
sleep 1.5;
is(join(' ', $t->loader_pids), join(' ', @loaders),
   'the same loaders run after 1.5 s of health checks');
unlike(substr($p->builder_log, $mark), qr/health check failed/,
       'every health check answered');

my $log = $p->builder_log;
unlike($log, qr/no free port|Too many open files|EMFILE/,
       'no start refused for want of a port or a descriptor');
note(sprintf 'done in %.0f s', time - $t0);

$p->stop;
done_testing();
