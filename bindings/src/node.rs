//! The `Node` object: one participant's store and identity.

use std::path::Path;
use std::sync::{Arc, Mutex};

use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node as CoreNode};
use careledger::relay::LocalRelay;
use careledger::store::Store;
use zeroize::Zeroize;

use crate::error::ApiError;
use crate::network::Network;
use crate::types::{MemberInfo, NetworkInfo, OutgoingMessage};

/// Milliseconds since the Unix epoch: the core is sans-IO and takes time as
/// an argument; the bindings read the system clock for it.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A core node behind a lock, shared by a `Node` and its `Network`s.
pub(crate) struct SharedNode {
    node: Mutex<CoreNode>,
}

impl SharedNode {
    /// Run `f` with the node locked. A lock poisoned by a panic inside an
    /// earlier call stays refused: the core may have been mid-transaction.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut CoreNode) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut node = self.node.lock().map_err(|_| ApiError::node_unusable())?;
        f(&mut node)
    }
}

/// Parse a hex network id as `Network` and `Node` methods receive it.
pub(crate) fn network_id(hex: &str) -> Result<NetworkId, ApiError> {
    NetworkId::from_hex(hex)
        .ok_or_else(|| ApiError::invalid_argument("network id must be 1-255 bytes in hex"))
}

fn storage_key(mut bytes: Vec<u8>) -> Result<StorageKey, ApiError> {
    let key = <[u8; 32]>::try_from(bytes.as_slice())
        .map(StorageKey::from_bytes)
        .map_err(|_| ApiError::invalid_argument("storage key must be exactly 32 bytes"));
    bytes.zeroize();
    key
}

/// One participant: a hospital's server, a clinician's app or a patient's
/// phone. It owns one SQLite store file, sealed under a 32-byte storage key
/// the app keeps in the platform keychain, and one signing identity.
///
/// A `Node` is thread-safe: calls on it and on its `Network`s are serialized.
/// Open each store file through one `Node` per process. Every call is
/// synchronous and may do disk I/O: call it off the UI thread.
#[derive(uniffi::Object)]
pub struct Node {
    pub(crate) shared: Arc<SharedNode>,
    name: String,
    author_id: String,
    fingerprint: String,
}

impl Node {
    fn wrap(node: CoreNode) -> Arc<Self> {
        let identity = node.identity();
        Arc::new(Node {
            name: identity.name().to_owned(),
            author_id: identity.author_id().to_hex(),
            fingerprint: identity.fingerprint(),
            shared: Arc::new(SharedNode {
                node: Mutex::new(node),
            }),
        })
    }

    fn network_object(&self, id: NetworkId) -> Arc<Network> {
        Arc::new(Network::new(
            self.shared.clone(),
            id,
            self.author_id.clone(),
        ))
    }
}

#[uniffi::export]
impl Node {
    /// Create a new identity named `name` (1–255 printable ASCII characters
    /// without spaces, e.g. `hospital-a.example`) in a new store file at
    /// `path`, sealed under `storage_key` (exactly 32 bytes).
    ///
    /// Errors: `InvalidArgument` (key length, name), `Identity` (the store
    /// already holds an identity), `WrongStorageKey`, `Store`.
    #[uniffi::constructor]
    pub fn create(path: String, storage_key: Vec<u8>, name: String) -> Result<Arc<Self>, ApiError> {
        let key = self::storage_key(storage_key)?;
        let store = Store::open(Path::new(&path), &key)?;
        Ok(Self::wrap(CoreNode::create(store, &name)?))
    }

    /// Open the store file at `path` whose identity was created before.
    ///
    /// Errors: `InvalidArgument` (key length), `WrongStorageKey`, `Identity`
    /// (no store file, or no identity in it yet), `Store`.
    #[uniffi::constructor]
    pub fn open(path: String, storage_key: Vec<u8>) -> Result<Arc<Self>, ApiError> {
        let key = self::storage_key(storage_key)?;
        // Opening creates a missing file; an app probing with `open` before
        // `create` must not be left with an empty store under some key.
        if !Path::new(&path).exists() {
            return Err(ApiError::Identity {
                reason: "no store file at that path; create the node first".into(),
            });
        }
        let store = Store::open(Path::new(&path), &key)?;
        Ok(Self::wrap(CoreNode::open(store)?))
    }

    /// The node name in this node's credential.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// This node's author id (64 hex digits).
    pub fn author_id(&self) -> String {
        self.author_id.clone()
    }

    /// This node's fingerprint: eight groups of four hex digits that people
    /// compare out of band before an invite.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// A fresh MLS KeyPackage: give it to a member, who passes it to
    /// `Network.invite`. Each key package serves one invite.
    pub fn key_package(&self) -> Result<Vec<u8>, ApiError> {
        self.shared.with(|node| Ok(node.key_package()?))
    }

    /// Who a key package names (checked: signature, ciphersuite), so an
    /// operator can compare its fingerprint before inviting.
    pub fn inspect_key_package(&self, key_package: Vec<u8>) -> Result<MemberInfo, ApiError> {
        self.shared.with(|node| {
            let member = node.inspect_key_package(&key_package)?;
            Ok(MemberInfo::from_core(member, &self.author_id))
        })
    }

    /// Create a network with this node as its only member; `label` is local.
    pub fn create_network(&self, label: String) -> Result<Arc<Network>, ApiError> {
        let id = self.shared.with(|node| Ok(node.create_network(&label)?))?;
        Ok(self.network_object(id))
    }

    /// Join a network from a Welcome made for one of this node's key
    /// packages: the raw MLS Welcome or the relay message carrying it, as it
    /// left the inviter's outbox (`MessageKind.Welcome`). Then feed the
    /// network's relay log to `Network.receive` to catch up.
    pub fn join_network(&self, welcome: Vec<u8>, label: String) -> Result<Arc<Network>, ApiError> {
        let id = self.shared.with(|node| Ok(node.join(&welcome, &label)?))?;
        Ok(self.network_object(id))
    }

    /// Join `network_id` from the Welcome an inviter left in the local relay
    /// file at `relay_path`, then catch up on the network's history.
    ///
    /// Errors: `InvalidWelcome` when the relay holds no Welcome for this
    /// node yet (the inviter has to sync after inviting), `Relay`, `Store`.
    pub fn join_from_local_relay(
        &self,
        relay_path: String,
        network_id: String,
        label: String,
    ) -> Result<Arc<Network>, ApiError> {
        let id = self::network_id(&network_id)?;
        let mut relay = LocalRelay::open(Path::new(&relay_path))?;
        self.shared.with(|node| {
            careledger::sync::join_from_relay(node, &mut relay, &id, &label, now_ms())?;
            Ok(())
        })?;
        Ok(self.network_object(id))
    }

    /// A network this node belongs (or belonged) to, by hex id.
    ///
    /// Errors: `InvalidArgument` (not hex), `UnknownNetwork`.
    pub fn network(&self, network_id: String) -> Result<Arc<Network>, ApiError> {
        let id = self::network_id(&network_id)?;
        // Any per-network query answers `UnknownNetwork` for a stranger.
        self.shared
            .with(|node| Ok(node.is_member(&id).map(drop)?))?;
        Ok(self.network_object(id))
    }

    /// Every network in this store, including those this node was removed from.
    pub fn networks(&self) -> Result<Vec<NetworkInfo>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .networks()?
                .into_iter()
                .map(NetworkInfo::from)
                .collect())
        })
    }

    /// The oldest message waiting for the transport, if any (for an app that
    /// carries messages itself rather than through `Network.sync_local_relay`).
    /// It stays queued until `ack_outgoing`.
    pub fn poll_outgoing(&self) -> Result<Option<OutgoingMessage>, ApiError> {
        self.shared
            .with(|node| Ok(node.poll_outgoing()?.map(OutgoingMessage::from)))
    }

    /// Up to `limit` waiting messages, oldest first, for every network. They
    /// stay queued until `ack_outgoing`; send them in this order.
    pub fn outgoing(&self, limit: u32) -> Result<Vec<OutgoingMessage>, ApiError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.shared.with(|node| {
            Ok(node
                .outgoing(limit)?
                .into_iter()
                .map(OutgoingMessage::from)
                .collect())
        })
    }

    /// The transport has durably taken outgoing message `id`: forget it.
    pub fn ack_outgoing(&self, id: i64) -> Result<(), ApiError> {
        self.shared.with(|node| Ok(node.ack_outgoing(id)?))
    }
}
