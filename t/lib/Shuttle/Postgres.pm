package Shuttle::Postgres;

# A private PostgreSQL server for a test: initdb under the test's prefix,
# a free port on 127.0.0.1, the server run as the "postgres" user (it
# refuses root), a random superuser password, stopped by pid at the end
# of the test even when it fails.  Core Perl only.  POD at the end.

use strict;
use warnings;

use File::Path qw(make_path);
use POSIX qw(WNOHANG);
use Scalar::Util qw(refaddr weaken);
use Test::More ();
use Time::HiRes qw(sleep time);

use Shuttle::Test;

my %LIVE;

# the newest PostgreSQL's bin directory with initdb, pg_ctl and postgres
sub bindir {
    my @dirs = sort { ($b =~ /(\d+)/)[0] <=> ($a =~ /(\d+)/)[0] }
               grep { -x "$_/initdb" && -x "$_/postgres" }
               glob '/usr/lib/postgresql/*/bin';
    return $ENV{SHUTTLE_PG_BINDIR} // $dirs[0];
}

sub _skip_or_die {
    my ($why) = @_;
    if ($ENV{SHUTTLE_TEST_NO_POSTGRES}) {
        Test::More::plan(skip_all => "PostgreSQL: $why");
    }
    die "Shuttle::Postgres: $why (make deps installs postgresql; "
        . "SHUTTLE_TEST_NO_POSTGRES=1 skips these tests)\n";
}

sub _run {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return ($? >> 8, $out);
}

sub new {
    my ($class, $t) = @_;

    my $bin = bindir() or _skip_or_die('no initdb under /usr/lib/postgresql');
    my $user = $ENV{SHUTTLE_PG_USER} // 'postgres';
    my @as = ();
    if ($> == 0) {
        defined getpwnam($user) or _skip_or_die("no user \"$user\" to run it");
        @as = ('runuser', '-u', $user, '--');
    }

    my $dir = $t->testdir . '/pg';
    make_path($dir, { mode => 0700 });
    my $uid = $> == 0 ? (getpwnam($user))[2] : $>;
    my $gid = $> == 0 ? (getpwnam($user))[3] : $);
    chown $uid, $gid, $dir;

    my $password = join '', map { ('a'..'z', 0..9)[rand 36] } 1 .. 24;
    my $pwfile = "$dir/.pw";
    open my $fh, '>', $pwfile or die "$pwfile: $!";
    print $fh "$password\n";
    close $fh;
    chown $uid, $gid, $pwfile;
    chmod 0600, $pwfile;

    my ($rc, $out) = _run(@as, "$bin/initdb", '-D', "$dir/data",
                          '-U', 'postgres', "--pwfile=$pwfile", '-E', 'UTF8',
                          '--no-locale', '--auth-local=scram-sha-256',
                          '--auth-host=scram-sha-256', '--no-sync');
    unlink $pwfile;
    _skip_or_die("initdb failed: $out") if $rc;

    # the lines docs/operators-guide.md gives an operator: the builder's tenant roles
    # (members of shuttle-tenants) reach only the database named as a role
    # they are in (their own), only through the socket, with a password
    my $hba = "$dir/data/pg_hba.conf";
    open $fh, '>', $hba or die "$hba: $!";
    print $fh <<'EOF';
local   samerole  +shuttle-tenants                scram-sha-256
local   all       +shuttle-tenants                reject
host    all       +shuttle-tenants  all           reject
local   all       all                             scram-sha-256
host    all       all               127.0.0.1/32  scram-sha-256
EOF
    close $fh;
    chown $uid, $gid, $hba;
    chmod 0600, $hba;

    # the socket's directory, apart from the data and the log: a project's
    # sandbox sees it
    make_path("$dir/run", { mode => 0755 });
    chown $uid, $gid, "$dir/run";

    # the port: held free by the harness until now, then given to postgres
    my $port = $t->port('PG');
    close(delete $t->{port_socks}{PG});

    my $self = bless {
        t => $t, dir => $dir, bin => $bin, as => \@as, port => $port,
        password => $password, owner => $$,
    }, $class;
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/server.log";
        open STDERR, '>&', \*STDOUT;
        # its own pid: set the user here rather than through runuser,
        # which would stand between the signals and the server
        if ($> == 0) {
            $) = "$gid $gid";      # no supplementary groups of root's
            POSIX::setgid($gid) or POSIX::_exit(126);
            POSIX::setuid($uid) or POSIX::_exit(126);
        }
        my @cmd = ("$bin/postgres", '-D', "$dir/data", '-p', $port,
                   '-k', "$dir/run", '-c', 'listen_addresses=127.0.0.1',
                   '-c', 'fsync=off', '-c', 'synchronous_commit=off',
                   '-c', 'full_page_writes=off', '-c', 'max_connections=100');
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    $self->{pid} = $pid;

    # ready: a query answers
    my $end = time + 30;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            _skip_or_die("postgres exited: " . $self->log);
        }
        my ($rc) = $self->psql('SELECT 1');
        last if $rc == 0;
        if (time > $end) {
            $self->stop;
            _skip_or_die("postgres not ready in 30 s: " . $self->log);
        }
        sleep 0.05;
    }

    return $self;
}

sub port     { $_[0]{port} }
sub password { $_[0]{password} }
sub host     { '127.0.0.1' }

sub log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/server.log" or return '';
    local $/;
    return <$fh> // '';
}

# the superuser's connection string
sub admin_dsn {
    my ($self) = @_;
    return "host=127.0.0.1 port=$self->{port} user=postgres "
         . "password=$self->{password} dbname=postgres";
}

# the directory of the server's unix socket (made reachable: a project's
# sandbox connects as a uid of its own)
sub socket_dir {
    my ($self) = @_;
    chmod 0711, $self->{dir};
    return "$self->{dir}/run";
}

# the superuser's connection string through the unix socket
sub socket_dsn {
    my ($self) = @_;
    return "host=" . $self->socket_dir . " port=$self->{port} user=postgres "
         . "password=$self->{password} dbname=postgres";
}

# runs SQL with psql; %opts: db (postgres), user (postgres), password
# (the superuser's), socket (true: through the unix socket, not TCP).  In list context (exit status, output); in scalar
# context the output, dying when psql fails.
sub psql {
    my ($self, $sql, %opts) = @_;
    my ($rc, $out);
    {
        local $ENV{PGPASSWORD} = $opts{password} // $self->{password};
        local $ENV{PGCONNECT_TIMEOUT} = 5;
        ($rc, $out) = _run('psql', '-X', '-A', '-t', '-q',
                           '-v', 'ON_ERROR_STOP=1',
                           '-h', $opts{socket} ? "$self->{dir}/run"
                                               : '127.0.0.1',
                           '-p', $self->{port},
                           '-U', $opts{user} // 'postgres',
                           '-d', $opts{db} // 'postgres', '-c', $sql);
    }
    return ($rc, $out) if wantarray;
    die "psql: $sql: $out" if $rc;
    return $out;
}

# a database and its owner role with a password: its connection string
sub create_db {
    my ($self, $db, $user, $password) = @_;
    (my $pw = $password) =~ s/'/''/g;
    $self->psql(qq{CREATE ROLE "$user" LOGIN PASSWORD '$pw'});
    $self->psql(qq{CREATE DATABASE "$db" OWNER "$user"});
    $self->psql(qq{REVOKE ALL ON DATABASE "$db" FROM PUBLIC});
    return "host=127.0.0.1 port=$self->{port} user=$user "
         . "password=$password dbname=$db";
}

# fast shutdown (SIGINT), then SIGKILL; waits for the exit
sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    return if $$ != $self->{owner};
    for my $sig ('INT', 'KILL') {
        kill $sig, $pid;
        my $end = time + 10;
        while (time < $end) {
            return if waitpid($pid, WNOHANG) != 0;
            sleep 0.02;
        }
    }
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop;
}

# before Shuttle::Test's END (loaded earlier, so run later) removes the prefix
END {
    local $?;
    $_->stop for grep { defined } values %LIVE;
}

1;

__END__

=head1 NAME

Shuttle::Postgres - a private PostgreSQL server for a test

=head1 SYNOPSIS

    my $t = Shuttle::Test->new;
    my $pg = Shuttle::Postgres->new($t);

    $t->builder_start('--postgres', $pg->admin_dsn);
    my $dsn = $pg->create_db('app', 'app_user', 'secret');
    my ($rc, $out) = $pg->psql('SELECT 1', db => 'app', user => 'app_user',
                               password => 'secret');

=head1 DESCRIPTION

C<new> runs C<initdb> (the newest under C</usr/lib/postgresql/*/bin>, or
C<$SHUTTLE_PG_BINDIR>) in C<PREFIX/pg/data> and starts C<postgres> on a
free port of 127.0.0.1, its socket in C<PREFIX/pg/run> (C<socket_dir>),
as the C<postgres> user when the test runs as root.  Every connection
needs a password (scram-sha-256); the superuser C<postgres> has a random
one (C<admin_dsn>, C<socket_dsn>).  C<pg_hba.conf> holds the lines
docs/operators-guide.md gives an operator: members of C<shuttle-tenants> (the builder's
tenant roles) only reach, through the socket, a database named as a role
they are in.  fsync is off: the data is a test's.

When PostgreSQL cannot be started the test dies saying why, since
C<make deps> installs it; with C<SHUTTLE_TEST_NO_POSTGRES=1> it is
skipped instead.  The server is stopped by pid (SIGINT, then SIGKILL) by
C<stop>, when the object goes away, or at the end of the test.

Methods: C<port>, C<host>, C<password>, C<admin_dsn>, C<socket_dir>,
C<socket_dsn>, C<log> (the server's log), C<psql(SQL, db =E<gt> ...,
user =E<gt> ..., password =E<gt> ..., socket =E<gt> 1)>, C<create_db(DB, USER, PASSWORD)> (returns a DSN), C<stop>.

=cut
