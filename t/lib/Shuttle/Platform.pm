package Shuttle::Platform;

# A whole shuttle platform for a test: the real nginx with the module
# (through Shuttle::Test), the real builder serving its API on a unix
# socket, keys made by the builder, and helpers to run the real CLI
# against it.  Core Perl only.  Documentation: the POD at the end.

use strict;
use warnings;

use File::Path qw(make_path);
use File::Spec;
use File::Temp;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(sleep time);

use Shuttle::Test;

my $REPO = Shuttle::Test::repo();

sub shuttle_bin { $ENV{SHUTTLE_CLI} // "$REPO/build/bin/shuttle" }
sub loader_bin  { $ENV{SHUTTLE_LOADER} // "$REPO/build/bin/shuttle-loader" }

# live platforms, for the END block: background CLI processes stopped
my %LIVE;

sub new {
    my ($class, %opts) = @_;

    my $t = Shuttle::Test->new;
    my $dir = $t->testdir;

    my $self = bless {
        t        => $t,
        dir      => $dir,
        keys     => {},
        bg       => [],          # pids of spawn_cli()
        owner    => $$,
        limit    => $opts{client_max_body_size} // '50m',
        workers  => $opts{worker_processes} // 1,
        builder_args => $opts{builder_args} // [],
        # nginx's upstream keepalive_timeout to the loaders (its default:
        # 60s); a loader goes idle only once nginx closed those
        upstream_keepalive_timeout => $opts{upstream_keepalive_timeout},
        # more of nginx's http block (a benchmark's baseline servers)
        http_extra => $opts{http_extra} // '',
    }, $class;

    $LIVE{"$self"} = $self;
    weaken($LIVE{"$self"});

    make_path("$dir/home", { mode => 0755 });

    $self->add_key($_) for @{ $opts{keys} // ['alice'] };

    # a PostgreSQL server of the test's own, the builder's admin connection
    # over TCP and its socket's directory for the services (postgres =>
    # 'socket': the admin connection through the socket too)
    if ($opts{postgres}) {
        require Shuttle::Postgres;
        $self->{pg} = Shuttle::Postgres->new($t);
        push @{ $self->{builder_args} },
            $opts{postgres} eq 'socket'
            ? ('--postgres', $self->{pg}->socket_dsn)
            : ('--postgres', $self->{pg}->admin_dsn,
               '--postgres-socket', $self->{pg}->socket_dir);
    }

    $self->start_builder;
    $self->write_conf;
    $t->run;

    return $self;
}

sub t       { $_[0]{t} }
sub pg      { $_[0]{pg} }
sub testdir { $_[0]{dir} }
sub port    { $_[0]{t}->port(1) }
sub api     { 'http://127.0.0.1:' . $_[0]->port }
sub key     { $_[0]{keys}{ $_[1] // 'alice' } }

# the URL the builder gives a project (apps under *.localhost)
sub app_url { 'http://' . $_[1] . '.localhost:' . $_[0]->port }

# a key from "shuttle-builder keys add NAME", kept by name (the builder
# reads the file again at its next request; nginx at a reload)
sub add_key {
    my ($self, $name) = @_;

    my @cmd = (Shuttle::Test::builder(), 'keys', '--file',
               "$self->{dir}/api_keys", 'add', $name);
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDERR, '>', '/dev/null';      # "shown only this once"
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    die "add_key $name: @cmd: exit " . ($? >> 8) . "\n" if $?;

    my ($key) = $out =~ /^(\S+)\s*$/ or die "add_key $name: no key in '$out'";
    chmod 0644, "$self->{dir}/api_keys";

    return $self->{keys}{$name} = $key;
}

# the builder, with Shuttle::Test's builder_start (its prefix's zone,
# spool, socket and ports), projects' URLs under *.localhost, and nginx's
# keys file: it checks the bearer key of every request from nginx
sub start_builder {
    my ($self) = @_;
    return $self->{t}->builder_start(
        '--apps-url', 'http://{name}.localhost:' . $self->port,
        '--api-keys', "$self->{dir}/api_keys",
        '--loader', loader_bin(),
        '--sdk-include', "$REPO/include",
        @{ $self->{builder_args} });
}

sub builder_pid  { $_[0]{t}->builder_pid }
sub builder_log  { $_[0]{t}->builder_log // '' }
sub stop_builder { $_[0]{t}->builder_stop }

sub write_conf {
    my ($self) = @_;
    my $d = $self->{dir};
    my $sock = $self->{t}->builder_socket;

    my $static = $self->{t}->builder_data . '/static/';

    # the dashboard's files where the workers reach them (a clone in a
    # home directory of mode 0700 is not)
    my $dashboard = "$d/dashboard";
    make_path($dashboard);
    for my $f (grep { -f } glob "$REPO/dashboard/*") {
        (my $name = $f) =~ s{.*/}{};
        $self->{t}->write_file("$dashboard/$name",
                               $self->{t}->read_file($f) // '');
    }
    my $kt = defined $self->{upstream_keepalive_timeout}
             ? "keepalive_timeout $self->{upstream_keepalive_timeout};" : '';

    $self->{t}->write_nginx_conf(<<"EOF", worker_processes => $self->{workers});
    include /etc/nginx/mime.types;

    shuttle_zone %%ZONE%%;
    shuttle_builder unix:$sock;

    upstream shuttle_apps {
        shuttle_route;
        keepalive 16;
        $kt
    }

    $self->{http_extra}

    server {
        listen 127.0.0.1:%%PORT_1%% default_server;
        server_name localhost 127.0.0.1;

        shuttle_api_keys $d/api_keys;
        client_max_body_size $self->{limit};

        location = /deploy {
            shuttle_deploy;
        }

        location /v1/ {
            shuttle_auth on;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_pass http://unix:$sock:;
        }

        # the builder's metrics (Prometheus text), for this host only
        location = /metrics {
            allow 127.0.0.1;
            deny all;
            proxy_pass http://unix:$sock:/metrics;
        }

        # nginx's own counts per project (the module's shared memory)
        location = /metrics/nginx {
            allow 127.0.0.1;
            deny all;
            shuttle_metrics;
        }

        # the dashboard: static files, the data from /v1
        location /dashboard/ {
            alias $dashboard/;
        }

        location / {
            return 404 "shuttle: the API is POST /deploy and /v1/\\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        server_name *.localhost;

        shuttle_apps localhost;

        location / {
            proxy_pass http://shuttle_apps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }

        # a project's static files, served by nginx when its loader
        # answers X-Accel-Redirect (docs/resources.md)
        location /_shuttle_static/ {
            internal;
            alias $static;
            add_header Cache-Control "public, max-age=300";
        }
    }
EOF
}

# GET http://NAME.localhost:PORT/PATH through nginx
sub app_get {
    my ($self, $name, $path, %opts) = @_;
    return http_get($self->port, "$name.localhost", $path // '/', %opts);
}


# the CLI ----------------------------------------------------------------

# The environment of every CLI run: the platform's API and alice's key,
# a config directory of the test's own, no colors asked for.
sub cli_env {
    my ($self, %over) = @_;
    my %env = (
        PATH            => $ENV{PATH} // '/usr/bin:/bin',
        HOME            => "$self->{dir}/home",
        XDG_CONFIG_HOME => "$self->{dir}/home/config",
        SHUTTLE_API     => $self->api,
        SHUTTLE_API_KEY => $self->key('alice') // '',
        LANG            => 'C',
    );
    while (my ($k, $v) = each %over) {
        if (defined $v) { $env{$k} = $v } else { delete $env{$k} }
    }
    return %env;
}

# runs the CLI to its end: (exit status, stdout, stderr); a signal exit
# is 128 + the signal.  %opts: env (changes to cli_env; undef deletes),
# dir (working directory), stdin (text), timeout (s, 60).
sub cli {
    my ($self, $args, %opts) = @_;
    return run_cmd([shuttle_bin(), @$args], %opts,
                   env => { $self->cli_env(%{ $opts{env} // {} }) });
}

# the same as a class function, with an environment given whole
sub run_cmd {
    my ($cmd, %opts) = @_;
    my $base = $opts{tmp} // File::Spec->tmpdir;
    my ($out, $err, $in) = map { File::Temp->new(DIR => $base) } 1 .. 3;
    print $in $opts{stdin} // '';
    close $in;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', $in->filename;
        open STDOUT, '>', $out->filename;
        open STDERR, '>', $err->filename;
        if ($opts{env}) { %ENV = %{ $opts{env} } }
        chdir $opts{dir} or POSIX::_exit(126) if defined $opts{dir};
        exec { $cmd->[0] } @$cmd or POSIX::_exit(127);
    }

    # a CLI that hangs is killed, and the test goes on
    my $status;
    {
        local $SIG{ALRM} = sub { kill 'KILL', $pid };
        alarm($opts{timeout} // 60);
        waitpid($pid, 0);
        $status = $?;
        alarm 0;
    }
    $status = ($status & 127) ? 128 + ($status & 127) : $status >> 8;

    local $/;
    open my $o, '<', $out->filename; my $so = <$o> // '';
    open my $e, '<', $err->filename; my $se = <$e> // '';
    return ($status, $so, $se);
}

# starts the CLI in the background: its pid; stdout and stderr in files
# (cli_output(pid) reads them).  Stopped by stop_cli or at the end.
sub spawn_cli {
    my ($self, $args, %opts) = @_;
    my $n = @{ $self->{bg} } + 1;
    my $out = "$self->{dir}/cli-$n.out";
    my $err = "$self->{dir}/cli-$n.err";
    my %env = $self->cli_env(%{ $opts{env} // {} });

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        %ENV = %env;
        chdir $opts{dir} or POSIX::_exit(126) if defined $opts{dir};
        my @cmd = (shuttle_bin(), @$args);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }

    push @{ $self->{bg} }, $pid;
    $self->{bg_files}{$pid} = [$out, $err];
    return $pid;
}

sub cli_output {
    my ($self, $pid) = @_;
    my ($out, $err) = @{ $self->{bg_files}{$pid} };
    return map { local $/; open my $fh, '<', $_ or return ''; <$fh> // '' }
           ($out, $err);
}

# waits up to $timeout s for the background CLI's stdout (or stderr with
# stream => 'err') to match $re; returns the match or undef
sub wait_cli_output {
    my ($self, $pid, $re, $timeout, %opts) = @_;
    my $end = time + ($timeout // 10);
    while (1) {
        my ($out, $err) = $self->cli_output($pid);
        my $s = ($opts{stream} // 'out') eq 'err' ? $err : $out;
        return $1 // $& if $s =~ $re;
        return undef if time > $end;
        sleep 0.02;
    }
}

# sends $sig to a background CLI and waits for its exit: its exit
# status (128 + signal when killed), or undef when it did not exit
sub signal_cli {
    my ($self, $pid, $sig, $timeout) = @_;
    kill $sig, $pid;
    my $end = time + ($timeout // 10);
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            $self->{bg} = [grep { $_ != $pid } @{ $self->{bg} }];
            return ($? & 127) ? 128 + ($? & 127) : $? >> 8;
        }
        sleep 0.02;
    }
    return undef;
}

sub stop_cli {
    my ($self) = @_;
    return if $$ != $self->{owner};
    for my $pid (@{ $self->{bg} }) {
        for my $sig ('TERM', 'KILL') {
            kill $sig, $pid;
            my $end = time + 5;
            while (time < $end && waitpid($pid, WNOHANG) == 0) { sleep 0.02 }
            last if waitpid($pid, WNOHANG) != 0 || !kill(0, $pid);
        }
    }
    $self->{bg} = [];
}

# the API through nginx, as a key would call it: $method $path with
# "Authorization: Bearer <key NAME's secret>"; %opts: body (a hash or
# array ref is sent as JSON), headers.  The response, json decoded; dies
# "METHOD PATH (key NAME): why" when none comes.
sub v1 {
    my ($self, $who, $method, $path, %opts) = @_;
    my @h = (Authorization => 'Bearer ' . $self->key($who),
             @{ $opts{headers} // [] });
    my $body = $opts{body};
    if (ref $body) {
        $body = JSON::PP::encode_json($body);
        push @h, 'Content-Type' => 'application/json';
    }
    # a request that gets no answer dies naming itself
    my $r = eval {
        http_get($self->port, 'localhost', $path, method => $method,
                 headers => \@h, defined $body ? (body => $body) : ());
    } // die "$method $path (key $who): " . ($@ =~ s/\s+\z//r) . "\n";
    $r->{json} = eval { JSON::PP::decode_json($r->{body}) }
        if ($r->{headers}{'content-type'} // '') =~ m{^application/json};
    return $r;
}

# POST /deploy?project=NAME through nginx with key NAME's secret, the
# directory $dir packed with tar czf: the response (json decoded)
sub upload {
    my ($self, $who, $project, $dir, %opts) = @_;
    my $tgz = "$self->{dir}/upload-$$-" . int(rand(1e9)) . '.tar.gz';
    my ($rc, $out, $err) = run_cmd(['tar', 'czf', $tgz, '-C', $dir, '.'],
                                   env => { PATH => $ENV{PATH} });
    die "upload: tar czf $dir: $err" if $rc;
    my $body = do { local $/; open my $fh, '<', $tgz or die "$tgz: $!";
                    binmode $fh; <$fh> };
    unlink $tgz;
    return $self->v1($who, 'POST', "/deploy?project=$project"
                     . ($opts{query} // ''),
                     headers => ['Content-Type' => 'application/gzip'],
                     body => $body);
}

# builder_request from a child process that became uid $uid (and gid
# $gid, no other group) before it connected: what the builder sees of a
# process of that uid (SO_PEERCRED is taken at connect).  Returns the
# response, or { error => "connect: ..." } when it could not connect.
sub builder_request_as {
    my ($self, $uid, $gid, $method, $path, %opts) = @_;

    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $rd;
        my $r = eval {
            $( = $gid;
            $) = "$gid $gid";
            $< = $> = $uid;
            die "setuid $uid: $!\n" if $> != $uid || $< != $uid;
            my $res = $self->{t}->builder_request($method, $path, %opts);
            +{ status => $res->{status}, body => $res->{body} };
        } // { error => ($@ =~ s/\s+$//r) };
        print $wr JSON::PP::encode_json($r);
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    my $out = do { local $/; <$rd> } // '';
    close $rd;
    waitpid($pid, 0);

    my $r = eval { JSON::PP::decode_json($out) }
        // { error => "no answer from the child: '$out'" };
    $r->{json} = eval { JSON::PP::decode_json($r->{body}) }
        if defined $r->{body};
    return $r;
}

# stops everything: the background CLIs, nginx, the builder (its loaders)
sub stop {
    my ($self) = @_;
    return if $$ != $self->{owner};
    $self->stop_cli;
    $self->{t}->stop;
    $self->{pg}->stop if $self->{pg};
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop_cli if $$ == $self->{owner};
}

END {
    local $?;
    for my $p (grep { defined } values %LIVE) {
        $p->stop_cli;
    }
}

1;

__END__

=head1 NAME

Shuttle::Platform - a whole shuttle platform for a test: nginx, builder, CLI

=head1 SYNOPSIS

    use Shuttle::Platform;

    my $p = Shuttle::Platform->new(keys => ['alice', 'bob'],
                                   client_max_body_size => '64k');

    my ($rc, $out, $err) = $p->cli(['deploy'], dir => $project_dir);
    my $r = $p->app_get('hello', '/hello');   # Host: hello.localhost

    my $pid = $p->spawn_cli(['logs', 'hello', '-f']);
    $p->wait_cli_output($pid, qr/a line/, 10);
    $p->signal_cli($pid, 'INT');

=head1 DESCRIPTION

C<new> makes a C<Shuttle::Test> (its prefix, ports, and its end-of-test
cleanup), creates the keys with C<shuttle-builder keys --file
PREFIX/api_keys add NAME>, starts the builder with Shuttle::Test's
C<builder_start> and C<--apps-url http://{name}.localhost:PORT>, then
nginx with one port serving the API (C</deploy> and C</v1/> proxied to
the builder, the C<default_server>) and the apps (C<*.localhost>,
C<shuttle_apps localhost>), like C<conf/local.conf.in>.

Options: C<keys> (names, default C<['alice']>), C<client_max_body_size>
(default C<50m>), C<worker_processes> (1), C<builder_args> (more options
of C<shuttle-builder serve>, e.g. C<['--max-files', 50]>), C<postgres> (true:
a private PostgreSQL server, C<Shuttle::Postgres>, whose admin connection
over TCP the builder gets with C<--postgres>, and its socket's directory,
which services use, with C<--postgres-socket>; C<'socket'>: the admin
connection through the socket; C<pg> returns it),
C<upstream_keepalive_timeout> (nginx's C<keepalive_timeout> in the upstream of
the apps, e.g. C<'300ms'>: a loader goes idle only once nginx has closed its
cached connections to it).

Methods: C<api> (C<http://127.0.0.1:PORT>), C<port>, C<key(NAME)>,
C<app_url(NAME)>, C<app_get(NAME, PATH)>, C<t> (the C<Shuttle::Test>),
C<testdir>, C<builder_pid>, C<builder_log>, C<stop_builder>,
C<start_builder>, C<stop>.  The builder gets the keys file with
C<--api-keys>; nginx's C</v1/> passes the client's C<Authorization> on.
C<v1(KEY, METHOD, PATH, body =E<gt> ...)> calls the API through nginx
with key KEY's bearer secret,
C<upload(KEY, PROJECT, DIR)> deploys a directory through nginx's
C</deploy>, C<builder_request_as(UID, GID, METHOD, PATH, ...)> speaks to
the builder's socket from a process of that uid.  The builder is
Shuttle::Test's
C<builder_start>: its data, zone, spool, socket and log in the prefix.

The CLI (C<build/bin/shuttle>, or C<$SHUTTLE_CLI>) runs with C<cli_env>:
C<SHUTTLE_API>, C<SHUTTLE_API_KEY> (alice's), C<HOME> and
C<XDG_CONFIG_HOME> inside the prefix, nothing else of the caller's.
C<cli(\@args, env =E<gt> {...}, dir =E<gt> DIR, stdin =E<gt> TEXT)> runs it
to its end and returns C<(status, stdout, stderr)>; C<spawn_cli> starts
it in the background (C<cli_output>, C<wait_cli_output>, C<signal_cli>);
those still running are stopped by pid (TERM, then KILL) by C<stop>,
C<DESTROY> or the C<END> block.  C<run_cmd(\@cmd, env =E<gt> {...}, ...)>
runs any command the same way.

=cut
