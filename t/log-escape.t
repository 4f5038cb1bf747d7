#!/usr/bin/perl

# Tenant text in the builder's log and in a deployment's reason is
# escaped (builder/log.h): a tenant whose service or build says
# "\n2026-01-01 [error] forged line" forges no line of the builder's log,
# and one that says "\e[2J" clears no operator's terminal.  The tenant's
# bytes come by the loader's "error: <why>" on its ready pipe (a route
# refused in main names its method), by a line the service writes on
# that pipe itself, by the last lines of its runtime log (quoted in a
# failed start's reason and in a crash's), by a build's output and by
# the names of the files its build makes (a link in a static folder is
# refused, naming it).  The builder's log has no line that starts with
# the forged text, no ESC, no CR, no byte that is not UTF-8; each
# reason, through /v1, shows them as \xNN (a backslash the builder
# quotes as \\); the CLI shows reasons so, even one stored raw.  The
# tenant's own build and runtime logs stay as the tenant wrote them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Encode qw(decode FB_CROAK);
use File::Path qw(make_path);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $p = Shuttle::Platform->new(keys => ['alice']);
my $t = $p->t;
my $work = $p->testdir . '/work';

# what the tenant says, as C source: a backslash, a clear screen, a
# carriage return, a byte that is not UTF-8, a forged line
my $forged = 'back\\\\slash\x1b[2J\r2026-01-01 [error] forged cr\xff\n'
           . '2026-01-01 [error] forged line\x1b[2J';

sub project {
    my ($name, %files) = @_;
    my $dir = "$work/$name";
    make_path("$dir/src");
    $t->write_file("$dir/shuttle.json", qq{{"name": "$name"}});
    $t->write_file("$dir/$_", $files{$_}) for keys %files;
    return $dir;
}

sub deploy {
    my ($name, $dir, $re) = @_;
    my $r = $p->upload('alice', $name, $dir);
    die "deploy $name: $r->{status} $r->{body}" if $r->{status} != 202;
    return $t->wait_deployment('alice', $r->{json}{id}, $re, 30);
}

# the reason through /v1, as the API gives it (undef: none, or no JSON)
sub reason {
    my ($id) = @_;
    my $r = $p->v1('alice', 'GET', "/v1/deployments/$id");
    return $r->{json} ? $r->{json}{reason} : undef;
}

# the same, escaped: its first line, its second; $guarded: escaped
# where the builder cannot tell it from its own words (the backslash
# stays one: see log.h)
my $rest = qr/\\x1b\[2J\\x0d2026-01-01 \[error\] forged cr\\xff/;
my $esc = qr/back\\\\slash$rest/;
my $guarded = qr/back\\slash$rest/;
my $line = qr/2026-01-01 \[error\] forged line\\x1b\[2J/;

# the builder's log: one test per way it could be forged
sub log_clean {
    my ($what) = @_;
    my $log = $p->builder_log;
    ok($log !~ /^\d{4}-\d\d-\d\d \[error\] forged/m,
       "$what: no line of the builder's log starts with the forged text");
    ok($log !~ /\e/, "$what: no ESC in the builder's log");
    ok($log !~ /\r/, "$what: no CR in the builder's log");
    ok(eval { decode('UTF-8', my $copy = $log, FB_CROAK); 1 },
       "$what: the builder's log is UTF-8");
}


# a service whose main fails: a route with a hostile method ---------------

my $dir = project('mainfails', 'src/main.c' => <<"EOF");
#include <shuttle.h>

static void
h(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "ok\\n");
}

SHUTTLE_MAIN(app)
{
    shuttle_log("main says: %s", "$forged");
    shuttle_route(app, "GET$forged", "/x", h);
    return 0;
}
EOF
my $d = deploy('mainfails', $dir, qr/^failed$/);
my $reason = reason($d->{id});
ok(defined $reason, 'a failed start: the reason is in the API (valid UTF-8)')
    or diag explain $d;
$reason //= '';
like($reason, qr/^start failed: route "GETback/,
     '... it says why, from the loader');
my ($first) = split /\n/, $reason;
like($first, qr/GET$esc( \(.*\))?$/,
     "... the loader's words escaped: ESC, CR, a byte not UTF-8 as \\xNN")
    or diag $reason;
like($reason, qr/\nlast lines of runtime\.log:\n/,
     '... then the last lines of its runtime log');
like($reason, qr/main says: $esc\n$line\n/,
     '... each line escaped') or diag $reason;
ok($reason !~ /[\e\r\x{ff}]/, '... no ESC, no CR, no raw byte in it');
log_clean('a failed start');
like($p->builder_log,
     qr/mainfails #$d->{id}: start failed: route "GET.*\\x1b\[2J/,
     '... the builder logs the escaped reason');
like($t->read_file("data/projects/mainfails/deployments/$d->{id}/runtime.log"),
     qr/\e\[2J/, "... the tenant's own runtime log keeps its bytes");


# a service that writes on the loader's ready pipe itself ------------------

$dir = project('saysready', 'src/main.c' => <<"EOF");
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <shuttle.h>

SHUTTLE_MAIN(app)
{
    int      fd;
    char     args[4096], *p, *end;
    ssize_t  n;

    (void) app;
    fd = open("/proc/self/cmdline", O_RDONLY);
    n = read(fd, args, sizeof(args) - 1);
    args[n > 0 ? n : 0] = '\\0';
    end = args + (n > 0 ? n : 0);

    for (p = args; p < end; p += strlen(p) + 1) {
        if (strcmp(p, "--ready-fd") == 0 && p + strlen(p) + 1 < end) {
            fd = atoi(p + strlen(p) + 1);
            dprintf(fd, "%s\\n", "$forged");
        }
    }

    return 0;
}
EOF
$d = deploy('saysready', $dir, qr/^(running|failed)$/);
is($d->{state}, 'failed',
   'a service that says something else than ready: failed');
$reason = reason($d->{id});
ok(defined $reason, '... the reason is in the API') or diag explain $d;
$reason //= '';
($first) = split /\n/, $reason;
like($first, qr/^start failed: loader said "$esc" instead of ready/,
     '... quoting what it said, escaped')
    or diag $reason, $p->v1('alice', 'GET', "/v1/deployments/$d->{id}/logs")->{body};
ok($reason !~ /[\e\r\x{ff}]/, '... no ESC, no CR, no raw byte in it');
log_clean('a line on the ready pipe');


# a service that crashes until it is crashed --------------------------------

$dir = project('crashes', 'src/main.c' => <<"EOF");
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <shuttle.h>

static void
h(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "ok\\n");
}

static void *
later(void *arg)
{
    usleep(150000);
    shuttle_log("dying: %s", "$forged");
    abort();
    return NULL;
}

SHUTTLE_MAIN(app)
{
    pthread_t  t;

    shuttle_get(app, "/", h);
    pthread_create(&t, NULL, later, NULL);
    return 0;
}
EOF
$d = deploy('crashes', $dir, qr/^(crashed|failed)$/);
is($d->{state}, 'crashed', 'a service that crashes after each start: crashed');
$reason = reason($d->{id});
ok(defined $reason, '... the reason is in the API') or diag explain $d;
$reason //= '';
like($reason, qr/^loader crashed \d+ times .*\nlast lines of runtime\.log:\n/s,
     '... with the last lines of its runtime log');
like($reason, qr/dying: $esc\n$line(\n|$)/,
     '... each escaped') or diag $reason;
ok($reason !~ /[\e\r\x{ff}]/, '... no ESC, no CR, no raw byte in it');
log_clean('a crash loop');

# the CLI shows that reason, escaped
my ($rc, $out, $err) = $p->cli(['status', 'crashes']);
like($out . $err, qr/forged line\\x1b\[2J/, 'shuttle status shows the reason')
    or diag "$rc\n$out\n$err";
ok(($out . $err) !~ /[\e\r]/, '... with no ESC and no CR');

# a raw reason, as a builder before this one stored it: the CLI escapes
my $db = $t->builder_data . '/shuttle.db';
is(system('sqlite3', $db, "UPDATE deployments SET reason = 'raw' || char(27) "
          . "|| '[2J' || char(13) || 'forged' WHERE id = $d->{id}"), 0,
   'a raw reason written into shuttle.db');
is(reason($d->{id}), "raw\e[2J\rforged", '... the API gives it raw');
for my $cmd (['status', 'crashes'], ['deployments', 'crashes']) {
    ($rc, $out, $err) = $p->cli($cmd);
    like($out . $err, qr/raw\\x1b\[2J\\x0dforged/,
         "shuttle @$cmd shows it escaped") or diag "$rc\n$out\n$err";
    ok(($out . $err) !~ /[\e\r]/, '... with no ESC and no CR');
}


# a build that says it and fails ---------------------------------------------

(my $sh = $forged) =~ s/\\x1b/\\033/g;
$sh =~ s/\\xff/\\377/g;
$dir = project('buildfails', 'Makefile' => <<"EOF");
service.so:
	\@printf '$sh\\n'
	\@printf '$sh' >&2
	false
EOF
$d = deploy('buildfails', $dir, qr/^failed$/);
$reason = reason($d->{id}) // '';
like($reason, qr/exited with status/, 'a build that fails: failed');
ok($reason !~ /[\e\r\x{ff}]/, '... no ESC, no CR, no raw byte in the reason');
log_clean('a failed build');
like($p->v1('alice', 'GET', "/v1/deployments/$d->{id}/logs")->{body},
     qr/\e\[2J/, "... the tenant's own build log keeps its bytes");


# a build that names a file with it -----------------------------------------

$dir = project('buildnames',
    'src/main.c' => <<'EOF',
#include <shuttle.h>

SHUTTLE_STATIC("public");

SHUTTLE_MAIN(app)
{
    return 0;
}
EOF
    'Makefile' => <<"EOF");
service.so: src/main.c
	mkdir -p public
	ln -s /etc/hostname "public/\$\$(printf 'x$sh')"
	\$(CC) -std=gnu11 -fPIC -shared -I\$(SHUTTLE_INCLUDE) -o \$@ \$<
EOF
$d = deploy('buildnames', $dir, qr/^(running|failed)$/);
is($d->{state}, 'failed', 'a link in the static folder: failed');
$reason = reason($d->{id});
ok(defined $reason, '... the reason is in the API') or diag explain $d;
$reason //= '';
like($reason, qr/x$guarded\\x0a$line/,
     "... naming the file, escaped") or diag $reason;
ok($reason !~ /[\n\e\r\x{ff}]/, '... one line, no ESC, no CR, no raw byte');
log_clean('a file name');

$p->stop;

done_testing();
