//! One module per subcommand; each has an `Args` struct and a `run`.

mod audit;
mod consent;
mod dataset;
mod demo;
mod edit;
mod erase;
mod export;
mod export_doc;
mod fl;
mod import;
mod init;
mod key_package;
mod ledger;
mod membership;
mod network;
mod patients;
mod predict;
mod rules;
mod share;
mod store;
mod sync;
mod train;
mod verify;

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
    /// Erase a patient's chart, or some of its resources, by shredding its
    /// keys at every member (--list: the charts erased).
    Erase(erase::Args),
    /// Exchange messages with the relay: publish ours, receive the others'.
    Sync(sync::Args),
    /// Audit a network's ledger.
    #[command(subcommand)]
    Ledger(ledger::Command),
    /// Audit the node's store file.
    #[command(subcommand)]
    Store(store::Command),
    /// Record, revoke and show patients' consents; link a patient's own node.
    #[command(subcommand)]
    Consent(consent::Command),
    /// Share charts into another network (a study) as consent permits; cut
    /// off charts whose consent no longer does.
    Share(share::Args),
    /// Build a dataset from consented records (counts and commitments only).
    #[command(subcommand)]
    Dataset(dataset::Command),
    /// Train a model on consented records and write its model card to the ledger.
    Train(train::Args),
    /// Predict with a model card's model; the prediction is a decision entry.
    Predict(predict::Args),
    /// Re-verify a model card: rebuild its dataset, retrain, compare; exit 2
    /// on a mismatch.
    Verify(verify::Args),
    /// List the model cards, decisions, model updates, consent cut-offs,
    /// rule sets, policies, endorsements and outcomes of a network.
    Audit(audit::Args),
    /// Prove whether a patient's chart is in a model card's dataset.
    Membership(membership::Args),
    /// Rules that act by themselves: the network's policy (quorum), rule sets
    /// in CEL, endorsements of rule sets and model cards, outcomes
    /// (ClaimResponses) and their re-check (exit 2 on a mismatch).
    #[command(subcommand)]
    Rules(rules::Command),
    /// Federated learning: publish a site's update, average a round.
    #[command(subcommand)]
    Fl(fl::Command),
    /// Run the whole story (three institutions, a care network, imports,
    /// concurrent edits, a removal, audits, then consent, a study, training,
    /// verification, a decision, a revocation, an erasure, federated
    /// learning and an insurer's automatic claims adjudication) in a
    /// temporary directory.
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
            Commands::Erase(args) => erase::run(context, args),
            Commands::Sync(args) => sync::run(context, args),
            Commands::Ledger(command) => ledger::run(context, command),
            Commands::Store(command) => store::run(context, command),
            Commands::Consent(command) => consent::run(context, command),
            Commands::Share(args) => share::run(context, args),
            Commands::Dataset(command) => dataset::run(context, command),
            Commands::Train(args) => train::run(context, args),
            Commands::Predict(args) => predict::run(context, args),
            Commands::Verify(args) => verify::run(context, args),
            Commands::Audit(args) => audit::run(context, args),
            Commands::Rules(command) => rules::run(context, command),
            Commands::Membership(args) => membership::run(context, args),
            Commands::Fl(command) => fl::run(context, command),
            Commands::Demo(args) => demo::run(context, args),
        }
    }
}
