#!/usr/bin/perl

# A service reaches nothing on the host through the network (issue 20):
# each loader runs in a network namespace of its own, with a loopback and
# the listening socket the builder bound on the host, nothing else.  A
# probe service (t/sandbox/netprobe) tries, as a hostile tenant would:
# another project's loader port, nginx's port and its /metrics, an
# abstract unix socket of the host, the host's sockets in /proc/net and
# through sock_diag.  Each is first shown to be there from the host, then
# refused from the sandbox.  --service-network host is the operator's
# opt-in to the host's network, and says so.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $repo = Shuttle::Test::repo();

sub project_dir {
    my ($p, $name, $from) = @_;
    my $dir = $p->testdir . "/work/$name";
    make_path("$dir/src");
    for my $f (glob("$from/*"), glob("$from/src/*")) {
        next if -d $f;
        (my $rel = $f) =~ s{^\Q$from\E/}{};
        copy($f, "$dir/$rel") or die "copy $f: $!";
    }
    return $dir;
}

sub deploy {
    my ($p, $who, $name, $from) = @_;
    my $r = $p->upload($who, $name, project_dir($p, $name, $from));
    die "deploy $name: $r->{status} $r->{body}" if $r->{status} != 202;
    return $p->t->wait_deployment($who, $r->{json}{id},
                                  qr/^(running|failed)$/, 20);
}

sub probe {
    my ($p, $path) = @_;
    my $r = $p->app_get('netprobe', $path);
    return $r->{status} == 200 ? $r->{body} : "HTTP $r->{status}";
}

# the port a loader listens on, from its runtime log
sub loader_port {
    my ($p, $name, $id) = @_;
    my $port;
    $p->t->wait_until(sub {
        my $log = $p->t->read_file($p->t->builder_data
                      . "/projects/$name/deployments/$id/runtime.log") // '';
        ($port) = $log =~ /listening on 127\.0\.0\.1:(\d+)/;
        return $port;
    });
    return $port;
}

sub host_proc_net {
    my ($file) = @_;
    open my $fh, '<', "/proc/net/$file" or die "/proc/net/$file: $!";
    local $/;
    return <$fh>;
}


# the default: a namespace each -------------------------------------------

my $p = Shuttle::Platform->new(keys => ['alice', 'bob'],
                               builder_args => ['--uids', '232000-232999']);
my $t = $p->t;

like($p->builder_log, qr/services' network: a namespace each/,
     'the builder says services have a network namespace each');

my $vd = deploy($p, 'bob', 'victim', "$repo/examples/hello");
is($vd->{state}, 'running', "bob's victim runs");
my $d = deploy($p, 'alice', 'netprobe', "$repo/t/sandbox/netprobe");
is($d->{state}, 'running', "alice's netprobe runs");

my $vport = loader_port($p, 'victim', $vd->{id});
ok($vport, "the victim's loader port ($vport)");
is(Shuttle::Test::http_get($vport, 'localhost', '/hello')->{status}, 200,
   '... answers from the host');
like(probe($p, "/tcp?port=$vport"), qr/^error: /,
     "the victim's loader port: unreachable from the probe");
like(probe($p, '/tcp?port=' . $p->port), qr/^error: /,
     "nginx's port: unreachable");
like(probe($p, '/http?port=' . $p->port . '&path=/metrics'), qr/^error: /,
     "... so its /metrics (allowed for 127.0.0.1) too");
is(Shuttle::Test::http_get($p->port, 'localhost', '/metrics')->{status}, 200,
   '... which answers 127.0.0.1 on the host');

my $mine = probe($p, '/tcp?port=' . loader_port($p, 'netprobe', $d->{id}));
like($mine, qr/^error: /, "its own loader's port on the host: unreachable");

like(probe($p, '/links'), qr/^ok lo:up\n$/,
     'one interface: its own loopback, up');
like(probe($p, '/self'), qr/^error: Connection refused/,
     '... which answers (nothing listens there: refused, not unreachable)');

# an abstract unix socket of the host's network namespace
my $name = "shuttle-test-$$";
my $abs = IO::Socket::UNIX->new(Type => SOCK_STREAM, Listen => 5,
                                Local => "\0$name")
    or die "abstract socket: $!";
ok(IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => "\0$name"),
   'an abstract unix socket answers on the host');
like(probe($p, "/abstract?name=$name"), qr/^error: Connection refused/,
     '... not from the probe');

# the host's sockets: in /proc/net and through sock_diag on the host,
# not from the probe
my $nginx_hex = sprintf(':%04X ', $p->port);
like(host_proc_net('tcp'), qr/\Q$nginx_hex\E/,
     "the host's /proc/net/tcp lists nginx's port");
my $tcp = probe($p, '/proc?file=tcp');
like($tcp, qr/^ok\n\s*sl\s+local_address/, "the probe reads /proc/net/tcp");
is(scalar(() = $tcp =~ /^\s*\d+: /mg), 0, '... and it lists no socket');
my $sock = $t->builder_socket;
like(host_proc_net('unix'), qr/\Q$sock\E/,
     "the host's /proc/net/unix lists the builder's socket");
my $unix = probe($p, '/proc?file=unix');
like($unix, qr/^ok\n/, 'the probe reads /proc/net/unix');
unlike($unix, qr/\Q$sock\E|\@\Q$name\E/,
       "... without the builder's socket or the host's abstract one");
my $diag = probe($p, '/diag');
like($diag, qr/^ok/, 'sock_diag answers the probe');
my @ports = $diag =~ / (\d+):\d+/g;
is_deeply(\@ports, [], "... with no socket of the host's (@ports)");

# a redeploy and a restart: each new loader in a namespace of its own
my $d2 = deploy($p, 'alice', 'netprobe', "$repo/t/sandbox/netprobe");
is($d2->{state}, 'running', 'a redeploy runs');
like(probe($p, '/links'), qr/^ok lo:up\n$/, '... in a namespace of its own');
like(probe($p, "/tcp?port=$vport"), qr/^error: /,
     "... the victim's port unreachable");
my $r = $p->v1('alice', 'POST', '/v1/projects/netprobe/restart');
ok($r->{status} >= 200 && $r->{status} < 300, 'a restart')
    or diag explain $r;
like(probe($p, '/tcp?port=' . $p->port), qr/^error: /,
     "... nginx's port unreachable after it");

$p->stop;


# --service-network host: the operator's opt-in ----------------------------

$p = Shuttle::Platform->new(keys => ['alice'],
                            builder_args => ['--uids', '233000-233999',
                                             '--service-network', 'host']);
like($p->builder_log, qr/services' network: the host's/,
     '--service-network host: the builder says so');
$d = deploy($p, 'alice', 'netprobe', "$repo/t/sandbox/netprobe");
is($d->{state}, 'running', 'the netprobe runs');
like(probe($p, '/tcp?port=' . $p->port), qr/^ok connected/,
     "... and reaches the host's ports (nginx's here)");
unlike(probe($p, '/links'), qr/^ok lo:up\n$/, "... the host's interfaces");

my ($rc, $out, $errout) = Shuttle::Platform::run_cmd(
    [Shuttle::Test::builder(), 'serve', '--service-network', 'bridge'],
    env => { PATH => $ENV{PATH} });
isnt($rc, 0, '--service-network bridge: refused');
like("$out$errout", qr/--service-network "bridge" is not none or host/,
     '... naming the value');

$p->stop;

done_testing();
