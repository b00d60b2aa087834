//! 3–5 institutions edit concurrently through a relay that drops, duplicates,
//! reorders and delays messages, while nodes restart from their SQLite files
//! and race MLS key updates. When the faults stop, every replica must hold
//! byte-identical records, identical per-author heads and the same epoch, and
//! every ledger must verify.
//!
//! 200 seeds run by default; set `CARELEDGER_SEEDS=N` for more, or
//! `CARELEDGER_SEED=S` to replay one.

use careledger::node::{ExportFormat, NetworkId, Node};
use careledger::relay::{FaultConfig, MemoryRelay};
use careledger::sync::sync;
use careledger_scenarios::*;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

const FAULTS: FaultConfig = FaultConfig {
    drop: 0.15,
    duplicate: 0.15,
    delay: 0.25,
    max_delay: 8,
    short_fetch: 0.3,
};

fn corpus() -> Vec<String> {
    let mut lines = Vec::new();
    for file in [
        "bulk-10-patients/Patient.000.ndjson",
        "bulk-10-patients/AllergyIntolerance.000.ndjson",
        "bulk-10-patients/Immunization.000.ndjson",
    ] {
        let text = String::from_utf8(data(file)).unwrap();
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    lines
}

fn digest(node: &mut Node, net: &NetworkId) -> String {
    let mut hash = Sha256::new();
    for (patient, bundle) in canonical_state(node, net) {
        hash.update(patient.as_bytes());
        hash.update(bundle.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// `(type, id)` of every resource in one of `node`'s records.
fn resources_of(node: &mut Node, net: &NetworkId, patient: &str) -> Vec<(String, String)> {
    let ndjson = node
        .export_patient(net, patient, ExportFormat::Ndjson)
        .unwrap();
    ndjson
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["resourceType"].as_str().unwrap().to_owned(),
                v["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What the schedules exercised, summed over seeds.
#[derive(Default)]
struct Exercised {
    dropped: u64,
    duplicated: u64,
    delayed: u64,
    restarts: u64,
    commits_retried: usize,
    epochs: u64,
}

fn run(seed: u64, corpus: &[String], seen: &mut Exercised) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let count = rng.random_range(3..=5);
    let names: Vec<String> = (0..count).map(|i| format!("site-{i}.example")).collect();
    let mut nodes: Vec<Node> = names.iter().map(|n| file_node(dir.path(), n)).collect();
    let mut relay = MemoryRelay::with_faults(FaultConfig::default(), seed);
    let net = {
        let mut refs: Vec<&mut Node> = nodes.iter_mut().collect();
        form_network(&mut refs, &mut relay, "care")
    };
    relay.set_faults(FAULTS);
    let mut now = T0;
    for _ in 0..30 {
        now += rng.random_range(1..5_000);
        let i = rng.random_range(0..count);
        match rng.random_range(0..100) {
            0..=29 => {
                let n = rng.random_range(1..=4);
                let chunk: Vec<&str> = corpus
                    .choose_multiple(&mut rng, n)
                    .map(String::as_str)
                    .collect();
                nodes[i]
                    .import_fhir(&net, "chunk.ndjson", chunk.join("\n").as_bytes(), now)
                    .unwrap();
            }
            30..=59 => {
                let patients = nodes[i].patients(&net).unwrap();
                if let Some(patient) = patients.choose(&mut rng) {
                    let resources = resources_of(&mut nodes[i], &net, patient);
                    let (kind, id) = resources.choose(&mut rng).unwrap().clone();
                    // Members every resource type has, with values valid in FHIR R4.
                    let member = ["language", "implicitRules", "text"]
                        .choose(&mut rng)
                        .unwrap();
                    let n = rng.random_range(0..3);
                    let value = match *member {
                        "language" => format!("\"v{n}\""),
                        "implicitRules" => format!("\"urn:rules:v{n}\""),
                        _ => format!(
                            r#"{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">v{n}</div>"}}"#
                        ),
                    };
                    nodes[i]
                        .edit_member(&net, patient, &kind, &id, member, Some(&value), now)
                        .unwrap();
                }
            }
            60..=64 => match nodes[i].update_keys(&net) {
                Ok(()) | Err(careledger::node::NetworkError::CommitPending) => {}
                Err(error) => panic!("seed {seed}: update_keys: {error}"),
            },
            65..=89 => {
                let report = sync(&mut nodes[i], &mut relay, &net, now).unwrap();
                seen.commits_retried += report.received.commits_retried;
                assert!(
                    report.received.rejected.is_empty() && report.received.mls_errors.is_empty(),
                    "seed {seed}: honest traffic refused: {:?} {:?}",
                    report.received.rejected,
                    report.received.mls_errors
                );
            }
            _ => {
                // Restart: close the node, reopen it from its file.
                seen.restarts += 1;
                drop(nodes.remove(i));
                nodes.insert(i, reopen(dir.path(), &names[i]));
            }
        }
    }
    // Faults stop; let the network settle.
    relay.set_faults(FaultConfig::default());
    relay.flush_delayed();
    for round in 0..40 {
        for node in nodes.iter_mut() {
            let report = sync(node, &mut relay, &net, now).unwrap();
            seen.commits_retried += report.received.commits_retried;
            assert!(
                report.received.rejected.is_empty() && report.received.mls_errors.is_empty(),
                "seed {seed}: {:?} {:?}",
                report.received.rejected,
                report.received.mls_errors
            );
        }
        let heads: Vec<_> = nodes.iter().map(|n| n.heads(&net).unwrap()).collect();
        let pending = nodes.iter().any(|n| n.commit_pending(&net).unwrap());
        let held = nodes
            .iter()
            .any(|n| !n.held_entries(&net).unwrap().is_empty());
        let epochs: Vec<u64> = nodes.iter_mut().map(|n| n.epoch(&net).unwrap()).collect();
        if !pending
            && !held
            && heads.windows(2).all(|w| w[0] == w[1])
            && epochs.windows(2).all(|w| w[0] == w[1])
        {
            break;
        }
        assert!(round < 39, "seed {seed}: no convergence after 40 rounds");
    }
    let stats = relay.stats();
    seen.dropped += stats.dropped;
    seen.duplicated += stats.duplicated;
    seen.delayed += stats.delayed;
    let first = digest(&mut nodes[0], &net);
    let heads = nodes[0].heads(&net).unwrap();
    let epoch = nodes[0].epoch(&net).unwrap();
    seen.epochs += epoch - (count as u64 - 1);
    for (i, node) in nodes.iter_mut().enumerate() {
        assert_eq!(
            digest(node, &net),
            first,
            "seed {seed}: node {i} records differ"
        );
        assert_eq!(
            node.heads(&net).unwrap(),
            heads,
            "seed {seed}: node {i} heads differ"
        );
        assert_eq!(
            node.epoch(&net).unwrap(),
            epoch,
            "seed {seed}: node {i} epoch differs"
        );
        let report = node.verify_ledger(&net).unwrap();
        assert!(
            report.is_clean(),
            "seed {seed}: node {i} ledger: {:?}",
            report.problems
        );
    }
}

#[test]
fn replicas_converge_under_faults_and_restarts() {
    let corpus = corpus();
    let mut seen = Exercised::default();
    if let Ok(seed) = std::env::var("CARELEDGER_SEED") {
        run(
            seed.parse().expect("CARELEDGER_SEED is a number"),
            &corpus,
            &mut seen,
        );
        return;
    }
    let seeds: u64 = std::env::var("CARELEDGER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        run(seed, &corpus, &mut seen);
    }
    // The schedules must really have exercised every fault.
    assert!(seen.dropped > 0 && seen.duplicated > 0 && seen.delayed > 0);
    assert!(seen.restarts > 0, "no restarts");
    assert!(seen.epochs > 0, "no key updates took effect");
    assert!(
        seen.commits_retried > 0,
        "no commit race was lost and retried"
    );
    eprintln!(
        "{seeds} seeds: {} dropped, {} duplicated, {} delayed, {} restarts, {} key updates, {} lost commits retried",
        seen.dropped, seen.duplicated, seen.delayed, seen.restarts, seen.epochs, seen.commits_retried
    );
}
