#!/usr/bin/perl

# Prints what the fault tests reported (Shuttle::Fault::report) as one
# table: make faults runs it at the end.

use strict;
use warnings;

my $file = shift // 'build/faults.tsv';
open my $fh, '<', $file or die "$file: $! (no fault test reported)\n";
my @rows = map { chomp; [split /\t/, $_, 5] } <$fh>;
close $fh;

my $w = 5;
for (@rows) { $w = length $_->[0] if length $_->[0] > $w }
$w = 72 if $w > 72;

printf "\n%-*s %8s %7s %5s  %s\n", $w, 'fault', 'served', 'failed', 'lost',
       'notes';
printf "%-*s %8s %7s %5s  %s\n", $w, '-' x $w, '-' x 8, '-' x 7, '-' x 5,
       '-----';
printf "%-*s %8s %7s %5s  %s\n", $w, @$_[0 .. 3], $_->[4] // '' for @rows;
my @bad = grep { $_->[2] =~ /^\d+$/ && $_->[2] > 0 || $_->[3] ne '0' } @rows;
printf "\n%d faults, %d with failed requests or losses\n", scalar @rows,
       scalar @bad;
