#!/usr/bin/env bash
# The Python package, built and used as docs/guides/apps.md says: maturin
# builds the wheel, pip installs it into a new virtualenv, the guide's program
# runs. Then, against the installed package and not the source tree:
#   - the Python scenarios (bindings/tests/python/), copied out of the
#     checkout, with CARELEDGER_PANIC_PROBE=absent (an app build has no panic
#     probe, which test_scenario checks);
#   - mypy's stubtest: the stubs (careledger/__init__.pyi) against the module;
#   - mypy --strict on the guide's program;
#   - the wheel's metadata version; its contents and sizes.
#
#   bash tests/packages/python.sh
#
# Needs python3 with venv; maturin and mypy come from PyPI (pinned).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
MYPY_VERSION=2.4.1

step "python: the guide (docs/guides/apps.md)"
run_guide python docs/guides/apps.md
app="$fresh_home/careledger-app"
venv="$app/venv"
wheels=("$app"/dist/careledger-*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "expected one wheel, found: ${wheels[*]}" >&2; exit 1; }
wheel=${wheels[0]}

step "python: the wheel"
echo "$(basename "$wheel")"
zip_contents "$wheel"
"$venv/bin/python" - "$workspace_version" <<'PY'
import importlib.metadata as metadata, sys
meta = metadata.metadata("careledger")
for field in ("Name", "Version", "Summary", "Requires-Python", "License-Expression"):
    print(f"  {field}: {meta.get(field)}")
assert meta["Name"] == "careledger" and meta.get("Requires-Python"), "PEP 621 metadata"
PY
record_version "Python wheel (importlib.metadata)" "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("careledger"))')"
case $(basename "$wheel") in
    "careledger-$workspace_version-"*) ;;
    *) echo "the wheel's file name does not carry $workspace_version" >&2; exit 1 ;;
esac

step "python: the scenarios against the installed package"
scenarios="$work/scenarios"
mkdir -p "$scenarios/python" "$scenarios/data"
cp bindings/tests/python/*.py "$scenarios/python/"
cp bindings/tests/data/* "$scenarios/data/"
(cd "$scenarios/python" && env -u PYTHONPATH PYTHONDONTWRITEBYTECODE=1 CARELEDGER_PANIC_PROBE=absent \
    "$venv/bin/python" -c '
import careledger, sys
where = careledger.__file__
assert where.startswith(sys.prefix), f"careledger imported from {where}, not the virtualenv"
print("careledger from", where)')
python_log="$work/python.log"
(cd "$scenarios/python" && env -u PYTHONPATH PYTHONDONTWRITEBYTECODE=1 CARELEDGER_PANIC_PROBE=absent \
    RUST_BACKTRACE=0 "$venv/bin/python" -m unittest -v test_scenario test_consent_ai test_federated test_rules) 2>&1 | tee "$python_log"
grep -q '^test_an_app_build_has_no_panic_probe .* ok$' "$python_log" ||
    { echo "the app-build check did not run" >&2; exit 1; }

step "python: type stubs (mypy $MYPY_VERSION stubtest, mypy --strict)"
"$venv/bin/pip" install --quiet "mypy==$MYPY_VERSION"
# The allowlist names what the stubs leave out on purpose, each with its reason.
(cd "$work" && "$venv/bin/python" -m mypy.stubtest careledger \
    --mypy-config-file "$root/bindings/package/python/mypy.ini" \
    --allowlist "$root/bindings/package/python/stubtest-allowlist.txt")
(cd "$app" && "$venv/bin/python" -m mypy --strict --no-error-summary app.py && echo "mypy --strict app.py: no issues")

stage_done python
