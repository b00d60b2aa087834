//! A short seeded slice of the scale run (`core/benches/scale.rs`,
//! `tests/scale.sh`): the same generated Synthea-shaped population, batches,
//! file-backed nodes and relay file, 24 patients in batches of 8 instead of 100,000 in batches of 500. It checks
//! what the long run relies on, not timings: every batch is accepted whole,
//! nothing waits, B ends with every patient and the same charts as A, and
//! both ledgers verify.

use careledger::keys::StorageKey;
use careledger::node::{ExportFormat, Node};
use careledger::relay::LocalRelay;
use careledger::store::Store;
use careledger::sync::{join_from_relay, publish_outbox, sync};

#[path = "../benches/common/synthea.rs"]
mod synthea;

const T0: u64 = 1_764_000_000_000;
const PATIENTS: u64 = 24;
const BATCH: u64 = 8;

#[test]
fn generated_population_is_ingested_and_received_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::from_bytes([7; 32]);
    let open = |name: &str| Store::open(&dir.path().join(name), &key).unwrap();
    let mut a = Node::create(open("a.sqlite"), "hospital-a.example").unwrap();
    let mut b = Node::create(open("b.sqlite"), "hospital-b.example").unwrap();
    let mut relay_a = LocalRelay::open(&dir.path().join("relay.sqlite")).unwrap();
    let mut relay_b = LocalRelay::open(&dir.path().join("relay.sqlite")).unwrap();
    let net = a.create_network("care").unwrap();
    a.invite(&net, &b.key_package().unwrap()).unwrap();
    sync(&mut a, &mut relay_a, &net, T0).unwrap();
    join_from_relay(&mut b, &mut relay_b, &net, "care", T0).unwrap();

    let templates = synthea::Templates::load();
    let mut resources = 0;
    for (i, first) in (0..PATIENTS).step_by(BATCH as usize).enumerate() {
        let (ndjson, count) = synthea::patients(&templates, 16, first, BATCH, 100);
        let report = a
            .import_fhir(&net, "slice.ndjson", &ndjson, T0 + i as u64)
            .unwrap();
        assert_eq!(report.resources, count);
        assert_eq!(report.patients as u64, BATCH);
        resources += count;
        publish_outbox(&mut a, &mut relay_a).unwrap();
        let received = sync(&mut b, &mut relay_b, &net, T0 + i as u64).unwrap();
        assert!(received.received.rejected.is_empty());
        assert_eq!(received.received.held, 0);
        assert_eq!(received.received.accepted, report.entries);
    }
    // The generator is deterministic and Synthea-shaped: same seed, same bytes.
    assert_eq!(
        synthea::patients(&templates, 16, 0, 3, 100),
        synthea::patients(&templates, 16, 0, 3, 100)
    );
    assert!(resources as u64 > PATIENTS * 5, "{resources} resources");
    let patients = a.patients(&net).unwrap();
    assert_eq!(patients.len() as u64, PATIENTS);
    assert_eq!(b.patients(&net).unwrap(), patients);
    for patient in &patients {
        assert_eq!(
            b.export_patient(&net, patient, ExportFormat::Ndjson)
                .unwrap(),
            a.export_patient(&net, patient, ExportFormat::Ndjson)
                .unwrap()
        );
    }
    assert!(a.verify_ledger(&net).unwrap().is_clean());
    assert!(b.verify_ledger(&net).unwrap().is_clean());
}
