//! Verifiable AI on a network's records: training with a model card on the
//! ledger, predictions recorded as decisions, re-verification, audit,
//! dataset-membership proofs, and federated rounds.
//!
//! Flow: a researcher in a study network calls `careledger_model_train`
//! (the dataset is the consented records at the current checkpoint) and
//! gets the model card's entry id; `careledger_model_predict` records one
//! decision entry per prediction; any other member who has synced calls
//! `careledger_model_verify` to rebuild the dataset and retrain;
//! `careledger_audit` lists cards, decisions, updates and consent cut-offs;
//! a patient asks `careledger_dataset_prove_membership` whether their
//! record was used and checks the answer offline with
//! `careledger_dataset_verify_membership`.

use std::ffi::c_char;

use careledger::analytics::ledger::Holdout;
use careledger::analytics::{FeatureSpec, ModelKind};
use careledger::checkpoint::dataset::{
    verify_membership, DatasetCommitment, Membership, MembershipProof,
};
use careledger::node::{AuditRecord, PredictInput, TrainRequest, Verification, VerifyOutcome};
use serde_json::{json, Map, Value};

use crate::args::{entry_arg, json_bytes, named_network_arg, purpose_arg, time_arg};
use crate::boundary::{arg_bytes, arg_out, arg_str, boundary};
use crate::buffers::careledger_bytes;
use crate::exchange::arg_slice;
use crate::node::{careledger_node, network_arg, node_arg};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// Serialises a ledger value for a JSON output.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| {
        Failure::new(
            CARELEDGER_ANALYTICS_ENTRY_INVALID,
            format!("cannot be written as JSON: {e}"),
        )
    })
}

/// What to train, from the C arguments.
///
/// # Safety
/// `spec_json`, `kind_json` and `purpose` are NULL or NUL-terminated.
unsafe fn train_request(
    spec_json: *const c_char,
    kind_json: *const c_char,
    seed: u64,
    holdout_fraction: f64,
    purpose: *const c_char,
) -> Result<TrainRequest, Failure> {
    // SAFETY (all pointer arguments): forwarded from the caller.
    let spec = FeatureSpec::from_json(unsafe { arg_str(spec_json, "spec_json") }?)?;
    let kind: ModelKind = serde_json::from_str(unsafe { arg_str(kind_json, "kind_json") }?)
        .map_err(|e| {
            Failure::new(
                CARELEDGER_INVALID_MODEL_KIND,
                format!("`kind_json` is not a model kind: {e}"),
            )
        })?;
    let purpose = unsafe { purpose_arg(purpose, "purpose") }?;
    if !(0.0..1.0).contains(&holdout_fraction) {
        return Err(Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            "`holdout_fraction` must be at least 0 and below 1",
        ));
    }
    Ok(TrainRequest {
        seed,
        purpose,
        holdout: Holdout::Fraction(holdout_fraction),
        ..TrainRequest::new(spec, kind)
    })
}

/// Trains a model on the network's records at its current checkpoint, each
/// chart used only as far as consent permits `purpose` to this network and
/// this node at `now_ms`, and writes a model card entry that commits to
/// everything needed to re-verify it (checkpoint, dataset root, consents
/// relied on, spec, kind, seed, hold-out, metrics, model hash). Rows are
/// pseudonymised; the card lists no record id.
///
/// Parameters: `spec_json` a feature spec (`{"version":1,"features":[{"kind":
/// "latest_observation","system":"http://loinc.org","code":"4548-4"}],
/// "label":{"kind":"has_condition","system":"http://snomed.info/sct",
/// "codes":["44054006"]},"missing":"drop_row"}`); `kind_json` a model kind,
/// externally tagged (`{"logistic_regression":{"alpha":1.0,"max_iterations":100,
/// "gradient_tolerance":0.0001}}`, `{"decision_tree":{"max_depth":8,
/// "min_samples_split":2}}`, `{"k_means":{…}}`, `"linear_regression"`);
/// `seed`; `holdout_fraction` in [0, 1): the share of rows (by pseudonym)
/// held out for the card's metrics; `purpose` normally `HRESCH`; `now_ms`
/// the time consent is evaluated at and the entry's time (0 = the system
/// clock). On success only, `*out_card_entry_id` receives the card's entry
/// id (64 hex characters; read it with `careledger_bytes_str`) and
/// `*out_card` the model card as UTF-8 JSON (`format`
/// `careledger.model_card`, `model_hash`, `dataset` {`size`, `root`},
/// `consent_ids`, `excluded_by_consent`, `training_rows`, `test_rows`,
/// `metrics`, …). The entry goes out with the network's next sync.
///
/// Ownership: inputs borrowed; the caller owns both outputs (free each with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node). Training takes
/// the node's lock for its whole duration.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (network id, purpose, hold-out),
/// `CARELEDGER_INVALID_SPEC`, `CARELEDGER_INVALID_MODEL_KIND`,
/// `CARELEDGER_EMPTY_DATASET` (consent left no record, or no row has the
/// values), `CARELEDGER_TRAINING_FAILED`, `CARELEDGER_NOT_CAUGHT_UP`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`. On failure nothing is written.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_model_train(
    node: *const careledger_node,
    network_id: *const c_char,
    spec_json: *const c_char,
    kind_json: *const c_char,
    seed: u64,
    holdout_fraction: f64,
    purpose: *const c_char,
    now_ms: u64,
    out_card_entry_id: *mut *mut careledger_bytes,
    out_card: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out_entry = unsafe { arg_out(out_card_entry_id, "out_card_entry_id") }?;
        let out_card = unsafe { arg_out(out_card, "out_card") }?;
        let network = unsafe { network_arg(network_id) }?;
        let request =
            unsafe { train_request(spec_json, kind_json, seed, holdout_fraction, purpose) }?;
        let outcome =
            node.lock()?
                .train_model(&network, &request, time_arg(now_ms), &mut |_| {})?;
        *out_entry = careledger_bytes::boxed(outcome.entry.to_hex().into_bytes());
        *out_card = careledger_bytes::boxed(outcome.card.to_json().into_bytes());
        Ok(())
    })
}

/// Predicts with the model of a card and records the decision as a ledger
/// entry: exactly one entry per successful prediction, none for a refused
/// or failed one.
///
/// Parameters: `card_entry_id` the model card's entry id (hex). The input is
/// either a patient's chart in the network (`patient_id` non-NULL: consent
/// must permit `purpose` to this network and node; missing values are
/// imputed with the training means) or, when `patient_id` is NULL, the
/// `feature_count` values at `features` in the spec's column order (the
/// caller answers for consent). `now_ms` 0 means the system clock.
///
/// `*out_decision` receives UTF-8 JSON, on success only:
///
/// ```text
/// { "entry_id": "<64 hex: the decision entry>",
///   "decision": { "format": "careledger.decision", "format_version": 1,
///                 "model_card": "<hex>", "model_hash": "<hex>",
///                 "input_commitment": "<hex>", "subject": "p01" | null,
///                 "output": { "class": { "class": 1, "positive_probability": 0.93 } }
///                           | { "cluster": { "cluster": 2, "distance": 0.4 } }
///                           | { "value": { "value": 7.1 } },
///                 "time_ms": …, "purpose": "HRESCH", "consent_ids": [ … ] },
///   "provenance": { FHIR R4 Provenance of the decision } }
/// ```
///
/// Ownership: inputs borrowed; the caller owns `*out_decision` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER` (also `features` NULL
/// with a count when `patient_id` is NULL), `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_MODEL_CARD`,
/// `CARELEDGER_UNKNOWN_PATIENT`, `CARELEDGER_CONSENT_DENIED`,
/// `CARELEDGER_INVALID_FEATURES` (count, or a value not finite),
/// `CARELEDGER_ANALYTICS_ENTRY_INVALID`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `features` NULL or
/// valid for `feature_count` doubles; `out_decision` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_model_predict(
    node: *const careledger_node,
    network_id: *const c_char,
    card_entry_id: *const c_char,
    patient_id: *const c_char,
    features: *const f64,
    feature_count: usize,
    purpose: *const c_char,
    now_ms: u64,
    out_decision: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let handle = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_decision, "out_decision") }?;
        let network = unsafe { network_arg(network_id) }?;
        let card = unsafe { entry_arg(card_entry_id, "card_entry_id") }?;
        let input = if patient_id.is_null() {
            PredictInput::Features(
                unsafe { arg_slice(features, feature_count, "features") }?.to_vec(),
            )
        } else {
            PredictInput::Record(unsafe { arg_str(patient_id, "patient_id") }?.to_owned())
        };
        let purpose = unsafe { purpose_arg(purpose, "purpose") }?;
        let outcome = handle
            .lock()?
            .predict(&network, &card, &input, purpose, time_arg(now_ms))?;
        let entry = outcome.entry.to_hex();
        let provenance = outcome
            .decision
            .to_provenance(&entry, &handle.author().to_hex());
        *out = json_bytes(&json!({
            "entry_id": entry,
            "decision": to_json(&outcome.decision)?,
            "provenance": provenance,
        }));
        Ok(())
    })
}

/// Re-verifies a model card from this replica: checks the model bytes and
/// spec against their hashes, reproduces the checkpoint, rebuilds the
/// dataset with the same consent decisions, compares the commitment and the
/// consents relied on, retrains (or re-averages a federated card's
/// updates) and re-evaluates. Stops at the first difference.
///
/// `*out_verification` receives UTF-8 JSON on `CARELEDGER_OK` and on
/// `CARELEDGER_MODEL_MISMATCH`:
///
/// ```text
/// { "outcome": "confirmed" | "confirmed_within_tolerance" | "mismatch",
///   "max_relative_difference": 1e-12,     (confirmed_within_tolerance only)
///   "step": "dataset", "detail": "…",     (mismatch only; steps: model_bytes,
///                       feature_spec, checkpoint, dataset, consent, updates, model, metrics)
///   "passed": [ "model_bytes", "feature_spec", … ] }
/// ```
///
/// Ownership: inputs borrowed; the caller owns `*out_verification` (free
/// with `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node; retraining
/// holds the lock).
/// Returns `CARELEDGER_OK` (confirmed, exactly or within tolerance),
/// `CARELEDGER_MODEL_MISMATCH` (the detail and the JSON name the step; a
/// replica behind the card's checkpoint reports step `checkpoint`: sync and
/// verify again), `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_MODEL_CARD`,
/// `CARELEDGER_ANALYTICS_ENTRY_INVALID`, `CARELEDGER_TRAINING_FAILED`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_verification` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_model_verify(
    node: *const careledger_node,
    network_id: *const c_char,
    card_entry_id: *const c_char,
    out_verification: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_verification, "out_verification") }?;
        let network = unsafe { network_arg(network_id) }?;
        let card = unsafe { entry_arg(card_entry_id, "card_entry_id") }?;
        let verification = node.lock()?.verify_model(&network, &card)?;
        *out = json_bytes(&verification_json(&verification)?);
        verification_status(&verification)
    })
}

/// A verification as one flat object: the outcome's members, then the steps passed.
fn verification_json(verification: &Verification) -> Result<Value, Failure> {
    let mut flat = match to_json(&verification.outcome)? {
        Value::Object(members) => members,
        other => Map::from_iter([("outcome".to_owned(), other)]),
    };
    flat.insert("passed".into(), to_json(&verification.passed)?);
    Ok(Value::Object(flat))
}

/// `CARELEDGER_MODEL_MISMATCH`, naming the step, unless the card was confirmed.
fn verification_status(verification: &Verification) -> Result<(), Failure> {
    match &verification.outcome {
        VerifyOutcome::Mismatch { step, detail } => Err(Failure::new(
            CARELEDGER_MODEL_MISMATCH,
            format!("{}: {detail}", step.name()),
        )),
        VerifyOutcome::Confirmed | VerifyOutcome::ConfirmedWithinTolerance { .. } => Ok(()),
    }
}

/// Lists the network's model cards, decisions, federated model updates,
/// consent cut-offs (key-withheld notices), and the budget policies, plans
/// and round cards of federated tasks under secure aggregation, in local
/// ledger order.
///
/// `*out_audit` receives UTF-8 JSON, on success only:
///
/// ```text
/// { "model_cards": 1, "decisions": 3, "model_updates": 0, "key_withheld": 1,
///   "fl_policies": 1, "fl_plans": 1, "fl_rounds": 4,
///   "entries": [
///     { "entry_id": "<hex>", "author": "<64 hex>", "author_name": "lab.example",
///       "time_ms": …, "entry_kind": "model_card",
///       "card": { model card }, "model_bytes": 1234 },
///     { …, "entry_kind": "decision", "decision": { as careledger_model_predict },
///       "provenance": { FHIR R4 Provenance } },
///     { …, "entry_kind": "model_update", "update": { the update's facts } },
///     { …, "entry_kind": "key_withheld", "record": "p07",
///       "reason": "consent denies" | "consent expired" | "consent revoked" | "no consent",
///       "consent": "c-p07" (the deciding or revoked consent; "" for no consent) },
///     { …, "entry_kind": "fl_policy", "policy": { "max_epsilon", "delta", "allow_non_private" } },
///     { …, "entry_kind": "fl_plan", "plan": { as careledger_fl_tasks' plans } },
///     { …, "entry_kind": "fl_round", "card": { round card, with "budget" per site } } ] }
/// ```
///
/// Ownership: inputs borrowed; the caller owns `*out_audit` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_ANALYTICS_ENTRY_INVALID`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_audit` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_audit(
    node: *const careledger_node,
    network_id: *const c_char,
    out_audit: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_audit, "out_audit") }?;
        let network = unsafe { network_arg(network_id) }?;
        let audit = node.lock()?.audit(&network)?;
        let mut counts = [0usize; 7];
        let mut entries = Vec::with_capacity(audit.len());
        for entry in &audit {
            let id = entry.entry.to_hex();
            let author = entry.author.to_hex();
            let mut item = Map::new();
            item.insert("entry_id".into(), json!(id));
            item.insert("author".into(), json!(author));
            item.insert("author_name".into(), json!(entry.author_name));
            item.insert("time_ms".into(), json!(entry.time_ms));
            let (kind, count, members) = match &entry.record {
                AuditRecord::ModelCard { card, model_bytes } => (
                    "model_card",
                    0,
                    vec![
                        ("card", to_json(card)?),
                        ("model_bytes", json!(model_bytes)),
                    ],
                ),
                AuditRecord::Decision(decision) => (
                    "decision",
                    1,
                    vec![
                        ("decision", to_json(decision)?),
                        ("provenance", decision.to_provenance(&id, &author)),
                    ],
                ),
                AuditRecord::ModelUpdate(facts) => {
                    ("model_update", 2, vec![("update", to_json(facts)?)])
                }
                AuditRecord::KeyWithheld {
                    record,
                    reason,
                    consent,
                } => (
                    "key_withheld",
                    3,
                    vec![
                        ("record", json!(record)),
                        ("reason", json!(reason)),
                        ("consent", json!(consent)),
                    ],
                ),
                AuditRecord::FlPolicy(policy) => {
                    ("fl_policy", 4, vec![("policy", to_json(policy)?)])
                }
                AuditRecord::FlPlan(plan) => ("fl_plan", 5, vec![("plan", to_json(plan)?)]),
                AuditRecord::FlRound(card) => ("fl_round", 6, vec![("card", to_json(card)?)]),
            };
            counts[count] += 1;
            item.insert("entry_kind".into(), json!(kind));
            for (name, value) in members {
                item.insert(name.into(), value);
            }
            entries.push(Value::Object(item));
        }
        *out = json_bytes(&json!({
            "model_cards": counts[0],
            "decisions": counts[1],
            "model_updates": counts[2],
            "key_withheld": counts[3],
            "fl_policies": counts[4],
            "fl_plans": counts[5],
            "fl_rounds": counts[6],
            "entries": entries,
        }));
        Ok(())
    })
}

/// Proves whether `record_id` (a patient's record id) is in the dataset of
/// a trained model card, by rebuilding that dataset from this replica. The
/// answer is checked with `careledger_dataset_verify_membership`, anywhere,
/// without a node. A proof that a record is *not* included shows the ids of
/// the two records next to it in the dataset's order.
///
/// On success only, `*out_commitment` receives the dataset commitment the
/// card names (binary: version, size, root) and `*out_proof` the membership
/// proof (binary).
///
/// Ownership: inputs borrowed; the caller owns both outputs (free each with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_MODEL_CARD`,
/// `CARELEDGER_ANALYTICS_ENTRY_INVALID` (e.g. a federated card, which has no
/// dataset of its own), `CARELEDGER_NOT_CAUGHT_UP` (sync first),
/// `CARELEDGER_EMPTY_DATASET`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_dataset_prove_membership(
    node: *const careledger_node,
    network_id: *const c_char,
    card_entry_id: *const c_char,
    record_id: *const c_char,
    out_commitment: *mut *mut careledger_bytes,
    out_proof: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out_commitment = unsafe { arg_out(out_commitment, "out_commitment") }?;
        let out_proof = unsafe { arg_out(out_proof, "out_proof") }?;
        let network = unsafe { network_arg(network_id) }?;
        let card = unsafe { entry_arg(card_entry_id, "card_entry_id") }?;
        let record = unsafe { arg_str(record_id, "record_id") }?;
        let (commitment, proof) = node
            .lock()?
            .prove_dataset_membership(&network, &card, record)?;
        *out_commitment = careledger_bytes::boxed(commitment.encode());
        *out_proof = careledger_bytes::boxed(proof.encode());
        Ok(())
    })
}

/// Checks a membership proof for `record_id` against a dataset commitment,
/// as `careledger_dataset_prove_membership` gives them. Pure: no node, no
/// I/O. On success only, `*out_included` receives true (the record is in
/// the dataset) or false (it is not).
///
/// Ownership: inputs borrowed for the call; `*out_included` is the caller's.
/// Thread safety: safe from any thread.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_PROOF` (the bytes are not a commitment or a proof),
/// `CARELEDGER_PROOF_REJECTED` (the proof does not hold for this record and
/// commitment: treat as unanswered, not as "not included"), `CARELEDGER_PANIC`.
///
/// # Safety
/// `commitment` NULL or valid for `commitment_len` bytes, `proof` for
/// `proof_len` bytes; `record_id` NULL or NUL-terminated; `out_included` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_dataset_verify_membership(
    commitment: *const u8,
    commitment_len: usize,
    record_id: *const c_char,
    proof: *const u8,
    proof_len: usize,
    out_included: *mut bool,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let out = unsafe { arg_out(out_included, "out_included") }?;
        let commitment = unsafe { arg_bytes(commitment, commitment_len, "commitment") }?;
        let record = unsafe { arg_str(record_id, "record_id") }?;
        let proof = unsafe { arg_bytes(proof, proof_len, "proof") }?;
        let commitment = DatasetCommitment::decode(commitment)?;
        let proof = MembershipProof::decode(proof)?;
        let membership = verify_membership(&commitment.root, commitment.size, record, &proof)?;
        *out = matches!(membership, Membership::Included { .. });
        Ok(())
    })
}

/// Federated learning, one site's part: trains on this node's consented
/// records of `source_network_id` (consent must grant `purpose` to the study
/// network) and publishes the parameters and sample count as a sealed
/// model-update entry in `study_network_id` for round `round`. Raw records
/// never leave the source network.
///
/// Parameters as for `careledger_model_train`, plus `round` (a label every
/// site of the round uses). On success only, `*out_update_entry_id`
/// receives the update's entry id (hex) and `*out_update` its facts as
/// UTF-8 JSON (`format` `careledger.model_update_entry`, `round`, `site`,
/// `samples`, `dataset`, `consent_ids`, `local_metrics`, `update_hash`, …).
///
/// Ownership: inputs borrowed; the caller owns both outputs (free each with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns the statuses of `careledger_model_train`, for either network.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_model_update_publish(
    node: *const careledger_node,
    source_network_id: *const c_char,
    study_network_id: *const c_char,
    round: *const c_char,
    spec_json: *const c_char,
    kind_json: *const c_char,
    seed: u64,
    holdout_fraction: f64,
    purpose: *const c_char,
    now_ms: u64,
    out_update_entry_id: *mut *mut careledger_bytes,
    out_update: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out_entry = unsafe { arg_out(out_update_entry_id, "out_update_entry_id") }?;
        let out_update = unsafe { arg_out(out_update, "out_update") }?;
        let source = unsafe { named_network_arg(source_network_id, "source_network_id") }?;
        let study = unsafe { named_network_arg(study_network_id, "study_network_id") }?;
        let round = unsafe { arg_str(round, "round") }?;
        let request =
            unsafe { train_request(spec_json, kind_json, seed, holdout_fraction, purpose) }?;
        let outcome = node.lock()?.publish_model_update(
            &source,
            &study,
            round,
            &request,
            time_arg(now_ms),
        )?;
        let facts = to_json(&outcome.facts)?;
        *out_entry = careledger_bytes::boxed(outcome.entry.to_hex().into_bytes());
        *out_update = json_bytes(&facts);
        Ok(())
    })
}

/// Federated learning, the coordinator's part: averages the model updates
/// of `round` in the study network (weighted FedAvg, bit-identical for every
/// member) and writes the global model's card, which names the update
/// entries instead of a dataset. Any member re-checks it with
/// `careledger_model_verify`.
///
/// On success only, `*out_card_entry_id` receives the card's entry id (hex)
/// and `*out_card` the card as UTF-8 JSON (`origin` `{"federated":{"round":
/// …,"updates":[…]}}`).
///
/// Ownership: inputs borrowed; the caller owns both outputs (free each with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_NO_UPDATES`,
/// `CARELEDGER_FEDERATION_FAILED` (a site published twice, mixed kinds or
/// specs), `CARELEDGER_ANALYTICS_ENTRY_INVALID`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_model_federate(
    node: *const careledger_node,
    study_network_id: *const c_char,
    round: *const c_char,
    now_ms: u64,
    out_card_entry_id: *mut *mut careledger_bytes,
    out_card: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out_entry = unsafe { arg_out(out_card_entry_id, "out_card_entry_id") }?;
        let out_card = unsafe { arg_out(out_card, "out_card") }?;
        let study = unsafe { named_network_arg(study_network_id, "study_network_id") }?;
        let round = unsafe { arg_str(round, "round") }?;
        let outcome = node
            .lock()?
            .federated_round(&study, round, time_arg(now_ms))?;
        *out_entry = careledger_bytes::boxed(outcome.entry.to_hex().into_bytes());
        *out_card = careledger_bytes::boxed(outcome.card.to_json().into_bytes());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};
    use std::ptr::{null, null_mut};

    use careledger::analytics::{AnalyticsError, PredictError, TrainModelError};
    use careledger::node::{AiError, VerifyStep};

    use super::*;
    use crate::buffers::{careledger_bytes_data, careledger_bytes_free, careledger_bytes_len};
    use crate::consent::careledger_consent_grant;
    use crate::network::careledger_network_create;
    use crate::test_support::{c, last_error, synthetic_patients, take_json, take_text, TestNode};

    const SPEC: &str = r#"{"version":1,
        "features":[{"kind":"latest_observation","system":"http://loinc.org","code":"4548-4"}],
        "label":{"kind":"has_condition","system":"http://snomed.info/sct","codes":["44054006"]},
        "missing":"drop_row"}"#;
    const LOGISTIC: &str =
        r#"{"logistic_regression":{"alpha":1.0,"max_iterations":100,"gradient_tolerance":0.0001}}"#;
    const PATIENTS: usize = 30;

    /// Every patient grants research to `network`.
    fn grant_research(t: &TestNode, network: &CStr, prefix: &str) {
        for i in 0..PATIENTS {
            let mut out = null_mut();
            // SAFETY: every pointer is valid for the call.
            let status = unsafe {
                careledger_consent_grant(
                    t.node,
                    t.network.as_ptr(),
                    c(&format!("{prefix}-p{i:02}")).as_ptr(),
                    c(&format!("p{i:02}")).as_ptr(),
                    c"network".as_ptr(),
                    network.as_ptr(),
                    c"HRESCH".as_ptr(),
                    c"".as_ptr(),
                    0,
                    0,
                    0,
                    &mut out,
                )
            };
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            take_text(out);
        }
    }

    fn train(
        t: &TestNode,
        spec: &str,
        kind: &str,
        holdout: f64,
        purpose: &CStr,
    ) -> Result<(String, Value), careledger_status> {
        let (mut entry, mut card) = (null_mut(), null_mut());
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_model_train(
                t.node,
                t.network.as_ptr(),
                c(spec).as_ptr(),
                c(kind).as_ptr(),
                7,
                holdout,
                purpose.as_ptr(),
                0,
                &mut entry,
                &mut card,
            )
        };
        if status != CARELEDGER_OK {
            assert!(entry.is_null() && card.is_null(), "no output on failure");
            return Err(status);
        }
        Ok((take_text(entry), take_json(card)))
    }

    fn predict(
        t: &TestNode,
        card: &str,
        patient: Option<&str>,
        features: &[f64],
    ) -> Result<Value, careledger_status> {
        let patient = patient.map(c);
        let mut out = null_mut();
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_model_predict(
                t.node,
                t.network.as_ptr(),
                c(card).as_ptr(),
                patient.as_ref().map_or(null(), |p| p.as_ptr()),
                features.as_ptr(),
                features.len(),
                c"HRESCH".as_ptr(),
                0,
                &mut out,
            )
        };
        if status != CARELEDGER_OK {
            assert!(out.is_null());
            return Err(status);
        }
        Ok(take_json(out))
    }

    fn prove(t: &TestNode, network: &CStr, card: &str, record: &str) -> (Vec<u8>, Vec<u8>) {
        let (mut commitment, mut proof) = (null_mut(), null_mut());
        // SAFETY: every pointer is valid for the call; outputs freed once.
        unsafe {
            let status = careledger_dataset_prove_membership(
                t.node,
                network.as_ptr(),
                c(card).as_ptr(),
                c(record).as_ptr(),
                &mut commitment,
                &mut proof,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            let copy = |b| {
                std::slice::from_raw_parts(careledger_bytes_data(b), careledger_bytes_len(b))
                    .to_vec()
            };
            let out = (copy(commitment), copy(proof));
            careledger_bytes_free(commitment);
            careledger_bytes_free(proof);
            out
        }
    }

    fn check(commitment: &[u8], record: &str, proof: &[u8]) -> Result<bool, careledger_status> {
        let mut included = false;
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_dataset_verify_membership(
                commitment.as_ptr(),
                commitment.len(),
                c(record).as_ptr(),
                proof.as_ptr(),
                proof.len(),
                &mut included,
            )
        };
        match status {
            CARELEDGER_OK => Ok(included),
            other => Err(other),
        }
    }

    #[test]
    fn ai_errors_map_to_their_statuses() {
        let cases = [
            (
                AiError::EmptyAfterConsent {
                    purpose: "HRESCH".into(),
                    excluded: 3,
                },
                CARELEDGER_EMPTY_DATASET,
            ),
            (
                AiError::ConsentDenied {
                    purpose: "HRESCH".into(),
                },
                CARELEDGER_CONSENT_DENIED,
            ),
            (AiError::UnknownModelCard, CARELEDGER_UNKNOWN_MODEL_CARD),
            (AiError::UnknownPatient, CARELEDGER_UNKNOWN_PATIENT),
            (
                AiError::Checkpoint("behind".into()),
                CARELEDGER_NOT_CAUGHT_UP,
            ),
            (AiError::NoUpdates("r1".into()), CARELEDGER_NO_UPDATES),
            (
                AiError::DuplicateSite {
                    round: "r".into(),
                    site: "s".into(),
                },
                CARELEDGER_FEDERATION_FAILED,
            ),
            (AiError::Holdout("x".into()), CARELEDGER_INVALID_ARGUMENT),
            (
                AiError::Body("x".into()),
                CARELEDGER_ANALYTICS_ENTRY_INVALID,
            ),
            (
                AnalyticsError::from(TrainModelError::SingleClass).into(),
                CARELEDGER_TRAINING_FAILED,
            ),
            (
                AnalyticsError::from(TrainModelError::EmptyDataset).into(),
                CARELEDGER_EMPTY_DATASET,
            ),
            (
                AnalyticsError::from(TrainModelError::InvalidHyperparameter {
                    name: "alpha",
                    rule: "must be at least 0",
                })
                .into(),
                CARELEDGER_INVALID_MODEL_KIND,
            ),
            (
                AnalyticsError::from(PredictError::WrongFeatureCount {
                    expected: 1,
                    found: 2,
                })
                .into(),
                CARELEDGER_INVALID_FEATURES,
            ),
        ];
        for (error, status) in cases {
            let failure = Failure::from(error);
            assert_eq!(failure.status, status, "{}", failure.detail);
            assert!(!failure.detail.is_empty());
        }
    }

    #[test]
    fn verifications_are_flat_json_and_a_mismatch_is_a_status() {
        let mismatch = Verification {
            outcome: VerifyOutcome::Mismatch {
                step: VerifyStep::Dataset,
                detail: "the card commits to 3 record(s)".into(),
            },
            passed: vec![
                VerifyStep::ModelBytes,
                VerifyStep::FeatureSpec,
                VerifyStep::Checkpoint,
            ],
        };
        assert_eq!(
            verification_json(&mismatch).unwrap(),
            serde_json::json!({
                "outcome": "mismatch", "step": "dataset", "detail": "the card commits to 3 record(s)",
                "passed": ["model_bytes", "feature_spec", "checkpoint"],
            })
        );
        let failure = verification_status(&mismatch).unwrap_err();
        assert_eq!(failure.status, CARELEDGER_MODEL_MISMATCH);
        assert_eq!(
            failure.detail,
            "dataset commitment: the card commits to 3 record(s)"
        );
        let close = Verification {
            outcome: VerifyOutcome::ConfirmedWithinTolerance {
                max_relative_difference: 2.5e-12,
            },
            passed: vec![VerifyStep::Model],
        };
        let json = verification_json(&close).unwrap();
        assert_eq!(json["outcome"], "confirmed_within_tolerance");
        assert_eq!(json["max_relative_difference"].as_f64(), Some(2.5e-12));
        assert!(verification_status(&close).is_ok());
    }

    #[test]
    fn train_arguments_are_checked() {
        let t = TestNode::new("lab.example");
        t.import(&synthetic_patients(PATIENTS));
        assert_eq!(
            train(&t, "{", LOGISTIC, 0.2, c"HRESCH").unwrap_err(),
            CARELEDGER_INVALID_SPEC
        );
        assert_eq!(
            train(
                &t,
                r#"{"version":2,"features":[],"missing":"drop_row"}"#,
                LOGISTIC,
                0.2,
                c"HRESCH"
            )
            .unwrap_err(),
            CARELEDGER_INVALID_SPEC
        );
        assert!(last_error().contains("version 2"), "{}", last_error());
        assert_eq!(
            train(&t, SPEC, r#"{"perceptron":{}}"#, 0.2, c"HRESCH").unwrap_err(),
            CARELEDGER_INVALID_MODEL_KIND
        );
        assert_eq!(
            train(&t, SPEC, LOGISTIC, 1.0, c"HRESCH").unwrap_err(),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert_eq!(
            train(&t, SPEC, LOGISTIC, f64::NAN, c"HRESCH").unwrap_err(),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert_eq!(
            train(&t, SPEC, LOGISTIC, 0.2, c"not a code").unwrap_err(),
            CARELEDGER_INVALID_ARGUMENT
        );
        // Nobody consented: every chart is left out.
        assert_eq!(
            train(&t, SPEC, LOGISTIC, 0.2, c"HRESCH").unwrap_err(),
            CARELEDGER_EMPTY_DATASET
        );
        assert!(
            last_error().contains(&format!("all {PATIENTS} record(s)")),
            "{}",
            last_error()
        );
        let (mut entry, mut card) = (null_mut(), null_mut());
        // SAFETY: NULL outputs and node; every other pointer is valid.
        unsafe {
            let status = careledger_model_train(
                null(),
                t.network.as_ptr(),
                c(SPEC).as_ptr(),
                c(LOGISTIC).as_ptr(),
                1,
                0.2,
                c"HRESCH".as_ptr(),
                0,
                &mut entry,
                &mut card,
            );
            assert_eq!(status, CARELEDGER_NULL_PARAMETER);
            let status = careledger_model_train(
                t.node,
                t.network.as_ptr(),
                c(SPEC).as_ptr(),
                c(LOGISTIC).as_ptr(),
                1,
                0.2,
                c"HRESCH".as_ptr(),
                0,
                &mut entry,
                null_mut(),
            );
            assert_eq!(status, CARELEDGER_NULL_PARAMETER);
            assert!(last_error().contains("out_card"));
        }
        assert!(entry.is_null() && card.is_null());
        let unknown = "ab".repeat(32);
        assert_eq!(
            predict(&t, &unknown, None, &[6.0]).unwrap_err(),
            CARELEDGER_UNKNOWN_MODEL_CARD
        );
        assert_eq!(
            predict(&t, "abc", None, &[6.0]).unwrap_err(),
            CARELEDGER_INVALID_ARGUMENT
        );
    }

    #[test]
    fn train_predict_verify_audit_and_prove() {
        let t = TestNode::new("lab.example");
        t.import(&synthetic_patients(PATIENTS));
        grant_research(&t, &t.network, "c");
        let (entry, card) = train(&t, SPEC, LOGISTIC, 0.2, c"HRESCH")
            .unwrap_or_else(|s| panic!("{s:?}: {}", last_error()));
        assert_eq!(entry.len(), 64);
        assert_eq!(card["format"], "careledger.model_card");
        assert_eq!(card["dataset"]["size"].as_u64(), Some(PATIENTS as u64));
        assert_eq!(card["consent_ids"].as_array().unwrap().len(), PATIENTS);
        assert_eq!(card["excluded_by_consent"].as_u64(), Some(0));
        assert_eq!(
            card["training_rows"].as_u64().unwrap() + card["test_rows"].as_u64().unwrap(),
            PATIENTS as u64
        );

        let by_record = predict(&t, &entry, Some("p28"), &[]).unwrap();
        assert_eq!(by_record["decision"]["model_hash"], card["model_hash"]);
        assert_eq!(by_record["decision"]["subject"], "p28");
        assert_eq!(
            by_record["decision"]["consent_ids"],
            serde_json::json!(["c-p28"])
        );
        assert_eq!(by_record["provenance"]["resourceType"], "Provenance");
        assert_eq!(by_record["provenance"]["id"], by_record["entry_id"]);
        let by_features = predict(&t, &entry, None, &[8.9]).unwrap();
        assert_eq!(
            by_features["decision"]["output"]["class"]["class"].as_u64(),
            Some(1)
        );
        assert!(by_features["decision"]["subject"].is_null());
        assert_eq!(
            predict(&t, &entry, None, &[1.0, 2.0]).unwrap_err(),
            CARELEDGER_INVALID_FEATURES
        );
        assert_eq!(
            predict(&t, &entry, None, &[f64::NAN]).unwrap_err(),
            CARELEDGER_INVALID_FEATURES
        );
        assert_eq!(
            predict(&t, &entry, Some("nobody"), &[]).unwrap_err(),
            CARELEDGER_UNKNOWN_PATIENT
        );

        let mut out = null_mut();
        // SAFETY: every pointer is valid for the call.
        let status = unsafe { careledger_audit(t.node, t.network.as_ptr(), &mut out) };
        assert_eq!(status, CARELEDGER_OK, "{}", last_error());
        let audit = take_json(out);
        assert_eq!(audit["model_cards"].as_u64(), Some(1));
        assert_eq!(
            audit["decisions"].as_u64(),
            Some(2),
            "one per successful prediction"
        );
        let kinds: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entry_kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["model_card", "decision", "decision"]);
        assert_eq!(audit["entries"][0]["entry_id"], entry.as_str());
        assert_eq!(
            audit["entries"][1]["provenance"]["resourceType"],
            "Provenance"
        );

        let mut out = null_mut();
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_model_verify(t.node, t.network.as_ptr(), c(&entry).as_ptr(), &mut out)
        };
        assert_eq!(status, CARELEDGER_OK, "{}", last_error());
        let verification = take_json(out);
        assert_eq!(verification["outcome"], "confirmed");
        assert_eq!(verification["passed"].as_array().unwrap().len(), 7);

        let (commitment, proof) = prove(&t, &t.network, &entry, "p05");
        assert_eq!(check(&commitment, "p05", &proof), Ok(true));
        assert_eq!(
            check(&commitment, "p06", &proof),
            Err(CARELEDGER_PROOF_REJECTED)
        );
        let (commitment, absent) = prove(&t, &t.network, &entry, "p99-made-up");
        assert_eq!(check(&commitment, "p99-made-up", &absent), Ok(false));
        assert_eq!(
            check(&commitment[1..], "p05", &proof),
            Err(CARELEDGER_INVALID_PROOF)
        );
        assert_eq!(
            check(&commitment, "p05", &proof[..proof.len() - 1]),
            Err(CARELEDGER_INVALID_PROOF)
        );
        assert_eq!(
            check(&commitment, "p05", &[]),
            Err(CARELEDGER_INVALID_PROOF)
        );
        let mut included = true;
        // SAFETY: NULL buffers with lengths, and a NULL output.
        unsafe {
            let status = careledger_dataset_verify_membership(
                null(),
                41,
                c"p05".as_ptr(),
                proof.as_ptr(),
                proof.len(),
                &mut included,
            );
            assert_eq!(status, CARELEDGER_NULL_PARAMETER);
            let status = careledger_dataset_verify_membership(
                commitment.as_ptr(),
                commitment.len(),
                c"p05".as_ptr(),
                proof.as_ptr(),
                proof.len(),
                null_mut(),
            );
            assert_eq!(status, CARELEDGER_NULL_PARAMETER);
        }
        assert!(included, "not written on failure");
    }

    #[test]
    fn a_federated_round_of_one_site_verifies() {
        let t = TestNode::new("site.example");
        t.import(&synthetic_patients(PATIENTS));
        let mut study = null_mut();
        // SAFETY: every pointer is valid for the call.
        let status = unsafe { careledger_network_create(t.node, c"study".as_ptr(), &mut study) };
        assert_eq!(status, CARELEDGER_OK);
        let study = CString::new(take_text(study)).unwrap();
        grant_research(&t, &study, "c-study");
        let (mut entry, mut facts) = (null_mut(), null_mut());
        let (mut card_entry, mut card) = (null_mut(), null_mut());
        // SAFETY: every pointer is valid for the call.
        unsafe {
            let status = careledger_model_federate(
                t.node,
                study.as_ptr(),
                c"r1".as_ptr(),
                0,
                &mut card_entry,
                &mut card,
            );
            assert_eq!(status, CARELEDGER_NO_UPDATES);
            let status = careledger_model_update_publish(
                t.node,
                t.network.as_ptr(),
                study.as_ptr(),
                c"r1".as_ptr(),
                c(SPEC).as_ptr(),
                c(LOGISTIC).as_ptr(),
                3,
                0.0,
                c"HRESCH".as_ptr(),
                0,
                &mut entry,
                &mut facts,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            let status = careledger_model_federate(
                t.node,
                study.as_ptr(),
                c"r1".as_ptr(),
                0,
                &mut card_entry,
                &mut card,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
        }
        let facts = take_json(facts);
        assert_eq!(take_text(entry).len(), 64);
        assert_eq!(
            (facts["round"].as_str(), facts["samples"].as_u64()),
            (Some("r1"), Some(PATIENTS as u64))
        );
        let card_entry = take_text(card_entry);
        assert_eq!(take_json(card)["origin"]["federated"]["round"], "r1");
        let mut out = null_mut();
        // SAFETY: every pointer is valid for the call.
        unsafe {
            let status =
                careledger_model_verify(t.node, study.as_ptr(), c(&card_entry).as_ptr(), &mut out);
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            assert_eq!(take_json(out)["outcome"], "confirmed");
            // A federated card has no dataset of its own to prove membership in.
            let (mut commitment, mut proof) = (null_mut(), null_mut());
            let status = careledger_dataset_prove_membership(
                t.node,
                study.as_ptr(),
                c(&card_entry).as_ptr(),
                c"p01".as_ptr(),
                &mut commitment,
                &mut proof,
            );
            assert_eq!(status, CARELEDGER_ANALYTICS_ENTRY_INVALID);
            assert!(commitment.is_null() && proof.is_null());
        }
    }
}
