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
}
