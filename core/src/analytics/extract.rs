//! Feature extraction: patient records in, de-identified [`Dataset`] out.
//!
//! Rules (they make a dataset rebuildable bit for bit by any member holding
//! the same records, spec and salt):
//!
//! - **Pseudonyms.** Row pseudonym = HMAC-SHA-256(key = dataset salt,
//!   message = record id as UTF-8). Without the salt a pseudonym cannot be
//!   linked to a record id, so the salt is secret to the parties entitled
//!   to the dataset (the caller keeps it, e.g. derived from a network secret).
//! - **Order.** Rows are sorted by pseudonym (byte order). The row position
//!   then says nothing about the record id (ids often encode admission order),
//!   and it does not depend on the order records were given in.
//! - **What reaches the fit.** Only the numbers the spec asks for, the label
//!   and the pseudonym. Record ids, names, dates and free text never enter
//!   the [`Dataset`]. The record ids come back beside it, in row order, for the
//!   caller's dataset commitment; they are not part of the dataset.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use hmac::{Hmac, Mac};
use ndarray::{Array1, Array2};
use serde_json::Value;
use sha2::Sha256;

use super::dataset::{Dataset, Pseudonym};
use super::fhir_time;
use super::spec::{Feature, FeaturePosition, FeatureSpec, InvalidSpecError, MissingPolicy};
use crate::record::fhir::Resource;

/// One patient's record: its record id and its FHIR resources as JSON
/// (e.g. from [`crate::record::doc::RecordDoc::resources`] via
/// [`PatientRecord::from_resources`], or a chart exported as NDJSON).
///
/// `Debug` shows the number of resources only.
#[derive(Clone, PartialEq)]
pub struct PatientRecord {
    /// The record (patient) id.
    pub id: String,
    /// The record's resources.
    pub resources: Vec<Value>,
}

impl fmt::Debug for PatientRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientRecord")
            .field("resources", &self.resources.len())
            .finish_non_exhaustive()
    }
}

impl PatientRecord {
    /// A record from validated resources.
    pub fn from_resources(id: impl Into<String>, resources: &[Resource]) -> Self {
        PatientRecord {
            id: id.into(),
            resources: resources.iter().map(Resource::to_value).collect(),
        }
    }

    /// A record from NDJSON text (one resource per line, as
    /// [`crate::node::Node::export_patient`] writes it); blank lines are
    /// skipped. Fails with the 1-based number of the first line that is not
    /// a JSON object.
    pub fn from_ndjson(id: impl Into<String>, text: &str) -> Result<Self, usize> {
        let mut resources = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(value @ Value::Object(_)) => resources.push(value),
                _ => return Err(i + 1),
            }
        }
        Ok(PatientRecord {
            id: id.into(),
            resources,
        })
    }
}

/// The result of [`extract`].
#[derive(Clone)]
pub struct ExtractedDataset {
    /// The de-identified dataset.
    pub dataset: Dataset,
    /// The record id of each row, in row order: for the caller's dataset
    /// commitment only. Never hand these to a fit.
    pub record_ids: Vec<String>,
    /// Records left out by the missing-value policy.
    pub dropped: usize,
}

impl fmt::Debug for ExtractedDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtractedDataset")
            .field("dataset", &self.dataset)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// Extraction failed. No variant carries a value from a record or a record id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractDatasetError {
    /// The spec breaks a rule.
    #[error("invalid feature spec")]
    InvalidSpec(#[from] InvalidSpecError),
    /// No record was given (e.g. consent filtering left none), or the
    /// missing-value policy dropped every one.
    #[error("dataset is empty ({dropped} record(s) dropped for missing values)")]
    EmptyDataset {
        /// Records dropped by the missing-value policy.
        dropped: usize,
    },
    /// Two records share one id (the `index`-th record repeats an earlier one).
    #[error("record {index} repeats the id of an earlier record")]
    DuplicateRecord {
        /// Position of the later record in the input.
        index: usize,
    },
    /// A coded feature's code appears in no record of the dataset: almost
    /// always a typo or a code from another system, which would silently give
    /// a constant or empty column.
    #[error("{position}: code {system}|{code} appears in no record of the dataset")]
    UnknownFeatureCode {
        /// Which feature.
        position: FeaturePosition,
        /// Its code system (from the spec).
        system: String,
        /// Its code, or its codes joined by `,` (from the spec).
        code: String,
    },
    /// The policy is [`MissingPolicy::Fail`] and a record lacks this value, or
    /// the policy is [`MissingPolicy::ImputeMean`] and no record has it.
    #[error("{position}: value missing ({policy:?} policy)")]
    MissingValue {
        /// Which feature.
        position: FeaturePosition,
        /// The policy in force.
        policy: MissingPolicy,
    },
    /// A bug in this library (an internal invariant did not hold).
    #[error("internal error: {0}")]
    Library(&'static str),
}

/// Builds the de-identified dataset described by `spec` from `records`.
///
/// De-identification and order (any member holding the same records, spec
/// and salt rebuilds the dataset bit for bit):
///
/// - **Pseudonyms.** Row pseudonym = HMAC-SHA-256(key = `salt`, message =
///   record id as UTF-8). Without the salt a pseudonym cannot be linked to a
///   record id, so the salt is secret to the parties entitled to the dataset.
/// - **Order.** Rows are sorted by pseudonym (byte order): the row position
///   says nothing about the record id, and the input order does not matter.
/// - **What reaches the fit.** Only the numbers the spec asks for, the label
///   and the pseudonym; never record ids, names, dates or free text. The
///   record ids come back beside the dataset in `record_ids`, in row order,
///   for the caller's dataset commitment.
///
/// Errors: an invalid spec, duplicate record ids, a coded feature whose code
/// appears in no record ([`ExtractDatasetError::UnknownFeatureCode`]), a
/// missing value under [`MissingPolicy::Fail`], and an empty result.
pub fn extract(
    spec: &FeatureSpec,
    records: impl IntoIterator<Item = PatientRecord>,
    salt: &[u8; 32],
) -> Result<ExtractedDataset, ExtractDatasetError> {
    spec.validate()?;
    let index = CodeIndex::new(spec);
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(salt)
        .map_err(|_| ExtractDatasetError::Library("HMAC refused the salt"))?;

    let mut ids = BTreeSet::new();
    let mut rows: Vec<(Pseudonym, String, Vec<Option<f64>>)> = Vec::new();
    let mut seen = vec![false; index.slots];
    for (i, record) in records.into_iter().enumerate() {
        if !ids.insert(record.id.clone()) {
            return Err(ExtractDatasetError::DuplicateRecord { index: i });
        }
        let values = index.values(spec, &record, &mut seen);
        let mut mac = mac.clone();
        mac.update(record.id.as_bytes());
        let pseudonym: Pseudonym = mac.finalize().into_bytes().into();
        rows.push((pseudonym, record.id, values));
    }
    if rows.is_empty() {
        return Err(ExtractDatasetError::EmptyDataset { dropped: 0 });
    }
    for (slot, (position, feature)) in spec.positions().enumerate() {
        if let Some((system, code)) = coded(feature) {
            if !seen[slot] {
                return Err(ExtractDatasetError::UnknownFeatureCode {
                    position,
                    system,
                    code,
                });
            }
        }
    }
    rows.sort_by_key(|r| r.0);

    let columns = spec.features.len();
    let policy = spec.missing;
    let missing = |position| ExtractDatasetError::MissingValue { position, policy };

    // Rows without a label never reach a supervised fit.
    let before = rows.len();
    if spec.label.is_some() {
        if policy == MissingPolicy::Fail && rows.iter().any(|r| r.2[columns].is_none()) {
            return Err(missing(FeaturePosition::Label));
        }
        rows.retain(|r| r.2[columns].is_some());
    }
    match policy {
        MissingPolicy::Fail => {
            for row in &rows {
                if let Some(column) = row.2[..columns].iter().position(Option::is_none) {
                    return Err(missing(FeaturePosition::Column(column)));
                }
            }
        }
        MissingPolicy::DropRow => rows.retain(|r| r.2[..columns].iter().all(Option::is_some)),
        MissingPolicy::ImputeMean => {
            for column in 0..columns {
                let (mut sum, mut count) = (0.0, 0usize);
                for value in rows.iter().filter_map(|r| r.2[column]) {
                    sum += value;
                    count += 1;
                }
                if count == 0 && !rows.is_empty() {
                    return Err(missing(FeaturePosition::Column(column)));
                }
                let mean = sum / count as f64;
                for row in &mut rows {
                    row.2[column].get_or_insert(mean);
                }
            }
        }
    }
    let dropped = before - rows.len();
    if rows.is_empty() {
        return Err(ExtractDatasetError::EmptyDataset { dropped });
    }

    let n = rows.len();
    let mut features = Array2::zeros((n, columns));
    let mut targets = spec.label.as_ref().map(|_| Array1::zeros(n));
    let mut pseudonyms = Vec::with_capacity(n);
    let mut record_ids = Vec::with_capacity(n);
    for (i, (pseudonym, id, values)) in rows.into_iter().enumerate() {
        for (j, value) in values[..columns].iter().enumerate() {
            features[[i, j]] = value.unwrap_or(0.0);
        }
        if let Some(targets) = targets.as_mut() {
            targets[i] = values[columns].unwrap_or(0.0);
        }
        pseudonyms.push(pseudonym);
        record_ids.push(id);
    }
    Ok(ExtractedDataset {
        dataset: Dataset::from_parts(features, targets, pseudonyms, spec.hash()),
        record_ids,
        dropped,
    })
}

/// The feature columns of one record, unimputed (`None` = missing), for a
/// prediction. Impute missing values as the model was trained (e.g. with
/// [`super::TrainedModel::feature_means`]) before calling [`super::predict`].
pub fn extract_features(
    spec: &FeatureSpec,
    record: &PatientRecord,
) -> Result<Vec<Option<f64>>, InvalidSpecError> {
    spec.validate()?;
    let index = CodeIndex::new(spec);
    let mut seen = vec![false; index.slots];
    let mut values = index.values(spec, record, &mut seen);
    values.truncate(spec.features.len());
    Ok(values)
}

/// A coded feature's system and code(s) for error messages.
fn coded(feature: &Feature) -> Option<(String, String)> {
    match feature {
        Feature::LatestObservation { system, code } => Some((system.clone(), code.clone())),
        Feature::HasCondition { system, codes } | Feature::MedicationClass { system, codes } => {
            Some((system.clone(), codes.join(",")))
        }
        Feature::AgeAt { .. } | Feature::Sex => None,
    }
}

/// Which slots (columns, then the label) each coding feeds.
struct CodeIndex<'a> {
    observations: HashMap<(&'a str, &'a str), Vec<usize>>,
    conditions: HashMap<(&'a str, &'a str), Vec<usize>>,
    medications: HashMap<(&'a str, &'a str), Vec<usize>>,
    slots: usize,
}

/// The best Observation so far for one slot: (instant, resource id, value).
type Latest = (Option<i64>, String, f64);

impl<'a> CodeIndex<'a> {
    fn new(spec: &'a FeatureSpec) -> Self {
        let mut index = CodeIndex {
            observations: HashMap::new(),
            conditions: HashMap::new(),
            medications: HashMap::new(),
            slots: 0,
        };
        for (slot, (_, feature)) in spec.positions().enumerate() {
            index.slots = slot + 1;
            match feature {
                Feature::LatestObservation { system, code } => index
                    .observations
                    .entry((system.as_str(), code.as_str()))
                    .or_default()
                    .push(slot),
                Feature::HasCondition { system, codes } => {
                    for code in codes {
                        index
                            .conditions
                            .entry((system.as_str(), code.as_str()))
                            .or_default()
                            .push(slot);
                    }
                }
                Feature::MedicationClass { system, codes } => {
                    for code in codes {
                        index
                            .medications
                            .entry((system.as_str(), code.as_str()))
                            .or_default()
                            .push(slot);
                    }
                }
                Feature::AgeAt { .. } | Feature::Sex => {}
            }
        }
        index
    }

    /// One value per slot for `record`; marks in `seen` the slots whose code occurs.
    fn values(
        &self,
        spec: &FeatureSpec,
        record: &PatientRecord,
        seen: &mut [bool],
    ) -> Vec<Option<f64>> {
        let mut latest: Vec<Option<Latest>> = vec![None; self.slots];
        let mut flags = vec![false; self.slots];
        for resource in &record.resources {
            match str_at(resource, &["resourceType"]) {
                Some("Observation") => self.observation(resource, &mut latest, seen),
                Some("Condition") if !condition_void(resource) => {
                    for slot in matching(&self.conditions, resource.pointer("/code/coding")) {
                        flags[slot] = true;
                        seen[slot] = true;
                    }
                }
                Some("MedicationRequest")
                    if str_at(resource, &["status"]) != Some("entered-in-error") =>
                {
                    let codings = resource.pointer("/medicationCodeableConcept/coding");
                    for slot in matching(&self.medications, codings) {
                        flags[slot] = true;
                        seen[slot] = true;
                    }
                }
                _ => {}
            }
        }
        let patient = patient_of(record);
        spec.positions()
            .enumerate()
            .map(|(slot, (_, feature))| match feature {
                Feature::LatestObservation { .. } => latest[slot].as_ref().map(|l| l.2),
                Feature::HasCondition { .. } | Feature::MedicationClass { .. } => {
                    Some(if flags[slot] { 1.0 } else { 0.0 })
                }
                Feature::Sex => match patient.and_then(|p| str_at(p, &["gender"])) {
                    Some("female") => Some(1.0),
                    Some("male") => Some(0.0),
                    _ => None,
                },
                Feature::AgeAt { date } => {
                    let at = fhir_time::parse_date(date)?;
                    let born = fhir_time::parse_partial_date(
                        patient.and_then(|p| str_at(p, &["birthDate"]))?,
                    )?;
                    (born <= at).then(|| (at - born) as f64 / 365.2425)
                }
            })
            .collect()
    }

    fn observation(&self, resource: &Value, latest: &mut [Option<Latest>], seen: &mut [bool]) {
        if matches!(
            str_at(resource, &["status"]),
            Some("entered-in-error" | "cancelled")
        ) {
            return;
        }
        let instant = [
            str_at(resource, &["effectiveDateTime"]),
            str_at(resource, &["effectivePeriod", "start"]),
            str_at(resource, &["effectiveInstant"]),
            str_at(resource, &["issued"]),
        ]
        .into_iter()
        .flatten()
        .find_map(fhir_time::parse_date_time);
        let id = str_at(resource, &["id"]).unwrap_or("");
        let mut offer = |codings: Option<&Value>, quantity: Option<&Value>| {
            let value = quantity
                .and_then(|q| q.get("value"))
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite());
            for slot in matching(&self.observations, codings) {
                seen[slot] = true;
                let Some(value) = value else { continue };
                let newer = match &latest[slot] {
                    None => true,
                    Some((when, best_id, _)) => (instant, id) > (*when, best_id.as_str()),
                };
                if newer {
                    latest[slot] = Some((instant, id.to_owned(), value));
                }
            }
        };
        offer(
            resource.pointer("/code/coding"),
            resource.get("valueQuantity"),
        );
        if let Some(Value::Array(components)) = resource.get("component") {
            for component in components {
                offer(
                    component.pointer("/code/coding"),
                    component.get("valueQuantity"),
                );
            }
        }
    }
}

/// A string at a path of object members.
fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut current = value;
    for member in path {
        current = current.get(member)?;
    }
    current.as_str()
}

/// Slots fed by any coding of a `coding` array, each once, in slot order.
fn matching(index: &HashMap<(&str, &str), Vec<usize>>, codings: Option<&Value>) -> BTreeSet<usize> {
    let mut slots = BTreeSet::new();
    if let Some(Value::Array(codings)) = codings {
        for coding in codings {
            if let (Some(system), Some(code)) =
                (str_at(coding, &["system"]), str_at(coding, &["code"]))
            {
                if let Some(found) = index.get(&(system, code)) {
                    slots.extend(found.iter().copied());
                }
            }
        }
    }
    slots
}

fn condition_void(resource: &Value) -> bool {
    match resource.pointer("/verificationStatus/coding") {
        Some(Value::Array(codings)) => codings
            .iter()
            .any(|c| matches!(str_at(c, &["code"]), Some("refuted" | "entered-in-error"))),
        _ => false,
    }
}

/// The record's Patient: the one whose id is the record id, else the only one.
fn patient_of(record: &PatientRecord) -> Option<&Value> {
    let mut patients = record
        .resources
        .iter()
        .filter(|r| str_at(r, &["resourceType"]) == Some("Patient"));
    if let Some(own) = patients
        .clone()
        .find(|p| str_at(p, &["id"]) == Some(record.id.as_str()))
    {
        return Some(own);
    }
    match (patients.next(), patients.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOINC: &str = "http://loinc.org";
    const SCT: &str = "http://snomed.info/sct";

    fn record(id: &str, resources: Vec<Value>) -> PatientRecord {
        PatientRecord {
            id: id.into(),
            resources,
        }
    }

    fn glucose(id: &str, when: Option<&str>, value: f64) -> Value {
        let mut obs = json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "2339-0"}]},
            "valueQuantity": {"value": value, "unit": "mg/dL"}
        });
        if let Some(when) = when {
            obs["effectiveDateTime"] = json!(when);
        }
        obs
    }

    fn spec(missing: MissingPolicy) -> FeatureSpec {
        FeatureSpec::new(
            vec![
                Feature::LatestObservation {
                    system: LOINC.into(),
                    code: "2339-0".into(),
                },
                Feature::Sex,
                Feature::AgeAt {
                    date: "2020-01-01".into(),
                },
            ],
            Some(Feature::HasCondition {
                system: SCT.into(),
                codes: vec!["44054006".into()],
            }),
            missing,
        )
    }

    fn records() -> Vec<PatientRecord> {
        vec![
            record(
                "a",
                vec![
                    json!({"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1990-01-01"}),
                    glucose("o1", Some("2019-01-01T00:00:00Z"), 100.0),
                    glucose("o2", Some("2019-06-01T10:00:00+02:00"), 140.0),
                    glucose("o3", Some("2019-06-01T09:00:00Z"), 120.0),
                    glucose("o4", None, 90.0),
                    json!({"resourceType": "Condition", "id": "c1",
                           "code": {"coding": [{"system": SCT, "code": "44054006"}]}}),
                ],
            ),
            record(
                "b",
                vec![
                    json!({"resourceType": "Patient", "id": "b", "gender": "male", "birthDate": "2000"}),
                    glucose("o5", Some("2018"), 80.0),
                    json!({"resourceType": "Condition", "id": "c2",
                           "verificationStatus": {"coding": [{"code": "refuted"}]},
                           "code": {"coding": [{"system": SCT, "code": "44054006"}]}}),
                ],
            ),
            record(
                "c",
                vec![json!({"resourceType": "Patient", "id": "c", "gender": "unknown"})],
            ),
        ]
    }

    #[test]
    fn values_follow_the_rules() {
        let spec = spec(MissingPolicy::ImputeMean);
        let recs = records();
        let a = extract_features(&spec, &recs[0]).unwrap();
        // 09:00Z is later than 10:00+02:00 (= 08:00Z).
        assert_eq!(a[0], Some(120.0));
        assert_eq!(a[1], Some(1.0));
        assert!((a[2].unwrap() - 30.0).abs() < 0.01);
        let b = extract_features(&spec, &recs[1]).unwrap();
        assert_eq!(b[..2], [Some(80.0), Some(0.0)]);
        assert!((b[2].unwrap() - 20.0).abs() < 0.01);
        let c = extract_features(&spec, &recs[2]).unwrap();
        assert_eq!(c, vec![None, None, None]);
    }

    #[test]
    fn impute_mean_and_label() {
        let spec = spec(MissingPolicy::ImputeMean);
        let out = extract(&spec, records(), &[9; 32]).unwrap();
        assert_eq!(out.dropped, 0);
        assert_eq!(out.dataset.len(), 3);
        let row_of = |id: &str| out.record_ids.iter().position(|r| r == id).unwrap();
        let x = out.dataset.features();
        let y = out.dataset.targets().unwrap();
        assert_eq!(x[[row_of("c"), 0]], 100.0);
        assert_eq!(x[[row_of("c"), 1]], 0.5);
        assert_eq!(y[row_of("a")], 1.0);
        // A refuted Condition does not count.
        assert_eq!(y[row_of("b")], 0.0);
        assert_eq!(y[row_of("c")], 0.0);
    }

    #[test]
    fn order_is_by_pseudonym_whatever_the_input_order() {
        let spec = spec(MissingPolicy::DropRow);
        let forward = extract(&spec, records(), &[1; 32]).unwrap();
        let backward = extract(&spec, records().into_iter().rev(), &[1; 32]).unwrap();
        assert_eq!(forward.record_ids, backward.record_ids);
        assert_eq!(forward.dataset, backward.dataset);
        assert_eq!(forward.dropped, 1);
        let pseudonyms = forward.dataset.pseudonyms();
        assert!(pseudonyms.windows(2).all(|w| w[0] < w[1]));
        // Another salt, other pseudonyms.
        let other = extract(&spec, records(), &[2; 32]).unwrap();
        assert_ne!(other.dataset.pseudonyms(), pseudonyms);
    }

    #[test]
    fn typed_errors() {
        let fail = extract(&spec(MissingPolicy::Fail), records(), &[0; 32]);
        assert_eq!(
            fail.unwrap_err(),
            ExtractDatasetError::MissingValue {
                position: FeaturePosition::Column(0),
                policy: MissingPolicy::Fail
            }
        );
        let none = extract(&spec(MissingPolicy::DropRow), Vec::new(), &[0; 32]);
        assert_eq!(
            none.unwrap_err(),
            ExtractDatasetError::EmptyDataset { dropped: 0 }
        );
        let mut unknown = spec(MissingPolicy::DropRow);
        unknown.features.push(Feature::LatestObservation {
            system: LOINC.into(),
            code: "9999-9".into(),
        });
        assert_eq!(
            extract(&unknown, records(), &[0; 32]).unwrap_err(),
            ExtractDatasetError::UnknownFeatureCode {
                position: FeaturePosition::Column(3),
                system: LOINC.into(),
                code: "9999-9".into()
            }
        );
        let mut dup = records();
        dup.push(dup[0].clone());
        assert_eq!(
            extract(&spec(MissingPolicy::DropRow), dup, &[0; 32]).unwrap_err(),
            ExtractDatasetError::DuplicateRecord { index: 3 }
        );
        let only_c = vec![records().remove(2)];
        let mut sex_only = spec(MissingPolicy::DropRow);
        sex_only.features = vec![Feature::Sex];
        sex_only.label = None;
        assert_eq!(
            extract(&sex_only, only_c, &[0; 32]).unwrap_err(),
            ExtractDatasetError::EmptyDataset { dropped: 1 }
        );
    }

    #[test]
    fn debug_hides_records() {
        let out = extract(&spec(MissingPolicy::DropRow), records(), &[0; 32]).unwrap();
        let text = format!("{out:?} {:?}", records()[0]);
        assert!(!text.contains("\"a\"") && !text.contains("1990"), "{text}");
    }
}
