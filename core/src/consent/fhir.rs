//! Reading and writing the FHIR R4 Consent JSON.
//!
//! Reading is strict wherever leniency could widen what a consent permits:
//! an element careledger cannot evaluate (`action`, `securityLabel`, `code`,
//! `data`, `dataPeriod`, any `modifierExtension`), an unknown member of a
//! provision, or a purpose or class coding in a code system careledger does
//! not interpret rejects the whole consent with an error naming the field.
//! Elements that do not bear on the decision (`text`, `meta`, `category`,
//! `organization`, `sourceAttachment`, `verification`, `performer`, other
//! extensions, …) are accepted and not kept.
//!
//! Errors name the field path and the rule, never a value from the input.

use serde_json::{json, Map, Value};

use crate::entry::AuthorId;
use crate::node::NetworkId;
use crate::record::fhir::{is_fhir_id, is_member_name, is_resource_type};

use super::provision::{
    Actor, Effect, Grantee, OtherActor, Period, Provision, Purpose, NETWORK_SYSTEM, NODE_SYSTEM,
};
use super::resource::{Consent, ConsentScope, ConsentStatus};
use super::time::{self, Bound};

/// Code system of purposes (`provision.purpose[].system`).
pub const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// The pre-R4 address of the same code system, accepted when reading.
const ACT_REASON_SYSTEM_OLD: &str = "http://hl7.org/fhir/v3/ActReason";
/// Code system of classes (`provision.class[].system`): FHIR resource types.
pub const RESOURCE_TYPES_SYSTEM: &str = "http://hl7.org/fhir/resource-types";
/// Code system of `policyRule` codes `OPTIN` / `OPTOUT`.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// Code system of `Consent.scope`.
pub const CONSENT_SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
/// Extension marking a consent recorded by a member institution on the
/// patient's behalf; `valueIdentifier` names the recorder's node.
pub const ON_BEHALF_EXTENSION: &str = "urn:careledger:recorded-on-behalf-by";
/// Deepest nesting accepted below the root provision (the root is depth 0).
pub const MAX_PROVISION_DEPTH: usize = 16;

const PARTICIPATION_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const LOINC_SYSTEM: &str = "http://loinc.org";
/// LOINC "Patient consent", the category R4's own examples use.
const CONSENT_CATEGORY_CODE: &str = "59284-0";

/// Provision members that constrain coverage in ways careledger does not
/// evaluate. Ignoring one would make a permit cover more than the patient
/// granted, so a consent carrying one is rejected.
const UNSUPPORTED_PROVISION_MEMBERS: [&str; 6] = [
    "modifierExtension",
    "action",
    "securityLabel",
    "code",
    "data",
    "dataPeriod",
];
/// Provision members careledger reads, or that carry no meaning for it.
const PROVISION_MEMBERS: [&str; 8] = [
    "id",
    "extension",
    "type",
    "period",
    "actor",
    "purpose",
    "class",
    "provision",
];

/// Why a Consent could not be read (or a draft could not be built).
///
/// Each variant names the field path (e.g. `provision.provision[1].period.end`)
/// and the rule; none carries a value from the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseConsentError {
    /// The bytes are not JSON.
    #[error("not valid JSON (syntax error at line {line}, column {column})")]
    NotJson {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
    },
    /// A member has the wrong JSON type.
    #[error("`{field}`: must be a JSON {expected}")]
    WrongType {
        /// The member; `(root)` for the document.
        field: String,
        /// The JSON type the rule requires.
        expected: &'static str,
    },
    /// A required member is absent.
    #[error("`{field}`: required member is missing")]
    MissingField {
        /// The missing member.
        field: String,
    },
    /// `resourceType` is not `Consent`.
    #[error("`resourceType`: must be Consent")]
    NotAConsent,
    /// `id` does not match `[A-Za-z0-9\-\.]{1,64}`.
    #[error("`{field}`: id must match [A-Za-z0-9\\-\\.]{{1,64}}")]
    InvalidId {
        /// The id member.
        field: String,
    },
    /// `patient.reference` is not `Patient/<id>`.
    #[error("`{field}`: must be Patient/<id> with id matching [A-Za-z0-9\\-\\.]{{1,64}}")]
    InvalidPatientReference {
        /// The reference member.
        field: String,
    },
    /// `status` is not a Consent status code.
    #[error("`{field}`: must be draft, proposed, active, rejected, inactive or entered-in-error")]
    UnknownStatus {
        /// The status member.
        field: String,
    },
    /// A provision `type` is neither `deny` nor `permit`.
    #[error("`{field}`: must be deny or permit")]
    UnknownProvisionType {
        /// The type member.
        field: String,
    },
    /// A nested provision has no `type`; R4 requires it in every nested rule.
    #[error("`{field}`: a nested provision must state its type (deny or permit)")]
    NestedTypeMissing {
        /// Where the type should be.
        field: String,
    },
    /// The root `provision.type` and `policyRule` (OPTIN/OPTOUT), or two
    /// `policyRule` codings, state different base decisions.
    #[error("`{field}`: states a base decision that contradicts the rest of the consent")]
    ConflictingBaseDecision {
        /// The contradicting member.
        field: String,
    },
    /// Not a FHIR date/dateTime in years 0001–9999.
    #[error("`{field}`: must be a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.f]±zz:zz) in years 0001-9999")]
    InvalidDateTime {
        /// The date member.
        field: String,
    },
    /// A period starts after it ends.
    #[error("`{field}`: start must not be after end")]
    InvalidPeriod {
        /// The period.
        field: String,
    },
    /// A coding is not in the code system the element requires.
    #[error("`{field}`: code system must be {expected}")]
    UnknownCodeSystem {
        /// The coding's system (or the coding list).
        field: String,
        /// The system careledger interprets there.
        expected: &'static str,
    },
    /// A code breaks the element's code rule.
    #[error("`{field}`: must be {expected}")]
    InvalidCode {
        /// The code member.
        field: String,
        /// The rule.
        expected: &'static str,
    },
    /// An identifier in a careledger grantee system has a malformed value.
    #[error("`{field}`: a careledger node must be 64 hex digits, a network a non-empty even number of hex digits (at most 510)")]
    InvalidGrantee {
        /// The identifier value.
        field: String,
    },
    /// An element careledger cannot evaluate; ignoring it could widen a permit.
    #[error("`{field}`: careledger cannot evaluate this element, so the consent is rejected rather than read more widely than written")]
    UnsupportedElement {
        /// The element.
        field: String,
    },
    /// A provision member that is not part of R4's provision.
    #[error("`{field}`: not an element of Consent.provision")]
    UnknownElement {
        /// The member (masked as `<member>` if its name is not element-like).
        field: String,
    },
    /// Provisions nest deeper than [`MAX_PROVISION_DEPTH`].
    #[error("`{field}`: provisions nest deeper than {MAX_PROVISION_DEPTH} levels")]
    TooDeep {
        /// The first provision too deep.
        field: String,
    },
    /// The recorded-on-behalf extension is malformed or repeated.
    #[error("`{field}`: the recorded-on-behalf extension must appear once, with valueIdentifier system urn:careledger:node and a 64-hex node id")]
    InvalidMark {
        /// The extension.
        field: String,
    },
}

impl ParseConsentError {
    /// The field path the error is about (`(root)` for the document, `(json)` for syntax).
    pub fn field(&self) -> &str {
        match self {
            ParseConsentError::NotJson { .. } => "(json)",
            ParseConsentError::NotAConsent => "resourceType",
            ParseConsentError::WrongType { field, .. }
            | ParseConsentError::MissingField { field }
            | ParseConsentError::InvalidId { field }
            | ParseConsentError::InvalidPatientReference { field }
            | ParseConsentError::UnknownStatus { field }
            | ParseConsentError::UnknownProvisionType { field }
            | ParseConsentError::NestedTypeMissing { field }
            | ParseConsentError::ConflictingBaseDecision { field }
            | ParseConsentError::InvalidDateTime { field }
            | ParseConsentError::InvalidPeriod { field }
            | ParseConsentError::UnknownCodeSystem { field, .. }
            | ParseConsentError::InvalidCode { field, .. }
            | ParseConsentError::InvalidGrantee { field }
            | ParseConsentError::UnsupportedElement { field }
            | ParseConsentError::UnknownElement { field }
            | ParseConsentError::TooDeep { field }
            | ParseConsentError::InvalidMark { field } => field,
        }
    }
}

type Result<T> = std::result::Result<T, ParseConsentError>;

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn index(prefix: &str, i: usize) -> String {
    format!("{prefix}[{i}]")
}

fn as_object<'v>(value: &'v Value, field: &str) -> Result<&'v Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| ParseConsentError::WrongType {
            field: field.to_owned(),
            expected: "object",
        })
}

/// An optional string member.
fn opt_str<'v>(
    object: &'v Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<&'v str>> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ParseConsentError::WrongType {
            field: join(prefix, name),
            expected: "string",
        }),
    }
}

/// A required string member.
fn req_str<'v>(object: &'v Map<String, Value>, name: &str, prefix: &str) -> Result<&'v str> {
    opt_str(object, name, prefix)?.ok_or_else(|| ParseConsentError::MissingField {
        field: join(prefix, name),
    })
}

/// An optional array member (absent = empty).
fn opt_array<'v>(object: &'v Map<String, Value>, name: &str, prefix: &str) -> Result<&'v [Value]> {
    match object.get(name) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ParseConsentError::WrongType {
            field: join(prefix, name),
            expected: "array",
        }),
    }
}

/// The FHIR `code` rule: `[^\s]+( [^\s]+)*`.
fn is_fhir_code(s: &str) -> bool {
    !s.is_empty()
        && s.split(' ')
            .all(|part| !part.is_empty() && !part.chars().any(char::is_whitespace))
}

/// `Patient/<id>`, optionally with `/_history/<version>`.
fn patient_id(reference: &str) -> Option<&str> {
    let rest = reference.strip_prefix("Patient/")?;
    let id = match rest.split_once('/') {
        None => rest,
        Some((id, version)) => {
            let version = version.strip_prefix("_history/")?;
            is_fhir_id(version).then_some(id)?
        }
    };
    is_fhir_id(id).then_some(id)
}

/// Hex digits only, so ids are never read with whitespace or signs.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_author(value: &str) -> Option<AuthorId> {
    is_hex(value).then_some(value).and_then(AuthorId::from_hex)
}

fn parse_network(value: &str) -> Option<NetworkId> {
    is_hex(value).then_some(value).and_then(NetworkId::from_hex)
}

/// One Coding, borrowed, with its field path.
struct CodingRef<'v> {
    path: String,
    system: Option<&'v str>,
    code: Option<&'v str>,
}

/// The Codings of the array member `name` (absent = none).
fn coding_list<'v>(
    object: &'v Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Vec<CodingRef<'v>>> {
    let base = join(prefix, name);
    opt_array(object, name, prefix)?
        .iter()
        .enumerate()
        .map(|(i, coding)| {
            let path = index(&base, i);
            let coding = as_object(coding, &path)?;
            let system = opt_str(coding, "system", &path)?;
            let code = opt_str(coding, "code", &path)?;
            Ok(CodingRef { path, system, code })
        })
        .collect()
}

/// The Codings of a CodeableConcept.
fn codings<'v>(concept: &'v Value, prefix: &str) -> Result<Vec<CodingRef<'v>>> {
    coding_list(as_object(concept, prefix)?, "coding", prefix)
}

fn parse_scope(root: &Map<String, Value>) -> Result<ConsentScope> {
    let Some(scope) = root.get("scope") else {
        // R4 requires a scope; a consent without one is read as an
        // information-sharing consent, so it takes part rather than vanish.
        return Ok(ConsentScope::PatientPrivacy);
    };
    let codings = codings(scope, "scope")?;
    let coding = codings
        .into_iter()
        .find(|coding| coding.system == Some(CONSENT_SCOPE_SYSTEM))
        .ok_or(ParseConsentError::UnknownCodeSystem {
            field: "scope.coding".to_owned(),
            expected: CONSENT_SCOPE_SYSTEM,
        })?;
    coding
        .code
        .and_then(ConsentScope::from_code)
        .ok_or(ParseConsentError::InvalidCode {
            field: join(&coding.path, "code"),
            expected: "adr, research, patient-privacy or treatment",
        })
}

/// The base decision `policyRule` states (v3-ActCode OPTIN/OPTINR permit,
/// OPTOUT/OPTOUTE deny); other policy codes name a regulation, not a direction.
fn parse_policy_rule(root: &Map<String, Value>) -> Result<Option<Effect>> {
    let Some(rule) = root.get("policyRule") else {
        return Ok(None);
    };
    let mut found = None;
    for coding in codings(rule, "policyRule")? {
        if coding.system != Some(ACT_CODE_SYSTEM) {
            continue;
        }
        let effect = match coding.code {
            Some("OPTIN" | "OPTINR") => Effect::Permit,
            Some("OPTOUT" | "OPTOUTE") => Effect::Deny,
            _ => continue,
        };
        if found.is_some_and(|seen| seen != effect) {
            return Err(ParseConsentError::ConflictingBaseDecision {
                field: "policyRule".to_owned(),
            });
        }
        found = Some(effect);
    }
    Ok(found)
}

fn parse_mark(root: &Map<String, Value>) -> Result<Option<AuthorId>> {
    let mut mark = None;
    for (i, extension) in opt_array(root, "extension", "")?.iter().enumerate() {
        let path = index("extension", i);
        let Some(extension) = extension.as_object() else {
            continue;
        };
        if extension.get("url").and_then(Value::as_str) != Some(ON_BEHALF_EXTENSION) {
            continue;
        }
        let invalid = || ParseConsentError::InvalidMark {
            field: path.clone(),
        };
        let identifier = extension
            .get("valueIdentifier")
            .and_then(Value::as_object)
            .ok_or_else(invalid)?;
        if identifier.get("system").and_then(Value::as_str) != Some(NODE_SYSTEM) || mark.is_some() {
            return Err(invalid());
        }
        let author = identifier
            .get("value")
            .and_then(Value::as_str)
            .and_then(parse_author)
            .ok_or_else(invalid)?;
        mark = Some(author);
    }
    Ok(mark)
}

fn parse_period(value: &Value, prefix: &str) -> Result<Period> {
    let object = as_object(value, prefix)?;
    let bound = |name: &str, bound: Bound| -> Result<Option<i64>> {
        match opt_str(object, name, prefix)? {
            None => Ok(None),
            Some(text) => time::parse(text, bound).map(Some).ok_or_else(|| {
                ParseConsentError::InvalidDateTime {
                    field: join(prefix, name),
                }
            }),
        }
    };
    let period = Period {
        start_ms: bound("start", Bound::Start)?,
        end_ms: bound("end", Bound::End)?,
    };
    if let (Some(start), Some(end)) = (period.start_ms, period.end_ms) {
        if start > end {
            return Err(ParseConsentError::InvalidPeriod {
                field: prefix.to_owned(),
            });
        }
    }
    Ok(period)
}

fn parse_actor(value: &Value, prefix: &str) -> Result<Actor> {
    let object = as_object(value, prefix)?;
    let reference_path = join(prefix, "reference");
    let reference = object
        .get("reference")
        .ok_or_else(|| ParseConsentError::MissingField {
            field: reference_path.clone(),
        })?;
    let reference = as_object(reference, &reference_path)?;
    let identifier = reference.get("identifier").and_then(Value::as_object);
    let system = identifier
        .and_then(|id| id.get("system"))
        .and_then(Value::as_str);
    let value_path = join(&reference_path, "identifier.value");
    let invalid = || ParseConsentError::InvalidGrantee {
        field: value_path.clone(),
    };
    let id_value = || {
        identifier
            .and_then(|id| id.get("value"))
            .and_then(Value::as_str)
    };
    match system {
        Some(NODE_SYSTEM) => id_value()
            .and_then(parse_author)
            .map(|author| Actor::Grantee(Grantee::Node(author)))
            .ok_or_else(invalid),
        Some(NETWORK_SYSTEM) => id_value()
            .and_then(parse_network)
            .map(|network| Actor::Grantee(Grantee::Network(network)))
            .ok_or_else(invalid),
        _ => Ok(Actor::Other(OtherActor(value.clone()))),
    }
}

fn parse_purposes(object: &Map<String, Value>, prefix: &str) -> Result<Vec<Purpose>> {
    coding_list(object, "purpose", prefix)?
        .into_iter()
        .map(|CodingRef { path, system, code }| {
            if !matches!(system, Some(ACT_REASON_SYSTEM | ACT_REASON_SYSTEM_OLD)) {
                return Err(ParseConsentError::UnknownCodeSystem {
                    field: join(&path, "system"),
                    expected: ACT_REASON_SYSTEM,
                });
            }
            let code = code.ok_or_else(|| ParseConsentError::MissingField {
                field: join(&path, "code"),
            })?;
            if !is_fhir_code(code) {
                return Err(ParseConsentError::InvalidCode {
                    field: join(&path, "code"),
                    expected: "a FHIR code (no leading, trailing or repeated whitespace)",
                });
            }
            Ok(Purpose::from_code(code))
        })
        .collect()
}

fn parse_classes(object: &Map<String, Value>, prefix: &str) -> Result<Vec<String>> {
    coding_list(object, "class", prefix)?
        .into_iter()
        .map(|CodingRef { path, system, code }| {
            if system != Some(RESOURCE_TYPES_SYSTEM) {
                return Err(ParseConsentError::UnknownCodeSystem {
                    field: join(&path, "system"),
                    expected: RESOURCE_TYPES_SYSTEM,
                });
            }
            let code = code.ok_or_else(|| ParseConsentError::MissingField {
                field: join(&path, "code"),
            })?;
            if !is_resource_type(code) {
                return Err(ParseConsentError::InvalidCode {
                    field: join(&path, "code"),
                    expected: "a resource type matching [A-Z][A-Za-z]{1,63}",
                });
            }
            Ok(code.to_owned())
        })
        .collect()
}

fn parse_effect(object: &Map<String, Value>, prefix: &str) -> Result<Option<Effect>> {
    match opt_str(object, "type", prefix)? {
        None => Ok(None),
        Some("permit") => Ok(Some(Effect::Permit)),
        Some("deny") => Ok(Some(Effect::Deny)),
        Some(_) => Err(ParseConsentError::UnknownProvisionType {
            field: join(prefix, "type"),
        }),
    }
}

/// Reads one provision. `root_effect` is the resolved base decision for the
/// root (depth 0); nested provisions must state their own type.
fn parse_provision(
    value: &Value,
    prefix: &str,
    depth: usize,
    root_effect: Option<Effect>,
) -> Result<Provision> {
    if depth > MAX_PROVISION_DEPTH {
        return Err(ParseConsentError::TooDeep {
            field: prefix.to_owned(),
        });
    }
    let object = as_object(value, prefix)?;
    for name in object.keys() {
        if UNSUPPORTED_PROVISION_MEMBERS.contains(&name.as_str()) {
            return Err(ParseConsentError::UnsupportedElement {
                field: join(prefix, name),
            });
        }
        // `_type` and the like hold a primitive's id/extensions only.
        if !PROVISION_MEMBERS.contains(&name.as_str()) && !name.starts_with('_') {
            let shown = if is_member_name(name) {
                name
            } else {
                "<member>"
            };
            return Err(ParseConsentError::UnknownElement {
                field: join(prefix, shown),
            });
        }
    }
    let effect = match (root_effect, parse_effect(object, prefix)?) {
        (Some(root), _) => root,
        (None, Some(effect)) => effect,
        (None, None) => {
            return Err(ParseConsentError::NestedTypeMissing {
                field: join(prefix, "type"),
            })
        }
    };
    let period = match object.get("period") {
        None => Period::ALWAYS,
        Some(period) => parse_period(period, &join(prefix, "period"))?,
    };
    let actor_base = join(prefix, "actor");
    let actors = opt_array(object, "actor", prefix)?
        .iter()
        .enumerate()
        .map(|(i, actor)| parse_actor(actor, &index(&actor_base, i)))
        .collect::<Result<Vec<_>>>()?;
    let nested_base = join(prefix, "provision");
    let provisions = opt_array(object, "provision", prefix)?
        .iter()
        .enumerate()
        .map(|(i, nested)| parse_provision(nested, &index(&nested_base, i), depth + 1, None))
        .collect::<Result<Vec<_>>>()?;
    Ok(Provision {
        effect,
        period,
        actors,
        purposes: parse_purposes(object, prefix)?,
        classes: parse_classes(object, prefix)?,
        provisions,
    })
}

impl Actor {
    /// Reads one `provision.actor` element: a careledger [`Grantee`] when its
    /// reference is an identifier in [`NODE_SYSTEM`] or [`NETWORK_SYSTEM`],
    /// otherwise [`Actor::Other`], kept verbatim and never matching.
    pub fn from_fhir(value: &Value) -> std::result::Result<Actor, ParseConsentError> {
        parse_actor(value, "actor")
    }
}

impl Consent {
    /// Reads a FHIR R4 Consent resource.
    ///
    /// The root provision's effect (the consent's base decision) is the root
    /// `provision.type` if present, else `policyRule` `OPTIN`/`OPTINR`
    /// (permit) or `OPTOUT`/`OPTOUTE` (deny) in v3-ActCode, else deny; the
    /// two must not contradict each other. A consent without `provision` has
    /// a root that covers every request. See the module docs for the rules.
    pub fn from_fhir(value: &Value) -> std::result::Result<Consent, ParseConsentError> {
        let root = as_object(value, "(root)")?;
        if req_str(root, "resourceType", "")? != "Consent" {
            return Err(ParseConsentError::NotAConsent);
        }
        for modifier in ["modifierExtension", "implicitRules"] {
            if root.contains_key(modifier) {
                return Err(ParseConsentError::UnsupportedElement {
                    field: modifier.to_owned(),
                });
            }
        }
        let id = req_str(root, "id", "")?;
        if !is_fhir_id(id) {
            return Err(ParseConsentError::InvalidId {
                field: "id".to_owned(),
            });
        }
        let status = ConsentStatus::from_code(req_str(root, "status", "")?).ok_or(
            ParseConsentError::UnknownStatus {
                field: "status".to_owned(),
            },
        )?;
        let scope = parse_scope(root)?;
        let patient = root.get("patient").ok_or(ParseConsentError::MissingField {
            field: "patient".to_owned(),
        })?;
        let patient_id = patient_id(req_str(
            as_object(patient, "patient")?,
            "reference",
            "patient",
        )?)
        .ok_or(ParseConsentError::InvalidPatientReference {
            field: "patient.reference".to_owned(),
        })?
        .to_owned();
        let date_time_ms = match opt_str(root, "dateTime", "")? {
            None => None,
            Some(text) => Some(time::parse(text, Bound::Start).ok_or(
                ParseConsentError::InvalidDateTime {
                    field: "dateTime".to_owned(),
                },
            )?),
        };
        let recorded_on_behalf_by = parse_mark(root)?;
        let policy_effect = parse_policy_rule(root)?;
        let provision = match root.get("provision") {
            None => Provision {
                effect: policy_effect.unwrap_or(Effect::Deny),
                ..Provision::permit()
            },
            Some(provision) => {
                let stated = parse_effect(as_object(provision, "provision")?, "provision")?;
                let base = match (stated, policy_effect) {
                    (Some(stated), Some(policy)) if stated != policy => {
                        return Err(ParseConsentError::ConflictingBaseDecision {
                            field: "provision.type".to_owned(),
                        })
                    }
                    (Some(effect), _) | (None, Some(effect)) => effect,
                    (None, None) => Effect::Deny,
                };
                parse_provision(provision, "provision", 0, Some(base))?
            }
        };
        Ok(Consent {
            id: id.to_owned(),
            patient_id,
            status,
            scope,
            date_time_ms,
            recorded_on_behalf_by,
            provision,
        })
    }

    /// Reads a FHIR R4 Consent from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Consent, ParseConsentError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|err| ParseConsentError::NotJson {
                line: err.line(),
                column: err.column(),
            })?;
        Consent::from_fhir(&value)
    }

    /// The consent as canonical FHIR R4 JSON.
    ///
    /// Members come in a fixed order. The base decision is written as
    /// `policyRule` `OPTIN`/`OPTOUT` and the root provision has no `type`,
    /// as R4 defines; nested provisions always state theirs. `scope`,
    /// `category` (LOINC 59284-0), `performer` (the patient) and actor
    /// `role` (IRCP, information recipient) are written so the resource
    /// meets R4's cardinalities. The recorded-on-behalf mark is the
    /// [`ON_BEHALF_EXTENSION`] extension.
    pub fn to_fhir(&self) -> Value {
        let patient = json!({ "reference": format!("Patient/{}", self.patient_id) });
        let mut out = Map::new();
        out.insert("resourceType".into(), json!("Consent"));
        out.insert("id".into(), json!(self.id));
        if let Some(recorder) = &self.recorded_on_behalf_by {
            out.insert(
                "extension".into(),
                json!([{
                    "url": ON_BEHALF_EXTENSION,
                    "valueIdentifier": { "system": NODE_SYSTEM, "value": recorder.to_hex() },
                }]),
            );
        }
        out.insert("status".into(), json!(self.status.code()));
        out.insert(
            "scope".into(),
            json!({ "coding": [{ "system": CONSENT_SCOPE_SYSTEM, "code": self.scope.code() }] }),
        );
        out.insert(
            "category".into(),
            json!([{ "coding": [{ "system": LOINC_SYSTEM, "code": CONSENT_CATEGORY_CODE }] }]),
        );
        out.insert("patient".into(), patient.clone());
        if let Some(ms) = self.date_time_ms {
            out.insert("dateTime".into(), json!(time::format(ms, Bound::Start)));
        }
        out.insert("performer".into(), json!([patient]));
        let policy = match self.provision.effect {
            Effect::Permit => "OPTIN",
            Effect::Deny => "OPTOUT",
        };
        out.insert(
            "policyRule".into(),
            json!({ "coding": [{ "system": ACT_CODE_SYSTEM, "code": policy }] }),
        );
        let root = write_provision(&self.provision, true);
        if !root.is_empty() {
            out.insert("provision".into(), Value::Object(root));
        }
        Value::Object(out)
    }

    /// [`Consent::to_fhir`] as compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_fhir().to_string()
    }
}

fn write_provision(provision: &Provision, root: bool) -> Map<String, Value> {
    let mut out = Map::new();
    if !root {
        out.insert("type".into(), json!(provision.effect.code()));
    }
    if !provision.period.is_always() {
        let mut period = Map::new();
        if let Some(start) = provision.period.start_ms {
            period.insert("start".into(), json!(time::format(start, Bound::Start)));
        }
        if let Some(end) = provision.period.end_ms {
            period.insert("end".into(), json!(time::format(end, Bound::End)));
        }
        out.insert("period".into(), Value::Object(period));
    }
    if !provision.actors.is_empty() {
        let actors = provision.actors.iter().map(write_actor).collect();
        out.insert("actor".into(), Value::Array(actors));
    }
    if !provision.purposes.is_empty() {
        let purposes = provision
            .purposes
            .iter()
            .map(|purpose| {
                let mut coding = Map::new();
                coding.insert("system".into(), json!(ACT_REASON_SYSTEM));
                coding.insert("code".into(), json!(purpose.code()));
                if let Some(display) = purpose.display() {
                    coding.insert("display".into(), json!(display));
                }
                Value::Object(coding)
            })
            .collect();
        out.insert("purpose".into(), Value::Array(purposes));
    }
    if !provision.classes.is_empty() {
        let classes = provision
            .classes
            .iter()
            .map(|class| json!({ "system": RESOURCE_TYPES_SYSTEM, "code": class }))
            .collect();
        out.insert("class".into(), Value::Array(classes));
    }
    if !provision.provisions.is_empty() {
        let nested = provision
            .provisions
            .iter()
            .map(|nested| Value::Object(write_provision(nested, false)))
            .collect();
        out.insert("provision".into(), Value::Array(nested));
    }
    out
}

fn write_actor(actor: &Actor) -> Value {
    match actor {
        Actor::Grantee(grantee) => json!({
            "role": { "coding": [{ "system": PARTICIPATION_TYPE_SYSTEM, "code": "IRCP" }] },
            "reference": { "identifier": { "system": grantee.system(), "value": grantee.value() } },
        }),
        Actor::Other(other) => other.0.clone(),
    }
}
