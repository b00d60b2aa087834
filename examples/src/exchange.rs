//! Exchanging messages with the relay: one sync with a progress spinner, and
//! syncing until a membership change of ours has taken effect.

use std::time::Instant;

use anyhow::{Context as _, Result};
use careledger::node::{NetworkId, Node};
use careledger::relay::Relay;
use careledger::sync::{sync_with_progress, SyncReport};
use indicatif::MultiProgress;
use serde::Serialize;

use crate::context::now_ms;
use crate::output::counting_spinner;

/// Syncs a membership change may need: our commit can lose its epoch to
/// another member's (DESIGN §5), and the core then re-proposes it.
const COMMIT_ROUNDS: usize = 5;

/// What one or more syncs of one network did, for people and scripts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncSummary {
    /// Network id (hex).
    pub network: String,
    /// Local label.
    pub label: String,
    /// Messages published to the relay.
    pub published: usize,
    /// Messages fetched from the relay.
    pub fetched: usize,
    /// Entries accepted.
    pub accepted: usize,
    /// Entries already known.
    pub duplicates: usize,
    /// Entries held back (waiting for earlier entries or keys).
    pub held: usize,
    /// Messages refused.
    pub rejected: usize,
    /// Why each refused message was refused (no patient data).
    pub rejections: Vec<String>,
    /// MLS commits applied.
    pub commits_applied: usize,
    /// MLS messages that failed to process.
    pub mls_errors: Vec<String>,
    /// Whether this node learned it was removed.
    pub removed: bool,
    /// Wall time.
    pub seconds: f64,
}

impl SyncSummary {
    /// An empty summary for a network.
    pub fn new(network: &NetworkId, label: &str) -> Self {
        SyncSummary {
            network: network.to_hex(),
            label: label.to_owned(),
            ..SyncSummary::default()
        }
    }

    /// Add one sync's report.
    pub fn add(&mut self, report: &SyncReport) {
        let received = &report.received;
        self.published += report.published;
        self.fetched += report.fetched;
        self.accepted += received.accepted;
        self.duplicates += received.duplicates;
        self.held = received.held;
        self.rejected += received.rejected.len();
        self.rejections
            .extend(received.rejected.iter().map(ToString::to_string));
        self.commits_applied += received.commits_applied;
        self.mls_errors.extend(received.mls_errors.iter().cloned());
        self.removed |= received.removed;
    }

    /// Whether the sync changed anything locally or owes the relay more.
    pub fn changed(&self) -> bool {
        self.accepted > 0 || self.commits_applied > 0 || self.published > 1
    }
}

/// One full exchange for a network, with a spinner counting fetched messages.
pub fn sync_network(
    node: &mut Node,
    relay: &mut dyn Relay,
    network: &NetworkId,
    label: &str,
    progress: &MultiProgress,
) -> Result<SyncSummary> {
    let started = Instant::now();
    let bar = counting_spinner(progress, format!("sync {label}: fetched"), "messages");
    let report = sync_with_progress(node, relay, network, now_ms(), &mut |fetched| {
        bar.set_position(fetched as u64)
    })
    .with_context(|| format!("sync of network `{label}` failed"));
    bar.finish_and_clear();
    let mut summary = SyncSummary::new(network, label);
    summary.add(&report?);
    // The report counts held entries only when something was fetched; the
    // store knows the real number.
    summary.held = node.held_entries(network)?.len();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Sync until no commit of ours is pending (it won its epoch and took effect).
pub fn sync_until_committed(
    node: &mut Node,
    relay: &mut dyn Relay,
    network: &NetworkId,
    label: &str,
    progress: &MultiProgress,
) -> Result<SyncSummary> {
    let started = Instant::now();
    let mut total = SyncSummary::new(network, label);
    for _ in 0..COMMIT_ROUNDS {
        let round = sync_network(node, relay, network, label, progress)?;
        merge(&mut total, round);
        if !node.commit_pending(network)? {
            break;
        }
    }
    if node.commit_pending(network)? {
        anyhow::bail!(
            "the membership change is still waiting for its turn after {COMMIT_ROUNDS} syncs; \
             run `careledger sync` again later"
        );
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

/// Sum two summaries of one network.
pub fn merge(total: &mut SyncSummary, more: SyncSummary) {
    total.published += more.published;
    total.fetched += more.fetched;
    total.accepted += more.accepted;
    total.duplicates += more.duplicates;
    total.held = more.held;
    total.rejected += more.rejected;
    total.rejections.extend(more.rejections);
    total.commits_applied += more.commits_applied;
    total.mls_errors.extend(more.mls_errors);
    total.removed |= more.removed;
    total.seconds += more.seconds;
}
