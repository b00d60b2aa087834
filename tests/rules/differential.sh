#!/usr/bin/env bash
# Differential test of the rule engine: careledger's evaluation of generated
# CEL expressions and inputs against the PyPI `cel-python` package, an
# independent CEL implementation.
#   bash tests/rules/differential.sh [COUNT] [SEED]     (default 2000 cases, seed 1)
# Installs cel-python into a virtual environment under target/ if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-2000}
seed=${2:-1}
venv=${CARGO_TARGET_DIR:-$PWD/target}/cel-venv
cel_python_version=0.5.0
if ! "$venv/bin/python" -c "import celpy" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "cel-python==$cel_python_version"
fi
cargo build --quiet -p careledger-scenarios --bin cel_cases
"${CARGO_TARGET_DIR:-$PWD/target}/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug/cel_cases" "$count" "$seed" \
    | "$venv/bin/python" tests/rules/differential.py
