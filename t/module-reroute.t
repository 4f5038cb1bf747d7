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

done_testing();
