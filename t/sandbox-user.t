#!/usr/bin/perl

# A builder that is not root takes the isolation a user can have: each
# project in namespaces of its own inside a user namespace (its own root,
# pid namespace, no capability, the service's seccomp filter), said so in
# its log; it never runs tenants' code with its own view of the machine.
# The builder runs here as nobody.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use Test::More;
use Shuttle::Test;

plan skip_all => 'runs the builder as nobody: needs root' if $> != 0;

my $t = Shuttle::Test->new;
my $repo = Shuttle::Test::repo();
my $dir = $t->testdir;
my $nobody = getpwnam('nobody');

# the builder as nobody, through a wrapper in place of the program; its
# programs and the SDK copied where nobody reaches them (a clone in /root
# is out of its reach)
chown $nobody, -1, $dir;
make_path("$dir/bin", "$dir/include");
for my $f (Shuttle::Test::builder(), "$repo/build/bin/shuttle-loader",
           glob("$repo/include/*.h")) {
    (my $to = $f) =~ s{^.*/}{};
    $to = ($f =~ /\.h$/ ? "$dir/include/" : "$dir/bin/") . $to;
    copy($f, $to) or die "copy $f: $!";
    chmod 0755, $to;
}
my $wrapper = "$dir/builder-as-nobody";
$t->write_file('builder-as-nobody', <<"EOF");
#!/bin/sh
exec setpriv --reuid=$nobody --regid=65534 --clear-groups \\
    $dir/bin/shuttle-builder "\$@"
EOF
chmod 0755, $wrapper;
$t->write_file('builder.log', '');
chown $nobody, -1, $t->builder_log_file;
$ENV{SHUTTLE_BUILDER} = $wrapper;

$t->builder_start('--loader', "$dir/bin/shuttle-loader",
                  '--sdk-include', "$dir/include");

my $log = $t->builder_log;
like($log, qr/warn sandbox: user, mount, pid, network namespaces.*not root: every project runs as uid $nobody, each in namespaces of its own/,
     'a builder as nobody says which sandbox it has, and what it lacks');

my $r = $t->deploy('probe', "$repo/t/sandbox/probe");
is($r->{status}, 202, 'a deploy to it') or diag $r->{body};
my $d = $t->wait_deployment('alice', $r->{json}{id}, qr/^(running|failed)$/,
                            20);
is($d->{state}, 'running', '... builds and runs');

my $port = $d->{port};
my $get = sub { http_get($port, 'localhost', $_[0])->{body} };

like($get->('/id'), qr/^uid=$nobody /, 'the service runs as the builder\'s uid');
like($get->('/status'), qr/^CapEff:\s+0+$/m, '... without capabilities');
like($get->('/status'), qr/^Seccomp:\s+2$/m, '... with the seccomp filter');
like($get->('/read?path=' . $t->builder_data . '/shuttle.db'),
     qr/^error: No such file/, '... and the store out of sight');
like($get->('/bind'), qr/^bind: Operation not permitted$/m,
     '... and no port to take');
is($get->('/procs'), "1 2 \n", '... in a pid namespace of its own');

$t->builder_stop;

# --no-sandbox: the builder's own rights, said loudly
$t->builder_start('--loader', "$dir/bin/shuttle-loader",
                  '--sdk-include', "$dir/include", '--no-sandbox');
like($t->builder_log,
     qr/warn sandbox: off \(--no-sandbox\): every project's build and service runs as uid $nobody with the builder's rights/,
     '--no-sandbox is an explicit, logged choice');
$t->builder_stop;

done_testing();
