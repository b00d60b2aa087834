//! `careledger membership`: prove whether a patient's chart is in the
//! dataset of a model card, and check the proof against the card's own
//! commitment, as the patient's phone would. Included and not included both
//! exit 0; a proof that does not check against the card exits 2.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::checkpoint::dataset::Membership;
use serde::Serialize;

use crate::ai::resolve_card;
use crate::context::{resolve_network, Context};
use crate::output::{multi_progress, print_json, spinner};

/// Arguments of `membership`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network holding the model card: hex id or unique label.
    #[arg(long)]
    network: String,
    /// Model card: entry id or a unique prefix of it.
    #[arg(long, value_name = "ENTRY")]
    card: String,
    /// The patient's id (the record id).
    #[arg(long)]
    patient: String,
}

#[derive(Serialize)]
struct Proved {
    network: String,
    card: String,
    patient: String,
    /// `included`, `not_included`, or `unverified` when the proof does not
    /// check against the card.
    membership: &'static str,
    /// Included: the chart's Automerge heads the dataset read (hex).
    heads: Vec<String>,
    /// Whether the rebuilt commitment is the one the card states.
    commitment_matches_card: bool,
    /// Why the proof did not check, if it did not.
    problem: Option<String>,
    /// The proof, in its canonical encoding (hex), for checking elsewhere.
    proof: String,
}

/// Prove and check.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let entry = resolve_card(&mut node, &info.id, &args.card)?;
    let claimed = node
        .model_card(&info.id, &entry)
        .context("cannot read the model card")?
        .card
        .dataset
        .context(
            "this model card has no dataset of its own (a federated card); nothing to prove",
        )?;
    let progress = multi_progress(context.quiet || context.json);
    let bar = spinner(&progress, "rebuilding the card's dataset commitment".into());
    let result = node.prove_dataset_membership(&info.id, &entry, &args.patient);
    bar.finish_and_clear();
    let (commitment, proof) = result.context("cannot prove membership")?;
    let matches = commitment.size == claimed.size && hex::encode(commitment.root) == claimed.root;
    let checked = if matches {
        commitment
            .verify(&args.patient, &proof)
            .map_err(|e| e.to_string())
    } else {
        Err(format!(
            "this replica rebuilds a commitment of {} records, the card states {}",
            commitment.size, claimed.size
        ))
    };
    let (membership, heads, problem) = match checked {
        Ok(Membership::Included { heads }) => {
            ("included", heads.iter().map(hex::encode).collect(), None)
        }
        Ok(Membership::NotIncluded) => ("not_included", Vec::new(), None),
        Err(problem) => ("unverified", Vec::new(), Some(problem)),
    };
    let proved = Proved {
        network: info.id.to_hex(),
        card: entry.to_hex(),
        patient: args.patient,
        membership,
        heads,
        commitment_matches_card: matches,
        problem,
        proof: hex::encode(proof.encode()),
    };
    if context.json {
        print_json(&proved)?;
    } else {
        match (&proved.problem, proved.membership) {
            (Some(problem), _) => outln!(
                "the membership proof does not check against the model card: {problem}"
            )?,
            (None, "included") => outln!(
                "included: patient {}'s chart is in the dataset of model card {} (read at {} head(s)); the proof checks against the card's commitment",
                proved.patient,
                proved.card,
                proved.heads.len()
            )?,
            (None, _) => outln!(
                "not included: patient {}'s chart is not in the dataset of model card {}; the proof checks against the card's commitment",
                proved.patient,
                proved.card
            )?,
        }
    }
    Ok(if proved.problem.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
