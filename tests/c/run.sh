#!/usr/bin/env bash
# Builds the C example (examples/c/) and the C API test suite (tests/c/)
# against the shared library and runs them, as a C integrator would:
#
#   bash tests/c/run.sh [plain|asan|valgrind|all]     (default: all)
#
# plain     gcc -std=c11 -Wall -Wextra -Werror -pedantic
# asan      the same with -fsanitize=address,undefined (leak checking on)
# valgrind  the plain build under valgrind: 0 errors and 0 leaks or it fails
# The C guide's program (docs/guides/c.md, "Your own program") is compiled and
# run too; tests/packages/c.sh builds it again against the installed package.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-all}
data=$root/examples/data/fhir
bundle=$data/synthea-hiv-bundles/bundle_0.json
ndjson=$data/bulk-10-patients/Patient.000.ndjson

cargo build --quiet --manifest-path "$root/Cargo.toml" -p careledger-ffi
# Where cargo put the library: CARGO_TARGET_DIR if set (relative to here, as
# cargo reads it), else the workspace's target/.
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
# An explicit target (CARGO_BUILD_TARGET, as tests/run-all.sh sets to share
# one dependency build with cargo-c's) builds under target/<triple>/.
libdir=$target/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The guide's program, between its markers, exactly as written.
awk '/<!-- c-snippet-start -->/ { on = 1; next } /<!-- c-snippet-end -->/ { on = 0 }
     on && !/^```/' "$root/docs/guides/c.md" > "$out/readme_snippet.c"
[ -s "$out/readme_snippet.c" ] || { echo "the C guide's program (docs/guides/c.md) not found" >&2; exit 1; }

cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -I"$root/include")
link=(-L"$libdir" -lcareledger_ffi -Wl,-rpath,"$libdir" -lpthread)

build() { # build FLAVOUR EXTRA_FLAGS...
    local flavour=$1; shift
    for program in "$root/examples/c/ehr_example.c" "$root/tests/c/c_api_test.c" "$out/readme_snippet.c"; do
        gcc "${cflags[@]}" "$@" -o "$out/$flavour-$(basename "$program" .c)" "$program" "${link[@]}"
    done
}

run_all() { # run FLAVOUR WRAPPER...
    local flavour=$1; shift
    local work
    work=$(mktemp -d "$out/work.XXXXXX")
    echo "-- $flavour: ehr_example"
    "$@" "$out/$flavour-ehr_example" "$bundle" "$work"
    echo "-- $flavour: c_api_test"
    "$@" "$out/$flavour-c_api_test" "$ndjson" "$work"
    echo "-- $flavour: the C guide's program"
    (cd "$work" && "$@" "$out/$flavour-readme_snippet")
}

case $mode in
plain | all)
    build plain
    run_all plain env
    # The same example linked statically, as the C guide shows.
    gcc "${cflags[@]}" -o "$out/static-ehr_example" "$root/examples/c/ehr_example.c" \
        "$libdir/libcareledger_ffi.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
    echo "-- static: ehr_example"
    "$out/static-ehr_example" "$bundle" "$(mktemp -d "$out/work.XXXXXX")"
    ;;&
asan | all)
    build asan -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_all asan env
    ;;&
valgrind | all)
    if ! command -v valgrind >/dev/null; then
        if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            apt-get install -y -q valgrind >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q valgrind >/dev/null; }
        else
            echo "valgrind is not installed: run 'sudo apt-get install -y valgrind'" >&2
            exit 1
        fi
    fi
    [ -x "$out/plain-c_api_test" ] || build plain
    run_all plain valgrind --quiet --error-exitcode=99 --leak-check=full \
        --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    ;;
plain | asan) ;;
*)
    echo "usage: $0 [plain|asan|valgrind|all]" >&2
    exit 2
    ;;
esac
echo "c: $mode passed"
