#!/usr/bin/perl

# The documentation in step with the programs and the man pages: every
# command `shuttle --help` lists is in docs/cli.md and in shuttle(1), whose
# exit status and environment are docs/cli.md's; every command of
# `shuttle-builder --help` is in shuttle-builder(8) and in docs/; the
# options block of docs/operators-guide.md is `shuttle-builder serve
# --help`'s, line for line.  Runs the built programs' --help only.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $repo = Shuttle::Test::repo();
my $cli = Shuttle::Platform::shuttle_bin();
my $builder = Shuttle::Test::builder();

for my $bin ($cli, $builder) {
    plan skip_all => "$bin is not built (run make first)" unless -x $bin;
}

sub slurp {
    my ($file) = @_;
    local $/;
    open my $fh, '<', $file or die "$file: $!";
    return <$fh>;
}

# what a program prints, stdout and stderr together
sub run {
    my @cmd = @_;
    my $pid = open my $fh, '-|' // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or die "stderr: $!";
        exec @cmd or die "$cmd[0]: $!";
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return $out;
}

# the text of a man page's section, without the roff requests' names
sub man_section {
    my ($man, $name) = @_;
    my ($text) = $man =~ /^\.SH \Q$name\E\n(.*?)(?=^\.SH |\z)/ms;
    $text //= '';
    $text =~ s/^\.(?:TP|PP|br)\n//mg;
    $text =~ s/^\.[A-Z]+ //mg;
    return $text;
}

sub flat { my ($s) = @_; $s =~ s/\s+/ /g; $s =~ s/^ | $//g; return $s }

my $cli_md = slurp("$repo/docs/cli.md");
my $shuttle_1 = slurp("$repo/debian/man/shuttle.1");
my $builder_8 = slurp("$repo/debian/man/shuttle-builder.8");
my $docs = join "\n", map { slurp($_) } "$repo/README.md",
                                        glob("$repo/docs/*.md");


# shuttle: its commands

my $help = run($cli, '--help');
my ($list) = $help =~ /^commands:\n(.*?)\n\n/ms;
my @commands = ($list // '') =~ /^  ([a-z]+) /mg;
cmp_ok(scalar @commands, '>=', 10, 'shuttle --help lists its commands: '
       . "@commands");

for my $c (@commands) {
    like($cli_md, qr/`shuttle \Q$c\E\b/, "docs/cli.md: shuttle $c");
    like($shuttle_1, qr/^\.B[IR]?\s+(?:shuttle\s+)?\Q$c\E\b/m,
         "shuttle(1): shuttle $c");
}

my ($exit_md) = $cli_md =~ /\*\*Exit status\*\*: (.*?)(?:\n\n|\z)/s;
is(flat(man_section($shuttle_1, 'EXIT STATUS')), flat($exit_md // ''),
   "shuttle(1)'s exit status is docs/cli.md's");

my %vars = map { $_ => 1 } $cli_md =~ /\b(SHUTTLE_[A-Z_]+|XDG_[A-Z_]+|NO_COLOR)\b/g;
cmp_ok(scalar keys %vars, '>=', 2, 'docs/cli.md names its environment: '
       . join ' ', sort keys %vars);
for my $v (sort keys %vars) {
    like($shuttle_1, qr/^\.B \Q$v\E$|\$\Q$v\E\b/m, "shuttle(1) names $v");
}


# shuttle-builder: its commands, serve's options

$help = run($builder, '--help');
($list) = $help =~ /^commands:\n(.*?)(?:\n\n|\z)/ms;
@commands = ($list // '') =~ /^  ([a-z]+) /mg;
cmp_ok(scalar @commands, '>=', 5, 'shuttle-builder --help lists its '
       . "commands: @commands");

my ($synopsis) = $builder_8 =~ /^\.SH SYNOPSIS\n(.*?)^\.SH /ms;
for my $c (@commands) {
    like($synopsis // '', qr/(?:^\.B shuttle-builder \Q$c\E\b|[ |]\Q$c\E(?:$| *\|))/m,
         "shuttle-builder(8): shuttle-builder $c");
    like($docs, qr/shuttle-builder \Q$c\E\b/, "docs: shuttle-builder $c");
}

my $serve = run($builder, 'serve', '--help');
my ($options) = $serve =~ /^(options:\n.*?^ *SIGHUP[^\n]*\n)/ms;
ok(defined $options, 'shuttle-builder serve --help: options to signals');
my $guide = slurp("$repo/docs/operators-guide.md");
my ($block) = $guide =~ /^```\n(options:\n.*?)^```$/ms;
is($block, $options, "docs/operators-guide.md's options of serve are "
   . "shuttle-builder serve --help's");

done_testing();
