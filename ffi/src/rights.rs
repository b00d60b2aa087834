//! The patient's rights in the C API: erasure, grants that expire by
//! themselves (the clock-driven tick), and the store audit.

use std::ffi::c_char;

use careledger::body::EraseScope;
use careledger::node::{EraseReport, TickReport};
use serde_json::{json, Value};

use crate::args::{json_bytes, time_arg};
use crate::boundary::{arg_bytes, arg_out, arg_str, boundary};
use crate::buffers::careledger_bytes;
use crate::node::{careledger_node, network_arg, node_arg};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

fn erase_json(report: &EraseReport) -> Value {
    json!({
        "networks": report.networks.iter().map(|n| n.to_hex()).collect::<Vec<_>>(),
        "keys_shredded": report.keys_shredded,
        "resources_kept": report.resources_kept,
        "entries": report.entries,
        "by_patient": report.by_patient,
    })
}

fn tick_json(report: &TickReport) -> Value {
    json!({
        "charts_decided": report.charts_decided,
        "records_cut_off": report.records_cut_off,
        "entries": report.entries,
        "next_due_ms": report.next_due_ms,
    })
}

/// `[{"resourceType": "...", "id": "..."}, ...]`, at least one.
fn resources_arg(bytes: &[u8]) -> Result<Vec<(String, String)>, Failure> {
    let invalid = |why: &str| {
        Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`resources_json` {why}: expected [{{\"resourceType\": …, \"id\": …}}, …]"),
        )
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|_| invalid("is not JSON"))?;
    let items = value.as_array().ok_or_else(|| invalid("is not an array"))?;
    if items.is_empty() {
        return Err(invalid("is empty"));
    }
    items
        .iter()
        .map(|item| {
            let field = |name: &str| {
                item.get(name)
                    .and_then(Value::as_str)
                    .filter(|text| !text.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(&format!("has an item without a `{name}` string")))
            };
            Ok((field("resourceType")?, field("id")?))
        })
        .collect()
}

/// Erases a patient's chart by crypto-shredding: writes an erase entry and
/// deletes, at this node, every key of the chart and its materialised copy
/// (every member does the same when it receives the entry; a node that
/// shared the chart into other networks erases it there too). The
/// ciphertext stays in the ledger, unreadable; ledger verification still
/// passes. Nothing already decrypted elsewhere can be taken back.
///
/// `resources_json` NULL erases the whole chart; otherwise it lists the
/// resources to erase (`[{"resourceType": "Observation", "id": "o1"}]`, at
/// least one) and the rest of the chart is written again under a fresh key.
/// `now_ms` 0 means the system clock. `*out_report` receives JSON
/// `{"networks": [hex…], "keys_shredded": n, "resources_kept": n,
/// "entries": n, "by_patient": bool}` (`by_patient`: this node is one of the
/// patient's own nodes; otherwise the entry is marked as recorded on the
/// patient's behalf).
///
/// Ownership: inputs borrowed; the caller owns `*out_report` (free with
/// `careledger_bytes_free`), written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (network id, resources JSON),
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_UNKNOWN_PATIENT`, `CARELEDGER_CHART_ERASED` (erased already),
/// `CARELEDGER_UNKNOWN_RESOURCE`, `CARELEDGER_BEHIND_OWN_CHAIN`,
/// `CARELEDGER_RECORD_FAILED`, `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `resources_json`
/// NULL or valid for `resources_json_len` bytes; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_erase(
    node: *const careledger_node,
    network_id: *const c_char,
    patient_id: *const c_char,
    resources_json: *const u8,
    resources_json_len: usize,
    now_ms: u64,
    out_report: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_report, "out_report") }?;
        let network = unsafe { network_arg(network_id) }?;
        let patient = unsafe { arg_str(patient_id, "patient_id") }?;
        let scope = if resources_json.is_null() {
            EraseScope::Chart
        } else {
            let bytes = unsafe { arg_bytes(resources_json, resources_json_len, "resources_json") }?;
            EraseScope::Resources(resources_arg(bytes)?)
        };
        let report = node
            .lock()?
            .erase(&network, patient, scope, time_arg(now_ms))?;
        *out = json_bytes(&erase_json(&report));
        Ok(())
    })
}

/// Lists the charts erased in a network, as this node's tombstones show
/// them: JSON `[{"patient": id, "entry": hex, "author": hex, "time_ms": n,
/// "whole_chart": bool}, …]`, by patient id.
///
/// Ownership: inputs borrowed; the caller owns `*out_json` (free with
/// `careledger_bytes_free`), written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_erased_charts(
    node: *const careledger_node,
    network_id: *const c_char,
    out_json: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_json, "out_json") }?;
        let network = unsafe { network_arg(network_id) }?;
        let charts = node.lock()?.erased_charts(&network)?;
        let list: Vec<Value> = charts
            .iter()
            .map(|chart| {
                json!({
                    "patient": chart.patient,
                    "entry": chart.entry.to_hex(),
                    "author": chart.author.to_hex(),
                    "time_ms": chart.time_ms,
                    "whole_chart": chart.whole_chart,
                })
            })
            .collect();
        *out = json_bytes(&Value::Array(list));
        Ok(())
    })
}

/// Takes the consent decisions that are due at `now_ms` (0: the system
/// clock): every chart this node shared into another network whose consent
/// period ended (or started) since is decided again, and cut off (its key
/// rotated and withheld) if nothing of it may go there any more. Call it
/// from a timer; `careledger_network_sync` calls it too, and a write into a
/// chart whose decision is due takes it first. Cheap when nothing is due.
/// `out_report` may be NULL; otherwise it receives JSON
/// `{"charts_decided": n, "records_cut_off": n, "entries": n,
/// "next_due_ms": n or null}` (when to call again at the latest).
///
/// Ownership: the caller owns `*out_report` (free with
/// `careledger_bytes_free`), written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`,
/// `CARELEDGER_RECORD_FAILED`, `CARELEDGER_INVALID_CONSENT`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_tick(
    node: *const careledger_node,
    now_ms: u64,
    out_report: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let report = node.lock()?.tick(time_arg(now_ms))?;
        if !out_report.is_null() {
            let out = unsafe { arg_out(out_report, "out_report") }?;
            *out = json_bytes(&tick_json(&report));
        }
        Ok(())
    })
}

/// Audits the whole store file (reads everything): SQLite's integrity
/// check, every row's MAC, every table's digest (which shows rows removed or
/// put back from an older copy), the schema and the counters. Opening a
/// store and every read check only what they touch; this is for audits.
/// `out_report` may be NULL; otherwise it receives JSON `{"tables": n,
/// "rows": n, "problems": [text…], "clean": bool}` on `CARELEDGER_OK` and
/// on `CARELEDGER_STORE_CORRUPT` (problems found; the detail names the first).
/// Problems name tables, never values.
///
/// Ownership: the caller owns `*out_report` (free with `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK` (clean), `CARELEDGER_STORE_CORRUPT`,
/// `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_store_verify(
    node: *const careledger_node,
    out_report: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let report = node.lock()?.store().verify()?;
        if !out_report.is_null() {
            let out = unsafe { arg_out(out_report, "out_report") }?;
            *out = json_bytes(&json!({
                "tables": report.tables,
                "rows": report.rows,
                "problems": report.problems,
                "clean": report.is_clean(),
            }));
        }
        match report.problems.first() {
            None => Ok(()),
            Some(first) => Err(Failure::new(CARELEDGER_STORE_CORRUPT, first.clone())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_are_checked() {
        assert_eq!(
            resources_arg(br#"[{"resourceType":"Observation","id":"o1"}]"#).unwrap(),
            vec![("Observation".to_owned(), "o1".to_owned())]
        );
        for bad in [
            &b"[]"[..],
            b"{}",
            b"nope",
            br#"[{"id":"o1"}]"#,
            br#"[{"resourceType":"","id":"x"}]"#,
        ] {
            assert_eq!(
                resources_arg(bad).unwrap_err().status,
                CARELEDGER_INVALID_ARGUMENT
            );
        }
    }
}
