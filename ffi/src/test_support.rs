//! Helpers for the unit tests: a node in a temporary store, synthetic
//! patients, and reading library-owned outputs.

use std::ffi::{c_char, CStr, CString};
use std::ptr::null_mut;

use serde_json::Value;

use crate::boundary::careledger_last_error;
use crate::buffers::{careledger_bytes, careledger_bytes_free, careledger_bytes_str};
use crate::network::careledger_network_create;
use crate::node::{careledger_node, careledger_node_create, careledger_node_free};
use crate::records::careledger_import_fhir;
use crate::status::careledger_status::*;

/// A NUL-terminated copy of `text`.
pub fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// The detail of the last failure on this thread.
pub fn last_error() -> String {
    let mut buf = vec![0 as c_char; 2048];
    let mut len = 0;
    // SAFETY: buffer and length are valid.
    unsafe { careledger_last_error(buf.as_mut_ptr(), buf.len(), &mut len) };
    // SAFETY: NUL-terminated by careledger_last_error.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The text of a library-owned buffer; frees it.
pub fn take_text(bytes: *mut careledger_bytes) -> String {
    assert!(!bytes.is_null(), "no output was written");
    // SAFETY: a live buffer from careledger, freed once here.
    unsafe {
        let text = CStr::from_ptr(careledger_bytes_str(bytes))
            .to_str()
            .unwrap()
            .to_owned();
        careledger_bytes_free(bytes);
        text
    }
}

/// The JSON of a library-owned buffer; frees it.
pub fn take_json(bytes: *mut careledger_bytes) -> Value {
    serde_json::from_str(&take_text(bytes)).expect("output is JSON")
}

/// NDJSON for `count` patients `p00`, `p01`, …: a Patient, an HbA1c
/// Observation (LOINC 4548-4) and a Condition that is diabetes (SNOMED
/// 44054006) for the upper half of the values (with two exceptions so the
/// classes overlap) and hypertension otherwise.
pub fn synthetic_patients(count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        let id = format!("p{i:02}");
        let value = 5.0 + 4.0 * i as f64 / count as f64;
        let diabetic = (i >= count / 2) != (i == count / 2 + 1 || i + 2 == count / 2);
        let condition = if diabetic { "44054006" } else { "38341003" };
        out.push_str(&format!(
            "{{\"resourceType\":\"Patient\",\"id\":\"{id}\",\"gender\":\"{}\",\"birthDate\":\"19{:02}-01-01\"}}\n",
            if i % 2 == 0 { "female" } else { "male" },
            40 + i % 50
        ));
        out.push_str(&format!(
            "{{\"resourceType\":\"Observation\",\"id\":\"a1c-{id}\",\"status\":\"final\",\
             \"code\":{{\"coding\":[{{\"system\":\"http://loinc.org\",\"code\":\"4548-4\"}}]}},\
             \"subject\":{{\"reference\":\"Patient/{id}\"}},\"effectiveDateTime\":\"2025-03-01\",\
             \"valueQuantity\":{{\"value\":{value:.2},\"unit\":\"%\"}}}}\n"
        ));
        out.push_str(&format!(
            "{{\"resourceType\":\"Condition\",\"id\":\"dx-{id}\",\
             \"code\":{{\"coding\":[{{\"system\":\"http://snomed.info/sct\",\"code\":\"{condition}\"}}]}},\
             \"subject\":{{\"reference\":\"Patient/{id}\"}}}}\n"
        ));
    }
    out
}

/// A node in a temporary store with one network, freed on drop.
pub struct TestNode {
    _dir: tempfile::TempDir,
    pub node: *mut careledger_node,
    pub network: CString,
}

impl TestNode {
    pub fn new(name: &str) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let path = c(dir.path().join("node.sqlite").to_str().unwrap());
        let key = [9u8; 32];
        let mut node = null_mut();
        let mut network = null_mut();
        // SAFETY: every pointer is valid for the call.
        unsafe {
            let status = careledger_node_create(
                path.as_ptr(),
                key.as_ptr(),
                32,
                c(name).as_ptr(),
                &mut node,
            );
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
            let status = careledger_network_create(node, c"care".as_ptr(), &mut network);
            assert_eq!(status, CARELEDGER_OK, "{}", last_error());
        }
        TestNode {
            _dir: dir,
            node,
            network: c(&take_text(network)),
        }
    }

    /// Imports NDJSON into the node's network.
    pub fn import(&self, ndjson: &str) {
        // SAFETY: every pointer is valid for the call.
        let status = unsafe {
            careledger_import_fhir(
                self.node,
                self.network.as_ptr(),
                c"test.ndjson".as_ptr(),
                ndjson.as_ptr(),
                ndjson.len(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, CARELEDGER_OK, "{}", last_error());
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        // SAFETY: created by careledger_node_create, freed once.
        unsafe { careledger_node_free(self.node) }
    }
}
