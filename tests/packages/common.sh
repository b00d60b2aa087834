# Shared by the package stages (tests/packages/{c,python,jvm}.sh); sourced.
#
# Each stage installs a package the way its guide says, as a new user would:
# it runs the guide's `package=NAME` blocks as written (docs/guides/*.md,
# tests/docs/blocks.py), from the checkout, with HOME set to a new empty
# directory, after writing the guide's programs (`file=NAME` blocks) into
# ~/careledger-app. The one change: `--release` becomes `--profile dev`
# (PACKAGE_PROFILE), because a release build of the dependency tree takes
# minutes on the CI machine. Then the stage checks what the guide's commands
# do not show, and prints the package's contents and sizes.

set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
PACKAGE_PROFILE=${PACKAGE_PROFILE:-dev}
stage_started=$(date +%s)

# The workspace version every package must carry, and cargo's target dir.
read -r workspace_version target_dir < <(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c '
import json, sys
m = json.load(sys.stdin)
print(next(p["version"] for p in m["packages"] if p["name"] == "careledger-ffi"), m["target_directory"])')

real_home=$HOME
# Tools and caches stay where they are; everything the user makes goes to the new HOME.
export CARGO_HOME="${CARGO_HOME:-$real_home/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}"
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$real_home/.cache}"
work=$(mktemp -d "${TMPDIR:-/tmp}/careledger-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
fresh_home="$work/home"
mkdir -p "$fresh_home/careledger-app"

step() { echo "== package $*"; }

# Writes the guide's programs for PACKAGE into ~/careledger-app, then runs
# its sh blocks for PACKAGE in one bash session from the checkout.
run_guide() { # run_guide PACKAGE GUIDE
    local package=$1 guide=$2 script replaced
    python3 tests/docs/blocks.py files "$package" "$fresh_home/careledger-app" "$guide" >/dev/null
    script=$(python3 tests/docs/blocks.py script "$guide" "$package")
    [ -n "$script" ] || { echo "no package=$package blocks in $guide" >&2; return 1; }
    replaced=$(grep -c -- '--release' <<<"$script" || true)
    [ "$replaced" -gt 0 ] || { echo "$guide builds nothing with --release" >&2; return 1; }
    script=${script//--release/--profile $PACKAGE_PROFILE}
    echo "(running $guide's package=$package blocks; --release -> --profile $PACKAGE_PROFILE)"
    (cd "$root" && HOME="$fresh_home" bash -euo pipefail -c "$script" </dev/null)
}

# Prints "PATH SIZE" for each member of a zip (wheel, jar), then the total.
zip_contents() { # zip_contents FILE
    python3 - "$1" <<'PY'
import os, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as archive:
    for info in archive.infolist():
        if not info.is_dir():
            print(f"  {info.file_size:>11,}  {info.filename}")
print(f"  {os.path.getsize(path):>11,}  {os.path.basename(path)} (compressed)")
PY
}

# Appends "WHAT VERSION" to the versions file tests/packages/run.sh compares.
record_version() { # record_version WHAT VERSION
    echo "$1 $2" >>"${PACKAGE_VERSIONS_FILE:-/dev/null}"
    if [ "$2" != "$workspace_version" ]; then
        echo "$1 shows version $2, not the workspace's $workspace_version" >&2
        return 1
    fi
}

stage_done() { echo "== package $1: passed ($(($(date +%s) - stage_started))s)"; }
