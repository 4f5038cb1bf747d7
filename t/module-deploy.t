#!/usr/bin/perl

# Issue 11, item 10 (the hand-off): the builder's answer may fill the
# module's buffer exactly (4096 bytes) and is relayed; one byte more is a
# 502; a builder that takes the hand-off and never answers is a 504 after
# one shuttle_builder_timeout for the whole hand-off, the outcome being
# unknown.  Issue 21: an if block in, and a location nested in, a deploy
# location; an empty answer; a late one.  The builder here is a fake on
# the unix socket, answering what each case asks.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(time);
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $alice = 'sk_' . ('a1' x 32);
$t->write_file('api_keys', 'alice:' . sha256_hex($alice) . "\n");

$t->write_nginx_conf(<<'EOF2');
    shuttle_zone %%ZONE%%;
    shuttle_builder unix:%%TESTDIR%%/fake.sock;
    shuttle_builder_timeout 1s;

    server {
        listen 127.0.0.1:%%PORT_1%%;
        shuttle_api_keys %%TESTDIR%%/api_keys;
        location = /deploy {
            shuttle_deploy;

            if ($arg_via = if) {
                set $via if;
            }
        }

        location /up/ {
            shuttle_deploy;

            location /up/inner/ {
                proxy_pass http://127.0.0.1:%%PORT_B%%;
            }

            location /up/again/ {
                shuttle_deploy;
            }
        }

        location = /metrics { shuttle_metrics; }
    }

    server {
        listen 127.0.0.1:%%PORT_B%%;
        access_log off;
        location / { return 200 "B got $content_length\n"; }
    }
EOF2

$t->run;

my $sock = $t->testdir . '/fake.sock';
my $mode = $t->testdir . '/mode';

# the fake builder: per connection, what the file "mode" says (a
# connection at a time, but one that waits does so in a child of its own)
my $listen = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $sock,
                                   Listen => 8) or die "$sock: $!";
chmod 0777, $sock;
my $fake = fork // die "fork: $!";
if ($fake == 0) {
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $listen->accept) {
        my $what = do { open my $fh, '<', $mode; local $/; <$fh> } // '';
        if ($what eq 'silent' || $what eq 'late') {
            my $pid = fork // die "fork: $!";
            if ($pid) {
                close $c;
                next;
            }
        }
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            sysread($c, $req, 4096, length $req) or last;
        }
        if ($what =~ /^size (\d+)$/) {
            my $head = "HTTP/1.0 202 Accepted\r\n"
                       . "Content-Type: application/json\r\n\r\n";
            my $body = '{"id":1,"pad":"';
            my $pad = $1 - length($head) - length($body) - 3;
            print $c $head . $body . ('x' x $pad) . "\"}\n";
            close $c;
        } elsif ($what eq 'silent') {
            sleep 5;
            close $c;
        } elsif ($what eq 'accept') {
            my ($file) = $req =~ /[?&]file=([^&\s]+)/;
            print $c "HTTP/1.0 202 Accepted\r\n"
                     . "Content-Type: application/json\r\n\r\n"
                     . "{\"id\":2,\"file\":\"$file\"}\n";
            close $c;
        } elsif ($what eq 'empty') {
            print $c "HTTP/1.0 202 Accepted\r\n"
                     . "Content-Type: application/json\r\n\r\n";
            close $c;
        } elsif ($what eq 'late') {
            my ($file) = $req =~ /[?&]file=([^&\s]+)/;
            open my $fh, '>', "$mode.file";
            print $fh $file;
            close $fh;
            sleep 2;
            print $c "HTTP/1.0 202 Accepted\r\n\r\n{\"id\":3}\n";
            close $c;
        }
        POSIX::_exit(0) if $what eq 'silent' || $what eq 'late';
    }
    POSIX::_exit(0);
}
close $listen;
END { kill 'KILL', $fake if $fake; }

my $port = $t->port(1);

sub deploy {
    my ($what, $uri) = @_;
    $t->write_file('mode', $what);
    return http_get($port, 'api.test', $uri // '/deploy?project=hello',
                    method => 'POST', body => 'x' x 100,
                    headers => [Authorization => "Bearer $alice",
                                'Content-Type' => 'application/gzip']);
}

my $r = deploy('size 4096');
is($r->{status}, 202, 'an answer of exactly 4096 bytes: relayed, 202');
like($r->{body}, qr/^\{"id":1,"pad":"x+"\}\n\z/, '... whole');

$r = deploy('size 4097');
is($r->{status}, 502, 'one byte more: 502');
like($r->{body}, qr/invalid answer from the builder/, '... says so');

my $t0 = time;
$r = deploy('silent');
my $took = time - $t0;
is($r->{status}, 504, 'a builder that never answers: 504 (it has the '
                      . 'hand-off: the outcome is unknown)');
ok($took >= 0.9 && $took < 1.9,
   sprintf('... after one shuttle_builder_timeout (%.2f s)', $took));


# issue 21, item 3: an "if" block in a shuttle_deploy location serves its
# uploads; they go to the spool too (not to "/"), and are counted
my $spool = $t->testdir . '/spool';
$r = deploy('accept', '/deploy?project=hello&via=if');
is($r->{status}, 202, 'through an "if" block in the deploy location: 202')
    or diag($r->{body});
my ($file) = ($r->{body} // '') =~ /"file":"(\d+)"/;
ok(defined $file && -f "$spool/$file",
   '... the upload is in the spool, for the builder');
ok(!-e '/0000000001', '... not in /');

my $deploys = sub {
    my $m = http_get($port, 'api.test', '/metrics')->{body} // '';
    return $m =~ /^shuttle_deploy_requests_total\{class="2xx"\} (\d+)$/m
           ? $1 : -1;
};
$t->wait_until(sub { $deploys->() == 2 }, 5);
is($deploys->(), 2, '... and counted as a deploy, as the first one was');

# a deploy location nested in one is one too
$r = deploy('accept', '/up/again/?project=hello');
($file) = ($r->{body} // '') =~ /"file":"(\d+)"/;
ok($r->{status} == 202 && defined $file && -f "$spool/$file",
   'a shuttle_deploy location nested in another: 202, in the spool');

# a location nested in one keeps nginx's own temporary files
$r = http_get($port, 'api.test', '/up/inner/x', method => 'POST',
              body => 'y' x 40000);
is($r->{status}, 200, 'a location nested in a deploy location proxies '
                      . 'an upload: 200') or diag($r->{body});
is($r->{body}, "B got 40000\n", '... the whole body');
unlike($t->error_log, qr/open\(\) "\/\d+"/, 'no body file opened in /');

# issue 21, item 4: a builder that answers with an empty body; the
# answer reaches an HTTP/1.1 client on a kept-alive connection at once
$t->write_file('mode', 'empty');
$t0 = time;
my ($e) = eval {
    http_keepalive($port, 'api.test',
                   { path => '/deploy?project=hello', method => 'POST',
                     body => 'x' x 100,
                     headers => [Authorization => "Bearer $alice"] });
};
is($e && $e->{status}, 202, 'an empty answer of the builder: 202 on a '
                            . 'kept-alive connection') or diag($@);
ok(time - $t0 < 0.9, sprintf('... at once (%.2f s)', time - $t0));
is($e && $e->{headers}{'content-length'}, '0', '... with an empty body');

# issue 21, item 7: a builder that has the whole hand-off but answers
# after shuttle_builder_timeout may have queued the upload: the client
# is told the outcome is unknown, and the file is left to the builder
unlink "$mode.file";
$r = deploy('late');
is($r->{status}, 504, 'a builder that answers too late: 504');
like($r->{body}, qr/did not answer in time: whether it queued the upload is unknown/,
     '... the outcome is unknown, says the answer');
my $late = $t->read_file('mode.file') // '';
ok($late ne '' && -f "$spool/$late", '... and the upload is left in the '
                                     . 'spool for the builder');

unlike($t->error_log, qr/\[alert\]|\[crit\]|exited on signal/,
       'no alert, no crit');

done_testing();
