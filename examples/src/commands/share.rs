//! `careledger share`: share the charts of one network (a care network) into
//! another (a study), each resource only if the patient's consent permits the
//! purpose to every other member of the target. Charts nothing of which may
//! go there any more are cut off: their key in the target is rotated and kept
//! from the other members.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::consent::Purpose;
use careledger::node::ShareReport;
use serde::Serialize;

use crate::ai::parse_purpose;
use crate::context::{now_ms, resolve_network, Context};
use crate::output::{align_right, multi_progress, print_json, spinner, table};

/// Arguments of `share`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network holding the charts: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    from: String,
    /// Network to share into: hex id or unique label (this node must be a member).
    #[arg(long, value_name = "NETWORK")]
    to_network: String,
    /// Purpose consent must permit: HRESCH, TREAT or CLMATTCH.
    #[arg(long, value_name = "CODE", default_value = "HRESCH", value_parser = parse_purpose)]
    purpose: Purpose,
    /// Share only resources of this type (repeat), e.g. the Claim, Coverage,
    /// Condition and Patient a claims network's rules read [default: every type].
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
}

/// The core's report with the networks named.
#[derive(Debug, Serialize)]
pub struct Shared {
    /// Source network (hex).
    pub from: String,
    /// Target network (hex).
    pub to: String,
    /// Purpose code.
    pub purpose: String,
    /// Patients of the source network looked at.
    pub patients: usize,
    /// Patients with at least one resource shared.
    pub patients_shared: usize,
    /// Resources consent allowed (consents themselves not counted).
    pub resources_permitted: usize,
    /// Resources consent did not allow.
    pub resources_withheld: usize,
    /// Charts cut off in this run.
    pub charts_cut_off: usize,
    /// Charts whose key was granted again in this run.
    pub charts_restored: usize,
    /// Charts skipped because a consent in them cannot be read.
    pub unreadable_charts: usize,
    /// Entries written to the target network.
    pub entries: usize,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
}

impl Shared {
    fn new(from: String, to: String, purpose: &Purpose, report: ShareReport) -> Self {
        Shared {
            from,
            to,
            purpose: purpose.code().to_owned(),
            patients: report.patients,
            patients_shared: report.patients_shared,
            resources_permitted: report.resources_permitted,
            resources_withheld: report.resources_withheld,
            charts_cut_off: report.records_cut_off,
            charts_restored: report.records_restored,
            unreadable_charts: report.unreadable_charts,
            entries: report.entries,
            consent_ids: report.consent_ids,
        }
    }
}

/// Share.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let from = resolve_network(&mut node, &args.from)?;
    let to = resolve_network(&mut node, &args.to_network)?;
    let progress = multi_progress(context.quiet || context.json);
    let bar = spinner(
        &progress,
        format!("sharing {} into {}", from.label, to.label),
    );
    let result = if args.types.is_empty() {
        node.share_to_network(&from.id, &to.id, args.purpose.clone(), now_ms())
    } else {
        node.share_types_to_network(
            &from.id,
            &to.id,
            args.purpose.clone(),
            &args.types,
            now_ms(),
        )
    };
    bar.finish_and_clear();
    let report =
        result.with_context(|| format!("cannot share {} into {}", from.label, to.label))?;
    let shared = Shared::new(from.id.to_hex(), to.id.to_hex(), &args.purpose, report);
    if context.json {
        print_json(&shared)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "shared {} into {} for {} as consent permits",
        from.label,
        to.label,
        shared.purpose
    )?;
    let mut table = table(["", "count"]);
    for (what, count) in [
        ("patients looked at", shared.patients),
        ("patients shared", shared.patients_shared),
        ("resources permitted", shared.resources_permitted),
        ("resources withheld", shared.resources_withheld),
        ("charts cut off", shared.charts_cut_off),
        ("charts restored", shared.charts_restored),
        (
            "charts with an unreadable consent",
            shared.unreadable_charts,
        ),
        ("consents relied on", shared.consent_ids.len()),
        ("entries written", shared.entries),
    ] {
        table.add_row([what.to_owned(), count.to_string()]);
    }
    align_right(&mut table, &[1]);
    outln!("{table}")?;
    if shared.entries > 0 {
        outln!("run `careledger sync` to publish")?;
    } else {
        outln!("nothing changed since the last share")?;
    }
    Ok(ExitCode::SUCCESS)
}
