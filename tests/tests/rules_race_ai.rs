//! Two executors racing, entries arriving twice, and a rule that uses an
//! active model's prediction through the decision-entry path.
//!
//! Three patients' claims (bundles 0–2 of the in-repo Synthea HIV data, 106
//! claims) are shared into a claims network of hospital A, insurer I and
//! clearing house C. The policy is 1 of 3, so I and C each activate the rule
//! set with their own endorsement, before either sees the other's: both
//! adjudicate every claim. The ledger then holds two outcomes per claim; the
//! smaller entry id is the outcome, the other a duplicate, and every one of
//! them re-checks on A. The rule's model (k-means over age and sex, trained
//! in the network for claims use) is active only once its card is endorsed
//! after a confirmed verification, and each outcome cites the decision entry
//! of the prediction it used.

use careledger::analytics::ledger::Holdout;
use careledger::analytics::{Feature, FeatureSpec, MissingPolicy, ModelKind};
use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
use careledger::node::{NetworkId, Node, OutcomeCheck, TrainRequest};
use careledger::relay::MemoryRelay;
use careledger::rules::governance::{Stance, Target};
use careledger::wire::WireMessage;
use careledger_scenarios::{data, form_network, memory_node, settle, T0};

const KEEP: [&str; 5] = ["Patient", "Encounter", "Condition", "Immunization", "Claim"];

fn billing_view(bundle: &[u8]) -> Vec<u8> {
    let mut bundle: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    let entries = bundle["entry"].as_array_mut().unwrap();
    entries.retain(|e| KEEP.contains(&e["resource"]["resourceType"].as_str().unwrap_or("")));
    serde_json::to_vec(&bundle).unwrap()
}

fn rule_set(executors: &[&Node], card: &str) -> Vec<u8> {
    let executors: Vec<String> = executors
        .iter()
        .map(|n| format!("\"{}\"", n.identity().author_id().to_hex()))
        .collect();
    let text = String::from_utf8(data("../rules/claims-adjudication.json")).unwrap();
    let text = text.replace("[\"INSURER\"]", &format!("[{}]", executors.join(", ")));
    // The model's prediction pends claims of patients far from every cluster.
    text.replace(
        "\"inputs\": [\"Coverage\", \"Condition\", \"Patient\"],",
        &format!(
            "\"inputs\": [\"Coverage\", \"Condition\", \"Patient\"],\n      \"model\": {{\"card\": \"{card}\"}},"
        ),
    )
    .replacen(
        "        {\n          \"when\": \"resource.total.value > decimal('750')\",",
        "        {\n          \"when\": \"prediction.kind == 'cluster' && prediction.distance > decimal('1000')\",\n          \"outcome\": \"pend\",\n          \"reason\": \"the risk model finds the patient unlike any other\"\n        },\n        {\n          \"when\": \"resource.total.value > decimal('750')\",",
        1,
    )
    .into_bytes()
}

fn world() -> (Node, Node, Node, NetworkId, MemoryRelay) {
    let mut a = memory_node("hospital-a.example");
    let mut i = memory_node("insurer.example");
    let mut c = memory_node("clearing.example");
    let mut care_relay = MemoryRelay::new();
    let care = form_network(&mut [&mut a], &mut care_relay, "care");
    for n in 0..3 {
        let file = format!("synthea-hiv-bundles/bundle_{n}.json");
        a.import_fhir(&care, &file, &billing_view(&data(&file)), T0)
            .unwrap();
    }
    let mut relay = MemoryRelay::new();
    let claims = form_network(&mut [&mut a, &mut i, &mut c], &mut relay, "claims");
    let me = a.identity().author_id();
    for patient in a.patients(&care).unwrap() {
        let consent = Consent::grant(
            &format!("claims-{patient}"),
            &patient,
            Grantee::Network(claims.clone()),
            vec![Purpose::Claims],
            ["Claim", "Condition", "Patient"]
                .iter()
                .map(|t| t.to_string())
                .collect(),
            None,
        )
        .unwrap()
        .marked_for(&ConsentSource::OnBehalf { recorder: me });
        a.record_consent(&care, &consent, T0).unwrap();
    }
    let types = ["Claim", "Condition", "Patient"].map(String::from);
    a.share_types_to_network(&care, &claims, Purpose::Claims, &types, T0 + 1)
        .unwrap();
    settle(
        &mut [&mut a, &mut i, &mut c],
        &mut relay,
        &claims,
        T0 + 2,
        6,
    );
    (a, i, c, claims, relay)
}

#[test]
fn racing_executors_duplicates_and_a_model_in_the_loop() {
    let (mut a, mut i, mut c, claims, mut relay) = world();
    // The model: k-means over age and sex, for claims use.
    let spec = FeatureSpec::new(
        vec![
            Feature::AgeAt {
                date: "2025-01-01".into(),
            },
            Feature::Sex,
        ],
        None,
        MissingPolicy::ImputeMean,
    );
    let mut request = TrainRequest::new(spec, ModelKind::k_means(2));
    request.purpose = Purpose::Claims;
    request.holdout = Holdout::Fraction(0.0);
    let card = i
        .train_model(&claims, &request, T0 + 3, &mut |_| {})
        .unwrap();
    let card_hex = card.entry.to_hex();
    i.set_policy(&claims, 1, None, T0 + 3).unwrap();
    let (_, hash) = i
        .add_rule_set(&claims, &rule_set(&[&i, &c], &card_hex), T0 + 3)
        .unwrap();
    let hash = hex::encode(hash);
    settle(
        &mut [&mut a, &mut i, &mut c],
        &mut relay,
        &claims,
        T0 + 4,
        4,
    );
    // The rule set is not active yet: no endorsement.
    assert!(i.rule_outcomes(&claims).unwrap().is_empty());
    // The model card: endorsed by C after its own verification confirmed it.
    c.endorse(
        &claims,
        Target::ModelCard(card_hex.clone()),
        Stance::Endorse,
        T0 + 5,
    )
    .unwrap();
    settle(
        &mut [&mut a, &mut i, &mut c],
        &mut relay,
        &claims,
        T0 + 5,
        4,
    );
    // I and C activate the rule set at once, each before seeing the other.
    i.endorse(
        &claims,
        Target::RuleSet(hash.clone()),
        Stance::Endorse,
        T0 + 6,
    )
    .unwrap();
    c.endorse(
        &claims,
        Target::RuleSet(hash.clone()),
        Stance::Endorse,
        T0 + 6,
    )
    .unwrap();
    let from_i = i.rule_outcomes(&claims).unwrap();
    let from_c = c.rule_outcomes(&claims).unwrap();
    assert_eq!(from_i.len(), 106);
    assert_eq!(from_c.len(), 106);
    settle(
        &mut [&mut a, &mut i, &mut c],
        &mut relay,
        &claims,
        T0 + 7,
        6,
    );
    for node in [&a, &i, &c] {
        let outcomes = node.rule_outcomes(&claims).unwrap();
        assert_eq!(outcomes.len(), 106, "exactly one outcome per claim version");
        assert!(outcomes.iter().all(|o| o.duplicates.len() == 1));
        assert!(outcomes.iter().all(|o| o.record.decision_entry.is_some()));
        assert!(outcomes
            .iter()
            .all(|o| o.record.governance.model_endorsements.len() == 1));
    }
    // Every outcome, the duplicates included, re-checks at A.
    assert!(a.flagged_authors(&claims).unwrap().is_empty());
    let checks = a.verify_outcomes(&claims).unwrap();
    assert!(
        checks.iter().all(|(_, c)| *c == OutcomeCheck::Confirmed),
        "{:?}",
        checks.iter().find(|(_, c)| *c != OutcomeCheck::Confirmed)
    );
    // The same entries again, and late: nothing changes.
    let entries: Vec<Vec<u8>> = i
        .ledger_entries(&claims)
        .unwrap()
        .into_iter()
        .map(|bytes| WireMessage::Entry(bytes).encode())
        .collect();
    let report = a.receive(&claims, &entries, None, T0 + 8).unwrap();
    assert_eq!(report.accepted, 0);
    assert_eq!(report.rules.outcomes_written, 0);
    let again = i.run_rules(&claims, T0 + 9).unwrap();
    assert_eq!(again.outcomes_written, 0);
    assert_eq!(a.rule_outcomes(&claims).unwrap().len(), 106);
    // Withdrawing the model card deactivates the rule's model: no new outcomes,
    // and a claim that changes now is left for a person (reported, not decided).
    c.endorse(
        &claims,
        Target::ModelCard(card_hex),
        Stance::Withdraw,
        T0 + 10,
    )
    .unwrap();
    assert!(a.verify_ledger(&claims).unwrap().is_clean());
}
