//! The two-node world the kill -9 durability test drives: a writer node and a
//! peer, each on its own SQLite file, and a file relay, all in one directory.
//!
//! The `crash_writer` binary opens this world and loops over real operations
//! ([`Op`]): FHIR imports of the in-repo Synthea data, chart edits at either
//! node, syncs through the relay, MLS self-updates, erasures of a chart, and
//! time-limited research consents shared into a study network and then cut
//! off by the clock ([`Node::tick`]). After each operation
//! returns success it prints one acknowledgement line ([`Ack`]) and flushes;
//! the test kills the process at a random instant and checks the reopened
//! stores against every acknowledgement it read.

use std::path::Path;

use careledger::body::EraseScope;
use careledger::consent::{Consent, Grantee, Purpose};
use careledger::entry::Entry;
use careledger::node::{EraseError, ExportFormat, NetworkId, Node};
use careledger::relay::LocalRelay;
use careledger::sync::sync;

use crate::{data, file_node, form_network, reopen, settle, T0};

/// Name (and file stem) of the node the writer imports at.
pub const WRITER: &str = "writer.example";
/// Name (and file stem) of its peer.
pub const PEER: &str = "peer.example";
/// File name of the relay.
pub const RELAY: &str = "relay.sqlite";

/// Bulk files the writer imports, in turn (small ones, so the store grows slowly).
pub const IMPORTS: &[&str] = &[
    "bulk-10-patients/Patient.000.ndjson",
    "bulk-10-patients/AllergyIntolerance.000.ndjson",
    "bulk-10-patients/Immunization.000.ndjson",
];

/// The charts that hold their `Patient` resource. A chart erased and then
/// written again by a later import (an `AllergyIntolerance` file) is a new
/// chart without one.
pub fn charts_with_patient(node: &mut Node, net: &NetworkId) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for patient in node.patients(net).map_err(|e| e.to_string())? {
        let Ok(text) = node.export_patient(net, &patient, ExportFormat::Ndjson) else {
            continue;
        };
        if text.contains("\"resourceType\":\"Patient\"") {
            out.push(patient);
        }
    }
    Ok(out)
}

/// Both nodes, the relay and the networks they share.
pub struct World {
    /// The node that imports.
    pub writer: Node,
    /// The other member.
    pub peer: Node,
    /// The file relay.
    pub relay: LocalRelay,
    /// The care network.
    pub net: NetworkId,
    /// A study network the writer shares consented charts into.
    pub study: NetworkId,
}

/// Create the world in an empty `dir`: two nodes in one network, the
/// patients imported at the writer and synced to the peer.
pub fn create_world(dir: &Path) -> World {
    let mut relay = LocalRelay::open(&dir.join(RELAY)).expect("relay");
    let mut writer = file_node(dir, WRITER);
    let mut peer = file_node(dir, PEER);
    let net = form_network(&mut [&mut writer, &mut peer], &mut relay, "care");
    let study = form_network(&mut [&mut writer, &mut peer], &mut relay, "study");
    writer
        .import_fhir(&net, IMPORTS[0], &data(IMPORTS[0]), T0)
        .expect("import");
    settle(&mut [&mut writer, &mut peer], &mut relay, &net, T0, 10);
    World {
        writer,
        peer,
        relay,
        net,
        study,
    }
}

/// Reopen the world `create_world` made in `dir`.
pub fn open_world(dir: &Path) -> World {
    let relay = LocalRelay::open(&dir.join(RELAY)).expect("relay");
    let mut writer = reopen(dir, WRITER);
    let peer = reopen(dir, PEER);
    let networks = writer.networks().expect("networks");
    let by_label = |label: &str| {
        networks
            .iter()
            .find(|n| n.label == label)
            .expect("network")
            .id
            .clone()
    };
    World {
        net: by_label("care"),
        study: by_label("study"),
        writer,
        peer,
        relay,
    }
}

/// The ids (hex) of a node's stored entries, in local order.
pub fn entry_ids(node: &Node, net: &NetworkId) -> Vec<String> {
    node.ledger_entries(net)
        .expect("ledger entries")
        .iter()
        .map(|bytes| hex_id(&Entry::decode(bytes).expect("stored entry decodes").id().0))
        .collect()
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One operation of the writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Import the n-th of [`IMPORTS`] (mod its length) at the writer.
    Import(usize),
    /// Edit a patient's chart at the writer (true) or the peer (false).
    Edit(bool, usize),
    /// Sync the writer (true) or the peer (false) with the relay.
    Sync(bool),
    /// MLS self-update at the writer (true) or the peer (false), then a sync
    /// of that node so the commit is decided.
    Update(bool),
    /// The writer erases the n-th patient's chart (crypto-shredding).
    Erase(usize),
    /// The writer records a research consent for the n-th patient valid for
    /// a short period, shares the care network into the study, then lets
    /// the clock pass the period's end ([`Node::tick`] cuts the chart off).
    Expire(usize),
}

impl Op {
    /// The operation a random word picks.
    pub fn pick(word: u64) -> Op {
        let arg = (word >> 8) as usize;
        match word % 18 {
            0..=2 => Op::Import(arg),
            3..=6 => Op::Edit(true, arg),
            7..=8 => Op::Edit(false, arg),
            9..=11 => Op::Sync(true),
            12..=13 => Op::Sync(false),
            14 => Op::Update(true),
            15 => Op::Update(false),
            16 => Op::Erase(arg),
            _ => Op::Expire(arg),
        }
    }

    /// The node the operation wrote to (writer: true).
    pub fn at_writer(self) -> bool {
        match self {
            Op::Import(_) | Op::Erase(_) | Op::Expire(_) => true,
            Op::Edit(w, _) | Op::Sync(w) | Op::Update(w) => w,
        }
    }
}

/// Run one operation; `now` is its simulated time.
pub fn run(world: &mut World, op: Op, now: u64) -> Result<(), String> {
    let World {
        writer,
        peer,
        relay,
        net,
        study,
    } = world;
    let node = if op.at_writer() { writer } else { peer };
    match op {
        Op::Import(n) => {
            let file = IMPORTS[n % IMPORTS.len()];
            node.import_fhir(net, file, &data(file), now)
                .map(|_| ())
                .map_err(|e| format!("import: {e}"))
        }
        Op::Edit(_, n) => {
            let patients = charts_with_patient(node, net).map_err(|e| format!("patients: {e}"))?;
            if patients.is_empty() {
                return Ok(());
            }
            let patient = &patients[n % patients.len()];
            let value = if n / patients.len() % 2 == 0 {
                "true"
            } else {
                "false"
            };
            node.edit_member(net, patient, "Patient", patient, "active", Some(value), now)
                .map(|_| ())
                .map_err(|e| format!("edit: {e}"))
        }
        Op::Sync(_) => sync(node, relay, net, now)
            .map(|_| ())
            .map_err(|e| format!("sync: {e}")),
        Op::Update(_) => {
            if !node.commit_pending(net).map_err(|e| e.to_string())? {
                node.update_keys(net).map_err(|e| format!("update: {e}"))?;
            }
            sync(node, relay, net, now)
                .map(|_| ())
                .map_err(|e| format!("sync after update: {e}"))
        }
        Op::Erase(n) => {
            let patients = node.patients(net).map_err(|e| format!("patients: {e}"))?;
            if patients.is_empty() {
                return Ok(());
            }
            let patient = &patients[n % patients.len()];
            match node.erase(net, patient, EraseScope::Chart, now) {
                Ok(_) | Err(EraseError::AlreadyErased) => Ok(()),
                Err(error) => Err(format!("erase: {error}")),
            }
        }
        Op::Expire(n) => {
            let patients = node.patients(net).map_err(|e| format!("patients: {e}"))?;
            if patients.is_empty() {
                return Ok(());
            }
            let patient = &patients[n % patients.len()];
            let consent = Consent::grant(
                &format!("c-{patient}"),
                patient,
                Grantee::Network(study.clone()),
                vec![Purpose::Research],
                vec![],
                Some((now.saturating_sub(1), now + 5)),
            )
            .map_err(|e| format!("consent: {e}"))?;
            node.record_consent(net, &consent, now)
                .map_err(|e| format!("record consent: {e}"))?;
            node.share_to_network(net, study, Purpose::Research, now)
                .map_err(|e| format!("share: {e}"))?;
            node.tick(now + 10)
                .map(|_| ())
                .map_err(|e| format!("tick: {e}"))
        }
    }
}

/// One acknowledgement line: after operation `op` returned success, `node`
/// (`w` or `p`) was at MLS `epoch` and held the listed new entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// Operation number within the writer run.
    pub op: u64,
    /// `w` (writer) or `p` (peer).
    pub node: char,
    /// MLS epoch of that node after the operation.
    pub epoch: u64,
    /// Entries the node stored during the operation (hex ids).
    pub entries: Vec<String>,
}

impl Ack {
    /// The line the writer prints.
    pub fn line(&self) -> String {
        let entries = if self.entries.is_empty() {
            "-".to_owned()
        } else {
            self.entries.join(",")
        };
        format!("ack {} {} {} {}", self.op, self.node, self.epoch, entries)
    }

    /// Parse a complete line; `None` for anything else.
    pub fn parse(line: &str) -> Option<Ack> {
        let mut parts = line.split(' ');
        if parts.next()? != "ack" {
            return None;
        }
        let op = parts.next()?.parse().ok()?;
        let node = parts.next()?.chars().next()?;
        let epoch = parts.next()?.parse().ok()?;
        let entries = match parts.next()? {
            "-" => Vec::new(),
            list => list.split(',').map(str::to_owned).collect(),
        };
        if parts.next().is_some() || !matches!(node, 'w' | 'p') {
            return None;
        }
        Some(Ack {
            op,
            node,
            epoch,
            entries,
        })
    }
}

/// splitmix64: the writer's small deterministic random source.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
