//! The NATS JetStream relay against real `nats-server` processes: commit races
//! decided by stream order, a cluster node killed mid-sync, a server restart,
//! an offline node catching up on 5,000 entries, and no plaintext on the server.
//!
//! The servers come from `tests/nats/servers.sh start` (tests/run-all.sh and CI
//! start them). Without `CARELEDGER_NATS_URL` every test here says SKIPPED on
//! stderr and returns; with it, the cluster variables must be set too.
//! `CARELEDGER_NATS_RACES=N` changes the number of commit races (default 1,000).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use careledger::node::{NetworkId, Node};
use careledger::relay::nats::{NatsOptions, NatsRelay, TEST_CLUSTER_ENV, TEST_SERVER_ENV};
use careledger::relay::Relay;
use careledger::sync::{join_from_relay, publish_outbox, sync, SyncReport};
use careledger_scenarios::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The tests stop and kill servers: one at a time.
static SERVERS: Mutex<()> = Mutex::new(());

/// The server URL, or None after saying loudly that the test is skipped.
fn server(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Written past the test harness's capture so it always shows.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {variable} is not set, so no NATS server to test against; \
                 run `eval \"$(bash tests/nats/servers.sh start)\"` or `bash tests/run-all.sh`"
            );
            None
        }
    }
}

fn control(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nats/servers.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .expect("bash runs");
    assert!(status.success(), "servers.sh {args:?} failed");
}

/// Starts a stopped server again when dropped, also when a test panics, so
/// one failure does not cascade into the next tests.
struct Restart(&'static str);

impl Drop for Restart {
    fn drop(&mut self) {
        control(&["start-node", self.0]);
    }
}

struct Site {
    node: Node,
    relay: NatsRelay,
}

fn options(url: &str, name: &str, replicas: usize) -> NatsOptions {
    let mut options = NatsOptions::new(url, name);
    options.replicas = replicas;
    options
}

fn site(url: &str, name: &str, replicas: usize) -> Site {
    Site {
        node: memory_node(name),
        relay: NatsRelay::connect(&options(url, name, replicas)).expect("NATS server reachable"),
    }
}

/// Unique per run: durable consumers and streams outlive a test run.
fn run_tag() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 0xffff_ffff
    )
}

fn form(sites: &mut [Site]) -> NetworkId {
    let (first, rest) = sites.split_first_mut().unwrap();
    let net = first.node.create_network("care").unwrap();
    for joiner in rest.iter_mut() {
        let key_package = joiner.node.key_package().unwrap();
        first.node.invite(&net, &key_package).unwrap();
        sync(&mut first.node, &mut first.relay, &net, T0).unwrap();
        join_from_relay(&mut joiner.node, &mut joiner.relay, &net, "care", T0).unwrap();
    }
    settle_sites(sites, &net, 10);
    net
}

fn checked(report: SyncReport) -> SyncReport {
    assert!(
        report.received.rejected.is_empty() && report.received.mls_errors.is_empty(),
        "honest traffic refused: {:?} {:?}",
        report.received.rejected,
        report.received.mls_errors
    );
    report
}

/// Sync every site until nothing changes; returns the summed reports per site.
fn settle_sites(sites: &mut [Site], net: &NetworkId, rounds: usize) -> Vec<SyncReport> {
    let mut totals: Vec<SyncReport> = sites.iter().map(|_| SyncReport::default()).collect();
    for _ in 0..rounds {
        let mut quiet = true;
        for (site, total) in sites.iter_mut().zip(totals.iter_mut()) {
            let report = checked(sync(&mut site.node, &mut site.relay, net, T0).unwrap());
            if report.received.accepted > 0
                || report.received.commits_applied > 0
                || report.published > 1
                || site.node.commit_pending(net).unwrap()
            {
                quiet = false;
            }
            total.published += report.published;
            total.fetched += report.fetched;
            total.received.accepted += report.received.accepted;
            total.received.commits_applied += report.received.commits_applied;
            total.received.commits_stale += report.received.commits_stale;
            total.received.commits_retried += report.received.commits_retried;
        }
        if quiet {
            break;
        }
    }
    totals
}

fn assert_converged(sites: &mut [Site], net: &NetworkId) {
    let heads = sites[0].node.heads(net).unwrap();
    let epoch = sites[0].node.epoch(net).unwrap();
    let authenticator = sites[0].node.epoch_authenticator(net).unwrap();
    let state = canonical_state(&mut sites[0].node, net);
    for (i, site) in sites.iter_mut().enumerate() {
        assert_eq!(site.node.heads(net).unwrap(), heads, "site {i} heads");
        assert_eq!(site.node.epoch(net).unwrap(), epoch, "site {i} epoch");
        assert_eq!(
            site.node.epoch_authenticator(net).unwrap(),
            authenticator,
            "site {i} forked"
        );
        assert_eq!(
            canonical_state(&mut site.node, net),
            state,
            "site {i} records"
        );
        let ledger = site.node.verify_ledger(net).unwrap();
        assert!(ledger.is_clean(), "site {i}: {:?}", ledger.problems);
    }
}

/// Family and given names of the Synthea patients: strings that must never
/// reach the relay in the clear.
fn plaintext_markers() -> Vec<String> {
    let text = String::from_utf8(data("bulk-10-patients/Patient.000.ndjson")).unwrap();
    let mut markers = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let patient: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = &patient["name"][0];
        markers.push(name["family"].as_str().unwrap().to_owned());
        markers.push(name["given"][0].as_str().unwrap().to_owned());
        markers.push(patient["id"].as_str().unwrap().to_owned());
    }
    markers.retain(|m| m.len() >= 5);
    markers.sort();
    markers.dedup();
    markers
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every message of the network's stream and every file of the server's
/// store directory, searched for the markers.
fn assert_no_plaintext_on_server(url: &str, net: &NetworkId, store: Option<PathBuf>) -> usize {
    let markers = plaintext_markers();
    assert!(markers.len() >= 20, "markers from the FHIR data");
    let mut reader = NatsRelay::connect(&options(url, &format!("audit-{}", run_tag()), 1)).unwrap();
    let mut after = 0;
    let mut scanned = 0;
    loop {
        let page = reader.fetch(net, after, 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for message in &page {
            scanned += 1;
            for marker in &markers {
                assert!(
                    !contains(&message.bytes, marker.as_bytes()),
                    "a record marker reached the relay in message {}",
                    message.seq
                );
            }
        }
    }
    if let Some(store) = store {
        let mut files = vec![store];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).unwrap().flatten() {
                    files.push(entry.path());
                }
            } else if let Ok(bytes) = std::fs::read(&path) {
                for marker in &markers {
                    assert!(
                        !contains(&bytes, marker.as_bytes()),
                        "a record marker is in the server's store file {}",
                        path.display()
                    );
                }
            }
        }
    }
    scanned
}

#[test]
fn commit_races_are_decided_by_stream_order() {
    let Some(url) = server(TEST_SERVER_ENV) else {
        return;
    };
    let _servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let races: usize = std::env::var("CARELEDGER_NATS_RACES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let tag = run_tag();
    let mut sites: Vec<Site> = (0..5)
        .map(|i| site(&url, &format!("race-{tag}-{i}"), 1))
        .collect();
    let net = form(&mut sites);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let started = Instant::now();
    let (mut retried, mut stale, mut contenders) = (0, 0, 0);
    for race in 0..races {
        let k = rng.random_range(2..=5);
        let mut order: Vec<usize> = (0..sites.len()).collect();
        order.shuffle(&mut rng);
        order.truncate(k);
        contenders += k;
        let epoch = sites[0].node.epoch(&net).unwrap();
        for &i in &order {
            sites[i].node.update_keys(&net).unwrap();
        }
        // The contenders publish their commits for `epoch` at the same time;
        // the server's stream order picks the winner.
        std::thread::scope(|scope| {
            for (i, site) in sites.iter_mut().enumerate() {
                if order.contains(&i) {
                    scope.spawn(move || publish_outbox(&mut site.node, &mut site.relay).unwrap());
                }
            }
        });
        let totals = settle_sites(&mut sites, &net, 4 * k + 4);
        for (i, total) in totals.iter().enumerate() {
            // Every node applies each of the k proposals exactly once, one per
            // epoch: the first in stream order, then each re-proposed loser.
            assert_eq!(
                total.received.commits_applied, k,
                "race {race}: site {i} applied {} commits for {k} proposals",
                total.received.commits_applied
            );
            retried += total.received.commits_retried;
            stale += total.received.commits_stale;
        }
        let round_retried: usize = totals.iter().map(|t| t.received.commits_retried).sum();
        assert!(
            round_retried >= k - 1,
            "race {race}: {k} contenders, {round_retried} retries"
        );
        let authenticator = sites[0].node.epoch_authenticator(&net).unwrap();
        for (i, site) in sites.iter_mut().enumerate() {
            assert!(!site.node.commit_pending(&net).unwrap(), "race {race}");
            assert_eq!(
                site.node.epoch(&net).unwrap(),
                epoch + k as u64,
                "race {race}: site {i}"
            );
            assert_eq!(
                site.node.epoch_authenticator(&net).unwrap(),
                authenticator,
                "race {race}: site {i} forked"
            );
        }
    }
    assert_converged(&mut sites, &net);
    let _ = writeln!(
        std::io::stderr(),
        "{races} commit races ({contenders} contending commits) through {url} in {:.1} s: \
         {retried} lost commits retried, {stale} stale commits ignored, 0 forks",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn killing_a_cluster_node_mid_sync_loses_no_acknowledged_entry() {
    let Some(_) = server(TEST_SERVER_ENV) else {
        return;
    };
    let cluster = std::env::var(TEST_CLUSTER_ENV)
        .expect("CARELEDGER_NATS_CLUSTER set beside CARELEDGER_NATS_URL");
    let _servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    control(&["start"]);
    let _restart = Restart("c1");
    let tag = run_tag();
    let mut sites: Vec<Site> = (0..3)
        .map(|i| site(&cluster, &format!("cluster-{tag}-{i}"), 3))
        .collect();
    let net = form(&mut sites);
    for kind in ["Patient", "Condition", "Encounter", "MedicationRequest"] {
        import_bulk(&mut sites[0].node, &net, kind, T0);
    }
    let p = sites[0].node.patients(&net).unwrap()[0].clone();
    for i in 0..600 {
        let value = format!("\"note {i}\"");
        sites[0]
            .node
            .edit_member(&net, &p, "Patient", &p, "language", Some(&value), T0 + i)
            .unwrap();
    }
    let writer = sites.remove(0);
    // The writer publishes a first part, then waits while the first cluster
    // node (where clients connect first) is killed, then publishes the rest
    // over the same connection: the kill always falls mid-sync, whatever the
    // machine's speed.
    const BEFORE_KILL: usize = 50;
    let (reached, at_kill_point) = std::sync::mpsc::channel::<()>();
    let (resume, killed) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let mut writer = writer;
        let mut published = 0;
        let mut after_kill = 0;
        loop {
            let batch = writer.node.outgoing(20).unwrap();
            if batch.is_empty() {
                break;
            }
            for message in batch {
                if published == BEFORE_KILL {
                    reached.send(()).unwrap();
                    killed.recv().unwrap();
                }
                writer
                    .relay
                    .publish(&message.network, &message.message)
                    .unwrap();
                writer.node.ack_outgoing(message.id).unwrap();
                published += 1;
                if published > BEFORE_KILL {
                    after_kill += 1;
                }
            }
        }
        (writer, published, after_kill)
    });
    at_kill_point
        .recv()
        .expect("the writer reaches the kill point");
    control(&["kill-node", "c1"]);
    resume.send(()).unwrap();
    let (writer, published, after_kill) =
        handle.join().expect("the writer finishes despite the kill");
    sites.insert(0, writer);
    assert!(published > 600, "{published} messages published");
    assert!(
        after_kill > 500,
        "{after_kill} messages published after the kill"
    );
    settle_sites(&mut sites, &net, 10);
    assert_converged(&mut sites, &net);
    let _ = writeln!(
        std::io::stderr(),
        "cluster: {published} messages published across the loss of node c1, all received"
    );
}

#[test]
fn nodes_reconnect_after_a_server_restart_and_finish() {
    let Some(url) = server(TEST_SERVER_ENV) else {
        return;
    };
    let _servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let tag = run_tag();
    let mut sites: Vec<Site> = (0..2)
        .map(|i| site(&url, &format!("restart-{tag}-{i}"), 1))
        .collect();
    let net = form(&mut sites);
    let _restart = Restart("single");
    control(&["stop-node", "single"]);
    import_bulk(&mut sites[0].node, &net, "Patient", T0);

    // Down: a clear error after the retry window, and the outbox keeps everything.
    let mut impatient = options(&url, &format!("restart-{tag}-probe"), 1);
    impatient.retry_for = Duration::from_millis(500);
    let refused = NatsRelay::connect(&impatient).unwrap_err().to_string();
    assert!(
        refused.contains("cannot reach the NATS server"),
        "{refused}"
    );
    let queued = sites[0].node.outgoing(1000).unwrap().len();
    assert!(queued > 0);

    // Restarted while a sync is retrying: the sync finishes.
    let restarter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(2));
        control(&["start-node", "single"]);
    });
    let writer = &mut sites[0];
    let report =
        sync(&mut writer.node, &mut writer.relay, &net, T0).expect("the sync outlasts the restart");
    restarter.join().unwrap();
    assert!(report.published >= queued);
    assert!(sites[0].node.outgoing(10).unwrap().is_empty());
    settle_sites(&mut sites, &net, 10);
    assert_converged(&mut sites, &net);
    assert_eq!(sites[1].node.patients(&net).unwrap().len(), 13);
}

#[test]
fn an_offline_node_catches_up_on_5000_entries_and_nothing_readable_reaches_the_server() {
    let Some(url) = server(TEST_SERVER_ENV) else {
        return;
    };
    let _servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let tag = run_tag();
    let names: Vec<String> = (0..3).map(|i| format!("offline-{tag}-{i}")).collect();
    let mut sites: Vec<Site> = names.iter().map(|n| site(&url, n, 1)).collect();
    let net = form(&mut sites);
    // The third node goes offline (its connection closes).
    let offline = sites.pop().unwrap();
    let Site {
        node: mut away,
        relay,
    } = offline;
    drop(relay);

    let mut written = 0;
    for kind in ["Patient", "AllergyIntolerance", "Immunization"] {
        written += import_bulk(&mut sites[0].node, &net, kind, T0).entries;
    }
    let patients = sites[0].node.patients(&net).unwrap();
    let mut i = 0u64;
    while written < 5000 {
        let p = &patients[i as usize % patients.len()];
        let value = format!("\"v{i}\"");
        let changed = sites[0]
            .node
            .edit_member(&net, p, "Patient", p, "language", Some(&value), T0 + i)
            .unwrap();
        written += usize::from(changed);
        i += 1;
        if i.is_multiple_of(1000) {
            let writer = &mut sites[0];
            sync(&mut writer.node, &mut writer.relay, &net, T0).unwrap();
        }
    }
    settle_sites(&mut sites, &net, 10);

    // Back online, from the cursor in its own store.
    let started = Instant::now();
    let relay = NatsRelay::connect(&options(&url, &names[2], 1)).unwrap();
    let mut back = vec![Site { node: away, relay }];
    let returning = &mut back[0];
    let report = checked(sync(&mut returning.node, &mut returning.relay, &net, T0).unwrap());
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        report.received.accepted >= 5000,
        "{:?}",
        report.received.accepted
    );
    sites.append(&mut back);
    settle_sites(&mut sites, &net, 5);
    assert_converged(&mut sites, &net);
    away = sites.pop().unwrap().node;
    assert!(away.verify_ledger(&net).unwrap().is_clean());

    let store = std::env::var_os("CARELEDGER_NATS_DIR").map(|d| PathBuf::from(d).join("single"));
    let scanned = assert_no_plaintext_on_server(&url, &net, store);
    let _ = writeln!(
        std::io::stderr(),
        "offline node caught up on {} entries in {seconds:.1} s; {scanned} relay messages \
         scanned, no record plaintext",
        report.received.accepted
    );
}

/// One patient whose chart is about `bytes` of hard-to-compress text (clinical
/// notes on Observations), so the entry importing it is that large.
fn large_chart(patient: &str, bytes: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,";
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = format!(
        r#"{{"resourceType":"Patient","id":"{patient}","gender":"female","birthDate":"1961-04-02"}}"#
    );
    out.push('\n');
    let per_note = 1_000;
    for i in 0..bytes.div_ceil(per_note) {
        let note: String = (0..per_note)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        out.push_str(&format!(
            r#"{{"resourceType":"Observation","id":"{patient}-obs-{i}","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"34109-9","display":"Note"}}]}},"subject":{{"reference":"Patient/{patient}"}},"effectiveDateTime":"2024-01-01T10:00:00Z","note":[{{"text":"{note}"}}]}}"#
        ));
        out.push('\n');
    }
    out.into_bytes()
}

/// A chart big enough that its entry needs chunks on this server, or None
/// (with SKIPPED) when the server's max_payload is too large to exercise them.
fn chart_over_max_payload(relay: &NatsRelay, patient: &str) -> Option<Vec<u8>> {
    let max_payload = relay.max_payload();
    if max_payload == 0 || max_payload > 4 << 20 {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the server's max_payload ({max_payload}) is too large to exercise chunking; \
             run it with the default 1 MB"
        );
        return None;
    }
    // The change travels compressed: the JSON around the notes shrinks to
    // little and the random notes to about three quarters, so a message of
    // about 2.4 × max_payload: three chunks.
    Some(large_chart(patient, max_payload * 3, 16))
}

#[test]
fn entries_above_max_payload_travel_in_chunks() {
    let Some(url) = server(TEST_SERVER_ENV) else {
        return;
    };
    let tag = run_tag();
    let mut sites: Vec<Site> = (0..2)
        .map(|i| site(&url, &format!("chunks-{tag}-{i}"), 1))
        .collect();
    let Some(chart) = chart_over_max_payload(&sites[0].relay, "big-chart") else {
        return;
    };
    let net = form(&mut sites);
    sites[0]
        .node
        .import_fhir(&net, "big.ndjson", &chart, T0)
        .unwrap();
    let max_payload = sites[0].relay.max_payload();
    let largest = sites[0]
        .node
        .outgoing(1000)
        .unwrap()
        .iter()
        .map(|m| m.message.len())
        .max()
        .unwrap();
    assert!(
        largest > 2 * max_payload,
        "the import's largest message ({largest} bytes) needs chunks under max_payload {max_payload}"
    );
    settle_sites(&mut sites, &net, 5);
    assert_converged(&mut sites, &net);
    assert_eq!(
        sites[1]
            .node
            .export_patient(&net, "big-chart", careledger::node::ExportFormat::Ndjson)
            .unwrap()
            .lines()
            .count(),
        chart
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
    );
    for site in &mut sites {
        assert_eq!(site.relay.take_chunk_problems(), vec![]);
    }
    let _ = writeln!(
        std::io::stderr(),
        "a {largest} byte message crossed a server with max_payload {max_payload} in chunks"
    );
}

#[test]
fn missing_reordered_and_forged_chunks_are_detected() {
    use careledger::relay::chunk::{split, ChunkError, ChunkRef, Manifest};
    use careledger::relay::nats::ChunkProblem;
    use careledger::wire::WireMessage;
    use sha2::{Digest, Sha256};

    let Some(url) = server(TEST_SERVER_ENV) else {
        return;
    };
    let tag = run_tag();
    let mut sites: Vec<Site> = (0..2)
        .map(|i| site(&url, &format!("forged-{tag}-{i}"), 1))
        .collect();
    let Some(chart) = chart_over_max_payload(&sites[0].relay, "big-chart") else {
        return;
    };
    let net = form(&mut sites);
    let frame_size = sites[0].relay.max_payload() - 1_024;
    sites[0]
        .node
        .import_fhir(&net, "big.ndjson", &chart, T0)
        .unwrap();
    // A publishes its outbox by hand: small messages as they are, the large
    // entry as frames and several manifests, most of them wrong.
    let outgoing = sites[0].node.outgoing(1000).unwrap();
    let (large, small): (Vec<_>, Vec<_>) =
        outgoing.iter().partition(|m| m.message.len() > frame_size);
    assert_eq!(large.len(), 1, "one entry above max_payload");
    let large = &large[0].message;
    assert!(matches!(
        WireMessage::decode(large),
        Ok(WireMessage::Entry(_))
    ));
    let a = &mut sites[0];
    for message in &small {
        a.relay.publish(&net, &message.message).unwrap();
    }
    let store = |a: &mut Site, frames: &[Vec<u8>]| -> Vec<u64> {
        frames
            .iter()
            .map(|f| {
                a.relay
                    .publish_raw_for_testing(&net, true, false, f)
                    .unwrap()
            })
            .collect()
    };
    let parts = split(large, frame_size, [0x21; 16]).unwrap();
    assert!(parts.frames.len() >= 3, "{} chunks", parts.frames.len());
    let positions = store(a, &parts.frames);
    let genuine = parts.manifest(&positions).unwrap();
    let mut expected = Vec::new();
    let manifest_at = |a: &mut Site, bytes: &[u8]| -> u64 {
        a.relay
            .publish_raw_for_testing(&net, false, true, bytes)
            .unwrap()
    };

    // Missing: the last chunk points where nothing is stored.
    let last = genuine.chunks.len() - 1;
    let mut missing = genuine.clone();
    missing.chunks[last].position += 1_000_000;
    let count = genuine.chunks.len() as u32;
    expected.push(ChunkProblem {
        sequence: manifest_at(a, &missing.encode()),
        error: ChunkError::Missing {
            index: last as u32,
            count,
        },
    });
    // Reordered: the frames stored again with chunks 1 and 2 swapped, listed
    // in stream order with their true hashes.
    let mut swapped = parts.frames.clone();
    swapped.swap(1, 2);
    let swapped_at = store(a, &swapped);
    let reordered = Manifest {
        chunks: swapped_at
            .iter()
            .zip(&swapped)
            .map(|(&position, frame)| ChunkRef {
                position,
                frame_hash: Sha256::digest(frame).into(),
            })
            .collect(),
        ..genuine.clone()
    };
    expected.push(ChunkProblem {
        sequence: manifest_at(a, &reordered.encode()),
        error: ChunkError::Reordered { index: 1, found: 2 },
    });
    // Forged: chunk 1 altered by one bit, listed with the genuine hash.
    let mut altered = parts.frames[1].clone();
    altered[500] ^= 0x10;
    let mut forged = genuine.clone();
    forged.chunks[1].position = store(a, &[altered])[0];
    forged.chunks[2].position = store(a, &[parts.frames[2].clone()])[0];
    for (i, chunk) in forged.chunks.iter_mut().enumerate().skip(3) {
        chunk.position = store(a, &[parts.frames[i].clone()])[0];
    }
    expected.push(ChunkProblem {
        sequence: manifest_at(a, &forged.encode()),
        error: ChunkError::Forged { index: 1 },
    });
    // Not a manifest at all.
    expected.push(ChunkProblem {
        sequence: manifest_at(a, b"not a manifest"),
        error: Manifest::decode(b"not a manifest").unwrap_err(),
    });
    // Finally the genuine manifest.
    manifest_at(a, &genuine.encode());
    let ids: Vec<i64> = outgoing.iter().map(|m| m.id).collect();
    a.node.ack_outgoing_all(&ids).unwrap();

    let b = &mut sites[1];
    let report = checked(sync(&mut b.node, &mut b.relay, &net, T0).unwrap());
    assert_eq!(report.received.held, 0);
    assert_eq!(b.relay.take_chunk_problems(), expected);
    assert_converged(&mut sites, &net);
    let _ = writeln!(
        std::io::stderr(),
        "{} broken chunked messages detected and skipped; the genuine one delivered once",
        expected.len()
    );
}
