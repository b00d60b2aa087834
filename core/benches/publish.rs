//! Publishing 1,000 entries: batched [`publish_outbox`] (one relay write per
//! page, acknowledged in one store commit) against publishing them one by one
//! (one relay write and one acknowledging store commit per message, as
//! `publish_outbox` did before), in the same run, on the local relay file and
//! on NATS JetStream (`CARELEDGER_NATS_URL`; SKIPPED without it).
//!
//! Setup (untimed), per repetition and side: a fresh file-backed node (WAL,
//! `synchronous = FULL`) imports 1,000 small patients, which queues 1,001
//! entries (one key grant and 1,000 record changes) and the network's first
//! messages in its outbox; a fresh relay file or a fresh NATS stream (the
//! network is new, so nothing is deduplicated against an earlier run).
//! Timed: emptying the outbox into the relay.
//!
//! Run: `cargo bench -p careledger --features nats --bench publish`.

use std::time::Duration;

use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::relay::nats::{NatsOptions, NatsRelay, TEST_SERVER_ENV};
use careledger::relay::{LocalRelay, Relay};
use careledger::store::Store;
use careledger::sync::{publish_outbox, PAGE};
use tempfile::TempDir;

mod common;
use common::{measure_both, ms, ratio_row, Goal, T0};

const ENTRIES: usize = 1_000;
const REPS: usize = 5;

struct Publisher {
    node: Node,
    relay: Box<dyn Relay>,
    queued: usize,
    _dir: TempDir,
}

fn patients() -> Vec<u8> {
    (0..ENTRIES)
        .map(|i| {
            format!(
                r#"{{"resourceType":"Patient","id":"bench-{i:05}","gender":"female","birthDate":"1970-01-01"}}"#
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn publisher(make_relay: &mut dyn FnMut(&TempDir) -> Box<dyn Relay>, ndjson: &[u8]) -> Publisher {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = StorageKey::from_bytes([7; 32]);
    let store = Store::open(&dir.path().join("a.sqlite"), &key).expect("store");
    let mut node = Node::create(store, "bench-a.example").expect("node");
    let net: NetworkId = node.create_network("bench").expect("network");
    let report = node
        .import_fhir(&net, "patients.ndjson", ndjson, T0)
        .expect("import");
    assert_eq!(report.entries, ENTRIES + 1);
    let queued = node.outgoing(10 * ENTRIES).expect("outbox").len();
    Publisher {
        relay: make_relay(&dir),
        node,
        queued,
        _dir: dir,
    }
}

/// Before batching: one relay write and one store commit per message.
fn publish_one_by_one(p: &mut Publisher) -> usize {
    let mut published = 0;
    loop {
        let batch = p.node.outgoing(PAGE).expect("outbox");
        if batch.is_empty() {
            return published;
        }
        for message in batch {
            p.relay
                .publish(&message.network, &message.message)
                .expect("publish");
            p.node.ack_outgoing(message.id).expect("ack");
            published += 1;
        }
    }
}

fn run(name: &str, make_relay: &mut dyn FnMut(&TempDir) -> Box<dyn Relay>) {
    let ndjson = patients();
    let make_relay = std::cell::RefCell::new(make_relay);
    let measured = measure_both(
        REPS,
        || publisher(&mut **make_relay.borrow_mut(), &ndjson),
        |p| {
            let published = publish_outbox(&mut p.node, p.relay.as_mut()).expect("publish");
            assert_eq!(published, p.queued);
        },
        || publisher(&mut **make_relay.borrow_mut(), &ndjson),
        |p| assert_eq!(publish_one_by_one(p), p.queued),
    );
    let rate = |d: Duration| ENTRIES as f64 / d.as_secs_f64();
    println!(
        "PUBLISH {ENTRIES} entries to the {name} (median of {REPS}): batched {:.0} ms ({:.0} entries/s), \
         one by one {:.0} ms ({:.0} entries/s): {:.1}× faster",
        ms(measured.careledger),
        rate(measured.careledger),
        ms(measured.plain),
        rate(measured.plain),
        measured.plain.as_secs_f64() / measured.careledger.as_secs_f64()
    );
    ratio_row(
        "publish",
        &format!(
            "publish {ENTRIES} entries, {name}: batched vs one by one ({:.0}× faster)",
            measured.plain.as_secs_f64() / measured.careledger.as_secs_f64()
        ),
        &format!("{:.0} ms", ms(measured.careledger)),
        &format!("{:.0} ms", ms(measured.plain)),
        measured.careledger.as_secs_f64() / measured.plain.as_secs_f64(),
        Goal::None,
    );
}

fn main() {
    run("local relay file", &mut |dir| {
        Box::new(LocalRelay::open(&dir.path().join("relay.sqlite")).expect("relay file"))
    });
    match std::env::var(TEST_SERVER_ENV).ok().filter(|u| !u.is_empty()) {
        Some(url) => {
            let mut n = 0;
            let tag = std::process::id();
            run("NATS JetStream", &mut |_| {
                n += 1;
                Box::new(
                    NatsRelay::connect(&NatsOptions::new(&url, &format!("publish-{tag}-{n}")))
                        .expect("NATS server reachable"),
                )
            });
        }
        None => println!(
            "SKIPPED: NATS publish ({TEST_SERVER_ENV} is not set; run `eval \"$(bash tests/nats/servers.sh start)\"`)"
        ),
    }
}
