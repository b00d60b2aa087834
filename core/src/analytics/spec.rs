//! The feature spec: which numbers are taken from a patient's record, in
//! which column order, and what happens when one is missing.
//!
//! A spec is data: it is written once (by a researcher), hashed, and cited by
//! every model trained from it. Its hash is SHA-256 over its canonical JSON
//! (object keys sorted by byte order, no whitespace, arrays in spec order),
//! so two parties holding the same spec agree on the hash whatever JSON
//! library or member order they used to write it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::fhir_time;

/// The feature-spec format this library reads and writes.
pub const FEATURE_SPEC_VERSION: u32 = 1;

/// One feature: how a number is read from one patient's record.
///
/// Codes are compared exactly (system and code strings), as FHIR `Coding`s
/// are. A resource whose status says it is void (`entered-in-error`, and for
/// Observations also `cancelled`; for Conditions a `verificationStatus` of
/// `refuted` or `entered-in-error`) is ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Feature {
    /// `Observation.valueQuantity.value` of the latest Observation whose
    /// `code.coding` (or a `component[].code.coding`, then with that
    /// component's `valueQuantity`) holds `system`|`code`. Latest by
    /// `effectiveDateTime`, else `effectivePeriod.start`, else `effectiveInstant`,
    /// else `issued`, compared as instants (partial dates
    /// stand for their first moment, a missing time sorts before every
    /// time); ties go to the greatest resource id. Units are not converted.
    /// Missing when no such Observation carries a numeric quantity.
    LatestObservation {
        /// Code system URI, e.g. `http://loinc.org`.
        system: String,
        /// The code, e.g. `2339-0`.
        code: String,
    },
    /// Age in years (days / 365.2425) on `date` (`YYYY-MM-DD`), from
    /// `Patient.birthDate` (a partial birth date stands for its first day).
    /// Missing when there is no birth date or it is after `date`.
    AgeAt {
        /// The reference date, `YYYY-MM-DD`.
        date: String,
    },
    /// `Patient.gender`: `female` → 1.0, `male` → 0.0; `other`, `unknown` or
    /// absent is missing.
    Sex,
    /// 1.0 when a Condition's `code.coding` holds `system` and one of
    /// `codes`, else 0.0 (never missing).
    HasCondition {
        /// Code system URI, e.g. `http://snomed.info/sct`.
        system: String,
        /// Codes that count; at least one.
        codes: Vec<String>,
    },
    /// 1.0 when a MedicationRequest's `medicationCodeableConcept.coding`
    /// holds `system` and one of `codes`, else 0.0 (never missing).
    /// `medicationReference` is not followed.
    MedicationClass {
        /// Code system URI, e.g. `http://www.nlm.nih.gov/research/umls/rxnorm`.
        system: String,
        /// Codes of the class's members; at least one.
        codes: Vec<String>,
    },
}

impl Feature {
    /// A short column name for tables and model cards, built from the spec
    /// only: `latest(system|code)`, `age_at(date)`, `sex`,
    /// `has_condition(system|a,b)`, `medication_class(system|a,b)`.
    pub fn column_name(&self) -> String {
        match self {
            Feature::LatestObservation { system, code } => format!("latest({system}|{code})"),
            Feature::AgeAt { date } => format!("age_at({date})"),
            Feature::Sex => "sex".to_owned(),
            Feature::HasCondition { system, codes } => {
                format!("has_condition({system}|{})", codes.join(","))
            }
            Feature::MedicationClass { system, codes } => {
                format!("medication_class({system}|{})", codes.join(","))
            }
        }
    }

    /// Whether the value can be missing (and the missing-value policy applies).
    pub fn can_be_missing(&self) -> bool {
        matches!(
            self,
            Feature::LatestObservation { .. } | Feature::AgeAt { .. } | Feature::Sex
        )
    }
}

/// What extraction does with a row that lacks a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Leave the row out (it is counted in `dropped`).
    DropRow,
    /// Fail the whole extraction with `MissingValue`.
    Fail,
    /// Replace a missing feature with the mean of that column over the rows
    /// that have it. A missing *label* is never imputed: such rows are
    /// dropped. A column that no row has fails with `MissingValue`.
    ImputeMean,
}

/// A declared, versioned, hashed list of features (and an optional label).
///
/// ```
/// use careledger::analytics::{Feature, FeatureSpec, MissingPolicy};
/// let spec = FeatureSpec::new(
///     vec![
///         Feature::AgeAt { date: "2025-01-01".into() },
///         Feature::LatestObservation { system: "http://loinc.org".into(), code: "2339-0".into() },
///     ],
///     Some(Feature::HasCondition {
///         system: "http://snomed.info/sct".into(),
///         codes: vec!["44054006".into()],
///     }),
///     MissingPolicy::DropRow,
/// );
/// spec.validate().unwrap();
/// let again = FeatureSpec::from_json(&spec.canonical_json()).unwrap();
/// assert_eq!(spec.hash(), again.hash());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Spec format version; [`FEATURE_SPEC_VERSION`].
    pub version: u32,
    /// The feature columns, in column order.
    pub features: Vec<Feature>,
    /// The target of supervised models; `None` for k-means only.
    #[serde(default)]
    pub label: Option<Feature>,
    /// What to do with missing values.
    pub missing: MissingPolicy,
}

/// Which part of a spec a problem concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeaturePosition {
    /// The feature column with this index.
    Column(usize),
    /// The label.
    Label,
}

impl fmt::Display for FeaturePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeaturePosition::Column(i) => write!(f, "feature {i}"),
            FeaturePosition::Label => f.write_str("label"),
        }
    }
}

/// A feature spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSpecError {
    /// The spec declares a format version this library does not read.
    #[error(
        "feature spec version {found} is not supported (this library reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the spec.
        found: u32,
        /// [`FEATURE_SPEC_VERSION`].
        supported: u32,
    },
    /// The spec has no feature column.
    #[error("feature spec has no features")]
    NoFeatures,
    /// A system or code is empty.
    #[error("{position}: system and codes must be non-empty")]
    EmptyCode {
        /// Which feature.
        position: FeaturePosition,
    },
    /// A code set is empty.
    #[error("{position}: the code set must hold at least one code")]
    EmptyCodeSet {
        /// Which feature.
        position: FeaturePosition,
    },
    /// An `AgeAt` date is not a valid `YYYY-MM-DD` date.
    #[error("{position}: date must be a valid YYYY-MM-DD date")]
    InvalidDate {
        /// Which feature.
        position: FeaturePosition,
    },
    /// The JSON text is not a feature spec.
    #[error("not a feature spec: {reason}")]
    Malformed {
        /// serde's description (names the member and the expected type; a
        /// spec holds no patient data).
        reason: String,
    },
}

impl FeatureSpec {
    /// A spec of the current version.
    pub fn new(features: Vec<Feature>, label: Option<Feature>, missing: MissingPolicy) -> Self {
        FeatureSpec {
            version: FEATURE_SPEC_VERSION,
            features,
            label,
            missing,
        }
    }

    /// Parse a spec from JSON (any member order or whitespace) and validate it.
    pub fn from_json(text: &str) -> Result<Self, InvalidSpecError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let version: VersionOnly =
            serde_json::from_str(text).map_err(|e| InvalidSpecError::Malformed {
                reason: e.to_string(),
            })?;
        if version.version != FEATURE_SPEC_VERSION {
            return Err(InvalidSpecError::UnsupportedVersion {
                found: version.version,
                supported: FEATURE_SPEC_VERSION,
            });
        }
        let spec: FeatureSpec =
            serde_json::from_str(text).map_err(|e| InvalidSpecError::Malformed {
                reason: e.to_string(),
            })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Check the rules: supported version, at least one feature, non-empty
    /// systems, codes and code sets, valid dates.
    pub fn validate(&self) -> Result<(), InvalidSpecError> {
        if self.version != FEATURE_SPEC_VERSION {
            return Err(InvalidSpecError::UnsupportedVersion {
                found: self.version,
                supported: FEATURE_SPEC_VERSION,
            });
        }
        if self.features.is_empty() {
            return Err(InvalidSpecError::NoFeatures);
        }
        for (position, feature) in self.positions() {
            validate_feature(position, feature)?;
        }
        Ok(())
    }

    /// Every feature with its position, columns first, then the label.
    pub fn positions(&self) -> impl Iterator<Item = (FeaturePosition, &Feature)> {
        self.features
            .iter()
            .enumerate()
            .map(|(i, f)| (FeaturePosition::Column(i), f))
            .chain(self.label.iter().map(|f| (FeaturePosition::Label, f)))
    }

    /// The column names, in column order (see [`Feature::column_name`]).
    pub fn column_names(&self) -> Vec<String> {
        self.features.iter().map(Feature::column_name).collect()
    }

    /// The canonical JSON text: object keys sorted by byte order, no
    /// whitespace, array order kept.
    pub fn canonical_json(&self) -> String {
        // Serializing plain strings, integers and enums cannot fail.
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut out = String::new();
        write_canonical(&value, &mut out);
        out
    }

    /// SHA-256 of [`FeatureSpec::canonical_json`].
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_json().as_bytes()).into()
    }
}

fn validate_feature(position: FeaturePosition, feature: &Feature) -> Result<(), InvalidSpecError> {
    match feature {
        Feature::LatestObservation { system, code } => {
            if system.is_empty() || code.is_empty() {
                return Err(InvalidSpecError::EmptyCode { position });
            }
        }
        Feature::AgeAt { date } => {
            if fhir_time::parse_date(date).is_none() {
                return Err(InvalidSpecError::InvalidDate { position });
            }
        }
        Feature::Sex => {}
        Feature::HasCondition { system, codes } | Feature::MedicationClass { system, codes } => {
            if codes.is_empty() {
                return Err(InvalidSpecError::EmptyCodeSet { position });
            }
            if system.is_empty() || codes.iter().any(String::is_empty) {
                return Err(InvalidSpecError::EmptyCode { position });
            }
        }
    }
    Ok(())
}

/// Writes `value` with object keys sorted by byte order and no whitespace.
/// Strings and numbers use serde_json's own escaping and number text.
pub(crate) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, member)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FeatureSpec {
        FeatureSpec::new(
            vec![
                Feature::Sex,
                Feature::AgeAt {
                    date: "2025-01-01".into(),
                },
                Feature::MedicationClass {
                    system: "http://www.nlm.nih.gov/research/umls/rxnorm".into(),
                    codes: vec!["197361".into(), "314076".into()],
                },
            ],
            Some(Feature::LatestObservation {
                system: "http://loinc.org".into(),
                code: "2339-0".into(),
            }),
            MissingPolicy::ImputeMean,
        )
    }

    #[test]
    fn canonical_json_sorts_keys_and_has_no_whitespace() {
        let text = spec().canonical_json();
        assert_eq!(
            text,
            concat!(
                r#"{"features":[{"kind":"sex"},{"date":"2025-01-01","kind":"age_at"},"#,
                r#"{"codes":["197361","314076"],"kind":"medication_class","#,
                r#""system":"http://www.nlm.nih.gov/research/umls/rxnorm"}],"#,
                r#""label":{"code":"2339-0","kind":"latest_observation","system":"http://loinc.org"},"#,
                r#""missing":"impute_mean","version":1}"#
            )
        );
    }

    #[test]
    fn hash_ignores_member_order_and_whitespace() {
        let reordered = r#"{ "missing": "impute_mean", "version": 1,
            "label": {"system": "http://loinc.org", "code": "2339-0", "kind": "latest_observation"},
            "features": [{"kind": "sex"}, {"kind": "age_at", "date": "2025-01-01"},
              {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "kind": "medication_class",
               "codes": ["197361", "314076"]}] }"#;
        let parsed = FeatureSpec::from_json(reordered).unwrap();
        assert_eq!(parsed, spec());
        assert_eq!(parsed.hash(), spec().hash());
        // Known answer: pins the canonical encoding.
        assert_eq!(
            hex::encode(spec().hash()),
            hex::encode(Sha256::digest(spec().canonical_json().as_bytes()))
        );
    }

    #[test]
    fn any_change_changes_the_hash() {
        let mut other = spec();
        other.missing = MissingPolicy::DropRow;
        assert_ne!(other.hash(), spec().hash());
        let mut other = spec();
        other.features.swap(0, 1);
        assert_ne!(other.hash(), spec().hash());
    }

    #[test]
    fn bad_specs_are_typed_errors() {
        assert_eq!(
            FeatureSpec::from_json(r#"{"version":2,"features":[],"missing":"fail"}"#),
            Err(InvalidSpecError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        assert_eq!(
            FeatureSpec::from_json(r#"{"version":1,"features":[],"missing":"fail"}"#),
            Err(InvalidSpecError::NoFeatures)
        );
        assert!(matches!(
            FeatureSpec::from_json(r#"{"version":1,"features":[{"kind":"bmi"}],"missing":"fail"}"#),
            Err(InvalidSpecError::Malformed { .. })
        ));
        assert!(matches!(
            FeatureSpec::from_json("not json"),
            Err(InvalidSpecError::Malformed { .. })
        ));
        let bad_date = FeatureSpec::new(
            vec![Feature::AgeAt {
                date: "2025-02-30".into(),
            }],
            None,
            MissingPolicy::Fail,
        );
        assert_eq!(
            bad_date.validate(),
            Err(InvalidSpecError::InvalidDate {
                position: FeaturePosition::Column(0)
            })
        );
        let empty_set = FeatureSpec::new(
            vec![Feature::Sex],
            Some(Feature::HasCondition {
                system: "s".into(),
                codes: vec![],
            }),
            MissingPolicy::Fail,
        );
        assert_eq!(
            empty_set.validate(),
            Err(InvalidSpecError::EmptyCodeSet {
                position: FeaturePosition::Label
            })
        );
    }
}
