//! kill -9 durability: a writer process (`crash_writer`) imports, edits,
//! syncs through a file relay, makes MLS commits, erases charts and lets
//! time-limited consents expire (a key rotation by `Node::tick`) on two
//! nodes with real SQLite stores, acknowledging each operation on stdout
//! after it returned success. The test SIGKILLs it at a random instant
//! (seeded; sometimes during start-up, sometimes after many operations),
//! reopens the stores and checks that
//!
//! - every acknowledged entry is present, and no node went back in epoch;
//! - no half state: every erased chart's erase entry is stored and none of
//!   the keys it shredded is held; every chart the writer cut off in the
//!   study (its latest key event there) is written under the withheld key;
//! - `PRAGMA integrity_check` is ok for both stores and the relay;
//! - the MLS state is consistent: the content key of the current MLS epoch
//!   is recorded and the nodes converge on one epoch authenticator after a
//!   sync;
//! - every 4th iteration (and the last), a node can still commit (a
//!   self-update, alternating nodes) and exchange an entry with its peer;
//! - every 20th iteration (and the last), both ledgers verify clean and both
//!   stores pass the full audit (`Store::verify`; both cost more as the
//!   stores grow).
//!
//! The store is reused across iterations, so later kills hit a bigger state.
//! `CARELEDGER_CRASH_ITERATIONS` (default 200) and `CARELEDGER_CRASH_SEED`
//! change the run.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::collections::HashMap;

use careledger::body::{EraseBody, KeyGrantBody, KeyWithheldBody};
use careledger::entry::{Entry, EntryKind};
use careledger::node::{NetworkId, Node};
use careledger::sync::sync;
use careledger_scenarios::crash::{
    create_world, entry_ids, open_world, Ack, World, PEER, RELAY, WRITER,
};
use careledger_scenarios::{settle, T0};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
        Err(_) => default,
    }
}

/// What the acknowledgements promised so far, per node (writer, peer).
#[derive(Default)]
struct Promised {
    entries: [HashSet<String>; 2],
    epoch: [u64; 2],
    acks: u64,
}

impl Promised {
    fn take(&mut self, ack: Ack) {
        let index = usize::from(ack.node == 'p');
        self.epoch[index] = self.epoch[index].max(ack.epoch);
        self.entries[index].extend(ack.entries);
        self.acks += 1;
    }
}

fn integrity_ok(path: &Path) {
    let conn = rusqlite::Connection::open(path).expect("open for integrity check");
    let result: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(result, ["ok"], "integrity_check of {}", path.display());
}

/// Kill the writer after `delay`; returns its complete output lines.
fn run_and_kill(dir: &Path, seed: u64, delay: Duration) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .arg(dir)
        .arg(seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start crash_writer");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        stdout.read_to_end(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    std::thread::sleep(delay);
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no rollback.
    child.kill().expect("kill crash_writer");
    let status = child.wait().unwrap();
    let out = out.join().unwrap();
    let err = err.join().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc_sigkill()),
        "crash_writer ended on its own ({status}) before the kill: {err}"
    );
    let text = String::from_utf8(out).expect("ack lines are text");
    // Only lines ended by a newline were written completely.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

const fn libc_sigkill() -> i32 {
    9
}

/// Everything acknowledged is there and the world still works.
/// What a check does beyond the always-run part.
struct Depth {
    /// Verify both whole ledgers (the cost grows with them).
    verify: bool,
    /// Commit a self-update and exchange an entry with the peer.
    commit: bool,
}

/// Everything acknowledged is there, the nodes converge on one epoch
/// authenticator, and (per `depth`) they verify, commit and exchange.
fn check(dir: &Path, promised: &Promised, iteration: u64, depth: &Depth) {
    for file in [
        format!("{WRITER}.sqlite"),
        format!("{PEER}.sqlite"),
        RELAY.to_owned(),
    ] {
        integrity_ok(&dir.join(file));
    }
    let mut world = open_world(dir);
    let World {
        writer,
        peer,
        relay,
        net,
        study,
    } = &mut world;
    let net: &careledger::node::NetworkId = net;
    no_half_erasure(writer, net, iteration);
    no_half_cut_off(writer, study, iteration);
    for (index, node) in [&mut *writer, &mut *peer].into_iter().enumerate() {
        let present: HashSet<String> = entry_ids(node, net)
            .into_iter()
            .chain(entry_ids(node, study))
            .collect();
        let missing = promised.entries[index].difference(&present).count();
        assert_eq!(
            missing, 0,
            "iteration {iteration}: {missing} acknowledged entries lost at node {index}"
        );
        let epoch = node.epoch(net).unwrap();
        assert!(
            epoch >= promised.epoch[index],
            "iteration {iteration}: node {index} went back to epoch {epoch}"
        );
        assert!(
            node.epoch_key_for_testing(net, epoch).is_some(),
            "iteration {iteration}: node {index} lacks the content key of its MLS epoch {epoch}"
        );
        if depth.verify {
            for network in [net, &*study] {
                let report = node.verify_ledger(network).unwrap();
                assert!(
                    report.is_clean(),
                    "iteration {iteration}: {:?}",
                    report.problems
                );
            }
            let audit = node.store().verify().unwrap();
            assert!(
                audit.is_clean(),
                "iteration {iteration}: {:?}",
                audit.problems
            );
        }
    }
    // Converge, then commit and exchange an entry: the stores are usable.
    let now = T0 + 1_000_000_000 + iteration * 1_000;
    settle(&mut [&mut *writer, &mut *peer], relay, net, now, 10);
    let agree = |writer: &mut careledger::node::Node, peer: &mut careledger::node::Node| {
        assert_eq!(
            writer.epoch(net).unwrap(),
            peer.epoch(net).unwrap(),
            "iteration {iteration}: epochs"
        );
        assert_eq!(
            writer.epoch_authenticator(net).unwrap(),
            peer.epoch_authenticator(net).unwrap(),
            "iteration {iteration}: epoch authenticators"
        );
        assert!(!writer.commit_pending(net).unwrap() && !peer.commit_pending(net).unwrap());
    };
    agree(writer, peer);
    if !depth.commit {
        return;
    }
    let before = writer.epoch(net).unwrap();
    // Alternate the committing node.
    let committer = match iteration / 4 % 2 {
        0 => &mut *writer,
        _ => &mut *peer,
    };
    committer.update_keys(net).unwrap();
    sync(committer, relay, net, now).unwrap();
    // The writer erases charts as it goes (and a later import may start a
    // chart again without its Patient): pick among those that have one.
    let patients = careledger_scenarios::crash::charts_with_patient(committer, net).unwrap();
    let patient = patients[iteration as usize % patients.len()].clone();
    let birth = format!("\"19{:02}-01-01\"", iteration % 100);
    committer
        .edit_member(
            net,
            &patient,
            "Patient",
            &patient,
            "birthDate",
            Some(birth.as_str()),
            now,
        )
        .unwrap();
    settle(&mut [&mut *writer, &mut *peer], relay, net, now, 10);
    agree(writer, peer);
    assert_eq!(
        writer.epoch(net).unwrap(),
        before + 1,
        "iteration {iteration}: the commit took"
    );
    assert_eq!(
        writer.heads(net).unwrap(),
        peer.heads(net).unwrap(),
        "iteration {iteration}: heads"
    );
}

/// Every erase entry the writer stored took effect whole: its chart's
/// tombstone names the latest erase of that chart, and no key that erase
/// listed is held.
fn no_half_erasure(writer: &mut Node, net: &NetworkId, iteration: u64) {
    let me = writer.identity().author_id();
    let mut latest: HashMap<String, (String, EraseBody)> = HashMap::new();
    for bytes in writer.ledger_entries(net).unwrap() {
        let entry = Entry::decode(&bytes).unwrap();
        if entry.header.kind != EntryKind::Erase || entry.header.author != me {
            continue;
        }
        let (_, body) = writer.open_entry_for_testing(net, &bytes).unwrap();
        let body = EraseBody::decode(&body).unwrap();
        latest.insert(body.record.clone(), (entry.id().to_hex(), body));
    }
    let stones: HashMap<String, String> = writer
        .erased_charts(net)
        .unwrap()
        .into_iter()
        .map(|chart| (chart.patient, chart.entry.to_hex()))
        .collect();
    for (record, (entry, body)) in &latest {
        assert_eq!(
            stones.get(record),
            Some(entry),
            "iteration {iteration}: an erase entry without its tombstone"
        );
        let held = writer.record_key_ids_for_testing(net, record);
        assert!(
            body.key_ids.iter().all(|id| !held.contains(id)),
            "iteration {iteration}: a shredded key survived its erasure"
        );
    }
    assert!(
        stones
            .values()
            .all(|entry| latest.values().any(|(id, _)| id == entry)),
        "iteration {iteration}: a tombstone without its erase entry"
    );
}

/// Every chart whose latest key event by the writer in the study is a
/// key-withheld entry is still written under that withheld key.
fn no_half_cut_off(writer: &mut Node, study: &NetworkId, iteration: u64) {
    let me = writer.identity().author_id();
    let mut last_event: HashMap<String, bool> = HashMap::new();
    for bytes in writer.ledger_entries(study).unwrap() {
        let entry = Entry::decode(&bytes).unwrap();
        if entry.header.author != me {
            continue;
        }
        match entry.header.kind {
            EntryKind::KeyWithheld => {
                let (_, body) = writer.open_entry_for_testing(study, &bytes).unwrap();
                let body = KeyWithheldBody::decode(&body).unwrap();
                last_event.insert(body.record, true);
            }
            EntryKind::KeyGrant => {
                let (_, body) = writer.open_entry_for_testing(study, &bytes).unwrap();
                for grant in KeyGrantBody::decode(&body).unwrap().record_keys {
                    last_event.insert(grant.record.clone(), false);
                }
            }
            EntryKind::Erase => {
                let (_, body) = writer.open_entry_for_testing(study, &bytes).unwrap();
                last_event.remove(&EraseBody::decode(&body).unwrap().record);
            }
            _ => {}
        }
    }
    for (record, withheld) in last_event {
        assert_eq!(
            writer.is_withholding(study, &record).unwrap(),
            withheld,
            "iteration {iteration}: a cut-off half done"
        );
    }
}

#[test]
fn acknowledged_work_survives_kill_9() {
    let iterations = env_number("CARELEDGER_CRASH_ITERATIONS", 200);
    let seed = env_number("CARELEDGER_CRASH_SEED", 0x6B11_0009);
    let dir = tempfile::tempdir().unwrap();
    drop(create_world(dir.path()));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut promised = Promised::default();
    let (mut early, mut late) = (0, 0);
    let mut checking = Duration::ZERO;
    for iteration in 0..iterations {
        let delay_ms = match rng.random_range(0..100) {
            0..15 => rng.random_range(0..60),
            15..75 => rng.random_range(60..300),
            _ => rng.random_range(300..800),
        };
        let lines = run_and_kill(dir.path(), rng.random(), Duration::from_millis(delay_ms));
        let acks: Vec<Ack> = lines
            .iter()
            .map(|l| Ack::parse(l).unwrap_or_else(|| panic!("unexpected writer output {l:?}")))
            .collect();
        if acks.is_empty() {
            early += 1;
        }
        if acks.len() >= 40 {
            late += 1;
        }
        for ack in acks {
            promised.take(ack);
        }
        let started = std::time::Instant::now();
        let last = iteration + 1 == iterations;
        let depth = Depth {
            verify: iteration % 20 == 19 || last,
            commit: iteration % 4 == 3 || last,
        };
        check(dir.path(), &promised, iteration, &depth);
        checking += started.elapsed();
    }
    let entries = promised.entries[0].len() + promised.entries[1].len();
    eprintln!(
        "kill -9: {iterations} iterations, {} acks, {entries} acknowledged entries checked, \
         {early} kills before the first ack, {late} after 20+ operations, failures: 0 \
         ({:.1} s checking)",
        promised.acks,
        checking.as_secs_f64()
    );
    assert!(
        promised.acks > 0 && entries > 0,
        "the writer acknowledged nothing"
    );
}
