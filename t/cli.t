#!/usr/bin/perl

# The shuttle CLI on its own, no platform: --help and --version, usage
# errors (exit 2), shuttle init, what shuttle deploy packs (.git, build
# outputs and .shuttleignore left out, symbolic links refused), where the
# API and the key come from (flags, SHUTTLE_API/SHUTTLE_API_KEY, the config
# file) as the errors name them, an unreachable API (exit 3), colors only
# on a terminal and never with NO_COLOR, delete asking first.  The CLI
# against a real platform is t/cli-deploy.t; shuttle run is t/cli-run.t.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(mkfifo);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $bin = Shuttle::Platform::shuttle_bin();
plan skip_all => "$bin is not built (make)" unless -x $bin;

my $t = Shuttle::Test->new;
my $dir = $t->testdir;
make_path("$dir/home/config", "$dir/work");

my %ENV0 = (PATH => $ENV{PATH} // '/usr/bin:/bin', HOME => "$dir/home",
            XDG_CONFIG_HOME => "$dir/home/config", LANG => 'C');

# (exit status, stdout, stderr) of shuttle @$args in $o{dir} (work/)
sub shuttle {
    my ($args, %o) = @_;
    my %env = (%ENV0, %{ $o{env} // {} });
    delete $env{$_} for grep { !defined $env{$_} } keys %env;
    return Shuttle::Platform::run_cmd([$bin, @$args], env => \%env,
                                      dir => $o{dir} // "$dir/work",
                                      stdin => $o{stdin}, timeout => 20);
}

sub write_file {
    my ($path, $text) = @_;
    $t->write_file($path, $text);
}

# a port nothing listens on: one of the harness's, locked against every
# other test and below the ephemeral range (a port bound to 0 and closed
# again was taken by another test's stand-in server, which answered 404)
my $closed = 0;
sub closed_port {
    return $t->port('closed' . ++$closed);
}


# --version, --help -------------------------------------------------------------

my ($rc, $out, $err) = shuttle(['--version']);
is($rc, 0, '--version: exit 0');
like($out, qr/^shuttle \d+\.\d+\.\d+\n\z/, '--version: "shuttle X.Y.Z"');

# libcurl and libarchive (and the 40 libraries behind them) are loaded by
# the commands that upload or pack, not at every start (cli/lazy.c): the
# dynamic loader's own account of the files it opens
($rc, $out, $err) = shuttle(['--version'], env => { LD_DEBUG => 'files' });
unlike($err, qr/libcurl|libarchive/, '--version loads neither libcurl nor '
       . 'libarchive');
write_file("$dir/work/lazy/src/main.c", "int x;\n");
($rc, $out, $err) = shuttle(['deploy', '--dry-run', '--name', 'lazy',
                             'lazy'], env => { LD_DEBUG => 'files' });
is($rc, 0, 'deploy --dry-run: exit 0') or diag $err;
like($err, qr/file=libarchive\.so[.\d]* .*\n(.*\n)*.*calling init: \S*libarchive/,
     '... loads libarchive to pack') or diag $err;
like($out, qr/^src\/main\.c$/m, '... and lists what it packed');

($rc, $out) = shuttle(['--help']);
is($rc, 0, '--help: exit 0');

my @commands = qw(init deploy status list deployments logs rollback delete
                  run login);
for my $cmd (@commands) {
    like($out, qr/^  \Q$cmd\E\s+\S/m, "--help lists $cmd");

    my ($rc1, $out1) = shuttle([$cmd, '--help']);
    is($rc1, 0, "$cmd --help: exit 0");
    like($out1, qr/^usage: shuttle \Q$cmd\E\b.*\n(.*\n)+  --api URL/,
         "$cmd --help: its usage and the global options");

    my ($rc2, $out2) = shuttle(['help', $cmd]);
    is($out2, $out1, "help $cmd is $cmd --help");
}

($rc, $out) = shuttle(['logs', '--help']);
like($out, qr/build log of the project's latest deployment, then the\s+runtime log .*\s+of the deployment serving the project/,
     'logs --help says what it shows by default');


# usage errors: exit 2 --------------------------------------------------------

for my $case (
    [ [],                           qr/^usage: shuttle/m ],
    [ ['frobnicate'],               qr/unknown command "frobnicate"/ ],
    [ ['deploy', '--bogus'],        qr/shuttle deploy: unknown option --bogus/ ],
    [ ['init', '--name'],           qr/--name needs a value/ ],
    [ ['init', '--name', 'Bad_Name'], qr/"Bad_Name" is not a project name/ ],
    [ ['status', 'a', 'b'],         qr/one project name at most/ ],
    [ ['rollback', 'demo', 'x1'],   qr/"x1" is not a deployment ID/ ],
    [ ['logs', '--build', '--runtime'], qr/--build or --runtime, not both/ ],
    [ ['logs', '--deployment', 'x'], qr/"x" is not a deployment ID/ ],
    [ ['run', '--port', '0'],       qr/"0" is not a port number/ ],
    [ ['run', '--port', 'http'],    qr/"http" is not a port number/ ],
    [ ['delete'],                   qr/give the name of the project/ ],
    [ ['deploy', 'no-such-dir'],    qr/no-such-dir: No such file/ ],
    [ ['--api'],                    qr/--api needs a value/ ],
) {
    my ($args, $re) = @$case;
    my ($rc1, $out1, $err1) = shuttle($args);
    is($rc1, 2, "shuttle @$args: exit 2");
    like($err1, $re, "shuttle @$args: says why");
}


# init ---------------------------------------------------------------------------------

($rc, $out, $err) = shuttle(['init', 'demo']);
is($rc, 0, 'init demo: exit 0') or diag $err;
like($err, qr/cd demo\n.*shuttle run.*\n.*shuttle deploy/s,
     'init demo: says what to do next');

my $demo = "$dir/work/demo";
ok(-f "$demo/$_", "init made $_")
    for qw(shuttle.json src/main.c .shuttleignore README.md);
is_deeply(decode_json($t->read_file("$demo/shuttle.json")),
          { name => 'demo' }, 'shuttle.json: {"name": "demo"}');

my $main = $t->read_file("$demo/src/main.c");
like($main, qr/#include <shuttle\.h>/, 'src/main.c includes shuttle.h');
like($main, qr/SHUTTLE_MAIN\(app\)/, 'src/main.c has SHUTTLE_MAIN');
is(scalar(() = $main =~ /shuttle_get\(app, "/g), 3, 'src/main.c: 3 routes');

($rc, $out, $err) = shuttle(['init', 'demo']);
is($rc, 2, 'init again: exit 2');
like($err, qr{demo/shuttle\.json exists}, 'init again: says what exists');
is($t->read_file("$demo/src/main.c"), $main, 'init again: nothing replaced');

make_path("$dir/work/My_Project.2");
write_file("$dir/work/My_Project.2/README.md", "mine\n");
($rc, $out, $err) = shuttle(['init'], dir => "$dir/work/My_Project.2");
is($rc, 0, 'init in a folder with a README: exit 0') or diag $err;
is(decode_json($t->read_file("$dir/work/My_Project.2/shuttle.json"))->{name},
   'my-project-2', 'the name is made of the folder name: my-project-2');
is($t->read_file("$dir/work/My_Project.2/README.md"), "mine\n",
   'an existing README.md is kept');
like($err, qr/kept the existing .*README\.md/, '... and says so');

($rc) = shuttle(['init', 'named', '--name', 'other']);
is(decode_json($t->read_file("$dir/work/named/shuttle.json"))->{name},
   'other', 'init --name sets the name');


# packing: what deploy --dry-run lists is what the tar.gz holds ------------------

my $p = "$dir/work/pack";
write_file("$p/$_", "x\n") for (
    'shuttle.json', 'src/main.c', 'src/util.c', 'src/include/util.h',
    '.git/HEAD', '.git/objects/ab/cdef', 'vendor/lib/.git',
    'service.so', 'src/main.o', 'lib/service.so', '.shuttle/service.so',
    'notes.log', 'keep.log', 'deep/er/debug.log',
    'build/out.txt', 'docs/build', 'top.txt', 'src/top.txt',
    'docs/draft-1.txt', 'docs/draft-10.txt', 'docs/draft-1.txt.bak',
    'x/y/cache/blob', 'cache/blob', 'data/a/b', '#hash', 'src/#hash',
    'tmp file', '!bang');
write_file("$p/shuttle.json", qq({"name": "packed"}\n));
write_file("$p/.shuttleignore", <<'EOF');
# a comment: src/main.c stays
*.log
!keep.log
build/
/top.txt
docs/draft-?.txt
**/cache/
data/**
\#hash
tmp file   
\!bang

EOF

($rc, $out, $err) = shuttle(['deploy', '--dry-run'], dir => $p);
is($rc, 0, 'deploy --dry-run: exit 0, no API needed') or diag $err;
is_deeply([split /\n/, $out], [
    '.shuttleignore', 'docs/build', 'docs/draft-1.txt.bak',
    'docs/draft-10.txt', 'keep.log', 'shuttle.json', 'src/include/util.h',
    'src/main.c', 'src/top.txt', 'src/util.c',
], 'packed: .git, build outputs and .shuttleignore\'s patterns left out')
    or diag $out;
like($err, qr/^packed: 10 files, .* would be uploaded; nothing was$/m,
     '--dry-run: the name from shuttle.json, counts, nothing uploaded');

($rc, $out, $err) = shuttle(['deploy', '--dry-run', '--name', 'flagged', $p]);
like($err, qr/^flagged: 10 files/m, '--name wins over shuttle.json');

write_file("$dir/work/plain-dir/src/main.c", "x\n");
($rc, $out, $err) = shuttle(['deploy', '--dry-run', 'plain-dir']);
like($err, qr/^plain-dir: 1 files/m,
     'no name in shuttle.json: the folder\'s name');

write_file("$dir/work/Bad_Dir/src/main.c", "x\n");
($rc, $out, $err) = shuttle(['deploy', '--dry-run', 'Bad_Dir']);
is($rc, 2, 'a folder name that is no project name: exit 2');
like($err, qr/"Bad_Dir" is not a project name.*--name/,
     '... and says to give one');

write_file("$dir/work/bad-json/shuttle.json", "{\"name\": \n");
($rc, $out, $err) = shuttle(['deploy', '--dry-run', 'bad-json']);
is($rc, 2, 'a broken shuttle.json: exit 2');
like($err, qr/shuttle\.json/, '... naming shuttle.json');

symlink('main.c', "$p/src/link.c") or die "symlink: $!";
($rc, $out, $err) = shuttle(['deploy', '--dry-run'], dir => $p);
is($rc, 2, 'a symbolic link: exit 2');
like($err, qr{src/link\.c is a symbolic link: the platform takes regular files},
     '... naming it and why');
is($out, '', '... and nothing is packed');

write_file("$p/.shuttleignore", "src/link.c\n");
($rc, $out, $err) = shuttle(['deploy', '--dry-run'], dir => $p);
is($rc, 0, 'a symbolic link listed in .shuttleignore: fine');
unlink "$p/src/link.c";

symlink('/etc', "$p/etc") or die "symlink: $!";
mkfifo("$p/pipe", 0644) or die "mkfifo: $!";
($rc, $out, $err) = shuttle(['deploy', '--dry-run'], dir => $p);
like($err, qr/etc is a symbolic link/, 'a link to a directory is refused');
unlink "$p/etc";
($rc, $out, $err) = shuttle(['deploy', '--dry-run'], dir => $p);
like($err, qr/pipe is a FIFO/, 'a FIFO is refused');
unlink "$p/pipe";


# settings: flags, then the environment, then the config file ------------------------

my ($p1, $p2, $p3) = (closed_port(), closed_port(), closed_port());
my $cfg = "$dir/home/config/shuttle/config.json";

($rc, $out, $err) = shuttle(['list'],
    env => { SHUTTLE_API => "http://127.0.0.1:$p1", SHUTTLE_API_KEY => 'k' });
is($rc, 3, 'unreachable API: exit 3');
like($err, qr{cannot reach the API at http://127\.0\.0\.1:$p1 \(from SHUTTLE_API\)},
     'unreachable API: names the URL and where it came from');

($rc, $out, $err) = shuttle(['list', '--api', "http://127.0.0.1:$p2/"],
    env => { SHUTTLE_API => "http://127.0.0.1:$p1", SHUTTLE_API_KEY => 'k' });
like($err, qr{at http://127\.0\.0\.1:$p2 \(from --api\)},
     '--api wins over SHUTTLE_API (a command\'s option)');

($rc, $out, $err) = shuttle(['--api', "http://127.0.0.1:$p2", 'list'],
    env => { SHUTTLE_API_KEY => 'k' });
like($err, qr{at http://127\.0\.0\.1:$p2 \(from --api\)},
     '--api before the command too');

write_file($cfg, encode_json({ api => "http://127.0.0.1:$p3", key => 'c' }));
($rc, $out, $err) = shuttle(['list'],
    env => { SHUTTLE_API => "http://127.0.0.1:$p1" });
like($err, qr{at http://127\.0\.0\.1:$p1 \(from SHUTTLE_API\)},
     'SHUTTLE_API wins over the config file');

($rc, $out, $err) = shuttle(['list']);
is($rc, 3, 'the config file alone: exit 3 (unreachable)');
like($err, qr{at http://127\.0\.0\.1:$p3 \(from \Q$cfg\E\)},
     'the config file alone: its API, and the file named');

write_file($cfg, "{\"api\": ");
($rc, $out, $err) = shuttle(['list']);
is($rc, 2, 'a broken config file: exit 2');
like($err, qr{\Q$cfg\E: .*fix it or run shuttle login},
     '... naming the file and the way out');
unlink $cfg;

($rc, $out, $err) = shuttle(['status', 'demo']);
is($rc, 3, 'no key anywhere: exit 3');
like($err, qr{no API key for http://localhost:8080: log in with `shuttle login --key KEY`, or set SHUTTLE_API_KEY},
     'no key anywhere: says how to log in, the default API named');

($rc, $out, $err) = shuttle(['list', '--api', 'ftp://x', '--key', 'k']);
is($rc, 2, 'an API URL that is not http(s): exit 2');

# no host: once trimmed of its '/', "http://" was "http:", and the CLI
# said it could not resolve host "v1"
for my $url ('http://', 'https:///') {
    ($rc, $out, $err) = shuttle(['list', '--key', 'k'],
                                env => { SHUTTLE_API => $url });
    is($rc, 2, "API URL \"$url\": exit 2");
    like($err, qr{the API URL "\Q$url\E" \(from SHUTTLE_API\) names no host},
         '... naming the URL, where it came from, and the cause');
}

($rc, $out, $err) = shuttle(['login', '--api', "http://127.0.0.1:$p1",
                             '--key', 'sk_x']);
is($rc, 3, 'login to an unreachable API: exit 3');
like($err, qr/cannot reach the API.*\n.*nothing saved/s, '... nothing saved');
ok(!-e $cfg, '... and no config file written');

($rc, $out, $err) = shuttle(['login', '--api', "http://127.0.0.1:$p1"],
                            stdin => "\n");
is($rc, 2, 'login with an empty key on stdin: exit 2');


# colors: on a terminal only, never with NO_COLOR --------------------------------

# script(1) runs the command on a pseudo-terminal
my $script = -x '/usr/bin/script' ? '/usr/bin/script' : undef;

SKIP: {
    skip 'no script(1) for a terminal', 4 unless $script;

    my @cmd = ($script, '-qec',
               "$bin --api http://127.0.0.1:$p1 --key k list", '/dev/null');
    my ($rc1, $tty) = Shuttle::Platform::run_cmd(\@cmd,
        env => { %ENV0, TERM => 'xterm' }, dir => $dir);
    like($tty, qr/\e\[[\d;]*m/, 'on a terminal: colors');
    like($tty, qr/cannot reach the API/, '... of the same message');

    ($rc1, $tty) = Shuttle::Platform::run_cmd(\@cmd,
        env => { %ENV0, TERM => 'xterm', NO_COLOR => 1 }, dir => $dir);
    unlike($tty, qr/\e\[/, 'NO_COLOR: no colors on a terminal');

    # delete asks on a terminal: "n" keeps the project (no request made)
    @cmd = ($script, '-qec', "$bin --api http://127.0.0.1:$p1 --key k "
                             . "delete demo", '/dev/null');
    ($rc1, $tty) = Shuttle::Platform::run_cmd(\@cmd,
        env => { %ENV0, TERM => 'xterm' }, dir => $dir, stdin => "n\n");
    like($tty, qr/Delete demo: .*\[y\/N\].*demo was not deleted/s,
         'delete on a terminal asks, and "n" keeps the project');
}

($rc, $out, $err) = shuttle(['list'],
    env => { SHUTTLE_API => "http://127.0.0.1:$p1", SHUTTLE_API_KEY => 'k' });
unlike($err, qr/\e\[/, 'not a terminal: no colors');

($rc, $out, $err) = shuttle(['delete', 'demo'],
    env => { SHUTTLE_API => "http://127.0.0.1:$p1", SHUTTLE_API_KEY => 'k' },
    stdin => "y\n");
is($rc, 2, 'delete without --yes, stdin not a terminal: exit 2');
like($err, qr/refusing to delete demo without --yes: stdin is not a terminal/,
     '... and says why');



# a stand-in for the API: rollback's requests, another builder's logs -----------
#
# (t/cli-rollback.t and t/cli-deploy.t use the real builder.)  The
# stand-in answers rollback of "demo" with 200, of "solo" with 409,
# deploys of "demo" and "bad" with a log that has no "shuttle:" lines of
# the builder's own, and records every request line and body.

my $api = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Listen => 8, ReuseAddr => 1) or die "$@";
my $api_port = $api->sockport;
my $seen = "$dir/api-requests";

my $stand_in = fork // die "fork: $!";
if ($stand_in == 0) {
    while (my $c = $api->accept) {
        my ($head, $body) = ('', '');
        while (my $l = <$c>) { $head .= $l; last if $l eq "\r\n" }
        my ($len) = $head =~ /^Content-Length: (\d+)/mi;
        read($c, $body, $len) if $len;
        my ($line) = $head =~ /^(.*?)\r\n/;
        my ($auth) = $head =~ /^Authorization: (.*?)\r$/mi;
        open my $fh, '>>', $seen;
        print $fh "$line $body\n", "auth: ", $auth // '-', "\n";
        close $fh;

        my ($status, $json) = (404, '{"error":"not found"}');
        if ($line =~ m{^POST /v1/projects/demo/rollback }) {
            my $id = ($body =~ /"deployment":\s*(\d+)/)[0] // 4;
            ($status, $json) = (200, qq({"id":$id,"project":"demo","state":"running"}));
        } elsif ($line =~ m{^POST /v1/projects/solo/rollback }) {
            ($status, $json) = (409, '{"error":"solo has no other successful deployment"}');
        } elsif ($line =~ m{^GET /v1/projects/demo }) {
            ($status, $json) = (200, '{"name":"demo","state":"running","url":"http://demo.example","deployment":4}');
        } elsif ($line =~ m{^GET /v1/projects/bad }) {
            ($status, $json) = (200, '{"name":"bad","state":"failed","url":"http://bad.example","current":null}');
        } elsif ($line =~ m{^POST /deploy\?project=(demo|bad) }) {
            ($status, $json) = (202, '{"id":' . ($1 eq 'demo' ? 5 : 6)
                                     . ',"project":"' . $1 . '","state":"queued"}');
        } elsif ($line =~ m{^GET /v1/deployments/([56])/logs\?follow=1 }) {
            # a log without the builder's own lines
            ($status, $json) = (200, $1 == 5 ? "cc -o service.so src/main.c\n"
                                             : "src/main.c:1: error: nope\n");
        } elsif ($line =~ m{^GET /v1/deployments/([56]) }) {
            my @t = map { qq({"state":"$_","at":"2024-01-01T00:00:00.000Z","reason":null}) }
                    $1 == 5 ? qw(queued building built loading running)
                            : qw(queued building failed);
            ($status, $json) = (200, qq({"id":$1,"state":")
                . ($1 == 5 ? 'running","reason":null' : 'failed","reason":"build failed: cc exited with status 1"')
                . qq(,"build_ms":12,"start_ms":3,"transitions":[) . join(',', @t) . ']}');
        }
        print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                 . "Content-Length: " . length($json) . "\r\n"
                 . "Connection: close\r\n\r\n$json";
        close $c;
    }
    POSIX::_exit(0);
}
close $api;
END {
    local $?;
    if ($stand_in) { kill 'KILL', $stand_in; waitpid($stand_in, 0) }
}

my %stand_in = (SHUTTLE_API => "http://127.0.0.1:$api_port",
                SHUTTLE_API_KEY => 'sk_test');

($rc, $out, $err) = shuttle(['rollback'], dir => $demo, env => \%stand_in);
is($rc, 0, 'rollback (name from shuttle.json, no ID): exit 0') or diag $err;
is($out, "http://demo.example\n", '... the URL on stdout');
like($err, qr/^demo now runs deployment 4 again$/m, '... which deployment');

($rc, $out, $err) = shuttle(['rollback', '7'], dir => $demo,
                            env => \%stand_in);
like($err, qr/^demo now runs deployment 7 again$/m, 'rollback ID');

($rc, $out, $err) = shuttle(['rollback', 'demo', '9'], env => \%stand_in);
like($err, qr/^demo now runs deployment 9 again$/m, 'rollback NAME ID');

($rc, $out, $err) = shuttle(['rollback', 'solo'], env => \%stand_in);
is($rc, 3, 'nothing to roll back to (409): exit 3');
like($err, qr/^shuttle rollback: solo: solo has no other successful deployment \(409\)$/m,
     '... the API\'s reason');

# deploy with a log that tells no state: the transitions do
($rc, $out, $err) = shuttle(['deploy'], dir => $demo, env => \%stand_in);
is($rc, 0, 'deploy, a builder that does not tell its steps: exit 0')
    or diag $err;
is($out, "http://demo.example\n", '... the URL');
like($err, qr/^Deployment 5: queued\n  \| cc -o service\.so src\/main\.c\n  building\n  built in 12 ms\n  loading\n  running, started in 3 ms\ndemo is running \(deployment 5, /m,
     '... its log, then each state change from the deployment\'s transitions');

# SHUTTLE_TRACE=1: each step's end on stderr, in order, the times rising;
# without it, no trace line (the deploy above)
unlike($err, qr/^trace:/m, 'no SHUTTLE_TRACE: no trace lines');
($rc, $out, $err) = shuttle(['deploy'], dir => $demo,
                            env => { %stand_in, SHUTTLE_TRACE => 1 });
is($rc, 0, 'deploy with SHUTTLE_TRACE=1: exit 0') or diag $err;
my @trace = $err =~ /^trace: \+(\d+\.\d) ms (.*)$/mg;
is_deeply([@trace[grep { $_ % 2 } 0 .. $#trace]],
          ['packed', 'libcurl loaded', 'uploaded', 'followed'],
          '... the steps: packed, libcurl loaded, uploaded, followed')
    or diag $err;
my @ms = @trace[grep { !($_ % 2) } 0 .. $#trace];
ok(!grep({ $ms[$_] < $ms[$_ - 1] } 1 .. $#ms), '... the times rising')
    or diag "@ms";

($rc, $out, $err) = shuttle(['deploy', '--name', 'bad'], dir => $demo,
                            env => \%stand_in);
is($rc, 1, 'a failed deployment: exit 1');
like($err, qr/^  \| src\/main\.c:1: error: nope\n  building\n  failed\nshuttle deploy: bad: deployment 6 failed: build failed: cc exited with status 1\n\z/m,
     '... its log, the states, the reason, nothing serving');

my @req = grep { /rollback/ } split /\n/, $t->read_file($seen) // '';
is_deeply([map { s/ HTTP\/1\.1//r } @req], [
    'POST /v1/projects/demo/rollback {}',
    'POST /v1/projects/demo/rollback {"deployment":7}',
    'POST /v1/projects/demo/rollback {"deployment":9}',
    'POST /v1/projects/solo/rollback {}',
], 'the requests: POST /v1/projects/NAME/rollback, {} or {"deployment": ID}');
my @auth = grep { /^auth: / } split /\n/, $t->read_file($seen) // '';
is_deeply([sort keys %{{ map { $_ => 1 } @auth }}], ['auth: Bearer sk_test'],
          'every request with Authorization: Bearer KEY');

done_testing;
