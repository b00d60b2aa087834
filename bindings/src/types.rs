//! Plain data crossing the boundary: uniffi records and enums, each built from
//! the core type it mirrors. Ids travel as lowercase hex, counts as `u64`.

use careledger::node;
use careledger::wire::WireMessage;

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A member of a network's current epoch.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MemberInfo {
    /// The node name in its credential (e.g. `hospital-a.example`).
    pub name: String,
    /// Its author id: 64 hex digits (pass to `Network.remove`).
    pub author_id: String,
    /// Eight groups of four hex digits, for people to compare out of band.
    pub fingerprint: String,
    /// Whether this member is the node asking.
    pub this_node: bool,
}

impl MemberInfo {
    pub(crate) fn from_core(member: node::MemberInfo, me: &str) -> Self {
        let author_id = member.author.to_hex();
        MemberInfo {
            this_node: author_id == me,
            name: member.name,
            author_id,
            fingerprint: member.fingerprint,
        }
    }
}

/// A network as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct NetworkInfo {
    /// The network id (hex); the same on every member.
    pub id: String,
    /// This node's local label for it.
    pub label: String,
    /// Current MLS epoch (the last one seen, if removed).
    pub epoch: u64,
    /// Whether this node is still a member.
    pub active: bool,
    /// Whether a membership change of ours awaits its turn (sync to settle it).
    pub commit_pending: bool,
}

impl From<node::NetworkInfo> for NetworkInfo {
    fn from(info: node::NetworkInfo) -> Self {
        NetworkInfo {
            id: info.id.to_hex(),
            label: info.label,
            epoch: info.epoch,
            active: info.active,
            commit_pending: info.commit_pending,
        }
    }
}

/// What a relay message carries, so a transport can route it (for instance,
/// hand a `Welcome` to the invitee for `Node.join_network`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MessageKind {
    /// A sealed, signed ledger entry.
    Entry,
    /// An MLS Commit (a membership or key change).
    Commit,
    /// An MLS Welcome for an invited node.
    Welcome,
    /// A heads announcement (lets peers resend what was lost in transit).
    Heads,
    /// Not decodable (never produced by this library).
    Unknown,
}

impl MessageKind {
    fn of(message: &[u8]) -> Self {
        match WireMessage::decode(message) {
            Ok(WireMessage::Entry(_)) => MessageKind::Entry,
            Ok(WireMessage::Commit(_)) => MessageKind::Commit,
            Ok(WireMessage::Welcome(_)) => MessageKind::Welcome,
            Ok(WireMessage::Heads { .. }) => MessageKind::Heads,
            Err(_) => MessageKind::Unknown,
        }
    }
}

/// A message waiting in the node's outbox for the transport.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OutgoingMessage {
    /// Outbox position: pass it to `Node.ack_outgoing` once the transport
    /// has durably taken the message.
    pub id: i64,
    /// The network (hex) whose relay log the message belongs in.
    pub network_id: String,
    /// What it carries.
    pub kind: MessageKind,
    /// The bytes to carry, unchanged.
    pub bytes: Vec<u8>,
}

impl From<node::Outgoing> for OutgoingMessage {
    fn from(outgoing: node::Outgoing) -> Self {
        OutgoingMessage {
            id: outgoing.id,
            network_id: outgoing.network.to_hex(),
            kind: MessageKind::of(&outgoing.message),
            bytes: outgoing.message,
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ImportReport {
    /// FHIR resources parsed.
    pub resources: u64,
    /// Patients (records) touched.
    pub patients: u64,
    /// Records whose content changed.
    pub changes: u64,
    /// Ledger entries written (changes plus key grants).
    pub entries: u64,
}

impl From<node::ImportReport> for ImportReport {
    fn from(report: node::ImportReport) -> Self {
        ImportReport {
            resources: count(report.resources),
            patients: count(report.patients),
            changes: count(report.changes),
            entries: count(report.entries),
        }
    }
}

/// What receiving a batch did (a batch with refused messages raises
/// `ApiError.MessageRejected` instead).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ReceiveReport {
    /// Entries accepted (including held entries this batch released).
    pub accepted: u64,
    /// Entries already known.
    pub duplicates: u64,
    /// Entries held back, waiting for earlier entries or keys.
    pub held: u64,
    /// MLS Commits applied (ours or others').
    pub commits_applied: u64,
    /// Commits ignored because their epoch was already decided.
    pub commits_stale: u64,
    /// Commits of ours that lost their epoch and were proposed again.
    pub commits_retried: u64,
    /// Whether this node learned it was removed from the network.
    pub removed: bool,
    /// Entries queued again because a peer showed it lacked them.
    pub resent: u64,
    /// Rule outcomes this node wrote by itself as an executor.
    pub rule_outcomes_written: u64,
    /// Others' rule outcomes re-checked here and confirmed.
    pub rule_outcomes_confirmed: u64,
    /// Others' rule outcomes that did not re-check (their executor is flagged).
    pub rule_outcome_mismatches: u64,
}

impl From<&node::ReceiveReport> for ReceiveReport {
    fn from(report: &node::ReceiveReport) -> Self {
        ReceiveReport {
            accepted: count(report.accepted),
            duplicates: count(report.duplicates),
            held: count(report.held),
            commits_applied: count(report.commits_applied),
            commits_stale: count(report.commits_stale),
            commits_retried: count(report.commits_retried),
            removed: report.removed,
            resent: count(report.resent),
            rule_outcomes_written: count(report.rules.outcomes_written),
            rule_outcomes_confirmed: count(report.rules.confirmed),
            rule_outcome_mismatches: count(report.rules.mismatches.len()),
        }
    }
}

/// What a sync with a relay did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Messages published to the relay.
    pub published: u64,
    /// Messages fetched from the relay.
    pub fetched: u64,
    /// What receiving the fetched messages did.
    pub received: ReceiveReport,
    /// Why each refused message was refused (a relay may hold junk; a sync
    /// reports it rather than failing, and never stores it).
    pub rejected: Vec<String>,
}

impl From<careledger::sync::SyncReport> for SyncReport {
    fn from(report: careledger::sync::SyncReport) -> Self {
        let received = &report.received;
        SyncReport {
            published: count(report.published),
            fetched: count(report.fetched),
            received: ReceiveReport::from(received),
            rejected: received
                .rejected
                .iter()
                .map(ToString::to_string)
                .chain(
                    received
                        .mls_errors
                        .iter()
                        .map(|e| format!("MLS message: {e}")),
                )
                .collect(),
        }
    }
}

/// The result of re-checking a network's whole ledger.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct LedgerReport {
    /// Entries checked.
    pub entries: u64,
    /// Distinct authors.
    pub authors: u64,
    /// Signatures verified.
    pub signatures_ok: u64,
    /// Entry bodies opened under their epoch key.
    pub seals_ok: u64,
    /// Record changes opened under their record key.
    pub record_seals_ok: u64,
    /// Record changes whose key this node never held or no longer holds.
    pub record_keys_missing: u64,
    /// Forks kept as evidence.
    pub forks: u64,
    /// Authors flagged (forks, actor mismatches).
    pub flagged: u64,
    /// Everything wrong, in local append order (`#index: problem`).
    pub problems: Vec<String>,
    /// No problems, no forks, no flagged authors.
    pub clean: bool,
}

impl From<node::LedgerReport> for LedgerReport {
    fn from(report: node::LedgerReport) -> Self {
        LedgerReport {
            clean: report.is_clean(),
            entries: count(report.entries),
            authors: count(report.authors),
            signatures_ok: count(report.signatures_ok),
            seals_ok: count(report.seals_ok),
            record_seals_ok: count(report.record_seals_ok),
            record_keys_missing: count(report.record_keys_missing),
            forks: report.forks,
            flagged: count(report.flagged),
            problems: report
                .problems
                .iter()
                .map(|p| format!("#{}: {}", p.index, p.problem))
                .collect(),
        }
    }
}
