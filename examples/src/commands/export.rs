//! `careledger export`: one patient's chart as canonical FHIR JSON.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::node::ExportFormat;
use clap::ValueEnum;

use crate::context::{resolve_network, Context};
use crate::output::print_json;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A FHIR Bundle of type collection.
    Bundle,
    /// One resource per line (FHIR Bulk Data NDJSON).
    Ndjson,
}

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label.
    network: String,
    /// Patient (record) id.
    patient: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Bundle)]
    format: Format,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Export; the bytes are canonical, so replicas that hold the same changes
/// export identical files.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let format = match args.format {
        Format::Bundle => ExportFormat::Bundle,
        Format::Ndjson => ExportFormat::Ndjson,
    };
    let text = node
        .export_patient(&info.id, &args.patient, format)
        .context("cannot export the patient")?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if context.json {
                print_json(&serde_json::json!({
                    "path": path.display().to_string(),
                    "bytes": text.len(),
                }))?;
            } else {
                eprintln!("wrote {} bytes to {}", text.len(), path.display());
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                stdout.write_all(b"\n")?;
            }
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
