//! Moving messages between nodes: through a local relay file, or through the
//! integrator's own transport (the sans-IO path).

use std::ffi::{c_char, CString};
use std::path::Path;

use careledger::entry::AuthorId;
use careledger::node::{Outgoing, ReceiveReport};
use careledger::relay::LocalRelay;
use careledger::sync::{join_from_relay, sync};
use careledger::wire::WireMessage;

use crate::boundary::{
    arg_bytes, arg_handle, arg_out, arg_out_opt, arg_ref, arg_str, boundary, free_handle, guard,
};
use crate::node::{careledger_node, network_arg, node_arg, now_ms};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// What receiving messages did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct careledger_receive_report {
    /// Entries accepted (including held entries this batch released).
    pub accepted: u64,
    /// Entries already known.
    pub duplicates: u64,
    /// Entries held back, waiting for what they depend on.
    pub held: u64,
    /// Messages refused (forged, tampered, malformed, non-member, fork).
    pub rejected: u64,
    /// MLS commits applied.
    pub commits_applied: u64,
    /// Whether this node learned it was removed from the network.
    pub removed: bool,
}

impl From<&ReceiveReport> for careledger_receive_report {
    fn from(r: &ReceiveReport) -> Self {
        careledger_receive_report {
            accepted: r.accepted as u64,
            duplicates: r.duplicates as u64,
            held: r.held as u64,
            rejected: r.rejected.len() as u64,
            commits_applied: r.commits_applied as u64,
            removed: r.removed,
        }
    }
}

/// What a sync through a local relay did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct careledger_sync_report {
    /// Messages published to the relay.
    pub published: u64,
    /// Messages fetched from the relay.
    pub fetched: u64,
    /// What receiving the fetched messages did.
    pub received: careledger_receive_report,
}

/// # Safety
/// `relay_path` is NULL or NUL-terminated.
unsafe fn open_relay(relay_path: *const c_char) -> Result<LocalRelay, Failure> {
    // SAFETY: forwarded from the caller.
    let path = unsafe { arg_str(relay_path, "relay_path") }?;
    Ok(LocalRelay::open(Path::new(path))?)
}

/// One full exchange with the local relay file at `relay_path` (created if
/// missing; nodes on one machine share it): announces this node's heads,
/// publishes its outbox, fetches and receives everything after its cursor,
/// and publishes what that produced (Welcomes, key grants, resends).
/// Messages the relay holds that fail verification are refused and counted in
/// `received.rejected` without failing the sync (a relay is shared; check the
/// count).
///
/// Ownership: inputs borrowed; `out_report` may be NULL, otherwise it is the
/// caller's and is written on success only.
/// Thread safety: safe from any thread (serialised per node). Several nodes,
/// in one process or several, may sync with one relay file at once.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_RELAY_UNAVAILABLE`, `CARELEDGER_RELAY_IO` (retry: nothing is
/// lost), `CARELEDGER_MLS_FAILED`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_sync(
    node: *const careledger_node,
    network_id: *const c_char,
    relay_path: *const c_char,
    out_report: *mut careledger_sync_report,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let mut relay = unsafe { open_relay(relay_path) }?;
        let report = sync(&mut *node.lock()?, &mut relay, &network, now_ms())?;
        if let Some(out) = unsafe { arg_out_opt(out_report) } {
            *out = careledger_sync_report {
                published: report.published as u64,
                fetched: report.fetched as u64,
                received: (&report.received).into(),
            };
        }
        Ok(())
    })
}

/// Joins `network_id` from a Welcome for this node waiting on the local relay
/// file at `relay_path`, then catches up on the network's history.
///
/// Ownership: inputs borrowed for the call.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_NO_WELCOME` (not invited yet, or
/// the invitation has not been synced by the inviter), `CARELEDGER_RELAY_UNAVAILABLE`,
/// `CARELEDGER_RELAY_IO`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; strings NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_join_from_relay(
    node: *const careledger_node,
    relay_path: *const c_char,
    network_id: *const c_char,
    label: *const c_char,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let label = unsafe { arg_str(label, "label") }?;
        let mut relay = unsafe { open_relay(relay_path) }?;
        let mut node = node.lock()?;
        join_from_relay(&mut node, &mut relay, &network, label, now_ms())?;
        Ok(())
    })
}

/// Sans-IO: starts an exchange with your own transport. Queues this node's
/// chain heads for the network (peers use them to detect gaps and re-send)
/// and re-queues a membership change of ours still waiting for its turn (it
/// may have been lost). Then drain `careledger_node_poll_outgoing`.
///
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_MLS_FAILED`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_announce(
    node: *const careledger_node,
    network_id: *const c_char,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let mut node = node.lock()?;
        node.announce_heads(&network)?;
        if node.commit_pending(&network)? {
            node.republish_commit(&network)?;
        }
        Ok(())
    })
}

/// A message waiting in a node's outbox. How to carry it (the delivery rules
/// of the sans-IO path):
///
/// 1. **One log per network.** Append every message to the log of the network
///    `careledger_outgoing_network_id` names, and deliver each network's log
///    to every member in the same order. That order decides races between
///    membership changes (the first Commit for an epoch wins), so a log must
///    never be reordered; gaps, repeats and late delivery are fine.
/// 2. **Acknowledge after durable hand-off.** Call
///    `careledger_node_ack_outgoing` once your transport has durably taken
///    the message; until then the same message comes back (at-least-once:
///    receivers drop duplicates).
/// 3. **Welcomes go to the invitee.** A message of kind
///    `CARELEDGER_MESSAGE_WELCOME` is for the node whose key package was
///    invited: hand it to that node's `careledger_network_join` exactly as
///    taken (it may also go into the log: members ignore it). It appears only
///    after the invitation's Commit came back first in the log.
/// 4. **A joiner reads the whole log.** After `careledger_network_join`, feed
///    the new member the network's log from its first message (its relay
///    cursor is 0), messages from before its Welcome included: the inviter's
///    key grant makes the earlier entries readable, and earlier Commits are
///    skipped. Feeding it only what came after its Welcome leaves the history
///    out.
/// 5. **Resume from the cursor.** Pass each batch's last log position as
///    `relay_seq` to `careledger_network_receive`; after a restart continue
///    after `careledger_network_relay_cursor`.
///
/// Free with `careledger_outgoing_free`. Immutable: may be read from several
/// threads.
pub struct careledger_outgoing {
    outgoing: Outgoing,
    network_id: CString,
    node: AuthorId,
    kind: careledger_message_kind,
}

/// What an outgoing message carries, so a transport can route it.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum careledger_message_kind {
    /// Not a message careledger understands (careledger never produces one;
    /// also the answer for a NULL or freed message).
    CARELEDGER_MESSAGE_UNKNOWN = 0,
    /// A sealed, signed ledger entry: into the network's log.
    CARELEDGER_MESSAGE_ENTRY = 1,
    /// An MLS Commit (a membership or key change): into the network's log.
    CARELEDGER_MESSAGE_COMMIT = 2,
    /// An MLS Welcome: to the invited node, for `careledger_network_join`.
    CARELEDGER_MESSAGE_WELCOME = 3,
    /// A heads announcement (peers use it to re-send what was lost): into
    /// the network's log.
    CARELEDGER_MESSAGE_HEADS = 4,
}

impl careledger_message_kind {
    fn of(message: &[u8]) -> Self {
        match WireMessage::decode(message) {
            Ok(WireMessage::Entry(_)) => Self::CARELEDGER_MESSAGE_ENTRY,
            Ok(WireMessage::Commit(_)) => Self::CARELEDGER_MESSAGE_COMMIT,
            Ok(WireMessage::Welcome(_)) => Self::CARELEDGER_MESSAGE_WELCOME,
            Ok(WireMessage::Heads { .. }) => Self::CARELEDGER_MESSAGE_HEADS,
            Err(_) => Self::CARELEDGER_MESSAGE_UNKNOWN,
        }
    }
}

/// Sans-IO: takes the oldest message waiting in the node's outbox (of any
/// network) without removing it. Once your transport has durably accepted it,
/// call `careledger_node_ack_outgoing`; until then the same message comes back.
///
/// Ownership: on success `*out_message` receives a message the caller owns
/// (free with `careledger_outgoing_free`), or NULL if the outbox is empty.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `out_message` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_poll_outgoing(
    node: *const careledger_node,
    out_message: *mut *mut careledger_outgoing,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let out = unsafe { arg_out(out_message, "out_message") }?;
        let handle = arg_handle(node, "node")?;
        let next = handle.lock()?.poll_outgoing()?;
        *out = match next {
            None => std::ptr::null_mut(),
            Some(outgoing) => crate::handles::register(careledger_outgoing {
                network_id: CString::new(outgoing.network.to_hex()).unwrap_or_default(),
                kind: careledger_message_kind::of(&outgoing.message),
                outgoing,
                node: *handle.author(),
            }),
        };
        Ok(())
    })
}

/// Sans-IO: removes `message` from the node's outbox after your transport
/// has durably accepted it. Acknowledging twice is harmless.
///
/// Ownership: `message` is borrowed (free it afterwards as usual).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`,
/// `CARELEDGER_INVALID_ARGUMENT` (the message came from another node),
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `message` NULL or a live message.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_ack_outgoing(
    node: *const careledger_node,
    message: *const careledger_outgoing,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let handle = arg_handle(node, "node")?;
        let message = arg_handle(message, "message")?;
        if message.node != *handle.author() {
            return Err(Failure::new(
                CARELEDGER_INVALID_ARGUMENT,
                "`message` was taken from another node's outbox",
            ));
        }
        handle.lock()?.ack_outgoing(message.outgoing.id)?;
        Ok(())
    })
}

/// The network id (hex) a message belongs to, or NULL if `message` is NULL.
/// Valid until the message is freed.
///
/// # Safety
/// `message` is NULL or a live message.
#[no_mangle]
pub unsafe extern "C" fn careledger_outgoing_network_id(
    message: *const careledger_outgoing,
) -> *const c_char {
    guard(std::ptr::null(), || {
        crate::handles::lookup(message).map_or(std::ptr::null(), |m| m.network_id.as_ptr())
    })
}

/// The bytes to carry, or NULL if `message` is NULL. Valid until the message is freed.
///
/// # Safety
/// `message` is NULL or a live message.
#[no_mangle]
pub unsafe extern "C" fn careledger_outgoing_data(
    message: *const careledger_outgoing,
) -> *const u8 {
    guard(std::ptr::null(), || {
        crate::handles::lookup(message).map_or(std::ptr::null(), |m| m.outgoing.message.as_ptr())
    })
}

/// The number of bytes to carry (0 if `message` is NULL).
///
/// # Safety
/// `message` is NULL or a live message.
#[no_mangle]
pub unsafe extern "C" fn careledger_outgoing_len(message: *const careledger_outgoing) -> usize {
    guard(0, || {
        crate::handles::lookup(message).map_or(0, |m| m.outgoing.message.len())
    })
}

/// What `message` carries (see `careledger_message_kind` and the delivery
/// rules at `careledger_outgoing`); `CARELEDGER_MESSAGE_UNKNOWN` if
/// `message` is NULL or freed.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `message` is NULL or a message handle.
#[no_mangle]
pub unsafe extern "C" fn careledger_outgoing_kind(
    message: *const careledger_outgoing,
) -> careledger_message_kind {
    guard(careledger_message_kind::CARELEDGER_MESSAGE_UNKNOWN, || {
        crate::handles::lookup(message)
            .map_or(careledger_message_kind::CARELEDGER_MESSAGE_UNKNOWN, |m| {
                m.kind
            })
    })
}

/// Frees a message. NULL, an already freed message and a handle of another
/// type are harmless no-ops; accessors given a freed message answer NULL, 0
/// or `CARELEDGER_MESSAGE_UNKNOWN`.
///
/// # Safety
/// `message` is NULL or a message from careledger not yet freed.
#[no_mangle]
pub unsafe extern "C" fn careledger_outgoing_free(message: *mut careledger_outgoing) {
    // SAFETY: forwarded from the caller.
    free_handle(message)
}

/// Sans-IO: hands in messages your transport delivered for the network, in
/// the transport's order, as one transaction. Each message is verified
/// (signature, chain, epoch, seal) before anything is applied; entries whose
/// predecessors are missing are held and released when those arrive.
///
/// Parameters: `messages[i]`/`lengths[i]` for `i < count` (both arrays may be
/// NULL when `count` is 0); `relay_seq` is your transport's position of the
/// last message, stored with the batch so you can resume after it
/// (`careledger_network_relay_cursor`), or 0 to leave the stored position
/// unchanged; `out_report` may be NULL.
///
/// If some messages are refused, the others are still kept, the call returns
/// `CARELEDGER_MESSAGE_REJECTED`, the detail names the first refusal, and
/// `*out_report` IS written (counting them).
///
/// Ownership: inputs borrowed for the call; `*out_report` is the caller's,
/// written on `CARELEDGER_OK` and `CARELEDGER_MESSAGE_REJECTED`.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_MESSAGE_REJECTED`,
/// `CARELEDGER_NULL_PARAMETER` (an array, or a message with a length, is
/// NULL), `CARELEDGER_INVALID_UTF8`, `CARELEDGER_INVALID_ARGUMENT`,
/// `CARELEDGER_UNKNOWN_NETWORK`, `CARELEDGER_STORE_IO` (the whole batch was
/// rolled back), `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `messages` and
/// `lengths` NULL or valid for `count` elements, each `messages[i]` NULL or
/// valid for `lengths[i]` bytes; `out_report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_receive(
    node: *const careledger_node,
    network_id: *const c_char,
    messages: *const *const u8,
    lengths: *const usize,
    count: usize,
    relay_seq: u64,
    out_report: *mut careledger_receive_report,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let pointers = unsafe { arg_slice(messages, count, "messages") }?;
        let lengths = unsafe { arg_slice(lengths, count, "lengths") }?;
        let batch = pointers
            .iter()
            .zip(lengths)
            .map(|(&ptr, &len)| unsafe { arg_bytes(ptr, len, "messages[i]") }.map(<[u8]>::to_vec))
            .collect::<Result<Vec<_>, _>>()?;
        let seq = (relay_seq != 0).then_some(relay_seq);
        let report = node.lock()?.receive(&network, &batch, seq, now_ms())?;
        if let Some(out) = unsafe { arg_out_opt(out_report) } {
            *out = (&report).into();
        }
        match report.rejected.first() {
            None => Ok(()),
            Some(first) => Err(Failure::new(
                CARELEDGER_MESSAGE_REJECTED,
                format!(
                    "{} of {} messages rejected; first: {first}",
                    report.rejected.len(),
                    batch.len()
                ),
            )),
        }
    })
}

/// # Safety
/// `ptr` is NULL or valid for `count` elements.
pub(crate) unsafe fn arg_slice<'a, T>(
    ptr: *const T,
    count: usize,
    name: &str,
) -> Result<&'a [T], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-NULL (checked by `arg_ref`) and valid for `count` per the caller.
    unsafe { arg_ref(ptr, name) }?;
    if count > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`{name}` count is larger than any array"),
        ));
    }
    // SAFETY: as above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// Sans-IO: the transport position stored with the last received batch for
/// the network (0 before any), to resume your transport after it.
///
/// Ownership: `*out_seq` is the caller's, written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_seq` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_relay_cursor(
    node: *const careledger_node,
    network_id: *const c_char,
    out_seq: *mut u64,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_seq, "out_seq") }?;
        let network = unsafe { network_arg(network_id) }?;
        *out = node.lock()?.relay_cursor(&network)?;
        Ok(())
    })
}
