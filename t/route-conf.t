#!/usr/bin/perl

# The routing directives as the operator writes them: nginx -t accepts
# the shipped example and refuses every misuse with a message that says
# what to change.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;

my $apps = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT_1%%;
        shuttle_apps apps.test;
        location / { proxy_pass http://apps; }
    }
EOF

# each: a name, the http block, the message nginx -t must print
my @misuse = (
    [ 'keepalive before shuttle_route',
      "shuttle_zone %%ZONE%%;\n"
      . "upstream apps { keepalive 8; shuttle_route; }\n" . $apps,
      qr/"shuttle_route" must come first in upstream "apps": "keepalive"/ ],

    [ 'server lines after shuttle_route',
      "shuttle_zone %%ZONE%%;\n"
      . "upstream apps { shuttle_route; server 127.0.0.1:1; }\n" . $apps,
      qr/upstream "apps" in \S+:\d+ has "shuttle_route" and "server"/ ],

    [ 'server lines before shuttle_route',
      "shuttle_zone %%ZONE%%;\n"
      . "upstream apps { server 127.0.0.1:1; shuttle_route; }\n" . $apps,
      qr/"shuttle_route" directive cannot be used with "server" directives: the peers come from the zone/ ],

    [ 'shuttle_route without shuttle_zone',
      "upstream apps { shuttle_route; }\n"
      . "server { listen 127.0.0.1:%%PORT_1%%; "
      . "location / { proxy_pass http://apps; } }\n",
      qr/upstream "apps" in \S+:\d+ has "shuttle_route" but the http block has no "shuttle_zone"/ ],

    [ 'shuttle_apps without shuttle_zone',
      "server { listen 127.0.0.1:%%PORT_1%%; shuttle_apps apps.test; }\n",
      qr/"shuttle_apps" needs "shuttle_zone" in the http block/ ],

    [ 'a domain that is not a host name',
      "shuttle_zone %%ZONE%%;\n"
      . "server { listen 127.0.0.1:%%PORT_1%%; shuttle_apps 'apps_!.test'; }\n",
      qr/invalid domain "apps_!.test" in "shuttle_apps"/ ],

    [ 'shuttle_zone twice',
      "shuttle_zone %%ZONE%%;\nshuttle_zone %%ZONE%%;\n",
      qr/"shuttle_zone" directive is duplicate/ ],

    [ 'shuttle_apps twice in a server',
      "shuttle_zone %%ZONE%%;\n"
      . "server { listen 127.0.0.1:%%PORT_1%%; shuttle_apps a.test; "
      . "shuttle_apps b.test; }\n",
      qr/"shuttle_apps" directive is duplicate/ ],

    [ 'shuttle_zone inside a server',
      "server { listen 127.0.0.1:%%PORT_1%%; shuttle_zone %%ZONE%%; }\n",
      qr/"shuttle_zone" directive is not allowed here/ ],

    # issue 11, item 1: the zone module copies an upstream's peers into
    # shared memory, and a shuttle_route upstream has none: nginx -t died
    # with SIGSEGV
    [ 'zone in a shuttle_route upstream',
      "shuttle_zone %%ZONE%%;\n"
      . "upstream apps { shuttle_route; zone apps 64k; }\n" . $apps,
      qr/upstream "apps" in \S+:\d+ has "shuttle_route" and "zone": its peer is chosen from the shuttle zone per request, remove "zone"/ ],

    [ 'zone before shuttle_route',
      "shuttle_zone %%ZONE%%;\n"
      . "upstream apps { zone apps 64k; shuttle_route; keepalive 4; }\n"
      . $apps,
      qr/upstream "apps" in \S+:\d+ has "shuttle_route" and "zone"/ ],

    # issue 21: a balancing method after shuttle_route takes its place;
    # nginx said "no servers in upstream"
    (map {
        [ "$_ after shuttle_route",
          "shuttle_zone %%ZONE%%;\n"
          . "upstream apps { shuttle_route; $_; keepalive 4; }\n" . $apps,
          qr/upstream "apps" in \S+:\d+ has "shuttle_route" and a balancing method after it \(least_conn, hash, ip_hash, random\): its peer comes from the zone, remove the method/ ]
    } 'least_conn', 'hash $host', 'hash $host consistent', 'ip_hash',
      'random', 'random two least_conn'),

    [ 'shuttle_route with an argument',
      "shuttle_zone %%ZONE%%;\nupstream apps { shuttle_route 1; }\n",
      qr/invalid number of arguments in "shuttle_route"/ ],

    [ 'shuttle_route outside an upstream',
      "shuttle_zone %%ZONE%%;\n"
      . "server { listen 127.0.0.1:%%PORT_1%%; shuttle_route; }\n",
      qr/"shuttle_route" directive is not allowed here/ ],
);

for my $case (@misuse) {
    my ($name, $conf, $want) = @$case;
    $t->write_nginx_conf($conf);
    my ($rc, $out) = Shuttle::Test::_capture($t->_nginx_cmd('-t'));
    ok($rc != 0, "nginx -t refuses: $name");
    is($rc & 127, 0, "... without dying of a signal: $name");
    like($out, $want, "... and says why: $name");
}

# a correct configuration, the shape of docs/operators-guide.md's
$t->write_nginx_conf(<<'EOF');
    shuttle_zone %%ZONE%%;
    upstream apps { shuttle_route; keepalive 8; }
    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps *.apps.test;
        location / { proxy_pass http://apps; }
    }
EOF
my ($ok, $out) = $t->nginx_test;
ok($ok, 'nginx -t accepts shuttle_zone + shuttle_route + keepalive + '
        . 'shuttle_apps with a wildcard domain') or diag $out;
ok(!-e $t->zone, 'nginx -t does not create the zone (the builder does)');

# the shipped example, with its paths moved into the test prefix
my $example = Shuttle::Test::repo() . '/conf/shuttle.conf.example';
open my $fh, '<', $example or die "$example: $!";
my $conf = do { local $/; <$fh> };
close $fh;

my $dir = $t->testdir;
my $port = $t->port(1);
$conf =~ s/^load_module .*\n//m
    or fail('the example loads the module');
$conf =~ s{/var/lib/shuttle/zone}{$dir/zone}g;
$conf =~ s{/var/log/nginx/}{$dir/}g;
$conf =~ s{/var/lib/shuttle/}{$dir/}g;
$conf =~ s{/run/shuttle/}{$dir/}g;
$conf =~ s{/etc/shuttle/}{$dir/}g;
$conf =~ s/\blisten\s+80\b/listen 127.0.0.1:$port/g;
$t->write_file('api_keys', '') if $conf =~ /api_keys/;

$t->write_nginx_conf($conf, full => 1);
($ok, $out) = $t->nginx_test;
ok($ok, 'nginx -t accepts conf/shuttle.conf.example') or diag $out;

done_testing;
