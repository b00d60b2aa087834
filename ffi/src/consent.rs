//! Patient consent: recording grants and revocations in a chart, reading
//! them back, and the uses consent governs (sharing into another network,
//! exporting to a grantee).
//!
//! Flow: the care network's institution (on the patient's behalf) or the
//! patient's own node records a grant with `careledger_consent_grant`;
//! `careledger_network_share` then copies into a study network only what
//! the grants permit, and cuts off charts nothing of which may go there any
//! more; `careledger_consent_revoke` followed by another share withdraws a
//! patient. Outputs with lists are library-owned JSON (`careledger_bytes`).

use std::ffi::c_char;

use careledger::consent::{Consent, ConsentDraft, ConsentSource, Grantee, Period, Provision};
use careledger::entry::AuthorId;
use careledger::node::{ExportFormat, NetworkId, PatientConsent, ShareReport};
use serde_json::{json, Value};

use crate::args::{author_arg, json_bytes, named_network_arg, purpose_arg, time_arg};
use crate::boundary::{arg_out, arg_out_opt, arg_str, boundary};
use crate::buffers::careledger_bytes;
use crate::node::{careledger_node, network_arg, node_arg};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// Last millisecond of 9999-12-31 (UTC): FHIR dates end there.
const LAST_FHIR_MS: u64 = 253_402_300_799_999;

fn grantee(kind: &str, id: &str) -> Result<Grantee, Failure> {
    let invalid = |what: &str| {
        Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`grantee_id` is not {what}"),
        )
    };
    match kind {
        "network" => NetworkId::from_hex(id)
            .map(Grantee::Network)
            .ok_or_else(|| invalid("a network id (hex)")),
        "node" => AuthorId::from_hex(id)
            .map(Grantee::Node)
            .ok_or_else(|| invalid("an author id (64 hex characters)")),
        _ => Err(Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            "`grantee_kind` must be \"network\" or \"node\"",
        )),
    }
}

/// A time for a consent field: `None` for 0, else within FHIR's years.
fn fhir_ms(ms: u64, field: &str) -> Result<Option<i64>, Failure> {
    match ms {
        0 => Ok(None),
        ms if ms <= LAST_FHIR_MS => Ok(Some(ms as i64)),
        _ => Err(Failure::new(
            CARELEDGER_INVALID_CONSENT,
            format!("`{field}`: must lie in years 0001-9999 (at most {LAST_FHIR_MS} ms)"),
        )),
    }
}

fn period(start_ms: u64, end_ms: u64) -> Result<Period, Failure> {
    Ok(Period {
        start_ms: fhir_ms(start_ms, "provision.period.start")?,
        end_ms: fhir_ms(end_ms, "provision.period.end")?,
    })
}

/// Resource types from a comma-separated list; "" means every type.
fn parse_classes(list: &str) -> Result<Vec<String>, Failure> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|item| match item.trim() {
            "" => Err(Failure::new(
                CARELEDGER_INVALID_ARGUMENT,
                "`classes` has an empty item (use \"\" alone for every resource type)",
            )),
            class => Ok(class.to_owned()),
        })
        .collect()
}

fn consent_json(entry: &PatientConsent) -> Value {
    let (source, recorder) = match &entry.source {
        ConsentSource::PatientNode(author) => ("patient", author),
        ConsentSource::OnBehalf { recorder } => ("on_behalf", recorder),
    };
    json!({
        "id": entry.consent.id(),
        "status": entry.consent.status().code(),
        "scope": entry.consent.scope().code(),
        "source": source,
        "recorded_by": recorder.to_hex(),
        "mark_matches": entry.mark_matches,
        "resource": entry.consent.to_fhir(),
    })
}

/// Records a consent in a patient's chart granting one grantee one purpose
/// on some resource types, for a period. Written by a node the chart lists
/// as the patient's own (`careledger_patient_link_node`), it is the
/// patient's; written by any other member (an institution), it is marked as
/// recorded on the patient's behalf by that node. Recording a consent with
/// an id already in the chart replaces it.
///
/// Parameters: `consent_id` the Consent resource id (`[A-Za-z0-9-.]{1,64}`);
/// `patient_id` a patient with a record in the network; `grantee_kind`
/// `"network"` (every member acting in that network, e.g. a study) or
/// `"node"` (one node), with `grantee_id` its id in hex; `purpose` one
/// ActReason code (`HRESCH` research, `TREAT` treatment, `CLMATTCH` claims,
/// …); `classes` comma-separated FHIR resource types (`"Observation,Condition"`),
/// `""` for every type; `start_ms`/`end_ms` the period, Unix milliseconds,
/// both inclusive, 0 for an open end; `now_ms` when the consent is given
/// (`Consent.dateTime`) and written (0 = the system clock); `out_consent` receives the consent as stored, FHIR R4
/// Consent JSON (with the `urn:careledger:recorded-on-behalf-by` extension
/// when recorded on the patient's behalf), on success only.
///
/// Ownership: inputs borrowed for the call; the caller owns `*out_consent`
/// (free with `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (network or grantee id, grantee kind, purpose,
/// classes), `CARELEDGER_INVALID_CONSENT` (consent or patient id, resource
/// type; a period or `now_ms` outside years 0001–9999, or starting after it
/// ends), `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_UNKNOWN_PATIENT`, `CARELEDGER_RECORD_FAILED`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_consent` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_consent_grant(
    node: *const careledger_node,
    network_id: *const c_char,
    consent_id: *const c_char,
    patient_id: *const c_char,
    grantee_kind: *const c_char,
    grantee_id: *const c_char,
    purpose: *const c_char,
    classes: *const c_char,
    start_ms: u64,
    end_ms: u64,
    now_ms: u64,
    out_consent: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_consent, "out_consent") }?;
        let network = unsafe { network_arg(network_id) }?;
        let consent_id = unsafe { arg_str(consent_id, "consent_id") }?;
        let patient = unsafe { arg_str(patient_id, "patient_id") }?;
        let kind = unsafe { arg_str(grantee_kind, "grantee_kind") }?;
        let grantee_id = unsafe { arg_str(grantee_id, "grantee_id") }?;
        let purpose = unsafe { purpose_arg(purpose, "purpose") }?;
        let classes = parse_classes(unsafe { arg_str(classes, "classes") }?)?;
        let grantee = grantee(kind, grantee_id)?;
        // As `Consent::grant` builds it, with either end of the period open.
        let provision = Provision {
            purposes: vec![purpose],
            classes,
            period: period(start_ms, end_ms)?,
            ..Provision::permit().actor(grantee)
        };
        let now_ms = time_arg(now_ms);
        let consent = ConsentDraft {
            date_time_ms: fhir_ms(now_ms, "dateTime")?,
            ..ConsentDraft::new(consent_id, patient, provision)
        }
        .build()?;
        let stored = node.lock()?.record_consent(&network, &consent, now_ms)?;
        *out = careledger_bytes::boxed(stored.to_json().into_bytes());
        Ok(())
    })
}

/// Revokes a consent: stores it again with status `inactive` under the same
/// id, so it no longer permits anything. Revocation is never retroactive:
/// what was shared stays shared until the next `careledger_network_share`
/// cuts the patient off.
///
/// Parameters: `patient_id` and `consent_id` name a readable consent in the
/// patient's chart; `now_ms` the time of writing (0 = the system clock).
///
/// Ownership: inputs borrowed for the call.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_CONSENT`,
/// `CARELEDGER_INVALID_CONSENT` (the consent in the chart cannot be read),
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER`,
/// `CARELEDGER_UNKNOWN_PATIENT`, `CARELEDGER_RECORD_FAILED`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn careledger_consent_revoke(
    node: *const careledger_node,
    network_id: *const c_char,
    patient_id: *const c_char,
    consent_id: *const c_char,
    now_ms: u64,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let patient = unsafe { arg_str(patient_id, "patient_id") }?;
        let consent_id = unsafe { arg_str(consent_id, "consent_id") }?;
        let mut node = node.lock()?;
        let chart = node.consents(&network, patient)?;
        let consent: Consent = match chart
            .consents
            .into_iter()
            .find(|c| c.consent.id() == consent_id)
        {
            Some(found) => found.consent,
            None if chart.unreadable.iter().any(|id| id == consent_id) => {
                return Err(Failure::new(
                    CARELEDGER_INVALID_CONSENT,
                    "the consent in the chart cannot be read, so it cannot be revoked; record a \
                     replacement under the same id",
                ))
            }
            None => {
                return Err(Failure::new(
                    CARELEDGER_UNKNOWN_CONSENT,
                    "no consent with that id in the patient's chart",
                ))
            }
        };
        node.record_consent(&network, &consent.revoked(), time_arg(now_ms))?;
        Ok(())
    })
}

/// Lists the consents in a patient's chart with who recorded each.
///
/// `*out_consents` receives UTF-8 JSON, on success only:
///
/// ```text
/// { "consents": [ { "id": "c-1", "status": "active" | "inactive" | …,
///                   "scope": "patient-privacy" | "research" | …,
///                   "source": "patient" | "on_behalf",
///                   "recorded_by": "<64 hex: the node that wrote it>",
///                   "mark_matches": true,   (false: the resource misstates who recorded it)
///                   "resource": { FHIR R4 Consent } } ],
///   "unreadable": [ "<ids of Consent resources that cannot be read>" ] }
/// ```
///
/// A chart with an unreadable consent is never shared or used for training
/// (fail closed).
///
/// Ownership: inputs borrowed; the caller owns `*out_consents` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_UNKNOWN_PATIENT`, `CARELEDGER_RECORD_FAILED`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_consents` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_consents(
    node: *const careledger_node,
    network_id: *const c_char,
    patient_id: *const c_char,
    out_consents: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_consents, "out_consents") }?;
        let network = unsafe { network_arg(network_id) }?;
        let patient = unsafe { arg_str(patient_id, "patient_id") }?;
        let chart = node.lock()?.consents(&network, patient)?;
        let consents: Vec<Value> = chart.consents.iter().map(consent_json).collect();
        *out = json_bytes(&json!({ "consents": consents, "unreadable": chart.unreadable }));
        Ok(())
    })
}

/// Lists `node_author_id` (a patient's phone) as one of the patient's own
/// nodes in the chart's Patient resource, so consents that node signs count
/// as the patient's rather than as recorded on their behalf.
///
/// Parameters: `now_ms` the time of writing (0 = the system clock);
/// `out_added` may be NULL, otherwise it receives (on success only) true if
/// the node was added, false if it was listed already (nothing written).
///
/// Ownership: inputs borrowed; `*out_added` is the caller's.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (ids not hex), `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_UNKNOWN_PATIENT`,
/// `CARELEDGER_RECORD_FAILED` (no Patient resource with the patient's id),
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_added` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_patient_link_node(
    node: *const careledger_node,
    network_id: *const c_char,
    patient_id: *const c_char,
    node_author_id: *const c_char,
    now_ms: u64,
    out_added: *mut bool,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let patient = unsafe { arg_str(patient_id, "patient_id") }?;
        let author = unsafe { author_arg(node_author_id, "node_author_id") }?;
        let added = node
            .lock()?
            .link_patient_node(&network, patient, &author, time_arg(now_ms))?;
        if let Some(out) = unsafe { arg_out_opt(out_added) } {
            *out = added;
        }
        Ok(())
    })
}

/// Shares the charts of network `from_network_id` into `to_network_id`
/// (e.g. a study), each resource only if consent permits `purpose` for
/// every other member of the target at `now_ms`. Consents that permitted
/// something travel along, and so do later versions of consents already
/// shared (a revocation reaches the study). A chart nothing of which may go
/// any more is cut off: its key in the target is rotated and withheld, so
/// the other members cannot read anything this node writes to it from then
/// on. Running it again with nothing changed writes nothing. The entries go
/// out with the target network's next sync.
///
/// `*out_report` receives UTF-8 JSON, on success only:
///
/// ```text
/// { "patients": 60,            charts of the source network looked at
///   "patients_shared": 59,     with at least one resource shared
///   "resources_permitted": 118, "resources_withheld": 2,
///   "records_cut_off": 1,      keys rotated and withheld in this run
///   "records_restored": 0,     keys granted again (consent permits again)
///   "unreadable_charts": 0,    skipped: a Consent in them cannot be read
///   "entries": 12,             ledger entries written to the target
///   "consent_ids": [ "c-p01", … ] }   relied on, sorted
/// ```
///
/// Ownership: inputs borrowed; the caller owns `*out_report` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_SAME_NETWORK`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_NOT_A_MEMBER` (of either network),
/// `CARELEDGER_RECORD_FAILED`, `CARELEDGER_MLS_FAILED`, `CARELEDGER_STORE_IO`
/// (nothing was written), `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_share(
    node: *const careledger_node,
    from_network_id: *const c_char,
    to_network_id: *const c_char,
    purpose: *const c_char,
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
        let report = node
            .lock()?
            .share_to_network(&from, &to, purpose, time_arg(now_ms))?;
        *out = json_bytes(&share_report_json(&report));
        Ok(())
    })
}

/// The JSON of a share report, as `careledger_network_share` documents it.
pub(crate) fn share_report_json(report: &ShareReport) -> Value {
    json!({
        "patients": report.patients,
        "patients_shared": report.patients_shared,
        "resources_permitted": report.resources_permitted,
        "resources_withheld": report.resources_withheld,
        "records_cut_off": report.records_cut_off,
        "records_restored": report.records_restored,
        "unreadable_charts": report.unreadable_charts,
        "entries": report.entries,
        "consent_ids": report.consent_ids,
    })
}

/// Exports a patient's chart with only what consent permits a grantee to use
/// for `purpose` at `now_ms` (charts without a covering consent fall to the
/// network default: treatment by the home network only). Consents themselves
/// are left out. A chart with an unreadable consent exports nothing.
///
/// Parameters: the grantee is `grantee_network_id` and/or `grantee_node_id`
/// (hex; either may be NULL, not both): the requester acting in that network,
/// as that node. `now_ms` 0 means the system clock.
///
/// `*out_export` receives UTF-8 JSON, on success only:
///
/// ```text
/// { "bundle": { FHIR R4 Bundle, type collection, the permitted resources },
///   "included": 2, "withheld": 1, "consent_ids": [ "c-p01" ] }
/// ```
///
/// Ownership: inputs borrowed; the caller owns `*out_export` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER` (also: both grantee ids
/// NULL), `CARELEDGER_INVALID_UTF8`, `CARELEDGER_INVALID_ARGUMENT`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_UNKNOWN_PATIENT`,
/// `CARELEDGER_RECORD_FAILED`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_export` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_export_for_grantee(
    node: *const careledger_node,
    network_id: *const c_char,
    patient_id: *const c_char,
    grantee_network_id: *const c_char,
    grantee_node_id: *const c_char,
    purpose: *const c_char,
    now_ms: u64,
    out_export: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_export, "out_export") }?;
        let network = unsafe { network_arg(network_id) }?;
        let patient = unsafe { arg_str(patient_id, "patient_id") }?;
        let purpose = unsafe { purpose_arg(purpose, "purpose") }?;
        let mut grantees = Vec::new();
        if !grantee_network_id.is_null() {
            let id = unsafe { named_network_arg(grantee_network_id, "grantee_network_id") }?;
            grantees.push(Grantee::Network(id));
        }
        if !grantee_node_id.is_null() {
            grantees.push(Grantee::Node(unsafe {
                author_arg(grantee_node_id, "grantee_node_id")
            }?));
        }
        if grantees.is_empty() {
            return Err(Failure::new(
                CARELEDGER_NULL_PARAMETER,
                "`grantee_network_id` and `grantee_node_id` are both NULL",
            ));
        }
        let export = node.lock()?.export_for_grantee(
            &network,
            patient,
            &grantees,
            purpose,
            time_arg(now_ms),
            ExportFormat::Bundle,
        )?;
        let bundle: Value = serde_json::from_str(&export.text).map_err(|e| {
            Failure::new(
                CARELEDGER_RECORD_FAILED,
                format!("the exported bundle is not JSON: {e}"),
            )
        })?;
        *out = json_bytes(&json!({
            "bundle": bundle,
            "included": export.included,
            "withheld": export.withheld,
            "consent_ids": export.consent_ids,
        }));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::ptr::{null, null_mut};

    use careledger::node::ConsentError;

    use super::*;
    use crate::node::careledger_node_author_id;
    use crate::test_support::{c, last_error, synthetic_patients, take_json, TestNode};

    const STUDY: &str = "5757575757575757";

    /// Grants `purpose` on `classes` to the study network for a patient.
    fn grant(
        t: &TestNode,
        id: &str,
        patient: &str,
        purpose: &str,
        classes: &str,
    ) -> (careledger_status, *mut careledger_bytes) {
        let mut out = null_mut();
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_consent_grant(
                t.node,
                t.network.as_ptr(),
                c(id).as_ptr(),
                c(patient).as_ptr(),
                c"network".as_ptr(),
                c(STUDY).as_ptr(),
                c(purpose).as_ptr(),
                c(classes).as_ptr(),
                0,
                0,
                1_767_225_600_000,
                &mut out,
            )
        };
        (status, out)
    }

    fn consents(t: &TestNode, patient: &str) -> Value {
        let mut out = null_mut();
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_consents(t.node, t.network.as_ptr(), c(patient).as_ptr(), &mut out)
        };
        assert_eq!(status, CARELEDGER_OK, "{}", last_error());
        take_json(out)
    }

    #[test]
    fn consent_errors_map_to_their_statuses() {
        let cases = [
            (ConsentError::UnknownPatient, CARELEDGER_UNKNOWN_PATIENT),
            (ConsentError::SameNetwork, CARELEDGER_SAME_NETWORK),
            (ConsentError::Record("x".into()), CARELEDGER_RECORD_FAILED),
            (
                ConsentError::Network(careledger::node::NetworkError::NotAMember),
                CARELEDGER_NOT_A_MEMBER,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(Failure::from(error).status, status);
        }
    }

    #[test]
    fn grant_arguments_are_checked_before_anything_is_written() {
        let t = TestNode::new("hospital.example");
        t.import(&synthetic_patients(2));
        let mut out = null_mut();
        let call = |kind: &std::ffi::CStr,
                    grantee: &std::ffi::CStr,
                    purpose: &std::ffi::CStr,
                    classes: &std::ffi::CStr,
                    start: u64,
                    end: u64,
                    out: &mut *mut careledger_bytes| unsafe {
            careledger_consent_grant(
                t.node,
                t.network.as_ptr(),
                c"c-1".as_ptr(),
                c"p00".as_ptr(),
                kind.as_ptr(),
                grantee.as_ptr(),
                purpose.as_ptr(),
                classes.as_ptr(),
                start,
                end,
                0,
                out,
            )
        };
        let study = c(STUDY);
        let ok = (c"network", study.as_c_str(), c"HRESCH", c"");
        assert_eq!(
            call(c"group", ok.1, ok.2, ok.3, 0, 0, &mut out),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert!(last_error().contains("grantee_kind"));
        assert_eq!(
            call(ok.0, c"xyz", ok.2, ok.3, 0, 0, &mut out),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert_eq!(
            call(c"node", study.as_c_str(), ok.2, ok.3, 0, 0, &mut out),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert_eq!(
            call(ok.0, ok.1, c"", ok.3, 0, 0, &mut out),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert_eq!(
            call(ok.0, ok.1, c"HRESCH,TREAT", ok.3, 0, 0, &mut out),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert_eq!(
            call(ok.0, ok.1, ok.2, c"Observation,,Condition", 0, 0, &mut out),
            CARELEDGER_INVALID_ARGUMENT
        );
        assert_eq!(
            call(ok.0, ok.1, ok.2, c"not a type", 0, 0, &mut out),
            CARELEDGER_INVALID_CONSENT
        );
        assert_eq!(
            call(ok.0, ok.1, ok.2, ok.3, 2_000, 1_000, &mut out),
            CARELEDGER_INVALID_CONSENT
        );
        assert!(
            last_error().contains("provision.period"),
            "{}",
            last_error()
        );
        assert_eq!(
            call(ok.0, ok.1, ok.2, ok.3, 0, u64::MAX, &mut out),
            CARELEDGER_INVALID_CONSENT
        );
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_consent_grant(
                t.node,
                t.network.as_ptr(),
                c"c-1".as_ptr(),
                c"p00".as_ptr(),
                c"network".as_ptr(),
                study.as_ptr(),
                c"HRESCH".as_ptr(),
                c"".as_ptr(),
                0,
                0,
                u64::MAX,
                &mut out,
            )
        };
        assert_eq!(status, CARELEDGER_INVALID_CONSENT);
        assert!(last_error().contains("dateTime"), "{}", last_error());
        assert!(out.is_null(), "no output on failure");
        // SAFETY: NULL and bad UTF-8 arguments; every other pointer is valid.
        unsafe {
            let bad = c"p\xff";
            let status = careledger_consent_grant(
                null(),
                t.network.as_ptr(),
                c"c-1".as_ptr(),
                c"p00".as_ptr(),
                c"network".as_ptr(),
                study.as_ptr(),
                c"HRESCH".as_ptr(),
                c"".as_ptr(),
                0,
                0,
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_NULL_PARAMETER);
            assert!(last_error().contains("`node`"));
            let status = careledger_consent_grant(
                t.node,
                t.network.as_ptr(),
                c"c-1".as_ptr(),
                bad.as_ptr(),
                c"network".as_ptr(),
                study.as_ptr(),
                c"HRESCH".as_ptr(),
                c"".as_ptr(),
                0,
                0,
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_INVALID_UTF8);
            let status = careledger_consent_grant(
                t.node,
                t.network.as_ptr(),
                c"bad id!".as_ptr(),
                c"p00".as_ptr(),
                c"network".as_ptr(),
                study.as_ptr(),
                c"HRESCH".as_ptr(),
                c"".as_ptr(),
                0,
                0,
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_INVALID_CONSENT);
            assert!(!last_error().contains("bad id!"), "no values in details");
        }
        assert!(out.is_null());
        let (status, out) = grant(&t, "c-1", "nobody", "HRESCH", "");
        assert_eq!(status, CARELEDGER_UNKNOWN_PATIENT);
        assert!(out.is_null());
        assert_eq!(consents(&t, "p00")["consents"], serde_json::json!([]));
    }

    #[test]
    fn grant_list_revoke_and_link_round_trip() {
        let t = TestNode::new("hospital.example");
        t.import(&synthetic_patients(2));
        let (status, out) = grant(&t, "c-p00", "p00", "HRESCH", "Observation, Condition");
        assert_eq!(status, CARELEDGER_OK, "{}", last_error());
        let stored = take_json(out);
        assert_eq!(stored["resourceType"], "Consent");
        assert_eq!(stored["status"], "active");
        assert_eq!(stored["dateTime"], "2026-01-01", "when it was given");
        let mut author = [0 as c_char; 65];
        let mut len = 0;
        // SAFETY: buffer and length are valid.
        unsafe { careledger_node_author_id(t.node, author.as_mut_ptr(), 65, &mut len) };
        let author = unsafe { std::ffi::CStr::from_ptr(author.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned();
        // Recorded by an institution: marked on the patient's behalf.
        assert_eq!(
            stored["extension"][0]["valueIdentifier"]["value"],
            author.as_str()
        );
        assert_eq!(stored["provision"]["class"].as_array().unwrap().len(), 2);

        let listed = consents(&t, "p00");
        let entry = &listed["consents"][0];
        assert_eq!(listed["consents"].as_array().unwrap().len(), 1);
        assert_eq!(entry["id"], "c-p00");
        assert_eq!(entry["source"], "on_behalf");
        assert_eq!(entry["recorded_by"], author.as_str());
        assert_eq!(entry["mark_matches"], true);
        assert_eq!(listed["unreadable"], serde_json::json!([]));

        // SAFETY: every pointer is valid for the call.
        unsafe {
            let revoke = |consent: &std::ffi::CStr| {
                careledger_consent_revoke(
                    t.node,
                    t.network.as_ptr(),
                    c"p00".as_ptr(),
                    consent.as_ptr(),
                    0,
                )
            };
            assert_eq!(revoke(c"c-none"), CARELEDGER_UNKNOWN_CONSENT);
            assert_eq!(revoke(c"c-p00"), CARELEDGER_OK, "{}", last_error());
        }
        assert_eq!(consents(&t, "p00")["consents"][0]["status"], "inactive");

        // Once this node is listed as the patient's own, what it signs is the patient's.
        let mut added = false;
        // SAFETY: every pointer is valid for the call.
        unsafe {
            let link = |added: *mut bool| {
                careledger_patient_link_node(
                    t.node,
                    t.network.as_ptr(),
                    c"p01".as_ptr(),
                    c(&author).as_ptr(),
                    0,
                    added,
                )
            };
            assert_eq!(link(&mut added), CARELEDGER_OK, "{}", last_error());
            assert!(added);
            assert_eq!(link(&mut added), CARELEDGER_OK);
            assert!(!added, "listed already");
            assert_eq!(link(null_mut()), CARELEDGER_OK);
            let status = careledger_patient_link_node(
                t.node,
                t.network.as_ptr(),
                c"p01".as_ptr(),
                c"abc".as_ptr(),
                0,
                &mut added,
            );
            assert_eq!(status, CARELEDGER_INVALID_ARGUMENT);
        }
        let (status, out) = grant(&t, "c-p01", "p01", "HRESCH", "");
        assert_eq!(status, CARELEDGER_OK);
        assert!(take_json(out).get("extension").is_none());
        assert_eq!(consents(&t, "p01")["consents"][0]["source"], "patient");
    }

    #[test]
    fn export_and_share_check_their_arguments() {
        let t = TestNode::new("hospital.example");
        t.import(&synthetic_patients(2));
        let mut out = null_mut();
        // SAFETY: every pointer is valid for the call or deliberately NULL.
        unsafe {
            let status = careledger_export_for_grantee(
                t.node,
                t.network.as_ptr(),
                c"p00".as_ptr(),
                null(),
                null(),
                c"HRESCH".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_NULL_PARAMETER);
            let study = c(STUDY);
            let status = careledger_export_for_grantee(
                t.node,
                t.network.as_ptr(),
                c"p00".as_ptr(),
                study.as_ptr(),
                c"zz".as_ptr(),
                c"HRESCH".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_INVALID_ARGUMENT);
            assert!(last_error().contains("grantee_node_id"));
            // No consent: research by the study is denied by default, treatment by the home network allowed.
            let status = careledger_export_for_grantee(
                t.node,
                t.network.as_ptr(),
                c"p00".as_ptr(),
                study.as_ptr(),
                null(),
                c"HRESCH".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            let export = take_json(out);
            assert_eq!(
                (export["included"].as_u64(), export["withheld"].as_u64()),
                (Some(0), Some(3))
            );
            assert_eq!(export["bundle"]["resourceType"], "Bundle");
            let mut out = null_mut();
            let status = careledger_export_for_grantee(
                t.node,
                t.network.as_ptr(),
                c"p00".as_ptr(),
                t.network.as_ptr(),
                null(),
                c"TREAT".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            assert_eq!(take_json(out)["included"].as_u64(), Some(3));

            let mut out = null_mut();
            let status = careledger_network_share(
                t.node,
                t.network.as_ptr(),
                t.network.as_ptr(),
                c"HRESCH".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_SAME_NETWORK);
            let status = careledger_network_share(
                t.node,
                t.network.as_ptr(),
                study.as_ptr(),
                c"HRESCH".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_UNKNOWN_NETWORK);
            let status = careledger_network_share(
                t.node,
                t.network.as_ptr(),
                c"nothex".as_ptr(),
                c"HRESCH".as_ptr(),
                0,
                &mut out,
            );
            assert_eq!(status, CARELEDGER_INVALID_ARGUMENT);
            assert!(last_error().contains("to_network_id"));
            assert!(out.is_null());
        }
    }
}
