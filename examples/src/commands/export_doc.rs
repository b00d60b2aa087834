//! `careledger export-doc`: one patient's raw Automerge document.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::context::{resolve_network, Context};
use crate::output::print_json;

/// Arguments of `export-doc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label.
    network: String,
    /// Patient (record) id.
    patient: String,
    /// Write the document here (any Automerge implementation can load it).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Save the document.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let doc = node
        .export_doc(&info.id, &args.patient)
        .context("cannot export the record document")?;
    std::fs::write(&args.out, &doc)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if context.json {
        print_json(&serde_json::json!({
            "path": args.out.display().to_string(),
            "bytes": doc.len(),
        }))?;
    } else {
        outln!(
            "wrote the Automerge document ({} bytes) to {}",
            doc.len(),
            args.out.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
