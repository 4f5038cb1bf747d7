#!/bin/sh
#
# The local platform of `make run` and `make stop`, under .run/:
#
#   conf/local.sh start [PORT]   builder + nginx on 127.0.0.1:PORT (8080),
#                                deploys examples/hello, prints its URL
#   conf/local.sh stop           stops what start started
#
#   .run/api_keys  .run/key      the local key (hash, and the key itself)
#   .run/env                     export SHUTTLE_API=... SHUTTLE_API_KEY=...
#   .run/data/                   the builder's data (zone, db, projects)
#   .run/builder.sock .run/builder.pid .run/builder.log
#   .run/nginx/                  nginx.conf, nginx.pid, error.log, access.log

set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN=$REPO/.run
BIN=$REPO/build/bin
MODULE=$REPO/build/modules/ngx_http_shuttle_module.so
NGINX=${NGINX:-/usr/sbin/nginx}

die() { echo "make run: $*" >&2; exit 1; }

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

    # TERM: the builder drains and stops its loaders, then exits
    if pid=$(live_pid "$RUN/builder.pid" "shuttle-builder"); then
        kill -TERM "$pid"
        wait_gone "$pid" 200 || die "builder $pid did not stop"
        echo "builder stopped"
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

    mkdir -p "$RUN/nginx/tmp" "$RUN/data"
    chmod 0755 "$RUN" "$RUN/data"

    user=""
    nginx_user=""
    if [ "$(id -u)" = 0 ]; then
        user="user nobody nogroup;"
        nginx_user="--nginx-user nobody"
        # the workers go through these to the socket and the spool
        chmod 0755 "$REPO"
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
    setsid "$BIN/shuttle-builder" serve --data "$RUN/data" \
        --socket "$RUN/builder.sock" $nginx_user \
        --apps-url "http://{name}.localhost:$port" \
        --log "$RUN/builder.log" < /dev/null >> "$RUN/builder.log" 2>&1 &
    echo $! > "$RUN/builder.pid"

    n=0
    until curl -s -o /dev/null --unix-socket "$RUN/builder.sock" \
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

    # nginx
    sed -e "s|@RUN@|$RUN|g" -e "s|@PORT@|$port|g" \
        -e "s|@MODULE@|$MODULE|g" -e "s|@USER@|$user|g" \
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
    echo "  $RUN/env holds SHUTTLE_API and SHUTTLE_API_KEY (. .run/env)"
    echo "  make stop stops it"
}

case ${1:-} in
    start) start "${2:-}" ;;
    stop) stop ;;
    *) echo "usage: conf/local.sh start [PORT] | stop" >&2; exit 2 ;;
esac
