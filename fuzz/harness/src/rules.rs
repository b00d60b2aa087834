//! Rule documents and CEL source. Input: one mode byte, then the payload.
//! Mode byte even: the payload is a rule set document; if it parses, every
//! rule is applied to a fixed claim. Mode byte odd: the payload is a CEL
//! expression, compiled and evaluated against the same claim.
//!
//! Properties beyond not panicking: evaluation ends within its budget (the
//! limits here are small, so a slow input is a bug, not a timeout to
//! tolerate); evaluating twice gives the same result (no clock, no
//! randomness, map iteration sorted); a rule set's hash is the SHA-256 of
//! its bytes.

use careledger::rules::document::{RuleSet, VARIABLES};
use careledger::rules::engine::{compile, Inputs, Limits};
use careledger::rules::outcome::{apply, RuleInputs};
use serde_json::json;

fn limits() -> Limits {
    Limits {
        budget: 20_000,
        max_value_len: 64 * 1024,
        max_input_values: 10_000,
        ..Limits::default()
    }
}

fn claim_inputs() -> RuleInputs {
    RuleInputs {
        resource: json!({"resourceType": "Claim", "id": "c1", "status": "active", "use": "claim",
            "insurance": [{"sequence": 1, "focal": true, "coverage": {"display": "Aetna"}}],
            "diagnosis": [{"sequence": 1, "diagnosisReference": {"reference": "Condition/k1"}}],
            "item": [{"sequence": 1, "net": {"value": 140.52, "currency": "USD"}}],
            "total": {"value": 269.68, "currency": "USD"}}),
        chart: serde_json::from_value(json!({
            "Condition": [{"resourceType": "Condition", "id": "k1",
                "code": {"coding": [{"system": "http://snomed.info/sct", "display": "Tuberculosis"}]}}],
            "Coverage": [{"resourceType": "Coverage", "id": "v1", "status": "active"}],
            "Patient": [], "m": {"b": 1, "a": 2}}))
        .unwrap_or_default(),
        patient: json!({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}),
        trigger: json!({"entry": "00", "time_ms": 1_764_000_000_000u64, "time": "2025-11-24T16:00:00Z"}),
        prediction: Some(json!({"kind": "class", "class": 1, "probability": 0.75})),
    }
}

/// Run one input.
pub fn fuzz(data: &[u8]) {
    let Some((mode, payload)) = data.split_first() else {
        return;
    };
    let limits = limits();
    let inputs = claim_inputs();
    if mode % 2 == 0 {
        let Ok(set) = RuleSet::parse(payload, &limits) else {
            return;
        };
        assert_eq!(set.hash, <[u8; 32]>::from(sha2::Sha256::digest(payload)));
        for rule in &set.rules {
            let first = apply(rule, &inputs, &limits);
            assert_eq!(
                first,
                apply(rule, &inputs, &limits),
                "rule evaluation is not deterministic"
            );
        }
        return;
    }
    let Ok(source) = std::str::from_utf8(payload) else {
        return;
    };
    let Ok(expr) = compile(source, VARIABLES, &limits) else {
        return;
    };
    let Ok(bound) = careledger::rules::outcome::bind(&inputs, &limits) else {
        return;
    };
    let first = expr.evaluate(&bound, &limits);
    assert_eq!(
        first,
        expr.evaluate(&bound, &limits),
        "evaluation is not deterministic"
    );
    let _ = Inputs::new();
}

use sha2::Digest;

/// Seeds: the example rule set, and expressions from plain to hostile.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let rule_set = include_str!("../../../examples/data/rules/claims-adjudication.json")
        .replace("INSURER", &"ab".repeat(32));
    let mut out = vec![(
        "rule-set".to_owned(),
        [&[0u8][..], rule_set.as_bytes()].concat(),
    )];
    let expressions = [
        "(resource.total.value * decimal('0.80')).round(2)",
        "resource.insurance.exists(i, i.focal && i.coverage.display != 'NO_INSURANCE')",
        "has(resource.diagnosis) && resource.diagnosis.exists(d, chart.Condition.exists(c, 'Condition/' + c.id == d.diagnosisReference.reference))",
        "chart.m.map(k, k) == ['a', 'b']",
        "[1, 2, 3].map(x, [1, 2, 3].map(y, x * y)).size()",
        "prediction.probability > 0.5 ? decimal('1') : decimal('0')",
        "'a' + 'b' + 'c'",
        "[[['a'].map(x, x + x + x + x)[0]].map(y, y + y + y + y)[0]].map(z, z + z)",
        "1 / 0",
        "decimal('1e3') - decimal('0.001')",
        "resource.id.matches('^c[0-9]+$')",
        "type(resource.total.value) == decimal",
    ];
    for (i, source) in expressions.iter().enumerate() {
        out.push((
            format!("expr-{i:02}"),
            [&[1u8][..], source.as_bytes()].concat(),
        ));
    }
    out
}
