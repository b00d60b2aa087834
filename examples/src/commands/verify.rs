//! `careledger verify`: re-verify a model card from this replica: rebuild
//! the dataset the card commits to, retrain, compare. Prints `confirmed` or
//! `mismatch at <step>: <detail>`; exit 2 on a mismatch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::analytics::ledger::ModelCard;
use careledger::node::{VerifyOutcome, VerifyStep};
use serde::Serialize;

use crate::ai::{node_name, resolve_card, resolve_node};
use crate::context::{resolve_network, Context};
use crate::output::{multi_progress, print_json, spinner};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network the card's data lives in: hex id or unique label.
    #[arg(long)]
    network: String,
    /// Model card on the ledger: entry id or a unique prefix of it.
    #[arg(long, value_name = "ENTRY", required_unless_present = "card_file", conflicts_with_all = ["card_file", "model_file", "trainer"])]
    card: Option<String>,
    /// Model card handed over as a file (`train --card-out`).
    #[arg(long, value_name = "FILE", requires_all = ["model_file", "trainer"])]
    card_file: Option<PathBuf>,
    /// The model bytes that go with --card-file (`train --model-out`).
    #[arg(long, value_name = "FILE", requires = "card_file")]
    model_file: Option<PathBuf>,
    /// Who trained it: full author id, or the name of a member of --network.
    #[arg(long, value_name = "NODE", requires = "card_file")]
    trainer: Option<String>,
}

#[derive(Serialize)]
struct Verified {
    network: String,
    /// The card's entry id, or the file it came from.
    card: String,
    trainer: String,
    /// Confirmed, exactly or within tolerance.
    confirmed: bool,
    #[serde(flatten)]
    outcome: VerifyOutcome,
    /// Steps that passed, in order.
    passed: Vec<VerifyStep>,
}

/// Verify.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let progress = multi_progress(context.quiet || context.json);
    let (what, trainer, result) = match (&args.card, &args.card_file) {
        (Some(text), _) => {
            let entry = resolve_card(&mut node, &info.id, text)?;
            let trainer = node
                .model_card(&info.id, &entry)
                .context("cannot read the model card")?
                .author;
            let bar = spinner(&progress, "rebuilding the dataset and retraining".into());
            let result = node.verify_model(&info.id, &entry);
            bar.finish_and_clear();
            (entry.to_hex(), trainer, result)
        }
        (None, Some(card_path)) => {
            let (Some(model_path), Some(trainer_text)) = (&args.model_file, &args.trainer) else {
                bail!("--card-file needs --model-file and --trainer");
            };
            let card_bytes = std::fs::read(card_path)
                .with_context(|| format!("cannot read {}", card_path.display()))?;
            let card = ModelCard::from_json(&card_bytes)
                .with_context(|| format!("{} is not a model card", card_path.display()))?;
            let model = std::fs::read(model_path)
                .with_context(|| format!("cannot read {}", model_path.display()))?;
            let trainer = resolve_node(&mut node, &info.id, trainer_text)?;
            let bar = spinner(&progress, "rebuilding the dataset and retraining".into());
            let result = node.verify_card(&info.id, &card, &model, &trainer);
            bar.finish_and_clear();
            (card_path.display().to_string(), trainer, result)
        }
        (None, None) => bail!("give --card ENTRY, or --card-file, --model-file and --trainer"),
    };
    let verification = result.context("verification could not run")?;
    let verified = Verified {
        network: info.id.to_hex(),
        card: what,
        trainer: trainer.to_hex(),
        confirmed: verification.is_confirmed(),
        outcome: verification.outcome,
        passed: verification.passed,
    };
    if context.json {
        print_json(&verified)?;
    } else {
        outln!(
            "model card {} written by {}",
            verified.card,
            node_name(&mut node, &info.id, &trainer)
        )?;
        let passed: Vec<&str> = verified.passed.iter().map(|s| s.name()).collect();
        outln!(
            "passed: {}",
            if passed.is_empty() {
                "none".to_owned()
            } else {
                passed.join(", ")
            }
        )?;
        outln!("{}", verdict(&verified.outcome))?;
    }
    Ok(if verified.confirmed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `confirmed`, `confirmed within tolerance (…)` or `mismatch at <step>: <detail>`.
pub fn verdict(outcome: &VerifyOutcome) -> String {
    match outcome {
        VerifyOutcome::Confirmed => "confirmed".into(),
        VerifyOutcome::ConfirmedWithinTolerance {
            max_relative_difference,
        } => format!(
            "confirmed within tolerance (largest relative parameter difference {max_relative_difference:.2e})"
        ),
        VerifyOutcome::Mismatch { step, detail } => {
            format!("mismatch at {}: {detail}", step.name())
        }
    }
}
