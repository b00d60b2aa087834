//! Patient records: FHIR R4 resources in and out, and one Automerge
//! document per patient chart.
//!
//! # Flow
//!
//! 1. **Import.** The caller reads a file and calls [`fhir::parse_auto`]
//!    (or [`fhir::parse_ndjson`] / [`fhir::parse_bundle`]). Every resource is
//!    checked by the importer's structural rules and validated against FHIR
//!    R4 ([`r4`]: elements, cardinality, datatypes, choice types, required
//!    bindings), then split into top-level members; Bundle `urn:uuid:`
//!    references are rewritten to `Type/id`. A batch is all-or-nothing: one
//!    bad resource rejects it with an [`fhir::ImportFhirError`] listing the
//!    problems by source, line, field and element path.
//! 2. **Group.** [`fhir::group_by_patient`] splits the batch by patient id
//!    (the Patient's own id, a `Patient/<id>` link, or the single Patient of
//!    the Bundle the resource came in).
//! 3. **Write.** For each patient, the caller opens the chart with
//!    [`doc::RecordDoc::load`] (or [`doc::RecordDoc::new`] for a new chart)
//!    and calls [`doc::RecordDoc::upsert`], which commits the batch as one
//!    Automerge change and returns its raw bytes for the caller to seal and
//!    send. Single edits go through [`doc::RecordDoc::set_member`]. The
//!    caller persists [`doc::RecordDoc::save`].
//! 4. **Receive.** For a change from another site the caller calls
//!    [`doc::RecordDoc::inspect_change`] (actor, hash, deps), holds the
//!    change until [`doc::RecordDoc::missing_deps`] is empty, then calls
//!    [`doc::RecordDoc::apply_change`]. Changes are never queued inside
//!    Automerge.
//! 5. **Read.** [`doc::RecordDoc::resources`], [`doc::RecordDoc::conflicts`],
//!    [`doc::RecordDoc::export_bundle`] and [`doc::RecordDoc::export_ndjson`].
//!    Exports are canonical, so replicas with the same changes export the
//!    same bytes.
//!
//! ```
//! use careledger::record::doc::RecordDoc;
//! use careledger::record::fhir;
//!
//! let ndjson = concat!(
//!     r#"{"resourceType":"Patient","id":"p1","gender":"female"}"#, "\n",
//!     r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"Weight"},"#,
//!     r#""subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50}}"#, "\n",
//! );
//! let resources = fhir::parse_auto("upload.ndjson", ndjson.as_bytes()).unwrap();
//! let mut charts = fhir::group_by_patient(resources).unwrap();
//! let batch = charts.remove("p1").unwrap();
//!
//! // Site A writes the chart; the change bytes go to site B.
//! let mut site_a = RecordDoc::new(&[0xA; 32]);
//! let change = site_a.upsert(&batch, 1_700_000_000_000).unwrap().unwrap();
//!
//! let mut site_b = RecordDoc::new(&[0xB; 32]);
//! let info = RecordDoc::inspect_change(&change).unwrap();
//! assert!(site_b.missing_deps(&info.deps).is_empty());
//! site_b.apply_change(&change).unwrap();
//!
//! assert_eq!(site_a.heads(), site_b.heads());
//! let exported = site_b.export_ndjson().unwrap();
//! assert!(exported.contains(r#""valueQuantity":{"value":1.50}"#));
//! assert_eq!(exported, site_a.export_ndjson().unwrap());
//! ```
//!
//! # Document layout
//!
//! Other Automerge implementations load these documents, so the layout is
//! fixed:
//!
//! ```text
//! root (map)
//!   <resourceType> (map)            e.g. "Observation"
//!     <id> (map)                    the FHIR resource id
//!       <member>: string scalar     minified JSON text of that top-level member,
//!                                   for every member, "resourceType" and "id" included
//! ```
//!
//! Root keys that do not match `[A-Z][A-Za-z]{1,63}` are reserved and
//! ignored by readers. A resource is rebuilt as `{member: JSON.parse(text)}`.
//!
//! Each top-level member is one string rather than nested maps: a FHIR
//! resource then costs ~10–20 Automerge ops (fully nested maps cost
//! automerge 0.12 ~1.5 ms per resource), while concurrent edits of
//! *different* members of one resource at two sites both survive. Edits of
//! the *same* member conflict: Automerge picks the same winner everywhere and
//! [`doc::RecordDoc::conflicts`] lists the member until someone writes it
//! again. Maps created concurrently under one key (two sites adding the first
//! resource of a type, or the same resource) are merged on read, winner
//! first, and written to together, so no site's data is hidden.
//!
//! # Privacy
//!
//! Records are patient data. No error, `Debug` output or log of this module
//! contains a value from a record (nor a resource id): errors name the
//! source, line, field and rule.

pub mod doc;
pub mod fhir;
pub mod r4;
