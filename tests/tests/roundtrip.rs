//! Every file of the FHIR test data goes into a node, out as Bundle and as
//! NDJSON, and into a second node: every resource comes back JSON-equal
//! (numbers and decimals exactly as written), and the second node's export is
//! byte-identical to the first's.

use std::collections::BTreeMap;

use careledger::node::{ExportFormat, NetworkId, Node};
use careledger::record::fhir::parse_auto;
use careledger_scenarios::*;

/// `(type, id)` → resource, as the parser normalises it (urn:uuid resolved).
fn expected(files: &[&str]) -> BTreeMap<(String, String), serde_json::Value> {
    let mut out = BTreeMap::new();
    for file in files {
        for resource in parse_auto(file, &data(file)).unwrap() {
            out.insert(
                (
                    resource.resource_type().to_owned(),
                    resource.id().to_owned(),
                ),
                resource.to_value(),
            );
        }
    }
    out
}

fn exported(
    node: &mut Node,
    net: &NetworkId,
    format: ExportFormat,
) -> (String, BTreeMap<(String, String), serde_json::Value>) {
    let mut all = String::new();
    let mut out = BTreeMap::new();
    for patient in node.patients(net).unwrap() {
        let text = node.export_patient(net, &patient, format).unwrap();
        all.push_str(&text);
        for resource in parse_auto("export", text.as_bytes()).unwrap() {
            out.insert(
                (
                    resource.resource_type().to_owned(),
                    resource.id().to_owned(),
                ),
                resource.to_value(),
            );
        }
    }
    (all, out)
}

fn all_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in [
        "bulk-10-patients",
        "synthea-hiv-bundles",
        "standard-obs-sample",
    ] {
        let mut names: Vec<String> = std::fs::read_dir(data_path(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".ndjson") || n.ends_with(".json"))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        names.sort();
        files.extend(names);
    }
    files
}

#[test]
fn all_test_data_round_trips_losslessly() {
    let files = all_files();
    assert_eq!(
        files.len(),
        6 + 10 + 1,
        "6 bulk NDJSON + 10 bundles + 1 sample"
    );
    let file_refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let want = expected(&file_refs);

    let mut a = memory_node("hospital-a.example");
    let net = a.create_network("care").unwrap();
    let mut resources = 0;
    for file in &files {
        resources += a
            .import_fhir(&net, file, &data(file), T0)
            .unwrap()
            .resources;
    }
    assert_eq!(
        resources,
        want.len(),
        "no resource id repeats across the data"
    );
    // 13 bulk patients + 10 bundle patients + the sample's one subject.
    assert_eq!(a.patients(&net).unwrap().len(), 13 + 10 + 1);

    for format in [ExportFormat::Bundle, ExportFormat::Ndjson] {
        let (text_a, got) = exported(&mut a, &net, format);
        assert_eq!(got.len(), want.len());
        for (key, value) in &want {
            assert!(
                got.get(key) == Some(value),
                "{format:?}: {} {} differs after export",
                key.0,
                key.1
            );
        }
        // Re-import the export into a fresh node: identical again, byte for byte.
        let mut b = memory_node("hospital-b.example");
        let net_b = b.create_network("copy").unwrap();
        for patient in a.patients(&net).unwrap() {
            let text = a.export_patient(&net, &patient, format).unwrap();
            b.import_fhir(&net_b, "export", text.as_bytes(), T0)
                .unwrap();
        }
        let (text_b, _) = exported(&mut b, &net_b, format);
        assert!(text_a == text_b, "{format:?}: re-imported export differs");
    }
    // Identifier values may be urn:uuid strings; references may not.
    let text = exported(&mut a, &net, ExportFormat::Ndjson).0;
    assert!(
        text.contains("\"value\":\"urn:uuid:"),
        "identifier values are kept as written"
    );
    assert!(
        !text.contains("\"reference\":\"urn:uuid:"),
        "urn:uuid references must be resolved to Type/id"
    );
}

#[test]
fn exported_patient_is_pinned() {
    let mut a = memory_node("hospital-a.example");
    let net = a.create_network("care").unwrap();
    let file = "standard-obs-sample/Observation.ndjson";
    a.import_fhir(&net, file, &data(file), T0).unwrap();
    let patient = "0bee1bc6-1a91-bcd5-7bc0-02fadc5217d6";
    let bundle = a
        .export_patient(&net, patient, ExportFormat::Bundle)
        .unwrap();
    // The export is deterministic (no timestamps or random ids), so nothing
    // needs redacting; pretty-printed for review.
    let value: serde_json::Value = serde_json::from_str(&bundle).unwrap();
    insta::assert_snapshot!(serde_json::to_string_pretty(&value).unwrap());
}
