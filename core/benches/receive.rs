//! Receive: a member catching up on another node's import, against plain
//! Automerge applying the same changes.
//!
//! Setup (untimed): node A and node B form a network through a
//! [`MemoryRelay`]; B (file-backed) is closed right after joining and its
//! SQLite file kept as a template. A then imports the Synthea bulk export and
//! publishes every entry. Each iteration copies B's template to a fresh
//! directory, reopens it and clones the relay.
//!
//! Timed: careledger = [`sync`] of B (decode, verify signature, check chain,
//! open the epoch and record seals, apply the Automerge change, store the
//! entry and the document, one transaction per page). Peer = `AutoCommit::new()`
//! per patient and `apply_changes` of the very change bytes the ledger carries
//! (as returned by `Change::bytes`), one change at a time, in order.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use automerge::{AutoCommit, Change};
use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::relay::MemoryRelay;
use careledger::store::Store;
use careledger::sync::{join_from_relay, publish_outbox, sync};
use criterion::{BatchSize, Criterion, SamplingMode};

mod common;
use common::{measure_side_by_side, ms, ratio_row, Goal, Measured, DATA, FILES, T0};
use tempfile::TempDir;

const REPS: usize = 7;
const TARGET_RATIO: f64 = 1.15;
const B_FILE: &str = "b.sqlite";

fn storage_key() -> StorageKey {
    StorageKey::from_bytes([7; 32])
}

/// Everything prepared once.
struct Prepared {
    /// Holds B's template store.
    template: TempDir,
    relay: MemoryRelay,
    network: NetworkId,
    /// Record changes A wrote, per patient, in order (the peer's input).
    changes: Vec<Vec<Vec<u8>>>,
    /// Entries A wrote (record changes plus key grants).
    entries: usize,
    resources: usize,
}

fn prepare() -> Prepared {
    let template = tempfile::tempdir().expect("temp dir");
    let mut a = Node::create(
        Store::open_in_memory(&storage_key()).expect("store"),
        "hospital-a.example",
    )
    .expect("node a");
    let b_store = Store::open(&template.path().join(B_FILE), &storage_key()).expect("store b");
    let mut b = Node::create(b_store, "hospital-b.example").expect("node b");
    let mut relay = MemoryRelay::new();

    let network = a.create_network("care").expect("network");
    a.invite(&network, &b.key_package().expect("key package"))
        .expect("invite");
    sync(&mut a, &mut relay, &network, T0).expect("sync a");
    join_from_relay(&mut b, &mut relay, &network, "care", T0).expect("join b");
    // Closing the last connection checkpoints the WAL into the main file.
    drop(b.into_store());

    let mut entries = 0;
    let mut resources = 0;
    for name in FILES {
        let bytes = std::fs::read(format!("{DATA}{name}")).expect("bench data present");
        let report = a.import_fhir(&network, name, &bytes, T0).expect("import");
        entries += report.entries;
        resources += report.resources;
    }
    // Publish only: a full sync would also answer B's stale heads by re-sending everything.
    publish_outbox(&mut a, &mut relay).expect("publish a");

    let changes = a
        .patients(&network)
        .expect("patients")
        .iter()
        .map(|patient| {
            let saved = a.export_doc(&network, patient).expect("export doc");
            let mut doc = AutoCommit::load(&saved).expect("load doc");
            doc.get_changes(&[])
                .into_iter()
                .map(|mut change| change.bytes().into_owned())
                .collect()
        })
        .collect();
    Prepared {
        template,
        relay,
        network,
        changes,
        entries,
        resources,
    }
}

/// A fresh copy of B: a member that has not seen A's import yet.
struct FreshB {
    node: Node,
    relay: MemoryRelay,
    _dir: TempDir,
}

fn fresh_b(prepared: &Prepared) -> FreshB {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_store(prepared.template.path(), dir.path());
    let store = Store::open(&dir.path().join(B_FILE), &storage_key()).expect("reopen b");
    FreshB {
        node: Node::open(store).expect("open b"),
        relay: prepared.relay.clone(),
        _dir: dir,
    }
}

fn copy_store(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("template dir") {
        let entry = entry.expect("template entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy template");
    }
}

/// careledger: B syncs. Returns entries accepted.
fn receive_careledger(b: &mut FreshB, network: &NetworkId) -> usize {
    let report = sync(&mut b.node, &mut b.relay, network, T0).expect("sync b");
    assert!(
        report.received.rejected.is_empty(),
        "{:?}",
        report.received.rejected
    );
    report.received.accepted
}

/// Plain Automerge: apply the same change bytes into fresh documents.
fn receive_plain(changes: &[Vec<Vec<u8>>]) -> Vec<AutoCommit> {
    changes
        .iter()
        .map(|patient| {
            let mut doc = AutoCommit::new();
            for bytes in patient {
                let change = Change::try_from(bytes.as_slice()).expect("change");
                doc.apply_changes([change]).expect("apply");
            }
            doc
        })
        .collect()
}

fn measure(prepared: &Prepared) -> Measured {
    measure_side_by_side(
        REPS,
        || fresh_b(prepared),
        |b| {
            let accepted = receive_careledger(b, &prepared.network);
            assert_eq!(accepted, prepared.entries, "B accepts every entry of A");
        },
        || receive_plain(&prepared.changes),
    )
}

fn register(c: &mut Criterion, prepared: &Prepared, measured: &Measured) {
    let mut group = c.benchmark_group("receive");
    // About one iteration per sample.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    group.measurement_time(measured.careledger * 9);
    group.bench_function("careledger_sync_file_store", |bench| {
        bench.iter_batched(
            || fresh_b(prepared),
            |mut b| {
                black_box(receive_careledger(&mut b, &prepared.network));
                b
            },
            BatchSize::PerIteration,
        )
    });
    group.measurement_time(measured.plain * 9);
    group.bench_function("plain_automerge_apply", |bench| {
        bench.iter(|| receive_plain(&prepared.changes))
    });
    group.finish();
}

fn main() {
    let started = Instant::now();
    let prepared = prepare();
    let change_count: usize = prepared.changes.iter().map(Vec::len).sum();
    let change_bytes: usize = prepared.changes.iter().flatten().map(Vec::len).sum();
    let measured = measure(&prepared);
    let mut criterion = Criterion::default().configure_from_args();
    register(&mut criterion, &prepared, &measured);
    criterion.final_summary();

    let per_s = |time: Duration| prepared.resources as f64 / time.as_secs_f64();
    let ratio = measured.careledger.as_secs_f64() / measured.plain.as_secs_f64();
    eprintln!();
    eprintln!(
        "RECEIVE ({} entries = {change_count} Automerge changes ({} KiB) + {} key grants, {} patients, {} resources, median of {REPS}): \
         careledger sync {:.0} ms ({:.0} res/s, file-backed SQLite WAL), plain automerge apply {:.0} ms ({:.0} res/s), \
         ratio {ratio:.2} (target <= {TARGET_RATIO:.2})",
        prepared.entries,
        change_bytes / 1024,
        prepared.entries - change_count,
        prepared.changes.len(),
        prepared.resources,
        measured.careledger.as_secs_f64() * 1e3,
        per_s(measured.careledger),
        measured.plain.as_secs_f64() * 1e3,
        per_s(measured.plain),
    );
    ratio_row(
        "receive",
        &format!(
            "receive {} entries ({} KiB of changes): verify, open, apply, store vs Automerge `apply_changes`",
            prepared.entries,
            change_bytes / 1024
        ),
        &format!("{:.0} ms", ms(measured.careledger)),
        &format!("{:.0} ms", ms(measured.plain)),
        ratio,
        Goal::AtMost(TARGET_RATIO),
    );
    eprintln!(
        "RECEIVE bench took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
