//! Ingest: the Synthea bulk export (3,700 resources, 6 NDJSON files) through
//! [`Node::import_fhir`] on a file-backed store, against plain Automerge
//! doing the same document mapping without crypto or storage.
//!
//! careledger: parse → group by patient → one Automerge change per patient →
//! sealed, signed, hash-chained entry → SQLite (WAL, `synchronous=FULL`), one
//! transaction per file. Peer: [`parse_auto`] + [`group_by_patient`] +
//! [`RecordDoc::upsert`] per patient, the exact mapping the node uses.
//!
//! Both sides get a fresh node / fresh documents per iteration; node and
//! network creation are setup, outside the timed region. The ratio is
//! measured with interleaved repetitions (median) and printed at the end; the
//! same routines are then registered with criterion.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use careledger::record::doc::RecordDoc;
use careledger::record::fhir::{group_by_patient, parse_auto};
use criterion::{BatchSize, Criterion, SamplingMode};

mod common;
use common::{
    fresh_node, load_files, measure_side_by_side, rate, ratio_row, thousands, FreshNode, Goal,
    Measured, RESOURCES, T0,
};

const REPS: usize = 7;
const TARGET_RATIO: f64 = 1.25;
const TARGET_RATE: f64 = 5_000.0;

type Files = Vec<(&'static str, Vec<u8>)>;

/// careledger: every file through `import_fhir`. Returns resources imported.
fn ingest_careledger(fresh: &mut FreshNode, files: &Files) -> usize {
    files
        .iter()
        .map(|(name, bytes)| {
            fresh
                .node
                .import_fhir(&fresh.network, name, bytes, T0)
                .expect("import")
                .resources
        })
        .sum()
}

/// Plain Automerge: same parse, grouping and document mapping, no crypto, no storage.
fn ingest_plain(files: &Files) -> (usize, HashMap<String, RecordDoc>) {
    let actor = [0xA; 32];
    let mut docs: HashMap<String, RecordDoc> = HashMap::new();
    let mut resources = 0;
    for (name, bytes) in files {
        let parsed = parse_auto(name, bytes).expect("parse");
        resources += parsed.len();
        for (patient, batch) in group_by_patient(parsed).expect("group") {
            let doc = docs
                .entry(patient)
                .or_insert_with(|| RecordDoc::new(&actor));
            black_box(doc.upsert(&batch, T0 as i64).expect("upsert"));
        }
    }
    (resources, docs)
}

fn measure(files: &Files) -> Measured {
    measure_side_by_side(
        REPS,
        fresh_node,
        |fresh| assert_eq!(ingest_careledger(fresh, files), RESOURCES),
        || {
            let (parsed, docs) = ingest_plain(files);
            assert_eq!(parsed, RESOURCES);
            docs
        },
    )
}

fn register(c: &mut Criterion, files: &Files, measured: &Measured) {
    let mut group = c.benchmark_group("ingest");
    // One iteration per sample: each takes a large fraction of a second.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    group.measurement_time(measured.careledger * 9);
    group.bench_function("careledger_file_store", |b| {
        b.iter_batched(
            fresh_node,
            |mut fresh| {
                black_box(ingest_careledger(&mut fresh, files));
                fresh
            },
            BatchSize::PerIteration,
        )
    });
    group.measurement_time(measured.plain * 9);
    group.bench_function("plain_automerge", |b| b.iter(|| ingest_plain(files)));
    group.finish();
}

fn main() {
    let started = Instant::now();
    let files = load_files();
    let measured = measure(&files);
    let mut criterion = Criterion::default().configure_from_args();
    register(&mut criterion, &files, &measured);
    criterion.final_summary();

    let ours = rate(RESOURCES, measured.careledger);
    let peer = rate(RESOURCES, measured.plain);
    let ratio = measured.careledger.as_secs_f64() / measured.plain.as_secs_f64();
    eprintln!();
    eprintln!(
        "INGEST ({RESOURCES} resources, {} files, median of {REPS}): careledger {} res/s ({:.0} ms, file-backed SQLite WAL), \
         plain automerge {} res/s ({:.0} ms), ratio {ratio:.2} (target <= {TARGET_RATIO:.2}; end-to-end target >= {} res/s: {})",
        files.len(),
        thousands(ours),
        measured.careledger.as_secs_f64() * 1e3,
        thousands(peer),
        measured.plain.as_secs_f64() * 1e3,
        thousands(TARGET_RATE),
        if ours >= TARGET_RATE { "met" } else { "MISSED" },
    );
    ratio_row(
        "ingest",
        &format!("ingest {RESOURCES} Synthea resources (FHIR → Automerge → sealed, signed entries → SQLite) vs plain Automerge, same mapping"),
        &format!("{} res/s", thousands(ours)),
        &format!("{} res/s", thousands(peer)),
        ratio,
        Goal::AtMost(TARGET_RATIO),
    );
    eprintln!("INGEST bench took {:.1} s", started.elapsed().as_secs_f64());
}
