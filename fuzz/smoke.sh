#!/usr/bin/env bash
# Bounded cargo-fuzz smoke run of every target (CI's fuzz stage):
#   bash fuzz/smoke.sh [RUNS] [SECONDS]      (default 20000 runs or 60 s, whichever first)
# Targets are built once without a sanitizer: the library is safe Rust and the
# C API checks every handle against its registry before use, and a second,
# AddressSanitizer build of the whole dependency tree would double the
# stage's build time. FUZZ_ASAN_TARGETS="c_api" builds the targets named there
# with ASan as well (fuzz/run-long.sh does so by default). Each target runs on a temporary copy of its committed
# corpus, so the corpus is not modified. Exits non-zero on any crash and
# prints the artifact path.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20000}
seconds=${2:-60}
asan_targets=" ${FUZZ_ASAN_TARGETS:-} "
cargo_fuzz_version=0.13.2
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

targets=$(cargo +nightly fuzz list --fuzz-dir fuzz)
plain=() asan=()
for t in $targets; do
    if [[ "$asan_targets" == *" $t "* ]]; then asan+=("$t"); else plain+=("$t"); fi
done

t0=$(date +%s)
# Separate target dirs: the two sanitizer settings compile every crate differently.
build() { # sanitizer target-dir-suffix
    cargo +nightly fuzz build --fuzz-dir fuzz -O --sanitizer "$1" \
        --target-dir "$target_dir/fuzz-$2"
}
build none plain
[[ ${#asan[@]} -gt 0 ]] && build address asan
echo "fuzz build: $(( $(date +%s) - t0 ))s"

work=$(mktemp -d /tmp/careledger-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
for t in $targets; do
    if [[ "$asan_targets" == *" $t "* ]]; then san=address dir=asan; else san=none dir=plain; fi
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    if [[ -d fuzz/corpus/$t ]]; then cp -r "fuzz/corpus/$t/." "$work/$t/corpus/"; fi
    start=$(date +%s)
    if cargo +nightly fuzz run --fuzz-dir fuzz -O --sanitizer "$san" \
        --target-dir "$target_dir/fuzz-$dir" "$t" "$work/$t/corpus" -- \
        -runs="$runs" -max_total_time="$seconds" -rss_limit_mb=4096 \
        -artifact_prefix="$work/$t/artifacts/" >"$work/$t/log" 2>&1; then
        execs=$(grep -Eo '^#[0-9]+' "$work/$t/log" | tail -1 | tr -d '#')
        echo "fuzz $t: ok, ${execs:-?} execs in $(( $(date +%s) - start ))s"
    else
        failed=1
        tail -40 "$work/$t/log"
        mkdir -p fuzz/artifacts/$t
        cp "$work/$t/artifacts/"* "fuzz/artifacts/$t/" 2>/dev/null || true
        echo "fuzz $t: CRASH; artifacts in $PWD/fuzz/artifacts/$t/:" >&2
        ls -1 "$PWD/fuzz/artifacts/$t/" >&2 || true
    fi
done
echo "fuzz stage: $(( $(date +%s) - t0 ))s"
exit $failed
