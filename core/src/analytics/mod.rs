//! Analytics: declared features, de-identified datasets, deterministic
//! linfa models, metrics, and one-shot federated averaging.
//!
//! # Flow
//!
//! 1. **Spec.** A researcher writes a [`FeatureSpec`]: ordered
//!    [`Feature`]s (latest LOINC value, age at a date, sex, condition and
//!    medication flags), an optional label, a [`MissingPolicy`]. Its
//!    [`FeatureSpec::hash`] is cited by every model trained from it.
//! 2. **Records.** The caller selects the records (consent filtering is the
//!    caller's job, DESIGN §6–7) and hands them over as [`PatientRecord`]s
//!    (record id + FHIR resources as JSON).
//! 3. **Extract.** [`extract`] computes the features and de-identifies:
//!    the [`Dataset`] holds only numbers and per-row HMAC pseudonyms, rows
//!    sorted by pseudonym; the record ids come back beside it, in row order,
//!    for the caller's dataset commitment (see [`extract()`] for the rules).
//! 4. **Train.** [`train`] standardises on the training rows and fits a
//!    [`ModelKind`] with linfa, deterministically: the same dataset and seed
//!    give byte-identical [`TrainedModel::to_bytes`] and
//!    [`TrainedModel::model_hash`].
//! 5. **Evaluate and predict.** [`evaluate`] on held-out rows gives
//!    [`Metrics`]; [`predict`] answers for one row.
//! 6. **Federate.** Each site turns its model into a [`ModelUpdate`]
//!    ([`TrainedModel::to_update`]); [`fedavg`] averages them, bit-identically
//!    for every member (see [`federated`] for the parameterisation and the
//!    bound against centralised training).
//!
//! ```
//! use careledger::analytics::{
//!     evaluate, extract, fedavg, predict, train, Feature, FeatureSpec, Metrics, MissingPolicy,
//!     ModelKind, PatientRecord, Prediction, TrainedModel,
//! };
//! use serde_json::json;
//!
//! // Twelve patients: an HbA1c value and a diabetes diagnosis when it is high.
//! let records: Vec<PatientRecord> = (0..12)
//!     .map(|i| PatientRecord {
//!         id: format!("p{i}"),
//!         resources: vec![
//!             json!({"resourceType": "Patient", "id": format!("p{i}"), "gender": "female"}),
//!             json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final",
//!                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
//!                    "valueQuantity": {"value": 5.0 + i as f64 * 0.3}}),
//!             json!({"resourceType": "Condition", "id": format!("c{i}"),
//!                    "code": {"coding": [{"system": "http://snomed.info/sct",
//!                                         "code": if i >= 6 { "44054006" } else { "0" }}]}}),
//!         ],
//!     })
//!     .collect();
//! let spec = FeatureSpec::new(
//!     vec![Feature::LatestObservation { system: "http://loinc.org".into(), code: "4548-4".into() }],
//!     Some(Feature::HasCondition { system: "http://snomed.info/sct".into(), codes: vec!["44054006".into()] }),
//!     MissingPolicy::DropRow,
//! );
//! let extracted = extract(&spec, records, &[7; 32]).unwrap();
//! assert_eq!(extracted.record_ids.len(), 12); // for the dataset commitment
//!
//! let kind = ModelKind::logistic_regression();
//! let model = train(&kind, &extracted.dataset, 42).unwrap();
//! assert_eq!(model.to_bytes(), train(&kind, &extracted.dataset, 42).unwrap().to_bytes());
//! let Metrics::Classification(metrics) = evaluate(&model, &extracted.dataset).unwrap() else { panic!() };
//! assert!(metrics.accuracy > 0.9);
//! let Prediction::Class { class, .. } = predict(&model, &[8.0]).unwrap() else { panic!() };
//! assert_eq!(class, 1);
//!
//! let loaded = TrainedModel::from_bytes(&model.to_bytes()).unwrap();
//! assert_eq!(loaded.model_hash(), model.model_hash());
//!
//! // Two sites with both classes each, one-shot FedAvg.
//! let y = extracted.dataset.targets().unwrap();
//! let mut by_class: Vec<usize> = (0..12).collect();
//! by_class.sort_by_key(|&i| y[i] as u8);
//! let a_rows: Vec<usize> = by_class.iter().copied().step_by(2).collect();
//! let b_rows: Vec<usize> = by_class.iter().copied().skip(1).step_by(2).collect();
//! let a = extracted.dataset.select(&a_rows).unwrap();
//! let b = extracted.dataset.select(&b_rows).unwrap();
//! let updates = [
//!     train(&kind, &a, 1).unwrap().to_update("site-a").unwrap(),
//!     train(&kind, &b, 1).unwrap().to_update("site-b").unwrap(),
//! ];
//! let global = fedavg(&updates).unwrap();
//! assert_eq!(global.training_rows(), 12);
//! ```
//!
//! # Privacy
//!
//! No error, `Debug` output or log of this module holds a value from a
//! record or a record id: errors name the feature, row index and rule.

mod dataset;
pub mod dp;
pub mod example_data;
mod extract;
pub mod federated;
mod fhir_time;
pub mod ledger;
pub mod metrics;
mod model;
pub mod secagg;
pub mod secure_fl;
mod spec;
mod train;

pub use dataset::{BuildDatasetError, Dataset, Pseudonym};
pub use extract::{
    extract, extract_features, ExtractDatasetError, ExtractedDataset, PatientRecord,
};
pub use federated::{fedavg, AverageModelsError, ModelUpdate, MODEL_UPDATE_FORMAT_VERSION};
pub use metrics::{
    evaluate, CalibrationBin, ClassificationMetrics, ClusteringMetrics, EvaluateModelError,
    Metrics, RegressionMetrics, RocPoint,
};
pub use model::{
    predict, LoadModelError, ModelKind, ModelOrigin, PredictError, Prediction, SiteContribution,
    StandardScaler, TrainedModel, LINFA_VERSION, MAX_TREE_DEPTH, MODEL_FORMAT_VERSION,
};
pub use spec::{
    Feature, FeaturePosition, FeatureSpec, InvalidSpecError, MissingPolicy, FEATURE_SPEC_VERSION,
};
pub use train::{train, TrainModelError};

/// Any analytics failure, for callers that handle them alike (FFI, CLI).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyticsError {
    /// See [`InvalidSpecError`].
    #[error(transparent)]
    Spec(#[from] InvalidSpecError),
    /// See [`ExtractDatasetError`].
    #[error(transparent)]
    Extract(#[from] ExtractDatasetError),
    /// See [`BuildDatasetError`].
    #[error(transparent)]
    Dataset(#[from] BuildDatasetError),
    /// See [`TrainModelError`].
    #[error(transparent)]
    Train(#[from] TrainModelError),
    /// See [`LoadModelError`].
    #[error(transparent)]
    Load(#[from] LoadModelError),
    /// See [`PredictError`].
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// See [`EvaluateModelError`].
    #[error(transparent)]
    Evaluate(#[from] EvaluateModelError),
    /// See [`AverageModelsError`].
    #[error(transparent)]
    Average(#[from] AverageModelsError),
}
