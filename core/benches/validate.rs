//! What FHIR R4 validation costs on import: the ten Synthea HIV Bundles
//! (`examples/data/fhir/synthea-hiv-bundles`, 11.5 MB) through
//! [`Node::import_fhir`] (parse, structural rules, R4 validation, group,
//! Automerge, seal, sign, SQLite) against the same import with the R4
//! validation left out ([`Node::import_fhir_structure_only`], a `test-hooks`
//! function that product builds do not have). Also the parse alone, with and
//! without validation, so the validator's own cost is visible.
//!
//! ```sh
//! cargo bench -p careledger --features test-hooks --bench validate
//! ```
//!
//! Both sides get a fresh file-backed node per repetition; node and network
//! creation are outside the timed region. The repetitions are interleaved
//! (median of each) and the ratios printed at the end; criterion then
//! measures the same routines. Goal: import with validation ≤ 1.2× without.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use careledger::record::fhir::{parse_auto, parse_auto_structure_only};
use criterion::{BatchSize, Criterion, SamplingMode};

mod common;
use common::{fresh_node, measure_both, ms, rate, thousands, FreshNode, T0};

const REPS: usize = 5;
const TARGET_RATIO: f64 = 1.2;

type Files = Vec<(String, Vec<u8>)>;

fn load_bundles() -> Files {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/fhir/synthea-hiv-bundles");
    (0..10)
        .map(|i| {
            let name = format!("bundle_{i}.json");
            let bytes = std::fs::read(dir.join(&name)).expect("Synthea bundle");
            (name, bytes)
        })
        .collect()
}

/// Every bundle through the node; `validate` picks the import. Returns resources imported.
fn import(fresh: &mut FreshNode, files: &Files, validate: bool) -> usize {
    files
        .iter()
        .map(|(name, bytes)| {
            let report = if validate {
                fresh.node.import_fhir(&fresh.network, name, bytes, T0)
            } else {
                fresh
                    .node
                    .import_fhir_structure_only(&fresh.network, name, bytes, T0)
            };
            report.expect("import").resources
        })
        .sum()
}

fn parse(files: &Files, validate: bool) -> usize {
    files
        .iter()
        .map(|(name, bytes)| {
            let parsed = if validate {
                parse_auto(name, bytes)
            } else {
                parse_auto_structure_only(name, bytes)
            };
            black_box(parsed.expect("parse")).len()
        })
        .sum()
}

fn main() {
    let started = Instant::now();
    let files = load_bundles();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let resources = parse(&files, true);
    assert_eq!(resources, parse(&files, false));

    let imports = measure_both(
        REPS,
        fresh_node,
        |fresh| assert_eq!(import(fresh, &files, true), resources),
        fresh_node,
        |fresh| assert_eq!(import(fresh, &files, false), resources),
    );
    let parses = measure_both(
        REPS * 2,
        || (),
        |_| assert_eq!(parse(&files, true), resources),
        || (),
        |_| assert_eq!(parse(&files, false), resources),
    );

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("validate");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    for (label, validate) in [
        ("import_with_r4_validation", true),
        ("import_structure_only", false),
    ] {
        group.measurement_time(imports.careledger * 12);
        group.bench_function(label, |b| {
            b.iter_batched(
                fresh_node,
                |mut fresh| {
                    black_box(import(&mut fresh, &files, validate));
                    fresh
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.measurement_time(parses.careledger * 12);
    group.bench_function("parse_with_r4_validation", |b| {
        b.iter(|| parse(&files, true))
    });
    group.bench_function("parse_structure_only", |b| b.iter(|| parse(&files, false)));
    group.finish();
    criterion.final_summary();

    let with = imports.careledger;
    let without = imports.plain;
    let ratio = with.as_secs_f64() / without.as_secs_f64();
    let validation = parses.careledger.saturating_sub(parses.plain);
    eprintln!();
    eprintln!(
        "VALIDATE ({resources} resources, {} Synthea bundles, {:.1} MB, median of {REPS}): \
         import with R4 validation {:.0} ms ({} res/s), without {:.0} ms ({} res/s), \
         ratio {ratio:.3} (goal <= {TARGET_RATIO:.2}: {})",
        files.len(),
        bytes as f64 / 1e6,
        ms(with),
        thousands(rate(resources, with)),
        ms(without),
        thousands(rate(resources, without)),
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        },
    );
    eprintln!(
        "VALIDATE parse alone: with R4 validation {:.0} ms, structure only {:.0} ms, ratio {:.2}; \
         validation itself {:.0} ms = {:.1} µs per resource, {:.1}% of the validated import",
        ms(parses.careledger),
        ms(parses.plain),
        parses.careledger.as_secs_f64() / parses.plain.as_secs_f64(),
        ms(validation),
        validation.as_secs_f64() * 1e6 / resources as f64,
        100.0 * validation.as_secs_f64() / with.as_secs_f64(),
    );
    eprintln!("(whole run {:.0} s)", started.elapsed().as_secs_f64());
}
