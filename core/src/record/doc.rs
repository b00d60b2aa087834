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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, Change, ChangeHash, ObjId, ObjType, ReadDoc, Value,
    ValueRef, ROOT,
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
        source: ParseFhirError,
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
    #[error("edit would make the resource invalid")]
    InvalidResource(#[source] ParseFhirError),
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
    /// The change depends on changes this document does not have yet.
    #[error("change depends on {missing} change(s) this record does not have yet")]
    MissingDependencies {
        /// How many dependency hashes are missing.
        missing: usize,
    },
    /// Automerge refused the change (e.g. it reuses an actor's sequence number).
    #[error("record document refused the change")]
    Rejected(#[source] AutomergeError),
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
        }
    }

    /// Loads a document saved with [`RecordDoc::save`]; new edits are written by `actor`.
    ///
    /// The layout is checked lazily: reads report a [`ReadRecordError`].
    pub fn load(saved: &[u8], actor: &[u8]) -> Result<RecordDoc, LoadRecordError> {
        let doc = AutoCommit::load(saved).map_err(LoadRecordError::Malformed)?;
        Ok(RecordDoc {
            doc: doc.with_actor(ActorId::from(actor)),
        })
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Writes resources (insert or replace: members that changed are put,
    /// members that vanished are deleted, unchanged ones are untouched) and
    /// commits them as ONE Automerge change carrying `time_ms`.
    ///
    /// Returns the change's raw bytes, or `None` if nothing changed. Writing
    /// a member also resolves any conflict on it. If one (type, id) appears
    /// twice in `resources`, the later one wins. On error nothing is committed.
    pub fn upsert(
        &mut self,
        resources: &[Resource],
        time_ms: i64,
    ) -> Result<Option<Vec<u8>>, EditRecordError> {
        let written: Result<(), EditRecordError> = resources
            .iter()
            .try_for_each(|resource| self.write_resource(resource));
        match written {
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
            Some(json) => Some(fhir::minify_json(json).ok_or_else(|| {
                EditRecordError::InvalidJson {
                    member: member.to_owned(),
                }
            })?),
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
        Resource::from_fields(fields).map_err(EditRecordError::InvalidResource)?;

        let written = self.resource_objects(resource_type, id).map_err(|_| EditRecordError::NoSuchResource { resource_type: resource_type.to_owned() }).and_then(|objects| {
            objects
                .iter()
                .try_for_each(|obj| self.write_member(obj, member, text.as_deref()))
        });
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
        let change = Change::try_from(bytes).map_err(ApplyChangeError::MalformedChange)?;
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
        let change = Change::try_from(bytes).map_err(ApplyChangeError::MalformedChange)?;
        let hash = change.hash();
        if self.doc.get_change_meta_by_hash(&hash).is_some() {
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
            .map_err(ApplyChangeError::Rejected)
    }

    /// Current heads (sorted).
    pub fn heads(&mut self) -> Vec<[u8; 32]> {
        let mut heads: Vec<[u8; 32]> = self.doc.get_heads().iter().map(hash_bytes).collect();
        heads.sort_unstable();
        heads
    }

    /// Raw bytes of one change of this document, e.g. to resend it.
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
            .map(|mut change| change.bytes().into_owned())
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
                            if let Some(s) = value.to_str() {
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
        Ok(self.change_bytes(&hash.0))
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
                objects[..=pos].rotate_right(1);
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
                source,
            })?;
        if resource.resource_type() != resource_type || resource.id() != id {
            return Err(ReadRecordError::KeyMismatch {
                resource_type: resource_type.to_owned(),
            });
        }
        Ok(Some(resource))
    }

    fn write_resource(&mut self, resource: &Resource) -> Result<(), EditRecordError> {
        let resource_type = resource.resource_type();
        let mut type_objects = self.map_candidates(&ROOT, resource_type, resource_type)?;
        if type_objects.is_empty() {
            type_objects.push(self.put_map(&ROOT, resource_type)?);
        }
        let objects = self.objects_under(&type_objects, resource_type, resource.id())?;
        let Some(first) = type_objects.first() else {
            return Ok(());
        };
        if objects.is_empty() {
            let obj = self.put_map(first, resource.id())?;
            for (name, text) in resource.fields() {
                self.doc
                    .put(&obj, name.as_str(), text.as_str())
                    .map_err(EditRecordError::Automerge)?;
            }
            return Ok(());
        }
        for obj in &objects {
            let stale: Vec<String> = self
                .doc
                .keys(obj)
                .filter(|key| !resource.fields().contains_key(key))
                .collect();
            for name in stale {
                self.write_member(obj, &name, None)?;
            }
            for (name, text) in resource.fields() {
                self.write_member(obj, name, Some(text))?;
            }
        }
        Ok(())
    }

    fn put_map(&mut self, parent: &ObjId, key: &str) -> Result<ObjId, EditRecordError> {
        self.doc
            .put_object(parent, key, ObjType::Map)
            .map_err(EditRecordError::Automerge)
    }

    /// Puts or deletes one member in one map, only if it is not already
    /// exactly that (single, unconflicted) value.
    fn write_member(
        &mut self,
        obj: &ObjId,
        member: &str,
        text: Option<&str>,
    ) -> Result<(), EditRecordError> {
        let current = self
            .doc
            .get_all(obj, member)
            .map_err(EditRecordError::Automerge)?;
        match text {
            Some(text) => {
                let same = current.len() == 1 && current[0].0.to_str() == Some(text);
                if !same {
                    self.doc
                        .put(obj, member, text)
                        .map_err(EditRecordError::Automerge)?;
                }
            }
            None => {
                if !current.is_empty() {
                    self.doc
                        .delete(obj, member)
                        .map_err(EditRecordError::Automerge)?;
                }
            }
        }
        Ok(())
    }
}

/// A member name fit for an error message (masked if it does not look like an element name).
fn fhir_member_label(name: &str) -> String {
    if is_member_name(name) {
        name.to_owned()
    } else {
        "<member>".to_owned()
    }
}
