//! Rules that act by themselves on `Network` (the core's `rules` and
//! `node::rules`): an insurer's auto-adjudication written as a rule-set
//! document in CEL, governed by the network's quorum, re-checked by every
//! member.
//!
//! Flow for a claims network: the hospital shares consented claims with
//! [`Network::share_types_to_network`] (purpose `Claims`, only the types the
//! rules read); a member writes [`Network::set_rules_policy`] (quorum k of
//! n); the insurer adds its rule set ([`Network::add_rule_set`]) naming
//! itself as executor; k members [`Network::endorse`] it. From then on the
//! executor writes one outcome per claim version by itself while it syncs or
//! receives; every member re-checks each outcome as it arrives, lists them
//! with [`Network::rule_outcomes`] (each with its FHIR `ClaimResponse`) and
//! re-checks on demand with [`Network::verify_outcome`] /
//! [`Network::verify_outcomes`].

use std::sync::Arc;

use careledger::entry::EntryId;
use careledger::node::{self as node, OutcomeCheck};
use careledger::rules::governance::{self as governance, Stance};

use crate::consent::{Purpose, ShareReport};
use crate::error::ApiError;
use crate::network::Network;
use crate::node::now_ms;

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn hex_id(id: &str, what: &str) -> Result<String, ApiError> {
    let id = id.trim();
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid_argument(format!(
            "{what} must be 64 hex digits"
        )))
    }
}

fn entry_id(id: &str, what: &str) -> Result<EntryId, ApiError> {
    EntryId::from_hex(&hex_id(id, what)?)
        .ok_or_else(|| ApiError::invalid_argument(format!("{what} must be 64 hex digits")))
}

/// What an endorsement is about.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum EndorsementTarget {
    /// A rule set, by the hash `add_rule_set` returned.
    RuleSet {
        /// The rule set's hash (64 hex digits).
        hash: String,
    },
    /// A model card, by its entry id (endorsed only after this node's own
    /// verification confirms it).
    ModelCard {
        /// The card's entry id (64 hex digits).
        card_id: String,
    },
    /// A policy, by its entry id.
    Policy {
        /// The policy's entry id (64 hex digits).
        policy_id: String,
    },
}

impl EndorsementTarget {
    fn to_core(&self) -> Result<governance::Target, ApiError> {
        Ok(match self {
            EndorsementTarget::RuleSet { hash } => {
                governance::Target::RuleSet(hex_id(hash, "rule set hash")?)
            }
            EndorsementTarget::ModelCard { card_id } => {
                governance::Target::ModelCard(hex_id(card_id, "model card id")?)
            }
            EndorsementTarget::Policy { policy_id } => {
                governance::Target::Policy(hex_id(policy_id, "policy id")?)
            }
        })
    }
}

/// Whether a target is active, and on what.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Activation {
    /// Active under the policy in force.
    pub active: bool,
    /// The policy in force (entry id), if any.
    pub policy_id: Option<String>,
    /// Its quorum (0 without a policy).
    pub quorum: u32,
    /// The endorsement entries of the members standing endorsed, sorted.
    pub endorsement_ids: Vec<String>,
}

impl From<&governance::Activation> for Activation {
    fn from(activation: &governance::Activation) -> Self {
        Activation {
            active: activation.active,
            policy_id: activation.policy.map(|p| p.to_hex()),
            quorum: activation.quorum,
            endorsement_ids: activation
                .endorsements
                .iter()
                .map(EntryId::to_hex)
                .collect(),
        }
    }
}

/// A rule set stored by `add_rule_set`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RuleSetAdded {
    /// The rule-set entry (hex).
    pub entry_id: String,
    /// SHA-256 of the document (hex): what endorsements and outcomes name.
    pub hash: String,
}

/// A rule set on the ledger, with its activation now.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RuleSetInfo {
    /// Its entry (hex).
    pub entry_id: String,
    /// Who wrote it (author id hex).
    pub author_id: String,
    /// SHA-256 of the document (hex).
    pub hash: String,
    /// The set's name.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// What it is for.
    pub description: String,
    /// ISO 4217 currency of its amounts.
    pub currency: String,
    /// The executors' author ids (hex).
    pub executors: Vec<String>,
    /// The rules' ids, in document order.
    pub rule_ids: Vec<String>,
    /// Activation under the policy in force.
    pub activation: Activation,
    /// Active, and the highest active version of its name: the set executors run.
    pub in_force: bool,
}

impl From<&node::RuleSetInfo> for RuleSetInfo {
    fn from(info: &node::RuleSetInfo) -> Self {
        let doc = &info.set.doc;
        RuleSetInfo {
            entry_id: info.entry.to_hex(),
            author_id: info.author.to_hex(),
            hash: info.set.hash_hex(),
            name: doc.name.clone(),
            version: doc.version,
            description: doc.description.clone(),
            currency: doc.currency.clone(),
            executors: doc.executors.clone(),
            rule_ids: doc.rules.iter().map(|r| r.id.clone()).collect(),
            activation: Activation::from(&info.activation),
            in_force: info.in_force,
        }
    }
}

/// What a rules pass did (`run_rules`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RulesActivity {
    /// Outcome entries written by this node.
    pub outcomes_written: u64,
    /// Decision entries written for predictions rules used.
    pub decisions_written: u64,
    /// Resources a rule concerned but consent did not let this node read.
    pub consent_denied: u64,
    /// Evaluations that failed (typed errors; nothing written): rule and why.
    pub failures: Vec<String>,
    /// Others' outcomes re-checked and confirmed.
    pub confirmed: u64,
    /// Others' outcomes that did not re-check: `"<entry hex>: <step>"`.
    pub mismatches: Vec<String>,
    /// Outcomes waiting for entries this replica lacks.
    pub waiting: u64,
}

impl From<&node::RulesActivity> for RulesActivity {
    fn from(activity: &node::RulesActivity) -> Self {
        RulesActivity {
            outcomes_written: count(activity.outcomes_written),
            decisions_written: count(activity.decisions_written),
            consent_denied: count(activity.consent_denied),
            failures: activity.failures.clone(),
            confirmed: count(activity.confirmed),
            mismatches: activity
                .mismatches
                .iter()
                .map(|(entry, step)| format!("{}: {}", entry.to_hex(), step.name()))
                .collect(),
            waiting: count(activity.waiting),
        }
    }
}

/// What a rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RuleDecision {
    /// Pay `amount`.
    Approve,
    /// Pay nothing.
    Deny,
    /// Left for a person to decide.
    Pend,
}

impl From<careledger::rules::document::Decision> for RuleDecision {
    fn from(decision: careledger::rules::document::Decision) -> Self {
        use careledger::rules::document::Decision;
        match decision {
            Decision::Approve => RuleDecision::Approve,
            Decision::Deny => RuleDecision::Deny,
            Decision::Pend => RuleDecision::Pend,
        }
    }
}

/// A rule outcome on the ledger: exactly one per (rule set, rule, resource
/// version).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RuleOutcome {
    /// The outcome entry (hex).
    pub entry_id: String,
    /// The executor that wrote it (author id hex).
    pub executor_id: String,
    /// The rule set's hash (hex).
    pub rule_set_hash: String,
    /// The rule set's name.
    pub rule_set_name: String,
    /// The rule set's version.
    pub rule_set_version: u64,
    /// The rule's id.
    pub rule_id: String,
    /// The record (patient id) of the resource decided.
    pub patient_id: String,
    /// The resource's type (`Claim`).
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// What was decided.
    pub decision: RuleDecision,
    /// The amount to pay (approve), exact decimal text.
    pub amount: Option<String>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Why.
    pub reason: String,
    /// The clause that held (0-based), or none for `otherwise`.
    pub clause: Option<u32>,
    /// The decision entry of the prediction the rule used, if any.
    pub decision_entry_id: Option<String>,
    /// Endorsement entries the outcome relied on (rule set, then model card).
    pub endorsement_ids: Vec<String>,
    /// Outcomes other executors wrote for the same key (racing), by entry id.
    pub duplicate_ids: Vec<String>,
    /// The outcome as a FHIR R4 `ClaimResponse` (JSON text).
    pub claim_response_json: String,
    /// The outcome entry's body (JSON text).
    pub outcome_json: String,
}

impl From<&node::StoredOutcome> for RuleOutcome {
    fn from(stored: &node::StoredOutcome) -> Self {
        let record = &stored.record;
        let entry_id = stored.entry.to_hex();
        let executor_id = stored.author.to_hex();
        RuleOutcome {
            claim_response_json: record
                .to_claim_response(&entry_id, &executor_id)
                .to_string(),
            outcome_json: String::from_utf8_lossy(&record.encode()).into_owned(),
            entry_id,
            executor_id,
            rule_set_hash: record.rule_set.hash.clone(),
            rule_set_name: record.rule_set.name.clone(),
            rule_set_version: record.rule_set.version,
            rule_id: record.rule.clone(),
            patient_id: record.subject.record.clone(),
            resource_type: record.subject.resource_type.clone(),
            resource_id: record.subject.id.clone(),
            decision: record.outcome.into(),
            amount: record.amount.clone(),
            currency: record.currency.clone(),
            reason: record.reason.clone(),
            clause: record.clause.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
            decision_entry_id: record.decision_entry.clone(),
            endorsement_ids: record
                .governance
                .endorsements
                .iter()
                .chain(&record.governance.model_endorsements)
                .cloned()
                .collect(),
            duplicate_ids: stored.duplicates.iter().map(EntryId::to_hex).collect(),
        }
    }
}

/// A rule outcome re-checked on this replica. A difference is an answer
/// (`confirmed` false, with the step), not an error.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OutcomeVerification {
    /// The outcome entry (hex).
    pub entry_id: String,
    /// Re-evaluated here with the same result.
    pub confirmed: bool,
    /// This replica lacks what the outcome cites (sync and check again).
    pub waiting: bool,
    /// The first step that differed: `rule set`, `executor`, `governance`,
    /// `trigger`, `inputs`, `decision` or `outcome`.
    pub mismatch_step: Option<String>,
    /// What differed or what is missing (never record data).
    pub detail: Option<String>,
}

fn verification(entry_id: String, check: &OutcomeCheck) -> OutcomeVerification {
    let (confirmed, waiting, step, detail) = match check {
        OutcomeCheck::Confirmed => (true, false, None, None),
        OutcomeCheck::Mismatch { step, detail } => (
            false,
            false,
            Some(step.name().to_owned()),
            Some(detail.clone()),
        ),
        OutcomeCheck::Waiting { detail } => (false, true, None, Some(detail.clone())),
    };
    OutcomeVerification {
        entry_id,
        confirmed,
        waiting,
        mismatch_step: step,
        detail,
    }
}

#[uniffi::export]
impl Network {
    /// Write the network's rules policy: a rule set, a model card a rule
    /// uses, or a later policy is active once `quorum` members endorse it.
    /// `replaces_policy_id` names the policy this one replaces (it takes
    /// effect once that policy's quorum endorses it). Returns the entry id.
    ///
    /// Errors: `InvalidPolicy` (quorum 0 or above the members),
    /// `InvalidArgument`, `NotAMember`.
    #[uniffi::method(default(replaces_policy_id = None))]
    pub fn set_rules_policy(
        &self,
        quorum: u32,
        replaces_policy_id: Option<String>,
    ) -> Result<String, ApiError> {
        let replaces = replaces_policy_id
            .map(|id| entry_id(&id, "policy id"))
            .transpose()?;
        self.shared.with(|node| {
            Ok(node
                .set_policy(&self.id, quorum, replaces, now_ms())?
                .to_hex())
        })
    }

    /// Store a rule-set document (JSON bytes, expressions in CEL). It is
    /// parsed and every expression compiled under the engine's limits
    /// first; it is inactive until the policy's quorum endorses it.
    ///
    /// Errors: `InvalidRuleSet` (malformed, or hostile: too large, too deep,
    /// comprehensions nested too deeply, wrong types; nothing stored),
    /// `NotAMember`.
    pub fn add_rule_set(&self, document: Vec<u8>) -> Result<RuleSetAdded, ApiError> {
        self.shared.with(|node| {
            let (entry, hash) = node.add_rule_set(&self.id, &document, now_ms())?;
            Ok(RuleSetAdded {
                entry_id: entry.to_hex(),
                hash: hex::encode(hash),
            })
        })
    }

    /// Endorse a rule set, model card or policy. A model card is endorsed
    /// only after this node's own verification confirms it. When this node
    /// executes a rule set the endorsement activates, its outcomes are
    /// written in the same call. Returns the endorsement entry id.
    ///
    /// Errors: `UnknownRuleSet`, `UnknownPolicy`, `UnknownModelCard`,
    /// `NotConfirmed` (the model card's verification answered mismatch),
    /// `InvalidArgument`, `NotAMember`.
    pub fn endorse(&self, target: EndorsementTarget) -> Result<String, ApiError> {
        self.stance(target, Stance::Endorse)
    }

    /// Withdraw this node's endorsement of a target; below quorum it is no
    /// longer active (no new outcomes). Returns the entry id.
    ///
    /// Errors: as `endorse`.
    pub fn withdraw_endorsement(&self, target: EndorsementTarget) -> Result<String, ApiError> {
        self.stance(target, Stance::Withdraw)
    }

    /// Whether a target is active now.
    pub fn activation(&self, target: EndorsementTarget) -> Result<Activation, ApiError> {
        let target = target.to_core()?;
        self.shared
            .with(|node| Ok(Activation::from(&node.activation(&self.id, &target)?)))
    }

    /// The network's rule sets with their activation now, by name and version.
    pub fn rule_sets(&self) -> Result<Vec<RuleSetInfo>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .rule_sets(&self.id)?
                .iter()
                .map(RuleSetInfo::from)
                .collect())
        })
    }

    /// Run the rules this node executes over every record now (receiving
    /// does this by itself for changed records). Never writes a second
    /// outcome for a resource version.
    pub fn run_rules(&self) -> Result<RulesActivity, ApiError> {
        self.shared
            .with(|node| Ok(RulesActivity::from(&node.run_rules(&self.id, now_ms())?)))
    }

    /// The network's rule outcomes: one per (rule set, rule, resource
    /// version), each with its `ClaimResponse`.
    pub fn rule_outcomes(&self) -> Result<Vec<RuleOutcome>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .rule_outcomes(&self.id)?
                .iter()
                .map(RuleOutcome::from)
                .collect())
        })
    }

    /// Re-evaluate outcome `entry_id` on this replica.
    ///
    /// Errors: `UnknownOutcome`, `InvalidArgument`.
    pub fn verify_outcome(&self, entry_id: String) -> Result<OutcomeVerification, ApiError> {
        let id = self::entry_id(&entry_id, "outcome id")?;
        self.shared.with(|node| {
            let check = node.verify_outcome(&self.id, &id)?;
            Ok(verification(id.to_hex(), &check))
        })
    }

    /// Re-check every outcome (duplicates included); executors of those
    /// that differ are flagged (`verify_ledger` reports them).
    pub fn verify_outcomes(&self) -> Result<Vec<OutcomeVerification>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .verify_outcomes(&self.id)?
                .iter()
                .map(|(stored, check)| verification(stored.entry.to_hex(), check))
                .collect())
        })
    }

    /// Share this network's charts into `target` (a claims network of the
    /// same node) as `share_to_network` does, but only resources of the
    /// `types` named (at least one, e.g. `["Claim", "Coverage"]`).
    ///
    /// Errors: `InvalidArgument` (no type, a malformed type, the same
    /// network, a `target` of another node), `NotAMember`, `Record`.
    pub fn share_types_to_network(
        &self,
        target: Arc<Network>,
        purpose: Purpose,
        types: Vec<String>,
    ) -> Result<ShareReport, ApiError> {
        if !Arc::ptr_eq(&self.shared, &target.shared) {
            return Err(ApiError::invalid_argument(
                "the target network object belongs to another node",
            ));
        }
        let is_type = |t: &String| {
            t.len() <= 64
                && t.starts_with(|c: char| c.is_ascii_uppercase())
                && t.chars().all(|c| c.is_ascii_alphanumeric())
        };
        if types.is_empty() || !types.iter().all(is_type) {
            return Err(ApiError::invalid_argument(
                "types must be FHIR resource type names, at least one \
                 (share_to_network shares every type)",
            ));
        }
        self.shared.with(|node| {
            let report = node.share_types_to_network(
                &self.id,
                &target.id,
                purpose.into(),
                &types,
                now_ms(),
            )?;
            Ok(ShareReport::from(report))
        })
    }
}

impl Network {
    fn stance(&self, target: EndorsementTarget, stance: Stance) -> Result<String, ApiError> {
        let target = target.to_core()?;
        self.shared
            .with(|node| Ok(node.endorse(&self.id, target, stance, now_ms())?.to_hex()))
    }
}
