//! Analytics end to end on real-shaped data.
//!
//! The breast-cancer CSV goes through the project's real record path: rows
//! become FHIR NDJSON, a [`Node`] imports it (parse, validate, group by
//! patient, Automerge, sealed ledger entries), every chart is exported back
//! as NDJSON, and only then are features extracted and models trained.
//!
//! Failure messages never print record contents or ids, only counts and metrics.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use careledger::analytics::example_data::BreastCancerData;
use careledger::analytics::{
    evaluate, extract, fedavg, predict, train, AverageModelsError, ClassificationMetrics, Dataset,
    ExtractDatasetError, ExtractedDataset, Feature, FeaturePosition, FeatureSpec, LoadModelError,
    Metrics, MissingPolicy, ModelKind, ModelUpdate, PatientRecord, PredictError, Prediction,
    TrainModelError, TrainedModel,
};
use careledger::keys::StorageKey;
use careledger::node::{ExportFormat, Node};
use careledger::store::Store;

const T0: u64 = 1_764_000_000_000;
const SALT: [u8; 32] = [0x5A; 32];

fn data_file(name: &str) -> String {
    let path = format!("{}/../examples/data/ml/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("test data present")
}

struct BreastCancer {
    data: BreastCancerData,
    /// Every chart as exported by the node.
    records: Vec<PatientRecord>,
    extracted: ExtractedDataset,
    train: Dataset,
    test: Dataset,
}

/// CSV → FHIR NDJSON → Node::import_fhir → Node::export_patient → extract,
/// then the fixed split (test rows from the index file, the rest trains).
fn breast_cancer() -> &'static BreastCancer {
    static CELL: OnceLock<BreastCancer> = OnceLock::new();
    CELL.get_or_init(|| {
        let data = BreastCancerData::parse(&data_file("breast_cancer.csv")).expect("csv");
        assert_eq!(data.len(), 569);
        let ndjson = data.to_ndjson();

        let store = Store::open_in_memory(&StorageKey::from_bytes([1; 32])).expect("store");
        let mut node = Node::create(store, "hospital-a.example").expect("node");
        let net = node.create_network("research").expect("network");
        let report = node
            .import_fhir(&net, "wdbc.ndjson", ndjson.as_bytes(), T0)
            .expect("the converted CSV is valid FHIR");
        assert_eq!(report.patients, 569);
        assert_eq!(report.resources, 569 * 32);

        let mut records = Vec::new();
        for patient in node.patients(&net).expect("patients") {
            let exported = node
                .export_patient(&net, &patient, ExportFormat::Ndjson)
                .expect("export");
            let record = PatientRecord::from_ndjson(patient, &exported).expect("ndjson");
            assert_eq!(record.resources.len(), 32);
            records.push(record);
        }

        let spec = data.spec();
        let extracted = extract(&spec, records.clone(), &SALT).expect("extract");
        assert_eq!(extracted.dataset.len(), 569);
        assert_eq!(extracted.dropped, 0);

        let test_rows: BTreeSet<usize> = data_file("breast_cancer_split_test_idx.txt")
            .lines()
            .map(|l| l.trim().parse().expect("index"))
            .collect();
        assert_eq!(test_rows.len(), 143);
        let (mut train_idx, mut test_idx) = (Vec::new(), Vec::new());
        for (row, id) in extracted.record_ids.iter().enumerate() {
            let csv_row = BreastCancerData::row_of(id).expect("wdbc id");
            if test_rows.contains(&csv_row) {
                test_idx.push(row);
            } else {
                train_idx.push(row);
            }
        }
        let train = extracted.dataset.select(&train_idx).expect("rows");
        let test = extracted.dataset.select(&test_idx).expect("rows");
        assert_eq!((train.len(), test.len()), (426, 143));
        BreastCancer {
            data,
            records,
            extracted,
            train,
            test,
        }
    })
}

fn classification(model: &TrainedModel, data: &Dataset) -> ClassificationMetrics {
    match evaluate(model, data).expect("evaluate") {
        Metrics::Classification(m) => m,
        other => panic!("expected classification metrics, got {}", kind_of(&other)),
    }
}

fn kind_of(metrics: &Metrics) -> &'static str {
    match metrics {
        Metrics::Classification(_) => "classification",
        Metrics::Clustering(_) => "clustering",
        Metrics::Regression(_) => "regression",
    }
}

#[test]
fn extraction_matches_the_csv() {
    let bc = breast_cancer();
    let x = bc.extracted.dataset.features();
    let y = bc.extracted.dataset.targets().expect("label");
    for (row, id) in bc.extracted.record_ids.iter().enumerate() {
        let csv_row = BreastCancerData::row_of(id).expect("wdbc id");
        // Values survive import, Automerge and export bit for bit.
        assert!(
            x.row(row) == bc.data.features().row(csv_row),
            "features differ at dataset row {row}"
        );
        assert!(
            y[row] == bc.data.targets()[csv_row],
            "label differs at dataset row {row}"
        );
    }
    // Rows are in pseudonym order, not CSV order.
    let pseudonyms = bc.extracted.dataset.pseudonyms();
    assert!(pseudonyms.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        bc.extracted.dataset.feature_spec_hash(),
        bc.data.spec().hash()
    );
}

#[test]
fn logistic_regression_reaches_the_quality_bar() {
    let bc = breast_cancer();
    let model = train(&ModelKind::logistic_regression(), &bc.train, 0).expect("train");
    let metrics = classification(&model, &bc.test);
    eprintln!(
        "breast cancer, logistic regression: test accuracy {:.5} ({}/143), AUC {:.5}",
        metrics.accuracy,
        (metrics.accuracy * 143.0).round(),
        metrics.auc.unwrap_or(f64::NAN)
    );
    assert!(
        metrics.accuracy >= 0.979,
        "accuracy {} below 0.979",
        metrics.accuracy
    );
    assert!(metrics.auc.expect("both classes") > 0.99);
    assert_eq!(metrics.roc.first().map(|p| p.threshold), Some(None));
    assert_eq!(metrics.calibration.iter().map(|b| b.rows).sum::<u64>(), 143);
}

#[test]
fn other_models_on_breast_cancer() {
    let bc = breast_cancer();

    let tree = train(&ModelKind::decision_tree(), &bc.train, 0).expect("tree");
    let tree_metrics = classification(&tree, &bc.test);
    eprintln!(
        "breast cancer, decision tree (depth 8): test accuracy {:.5}, AUC {:.5}",
        tree_metrics.accuracy,
        tree_metrics.auc.unwrap_or(f64::NAN)
    );
    assert!(tree_metrics.accuracy >= 0.9);

    let kmeans = train(&ModelKind::k_means(2), &bc.train, 7).expect("k-means");
    let Metrics::Clustering(clusters) = evaluate(&kmeans, &bc.test).expect("evaluate") else {
        panic!("expected clustering metrics")
    };
    eprintln!(
        "breast cancer, k-means k=2: test inertia {:.2}, silhouette {:.4}, sizes {:?}",
        clusters.inertia,
        clusters.silhouette.unwrap_or(f64::NAN),
        clusters.cluster_sizes
    );
    assert!(clusters.silhouette.expect("two clusters") > 0.2);
    assert_eq!(clusters.cluster_sizes.iter().sum::<u64>(), 143);

    // Linear regression: "worst radius" from the ten "mean" columns, through
    // a second spec over the same exported records.
    let columns = bc.data.columns();
    let observation = |name: &str| Feature::LatestObservation {
        system: careledger::analytics::example_data::WDBC_SYSTEM.into(),
        code: name.into(),
    };
    let spec = FeatureSpec::new(
        columns[..10].iter().map(|c| observation(c)).collect(),
        Some(observation("worst radius")),
        MissingPolicy::Fail,
    );
    let extracted = extract(&spec, bc.records.clone(), &SALT).expect("extract");
    let (train_rows, test_rows) = extracted.dataset.split_holdout(0.25);
    let linear = train(&ModelKind::LinearRegression, &train_rows, 0).expect("linear");
    let Metrics::Regression(fit) = evaluate(&linear, &test_rows).expect("evaluate") else {
        panic!("expected regression metrics")
    };
    eprintln!(
        "breast cancer, linear regression (worst radius from 10 mean columns, {} held out): R² {:.4}, RMSE {:.4}",
        test_rows.len(),
        fit.r2.unwrap_or(f64::NAN),
        fit.rmse
    );
    assert!(fit.r2.expect("spread") > 0.9);
}

#[test]
fn training_is_deterministic_and_round_trips() {
    let bc = breast_cancer();
    for (kind, seed) in [
        (ModelKind::logistic_regression(), 0),
        (ModelKind::decision_tree(), 0),
        (ModelKind::k_means(3), 11),
    ] {
        let first = train(&kind, &bc.train, seed).expect("train");
        let second = train(&kind, &bc.train, seed).expect("train");
        assert!(
            first.to_bytes() == second.to_bytes(),
            "{} is not reproducible",
            kind.name()
        );
        assert_eq!(first.model_hash(), second.model_hash());
        let loaded = TrainedModel::from_bytes(&first.to_bytes()).expect("load");
        assert_eq!(loaded, first);
        assert!(loaded.to_bytes() == first.to_bytes(), "re-encoding differs");
        // Predictions of the loaded model equal the original's.
        for row in bc.test.features().outer_iter().take(20) {
            let row = row.to_vec();
            assert!(
                predict(&loaded, &row) == predict(&first, &row),
                "loaded {} predicts differently",
                kind.name()
            );
        }
    }
    // A different seed gives a different k-means initialisation, still valid.
    let other = train(&ModelKind::k_means(3), &bc.train, 12).expect("train");
    assert!(matches!(
        other.origin(),
        careledger::analytics::ModelOrigin::Trained { seed: 12 }
    ));
}

/// Splits the training rows over three sites, trains each, averages.
#[test]
fn federated_average_is_recomputable_and_close_to_centralised() {
    let bc = breast_cancer();
    let kind = ModelKind::logistic_regression();
    let sites = ["hospital-c", "hospital-a", "hospital-b"];
    let mut updates = Vec::new();
    for (s, site) in sites.iter().enumerate() {
        // Unequal shares (rows 0,3,6… / 1,4,7… / 2,5,8…, with the last
        // fifth all at site 0) so the weights matter.
        let rows: Vec<usize> = (0..bc.train.len())
            .filter(|&r| if r >= 340 { s == 0 } else { r % 3 == s })
            .collect();
        let local = bc.train.select(&rows).expect("rows");
        let model = train(&kind, &local, 0).expect("site training");
        let update = model.to_update(site).expect("update");
        // Updates travel as bytes.
        updates.push(ModelUpdate::from_bytes(&update.to_bytes()).expect("wire"));
    }
    assert_eq!(updates.iter().map(|u| u.samples).sum::<u64>(), 426);

    let global = fedavg(&updates).expect("fedavg");
    // Any member recomputes it bit for bit, whatever the arrival order.
    let mut shuffled = updates.clone();
    shuffled.rotate_left(1);
    shuffled.swap(0, 1);
    assert_eq!(
        fedavg(&shuffled).expect("fedavg").to_bytes(),
        global.to_bytes()
    );

    // An independent recomputation (normalised weights, reverse order) agrees to 1e-12.
    let total: f64 = updates.iter().map(|u| u.samples as f64).sum();
    let width = updates[0].params.len();
    let mut expected = vec![0.0; width];
    for update in updates.iter().rev() {
        for (e, p) in expected.iter_mut().zip(&update.params) {
            *e += (update.samples as f64 / total) * p;
        }
    }
    let (weights, intercept) = global.raw_parameters().expect("linear");
    let got: Vec<f64> = weights.into_iter().chain([intercept]).collect();
    for (j, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!(
            (g - e).abs() <= 1e-12 * e.abs().max(1.0),
            "parameter {j}: difference {:e}",
            (g - e).abs()
        );
    }

    let central = train(&kind, &bc.train, 0).expect("centralised");
    let central_accuracy = classification(&central, &bc.test).accuracy;
    let federated = classification(&global, &bc.test);
    eprintln!(
        "breast cancer, 3-site one-shot FedAvg: test accuracy {:.5} (centralised {:.5}), AUC {:.5}",
        federated.accuracy,
        central_accuracy,
        federated.auc.unwrap_or(f64::NAN)
    );
    assert!(
        (federated.accuracy - central_accuracy).abs() <= 0.02,
        "federated {} vs centralised {}",
        federated.accuracy,
        central_accuracy
    );
    // It is not the centralised model: one-shot averaging is an approximation.
    assert_ne!(global.raw_parameters(), central.raw_parameters());
    // The global model is a model like any other.
    let loaded = TrainedModel::from_bytes(&global.to_bytes()).expect("load");
    assert_eq!(loaded, global);
}

#[test]
fn bad_input_gives_typed_errors() {
    let bc = breast_cancer();

    // A feature code in no record.
    let mut spec = bc.data.spec();
    spec.features.push(Feature::LatestObservation {
        system: careledger::analytics::example_data::WDBC_SYSTEM.into(),
        code: "mean radiuss".into(),
    });
    assert_eq!(
        extract(&spec, bc.records.iter().take(5).cloned(), &SALT).unwrap_err(),
        ExtractDatasetError::UnknownFeatureCode {
            position: FeaturePosition::Column(30),
            system: careledger::analytics::example_data::WDBC_SYSTEM.into(),
            code: "mean radiuss".into()
        }
    );

    // Nothing left after consent filtering.
    assert_eq!(
        extract(&bc.data.spec(), Vec::new(), &SALT).unwrap_err(),
        ExtractDatasetError::EmptyDataset { dropped: 0 }
    );

    // A fit that cannot converge in one iteration.
    let starved = ModelKind::LogisticRegression {
        alpha: 1.0,
        max_iterations: 1,
        gradient_tolerance: 1e-4,
    };
    assert!(matches!(
        train(&starved, &bc.train, 0),
        Err(TrainModelError::NotConverged { .. })
    ));
    let starved_kmeans = ModelKind::KMeans {
        k: 5,
        max_iterations: 1,
        tolerance: 1e-9,
        n_runs: 1,
    };
    assert!(matches!(
        train(&starved_kmeans, &bc.train, 0),
        Err(TrainModelError::NotConverged { .. })
    ));

    // One class only.
    let benign: Vec<usize> = (0..bc.train.len())
        .filter(|&r| bc.train.targets().expect("label")[r] == 1.0)
        .collect();
    let one_class = bc.train.select(&benign).expect("rows");
    assert_eq!(
        train(&ModelKind::logistic_regression(), &one_class, 0).unwrap_err(),
        TrainModelError::SingleClass
    );
    assert_eq!(
        train(&ModelKind::decision_tree(), &one_class, 0).unwrap_err(),
        TrainModelError::SingleClass
    );
    assert_eq!(
        train(
            &ModelKind::k_means(2),
            &bc.train.select(&[0]).expect("row"),
            0
        )
        .unwrap_err(),
        TrainModelError::TooFewRows {
            needed: 2,
            found: 1
        }
    );
    assert!(matches!(
        train(&ModelKind::k_means(0), &bc.train, 0),
        Err(TrainModelError::InvalidHyperparameter { name: "k", .. })
    ));

    // A model file from another format version, or no model at all.
    let model = train(&ModelKind::logistic_regression(), &bc.train, 0).expect("train");
    let text = String::from_utf8(model.to_bytes()).expect("json");
    let newer = text.replacen("\"format_version\":1", "\"format_version\":2", 1);
    assert_eq!(
        TrainedModel::from_bytes(newer.as_bytes()).unwrap_err(),
        LoadModelError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(
        TrainedModel::from_bytes(b"\x00\x01garbage").unwrap_err(),
        LoadModelError::NotAModel
    );
    let truncated = &model.to_bytes()[..100];
    assert_eq!(
        TrainedModel::from_bytes(truncated).unwrap_err(),
        LoadModelError::NotAModel
    );
    let wrong_width = text.replacen("\"n_features\":30", "\"n_features\":29", 1);
    assert!(matches!(
        TrainedModel::from_bytes(wrong_width.as_bytes()),
        Err(LoadModelError::Invalid { .. })
    ));

    // Prediction input of the wrong width or with NaN.
    assert_eq!(
        predict(&model, &[1.0; 3]).unwrap_err(),
        PredictError::WrongFeatureCount {
            expected: 30,
            found: 3
        }
    );
    let mut row = bc.test.features().row(0).to_vec();
    row[4] = f64::NAN;
    assert_eq!(
        predict(&model, &row).unwrap_err(),
        PredictError::NonFinite { column: 4 }
    );

    // Trees and k-means cannot be averaged; a dataset of another spec cannot be evaluated.
    let tree = train(&ModelKind::decision_tree(), &bc.train, 0).expect("tree");
    assert_eq!(
        tree.to_update("a").unwrap_err(),
        AverageModelsError::NotAveragable {
            model: "decision_tree"
        }
    );
    let foreign = Dataset::from_arrays(
        bc.test.features().to_owned(),
        bc.test.targets().map(|t| t.to_owned()),
        [0; 32],
    )
    .expect("dataset");
    assert_eq!(
        evaluate(&model, &foreign).unwrap_err(),
        careledger::analytics::EvaluateModelError::SpecMismatch
    );
}

#[test]
fn crafted_tree_files_are_rejected_not_panicking() {
    let bc = breast_cancer();
    let tree = train(&ModelKind::decision_tree(), &bc.train, 0).expect("tree");
    let text = String::from_utf8(tree.to_bytes()).expect("json");
    let start = text.find("\"params\":").expect("params");
    // Point the root's left child at itself: a cycle.
    for (from, to) in [
        ("\"left\":1", "\"left\":0"),
        ("\"feature\":", "\"feature\":9"),
    ] {
        let crafted = format!("{}{}", &text[..start], text[start..].replacen(from, to, 1));
        assert!(
            matches!(
                TrainedModel::from_bytes(crafted.as_bytes()),
                Err(LoadModelError::Invalid { .. })
            ),
            "crafted tree accepted ({from} → {to})"
        );
    }
    let loaded = TrainedModel::from_bytes(&tree.to_bytes()).expect("load");
    let row = bc.test.features().row(0).to_vec();
    assert!(matches!(
        predict(&loaded, &row),
        Ok(Prediction::Class { .. })
    ));
}

/// The Synthea bulk export: demographics, condition and medication flags.
#[test]
fn synthea_records_extract_and_cluster() {
    let dir = format!(
        "{}/../examples/data/fhir/bulk-10-patients/",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut ndjson = String::new();
    for file in [
        "Patient.000.ndjson",
        "Condition.000.ndjson",
        "MedicationRequest.000.ndjson",
    ] {
        ndjson.push_str(&std::fs::read_to_string(format!("{dir}{file}")).expect("data"));
    }
    let resources =
        careledger::record::fhir::parse_auto("synthea.ndjson", ndjson.as_bytes()).expect("fhir");
    let charts = careledger::record::fhir::group_by_patient(resources).expect("group");
    let records: Vec<PatientRecord> = charts
        .iter()
        .map(|(id, resources)| PatientRecord::from_resources(id, resources))
        .collect();
    assert_eq!(records.len(), 13);

    let spec = FeatureSpec::new(
        vec![
            Feature::AgeAt {
                date: "2025-01-01".into(),
            },
            Feature::Sex,
            Feature::HasCondition {
                system: "http://snomed.info/sct".into(),
                codes: vec!["73595000".into()],
            },
            Feature::MedicationClass {
                system: "http://www.nlm.nih.gov/research/umls/rxnorm".into(),
                codes: vec!["314076".into(), "314231".into()],
            },
        ],
        None,
        MissingPolicy::DropRow,
    );
    let extracted = extract(&spec, records, &SALT).expect("extract");
    assert_eq!(extracted.dataset.len(), 13);
    let x = extracted.dataset.features();
    assert!(x.column(0).iter().all(|&age| (10.0..100.0).contains(&age)));
    assert_eq!(x.column(1).sum(), 9.0, "nine female patients");
    assert_eq!(x.column(2).sum(), 10.0, "ten patients with stress");
    assert_eq!(
        x.column(3).sum(),
        4.0,
        "four patients on lisinopril or simvastatin"
    );

    let model = train(&ModelKind::k_means(2), &extracted.dataset, 3).expect("k-means");
    let Metrics::Clustering(metrics) = evaluate(&model, &extracted.dataset).expect("evaluate")
    else {
        panic!("expected clustering metrics")
    };
    assert_eq!(metrics.cluster_sizes.iter().sum::<u64>(), 13);
    assert!(metrics.silhouette.is_some());
}
