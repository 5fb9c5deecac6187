#!/usr/bin/env bash
# Make .venv match requirements/dev.lock, with cairn installed editable.
# Idempotent; when the lock, pyproject.toml and the venv are unchanged it returns at once
# (uv pip sync alone would uninstall and reinstall the editable cairn on every run, since the
# lock does not list it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

UV_VERSION=0.13.9
VENV=.venv
PY=$VENV/bin/python
UV=$VENV/bin/uv
STAMP=$VENV/.cairn-setup-stamp

die() {
    echo "setup.sh: $*" >&2
    exit 1
}

if [ ! -x "$PY" ]; then
    command -v python3 >/dev/null || die "python3 not found; install Python >= 3.11"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "Python >= 3.11 is needed, python3 is $(python3 -V 2>&1)"
    # Debian ships ensurepip (needed by venv) in a separate package, python3-venv.
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "setup.sh: installing python3-venv with apt-get" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null
            apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$VENV"
        else
            die "python3 -m venv failed; on Debian: sudo apt-get install python3-venv"
        fi
    fi
fi

case "$("$UV" --version 2>/dev/null || true)" in
"uv $UV_VERSION" | "uv $UV_VERSION "*) ;;
*) "$PY" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" ;;
esac

# The stamp records what the venv was last synced to; the find_spec check (-I: not from the
# cwd) catches an editable install that is missing or points at another checkout.
want=$(cat requirements/dev.lock pyproject.toml | sha256sum | cut -d' ' -f1)
editable_here() {
    "$PY" -I -c 'import importlib.util as u, sys
s = u.find_spec("cairn")
sys.exit(s is None or not (s.origin or "").startswith(sys.argv[1]))' "$(pwd -P)/cairn/"
}
if [ "$(cat "$STAMP" 2>/dev/null || true)" = "$want" ] && editable_here; then
    exit 0
fi

rm -f "$STAMP"
"$UV" pip sync --python "$PY" requirements/dev.lock
"$UV" pip install --python "$PY" --no-deps -e .
echo "$want" >"$STAMP"
