#!/usr/bin/perl

# The fuzz targets' corpora, replayed: each t/fuzz/TARGET.c, built by make
# with gcc, AddressSanitizer and UBSan into build/t/fuzz-replay-TARGET,
# runs every file of t/fuzz/corpus/TARGET/ (the seeds and the inputs that
# once crashed it, or made a sanitizer speak) to its end.  "make fuzz" runs
# the same targets under libFuzzer.  An input that shows a bug not fixed
# yet waits in t/fuzz/todo/TARGET/, replayed as a TODO test.

use strict;
use warnings;

use FindBin;
use Test::More;

my $root = "$FindBin::Bin/..";
my @targets = qw(keys extract manifest resources zone deployargs
                 apibody
                 route request resfd
                 modzone modkeys modrelay
                 ignore cliconfig cliapi);

# a sanitizer's report is an error: exit status 1, the report on stderr
$ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0:exitcode=1';
$ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1';

for my $t (@targets) {
    my $bin = "$root/build/t/fuzz-replay-$t";
    my @inputs = sort glob "$root/t/fuzz/corpus/$t/*";

    ok(-x $bin, "build/t/fuzz-replay-$t exists") or next;
    ok(@inputs >= 3, "t/fuzz/corpus/$t has seeds (" . @inputs . ")");

    # the sanitizers' runtimes are in the driver, or nothing is checked
    my $image = do { local (@ARGV, $/) = ($bin); <> };
    ok($image =~ /__asan_init/ && $image =~ /__ubsan_handle_/,
       "fuzz-replay-$t is built with AddressSanitizer and UBSan");

    # what the parsers print is not what is tested here: the last line
    my @err = qx{$bin @inputs 2>&1 >/dev/null};

    is($?, 0, "fuzz-replay-$t runs every input of its corpus to its end")
        or diag(join '', grep { /Sanitizer|runtime error|^\s+#\d/ } @err);
    is($err[-1], @inputs . " inputs\n", "fuzz-replay-$t ran them all");
}

# t/fuzz/todo/TARGET/: inputs that fail for a bug not fixed yet, each a
# TODO test; once fixed, the input moves to t/fuzz/corpus/TARGET/
for my $t (@targets) {
    my $bin = "$root/build/t/fuzz-replay-$t";

    for my $in (sort glob "$root/t/fuzz/todo/$t/*") {
        my ($name) = $in =~ m{([^/]+)$};
        local $TODO = "a bug not fixed yet: t/fuzz/todo/$t/$name";

        qx{$bin $in 2>&1 >/dev/null};
        is($?, 0, "fuzz-replay-$t runs t/fuzz/todo/$t/$name to its end");
    }
}

# every target has a corpus, every corpus a target
my @corpora = map { m{/([^/]+)$} } glob "$root/t/fuzz/corpus/*";
is_deeply([sort @corpora], [sort @targets], "a corpus per target");

done_testing();
