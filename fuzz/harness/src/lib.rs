//! The bodies of careledger's fuzz targets.
//!
//! Each module is one target: `fuzz(data)` runs one input and panics only on
//! a bug (a crash, a broken invariant); `seeds()` returns the seed corpus,
//! generated from real data. `fuzz/fuzz_targets/<name>.rs` wraps `fuzz` for
//! cargo-fuzz on nightly; `tests/tests/fuzz_crashers.rs` replays every
//! committed crasher through [`run`] on stable, so a bug once found stays fixed.

pub mod bodies;
pub mod c_api;
pub mod chunks;
pub mod consent;
pub mod entry;
pub mod fhir_import;
pub mod fixture;
pub mod interaction;
pub mod mls_ingest;
pub mod node_util;
pub mod proofs;
pub mod relay_chunks;
pub mod rules;
pub mod store_open;
pub mod wire;

/// A fuzz target: its name (the cargo-fuzz binary and corpus directory), its
/// body, and its seed generator.
pub struct Target {
    /// The cargo-fuzz binary and corpus directory name.
    pub name: &'static str,
    /// Runs one input; panics only on a bug.
    pub fuzz: fn(&[u8]),
    /// Seed inputs as (file name, bytes).
    pub seeds: fn() -> Vec<(String, Vec<u8>)>,
}

/// Every target, in the order the CI smoke run takes them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "entry",
        fuzz: entry::fuzz,
        seeds: entry::seeds,
    },
    Target {
        name: "wire",
        fuzz: wire::fuzz,
        seeds: wire::seeds,
    },
    Target {
        name: "mls_ingest",
        fuzz: mls_ingest::fuzz,
        seeds: mls_ingest::seeds,
    },
    Target {
        name: "fhir_import",
        fuzz: fhir_import::fuzz,
        seeds: fhir_import::seeds,
    },
    Target {
        name: "consent",
        fuzz: consent::fuzz,
        seeds: consent::seeds,
    },
    Target {
        name: "proofs",
        fuzz: proofs::fuzz,
        seeds: proofs::seeds,
    },
    Target {
        name: "bodies",
        fuzz: bodies::fuzz,
        seeds: bodies::seeds,
    },
    Target {
        name: "relay_chunks",
        fuzz: relay_chunks::fuzz,
        seeds: relay_chunks::seeds,
    },
    Target {
        name: "store_open",
        fuzz: store_open::fuzz,
        seeds: store_open::seeds,
    },
    Target {
        name: "c_api",
        fuzz: c_api::fuzz,
        seeds: c_api::seeds,
    },
    Target {
        name: "rules",
        fuzz: rules::fuzz,
        seeds: rules::seeds,
    },
    Target {
        name: "interaction",
        fuzz: interaction::fuzz,
        seeds: interaction::seeds,
    },
];

/// Runs `data` through the target called `name`; `None` if there is no such target.
pub fn run(name: &str, data: &[u8]) -> Option<()> {
    let target = TARGETS.iter().find(|t| t.name == name)?;
    (target.fuzz)(data);
    Some(())
}
