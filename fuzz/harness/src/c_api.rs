//! The C API driven by arbitrary call sequences: node create/open with right
//! and wrong keys, networks, invites, joins, message exchange between nodes
//! through their outboxes, FHIR import and export, lists and buffers and
//! their accessors, with NULL pointers, strings that are not UTF-8,
//! too-small buffers, wrong-type handles and handles already freed.
//!
//! Invariants: no call returns `CARELEDGER_PANIC`; a freed or foreign handle
//! always yields `CARELEDGER_STALE_HANDLE` (accessors NULL or 0); NULL
//! required pointers yield `CARELEDGER_NULL_PARAMETER`.
//!
//! Program bytes, one operation after another (missing bytes read as 0);
//! handle operands index the handles issued so far (freed ones included),
//! with one past the end meaning NULL and two past a never-issued value.

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use careledger_ffi::*;

use crate::chunks::Program;
use crate::fixture;

type Status = careledger_status;

/// The C API target's strings: a one-byte length, then the bytes.
trait CStrings {
    fn c_string(&mut self) -> CString;
}

impl CStrings for Program<'_> {
    /// A C string from the input: NULs dropped, so it may be any non-UTF-8 bytes.
    fn c_string(&mut self) -> CString {
        let mut bytes = self.short_bytes();
        bytes.retain(|b| *b != 0);
        CString::new(bytes).expect("no NUL")
    }
}

/// Handles issued in this run, freed or not.
struct Handles<T> {
    all: Vec<*mut T>,
    freed: Vec<bool>,
}

impl<T> Handles<T> {
    fn new() -> Self {
        Handles {
            all: Vec::new(),
            freed: Vec::new(),
        }
    }
    fn push(&mut self, handle: *mut T) {
        if !handle.is_null() {
            self.all.push(handle);
            self.freed.push(false);
        }
    }
    /// (handle, what a call on it must answer if not OK-able).
    fn pick(&self, byte: u8) -> (*mut T, Option<Status>) {
        let i = byte as usize % (self.all.len() + 2);
        match i.checked_sub(self.all.len()) {
            None if self.freed[i] => (self.all[i], Some(Status::CARELEDGER_STALE_HANDLE)),
            None => (self.all[i], None),
            Some(0) => (null_mut(), Some(Status::CARELEDGER_NULL_PARAMETER)),
            Some(_) => (
                std::ptr::without_provenance_mut(0x7fff_0000),
                Some(Status::CARELEDGER_STALE_HANDLE),
            ),
        }
    }
    fn free(&mut self, byte: u8, free: unsafe extern "C" fn(*mut T)) {
        let i = byte as usize % (self.all.len() + 2);
        let handle = self.all.get(i).copied().unwrap_or(null_mut());
        // SAFETY: any value is accepted by careledger's frees.
        unsafe { free(handle) };
        if let Some(freed) = self.freed.get_mut(i) {
            *freed = true;
        }
    }
    fn free_all(&mut self, free: unsafe extern "C" fn(*mut T)) {
        for (handle, freed) in self.all.iter().zip(&mut self.freed) {
            if !*freed {
                // SAFETY: a live handle.
                unsafe { free(*handle) };
                *freed = true;
            }
        }
    }
}

fn check(status: Status, expected: Option<Status>) {
    assert_ne!(status, Status::CARELEDGER_PANIC, "a C API call panicked");
    if let Some(expected) = expected {
        assert_eq!(status, expected, "bad handle answered wrongly");
    }
}

struct State {
    dir: tempfile::TempDir,
    nodes: Handles<careledger_node>,
    bytes: Handles<careledger_bytes>,
    lists: Handles<careledger_string_list>,
    members: Handles<careledger_member_list>,
    outgoing: Handles<careledger_outgoing>,
    networks: Vec<CString>,
}

impl State {
    fn path(&self, byte: u8) -> CString {
        let path = self.dir.path().join(format!("node-{}.sqlite", byte % 3));
        CString::new(path.to_string_lossy().into_owned()).expect("path")
    }
    fn network(&self, program: &mut Program<'_>) -> CString {
        let pick = program.byte() as usize;
        match self.networks.get(pick % (self.networks.len() + 1)) {
            Some(net) => net.clone(),
            None => program.c_string(),
        }
    }
    fn keep_network(&mut self, handle: *mut careledger_bytes) {
        // SAFETY: a handle careledger just returned.
        let text = unsafe { careledger_bytes_str(handle) };
        if !text.is_null() {
            // SAFETY: a NUL-terminated string valid while the handle lives.
            self.networks
                .push(unsafe { CStr::from_ptr(text) }.to_owned());
        }
        self.bytes.push(handle);
    }
}

fn key(choice: u8) -> Vec<u8> {
    match choice % 4 {
        0 | 1 => fixture::STORAGE_KEY.to_vec(),
        2 => vec![choice; 32],
        _ => vec![1; 5],
    }
}

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let mut program = Program::new(data);
    let mut s = State {
        dir: tempfile::tempdir().expect("temp dir"),
        nodes: Handles::new(),
        bytes: Handles::new(),
        lists: Handles::new(),
        members: Handles::new(),
        outgoing: Handles::new(),
        networks: Vec::new(),
    };
    let mut steps = 0;
    // SAFETY (every call below): pointers are NULL, careledger handles (live,
    // freed or never issued, all of which careledger must accept), or valid
    // Rust buffers of the stated length.
    unsafe {
        while !program.data.is_empty() && steps < 48 {
            steps += 1;
            match program.byte() % 16 {
                0 | 1 => {
                    let create = program.data.first().is_none_or(|b| b % 2 == 0);
                    let path = s.path(program.byte());
                    let key = key(program.byte());
                    let name = program.c_string();
                    let mut out = null_mut();
                    let status = if create {
                        careledger_node_create(
                            path.as_ptr(),
                            key.as_ptr(),
                            key.len(),
                            name.as_ptr(),
                            &mut out,
                        )
                    } else {
                        careledger_node_open(path.as_ptr(), key.as_ptr(), key.len(), &mut out)
                    };
                    check(status, None);
                    s.nodes.push(out);
                }
                2 => s.nodes.free(program.byte(), careledger_node_free),
                3 => {
                    let (node, expected) = s.nodes.pick(program.byte());
                    let mut out = null_mut();
                    check(careledger_node_key_package(node, &mut out), expected);
                    s.bytes.push(out);
                }
                4 => {
                    let (node, expected) = s.nodes.pick(program.byte());
                    let label = program.c_string();
                    let mut out = null_mut();
                    check(
                        careledger_network_create(node, label.as_ptr(), &mut out),
                        expected,
                    );
                    if !out.is_null() {
                        s.keep_network(out);
                    }
                }
                5 => {
                    let (node, expected) = s.nodes.pick(program.byte());
                    let net = s.network(&mut program);
                    let (kp, _) = s.bytes.pick(program.byte());
                    let data = careledger_bytes_data(kp);
                    let len = careledger_bytes_len(kp);
                    check(
                        careledger_network_invite(node, net.as_ptr(), data, len),
                        expected,
                    );
                }
                6 => {
                    // Move one message from a node's outbox to another node:
                    // try it as a Welcome, then receive it.
                    let (from, expected) = s.nodes.pick(program.byte());
                    let (to, _) = s.nodes.pick(program.byte());
                    let mut message = null_mut();
                    check(careledger_node_poll_outgoing(from, &mut message), expected);
                    if message.is_null() {
                        continue;
                    }
                    s.outgoing.push(message);
                    let data = careledger_outgoing_data(message);
                    let len = careledger_outgoing_len(message);
                    let mut joined = null_mut();
                    let label = c"care";
                    check(
                        careledger_network_join(to, data, len, label.as_ptr(), &mut joined),
                        None,
                    );
                    if !joined.is_null() {
                        s.keep_network(joined);
                    }
                    let net = careledger_outgoing_network_id(message);
                    let messages = [data];
                    let lengths = [len];
                    let mut report = careledger_receive_report::default();
                    check(
                        careledger_network_receive(
                            to,
                            net,
                            messages.as_ptr(),
                            lengths.as_ptr(),
                            1,
                            0,
                            &mut report,
                        ),
                        None,
                    );
                    if program.byte() & 1 == 0 {
                        check(careledger_node_ack_outgoing(from, message), None);
                    }
                }
                7 => {
                    let (node, expected) = s.nodes.pick(program.byte());
                    let net = s.network(&mut program);
                    let raw = program.short_bytes();
                    let messages = [raw.as_ptr(), null()];
                    let lengths = [raw.len(), 3];
                    let count = 1 + (program.byte() % 2) as usize;
                    let mut report = careledger_receive_report::default();
                    let status = careledger_network_receive(
                        node,
                        net.as_ptr(),
                        messages.as_ptr(),
                        lengths.as_ptr(),
                        count,
                        0,
                        &mut report,
                    );
                    check(status, expected);
                }
                8 => {
                    let (node, expected) = s.nodes.pick(program.byte());
                    let net = s.network(&mut program);
                    let fhir = if program.byte() & 1 == 0 {
                        fixture::ndjson_lines("bulk-10-patients/Patient.000.ndjson", 1)
                    } else {
                        program.short_bytes()
                    };
                    let source = program.c_string();
                    let mut report = careledger_import_report::default();
                    let status = careledger_import_fhir(
                        node,
                        net.as_ptr(),
                        source.as_ptr(),
                        fhir.as_ptr(),
                        fhir.len(),
                        &mut report,
                    );
                    check(status, expected);
                }
                9 => {
                    let (node, expected) = s.nodes.pick(program.byte());
                    let net = s.network(&mut program);
                    let mut list = null_mut();
                    check(careledger_patients(node, net.as_ptr(), &mut list), expected);
                    s.lists.push(list);
                    for i in 0..careledger_string_list_count(list) {
                        let patient = careledger_string_list_get(list, i);
                        let mut bundle = null_mut();
                        check(
                            careledger_export_patient(node, net.as_ptr(), patient, &mut bundle),
                            None,
                        );
                        s.bytes.push(bundle);
                    }
                    let mut members = null_mut();
                    check(
                        careledger_network_members(node, net.as_ptr(), &mut members),
                        expected,
                    );
                    s.members.push(members);
                    let mut report = careledger_ledger_report::default();
                    check(
                        careledger_ledger_verify(node, net.as_ptr(), &mut report),
                        None,
                    );
                    let mut networks = null_mut();
                    check(careledger_node_networks(node, &mut networks), expected);
                    s.lists.push(networks);
                }
                10 => {
                    let (node, expected) = s.nodes.pick(program.byte());
                    let cap = program.byte() as usize % 80;
                    let mut buf = vec![0 as c_char; cap];
                    let buf_ptr = if program.byte() & 3 == 0 {
                        null_mut()
                    } else {
                        buf.as_mut_ptr()
                    };
                    let mut len = 0;
                    let status = careledger_node_author_id(node, buf_ptr, cap, &mut len);
                    check(status, expected);
                    let status = careledger_node_fingerprint(node, buf_ptr, cap, null_mut());
                    check(status, expected.or(Some(Status::CARELEDGER_NULL_PARAMETER)));
                }
                11 => {
                    let (bytes, expected) = s.bytes.pick(program.byte());
                    let data = careledger_bytes_data(bytes);
                    let len = careledger_bytes_len(bytes);
                    let text = careledger_bytes_str(bytes);
                    if expected.is_some() {
                        assert!(
                            data.is_null() && len == 0 && text.is_null(),
                            "stale buffer readable"
                        );
                    } else if len > 0 {
                        // Every byte readable: ASan would flag a dangling buffer.
                        let copy = std::slice::from_raw_parts(data, len).to_vec();
                        assert_eq!(copy.len(), len);
                    }
                    if program.byte() & 1 == 0 {
                        s.bytes.free(program.byte(), careledger_bytes_free);
                    }
                }
                12 => {
                    let (list, expected) = s.lists.pick(program.byte());
                    let count = careledger_string_list_count(list);
                    if expected.is_some() {
                        assert_eq!(count, 0, "stale list readable");
                    }
                    let index = program.byte() as usize;
                    let item = careledger_string_list_get(list, index);
                    if index >= count {
                        assert!(item.is_null(), "index past the end answered");
                    }
                    let (members, expected) = s.members.pick(program.byte());
                    let count = careledger_member_list_count(members);
                    if expected.is_some() {
                        assert_eq!(count, 0, "stale member list readable");
                    }
                    for i in 0..count + 1 {
                        careledger_member_list_name(members, i);
                        careledger_member_list_author_id(members, i);
                        careledger_member_list_fingerprint(members, i);
                    }
                    s.lists.free(program.byte(), careledger_string_list_free);
                    s.members.free(program.byte(), careledger_member_list_free);
                }
                13 => {
                    let cap = program.byte() as usize % 64;
                    let mut buf = vec![0 as c_char; cap];
                    let mut len = 0;
                    check(careledger_last_error(buf.as_mut_ptr(), cap, &mut len), None);
                    check(
                        careledger_last_error(null_mut(), cap.max(1), &mut len),
                        Some(Status::CARELEDGER_NULL_PARAMETER),
                    );
                    let _ = careledger_status_str(u32::from(program.byte()) * 7);
                }
                14 => {
                    // Handles of the wrong type: a buffer or list passed as a node.
                    let (bytes, _) = s.bytes.pick(program.byte());
                    let as_node = bytes.cast::<careledger_node>();
                    let mut out = null_mut();
                    let status = careledger_node_key_package(as_node, &mut out);
                    let expected = if bytes.is_null() {
                        Status::CARELEDGER_NULL_PARAMETER
                    } else {
                        Status::CARELEDGER_STALE_HANDLE
                    };
                    check(status, Some(expected));
                    careledger_node_free(as_node);
                    let (message, _) = s.outgoing.pick(program.byte());
                    careledger_outgoing_len(message);
                    careledger_outgoing_network_id(message);
                    if program.byte() & 1 == 0 {
                        s.outgoing.free(program.byte(), careledger_outgoing_free);
                    }
                }
                _ => {
                    // Remove a member named by raw text or by a real author id.
                    let (node, expected) = s.nodes.pick(program.byte());
                    let net = s.network(&mut program);
                    let member = program.c_string();
                    check(
                        careledger_network_remove(node, net.as_ptr(), member.as_ptr()),
                        expected,
                    );
                    check(careledger_network_announce(node, net.as_ptr()), expected);
                }
            }
        }
        s.outgoing.free_all(careledger_outgoing_free);
        s.bytes.free_all(careledger_bytes_free);
        s.lists.free_all(careledger_string_list_free);
        s.members.free_all(careledger_member_list_free);
        s.nodes.free_all(careledger_node_free);
    }
}

/// Call sequences a C integrator makes: two nodes form a network through
/// their outboxes, import a real patient, read and export it, then misuse:
/// stale handles, NULLs, wrong keys, small buffers.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let name = |n: &[u8]| [&[n.len() as u8][..], n].concat();
    let mut create_two = Vec::new();
    create_two.extend([0, 0, 0]);
    create_two.extend(name(b"hospital-a.example"));
    create_two.extend([0, 1, 0]);
    create_two.extend(name(b"hospital-b.example"));
    let mut network = create_two.clone();
    network.extend([4, 0]);
    network.extend(name(b"care"));
    network.extend([3, 1]); // b's key package: bytes[1]
    network.extend([5, 0, 0, 1]); // a invites it into networks[0]
    for _ in 0..3 {
        network.extend([6, 0, 1, 0]); // a's outbox to b
    }
    let mut import = network.clone();
    import.extend([8, 0, 0, 0, 0]);
    for _ in 0..3 {
        import.extend([6, 0, 1, 0]);
    }
    import.extend([9, 1, 0, 9, 0]);
    let mut misuse = import.clone();
    misuse.extend([
        2, 1, 9, 1, 0, 3, 1, 10, 0, 3, 1, 11, 0, 1, 0, 12, 0, 0, 0, 0, 0,
    ]);
    misuse.extend([13, 4, 14, 0, 0, 0, 0, 1, 1, 2]); // reopen b with a wrong key
    misuse.extend([15, 0, 0]);
    misuse.extend(name(b"not-an-author"));
    let mut bad_utf8 = create_two.clone();
    bad_utf8.extend([4, 0, 3, 0xff, 0xfe, b'x', 7, 0, 0, 4, 1, 2, 3, 4, 1]);
    vec![
        ("create-two".into(), create_two),
        ("form-network".into(), network),
        ("import-export".into(), import),
        ("misuse".into(), misuse),
        ("bad-utf8".into(), bad_utf8),
    ]
}
