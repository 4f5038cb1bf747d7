#!/usr/bin/perl

# The builder comes and goes, the apps stay: killed with SIGKILL, leaving
# with SIGQUIT or stopped with SIGTERM, it leaves its loaders serving, and
# the next builder adopts them in place (the same pid, the same port, the
# zone untouched) while a client keeps getting answers.  `shuttle-builder
# stop --all` stops the loaders too, and the next start runs them again.
# A build cut short by a crash is built again; what was queued is built.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Time::HiRes ();
use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $dir = $t->testdir;
my $hello = Shuttle::Test::repo() . '/examples/hello';

$t->write_file('slow/src/main.c', $t->read_file("$hello/src/main.c"));
$t->write_file('slow/Makefile', <<'EOF');
service.so: src/main.c
	sleep 1
	$(CC) -std=gnu11 -O2 -fPIC -shared -I$(SHUTTLE_INCLUDE) -o $@ src/main.c
EOF
my $slow = "$dir/slow";

sub zone_port {
    my ($project) = @_;
    my $z = `${\ Shuttle::Test::builder()} zone $dir/zone list 2>/dev/null`;
    return $z =~ /^$project running 127\.0\.0\.1:(\d+) /m ? $1 : undef;
}

sub get_hello {
    my ($port) = @_;
    return 0 unless $port;
    my $r = eval { http_get($port, 'localhost', '/hello', timeout => 2) };
    return $r && ($r->{status} // 0) == 200
           && $r->{body} eq "Hello, world!\n";
}

$t->builder_start('--jobs', '1');

my $r = $t->deploy('hello', $hello);
my $id = $r->{json}{id};
my $d = $t->wait_deployment('alice', $id, qr/^running$/);
my $port1 = $d->{port};
my ($loader1) = $t->loader_pids;


# clients, all along, through nginx: the module reads the zone and makes
# one try (shuttle_route gives a request the zone's peer only), so a
# request that finds the old loader gone as the zone switches fails; each
# one that fails counts, none is tried again.  Several of them, so that
# a switch finds requests on their way whenever it comes.

$t->write_nginx_conf(<<'EOF');
    shuttle_zone %%ZONE%%;

    upstream apps {
        shuttle_route;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;

        location / {
            proxy_pass http://apps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
    }
EOF

$t->run;

my $CLIENTS = 4;
my @clients;

sub client {
    my ($i) = @_;
    my ($n, $failed) = (0, 0);
    until (-e "$dir/client.stop") {
        my $r = eval { http_get($t->port(1), 'hello.apps.test', '/hello',
                                timeout => 5) };
        $n++;
        unless ($r && ($r->{status} // 0) == 200
                && $r->{body} eq "Hello, world!\n")
        {
            $failed++;
            open my $log, '>>', "$dir/client.failures";
            printf $log "%.3f client %d, request %d: %s\n",
                Time::HiRes::time(), $i, $n,
                $r ? "$r->{status} " . ($r->{body} =~ /^(.*)/)[0]
                   : "error: $@";
            close $log;
        }
        open my $fh, '>', "$dir/client.new.$i" or POSIX::_exit(1);
        print $fh "$n $failed\n";
        close $fh;
        rename "$dir/client.new.$i", "$dir/client.count.$i";
    }
    POSIX::_exit(0);
}

for my $i (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    client($i) if $pid == 0;
    push @clients, $pid;
}

END { kill 'KILL', @clients if @clients; waitpid($_, 0) for @clients }

# requests made and failed, by all the clients
sub client_count {
    my ($n, $failed) = (0, 0);
    for my $i (1 .. $CLIENTS) {
        my ($cn, $cf) = split ' ', $t->read_file("client.count.$i") // '0 0';
        $n += $cn;
        $failed += $cf;
    }
    return ($n, $failed);
}

sub client_did_more {
    my ($n) = client_count();
    my $until = $n + 20;
    return $t->wait_until(sub { (client_count())[0] >= $until });
}

ok(client_did_more(), 'clients get hello through nginx and the zone');


# SIGKILL -------------------------------------------------------------------

my $status = $t->builder_stop('KILL');
is($status & 127, 9, 'the builder is killed (SIGKILL)');
ok($t->pid_alive($loader1), "its loader $loader1 lives on");
ok(get_hello($port1), '... and serves');
ok(client_did_more(), '... the clients too, with no builder');

my $mark = length $t->builder_log;
$t->builder_start('--jobs', '1');

like(substr($t->builder_log, $mark),
     qr/deploy hello #$id: loader pid $loader1 on 127\.0\.0\.1:$port1 adopted\n/,
     "a new builder adopts loader $loader1 in place");
is(zone_port('hello'), $port1, "... the zone still routes to port $port1");
is_deeply([$t->loader_pids], [$loader1], '... no second loader');
ok(get_hello($port1), '... which serves');

$d = $t->api('alice', 'GET', "/v1/deployments/$id")->{json};
is($d->{state}, 'running', "#$id is running");
is($d->{port}, $port1, "... on $port1");
my $port2 = $port1;
my $loader2 = $loader1;


# SIGQUIT -------------------------------------------------------------------

$status = $t->builder_stop('QUIT', 2);
is($status, 0, 'SIGQUIT: the builder exits at once, status 0');
ok($t->pid_alive($loader2), "... leaving loader $loader2");
ok(get_hello($port2), '... serving');

$t->builder_start('--jobs', '1');

is(zone_port('hello'), $port2, "the next builder: the zone keeps $port2");
is_deeply([$t->loader_pids], [$loader2], "... and loader $loader2, adopted");

ok(client_did_more(), 'the clients still get hello');
$t->write_file('client.stop', '');
waitpid($_, 0) for @clients;
@clients = ();
my ($n, $failed) = client_count();
is($failed, 0, "... and got it every time: $n requests, $failed failed")
    or diag $t->read_file('client.failures');


# SIGTERM: the builder alone -------------------------------------------------

my @loaders = $t->loader_pids;
is($t->builder_stop('TERM'), 0, 'SIGTERM: the builder exits 0');
is_deeply([grep { $t->pid_alive($_) } @loaders], \@loaders,
          '... its loaders serve on');
ok(get_hello($port2), '... on the same port');
is($t->zone_cmd('list'), "hello running 127.0.0.1:$port2 $id\n",
   '... the zone unchanged');
ok($t->keeper_pid, '... and the socket keeper lives on');

# the zone is the store's: lost, or edited meanwhile, it is written anew
unlink $t->zone;
$t->zone_cmd(qw(set bogus 127.0.0.1:1 running));

$t->builder_start('--jobs', '1');

unlike($t->zone_cmd('list'), qr/^bogus /m,
       'restarted: a slot the store does not know is gone');
is($t->zone_cmd('list'), "hello running 127.0.0.1:$port2 $id\n",
   "... and hello's is the store's: loader @loaders, adopted");
is_deeply([$t->loader_pids], \@loaders, '... the same one');


# stop --all: everything -----------------------------------------------------

my $keeper = $t->keeper_pid;
my ($rc, $out) = Shuttle::Test::_capture(Shuttle::Test::builder(), 'stop',
    '--all', '--socket', $t->builder_socket, '--data', $t->builder_data);
is($rc, 0, 'shuttle-builder stop --all') or diag $out;
ok(!$t->pid_alive($t->builder_pid), '... the builder is gone');
$t->builder_stop;
ok(!grep({ $t->pid_alive($_) } @loaders), '... its loaders are stopped');
ok(!$t->pid_alive($keeper), "... and the socket keeper $keeper");
is($t->zone_cmd('list'), "hello loading 0.0.0.0:0 $id\n",
   '... the zone says hello is coming (loading)');
my $db = $t->builder_data . '/shuttle.db';
is(`sqlite3 $db "SELECT state, port FROM deployments WHERE id = $id"`,
   "running|0\n", "... #$id stays running in the store, with no port");

$t->builder_start('--jobs', '1');

$d = $t->wait_until(sub {
    my $d = $t->api('alice', 'GET', "/v1/deployments/$id")->{json};
    return $d->{state} eq 'running' && $d->{port} ? $d : undef;
});
ok($d, "started again: #$id runs on port $d->{port}");
ok($t->wait_until(sub { get_hello($d->{port}) }), '... and serves');
is($t->zone_cmd('list'), "hello running 127.0.0.1:$d->{port} $id\n",
   '... the zone routes to it');


# a crash in the middle of a build ------------------------------------------

$r = $t->deploy('slow', $slow);
my $building = $r->{json}{id};
ok($t->wait_until(sub {
       $t->api('alice', 'GET', "/v1/deployments/$building")
         ->{json}{state} eq 'building' }),
   "#$building is building");
$r = $t->deploy('fast', $hello);
my $queued = $r->{json}{id};
is($r->{json}{state}, 'queued', "#$queued waits for the one build job");

$t->builder_stop('KILL');
$t->builder_start('--jobs', '1');

$d = $t->wait_deployment('alice', $building, qr/^(running|failed)$/, 30);
is($d->{state}, 'running', "after a restart, #$building was built again, "
   . 'and runs');
like(join(' ', map { $_->{reason} // '' } @{ $d->{transitions} }),
     qr/builder restarted during the build: built again/,
     '... and its history says why');

$d = $t->wait_deployment('alice', $queued, qr/^(running|failed)$/);
is($d->{state}, 'running', "#$queued was queued again, and runs");


# the keeper killed: the builder starts another, given every socket ----------

@loaders = $t->loader_pids;
cmp_ok(scalar @loaders, '>=', 3, "loaders @loaders run");
$keeper = $t->keeper_pid;
$mark = length $t->builder_log;
kill 'KILL', $keeper;
ok($t->wait_until(sub { my $k = $t->keeper_pid; $k && $k != $keeper }),
   "the socket keeper $keeper killed: the builder started another, "
   . ($t->keeper_pid // '?'));
ok($t->wait_until(sub {
       substr($t->builder_log, $mark) =~ /handed to the new keeper\n/ }),
   '... and handed it the sockets');
$t->builder_stop('KILL');
$mark = length $t->builder_log;
$t->builder_start('--jobs', '1');
like(substr($t->builder_log, $mark),
     qr/: ${\ scalar @loaders} sockets kept\n/,
     '... which kept every loader\'s socket for the next builder');
is_deeply([$t->loader_pids], \@loaders, '... and the loaders adopted');


# stop --all with no builder running: the loaders and the keeper ---------------

$keeper = $t->keeper_pid;
$t->builder_stop('KILL');
($rc, $out) = Shuttle::Test::_capture(Shuttle::Test::builder(), 'stop',
    '--all', '--socket', $t->builder_socket, '--data', $t->builder_data);
is($rc, 0, 'the builder killed, shuttle-builder stop --all') or diag $out;
ok(!grep({ $t->pid_alive($_) } @loaders), "... stops loaders @loaders");
ok($t->wait_until(sub { !$t->pid_alive($keeper) }),
   "... and the socket keeper $keeper");
like($out, qr/^socket keeper \S+ stopped$/m, '... and says so');

done_testing;
