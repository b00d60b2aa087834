#!/usr/bin/env bash
# The bindings' tests, from any directory, on a fresh machine or a warm one:
#
#   1. install what is missing: JNA (Debian libjna-java), kotlinc (the npm
#      registry's kotlin-compiler package, unpacked into a cache dir);
#   2. drift check: regenerate the Python/Kotlin/Swift bindings from the built
#      library and fail if the committed copies differ (bindings/generate.sh);
#   3. build the library with the test-only `panic-probe` feature;
#   4. run the Python scenarios (python3, standard library unittest): the
#      phone and the hospital (test_scenario), consent and verifiable AI
#      (test_consent_ai), federated tasks under secure aggregation
#      (test_federated), rules that adjudicate claims by themselves
#      (test_rules);
#   5. compile the Kotlin scenarios (Scenario.kt, ConsentAi.kt, Rules.kt) with kotlinc
#      and run them on the JVM.
#
# Ends with one line, e.g.
#   bindings: python 29 passed, kotlin 16 passed, generated sources up to date
# and exits non-zero if anything failed. Swift is generated and drift-checked
# but not run (no Swift toolchain on Linux CI); see bindings/README.md.
#
# Environment: KOTLINC (a kotlinc to use), JNA_JAR (a jna.jar to use),
# XDG_CACHE_HOME (where kotlinc is cached; default ~/.cache), CARGO_TARGET_DIR
# (where the library is built and the compiled Kotlin scenario is kept;
# default: the workspace's target/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
started=$(date +%s)
step() { echo; echo "== bindings: $* ($(($(date +%s) - started))s)"; }

KOTLIN_VERSION=2.4.20
cache="${XDG_CACHE_HOME:-$HOME/.cache}/careledger"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || {
        echo "bindings: cannot install $* (no apt-get); install it by hand" >&2
        return 1
    }
    if [ -z "${apt_updated:-}" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

step "tools"
command -v python3 >/dev/null 2>&1 || apt_install python3
command -v java >/dev/null 2>&1 || apt_install openjdk-17-jdk-headless
jna="${JNA_JAR:-/usr/share/java/jna.jar}"
if [ ! -f "$jna" ]; then
    apt_install libjna-java
fi

# A kotlinc of major version 2 or later: $KOTLINC, one on PATH, or the npm
# package's JVM distribution unpacked once into the cache.
kotlinc_ok() {
    local version
    version=$("$1" -version 2>&1 | sed -n 's/.*kotlinc-jvm \([0-9][0-9]*\)\..*/\1/p' | head -n 1)
    [ -n "$version" ] && [ "$version" -ge 2 ]
}
kotlinc="${KOTLINC:-}"
if [ -z "$kotlinc" ] && command -v kotlinc >/dev/null 2>&1 && kotlinc_ok kotlinc; then
    kotlinc=kotlinc
fi
if [ -z "$kotlinc" ]; then
    home="$cache/kotlin-$KOTLIN_VERSION"
    if [ ! -x "$home/bin/kotlinc" ]; then
        command -v npm >/dev/null 2>&1 || apt_install npm
        echo "installing kotlinc $KOTLIN_VERSION (npm kotlin-compiler) into $home"
        (cd "$work" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null)
        mkdir -p "$work/kotlin" "$cache"
        tar -xzf "$work/kotlin-compiler-$KOTLIN_VERSION.tgz" -C "$work/kotlin"
        chmod +x "$work/kotlin/package/bin/"*
        rm -rf "$home"
        mv "$work/kotlin/package" "$home"
    fi
    kotlinc="$home/bin/kotlinc"
fi
echo "python3: $(python3 --version 2>&1)"
echo "java:    $(java -version 2>&1 | head -n 1)"
echo "jna:     $jna"
echo "kotlinc: $kotlinc"

step "drift check of the generated bindings"
drift=ok
bash bindings/generate.sh --check || drift=failed

step "build the library (debug, feature panic-probe)"
cargo build --quiet --locked -p careledger-uniffi --features panic-probe
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
case "$(uname -s)" in
    Darwin) library="$target_dir/debug/libcareledger_uniffi.dylib" ;;
    *) library="$target_dir/debug/libcareledger_uniffi.so" ;;
esac
lib_dir="$work/lib"
mkdir -p "$lib_dir"
cp "$library" bindings/python/careledger.py "$lib_dir/"
data="$root/bindings/tests/data/patient.ndjson"
# The panic test panics on purpose; one line about it is enough.
export RUST_BACKTRACE=0

step "python scenarios"
echo "(the 'panicked at bindings/src/probe.rs' line below is the panic test's deliberate panic)"
python_log="$work/python.log"
python_status=0
(cd bindings/tests/python && PYTHONPATH="$lib_dir" PYTHONDONTWRITEBYTECODE=1 \
    python3 -m unittest -v test_scenario test_consent_ai test_federated test_rules) 2>&1 | tee "$python_log" || python_status=$?
python_ran=$(sed -n 's/^Ran \([0-9][0-9]*\) tests\{0,1\}.*/\1/p' "$python_log" | tail -n 1)
python_bad=$(awk '/^FAILED \(/ { n = 0; while (match($0, /(failures|errors|unexpected successes)=[0-9]+/)) {
        part = substr($0, RSTART, RLENGTH); sub(/.*=/, "", part); n += part; $0 = substr($0, RSTART + RLENGTH) }
    bad = n } END { print bad + 0 }' "$python_log")
python_skipped=$(sed -n 's/^\(OK\|FAILED\) (.*skipped=\([0-9][0-9]*\).*/\2/p' "$python_log" | tail -n 1)
python_ran=${python_ran:-0}
python_bad=${python_bad:-0}
python_skipped=${python_skipped:-0}
if [ "$python_status" -ne 0 ] && [ "$python_bad" -eq 0 ]; then python_bad=1; fi
python_passed=$((python_ran - python_bad - python_skipped))
[ "$python_passed" -ge 0 ] || python_passed=0

step "kotlin scenarios"
kotlin_out="$target_dir/bindings-tests/kotlin"
generated_kt=bindings/kotlin/uniffi/careledger/careledger.kt
scenario_kts=(bindings/tests/kotlin/*.kt)
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
stamp=$({ cat "$generated_kt" "${scenario_kts[@]}"; echo "$kotlinc"; } | sha256 | cut -d' ' -f1)
mkdir -p "$kotlin_out"
kotlin_status=0
if [ -f "$kotlin_out/scenario.jar" ] && [ "$(cat "$kotlin_out/stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "scenario.jar is up to date"
else
    rm -f "$kotlin_out/stamp"
    compile_started=$(date +%s)
    "$kotlinc" -nowarn -cp "$jna" -include-runtime -d "$kotlin_out/scenario.jar" \
        "$generated_kt" "${scenario_kts[@]}" || kotlin_status=$?
    echo "kotlinc took $(($(date +%s) - compile_started))s"
    [ "$kotlin_status" -ne 0 ] || echo "$stamp" >"$kotlin_out/stamp"
fi
kotlin_log="$work/kotlin.log"
if [ "$kotlin_status" -eq 0 ]; then
    echo "(the 'panicked at bindings/src/probe.rs' line below is the panic test's deliberate panic)"
    java -Djna.library.path="$lib_dir" -cp "$kotlin_out/scenario.jar:$jna" ScenarioKt \
        "$data" "$work/kotlin-run" 2>&1 | tee "$kotlin_log" || kotlin_status=$?
fi
kotlin_passed=$(sed -n 's/^kotlin: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p' "$kotlin_log" 2>/dev/null | tail -n 1)
kotlin_failed=$(sed -n 's/^kotlin: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p' "$kotlin_log" 2>/dev/null | tail -n 1)
kotlin_passed=${kotlin_passed:-0}
kotlin_failed=${kotlin_failed:-0}
if [ "$kotlin_status" -ne 0 ] && [ "$kotlin_failed" -eq 0 ]; then kotlin_failed=1; fi

step "done"
summary="bindings: python $python_passed passed"
[ "$python_bad" -eq 0 ] || summary="$summary, $python_bad failed"
summary="$summary, kotlin $kotlin_passed passed"
[ "$kotlin_failed" -eq 0 ] || summary="$summary, $kotlin_failed failed"
if [ "$drift" = ok ]; then
    summary="$summary, generated sources up to date"
else
    summary="$summary, generated sources OUT OF DATE (run: bash bindings/generate.sh)"
fi
echo "$summary"
[ "$python_bad" -eq 0 ] && [ "$python_passed" -gt 0 ] && [ "$kotlin_failed" -eq 0 ] &&
    [ "$kotlin_passed" -gt 0 ] && [ "$drift" = ok ]
