#!/bin/bash
#
# make test-deb: the Debian packages of build/deb/ on this machine, as an
# operator would use them, then gone again.  System-wide (dpkg, /etc/nginx,
# /var/lib/shuttle, /run/shuttle): never part of make test.  As root.
#
#   1. refuses to run where shuttle is installed or has state (it purges);
#      records the machine: /etc/nginx (every path, link, mode and sum),
#      users and groups, /etc/systemd, /etc/default, /etc/logrotate.d,
#      /usr/lib/nginx/modules
#   2. dpkg -i the three packages (apt-get -f install if a dependency is
#      missing); checks what they put where
#   3. systemd-analyze verify of the installed unit
#   4. a key (shuttle-builder keys add), the site enabled the documented
#      way (ln -s sites-available/shuttle sites-enabled/) and nginx -t
#   5. the builder started as systemd would: the unit's directories made,
#      Environment= and EnvironmentFile= expanded into its ExecStart=, in
#      a mount namespace with the unit's file system hardening emulated
#      (read-only /, empty /home and /root, private /tmp, no_new_privs)
#   6. the stock nginx (/usr/sbin/nginx, /etc/nginx/nginx.conf, its
#      modules-enabled/ and user www-data): a copy of nginx.conf whose
#      pid, logs and sites include are this test's, and the site with its
#      "listen 80" moved to a free 127.0.0.1 port, so nothing collides with
#      an nginx on this machine and port 80 is not needed
#   7. shuttle deploy (the installed /usr/bin/shuttle) of examples/hello,
#      GET it through nginx, GET /metrics and /dashboard/; then an
#      upgrade (dpkg -i of a newer shuttle-builder, the builder restarted
#      as systemd does) under a client loop: 0 failed, the loader adopted
#   8. stops what it started (by pid), dpkg --purge, checks the machine is
#      as recorded; on failure too (trap)
#
# Output is TAP.  usage: t/deb/test-deb.sh [DEB_DIR]   (build/deb)

set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEB_DIR=$(cd "${1:-$REPO/build/deb}" && pwd) || exit 1
PKGS="libnginx-mod-http-shuttle shuttle-builder shuttle-cli"
UNIT=/lib/systemd/system/shuttle-builder.service
SOCK=/run/shuttle/builder.sock
SITE=/etc/nginx/sites-available/shuttle
ENABLED=/etc/nginx/sites-enabled/shuttle
MODLINK=/etc/nginx/modules-enabled/50-mod-http-shuttle.conf
APPS=apps.example.com

T=$(mktemp -d /tmp/shuttle-test-deb.XXXXXX) || exit 1
chmod 0755 "$T"
LOG=$T/log
n=0
failed=0
installed=0
linked=0
builder_pid=""
nginx_pid=""
client_pid=""
started=$(date +%s)

ok()     { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
note()   { echo "# $*"; }
skip()   { n=$((n + 1)); echo "ok $n # skip $*"; }

# check DESCRIPTION COMMAND...: ok when the command succeeds; its output
# goes to the log, and is shown on failure
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$desc"
    else
        not_ok "$desc"
        printf '%s\n' "$out" | sed 's/^/#   /' | tail -20
    fi
    printf '== %s\n%s\n' "$desc" "$out" >> "$LOG"
}

bail() {
    echo "Bail out! $*"
    exit 1
}

# waits up to $2 tenths of a second for process $1 to exit
wait_gone() {
    local i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt "$2" ] || return 1
        sleep 0.1
    done
}

# the state of the machine this test must leave as it found it
snapshot() {
    {
        echo "## /etc/nginx"
        find /etc/nginx -printf '%p %y %m %u:%g %l\n' | sort
        find /etc/nginx -type f -print0 | sort -z | xargs -0 sha256sum
        echo "## users"
        getent passwd | sort
        echo "## groups"
        getent group | sort
        echo "## /etc/systemd"
        find /etc/systemd -printf '%p %y %l\n' | sort
        echo "## /var/lib/systemd/deb-systemd-helper-enabled"
        find /var/lib/systemd/deb-systemd-helper-enabled \
            /var/lib/systemd/deb-systemd-helper-masked -printf '%p\n' \
            2>/dev/null | sort
        echo "## /etc/default /etc/logrotate.d /usr/lib/nginx/modules"
        ls -la /etc/default /etc/logrotate.d /usr/lib/nginx/modules \
            | grep -v ' \.\.\?$'
        echo "## /var/log/nginx"
        ls /var/log/nginx
        echo "## shuttle"
        ls -d /var/lib/shuttle /var/log/shuttle /run/shuttle /etc/shuttle \
            /usr/share/shuttle 2>&1
    } > "$1" 2>&1
}

# the cgroups a root builder of /var/lib/shuttle makes: shuttle-FNV1A32
cgroup_instance() {
    perl -e 'my $h = 2166136261;
             for (unpack "C*", "/var/lib/shuttle") {
                 $h = (($h ^ $_) * 16777619) % 4294967296 }
             printf "shuttle-%08x\n", $h'
}

stop_all() {
    if [ -n "$client_pid" ]; then
        touch "$T/client.stop"
        kill "$client_pid" 2>/dev/null
        client_pid=""
    fi

    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid"
        wait_gone "$nginx_pid" 100 || kill -TERM "$nginx_pid" 2>/dev/null
        wait_gone "$nginx_pid" 50 || kill -KILL "$nginx_pid" 2>/dev/null
    fi
    nginx_pid=""

    if [ -n "$builder_pid" ] && kill -0 "$builder_pid" 2>/dev/null; then
        # USR2 (stop --all): the builder stops its loaders and its socket
        # keeper, then exits (a TERM leaves them serving)
        kill -USR2 "$builder_pid"
        wait_gone "$builder_pid" 300 || kill -KILL "$builder_pid" 2>/dev/null
    fi
    builder_pid=""

    # what systemd does when the unit stops: RuntimeDirectory= goes
    rm -rf /run/shuttle
}

# the builder's cgroups, empty once it stopped: rmdir (never a kill)
remove_cgroups() {
    local inst d
    inst=$(cgroup_instance)
    find /sys/fs/cgroup -maxdepth 6 -type d -name "$inst" 2>/dev/null \
        | while read -r d; do
            note "the builder left its cgroup $d: rmdir"
            find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    [ "$linked" = 1 ] && rm -f "$ENABLED"
    if [ "$installed" = 1 ]; then
        note "cleanup: dpkg --purge $PKGS"
        # shellcheck disable=SC2086
        dpkg --purge $PKGS >> "$LOG" 2>&1
    fi
    remove_cgroups
    for f in shuttle-api.log shuttle.log; do
        grep -qx "$f" "$T/before.logs" 2>/dev/null \
            || rm -f "/var/log/nginx/$f"
    done
    if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
        cp "$LOG" /tmp/shuttle-test-deb.log 2>/dev/null
        [ -f "$T/builder.log" ] && cat "$T/builder.log" \
            >> /tmp/shuttle-test-deb.log
        note "log: /tmp/shuttle-test-deb.log"
    fi
    rm -rf "$T"
    echo "1..$n"
    note "$((n - failed))/$n passed in $(( $(date +%s) - started )) s"
    if [ "$failed" -gt 0 ]; then
        exit 1
    fi
    exit "$rc"
}

trap cleanup EXIT
trap 'echo "Bail out! interrupted"; exit 130' INT TERM

# 1. a machine without shuttle --------------------------------------------

[ "$(id -u)" = 0 ] || bail "run as root (it installs packages)"

for p in $PKGS; do
    ls "$DEB_DIR"/"${p}"_*.deb > /dev/null 2>&1 \
        || bail "no $DEB_DIR/${p}_*.deb: run make deb"
done

for p in $PKGS; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
        | grep -qv 'not-installed'
    then
        bail "$p is installed here: this test installs and purges it"
    fi
done

for d in /var/lib/shuttle /run/shuttle /etc/shuttle /var/log/shuttle; do
    [ ! -e "$d" ] || bail "$d exists: this test would remove it"
done

[ ! -e "$ENABLED" ] || bail "$ENABLED exists"

ok "no shuttle package, /var/lib/shuttle, /run/shuttle, /etc/shuttle here"

snapshot "$T/before"
ls /var/log/nginx > "$T/before.logs"

# 2. install ----------------------------------------------------------------

debs=$(for p in $PKGS; do ls "$DEB_DIR"/"${p}"_*.deb | tail -1; done)
installed=1
# shellcheck disable=SC2086
if dpkg -i $debs >> "$LOG" 2>&1; then
    ok "dpkg -i $(echo $debs | xargs -n1 basename | xargs)"
else
    note "dpkg -i: dependencies missing, apt-get -f install"
    if DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq \
        >> "$LOG" 2>&1
    then
        ok "dpkg -i, then apt-get -f install"
    else
        not_ok "dpkg -i and apt-get -f install"
        bail "the packages do not install (log: $LOG)"
    fi
fi

for p in $PKGS; do
    check "$p is installed" sh -c \
        "dpkg-query -W -f='\${Status}' $p | grep -qx 'install ok installed'"
done

check "the module is in /usr/lib/nginx/modules" \
    test -f /usr/lib/nginx/modules/ngx_http_shuttle_module.so
check "modules-available/mod-http-shuttle.conf loads it" \
    grep -qx 'load_module modules/ngx_http_shuttle_module.so;' \
    /usr/share/nginx/modules-available/mod-http-shuttle.conf
check "modules-enabled/50-mod-http-shuttle.conf links to it" \
    test "$(readlink $MODLINK)" = \
    /usr/share/nginx/modules-available/mod-http-shuttle.conf
check "the module depends on the nginx ABI it was built for" \
    sh -c "dpkg-query -W -f='\${Depends}' libnginx-mod-http-shuttle \
           | grep -q 'nginx-abi-'"
for f in /usr/sbin/shuttle-builder /usr/bin/shuttle /usr/bin/shuttle-loader
do
    check "$f" test -x "$f"
done
for f in /usr/include/shuttle.h /usr/include/shuttle_res.h \
         /usr/share/shuttle/dashboard/index.html "$SITE" "$UNIT" \
         /etc/default/shuttle-builder /etc/logrotate.d/shuttle-builder \
         /usr/share/doc/shuttle-builder/examples/shuttle.conf.example
do
    check "$f" test -f "$f"
done
check "$SITE is a conffile, not enabled" sh -c \
    "dpkg-query -W -f='\${Conffiles}' shuttle-builder | grep -q ' $SITE ' \
     && test ! -e $ENABLED"
check "/etc/shuttle/api_keys exists (empty), 0640" sh -c \
    "test -f /etc/shuttle/api_keys && ! test -s /etc/shuttle/api_keys \
     && test \"\$(stat -c %a /etc/shuttle/api_keys)\" = 640"
check "no shuttle user or group was created" \
    sh -c "! getent passwd shuttle && ! getent group shuttle"

# 3. the unit ---------------------------------------------------------------

if out=$(systemd-analyze verify "$UNIT" 2>&1); then
    ok "systemd-analyze verify $UNIT"
    [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
else
    not_ok "systemd-analyze verify $UNIT"
    printf '%s\n' "$out" | sed 's/^/#   /'
fi

# 4. a key and the site, the documented way ---------------------------------

key=$(shuttle-builder keys --file /etc/shuttle/api_keys add test-deb \
      2>> "$LOG")
check "shuttle-builder keys --file /etc/shuttle/api_keys add test-deb" \
    sh -c "test -n '$key' && grep -q '^test-deb:' /etc/shuttle/api_keys"

ln -s "$SITE" "$ENABLED" && linked=1
if out=$(nginx -t 2>&1); then
    ok "ln -s sites-available/shuttle sites-enabled/; nginx -t"
else
    not_ok "ln -s sites-available/shuttle sites-enabled/; nginx -t"
    printf '%s\n' "$out" | sed 's/^/#   /'
fi
rm -f "$ENABLED"
linked=0
# nginx -t opened the site's access logs
for f in shuttle-api.log shuttle.log; do
    grep -qx "$f" "$T/before.logs" || rm -f "/var/log/nginx/$f"
done

# 5. the builder, as systemd runs it ----------------------------------------

# the unit's directories, made as systemd makes them (mode from *Mode=)
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
for kind in Runtime:/run State:/var/lib Logs:/var/log; do
    name=$(unit_value "${kind%%:*}Directory")
    mode=$(unit_value "${kind%%:*}DirectoryMode")
    [ -n "$name" ] && install -d -m "${mode:-0755}" "${kind#*:}/$name"
done

# ExecStart= with Environment= and EnvironmentFile= expanded as systemd
# does: "${VAR}" one argument, "$VAR" split at white space
perl -e '
    my ($unit) = @ARGV;
    my (%env, @files, $exec);
    open my $u, "<", $unit or die "$unit: $!";
    while (<$u>) {
        chomp;
        if (/^Environment=(.*)/) {
            for (split " ", $1) { my ($k, $v) = split /=/, $_, 2;
                                  $env{$k} = $v // "" }
        } elsif (/^EnvironmentFile=(-?)(.*)/) {
            push @files, [$1, $2];
        } elsif (/^ExecStart=(.*)/) {
            $exec = $1;
        }
    }
    for (@files) {
        my ($optional, $f) = @$_;
        open my $e, "<", $f or do { next if $optional; die "$f: $!" };
        while (<$e>) {
            next if /^\s*(#|;|$)/;
            chomp;
            my ($k, $v) = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/ or next;
            $v =~ s/^"(.*)"$/$1/ or $v =~ s/^\x27(.*)\x27$/$1/;
            $env{$k} = $v;
        }
    }
    $exec =~ s/^[-@:+!]+//;
    my @argv;
    for my $w (split " ", $exec) {
        if ($w =~ /^\$([A-Za-z_][A-Za-z0-9_]*)$/) {
            push @argv, split " ", $env{$1} // "";
        } else {
            $w =~ s/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/$env{$1} \/\/ ""/ge;
            push @argv, $w;
        }
    }
    print join("\0", @argv), "\0";
' "$UNIT" > "$T/execstart" || bail "cannot read ExecStart= of $UNIT"
mapfile -d '' argv < "$T/execstart"
note "ExecStart: ${argv[*]}"

# and, where unshare(1) and setpriv(1) are, in what the unit's hardening
# makes of the file system: a mount namespace whose / is read-only but for
# ReadWritePaths= and the unit's directories (ProtectSystem=strict), an
# empty /home, /root and /run/user (ProtectHome=yes), a /tmp of its own
# (PrivateTmp=yes), and no_new_privs (NoNewPrivileges=yes): the tenants'
# sandbox must work inside all that.  The seccomp-based options
# (ProtectKernelModules=, ProtectClock=, RestrictAddressFamilies= ...) are
# systemd's alone and not emulated.
harden='
    set -e
    mount --make-rprivate /
    for d in /var/lib/shuttle /run/shuttle /var/log/shuttle; do
        mount --bind "$d" "$d"
    done
    mount -o remount,bind,ro /
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    for d in /home /root /run/user; do
        if [ -d "$d" ]; then mount -t tmpfs -o ro,mode=0755 tmpfs "$d"; fi
    done
    exec setpriv --no-new-privs "$@"'
wrap=()
if command -v unshare > /dev/null && command -v setpriv > /dev/null; then
    wrap=(unshare --mount sh -c "$harden" sh)
    note "the builder in a mount namespace: ProtectSystem=strict," \
         "ProtectHome=yes, PrivateTmp=yes, NoNewPrivileges=yes emulated"
fi

# start_builder OUT: ExecStart= as above, its output to OUT; up=1 once it
# answers on its socket (10 s at most), else up=0
start_builder() {
    setsid "${wrap[@]}" "${argv[@]}" < /dev/null > "$1" 2>&1 &
    builder_pid=$!

    up=0
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null --unix-socket "$SOCK" \
                http://builder/v1/projects
        then
            up=1
            break
        fi
        kill -0 "$builder_pid" 2>/dev/null || break
        sleep 0.1
    done
}

start_builder "$T/builder.out"
cp /var/log/shuttle/builder.log "$T/builder.log" 2>/dev/null
if [ "$up" = 1 ]; then
    ok "the builder answers on $SOCK"
else
    not_ok "the builder answers on $SOCK"
    sed 's/^/#   /' "$T/builder.out" "$T/builder.log" 2>/dev/null | tail -20
    bail "no builder"
fi
sandbox=$(grep -o 'sandbox: .*' /var/log/shuttle/builder.log | head -1)
note "builder log: $sandbox"
check "the tenants' sandbox is on, with cgroups (builder log)" \
    grep -q 'sandbox: .*namespaces, cgroup v[12] at' \
    /var/log/shuttle/builder.log
check "its socket belongs to www-data, 0600" sh -c \
    "test \"\$(stat -c '%U %a' $SOCK)\" = 'www-data 600'"
check "it logs to /var/log/shuttle/builder.log" \
    test -s /var/log/shuttle/builder.log

# 6. the stock nginx ----------------------------------------------------------

port=$(perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1) or die $!;
    print $s->sockport')
mkdir -p "$T/sites"
sed -e "s|^\(\s*\)listen 80;|\1listen 127.0.0.1:$port;|" \
    -e '/listen \[::\]:80;/d' \
    -e "s|/var/log/nginx/|$T/|" \
    "$SITE" > "$T/sites/shuttle"
sed -e "s|^pid .*|pid $T/nginx.pid;|" \
    -e "s|^error_log .*|error_log $T/error.log;|" \
    -e "s|access_log /var/log/nginx/access.log;|access_log $T/access.log;|" \
    -e "s|error_log /var/log/nginx/error.log;|error_log $T/error.log;|" \
    -e "s|include /etc/nginx/sites-enabled/\*;|include $T/sites/*;|" \
    /etc/nginx/nginx.conf > "$T/nginx.conf"
note "nginx: /etc/nginx/nginx.conf but pid, logs and sites in $T;" \
     "the site on 127.0.0.1:$port"

check "nginx -t with the site on 127.0.0.1:$port" \
    nginx -t -c "$T/nginx.conf"
if nginx -c "$T/nginx.conf" >> "$LOG" 2>&1; then
    for _ in $(seq 1 50); do
        [ -s "$T/nginx.pid" ] && break
        sleep 0.1
    done
    nginx_pid=$(cat "$T/nginx.pid" 2>/dev/null)
fi
if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
    ok "nginx started (master $nginx_pid)"
else
    not_ok "nginx started"
    sed 's/^/#   /' "$T/error.log" 2>/dev/null | tail -10
    bail "no nginx"
fi
check "its workers run as www-data" sh -c \
    "ps -o user= --ppid $nginx_pid | grep -qx www-data"

# 7. deploy, then use it ------------------------------------------------------

cp -r "$REPO/examples/hello" "$T/hello"
chmod -R a+rX "$T/hello"
if out=$(cd "$T/hello" && SHUTTLE_API=http://127.0.0.1:$port \
         SHUTTLE_API_KEY=$key NO_COLOR=1 /usr/bin/shuttle deploy 2>&1)
then
    ok "shuttle deploy examples/hello (the installed /usr/bin/shuttle)"
    printf '%s\n' "$out" | sed 's/^/#   /'
else
    not_ok "shuttle deploy examples/hello"
    printf '%s\n' "$out" | sed 's/^/#   /'
    sed 's/^/#   /' /var/log/shuttle/builder.log | tail -20
fi
printf '== deploy\n%s\n' "$out" >> "$LOG"
check "it printed http://hello.$APPS" \
    sh -c "printf '%s' '$out' | grep -q 'http://hello\.$APPS'"

body=$(curl -s --max-time 10 -H "Host: hello.$APPS" \
       "http://127.0.0.1:$port/hello")
check "GET http://hello.$APPS/hello through nginx: Hello, world!" \
    test "$body" = "Hello, world!"

check "the loader runs as a project's own uid (200000-299999)" perl -e '
    for my $f (glob "/proc/[0-9]*/cmdline") {
        open my $c, "<", $f or next;
        my @a = split /\0/, do { local $/; <$c> // "" };
        next unless @a && $a[0] =~ m{(^|/)shuttle-loader$}
                    && grep { m{^/var/lib/shuttle/} } @a;
        my $uid = (stat((my $d = $f) =~ s/cmdline$//r))[4];
        exit 0 if $uid >= 200000 && $uid <= 299999;
    }
    exit 1'
check "GET /v1/projects/hello with the key: running" sh -c \
    "curl -s --max-time 5 -H 'Authorization: Bearer $key' \
     http://127.0.0.1:$port/v1/projects/hello | grep -q '\"running\"'"

check "GET /metrics from 127.0.0.1: the builder's metrics" sh -c \
    "curl -s --fail --max-time 5 http://127.0.0.1:$port/metrics \
     | grep -q '^shuttle_deployments{state=\"running\"} 1\$'"
check "GET /metrics/nginx from 127.0.0.1: hello's requests counted" sh -c \
    "curl -s --fail --max-time 5 http://127.0.0.1:$port/metrics/nginx \
     | grep -q '^shuttle_http_requests_total{project=\"hello\",class=\"2xx\"} [1-9]'"

check "GET /dashboard/: /usr/share/shuttle/dashboard/index.html" sh -c \
    "curl -s --fail --max-time 5 http://127.0.0.1:$port/dashboard/ \
     | cmp -s - /usr/share/shuttle/dashboard/index.html"

check "POST /deploy without a key: 401" sh -c \
    "test \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
     -X POST 'http://127.0.0.1:$port/deploy?project=x')\" = 401"

# 7b. an upgrade under a client loop ------------------------------------------
#
# A newer build of shuttle-builder (the same files, the version raised:
# dpkg-deb -R, then -b) installed with dpkg -i while a client loops on
# hello through nginx.  dpkg runs the old prerm ("upgrade") and the new
# postinst; the restart that dh_installsystemd's postinst asks of systemd
# is done here as systemd does it (KillMode=process: SIGTERM to the
# builder alone, then ExecStart= again).  No request may fail, and the
# loader must be the same process on the same port (adopted in place).

loader_of_hello() {
    perl -e '
        for my $f (glob "/proc/[0-9]*/cmdline") {
            open my $c, "<", $f or next;
            my @a = split /\0/, do { local $/; <$c> // "" };
            next unless @a && $a[0] =~ m{(^|/)shuttle-loader$}
                        && grep { m{^/var/lib/shuttle/projects/hello/} } @a;
            my ($pid) = $f =~ m{/proc/(\d+)/};
            print "$pid\n";
        }' | sort -n | tr '\n' ' '
}

builder_deb=$(ls "$DEB_DIR"/shuttle-builder_*.deb | tail -1)
oldver=$(dpkg-deb -f "$builder_deb" Version)
newver="$oldver+upgrade1"
mkdir -p "$T/newer"
if dpkg-deb -R "$builder_deb" "$T/newer/root" >> "$LOG" 2>&1 \
   && sed -i "s/^Version: .*/Version: $newver/" \
          "$T/newer/root/DEBIAN/control" \
   && dpkg-deb -b "$T/newer/root" "$T/newer/shuttle-builder.deb" \
          >> "$LOG" 2>&1
then
    ok "a newer shuttle-builder ($newver) made of the same files"
else
    not_ok "a newer shuttle-builder ($newver) made of the same files"
fi

before_loader=$(loader_of_hello)
before_port=$(curl -s --max-time 5 -H "Authorization: Bearer $key" \
              "http://127.0.0.1:$port/v1/projects/hello" \
              | grep -o '"port": *[0-9]*' | grep -o '[0-9]*$' | head -1)
note "hello's loader before the upgrade: pid $before_loader port $before_port"

# the client: one GET after another until told to stop, each status kept
rm -f "$T/client.stop"
(
    while [ ! -e "$T/client.stop" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
             -H "Host: hello.$APPS" "http://127.0.0.1:$port/hello"
    done
) > "$T/client.codes" 2>/dev/null &
client_pid=$!

# some answers first, so the upgrade happens under traffic
for _ in $(seq 1 100); do
    [ "$(grep -c '^200$' "$T/client.codes" 2>/dev/null)" -ge 20 ] && break
    sleep 0.05
done

dpkg -i "$T/newer/shuttle-builder.deb" >> "$LOG" 2>&1
check "dpkg -i shuttle-builder $newver (an upgrade)" sh -c \
    "dpkg-query -W -f='\${Version}' shuttle-builder | grep -qx '$newver'"

old_builder=$builder_pid
kill -TERM "$old_builder"
wait_gone "$old_builder" 300
check "the old builder stopped on SIGTERM" sh -c "! kill -0 $old_builder"

start_builder "$T/builder2.out"
check "the upgraded builder answers on $SOCK" test "$up" = 1

# answers after the new builder is up, then the client stops
served_before=$(grep -c '^200$' "$T/client.codes")
for _ in $(seq 1 100); do
    [ "$(grep -c '^200$' "$T/client.codes")" -ge $((served_before + 20)) ] \
        && break
    sleep 0.05
done
touch "$T/client.stop"
wait "$client_pid" 2>/dev/null
client_pid=""

served=$(grep -c '^200$' "$T/client.codes")
nfailed=$(grep -vc '^200$' "$T/client.codes")
note "upgrade under a client: served $served, failed $nfailed"
check "the upgrade failed no request ($nfailed of $((served + nfailed)))" \
    test "$nfailed" = 0
check "... and requests were served across it ($served)" \
    test "$served" -ge 40
after_loader=$(loader_of_hello)
after_port=$(curl -s --max-time 5 -H "Authorization: Bearer $key" \
             "http://127.0.0.1:$port/v1/projects/hello" \
             | grep -o '"port": *[0-9]*' | grep -o '[0-9]*$' | head -1)
check "hello's loader adopted in place: pid $before_loader port $before_port" \
    test -n "$before_loader" -a "$before_loader" = "$after_loader" \
         -a "$before_port" = "$after_port"

# 8. stop, purge, and the machine as it was -------------------------------------

cp /var/log/shuttle/builder.log "$T/builder.log" 2>/dev/null
bpid=$builder_pid
stop_all
check "nginx and the builder stopped" sh -c "! kill -0 $bpid 2>/dev/null"
check "no loader of /var/lib/shuttle is left" perl -e '
    for my $f (glob "/proc/[0-9]*/cmdline") {
        open my $c, "<", $f or next;
        my @a = split /\0/, do { local $/; <$c> // "" };
        next unless @a && $a[0] =~ m{(^|/)shuttle-loader$};
        if (grep { m{^/var/lib/shuttle/} } @a) { print "$f: @a\n"; $n++ }
    }
    exit($n ? 1 : 0)'

# shellcheck disable=SC2086
check "dpkg --remove $PKGS" dpkg --remove $PKGS
check "removed: the module's link is set aside (.removed), as dh_nginx does" \
    sh -c "! test -e $MODLINK && test -L $MODLINK.removed"
check "removed: the keys and /var/lib/shuttle are kept" \
    sh -c "test -s /etc/shuttle/api_keys && test -f /var/lib/shuttle/zone"
check "removed: the stock nginx -t passes" nginx -t

# shellcheck disable=SC2086
check "dpkg --purge $PKGS" dpkg --purge $PKGS
installed=0
remove_cgroups

for p in $PKGS; do
    check "$p is gone" sh -c \
        "! dpkg-query -W -f='\${Status}' $p 2>/dev/null \
         | grep -qv 'not-installed'"
done
check "modules-enabled/50-mod-http-shuttle.conf is gone" \
    sh -c "! test -e $MODLINK && ! test -L $MODLINK \
           && ! test -L $MODLINK.removed"
for d in /var/lib/shuttle /var/log/shuttle /run/shuttle /etc/shuttle \
         /usr/share/shuttle "$SITE"
do
    check "$d is gone" sh -c "! test -e $d"
done
check "no cgroup $(cgroup_instance) is left" sh -c \
    "! find /sys/fs/cgroup -maxdepth 6 -name $(cgroup_instance) \
     2>/dev/null | grep -q ."

snapshot "$T/after"
if diff -u "$T/before" "$T/after" > "$T/diff"; then
    ok "/etc/nginx, users, groups, /etc/systemd, /etc/default," \
       "logrotate.d, modules as they were"
else
    not_ok "the machine as it was"
    sed 's/^/#   /' "$T/diff" | head -40
fi
