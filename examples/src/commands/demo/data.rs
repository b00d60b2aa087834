//! The demo's FHIR data, compiled into the binary so the demo runs anywhere
//! (an installed binary has no source tree), and the small rewrites it needs.

use std::collections::BTreeSet;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

/// One embedded file.
pub struct DataFile {
    /// Path under `examples/data/fhir/`; also the import's source name.
    pub name: &'static str,
    /// The file.
    pub bytes: &'static [u8],
}

macro_rules! fhir_file {
    ($path:literal) => {
        DataFile {
            name: $path,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/fhir/", $path)),
        }
    };
}

/// Synthea bulk export of a small population, Patients first.
pub const BULK: [DataFile; 6] = [
    fhir_file!("bulk-10-patients/Patient.000.ndjson"),
    fhir_file!("bulk-10-patients/AllergyIntolerance.000.ndjson"),
    fhir_file!("bulk-10-patients/Condition.000.ndjson"),
    fhir_file!("bulk-10-patients/Encounter.000.ndjson"),
    fhir_file!("bulk-10-patients/Immunization.000.ndjson"),
    fhir_file!("bulk-10-patients/MedicationRequest.000.ndjson"),
];

/// One Synthea patient as a transaction Bundle (`urn:uuid:` references).
pub const HIV_BUNDLE: DataFile = fhir_file!("synthea-hiv-bundles/bundle_0.json");

/// Six real Observations with LOINC codes, of patients outside this population.
pub const OBSERVATIONS: DataFile = fhir_file!("standard-obs-sample/Observation.ndjson");

/// Members that tie a resource to its patient (as the core reads them).
const PATIENT_LINKS: [&str; 3] = ["subject", "patient", "beneficiary"];

const LOINC: &str = "http://loinc.org";

fn lines(file: &DataFile) -> Result<Vec<Value>> {
    let text =
        std::str::from_utf8(file.bytes).with_context(|| format!("{} is not UTF-8", file.name))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}, line {}: not JSON", file.name, n + 1))
        })
        .collect()
}

fn to_ndjson(values: &[Value]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for value in values {
        serde_json::to_writer(&mut out, value)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Ids of the bulk Patients, in file order.
pub fn bulk_patient_ids() -> Result<Vec<String>> {
    lines(&BULK[0])?
        .iter()
        .map(|patient| {
            patient["id"]
                .as_str()
                .map(str::to_owned)
                .context("a bulk Patient has no id")
        })
        .collect()
}

/// The resources of `file` that belong to one of `keep`.
pub fn select_patients(file: &DataFile, keep: &BTreeSet<String>) -> Result<Vec<u8>> {
    let kept: Vec<Value> = lines(file)?
        .into_iter()
        .filter(|resource| {
            if resource["resourceType"] == "Patient" {
                return resource["id"].as_str().is_some_and(|id| keep.contains(id));
            }
            PATIENT_LINKS.iter().any(|link| {
                resource[link]["reference"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("Patient/"))
                    .is_some_and(|id| keep.contains(id))
            })
        })
        .collect();
    to_ndjson(&kept)
}

/// Observations built from the LOINC sample: for each `(patient, sample)`,
/// sample line `sample % 6` with a new id `<prefix>-<n>`, its subject set to
/// the patient, and its `encounter` (of another population) dropped.
/// Returns the NDJSON and the LOINC codes used.
pub fn observations(
    assignments: &[(String, usize)],
    prefix: &str,
) -> Result<(Vec<u8>, Vec<String>)> {
    let samples = lines(&OBSERVATIONS)?;
    if samples.is_empty() {
        bail!("{} holds no Observation", OBSERVATIONS.name);
    }
    let mut out = Vec::with_capacity(assignments.len());
    let mut codes = Vec::new();
    for (n, (patient, sample)) in assignments.iter().enumerate() {
        let mut observation = samples[sample % samples.len()].clone();
        let object = observation
            .as_object_mut()
            .context("a sample Observation is not an object")?;
        object.remove("encounter");
        object.insert("id".into(), json!(format!("{prefix}-{}", n + 1)));
        object.insert(
            "subject".into(),
            json!({ "reference": format!("Patient/{patient}") }),
        );
        let code = observation["code"]["coding"]
            .as_array()
            .and_then(|codings| codings.iter().find(|c| c["system"] == LOINC))
            .and_then(|c| c["code"].as_str())
            .context("a sample Observation has no LOINC code")?
            .to_owned();
        if !codes.contains(&code) {
            codes.push(code);
        }
        out.push(observation);
    }
    Ok((to_ndjson(&out)?, codes))
}

/// Observations of `ndjson` (an export) whose id starts with `prefix`.
pub fn count_observations(ndjson: &str, prefix: &str) -> usize {
    ndjson
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|r| r["resourceType"] == "Observation")
        .filter(|r| r["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .count()
}

/// The patient a resource of a chart belongs to: its `subject` (or
/// `patient`, `beneficiary`) reference, or its own id for a Patient.
fn owner(resource: &Value) -> Option<&str> {
    if resource["resourceType"] == "Patient" {
        return resource["id"].as_str();
    }
    PATIENT_LINKS.iter().find_map(|link| {
        resource[link]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
    })
}

/// The charts of the patients `keep` selects from NDJSON whose resources are
/// grouped by patient (as `BreastCancerData::to_ndjson` writes them), each
/// followed by the line `consent_for` gives for its patient (a Consent as
/// FHIR JSON), if any. Returns the NDJSON and the patients, in order.
pub fn with_consents(
    ndjson: &str,
    keep: impl Fn(&str) -> bool,
    mut consent_for: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<(Vec<u8>, Vec<String>)> {
    let mut out = Vec::with_capacity(ndjson.len() + ndjson.len() / 8);
    let mut patients: Vec<String> = Vec::new();
    let mut close = |patient: Option<&String>, out: &mut Vec<u8>| -> Result<()> {
        if let Some(consent) = patient.map(|p| consent_for(p)).transpose()?.flatten() {
            out.extend_from_slice(consent.as_bytes());
            out.push(b'\n');
        }
        Ok(())
    };
    for (n, line) in ndjson.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let resource: Value = serde_json::from_str(line)
            .with_context(|| format!("example chart line {}: not JSON", n + 1))?;
        let patient = owner(&resource)
            .with_context(|| format!("example chart line {}: belongs to no patient", n + 1))?;
        if !keep(patient) {
            continue;
        }
        if patients.last().map(String::as_str) != Some(patient) {
            close(patients.last(), &mut out)?;
            patients.push(patient.to_owned());
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    close(patients.last(), &mut out)?;
    Ok((out, patients))
}

/// One member of the Patient resource `id` in an exported Bundle.
pub fn patient_member(bundle: &str, id: &str, member: &str) -> Option<Value> {
    let bundle: Value = serde_json::from_str(bundle).ok()?;
    bundle["entry"]
        .as_array()?
        .iter()
        .map(|entry| &entry["resource"])
        .find(|r| r["resourceType"] == "Patient" && r["id"] == id)
        .and_then(|r| r.get(member).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_population_has_thirteen_patients() {
        assert_eq!(bulk_patient_ids().map(|ids| ids.len()).ok(), Some(13));
    }

    #[test]
    fn observations_point_at_the_given_patients() {
        let assignments = vec![("p1".to_owned(), 0), ("p2".to_owned(), 5)];
        let (ndjson, codes) = observations(&assignments, "lab-result").unwrap();
        let text = String::from_utf8(ndjson).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("encounter"));
        assert!(text.contains(r#""subject":{"reference":"Patient/p2"}"#));
        assert_eq!(codes, vec!["72514-3", "85354-9"]);
        assert_eq!(count_observations(&text, "lab-result-"), 2);
    }

    #[test]
    fn consents_follow_each_patients_resources() {
        let ndjson = concat!(
            r#"{"resourceType":"Patient","id":"p1"}"#,
            "\n",
            r#"{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p1"}}"#,
            "\n",
            r#"{"resourceType":"Patient","id":"p2"}"#,
            "\n",
        );
        let (out, patients) = with_consents(
            ndjson,
            |_| true,
            |patient| Ok((patient == "p1").then(|| format!("consent-of-{patient}"))),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(patients, ["p1", "p2"]);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2], "consent-of-p1");
        let (only_p2, patients) = with_consents(ndjson, |p| p == "p2", |_| Ok(None)).unwrap();
        assert_eq!(patients, ["p2"]);
        assert_eq!(String::from_utf8(only_p2).unwrap().lines().count(), 1);
        let orphan = r#"{"resourceType":"Observation","id":"x"}"#;
        assert!(with_consents(orphan, |_| true, |_| Ok(None)).is_err());
    }

    #[test]
    fn selecting_patients_keeps_only_their_resources() {
        let ids = bulk_patient_ids().unwrap();
        let keep: BTreeSet<String> = ids.iter().take(2).cloned().collect();
        let patients = String::from_utf8(select_patients(&BULK[0], &keep).unwrap()).unwrap();
        assert_eq!(patients.lines().count(), 2);
        let conditions = String::from_utf8(select_patients(&BULK[2], &keep).unwrap()).unwrap();
        assert!(conditions.lines().count() > 0);
        assert!(conditions.lines().count() < BULK[2].bytes.split(|b| *b == b'\n').count());
    }
}
