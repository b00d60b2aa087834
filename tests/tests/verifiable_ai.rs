//! Verifiable AI across institutions (DESIGN §7): a researcher trains on
//! consented records through the ledger, another member re-verifies,
//! tampering is named, predictions are decision entries, revoked consent
//! leaves later datasets, and a federated round is recomputable.
//!
//! The data is the breast-cancer CSV, loaded as FHIR (a Patient, 30
//! Observations and a Condition per row) into records first. Failure
//! messages print counts and metrics only.

use std::collections::BTreeSet;

use careledger::analytics::example_data::BreastCancerData;
use careledger::analytics::ledger::{Holdout, ModelCard};
use careledger::analytics::{
    evaluate, AnalyticsError, ExtractDatasetError, Feature, Metrics, ModelKind, TrainModelError,
};
use careledger::checkpoint::dataset::Membership;
use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
use careledger::entry::{Entry, EntryKind};
use careledger::node::{
    AiError, AuditRecord, NetworkId, Node, PredictInput, TrainRequest, VerifyOutcome, VerifyStep,
};
use careledger::relay::MemoryRelay;
use careledger_scenarios::*;

const DAY: u64 = 86_400_000;

fn ml_file(name: &str) -> String {
    let path = format!("{}/../examples/data/ml/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("test data present")
}

fn data() -> BreastCancerData {
    BreastCancerData::parse(&ml_file("breast_cancer.csv")).expect("csv")
}

fn test_ids() -> Vec<String> {
    ml_file("breast_cancer_split_test_idx.txt")
        .lines()
        .map(|l| BreastCancerData::patient_id(l.trim().parse().expect("index")))
        .collect()
}

/// The patient a converted resource belongs to.
fn owner(line: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    match value["subject"]["reference"].as_str() {
        Some(reference) => reference.trim_start_matches("Patient/").to_owned(),
        None => value["id"].as_str().unwrap().to_owned(),
    }
}

/// FHIR for the rows `keep` selects, with a research consent to `study`
/// recorded on each patient's behalf by `recorder`.
fn charts_with_consent(
    data: &BreastCancerData,
    keep: impl Fn(usize) -> bool,
    study: &NetworkId,
    recorder: &Node,
) -> String {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    for line in data.to_ndjson().lines() {
        let patient = owner(line);
        let row = BreastCancerData::row_of(&patient).unwrap();
        if !keep(row) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if seen.insert(patient.clone()) {
            let consent = Consent::grant(
                &format!("consent-{patient}"),
                &patient,
                Grantee::Network(study.clone()),
                vec![Purpose::Research],
                vec![],
                None,
            )
            .unwrap()
            .marked_for(&ConsentSource::OnBehalf {
                recorder: recorder.identity().author_id(),
            });
            out.push_str(&consent.to_json());
            out.push('\n');
        }
    }
    out
}

/// Hospital A and researcher R in a study network; A holds the charts of
/// the rows `keep` selects, with consents, in the study.
struct Study {
    a: Node,
    r: Node,
    study: NetworkId,
    relay: MemoryRelay,
    data: BreastCancerData,
}

fn study(keep: impl Fn(usize) -> bool) -> Study {
    let mut a = memory_node("hospital-a.example");
    let mut r = memory_node("research.example");
    let mut relay = MemoryRelay::new();
    let study = form_network(&mut [&mut a, &mut r], &mut relay, "study");
    let data = data();
    let ndjson = charts_with_consent(&data, keep, &study, &a);
    a.import_fhir(&study, "wdbc.ndjson", ndjson.as_bytes(), T0)
        .unwrap();
    settle(&mut [&mut a, &mut r], &mut relay, &study, T0, 10);
    Study {
        a,
        r,
        study,
        relay,
        data,
    }
}

impl Study {
    fn settle(&mut self, now: u64) {
        settle(
            &mut [&mut self.a, &mut self.r],
            &mut self.relay,
            &self.study,
            now,
            10,
        );
    }
}

fn accuracy(metrics: &Option<Metrics>) -> f64 {
    match metrics {
        Some(Metrics::Classification(m)) => m.accuracy,
        other => panic!("not classification metrics: {}", other.is_some()),
    }
}

#[test]
fn researcher_trains_through_the_ledger_and_another_member_confirms() {
    let mut s = study(|_| true);
    let mut request = TrainRequest::new(s.data.spec(), ModelKind::logistic_regression());
    request.holdout = Holdout::Records(test_ids());
    let mut stages = Vec::new();
    let trained =
        s.r.train_model(&s.study, &request, T0 + 1, &mut |stage| stages.push(stage))
            .unwrap();
    let card = &trained.card;
    assert_eq!((card.training_rows, card.test_rows), (426, 143));
    assert_eq!(card.dataset.as_ref().unwrap().size, 569);
    assert_eq!(card.consent_ids.len(), 569);
    assert_eq!(card.excluded_by_consent, 0);
    let test_accuracy = accuracy(&card.metrics);
    eprintln!("logistic regression through the ledger: test accuracy {test_accuracy:.5}");
    assert!(test_accuracy >= 0.979, "accuracy {test_accuracy}");
    assert!(stages.len() > 5);

    s.settle(T0 + 2);
    let verification = s.a.verify_model(&s.study, &trained.entry).unwrap();
    assert_eq!(verification.outcome, VerifyOutcome::Confirmed);
    assert_eq!(verification.passed.len(), 7);

    // Later writes do not change what the card's checkpoint covers.
    let ndjson = r#"{"resourceType":"Observation","id":"wdbc-0-late","status":"final","subject":{"reference":"Patient/wdbc-0"},"code":{"coding":[{"system":"urn:x","code":"y"}]}}"#;
    s.a.import_fhir(&s.study, "late.ndjson", ndjson.as_bytes(), T0 + 3)
        .unwrap();
    s.settle(T0 + 3);
    assert!(s
        .a
        .verify_model(&s.study, &trained.entry)
        .unwrap()
        .is_confirmed());
}

#[test]
fn tampering_with_any_input_gives_a_mismatch_naming_it() {
    let mut s = study(|row| row % 3 == 0);
    let request = TrainRequest::new(s.data.spec(), ModelKind::logistic_regression());
    let trained =
        s.r.train_model(&s.study, &request, T0 + 1, &mut |_| {})
            .unwrap();
    s.settle(T0 + 1);
    let stored = s.a.model_card(&s.study, &trained.entry).unwrap();
    let trainer = s.r.identity().author_id();
    let net = s.study.clone();
    let check = |a: &mut Node, card: &ModelCard, model: &[u8]| {
        a.verify_card(&net, card, model, &trainer)
            .unwrap()
            .mismatch()
    };
    assert_eq!(check(&mut s.a, &stored.card, &stored.model), None);

    // The model bytes.
    let mut model = stored.model.clone();
    let last = model.len() - 2;
    model[last] ^= 1;
    assert_eq!(
        check(&mut s.a, &stored.card, &model),
        Some(VerifyStep::ModelBytes)
    );
    // The feature spec (one code changed, the hash left as it was).
    let mut card = stored.card.clone();
    card.feature_spec.features[0] = Feature::LatestObservation {
        system: "http://loinc.org".into(),
        code: "2345-7".into(),
    };
    assert_eq!(
        check(&mut s.a, &card, &stored.model),
        Some(VerifyStep::FeatureSpec)
    );
    // A record: the trainer edits one chart, trains, and claims the earlier
    // checkpoint for the new model and dataset.
    s.r.edit_member(
        &s.study,
        "wdbc-3",
        "Observation",
        "wdbc-3-f0",
        "valueQuantity",
        Some(r#"{"value":99.5}"#),
        T0 + 2,
    )
    .unwrap();
    let retrained =
        s.r.train_model(&s.study, &request, T0 + 3, &mut |_| {})
            .unwrap();
    s.settle(T0 + 3);
    let retrained_card = s.a.model_card(&s.study, &retrained.entry).unwrap();
    let mut forged = retrained_card.card.clone();
    forged.checkpoint = stored.card.checkpoint.clone();
    forged.checkpoint_digest = stored.card.checkpoint_digest.clone();
    let outcome =
        s.a.verify_card(&s.study, &forged, &retrained_card.model, &trainer)
            .unwrap();
    assert_eq!(outcome.mismatch(), Some(VerifyStep::Dataset));
    let VerifyOutcome::Mismatch { detail, .. } = &outcome.outcome else {
        unreachable!()
    };
    assert!(detail.contains("root"), "{detail}");
    // The consents relied on.
    let mut card = stored.card.clone();
    card.consent_ids.push("consent-made-up".into());
    assert_eq!(
        check(&mut s.a, &card, &stored.model),
        Some(VerifyStep::Consent)
    );
    // A different model under a matching hash.
    let other =
        s.r.train_model(
            &s.study,
            &TrainRequest {
                seed: 7,
                kind: ModelKind::LogisticRegression {
                    alpha: 10.0,
                    max_iterations: 100,
                    gradient_tolerance: 1e-4,
                },
                ..request.clone()
            },
            T0 + 4,
            &mut |_| {},
        )
        .unwrap();
    let other_bytes = other.model.to_bytes();
    let mut card = stored.card.clone();
    card.model_hash = other.card.model_hash.clone();
    assert_eq!(
        check(&mut s.a, &card, &other_bytes),
        Some(VerifyStep::Model)
    );
    // A checkpoint this replica has not reached.
    let mut card = stored.card.clone();
    card.checkpoint = s.r.checkpoint(&s.study).unwrap().checkpoint().clone();
    s.r.import_fhir(
        &s.study,
        "unsent.ndjson",
        br#"{"resourceType":"Patient","id":"zz"}"#,
        T0 + 5,
    )
    .unwrap();
    card.checkpoint = s.r.checkpoint(&s.study).unwrap().checkpoint().clone();
    card.checkpoint_digest = hex::encode(card.checkpoint.digest());
    assert_eq!(
        check(&mut s.a, &card, &stored.model),
        Some(VerifyStep::Checkpoint)
    );
    // A card handed over as JSON reads back the same.
    let json = stored.card.to_json();
    assert_eq!(ModelCard::from_json(json.as_bytes()).unwrap(), stored.card);
    assert!(ModelCard::from_json(b"{\"format\":\"x\"}").is_err());
}

#[test]
fn every_prediction_is_exactly_one_decision_entry() {
    let mut s = study(|row| row % 4 == 0);
    let request = TrainRequest::new(s.data.spec(), ModelKind::logistic_regression());
    let trained =
        s.r.train_model(&s.study, &request, T0 + 1, &mut |_| {})
            .unwrap();
    let patients = s.r.patients(&s.study).unwrap();
    let mut made = 0;
    for (i, patient) in patients.iter().take(25).enumerate() {
        let outcome =
            s.r.predict(
                &s.study,
                &trained.entry,
                &PredictInput::Record(patient.clone()),
                Purpose::Research,
                T0 + 10 + i as u64,
            )
            .unwrap();
        assert_eq!(outcome.decision.subject.as_deref(), Some(patient.as_str()));
        assert_eq!(outcome.decision.consent_ids, [format!("consent-{patient}")]);
        made += 1;
    }
    let features = vec![1.0; s.data.columns().len()];
    for i in 0..5 {
        s.r.predict(
            &s.study,
            &trained.entry,
            &PredictInput::Features(features.clone()),
            Purpose::Research,
            T0 + 100 + i,
        )
        .unwrap();
        made += 1;
    }
    // Refused and failed predictions write nothing.
    assert!(matches!(
        s.r.predict(
            &s.study,
            &trained.entry,
            &PredictInput::Record(patients[0].clone()),
            Purpose::Claims,
            T0 + 200,
        ),
        Err(AiError::ConsentDenied { .. })
    ));
    assert!(s
        .r
        .predict(
            &s.study,
            &trained.entry,
            &PredictInput::Features(vec![1.0; 3]),
            Purpose::Research,
            T0 + 201
        )
        .is_err());
    assert!(matches!(
        s.r.predict(
            &s.study,
            &trained.entry,
            &PredictInput::Record("nobody".into()),
            Purpose::Research,
            T0 + 202
        ),
        Err(AiError::UnknownPatient)
    ));

    // Other model kinds are just as reproducible on another replica.
    let mut others = Vec::new();
    for kind in [ModelKind::decision_tree(), ModelKind::k_means(2)] {
        let request = TrainRequest::new(s.data.spec(), kind);
        others.push(
            s.r.train_model(&s.study, &request, T0 + 250, &mut |_| {})
                .unwrap(),
        );
    }

    s.settle(T0 + 300);
    for other in &others {
        let verification = s.a.verify_model(&s.study, &other.entry).unwrap();
        assert_eq!(verification.outcome, VerifyOutcome::Confirmed);
    }
    let decisions: Vec<_> =
        s.a.audit(&s.study)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record {
                AuditRecord::Decision(d) => Some((e.entry, e.author, d)),
                _ => None,
            })
            .collect();
    assert_eq!(decisions.len(), made);
    let ledger = s.a.ledger_entries(&s.study).unwrap();
    let decision_entries = ledger
        .iter()
        .filter(|b| Entry::decode(b).unwrap().header.kind == EntryKind::Decision)
        .count();
    assert_eq!(decision_entries, made);
    // Each exports as a FHIR Provenance that the library's own parser accepts.
    for (entry, author, decision) in &decisions {
        assert_eq!(decision.model_hash, trained.card.model_hash);
        let provenance = decision.to_provenance(&entry.to_hex(), &author.to_hex());
        let text = provenance.to_string();
        careledger::record::fhir::parse_auto("provenance.json", text.as_bytes())
            .expect("valid FHIR Provenance");
        assert_eq!(provenance["resourceType"], "Provenance");
    }
}

#[test]
fn revoked_consent_provably_removes_the_patient_from_later_datasets() {
    let mut s = study(|row| row % 3 == 1);
    let request = TrainRequest::new(s.data.spec(), ModelKind::logistic_regression());
    let first =
        s.r.train_model(&s.study, &request, T0 + 1, &mut |_| {})
            .unwrap();
    let patient = "wdbc-4";
    let (commitment, proof) =
        s.r.prove_dataset_membership(&s.study, &first.entry, patient)
            .unwrap();
    // The patient's phone checks the proof against the card alone.
    let claimed = first.card.dataset.as_ref().unwrap();
    assert_eq!(hex::encode(commitment.root), claimed.root);
    let proof = careledger::checkpoint::dataset::MembershipProof::decode(&proof.encode()).unwrap();
    assert!(matches!(
        commitment.verify(patient, &proof).unwrap(),
        Membership::Included { .. }
    ));
    // Someone never in the study is provably absent.
    let (_, absent) =
        s.r.prove_dataset_membership(&s.study, &first.entry, "wdbc-5")
            .unwrap();
    assert!(matches!(
        commitment.verify("wdbc-5", &absent).unwrap(),
        Membership::NotIncluded
    ));

    // The patient revokes (recorded by the hospital on their behalf).
    s.settle(T0 + DAY);
    let consent = s.a.consents(&s.study, patient).unwrap().consents[0]
        .consent
        .clone();
    s.a.record_consent(&s.study, &consent.revoked(), T0 + DAY)
        .unwrap();
    s.settle(T0 + DAY);
    let second =
        s.r.train_model(&s.study, &request, T0 + DAY + 1, &mut |_| {})
            .unwrap();
    assert_eq!(
        second.card.dataset.as_ref().unwrap().size + 1,
        first.card.dataset.as_ref().unwrap().size
    );
    assert_eq!(second.card.excluded_by_consent, 1);
    assert!(!second
        .card
        .consent_ids
        .contains(&format!("consent-{patient}")));
    let (commitment, proof) =
        s.r.prove_dataset_membership(&s.study, &second.entry, patient)
            .unwrap();
    assert!(matches!(
        commitment.verify(patient, &proof).unwrap(),
        Membership::NotIncluded
    ));
    // A proof for the first dataset does not pass for the second.
    let (_, old_proof) =
        s.r.prove_dataset_membership(&s.study, &first.entry, patient)
            .unwrap();
    assert!(commitment.verify(patient, &old_proof).is_err());
    // A consent that withholds the label's type (Condition) leaves the
    // chart out rather than reading it as "no diagnosis".
    let other = "wdbc-7";
    let consent = s.a.consents(&s.study, other).unwrap().consents[0]
        .consent
        .clone();
    let narrowed = consent
        .with_exception(careledger::consent::Provision::deny().class("Condition"))
        .unwrap();
    s.a.record_consent(&s.study, &narrowed, T0 + DAY + 1)
        .unwrap();
    s.settle(T0 + DAY + 1);
    let third =
        s.r.train_model(&s.study, &request, T0 + DAY + 2, &mut |_| {})
            .unwrap();
    assert_eq!(third.card.excluded_by_consent, 2);

    // All cards still verify at their own checkpoints.
    s.settle(T0 + DAY + 3);
    for entry in [&first.entry, &second.entry, &third.entry] {
        assert!(s.a.verify_model(&s.study, entry).unwrap().is_confirmed());
    }
}

#[test]
fn bad_inputs_give_typed_errors_and_write_nothing() {
    let mut s = study(|row| row % 5 == 0);
    let before = s.r.ledger_entries(&s.study).unwrap().len();
    // An unknown feature code.
    let mut spec = s.data.spec();
    spec.features.push(Feature::LatestObservation {
        system: "http://loinc.org".into(),
        code: "0000-0".into(),
    });
    let error =
        s.r.train_model(
            &s.study,
            &TrainRequest::new(spec, ModelKind::logistic_regression()),
            T0,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            AiError::Analytics(AnalyticsError::Extract(
                ExtractDatasetError::UnknownFeatureCode { .. }
            ))
        ),
        "{error}"
    );
    // Consent for another purpose leaves nothing.
    let mut request = TrainRequest::new(s.data.spec(), ModelKind::logistic_regression());
    request.purpose = Purpose::Claims;
    let error =
        s.r.train_model(&s.study, &request, T0, &mut |_| {})
            .unwrap_err();
    assert!(
        matches!(error, AiError::EmptyAfterConsent { excluded, .. } if excluded == 114),
        "{error}"
    );
    assert!(error.to_string().contains("CLMATTCH"));
    // A fit that cannot converge.
    let request = TrainRequest::new(
        s.data.spec(),
        ModelKind::LogisticRegression {
            alpha: 1.0,
            max_iterations: 1,
            gradient_tolerance: 1e-12,
        },
    );
    let error =
        s.r.train_model(&s.study, &request, T0, &mut |_| {})
            .unwrap_err();
    assert!(
        matches!(
            error,
            AiError::Analytics(AnalyticsError::Train(TrainModelError::NotConverged { .. }))
        ),
        "{error}"
    );
    // A bad hold-out.
    let mut request = TrainRequest::new(s.data.spec(), ModelKind::logistic_regression());
    request.holdout = Holdout::Fraction(1.5);
    assert!(matches!(
        s.r.train_model(&s.study, &request, T0, &mut |_| {}),
        Err(AiError::Holdout(_))
    ));
    // An unknown card.
    assert!(matches!(
        s.a.verify_model(&s.study, &careledger::entry::EntryId([9; 32])),
        Err(AiError::UnknownModelCard)
    ));
    assert_eq!(s.r.ledger_entries(&s.study).unwrap().len(), before);

    // A model file of another format version is named, not loaded.
    let trained =
        s.r.train_model(
            &s.study,
            &TrainRequest::new(s.data.spec(), ModelKind::logistic_regression()),
            T0,
            &mut |_| {},
        )
        .unwrap();
    let text = String::from_utf8(trained.model.to_bytes()).unwrap();
    let other = text.replacen("\"format_version\":1", "\"format_version\":99", 1);
    assert_ne!(other, text);
    let mut card = trained.card.clone();
    card.model_hash = careledger::analytics::ledger::sha256_hex(other.as_bytes());
    let outcome =
        s.r.verify_card(
            &s.study,
            &card,
            other.as_bytes(),
            &s.r.identity().author_id(),
        )
        .unwrap();
    assert_eq!(outcome.mismatch(), Some(VerifyStep::ModelBytes));
    let VerifyOutcome::Mismatch { detail, .. } = outcome.outcome else {
        unreachable!()
    };
    assert!(detail.contains("version"), "{detail}");
}

#[test]
fn federated_round_is_recomputable_and_close_to_centralised() {
    let data = data();
    let tests = test_ids();
    let test_set: BTreeSet<&str> = tests.iter().map(String::as_str).collect();
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let mut r = memory_node("research.example");
    let mut relay = MemoryRelay::new();
    let study = form_network(&mut [&mut r, &mut a, &mut b], &mut relay, "study");
    // Each hospital keeps its own charts in its own care network.
    let care_a = a.create_network("care-a").unwrap();
    let care_b = b.create_network("care-b").unwrap();
    let at_a = |row: usize| row % 5 < 3;
    a.import_fhir(
        &care_a,
        "a.ndjson",
        charts_with_consent(&data, at_a, &study, &a).as_bytes(),
        T0,
    )
    .unwrap();
    b.import_fhir(
        &care_b,
        "b.ndjson",
        charts_with_consent(&data, |row| !at_a(row), &study, &b).as_bytes(),
        T0,
    )
    .unwrap();

    let mut request = TrainRequest::new(data.spec(), ModelKind::logistic_regression());
    request.holdout = Holdout::Records(tests.clone());
    let ua = a
        .publish_model_update(&care_a, &study, "round-1", &request, T0 + 1)
        .unwrap();
    let ub = b
        .publish_model_update(&care_b, &study, "round-1", &request, T0 + 1)
        .unwrap();
    assert_eq!(ua.facts.samples + ub.facts.samples, 426);
    settle(
        &mut [&mut r, &mut a, &mut b],
        &mut relay,
        &study,
        T0 + 2,
        10,
    );
    // No raw record reached the study.
    assert!(r.patients(&study).unwrap().is_empty());

    let global = r.federated_round(&study, "round-1", T0 + 3).unwrap();
    assert_eq!(global.card.training_rows, 426);
    // Every chart read at the sites (held-out ones too) relied on its consent.
    assert_eq!(global.card.consent_ids.len(), 569);
    settle(
        &mut [&mut r, &mut a, &mut b],
        &mut relay,
        &study,
        T0 + 4,
        10,
    );
    for node in [&mut a, &mut b] {
        let verification = node.verify_model(&study, &global.entry).unwrap();
        assert_eq!(verification.outcome, VerifyOutcome::Confirmed);
    }
    // Independent recomputation from the two site models agrees to 1e-12.
    let updates = [
        ua.model.to_update("a").unwrap(),
        ub.model.to_update("b").unwrap(),
    ];
    let total = (updates[0].samples + updates[1].samples) as f64;
    let (weights, intercept) = global.model.raw_parameters().unwrap();
    let got: Vec<f64> = weights.into_iter().chain([intercept]).collect();
    for (j, g) in got.iter().enumerate() {
        let e: f64 = updates
            .iter()
            .rev()
            .map(|u| u.samples as f64 / total * u.params[j])
            .sum();
        assert!((g - e).abs() <= 1e-12 * e.abs().max(1.0), "parameter {j}");
    }
    // A second update from one site in the same round is refused.
    b.publish_model_update(&care_b, &study, "round-1", &request, T0 + 5)
        .unwrap();
    settle(
        &mut [&mut r, &mut a, &mut b],
        &mut relay,
        &study,
        T0 + 5,
        10,
    );
    assert!(matches!(
        r.federated_round(&study, "round-1", T0 + 6),
        Err(AiError::DuplicateSite { .. })
    ));
    assert!(matches!(
        r.federated_round(&study, "round-9", T0 + 6),
        Err(AiError::NoUpdates(_))
    ));

    // Centralised training on the pooled data, held-out split the same.
    let mut pooled = study_with_all(&data);
    let central = pooled
        .r
        .train_model(&pooled.study, &request, T0, &mut |_| {})
        .unwrap();
    let (_, test_data) = pooled.r.build_dataset(&pooled.study, &request, T0).unwrap();
    let rows: Vec<usize> = test_data
        .extracted
        .record_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| test_set.contains(id.as_str()))
        .map(|(row, _)| row)
        .collect();
    let held_out = test_data.extracted.dataset.select(&rows).unwrap();
    let federated = accuracy(&Some(evaluate(&global.model, &held_out).unwrap()));
    let centralised = accuracy(&central.card.metrics);
    eprintln!("two-site FedAvg test accuracy {federated:.5}, centralised {centralised:.5}");
    assert!((federated - centralised).abs() <= 0.02);
    pooled.settle(T0);
}

fn study_with_all(_: &BreastCancerData) -> Study {
    study(|_| true)
}
