#!/usr/bin/perl

# shuttle-builder keys: add prints a new key once and appends
# NAME:sha256(key) to the keys file nginx reads; list; del; what they
# refuse.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $file = $t->testdir . '/etc/api_keys';

# (status, stdout, stderr)
sub keys_cmd {
    my (@args) = @_;
    my $err = $t->testdir . '/keys.stderr';
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', $err;
        exec Shuttle::Test::builder(), 'keys', '--file', $file, @args;
        die "exec: $!";
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return ($? >> 8, $out, $t->read_file($err) // '');
}

my ($rc, $out, $err) = keys_cmd('add', 'alice');
is($rc, 0, 'keys add alice');
like($out, qr/^sk_[0-9a-f]{64}\n\z/, '... prints the key, one line');
my ($alice) = $out =~ /^(\S+)/;
like($err, qr/reload nginx/i, '... and on stderr, that nginx must reload');
is($t->read_file($file), 'alice:' . sha256_hex($alice) . "\n",
   '... the file has alice:sha256(key)');
is((stat $file)[2] & 07777, 0640, '... created 0640');

($rc, $out) = keys_cmd('add', 'bob');
my ($bob) = $out =~ /^(\S+)/;
isnt($bob, $alice, 'keys add bob: another key');
is($t->read_file($file), 'alice:' . sha256_hex($alice) . "\n"
                         . 'bob:' . sha256_hex($bob) . "\n",
   '... appended');

($rc, $out, $err) = keys_cmd('add', 'alice');
is($rc, 1, 'a second alice: refused');
like($err, qr/key "alice" already exists/, "... it exists already");
is($out, '', '... and no key printed');

for my $bad ('a:b', 'a b', 'x' x 65, '') {
    ($rc, $out, $err) = keys_cmd('add', $bad);
    is($rc, 2, "name '$bad': refused");
    like($err, qr/not 1-64 of/, '... a usage error');
}

($rc, $out) = keys_cmd('list');
is($rc, 0, 'keys list');
is($out, "alice\nbob\n", '... the names');

($rc, $out, $err) = keys_cmd('del', 'alice');
is($rc, 0, 'keys del alice');
is($t->read_file($file), 'bob:' . sha256_hex($bob) . "\n",
   '... only bob is left');
is((stat $file)[2] & 07777, 0640, '... still 0640');

($rc, $out, $err) = keys_cmd('del', 'alice');
is($rc, 1, 'del alice again: refused');
like($err, qr/no key "alice"/, "... there is no such key");

($rc, $out, $err) = keys_cmd('frobnicate');
is($rc, 2, 'an unknown verb: usage error');

# many at once: the lock keeps every line
my @kids;
for my $i (1 .. 8) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec Shuttle::Test::builder(), 'keys', '--file', $file, 'add',
             "k$i";
        die "exec: $!";
    }
    push @kids, $pid;
}
waitpid($_, 0) for @kids;
($rc, $out) = keys_cmd('list');
is_deeply([ sort split /\n/, $out ], [ 'bob', map { "k$_" } 1 .. 8 ],
          'eight keys added at once: all there');
unlike($t->read_file($file), qr/^(?![A-Za-z0-9_.-]+:[0-9a-f]{64}$).*$/m,
       '... every line NAME:SHA256');

done_testing;
