//! Networks and their membership.

use std::ffi::c_char;

use careledger::entry::AuthorId;

use crate::boundary::{arg_bytes, arg_out, arg_str, boundary};
use crate::buffers::{careledger_bytes, careledger_member_list, careledger_string_list};
use crate::node::{careledger_node, network_arg, node_arg};
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// Creates a network with this node as its only member.
///
/// Parameters: `label` a local name for the network (UTF-8);
/// `out_network_id` receives the network id as text (hex; read it with
/// `careledger_bytes_str`), on success only.
///
/// Ownership: inputs borrowed; the caller owns `*out_network_id` (free with
/// `careledger_bytes_free`).
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_MLS_FAILED`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `label` NULL or NUL-terminated; `out_network_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_create(
    node: *const careledger_node,
    label: *const c_char,
    out_network_id: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_network_id, "out_network_id") }?;
        let label = unsafe { arg_str(label, "label") }?;
        let network = node.lock()?.create_network(label)?;
        *out = careledger_bytes::boxed(network.to_hex().into_bytes());
        Ok(())
    })
}

/// Lists the ids of the networks in this node's store (including networks it
/// was removed from).
///
/// Ownership: the caller owns `*out_network_ids` (free with
/// `careledger_string_list_free`), written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `out_network_ids` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_networks(
    node: *const careledger_node,
    out_network_ids: *mut *mut careledger_string_list,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_network_ids, "out_network_ids") }?;
        let networks = node.lock()?.networks()?;
        let ids: Vec<String> = networks.iter().map(|n| n.id.to_hex()).collect();
        *out = careledger_string_list::boxed(&ids);
        Ok(())
    })
}

/// Invites the owner of `key_package` into the network. This proposes a
/// membership change; it takes effect, and the Welcome for the new member
/// leaves through the outbox, once the change wins its turn in relay order
/// (the next `careledger_network_sync`, or your transport feeding the
/// change back through `careledger_network_receive`). Check the key
/// package's owner out of band (fingerprint) before inviting.
///
/// Ownership: inputs borrowed for the call.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER` (`key_package` NULL
/// with a length), `CARELEDGER_INVALID_UTF8`, `CARELEDGER_INVALID_ARGUMENT`
/// (network id), `CARELEDGER_INVALID_KEY_PACKAGE`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_COMMIT_PENDING`, `CARELEDGER_MLS_FAILED`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `key_package`
/// NULL or valid for `key_package_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_invite(
    node: *const careledger_node,
    network_id: *const c_char,
    key_package: *const u8,
    key_package_len: usize,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let key_package = unsafe { arg_bytes(key_package, key_package_len, "key_package") }?;
        node.lock()?.invite(&network, key_package)?;
        Ok(())
    })
}

/// Joins a network from a Welcome made for one of this node's key packages.
/// `welcome` is either the message your transport carried from the
/// inviter's outbox (the one whose `careledger_outgoing_kind` is
/// `CARELEDGER_MESSAGE_WELCOME`) or a bare MLS Welcome. Afterwards feed the
/// network's log through `careledger_network_receive` **from its first
/// message**, including what was written before the Welcome (the history the
/// inviter's key grant makes readable); see the delivery rules at
/// `careledger_outgoing`. Or use `careledger_network_join_from_relay`
/// instead, with a local relay.
///
/// Parameters: `label` a local name; `out_network_id` receives the network id
/// text on success only (the caller frees it with `careledger_bytes_free`).
///
/// Ownership: inputs borrowed for the call.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_WELCOME` (not a Welcome, not for this node, or a network
/// already joined), `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `welcome` NULL or valid for `welcome_len` bytes;
/// `label` NULL or NUL-terminated; `out_network_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_join(
    node: *const careledger_node,
    welcome: *const u8,
    welcome_len: usize,
    label: *const c_char,
    out_network_id: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_network_id, "out_network_id") }?;
        let welcome = unsafe { arg_bytes(welcome, welcome_len, "welcome") }?;
        let label = unsafe { arg_str(label, "label") }?;
        let network = node.lock()?.join(welcome, label)?;
        *out = careledger_bytes::boxed(network.to_hex().into_bytes());
        Ok(())
    })
}

/// Removes a member (by author id, as `careledger_member_list_author_id`
/// gives it). Like an invite this is a proposal that takes effect when it
/// wins its turn in relay order; then every record key is rotated, so the
/// removed member can read nothing written afterwards.
///
/// Ownership: inputs borrowed for the call.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (ids not hex), `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_NOT_A_MEMBER`, `CARELEDGER_UNKNOWN_MEMBER`,
/// `CARELEDGER_COMMIT_PENDING`, `CARELEDGER_MLS_FAILED`, `CARELEDGER_STORE_IO`,
/// `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` and `member_author_id` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_remove(
    node: *const careledger_node,
    network_id: *const c_char,
    member_author_id: *const c_char,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let network = unsafe { network_arg(network_id) }?;
        let member = unsafe { arg_str(member_author_id, "member_author_id") }?;
        let member = AuthorId::from_hex(member).ok_or_else(|| {
            Failure::new(
                CARELEDGER_INVALID_ARGUMENT,
                "`member_author_id` is not an author id (64 hex characters)",
            )
        })?;
        node.lock()?.remove(&network, &member)?;
        Ok(())
    })
}

/// Lists the members of the network's current epoch.
///
/// Ownership: the caller owns `*out_members` (free with
/// `careledger_member_list_free`), written on success only.
/// Thread safety: safe from any thread (serialised per node).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT`, `CARELEDGER_UNKNOWN_NETWORK`,
/// `CARELEDGER_MLS_FAILED`, `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`,
/// `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `network_id` NULL or NUL-terminated; `out_members` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_network_members(
    node: *const careledger_node,
    network_id: *const c_char,
    out_members: *mut *mut careledger_member_list,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_members, "out_members") }?;
        let network = unsafe { network_arg(network_id) }?;
        let members = node.lock()?.members(&network)?;
        *out = careledger_member_list::boxed(&members);
        Ok(())
    })
}
