//! Consent enforced at every use: sharing into a study network, export to
//! a grantee, and the cryptographic cut-off when consent is revoked or
//! expires (DESIGN §6).

use careledger::consent::{Consent, ConsentSource, Grantee, Provision, Purpose};
use careledger::entry::{Entry, EntryKind};
use careledger::node::{ExportFormat, NetworkId, Node};
use careledger::relay::MemoryRelay;
use careledger_scenarios::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DAY: u64 = 86_400_000;

fn patient_ndjson(id: &str, marker: &str) -> String {
    format!(
        "{}\n{}\n{}\n",
        serde_json::json!({"resourceType": "Patient", "id": id, "gender": "female",
                           "birthDate": "1970-01-01"}),
        serde_json::json!({"resourceType": "Observation", "id": format!("{id}-obs"),
            "status": "final", "subject": {"reference": format!("Patient/{id}")},
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "valueQuantity": {"value": 6.1}, "note": [{"text": marker}]}),
        serde_json::json!({"resourceType": "Condition", "id": format!("{id}-cond"),
            "subject": {"reference": format!("Patient/{id}")},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}}),
    )
}

fn new_observation(id: &str, n: usize, marker: &str) -> String {
    serde_json::json!({"resourceType": "Observation", "id": format!("{id}-obs-{n}"),
        "status": "final", "subject": {"reference": format!("Patient/{id}")},
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "valueQuantity": {"value": 7.0}, "note": [{"text": marker}]})
    .to_string()
}

/// Hospital A and a patient's phone in the care network; A and researcher R
/// in the study network.
struct World {
    a: Node,
    phone: Node,
    r: Node,
    care: NetworkId,
    study: NetworkId,
    relay: MemoryRelay,
}

fn world() -> World {
    let mut a = memory_node("hospital-a.example");
    let mut phone = memory_node("phone-p1.example");
    let mut r = memory_node("research.example");
    let mut relay = MemoryRelay::new();
    let care = form_network(&mut [&mut a, &mut phone], &mut relay, "care");
    let study = form_network(&mut [&mut a, &mut r], &mut relay, "study");
    World {
        a,
        phone,
        r,
        care,
        study,
        relay,
    }
}

impl World {
    fn settle_care(&mut self, now: u64) {
        settle(
            &mut [&mut self.a, &mut self.phone],
            &mut self.relay,
            &self.care,
            now,
            10,
        );
    }
    fn settle_study(&mut self, now: u64) {
        settle(
            &mut [&mut self.a, &mut self.r],
            &mut self.relay,
            &self.study,
            now,
            10,
        );
    }
}

fn research_grant(id: &str, patient: &str, study: &NetworkId, classes: &[&str]) -> Consent {
    Consent::grant(
        id,
        patient,
        Grantee::Network(study.clone()),
        vec![Purpose::Research],
        classes.iter().map(|c| c.to_string()).collect(),
        None,
    )
    .unwrap()
}

fn types_in(node: &mut Node, net: &NetworkId, patient: &str) -> Vec<String> {
    let ndjson = node
        .export_patient(net, patient, ExportFormat::Ndjson)
        .unwrap();
    let mut types: Vec<String> = ndjson
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["resourceType"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.dedup();
    types
}

#[test]
fn phone_signed_consent_shares_only_what_it_permits_and_revocation_cuts_the_study_off() {
    let mut w = world();
    let mut ndjson = String::new();
    for p in ["p1", "p2", "p3"] {
        ndjson.push_str(&patient_ndjson(p, &format!("marker-{p}-before")));
    }
    w.a.import_fhir(&w.care, "charts.ndjson", ndjson.as_bytes(), T0)
        .unwrap();
    let phone_id = w.phone.identity().author_id();
    assert!(w.a.link_patient_node(&w.care, "p1", &phone_id, T0).unwrap());
    assert!(!w.a.link_patient_node(&w.care, "p1", &phone_id, T0).unwrap());
    w.settle_care(T0);

    // The phone signs p1's consent: research by the study, Patient and Observation only.
    let consent = research_grant("c-p1", "p1", &w.study, &["Patient", "Observation"]);
    let stored = w.phone.record_consent(&w.care, &consent, T0).unwrap();
    assert_eq!(stored.recorded_on_behalf_by(), None);
    // The hospital records p2's consent on the patient's behalf: everything.
    let stored =
        w.a.record_consent(&w.care, &research_grant("c-p2", "p2", &w.study, &[]), T0)
            .unwrap();
    assert_eq!(
        stored.recorded_on_behalf_by(),
        Some(&w.a.identity().author_id())
    );
    w.settle_care(T0);

    let p1 = w.a.consents(&w.care, "p1").unwrap();
    assert_eq!(p1.consents.len(), 1);
    assert_eq!(p1.consents[0].source, ConsentSource::PatientNode(phone_id));
    assert!(p1.consents[0].mark_matches);
    let p2 = w.a.consents(&w.care, "p2").unwrap();
    assert!(p2.consents[0].source.is_on_behalf());
    assert!(p2.consents[0].mark_matches);

    // Share into the study: p3 has no consent, p1 loses its Condition.
    let report =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, T0 + 1)
            .unwrap();
    assert_eq!(report.patients, 3);
    assert_eq!(report.patients_shared, 2);
    assert_eq!(report.resources_permitted, 2 + 3);
    assert_eq!(report.resources_withheld, 1 + 3);
    assert_eq!(report.consent_ids, ["c-p1", "c-p2"]);
    // Sharing again with nothing changed writes nothing.
    let again =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, T0 + 2)
            .unwrap();
    assert_eq!(again.entries, 0);
    w.settle_study(T0 + 2);
    assert_eq!(w.r.patients(&w.study).unwrap(), ["p1", "p2"]);
    assert_eq!(
        types_in(&mut w.r, &w.study, "p1"),
        ["Consent", "Observation", "Patient"]
    );
    assert_eq!(
        types_in(&mut w.r, &w.study, "p2"),
        ["Condition", "Consent", "Observation", "Patient"]
    );
    // The study sees the consent and who signed it.
    let seen = w.r.consents(&w.study, "p1").unwrap();
    assert_eq!(seen.consents[0].consent.id(), "c-p1");

    // Export to a grantee filters the same way; other purposes get nothing.
    let grantee = [Grantee::Network(w.study.clone())];
    let export =
        w.a.export_for_grantee(
            &w.care,
            "p1",
            &grantee,
            Purpose::Research,
            T0,
            ExportFormat::Ndjson,
        )
        .unwrap();
    assert_eq!((export.included, export.withheld), (2, 1));
    assert!(!export.text.contains("Condition"));
    let claims =
        w.a.export_for_grantee(
            &w.care,
            "p1",
            &grantee,
            Purpose::Claims,
            T0,
            ExportFormat::Ndjson,
        )
        .unwrap();
    assert_eq!((claims.included, claims.withheld), (0, 3));
    // Treatment inside the care network is the default.
    let care = [Grantee::Network(w.care.clone())];
    let treat =
        w.a.export_for_grantee(
            &w.care,
            "p3",
            &care,
            Purpose::Treat,
            T0,
            ExportFormat::Ndjson,
        )
        .unwrap();
    assert_eq!(treat.included, 3);

    // The phone revokes; the hospital writes new data and shares again.
    w.phone
        .record_consent(&w.care, &consent.revoked(), T0 + DAY)
        .unwrap();
    w.settle_care(T0 + DAY);
    w.a.import_fhir(
        &w.care,
        "new.ndjson",
        new_observation("p1", 2, "marker-p1-after").as_bytes(),
        T0 + DAY,
    )
    .unwrap();
    let report =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, T0 + DAY + 1)
            .unwrap();
    assert_eq!(report.records_cut_off, 1);
    assert!(w.a.is_withholding(&w.study, "p1").unwrap());
    // Even data written straight into the study record is out of reach.
    w.a.import_fhir(
        &w.study,
        "direct.ndjson",
        new_observation("p1", 3, "marker-p1-direct").as_bytes(),
        T0 + DAY + 2,
    )
    .unwrap();
    w.settle_study(T0 + DAY + 2);
    let chart =
        w.r.export_patient(&w.study, "p1", ExportFormat::Ndjson)
            .unwrap();
    assert!(chart.contains("marker-p1-before"));
    assert!(!chart.contains("marker-p1-after"));
    assert!(!chart.contains("marker-p1-direct"));
    // The study saw the revocation itself.
    let seen = w.r.consents(&w.study, "p1").unwrap();
    assert_eq!(
        seen.consents[0].consent.status(),
        careledger::consent::ConsentStatus::Inactive
    );
    // The withheld entries are in R's ledger (A's chain is not stuck), unreadable.
    assert!(w.r.held_entries(&w.study).unwrap().is_empty());
    let head_a = |n: &Node| {
        n.heads(&w.study)
            .unwrap()
            .into_iter()
            .find(|h| h.author == w.a.identity().author_id())
            .unwrap()
    };
    assert_eq!(head_a(&w.r), head_a(&w.a));
    let report = w.r.verify_ledger(&w.study).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.record_keys_missing, 1);
    // The audit names the cut-off.
    let audit = w.r.audit(&w.study).unwrap();
    assert!(audit.iter().any(|e| matches!(
        &e.record,
        careledger::node::AuditRecord::KeyWithheld { record, consent, .. }
            if record == "p1" && consent == "c-p1"
    )));

    // A member joining the study later is not granted the withheld key
    // either, and a removal's key rotation does not hand it out.
    let mut late = memory_node("late-research.example");
    let key_package = late.key_package().unwrap();
    w.a.invite(&w.study, &key_package).unwrap();
    careledger::sync::sync(&mut w.a, &mut w.relay, &w.study, T0 + DAY + 3).unwrap();
    careledger::sync::join_from_relay(&mut late, &mut w.relay, &w.study, "study", T0 + DAY + 3)
        .unwrap();
    w.a.remove(&w.study, &w.r.identity().author_id()).unwrap();
    settle(
        &mut [&mut w.a, &mut late, &mut w.r],
        &mut w.relay,
        &w.study,
        T0 + DAY + 4,
        10,
    );
    let chart = late
        .export_patient(&w.study, "p1", ExportFormat::Ndjson)
        .unwrap();
    assert!(chart.contains("marker-p1-before"));
    assert!(!chart.contains("marker-p1-direct"));
    assert!(late.verify_ledger(&w.study).unwrap().is_clean());
    w.a.import_fhir(
        &w.study,
        "direct.ndjson",
        new_observation("p1", 4, "marker-p1-after-removal").as_bytes(),
        T0 + DAY + 5,
    )
    .unwrap();
    settle(
        &mut [&mut w.a, &mut late],
        &mut w.relay,
        &w.study,
        T0 + DAY + 5,
        10,
    );
    let chart = late
        .export_patient(&w.study, "p1", ExportFormat::Ndjson)
        .unwrap();
    assert!(!chart.contains("marker-p1-after-removal"));

    // Consent again: a fresh key is granted, and new data flows.
    w.phone
        .record_consent(
            &w.care,
            &research_grant("c-p1b", "p1", &w.study, &["Observation"]),
            T0 + 2 * DAY,
        )
        .unwrap();
    w.settle_care(T0 + 2 * DAY);
    let report =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, T0 + 2 * DAY)
            .unwrap();
    assert_eq!(report.records_restored, 1);
    assert!(!w.a.is_withholding(&w.study, "p1").unwrap());
}

#[test]
fn a_chart_with_an_unreadable_consent_is_never_shared() {
    let mut w = world();
    w.a.import_fhir(
        &w.care,
        "p.ndjson",
        patient_ndjson("p1", "m").as_bytes(),
        T0,
    )
    .unwrap();
    // Valid FHIR R4 (which checks no invariants), but a period that ends
    // before it starts, which the consent reader refuses.
    let broken = serde_json::json!({"resourceType": "Consent", "id": "bad", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "provision": {"period": {"start": "2025-01-01", "end": "2024-01-01"}}});
    w.a.import_fhir(&w.care, "c.json", broken.to_string().as_bytes(), T0)
        .unwrap();
    w.a.record_consent(&w.care, &research_grant("ok", "p1", &w.study, &[]), T0)
        .unwrap();
    assert_eq!(w.a.consents(&w.care, "p1").unwrap().unreadable, ["bad"]);
    let report =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, T0)
            .unwrap();
    assert_eq!((report.patients_shared, report.unreadable_charts), (0, 1));
    let grantee = [Grantee::Network(w.study.clone())];
    let export =
        w.a.export_for_grantee(
            &w.care,
            "p1",
            &grantee,
            Purpose::Research,
            T0,
            ExportFormat::Ndjson,
        )
        .unwrap();
    assert_eq!(export.included, 0);
}

#[test]
fn a_cut_off_cites_the_revoked_consent_that_covered_the_study_and_no_other() {
    let mut w = world();
    for p in ["p1", "p2"] {
        w.a.import_fhir(&w.care, "p.ndjson", patient_ndjson(p, "m").as_bytes(), T0)
            .unwrap();
        // An unrelated claims consent, revoked first.
        let claims = Consent::grant(
            &format!("claims-{p}"),
            p,
            Grantee::Node(w.r.identity().author_id()),
            vec![Purpose::Claims],
            vec![],
            None,
        )
        .unwrap();
        w.a.record_consent(&w.care, &claims, T0).unwrap();
        w.a.record_consent(&w.care, &claims.revoked(), T0).unwrap();
        let study = research_grant(&format!("study-{p}"), p, &w.study, &[]);
        w.a.record_consent(&w.care, &study, T0).unwrap();
    }
    w.a.share_to_network(&w.care, &w.study, Purpose::Research, T0)
        .unwrap();
    // p1: the study consent is revoked. p2: it is replaced by a claims-only one.
    let p1 = research_grant("study-p1", "p1", &w.study, &[]);
    w.a.record_consent(&w.care, &p1.revoked(), T0 + 1).unwrap();
    let replaced = Consent::grant(
        "study-p2",
        "p2",
        Grantee::Network(w.study.clone()),
        vec![Purpose::Claims],
        vec![],
        None,
    )
    .unwrap();
    w.a.record_consent(&w.care, &replaced, T0 + 1).unwrap();
    let report =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, T0 + 2)
            .unwrap();
    assert_eq!(report.records_cut_off, 2);
    let mut cited: Vec<(String, String, String)> =
        w.a.audit(&w.study)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record {
                careledger::node::AuditRecord::KeyWithheld {
                    record,
                    reason,
                    consent,
                } => Some((record, reason, consent)),
                _ => None,
            })
            .collect();
    cited.sort();
    assert_eq!(
        cited,
        [
            ("p1".into(), "consent revoked".into(), "study-p1".into()),
            ("p2".into(), "no consent".into(), String::new()),
        ]
    );
}

#[test]
fn share_refuses_the_same_network_and_non_members() {
    let mut w = world();
    assert!(matches!(
        w.a.share_to_network(&w.care, &w.care, Purpose::Research, T0),
        Err(careledger::node::ConsentError::SameNetwork)
    ));
    assert!(w
        .r
        .share_to_network(&w.study, &w.care, Purpose::Research, T0)
        .is_err());
}

/// What happens to one patient's consent in the random trial.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Kept,
    Revoked,
    Expired,
}

/// Over many random consents: the grantee decrypts every record change of
/// permitted data, and none written after revocation or expiry — through
/// `share` or straight into the study record.
#[test]
fn grantee_reads_all_permitted_data_and_nothing_after_cut_off() {
    let count: usize = std::env::var("CARELEDGER_CONSENT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240);
    let mut rng = ChaCha8Rng::seed_from_u64(0xC0_75E7);
    let mut w = world();
    let t1 = T0 + DAY;
    let t2 = T0 + 10 * DAY;
    let t3 = T0 + 20 * DAY;
    let mut fates = Vec::new();
    let mut ndjson = String::new();
    for i in 0..count {
        let p = format!("p{i:04}");
        ndjson.push_str(&patient_ndjson(&p, "before"));
        let fate = match rng.random_range(0..3) {
            0 => Fate::Kept,
            1 => Fate::Revoked,
            _ => Fate::Expired,
        };
        // Random classes (never excluding Observation, so something is shared),
        // random start, an end after t3 unless the consent is to expire.
        let mut classes = vec!["Observation".to_string()];
        if rng.random_bool(0.5) {
            classes.push("Patient".into());
        }
        if rng.random_bool(0.3) {
            classes.push("Condition".into());
        }
        let start = T0 - rng.random_range(0..100) * DAY;
        let end = match fate {
            Fate::Expired => t1 + rng.random_range(1..(t2 - t1)),
            _ => t3 + rng.random_range(1..1000) * DAY,
        };
        let mut consent = Consent::grant(
            &format!("c{i:04}"),
            &p,
            Grantee::Network(w.study.clone()),
            vec![Purpose::Research],
            classes,
            Some((start, end)),
        )
        .unwrap();
        if rng.random_bool(0.25) {
            consent = consent
                .with_exception(Provision::deny().class("Condition"))
                .unwrap();
        }
        fates.push((p, fate, consent));
    }
    w.a.import_fhir(&w.care, "charts.ndjson", ndjson.as_bytes(), T0)
        .unwrap();
    for (_, _, consent) in &fates {
        w.a.record_consent(&w.care, consent, T0).unwrap();
    }
    let shared =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, t1)
            .unwrap();
    assert_eq!(shared.patients_shared, count);
    w.settle_study(t1);

    // Before any cut-off: every record change R received opens.
    let entries = w.r.ledger_entries(&w.study).unwrap();
    let changes: Vec<&Vec<u8>> = entries
        .iter()
        .filter(|b| Entry::decode(b).unwrap().header.kind == EntryKind::RecordChange)
        .collect();
    assert!(changes.len() >= count);
    for bytes in &changes {
        w.r.can_read_entry(&w.study, bytes).unwrap();
    }

    // Revocations, then time passes beyond every expiry.
    for (_, fate, consent) in &fates {
        if *fate == Fate::Revoked {
            w.a.record_consent(&w.care, &consent.revoked(), t2).unwrap();
        }
    }
    let cut =
        w.a.share_to_network(&w.care, &w.study, Purpose::Research, t3)
            .unwrap();
    let cut_off = fates.iter().filter(|f| f.1 != Fate::Kept).count();
    assert_eq!(cut.records_cut_off, cut_off);

    // New data for everyone, shared; and, for the cut-off charts, also
    // written straight into the study (as a careless integration might).
    let mut after = String::new();
    for (p, _, _) in &fates {
        after.push_str(&new_observation(p, 2, &format!("after-{p}")));
        after.push('\n');
    }
    w.a.import_fhir(&w.care, "after.ndjson", after.as_bytes(), t3 + 1)
        .unwrap();
    w.a.share_to_network(&w.care, &w.study, Purpose::Research, t3 + 2)
        .unwrap();
    let mut direct = String::new();
    for (p, fate, _) in &fates {
        if *fate != Fate::Kept {
            direct.push_str(&new_observation(p, 3, &format!("direct-{p}")));
            direct.push('\n');
        }
    }
    w.a.import_fhir(&w.study, "direct.ndjson", direct.as_bytes(), t3 + 3)
        .unwrap();
    w.settle_study(t3 + 3);
    assert!(w.r.held_entries(&w.study).unwrap().is_empty());

    // Entries A wrote to the study after the cut-off: readable exactly when
    // they carry data of patients whose consent still holds.
    let entries = w.r.ledger_entries(&w.study).unwrap();
    let (mut readable, mut unreadable) = (0, 0);
    for bytes in &entries {
        let entry = Entry::decode(bytes).unwrap();
        if entry.header.kind != EntryKind::RecordChange || entry.header.time_ms < t3 + 1 {
            continue;
        }
        match w.r.can_read_entry(&w.study, bytes) {
            Ok(_) => readable += 1,
            Err(_) => unreadable += 1,
        }
    }
    let kept = count - cut_off;
    assert_eq!(readable, kept, "one shared change per kept patient");
    assert_eq!(unreadable, cut_off, "one direct change per cut-off patient");
    for (p, fate, _) in &fates {
        let chart =
            w.r.export_patient(&w.study, p, ExportFormat::Ndjson)
                .unwrap();
        assert_eq!(
            chart.contains(&format!("after-{p}")),
            *fate == Fate::Kept,
            "{p}"
        );
        assert!(!chart.contains(&format!("direct-{p}")));
    }
    assert!(w.r.verify_ledger(&w.study).unwrap().is_clean());
}
