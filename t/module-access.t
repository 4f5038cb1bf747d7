#!/usr/bin/perl

# Issue 11, item 5: the apps' lookup runs after nginx's own access
# controls (the precontent phase), so limit_req throttles a flood of
# random Hosts, and deny and auth_basic keep a project's name, state and
# deployment out of the answers to those they refuse.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;

# "user:password" for auth_basic, with crypt()
$t->write_file('htpasswd', 'ann:' . crypt('secret', 'ab') . "\n");

$t->write_nginx_conf(<<'EOF2');
    shuttle_zone %%ZONE%%;

    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    limit_req_status 429;

    upstream apps {
        shuttle_route;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;

        location / {
            proxy_pass http://apps;
        }

        location /limited/ {
            limit_req zone=one burst=1 nodelay;
            proxy_pass http://apps;
        }

        location /denied/ {
            deny all;
            proxy_pass http://apps;
        }

        location /private/ {
            auth_basic "apps";
            auth_basic_user_file %%TESTDIR%%/htpasswd;
            proxy_pass http://apps;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_A%%;
        location / { return 200 "A $uri\n"; }
    }
EOF2

$t->zone_cmd('set', 'alpha', '127.0.0.1:' . $t->port('A'), 'running', 7);
$t->zone_cmd('set', 'beta', '127.0.0.1:' . $t->port('A'), 'building', 8);
$t->run;

my $port = $t->port(1);
sub get { http_get($port, @_) }

my $r = get('alpha.apps.test', '/x');
is($r->{body}, "A /x\n", 'alpha is routed');

# deny: 403 for every Host, known or not, nothing about the project
for my $host ('alpha', 'beta', 'nosuch') {
    $r = get("$host.apps.test", '/denied/x');
    is($r->{status}, 403, "deny all: $host: 403");
    unlike($r->{body}, qr/shuttle|project|deployment/,
           "... the answer says nothing of $host");
}

# auth_basic: 401 before any lookup; with the password, the lookup
for my $host ('beta', 'nosuch') {
    $r = get("$host.apps.test", '/private/x');
    is($r->{status}, 401, "auth_basic without a password: $host: 401");
    unlike($r->{body}, qr/shuttle|building|no project/,
           '... nothing of the project');
}
$r = get('nosuch.apps.test', '/private/x',
         headers => [Authorization => 'Basic ' . 'YW5uOnNlY3JldA==']);
is($r->{status}, 404, 'with the password: the lookup answers, 404');

# limit_req: a flood of random Hosts is throttled like any other
my %status;
for my $i (1 .. 10) {
    $status{ get("random$i.apps.test", '/limited/x')->{status} }++;
}
ok(($status{429} // 0) >= 8,
   'limit_req: 10 random Hosts, ' . ($status{429} // 0) . ' throttled (429)');
ok(($status{404} // 0) <= 2, '... at most the burst looked up (404)');

unlike($t->error_log, qr/\[(alert|crit|emerg)\]|exited on signal/,
       'no alert in the error log');

done_testing();
