//! Hooks for adversarial tests (feature `test-hooks`): they hand out a node's
//! own secrets so a test can play a member that forges entries. Never enable
//! this feature in a product build.

use ed25519_dalek::SigningKey;

use super::{NetworkId, Node, RejectEntryError};
use crate::body::RecordKeyGrant;
use crate::entry::{Entry, EntryKind};
use crate::keys::EpochKey;

impl Node {
    /// The node's Ed25519 signing key.
    pub fn signing_key_for_testing(&self) -> SigningKey {
        self.identity.signing_key().clone()
    }

    /// The epoch key this node holds for `epoch`.
    pub fn epoch_key_for_testing(&self, network: &NetworkId, epoch: u64) -> Option<EpochKey> {
        self.store
            .epoch_key(&network.0, epoch)
            .ok()
            .flatten()
            .map(EpochKey::from)
    }

    /// The current key of a record.
    pub fn record_key_for_testing(
        &self,
        network: &NetworkId,
        record: &str,
    ) -> Option<RecordKeyGrant> {
        self.store
            .current_record_key(&network.0, record)
            .ok()
            .flatten()
    }

    /// Open a stored or relayed record-change entry with the keys this node
    /// holds, without storing anything: `(record id, Automerge change bytes)`.
    /// Lets a test compare what each reader decrypts with what the author wrote.
    pub fn open_record_change_for_testing(
        &self,
        network: &NetworkId,
        bytes: &[u8],
    ) -> Result<(String, Vec<u8>), RejectEntryError> {
        let entry = Entry::decode(bytes)?;
        if entry.header.kind != EntryKind::RecordChange {
            return Err(RejectEntryError::MalformedBody(
                "not a record change".into(),
            ));
        }
        let key = self
            .store
            .epoch_key(&network.0, entry.header.epoch)
            .ok()
            .flatten()
            .ok_or(RejectEntryError::NoEpochKey(entry.header.epoch))?;
        let body = entry
            .open(&EpochKey::from(key))
            .map_err(RejectEntryError::Seal)?;
        self.open_record_change(network, &entry, &body)
            .map_err(|e| RejectEntryError::BadChange(e.to_string()))?
    }

    /// The private keys in this node's MLS state (HPKE leaf and epoch keys,
    /// key package init keys), and its signing key: what a test must not
    /// find in the store file.
    pub fn mls_private_keys_for_testing(&self) -> Vec<Vec<u8>> {
        fn walk(value: &serde_json::Value, private: bool, out: &mut Vec<Vec<u8>>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (name, inner) in map {
                        walk(inner, private || name.contains("private"), out);
                    }
                }
                serde_json::Value::Array(items) => {
                    let bytes: Option<Vec<u8>> = items
                        .iter()
                        .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                        .collect();
                    match bytes {
                        Some(bytes) if private && bytes.len() >= 16 => out.push(bytes),
                        _ => items.iter().for_each(|v| walk(v, private, out)),
                    }
                }
                _ => {}
            }
        }
        let mut out = vec![self.identity.signing_key().to_bytes().to_vec()];
        for plain in self.store.mls_values_for_testing() {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&plain) {
                walk(&value, false, &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Open a stored entry's body with the epoch key this node holds:
    /// `(kind, body)`.
    pub fn open_entry_for_testing(
        &self,
        network: &NetworkId,
        bytes: &[u8],
    ) -> Result<(EntryKind, Vec<u8>), RejectEntryError> {
        let entry = Entry::decode(bytes)?;
        let key = self
            .store
            .epoch_key(&network.0, entry.header.epoch)
            .ok()
            .flatten()
            .ok_or(RejectEntryError::NoEpochKey(entry.header.epoch))?;
        let body = entry
            .open(&EpochKey::from(key))
            .map_err(RejectEntryError::Seal)?;
        Ok((entry.header.kind, body))
    }

    /// Every key id this node holds for a record.
    pub fn record_key_ids_for_testing(&self, network: &NetworkId, record: &str) -> Vec<[u8; 16]> {
        self.store
            .record_key_ids(&network.0, record)
            .unwrap_or_default()
    }
}
