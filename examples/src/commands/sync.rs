//! `careledger sync`: publish this node's outbox and receive what the relay
//! holds for one network, or for every active network.

use std::process::ExitCode;

use anyhow::Result;

use crate::context::{resolve_network, Context};
use crate::exchange::{sync_network, SyncSummary};
use crate::output::{align_right, multi_progress, print_json, table};

/// Arguments of `sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label [default: every active network].
    network: Option<String>,
}

/// Sync, then report what was published, fetched, accepted, held and rejected.
/// Rejected messages are reported, never stored; the node keeps its data.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let mut relay = context.open_relay(&node)?;
    let networks = match &args.network {
        Some(text) => vec![resolve_network(&mut node, text)?],
        None => node.networks()?.into_iter().filter(|n| n.active).collect(),
    };
    let progress = multi_progress(context.quiet);
    let mut summaries = Vec::with_capacity(networks.len());
    for info in &networks {
        summaries.push(sync_network(
            &mut node,
            relay.as_mut(),
            &info.id,
            &info.label,
            &progress,
        )?);
    }
    if context.json {
        print_json(&summaries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if summaries.is_empty() {
        outln!("no active networks to sync")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table([
        "network",
        "published",
        "fetched",
        "accepted",
        "held",
        "rejected",
        "commits",
        "time",
    ]);
    for s in &summaries {
        table.add_row([
            s.label.clone(),
            s.published.to_string(),
            s.fetched.to_string(),
            s.accepted.to_string(),
            s.held.to_string(),
            s.rejected.to_string(),
            s.commits_applied.to_string(),
            format!("{:.2} s", s.seconds),
        ]);
    }
    align_right(&mut table, &[1, 2, 3, 4, 5, 6, 7]);
    outln!("{table}")?;
    for s in &summaries {
        print_problems(s)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One line for a sync done as part of another command.
pub fn print_summary_line(s: &SyncSummary) -> Result<()> {
    outln!(
        "sync: published {}, fetched {}, accepted {}, held {}, rejected {} ({:.2} s)",
        s.published,
        s.fetched,
        s.accepted,
        s.held,
        s.rejected,
        s.seconds
    )?;
    print_problems(s)
}

fn print_problems(s: &SyncSummary) -> Result<()> {
    if s.removed {
        outln!("{}: this node was removed from the network", s.label)?;
    }
    for reason in &s.rejections {
        outln!("{}: rejected a message: {reason}", s.label)?;
    }
    for error in &s.mls_errors {
        outln!("{}: an MLS message failed: {error}", s.label)?;
    }
    if s.rejected > 0 {
        outln!(
            "{}: rejected messages were not stored; everything stored before is unchanged",
            s.label
        )?;
    }
    Ok(())
}
