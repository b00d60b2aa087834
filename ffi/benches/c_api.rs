//! The C API against the Rust API, same work, same run: hospital A imports
//! the Synthea bulk export (3,700 resources, 6 NDJSON files) and syncs it
//! through a local relay file; hospital B, already a member, syncs and
//! receives it all. Node and network setup (MLS create, invite, join) is
//! untimed. The C side calls the exported `extern "C"` functions, exactly
//! what a C program links; the Rust side calls `careledger` directly. The
//! ratio (target <= 1.05) is measured with interleaved repetitions (median)
//! and printed at the end; the same routines are then registered with criterion.

use std::ffi::{CStr, CString};
use std::hint::black_box;
use std::path::Path;
use std::ptr;
use std::time::{Duration, Instant};

use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::relay::LocalRelay;
use careledger::store::Store;
use careledger::sync::{join_from_relay, sync};
use careledger_ffi::*;
use criterion::{BatchSize, Criterion, SamplingMode};
use tempfile::TempDir;

#[path = "../../core/benches/common/mod.rs"]
mod common;
use common::{load_files, measure_both, rate, thousands, Measured, RESOURCES, T0};

const REPS: usize = 7;
const TARGET_RATIO: f64 = 1.05;
const KEY: [u8; 32] = [7; 32];

type Files = Vec<(&'static str, Vec<u8>)>;

fn c_path(dir: &Path, name: &str) -> CString {
    CString::new(dir.join(name).to_str().expect("UTF-8 temp path")).expect("no NUL")
}

fn ok(status: careledger_status) {
    assert_eq!(
        status,
        careledger_status::CARELEDGER_OK,
        "C API call failed"
    );
}

/// Two C-API nodes in one network sharing a relay file.
struct CPair {
    a: *mut careledger_node,
    b: *mut careledger_node,
    network: CString,
    relay: CString,
    _dir: TempDir,
}

impl Drop for CPair {
    fn drop(&mut self) {
        // SAFETY: both handles came from careledger_node_create and are freed once.
        unsafe {
            careledger_node_free(self.a);
            careledger_node_free(self.b);
        }
    }
}

fn c_pair() -> CPair {
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = c_path(dir.path(), "relay.sqlite");
    let (mut a, mut b) = (ptr::null_mut(), ptr::null_mut());
    let mut network = ptr::null_mut();
    let mut key_package = ptr::null_mut();
    // SAFETY: every pointer is valid for the call; outputs are freed below.
    unsafe {
        ok(careledger_node_create(
            c_path(dir.path(), "a.sqlite").as_ptr(),
            KEY.as_ptr(),
            32,
            c"a.example".as_ptr(),
            &mut a,
        ));
        ok(careledger_node_create(
            c_path(dir.path(), "b.sqlite").as_ptr(),
            KEY.as_ptr(),
            32,
            c"b.example".as_ptr(),
            &mut b,
        ));
        ok(careledger_network_create(a, c"care".as_ptr(), &mut network));
        let network_id = CStr::from_ptr(careledger_bytes_str(network)).to_owned();
        careledger_bytes_free(network);
        ok(careledger_node_key_package(b, &mut key_package));
        ok(careledger_network_invite(
            a,
            network_id.as_ptr(),
            careledger_bytes_data(key_package),
            careledger_bytes_len(key_package),
        ));
        careledger_bytes_free(key_package);
        ok(careledger_network_sync(
            a,
            network_id.as_ptr(),
            relay.as_ptr(),
            ptr::null_mut(),
        ));
        ok(careledger_network_join_from_relay(
            b,
            relay.as_ptr(),
            network_id.as_ptr(),
            c"care".as_ptr(),
        ));
        CPair {
            a,
            b,
            network: network_id,
            relay,
            _dir: dir,
        }
    }
}

/// Returns the entries B accepted.
fn run_c(pair: &mut CPair, files: &[(CString, &[u8])]) -> u64 {
    let mut report = careledger_sync_report::default();
    // SAFETY: handles are live; buffers valid for the calls.
    unsafe {
        for (name, bytes) in files {
            ok(careledger_import_fhir(
                pair.a,
                pair.network.as_ptr(),
                name.as_ptr(),
                bytes.as_ptr(),
                bytes.len(),
                ptr::null_mut(),
            ));
        }
        ok(careledger_network_sync(
            pair.a,
            pair.network.as_ptr(),
            pair.relay.as_ptr(),
            ptr::null_mut(),
        ));
        ok(careledger_network_sync(
            pair.b,
            pair.network.as_ptr(),
            pair.relay.as_ptr(),
            &mut report,
        ));
    }
    report.received.accepted
}

/// Two Rust-API nodes in one network sharing a relay file.
struct RustPair {
    a: Node,
    b: Node,
    network: NetworkId,
    relay: std::path::PathBuf,
    _dir: TempDir,
}

fn rust_pair() -> RustPair {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = StorageKey::from_bytes(KEY);
    let open = |name: &str| Store::open(&dir.path().join(name), &key).expect("store");
    let mut a = Node::create(open("a.sqlite"), "a.example").expect("node");
    let mut b = Node::create(open("b.sqlite"), "b.example").expect("node");
    let relay = dir.path().join("relay.sqlite");
    let mut local = LocalRelay::open(&relay).expect("relay");
    let network = a.create_network("care").expect("network");
    a.invite(&network, &b.key_package().expect("key package"))
        .expect("invite");
    sync(&mut a, &mut local, &network, T0).expect("sync");
    join_from_relay(&mut b, &mut local, &network, "care", T0).expect("join");
    RustPair {
        a,
        b,
        network,
        relay,
        _dir: dir,
    }
}

/// Returns the entries B accepted. Opens the relay per sync, as the C API does.
fn run_rust(pair: &mut RustPair, files: &Files) -> u64 {
    for (name, bytes) in files {
        pair.a
            .import_fhir(&pair.network, name, bytes, T0)
            .expect("import");
    }
    let mut relay = LocalRelay::open(&pair.relay).expect("relay");
    sync(&mut pair.a, &mut relay, &pair.network, T0).expect("sync");
    let mut relay = LocalRelay::open(&pair.relay).expect("relay");
    let report = sync(&mut pair.b, &mut relay, &pair.network, T0).expect("sync");
    report.received.accepted as u64
}

fn main() {
    let started = Instant::now();
    let files = load_files();
    let c_files: Vec<(CString, &[u8])> = files
        .iter()
        .map(|(name, bytes)| (CString::new(*name).expect("no NUL"), bytes.as_slice()))
        .collect();
    let expected = {
        let mut pair = rust_pair();
        run_rust(&mut pair, &files)
    };
    assert!(expected > 0);
    let measured: Measured = measure_both(
        REPS,
        c_pair,
        |pair| assert_eq!(run_c(pair, &c_files), expected),
        rust_pair,
        |pair| assert_eq!(run_rust(pair, &files), expected),
    );

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("import_and_sync");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    group.measurement_time(measured.careledger * 9);
    group.bench_function("c_api", |b| {
        b.iter_batched(
            c_pair,
            |mut pair| {
                black_box(run_c(&mut pair, &c_files));
                pair
            },
            BatchSize::PerIteration,
        )
    });
    group.measurement_time(measured.plain * 9);
    group.bench_function("rust_api", |b| {
        b.iter_batched(
            rust_pair,
            |mut pair| {
                black_box(run_rust(&mut pair, &files));
                pair
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    criterion.final_summary();

    let ratio = measured.careledger.as_secs_f64() / measured.plain.as_secs_f64();
    eprintln!();
    eprintln!(
        "C API ({RESOURCES} resources imported by A, synced through a relay file, {expected} entries received by B; median of {REPS}): \
         C API {:.0} ms ({} res/s), Rust API {:.0} ms ({} res/s), ratio {ratio:.3} (target <= {TARGET_RATIO:.2}: {})",
        measured.careledger.as_secs_f64() * 1e3,
        thousands(rate(RESOURCES, measured.careledger)),
        measured.plain.as_secs_f64() * 1e3,
        thousands(rate(RESOURCES, measured.plain)),
        if ratio <= TARGET_RATIO { "met" } else { "MISSED" },
    );
    common::ratio_row(
        "c_api",
        &format!("C API vs Rust API: A imports {RESOURCES} resources and syncs through a relay file, B receives {expected} entries"),
        &format!("{:.0} ms", measured.careledger.as_secs_f64() * 1e3),
        &format!("{:.0} ms", measured.plain.as_secs_f64() * 1e3),
        ratio,
        common::Goal::AtMost(TARGET_RATIO),
    );
    eprintln!("C API bench took {:.1} s", started.elapsed().as_secs_f64());
}
