#!/usr/bin/perl

# The documentation's links: every relative markdown link of README.md and
# docs/*.md names a file of the repository, and every #anchor a heading of
# the page it points to (GitHub's anchors: the heading's text lowercased,
# spaces to '-', punctuation but '-' and '_' dropped, '-1', '-2' ... after
# a repeated one).  README.md stays a front door, under 15 KB, and
# docs/index.md lists every page of docs/.  What the rest of the repository
# names (docs/NAME.md, and README, "Section" in the unit, the man pages,
# the site, t/ comments) exists.  No nginx, no builder: files only.  The checker is tried first on pages with broken links of every
# kind, so that it is known to catch them.

use strict;
use warnings;

use FindBin;
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

my $root = File::Spec->rel2abs("$FindBin::Bin/..");

# Pages written on another branch at the same time (issue 22): a link to
# one is a TODO, not a failure, while the file does not exist; once it does
# it is checked as any other, and the TODO reports itself as passing.
my %pending = ();

# the markdown of a page without its fenced code blocks and code spans
sub prose {
    my ($text) = @_;
    my ($out, $fence) = ('', undef);

    for my $line (split /^/, $text) {
        if (defined $fence) {
            undef $fence if $line =~ /^\s*\Q$fence\E\s*$/;
            $out .= "\n";
            next;
        }
        if ($line =~ /^\s*(```+|~~~+)/) {
            $fence = $1;
            $out .= "\n";
            next;
        }
        $out .= $line;
    }

    $out =~ s/(`+)(?:(?!\1).)+?\1//gs;
    return $out;
}

sub slug {
    my ($h) = @_;

    $h =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;     # a link: its text
    $h =~ s/<[^>]*>//g;                     # HTML tags
    $h =~ s/^\s+|\s+$//g;
    $h = lc $h;
    $h =~ s/[^\p{L}\p{N}\p{M}\p{Pc}\- ]//g;
    $h =~ tr/ /-/;
    return $h;
}

# the anchors of a page: its headings' (code spans are part of a heading's
# text, so headings are read with their code spans but outside fences)
sub anchors {
    my ($file) = @_;
    my (%seen, %anchors, $fence);

    open my $fh, '<:encoding(UTF-8)', $file or die "$file: $!";
    while (my $line = <$fh>) {
        if (defined $fence) {
            undef $fence if $line =~ /^\s*\Q$fence\E\s*$/;
            next;
        }
        if ($line =~ /^\s*(```+|~~~+)/) {
            $fence = $1;
            next;
        }
        next unless $line =~ /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/;
        my $s = slug($1);
        my $a = exists $seen{$s} ? "$s-" . ++$seen{$s} : $s;
        $seen{$s} //= 0;
        $anchors{$a} = 1;
    }
    close $fh;
    return \%anchors;
}

sub slurp {
    my ($file) = @_;
    local $/;
    open my $fh, '<:encoding(UTF-8)', $file or die "$file: $!";
    return <$fh>;
}

# the links of a page that do not resolve, "TARGET: why" each; $todo
# collects the links to pending pages
sub broken {
    my ($top, $page, $todo) = @_;
    my $text = prose(slurp("$top/$page"));
    my (@targets, @errors);

    push @targets, $1 while $text =~ /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
    push @targets, $1 while $text =~ /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/mg;

    for my $target (@targets) {
        next if $target =~ m{^[a-z][a-z0-9+.-]*:}i || $target =~ m{^//};

        my ($path, $anchor) = $target =~ /^([^#]*)(?:#(.*))?$/;
        $path =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;

        my $file = $path eq '' ? $page
                 : $path =~ m{^/} ? substr($path, 1)
                 : File::Spec->abs2rel(
                       File::Spec->rel2abs($path, dirname("$top/$page")),
                       $top);
        1 while $file =~ s{(^|/)[^/]+/\.\.(/|$)}{$1};

        if ($file =~ m{^\.\.(/|$)}) {
            push @errors, "$target: outside the repository";
            next;
        }
        if (!-e "$top/$file") {
            if (exists $pending{$file} && $todo) {
                push @$todo, "$page: $file";
                next;
            }
            push @errors, "$target: no file $file";
            next;
        }
        next unless defined $anchor && $anchor ne '';

        if ($file =~ /\.md$/ && -f "$top/$file") {
            push @errors, "$target: no heading #$anchor in $file"
                unless anchors("$top/$file")->{$anchor};
        } elsif ($anchor !~ /^L\d+(-L\d+)?$/) {
            push @errors, "$target: #$anchor in $file, which is not markdown";
        }
    }
    return @errors;
}

sub put {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
}


# the checker itself, on pages of our own

my $dir = tempdir(CLEANUP => 1);
mkdir "$dir/docs" or die "$dir/docs: $!";
put("$dir/README.md", <<'EOF');
# A page

## The `shuttle` command

## Operator's guide

## Operator's guide

See [the command](#the-shuttle-command), [the guide](#operators-guide) and
[again](#operators-guide-1), [a page](docs/a.md), [its part](docs/a.md#part_two),
[a wrapped
link](docs/a.md#a-part-one) and [a folder](docs/).

Broken: [no file](docs/missing.md), [no anchor](#nowhere),
[no anchor there](docs/a.md#part-three), [a third](#operators-guide-2),
[up and out](../elsewhere.md), [an anchor in a folder](docs/#x).
[ref]: docs/gone.md

```
[in a fence](docs/fenced-missing.md)
# not a heading
```

and `[in code](docs/code-missing.md)` are not links.
EOF
put("$dir/docs/a.md", <<'EOF');
# A: part one
## part_two
Back to [the top](../README.md#a-page).
EOF

is_deeply([ broken($dir, 'docs/a.md') ], [],
          'checker: a page whose links resolve passes');
is_deeply([ broken($dir, 'README.md') ],
          [ 'docs/missing.md: no file docs/missing.md',
            '#nowhere: no heading #nowhere in README.md',
            'docs/a.md#part-three: no heading #part-three in docs/a.md',
            '#operators-guide-2: no heading #operators-guide-2 in README.md',
            '../elsewhere.md: outside the repository',
            'docs/#x: #x in docs, which is not markdown',
            'docs/gone.md: no file docs/gone.md' ],
          'checker: every broken link, and nothing in code, is found');


# the documentation

my @pages = ('README.md',
             map { substr $_, length("$root/") } sort glob "$root/docs/*.md");
my @todo;

ok(grep($_ eq 'docs/index.md', @pages), 'docs/index.md exists');

for my $page (@pages) {
    my @errors = broken($root, $page, \@todo);
    is_deeply(\@errors, [], "$page: every link resolves")
        or diag map { "  $page: $_\n" } @errors;
}

# the rest of the repository names pages (docs/NAME.md) and sections of
# them (README, "Reliability"; docs/NAME.md, "Keys"): each must exist

my @sources;
my @dirs = map { "$root/$_" } qw(builder cli conf config dashboard debian
                                  examples include loader
                                  ngx_shuttle_module t Makefile);
while (my $path = shift @dirs) {
    if (-d $path) {
        next if $path =~ m{/t/fuzz/corpus$};
        push @dirs, sort glob "$path/*";
        next;
    }
    next if $path eq "$root/t/docs-links.t" || -B $path;
    push @sources, $path if -f $path;
}

my @named;
for my $path (@sources) {
    my $file = substr $path, length "$root/";
    my $text = slurp($path);
    $text =~ s/\n#?\s*/ /g;          # a name wrapped over a comment's lines

    while ($text =~ m{(?<![\w.-])(README|docs/[A-Za-z0-9_.-]+\.md)
                      (?:\.md)?(?:\.gz)?(?:,\s+"([^"]+)")?}gx)
    {
        my ($page, $section) = ($1, $2);
        $page = 'README.md' if $page eq 'README';
        push @named, "$file: $page" . (defined $section ? ", \"$section\"" : '');

        if (!-e "$root/$page") {
            if (exists $pending{$page}) {
                push @todo, "$file: $page";
            } else {
                fail("$file names $page, which does not exist");
            }
            next;
        }
        next unless defined $section;
        ok(anchors("$root/$page")->{ slug($section) },
           "$file names $page, \"$section\": a heading of it");
    }
}
cmp_ok(scalar @named, '>=', 5, 'the repository names pages: '
       . scalar(@named) . ' names');

TODO: {
    for my $file (sort keys %pending) {
        my %from = map { /^([^:]+): \Q$file\E$/ ? ($1 => 1) : () } @todo;
        local $TODO = "$file: $pending{$file}";
        ok(-e "$root/$file", "$file exists (named in "
           . join(', ', sort keys %from) . ')');
    }
}

my $size = -s "$root/README.md";
cmp_ok($size, '<', 15 * 1024, "README.md is under 15 KB ($size bytes)");

my $index = prose(slurp("$root/docs/index.md"));
for my $page (grep { m{^docs/} && $_ ne 'docs/index.md' } @pages) {
    my $name = substr $page, length 'docs/';
    like($index, qr/\]\(\Q$name\E(#[^)]*)?\)/, "docs/index.md links $page");
}
like(prose(slurp("$root/README.md")), qr/\]\(docs\/index\.md\)/,
     'README.md links docs/index.md');

done_testing();
