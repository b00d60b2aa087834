//! `careledger train`: train a model on a network's consented records at its
//! current checkpoint and write the model card to the ledger, where every
//! member can re-verify it (`careledger verify`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::analytics::ledger::{Holdout, ModelCard};
use careledger::analytics::Metrics;
use careledger::consent::Purpose;
use careledger::node::{TrainRequest, TrainStage};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::ai::{
    parse_purpose, print_lines, write_file, CardSummary, HoldoutArgs, ModelChoice, SpecArgs,
};
use crate::context::{now_ms, resolve_network, Context};
use crate::output::{multi_progress, print_json, short, stage_bar, stage_count};
use crate::plots::{write_calibration, write_roc};

/// Clusters when `--model kmeans` is given without `--k`.
const DEFAULT_K: u32 = 3;

/// Arguments of `train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network holding the records (a study): hex id or unique label.
    #[arg(long)]
    network: String,
    #[command(flatten)]
    spec: SpecArgs,
    /// Model kind.
    #[arg(long, value_enum)]
    model: ModelChoice,
    /// Clusters, for --model kmeans [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    k: Option<u32>,
    /// Training seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    holdout: HoldoutArgs,
    /// Purpose consent must permit: HRESCH, TREAT or CLMATTCH.
    #[arg(long, value_name = "CODE", default_value = "HRESCH", value_parser = parse_purpose)]
    purpose: Purpose,
    /// Write the ROC curve of the held-out rows (.svg or .png); classifiers only.
    #[arg(long, value_name = "FILE")]
    roc: Option<PathBuf>,
    /// Write the calibration plot of the held-out rows (.svg or .png); classifiers only.
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
    /// Write the model card as JSON (for `verify --card-file`).
    #[arg(long, value_name = "FILE")]
    card_out: Option<PathBuf>,
    /// Write the model bytes (for `verify --model-file`).
    #[arg(long, value_name = "FILE")]
    model_out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Trained {
    network: String,
    trainer: String,
    card: CardSummary,
    consent_ids: Vec<String>,
    /// Files written, by what they hold.
    files: Vec<WrittenFile>,
}

#[derive(Serialize)]
struct WrittenFile {
    what: &'static str,
    path: String,
}

/// Drives the progress bar from the core's training stages.
pub fn show_stage(bar: &ProgressBar, stage: TrainStage) {
    let message = match stage {
        TrainStage::Checkpoint => "computing the checkpoint",
        TrainStage::Records { done, total } => {
            stage_count(bar, done as u64, total as u64);
            "reading records at the checkpoint"
        }
        TrainStage::Extract => "extracting features (consent applied)",
        TrainStage::Fit => "fitting",
        TrainStage::Evaluate => "evaluating on the held-out rows",
        TrainStage::Write => "writing the model card",
    };
    bar.set_message(message);
}

/// Train.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let spec = args.spec.load()?;
    let kind = match (args.model, args.k) {
        (ModelChoice::Kmeans, k) => ModelChoice::Kmeans.kind(k.unwrap_or(DEFAULT_K)),
        (_, Some(_)) => bail!("--k applies to --model kmeans only"),
        (model, None) => model.kind(DEFAULT_K),
    };
    let holdout = args.holdout.holdout(args.spec.example)?;
    let plots = args.roc.is_some() || args.calibration.is_some();
    if plots && !kind.is_classifier() {
        bail!(
            "--roc and --calibration plot a classifier's held-out rows; {} is not a classifier",
            kind.name()
        );
    }
    if plots && holdout == Holdout::Fraction(0.0) {
        bail!("--roc and --calibration need held-out rows; --holdout 0 holds none out");
    }
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let request = TrainRequest {
        seed: args.seed,
        purpose: args.purpose.clone(),
        holdout,
        ..TrainRequest::new(spec, kind)
    };
    let progress = multi_progress(context.quiet || context.json);
    let bar = stage_bar(&progress, "records");
    let result = node.train_model(&info.id, &request, now_ms(), &mut |stage| {
        show_stage(&bar, stage)
    });
    bar.finish_and_clear();
    let outcome = result.with_context(|| format!("cannot train on {}", info.label))?;
    let summary = CardSummary::new(&outcome.entry, &outcome.card);
    let written = write_outputs(&args, &outcome.card, &outcome.model.to_bytes(), &summary)
        .with_context(|| {
            format!(
                "the model card {} is on the ledger, but an output file failed",
                outcome.entry
            )
        })?;
    let trained = Trained {
        network: info.id.to_hex(),
        trainer: node.identity().author_id().to_hex(),
        card: summary,
        consent_ids: outcome.card.consent_ids.clone(),
        files: written,
    };
    if context.json {
        print_json(&trained)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "trained {} on {}; the model card is on the ledger",
        trained.card.model,
        info.label
    )?;
    print_lines(&trained.card.lines())?;
    for file in &trained.files {
        outln!("wrote {} ({})", file.path, file.what)?;
    }
    outln!(
        "run `careledger sync` to publish it; members check it with `careledger verify --network {} --card {}`",
        info.label,
        short(&trained.card.entry, 12)
    )?;
    Ok(ExitCode::SUCCESS)
}

fn write_outputs(
    args: &Args,
    card: &ModelCard,
    model: &[u8],
    summary: &CardSummary,
) -> Result<Vec<WrittenFile>> {
    let mut written = Vec::new();
    let mut note = |what: &'static str, path: &Path| {
        written.push(WrittenFile {
            what,
            path: path.display().to_string(),
        })
    };
    if let Some(path) = &args.card_out {
        write_file(path, card.to_json().as_bytes())?;
        note("model card JSON", path);
    }
    if let Some(path) = &args.model_out {
        write_file(path, model)?;
        note("model bytes", path);
    }
    if args.roc.is_some() || args.calibration.is_some() {
        let Some(Metrics::Classification(metrics)) = &card.metrics else {
            bail!("no held-out rows were evaluated, so there is nothing to plot");
        };
        let title = format!(
            "{} - model card {}",
            summary.model,
            short(&summary.entry, 12)
        );
        if let Some(path) = &args.roc {
            write_roc(path, &title, metrics)?;
            note("ROC curve", path);
        }
        if let Some(path) = &args.calibration {
            write_calibration(path, &title, metrics)?;
            note("calibration plot", path);
        }
    }
    Ok(written)
}
