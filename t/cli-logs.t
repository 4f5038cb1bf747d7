#!/usr/bin/perl

# shuttle logs -f against a real platform: a line the service logs after
# the command started shows up; a redeploy hands the follow over to the
# new deployment's log; Ctrl-C ends it with exit 0.  The builder's
# runtime log: GET /v1/deployments/ID/logs?runtime=1[&follow=1].

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
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
($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
die "deploying demo: exit $rc\n$err" if $rc;
my ($id1) = $err =~ /^Deployment (\d+)/m;

# the runtime log is not the build log
my %auth = (headers => [Authorization => 'Bearer ' . $p->key]);
my $build = http_get($p->port, 'localhost', "/v1/deployments/$id1/logs",
                     %auth)->{body};
my $runtime = http_get($p->port, 'localhost',
                       "/v1/deployments/$id1/logs?runtime=1", %auth);
is($runtime->{status}, 200, 'GET /v1/deployments/ID/logs?runtime=1: 200')
    or diag $runtime->{body};
isnt($runtime->{body}, $build, '... the runtime log, not the build log');


# a line logged after logs -f started ----------------------------------------

my $pid = $p->spawn_cli(['logs', '--runtime', '-f'], dir => $demo);

# a first line, logged once logs -f runs: when it shows, logs -f follows
my $word = 'zed' . int(rand(1e9));
is($p->app_get('demo', "/hello/${word}a")->{body}, "Hello, ${word}a!\n",
   'a request that makes the service log a line');
ok($p->wait_cli_output($pid, qr/saying hello to \Q${word}a\E\n/, 10),
   'logs -f shows it')
    or diag join "\n", $p->cli_output($pid);

# then one logged while it waits for more
$p->app_get('demo', "/hello/$word");
ok($p->wait_cli_output($pid, qr/saying hello to \Q$word\E\n/, 10),
   'logs -f shows a line logged while it was waiting')
    or diag join "\n", $p->cli_output($pid);


# a redeploy: the new deployment's log follows on -----------------------------

($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
is($rc, 0, 'a redeploy while logs -f runs') or diag $err;
my ($id2) = $err =~ /^Deployment (\d+)/m;

ok($p->wait_cli_output($pid, qr/deployment $id2 now serves demo/, 10,
                       stream => 'err'),
   'logs -f says the new deployment serves now');

$word .= 'b';
$p->app_get('demo', "/hello/$word");
ok($p->wait_cli_output($pid, qr/saying hello to \Q$word\E/, 10),
   '... and shows its lines');

is($p->signal_cli($pid, 'INT'), 0, 'Ctrl-C ends logs -f: exit 0');


# without -f: the build log, then the runtime log -------------------------------

($rc, $out, $err) = $p->cli(['logs'], dir => $demo);
is($rc, 0, 'logs: exit 0');
like($out, qr/^==> build log of deployment $id2 <==\n(.*\n)*^cc .*\n(.*\n)*==> runtime log of deployment $id2 <==\n(.*\n)*.*saying hello to \Q$word\E/m,
     'logs: the build log, then the runtime log, each under a header');

($rc, $out, $err) = $p->cli(['logs', '--runtime', '--deployment', $id1],
                            dir => $demo);
like($out, qr/saying hello to zed\d+\n/, 'logs --runtime --deployment ID');
unlike($out, qr/==>/, '... one log, no header');

done_testing;
