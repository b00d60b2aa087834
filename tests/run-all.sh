#!/usr/bin/env bash
# Every test of careledger, the README's test command and what CI runs:
#   1. cargo test: unit, property, scenario, CLI, header-drift and doc tests,
#      and the NATS relay tests against real nats-server processes (started
#      here with tests/nats/servers.sh unless CARELEDGER_NATS_URL is set);
#      built by cargo, the test binaries run two at a time (tests/cargo-tests.py:
#      the same binaries, environment and output as `cargo test --no-fail-fast`);
#   2. the C API suite and example: plain, AddressSanitizer + UBSan, valgrind
#      (tests/c/run.sh; installs valgrind with apt-get if missing);
#   3. the Python and Kotlin binding scenarios and the generated-sources drift
#      check (bindings/tests/run.sh; installs JNA and kotlinc if missing);
#   4. the rule engine's differential test against the PyPI cel-python package
#      (tests/rules/differential.sh; installs it into a venv under target/);
#   5. the packages: the C library installed by cargo-c into an empty prefix
#      and built against with pkg-config and CMake, the Python wheel installed
#      into a new virtualenv, the JVM jar under a Kotlin program compiled
#      against it (tests/packages/run.sh; installs cargo-c, cmake, maturin and
#      mypy if missing);
#   6. the docs: every code block accounted for, the guides' shell blocks run
#      (tests/docs/run.sh).
# Needs no network beyond package installs and no nightly toolchain. Every stage
# runs even after a failure; the exit status is non-zero if any failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Every build below names this machine's target explicitly, as maturin always
# does: then the wheel's build (and the jar's, and the bindings tests') reuses
# the dependencies the test build compiled in target/<triple>/debug instead of
# building them again (core/workspace-hack keeps their features the same).
if [ -z "${CARGO_BUILD_TARGET:-}" ]; then
    CARGO_BUILD_TARGET=$(rustc -vV | sed -n 's/^host: //p')
fi
export CARGO_BUILD_TARGET
start=$(date +%s)
stage() { echo; echo "== $* ($(( $(date +%s) - start ))s)"; }

log=$(mktemp)
cleanup() { rm -f "$log"; }
trap cleanup EXIT

# The NATS relay tests need real servers: start them unless the caller (CI)
# already did, and stop what we started.
if [ -z "${CARELEDGER_NATS_URL:-}" ]; then
    stage "nats-server (tests/nats/servers.sh)"
    if bash tests/nats/servers.sh install; then
        export CARELEDGER_NATS_DIR
        CARELEDGER_NATS_DIR=$(mktemp -d /tmp/careledger-nats.XXXXXX)
        cleanup() { rm -f "$log"; bash tests/nats/servers.sh stop; rm -rf "$CARELEDGER_NATS_DIR"; }
        nats_env=$(bash tests/nats/servers.sh start)
        eval "$nats_env"
    else
        echo "nats-server could not be installed: the NATS relay tests will say SKIPPED" >&2
    fi
fi

# Every stage runs even when an earlier one failed, and cargo runs every test
# binary (--no-fail-fast), so one failure never hides another; the script
# still exits non-zero, naming what failed.
# The test runner is a Python script (the binding scenarios need Python too).
if ! command -v python3 >/dev/null 2>&1; then
    sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_=sudo
    $sudo_ apt-get update -qq && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi

failed=()
stage "cargo test (tests/cargo-tests.py)"
set +e
python3 tests/cargo-tests.py 2>&1 | tee "$log"
cargo_status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
rust=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed", p, f }' "$log")
if [ "$cargo_status" -ne 0 ]; then
    failed+=("cargo test")
    # The failing tests, then the test binaries cargo names as failed.
    echo "failed in cargo test:"
    grep -E '^test .* FAILED$' "$log" || true
    sed -n '/^error: [0-9]* targets* failed:/,$p' "$log" || true
fi

stage "C API (tests/c/run.sh)"
bash tests/c/run.sh all || failed+=("C API (tests/c/run.sh all)")

if [ -f bindings/tests/run.sh ]; then
    stage "bindings (bindings/tests/run.sh)"
    bash bindings/tests/run.sh || failed+=("bindings (bindings/tests/run.sh)")
fi

stage "rules differential test (tests/rules/differential.sh)"
bash tests/rules/differential.sh 2000 1 || failed+=("rules differential test")

stage "packages (tests/packages/run.sh)"
bash tests/packages/run.sh || failed+=("packages (tests/packages/run.sh)")

stage "docs (tests/docs/run.sh)"
bash tests/docs/run.sh || failed+=("docs (tests/docs/run.sh)")

echo "rust tests: $rust"
if [ ${#failed[@]} -gt 0 ]; then
    stage "FAILED: ${failed[*]}"
    exit 1
fi
stage "all tests passed"
