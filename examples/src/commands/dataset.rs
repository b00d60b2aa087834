//! `careledger dataset build`: the dataset a feature spec describes, built
//! from a network's consented records at its current checkpoint, without
//! training or writing anything. It prints counts and commitments only,
//! never a row.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::analytics::ModelKind;
use careledger::consent::Purpose;
use careledger::node::TrainRequest;
use clap::Subcommand;
use serde::Serialize;

use crate::ai::{parse_purpose, print_lines, SpecArgs};
use crate::context::{now_ms, resolve_network, Context};
use crate::output::{multi_progress, print_json, spinner};

/// `dataset` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the dataset from the consented records and print its size and
    /// commitment (no patient data).
    Build(BuildArgs),
}

/// Arguments of `dataset build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Network holding the records: hex id or unique label.
    #[arg(long)]
    network: String,
    #[command(flatten)]
    spec: SpecArgs,
    /// Purpose consent must permit: HRESCH, TREAT or CLMATTCH.
    #[arg(long, value_name = "CODE", default_value = "HRESCH", value_parser = parse_purpose)]
    purpose: Purpose,
}

#[derive(Serialize)]
struct Built {
    network: String,
    purpose: String,
    /// Rows (records that gave one).
    rows: usize,
    /// Feature column names, in order.
    columns: Vec<String>,
    /// Whether the spec has a label.
    labelled: bool,
    /// Records left out by the missing-value policy.
    dropped_missing: usize,
    /// Records left out because consent does not permit the purpose.
    excluded_by_consent: usize,
    /// Charts of the network erased (their keys shredded): in no dataset.
    erased_charts: usize,
    /// Consents relied on.
    consents_relied_on: usize,
    /// Records in the dataset commitment.
    commitment_size: u64,
    /// Dataset commitment root (Merkle root over record id and heads), hex.
    commitment_root: String,
    /// Digest of the checkpoint the records were read at, hex.
    checkpoint_digest: String,
    /// Feature spec hash, hex.
    feature_spec_hash: String,
}

/// Run a `dataset` subcommand.
pub fn run(context: &Context, command: Command) -> Result<ExitCode> {
    match command {
        Command::Build(args) => build(context, args),
    }
}

fn build(context: &Context, args: BuildArgs) -> Result<ExitCode> {
    let spec = args.spec.load()?;
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    // The model kind plays no part in building a dataset.
    let mut request = TrainRequest::new(spec, ModelKind::logistic_regression());
    request.purpose = args.purpose;
    let progress = multi_progress(context.quiet || context.json);
    let bar = spinner(&progress, format!("building the dataset of {}", info.label));
    let result = node.build_dataset(&info.id, &request, now_ms());
    bar.finish_and_clear();
    let (checkpoint, dataset) = result.context("cannot build the dataset")?;
    let commitment = dataset.tree.commitment();
    let built = Built {
        network: info.id.to_hex(),
        purpose: request.purpose.code().to_owned(),
        rows: dataset.extracted.dataset.len(),
        columns: request.spec.column_names(),
        labelled: request.spec.label.is_some(),
        dropped_missing: dataset.extracted.dropped,
        excluded_by_consent: dataset.excluded_by_consent,
        erased_charts: dataset.erased_charts,
        consents_relied_on: dataset.consent_ids.len(),
        commitment_size: commitment.size,
        commitment_root: hex::encode(commitment.root),
        checkpoint_digest: hex::encode(checkpoint.digest()),
        feature_spec_hash: hex::encode(request.spec.hash()),
    };
    if context.json {
        print_json(&built)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("dataset of {} for {}", info.label, built.purpose)?;
    print_lines(&[
        ("rows", built.rows.to_string()),
        (
            "columns",
            format!(
                "{} features{}",
                built.columns.len(),
                if built.labelled { " and a label" } else { "" }
            ),
        ),
        (
            "left out",
            format!(
                "{} record(s) by consent, {} by missing values, {} erased",
                built.excluded_by_consent, built.dropped_missing, built.erased_charts
            ),
        ),
        (
            "consents",
            format!("{} relied on", built.consents_relied_on),
        ),
        (
            "commitment",
            format!(
                "{} records, root {}",
                built.commitment_size, built.commitment_root
            ),
        ),
        ("checkpoint", built.checkpoint_digest.clone()),
        ("spec hash", built.feature_spec_hash.clone()),
    ])?;
    Ok(ExitCode::SUCCESS)
}
