//! One Automerge document per patient chart.
//!
//! The document layout is pinned in the [module docs](crate::record). This
//! file maps [`Resource`]s onto that layout and wraps the parts of the
//! Automerge change protocol the rest of the crate needs: raw change bytes
//! out of every edit, and dependency-checked application of remote changes.
//!
//! Two sites may create the same map concurrently (both add the first
//! `Observation`, or both import the same resource). Automerge keeps both
//! maps as a conflict and `get` shows only one, which would hide the other
//! site's data. Reads therefore merge all conflicting maps at the type and
//! resource level (the deterministic Automerge winner first, so replicas
//! with the same changes read the same record), and writes go to every one
//! of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    hydrate, ActorId, AutoCommit, AutomergeError, Change, ChangeHash, ObjId, ObjType, ReadDoc,
    Value, ValueRef, ROOT,
};

use crate::record::fhir::{self, is_member_name, is_resource_type, ParseFhirError, Resource};

/// Loading a saved record document failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadRecordError {
    /// The bytes are not a complete saved Automerge document.
    #[error("saved record document could not be loaded")]
    Malformed(#[source] AutomergeError),
}

/// Reading the record out of the document failed: the document does not
/// follow the pinned layout (it can only come from another implementation or
/// a corrupted store, since this module writes only valid records).
#[derive(Debug, thiserror::Error)]
pub enum ReadRecordError {
    /// A value under a resource type or resource id key is not a map.
    #[error("record layout: a value under resource type {resource_type} is not a map")]
    NotAMap {
        /// The root key it was found under.
        resource_type: String,
    },
    /// A member value is not a string scalar.
    #[error("record layout: member `{member}` of a {resource_type} is not a string")]
    NotAString {
        /// Resource type of the resource.
        resource_type: String,
        /// The member name.
        member: String,
    },
    /// The stored members do not form a valid resource (bad JSON text, broken rule).
    #[error("record layout: a stored {resource_type} is not a valid resource")]
    InvalidResource {
        /// Resource type key of the resource.
        resource_type: String,
        /// What is wrong, located by member (source `(fields)`).
        #[source]
        source: Box<ParseFhirError>,
    },
    /// The stored `resourceType` or `id` member differs from the keys the resource is stored under.
    #[error("record layout: a stored {resource_type} has resourceType or id members that differ from its keys")]
    KeyMismatch {
        /// Resource type key of the resource.
        resource_type: String,
    },
    /// Automerge refused a read.
    #[error("record document could not be read")]
    Automerge(#[source] AutomergeError),
}

/// An edit of the record was refused; nothing was committed.
#[derive(Debug, thiserror::Error)]
pub enum EditRecordError {
    /// The resource to edit does not exist in the document.
    #[error("no {resource_type} with the given id in this record")]
    NoSuchResource {
        /// Resource type asked for.
        resource_type: String,
    },
    /// `resourceType` and `id` identify a resource and cannot be edited as members.
    #[error("member `{member}` cannot be edited; it is the resource's key")]
    ProtectedMember {
        /// `resourceType` or `id`.
        member: &'static str,
    },
    /// The member name is not a FHIR JSON member name (`[A-Za-z0-9_]{1,64}`).
    #[error("member name must match [A-Za-z0-9_]{{1,64}}")]
    InvalidMemberName,
    /// The new member value is not valid JSON.
    #[error("new value of member `{member}` is not valid JSON")]
    InvalidJson {
        /// The member being set.
        member: String,
    },
    /// The edited resource would break a validation rule.
    #[error("edit would make the resource invalid: {0}")]
    InvalidResource(#[source] Box<ParseFhirError>),
    /// The current record could not be read.
    #[error("record could not be read before editing")]
    Read(#[from] ReadRecordError),
    /// Automerge refused the write.
    #[error("record document refused the write")]
    Automerge(#[source] AutomergeError),
}

/// A remote change was not applied; the document is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ApplyChangeError {
    /// The bytes are not an Automerge change.
    #[error("bytes are not a valid Automerge change")]
    MalformedChange(#[source] automerge::LoadChangeError),
    /// The change parses but its header checksum does not match its content
    /// (the bytes were altered).
    #[error("change bytes do not match their checksum")]
    CorruptChange,
    /// The change depends on changes this document does not have yet.
    #[error("change depends on {missing} change(s) this record does not have yet")]
    MissingDependencies {
        /// How many dependency hashes are missing.
        missing: usize,
    },
    /// Automerge refused the change (e.g. it reuses an actor's sequence number).
    #[error("record document refused the change")]
    Rejected(#[source] AutomergeError),
    /// The change was made by another actor than the one required.
    #[error("change was made by another actor than its entry's author")]
    WrongActor,
}

/// What a raw change says about itself, read without applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInfo {
    /// Actor id bytes of the author.
    pub actor: Vec<u8>,
    /// The change hash.
    pub hash: [u8; 32],
    /// Hashes of the changes it depends on.
    pub deps: Vec<[u8; 32]>,
    /// The author's sequence number of this change (1-based).
    pub seq: u64,
    /// The time the author committed it with (ms, as passed to the edit).
    pub time_ms: i64,
}

/// A member with more than one concurrently written value.
///
/// Automerge keeps all of them and shows a deterministic winner; writing the
/// member again resolves the conflict. `Debug` omits the id and shows no value.
#[derive(Clone, PartialEq, Eq)]
pub struct MemberConflict {
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub id: String,
    /// Top-level member name.
    pub member: String,
    /// Number of distinct competing values.
    pub candidates: usize,
}

impl fmt::Debug for MemberConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberConflict")
            .field("resource_type", &self.resource_type)
            .field("member", &self.member)
            .field("candidates", &self.candidates)
            .finish_non_exhaustive()
    }
}

/// One patient's chart as an Automerge document.
pub struct RecordDoc {
    doc: AutoCommit,
    /// Raw bytes of the changes made or applied since the last save (full
    /// or incremental), in order: the next increment. Kept as they pass by
    /// because Automerge 0.12 re-encodes changes from its op set on request.
    unsaved: Vec<u8>,
}

impl fmt::Debug for RecordDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordDoc")
            .field("actor", &self.doc.get_actor().to_hex_string())
            .finish_non_exhaustive()
    }
}

fn hash_bytes(hash: &ChangeHash) -> [u8; 32] {
    hash.0
}

fn to_hashes(hashes: &[[u8; 32]]) -> Vec<ChangeHash> {
    hashes.iter().map(|h| ChangeHash(*h)).collect()
}

/// Parses a change chunk and checks its header checksum.
///
/// automerge 0.12 parses changes without checking the checksum, so an
/// altered byte inside a value would otherwise load as a different change.
fn parse_change(bytes: &[u8]) -> Result<Change, ApplyChangeError> {
    let change = Change::try_from(bytes).map_err(ApplyChangeError::MalformedChange)?;
    // Chunk header: 4 magic bytes, then the first 4 bytes of the change hash.
    if bytes.get(4..8) != change.hash().0.get(..4) {
        return Err(ApplyChangeError::CorruptChange);
    }
    Ok(change)
}

/// Member names of one resource, with the winning value of each.
type Members = BTreeMap<String, String>;

impl RecordDoc {
    /// An empty record written by `actor` (the caller passes a 32-byte key hash).
    ///
    /// Each site must use its own actor; two writers sharing one actor
    /// produce changes that Automerge rejects as duplicates.
    pub fn new(actor: &[u8]) -> RecordDoc {
        RecordDoc {
            doc: AutoCommit::new().with_actor(ActorId::from(actor)),
            unsaved: Vec::new(),
        }
    }

    /// Loads a document saved with [`RecordDoc::save`]; new edits are written by `actor`.
    ///
    /// The layout is checked lazily: reads report a [`ReadRecordError`].
    pub fn load(saved: &[u8], actor: &[u8]) -> Result<RecordDoc, LoadRecordError> {
        Self::load_with_increments(Some(saved), &[], actor)
    }

    /// Loads a saved document (or, with `None`, an empty one) followed by the
    /// increments saved after it ([`RecordDoc::save_increment`]), in order.
    pub fn load_with_increments(
        saved: Option<&[u8]>,
        increments: &[Vec<u8>],
        actor: &[u8],
    ) -> Result<RecordDoc, LoadRecordError> {
        let mut doc = match saved {
            Some(saved) => AutoCommit::load(saved).map_err(LoadRecordError::Malformed)?,
            None => AutoCommit::new(),
        };
        for increment in increments {
            doc.load_incremental(increment)
                .map_err(LoadRecordError::Malformed)?;
        }
        Ok(RecordDoc {
            doc: doc.with_actor(ActorId::from(actor)),
            unsaved: Vec::new(),
        })
    }

    /// The whole document, compacted (e.g. to hand to another Automerge
    /// implementation). It does not move the point
    /// [`RecordDoc::save_increment`] counts from: only the cache's own saves do.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Only the changes since the last save (full or incremental): cheap to
    /// write after every transaction; load them with
    /// [`RecordDoc::load_with_increments`].
    pub fn save_increment(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.unsaved)
    }

    /// The whole document without column compression: larger, but several
    /// times cheaper to write; for caches saved on every transaction.
    /// [`RecordDoc::load`] reads both forms.
    pub fn save_uncompressed(&mut self) -> Vec<u8> {
        self.unsaved.clear();
        self.doc.save_nocompress()
    }

    /// Writes resources (insert or replace: members that changed are put,
    /// members that vanished are deleted, unchanged ones are untouched) and
    /// commits them as ONE Automerge change carrying `time_ms`.
    ///
    /// Returns the change's bytes (an Automerge change chunk, compressed as
    /// Automerge compresses changes above 256 bytes; its hash is that of the
    /// uncompressed change), or `None` if nothing changed. Writing
    /// a member also resolves any conflict on it. If one (type, id) appears
    /// twice in `resources`, the later one wins. On error nothing is committed.
    pub fn upsert(
        &mut self,
        resources: &[Resource],
        time_ms: i64,
    ) -> Result<Option<Vec<u8>>, EditRecordError> {
        match self.write_batch(resources) {
            Ok(()) => self.commit(time_ms),
            Err(err) => {
                self.doc.rollback();
                Err(err)
            }
        }
    }

    /// Sets one top-level member to `json` (validated as JSON and minified;
    /// `None` deletes it), as one change. Returns the change bytes, or `None`
    /// if the member already had exactly that value and no conflict.
    ///
    /// The edited resource is re-validated as a whole, so e.g. setting
    /// `subject` to a string is refused. Other members, including their
    /// conflicts, are left alone.
    pub fn set_member(
        &mut self,
        resource_type: &str,
        id: &str,
        member: &str,
        json: Option<&str>,
        time_ms: i64,
    ) -> Result<Option<Vec<u8>>, EditRecordError> {
        if member == "resourceType" {
            return Err(EditRecordError::ProtectedMember {
                member: "resourceType",
            });
        }
        if member == "id" {
            return Err(EditRecordError::ProtectedMember { member: "id" });
        }
        if !is_member_name(member) {
            return Err(EditRecordError::InvalidMemberName);
        }
        let text = match json {
            None => None,
            Some(json) => {
                Some(
                    fhir::minify_json(json).ok_or_else(|| EditRecordError::InvalidJson {
                        member: member.to_owned(),
                    })?,
                )
            }
        };
        let Some(current) = self.resource(resource_type, id)? else {
            return Err(EditRecordError::NoSuchResource {
                resource_type: resource_type.to_owned(),
            });
        };
        let mut fields = current.fields().clone();
        match &text {
            Some(text) => fields.insert(member.to_owned(), text.clone()),
            None => fields.remove(member),
        };
        let edited = Resource::from_fields(fields)
            .map_err(|e| EditRecordError::InvalidResource(Box::new(e)))?;
        // The edit may not add an R4 problem; one the resource already had
        // (written by another site, or merged from concurrent edits) does not
        // block fixing something else.
        if let Err(after) = edited.validate_r4() {
            let before = current.validate_r4().err().map(|e| e.problems);
            let before = before.unwrap_or_default();
            if let Some(new) = after.problems.into_iter().find(|p| !before.contains(p)) {
                return Err(EditRecordError::InvalidResource(Box::new(new)));
            }
        }

        let mut writes = Vec::new();
        for obj in self.resource_objects(resource_type, id)? {
            writes.extend(self.plan_member(&obj, member, text.as_deref())?);
        }
        let written = writes
            .into_iter()
            .try_for_each(|write| self.apply_member(write));
        match written {
            Ok(()) => self.commit(time_ms),
            Err(err) => {
                self.doc.rollback();
                Err(err)
            }
        }
    }

    /// Reads a raw change without applying it.
    pub fn inspect_change(bytes: &[u8]) -> Result<ChangeInfo, ApplyChangeError> {
        let change = parse_change(bytes)?;
        Ok(ChangeInfo {
            actor: change.actor_id().to_bytes().to_vec(),
            hash: hash_bytes(&change.hash()),
            deps: change.deps().iter().map(hash_bytes).collect(),
            seq: change.seq(),
            time_ms: change.timestamp(),
        })
    }

    /// The hashes among `deps` that this document does not have yet (sorted).
    pub fn missing_deps(&mut self, deps: &[[u8; 32]]) -> Vec<[u8; 32]> {
        // The Automerge queue stays empty (apply_change never hands over a
        // change with missing deps), so this is exactly "not in the document".
        let mut missing: Vec<[u8; 32]> = self
            .doc
            .get_missing_deps(&to_hashes(deps))
            .iter()
            .map(hash_bytes)
            .collect();
        missing.sort_unstable();
        missing
    }

    /// Applies one remote change whose dependencies are all present.
    ///
    /// A change with missing dependencies is refused with
    /// [`ApplyChangeError::MissingDependencies`] instead of being queued
    /// invisibly inside Automerge; the caller holds it and retries after
    /// applying the missing ones. Applying a change already present is a
    /// no-op.
    pub fn apply_change(&mut self, bytes: &[u8]) -> Result<(), ApplyChangeError> {
        self.apply_parsed(parse_change(bytes)?, bytes)
    }

    /// Like [`RecordDoc::apply_change`], but first checks that the change was
    /// made by `actor` (the ledger binds actors to entry signers), parsing the
    /// change once for both.
    pub fn apply_change_by(&mut self, bytes: &[u8], actor: &[u8]) -> Result<(), ApplyChangeError> {
        let change = parse_change(bytes)?;
        if change.actor_id().to_bytes() != actor {
            return Err(ApplyChangeError::WrongActor);
        }
        self.apply_parsed(change, bytes)
    }

    /// `bytes` is exactly the chunk `change` was parsed from (nothing may
    /// follow it), kept as it came (compressed or not) for the next save.
    fn apply_parsed(&mut self, change: Change, bytes: &[u8]) -> Result<(), ApplyChangeError> {
        // A change-graph lookup: `get_change_meta_by_hash` would rebuild the
        // change's metadata from the op set.
        let hash = change.hash();
        if self.doc.get_missing_deps(&[hash]).is_empty() {
            return Ok(());
        }
        let missing = self.doc.get_missing_deps(change.deps());
        if !missing.is_empty() {
            return Err(ApplyChangeError::MissingDependencies {
                missing: missing.len(),
            });
        }
        self.doc
            .apply_changes([change])
            .map_err(ApplyChangeError::Rejected)?;
        self.unsaved.extend_from_slice(bytes);
        Ok(())
    }

    /// Current heads (sorted).
    pub fn heads(&mut self) -> Vec<[u8; 32]> {
        let mut heads: Vec<[u8; 32]> = self.doc.get_heads().iter().map(hash_bytes).collect();
        heads.sort_unstable();
        heads
    }

    /// The bytes of one change of this document, e.g. to resend it: the
    /// change chunk as Automerge stores it, compressed above 256 bytes
    /// (FHIR JSON compresses about tenfold, and every entry carrying it is
    /// hashed, sealed, signed, stored and sent).
    pub fn change_bytes(&mut self, hash: &[u8; 32]) -> Option<Vec<u8>> {
        self.doc
            .get_change_by_hash(&ChangeHash(*hash))
            .map(|mut change| change.bytes().into_owned())
    }

    /// Raw bytes of every change not reachable from `heads`, dependencies
    /// first (all changes for `heads = []`), to catch a peer up.
    pub fn changes_since(&mut self, heads: &[[u8; 32]]) -> Vec<Vec<u8>> {
        self.doc
            .get_changes(&to_hashes(heads))
            .into_iter()
            .map(|change| change.raw_bytes().to_vec())
            .collect()
    }

    /// Every resource, sorted by (resourceType, id).
    ///
    /// Fails if the document does not follow the layout or holds a member
    /// that is not valid JSON: a record is never returned partially.
    pub fn resources(&self) -> Result<Vec<Resource>, ReadRecordError> {
        let mut out = Vec::new();
        for resource_type in self.type_keys() {
            let type_objects = self.map_candidates(&ROOT, &resource_type, &resource_type)?;
            let mut ids = BTreeSet::new();
            for obj in &type_objects {
                ids.extend(self.doc.keys(obj));
            }
            for id in ids {
                let objects = self.objects_under(&type_objects, &resource_type, &id)?;
                if let Some(resource) = self.read_resource(&resource_type, &id, &objects)? {
                    out.push(resource);
                }
            }
        }
        Ok(out)
    }

    /// One resource, or `None` if absent.
    pub fn resource(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Resource>, ReadRecordError> {
        let objects = self.resource_objects(resource_type, id)?;
        self.read_resource(resource_type, id, &objects)
    }

    /// The record as it was at `heads` (hashes of changes this document
    /// holds): a separate document, for reading a dataset at a checkpoint.
    /// Returns a plain copy when `heads` are the current heads.
    pub fn at(&mut self, heads: &[[u8; 32]]) -> Result<RecordDoc, ReadRecordError> {
        let doc = self
            .doc
            .fork_at(&to_hashes(heads))
            .map_err(ReadRecordError::Automerge)?;
        Ok(RecordDoc {
            doc,
            unsaved: Vec::new(),
        })
    }

    /// The writers (actor ids, i.e. author ids) of the winning values of one
    /// resource's members, sorted and deduplicated; empty if the resource is
    /// absent. Tells who wrote a `Consent`: the patient's node, or someone
    /// recording it on the patient's behalf.
    pub fn resource_authors(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Vec<Vec<u8>>, ReadRecordError> {
        let objects = self.resource_objects(resource_type, id)?;
        let mut seen = BTreeMap::new();
        let mut authors = BTreeSet::new();
        for obj in &objects {
            for item in self.doc.map_range(obj, ..) {
                if seen.insert(item.key.to_string(), ()).is_some() {
                    continue;
                }
                if let automerge::ObjId::Id(_, actor, _) = item.id() {
                    authors.insert(actor.to_bytes().to_vec());
                }
            }
        }
        Ok(authors.into_iter().collect())
    }

    /// Members with concurrently written, differing values, sorted by (type, id, member).
    ///
    /// Parts of the document that do not follow the layout are skipped here
    /// ([`RecordDoc::resources`] reports them).
    pub fn conflicts(&self) -> Vec<MemberConflict> {
        let mut out = Vec::new();
        for resource_type in self.type_keys() {
            let Ok(type_objects) = self.map_candidates(&ROOT, &resource_type, &resource_type)
            else {
                continue;
            };
            let mut ids = BTreeSet::new();
            for obj in &type_objects {
                ids.extend(self.doc.keys(obj));
            }
            for id in ids {
                let Ok(objects) = self.objects_under(&type_objects, &resource_type, &id) else {
                    continue;
                };
                let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for obj in &objects {
                    for item in self.doc.map_range(obj, ..) {
                        if !item.conflict && objects.len() == 1 {
                            continue;
                        }
                        let Ok(all) = self.doc.get_all(obj, item.key.as_ref()) else {
                            continue;
                        };
                        let slot = values.entry(item.key.to_string()).or_default();
                        for (value, _) in all {
                            if let Some(s) = value.as_str() {
                                slot.insert(s.to_owned());
                            }
                        }
                    }
                }
                for (member, candidates) in values {
                    if candidates.len() > 1 {
                        out.push(MemberConflict {
                            resource_type: resource_type.clone(),
                            id: id.clone(),
                            member,
                            candidates: candidates.len(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The record as a canonical collection Bundle (see [`fhir::export_bundle`]).
    pub fn export_bundle(&self) -> Result<String, ReadRecordError> {
        Ok(fhir::export_bundle(&self.resources()?))
    }

    /// The record as canonical NDJSON (see [`fhir::export_ndjson`]).
    pub fn export_ndjson(&self) -> Result<String, ReadRecordError> {
        Ok(fhir::export_ndjson(&self.resources()?))
    }

    /// Number of resources (distinct (type, id) pairs) in the record.
    pub fn resource_count(&self) -> usize {
        let mut count = 0;
        for resource_type in self.type_keys() {
            let Ok(type_objects) = self.map_candidates(&ROOT, &resource_type, &resource_type)
            else {
                continue;
            };
            let mut ids = BTreeSet::new();
            for obj in &type_objects {
                ids.extend(self.doc.keys(obj));
            }
            count += ids.len();
        }
        count
    }

    // --- private helpers ---

    fn commit(&mut self, time_ms: i64) -> Result<Option<Vec<u8>>, EditRecordError> {
        let Some(hash) = self
            .doc
            .commit_with(CommitOptions::default().with_time(time_ms))
        else {
            return Ok(None);
        };
        let bytes = self.change_bytes(&hash.0);
        if let Some(bytes) = &bytes {
            self.unsaved.extend_from_slice(bytes);
        }
        Ok(bytes)
    }

    /// Root keys that name resource types; other root keys are reserved and ignored.
    fn type_keys(&self) -> Vec<String> {
        self.doc
            .keys(ROOT)
            .filter(|key| is_resource_type(key))
            .collect()
    }

    /// The map objects stored under `key` in `parent`: the Automerge winner
    /// first, then the other conflicting maps. Empty if the key is absent.
    fn map_candidates(
        &self,
        parent: &ObjId,
        key: &str,
        resource_type: &str,
    ) -> Result<Vec<ObjId>, ReadRecordError> {
        let all = self
            .doc
            .get_all(parent, key)
            .map_err(ReadRecordError::Automerge)?;
        let mut objects = Vec::with_capacity(all.len());
        for (value, obj) in all.into_iter().rev() {
            match value {
                Value::Object(ObjType::Map) => objects.push(obj),
                _ => {
                    return Err(ReadRecordError::NotAMap {
                        resource_type: resource_type.to_owned(),
                    })
                }
            }
        }
        // get_all lists values in op order and the winner is the last one;
        // make sure it leads even if that ever changes.
        if let Some((_, winner)) = self
            .doc
            .get(parent, key)
            .map_err(ReadRecordError::Automerge)?
        {
            if let Some(pos) = objects.iter().position(|o| *o == winner) {
                if let Some(leading) = objects.get_mut(..=pos) {
                    leading.rotate_right(1);
                }
            }
        }
        Ok(objects)
    }

    fn objects_under(
        &self,
        type_objects: &[ObjId],
        resource_type: &str,
        id: &str,
    ) -> Result<Vec<ObjId>, ReadRecordError> {
        let mut objects = Vec::new();
        for type_obj in type_objects {
            objects.extend(self.map_candidates(type_obj, id, resource_type)?);
        }
        Ok(objects)
    }

    fn resource_objects(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Vec<ObjId>, ReadRecordError> {
        let type_objects = self.map_candidates(&ROOT, resource_type, resource_type)?;
        self.objects_under(&type_objects, resource_type, id)
    }

    /// Merges the members of all maps of one resource (earlier maps take precedence).
    fn read_members(
        &self,
        resource_type: &str,
        objects: &[ObjId],
    ) -> Result<Members, ReadRecordError> {
        let mut members = Members::new();
        for obj in objects {
            for item in self.doc.map_range(obj, ..) {
                if members.contains_key(item.key.as_ref()) {
                    continue;
                }
                let ValueRef::Scalar(automerge::ScalarValueRef::Str(text)) = item.value else {
                    return Err(ReadRecordError::NotAString {
                        resource_type: resource_type.to_owned(),
                        member: fhir_member_label(&item.key),
                    });
                };
                members.insert(item.key.into_owned(), text.into_owned());
            }
        }
        Ok(members)
    }

    fn read_resource(
        &self,
        resource_type: &str,
        id: &str,
        objects: &[ObjId],
    ) -> Result<Option<Resource>, ReadRecordError> {
        if objects.is_empty() {
            return Ok(None);
        }
        let members = self.read_members(resource_type, objects)?;
        let resource =
            Resource::from_fields(members).map_err(|source| ReadRecordError::InvalidResource {
                resource_type: resource_type.to_owned(),
                source: Box::new(source),
            })?;
        if resource.resource_type() != resource_type || resource.id() != id {
            return Err(ReadRecordError::KeyMismatch {
                resource_type: resource_type.to_owned(),
            });
        }
        Ok(Some(resource))
    }

    /// Writes a batch inside the open transaction.
    ///
    /// New maps are created with `batch_create_object`: one OpSet splice for
    /// a whole subtree instead of one per op (~7x faster on import; the ops
    /// are the same puts as member by member). Existing resources are diffed
    /// member by member: all reads first, then the writes in descending
    /// object order. The order matters in automerge 0.12 on a loaded
    /// document: its value column starts as one slab that each write splits
    /// at the write position, copying the part after it, so ascending writes
    /// copy the whole tail every time (measured ~100x slower).
    fn write_batch(&mut self, resources: &[Resource]) -> Result<(), EditRecordError> {
        let mut by_type: BTreeMap<&str, BTreeMap<&str, &Resource>> = BTreeMap::new();
        for resource in resources {
            // Later duplicates replace earlier ones, as sequential upserts would.
            by_type
                .entry(resource.resource_type())
                .or_default()
                .insert(resource.id(), resource);
        }
        let mut new_types: Vec<(&str, hydrate::Value)> = Vec::new();
        let mut new_resources: Vec<(ObjId, &str, &Resource)> = Vec::new();
        let mut writes: Vec<MemberWrite> = Vec::new();
        for (resource_type, batch) in by_type {
            let type_objects = self.map_candidates(&ROOT, resource_type, resource_type)?;
            let Some(first) = type_objects.first() else {
                let all: HashMap<String, hydrate::Value> = batch
                    .into_iter()
                    .map(|(id, resource)| (id.to_owned(), members_value(resource)))
                    .collect();
                new_types.push((resource_type, hydrate::Value::Map(all.into())));
                continue;
            };
            for (id, resource) in batch {
                let objects = self.objects_under(&type_objects, resource_type, id)?;
                if objects.is_empty() {
                    new_resources.push((first.clone(), id, resource));
                    continue;
                }
                for obj in &objects {
                    let stale: Vec<String> = self
                        .doc
                        .keys(obj)
                        .filter(|key| !resource.fields().contains_key(key))
                        .collect();
                    for name in stale {
                        writes.extend(self.plan_member(obj, &name, None)?);
                    }
                    for (name, text) in resource.fields() {
                        writes.extend(self.plan_member(obj, name, Some(text))?);
                    }
                }
            }
        }

        writes.sort_by(|a, b| (&b.obj, &b.member).cmp(&(&a.obj, &a.member)));
        for write in writes {
            self.apply_member(write)?;
        }
        for (type_obj, id, resource) in new_resources {
            self.doc
                .batch_create_object(&type_obj, id, &members_value(resource), false)
                .map_err(EditRecordError::Automerge)?;
        }
        for (resource_type, value) in new_types {
            self.doc
                .batch_create_object(ROOT, resource_type, &value, false)
                .map_err(EditRecordError::Automerge)?;
        }
        Ok(())
    }

    /// The write that makes one member of one map exactly `text` (a single,
    /// unconflicted value; `None`: absent), or `None` if it already is.
    fn plan_member(
        &self,
        obj: &ObjId,
        member: &str,
        text: Option<&str>,
    ) -> Result<Option<MemberWrite>, EditRecordError> {
        let current = self
            .doc
            .get_all(obj, member)
            .map_err(EditRecordError::Automerge)?;
        let needed = match text {
            Some(text) => {
                !matches!(current.as_slice(), [(value, _)] if value.as_str() == Some(text))
            }
            None => !current.is_empty(),
        };
        Ok(needed.then(|| MemberWrite {
            obj: obj.clone(),
            member: member.to_owned(),
            text: text.map(str::to_owned),
        }))
    }

    fn apply_member(&mut self, write: MemberWrite) -> Result<(), EditRecordError> {
        match write.text {
            Some(text) => self.doc.put(&write.obj, write.member, text),
            None => self.doc.delete(&write.obj, write.member),
        }
        .map_err(EditRecordError::Automerge)
    }
}

/// One planned member put (`Some`) or delete (`None`).
struct MemberWrite {
    obj: ObjId,
    member: String,
    text: Option<String>,
}

/// A resource's members as a hydrate map of string scalars (the pinned layout).
fn members_value(resource: &Resource) -> hydrate::Value {
    let members: HashMap<String, hydrate::Value> = resource
        .fields()
        .iter()
        .map(|(name, text)| (name.clone(), hydrate::Value::scalar(text.as_str())))
        .collect();
    hydrate::Value::Map(members.into())
}

/// A member name fit for an error message (masked if it does not look like an element name).
fn fhir_member_label(name: &str) -> String {
    if is_member_name(name) {
        name.to_owned()
    } else {
        "<member>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::fhir::{group_by_patient, parse_bundle, parse_ndjson};
    use proptest::prelude::*;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};
    use std::path::PathBuf;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/fhir");
    const T0: i64 = 1_700_000_000_000;

    fn actor(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn data_files(dir: &str, suffix: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(format!("{DATA}/{dir}"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no data files in {dir}");
        files
    }

    fn key(r: &Resource) -> (String, String) {
        (r.resource_type().to_owned(), r.id().to_owned())
    }

    fn key_of(v: &Value) -> (String, String) {
        (
            v["resourceType"].as_str().unwrap().to_owned(),
            v["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Writes one chart, exports it both ways, parses the exports back and
    /// checks every resource against `expected` (independently parsed input)
    /// and `inputs` (exact member text). Also checks save/load and that the
    /// change bytes alone rebuild the chart elsewhere. Returns the export.
    fn round_trip(
        resources: &[Resource],
        expected: &HashMap<(String, String), Value>,
    ) -> Vec<Resource> {
        let mut doc = RecordDoc::new(&actor(1));
        let change = doc.upsert(resources, T0).unwrap().unwrap();
        assert_eq!(doc.resource_count(), resources.len());
        let bundle = doc.export_bundle().unwrap();
        let ndjson = doc.export_ndjson().unwrap();
        assert_eq!(ndjson.lines().count(), resources.len());
        let inputs: HashMap<_, _> = resources.iter().map(|r| (key(r), r)).collect();
        let from_bundle = parse_bundle("export.json", &bundle).unwrap();
        let from_ndjson = parse_ndjson("export.ndjson", &ndjson).unwrap();
        for exported in [&from_bundle, &from_ndjson] {
            assert_eq!(exported.len(), resources.len());
            for r in exported {
                assert_eq!(&r.to_value(), &expected[&key(r)]);
                assert_eq!(r, inputs[&key(r)], "member text changed");
            }
        }
        assert_eq!(fhir::export_bundle(&from_ndjson), bundle);

        let saved = doc.save();
        let mut loaded = RecordDoc::load(&saved, &actor(2)).unwrap();
        assert_eq!(loaded.export_bundle().unwrap(), bundle);
        assert_eq!(loaded.heads(), doc.heads());

        let mut elsewhere = RecordDoc::new(&actor(3));
        elsewhere.apply_change(&change).unwrap();
        assert_eq!(elsewhere.export_ndjson().unwrap(), ndjson);

        assert_eq!(
            doc.upsert(resources, T0 + 1).unwrap(),
            None,
            "re-upsert must be a no-op"
        );
        from_bundle
    }

    #[test]
    fn bulk_ndjson_round_trips_losslessly() {
        let mut all = Vec::new();
        let mut expected = HashMap::new();
        for path in data_files("bulk-10-patients", ".ndjson") {
            let text = std::fs::read_to_string(&path).unwrap();
            let source = path.to_string_lossy();
            let resources = parse_ndjson(&source, &text).unwrap();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(resources.len(), lines.len());
            for (resource, line) in resources.iter().zip(&lines) {
                // Input lines are minified: canonical output is the same bytes, reordered.
                assert_eq!(resource.to_json().len(), line.len());
                let value: Value = serde_json::from_str(line).unwrap();
                assert!(expected.insert(key_of(&value), value).is_none());
            }
            all.extend(resources);
        }
        assert_eq!(all.len(), expected.len());
        let total = all.len();
        let groups = group_by_patient(all).unwrap();
        assert_eq!(groups.len(), 13);
        assert_eq!(groups.values().map(Vec::len).sum::<usize>(), total);
        for (patient, resources) in &groups {
            let patients: Vec<&Resource> = resources
                .iter()
                .filter(|r| r.resource_type() == "Patient")
                .collect();
            assert_eq!(patients.len(), 1);
            assert_eq!(patients[0].id(), patient);
            round_trip(resources, &expected);
        }
    }

    /// Resolves a Bundle the simple way, as the test's independent expectation.
    fn resolve_bundle_independently(text: &str) -> Vec<Value> {
        let bundle: Value = serde_json::from_str(text).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        let mut map = HashMap::new();
        for entry in entries {
            let url = entry["fullUrl"].as_str().unwrap();
            let uuid = url.strip_prefix("urn:uuid:").unwrap();
            let resource = &entry["resource"];
            let id = resource["id"].as_str().unwrap_or(uuid);
            map.insert(
                url.to_owned(),
                format!("{}/{id}", resource["resourceType"].as_str().unwrap()),
            );
        }
        fn walk(v: &mut Value, map: &HashMap<String, String>) {
            match v {
                Value::Object(o) => {
                    for (k, v) in o.iter_mut() {
                        match v {
                            Value::String(s) if k == "reference" => {
                                if let Some(t) = map.get(s.as_str()) {
                                    *s = t.clone();
                                }
                            }
                            _ => walk(v, map),
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(|v| walk(v, map)),
                _ => {}
            }
        }
        entries
            .iter()
            .map(|entry| {
                let mut resource = entry["resource"].clone();
                if resource.get("id").is_none() {
                    let uuid = entry["fullUrl"].as_str().unwrap()["urn:uuid:".len()..].to_owned();
                    resource["id"] = Value::String(uuid);
                }
                walk(&mut resource, &map);
                resource
            })
            .collect()
    }

    fn references<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    if let (true, Some(s)) = (k == "reference", v.as_str()) {
                        out.push(s);
                    } else {
                        references(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }

    #[test]
    fn hiv_bundles_round_trip_with_resolved_references() {
        for path in data_files("synthea-hiv-bundles", ".json") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("\"reference\": \"urn:uuid:"));
            let expected_list = resolve_bundle_independently(&text);
            let expected: HashMap<_, _> = expected_list
                .iter()
                .map(|v| (key_of(v), v.clone()))
                .collect();
            let resources = parse_bundle(&path.to_string_lossy(), &text).unwrap();
            assert_eq!(resources.len(), expected_list.len());

            let groups = group_by_patient(resources).unwrap();
            assert_eq!(groups.len(), 1, "one patient per bundle");
            let (patient, resources) = groups.into_iter().next().unwrap();
            assert_eq!(
                resources.len(),
                expected_list.len(),
                "all entries in the chart"
            );
            assert!(resources
                .iter()
                .any(|r| r.resource_type() == "Patient" && r.id() == patient));

            let exported = round_trip(&resources, &expected);
            let targets: HashSet<String> = exported
                .iter()
                .map(|r| format!("{}/{}", r.resource_type(), r.id()))
                .collect();
            let mut resolved = 0;
            for resource in &exported {
                let value = resource.to_value();
                let mut refs = Vec::new();
                references(&value, &mut refs);
                for reference in refs {
                    assert!(
                        !reference.starts_with("urn:uuid:"),
                        "unresolved reference left"
                    );
                    if reference.starts_with('#') || reference.contains('?') {
                        continue; // contained resource or conditional reference
                    }
                    assert!(
                        targets.contains(reference),
                        "reference to a resource not in the bundle"
                    );
                    resolved += 1;
                }
            }
            assert!(resolved > 100, "{resolved}");
        }
    }

    fn observation(extra: &str) -> Vec<Resource> {
        let text = format!(
            concat!(
                r#"{{"resourceType":"Patient","id":"p1","gender":"female"}}"#,
                "\n",
                r#"{{"resourceType":"Observation","id":"o1","status":"final","code":{{"text":"bp"}},"#,
                r#""subject":{{"reference":"Patient/p1"}},"valueQuantity":{{"value":1.50}}{}}}"#
            ),
            extra
        );
        parse_ndjson("t.ndjson", &text).unwrap()
    }

    /// Two sites sharing one chart, forked from a common save.
    fn forked_pair() -> (RecordDoc, RecordDoc) {
        let mut origin = RecordDoc::new(&actor(1));
        origin.upsert(&observation(""), T0).unwrap();
        let saved = origin.save();
        (
            RecordDoc::load(&saved, &actor(0xA)).unwrap(),
            RecordDoc::load(&saved, &actor(0xB)).unwrap(),
        )
    }

    fn member(doc: &RecordDoc, member: &str) -> Option<String> {
        doc.resource("Observation", "o1")
            .unwrap()
            .unwrap()
            .fields()
            .get(member)
            .cloned()
    }

    #[test]
    fn concurrent_edits_of_different_members_both_survive() {
        let (mut a, mut b) = forked_pair();
        let ca = a
            .set_member("Observation", "o1", "status", Some("\"amended\""), T0 + 1)
            .unwrap()
            .unwrap();
        let cb = b
            .set_member(
                "Observation",
                "o1",
                "code",
                Some(r#"{ "text": "blood pressure" }"#),
                T0 + 2,
            )
            .unwrap()
            .unwrap();
        a.apply_change(&cb).unwrap();
        b.apply_change(&ca).unwrap();
        assert_eq!(a.heads(), b.heads());
        assert_eq!(a.heads().len(), 2);
        assert_eq!(a.export_bundle().unwrap(), b.export_bundle().unwrap());
        for doc in [&a, &b] {
            assert_eq!(member(doc, "status").as_deref(), Some("\"amended\""));
            assert_eq!(
                member(doc, "code").as_deref(),
                Some(r#"{"text":"blood pressure"}"#)
            );
            assert!(doc.conflicts().is_empty());
        }
    }

    #[test]
    fn concurrent_edits_of_same_member_pick_same_winner() {
        let (mut a, mut b) = forked_pair();
        let ca = a
            .set_member("Observation", "o1", "status", Some("\"amended\""), T0 + 1)
            .unwrap()
            .unwrap();
        let cb = b
            .set_member("Observation", "o1", "status", Some("\"cancelled\""), T0 + 1)
            .unwrap()
            .unwrap();
        a.apply_change(&cb).unwrap();
        b.apply_change(&ca).unwrap();
        assert_eq!(a.heads(), b.heads());
        assert_eq!(a.export_bundle().unwrap(), b.export_bundle().unwrap());
        let winner = member(&a, "status").unwrap();
        assert!(winner == "\"amended\"" || winner == "\"cancelled\"");
        assert_eq!(member(&b, "status").unwrap(), winner);
        for doc in [&a, &b] {
            let conflicts = doc.conflicts();
            assert_eq!(conflicts.len(), 1);
            assert_eq!(conflicts[0].resource_type, "Observation");
            assert_eq!(conflicts[0].id, "o1");
            assert_eq!(conflicts[0].member, "status");
            assert_eq!(conflicts[0].candidates, 2);
            let shown = format!("{:?}", conflicts[0]);
            assert!(
                !shown.contains("o1") && !shown.contains("amended"),
                "{shown}"
            );
        }
        // Writing the member again (even with the winning value) resolves the conflict.
        let resolve = a
            .set_member("Observation", "o1", "status", Some(&winner), T0 + 2)
            .unwrap()
            .unwrap();
        b.apply_change(&resolve).unwrap();
        assert!(a.conflicts().is_empty() && b.conflicts().is_empty());
        assert_eq!(a.export_bundle().unwrap(), b.export_bundle().unwrap());
    }

    #[test]
    fn concurrently_created_maps_are_merged_not_hidden() {
        // Two sites with no shared history create the same type and resource maps.
        let mut a = RecordDoc::new(&actor(0xA));
        let mut b = RecordDoc::new(&actor(0xB));
        let ca = a.upsert(&observation(""), T0).unwrap().unwrap();
        let cb = b
            .upsert(
                &parse_ndjson(
                    "b.ndjson",
                    concat!(
                        r#"{"resourceType":"Patient","id":"p1","birthDate":"1970-01-01"}"#,
                        "\n",
                        r#"{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"hr"},"subject":{"reference":"Patient/p1"}}"#
                    ),
                )
                .unwrap(),
                T0,
            )
            .unwrap()
            .unwrap();
        a.apply_change(&cb).unwrap();
        b.apply_change(&ca).unwrap();
        for doc in [&a, &b] {
            assert_eq!(doc.resource_count(), 3);
            let ids: Vec<String> = doc
                .resources()
                .unwrap()
                .iter()
                .map(|r| r.id().to_owned())
                .collect();
            assert_eq!(ids, ["o1", "o2", "p1"]);
            let patient = doc.resource("Patient", "p1").unwrap().unwrap();
            assert!(patient.fields().contains_key("gender"));
            assert!(patient.fields().contains_key("birthDate"));
        }
        assert_eq!(a.export_bundle().unwrap(), b.export_bundle().unwrap());

        // A replacement reaches both maps: removed members do not come back from the other one.
        let replacement = parse_ndjson(
            "r.ndjson",
            r#"{"resourceType":"Patient","id":"p1","name":[{"text":"x"}]}"#,
        )
        .unwrap();
        let change = a.upsert(&replacement, T0 + 1).unwrap().unwrap();
        b.apply_change(&change).unwrap();
        for doc in [&a, &b] {
            let patient = doc.resource("Patient", "p1").unwrap().unwrap();
            assert_eq!(patient, replacement[0]);
            assert!(doc.conflicts().is_empty());
        }
        assert_eq!(a.export_bundle().unwrap(), b.export_bundle().unwrap());
    }

    #[test]
    fn upsert_puts_changed_and_deletes_vanished_members() {
        let mut doc = RecordDoc::new(&actor(1));
        assert_eq!(doc.upsert(&[], T0).unwrap(), None);
        doc.upsert(&observation(r#","note":[{"text":"n"}]"#), T0)
            .unwrap()
            .unwrap();
        let change = doc
            .upsert(&observation(r#","issued":"2020-01-01T00:00:00Z""#), T0 + 5)
            .unwrap()
            .unwrap();
        let info = RecordDoc::inspect_change(&change).unwrap();
        assert_eq!(info.actor, actor(1).to_vec());
        assert_eq!(info.time_ms, T0 + 5);
        assert_eq!(info.seq, 2);
        assert_eq!(info.deps.len(), 1);
        assert_eq!(doc.heads(), vec![info.hash]);
        assert_eq!(member(&doc, "note"), None);
        assert_eq!(
            member(&doc, "issued").as_deref(),
            Some("\"2020-01-01T00:00:00Z\"")
        );
        assert_eq!(doc.change_bytes(&info.hash).unwrap(), change);
        assert_eq!(doc.changes_since(&[]).len(), 2);
        let heads = doc.heads();
        assert_eq!(doc.changes_since(&heads).len(), 0);
    }

    #[test]
    fn set_member_validates_and_keeps_number_text() {
        let mut doc = RecordDoc::new(&actor(1));
        doc.upsert(&observation(""), T0).unwrap();
        let set = |doc: &mut RecordDoc, m: &str, v: Option<&str>| {
            doc.set_member("Observation", "o1", m, v, T0 + 1)
        };
        assert!(matches!(
            set(&mut doc, "id", Some("\"x\"")),
            Err(EditRecordError::ProtectedMember { member: "id" })
        ));
        assert!(matches!(
            set(&mut doc, "resourceType", None),
            Err(EditRecordError::ProtectedMember { .. })
        ));
        assert!(matches!(
            set(&mut doc, "bad name", None),
            Err(EditRecordError::InvalidMemberName)
        ));
        let err = set(&mut doc, "status", Some("\"unterminated secret")).unwrap_err();
        assert!(matches!(err, EditRecordError::InvalidJson { .. }));
        assert!(!err.to_string().contains("secret"));
        let err = set(&mut doc, "subject", Some("\"Patient/p1\"")).unwrap_err();
        assert!(
            matches!(&err, EditRecordError::InvalidResource(e) if matches!(**e, ParseFhirError::WrongType { .. }))
        );
        let err = doc
            .set_member("Observation", "nope", "status", Some("\"final\""), T0)
            .unwrap_err();
        assert!(matches!(err, EditRecordError::NoSuchResource { .. }));
        let heads = doc.heads();
        assert_eq!(set(&mut doc, "status", Some(" \"final\" ")).unwrap(), None);
        assert_eq!(doc.heads(), heads, "refused and no-op edits commit nothing");

        set(
            &mut doc,
            "valueQuantity",
            Some(r#"{"value": 1e2, "unit": "mg"}"#),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            member(&doc, "valueQuantity").as_deref(),
            Some(r#"{"value":1e2,"unit":"mg"}"#)
        );
        set(&mut doc, "valueQuantity", None).unwrap().unwrap();
        assert_eq!(member(&doc, "valueQuantity"), None);
        assert_eq!(set(&mut doc, "valueQuantity", None).unwrap(), None);
    }

    #[test]
    fn apply_change_refuses_missing_dependencies() {
        let mut a = RecordDoc::new(&actor(0xA));
        let c1 = a.upsert(&observation(""), T0).unwrap().unwrap();
        let c2 = a
            .set_member("Observation", "o1", "status", Some("\"amended\""), T0 + 1)
            .unwrap()
            .unwrap();
        let mut b = RecordDoc::new(&actor(0xB));
        b.upsert(
            &parse_ndjson("x", r#"{"resourceType":"Patient","id":"other"}"#).unwrap(),
            T0,
        )
        .unwrap();
        let heads = b.heads();
        let before = b.export_bundle().unwrap();
        let saved = b.save();

        let err = b.apply_change(&c2).unwrap_err();
        assert!(
            matches!(err, ApplyChangeError::MissingDependencies { missing: 1 }),
            "{err:?}"
        );
        assert_eq!(b.heads(), heads);
        assert_eq!(b.export_bundle().unwrap(), before);
        assert_eq!(b.save(), saved);
        let c1_hash = RecordDoc::inspect_change(&c1).unwrap().hash;
        let c2_deps = RecordDoc::inspect_change(&c2).unwrap().deps;
        assert_eq!(b.missing_deps(&c2_deps), vec![c1_hash]);

        b.apply_change(&c1).unwrap();
        assert!(b.missing_deps(&c2_deps).is_empty());
        b.apply_change(&c2).unwrap();
        let after = b.heads();
        b.apply_change(&c2).unwrap();
        b.apply_change(&c1).unwrap();
        assert_eq!(b.heads(), after, "re-applying is a no-op");
        assert_eq!(member(&b, "status").as_deref(), Some("\"amended\""));
    }

    #[test]
    fn garbage_bytes_are_malformed_not_panics() {
        let mut a = RecordDoc::new(&actor(0xA));
        let change = a.upsert(&observation(""), T0).unwrap().unwrap();
        let mut flipped = change.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        let candidates: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"garbage".to_vec(),
            vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0xff],
            change[..change.len() - 3].to_vec(),
            flipped,
            [change.as_slice(), b"x"].concat(),
        ];
        let mut b = RecordDoc::new(&actor(0xB));
        for bytes in &candidates {
            assert!(matches!(
                RecordDoc::inspect_change(bytes),
                Err(ApplyChangeError::MalformedChange(_) | ApplyChangeError::CorruptChange)
            ));
            assert!(matches!(
                b.apply_change(bytes),
                Err(ApplyChangeError::MalformedChange(_) | ApplyChangeError::CorruptChange)
            ));
        }
        // Changes are written compressed; the uncompressed chunk is read too.
        let raw = Change::try_from(change.as_slice())
            .unwrap()
            .raw_bytes()
            .to_vec();
        assert!(raw.len() > change.len(), "compressed above 256 bytes");
        let mut c = RecordDoc::new(&actor(0xC));
        c.apply_change(&raw).unwrap();
        assert_eq!(c.heads(), a.heads());
        // A flipped byte inside a value still parses; only the checksum catches it.
        let mut in_value = raw.clone();
        let at = in_value.windows(5).position(|w| w == b"\"bp\"}").unwrap();
        in_value[at + 1] = b'x';
        assert!(matches!(
            b.apply_change(&in_value),
            Err(ApplyChangeError::CorruptChange)
        ));
        assert!(b.heads().is_empty());
        assert!(matches!(
            RecordDoc::load(b"not a document", &actor(1)),
            Err(LoadRecordError::Malformed(_))
        ));
        let saved = a.save();
        assert!(RecordDoc::load(&saved[..saved.len() / 2], &actor(1)).is_err());
    }

    #[test]
    fn foreign_layout_is_reported_not_hidden() {
        let mut raw = AutoCommit::new();
        let types = raw.put_object(ROOT, "Observation", ObjType::Map).unwrap();
        let obs = raw.put_object(&types, "o1", ObjType::Map).unwrap();
        raw.put(&obs, "resourceType", "\"Observation\"").unwrap();
        raw.put(&obs, "id", "\"o1\"").unwrap();
        raw.put(&obs, "status", 5_i64).unwrap();
        raw.put(ROOT, "_meta", "reserved keys are ignored").unwrap();
        let doc = RecordDoc::load(&raw.save(), &actor(1)).unwrap();
        assert!(matches!(
            doc.resources(),
            Err(ReadRecordError::NotAString { .. })
        ));

        raw.put(&obs, "status", "\"final\"").unwrap();
        raw.put(&obs, "id", "\"other\"").unwrap();
        let doc = RecordDoc::load(&raw.save(), &actor(1)).unwrap();
        assert!(matches!(
            doc.resources(),
            Err(ReadRecordError::KeyMismatch { .. })
        ));

        raw.put(&obs, "id", "\"o1\"").unwrap();
        raw.put(&obs, "subject", "\"Patient/x\"").unwrap();
        let doc = RecordDoc::load(&raw.save(), &actor(1)).unwrap();
        assert!(matches!(
            doc.resources(),
            Err(ReadRecordError::InvalidResource { .. })
        ));

        raw.delete(&obs, "subject").unwrap();
        let doc = RecordDoc::load(&raw.save(), &actor(1)).unwrap();
        assert_eq!(doc.resources().unwrap().len(), 1);

        raw.put(ROOT, "Patient", "not a map").unwrap();
        let doc = RecordDoc::load(&raw.save(), &actor(1)).unwrap();
        assert!(matches!(
            doc.resources(),
            Err(ReadRecordError::NotAMap { .. })
        ));
    }

    #[test]
    fn standard_obs_sample_bundle_snapshot() {
        let text =
            std::fs::read_to_string(format!("{DATA}/standard-obs-sample/Observation.ndjson"))
                .unwrap();
        let groups = group_by_patient(parse_ndjson("Observation.ndjson", &text).unwrap()).unwrap();
        let (_, resources) = groups
            .into_iter()
            .find(|(_, rs)| rs.iter().any(|r| r.fields().contains_key("component")))
            .unwrap();
        let mut doc = RecordDoc::new(&actor(1));
        doc.upsert(&resources, T0).unwrap();
        let exported = doc.export_bundle().unwrap();
        // The panel's component values keep their number text.
        assert!(exported.contains("\"component\":["));
        insta::assert_snapshot!("standard_obs_sample_bundle", exported);
    }

    /// Applies `change` and then every held change whose deps became present.
    fn deliver(doc: &mut RecordDoc, held: &mut Vec<Vec<u8>>, change: Vec<u8>) {
        held.push(change);
        loop {
            let mut progressed = false;
            let mut i = 0;
            while i < held.len() {
                let deps = RecordDoc::inspect_change(&held[i]).unwrap().deps;
                let ready = doc.missing_deps(&deps).is_empty();
                match doc.apply_change(&held[i]) {
                    Ok(()) => {
                        assert!(ready);
                        held.remove(i);
                        progressed = true;
                    }
                    Err(ApplyChangeError::MissingDependencies { .. }) => {
                        assert!(!ready);
                        i += 1;
                    }
                    Err(err) => panic!("{err}"),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    const MEMBERS: [&str; 4] = ["status", "code", "note", "valueQuantity"];
    /// Valid R4 values per member; index 4 deletes the member, which R4
    /// refuses for the required `status` and `code`.
    const VALUES: [[&str; 4]; 4] = [
        ["\"amended\"", "\"final\"", "\"corrected\"", "\"cancelled\""],
        [
            r#"{"text":"x"}"#,
            r#"{"text":"y"}"#,
            r#"{"coding":[{"system":"http://loinc.org","code":"8480-6"}]}"#,
            r#"{"text":"z"}"#,
        ],
        [
            "[{\"text\":\"n\"}]",
            "[{\"text\":\"m\"}]",
            "[{\"text\":\"n\"},{\"text\":\"o\"}]",
            "[{\"text\":\"p\"}]",
        ],
        [
            r#"{"value":1.50}"#,
            r#"{"value":2}"#,
            r#"{"value":1e2}"#,
            r#"{"value":0.1000}"#,
        ],
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn replicas_converge_in_any_delivery_order(
            replicas in 2usize..=3,
            steps in prop::collection::vec(
                (0usize..3, 0usize..4, 0usize..5, any::<bool>(), 0usize..3, 0usize..64),
                1..30,
            ),
            reverse_final in any::<bool>(),
        ) {
            let mut origin = RecordDoc::new(&actor(1));
            origin.upsert(&observation(""), T0).unwrap();
            let saved = origin.save();
            let mut docs: Vec<RecordDoc> = (0..replicas)
                .map(|i| RecordDoc::load(&saved, &actor(0x10 + i as u8)).unwrap())
                .collect();
            let mut logs: Vec<Vec<Vec<u8>>> = vec![Vec::new(); replicas];
            let mut held: Vec<Vec<Vec<u8>>> = vec![Vec::new(); replicas];

            for (step, (who, m, v, is_delivery, to, pick)) in steps.into_iter().enumerate() {
                let who = who % replicas;
                if is_delivery {
                    let to = to % replicas;
                    if to != who && !logs[who].is_empty() {
                        let change = logs[who][pick % logs[who].len()].clone();
                        deliver(&mut docs[to], &mut held[to], change);
                    }
                } else {
                    let value = VALUES[m].get(v).copied();
                    let edited = docs[who]
                        .set_member("Observation", "o1", MEMBERS[m], value, T0 + step as i64);
                    match edited {
                        Ok(change) => logs[who].extend(change),
                        // Deleting a required member is refused and changes nothing.
                        Err(EditRecordError::InvalidResource(_)) if value.is_none() && m < 2 => {}
                        Err(err) => panic!("{err}"),
                    }
                }
            }

            for to in 0..replicas {
                for (from, log) in logs.iter().enumerate() {
                    if from == to {
                        continue;
                    }
                    let mut changes = log.clone();
                    if reverse_final {
                        changes.reverse();
                    }
                    for change in changes {
                        deliver(&mut docs[to], &mut held[to], change);
                    }
                }
                prop_assert!(held[to].is_empty());
            }

            let heads = docs[0].heads();
            let export = docs[0].export_bundle().unwrap();
            let conflicts = docs[0].conflicts();
            for doc in docs.iter_mut().skip(1) {
                prop_assert_eq!(doc.heads(), heads.clone());
                prop_assert_eq!(doc.export_bundle().unwrap(), export.clone());
                prop_assert_eq!(doc.conflicts(), conflicts.clone());
            }
        }
    }

    #[test]
    #[ignore = "throughput measurement: cargo test --release -- --ignored --nocapture upsert_throughput"]
    fn upsert_throughput() {
        let mut all = Vec::new();
        for path in data_files("bulk-10-patients", ".ndjson") {
            let text = std::fs::read_to_string(&path).unwrap();
            all.extend(parse_ndjson(&path.to_string_lossy(), &text).unwrap());
        }
        let groups = group_by_patient(all).unwrap();
        let count: usize = groups.values().map(Vec::len).sum();
        let start = std::time::Instant::now();
        let mut docs = Vec::new();
        for resources in groups.values() {
            let mut doc = RecordDoc::new(&actor(1));
            doc.upsert(resources, T0).unwrap().unwrap();
            docs.push(doc);
        }
        let upsert = start.elapsed();
        let start = std::time::Instant::now();
        for doc in &docs {
            doc.export_bundle().unwrap();
        }
        let export = start.elapsed();
        let rate = count as f64 / upsert.as_secs_f64();
        println!(
            "upsert: {count} resources in {:.1} ms = {rate:.0} resources/s; export: {:.1} ms",
            upsert.as_secs_f64() * 1e3,
            export.as_secs_f64() * 1e3
        );
        if !cfg!(debug_assertions) {
            assert!(rate >= 5_000.0, "{rate:.0} resources/s");
        }
    }

    #[test]
    fn increments_after_a_save_reload_to_the_same_document() {
        let mut doc = RecordDoc::new(&[1; 32]);
        let first = fhir::parse_ndjson(
            "a",
            r#"{"resourceType":"Patient","id":"p","gender":"female"}"#,
        )
        .unwrap();
        doc.upsert(&first, 1).unwrap();
        let exported = doc.save();
        let base = doc.save_uncompressed();
        assert!(
            doc.save_increment().is_empty(),
            "nothing new since the save"
        );
        doc.set_member("Patient", "p", "active", Some("true"), 2)
            .unwrap();
        let one = doc.save_increment();
        doc.set_member("Patient", "p", "language", Some("\"en\""), 3)
            .unwrap();
        let two = doc.save_increment();
        let mut loaded =
            RecordDoc::load_with_increments(Some(&base), &[one, two], &[2; 32]).unwrap();
        assert_eq!(loaded.heads(), doc.heads());
        assert_eq!(
            loaded.export_bundle().unwrap(),
            doc.export_bundle().unwrap()
        );
        assert!(
            loaded.save_increment().is_empty(),
            "a reloaded document starts saved"
        );
        let from_export = RecordDoc::load(&exported, &[3; 32]).unwrap();
        assert_eq!(from_export.resource_count(), 1, "compressed saves load too");
    }
}
