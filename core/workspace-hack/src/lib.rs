//! careledger's workspace-hack crate: no code. Its manifest turns on, in each
//! third-party dependency, the features the whole workspace's build turns on,
//! so that building one package (`-p careledger-ffi` for cargo-c,
//! `careledger-uniffi` for maturin) reuses the test build's compiled
//! dependencies. See `Cargo.toml` beside this file.
