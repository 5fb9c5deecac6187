#!/usr/bin/env bash
# A throwaway single-node OpenStack Swift with its S3 API (s3api + tempauth), for the S3
# object-store tests and benchmarks: a real S3-compatible server from Debian's packages, its
# own folder and ports, 127.0.0.1 only. Never use it for data you want to keep.
#
#   scripts/swift.sh start        start if needed; print the endpoint and credentials
#   scripts/swift.sh stop         stop it (the folder stays; delete it to start afresh)
#   scripts/swift.sh status       exit 0 if it answers
#   scripts/swift.sh url          print the S3 endpoint URL (whether or not it runs)
#   scripts/swift.sh lease PID    like start, and PID holds the server until it releases it
#   scripts/swift.sh release PID  drop PID's hold; the last holder stops a server that a
#                                 lease started (so concurrent test runs share one server)
#
# start and lease print shell assignments (eval-able):
#   CAIRN_TEST_S3_ENDPOINT=http://127.0.0.1:58080
#   AWS_ACCESS_KEY_ID=test:tester  AWS_SECRET_ACCESS_KEY=testing  AWS_DEFAULT_REGION=us-east-1
# Missing packages are installed with apt-get when run as root (swift-proxy, swift-object,
# swift-container, swift-account, memcached); the servers run as the 'swift' user then.
#
# Environment: CAIRN_TEST_SWIFT_PORT (default 58080: the S3 endpoint; the object, container
#              and account servers and memcached take the next four ports),
#              CAIRN_TEST_SWIFT_DIR (default ${TMPDIR:-/tmp}/cairn-test-swift-$UID).
set -euo pipefail

SW=${CAIRN_TEST_SWIFT_DIR:-${TMPDIR:-/tmp}/cairn-test-swift-$UID}
SW=${SW%/}
PORT=${CAIRN_TEST_SWIFT_PORT:-58080}
E=$SW/etc N=$SW/srv/node R=$SW/run L=$SW/log
LEASES=$SW.leases
IS_ROOT=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
URL=http://127.0.0.1:$PORT
PACKAGES=(swift-proxy swift-object swift-container swift-account memcached)

die() {
    echo "swift.sh: $*" >&2
    exit 1
}

install_swift() {
    command -v swift-proxy-server >/dev/null && command -v memcached >/dev/null && return
    if [ "$IS_ROOT" != 1 ] || ! command -v apt-get >/dev/null; then
        die "Swift is not installed; as root: apt-get install ${PACKAGES[*]}"
    fi
    echo "swift.sh: installing Swift with apt-get" >&2
    local log
    log=$(mktemp)
    # Packages' postinst scripts would start system services: policy-rc.d says no.
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${PACKAGES[@]}" || { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${PACKAGES[@]}"; }; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        die "apt-get install ${PACKAGES[*]} failed"
    fi
    rm -f "$log"
}

answers() {
    curl -sf -o /dev/null --max-time 2 "$URL/healthcheck"
}

configure() {
    local user
    user=$([ "$IS_ROOT" = 1 ] && echo swift || id -un)
    mkdir -p "$E" "$N/d1" "$R" "$L"
    cat >"$E/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = cairntest
swift_hash_path_prefix = cairntest
[storage-policy:0]
name = Policy-0
default = yes
CONF
    local name port i=1
    for name in object container account; do
        port=$((PORT + i))
        i=$((i + 1))
        cat >"$E/$name-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
devices = $N
mount_check = false
workers = 1
swift_dir = $E
user = $user
log_name = swift-$name
log_level = WARNING

[pipeline:main]
pipeline = $name-server

[app:$name-server]
use = egg:swift#$name
CONF
        if [ ! -f "$E/$name.ring.gz" ]; then
            (cd "$E" && swift-ring-builder "$name.builder" create 8 1 1 >/dev/null &&
                swift-ring-builder "$name.builder" add "r1z1-127.0.0.1:$port/d1" 100 >/dev/null &&
                swift-ring-builder "$name.builder" rebalance >/dev/null) ||
                [ -f "$E/$name.ring.gz" ] || die "could not build the $name ring in $E"
        fi
    done
    cat >"$E/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 1
swift_dir = $E
user = $user
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# the multipart part size floor of AWS (5 MiB)
min_segment_size = 5242880

[filter:tempauth]
use = egg:swift#tempauth
# S3 access key "test:tester", secret "testing"
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$((PORT + 4))

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF
    [ "$IS_ROOT" = 0 ] || chown -R swift:swift "$N" "$R"
}

alive() {
    [ -f "$R/$1.pid" ] && kill -0 "$(cat "$R/$1.pid")" 2>/dev/null
}

# Each server is its own session leader (setsid), so stop can end its whole group.
launch() {
    local name=$1
    shift
    alive "$name" && return
    setsid "$@" >"$L/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$R/$name.pid"
}

print_endpoint() {
    echo "CAIRN_TEST_S3_ENDPOINT=$URL"
    echo "AWS_ACCESS_KEY_ID=test:tester"
    echo "AWS_SECRET_ACCESS_KEY=testing"
    echo "AWS_DEFAULT_REGION=us-east-1"
}

start() {
    if ! answers; then
        install_swift
        configure
        # tempauth (and s3api with it) keeps its tokens in memcached: a private one.
        local mc_user
        mc_user=$([ "$IS_ROOT" = 1 ] && echo memcache || id -un)
        launch memcached memcached -l 127.0.0.1 -p $((PORT + 4)) -U 0 -m 64 -u "$mc_user"
        local s
        for s in object container account proxy; do
            launch "$s" "swift-$s-server" "$E/$s-server.conf"
        done
        local i
        for i in $(seq 1 150); do
            answers && break
            sleep 0.2
        done
        if ! answers; then
            tail -n 20 "$L"/*.log >&2 || true
            die "Swift does not answer on $URL (port taken? set CAIRN_TEST_SWIFT_PORT)"
        fi
        STARTED=1
    fi
    print_endpoint
}

stop() {
    local s pid i
    for s in proxy object container account memcached; do
        [ -f "$R/$s.pid" ] || continue
        pid=$(cat "$R/$s.pid")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$R/$s.pid"
    done
    rm -f "$LEASES/.started"
}

live_leases() {
    local f n=0
    for f in "$LEASES"/[0-9]*; do
        [ -e "$f" ] || continue
        if kill -0 "${f##*/}" 2>/dev/null; then n=$((n + 1)); else rm -f "$f"; fi
    done
    echo "$n"
}

pid_arg() {
    [[ ${1:-} =~ ^[0-9]+$ ]] || die "usage: $0 $2 PID"
}

[ "${1:-}" != url ] || {
    echo "$URL"
    exit 0
}

# One command at a time per server folder: concurrent starts would race.
mkdir -p "$(dirname "$SW")"
{ exec 9>"$SW.lock"; } 2>/dev/null || die "cannot write $SW.lock"
flock 9

STARTED=0
case ${1:-} in
start)
    start
    rm -f "$LEASES/.started" # started by hand: nobody's release should stop it
    ;;
stop) stop ;;
status) answers ;;
lease)
    pid_arg "${2:-}" lease
    start
    mkdir -p "$LEASES"
    [ "$STARTED" = 0 ] || touch "$LEASES/.started"
    touch "$LEASES/$2"
    ;;
release)
    pid_arg "${2:-}" release
    rm -f "$LEASES/$2"
    if [ -f "$LEASES/.started" ] && [ "$(live_leases)" = 0 ]; then stop; fi
    ;;
*) die "usage: $0 start|stop|status|url|lease PID|release PID" ;;
esac
