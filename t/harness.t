#!/usr/bin/perl

# The test harness itself (t/lib/Shuttle/Test.pm): nginx starts with the
# module loaded and workers as nobody, the HTTP clients (one-shot,
# keepalive, pipelined, chunked, HEAD, timeouts), nginx -t, reload, spawn,
# the zone command, and stop, also when a test dies.  No shuttle directive.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use IO::Socket::INET;
use Shuttle::Test qw(:DEFAULT http_request parse_response);

my $t = Shuttle::Test->new;

SKIP: {
    skip 'SHUTTLE_TEST_NO_MODULE is set', 1 if $ENV{SHUTTLE_TEST_NO_MODULE};
    ok(-f Shuttle::Test::module_path(),
       'the module is built: ' . Shuttle::Test::module_path())
        or diag 'run make first';
}

my $conf = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name localhost;

        location / {
            return 200 "conn=$connection req=$connection_requests\n";
        }

        location /chunked {
            default_type text/html;
            sub_filter 'abc' 'xyz';
            return 200 "abc $connection_requests\n";
        }

        location /dir {
            return 200 "%%TESTDIR%%\n";
        }
    }
EOF

$t->write_nginx_conf($conf);
like($t->conf, qr/^load_module /m, 'the config loads the module')
    unless $ENV{SHUTTLE_TEST_NO_MODULE};
is(scalar(() = $t->conf =~ /%%/g), 0, 'every placeholder replaced');

my ($ok, $out) = $t->nginx_test;
ok($ok, 'nginx -t accepts the config') or diag $out;

$t->run;
my $port = $t->port(1);
my $master = $t->nginx_pid;
ok($master && kill(0, $master), "nginx runs (master $master)");

my @w = $t->worker_pids;
is(scalar @w, 1, 'one worker');

SKIP: {
    skip 'not root: workers run as the test user', 1 if $> != 0;
    my $status = $t->read_file("/proc/$w[0]/status") // '';
    my ($uid) = $status =~ /^Uid:\s+(\d+)/m;
    is($uid, scalar getpwnam('nobody'), 'the worker runs as nobody');
}

# one request per connection
my $r = http_get($port, 'localhost', '/');
is($r->{status}, 200, 'http_get: 200');
like($r->{body}, qr/^conn=\d+ req=1\n\z/, 'http_get: the body');
is($r->{headers}{'content-type'}, 'text/plain', 'http_get: headers lowercased');
is($r->{headers}{'content-length'}, length $r->{body}, 'Content-Length');
like($r->{raw}, qr/^HTTP\/1\.1 200 OK\r\n/, 'the raw response');

is($t->http_get($port, 'localhost', '/dir')->{body}, $t->testdir . "\n",
   'as a method too; %%TESTDIR%%');

$r = http_get($port, 'localhost', '/', method => 'HEAD');
is($r->{status}, 200, 'HEAD: 200');
is($r->{body}, '', 'HEAD: no body');

$r = http($port, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
is($r->{status}, 200, 'http: a raw request');
like($r->{body}, qr/^conn=\d+ req=1\n\z/, 'http: the body');

# keepalive: three requests on one connection
my @r = http_keepalive($port, 'localhost', '/', '/', '/');
is(scalar @r, 3, 'keepalive: three responses');
my @conn = map { ($_->{body} // '') =~ /conn=(\d+)/ ? $1 : undef } @r;
my @req = map { ($_->{body} // '') =~ /req=(\d+)/ ? $1 : undef } @r;
ok(defined $conn[0] && !grep({ !defined || $_ != $conn[0] } @conn),
   "keepalive: one connection (@{[ map { $_ // 'undef' } @conn ]})");
is("@req", '1 2 3', 'keepalive: requests 1, 2, 3 on it');

# chunked bodies, on one connection
my $c = Shuttle::Test::Conn->new($port);
my $r1 = $c->get('localhost', '/chunked');
my $r2 = $c->get('localhost', '/chunked');
ok($r1->{chunked} && $r2->{chunked}, 'chunked responses');
is($r1->{body}, "xyz 1\n", 'chunked: the first body');
is($r2->{body}, "xyz 2\n", 'chunked: the second body on the same connection');

# pipelined, the last one closing
my @p = $c->pipeline(http_request('localhost', '/', close => 0),
                     http_request('localhost', '/chunked', close => 0),
                     http_request('localhost', '/', close => 1));
is(join(' ', map { $_->{status} } @p), '200 200 200', 'pipeline: 3 responses');
like($p[2]{body}, qr/req=5\n/, 'pipeline: on the same connection');
ok($c->closed(2), 'the server closed after Connection: close');
$c->close;

# parse_response on a string
$r = parse_response("HTTP/1.1 404 Not Found\r\nX-A: 1\r\nx-a: 2\r\n"
                    . "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
                    . "2\r\nde\r\n0\r\n\r\n");
is($r->{status}, 404, 'parse_response: status');
is($r->{body}, 'abcde', 'parse_response: de-chunked');
is($r->{headers}{'x-a'}, '1, 2', 'parse_response: repeated header');

# a server that never answers fails the request, it does not hang
my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 5, Proto => 'tcp')
    or die "listen: $@";
my $t0 = time;
eval { http_get($mute->sockport, 'localhost', '/', timeout => 1) };
like($@, qr/timeout/, 'a silent server: timeout');
ok(time - $t0 < 4, 'a silent server: in about the timeout');
close $mute;

# logs
ok($t->wait_for_log(qr/start worker process/), 'wait_for_log: error log');
ok($t->wait_for_log(qr/"GET \/chunked HTTP\/1\.1" 200/, 5,
                    file => 'access.log'), 'wait_for_log: access log');
ok(!defined $t->wait_for_log(qr/no such line/, 0.2), 'wait_for_log: a miss');

# reload onto a new configuration
(my $conf2 = $conf) =~ s/conn=\$connection/reloaded conn=\$connection/;
$t->write_nginx_conf($conf2);
$t->reload;
my @w2 = $t->worker_pids;
is(scalar @w2, 1, 'reload: one worker');
isnt($w2[0], $w[0], 'reload: a new worker');
ok(!kill(0, $w[0]), 'reload: the old worker is gone');
is($t->nginx_pid, $master, 'reload: the same master');
like(http_get($port, 'localhost', '/')->{body}, qr/^reloaded conn=/,
     'reload: the new configuration answers');

# spawn
my $sp = $t->spawn('/bin/sh', '-c', 'echo spawned; exec sleep 60');
ok(kill(0, $sp), "spawn: runs (pid $sp)");
ok(Shuttle::Test::_wait('spawn log', 5, sub { ($t->spawn_log(1) // '') =~ /spawned/ }),
   'spawn: its output in spawn-1.log');

# the zone command
SKIP: {
    skip 'build/bin/shuttle-builder is not built', 4
        unless -x Shuttle::Test::builder();

    $t->zone_cmd(qw(set hello 127.0.0.1:8001 running 12));
    like($t->zone_cmd('list'), qr/^hello\s+running\s+127\.0\.0\.1:8001\s+12$/m,
         'zone_cmd: set, list');
    ok(-f $t->zone, 'zone_cmd: the zone is at $t->zone');
    my ($st, $o, $e) = $t->zone_run(qw(set bad_name 127.0.0.1:1 running));
    isnt($st, 0, 'zone_run: a bad name fails');
    eval { $t->zone_cmd(qw(set bad_name 127.0.0.1:1 running)) };
    like($@, qr/^zone_cmd set bad_name .*exit \d/s, 'zone_cmd: dies on failure');
}

# nginx -t and run on a bad configuration
{
    my $t2 = Shuttle::Test->new;
    $t2->write_nginx_conf("server { listen 127.0.0.1:%%PORT_1%%; no_such_directive on; }");
    my ($ok, $out) = $t2->nginx_test;
    ok(!$ok, 'nginx_test: a bogus directive fails');
    like($out, qr/unknown directive "no_such_directive"/, 'nginx_test: the output says why')
        or diag $out;
    eval { $t2->run };
    like($@, qr/^run: nginx failed.*unknown directive/s, 'run: dies with the error');
}

# stop
$t->stop;
ok(!Shuttle::Test::_alive($master), 'stop: the master is gone');
ok(!grep({ Shuttle::Test::_alive($_) } @w2), 'stop: the worker is gone');
ok(!Shuttle::Test::_alive($sp), 'stop: the spawned process is gone');
eval { http_get($port, 'localhost', '/', timeout => 1) };
like($@, qr/connect/, 'stop: nothing listens any more');

# a test that dies still stops its nginx (END), and removes its prefix
{
    my $inc = "$FindBin::Bin/lib";
    my $code = <<'EOF';
        open STDERR, ">", "/dev/null";
        use Shuttle::Test;
        my $t = Shuttle::Test->new;
        $t->write_nginx_conf('server { listen 127.0.0.1:%%PORT_1%%; }');
        $t->run;
        print $t->nginx_pid, " ", $t->testdir, "\n";
        die "the test dies\n";
EOF
    local $ENV{SHUTTLE_TEST_KEEP} = 0;
    open my $fh, '-|', $^X, "-I$inc", '-e', $code or die "perl: $!";
    my $line = <$fh>;
    close $fh;
    isnt($? >> 8, 0, 'a dying test exits non-zero');
    my ($pid, $dir) = split ' ', $line // '';
    ok($pid, "it ran nginx (" . ($pid // 'no pid') . ")");
    ok($pid && !Shuttle::Test::_alive($pid), 'its nginx is stopped');
    ok($dir && !-e $dir, 'its prefix is removed');
}

done_testing;
