#!/usr/bin/perl

# The fuzz targets' corpora, replayed: each t/fuzz/TARGET.c, built by make
# with gcc into build/t/fuzz-replay-TARGET, runs every file of
# t/fuzz/corpus/TARGET/ (the seeds and the inputs that once crashed it)
# to its end.  "make fuzz" runs the same targets under libFuzzer.

use strict;
use warnings;

use FindBin;
use Test::More;

my $root = "$FindBin::Bin/..";
my @targets = qw(keys extract manifest resources zone modzone deployargs route);

for my $t (@targets) {
    my $bin = "$root/build/t/fuzz-replay-$t";
    my @inputs = sort glob "$root/t/fuzz/corpus/$t/*";

    ok(-x $bin, "build/t/fuzz-replay-$t exists") or next;
    ok(@inputs >= 3, "t/fuzz/corpus/$t has seeds (" . @inputs . ")");

    # what the parsers print is not what is tested here: the last line
    my @err = qx{$bin @inputs 2>&1 >/dev/null};

    is($?, 0, "fuzz-replay-$t runs every input of its corpus to its end");
    is($err[-1], @inputs . " inputs\n", "fuzz-replay-$t ran them all");
}

# every target has a corpus, every corpus a target
my @corpora = map { m{/([^/]+)$} } glob "$root/t/fuzz/corpus/*";
is_deeply([sort @corpora], [sort @targets], "a corpus per target");

done_testing();
