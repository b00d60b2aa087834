//! The single-field corruption corpus, generated from the R4 tables.
//!
//! For every concrete resource type a minimal valid instance is built from
//! the definitions (every required element filled with a valid value).
//! Each must import. Then one field at a time is corrupted, and each
//! corruption must be refused with exactly one problem of the right kind at
//! the right element:
//!
//! * one per primitive datatype (an invalid value of the right JSON shape
//!   where the datatype allows one: `date` `1970-02-30`, `code` with two
//!   spaces, `positiveInt` 0, ...);
//! * one per required binding, for every bound element of every resource,
//!   backbone element and datatype (a code outside the value set);
//! * per resource: each required element removed, each repeating element
//!   given as a single value, each single element given as an array, an
//!   unknown element, and two types for one choice element.
//!
//! The corpus is built fresh in every run (about 2,000 cases, a few seconds
//! in a debug build).

use std::collections::{BTreeSet, HashSet, VecDeque};

use serde_json::{json, Map, Value};

use super::definitions::{definitions, Definitions, Element, ElementType, NodeId};
use crate::record::fhir::{parse_ndjson, ParseFhirError};

/// One step towards an element: the element (in its node) and its JSON name.
#[derive(Clone)]
struct Step {
    node: NodeId,
    element: usize,
    ty: usize,
}

fn element<'d>(defs: &'d Definitions, step: &Step) -> &'d Element {
    &defs.nodes[step.node].elements[step.element]
}

fn json_name(defs: &Definitions, step: &Step) -> String {
    let element = element(defs, step);
    if element.choice {
        let type_name = element.types[step.ty].0;
        let mut name = element.name.to_owned();
        name.push_str(&type_name[..1].to_ascii_uppercase());
        name.push_str(&type_name[1..]);
        name
    } else {
        element.name.to_owned()
    }
}

/// A valid value of each primitive datatype.
fn valid_primitive(name: &str) -> Value {
    match name {
        "base64Binary" => json!("AAAA"),
        "boolean" => json!(true),
        "canonical" => json!("http://example.org/fhir/c"),
        "date" => json!("2020-01-02"),
        "dateTime" | "instant" => json!("2020-01-02T03:04:05Z"),
        "decimal" => serde_json::from_str("1.50").unwrap(),
        "id" => json!("a1"),
        "integer" | "positiveInt" => json!(1),
        "unsignedInt" => json!(0),
        "oid" => json!("urn:oid:1.2.3"),
        "time" => json!("03:04:05"),
        "uri" | "url" => json!("http://example.org/fhir"),
        "uuid" => json!("urn:uuid:123e4567-e89b-12d3-a456-426614174000"),
        "xhtml" => json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"),
        _ => json!("s"),
    }
}

/// An invalid value of each primitive datatype and the problem it must give.
fn invalid_primitives() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("base64Binary", json!("abc"), "InvalidPrimitive"),
        ("boolean", json!("true"), "WrongType"),
        ("canonical", json!("http://a b"), "InvalidPrimitive"),
        ("code", json!("a  b"), "InvalidPrimitive"),
        ("date", json!("Jane Doe"), "InvalidPrimitive"),
        ("date", json!("1970-02-30"), "InvalidPrimitive"),
        (
            "dateTime",
            json!("2020-01-02T25:00:00Z"),
            "InvalidPrimitive",
        ),
        ("dateTime", json!("2020-01-02T03:04"), "InvalidPrimitive"),
        ("decimal", json!("1.50"), "WrongType"),
        ("id", json!("a b"), "InvalidPrimitive"),
        ("instant", json!("2020-01-02"), "InvalidPrimitive"),
        (
            "integer",
            serde_json::from_str("1.5").unwrap(),
            "InvalidPrimitive",
        ),
        (
            "integer",
            serde_json::from_str("2147483648").unwrap(),
            "InvalidPrimitive",
        ),
        ("markdown", json!("\u{b}"), "InvalidPrimitive"),
        ("oid", json!("1.2.3"), "InvalidPrimitive"),
        ("positiveInt", json!(0), "InvalidPrimitive"),
        ("string", json!("\u{c}"), "InvalidPrimitive"),
        ("string", json!(7), "WrongType"),
        ("time", json!("24:00:00"), "InvalidPrimitive"),
        ("unsignedInt", json!(-1), "InvalidPrimitive"),
        ("uri", json!("a b"), "InvalidPrimitive"),
        ("url", json!("http://a b"), "InvalidPrimitive"),
        ("uuid", json!("urn:uuid:XYZ"), "InvalidPrimitive"),
        ("xhtml", json!(""), "EmptyValue"),
    ]
}

/// The problem's variant name, for comparing against the corpus.
fn kind(problem: &ParseFhirError) -> &'static str {
    match problem {
        ParseFhirError::InvalidPrimitive { .. } => "InvalidPrimitive",
        ParseFhirError::WrongType { .. } => "WrongType",
        ParseFhirError::EmptyValue { .. } => "EmptyValue",
        ParseFhirError::NotInValueSet { .. } => "NotInValueSet",
        ParseFhirError::MissingField { .. } => "MissingField",
        ParseFhirError::UnknownElement { .. } => "UnknownElement",
        ParseFhirError::ChoiceConflict { .. } => "ChoiceConflict",
        _ => "other",
    }
}

/// Builds minimal valid values from the definitions.
struct Builder<'d> {
    defs: &'d Definitions,
}

impl Builder<'_> {
    /// A valid value of one type of an element.
    fn value(&self, element: &Element, ty: usize, depth: usize) -> Value {
        let (type_name, kind) = element.types[ty];
        match kind {
            ElementType::Primitive(p) => {
                let primitive = &self.defs.primitives[p];
                match element.value_set {
                    Some(set) => {
                        let codes = &self.defs.value_sets[set].codes;
                        json!(codes.iter().min().unwrap())
                    }
                    None => valid_primitive(primitive.name),
                }
            }
            ElementType::Complex(node) | ElementType::Backbone(node) => {
                match (type_name, element.value_set) {
                    ("CodeableConcept", Some(set)) => {
                        let (system, code) = self.defs.value_sets[set].coded.iter().min().unwrap();
                        json!({"coding": [{"system": system, "code": code}]})
                    }
                    _ => Value::Object(self.object(node, depth + 1)),
                }
            }
            ElementType::Resource => {
                let basic = self.defs.resources["Basic"];
                let mut object = self.object(basic, depth + 1);
                object.insert("resourceType".into(), json!("Basic"));
                Value::Object(object)
            }
        }
    }

    /// Every required element of `node`; if none, its first primitive element.
    fn object(&self, node: NodeId, depth: usize) -> Map<String, Value> {
        assert!(depth < 12, "required elements recurse");
        let mut object = Map::new();
        let elements = &self.defs.nodes[node].elements;
        for (index, element) in elements.iter().enumerate() {
            if element.min > 0 {
                let step = Step {
                    node,
                    element: index,
                    ty: 0,
                };
                let value = self.value(element, 0, depth);
                object.insert(json_name(self.defs, &step), self.wrap(element, value));
            }
        }
        if object.is_empty() {
            let first = elements
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.choice && matches!(e.types[0].1, ElementType::Primitive(_)))
                .min_by_key(|(_, e)| e.name == "id")
                .map(|(i, _)| i)
                .unwrap();
            let element = &elements[first];
            let value = self.value(element, 0, depth);
            object.insert(element.name.to_owned(), self.wrap(element, value));
        }
        object
    }

    fn wrap(&self, element: &Element, value: Value) -> Value {
        if element.repeats {
            Value::Array(vec![value])
        } else {
            value
        }
    }

    /// A minimal valid resource of `resource_type`.
    fn resource(&self, resource_type: &str) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("resourceType".into(), json!(resource_type));
        object.insert("id".into(), json!("c1"));
        for (name, value) in self.object(self.defs.resources[resource_type], 0) {
            object.entry(name).or_insert(value);
        }
        object
    }

    /// Sets the value at `path` (creating minimal parents), returning the
    /// expected FHIRPath-like element path.
    fn set(
        &self,
        root: &mut Map<String, Value>,
        resource_type: &str,
        path: &[Step],
        leaf: Value,
    ) -> String {
        let mut expected = resource_type.to_owned();
        let mut object = root;
        for (i, step) in path.iter().enumerate() {
            let element = element(self.defs, step);
            let name = json_name(self.defs, step);
            expected.push('.');
            expected.push_str(&name);
            if element.repeats {
                expected.push_str("[0]");
            }
            let last = i + 1 == path.len();
            if element.choice {
                // One type of a choice at a time.
                for other in 0..element.types.len() {
                    if other != step.ty {
                        object.remove(&json_name(
                            self.defs,
                            &Step {
                                ty: other,
                                ..step.clone()
                            },
                        ));
                    }
                }
            }
            let value = if last {
                leaf.clone()
            } else {
                // Remove other choice types of the element, then reuse or build the parent.
                self.value(element, step.ty, 0)
            };
            if last {
                object.insert(name.clone(), self.wrap(element, value));
                break;
            }
            let slot = object
                .entry(name.clone())
                .or_insert_with(|| self.wrap(element, value));
            let inner = match slot {
                Value::Array(items) => &mut items[0],
                other => other,
            };
            object = inner.as_object_mut().unwrap();
        }
        expected
    }
}

/// Element paths reachable from a resource root through backbone elements
/// and complex datatypes, breadth first (shortest first). A node already in
/// `visited` (reached from an earlier resource) is not entered again, so
/// each element of each node is reached once over all resources.
fn paths(defs: &Definitions, resource: NodeId, visited: &mut HashSet<NodeId>) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    let mut queue: VecDeque<(NodeId, Vec<Step>)> = VecDeque::new();
    if visited.insert(resource) {
        queue.push_back((resource, Vec::new()));
    }
    while let Some((node, prefix)) = queue.pop_front() {
        for (index, element) in defs.nodes[node].elements.iter().enumerate() {
            for (ty, (_, kind)) in element.types.iter().enumerate() {
                let mut path = prefix.clone();
                path.push(Step {
                    node,
                    element: index,
                    ty,
                });
                if let ElementType::Complex(child) | ElementType::Backbone(child) = kind {
                    if visited.insert(*child) {
                        queue.push_back((*child, path.clone()));
                    }
                }
                out.push(path);
            }
        }
    }
    out
}

fn check(text: &str, expect_kind: &str, expect_element: &str, failures: &mut Vec<String>) {
    match parse_ndjson("corpus.ndjson", text) {
        Ok(_) => failures.push(format!(
            "accepted: {expect_kind} at {expect_element}: {text}"
        )),
        Err(err) => {
            let first = &err.problems[0];
            // Structural rules (e.g. any member named `reference` is a string)
            // name the field only; the R4 rules also name the element.
            let location = first.location();
            let element = location.element.clone().unwrap_or_else(|| {
                let resource_type = expect_element.split('.').next().unwrap_or("");
                format!("{resource_type}.{}", location.field)
            });
            if err.total != 1 || kind(first) != expect_kind || element != expect_element {
                failures.push(format!(
                    "expected one {expect_kind} at {expect_element}, got {} problem(s), first {first}: {text}",
                    err.total
                ));
            }
        }
    }
}

fn to_line(object: &Map<String, Value>) -> String {
    serde_json::to_string(object).unwrap()
}

#[test]
fn minimal_instance_of_every_resource_type_imports() {
    let defs = definitions().unwrap();
    let builder = Builder { defs };
    let mut types: Vec<_> = defs.resources.keys().copied().collect();
    types.sort_unstable();
    let mut failures = Vec::new();
    for resource_type in &types {
        let text = to_line(&builder.resource(resource_type));
        if let Err(err) = parse_ndjson("minimal.ndjson", &text) {
            failures.push(format!("{resource_type}: {err}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(types.len(), 146);
}

#[test]
fn one_corruption_per_primitive_datatype_is_refused_at_its_element() {
    let defs = definitions().unwrap();
    let builder = Builder { defs };
    let mut types: Vec<_> = defs.resources.keys().copied().collect();
    types.sort_unstable();
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for (datatype, bad, expect) in invalid_primitives() {
        // The first resource (by name) with a non-choice, unbound element of this datatype.
        // Prefer a plain element; `oid` and `uuid` occur only in choices (Extension.value[x]).
        let found = [false, true].into_iter().find_map(|allow_choice| {
            let mut visited = HashSet::new();
            types.iter().find_map(|t| {
                paths(defs, defs.resources[t], &mut visited)
                    .into_iter()
                    .find(|path| {
                        let last = path.last().unwrap();
                        let element = element(defs, last);
                        (allow_choice || !element.choice)
                            && element.value_set.is_none()
                            && !(path.len() == 1 && element.name == "id")
                            && matches!(element.types[last.ty].1,
                            ElementType::Primitive(p) if defs.primitives[p].name == datatype)
                    })
                    .map(|path| (*t, path))
            })
        });
        let Some((resource_type, path)) = found else {
            failures.push(format!("no element of type {datatype}"));
            continue;
        };
        let mut resource = builder.resource(resource_type);
        let expected = builder.set(&mut resource, resource_type, &path, bad);
        check(&to_line(&resource), expect, &expected, &mut failures);
        covered.insert(datatype);
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(covered.len(), defs.primitives.len(), "{covered:?}");
}

#[test]
fn every_required_binding_refuses_a_code_outside_its_value_set() {
    let defs = definitions().unwrap();
    let builder = Builder { defs };
    let mut types: Vec<_> = defs.resources.keys().copied().collect();
    types.sort_unstable();
    let mut failures = Vec::new();
    let mut bound_elements = 0;
    let mut value_sets = BTreeSet::new();
    let mut visited = HashSet::new();
    for resource_type in &types {
        for path in paths(defs, defs.resources[resource_type], &mut visited) {
            let last = path.last().unwrap();
            let element = element(defs, last);
            let Some(set) = element.value_set else {
                continue;
            };
            let bad = match element.types[last.ty].0 {
                "code" => json!("not-a-code"),
                "CodeableConcept" => {
                    json!({"coding": [{"system": "http://example.org/none", "code": "x"}]})
                }
                other => panic!("required binding on {other}"),
            };
            let mut resource = builder.resource(resource_type);
            let expected = builder.set(&mut resource, resource_type, &path, bad);
            check(
                &to_line(&resource),
                "NotInValueSet",
                &expected,
                &mut failures,
            );
            bound_elements += 1;
            value_sets.insert(set);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    // Every bound element of the tables is reached, so every enumerable value set is tested.
    let total_bound: usize = defs
        .nodes
        .iter()
        .flat_map(|n| &n.elements)
        .filter(|e| e.value_set.is_some())
        .count();
    assert_eq!(bound_elements, total_bound);
    eprintln!(
        "required bindings: {bound_elements} bound elements, {} value sets",
        value_sets.len()
    );
    assert_eq!(value_sets.len(), defs.value_sets.len());
}

#[test]
fn cardinality_shape_unknown_and_choice_corruptions_are_refused() {
    let defs = definitions().unwrap();
    let builder = Builder { defs };
    let mut types: Vec<_> = defs.resources.keys().copied().collect();
    types.sort_unstable();
    let mut failures = Vec::new();
    let mut cases = 0;
    for resource_type in &types {
        let node = defs.resources[resource_type];
        let minimal = builder.resource(resource_type);
        for (index, element) in defs.nodes[node].elements.iter().enumerate() {
            if element.name == "id" {
                continue;
            }
            let step = Step {
                node,
                element: index,
                ty: 0,
            };
            let name = json_name(defs, &step);
            let at = format!("{resource_type}.{name}");
            let value = builder.value(element, 0, 0);
            if element.min > 0 {
                let mut resource = minimal.clone();
                resource.remove(&name);
                let shown = if element.choice {
                    format!("{resource_type}.{}[x]", element.name)
                } else {
                    at.clone()
                };
                check(&to_line(&resource), "MissingField", &shown, &mut failures);
                cases += 1;
            }
            let mut resource = minimal.clone();
            let wrong = if element.repeats {
                value.clone()
            } else {
                Value::Array(vec![value.clone()])
            };
            resource.insert(name.clone(), wrong);
            check(&to_line(&resource), "WrongType", &at, &mut failures);
            cases += 1;
            if element.choice && element.types.len() > 1 {
                let mut resource = minimal.clone();
                resource.insert(name.clone(), builder.wrap(element, value));
                let second = Step { ty: 1, ..step };
                let second_name = json_name(defs, &second);
                resource.insert(
                    second_name.clone(),
                    builder.wrap(element, builder.value(element, 1, 0)),
                );
                // The problem is named at whichever member comes second in key order.
                let later = std::cmp::max(name.clone(), second_name);
                check(
                    &to_line(&resource),
                    "ChoiceConflict",
                    &format!("{resource_type}.{later}"),
                    &mut failures,
                );
                cases += 1;
            }
        }
        let mut resource = minimal.clone();
        resource.insert("notAnElement".into(), json!("x"));
        check(
            &to_line(&resource),
            "UnknownElement",
            &format!("{resource_type}.notAnElement"),
            &mut failures,
        );
        cases += 1;
    }
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    assert!(cases > 1_500, "{cases}");
    eprintln!("cardinality, shape, unknown and choice corruptions: {cases}");
}
