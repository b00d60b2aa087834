//! The ledger: per-author hash chains of sealed, signed entries.
//!
//! Accepting an incoming entry, in this order (cheap and context-free checks
//! first, so tampered bytes are rejected before they can count as evidence):
//!
//! 1. decode; same network; already stored → duplicate;
//! 2. a member removed from the network: anything beyond the last entry of
//!    its that arrived before the removal commit (in relay order, or as the
//!    remover's member-removed entry states) → refused, whatever epoch it
//!    claims;
//! 3. epoch: beyond ours → reject; before our join and not yet granted → hold;
//! 4. the author must be in that epoch's roster; the signature must verify
//!    with the roster's key;
//! 5. chain: a different entry at a taken `(author, seq)` is a **fork** — kept
//!    as evidence, author flagged, never merged; `seq` beyond head + 1 is a
//!    **gap** — held until the missing entries arrive; `prev` must name the head;
//! 6. the body must open under the epoch key; a record change must open under
//!    its record key (else held until the key grant arrives, or accepted
//!    unread if that key was withheld from this network or shredded by an
//!    erasure), its Automerge actor must be the author, and its dependencies
//!    present (else held).
//!
//! Held entries wait in the `pending` table and are retried after every
//! batch. Waiting is bounded ([`HoldLimits`]): per author and in total.
//! Beyond a cap the entry is refused with [`RejectEntryError::HoldLimit`]
//! (or, if it comes earlier in its author's chain than what is held, the
//! latest held entry of the busiest author is dropped for it), and the relay
//! position of what was let go is remembered: [`crate::sync`] reads the relay
//! again from there once the held entries moved on, so nothing is lost.

use std::collections::BTreeMap;

use super::{Head, NetworkError, NetworkId, Node, ReceiveError, RejectEntryError};
use crate::body::{
    EraseBody, KeyGrantBody, KeyWithheldBody, MemberRemovedBody, MemberSpan, RecordChangeBody,
};
use crate::entry::{AuthorId, Entry, EntryHeader, EntryId, EntryKind};
use crate::keys::{open, EpochKey, Sealed};
use crate::record::doc::{ApplyChangeError, RecordDoc};
use crate::relay::RelayMessage;
use crate::store::{StoreError, OPEN_SPAN};
use crate::wire::WireMessage;

/// How many entries may wait (for a predecessor or a key) at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldLimits {
    /// Per author and network.
    pub per_author: usize,
    /// Per network.
    pub total: usize,
}

impl Default for HoldLimits {
    /// 2,000 per author, 20,000 per network: a joiner catching up on a long
    /// history holds that much before its history grant arrives; more comes
    /// again from the relay.
    fn default() -> Self {
        HoldLimits {
            per_author: 2_000,
            total: 20_000,
        }
    }
}

/// Where the message being received sits in the relay's order.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Arrival {
    /// Its relay position, when the transport said.
    pub position: Option<u64>,
    /// Otherwise: a position the relay must be read again after (the cursor
    /// before the batch) to see it again.
    pub floor: u64,
}

impl Arrival {
    /// Read the relay again after this position to see the message again.
    fn refetch_mark(self) -> u64 {
        self.position
            .map(|p| p.saturating_sub(1))
            .unwrap_or(self.floor)
    }
}

/// Why an entry is held back rather than accepted or rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// Entries between the author's head and this one are missing.
    Gap {
        /// The seq expected next.
        expected: u64,
    },
    /// The epoch precedes our join and no key grant for it has arrived yet.
    UnknownEpoch(u64),
    /// The record key is not known yet.
    MissingRecordKey,
    /// The Automerge change depends on changes not yet applied.
    MissingDependencies,
}

impl HoldReason {
    fn label(&self) -> String {
        match self {
            HoldReason::Gap { expected } => format!("gap: expected seq {expected}"),
            HoldReason::UnknownEpoch(epoch) => format!("unknown epoch {epoch}"),
            HoldReason::MissingRecordKey => "missing record key".into(),
            HoldReason::MissingDependencies => "missing change dependencies".into(),
        }
    }
}

/// The fate of one incoming entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Stored and applied.
    Accepted,
    /// Already stored.
    Duplicate,
    /// Valid so far but waiting for something.
    Held(HoldReason),
}

/// What [`Node::receive`] did with a batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReceiveReport {
    /// Entries accepted (including held entries released by this batch).
    pub accepted: usize,
    /// Entries already known.
    pub duplicates: usize,
    /// Entries currently held back.
    pub held: usize,
    /// Commits applied (ours or others').
    pub commits_applied: usize,
    /// Commits ignored because their epoch had already been decided.
    pub commits_stale: usize,
    /// Our commits that lost their epoch and were re-proposed.
    pub commits_retried: usize,
    /// Whether this node learned it was removed.
    pub removed: bool,
    /// Entries re-sent because a peer's heads showed it lacked them.
    pub resent: usize,
    /// Refused messages with the reason, in arrival order.
    pub rejected: Vec<RejectEntryError>,
    /// Of those, entries refused because too many were waiting: they are
    /// read from the relay again later.
    pub deferred: usize,
    /// MLS messages that failed to process (with the reason).
    pub mls_errors: Vec<String>,
    /// What rules did: outcomes written by this node, others' re-checked.
    pub rules: super::RulesActivity,
}

/// How one attempt at a receive batch ended.
enum Attempt {
    /// A speculatively applied record change did not apply: rolled back, redo
    /// the batch one entry at a time.
    Redo,
    /// The batch failed (rolled back).
    Failed(ReceiveError),
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Attempt::Failed(error.into())
    }
}

/// One problem found by [`Node::verify_ledger`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LedgerProblem {
    /// Position in local append order.
    pub index: usize,
    /// What is wrong.
    pub problem: String,
}

/// The result of re-checking a network's whole ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerReport {
    /// Entries checked.
    pub entries: usize,
    /// Distinct authors.
    pub authors: usize,
    /// Signatures verified.
    pub signatures_ok: usize,
    /// Bodies opened under their epoch key.
    pub seals_ok: usize,
    /// Record changes opened under their record key.
    pub record_seals_ok: usize,
    /// Record changes whose key this node no longer or never held.
    pub record_keys_missing: usize,
    /// Forks kept as evidence.
    pub forks: u64,
    /// Number of flagged authors ([`Node::flagged_authors`] names them).
    pub flagged: usize,
    /// Everything wrong, in order.
    pub problems: Vec<LedgerProblem>,
}

impl LedgerReport {
    /// No problems, no forks, no flagged authors.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.forks == 0 && self.flagged == 0
    }
}

enum Checked {
    Ready(Box<Entry>, EntryId, EpochKey),
    Hold(Box<EntryHeader>, EntryId, HoldReason),
    Done(EntryOutcome),
}

impl Node {
    /// Append an entry of ours. Caller holds the transaction.
    pub(crate) fn append_entry(
        &mut self,
        network: &NetworkId,
        kind: EntryKind,
        body: &[u8],
        now_ms: u64,
    ) -> Result<EntryId, NetworkError> {
        let header = self.next_header(network, kind, now_ms)?;
        self.seal_append(network, header, body)
    }

    pub(crate) fn next_header(
        &mut self,
        network: &NetworkId,
        kind: EntryKind,
        now_ms: u64,
    ) -> Result<EntryHeader, NetworkError> {
        if self.network_row(network)?.state != "active" {
            return Err(NetworkError::NotAMember);
        }
        if let Some(&marked) = self.behind.get(&network.0) {
            let stored = self
                .store
                .head_of(&network.0, &self.identity.author_id())?
                .map_or(0, |(seq, _)| seq);
            if stored < marked {
                return Err(NetworkError::BehindOwnChain { stored, marked });
            }
        }
        let author = self.identity.author_id();
        let (seq, prev) = self
            .store
            .head_of(&network.0, &author)?
            .map(|(seq, id)| (seq + 1, id))
            .unwrap_or((1, EntryId::ZERO));
        Ok(EntryHeader {
            kind,
            network: network.0.clone(),
            author,
            seq,
            prev,
            epoch: self.epoch(network)?,
            time_ms: now_ms,
        })
    }

    pub(crate) fn seal_append(
        &mut self,
        network: &NetworkId,
        header: EntryHeader,
        body: &[u8],
    ) -> Result<EntryId, NetworkError> {
        let key = self
            .store
            .epoch_key(&network.0, header.epoch)?
            .ok_or(StoreError::Corrupt("epochs"))?;
        let entry = Entry::seal_and_sign(
            header,
            &EpochKey::from(key),
            body,
            self.store.random()?,
            self.identity.signing_key(),
        )
        .map_err(|e| NetworkError::Mls(e.to_string()))?;
        let bytes = entry.encode();
        let id = Entry::id_of(&bytes);
        let h = &entry.header;
        self.store.insert_entry(&network.0, &id, h, &bytes)?;
        self.store.push_outbox_entry(&network.0, &id)?;
        self.own_written.insert(network.0.clone(), h.seq);
        Ok(id)
    }

    /// Feed relay messages, in relay order, as one transaction. `relay_seq` is
    /// the relay position of the last message; it is stored with the batch so a
    /// restart resumes after it. Per-message problems land in the report; only
    /// a store failure fails the batch (and then nothing of it is kept).
    ///
    /// The positions of the other messages are unknown here, so an entry
    /// refused over the hold caps marks the whole batch to be read again
    /// ([`Node::refetch_after`]); [`Node::receive_from_relay`] is precise.
    pub fn receive(
        &mut self,
        network: &NetworkId,
        messages: &[Vec<u8>],
        relay_seq: Option<u64>,
        now_ms: u64,
    ) -> Result<ReceiveReport, ReceiveError> {
        let floor = self.network_row(network)?.relay_cursor;
        let batch: Vec<(Arrival, &[u8])> = messages
            .iter()
            .map(|m| {
                (
                    Arrival {
                        position: None,
                        floor,
                    },
                    m.as_slice(),
                )
            })
            .collect();
        self.receive_batch(network, &batch, relay_seq, now_ms)
    }

    /// Feed messages as the relay returned them (with their positions), in
    /// relay order, as one transaction; the cursor moves to the last one.
    pub fn receive_from_relay(
        &mut self,
        network: &NetworkId,
        messages: &[RelayMessage],
        now_ms: u64,
    ) -> Result<ReceiveReport, ReceiveError> {
        let floor = self.network_row(network)?.relay_cursor;
        let batch: Vec<(Arrival, &[u8])> = messages
            .iter()
            .map(|m| {
                (
                    Arrival {
                        position: Some(m.seq),
                        floor,
                    },
                    m.bytes.as_slice(),
                )
            })
            .collect();
        self.receive_batch(network, &batch, messages.last().map(|m| m.seq), now_ms)
    }

    /// Receive a batch as one transaction. With a relay position to store,
    /// the commit does not wait for the disk (unless the batch queued
    /// something for the relay): a power loss can only take the stored
    /// position back with the entries, and the next sync reads them again.
    /// Without one, nothing could give them again, so it waits.
    fn receive_batch(
        &mut self,
        network: &NetworkId,
        batch: &[(Arrival, &[u8])],
        relay_seq: Option<u64>,
        now_ms: u64,
    ) -> Result<ReceiveReport, ReceiveError> {
        self.clock = now_ms;
        let relaxed = relay_seq.is_some();
        if batch.len() >= super::apply_worker::SPECULATE_MIN_MESSAGES {
            // Record changes applied on a second thread (see `apply_worker`);
            // if any did not apply, everything is rolled back and redone below.
            let speculative = |node: &mut Node| {
                node.speculate = true;
                node.receive_batch_in(network, batch, relay_seq, now_ms)
            };
            let attempt = if relaxed {
                self.atomically_relaxed(speculative)
            } else {
                self.atomically(speculative)
            };
            match attempt {
                Ok(report) => return Ok(report),
                Err(Attempt::Redo) => {}
                Err(Attempt::Failed(error)) => return Err(error),
            }
        }
        let in_order = |node: &mut Node| node.receive_batch_in(network, batch, relay_seq, now_ms);
        let attempt = if relaxed {
            self.atomically_relaxed(in_order)
        } else {
            self.atomically(in_order)
        };
        attempt.map_err(|attempt| match attempt {
            Attempt::Failed(error) => error,
            Attempt::Redo => unreachable!("only a speculative batch is redone"),
        })
    }

    /// The body of [`Node::receive_batch`], inside its transaction.
    fn receive_batch_in(
        &mut self,
        network: &NetworkId,
        batch: &[(Arrival, &[u8])],
        relay_seq: Option<u64>,
        now_ms: u64,
    ) -> Result<ReceiveReport, Attempt> {
        let before = self.store.last_local_order(&network.0)?;
        let mut report = ReceiveReport::default();
        for (arrival, message) in batch {
            self.arrival = *arrival;
            self.receive_one(network, message, now_ms, &mut report)?;
            if self.speculation_failed {
                break;
            }
        }
        self.settle_docs();
        self.speculate = false;
        if std::mem::take(&mut self.speculation_failed) {
            return Err(Attempt::Redo);
        }
        self.retry_pending(network, &mut report)?;
        report.rules = self.rules_after_receive(network, before, now_ms)?;
        report.held = self.store.pending(&network.0)?.len();
        if let Some(seq) = relay_seq {
            self.store.set_relay_cursor(&network.0, seq)?;
        }
        Ok(report)
    }

    /// Entries the relay had after [`Node::refetch_after`], read again
    /// (commits and other messages were taken the first time). Moves the
    /// mark past this page unless something in it (or earlier in this pass,
    /// `pass_low`) was refused again; `end` is where the pass stops (the
    /// cursor when it began).
    pub fn receive_refetched(
        &mut self,
        network: &NetworkId,
        messages: &[RelayMessage],
        end: u64,
        pass_low: &mut Option<u64>,
        now_ms: u64,
    ) -> Result<ReceiveReport, ReceiveError> {
        let floor = self.network_row(network)?.relay_cursor;
        let mut low = *pass_low;
        self.clock = now_ms;
        let report = self.atomically(|node| {
            let mut report = ReceiveReport::default();
            for message in messages.iter().filter(|m| m.seq <= end) {
                let Ok(WireMessage::Entry(bytes)) = WireMessage::decode(&message.bytes) else {
                    continue;
                };
                node.arrival = Arrival {
                    position: Some(message.seq),
                    floor,
                };
                let before = report.deferred;
                node.take_entry(network, &bytes, &mut report)?;
                if report.deferred > before {
                    low.get_or_insert(message.seq.saturating_sub(1));
                }
            }
            node.retry_pending(network, &mut report)?;
            report.held = node.store.pending(&network.0)?.len();
            let last = messages.last().map_or(end, |m| m.seq);
            let mark = match low {
                Some(low) => Some(low),
                None if last >= end => None,
                None => Some(last),
            };
            // Refusals during this pass also lowered the stored mark; the
            // pass's own lowest refusal is what counts from here on.
            node.store.set_refetch_after(&network.0, mark)?;
            Ok::<_, ReceiveError>(report)
        })?;
        *pass_low = low;
        Ok(report)
    }

    /// The relay position after which entries refused over the hold caps
    /// wait to be read again (`None`: nothing waits). [`crate::sync::sync`]
    /// does it; a host with its own transport feeds them again from here
    /// with [`Node::receive_refetched`].
    pub fn refetch_after(&self, network: &NetworkId) -> Result<Option<u64>, NetworkError> {
        Ok(self.network_row(network)?.refetch_after)
    }

    /// Change how many entries may wait at once (see [`HoldLimits`]).
    pub fn set_hold_limits(&mut self, limits: HoldLimits) {
        self.hold_limits = HoldLimits {
            per_author: limits.per_author.max(1),
            total: limits.total.max(1),
        };
    }

    fn receive_one(
        &mut self,
        network: &NetworkId,
        message: &[u8],
        now_ms: u64,
        report: &mut ReceiveReport,
    ) -> Result<(), StoreError> {
        let message = match WireMessage::decode(message) {
            Ok(message) => message,
            Err(error) => {
                report.rejected.push(error.into());
                return Ok(());
            }
        };
        match message {
            WireMessage::Entry(bytes) => self.take_entry(network, &bytes, report)?,
            WireMessage::Commit(bytes) => match self.handle_commit(network, &bytes, now_ms) {
                Ok(outcome) => {
                    use super::mls::CommitOutcome::*;
                    match outcome {
                        MergedOurs | Applied => report.commits_applied += 1,
                        RemovedUs => {
                            report.commits_applied += 1;
                            report.removed = true;
                        }
                        OursLostRetried => {
                            report.commits_applied += 1;
                            report.commits_retried += 1;
                        }
                        Stale => report.commits_stale += 1,
                    }
                }
                Err(NetworkError::Store(error)) => return Err(error),
                Err(error) => report.mls_errors.push(error.to_string()),
            },
            // Welcomes are for joiners ([`Node::join`]); members skip them.
            WireMessage::Welcome(_) => {}
            WireMessage::Heads { sender, heads } => {
                if sender != self.identity.author_id() {
                    report.resent += self.resend_missing(network, &heads)?;
                }
            }
        }
        Ok(())
    }

    fn take_entry(
        &mut self,
        network: &NetworkId,
        bytes: &[u8],
        report: &mut ReceiveReport,
    ) -> Result<(), StoreError> {
        match self.accept_entry(network, bytes)? {
            Ok(EntryOutcome::Accepted) => report.accepted += 1,
            Ok(EntryOutcome::Duplicate) => report.duplicates += 1,
            Ok(EntryOutcome::Held(_)) => {}
            Err(error) => {
                if matches!(error, RejectEntryError::HoldLimit { .. }) {
                    report.deferred += 1;
                }
                report.rejected.push(error);
            }
        }
        Ok(())
    }

    /// Queue our own entries a peer's heads show it lacks and that never came
    /// back through the relay (lost in transit). Entries already in the log
    /// reach the peer by themselves; resending them would only double traffic
    /// on stale announcements.
    fn resend_missing(
        &mut self,
        network: &NetworkId,
        heads: &[(AuthorId, u64)],
    ) -> Result<usize, StoreError> {
        let me = self.identity.author_id();
        let Some((our_seq, _)) = self.store.head_of(&network.0, &me)? else {
            return Ok(0);
        };
        let theirs = heads
            .iter()
            .find(|(author, _)| *author == me)
            .map(|(_, seq)| *seq)
            .unwrap_or(0);
        if theirs >= our_seq {
            return Ok(0);
        }
        let missing = self
            .store
            .unrelayed_entries_after(&network.0, &me, theirs, 10_000)?;
        for bytes in &missing {
            self.store
                .push_outbox_entry(&network.0, &Entry::id_of(bytes))?;
        }
        Ok(missing.len())
    }

    /// Queue a heads announcement: peers answer it by resending their own
    /// entries this node lacks that were lost in transit.
    pub fn announce_heads(&mut self, network: &NetworkId) -> Result<(), NetworkError> {
        self.network_row(network)?;
        let heads = self
            .heads(network)?
            .into_iter()
            .map(|h| (h.author, h.seq))
            .collect();
        let message = WireMessage::Heads {
            sender: self.identity.author_id(),
            heads,
        };
        self.store.transaction(|| -> Result<(), StoreError> {
            self.store.push_outbox(&network.0, &message.encode())
        })?;
        Ok(())
    }

    /// Re-publish our pending commit, if any (after a possible loss in transit).
    pub fn republish_commit(&mut self, network: &NetworkId) -> Result<bool, NetworkError> {
        Ok(self.atomically(|node| node.republish_pending_commit(network))?)
    }

    fn retry_pending(
        &mut self,
        network: &NetworkId,
        report: &mut ReceiveReport,
    ) -> Result<(), StoreError> {
        loop {
            let mut progress = false;
            let mut pending: Vec<(EntryHeader, crate::store::PendingRow)> = self
                .store
                .pending(&network.0)?
                .into_iter()
                .filter_map(|row| Entry::decode(&row.bytes).ok().map(|e| (e.header, row)))
                .collect();
            // Statements about the ledger itself first (a removed member's
            // end, an erasure), then chain order.
            pending.sort_by_key(|(h, _)| {
                (
                    !matches!(h.kind, EntryKind::MemberRemoved | EntryKind::Erase),
                    h.epoch,
                    h.author,
                    h.seq,
                )
            });
            for (_, row) in pending {
                match self.accept_entry(network, &row.bytes)? {
                    Ok(EntryOutcome::Held(_)) => {}
                    Ok(EntryOutcome::Accepted) => {
                        self.store.delete_pending(&network.0, &row.id)?;
                        report.accepted += 1;
                        progress = true;
                    }
                    Ok(EntryOutcome::Duplicate) => {
                        self.store.delete_pending(&network.0, &row.id)?;
                    }
                    Err(error) => {
                        self.store.delete_pending(&network.0, &row.id)?;
                        progress = true;
                        report.rejected.push(error);
                    }
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }

    /// Hold an entry, within the caps: `Ok(Err(HoldLimit))` when it may not
    /// wait (its relay position is remembered to read it again).
    fn hold(
        &mut self,
        network: &NetworkId,
        header: &EntryHeader,
        id: &EntryId,
        bytes: &[u8],
        reason: HoldReason,
    ) -> Result<Result<EntryOutcome, RejectEntryError>, StoreError> {
        if !self.store.is_pending(&network.0, id)? {
            let (total, mine) = self.store.pending_counts(&network.0, &header.author)?;
            let limits = self.hold_limits;
            let over = if mine >= limits.per_author {
                Some((header.author, limits.per_author))
            } else if total >= limits.total {
                let busiest = self
                    .store
                    .largest_pending_author(&network.0)?
                    .unwrap_or(header.author);
                Some((busiest, limits.total))
            } else {
                None
            };
            if let Some((victim_author, limit)) = over {
                // Keep the earliest entries of each chain: they are what
                // releases the rest. A later one gives way.
                let theirs = self.store.pending_seqs(&network.0, &victim_author)?;
                let count = theirs.len();
                let victim = theirs.into_iter().next();
                let evict = match &victim {
                    Some((seq, _, _)) if victim_author == header.author => *seq > header.seq,
                    // Another author holds more: the space goes to the one with less.
                    Some(_) => count > mine + 1,
                    None => false,
                };
                let Some((_, position, victim)) = victim.filter(|_| evict) else {
                    self.mark_refetch(network, self.arrival.refetch_mark())?;
                    return Ok(Err(RejectEntryError::HoldLimit { limit }));
                };
                self.store.delete_pending(&network.0, &victim)?;
                // A victim whose position is unknown is read again from the start.
                self.mark_refetch(network, position.map_or(0, |p| p.saturating_sub(1)))?;
            }
        }
        self.store.put_pending(
            &network.0,
            header,
            id,
            bytes,
            &reason.label(),
            self.arrival.position,
        )?;
        Ok(Ok(EntryOutcome::Held(reason)))
    }

    fn mark_refetch(&mut self, network: &NetworkId, after: u64) -> Result<(), StoreError> {
        let current = self
            .store
            .network(&network.0)?
            .and_then(|row| row.refetch_after);
        let lowest = current.map_or(after, |c| c.min(after));
        self.store.set_refetch_after(&network.0, Some(lowest))
    }

    /// Decode and authenticate an entry: steps 1–5 of the module docs.
    fn check_entry(
        &mut self,
        network: &NetworkId,
        bytes: &[u8],
    ) -> Result<Result<Checked, RejectEntryError>, StoreError> {
        let entry = match Entry::decode(bytes) {
            Ok(entry) => entry,
            Err(error) => return Ok(Err(error.into())),
        };
        if entry.header.network != network.0 {
            return Ok(Err(RejectEntryError::WrongNetwork));
        }
        let id = Entry::id_of(bytes);
        if self.store.has_entry(&network.0, &id)? {
            if entry.header.author == self.identity.author_id() {
                self.store.mark_relayed(&network.0, &id)?;
            }
            return Ok(Ok(Checked::Done(EntryOutcome::Duplicate)));
        }
        let h = entry.header.clone();
        if let Some((removed_epoch, last_seq)) = self.store.removed_member(&network.0, &h.author)? {
            if h.seq > last_seq && h.epoch < removed_epoch {
                return Ok(Err(RejectEntryError::AfterRemoval { seq: h.seq }));
            }
        }
        let current = match self.epoch(network) {
            Ok(epoch) => epoch,
            Err(NetworkError::Store(error)) => return Err(error),
            Err(_) => return Ok(Err(RejectEntryError::WrongNetwork)),
        };
        if h.epoch > current {
            return Ok(Err(RejectEntryError::FutureEpoch {
                epoch: h.epoch,
                current,
            }));
        }
        let joined_epoch = match self.store.network(&network.0)? {
            Some(row) => row.joined_epoch,
            None => return Ok(Err(RejectEntryError::WrongNetwork)),
        };
        let Some(epoch_key) = self.store.epoch_key(&network.0, h.epoch)? else {
            if h.epoch >= joined_epoch {
                // An epoch we were never part of (e.g. after our removal).
                return Ok(Err(RejectEntryError::NoEpochKey(h.epoch)));
            }
            let reason = HoldReason::UnknownEpoch(h.epoch);
            return Ok(Ok(Checked::Hold(Box::new(h), id, reason)));
        };
        let Some(public_key) = self
            .store
            .roster_public_key(&network.0, h.epoch, &h.author)?
        else {
            return Ok(Err(RejectEntryError::NotAMember { epoch: h.epoch }));
        };
        if let Err(error) = Entry::verify_encoded(bytes, &h.author, &public_key) {
            return Ok(Err(error.into()));
        }
        if let Some(existing) = self.store.entry_at(&network.0, &h.author, h.seq)? {
            self.store
                .put_fork(&network.0, &h.author, h.seq, &existing, &id, bytes)?;
            self.store.flag_author(&network.0, &h.author, "fork")?;
            self.store.delete_pending(&network.0, &id)?;
            return Ok(Err(RejectEntryError::Fork { seq: h.seq }));
        }
        let (head_seq, head_id) = self
            .store
            .head_of(&network.0, &h.author)?
            .unwrap_or((0, EntryId::ZERO));
        if h.seq > head_seq.saturating_add(1) {
            // An authenticated grant's keys, or a removed member's end, are
            // usable before the entry takes its chain position: a joiner's
            // history grant must be able to unlock the earlier entries that
            // fill the gap, and a removal must hold before what it refuses.
            if matches!(h.kind, EntryKind::KeyGrant | EntryKind::MemberRemoved) {
                let epoch_key = EpochKey::from(epoch_key.clone());
                if let Ok(body) = entry.open(&epoch_key) {
                    match h.kind {
                        EntryKind::KeyGrant => {
                            if let Ok(grant) = KeyGrantBody::decode(&body) {
                                self.store_grant(network, h.epoch, &grant)?;
                            }
                        }
                        _ => {
                            if let Ok(removed) = MemberRemovedBody::decode(&body) {
                                self.note_removed(network, &removed)?;
                            }
                        }
                    }
                }
            }
            let reason = HoldReason::Gap {
                expected: head_seq.saturating_add(1),
            };
            return Ok(Ok(Checked::Hold(Box::new(h), id, reason)));
        }
        if h.prev != head_id {
            // Signed by the author, yet not continuing its own chain: a fork
            // from an earlier point. Keep as evidence.
            self.store
                .put_fork(&network.0, &h.author, h.seq, &head_id, &id, bytes)?;
            self.store.flag_author(&network.0, &h.author, "fork")?;
            self.store.delete_pending(&network.0, &id)?;
            return Ok(Err(RejectEntryError::Fork { seq: h.seq }));
        }
        Ok(Ok(Checked::Ready(
            Box::new(entry),
            id,
            EpochKey::from(epoch_key),
        )))
    }

    /// Accept, hold or reject one entry. `Err` only for store failures.
    pub(crate) fn accept_entry(
        &mut self,
        network: &NetworkId,
        bytes: &[u8],
    ) -> Result<Result<EntryOutcome, RejectEntryError>, StoreError> {
        let (entry, id, epoch_key) = match self.check_entry(network, bytes)? {
            Err(error) => return Ok(Err(error)),
            Ok(Checked::Done(outcome)) => return Ok(Ok(outcome)),
            Ok(Checked::Hold(header, id, reason)) => {
                return self.hold(network, &header, &id, bytes, reason)
            }
            Ok(Checked::Ready(entry, id, key)) => (entry, id, key),
        };
        let body = match entry.open(&epoch_key) {
            Ok(body) => body,
            Err(error) => return Ok(Err(RejectEntryError::Seal(error))),
        };
        let h = &entry.header;
        let malformed = |error: crate::codec::CodecError| {
            Ok(Err(RejectEntryError::MalformedBody(error.to_string())))
        };
        match h.kind {
            EntryKind::KeyGrant => match KeyGrantBody::decode(&body) {
                Ok(grant) => self.store_grant(network, h.epoch, &grant)?,
                Err(error) => return malformed(error),
            },
            EntryKind::KeyWithheld => match KeyWithheldBody::decode(&body) {
                Ok(notice) => {
                    self.store
                        .put_withheld_key(&network.0, &notice.record, &notice.key_id)?
                }
                Err(error) => return malformed(error),
            },
            EntryKind::ModelCard
            | EntryKind::Decision
            | EntryKind::ModelUpdate
            | EntryKind::FlPolicy
            | EntryKind::FlPlan
            | EntryKind::FlKeys
            | EntryKind::FlShares
            | EntryKind::FlMasked
            | EntryKind::FlSurvivors
            | EntryKind::FlUnmask
            | EntryKind::FlRound => {
                if let Err(error) = crate::analytics::ledger::check_body(h.kind, &body) {
                    return Ok(Err(RejectEntryError::MalformedBody(error)));
                }
            }
            EntryKind::RuleSet
            | EntryKind::RuleOutcome
            | EntryKind::Policy
            | EntryKind::Endorsement => {
                if let Err(error) = crate::rules::check_body(h.kind, &body) {
                    return Ok(Err(RejectEntryError::MalformedBody(error)));
                }
            }
            EntryKind::RecordChange => match self.apply_record_change(network, &entry, &body)? {
                Ok(None) => {}
                Ok(Some(reason)) => {
                    let header = entry.header.clone();
                    return self.hold(network, &header, &id, bytes, reason);
                }
                Err(error) => return Ok(Err(error)),
            },
            EntryKind::Erase => match EraseBody::decode(&body) {
                Ok(erase) => self.apply_erase(network, &erase, h, &id)?,
                Err(error) => return malformed(error),
            },
            EntryKind::MemberRemoved => match MemberRemovedBody::decode(&body) {
                Ok(removed) => self.note_removed(network, &removed)?,
                Err(error) => return malformed(error),
            },
        }
        self.store.insert_entry(&network.0, &id, h, bytes)?;
        Ok(Ok(EntryOutcome::Accepted))
    }

    /// Keep what a grant written in `epoch` gives that this node lacks. A
    /// member of long standing already holds nearly all of it, so what it
    /// holds is read once and only the difference written.
    fn store_grant(
        &mut self,
        network: &NetworkId,
        epoch: u64,
        grant: &KeyGrantBody,
    ) -> Result<(), StoreError> {
        let held = self.store.epoch_numbers(&network.0)?;
        for key in grant.epochs.iter().filter(|k| !held.contains(&k.epoch)) {
            self.store.put_epoch_key(&network.0, key)?;
        }
        let spans = self.store.member_spans(&network.0, OPEN_SPAN)?;
        for member in &grant.members {
            // A member vouches for membership up to the grant's epoch only.
            let to_epoch = member.to_epoch.min(epoch);
            if member.from_epoch > to_epoch {
                continue;
            }
            let covered = spans.iter().any(|s| {
                s.public_key == member.public_key
                    && s.from_epoch <= member.from_epoch
                    && s.to_epoch >= to_epoch
            });
            if !covered {
                let span = MemberSpan {
                    to_epoch,
                    ..member.clone()
                };
                self.store.add_member_span(&network.0, &span)?;
            }
        }
        for key in &grant.record_keys {
            // A key an erasure shredded is never taken back (a grant written
            // before the erasure may arrive after it).
            if !self
                .store
                .is_shredded_key(&network.0, &key.record, &key.key_id)?
            {
                self.store.put_record_key(&network.0, key)?;
            }
        }
        Ok(())
    }

    /// A removed member's end, as a member-removed entry states it; what this
    /// node saw itself when it applied the removal takes precedence.
    fn note_removed(
        &mut self,
        network: &NetworkId,
        removed: &MemberRemovedBody,
    ) -> Result<(), StoreError> {
        self.store.put_removed_member(
            &network.0,
            &AuthorId(removed.author),
            removed.removed_epoch,
            removed.last_seq,
        )
    }

    /// Open and apply a record change; `Ok(Some(reason))` = hold.
    fn apply_record_change(
        &mut self,
        network: &NetworkId,
        entry: &Entry,
        body: &[u8],
    ) -> Result<Result<Option<HoldReason>, RejectEntryError>, StoreError> {
        let change = match self.open_record_change(network, entry, body)? {
            Ok(change) => change,
            Err(RejectEntryError::NoRecordKey) if self.unreadable_by_design(network, body)? => {
                // Sealed under a key withheld from this network or shredded
                // by an erasure: part of the ledger, out of reach by design.
                return Ok(Ok(None));
            }
            Err(RejectEntryError::NoRecordKey) => {
                return Ok(Ok(Some(HoldReason::MissingRecordKey)));
            }
            Err(error) => return Ok(Err(error)),
        };
        let (record, change) = change;
        let Some(change) =
            self.apply_speculatively(network, &record, change, &entry.header.author)?
        else {
            self.dirty.insert((network.0.clone(), record));
            return Ok(Ok(None));
        };
        let actor = self.identity.author_id();
        let doc = self.doc_mut(network, &record, actor)?;
        match doc.apply_change_by(&change, &entry.header.author.0) {
            Ok(()) => {}
            Err(ApplyChangeError::WrongActor) => {
                self.store
                    .flag_author(&network.0, &entry.header.author, "actor mismatch")?;
                return Ok(Err(RejectEntryError::ActorMismatch));
            }
            Err(ApplyChangeError::MissingDependencies { .. }) => {
                return Ok(Ok(Some(HoldReason::MissingDependencies)));
            }
            Err(error) => return Ok(Err(RejectEntryError::BadChange(error.to_string()))),
        }
        self.dirty.insert((network.0.clone(), record));
        Ok(Ok(None))
    }

    /// Whether a record change is sealed under a key announced as withheld
    /// or shredded by an erasure.
    fn unreadable_by_design(&self, network: &NetworkId, body: &[u8]) -> Result<bool, StoreError> {
        match RecordChangeBody::decode(body) {
            Ok(body) => Ok(self
                .store
                .is_withheld_key(&network.0, &body.record, &body.key_id)?
                || self
                    .store
                    .is_shredded_key(&network.0, &body.record, &body.key_id)?),
            Err(_) => Ok(false),
        }
    }

    /// Open both seals of a record change: `(record id, Automerge change bytes)`.
    pub(crate) fn open_record_change(
        &self,
        network: &NetworkId,
        entry: &Entry,
        body: &[u8],
    ) -> Result<Result<(String, Vec<u8>), RejectEntryError>, StoreError> {
        let body = match RecordChangeBody::decode(body) {
            Ok(body) => body,
            Err(error) => return Ok(Err(RejectEntryError::MalformedBody(error.to_string()))),
        };
        let Some(key) = self
            .store
            .record_key(&network.0, &body.record, &body.key_id)?
        else {
            return Ok(Err(RejectEntryError::NoRecordKey));
        };
        let sealed = match Sealed::from_bytes(&body.change) {
            Ok(sealed) => sealed,
            Err(error) => return Ok(Err(RejectEntryError::RecordSeal(error))),
        };
        let aad = RecordChangeBody::inner_aad(&entry.header.encode(), &body.record);
        match open(&key, &aad, &sealed) {
            Ok(change) => Ok(Ok((body.record, change))),
            Err(error) => Ok(Err(RejectEntryError::RecordSeal(error))),
        }
    }

    /// Re-apply one stored record change to the materialised records
    /// (rebuild). Entries whose record key was shredded are skipped.
    pub(crate) fn replay_entry(
        &mut self,
        network: &NetworkId,
        bytes: &[u8],
    ) -> Result<bool, NetworkError> {
        let entry = Entry::decode(bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
        if entry.header.kind != EntryKind::RecordChange {
            return Ok(false);
        }
        let key = self
            .store
            .epoch_key(&network.0, entry.header.epoch)?
            .ok_or(StoreError::Corrupt("epochs"))?;
        let body = entry
            .open(&EpochKey::from(key))
            .map_err(|_| StoreError::Corrupt("entries.bytes"))?;
        let (record, change) = match self.open_record_change(network, &entry, &body)? {
            Ok(opened) => opened,
            Err(RejectEntryError::NoRecordKey) => return Ok(false),
            Err(_) => return Err(StoreError::Corrupt("entries.bytes").into()),
        };
        let actor = self.identity.author_id();
        self.doc_mut(network, &record, actor)?
            .apply_change(&change)
            .map_err(|_| StoreError::Corrupt("entries.bytes"))?;
        self.dirty.insert((network.0.clone(), record));
        Ok(true)
    }

    /// Try to read an entry with the keys this node holds, without storing
    /// anything: `Ok(kind)` if every seal opens. Used to show what a node
    /// (e.g. a removed member) can and cannot decrypt.
    pub fn can_read_entry(
        &mut self,
        network: &NetworkId,
        bytes: &[u8],
    ) -> Result<EntryKind, RejectEntryError> {
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
        if entry.header.kind == EntryKind::RecordChange {
            self.open_record_change(network, &entry, &body)
                .map_err(|e| RejectEntryError::BadChange(e.to_string()))??;
        }
        Ok(entry.header.kind)
    }

    /// Per-author heads of the network's ledger.
    pub fn heads(&self, network: &NetworkId) -> Result<Vec<Head>, NetworkError> {
        Ok(self
            .store
            .heads(&network.0)?
            .into_iter()
            .map(|(author, seq, id)| Head { author, seq, id })
            .collect())
    }

    /// Authors flagged (forks, actor mismatches) with the reason.
    pub fn flagged_authors(
        &self,
        network: &NetworkId,
    ) -> Result<Vec<(AuthorId, String)>, NetworkError> {
        Ok(self.store.flagged(&network.0)?)
    }

    /// Why each held entry waits.
    pub fn held_entries(&self, network: &NetworkId) -> Result<Vec<String>, NetworkError> {
        Ok(self.store.pending_reasons(&network.0)?)
    }

    /// Every stored entry of a network in local append order (encoded).
    pub fn ledger_entries(&self, network: &NetworkId) -> Result<Vec<Vec<u8>>, NetworkError> {
        Ok(self.store.entries(&network.0)?)
    }

    /// Re-check every stored entry: decoding, roster membership, signature,
    /// per-author chain continuity, the epoch seal, the record seal and the
    /// actor binding. Problems are listed, never fixed.
    pub fn verify_ledger(&mut self, network: &NetworkId) -> Result<LedgerReport, NetworkError> {
        self.network_row(network)?;
        let entries = self.store.entries(&network.0)?;
        let mut report = LedgerReport {
            entries: entries.len(),
            forks: self.store.fork_count(&network.0)?,
            flagged: self.store.flagged(&network.0)?.len(),
            ..LedgerReport::default()
        };
        let mut chains: BTreeMap<AuthorId, (u64, EntryId)> = BTreeMap::new();
        for (index, bytes) in entries.iter().enumerate() {
            let mut problem = |text: String| {
                report.problems.push(LedgerProblem {
                    index,
                    problem: text,
                })
            };
            let entry = match Entry::decode(bytes) {
                Ok(entry) => entry,
                Err(error) => {
                    problem(format!("undecodable: {error}"));
                    continue;
                }
            };
            let h = &entry.header;
            let (seq, prev) = chains.get(&h.author).copied().unwrap_or((0, EntryId::ZERO));
            // Decoded from the store, so possibly altered: no overflow on a forged seq.
            if seq.checked_add(1) != Some(h.seq) || h.prev != prev {
                problem(format!("chain broken at seq {}", h.seq));
            }
            chains.insert(h.author, (h.seq, Entry::id_of(bytes)));
            match self
                .store
                .roster_public_key(&network.0, h.epoch, &h.author)?
            {
                None => problem(format!("author not in roster of epoch {}", h.epoch)),
                Some(key) => match entry.verify(&key) {
                    Ok(()) => report.signatures_ok += 1,
                    Err(error) => problem(format!("seq {}: {error}", h.seq)),
                },
            }
            let Some(epoch_key) = self.store.epoch_key(&network.0, h.epoch)? else {
                problem(format!("no key for epoch {}", h.epoch));
                continue;
            };
            let body = match entry.open(&EpochKey::from(epoch_key)) {
                Ok(body) => {
                    report.seals_ok += 1;
                    body
                }
                Err(error) => {
                    problem(format!("seq {}: {error}", h.seq));
                    continue;
                }
            };
            if h.kind == EntryKind::RecordChange {
                match self.open_record_change(network, &entry, &body)? {
                    Ok((_, change)) => match RecordDoc::inspect_change(&change) {
                        Ok(info) if info.actor == h.author.0 => report.record_seals_ok += 1,
                        Ok(_) => problem(format!("seq {}: change actor is not the author", h.seq)),
                        Err(error) => problem(format!("seq {}: {error}", h.seq)),
                    },
                    Err(RejectEntryError::NoRecordKey) => report.record_keys_missing += 1,
                    Err(error) => problem(format!("seq {}: {error}", h.seq)),
                }
            }
        }
        report.authors = chains.len();
        Ok(report)
    }
}
