//! The interaction fuzz target's model checks on every CI run: its seed
//! corpus, the committed corpus, and a few hundred seeded random action
//! streams through `careledger_fuzz_harness::interaction` (three real nodes,
//! real MLS, drops, duplicates, reorders, commit races and restarts; see the
//! module docs). `INTERACTION_RUNS` sets the number of random streams,
//! `INTERACTION_SEED` their generator's seed.

use careledger_fuzz_harness::interaction::{self, action, op, MAX_ACTIONS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random streams per CI run (debug build).
const DEFAULT_RUNS: usize = 300;

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/interaction")
}

#[test]
fn seed_streams_hold_the_model() {
    let seeds = interaction::seeds();
    assert!(seeds.len() >= 5);
    // INTERACTION_WRITE_SEEDS=DIR also writes them there (to refresh the corpus).
    let out = std::env::var_os("INTERACTION_WRITE_SEEDS").map(std::path::PathBuf::from);
    for (name, bytes) in seeds {
        eprintln!("seed {name}");
        interaction::fuzz(&bytes);
        if let Some(dir) = &out {
            std::fs::write(dir.join(format!("seed-{name}")), &bytes).expect("write seed");
        }
    }
}

#[test]
fn committed_corpus_holds_the_model() {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/interaction exists")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus is committed");
    for file in files {
        interaction::fuzz(&std::fs::read(&file).expect("corpus file"));
    }
}

/// One random stream: usually a formed three-node network first, then
/// actions weighted towards the ones that make progress (sync, delivery).
fn random_stream(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = rng.random::<u64>().to_le_bytes().to_vec();
    let mut actions = Vec::new();
    if rng.random_bool(0.7) {
        actions.extend([
            action(op::CREATE, 0),
            action(op::INVITE, 0),
            action(op::SYNC, 0),
            action(op::DELIVER_ALL, 0),
            action(op::SYNC, 0),
            action(op::DELIVER_ALL, 0),
            action(op::JOIN, 1),
        ]);
        if rng.random_bool(0.6) {
            actions.extend([
                action(op::INVITE, 3),
                action(op::SYNC, 0),
                action(op::DELIVER_ALL, 0),
                action(op::SYNC, 0),
                action(op::DELIVER_ALL, 0),
                action(op::JOIN, 2),
            ]);
        }
    }
    let len = rng.random_range(actions.len() + 4..=MAX_ACTIONS);
    const WEIGHTED: &[(u8, u32)] = &[
        (op::CREATE, 1),
        (op::INVITE, 2),
        (op::JOIN, 2),
        (op::REMOVE, 2),
        (op::UPDATE, 3),
        (op::IMPORT, 4),
        (op::EDIT, 4),
        (op::EDIT_TWICE, 2),
        (op::SYNC, 8),
        (op::PUBLISH, 3),
        (op::DELIVER, 3),
        (op::DELIVER_ALL, 5),
        (op::DROP, 2),
        (op::DUPLICATE, 2),
        (op::RESTART, 2),
        (op::RECEIVE, 3),
    ];
    let total: u32 = WEIGHTED.iter().map(|(_, w)| w).sum();
    while actions.len() < len {
        let mut pick = rng.random_range(0..total);
        let code = WEIGHTED
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map(|(code, _)| *code)
            .expect("weights cover the range");
        actions.push(action(code, rng.random_range(0..16)));
    }
    bytes.extend(actions);
    bytes
}

#[test]
fn random_streams_hold_the_model() {
    let runs = std::env::var("INTERACTION_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let seed = std::env::var("INTERACTION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x17e5_71e5);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for run in 0..runs {
        let stream = random_stream(&mut rng);
        let result = std::panic::catch_unwind(|| interaction::fuzz(&stream));
        if let Err(panic) = result {
            eprintln!("run {run} failed; input (hex): {}", hex::encode(&stream));
            std::panic::resume_unwind(panic);
        }
    }
}

/// Two members invite the same node on one epoch: the loser's
/// invite is dropped, not re-proposed into an MLS error (found by this target).
#[test]
fn concurrent_invites_of_one_node_resolve_without_mls_errors() {
    let mut bytes = 9u64.to_le_bytes().to_vec();
    bytes.extend([
        action(op::CREATE, 0),
        action(op::INVITE, 0), // 0 invites 1
        action(op::SYNC, 0),
        action(op::DELIVER_ALL, 0),
        action(op::SYNC, 0),
        action(op::DELIVER_ALL, 0),
        action(op::JOIN, 1),
        action(op::INVITE, 3), // 0 invites 2
        action(op::INVITE, 1), // 1 invites 2
        action(op::PUBLISH, 0),
        action(op::PUBLISH, 1),
        action(op::DELIVER_ALL, 0),
        action(op::SYNC, 1),
        action(op::SYNC, 0),
        action(op::DELIVER_ALL, 0),
        action(op::JOIN, 2),
    ]);
    interaction::fuzz(&bytes);
}
