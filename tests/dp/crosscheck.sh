#!/usr/bin/env bash
# Compare careledger's RDP accountant with Google's dp_accounting (PyPI).
#
#   bash tests/dp/crosscheck.sh          regenerate core/test_vectors/dp_accounting_eps.json
#                                         (60 cases) and run core/tests/dp_reference.rs on it
#   bash tests/dp/crosscheck.sh 2000     a 2000-case grid in a temporary file, compared only
#
# Installs dp-accounting into a virtualenv under ${XDG_CACHE_HOME:-~/.cache}/careledger.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/careledger/dp-accounting-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet dp-accounting
fi
cases=${1:-60}
if [ "$cases" = 60 ]; then
    out=core/test_vectors/dp_accounting_eps.json
else
    out=$(mktemp --suffix=.json)
fi
"$venv/bin/python" tests/dp/dp_accounting_reference.py "$cases" > "$out" 2>/dev/null
echo "wrote $out ($cases cases)"
CARELEDGER_DP_REFERENCE="$(realpath "$out")" cargo test -p careledger --test dp_reference -- --nocapture
