package Shuttle::Test;

# The test harness of shuttle for nginx: the real nginx with the built
# module, in a temporary prefix, on free ports.  Core Perl only.  The
# documentation is the POD at the end of this file (perldoc t/lib/Shuttle/Test.pm).

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EINTR);
use Exporter qw(import);
use Fcntl qw(:flock O_RDWR O_CREAT);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(blessed refaddr weaken);
use Time::HiRes qw(sleep time);

our @EXPORT = qw(http_get http http_keepalive);
our @EXPORT_OK = qw(http_request parse_response read_response);

our $TIMEOUT = 5;        # seconds, every socket operation and every wait

# Every rand() of a test comes from one seed, printed first: a run that
# failed is replayed with SHUTTLE_TEST_SEED=N (the seed of a parallel run
# mixes in the pid, so two tests started together draw differently)
our $SEED = $ENV{SHUTTLE_TEST_SEED};
if (defined $SEED && $SEED !~ /^\d+\z/) {
    die "SHUTTLE_TEST_SEED=$SEED: not a number\n";
}
$SEED //= (int(time) ^ ($$ << 15)) & 0x7fffffff;
srand($SEED);
print STDERR "# $0: seed $SEED (SHUTTLE_TEST_SEED=$SEED replays it)\n";

my $REPO = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)),
                                       '..', '..', '..'));

sub repo        { $REPO }
sub module_path { $ENV{SHUTTLE_MODULE} // "$REPO/build/modules/ngx_http_shuttle_module.so" }
sub builder     { $ENV{SHUTTLE_BUILDER} // "$REPO/build/bin/shuttle-builder" }
sub nginx_binary { $ENV{NGINX_BINARY} // '/usr/sbin/nginx' }

# live harness objects, weakly held: END stops what they started
my %LIVE;

# The test process becomes a child subreaper: a daemonized nginx master is
# reparented to it, not to init (which may not reap in a container), so its
# exit is reaped here and leaves no zombie.
{
    my %prctl = (x86_64 => 157, aarch64 => 167, i686 => 172, i386 => 172);
    my ($arch) = (POSIX::uname())[4];
    if ($^O eq 'linux' && $prctl{$arch}) {
        syscall($prctl{$arch}, 36, 1, 0, 0, 0);   # PR_SET_CHILD_SUBREAPER
    }
}


# the object -------------------------------------------------------------

sub new {
    my ($class, %opts) = @_;

    my $base = $ENV{SHUTTLE_TEST_TMPDIR} // File::Spec->tmpdir;
    my $dir = tempdir('shuttle-test-XXXXXX', DIR => $base, CLEANUP => 0);
    $dir = abs_path($dir);

    # nginx workers run as nobody: the prefix must be traversable by them
    chmod 0755, $dir or die "chmod $dir: $!";
    make_path("$dir/tmp", { mode => 0755 });
    chmod 01777, "$dir/tmp" or die "chmod $dir/tmp: $!";

    my $self = bless {
        dir      => $dir,
        owner    => $$,              # a forked child never stops anything
        ports    => {},              # key => port
        port_socks => {},            # key => bound socket, held until run
        port_locks => [],            # lock file handles, held for life
        spawned  => [],              # pids of spawn()
        nginx_pid => undef,
        builder_pid => undef,        # builder_start()'s
        builder_ports => undef,      # [lo, hi], builder_start()'s range
        conf     => undef,
        keep     => $ENV{SHUTTLE_TEST_KEEP} ? 1 : 0,
    }, $class;

    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};

    return $self;
}

sub testdir { $_[0]{dir} }
sub zone    { "$_[0]{dir}/zone" }
sub pid_file { "$_[0]{dir}/nginx.pid" }
sub conf_file { "$_[0]{dir}/nginx.conf" }
sub error_log_file { "$_[0]{dir}/error.log" }
sub access_log_file { "$_[0]{dir}/access.log" }
sub nginx_pid { $_[0]{nginx_pid} }

sub write_file {
    my ($self, $name, $content) = @_;

    my $path = File::Spec->file_name_is_absolute($name)
               ? $name : "$self->{dir}/$name";
    make_path(dirname($path), { mode => 0755 });

    open my $fh, '>', $path or die "write_file $path: $!";
    binmode $fh;
    print $fh $content // '';
    close $fh or die "write_file $path: $!";
    chmod 0644, $path;

    return $path;
}

sub read_file {
    my ($self, $name) = @_;

    my $path = File::Spec->file_name_is_absolute($name)
               ? $name : "$self->{dir}/$name";
    open my $fh, '<', $path or return undef;
    binmode $fh;
    local $/;
    my $s = <$fh>;
    return $s // '';
}


# ports ------------------------------------------------------------------

# Ports are taken below the kernel's ephemeral range (where outgoing
# connections of wrk and of proxy_pass get their local ports), each one
# locked with flock on /tmp/shuttle-test-ports/PORT for the life of the
# test process (parallel prove jobs never share a port) and checked free by
# binding it; the bound socket is held until run() starts nginx.

my $LOCKDIR = '/tmp/shuttle-test-ports';

sub _port_range {
    my ($lo, $hi) = (32768, 60999);
    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        ($lo, $hi) = split ' ', scalar <$fh>;
    }
    # below the ephemeral range when there is room, above it otherwise
    return $lo > 12000 ? (10000, $lo - 1) : ($hi + 1, 65535);
}

sub port {
    my ($self, $key) = @_;

    $key //= 1;
    return $self->{ports}{$key} if $self->{ports}{$key};

    unless (-d $LOCKDIR) {
        mkdir $LOCKDIR;
        chmod 01777, $LOCKDIR;
    }

    my ($lo, $hi) = _port_range();
    my %mine = map { $_ => 1 } values %{ $self->{ports} };

    for (1 .. 1000) {
        my $port = $lo + int(rand($hi - $lo + 1));
        next if $mine{$port};

        sysopen(my $lock, "$LOCKDIR/$port", O_RDWR | O_CREAT, 0666) or next;
        unless (flock($lock, LOCK_EX | LOCK_NB)) {
            close $lock;
            next;
        }

        my $sock = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => $port,
            Proto => 'tcp', ReuseAddr => 0);
        unless ($sock) {
            close $lock;
            next;
        }

        push @{ $self->{port_locks} }, [$lock, "$LOCKDIR/$port"];
        $self->{port_socks}{$key} = $sock;
        return $self->{ports}{$key} = $port;
    }

    die "port: no free port in $lo..$hi";
}

sub _release_ports {
    my ($self) = @_;
    close $_ for values %{ $self->{port_socks} };
    $self->{port_socks} = {};
}

# $n consecutive free ports, each locked as port() locks one, for the life
# of the test (not held bound: a builder binds them)
sub port_range {
    my ($self, $n) = @_;

    $n //= 20;
    unless (-d $LOCKDIR) {
        mkdir $LOCKDIR;
        chmod 01777, $LOCKDIR;
    }

    my ($lo, $hi) = _port_range();

    TRY: for (1 .. 200) {
        my $base = $lo + int(rand($hi - $lo - $n));
        my @locks;
        for my $port ($base .. $base + $n - 1) {
            my $lock;
            my $ok = sysopen($lock, "$LOCKDIR/$port", O_RDWR | O_CREAT, 0666)
                     && flock($lock, LOCK_EX | LOCK_NB)
                     && IO::Socket::INET->new(
                            LocalAddr => '127.0.0.1', LocalPort => $port,
                            Proto => 'tcp', ReuseAddr => 0);
            unless ($ok) {
                close $lock if $lock;
                close $_->[0] for @locks;
                next TRY;
            }
            push @locks, [$lock, "$LOCKDIR/$port"];
        }
        push @{ $self->{port_locks} }, @locks;
        return ($base, $base + $n - 1);
    }

    die "port_range: no $n free ports in a row in $lo..$hi";
}


# the configuration ------------------------------------------------------

sub _subst {
    my ($self, $text) = @_;

    $text =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    $text =~ s/%%TESTDIR%%/$self->{dir}/g;
    $text =~ s/%%ZONE%%/$self->zone/ge;
    $text =~ s/%%REPO%%/$REPO/g;

    if ($text =~ /(%%\w+%%)/) {
        die "write_nginx_conf: unknown placeholder $1";
    }

    return $text;
}

sub _http_common {
    my ($self, %opts) = @_;
    my $d = $self->{dir};

    my $access = exists $opts{access_log} && !$opts{access_log}
                 ? 'access_log off;' : "access_log $d/access.log;";

    return <<"EOF";
    $access
    client_body_temp_path $d/tmp/client_body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
EOF
}

sub _preamble {
    my ($self, %opts) = @_;
    my $d = $self->{dir};
    my $level = $opts{error_log_level} // 'info';
    my $s = "# written by Shuttle::Test\n";

    if ($ENV{SHUTTLE_TEST_NO_MODULE}) {
        $s .= "# load_module omitted: SHUTTLE_TEST_NO_MODULE is set\n";
    } else {
        $s .= "load_module " . module_path() . ";\n";
    }

    $s .= "pid $d/nginx.pid;\n";
    $s .= "error_log $d/error.log $level;\n";
    return $s;
}

sub write_nginx_conf {
    my ($self, $text, %opts) = @_;

    $text = $self->_subst($text);

    my $full = $opts{full}
               // ($text =~ /^\s*(?:http|events)\s*\{/m ? 1 : 0);
    my $conf;

    if ($full) {
        $conf = $self->_preamble(%opts);
        my $common = $self->_http_common(%opts);
        $text =~ s/^(\s*http\s*\{[^\n]*\n)/$1$common/m;
        $conf .= $text;

    } else {
        my $user = '';
        if (defined $opts{user}) {
            $user = "user $opts{user};\n";
        } elsif ($> == 0) {
            $user = "user nobody nogroup;\n";
        }

        $conf = $self->_preamble(%opts)
              . $user
              . "daemon on;\n"
              . "master_process on;\n"
              . "worker_processes " . ($opts{worker_processes} // 1) . ";\n"
              . ($opts{main} // '')
              . "\nevents {\n    worker_connections 1024;\n"
              . ($opts{events} // '')
              . "}\n\nhttp {\n"
              . $self->_http_common(%opts)
              . "\n"
              . $text
              . "\n}\n";
    }

    $self->{conf} = $conf;
    $self->write_file('nginx.conf', $conf);
    return $conf;
}

sub conf { $_[0]{conf} }

# the TCP ports nginx listens on for this configuration: listen PORT,
# listen 127.0.0.1:PORT, listen *:PORT, listen localhost:PORT
sub _listen_ports {
    my ($self) = @_;
    my %p;
    my $conf = $self->{conf} // '';
    $conf =~ s/#[^\n]*//g;
    while ($conf =~ /\blisten\s+(?:(?:127\.0\.0\.1|localhost|\*|0\.0\.0\.0):)?(\d+)\b/g) {
        $p{$1} = 1;
    }
    return sort { $a <=> $b } keys %p;
}

sub _worker_processes {
    my ($self) = @_;
    my $conf = $self->{conf} // '';
    $conf =~ s/#[^\n]*//g;
    return 0 if $conf =~ /^\s*master_process\s+off\s*;/m;
    if ($conf =~ /^\s*worker_processes\s+(\w+)\s*;/m) {
        my $n = $1;
        if ($n eq 'auto') {
            $n = grep { /^processor\s/ } do {
                open my $fh, '<', '/proc/cpuinfo' or return 1; <$fh>;
            };
        }
        return $n || 1;
    }
    return 1;
}


# processes --------------------------------------------------------------

sub _proc_stat {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return;
    my $s = <$fh> // return;
    $s =~ /^\d+ \(.*\) (\S) (\d+)/s or return;
    return ($1, $2);                       # state, ppid
}

sub _cmdline {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/cmdline" or return '';
    local $/;
    my $s = <$fh> // '';
    $s =~ s/\0+$//;
    $s =~ tr/\0/ /;
    return $s;
}

# alive and not a zombie (a daemonized nginx is reaped by whoever is init)
sub _alive {
    my ($pid) = @_;
    return 0 unless $pid && kill(0, $pid);
    my ($state) = _proc_stat($pid);
    if (defined $state && $state eq 'Z') {
        waitpid($pid, WNOHANG);        # ours when reparented to us
        return 0;
    }
    return defined $state && $state ne 'X';
}

sub _children {
    my ($ppid) = @_;
    my @c;
    opendir my $dh, '/proc' or return;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my ($state, $pp) = _proc_stat($pid);
        push @c, $pid if defined $pp && $pp == $ppid
                         && $state ne 'Z' && $state ne 'X';
    }
    return @c;
}

# the pids of the nginx workers that serve (not those shutting down)
sub worker_pids {
    my ($self) = @_;
    my $m = $self->{nginx_pid} or return;
    return grep { _cmdline($_) =~ /worker process$/ } _children($m);
}

sub _listening {
    my %l;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        <$fh>;
        while (<$fh>) {
            my @f = split;
            next unless $f[3] eq '0A';            # LISTEN
            $l{hex $1} = 1 if $f[1] =~ /:([0-9A-F]+)$/;
        }
    }
    return \%l;
}

sub _wait {
    my ($what, $timeout, $cond) = @_;
    my $end = time + ($timeout // $TIMEOUT);
    while (1) {
        my $r = $cond->();
        return $r if $r;
        return if time > $end;
        sleep 0.02;
    }
}

sub log_tail { $_[0]->_tail($_[1] // 20) }

sub _tail {
    my ($self, $n) = @_;
    my $log = $self->error_log // '';
    my @l = split /\n/, $log;
    @l = @l[-$n .. -1] if @l > $n;
    return join('', map { "    $_\n" } @l);
}

# runs a command, returns (exit status, stdout+stderr)
sub _capture {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        { no warnings q(exec); exec { $cmd[0] } @cmd; }
        print "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($?, $out);
}

sub _nginx_cmd {
    my ($self, @extra) = @_;
    my $d = $self->{dir};
    return (nginx_binary(), '-p', "$d/", '-c', "$d/nginx.conf",
            '-e', "$d/error.log", @extra);
}

sub nginx_test {
    my ($self) = @_;
    die "nginx_test: no configuration written" unless defined $self->{conf};
    my ($rc, $out) = _capture($self->_nginx_cmd('-t'));
    return wantarray ? ($rc == 0, $out) : $rc == 0;
}

sub run {
    my ($self) = @_;

    die "run: no configuration written" unless defined $self->{conf};
    die "run: nginx already running (pid $self->{nginx_pid})"
        if $self->{nginx_pid} && _alive($self->{nginx_pid});

    if (!$ENV{SHUTTLE_TEST_NO_MODULE} && !-f module_path()) {
        die "run: the module " . module_path() . " is not built (run make)\n";
    }

    my @listen = $self->_listen_ports;
    unlink $self->pid_file;
    $self->_release_ports;

    my ($rc, $out) = _capture($self->_nginx_cmd);
    if ($rc != 0) {
        die "run: nginx failed (exit " . ($rc >> 8) . "):\n$out"
            . "error log:\n" . $self->_tail(20);
    }

    my $pid = _wait('pid file', $TIMEOUT, sub {
        my $p = $self->read_file('nginx.pid') // return;
        $p =~ /^(\d+)/ && _alive($1) ? $1 : undef;
    }) or die "run: no live pid in " . $self->pid_file . "\nerror log:\n"
              . $self->_tail(20);

    $self->{nginx_pid} = $pid;
    my $nw = $self->_worker_processes;

    _wait('listen', $TIMEOUT, sub {
        my $l = _listening();
        return if grep { !$l->{$_} } @listen;
        return 1 unless $nw;
        return $self->worker_pids >= $nw;
    }) or die "run: nginx $pid not ready in ${TIMEOUT}s (ports @listen, "
              . "$nw workers)\nerror log:\n" . $self->_tail(20);

    return $self;
}

sub reload {
    my ($self) = @_;
    my $pid = $self->{nginx_pid};
    die "reload: nginx not running" unless $pid && _alive($pid);

    my @old = $self->worker_pids;
    my $mark = -s $self->error_log_file // 0;
    my $nw = $self->_worker_processes;
    my @listen = $self->_listen_ports;
    $self->_release_ports;

    kill 'HUP', $pid or die "reload: kill HUP $pid: $!";

    my $ok = _wait('reload', $TIMEOUT, sub {
        my $new = substr($self->error_log // '', $mark);
        die "reload: nginx refused the configuration:\n$new"
            if $new =~ /\[emerg\]/;
        return if grep { _alive($_) } @old;
        my $l = _listening();
        return if grep { !$l->{$_} } @listen;
        return $self->worker_pids >= $nw;
    });

    die "reload: old workers (@old) still there after ${TIMEOUT}s\n"
        . "error log:\n" . $self->_tail(20) unless $ok;

    return $self;
}

sub _stop_pid {
    my ($pid, $check, @signals) = @_;

    for my $sig (@signals) {
        return 1 unless $check->();
        kill $sig, $pid;
        my $t = $sig eq 'KILL' ? 2 : $TIMEOUT;
        return 1 if _wait("stop $pid", $t, sub { !$check->() });
    }
    return !$check->();
}

sub stop {
    my ($self) = @_;
    return $self if $$ != $self->{owner};

    if (my $pid = delete $self->{nginx_pid}) {
        my $dir = $self->{dir};
        # it is ours while its title names our prefix (a pid is reused)
        my $ours = sub { _alive($pid) && _cmdline($pid) =~ /\Q$dir\E/ };
        my @kids = _children($pid);

        unless (_stop_pid($pid, $ours, 'QUIT', 'TERM', 'KILL')) {
            warn "stop: nginx $pid would not exit\n";
        }
        # a master killed leaves its workers: kill those that remain
        for my $k (@kids) {
            kill 'KILL', $k if _alive($k) && _cmdline($k) =~ /^nginx: /;
        }
    }

    $self->builder_stop if $self->{builder_pid};
    $self->kill_loaders;
    $self->kill_keeper;
    $self->stop_spawned;
    return $self;
}

sub spawn {
    my ($self, @cmd) = @_;

    my $n = @{ $self->{spawned} } + 1;
    my $log = "$self->{dir}/spawn-$n.log";

    my $pid = fork // die "spawn: fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        { no warnings q(exec); exec { $cmd[0] } @cmd; }
        print STDERR "spawn: exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }

    push @{ $self->{spawned} }, $pid;
    return $pid;
}

sub spawn_log {
    my ($self, $n) = @_;
    return $self->read_file("spawn-$n.log");
}

sub stop_spawned {
    my ($self, @pids) = @_;
    return if $$ != $self->{owner};

    my %only = map { $_ => 1 } @pids;
    my @left;
    for my $pid (@{ $self->{spawned} }) {
        if (@pids && !$only{$pid}) {
            push @left, $pid;
            next;
        }
        my $gone = 0;
        my $check = sub {
            return 0 if $gone;
            my $r = waitpid($pid, WNOHANG);
            $gone = 1 if $r == $pid || $r == -1;
            return !$gone;
        };
        _stop_pid($pid, $check, 'TERM', 'KILL');
    }
    $self->{spawned} = \@left;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    return if $$ != $self->{owner} || $self->{destroyed}++;
    $self->stop;
    $self->_release_ports;
    for (@{ $self->{port_locks} }) {
        unlink $_->[1];
        close $_->[0];
    }
    $self->{port_locks} = [];
    if ($self->{keep}) {
        print STDERR "# Shuttle::Test: kept $self->{dir}\n";
    } elsif ($self->{dir} && -d $self->{dir}) {
        remove_tree($self->{dir});
    }
    delete $LIVE{refaddr $self};
}

END {
    local $?;
    for my $t (grep { defined } values %LIVE) {
        $t->DESTROY;
    }
}

# SIGINT and SIGTERM end the test through END, so nginx is stopped too
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} //= sub { exit 128 + ($sig eq 'INT' ? 2 : $sig eq 'TERM' ? 15 : 1) };
}


# the builder ------------------------------------------------------------

sub builder_socket { "$_[0]{dir}/builder.sock" }
sub builder_data   { "$_[0]{dir}/data" }
sub builder_spool  { "$_[0]{dir}/spool" }
sub builder_log_file { "$_[0]{dir}/builder.log" }
sub builder_log    { $_[0]->read_file('builder.log') }
sub builder_pid    { $_[0]{builder_pid} }
sub builder_ports  { @{ $_[0]{builder_ports} // [] } }

# the builder's options for this prefix: the zone and the spool where the
# module expects them (<testdir>/zone, <testdir>/spool)
sub _builder_cmd {
    my ($self, @args) = @_;
    $self->{builder_ports} //= [ $self->port_range(20) ];
    my ($lo, $hi) = @{ $self->{builder_ports} };
    my @cmd = (builder(), 'serve',
               '--data', $self->builder_data,
               '--zone', $self->zone,
               '--spool', $self->builder_spool,
               '--socket', $self->builder_socket,
               '--ports', "$lo-$hi",
               '--log', $self->builder_log_file);
    push @cmd, '--nginx-user', 'nobody' if $> == 0;
    return (@cmd, @args);
}

sub builder_start {
    my ($self, @args) = @_;

    die "builder_start: a builder runs already (pid $self->{builder_pid})"
        if $self->{builder_pid} && _alive($self->{builder_pid});

    my @cmd = $self->_builder_cmd(@args);
    my $mark = -s $self->builder_log_file // 0;

    my $pid = fork // die "builder_start: fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->builder_log_file;
        open STDERR, '>&', \*STDOUT;
        { no warnings q(exec); exec { $cmd[0] } @cmd; }
        print STDERR "builder_start: exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    $self->{builder_pid} = $pid;

    # ready: this builder says so, and the socket takes connections (a
    # socket that answers alone may be a killed builder's, held open a
    # moment by one of its children)
    my $ok = _wait('builder', $TIMEOUT, sub {
        return -1 if waitpid($pid, WNOHANG) == $pid;
        return 0 unless substr($self->builder_log // '', $mark)
                        =~ /\bready: pid \Q$pid\E\b/;
        my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(),
                                      Peer => $self->builder_socket);
        return $s ? 1 : 0;
    });

    if (!$ok || $ok == -1) {
        my $log = substr($self->builder_log // '', $mark);
        kill 'KILL', $pid unless $ok;
        waitpid($pid, 0);
        $self->{builder_pid} = undef;
        die "builder_start: @cmd: "
            . ($ok ? "exited (status " . ($? >> 8) . ")"
                   : "no socket in ${TIMEOUT}s") . ":\n$log";
    }

    return $pid;
}

# (status, output) of a builder run in the foreground with this prefix's
# options: one that should refuse to start
sub builder_run {
    my ($self, @args) = @_;
    # without --log: its messages are what is wanted
    my @c;
    my @all = $self->_builder_cmd(@args);
    while (@all) {
        my $a = shift @all;
        if ($a eq '--log') { shift @all; next }
        push @c, $a;
    }
    return _capture(@c);
}

# sends $sig (TERM) to the builder and waits for it to exit; returns its
# wait status
sub builder_stop {
    my ($self, $sig, $timeout) = @_;
    my $pid = $self->{builder_pid} or return;
    return if $$ != $self->{owner};

    kill $sig // 'TERM', $pid;
    my $status;
    my $gone = _wait('builder stop', $timeout // 30, sub {
        my $r = waitpid($pid, WNOHANG);
        $status = $?, return 1 if $r == $pid;
        return $r == -1;
    });
    unless ($gone) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $status = $?;
        warn "builder_stop: builder $pid ignored SIG" . ($sig // 'TERM')
             . ", killed\n";
    }
    $self->{builder_pid} = undef;
    return $status;
}

# the loaders of this prefix: their service.so is under it
# a sandboxed loader is two processes, the init of its pid namespace and
# the loader proper, its child: the init's pid is the loader's.  NSpid in
# /proc/PID/status tells them apart: "NSpid: 4242 1" is an init, a bare
# loader has one number.
sub loader_pids {
    my ($self) = @_;
    my $dir = $self->{dir};
    opendir my $dh, '/proc' or return;
    return sort { $a <=> $b } grep {
        _alive($_) && _cmdline($_) =~ m{^\S*shuttle-loader .*\Q$dir\E/}
        && _nspid($_) =~ /^\d+( 1)?$/
    } grep { /^\d+$/ } readdir $dh;
}

sub _nspid {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return '';
    while (my $line = <$fh>) {
        return $1 =~ s/\s+/ /gr if $line =~ /^NSpid:\s+(.*?)\s*$/;
    }
    return '';
}

sub pid_alive { _alive($_[1]) }

# stops the loaders a builder left (a killed builder leaves them; this
# process is their subreaper then)
sub kill_loaders {
    my ($self) = @_;
    return if $$ != $self->{owner};
    my @pids = $self->loader_pids or return;
    kill 'KILL', @pids;
    _wait('loaders', $TIMEOUT, sub { !grep { _alive($_) } @pids });
}

# the socket keeper a builder of this prefix started (it outlives the
# builder: `shuttle-builder keep SOCKET.keeper`): its pid, or none
sub keeper_pid {
    my ($self) = @_;
    my $sock = $self->builder_socket . '.keeper';
    opendir my $dh, '/proc' or return;
    my ($pid) = grep {
        _alive($_) && _cmdline($_) =~ m{^shuttle-builder keep .*\Q$sock\E$}
    } grep { /^\d+$/ } readdir $dh;
    return $pid;
}

sub kill_keeper {
    my ($self) = @_;
    return if $$ != $self->{owner};
    my $pid = $self->keeper_pid or return;
    kill 'KILL', $pid;
    _wait('keeper', $TIMEOUT, sub { !_alive($pid) });
}

# one request to the builder's socket; %opts: key (X-Shuttle-Key, a
# key's name, taken from root alone), bearer (a key's secret, sent as
# "Authorization: Bearer"), headers, body, timeout.  The response gets
# json, the decoded body, when it is JSON.
sub builder_connect {
    my ($self) = @_;
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(),
                                  Peer => $self->builder_socket)
        or die "builder: connect " . $self->builder_socket . ": $!\n";
    binmode $s;
    return $s;
}

# reads from $s into $$buf until it matches $re; true, or false at EOF or
# after $timeout (5 s)
sub read_until {
    my ($self, $s, $buf, $re, $timeout) = @_;
    my $end = time + ($timeout // $TIMEOUT);
    until ($$buf =~ $re) {
        return 0 if time > $end;
        my $n = eval { _read_some($s, $buf, $end, 'the stream') };
        return 0 unless $n;
    }
    return 1;
}

sub builder_request {
    my ($self, $method, $path, %opts) = @_;

    my $s = $self->builder_connect;

    my @h = @{ $opts{headers} // [] };
    push @h, 'X-Shuttle-Key' => $opts{key} if defined $opts{key};
    push @h, Authorization => "Bearer $opts{bearer}" if defined $opts{bearer};

    _write_all($s, http_request('builder', $path, method => $method,
                                headers => \@h, body => $opts{body}),
               $opts{timeout});
    my $buf = '';
    my $r = read_response($s, \$buf, method => $method,
                          timeout => $opts{timeout});
    close $s;

    if (($r->{headers}{'content-type'} // '') =~ m{^application/json}) {
        $r->{json} = eval { JSON::PP::decode_json($r->{body}) };
    }
    return $r;
}

# GET with a key: the response (json decoded)
sub api {
    my ($self, $key, $method, $path, %opts) = @_;
    return $self->builder_request($method, $path, key => $key, %opts);
}

# what nginx does on POST /deploy: the upload put in the spool, then the
# hand-off.  $what is a directory (packed with tar czf) or a .tar.gz
# file; %opts: key (alice), file (the spool name).  Returns the response.
my $SPOOLED = 0;

sub deploy {
    my ($self, $project, $what, %opts) = @_;

    my $key = $opts{key} // 'alice';
    my $file = $opts{file} // sprintf('%010d', ++$SPOOLED);
    my $spool = $self->builder_spool;
    my $path = "$spool/$file";

    if (-d $what) {
        my ($rc, $out) = _capture('tar', 'czf', $path, '-C', $what, '.');
        die "deploy: tar czf $what: $out" if $rc;
    } else {
        my ($rc, $out) = _capture('cp', $what, $path);
        die "deploy: cp $what $path: $out" if $rc;
    }

    my $q = 'project=' . ($project // '') . "&key=$key&file=$file";
    return $self->builder_request('POST', "/deploy?$q");
}

# polls GET /v1/deployments/ID until its state matches $re; returns the
# deployment (json), or dies with the build log after $timeout (10 s)
sub wait_deployment {
    my ($self, $key, $id, $re, $timeout) = @_;
    my $d;
    _wait('deployment', $timeout // 10, sub {
        my $r = $self->api($key, 'GET', "/v1/deployments/$id");
        $d = $r->{json};
        return $d && ($d->{state} // '') =~ $re;
    }) and return $d;

    my $log = $self->api($key, 'GET', "/v1/deployments/$id/logs")->{body};
    die "wait_deployment: #$id is " . ($d->{state} // '?')
        . ", not $re after " . ($timeout // 10) . "s\nbuild log:\n"
        . ($log // '') . "builder log:\n" . ($self->builder_log // '');
}

# waits until $cond->() is true (polling, 20 ms); returns its value or
# undef after $timeout seconds (5)
sub wait_until {
    my ($self, $cond, $timeout) = @_;
    return _wait('condition', $timeout, $cond);
}


# logs -------------------------------------------------------------------

sub error_log  { $_[0]->read_file('error.log') }
sub access_log { $_[0]->read_file('access.log') }

# the size of the error log now: wait_for_log(..., from => $t->log_mark)
sub log_mark { -s $_[0]->error_log_file // 0 }

sub wait_for_log {
    my ($self, $re, $timeout, %opts) = @_;
    my $file = $opts{file} // 'error.log';
    my $from = $opts{from} // 0;
    my $line;
    _wait('log', $timeout // $TIMEOUT, sub {
        my $log = $self->read_file($file) // return;
        $log = substr($log, $from) if $from;
        for my $l (split /\n/, $log) {
            return $line = $l if $l =~ $re;
        }
        return;
    });
    return $line;
}


# the zone ---------------------------------------------------------------

# shuttle-builder zone [--capacity N] ZONE @args: (status, stdout, stderr)
sub zone_run {
    my ($self, @args) = @_;

    my @opts;
    while (@args && $args[0] =~ /^--/) {
        my $o = shift @args;
        push @opts, $o;
        push @opts, shift @args if $o eq '--capacity';
    }

    my @cmd = (builder(), 'zone', @opts, $self->zone, @args);
    my $err = "$self->{dir}/zone-cmd.stderr";

    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', $err;
        open STDIN, '<', '/dev/null';
        { no warnings q(exec); exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    my $rc = $?;

    return ($rc, $out, $self->read_file($err) // '');
}

sub zone_cmd {
    my ($self, @args) = @_;
    my ($rc, $out, $err) = $self->zone_run(@args);
    if ($rc != 0) {
        die "zone_cmd @args: exit " . ($rc >> 8)
            . ($rc & 127 ? " (signal " . ($rc & 127) . ")" : "")
            . ":\n$err";
    }
    return $out;
}


# HTTP client ------------------------------------------------------------

sub _connect {
    my ($port, $timeout) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
        Timeout => $timeout // $TIMEOUT)
        or die "http: connect 127.0.0.1:$port: $@\n";
    $s->autoflush(1);
    binmode $s;
    return $s;
}

sub _write_all {
    my ($s, $data, $timeout) = @_;
    my $sel = IO::Select->new($s);
    my $end = time + ($timeout // $TIMEOUT);
    my $off = 0;
    while ($off < length $data) {
        my $left = $end - time;
        die "http: timeout writing the request\n"
            if $left <= 0 || !$sel->can_write($left);
        my $n = syswrite($s, $data, length($data) - $off, $off);
        unless (defined $n) {
            next if $! == EINTR;
            die "http: write: $!\n";
        }
        $off += $n;
    }
}

# one read into $$buf with the deadline; returns bytes read, 0 at EOF
sub _read_some {
    my ($s, $buf, $end, $what) = @_;
    my $sel = IO::Select->new($s);
    while (1) {
        my $left = $end - time;
        die "http: timeout reading $what\n" if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($s, $$buf, 65536, length $$buf);
        unless (defined $n) {
            next if $! == EINTR;
            return 0 if $!{ECONNRESET};
            die "http: read: $!\n";
        }
        return $n;
    }
}

sub _parse_head {
    my ($head) = @_;
    my @lines = split /\r?\n/, $head;
    my $status_line = shift @lines // '';
    my %r = (status_line => $status_line, headers => {}, header_list => []);

    if ($status_line =~ m{^(HTTP/\d\.\d)\s+(\d{3})(?:\s+(.*))?$}) {
        @r{qw(protocol status reason)} = ($1, $2 + 0, $3 // '');
    }
    for (@lines) {
        next unless /^([^:\s]+)\s*:\s*(.*?)\s*$/;
        my ($k, $v) = (lc $1, $2);
        push @{ $r{header_list} }, [$1, $v];
        $r{headers}{$k} = exists $r{headers}{$k}
                          ? "$r{headers}{$k}, $v" : $v;
    }
    return \%r;
}

# reads one response from $s, the bytes already read in $$buf (what is left
# after it stays there); %opts: method (HEAD: no body), timeout.  A timeout
# dies; an EOF before the response is complete returns what came with
# incomplete => 1.
sub read_response {
    my ($s, $buf, %opts) = @_;
    my $end = time + ($opts{timeout} // $TIMEOUT);
    my $method = uc($opts{method} // 'GET');
    my $r;
    my $start = 0;

    while (1) {
        # the head
        my $i;
        while (($i = index($$buf, "\r\n\r\n", $start)) < 0) {
            my $j = index($$buf, "\n\n", $start);
            if ($j >= 0) { $i = $j; last }
            unless (_read_some($s, $buf, $end, 'the response head')) {
                my $raw = substr($$buf, 0);
                $$buf = '';
                return { raw => $raw, incomplete => 1, status => undef,
                         headers => {}, header_list => [], body => '',
                         eof => 1 };
            }
        }
        my $sep = substr($$buf, $i, 4) eq "\r\n\r\n" ? 4 : 2;
        $r = _parse_head(substr($$buf, $start, $i - $start));
        $r->{head_end} = $i + $sep;

        # 1xx: skip to the next response head
        if (defined $r->{status} && $r->{status} >= 100
            && $r->{status} < 200 && $r->{status} != 101)
        {
            $start = $r->{head_end};
            push @{ $r->{informational} }, $r->{status};
            next;
        }
        last;
    }

    my $pos = $r->{head_end};
    my $h = $r->{headers};
    my $st = $r->{status} // 0;
    my $body = '';

    if ($method eq 'HEAD' || $st == 204 || $st == 304 || $st == 101) {
        # no body
    } elsif (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
        my $p = $pos;
        while (1) {
            my $e;
            while (($e = index($$buf, "\r\n", $p)) < 0) {
                _read_some($s, $buf, $end, 'a chunk size')
                    or return _incomplete($r, $buf, $body);
            }
            my $line = substr($$buf, $p, $e - $p);
            $line =~ /^([0-9a-fA-F]+)/
                or die "http: bad chunk size line '$line'\n";
            my $size = hex $1;
            $p = $e + 2;
            if ($size == 0) {
                # trailers up to the empty line
                my $t;
                while (($t = index($$buf, "\r\n", $p)) != $p) {
                    if ($t > $p) { $p = $t + 2; next }
                    _read_some($s, $buf, $end, 'the trailer')
                        or return _incomplete($r, $buf, $body);
                }
                $p += 2;
                last;
            }
            while (length($$buf) < $p + $size + 2) {
                _read_some($s, $buf, $end, 'a chunk')
                    or return _incomplete($r, $buf, $body);
            }
            $body .= substr($$buf, $p, $size);
            $p += $size + 2;
        }
        $r->{chunked} = 1;
        $pos = $p;
    } elsif (defined $h->{'content-length'}) {
        my $len = $h->{'content-length'} + 0;
        while (length($$buf) < $pos + $len) {
            _read_some($s, $buf, $end, 'the body')
                or return _incomplete($r, $buf, substr($$buf, $pos));
        }
        $body = substr($$buf, $pos, $len);
        $pos += $len;
    } else {
        # the body ends with the connection
        1 while _read_some($s, $buf, $end, 'the body up to EOF');
        $body = substr($$buf, $pos);
        $pos = length $$buf;
        $r->{eof} = 1;
    }

    $r->{body} = $body;
    $r->{raw} = substr($$buf, 0, $pos);
    substr($$buf, 0, $pos) = '';
    delete $r->{head_end};
    return $r;
}

sub _incomplete {
    my ($r, $buf, $body) = @_;
    $r->{body} = $body;
    $r->{raw} = $$buf;
    $r->{incomplete} = 1;
    $r->{eof} = 1;
    $$buf = '';
    delete $r->{head_end};
    return $r;
}

# parses a whole response held in a string
sub parse_response {
    my ($raw, %opts) = @_;
    my $buf = $raw;
    # everything is in $buf: wanting more is the end of the connection
    no warnings 'redefine';
    local *_read_some = sub { 0 };
    return read_response(undef, \$buf, %opts);
}

sub _headers_text {
    my ($headers) = @_;
    return '' unless $headers;
    my @h = ref $headers eq 'HASH' ? (map { $_ => $headers->{$_} }
                                      sort keys %$headers)
                                   : @$headers;
    my $s = '';
    while (my ($k, $v) = splice @h, 0, 2) {
        $s .= "$k: $v\r\n";
    }
    return $s;
}

# the text of a request; %opts: method, body, headers (hash or [k => v]),
# close (default 1: Connection: close), proto (HTTP/1.1)
sub http_request {
    my ($host, $path, %opts) = @_;
    my $method = $opts{method} // 'GET';
    my $proto = $opts{proto} // 'HTTP/1.1';
    my $close = $opts{close} // 1;
    my $r = "$method " . ($path // '/') . " $proto\r\n";
    $r .= "Host: $host\r\n" if defined $host;
    $r .= "Connection: close\r\n" if $close;
    $r .= _headers_text($opts{headers});
    if (defined $opts{body}) {
        $r .= "Content-Length: " . length($opts{body}) . "\r\n"
            unless ($opts{headers} && grep { lc($_) eq 'content-length'
                                              || lc($_) eq 'transfer-encoding' }
                    (ref $opts{headers} eq 'HASH' ? keys %{ $opts{headers} }
                                                  : @{ $opts{headers} }));
    }
    $r .= "\r\n";
    $r .= $opts{body} if defined $opts{body};
    return $r;
}

sub _shift_self { shift @{ $_[0] } if blessed($_[0][0]) && $_[0][0]->isa(__PACKAGE__) }

# http($port, $raw, %opts): sends $raw on a new connection and reads one
# response (method from the request line: HEAD has no body)
sub http {
    _shift_self(\@_);
    my ($port, $raw, %opts) = @_;
    my $s = _connect($port, $opts{timeout});
    _write_all($s, $raw, $opts{timeout});
    my $method = $opts{method} // ($raw =~ /^(\S+)/ ? $1 : 'GET');
    my $buf = '';
    my $r = read_response($s, \$buf, %opts, method => $method);
    close $s;
    return $r;
}

# http_get($port, $host, $path, %opts): a GET (or $opts{method}) with
# Connection: close; returns the parsed response
sub http_get {
    _shift_self(\@_);
    my ($port, $host, $path, %opts) = @_;
    $host //= 'localhost';
    return http($port, http_request($host, $path, %opts), %opts);
}

# http_keepalive($port, $host, @paths): the requests one after another on
# one connection; returns the responses (a path may be a hash ref of
# http_request options with a path key)
sub http_keepalive {
    _shift_self(\@_);
    my ($port, $host, @paths) = @_;
    my $conn = Shuttle::Test::Conn->new($port);
    my @r;
    for my $p (@paths) {
        my %o = ref $p ? %$p : (path => $p);
        push @r, $conn->get($host, delete $o{path}, %o);
    }
    $conn->close;
    return @r;
}


package Shuttle::Test::Conn;

# one keepalive connection: requests are sent one after another and each
# response read before the next request (or all at once with pipeline)

sub new {
    my ($class, $port, %opts) = @_;
    my $self = bless {
        port => $port,
        timeout => $opts{timeout} // $Shuttle::Test::TIMEOUT,
        buf => '',
    }, $class;
    $self->{sock} = Shuttle::Test::_connect($port, $self->{timeout});
    return $self;
}

sub sock { $_[0]{sock} }

# sends a raw request, reads its response
sub request {
    my ($self, $raw, %opts) = @_;
    die "Conn: closed\n" unless $self->{sock};
    Shuttle::Test::_write_all($self->{sock}, $raw, $self->{timeout});
    my $method = $opts{method} // ($raw =~ /^(\S+)/ ? $1 : 'GET');
    return $self->read(method => $method, %opts);
}

# reads the next response
sub read {
    my ($self, %opts) = @_;
    return Shuttle::Test::read_response($self->{sock}, \$self->{buf},
                                        timeout => $self->{timeout}, %opts);
}

# a keepalive GET (no Connection: close unless close => 1)
sub get {
    my ($self, $host, $path, %opts) = @_;
    $opts{close} //= 0;
    return $self->request(Shuttle::Test::http_request($host // 'localhost',
                                                      $path, %opts), %opts);
}

# sends all the raw requests at once, then reads as many responses
sub pipeline {
    my ($self, @raw) = @_;
    Shuttle::Test::_write_all($self->{sock}, join('', @raw),
                              $self->{timeout});
    return map { $self->read(method => ($_ =~ /^(\S+)/ ? $1 : 'GET')) } @raw;
}

# true when the server has closed the connection (waits up to $timeout)
sub closed {
    my ($self, $timeout) = @_;
    return 1 unless $self->{sock};
    my $sel = IO::Select->new($self->{sock});
    return 0 unless $sel->can_read($timeout // 0);
    my $n = sysread($self->{sock}, $self->{buf}, 65536, length $self->{buf});
    return !$n;
}

sub close {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    $self->{sock} = undef;
}

sub DESTROY { $_[0]->close }

1;

__END__

=head1 NAME

Shuttle::Test - start the real nginx with the shuttle module in a test

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use Test::More;
    use Shuttle::Test;          # exports http_get, http, http_keepalive

    my $t = Shuttle::Test->new;

    $t->zone_cmd(qw(set hello 127.0.0.1), ...);   # before or after run

    $t->write_nginx_conf(<<'EOF');
        shuttle_zone %%ZONE%%;
        server {
            listen 127.0.0.1:%%PORT_1%%;
            shuttle_apps apps.test;
            location / { proxy_pass http://backend; }
        }
        server {
            listen 127.0.0.1:%%PORT_B%%;
            location / { return 200 "ok\n"; }
        }
    EOF
    $t->run;

    my $r = http_get($t->port(1), 'hello.apps.test', '/');
    is($r->{status}, 200);
    is($r->{headers}{'content-type'}, 'text/plain');
    is($r->{body}, "ok\n");

    my @r = http_keepalive($t->port(1), 'hello.apps.test', '/', '/a', '/b');

    done_testing;               # nginx is stopped, the prefix removed

=head1 THE PREFIX

C<new> makes a temporary directory (C<shuttle-test-XXXXXX> under C<$TMPDIR>
or C</tmp>; C<SHUTTLE_TEST_TMPDIR> overrides), mode 0755 so that workers
running as C<nobody> can traverse it.  nginx's prefix (C<-p>) is that
directory; in it: C<nginx.conf>, C<nginx.pid>, C<error.log>, C<access.log>,
C<tmp/> (mode 01777: client body, proxy, fastcgi, uwsgi and scgi temp
paths), C<zone> (the routing zone, once written), C<spawn-N.log>, and for a
builder (L</THE BUILDER>) C<data/>, C<spool/>, C<builder.sock> and
C<builder.log>.  It is removed at the end unless C<SHUTTLE_TEST_KEEP=1>.

=head1 THE SEED

Every C<rand()> of a test that uses this module comes from one seed,
printed to stderr as the module loads (C<# t/NAME.t: seed N>):
C<SHUTTLE_TEST_SEED=N prove -v t/NAME.t> replays the same draws (ports,
names, random pauses).  Without it the seed mixes the time and the pid.

=head1 CONFIGURATION

C<< $t->write_nginx_conf($text, %opts) >> writes C<nginx.conf> and returns it.

I<$text> is the body of C<http {}> unless it has a line starting with
C<http {> or C<events {> (or C<< full => 1 >>): then it is the whole
configuration.  The body form is wrapped as:

    load_module <repo>/build/modules/ngx_http_shuttle_module.so;
    pid <testdir>/nginx.pid;
    error_log <testdir>/error.log info;
    user nobody nogroup;            # only when running as root
    daemon on;
    master_process on;
    worker_processes 1;
    <main>
    events { worker_connections 1024; <events> }
    http {
        access_log <testdir>/access.log;
        client_body_temp_path <testdir>/tmp/client_body;
        proxy_temp_path ... fastcgi_temp_path ... uwsgi_temp_path ...
        scgi_temp_path ...;
        <text>
    }

A whole configuration gets the first three lines prepended (it must not
set C<pid> or C<error_log> itself) and the C<access_log> and temp path lines
inserted after its C<http {> line.

Options: C<< worker_processes => N >>, C<< user => 'root' >> (workers as
another user), C<< main => TEXT >> and C<< events => TEXT >> (more
directives there), C<< error_log_level => 'debug' >> (needs an nginx built
with --with-debug for debug lines), C<< access_log => 0 >>.

Placeholders, replaced in I<$text>:

    %%PORT_<KEY>%%   $t->port(KEY): %%PORT_1%%, %%PORT_B%%, ...
    %%TESTDIR%%      the prefix
    %%ZONE%%         <testdir>/zone, the zone that zone_cmd edits
    %%REPO%%         the repository

An unknown C<%%WORD%%> dies.  C<SHUTTLE_TEST_NO_MODULE=1> leaves out the
C<load_module> line (to try the harness without the module).

=head1 METHODS

=over

=item C<< Shuttle::Test->new >>

=item C<< $t->testdir >>, C<< $t->zone >>, C<< $t->conf >> (the last
configuration written), C<< $t->nginx_pid >>, C<< $t->worker_pids >>

=item C<< $t->port($key) >>

A free TCP port on 127.0.0.1 for C<$key> (default 1), the same one every
time for a key, different for different keys.  Ports are taken outside the
kernel's ephemeral range, locked with C<flock> on
C</tmp/shuttle-test-ports/PORT> for the life of the test (so parallel
C<prove -j> jobs never share one) and held bound until C<run>.

=item C<< $t->write_file($name, $content) >>, C<< $t->read_file($name) >>

Relative to the prefix; C<write_file> returns the full path.

=item C<< $t->run >>

Starts C<nginx -p <testdir>/ -c <testdir>/nginx.conf -e <testdir>/error.log>
(C<NGINX_BINARY> overrides C</usr/sbin/nginx>) and returns once the pid
file names a live master, every port of a C<listen [127.0.0.1:|*:]PORT> line
is listening and the workers are up; dies with nginx's output and the tail
of the error log otherwise (5 s).  Dies as well when the module is not built.

=item C<< ($ok, $output) = $t->nginx_test >>

C<nginx -t> on the configuration written; in scalar context just C<$ok>.

=item C<< $t->reload >>

C<write_nginx_conf> again (same ports), then C<reload>: sends HUP and waits
until the old workers have exited and the new ones are up; dies with the
log when nginx refuses the configuration (C<[emerg]>).

=item C<< $t->stop >>

QUIT to the master started by C<run>, then TERM, then KILL (5 s each; only
while the process's title still names this prefix), then TERM to the
builder of C<builder_start> and KILL to every loader left running this
prefix's deployments (C<kill_loaders>), then the same as for nginx for
everything C<spawn> started.  Called by C<DESTROY> and by an C<END> block for
every live harness, so nginx stops when the test dies too; SIGINT, SIGTERM
and SIGHUP (when the test has not set handlers) exit through C<END>.  A
process forked by the test never stops anything.

=item C<< $pid = $t->spawn(@cmd) >>, C<< $t->stop_spawned(@pids) >>, C<< $t->spawn_log($n) >>

Starts a background process (stdin C</dev/null>, stdout and stderr to
C<< <testdir>/spawn-N.log >>, N from 1); C<stop_spawned> stops the given ones
(or all) with TERM, then KILL.

=item C<< $t->error_log >>, C<< $t->access_log >>, C<< $t->log_mark >>, C<< $t->log_tail($n) >>

The logs' contents; C<log_mark> is the error log's size now; C<log_tail>
the last C<$n> (20) lines of the error log, indented, for a message.

=item C<< $line = $t->wait_for_log(qr/.../, $timeout, from => $mark, file => 'access.log') >>

Polls the error log (or C<file>) from byte C<$mark> until a line matches;
returns the line, or undef after C<$timeout> seconds (5).

=item C<< $out = $t->zone_cmd(@args) >>

Runs C<< build/bin/shuttle-builder zone [--capacity N] <testdir>/zone @args >>
(a leading C<--capacity N> in C<@args> goes before the path), dies with its
stderr on a non-zero exit, returns its stdout.
C<< ($status, $out, $err) = $t->zone_run(@args) >> does not die.
C<SHUTTLE_BUILDER> overrides the binary.

=back

=head1 THE BUILDER

The real C<shuttle-builder serve> (C<SHUTTLE_BUILDER> overrides the
binary), driven as root, the operator, drives it: uploads written into its
spool, then C<POST /deploy?project=..&key=..&file=..> on its unix socket,
and the management API with C<X-Shuttle-Key> (the name of a key, which
the builder takes from root alone; nginx's workers send the key's secret).

    $t->builder_start('--jobs', '1');
    my $r = $t->deploy('hello', "$repo/examples/hello");      # 202
    my $d = $t->wait_deployment('alice', $r->{json}{id}, qr/^running$/);
    http_get($d->{port}, 'localhost', '/hello');               # the loader
    $t->zone_cmd('list');                                      # its zone
    $t->builder_stop;                                          # SIGTERM

=over

=item C<< $pid = $t->builder_start(@args) >>

Starts the builder with this prefix's options, then C<@args>:

    --data <testdir>/data --zone <testdir>/zone --spool <testdir>/spool
    --socket <testdir>/builder.sock --ports LO-HI --log <testdir>/builder.log
    --nginx-user nobody           (only when running as root)

The zone and the spool are where the module looks by default
(C<shuttle_zone %%ZONE%%>, the spool beside it), so a test's nginx and
builder meet.  LO-HI are 20 ports of C<port_range>, the same for every
start.  Returns once the socket takes connections (5 s); dies with the
builder's log otherwise.  stdout and stderr go to C<builder.log> too.

=item C<< ($status, $output) = $t->builder_run(@args) >>

Runs a builder with the same options but C<--log>, in the foreground, and
returns its wait status and output: for one that refuses to start.

=item C<< $status = $t->builder_stop($signal, $timeout) >>

Sends C<$signal> (C<TERM>) to the builder and reaps it (30 s, then
KILL); returns its wait status.  C<QUIT> and C<KILL> leave its loaders
running.

=item C<< $t->builder_pid >>, C<< $t->builder_socket >>, C<< $t->builder_data >>, C<< $t->builder_spool >>, C<< $t->builder_ports >>, C<< $t->builder_log >>, C<< $t->builder_log_file >>

=item C<< ($lo, $hi) = $t->port_range($n) >>

C<$n> (20) consecutive free ports, each locked as C<port> locks one, not
held bound.

=item C<< $r = $t->builder_request($method, $path, %opts) >>

One request on the builder's socket (C<Host: builder>, C<Connection:
close>); options C<key> (sets C<X-Shuttle-Key>: the builder takes a
key's name from root alone), C<bearer> (a key's secret, sent as
C<Authorization: Bearer>, which the builder checks with C<--api-keys>),
C<headers>, C<body>, C<timeout>.  The response is as L</HTTP> describes,
plus C<json>, the body decoded, when it is C<application/json>.

=item C<< $r = $t->api($key, $method, $path, %opts) >>

The same with C<< key => $key >>.

=item C<< $r = $t->deploy($project, $dir_or_tarball, key => 'alice', file => NAME) >>

What nginx does for C<POST /deploy>: packs C<$dir> with C<tar czf> (or
copies a C<.tar.gz>) into the spool as C<NAME> (a fresh number by
default), then hands it to the builder; returns the builder's answer.

=item C<< $d = $t->wait_deployment($key, $id, qr/^running$/, $timeout) >>

Polls C<GET /v1/deployments/ID> until its state matches; returns the
deployment, or dies after C<$timeout> (10 s) with its build log and the
builder's log.

=item C<< $s = $t->builder_connect >>, C<< $t->read_until($s, \$buf, qr/.../, $timeout) >>

A raw connection to the socket, and reading from it until the bytes read
match (for a streamed response, read the rest with C<read_response($s,
\$buf)>).

=item C<< @pids = $t->loader_pids >>, C<< $t->kill_loaders >>, C<< $t->pid_alive($pid) >>

The live C<shuttle-loader> processes whose service is under this prefix,
whoever their parent (a killed builder's loaders are this process's
children: it is their subreaper); KILL to all of them.

=item C<< $value = $t->wait_until(sub { ... }, $timeout) >>

Polls the condition (every 20 ms) until it returns true; its value, or
undef after C<$timeout> (5 s).

=back

=head1 HTTP

All to 127.0.0.1, every connect, write and read bounded by
C<$Shuttle::Test::TIMEOUT> (5 s, or C<< timeout => N >>): a timeout dies
with what it waited for.  They can be called as functions or as methods.

A response is a hash: C<status> (number), C<reason>, C<protocol>,
C<headers> (lowercased names; a repeated header joined with ", "),
C<header_list> (C<[name, value]> in order), C<body> (de-chunked), C<raw>
(the bytes of the response), C<chunked>, C<eof> (the body ended with the
connection, or the connection closed early), C<incomplete> (closed before
the response was complete; C<status> undef when no head came).  1xx
responses are skipped (their codes in C<informational>).

=over

=item C<< http_get($port, $host, $path, %opts) >>

C<GET $path HTTP/1.1>, C<Host: $host>, C<Connection: close>.  Options:
C<method> (C<HEAD> reads no body), C<headers> (hash or C<[name => value]>),
C<body> (C<Content-Length> added), C<proto>, C<< close => 0 >>, C<timeout>.

=item C<< http($port, $raw, %opts) >>

Sends the raw request on a new connection, reads one response.

=item C<< http_keepalive($port, $host, @paths) >>

The requests one after another on one connection (no C<Connection:
close>); returns the responses.  A path may be a hash ref of C<http_get>
options with a C<path> key.

=item C<< Shuttle::Test::Conn->new($port) >>

C<< $c->get($host, $path, %opts) >>, C<< $c->request($raw) >>,
C<< $c->pipeline(@raw) >> (all sent at once, then the responses),
C<< $c->read >>, C<< $c->closed($timeout) >> (the server closed it),
C<< $c->close >>.

=item C<http_request($host, $path, %opts)>, C<parse_response($raw)>,
C<read_response($sock, \$buf, %opts)> (exported on request)

=back

=cut
