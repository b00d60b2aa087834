//! Pinned formats: the feature spec's canonical JSON and hash, the model file
//! and the model-update wire form. A change here is a format change: bump
//! the version constant and keep reading the old one, or say why not.

use careledger::analytics::{
    fedavg, train, Dataset, Feature, FeatureSpec, MissingPolicy, ModelKind, ModelUpdate,
    TrainedModel, FEATURE_SPEC_VERSION, MODEL_FORMAT_VERSION, MODEL_UPDATE_FORMAT_VERSION,
};
use ndarray::array;

fn spec() -> FeatureSpec {
    FeatureSpec::new(
        vec![
            Feature::AgeAt {
                date: "2025-01-01".into(),
            },
            Feature::Sex,
            Feature::LatestObservation {
                system: "http://loinc.org".into(),
                code: "4548-4".into(),
            },
            Feature::MedicationClass {
                system: "http://www.nlm.nih.gov/research/umls/rxnorm".into(),
                codes: vec!["860975".into(), "106892".into()],
            },
        ],
        Some(Feature::HasCondition {
            system: "http://snomed.info/sct".into(),
            codes: vec!["44054006".into()],
        }),
        MissingPolicy::ImputeMean,
    )
}

#[test]
fn feature_spec_canonical_json_and_hash() {
    assert_eq!(FEATURE_SPEC_VERSION, 1);
    insta::assert_snapshot!("feature_spec_v1", spec().canonical_json());
    // Known answer: SHA-256 of the canonical JSON above.
    assert_eq!(
        hex::encode(spec().hash()),
        "a603c98b19e572068293fbfa4dd404759bda9011b4b1cc89518330f232e83d56"
    );
}

fn update(site: &str, params: Vec<f64>, samples: u64) -> ModelUpdate {
    ModelUpdate {
        site: site.into(),
        kind: ModelKind::logistic_regression(),
        feature_spec_hash: spec().hash(),
        params,
        samples,
    }
}

#[test]
fn model_file_v1() {
    assert_eq!(MODEL_FORMAT_VERSION, 1);
    assert_eq!(MODEL_UPDATE_FORMAT_VERSION, 1);
    let updates = [
        update("site-b", vec![0.5, -1.25, 2.0, 0.0, 0.125], 30),
        update("site-a", vec![0.25, -1.0, 1.0, 0.5, -0.5], 10),
    ];
    insta::assert_snapshot!(
        "model_update_v1",
        String::from_utf8(updates[0].to_bytes()).expect("utf-8")
    );
    let global = fedavg(&updates).expect("fedavg");
    let bytes = global.to_bytes();
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    // The library version is the only member that changes between releases.
    let pinned = text.replace(
        &format!("\"library_version\":\"{}\"", careledger::VERSION),
        "\"library_version\":\"[version]\"",
    );
    insta::assert_snapshot!("model_fedavg_logistic_v1", pinned);
    assert_eq!(TrainedModel::from_bytes(&bytes).expect("load"), global);
}

#[test]
fn decision_tree_file_v1() {
    let x = array![
        [1.0, 10.0],
        [2.0, 10.0],
        [3.0, 20.0],
        [4.0, 20.0],
        [5.0, 30.0],
        [6.0, 30.0]
    ];
    let y = array![0.0, 0.0, 1.0, 0.0, 1.0, 1.0];
    let data = Dataset::from_arrays(x, Some(y), [9; 32]).expect("dataset");
    let tree = train(
        &ModelKind::DecisionTree {
            max_depth: 2,
            min_samples_split: 2,
        },
        &data,
        0,
    )
    .expect("tree");
    let text = String::from_utf8(tree.to_bytes()).expect("utf-8").replace(
        &format!("\"library_version\":\"{}\"", careledger::VERSION),
        "\"library_version\":\"[version]\"",
    );
    insta::assert_snapshot!("model_decision_tree_v1", text);
}

mod decoders {
    use super::*;
    use careledger::analytics::predict;
    use proptest::prelude::*;

    fn feature() -> impl Strategy<Value = Feature> {
        let code = "[a-z0-9:/.-]{1,12}";
        prop_oneof![
            (code, code).prop_map(|(system, code)| Feature::LatestObservation { system, code }),
            (1900u32..2100, 1u32..13, 1u32..29).prop_map(|(y, m, d)| Feature::AgeAt {
                date: format!("{y:04}-{m:02}-{d:02}")
            }),
            Just(Feature::Sex),
            (code, prop::collection::vec(code, 1..4))
                .prop_map(|(system, codes)| Feature::HasCondition { system, codes }),
            (code, prop::collection::vec(code, 1..4))
                .prop_map(|(system, codes)| Feature::MedicationClass { system, codes }),
        ]
    }

    fn trained_models() -> Vec<TrainedModel> {
        let x = array![
            [1.0, 10.0],
            [2.0, 12.0],
            [3.0, 20.0],
            [4.0, 19.0],
            [5.0, 30.0],
            [6.0, 33.0]
        ];
        let y = array![0.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let data = Dataset::from_arrays(x, Some(y), [9; 32]).expect("dataset");
        [
            ModelKind::decision_tree(),
            ModelKind::k_means(2),
            ModelKind::LinearRegression,
        ]
        .iter()
        .map(|kind| train(kind, &data, 1).expect("train"))
        .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn spec_canonical_json_round_trips(
            features in prop::collection::vec(feature(), 1..5),
            label in prop::option::of(feature()),
            policy in prop_oneof![Just(MissingPolicy::DropRow), Just(MissingPolicy::Fail), Just(MissingPolicy::ImputeMean)],
        ) {
            let spec = FeatureSpec::new(features, label, policy);
            let parsed = FeatureSpec::from_json(&spec.canonical_json()).expect("valid");
            prop_assert_eq!(parsed.hash(), spec.hash());
            prop_assert_eq!(parsed, spec);
        }

        #[test]
        fn model_updates_round_trip(
            params in prop::collection::vec(-1e6f64..1e6, 2..8),
            samples in 1u64..1_000_000,
            site in "[a-z-]{1,16}",
        ) {
            let update = ModelUpdate {
                site,
                kind: ModelKind::logistic_regression(),
                feature_spec_hash: [1; 32],
                params,
                samples,
            };
            prop_assert_eq!(ModelUpdate::from_bytes(&update.to_bytes()).expect("decode"), update);
        }

        /// Corrupted model files are rejected or, if still well-formed, predict without panicking.
        #[test]
        fn mutated_model_files_never_panic(
            which in 0usize..3,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = trained_models()[which].to_bytes();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Ok(model) = TrainedModel::from_bytes(&bytes) {
                let _ = predict(&model, &vec![0.5; model.n_features()]);
            }
        }

        #[test]
        fn arbitrary_bytes_are_not_models(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            prop_assert!(TrainedModel::from_bytes(&bytes).is_err());
            let _ = ModelUpdate::from_bytes(&bytes);
        }
    }
}

mod ledger_bodies {
    //! The bodies analytics writes to the ledger: model card, decision,
    //! model-update entry, key-withheld notice.

    use careledger::analytics::ledger::{
        CardOrigin, DatasetRef, DecisionRecord, Holdout, ModelCard, UpdateFacts,
        DECISION_FORMAT_VERSION, MODEL_CARD_FORMAT_VERSION, UPDATE_FACTS_FORMAT_VERSION,
    };
    use careledger::analytics::{ModelKind, Prediction};
    use careledger::body::{KeyWithheldBody, PairBody, WithholdReason};
    use careledger::checkpoint::CheckpointTree;
    use careledger::entry::{AuthorId, EntryId};
    use careledger::node::NetworkId;

    fn card() -> ModelCard {
        let network = NetworkId(vec![0x57; 16]);
        let checkpoint =
            CheckpointTree::build(network.clone(), [(AuthorId([1; 32]), 1, EntryId([2; 32]))])
                .unwrap()
                .checkpoint()
                .clone();
        ModelCard {
            format: "careledger.model_card".into(),
            format_version: MODEL_CARD_FORMAT_VERSION,
            origin: CardOrigin::Trained,
            kind: ModelKind::logistic_regression(),
            seed: 42,
            holdout: Some(Holdout::Fraction(0.2)),
            purpose: "HRESCH".into(),
            grantee_network: network.to_hex(),
            feature_spec: super::spec(),
            feature_spec_hash: hex::encode(super::spec().hash()),
            checkpoint_digest: hex::encode(checkpoint.digest()),
            checkpoint,
            as_of_ms: 1_764_000_000_000,
            pseudonym_salt: "5a".repeat(32),
            dataset: Some(DatasetRef {
                size: 2,
                root: "ab".repeat(32),
            }),
            excluded_by_consent: 1,
            consent_ids: vec!["consent-1".into(), "consent-2".into()],
            training_rows: 2,
            test_rows: 0,
            library_version: "0.1.0".into(),
            linfa_version: "0.8.1".into(),
            metrics: None,
            model_hash: "cd".repeat(32),
        }
    }

    #[test]
    fn model_card_v1() {
        assert_eq!(MODEL_CARD_FORMAT_VERSION, 1);
        let written = card();
        insta::assert_snapshot!("model_card_v1", written.to_json());
        let body = written.encode_body(b"model");
        let (back, model) = ModelCard::decode_body(&body).unwrap();
        assert_eq!((back, model.as_slice()), (written, &b"model"[..]));
        let mut federated = card();
        federated.origin = CardOrigin::Federated {
            round: "r1".into(),
            updates: vec!["ef".repeat(32)],
        };
        assert!(federated.to_json().contains(r#""federated":{"round":"r1""#));
        // Another version is refused by name.
        let newer = card()
            .to_json()
            .replace(r#""format_version":1"#, r#""format_version":2"#);
        let error = ModelCard::from_json(newer.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("format version 2"), "{error}");
    }

    #[test]
    fn decision_v1_and_its_provenance() {
        assert_eq!(DECISION_FORMAT_VERSION, 1);
        let decision = DecisionRecord {
            format: "careledger.decision".into(),
            format_version: DECISION_FORMAT_VERSION,
            model_card: "01".repeat(32),
            model_hash: "cd".repeat(32),
            input_commitment: "ee".repeat(32),
            subject: Some("p1".into()),
            output: Prediction::Class {
                class: 1,
                positive_probability: 0.75,
            },
            time_ms: 1_764_000_000_000,
            purpose: "TREAT".into(),
            consent_ids: vec!["consent-1".into()],
        };
        let body = decision.encode_body();
        insta::assert_snapshot!("decision_v1", String::from_utf8(body.clone()).unwrap());
        assert_eq!(DecisionRecord::decode_body(&body).unwrap(), decision);
        let provenance = decision.to_provenance(&"01".repeat(32), &"02".repeat(32));
        insta::assert_snapshot!(
            "decision_v1_provenance",
            serde_json::to_string_pretty(&provenance).unwrap()
        );
    }

    #[test]
    fn model_update_entry_v1() {
        assert_eq!(UPDATE_FACTS_FORMAT_VERSION, 1);
        let update = b"update bytes";
        let facts = UpdateFacts {
            format: "careledger.model_update_entry".into(),
            format_version: UPDATE_FACTS_FORMAT_VERSION,
            round: "round-1".into(),
            site: "hospital-a.example".into(),
            kind: ModelKind::logistic_regression(),
            feature_spec: super::spec(),
            feature_spec_hash: hex::encode(super::spec().hash()),
            source_network: "ca".repeat(16),
            source_checkpoint_digest: "dd".repeat(32),
            dataset: DatasetRef {
                size: 10,
                root: "ab".repeat(32),
            },
            consent_ids: vec!["consent-1".into()],
            purpose: "HRESCH".into(),
            excluded_by_consent: 2,
            samples: 8,
            local_metrics: None,
            update_hash: careledger::analytics::ledger::sha256_hex(update),
        };
        let body = facts.encode_body(update);
        let pair = PairBody::decode(&body).unwrap();
        insta::assert_snapshot!(
            "model_update_entry_v1",
            String::from_utf8(pair.json).unwrap()
        );
        assert_eq!(UpdateFacts::decode_body(&body).unwrap().0, facts);
        // The update must be the one the facts hash.
        let swapped = facts.encode_body(b"other bytes");
        assert!(UpdateFacts::decode_body(&swapped).is_err());
    }

    #[test]
    fn key_withheld_v1() {
        let body = KeyWithheldBody {
            record: "p1".into(),
            key_id: [0x11; 16],
            reason: WithholdReason::Revoked,
            consent: "consent-1".into(),
        };
        insta::assert_snapshot!("key_withheld_v1_hex", hex::encode(body.encode()));
    }
}
