//! The `Network` object: one MLS network as seen by one node.

use std::path::Path;
use std::sync::Arc;

use careledger::entry::AuthorId;
use careledger::node::{ExportFormat, NetworkError, NetworkId};
use careledger::relay::LocalRelay;

use crate::error::ApiError;
use crate::node::{now_ms, SharedNode};
use crate::types::{
    ImportReport, LedgerReport, MemberInfo, NetworkInfo, ReceiveReport, SyncReport,
};

/// One network (an MLS group of institutions and patients' phones) as seen
/// by the `Node` that made this object: membership, records, transport and
/// audit. It shares that node's store and lock, and stays valid as long as
/// any object of the node is alive.
///
/// Membership changes (`invite`, `remove`, `update_keys`) take effect only
/// once their Commit comes back first in relay order: sync afterwards.
#[derive(uniffi::Object)]
pub struct Network {
    pub(crate) shared: Arc<SharedNode>,
    pub(crate) id: NetworkId,
    pub(crate) me: String,
}

impl Network {
    pub(crate) fn new(shared: Arc<SharedNode>, id: NetworkId, me: String) -> Self {
        Network { shared, id, me }
    }
}

#[uniffi::export]
impl Network {
    /// The network id (hex), the same on every member.
    pub fn id(&self) -> String {
        self.id.to_hex()
    }

    /// Label, epoch and membership state.
    pub fn info(&self) -> Result<NetworkInfo, ApiError> {
        self.shared.with(|node| {
            node.networks()?
                .into_iter()
                .find(|info| info.id == self.id)
                .map(NetworkInfo::from)
                .ok_or_else(|| NetworkError::UnknownNetwork.into())
        })
    }

    /// The members of the current epoch.
    pub fn members(&self) -> Result<Vec<MemberInfo>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .members(&self.id)?
                .into_iter()
                .map(|m| MemberInfo::from_core(m, &self.me))
                .collect())
        })
    }

    /// Propose adding the owner of `key_package` (from its `Node.key_package`).
    /// Once the Commit wins (sync), the Welcome for the invitee is queued.
    ///
    /// Errors: `InvalidKeyPackage`, `CommitPending`, `NotAMember`.
    pub fn invite(&self, key_package: Vec<u8>) -> Result<(), ApiError> {
        self.shared
            .with(|node| Ok(node.invite(&self.id, &key_package)?))
    }

    /// Propose removing the member with `author_id` (64 hex digits). Once the
    /// Commit wins, every record is re-keyed: the removed node cannot read
    /// anything written afterwards.
    ///
    /// Errors: `InvalidArgument`, `UnknownMember`, `CommitPending`.
    pub fn remove(&self, author_id: String) -> Result<(), ApiError> {
        let author = AuthorId::from_hex(author_id.trim())
            .ok_or_else(|| ApiError::invalid_argument("author id must be 64 hex digits"))?;
        self.shared.with(|node| Ok(node.remove(&self.id, &author)?))
    }

    /// Propose fresh key material for this node's leaf (post-compromise security).
    pub fn update_keys(&self) -> Result<(), ApiError> {
        self.shared.with(|node| Ok(node.update_keys(&self.id)?))
    }

    /// One full exchange with the local relay file at `relay_path` (created if
    /// missing): announce heads, publish the outbox, fetch and receive
    /// everything new, publish what that produced. Refused relay messages are
    /// listed in the report, never stored.
    pub fn sync_local_relay(&self, relay_path: String) -> Result<SyncReport, ApiError> {
        let mut relay = LocalRelay::open(Path::new(&relay_path))?;
        self.shared.with(|node| {
            let report = careledger::sync::sync(node, &mut relay, &self.id, now_ms())?;
            Ok(SyncReport::from(report))
        })
    }

    /// Feed messages from this network's relay log, in relay order, as one
    /// transaction (the sans-IO path for apps with their own transport).
    /// `relay_seq` is the log position of the last message, saved with the
    /// batch so the app can resume after it (`relay_cursor`).
    ///
    /// If any message is refused (tampered, forged, not from a member) this
    /// raises `MessageRejected` **after** the rest of the batch was applied
    /// and saved: do not resend the batch.
    pub fn receive(
        &self,
        messages: Vec<Vec<u8>>,
        relay_seq: Option<u64>,
    ) -> Result<ReceiveReport, ApiError> {
        self.shared.with(|node| {
            let report = node.receive(&self.id, &messages, relay_seq, now_ms())?;
            match ApiError::rejections(&report) {
                Some(error) => Err(error),
                None => Ok(ReceiveReport::from(&report)),
            }
        })
    }

    /// The relay log position this node has consumed (0 before any).
    pub fn relay_cursor(&self) -> Result<u64, ApiError> {
        self.shared.with(|node| Ok(node.relay_cursor(&self.id)?))
    }

    /// Queue an announcement of this node's chain heads; peers answer by
    /// resending entries lost in transit. `sync_local_relay` does this itself.
    pub fn announce_heads(&self) -> Result<(), ApiError> {
        self.shared.with(|node| Ok(node.announce_heads(&self.id)?))
    }

    /// Queue this node's pending Commit again, in case it was lost in
    /// transit; `false` if none is pending. `sync_local_relay` does this itself.
    pub fn republish_commit(&self) -> Result<bool, ApiError> {
        self.shared
            .with(|node| Ok(node.republish_commit(&self.id)?))
    }

    /// Import FHIR R4 (Bulk NDJSON, or a Bundle of type transaction, batch,
    /// collection or searchset) into the network's records. `source_name`
    /// (e.g. a file name) only labels problems. All or nothing: any invalid
    /// resource raises `InvalidFhir` and nothing is stored.
    pub fn import_fhir(
        &self,
        source_name: String,
        bytes: Vec<u8>,
    ) -> Result<ImportReport, ApiError> {
        self.shared.with(|node| {
            #[cfg(feature = "panic-probe")]
            crate::probe::maybe_panic(&source_name);
            let report = node.import_fhir(&self.id, &source_name, &bytes, now_ms())?;
            Ok(ImportReport::from(report))
        })
    }

    /// A patient's chart as a FHIR `Bundle` (type `collection`), JSON text.
    ///
    /// Errors: `UnknownPatient`, `Record`.
    pub fn export_patient(&self, patient_id: String) -> Result<String, ApiError> {
        self.export(&patient_id, ExportFormat::Bundle)
    }

    /// A patient's chart as FHIR NDJSON (one resource per line).
    pub fn export_patient_ndjson(&self, patient_id: String) -> Result<String, ApiError> {
        self.export(&patient_id, ExportFormat::Ndjson)
    }

    /// Ids of the patients with a record in this network.
    pub fn patients(&self) -> Result<Vec<String>, ApiError> {
        self.shared.with(|node| Ok(node.patients(&self.id)?))
    }

    /// Re-check the whole ledger: signatures, chains, seals, actor bindings.
    /// Problems are listed in the report, never fixed.
    pub fn verify_ledger(&self) -> Result<LedgerReport, ApiError> {
        self.shared
            .with(|node| Ok(LedgerReport::from(node.verify_ledger(&self.id)?)))
    }
}

impl Network {
    fn export(&self, patient_id: &str, format: ExportFormat) -> Result<String, ApiError> {
        self.shared
            .with(|node| Ok(node.export_patient(&self.id, patient_id, format)?))
    }
}
