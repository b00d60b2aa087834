//! Rules that act by themselves (DESIGN §8): an insurer's auto-adjudication
//! written as data, in CEL, governed by the network.
//!
//! # Flow
//!
//! 1. A [`document::RuleSet`] (JSON) names its executors and, per rule, a
//!    trigger resource type, the other resource types it reads, clauses in
//!    CEL and their outcome (approve with an amount, deny, pend) and reason.
//!    It is stored as a rule-set entry; its hash is the SHA-256 of its bytes.
//! 2. [`governance`]: a policy entry sets the quorum (k of n); the rule set
//!    (and a model card a rule uses) is active once k members endorse it.
//! 3. [`engine`] compiles every expression with the `cel` crate under hard
//!    limits and evaluates it metered: bounded time and memory, no clock, no
//!    randomness. Money is a [`decimal`], never a double.
//! 4. [`outcome::apply`] evaluates one rule for one resource; the node
//!    ([`crate::node::Node`], module `node::rules`) writes the
//!    [`outcome::OutcomeRecord`] by itself when a record changes, and every
//!    member re-checks every outcome it receives.
//!
//! ```
//! use careledger::rules::document::RuleSet;
//! use careledger::rules::engine::Limits;
//! use careledger::rules::outcome::{apply, RuleInputs};
//! use serde_json::json;
//! let doc = json!({
//!     "format": "careledger.rule_set", "format_version": 1,
//!     "name": "demo", "version": 1, "executors": ["ab".repeat(32)],
//!     "rules": [{
//!         "id": "pay", "trigger": {"resource_type": "Claim"},
//!         "clauses": [{"when": "resource.total.value > decimal('500')",
//!                      "outcome": "pend", "reason": "large"}],
//!         "otherwise": {"outcome": "approve",
//!                       "amount": "(resource.total.value * decimal('0.8')).round(2)",
//!                       "reason": "covered"}
//!     }]
//! });
//! let set = RuleSet::parse(doc.to_string().as_bytes(), &Limits::default()).unwrap();
//! let inputs = RuleInputs {
//!     resource: json!({"resourceType": "Claim", "id": "c1", "total": {"value": 269.68, "currency": "USD"}}),
//!     chart: Default::default(),
//!     patient: json!(null),
//!     trigger: json!({"entry": "00", "time_ms": 0, "time": "1970-01-01T00:00:00Z"}),
//!     prediction: None,
//! };
//! let decided = apply(&set.rules[0], &inputs, &Limits::default()).unwrap().unwrap();
//! assert_eq!(decided.amount.unwrap().to_string(), "215.74");
//! ```
pub mod decimal;
pub mod document;
pub mod engine;
pub mod governance;
pub mod outcome;

use crate::entry::EntryKind;

/// Check that an opened body of a rules entry kind decodes (receive refuses
/// entries that do not). A rule set must parse and compile under the
/// default [`engine::Limits`]: a hostile rule set is refused and nothing of
/// it is stored.
pub(crate) fn check_body(kind: EntryKind, body: &[u8]) -> Result<(), String> {
    match kind {
        EntryKind::RuleSet => document::RuleSet::parse(body, &engine::Limits::default())
            .map(drop)
            .map_err(|e| e.to_string()),
        EntryKind::RuleOutcome => outcome::OutcomeRecord::decode(body)
            .map(drop)
            .map_err(|e| e.to_string()),
        EntryKind::Policy => governance::PolicyBody::decode(body)
            .map(drop)
            .map_err(|e| e.to_string()),
        EntryKind::Endorsement => governance::EndorsementBody::decode(body)
            .map(drop)
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    }
}
