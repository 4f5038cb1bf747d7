#!/usr/bin/perl

# The include graph of the project's own files has no circle.
#
# Every .c and .h under builder/, loader/, cli/, ngx_shuttle_module/,
# include/ and t/ is read; each '#include "..."' is resolved as the
# compiler does (the including file's folder first, then the folders the
# Makefile passes with -I: include/, builder/ and its subfolders, loader/,
# cli/, t/fuzz/); a name that resolves to no file of the project (a
# system header) is left out.  A .c and the .h of the same path are one
# node: the file and its interface.  A part's private header (NAME_int.h)
# is a node of its own: it does not include NAME.h (its files include
# NAME.h first), so no part and its private header make a circle.
# Any strongly connected component of more than one node is a circle; it
# is printed, one "A -> B (file:line)" edge a line, and the exit status
# is 1.  0 and "no include circle" else.

use strict;
use warnings;
use File::Find;
use File::Basename qw(dirname);
use Cwd qw(getcwd);

my $root = shift // getcwd();
chdir $root or die "check-includes: $root: $!\n";

my @top = grep { -d } qw(builder loader cli ngx_shuttle_module include t);
my @files;

find({ no_chdir => 1, wanted => sub {
    return if -d $_;
    push @files, $File::Find::name =~ s{^\./}{}r if /\.[ch]\z/;
} }, @top);

my @search = ('include', 'builder', (sort grep { -d } glob('builder/*')),
              'loader', 'cli', 't/fuzz');

sub node { my ($f) = @_; $f =~ s/\.[ch]\z//; return $f }

my (%edges, %nodes);

for my $f (sort @files) {
    my $n = node($f);
    $nodes{$n} = 1;

    open(my $fh, '<', $f) or die "check-includes: $f: $!\n";

    while (my $line = <$fh>) {
        next unless $line =~ /^\s*#\s*include\s*"([^"]+)"/;
        my $name = $1;
        my $to;

        for my $dir (dirname($f), @search) {
            my $p = "$dir/$name";
            1 while $p =~ s{(^|/)[^/.][^/]*/\.\./}{$1};
            $p =~ s{^\./}{};
            if (-f $p) { $to = $p; last }
        }

        next unless defined $to;

        my $m = node($to);
        next if $m eq $n;
        $edges{$n}{$m} //= "$f:$.";
        $nodes{$m} = 1;
    }

    close $fh;
}

# Tarjan's strongly connected components

my ($index, @stack, %on, %idx, %low, @sccs) = (0);

sub strong {
    my ($v) = @_;
    $idx{$v} = $low{$v} = $index++;
    push @stack, $v;
    $on{$v} = 1;

    for my $w (sort keys %{ $edges{$v} // {} }) {
        if (!defined $idx{$w}) {
            strong($w);
            $low{$v} = $low{$w} if $low{$w} < $low{$v};
        } elsif ($on{$w}) {
            $low{$v} = $idx{$w} if $idx{$w} < $low{$v};
        }
    }

    if ($low{$v} == $idx{$v}) {
        my @c;
        while (1) {
            my $w = pop @stack;
            $on{$w} = 0;
            push @c, $w;
            last if $w eq $v;
        }
        push @sccs, [sort @c] if @c > 1;
    }
}

for my $v (sort keys %nodes) {
    strong($v) unless defined $idx{$v};
}

if (!@sccs) {
    printf "check-includes: no include circle (%d files, %d nodes)\n",
        scalar @files, scalar keys %nodes;
    exit 0;
}

for my $c (@sccs) {
    my %in = map { $_ => 1 } @$c;
    print "check-includes: include circle between ",
          join(', ', map { "$_.[ch]" } @$c), ":\n";
    for my $v (@$c) {
        for my $w (sort keys %{ $edges{$v} // {} }) {
            print "    $v -> $w ($edges{$v}{$w})\n" if $in{$w};
        }
    }
}

exit 1;
