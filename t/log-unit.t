#!/usr/bin/perl

# The C unit tests of escaping a tenant's words (t/unit/log-unit.c),
# built by make: their TAP output is this test's.

use strict;
use warnings;

use FindBin;

my $bin = "$FindBin::Bin/../build/t/log-unit";

unless (-x $bin) {
    print "1..1\nnot ok 1 - build/t/log-unit exists (run make)\n";
    exit 1;
}

exec $bin or do {
    print "1..1\nnot ok 1 - build/t/log-unit runs: $!\n";
    exit 1;
};
