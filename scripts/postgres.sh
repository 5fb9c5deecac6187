#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: its own folder and port, 127.0.0.1 only, trust
# auth, no fsync. Never use it for data you want to keep.
#
#   scripts/postgres.sh start        start if needed; print the SQLAlchemy URL of the admin DB
#   scripts/postgres.sh stop         stop it (the folder stays; delete it to start afresh)
#   scripts/postgres.sh status       exit 0 if it is running
#   scripts/postgres.sh lease PID    like start, and PID holds the cluster until it releases it
#   scripts/postgres.sh release PID  drop PID's hold; the last holder stops a cluster that a
#                                    lease started (so concurrent test.sh runs share one cluster
#                                    and none pulls it from under another)
#
# Environment: CAIRN_TEST_PG_PORT (default 55432),
#              CAIRN_TEST_PG_DIR (default ${TMPDIR:-/tmp}/cairn-test-pg-$UID).
set -euo pipefail

DATA=${CAIRN_TEST_PG_DIR:-${TMPDIR:-/tmp}/cairn-test-pg-$UID}
DATA=${DATA%/}
PORT=${CAIRN_TEST_PG_PORT:-55432}
LEASES=$DATA.leases
IS_ROOT=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

# PostgreSQL refuses to run as root: as root, run its programs as the postgres user.
as_pg() {
    if [ "$IS_ROOT" = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
    if [ "$IS_ROOT" != 1 ] || ! command -v apt-get >/dev/null; then
        die "no PostgreSQL server in /usr/lib/postgresql/*/bin; install the 'postgresql' package"
    fi
    echo "postgres.sh: installing PostgreSQL with apt-get" >&2
    local log
    log=$(mktemp)
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        die "apt-get install postgresql failed"
    fi
    rm -f "$log"
}

# Sets BIN. An existing cluster needs the major version that created it; a new one gets the newest.
find_bin() {
    if [ -f "$DATA/PG_VERSION" ]; then
        BIN=/usr/lib/postgresql/$(cat "$DATA/PG_VERSION")/bin
        [ -x "$BIN/pg_ctl" ] ||
            die "the cluster in $DATA needs $BIN, which is missing; delete $DATA to start afresh"
        return
    fi
    BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ ! -x "$BIN/pg_ctl" ]; then
        install_postgres
        BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
        [ -x "$BIN/pg_ctl" ] || die "PostgreSQL installed, but no /usr/lib/postgresql/*/bin/pg_ctl"
    fi
}

running() {
    [ -f "$DATA/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
    [ -f "$DATA/PG_VERSION" ] && return
    if [ -e "$DATA" ] && [ -n "$(ls -A "$DATA")" ]; then
        die "$DATA is not empty and holds no cluster; refusing to touch it"
    fi
    if [ "$IS_ROOT" = 1 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the server"
    fi
    mkdir -p "$DATA"
    chmod 700 "$DATA"
    [ "$IS_ROOT" = 0 ] || chown postgres:postgres "$DATA"
    # Locale C: byte order collation, as in SQLite, and no dependence on installed locales.
    local out
    out=$(as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --locale=C --no-sync 2>&1) ||
        die "initdb failed:"$'\n'"$out"
}

start() {
    find_bin
    if ! running; then
        init_cluster
        local logged
        logged=$(wc -l 2>/dev/null <"$DATA/log" || echo 0)
        # 9>&-: the server must not inherit the lock, or it would hold it for its whole life.
        if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/log" -w -t 60 -o "-p $PORT -k '$DATA' \
            -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=200" start >/dev/null 9>&-; then
            tail -n +"$((logged + 1))" "$DATA/log" | tail -n 20 >&2 || true
            die "could not start PostgreSQL in $DATA on port $PORT (port taken? set CAIRN_TEST_PG_PORT)"
        fi
        STARTED=1
    fi
    # The port it actually runs on (line 4 of postmaster.pid), which differs from $PORT if an
    # earlier start used another one.
    local port
    port=$(sed -n 4p "$DATA/postmaster.pid")
    "$BIN/pg_isready" -q -U postgres -d postgres -h 127.0.0.1 -p "$port" -t 20 ||
        die "PostgreSQL in $DATA does not answer on 127.0.0.1:$port"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

stop() {
    [ -f "$DATA/PG_VERSION" ] || return 0
    find_bin
    if running; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null ||
            die "could not stop PostgreSQL in $DATA"
    fi
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

# One command at a time per cluster: concurrent starts would race in pg_ctl.
mkdir -p "$(dirname "$DATA")"
{ exec 9>"$DATA.lock"; } 2>/dev/null || die "cannot write $DATA.lock"
flock 9

STARTED=0
case ${1:-} in
start)
    start
    # Started by hand: nobody's release should stop it.
    rm -f "$LEASES/.started"
    ;;
stop) stop ;;
status) [ -f "$DATA/PG_VERSION" ] && find_bin && running ;;
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
*) die "usage: $0 start|stop|status|lease PID|release PID" ;;
esac
