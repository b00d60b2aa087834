//! Opening fixture nodes from their SQLite files.

use std::path::Path;

use careledger::keys::StorageKey;
use careledger::node::Node;
use careledger::store::Store;
use careledger::wire::WireMessage;

use crate::fixture;

/// Writes `bytes` as `dir/node.sqlite` and opens it as a node with the fixture key.
pub fn open_copy(dir: &Path, bytes: &[u8]) -> Node {
    let path = dir.join("node.sqlite");
    std::fs::write(&path, bytes).expect("write store file");
    reopen(dir)
}

/// Reopens `dir/node.sqlite` (a restart).
pub fn reopen(dir: &Path) -> Node {
    let key = StorageKey::from_bytes(fixture::STORAGE_KEY);
    let store = Store::open(&dir.join("node.sqlite"), &key).expect("fixture store opens");
    Node::open(store).expect("fixture node opens")
}

/// Tries `message` as a Welcome (a wire message or a bare MLS message).
pub fn try_join(node: &mut Node, message: &[u8]) -> bool {
    let welcome = match WireMessage::decode(message) {
        Ok(WireMessage::Welcome(bytes)) => bytes,
        _ => message.to_vec(),
    };
    node.join(&welcome, fixture::LABEL).is_ok()
}

/// Acknowledges everything in the outbox, as a relay would.
pub fn drain_outbox(node: &mut Node) {
    while let Ok(Some(out)) = node.poll_outgoing() {
        if node.ack_outgoing(out.id).is_err() {
            break;
        }
    }
}
