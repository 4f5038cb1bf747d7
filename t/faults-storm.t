#!/usr/bin/perl

# Storms against a whole platform (the real nginx with the module, the
# builder, its loaders, the CLI), with running projects served through it
# all along:
#
#   1. N projects deployed at once from K keys: one `shuttle deploy` per
#      project (it uploads, then follows the build log until Running), all
#      released together, while wrk loads 2 other running projects at a
#      fixed rate.  All settle Running, every deployment is accounted for,
#      the 2 projects' latency is measured before and during the storm, and
#      none of their requests fails.
#   2. M deploys of one project back to back, as a developer hammering
#      `shuttle deploy --no-follow` (each the next as soon as the previous
#      upload is accepted: the queue supersedes the one still waiting),
#      while a client loops on it.  The newest upload is what serves, every
#      deployment's state says what happened, no request failed, no upload
#      or build tree is left, and the project has one loader.
#   3. /v1 calls at 1,000 a second (wrk paced by a Lua script: the lists,
#      the projects, the deployments, from every key) while a client loops
#      on every running project: the rate reached, the latency, every call
#      answered 200, and the projects served all along.
#
# Then the whole platform: every deployment settled, the store intact, the
# loaders and listening ports exactly the running deployments', the spool
# empty, no process of a build left.
#
# make test runs reduced sizes (8 projects from 2 keys, 30 deploys, 3 s of
# /v1 calls); make faults (Shuttle::Fault::full) the full ones (20 projects
# from 4 keys, 200 deploys, 10 s).  One Shuttle::Fault::report line each.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use List::Util ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

plan skip_all => 'the sandbox takes root' if $> != 0;
my $WRK = $ENV{WRK} // '/usr/bin/wrk';
plan skip_all => "$WRK is not installed" unless -x $WRK;
plan skip_all => Shuttle::Platform::shuttle_bin() . ' is not built (make)'
    unless -x Shuttle::Platform::shuttle_bin();

my $T0 = time;
my $FULL = Shuttle::Fault::full();
my %N = $FULL
    ? (keys => 4, per_key => 5, back => 200, v1_seconds => 10, before => 5)
    : (keys => 2, per_key => 4, back => 30, v1_seconds => 3, before => 2);
my $V1_RATE = 1000;           # /v1 calls a second asked of wrk
my $STEADY_RATE = 400;        # requests a second to the 2 running projects
my $STORM = $N{keys} * $N{per_key};

# the builder's ports: a range of our own, locked like Shuttle::Test's (its
# 20 are too few for the projects of this test, and a switch takes a port
# more for a moment).  100 for about 23 live projects: the switches of the
# back to back deploys (more than 100 in a minute at full size) need the
# ports their old loaders left, each in TIME_WAIT for a minute
my $ports = Shuttle::Test->new;
my ($lo, $hi) = $ports->port_range(100);

my @KEYS = map { "k$_" } 1 .. $N{keys};
my $p = Shuttle::Platform->new(keys => ['alice', @KEYS],
                               builder_args => ['--ports', "$lo-$hi"]);
my $t = $p->t;
my $dir = $p->testdir;
my $data = $t->builder_data;
my $port = $p->port;

diag sprintf '%s sizes: %d projects from %d keys at once, %d deploys back '
    . 'to back, %d s of /v1 calls at %d/s', $FULL ? 'full' : 'reduced',
    $STORM, $N{keys}, $N{back}, $N{v1_seconds}, $V1_RATE;


# processes of this test's own: stopped by pid at the end, even on failure

my %MINE;
my $OWNER = $$;

END {
    if ($$ == $OWNER) {
        for my $pid (keys %MINE) {
            for my $sig ('TERM', 'KILL') {
                kill $sig, $pid;
                my $end = time + 5;
                sleep 0.02 while time < $end && waitpid($pid, WNOHANG) == 0;
                last if waitpid($pid, WNOHANG) != 0;
            }
        }
    }
}


# projects ---------------------------------------------------------------

# a service answering "NAME vV" on /, in $src (default src/NAME)
sub app {
    my ($name, $v, $src) = @_;
    return Shuttle::Fault::app_src($p, $name, $v,
                                   src => $src // "$dir/src/$name");
}

sub body_of {
    my ($name) = @_;
    my $r = eval { $p->app_get($name, '/', timeout => 10) };
    return $r && $r->{status} == 200 ? $r->{body} : '';
}

sub deployment {
    my ($key, $id) = @_;
    return $p->v1($key, 'GET', "/v1/deployments/$id")->{json} // {};
}

sub store_rows { Shuttle::Fault::store_rows($p, @_) }

sub unsettled {
    return grep { !$Shuttle::Fault::SETTLED{$_->[1]} }
           store_rows('SELECT id, state FROM deployments');
}

sub pct {
    my ($list, $q) = @_;
    my @s = sort { $a <=> $b } @$list or return 0;
    return $s[int(@s * $q)];
}


# wrk, paced -------------------------------------------------------------

# Debian's wrk has no -R: a Lua script paces it.  Each thread sends at
# rate/threads a second on a schedule of its own (delay() answers the time
# to its next slot, from CLOCK_MONOTONIC through LuaJIT's ffi), cycling
# through the requests given ([method, path, {headers}]); every response
# is checked: a status other than 200, or with body => (a Lua pattern) a
# body that does not match, counts as bad.  done() prints one line of
# figures, the statuses seen and the first bad answers.

my $WRK_N = 0;

sub lua_str {
    my ($s) = @_;
    $s =~ s/([\\"])/\\$1/g;
    $s =~ s/\n/\\n/g;
    return qq("$s");
}

sub wrk_start {
    my (%o) = @_;
    my $n = ++$WRK_N;
    my $threads = $o{threads} // 1;
    my $conns = $o{connections} // 8;
    my $interval = 1000 * $threads / $o{rate};
    my $specs = join ",\n", map {
        my ($m, $path, $h) = @$_;
        '  {' . lua_str($m) . ', ' . lua_str($path) . ', {'
        . join(', ', map { "[" . lua_str($_) . "] = " . lua_str($h->{$_}) }
                     sort keys %$h)
        . '}}'
    } @{ $o{requests} };
    my $body = defined $o{body} ? lua_str($o{body}) : 'nil';

    my $script = "$dir/wrk-$n.lua";
    $t->write_file($script, <<EOF);
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } storm_ts;
int clock_gettime(int clk, storm_ts *tp);
]]
local ts = ffi.new("storm_ts")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local specs = {
$specs
}
local BODY = $body
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  reqs = {}
  for i, s in ipairs(specs) do reqs[i] = wrk.format(s[1], s[2], s[3]) end
  n = (tid - 1) * 7
  sent = 0
  bad = 0
  codes = {}
  samples = ""
end

function delay()
  local now = now_ms()
  if start == nil then start = now end
  local due = start + sent * $interval
  sent = sent + 1
  if due <= now then return 0 end
  return math.floor(due - now)
end

function request()
  n = n + 1
  return reqs[(n - 1) % #reqs + 1]
end

function response(status, headers, body)
  local k = tostring(status)
  codes[k] = (codes[k] or 0) + 1
  if status ~= 200 or (BODY and not string.find(body or "", BODY)) then
    bad = bad + 1
    if #samples < 1000 then
      samples = samples .. status .. " "
                .. string.gsub(string.sub(body or "", 1, 120), "\\n", " ")
                .. "\\n"
    end
  end
end

function done(summary, latency, requests)
  local all, nbad, smp = {}, 0, ""
  for _, t in ipairs(threads) do
    nbad = nbad + t:get("bad")
    for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
    smp = smp .. t:get("samples")
  end
  local cs = {}
  for k, v in pairs(all) do table.insert(cs, k .. "=" .. v) end
  io.write(string.format("STORM requests=%d duration_us=%d bad=%d "
    .. "status=%d connect=%d read=%d write=%d timeout=%d p50_us=%d "
    .. "p99_us=%d max_us=%d\\n", summary.requests, summary.duration, nbad,
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
  io.write("CODES " .. table.concat(cs, " ") .. "\\n")
  io.write("SAMPLES\\n" .. smp)
end
EOF

    my $out = "$dir/wrk-$n.out";
    my @cmd = ($WRK, '-t', $threads, '-c', $conns,
               '-d', ($o{seconds} // 600) . 's', '--timeout', '10s',
               '-s', $script, $p->api . '/');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    $MINE{$pid} = 1;
    return { pid => $pid, out => $out, started => time };
}

# waits for wrk's end (SIGINT first with stop => 1: wrk then prints what it
# measured): its figures
sub wrk_stop {
    my ($w, %o) = @_;
    kill 'INT', $w->{pid} if $o{stop};
    my $status;
    my $gone = $t->wait_until(sub {
        my $r = waitpid($w->{pid}, WNOHANG);
        $status = $?, return 1 if $r == $w->{pid};
        return $r == -1;
    }, $o{stop} ? 15 : 60 + ($o{seconds} // 0));
    unless ($gone) {
        kill 'KILL', $w->{pid};
        waitpid($w->{pid}, 0);
    }
    delete $MINE{$w->{pid}};
    my $out = $t->read_file($w->{out}) // '';
    my %f = $out =~ /(\w+)=(\d+)/g;
    my ($codes) = $out =~ /^CODES (.*)$/m;
    my ($samples) = $out =~ /^SAMPLES\n(.*)\z/ms;
    die "wrk gave no figures (exit " . ($status // 'none') . "):\n$out"
        unless defined $f{requests} && $out =~ /^STORM /m;
    my $sockerr = $f{connect} + $f{read} + $f{write} + $f{timeout};
    return {
        requests => $f{requests},
        seconds => $f{duration_us} / 1e6,
        rate => $f{duration_us} ? $f{requests} / ($f{duration_us} / 1e6) : 0,
        nbad => $f{bad}, status_errors => $f{status},
        socket_errors => $sockerr,
        p50 => $f{p50_us} / 1000, p99 => $f{p99_us} / 1000,
        max => $f{max_us} / 1000,
        codes => $codes // '',
        bad => [grep { length } split /\n/, $samples // ''],
        # as Shuttle::Fault's client counts: served, failed
        served => $f{requests} - $f{bad},
        failed => $f{bad} + $sockerr,
    };
}

# wrk holds $n sockets (its connections)
sub wrk_connected {
    my ($w, $n) = @_;
    return $t->wait_until(sub {
        opendir my $dh, "/proc/$w->{pid}/fd" or return 0;
        my $socks = grep { (readlink("/proc/$w->{pid}/fd/$_") // '')
                           =~ /^socket:/ } readdir $dh;
        $socks >= $n;
    }, 10);
}

sub wrk_run {
    my (%o) = @_;
    my $w = wrk_start(%o);
    return wrk_stop($w, seconds => $o{seconds});
}

sub wrk_says {
    my ($r) = @_;
    return sprintf '%d requests in %.1f s (%.0f/s), p50 %.2f ms, p99 %.2f ms, '
        . 'max %.1f ms, bad %d, socket errors %d, statuses %s',
        $r->{requests}, $r->{seconds}, $r->{rate}, $r->{p50}, $r->{p99},
        $r->{max}, $r->{nbad}, $r->{socket_errors}, $r->{codes};
}


# CLIs started together --------------------------------------------------

# forks one child per job ({args, key, dir}), each blocked on a pipe; all
# exec the CLI when the pipe closes.  They are the platform's background
# CLIs (stopped at its end).  Returns (the moment of the release, pids).
sub cli_at_once {
    my (@jobs) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my @pids;
    my $n = 0;
    for my $j (@jobs) {
        $n++;
        my %env = $p->cli_env(SHUTTLE_API_KEY => $p->key($j->{key}));
        my ($out, $err) = map { "$dir/storm-cli-$n.$_" } qw(out err);
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $wr;
            my $go = <$rd>;          # the parent closes the pipe: go
            open STDIN, '<', '/dev/null';
            open STDOUT, '>', $out;
            open STDERR, '>', $err;
            %ENV = %env;
            chdir $j->{dir} or POSIX::_exit(126) if defined $j->{dir};
            my @cmd = (Shuttle::Platform::shuttle_bin(), @{ $j->{args} });
            exec { $cmd[0] } @cmd or POSIX::_exit(127);
        }
        push @{ $p->{bg} }, $pid;
        $p->{bg_files}{$pid} = [$out, $err];
        push @pids, $pid;
    }
    close $rd;
    my $t0 = time;
    close $wr;
    return ($t0, @pids);
}

# waits for those pids' exit: { pid => [exit status, seconds] }
sub cli_wait {
    my ($t0, $timeout, @pids) = @_;
    my %left = map { $_ => 1 } @pids;
    my %done;
    $t->wait_until(sub {
        for my $pid (keys %left) {
            my $r = waitpid($pid, WNOHANG);
            next unless $r == $pid || $r == -1;
            $done{$pid} = [($? & 127) ? 128 + ($? & 127) : $? >> 8,
                           time - $t0];
            delete $left{$pid};
        }
        !%left;
    }, $timeout);
    $p->{bg} = [grep { $left{$_} } @{ $p->{bg} }];
    $done{$_} = [undef, undef] for keys %left;
    return \%done;
}


# the platform, as the store says it should be ---------------------------

sub listening_ports { Shuttle::Fault::listening_ports($lo, $hi) }

sub ppid_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $s = <$fh> // '';
    my @f = split ' ', ($s =~ s/^.*\) //sr);
    return wantarray ? ($f[1], $f[0]) : $f[1];     # ppid, state
}

sub cmdline {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/cmdline" or return '';
    my $c = do { local $/; <$fh> } // '';
    return $c =~ s/\0/ /gr =~ s/\s+$//r;
}

# the builder's descendants other than its loaders (a sandboxed loader is
# an init and the loader under it) and the warm loader: what a build or a
# start left behind
sub strays {
    my $builder = $p->builder_pid or return ();
    my %kids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $pp = ppid_of($pid) or next;
        push @{ $kids{$pp} }, $pid;
    }
    my %loader = map { $_ => 1 } $t->loader_pids;
    my @stray;
    my @todo = @{ $kids{$builder} // [] };
    while (my $pid = shift @todo) {
        my $c = cmdline($pid);
        next if $loader{$pid};                        # and its tree
        next if $c =~ /shuttle-loader/ && $c =~ /--warm/;
        next if $c =~ /^shuttle-builder keep /;      # its socket keeper
        my (undef, $state) = ppid_of($pid);
        push @stray, "$pid ($state) $c";
        push @todo, @{ $kids{$pid} // [] };
    }
    return @stray;
}

# everything the store says, and nothing else
sub consistent {
    my ($what) = @_;

    ok($t->wait_until(sub { !unsettled() }, 60),
       "$what: every deployment settled")
        or diag explain [unsettled()];

    is(`sqlite3 $data/shuttle.db 'PRAGMA integrity_check' 2>&1`, "ok\n",
       "$what: the store passes integrity_check");

    my @running;
    my $same = $t->wait_until(sub {
        @running = store_rows("SELECT d.id, p.name, d.pid, d.port "
            . "FROM deployments d JOIN projects p ON p.id = d.project "
            . "WHERE d.state = 'running' ORDER BY d.id");
        join(' ', sort { $a <=> $b } $t->loader_pids)
            eq join(' ', sort { $a <=> $b } map { $_->[2] } @running)
        && join(' ', listening_ports())
            eq join(' ', sort { $a <=> $b } map { $_->[3] } @running);
    }, 20);
    my @current = store_rows('SELECT current FROM projects '
        . 'WHERE deleted IS NULL AND current IS NOT NULL ORDER BY current');
    is_deeply([map { $_->[0] } @running], [map { $_->[0] } @current],
              "$what: the running deployments are the projects' current");
    is_deeply([sort { $a <=> $b } $t->loader_pids],
              [sort { $a <=> $b } map { $_->[2] } @running],
              "$what: the loaders are the running deployments' "
              . scalar(@running) . ', no other');
    is_deeply([listening_ports()],
              [sort { $a <=> $b } map { $_->[3] } @running],
              "$what: the ports listening are theirs, no other");

    opendir my $dh, $t->builder_spool;
    my @spool = grep { !/^\./ } readdir $dh;
    is("@spool", '', "$what: the spool is empty");

    my @left = grep { -e } map { glob "$data/projects/*/deployments/*/$_" }
                           qw(src upload.tar.gz);
    is("@left", '', "$what: no build tree or upload left");

    my @stray;
    $t->wait_until(sub { !(@stray = strays()) }, 10);
    is_deeply(\@stray, [], "$what: no process of a build or a start left "
              . 'under the builder');
}


# two projects running, measured before the storm -------------------------

my @steady = qw(steady-a steady-b);
for my $name (@steady) {
    my $r = $p->upload('alice', $name, app($name, 1));
    is($r->{status}, 202, "$name uploaded") or diag $r->{body};
    $t->wait_deployment('alice', $r->{json}{id}, qr/^running$/, 60);
}
is(body_of($_), "$_ v1\n", "$_ serves") for @steady;

my @steady_requests = map { ['GET', '/', { Host => "$_.localhost" }] }
                      @steady;
my %steady_wrk = (requests => \@steady_requests, rate => $STEADY_RATE,
                  connections => 8, body => "^steady%-[ab] v1\n\$");

my $before = wrk_run(%steady_wrk, seconds => $N{before});
diag 'before the storm: ' . wrk_says($before);
is($before->{failed}, 0, 'wrk on the 2 running projects before the storm: '
   . 'none failed') or diag join "\n", @{ $before->{bad} };


# 1. N projects deployed at once from K keys --------------------------------

my (@jobs, %key_of);
for my $key (@KEYS) {
    for my $i (1 .. $N{per_key}) {
        my $name = "storm-$key-$i";
        $key_of{$name} = $key;
        push @jobs, { key => $key, name => $name, args => ['deploy'],
                      dir => app($name, 1) };
    }
}

my $during_w = wrk_start(%steady_wrk, seconds => 600);
# the storm starts once wrk has its connections open
ok(wrk_connected($during_w, 8), 'wrk has its connections open');

my ($storm_t0, @storm_pids) = cli_at_once(@jobs);
my %cli = %{ cli_wait($storm_t0, $FULL ? 300 : 120, @storm_pids) };
my $storm_s = time - $storm_t0;
my $during = wrk_stop($during_w, stop => 1);
diag 'during the storm: ' . wrk_says($during);

my (@cli_bad, %cli_id);
for my $i (0 .. $#jobs) {
    my $pid = $storm_pids[$i];
    my ($rc, $s) = @{ $cli{$pid} };
    my ($out, $err) = $p->cli_output($pid);
    ($cli_id{ $jobs[$i]{name} }) = $err =~ /^Deployment (\d+):/m;
    push @cli_bad, "$jobs[$i]{name}: exit " . ($rc // 'none (killed)')
                   . ": $err"
        unless defined $rc && $rc == 0
               && $out =~ m{http://\Q$jobs[$i]{name}\E\.localhost:$port};
}
is_deeply(\@cli_bad, [], "$STORM `shuttle deploy` at once from $N{keys} "
          . 'keys: each exits 0 and prints its URL');

# every deployment accounted for: one each, Running, in the store and in
# each key's view of the API
my %storm = map { $_->{name} => 1 } @jobs;
my @rows = grep { $storm{ $_->[1] } } store_rows(
    'SELECT d.id, p.name, d.state, d.reason, d.created, d.running_since '
    . 'FROM deployments d JOIN projects p ON p.id = d.project ORDER BY d.id');
my @running = grep { $_->[2] eq 'running' } @rows;
my $lost = $STORM - @running;
is(scalar @rows, $STORM, "$STORM deployments in the store, one a project");
is($lost, 0, '... every one Running (none lost, none stuck)')
    or diag explain [grep { $_->[2] ne 'running' } @rows];
is_deeply({ map { $_->[1] => $_->[0] } @rows }, \%cli_id,
          '... each the one its `shuttle deploy` was told of');

my @view_bad;
for my $key (@KEYS) {
    my $list = $p->v1($key, 'GET', '/v1/projects')->{json}{projects} // [];
    my @mine = sort map { "$_->{name}:$_->{state}" } @$list;
    my @want = sort map { "$_:running" }
               grep { $key_of{$_} eq $key } keys %storm;
    push @view_bad, "$key sees @mine" if "@mine" ne "@want";
    for my $name (grep { $key_of{$_} eq $key } sort keys %storm) {
        my $ds = $p->v1($key, 'GET', "/v1/projects/$name/deployments")
                   ->{json}{deployments} // [];
        push @view_bad, "$name: " . join(' ', map { "$_->{id}:$_->{state}" }
                                               @$ds)
            unless @$ds == 1 && $ds->[0]{state} eq 'running';
    }
}
is_deeply(\@view_bad, [], 'each key sees its projects Running, each with '
          . 'its one deployment, and no other key\'s');

my @wrong = grep { body_of($_) ne "$_ v1\n" } sort keys %storm;
is("@wrong", '', "the $STORM projects serve their upload");

my @created = sort { $a <=> $b } map { $_->[4] } @rows;
my @run_at = sort { $a <=> $b } grep { length } map { $_->[5] } @rows;
my $accepted_ms = @created ? $created[-1] - $created[0] : 0;
my $first_run_ms = @run_at && @created ? $run_at[0] - $created[0] : 0;
my $all_run_ms = @run_at && @created ? $run_at[-1] - $created[0] : 0;
my @cli_s = sort { $a <=> $b } grep { defined } map { $_->[1] } values %cli;

is($during->{failed}, 0, "wrk on the 2 running projects during the storm: "
   . "$during->{requests} requests, none failed")
    or diag join "\n", @{ $during->{bad} };
ok($during->{requests} > 0, '... and it was sending');

Shuttle::Fault::report("$STORM deploys at once from $N{keys} keys "
    . "(shuttle deploy), wrk on 2 others", $during, lost => $lost,
    note => sprintf('the 2 at %.0f req/s: p50 %.2f ms, p99 %.2f ms before; '
        . 'p50 %.2f ms, p99 %.2f ms during; %d uploads accepted within '
        . '%d ms, first Running after %.1f s, all after %.1f s, CLIs done '
        . 'in %.1f s (median %.1f s)', $during->{rate}, $before->{p50},
        $before->{p99}, $during->{p50}, $during->{p99}, $STORM,
        $accepted_ms, $first_run_ms / 1000, $all_run_ms / 1000,
        $storm_s, pct(\@cli_s, 0.5)));


# 2. M deploys of one project back to back --------------------------------

my $hsrc = "$dir/src/hammer";
app('hammer', 0, $hsrc);
my ($rc, $out, $err) = $p->cli(['deploy'], dir => $hsrc, timeout => 120);
is($rc, 0, 'hammer v0 deployed') or diag $err;
is(body_of('hammer'), "hammer v0\n", '... and serves');
my ($first) = store_rows("SELECT max(d.id) FROM deployments d JOIN projects "
                         . "p ON p.id = d.project WHERE p.name = 'hammer'");

my $client = Shuttle::Fault::client($p, ['hammer'], ok => qr/^hammer v\d+$/);

my (@ids, @post_bad, @cli_ms);
my $back_t0 = time;
for my $v (1 .. $N{back}) {
    app('hammer', $v, $hsrc);
    my $t1 = time;
    my ($rc, $out, $err) = $p->cli(['deploy', '--no-follow'], dir => $hsrc);
    push @cli_ms, (time - $t1) * 1000;
    my ($id) = $out =~ /^(\d+)$/m;
    if ($rc == 0 && $id) {
        push @ids, $id;
    } else {
        push @post_bad, "v$v: exit $rc: $err";
    }
}
my $posted_s = time - $back_t0;
is_deeply(\@post_bad, [], "$N{back} `shuttle deploy --no-follow` back to "
          . 'back: each accepted') or diag $p->builder_log;
my $last = $ids[-1];

my $d;
$t->wait_until(sub {
    $d = deployment('alice', $last);
    ($d->{state} // '') =~ /^(running|failed|crashed)$/ }, $FULL ? 180 : 90);
my $back_s = time - $back_t0;
is($d->{state}, 'running', "the newest upload (#$last) runs")
    or diag explain $d;
ok($t->wait_until(sub { !unsettled() }, 60),
   '... and every deployment settled');
# its predecessor drains and exits: one loader left for the project
my @hloaders;
ok($t->wait_until(sub {
        @hloaders = grep { cmdline($_) =~ m{/projects/hammer/} }
                    $t->loader_pids;
        @hloaders == 1 }, 20),
   'the project has one loader') or diag "loaders: @hloaders";
is(body_of('hammer'), "hammer v$N{back}\n", "... which serves v$N{back}, "
   . 'the newest upload');
my $r = $client->stop;

# every deployment's state says what happened
# what happened to each: the newest runs; each other one was superseded
# by a newer one, after it ran or while it waited (lost: a state that does
# not say so, or no reason); one that failed says why (and fails the test)
my (%states, @unexplained, %failed, $ran, $skipped);
($ran, $skipped) = (0, 0);
for my $id ($first->[0], @ids) {
    my $dep = deployment('alice', $id);
    my $st = $dep->{state} // 'none';
    $states{$st}++;
    my @tr = map { $_->{state} } @{ $dep->{transitions} // [] };
    if ($st eq 'failed' && ($dep->{reason} // '') ne '') {
        push @{ $failed{ $dep->{reason} =~ s/#\d+/#N/gr } }, $id;
    } elsif ($id == $last) {
        push @unexplained, "#$id (the newest) is $st" if $st ne 'running';
    } elsif ($st eq 'superseded') {
        my $by = $dep->{superseded_by} // 0;
        push @unexplained, "#$id superseded by #$by, not a newer one"
            unless $by > $id;
        push @unexplained, "#$id superseded with no reason"
            unless ($dep->{reason} // '') =~ /superseded by #\d+/;
        if (grep { $_ eq 'running' } @tr) { $ran++ }
        elsif ("@tr" eq 'queued superseded') { $skipped++ }
        else { push @unexplained, "#$id superseded after: @tr" }
    } else {
        push @unexplained, "#$id is $st: @tr";
    }
}
is_deeply(\@unexplained, [], "each of the " . (@ids + 1) . ' deployments '
          . 'says what happened: the newest running, the others '
          . 'superseded by a newer one (after running, or while queued)')
    or diag join "\n", @unexplained[0 .. ($#unexplained < 9 ? $#unexplained
                                                         : 9)];
my $nfailed = 0;
$nfailed += @$_ for values %failed;
my $failed_says = join '; ', map {
    my @f = @{ $failed{$_} };
    scalar(@f) . " \"$_\" (#$f[0]" . (@f > 1 ? "..#$f[-1])" : ')')
} sort keys %failed;
is($nfailed, 0, 'none failed') or diag "failed: $failed_says";
diag "states: " . join(', ', map { "$_ $states{$_}" } sort keys %states)
     . "; ran then superseded $ran, superseded while queued $skipped";

is($r->{failed}, 0, "a client on the project all along: $r->{served} "
   . 'requests served, none failed') or diag join "\n", @{ $r->{bad} };
ok($r->{served} > 20, '... and it was asked');

my @spool = grep { !/^\./ } do { opendir my $dh, $t->builder_spool; readdir $dh };
my @hleft = grep { -e } map { glob "$data/projects/hammer/deployments/*/$_" }
                        qw(src upload.tar.gz);
is(join(' ', @spool, @hleft), '', 'no upload left in the spool, no build tree or '
   . 'upload in the deployments');
my @sos = glob "$data/projects/hammer/deployments/*/service.so";
my $so_bytes = 0;
$so_bytes += -s $_ for @sos;
my @hdirs = glob "$data/projects/hammer/deployments/*";

Shuttle::Fault::report("$N{back} deploys of one project back to back "
    . '(shuttle deploy --no-follow), a client on it', $r,
    lost => scalar(@unexplained),
    note => sprintf('p50 %.1f ms, p99 %.1f ms; %d uploads in %.1f s (a '
        . 'CLI run p50 %.0f ms, p99 %.0f ms), the newest running %.1f s '
        . 'after the first; %d built and ran, %d superseded while queued, '
        . '%d failed%s; %d loader; %d deployment directories, %d service.so '
        . 'kept (%.1f MB)', $r->{p50}, $r->{p99}, scalar @ids, $posted_s,
        pct(\@cli_ms, 0.5), pct(\@cli_ms, 0.99), $back_s,
        $ran + (($d->{state} // "") eq "running" ? 1 : 0), $skipped, $nfailed,
        $nfailed ? ": $failed_says" : '', scalar @hloaders, scalar @hdirs,
        scalar @sos, $so_bytes / 1e6));


# 3. /v1 calls at 1,000 a second -------------------------------------------

# what each key may ask: its list, its projects, their deployments (the
# hammer's list is long), a few of its deployments
my @v1;
my @hammer_ids = (@ids)[map { int($_ * $#ids / 9) } 0 .. 9];
for my $key ('alice', @KEYS) {
    my %h = (Host => 'localhost', Authorization => 'Bearer ' . $p->key($key));
    my @names = $key eq 'alice' ? (@steady, 'hammer')
                                : grep { $key_of{$_} eq $key } sort keys %storm;
    push @v1, ['GET', '/v1/projects', \%h];
    push @v1, map { ['GET', "/v1/projects/$_", \%h] } @names;
    push @v1, map { ['GET', "/v1/projects/$_/deployments", \%h] } @names;
    my @dids = $key eq 'alice'
        ? @hammer_ids
        : map { $_->[0] } grep { $key_of{ $_->[1] } eq $key } @rows;
    push @v1, map { ['GET', "/v1/deployments/$_", \%h] } @dids;
}
# shuffled (the same way each run): each key's calls spread over the run
srand(13);
my @mixed = List::Util::shuffle(@v1);

my @serving = (@steady, 'hammer', sort keys %storm);
my $c3 = Shuttle::Fault::client($p, \@serving, ok => qr/^[a-z0-9-]+ v\d+$/,
                                pause => 0.002);
my $v1r = wrk_run(requests => \@mixed, rate => $V1_RATE, threads => 2,
                  connections => 16, seconds => $N{v1_seconds});
my $c3r = $c3->stop;
diag "/v1 calls: " . wrk_says($v1r);

is($v1r->{nbad}, 0, "/v1 calls: $v1r->{requests} answered, every one 200 "
   . "($v1r->{codes})") or diag join "\n", @{ $v1r->{bad} };
is($v1r->{socket_errors}, 0, '... no socket error, no timeout');
# the rate reached is a figure of this machine (2 busy cores): reported;
# a collapse below a tenth of it fails
ok($v1r->{rate} >= $V1_RATE / 10, sprintf '... at %.0f calls a second '
   . '(%d asked)', $v1r->{rate}, $V1_RATE);
is($c3r->{failed}, 0, "the " . @serving . " running projects meanwhile: "
   . "$c3r->{served} requests, none failed")
    or diag join "\n", @{ $c3r->{bad} };
ok($c3r->{served} > 10, '... and they were asked');
is(body_of('hammer'), "hammer v$N{back}\n", 'the hammer still serves its '
   . 'newest');

# what one call of each kind takes alone, the storm over: curl's
# time_total of 15 in a row on one connection to nginx, the median
my %one;
my ($k1) = @KEYS;
my ($k1p) = grep { $key_of{$_} eq $k1 } sort keys %storm;
my @kinds = (
    ["alice GET /v1/projects (3)", 'alice', '/v1/projects'],
    ["$k1 GET /v1/projects ($N{per_key})", $k1, '/v1/projects'],
    ['GET /v1/projects/NAME', $k1, "/v1/projects/$k1p"],
    ['GET /v1/projects/NAME/deployments (1)', $k1,
     "/v1/projects/$k1p/deployments"],
    ['GET /v1/projects/hammer/deployments (' . (@ids + 1) . ')', 'alice',
     '/v1/projects/hammer/deployments'],
    ['GET /v1/deployments/ID', 'alice', "/v1/deployments/$last"],
);
for my $k (-x '/usr/bin/curl' ? @kinds : ()) {
    my ($what, $key, $path) = @$k;
    my ($rc, $out) = Shuttle::Platform::run_cmd(['/usr/bin/curl', '-s',
        '-H', 'Authorization: Bearer ' . $p->key($key),
        '-w', '%{http_code} %{time_total}\n',
        map { ('-o', '/dev/null', $p->api . $path) } 1 .. 15],
        env => { PATH => $ENV{PATH} });
    my @res = map { [split] } split /\n/, $out;
    my @not = grep { $_->[0] ne '200' } @res;
    $one{$what} = @res != 15 || @not ? "curl: exit $rc, '$out'"
        : sprintf '%.1f ms', pct([map { $_->[1] * 1000 } @res], 0.5);
}
my $one = join '; ', map { "$_->[0] $one{$_->[0]}" }
                     grep { $one{$_->[0]} } @kinds;
diag "one call alone: $one";

Shuttle::Fault::report(sprintf('/v1 calls at %d/s for %d s (%d keys: lists, '
        . 'projects, deployments; wrk)', $V1_RATE, $N{v1_seconds},
        $N{keys} + 1), $v1r,
    note => sprintf('%.0f calls/s reached, p50 %.2f ms, p99 %.2f ms, max '
        . '%.1f ms; statuses %s; one call alone: %s', $v1r->{rate},
        $v1r->{p50}, $v1r->{p99}, $v1r->{max}, $v1r->{codes}, $one));
Shuttle::Fault::report(sprintf('the %d running projects during the /v1 '
        . 'calls (client)', scalar @serving), $c3r);


# the whole platform after the storms --------------------------------------

ok(kill(0, $p->builder_pid), 'the builder runs');
consistent('after the storms');

diag sprintf 'faults-storm: %.1f s (%s sizes)', time - $T0,
     $FULL ? 'full' : 'reduced';

$p->stop;

done_testing();
