#!/usr/bin/perl

# The builder comes and goes, the apps stay: killed with SIGKILL or
# leaving with SIGQUIT, it leaves its loaders serving, and the next
# builder takes them over (a fresh loader on a new port, the zone
# switched, the old loader stopped) while a client keeps getting answers.
# SIGTERM stops the loaders, and the next start runs them again.  A build
# cut short by a crash is built again; what was queued is built.

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

$t->builder_start('--jobs', '1');

my $port2 = $t->wait_until(sub {
    my $p = zone_port('hello');
    return $p && $p != $port1 ? $p : undef;
});
ok($port2, "a new builder: the zone switched from port $port1 to $port2");
my @pids = grep { $_ != $loader1 } $t->loader_pids;
is(scalar @pids, 1, "... to a fresh loader, $pids[0]");
my $loader2 = $pids[0];
ok(get_hello($port2), '... which serves');
ok($t->wait_until(sub { !$t->pid_alive($loader1) }),
   "the old loader $loader1 was stopped");

$d = $t->api('alice', 'GET', "/v1/deployments/$id")->{json};
is($d->{state}, 'running', "#$id is running");
is($d->{port}, $port2, "... on $port2");
like($d->{transitions}[-1]{reason},
     qr/^taken over by a new builder: pid $loader2 /, '... taken over');


# SIGQUIT -------------------------------------------------------------------

$status = $t->builder_stop('QUIT', 2);
is($status, 0, 'SIGQUIT: the builder exits at once, status 0');
ok($t->pid_alive($loader2), "... leaving loader $loader2");
ok(get_hello($port2), '... serving');

$t->builder_start('--jobs', '1');

my $port3 = $t->wait_until(sub {
    my $p = zone_port('hello');
    return $p && $p != $port2 ? $p : undef;
});
ok($port3, "the next builder took over: port $port3");
ok($t->wait_until(sub { !$t->pid_alive($loader2) }),
   "... and stopped loader $loader2");

ok(client_did_more(), 'the clients still get hello');
$t->write_file('client.stop', '');
waitpid($_, 0) for @clients;
@clients = ();
my ($n, $failed) = client_count();
is($failed, 0, "... and got it every time: $n requests, $failed failed")
    or diag $t->read_file('client.failures');


# SIGTERM -------------------------------------------------------------------

my @loaders = $t->loader_pids;
is($t->builder_stop('TERM'), 0, 'SIGTERM: the builder exits 0');
ok(!grep({ $t->pid_alive($_) } @loaders), '... its loaders are stopped');
is($t->zone_cmd('list'), "hello loading 0.0.0.0:0 $id\n",
   '... the zone says hello is coming (loading)');
my $db = $t->builder_data . '/shuttle.db';
is(`sqlite3 $db "SELECT state, port FROM deployments WHERE id = $id"`,
   "running|0\n", "... #$id stays running in the store, with no port");

# the zone is the store's: lost, or edited meanwhile, it is written anew
unlink $t->zone;
$t->zone_cmd(qw(set bogus 127.0.0.1:1 running));

$t->builder_start('--jobs', '1');

unlike($t->zone_cmd('list'), qr/^bogus /m,
       'restarted: a slot the store does not know is gone');

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

done_testing;
