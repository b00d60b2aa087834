//! A node reopened from its SQLite file has the same records, heads and MLS
//! epoch, and keeps syncing.

use careledger::keys::StorageKey;
use careledger::node::Node;
use careledger::relay::LocalRelay;
use careledger::store::{OpenStoreError, Store};
use careledger::sync::sync;
use careledger_scenarios::*;

#[test]
fn reopened_node_has_same_state_and_keeps_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = LocalRelay::open(&dir.path().join("relay.sqlite")).unwrap();
    let mut a = file_node(dir.path(), "hospital-a.example");
    let mut b = file_node(dir.path(), "hospital-b.example");
    let net = network_sharing_patients(&mut [&mut a, &mut b], &mut relay);
    b.update_keys(&net).unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 5);

    let state = canonical_state(&mut b, &net);
    let heads = b.heads(&net).unwrap();
    let epoch = b.epoch(&net).unwrap();
    let identity = b.identity().author_id();
    assert_eq!(epoch, 2, "founding, B's join and B's update");
    drop(b);

    let mut b = reopen(dir.path(), "hospital-b.example");
    assert_eq!(b.identity().author_id(), identity);
    assert_eq!(canonical_state(&mut b, &net), state);
    assert_eq!(b.heads(&net).unwrap(), heads);
    assert_eq!(b.epoch(&net).unwrap(), epoch);
    assert!(b.verify_ledger(&net).unwrap().is_clean());

    // Keeps working both ways after the restart, including a new epoch.
    import_bulk(&mut a, &net, "AllergyIntolerance", T0);
    a.update_keys(&net).unwrap();
    let p = b.patients(&net).unwrap()[0].clone();
    b.edit_member(&net, &p, "Patient", &p, "active", Some("true"), T0 + 10)
        .unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 8);
    assert_eq!(a.epoch(&net).unwrap(), 3);
    assert_eq!(b.epoch(&net).unwrap(), 3);
    assert_eq!(canonical_state(&mut a, &net), canonical_state(&mut b, &net));
    assert_eq!(a.heads(&net).unwrap(), b.heads(&net).unwrap());
    sync(&mut b, &mut relay, &net, T0).unwrap();
}

#[test]
fn wrong_storage_key_and_garbage_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    drop(file_node(dir.path(), "hospital-a.example"));
    let path = dir.path().join("hospital-a.example.sqlite");
    let wrong = Store::open(&path, &StorageKey::from_bytes([8; 32]));
    assert!(matches!(wrong, Err(OpenStoreError::WrongStorageKey)));
    assert_eq!(
        wrong.unwrap_err().to_string(),
        "wrong storage key for this store"
    );
    // The right key still opens it: a wrong key destroys nothing.
    assert!(Node::open(Store::open(&path, &StorageKey::from_bytes([7; 32])).unwrap()).is_ok());
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(
        &garbage,
        b"this is not a database, it is a note about a patient",
    )
    .unwrap();
    let err = Store::open(&garbage, &StorageKey::from_bytes([7; 32])).unwrap_err();
    assert!(matches!(err, OpenStoreError::Sqlite(_)));
    assert!(!err.to_string().contains("patient"));
}

#[test]
fn second_process_reads_while_first_writes() {
    // E.g. an iOS notification extension opening the app's store.
    let dir = tempfile::tempdir().unwrap();
    let mut app = file_node(dir.path(), "phone.example");
    let net = app.create_network("circle").unwrap();
    import_bulk(&mut app, &net, "Patient", T0);
    let mut extension = reopen(dir.path(), "phone.example");
    assert_eq!(extension.patients(&net).unwrap().len(), 13);
    import_bulk(&mut app, &net, "AllergyIntolerance", T0);
    // The second handle sees the committed write, and its own reads never block the writer.
    assert_eq!(extension.heads(&net).unwrap(), app.heads(&net).unwrap());
    assert!(extension.verify_ledger(&net).unwrap().is_clean());
}

#[test]
fn store_file_holds_no_chart_content_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = file_node(dir.path(), "hospital-a.example");
    let net = node.create_network("care").unwrap();
    let patients = data("bulk-10-patients/Patient.000.ndjson");
    assert!(String::from_utf8_lossy(&patients).contains("Medhurst46"));
    node.import_fhir(&net, "Patient.ndjson", &patients, T0)
        .unwrap();
    // Read the database and its write-ahead log as a thief would.
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        raw.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&raw);
    for marker in [
        "Medhurst46",
        "Sumiko254",
        "555-810-7203",
        "Abernathy Landing",
    ] {
        assert!(
            !text.contains(marker),
            "{marker} is readable in the store file"
        );
    }
    drop(node);
    // And everything is still there for the key holder.
    let mut node = reopen(dir.path(), "hospital-a.example");
    assert_eq!(node.patients(&net).unwrap().len(), 13);
    assert!(canonical_state(&mut node, &net)
        .iter()
        .any(|(_, bundle)| bundle.contains("Medhurst46")));
}
