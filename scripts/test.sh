#!/usr/bin/env bash
# The whole check, as CI runs it: setup, PostgreSQL, ruff lint + format, mypy, pytest.
#   scripts/test.sh [pytest args...]
# Every check runs even after one fails, so one run shows all problems; the exit status is then
# pytest's own if pytest failed, else 1 if another check failed, else 0.
# PostgreSQL: uses CAIRN_TEST_PG_URL if set, else starts scripts/postgres.sh's cluster (stopped
# at the end if this run started it and no concurrent run still uses it). If it cannot start,
# the PostgreSQL tests skip, or under CI=true the run fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
bash scripts/chromium.sh  # for tests/ui; installs Debian's chromium if missing

if [ -n "${CAIRN_TEST_PG_URL:-}" ]; then
    echo "test.sh: PostgreSQL from CAIRN_TEST_PG_URL=$CAIRN_TEST_PG_URL"
else
    trap 'bash scripts/postgres.sh release $$ || true' EXIT
    if url=$(bash scripts/postgres.sh lease $$); then
        export CAIRN_TEST_PG_URL=$url
        echo "test.sh: PostgreSQL at $url"
    elif [ "${CI:-}" = true ]; then
        echo "test.sh: PostgreSQL could not start, and CI needs it" >&2
        exit 1
    else
        printf '\n%s\n%s\n%s\n\n' \
            "!!! WARNING: PostgreSQL could not start (see above): its tests will SKIP." \
            "!!! Fix it, or point CAIRN_TEST_PG_URL at a server, before trusting this run." \
            "!!! (Under CI=true this is an error.)" >&2
    fi
fi

# ruff fails on a path that does not exist (git keeps no empty folders); an empty one is fine.
dirs=()
for d in cairn tests benchmarks examples; do
    [ -d "$d" ] && dirs+=("$d")
done

failed=()
pytest_rc=0
run() {
    local name=$1
    shift
    echo "== $name"
    local rc=0
    "$@" || rc=$?
    if [ "$rc" != 0 ]; then
        failed+=("$name (exit $rc)")
        [ "$name" != pytest ] || pytest_rc=$rc
    fi
}

run "ruff check" .venv/bin/ruff check "${dirs[@]}"
run "ruff format" .venv/bin/ruff format --check "${dirs[@]}"
run mypy .venv/bin/mypy
run pytest .venv/bin/pytest -n 2 "$@"

if [ "${#failed[@]}" != 0 ]; then
    msg=$(printf '%s; ' "${failed[@]}")
    echo "test.sh: FAILED: ${msg%; }" >&2
    [ "$pytest_rc" = 0 ] && exit 1
    exit "$pytest_rc"
fi
echo "test.sh: all checks passed"
