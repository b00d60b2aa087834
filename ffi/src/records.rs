//! Patient records: FHIR in and out.

use std::ffi::c_char;

use careledger::node::ExportFormat;

use crate::boundary::{arg_bytes, arg_out, arg_out_opt, arg_str, boundary};
use crate::buffers::{careledger_bytes, careledger_string_list};
use crate::node::{careledger_node, network_arg, node_arg, now_ms};
use crate::status::careledger_status;

/// What an import did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct careledger_import_report {
    /// FHIR resources parsed.
    pub resources: u64,
    /// Patients (records) touched.
    pub patients: u64,
    /// Record changes written (records whose content changed).
    pub changes: u64,
    /// Ledger entries written (changes plus key grants).
    pub entries: u64,
}

/// Imports FHIR R4 resources into the network's patient records: a Bundle
/// (transaction, batch, collection or searchset) or Bulk NDJSON, detected from
/// the content. All or nothing: if any resource is invalid nothing is stored.
/// The changes are sealed into ledger entries and queued for the relay.
///
/// Parameters: `source_name` names the input in error details (e.g. the file
/// name); `data`/`data_len` the bytes; `out_report` may be NULL, otherwise it
/// receives the counts on success only.
///
/// Ownership: inputs borrowed for the call; `*out_report` is the caller's.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`
/// (`network_id`, `source_name`), `CARELEDGER_INVALID_ARGUMENT`,
/// `CARELEDGER_INVALID_FHIR` (the detail names the first problem by source,
/// line and field), `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_RECORD_FAILED`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `data` NULL or valid
/// for `data_len` bytes; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_import_fhir(
    node: *const careledger_node,
    network_id: *const c_char,
    source_name: *const c_char,
    data: *const u8,
    data_len: usize,
    out_report: *mut careledger_import_report,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let source = unsafe { arg_str(source_name, "source_name") }?;
        let data = unsafe { arg_bytes(data, data_len, "data") }?;
        let report = node.lock()?.import_fhir(&network, source, data, now_ms())?;
        if let Some(out) = unsafe { arg_out_opt(out_report) } {
            *out = careledger_import_report {
                resources: report.resources as u64,
                patients: report.patients as u64,
                changes: report.changes as u64,
                entries: report.entries as u64,
            };
        }
        Ok(())
    })
}

/// Exports a patient's chart as a canonical FHIR R4 Bundle (type
/// `collection`, UTF-8 JSON).
///
/// Ownership: inputs borrowed; the caller owns `*out_bundle` (free with
/// `careledger_bytes_free`; `careledger_bytes_str` reads it as text),
/// written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_UNKNOWN_PATIENT`, `CARELEDGER_RECORD_FAILED`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_bundle` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_export_patient(
    node: *const careledger_node,
    network_id: *const c_char,
    patient_id: *const c_char,
    out_bundle: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_bundle, "out_bundle") }?;
        let network = unsafe { network_arg(network_id) }?;
        let patient = unsafe { arg_str(patient_id, "patient_id") }?;
        let bundle = node
            .lock()?
            .export_patient(&network, patient, ExportFormat::Bundle)?;
        *out = careledger_bytes::boxed(bundle.into_bytes());
        Ok(())
    })
}

/// Lists the ids of the patients with a record in the network (sorted).
///
/// Ownership: the caller owns `*out_patient_ids` (free with
/// `careledger_string_list_free`), written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_patient_ids` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_patients(
    node: *const careledger_node,
    network_id: *const c_char,
    out_patient_ids: *mut *mut careledger_string_list,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_patient_ids, "out_patient_ids") }?;
        let network = unsafe { network_arg(network_id) }?;
        let patients = node.lock()?.patients(&network)?;
        *out = careledger_string_list::boxed(&patients);
        Ok(())
    })
}
