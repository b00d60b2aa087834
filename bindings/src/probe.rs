//! A deliberate panic for the foreign-language tests (cargo feature
//! `panic-probe`, enabled only by `bindings/tests/run.sh`; never in an app).
//!
//! It proves that a panic inside Rust reaches Python and Kotlin as an
//! exception rather than a crash, through a real export holding a real node
//! lock. The feature changes behaviour only, not the exported interface, so
//! the generated (and committed) bindings are the same with or without it;
//! see the top-level README, "Using careledger from Swift/Kotlin/Python".

/// The `source_name` that makes `Network.import_fhir` panic.
pub const PANIC_PROBE_SOURCE: &str = "careledger-panic-probe";

/// Panic if `source_name` asks for it.
pub(crate) fn maybe_panic(source_name: &str) {
    if source_name == PANIC_PROBE_SOURCE {
        panic!("panic probe: deliberate panic inside Network.import_fhir");
    }
}
