#!/usr/bin/perl

# Issue 11, item 7: the peer is chosen when the upstream connection is
# made, from the zone as it is then, not from the snapshot the request
# took when it arrived.  An upload still being sent when the project
# switches to a new loader (a redeploy) goes to the new loader, not to
# the old one, which would be gone (502).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;

$t->write_nginx_conf(<<'EOF2');
    shuttle_zone %%ZONE%%;

    upstream apps {
        shuttle_route;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;
        client_max_body_size 1m;

        location / {
            proxy_pass http://apps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_A%%;
        location / { return 200 "A\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_B%%;
        location / { return 200 "B\n"; }
    }
EOF2

$t->run;

my $port = $t->port(1);
$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('A'), 'running', 1);
$t->wait_until(sub { http_get($port, 'alpha.apps.test', '/')->{body}
                     eq "A\n" }, 3);
is(http_get($port, 'alpha.apps.test', '/')->{body}, "A\n",
   'alpha runs on A');

# an upload: the head and half the body, then the switch, then the rest
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
    or die "connect: $!";
print $s "POST /upload HTTP/1.1\r\nHost: alpha.apps.test\r\n"
         . "Content-Length: 20000\r\nConnection: close\r\n\r\n"
         . ('x' x 10000);

# nginx has the request: its access log is written at the end, so wait
# for the first half to be read by checking nothing came back yet
ok(!IO::Select->new($s)->can_read(0.3), 'the upload is under way');

$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('B'), 'running', 2);

print $s 'x' x 10000;

my ($raw, $sel) = ('', IO::Select->new($s));
while ($sel->can_read(5)) {
    my $n = sysread($s, my $buf, 4096);
    last unless $n;
    $raw .= $buf;
}

like($raw, qr{^HTTP/1\.1 200 }, 'the upload is answered: 200');
like($raw, qr{\r\n\r\nB\n\z}, '... by B, the loader of the zone as it is '
                              . 'when the upload ended');


# Issue 21, item 6: the project stops running while the upload is sent.
# The upload gets the answer a new request to the project gets (503 with
# Retry-After while it loads, 503 stopped, 404 deleted), not a 500 that
# asks whether shuttle_apps is set.  nginx has taken the request when its
# body buffer is full and it says it writes the rest to a temporary file.

sub upload_while {
    my ($change) = @_;

    my $mark = $t->log_mark;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "POST /upload HTTP/1.1\r\nHost: alpha.apps.test\r\n"
             . "Content-Length: 40000\r\nConnection: close\r\n\r\n"
             . ('x' x 30000);
    $t->wait_for_log(qr/client request body is buffered to a temporary/,
                     5, from => $mark)
        or return 'nginx did not start writing the body';

    $change->();
    print $s 'x' x 10000;

    my ($raw, $sel) = ('', IO::Select->new($s));
    while ($sel->can_read(5)) {
        my $n = sysread($s, my $buf, 4096);
        last unless $n;
        $raw .= $buf;
    }

    return $raw;
}

# status line, Retry-After and body of an answer
sub answer {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($retry) = $head =~ /^Retry-After: (\d+)/mi;
    return join '|', $status // '-', $retry // '-', $body // '-';
}

sub fresh {
    my $r = http_get($port, 'alpha.apps.test', '/');
    return join '|', $r->{status}, $r->{headers}{'retry-after'} // '-',
                     $r->{body};
}

my $b = '127.0.0.1:' . $t->port('B');
my @workers = $t->worker_pids;

for my $case (['loading', 503, sub { $t->zone_cmd('set', 'alpha', $b,
                                                  'loading', 3) }],
              ['stopped', 503, sub { $t->zone_cmd('set', 'alpha', $b,
                                                  'stopped', 3) }],
              ['deleted', 404, sub { $t->zone_cmd('del', 'alpha') }])
{
    my ($what, $status, $change) = @$case;

    $t->zone_cmd('set', 'alpha', $b, 'running', 2);
    is(http_get($port, 'alpha.apps.test', '/')->{body}, "B\n",
       'alpha runs on B');

    my $got = answer(upload_while($change));
    like($got, qr/^$status\|/, "alpha $what during an upload: $status");
    is($got, fresh(), '... the answer a new request gets');
}

# on a keepalive connection: answered, and the connection serves on
$t->zone_cmd('set', 'alpha', $b, 'running', 2);
my $conn = Shuttle::Test::Conn->new($port);
my $mark = $t->log_mark;
Shuttle::Test::_write_all($conn->sock,
    "POST /upload HTTP/1.1\r\nHost: alpha.apps.test\r\n"
    . "Content-Length: 40000\r\n\r\n" . ('x' x 30000), 5);
$t->wait_for_log(qr/client request body is buffered to a temporary/, 5,
                 from => $mark);
$t->zone_cmd('set', 'alpha', $b, 'loading', 4);
my $r = $conn->request('x' x 10000, method => 'POST');
is($r->{status}, 503, 'keepalive: the upload answered 503');
$t->zone_cmd('set', 'alpha', $b, 'running', 4);
$r = $conn->get('alpha.apps.test', '/next');
is("$r->{status} $r->{body}", "200 B\n", '... and the connection serves on');
$conn->close;

$t->zone_cmd('del', 'alpha');
like(fresh(), qr/^404\|-\|shuttle: no project "alpha"/,
     'a new request to a deleted project: 404');
unlike($t->error_log, qr/is "shuttle_apps" set in this server/,
       'no hint at a configuration error');
is("@{[ $t->worker_pids ]}", "@workers", 'no worker died');
unlike($t->error_log, qr/\[alert\]/, 'no alert in the error log');
like($t->access_log, qr/"POST \/upload HTTP\/1\.1" 503 /,
     'the access log has the 503 of an upload');

done_testing();
