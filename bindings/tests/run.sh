#!/usr/bin/env bash
# The bindings' tests, from any directory, on a fresh machine or a warm one:
#
#   1. install what is missing: a JDK, JNA (Debian libjna-java), kotlinc (the
#      npm registry's kotlin-compiler package, unpacked into a cache dir; see
#      bindings/package/jvm/tools.sh);
#   2. drift check: regenerate the Python/Kotlin/Swift bindings from the built
#      library and fail if the committed copies differ (bindings/generate.sh);
#   3. build the library with the test-only `panic-probe` feature;
#   4. run the Python scenarios (python3, standard library unittest): the
#      phone and the hospital (test_scenario), consent and verifiable AI
#      (test_consent_ai), federated tasks under secure aggregation
#      (test_federated), rules that adjudicate claims by themselves
#      (test_rules);
#   5. build the jar apps use (bindings/package/jvm/jar.sh --profile dev),
#      compile the Kotlin scenarios (Scenario.kt, ConsentAi.kt, Rules.kt)
#      against it alone, and run them on the JVM with the panic-probe library
#      first on JNA's path.
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

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "tools"
# JDK, JNA and kotlinc: found or installed (bindings/package/jvm/tools.sh).
# shellcheck source=bindings/package/jvm/tools.sh
source "$root/bindings/package/jvm/tools.sh"
command -v python3 >/dev/null 2>&1 || jvm_tools_apt_install python3
jvm_tools
echo "python3: $(python3 --version 2>&1)"
echo "java:    $(java -version 2>&1 | head -n 1)"
echo "jna:     $jna"
echo "kotlinc: $kotlinc"

step "drift check of the generated bindings"
drift=ok
bash bindings/generate.sh --check || drift=failed

step "the jar apps use (bindings/package/jvm/jar.sh --profile dev)"
# Built from the default (app) library the drift check just built; the Kotlin
# scenarios compile against it alone and run below with the probe library
# put first on JNA's path.
jar_status=0
careledger_jar=$(bash bindings/package/jvm/jar.sh --profile dev) || jar_status=$?
careledger_jar=$(tail -n 1 <<<"$careledger_jar")

step "build the library (debug, feature panic-probe)"
cargo build --quiet --locked -p careledger-uniffi --features panic-probe
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
library_dir="$target_dir/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug"
case "$(uname -s)" in
    Darwin) library="$library_dir/libcareledger_uniffi.dylib" ;;
    *) library="$library_dir/libcareledger_uniffi.so" ;;
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
kotlin_log="$work/kotlin.log"
kotlin_status=$jar_status
[ "$kotlin_status" -ne 0 ] || program=$(jvm_scenario_program "$careledger_jar" "$target_dir/bindings-tests/kotlin") || kotlin_status=$?
if [ "$kotlin_status" -eq 0 ]; then
    echo "(the 'panicked at bindings/src/probe.rs' line below is the panic test's deliberate panic)"
    # jna.library.path comes before the class path, so the probe library
    # wins over the one inside the jar.
    java -Djna.library.path="$lib_dir" -cp "$program:$careledger_jar:$jna" ScenarioKt \
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
