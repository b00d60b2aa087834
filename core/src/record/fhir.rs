//! FHIR R4 JSON in and out: parsing, core-field validation, Bundle `urn:uuid:`
//! resolution, grouping by patient and canonical export.
//!
//! Every resource is kept as its top-level members, each as minified JSON
//! text. Minifying re-serializes the parsed `serde_json::Value`; the crate
//! builds `serde_json` with `arbitrary_precision` and `preserve_order`, so
//! number text (`1.50`, `1e2`, 30-digit integers) and nested member order
//! survive unchanged. String escapes are normalized the way `serde_json`
//! writes them (for example `\u00e9` becomes `é`), which keeps the JSON value
//! equal.
//!
//! Errors carry a [`FhirLocation`] (source, line, field path) and a fixed
//! rule text, never a value from the input: the input is patient data.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// At most this many problems are kept in an [`ImportFhirError`]; the rest are only counted.
pub const MAX_PROBLEMS: usize = 100;

/// Bundle types whose entries are taken as resources to import.
const BUNDLE_TYPES: [&str; 4] = ["transaction", "collection", "searchset", "batch"];

/// Members that FHIR defines as complex types; a scalar there is a malformed resource.
const OBJECT_MEMBERS: [&str; 6] = ["meta", "text", "subject", "patient", "encounter", "beneficiary"];

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
}

impl FhirLocation {
    fn new(source: &str, line: usize, field: impl Into<String>) -> Self {
        FhirLocation {
            source: source.to_owned(),
            line,
            field: field.into(),
        }
    }
}

impl fmt::Display for FhirLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, line {}, field `{}`",
            self.source, self.line, self.field
        )
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
    /// beneficiary, and its Bundle (if any) did not hold exactly one Patient.
    #[error("{location}: no Patient link in subject, patient or beneficiary, and no single Patient in its Bundle")]
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
            | ParseFhirError::Empty { location } => location,
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
        let mut object = Map::with_capacity(fields.len());
        for (name, text) in fields {
            match serde_json::from_str::<Value>(&text) {
                Ok(value) => {
                    object.insert(name, value);
                }
                Err(err) => {
                    return Err(ParseFhirError::NotJson {
                        location: FhirLocation::new(FIELDS_SOURCE, 0, field_name(&name)),
                        column: err.column(),
                    })
                }
            }
        }
        let site = Site {
            source: FIELDS_SOURCE,
            line: 0,
            prefix: "",
        };
        let mut problems = Problems::default();
        match build_resource(Value::Object(object), &site, &mut problems) {
            Some(resource) if problems.is_empty() => Ok(resource),
            _ => Err(problems
                .list
                .into_iter()
                .next()
                .unwrap_or_else(|| ParseFhirError::NotAnObject {
                    location: site.at(""),
                })),
        }
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

/// Where a resource under validation sits, to build [`FhirLocation`]s.
struct Site<'a> {
    source: &'a str,
    line: usize,
    /// Field path of the resource itself: empty for NDJSON, `entry[3].resource` in a Bundle.
    prefix: &'a str,
}

impl Site<'_> {
    fn at(&self, field: &str) -> FhirLocation {
        FhirLocation::new(self.source, self.line, join_path(self.prefix, field))
    }
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

/// One step of a JSON path, formatted only when a problem needs it.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn format_path(steps: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(field_name(key));
            }
            Step::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// `[A-Z][A-Za-z]{1,63}`
pub(crate) fn is_resource_type(s: &str) -> bool {
    let bytes = s.as_bytes();
    (2..=64).contains(&bytes.len())
        && bytes[0].is_ascii_uppercase()
        && bytes.iter().all(u8::is_ascii_alphabetic)
}

/// The FHIR id rule `[A-Za-z0-9\-\.]{1,64}`.
pub(crate) fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Validates one parsed resource and splits it into minified members.
///
/// Pushes every problem found; returns `None` if there was any.
fn build_resource(value: Value, site: &Site<'_>, problems: &mut Problems) -> Option<Resource> {
    let before = problems.total;
    let Value::Object(object) = value else {
        problems.push(ParseFhirError::NotAnObject { location: site.at("") });
        return None;
    };

    let resource_type = match object.get("resourceType") {
        None => {
            problems.push(ParseFhirError::MissingField {
                location: site.at("resourceType"),
            });
            None
        }
        Some(Value::String(s)) if is_resource_type(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            problems.push(ParseFhirError::InvalidResourceType {
                location: site.at("resourceType"),
            });
            None
        }
        Some(_) => {
            problems.push(ParseFhirError::WrongType {
                location: site.at("resourceType"),
                expected: "string",
            });
            None
        }
    };

    let id = match object.get("id") {
        None => {
            problems.push(ParseFhirError::MissingField {
                location: site.at("id"),
            });
            None
        }
        Some(Value::String(s)) if is_fhir_id(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            problems.push(ParseFhirError::InvalidId {
                location: site.at("id"),
            });
            None
        }
        Some(_) => {
            problems.push(ParseFhirError::WrongType {
                location: site.at("id"),
                expected: "string",
            });
            None
        }
    };

    for member in OBJECT_MEMBERS {
        if let Some(v) = object.get(member) {
            if !v.is_object() {
                problems.push(ParseFhirError::WrongType {
                    location: site.at(member),
                    expected: "object",
                });
            }
        }
    }

    let mut steps = Vec::new();
    for (name, v) in &object {
        steps.push(Step::Key(name));
        check_references(v, &mut steps, site, problems);
        steps.pop();
    }

    let mut patient_link = None;
    for member in PATIENT_LINKS {
        let Some(reference) = object
            .get(member)
            .and_then(|m| m.get("reference"))
            .and_then(Value::as_str)
        else {
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
    if resource_type == "Patient" {
        patient_link = Some(id.clone());
    }

    let mut fields = BTreeMap::new();
    for (name, v) in object {
        match serde_json::to_string(&v) {
            Ok(text) => {
                fields.insert(name, text);
            }
            Err(_) => {
                // Serializing a Value cannot fail (keys are strings); kept as
                // a reported problem rather than a panic path.
                problems.push(ParseFhirError::NotJson {
                    location: site.at(field_name(&name)),
                    column: 0,
                });
                return None;
            }
        }
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

/// Every `reference` member of any object must be a string.
fn check_references<'v>(
    value: &'v Value,
    steps: &mut Vec<Step<'v>>,
    site: &Site<'_>,
    problems: &mut Problems,
) {
    match value {
        Value::Object(object) => {
            for (name, v) in object {
                steps.push(Step::Key(name));
                if name == "reference" && !v.is_string() {
                    problems.push(ParseFhirError::WrongType {
                        location: site.at(&format_path(steps)),
                        expected: "string",
                    });
                }
                check_references(v, steps, site, problems);
                steps.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                steps.push(Step::Index(i));
                check_references(v, steps, site, problems);
                steps.pop();
            }
        }
        _ => {}
    }
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
        };
        match serde_json::from_str::<Value>(line) {
            Err(err) => problems.push(ParseFhirError::NotJson {
                location: site.at(""),
                column: err.column(),
            }),
            Ok(value) => {
                if let Some(resource) = build_resource(value, &site, &mut problems) {
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
        let skipped = self.text.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
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
    let text = strip_bom(text);
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

    // Pass 1: parse entries, take ids from urn:uuid fullUrls, build the fullUrl map.
    struct Parsed {
        line: usize,
        prefix: String,
        resource: Value,
    }
    let mut parsed = Vec::with_capacity(entries.len());
    let mut full_urls: HashMap<String, String> = HashMap::new();
    for (index, raw) in entries.iter().enumerate() {
        let line = lines.line_of_raw(raw);
        let entry_path = format!("entry[{index}]");
        let at = |field: &str| FhirLocation::new(source, line, join_path(&entry_path, field));
        let entry = match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Object(entry)) => entry,
            Ok(_) => {
                problems.push(ParseFhirError::NotAnObject { location: at("") });
                continue;
            }
            Err(err) => {
                problems.push(ParseFhirError::NotJson {
                    location: at(""),
                    column: err.column(),
                });
                continue;
            }
        };
        let mut entry = entry;
        let full_url = match entry.get("fullUrl") {
            None => None,
            Some(Value::String(url)) => Some(url.clone()),
            Some(_) => {
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
        let mut resource = match entry.remove("resource") {
            None => {
                problems.push(ParseFhirError::MissingField {
                    location: at("resource"),
                });
                continue;
            }
            Some(Value::Object(resource)) => resource,
            Some(_) => {
                problems.push(ParseFhirError::NotAnObject {
                    location: at("resource"),
                });
                continue;
            }
        };
        if !resource.contains_key("id") {
            if let Some(uuid) = uuid {
                resource.insert("id".to_owned(), Value::String(uuid.to_owned()));
            }
        }
        if let (Some(url), Some(_)) = (&full_url, uuid) {
            if let (Some(Value::String(t)), Some(Value::String(id))) =
                (resource.get("resourceType"), resource.get("id"))
            {
                if full_urls
                    .insert(url.clone(), format!("{t}/{id}"))
                    .is_some()
                {
                    problems.push(ParseFhirError::DuplicateFullUrl {
                        location: at("fullUrl"),
                    });
                }
            }
        }
        parsed.push(Parsed {
            line,
            prefix: join_path(&entry_path, "resource"),
            resource: Value::Object(resource),
        });
    }

    // Pass 2: resolve urn:uuid references, then validate.
    let mut resources = Vec::with_capacity(parsed.len());
    let mut seen = HashSet::new();
    for mut entry in parsed {
        let site = Site {
            source,
            line: entry.line,
            prefix: &entry.prefix,
        };
        let mut steps = Vec::new();
        resolve_references(
            &mut entry.resource,
            &mut steps,
            &full_urls,
            &site,
            &mut problems,
        );
        if let Some(resource) = build_resource(entry.resource, &site, &mut problems) {
            if check_duplicate(&mut seen, &resource, &mut problems) {
                resources.push(resource);
            }
        }
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

/// Rewrites `reference` strings equal to a mapped `urn:uuid:` fullUrl to `Type/id`.
fn resolve_references(
    value: &mut Value,
    steps: &mut Vec<String>,
    full_urls: &HashMap<String, String>,
    site: &Site<'_>,
    problems: &mut Problems,
) {
    match value {
        Value::Object(object) => {
            for (name, v) in object.iter_mut() {
                if name == "reference" {
                    if let Value::String(reference) = v {
                        if reference.starts_with("urn:uuid:") {
                            match full_urls.get(reference.as_str()) {
                                Some(target) => *reference = target.clone(),
                                None => {
                                    steps.push(name.clone());
                                    problems.push(ParseFhirError::UnresolvedReference {
                                        location: site.at(&format_owned_path(steps)),
                                    });
                                    steps.pop();
                                }
                            }
                        }
                        continue;
                    }
                }
                steps.push(name.clone());
                resolve_references(v, steps, full_urls, site, problems);
                steps.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                steps.push(format!("[{i}]"));
                resolve_references(v, steps, full_urls, site, problems);
                steps.pop();
            }
        }
        _ => {}
    }
}

fn format_owned_path(steps: &[String]) -> String {
    let mut out = String::new();
    for step in steps {
        if step.starts_with('[') {
            out.push_str(step);
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(field_name(step));
        }
    }
    out
}

/// Parses bytes as a Bundle document or as NDJSON.
///
/// Bytes that are not UTF-8 are rejected (the location names the line of
/// the first bad byte). A UTF-8 byte order mark is ignored. The input is a
/// Bundle when the whole document is one JSON object whose `resourceType`
/// is `Bundle`, or when it is not valid JSON as a whole and its first
/// non-blank line is not a JSON value on its own (a broken pretty-printed
/// document: [`parse_bundle`] then reports the syntax error at its real
/// line). Everything else is NDJSON.
pub fn parse_auto(source: &str, bytes: &[u8]) -> Result<Vec<Resource>, ImportFhirError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => strip_bom(text),
        Err(err) => {
            let valid = &bytes[..err.valid_up_to()];
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
            parse_bundle(source, text)
        }
        Ok(_) => parse_ndjson(source, text),
        Err(_) => {
            let first_line = text
                .split('\n')
                .map(|line| line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r')))
                .find(|line| !line.is_empty())
                .unwrap_or("");
            if serde_json::from_str::<serde::de::IgnoredAny>(first_line).is_ok() {
                parse_ndjson(source, text)
            } else {
                parse_bundle(source, text)
            }
        }
    }
}

/// Groups resources by patient id.
///
/// A resource belongs to [`Resource::patient_id`], or else to the single
/// Patient of the Bundle it was parsed from. A resource with neither is a
/// [`ParseFhirError::NoPatient`] problem, and the whole batch is rejected.
/// Within each group the input order is kept.
pub fn group_by_patient(
    resources: Vec<Resource>,
) -> Result<BTreeMap<String, Vec<Resource>>, ImportFhirError> {
    let mut problems = Problems::default();
    let mut groups: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
    for resource in resources {
        match resource
            .patient_link
            .clone()
            .or_else(|| resource.patient_hint.clone())
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
pub fn export_bundle(resources: &[Resource]) -> String {
    let refs = sorted(resources);
    let mut out = String::with_capacity(
        64 + refs
            .iter()
            .map(|r| r.fields.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + 16)
            .sum::<usize>(),
    );
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
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Validates `text` as one JSON value and returns it minified.
pub(crate) fn minify_json(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    serde_json::to_string(&value).ok()
}
