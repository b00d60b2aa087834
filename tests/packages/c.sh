#!/usr/bin/env bash
# The C package, installed and used as docs/guides/c.md says: cargo-c's
# `cargo cinstall` into an empty prefix (~/.local of a new HOME), the EHR
# example built with `pkg-config --cflags --libs careledger` alone and with
# CMake, and run; the guide's program built shared and static, and run. Then:
# the installed header is the committed one, its CARELEDGER_VERSION is the
# workspace version and equals the loaded library's careledger_version(), and
# the installed files are listed with their sizes.
#
#   bash tests/packages/c.sh
#
# Installs what is missing: cargo-c (CARGO_C_VERSION, built with --debug and
# no debug info: under 3 minutes here, a third of the release build the guide
# shows), cmake, pkg-config and OpenSSL's headers (Debian; cargo-c links
# OpenSSL).
# The guide's --release becomes --profile package-c here (Cargo.toml: the dev
# profile with unoptimised dependencies), built in a target dir of its own
# (<target>/package-c): cargo-c reuses nothing cargo built and, on its first
# run in a target dir, rebuilds every unit there, so it is kept away from the
# other stages' builds. PACKAGE_C_PROFILE overrides the profile.
PACKAGE_PROFILE=${PACKAGE_C_PROFILE:-package-c}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export CARGO_TARGET_DIR="$target_dir/package-c"
CARGO_C_VERSION=0.10.24

step "c: tools"
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl || missing+=(libssl-dev)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "install ${missing[*]} (apt-get)" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! cargo cinstall --version >/dev/null 2>&1; then
    echo "installing cargo-c $CARGO_C_VERSION (cargo install --debug; once per machine)"
    started=$(date +%s)
    # Its own target dir, removed after: nothing in it is shared with careledger's.
    cargo_c_build=$(mktemp -d "${TMPDIR:-/tmp}/cargo-c-build.XXXXXX")
    env -u CARGO_BUILD_TARGET CARGO_TARGET_DIR="$cargo_c_build" CARGO_PROFILE_DEV_DEBUG=false \
        CARGO_PROFILE_DEV_STRIP=debuginfo cargo install --locked --quiet --debug cargo-c --version "=$CARGO_C_VERSION"
    rm -rf "$cargo_c_build"
    echo "cargo-c installed in $(($(date +%s) - started))s"
fi
echo "$(cargo cinstall --version 2>&1 | head -n 1); $(cmake --version | head -n 1); pkg-config $(pkg-config --version)"

step "c: the guide (docs/guides/c.md)"
run_guide c docs/guides/c.md

step "c: what was installed"
prefix="$fresh_home/.local"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
(cd "$prefix" && find . \( -type f -o -type l \) -printf '%s %p %l\n' | sort -k2 |
    awk '{ printf "  %11s  %s%s\n", ($3 == "" ? sprintf("%\047d", $1) : "link"), substr($2, 3), ($3 == "" ? "" : " -> " $3) }')
cmp "$prefix/include/careledger.h" include/careledger.h ||
    { echo "the installed header is not include/careledger.h" >&2; exit 1; }
echo "SONAME: $(readelf -d "$prefix/lib/libcareledger.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
echo "pkg-config --static --libs careledger: $(pkg-config --static --libs careledger)"

step "c: versions"
cat >"$work/version.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "careledger.h"
#if CARELEDGER_VERSION_NUMBER != CARELEDGER_VERSION_MAJOR * 1000000 + CARELEDGER_VERSION_MINOR * 1000 + CARELEDGER_VERSION_PATCH
#error "CARELEDGER_VERSION_NUMBER does not match its parts"
#endif
int main(void) {
    char parts[64];
    snprintf(parts, sizeof parts, "%d.%d.%d", CARELEDGER_VERSION_MAJOR, CARELEDGER_VERSION_MINOR, CARELEDGER_VERSION_PATCH);
    printf("%s %s %s\n", CARELEDGER_VERSION, parts, careledger_version());
    return strcmp(parts, CARELEDGER_VERSION) != 0;
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$work/version" "$work/version.c" $(pkg-config --cflags --libs careledger) \
    -Wl,-rpath,"$(pkg-config --variable=libdir careledger)"
read -r header_version parts library_version < <("$work/version")
record_version "C header CARELEDGER_VERSION" "$header_version"
record_version "C header CARELEDGER_VERSION_MAJOR.MINOR.PATCH" "$parts"
record_version "C library careledger_version()" "$library_version"
record_version "pkg-config careledger" "$(pkg-config --modversion careledger)"

stage_done c
