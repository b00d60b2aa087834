//! Tamper at rest: flip bits, bytes and short runs in a node's SQLite file,
//! 10,000 seeded trials spread over the pages of each kind of data (ledger
//! entries, key store, MLS state, cached records, the remaining tables and
//! SQLite's own pages) plus random offsets, then reopen the copy and use it:
//! open, list patients, export every chart, verify the ledger, commit and
//! sync with the peer.
//!
//! The store authenticates each row when it is read (its MAC), not the
//! whole file at open. So every trial must end in exactly one of:
//! - detected on use: a typed error (the open refusing the file, a row
//!   MAC, an AEAD, signature, hash or integrity failure) or a ledger
//!   problem report;
//! - not read by the workload, and found by the audit: the workload's
//!   results are exactly the original's (so nothing altered was used), and
//!   `Store::verify` on the tampered file reports the change;
//! - benign: proven by the copy's logical content (every row of every table,
//!   the schema, `user_version`) being identical to the original's, with
//!   `PRAGMA integrity_check` ok (indexes match their tables), and the audit
//!   clean. Every 25th benign trial is also used in full and must give the
//!   original's results.
//!
//! - index damaged: every table row intact (only `PRAGMA integrity_check`
//!   differs), but a damaged index made a lookup miss rows the workload
//!   reads, as a deleted row would (see the README's known limits); the
//!   audit reports it.
//! - rows lost: a damaged table page hid whole rows from the workload,
//!   again as deleted rows would: every chart it exported is the original's
//!   chart of that patient, only some patients are missing; the audit
//!   reports it.
//!
//! Anything else (altered data used, an altered file the audit calls
//! clean, a panic) fails the test. `CARELEDGER_TAMPER_TRIALS` (default
//! 2,000 in `cargo test`; the full run is 10,000) and `CARELEDGER_TAMPER_SEED` change the run.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use careledger::keys::StorageKey;
use careledger::node::{ExportFormat, NetworkId, Node};
use careledger::relay::MemoryRelay;
use careledger::store::Store;
use careledger::sync::sync;
use careledger_scenarios::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};

const NODE: &str = "hospital-a.example";
const PEER: &str = "hospital-b.example";

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
        Err(_) => default,
    }
}

/// The realistic store: two nodes in a network, patients and allergies
/// imported, charts edited at both, synced, a self-update, records cached.
struct Original {
    node: Vec<u8>,
    peer: Vec<u8>,
    relay: MemoryRelay,
    net: NetworkId,
    dump: Dump,
    used: Used,
    pages: Vec<(String, u32)>,
    page_size: usize,
}

fn build(dir: &Path) -> Original {
    let mut relay = MemoryRelay::new();
    let mut a = file_node(dir, NODE);
    let mut b = file_node(dir, PEER);
    let net = network_sharing_patients(&mut [&mut a, &mut b], &mut relay);
    import_bulk(&mut a, &net, "AllergyIntolerance", T0);
    let patients = a.patients(&net).unwrap();
    for (i, p) in patients.iter().enumerate().take(4) {
        let node = if i % 2 == 0 { &mut a } else { &mut b };
        node.edit_member(&net, p, "Patient", p, "active", Some("true"), T0 + i as u64)
            .unwrap();
    }
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 8);
    b.update_keys(&net).unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 8);
    assert_eq!(a.epoch(&net).unwrap(), 2);
    drop((a, b));
    let node_path = dir.join(format!("{NODE}.sqlite"));
    for suffix in ["-wal", "-shm"] {
        assert!(
            !dir.join(format!("{NODE}.sqlite{suffix}")).exists(),
            "closing checkpoints the WAL into the file"
        );
    }
    let node = std::fs::read(&node_path).unwrap();
    let peer = std::fs::read(dir.join(format!("{PEER}.sqlite"))).unwrap();
    let dump = dump(&node_path).expect("original dumps");
    let conn = rusqlite::Connection::open(&node_path).unwrap();
    let page_size: usize = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .unwrap() as usize;
    let pages: Vec<(String, u32)> = conn
        .prepare("SELECT name, pageno FROM dbstat ORDER BY pageno")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    let mut original = Original {
        node,
        peer,
        relay,
        net,
        dump,
        used: Used::default(),
        pages,
        page_size,
    };
    let trial = dir.join("trial");
    std::fs::create_dir_all(&trial).unwrap();
    original.used =
        use_copy(&original, &trial, &original.node.clone()).expect("the original works");
    original
}

/// A column value: SQLite type and bytes (text kept as bytes: a flip may
/// leave it invalid UTF-8).
type Value = (u8, Vec<u8>);

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => (0, Vec::new()),
        ValueRef::Integer(i) => (1, i.to_be_bytes().to_vec()),
        ValueRef::Real(f) => (2, f.to_bits().to_be_bytes().to_vec()),
        ValueRef::Text(t) => (3, t.to_vec()),
        ValueRef::Blob(b) => (4, b.to_vec()),
    }
}

fn text(t: &str) -> Value {
    (3, t.as_bytes().to_vec())
}

/// Every row of every table, the schema and `user_version`, in order.
type Dump = BTreeMap<String, Vec<Vec<Value>>>;

fn dump(path: &Path) -> rusqlite::Result<Dump> {
    let conn = rusqlite::Connection::open(path)?;
    let mut out = Dump::new();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    out.insert(
        "user_version".into(),
        vec![vec![(1, version.to_be_bytes().to_vec())]],
    );
    out.insert(
        "integrity_check".into(),
        rows(&conn, "PRAGMA integrity_check")?,
    );
    let schema = rows(
        &conn,
        "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY type, name",
    )?;
    let tables: Vec<String> = schema
        .iter()
        .filter(|row| row[0] == text("table"))
        .filter_map(|row| match &row[1] {
            (3, name) => String::from_utf8(name.clone()).ok(),
            _ => None,
        })
        .collect();
    out.insert("sqlite_master".into(), schema);
    for table in tables {
        let sql = format!(
            "SELECT rowid, * FROM \"{}\" ORDER BY rowid",
            table.replace('"', "\"\"")
        );
        out.insert(table, rows(&conn, &sql)?);
    }
    Ok(out)
}

fn rows(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt.query_map([], |r| (0..n).map(|i| r.get_ref(i).map(value)).collect())?;
    rows.collect()
}

/// What using the node shows (hashed: no chart content in test output).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Used {
    patients: usize,
    /// Each exported chart's hash, by patient.
    charts: BTreeMap<String, [u8; 32]>,
    entries: usize,
    heads: usize,
    epoch_after_commit: u64,
}

/// Open a tampered copy and use everything; `Err` is a typed error (or
/// ledger problem) that detected the change.
fn use_copy(original: &Original, dir: &Path, bytes: &[u8]) -> Result<Used, String> {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let path = dir.join(format!("{NODE}.sqlite"));
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(dir.join(format!("{PEER}.sqlite")), &original.peer).unwrap();
    let key = StorageKey::from_bytes([7; 32]);
    let store = Store::open(&path, &key).map_err(|e| format!("open: {e}"))?;
    let mut a = Node::open(store).map_err(|e| format!("node: {e}"))?;
    let net = &original.net;
    let patients = a.patients(net).map_err(|e| format!("patients: {e}"))?;
    let mut charts = BTreeMap::new();
    for p in &patients {
        let chart = a
            .export_patient(net, p, ExportFormat::Bundle)
            .map_err(|e| format!("export: {e}"))?;
        charts.insert(p.clone(), Sha256::digest(chart.as_bytes()).into());
    }
    let report = a.verify_ledger(net).map_err(|e| format!("verify: {e}"))?;
    if !report.is_clean() {
        return Err(format!("verify: {} problems", report.problems.len()));
    }
    let entries = a
        .ledger_entries(net)
        .map_err(|e| format!("entries: {e}"))?
        .len();
    let heads = a.heads(net).map_err(|e| format!("heads: {e}"))?.len();
    // Commit, then sync both ways with the (untampered) peer.
    let mut relay = original.relay.clone();
    let mut b = reopen(dir, PEER);
    a.update_keys(net).map_err(|e| format!("commit: {e}"))?;
    for _ in 0..4 {
        sync(&mut a, &mut relay, net, T0 + 100).map_err(|e| format!("sync: {e}"))?;
        sync(&mut b, &mut relay, net, T0 + 100).expect("the peer is untouched");
    }
    let epoch = a.epoch(net).map_err(|e| format!("epoch: {e}"))?;
    if epoch != b.epoch(net).unwrap()
        || a.epoch_authenticator(net)
            .map_err(|e| format!("authenticator: {e}"))?
            != b.epoch_authenticator(net).unwrap()
    {
        return Err("the peer does not agree on the epoch authenticator".into());
    }
    if a.heads(net).map_err(|e| format!("heads: {e}"))? != b.heads(net).unwrap() {
        return Err("the peer does not agree on the heads".into());
    }
    Ok(Used {
        patients: patients.len(),
        charts,
        entries,
        heads,
        epoch_after_commit: epoch,
    })
}

/// What `used` read is all the original's, with some charts missing: the
/// trace of rows hidden from the workload, not of altered ones.
fn only_rows_missing(used: &Used, original: &Used) -> bool {
    used.charts.len() < original.charts.len()
        && used.patients == used.charts.len()
        && used
            .charts
            .iter()
            .all(|(patient, chart)| original.charts.get(patient) == Some(chart))
        && (used.entries, used.heads, used.epoch_after_commit)
            == (
                original.entries,
                original.heads,
                original.epoch_after_commit,
            )
}

/// The full audit of a tampered file, on a fresh copy: `Ok(true)` clean,
/// `Ok(false)` problems found, `Err` the file does not even open.
fn audit(dir: &Path, bytes: &[u8]) -> Result<bool, String> {
    let path = dir.join("audit.sqlite");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, bytes).unwrap();
    let store = Store::open(&path, &StorageKey::from_bytes([7; 32])).map_err(|e| e.to_string())?;
    let report = store.verify().map_err(|e| e.to_string())?;
    Ok(report.is_clean())
}

/// The kinds of data the trials aim at: region name and the tables (and
/// their indexes) whose pages it covers.
const REGIONS: &[(&str, &[&str])] = &[
    (
        "entries",
        &[
            "entries",
            "sqlite_autoindex_entries_1",
            "sqlite_autoindex_entries_2",
            "outbox",
            "pending",
            "pending_by_author",
            "relayed",
            "forks",
        ],
    ),
    (
        "key store",
        &[
            "meta",
            "epochs",
            "record_keys",
            "members",
            "members_by_author",
            "sqlite_autoindex_epochs_1",
            "sqlite_autoindex_record_keys_1",
            "withheld_keys",
            "withholding",
            "erased",
            "shredded_keys",
            "removed_members",
            "consent_due",
            "shares",
        ],
    ),
    ("MLS state", &["openmls_"]),
    (
        "records",
        &[
            "records",
            "record_increments",
            "sqlite_autoindex_records_1",
            "sqlite_autoindex_record_increments_1",
        ],
    ),
    ("other pages", &[]),
    ("random offset", &[]),
];

fn region_of(name: &str) -> usize {
    for (index, (_, tables)) in REGIONS.iter().enumerate().take(4) {
        if tables
            .iter()
            .any(|t| name == *t || (t.ends_with('_') && name.starts_with(t)))
        {
            return index;
        }
    }
    4
}

/// The unused range of a b-tree page: after the cell pointer array, before
/// the cell content area (file format §1.6).
fn unused_gap(page: &[u8], first: bool) -> std::ops::Range<usize> {
    let at = if first { 100 } else { 0 };
    let header = match page[at] {
        2 | 5 => 12,
        10 | 13 => 8,
        _ => return 0..0,
    };
    let cells = u16::from_be_bytes([page[at + 3], page[at + 4]]) as usize;
    let content = match u16::from_be_bytes([page[at + 5], page[at + 6]]) as usize {
        0 => 65_536,
        n => n,
    };
    (at + header + 2 * cells).min(page.len())..content.min(page.len())
}

#[derive(Default, Clone, Copy)]
struct Tally {
    /// A typed error while using the copy.
    detected: u64,
    /// Of those, refused by the open (key check, schema digest, SQLite).
    at_open: u64,
    /// Never read by the workload (results unchanged), reported by the audit.
    by_audit: u64,
    /// Every row intact but an index damaged, so a lookup missed rows the
    /// workload would have read (no data altered); reported by the audit.
    index_by_audit: u64,
    /// Whole rows hidden by a damaged table page: what was read is the
    /// original's, some of it missing (as deleted rows); reported by the audit.
    rows_by_audit: u64,
    benign: u64,
    benign_used: u64,
    failures: u64,
}

#[test]
fn every_flip_at_rest_is_detected_or_provably_benign() {
    let trials = env_number("CARELEDGER_TAMPER_TRIALS", 2_000);
    let seed = env_number("CARELEDGER_TAMPER_SEED", 0x7A3F_0010);
    let base = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let original = build(base.path());
    let trial_dir: PathBuf = base.path().join("trial");
    let mut by_region: Vec<Vec<u32>> = vec![Vec::new(); 5];
    for (name, page) in &original.pages {
        by_region[region_of(name)].push(*page);
    }
    for (index, pages) in by_region.iter().enumerate() {
        assert!(!pages.is_empty(), "no pages hold {}", REGIONS[index].0);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tally = vec![Tally::default(); REGIONS.len()];
    let mut failures = Vec::new();
    let mut benign_seen = 0u64;
    for trial in 0..trials {
        let region = (trial as usize) % REGIONS.len();
        let mut bytes = original.node.clone();
        let at = if region == 5 {
            rng.random_range(0..bytes.len())
        } else {
            let pages = &by_region[region];
            let page = pages[rng.random_range(0..pages.len())] as usize;
            let start = (page - 1) * original.page_size;
            let gap = unused_gap(&original.node[start..start + original.page_size], page == 1);
            // Mostly outside the gap between cell pointers and cell content,
            // where the page's data is; now and then anywhere in the page.
            loop {
                let offset = rng.random_range(0..original.page_size);
                if !gap.contains(&offset) || rng.random_range(0..5) == 0 {
                    break start + offset;
                }
            }
        };
        let what = match rng.random_range(0..10) {
            0..5 => {
                bytes[at] ^= 1 << rng.random_range(0..8);
                "bit"
            }
            5..8 => {
                bytes[at] ^= rng.random_range(1..=255u8);
                "byte"
            }
            _ => {
                let len = rng.random_range(2..=8).min(bytes.len() - at);
                for byte in &mut bytes[at..at + len] {
                    *byte ^= rng.random_range(1..=255u8);
                }
                "run"
            }
        };
        let label = format!("trial {trial} ({}, {what} at {at})", REGIONS[region].0);
        let scratch = base.path().join("dump.sqlite");
        std::fs::write(&scratch, &bytes).unwrap();
        let dumped = dump(&scratch);
        let same = dumped.as_ref().is_ok_and(|d| *d == original.dump);
        let differs: Vec<String> = match &dumped {
            Ok(d) => original
                .dump
                .keys()
                .chain(d.keys())
                .filter(|k| d.get(*k) != original.dump.get(*k))
                .cloned()
                .collect(),
            Err(e) => vec![format!("unreadable: {e}")],
        };
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(base.path().join(format!("dump.sqlite{suffix}")));
        }
        let t = &mut tally[region];
        let audited = catch_unwind(AssertUnwindSafe(|| audit(base.path(), &bytes)));
        let Ok(audited) = audited else {
            t.failures += 1;
            failures.push(format!("{label}: the audit panicked"));
            continue;
        };
        if same {
            if audited != Ok(true) {
                t.failures += 1;
                failures.push(format!(
                    "{label}: the audit flags an unchanged file: {audited:?}"
                ));
                continue;
            }
            t.benign += 1;
            benign_seen += 1;
            if benign_seen % 25 != 1 {
                continue;
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| use_copy(&original, &trial_dir, &bytes)));
        match (same, outcome) {
            (_, Err(_)) => {
                t.failures += 1;
                failures.push(format!("{label}: panicked"));
            }
            (true, Ok(Ok(used))) if used == original.used => t.benign_used += 1,
            (true, Ok(Ok(_))) => {
                t.failures += 1;
                failures.push(format!("{label}: same content, different results"));
            }
            (true, Ok(Err(error))) => {
                t.failures += 1;
                failures.push(format!("{label}: same content, yet failed: {error}"));
            }
            (false, Ok(Err(error))) => {
                t.detected += 1;
                t.at_open += u64::from(error.starts_with("open:"));
            }
            // Every table row is intact (only SQLite's index check differs):
            // a damaged index made a lookup miss rows, as a deleted row would.
            // Nothing altered was read; the audit must report it.
            (false, Ok(Ok(used)))
                if used != original.used
                    && differs.iter().all(|d| d == "integrity_check")
                    && audited != Ok(true) =>
            {
                t.index_by_audit += 1;
            }
            // Whole rows hidden (a damaged table page): everything read is
            // the original's, only some charts are missing.
            (false, Ok(Ok(used)))
                if used != original.used
                    && only_rows_missing(&used, &original.used)
                    && audited != Ok(true) =>
            {
                t.rows_by_audit += 1;
            }
            (false, Ok(Ok(used))) if used != original.used => {
                t.failures += 1;
                failures.push(format!(
                    "{label}: altered content was used (differs: {differs:?})"
                ));
            }
            (false, Ok(Ok(_))) => match audited {
                Ok(true) => {
                    t.failures += 1;
                    failures.push(format!(
                        "{label}: altered content the audit calls clean (differs: {differs:?})"
                    ));
                }
                Ok(false) | Err(_) => t.by_audit += 1,
            },
        }
    }
    eprintln!(
        "tamper at rest: {trials} trials on a {} KiB store",
        original.node.len() / 1024
    );
    for (index, t) in tally.iter().enumerate() {
        eprintln!(
            "  {:<14} detected on use {:>5} ({:>5} at open)  unread, found by audit {:>4}  \
             index damaged, found by audit {:>3}  rows lost, found by audit {:>3}  \
             benign {:>5} (used {:>3})  failures {}",
            REGIONS[index].0,
            t.detected,
            t.at_open,
            t.by_audit,
            t.index_by_audit,
            t.rows_by_audit,
            t.benign,
            t.benign_used,
            t.failures
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if trials >= 1_000 {
        for (index, t) in tally.iter().enumerate() {
            assert!(
                t.detected + t.by_audit > 0 && t.benign_used > 0,
                "{}: the trials reach both data and slack ({} detected, {} by audit, {} benign)",
                REGIONS[index].0,
                t.detected,
                t.by_audit,
                t.benign
            );
        }
    }
}
