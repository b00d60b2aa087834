//! `careledger predict`: one prediction with a model card's model, recorded
//! as a decision entry on the ledger (consent is checked for a patient's
//! chart; a feature vector is the caller's responsibility).

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::analytics::Prediction;
use careledger::consent::Purpose;
use careledger::node::PredictInput;
use serde::Serialize;

use crate::ai::{parse_purpose, resolve_card};
use crate::context::{now_ms, resolve_network, Context};
use crate::output::print_json;

/// Arguments of `predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network holding the model card: hex id or unique label.
    #[arg(long)]
    network: String,
    /// Model card: entry id or a unique prefix of it (see `careledger audit`).
    #[arg(long, value_name = "ENTRY")]
    card: String,
    #[command(flatten)]
    input: InputArgs,
    /// Purpose consent must permit: HRESCH, TREAT or CLMATTCH.
    #[arg(long, value_name = "CODE", default_value = "HRESCH", value_parser = parse_purpose)]
    purpose: Purpose,
}

/// What to predict for.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct InputArgs {
    /// A patient's chart in the network (its consent is checked).
    #[arg(long)]
    patient: Option<String>,
    /// A feature vector in the spec's column order, comma-separated.
    #[arg(
        long,
        value_name = "X1,X2,...",
        value_delimiter = ',',
        num_args = 1..,
        allow_negative_numbers = true
    )]
    features: Option<Vec<f64>>,
}

#[derive(Serialize)]
struct Predicted {
    network: String,
    decision_entry: String,
    decision: careledger::analytics::ledger::DecisionRecord,
}

/// What a prediction says, for people.
pub fn prediction_text(prediction: &Prediction) -> String {
    match prediction {
        Prediction::Class {
            class,
            positive_probability,
        } => format!("class {class} (probability of class 1: {positive_probability:.4})"),
        Prediction::Cluster { cluster, distance } => {
            format!("cluster {cluster} (distance {distance:.4} in standardised units)")
        }
        Prediction::Value { value } => format!("value {value:.6}"),
    }
}

/// Predict.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let input = match (args.input.patient, args.input.features) {
        (Some(patient), _) => PredictInput::Record(patient),
        (None, Some(features)) => {
            if features.iter().any(|x| !x.is_finite()) {
                bail!("--features must be finite numbers");
            }
            PredictInput::Features(features)
        }
        (None, None) => bail!("give --patient ID or --features X1,X2,..."),
    };
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let card = resolve_card(&mut node, &info.id, &args.card)?;
    let outcome = node
        .predict(&info.id, &card, &input, args.purpose, now_ms())
        .context("prediction refused or failed; nothing was recorded")?;
    let predicted = Predicted {
        network: info.id.to_hex(),
        decision_entry: outcome.entry.to_hex(),
        decision: outcome.decision,
    };
    if context.json {
        print_json(&predicted)?;
        return Ok(ExitCode::SUCCESS);
    }
    let decision = &predicted.decision;
    outln!("prediction      {}", prediction_text(&decision.output))?;
    outln!("decision entry  {}", predicted.decision_entry)?;
    outln!(
        "input           {}",
        match &decision.subject {
            Some(patient) => format!(
                "patient {patient}'s chart, {} consent(s) relied on for {}",
                decision.consent_ids.len(),
                decision.purpose
            ),
            None => format!(
                "a feature vector (commitment {})",
                &decision.input_commitment
            ),
        }
    )?;
    outln!("run `careledger sync` to publish the decision")?;
    Ok(ExitCode::SUCCESS)
}
