#!/usr/bin/perl

# The dashboard (dashboard/ at /dashboard/ on the API server) in a real
# browser: Debian's headless chromium driven by chromedriver (WebDriver:
# JSON over HTTP).  A wrong key is refused with the API's message; the
# right one lists the deployed project, running, with its URL; a
# redeploy with the CLI shows up without a reload, building (held by
# its Makefile until the test lets it go: its build log shows while it
# builds), then running and serving; a line the service logs shows in
# the runtime log view; rollback (confirmed in the browser's dialog) and
# restart do what the API says; closing the logs ends their streams;
# the key is in sessionStorage, not in localStorage nor the URL; "Forget
# key" forgets it, and so does a 401 when the key is revoked meanwhile.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use File::Temp ();
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More;
use Shuttle::Test;
use Shuttle::Platform;

my $CHROMIUM = '/usr/bin/chromium';
my $DRIVER = '/usr/bin/chromedriver';

plan skip_all => "$CHROMIUM is not installed (apt-get install chromium "
                 . "chromium-driver)"
    unless -x $CHROMIUM;
plan skip_all => "$DRIVER is not installed (apt-get install chromium-driver)"
    unless -x $DRIVER;
plan skip_all => Shuttle::Platform::shuttle_bin() . ' is not built (make)'
    unless -x Shuttle::Platform::shuttle_bin();

my $p = Shuttle::Platform->new;
my $t = $p->t;
my $dir = $p->testdir;
my $work = "$dir/work";
make_path($work);

my ($rc, $out, $err) = $p->cli(['init', 'demo'], dir => $work);
die "shuttle init: exit $rc\n$err" if $rc;
my $demo = "$work/demo";
my $main = $t->read_file("$demo/src/main.c");

($rc, $out, $err) = $p->cli(['deploy'], dir => $demo);
die "deploying demo: exit $rc\n$err" if $rc;
my ($id1) = $err =~ /^Deployment (\d+)/m or die "no deployment id: $err";
like($p->app_get('demo', '/')->{body}, qr/^Hello from demo!/,
     "deployment $id1 answers");


# chromedriver and chromium, stopped by pid and process group at the end -----

my ($wd_port) = $t->port_range(1);
# its own directory, not in the platform's (which may be removed first
# when the test dies)
my $cdir = File::Temp::tempdir('shuttle-dashboard-XXXXXX', TMPDIR => 1);
my $profile = "$cdir/profile";
make_path("$cdir/home");
my ($driver, $sid);

$driver = fork // die "fork: $!";
if ($driver == 0) {
    POSIX::setsid();                  # its group: chromium's processes too
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$cdir/chromedriver.log";
    open STDERR, '>&', \*STDOUT;
    $ENV{HOME} = "$cdir/home";
    { no warnings q(exec);
      exec { $DRIVER } $DRIVER, "--port=$wd_port", '--allowed-ips=127.0.0.1'; }
    POSIX::_exit(127);
}

my $http = HTTP::Tiny->new(timeout => 60);
my $wd = "http://127.0.0.1:$wd_port";

END {
    local $?;
    stop_browser();
}

sub stop_browser {
    if ($driver) {
        eval { $http->request('DELETE', "$wd/session/$sid") } if $sid;
        undef $sid;
        for my $sig ('TERM', 'KILL') {
            kill $sig, -$driver, $driver;
            kill $sig, chromium_pids();
            my $end = time + 5;
            while (time < $end) {
                waitpid($driver, WNOHANG);
                last unless kill(0, $driver) || chromium_pids();
                sleep 0.05;
            }
        }
        waitpid($driver, 0);
        undef $driver;
    }
    File::Path::remove_tree($cdir) if -d $cdir;
}

# chromium's processes that still run with this test's profile (they
# may have left the group)
sub chromium_pids {
    my @pids;
    for my $proc (glob '/proc/[0-9]*') {
        open my $fh, '<', "$proc/cmdline" or next;
        my $cmd = do { local $/; <$fh> } // '';
        push @pids, $proc =~ m{(\d+)$} if index($cmd, $profile) >= 0;
    }
    return @pids;
}

# a WebDriver command: its value, or die with the driver's message
sub wd {
    my ($method, $path, $body) = @_;
    my $res = $http->request($method, "$wd$path", {
        headers => { 'Content-Type' => 'application/json' },
        $method eq 'POST' ? (content => encode_json($body // {})) : (),
    });
    my $j = eval { decode_json($res->{content}) } // {};
    die "WebDriver $method $path: $res->{status} "
        . ($j->{value}{message} // $res->{content}) . "\n"
        unless $res->{success};
    return $j->{value};
}

sub js {
    my ($script, @args) = @_;
    return wd('POST', "/session/$sid/execute/sync",
              { script => $script, args => \@args });
}

sub element {
    my ($css) = @_;
    my $e = wd('POST', "/session/$sid/element",
               { using => 'css selector', value => $css });
    return $e->{"element-6066-11e4-a52e-4f735466cecf"}
        // die "no element $css: " . encode_json($e);
}

# a click on what $css finds; again if the page redrew it meanwhile
sub click {
    my ($css) = @_;
    for my $try (1 .. 5) {
        my $r = eval {
            wd('POST', "/session/$sid/element/" . element($css) . '/click');
            1;
        };
        return if $r;
        die $@ unless $@ =~ /stale element/ && $try < 5;
    }
}

sub type {
    my ($css, $text) = @_;
    my $e = element($css);
    wd('POST', "/session/$sid/element/$e/clear");
    wd('POST', "/session/$sid/element/$e/value", { text => $text });
}

# polls $cond (a JS function body, or a Perl sub) until it returns true
sub wait_js {
    my ($cond, $timeout) = @_;
    my $end = time + ($timeout // 15);
    while (1) {
        my $r = ref $cond ? $cond->() : js($cond);
        return $r if $r;
        return undef if time > $end;
        sleep 0.05;
    }
}

sub text { js('const e = document.querySelector(arguments[0]);'
              . ' return e ? e.textContent : null;', $_[0]) }

# the deployments on the page: { id => [state, serving] }
sub rows {
    my $rows = js(q{
        return [...document.querySelectorAll('#deployment-rows tr')]
            .map(r => [r.dataset.id, r.dataset.state,
                       !!r.querySelector('.badge')]);
    });
    return { map { $_->[0] => [$_->[1], $_->[2] ? 1 : 0] } @$rows };
}

# accepts (or dismisses) the confirm() the last click opened: its text
sub answer_dialog {
    my ($accept) = @_;
    my $text = wait_js(sub { eval { wd('GET', "/session/$sid/alert/text") } },
                       5);
    wd('POST', "/session/$sid/alert/" . ($accept ? 'accept' : 'dismiss'));
    return $text;
}

my $up = $t->wait_until(sub {
    my $r = $http->get("$wd/status");
    $r->{success} && eval { decode_json($r->{content})->{value}{ready} };
}, 15);
ok($up, "chromedriver on port $wd_port")
    or BAIL_OUT('chromedriver did not start: '
                . ($t->read_file("$cdir/chromedriver.log") // ''));

$sid = wd('POST', '/session', { capabilities => { alwaysMatch => {
    browserName => 'chrome',
    unhandledPromptBehavior => 'ignore',
    'goog:loggingPrefs' => { browser => 'ALL' },
    'goog:chromeOptions' => {
        binary => $CHROMIUM,
        args => ['--headless=new', '--no-sandbox', '--disable-gpu',
                 '--disable-dev-shm-usage', '--no-first-run',
                 '--window-size=1280,1024', "--user-data-dir=$profile"],
    },
} } })->{sessionId};
ok($sid, 'a chromium session');


# the page, a wrong key, the right one ---------------------------------------

my $page = $p->api . '/dashboard/';
wd('POST', "/session/$sid/url", { url => $page });
ok(wait_js('return !document.getElementById("login").hidden'),
   'the dashboard asks for the key');

my $files = join '', map { $t->read_file("$FindBin::Bin/../dashboard/$_") }
                     qw(index.html style.css app.js);
unlike($files, qr{(?:https?:)?//[a-z0-9.-]+\.[a-z]}i,
       'no external requests in its files');

type('#key', 'not-the-key');
click('#key-form button[type=submit]');
like(wait_js('return document.getElementById("key-error").textContent'
             . '.match(/refused/) && '
             . 'document.getElementById("key-error").textContent'),
     qr/refused this key: .*\(401\)/, 'a wrong key: the API refused it (401)');
is(js('return sessionStorage.length + localStorage.length'), 0,
   '... and it is not kept');

type('#key', $p->key);
click('#key-form button[type=submit]');

my $row = wait_js(q{
    const r = document.querySelector('#project-rows tr[data-project="demo"]');
    const a = r && r.querySelector('.url a');
    return r && r.querySelector('.state').textContent === 'running' && a
        && [a.textContent, a.href];
});
ok($row, 'demo is listed, running');
is($row->[0], $p->app_url('demo'), '... its URL as the API gives it');
is($row->[1] =~ s{/$}{}r, $p->app_url('demo'), '... a link to it');

is(js('return sessionStorage.getItem("shuttle.key")'), $p->key,
   'the key is in sessionStorage');
is(js('return localStorage.length'), 0, '... not in localStorage');
unlike(js('return location.href + document.cookie'), qr/\Q${\ $p->key}\E/,
       '... nor in the URL or a cookie');


# a project, a redeploy seen live --------------------------------------------

click('#project-rows tr[data-project="demo"] a');
ok(wait_js(sub { (rows()->{$id1} // [''])->[0] eq 'running'
                 && rows()->{$id1}[1] }),
   "demo's deployments: $id1 running, marked serving");

# version 2 builds with a Makefile that waits for a file the test writes
# into the deployment's directory (the build sees it there)
my $mark = 'dash' . int(rand(1e9));
$t->write_file("$demo/src/main.c", $main =~ s/Hello from/v2 from/r);
$t->write_file("$demo/Makefile", <<"EOF");
service.so: src/main.c
\t\@echo "build $mark waits"
\t\@i=0; while [ ! -e go ] && [ \$\$i -lt 300 ]; do \\
\t    sleep 0.1; i=\$\$((i+1)); done
\t\$(CC) -std=gnu11 -O2 -fPIC -shared -Wall -I\$(SHUTTLE_INCLUDE) \\
\t    src/main.c -o service.so
EOF

my $cli = $p->spawn_cli(['deploy'], dir => $demo);
my $id2 = wait_js(sub {
    my $r = rows();
    my ($new) = grep { $_ > $id1 } keys %$r;
    $new && $r->{$new}[0] eq 'building' ? $new : undef;
});
ok($id2, "the new deployment ($id2) shows, building, without a reload");

click(qq{#deployment-rows tr[data-id="$id2"] a});
ok(wait_js(sub { (text('#log-build') // '') =~ /build \Q$mark\E waits/ }),
   '... its build log shows while it builds');
is($p->v1('alice', 'GET', "/v1/deployments/$id2")->{json}{state},
   'building', '... (it is still building)');

my $go = $t->builder_data . "/projects/demo/deployments/$id2/src/go";
$t->write_file($go, '');

ok(wait_js(sub { my $r = rows();
                 ($r->{$id2}[0] // '') eq 'running' && $r->{$id2}[1]
                 && $r->{$id1}[0] =~ /^(superseded|stopped)$/ }),
   "... then running, serving; $id1 replaced")
    or diag explain rows();
ok(wait_js(sub { (text('#log-build-status') // '') =~ /complete/ }),
   '... its build log complete');
like(text('#log-build'), qr/-o service\.so/, '... with the compiler line');

is($p->signal_cli($cli, 0, 30), 0, 'shuttle deploy: exit 0');
like($p->app_get('demo', '/')->{body}, qr/^v2 from demo!/, 'v2 answers');

# the runtime log: its stream opened while the deployment built
$p->app_get('demo', "/hello/$mark");
ok(wait_js(sub { (text('#log-runtime') // '')
                 =~ /saying hello to \Q$mark\E/ }),
   'a line the service logs shows in the runtime log');
is(text('#log-runtime-status'), '(following)', '... still following');


# rollback and restart ---------------------------------------------------------

is(wait_js(sub { my $b = text('#rollback-prev') // '';
                $b =~ /\(#$id1\)$/ ? $b : undef }, 10),
   "Roll back to previous (#$id1)",
   '"Roll back to previous" names where it goes (rollback_to)');
click('#rollback-prev');
like(answer_dialog(0),
     qr/Roll demo back to the deployment it ran before \(#$id1\)\?/,
     '"Roll back to previous" asks, naming it');
unlike(text('#message') // '', qr/Rolling/, '... "no": nothing is sent');
is($p->v1('alice', 'GET', '/v1/projects/demo')->{json}{current}, $id2,
   '... and a "no" changes nothing');

click(qq{#deployment-rows tr[data-id="$id1"] button.rollback});
like(answer_dialog(1), qr/Roll demo back to deployment #$id1\?/,
     "\"Roll back to #$id1\" asks; yes");
like(wait_js(sub { my $m = text('#message') // '';
                   $m =~ /again|failed/ && $m }),
     qr/^demo now runs deployment #$id1 again\.$/, '... the result shows');
is($p->v1('alice', 'GET', '/v1/projects/demo')->{json}{current}, $id1,
   "... the API: $id1 serves");
like($p->app_get('demo', '/')->{body}, qr/^Hello from demo!/,
     '... the first version answers again');
ok(wait_js(sub { my $r = rows(); $r->{$id1}[1] && !$r->{$id2}[1] }),
   "... the page marks $id1 serving");
ok(wait_js(sub { (text('#log-runtime-status') // '') =~ /ended/ }),
   "... $id2\'s runtime log ended");

click('#restart');
like(answer_dialog(1), qr/^Restart demo/, 'Restart asks; yes');
like(wait_js(sub { my $m = text('#message') // '';
                   $m =~ /restarted|failed/ && $m }),
     qr/^demo restarted: deployment #$id1 serves from a new loader\.$/,
     '... the result shows');
like($p->v1('alice', 'GET', "/v1/deployments/$id1")->{json}{reason} // '',
     qr/restart/i, '... the API: its loader was restarted');

# leaving the logs view ends their streams
click(qq{#deployment-rows tr[data-id="$id1"] a});
$p->app_get('demo', "/hello/${mark}x");
ok(wait_js(sub { (text('#log-runtime') // '')
                 =~ /saying hello to \Q${mark}x\E/ }),
   "$id1\'s runtime log, followed");
my $stream = qr{"GET /v1/deployments/$id1/logs\?follow=1&runtime=1 };
unlike($t->access_log // '', $stream, '... its stream open');
click('#logs-close');
ok($t->wait_until(sub { ($t->access_log // '') =~ $stream }, 10),
   '"Close logs": the browser closed it');
ok(js('return document.getElementById("logs").hidden'), '... logs hidden');


# an error from the API shows with its message
wd('POST', "/session/$sid/url", { url => "$page#/demo/999999" });
like(wait_js(sub { my $s = text('#log-build-status') // '';
                   $s =~ /found/ && $s }),
     qr/^\(deployment 999999 not found \(404\)\)$/,
     "an API error shows with the API's message");


# the console: no error but the refused key's 401 and the 404 asked for
my @severe = grep {
    $_->{level} eq 'SEVERE'
    && $_->{message} !~ m{/v1/projects - .* status of 401 }
    && $_->{message} !~ m{/v1/deployments/999999/\S+ - .* status of 404 }
} @{ wd('POST', "/session/$sid/se/log", { type => 'browser' }) };
is_deeply(\@severe, [], 'no error in the console') or diag explain \@severe;


# forget the key ---------------------------------------------------------------

click('#signout');
ok(wait_js('return !document.getElementById("login").hidden'),
   '"Forget key" asks for the key again');
is(js('return sessionStorage.getItem("shuttle.key")'), undef,
   '... sessionStorage has it no more');
is(js('return document.getElementById("project-rows").children.length'), 0,
   '... the projects are off the page');

# a key revoked while the page is open: the next refresh is refused
wd('POST', "/session/$sid/url", { url => "$page#/" });
type('#key', $p->key);
click('#key-form button[type=submit]');
ok(wait_js(q{return !!document.querySelector(
                 '#project-rows tr[data-project="demo"]')}),
   'the key again: the projects again');
($rc, $out, $err) = Shuttle::Platform::run_cmd(
    [Shuttle::Test::builder(), 'keys', '--file', "$dir/api_keys", 'del',
     'alice'], env => { PATH => $ENV{PATH} });
is($rc, 0, 'the key revoked (keys del, nginx reloaded)') or diag $err;
$t->reload;
like(wait_js('return !document.getElementById("login").hidden'
             . ' && document.getElementById("key-error").textContent'),
     qr/refused this key: .*\(401\)\. Enter it again\.$/,
     '... the page asks for a key again, saying why');
is(js('return sessionStorage.length'), 0, '... and forgot it');

stop_browser();
ok(!chromium_pids() && !-e $cdir, 'chromium stopped, its directory gone');

done_testing;
