//! Rules on the ledger (DESIGN §8): rule sets, policy and endorsements,
//! outcomes written by the executors without any call by the host, and the
//! re-check every member makes of every outcome.
//!
//! # Flow
//!
//! 1. A member writes a policy ([`Node::set_policy`], quorum k of n) and a
//!    rule set ([`Node::add_rule_set`]); k members endorse it
//!    ([`Node::endorse`]; for a model card, only after their own
//!    [`Node::verify_model`] answered *confirmed*).
//! 2. From then on, in [`Node::receive`]: when a batch brings record changes
//!    (or makes a rule set active), every node named as an executor of an
//!    active rule set evaluates, for each changed record, each resource of a
//!    rule's trigger type whose current version has no outcome yet, and
//!    writes one outcome entry ([`OutcomeRecord`], a `ClaimResponse` in
//!    substance) in the same transaction. [`Node::run_rules`] does the same
//!    pass over every record on request.
//! 3. Every member receiving an outcome re-evaluates it on its own replica
//!    ([`Node::verify_outcome`]): the rule set by hash, the executor, the
//!    governance at the cited ledger cut, the trigger entry and its time, the
//!    inputs read at the cited record heads (consent applied for the
//!    executor), the decision entry used, and the outcome itself. A mismatch
//!    flags the executor (`rule outcome mismatch: <entry>`), like a fork:
//!    [`Node::verify_ledger`] reports it and the outcome entry stays as
//!    evidence. An outcome whose inputs have not arrived yet is checked after
//!    a later batch.
//!
//! # Exactly one outcome
//!
//! An outcome is keyed by (rule set hash, rule id, resource type, id and
//! version hash). An executor writes none for a key its replica already has
//! an outcome for (its own or another executor's), so duplicates and late
//! entries change nothing. Two executors that race before seeing each
//! other's outcome both write one: the one with the smaller entry id is the
//! outcome ([`Node::rule_outcomes`] lists exactly one per key and counts the
//! others as duplicates), and every duplicate is re-checked like any outcome.
//!
//! # Consent
//!
//! Inputs are read only as consent permits the executor (`[Network,
//! Node(executor)]`) the purpose `CLMATTCH` at the trigger's time; a
//! resource of the trigger type that is not permitted gets no outcome.
//! Sharing into a claims network with only the types rules need is
//! [`Node::share_types_to_network`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::consent::{chart_consents, decide_types};
use super::{AiError, NetworkError, NetworkId, Node, PredictInput};
use crate::analytics::ledger::DecisionRecord;
use crate::body::RecordChangeBody;
use crate::consent::{Grantee, Purpose};
use crate::entry::{AuthorId, Entry, EntryId, EntryKind};
use crate::keys::EpochKey;
use crate::record::fhir::Resource;
use crate::rules::document::{CompiledRule, RuleSet};
use crate::rules::engine::Limits;
use crate::rules::governance::{
    Activation, EndorsementBody, Fact, FactBody, Governance, PolicyBody, Stance, Target,
};
use crate::rules::outcome::{
    apply, find_rule, GovernanceRef, OutcomeRecord, RuleInputs, RuleSetRef, Subject,
};
use crate::store::StoreError;

/// A rules operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The rule set was refused (nothing stored).
    #[error("invalid rule set: {0}")]
    InvalidRuleSet(#[from] crate::rules::document::InvalidRuleSetError),
    /// A policy quorum of 0, or above the members of the network.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// No rule set, model card, policy or outcome with that id here.
    #[error("no {0} with that id in this network")]
    Unknown(&'static str),
    /// A model card was not confirmed by this node's own verification, so it is not endorsed.
    #[error("model card not endorsed: verification answered mismatch at {step}")]
    NotConfirmed {
        /// The step that differed.
        step: String,
    },
    /// Verification or prediction failed.
    #[error(transparent)]
    Ai(#[from] AiError),
    /// The network is not usable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A rule set as found on the ledger, with its activation now.
#[derive(Clone, Debug)]
pub struct RuleSetInfo {
    /// Its entry (the smallest, if the same document was written twice).
    pub entry: EntryId,
    /// Who wrote it.
    pub author: AuthorId,
    /// The parsed set.
    pub set: RuleSet,
    /// Activation under the policy in force.
    pub activation: Activation,
    /// Active, and the highest active version of its name.
    pub in_force: bool,
}

/// An outcome as found on the ledger.
#[derive(Clone, Debug)]
pub struct StoredOutcome {
    /// The entry.
    pub entry: EntryId,
    /// The executor that wrote it.
    pub author: AuthorId,
    /// What it says.
    pub record: OutcomeRecord,
    /// Other outcomes for the same key (racing executors), by entry id.
    pub duplicates: Vec<EntryId>,
}

/// The step of [`Node::verify_outcome`] that differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStep {
    /// The rule set named by entry and hash, and the rule in it.
    RuleSet,
    /// The author is an executor of the rule set.
    Executor,
    /// Policy and endorsements at the cited cut.
    Governance,
    /// The trigger entry and its time.
    Trigger,
    /// The inputs read at the cited record heads.
    Inputs,
    /// The decision entry of the prediction used.
    Decision,
    /// Re-evaluating the rule gives the same outcome.
    Outcome,
}

impl OutcomeStep {
    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            OutcomeStep::RuleSet => "rule set",
            OutcomeStep::Executor => "executor",
            OutcomeStep::Governance => "governance",
            OutcomeStep::Trigger => "trigger",
            OutcomeStep::Inputs => "inputs",
            OutcomeStep::Decision => "decision",
            OutcomeStep::Outcome => "outcome",
        }
    }
}

/// The answer of [`Node::verify_outcome`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum OutcomeCheck {
    /// Re-evaluated on this replica: the same outcome.
    Confirmed,
    /// A step differs.
    Mismatch {
        /// The first step that differed.
        step: OutcomeStep,
        /// What differed (no record data).
        detail: String,
    },
    /// This replica lacks what the outcome cites (not synced yet).
    Waiting {
        /// What is missing.
        detail: String,
    },
}

/// What rules did during one receive batch or [`Node::run_rules`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulesActivity {
    /// Outcome entries written by this node.
    pub outcomes_written: usize,
    /// Decision entries written for predictions rules used.
    pub decisions_written: usize,
    /// Resources a rule concerned but consent did not let this node read.
    pub consent_denied: usize,
    /// Evaluations that failed (typed errors; nothing written), with the rule and why.
    pub failures: Vec<String>,
    /// Others' outcomes re-checked and confirmed.
    pub confirmed: usize,
    /// Others' outcomes that did not re-check: `(outcome entry, step)`.
    pub mismatches: Vec<(EntryId, OutcomeStep)>,
    /// Outcomes waiting for entries this replica lacks.
    pub waiting: usize,
}

/// Every rules entry of a network, opened once.
#[derive(Default)]
struct RulesLedger {
    facts: Vec<Fact>,
    /// By hash: (smallest entry, author, body bytes).
    sets: BTreeMap<[u8; 32], (EntryId, AuthorId, Vec<u8>)>,
    outcomes: Vec<(EntryId, AuthorId, OutcomeRecord)>,
}

/// A record's resources and consents, read at some heads.
type Chart = Rc<(Vec<Resource>, super::ChartConsents)>;

/// Outcomes by key.
type ByKey = BTreeMap<(String, String, Subject), Vec<(EntryId, AuthorId, OutcomeRecord)>>;

/// What re-checking many outcomes shares: the rules entries, parsed rule
/// sets, and records read at cited heads.
#[derive(Default)]
struct CheckCache {
    ledger: Option<RulesLedger>,
    sets: BTreeMap<Vec<u8>, Result<Rc<RuleSet>, String>>,
    charts: BTreeMap<(String, Vec<[u8; 32]>), Option<Chart>>,
    /// Trigger entries: `(is a record change, its record, its time)`.
    triggers: BTreeMap<EntryId, Option<(bool, Option<String>, u64)>>,
}

/// The heads cut `(author → seq)`.
type Cut = BTreeMap<AuthorId, u64>;

const MISMATCH_FLAG: &str = "rule outcome mismatch";
const PENDING_CHECKS: &str = "rules.pending_checks.";

fn resource_version(resource: &Resource) -> String {
    hex::encode(Sha256::digest(resource.to_json().as_bytes()))
}

/// Which records a rules pass runs for.
enum Records {
    /// Every record (rule sets or governance changed).
    All,
    /// Records changed by entries stored after this local order.
    ChangedSince(i64),
}

impl Node {
    fn opened_body(
        &self,
        network: &NetworkId,
        entry: &Entry,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key) = self.store.epoch_key(&network.0, entry.header.epoch)? else {
            return Ok(None);
        };
        Ok(entry.open(&EpochKey::from(key)).ok())
    }

    fn rules_ledger(&self, network: &NetworkId) -> Result<RulesLedger, StoreError> {
        self.rules_entries(network, true)
    }

    /// Rule sets, policies and endorsements, and with `outcomes` the outcomes too.
    fn rules_entries(
        &self,
        network: &NetworkId,
        outcomes: bool,
    ) -> Result<RulesLedger, StoreError> {
        let mut ledger = RulesLedger::default();
        let all = [
            EntryKind::RuleSet,
            EntryKind::RuleOutcome,
            EntryKind::Policy,
            EntryKind::Endorsement,
        ];
        let governance = [
            EntryKind::RuleSet,
            EntryKind::Policy,
            EntryKind::Endorsement,
        ];
        let kinds: &[EntryKind] = if outcomes { &all } else { &governance };
        for bytes in self.store.entries_of_kinds(&network.0, kinds)? {
            let entry = Entry::decode(&bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
            let id = Entry::id_of(&bytes);
            let h = &entry.header;
            let Some(body) = self.opened_body(network, &entry)? else {
                continue;
            };
            match h.kind {
                EntryKind::RuleSet => {
                    let hash: [u8; 32] = Sha256::digest(&body).into();
                    let slot = ledger
                        .sets
                        .entry(hash)
                        .or_insert((id, h.author, body.clone()));
                    if id < slot.0 {
                        *slot = (id, h.author, body);
                    }
                }
                EntryKind::RuleOutcome => {
                    if let Ok(record) = OutcomeRecord::decode(&body) {
                        ledger.outcomes.push((id, h.author, record));
                    }
                }
                EntryKind::Policy => {
                    if let Ok(policy) = PolicyBody::decode(&body) {
                        ledger.facts.push(Fact {
                            entry: id,
                            author: h.author,
                            seq: h.seq,
                            body: FactBody::Policy(policy),
                        });
                    }
                }
                EntryKind::Endorsement => {
                    if let Ok(endorsement) = EndorsementBody::decode(&body) {
                        ledger.facts.push(Fact {
                            entry: id,
                            author: h.author,
                            seq: h.seq,
                            body: FactBody::Endorsement(endorsement),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(ledger)
    }

    fn current_cut(&self, network: &NetworkId) -> Result<Cut, StoreError> {
        Ok(self
            .store
            .heads(&network.0)?
            .into_iter()
            .map(|(author, seq, _)| (author, seq))
            .collect())
    }

    /// Rule sets in force at `cut`: active, highest active version per name.
    fn sets_in_force(
        ledger: &RulesLedger,
        governance: &Governance,
        limits: &Limits,
    ) -> Vec<(EntryId, RuleSet, Activation)> {
        let mut best: BTreeMap<String, (EntryId, RuleSet, Activation)> = BTreeMap::new();
        for (hash, (entry, _, bytes)) in &ledger.sets {
            let activation = governance.activation(&Target::RuleSet(hex::encode(hash)));
            if !activation.active {
                continue;
            }
            let Ok(set) = RuleSet::parse(bytes, limits) else {
                continue;
            };
            let better = best.get(&set.doc.name).is_none_or(|(_, other, _)| {
                (set.doc.version, std::cmp::Reverse(set.hash))
                    > (other.doc.version, std::cmp::Reverse(other.hash))
            });
            if better {
                best.insert(set.doc.name.clone(), (*entry, set, activation));
            }
        }
        best.into_values().collect()
    }

    fn facts_within(facts: &[Fact], cut: &Cut) -> Vec<Fact> {
        facts
            .iter()
            .filter(|f| cut.get(&f.author).is_some_and(|seq| f.seq <= *seq))
            .cloned()
            .collect()
    }

    /// Write the network's policy: `quorum` endorsements make a rule set,
    /// model card or later policy active. A policy replacing another takes
    /// effect once endorsed by the replaced policy's quorum.
    pub fn set_policy(
        &mut self,
        network: &NetworkId,
        quorum: u32,
        replaces: Option<EntryId>,
        now_ms: u64,
    ) -> Result<EntryId, RulesError> {
        let members = self.members(network)?.len() as u32;
        if quorum == 0 || quorum > members {
            return Err(RulesError::InvalidPolicy(format!(
                "quorum must be between 1 and the {members} member(s) of the network"
            )));
        }
        let body = PolicyBody::new(quorum, members, replaces).encode();
        Ok(self.atomically(|node| node.append_entry(network, EntryKind::Policy, &body, now_ms))?)
    }

    /// Store a rule set document (checked and compiled first: a refused
    /// document stores nothing). Returns its entry and hash.
    pub fn add_rule_set(
        &mut self,
        network: &NetworkId,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<(EntryId, [u8; 32]), RulesError> {
        let set = RuleSet::parse(bytes, &Limits::default())?;
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        let entry = self.atomically(|node| {
            let entry = node.append_entry(network, EntryKind::RuleSet, bytes, now_ms)?;
            node.rules_pass(network, Records::All, now_ms)?;
            Ok::<_, RulesError>(entry)
        })?;
        Ok((entry, set.hash))
    }

    /// Endorse (or withdraw from) a rule set, model card or policy. A model
    /// card is endorsed only after this node's own [`Node::verify_model`]
    /// confirms it; the steps it passed go into the endorsement. Activation
    /// may start rules at once: executors run them in the same transaction.
    pub fn endorse(
        &mut self,
        network: &NetworkId,
        target: Target,
        stance: Stance,
        now_ms: u64,
    ) -> Result<EntryId, RulesError> {
        let ledger = self.rules_ledger(network)?;
        let mut body = EndorsementBody::new(target.clone(), stance);
        match &target {
            Target::RuleSet(hash) => {
                if !ledger.sets.keys().any(|h| hex::encode(h) == *hash) {
                    return Err(RulesError::Unknown("rule set"));
                }
            }
            Target::Policy(id) => {
                if !ledger
                    .facts
                    .iter()
                    .any(|f| matches!(f.body, FactBody::Policy(_)) && f.entry.to_hex() == *id)
                {
                    return Err(RulesError::Unknown("policy"));
                }
            }
            Target::ModelCard(id) => {
                let card = EntryId::from_hex(id).ok_or(RulesError::Unknown("model card"))?;
                if stance == Stance::Endorse {
                    let verification = self.verify_model(network, &card)?;
                    if let Some(step) = verification.mismatch() {
                        return Err(RulesError::NotConfirmed {
                            step: step.name().to_owned(),
                        });
                    }
                    body.verified_steps = verification
                        .passed
                        .iter()
                        .map(|s| s.name().to_owned())
                        .collect();
                } else {
                    self.model_card(network, &card)?;
                }
            }
        }
        let bytes = body.encode();
        self.atomically(|node| {
            let entry = node.append_entry(network, EntryKind::Endorsement, &bytes, now_ms)?;
            node.rules_pass(network, Records::All, now_ms)?;
            Ok::<_, RulesError>(entry)
        })
    }

    /// Whether a target is active now, and on what.
    pub fn activation(
        &self,
        network: &NetworkId,
        target: &Target,
    ) -> Result<Activation, RulesError> {
        self.network_row(network)?;
        let ledger = self.rules_ledger(network)?;
        Ok(Governance::at(&ledger.facts).activation(target))
    }

    /// Every policy, endorsement and withdrawal of a network as found on
    /// the ledger (for audits), in the order the store holds them.
    pub fn governance_facts(&self, network: &NetworkId) -> Result<Vec<Fact>, RulesError> {
        self.network_row(network)?;
        Ok(self.rules_entries(network, false)?.facts)
    }

    /// The rule sets of a network, with their activation now.
    pub fn rule_sets(&self, network: &NetworkId) -> Result<Vec<RuleSetInfo>, RulesError> {
        self.network_row(network)?;
        let ledger = self.rules_ledger(network)?;
        let governance = Governance::at(&ledger.facts);
        let limits = Limits::default();
        let in_force: BTreeSet<[u8; 32]> = Self::sets_in_force(&ledger, &governance, &limits)
            .into_iter()
            .map(|(_, set, _)| set.hash)
            .collect();
        let mut out = Vec::new();
        for (hash, (entry, author, bytes)) in &ledger.sets {
            let Ok(set) = RuleSet::parse(bytes, &limits) else {
                continue;
            };
            out.push(RuleSetInfo {
                entry: *entry,
                author: *author,
                activation: governance.activation(&Target::RuleSet(hex::encode(hash))),
                in_force: in_force.contains(hash),
                set,
            });
        }
        out.sort_by(|a, b| {
            (&a.set.doc.name, a.set.doc.version).cmp(&(&b.set.doc.name, b.set.doc.version))
        });
        Ok(out)
    }

    /// Outcomes of a network: exactly one per (rule set, rule, resource
    /// version), the smallest entry id of racing duplicates.
    pub fn rule_outcomes(&self, network: &NetworkId) -> Result<Vec<StoredOutcome>, RulesError> {
        self.network_row(network)?;
        let ledger = self.rules_ledger(network)?;
        let mut by_key: ByKey = BTreeMap::new();
        for (id, author, record) in ledger.outcomes {
            by_key
                .entry(record.key())
                .or_default()
                .push((id, author, record));
        }
        let mut out: Vec<StoredOutcome> = by_key
            .into_values()
            .map(|mut all| {
                all.sort_by_key(|(id, _, _)| *id);
                let (entry, author, record) = all.remove(0);
                StoredOutcome {
                    entry,
                    author,
                    record,
                    duplicates: all.into_iter().map(|(id, _, _)| id).collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.record.subject.record, &a.record.subject.id, a.entry).cmp(&(
                &b.record.subject.record,
                &b.record.subject.id,
                b.entry,
            ))
        });
        Ok(out)
    }

    /// Run the rules this node executes over every record of the network
    /// now (receive does this by itself for changed records).
    pub fn run_rules(
        &mut self,
        network: &NetworkId,
        now_ms: u64,
    ) -> Result<RulesActivity, RulesError> {
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        self.atomically(|node| node.rules_pass(network, Records::All, now_ms))
    }

    /// After a receive batch: run the rules for records the batch changed
    /// (all records if governance or rule sets changed) and re-check others'
    /// outcomes. Called inside the batch's transaction.
    pub(crate) fn rules_after_receive(
        &mut self,
        network: &NetworkId,
        before: i64,
        now_ms: u64,
    ) -> Result<RulesActivity, StoreError> {
        let mut to_check = self.pending_checks(network)?;
        if self.store.last_local_order(&network.0)? <= before && to_check.is_empty() {
            return Ok(RulesActivity::default());
        }
        // Only the rules' own entries are read here; record changes are read
        // (and opened) only if this node executes a rule set.
        let new = self.store.entries_since_of_kinds(
            &network.0,
            before,
            &[
                EntryKind::RuleSet,
                EntryKind::RuleOutcome,
                EntryKind::Policy,
                EntryKind::Endorsement,
            ],
        )?;
        let mut all = false;
        let me = self.identity.author_id();
        for bytes in &new {
            let Ok(entry) = Entry::decode(bytes) else {
                continue;
            };
            let h = &entry.header;
            match h.kind {
                EntryKind::RuleSet | EntryKind::Policy | EntryKind::Endorsement => all = true,
                EntryKind::RuleOutcome if h.author != me => {
                    to_check.insert(Entry::id_of(bytes));
                }
                _ => {}
            }
        }
        let records = if all {
            Records::All
        } else {
            Records::ChangedSince(before)
        };
        let mut activity = if self.is_member(network).unwrap_or(false) {
            match self.rules_pass(network, records, now_ms) {
                Ok(activity) => activity,
                Err(RulesError::Store(error)) => return Err(error),
                Err(error) => RulesActivity {
                    failures: vec![error.to_string()],
                    ..RulesActivity::default()
                },
            }
        } else {
            RulesActivity::default()
        };
        let mut still = BTreeSet::new();
        let mut cache = CheckCache::default();
        for id in to_check {
            match self.verify_outcome_cached(network, &id, &mut cache) {
                Ok((_, OutcomeCheck::Confirmed)) => activity.confirmed += 1,
                Ok((author, OutcomeCheck::Mismatch { step, .. })) => {
                    self.flag_mismatch(network, &author, &id)?;
                    activity.mismatches.push((id, step));
                }
                Ok((_, OutcomeCheck::Waiting { .. })) => {
                    activity.waiting += 1;
                    still.insert(id);
                }
                Err(RulesError::Store(error)) => return Err(error),
                Err(_) => {}
            }
        }
        self.set_pending_checks(network, &still)?;
        Ok(activity)
    }

    fn pending_checks(&self, network: &NetworkId) -> Result<BTreeSet<EntryId>, StoreError> {
        let key = format!("{PENDING_CHECKS}{}", network.to_hex());
        Ok(self
            .store
            .meta(&key)?
            .map(|bytes| {
                bytes
                    .chunks_exact(32)
                    .filter_map(EntryId::from_slice)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn set_pending_checks(
        &self,
        network: &NetworkId,
        ids: &BTreeSet<EntryId>,
    ) -> Result<(), StoreError> {
        let key = format!("{PENDING_CHECKS}{}", network.to_hex());
        if ids.is_empty() && self.store.meta(&key)?.is_none() {
            return Ok(());
        }
        let bytes: Vec<u8> = ids.iter().flat_map(|id| id.0).collect();
        self.store.set_meta(&key, &bytes)
    }

    /// The records changed by entries stored after local order `before`,
    /// each with the entry that last changed it (`i64::MIN`: every record,
    /// for full passes).
    fn changed_since(
        &self,
        network: &NetworkId,
        before: i64,
    ) -> Result<BTreeMap<String, (EntryId, u64)>, StoreError> {
        let mut touched = BTreeMap::new();
        for bytes in
            self.store
                .entries_since_of_kinds(&network.0, before, &[EntryKind::RecordChange])?
        {
            let Ok(entry) = Entry::decode(&bytes) else {
                continue;
            };
            if let Some(body) = self.opened_body(network, &entry)? {
                if let Ok(change) = RecordChangeBody::decode(&body) {
                    touched.insert(change.record, (Entry::id_of(&bytes), entry.header.time_ms));
                }
            }
        }
        Ok(touched)
    }

    /// The executor's pass: `records` with their trigger entries, or all.
    fn rules_pass(
        &mut self,
        network: &NetworkId,
        records: Records,
        now_ms: u64,
    ) -> Result<RulesActivity, RulesError> {
        let mut activity = RulesActivity::default();
        let me = self.identity.author_id();
        let limits = Limits::default();
        let ledger = self.rules_entries(network, false)?;
        let governance = Governance::at(&ledger.facts);
        let sets: Vec<_> = Self::sets_in_force(&ledger, &governance, &limits)
            .into_iter()
            .filter(|(_, set, _)| set.is_executor(&me))
            .collect();
        if sets.is_empty() {
            return Ok(activity);
        }
        let records = match records {
            Records::ChangedSince(before) => self.changed_since(network, before)?,
            Records::All => self.changed_since(network, i64::MIN)?,
        };
        if records.is_empty() {
            return Ok(activity);
        }
        let ledger = self.rules_ledger(network)?;
        let mut done: HashSet<(String, String, Subject)> =
            ledger.outcomes.iter().map(|(_, _, r)| r.key()).collect();
        let cut = self.current_cut(network)?;
        let ledger_heads: Vec<(String, u64)> = cut.iter().map(|(a, s)| (a.to_hex(), *s)).collect();
        for (record, (trigger, time_ms)) in records {
            if !self.store.has_record(&network.0, &record)? {
                continue;
            }
            let (resources, heads, consents) = {
                let doc = self.doc_mut(network, &record, me)?;
                let Ok(resources) = doc.resources() else {
                    activity.failures.push("a record could not be read".into());
                    continue;
                };
                let consents = chart_consents(doc, &resources);
                (resources, doc.heads(), consents)
            };
            for (set_entry, set, activation) in &sets {
                for compiled in &set.rules {
                    let rule = &compiled.rule;
                    for resource in resources
                        .iter()
                        .filter(|r| r.resource_type() == rule.trigger.resource_type)
                    {
                        let subject = Subject {
                            record: record.clone(),
                            resource_type: rule.trigger.resource_type.clone(),
                            id: resource.id().to_owned(),
                            version: resource_version(resource),
                        };
                        let key = (set.hash_hex(), rule.id.clone(), subject.clone());
                        if done.contains(&key) {
                            continue;
                        }
                        let Some((inputs, consent_ids)) = read_inputs(
                            compiled, resource, &resources, &consents, network, me, trigger,
                            time_ms,
                        ) else {
                            activity.consent_denied += 1;
                            continue;
                        };
                        let mut inputs = inputs;
                        let mut decision_entry = None;
                        let mut pending_decision = None;
                        let mut model_endorsements = Vec::new();
                        if let Some(model) = &rule.model {
                            let card = EntryId::from_hex(&model.card).unwrap_or(EntryId::ZERO);
                            let card_activation =
                                governance.activation(&Target::ModelCard(model.card.clone()));
                            if !card_activation.active {
                                activity.failures.push(format!(
                                    "rule `{}`: its model card is not active",
                                    rule.id
                                ));
                                continue;
                            }
                            let decision = match self.decide_prediction(
                                network,
                                &card,
                                &PredictInput::Record(record.clone()),
                                Purpose::Claims,
                                time_ms,
                            ) {
                                Ok(decision) => decision,
                                Err(AiError::Store(error)) => return Err(error.into()),
                                Err(error) => {
                                    activity
                                        .failures
                                        .push(format!("rule `{}`: {error}", rule.id));
                                    continue;
                                }
                            };
                            inputs.prediction = Some(prediction_json(&decision));
                            pending_decision = Some(decision);
                            model_endorsements = card_activation
                                .endorsements
                                .iter()
                                .map(|e| e.to_hex())
                                .collect();
                        }
                        let adjudication = match apply(compiled, &inputs, &limits) {
                            Ok(Some(adjudication)) => adjudication,
                            Ok(None) => {
                                done.insert(key);
                                continue;
                            }
                            Err(error) => {
                                activity
                                    .failures
                                    .push(format!("rule `{}`: {error}", rule.id));
                                continue;
                            }
                        };
                        // The decision is written only with the outcome that used it.
                        if let Some(decision) = pending_decision {
                            let id = self.append_entry(
                                network,
                                EntryKind::Decision,
                                &decision.encode_body(),
                                now_ms,
                            )?;
                            activity.decisions_written += 1;
                            decision_entry = Some(id.to_hex());
                        }
                        let (format, format_version) = OutcomeRecord::header();
                        let outcome = OutcomeRecord {
                            format,
                            format_version,
                            rule_set: RuleSetRef {
                                entry: set_entry.to_hex(),
                                hash: set.hash_hex(),
                                name: set.doc.name.clone(),
                                version: set.doc.version,
                            },
                            rule: rule.id.clone(),
                            subject,
                            trigger_entry: trigger.to_hex(),
                            trigger_time_ms: time_ms,
                            record_heads: heads.iter().map(hex::encode).collect(),
                            ledger_heads: ledger_heads.clone(),
                            input_hash: inputs.hash(),
                            consent_ids: consent_ids.clone(),
                            governance: GovernanceRef {
                                policy: activation.policy.map(|p| p.to_hex()).unwrap_or_default(),
                                quorum: activation.quorum,
                                endorsements: activation
                                    .endorsements
                                    .iter()
                                    .map(|e| e.to_hex())
                                    .collect(),
                                model_endorsements,
                            },
                            decision_entry,
                            outcome: adjudication.decision,
                            clause: adjudication.clause,
                            amount: adjudication.amount.map(|a| a.to_string()),
                            currency: set.doc.currency.clone(),
                            reason: adjudication.reason,
                        };
                        self.append_entry(
                            network,
                            EntryKind::RuleOutcome,
                            &outcome.encode(),
                            now_ms,
                        )?;
                        activity.outcomes_written += 1;
                        done.insert(key);
                    }
                }
            }
        }
        Ok(activity)
    }

    /// Re-evaluate outcome `id` on this replica (see the module docs).
    pub fn verify_outcome(
        &mut self,
        network: &NetworkId,
        id: &EntryId,
    ) -> Result<OutcomeCheck, RulesError> {
        Ok(self
            .verify_outcome_cached(network, id, &mut CheckCache::default())?
            .1)
    }

    fn verify_outcome_cached(
        &mut self,
        network: &NetworkId,
        id: &EntryId,
        cache: &mut CheckCache,
    ) -> Result<(AuthorId, OutcomeCheck), RulesError> {
        let bytes = self
            .store
            .entry_by_id(&network.0, id)?
            .ok_or(RulesError::Unknown("outcome"))?;
        let entry = Entry::decode(&bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
        let author = entry.header.author;
        if entry.header.kind != EntryKind::RuleOutcome {
            return Err(RulesError::Unknown("outcome"));
        }
        let body = self
            .opened_body(network, &entry)?
            .ok_or(RulesError::Unknown("outcome"))?;
        let record = match OutcomeRecord::decode(&body) {
            Ok(record) => record,
            Err(error) => return Ok((author, mismatch(OutcomeStep::Outcome, error.to_string()))),
        };
        Ok((
            author,
            self.check_cached(network, author, &record, None, cache)?,
        ))
    }

    /// Re-evaluate `record` (written by `executor`) against this replica,
    /// optionally with another rule set body instead of the one it cites
    /// (to check a document handed over by other means).
    pub fn check_outcome(
        &mut self,
        network: &NetworkId,
        executor: AuthorId,
        record: &OutcomeRecord,
        rule_set_bytes: Option<&[u8]>,
    ) -> Result<OutcomeCheck, RulesError> {
        self.check_cached(
            network,
            executor,
            record,
            rule_set_bytes,
            &mut CheckCache::default(),
        )
    }

    #[allow(clippy::map_entry)]
    fn check_cached(
        &mut self,
        network: &NetworkId,
        executor: AuthorId,
        record: &OutcomeRecord,
        rule_set_bytes: Option<&[u8]>,
        cache: &mut CheckCache,
    ) -> Result<OutcomeCheck, RulesError> {
        let limits = Limits::default();
        if cache.ledger.is_none() {
            cache.ledger = Some(self.rules_ledger(network)?);
        }
        // 1. Rule set.
        let set_bytes = match rule_set_bytes {
            Some(bytes) => bytes.to_vec(),
            None => {
                let Some(set_entry) = EntryId::from_hex(&record.rule_set.entry) else {
                    return Ok(mismatch(
                        OutcomeStep::RuleSet,
                        "rule set entry is not an id".into(),
                    ));
                };
                let Some(bytes) = self.store.entry_by_id(&network.0, &set_entry)? else {
                    return Ok(waiting("the rule set entry"));
                };
                let entry =
                    Entry::decode(&bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
                if entry.header.kind != EntryKind::RuleSet {
                    return Ok(mismatch(
                        OutcomeStep::RuleSet,
                        "the cited entry is not a rule set".into(),
                    ));
                }
                self.opened_body(network, &entry)?.unwrap_or_default()
            }
        };
        let parsed = cache.sets.entry(set_bytes.clone()).or_insert_with(|| {
            RuleSet::parse(&set_bytes, &limits)
                .map(Rc::new)
                .map_err(|e| e.to_string())
        });
        let set = match parsed {
            Ok(set) => Rc::clone(set),
            Err(error) => return Ok(mismatch(OutcomeStep::RuleSet, error.clone())),
        };
        if set.hash_hex() != record.rule_set.hash {
            return Ok(mismatch(
                OutcomeStep::RuleSet,
                format!(
                    "the rule set hashes to {}, the outcome cites {}",
                    set.hash_hex(),
                    record.rule_set.hash
                ),
            ));
        }
        let Some(compiled) = find_rule(&set, &record.rule) else {
            return Ok(mismatch(
                OutcomeStep::RuleSet,
                "the rule set has no such rule".into(),
            ));
        };
        // 2. Executor.
        if !set.is_executor(&executor) {
            return Ok(mismatch(
                OutcomeStep::Executor,
                "the author is not an executor of the rule set".into(),
            ));
        }
        // 3. Governance at the cited cut.
        let mut cut = Cut::new();
        for (author, seq) in &record.ledger_heads {
            let Some(author) = AuthorId::from_hex(author) else {
                return Ok(mismatch(
                    OutcomeStep::Governance,
                    "a cited head is not an author id".into(),
                ));
            };
            cut.insert(author, *seq);
        }
        let mine = self.current_cut(network)?;
        if cut.iter().any(|(a, s)| mine.get(a).is_none_or(|m| m < s)) {
            return Ok(waiting("entries up to the cited ledger cut"));
        }
        let facts = cache
            .ledger
            .as_ref()
            .map(|l| l.facts.as_slice())
            .unwrap_or_default();
        let governance = Governance::at(&Self::facts_within(facts, &cut));
        let activation = governance.activation(&Target::RuleSet(set.hash_hex()));
        let cited: Vec<String> = activation.endorsements.iter().map(|e| e.to_hex()).collect();
        if !activation.active
            || activation.policy.map(|p| p.to_hex()).unwrap_or_default() != record.governance.policy
            || cited != record.governance.endorsements
        {
            return Ok(mismatch(
                OutcomeStep::Governance,
                format!(
                    "at the cited cut the rule set has {} endorsement(s) under quorum {} (active: {})",
                    activation.endorsements.len(),
                    activation.quorum,
                    activation.active
                ),
            ));
        }
        // 4. Trigger.
        let Some(trigger) = EntryId::from_hex(&record.trigger_entry) else {
            return Ok(mismatch(
                OutcomeStep::Trigger,
                "trigger entry is not an id".into(),
            ));
        };
        if !cache.triggers.contains_key(&trigger) {
            let found = match self.store.entry_by_id(&network.0, &trigger)? {
                None => None,
                Some(bytes) => {
                    let entry =
                        Entry::decode(&bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
                    let change = entry.header.kind == EntryKind::RecordChange;
                    let record = if change {
                        self.opened_body(network, &entry)?
                            .and_then(|body| RecordChangeBody::decode(&body).ok())
                            .map(|body| body.record)
                    } else {
                        None
                    };
                    Some((change, record, entry.header.time_ms))
                }
            };
            cache.triggers.insert(trigger, found);
        }
        let Some(Some((is_change, trigger_record, trigger_time))) = cache.triggers.get(&trigger)
        else {
            return Ok(waiting("the trigger entry"));
        };
        if !is_change
            || trigger_record.as_deref() != Some(record.subject.record.as_str())
            || *trigger_time != record.trigger_time_ms
        {
            return Ok(mismatch(
                OutcomeStep::Trigger,
                "the trigger entry is not a change of the subject's record at the cited time"
                    .into(),
            ));
        }
        // 5. Inputs, at the cited record heads.
        let mut heads = Vec::with_capacity(record.record_heads.len());
        for head in &record.record_heads {
            match hex::decode(head)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            {
                Some(h) => heads.push(h),
                None => {
                    return Ok(mismatch(
                        OutcomeStep::Inputs,
                        "a record head is not a hash".into(),
                    ))
                }
            }
        }
        if !self.store.has_record(&network.0, &record.subject.record)? {
            return Ok(waiting("the subject's record"));
        }
        let me = self.identity.author_id();
        let chart_key = (record.subject.record.clone(), heads.clone());
        if !cache.charts.contains_key(&chart_key) {
            let doc = self.doc_mut(network, &record.subject.record, me)?;
            if !doc.missing_deps(&heads).is_empty() {
                return Ok(waiting("the record at the cited heads"));
            }
            let read = match doc.at(&heads) {
                Ok(at) => at.resources().ok().map(|resources| {
                    let consents = chart_consents(&at, &resources);
                    Rc::new((resources, consents))
                }),
                Err(_) => return Ok(waiting("the record at the cited heads")),
            };
            cache.charts.insert(chart_key.clone(), read);
        }
        let Some(Some(chart)) = cache.charts.get(&chart_key) else {
            return Ok(mismatch(
                OutcomeStep::Inputs,
                "the record at the cited heads is unreadable".into(),
            ));
        };
        let chart = Rc::clone(chart);
        let (resources, consents) = (&chart.0, &chart.1);
        let Some(resource) = resources.iter().find(|r| {
            r.resource_type() == record.subject.resource_type && r.id() == record.subject.id
        }) else {
            return Ok(mismatch(
                OutcomeStep::Inputs,
                "the subject resource is not in the record at the cited heads".into(),
            ));
        };
        if resource_version(resource) != record.subject.version {
            return Ok(mismatch(
                OutcomeStep::Inputs,
                "the subject resource's version differs".into(),
            ));
        }
        let Some((mut inputs, consent_ids)) = read_inputs(
            compiled,
            resource,
            resources,
            consents,
            network,
            executor,
            trigger,
            record.trigger_time_ms,
        ) else {
            return Ok(mismatch(
                OutcomeStep::Inputs,
                "consent does not let the executor read the subject".into(),
            ));
        };
        if consent_ids != record.consent_ids {
            return Ok(mismatch(
                OutcomeStep::Inputs,
                "the consents relied on differ".into(),
            ));
        }
        // 6. Decision.
        if let Some(model) = &compiled.rule.model {
            let Some(decision_id) = record.decision_entry.as_deref().and_then(EntryId::from_hex)
            else {
                return Ok(mismatch(
                    OutcomeStep::Decision,
                    "the rule uses a model but no decision is cited".into(),
                ));
            };
            let Some(decision_bytes) = self.store.entry_by_id(&network.0, &decision_id)? else {
                return Ok(waiting("the decision entry"));
            };
            let decision_entry =
                Entry::decode(&decision_bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
            let decision = self
                .opened_body(network, &decision_entry)?
                .and_then(|body| DecisionRecord::decode_body(&body).ok());
            let Some(decision) = decision.filter(|d| {
                decision_entry.header.kind == EntryKind::Decision
                    && decision_entry.header.author == executor
                    && d.model_card == model.card
                    && d.subject.as_deref() == Some(record.subject.record.as_str())
            }) else {
                return Ok(mismatch(OutcomeStep::Decision, "the cited decision is not the executor's prediction for this record with the rule's model".into()));
            };
            let card_activation = governance.activation(&Target::ModelCard(model.card.clone()));
            let cited: Vec<String> = card_activation
                .endorsements
                .iter()
                .map(|e| e.to_hex())
                .collect();
            if !card_activation.active || cited != record.governance.model_endorsements {
                return Ok(mismatch(
                    OutcomeStep::Governance,
                    "the model card was not active at the cited cut".into(),
                ));
            }
            inputs.prediction = Some(prediction_json(&decision));
        }
        if inputs.hash() != record.input_hash {
            return Ok(mismatch(
                OutcomeStep::Inputs,
                "the inputs read here hash differently".into(),
            ));
        }
        // 7. Outcome.
        match apply(compiled, &inputs, &limits) {
            Ok(Some(adjudication)) if record.same_decision(&adjudication) => {
                Ok(OutcomeCheck::Confirmed)
            }
            Ok(Some(adjudication)) => {
                Ok(mismatch(
                    OutcomeStep::Outcome,
                    format!(
                    "re-evaluation gives {} {} (clause {:?}), the outcome says {} {} (clause {:?})",
                    adjudication.decision.name(),
                    adjudication.amount.map(|a| a.to_string()).unwrap_or_default(),
                    adjudication.clause,
                    record.outcome.name(),
                    record.amount.clone().unwrap_or_default(),
                    record.clause,
                ),
                ))
            }
            Ok(None) => Ok(mismatch(
                OutcomeStep::Outcome,
                "the rule does not apply to this resource".into(),
            )),
            Err(error) => Ok(mismatch(
                OutcomeStep::Outcome,
                format!("re-evaluation failed: {error}"),
            )),
        }
    }

    /// Re-check every outcome of the network (canonical and duplicates);
    /// flag the executors of those that do not re-check.
    pub fn verify_outcomes(
        &mut self,
        network: &NetworkId,
    ) -> Result<Vec<(StoredOutcome, OutcomeCheck)>, RulesError> {
        let outcomes = self.rule_outcomes(network)?;
        let mut cache = CheckCache::default();
        let mut out = Vec::with_capacity(outcomes.len());
        for stored in outcomes {
            let check =
                self.check_cached(network, stored.author, &stored.record, None, &mut cache)?;
            if matches!(check, OutcomeCheck::Mismatch { .. }) {
                self.store
                    .transaction(|| self.flag_mismatch(network, &stored.author, &stored.entry))?;
            }
            out.push((stored, check));
        }
        Ok(out)
    }

    pub(crate) fn flag_mismatch(
        &self,
        network: &NetworkId,
        author: &AuthorId,
        outcome: &EntryId,
    ) -> Result<(), StoreError> {
        self.store.flag_author(
            &network.0,
            author,
            &format!("{MISMATCH_FLAG}: {}", outcome.to_hex()),
        )
    }
}

fn mismatch(step: OutcomeStep, detail: String) -> OutcomeCheck {
    OutcomeCheck::Mismatch { step, detail }
}

fn waiting(what: &str) -> OutcomeCheck {
    OutcomeCheck::Waiting {
        detail: format!("{what} has not arrived here yet"),
    }
}

fn prediction_json(decision: &DecisionRecord) -> serde_json::Value {
    use crate::analytics::Prediction;
    match &decision.output {
        Prediction::Class {
            class,
            positive_probability,
        } => serde_json::json!({
            "kind": "class", "class": class, "probability": positive_probability }),
        Prediction::Cluster { cluster, distance } => serde_json::json!({
            "kind": "cluster", "cluster": cluster, "distance": distance }),
        Prediction::Value { value } => serde_json::json!({ "kind": "value", "value": value }),
    }
}

/// The inputs of `rule` for `resource`, consent permitting the executor;
/// `None` when consent does not let it read the resource itself.
#[allow(clippy::too_many_arguments)]
fn read_inputs(
    rule: &CompiledRule,
    resource: &Resource,
    resources: &[Resource],
    consents: &super::ChartConsents,
    network: &NetworkId,
    executor: AuthorId,
    trigger: EntryId,
    time_ms: u64,
) -> Option<(RuleInputs, Vec<String>)> {
    if !consents.unreadable.is_empty() {
        return None;
    }
    let rule = &rule.rule;
    let mut types: BTreeSet<String> = rule.inputs.iter().cloned().collect();
    types.insert(rule.trigger.resource_type.clone());
    let list: Vec<_> = consents
        .consents
        .iter()
        .map(|c| c.consent.clone())
        .collect();
    let decided = decide_types(
        &list,
        &types,
        &[vec![
            Grantee::Network(network.clone()),
            Grantee::Node(executor),
        ]],
        &Purpose::Claims,
        time_ms,
        network,
    );
    if !decided.allowed.contains(&rule.trigger.resource_type) {
        return None;
    }
    let mut chart = serde_json::Map::new();
    for kind in &rule.inputs {
        let items: Vec<serde_json::Value> = if decided.allowed.contains(kind) {
            resources
                .iter()
                .filter(|r| r.resource_type() == kind)
                .map(Resource::to_value)
                .collect()
        } else {
            Vec::new()
        };
        chart.insert(kind.clone(), serde_json::Value::Array(items));
    }
    let patient =
        if rule.inputs.iter().any(|t| t == "Patient") && decided.allowed.contains("Patient") {
            resources
                .iter()
                .find(|r| r.resource_type() == "Patient")
                .map(Resource::to_value)
                .unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::Null
        };
    let inputs = RuleInputs {
        resource: resource.to_value(),
        chart,
        patient,
        trigger: serde_json::json!({
            "entry": trigger.to_hex(),
            "time_ms": time_ms,
            "time": crate::consent::format_instant(time_ms),
        }),
        prediction: None,
    };
    Some((inputs, decided.relied_on.into_iter().collect()))
}
