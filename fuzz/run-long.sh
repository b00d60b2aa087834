#!/usr/bin/env bash
# Long fuzzing session: runs every target (or those named) for HOURS each,
# one after another, on a working copy of its corpus, and prints execs and
# crashes per target. New inputs are merged back into fuzz/corpus/<target>
# only with MERGE=1 (then minimise and commit a small corpus).
#   bash fuzz/run-long.sh HOURS [TARGET...]     e.g. bash fuzz/run-long.sh 0.5 entry wire
# Crashes land in fuzz/artifacts/<target>/; minimise them with
#   cargo +nightly fuzz tmin --fuzz-dir fuzz -O --sanitizer none TARGET fuzz/artifacts/TARGET/crash-…
# and commit the result under tests/fuzz-crashers/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:?usage: run-long.sh HOURS [TARGET...]}
shift
seconds=$(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }')
jobs=${JOBS:-1}
asan_targets=" ${FUZZ_ASAN_TARGETS:-c_api} "
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
targets=${*:-$(cargo +nightly fuzz list --fuzz-dir fuzz)}
work=$(mktemp -d /tmp/careledger-fuzz-long.XXXXXX)
summary=()
for t in $targets; do
    if [[ "$asan_targets" == *" $t "* ]]; then san=address dir=asan; else san=none dir=plain; fi
    mkdir -p "$work/$t" "fuzz/artifacts/$t"
    cp -r "fuzz/corpus/$t" "$work/$t/corpus" 2>/dev/null || mkdir -p "$work/$t/corpus"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    echo "== $t: ${seconds}s ($san)"
    cargo +nightly fuzz run --fuzz-dir fuzz -O --sanitizer "$san" \
        --target-dir "$target_dir/fuzz-$dir" "$t" "$work/$t/corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -jobs="$jobs" -workers="$jobs" \
        -artifact_prefix="fuzz/artifacts/$t/" >"$work/$t/log" 2>&1 || true
    execs=$(grep -Eo '^#[0-9]+' "$work/$t/log" "$work"/fuzz-*.log 2>/dev/null | grep -Eo '[0-9]+$' | sort -n | tail -1)
    crashes=$(( $(ls "fuzz/artifacts/$t" | wc -l) - before ))
    summary+=("$t: ${execs:-0} execs, $crashes new crash files, corpus $(ls "$work/$t/corpus" | wc -l) inputs")
    if [[ ${MERGE:-0} == 1 ]]; then
        cargo +nightly fuzz cmin --fuzz-dir fuzz -O --sanitizer "$san" \
            --target-dir "$target_dir/fuzz-$dir" "$t" "$work/$t/corpus" >/dev/null 2>&1 || true
    fi
done
echo
echo "== summary (logs in $work)"
printf '%s\n' "${summary[@]}"
