//! FHIR R4 JSON in and out: parsing, core-field validation, Bundle `urn:uuid:`
//! resolution, grouping by patient and canonical export.
//!
//! Every resource is kept as its top-level members, each as minified JSON
//! text. `serde_json` checks the syntax and splits a resource into members
//! (as borrowed `RawValue`s); a small minifier then drops whitespace outside
//! strings and copies every other byte. So number text (`1.50`, `1e2`,
//! 30-digit integers), string escapes and nested member order survive
//! byte-for-byte; only the order of top-level members becomes canonical (key
//! order). Re-serializing a parsed `serde_json::Value` would not be lossless:
//! even with `arbitrary_precision` it writes `1e2` as `1e+2`.
//!
//! After these structural rules, every resource is validated against FHIR R4
//! (datatypes, cardinality, required bindings, choice types; see
//! [`crate::record::r4`]). Validation reads the input's own text and changes
//! nothing, so what is stored is still exactly what came in.
//!
//! Errors carry a [`FhirLocation`] (source, line, field path and, for R4
//! rules, a FHIRPath-like element path) and a fixed rule text, never a value
//! from the input: the input is patient data.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::record::r4::{self, Rule};

/// At most this many problems are kept in an [`ImportFhirError`]; the rest are only counted.
pub const MAX_PROBLEMS: usize = 100;

/// Bundle types whose entries are taken as resources to import.
const BUNDLE_TYPES: [&str; 4] = ["transaction", "collection", "searchset", "batch"];

/// Members that FHIR defines as complex types; a scalar there is a malformed
/// resource. Checked when reading stored records; import checks every
/// element against its R4 definition instead.
const OBJECT_MEMBERS: [&str; 6] = [
    "meta",
    "text",
    "subject",
    "patient",
    "encounter",
    "beneficiary",
];

/// Members whose `Patient/<id>` reference ties a resource to a patient, in precedence order.
const PATIENT_LINKS: [&str; 3] = ["subject", "patient", "beneficiary"];

/// Source name used for resources built from fields rather than read from a file.
const FIELDS_SOURCE: &str = "(fields)";

/// Field path shown for problems that concern a whole document or resource.
const ROOT_FIELD: &str = "(root)";

/// Where a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirLocation {
    /// Source name as the caller gave it (usually the file path).
    pub source: String,
    /// 1-based line: the NDJSON line, the line where a Bundle entry starts,
    /// or the line of a JSON syntax error. 0 when the resource was not read
    /// from text (see [`Resource::from_fields`]).
    pub line: usize,
    /// JSON field path, e.g. `entry[3].resource.subject.reference` or `id`;
    /// `(root)` for the document or resource as a whole.
    pub field: String,
    /// For problems found by the R4 validation: the FHIRPath-like element
    /// path from the resource type, e.g. `Patient.name[0].given[1]` or
    /// `Observation.component[2].valueQuantity.value`.
    pub element: Option<String>,
}

impl FhirLocation {
    fn new(source: &str, line: usize, field: impl Into<String>) -> Self {
        FhirLocation {
            source: source.to_owned(),
            line,
            field: field.into(),
            element: None,
        }
    }
}

impl fmt::Display for FhirLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, line {}, field `{}`",
            self.source, self.line, self.field
        )?;
        if let Some(element) = &self.element {
            write!(f, " ({element})")?;
        }
        Ok(())
    }
}

/// One problem found while parsing or validating FHIR JSON.
///
/// Display names the source, line and field and the rule that was broken;
/// it never includes a value from the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFhirError {
    /// The input bytes are not valid UTF-8.
    #[error("{location}: input is not valid UTF-8")]
    NotUtf8 {
        /// Where the first invalid byte is.
        location: FhirLocation,
    },
    /// The text is not valid JSON.
    #[error("{location}: not valid JSON (syntax error at column {column})")]
    NotJson {
        /// Line of the syntax error.
        location: FhirLocation,
        /// 1-based column of the syntax error within its line.
        column: usize,
    },
    /// A resource, Bundle or Bundle entry is not a JSON object.
    #[error("{location}: must be a JSON object")]
    NotAnObject {
        /// The value that should have been an object.
        location: FhirLocation,
    },
    /// A required member is absent.
    #[error("{location}: required member is missing")]
    MissingField {
        /// `field` names the missing member.
        location: FhirLocation,
    },
    /// A member has the wrong JSON type.
    #[error("{location}: must be a JSON {expected}")]
    WrongType {
        /// The offending member.
        location: FhirLocation,
        /// The JSON type the rule requires (`string`, `object`, `array`).
        expected: &'static str,
    },
    /// `resourceType` does not match `[A-Z][A-Za-z]{1,63}`.
    #[error("{location}: resourceType must match [A-Z][A-Za-z]{{1,63}}")]
    InvalidResourceType {
        /// The `resourceType` member.
        location: FhirLocation,
    },
    /// `id` does not match the FHIR id rule `[A-Za-z0-9\-\.]{1,64}`.
    #[error("{location}: id must match [A-Za-z0-9\\-\\.]{{1,64}}")]
    InvalidId {
        /// The `id` member.
        location: FhirLocation,
    },
    /// A `Patient/...` reference in `subject`, `patient` or `beneficiary` does not carry a valid id.
    #[error("{location}: a Patient reference must be Patient/<id> with id matching [A-Za-z0-9\\-\\.]{{1,64}}")]
    InvalidReference {
        /// The `reference` member.
        location: FhirLocation,
    },
    /// [`parse_bundle`] was given a resource that is not a Bundle.
    #[error("{location}: resourceType must be Bundle")]
    NotABundle {
        /// The Bundle's `resourceType` member.
        location: FhirLocation,
    },
    /// The Bundle `type` is not transaction, collection, searchset or batch.
    #[error("{location}: Bundle type must be transaction, collection, searchset or batch")]
    UnknownBundleType {
        /// The Bundle's `type` member.
        location: FhirLocation,
    },
    /// A `urn:uuid:` reference names no entry `fullUrl` of the same Bundle.
    #[error("{location}: urn:uuid: reference matches no entry fullUrl in this Bundle")]
    UnresolvedReference {
        /// The `reference` member.
        location: FhirLocation,
    },
    /// Two Bundle entries share one `fullUrl`, so references to it are ambiguous.
    #[error("{location}: fullUrl is already used by an earlier entry")]
    DuplicateFullUrl {
        /// The later entry's `fullUrl`.
        location: FhirLocation,
    },
    /// Two resources of one batch share resourceType and id, so which one to store is ambiguous.
    #[error("{location}: resourceType and id repeat an earlier resource of this batch")]
    DuplicateResource {
        /// The later resource's `id`.
        location: FhirLocation,
    },
    /// The resource has no `Patient/<id>` link in subject, patient or
    /// beneficiary, and its batch did not hold exactly one Patient.
    #[error("{location}: no Patient link in subject, patient or beneficiary, and no single Patient in its batch")]
    NoPatient {
        /// The resource (field `subject`, where a link was expected).
        location: FhirLocation,
    },
    /// The input holds no resource at all.
    #[error("{location}: input holds no resource")]
    Empty {
        /// The input (or its Bundle `entry` member).
        location: FhirLocation,
    },
    /// `resourceType` is well-formed but names no concrete FHIR R4 resource.
    #[error("{location}: resourceType is not a FHIR R4 resource type")]
    UnknownResourceType {
        /// The `resourceType` member.
        location: FhirLocation,
    },
    /// A member that FHIR R4 does not define for this element.
    #[error("{location}: element is not defined here in FHIR R4")]
    UnknownElement {
        /// The unknown member (masked as `<member>` if its name is not element-like).
        location: FhirLocation,
    },
    /// A value that does not match its FHIR R4 primitive datatype (its JSON
    /// shape, the specification's regex, range, length or calendar).
    #[error("{location}: not a valid FHIR R4 {datatype}")]
    InvalidPrimitive {
        /// The value.
        location: FhirLocation,
        /// The datatype, e.g. `date`, `dateTime`, `decimal`, `code`.
        datatype: &'static str,
    },
    /// A code outside the value set that FHIR R4 binds the element to with
    /// strength *required*.
    #[error("{location}: code is not in the required FHIR R4 value set {value_set}")]
    NotInValueSet {
        /// The code (or the CodeableConcept with no matching coding).
        location: FhirLocation,
        /// The value set's name, e.g. `AdministrativeGender`.
        value_set: &'static str,
    },
    /// A choice element (`value[x]`) given with more than one type.
    #[error("{location}: a choice element takes one type only, and another type is already given")]
    ChoiceConflict {
        /// The second member of the choice.
        location: FhirLocation,
    },
    /// An empty object, array or string, or `null`, where FHIR JSON needs a value.
    #[error(
        "{location}: FHIR JSON does not allow an empty object, array or string, or null, here"
    )]
    EmptyValue {
        /// The empty value.
        location: FhirLocation,
    },
    /// The FHIR R4 definition tables built into the library could not be
    /// read. A defect of the build, not of the input.
    #[error("{location}: internal error: the built-in FHIR R4 definitions could not be read")]
    DefinitionsUnavailable {
        /// The resource being validated.
        location: FhirLocation,
    },
}

impl ParseFhirError {
    /// Where the problem is.
    pub fn location(&self) -> &FhirLocation {
        match self {
            ParseFhirError::NotUtf8 { location }
            | ParseFhirError::NotJson { location, .. }
            | ParseFhirError::NotAnObject { location }
            | ParseFhirError::MissingField { location }
            | ParseFhirError::WrongType { location, .. }
            | ParseFhirError::InvalidResourceType { location }
            | ParseFhirError::InvalidId { location }
            | ParseFhirError::InvalidReference { location }
            | ParseFhirError::NotABundle { location }
            | ParseFhirError::UnknownBundleType { location }
            | ParseFhirError::UnresolvedReference { location }
            | ParseFhirError::DuplicateFullUrl { location }
            | ParseFhirError::DuplicateResource { location }
            | ParseFhirError::NoPatient { location }
            | ParseFhirError::Empty { location }
            | ParseFhirError::UnknownResourceType { location }
            | ParseFhirError::UnknownElement { location }
            | ParseFhirError::InvalidPrimitive { location, .. }
            | ParseFhirError::NotInValueSet { location, .. }
            | ParseFhirError::ChoiceConflict { location }
            | ParseFhirError::EmptyValue { location }
            | ParseFhirError::DefinitionsUnavailable { location } => location,
        }
    }
}

/// All problems of one import batch.
///
/// Import is all-or-nothing: if any resource of a batch is invalid the whole
/// batch is rejected and nothing is returned, so nothing can be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FHIR import rejected with {total} problem(s); first: {}", first_problem(.problems))]
pub struct ImportFhirError {
    /// The first [`MAX_PROBLEMS`] problems, in input order.
    pub problems: Vec<ParseFhirError>,
    /// How many problems were found in all (may exceed `problems.len()`).
    pub total: usize,
}

fn first_problem(problems: &[ParseFhirError]) -> String {
    problems
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| "none recorded".to_owned())
}

impl From<ParseFhirError> for ImportFhirError {
    fn from(problem: ParseFhirError) -> Self {
        ImportFhirError {
            problems: vec![problem],
            total: 1,
        }
    }
}

/// Collects problems of one batch, keeping the first [`MAX_PROBLEMS`].
#[derive(Default)]
struct Problems {
    list: Vec<ParseFhirError>,
    total: usize,
}

impl Problems {
    fn push(&mut self, problem: ParseFhirError) {
        self.total += 1;
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(problem);
        }
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn finish<T>(self, ok: T) -> Result<T, ImportFhirError> {
        if self.is_empty() {
            Ok(ok)
        } else {
            Err(ImportFhirError {
                problems: self.list,
                total: self.total,
            })
        }
    }
}

/// One FHIR R4 resource, split into top-level members.
///
/// A `Resource` is always valid by the rules of this module: it can only be
/// built by the parsers or by [`Resource::from_fields`], which validate.
/// Equality compares the members only. `Debug` shows the resource type and
/// member names, never the id or any value.
#[derive(Clone)]
pub struct Resource {
    resource_type: String,
    id: String,
    fields: BTreeMap<String, String>,
    /// Patient id taken from the resource's own content (see [`Resource::patient_id`]).
    patient_link: Option<String>,
    /// Patient id given by context: the single Patient of the Bundle the resource came in.
    patient_hint: Option<String>,
    /// Where the resource was read, for problems found after parsing (grouping).
    origin: FhirLocation,
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl Eq for Resource {}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resource")
            .field("resource_type", &self.resource_type)
            .field("members", &self.fields.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Resource {
    /// The `resourceType`, e.g. `Observation`.
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The resource id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Top-level member name -> minified JSON text of its value (includes `resourceType` and `id`).
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }

    /// Builds a resource from top-level members (name -> JSON text).
    ///
    /// The texts are parsed, re-minified and validated by the same rules as
    /// the parsers. Problems are reported with source `(fields)` and line 0;
    /// the first problem found is returned.
    pub fn from_fields(fields: BTreeMap<String, String>) -> Result<Resource, ParseFhirError> {
        for (name, text) in &fields {
            if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                return Err(ParseFhirError::NotJson {
                    location: FhirLocation::new(FIELDS_SOURCE, 0, field_name(name)),
                    column: err.column(),
                });
            }
        }
        let site = Site {
            source: FIELDS_SOURCE,
            line: 0,
            prefix: "",
            document: None,
            checks: Checks::Structure,
        };
        let members = fields
            .iter()
            .map(|(name, text)| (name.clone(), Cow::Borrowed(text.as_str())))
            .collect();
        let mut problems = Problems::default();
        match build_resource(members, &site, None, &mut problems) {
            Some(resource) if problems.is_empty() => Ok(resource),
            _ => Err(problems.list.into_iter().next().unwrap_or_else(|| {
                ParseFhirError::NotAnObject {
                    location: site.at(""),
                }
            })),
        }
    }

    /// Validates the resource against FHIR R4 (see [`crate::record::r4`]),
    /// as import does. Problems name source `(fields)` and line 0, the member
    /// path and the element path.
    ///
    /// Resources read back from a record are not validated on read: a chart
    /// merged from concurrent edits, or written by another site, is shown as
    /// it is.
    pub fn validate_r4(&self) -> Result<(), ImportFhirError> {
        let site = Site {
            source: FIELDS_SOURCE,
            line: 0,
            prefix: "",
            document: None,
            checks: Checks::R4,
        };
        let members: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str()))
            .collect();
        let mut problems = Problems::default();
        check_r4(&self.resource_type, &members, &site, false, &mut problems);
        problems.finish(())
    }

    /// Canonical JSON: `{`, the members in key order, `}`, minified.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(
            2 + self
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>(),
        );
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, (name, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(out, name);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
    }

    /// The resource as a `serde_json::Value` (members in key order).
    pub fn to_value(&self) -> Value {
        let mut object = Map::with_capacity(self.fields.len());
        for (name, text) in &self.fields {
            // Every member text was produced by serde_json and validated at
            // construction, so this parse cannot fail; Null keeps the function
            // total without a panic path.
            let value = serde_json::from_str(text).unwrap_or(Value::Null);
            object.insert(name.clone(), value);
        }
        Value::Object(object)
    }

    /// Patient id this resource belongs to: the Patient's own id, or the id in
    /// a `Patient/<id>` reference in `subject`, `patient` or `beneficiary`
    /// (first found, in that order).
    ///
    /// This reads the resource only; the Bundle context used by
    /// [`group_by_patient`] is not included.
    pub fn patient_id(&self) -> Option<String> {
        self.patient_link.clone()
    }
}

/// Which rules a parse applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// The structural rules and FHIR R4 validation: what import uses.
    R4,
    /// The structural rules only: for reading stored records back.
    Structure,
}

/// Where a resource under validation sits, to build [`FhirLocation`]s.
struct Site<'a> {
    source: &'a str,
    line: usize,
    /// Field path of the resource itself: empty for NDJSON, `entry[3].resource` in a Bundle.
    prefix: &'a str,
    /// The whole document, when the resource's member texts are borrowed from
    /// it (a Bundle), to name the line of a value deep inside a resource.
    document: Option<&'a LineIndex<'a>>,
    checks: Checks,
}

impl Site<'_> {
    fn at(&self, field: &str) -> FhirLocation {
        FhirLocation::new(self.source, self.line, join_path(self.prefix, field))
    }

    /// Line of the byte `offset` into `text`, if `text` lies in the
    /// document; else the resource's own line.
    fn line_in(&self, text: &str, offset: usize) -> usize {
        self.document
            .and_then(|document| document.line_of(text, offset))
            .unwrap_or(self.line)
    }
}

/// Line numbers of a whole document, for texts borrowed from it.
struct LineIndex<'t> {
    text: &'t str,
    /// Byte offsets of every `\n`.
    newlines: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let newlines = text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        LineIndex { text, newlines }
    }

    /// 1-based line of byte `offset` of `part`, a sub-slice of the document.
    fn line_of(&self, part: &str, offset: usize) -> Option<usize> {
        // Addresses only, no dereference: `part` borrows from `text`.
        let start = self.text.as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(start)?;
        if at + part.len() > self.text.len() {
            return None;
        }
        let at = at + offset.min(part.len());
        Some(1 + self.newlines.partition_point(|&n| n < at))
    }
}

/// Validates one resource against FHIR R4 and adds every problem found.
fn check_r4(
    resource_type: &str,
    members: &[(&str, &str)],
    site: &Site<'_>,
    bundle_envelope: bool,
    problems: &mut Problems,
) {
    r4::validate_members(resource_type, members, bundle_envelope, &mut |finding| {
        if problems.list.len() >= MAX_PROBLEMS {
            problems.total += 1;
            return;
        }
        let line = match finding.member.and_then(|m| members.get(m)) {
            Some((_, text)) => site.line_in(text, finding.offset),
            None => site.line,
        };
        let mut location = FhirLocation::new(
            site.source,
            line,
            join_path(site.prefix, &finding.json_path),
        );
        location.element = Some(finding.element);
        problems.push(match finding.rule {
            Rule::UnknownElement => ParseFhirError::UnknownElement { location },
            Rule::Missing => ParseFhirError::MissingField { location },
            Rule::Shape(expected) => ParseFhirError::WrongType { location, expected },
            Rule::Primitive(datatype) => ParseFhirError::InvalidPrimitive { location, datatype },
            Rule::NotInValueSet(value_set) => ParseFhirError::NotInValueSet {
                location,
                value_set,
            },
            Rule::ChoiceConflict => ParseFhirError::ChoiceConflict { location },
            Rule::Empty => ParseFhirError::EmptyValue { location },
            Rule::UnknownResourceType => ParseFhirError::UnknownResourceType { location },
            Rule::Tables => ParseFhirError::DefinitionsUnavailable { location },
        });
    });
}

fn join_path(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, true) => ROOT_FIELD.to_owned(),
        (true, false) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{field}"),
    }
}

/// A member name fit to appear in an error: FHIR element names are schema,
/// not data, but a malformed input could put data in a key, so anything that
/// does not look like an element name is masked.
fn field_name(name: &str) -> &str {
    if is_member_name(name) {
        name
    } else {
        "<member>"
    }
}

/// True if `name` looks like a FHIR JSON member name (`_` prefix allowed for primitive extensions).
pub(crate) fn is_member_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `[A-Z][A-Za-z]{1,63}`
pub(crate) fn is_resource_type(s: &str) -> bool {
    let bytes = s.as_bytes();
    (2..=64).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_uppercase)
        && bytes.iter().all(u8::is_ascii_alphabetic)
}

/// The FHIR id rule `[A-Za-z0-9\-\.]{1,64}`.
pub(crate) fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Parses the JSON text of an object into its members (raw text, borrowed).
///
/// A syntax error comes back as `NotJson`, a non-object as `NotAnObject`.
fn object_members<'t>(
    text: &'t str,
    location: impl FnOnce(Option<usize>) -> FhirLocation,
) -> Result<Vec<(String, &'t str)>, ParseFhirError> {
    match serde_json::from_str::<BTreeMap<String, &'t RawValue>>(text) {
        Ok(members) => Ok(members
            .into_iter()
            .map(|(name, raw)| (name, raw.get()))
            .collect()),
        Err(err) if err.classify() == serde_json::error::Category::Data => {
            Err(ParseFhirError::NotAnObject {
                location: location(None),
            })
        }
        Err(err) => Err(ParseFhirError::NotJson {
            location: location(Some(err.line())),
            column: err.column(),
        }),
    }
}

/// Decodes a JSON string literal token (quotes included).
fn decode_string(token: &str) -> Option<Cow<'_, str>> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(token).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Decodes a member text that must be a JSON string.
fn member_string(text: &str) -> Option<String> {
    serde_json::from_str::<String>(text).ok()
}

/// The container the minifier is inside of.
enum Frame {
    Object {
        /// Byte range of the current key token in the member text.
        key: std::ops::Range<usize>,
        /// The next string is a key.
        expect_key: bool,
        /// The current key is `reference`.
        reference: bool,
    },
    Array {
        index: usize,
    },
}

/// What the minifier does with `reference` members besides copying them.
struct ReferencePass<'p, 's> {
    site: &'p Site<'s>,
    /// Bundle `urn:uuid:` fullUrl -> `Type/id`; `None` outside Bundles.
    full_urls: Option<&'p HashMap<String, String>>,
    problems: &'p mut Problems,
}

impl ReferencePass<'_, '_> {
    fn report(&mut self, member: &str, raw: &str, frames: &[Frame], unresolved: bool) {
        let mut path = field_name(member).to_owned();
        for frame in frames {
            match frame {
                Frame::Object { key, .. } => {
                    let key = raw.get(key.clone()).and_then(decode_string);
                    path.push('.');
                    path.push_str(field_name(key.as_deref().unwrap_or("")));
                }
                Frame::Array { index } => {
                    path.push('[');
                    path.push_str(&index.to_string());
                    path.push(']');
                }
            }
        }
        let location = self.site.at(&path);
        self.problems.push(if unresolved {
            ParseFhirError::UnresolvedReference { location }
        } else {
            ParseFhirError::WrongType {
                location,
                expected: "string",
            }
        });
    }
}

/// Top-level members under which R4 has elements *named* `reference` whose
/// type is not the string `Reference.reference` but a `Reference` or an
/// `Identifier` (objects, or arrays of them): `Consent.provision.actor.reference`,
/// `CarePlan.activity.reference`, `Contract.term.offer.party.reference`,
/// `ImplementationGuide.manifest.resource.reference`,
/// `MedicationKnowledge.relatedMedicationKnowledge.reference`,
/// `Composition.relatesTo.target…`/`related.reference` and the like (read
/// from the R4 tables). Their exact types are checked by the R4 validation.
const REFERENCE_TYPED_MEMBERS: &[&str] = &[
    "provision",
    "activity",
    "term",
    "definition",
    "manifest",
    "relatedMedicationKnowledge",
    "related",
];

/// True if the next value is the value of a `reference` member.
fn at_reference(member: &str, frames: &[Frame]) -> bool {
    match frames.last() {
        None => member == "reference",
        Some(Frame::Object {
            expect_key: false,
            reference,
            ..
        }) => *reference,
        Some(_) => false,
    }
}

/// Index just past the string token starting at `start` (a `"`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Index just past the number or literal token starting at `start`.
fn scalar_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        if matches!(b, b',' | b':' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        i += 1;
    }
    i.max(start + 1)
}

/// Minifies the (already syntax-checked) JSON text of one top-level member.
///
/// Only whitespace outside strings is dropped; every other byte is copied,
/// so number text (`1e2`, `1.50`) and string escapes stay exactly as sent.
/// (Re-serializing a `serde_json::Value` would not do that: even with
/// `arbitrary_precision` it writes `1e2` as `1e+2`.) On the way, every
/// `reference` member must be a string, and in a Bundle a `reference` equal
/// to a mapped `urn:uuid:` fullUrl is replaced by `Type/id`.
fn minify_member(member: &str, raw: &str, pass: &mut ReferencePass<'_, '_>) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut frames: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                let end = string_end(bytes, i);
                let token = raw.get(i..end).unwrap_or("");
                if let Some(Frame::Object {
                    key,
                    expect_key: true,
                    reference,
                }) = frames.last_mut()
                {
                    *key = i..end;
                    *reference = decode_string(token).as_deref() == Some("reference");
                    out.push_str(token);
                } else if at_reference(member, &frames) {
                    match resolve_urn(pass.full_urls, token) {
                        Resolved::Keep => out.push_str(token),
                        Resolved::To(target) => push_json_string(&mut out, target),
                        Resolved::Unresolved => {
                            pass.report(member, raw, &frames, true);
                            out.push_str(token);
                        }
                    }
                } else {
                    out.push_str(token);
                }
                i = end;
            }
            b'{' | b'[' => {
                if at_reference(member, &frames) && !REFERENCE_TYPED_MEMBERS.contains(&member) {
                    pass.report(member, raw, &frames, false);
                }
                frames.push(if b == b'{' {
                    Frame::Object {
                        key: 0..0,
                        expect_key: true,
                        reference: false,
                    }
                } else {
                    Frame::Array { index: 0 }
                });
                out.push(char::from(b));
                i += 1;
            }
            b'}' | b']' => {
                frames.pop();
                out.push(char::from(b));
                i += 1;
            }
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = frames.last_mut() {
                    *expect_key = false;
                }
                out.push(':');
                i += 1;
            }
            b',' => {
                match frames.last_mut() {
                    Some(Frame::Object {
                        expect_key,
                        reference,
                        ..
                    }) => {
                        *expect_key = true;
                        *reference = false;
                    }
                    Some(Frame::Array { index }) => *index += 1,
                    None => {}
                }
                out.push(',');
                i += 1;
            }
            _ => {
                let end = scalar_end(bytes, i);
                if at_reference(member, &frames) {
                    pass.report(member, raw, &frames, false);
                }
                out.push_str(raw.get(i..end).unwrap_or(""));
                i = end;
            }
        }
    }
    out
}

enum Resolved<'m> {
    Keep,
    To(&'m str),
    Unresolved,
}

fn resolve_urn<'m>(full_urls: Option<&'m HashMap<String, String>>, token: &str) -> Resolved<'m> {
    let Some(full_urls) = full_urls else {
        return Resolved::Keep;
    };
    match decode_string(token) {
        Some(reference) if reference.starts_with("urn:uuid:") => {
            match full_urls.get(reference.as_ref()) {
                Some(target) => Resolved::To(target),
                None => Resolved::Unresolved,
            }
        }
        _ => Resolved::Keep,
    }
}

/// Validates one resource given as its members (raw JSON texts) and
/// minifies them; in a Bundle (`full_urls` given) resolves `urn:uuid:`
/// references.
///
/// Pushes every problem found; returns `None` if there was any.
fn build_resource(
    members: Vec<(String, Cow<'_, str>)>,
    site: &Site<'_>,
    full_urls: Option<&HashMap<String, String>>,
    problems: &mut Problems,
) -> Option<Resource> {
    let before = problems.total;
    let mut fields = BTreeMap::new();
    {
        let mut pass = ReferencePass {
            site,
            full_urls,
            problems: &mut *problems,
        };
        for (name, raw) in &members {
            let text = minify_member(name, raw, &mut pass);
            fields.insert(name.clone(), text);
        }
    }

    let resource_type = required_string(
        &fields,
        "resourceType",
        site,
        problems,
        is_resource_type,
        |location| ParseFhirError::InvalidResourceType { location },
    );
    let id = required_string(&fields, "id", site, problems, is_fhir_id, |location| {
        ParseFhirError::InvalidId { location }
    });

    // Under R4 validation the element's own definition decides (Account.subject
    // is an array); reading stored records back keeps this coarse rule.
    let object_members: &[&str] = match site.checks {
        Checks::R4 => &[],
        Checks::Structure => &OBJECT_MEMBERS,
    };
    for member in object_members {
        if let Some(text) = fields.get(*member) {
            if !text.starts_with('{') {
                problems.push(ParseFhirError::WrongType {
                    location: site.at(member),
                    expected: "object",
                });
            }
        }
    }

    let mut patient_link = None;
    for member in PATIENT_LINKS {
        let Some(text) = fields.get(member).filter(|t| t.starts_with('{')) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let Some(reference) = value.get("reference").and_then(Value::as_str) else {
            continue;
        };
        match patient_ref_id(reference) {
            PatientRef::NotPatient => {}
            PatientRef::Invalid => problems.push(ParseFhirError::InvalidReference {
                location: site.at(&format!("{member}.reference")),
            }),
            PatientRef::Id(id) => {
                if patient_link.is_none() {
                    patient_link = Some(id.to_owned());
                }
            }
        }
    }

    let (Some(resource_type), Some(id)) = (resource_type, id) else {
        return None;
    };
    if problems.total != before {
        return None;
    }
    if site.checks == Checks::R4 {
        let raw: Vec<(&str, &str)> = members
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_ref()))
            .collect();
        check_r4(&resource_type, &raw, site, false, problems);
        if problems.total != before {
            return None;
        }
    }
    if resource_type == "Patient" {
        patient_link = Some(id.clone());
    }
    Some(Resource {
        resource_type,
        id,
        fields,
        patient_link,
        patient_hint: None,
        origin: site.at(""),
    })
}

enum PatientRef<'a> {
    NotPatient,
    Invalid,
    Id(&'a str),
}

/// Reads `Patient/<id>` (optionally followed by `/_history/<version>`).
fn patient_ref_id(reference: &str) -> PatientRef<'_> {
    let Some(rest) = reference.strip_prefix("Patient/") else {
        return PatientRef::NotPatient;
    };
    let id = match rest.split_once('/') {
        None => rest,
        Some((id, version)) => match version.strip_prefix("_history/") {
            Some(v) if is_fhir_id(v) => id,
            _ => return PatientRef::Invalid,
        },
    };
    if is_fhir_id(id) {
        PatientRef::Id(id)
    } else {
        PatientRef::Invalid
    }
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Rejects a second resource with the same (type, id) in one batch.
fn check_duplicate(
    seen: &mut HashSet<(String, String)>,
    resource: &Resource,
    problems: &mut Problems,
) -> bool {
    if seen.insert((resource.resource_type.clone(), resource.id.clone())) {
        true
    } else {
        let mut location = resource.origin.clone();
        location.field = join_path(
            if location.field == ROOT_FIELD {
                ""
            } else {
                &location.field
            },
            "id",
        );
        problems.push(ParseFhirError::DuplicateResource { location });
        false
    }
}

/// Parses NDJSON: one resource per line; blank lines are skipped, CRLF is accepted.
///
/// All-or-nothing: any problem on any line rejects the whole input.
pub fn parse_ndjson(source: &str, text: &str) -> Result<Vec<Resource>, ImportFhirError> {
    ndjson(source, text, Checks::R4)
}

fn ndjson(source: &str, text: &str, checks: Checks) -> Result<Vec<Resource>, ImportFhirError> {
    let text = strip_bom(text);
    let mut problems = Problems::default();
    let mut resources = Vec::new();
    let mut seen = HashSet::new();
    for (index, line) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        let site = Site {
            source,
            line: line_no,
            prefix: "",
            document: None,
            checks,
        };
        match object_members(line, |_| site.at("")) {
            Err(problem) => problems.push(problem),
            Ok(members) => {
                let members = members
                    .into_iter()
                    .map(|(name, raw)| (name, Cow::Borrowed(raw)))
                    .collect();
                if let Some(resource) = build_resource(members, &site, None, &mut problems) {
                    if check_duplicate(&mut seen, &resource, &mut problems) {
                        resources.push(resource);
                    }
                }
            }
        }
    }
    if resources.is_empty() && problems.is_empty() {
        problems.push(ParseFhirError::Empty {
            location: FhirLocation::new(source, 1, ROOT_FIELD),
        });
    }
    problems.finish(resources)
}

/// Parses a document holding one resource, pretty-printed or not.
fn single(source: &str, text: &str, checks: Checks) -> Result<Vec<Resource>, ImportFhirError> {
    let document = LineIndex::new(text);
    let start = text.len() - text.trim_start().len();
    let site = Site {
        source,
        line: document.line_of(text, start).unwrap_or(1),
        prefix: "",
        document: Some(&document),
        checks,
    };
    let mut problems = Problems::default();
    let mut resources = Vec::with_capacity(1);
    match object_members(text, |_| site.at("")) {
        Err(problem) => problems.push(problem),
        Ok(members) => {
            let members = members
                .into_iter()
                .map(|(name, raw)| (name, Cow::Borrowed(raw)))
                .collect();
            resources.extend(build_resource(members, &site, None, &mut problems));
        }
    }
    problems.finish(resources)
}

/// Turns byte offsets into 1-based line numbers, for offsets visited in increasing order.
struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    /// Line of the byte at `offset` (which lies inside the counter's text).
    fn line_of(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        let skipped = self
            .text
            .as_bytes()
            .get(self.offset..offset)
            .map_or(0, |bytes| bytes.iter().filter(|&&b| b == b'\n').count());
        self.line += skipped;
        self.offset = offset;
        self.line
    }

    /// Line where a raw value borrowed from the counter's text starts.
    fn line_of_raw(&mut self, raw: &RawValue) -> usize {
        // Pointer arithmetic on addresses only, no dereference: the raw value
        // is a sub-slice of `text`, so the difference is its byte offset.
        let start = self.text.as_ptr() as usize;
        let at = raw.get().as_ptr() as usize;
        self.line_of(at.saturating_sub(start))
    }
}

fn json_syntax_error(source: &str, err: &serde_json::Error, field: &str) -> ParseFhirError {
    let location = FhirLocation::new(source, err.line(), field);
    if err.classify() == serde_json::error::Category::Data {
        ParseFhirError::NotAnObject { location }
    } else {
        ParseFhirError::NotJson {
            location,
            column: err.column(),
        }
    }
}

/// Parses a Bundle document (type transaction, collection, searchset or batch)
/// into its entry resources.
///
/// `urn:uuid:` references are resolved: every entry `fullUrl` of the form
/// `urn:uuid:X` maps to `Type/id` of its resource, and every `reference`
/// string anywhere in any resource equal to such a `fullUrl` is rewritten to
/// that `Type/id`. A resource without `id` takes the `X` of its
/// `urn:uuid:X` `fullUrl` as id. When the Bundle holds exactly one Patient,
/// resources without a patient link are attributed to it for
/// [`group_by_patient`]. Entry-level members other than `fullUrl` and
/// `resource` (`request`, `search`, ...) are not kept.
///
/// All-or-nothing: any problem in any entry rejects the whole Bundle.
pub fn parse_bundle(source: &str, text: &str) -> Result<Vec<Resource>, ImportFhirError> {
    bundle(source, text, Checks::R4)
}

fn bundle(source: &str, text: &str, checks: Checks) -> Result<Vec<Resource>, ImportFhirError> {
    let text = strip_bom(text);
    let document = LineIndex::new(text);
    let mut lines = LineCounter::new(text);

    let top: BTreeMap<String, &RawValue> =
        serde_json::from_str(text).map_err(|e| json_syntax_error(source, &e, ROOT_FIELD))?;

    let member = |name: &str| top.get(name).copied();
    let line_of = |lines: &mut LineCounter<'_>, raw: Option<&RawValue>| {
        raw.map_or(1, |raw| lines.line_of_raw(raw))
    };

    let top_string = |lines: &mut LineCounter<'_>, name: &str| -> Result<String, ParseFhirError> {
        let raw = member(name);
        let location = FhirLocation::new(source, line_of(lines, raw), name);
        let Some(raw) = raw else {
            return Err(ParseFhirError::MissingField { location });
        };
        serde_json::from_str::<String>(raw.get()).map_err(|_| ParseFhirError::WrongType {
            location,
            expected: "string",
        })
    };

    let resource_type = top_string(&mut lines, "resourceType")?;
    if resource_type != "Bundle" {
        return Err(ParseFhirError::NotABundle {
            location: FhirLocation::new(
                source,
                line_of(&mut lines, member("resourceType")),
                "resourceType",
            ),
        }
        .into());
    }
    let bundle_type = top_string(&mut lines, "type")?;
    if !BUNDLE_TYPES.contains(&bundle_type.as_str()) {
        return Err(ParseFhirError::UnknownBundleType {
            location: FhirLocation::new(source, line_of(&mut lines, member("type")), "type"),
        }
        .into());
    }
    let entry_line = line_of(&mut lines, member("entry"));
    let entries: Vec<&RawValue> = match member("entry") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| ParseFhirError::WrongType {
            location: FhirLocation::new(source, entry_line, "entry"),
            expected: "array",
        })?,
    };
    if entries.is_empty() {
        return Err(ParseFhirError::Empty {
            location: FhirLocation::new(source, entry_line, "entry"),
        }
        .into());
    }

    let mut problems = Problems::default();

    // Pass 1: split entries, take ids from urn:uuid fullUrls, build the fullUrl map.
    struct Parsed<'t> {
        line: usize,
        prefix: String,
        members: Vec<(String, Cow<'t, str>)>,
    }
    let mut parsed = Vec::with_capacity(entries.len());
    let mut full_urls: HashMap<String, String> = HashMap::new();
    for (index, raw) in entries.iter().enumerate() {
        let line = lines.line_of_raw(raw);
        let entry_path = format!("entry[{index}]");
        let at = |field: &str| FhirLocation::new(source, line, join_path(&entry_path, field));
        let entry = match object_members(raw.get(), |_| at("")) {
            Ok(entry) => entry,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let member = |name: &str| entry.iter().find(|(n, _)| n == name).map(|(_, raw)| *raw);
        let full_url = match member("fullUrl").map(member_string) {
            None => None,
            Some(Some(url)) => Some(url),
            Some(None) => {
                problems.push(ParseFhirError::WrongType {
                    location: at("fullUrl"),
                    expected: "string",
                });
                None
            }
        };
        let uuid = full_url
            .as_deref()
            .and_then(|url| url.strip_prefix("urn:uuid:"));
        let Some(resource_raw) = member("resource") else {
            problems.push(ParseFhirError::MissingField {
                location: at("resource"),
            });
            continue;
        };
        let mut members: Vec<(String, Cow<'_, str>)> =
            match object_members(resource_raw, |_| at("resource")) {
                Ok(members) => members
                    .into_iter()
                    .map(|(name, raw)| (name, Cow::Borrowed(raw)))
                    .collect(),
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
        let find = |members: &[(String, Cow<'_, str>)], name: &str| {
            members
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, raw)| member_string(raw))
        };
        if !members.iter().any(|(name, _)| name == "id") {
            if let Some(uuid) = uuid {
                let mut text = String::new();
                push_json_string(&mut text, uuid);
                members.push(("id".to_owned(), Cow::Owned(text)));
            }
        }
        if let (Some(url), Some(_)) = (&full_url, uuid) {
            if let (Some(t), Some(id)) = (find(&members, "resourceType"), find(&members, "id")) {
                if full_urls.insert(url.clone(), format!("{t}/{id}")).is_some() {
                    problems.push(ParseFhirError::DuplicateFullUrl {
                        location: at("fullUrl"),
                    });
                }
            }
        }
        parsed.push(Parsed {
            line,
            prefix: join_path(&entry_path, "resource"),
            members,
        });
    }

    // Pass 2: validate and minify, resolving urn:uuid references.
    let mut resources = Vec::with_capacity(parsed.len());
    let mut seen = HashSet::new();
    for entry in parsed {
        let site = Site {
            source,
            line: entry.line,
            prefix: &entry.prefix,
            document: Some(&document),
            checks,
        };
        if let Some(resource) =
            build_resource(entry.members, &site, Some(&full_urls), &mut problems)
        {
            if check_duplicate(&mut seen, &resource, &mut problems) {
                resources.push(resource);
            }
        }
    }

    if problems.is_empty() && checks == Checks::R4 {
        // The envelope: Bundle elements and entry elements other than `resource`.
        let envelope: Vec<(&str, &str)> = top
            .iter()
            .map(|(name, raw)| (name.as_str(), raw.get()))
            .collect();
        let site = Site {
            source,
            line: 1,
            prefix: "",
            document: Some(&document),
            checks,
        };
        check_r4("Bundle", &envelope, &site, true, &mut problems);
    }

    if problems.is_empty() {
        let mut patients = resources.iter().filter(|r| r.resource_type == "Patient");
        if let (Some(patient), None) = (patients.next(), patients.next()) {
            let hint = patient.id.clone();
            for resource in &mut resources {
                resource.patient_hint = Some(hint.clone());
            }
        }
    }
    problems.finish(resources)
}

/// Parses bytes as a Bundle document, as one resource, or as NDJSON.
///
/// Bytes that are not UTF-8 are rejected (the location names the line of
/// the first bad byte). A UTF-8 byte order mark is ignored. The input is a
/// Bundle when the whole document is one JSON object whose `resourceType`
/// is `Bundle`, or when it is not valid JSON as a whole and its first
/// non-blank line is not a JSON value on its own (a broken pretty-printed
/// document: [`parse_bundle`] then reports the syntax error at its real
/// line). Any other document that is one JSON value as a whole is one
/// resource (pretty-printed or not; problems name their own lines).
/// Everything else is NDJSON.
pub fn parse_auto(source: &str, bytes: &[u8]) -> Result<Vec<Resource>, ImportFhirError> {
    auto(source, bytes, Checks::R4)
}

/// [`parse_auto`] without the FHIR R4 validation: the structural rules only.
///
/// For measuring what validation costs (the `validate` benchmark); only
/// with the `test-hooks` feature, so no product build can import
/// unvalidated resources.
#[cfg(feature = "test-hooks")]
pub fn parse_auto_structure_only(
    source: &str,
    bytes: &[u8],
) -> Result<Vec<Resource>, ImportFhirError> {
    auto(source, bytes, Checks::Structure)
}

fn auto(source: &str, bytes: &[u8], checks: Checks) -> Result<Vec<Resource>, ImportFhirError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => strip_bom(text),
        Err(err) => {
            let valid = bytes.get(..err.valid_up_to()).unwrap_or(bytes);
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            return Err(ParseFhirError::NotUtf8 {
                location: FhirLocation::new(source, line, ROOT_FIELD),
            }
            .into());
        }
    };

    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(rename = "resourceType", borrow)]
        resource_type: Option<std::borrow::Cow<'a, str>>,
    }

    match serde_json::from_str::<Probe<'_>>(text) {
        Ok(probe) if probe.resource_type.as_deref() == Some("Bundle") => {
            bundle(source, text, checks)
        }
        Ok(_) => single(source, text, checks),
        Err(_) => {
            let first_line = text
                .split('\n')
                .map(|line| line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r')))
                .find(|line| !line.is_empty())
                .unwrap_or("");
            // Blank input goes the NDJSON way, which reports it as `Empty`.
            if first_line.is_empty()
                || serde_json::from_str::<serde::de::IgnoredAny>(first_line).is_ok()
            {
                ndjson(source, text, checks)
            } else {
                bundle(source, text, checks)
            }
        }
    }
}

/// A required top-level string member: missing, not a string, or failing
/// `valid` each add their own problem.
fn required_string(
    fields: &BTreeMap<String, String>,
    name: &'static str,
    site: &Site<'_>,
    problems: &mut Problems,
    valid: fn(&str) -> bool,
    invalid: fn(FhirLocation) -> ParseFhirError,
) -> Option<String> {
    let problem = match fields.get(name).map(|text| member_string(text)) {
        Some(Some(value)) if valid(&value) => return Some(value),
        Some(Some(_)) => invalid(site.at(name)),
        Some(None) => ParseFhirError::WrongType {
            location: site.at(name),
            expected: "string",
        },
        None => ParseFhirError::MissingField {
            location: site.at(name),
        },
    };
    problems.push(problem);
    None
}

/// Groups resources by patient id.
///
/// A resource belongs to [`Resource::patient_id`], or else to the single
/// Patient of the Bundle it was parsed from, or else to the single Patient of
/// the batch (an NDJSON export of one chart). A resource with none is a
/// [`ParseFhirError::NoPatient`] problem, and the whole batch is rejected.
/// Within each group the input order is kept.
pub fn group_by_patient(
    resources: Vec<Resource>,
) -> Result<BTreeMap<String, Vec<Resource>>, ImportFhirError> {
    let mut problems = Problems::default();
    let mut groups: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
    // A batch holding exactly one Patient is that patient's chart (a Bundle
    // or an NDJSON export of one patient): resources without a patient link
    // of their own, such as Provenance, belong to it.
    let mut patients = resources.iter().filter(|r| r.resource_type == "Patient");
    let only_patient = match (patients.next(), patients.next()) {
        (Some(patient), None) => Some(patient.id.clone()),
        _ => None,
    };
    for resource in resources {
        match resource
            .patient_link
            .clone()
            .or_else(|| resource.patient_hint.clone())
            .or_else(|| only_patient.clone())
        {
            Some(patient) => groups.entry(patient).or_default().push(resource),
            None => {
                let mut location = resource.origin.clone();
                let prefix = if location.field == ROOT_FIELD {
                    String::new()
                } else {
                    location.field.clone()
                };
                location.field = join_path(&prefix, "subject");
                problems.push(ParseFhirError::NoPatient { location });
            }
        }
    }
    problems.finish(groups)
}

fn sorted(resources: &[Resource]) -> Vec<&Resource> {
    let mut refs: Vec<&Resource> = resources.iter().collect();
    refs.sort_by(|a, b| (&a.resource_type, &a.id).cmp(&(&b.resource_type, &b.id)));
    refs
}

/// Exports a collection Bundle:
/// `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{...}},...]}`.
///
/// Canonical and minified, entries sorted by (resourceType, id), no
/// timestamps or generated ids, so equal records export to equal bytes.
/// With no resources the `entry` member is left out (FHIR forbids empty arrays).
pub fn export_bundle(resources: &[Resource]) -> String {
    let refs = sorted(resources);
    let mut out = String::with_capacity(
        64 + refs
            .iter()
            .map(|r| {
                r.fields
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                    + 16
            })
            .sum::<usize>(),
    );
    if refs.is_empty() {
        // FHIR JSON forbids empty arrays, so an empty record has no `entry`.
        out.push_str(r#"{"resourceType":"Bundle","type":"collection"}"#);
        return out;
    }
    out.push_str(r#"{"resourceType":"Bundle","type":"collection","entry":["#);
    for (i, resource) in refs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"resource":"#);
        resource.write_json(&mut out);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// Exports NDJSON: one canonical resource per line, sorted by (resourceType, id),
/// each line ending in `\n` (empty input gives an empty string).
pub fn export_ndjson(resources: &[Resource]) -> String {
    let mut out = String::new();
    for resource in sorted(resources) {
        resource.write_json(&mut out);
        out.push('\n');
    }
    out
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json escapes.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let code = c as u32;
                out.push_str("\\u00");
                out.push(char::from_digit(code >> 4, 16).unwrap_or('0'));
                out.push(char::from_digit(code & 0xf, 16).unwrap_or('0'));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Validates `text` as one JSON value and returns it minified (number text kept).
pub(crate) fn minify_json(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let site = Site {
        source: FIELDS_SOURCE,
        line: 0,
        prefix: "",
        document: None,
        checks: Checks::Structure,
    };
    let mut problems = Problems::default();
    let mut pass = ReferencePass {
        site: &site,
        full_urls: None,
        problems: &mut problems,
    };
    // Reference rules are checked when the edited resource is re-validated.
    Some(minify_member("", text, &mut pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts the Display of `err` names source, line and field and leaks none of `secrets`.
    fn assert_display(
        err: &ParseFhirError,
        source: &str,
        line: usize,
        field: &str,
        secrets: &[&str],
    ) {
        let shown = err.to_string();
        assert!(shown.contains(source), "source missing: {shown}");
        assert!(
            shown.contains(&format!("line {line},")),
            "line missing: {shown}"
        );
        assert!(
            shown.contains(&format!("field `{field}`")),
            "field missing: {shown}"
        );
        for secret in secrets {
            assert!(!shown.contains(secret), "value leaked: {shown}");
            assert!(
                !format!("{err:?}").contains(secret),
                "value leaked in Debug"
            );
        }
        assert_eq!(err.location().line, line);
        assert_eq!(err.location().field, field);
    }

    fn only_problem(err: ImportFhirError) -> ParseFhirError {
        assert_eq!(err.total, 1, "{err}");
        assert_eq!(err.problems.len(), 1);
        err.problems.into_iter().next().unwrap()
    }

    #[test]
    fn minifier_keeps_number_text_member_order_and_escapes() {
        assert_eq!(
            minify_json("{\"a\": 1.50, \"b\": 1e2, \"c\": 0.1000}").unwrap(),
            r#"{"a":1.50,"b":1e2,"c":0.1000}"#
        );
        assert_eq!(
            minify_json("{ \"z\" : -0.0 ,\r\n\t\"y\": 1E-7, \"x\": [ 2.50e+3 , true, null ] }")
                .unwrap(),
            r#"{"z":-0.0,"y":1E-7,"x":[2.50e+3,true,null]}"#
        );
        assert_eq!(
            minify_json(r#" { "s" : "a \" b , : { [ \\" , "u": "\u00e9\/" } "#).unwrap(),
            r#"{"s":"a \" b , : { [ \\","u":"\u00e9\/"}"#
        );
        assert_eq!(minify_json("{\"a\": 1} x"), None);
        // Why the minifier exists: serde_json rewrites exponents even with arbitrary_precision.
        let value: Value = serde_json::from_str(r#"{"b": 1e2}"#).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), r#"{"b":1e+2}"#);
    }

    #[test]
    fn decimals_survive_parse_and_export() {
        // Numbers in an extension the library knows nothing of: kept as written.
        let line = concat!(
            r#"{"resourceType":"Observation","id":"n1","status":"final","code":{"text":"t"},"#,
            r#""valueQuantity":{"value":1.50},"extension":[{"url":"urn:x","valueDecimal":1e2}, "#,
            r#"{"url":"urn:x","valueDecimal":0.1000}, "#,
            r#"{"url":"urn:x","valueDecimal":123456789012345678901234567890}, "#,
            r#"{"url":"urn:x","valueDecimal":-0.0}, {"url":"urn:x","valueDecimal":1E-7}]}"#
        );
        let resources = parse_ndjson("n.ndjson", line).unwrap();
        let fields = resources[0].fields();
        assert_eq!(fields["valueQuantity"], r#"{"value":1.50}"#);
        let extension = concat!(
            r#"[{"url":"urn:x","valueDecimal":1e2},{"url":"urn:x","valueDecimal":0.1000},"#,
            r#"{"url":"urn:x","valueDecimal":123456789012345678901234567890},"#,
            r#"{"url":"urn:x","valueDecimal":-0.0},{"url":"urn:x","valueDecimal":1E-7}]"#
        );
        assert_eq!(fields["extension"], extension);
        let exported = export_ndjson(&resources);
        assert_eq!(
            exported,
            format!(
                concat!(
                    r#"{{"code":{{"text":"t"}},"extension":{},"id":"n1","#,
                    r#""resourceType":"Observation","status":"final","valueQuantity":{{"value":1.50}}}}"#,
                    "\n"
                ),
                extension
            )
        );
        let input: Value = serde_json::from_str(line).unwrap();
        assert_eq!(resources[0].to_value(), input);
        // Value equality compares number text under arbitrary_precision.
        let rounded: Value = serde_json::from_str(&line.replace("1.50", "1.5")).unwrap();
        assert_ne!(resources[0].to_value(), rounded);
    }

    #[test]
    fn canonical_json_sorts_top_level_members_only() {
        // Structure only (as records are read back): the member names are not R4's.
        let line = r#"{"resourceType":"Patient","id":"p","b":{"z":1,"a":2},"a\"q":"x\n"}"#;
        let members: BTreeMap<String, Value> = serde_json::from_str(line).unwrap();
        let members = members
            .into_iter()
            .map(|(name, value)| (name, value.to_string()))
            .collect();
        let resource = &Resource::from_fields(members).unwrap();
        assert_eq!(
            resource.to_json(),
            r#"{"a\"q":"x\n","b":{"z":1,"a":2},"id":"p","resourceType":"Patient"}"#
        );
        let back: Value = serde_json::from_str(&resource.to_json()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(line).unwrap());
        let mut control = String::new();
        push_json_string(&mut control, "\u{1}\u{1f}\u{8}\u{c}\t/é");
        assert_eq!(
            control,
            serde_json::to_string("\u{1}\u{1f}\u{8}\u{c}\t/é").unwrap()
        );
    }

    #[test]
    fn ndjson_accepts_blank_lines_crlf_and_bom() {
        let text = "\u{feff}{\"resourceType\":\"Patient\",\"id\":\"a\"}\r\n\r\n  \n{\"resourceType\":\"Patient\",\"id\":\"b\"}";
        let resources = parse_ndjson("s", text).unwrap();
        let ids: Vec<&str> = resources.iter().map(Resource::id).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn not_json_is_rejected_with_line() {
        let err = parse_ndjson(
            "bad.ndjson",
            r#"{"resourceType":"Patient","id":"secret-value""#,
        )
        .unwrap_err();
        let problem = only_problem(err);
        assert!(
            matches!(problem, ParseFhirError::NotJson { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "bad.ndjson", 1, "(root)", &["secret-value"]);
    }

    #[test]
    fn missing_resource_type_is_rejected() {
        let problem =
            only_problem(parse_ndjson("a.ndjson", r#"{"id":"abc123secret"}"#).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::MissingField { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "a.ndjson", 1, "resourceType", &["abc123secret"]);
    }

    #[test]
    fn invalid_resource_type_is_rejected() {
        let problem = only_problem(
            parse_ndjson("a.ndjson", r#"{"resourceType":"patient smith","id":"a"}"#).unwrap_err(),
        );
        assert!(
            matches!(problem, ParseFhirError::InvalidResourceType { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "a.ndjson", 1, "resourceType", &["smith"]);
    }

    #[test]
    fn missing_id_is_rejected() {
        let text = r#"{"resourceType":"Patient","name":[{"family":"Secretname"}]}"#;
        let problem = only_problem(parse_ndjson("p.ndjson", text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::MissingField { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "p.ndjson", 1, "id", &["Secretname"]);
    }

    #[test]
    fn numeric_id_is_rejected() {
        let text = r#"{"resourceType":"Patient","id":123456789}"#;
        let problem = only_problem(parse_ndjson("p.ndjson", text).unwrap_err());
        assert!(
            matches!(
                problem,
                ParseFhirError::WrongType {
                    expected: "string",
                    ..
                }
            ),
            "{problem:?}"
        );
        assert_display(&problem, "p.ndjson", 1, "id", &["123456789"]);
    }

    #[test]
    fn bad_id_characters_are_rejected() {
        let text = r#"{"resourceType":"Patient","id":"john smith!"}"#;
        let problem = only_problem(parse_ndjson("p.ndjson", text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::InvalidId { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "p.ndjson", 1, "id", &["john smith"]);
        let long = format!(r#"{{"resourceType":"Patient","id":"{}"}}"#, "a".repeat(65));
        let problem = only_problem(parse_ndjson("p.ndjson", &long).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::InvalidId { .. }),
            "{problem:?}"
        );
    }

    #[test]
    fn subject_string_is_rejected() {
        let text = r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"t"},"subject":"Patient/secret-pt"}"#;
        let problem = only_problem(parse_ndjson("o.ndjson", text).unwrap_err());
        assert!(
            matches!(
                problem,
                ParseFhirError::WrongType {
                    expected: "object",
                    ..
                }
            ),
            "{problem:?}"
        );
        assert_display(&problem, "o.ndjson", 1, "subject", &["secret-pt"]);
    }

    #[test]
    fn numeric_reference_is_rejected_anywhere() {
        let text = r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"t"},"subject":{"reference":987654321}}"#;
        let problem = only_problem(parse_ndjson("o.ndjson", text).unwrap_err());
        assert!(
            matches!(
                problem,
                ParseFhirError::WrongType {
                    expected: "string",
                    ..
                }
            ),
            "{problem:?}"
        );
        assert_display(&problem, "o.ndjson", 1, "subject.reference", &["987654321"]);

        let nested = r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"t"},"performer":[{"display":"x"},{"reference":{"v":"Dr Secret"}}]}"#;
        let problem = only_problem(parse_ndjson("o.ndjson", nested).unwrap_err());
        assert_display(
            &problem,
            "o.ndjson",
            1,
            "performer[1].reference",
            &["Dr Secret"],
        );
    }

    #[test]
    fn reference_typed_reference_elements_take_objects() {
        let consent = |actor: &str| {
            format!(
                concat!(
                    r#"{{"resourceType":"Consent","id":"c","status":"active","scope":{{"text":"s"}},"#,
                    r#""category":[{{"text":"c"}}],"patient":{{"reference":"Patient/p"}},"#,
                    r#""provision":{{"actor":[{{"role":{{"text":"r"}},"reference":{}}}]}}}}"#
                ),
                actor
            )
        };
        parse_ndjson(
            "c.ndjson",
            &consent(r#"{"identifier":{"system":"urn:x","value":"y"}}"#),
        )
        .unwrap();
        let err = parse_ndjson("c.ndjson", &consent(r#"{"reference":7}"#)).unwrap_err();
        assert_eq!(
            only_problem(err).location().field,
            "provision.actor[0].reference.reference"
        );
        let err = parse_ndjson("c.ndjson", &consent("[]")).unwrap_err();
        let problem = only_problem(err);
        assert!(
            matches!(
                problem,
                ParseFhirError::WrongType {
                    expected: "object",
                    ..
                }
            ),
            "{problem:?}"
        );
        assert_eq!(
            problem.location().element.as_deref(),
            Some("Consent.provision.actor[0].reference")
        );
    }

    #[test]
    fn malformed_patient_reference_is_rejected() {
        let text = r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"t"},"subject":{"reference":"Patient/Jane Doe"}}"#;
        let problem = only_problem(parse_ndjson("o.ndjson", text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::InvalidReference { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "o.ndjson", 1, "subject.reference", &["Jane"]);
        let versioned = r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"t"},"subject":{"reference":"Patient/p7/_history/2"}}"#;
        let resource = &parse_ndjson("o.ndjson", versioned).unwrap()[0];
        assert_eq!(resource.patient_id().as_deref(), Some("p7"));
    }

    #[test]
    fn bad_line_three_of_five_rejects_everything() {
        let good = |id: &str| format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#);
        let text = [
            good("a"),
            good("b"),
            r#"{"resourceType":"Patient","id":"bad id secret"}"#.to_owned(),
            good("d"),
            good("e"),
        ]
        .join("\n");
        let err = parse_ndjson("five.ndjson", &text).unwrap_err();
        let problem = only_problem(err.clone());
        assert!(matches!(problem, ParseFhirError::InvalidId { .. }));
        assert_display(&problem, "five.ndjson", 3, "id", &["bad id secret"]);
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn problems_are_capped_but_counted() {
        let text = "not json\n".repeat(150);
        let err = parse_ndjson("many.ndjson", &text).unwrap_err();
        assert_eq!(err.total, 150);
        assert_eq!(err.problems.len(), MAX_PROBLEMS);
        assert_eq!(err.problems[99].location().line, 100);
    }

    #[test]
    fn empty_input_is_rejected() {
        let problem = only_problem(parse_ndjson("e.ndjson", "\n \n").unwrap_err());
        assert!(matches!(problem, ParseFhirError::Empty { .. }));
        let bundle = r#"{"resourceType":"Bundle","type":"collection","entry":[]}"#;
        let problem = only_problem(parse_bundle("e.json", bundle).unwrap_err());
        assert!(matches!(problem, ParseFhirError::Empty { .. }));
    }

    #[test]
    fn duplicate_resources_are_rejected() {
        let text = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"a\"}\n";
        let problem = only_problem(parse_ndjson("d.ndjson", text).unwrap_err());
        assert!(matches!(problem, ParseFhirError::DuplicateResource { .. }));
        assert_display(&problem, "d.ndjson", 2, "id", &[]);
    }

    const BUNDLE: &str = r#"{
  "resourceType": "Bundle",
  "type": "transaction",
  "entry": [ {
    "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
    "resource": { "resourceType": "Patient", "id": "pt-1", "name": [ { "family": "Doe" } ] },
    "request": { "method": "POST", "url": "Patient" }
  }, {
    "fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
    "resource": {
      "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" },
      "subject": { "reference": "urn:uuid:11111111-1111-1111-1111-111111111111" },
      "serviceProvider": { "reference": "Organization?identifier=x|y" }
    }
  }, {
    "fullUrl": "urn:uuid:33333333-3333-3333-3333-333333333333",
    "resource": {
      "resourceType": "Provenance", "id": "prov", "recorded": "2020-01-01T00:00:00Z",
      "agent": [ { "who": { "display": "x" } } ],
      "target": [ { "reference": "urn:uuid:22222222-2222-2222-2222-222222222222" },
                  { "reference": "UNRESOLVED" } ]
    }
  } ]
}"#;

    #[test]
    fn bundle_resolves_urn_uuid_and_attaches_unlinked_resources() {
        let text = BUNDLE.replace("\"UNRESOLVED\"", "\"Patient/pt-1\"");
        let resources = parse_bundle("b.json", &text).unwrap();
        assert_eq!(resources.len(), 3);
        let encounter = &resources[1];
        // The id comes from the urn:uuid fullUrl.
        assert_eq!(encounter.id(), "22222222-2222-2222-2222-222222222222");
        assert_eq!(
            encounter.fields()["subject"],
            r#"{"reference":"Patient/pt-1"}"#
        );
        assert_eq!(
            encounter.fields()["serviceProvider"],
            r#"{"reference":"Organization?identifier=x|y"}"#
        );
        assert_eq!(encounter.patient_id().as_deref(), Some("pt-1"));
        let provenance = &resources[2];
        assert_eq!(
            provenance.fields()["target"],
            r#"[{"reference":"Encounter/22222222-2222-2222-2222-222222222222"},{"reference":"Patient/pt-1"}]"#
        );
        assert_eq!(provenance.patient_id(), None);
        assert!(!provenance.fields().contains_key("request"));
        let groups = group_by_patient(resources).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups["pt-1"].len(), 3);
    }

    #[test]
    fn unresolved_urn_uuid_is_rejected_at_entry_line() {
        let text = BUNDLE.replace(
            "\"UNRESOLVED\"",
            "\"urn:uuid:99999999-dead-beef-0000-000000000000\"",
        );
        let problem = only_problem(parse_bundle("b.json", &text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::UnresolvedReference { .. }),
            "{problem:?}"
        );
        assert_display(
            &problem,
            "b.json",
            15,
            "entry[2].resource.target[1].reference",
            &["dead-beef"],
        );
    }

    #[test]
    fn bundle_validation_errors_name_entry_line_and_path() {
        let text = BUNDLE
            .replace("\"id\": \"prov\"", "\"id\": \"prov secret\"")
            .replace("\"UNRESOLVED\"", "\"Patient/pt-1\"");
        let problem = only_problem(parse_bundle("b.json", &text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::InvalidId { .. }),
            "{problem:?}"
        );
        assert_display(
            &problem,
            "b.json",
            15,
            "entry[2].resource.id",
            &["prov secret"],
        );
    }

    #[test]
    fn bundle_json_syntax_error_uses_serde_line() {
        let text = BUNDLE.replace("\"type\": \"transaction\",", "\"type\": \"transaction\"");
        let problem = only_problem(parse_bundle("b.json", &text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::NotJson { .. }),
            "{problem:?}"
        );
        assert_eq!(problem.location().line, 4);
        // parse_auto sends a broken pretty-printed document to the Bundle parser too.
        let problem = only_problem(parse_auto("b.json", text.as_bytes()).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::NotJson { .. }),
            "{problem:?}"
        );
        assert_eq!(problem.location().line, 4);
    }

    #[test]
    fn unsupported_bundle_type_is_rejected() {
        let text = BUNDLE.replace("\"transaction\"", "\"history\"");
        let problem = only_problem(parse_bundle("h.json", &text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::UnknownBundleType { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "h.json", 3, "type", &["history"]);
        let text = BUNDLE.replace("\"Bundle\"", "\"Patient\"");
        let problem = only_problem(parse_bundle("h.json", &text).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::NotABundle { .. }),
            "{problem:?}"
        );
    }

    #[test]
    fn duplicate_full_url_is_rejected() {
        let text = BUNDLE
            .replace(
                "urn:uuid:33333333-3333-3333-3333-333333333333",
                "urn:uuid:22222222-2222-2222-2222-222222222222",
            )
            .replace("\"UNRESOLVED\"", "\"Patient/pt-1\"");
        let err = parse_bundle("b.json", &text).unwrap_err();
        assert!(err
            .problems
            .iter()
            .any(|p| matches!(p, ParseFhirError::DuplicateFullUrl { .. })));
    }

    #[test]
    fn bad_utf8_is_rejected() {
        let mut bytes =
            b"{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\""
                .to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\"}\n");
        let problem = only_problem(parse_auto("u.ndjson", &bytes).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::NotUtf8 { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "u.ndjson", 2, "(root)", &[]);
    }

    #[test]
    fn parse_auto_detects_bundles_and_ndjson() {
        let text = BUNDLE.replace("\"UNRESOLVED\"", "\"Patient/pt-1\"");
        assert_eq!(parse_auto("b.json", text.as_bytes()).unwrap().len(), 3);
        let one_line: Value = serde_json::from_str(&text).unwrap();
        let one_line = serde_json::to_string(&one_line).unwrap();
        assert_eq!(parse_auto("b.json", one_line.as_bytes()).unwrap().len(), 3);
        let ndjson = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n";
        assert_eq!(parse_auto("n.ndjson", ndjson.as_bytes()).unwrap().len(), 2);
        let single = "{\"resourceType\":\"Patient\",\"id\":\"a\"}";
        assert_eq!(parse_auto("n.ndjson", single.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn unlinked_resources_without_single_patient_are_rejected() {
        let text = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n{\"resourceType\":\"Organization\",\"id\":\"org\"}\n";
        let resources = parse_ndjson("n.ndjson", text).unwrap();
        let problem = only_problem(group_by_patient(resources).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::NoPatient { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "n.ndjson", 3, "subject", &["org"]);

        let two_patients = BUNDLE
            .replace("\"UNRESOLVED\"", "\"Patient/pt-1\"")
            .replace(
                r#""resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" },"#,
                r#""resourceType": "Patient", "active": true,"#,
            )
            .replace(
                r#""subject": { "reference": "urn:uuid:11111111-1111-1111-1111-111111111111" },"#,
                r#""gender": "male","#,
            )
            .replace(
                r#""serviceProvider": { "reference": "Organization?identifier=x|y" }"#,
                r#""birthDate": "1970""#,
            );
        let resources = parse_bundle("b.json", &two_patients).unwrap();
        let problem = only_problem(group_by_patient(resources).unwrap_err());
        assert!(
            matches!(problem, ParseFhirError::NoPatient { .. }),
            "{problem:?}"
        );
        assert_display(&problem, "b.json", 15, "entry[2].resource.subject", &[]);
    }

    #[test]
    fn from_fields_revalidates_and_minifies() {
        let mut fields = BTreeMap::new();
        fields.insert("resourceType".to_owned(), "\"Observation\"".to_owned());
        fields.insert("id".to_owned(), "\"o1\"".to_owned());
        fields.insert(
            "valueQuantity".to_owned(),
            "{ \"value\" : 1.50 }".to_owned(),
        );
        let resource = Resource::from_fields(fields.clone()).unwrap();
        assert_eq!(resource.fields()["valueQuantity"], r#"{"value":1.50}"#);

        fields.insert("subject".to_owned(), "\"Patient/x\"".to_owned());
        let err = Resource::from_fields(fields.clone()).unwrap_err();
        assert!(matches!(
            err,
            ParseFhirError::WrongType {
                expected: "object",
                ..
            }
        ));
        fields.insert("subject".to_owned(), "{\"reference\":".to_owned());
        let err = Resource::from_fields(fields).unwrap_err();
        assert!(matches!(err, ParseFhirError::NotJson { .. }));
        assert_eq!(err.location().field, "subject");
    }

    #[test]
    fn debug_shows_no_id_or_values() {
        let text =
            r#"{"resourceType":"Patient","id":"pt-secret-id","name":[{"family":"Secretname"}]}"#;
        let resources = parse_ndjson("p.ndjson", text).unwrap();
        let shown = format!("{:?}", resources[0]);
        assert!(
            shown.contains("Patient") && shown.contains("name"),
            "{shown}"
        );
        assert!(
            !shown.contains("secret") && !shown.contains("Secretname"),
            "{shown}"
        );
    }

    #[test]
    fn export_is_sorted_and_deterministic() {
        let text = "{\"resourceType\":\"Patient\",\"id\":\"b\"}\n{\"resourceType\":\"Condition\",\"id\":\"z\",\"subject\":{\"reference\":\"Patient/b\"}}\n{\"resourceType\":\"Patient\",\"id\":\"a\"}\n";
        let resources = parse_ndjson("n.ndjson", text).unwrap();
        let bundle = export_bundle(&resources);
        assert_eq!(
            bundle,
            concat!(
                r#"{"resourceType":"Bundle","type":"collection","entry":["#,
                r#"{"resource":{"id":"z","resourceType":"Condition","subject":{"reference":"Patient/b"}}},"#,
                r#"{"resource":{"id":"a","resourceType":"Patient"}},"#,
                r#"{"resource":{"id":"b","resourceType":"Patient"}}]}"#
            )
        );
        let mut reversed = resources.clone();
        reversed.reverse();
        assert_eq!(export_bundle(&reversed), bundle);
        assert_eq!(export_ndjson(&reversed), export_ndjson(&resources));
        assert_eq!(export_ndjson(&[]), "");
        assert_eq!(
            export_bundle(&[]),
            r#"{"resourceType":"Bundle","type":"collection"}"#
        );
        assert_eq!(
            parse_bundle("x", &bundle).unwrap(),
            sorted(&resources).into_iter().cloned().collect::<Vec<_>>()
        );
    }

    #[test]
    fn unlinked_resources_join_the_only_patient_of_a_batch() {
        let one = concat!(
            r#"{"resourceType":"Patient","id":"p1"}"#,
            "\n",
            r#"{"resourceType":"Provenance","id":"v1","target":[{"reference":"Patient/p1"}],"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"display":"x"}}]}"#,
            "\n",
        );
        let groups = group_by_patient(parse_ndjson("one.ndjson", one).unwrap()).unwrap();
        assert_eq!(groups.keys().collect::<Vec<_>>(), ["p1"]);
        assert_eq!(groups["p1"].len(), 2);

        let two = concat!(
            r#"{"resourceType":"Patient","id":"p1"}"#,
            "\n",
            r#"{"resourceType":"Patient","id":"p2"}"#,
            "\n",
            r#"{"resourceType":"Provenance","id":"v1","target":[{"reference":"Organization/o"}],"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"display":"x"}}]}"#,
            "\n",
        );
        let err = group_by_patient(parse_ndjson("two.ndjson", two).unwrap()).unwrap_err();
        assert!(matches!(
            err.problems.as_slice(),
            [ParseFhirError::NoPatient { .. }]
        ));
        let shown = err.to_string();
        assert!(
            shown.contains("two.ndjson") && shown.contains("line 3"),
            "{shown}"
        );
    }

    #[test]
    fn blank_input_is_empty_not_a_syntax_error() {
        for blank in ["", "\n\n", "  \r\n\t"] {
            let err = parse_auto("blank.ndjson", blank.as_bytes()).unwrap_err();
            assert!(
                matches!(err.problems.as_slice(), [ParseFhirError::Empty { .. }]),
                "{err:?}"
            );
        }
    }
}
