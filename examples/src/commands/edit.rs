//! `careledger edit`: set or delete one top-level member of one resource.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::context::{now_ms, resolve_network, Context};
use crate::output::print_json;

/// Arguments of `edit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label.
    network: String,
    /// Patient (record) id.
    patient: String,
    /// Resource type, e.g. Patient or Observation.
    resource_type: String,
    /// Resource id.
    id: String,
    /// Top-level member, e.g. telecom or status.
    member: String,
    /// The member's new value as JSON, e.g. '"final"' or '[{"system":"phone","value":"555-0100"}]'.
    #[arg(
        value_name = "JSON",
        required_unless_present = "delete",
        conflicts_with = "delete"
    )]
    value: Option<String>,
    /// Remove the member instead of setting it.
    #[arg(long)]
    delete: bool,
}

/// Write the edit as one sealed entry; `careledger sync` shares it.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let changed = node
        .edit_member(
            &info.id,
            &args.patient,
            &args.resource_type,
            &args.id,
            &args.member,
            args.value.as_deref(),
            now_ms(),
        )
        .context("cannot edit the record")?;
    if context.json {
        print_json(&serde_json::json!({ "changed": changed }))?;
    } else if changed {
        let verb = if args.delete { "deleted" } else { "set" };
        outln!(
            "{verb} {}.{}; run `careledger sync` to share the change",
            args.resource_type,
            args.member
        )?;
    } else {
        outln!("no change: the member already had that value")?;
    }
    Ok(ExitCode::SUCCESS)
}
