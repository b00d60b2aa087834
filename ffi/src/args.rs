//! Arguments and outputs shared by the consent and analytics functions:
//! times, purposes, ids, and JSON outputs.

use std::ffi::c_char;

use careledger::consent::Purpose;
use careledger::entry::{AuthorId, EntryId};
use careledger::node::NetworkId;
use serde_json::Value;

use crate::boundary::arg_str;
use crate::buffers::careledger_bytes;
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// `now_ms` as given, or the system clock for 0.
pub(crate) fn time_arg(now_ms: u64) -> u64 {
    if now_ms == 0 {
        crate::node::now_ms()
    } else {
        now_ms
    }
}

/// A library-owned JSON output.
pub(crate) fn json_bytes(value: &Value) -> *mut careledger_bytes {
    careledger_bytes::boxed(value.to_string().into_bytes())
}

/// A required purpose: one v3 ActReason code (`HRESCH`, `TREAT`, `CLMATTCH`, …).
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
pub(crate) unsafe fn purpose_arg(ptr: *const c_char, name: &str) -> Result<Purpose, Failure> {
    // SAFETY: forwarded from the caller.
    let code = unsafe { arg_str(ptr, name) }?;
    let token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if code.is_empty() || code.len() > 64 || !code.chars().all(token) {
        return Err(Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`{name}` must be one ActReason code such as HRESCH, TREAT or CLMATTCH"),
        ));
    }
    Ok(Purpose::from_code(code))
}

/// A required author id (64 hex characters).
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
pub(crate) unsafe fn author_arg(ptr: *const c_char, name: &str) -> Result<AuthorId, Failure> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { arg_str(ptr, name) }?;
    AuthorId::from_hex(text).ok_or_else(|| {
        Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`{name}` is not an author id (64 hex characters)"),
        )
    })
}

/// A second network id argument, named in its own errors.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
pub(crate) unsafe fn named_network_arg(
    ptr: *const c_char,
    name: &str,
) -> Result<NetworkId, Failure> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { arg_str(ptr, name) }?;
    NetworkId::from_hex(text).ok_or_else(|| {
        Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`{name}` is not a network id (hex, as careledger gives it out)"),
        )
    })
}

/// A required entry id (a model card's): 64 hex characters.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
pub(crate) unsafe fn entry_arg(ptr: *const c_char, name: &str) -> Result<EntryId, Failure> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { arg_str(ptr, name) }?;
    EntryId::from_hex(text).ok_or_else(|| {
        Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`{name}` is not an entry id (64 hex characters)"),
        )
    })
}
