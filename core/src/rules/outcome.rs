//! Applying a rule to one resource, and the outcome entry it writes
//! ([`EntryKind::RuleOutcome`](crate::entry::EntryKind::RuleOutcome)).
//!
//! [`RuleInputs`] gathers everything a rule reads, as JSON; its
//! [`RuleInputs::hash`] is cited by the outcome. [`apply`] evaluates the
//! rule: `applies`, then the clauses in order, then `otherwise`. The same
//! function runs at the executor and at every member that re-checks.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use super::document::{CompiledRule, Decision, RuleSet};
use super::engine::{metered_context, EvaluateError, Evaluated, Expression, Inputs, Limits};

/// The outcome format this library writes and reads.
pub const OUTCOME_FORMAT_VERSION: u32 = 1;
const OUTCOME_FORMAT: &str = "careledger.rule_outcome";

/// Everything a rule reads for one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleInputs {
    /// The triggering resource.
    pub resource: Json,
    /// Input resources by type (each list sorted by id), consent permitting.
    pub chart: serde_json::Map<String, Json>,
    /// The Patient resource, or null.
    pub patient: Json,
    /// `{"entry", "time_ms", "time"}` of the triggering entry.
    pub trigger: Json,
    /// The prediction used, if the rule names a model.
    pub prediction: Option<Json>,
}

impl RuleInputs {
    /// SHA-256 over the inputs' canonical JSON, hex.
    pub fn hash(&self) -> String {
        let value = json!({
            "resource": self.resource,
            "chart": self.chart,
            "patient": self.patient,
            "trigger": self.trigger,
            "prediction": self.prediction,
        });
        hex::encode(Sha256::digest(
            serde_json::to_vec(&value).unwrap_or_default(),
        ))
    }
}

/// What a rule decided for one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjudication {
    /// Approve, deny or pend.
    pub decision: Decision,
    /// The clause that held (index), or `None` for `otherwise`.
    pub clause: Option<usize>,
    /// The amount (approve).
    pub amount: Option<Decimal>,
    /// Why.
    pub reason: String,
}

/// Applying a rule failed: nothing is written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyRuleError {
    /// An expression failed.
    #[error("{field}: {error}")]
    Evaluate {
        /// Which expression.
        field: String,
        /// Why.
        error: EvaluateError,
    },
    /// An expression gave the wrong type.
    #[error("{field} must give {want}")]
    WrongType {
        /// Which expression.
        field: String,
        /// The type it must give.
        want: &'static str,
    },
    /// An amount is negative.
    #[error("{field} gave a negative amount")]
    NegativeAmount {
        /// Which expression.
        field: String,
    },
}

fn eval(
    expr: &Expression,
    field: &str,
    inputs: &Inputs<'_>,
    root: &cel::Context<'_, '_>,
    limits: &Limits,
) -> Result<Evaluated, ApplyRuleError> {
    expr.evaluate_in(root, inputs, limits)
        .map_err(|error| ApplyRuleError::Evaluate {
            field: field.to_owned(),
            error,
        })
}

fn boolean(
    expr: &Expression,
    field: &str,
    inputs: &Inputs<'_>,
    root: &cel::Context<'_, '_>,
    limits: &Limits,
) -> Result<bool, ApplyRuleError> {
    match eval(expr, field, inputs, root, limits)? {
        Evaluated::Bool(b) => Ok(b),
        _ => Err(ApplyRuleError::WrongType {
            field: field.to_owned(),
            want: "a bool",
        }),
    }
}

fn amount(
    expr: &Expression,
    field: &str,
    inputs: &Inputs<'_>,
    root: &cel::Context<'_, '_>,
    limits: &Limits,
) -> Result<Decimal, ApplyRuleError> {
    let value = match eval(expr, field, inputs, root, limits)? {
        Evaluated::Decimal(d) => d,
        Evaluated::Int(i) => Decimal::from(i),
        Evaluated::UInt(u) => Decimal::from(u),
        _ => {
            return Err(ApplyRuleError::WrongType {
                field: field.to_owned(),
                want: "a decimal (a double is never money)",
            })
        }
    };
    if value.is_sign_negative() && !value.is_zero() {
        return Err(ApplyRuleError::NegativeAmount {
            field: field.to_owned(),
        });
    }
    Ok(value)
}

/// Bind a rule's inputs as CEL variables.
pub fn bind<'v>(inputs: &'v RuleInputs, limits: &Limits) -> Result<Inputs<'v>, EvaluateError> {
    let mut bound = Inputs::with_limit(limits.max_input_values);
    bound.add_json("resource", &inputs.resource)?;
    let chart: &'v serde_json::Map<String, Json> = &inputs.chart;
    let mut map = std::collections::HashMap::new();
    for (kind, list) in chart {
        let items: Vec<&'v Json> = list
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let list = bound.json_list(&items)?;
        map.insert(cel::common::types::CelMapKey::from(kind.as_str()), list);
    }
    bound.add_val("chart", Box::new(cel::common::types::CelMap::from(map)));
    bound.add_json("patient", &inputs.patient)?;
    bound.add_json("trigger", &inputs.trigger)?;
    match &inputs.prediction {
        Some(prediction) => bound.add_json("prediction", prediction)?,
        None => bound.add_val("prediction", Box::new(cel::common::types::CelNull)),
    }
    Ok(bound)
}

/// Apply `rule` to `inputs`. `Ok(None)`: the rule does not apply (its
/// `applies` is false); nothing is written.
pub fn apply(
    rule: &CompiledRule,
    inputs: &RuleInputs,
    limits: &Limits,
) -> Result<Option<Adjudication>, ApplyRuleError> {
    let bound = bind(inputs, limits).map_err(|error| ApplyRuleError::Evaluate {
        field: "inputs".into(),
        error,
    })?;
    let root = metered_context(limits);
    if let Some(applies) = &rule.applies {
        if !boolean(applies, "applies", &bound, &root, limits)? {
            return Ok(None);
        }
    }
    for (i, (when, amount_expr)) in rule.clauses.iter().enumerate() {
        let field = format!("clauses[{i}].when");
        if boolean(when, &field, &bound, &root, limits)? {
            let clause = &rule.rule.clauses[i];
            let amount = match amount_expr {
                Some(expr) => Some(amount(
                    expr,
                    &format!("clauses[{i}].amount"),
                    &bound,
                    &root,
                    limits,
                )?),
                None => None,
            };
            return Ok(Some(Adjudication {
                decision: clause.outcome,
                clause: Some(i),
                amount,
                reason: clause.reason.clone(),
            }));
        }
    }
    let amount = match &rule.otherwise_amount {
        Some(expr) => Some(amount(expr, "otherwise.amount", &bound, &root, limits)?),
        None => None,
    };
    Ok(Some(Adjudication {
        decision: rule.rule.otherwise.outcome,
        clause: None,
        amount,
        reason: rule.rule.otherwise.reason.clone(),
    }))
}

/// The rule set an outcome applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetRef {
    /// Its entry (hex).
    pub entry: String,
    /// Its hash (hex).
    pub hash: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: u64,
}

/// The resource version an outcome is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The patient record.
    pub record: String,
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub id: String,
    /// SHA-256 of the resource's canonical JSON, hex: its version.
    pub version: String,
}

/// What the outcome relied on for governance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceRef {
    /// The policy in force (entry, hex).
    pub policy: String,
    /// Its quorum.
    pub quorum: u32,
    /// Endorsements of the rule set (entries, hex, sorted).
    pub endorsements: Vec<String>,
    /// Endorsements of the model card, if a model was used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_endorsements: Vec<String>,
}

/// An outcome entry's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRecord {
    /// `careledger.rule_outcome`.
    pub format: String,
    /// [`OUTCOME_FORMAT_VERSION`].
    pub format_version: u32,
    /// The rule set.
    pub rule_set: RuleSetRef,
    /// The rule id.
    pub rule: String,
    /// The resource version decided.
    pub subject: Subject,
    /// The record-change entry that made that version (hex).
    pub trigger_entry: String,
    /// Its time (Unix ms): the rule's "now".
    pub trigger_time_ms: u64,
    /// Automerge heads of the record the inputs were read at (hex, sorted).
    pub record_heads: Vec<String>,
    /// The ledger cut governance was decided at: (author hex, seq), sorted.
    pub ledger_heads: Vec<(String, u64)>,
    /// SHA-256 of the inputs (hex).
    pub input_hash: String,
    /// Consent ids relied on to read the inputs, sorted.
    pub consent_ids: Vec<String>,
    /// Governance relied on.
    pub governance: GovernanceRef,
    /// The decision entry of the prediction used (hex), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_entry: Option<String>,
    /// `approve`, `deny` or `pend`.
    pub outcome: Decision,
    /// The clause that held, or none for `otherwise`.
    pub clause: Option<usize>,
    /// The amount (approve), exact decimal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Why.
    pub reason: String,
}

/// An outcome body that does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rule outcome body malformed: {0}")]
pub struct DecodeOutcomeError(pub String);

impl OutcomeRecord {
    /// The format header.
    pub(crate) fn header() -> (String, u32) {
        (OUTCOME_FORMAT.into(), OUTCOME_FORMAT_VERSION)
    }

    /// Encode as JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode and check the format.
    pub fn decode(bytes: &[u8]) -> Result<OutcomeRecord, DecodeOutcomeError> {
        let record: OutcomeRecord =
            serde_json::from_slice(bytes).map_err(|e| DecodeOutcomeError(e.to_string()))?;
        if record.format != OUTCOME_FORMAT || record.format_version != OUTCOME_FORMAT_VERSION {
            return Err(DecodeOutcomeError("unknown format or version".into()));
        }
        if let Some(amount) = &record.amount {
            if super::decimal::parse_decimal(amount).is_none() {
                return Err(DecodeOutcomeError("amount is not a decimal".into()));
            }
        }
        Ok(record)
    }

    /// The key "exactly one outcome" is about: rule set, rule, resource version.
    pub fn key(&self) -> (String, String, Subject) {
        (
            self.rule_set.hash.clone(),
            self.rule.clone(),
            self.subject.clone(),
        )
    }

    /// Whether two outcomes decided the same thing.
    pub fn same_decision(&self, adjudication: &Adjudication) -> bool {
        self.outcome == adjudication.decision
            && self.clause == adjudication.clause
            && self.amount == adjudication.amount.map(|a| a.to_string())
            && self.reason == adjudication.reason
    }

    /// The outcome as a FHIR R4 `ClaimResponse`.
    pub fn to_claim_response(&self, entry_id: &str, insurer: &str) -> Json {
        let (fhir_outcome, adjudication) = match self.outcome {
            Decision::Approve => ("complete", "benefit"),
            Decision::Deny => ("complete", "denied"),
            Decision::Pend => ("queued", "submitted"),
        };
        let amount = self
            .amount
            .as_deref()
            .and_then(|a| a.parse::<serde_json::Number>().ok())
            .unwrap_or_else(|| serde_json::Number::from(0));
        json!({
            "resourceType": "ClaimResponse",
            "id": entry_id,
            "status": "active",
            "type": { "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional" }] },
            "use": "claim",
            "patient": { "reference": format!("Patient/{}", self.subject.record) },
            "created": crate::consent::format_instant(self.trigger_time_ms),
            "insurer": { "identifier": { "system": crate::consent::NODE_SYSTEM, "value": insurer } },
            "request": { "reference": format!("{}/{}", self.subject.resource_type, self.subject.id) },
            "outcome": fhir_outcome,
            "disposition": self.reason,
            "total": [{
                "category": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/adjudication",
                    "code": adjudication }] },
                "amount": { "value": amount, "currency": self.currency }
            }],
            "extension": [
                { "url": "urn:careledger:rule-decision", "valueCode": self.outcome.name() },
                { "url": "urn:careledger:rule-set", "valueString": self.rule_set.hash },
                { "url": "urn:careledger:rule", "valueString": self.rule },
                { "url": "urn:careledger:input-hash", "valueString": self.input_hash }
            ]
        })
    }
}

/// The first rule of `set` with id `rule`.
pub fn find_rule<'a>(set: &'a RuleSet, rule: &str) -> Option<&'a CompiledRule> {
    set.rules.iter().find(|r| r.rule.id == rule)
}
