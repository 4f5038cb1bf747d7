#!/usr/bin/perl

# The API host's side of nginx, with no builder listening: bearer keys
# checked before the body is read, $shuttle_key for the proxied API,
# project names, the size limit, the spool left clean after every refusal,
# and 503 when the builder cannot be reached.  The hand-off to a real
# builder is t/deploy.t.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Digest::SHA qw(sha256_hex);
use Shuttle::Test qw(:DEFAULT http_request);

my $t = Shuttle::Test->new;

my $alice = 'sk_' . ('a1' x 32);
my $bob = 'sk_' . ('b2' x 32);

$t->write_file('api_keys', "# name:sha256(key)\n"
               . 'alice:' . sha256_hex($alice) . "\n\n"
               . 'bob:' . uc(sha256_hex($bob)) . "\r\n");

my $http = <<'EOF';
    shuttle_zone %%ZONE%%;
    shuttle_builder unix:%%TESTDIR%%/builder.sock;

    server {
        listen 127.0.0.1:%%PORT_1%%;
        shuttle_api_keys %%TESTDIR%%/api_keys;
        client_max_body_size 1k;

        location = /deploy { shuttle_deploy; }

        location /v1/ {
            shuttle_auth on;
            proxy_set_header X-Shuttle-Key $shuttle_key;
            proxy_pass http://127.0.0.1:%%PORT_B%%;
        }

        location /open/ {
            proxy_pass http://127.0.0.1:%%PORT_B%%;
        }

        location /pages/ {
            shuttle_auth on;
            error_page 401 = @nokey;
            proxy_pass http://127.0.0.1:%%PORT_B%%;
        }

        location @nokey {
            return 401 "see the operator's page\n";
        }

        location /local/ {
            satisfy any;
            allow 127.0.0.1;
            deny all;
            shuttle_auth on;
            proxy_pass http://127.0.0.1:%%PORT_B%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_B%%;
        location / { return 200 "key=$http_x_shuttle_key uri=$uri\n"; }
    }
EOF

$t->write_nginx_conf($http);
$t->run;

my $port = $t->port(1);
my $spool = $t->testdir . '/spool';

sub deploy {
    my ($query, $key, $body, %o) = @_;
    my @h = ('Content-Type' => 'application/gzip');
    push @h, Authorization => "Bearer $key" if defined $key;
    push @h, @{ $o{headers} // [] };
    return http_get($port, 'api.test', "/deploy$query", method => 'POST',
                    headers => \@h, body => $body // 'x' x 100, %o);
}

# the spool holds no upload once the request is over
sub spool_clean {
    my $until = time + 3;
    my @left;
    do {
        opendir my $d, $spool or return 0;
        @left = grep { !/^\.\.?$/ } readdir $d;
        closedir $d;
        return 1 unless @left;
        select undef, undef, undef, 0.02;
    } while (time < $until);
    diag "left in the spool: @left";
    return 0;
}

ok(-d $spool, 'nginx created the spool beside the zone');
is((stat $spool)[4], scalar getpwnam('nobody'),
   '... owned by the workers\' user');


# keys ---------------------------------------------------------------------

my $r = deploy('?project=hello', undef);
is($r->{status}, 401, 'no key: 401');
is($r->{headers}{'www-authenticate'}, 'Bearer realm="shuttle"',
   'no key: WWW-Authenticate: Bearer');
is($r->{headers}{'content-type'}, 'application/json', 'no key: JSON');
like($r->{body}, qr/^\{"error":"missing bearer key: send \\"Authorization: Bearer <key>\\""\}$/,
     'no key: says how to send one');

$r = deploy('?project=hello', 'sk_wrong');
is($r->{status}, 401, 'unknown key: 401');
like($r->{body}, qr/"error":"invalid bearer key"/, 'unknown key: says so');

$r = deploy('?project=hello', $alice, undef,
            headers => [Authorization => "Basic $alice"]);
is($r->{status}, 401, 'a key in another scheme: 401');

# the body is not read: no "100 Continue" goes out before the 401
my $raw = "POST /deploy?project=hello HTTP/1.1\r\nHost: api.test\r\n"
          . "Content-Length: 500\r\nExpect: 100-continue\r\n"
          . "Connection: close\r\n\r\n";
$r = http($port, $raw);
is($r->{status}, 401, 'Expect: 100-continue without a key: 401');
ok(!@{ $r->{informational} // [] }, '... without a 100 Continue first');
ok(spool_clean(), 'refused uploads leave nothing in the spool');


# names ----------------------------------------------------------------------

for my $q ('', '?name=hello', '?project=', '?project=Hello',
           '?project=a_b', '?project=-x', '?project=' . ('x' x 64),
           '?project=a%2Fb')
{
    $r = deploy($q, $alice);
    is($r->{status}, 400, "\"/deploy$q\": 400");
    like($r->{body}, qr/^\{"error":"(missing \?project=NAME|.* is not a project name \(a DNS label)/,
         "\"/deploy$q\": says what a name is");
}

$r = http_get($port, 'api.test', '/deploy?project=hello',
              headers => [Authorization => "Bearer $alice"]);
is($r->{status}, 405, 'GET /deploy: 405');
is($r->{headers}{allow}, 'POST', '... Allow: POST');


# size, emptiness, no builder ------------------------------------------------------

$r = deploy('?project=hello', $alice, 'x' x 2000);
is($r->{status}, 413, 'over client_max_body_size: 413');

$r = http($port, "POST /deploy?project=hello HTTP/1.1\r\nHost: api.test\r\n"
                 . "Authorization: Bearer $alice\r\n"
                 . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 . "400\r\n" . ('y' x 1024) . "\r\n400\r\n" . ('y' x 1024)
                 . "\r\n0\r\n\r\n");
is($r->{status}, 413, 'a chunked body over the limit: 413');

$r = deploy('?project=hello', $alice, '');
is($r->{status}, 400, 'empty upload: 400');
like($r->{body}, qr/empty upload/, 'empty upload: says so');

my $mark = $t->log_mark;
$r = deploy('?project=hello', $bob, 'z' x 500);
is($r->{status}, 503, 'builder not running: 503');
like($r->{body}, qr/^\{"error":"deploy \\"hello\\": cannot connect to the builder \(unix:\S+builder\.sock\)"\}$/,
     'builder not running: says so, naming the socket');
ok($t->wait_for_log(qr/\[error\].*connect\(\) to unix:\S+builder\.sock failed/,
                    5, from => $mark),
   '... and the error log names it too, as an error (a client cannot '
   . 'cause a [crit])');
ok(spool_clean(), 'nothing is left in the spool');


# shuttle_auth for the proxied API --------------------------------------------------

$r = http_get($port, 'api.test', '/v1/projects',
              headers => [Authorization => "Bearer $alice"]);
is($r->{status}, 200, 'shuttle_auth: a key passes');
is($r->{body}, "key=alice uri=/v1/projects\n",
   '... and $shuttle_key names it to the builder');

$r = http_get($port, 'api.test', '/v1/projects',
              headers => [Authorization => "bearer  $bob "]);
is($r->{body}, "key=bob uri=/v1/projects\n",
   'scheme case and spaces do not matter; hashes in upper case load too');

$r = http_get($port, 'api.test', '/v1/projects',
              headers => ['X-Shuttle-Key' => 'alice']);
is($r->{status}, 401, 'shuttle_auth: no key: 401, X-Shuttle-Key alone '
                      . 'is not a key');
is($r->{headers}{'www-authenticate'}, 'Bearer realm="shuttle"',
   '... WWW-Authenticate: Bearer');
like($r->{body}, qr/401 Authorization Required/,
     '... nginx finalizes it, as for auth_basic (issue 11, item 6)');

# error_page 401 and satisfy any apply to shuttle_auth as to auth_basic
$r = http_get($port, 'api.test', '/pages/x');
is($r->{status}, 401, 'error_page 401: 401');
is($r->{body}, "see the operator's page\n", '... the operator\'s page');
$r = http_get($port, 'api.test', '/local/x');
is($r->{status}, 200, 'satisfy any with allow 127.0.0.1: no key needed');
is($r->{body}, "key= uri=/local/x\n", '... and no key named');

$r = http_get($port, 'api.test', '/open/x',
              headers => ['X-Shuttle-Key' => 'alice']);
is($r->{status}, 200, 'a location without shuttle_auth is open');

unlike($t->error_log, qr/\[(alert|crit|emerg)\]/,
       'no alert, crit or emerg in the error log');


# configuration errors ---------------------------------------------------------------

$t->stop;

my @bad = (
    [ 'a keys line that is not name:sha256',
      "alice:1234\n", $http,
      qr/shuttle_api_keys: "\S+api_keys" line 1 is not "name:sha256-hex"/ ],
    [ 'a key name with a space',
      'al ice:' . sha256_hex('x') . "\n", $http,
      qr/line 1 is not "name:sha256-hex"/ ],
    [ 'a missing keys file',
      undef, $http =~ s/api_keys;/no_such_keys;/r,
      qr/shuttle_api_keys: cannot open "\S+no_such_keys"/ ],
    [ 'shuttle_deploy without keys',
      '', $http =~ s/shuttle_api_keys [^;]+;//r,
      qr/"shuttle_deploy" needs "shuttle_api_keys"/ ],
    [ 'shuttle_deploy without shuttle_builder',
      '', $http =~ s/shuttle_builder [^;]+;//r,
      qr/"shuttle_deploy" needs "shuttle_builder" in the http block/ ],
    [ 'shuttle_builder not on a unix socket',
      '', $http =~ s/unix:%%TESTDIR%%\/builder\.sock/127.0.0.1:9/r,
      qr/"shuttle_builder" takes the builder's socket as unix:PATH/ ],
    [ 'shuttle_deploy with neither shuttle_spool nor shuttle_zone',
      '', $http =~ s/shuttle_zone [^;]+;//r,
      qr/"shuttle_deploy" needs "shuttle_spool"/ ],

    # issue 11, item 10: the location's own client_body_temp_path would be
    # overridden silently (uploads go to the builder's spool): refused
    [ 'client_body_temp_path before shuttle_deploy',
      '', $http =~ s{location = /deploy \{ shuttle_deploy; \}}
                    {location = /deploy { client_body_temp_path %%TESTDIR%%/x; shuttle_deploy; }}r,
      qr/"shuttle_deploy" directive cannot share a location with "client_body_temp_path": its uploads go to the builder's spool \(shuttle_spool\)/ ],
    # issue 21: nginx said "directive is duplicate"
    [ 'client_body_temp_path after shuttle_deploy',
      '', $http =~ s{location = /deploy \{ shuttle_deploy; \}}
                    {location = /deploy { shuttle_deploy; client_body_temp_path %%TESTDIR%%/x; }}r,
      qr/location "\/deploy" has "shuttle_deploy" and "client_body_temp_path": its uploads go to the builder's spool \(shuttle_spool\), remove "client_body_temp_path"/ ],

    # issue 21: proxy_pass took the location over silently
    [ 'proxy_pass after shuttle_deploy',
      '', $http =~ s{location = /deploy \{ shuttle_deploy; \}}
                    {location = /deploy { shuttle_deploy; proxy_pass http://127.0.0.1:9; }}r,
      qr/location "\/deploy" has "shuttle_deploy" and another content handler \("proxy_pass" or the like\): one of them answers, remove the other/ ],
    [ 'proxy_pass after shuttle_metrics',
      '', $http =~ s{location = /deploy \{ shuttle_deploy; \}}
                    {location = /deploy { shuttle_deploy; }
                     location = /m { shuttle_metrics; proxy_pass http://127.0.0.1:9; }}r,
      qr/location "\/m" has "shuttle_metrics" and another content handler \("proxy_pass" or the like\): one of them answers, remove the other/ ],
);

for my $case (@bad) {
    my ($name, $keys, $conf, $want) = @$case;
    $t->write_file('api_keys', $keys) if defined $keys;
    $t->write_nginx_conf($conf);
    my ($ok, $out) = $t->nginx_test;
    ok(!$ok, "nginx -t refuses: $name");
    like($out, $want, "... and says why: $name");
}

$t->write_file('api_keys', '');
$t->write_nginx_conf($http =~ s/shuttle_zone [^;]+;/shuttle_spool %%TESTDIR%%\/up;/r);
my ($ok, $out) = $t->nginx_test;
ok($ok, 'shuttle_spool instead of shuttle_zone, an empty keys file: fine')
    or diag $out;

done_testing;
