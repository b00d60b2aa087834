#!/usr/bin/env bash
# The docs check: every command and code block of careledger's Markdown docs
# is accounted for, and the shell blocks of the guides run.
#
#   bash tests/docs/run.sh
#
# 1. `tests/docs/blocks.py check`: every fenced block says who checks it (see
#    that file), excerpts match their files, not-in-ci blocks give a reason
#    and still parse, relative links and their anchors resolve.
# 2. The plain ```sh blocks run, one bash session per file (set -euo
#    pipefail), in order, in a scratch directory that sees the repository's
#    top-level folders through symlinks (so `examples/data/...` resolves), with
#    HOME inside it and the `careledger` CLI built here (debug) on PATH.
# The package stages (tests/packages/) run the package=... blocks; Rust blocks
# run as doctests in `cargo test`. Ends with `docs: N passed, M failed`
# (files whose blocks ran) and the list of blocks not run in CI, with why.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
started=$(date +%s)

mapfile -t files < <(
    {
        ls README.md CHANGELOG.md examples/README.md bindings/README.md 2>/dev/null
        find docs -name '*.md'
    } | sort -u
)

echo "== docs: every block accounted for (${#files[@]} files)"
check=0
python3 tests/docs/blocks.py check "${files[@]}" || check=1

echo "== docs: the careledger CLI"
# The CLI cargo test built (workspace features; under target/<triple>/ when
# CARGO_BUILD_TARGET names one, as tests/run-all.sh does).
cargo build --quiet --locked --bin careledger
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin_dir="$target_dir/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug"

passed=0
failed=0
failures=()
scratch_root=$(mktemp -d)
trap 'rm -rf "$scratch_root"' EXIT
real_home=$HOME
for file in "${files[@]}"; do
    script=$(python3 tests/docs/blocks.py script "$file")
    [ -n "$script" ] || continue
    scratch="$scratch_root/$(echo "$file" | tr '/.' '__')"
    mkdir -p "$scratch/home"
    for entry in "$root"/* "$root"/.ci; do
        case $(basename "$entry") in target | .git) continue ;; esac
        ln -s "$entry" "$scratch/$(basename "$entry")"
    done
    echo "== docs: $file"
    file_started=$(date +%s)
    if (cd "$scratch" &&
        env -u CARELEDGER_HOME -u CARELEDGER_RELAY -u CARELEDGER_STORAGE_KEY \
            HOME="$scratch/home" CARGO_HOME="${CARGO_HOME:-$real_home/.cargo}" \
            RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}" \
            XDG_CACHE_HOME="${XDG_CACHE_HOME:-$real_home/.cache}" \
            PATH="$bin_dir:$PATH" bash -euo pipefail -c "$script" </dev/null); then
        passed=$((passed + 1))
        echo "-- $file: ran in $(($(date +%s) - file_started))s"
    else
        failed=$((failed + 1))
        failures+=("$file")
        echo "-- $file: FAILED (the last '-- FILE:LINE' above is the block that failed)"
    fi
done

echo "== docs: done ($(($(date +%s) - started))s)"
python3 tests/docs/blocks.py summary "${files[@]}"
[ "$check" -eq 0 ] || { echo "docs: blocks or links not accounted for (above)"; failed=$((failed + 1)); }
[ ${#failures[@]} -eq 0 ] || echo "docs: failed in ${failures[*]}"
echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
