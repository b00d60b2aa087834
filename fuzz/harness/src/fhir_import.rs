//! FHIR R4 import: Bulk NDJSON and Bundles. The first byte picks the parser
//! (NDJSON, Bundle, auto-detect); what parses must survive a canonical export
//! and re-parse unchanged, and group by patient without panicking; every
//! 16th accepted input is also imported through a real node.

use careledger::keys::StorageKey;
use careledger::node::Node;
use careledger::record::fhir::{
    export_bundle, export_ndjson, group_by_patient, parse_auto, parse_bundle, parse_ndjson,
    Resource,
};
use careledger::store::Store;

use crate::fixture;

fn canonical(resources: &[Resource]) -> Vec<String> {
    let mut out: Vec<String> = resources.iter().map(Resource::to_json).collect();
    out.sort();
    out
}

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let parsed = match mode % 3 {
        0 => std::str::from_utf8(body)
            .ok()
            .map(|text| parse_ndjson("fuzz.ndjson", text)),
        1 => std::str::from_utf8(body)
            .ok()
            .map(|text| parse_bundle("fuzz.json", text)),
        _ => Some(parse_auto("fuzz", body)),
    };
    let Some(Ok(resources)) = parsed else {
        return;
    };
    let before = canonical(&resources);
    let bundle = export_bundle(&resources);
    let again = parse_bundle("export.json", &bundle).expect("an exported Bundle parses");
    assert_eq!(canonical(&again), before, "Bundle export changed resources");
    let ndjson = export_ndjson(&resources);
    let again = parse_ndjson("export.ndjson", &ndjson).expect("exported NDJSON parses");
    assert_eq!(canonical(&again), before, "NDJSON export changed resources");
    let _ = group_by_patient(resources);
    if mode >= 0xf0 {
        import_through_node(body);
    }
}

fn import_through_node(bytes: &[u8]) {
    let key = StorageKey::from_bytes(fixture::STORAGE_KEY);
    let store = Store::open_in_memory(&key).expect("store");
    let mut node = Node::create(store, "hospital-a.example").expect("node");
    let network = node.create_network(fixture::LABEL).expect("network");
    if node
        .import_fhir(&network, "fuzz", bytes, fixture::T0)
        .is_ok()
    {
        for patient in node.patients(&network).expect("patients") {
            node.export_patient(&network, &patient, careledger::node::ExportFormat::Bundle)
                .expect("an imported patient exports");
        }
    }
}

/// Real Synthea data: a few lines of each bulk file, whole small Bundles,
/// and the same through the node import.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in [
        "Patient",
        "Condition",
        "Encounter",
        "Immunization",
        "MedicationRequest",
        "AllergyIntolerance",
    ] {
        let lines = fixture::ndjson_lines(&format!("bulk-10-patients/{name}.000.ndjson"), 2);
        let mut seed = vec![0];
        seed.extend_from_slice(&lines);
        out.push((format!("ndjson-{name}"), seed.clone()));
        seed[0] = 2;
        out.push((format!("auto-{name}"), seed.clone()));
        seed[0] = 0xf2;
        out.push((format!("node-{name}"), seed));
    }
    let obs = fixture::ndjson_lines("standard-obs-sample/Observation.ndjson", 3);
    out.push(("ndjson-Observation".into(), [&[0u8][..], &obs].concat()));
    // The smallest real Bundle, whole; the others cut to a few entries.
    let mut bundles: Vec<Vec<u8>> = (0..10)
        .map(|i| fixture::fhir_data(&format!("synthea-hiv-bundles/bundle_{i}.json")))
        .collect();
    bundles.sort_by_key(Vec::len);
    for (i, bundle) in bundles.iter().take(2).enumerate() {
        let value: serde_json::Value = serde_json::from_slice(bundle).expect("bundle JSON");
        let mut small = value.clone();
        if let Some(entries) = small.get_mut("entry").and_then(|e| e.as_array_mut()) {
            entries.truncate(4);
        }
        let text = serde_json::to_vec(&small).expect("JSON");
        out.push((format!("bundle-{i}"), [&[1u8][..], &text].concat()));
        out.push((format!("node-bundle-{i}"), [&[0xf1u8][..], &text].concat()));
    }
    out
}
