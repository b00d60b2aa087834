//! `careledger audit`: what a network's ledger says about its use of
//! records: model cards, decisions (predictions), federated model updates,
//! charts cut off by consent, and federated tasks under secure aggregation
//! (budget policies, plans, round cards with the privacy budget each site's
//! dataset has spent), then the rules of the network: rule sets, policies,
//! endorsements and withdrawals, and outcomes. `--json` gives the full
//! cards, decisions and outcomes, each decision with its FHIR `Provenance`
//! form and each outcome with its FHIR `ClaimResponse` form.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::analytics::dp::BudgetPolicy;
use careledger::analytics::ledger::{CardOrigin, DecisionRecord, ModelCard, UpdateFacts};
use careledger::analytics::secure_fl::{Objective, Plan, RoundCard, RoundOutcome};
use careledger::entry::{AuthorId, EntryId};
use careledger::node::{AuditEntry, AuditRecord, NetworkId, Node};
use careledger::rules::governance::{FactBody, Stance, Target};
use careledger::rules::outcome::OutcomeRecord;
use serde::Serialize;
use serde_json::Value;

use crate::ai::{metrics_line, node_name};
use crate::commands::predict::prediction_text;
use crate::commands::rules::entry_times;
use crate::context::{resolve_network, Context};
use crate::dates::format_instant_u64;
use crate::output::{print_json, short, table};

/// Arguments of `audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label.
    #[arg(long)]
    network: String,
}

/// One audited entry for scripts.
#[derive(Serialize)]
struct Audited {
    entry: String,
    author: String,
    author_name: String,
    /// The author's claimed time, as every instant is printed
    /// (`2026-12-02T20:40:01.500Z`).
    time: String,
    time_ms: u64,
    #[serde(flatten)]
    record: Record,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    ModelCard {
        card: Box<ModelCard>,
        model_bytes: usize,
    },
    Decision {
        decision: Box<DecisionRecord>,
        provenance: Value,
    },
    ModelUpdate {
        update: Box<UpdateFacts>,
    },
    KeyWithheld {
        record: String,
        reason: String,
        consent: String,
    },
    FlPolicy {
        policy: BudgetPolicy,
    },
    FlPlan {
        plan: Box<Plan>,
    },
    FlRound {
        card: Box<RoundCard>,
    },
    RuleSet {
        hash: String,
        name: String,
        version: u64,
        rules: usize,
        active: bool,
        quorum: u32,
        endorsements: usize,
    },
    Policy {
        quorum: u32,
        members: u32,
        replaces: Option<String>,
    },
    Endorsement {
        /// `rule_set`, `model_card` or `policy`.
        target_kind: &'static str,
        target: String,
        /// `endorse` or `withdraw`.
        stance: &'static str,
        /// Verification steps the endorser passed (model cards).
        verified_steps: Vec<String>,
    },
    RuleOutcome {
        record: Box<OutcomeRecord>,
        claim_response: Value,
        /// Other outcomes for the same claim version (racing executors).
        duplicates: Vec<String>,
    },
}

/// The rules entries of a network: rule sets, policies, endorsements and
/// outcomes, by time then entry id.
fn rules_audit(node: &mut Node, network: &NetworkId) -> Result<Vec<Audited>> {
    let times = entry_times(node, network)?;
    let mut out = Vec::new();
    let mut push = |node: &mut Node, entry: EntryId, author: AuthorId, record| {
        let time_ms = times.get(&entry).copied().unwrap_or(0);
        out.push(Audited {
            entry: entry.to_hex(),
            author: author.to_hex(),
            author_name: node_name(node, network, &author),
            time: format_instant_u64(time_ms),
            time_ms,
            record,
        });
    };
    for set in node
        .rule_sets(network)
        .context("cannot list the rule sets")?
    {
        let record = Record::RuleSet {
            hash: set.set.hash_hex(),
            name: set.set.doc.name.clone(),
            version: set.set.doc.version,
            rules: set.set.rules.len(),
            active: set.activation.active,
            quorum: set.activation.quorum,
            endorsements: set.activation.endorsements.len(),
        };
        push(node, set.entry, set.author, record);
    }
    for fact in node
        .governance_facts(network)
        .context("cannot list the policies and endorsements")?
    {
        let record = match fact.body {
            FactBody::Policy(policy) => Record::Policy {
                quorum: policy.quorum,
                members: policy.members,
                replaces: policy.replaces,
            },
            FactBody::Endorsement(body) => Record::Endorsement {
                target_kind: match body.target {
                    Target::RuleSet(_) => "rule_set",
                    Target::ModelCard(_) => "model_card",
                    Target::Policy(_) => "policy",
                },
                target: body.target.id().to_owned(),
                stance: match body.stance {
                    Stance::Endorse => "endorse",
                    Stance::Withdraw => "withdraw",
                },
                verified_steps: body.verified_steps,
            },
        };
        push(node, fact.entry, fact.author, record);
    }
    for stored in node
        .rule_outcomes(network)
        .context("cannot list the outcomes")?
    {
        let response = stored
            .record
            .to_claim_response(&stored.entry.to_hex(), &stored.author.to_hex());
        push(
            node,
            stored.entry,
            stored.author,
            Record::RuleOutcome {
                record: Box::new(stored.record),
                claim_response: response,
                duplicates: stored.duplicates.iter().map(|d| d.to_hex()).collect(),
            },
        );
    }
    // Outcomes written in one pass share a time: list them by claim.
    let key = |a: &Audited| match &a.record {
        Record::RuleOutcome { record, .. } => (
            a.time_ms,
            record.subject.record.clone() + "/" + &record.subject.id,
        ),
        _ => (a.time_ms, a.entry.clone()),
    };
    out.sort_by_cached_key(key);
    Ok(out)
}

fn audited(entry: AuditEntry) -> Audited {
    let id = entry.entry.to_hex();
    let author = entry.author.to_hex();
    let record = match entry.record {
        AuditRecord::ModelCard { card, model_bytes } => Record::ModelCard { card, model_bytes },
        AuditRecord::Decision(decision) => Record::Decision {
            provenance: decision.to_provenance(&id, &author),
            decision,
        },
        AuditRecord::ModelUpdate(update) => Record::ModelUpdate { update },
        AuditRecord::KeyWithheld {
            record,
            reason,
            consent,
        } => Record::KeyWithheld {
            record,
            reason,
            consent,
        },
        AuditRecord::FlPolicy(policy) => Record::FlPolicy { policy },
        AuditRecord::FlPlan(plan) => Record::FlPlan { plan },
        AuditRecord::FlRound(card) => Record::FlRound { card },
    };
    Audited {
        entry: id,
        author,
        author_name: entry.author_name,
        time: format_instant_u64(entry.time_ms),
        time_ms: entry.time_ms,
        record,
    }
}

/// `(kind, what it says)` for the table.
fn describe(record: &Record) -> (&'static str, String) {
    match record {
        Record::ModelCard { card, .. } => {
            let data = match (&card.origin, &card.dataset) {
                (CardOrigin::Federated { round, .. }, _) => format!("federated round {round}"),
                (CardOrigin::Trained, Some(dataset)) => format!("{} records", dataset.size),
                (CardOrigin::Trained, None) => "no dataset".into(),
            };
            (
                "model card",
                format!(
                    "{}, {data}, {} consents, {}",
                    card.kind.name(),
                    card.consent_ids.len(),
                    metrics_line(card.metrics.as_ref())
                ),
            )
        }
        Record::Decision { decision, .. } => (
            "decision",
            format!(
                "card {}: {} for {}, {}",
                short(&decision.model_card, 12),
                prediction_text(&decision.output),
                match &decision.subject {
                    Some(_) => "a patient's chart",
                    None => "a feature vector",
                },
                decision.purpose
            ),
        ),
        Record::ModelUpdate { update } => (
            "model update",
            format!(
                "round {} from {}: {} samples, {} consents",
                update.round,
                update.site,
                update.samples,
                update.consent_ids.len()
            ),
        ),
        Record::KeyWithheld {
            record,
            reason,
            consent,
        } => (
            "cut-off",
            if consent.is_empty() {
                format!("chart {record}: {reason}")
            } else {
                format!("chart {record}: {reason} (consent {consent})")
            },
        ),
        Record::FlPolicy { policy } => (
            "budget policy",
            format!(
                "ε ≤ {} per dataset at δ = {:e}, non-private tasks {}",
                policy.max_epsilon,
                policy.delta,
                if policy.allow_non_private {
                    "allowed"
                } else {
                    "refused"
                }
            ),
        ),
        Record::FlPlan { plan } => (
            "fl plan",
            format!(
                "task {}: {}, {} sites, {} round(s), {}",
                short(&plan.task, 8),
                match plan.objective {
                    Objective::Moments => "feature statistics",
                    Objective::LogisticRegression { .. } => "logistic regression",
                },
                plan.participants.len(),
                plan.rounds,
                match plan.dp() {
                    Some(dp) => format!("DP (σ {:.3}, q {})", dp.noise_multiplier, dp.sampling_rate),
                    None => "not DP".to_owned(),
                }
            ),
        ),
        Record::FlRound { card } => {
            let spent = card
                .budget
                .iter()
                .map(|b| format!("{} ε {:.3}", b.name, b.epsilon))
                .collect::<Vec<_>>()
                .join(", ");
            let outcome = match &card.outcome {
                RoundOutcome::Completed if card.round == 0 => "set up".to_owned(),
                RoundOutcome::Completed => format!(
                    "{} survivor(s), {} dropped",
                    card.survivors.len(),
                    card.dropped.len()
                ),
                RoundOutcome::Aborted { reason } => format!("aborted: {reason}"),
            };
            (
                "fl round",
                format!(
                    "task {} round {}: {outcome}{}{}",
                    short(&card.task, 8),
                    card.round,
                    if spent.is_empty() { String::new() } else { format!("; spent: {spent}") },
                    if card.last { "; last" } else { "" }
                ),
            )
        }

        Record::RuleSet {
            hash,
            name,
            version,
            rules,
            active,
            quorum,
            endorsements,
        } => (
            "rule set",
            format!(
                "{name} v{version} ({}), {rules} rule(s), {} ({endorsements} of {quorum} endorsements)",
                short(hash, 12),
                if *active { "active" } else { "inactive" }
            ),
        ),
        Record::Policy {
            quorum,
            members,
            replaces,
        } => (
            "policy",
            match replaces {
                Some(old) => format!(
                    "quorum {quorum} of {members} members, replaces {}",
                    short(old, 12)
                ),
                None => format!("quorum {quorum} of {members} members"),
            },
        ),
        Record::Endorsement {
            target_kind,
            target,
            stance,
            verified_steps,
        } => (
            if *stance == "withdraw" {
                "withdrawal"
            } else {
                "endorsement"
            },
            format!(
                "{} {}{}",
                target_kind.replace('_', " "),
                short(target, 12),
                if verified_steps.is_empty() {
                    String::new()
                } else {
                    format!(" (re-verified: {})", verified_steps.join(", "))
                }
            ),
        ),
        Record::RuleOutcome {
            record, duplicates, ..
        } => (
            "outcome",
            format!(
                "{} {}: {}{}, {}{}",
                record.subject.resource_type,
                short(&record.subject.id, 12),
                record.outcome.name(),
                record
                    .amount
                    .as_ref()
                    .map(|a| format!(" {a} {}", record.currency))
                    .unwrap_or_default(),
                record.reason,
                if duplicates.is_empty() {
                    String::new()
                } else {
                    format!(" ({} duplicate(s))", duplicates.len())
                }
            ),
        ),    }
}

/// Audit.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let mut entries: Vec<Audited> = node
        .audit(&info.id)
        .context("cannot audit the network")?
        .into_iter()
        .map(audited)
        .collect();
    entries.extend(rules_audit(&mut node, &info.id)?);
    if context.json {
        print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        outln!(
            "{}: no model card, decision, model update, consent cut-off, federated task or rule on the ledger",
            info.label
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table(["time", "kind", "entry", "author", "what"]);
    for entry in &entries {
        let (kind, what) = describe(&entry.record);
        table.add_row([
            entry.time.clone(),
            kind.to_owned(),
            short(&entry.entry, 12),
            entry.author_name.clone(),
            what,
        ]);
    }
    outln!("{table}")?;
    Ok(ExitCode::SUCCESS)
}
