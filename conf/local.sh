#!/bin/sh
#
# The local platform of `make run` and `make stop`, under .run/:
#
#   conf/local.sh start [PORT]   builder + nginx on 127.0.0.1:PORT (8080),
#                                deploys examples/hello, prints its URL;
#                                $IDLE is the builder's --idle (0: never)
#   conf/local.sh stop           stops what start started
#
#   .run/api_keys  .run/key      the local key (hash, and the key itself)
#   .run/env                     export SHUTTLE_API=... SHUTTLE_API_KEY=...
#   .run/data/                   the builder's data (zone, db, projects)
#   .run/builder.sock .run/builder.pid .run/builder.log
#   .run/nginx/                  nginx.conf, nginx.pid, error.log, access.log
#   .run/nginx/tmp/              nginx's temporary files
#
# Run as root, nginx's workers are nobody, and they reach the builder's
# socket, the spool (DATA/spool), the zone, DATA/static/ and nginx's
# temporary files.  When nobody cannot enter the clone (one in /root, mode
# 0700), those live outside it, in a directory of their own, kept across
# reboots; .run/data is then a symlink to STATE/data:
#
#   STATE = $SHUTTLE_LOCAL_STATE/<hash of the clone's path>, where
#   SHUTTLE_LOCAL_STATE is /var/lib/shuttle-local unless set
#   STATE/data/  STATE/builder.sock  STATE/tmp/  STATE/repo (the clone's path)
#
# The clone's own modes are never changed.  The master (root) reads the
# module, nginx.conf and api_keys, and writes the logs and the pid file:
# those stay in .run/.

set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN=$REPO/.run
BIN=$REPO/build/bin
MODULE=$REPO/build/modules/ngx_http_shuttle_module.so
NGINX=${NGINX:-/usr/sbin/nginx}
STATE_ROOT=${SHUTTLE_LOCAL_STATE:-/var/lib/shuttle-local}

die() { echo "make run: $*" >&2; exit 1; }

# true when user nobody can go through every directory down to $1
nobody_reaches() {
    if command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups \
            test -x "$1" 2>/dev/null
    else
        runuser -u nobody -- test -x "$1" 2>/dev/null
    fi
}

# sets DATA, SOCK and TMP (and STATE when outside the clone): the builder's
# data, its socket, nginx's temporary files, where the workers reach them
layout() {
    STATE=""
    DATA=$RUN/data
    SOCK=$RUN/builder.sock
    TMP=$RUN/nginx/tmp

    if [ -L "$RUN/data" ]; then
        # made by an earlier start: keep using it (the projects are there)
        DATA=$(readlink "$RUN/data")
        STATE=$(dirname "$DATA")
    elif [ "$(id -u)" = 0 ] && ! nobody_reaches "$RUN"; then
        hash=$(printf '%s' "$REPO" | sha256sum | cut -c1-12)
        STATE=$STATE_ROOT/$hash
        DATA=$STATE/data
    else
        return 0
    fi

    SOCK=$STATE/builder.sock
    TMP=$STATE/tmp
}

# the directory outside the clone, and .run/data pointing to its data/
make_state() {
    # a data directory of a run before the symlink's time moves there
    if [ -d "$RUN/data" ] && [ ! -L "$RUN/data" ]; then
        [ ! -e "$DATA" ] || die "both $RUN/data and $DATA exist: keep one"
        mkdir -p "$STATE"
        mv "$RUN/data" "$DATA" || die "cannot move $RUN/data to $DATA"
    fi

    mkdir -p "$STATE_ROOT" "$STATE" "$DATA" "$TMP"
    chmod 0755 "$STATE_ROOT" "$STATE" "$DATA" "$TMP"
    printf '%s\n' "$REPO" > "$STATE/repo"

    if [ ! -L "$RUN/data" ]; then
        ln -s "$DATA" "$RUN/data"
    fi

    nobody_reaches "$DATA" || die "nginx's workers (nobody) cannot reach" \
        "$DATA: set SHUTTLE_LOCAL_STATE to a directory they can"
}

# pid from FILE when that process is alive and its command line has WORD
live_pid() {
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" \
        || return 1
    echo "$pid"
}

# waits up to $2 tenths of a second for process $1 to exit
wait_gone() {
    n=0
    while kill -0 "$1" 2>/dev/null; do
        n=$((n + 1))
        [ "$n" -lt "$2" ] || return 1
        sleep 0.1
    done
}

stop() {
    if pid=$(live_pid "$RUN/nginx/nginx.pid" "$RUN/nginx"); then
        kill -QUIT "$pid"
        wait_gone "$pid" 100 || kill -TERM "$pid" 2>/dev/null || true
        echo "nginx stopped"
    fi

    # USR2 (stop --all): the builder drains and stops its loaders and its
    # socket keeper, then exits (a TERM would leave them serving)
    if pid=$(live_pid "$RUN/builder.pid" "shuttle-builder"); then
        kill -USR2 "$pid"
        wait_gone "$pid" 200 || die "builder $pid did not stop"
        echo "builder stopped"
    fi

    # what a builder killed left: its loaders and socket keeper
    layout
    if [ -S "$SOCK.keeper" ] && [ -x "$BIN/shuttle-builder" ]; then
        "$BIN/shuttle-builder" stop --all --socket "$SOCK" --data "$DATA" \
            >/dev/null 2>&1 || true
    fi

    rm -f "$RUN/builder.pid"
}

start() {
    port=${1:-8080}
    case $port in
        ''|*[!0-9]*) die "PORT=$port is not a port number" ;;
    esac

    [ -x "$BIN/shuttle-builder" ] && [ -x "$BIN/shuttle-loader" ] \
        && [ -x "$BIN/shuttle" ] && [ -f "$MODULE" ] || die "not built: run make first"

    stop >/dev/null

    mkdir -p "$RUN/nginx"
    chmod 0755 "$RUN"
    layout
    if [ -n "$STATE" ]; then
        make_state
    else
        mkdir -p "$TMP" "$DATA"
        chmod 0755 "$DATA"
    fi

    user=""
    nginx_user=""
    if [ "$(id -u)" = 0 ]; then
        user="user nobody nogroup;"
        nginx_user="--nginx-user nobody"
    fi

    # the local key: made once, kept across runs
    if [ ! -s "$RUN/key" ] || ! grep -q '^local:' "$RUN/api_keys" 2>/dev/null
    then
        rm -f "$RUN/api_keys"
        (umask 077; "$BIN/shuttle-builder" keys --file "$RUN/api_keys" \
            add local > "$RUN/key" 2>/dev/null) \
            || die "cannot create a key in $RUN/api_keys"
    fi
    key=$(cat "$RUN/key")

    # the builder
    : > "$RUN/builder.log"
    # shellcheck disable=SC2086
    setsid "$BIN/shuttle-builder" serve --data "$DATA" \
        --socket "$SOCK" $nginx_user --api-keys "$RUN/api_keys" \
        --apps-url "http://{name}.localhost:$port" --idle "${IDLE:-0}" \
        --log "$RUN/builder.log" < /dev/null >> "$RUN/builder.log" 2>&1 &
    echo $! > "$RUN/builder.pid"

    n=0
    until curl -s -o /dev/null --unix-socket "$SOCK" \
          http://builder/v1/projects
    do
        n=$((n + 1))
        if [ "$n" -gt 100 ] || ! kill -0 "$(cat "$RUN/builder.pid")" \
               2>/dev/null
        then
            tail -5 "$RUN/builder.log" >&2
            die "the builder did not start (log: $RUN/builder.log)"
        fi
        sleep 0.1
    done

    # the dashboard's files, where the workers reach them
    dashboard=$REPO/dashboard
    if [ -n "$STATE" ] && [ -d "$REPO/dashboard" ]; then
        rm -rf "$STATE/dashboard"
        cp -r "$REPO/dashboard" "$STATE/dashboard"
        chmod -R a+rX "$STATE/dashboard"
        dashboard=$STATE/dashboard
    fi

    # nginx
    sed -e "s|@RUN@|$RUN|g" -e "s|@PORT@|$port|g" \
        -e "s|@DATA@|$DATA|g" -e "s|@SOCK@|$SOCK|g" -e "s|@TMP@|$TMP|g" \
        -e "s|@MODULE@|$MODULE|g" -e "s|@USER@|$user|g" \
        -e "s|@DASHBOARD@|$dashboard|g" \
        "$REPO/conf/local.conf.in" > "$RUN/nginx/nginx.conf"

    "$NGINX" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" \
        -e "$RUN/nginx/error.log" \
        || die "nginx did not start (log: $RUN/nginx/error.log)"

    api=http://localhost:$port
    (umask 077; printf 'export SHUTTLE_API=%s\nexport SHUTTLE_API_KEY=%s\n' \
        "$api" "$key" > "$RUN/env")
    chmod 0600 "$RUN/env"

    # deploy examples/hello the way a developer would: shuttle deploy,
    # which POSTs the tarball to /deploy and follows the build to Running
    SHUTTLE_API=$api SHUTTLE_API_KEY=$key NO_COLOR=1 \
        "$BIN/shuttle" deploy "$REPO/examples/hello" >/dev/null \
        || die "deploying examples/hello failed (builder log: $RUN/builder.log)"

    url=http://hello.localhost:$port/hello
    curl -s --max-time 5 "$url" | grep -q 'Hello' \
        || die "$url does not answer"

    echo
    echo "  shuttle is running: $url"
    echo
    if [ -n "$STATE" ]; then
        echo "  nginx's workers (nobody) cannot enter $REPO: the data is in"
        echo "  $STATE ($RUN/data links to it)"
    fi
    echo "  $RUN/env holds SHUTTLE_API and SHUTTLE_API_KEY (. .run/env)"
    echo "  dashboard: http://localhost:$port/dashboard/ (the key: $RUN/key)"
    echo "  metrics: http://127.0.0.1:$port/metrics (builder)," \
         "/metrics/nginx (nginx)"
    echo "  make stop stops it"
}

case ${1:-} in
    start) start "${2:-}" ;;
    stop) stop ;;
    *) echo "usage: conf/local.sh start [PORT] | stop" >&2; exit 2 ;;
esac
