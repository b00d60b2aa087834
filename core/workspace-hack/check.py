"""Checks that the package builds reuse the test build's dependencies.

For each package build CI makes (maturin's and the jar's careledger-uniffi,
the bindings tests' panic-probe build, cargo-c's careledger-ffi, the
uniffi-bindgen tool), compares the features cargo resolves for every
third-party crate with those of the default members' build with
dev-dependencies (what `cargo test` compiles). Any difference means that
package build would compile its own copy of that crate and of everything
above it. Prints one line per build and exits 1 on a difference.

    python3 core/workspace-hack/check.py

Fix a difference with `bash core/workspace-hack/generate.sh`.
"""

import subprocess
import sys

BUILDS = [
    ["-p", "careledger-uniffi"],
    ["-p", "careledger-uniffi", "--features", "panic-probe"],
    ["-p", "careledger-ffi", "--features", "capi"],
    ["-p", "uniffi-bindgen"],
]


def host() -> str:
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("host: "))


def features(args: list[str], target: str) -> dict[str, set[str]]:
    """Third-party crate "name version" -> the feature lists it is built with."""
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--target", target, "--prefix", "none", "-f", "{p} {f}", *args],
        capture_output=True, text=True, check=True,
    ).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        line = line.removesuffix("(*)").strip()
        if not line or " (/" in line:  # blank, or a workspace member (a path)
            continue
        name, version, *rest = line.split(" ")
        found.setdefault(f"{name} {version}", set()).add(" ".join(rest))
    return found


def main() -> int:
    target = host()
    tests = features(["-e", "normal,build,dev"], target)
    bad = 0
    for args in BUILDS:
        build = features([*args, "-e", "normal,build"], target)
        other = {k: v for k, v in sorted(build.items()) if v != tests.get(k)}
        print(f"{' '.join(args)}: {len(build)} dependencies, {len(other)} resolved differently")
        for crate, feats in other.items():
            print(f"    {crate}: {sorted(feats)} here, {sorted(tests.get(crate, set()))} in the test build")
        bad += len(other)
    if bad:
        print("run `bash core/workspace-hack/generate.sh` (core/workspace-hack/Cargo.toml)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
