//! `include/careledger.h` is generated from this crate and committed; this
//! test regenerates it with the pinned cbindgen and fails on any difference.
//! Regenerate: `CARELEDGER_WRITE_HEADER=1 cargo test -p careledger-ffi --test header`.

use std::path::Path;

#[test]
fn committed_header_matches_the_code() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
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
