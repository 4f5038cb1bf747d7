#!/usr/bin/perl

# shuttle-loader and the service SDK: small services written below are
# compiled like the builder compiles a project (cc -fPIC -shared against
# include/shuttle.h, no -l flags) and served by the real loader, started
# the way the builder starts it: a listening socket inherited as a
# descriptor (--listen-fd) and a pipe for readiness (--ready-fd).
#
#   hello      the seed's hello world, examples/hello unchanged: body,
#              404, 405 with Allow, HEAD, keep-alive, --listen
#   api        path parameters, query, headers, JSON both ways, bodies and
#              their limit (413), app data, a handler that answers
#              nothing, most specific route first, signals in a child;
#              slow routes for the drain on SIGTERM (in-flight requests
#              finish, idle connections close, new ones are refused), its
#              timeout, a second signal, a takeover on the same socket, a
#              crash while serving
#   failures   wrong ABI, no ABI, no file, main returning 3, exiting,
#              crashing, a bad route, bad options: "error: ..." on the
#              pipe (or stderr), exit status, never "ready"

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Errno qw(ECONNREFUSED);
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $dir = $t->testdir;
my $repo = Shuttle::Test::repo();
my $loader = $ENV{SHUTTLE_LOADER} // "$repo/build/bin/shuttle-loader";

plan skip_all => "$loader is not built (make)" unless -x $loader;


# the services --------------------------------------------------------------

my $API = <<'EOF';
#include <shuttle.h>

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static int  answer = 42;

static void
hello(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "Hello, world!\n");
}

static void
todo(shuttle_req *req, shuttle_res *res)
{
    int  *data = shuttle_app_get_data(shuttle_req_app(req));

    shuttle_json(res, 200, json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s, s:i}",
        "id", shuttle_req_param(req, "id"),
        "q", shuttle_req_query(req, "q"),
        "flag", shuttle_req_query(req, "flag"),
        "agent", shuttle_req_header(req, "X-Agent"),
        "method", shuttle_req_method(req),
        "path", shuttle_req_path(req),
        "data", *data));
}

static void
todo_new(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "the form for a new todo\n");
}

static void
comment(shuttle_req *req, shuttle_res *res)
{
    shuttle_printf(res, 200, "todo %s, comment %s, no %s\n",
                   shuttle_req_param(req, "id"), shuttle_req_param(req, "c"),
                   shuttle_req_param(req, "nope") ? "?" : "nope");
}

static void
echo(shuttle_req *req, shuttle_res *res)
{
    json_t        *body;
    json_error_t   err;

    body = shuttle_req_json(req, &err);
    if (body == NULL) {
        shuttle_printf(res, 400, "bad JSON: %s\n", err.text);
        return;
    }

    json_object_set_new(body, "echoed", json_true());
    shuttle_header(res, "X-Echo", "yes");
    shuttle_json(res, 201, body);
}

static void
raw(shuttle_req *req, shuttle_res *res)
{
    size_t       len;
    const char  *body;
    char         n[32];

    body = shuttle_req_body(req, &len);
    snprintf(n, sizeof(n), "%zu", len);
    shuttle_header(res, "X-Length", n);
    shuttle_bytes(res, 200, "application/octet-stream", body, len);
}

static void
files(shuttle_req *req, shuttle_res *res)
{
    shuttle_printf(res, 200, "rest=[%s]\n", shuttle_req_param(req, "path"));
}

static void
silent(shuttle_req *req, shuttle_res *res)
{
}

static void
typed(shuttle_req *req, shuttle_res *res)
{
    shuttle_header(res, "Content-Type", "text/html");
    shuttle_header(res, "X-Gone", "soon");
    shuttle_text(res, 202, "<p>hi</p>\n");
    shuttle_header(res, "X-Gone", NULL);
    shuttle_status(res, 203);
}

static void
any(shuttle_req *req, shuttle_res *res)
{
    shuttle_printf(res, 200, "any %s\n", shuttle_req_method(req));
}

static void
slow(shuttle_req *req, shuttle_res *res)
{
    shuttle_log("slow: started");
    sleep(1);
    shuttle_text(res, 200, "slow done\n");
}

static void
forever(shuttle_req *req, shuttle_res *res)
{
    shuttle_log("forever: started");
    sleep(60);
    shuttle_text(res, 200, "never\n");
}

static void
crash(shuttle_req *req, shuttle_res *res)
{
    raise(SIGSEGV);
}

static void
child(shuttle_req *req, shuttle_res *res)
{
    FILE    *f;
    size_t   n;
    char     buf[512];

    f = popen("grep -E '^Sig(Blk|Ign)' /proc/self/status", "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f) {
        pclose(f);
    }
    buf[n] = '\0';

    shuttle_text(res, 200, buf);
}

SHUTTLE_MAIN(app)
{
    shuttle_app_set_data(app, &answer);
    shuttle_app_set_max_body(app, 1024);

    shuttle_get(app, "/hello", hello);
    shuttle_get(app, "/todos/:id", todo);
    shuttle_delete(app, "/todos/:id", todo);
    shuttle_get(app, "/todos/new", todo_new);
    shuttle_get(app, "/todos/:id/comments/:c", comment);
    shuttle_post(app, "/echo", echo);
    shuttle_put(app, "/raw", raw);
    shuttle_get(app, "/files/*path", files);
    shuttle_get(app, "/silent", silent);
    shuttle_get(app, "/typed", typed);
    shuttle_route(app, "*", "/any", any);
    shuttle_get(app, "/slow", slow);
    shuttle_get(app, "/forever", forever);
    shuttle_get(app, "/crash", crash);
    shuttle_get(app, "/child", child);

    shuttle_log("api: main done");
    return 0;
}
EOF

my %FAILING = (
    # the symbols by hand: a service built against another SDK
    abi2 => <<'EOF',
const unsigned shuttle_service_abi = 2;
int shuttle_service_main(void *app) { return 0; }
EOF
    noabi => <<'EOF',
int shuttle_service_main(void *app) { return 0; }
EOF
    main3 => <<'EOF',
#include <shuttle.h>
SHUTTLE_MAIN(app) { return 3; }
EOF
    exit7 => <<'EOF',
#include <stdlib.h>
#include <shuttle.h>
SHUTTLE_MAIN(app) { exit(7); }
EOF
    crash => <<'EOF',
#include <shuttle.h>
SHUTTLE_MAIN(app) { *(volatile int *) 0 = 1; return 0; }
EOF
    badroute => <<'EOF',
#include <shuttle.h>
static void h(shuttle_req *req, shuttle_res *res) { }
SHUTTLE_MAIN(app) { shuttle_get(app, "/a/:", h); return 0; }
EOF
);


# helpers -------------------------------------------------------------------

# compiles a service the way the builder does; returns the .so
sub service {
    my ($name, $src) = @_;
    my $c = defined $src ? $t->write_file("$name.c", $src) : $name;
    $name =~ s{.*/}{} unless defined $src;
    my $so = "$dir/$name.so";
    my $out = `cc -O2 -fPIC -shared -Wall -I$repo/include $c -o $so 2>&1`;
    die "cc $c failed:\n$out" if $?;
    return $so;
}

my @PIDS;
my $NLOG = 0;

END {
    local $?;
    # whatever a failed test left running
    diag("left running: @PIDS") if @PIDS;
    for my $pid (@PIDS) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

# a socket on a free port the kernel picks, listening
sub listening_socket {
    my $s = IO::Socket::INET->new(Listen => 128, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp',
                                  ReuseAddr => 1)
        or die "listen: $!";
    return $s;
}

# Starts the loader like the builder: a socket bound and listening here,
# inherited (--listen-fd) and closed here, and the write end of a pipe
# (--ready-fd) whose first line is read before returning.  Options: args
# (more arguments), no_ready (no pipe), listen => 1 (no socket: pass
# --listen in args), sock => a socket of the caller's, kept open.
sub start_loader {
    my ($so, %o) = @_;

    my @args = @{ $o{args} // [] };
    my ($sock, $port);

    unless ($o{listen}) {
        $sock = $o{sock} // listening_socket();
        $port = $sock->sockport;
    }

    my ($r, $w);
    pipe($r, $w) or die "pipe: $!" unless $o{no_ready};

    my $log = "$dir/loader-" . ++$NLOG . ".log";

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        chdir $dir;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        my @fds;
        if ($sock) {
            fcntl($sock, F_SETFD, 0);
            push @fds, '--listen-fd', fileno $sock;
        }
        if ($w) {
            close $r;
            fcntl($w, F_SETFD, 0);
            push @fds, '--ready-fd', fileno $w;
        }
        { no warnings 'exec'; exec $loader, @fds, @args, $so; }
        POSIX::_exit(127);
    }

    push @PIDS, $pid;
    close $sock if $sock && !$o{sock};

    my $ready;
    if ($w) {
        close $w;
        $ready = read_line($r, 5);
        close $r;
    }

    return { pid => $pid, port => $port, ready => $ready, log => $log };
}

# the first line on $fh, or what came before EOF, or undef on a timeout
sub read_line {
    my ($fh, $timeout) = @_;
    my $sel = IO::Select->new($fh);
    my $end = time + $timeout;
    my $buf = '';
    while ($buf !~ /\n/) {
        my $left = $end - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($fh, $buf, 4096, length $buf);
        last unless $n;
    }
    return $buf;
}

# the exit status ($?) of a loader, or undef if it is still running after
# $timeout seconds
sub wait_exit {
    my ($l, $timeout) = @_;
    my $end = time + ($timeout // 5);
    while (time < $end) {
        if (waitpid($l->{pid}, WNOHANG) == $l->{pid}) {
            my $status = $?;
            @PIDS = grep { $_ != $l->{pid} } @PIDS;
            return $status;
        }
        sleep 0.01;
    }
    return undef;
}

sub stop_loader {
    my ($l) = @_;
    kill 'TERM', $l->{pid};
    my $s = wait_exit($l, 15);
    unless (defined $s) {
        kill 'KILL', $l->{pid};
        $s = wait_exit($l, 2);
    }
    return $s;
}

sub log_of { $t->read_file($_[0]{log}) // '' }

# waits until the loader's log has a line matching $re
sub wait_log {
    my ($l, $re, $timeout) = @_;
    my $end = time + ($timeout // 5);
    while (time < $end) {
        return 1 if log_of($l) =~ $re;
        sleep 0.01;
    }
    return 0;
}

# a raw request, written now, read later
sub send_raw {
    my ($port, $path) = @_;
    my $c = Shuttle::Test::Conn->new($port);
    syswrite($c->sock, "GET $path HTTP/1.1\r\nHost: loader.test\r\n\r\n");
    return $c;
}

my $STAMP = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/;


# hello: the seed, unchanged -------------------------------------------------

my $hello_so = service("$repo/examples/hello/src/main.c");
my $hello = start_loader($hello_so, args => ['--name', 'hello']);

is($hello->{ready}, "ready\n", 'hello: "ready" on the ready pipe');
like(log_of($hello), qr/^$STAMP hello loader: listening on 127\.0\.0\.1:$hello->{port}\b/m,
     'hello: the log says where it listens, with the time and the name');

my $r = http_get($hello->{port}, 'hello.test', '/hello');
is($r->{status}, 200, 'hello: GET /hello is 200');
is($r->{body}, "Hello, world!\n", 'hello: the body');
like($r->{headers}{'content-type'} // '', qr{^text/plain}, 'hello: text/plain');

$r = http_get($hello->{port}, 'hello.test', '/hello', method => 'HEAD');
is($r->{status}, 200, 'hello: HEAD /hello runs the GET route');
is($r->{headers}{'content-length'}, 14, 'hello: HEAD has the length');
is($r->{body}, '', 'hello: HEAD has no body');

$r = http_get($hello->{port}, 'hello.test', '/nope');
is($r->{status}, 404, 'hello: an unknown path is 404');
like($r->{body}, qr{no route for /nope}, 'hello: 404 says why');

$r = http_get($hello->{port}, 'hello.test', '/hello/', method => 'GET');
is($r->{status}, 404, 'hello: /hello/ is not /hello');

$r = http_get($hello->{port}, 'hello.test', '/hello', method => 'POST',
              body => 'x');
is($r->{status}, 405, 'hello: POST /hello is 405');
is($r->{headers}{allow}, 'GET, HEAD', 'hello: Allow lists GET and HEAD');

# keep-alive: many requests, one connection, never closed
{
    my $c = Shuttle::Test::Conn->new($hello->{port});
    my $ok = 0;
    my $close = 0;
    for (1 .. 200) {
        my $r = $c->get('hello.test', '/hello');
        $ok++ if $r->{status} == 200 && $r->{body} eq "Hello, world!\n";
        $close++ if ($r->{headers}{connection} // '') =~ /close/i;
    }
    is($ok, 200, 'keep-alive: 200 requests on one connection');
    is($close, 0, 'keep-alive: none asks to close');
    ok(!$c->closed(0.1), 'keep-alive: the connection is still open');

    my @r = $c->pipeline(map { "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n" }
                         1 .. 20);
    is(scalar(grep { $_->{status} == 200 } @r), 20,
       'keep-alive: 20 pipelined requests');
    $c->close;
}

is(stop_loader($hello), 0, 'hello: SIGTERM, exit 0');
like(log_of($hello), qr/draining: SIGTERM received.*\n.*exited: drained/,
     'hello: the log says draining, then exited');

# --listen binds itself; port 0 makes the log the only way to the port
{
    my $l = start_loader($hello_so, listen => 1,
                         args => ['--listen', '127.0.0.1:0']);
    is($l->{ready}, "ready\n", '--listen: ready');
    my ($port) = log_of($l) =~ /listening on 127\.0\.0\.1:(\d+)/;
    ok($port, '--listen: the log names the port');
    $r = http_get($port, 'hello.test', '/hello') if $port;
    is($r->{body}, "Hello, world!\n", '--listen: serves');
    is(stop_loader($l), 0, '--listen: exit 0');
}


# api ---------------------------------------------------------------------

my $api_so = service('api', $API);
my $api = start_loader($api_so, args => ['--name', 'api', '--threads', '2']);
my $port = $api->{port};

is($api->{ready}, "ready\n", 'api: ready');
like(log_of($api), qr/^$STAMP api: api: main done$/m,
     'shuttle_log: the time, the name, the line');

$r = http_get($port, 'api.test',
              '/todos/17?Q=no&q=milk%20and%20honey&flag&q=again',
              headers => { 'x-AGENT' => 'perl' });
is($r->{status}, 200, 'params: GET /todos/17');
like($r->{headers}{'content-type'} // '', qr{^application/json},
     'json: application/json');
my $j = eval { JSON::PP::decode_json($r->{body}) } // {};
is($j->{id}, '17', 'params: :id');
is($j->{q}, 'milk and honey', 'query: by exact name, decoded, the first');
is($j->{flag}, '', 'query: a name without a value is ""');
is($j->{agent}, 'perl', 'headers: by name, case-insensitively');
is($j->{method}, 'GET', 'method');
is($j->{path}, '/todos/17', 'path, without the query');
is($j->{data}, 42, 'app data reaches the handler');

$r = http_get($port, 'api.test', '/todos/17', method => 'DELETE');
$j = eval { JSON::PP::decode_json($r->{body}) } // {};
is($j->{method}, 'DELETE', 'a second method on the same pattern');
ok(exists $j->{q} && !defined $j->{q}, 'query: absent is NULL');

$r = http_get($port, 'api.test', '/todos/new');
is($r->{body}, "the form for a new todo\n",
   'a literal route beats a parameter, whatever the order');

$r = http_get($port, 'api.test', '/todos/5/comments/c9');
is($r->{body}, "todo 5, comment c9, no nope\n", 'two parameters');

$r = http_get($port, 'api.test', '/todos/');
is($r->{status}, 404, 'a parameter does not match an empty segment');

$r = http_get($port, 'api.test', '/todos/5', method => 'POST', body => '{}');
is($r->{status}, 405, '405 for a method no route of the path has');
is($r->{headers}{allow}, 'GET, HEAD, DELETE', '405: Allow lists them all');

$r = http_get($port, 'api.test', '/files/a/b%20c.txt');
is($r->{body}, "rest=[a/b c.txt]\n", 'a rest parameter takes the slashes');
$r = http_get($port, 'api.test', '/files');
is($r->{body}, "rest=[]\n", 'a rest parameter may be empty');

$r = http_get($port, 'api.test', '/echo', method => 'POST',
              body => '{"name":"tea","n":[1,2,3]}');
is($r->{status}, 201, 'json: POST /echo is 201');
is($r->{headers}{'x-echo'}, 'yes', 'a header set by the handler');
$j = eval { JSON::PP::decode_json($r->{body}) } // {};
is_deeply($j, { name => 'tea', n => [1, 2, 3], echoed => JSON::PP::true() },
          'json: the body parsed, changed and sent back');

$r = http_get($port, 'api.test', '/echo', method => 'POST', body => '{"a":');
is($r->{status}, 400, 'json: a bad body');
like($r->{body}, qr/^bad JSON: /, 'json: the reason from jansson');

{
    my $bin = join('', map { chr($_ % 256) } 0 .. 1023);
    $r = http_get($port, 'api.test', '/raw', method => 'PUT', body => $bin);
    is($r->{status}, 200, 'body: 1024 bytes, the limit, are taken');
    ok($r->{body} eq $bin, 'body: bytes, NULs included, round trip');
    is($r->{headers}{'x-length'}, 1024, 'body: its length');

    $r = http_get($port, 'api.test', '/raw', method => 'PUT',
                  body => $bin . 'x');
    is($r->{status}, 413, 'body: 1025 bytes is 413');
    like($r->{body}, qr/more than 1024 bytes/, '413 says the limit');

    my $chunked = sprintf("%x\r\n%s\r\n", 700, 'a' x 700) x 2 . "0\r\n\r\n";
    $r = http($port, "PUT /raw HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                   . "Transfer-Encoding: chunked\r\n\r\n$chunked");
    is($r->{status}, 413, 'body: 1400 bytes chunked is 413');

    $chunked = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    $r = http($port, "PUT /raw HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                   . "Transfer-Encoding: chunked\r\n\r\n$chunked");
    is($r->{body}, 'hello world', 'body: chunked, read whole');

    $r = http_get($port, 'api.test', '/raw', method => 'PUT', body => '');
    is($r->{headers}{'x-length'}, 0, 'body: empty');
}

$r = http_get($port, 'api.test', '/silent');
is($r->{status}, 500, 'a handler that answers nothing: 500');
like($r->{body}, qr{GET /silent set no response}, '500 says why');
ok(wait_log($api, qr{GET /silent: the handler set no response}),
   '500: and the log too');

$r = http_get($port, 'api.test', '/typed');
is($r->{status}, 203, 'shuttle_status() after the body');
is($r->{headers}{'content-type'}, 'text/html',
   'a Content-Type header wins over the body\'s');
ok(!exists $r->{headers}{'x-gone'}, 'a header removed');

$r = http_get($port, 'api.test', '/any', method => 'PATCH');
is($r->{body}, "any PATCH\n", 'a "*" route takes every method');

# the loader's signal handling stays out of the programs a service runs
$r = http_get($port, 'api.test', '/child');
like($r->{body}, qr/^SigBlk:\s*0+$/m, 'a child process: no signal blocked');
my ($ign) = $r->{body} =~ /^SigIgn:\s*([0-9a-f]+)$/m;
ok(defined $ign && !(hex(substr($ign, -8)) & (1 << 12)),
   'a child process: SIGPIPE not ignored');

is(stop_loader($api), 0, 'api: SIGTERM, exit 0');

# SIGTERM with a slow request in flight, on one thread: the slow request
# completes, a request waiting behind it too, both with Connection: close;
# an idle keep-alive connection is closed at once; new connections are
# refused; the loader exits 0 as soon as it is done
{
    my $l = start_loader($api_so, args => ['--threads', '1']);
    my $port = $l->{port};

    my $idle = Shuttle::Test::Conn->new($port);
    $r = $idle->get('api.test', '/hello');
    ok($r->{status} == 200 && !$r->{headers}{connection},
       'drain: an idle keep-alive connection');
    my $behind = Shuttle::Test::Conn->new($port);
    $behind->get('api.test', '/hello');

    my $slow = send_raw($port, '/slow');
    ok(wait_log($l, qr/slow: started/), 'drain: the slow request runs');
    syswrite($behind->sock, "GET /hello HTTP/1.1\r\nHost: api.test\r\n\r\n");

    my $t0 = time;
    kill 'TERM', $l->{pid};
    ok(wait_log($l, qr/draining: SIGTERM received, 2 requests in flight/),
       'drain: the log says draining, two requests in flight');

    ok($idle->closed(0.5), 'drain: the idle connection is closed at once');

    my $new = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                    Proto => 'tcp', Timeout => 2);
    my $err = $! + 0;
    ok(!$new && $err == ECONNREFUSED, 'drain: a new connection is refused');

    $r = $slow->read;
    is($r->{status}, 200, 'drain: the slow request completes with 200');
    is($r->{body}, "slow done\n", 'drain: its body');
    is($r->{headers}{connection}, 'close', 'drain: with Connection: close');

    $r = $behind->read;
    is($r->{status}, 200, 'drain: the request waiting behind it is served');
    is($r->{headers}{connection}, 'close', '... with Connection: close');
    ok($behind->closed(2), '... and its connection closed');

    my $s = wait_exit($l, 5);
    is($s, 0, 'drain: exit 0');
    ok(time - $t0 < 3, 'drain: as soon as it is done');
    like(log_of($l), qr/exited: drained/, 'drain: the log says drained');
}

# a loader started on the same socket takes over: the one it replaces
# drains without closing the socket under it
{
    my $sock = listening_socket();
    my $old = start_loader($hello_so, sock => $sock);
    my $new = start_loader($hello_so, sock => $sock);
    close $sock;
    ok($old->{ready} eq "ready\n" && $new->{ready} eq "ready\n",
       'take over: two loaders on one socket');

    kill 'TERM', $old->{pid};
    is(wait_exit($old, 5), 0, 'take over: the old one drains and exits');

    my $ok = grep { (http_get($new->{port}, 'h', '/hello')->{status} // 0)
                    == 200 } 1 .. 20;
    is($ok, 20, 'take over: the new one serves every new connection');
    is(stop_loader($new), 0, 'take over: then exits 0 too');
}

# told to stop, a loader still accepts for 100 ms: nginx may have read
# its port in the zone an instant before the builder switched it and sent
# SIGTERM (and it tries once)
{
    my $sock = listening_socket();
    my $l = start_loader($hello_so, sock => $sock);
    close $sock;
    kill 'TERM', $l->{pid};
    ok(wait_log($l, qr/stopping: SIGTERM received; accepting for 100 ms more/),
       'stopping: the loader says it accepts a moment more');
    my $r = eval { http_get($l->{port}, 'h', '/hello', timeout => 2) };
    is($r && $r->{status}, 200, '... and a request then is served');
    is(wait_exit($l, 5), 0, '... then it drains and exits');
}

# --drain-timeout: a request that never ends is cut
{
    my $l = start_loader($api_so, args => ['--drain-timeout', '1']);
    my $c = send_raw($l->{port}, '/forever');
    ok(wait_log($l, qr/forever: started/), 'drain timeout: request running');
    my $t0 = time;
    kill 'TERM', $l->{pid};
    my $s = wait_exit($l, 5);
    is($s, 0, 'drain timeout: exit 0');
    my $took = time - $t0;
    ok($took >= 0.9 && $took < 3, 'drain timeout: after about 1 s')
        or diag("took $took s");
    like(log_of($l), qr/drain timeout after 1 s, 1 requests cut/,
         'drain timeout: the log says how many requests were cut');
    ok($c->read->{incomplete}, 'drain timeout: the request got no response');
}

# a second signal cuts at once
{
    my $l = start_loader($api_so);
    my $c = send_raw($l->{port}, '/forever');
    ok(wait_log($l, qr/forever: started/), 'second signal: request running');
    kill 'TERM', $l->{pid};
    ok(wait_log($l, qr/draining/), 'second signal: draining');
    kill 'INT', $l->{pid};
    is(wait_exit($l, 3), 0, 'second signal: exit 0 at once');
    like(log_of($l), qr/exited: a second signal, 1 requests cut/,
         'second signal: logged');
}

# a crash while serving is the loader's alone: it dies of it
{
    my $l = start_loader($api_so);
    $r = http_get($l->{port}, 'api.test', '/crash');
    ok(!$r->{status}, 'crash: no response');
    my $s = wait_exit($l, 5);
    is($s & 127, 11, 'crash: the loader dies of SIGSEGV');
}


# failures to start -----------------------------------------------------------

my %so = map { $_ => service($_, $FAILING{$_}) } keys %FAILING;

sub fails_with {
    my ($name, $so, $re, $status, @args) = @_;
    my $l = start_loader($so, args => \@args);
    like($l->{ready} // '', $re, "$name: the error on the ready pipe");
    like($l->{ready} // '', qr/^error: [^\n]*\n\z/, "$name: one line");
    my $s = wait_exit($l, 5);
    # a signal: the number, core dumped or not
    $s &= 127 if defined $s && $status < 256;
    is($s, $status, "$name: exit status");
    unlike(log_of($l), qr/loader: ready/, "$name: never ready");
    return $l;
}

fails_with('abi', $so{abi2},
           qr/^error: \Q$so{abi2}\E: SDK ABI 2, this loader speaks 1$/, 256);
fails_with('no abi', $so{noabi},
           qr/^error: \Q$so{noabi}\E: no shuttle_service_abi symbol/, 256);
fails_with('no file', "$dir/nosuch.so",
           qr/^error: dlopen \Q$dir\E\/nosuch.so: .*No such file/, 256);
fails_with('main 3', $so{main3}, qr/^error: service main returned 3$/, 256);
fails_with('exit', $so{exit7}, qr/^error: service main called exit\(7\)$/,
           7 << 8);
fails_with('crash', $so{crash},
           qr/^error: service main crashed: signal 11 \(SIGSEGV\)$/, 11);
fails_with('route', $so{badroute},
           qr{^error: route "GET /a/:": segment 2: a parameter without a name$},
           256);
fails_with('threads', $hello_so,
           qr/^error: --threads "0": not a number from 1 to 1024$/, 256,
           '--threads', '0');

# without --ready-fd the error goes to stderr
{
    my $l = start_loader($so{abi2}, no_ready => 1);
    is(wait_exit($l, 5), 256, 'no ready fd: exit 1');
    like(log_of($l), qr/^$STAMP service loader: error: \Q$so{abi2}\E: SDK ABI 2, this loader speaks 1$/m,
         'no ready fd: the error on stderr');

    $l = start_loader($hello_so, no_ready => 1,
                      args => ['--listen', '127.0.0.1:1']);
    is(wait_exit($l, 5), 256, 'usage: exit 1');
    like(log_of($l), qr/error: give one of --listen-fd and --listen/,
         'usage: both --listen-fd and --listen are refused');
}

{
    open my $null, '<', '/dev/null' or die;
    fcntl($null, F_SETFD, 0);
    my $l = start_loader($hello_so, listen => 1,
                         args => ['--listen-fd', fileno $null]);
    like($l->{ready} // '', qr/^error: --listen-fd \d+: Socket operation on non-socket$/,
         '--listen-fd: not a socket');
    wait_exit($l, 5);
}

done_testing;
