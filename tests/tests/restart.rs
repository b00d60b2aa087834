//! A node reopened from its SQLite file has the same records, heads and MLS
//! epoch, and keeps syncing.

use std::process::{Command, Stdio};

use careledger::keys::StorageKey;
use careledger::node::{NetworkError, Node};
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
fn a_second_process_opens_and_reads_the_store_while_the_first_writes() {
    // A phone's notification extension: its own process, its own opens.
    let dir = tempfile::tempdir().unwrap();
    let mut app = file_node(dir.path(), "phone.example");
    let net = app.create_network("circle").unwrap();
    import_bulk(&mut app, &net, "Patient", T0);
    let path = dir.path().join("phone.example.sqlite");
    let reader = Command::new(env!("CARGO_BIN_EXE_store_reader"))
        .arg(&path)
        .arg(net.to_hex())
        .arg("40")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for (n, file) in [
        "AllergyIntolerance",
        "Immunization",
        "Condition",
        "MedicationRequest",
    ]
    .iter()
    .enumerate()
    {
        import_bulk(&mut app, &net, file, T0 + n as u64);
        let p = app.patients(&net).unwrap()[n].clone();
        app.edit_member(&net, &p, "Patient", &p, "active", Some("true"), T0 + 10)
            .unwrap();
    }
    let output = reader.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the reader failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rounds: Vec<(usize, usize)> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts[0], "ok");
            (parts[1].parse().unwrap(), parts[2].parse().unwrap())
        })
        .collect();
    assert_eq!(rounds.len(), 40);
    // Every read saw a committed state: 13 patients, entries never fewer.
    assert!(rounds.iter().all(|(patients, _)| *patients == 13));
    assert!(rounds.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(app.store().verify().unwrap().is_clean());
}

#[test]
fn a_store_restored_from_an_old_backup_catches_up_before_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = LocalRelay::open(&dir.path().join("relay.sqlite")).unwrap();
    let mut a = file_node(dir.path(), "hospital-a.example");
    let mut b = file_node(dir.path(), "hospital-b.example");
    let net = network_sharing_patients(&mut [&mut a, &mut b], &mut relay);
    let path = dir.path().join("hospital-a.example.sqlite");
    let edit = |node: &mut Node, n: u64| {
        let p = node.patients(&net).unwrap()[n as usize % 13].clone();
        let birth = format!("\"19{:02}-01-01\"", n % 100);
        node.edit_member(&net, &p, "Patient", &p, "birthDate", Some(&birth), T0 + n)
    };
    edit(&mut a, 1).unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 5);
    // The backup: a copy of the store file (closing checkpoints the WAL).
    drop(a);
    let backup = std::fs::read(&path).unwrap();
    let marker = std::fs::read(dir.path().join("hospital-a.example.sqlite.chain")).unwrap();
    let mut a = reopen(dir.path(), "hospital-a.example");
    // Life goes on: A writes more, B commits a new epoch.
    for n in 2..6 {
        edit(&mut a, n).unwrap();
    }
    b.update_keys(&net).unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 5);
    let (heads, epoch) = (a.heads(&net).unwrap(), a.epoch(&net).unwrap());
    drop(a);

    // The disk fails; the database file comes back from the backup.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, &backup).unwrap();
    let mut a = reopen(dir.path(), "hospital-a.example");
    assert_eq!(
        a.lost_chains().len(),
        1,
        "the node knows its store went back"
    );
    match edit(&mut a, 6) {
        Err(careledger::node::EditError::Network(NetworkError::BehindOwnChain {
            stored,
            marked,
        })) => {
            assert!(stored < marked);
        }
        other => panic!("a write before catching up was not refused: {other:?}"),
    }
    // Syncing brings its own entries back from the relay; then it writes on.
    sync(&mut a, &mut relay, &net, T0 + 20).unwrap();
    assert!(a.lost_chains().is_empty());
    assert_eq!(a.heads(&net).unwrap(), heads);
    assert_eq!(a.epoch(&net).unwrap(), epoch);
    edit(&mut a, 7).unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0 + 30, 5);
    for node in [&mut a, &mut b] {
        assert_eq!(node.flagged_authors(&net).unwrap(), vec![], "no fork");
        assert!(node.verify_ledger(&net).unwrap().is_clean());
    }
    assert_eq!(a.heads(&net).unwrap(), b.heads(&net).unwrap());
    assert_eq!(canonical_state(&mut a, &net), canonical_state(&mut b, &net));

    // A backup restored together with its marker cannot be told from the
    // real file; syncing before writing still catches the chain up.
    let heads = a.heads(&net).unwrap();
    drop(a);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, &backup).unwrap();
    std::fs::write(dir.path().join("hospital-a.example.sqlite.chain"), &marker).unwrap();
    let mut a = reopen(dir.path(), "hospital-a.example");
    assert!(a.lost_chains().is_empty());
    sync(&mut a, &mut relay, &net, T0 + 40).unwrap();
    assert_eq!(a.heads(&net).unwrap(), heads);
    edit(&mut a, 8).unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0 + 40, 5);
    assert_eq!(b.flagged_authors(&net).unwrap(), vec![]);
    assert_eq!(a.heads(&net).unwrap(), b.heads(&net).unwrap());
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
