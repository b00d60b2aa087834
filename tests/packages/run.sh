#!/usr/bin/env bash
# The package stages: each package built, installed fresh and exercised as
# its guide says (tests/packages/{c,python,jvm}.sh), then one version across
# all of them and the CLI.
#
#   bash tests/packages/run.sh [c] [python] [jvm]     (default: all three)
#
# PACKAGE_PROFILE (default dev) is the cargo profile the guides' --release
# builds use here. Ends with `packages: N passed, M failed`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(c python jvm)
started=$(date +%s)
export PACKAGE_VERSIONS_FILE
PACKAGE_VERSIONS_FILE=$(mktemp)
trap 'rm -f "$PACKAGE_VERSIONS_FILE"' EXIT

passed=0
failed=0
failures=()
timings=()

# Each package build must resolve the test build's features, or it compiles
# its own copy of the dependency tree (core/workspace-hack/Cargo.toml).
echo "== package builds resolve the test build's features (core/workspace-hack/check.py)"
if ! python3 core/workspace-hack/check.py; then
    failed=$((failed + 1))
    failures+=(features)
fi
for stage in "${stages[@]}"; do
    stage_started=$(date +%s)
    if bash "tests/packages/$stage.sh"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$stage")
    fi
    timings+=("$stage $(($(date +%s) - stage_started))s")
done

echo "== package versions"
# The CLI cargo test built (workspace features; under target/<triple>/ when
# CARGO_BUILD_TARGET names one, as tests/run-all.sh does).
cargo build --quiet --locked --bin careledger
cli_version=$("$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug/careledger" --version)
echo "CLI ${cli_version#careledger }" >>"$PACKAGE_VERSIONS_FILE"
awk '{ v = $NF; $NF = ""; printf "  %-50s %s\n", $0, v }' "$PACKAGE_VERSIONS_FILE"
if [ "$(awk '{ print $NF }' "$PACKAGE_VERSIONS_FILE" | sort -u | wc -l)" -ne 1 ]; then
    echo "the packages do not show one version" >&2
    failed=$((failed + 1))
    failures+=(versions)
fi

echo "== packages: ${timings[*]}; $(($(date +%s) - started))s in all"
[ ${#failures[@]} -eq 0 ] || echo "packages: failed: ${failures[*]}"
echo "packages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
