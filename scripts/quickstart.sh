#!/usr/bin/env bash
# Set everything up, then run Cairn's main job: the quickstart training example,
# tracked in the embedded store ($CAIRN_HOME, default ./.cairn).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/python" "$root/examples/quickstart.py" "$@"
