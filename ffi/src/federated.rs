//! Federated tasks under secure aggregation and differential privacy.
//!
//! Flow for a hospital (a site): its EHR integration calls
//! `careledger_network_sync` on the study network (or feeds the relay's
//! messages through the sans-IO path), then `careledger_fl_site_step` with
//! its own data network, and repeats every few hundred milliseconds while
//! `careledger_fl_tasks` shows a task naming it that has not finished. The
//! site's records never leave it: it publishes its channel key and dataset
//! commitment, sealed shares of its per-round mask keys, masked updates and,
//! for survivors, the shares that let the coordinator recover the sum. Any
//! member re-checks a round with `careledger_fl_verify_round` and reads the
//! privacy budget spent with `careledger_fl_budget`.
//!
//! A coordinator (usually a researcher's node) writes the plan with
//! `careledger_fl_plan` and runs `careledger_fl_coordinator_step` in the same
//! kind of loop. Outputs are UTF-8 JSON in a `careledger_bytes`.

use std::ffi::c_char;

use careledger::analytics::dp::BudgetPolicy;
use careledger::node::{PlanRequest, RoundVerification};
use serde_json::json;

use crate::args::{entry_arg, json_bytes, named_network_arg, time_arg};
use crate::boundary::{arg_out, arg_str, boundary};
use crate::buffers::careledger_bytes;
use crate::node::{careledger_node, node_arg};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(value).map_err(|e| {
        Failure::new(
            CARELEDGER_ANALYTICS_ENTRY_INVALID,
            format!("cannot be written as JSON: {e}"),
        )
    })
}

/// Writes this node's privacy-budget policy for the network: no site's
/// dataset may spend more than `max_epsilon` at `delta` over the network's
/// differentially private rounds; with `allow_non_private` 0, tasks without
/// differential privacy (feature statistics, plain secure aggregation) are
/// refused. The network's effective policy is the strictest of every
/// member's latest. `now_ms` 0 means the system clock.
///
/// On success only, `*out_entry_id` receives the policy entry's id (hex).
///
/// Ownership: inputs borrowed; the caller owns `*out_entry_id` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (network id), `CARELEDGER_ANALYTICS_ENTRY_INVALID`
/// (ε not finite and positive, δ not in (0, 1)), `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_entry_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_fl_policy_set(
    node: *const careledger_node,
    network_id: *const c_char,
    max_epsilon: f64,
    delta: f64,
    allow_non_private: i32,
    now_ms: u64,
    out_entry_id: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_entry_id, "out_entry_id") }?;
        let network = unsafe { named_network_arg(network_id, "network_id") }?;
        let policy = BudgetPolicy {
            max_epsilon,
            delta,
            allow_non_private: allow_non_private != 0,
        };
        let entry = node
            .lock()?
            .fl_set_policy(&network, policy, time_arg(now_ms))?;
        *out = careledger_bytes::boxed(entry.to_hex().into_bytes());
        Ok(())
    })
}

/// Lists the network's federated tasks as this node sees them.
///
/// `*out_tasks` receives UTF-8 JSON, on success only: an array of
/// `{ "task": "<hex>", "plan_entry": "<hex>", "coordinator": "research.example",
///    "objective": "moments" | "logistic_regression", "private": true,
///    "participants": ["hospital-a.example", …], "rounds": 20,
///    "last_card_round": 3 | null, "finished": false,
///    "outcome": null | "completed" | {"aborted": {"reason": "…"}},
///    "last_card": "<hex>" | null }`.
///
/// Ownership: inputs borrowed; the caller owns `*out_tasks` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_tasks` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_fl_tasks(
    node: *const careledger_node,
    network_id: *const c_char,
    out_tasks: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_tasks, "out_tasks") }?;
        let network = unsafe { named_network_arg(network_id, "network_id") }?;
        let tasks = node.lock()?.fl_tasks(&network)?;
        *out = json_bytes(&to_value(&tasks)?);
        Ok(())
    })
}

/// The privacy budget each site's dataset has spent in the network, and the
/// network's effective policy. Unfinished tasks count with all their rounds.
///
/// `*out_budget` receives UTF-8 JSON, on success only:
/// `{ "policy": null | { "max_epsilon": 8.0, "delta": 1e-5, "allow_non_private": true },
///    "sites": [ { "site": "<author hex>", "name": "hospital-a.example",
///      "compositions": [ { "sampling_rate": 0.5, "noise_multiplier": 2.0, "steps": 4 } ],
///      "non_private_rounds": 1, "epsilon": 1.93, "delta": 1e-5 } ] }`.
///
/// Ownership: inputs borrowed; the caller owns `*out_budget` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns the statuses of `careledger_fl_tasks`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_budget` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_fl_budget(
    node: *const careledger_node,
    network_id: *const c_char,
    out_budget: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_budget, "out_budget") }?;
        let network = unsafe { named_network_arg(network_id, "network_id") }?;
        let node = node.lock()?;
        let policy = node.fl_policy(&network)?;
        let sites = node.fl_budget(&network)?;
        *out = json_bytes(&json!({ "policy": to_value(&policy)?, "sites": to_value(&sites)? }));
        Ok(())
    })
}

/// One step of a site in every open task of the study network that names
/// this node: with `source_network_id` as its data network, publishes
/// whatever the tasks need from it now (keys and dataset facts, shares,
/// a masked input, unmask shares). Before reading any record the site checks
/// the privacy budget itself. Entries go out with the study's next sync.
///
/// `*out_actions` receives UTF-8 JSON, on success only: an array (empty when
/// there is nothing to do yet) of `{ "action": "keys", "task": "<hex>",
/// "samples": 142 }`, `{ "action": "shares", "task" }`, `{ "action": "masked",
/// "task", "round": 2 }` or `{ "action": "unmask", "task", "round": 2 }`.
///
/// Ownership: inputs borrowed; the caller owns `*out_actions` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_FL_BUDGET_EXCEEDED` and
/// `CARELEDGER_FL_NON_PRIVATE_REFUSED` (the site refuses; nothing written or
/// read), `CARELEDGER_FL_PROTOCOL`, `CARELEDGER_EMPTY_DATASET` (consent left
/// no record), `CARELEDGER_TRAINING_FAILED` (the spec does not fit the
/// records), `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_actions` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_fl_site_step(
    node: *const careledger_node,
    study_network_id: *const c_char,
    source_network_id: *const c_char,
    now_ms: u64,
    out_actions: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_actions, "out_actions") }?;
        let study = unsafe { named_network_arg(study_network_id, "study_network_id") }?;
        let source = unsafe { named_network_arg(source_network_id, "source_network_id") }?;
        let actions = node
            .lock()?
            .fl_site_step(&study, &source, time_arg(now_ms))?;
        *out = json_bytes(&to_value(&actions)?);
        Ok(())
    })
}

/// Writes a federated task's plan as its coordinator. `request_json` is
/// `{"objective": "moments" | {"logistic_regression": {"rule": {"fed_avg":
/// {"local_steps": 10, "learning_rate": 0.5}} | {"dp_sgd": {"learning_rate":
/// 1.0, "dp": {"clip_norm": 1.0, "noise_multiplier": 2.0, "sampling_rate":
/// 0.5}}}, "l2": 0.001}}, "sites": ["<author id hex>", …], "rounds": 20,
/// "spec": {feature spec}}` with optional `threshold`, `purpose`, `scaling`
/// or `scaling_from` (a moments task's last round card), `frac_bits`,
/// `delta` and `phase_timeout_ms`. A plan that would take a site's dataset
/// above the network's budget policy is refused and nothing is written.
///
/// On success only, `*out_plan` receives `{ "plan_entry": "<hex>", "plan":
/// { the plan: "task", "participants", "threshold", "prior", "projected", … } }`.
///
/// Ownership: inputs borrowed; the caller owns `*out_plan` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_FL_INVALID_PLAN`,
/// `CARELEDGER_FL_BUDGET_EXCEEDED`, `CARELEDGER_FL_NON_PRIVATE_REFUSED`,
/// `CARELEDGER_ANALYTICS_ENTRY_INVALID` (request JSON), `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_plan` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_fl_plan(
    node: *const careledger_node,
    study_network_id: *const c_char,
    request_json: *const c_char,
    now_ms: u64,
    out_plan: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_plan, "out_plan") }?;
        let study = unsafe { named_network_arg(study_network_id, "study_network_id") }?;
        let request = PlanRequest::from_json(unsafe { arg_str(request_json, "request_json") }?)?;
        let (entry, plan) = node.lock()?.fl_plan(&study, &request, time_arg(now_ms))?;
        *out = json_bytes(&json!({ "plan_entry": entry.to_hex(), "plan": to_value(&plan)? }));
        Ok(())
    })
}

/// One step of the coordinator in every open task it planned: confirms the
/// setup, names a round's survivors (all active sites, or after the phase
/// timeout those in time if at least the threshold), writes round cards.
///
/// `*out_actions` receives UTF-8 JSON, on success only: an array of
/// `{ "action": "survivors", "task", "round", "survivors": 3, "dropped": 0 }`
/// or `{ "action": "card", "task", "round", "entry": "<hex>", "last": false,
/// "completed": true }`.
///
/// Ownership, thread safety and statuses as `careledger_fl_site_step`.
///
/// # Safety
/// `node` NULL or live; `study_network_id` NULL or NUL-terminated; `out_actions` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_fl_coordinator_step(
    node: *const careledger_node,
    study_network_id: *const c_char,
    now_ms: u64,
    out_actions: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_actions, "out_actions") }?;
        let study = unsafe { named_network_arg(study_network_id, "study_network_id") }?;
        let actions = node.lock()?.fl_coordinator_step(&study, time_arg(now_ms))?;
        *out = json_bytes(&to_value(&actions)?);
        Ok(())
    })
}

/// Re-checks a round card from this node's ledger: the plan and its budget
/// figures, the setup, the masked inputs and survivors it names, every
/// revealed share against its dealer's commitments, the exact sum, the
/// parameters, the budget spent and, on the last round, the model.
///
/// `*out_verification` receives UTF-8 JSON on `CARELEDGER_OK` and on
/// `CARELEDGER_FL_ROUND_MISMATCH`: `{ "confirmed": false, "mismatch":
/// "aggregate" | "plan" | "setup" | "inputs" | "survivors" | "shares" |
/// "parameters" | "budget" | "model" | null, "site": "hospital-b.example" |
/// null, "detail": "…" | null, "passed": ["plan", "setup", …] }`.
///
/// Ownership: inputs borrowed; the caller owns `*out_verification` (free
/// with `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK` (confirmed), `CARELEDGER_FL_ROUND_MISMATCH`,
/// `CARELEDGER_FL_UNKNOWN_ROUND_CARD`, `CARELEDGER_FL_UNKNOWN_TASK`,
/// `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_verification` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_fl_verify_round(
    node: *const careledger_node,
    network_id: *const c_char,
    card_entry_id: *const c_char,
    out_verification: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_verification, "out_verification") }?;
        let network = unsafe { named_network_arg(network_id, "network_id") }?;
        let card = unsafe { entry_arg(card_entry_id, "card_entry_id") }?;
        let verification: RoundVerification = node.lock()?.fl_verify_round(&network, &card)?;
        *out = json_bytes(&to_value(&verification)?);
        match (verification.mismatch, &verification.detail) {
            (None, _) => Ok(()),
            (Some(step), detail) => Err(Failure::new(
                CARELEDGER_FL_ROUND_MISMATCH,
                format!("{}: {}", step.name(), detail.clone().unwrap_or_default()),
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::test_support::{last_error, take_json, take_text, TestNode};

    #[test]
    fn policy_tasks_budget_and_steps_from_c() {
        let t = TestNode::new("hospital-a.example");
        let mut out = null_mut();
        // SAFETY (every call): valid pointers or deliberate NULLs.
        let status = unsafe {
            careledger_fl_policy_set(t.node, t.network.as_ptr(), 8.0, 1e-5, 1, 0, &mut out)
        };
        assert_eq!(status, CARELEDGER_OK, "{}", last_error());
        assert_eq!(take_text(out).len(), 64);
        let status = unsafe { careledger_fl_budget(t.node, t.network.as_ptr(), &mut out) };
        assert_eq!(status, CARELEDGER_OK);
        let budget = take_json(out);
        assert_eq!(budget["policy"]["max_epsilon"], 8.0);
        assert_eq!(budget["sites"], json!([]));
        let status = unsafe { careledger_fl_tasks(t.node, t.network.as_ptr(), &mut out) };
        assert_eq!(status, CARELEDGER_OK);
        assert_eq!(take_json(out), json!([]));
        let status = unsafe {
            careledger_fl_site_step(t.node, t.network.as_ptr(), t.network.as_ptr(), 0, &mut out)
        };
        assert_eq!(status, CARELEDGER_OK);
        assert_eq!(take_json(out), json!([]));
        let status =
            unsafe { careledger_fl_coordinator_step(t.node, t.network.as_ptr(), 0, &mut out) };
        assert_eq!(status, CARELEDGER_OK);
        assert_eq!(take_json(out), json!([]));

        // Refusals and typed errors; outputs untouched on failure.
        out = null_mut();
        let status = unsafe {
            careledger_fl_policy_set(t.node, t.network.as_ptr(), -1.0, 1e-5, 1, 0, &mut out)
        };
        assert_eq!(status, CARELEDGER_ANALYTICS_ENTRY_INVALID);
        assert!(out.is_null());
        let card = "ab".repeat(32);
        let card = std::ffi::CString::new(card).unwrap();
        let status = unsafe {
            careledger_fl_verify_round(t.node, t.network.as_ptr(), card.as_ptr(), &mut out)
        };
        assert_eq!(status, CARELEDGER_FL_UNKNOWN_ROUND_CARD);
        assert!(out.is_null());
        let bad = c"{\"objective\":\"moments\",\"sites\":[],\"rounds\":1,\"spec\":{}}";
        let status =
            unsafe { careledger_fl_plan(t.node, t.network.as_ptr(), bad.as_ptr(), 0, &mut out) };
        assert_eq!(
            status,
            CARELEDGER_ANALYTICS_ENTRY_INVALID,
            "{}",
            last_error()
        );
        let status = unsafe { careledger_fl_tasks(null(), t.network.as_ptr(), &mut out) };
        assert_eq!(status, CARELEDGER_NULL_PARAMETER);
        let status = unsafe { careledger_fl_budget(t.node, null(), &mut out) };
        assert_eq!(status, CARELEDGER_NULL_PARAMETER);
        let status =
            unsafe { careledger_fl_site_step(t.node, t.network.as_ptr(), null(), 0, &mut out) };
        assert_eq!(status, CARELEDGER_NULL_PARAMETER);
        let status = unsafe { careledger_fl_tasks(t.node, t.network.as_ptr(), null_mut()) };
        assert_eq!(status, CARELEDGER_NULL_PARAMETER);
        assert!(out.is_null());
    }
}
