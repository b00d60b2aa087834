#!/usr/bin/env bash
# Regenerates the workspace-hack crate (core/workspace-hack/Cargo.toml) and
# the dependency line on it in every member, with cargo-hakari:
#
#   cargo install --locked cargo-hakari      (once)
#   bash core/workspace-hack/generate.sh
#
# Run it after adding, removing or changing the features of any dependency;
# then `python3 core/workspace-hack/check.py` must pass. hakari's settings
# live here (written to a temporary .config/hakari.toml, which is removed
# again: the repository's top level stays as it is).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
[ ! -e .config ] || { echo ".config/ exists; move it away first" >&2; exit 1; }
mkdir .config
trap 'rm -rf "$root/.config"' EXIT
cat >.config/hakari.toml <<'TOML'
hakari-package = "careledger-workspace-hack"
dep-format-version = "4"
resolver = "2"
# The platform CI builds on; add others when packages are built there.
platforms = ["x86_64-unknown-linux-gnu"]

[traversal-excludes]
# cargo-fuzz's crate builds on nightly only, never with the others.
workspace-members = ["careledger-fuzz"]
TOML
cargo hakari generate
cargo hakari manage-deps --yes
python3 core/workspace-hack/check.py
