//! Scale: a generated Synthea-shaped population (default 100,000 patients)
//! ingested by hospital A and received by hospital B through a local relay
//! file, both nodes file-backed (WAL, `synchronous = FULL`), in one process.
//!
//! Per batch of patients (`CARELEDGER_SCALE_BATCH`, default 500): generate
//! the NDJSON (untimed; `common/synthea.rs`), A imports it (timed: ingest),
//! A publishes its outbox, B syncs (timed: receive). After each tenth of the
//! run it prints throughput over that tenth and the process's resident
//! memory; at the end the first tenth against the last (the store is ten
//! times larger by then) and the peak RSS (`VmHWM`).
//!
//! `CARELEDGER_SCALE_PATIENTS` (default 100,000), `CARELEDGER_SCALE_KEEP`
//! (share of each template's clinical history kept, per mille; default 100:
//! about 29 resources per patient), `CARELEDGER_SCALE_SEED` (default 16),
//! `CARELEDGER_SCALE_DIR` (where the stores go; default a temporary
//! directory, removed at the end). `bash tests/scale.sh` runs it.

use std::time::{Duration, Instant};

use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::relay::LocalRelay;
use careledger::store::Store;
use careledger::sync::{join_from_relay, publish_outbox, sync};

mod common;
#[path = "common/synthea.rs"]
mod synthea;
use common::{ratio_row, thousands, Goal, T0};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A line of `/proc/self/status` in MiB (`VmRSS`, `VmHWM`); 0 where there is none.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn dir_mib(path: &std::path::Path) -> f64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len() as f64)
                .sum::<f64>()
        })
        .unwrap_or(0.0)
        / (1 << 20) as f64
}

#[derive(Clone, Copy, Default)]
struct Tenth {
    patients: u64,
    resources: usize,
    entries: usize,
    ingest: Duration,
    publish: Duration,
    receive: Duration,
    rss_mib: f64,
}

fn main() {
    let patients = env_u64("CARELEDGER_SCALE_PATIENTS", 100_000);
    let batch = env_u64("CARELEDGER_SCALE_BATCH", 500).max(1);
    let keep = env_u64("CARELEDGER_SCALE_KEEP", 100);
    let seed = env_u64("CARELEDGER_SCALE_SEED", 16);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = std::env::var_os("CARELEDGER_SCALE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).expect("scale dir");
    let key = StorageKey::from_bytes([7; 32]);
    let open = |name: &str| Store::open(&dir.join(name), &key).expect("store");
    let mut a = Node::create(open("a.sqlite"), "hospital-a.example").expect("node a");
    let mut b = Node::create(open("b.sqlite"), "hospital-b.example").expect("node b");
    let mut relay_a = LocalRelay::open(&dir.join("relay.sqlite")).expect("relay");
    let mut relay_b = LocalRelay::open(&dir.join("relay.sqlite")).expect("relay");
    let net: NetworkId = a.create_network("care").expect("network");
    a.invite(&net, &b.key_package().expect("key package"))
        .expect("invite");
    sync(&mut a, &mut relay_a, &net, T0).expect("sync a");
    join_from_relay(&mut b, &mut relay_b, &net, "care", T0).expect("join b");

    let templates = synthea::Templates::load();
    let batches = patients.div_ceil(batch);
    let tenth_of = |i: u64| (i * 10 / batches).min(9) as usize;
    let mut tenths = [Tenth::default(); 10];
    println!(
        "SCALE {patients} Synthea-shaped patients (seed {seed}, {keep}‰ of each template's history), \
         batches of {batch}; stores in {}",
        dir.display()
    );
    println!(
        "{:>6} {:>9} {:>11} {:>9} | {:>14} {:>14} {:>14} | {:>8} {:>9}",
        "tenth",
        "patients",
        "resources",
        "entries",
        "ingest res/s",
        "publish ent/s",
        "receive res/s",
        "RSS MiB",
        "store MiB"
    );
    let started = Instant::now();
    for i in 0..batches {
        let first = i * batch;
        let count = batch.min(patients - first);
        let (ndjson, resources) = synthea::patients(&templates, seed, first, count, keep);
        let t = Instant::now();
        let report = a
            .import_fhir(&net, "scale.ndjson", &ndjson, T0 + i)
            .expect("import");
        let ingest = t.elapsed();
        let t = Instant::now();
        publish_outbox(&mut a, &mut relay_a).expect("publish");
        let publish = t.elapsed();
        let t = Instant::now();
        let received = sync(&mut b, &mut relay_b, &net, T0 + i).expect("sync b");
        let receive = t.elapsed();
        assert!(
            received.received.rejected.is_empty(),
            "{:?}",
            received.received.rejected
        );
        assert_eq!(received.received.held, 0, "nothing waits");
        let tenth = &mut tenths[tenth_of(i)];
        tenth.patients += count;
        tenth.resources += resources;
        tenth.entries += report.entries;
        tenth.ingest += ingest;
        tenth.publish += publish;
        tenth.receive += receive;
        if tenth_of(i + 1) != tenth_of(i) || i + 1 == batches {
            tenth.rss_mib = status_mib("VmRSS:");
            let k = tenth_of(i);
            let t = tenths[k];
            println!(
                "{:>6} {:>9} {:>11} {:>9} | {:>14} {:>14} {:>14} | {:>8.0} {:>9.0}",
                format!("{}/10", k + 1),
                first + count,
                thousands(t.resources as f64),
                thousands(t.entries as f64),
                thousands(t.resources as f64 / t.ingest.as_secs_f64()),
                thousands(t.entries as f64 / t.publish.as_secs_f64()),
                thousands(t.resources as f64 / t.receive.as_secs_f64()),
                t.rss_mib,
                dir_mib(&dir),
            );
        }
    }
    assert_eq!(
        b.patients(&net).expect("patients").len() as u64,
        patients,
        "B holds every patient"
    );
    let (first, last) = (tenths[0], tenths[9]);
    let rate = |t: &Tenth, d: fn(&Tenth) -> Duration| t.resources as f64 / d(t).as_secs_f64();
    let ingest_ratio = rate(&last, |t| t.ingest) / rate(&first, |t| t.ingest);
    let receive_ratio = rate(&last, |t| t.receive) / rate(&first, |t| t.receive);
    let peak = status_mib("VmHWM:");
    let total: usize = tenths.iter().map(|t| t.resources).sum();
    println!(
        "SCALE done in {:.0} s: {} resources; ingest last/first tenth {ingest_ratio:.2}, \
         receive last/first tenth {receive_ratio:.2}; RSS after the first tenth {:.0} MiB, \
         after the last {:.0} MiB, peak {peak:.0} MiB; stores {:.0} MiB",
        started.elapsed().as_secs_f64(),
        thousands(total as f64),
        first.rss_mib,
        last.rss_mib,
        dir_mib(&dir),
    );
    let res = |t: &Tenth, d: fn(&Tenth) -> Duration| format!("{} res/s", thousands(rate(t, d)));
    ratio_row(
        "scale",
        &format!("{patients} patients: ingest throughput, last 10 % vs first 10 %"),
        &res(&last, |t| t.ingest),
        &res(&first, |t| t.ingest),
        ingest_ratio,
        Goal::AtLeast(0.9),
    );
    ratio_row(
        "scale",
        &format!("{patients} patients: receive throughput, last 10 % vs first 10 %"),
        &res(&last, |t| t.receive),
        &res(&first, |t| t.receive),
        receive_ratio,
        Goal::AtLeast(0.9),
    );
    ratio_row(
        "scale",
        &format!("{patients} patients: resident memory after the last 10 % vs after the first (peak {peak:.0} MiB)"),
        &format!("{:.0} MiB", last.rss_mib),
        &format!("{:.0} MiB", first.rss_mib),
        last.rss_mib / first.rss_mib,
        Goal::AtMost(1.25),
    );
}
