//! `careledger fl status | verify-round | budget`: what the study's
//! federated tasks did, re-checked from this node's own ledger.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::analytics::secure_fl::{RoundOutcome, SiteBudget};
use careledger::entry::EntryId;
use careledger::node::{NetworkId, Node, RoundVerification};
use comfy_table::Table;
use serde::Serialize;

use crate::context::{resolve_network, Context};
use crate::output::{align_right, print_json, short, table};

/// Arguments of `fl status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
}

/// Arguments of `fl verify-round`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
    /// One round card (entry id or prefix).
    #[arg(
        long,
        value_name = "CARD",
        conflicts_with = "task",
        required_unless_present = "task"
    )]
    card: Option<String>,
    /// Every card of a task (task id or prefix).
    #[arg(long, value_name = "TASK")]
    task: Option<String>,
}

/// Arguments of `fl budget`.
#[derive(Debug, clap::Args)]
pub struct BudgetArgs {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
}

/// A round card named by its entry id or a unique prefix (≥ 4 hex digits).
pub fn resolve_round_card(node: &mut Node, study: &NetworkId, text: &str) -> Result<EntryId> {
    let wanted = text.trim().to_ascii_lowercase();
    if wanted.len() < 4 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("a round card is named by its entry id (at least 4 hex digits); see `careledger fl status`");
    }
    let found: Vec<EntryId> = node
        .fl_round_cards(study)?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.to_hex().starts_with(&wanted))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no round card `{wanted}` in this network (sync first if it was just written)"),
        many => bail!(
            "{} round cards start with `{wanted}`; give more hex digits",
            many.len()
        ),
    }
}

/// A table of site budgets.
pub fn budget_rows(budgets: &[SiteBudget]) -> Table {
    let mut t = table(["site", "ε", "δ", "DP rounds", "non-private releases"]);
    for b in budgets {
        t.add_row([
            b.name.clone(),
            format!("{:.3}", b.epsilon),
            format!("{:e}", b.delta),
            b.compositions
                .iter()
                .map(|c| c.steps)
                .sum::<u64>()
                .to_string(),
            b.non_private_rounds.to_string(),
        ]);
    }
    align_right(&mut t, &[1, 3, 4]);
    t
}

/// List the tasks.
pub fn status(context: &Context, args: StatusArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let study = resolve_network(&mut node, &args.study)?;
    let tasks = node.fl_tasks(&study.id)?;
    if context.json {
        print_json(&tasks)?;
        return Ok(ExitCode::SUCCESS);
    }
    if tasks.is_empty() {
        outln!("{} has no federated task", study.label)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table([
        "task",
        "objective",
        "DP",
        "sites",
        "coordinator",
        "rounds",
        "state",
    ]);
    for task in &tasks {
        let state = match (&task.outcome, task.last_card_round) {
            (Some(RoundOutcome::Completed), _) => "completed".to_owned(),
            (Some(RoundOutcome::Aborted { reason }), _) => format!("aborted: {reason}"),
            (None, None) => "setting up".to_owned(),
            (None, Some(0)) => "set up".to_owned(),
            (None, Some(r)) => format!("round {r} done"),
        };
        t.add_row([
            short(&task.task, 12),
            task.objective.to_owned(),
            if task.private { "yes" } else { "no" }.to_owned(),
            task.participants.join(", "),
            task.coordinator.clone(),
            format!("{}/{}", task.last_card_round.unwrap_or(0), task.rounds),
            state,
        ]);
    }
    outln!("{t}")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Verified {
    card: String,
    task: String,
    round: u32,
    verification: RoundVerification,
}

/// Verify one card or every card of a task.
pub fn verify(context: &Context, args: VerifyArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let study = resolve_network(&mut node, &args.study)?;
    let cards: Vec<EntryId> = match (&args.card, &args.task) {
        (Some(card), _) => vec![resolve_round_card(&mut node, &study.id, card)?],
        (None, Some(task)) => {
            let wanted = task.trim().to_ascii_lowercase();
            let cards: Vec<EntryId> = node
                .fl_round_cards(&study.id)?
                .into_iter()
                .filter(|(_, c)| c.task.starts_with(&wanted))
                .map(|(id, _)| id)
                .collect();
            if cards.is_empty() {
                bail!("no round card of a task `{wanted}` in {}", study.label);
            }
            cards
        }
        (None, None) => bail!("give --card or --task"),
    };
    let mut results = Vec::with_capacity(cards.len());
    for id in cards {
        let (card, _) = node.fl_round_card(&study.id, &id)?;
        let verification = node
            .fl_verify_round(&study.id, &id)
            .with_context(|| format!("cannot verify round card {}", id.to_hex()))?;
        results.push(Verified {
            card: id.to_hex(),
            task: card.task,
            round: card.round,
            verification,
        });
    }
    let all = results.iter().all(|r| r.verification.confirmed);
    if context.json {
        print_json(&results)?;
    } else {
        let mut t = table(["round", "card", "result", "steps passed"]);
        for r in &results {
            let v = &r.verification;
            let result = match (v.mismatch, &v.site, &v.detail) {
                (None, _, _) => "confirmed".to_owned(),
                (Some(step), site, detail) => format!(
                    "MISMATCH at {}{}: {}",
                    step.name(),
                    site.as_ref().map(|s| format!(" ({s})")).unwrap_or_default(),
                    detail.clone().unwrap_or_default()
                ),
            };
            t.add_row([
                r.round.to_string(),
                short(&r.card, 12),
                result,
                v.passed.len().to_string(),
            ]);
        }
        align_right(&mut t, &[0, 3]);
        outln!("{t}")?;
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Show every site's spent budget.
pub fn budget(context: &Context, args: BudgetArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let study = resolve_network(&mut node, &args.study)?;
    let budgets = node.fl_budget(&study.id)?;
    let policy = node.fl_policy(&study.id)?;
    if context.json {
        print_json(
            &serde_json::json!({ "study": study.id.to_hex(), "policy": policy, "sites": budgets }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    match policy {
        Some(p) => outln!(
            "{}: budget ε ≤ {} per dataset at δ = {:e}; non-private tasks {}",
            study.label,
            p.max_epsilon,
            p.delta,
            if p.allow_non_private {
                "allowed"
            } else {
                "refused"
            }
        )?,
        None => outln!("{}: no budget policy", study.label)?,
    }
    if budgets.is_empty() {
        outln!("no site has spent anything")?;
    } else {
        outln!("{}", budget_rows(&budgets))?;
        outln!("unfinished tasks count with all their rounds (reserved)")?;
    }
    Ok(ExitCode::SUCCESS)
}
