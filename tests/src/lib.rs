//! Shared harness for the cross-crate scenarios in `tests/tests/`.
//!
//! The helpers drive several nodes against one relay with simulated time, so
//! scenarios are deterministic: every run with the same seed takes the same
//! steps.
//!
//! ```
//! use careledger::relay::MemoryRelay;
//! use careledger_scenarios::{canonical_state, form_network, memory_node, settle, T0};
//! let mut a = memory_node("hospital-a.example");
//! let mut b = memory_node("hospital-b.example");
//! let mut relay = MemoryRelay::new();
//! let net = form_network(&mut [&mut a, &mut b], &mut relay, "care");
//! a.import_fhir(&net, "p.ndjson", br#"{"resourceType":"Patient","id":"p1"}"#, T0).unwrap();
//! settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 5);
//! assert_eq!(canonical_state(&mut a, &net), canonical_state(&mut b, &net));
//! ```

pub mod crash;
pub mod faulty_vfs;

use careledger::keys::StorageKey;
use careledger::node::{ExportFormat, ImportReport, NetworkId, Node};
use careledger::relay::Relay;
use careledger::store::Store;
use careledger::sync::{join_from_relay, sync, SyncReport};

/// Start of simulated time (2025-11-24T16:00:00Z), in ms.
pub const T0: u64 = 1_764_000_000_000;

/// Path to a file of the in-repo FHIR test data.
pub fn data_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/data/fhir")
        .join(relative)
}

/// Read a file of the in-repo FHIR test data.
pub fn data(relative: &str) -> Vec<u8> {
    std::fs::read(data_path(relative)).expect("test data present")
}

/// A node whose store lives in memory.
pub fn memory_node(name: &str) -> Node {
    let key = StorageKey::from_bytes([7; 32]);
    Node::create(Store::open_in_memory(&key).expect("store"), name).expect("node")
}

/// A node whose store is a file in `dir`.
pub fn file_node(dir: &std::path::Path, name: &str) -> Node {
    let key = StorageKey::from_bytes([7; 32]);
    let store = Store::open(&dir.join(format!("{name}.sqlite")), &key).expect("store");
    Node::create(store, name).expect("node")
}

/// Reopen a file node (a restart).
pub fn reopen(dir: &std::path::Path, name: &str) -> Node {
    let key = StorageKey::from_bytes([7; 32]);
    let store = Store::open(&dir.join(format!("{name}.sqlite")), &key).expect("store");
    Node::open(store).expect("node")
}

/// Sync until nothing changes any more (or `rounds` runs out).
pub fn settle(
    nodes: &mut [&mut Node],
    relay: &mut dyn Relay,
    net: &NetworkId,
    now: u64,
    rounds: usize,
) {
    for _ in 0..rounds {
        let mut quiet = true;
        for node in nodes.iter_mut() {
            let report: SyncReport = sync(node, relay, net, now).expect("sync");
            if report.received.accepted > 0
                || report.received.commits_applied > 0
                || report.published > 1
            {
                quiet = false;
            }
        }
        if quiet {
            return;
        }
    }
}

/// Form a network founded by `nodes[0]` with every other node invited, one
/// membership change per epoch, through `relay`.
pub fn form_network(nodes: &mut [&mut Node], relay: &mut dyn Relay, label: &str) -> NetworkId {
    let (first, rest) = nodes.split_first_mut().expect("at least one node");
    let net = first.create_network(label).expect("create network");
    for joiner in rest.iter_mut() {
        let key_package = joiner.key_package().expect("key package");
        first.invite(&net, &key_package).expect("invite");
        sync(first, relay, &net, T0).expect("sync founder");
        join_from_relay(joiner, relay, &net, label, T0).expect("join");
    }
    net
}

/// Import one Synthea bulk file (`"Patient"`, `"AllergyIntolerance"`, …) at `node`.
pub fn import_bulk(
    node: &mut Node,
    net: &NetworkId,
    resource_type: &str,
    now: u64,
) -> ImportReport {
    let file = format!("bulk-10-patients/{resource_type}.000.ndjson");
    node.import_fhir(net, &file, &data(&file), now)
        .expect("bulk data imports")
}

/// Form a network of `nodes` (the first founds it), import the 13 Synthea
/// patients at the founder, and sync until every node holds them.
pub fn network_sharing_patients(nodes: &mut [&mut Node], relay: &mut dyn Relay) -> NetworkId {
    let net = form_network(nodes, relay, "care");
    import_bulk(nodes[0], &net, "Patient", T0);
    settle(nodes, relay, &net, T0, 10);
    net
}

/// Canonical export of every record of a node, for byte comparison.
pub fn canonical_state(node: &mut Node, net: &NetworkId) -> Vec<(String, String)> {
    node.patients(net)
        .expect("patients")
        .into_iter()
        .map(|p| {
            let bundle = node
                .export_patient(net, &p, ExportFormat::Bundle)
                .expect("export");
            (p, bundle)
        })
        .collect()
}
