//! Re-checking a network's ledger.

use std::ffi::c_char;

use crate::boundary::{arg_out_opt, boundary};
use crate::node::{careledger_node, network_arg, node_arg};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// The result of re-checking a network's whole ledger.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct careledger_ledger_report {
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
    /// Record changes whose key this node no longer or never held (normal
    /// after removal from a network).
    pub record_keys_missing: u64,
    /// Forks (two entries by one author at one position) kept as evidence.
    pub forks: u64,
    /// Authors flagged for misbehaviour.
    pub flagged: u64,
    /// Problems found (the detail names the first).
    pub problems: u64,
}

/// Re-checks every stored entry of the network: hash chains, signatures
/// against the membership at each entry's epoch, seals, and record keys.
///
/// Ownership: inputs borrowed; `out_report` may be NULL, otherwise it is the
/// caller's and is written on `CARELEDGER_OK` and `CARELEDGER_LEDGER_PROBLEMS`.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK` (clean), `CARELEDGER_LEDGER_PROBLEMS` (problems,
/// forks or flagged authors; the detail names the first problem),
/// `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_ledger_verify(
    node: *const careledger_node,
    network_id: *const c_char,
    out_report: *mut careledger_ledger_report,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let report = node.lock()?.verify_ledger(&network)?;
        if let Some(out) = unsafe { arg_out_opt(out_report) } {
            *out = careledger_ledger_report {
                entries: report.entries as u64,
                authors: report.authors as u64,
                signatures_ok: report.signatures_ok as u64,
                seals_ok: report.seals_ok as u64,
                record_seals_ok: report.record_seals_ok as u64,
                record_keys_missing: report.record_keys_missing as u64,
                forks: report.forks,
                flagged: report.flagged as u64,
                problems: report.problems.len() as u64,
            };
        }
        if report.is_clean() {
            return Ok(());
        }
        let first = report.problems.first().map_or_else(
            || {
                format!(
                    "{} fork(s), {} flagged author(s)",
                    report.forks, report.flagged
                )
            },
            |p| format!("entry {}: {}", p.index, p.problem),
        );
        Err(Failure::new(CARELEDGER_LEDGER_PROBLEMS, first))
    })
}
