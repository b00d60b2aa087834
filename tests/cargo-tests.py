#!/usr/bin/env python3
"""`cargo test --no-fail-fast` for the whole workspace, with the test binaries
run two at a time instead of one after another.

    python3 tests/cargo-tests.py [-j JOBS]        (default: the number of CPUs)

Cargo builds every test binary once (`cargo test --no-run`); this script then
runs them as `cargo test` would (working directory = the crate's directory,
the same CARGO_* variables), JOBS at a time, and prints each binary's whole
output as one block, in cargo's own order, so the log reads the same however
the binaries interleaved. The binaries that talk to the NATS test servers run
one after another in a single lane (one of them stops and restarts the
servers). Doc tests run last through cargo. Exits non-zero if any binary
failed, naming them like cargo does.

Why: most of the suite's time is a few long binaries (the NATS relay waits on
server restarts, kill -9 and disk-fault runs spawn processes), and cargo runs
binaries strictly one at a time.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# Test binaries that use the NATS servers (tests/nats/servers.sh): one lane.
NATS_LANE = {"nats", "nats_relay", "fl_processes"}
# The longest of the others start first, so the two lanes end together.
LONG_FIRST = ["io_faults", "crash_kill9", "convergence", "interaction", "cli",
              "tamper_at_rest", "verifiable_ai", "roundtrip"]


def build(root):
    """Build every test binary; return them in cargo's order."""
    cmd = ["cargo", "test", "--no-run",
           "--message-format=json-render-diagnostics"]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
    binaries = []
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        if not msg["profile"]["test"]:
            continue
        target = msg["target"]
        kind = target["kind"][0]
        src = os.path.relpath(target["src_path"], os.path.dirname(msg["manifest_path"]))
        label = f"unittests {src}" if kind in ("lib", "bin") else src
        binaries.append({
            "name": target["name"],
            "label": label,
            "exe": msg["executable"],
            "dir": os.path.dirname(msg["manifest_path"]),
            "kind": kind,
        })
    if proc.wait() != 0:
        sys.exit(proc.returncode)
    # Cargo's order: package, then library, binaries, integration tests.
    order = {"lib": 0, "bin": 1}
    binaries.sort(key=lambda b: (b["dir"], order.get(b["kind"], 2), b["label"]))
    return binaries


def package_env(binary):
    """The CARGO_* variables `cargo test` gives a test binary."""
    env = dict(os.environ)
    manifest = os.path.join(binary["dir"], "Cargo.toml")
    meta = PACKAGES.get(manifest, {})
    env["CARGO_MANIFEST_DIR"] = binary["dir"]
    env["CARGO_MANIFEST_PATH"] = manifest
    env["CARGO_PKG_NAME"] = meta.get("name", "")
    env["CARGO_PKG_VERSION"] = meta.get("version", "")
    env["CARGO_CRATE_NAME"] = binary["name"].replace("-", "_")
    return env


def run(binary):
    start = time.monotonic()
    proc = subprocess.run([binary["exe"]], cwd=binary["dir"], env=package_env(binary),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    binary["output"] = proc.stdout.decode("utf-8", "replace")
    binary["status"] = proc.returncode
    binary["seconds"] = time.monotonic() - start
    return binary


def run_lane(binaries):
    return [run(b) for b in binaries]


PACKAGES = {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version=1"], cwd=root,
        stdout=subprocess.PIPE, check=True).stdout)
    for pkg in meta["packages"]:
        PACKAGES[pkg["manifest_path"]] = pkg

    binaries = build(root)
    nats = [b for b in binaries if b["name"] in NATS_LANE]
    rest = [b for b in binaries if b["name"] not in NATS_LANE]
    rest.sort(key=lambda b: LONG_FIRST.index(b["name"]) if b["name"] in LONG_FIRST
              else len(LONG_FIRST))
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        lanes = [pool.submit(run_lane, nats)] if nats else []
        lanes += [pool.submit(run_lane, [b]) for b in rest]
        for lane in lanes:
            lane.result()

    failed = []
    for b in binaries:
        print(f"     Running {b['label']} ({os.path.relpath(b['exe'], root)})", flush=True)
        sys.stdout.write(b["output"])
        if b["status"] != 0:
            failed.append(b)
    sys.stdout.flush()

    doc = subprocess.run(["cargo", "test", "--doc", "--no-fail-fast"], cwd=root)

    if failed or doc.returncode != 0:
        names = [f"`-p {PACKAGES[os.path.join(b['dir'], 'Cargo.toml')]['name']} --{kind(b)}`"
                 for b in failed]
        if doc.returncode != 0:
            names.append("doc tests")
        print(f"error: {len(names)} target{'s' if len(names) != 1 else ''} failed:")
        for n in names:
            print(f"    {n}")
        return 101
    return 0


def kind(b):
    if b["label"].startswith("unittests"):
        return "lib" if b["label"].endswith("lib.rs") else f"bin {b['name']}"
    return f"test {b['name']}"


if __name__ == "__main__":
    sys.exit(main())
