//! `careledger audit`: what a network's ledger says about its use of
//! records: model cards, decisions (predictions), federated model updates,
//! charts cut off by consent, and federated tasks under secure aggregation
//! (budget policies, plans, round cards with the privacy budget each site's
//! dataset has spent). `--json` gives the full cards and decisions, each
//! decision with its FHIR `Provenance` form.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::analytics::dp::BudgetPolicy;
use careledger::analytics::ledger::{CardOrigin, DecisionRecord, ModelCard, UpdateFacts};
use careledger::analytics::secure_fl::{Objective, Plan, RoundCard, RoundOutcome};
use careledger::node::{AuditEntry, AuditRecord};
use serde::Serialize;
use serde_json::Value;

use crate::ai::metrics_line;
use crate::commands::predict::prediction_text;
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
    }
}

/// Audit.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let entries: Vec<Audited> = node
        .audit(&info.id)
        .context("cannot audit the network")?
        .into_iter()
        .map(audited)
        .collect();
    if context.json {
        print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        outln!(
            "{}: no model card, decision, model update, consent cut-off or federated task on the ledger",
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
