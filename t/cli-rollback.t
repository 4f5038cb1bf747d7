#!/usr/bin/perl

# shuttle rollback against a real platform, with three versions v1, v2,
# v3 deployed: back to the deployment replaced last (no ID: v2, not the
# older v1; then, after a rollback to v1 by ID, v2 again, not v3, the
# newest but replaced first) and to a given ID, each time without a
# rebuild and with a client looping on the project's URL meanwhile
# answered every time; 409 with nothing to roll back to.

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

plan skip_all => Shuttle::Platform::shuttle_bin() . ' is not built (make)'
    unless -x Shuttle::Platform::shuttle_bin();

my $p = Shuttle::Platform->new;
my $t = $p->t;
my $work = $p->testdir . '/work';
make_path($work);

my ($rc, $out, $err) = $p->cli(['init', 'demo'], dir => $work);
my $demo = "$work/demo";
my $main = $t->read_file("$demo/src/main.c");

sub body { "v$_[0] from demo! Try /hello/yourname\n" }

# three versions, one after the other: v1, v2, v3
my @ids;
for my $v (1 .. 3) {
    $t->write_file("$demo/src/main.c", $main =~ s/Hello from/v$v from/r);
    ($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
    die "deploying version $v: exit $rc\n$err" if $rc;
    push @ids, $err =~ /^Deployment (\d+)/m;
}
is(scalar @ids, 3, "three deployments: @ids");
is($p->app_get('demo', '/')->{body}, body(3), 'v3, the last one, answers');


# a client loops on the URL all along ------------------------------------------

my $log = $p->testdir . '/client.log';
my $stop = $p->testdir . '/client.stop';

my $client = fork // die "fork: $!";
if ($client == 0) {
    my ($n, @bad) = (0);
    until (-e $stop) {
        my $res = eval { $p->app_get('demo', '/', timeout => 5) };
        $n++;
        push @bad, $res ? "$res->{status} $res->{body}" : "error: $@"
            unless $res && $res->{status} == 200
                   && $res->{body} =~ /^v[123] from demo!/;
    }
    open my $fh, '>', $log or POSIX::_exit(1);
    print $fh "$n\n", map { "$_\n" } @bad;
    close $fh;
    POSIX::_exit(0);
}

END { if ($client) { kill 'KILL', $client; waitpid($client, 0) } }

# at least a few requests before each switch
sub client_requests { 0 + (() = ($t->read_file('access.log') // '') =~ /^/mg) }

my $before = client_requests();
ok($t->wait_until(sub { client_requests() > $before + 20 }, 10),
   'the client loop runs');

# where a rollback without an ID goes, as GET /v1/projects/NAME says it
sub rollback_to { $p->v1('alice', 'GET', '/v1/projects/demo')->{json}{rollback_to} }

# no ID: the deployment replaced last, v2 (v3 replaced it), not v1
is(rollback_to(), $ids[1], "the project's rollback_to: $ids[1]");
($rc, $out, $err) = $p->cli(['rollback'], dir => $demo);
is($rc, 0, 'rollback (the one replaced last): exit 0') or diag $err;
like($err, qr/^demo now runs deployment $ids[1] again$/m,
     "... says which: $ids[1], v2, not the older $ids[0]");
is($out, $p->app_url('demo') . "\n", '... the URL on stdout');
is($p->app_get('demo', '/')->{body}, body(2),
   'v2 answers as soon as rollback returns');

$before = client_requests();
$t->wait_until(sub { client_requests() > $before + 20 }, 10);

($rc, $out, $err) = $p->cli(['rollback', 'demo', $ids[0]]);
is($rc, 0, "rollback demo $ids[0] (NAME ID, to v1): exit 0") or diag $err;
like($err, qr/^demo now runs deployment $ids[0] again$/m, '... says which');
is($p->app_get('demo', '/')->{body}, body(1), 'v1 answers');

$before = client_requests();
$t->wait_until(sub { client_requests() > $before + 20 }, 10);

# no ID again: v2, replaced just now, not v3, the newest one, which was
# replaced before it
is(rollback_to(), $ids[1], "rollback_to: $ids[1] again, not $ids[2]");
($rc, $out, $err) = $p->cli(['rollback'], dir => $demo);
is($rc, 0, 'rollback (the one replaced last) again: exit 0') or diag $err;
like($err, qr/^demo now runs deployment $ids[1] again$/m,
     "... says which: $ids[1], v2, not the newer $ids[2]");
is($p->app_get('demo', '/')->{body}, body(2), 'v2 answers again');

$before = client_requests();
$t->wait_until(sub { client_requests() > $before + 20 }, 10);

($rc, $out, $err) = $p->cli(['rollback', $ids[2]], dir => $demo);
is($rc, 0, "rollback $ids[2] (an ID alone, to v3): exit 0") or diag $err;
is($p->app_get('demo', '/')->{body}, body(3), 'v3 answers again');

$before = client_requests();
$t->wait_until(sub { client_requests() > $before + 20 }, 10);

$t->write_file($stop, '');
my $end = time + 10;
sleep 0.02 until waitpid($client, WNOHANG) == $client || time > $end;
$client = 0 unless kill 0, $client;     # else END kills it

my ($n, @bad) = split /\n/, $t->read_file($log) // "0\nno client log";
cmp_ok($n, '>', 60, "the client made $n requests across the rollbacks");
is_deeply(\@bad, [], '... every one answered 200 by v1, v2 or v3');

($rc, $out) = $p->cli(['deployments', 'demo', '--json']);
my $replaced = qr/(?:superseded|stopped)/;
like(join(', ', map { "$_->{id} $_->{state}" }
              @{ JSON::PP::decode_json($out)->{deployments} }),
     qr/^$ids[2] running, $ids[1] $replaced, $ids[0] $replaced$/,
     'rollbacks make no new deployment: no rebuild');


# nothing to roll back to: 409 ---------------------------------------------------

($rc, $out, $err) = $p->cli(['init', 'solo'], dir => $work);
($rc, $out, $err) = $p->cli(['deploy'], dir => "$work/solo");
($rc, $out, $err) = $p->cli(['rollback', 'solo']);
is($rc, 3, 'rollback with one deployment only: exit 3');
like($err, qr/^shuttle rollback: solo: .* \(409\)$/m, '... 409, saying why');

done_testing;
