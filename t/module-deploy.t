#!/usr/bin/perl

# Issue 11, item 10 (the hand-off): the builder's answer may fill the
# module's buffer exactly (4096 bytes) and is relayed; one byte more is a
# 502; a builder that takes the connection and never answers is a 503
# after one shuttle_builder_timeout for the whole hand-off.  The builder
# here is a fake on the unix socket, answering what each case asks.

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
        location = /deploy { shuttle_deploy; }
    }
EOF2

$t->run;

my $sock = $t->testdir . '/fake.sock';
my $mode = $t->testdir . '/mode';

# the fake builder: per connection, what the file "mode" says
my $listen = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $sock,
                                   Listen => 8) or die "$sock: $!";
chmod 0777, $sock;
my $fake = fork // die "fork: $!";
if ($fake == 0) {
    while (my $c = $listen->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            sysread($c, $req, 4096, length $req) or last;
        }
        my $what = do { open my $fh, '<', $mode; local $/; <$fh> } // '';
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
        }
    }
    POSIX::_exit(0);
}
close $listen;
END { kill 'KILL', $fake if $fake; }

my $port = $t->port(1);

sub deploy {
    my ($what) = @_;
    $t->write_file('mode', $what);
    return http_get($port, 'api.test', '/deploy?project=hello',
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
is($r->{status}, 503, 'a builder that never answers: 503');
ok($took >= 0.9 && $took < 1.9,
   sprintf('... after one shuttle_builder_timeout (%.2f s)', $took));

unlike($t->error_log, qr/\[alert\]|exited on signal/, 'no alert');

done_testing();
