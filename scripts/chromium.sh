#!/usr/bin/env bash
# Debian's Chromium, which the web UI's browser tests drive (tests/ui; Playwright for Python
# with executable_path, never `playwright install`, whose download cannot work offline).
# Installs it with apt-get when missing (as root). Without it the UI tests skip, except
# under CI=true, where this script fails.
#   scripts/chromium.sh         (CAIRN_CHROMIUM names another binary to check for)
set -euo pipefail

BIN=${CAIRN_CHROMIUM:-/usr/bin/chromium}

fail() {
    echo "chromium.sh: $*" >&2
    if [ "${CI:-}" = true ]; then
        exit 1
    fi
    echo "chromium.sh: the browser tests (tests/ui) will skip" >&2
    exit 0
}

if [ -x "$BIN" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    fail "$BIN is missing; install it as root: apt-get install -y chromium"
fi
if ! command -v apt-get >/dev/null; then
    fail "$BIN is missing and there is no apt-get; install Chromium and set CAIRN_CHROMIUM"
fi
echo "chromium.sh: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || fail "apt-get update failed"
apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
    fail "apt-get install chromium failed"
[ -x "$BIN" ] || fail "chromium was installed but $BIN is not there"
echo "chromium.sh: $("$BIN" --version 2>/dev/null || echo chromium) installed" >&2
