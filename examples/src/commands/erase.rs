//! `careledger erase`: erase a patient's chart (or some of its resources) by
//! crypto-shredding, or list the charts erased in a network.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::body::EraseScope;
use serde::Serialize;

use crate::context::{now_ms, resolve_network, Context};
use crate::output::{print_json, short, table};

/// Arguments of `erase`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label.
    network: String,
    /// Patient (record) id; omit with --list.
    #[arg(required_unless_present = "list")]
    patient: Option<String>,
    /// Erase only these resources (`Type/id`, repeatable); the rest of the
    /// chart is written again under a fresh key.
    #[arg(long = "resource", value_name = "TYPE/ID")]
    resources: Vec<String>,
    /// List the charts erased in the network instead.
    #[arg(long, conflicts_with_all = ["patient", "resources"])]
    list: bool,
}

#[derive(Debug, Serialize)]
struct Erased {
    patient: String,
    networks: Vec<String>,
    keys_shredded: usize,
    resources_kept: usize,
    entries: usize,
    recorded_by: &'static str,
}

fn resource_ref(text: &str) -> Result<(String, String)> {
    match text.split_once('/') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() && !id.contains('/') => {
            Ok((kind.to_owned(), id.to_owned()))
        }
        _ => bail!("`{text}` is not a resource reference of the form Type/id"),
    }
}

/// Erase, or list erasures.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    if args.list {
        let charts = node
            .erased_charts(&info.id)
            .context("cannot list erased charts")?;
        if context.json {
            let list: Vec<_> = charts
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "patient": c.patient,
                        "entry": c.entry.to_hex(),
                        "author": c.author.to_hex(),
                        "time_ms": c.time_ms,
                        "whole_chart": c.whole_chart,
                    })
                })
                .collect();
            return print_json(&list).map(|()| ExitCode::SUCCESS);
        }
        let mut out = table(["patient", "erased", "entry", "by"]);
        for c in &charts {
            out.add_row([
                c.patient.clone(),
                if c.whole_chart { "chart" } else { "resources" }.to_owned(),
                short(&c.entry.to_hex(), 16),
                short(&c.author.to_hex(), 16),
            ]);
        }
        outln!("{out}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(patient) = args.patient else {
        bail!("name the patient whose chart to erase");
    };
    let scope = if args.resources.is_empty() {
        EraseScope::Chart
    } else {
        EraseScope::Resources(
            args.resources
                .iter()
                .map(|r| resource_ref(r))
                .collect::<Result<_>>()?,
        )
    };
    let report = node
        .erase(&info.id, &patient, scope, now_ms())
        .context("cannot erase the chart")?;
    let erased = Erased {
        patient,
        networks: report.networks.iter().map(|n| n.to_hex()).collect(),
        keys_shredded: report.keys_shredded,
        resources_kept: report.resources_kept,
        entries: report.entries,
        recorded_by: if report.by_patient {
            "the patient's node"
        } else {
            "this node, on the patient's behalf"
        },
    };
    if context.json {
        print_json(&erased)?;
    } else {
        outln!(
            "erased {} in {} network(s): {} key(s) shredded, {} resource(s) kept, {} entr{} \
             written (recorded by {}); sync to reach the other members",
            erased.patient,
            erased.networks.len(),
            erased.keys_shredded,
            erased.resources_kept,
            erased.entries,
            if erased.entries == 1 { "y" } else { "ies" },
            erased.recorded_by
        )?;
        outln!(
            "what other nodes already decrypted or exported cannot be taken back; \
             the ciphertext stays in the ledger, unreadable"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_references_are_type_slash_id() {
        assert_eq!(
            resource_ref("Observation/o-1").unwrap(),
            ("Observation".into(), "o-1".into())
        );
        for bad in ["Observation", "/o-1", "Observation/", "a/b/c"] {
            assert!(resource_ref(bad).is_err(), "{bad}");
        }
    }
}
