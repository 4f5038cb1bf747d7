#!/usr/bin/perl

# No include circle between the project's own files (t/check-includes.pl,
# also make check-includes): the project passes, and a circle planted in a
# copy of two of its headers is found and named.

use strict;
use warnings;

use FindBin;
use File::Temp qw(tempdir);
use Test::More tests => 4;

my $root = "$FindBin::Bin/..";
my $check = "$FindBin::Bin/check-includes.pl";

my $out = `perl $check $root 2>&1`;
is($? >> 8, 0, 'the project has no include circle') or diag($out);
like($out, qr/no include circle/, '... and says so');

# a tree of its own: core.h includes serve.h, which includes core.h

my $dir = tempdir(CLEANUP => 1);
mkdir "$dir/builder" or die "$dir/builder: $!";

for (['core.h', 'serve.h'], ['serve.h', 'core.h'], ['serve.c', 'serve.h']) {
    my ($file, $inc) = @$_;
    open(my $fh, '>', "$dir/builder/$file") or die "$file: $!";
    print $fh "#include <stdio.h>\n#include \"$inc\"\n";
    close $fh;
}

$out = `perl $check $dir 2>&1`;
is($? >> 8, 1, 'a circle fails the check');
like($out, qr{circle\ between\ builder/core\.\[ch\],\ builder/serve\.\[ch\].*
              builder/core\ ->\ builder/serve\ \(builder/core\.h:2\)}xs,
     '... naming its files and the lines that close it') or diag($out);
