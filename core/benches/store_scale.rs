//! A store a phone can open: open time and peak memory of "open the store,
//! read one chart" on a 100-patient and a 10,000-patient store, side by
//! side, with their ratio.
//!
//! ```sh
//! cargo bench -p careledger --bench store_scale                 # 100 and 10,000 patients
//! CARELEDGER_SCALE_PATIENTS=1000 cargo bench -p careledger --bench store_scale
//! ```
//!
//! The stores are Synthea-shaped: each patient is one of the 13 Synthea
//! patients of `examples/data/fhir/bulk-10-patients` under new ids, with its
//! Patient resource and its first allergy, 3 conditions, 3 encounters, 2
//! immunizations and 2 medication requests (12 resources at most), imported
//! through [`Node::import_fhir`] 100 patients per transaction into one care
//! network. They are generated once (the 10,000-patient one takes minutes)
//! and kept under `target/store-scale/`; a changed schema version or
//! generator makes new ones.
//!
//! Each measurement runs in a child process of this binary (so memory is
//! that process's alone): it opens the store ([`Store::open`] +
//! [`Node::open`]), reads one chart ([`Node::export_patient`]) and reports
//! the times and its peak resident set (`VmHWM` of `/proc/self/status`).
//! Medians of 7 runs, the files in the OS cache. The peer is what schema 4's
//! open did on every open: read and authenticate the whole file — here the
//! full audit [`Store::verify`] on the same store.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use careledger::keys::StorageKey;
use careledger::node::{ExportFormat, NetworkId, Node};
use careledger::store::{Store, SCHEMA_VERSION};

mod common;
use common::{median, ms, DATA, T0};

/// Bump when the generated stores change.
const GENERATOR: u32 = 1;
const RUNS: usize = 7;
const PER_BATCH: usize = 100;
const PROBE_ENV: &str = "CARELEDGER_STORE_PROBE";
const KEY: [u8; 32] = [7; 32];

/// Per template patient: its resources as NDJSON lines, the Patient first.
fn templates() -> Vec<(String, Vec<String>)> {
    let patients = std::fs::read_to_string(format!("{DATA}Patient.000.ndjson")).expect("data");
    let mut out: Vec<(String, Vec<String>)> = patients
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            (
                v["id"].as_str().expect("id").to_owned(),
                vec![line.to_owned()],
            )
        })
        .collect();
    for (file, keep) in [
        ("AllergyIntolerance", 1),
        ("Condition", 3),
        ("Encounter", 3),
        ("Immunization", 2),
        ("MedicationRequest", 2),
    ] {
        let text = std::fs::read_to_string(format!("{DATA}{file}.000.ndjson")).expect("data");
        for (patient, lines) in &mut out {
            let reference = format!("Patient/{patient}");
            lines.extend(
                text.lines()
                    .filter(|l| l.contains(&reference))
                    .take(keep)
                    .map(str::to_owned),
            );
        }
    }
    out
}

/// Patient `n` as NDJSON: template `n % 13` with every id of its resources
/// (the patient's included) replaced by a new one.
fn synthetic_patient(templates: &[(String, Vec<String>)], n: usize) -> String {
    let (_, lines) = &templates[n % templates.len()];
    let ids: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let mut line = line.clone();
        for (j, id) in ids.iter().enumerate() {
            line = line.replace(id, &format!("{n:08x}-0000-4000-8000-{j:012x}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The id the generator gives patient `n`.
fn patient_id(n: usize) -> String {
    format!("{n:08x}-0000-4000-8000-{:012x}", 0)
}

fn store_dir(patients: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/store-scale")
        .join(format!("v{SCHEMA_VERSION}-g{GENERATOR}-{patients}"))
}

/// The generated store of `patients` patients (made if missing).
fn store(patients: usize) -> (PathBuf, NetworkId) {
    let dir = store_dir(patients);
    let path = dir.join("node.sqlite");
    let done = dir.join("complete");
    if let Ok(network) = std::fs::read_to_string(&done) {
        return (path, NetworkId::from_hex(&network).expect("network id"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("store dir");
    eprintln!(
        "generating the {patients}-patient store under {} …",
        dir.display()
    );
    let started = Instant::now();
    let templates = templates();
    let store = Store::open(&path, &StorageKey::from_bytes(KEY)).expect("store");
    let mut node = Node::create(store, "hospital-a.example").expect("node");
    let network = node.create_network("care").expect("network");
    let mut resources = 0;
    for batch in (0..patients).collect::<Vec<_>>().chunks(PER_BATCH) {
        let ndjson: String = batch
            .iter()
            .map(|&n| synthetic_patient(&templates, n))
            .collect();
        let report = node
            .import_fhir(&network, "synthetic.ndjson", ndjson.as_bytes(), T0)
            .expect("import");
        resources += report.resources;
    }
    drop(node);
    std::fs::write(&done, network.to_hex()).expect("stamp");
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    eprintln!(
        "  {resources} resources, {:.1} MB, in {:.0} s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    (path, network)
}

/// In the child: open, read one chart, report `open_us read_us vmhwm_kb`.
fn probe(arg: &str) {
    let (path, rest) = arg.split_once('|').expect("probe argument");
    let (network, patient) = rest.split_once('|').expect("probe argument");
    let network = NetworkId::from_hex(network).expect("network");
    let started = Instant::now();
    let store = Store::open(Path::new(path), &StorageKey::from_bytes(KEY)).expect("open");
    let mut node = Node::open(store).expect("node");
    let opened = started.elapsed();
    let chart = node
        .export_patient(&network, patient, ExportFormat::Bundle)
        .expect("chart");
    let read = started.elapsed() - opened;
    assert!(chart.contains(patient));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{} {} {hwm}", opened.as_micros(), read.as_micros());
}

struct Probe {
    open: Duration,
    read: Duration,
    peak_kb: u64,
}

fn run_probe(path: &Path, network: &NetworkId, patient: &str) -> Probe {
    let exe = std::env::current_exe().expect("this binary");
    let output = Command::new(exe)
        .env(
            PROBE_ENV,
            format!("{}|{}|{patient}", path.display(), network.to_hex()),
        )
        .output()
        .expect("probe process");
    assert!(
        output.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("text");
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().expect("number"))
        .collect();
    Probe {
        open: Duration::from_micros(numbers[0]),
        read: Duration::from_micros(numbers[1]),
        peak_kb: numbers[2],
    }
}

struct Row {
    patients: usize,
    file_mb: f64,
    open: Duration,
    read: Duration,
    peak_mb: f64,
    audit: Duration,
}

fn measure(patients: usize) -> Row {
    let (path, network) = store(patients);
    let patient = patient_id(patients / 2);
    let probes: Vec<Probe> = (0..RUNS)
        .map(|_| run_probe(&path, &network, &patient))
        .collect();
    let audits: Vec<Duration> = (0..3)
        .map(|_| {
            let store = Store::open(&path, &StorageKey::from_bytes(KEY)).expect("open");
            let started = Instant::now();
            let report = store.verify().expect("audit");
            assert!(report.is_clean());
            started.elapsed()
        })
        .collect();
    let mut peaks: Vec<u64> = probes.iter().map(|p| p.peak_kb).collect();
    peaks.sort_unstable();
    Row {
        patients,
        file_mb: std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6,
        open: median(probes.iter().map(|p| p.open).collect()),
        read: median(probes.iter().map(|p| p.read).collect()),
        peak_mb: peaks[peaks.len() / 2] as f64 / 1024.0,
        audit: median(audits),
    }
}

fn main() {
    if let Ok(arg) = std::env::var(PROBE_ENV) {
        probe(&arg);
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let large: usize = std::env::var("CARELEDGER_SCALE_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let small = measure(100);
    let big = measure(large);
    println!();
    println!(
        "store scale: open the store and read one chart, in a child process (median of {RUNS}); \
         peer: the full audit (what schema 4's open did)"
    );
    println!(
        "{:>9} {:>9} {:>11} {:>11} {:>14} {:>16}",
        "patients", "file MB", "open ms", "read ms", "peak RSS MB", "full audit ms"
    );
    for row in [&small, &big] {
        println!(
            "{:>9} {:>9.1} {:>11.2} {:>11.2} {:>14.1} {:>16.1}",
            row.patients,
            row.file_mb,
            ms(row.open),
            ms(row.read),
            row.peak_mb,
            ms(row.audit)
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "ratio {}/{}: open {:.2} (target ≤ 2), peak RSS {:.2}, full audit {:.1}; peak RSS at {} patients {:.1} MB (target ≤ 50)",
        big.patients,
        small.patients,
        ratio(big.open, small.open),
        big.peak_mb / small.peak_mb.max(1e-9),
        ratio(big.audit, small.audit),
        big.patients,
        big.peak_mb
    );
}
