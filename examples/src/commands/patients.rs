//! `careledger patients`: the patients with a record in a network.

use std::process::ExitCode;

use anyhow::Result;

use crate::context::{resolve_network, Context};
use crate::output::print_json;

/// Arguments of `patients`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label.
    network: String,
}

/// List patient (record) ids, one per line.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let patients = node.patients(&info.id)?;
    if context.json {
        print_json(&patients)?;
    } else {
        for patient in &patients {
            outln!("{patient}")?;
        }
        eprintln!("{} patient(s) in {}", patients.len(), info.label);
    }
    Ok(ExitCode::SUCCESS)
}
