#!/usr/bin/perl

# examples/guestbook, sandboxed, on a PostgreSQL server reached through
# its unix socket: the builder's admin DSN names the socket's directory,
# which each loader's sandbox then sees (read-only) and nothing else of
# the server's.  (t/resources.t runs it over TCP.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

plan skip_all => 'the sandbox takes root' if $> != 0;

my $p = Shuttle::Platform->new(postgres => 'socket');
my $repo = Shuttle::Test::repo();

like($p->builder_log, qr/sandbox: mount, pid, network namespaces/,
     'a sandboxed builder');

my ($rc, $out, $err) = $p->cli(['deploy', "$repo/examples/guestbook"]);
is($rc, 0, 'guestbook deploys against PostgreSQL over its socket')
    or diag $err, $p->builder_log;

my $r = http_get($p->port, 'guestbook.localhost', '/api/entries',
                 method => 'POST',
                 body => encode_json({ name => 'Ann', message => 'Hi' }),
                 headers => ['Content-Type' => 'application/json']);
is($r->{status}, 201, 'POST an entry: 201') or diag $r->{body};

$r = http_get($p->port, 'guestbook.localhost', '/api/entries');
my $entries = eval { decode_json($r->{body}) } // [];
is($entries->[0]{name}, 'Ann', '... and it reads back');

($rc, $out) = $p->cli(['status', 'guestbook']);
like($out, qr/postgres\s+main \(database shuttle_guestbook_main on /,
     'status names the database');

$p->stop;

done_testing();
