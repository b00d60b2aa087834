#!/usr/bin/env bash
# Build careledger's JVM package: one jar holding the Kotlin bindings
# (package uniffi.careledger, compiled by kotlinc) and the native library
# where JNA looks for it on the class path (<os>-<arch>/, e.g.
# linux-x86-64/libcareledger_uniffi.so), plus a Maven POM naming its two
# dependencies, JNA and the Kotlin standard library.
#
#   bash bindings/package/jvm/jar.sh [--release | --profile NAME] [--out DIR]
#
# --release (the default) builds the library in cargo's release profile;
# --profile dev is what CI uses. Writes DIR/careledger-VERSION.jar and
# DIR/careledger-VERSION.pom (DIR defaults to <cargo target dir>/packages)
# and prints the jar's path last. VERSION is the workspace version, the one
# the CLI, the C header and the wheel show.
#
# The native library is built for this machine only: a jar for several
# platforms holds one such directory per platform (see docs/guides/apps.md).
# Compiled classes are kept in <target>/packages/jvm-classes and rebuilt only
# when the generated Kotlin source or kotlinc changes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"

profile=release
out=
while [ $# -gt 0 ]; do
    case $1 in
        --release) profile=release ;;
        --profile) profile=${2:?--profile needs a name}; shift ;;
        --profile=*) profile=${1#--profile=} ;;
        --out) out=${2:?--out needs a directory}; shift ;;
        --out=*) out=${1#--out=} ;;
        *) echo "usage: bash bindings/package/jvm/jar.sh [--release | --profile NAME] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=bindings/package/jvm/tools.sh
source "$root/bindings/package/jvm/tools.sh"
jvm_tools

metadata=$(cargo metadata --format-version 1 --no-deps --locked)
read -r target_dir version < <(python3 -c '
import json, sys
m = json.load(sys.stdin)
v = next(p["version"] for p in m["packages"] if p["name"] == "careledger-uniffi")
print(m["target_directory"], v)' <<<"$metadata")
case $profile in
    dev | test) profile_dir=debug ;;
    release | bench) profile_dir=release ;;
    *) profile_dir=$profile ;;
esac
out=${out:-$target_dir/packages}
mkdir -p "$out"

# Where JNA looks on the class path: com.sun.jna.Platform.RESOURCE_PREFIX.
case "$(uname -s)" in
    Linux) os=linux; library=libcareledger_uniffi.so ;;
    Darwin) os=darwin; library=libcareledger_uniffi.dylib ;;
    *) echo "jar.sh: unsupported system $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) arch=x86-64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) echo "jar.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
resource_prefix=$os-$arch

echo "jar: building libcareledger_uniffi ($profile profile)" >&2
cargo build --quiet --locked -p careledger-uniffi --profile "$profile"
# An explicit target (CARGO_BUILD_TARGET) puts the build under its own directory.
native="$target_dir/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}$profile_dir/$library"

# Compile the generated bindings once per source and compiler.
generated=bindings/kotlin/uniffi/careledger/careledger.kt
classes="$target_dir/packages/jvm-classes"
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
kotlin_version=$("$kotlinc" -version 2>&1 | sed -n 's/.*kotlinc-jvm \([0-9][0-9.]*\).*/\1/p' | head -n 1)
stamp=$({ cat "$generated"; echo "$kotlinc $kotlin_version $jna"; } | sha256 | cut -d' ' -f1)
if [ "$(cat "$classes/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$classes"
    mkdir -p "$classes"
    echo "jar: compiling the Kotlin bindings (kotlinc $kotlin_version)" >&2
    started=$(date +%s)
    "$kotlinc" -nowarn -module-name careledger -cp "$jna" -d "$classes" "$generated"
    echo "jar: kotlinc took $(($(date +%s) - started))s" >&2
    echo "$stamp" >"$classes/.stamp"
fi

# The JNA version the bindings were compiled and tested against.
jna_version=$(python3 -c '
import re, sys, zipfile
manifest = zipfile.ZipFile(sys.argv[1]).read("META-INF/MANIFEST.MF").decode()
match = re.search(r"^Implementation-Version: *([0-9][0-9.]*)", manifest, re.M)
print(match.group(1) if match else "")' "$jna")
[ -n "$jna_version" ] || { echo "jar: no Implementation-Version in $jna" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/native/$resource_prefix" "$stage/meta/META-INF/maven/careledger/careledger"
cp "$native" "$stage/native/$resource_prefix/$library"
pom="$stage/meta/META-INF/maven/careledger/careledger/pom.xml"
cat >"$pom" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>careledger</groupId>
  <artifactId>careledger</artifactId>
  <version>$version</version>
  <packaging>jar</packaging>
  <name>careledger</name>
  <description>Kotlin/JVM bindings of careledger (FHIR records shared over MLS networks on a sealed, signed ledger), with the native library for $resource_prefix.</description>
  <licenses>
    <license><name>Apache-2.0</name></license>
  </licenses>
  <dependencies>
    <dependency>
      <groupId>net.java.dev.jna</groupId>
      <artifactId>jna</artifactId>
      <version>$jna_version</version>
    </dependency>
    <dependency>
      <groupId>org.jetbrains.kotlin</groupId>
      <artifactId>kotlin-stdlib</artifactId>
      <version>$kotlin_version</version>
    </dependency>
  </dependencies>
</project>
POM
printf 'groupId=careledger\nartifactId=careledger\nversion=%s\n' "$version" \
    >"$stage/meta/META-INF/maven/careledger/careledger/pom.properties"
cat >"$stage/manifest.txt" <<MANIFEST
Implementation-Title: careledger
Implementation-Version: $version
Automatic-Module-Name: uniffi.careledger
Careledger-Native-Library: $resource_prefix/$library
Careledger-Build-Profile: $profile
MANIFEST

jar_file="$out/careledger-$version.jar"
rm -f "$jar_file"
# One fixed timestamp for every entry (SOURCE_DATE_EPOCH if set), so the
# same inputs give the same jar.
stamp_date=1980-01-01T00:00:02Z
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    stamp_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
fi
jar --create --file "$jar_file" --manifest "$stage/manifest.txt" --date="$stamp_date" \
    -C "$classes" uniffi -C "$classes" META-INF \
    -C "$stage/native" "$resource_prefix" -C "$stage/meta" META-INF
cp "$pom" "$out/careledger-$version.pom"
echo "$jar_file"
