# The JVM tools careledger's jar and Kotlin tests need, found or installed.
# Sourced (not run) by bindings/package/jvm/jar.sh and bindings/tests/run.sh:
#
#   source bindings/package/jvm/tools.sh && jvm_tools
#
# sets `jna` (a jna.jar) and `kotlinc` (a kotlinc of major version 2 or
# later), installing what is missing: Java (Debian openjdk-17-jdk-headless),
# JNA (Debian libjna-java, /usr/share/java/jna.jar) and kotlinc 2.4.20 (the npm
# registry's kotlin-compiler package, unpacked once into
# ${XDG_CACHE_HOME:-~/.cache}/careledger/kotlin-2.4.20).
# Environment: KOTLINC (a kotlinc to use), JNA_JAR (a jna.jar to use).

KOTLIN_VERSION=2.4.20

jvm_tools_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

jvm_tools_apt_install() {
    command -v apt-get >/dev/null 2>&1 || {
        echo "cannot install $* (no apt-get); install it by hand" >&2
        return 1
    }
    if [ -z "${jvm_tools_apt_updated:-}" ]; then
        jvm_tools_as_root apt-get update -qq
        jvm_tools_apt_updated=1
    fi
    jvm_tools_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A kotlinc of major version 2 or later?
jvm_tools_kotlinc_ok() {
    local version
    version=$("$1" -version 2>&1 | sed -n 's/.*kotlinc-jvm \([0-9][0-9]*\)\..*/\1/p' | head -n 1)
    [ -n "$version" ] && [ "$version" -ge 2 ]
}

jvm_tools() {
    command -v java >/dev/null 2>&1 && command -v jar >/dev/null 2>&1 ||
        jvm_tools_apt_install openjdk-17-jdk-headless
    jna="${JNA_JAR:-/usr/share/java/jna.jar}"
    [ -f "$jna" ] || jvm_tools_apt_install libjna-java
    kotlinc="${KOTLINC:-}"
    if [ -z "$kotlinc" ] && command -v kotlinc >/dev/null 2>&1 && jvm_tools_kotlinc_ok kotlinc; then
        kotlinc=kotlinc
    fi
    if [ -z "$kotlinc" ]; then
        local cache="${XDG_CACHE_HOME:-$HOME/.cache}/careledger"
        local home="$cache/kotlin-$KOTLIN_VERSION"
        if [ ! -x "$home/bin/kotlinc" ]; then
            command -v npm >/dev/null 2>&1 || jvm_tools_apt_install npm
            echo "installing kotlinc $KOTLIN_VERSION (npm kotlin-compiler) into $home" >&2
            local unpack
            unpack=$(mktemp -d)
            (cd "$unpack" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null)
            mkdir -p "$unpack/kotlin" "$cache"
            tar -xzf "$unpack/kotlin-compiler-$KOTLIN_VERSION.tgz" -C "$unpack/kotlin"
            chmod +x "$unpack/kotlin/package/bin/"*
            rm -rf "$home"
            mv "$unpack/kotlin/package" "$home"
            rm -rf "$unpack"
        fi
        kotlinc="$home/bin/kotlinc"
    fi
}

# Compiles the Kotlin scenarios (bindings/tests/kotlin/*.kt) against the
# careledger jar alone (JNA is needed to run them, not to compile), once per
# source, generated bindings and
# compiler: bindings/tests/run.sh runs them against a panic-probe library,
# tests/packages/jvm.sh against the jar's own. Prints the program jar's path.
jvm_scenario_program() { # jvm_scenario_program CARELEDGER_JAR OUT_DIR
    local careledger_jar=$1 out=$2 stamp started
    local sources=(bindings/tests/kotlin/*.kt)
    stamp=$({ cat bindings/kotlin/uniffi/careledger/careledger.kt "${sources[@]}"; echo "$kotlinc"; } |
        { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; } | cut -d' ' -f1)
    mkdir -p "$out"
    if [ -f "$out/scenario.jar" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "scenario.jar is up to date" >&2
    else
        rm -f "$out/stamp"
        started=$(date +%s)
        "$kotlinc" -nowarn -cp "$careledger_jar" -include-runtime -d "$out/scenario.jar" "${sources[@]}" >&2
        echo "kotlinc (scenarios against the jar) took $(($(date +%s) - started))s" >&2
        echo "$stamp" >"$out/stamp"
    fi
    echo "$out/scenario.jar"
}
