//! A node: one participant's identity and store, and everything it does.
//!
//! Flow (sans IO: the node never touches the network; time comes in as
//! `now_ms`, randomness from the store's crypto provider):
//!
//! 1. [`Node::create`] once (new identity) or [`Node::open`] after a restart.
//! 2. Networks: [`Node::create_network`], then [`Node::invite`] with a peer's
//!    [`Node::key_package`]. Membership changes are MLS Commits that take
//!    effect only when they come back first for their epoch in relay order
//!    (DESIGN §5); the joiner calls [`Node::join`] with the Welcome.
//! 3. Records: [`Node::import_fhir`] and [`Node::edit_member`] write sealed,
//!    signed entries; [`Node::export_patient`] reads a chart back as FHIR.
//! 4. Transport: the host takes messages out with [`Node::poll_outgoing`] /
//!    [`Node::ack_outgoing`], and feeds the relay's messages, in relay order, to
//!    [`Node::receive`]. [`crate::sync::sync`] does both against a
//!    [`Relay`](crate::relay::Relay).
//! 5. Audit: [`Node::verify_ledger`] re-checks every signature, chain and seal.
//! 6. The patient's rights: [`Node::erase`] crypto-shreds a chart at every
//!    member; [`Node::tick`] (the sync pump calls it) cuts off shared charts
//!    whose consent period ended.
//!
//! ```
//! use careledger::keys::StorageKey;
//! use careledger::node::{ExportFormat, Node};
//! use careledger::store::Store;
//! let store = Store::open_in_memory(&StorageKey::from_bytes([1; 32])).unwrap();
//! let mut node = Node::create(store, "hospital-a.example").unwrap();
//! let net = node.create_network("care").unwrap();
//! let ndjson = br#"{"resourceType":"Patient","id":"p1","gender":"female"}"#;
//! let report = node.import_fhir(&net, "inline.ndjson", ndjson, 1_700_000_000_000).unwrap();
//! assert_eq!(report.resources, 1);
//! let bundle = node.export_patient(&net, "p1", ExportFormat::Bundle).unwrap();
//! assert!(bundle.contains(r#""gender":"female""#));
//! assert!(node.verify_ledger(&net).unwrap().is_clean());
//! ```

mod analytics;
mod apply_worker;
mod consent;
mod erasure;
mod expiry;
mod federated;
mod ledger;
mod mls;
mod records;
mod rules;
#[cfg(feature = "test-hooks")]
mod testing;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use openmls::prelude::MlsGroup;

use crate::entry::{AuthorId, DecodeEntryError, EntryId, VerifyEntryError};
use crate::identity::{CreateIdentityError, Identity};
use crate::keys::OpenSealedError;
use crate::record::doc::RecordDoc;
use crate::record::fhir::ImportFhirError;
use crate::store::{chain_marker, Store, StoreError};
use crate::wire::DecodeWireError;

pub use analytics::{
    AiError, AuditEntry, AuditRecord, BuiltDataset, DecisionOutcome, PredictInput, StoredCard,
    TrainOutcome, TrainRequest, TrainStage, UpdateOutcome, Verification, VerifyOutcome, VerifyStep,
    PARAMETER_TOLERANCE,
};
pub use consent::{ChartConsents, ConsentError, GranteeExport, PatientConsent, ShareReport};
pub use erasure::{EraseError, EraseReport, ErasedChart};
pub use expiry::TickReport;
pub use federated::{
    FlAction, FlError, FlVerifyStep, PlanRequest, RoundVerification, ScalingSource, TaskStatus,
    DEFAULT_DELTA,
};
pub use ledger::{
    EntryOutcome, HoldLimits, HoldReason, LedgerProblem, LedgerReport, ReceiveReport,
};
pub use rules::{OutcomeCheck, OutcomeStep, RuleSetInfo, RulesActivity, RulesError, StoredOutcome};

/// A network's id: its MLS group id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(pub Vec<u8>);

impl NetworkId {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parse hex.
    pub fn from_hex(text: &str) -> Option<Self> {
        hex::decode(text.trim())
            .ok()
            .filter(|b| !b.is_empty() && b.len() <= 255)
            .map(Self)
    }
}

impl std::fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NetworkId({})", self.to_hex())
    }
}

impl std::fmt::Display for NetworkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A member of a network's current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The name in its credential.
    pub name: String,
    /// Its author id.
    pub author: AuthorId,
    /// Its fingerprint.
    pub fingerprint: String,
}

/// A network as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Its id.
    pub id: NetworkId,
    /// Local label.
    pub label: String,
    /// Current MLS epoch (last epoch seen, if removed).
    pub epoch: u64,
    /// Whether this node is still a member.
    pub active: bool,
    /// Whether a commit of ours awaits its turn in relay order.
    pub commit_pending: bool,
}

/// One chain head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The author.
    pub author: AuthorId,
    /// Its highest accepted seq.
    pub seq: u64,
    /// The id of that entry.
    pub id: EntryId,
}

/// A message for the relay, taken with [`Node::poll_outgoing`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Outbox position; pass to [`Node::ack_outgoing`] once the relay has it.
    pub id: i64,
    /// The network it belongs to.
    pub network: NetworkId,
    /// An encoded [`WireMessage`](crate::wire::WireMessage).
    pub message: Vec<u8>,
}

/// What [`Node::import_fhir`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Resources parsed.
    pub resources: usize,
    /// Patients (records) touched.
    pub patients: usize,
    /// Record changes written (records whose content changed).
    pub changes: usize,
    /// Ledger entries written (changes plus key grants).
    pub entries: usize,
}

/// Export formats for a patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// A FHIR `Bundle` of type `collection`.
    Bundle,
    /// One resource per line.
    Ndjson,
}

/// Creating or opening a node failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenNodeError {
    /// The store has no identity yet: call [`Node::create`].
    #[error("store has no node identity; create one first")]
    NoIdentity,
    /// The store already has an identity: call [`Node::open`].
    #[error("store already holds a node identity")]
    AlreadyCreated,
    /// The name is not acceptable.
    #[error(transparent)]
    Identity(#[from] CreateIdentityError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No network with that id in this store.
    #[error("unknown network")]
    UnknownNetwork,
    /// This store is older than entries this node already wrote in the
    /// network (it was restored from a backup): writing now would fork the
    /// node's own chain. Sync first; it catches the chain up from the relay.
    #[error(
        "this store holds this node's entries up to seq {stored} but the node wrote up to seq \
         {marked} (restored from an older copy?): sync before writing"
    )]
    BehindOwnChain {
        /// The node's last own entry in the store.
        stored: u64,
        /// The last own entry it is known to have written.
        marked: u64,
    },
    /// This node was removed from the network.
    #[error("this node is no longer a member of the network")]
    NotAMember,
    /// Another commit of ours is still waiting for its turn.
    #[error("a membership change is already pending in this network; sync first")]
    CommitPending,
    /// The key package bytes are not a valid MLS KeyPackage for our ciphersuite.
    #[error("invalid key package: {0}")]
    InvalidKeyPackage(String),
    /// The Welcome bytes are not a valid MLS Welcome for one of our key packages.
    #[error("invalid welcome: {0}")]
    InvalidWelcome(String),
    /// No member with that author id.
    #[error("no such member in the network")]
    UnknownMember,
    /// openmls refused the operation.
    #[error("MLS operation failed: {0}")]
    Mls(String),
    /// A shared chart's consent had to be decided again before writing to
    /// it, and that failed.
    #[error("deciding a shared chart's consent failed: {0}")]
    ConsentDecision(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Importing FHIR failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The data is not valid FHIR; every problem is listed.
    #[error(transparent)]
    Fhir(#[from] ImportFhirError),
    /// The network is not usable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// Writing the record failed.
    #[error("record update failed: {0}")]
    Record(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reading or exporting a record failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No record for that patient in this network.
    #[error("no record for that patient in this network")]
    UnknownPatient,
    /// The patient's chart was erased (its keys shredded): nothing of it
    /// can be read any more.
    #[error("the patient's chart was erased")]
    Erased,
    /// The materialised record is unreadable.
    #[error("record unreadable: {0}")]
    Record(String),
    /// The network is unknown.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one incoming entry was refused. The entry is not stored (forks are kept
/// as evidence in their own table) and nothing stored before is touched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RejectEntryError {
    /// The relay message could not be decoded.
    #[error("malformed message: {0}")]
    MalformedMessage(#[from] DecodeWireError),
    /// The entry bytes could not be decoded.
    #[error("malformed entry: {0}")]
    Malformed(#[from] DecodeEntryError),
    /// The entry names another network.
    #[error("entry belongs to another network")]
    WrongNetwork,
    /// The entry claims an epoch this node has not reached (or, if removed, will never reach).
    #[error("entry is for epoch {epoch}, beyond this node's epoch {current}")]
    FutureEpoch {
        /// Claimed epoch.
        epoch: u64,
        /// This node's epoch.
        current: u64,
    },
    /// The author was not a member at the entry's epoch.
    #[error("author was not a member of the network at epoch {epoch}")]
    NotAMember {
        /// The entry's epoch.
        epoch: u64,
    },
    /// The signature does not verify against the roster's key for the author.
    #[error("signature check failed: {0}")]
    Signature(#[from] VerifyEntryError),
    /// A second, different entry for an `(author, seq)` already taken: kept as
    /// evidence, author flagged.
    #[error("fork: author wrote two different entries at seq {seq}")]
    Fork {
        /// The contested position.
        seq: u64,
    },
    /// The body does not open under the epoch key (tampered, or wrong epoch key).
    #[error("entry body does not open under the epoch key: {0}")]
    Seal(OpenSealedError),
    /// The sealed record change does not open under its record key.
    #[error("record change does not open under its record key: {0}")]
    RecordSeal(OpenSealedError),
    /// The decrypted body is malformed.
    #[error("entry body malformed: {0}")]
    MalformedBody(String),
    /// The Automerge change's actor is not the entry's signer.
    #[error("record change actor is not the entry's author")]
    ActorMismatch,
    /// The record change could not be applied.
    #[error("record change rejected: {0}")]
    BadChange(String),
    /// Too many entries already wait (for a predecessor or a key): this one
    /// is not kept now and is read from the relay again later.
    #[error("too many entries waiting (limit {limit}); it will be fetched again")]
    HoldLimit {
        /// The cap that was reached.
        limit: usize,
    },
    /// The author was removed from the network, and this entry came after
    /// its last one before the removal (whatever epoch it claims).
    #[error("entry at seq {seq} of a removed member arrived after its removal")]
    AfterRemoval {
        /// The entry's seq.
        seq: u64,
    },
    /// The entry's epoch precedes this node's join and no key grant covers it.
    #[error("no key for epoch {0}")]
    NoEpochKey(u64),
    /// The record key needed is unknown to this node (never granted, rotated away or erased).
    #[error("record key unknown to this node")]
    NoRecordKey,
}

/// Receiving a batch failed as a whole (the store); nothing of the batch was kept.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The network is unknown.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed; the batch was rolled back.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Editing a record failed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// No record for that patient.
    #[error("no record for that patient in this network")]
    UnknownPatient,
    /// The record refused the edit (unknown resource, invalid JSON, protected member).
    #[error("edit rejected: {0}")]
    Record(String),
    /// The network is not usable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One participant.
pub struct Node {
    store: Store,
    identity: Identity,
    groups: HashMap<Vec<u8>, MlsGroup>,
    docs: HashMap<(Vec<u8>, String), RecordDoc>,
    dirty: BTreeSet<(Vec<u8>, String)>,
    /// A site's rows per federated task, kept between steps.
    fl_data: HashMap<(NetworkId, String), crate::analytics::secure_fl::LocalData>,
    hold_limits: ledger::HoldLimits,
    arrival: ledger::Arrival,
    /// Networks whose own chain the store lost (restored from an older
    /// copy): network → the last own seq the chain marker knows of.
    behind: BTreeMap<Vec<u8>, u64>,
    /// Own entries appended in the open transaction: network → last seq.
    own_written: BTreeMap<Vec<u8>, u64>,
    /// Keys were shredded in the open transaction.
    shredded: bool,
    /// The time of the receive in progress (for entries it writes itself).
    clock: u64,
    /// Record changes of the batch in progress go to [`apply_worker`].
    speculate: bool,
    /// The thread applying them, while it holds documents.
    apply_worker: Option<apply_worker::ApplyWorker>,
    /// A speculatively applied change failed: the batch is redone.
    speculation_failed: bool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

const IDENTITY_LABEL: &[u8] = b"careledger/v1/identity";

impl Node {
    /// Create a new identity named `name` in an empty store.
    pub fn create(store: Store, name: &str) -> Result<Node, OpenNodeError> {
        if store.meta("identity_name")?.is_some() {
            return Err(OpenNodeError::AlreadyCreated);
        }
        let secret: [u8; 32] = store.random()?;
        let identity = Identity::from_secret(name, secret)?;
        let wrapped = store.wrap(IDENTITY_LABEL, &identity.secret_bytes())?;
        store.transaction(|| -> Result<(), StoreError> {
            store.set_meta("identity_name", name.as_bytes())?;
            store.set_meta("identity_key", &wrapped)
        })?;
        Ok(Self::with(store, identity))
    }

    /// Open a node whose identity the store already holds. If the store is
    /// older than the node's own chains (see [`NetworkError::BehindOwnChain`]),
    /// writing in those networks waits for a sync.
    pub fn open(store: Store) -> Result<Node, OpenNodeError> {
        let name = store
            .meta("identity_name")?
            .ok_or(OpenNodeError::NoIdentity)?;
        let name = String::from_utf8(name).map_err(|_| StoreError::Corrupt("identity_name"))?;
        let wrapped = store
            .meta("identity_key")?
            .ok_or(StoreError::Corrupt("identity_key"))?;
        let secret = store.unwrap_secret(IDENTITY_LABEL, &wrapped, "identity key")?;
        let identity = Identity::from_secret(&name, *secret.as_bytes())?;
        let mut node = Self::with(store, identity);
        node.find_lost_chains()?;
        Ok(node)
    }

    fn with(store: Store, identity: Identity) -> Node {
        Node {
            store,
            identity,
            groups: HashMap::new(),
            docs: HashMap::new(),
            dirty: BTreeSet::new(),
            fl_data: HashMap::new(),
            hold_limits: ledger::HoldLimits::default(),
            arrival: ledger::Arrival::default(),
            behind: BTreeMap::new(),
            own_written: BTreeMap::new(),
            shredded: false,
            speculate: false,
            apply_worker: None,
            speculation_failed: false,
            clock: 0,
        }
    }

    /// Compare the store's own chain heads with the chain marker beside it.
    fn find_lost_chains(&mut self) -> Result<(), StoreError> {
        let me = self.identity.author_id();
        for (network, marked) in chain_marker::read(&self.store, &me) {
            let stored = self.store.head_of(&network, &me)?.map_or(0, |(seq, _)| seq);
            if stored < marked {
                self.behind.insert(network, marked);
            }
        }
        Ok(())
    }

    /// The networks in which this store is behind the node's own chain (it
    /// was restored from an older copy), with the last own seq known to
    /// have been written; a sync that receives the node's own entries back
    /// from the relay clears them.
    pub fn lost_chains(&self) -> Vec<(NetworkId, u64)> {
        self.behind
            .iter()
            .map(|(network, seq)| (NetworkId(network.clone()), *seq))
            .collect()
    }

    /// After a sync read the whole relay: what the relay does not have of
    /// this node's chain exists nowhere it could be caught up from, so the
    /// node writes on from what its store holds.
    pub(crate) fn settle_lost_chain(&mut self, network: &NetworkId) -> Result<(), StoreError> {
        if self.behind.remove(&network.0).is_some() {
            let me = self.identity.author_id();
            let mut marks = chain_marker::read(&self.store, &me);
            let stored = self
                .store
                .head_of(&network.0, &me)?
                .map_or(0, |(seq, _)| seq);
            marks.insert(network.0.clone(), stored);
            chain_marker::write(&self.store, &me, &marks);
        }
        Ok(())
    }

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Close the node, returning its store.
    pub fn into_store(self) -> Store {
        self.store
    }

    /// Run `f` in one store transaction; on failure drop in-memory caches so
    /// they are reloaded from the rolled-back store.
    fn atomically<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.store.begin().map_err(E::from)?;
        self.finish_atomically(f)
    }

    /// [`Node::atomically`] for work the relay can give again (receiving):
    /// it commits without waiting for the disk unless it queued something
    /// for the relay (see [`Store::begin_relaxed`]).
    fn atomically_relaxed<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.store.begin_relaxed().map_err(E::from)?;
        self.finish_atomically(f)
    }

    fn finish_atomically<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        match f(self) {
            Ok(value) => match self.flush_docs().and_then(|()| self.store.commit()) {
                Ok(()) => {
                    self.after_commit();
                    Ok(value)
                }
                Err(error) => {
                    self.store.rollback();
                    self.drop_caches();
                    Err(E::from(error))
                }
            },
            Err(error) => {
                self.store.rollback();
                self.drop_caches();
                Err(error)
            }
        }
    }

    /// Once a transaction is durable: raise the chain marker for the own
    /// entries it wrote (a store behind it later was rolled back), release
    /// chains caught up from the relay, and after an erasure empty the WAL
    /// so no copy of a shredded key stays in it.
    fn after_commit(&mut self) {
        let me = self.identity.author_id();
        let written = std::mem::take(&mut self.own_written);
        let store = &self.store;
        self.behind.retain(|network, marked| {
            // Unreadable now: keep refusing to write until a read succeeds.
            store
                .head_of(network, &me)
                .map_or(true, |head| head.map_or(0, |(seq, _)| seq) < *marked)
        });
        if !written.is_empty() && self.store.path().is_some() {
            let mut marks = chain_marker::read(&self.store, &me);
            for (network, seq) in written {
                let mark = marks.entry(network).or_insert(0);
                *mark = (*mark).max(seq);
            }
            chain_marker::write(&self.store, &me, &marks);
        }
        if std::mem::take(&mut self.shredded) {
            self.store.checkpoint_wal();
        }
    }

    fn drop_caches(&mut self) {
        if let Some(worker) = self.apply_worker.take() {
            worker.finish();
        }
        self.speculate = false;
        self.speculation_failed = false;
        self.groups.clear();
        self.docs.clear();
        self.dirty.clear();
        self.own_written.clear();
        self.shredded = false;
    }

    /// Messages waiting for the relay, oldest first.
    pub fn poll_outgoing(&mut self) -> Result<Option<Outgoing>, StoreError> {
        Ok(self
            .store
            .outbox(1)?
            .into_iter()
            .next()
            .map(|(id, network, message)| Outgoing {
                id,
                network: NetworkId(network),
                message,
            }))
    }

    /// Up to `limit` waiting messages, oldest first.
    pub fn outgoing(&mut self, limit: usize) -> Result<Vec<Outgoing>, StoreError> {
        Ok(self
            .store
            .outbox(limit)?
            .into_iter()
            .map(|(id, network, message)| Outgoing {
                id,
                network: NetworkId(network),
                message,
            })
            .collect())
    }

    /// The relay has durably taken message `id`: forget it.
    pub fn ack_outgoing(&mut self, id: i64) -> Result<(), StoreError> {
        self.store.ack_outbox(id)
    }

    /// The relay has durably taken every message in `ids`: forget them all
    /// in one store commit.
    pub fn ack_outgoing_all(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        self.store
            .transaction(|| ids.iter().try_for_each(|id| self.store.ack_outbox(*id)))
    }

    /// The relay position this node has consumed for a network.
    pub fn relay_cursor(&self, network: &NetworkId) -> Result<u64, NetworkError> {
        Ok(self.network_row(network)?.relay_cursor)
    }

    fn network_row(&self, network: &NetworkId) -> Result<crate::store::NetworkRow, NetworkError> {
        self.store
            .network(&network.0)?
            .ok_or(NetworkError::UnknownNetwork)
    }
}
