#!/usr/bin/env bash
# Runs every benchmark against its peer (each bench measures both sides in the
# same run) and writes one Markdown table of the ratios.
#
#   bash tests/bench.sh                      all benchmarks -> tests/bench-ratios.md
#   CARELEDGER_BENCHES="aead mls" bash tests/bench.sh     only those
#
# Benchmarks: aead (vs `openssl speed`), ingest and receive (vs plain
# Automerge), mls (vs raw openmls), publish (batched vs one by one, relay file
# and NATS), relay_nats (NATS vs relay file), train (vs scikit-learn; skipped
# without it), c_api (C API vs Rust API). Release builds, in target/release.
#
# NATS: uses $CARELEDGER_NATS_URL if set, else starts its own nats-server
# (JetStream, default 1 MB max_payload) on 127.0.0.1:$CARELEDGER_BENCH_NATS_PORT
# (default 14230) and stops it at the end; without nats-server the NATS rows
# say SKIPPED. Logs of each bench: target/bench/<name>.log.
# BENCH_OUT=path writes the table elsewhere; CARELEDGER_BENCH_CRITERION=1 also
# runs the criterion registrations (slower; the ratios do not need them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-tests/bench-ratios.md}
benches=${CARELEDGER_BENCHES:-aead ingest receive mls publish relay_nats train c_api}
logs=target/bench
mkdir -p "$logs"

nats_pid=""
cleanup() {
    if [ -n "$nats_pid" ]; then
        kill "$nats_pid" 2>/dev/null || true
        wait "$nats_pid" 2>/dev/null || true
    fi
    [ -n "${nats_dir:-}" ] && rm -rf "$nats_dir"
}
trap cleanup EXIT
if [ -z "${CARELEDGER_NATS_URL:-}" ] && command -v nats-server >/dev/null; then
    port=${CARELEDGER_BENCH_NATS_PORT:-14230}
    nats_dir=$(mktemp -d)
    nats-server -js -a 127.0.0.1 -p "$port" -sd "$nats_dir" >"$logs/nats-server.log" 2>&1 &
    nats_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    export CARELEDGER_NATS_URL=nats://127.0.0.1:$port
fi

# Criterion filters everything out with a pattern that names no benchmark.
criterion_args=(only-the-side-by-side-ratios)
[ "${CARELEDGER_BENCH_CRITERION:-0}" = 1 ] && criterion_args=()

echo "building release benches..." >&2
cargo bench -p careledger --features nats --no-run >&2
[[ " $benches " == *" c_api "* ]] && cargo bench -p careledger-ffi --no-run >&2

rows=$(mktemp)
for bench in $benches; do
    echo "== $bench" >&2
    if [ "$bench" = c_api ]; then
        cmd=(cargo bench -q -p careledger-ffi --bench c_api -- "${criterion_args[@]}")
    else
        cmd=(cargo bench -q -p careledger --features nats --bench "$bench" -- "${criterion_args[@]}")
    fi
    if ! "${cmd[@]}" >"$logs/$bench.log" 2>&1; then
        echo "bench $bench failed; see $logs/$bench.log" >&2
        printf 'RATIO\t%s\tfailed (see %s)\t\t\t\t\t\n' "$bench" "$logs/$bench.log" >>"$rows"
        continue
    fi
    grep -E '^(RATIO|SKIPPED)' "$logs/$bench.log" | sed "s/^SKIPPED/RATIO\t$bench\tSKIPPED/" >>"$rows" || true
    grep -E '^RATIO' "$logs/$bench.log" | cut -f3,6 | sed 's/^/  /' >&2 || true
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
{
    echo "# Benchmark ratios"
    echo
    echo "Written by \`bash tests/bench.sh\` on $(date -u +%Y-%m-%d). Each benchmark measures careledger and"
    echo "its peer in the same run (interleaved where both sides are in-process) and prints the ratio."
    echo "Time ratios are careledger / peer (lower is better); rate ratios (AEAD) are careledger / peer"
    echo "(higher is better). Logs: \`target/bench/<bench>.log\`."
    echo
    echo "Machine: $cpu, $(nproc) vCPU, $mem, $(uname -sm), $(rustc --version | cut -d' ' -f1-2),"
    echo "release build; load average at the end of the run: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| bench | case | careledger | peer | ratio | goal | |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6, $7, $8 }' "$rows"
} >"$out"
rm -f "$rows"
echo "wrote $out" >&2
cat "$out"
