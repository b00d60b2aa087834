//! The right to erasure: crypto-shredding a chart, or some of its resources.
//!
//! Flow: the patient's node (or an institution recording the request on the
//! patient's behalf, and marked so) calls [`Node::erase`]. In one
//! transaction it writes an erase entry, then does what every honest node
//! does when it accepts one ([`Node::apply_erase`]): it deletes every key of
//! the record it holds and its materialised copy, and keeps a tombstone and
//! the ids of the shredded keys. The record's ciphertext stays in the
//! ledger; [`Node::verify_ledger`] still checks its signatures, chains and
//! epoch seals and counts its changes as unreadable. Erasing some resources
//! shreds the whole chart the same way, then writes the rest of it again,
//! under a fresh key, as a new document (its edit history starts over).
//!
//! - A node offline during the erasure applies it when it syncs.
//! - Changes sealed under a shredded key are accepted into the ledger
//!   unread, by members who held the key and by those who never did, so
//!   chains never stall on them.
//! - A late joiner's history grant holds only the keys that still exist, so
//!   it is never granted the erased ones.
//! - A node that shared the chart into other networks ([`Node::share_to_network`])
//!   erases it there too, when it applies the erasure.
//! - Export, datasets and [`Node::rebuild_records`] show the chart as
//!   erased ([`ExportError::Erased`], [`Node::erased_charts`]).
//!
//! What erasure cannot do: take back what another node already decrypted
//! and copied out (an export, a dataset, a screen), or what a dishonest
//! member keeps in its own store; remove the chart from backups made before;
//! or hide the patient id, which members can still read in the
//! epoch-sealed bodies of the old entries. A model card whose dataset
//! included the chart no longer re-verifies: its dataset step differs.
//!
//! ```
//! use careledger::body::EraseScope;
//! use careledger::keys::StorageKey;
//! use careledger::node::{ExportError, ExportFormat, Node};
//! use careledger::store::Store;
//! let store = Store::open_in_memory(&StorageKey::from_bytes([1; 32])).unwrap();
//! let mut node = Node::create(store, "hospital-a.example").unwrap();
//! let net = node.create_network("care").unwrap();
//! node.import_fhir(&net, "p.ndjson", br#"{"resourceType":"Patient","id":"p1"}"#, 1).unwrap();
//! node.erase(&net, "p1", EraseScope::Chart, 2).unwrap();
//! assert!(matches!(
//!     node.export_patient(&net, "p1", ExportFormat::Bundle),
//!     Err(ExportError::Erased)
//! ));
//! assert!(node.verify_ledger(&net).unwrap().is_clean());
//! ```

use std::collections::BTreeSet;

use super::consent::patient_nodes;
use super::{ExportError, NetworkError, NetworkId, Node};
use crate::body::{EraseBody, EraseScope, EraseSource};
use crate::consent::classify;
use crate::entry::{AuthorId, EntryHeader, EntryId, EntryKind};
use crate::record::fhir::Resource;
use crate::store::{StoreError, Tombstone};

/// What [`Node::erase`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EraseReport {
    /// The networks the chart was erased in: the one asked for, then those
    /// this node had shared it into.
    pub networks: Vec<NetworkId>,
    /// Record keys shredded, over all of them.
    pub keys_shredded: usize,
    /// Resources written again (erasing some resources only).
    pub resources_kept: usize,
    /// Ledger entries written.
    pub entries: usize,
    /// Whether this node wrote as one of the patient's own nodes.
    pub by_patient: bool,
}

/// A chart erased in a network, as this node's tombstone shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedChart {
    /// The patient id.
    pub patient: String,
    /// The erase entry.
    pub entry: EntryId,
    /// Who wrote it.
    pub author: AuthorId,
    /// When (author-claimed, ms since the Unix epoch).
    pub time_ms: u64,
    /// The whole chart (`true`) or some of its resources.
    pub whole_chart: bool,
}

/// Erasing failed; nothing was written or deleted.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// No chart for that patient in this network.
    #[error("no record for that patient in this network")]
    UnknownPatient,
    /// The chart was erased already.
    #[error("the patient's chart was erased already")]
    AlreadyErased,
    /// A resource to erase is not in the chart (named by type only).
    #[error("the chart has no {0} resource with that id")]
    UnknownResource(String),
    /// Erasing resources needs at least one.
    #[error("no resources named to erase")]
    NothingToErase,
    /// The chart could not be read or written.
    #[error("record: {0}")]
    Record(String),
    /// The network is not usable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ExportError> for EraseError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::UnknownPatient => EraseError::UnknownPatient,
            ExportError::Erased => EraseError::AlreadyErased,
            ExportError::Record(text) => EraseError::Record(text),
            ExportError::Network(error) => EraseError::Network(error),
            ExportError::Store(error) => EraseError::Store(error),
        }
    }
}

impl Node {
    /// Erase a patient's chart (or, with [`EraseScope::Resources`], some of
    /// its resources) in `network` and in every network this node shared it
    /// into. See the [module docs](self).
    pub fn erase(
        &mut self,
        network: &NetworkId,
        patient: &str,
        scope: EraseScope,
        now_ms: u64,
    ) -> Result<EraseReport, EraseError> {
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        let resources = self.existing_doc(network, patient)?.resources();
        let resources = resources.map_err(|e| EraseError::Record(e.to_string()))?;
        if let EraseScope::Resources(list) = &scope {
            if list.is_empty() {
                return Err(EraseError::NothingToErase);
            }
            for (resource_type, id) in list {
                if !resources
                    .iter()
                    .any(|r| r.resource_type() == resource_type && r.id() == id)
                {
                    return Err(EraseError::UnknownResource(resource_type.clone()));
                }
            }
        }
        let me = self.identity.author_id();
        let by_patient = !classify(&me, &patient_nodes(&resources)).is_on_behalf();
        self.atomically(|node| {
            let mut report = EraseReport {
                by_patient,
                ..EraseReport::default()
            };
            let mut visited = BTreeSet::new();
            node.erase_here(network, patient, &scope, now_ms, &mut visited, &mut report)?;
            Ok(report)
        })
    }

    /// The charts erased in a network (as the tombstones this node keeps).
    pub fn erased_charts(&self, network: &NetworkId) -> Result<Vec<ErasedChart>, NetworkError> {
        self.network_row(network)?;
        Ok(self
            .store
            .tombstones(&network.0)?
            .into_iter()
            .map(|stone| ErasedChart {
                patient: stone.record,
                entry: stone.entry,
                author: stone.author,
                time_ms: stone.time_ms,
                whole_chart: stone.scope == 1,
            })
            .collect())
    }

    /// Write an erase entry for `record` in `network` and apply it here,
    /// then cascade; writes nothing where this node holds nothing of it.
    fn erase_here(
        &mut self,
        network: &NetworkId,
        record: &str,
        scope: &EraseScope,
        now_ms: u64,
        visited: &mut BTreeSet<Vec<u8>>,
        report: &mut EraseReport,
    ) -> Result<(), EraseError> {
        if !visited.insert(network.0.clone()) {
            return Ok(());
        }
        let key_ids = self.store.all_record_key_ids(&network.0, record)?;
        let has_record = self.store.has_record(&network.0, record)?;
        if key_ids.is_empty() && !has_record {
            return Ok(());
        }
        let resources: Vec<Resource> = if has_record {
            let actor = self.identity.author_id();
            self.doc_mut(network, record, actor)?
                .resources()
                .map_err(|e| EraseError::Record(e.to_string()))?
        } else {
            Vec::new()
        };
        let me = self.identity.author_id();
        let source = if classify(&me, &patient_nodes(&resources)).is_on_behalf() {
            EraseSource::OnBehalf
        } else {
            EraseSource::PatientNode
        };
        let kept: Vec<Resource> = match scope {
            EraseScope::Chart => Vec::new(),
            EraseScope::Resources(list) => resources
                .into_iter()
                .filter(|r| {
                    !list
                        .iter()
                        .any(|(t, id)| r.resource_type() == t && r.id() == id)
                })
                .collect(),
        };
        let body = EraseBody {
            record: record.to_owned(),
            scope: scope.clone(),
            key_ids,
            source,
        };
        let header = self.next_header(network, EntryKind::Erase, now_ms)?;
        let id = self.seal_append(network, header.clone(), &body.encode())?;
        report.entries += 1;
        report.keys_shredded += self.shred(network, &body, &header, &id)?;
        report.networks.push(network.clone());
        if !kept.is_empty() {
            let actor = self.identity.author_id();
            let change = self
                .doc_mut(network, record, actor)?
                .upsert(&kept, now_ms as i64)
                .map_err(|e| EraseError::Record(e.to_string()))?;
            if let Some(change) = change {
                report.entries +=
                    self.write_changes(network, vec![(record.to_owned(), change)], now_ms)?;
            }
            report.resources_kept += kept.len();
        }
        for target in self.share_targets(network)? {
            self.erase_here(&target, record, scope, now_ms, visited, report)?;
        }
        Ok(())
    }

    /// Networks this node shares `network`'s charts into and may still write in.
    fn share_targets(&mut self, network: &NetworkId) -> Result<Vec<NetworkId>, StoreError> {
        let mut targets: Vec<NetworkId> = self
            .store
            .shares_from(&network.0)?
            .into_iter()
            .map(|(to, _)| NetworkId(to))
            .collect();
        targets.dedup();
        let mut out = Vec::new();
        for target in targets {
            match self.is_member(&target) {
                Ok(true) => out.push(target),
                Ok(false) | Err(NetworkError::UnknownNetwork) => {}
                Err(NetworkError::Store(error)) => return Err(error),
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// Delete the record's keys and materialised copy, keep the tombstone
    /// and the shredded key ids; returns how many keys this node deleted.
    fn shred(
        &mut self,
        network: &NetworkId,
        body: &EraseBody,
        header: &EntryHeader,
        id: &EntryId,
    ) -> Result<usize, StoreError> {
        let deleted = self.store.delete_record_keys(&network.0, &body.record)?;
        for key_id in deleted.iter().chain(&body.key_ids) {
            self.store
                .put_shredded_key(&network.0, &body.record, key_id)?;
        }
        self.store.delete_record(&network.0, &body.record)?;
        let cached = (network.0.clone(), body.record.clone());
        self.settle_docs();
        self.docs.remove(&cached);
        self.dirty.remove(&cached);
        self.store.put_tombstone(
            &network.0,
            &Tombstone {
                record: body.record.clone(),
                entry: *id,
                author: header.author,
                time_ms: header.time_ms,
                scope: match body.scope {
                    EraseScope::Chart => 1,
                    EraseScope::Resources(_) => 2,
                },
            },
        )?;
        self.store.set_consent_due(&network.0, &body.record, None)?;
        self.shredded = true;
        Ok(deleted.len())
    }

    /// Accepting an erase entry of another node: shred here, then erase the
    /// chart in the networks this node shared it into. A network it can no
    /// longer write in is skipped (the erasure then does not reach that
    /// network's other members from here).
    pub(crate) fn apply_erase(
        &mut self,
        network: &NetworkId,
        body: &EraseBody,
        header: &EntryHeader,
        id: &EntryId,
    ) -> Result<(), StoreError> {
        self.shred(network, body, header, id)?;
        let mut visited = BTreeSet::from([network.0.clone()]);
        let mut report = EraseReport::default();
        let now_ms = self.clock.max(header.time_ms);
        for target in self.share_targets(network)? {
            match self.erase_here(
                &target,
                &body.record,
                &body.scope,
                now_ms,
                &mut visited,
                &mut report,
            ) {
                Ok(()) => {}
                Err(EraseError::Store(error)) => return Err(error),
                Err(EraseError::Network(NetworkError::Store(error))) => return Err(error),
                Err(_) => {}
            }
        }
        Ok(())
    }
}
