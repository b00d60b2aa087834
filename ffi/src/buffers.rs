//! Library-owned outputs: byte buffers and lists, each freed by its own
//! `_free` function. Their accessors borrow: returned pointers stay valid
//! until the owning object is freed.

use std::ffi::{c_char, CString};

use careledger::node::MemberInfo;

use crate::boundary::{free_handle, guard};

/// A byte buffer owned by careledger (an exported chart, a key package, a
/// message, an id). The bytes are followed by a NUL that `len` does not
/// count, so text outputs can be read as C strings with `careledger_bytes_str`.
/// Free with `careledger_bytes_free`. Immutable: may be read from several
/// threads at once; free it once, after every reader is done.
pub struct careledger_bytes {
    /// The content plus one trailing NUL.
    data: Vec<u8>,
}

impl careledger_bytes {
    pub fn boxed(mut data: Vec<u8>) -> *mut careledger_bytes {
        data.push(0);
        crate::handles::register(careledger_bytes { data })
    }

    pub fn content(&self) -> &[u8] {
        &self.data[..self.data.len() - 1]
    }
}

/// The bytes of `bytes`, or NULL if `bytes` is NULL. Valid until the buffer is freed.
///
/// # Safety
/// `bytes` is NULL or a live buffer from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_bytes_data(bytes: *const careledger_bytes) -> *const u8 {
    guard(std::ptr::null(), || match crate::handles::lookup(bytes) {
        Some(b) => b.data.as_ptr(),
        None => std::ptr::null(),
    })
}

/// The length of `bytes` (without the trailing NUL), or 0 if `bytes` is NULL.
///
/// # Safety
/// `bytes` is NULL or a live buffer from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_bytes_len(bytes: *const careledger_bytes) -> usize {
    guard(0, || {
        crate::handles::lookup(bytes).map_or(0, |b| b.content().len())
    })
}

/// The bytes of `bytes` as a NUL-terminated string, or NULL if `bytes` is
/// NULL. Meant for text outputs (ids, JSON); binary outputs may contain NULs
/// before the end. Valid until the buffer is freed.
///
/// # Safety
/// `bytes` is NULL or a live buffer from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_bytes_str(bytes: *const careledger_bytes) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { careledger_bytes_data(bytes) }.cast()
}

/// Frees a buffer. NULL, an already freed buffer and a handle of another
/// type are harmless no-ops; accessors given a freed buffer answer 0 or NULL.
///
/// # Safety
/// `bytes` is NULL or a buffer from careledger not yet freed.
#[no_mangle]
pub unsafe extern "C" fn careledger_bytes_free(bytes: *mut careledger_bytes) {
    // SAFETY: forwarded from the caller.
    free_handle(bytes)
}

/// Text without interior NULs (ids and names never contain them; anything
/// else is cut at the first NUL rather than failing).
fn c_string(text: &str) -> CString {
    let cut = text.split('\0').next().unwrap_or_default();
    CString::new(cut).unwrap_or_default()
}

/// A list of strings owned by careledger (patient ids, network ids). Free
/// with `careledger_string_list_free`. Immutable: may be read from several
/// threads at once.
pub struct careledger_string_list {
    items: Vec<CString>,
}

impl careledger_string_list {
    pub fn boxed<S: AsRef<str>>(items: &[S]) -> *mut careledger_string_list {
        let items = items.iter().map(|s| c_string(s.as_ref())).collect();
        crate::handles::register(careledger_string_list { items })
    }
}

/// Number of strings in `list` (0 if NULL).
///
/// # Safety
/// `list` is NULL or a live list from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_string_list_count(
    list: *const careledger_string_list,
) -> usize {
    guard(0, || {
        crate::handles::lookup(list).map_or(0, |l| l.items.len())
    })
}

/// The `index`-th string of `list`, NUL-terminated, or NULL if `list` is
/// NULL or `index` is out of range. Valid until the list is freed.
///
/// # Safety
/// `list` is NULL or a live list from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_string_list_get(
    list: *const careledger_string_list,
    index: usize,
) -> *const c_char {
    guard(std::ptr::null(), || {
        crate::handles::lookup(list)
            .and_then(|l| l.items.get(index).map(|s| s.as_ptr()))
            .unwrap_or(std::ptr::null())
    })
}

/// Frees a string list. NULL, an already freed list and a handle of another
/// type are harmless no-ops; accessors given a freed list answer 0 or NULL.
///
/// # Safety
/// `list` is NULL or a list from careledger not yet freed.
#[no_mangle]
pub unsafe extern "C" fn careledger_string_list_free(list: *mut careledger_string_list) {
    // SAFETY: forwarded from the caller.
    free_handle(list)
}

struct Member {
    name: CString,
    author_id: CString,
    fingerprint: CString,
}

/// The members of a network's current epoch, owned by careledger. Free with
/// `careledger_member_list_free`. Immutable: may be read from several threads.
pub struct careledger_member_list {
    members: Vec<Member>,
}

impl careledger_member_list {
    pub fn boxed(members: &[MemberInfo]) -> *mut careledger_member_list {
        let members = members
            .iter()
            .map(|m| Member {
                name: c_string(&m.name),
                author_id: c_string(&m.author.to_hex()),
                fingerprint: c_string(&m.fingerprint),
            })
            .collect();
        crate::handles::register(careledger_member_list { members })
    }

    /// # Safety
    /// `list` is NULL or a live list from careledger.
    unsafe fn field(
        list: *const careledger_member_list,
        index: usize,
        pick: fn(&Member) -> &CString,
    ) -> *const c_char {
        guard(std::ptr::null(), || {
            crate::handles::lookup(list)
                .and_then(|l| l.members.get(index).map(|m| pick(m).as_ptr()))
                .unwrap_or(std::ptr::null())
        })
    }
}

/// Number of members in `list` (0 if NULL).
///
/// # Safety
/// `list` is NULL or a live list from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_member_list_count(
    list: *const careledger_member_list,
) -> usize {
    guard(0, || {
        crate::handles::lookup(list).map_or(0, |l| l.members.len())
    })
}

/// The `index`-th member's name (from its credential, e.g. a DNS name), or
/// NULL if `list` is NULL or `index` out of range. Valid until the list is freed.
///
/// # Safety
/// `list` is NULL or a live list from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_member_list_name(
    list: *const careledger_member_list,
    index: usize,
) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { careledger_member_list::field(list, index, |m| &m.name) }
}

/// The `index`-th member's author id (64 lowercase hex characters; pass it to
/// `careledger_network_remove`), or NULL as for `careledger_member_list_name`.
///
/// # Safety
/// `list` is NULL or a live list from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_member_list_author_id(
    list: *const careledger_member_list,
    index: usize,
) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { careledger_member_list::field(list, index, |m| &m.author_id) }
}

/// The `index`-th member's fingerprint (to compare out of band), or NULL as
/// for `careledger_member_list_name`.
///
/// # Safety
/// `list` is NULL or a live list from careledger.
#[no_mangle]
pub unsafe extern "C" fn careledger_member_list_fingerprint(
    list: *const careledger_member_list,
    index: usize,
) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { careledger_member_list::field(list, index, |m| &m.fingerprint) }
}

/// Frees a member list. NULL, an already freed list and a handle of another
/// type are harmless no-ops; accessors given a freed list answer 0 or NULL.
///
/// # Safety
/// `list` is NULL or a list from careledger not yet freed.
#[no_mangle]
pub unsafe extern "C" fn careledger_member_list_free(list: *mut careledger_member_list) {
    // SAFETY: forwarded from the caller.
    free_handle(list)
}
