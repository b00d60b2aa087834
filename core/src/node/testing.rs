//! Hooks for adversarial tests (feature `test-hooks`): they hand out a node's
//! own secrets so a test can play a member that forges entries. Never enable
//! this feature in a product build.

use ed25519_dalek::SigningKey;

use super::{NetworkId, Node};
use crate::body::RecordKeyGrant;
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
}
