//! The node handle: one store file, one identity.

use std::ffi::c_char;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use careledger::entry::AuthorId;
use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::store::Store;

use crate::boundary::{
    arg_bytes, arg_handle, arg_out, arg_str, boundary, copy_text_out, free_handle,
};
use crate::buffers::careledger_bytes;
use crate::status::{careledger_status, Failure};
use careledger_status::*;

/// Length of a storage key in bytes.
pub const CARELEDGER_STORAGE_KEY_LEN: usize = 32;
/// Length of an author id in hex characters (without the NUL).
pub const CARELEDGER_AUTHOR_ID_LEN: usize = 64;
/// Length of a fingerprint in characters (without the NUL): eight groups of
/// four hex digits separated by spaces.
pub const CARELEDGER_FINGERPRINT_LEN: usize = 39;

/// A node: one store file holding one identity, its networks, ledger and
/// records. Open with `careledger_node_create` or `careledger_node_open`,
/// free with `careledger_node_free`.
///
/// Thread safety: a node may be used from several threads at once; calls on
/// one node are serialised by a lock inside it (so they never run in
/// parallel). Open a store file through one node at a time.
pub struct careledger_node {
    node: Mutex<Node>,
    author: AuthorId,
}

impl careledger_node {
    fn boxed(node: Node) -> *mut careledger_node {
        let author = node.identity().author_id();
        crate::handles::register(careledger_node {
            node: Mutex::new(node),
            author,
        })
    }

    /// The node, locked for one call. A panic in an earlier call poisons it.
    pub fn lock(&self) -> Result<MutexGuard<'_, Node>, Failure> {
        self.node.lock().map_err(|_| {
            Failure::new(
                CARELEDGER_NODE_UNUSABLE,
                "an earlier call on this node panicked; free it and open the store again",
            )
        })
    }

    pub fn author(&self) -> &AuthorId {
        &self.author
    }
}

/// The node handle argument.
///
/// # Safety
/// `node` is NULL or a live node handle.
pub unsafe fn node_arg(node: *const careledger_node) -> Result<Arc<careledger_node>, Failure> {
    arg_handle(node, "node")
}

/// A network id argument (hex, as careledger gives it out).
///
/// # Safety
/// `network_id` is NULL or a NUL-terminated string.
pub unsafe fn network_arg(network_id: *const c_char) -> Result<NetworkId, Failure> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { arg_str(network_id, "network_id") }?;
    NetworkId::from_hex(text).ok_or_else(|| {
        Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            "`network_id` is not a network id (hex, as careledger gives it out)",
        )
    })
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// # Safety
/// `path` is NULL or a NUL-terminated string; `key` NULL or valid for `key_len` bytes.
unsafe fn open_store(
    path: *const c_char,
    key: *const u8,
    key_len: usize,
) -> Result<Store, Failure> {
    // SAFETY: forwarded from the caller.
    let path = unsafe { arg_str(path, "path") }?;
    // SAFETY: forwarded from the caller.
    let key = unsafe { storage_key_arg(key, key_len) }?;
    Ok(Store::open(Path::new(path), &key)?)
}

/// The storage key argument: present and exactly 32 bytes.
///
/// # Safety
/// `key` NULL or valid for `key_len` bytes.
unsafe fn storage_key_arg(key: *const u8, key_len: usize) -> Result<StorageKey, Failure> {
    // SAFETY: forwarded from the caller.
    let key = unsafe { arg_bytes(key, key_len, "storage_key") }?;
    let key: [u8; CARELEDGER_STORAGE_KEY_LEN] = key.try_into().map_err(|_| {
        Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("storage key must be {CARELEDGER_STORAGE_KEY_LEN} bytes, got {key_len}"),
        )
    })?;
    Ok(StorageKey::from_bytes(key))
}

/// The files a store at `path` may consist of: the database, SQLite's
/// journal, WAL and shared-memory files, and the `.creating` files a new
/// store is built in before it is moved into place.
fn store_files(path: &Path) -> Vec<std::path::PathBuf> {
    let mut creating = path.file_name().unwrap_or_default().to_os_string();
    creating.push(".creating");
    let creating = path.with_file_name(creating);
    let mut files = Vec::new();
    for base in [path.to_path_buf(), creating] {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut name = base.clone().into_os_string();
            name.push(suffix);
            files.push(name.into());
        }
    }
    files
}

/// Runs `make` (which may create the store at `path`); if it fails, removes
/// every store file that did not exist before, so a failed call leaves the
/// filesystem as it found it.
fn leave_no_files<T>(path: &Path, make: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    let absent: Vec<_> = store_files(path)
        .into_iter()
        .filter(|file| !file.exists())
        .collect();
    let made = make();
    if made.is_err() {
        for file in absent {
            // Best effort: a file that cannot be removed stays, the failure is still reported.
            let _ = std::fs::remove_file(file);
        }
    }
    made
}

/// Creates a node: opens (or creates) the store file at `path`, sealed under
/// `storage_key`, and gives it a new identity named `name` (1–255 printable
/// ASCII characters without spaces, e.g. the institution's DNS name).
///
/// Parameters: `path` UTF-8 file path; `storage_key`/`storage_key_len` the
/// 32-byte key that seals the store (keep it in the host's key store; it is
/// copied); `name`; `out_node` receives the new node on success only.
///
/// Ownership: all inputs are borrowed for the call. The caller owns
/// `*out_node` and frees it with `careledger_node_free`.
/// Files: a call that fails leaves the filesystem as it was: a store file it
/// created (and SQLite's `-wal`/`-shm` files) is removed again.
/// Thread safety: safe from any thread.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (key length), `CARELEDGER_INVALID_NAME`,
/// `CARELEDGER_ALREADY_CREATED` (use `careledger_node_open`),
/// `CARELEDGER_WRONG_STORAGE_KEY`, `CARELEDGER_STORE_TOO_NEW`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_PANIC`.
///
/// # Safety
/// Pointers are NULL or valid as described; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_create(
    path: *const c_char,
    storage_key: *const u8,
    storage_key_len: usize,
    name: *const c_char,
    out_node: *mut *mut careledger_node,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let out = unsafe { arg_out(out_node, "out_node") }?;
        let name = unsafe { arg_str(name, "name") }?;
        let file = unsafe { arg_str(path, "path") }?;
        let node = leave_no_files(Path::new(file), || {
            let store = unsafe { open_store(path, storage_key, storage_key_len) }?;
            Ok(Node::create(store, name)?)
        })?;
        *out = careledger_node::boxed(node);
        Ok(())
    })
}

/// Opens an existing node: the store file at `path` under `storage_key`.
///
/// Parameters and ownership as for `careledger_node_create`; `out_node`
/// receives the node on success only.
/// Files: never creates one. A missing `path` answers `CARELEDGER_NO_IDENTITY`
/// and leaves nothing behind.
/// Thread safety: safe from any thread.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_INVALID_UTF8`,
/// `CARELEDGER_INVALID_ARGUMENT` (key length), `CARELEDGER_NO_IDENTITY` (no
/// store file at `path`, or one without an identity: use
/// `careledger_node_create`), `CARELEDGER_WRONG_STORAGE_KEY`,
/// `CARELEDGER_STORE_TOO_NEW`, `CARELEDGER_STORE_IO` (e.g. not a database),
/// `CARELEDGER_STORE_CORRUPT`, `CARELEDGER_PANIC`.
///
/// # Safety
/// Pointers are NULL or valid as described; `path` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_open(
    path: *const c_char,
    storage_key: *const u8,
    storage_key_len: usize,
    out_node: *mut *mut careledger_node,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let out = unsafe { arg_out(out_node, "out_node") }?;
        let file = unsafe { arg_str(path, "path") }?;
        unsafe { storage_key_arg(storage_key, storage_key_len) }?;
        if !Path::new(file).exists() {
            // Checked first: opening would create an empty store there.
            return Err(Failure::new(
                CARELEDGER_NO_IDENTITY,
                "there is no store file at this path: create the node with careledger_node_create",
            ));
        }
        let node = leave_no_files(Path::new(file), || {
            let store = unsafe { open_store(path, storage_key, storage_key_len) }?;
            Ok(Node::open(store)?)
        })?;
        *out = careledger_node::boxed(node);
        Ok(())
    })
}

/// Closes a node and frees it. Everything acknowledged is already durable in
/// the store file. NULL, an already freed node and a handle of another type
/// are harmless no-ops. Calls made with the handle afterwards answer
/// `CARELEDGER_STALE_HANDLE`; a call still running on another thread
/// finishes first (the node closes when it returns).
///
/// # Safety
/// `node` is NULL or a node handle not yet freed.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_free(node: *mut careledger_node) {
    // SAFETY: forwarded from the caller.
    free_handle(node)
}

/// Copies the node's author id (`CARELEDGER_AUTHOR_ID_LEN` hex characters)
/// into `buf` with a NUL. `out_len` (required) receives the length without
/// the NUL, also on `CARELEDGER_BUFFER_TOO_SMALL`.
///
/// Ownership: `buf` and `out_len` are the caller's.
/// Thread safety: safe from any thread (does not take the node's lock).
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`,
/// `CARELEDGER_BUFFER_TOO_SMALL`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `buf` NULL or valid for `cap` bytes; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_author_id(
    node: *const careledger_node,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = arg_handle(node, "node")?;
        unsafe { copy_text_out(&node.author().to_hex(), buf, cap, out_len) }
    })
}

/// Copies the node's fingerprint (`CARELEDGER_FINGERPRINT_LEN` characters,
/// for comparing out of band before inviting) into `buf` with a NUL, like
/// `careledger_node_author_id`.
///
/// Ownership, thread safety and statuses as for `careledger_node_author_id`.
///
/// # Safety
/// As for `careledger_node_author_id`.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_fingerprint(
    node: *const careledger_node,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = arg_handle(node, "node")?;
        let fingerprint = careledger::identity::fingerprint_of(node.author());
        unsafe { copy_text_out(&fingerprint, buf, cap, out_len) }
    })
}

/// Makes a fresh MLS key package for this node. Hand it to a member of a
/// network, who passes it to `careledger_network_invite`.
///
/// Ownership: the caller owns `*out_key_package` (free with
/// `careledger_bytes_free`); it is written on success only.
/// Thread safety: safe from any thread.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER`, `CARELEDGER_MLS_FAILED`,
/// `CARELEDGER_STORE_IO`, `CARELEDGER_NODE_UNUSABLE`, `CARELEDGER_PANIC`.
///
/// # Safety
/// `node` NULL or live; `out_key_package` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn careledger_node_key_package(
    node: *const careledger_node,
    out_key_package: *mut *mut careledger_bytes,
) -> careledger_status {
    boundary(|| {
        // SAFETY (all pointer arguments): NULL or valid, as the caller promises.
        let node = unsafe { node_arg(node) }?;
        let out = unsafe { arg_out(out_key_package, "out_key_package") }?;
        let key_package = node.lock()?.key_package()?;
        *out = careledger_bytes::boxed(key_package);
        Ok(())
    })
}

/// The loaded library's version (e.g. "0.1.0"), NUL-terminated. It equals
/// the `CARELEDGER_VERSION` of the header the library was built with: a
/// program can compare the two to detect a header/library mismatch.
///
/// Ownership: static; never free it. Never NULL. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn careledger_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

// The thread-safety claim above rests on this: a node handle is Send + Sync.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<careledger_node>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffers::careledger_string_list;
    use crate::network::careledger_network_create;
    use crate::records::careledger_patients;

    #[test]
    fn a_node_poisoned_by_a_panic_says_so_and_reopens_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::ffi::CString::new(dir.path().join("n.sqlite").to_str().unwrap()).unwrap();
        let key = [3u8; 32];
        let mut node = std::ptr::null_mut();
        let mut network = std::ptr::null_mut();
        let mut list: *mut careledger_string_list = std::ptr::null_mut();
        // SAFETY: all pointers are valid; handles are freed once.
        unsafe {
            let created = careledger_node_create(
                path.as_ptr(),
                key.as_ptr(),
                32,
                c"n.example".as_ptr(),
                &mut node,
            );
            assert_eq!(created, CARELEDGER_OK);
            assert_eq!(
                careledger_network_create(node, c"care".as_ptr(), &mut network),
                CARELEDGER_OK
            );
            let id = crate::buffers::careledger_bytes_str(network);
            // A panic while the node's lock is held (as a bug inside a call would).
            let handle = node_arg(node).unwrap();
            let _ = std::panic::catch_unwind(|| {
                let _guard = handle.lock().unwrap();
                panic!("deliberate test panic inside a call");
            });
            assert_eq!(
                careledger_patients(node, id, &mut list),
                CARELEDGER_NODE_UNUSABLE
            );
            assert!(list.is_null());
            careledger_node_free(node);
            // The store itself is intact.
            node = std::ptr::null_mut();
            assert_eq!(
                careledger_node_open(path.as_ptr(), key.as_ptr(), 32, &mut node),
                CARELEDGER_OK
            );
            assert_eq!(careledger_patients(node, id, &mut list), CARELEDGER_OK);
            crate::buffers::careledger_string_list_free(list);
            crate::buffers::careledger_bytes_free(network);
            careledger_node_free(node);
        }
    }
}
