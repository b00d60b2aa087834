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

/// A short, seeded slice of fuzzing on stable: every target runs its committed
/// cargo-fuzz corpus (`fuzz/corpus/<target>/`), then `FUZZ_SLICE_RUNS` inputs
/// (default 200 per target) made from its seeds and corpus by seeded byte-level
/// mutations: bit flips, boundary bytes, insertions, deletions, truncations,
/// duplicated ranges and splices of two inputs. `FUZZ_SLICE_SEED` picks the seed;
/// a failing input is written to `target/fuzz-slice/<target>/` and named in the
/// panic, so it can be minimised with `cargo fuzz tmin` and committed under
/// `tests/fuzz-crashers/`. Coverage-guided runs are `fuzz/smoke.sh` and
/// `fuzz/run-long.sh` (nightly).
#[test]
fn every_target_survives_a_seeded_mutation_slice() {
    use rand::{Rng, SeedableRng};
    let runs: usize = env_number("FUZZ_SLICE_RUNS", 200);
    let seed: u64 = env_number("FUZZ_SLICE_SEED", 1);
    let corpus_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (index, target) in TARGETS.iter().enumerate() {
        let mut inputs: Vec<Vec<u8>> = (target.seeds)().into_iter().map(|(_, d)| d).collect();
        let dir = corpus_root.join(target.name);
        let mut committed: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.expect("corpus entry").path()).collect())
            .unwrap_or_default();
        committed.sort();
        for file in &committed {
            let data = std::fs::read(file).expect("corpus file");
            guarded(target, &data, &format!("corpus {}", file.display()));
            inputs.push(data);
        }
        if inputs.is_empty() {
            inputs.push(Vec::new());
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ ((index as u64) << 32));
        for run in 0..runs {
            let base = &inputs[rng.random_range(0..inputs.len())];
            let other = &inputs[rng.random_range(0..inputs.len())];
            let data = mutate(&mut rng, base, other);
            guarded(target, &data, &format!("mutation {run} (seed {seed})"));
        }
        eprintln!(
            "fuzz slice {}: {} corpus files, {runs} mutations, clean",
            target.name,
            committed.len()
        );
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Runs one input; on a panic, keeps the input for minimisation and fails.
fn guarded(target: &careledger_fuzz_harness::Target, data: &[u8], what: &str) {
    let outcome = std::panic::catch_unwind(|| (target.fuzz)(data));
    if outcome.is_err() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/fuzz-slice")
            .join(target.name);
        std::fs::create_dir_all(&dir).expect("fuzz-slice dir");
        let file = dir.join(format!("crash-{}", what.replace([' ', '/', '(', ')'], "_")));
        std::fs::write(&file, data).expect("keep crasher");
        panic!(
            "fuzz target {} failed on {what}; input kept at {}",
            target.name,
            file.display()
        );
    }
}

/// One to four stacked byte-level mutations of `base`, sometimes spliced with `other`.
fn mutate(rng: &mut impl rand::Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = base.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] = [0x00, 0xff, 0x7f, 0x80, b'"', b'{', b'0'][rng.random_range(0..7)];
            }
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                data.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(64));
                data.drain(i..i + n);
            }
            4 if len > 0 => data.truncate(rng.random_range(0..len)),
            5 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(64));
                let copy = data[i..i + n].to_vec();
                let at = rng.random_range(0..=len);
                data.splice(at..at, copy);
            }
            _ if !other.is_empty() => {
                let cut = rng.random_range(0..=data.len());
                let from = rng.random_range(0..other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    data
}
