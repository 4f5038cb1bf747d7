#!/usr/bin/perl

# Issue 11, item 3: the module's refusals answer at once, without the
# "100 Continue" that would invite a client to upload a body only to have
# it thrown away, as nginx's own error pages do.  /deploy with a bad name
# (a good key), shuttle_auth without a key, and the apps' 503 (no zone),
# 404 (no such project) and 503 (not running): each answered to a request
# that says "Expect: 100-continue" and sends no body, with no 100 first.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Digest::SHA qw(sha256_hex);
use Shuttle::Test;

my $t = Shuttle::Test->new;

my $alice = 'sk_' . ('a1' x 32);
$t->write_file('api_keys', 'alice:' . sha256_hex($alice) . "\n");

$t->write_nginx_conf(<<'EOF2');
    shuttle_zone %%ZONE%%;
    shuttle_builder unix:%%TESTDIR%%/builder.sock;

    upstream apps {
        shuttle_route;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name api.test;
        shuttle_api_keys %%TESTDIR%%/api_keys;
        client_max_body_size 10m;

        location = /deploy { shuttle_deploy; }

        location /v1/ {
            shuttle_auth on;
            proxy_pass http://127.0.0.1:%%PORT_B%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;
        client_max_body_size 10m;

        location / {
            proxy_pass http://apps;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_B%%;
        location / { return 200 "backend\n"; }
    }
EOF2

$t->run;

my $port = $t->port(1);

# a request announcing a 5 MB body it does not send: the answer as it
# came, read until nginx closes or for 5 s (a wanted upload waits)
sub expecting {
    my ($method, $host, $uri, @headers) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port)
        or die "connect: $!";
    print $s "$method $uri HTTP/1.1\r\nHost: $host\r\n"
             . "Content-Length: 5000000\r\nExpect: 100-continue\r\n"
             . join('', map { "$_\r\n" } @headers)
             . "Connection: close\r\n\r\n";
    my ($raw, $sel, $end) = ('', IO::Select->new($s), time + 5);
    while (time < $end && $sel->can_read($end - time)) {
        my $n = sysread($s, my $buf, 4096);
        last unless $n;
        $raw .= $buf;

        # a whole final answer: its head and Content-Length bytes
        (my $final = $raw) =~ s{^(HTTP/1\.1 1\d\d [^\r]*\r\n\r\n)+}{};
        last if $final =~ /\r\n\r\n/
                && $final =~ /^Content-Length: (\d+)\r$/mi
                && length(substr($final, index($final, "\r\n\r\n") + 4))
                   >= $1;
    }
    close $s;
    return $raw;
}

sub no_continue {
    my ($raw, $status, $what) = @_;
    like($raw, qr{^HTTP/1\.1 $status }, "$what: $status");
    unlike($raw, qr{^HTTP/1\.1 100 }, "... without a 100 Continue first");
}

no_continue(expecting('POST', 'api.test', '/deploy?project=Bad_Name',
                      "Authorization: Bearer $alice"),
            400, '/deploy, a good key, a bad name');
no_continue(expecting('POST', 'api.test', '/deploy?project=hello'),
            401, '/deploy without a key');
no_continue(expecting('POST', 'api.test', '/v1/projects'),
            401, 'shuttle_auth without a key');

no_continue(expecting('POST', 'alpha.apps.test', '/'), 503,
            'an app, no zone yet');

$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('B'), 'building', 3);

# a worker that found no zone looks again in the next second
$t->wait_until(sub { http_get($port, 'nosuch.apps.test', '/')->{status}
                     == 404 }, 3);

no_continue(expecting('POST', 'nosuch.apps.test', '/'), 404,
            'an app that does not exist');
no_continue(expecting('PUT', 'alpha.apps.test', '/'), 503,
            'an app that is building');

# a key that is good and a name that is good: the upload is wanted
like(expecting('POST', 'api.test', '/deploy?project=hello',
               "Authorization: Bearer $alice"),
     qr{^HTTP/1\.1 100 Continue\r\n}, 'a good key and name: 100 Continue, '
     . 'the upload is wanted');

done_testing();
