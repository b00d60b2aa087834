//! The walk: one resource's JSON against the R4 tables.

use std::borrow::Cow;

use super::definitions::{definitions, Definitions, Element, ElementType, JsonKind, NodeId};
use super::json::{self, Json};

/// Which rule a value breaks. Names of datatypes and value sets are schema,
/// never data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// The member is not an element of its type in R4.
    UnknownElement,
    /// A required element (minimum cardinality 1) is absent.
    Missing,
    /// The JSON shape is wrong: the rule's JSON type is expected.
    Shape(&'static str),
    /// The value does not match the primitive datatype.
    Primitive(&'static str),
    /// The code is not in the required value set.
    NotInValueSet(&'static str),
    /// Two types given for one choice element (`valueQuantity` and `valueString`).
    ChoiceConflict,
    /// An empty object, array or string, or a `null` where a value belongs.
    Empty,
    /// `resourceType` names no concrete R4 resource.
    UnknownResourceType,
    /// The R4 tables could not be read (a build defect).
    Tables,
}

/// One problem: the rule, where it is, and where its value starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// JSON path from the resource root (`name[0].given[1]`).
    pub json_path: String,
    /// FHIRPath-like element path (`Patient.name[0].given[1]`).
    pub element: String,
    /// Index of the top-level member (in the slice given) the value is in;
    /// `None` for the resource as a whole (a missing top-level element).
    pub member: Option<usize>,
    /// Byte offset of the value within that member's text.
    pub offset: usize,
}

/// Validates one resource given as top-level members `(name, JSON text)`.
///
/// `resourceType` is the caller's to check (the structural rules already
/// do). With `bundle_envelope` set, the
/// resource is a Bundle whose `entry[].resource` members are validated
/// separately and skipped here.
pub(crate) fn validate_members<'a>(
    resource_type: &'a str,
    members: &[(&'a str, &'a str)],
    bundle_envelope: bool,
    report: &mut dyn FnMut(Finding),
) {
    let defs = match definitions() {
        Ok(defs) => defs,
        Err(_) => {
            report(Finding {
                rule: Rule::Tables,
                json_path: String::new(),
                element: resource_type.to_owned(),
                member: None,
                offset: 0,
            });
            return;
        }
    };
    let Some(&node) = defs.resources.get(resource_type) else {
        let member = members.iter().position(|(name, _)| *name == "resourceType");
        report(Finding {
            rule: Rule::UnknownResourceType,
            json_path: "resourceType".to_owned(),
            element: "resourceType".to_owned(),
            member,
            offset: 0,
        });
        return;
    };
    let mut walker = Walker {
        defs,
        root: resource_type,
        path: Vec::new(),
        member: None,
        bundle_envelope,
        report,
    };
    let mut seen = Seen::new(defs, node);
    for (index, (name, text)) in members.iter().enumerate() {
        if *name == "resourceType" {
            continue;
        }
        walker.member = Some(index);
        match json::parse(text) {
            Some(value) => walker.member_value(node, &mut seen, &Cow::Borrowed(*name), &value),
            None => walker.find(Rule::Shape("value"), 0, Some(name)),
        }
    }
    walker.member = None;
    walker.missing(node, &seen, 0);
}

/// What an object held, for cardinality and choice rules.
struct Seen {
    present: Vec<bool>,
    chosen: Vec<Option<usize>>,
}

impl Seen {
    fn new(defs: &Definitions, node: NodeId) -> Self {
        let n = defs.nodes.get(node).map_or(0, |n| n.elements.len());
        Seen {
            present: vec![false; n],
            chosen: vec![None; n],
        }
    }
}

/// One step of the path: the JSON member name, the element's name, an index.
struct Step<'a> {
    json: Cow<'a, str>,
    element: Cow<'a, str>,
    index: Option<usize>,
}

struct Walker<'d, 'r, 'a> {
    defs: &'d Definitions,
    root: &'a str,
    path: Vec<Step<'a>>,
    member: Option<usize>,
    bundle_envelope: bool,
    report: &'r mut dyn FnMut(Finding),
}

impl<'a> Walker<'_, '_, 'a> {
    /// Reports `rule` at the current path, plus the member `last` if given
    /// (a name from the input: masked unless it looks like an element name).
    fn find(&mut self, rule: Rule, offset: usize, last: Option<&str>) {
        self.find_at(rule, offset, last.map(safe_name));
    }

    /// Reports `rule` at the current path, plus `last`, a name from the tables.
    fn find_at(&mut self, rule: Rule, offset: usize, last: Option<&str>) {
        let mut json_path = String::new();
        let mut element = self.root.to_owned();
        let steps = self
            .path
            .iter()
            .map(|s| (s.json.as_ref(), s.element.as_ref(), s.index))
            .chain(last.map(|name| (name, name, None)));
        for (json, name, index) in steps {
            if !json_path.is_empty() {
                json_path.push('.');
            }
            json_path.push_str(json);
            element.push('.');
            element.push_str(name);
            if let Some(index) = index {
                let index = format!("[{index}]");
                json_path.push_str(&index);
                element.push_str(&index);
            }
        }
        (self.report)(Finding {
            rule,
            json_path,
            element,
            member: self.member,
            offset,
        });
    }

    fn set_index(&mut self, index: Option<usize>) {
        if let Some(step) = self.path.last_mut() {
            step.index = index;
        }
    }

    /// One member of an object of node `node`. The key stays a `Cow` so a
    /// borrowed member name is kept borrowed in the location path.
    #[allow(clippy::ptr_arg)]
    fn member_value(
        &mut self,
        node: NodeId,
        seen: &mut Seen,
        key: &Cow<'a, str>,
        value: &Json<'a>,
    ) {
        let defs = self.defs;
        let Some(node_def) = defs.nodes.get(node) else {
            return;
        };
        let Some((index, ty, companion)) = node_def.lookup(key) else {
            self.find(Rule::UnknownElement, value.offset(), Some(key.as_ref()));
            return;
        };
        let Some(element) = node_def.elements.get(index) else {
            return;
        };
        if self.bundle_envelope
            && *key == "resource"
            && self.path.len() == 1
            && self.path.first().is_some_and(|s| s.json == "entry")
        {
            return;
        }
        if element.choice {
            match seen.chosen.get_mut(index) {
                Some(Some(other)) if *other != ty => {
                    self.find(Rule::ChoiceConflict, value.offset(), Some(key.as_ref()));
                }
                Some(slot) => *slot = Some(ty),
                None => {}
            }
        }
        if let Some(present) = seen.present.get_mut(index) {
            *present = true;
        }
        let element_name = if !element.choice {
            Cow::Borrowed(element.name)
        } else if companion {
            Cow::Owned(key.trim_start_matches('_').to_owned())
        } else {
            key.clone()
        };
        self.path.push(Step {
            json: key.clone(),
            element: element_name,
            index: None,
        });
        if companion {
            self.companion(element, ty, value);
        } else {
            self.element_value(element, ty, value);
        }
        self.path.pop();
    }

    /// Elements of `node` with minimum 1 that `seen` lacks.
    fn missing(&mut self, node: NodeId, seen: &Seen, offset: usize) {
        let defs = self.defs;
        let Some(node_def) = defs.nodes.get(node) else {
            return;
        };
        for (element, present) in node_def.elements.iter().zip(&seen.present) {
            if element.min > 0 && !present {
                let name = if element.choice {
                    format!("{}[x]", element.name)
                } else {
                    element.name.to_owned()
                };
                self.find_at(Rule::Missing, offset, Some(&name));
            }
        }
    }

    /// The value of an element: an array if it repeats, else one value.
    fn element_value(&mut self, element: &Element, ty: usize, value: &Json<'a>) {
        if element.repeats {
            match value {
                Json::Array(items, at) if items.is_empty() => self.find(Rule::Empty, *at, None),
                Json::Array(items, _) => {
                    for (i, item) in items.iter().enumerate() {
                        self.set_index(Some(i));
                        self.one(element, ty, item);
                    }
                    self.set_index(None);
                }
                other => self.find(Rule::Shape("array"), other.offset(), None),
            }
        } else if let Json::Array(_, at) = value {
            let expected = expected_shape(self.defs, element, ty);
            self.find(Rule::Shape(expected), *at, None);
        } else {
            self.one(element, ty, value);
        }
    }

    /// One (non-array) value of an element's type.
    fn one(&mut self, element: &Element, ty: usize, value: &Json<'a>) {
        let Some(&(type_name, kind)) = element.types.get(ty) else {
            return;
        };
        match kind {
            ElementType::Primitive(p) => self.primitive(p, element.value_set, value),
            ElementType::Complex(node) | ElementType::Backbone(node) => {
                if self.object(node, value, false) {
                    if let Some(set) = element.value_set {
                        self.coded(type_name, set, value);
                    }
                }
            }
            ElementType::Resource => self.resource(value),
        }
    }

    /// A `_name` companion: `{id, extension}`, or an array of them (with nulls) if repeating.
    fn companion(&mut self, element: &Element, ty: usize, value: &Json<'a>) {
        let node = self.defs.primitive_element;
        let primitive = matches!(element.types.get(ty), Some((_, ElementType::Primitive(_))));
        if !primitive {
            self.find(Rule::UnknownElement, value.offset(), None);
            return;
        }
        match (element.repeats, value) {
            (true, Json::Array(items, at)) if items.is_empty() => self.find(Rule::Empty, *at, None),
            (true, Json::Array(items, _)) => {
                for (i, item) in items.iter().enumerate() {
                    self.set_index(Some(i));
                    if !matches!(item, Json::Null(_)) {
                        self.object(node, item, false);
                    }
                }
                self.set_index(None);
            }
            (true, other) => self.find(Rule::Shape("array"), other.offset(), None),
            (false, other) => {
                self.object(node, other, false);
            }
        }
    }

    /// An object against `node`. Returns false if it was not a non-empty object.
    fn object(&mut self, node: NodeId, value: &Json<'a>, is_resource: bool) -> bool {
        let (members, at) = match value {
            Json::Object(members, at) if members.is_empty() => {
                self.find(Rule::Empty, *at, None);
                return false;
            }
            Json::Object(members, at) => (members, *at),
            other => {
                self.find(Rule::Shape("object"), other.offset(), None);
                return false;
            }
        };
        let mut seen = Seen::new(self.defs, node);
        for (key, member) in members {
            if is_resource && *key == "resourceType" {
                continue;
            }
            self.member_value(node, &mut seen, key, member);
        }
        self.missing(node, &seen, at);
        true
    }

    /// A resource inside a resource (`contained`, `Bundle.entry.resource`).
    fn resource(&mut self, value: &Json<'a>) {
        let (members, at) = match value {
            Json::Object(members, at) if members.is_empty() => {
                return self.find(Rule::Empty, *at, None)
            }
            Json::Object(members, at) => (members, at),
            other => return self.find(Rule::Shape("object"), other.offset(), None),
        };
        let resource_type = members
            .iter()
            .find(|(key, _)| key == "resourceType")
            .and_then(|(_, v)| v.as_str());
        let node = resource_type
            .as_deref()
            .and_then(|t| self.defs.resources.get(t).copied());
        match node {
            Some(node) => {
                self.object(node, value, true);
            }
            None if resource_type.is_none() => {
                self.find_at(Rule::Missing, *at, Some("resourceType"));
            }
            None => self.find_at(Rule::UnknownResourceType, *at, Some("resourceType")),
        }
    }

    /// A required binding on a `Coding` or `CodeableConcept`: one coding must be in the set.
    fn coded(&mut self, type_name: &str, set: usize, value: &Json<'a>) {
        let Some(value_set) = self.defs.value_sets.get(set) else {
            return;
        };
        let in_set = |coding: &Json<'_>| {
            let Json::Object(members, _) = coding else {
                return false;
            };
            let get = |name: &str| {
                members
                    .iter()
                    .find(|(key, _)| key == name)
                    .and_then(|(_, v)| v.as_str())
            };
            match (get("system"), get("code")) {
                (Some(system), Some(code)) => {
                    value_set.coded.contains(&(system.as_ref(), code.as_ref()))
                }
                _ => false,
            }
        };
        let ok = match (type_name, value) {
            ("Coding", coding) => in_set(coding),
            ("CodeableConcept", Json::Object(members, _)) => members
                .iter()
                .find(|(key, _)| key == "coding")
                .is_some_and(|(_, codings)| match codings {
                    Json::Array(items, _) => items.iter().any(in_set),
                    _ => false,
                }),
            _ => true,
        };
        if !ok {
            self.find(Rule::NotInValueSet(value_set.name), value.offset(), None);
        }
    }

    /// A primitive value: JSON shape, the specification's regex, length, binding.
    fn primitive(&mut self, p: usize, value_set: Option<usize>, value: &Json<'a>) {
        let Some(primitive) = self.defs.primitives.get(p) else {
            return;
        };
        let at = value.offset();
        let text: Cow<'_, str> = match (primitive.json, value) {
            (_, Json::Null(_)) => return self.find(Rule::Empty, at, None),
            (JsonKind::String, Json::String(..)) => match value.as_str() {
                Some(text) => text,
                None => return self.find(Rule::Shape("string"), at, None),
            },
            (JsonKind::Boolean, Json::Bool(_)) => return,
            (JsonKind::Integer | JsonKind::Decimal, Json::Number(text, _)) => Cow::Borrowed(*text),
            (JsonKind::String, _) => return self.find(Rule::Shape("string"), at, None),
            (JsonKind::Boolean, _) => return self.find(Rule::Shape("boolean"), at, None),
            (_, _) => return self.find(Rule::Shape("number"), at, None),
        };
        if text.is_empty() {
            return self.find(Rule::Empty, at, None);
        }
        let matches = primitive
            .regex
            .as_ref()
            .is_none_or(|regex| regex.is_match(text.as_bytes()));
        let fits = match primitive.json {
            JsonKind::Integer => text.parse::<i32>().is_ok(),
            JsonKind::String => primitive
                .max_len
                .is_none_or(|max| text.len() <= max || text.chars().count() <= max),
            _ => true,
        };
        if !matches || !fits || !calendar_ok(primitive.name, &text) {
            return self.find(Rule::Primitive(primitive.name), at, None);
        }
        if let Some(set) = value_set.and_then(|v| self.defs.value_sets.get(v)) {
            if !set.codes.contains(text.as_ref()) {
                self.find(Rule::NotInValueSet(set.name), at, None);
            }
        }
    }
}

/// The JSON shape one value of an element's type takes, for messages.
fn expected_shape(defs: &Definitions, element: &Element, ty: usize) -> &'static str {
    match element.types.get(ty) {
        Some((_, ElementType::Primitive(p))) => match defs.primitives.get(*p).map(|p| p.json) {
            Some(JsonKind::Boolean) => "boolean",
            Some(JsonKind::Integer | JsonKind::Decimal) => "number",
            _ => "string",
        },
        _ => "object",
    }
}

/// The day exists in its month: the regexes allow `1970-02-31`, the
/// calendar does not.
fn calendar_ok(datatype: &str, text: &str) -> bool {
    if !matches!(datatype, "date" | "dateTime" | "instant") {
        return true;
    }
    let (Some(year), Some(month), Some(day)) = (
        text.get(0..4).and_then(|y| y.parse::<u32>().ok()),
        text.get(5..7).and_then(|m| m.parse::<u32>().ok()),
        text.get(8..10).and_then(|d| d.parse::<u32>().ok()),
    ) else {
        return true; // a year or a year-month: the regex said all
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// A member name fit for a path: element names are schema, but a bad input
/// can put anything in a key, so whatever does not look like one is masked.
fn safe_name(name: &str) -> &str {
    if crate::record::fhir::is_member_name(name) {
        name
    } else {
        "<member>"
    }
}
