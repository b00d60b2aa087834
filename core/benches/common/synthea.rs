//! Synthea-shaped patients, generated without limit from the in-repo Synthea
//! bulk export (`examples/data/fhir/bulk-10-patients/`, 13 real-shaped
//! patients): patient `n` is a copy of one template patient (chosen by a
//! seeded generator) with every UUID renamed deterministically for `n`, so
//! ids, Patient references and Encounter references stay consistent, and a
//! seeded share of the template's clinical history (Encounters, Conditions,
//! MedicationRequests, Immunizations, AllergyIntolerances) kept. Resources
//! keep Synthea's exact JSON shapes and sizes; nothing is held in memory
//! beyond the 13 templates, so a run of any length generates in a stream.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Folder of the template export.
const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/fhir/bulk-10-patients/"
);

const FILES: [&str; 6] = [
    "Patient.000.ndjson",
    "AllergyIntolerance.000.ndjson",
    "Condition.000.ndjson",
    "Encounter.000.ndjson",
    "Immunization.000.ndjson",
    "MedicationRequest.000.ndjson",
];

/// The 13 template patients: NDJSON lines, the Patient first.
pub struct Templates {
    patients: Vec<(String, Vec<String>)>,
}

impl Templates {
    /// Read the in-repo export.
    pub fn load() -> Templates {
        let mut by_patient: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in FILES {
            let text = std::fs::read_to_string(format!("{DATA}{file}")).expect("template data");
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let value: serde_json::Value = serde_json::from_str(line).expect("template JSON");
                let patient = if value["resourceType"] == "Patient" {
                    value["id"].as_str().expect("patient id").to_owned()
                } else {
                    let link = value["subject"]["reference"]
                        .as_str()
                        .or_else(|| value["patient"]["reference"].as_str())
                        .expect("patient link");
                    link.trim_start_matches("Patient/").to_owned()
                };
                by_patient.entry(patient).or_default().push(line.to_owned());
            }
        }
        Templates {
            patients: by_patient.into_iter().collect(),
        }
    }
}

/// SplitMix64: seeded choices without a dependency.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn is_uuid_at(bytes: &[u8], at: usize) -> bool {
    if at + 36 > bytes.len() {
        return false;
    }
    (0..36).all(|i| {
        let b = bytes[at + i];
        if matches!(i, 8 | 13 | 18 | 23) {
            b == b'-'
        } else {
            b.is_ascii_hexdigit() && !b.is_ascii_uppercase()
        }
    })
}

/// `line` with every UUID renamed for patient `n` of `seed`.
fn rename(line: &str, seed: u64, n: u64) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    let mut copied = 0;
    while at < bytes.len() {
        if is_uuid_at(bytes, at) {
            out.push_str(&line[copied..at]);
            let digest = Sha256::new()
                .chain_update(seed.to_be_bytes())
                .chain_update(n.to_be_bytes())
                .chain_update(&bytes[at..at + 36])
                .finalize();
            let h = hex::encode(&digest[..16]);
            out.push_str(&format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ));
            at += 36;
            copied = at;
        } else {
            at += 1;
        }
    }
    out.push_str(&line[copied..]);
    out
}

/// Patients `first..first + count` of the population `seed`, as one Bulk
/// NDJSON document, with about `keep_per_mille` / 1000 of each template's
/// clinical resources. Returns (NDJSON, resources).
pub fn patients(
    templates: &Templates,
    seed: u64,
    first: u64,
    count: u64,
    keep_per_mille: u64,
) -> (Vec<u8>, usize) {
    let mut out = String::new();
    let mut resources = 0;
    for n in first..first + count {
        let mut mix = Mix(seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (_, lines) =
            &templates.patients[(mix.next() % templates.patients.len() as u64) as usize];
        for (i, line) in lines.iter().enumerate() {
            // The Patient always; then a seeded share of the history.
            if i > 0 && mix.next() % 1000 >= keep_per_mille {
                continue;
            }
            out.push_str(&rename(line, seed, n));
            out.push('\n');
            resources += 1;
        }
    }
    (out.into_bytes(), resources)
}
