#!/usr/bin/perl

# Mapping the zone, as the workers do it, with files that lie.
#
# Issue 21, "tests that let mutations through": a zone whose header
# claims more slots than the file holds, there before nginx maps it, is
# refused by the check of the header against the file's size (503 and
# the reason in the error log), never read past its end.
#
# Issue 21, item 2: a zone truncated while a worker maps it.  The header
# of the new mapping is read before anything else, and that read must be
# under the SIGBUS guard too: on the worker's first map (no guard yet)
# and on a remap (the guard covered only the previous mapping).  The race
# is made certain with strace: the worker's mmap() is held back for two
# seconds (an injected delay), after its fstat() saw the whole file, and
# the file is truncated in that time.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);
use Shuttle::Test;

my $t = Shuttle::Test->new;

$t->write_nginx_conf(<<'EOF');
    shuttle_zone %%ZONE%%;

    upstream apps {
        shuttle_route;
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.apps.test;
        shuttle_apps apps.test;
        location / { proxy_pass http://apps; }
    }

    server {
        listen 127.0.0.1:%%PORT_A%%;
        access_log off;
        location / { return 200 "A\n"; }
    }
EOF

my $zone = $t->zone;
my $dir = $t->testdir;
my $port = $t->port(1);

# a sound zone, kept aside for later
$t->zone_cmd('--capacity', 16, 'set', 'alpha',
             '127.0.0.1:' . $t->port('A'), 'running', 1);
copy($zone, "$dir/zone.good") or die "copy: $!";

sub poke {
    my ($offset, $pack) = @_;
    open my $fh, '+<', $zone or die "$zone: $!";
    binmode $fh;
    sysseek($fh, $offset, 0);
    syswrite($fh, $pack) == length $pack or die "write $zone: $!";
    close $fh;
}

# the header claims 2^30 slots (nslots, at offset 20) of a 16-slot file
poke(20, pack('V', 1 << 30));

$t->run;

my @workers = $t->worker_pids;

sub workers_alive {
    my @now = $t->worker_pids;
    return "@now" eq "@workers" && $t->error_log !~ /exited on signal/;
}

my ($r, %status);
for my $name ('alpha', map { "p$_" } 1 .. 30) {
    $r = http_get($port, "$name.apps.test", '/');
    $status{$r->{status} // 'none'}++;
}
my $last = int(time);

is_deeply(\%status, { 503 => 31 },
          'a header claiming more slots than the file holds: 503 for '
          . 'every project');
ok(workers_alive(), '... and no worker died')
    or diag($t->log_tail);
like($t->error_log,
     qr/shuttle zone "\Q$zone\E": zone header does not match the file size/,
     '... the error log says why');


# the race, held open: the worker stopped in mmap() while the file is cut

SKIP: {
skip 'needs strace', 8 unless grep { -x "$_/strace" } split /:/, $ENV{PATH};

my ($worker) = @workers;
my $trace = "$dir/trace";

sub traced {
    my $tracer = fork // die "fork: $!";
    if ($tracer == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$dir/strace.err";
        exec 'strace', '-o', $trace, '-e', 'trace=openat,fstat,newfstatat,mmap',
             '-e', 'inject=mmap:delay_enter=2000000', '-p', $worker;
        POSIX::_exit(127);
    }

    # attached once the kernel names strace as the worker's tracer
    $t->wait_until(sub {
        open my $fh, '<', "/proc/$worker/status" or return;
        local $/;
        <$fh> =~ /^TracerPid:\s*[1-9]/m;
    }, 10) or BAIL_OUT("strace did not attach: "
                       . ($t->read_file('strace.err') // ''));

    return $tracer;
}

sub untraced {
    my ($tracer) = @_;
    kill 'INT', $tracer;
    waitpid($tracer, 0);
}

# a request that makes the worker map the zone; the zone is cut after
# the worker's fstat() saw it whole, while its mmap() is held back
sub cut_while_mapped {
    my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or die "connect: $!";
    print $c "GET / HTTP/1.1\r\nHost: alpha.apps.test\r\n"
             . "Connection: close\r\n\r\n";

    my $seen = $t->wait_until(sub {
        my $s = $t->read_file('trace') // return;
        $s =~ /openat\([^\n]*"\Q$zone\E"[^\n]*\)\ =\ (\d+)\n(?:.*\n)*?
               (?:fstat|newfstatat)\(\g{1},[^\n]*st_size=[1-9]/x;
    }, 5);

    truncate $zone, 0 or die "truncate: $!";

    local $/;
    my $answer = <$c> // '';
    return ($seen, $answer);
}

# the worker's first successful map: it has never mapped a zone before
$t->wait_until(sub { int(time) > $last }, 2);
copy("$dir/zone.good", "$dir/zone.new") or die "copy: $!";
rename "$dir/zone.new", $zone or die "rename: $!";

my $tracer = traced();
my ($seen, $answer) = cut_while_mapped();
untraced($tracer);

ok($seen, 'the worker opened the zone and saw it whole');
like($answer, qr{^HTTP/1\.1 503 .*platform starting}s,
     'truncated while the worker maps it for the first time: 503')
    or diag($answer);
ok(workers_alive(), '... and no worker died (was: exited on signal 7)')
    or diag($t->log_tail);
like($t->error_log, qr/shuttle zone "\Q$zone\E": the file shrank while it was mapped/,
     '... the error log says why');

# whole again: mapped on a request of a later second
copy("$dir/zone.good", "$dir/zone.new") or die "copy: $!";
rename "$dir/zone.new", $zone or die "rename: $!";
$t->wait_until(sub { http_get($port, 'alpha.apps.test', '/')->{status}
                     == 200 }, 3);
is(http_get($port, 'alpha.apps.test', '/')->{status}, 200,
   'the zone whole again: 200');

# a remap: a new file at the path, cut while the worker maps it; the
# worker keeps serving from the mapping it has
copy("$dir/zone.good", "$dir/zone.new") or die "copy: $!";
$last = int(time);
rename "$dir/zone.new", $zone or die "rename: $!";
$t->wait_until(sub { int(time) > $last }, 2);

$tracer = traced();
($seen, $answer) = cut_while_mapped();
untraced($tracer);

ok($seen, 'the worker opened the new zone and saw it whole');
like($answer, qr{^HTTP/1\.1 200 }, 'truncated while the worker remaps it: '
                                   . 'still served from the mapping it had')
    or diag($answer);
ok(workers_alive(), '... and no worker died')
    or diag($t->log_tail);
}

done_testing();
