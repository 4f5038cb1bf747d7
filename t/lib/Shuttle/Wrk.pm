package Shuttle::Wrk;

# wrk against projects through nginx for the length of a fault, every
# answer checked, its figures counted as Shuttle::Fault's client counts
# them (served, failed):
#
#   my $w = Shuttle::Wrk->start($p, ['one', 'two'],
#                               ok => ["one v1\n", "two v1\n"]);
#   ... the fault ...
#   my $r = $w->stop;   # {requests, served, failed, bad, non2xx,
#                       #  socket_errors, p50, p99, max (ms), samples}
#
# A Lua script makes wrk cycle through the projects' Hosts and count as
# bad every answer that is not 200 or, with ok =>, whose body is none of
# those given; done() prints one line of figures and the first bad
# answers.  Debian's wrk has no -R: pause => MS (10) paces each
# connection, MS between its requests (0: none).  close => 1 sends
# "Connection: close", a new connection a request; else wrk keeps its
# connections alive.  start() returns once wrk has been answered.  The
# process is stopped at the end even when the test dies.

use strict;
use warnings;

use POSIX qw(WNOHANG);
use Scalar::Util qw(refaddr weaken);
use Time::HiRes qw(time sleep);

our $WRK = $ENV{WRK} // '/usr/bin/wrk';
our $n = 0;

my %LIVE;

sub available { -x $WRK }

sub _lua_str {
    my ($s) = @_;
    $s =~ s/([\\"])/\\$1/g;
    $s =~ s/\n/\\n/g;
    return qq("$s");
}

sub start {
    my ($class, $p, $projects, %o) = @_;
    my $t = $p->t;
    my $k = ++$n;
    my $dir = $p->testdir;
    my $first = "$dir/wrk-$k.answered";
    my $out = "$dir/wrk-$k.out";
    my $conns = $o{connections} // 4;
    my $pause = $o{pause} // 10;
    my $path = $o{path} // '/';

    my $hosts = join ', ', map { _lua_str("$_.localhost") } @$projects;
    my $ok = $o{ok} ? join ', ', map { '[' . _lua_str($_) . '] = true' }
                                 @{ $o{ok} }
                    : '';
    my $close = $o{close} ? '["Connection"] = "close",' : '';

    my $script = $t->write_file("wrk-$k.lua", <<EOF);
local hosts = { $hosts }
local ok = { $ok }
local check = next(ok) ~= nil
local n = 0
local answered = false
bad = 0
samples = ""

function delay()
  return $pause
end

function request()
  n = n + 1
  return wrk.format("GET", ${\ _lua_str($path)},
                    { ["Host"] = hosts[n % #hosts + 1], $close })
end

function response(status, headers, body)
  if not answered then
    answered = true
    local f = io.open(${\ _lua_str($first)}, "w")
    if f then f:close() end
  end
  if status ~= 200 or (check and not ok[body or ""]) then
    bad = bad + 1
    if #samples < 1000 then
      samples = samples .. status .. " "
                .. string.gsub(string.sub(body or "", 1, 120), "\\n", " ")
                .. "\\n"
    end
  end
end

function done(summary, latency, requests)
  io.write(string.format("FAULT requests=%d duration_us=%d bad=%d "
    .. "status=%d connect=%d read=%d write=%d timeout=%d p50_us=%d "
    .. "p99_us=%d max_us=%d\\n", summary.requests, summary.duration, bad,
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
  io.write("SAMPLES\\n" .. samples)
end
EOF

    my @cmd = ($WRK, '-t', 1, '-c', $conns, '-d', ($o{seconds} // 600) . 's',
               '--timeout', '10s', '-s', $script, $p->api . '/');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }

    my $self = bless { pid => $pid, out => $out, t => $t, owner => $$ },
                     $class;
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};

    $t->wait_until(sub { -e $first || waitpid($pid, WNOHANG) != 0 }, 10)
        && -e $first
        or die "wrk was not answered in 10 s:\n"
               . ($t->read_file($out) // '');

    return $self;
}

sub pid { $_[0]{pid} }

# SIGINT: wrk prints what it measured
sub stop {
    my ($self) = @_;
    return $self->{result} if $self->{result};
    my $pid = delete $self->{pid};
    kill 'INT', $pid;
    unless ($self->{t}->wait_until(sub { waitpid($pid, WNOHANG) != 0 },
                                   15))
    {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }

    my $out = $self->{t}->read_file($self->{out}) // '';
    die "wrk gave no figures:\n$out" unless $out =~ /^FAULT /m;
    my %f = $out =~ /(\w+)=(\d+)/g;
    my ($samples) = $out =~ /^SAMPLES\n(.*)\z/ms;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    my $sockerr = $f{connect} + $f{read} + $f{write} + $f{timeout};

    return $self->{result} = {
        requests => $f{requests}, seconds => $f{duration_us} / 1e6,
        bad => $f{bad}, status => $f{status}, non2xx => $non2xx // 0,
        socket_errors => $sockerr,
        p50 => $f{p50_us} / 1000, p99 => $f{p99_us} / 1000,
        max => $f{max_us} / 1000,
        samples => [grep { length } split /\n/, $samples // ''],
        served => $f{requests} - $f{bad},
        failed => $f{bad} + $sockerr,
    };
}

# one line of what wrk measured
sub says {
    my ($r) = @_;
    return sprintf '%d requests in %.1f s, p50 %.2f ms, p99 %.2f ms, max '
        . '%.1f ms; bad %d, non-2xx %d, socket errors %d', $r->{requests},
        $r->{seconds}, $r->{p50}, $r->{p99}, $r->{max}, $r->{bad},
        $r->{non2xx}, $r->{socket_errors};
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    return if $$ != $self->{owner};
    if (my $pid = delete $self->{pid}) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    delete $LIVE{refaddr $self};
}

END {
    local $?;
    $_->DESTROY for grep { defined } values %LIVE;
}

1;
