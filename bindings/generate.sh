#!/usr/bin/env bash
# Generate careledger's Python, Kotlin and Swift bindings from the built
# library (uniffi library mode, with the in-repo uniffi-bindgen), into the
# committed locations:
#
#   bindings/python/careledger.py
#   bindings/kotlin/uniffi/careledger/careledger.kt
#   bindings/swift/Sources/CareLedger/CareLedger.swift
#   bindings/swift/Sources/CareLedgerFFI/CareLedgerFFI.h
#   bindings/swift/Sources/CareLedgerFFI/CareLedgerFFI.modulemap
#   bindings/package/python/careledger.pyi  (type stubs for the wheel, written
#                                            from careledger.py by make_stubs.py)
#
# Usage:
#   bash bindings/generate.sh          rewrite the committed copies
#   bash bindings/generate.sh --check  generate into a temp dir and fail if the
#                                      committed copies differ (CI drift check)
#
# Output is never run through ktlint/swiftformat (--no-format), so it is the
# same on every machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mode=write
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: bash bindings/generate.sh [--check]" >&2; exit 2 ;;
esac

target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# An explicit target (CARGO_BUILD_TARGET) builds the library under
# target/<triple>/; uniffi-bindgen is a tool for this machine and stays in
# target/debug, where maturin's `cargo run --bin uniffi-bindgen` finds it too.
library_dir="$target_dir/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug"
case "$(uname -s)" in
    Darwin) library="$library_dir/libcareledger_uniffi.dylib" ;;
    *) library="$library_dir/libcareledger_uniffi.so" ;;
esac

# The default feature set: what apps build. (The test build adds the
# `panic-probe` feature, which must not change the generated bindings; the
# check below, run after a test build too, would show it if it did.)
cargo build --quiet --locked -p careledger-uniffi
# Debug only: uniffi_bindgen takes minutes to build in release.
env -u CARGO_BUILD_TARGET cargo build --quiet --locked -p uniffi-bindgen
bindgen="$target_dir/debug/uniffi-bindgen"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
stage="$out/stage"
for language in python kotlin swift; do
    "$bindgen" generate "$library" --language "$language" --no-format \
        --out-dir "$stage/$language" >/dev/null
done
mkdir -p "$out/python" "$out/kotlin" "$out/swift/Sources/CareLedger" "$out/swift/Sources/CareLedgerFFI"
cp "$stage/python/careledger.py" "$out/python/"
cp -R "$stage/kotlin/." "$out/kotlin/"
cp "$stage/swift/CareLedger.swift" "$out/swift/Sources/CareLedger/"
cp "$stage/swift/CareLedgerFFI.h" "$stage/swift/CareLedgerFFI.modulemap" "$out/swift/Sources/CareLedgerFFI/"
mkdir -p "$out/stubs"
python3 bindings/package/python/make_stubs.py "$out/python/careledger.py" >"$out/stubs/careledger.pyi"

# Every generated directory holds generated files only, except the SwiftPM
# module map of the CareLedgerFFI target, which is written by hand.
if [ "$mode" = check ]; then
    status=0
    diff -ru "$out/python" bindings/python || status=1
    diff -ru "$out/kotlin" bindings/kotlin || status=1
    diff -ru -x module.modulemap "$out/swift/Sources" bindings/swift/Sources || status=1
    diff -u "$out/stubs/careledger.pyi" bindings/package/python/careledger.pyi || status=1
    if [ "$status" -ne 0 ]; then
        echo "bindings: the committed generated sources are out of date;" \
            "run \`bash bindings/generate.sh\` and commit the result" >&2
        exit 1
    fi
    echo "bindings: generated sources up to date"
else
    rm -rf bindings/python bindings/kotlin bindings/swift/Sources/CareLedger
    rm -f bindings/swift/Sources/CareLedgerFFI/CareLedgerFFI.*
    mkdir -p bindings/swift/Sources
    cp -R "$out/python" "$out/kotlin" bindings/
    cp -R "$out/swift/Sources/." bindings/swift/Sources/
    cp "$out/stubs/careledger.pyi" bindings/package/python/careledger.pyi
    echo "bindings: regenerated python/, kotlin/, swift/Sources/ and package/python/careledger.pyi"
fi
