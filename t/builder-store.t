#!/usr/bin/perl

# The C unit tests of the builder's deployment states and SQLite store
# (t/unit/builder-store.c), built by make: their TAP output is this
# test's.

use strict;
use warnings;

use FindBin;

my $bin = "$FindBin::Bin/../build/t/builder-store";

unless (-x $bin) {
    print "1..1\nnot ok 1 - build/t/builder-store exists (run make)\n";
    exit 1;
}

exec $bin or do {
    print "1..1\nnot ok 1 - build/t/builder-store runs: $!\n";
    exit 1;
};
