//! Pumping a node against a relay.
//!
//! [`sync`] is the whole exchange for one network: announce our heads,
//! publish the outbox, fetch everything after our cursor in pages and feed it
//! to [`Node::receive`] (one transaction per page, cursor saved with it), then
//! publish what that produced (resends, Welcomes, key grants) and re-publish a
//! commit of ours that is still waiting (it may have been lost).
//!
//! ```
//! use careledger::keys::StorageKey;
//! use careledger::node::Node;
//! use careledger::relay::MemoryRelay;
//! use careledger::store::Store;
//! use careledger::sync::{join_from_relay, sync};
//! let key = StorageKey::from_bytes([1; 32]);
//! let mut a = Node::create(Store::open_in_memory(&key).unwrap(), "a.example").unwrap();
//! let mut b = Node::create(Store::open_in_memory(&key).unwrap(), "b.example").unwrap();
//! let mut relay = MemoryRelay::new();
//! let net = a.create_network("care").unwrap();
//! a.invite(&net, &b.key_package().unwrap()).unwrap();
//! sync(&mut a, &mut relay, &net, 0).unwrap(); // the commit wins, the Welcome goes out
//! join_from_relay(&mut b, &mut relay, &net, "care", 0).unwrap();
//! assert_eq!(b.members(&net).unwrap().len(), 2);
//! ```

use crate::node::{NetworkError, NetworkId, Node, ReceiveError, ReceiveReport};
use crate::relay::{Relay, RelayError};
use crate::store::StoreError;
use crate::wire::WireMessage;

/// Messages fetched per page (one transaction each).
pub const PAGE: usize = 500;

/// What a sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Messages published.
    pub published: usize,
    /// Messages fetched.
    pub fetched: usize,
    /// Everything receiving did, summed over pages.
    pub received: ReceiveReport,
}

/// A sync failed; what was received before the failure is kept.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The relay failed; retry later, nothing is lost (the outbox keeps unsent messages).
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// Receiving failed.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    /// A network operation failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No Welcome on the relay opens with this node's key packages.
    #[error("no Welcome for this node on the relay yet")]
    NoWelcome,
}

/// Publish everything in the node's outbox; returns how many messages.
///
/// Pages of up to [`PAGE`] messages: each run of one network within a page
/// is one relay write ([`Relay::publish_batch`]) and is then acknowledged in
/// one store commit, so a thousand entries cost a few fsyncs, not two
/// thousand. If the relay fails, nothing of the run is acknowledged and the
/// next publish sends it again (relays and receivers tolerate duplicates).
pub fn publish_outbox(node: &mut Node, relay: &mut dyn Relay) -> Result<usize, SyncError> {
    let mut published = 0;
    loop {
        let batch = node.outgoing(PAGE)?;
        if batch.is_empty() {
            return Ok(published);
        }
        for run in batch.chunk_by(|a, b| a.network == b.network) {
            let messages: Vec<&[u8]> = run.iter().map(|m| m.message.as_slice()).collect();
            relay.publish_batch(&run[0].network, &messages)?;
            let ids: Vec<i64> = run.iter().map(|m| m.id).collect();
            node.ack_outgoing_all(&ids)?;
            published += run.len();
        }
    }
}

fn add(total: &mut ReceiveReport, page: ReceiveReport) {
    total.accepted += page.accepted;
    total.duplicates += page.duplicates;
    total.held = page.held;
    total.commits_applied += page.commits_applied;
    total.commits_stale += page.commits_stale;
    total.commits_retried += page.commits_retried;
    total.removed |= page.removed;
    total.resent += page.resent;
    total.rejected.extend(page.rejected);
    total.mls_errors.extend(page.mls_errors);
}

/// One full exchange for `network`; `progress` is told the messages fetched so far.
pub fn sync_with_progress(
    node: &mut Node,
    relay: &mut dyn Relay,
    network: &NetworkId,
    now_ms: u64,
    progress: &mut dyn FnMut(usize),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    if node.is_member(network)? {
        node.announce_heads(network)?;
    }
    report.published += publish_outbox(node, relay)?;
    loop {
        let cursor = node.relay_cursor(network)?;
        let page = relay.fetch(network, cursor, PAGE)?;
        let Some(last) = page.last().map(|m| m.seq) else {
            break;
        };
        report.fetched += page.len();
        let messages: Vec<Vec<u8>> = page.into_iter().map(|m| m.bytes).collect();
        let received = node.receive(network, &messages, Some(last), now_ms)?;
        add(&mut report.received, received);
        progress(report.fetched);
        report.published += publish_outbox(node, relay)?;
    }
    if node.commit_pending(network)? {
        node.republish_commit(network)?;
        report.published += publish_outbox(node, relay)?;
    }
    report.received.held = node.held_entries(network)?.len();
    Ok(report)
}

/// One full exchange for `network`.
pub fn sync(
    node: &mut Node,
    relay: &mut dyn Relay,
    network: &NetworkId,
    now_ms: u64,
) -> Result<SyncReport, SyncError> {
    sync_with_progress(node, relay, network, now_ms, &mut |_| {})
}

/// Join `network` from a Welcome on the relay made for one of this node's key
/// packages, then catch up on its history.
pub fn join_from_relay(
    node: &mut Node,
    relay: &mut dyn Relay,
    network: &NetworkId,
    label: &str,
    now_ms: u64,
) -> Result<SyncReport, SyncError> {
    let mut cursor = 0;
    let mut joined = false;
    'pages: loop {
        let page = relay.fetch(network, cursor, PAGE)?;
        let Some(last) = page.last().map(|m| m.seq) else {
            break;
        };
        cursor = last;
        for message in page {
            if let Ok(WireMessage::Welcome(welcome)) = WireMessage::decode(&message.bytes) {
                match node.join(&welcome, label) {
                    Ok(_) => {
                        joined = true;
                        break 'pages;
                    }
                    // A Welcome for someone else: keep looking.
                    Err(NetworkError::InvalidWelcome(_)) => {}
                    // The store failed: say so, not "no Welcome".
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    if !joined {
        return Err(SyncError::NoWelcome);
    }
    sync(node, relay, network, now_ms)
}
