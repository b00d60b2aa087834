//! One module per subcommand; each has an `Args` struct and a `run`.

mod demo;
mod edit;
mod export;
mod export_doc;
mod import;
mod init;
mod key_package;
mod ledger;
mod network;
mod patients;
mod sync;

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::context::Context;

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Create this home's node: a new identity and an empty store.
    Init(init::Args),
    /// Write a fresh MLS key package, for a member to invite this node with.
    KeyPackage(key_package::Args),
    /// Create, join and manage networks (MLS groups sharing one ledger).
    #[command(subcommand)]
    Network(network::Command),
    /// Import FHIR R4 files (Bulk NDJSON or Bundle) into a network's records.
    Import(import::Args),
    /// Export one patient's chart as canonical FHIR JSON.
    Export(export::Args),
    /// Export one patient's raw Automerge document.
    ExportDoc(export_doc::Args),
    /// List the patients with a record in a network.
    Patients(patients::Args),
    /// Set or delete one top-level member of one resource in a patient's chart.
    Edit(edit::Args),
    /// Exchange messages with the relay: publish ours, receive the others'.
    Sync(sync::Args),
    /// Audit a network's ledger.
    #[command(subcommand)]
    Ledger(ledger::Command),
    /// Run the whole story (three institutions, a care network, imports,
    /// concurrent edits, a removal, audits) in a temporary directory.
    Demo(demo::Args),
}

impl Commands {
    /// Run the subcommand.
    pub fn run(self, context: &Context) -> Result<ExitCode> {
        match self {
            Commands::Init(args) => init::run(context, args),
            Commands::KeyPackage(args) => key_package::run(context, args),
            Commands::Network(command) => network::run(context, command),
            Commands::Import(args) => import::run(context, args),
            Commands::Export(args) => export::run(context, args),
            Commands::ExportDoc(args) => export_doc::run(context, args),
            Commands::Patients(args) => patients::run(context, args),
            Commands::Edit(args) => edit::run(context, args),
            Commands::Sync(args) => sync::run(context, args),
            Commands::Ledger(command) => ledger::run(context, command),
            Commands::Demo(args) => demo::run(context, args),
        }
    }
}
