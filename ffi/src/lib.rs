//! The C API of careledger, for hospital EHR systems (C, C++, Java via
//! JNI/Panama, .NET via P/Invoke). `include/careledger.h` is generated from
//! this crate by cbindgen.
//!
//! Conventions (STYLE §8–11):
//! - Objects are opaque handles: `careledger_node` (thread-safe, calls
//!   serialised), and library-owned outputs (`careledger_bytes`,
//!   `careledger_string_list`, `careledger_member_list`,
//!   `careledger_outgoing`), each freed by its own `_free`, which accepts NULL.
//!   Handles are tokens checked against a registry of live handles before
//!   any use: a freed, never issued or wrong-type handle yields
//!   `CARELEDGER_STALE_HANDLE` (accessors NULL or 0, frees do nothing),
//!   never undefined behaviour.
//! - Functions that can fail return a `careledger_status`; `CARELEDGER_OK` is
//!   0. Outputs come last and are written only on success (the exceptions are
//!   documented). `careledger_last_error` gives the detail of the last failure
//!   on the calling thread.
//! - Inputs are borrowed for the call only: `const uint8_t *ptr, size_t len`
//!   buffers and NUL-terminated UTF-8 strings.
//! - Structured outputs (consent lists, share reports, model cards,
//!   decisions, verifications, audits, rule sets, rule outcomes) are UTF-8
//!   JSON in a `careledger_bytes`, in the shape each function documents;
//!   `now_ms` 0 means the system clock.
//! - No panic crosses the boundary: every function body runs inside
//!   `catch_unwind` and a panic becomes `CARELEDGER_PANIC`.
//!
//! This is the only careledger crate with `unsafe` code: pointer arguments
//! are turned into references in `boundary`, after NULL checks.

#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

mod ai;
mod args;
mod boundary;
mod buffers;
mod consent;
mod exchange;
mod federated;
mod handles;
mod ledger;
mod network;
mod node;
mod records;
mod rights;
mod rules;
mod status;
#[cfg(test)]
mod test_support;

pub use ai::*;
pub use boundary::careledger_last_error;
pub use buffers::*;
pub use consent::*;
pub use exchange::*;
pub use ledger::*;
pub use network::*;
pub use node::*;
pub use records::*;
pub use rights::*;
pub use rules::*;
pub use status::{careledger_status, careledger_status_str};
