package Shuttle::Fault;

# What the fault tests share: a client that loops on projects' URLs
# through nginx for the whole of a fault, counting what it was served,
# and the one line per fault that `make faults` prints.
#
#   my $c = Shuttle::Fault::client($p, ['demo', 'other'],
#                                  ok => qr/^Hello/);
#   ... the fault ...
#   $c->wait_served(10);   # (a short fault) until 10 requests were served
#   my $r = $c->stop;      # {served, failed, by => {project => served},
#                          #  bad => [first samples], p50, p99, seconds}
#   Shuttle::Fault::all_served($r, 'during the reloads', min => 20);
#   Shuttle::Fault::report('nginx -s reload x20', $r, lost => 0);
#
# report() appends a tab-separated line to $SHUTTLE_FAULTS_REPORT when it
# is set (make faults prints them as a table) and says it with diag().
#
# full() is true under make faults (SHUTTLE_FAULTS_FULL=1): the long
# cases run there; make test keeps the fast, deterministic ones.

use strict;
use warnings;

use Fcntl qw(:flock);
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More ();
use Shuttle::Test qw(http_get);

our $n = 0;

sub full { $ENV{SHUTTLE_FAULTS_FULL} ? 1 : 0 }

# a sample of the builder's GET /metrics through nginx, e.g.
# metric($p, 'shuttle_uploads_refused_total{reason="zone_full"}'): its
# value, or undef when the page has no such line
sub metric {
    my ($p, $sample) = @_;
    my $r = http_get($p->port, 'localhost', '/metrics');
    return undef unless ($r->{status} // 0) == 200;
    for (split /\n/, $r->{body}) {
        return $1 if /^\Q$sample\E (\S+)$/;
    }
    return undef;
}

# A forked client: GETs each project in turn (a new connection each, as
# a browser's first request) until stop().  A request counts as served
# when it answers 200 and, with ok =>, its body matches (and an
# app_src() body, "NAME vN", is the project's own).
sub client {
    my ($p, $projects, %opt) = @_;
    my $ok = $opt{ok};
    my $path = $opt{path} // '/';
    my $file = $p->testdir . '/fault-client.' . ++$n;
    my $stop = "$file.stop";
    unlink $file, $stop;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my ($served, $failed, %by, @bad, @ms) = (0, 0);
        my $i = 0;
        until (-e $stop) {
            my $name = $projects->[$i++ % @$projects];
            my $t0 = time;
            my $res = eval { $p->app_get($name, $path, timeout => 10) };
            # an app_src() body names its project: another's is wrong
            my $good = $res && $res->{status} == 200
                       && (!$ok || $res->{body} =~ $ok)
                       && !($res->{body} =~ /^([a-z0-9-]+) v\d+\n?\z/
                            && $1 ne $name);
            if ($good) {
                $served++;
                $by{$name}++;
                push @ms, (time - $t0) * 1000;
            } else {
                $failed++;
                push @bad, sprintf('%.3f %s: %s', time, $name,
                    $res ? "$res->{status} "
                           . substr($res->{body} // '', 0, 200)
                         : 'error: ' . ($@ || 'no answer'))
                    if @bad < 20;
            }
            # how far it got, for wait_served()
            if (open my $pg, '>', "$file.progress") {
                print $pg "$served $failed\n";
                close $pg;
            }
            sleep($opt{pause}) if $opt{pause};
        }
        open my $fh, '>', "$file.tmp" or POSIX::_exit(1);
        print $fh join(' ', $served, $failed,
                       map { "$_=$by{$_}" } sort keys %by), "\n";
        print $fh join(' ', map { sprintf '%.2f', $_ } @ms), "\n";
        print $fh map { s/\n/ /gr . "\n" } @bad;
        close $fh;
        rename "$file.tmp", $file;
        POSIX::_exit(0);
    }

    return bless { pid => $pid, file => $file, stop => $stop,
                   projects => [@$projects], started => time },
                 'Shuttle::Fault::Client';
}

sub Shuttle::Fault::Client::pid { $_[0]{pid} }

# waits until the client was served $n requests (by default one a
# project): a fault shorter than a request still gets its client's
# answers; true when it was
sub Shuttle::Fault::Client::wait_served {
    my ($c, $n, $timeout) = @_;
    $n //= @{ $c->{projects} };
    my $end = time + ($timeout // 10);
    while (time < $end) {
        my $progress = Shuttle::Fault::_slurp("$c->{file}.progress") // '0';
        return 1 if (split ' ', $progress)[0] >= $n;
        sleep 0.02;
    }
    return 0;
}

sub _slurp {
    open my $fh, '<', $_[0] or return undef;
    local $/;
    return scalar <$fh>;
}

sub Shuttle::Fault::Client::stop {
    my ($c) = @_;
    return $c->{result} if $c->{result};
    open my $fh, '>', $c->{stop} or die "$c->{stop}: $!";
    close $fh;
    waitpid($c->{pid}, 0);
    delete $c->{pid};
    open $fh, '<', $c->{file} or die "the fault client left no result: $!";
    my ($served, $failed, @by) = split ' ', scalar <$fh>;
    my @ms = split ' ', scalar <$fh> // '';
    chomp(my @bad = <$fh>);
    close $fh;
    my @sorted = sort { $a <=> $b } @ms;
    $c->{result} = {
        served => $served, failed => $failed, bad => \@bad,
        by => { map { split /=/, $_, 2 } @by },
        projects => $c->{projects},
        p50 => @sorted ? $sorted[int(@sorted * 0.50)] : 0,
        p99 => @sorted ? $sorted[int(@sorted * 0.99)] : 0,
        seconds => time - $c->{started},
    };
    return $c->{result};
}

sub Shuttle::Fault::Client::DESTROY {
    my ($c) = @_;
    if ($c->{pid}) {
        kill 'KILL', $c->{pid};
        waitpid($c->{pid}, 0);
    }
}

# The client's result checked, as every fault test wants it: no request
# failed, and the projects were served (none failed means nothing when
# nothing was asked): at least min => N requests (default: 10 a second
# of the client's life, at least one per project; a client is served a
# few hundred a second here, and 10 under a loaded CI), each project
# answered with what ok => wanted at least once.  $what names the fault.
sub all_served {
    my ($r, $what, %opt) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @projects = @{ $r->{projects} // [] };
    my $min = $opt{min} // int(10 * $r->{seconds});
    $min = @projects if $min < @projects;

    Test::More::is($r->{failed}, 0, "$what: $r->{served} requests served, "
                   . 'none failed')
        or Test::More::diag(join "\n", @{ $r->{bad} });
    Test::More::cmp_ok($r->{served}, '>=', $min,
        sprintf('%s: at least %d served (%d in %.1f s)', $what, $min,
                $r->{served}, $r->{seconds}));
    my @unserved = grep { !$r->{by}{$_} } @projects;
    Test::More::is("@unserved", '', "$what: every project answered ("
        . join(', ', map { "$_ " . ($r->{by}{$_} // 0) } @projects) . ')');
}

# A service's source answering "NAME vN" on /, in $p's test directory
# (src/NAME-vN unless src =>); body => C run first in its handler (a
# crash, say), makefile => a Makefile of its own.  Returns the directory.
sub app_src {
    my ($p, $name, $v, %opt) = @_;
    my $t = $p->t;
    my $src = $opt{src} // $p->testdir . "/src/$name-v$v";
    my $body = $opt{body} // '';
    $t->write_file("$src/shuttle.json", qq({"name": "$name"}\n));
    $t->write_file("$src/src/main.c", <<EOF);
#include <shuttle.h>

static void
root(shuttle_req *req, shuttle_res *res)
{
    $body
    shuttle_text(res, 200, "$name v$v\\n");
}

SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/", root);
    return 0;
}
EOF
    $t->write_file("$src/Makefile", $opt{makefile}) if defined $opt{makefile};
    return $src;
}

# Rows of the platform's store itself (sqlite3 on DATA/shuttle.db), each
# an array of its columns
sub store_rows {
    my ($p, $sql) = @_;
    my $db = $p->t->builder_data . '/shuttle.db';
    my $out = `sqlite3 -separator '|' $db "$sql" 2>&1`;
    return map { [split /\|/, $_, -1] } split /\n/, $out;
}

# the states a deployment ends in
our %SETTLED = map { $_ => 1 }
               qw(running failed stopped superseded crashed deleted);

# the TCP ports of 127.0.0.1 listened on in LO..HI, sorted
sub listening_ports {
    my ($lo, $hi) = @_;
    my %ports;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        while (<$fh>) {
            my @f = split;
            next unless ($f[3] // '') eq '0A';      # LISTEN
            my $port = hex((split /:/, $f[1])[1] // 0);
            $ports{$port} = 1 if $port >= $lo && $port <= $hi;
        }
    }
    return sort { $a <=> $b } keys %ports;
}

# One line per fault: what was done, requests served during it, failed
# requests, what was lost (a count; must be 0).
sub report {
    my ($what, $r, %opt) = @_;
    my $served = $r ? $r->{served} : '-';
    my $failed = $r ? $r->{failed} : '-';
    my $lost = $opt{lost} // 0;
    my $extra = $opt{note} // ($r && $r->{served}
        ? sprintf('p50 %.1f ms, p99 %.1f ms', $r->{p50}, $r->{p99}) : '');
    Test::More::diag(sprintf 'fault: %s: served %s, failed %s, lost %s%s',
                     $what, $served, $failed, $lost,
                     $extra ne '' ? " ($extra)" : '');
    my @bad = $r ? @{ $r->{bad} } : ();
    Test::More::diag("  $_") for grep { defined } @bad[0 .. 4];
    my $file = $ENV{SHUTTLE_FAULTS_REPORT} or return;
    open my $fh, '>>', $file or die "$file: $!";
    flock $fh, LOCK_EX;
    print $fh join("\t", $what, $served, $failed, $lost, $extra), "\n";
    close $fh;
}

1;
