#!/usr/bin/perl

# The builder started with an operator's umask of 077: its files and the
# projects' sandboxes have their modes all the same.  Before, every build
# failed ("exec /usr/bin/cc: Permission denied": the sandbox's new root
# was made 0700, which the project's uid could not enter), and so did a
# build that raced the builder's own umask(077) around binding its socket
# at start (make faults found it: a deployment rebuilt after a crash).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Platform;

my $old = umask 077;
my $p = Shuttle::Platform->new;     # the builder starts with umask 077
umask $old;

my $dir = $p->testdir . '/hello';
system('cp', '-a', Shuttle::Test::repo() . '/examples/hello', $dir) == 0
    or die "cp examples/hello: $?";

my ($rc, $out, $err) = $p->cli(['deploy'], dir => $dir);
is($rc, 0, 'shuttle deploy: exit 0') or diag $err;
unlike($err, qr/Permission denied/, '... no "Permission denied"');
is($p->app_get('hello', '/hello')->{body}, "Hello, world!\n",
   'the project answers through nginx');

my $data = $p->t->builder_data;
is(sprintf('%04o', (stat "$data/projects")[2] & 07777), '0700',
   'the projects directory is 0700, root\'s alone, whatever the umask');
is(sprintf('%04o', (stat "$data/static")[2] & 07777), $> ? '0755' : '0750',
   'the static files\' directory is 0750 (nginx\'s group), as its '
   . 'workers need');

done_testing;
