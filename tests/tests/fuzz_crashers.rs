//! Replays, on stable, every committed fuzz crasher (`tests/fuzz-crashers/<target>/`)
//! and every target's generated seed corpus through the fuzz harness, so a
//! bug once found stays fixed and every target runs in the ordinary suite.

use std::path::Path;

use careledger_fuzz_harness::{run, TARGETS};

fn crashers_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-crashers")
}

#[test]
fn every_committed_crasher_runs_clean() {
    let dir = crashers_dir();
    let mut replayed = 0;
    for target_dir in std::fs::read_dir(&dir).expect("tests/fuzz-crashers exists") {
        let target_dir = target_dir.expect("entry").path();
        if !target_dir.is_dir() {
            continue;
        }
        let name = target_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&target_dir)
            .expect("target dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).expect("crasher");
            eprintln!("replaying {}", file.display());
            run(&name, &data).unwrap_or_else(|| panic!("no fuzz target named {name}"));
            replayed += 1;
        }
    }
    eprintln!("{replayed} crashers replayed");
}

#[test]
fn every_target_runs_its_seed_corpus() {
    for target in TARGETS {
        let seeds = (target.seeds)();
        if target.name != "interaction" {
            assert!(!seeds.is_empty(), "target {} has no seeds", target.name);
        }
        for (name, data) in &seeds {
            eprintln!("{}: seed {name}", target.name);
            (target.fuzz)(data);
        }
    }
}

#[test]
fn every_crasher_directory_names_a_target() {
    for entry in std::fs::read_dir(crashers_dir()).expect("tests/fuzz-crashers exists") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|t| t.name == name),
                "tests/fuzz-crashers/{name} names no fuzz target"
            );
        }
    }
}
