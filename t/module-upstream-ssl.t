#!/usr/bin/perl

# Issue 21, item 1: "proxy_pass https://apps" (and grpcs://) to a
# "shuttle_route" upstream, with proxy_ssl_session_reuse on as by default.
# nginx asks the upstream's balancer for a TLS session to resume before
# the handshake and hands it the new one after; a balancer without those
# hooks made the worker call a NULL pointer (exited on signal 11), with
# "keepalive" in the upstream or without.  The TLS backends are servers of
# the same nginx, with a certificate made here.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $d = $t->testdir;

system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=backend.test"
       . " -days 2 -keyout $d/backend.key -out $d/backend.crt 2>/dev/null")
    == 0 or BAIL_OUT('openssl cannot make a certificate');

$t->write_nginx_conf(<<'EOF');
    shuttle_zone %%ZONE%%;

    upstream apps {
        shuttle_route;
        keepalive 8;
    }

    upstream apps_plain {
        shuttle_route;
    }

    upstream apps_grpc {
        shuttle_route;
        keepalive 2;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;

        location / {
            proxy_pass https://apps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location /plain/ {
            proxy_pass https://apps_plain;
        }

        location /grpc/ {
            grpc_pass grpcs://apps_grpc;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_T%% ssl http2;
        ssl_certificate %%TESTDIR%%/backend.crt;
        ssl_certificate_key %%TESTDIR%%/backend.key;
        access_log off;

        location / {
            return 200 "tls $ssl_protocol reused=$ssl_session_reused\n";
        }
    }
EOF

$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('T'), 'running', 1);

$t->run;

my $port = $t->port(1);
my @workers = $t->worker_pids;

sub workers_alive {
    my @now = $t->worker_pids;
    return "@now" eq "@workers" && $t->error_log !~ /exited on signal/;
}

my $r = http_get($port, 'alpha.apps.test', '/');
is($r->{status}, 200, 'proxy_pass https:// to a shuttle_route upstream '
                      . 'with keepalive: 200');
like($r->{body}, qr/^tls TLS/, '... from the TLS backend');
ok(workers_alive(), '... and no worker died')
    or diag($t->log_tail);

# the connection was kept: the next request goes over it
$r = http_get($port, 'alpha.apps.test', '/again');
is($r->{status}, 200, 'a second request: 200');

$r = http_get($port, 'alpha.apps.test', '/plain/');
is($r->{status}, 200, 'an upstream without keepalive: 200');
$r = http_get($port, 'alpha.apps.test', '/plain/2');
is($r->{status}, 200, '... again, after the first session was handed over');
like($r->{body}, qr/reused=\./, '... a new handshake: sessions are not '
                                . 'resumed across requests');
ok(workers_alive(), '... and no worker died')
    or diag($t->log_tail);

$r = http_get($port, 'alpha.apps.test', '/grpc/');
is($r->{status}, 200,
   'grpc_pass grpcs:// to a shuttle_route upstream: 200');
ok(workers_alive(), '... and no worker died')
    or diag($t->log_tail);

done_testing();
