//! `careledger audit`: what a network's ledger says about its use of
//! records: model cards, decisions (predictions), federated model updates,
//! and charts cut off by consent. `--json` gives the full cards and
//! decisions, each decision with its FHIR `Provenance` form.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::analytics::ledger::{CardOrigin, DecisionRecord, ModelCard, UpdateFacts};
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
            "{}: no model card, decision, model update or consent cut-off on the ledger",
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
