//! A real three-node network, built once per process: its relay log (real
//! Welcome, Commit, entry and heads messages), its epoch keys and author keys,
//! and SQLite files of real nodes. Targets use it both to generate seeds and
//! to give fuzzed bytes something real to be checked against (a receiver
//! whose key package the log's second Welcome answers, keys that open the
//! log's entries).

use std::path::Path;
use std::sync::OnceLock;

use careledger::keys::{EpochKey, StorageKey};
use careledger::node::{NetworkId, Node};
use careledger::relay::MemoryRelay;
use careledger::store::Store;
use careledger::sync::{join_from_relay, sync};

/// Simulated time of every step (2025-11-24T16:00:00Z), in ms.
pub const T0: u64 = 1_764_000_000_000;
/// The storage key of every fixture node.
pub const STORAGE_KEY: [u8; 32] = [7; 32];
/// The network label.
pub const LABEL: &str = "care";

/// See the module docs.
pub struct Fixture {
    /// The network.
    pub network: NetworkId,
    /// Every relay message of the network, in relay order.
    pub log: Vec<Vec<u8>>,
    /// Public keys of the three authors (founder, member, receiver).
    pub public_keys: Vec<[u8; 32]>,
    /// Every epoch key the founder held, by epoch.
    pub epoch_keys: Vec<(u64, EpochKey)>,
    /// The receiver's SQLite file just after it made the key package that
    /// the founder invites in `log`: it has joined nothing yet.
    pub receiver_store: Vec<u8>,
    /// The removed member's SQLite file at the end: a node with one network,
    /// records, ledger and MLS state.
    pub member_store: Vec<u8>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The fixture, built on first use.
pub fn get() -> &'static Fixture {
    FIXTURE.get_or_init(build)
}

/// Path to a file of the in-repo FHIR test data.
pub fn fhir_data(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data/fhir")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("test data {}: {e}", path.display()))
}

/// The first `n` lines of an in-repo NDJSON file.
pub fn ndjson_lines(relative: &str, n: usize) -> Vec<u8> {
    let text = String::from_utf8(fhir_data(relative)).expect("UTF-8 test data");
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(n) {
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

fn key() -> StorageKey {
    StorageKey::from_bytes(STORAGE_KEY)
}

fn file_node(path: &Path, name: &str) -> Node {
    Node::create(Store::open(path, &key()).expect("store"), name).expect("node")
}

/// Reads a node's SQLite file after closing the node.
fn close_and_read(node: Node, path: &Path) -> Vec<u8> {
    drop(node.into_store());
    std::fs::read(path).expect("store file")
}

fn build() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut relay = MemoryRelay::new();
    let mut a = Node::create(
        Store::open_in_memory(&key()).expect("store"),
        "hospital-a.example",
    )
    .expect("node");
    let b_path = dir.path().join("b.sqlite");
    let mut b = file_node(&b_path, "hospital-b.example");
    let d_path = dir.path().join("d.sqlite");
    let mut d = file_node(&d_path, "lab.example");

    let network = a.create_network(LABEL).expect("create");
    a.invite(&network, &b.key_package().expect("key package"))
        .expect("invite");
    sync(&mut a, &mut relay, &network, T0).expect("sync");
    join_from_relay(&mut b, &mut relay, &network, LABEL, T0).expect("join");

    let patients = ndjson_lines("bulk-10-patients/Patient.000.ndjson", 2);
    a.import_fhir(&network, "Patient.000.ndjson", &patients, T0)
        .expect("import");
    sync(&mut a, &mut relay, &network, T0).expect("sync");
    sync(&mut b, &mut relay, &network, T0).expect("sync");

    // The receiver makes its key package and stops: the fuzzed node starts here.
    let d_key_package = d.key_package().expect("key package");
    let d_public = d.identity().public_key();
    let receiver_store = close_and_read(d, &d_path);

    a.invite(&network, &d_key_package).expect("invite");
    sync(&mut a, &mut relay, &network, T0 + 1).expect("sync");
    sync(&mut b, &mut relay, &network, T0 + 1).expect("sync");
    let more = ndjson_lines("standard-obs-sample/Observation.ndjson", 2);
    b.import_fhir(&network, "Observation.ndjson", &more, T0 + 2)
        .expect("import");
    sync(&mut b, &mut relay, &network, T0 + 2).expect("sync");
    sync(&mut a, &mut relay, &network, T0 + 2).expect("sync");
    a.update_keys(&network).expect("update");
    sync(&mut a, &mut relay, &network, T0 + 3).expect("sync");
    sync(&mut b, &mut relay, &network, T0 + 3).expect("sync");
    let third = ndjson_lines("bulk-10-patients/Patient.000.ndjson", 3);
    a.import_fhir(&network, "Patient.000.ndjson", &third, T0 + 4)
        .expect("import");
    let b_author = b.identity().author_id();
    a.remove(&network, &b_author).expect("remove");
    sync(&mut a, &mut relay, &network, T0 + 5).expect("sync");
    sync(&mut b, &mut relay, &network, T0 + 5).expect("sync");
    a.announce_heads(&network).expect("heads");
    sync(&mut a, &mut relay, &network, T0 + 6).expect("sync");

    let epoch = a.epoch(&network).expect("epoch");
    let epoch_keys = (0..=epoch)
        .filter_map(|e| a.epoch_key_for_testing(&network, e).map(|k| (e, k)))
        .collect();
    let public_keys = vec![
        a.identity().public_key(),
        b.identity().public_key(),
        d_public,
    ];
    let member_store = close_and_read(b, &b_path);
    Fixture {
        log: relay.log(&network).to_vec(),
        network,
        public_keys,
        epoch_keys,
        receiver_store,
        member_store,
    }
}

/// The epoch key of `epoch`, if the fixture has it.
pub fn epoch_key(epoch: u64) -> Option<&'static EpochKey> {
    get()
        .epoch_keys
        .iter()
        .find(|(e, _)| *e == epoch)
        .map(|(_, k)| k)
}
