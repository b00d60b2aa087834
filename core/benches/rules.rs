//! Rules: outcomes per second over the 457 claims of the in-repo Synthea HIV
//! bundles, and the engine's overhead against bare `cel` evaluation.
//!
//! 1. **Engine**: careledger's [`apply`] (meters, budget, type checks,
//!    outcome assembly) on each claim's inputs, against bare `cel`
//!    evaluation of the same parsed expressions on the same values, clause
//!    by clause in the same order, without meters. Both bind the inputs
//!    (FHIR JSON to CEL values) per claim. Interleaved repetitions, medians.
//! 2. **End to end**: a claims network's executor (one node, policy 1 of 1)
//!    adjudicates all 457 claims: read each chart, check consent, evaluate,
//!    write 457 sealed, signed outcome entries in one transaction. Each
//!    repetition endorses a new version of the rule set, which starts it.
//!
//! `cargo bench -p careledger --bench rules`

mod common;

use std::time::Instant;

use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
use careledger::keys::StorageKey;
use careledger::node::Node;
use careledger::rules::document::{Decision, RuleSet};
use careledger::rules::engine::{plain_context, Evaluated, Limits};
use careledger::rules::governance::{Stance, Target};
use careledger::rules::outcome::{apply, bind, RuleInputs};
use careledger::store::Store;
use common::{measure_both, ms, rate, thousands, T0};
use serde_json::{json, Value};

const BUNDLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/fhir/synthea-hiv-bundles/"
);
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/rules/claims-adjudication.json"
);
const KEEP: [&str; 5] = ["Patient", "Encounter", "Condition", "Immunization", "Claim"];

fn bundles() -> Vec<Value> {
    (0..10)
        .map(|n| {
            let bytes = std::fs::read(format!("{BUNDLES}bundle_{n}.json")).expect("bench data");
            let mut bundle: Value = serde_json::from_slice(&bytes).expect("json");
            let entries = bundle["entry"].as_array_mut().expect("entries");
            entries
                .retain(|e| KEEP.contains(&e["resource"]["resourceType"].as_str().unwrap_or("")));
            bundle
        })
        .collect()
}

/// Each claim's inputs, as the executor reads them (references resolved as
/// import resolves them).
fn claim_inputs(bundles: &[Value]) -> Vec<RuleInputs> {
    let mut out = Vec::new();
    for bundle in bundles {
        let text = serde_json::to_string(bundle).expect("json");
        let resources = careledger::record::fhir::parse_bundle("bench", &text).expect("bundle");
        let of = |kind: &str| -> Vec<Value> {
            resources
                .iter()
                .filter(|r| r.resource_type() == kind)
                .map(|r| r.to_value())
                .collect()
        };
        let patient = of("Patient").into_iter().next().unwrap_or(Value::Null);
        let mut chart = serde_json::Map::new();
        chart.insert("Coverage".into(), Value::Array(Vec::new()));
        chart.insert("Condition".into(), Value::Array(of("Condition")));
        chart.insert("Patient".into(), Value::Array(vec![patient.clone()]));
        for claim in of("Claim") {
            out.push(RuleInputs {
                resource: claim,
                chart: chart.clone(),
                patient: patient.clone(),
                trigger: json!({"entry": "00", "time_ms": T0, "time": "2025-11-24T16:00:00Z"}),
                prediction: None,
            });
        }
    }
    out
}

fn rule_set(executor: &str, version: u64) -> Vec<u8> {
    std::fs::read_to_string(RULES)
        .expect("rules")
        .replace("INSURER", executor)
        .replace("\"version\": 1", &format!("\"version\": {version}"))
        .into_bytes()
}

fn bare(
    set: &RuleSet,
    inputs: &RuleInputs,
    limits: &Limits,
    root: &cel::Context<'_, '_>,
) -> Decision {
    let bound = bind(inputs, limits).expect("bind");
    let rule = &set.rules[0];
    if let Some(applies) = &rule.applies {
        if applies.evaluate_unmetered(root, &bound) != Ok(Evaluated::Bool(true)) {
            return Decision::Pend;
        }
    }
    for (i, (when, amount)) in rule.clauses.iter().enumerate() {
        if when.evaluate_unmetered(root, &bound) == Ok(Evaluated::Bool(true)) {
            if let Some(amount) = amount {
                let _ = amount.evaluate_unmetered(root, &bound);
            }
            return rule.rule.clauses[i].outcome;
        }
    }
    if let Some(amount) = &rule.otherwise_amount {
        let _ = amount.evaluate_unmetered(root, &bound);
    }
    rule.rule.otherwise.outcome
}

fn main() {
    let limits = Limits::default();
    let bundles = bundles();
    let inputs = claim_inputs(&bundles);
    assert_eq!(inputs.len(), 457);
    let set = RuleSet::parse(&rule_set(&"ab".repeat(32), 1), &limits).expect("rule set");
    let root = plain_context();
    // Both sides decide alike.
    for claim in &inputs {
        let ours = apply(&set.rules[0], claim, &limits)
            .expect("apply")
            .expect("applies");
        assert_eq!(ours.decision, bare(&set, claim, &limits, &root));
    }
    let engine = measure_both(
        15,
        || (),
        |_| {
            for claim in &inputs {
                std::hint::black_box(apply(&set.rules[0], claim, &limits).ok());
            }
        },
        || (),
        |_| {
            for claim in &inputs {
                std::hint::black_box(bare(&set, claim, &limits, &root));
            }
        },
    );
    println!(
        "engine, 457 claims: careledger {:.2} ms ({} outcomes/s), bare cel {:.2} ms ({} /s), ratio {:.2} (goal <= 1.5)",
        ms(engine.careledger),
        thousands(rate(457, engine.careledger)),
        ms(engine.plain),
        thousands(rate(457, engine.plain)),
        engine.careledger.as_secs_f64() / engine.plain.as_secs_f64()
    );

    // End to end at one executor.
    let key = StorageKey::from_bytes([3; 32]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = Node::create(
        Store::open(&dir.path().join("insurer.sqlite"), &key).expect("store"),
        "insurer.example",
    )
    .expect("node");
    let net = node.create_network("claims").expect("network");
    let me = node.identity().author_id();
    for (n, bundle) in bundles.iter().enumerate() {
        let bytes = serde_json::to_vec(bundle).expect("json");
        node.import_fhir(&net, &format!("bundle_{n}.json"), &bytes, T0)
            .expect("import");
    }
    for patient in node.patients(&net).expect("patients") {
        let consent = Consent::grant(
            &format!("claims-{patient}"),
            &patient,
            Grantee::Network(net.clone()),
            vec![Purpose::Claims],
            vec![],
            None,
        )
        .expect("consent")
        .marked_for(&ConsentSource::OnBehalf { recorder: me });
        node.record_consent(&net, &consent, T0)
            .expect("record consent");
    }
    node.set_policy(&net, 1, None, T0).expect("policy");
    let mut times = Vec::new();
    for version in 1..=5 {
        let (_, hash) = node
            .add_rule_set(&net, &rule_set(&me.to_hex(), version), T0 + version)
            .expect("add");
        let start = Instant::now();
        node.endorse(
            &net,
            Target::RuleSet(hex::encode(hash)),
            Stance::Endorse,
            T0 + version,
        )
        .expect("endorse");
        times.push(start.elapsed());
    }
    let outcomes = node.rule_outcomes(&net).expect("outcomes").len();
    assert_eq!(outcomes, 457 * 5);
    let median = common::median(times);
    println!(
        "end to end, one executor, file store: 457 outcomes written in {:.0} ms ({} outcomes/s)",
        ms(median),
        thousands(rate(457, median))
    );
}
