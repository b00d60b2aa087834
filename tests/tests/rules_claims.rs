//! An insurer adjudicates every claim of the in-repo Synthea HIV bundles by
//! itself, under a rule set the network endorsed, and two other members
//! confirm every outcome on their own replicas.
//!
//! Hospital A imports the ten bundles into its care network, records a
//! claims consent for each patient (purpose `CLMATTCH`, granted to the
//! claims network, for `Claim`, `Coverage`, `Condition` and `Patient`) and
//! shares only those types into the claims network it forms with insurer I
//! and auditor C. The policy is 2 of 3; I writes the rule set, I and C
//! endorse it, and from the next sync on I writes exactly one outcome per
//! claim without being asked. A and C re-check every outcome as it arrives.

use std::collections::BTreeMap;

use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
use careledger::node::{NetworkId, Node, OutcomeCheck, OutcomeStep};
use careledger::relay::MemoryRelay;
use careledger::rules::document::Decision;
use careledger::rules::governance::{Stance, Target};
use careledger_scenarios::{data, form_network, memory_node, settle, T0};

const CLAIM_TYPES: [&str; 4] = ["Claim", "Coverage", "Condition", "Patient"];

fn rule_set(insurer: &Node) -> Vec<u8> {
    let text = String::from_utf8(data("../rules/claims-adjudication.json")).unwrap();
    text.replace("INSURER", &insurer.identity().author_id().to_hex())
        .into_bytes()
}

/// The hospital's billing view of a Synthea bundle: patients, encounters,
/// conditions, immunizations and claims (every reference still resolves).
/// Observations, reports and documents are a clinical system's business
/// and would only make the test slower.
fn billing_view(bundle: &[u8]) -> Vec<u8> {
    const KEEP: [&str; 5] = ["Patient", "Encounter", "Condition", "Immunization", "Claim"];
    let mut bundle: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    let entries = bundle["entry"].as_array_mut().unwrap();
    entries.retain(|e| KEEP.contains(&e["resource"]["resourceType"].as_str().unwrap_or("")));
    serde_json::to_vec(&bundle).unwrap()
}

struct World {
    a: Node,
    i: Node,
    c: Node,
    claims: NetworkId,
    relay: MemoryRelay,
}

fn world() -> World {
    let mut a = memory_node("hospital-a.example");
    let mut i = memory_node("insurer.example");
    let mut c = memory_node("auditor.example");
    let mut care_relay = MemoryRelay::new();
    let care = form_network(&mut [&mut a], &mut care_relay, "care");
    let mut patients = Vec::new();
    for n in 0..10 {
        let file = format!("synthea-hiv-bundles/bundle_{n}.json");
        a.import_fhir(&care, &file, &billing_view(&data(&file)), T0)
            .unwrap();
    }
    for patient in a.patients(&care).unwrap() {
        patients.push(patient);
    }
    let mut relay = MemoryRelay::new();
    let claims = form_network(&mut [&mut a, &mut i, &mut c], &mut relay, "claims");
    let me = a.identity().author_id();
    for patient in &patients {
        let consent = Consent::grant(
            &format!("claims-{patient}"),
            patient,
            Grantee::Network(claims.clone()),
            vec![Purpose::Claims],
            CLAIM_TYPES.iter().map(|t| t.to_string()).collect(),
            None,
        )
        .unwrap()
        .marked_for(&ConsentSource::OnBehalf { recorder: me });
        a.record_consent(&care, &consent, T0).unwrap();
    }
    let types: Vec<String> = CLAIM_TYPES.iter().map(|t| t.to_string()).collect();
    let report = a
        .share_types_to_network(&care, &claims, Purpose::Claims, &types, T0 + 1)
        .unwrap();
    assert_eq!(report.patients_shared, 10);
    settle(
        &mut [&mut a, &mut i, &mut c],
        &mut relay,
        &claims,
        T0 + 2,
        6,
    );
    World {
        a,
        i,
        c,
        claims,
        relay,
    }
}

fn govern(w: &mut World) -> String {
    w.i.set_policy(&w.claims, 2, None, T0 + 3).unwrap();
    let (_, hash) =
        w.i.add_rule_set(&w.claims, &rule_set(&w.i), T0 + 3)
            .unwrap();
    let hash = hex::encode(hash);
    w.i.endorse(
        &w.claims,
        Target::RuleSet(hash.clone()),
        Stance::Endorse,
        T0 + 3,
    )
    .unwrap();
    settle(
        &mut [&mut w.a, &mut w.i, &mut w.c],
        &mut w.relay,
        &w.claims,
        T0 + 4,
        4,
    );
    assert!(
        w.i.rule_outcomes(&w.claims).unwrap().is_empty(),
        "one endorsement of a 2-of-3 policy activates nothing"
    );
    w.c.endorse(
        &w.claims,
        Target::RuleSet(hash.clone()),
        Stance::Endorse,
        T0 + 5,
    )
    .unwrap();
    settle(
        &mut [&mut w.a, &mut w.i, &mut w.c],
        &mut w.relay,
        &w.claims,
        T0 + 6,
        6,
    );
    hash
}

/// CPU seconds this process has used (the machine may be shared).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// One world for the three parts: importing and sharing the ten bundles is
/// most of the cost.
#[test]
fn claims_network_adjudicates_by_itself() {
    let started = std::time::Instant::now();
    let mut w = world();
    eprintln!("world: {:?} cpu {:.1}", started.elapsed(), cpu());
    let hash = govern(&mut w);
    eprintln!(
        "governed and adjudicated: {:?} cpu {:.1}",
        started.elapsed(),
        cpu()
    );
    every_claim_gets_exactly_one_outcome_and_two_members_confirm_each(&mut w, &hash);
    eprintln!("confirmed: {:?} cpu {:.1}", started.elapsed(), cpu());
    one_changed_byte_in_the_rule_inputs_or_outcome_is_named(&mut w);
    withdrawal_below_quorum_deactivates_the_rule_set(&mut w, hash);
    eprintln!("done: {:?} cpu {:.1}", started.elapsed(), cpu());
}

fn every_claim_gets_exactly_one_outcome_and_two_members_confirm_each(w: &mut World, hash: &str) {
    let outcomes = w.i.rule_outcomes(&w.claims).unwrap();
    assert_eq!(outcomes.len(), 457, "one outcome per claim");
    assert!(outcomes.iter().all(|o| o.duplicates.is_empty()));
    assert!(outcomes.iter().all(|o| o.record.rule_set.hash == hash));
    let mut counts: BTreeMap<(Decision, String), usize> = BTreeMap::new();
    for outcome in &outcomes {
        *counts
            .entry((outcome.record.outcome, outcome.record.reason.clone()))
            .or_default() += 1;
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|((d, r), n)| format!("{} {r}: {n}", d.name()))
        .collect();
    eprintln!("outcomes: {summary:#?}");
    insta::assert_debug_snapshot!("claims_outcome_counts", summary);
    // Two other members re-checked every outcome as it arrived.
    for member in [&mut w.a, &mut w.c] {
        assert!(member.flagged_authors(&w.claims).unwrap().is_empty());
        let checks = member.verify_outcomes(&w.claims).unwrap();
        assert_eq!(checks.len(), 457);
        assert!(checks.iter().all(|(_, c)| *c == OutcomeCheck::Confirmed));
        assert!(member.verify_ledger(&w.claims).unwrap().is_clean());
        assert_eq!(member.rule_outcomes(&w.claims).unwrap().len(), 457);
    }
    // Running again, or receiving everything twice, writes nothing more.
    let again = w.i.run_rules(&w.claims, T0 + 7).unwrap();
    assert_eq!(again.outcomes_written, 0);
    // Approved amounts are exact: 80% of the total, to the cent.
    for outcome in outcomes
        .iter()
        .filter(|o| o.record.outcome == Decision::Approve)
    {
        let amount = outcome.record.amount.as_deref().unwrap();
        assert!(
            amount.split('.').nth(1).is_none_or(|f| f.len() <= 2),
            "{amount}"
        );
    }
    // A ClaimResponse for each.
    let response = outcomes[0].record.to_claim_response(
        &outcomes[0].entry.to_hex(),
        &w.i.identity().author_id().to_hex(),
    );
    assert_eq!(response["resourceType"], "ClaimResponse");
    assert_eq!(
        response["request"]["reference"],
        format!("Claim/{}", outcomes[0].record.subject.id)
    );
}

fn one_changed_byte_in_the_rule_inputs_or_outcome_is_named(w: &mut World) {
    let outcomes = w.i.rule_outcomes(&w.claims).unwrap();
    let approved = outcomes
        .iter()
        .find(|o| o.record.outcome == Decision::Approve)
        .unwrap()
        .clone();
    let author = approved.author;
    // The rule: the same document with one byte changed.
    let mut changed = rule_set(&w.i);
    let at = changed.windows(4).position(|w| w == b"0.80").unwrap();
    changed[at + 2] = b'9';
    let check =
        w.c.check_outcome(&w.claims, author, &approved.record, Some(&changed))
            .unwrap();
    assert!(
        matches!(
            check,
            OutcomeCheck::Mismatch {
                step: OutcomeStep::RuleSet,
                ..
            }
        ),
        "{check:?}"
    );
    // The inputs: one byte of the input hash the outcome cites.
    let mut record = approved.record.clone();
    let mut hash = record.input_hash.into_bytes();
    hash[0] = if hash[0] == b'0' { b'1' } else { b'0' };
    record.input_hash = String::from_utf8(hash).unwrap();
    let check = w.c.check_outcome(&w.claims, author, &record, None).unwrap();
    assert!(
        matches!(
            check,
            OutcomeCheck::Mismatch {
                step: OutcomeStep::Inputs,
                ..
            }
        ),
        "{check:?}"
    );
    // The outcome: one digit of the amount.
    let mut record = approved.record.clone();
    let mut amount = record.amount.clone().unwrap().into_bytes();
    let last = amount.len() - 1;
    amount[last] = if amount[last] == b'1' { b'2' } else { b'1' };
    record.amount = Some(String::from_utf8(amount).unwrap());
    let check = w.c.check_outcome(&w.claims, author, &record, None).unwrap();
    assert!(
        matches!(
            check,
            OutcomeCheck::Mismatch {
                step: OutcomeStep::Outcome,
                ..
            }
        ),
        "{check:?}"
    );
    // An outcome by a member that is no executor.
    let check =
        w.c.check_outcome(
            &w.claims,
            w.a.identity().author_id(),
            &approved.record,
            None,
        )
        .unwrap();
    assert!(matches!(
        check,
        OutcomeCheck::Mismatch {
            step: OutcomeStep::Executor,
            ..
        }
    ));
}

fn withdrawal_below_quorum_deactivates_the_rule_set(w: &mut World, hash: String) {
    let target = Target::RuleSet(hash);
    assert!(w.i.activation(&w.claims, &target).unwrap().active);
    w.c.endorse(&w.claims, target.clone(), Stance::Withdraw, T0 + 8)
        .unwrap();
    settle(
        &mut [&mut w.a, &mut w.i, &mut w.c],
        &mut w.relay,
        &w.claims,
        T0 + 9,
        4,
    );
    for node in [&w.a, &w.i, &w.c] {
        let activation = node.activation(&w.claims, &target).unwrap();
        assert!(!activation.active);
        assert_eq!(activation.endorsements.len(), 1);
    }
    // A changed claim now gets no outcome: the rule set is inactive.
    let before = w.i.rule_outcomes(&w.claims).unwrap().len();
    let again = w.i.run_rules(&w.claims, T0 + 10).unwrap();
    assert_eq!(again.outcomes_written, 0);
    assert_eq!(w.i.rule_outcomes(&w.claims).unwrap().len(), before);
}
