//! careledger: share FHIR R4 patient records between institutions without
//! trusting a central server.
//!
//! A [`node::Node`] (one institution's, or one patient's phone) keeps every
//! patient's chart as an Automerge document ([`record`]), writes every change
//! as a sealed, signed, hash-chained ledger [`entry`], and belongs to MLS
//! networks whose epochs yield the keys that seal those entries ([`keys`]).
//! Everything persists in one SQLite file ([`store`]); entries travel through
//! any [`relay`], pumped by [`sync`].
//!
//! The crate performs no network IO and spawns no threads of its own (k-means
//! training runs on linfa's rayon pool): time is passed in as `now_ms`,
//! randomness comes from the store's crypto provider.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analytics;
pub mod body;
pub mod checkpoint;
pub mod codec;
pub mod consent;
pub mod entry;
pub mod identity;
pub mod keys;
pub mod merkle;
pub mod node;
pub mod record;
pub mod relay;
pub mod rules;
pub mod store;
pub mod sync;
pub mod wire;

/// This library's version, recorded where provenance matters.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Rust guide's programs (`docs/guides/rust.md`), compiled and run as
/// doctests so the guide cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guides/rust.md")]
pub struct RustGuide;
