#!/usr/bin/perl

# Hostile uploads: a tarball with a symbolic link, a hard link, a "../"
# entry or an absolute path, and one that is not a gzip'd tar at all.
# Each fails its deployment with a reason naming the entry; nothing of it
# stays on disk (the deployment keeps only its build.log), nothing lands
# outside, and the running deployment keeps serving.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;

my $t = Shuttle::Test->new;
my $d = $t->testdir;
my $hello = Shuttle::Test::repo() . '/examples/hello';

sub tar {
    my ($out, @args) = @_;
    system('tar', 'czf', "$d/$out", @args) == 0 or die "tar czf $out: $?";
    return "$d/$out";
}

# a project with one more entry than hello's
sub project {
    my ($name) = @_;
    $t->write_file("$name/src/main.c",
                   $t->read_file("$hello/src/main.c"));
    return "$d/$name";
}

my %bad;

project('symlink');
symlink '/etc/passwd', "$d/symlink/src/evil" or die "symlink: $!";
$bad{symlink} = [ tar('symlink.tar.gz', '-C', "$d/symlink", '.'),
                  qr{src/evil.*symbolic link} ];

project('hardlink');
link "$d/hardlink/src/main.c", "$d/hardlink/src/again.c" or die "link: $!";
$bad{hardlink} = [ tar('hardlink.tar.gz', '-C', "$d/hardlink", '.'),
                   qr{src/(main|again)\.c.*hard link} ];

project('dotdot');
$t->write_file('escape.c', "int escaped;\n");
$bad{dotdot} = [ tar('dotdot.tar.gz', '-C', "$d/dotdot", '-P',
                     './src/main.c', '../escape.c'),
                 qr{\.\./escape\.c.*\.\.} ];

project('absolute');
$bad{absolute} = [ tar('absolute.tar.gz', '-P', "$d/absolute/src/main.c"),
                   qr{\Q$d\E/absolute/src/main\.c.*absolute} ];

$t->write_file('garbage.tar.gz', "this is not gzip\n" x 10);
$bad{garbage} = [ "$d/garbage.tar.gz", qr{upload: not a gzip'd tar archive} ];

$t->builder_start;

my $r = $t->deploy('hello', $hello);
my $good = $t->wait_deployment('alice', $r->{json}{id}, qr/^running$/);

for my $case (sort keys %bad) {
    my ($tarball, $why) = @{ $bad{$case} };

    $r = $t->deploy('hello', $tarball);
    is($r->{status}, 202, "$case: accepted for a build");
    my $id = $r->{json}{id};

    my $dep = $t->wait_deployment('alice', $id, qr/^(running|failed)$/);
    is($dep->{state}, 'failed', "$case: #$id failed");
    like($dep->{reason}, $why, "... reason: $dep->{reason}");

    my $dir = $t->builder_data . "/projects/hello/deployments/$id";
    opendir my $dh, $dir or die "$dir: $!";
    is_deeply([ sort grep { !/^\.\.?$/ } readdir $dh ], ['build.log'],
              '... nothing left in its directory but build.log');

    like($t->api('alice', 'GET', "/v1/deployments/$id/logs")->{body},
         qr/^shuttle: failed: .*$why/m, '... whose last line says why');
}

ok(!-e $t->builder_data . '/projects/hello/deployments/escape.c'
   && !-e $t->builder_data . '/projects/hello/escape.c',
   'the ../ entry landed nowhere');

is(http_get($good->{port}, 'localhost', '/hello')->{body}, "Hello, world!\n",
   'the running deployment still serves');
is($t->api('alice', 'GET', '/v1/projects/hello')->{json}{current},
   $good->{id}, '... and is still current');

$r = $t->deploy('evil', $bad{symlink}[0]);
$t->wait_deployment('alice', $r->{json}{id}, qr/^failed$/);
like($t->zone_cmd('list'), qr/^evil failed 0\.0\.0\.0:0 $r->{json}{id}$/m,
     'a new project whose first upload is refused: zone failed');

done_testing;
