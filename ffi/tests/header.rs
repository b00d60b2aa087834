//! `include/careledger.h` is generated from this crate and committed; this
//! test regenerates it with the pinned cbindgen and fails on any difference.
//! Regenerate: `CARELEDGER_WRITE_HEADER=1 cargo test -p careledger-ffi --test header`.

use std::path::Path;

/// The version macros at the top of the header, from this crate's version
/// (the workspace's, the one every package shows). cbindgen copies only
/// numeric constants from Rust, and a version string written out by hand
/// would drift; written here, a version bump changes the header and this
/// test says to regenerate it.
fn version_macros() -> String {
    format!(
        "\n/**\n * The careledger version this header belongs to. careledger_version() gives\n \
         * the loaded library's; a program can compare the two (they must be equal).\n */\n\
         #define CARELEDGER_VERSION \"{version}\"\n\
         #define CARELEDGER_VERSION_MAJOR {major}\n\
         #define CARELEDGER_VERSION_MINOR {minor}\n\
         #define CARELEDGER_VERSION_PATCH {patch}\n\
         /** MAJOR * 1000000 + MINOR * 1000 + PATCH, for #if comparisons. */\n\
         #define CARELEDGER_VERSION_NUMBER {number}\n",
        version = env!("CARGO_PKG_VERSION"),
        major = env!("CARGO_PKG_VERSION_MAJOR"),
        minor = env!("CARGO_PKG_VERSION_MINOR"),
        patch = env!("CARGO_PKG_VERSION_PATCH"),
        number = version_number(),
    )
}

fn version_number() -> u64 {
    let part = |text: &str| text.parse::<u64>().expect("a numeric version component");
    part(env!("CARGO_PKG_VERSION_MAJOR")) * 1_000_000
        + part(env!("CARGO_PKG_VERSION_MINOR")) * 1_000
        + part(env!("CARGO_PKG_VERSION_PATCH"))
}

#[test]
fn committed_header_matches_the_code() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(version_macros());
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = crate_dir.join("../include/careledger.h");
    if std::env::var_os("CARELEDGER_WRITE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/careledger.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/careledger.h differs from what cbindgen generates from ffi/src; \
         regenerate it with `CARELEDGER_WRITE_HEADER=1 cargo test -p careledger-ffi --test header` \
         and review the diff"
    );
}
