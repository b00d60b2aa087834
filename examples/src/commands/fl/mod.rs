//! `careledger fl …`: federated learning.
//!
//! * One-shot averaging (`publish`, `round`): each site trains on its own
//!   consented records (which never leave its network) and publishes the
//!   parameters as a model-update entry in the study network; any member
//!   then averages a round into a model card that every member can
//!   re-verify.
//! * Tasks under secure aggregation and differential privacy (`policy`,
//!   `plan`, `site`, `coordinate`, `status`, `verify-round`, `budget`):
//!   every site's update stays masked, only the sum is recovered, rounds
//!   can be differentially private with a budget the network enforces.
//!   `sweep` shows accuracy against ε on the built-in example.

mod plan;
mod policy;
mod run;
mod status;
mod sweep;

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::analytics::ledger::{CardOrigin, DatasetRef};
use careledger::analytics::Metrics;
use careledger::node::TrainRequest;
use clap::Subcommand;
use serde::Serialize;

use crate::ai::{metrics_line, print_lines, CardSummary, HoldoutArgs, ModelChoice, SpecArgs};
use crate::context::{now_ms, resolve_network, Context};
use crate::output::{multi_progress, print_json, short, spinner};

/// `fl` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train on this site's consented records of --source and publish the
    /// parameters to --study as this site's update for a round.
    Publish(PublishArgs),
    /// Average the updates of a round (weighted FedAvg) into a model card.
    Round(RoundArgs),
    /// Show the study's privacy-budget policy, or set this node's.
    Policy(policy::Args),
    /// Plan a task under secure aggregation (as its coordinator); refused if
    /// a site's dataset would exceed the budget policy.
    Plan(plan::Args),
    /// Take part in the study's tasks as a site, until they end.
    Site(run::SiteArgs),
    /// Coordinate this node's tasks (survivors, round cards) until they end.
    Coordinate(run::CoordinateArgs),
    /// List the study's tasks.
    Status(status::StatusArgs),
    /// Re-verify round cards from this node's ledger; exit 2 on a mismatch.
    VerifyRound(status::VerifyArgs),
    /// The privacy budget each site's dataset has spent.
    Budget(status::BudgetArgs),
    /// Accuracy against ε on the built-in example, in memory; plot it.
    Sweep(sweep::Args),
}

/// Arguments of `fl publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// This site's network holding the records: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    source: String,
    /// The study network (consent must grant it the use): hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
    /// Round label.
    #[arg(long, value_name = "ROUND")]
    round: String,
    #[command(flatten)]
    spec: SpecArgs,
    /// Model kind (linear models only average: logistic or linear).
    #[arg(long, value_enum)]
    model: ModelChoice,
    /// Training seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    holdout: HoldoutArgs,
}

/// Arguments of `fl round`.
#[derive(Debug, clap::Args)]
pub struct RoundArgs {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
    /// Round label.
    #[arg(long, value_name = "ROUND")]
    round: String,
}

/// Run an `fl` subcommand.
pub fn run(context: &Context, command: Command) -> Result<ExitCode> {
    match command {
        Command::Publish(args) => publish(context, args),
        Command::Round(args) => round(context, args),
        Command::Policy(args) => policy::run(context, args),
        Command::Plan(args) => plan::run(context, args),
        Command::Site(args) => run::site(context, args),
        Command::Coordinate(args) => run::coordinate(context, args),
        Command::Status(args) => status::status(context, args),
        Command::VerifyRound(args) => status::verify(context, args),
        Command::Budget(args) => status::budget(context, args),
        Command::Sweep(args) => sweep::run(context, args),
    }
}

#[derive(Serialize)]
struct Published {
    study: String,
    update_entry: String,
    round: String,
    site: String,
    model: &'static str,
    samples: u64,
    dataset: DatasetRef,
    consents_relied_on: usize,
    local_metrics: Option<Metrics>,
    update_hash: String,
}

fn publish(context: &Context, args: PublishArgs) -> Result<ExitCode> {
    let spec = args.spec.load()?;
    let holdout = args.holdout.holdout(args.spec.example)?;
    let mut node = context.open_node()?;
    let source = resolve_network(&mut node, &args.source)?;
    let study = resolve_network(&mut node, &args.study)?;
    let request = TrainRequest {
        seed: args.seed,
        holdout,
        ..TrainRequest::new(spec, args.model.kind(3))
    };
    let progress = multi_progress(context.quiet || context.json);
    let bar = spinner(
        &progress,
        format!("training on {} for round {}", source.label, args.round),
    );
    let result = node.publish_model_update(&source.id, &study.id, &args.round, &request, now_ms());
    bar.finish_and_clear();
    let outcome = result.with_context(|| {
        format!(
            "cannot publish an update of {} to {}",
            source.label, study.label
        )
    })?;
    let facts = outcome.facts;
    let published = Published {
        study: study.id.to_hex(),
        update_entry: outcome.entry.to_hex(),
        round: facts.round,
        site: facts.site,
        model: facts.kind.name(),
        samples: facts.samples,
        dataset: facts.dataset,
        consents_relied_on: facts.consent_ids.len(),
        local_metrics: facts.local_metrics,
        update_hash: facts.update_hash,
    };
    if context.json {
        print_json(&published)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "published {}'s update for round {} to {}; the records stayed in {}",
        published.site,
        published.round,
        study.label,
        source.label
    )?;
    print_lines(&[
        ("update entry", published.update_entry.clone()),
        ("model", published.model.to_owned()),
        (
            "dataset",
            format!(
                "{} records, root {}",
                published.dataset.size, published.dataset.root
            ),
        ),
        (
            "samples",
            format!(
                "{} training rows, {} consents relied on",
                published.samples, published.consents_relied_on
            ),
        ),
        (
            "local metrics",
            metrics_line(published.local_metrics.as_ref()),
        ),
        ("update hash", published.update_hash.clone()),
    ])?;
    outln!("run `careledger sync` to publish it")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Averaged {
    study: String,
    card: CardSummary,
    /// The update entries averaged, in averaging order.
    updates: Vec<String>,
}

fn round(context: &Context, args: RoundArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let study = resolve_network(&mut node, &args.study)?;
    let outcome = node
        .federated_round(&study.id, &args.round, now_ms())
        .with_context(|| format!("cannot average round {}", args.round))?;
    let updates = match &outcome.card.origin {
        CardOrigin::Federated { updates, .. } => updates.clone(),
        CardOrigin::Trained => Vec::new(),
    };
    let averaged = Averaged {
        study: study.id.to_hex(),
        card: CardSummary::new(&outcome.entry, &outcome.card),
        updates,
    };
    if context.json {
        print_json(&averaged)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "averaged {} update(s) of round {} into a model card on {}",
        averaged.updates.len(),
        args.round,
        study.label
    )?;
    print_lines(&averaged.card.lines())?;
    outln!(
        "run `careledger sync` to publish it; members check it with `careledger verify --network {} --card {}`",
        study.label,
        short(&averaged.card.entry, 12)
    )?;
    Ok(ExitCode::SUCCESS)
}
