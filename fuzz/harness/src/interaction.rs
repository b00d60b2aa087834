//! Interaction target: a seed and an action byte stream drive three nodes
//! through create, invite, join, remove, update, write, sync, drop,
//! duplicate, reorder and restart.
//!
//! The nodes are real: file stores in a temporary directory, real MLS, real
//! sealed entries, real Synthea records (a few patients and their allergies
//! from the in-repo bulk data). Between them sits [`Transport`], a relay whose
//! log is the total order DESIGN §5 relies on, in front of which published
//! messages wait "in flight": actions deliver them in any order (reorder),
//! lose them (drop) or deliver them twice (duplicate). Commit races come by
//! themselves: two members propose on the same epoch and the log decides.
//!
//! Input: the first 8 bytes seed the generator that picks secondary
//! arguments; every further byte is one action (at most [`MAX_ACTIONS`]): the
//! low 4 bits choose the operation, the high 4 bits its main argument.
//!
//! After every action the model is checked:
//! - every record change a node holds opens, with that node's keys, to exactly
//!   the Automerge change its author wrote (captured at the author right after
//!   the write, when the author's own export showed the written value);
//! - a removed member opens nothing written at an epoch after its removal and
//!   holds no key of those epochs;
//! - members at one epoch agree on its authenticator and roster;
//! - an operation refused with a typed error changed nothing; an operation
//!   that the model says is valid succeeds; a restart changes nothing.
//!
//! At the end every message is delivered reliably and the current members must
//! converge: same epoch, authenticator, roster, heads and records, every
//! written entry present, ledgers clean, nothing held or pending.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use careledger::entry::{AuthorId, Entry, EntryId, EntryKind};
use careledger::keys::StorageKey;
use careledger::node::{
    EditError, ExportFormat, ImportError, NetworkError, NetworkId, Node, ReceiveReport,
    RejectEntryError,
};
use careledger::record::doc::RecordDoc;
use careledger::relay::{Relay, RelayError, RelayMessage};
use careledger::store::Store;
use careledger::sync::{join_from_relay, publish_outbox, sync, SyncError};
use careledger::wire::WireMessage;

/// Longest action stream run per input.
pub const MAX_ACTIONS: usize = 48;
/// Networks one run may create.
const MAX_NETWORKS: usize = 2;
/// Node names (their MLS credentials).
const NAMES: [&str; 3] = ["hospital-a.example", "hospital-b.example", "lab.example"];
/// Start of simulated time (2025-11-24T16:00:00Z), in ms.
const T0: u64 = 1_764_000_000_000;
/// Sync rounds the final reliable delivery may take.
const SETTLE_ROUNDS: usize = 16;

/// Operation codes (low 4 bits of an action byte).
pub mod op {
    /// Node `x % 3` creates a network (at most two per run).
    pub const CREATE: u8 = 0;
    /// Node `x % 3` invites another node (a fresh key package).
    pub const INVITE: u8 = 1;
    /// Node `x % 3` joins from a Welcome on the relay.
    pub const JOIN: u8 = 2;
    /// Node `x % 3` proposes removing another node.
    pub const REMOVE: u8 = 3;
    /// Node `x % 3` proposes a self-update (key rotation).
    pub const UPDATE: u8 = 4;
    /// Node `x % 3` imports a patient or that patient's allergies and immunizations.
    pub const IMPORT: u8 = 5;
    /// Node `x % 3` edits one member of a patient resource.
    pub const EDIT: u8 = 6;
    /// Node `x % 3` edits twice in a row (two chained entries).
    pub const EDIT_TWICE: u8 = 7;
    /// Node `x % 3` runs a full sync (`careledger::sync::sync`).
    pub const SYNC: u8 = 8;
    /// Node `x % 3` publishes its outbox (messages go in flight).
    pub const PUBLISH: u8 = 9;
    /// Deliver the in-flight message `x` (any but the oldest reorders).
    pub const DELIVER: u8 = 10;
    /// Deliver every in-flight message, oldest first.
    pub const DELIVER_ALL: u8 = 11;
    /// Lose the in-flight message `x`.
    pub const DROP: u8 = 12;
    /// Duplicate the in-flight message `x`.
    pub const DUPLICATE: u8 = 13;
    /// Restart node `x % 3` (drop it, reopen from its store).
    pub const RESTART: u8 = 14;
    /// Node `x % 3` receives up to `x / 3 + 1` log messages through the sans-IO API.
    pub const RECEIVE: u8 = 15;
}

/// One action byte.
pub fn action(op: u8, arg: u8) -> u8 {
    (arg << 4) | (op & 0x0f)
}

/// Runs one action stream.
pub fn fuzz(data: &[u8]) {
    let (seed, actions) = match data.split_first_chunk::<8>() {
        Some((seed, rest)) => (u64::from_le_bytes(*seed), rest),
        None => {
            let mut seed = [0u8; 8];
            seed[..data.len()].copy_from_slice(data);
            (u64::from_le_bytes(seed), &[][..])
        }
    };
    let mut world = World::new(seed);
    for &byte in actions.iter().take(MAX_ACTIONS) {
        world.step(byte);
        world.check();
    }
    world.settle();
    world.check();
    world.check_converged();
    if std::env::var_os("INTERACTION_DEBUG").is_some() {
        let members: Vec<usize> = world
            .nets
            .clone()
            .iter()
            .map(|n| (0..3).filter(|&i| world.active(i, n)).count())
            .collect();
        eprintln!(
            "nets {:?} members {:?} written {} epochs {} removed {:?} log {:?}",
            world.nets.len(),
            members,
            world.model.written.len(),
            world.model.epochs.len(),
            world.model.removed_from,
            world
                .transport
                .logs
                .values()
                .map(|l| l.len())
                .collect::<Vec<_>>()
        );
    }
}

/// Seed action streams.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    use op::*;
    let a = |o, x| action(o, x);
    // Form the network of all three nodes, founded by node 0.
    let form = vec![
        a(CREATE, 0),
        a(INVITE, 0), // 0 invites 1
        a(SYNC, 0),
        a(DELIVER_ALL, 0),
        a(SYNC, 0),
        a(DELIVER_ALL, 0),
        a(JOIN, 1),
        a(INVITE, 3), // 0 invites 2
        a(SYNC, 0),
        a(DELIVER_ALL, 0),
        a(SYNC, 0),
        a(DELIVER_ALL, 0),
        a(JOIN, 2),
    ];
    let with = |seed: u64, tail: &[u8]| {
        let mut bytes = seed.to_le_bytes().to_vec();
        bytes.extend_from_slice(&form);
        bytes.extend_from_slice(tail);
        bytes
    };
    vec![
        (
            "form-and-write".into(),
            with(
                1,
                &[
                    a(IMPORT, 0),
                    a(SYNC, 0),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 1),
                    a(EDIT, 1),
                    a(SYNC, 1),
                ],
            ),
        ),
        (
            "commit-race".into(),
            with(
                2,
                &[
                    a(UPDATE, 1),
                    a(UPDATE, 2),
                    a(PUBLISH, 2),
                    a(PUBLISH, 1),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 1),
                    a(SYNC, 2),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 0),
                ],
            ),
        ),
        (
            "remove-then-write".into(),
            with(
                3,
                &[
                    a(IMPORT, 0),
                    a(SYNC, 0),
                    a(DELIVER_ALL, 0),
                    a(REMOVE, 0),
                    a(SYNC, 0),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 0),
                    a(EDIT, 0),
                    a(IMPORT, 1),
                    a(SYNC, 1),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 2),
                    a(EDIT, 2),
                ],
            ),
        ),
        (
            "drop-duplicate-reorder".into(),
            with(
                4,
                &[
                    a(IMPORT, 1),
                    a(EDIT_TWICE, 1),
                    a(PUBLISH, 1),
                    a(DROP, 1),
                    a(DUPLICATE, 0),
                    a(DELIVER, 2),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 0),
                    a(SYNC, 2),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 1),
                ],
            ),
        ),
        (
            "restart-mid-commit".into(),
            with(
                5,
                &[
                    a(IMPORT, 2),
                    a(REMOVE, 2),
                    a(PUBLISH, 2),
                    a(RESTART, 2),
                    a(DELIVER_ALL, 0),
                    a(RESTART, 0),
                    a(RECEIVE, 6),
                    a(SYNC, 2),
                    a(DELIVER_ALL, 0),
                    a(RECEIVE, 15),
                    a(RESTART, 1),
                ],
            ),
        ),
        (
            // 0 removes 1 while 1 removes 0, both on one epoch.
            "mutual-removal".into(),
            with(
                8,
                &[
                    a(IMPORT, 0),
                    a(REMOVE, 0),
                    a(REMOVE, 1),
                    a(PUBLISH, 1),
                    a(PUBLISH, 0),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 2),
                    a(SYNC, 0),
                    a(SYNC, 1),
                    a(DELIVER_ALL, 0),
                    a(EDIT, 2),
                    a(SYNC, 2),
                ],
            ),
        ),
        (
            // 2 rotates its keys while 0 removes it; one commit is lost in flight.
            "remove-versus-update".into(),
            with(
                9,
                &[
                    a(UPDATE, 2),
                    a(REMOVE, 3),
                    a(PUBLISH, 2),
                    a(PUBLISH, 0),
                    a(DELIVER, 1),
                    a(DROP, 0),
                    a(SYNC, 1),
                    a(RESTART, 2),
                    a(SYNC, 2),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 0),
                    a(IMPORT, 1),
                ],
            ),
        ),
        ("non-member-ops".into(), {
            let mut bytes = 6u64.to_le_bytes().to_vec();
            bytes.extend_from_slice(&[
                a(IMPORT, 1),
                a(CREATE, 0),
                a(EDIT, 2),
                a(REMOVE, 1),
                a(INVITE, 1),
                a(UPDATE, 2),
                a(JOIN, 1),
                a(SYNC, 2),
                a(IMPORT, 0),
                a(EDIT, 0),
            ]);
            bytes
        }),
        (
            "two-networks".into(),
            with(
                7,
                &[
                    a(CREATE, 2),
                    a(INVITE, 2),
                    a(SYNC, 2),
                    a(DELIVER_ALL, 0),
                    a(SYNC, 2),
                    a(DELIVER_ALL, 0),
                    a(JOIN, 0),
                    a(IMPORT, 2),
                    a(IMPORT, 0),
                    a(SYNC, 0),
                    a(SYNC, 2),
                    a(DELIVER_ALL, 0),
                ],
            ),
        ),
    ]
}

/// Small real Synthea patients: id, Patient line, and some of the
/// patient's AllergyIntolerance and Immunization lines.
struct Patient {
    id: String,
    resource: String,
    clinical: String,
}

fn patients() -> &'static [Patient] {
    static PATIENTS: OnceLock<Vec<Patient>> = OnceLock::new();
    PATIENTS.get_or_init(|| {
        let patient_lines =
            include_str!("../../../examples/data/fhir/bulk-10-patients/Patient.000.ndjson");
        let allergy_lines = include_str!(
            "../../../examples/data/fhir/bulk-10-patients/AllergyIntolerance.000.ndjson"
        );
        let immunization_lines =
            include_str!("../../../examples/data/fhir/bulk-10-patients/Immunization.000.ndjson");
        // Per patient: its allergies and up to two immunizations.
        let mut clinical: BTreeMap<String, String> = BTreeMap::new();
        let mut immunizations: BTreeMap<String, usize> = BTreeMap::new();
        let lines = allergy_lines
            .lines()
            .map(|l| (l, "allergy"))
            .chain(immunization_lines.lines().map(|l| (l, "immunization")));
        for (line, kind) in lines.filter(|(l, _)| !l.trim().is_empty()) {
            let value: serde_json::Value = serde_json::from_str(line).expect("FHIR JSON");
            let reference = value["patient"]["reference"].as_str().unwrap_or_default();
            let id = reference.rsplit(['/', ':']).next().unwrap_or_default();
            if kind == "immunization" {
                let count = immunizations.entry(id.to_owned()).or_default();
                *count += 1;
                if *count > 2 {
                    continue;
                }
            }
            let text = clinical.entry(id.to_owned()).or_default();
            text.push_str(line);
            text.push('\n');
        }
        let mut out: Vec<Patient> = patient_lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                let id = value["id"].as_str()?.to_owned();
                let clinical = clinical.get(&id)?.clone();
                Some(Patient {
                    id,
                    resource: line.to_owned(),
                    clinical,
                })
            })
            .collect();
        out.sort_by_key(|p| p.resource.len() + p.clinical.len());
        out.truncate(3);
        assert_eq!(
            out.len(),
            3,
            "three patients with allergies or immunizations in the data"
        );
        out
    })
}

/// Member edits: (member, JSON values it may take).
const EDITS: &[(&str, &[&str])] = &[
    ("active", &["true", "false"]),
    (
        "gender",
        &["\"female\"", "\"male\"", "\"other\"", "\"unknown\""],
    ),
    (
        "birthDate",
        &["\"1961-02-03\"", "\"1970-12-31\"", "\"1988-07-14\""],
    ),
];

/// SplitMix64: the seeded generator for secondary arguments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// The relay: an ordered log per network, and messages in flight before it.
#[derive(Default)]
struct Transport {
    in_flight: Vec<(NetworkId, Vec<u8>)>,
    logs: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Every entry ever published, per network.
    entries: HashMap<Vec<u8>, BTreeMap<EntryId, Vec<u8>>>,
    /// Publish straight to the log (the final reliable delivery).
    reliable: bool,
}

impl Transport {
    fn log(&self, network: &NetworkId) -> &[Vec<u8>] {
        self.logs.get(&network.0).map(Vec::as_slice).unwrap_or(&[])
    }

    fn deliver(&mut self, index: usize) {
        if index < self.in_flight.len() {
            let (network, message) = self.in_flight.remove(index);
            self.logs.entry(network.0).or_default().push(message);
        }
    }
}

impl Relay for Transport {
    fn publish(&mut self, network: &NetworkId, message: &[u8]) -> Result<(), RelayError> {
        if let Ok(WireMessage::Entry(bytes)) = WireMessage::decode(message) {
            self.entries
                .entry(network.0.clone())
                .or_default()
                .insert(Entry::id_of(&bytes), bytes);
        }
        if self.reliable {
            self.logs
                .entry(network.0.clone())
                .or_default()
                .push(message.to_vec());
        } else {
            self.in_flight.push((network.clone(), message.to_vec()));
        }
        Ok(())
    }

    fn fetch(
        &mut self,
        network: &NetworkId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RelayMessage>, RelayError> {
        let log = self.log(network);
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
        let end = start.saturating_add(limit).min(log.len());
        Ok(log[start..end]
            .iter()
            .enumerate()
            .map(|(i, bytes)| RelayMessage {
                seq: (start + i + 1) as u64,
                bytes: bytes.clone(),
            })
            .collect())
    }
}

/// What the author wrote in one record-change entry.
struct Written {
    record: String,
    change: Vec<u8>,
}

/// What the harness expects, learnt from the authors as they write.
#[derive(Default)]
struct Model {
    /// Entry id → the record change its author wrote.
    written: HashMap<EntryId, Written>,
    /// (network, epoch) → (epoch authenticator, sorted roster).
    epochs: HashMap<(usize, u64), (Vec<u8>, Vec<AuthorId>)>,
    /// (network, node) → lowest observed epoch whose roster lacks the node
    /// after it had been present: it must read nothing from there on.
    removed_from: HashMap<(usize, usize), u64>,
    /// (network, patient, member) → every JSON value written (and the imported one).
    values: HashMap<(usize, String, String), BTreeSet<String>>,
}

/// A node's state that a refused operation or a restart must not change.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    networks: Vec<(NetworkId, u64, bool, bool)>,
    heads: Vec<Vec<(AuthorId, u64, EntryId)>>,
    authenticators: Vec<Option<Vec<u8>>>,
    cursors: Vec<u64>,
}

struct World {
    dir: tempfile::TempDir,
    nodes: Vec<Option<Node>>,
    authors: Vec<AuthorId>,
    transport: Transport,
    nets: Vec<NetworkId>,
    rng: Rng,
    now: u64,
    model: Model,
    /// (node, network) → entries already checked at that node.
    checked: HashSet<(usize, usize, EntryId)>,
}

fn storage_key() -> StorageKey {
    StorageKey::from_bytes([7; 32])
}

fn temp_dir() -> tempfile::TempDir {
    // SQLite in tmpfs when there is one: the stores fsync on every commit.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("careledger-interaction")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::Builder::new()
        .prefix("careledger-interaction")
        .tempdir()
        .expect("temporary directory")
}

/// Honest traffic: a member refuses nothing and every commit processes,
/// unless the batch removed it (what follows its removal is unreadable).
/// The one refusal honest traffic meets: entries a removed member wrote
/// before it learned of its removal that reached the relay after the
/// removal commit (refused by design, `RejectEntryError::AfterRemoval`).
fn check_report(i: usize, was_active: bool, report: &ReceiveReport) {
    if was_active && !report.removed {
        let refused: Vec<_> = report
            .rejected
            .iter()
            .filter(|r| !matches!(r, RejectEntryError::AfterRemoval { .. }))
            .collect();
        assert!(
            refused.is_empty(),
            "node {i}: honest entries rejected: {refused:?}"
        );
        assert!(
            report.mls_errors.is_empty(),
            "node {i}: honest commits failed: {:?}",
            report.mls_errors
        );
    }
}

/// A typed refusal is fine; a store failure is a bug.
fn refused_network(error: &NetworkError) -> bool {
    !matches!(error, NetworkError::Store(_))
}

impl World {
    fn new(seed: u64) -> World {
        let dir = temp_dir();
        let mut nodes = Vec::new();
        let mut authors = Vec::new();
        for name in NAMES {
            let store = Store::open(&dir.path().join(format!("{name}.sqlite")), &storage_key())
                .expect("store opens");
            let node = Node::create(store, name).expect("node");
            authors.push(node.identity().author_id());
            nodes.push(Some(node));
        }
        World {
            dir,
            nodes,
            authors,
            transport: Transport::default(),
            nets: Vec::new(),
            rng: Rng(seed),
            now: T0,
            model: Model::default(),
            checked: HashSet::new(),
        }
    }

    fn path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.sqlite", NAMES[i]))
    }

    fn node(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node open")
    }

    /// The network an action acts on: the newest, or another one by the seed.
    fn pick_net(&mut self) -> Option<usize> {
        match self.nets.len() {
            0 => None,
            1 => Some(0),
            n => Some(if self.rng.below(3) == 0 {
                self.rng.below(n)
            } else {
                n - 1
            }),
        }
    }

    /// A network id for actions before any network exists: unknown to all.
    fn net_or_unknown(&mut self) -> (Option<usize>, NetworkId) {
        match self.pick_net() {
            Some(n) => (Some(n), self.nets[n].clone()),
            None => (None, NetworkId(vec![0xee; 16])),
        }
    }

    fn has_network(&mut self, i: usize, net: &NetworkId) -> bool {
        match self.node(i).is_member(net) {
            Ok(_) => true,
            Err(NetworkError::UnknownNetwork) => false,
            Err(error) => panic!("node {i}: is_member failed: {error}"),
        }
    }

    fn active(&mut self, i: usize, net: &NetworkId) -> bool {
        match self.node(i).is_member(net) {
            Ok(active) => active,
            Err(NetworkError::UnknownNetwork) => false,
            Err(error) => panic!("node {i}: is_member failed: {error}"),
        }
    }

    fn snapshot(&mut self, i: usize) -> Snapshot {
        let node = self.node(i);
        let infos = node.networks().expect("networks");
        let mut snapshot = Snapshot {
            networks: Vec::new(),
            heads: Vec::new(),
            authenticators: Vec::new(),
            cursors: Vec::new(),
        };
        for info in infos {
            let mut heads: Vec<_> = node
                .heads(&info.id)
                .expect("heads")
                .into_iter()
                .map(|h| (h.author, h.seq, h.id))
                .collect();
            heads.sort();
            snapshot.heads.push(heads);
            snapshot.authenticators.push(if info.active {
                Some(node.epoch_authenticator(&info.id).expect("authenticator"))
            } else {
                None
            });
            snapshot
                .cursors
                .push(node.relay_cursor(&info.id).expect("cursor"));
            snapshot
                .networks
                .push((info.id, info.epoch, info.active, info.commit_pending));
        }
        snapshot
    }

    /// Every record as canonical FHIR, per network.
    fn records(&mut self, i: usize) -> Vec<Vec<(String, String)>> {
        let nets = self.nets.clone();
        let node = self.node(i);
        nets.iter()
            .map(|net| match node.patients(net) {
                Ok(patients) => patients
                    .into_iter()
                    .map(|p| {
                        let bundle = node
                            .export_patient(net, &p, ExportFormat::Bundle)
                            .unwrap_or_else(|e| panic!("node {i}: export failed: {e}"));
                        (p, bundle)
                    })
                    .collect(),
                Err(NetworkError::UnknownNetwork) => Vec::new(),
                Err(error) => panic!("node {i}: patients failed: {error}"),
            })
            .collect()
    }

    fn step(&mut self, byte: u8) {
        self.now += 1_000;
        let x = usize::from(byte >> 4);
        let i = x % 3;
        match byte & 0x0f {
            op::CREATE => self.create(i),
            op::INVITE => self.invite(i, (i + 1 + (x / 3) % 2) % 3),
            op::JOIN => self.join(i),
            op::REMOVE => self.remove(i, (i + 1 + (x / 3) % 2) % 3),
            op::UPDATE => self.update(i),
            op::IMPORT => self.import(i, x / 3),
            op::EDIT => self.edit(i, x / 3),
            op::EDIT_TWICE => {
                self.edit(i, x / 3);
                self.edit(i, x / 3 + 1);
            }
            op::SYNC => self.sync(i),
            op::PUBLISH => {
                let node = self.nodes[i].as_mut().expect("node open");
                publish_outbox(node, &mut self.transport).expect("publish");
            }
            op::DELIVER => {
                let n = self.transport.in_flight.len();
                if n > 0 {
                    let index = (x + self.rng.below(n)) % n;
                    self.transport.deliver(index);
                }
            }
            op::DELIVER_ALL => {
                while !self.transport.in_flight.is_empty() {
                    self.transport.deliver(0);
                }
            }
            op::DROP => {
                let n = self.transport.in_flight.len();
                if n > 0 {
                    self.transport.in_flight.remove(x % n);
                }
            }
            op::DUPLICATE => {
                let n = self.transport.in_flight.len();
                if n > 0 {
                    let copy = self.transport.in_flight[x % n].clone();
                    let at = self.rng.below(n + 1);
                    self.transport.in_flight.insert(at, copy);
                }
            }
            op::RESTART => self.restart(i),
            _ => self.receive(i, x / 3 + 1),
        }
    }

    fn create(&mut self, i: usize) {
        if self.nets.len() >= MAX_NETWORKS {
            return;
        }
        let net = self
            .node(i)
            .create_network("care")
            .unwrap_or_else(|e| panic!("node {i}: create_network failed: {e}"));
        self.nets.push(net);
    }

    /// Run a fallible operation at node `i`; if the model says it must
    /// succeed, it must; if it is refused, the node must be unchanged.
    fn attempt<E: std::fmt::Display>(
        &mut self,
        i: usize,
        what: &str,
        must_succeed: bool,
        typed: impl Fn(&E) -> bool,
        f: impl FnOnce(&mut Node) -> Result<(), E>,
    ) -> bool {
        let before = self.snapshot(i);
        match f(self.node(i)) {
            Ok(()) => true,
            Err(error) => {
                assert!(!must_succeed, "node {i}: valid {what} failed: {error}");
                assert!(typed(&error), "node {i}: {what} failed untyped: {error}");
                let after = self.snapshot(i);
                assert_eq!(before, after, "node {i}: refused {what} changed state");
                false
            }
        }
    }

    fn invite(&mut self, i: usize, j: usize) {
        let (_, net) = self.net_or_unknown();
        let key_package = self
            .node(j)
            .key_package()
            .unwrap_or_else(|e| panic!("node {j}: key_package failed: {e}"));
        let valid = self.active(i, &net)
            && !self.node(i).commit_pending(&net).unwrap_or(true)
            && !self.has_network(j, &net)
            && !self.in_roster(i, &net, j);
        self.attempt(i, "invite", valid, refused_network, |node| {
            node.invite(&net, &key_package)
        });
    }

    fn in_roster(&mut self, i: usize, net: &NetworkId, j: usize) -> bool {
        let author = self.authors[j];
        self.node(i)
            .members(net)
            .map(|members| members.iter().any(|m| m.author == author))
            .unwrap_or(false)
    }

    fn remove(&mut self, i: usize, j: usize) {
        let (_, net) = self.net_or_unknown();
        let author = self.authors[j];
        let valid = self.active(i, &net)
            && !self.node(i).commit_pending(&net).unwrap_or(true)
            && self.in_roster(i, &net, j);
        self.attempt(i, "remove", valid, refused_network, |node| {
            node.remove(&net, &author)
        });
    }

    fn update(&mut self, i: usize) {
        let (_, net) = self.net_or_unknown();
        let valid = self.active(i, &net) && !self.node(i).commit_pending(&net).unwrap_or(true);
        self.attempt(i, "update", valid, refused_network, |node| {
            node.update_keys(&net)
        });
    }

    fn join(&mut self, i: usize) {
        let (_, net) = self.net_or_unknown();
        let before = self.snapshot(i);
        let now = self.now;
        let node = self.nodes[i].as_mut().expect("node open");
        match join_from_relay(node, &mut self.transport, &net, "care", now) {
            Ok(report) => check_report(i, true, &report.received),
            Err(SyncError::NoWelcome) => {
                assert_eq!(
                    before,
                    self.snapshot(i),
                    "node {i}: failed join changed state"
                );
            }
            Err(error) => panic!("node {i}: join failed: {error}"),
        }
    }

    fn sync(&mut self, i: usize) {
        let Some(n) = self.pick_net() else { return };
        let net = self.nets[n].clone();
        if !self.has_network(i, &net) {
            return;
        }
        let now = self.now;
        let was_active = self.active(i, &net);
        let node = self.nodes[i].as_mut().expect("node open");
        let report = sync(node, &mut self.transport, &net, now)
            .unwrap_or_else(|e| panic!("node {i}: sync failed: {e}"));
        check_report(i, was_active, &report.received);
    }

    /// Receive up to `count` log messages through the sans-IO API, then publish.
    fn receive(&mut self, i: usize, count: usize) {
        let Some(n) = self.pick_net() else { return };
        let net = self.nets[n].clone();
        if !self.has_network(i, &net) {
            return;
        }
        let cursor = self.node(i).relay_cursor(&net).expect("cursor");
        let page = self
            .transport
            .fetch(&net, cursor, count)
            .expect("fetch from memory");
        if let Some(last) = page.last().map(|m| m.seq) {
            let messages: Vec<Vec<u8>> = page.into_iter().map(|m| m.bytes).collect();
            let now = self.now;
            let was_active = self.active(i, &net);
            let report = self
                .node(i)
                .receive(&net, &messages, Some(last), now)
                .unwrap_or_else(|e| panic!("node {i}: receive failed: {e}"));
            check_report(i, was_active, &report);
        }
        let node = self.nodes[i].as_mut().expect("node open");
        publish_outbox(node, &mut self.transport).expect("publish");
    }

    fn restart(&mut self, i: usize) {
        let before = self.snapshot(i);
        let records = self.records(i);
        let node = self.nodes[i].take().expect("node open");
        drop(node.into_store());
        let store = Store::open(&self.path(i), &storage_key())
            .unwrap_or_else(|e| panic!("node {i}: store does not reopen: {e}"));
        let node =
            Node::open(store).unwrap_or_else(|e| panic!("node {i}: node does not reopen: {e}"));
        assert_eq!(node.identity().author_id(), self.authors[i]);
        self.nodes[i] = Some(node);
        assert_eq!(before, self.snapshot(i), "node {i}: restart changed state");
        assert!(
            records == self.records(i),
            "node {i}: restart changed records"
        );
        self.checked.retain(|(node, _, _)| *node != i);
    }

    /// Own entries of node `i` after `seq`.
    fn own_entries_after(&mut self, i: usize, net: &NetworkId, seq: u64) -> Vec<(Entry, Vec<u8>)> {
        let me = self.authors[i];
        self.node(i)
            .ledger_entries(net)
            .expect("ledger")
            .into_iter()
            .filter_map(|bytes| {
                let entry = Entry::decode(&bytes).expect("stored entry decodes");
                (entry.header.author == me && entry.header.seq > seq).then_some((entry, bytes))
            })
            .collect()
    }

    fn own_head(&mut self, i: usize, net: &NetworkId) -> u64 {
        let me = self.authors[i];
        match self.node(i).heads(net) {
            Ok(heads) => heads.iter().find(|h| h.author == me).map_or(0, |h| h.seq),
            Err(_) => 0,
        }
    }

    /// Record in the model what node `i` just wrote to patient `patient`.
    fn capture_writes(&mut self, i: usize, n: usize, seq: u64, patient: &str) {
        let net = self.nets[n].clone();
        for (entry, bytes) in self.own_entries_after(i, &net, seq) {
            if entry.header.kind != EntryKind::RecordChange {
                continue;
            }
            let (record, change) = self
                .node(i)
                .open_record_change_for_testing(&net, &bytes)
                .unwrap_or_else(|e| panic!("node {i}: cannot open its own change: {e}"));
            assert!(
                record == patient,
                "node {i}: change filed under another record"
            );
            let info = RecordDoc::inspect_change(&change).expect("own change parses");
            assert_eq!(
                info.actor,
                self.authors[i].0.to_vec(),
                "change actor is the author"
            );
            self.model
                .written
                .insert(Entry::id_of(&bytes), Written { record, change });
        }
    }

    /// The value of `member` in patient `p`'s Patient resource at node `i`.
    fn patient_member(
        &mut self,
        i: usize,
        net: &NetworkId,
        p: &str,
        member: &str,
    ) -> Option<serde_json::Value> {
        let bundle = self
            .node(i)
            .export_patient(net, p, ExportFormat::Bundle)
            .unwrap_or_else(|e| panic!("node {i}: export failed: {e}"));
        let bundle: serde_json::Value = serde_json::from_str(&bundle).expect("bundle is JSON");
        bundle["entry"]
            .as_array()?
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["resourceType"] == "Patient" && r["id"] == p)
            .map(|r| r[member].clone())
    }

    fn import(&mut self, i: usize, arg: usize) {
        let (n, net) = self.net_or_unknown();
        let patient = &patients()[arg % 3];
        let clinical = arg / 3 % 2 == 1;
        let (source, text) = if clinical {
            ("clinical.ndjson", &patient.clinical)
        } else {
            ("Patient.ndjson", &patient.resource)
        };
        let valid = self.active(i, &net);
        let seq = match n {
            Some(_) => self.own_head(i, &net),
            None => 0,
        };
        let now = self.now;
        let done = self.attempt(
            i,
            "import",
            valid,
            |e: &ImportError| matches!(e, ImportError::Network(e) if refused_network(e)),
            |node| {
                node.import_fhir(&net, source, text.as_bytes(), now)
                    .map(|_| ())
            },
        );
        if let (true, Some(n)) = (done, n) {
            self.capture_writes(i, n, seq, &patient.id);
            if !clinical {
                let value: serde_json::Value =
                    serde_json::from_str(&patient.resource).expect("patient JSON");
                for (member, _) in EDITS {
                    if let Some(v) = value.get(*member) {
                        self.model
                            .values
                            .entry((n, patient.id.clone(), (*member).to_owned()))
                            .or_default()
                            .insert(v.to_string());
                    }
                }
            }
        }
    }

    fn edit(&mut self, i: usize, arg: usize) {
        let (n, net) = self.net_or_unknown();
        let patient = patients()[arg % 3].id.clone();
        let (member, values) = EDITS[self.rng.below(EDITS.len())];
        let json = values[self.rng.below(values.len())];
        let active = self.active(i, &net);
        let has_record = active
            && self
                .node(i)
                .patients(&net)
                .map(|ps| ps.contains(&patient))
                .unwrap_or(false);
        // A record may hold only allergies or immunizations so far.
        let has_resource = has_record && self.patient_member(i, &net, &patient, member).is_some();
        let seq = match n {
            Some(_) => self.own_head(i, &net),
            None => 0,
        };
        let now = self.now;
        let done = self.attempt(
            i,
            "edit",
            has_resource,
            |e: &EditError| match e {
                EditError::UnknownPatient | EditError::Record(_) => true,
                EditError::Network(e) => refused_network(e),
                _ => false,
            },
            |node| {
                node.edit_member(&net, &patient, "Patient", &patient, member, Some(json), now)
                    .map(|_| ())
            },
        );
        if let (true, Some(n)) = (done, n) {
            self.capture_writes(i, n, seq, &patient);
            let expected: serde_json::Value = serde_json::from_str(json).expect("edit JSON");
            let shown = self.patient_member(i, &net, &patient, member);
            assert!(
                shown.as_ref() == Some(&expected),
                "node {i}: an edit is not visible in the author's export"
            );
            self.model
                .values
                .entry((n, patient, member.to_owned()))
                .or_default()
                .insert(expected.to_string());
        }
    }

    /// The per-step invariants.
    fn check(&mut self) {
        for n in 0..self.nets.len() {
            let net = self.nets[n].clone();
            self.observe_epochs(n, &net);
            for i in 0..NAMES.len() {
                if !self.has_network(i, &net) {
                    continue;
                }
                self.check_reads(i, n, &net);
                if let Some(&from) = self.model.removed_from.get(&(n, i)) {
                    self.check_removed(i, n, &net, from);
                }
            }
        }
    }

    fn observe_epochs(&mut self, n: usize, net: &NetworkId) {
        for i in 0..NAMES.len() {
            if !self.active(i, net) {
                continue;
            }
            let node = self.node(i);
            let epoch = node.epoch(net).expect("epoch");
            let authenticator = node.epoch_authenticator(net).expect("authenticator");
            let mut roster: Vec<AuthorId> = node
                .members(net)
                .expect("members")
                .into_iter()
                .map(|m| m.author)
                .collect();
            roster.sort();
            assert!(
                roster.contains(&self.authors[i]),
                "node {i}: active but not in its own roster"
            );
            match self.model.epochs.get(&(n, epoch)) {
                Some(seen) => assert!(
                    *seen == (authenticator, roster.clone()),
                    "node {i}: epoch {epoch} differs from another member's view of it"
                ),
                None => {
                    self.model
                        .epochs
                        .insert((n, epoch), (authenticator, roster.clone()));
                }
            }
        }
        // Removal: the first observed epoch without a node after one with it.
        for j in 0..NAMES.len() {
            let mut epochs: Vec<(u64, bool)> = self
                .model
                .epochs
                .iter()
                .filter(|((m, _), _)| *m == n)
                .map(|((_, e), (_, roster))| (*e, roster.contains(&self.authors[j])))
                .collect();
            epochs.sort();
            let Some(first) = epochs.iter().position(|(_, with)| *with) else {
                continue;
            };
            if let Some((epoch, _)) = epochs[first..].iter().find(|(_, with)| !*with) {
                self.model.removed_from.insert((n, j), *epoch);
            }
        }
    }

    /// Every record change node `i` holds opens to what its author wrote.
    fn check_reads(&mut self, i: usize, n: usize, net: &NetworkId) {
        let entries = self.node(i).ledger_entries(net).expect("ledger");
        for bytes in entries {
            let id = Entry::id_of(&bytes);
            if !self.checked.insert((i, n, id)) {
                continue;
            }
            let entry = Entry::decode(&bytes).expect("stored entry decodes");
            if entry.header.kind != EntryKind::RecordChange {
                continue;
            }
            let written = self
                .model
                .written
                .get(&id)
                .unwrap_or_else(|| panic!("node {i}: holds a record change nobody wrote"));
            let opened = self.nodes[i]
                .as_mut()
                .expect("node open")
                .open_record_change_for_testing(net, &bytes);
            match opened {
                Ok((record, change)) => assert!(
                    record == written.record && change == written.change,
                    "node {i}: a record change decrypts to something else than its author wrote"
                ),
                Err(error) => panic!("node {i}: holds a record change it cannot open: {error}"),
            }
        }
    }

    /// A node removed from epoch `from` on reads nothing written from there on.
    fn check_removed(&mut self, i: usize, n: usize, net: &NetworkId, from: u64) {
        let max_epoch = self
            .model
            .epochs
            .keys()
            .filter(|(m, _)| *m == n)
            .map(|(_, e)| *e)
            .max();
        for epoch in from..=max_epoch.unwrap_or(from) {
            assert!(
                self.node(i).epoch_key_for_testing(net, epoch).is_none(),
                "node {i}: removed at epoch {from} but holds the key of epoch {epoch}"
            );
        }
        let later: Vec<(EntryId, Vec<u8>)> = self
            .transport
            .entries
            .get(&net.0)
            .map(|m| {
                m.iter()
                    .filter(|(_, b)| {
                        Entry::decode(b)
                            .map(|e| e.header.epoch >= from)
                            .unwrap_or(false)
                    })
                    .map(|(id, b)| (*id, b.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let held: HashSet<EntryId> = self
            .node(i)
            .ledger_entries(net)
            .expect("ledger")
            .iter()
            .map(|b| Entry::id_of(b))
            .collect();
        for (id, bytes) in later {
            if !self.checked.insert((i, n + MAX_NETWORKS, id)) {
                continue;
            }
            let node = self.node(i);
            assert!(
                node.can_read_entry(net, &bytes).is_err(),
                "node {i}: removed at epoch {from} but reads an entry written later"
            );
            assert!(
                node.open_record_change_for_testing(net, &bytes).is_err(),
                "node {i}: removed at epoch {from} but opens a record change written later"
            );
            assert!(
                !held.contains(&id),
                "node {i}: removed but stored a later entry"
            );
        }
    }

    /// Deliver everything reliably until nothing changes.
    fn settle(&mut self) {
        self.transport.reliable = true;
        while !self.transport.in_flight.is_empty() {
            self.transport.deliver(0);
        }
        for _ in 0..SETTLE_ROUNDS {
            let mut quiet = true;
            self.now += 1_000;
            for n in 0..self.nets.len() {
                let net = self.nets[n].clone();
                for i in 0..NAMES.len() {
                    let now = self.now;
                    if self.has_network(i, &net) {
                        let was_active = self.active(i, &net);
                        let node = self.nodes[i].as_mut().expect("node open");
                        let report = sync(node, &mut self.transport, &net, now)
                            .unwrap_or_else(|e| panic!("node {i}: settling sync failed: {e}"));
                        check_report(i, was_active, &report.received);
                        if report.received.accepted > 0
                            || report.received.commits_applied > 0
                            || report.published > 1
                        {
                            quiet = false;
                        }
                    } else {
                        let node = self.nodes[i].as_mut().expect("node open");
                        match join_from_relay(node, &mut self.transport, &net, "care", now) {
                            Ok(report) => {
                                check_report(i, true, &report.received);
                                quiet = false;
                            }
                            Err(SyncError::NoWelcome) => {}
                            Err(error) => panic!("node {i}: settling join failed: {error}"),
                        }
                    }
                }
            }
            if quiet {
                return;
            }
        }
        panic!("no convergence after {SETTLE_ROUNDS} reliable sync rounds");
    }

    /// After reliable delivery, the current members agree on everything.
    fn check_converged(&mut self) {
        let records: Vec<Vec<Vec<(String, String)>>> =
            (0..NAMES.len()).map(|i| self.records(i)).collect();
        for (n, net) in self.nets.clone().into_iter().enumerate() {
            let members: Vec<usize> = (0..NAMES.len()).filter(|&i| self.active(i, &net)).collect();
            let mut reference: Option<(usize, Snapshot)> = None;
            let authors = self.authors.clone();
            for &i in &members {
                let node = self.nodes[i].as_mut().expect("node open");
                assert!(
                    !node.commit_pending(&net).expect("pending"),
                    "node {i}: commit still pending"
                );
                assert!(
                    node.held_entries(&net).expect("held").is_empty(),
                    "node {i}: entries still held after reliable delivery: {:?}",
                    node.held_entries(&net).expect("held")
                );
                let report = node.verify_ledger(&net).expect("verify");
                assert!(
                    report.is_clean() && report.record_keys_missing == 0,
                    "node {i}: ledger does not verify: {:?}",
                    report.problems
                );
                let mut roster: Vec<AuthorId> = node
                    .members(&net)
                    .expect("members")
                    .into_iter()
                    .map(|m| m.author)
                    .collect();
                roster.sort();
                for (j, author) in authors.iter().enumerate() {
                    if j != i && members.contains(&j) {
                        assert!(roster.contains(author), "node {i}: member {j} missing");
                    }
                }
                let held: HashSet<EntryId> = node
                    .ledger_entries(&net)
                    .expect("ledger")
                    .iter()
                    .map(|b| Entry::id_of(b))
                    .collect();
                let published = self.transport.entries.get(&net.0);
                for (id, bytes) in published.into_iter().flatten() {
                    let author = Entry::decode(bytes)
                        .expect("published entry decodes")
                        .header
                        .author;
                    let by_member = members.iter().any(|&j| authors[j] == author);
                    // A removed member's entries that reached the relay after
                    // its removal are refused by everyone alike (the heads
                    // comparison below shows they agree).
                    let removed_author = authors
                        .iter()
                        .position(|a| *a == author)
                        .is_some_and(|j| self.model.removed_from.contains_key(&(n, j)));
                    if by_member || (self.model.written.contains_key(id) && !removed_author) {
                        assert!(
                            held.contains(id),
                            "node {i}: a published entry never arrived"
                        );
                    }
                }
                let mut snapshot = self.snapshot(i);
                // Only this network; the relay cursor is local.
                let index = snapshot
                    .networks
                    .iter()
                    .position(|(id, ..)| *id == net)
                    .expect("net");
                snapshot = Snapshot {
                    networks: vec![snapshot.networks[index].clone()],
                    heads: vec![snapshot.heads[index].clone()],
                    authenticators: vec![snapshot.authenticators[index].clone()],
                    cursors: Vec::new(),
                };
                match &reference {
                    None => reference = Some((i, snapshot)),
                    Some((r, expected)) => {
                        assert_eq!(*expected, snapshot, "nodes {r} and {i} did not converge");
                        assert!(
                            records[*r][n] == records[i][n],
                            "nodes {r} and {i} hold different records"
                        );
                    }
                }
            }
            // Converged values are values someone wrote.
            if let Some(&i) = members.first() {
                for p in patients() {
                    for (member, _) in EDITS {
                        let Some(allowed) = self
                            .model
                            .values
                            .get(&(n, p.id.clone(), (*member).to_owned()))
                            .cloned()
                        else {
                            continue;
                        };
                        let has = self
                            .node(i)
                            .patients(&net)
                            .expect("patients")
                            .contains(&p.id);
                        if !has {
                            continue;
                        }
                        if let Some(value) = self.patient_member(i, &net, &p.id, member) {
                            assert!(
                                value.is_null() || allowed.contains(&value.to_string()),
                                "node {i}: converged to a value nobody wrote"
                            );
                        }
                    }
                }
            }
        }
    }
}
