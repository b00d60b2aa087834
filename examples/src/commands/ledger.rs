//! `careledger ledger …`: audit a network's ledger.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::node::{LedgerReport, NetworkId, Node};
use clap::Subcommand;
use serde::Serialize;

use crate::context::{resolve_network, Context};
use crate::output::{align_right, print_json, short, table};

/// `ledger` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Re-check every stored entry's signature, chain link and seals; exit 2 on
    /// any problem, fork or flagged author.
    Verify {
        /// Network: hex id or unique label.
        network: String,
    },
    /// Show each author's chain head (highest seq and its entry id).
    Heads {
        /// Network: hex id or unique label.
        network: String,
    },
}

/// Run a `ledger` subcommand.
pub fn run(context: &Context, command: Command) -> Result<ExitCode> {
    match command {
        Command::Verify { network } => verify(context, &network),
        Command::Heads { network } => heads(context, &network),
    }
}

/// A ledger report for people and scripts: the core's report plus the names
/// behind flagged authors and why entries are held back.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// Network id (hex).
    pub network: String,
    /// Whether there is no problem, fork or flagged author.
    pub clean: bool,
    /// Counts and problems, as the core reports them.
    #[serde(flatten)]
    pub report: LedgerReport,
    /// Flagged authors with their name (if a current member) and the reason.
    pub flagged_authors: Vec<String>,
    /// Entries held back, with the reason.
    pub held: Vec<String>,
}

impl Verification {
    /// Every problem as one line, in local append order.
    pub fn problem_lines(&self) -> Vec<String> {
        self.report
            .problems
            .iter()
            .map(|p| format!("entry #{}: {}", p.index, p.problem))
            .collect()
    }
}

/// Verify one network's ledger.
pub fn verification(node: &mut Node, network: &NetworkId) -> Result<Verification> {
    let report: LedgerReport = node
        .verify_ledger(network)
        .context("cannot verify the ledger")?;
    let names = author_names(node, network);
    let flagged_authors = node
        .flagged_authors(network)?
        .into_iter()
        .map(|(author, reason)| {
            let name = names.get(&author.to_hex()).cloned().unwrap_or_default();
            format!("{} {name}: {reason}", short(&author.to_hex(), 16))
        })
        .collect();
    Ok(Verification {
        network: network.to_hex(),
        clean: report.is_clean(),
        report,
        flagged_authors,
        held: node.held_entries(network)?,
    })
}

/// Names of the current members by author id (former members are unnamed).
fn author_names(node: &mut Node, network: &NetworkId) -> HashMap<String, String> {
    node.members(network)
        .map(|members| {
            members
                .into_iter()
                .map(|m| (m.author.to_hex(), m.name))
                .collect()
        })
        .unwrap_or_default()
}

fn verify(context: &Context, network: &str) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, network)?;
    let v = verification(&mut node, &info.id)?;
    if context.json {
        print_json(&v)?;
    } else {
        outln!("ledger of {} ({})", info.label, v.network)?;
        let mut table = table(["check", "count"]);
        let r = &v.report;
        for (check, count) in [
            ("entries", r.entries as u64),
            ("authors", r.authors as u64),
            ("signatures verified", r.signatures_ok as u64),
            ("epoch seals opened", r.seals_ok as u64),
            ("record seals opened", r.record_seals_ok as u64),
            ("record keys not held", r.record_keys_missing as u64),
            ("forks", r.forks),
            ("flagged authors", r.flagged as u64),
            ("entries held back", v.held.len() as u64),
            ("problems", r.problems.len() as u64),
        ] {
            table.add_row([check.to_owned(), count.to_string()]);
        }
        align_right(&mut table, &[1]);
        outln!("{table}")?;
        for line in v.flagged_authors.iter().chain(&v.problem_lines()) {
            outln!("  {line}")?;
        }
        outln!("{}", if v.clean { "clean" } else { "NOT CLEAN" })?;
    }
    Ok(if v.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

#[derive(Serialize)]
struct HeadRow {
    author: String,
    name: Option<String>,
    seq: u64,
    entry: String,
}

fn heads(context: &Context, network: &str) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, network)?;
    let names = author_names(&mut node, &info.id);
    let rows: Vec<HeadRow> = node
        .heads(&info.id)?
        .into_iter()
        .map(|h| HeadRow {
            name: names.get(&h.author.to_hex()).cloned(),
            author: h.author.to_hex(),
            seq: h.seq,
            entry: h.id.to_hex(),
        })
        .collect();
    if context.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table(["author", "author id", "seq", "head entry id"]);
    for r in &rows {
        table.add_row([
            r.name
                .clone()
                .unwrap_or_else(|| "(not a current member)".into()),
            short(&r.author, 16),
            r.seq.to_string(),
            short(&r.entry, 16),
        ]);
    }
    align_right(&mut table, &[2]);
    outln!("{table}")?;
    Ok(ExitCode::SUCCESS)
}
