//! `careledger store …`: the node's store file itself.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;

use crate::context::Context;
use crate::output::print_json;

/// `store` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit the whole store file: SQLite's integrity check, every row's MAC,
    /// every table's digest (rows removed or put back from an older copy),
    /// the schema and the counters. Opening the store and every read check
    /// only what they touch; this reads everything. Exit 2 on any problem.
    Verify,
}

/// Run a `store` subcommand.
pub fn run(context: &Context, command: Command) -> Result<ExitCode> {
    match command {
        Command::Verify => verify(context),
    }
}

fn verify(context: &Context) -> Result<ExitCode> {
    let node = context.open_node()?;
    let report = node
        .store()
        .verify()
        .context("cannot read the store file")?;
    if context.json {
        print_json(&serde_json::json!({
            "clean": report.is_clean(),
            "tables": report.tables,
            "rows": report.rows,
            "problems": report.problems,
        }))?;
    } else if report.is_clean() {
        outln!(
            "store intact: {} tables, {} rows, every MAC and digest matches",
            report.tables,
            report.rows
        )?;
    } else {
        outln!(
            "store altered at rest: {} problem(s)",
            report.problems.len()
        )?;
        for problem in &report.problems {
            outln!("  {problem}")?;
        }
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
