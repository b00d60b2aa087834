//! The Wisconsin Diagnostic Breast Cancer data as FHIR, for tests, the demo
//! and benchmarks.
//!
//! Each CSV row (30 feature columns and `target`, 0 malignant / 1 benign, as
//! scikit-learn ships it) becomes one patient `wdbc-<row>`: a Patient, one
//! Observation per column (code system [`WDBC_SYSTEM`], the column name as
//! code, the value as `valueQuantity.value`) and a Condition coded
//! [`DIAGNOSIS_BENIGN`] or [`DIAGNOSIS_MALIGNANT`]. [`BreastCancerData::spec`]
//! reads them back: 30 latest-observation columns and the label
//! "has a benign diagnosis", so label 1 = benign as in scikit-learn.

use ndarray::{Array1, Array2};
use serde_json::json;

use super::spec::{Feature, FeatureSpec, MissingPolicy};

/// Code system of the example's Observation and Condition codes.
pub const WDBC_SYSTEM: &str = "urn:careledger:example:wdbc";

/// Condition code of a benign diagnosis (CSV target 1).
pub const DIAGNOSIS_BENIGN: &str = "diagnosis-benign";

/// Condition code of a malignant diagnosis (CSV target 0).
pub const DIAGNOSIS_MALIGNANT: &str = "diagnosis-malignant";

/// The CSV does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseExampleDataError {
    /// The header is missing, has no feature column, or does not end in `target`.
    #[error("header must list feature columns and end with `target`")]
    Header,
    /// A row has another number of fields than the header.
    #[error("line {line}: {found} fields, header has {expected}")]
    FieldCount {
        /// 1-based line.
        line: usize,
        /// Fields in the header.
        expected: usize,
        /// Fields on the line.
        found: usize,
    },
    /// A field is not a finite number, or the target is not 0 or 1.
    #[error("line {line}, field {field}: must be a finite number (target: 0 or 1)")]
    Value {
        /// 1-based line.
        line: usize,
        /// 1-based field.
        field: usize,
    },
}

/// The parsed CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct BreastCancerData {
    columns: Vec<String>,
    features: Array2<f64>,
    targets: Array1<f64>,
}

impl BreastCancerData {
    /// Parse the CSV (header line, then one row per line; no quoting).
    pub fn parse(csv: &str) -> Result<Self, ParseExampleDataError> {
        let mut lines = csv
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or(ParseExampleDataError::Header)?;
        let mut columns: Vec<String> = header.split(',').map(|c| c.trim().to_owned()).collect();
        if columns.len() < 2 || columns.pop().as_deref() != Some("target") {
            return Err(ParseExampleDataError::Header);
        }
        let width = columns.len() + 1;
        let mut values = Vec::new();
        let mut targets = Vec::new();
        for (index, line) in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != width {
                return Err(ParseExampleDataError::FieldCount {
                    line: index + 1,
                    expected: width,
                    found: fields.len(),
                });
            }
            for (f, field) in fields.iter().enumerate() {
                let bad = ParseExampleDataError::Value {
                    line: index + 1,
                    field: f + 1,
                };
                let value: f64 = field.trim().parse().map_err(|_| bad.clone())?;
                if !value.is_finite() || (f + 1 == width && value != 0.0 && value != 1.0) {
                    return Err(bad);
                }
                if f + 1 == width {
                    targets.push(value);
                } else {
                    values.push(value);
                }
            }
        }
        let rows = targets.len();
        let features = Array2::from_shape_vec((rows, width - 1), values)
            .map_err(|_| ParseExampleDataError::Header)?;
        Ok(BreastCancerData {
            columns,
            features,
            targets: Array1::from(targets),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Feature column names (the Observation codes).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The feature matrix, CSV order.
    pub fn features(&self) -> &Array2<f64> {
        &self.features
    }

    /// The targets (1 benign), CSV order.
    pub fn targets(&self) -> &Array1<f64> {
        &self.targets
    }

    /// Patient (record) id of a CSV row: `wdbc-<row>`.
    pub fn patient_id(row: usize) -> String {
        format!("wdbc-{row}")
    }

    /// CSV row of a patient id made by [`BreastCancerData::patient_id`].
    pub fn row_of(patient_id: &str) -> Option<usize> {
        patient_id.strip_prefix("wdbc-")?.parse().ok()
    }

    /// Every row as FHIR R4 NDJSON: per patient a Patient, one Observation
    /// per column and one Condition.
    pub fn to_ndjson(&self) -> String {
        let mut out = String::new();
        for (row, (values, target)) in self.features.outer_iter().zip(&self.targets).enumerate() {
            let patient = Self::patient_id(row);
            let subject = json!({ "reference": format!("Patient/{patient}") });
            let mut push = |value: serde_json::Value| {
                out.push_str(&value.to_string());
                out.push('\n');
            };
            push(json!({ "resourceType": "Patient", "id": patient }));
            for (column, (name, value)) in self.columns.iter().zip(values).enumerate() {
                push(json!({
                    "resourceType": "Observation",
                    "id": format!("{patient}-f{column}"),
                    "status": "final",
                    "code": { "coding": [{ "system": WDBC_SYSTEM, "code": name }], "text": name },
                    "subject": subject,
                    "valueQuantity": { "value": value },
                }));
            }
            let diagnosis = if *target == 1.0 {
                DIAGNOSIS_BENIGN
            } else {
                DIAGNOSIS_MALIGNANT
            };
            push(json!({
                "resourceType": "Condition",
                "id": format!("{patient}-dx"),
                "code": { "coding": [{ "system": WDBC_SYSTEM, "code": diagnosis }] },
                "subject": subject,
            }));
        }
        out
    }

    /// `rows` split into `parts` groups by quantiles of feature `column`
    /// (group 0 the smallest values): a non-IID split of the data over
    /// sites. Ties stay together; every group is returned in row order.
    pub fn split_by_feature(&self, rows: &[usize], column: usize, parts: usize) -> Vec<Vec<usize>> {
        let parts = parts.max(1);
        let mut values: Vec<f64> = rows
            .iter()
            .filter_map(|&r| self.features.get([r, column]).copied())
            .collect();
        values.sort_by(f64::total_cmp);
        let cuts: Vec<f64> = (1..parts)
            .filter_map(|k| values.get(k * values.len() / parts).copied())
            .collect();
        let mut groups = vec![Vec::new(); parts];
        for &r in rows {
            let Some(v) = self.features.get([r, column]).copied() else {
                continue;
            };
            let group = cuts.iter().filter(|c| v >= **c).count();
            groups[group].push(r);
        }
        groups
    }

    /// The spec that reads the records back: one latest-observation column
    /// per CSV column, label "has a benign diagnosis", missing values fail.
    pub fn spec(&self) -> FeatureSpec {
        FeatureSpec::new(
            self.columns
                .iter()
                .map(|code| Feature::LatestObservation {
                    system: WDBC_SYSTEM.to_owned(),
                    code: code.clone(),
                })
                .collect(),
            Some(Feature::HasCondition {
                system: WDBC_SYSTEM.to_owned(),
                codes: vec![DIAGNOSIS_BENIGN.to_owned()],
            }),
            MissingPolicy::Fail,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "a,b c,target\n1.5,2,0\n3,4e-3,1\n";

    #[test]
    fn parses_and_converts() {
        let data = BreastCancerData::parse(CSV).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.columns(), ["a", "b c"]);
        assert_eq!(data.features()[[1, 1]], 4e-3);
        let ndjson = data.to_ndjson();
        assert_eq!(ndjson.lines().count(), 8);
        let resources = crate::record::fhir::parse_auto("wdbc.ndjson", ndjson.as_bytes()).unwrap();
        let charts = crate::record::fhir::group_by_patient(resources).unwrap();
        assert_eq!(charts["wdbc-1"].len(), 4);
        assert_eq!(BreastCancerData::row_of("wdbc-1"), Some(1));
    }

    #[test]
    fn bad_csv() {
        assert_eq!(
            BreastCancerData::parse("a,b\n1,2\n"),
            Err(ParseExampleDataError::Header)
        );
        assert_eq!(
            BreastCancerData::parse("a,target\n1\n"),
            Err(ParseExampleDataError::FieldCount {
                line: 2,
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            BreastCancerData::parse("a,target\n1,2\n"),
            Err(ParseExampleDataError::Value { line: 2, field: 2 })
        );
        assert_eq!(
            BreastCancerData::parse("a,target\nnan,1\n"),
            Err(ParseExampleDataError::Value { line: 2, field: 1 })
        );
    }
}
