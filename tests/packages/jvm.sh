#!/usr/bin/env bash
# The JVM package, built and used as docs/guides/apps.md says: jar.sh builds
# careledger-VERSION.jar, the guide's Kotlin program is compiled against it
# and run with JNA on the class path. Then: the Kotlin scenarios
# (bindings/tests/kotlin/) compiled against the jar alone and run on the
# jar's own native library (no jna.library.path), with
# CARELEDGER_PANIC_PROBE=absent (an app build has no panic probe, which
# Scenario.kt checks); the manifest's and POM's version; the jar's contents
# and sizes.
#
#   bash tests/packages/jvm.sh
#
# Installs what is missing: a JDK, JNA, kotlinc (bindings/package/jvm/tools.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$root/bindings/package/jvm/tools.sh"

step "jvm: tools"
jvm_tools
echo "java: $(java -version 2>&1 | head -n 1); jna: $jna; kotlinc: $kotlinc"
# The guide calls `kotlinc` and names Debian's JNA.
kotlinc_dir=$(dirname "$(command -v "$kotlinc")")
[ "$jna" = /usr/share/java/jna.jar ] ||
    echo "note: JNA_JAR=$jna, the guide's commands use /usr/share/java/jna.jar" >&2

step "jvm: the guide (docs/guides/apps.md)"
PATH="$kotlinc_dir:$PATH" run_guide jvm docs/guides/apps.md
jar_file="$fresh_home/careledger-app/libs/careledger-$workspace_version.jar"
[ -f "$jar_file" ] || { echo "no $jar_file" >&2; exit 1; }

step "jvm: the jar"
zip_contents "$jar_file"
manifest_version=$(python3 - "$jar_file" <<'PY'
import re, sys, zipfile
manifest = zipfile.ZipFile(sys.argv[1]).read("META-INF/MANIFEST.MF").decode()
print(re.search(r"^Implementation-Version: *(\S+)", manifest, re.M).group(1))
PY
)
record_version "JVM jar (manifest Implementation-Version)" "$manifest_version"
record_version "JVM jar (POM)" "$(sed -n 's:^  <version>\(.*\)</version>$:\1:p' "${jar_file%.jar}.pom")"

step "jvm: the Kotlin scenarios against the jar alone"
program=$(jvm_scenario_program "$jar_file" "$target_dir/bindings-tests/kotlin")
kotlin_log="$work/kotlin.log"
(cd "$work" && env CARELEDGER_PANIC_PROBE=absent RUST_BACKTRACE=0 \
    java -cp "$program:$jar_file:$jna" ScenarioKt "$root/bindings/tests/data/patient.ndjson" "$work/run") 2>&1 |
    tee "$kotlin_log"
grep -q '^ok   an app build has no panic probe$' "$kotlin_log" ||
    { echo "the app-build check did not run" >&2; exit 1; }
grep -q '^kotlin: [1-9][0-9]* passed, 0 failed$' "$kotlin_log"

stage_done jvm
