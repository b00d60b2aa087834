#!/usr/bin/env bash
# Every test of careledger, the README's test command and what CI runs:
#   1. cargo test: unit, property, scenario, CLI, header-drift and doc tests;
#   2. the C API suite and example: plain, AddressSanitizer + UBSan, valgrind
#      (tests/c/run.sh; installs valgrind with apt-get if missing);
#   3. the Python and Kotlin binding scenarios and the generated-sources drift
#      check (bindings/tests/run.sh; installs JNA and kotlinc if missing).
# Needs no network beyond package installs and no nightly toolchain.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
stage() { echo; echo "== $* ($(( $(date +%s) - start ))s)"; }

stage "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary).
rust=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed", p, f }' "$log")

stage "C API (tests/c/run.sh)"
bash tests/c/run.sh all

if [ -f bindings/tests/run.sh ]; then
    stage "bindings (bindings/tests/run.sh)"
    bash bindings/tests/run.sh
fi

stage "all tests passed"
echo "rust tests: $rust"
