#!/usr/bin/perl

# A project redeployed more times than the builder has ports, while a
# client keeps nginx's upstream connections to its loaders alive: each
# switch drains the old loader, which closes those connections first and
# leaves them in TIME_WAIT on its port for a minute.  Every redeploy must
# still find a port (the builder binds with SO_REUSEADDR; a port listened
# on stays refused).  Without it the 20th redeploy on 20 ports failed
# "no free port".

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Shuttle::Test;
use Shuttle::Platform;
use Shuttle::Fault;

my $p = Shuttle::Platform->new;
my $t = $p->t;
my ($lo, $hi) = $t->builder_ports;
my $nports = $hi - $lo + 1;
my $rounds = $nports + 5;

my $r = $p->upload('alice', 'hop', Shuttle::Fault::app_src($p, 'hop', 0));
is($r->{status}, 202, 'hop deploys') or diag $r->{body};
ok($t->wait_until(sub { ($p->app_get('hop', '/')->{body} // '') eq "hop v0\n" },
                  30), '... and serves');

my $c = Shuttle::Fault::client($p, ['hop'], ok => qr/^hop v\d+$/,
                               pause => 0.005);
my @failed;
for my $v (1 .. $rounds) {
    $r = $p->upload('alice', 'hop', Shuttle::Fault::app_src($p, 'hop', $v));
    my $id = $r->{json}{id} // 0;
    my $d = $t->wait_until(sub {
        my $j = $p->v1('alice', 'GET', "/v1/deployments/$id")->{json} // {};
        ($j->{state} // '') =~ /^(running|failed)$/ ? $j : undef;
    }, 30);
    push @failed, "#$id v$v: " . ($d ? "$d->{state} $d->{reason}" : 'stuck')
        unless $d && $d->{state} eq 'running';
}
is_deeply(\@failed, [], "$rounds redeploys on $nports ports: every one runs");
is($p->app_get('hop', '/')->{body}, "hop v$rounds\n", 'the last one serves');

$r = $c->stop;
Shuttle::Fault::all_served($r, "the client during $rounds redeploys",
                           min => 2 * $rounds);
Shuttle::Fault::report("$rounds redeploys of one project on $nports ports",
                       $r);

$p->stop;

done_testing();
