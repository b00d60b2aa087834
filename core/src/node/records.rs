//! Patient records in a network: import, edit, export.
//!
//! Each patient's chart is one Automerge document (layout in
//! [`crate::record::doc`]), written with this node's author id as actor. An
//! import is one transaction: FHIR is parsed and validated whole first (any
//! invalid resource rejects the batch, nothing is stored), then each touched
//! record gets one Automerge change, sealed under the record key inside one
//! entry. New records get a fresh record key, granted in one key-grant entry
//! that precedes the changes in this node's chain.
//!
//! Materialised documents are a cache: loaded on demand (opening a store and
//! reading one chart loads only that chart), saved at the end of the
//! transaction that changed them, and rebuildable from the ledger with
//! [`Node::rebuild_records`].

use super::apply_worker::ApplyWorker;
use super::{
    EditError, ExportError, ExportFormat, ImportError, ImportReport, NetworkError, NetworkId, Node,
};
use crate::body::{KeyGrantBody, RecordChangeBody, RecordKeyGrant};
use crate::entry::{AuthorId, EntryKind};
use crate::keys::{seal, SecretKey};
use crate::record::doc::{MemberConflict, RecordDoc};
use crate::record::fhir::{group_by_patient, parse_auto, Resource};
use crate::store::StoreError;

/// Increments a saved record collects before it is compacted.
const COMPACT_AFTER: usize = 32;

/// Longest record (patient) id: it travels in a one-byte-length field.
const MAX_RECORD_ID_LEN: usize = 255;

impl Node {
    pub(crate) fn doc_mut(
        &mut self,
        network: &NetworkId,
        record: &str,
        actor: AuthorId,
    ) -> Result<&mut RecordDoc, StoreError> {
        self.settle_docs();
        let key = (network.0.clone(), record.to_owned());
        if !self.docs.contains_key(&key) {
            let doc = self.load_doc(&key, actor)?;
            self.docs.insert(key.clone(), doc);
        }
        self.docs
            .get_mut(&key)
            .ok_or(StoreError::Corrupt("records"))
    }

    /// A record's document as the store has it (empty if it has none).
    pub(super) fn load_doc(
        &self,
        (network, record): &(Vec<u8>, String),
        actor: AuthorId,
    ) -> Result<RecordDoc, StoreError> {
        let base = self.store.load_record(network, record)?;
        let increments = self.store.record_increments(network, record)?;
        if base.is_none() && increments.is_empty() {
            Ok(RecordDoc::new(&actor.0))
        } else {
            RecordDoc::load_with_increments(base.as_deref(), &increments, &actor.0)
                .map_err(|_| StoreError::Corrupt("records.doc"))
        }
    }

    /// Save every document changed in this transaction: only each
    /// transaction's changes (a record starts as increments over an empty
    /// document), compacted into one saved document every [`COMPACT_AFTER`]
    /// increments. Rewriting whole documents on every transaction cost more
    /// than the ledger itself.
    pub(crate) fn flush_docs(&mut self) -> Result<(), StoreError> {
        self.settle_docs();
        debug_assert!(
            !self.speculation_failed,
            "a failed speculative batch is rolled back, never saved"
        );
        for key in std::mem::take(&mut self.dirty) {
            let Some(doc) = self.docs.get_mut(&key) else {
                continue;
            };
            let increment = doc.save_increment();
            if increment.is_empty()
                || self
                    .store
                    .append_record_increment(&key.0, &key.1, &increment)?
                    < COMPACT_AFTER
            {
                continue;
            }
            let saved = doc.save_uncompressed();
            self.store.save_record(&key.0, &key.1, &saved)?;
        }
        Ok(())
    }

    /// Import FHIR R4 (Bulk NDJSON, a Bundle, or one resource) into the
    /// network's records. Every resource is validated against FHIR R4
    /// ([`crate::record::r4`]). All or nothing: any invalid resource rejects
    /// the whole batch, and the error names every problem by source, line,
    /// field and element.
    pub fn import_fhir(
        &mut self,
        network: &NetworkId,
        source: &str,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<ImportReport, ImportError> {
        let resources = parse_auto(source, bytes)?;
        self.import_resources(network, resources, now_ms)
    }

    /// [`Node::import_fhir`] without the FHIR R4 validation (the structural
    /// rules only), to measure what validation costs (`benches/validate.rs`).
    /// Only with the `test-hooks` feature: product builds always validate.
    #[cfg(feature = "test-hooks")]
    pub fn import_fhir_structure_only(
        &mut self,
        network: &NetworkId,
        source: &str,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<ImportReport, ImportError> {
        let resources = crate::record::fhir::parse_auto_structure_only(source, bytes)?;
        self.import_resources(network, resources, now_ms)
    }

    fn import_resources(
        &mut self,
        network: &NetworkId,
        resources: Vec<Resource>,
        now_ms: u64,
    ) -> Result<ImportReport, ImportError> {
        let count = resources.len();
        let groups = group_by_patient(resources)?;
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        if groups.keys().any(|p| p.len() > MAX_RECORD_ID_LEN) {
            return Err(ImportError::Record(
                "patient id longer than 255 bytes".into(),
            ));
        }
        self.atomically(|node| {
            let patients: Vec<String> = groups.keys().cloned().collect();
            node.decide_all_due(network, &patients, now_ms)?;
            let mut report = ImportReport {
                resources: count,
                patients: groups.len(),
                entries: node.grant_missing_keys(network, &patients, now_ms)?,
                ..ImportReport::default()
            };
            // Each patient's resources are mapped into its document on a
            // second thread while the changes already mapped are sealed,
            // signed and stored here (see `apply_worker`).
            let me = node.identity.author_id();
            let (upserted, count) = match ApplyWorker::start_upserts() {
                Some((mut worker, upserted)) => {
                    let count = groups.len();
                    for (patient, resources) in groups {
                        let key = (network.0.clone(), patient);
                        let doc = match node.docs.remove(&key) {
                            Some(doc) => doc,
                            None => node.load_doc(&key, me)?,
                        };
                        if let Err(doc) = worker.give(key.clone(), doc) {
                            node.docs.insert(key, *doc);
                            break;
                        }
                        worker.upsert(key, resources, now_ms as i64);
                    }
                    node.apply_worker = Some(worker);
                    (upserted, count)
                }
                None => {
                    // No thread: map on this one.
                    let mut changes = Vec::new();
                    for (patient, resources) in &groups {
                        let doc = node.doc_mut(network, patient, me)?;
                        changes.push((patient.clone(), doc.upsert(resources, now_ms as i64)));
                    }
                    let (results, upserted) = std::sync::mpsc::channel();
                    for change in changes {
                        results.send(change).ok();
                    }
                    (upserted, groups.len())
                }
            };
            for _ in 0..count {
                let Ok((patient, change)) = upserted.recv() else {
                    return Err(ImportError::Record(
                        "the record mapping thread stopped".into(),
                    ));
                };
                let change = change.map_err(|e| ImportError::Record(e.to_string()))?;
                if let Some(change) = change {
                    node.seal_change(network, patient, &change, now_ms)?;
                    report.changes += 1;
                    report.entries += 1;
                }
            }
            node.settle_docs();
            if std::mem::take(&mut node.speculation_failed) {
                return Err(ImportError::Record(
                    "the record mapping thread lost a record".into(),
                ));
            }
            Ok(report)
        })
    }

    /// A new random record key (not stored yet).
    pub(crate) fn fresh_record_key(&self, record: &str) -> Result<RecordKeyGrant, StoreError> {
        Ok(RecordKeyGrant {
            record: record.to_owned(),
            key_id: self.store.random()?,
            key: SecretKey::from_bytes(self.store.random()?),
        })
    }

    /// Seal and append record changes, granting keys for records that have none.
    /// Returns the number of entries written.
    pub(crate) fn write_changes(
        &mut self,
        network: &NetworkId,
        changes: Vec<(String, Vec<u8>)>,
        now_ms: u64,
    ) -> Result<usize, NetworkError> {
        let records: Vec<String> = changes.iter().map(|(record, _)| record.clone()).collect();
        self.decide_all_due(network, &records, now_ms)?;
        let mut written = self.grant_missing_keys(network, &records, now_ms)?;
        for (record, change) in changes {
            self.seal_change(network, record, &change, now_ms)?;
            written += 1;
        }
        Ok(written)
    }

    /// A grant that ended by now is cut off before anything more is sealed
    /// for its grantee (see `expiry`).
    fn decide_all_due(
        &mut self,
        network: &NetworkId,
        records: &[String],
        now_ms: u64,
    ) -> Result<(), NetworkError> {
        for record in records {
            self.decide_if_due(network, record, now_ms)
                .map_err(|error| match error {
                    super::ConsentError::Network(error) => error,
                    super::ConsentError::Store(error) => NetworkError::Store(error),
                    other => NetworkError::ConsentDecision(other.to_string()),
                })?;
        }
        Ok(())
    }

    /// Create a key for each record that has none, and grant them to the
    /// network in one entry. Returns the number of entries written (0 or 1).
    fn grant_missing_keys(
        &mut self,
        network: &NetworkId,
        records: &[String],
        now_ms: u64,
    ) -> Result<usize, NetworkError> {
        let mut new_keys = Vec::new();
        for record in records {
            if self.store.current_record_key(&network.0, record)?.is_none() {
                let grant = self.fresh_record_key(record)?;
                self.store.put_record_key(&network.0, &grant)?;
                new_keys.push(grant);
            }
        }
        if new_keys.is_empty() {
            return Ok(0);
        }
        let body = KeyGrantBody {
            epochs: Vec::new(),
            members: Vec::new(),
            record_keys: new_keys,
        };
        self.append_entry(network, EntryKind::KeyGrant, &body.encode(), now_ms)?;
        Ok(1)
    }

    /// Seal one record change under the record's key and append it.
    fn seal_change(
        &mut self,
        network: &NetworkId,
        record: String,
        change: &[u8],
        now_ms: u64,
    ) -> Result<(), NetworkError> {
        // A record withheld from this network (consent) is written under
        // the withheld key, whatever keys others granted since.
        let key = match self.store.withholding_key(&network.0, &record)? {
            Some(key) => key,
            None => self
                .store
                .current_record_key(&network.0, &record)?
                .ok_or(StoreError::Corrupt("record_keys"))?,
        };
        let header = self.next_header(network, EntryKind::RecordChange, now_ms)?;
        let aad = RecordChangeBody::inner_aad(&header.encode(), &record);
        let sealed = seal(&key.key, &aad, change, self.store.random()?)
            .map_err(|e| NetworkError::Mls(e.to_string()))?;
        let body = RecordChangeBody {
            record: record.clone(),
            key_id: key.key_id,
            change: sealed.to_bytes(),
        };
        self.seal_append(network, header, &body.encode())?;
        self.dirty.insert((network.0.clone(), record));
        Ok(())
    }

    /// Set (or, with `json = None`, delete) one top-level member of one
    /// resource in a patient's record. Returns whether anything changed.
    #[allow(clippy::too_many_arguments)]
    pub fn edit_member(
        &mut self,
        network: &NetworkId,
        patient: &str,
        resource_type: &str,
        id: &str,
        member: &str,
        json: Option<&str>,
        now_ms: u64,
    ) -> Result<bool, EditError> {
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        if !self.store.has_record(&network.0, patient)? {
            return Err(EditError::UnknownPatient);
        }
        self.atomically(|node| {
            let doc = node.doc_mut(network, patient, node.identity.author_id())?;
            let change = doc
                .set_member(resource_type, id, member, json, now_ms as i64)
                .map_err(|e| EditError::Record(e.to_string()))?;
            match change {
                Some(change) => {
                    node.write_changes(network, vec![(patient.to_owned(), change)], now_ms)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    /// Patients with a record in the network.
    pub fn patients(&self, network: &NetworkId) -> Result<Vec<String>, NetworkError> {
        self.network_row(network)?;
        Ok(self.store.records(&network.0)?)
    }

    pub(crate) fn existing_doc(
        &mut self,
        network: &NetworkId,
        patient: &str,
    ) -> Result<&mut RecordDoc, ExportError> {
        self.network_row(network)?;
        self.settle_docs();
        if !self.store.has_record(&network.0, patient)?
            && !self
                .docs
                .contains_key(&(network.0.clone(), patient.to_owned()))
        {
            if self.store.tombstone(&network.0, patient)?.is_some() {
                return Err(ExportError::Erased);
            }
            return Err(ExportError::UnknownPatient);
        }
        let actor = self.identity.author_id();
        Ok(self.doc_mut(network, patient, actor)?)
    }

    /// A patient's chart as canonical FHIR JSON (Bundle) or NDJSON.
    pub fn export_patient(
        &mut self,
        network: &NetworkId,
        patient: &str,
        format: ExportFormat,
    ) -> Result<String, ExportError> {
        let doc = self.existing_doc(network, patient)?;
        match format {
            ExportFormat::Bundle => doc.export_bundle(),
            ExportFormat::Ndjson => doc.export_ndjson(),
        }
        .map_err(|e| ExportError::Record(e.to_string()))
    }

    /// A patient's raw Automerge document (loadable by any Automerge implementation).
    pub fn export_doc(
        &mut self,
        network: &NetworkId,
        patient: &str,
    ) -> Result<Vec<u8>, ExportError> {
        Ok(self.existing_doc(network, patient)?.save())
    }

    /// Same-member concurrent edits in a patient's record (Automerge kept a
    /// deterministic winner; the others are still visible here).
    pub fn conflicts(
        &mut self,
        network: &NetworkId,
        patient: &str,
    ) -> Result<Vec<MemberConflict>, ExportError> {
        Ok(self.existing_doc(network, patient)?.conflicts())
    }

    /// Automerge heads of a patient's record.
    pub fn record_heads(
        &mut self,
        network: &NetworkId,
        patient: &str,
    ) -> Result<Vec<[u8; 32]>, ExportError> {
        Ok(self.existing_doc(network, patient)?.heads())
    }

    /// Drop the materialised records and replay them from the ledger.
    pub fn rebuild_records(&mut self, network: &NetworkId) -> Result<usize, NetworkError> {
        self.atomically(|node| {
            node.store.clear_records(&network.0)?;
            node.settle_docs();
            node.docs.retain(|key, _| key.0 != network.0);
            node.dirty.retain(|key| key.0 != network.0);
            let mut applied = 0;
            for bytes in node.store.entries(&network.0)? {
                if node.replay_entry(network, &bytes)? {
                    applied += 1;
                }
            }
            Ok(applied)
        })
    }
}
