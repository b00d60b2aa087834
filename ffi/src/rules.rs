//! Rules that act by themselves: an insurer's auto-adjudication written as
//! data (CEL expressions in a versioned rule-set document), governed by the
//! network, re-checked by every member.
//!
//! Flow for a claims network (hospital, insurer, auditor):
//! 1. The hospital shares consented claims into the claims network with
//!    `careledger_network_share_types` (purpose `CLMATTCH`, only the
//!    resource types the rules read).
//! 2. A member writes the policy (`careledger_rules_policy_set`, quorum k of
//!    the n members); the insurer adds its rule set
//!    (`careledger_rule_set_add`), naming itself as executor; k members
//!    endorse it (`careledger_rules_endorse`, target `"rule_set"`). A model
//!    card a rule uses is endorsed the same way, and only after the
//!    endorser's own verification confirms it.
//! 3. From then on the executor writes one outcome entry per claim version
//!    by itself, inside `careledger_network_sync` / `careledger_network_receive`
//!    (or `careledger_rules_run` for a full pass); nothing else is called.
//! 4. Every member re-checks each outcome it receives; any member lists them
//!    (`careledger_rule_outcomes`, each with its FHIR `ClaimResponse`) and
//!    re-checks on demand (`careledger_rule_outcome_verify`,
//!    `careledger_rule_outcomes_verify`). A mismatch flags the executor, and
//!    `careledger_ledger_verify` reports it.
//!
//! Outputs are UTF-8 JSON in a `careledger_bytes` (free with
//! `careledger_bytes_free`, which accepts NULL and ignores a second free).

use std::ffi::c_char;

use careledger::entry::EntryId;
use careledger::node::{OutcomeCheck, RuleSetInfo, RulesActivity, StoredOutcome};
use careledger::rules::governance::{Activation, Stance, Target};
use serde_json::{json, Value};

use crate::args::{entry_arg, json_bytes, named_network_arg, purpose_arg, time_arg};
use crate::boundary::{arg_bytes, arg_out, arg_str, boundary};
use crate::buffers::careledger_bytes;
use crate::consent::share_report_json;
use crate::node::{careledger_node, network_arg, node_arg};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// An endorsement target from `target_kind` and `target_id`.
///
/// # Safety
/// Both pointers are NULL or NUL-terminated.
unsafe fn target_arg(kind: *const c_char, id: *const c_char) -> Result<Target, Failure> {
    // SAFETY (both pointers): forwarded from the caller.
    let kind = unsafe { arg_str(kind, "target_kind") }?;
    let id = unsafe { arg_str(id, "target_id") }?;
    let hex_id = |what: &str| {
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(id.to_ascii_lowercase())
        } else {
            Err(Failure::new(
                CARELEDGER_INVALID_ARGUMENT,
                format!("`target_id` is not {what} (64 hex characters)"),
            ))
        }
    };
    match kind {
        "rule_set" => Ok(Target::RuleSet(hex_id("a rule set hash")?)),
        "model_card" => Ok(Target::ModelCard(hex_id("a model card entry id")?)),
        "policy" => Ok(Target::Policy(hex_id("a policy entry id")?)),
        _ => Err(Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            "`target_kind` must be \"rule_set\", \"model_card\" or \"policy\"",
        )),
    }
}

fn activation_json(activation: &Activation) -> Value {
    json!({
        "active": activation.active,
        "policy": activation.policy.map(|p| p.to_hex()),
        "quorum": activation.quorum,
        "endorsements": activation.endorsements.iter().map(EntryId::to_hex).collect::<Vec<_>>(),
    })
}

fn rule_set_json(info: &RuleSetInfo) -> Value {
    let doc = &info.set.doc;
    json!({
        "entry": info.entry.to_hex(),
        "author": info.author.to_hex(),
        "hash": info.set.hash_hex(),
        "name": doc.name,
        "version": doc.version,
        "description": doc.description,
        "currency": doc.currency,
        "executors": doc.executors,
        "rules": doc.rules.iter().map(|r| json!({
            "id": r.id,
            "trigger": r.trigger.resource_type,
            "inputs": r.inputs,
            "model": r.model.as_ref().map(|m| m.card.clone()),
        })).collect::<Vec<_>>(),
        "activation": activation_json(&info.activation),
        "in_force": info.in_force,
    })
}

fn activity_json(activity: &RulesActivity) -> Value {
    json!({
        "outcomes_written": activity.outcomes_written,
        "decisions_written": activity.decisions_written,
        "consent_denied": activity.consent_denied,
        "failures": activity.failures,
        "confirmed": activity.confirmed,
        "mismatches": activity.mismatches.iter().map(|(entry, step)| json!({
            "entry": entry.to_hex(), "step": step.name() })).collect::<Vec<_>>(),
        "waiting": activity.waiting,
    })
}

fn outcome_json(stored: &StoredOutcome) -> Value {
    let entry = stored.entry.to_hex();
    let executor = stored.author.to_hex();
    json!({
        "entry": entry,
        "executor": executor,
        "duplicates": stored.duplicates.iter().map(EntryId::to_hex).collect::<Vec<_>>(),
        "outcome": serde_json::to_value(&stored.record).unwrap_or(Value::Null),
        "claim_response": stored.record.to_claim_response(&entry, &executor),
    })
}

/// The JSON of a check, as `careledger_rule_outcome_verify` documents it.
fn check_json(check: &OutcomeCheck) -> Value {
    match check {
        OutcomeCheck::Confirmed => json!({ "result": "confirmed", "step": null, "detail": null }),
        OutcomeCheck::Mismatch { step, detail } => {
            json!({ "result": "mismatch", "step": step.name(), "detail": detail })
        }
        OutcomeCheck::Waiting { detail } => {
            json!({ "result": "waiting", "step": null, "detail": detail })
        }
    }
}

/// Writes the network's rules policy: a rule set, a model card used by a
/// rule, or a later policy is active only once `quorum` members have
/// endorsed it (k of the network's n members now). `replaces_policy_id` is
/// NULL for the first policy, else the entry id (hex) of the policy this one
/// replaces; a replacing policy takes effect once the replaced policy's
/// quorum endorsed it. `now_ms` 0 means the system clock.
///
/// On success only, `*out_entry_id` receives the policy entry's id (64 hex
/// characters; read it with `careledger_bytes_str`).
///
/// Ownership: inputs borrowed for the call; the caller owns `*out_entry_id`
/// (free with `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (network or policy id), `CARELEDGER_INVALID_POLICY`
/// (quorum 0 or above the members), `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`. On failure nothing is written.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated;
/// `replaces_policy_id` NULL or NUL-terminated; `out_entry_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rules_policy_set(
    node: *const careledger_node,
    network_id: *const c_char,
    quorum: u32,
    replaces_policy_id: *const c_char,
    now_ms: u64,
    out_entry_id: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_entry_id, "out_entry_id") }?;
        let network = unsafe { network_arg(network_id) }?;
        let replaces = if replaces_policy_id.is_null() {
            None
        } else {
            Some(unsafe { entry_arg(replaces_policy_id, "replaces_policy_id") }?)
        };
        let entry = node
            .lock()?
            .set_policy(&network, quorum, replaces, time_arg(now_ms))?;
        *out = careledger_bytes::boxed(entry.to_hex().into_bytes());
        Ok(())
    })
}

/// Adds a rule set: `document`/`document_len` are the bytes of a rule-set
/// JSON document (`{"format": "careledger.rule_set", "format_version": 1,
/// "name", "version", "currency", "executors": [author ids], "rules": [{"id",
/// "trigger": {"resource_type": "Claim"}, "inputs": ["Coverage", …],
/// "applies", "clauses": [{"when", "outcome": "approve"|"deny"|"pend",
/// "amount", "reason"}], "otherwise": {…}}]}`, expressions in CEL). It is
/// parsed and every expression compiled under the engine's limits first: a
/// refused document (malformed, hostile: too large, too deep, too many
/// nested comprehensions, wrong types) stores nothing. The set is inactive
/// until the policy's quorum endorses it (`careledger_rules_endorse`).
///
/// On success only, `*out_entry_id` receives the rule-set entry's id and
/// `*out_hash` the document's SHA-256 (both 64 hex characters): the hash is
/// what endorsements and outcomes name.
///
/// Ownership: inputs borrowed for the call; the caller owns both outputs
/// (free each with `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER` (also `document`
/// NULL with a length), `CARELEDGER_INVALID_UTF8`, `CARELEDGER_INVALID_ARGUMENT`,
/// `CARELEDGER_INVALID_RULE_SET` (the detail names the rule, field and
/// limit), `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `document` NULL
/// or valid for `document_len` bytes; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rule_set_add(
    node: *const careledger_node,
    network_id: *const c_char,
    document: *const u8,
    document_len: usize,
    now_ms: u64,
    out_entry_id: *mut *mut careledger_bytes,
    out_hash: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out_entry = unsafe { arg_out(out_entry_id, "out_entry_id") }?;
        let out_hash = unsafe { arg_out(out_hash, "out_hash") }?;
        let network = unsafe { network_arg(network_id) }?;
        let document = unsafe { arg_bytes(document, document_len, "document") }?;
        let (entry, hash) = node
            .lock()?
            .add_rule_set(&network, document, time_arg(now_ms))?;
        *out_entry = careledger_bytes::boxed(entry.to_hex().into_bytes());
        *out_hash = careledger_bytes::boxed(hex_lower(&hash).into_bytes());
        Ok(())
    })
}

/// FHIR resource type names from a comma-separated list: at least one.
fn resource_types(list: &str) -> Result<Vec<String>, Failure> {
    let is_type = |t: &str| {
        t.len() <= 64
            && t.starts_with(|c: char| c.is_ascii_uppercase())
            && t.chars().all(|c| c.is_ascii_alphanumeric())
    };
    let types: Vec<String> = list.split(',').map(|t| t.trim().to_owned()).collect();
    if list.trim().is_empty() || !types.iter().all(|t| is_type(t)) {
        return Err(Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            "`types` must be FHIR resource type names separated by commas, at least one \
             (\"Claim,Coverage\"); to share every type use careledger_network_share",
        ));
    }
    Ok(types)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Endorses (`stance` `"endorse"`) or withdraws an endorsement from
/// (`"withdraw"`) a target: `target_kind` `"rule_set"` with `target_id` the
/// rule set's hash, `"model_card"` with the card's entry id, or `"policy"`
/// with the policy's entry id (all 64 hex characters). Once the policy's
/// quorum stands endorsed the target is active; a withdrawal below quorum
/// deactivates it. A model card is endorsed only after this node re-runs its
/// verification and gets *confirmed* (the steps passed go into the
/// endorsement). Activation may start rules at once: when this node is an
/// executor, its outcomes are written in the same call.
///
/// On success only, `*out_entry_id` receives the endorsement entry's id.
///
/// Ownership: inputs borrowed for the call; the caller owns `*out_entry_id`
/// (free with `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node). Endorsing a
/// model card retrains it and holds the node's lock meanwhile.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (target kind or id, stance, network id),
/// `CARELEDGER_UNKNOWN_RULE_SET`, `CARELEDGER_UNKNOWN_POLICY`,
/// `CARELEDGER_UNKNOWN_MODEL_CARD`, `CARELEDGER_ENDORSEMENT_NOT_CONFIRMED`
/// (the detail names the step that differed), `CARELEDGER_NOT_CAUGHT_UP`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`. On
/// failure nothing is written.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_entry_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rules_endorse(
    node: *const careledger_node,
    network_id: *const c_char,
    target_kind: *const c_char,
    target_id: *const c_char,
    stance: *const c_char,
    now_ms: u64,
    out_entry_id: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_entry_id, "out_entry_id") }?;
        let network = unsafe { network_arg(network_id) }?;
        let target = unsafe { target_arg(target_kind, target_id) }?;
        let stance = match unsafe { arg_str(stance, "stance") }? {
            "endorse" => Stance::Endorse,
            "withdraw" => Stance::Withdraw,
            _ => {
                return Err(Failure::new(
                    CARELEDGER_INVALID_ARGUMENT,
                    "`stance` must be \"endorse\" or \"withdraw\"",
                ))
            }
        };
        let entry = node
            .lock()?
            .endorse(&network, target, stance, time_arg(now_ms))?;
        *out = careledger_bytes::boxed(entry.to_hex().into_bytes());
        Ok(())
    })
}

/// Whether a target (as for `careledger_rules_endorse`) is active now.
///
/// `*out_activation` receives UTF-8 JSON, on success only: `{ "active":
/// true, "policy": "<policy entry hex>" | null, "quorum": 2, "endorsements":
/// ["<endorsement entry hex>", …] }` (the members standing endorsed, sorted
/// by entry id). A target nobody wrote or endorsed is simply not active.
///
/// Ownership: inputs borrowed; the caller owns `*out_activation` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_activation` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rules_activation(
    node: *const careledger_node,
    network_id: *const c_char,
    target_kind: *const c_char,
    target_id: *const c_char,
    out_activation: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_activation, "out_activation") }?;
        let network = unsafe { network_arg(network_id) }?;
        let target = unsafe { target_arg(target_kind, target_id) }?;
        let activation = node.lock()?.activation(&network, &target)?;
        *out = json_bytes(&activation_json(&activation));
        Ok(())
    })
}

/// Lists the network's rule sets with their activation now, sorted by name
/// and version.
///
/// `*out_rule_sets` receives UTF-8 JSON, on success only: an array of
/// `{ "entry": "<hex>", "author": "<author hex>", "hash": "<hex>", "name":
/// "claims-auto-adjudication", "version": 1, "description": "…", "currency":
/// "USD", "executors": ["<author hex>"], "rules": [{ "id", "trigger": "Claim",
/// "inputs": ["Coverage"], "model": "<card hex>" | null }], "activation": {
/// as `careledger_rules_activation` }, "in_force": true }`. `in_force` is
/// true for the active set of the highest active version of its name: the
/// one executors run.
///
/// Ownership: inputs borrowed; the caller owns `*out_rule_sets` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_rule_sets` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rule_sets(
    node: *const careledger_node,
    network_id: *const c_char,
    out_rule_sets: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_rule_sets, "out_rule_sets") }?;
        let network = unsafe { network_arg(network_id) }?;
        let sets = node.lock()?.rule_sets(&network)?;
        *out = json_bytes(&Value::Array(sets.iter().map(rule_set_json).collect()));
        Ok(())
    })
}

/// Runs the rules this node executes over every record of the network now.
/// Receiving entries does this by itself for the records they change; call
/// it after a crash or to catch up. An outcome already on this replica for a
/// (rule set, rule, resource version) is never written again.
///
/// `*out_activity` receives UTF-8 JSON, on success only: `{
/// "outcomes_written": 3, "decisions_written": 0, "consent_denied": 1,
/// "failures": ["rule `pay`: …"], "confirmed": 0, "mismatches": [{ "entry":
/// "<hex>", "step": "outcome" }], "waiting": 0 }`. A rule whose evaluation
/// fails (a typed error: a budget or limit reached, a wrong type) writes
/// nothing and is listed in `failures`.
///
/// Ownership: inputs borrowed; the caller owns `*out_activity` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_activity` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rules_run(
    node: *const careledger_node,
    network_id: *const c_char,
    now_ms: u64,
    out_activity: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_activity, "out_activity") }?;
        let network = unsafe { network_arg(network_id) }?;
        let activity = node.lock()?.run_rules(&network, time_arg(now_ms))?;
        *out = json_bytes(&activity_json(&activity));
        Ok(())
    })
}

/// Lists the network's rule outcomes: exactly one per (rule set, rule,
/// resource version); when two executors raced, the smaller entry id is the
/// outcome and the others are listed as its duplicates.
///
/// `*out_outcomes` receives UTF-8 JSON, on success only: an array, by
/// record and resource, of `{ "entry": "<hex>", "executor": "<author hex>",
/// "duplicates": ["<hex>"], "outcome": { the outcome entry's body:
/// "rule_set": {"entry", "hash", "name", "version"}, "rule", "subject":
/// {"record", "resource_type", "id", "version"}, "trigger_entry",
/// "trigger_time_ms", "record_heads", "ledger_heads", "input_hash",
/// "consent_ids", "governance": {"policy", "quorum", "endorsements",
/// "model_endorsements"?}, "decision_entry"?, "outcome": "approve" | "deny"
/// | "pend", "clause": 0 | null, "amount": "215.74"?, "currency", "reason" },
/// "claim_response": { the outcome as a FHIR R4 ClaimResponse } }`.
/// Amounts are exact decimal text.
///
/// Ownership: inputs borrowed; the caller owns `*out_outcomes` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns the statuses of `careledger_rule_sets`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_outcomes` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rule_outcomes(
    node: *const careledger_node,
    network_id: *const c_char,
    out_outcomes: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_outcomes, "out_outcomes") }?;
        let network = unsafe { network_arg(network_id) }?;
        let outcomes = node.lock()?.rule_outcomes(&network)?;
        *out = json_bytes(&Value::Array(outcomes.iter().map(outcome_json).collect()));
        Ok(())
    })
}

/// Re-evaluates rule outcome `outcome_entry_id` on this replica: the rule set
/// by hash, the executor, the governance at the cited ledger cut, the
/// trigger entry and its time, the inputs at the cited record heads (consent
/// applied for the executor), the decision of a prediction used, and the
/// outcome itself.
///
/// `*out_check` receives UTF-8 JSON on `CARELEDGER_OK`,
/// `CARELEDGER_OUTCOME_MISMATCH` and `CARELEDGER_OUTCOME_WAITING`: `{
/// "result": "confirmed" | "mismatch" | "waiting", "step": null | "rule set"
/// | "executor" | "governance" | "trigger" | "inputs" | "decision" |
/// "outcome", "detail": null | "…" }` (the detail names what differed or
/// what has not arrived, never record data).
///
/// Ownership: inputs borrowed; the caller owns `*out_check` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK` (confirmed), `CARELEDGER_OUTCOME_MISMATCH`,
/// `CARELEDGER_OUTCOME_WAITING` (sync and verify again),
/// `CARELEDGER_UNKNOWN_OUTCOME`, `CARELEDGER_NULL_PARAMETER`,
/// `CARELEDGER_INVALID_UTF8`, `CARELEDGER_INVALID_ARGUMENT`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_check` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rule_outcome_verify(
    node: *const careledger_node,
    network_id: *const c_char,
    outcome_entry_id: *const c_char,
    out_check: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_check, "out_check") }?;
        let network = unsafe { network_arg(network_id) }?;
        let outcome = unsafe { entry_arg(outcome_entry_id, "outcome_entry_id") }?;
        let check = node.lock()?.verify_outcome(&network, &outcome)?;
        *out = json_bytes(&check_json(&check));
        match check {
            OutcomeCheck::Confirmed => Ok(()),
            OutcomeCheck::Mismatch { step, detail } => Err(Failure::new(
                CARELEDGER_OUTCOME_MISMATCH,
                format!("rule outcome mismatch at {}: {detail}", step.name()),
            )),
            OutcomeCheck::Waiting { detail } => {
                Err(Failure::new(CARELEDGER_OUTCOME_WAITING, detail))
            }
        }
    })
}

/// Re-checks every rule outcome of the network (duplicates included) on this
/// replica, as `careledger_rule_outcome_verify` does for one, and flags the
/// executor of each that does not re-check (`careledger_ledger_verify` then
/// reports it).
///
/// `*out_report` receives UTF-8 JSON on `CARELEDGER_OK` and on
/// `CARELEDGER_OUTCOME_MISMATCH`: `{ "checked": 457, "confirmed": 455,
/// "mismatches": 1, "waiting": 1, "outcomes": [{ "entry": "<hex>",
/// "executor": "<author hex>", "result": "confirmed" | "mismatch" |
/// "waiting", "step": …, "detail": … }] }`.
///
/// Ownership: inputs borrowed; the caller owns `*out_report` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK` (no mismatch; some may be waiting),
/// `CARELEDGER_OUTCOME_MISMATCH` (at least one), `CARELEDGER_NULL_PARAMETER`,
/// `CARELEDGER_INVALID_UTF8`, `CARELEDGER_INVALID_ARGUMENT`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_rule_outcomes_verify(
    node: *const careledger_node,
    network_id: *const c_char,
    out_report: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_report, "out_report") }?;
        let network = unsafe { network_arg(network_id) }?;
        let checks = node.lock()?.verify_outcomes(&network)?;
        let count = |f: fn(&OutcomeCheck) -> bool| checks.iter().filter(|(_, c)| f(c)).count();
        let mismatches = count(|c| matches!(c, OutcomeCheck::Mismatch { .. }));
        let outcomes: Vec<Value> = checks
            .iter()
            .map(|(stored, check)| {
                let mut item = check_json(check);
                item["entry"] = json!(stored.entry.to_hex());
                item["executor"] = json!(stored.author.to_hex());
                item
            })
            .collect();
        *out = json_bytes(&json!({
            "checked": checks.len(),
            "confirmed": count(|c| matches!(c, OutcomeCheck::Confirmed)),
            "mismatches": mismatches,
            "waiting": count(|c| matches!(c, OutcomeCheck::Waiting { .. })),
            "outcomes": outcomes,
        }));
        if mismatches > 0 {
            return Err(Failure::new(
                CARELEDGER_OUTCOME_MISMATCH,
                format!(
                    "{mismatches} rule outcome(s) did not re-check; their executors are flagged"
                ),
            ));
        }
        Ok(())
    })
}

/// Shares the charts of `from_network_id` into `to_network_id` (a claims
/// network) as `careledger_network_share` does, but only resources of the
/// types in `types` (comma-separated, e.g. `"Claim,Coverage,Condition"`;
/// at least one): an insurer's network gets only what its rules need, and
/// only what consent permits `purpose` (normally `CLMATTCH`).
///
/// `*out_report` receives the JSON of `careledger_network_share`, on success only.
///
/// Ownership: inputs borrowed; the caller owns `*out_report` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns the statuses of `careledger_network_share`;
/// `CARELEDGER_INVALID_ARGUMENT` also for an empty or malformed `types`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_share_types(
    node: *const careledger_node,
    from_network_id: *const c_char,
    to_network_id: *const c_char,
    purpose: *const c_char,
    types: *const c_char,
    now_ms: u64,
    out_report: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_report, "out_report") }?;
        let from = unsafe { named_network_arg(from_network_id, "from_network_id") }?;
        let to = unsafe { named_network_arg(to_network_id, "to_network_id") }?;
        let purpose = unsafe { purpose_arg(purpose, "purpose") }?;
        let types = resource_types(unsafe { arg_str(types, "types") }?)?;
        let report =
            node.lock()?
                .share_types_to_network(&from, &to, purpose, &types, time_arg(now_ms))?;
        *out = json_bytes(&share_report_json(&report));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::consent::careledger_consent_grant;
    use crate::node::careledger_node_author_id;
    use crate::test_support::{c, last_error, take_json, take_text, TestNode};

    const CLAIMS: &str = concat!(
        r#"{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1970-01-01"}"#,
        "\n",
        r#"{"resourceType":"Claim","id":"cl-1","status":"active","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"institutional"}]},"use":"claim","patient":{"reference":"Patient/p1"},"created":"2025-03-01","provider":{"display":"Hospital A"},"priority":{"coding":[{"code":"normal"}]},"insurance":[{"sequence":1,"focal":true,"coverage":{"display":"Acme Health"}}],"total":{"value":269.68,"currency":"USD"}}"#,
        "\n",
        r#"{"resourceType":"Claim","id":"cl-2","status":"active","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"institutional"}]},"use":"claim","patient":{"reference":"Patient/p1"},"created":"2025-03-02","provider":{"display":"Hospital A"},"priority":{"coding":[{"code":"normal"}]},"insurance":[{"sequence":1,"focal":true,"coverage":{"display":"Acme Health"}}],"total":{"value":1200.00,"currency":"USD"}}"#,
        "\n"
    );

    fn rule_set(executor: &str, when: &str) -> String {
        json!({
            "format": "careledger.rule_set", "format_version": 1,
            "name": "ffi-claims", "version": 1, "executors": [executor],
            "rules": [{
                "id": "pay", "trigger": {"resource_type": "Claim"}, "inputs": ["Patient"],
                "clauses": [{"when": when, "outcome": "pend", "reason": "above the limit"}],
                "otherwise": {"outcome": "approve",
                              "amount": "(resource.total.value * decimal('0.8')).round(2)",
                              "reason": "covered at 80%"}
            }]
        })
        .to_string()
    }

    fn author(t: &TestNode) -> String {
        let mut buf = [0 as c_char; 65];
        let mut len = 0;
        // SAFETY: valid pointers.
        let status = unsafe { careledger_node_author_id(t.node, buf.as_mut_ptr(), 65, &mut len) };
        assert_eq!(status, CARELEDGER_OK);
        // SAFETY: NUL-terminated by the call.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn one_member_insurer_adjudicates_by_itself_from_c() {
        let t = TestNode::new("insurer.example");
        t.import(CLAIMS);
        let net = t.network.as_ptr();
        let me = author(&t);
        let mut out = null_mut();
        let mut out2 = null_mut();
        // SAFETY (every call): valid pointers or deliberate NULLs.
        unsafe {
            let status = careledger_consent_grant(
                t.node,
                net,
                c"claims-p1".as_ptr(),
                c"p1".as_ptr(),
                c"network".as_ptr(),
                net,
                c"CLMATTCH".as_ptr(),
                c"Claim,Patient".as_ptr(),
                0,
                0,
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            take_text(out);
            assert_eq!(
                careledger_rules_policy_set(t.node, net, 2, null(), 0, &mut out),
                CARELEDGER_INVALID_POLICY
            );
            assert!(last_error().contains("quorum"), "{}", last_error());
            assert_eq!(
                careledger_rules_policy_set(t.node, net, 1, null(), 0, &mut out),
                CARELEDGER_OK
            );
            let policy = take_text(out);
            let doc = rule_set(&me, "resource.total.value > decimal('500')");
            let status = careledger_rule_set_add(
                t.node,
                net,
                doc.as_ptr(),
                doc.len(),
                0,
                &mut out,
                &mut out2,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            assert_eq!(take_text(out).len(), 64);
            let hash = c(&take_text(out2));
            // Not active before its endorsement: no outcome.
            assert_eq!(
                careledger_rule_outcomes(t.node, net, &mut out),
                CARELEDGER_OK
            );
            assert_eq!(take_json(out), json!([]));
            let status = careledger_rules_endorse(
                t.node,
                net,
                c"rule_set".as_ptr(),
                hash.as_ptr(),
                c"endorse".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            take_text(out);
            // Activation wrote the outcomes in the same call.
            assert_eq!(
                careledger_rule_outcomes(t.node, net, &mut out),
                CARELEDGER_OK
            );
            let outcomes = take_json(out);
            let outcomes = outcomes.as_array().unwrap();
            assert_eq!(outcomes.len(), 2);
            let decided: Vec<(&str, &str)> = outcomes
                .iter()
                .map(|o| {
                    (
                        o["outcome"]["subject"]["id"].as_str().unwrap(),
                        o["outcome"]["outcome"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(decided, [("cl-1", "approve"), ("cl-2", "pend")]);
            assert_eq!(outcomes[0]["outcome"]["amount"], "215.74");
            assert_eq!(
                outcomes[0]["claim_response"]["resourceType"],
                "ClaimResponse"
            );
            assert_eq!(
                outcomes[0]["claim_response"]["request"]["reference"],
                "Claim/cl-1"
            );
            assert_eq!(outcomes[0]["executor"], me.as_str());
            let first = c(outcomes[0]["entry"].as_str().unwrap());
            assert_eq!(
                careledger_rule_outcome_verify(t.node, net, first.as_ptr(), &mut out),
                CARELEDGER_OK
            );
            assert_eq!(take_json(out)["result"], "confirmed");
            assert_eq!(
                careledger_rule_outcomes_verify(t.node, net, &mut out),
                CARELEDGER_OK
            );
            let report = take_json(out);
            assert_eq!(
                (report["checked"].clone(), report["confirmed"].clone()),
                (json!(2), json!(2))
            );
            // Running again writes nothing.
            assert_eq!(
                careledger_rules_run(t.node, net, 0, &mut out),
                CARELEDGER_OK
            );
            assert_eq!(take_json(out)["outcomes_written"], 0);
            assert_eq!(careledger_rule_sets(t.node, net, &mut out), CARELEDGER_OK);
            let sets = take_json(out);
            assert_eq!(sets[0]["activation"]["active"], true);
            assert_eq!(sets[0]["activation"]["policy"], policy.as_str());
            assert_eq!(sets[0]["in_force"], true);
            assert_eq!(sets[0]["rules"][0]["trigger"], "Claim");
            // Withdrawing below quorum deactivates it.
            let status = careledger_rules_endorse(
                t.node,
                net,
                c"rule_set".as_ptr(),
                hash.as_ptr(),
                c"withdraw".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            take_text(out);
            assert_eq!(
                careledger_rules_activation(
                    t.node,
                    net,
                    c"rule_set".as_ptr(),
                    hash.as_ptr(),
                    &mut out
                ),
                CARELEDGER_OK
            );
            assert_eq!(take_json(out)["active"], false);
        }
    }

    #[test]
    fn misuse_gets_typed_statuses_and_writes_nothing() {
        let t = TestNode::new("insurer.example");
        let net = t.network.as_ptr();
        let me = author(&t);
        let unknown = c(&"ab".repeat(32));
        let mut out = null_mut();
        let mut out2 = null_mut();
        // SAFETY (every call): valid pointers or deliberate NULLs / bad bytes.
        unsafe {
            // A hostile rule: comprehensions nested four deep.
            let doc = rule_set(&me, "[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))");
            let status = careledger_rule_set_add(
                t.node,
                net,
                doc.as_ptr(),
                doc.len(),
                0,
                &mut out,
                &mut out2,
            );
            assert_eq!(status, CARELEDGER_INVALID_RULE_SET);
            assert!(
                last_error().contains("comprehensions nested"),
                "{}",
                last_error()
            );
            let status = careledger_rule_set_add(
                t.node,
                net,
                c"{".as_ptr().cast(),
                1,
                0,
                &mut out,
                &mut out2,
            );
            assert_eq!(status, CARELEDGER_INVALID_RULE_SET);
            assert_eq!(careledger_rule_sets(t.node, net, &mut out), CARELEDGER_OK);
            assert_eq!(take_json(out), json!([]), "nothing stored");
            out = null_mut();
            let status = careledger_rule_set_add(t.node, net, null(), 3, 0, &mut out, &mut out2);
            assert_eq!(status, CARELEDGER_NULL_PARAMETER);
            let endorse = |kind: &std::ffi::CStr,
                           id: &std::ffi::CStr,
                           stance: &std::ffi::CStr,
                           out: &mut *mut careledger_bytes| {
                careledger_rules_endorse(
                    t.node,
                    net,
                    kind.as_ptr(),
                    id.as_ptr(),
                    stance.as_ptr(),
                    0,
                    out,
                )
            };
            assert_eq!(
                endorse(c"rule_set", &unknown, c"endorse", &mut out),
                CARELEDGER_UNKNOWN_RULE_SET
            );
            assert_eq!(
                endorse(c"policy", &unknown, c"endorse", &mut out),
                CARELEDGER_UNKNOWN_POLICY
            );
            assert_eq!(
                endorse(c"model_card", &unknown, c"endorse", &mut out),
                CARELEDGER_UNKNOWN_MODEL_CARD
            );
            assert_eq!(
                endorse(c"rule", &unknown, c"endorse", &mut out),
                CARELEDGER_INVALID_ARGUMENT
            );
            assert_eq!(
                endorse(c"rule_set", c"abc", c"endorse", &mut out),
                CARELEDGER_INVALID_ARGUMENT
            );
            assert_eq!(
                endorse(c"rule_set", &unknown, c"maybe", &mut out),
                CARELEDGER_INVALID_ARGUMENT
            );
            assert_eq!(
                endorse(c"rule_set", c"\xff", c"endorse", &mut out),
                CARELEDGER_INVALID_UTF8
            );
            let status = careledger_rule_outcome_verify(t.node, net, unknown.as_ptr(), &mut out);
            assert_eq!(status, CARELEDGER_UNKNOWN_OUTCOME);
            assert!(out.is_null(), "no output on failure");
            assert_eq!(
                careledger_rules_policy_set(t.node, net, 0, null(), 0, &mut out),
                CARELEDGER_INVALID_POLICY
            );
            assert_eq!(
                careledger_rules_policy_set(t.node, net, 1, c"xyz".as_ptr(), 0, &mut out),
                CARELEDGER_INVALID_ARGUMENT
            );
            let status = careledger_network_share_types(
                t.node,
                net,
                net,
                c"CLMATTCH".as_ptr(),
                c"Claim,".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_INVALID_ARGUMENT);
            let status = careledger_network_share_types(
                t.node,
                net,
                net,
                c"CLMATTCH".as_ptr(),
                c"Claim".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_SAME_NETWORK);
            assert_eq!(
                careledger_rule_outcomes(null(), net, &mut out),
                CARELEDGER_NULL_PARAMETER
            );
            assert_eq!(
                careledger_rule_outcomes(t.node, null(), &mut out),
                CARELEDGER_NULL_PARAMETER
            );
            assert_eq!(
                careledger_rules_run(t.node, net, 0, null_mut()),
                CARELEDGER_NULL_PARAMETER
            );
            assert_eq!(
                careledger_rule_outcomes_verify(t.node, c"zz".as_ptr(), &mut out),
                CARELEDGER_INVALID_ARGUMENT
            );
            assert!(out.is_null());
        }
    }
}
