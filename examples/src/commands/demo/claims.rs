//! The demo's fourth part: rules that act by themselves.
//!
//! An insurer joins a claims network with hospital A. The hospital records
//! a claims consent (purpose `CLMATTCH`) for the Synthea HIV patient it
//! imported in step 2 and shares only the resource types the insurer's
//! rules read (`Claim`, `Coverage`, `Condition`, `Patient`). The network's
//! policy is 2 of 2; the insurer adds the example rule set
//! (`examples/data/rules/claims-adjudication.json`, CEL) and both members
//! endorse it. From the next sync on the insurer adjudicates every claim by
//! itself, one outcome (a `ClaimResponse`) each; the hospital re-checks
//! every outcome on its own replica (confirmed), and a changed byte in the
//! rule set or a forged outcome is named as a mismatch.
//!
//! One patient's claims keep the demo quick; the core's tests adjudicate
//! all 457 claims of the ten in-repo bundles.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
use careledger::node::{NetworkId, Node, OutcomeCheck, OutcomeStep};
use careledger::relay::Relay;
use careledger::rules::document::Decision;
use careledger::rules::governance::{Stance, Target};
use careledger::sync::join_from_relay;
use indicatif::MultiProgress;
use serde_json::Value;

use super::data::HIV_BUNDLE;
use super::story::Story;
use super::{institution, settle_network, HOSPITAL_A};
use crate::commands::rules::check_text;
use crate::context::now_ms;
use crate::exchange::sync_until_committed;
use crate::output::short;

const INSURER: &str = "insurer.example";
const CLAIMS: &str = "claims";
/// The resource types the rule set reads.
const CLAIM_TYPES: [&str; 4] = ["Claim", "Coverage", "Condition", "Patient"];
/// The example rule set; `INSURER` stands for the executor's author id.
const RULE_SET: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/rules/claims-adjudication.json"
));

/// What the claims chapter works with.
pub struct Claims<'a> {
    /// The workspace directory.
    pub dir: &'a Path,
    /// The relay every node uses.
    pub relay: &'a mut dyn Relay,
    /// Hospital A.
    pub hospital: &'a mut Node,
    /// The care network (holds the HIV Bundle's patient).
    pub care: &'a NetworkId,
    /// Progress bars.
    pub progress: &'a MultiProgress,
}

/// The HIV Bundle's patient id and its number of claims.
fn bundle_patient() -> Result<(String, usize)> {
    let bundle: Value =
        serde_json::from_slice(HIV_BUNDLE.bytes).context("the HIV Bundle is not JSON")?;
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .context("the HIV Bundle has no entries")?
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let patient = resources
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .and_then(|r| r["id"].as_str())
        .context("the HIV Bundle has no Patient")?;
    let claims = resources
        .iter()
        .filter(|r| r["resourceType"] == "Claim")
        .count();
    Ok((patient.to_owned(), claims))
}

/// The rule set with the insurer as its executor.
fn rule_set(insurer: &Node) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(RULE_SET).context("the rule set is not UTF-8")?;
    Ok(text
        .replace("INSURER", &insurer.identity().author_id().to_hex())
        .into_bytes())
}

/// Run the claims chapter (four steps).
pub fn run(story: &mut Story, claims: Claims<'_>) -> Result<()> {
    let Claims {
        dir,
        relay,
        hospital: a,
        care,
        progress,
    } = claims;
    let (patient, claim_count) = bundle_patient()?;

    // An insurer joins; the hospital shares the consented claims.
    story.step("An insurer joins a claims network; the hospital shares consented claims")?;
    let mut insurer = institution(dir, INSURER)?;
    let net = a
        .create_network(CLAIMS)
        .context("cannot create the claims network")?;
    story.set("claims_network", net.to_hex());
    let key_package = insurer.key_package()?;
    a.invite(&net, &key_package)
        .context("cannot invite the insurer")?;
    sync_until_committed(a, relay, &net, CLAIMS, progress)?;
    join_from_relay(&mut insurer, relay, &net, CLAIMS, now_ms())
        .context("the insurer could not join the claims network")?;
    story.line(format!(
        "{HOSPITAL_A} created network `{CLAIMS}` ({}) and invited {INSURER}",
        net.to_hex()
    ))?;
    let types: Vec<String> = CLAIM_TYPES.iter().map(|t| t.to_string()).collect();
    let consent = Consent::grant(
        "claims-consent",
        &patient,
        Grantee::Network(net.clone()),
        vec![Purpose::Claims],
        types.clone(),
        None,
    )
    .context("cannot draft the claims consent")?
    .marked_for(&ConsentSource::OnBehalf {
        recorder: a.identity().author_id(),
    });
    a.record_consent(care, &consent, now_ms())
        .context("cannot record the claims consent")?;
    let shared = a
        .share_types_to_network(care, &net, Purpose::Claims, &types, now_ms())
        .context("cannot share the claims")?;
    story.line(format!(
        "the HIV Bundle's patient consented to CLMATTCH for {}; shared {} resource(s) of those types, withheld {}",
        CLAIM_TYPES.join(", "),
        shared.resources_permitted,
        shared.resources_withheld
    ))?;
    story.line(format!(
        "(one patient's {claim_count} claims keep the demo quick; the tests adjudicate all 457 claims of the ten bundles)"
    ))?;
    settle_network(&mut [&mut *a, &mut insurer], relay, &net, CLAIMS, progress)?;
    let insurer_sees = insurer.patients(&net)?;
    story.fact("claims", claim_count);
    story.fact("resources_shared", shared.resources_permitted);
    story.check(
        "claims_shared_as_consented",
        shared.patients_shared == 1 && insurer_sees == [patient.clone()],
        format!("{INSURER} holds exactly the consenting patient's chart, of those types only"),
        || format!("{INSURER} holds {} chart(s)", insurer_sees.len()),
    )?;
    story.end_step()?;

    // Governance, then adjudication by itself.
    story.step("Both members endorse the rule set; the insurer adjudicates by itself")?;
    insurer
        .set_policy(&net, 2, None, now_ms())
        .context("cannot set the policy")?;
    let bytes = rule_set(&insurer)?;
    let (_, hash) = insurer
        .add_rule_set(&net, &bytes, now_ms())
        .context("the insurer's rule set was refused")?;
    let hash = hex::encode(hash);
    story.line(format!(
        "policy: 2 of 2 members; {INSURER} added rule set claims-auto-adjudication v1, hash {}…",
        short(&hash, 16)
    ))?;
    insurer
        .endorse(
            &net,
            Target::RuleSet(hash.clone()),
            Stance::Endorse,
            now_ms(),
        )
        .context("the insurer cannot endorse")?;
    settle_network(&mut [&mut *a, &mut insurer], relay, &net, CLAIMS, progress)?;
    let before = insurer.rule_outcomes(&net)?.len();
    story.line(format!(
        "one endorsement of two: inactive, {before} outcome(s) written"
    ))?;
    a.endorse(
        &net,
        Target::RuleSet(hash.clone()),
        Stance::Endorse,
        now_ms(),
    )
    .context("the hospital cannot endorse")?;
    // No call to the insurer: its next sync receives the endorsement, the
    // rule set becomes active and it writes the outcomes in that receive.
    settle_network(&mut [&mut *a, &mut insurer], relay, &net, CLAIMS, progress)?;
    let outcomes = insurer.rule_outcomes(&net)?;
    let mut counts: BTreeMap<(Decision, String), usize> = BTreeMap::new();
    for outcome in &outcomes {
        *counts
            .entry((outcome.record.outcome, outcome.record.reason.clone()))
            .or_default() += 1;
    }
    for ((decision, reason), n) in &counts {
        story.line(format!("{n:>3} {:<7} {reason}", decision.name()))?;
    }
    story.fact("outcomes", outcomes.len());
    story.fact(
        "outcome_counts",
        counts
            .iter()
            .map(|((d, r), n)| (format!("{} {r}", d.name()), *n))
            .collect::<BTreeMap<_, _>>(),
    );
    let one_each = before == 0
        && outcomes.len() == claim_count
        && outcomes.iter().all(|o| o.duplicates.is_empty());
    story.check(
        "claims_adjudicated_by_themselves",
        one_each,
        format!("every claim got exactly one outcome (a ClaimResponse) with no call to {INSURER}"),
        || {
            format!(
                "{} outcome(s) for {claim_count} claims ({before} before the quorum)",
                outcomes.len()
            )
        },
    )?;
    story.end_step()?;

    // The hospital re-checks every outcome.
    story.step("Hospital A re-checks every outcome on its own replica")?;
    let checks = a
        .verify_outcomes(&net)
        .context("cannot re-check the outcomes")?;
    let confirmed = checks
        .iter()
        .filter(|(_, c)| *c == OutcomeCheck::Confirmed)
        .count();
    let clean = a.verify_ledger(&net)?.is_clean();
    story.fact("confirmed", confirmed);
    story.check(
        "outcomes_confirmed",
        confirmed == outcomes.len() && checks.len() == outcomes.len() && clean,
        format!(
            "{confirmed} of {} outcomes confirmed; the ledger verifies clean",
            outcomes.len()
        ),
        || {
            checks
                .iter()
                .find(|(_, c)| *c != OutcomeCheck::Confirmed)
                .map(|(_, c)| check_text(c))
                .unwrap_or_else(|| "the ledger is not clean".into())
        },
    )?;
    story.end_step()?;

    // Tampering is named.
    story.step("A changed byte in the rule set and a forged outcome are named")?;
    let approved = outcomes
        .iter()
        .find(|o| o.record.outcome == Decision::Approve)
        .context("no approved claim to tamper with")?;
    let mut changed = bytes.clone();
    let at = changed
        .windows(4)
        .position(|w| w == b"0.80")
        .context("the rule set has no 80% rate")?;
    changed[at + 2] = b'9';
    let changed_hash = hex::encode(
        careledger::rules::document::RuleSet::parse(
            &changed,
            &careledger::rules::engine::Limits::default(),
        )?
        .hash,
    );
    let against = a.check_outcome(&net, approved.author, &approved.record, Some(&changed))?;
    story.line(format!(
        "rule set with 0.80 changed to 0.90: hash {}…, {}",
        short(&changed_hash, 16),
        check_text(&against)
    ))?;
    let mut forged = approved.record.clone();
    if let Some(amount) = &mut forged.amount {
        let last = amount.pop().unwrap_or('0');
        amount.push(if last == '1' { '2' } else { '1' });
    }
    let forged_check = a.check_outcome(&net, approved.author, &forged, None)?;
    story.line(format!(
        "outcome of claim {} with its amount changed: {}",
        short(&forged.subject.id, 8),
        check_text(&forged_check)
    ))?;
    story.check(
        "tampered_rules_and_outcomes_named",
        changed_hash != hash
            && matches!(
                against,
                OutcomeCheck::Mismatch {
                    step: OutcomeStep::RuleSet,
                    ..
                }
            )
            && matches!(
                forged_check,
                OutcomeCheck::Mismatch {
                    step: OutcomeStep::Outcome,
                    ..
                }
            ),
        "the changed rule set is another hash and a mismatch at the rule set; the forged outcome a mismatch at the outcome",
        || format!("{} / {}", check_text(&against), check_text(&forged_check)),
    )?;
    story.end_step()?;
    Ok(())
}
