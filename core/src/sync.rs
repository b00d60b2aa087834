//! Pumping a node against a relay.
//!
//! [`sync`] is the whole exchange for one network: take the consent
//! decisions that are due ([`Node::tick`]), announce our heads, publish the
//! outbox, fetch everything after our cursor in pages and feed it to
//! [`Node::receive_from_relay`] (one transaction per page, cursor saved with
//! it), then publish what that produced (resends, Welcomes, key grants) and
//! re-publish a commit of ours that is still waiting (it may have been lost).
//!
//! Entries refused because too many were waiting are read again: after the
//! pages, while the previous pass let held entries move on, the pump reads
//! the relay again from [`Node::refetch_after`] up to where the cursor was
//! ([`Node::receive_refetched`]). Whatever is still refused then waits for
//! the next sync; the relay keeps it, so nothing is lost.
//!
//! A node whose store was restored from an older copy gets its own entries
//! back from the relay here; once the whole relay was read, it may write
//! again ([`Node::lost_chains`]).
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

/// Passes over refused entries per sync, at most.
const REFETCH_PASSES: usize = 8;

/// What a sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Messages published.
    pub published: usize,
    /// Messages fetched.
    pub fetched: usize,
    /// Everything receiving did, summed over pages.
    pub received: ReceiveReport,
    /// Messages read again from the relay (entries refused over the hold caps).
    pub refetched: usize,
    /// Shared charts cut off by the consent decisions that were due.
    pub cut_off: usize,
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
    /// A consent decision that was due failed.
    #[error(transparent)]
    Consent(#[from] crate::node::ConsentError),
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
    total.deferred += page.deferred;
    total.mls_errors.extend(page.mls_errors);
    let rules = &mut total.rules;
    rules.outcomes_written += page.rules.outcomes_written;
    rules.decisions_written += page.rules.decisions_written;
    rules.consent_denied += page.rules.consent_denied;
    rules.failures.extend(page.rules.failures);
    rules.confirmed += page.rules.confirmed;
    rules.mismatches.extend(page.rules.mismatches);
    rules.waiting = page.rules.waiting;
}

/// One full exchange for `network`; `progress` is told the messages fetched so far.
pub fn sync_with_progress(
    node: &mut Node,
    relay: &mut dyn Relay,
    network: &NetworkId,
    now_ms: u64,
    progress: &mut dyn FnMut(usize),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport {
        cut_off: node.tick(now_ms)?.records_cut_off,
        ..SyncReport::default()
    };
    if node.is_member(network)? {
        node.announce_heads(network)?;
    }
    report.published += publish_outbox(node, relay)?;
    loop {
        let cursor = node.relay_cursor(network)?;
        let page = relay.fetch(network, cursor, PAGE)?;
        if page.is_empty() {
            break;
        }
        report.fetched += page.len();
        let received = node.receive_from_relay(network, &page, now_ms)?;
        add(&mut report.received, received);
        progress(report.fetched);
        report.published += publish_outbox(node, relay)?;
    }
    // The whole relay was read: what it lacks of our chain exists nowhere.
    node.settle_lost_chain(network)?;
    // Read refused entries again: once per sync, and again while a pass
    // lets held entries move on.
    for _ in 0..REFETCH_PASSES {
        let Some(mark) = node.refetch_after(network)? else {
            break;
        };
        let (read, accepted) = refetch_pass(node, relay, network, mark, now_ms, &mut report)?;
        report.refetched += read;
        if accepted == 0 {
            break;
        }
    }
    if node.commit_pending(network)? {
        node.republish_commit(network)?;
        report.published += publish_outbox(node, relay)?;
    }
    report.received.held = node.held_entries(network)?.len();
    Ok(report)
}

/// Read the relay again from `mark` up to the cursor: `(messages read, entries accepted)`.
fn refetch_pass(
    node: &mut Node,
    relay: &mut dyn Relay,
    network: &NetworkId,
    mark: u64,
    now_ms: u64,
    report: &mut SyncReport,
) -> Result<(usize, usize), SyncError> {
    let end = node.relay_cursor(network)?;
    let mut position = mark;
    let mut pass_low = None;
    let (mut read, mut accepted) = (0, 0);
    while position < end {
        let page = relay.fetch(network, position, PAGE)?;
        let Some(last) = page.last().map(|m| m.seq) else {
            break;
        };
        read += page.len();
        let received = node.receive_refetched(network, &page, end, &mut pass_low, now_ms)?;
        accepted += received.accepted;
        add(&mut report.received, received);
        report.published += publish_outbox(node, relay)?;
        position = last;
    }
    Ok((read, accepted))
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
