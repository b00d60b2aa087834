//! The rule set document: versioned, hashed JSON stored as the body of a
//! rule-set entry ([`EntryKind::RuleSet`](crate::entry::EntryKind::RuleSet)).
//!
//! ```json
//! {
//!   "format": "careledger.rule_set", "format_version": 1,
//!   "name": "claims-auto-adjudication", "version": 1,
//!   "description": "…", "currency": "USD",
//!   "executors": ["<author id, hex>"],
//!   "rules": [{
//!     "id": "outpatient",
//!     "trigger": {"resource_type": "Claim"},
//!     "inputs": ["Coverage", "Condition", "Patient"],
//!     "model": {"card": "<model card entry id, hex>"},
//!     "applies": "resource.status == 'active'",
//!     "clauses": [
//!       {"when": "…", "outcome": "deny", "reason": "no coverage"},
//!       {"when": "…", "outcome": "approve", "amount": "…", "reason": "covered"}
//!     ],
//!     "otherwise": {"outcome": "pend", "reason": "manual review"}
//!   }]
//! }
//! ```
//!
//! A rule fires when a resource of its trigger type appears or changes in a
//! record of the network. Its expressions see these variables:
//!
//! | variable | value |
//! | --- | --- |
//! | `resource` | the triggering resource (FHIR JSON) |
//! | `chart` | a map from each input resource type to the list of those resources in the patient's record (`chart.Condition`), consent permitting |
//! | `patient` | the record's `Patient` resource, or `null` (if `Patient` is an input) |
//! | `trigger` | `{"entry": <hex>, "time_ms": <int>, "time": <RFC 3339>}`: the record-change entry that made this version, and its time (rules have no clock) |
//! | `prediction` | with a `model`: `{"kind": "class", "class": <int>, "probability": <double>}`, `{"kind": "value", "value": <double>}` or `{"kind": "cluster", "cluster": <int>}` |
//!
//! JSON numbers become `int` when written as integers and `decimal` when
//! written with a fraction or exponent; `Money` and `Quantity` values and
//! `factor` are always `decimal` (see [`super::decimal`]).
//!
//! `applies` (default `true`) decides whether the rule concerns the
//! resource at all: `false` writes nothing. Otherwise the first clause whose
//! `when` is true gives the outcome, else `otherwise`. `approve` needs an
//! `amount` expression giving a `decimal` (or `int`) of at least 0; `deny` and
//! `pend` have none. The rule set's hash is the SHA-256 of the body bytes
//! exactly as stored, so one changed byte makes another rule set.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::engine::{compile, CompileExpressionError, Expression, Limits};

/// The rule-set format this library writes and reads.
pub const RULE_SET_FORMAT_VERSION: u32 = 1;
const RULE_SET_FORMAT: &str = "careledger.rule_set";
/// Largest rule set body accepted.
pub const MAX_RULE_SET_BYTES: usize = 256 * 1024;
const MAX_RULES: usize = 64;
const MAX_CLAUSES: usize = 64;
const MAX_EXECUTORS: usize = 16;
const MAX_INPUTS: usize = 32;

/// The variables every rule expression may read.
pub const VARIABLES: &[&str] = &["resource", "chart", "patient", "trigger", "prediction"];

/// What a rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Pay `amount`.
    Approve,
    /// Pay nothing.
    Deny,
    /// Leave for a person to decide.
    Pend,
}

impl Decision {
    /// `approve`, `deny` or `pend`.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
            Decision::Pend => "pend",
        }
    }
}

/// Which resources fire a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// A FHIR resource type, e.g. `Claim`.
    pub resource_type: String,
}

/// A model whose prediction a rule uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelUse {
    /// The model card entry (hex id) in this network.
    pub card: String,
}

/// One clause: when `when` holds, this outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// CEL, `bool`.
    pub when: String,
    /// The decision.
    pub outcome: Decision,
    /// CEL, `decimal` ≥ 0: the amount to pay (approve only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Why, in words (shown to the patient and the provider).
    pub reason: String,
}

/// What happens when no clause holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Otherwise {
    /// The decision.
    pub outcome: Decision,
    /// CEL amount (approve only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Why.
    pub reason: String,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique within the set.
    pub id: String,
    /// What fires it.
    pub trigger: Trigger,
    /// Other resource types it reads from the patient's record.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// A model whose prediction it uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelUse>,
    /// CEL, `bool`: whether the rule concerns this resource (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies: Option<String>,
    /// Tried in order.
    pub clauses: Vec<Clause>,
    /// When no clause holds.
    pub otherwise: Otherwise,
}

/// A rule set document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetDoc {
    /// `careledger.rule_set`.
    pub format: String,
    /// [`RULE_SET_FORMAT_VERSION`].
    pub format_version: u32,
    /// Stable name; versions of one name supersede each other.
    pub name: String,
    /// Version, from 1.
    pub version: u64,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// ISO 4217 currency of amounts (default `USD`).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Author ids (hex) of the nodes that evaluate the rules and write outcomes.
    pub executors: Vec<String>,
    /// The rules.
    pub rules: Vec<Rule>,
}

fn default_currency() -> String {
    "USD".into()
}

/// A rule set document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRuleSetError {
    /// Larger than [`MAX_RULE_SET_BYTES`].
    #[error("rule set is larger than {MAX_RULE_SET_BYTES} bytes")]
    TooLarge,
    /// Not JSON of the rule-set shape.
    #[error("rule set JSON: {0}")]
    Json(String),
    /// A field breaks a rule of the format (the field is named).
    #[error("rule set field `{field}`: {problem}")]
    Field {
        /// Where.
        field: String,
        /// What.
        problem: String,
    },
    /// An expression was refused.
    #[error("rule `{rule}`, {field}: {error}")]
    Expression {
        /// The rule id.
        rule: String,
        /// Which expression (`applies`, `clauses[2].when`, …).
        field: String,
        /// Why.
        error: CompileExpressionError,
    },
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> InvalidRuleSetError {
    InvalidRuleSetError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A rule with its expressions compiled.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    /// The rule as written.
    pub rule: Rule,
    /// `applies`, if any.
    pub applies: Option<Expression>,
    /// Per clause: `(when, amount)`.
    pub clauses: Vec<(Expression, Option<Expression>)>,
    /// `otherwise`'s amount.
    pub otherwise_amount: Option<Expression>,
}

/// A parsed, checked, compiled rule set and its hash.
#[derive(Clone, Debug)]
pub struct RuleSet {
    /// The document.
    pub doc: RuleSetDoc,
    /// SHA-256 of the body bytes as stored.
    pub hash: [u8; 32],
    /// The body bytes.
    pub bytes: Vec<u8>,
    /// Compiled rules, in document order.
    pub rules: Vec<CompiledRule>,
}

fn is_name(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_resource_type(text: &str) -> bool {
    text.len() <= 64
        && text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && text.chars().all(|c| c.is_ascii_alphanumeric())
}

impl RuleSet {
    /// Parse and check a rule-set body; compile every expression.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<RuleSet, InvalidRuleSetError> {
        if bytes.len() > MAX_RULE_SET_BYTES {
            return Err(InvalidRuleSetError::TooLarge);
        }
        let doc: RuleSetDoc =
            serde_json::from_slice(bytes).map_err(|e| InvalidRuleSetError::Json(e.to_string()))?;
        if doc.format != RULE_SET_FORMAT {
            return Err(field("format", format!("is not {RULE_SET_FORMAT}")));
        }
        if doc.format_version != RULE_SET_FORMAT_VERSION {
            return Err(field(
                "format_version",
                format!("this library reads version {RULE_SET_FORMAT_VERSION}"),
            ));
        }
        if !is_name(&doc.name, 64) {
            return Err(field("name", "1–64 characters of [A-Za-z0-9-_.]"));
        }
        if doc.version == 0 {
            return Err(field("version", "starts at 1"));
        }
        if doc.currency.len() != 3 || !doc.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(field("currency", "an ISO 4217 code such as USD"));
        }
        if doc.executors.is_empty() || doc.executors.len() > MAX_EXECUTORS {
            return Err(field(
                "executors",
                format!("1 to {MAX_EXECUTORS} author ids"),
            ));
        }
        if let Some(i) = doc
            .executors
            .iter()
            .position(|e| crate::entry::AuthorId::from_hex(e).is_none())
        {
            return Err(field(
                format!("executors[{i}]"),
                "not a 64-digit hex author id",
            ));
        }
        if doc.rules.is_empty() || doc.rules.len() > MAX_RULES {
            return Err(field("rules", format!("1 to {MAX_RULES} rules")));
        }
        let mut rules = Vec::with_capacity(doc.rules.len());
        for (i, rule) in doc.rules.iter().enumerate() {
            if !is_name(&rule.id, 64) {
                return Err(field(
                    format!("rules[{i}].id"),
                    "1–64 characters of [A-Za-z0-9-_.]",
                ));
            }
            if doc.rules[..i].iter().any(|r| r.id == rule.id) {
                return Err(field(format!("rules[{i}].id"), "used twice"));
            }
            if !is_resource_type(&rule.trigger.resource_type) {
                return Err(field(
                    format!("rules[{i}].trigger.resource_type"),
                    "not a FHIR resource type",
                ));
            }
            if rule.inputs.len() > MAX_INPUTS {
                return Err(field(
                    format!("rules[{i}].inputs"),
                    format!("at most {MAX_INPUTS}"),
                ));
            }
            if let Some(j) = rule.inputs.iter().position(|t| !is_resource_type(t)) {
                return Err(field(
                    format!("rules[{i}].inputs[{j}]"),
                    "not a FHIR resource type",
                ));
            }
            if rule.inputs.iter().any(|t| t == "Consent") {
                return Err(field(
                    format!("rules[{i}].inputs"),
                    "rules do not read consents",
                ));
            }
            if let Some(model) = &rule.model {
                if crate::entry::EntryId::from_hex(&model.card).is_none() {
                    return Err(field(
                        format!("rules[{i}].model.card"),
                        "not a 64-digit hex entry id",
                    ));
                }
            }
            if rule.clauses.len() > MAX_CLAUSES {
                return Err(field(
                    format!("rules[{i}].clauses"),
                    format!("at most {MAX_CLAUSES}"),
                ));
            }
            let expr = |name: String, source: &str| {
                compile(source, VARIABLES, limits).map_err(|error| {
                    InvalidRuleSetError::Expression {
                        rule: rule.id.clone(),
                        field: name,
                        error,
                    }
                })
            };
            let check_amount = |name: String, outcome: Decision, amount: &Option<String>| match (
                outcome, amount,
            ) {
                (Decision::Approve, None) => Err(field(name, "approve needs an amount")),
                (Decision::Deny | Decision::Pend, Some(_)) => {
                    Err(field(name, "only approve has an amount"))
                }
                _ => Ok(()),
            };
            let applies = match &rule.applies {
                Some(source) => Some(expr("applies".into(), source)?),
                None => None,
            };
            let mut clauses = Vec::with_capacity(rule.clauses.len());
            for (j, clause) in rule.clauses.iter().enumerate() {
                check_amount(
                    format!("rules[{i}].clauses[{j}].amount"),
                    clause.outcome,
                    &clause.amount,
                )?;
                let when = expr(format!("clauses[{j}].when"), &clause.when)?;
                let amount = match &clause.amount {
                    Some(source) => Some(expr(format!("clauses[{j}].amount"), source)?),
                    None => None,
                };
                clauses.push((when, amount));
            }
            check_amount(
                format!("rules[{i}].otherwise.amount"),
                rule.otherwise.outcome,
                &rule.otherwise.amount,
            )?;
            let otherwise_amount = match &rule.otherwise.amount {
                Some(source) => Some(expr("otherwise.amount".into(), source)?),
                None => None,
            };
            rules.push(CompiledRule {
                rule: rule.clone(),
                applies,
                clauses,
                otherwise_amount,
            });
        }
        Ok(RuleSet {
            hash: Sha256::digest(bytes).into(),
            bytes: bytes.to_vec(),
            doc,
            rules,
        })
    }

    /// The hash, hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Whether `author` (hex) is named as an executor.
    pub fn is_executor(&self, author: &crate::entry::AuthorId) -> bool {
        let hex = author.to_hex();
        self.doc
            .executors
            .iter()
            .any(|e| e.eq_ignore_ascii_case(&hex))
    }
}
