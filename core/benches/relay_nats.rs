//! NATS JetStream relay against the local relay file, in the same run.
//!
//! Throughput: node A writes 500 entries (untimed), then timed: A publishes
//! them and B fetches, verifies, opens and applies every one (publish →
//! deliver → verify → apply). Latency: one entry from A's publish to B having
//! applied it, 200 times; p50 and p99. Both against the local relay file and
//! the NATS server in `CARELEDGER_NATS_URL` (the bench says SKIPPED without it).
//! Run: `eval "$(bash tests/nats/servers.sh start)"; cargo bench -p careledger --features nats --bench relay_nats`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::relay::nats::{NatsOptions, NatsRelay, TEST_SERVER_ENV};
use careledger::relay::{LocalRelay, Relay};
use careledger::store::Store;
use careledger::sync::{join_from_relay, publish_outbox, sync};
use criterion::Criterion;

mod common;
use common::{ratio_row, Goal, T0};

const BATCH: usize = 500;
const LATENCY_SAMPLES: usize = 200;
const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","gender":"female"}"#;

struct Pair {
    a: Node,
    b: Node,
    relay_a: Box<dyn Relay>,
    relay_b: Box<dyn Relay>,
    net: NetworkId,
    edits: u64,
}

fn node(name: &str) -> Node {
    let key = StorageKey::from_bytes([7; 32]);
    Node::create(Store::open_in_memory(&key).unwrap(), name).unwrap()
}

impl Pair {
    fn new(mut relay_a: Box<dyn Relay>, mut relay_b: Box<dyn Relay>) -> Pair {
        let mut a = node("bench-a.example");
        let mut b = node("bench-b.example");
        let net = a.create_network("bench").unwrap();
        a.invite(&net, &b.key_package().unwrap()).unwrap();
        sync(&mut a, relay_a.as_mut(), &net, T0).unwrap();
        join_from_relay(&mut b, relay_b.as_mut(), &net, "bench", T0).unwrap();
        a.import_fhir(&net, "p.ndjson", PATIENT.as_bytes(), T0)
            .unwrap();
        sync(&mut a, relay_a.as_mut(), &net, T0).unwrap();
        sync(&mut b, relay_b.as_mut(), &net, T0).unwrap();
        Pair {
            a,
            b,
            relay_a,
            relay_b,
            net,
            edits: 0,
        }
    }

    fn write(&mut self, n: usize) {
        for _ in 0..n {
            self.edits += 1;
            let value = format!("\"v{}\"", self.edits);
            self.a
                .edit_member(
                    &self.net,
                    "p1",
                    "Patient",
                    "p1",
                    "language",
                    Some(&value),
                    T0 + self.edits,
                )
                .unwrap();
        }
    }

    /// Publish A's outbox, then sync B until it has applied `n` entries.
    fn deliver(&mut self, n: usize) {
        publish_outbox(&mut self.a, self.relay_a.as_mut()).unwrap();
        let mut accepted = 0;
        while accepted < n {
            accepted += sync(&mut self.b, self.relay_b.as_mut(), &self.net, T0)
                .unwrap()
                .received
                .accepted;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latency(pair: &mut Pair) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        pair.write(1);
        let started = Instant::now();
        pair.deliver(1);
        samples.push(started.elapsed());
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn main() {
    let Some(url) = std::env::var(TEST_SERVER_ENV)
        .ok()
        .filter(|u| !u.is_empty())
    else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {TEST_SERVER_ENV} is not set; run `eval \"$(bash tests/nats/servers.sh start)\"` first"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.sqlite");
    let tag = format!("{}", std::process::id());
    let nats = |who: &str| -> Box<dyn Relay> {
        Box::new(
            NatsRelay::connect(&NatsOptions::new(&url, &format!("bench-{tag}-{who}"))).unwrap(),
        )
    };
    let mut local = Pair::new(
        Box::new(LocalRelay::open(&file).unwrap()),
        Box::new(LocalRelay::open(&file).unwrap()),
    );
    let mut remote = Pair::new(nats("a"), nats("b"));

    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut means = Vec::new();
    for (name, pair) in [
        ("local relay file", &mut local),
        ("NATS JetStream", &mut remote),
    ] {
        let mut total = Duration::ZERO;
        let mut runs = 0u32;
        criterion.bench_function(
            &format!("relay throughput, {BATCH} entries: {name}"),
            |bench| {
                bench.iter_custom(|iterations| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iterations {
                        pair.write(BATCH);
                        let started = Instant::now();
                        pair.deliver(BATCH);
                        elapsed += started.elapsed();
                    }
                    total += elapsed;
                    runs += iterations as u32;
                    elapsed
                })
            },
        );
        means.push(total / runs.max(1));
    }
    let rate = |d: Duration| BATCH as f64 / d.as_secs_f64();
    let (local_p50, local_p99) = latency(&mut local);
    let (nats_p50, nats_p99) = latency(&mut remote);
    criterion.final_summary();
    println!();
    println!(
        "throughput: local relay file {:.0} entries/s, NATS {:.0} entries/s; NATS/local time ratio {:.2}",
        rate(means[0]),
        rate(means[1]),
        means[1].as_secs_f64() / means[0].as_secs_f64()
    );
    println!(
        "latency, one entry A → B: local p50 {:.2} ms p99 {:.2} ms; NATS p50 {:.2} ms p99 {:.2} ms; \
         ratios p50 {:.2}, p99 {:.2}",
        local_p50.as_secs_f64() * 1e3,
        local_p99.as_secs_f64() * 1e3,
        nats_p50.as_secs_f64() * 1e3,
        nats_p99.as_secs_f64() * 1e3,
        nats_p50.as_secs_f64() / local_p50.as_secs_f64(),
        nats_p99.as_secs_f64() / local_p99.as_secs_f64()
    );
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    ratio_row(
        "relay_nats",
        &format!("relay throughput, {BATCH} entries publish → deliver → verify → apply: NATS vs local relay file"),
        &format!("{:.0} entries/s", rate(means[1])),
        &format!("{:.0} entries/s", rate(means[0])),
        means[1].as_secs_f64() / means[0].as_secs_f64(),
        Goal::None,
    );
    ratio_row(
        "relay_nats",
        "relay latency, one entry A → B, p50: NATS vs local relay file",
        &ms(nats_p50),
        &ms(local_p50),
        nats_p50.as_secs_f64() / local_p50.as_secs_f64(),
        Goal::None,
    );
}
