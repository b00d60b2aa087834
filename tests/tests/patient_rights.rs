//! The patient owns the data: erasure by crypto-shredding, grants that expire
//! by themselves, and nothing readable at rest.

use std::collections::BTreeSet;
use std::path::Path;

use careledger::body::EraseScope;
use careledger::consent::{Consent, Grantee, Purpose};
use careledger::entry::{Entry, EntryKind};
use careledger::node::{ConsentError, ExportError, ExportFormat, NetworkId, Node};
use careledger::relay::MemoryRelay;
use careledger::sync::{join_from_relay, sync};
use careledger_scenarios::*;

const DAY: u64 = 86_400_000;

/// Hospital A, clinic B and lab C in a care network with the 13 Synthea
/// patients and their allergies, all synced; file stores in `dir`.
struct Care {
    a: Node,
    b: Node,
    c: Node,
    net: NetworkId,
    relay: MemoryRelay,
}

fn care(dir: &Path) -> Care {
    let mut a = file_node(dir, "hospital-a.example");
    let mut b = file_node(dir, "clinic-b.example");
    let mut c = file_node(dir, "lab-c.example");
    let mut relay = MemoryRelay::new();
    let net = network_sharing_patients(&mut [&mut a, &mut b, &mut c], &mut relay);
    import_bulk(&mut a, &net, "AllergyIntolerance", T0);
    settle(&mut [&mut a, &mut b, &mut c], &mut relay, &net, T0, 10);
    Care {
        a,
        b,
        c,
        net,
        relay,
    }
}

/// The wrapped record-key blobs in a store file (read with plain SQLite).
fn wrapped_keys(path: &Path) -> BTreeSet<Vec<u8>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT key FROM record_keys").unwrap();
    let keys = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys
}

/// How many of `needles` occur in the store file or its WAL.
fn hits_in_files(path: &Path, needles: &[Vec<u8>]) -> usize {
    let mut hits = 0;
    for suffix in ["", "-wal"] {
        let Ok(bytes) = std::fs::read(format!("{}{suffix}", path.display())) else {
            continue;
        };
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                hits += 1;
            }
        }
    }
    hits
}

/// Record changes of `net` whose record is `patient`, as stored at `reader`,
/// that `reader` can still open.
fn readable_changes_of(reader: &Node, net: &NetworkId, patient: &str, from: &Node) -> usize {
    from.ledger_entries(net)
        .unwrap()
        .iter()
        .filter(|bytes| Entry::decode(bytes).unwrap().header.kind == EntryKind::RecordChange)
        .filter(|bytes| {
            matches!(reader.open_record_change_for_testing(net, bytes), Ok((record, _)) if record == patient)
        })
        .count()
}

#[test]
fn an_erased_chart_is_shredded_everywhere_and_the_ledger_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let Care {
        mut a,
        mut b,
        mut c,
        net,
        mut relay,
    } = care(dir.path());
    let patients = a.patients(&net).unwrap();
    let patient = patients[3].clone();
    let others: Vec<String> = patients
        .iter()
        .filter(|p| **p != patient)
        .cloned()
        .collect();
    let before_b = canonical_state(&mut b, &net);
    assert!(readable_changes_of(&b, &net, &patient, &a) > 0);
    let b_path = dir.path().join("clinic-b.example.sqlite");
    let keys_before = wrapped_keys(&b_path);

    // C is offline. A erases on the patient's behalf.
    let report = a.erase(&net, &patient, EraseScope::Chart, T0 + 10).unwrap();
    assert_eq!(report.networks, std::slice::from_ref(&net));
    assert!(report.keys_shredded >= 1 && !report.by_patient);
    assert!(matches!(
        a.export_patient(&net, &patient, ExportFormat::Bundle),
        Err(ExportError::Erased)
    ));
    assert!(matches!(
        a.erase(&net, &patient, EraseScope::Chart, T0 + 11),
        Err(careledger::node::EraseError::AlreadyErased)
    ));
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0 + 20, 10);

    for node in [&mut a, &mut b] {
        assert_eq!(node.patients(&net).unwrap(), others);
        assert!(node.record_key_for_testing(&net, &patient).is_none());
        assert!(matches!(
            node.export_patient(&net, &patient, ExportFormat::Ndjson),
            Err(ExportError::Erased)
        ));
        let erased = node.erased_charts(&net).unwrap();
        assert_eq!(erased.len(), 1);
        assert_eq!(erased[0].patient, patient);
        assert!(erased[0].whole_chart);
        let ledger = node.verify_ledger(&net).unwrap();
        assert!(ledger.is_clean(), "{:?}", ledger.problems);
        assert!(
            ledger.record_keys_missing > 0,
            "the ciphertext stays, unread"
        );
    }
    assert_eq!(readable_changes_of(&b, &net, &patient, &a), 0);
    // The other charts are untouched.
    let after_b = canonical_state(&mut b, &net);
    let kept: Vec<_> = before_b
        .into_iter()
        .filter(|(p, _)| *p != patient)
        .collect();
    assert_eq!(after_b, kept);
    // Rebuilding the cache from the ledger cannot bring it back.
    b.rebuild_records(&net).unwrap();
    assert_eq!(canonical_state(&mut b, &net), kept);
    assert!(matches!(
        b.export_patient(&net, &patient, ExportFormat::Bundle),
        Err(ExportError::Erased)
    ));
    // No copy of the shredded keys is left in B's file or WAL.
    drop(b);
    let gone: Vec<Vec<u8>> = keys_before
        .difference(&wrapped_keys(&b_path))
        .cloned()
        .collect();
    assert!(!gone.is_empty());
    assert_eq!(
        hits_in_files(&b_path, &gone),
        0,
        "a shredded key stayed on disk"
    );
    let mut b = reopen(dir.path(), "clinic-b.example");

    // C was offline: it applies the erasure when it syncs.
    assert!(c.record_key_for_testing(&net, &patient).is_some());
    settle(&mut [&mut a, &mut b, &mut c], &mut relay, &net, T0 + 30, 10);
    assert!(c.record_key_for_testing(&net, &patient).is_none());
    assert!(matches!(
        c.export_patient(&net, &patient, ExportFormat::Bundle),
        Err(ExportError::Erased)
    ));

    // A late joiner is never granted the erased keys, and its chains do not
    // stall on the changes it cannot read.
    let mut d = memory_node("registry-d.example");
    a.invite(&net, &d.key_package().unwrap()).unwrap();
    sync(&mut a, &mut relay, &net, T0 + 40).unwrap();
    join_from_relay(&mut d, &mut relay, &net, "care", T0 + 40).unwrap();
    settle(
        &mut [&mut a, &mut b, &mut c, &mut d],
        &mut relay,
        &net,
        T0 + 40,
        10,
    );
    assert!(d.record_key_for_testing(&net, &patient).is_none());
    assert_eq!(d.held_entries(&net).unwrap(), Vec::<String>::new());
    assert_eq!(d.heads(&net).unwrap(), a.heads(&net).unwrap());
    assert_eq!(d.patients(&net).unwrap(), others);
    assert_eq!(readable_changes_of(&d, &net, &patient, &a), 0);
    let ledger = d.verify_ledger(&net).unwrap();
    assert!(ledger.is_clean(), "{:?}", ledger.problems);
    assert_eq!(canonical_state(&mut d, &net), canonical_state(&mut a, &net));
}

#[test]
fn erasing_some_resources_keeps_the_rest_under_a_fresh_key() {
    let dir = tempfile::tempdir().unwrap();
    let Care {
        mut a,
        mut b,
        mut c,
        net,
        mut relay,
    } = care(dir.path());
    // A patient with allergies.
    let (patient, allergy) = a
        .patients(&net)
        .unwrap()
        .into_iter()
        .find_map(|p| {
            let ndjson = a.export_patient(&net, &p, ExportFormat::Ndjson).unwrap();
            let allergy = ndjson.lines().find_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                (v["resourceType"] == "AllergyIntolerance")
                    .then(|| v["id"].as_str().unwrap().to_owned())
            })?;
            Some((p, allergy))
        })
        .expect("a patient with an allergy");
    let old_key = b.record_key_for_testing(&net, &patient).unwrap();
    let before = a
        .export_patient(&net, &patient, ExportFormat::Ndjson)
        .unwrap();
    let scope = EraseScope::Resources(vec![("AllergyIntolerance".into(), allergy.clone())]);
    // B records the erasure this time (on the patient's behalf).
    let report = b.erase(&net, &patient, scope, T0 + 10).unwrap();
    assert_eq!(report.resources_kept, before.lines().count() - 1);
    settle(&mut [&mut a, &mut b, &mut c], &mut relay, &net, T0 + 20, 10);
    let expected: Vec<&str> = before
        .lines()
        .filter(|line| !line.contains(&format!("\"id\":\"{allergy}\"")))
        .collect();
    for node in [&mut a, &mut b, &mut c] {
        let now = node
            .export_patient(&net, &patient, ExportFormat::Ndjson)
            .unwrap();
        assert_eq!(now.lines().collect::<Vec<_>>(), expected);
        let key = node.record_key_for_testing(&net, &patient).unwrap();
        assert_ne!(
            key.key_id, old_key.key_id,
            "the chart lives on under a fresh key"
        );
        assert!(node.verify_ledger(&net).unwrap().is_clean());
        let erased = node.erased_charts(&net).unwrap();
        assert!(!erased[0].whole_chart);
    }
    // Nothing of the erased resource can be read from the ledger any more.
    let ledger = a.ledger_entries(&net).unwrap();
    for bytes in &ledger {
        if let Ok((record, change)) = a.open_record_change_for_testing(&net, bytes) {
            if record == patient {
                assert!(!change
                    .windows(allergy.len())
                    .any(|w| w == allergy.as_bytes()));
            }
        }
    }
}

/// A care network (hospital A, clinic B, the patient's phone) and a study
/// (A and researcher R); 3 patients, research consents, shared.
struct Study {
    a: Node,
    b: Node,
    phone: Node,
    r: Node,
    care: NetworkId,
    study: NetworkId,
    relay: MemoryRelay,
}

fn patient_ndjson(id: &str) -> String {
    format!(
        "{}\n{}\n",
        serde_json::json!({"resourceType": "Patient", "id": id, "gender": "female",
                           "birthDate": "1970-01-01"}),
        serde_json::json!({"resourceType": "Observation", "id": format!("{id}-obs"),
            "status": "final", "subject": {"reference": format!("Patient/{id}")},
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "valueQuantity": {"value": 6.1}}),
    )
}

fn study_world(period: Option<(u64, u64)>) -> Study {
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("clinic-b.example");
    let mut phone = memory_node("phone-p1.example");
    let mut r = memory_node("research.example");
    let mut relay = MemoryRelay::new();
    let care = form_network(&mut [&mut a, &mut b, &mut phone], &mut relay, "care");
    let study = form_network(&mut [&mut a, &mut r], &mut relay, "study");
    let ndjson: String = ["p1", "p2", "p3"]
        .iter()
        .map(|p| patient_ndjson(p))
        .collect();
    a.import_fhir(&care, "charts.ndjson", ndjson.as_bytes(), T0)
        .unwrap();
    let phone_id = phone.identity().author_id();
    a.link_patient_node(&care, "p1", &phone_id, T0).unwrap();
    for p in ["p1", "p2", "p3"] {
        let consent = Consent::grant(
            &format!("c-{p}"),
            p,
            Grantee::Network(study.clone()),
            vec![Purpose::Research],
            vec![],
            period,
        )
        .unwrap();
        a.record_consent(&care, &consent, T0).unwrap();
    }
    settle(&mut [&mut a, &mut b, &mut phone], &mut relay, &care, T0, 10);
    a.share_to_network(&care, &study, Purpose::Research, T0 + 1)
        .unwrap();
    settle(&mut [&mut a, &mut r], &mut relay, &study, T0 + 1, 10);
    assert_eq!(r.patients(&study).unwrap(), ["p1", "p2", "p3"]);
    Study {
        a,
        b,
        phone,
        r,
        care,
        study,
        relay,
    }
}

#[test]
fn erasure_reaches_the_networks_a_chart_was_shared_into() {
    let Study {
        mut a,
        mut b,
        mut phone,
        mut r,
        care,
        study,
        mut relay,
    } = study_world(None);
    // The patient's own phone erases p1: A, which shared it, erases it in
    // the study when it applies the erasure.
    let report = phone.erase(&care, "p1", EraseScope::Chart, T0 + 5).unwrap();
    assert!(report.by_patient);
    settle(
        &mut [&mut a, &mut b, &mut phone],
        &mut relay,
        &care,
        T0 + 6,
        10,
    );
    settle(&mut [&mut a, &mut r], &mut relay, &study, T0 + 6, 10);
    for (node, net) in [(&mut a, &study), (&mut r, &study), (&mut b, &care)] {
        assert!(matches!(
            node.export_patient(net, "p1", ExportFormat::Bundle),
            Err(ExportError::Erased)
        ));
        assert!(node.record_key_for_testing(net, "p1").is_none());
        assert!(node.verify_ledger(net).unwrap().is_clean());
    }
    assert_eq!(r.patients(&study).unwrap(), ["p2", "p3"]);
    // A grantee export of an erased chart says so.
    assert!(matches!(
        a.export_for_grantee(
            &care,
            "p1",
            &[Grantee::Network(study.clone())],
            Purpose::Research,
            T0 + 7,
            ExportFormat::Ndjson
        ),
        Err(ConsentError::Erased)
    ));
    // A writes to its own chart of p2 in the care network: still shared fine.
    let again = a
        .share_to_network(&care, &study, Purpose::Research, T0 + 8)
        .unwrap();
    assert_eq!(again.patients, 2);
}

/// Whether `reader` can open the newest record change of `patient` in `net`
/// that `writer` wrote.
fn reader_opens_latest_change(
    writer: &Node,
    reader: &Node,
    net: &NetworkId,
    patient: &str,
) -> bool {
    let me = writer.identity().author_id();
    let latest = writer
        .ledger_entries(net)
        .unwrap()
        .into_iter()
        .rev()
        .find(|bytes| {
            let entry = Entry::decode(bytes).unwrap();
            entry.header.author == me
                && entry.header.kind == EntryKind::RecordChange
                && matches!(writer.open_record_change_for_testing(net, bytes), Ok((record, _)) if record == patient)
        })
        .expect("a change of the patient");
    reader.open_record_change_for_testing(net, &latest).is_ok()
}

#[test]
fn a_grant_ends_by_itself_through_the_sync_pump() {
    let end = T0 + 10 * DAY;
    let Study {
        mut a,
        mut r,
        study,
        mut relay,
        ..
    } = study_world(Some((T0 - DAY, end)));
    let edit = |node: &mut Node, n: u64, at: u64| {
        node.edit_member(
            &study,
            "p2",
            "Patient",
            "p2",
            "birthDate",
            Some(&format!("\"19{n:02}-01-01\"")),
            at,
        )
        .unwrap();
    };
    // Before the end: the study reads what A writes to the shared chart.
    edit(&mut a, 50, end - DAY);
    sync(&mut a, &mut relay, &study, end - DAY).unwrap();
    sync(&mut r, &mut relay, &study, end - DAY).unwrap();
    assert!(reader_opens_latest_change(&a, &r, &study, "p2"));
    // The period ends at T. A's sync pump runs after T (nothing else is
    // called); it decides the due consents first.
    let report = sync(&mut a, &mut relay, &study, end + 1).unwrap();
    assert_eq!(report.cut_off, 3);
    assert!(a.is_withholding(&study, "p2").unwrap());
    edit(&mut a, 51, end + 2);
    sync(&mut a, &mut relay, &study, end + 2).unwrap();
    sync(&mut r, &mut relay, &study, end + 2).unwrap();
    assert!(!reader_opens_latest_change(&a, &r, &study, "p2"));
    assert!(r.verify_ledger(&study).unwrap().is_clean());
    assert_eq!(r.held_entries(&study).unwrap(), Vec::<String>::new());
    assert_eq!(
        a.tick(end + 3).unwrap().charts_decided,
        0,
        "nothing due any more"
    );
}

#[test]
fn a_change_written_after_the_end_is_sealed_away_even_with_no_tick() {
    let end = T0 + 10 * DAY;
    let Study {
        mut a,
        mut r,
        study,
        mut relay,
        ..
    } = study_world(Some((T0 - DAY, end)));
    let next = a.tick(T0 + 2).unwrap();
    assert_eq!((next.charts_decided, next.next_due_ms), (0, Some(end + 1)));
    // No tick, no sync, no share after the end: the write itself decides.
    a.edit_member(
        &study,
        "p3",
        "Patient",
        "p3",
        "gender",
        Some("\"male\""),
        end + 1,
    )
    .unwrap();
    assert!(a.is_withholding(&study, "p3").unwrap());
    sync(&mut a, &mut relay, &study, end + 1).unwrap();
    sync(&mut r, &mut relay, &study, end + 1).unwrap();
    assert!(!reader_opens_latest_change(&a, &r, &study, "p3"));
    // The grantee's copy shows the chart as it was before the end.
    let chart = r
        .export_patient(&study, "p3", ExportFormat::Ndjson)
        .unwrap();
    assert!(chart.contains("\"gender\":\"female\""));
    // An unexpiring grant is never decided again.
    let Study { mut a, .. } = study_world(None);
    assert_eq!(a.tick(u64::MAX / 2).unwrap().next_due_ms, None);
}

/// Everything the test knows that must not be readable at rest.
fn secrets_of(node: &mut Node) -> Vec<Vec<u8>> {
    let mut needles = Vec::new();
    for key in node.mls_private_keys_for_testing() {
        // The raw bytes, their hex, and how the old JSON codec wrote them.
        needles.push(hex::encode(&key).into_bytes());
        needles.push(
            serde_json::to_string(&key)
                .unwrap()
                .trim_matches(|c| c == '[' || c == ']')
                .as_bytes()
                .to_vec(),
        );
        needles.push(key);
    }
    needles
}

#[test]
fn nothing_readable_at_rest_in_the_store_or_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let Care {
        mut a,
        b: _,
        c: _,
        net,
        ..
    } = care(dir.path());
    // What the test knows: every patient id and name in the data, and the
    // node's MLS private keys (HPKE leaf keys, signature keys).
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for line in String::from_utf8(data("bulk-10-patients/Patient.000.ndjson"))
        .unwrap()
        .lines()
    {
        let patient: serde_json::Value = serde_json::from_str(line).unwrap();
        needles.push(patient["id"].as_str().unwrap().as_bytes().to_vec());
        for name in patient["name"].as_array().unwrap() {
            needles.push(name["family"].as_str().unwrap().as_bytes().to_vec());
            for given in name["given"].as_array().unwrap() {
                needles.push(given.as_str().unwrap().as_bytes().to_vec());
            }
        }
    }
    let patients = needles.len();
    let secrets = secrets_of(&mut a);
    assert!(secrets.len() >= 3, "the test knows MLS private keys");
    needles.extend(secrets);
    // Erase one chart too (its tombstone keeps the id, sealed).
    let p = a.patients(&net).unwrap()[0].clone();
    a.erase(&net, &p, EraseScope::Chart, T0 + 5).unwrap();
    a.import_fhir(
        &net,
        "more.ndjson",
        &data("bulk-10-patients/Immunization.000.ndjson"),
        T0 + 6,
    )
    .unwrap();
    // The WAL as the running node leaves it, then the file after closing.
    let path = dir.path().join("hospital-a.example.sqlite");
    let wal = std::fs::read(format!("{}-wal", path.display())).unwrap_or_default();
    let live = std::fs::read(&path).unwrap();
    let count = |bytes: &[u8]| {
        needles
            .iter()
            .filter(|n| n.len() >= 4 && bytes.windows(n.len()).any(|w| w == n.as_slice()))
            .count()
    };
    assert_eq!(count(&wal) + count(&live), 0, "something readable at rest");
    drop(a);
    assert_eq!(count(&std::fs::read(&path).unwrap()), 0);
    // The scan finds what it looks for: the same ids in a plain copy.
    let plain = data("bulk-10-patients/Patient.000.ndjson");
    assert!(count(&plain) >= patients / 2);
}
