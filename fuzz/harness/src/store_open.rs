//! A store file of arbitrary bytes: the first byte picks the storage key
//! (even: the right one, odd: a wrong one), the rest is written as the SQLite
//! file, opened as a node and used (networks, members, epochs, heads,
//! patients, exports, ledger verification). Every step ends in a typed error
//! or success, never a panic.

use careledger::keys::StorageKey;
use careledger::node::{ExportFormat, Node};
use careledger::store::Store;

use crate::fixture;

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let Some((&choice, file)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.sqlite");
    std::fs::write(&path, file).expect("write store file");
    let key = if choice % 2 == 0 {
        StorageKey::from_bytes(fixture::STORAGE_KEY)
    } else {
        StorageKey::from_bytes([choice; 32])
    };
    let Ok(store) = Store::open(&path, &key) else {
        return;
    };
    let Ok(mut node) = Node::open(store) else {
        return;
    };
    let _ = node.key_package();
    let Ok(networks) = node.networks() else {
        return;
    };
    for info in networks {
        let network = info.id;
        let _ = node.members(&network);
        let _ = node.epoch(&network);
        let _ = node.heads(&network);
        let _ = node.held_entries(&network);
        let _ = node.ledger_entries(&network);
        let _ = node.verify_ledger(&network);
        if let Ok(patients) = node.patients(&network) {
            for patient in patients.iter().take(4) {
                let _ = node.export_patient(&network, patient, ExportFormat::Ndjson);
            }
        }
        let _ = node.announce_heads(&network);
        let _ = node.outgoing(16);
    }
}

/// Real store files: a member's after a full history, and a fresh node's
/// with only a key package; with the right and a wrong key.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let fx = fixture::get();
    vec![
        ("member".into(), [&[0u8][..], &fx.member_store].concat()),
        (
            "member-wrong-key".into(),
            [&[1u8][..], &fx.member_store].concat(),
        ),
        ("fresh".into(), [&[0u8][..], &fx.receiver_store].concat()),
    ]
}
