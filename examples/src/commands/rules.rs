//! `careledger rules …`: rules that act by themselves (an insurer's
//! auto-adjudication in CEL), governed by the network.
//!
//! `policy` sets the quorum (k of n members); `add` stores a rule set
//! document (its hash is the SHA-256 of the file's bytes); `endorse` counts
//! a member towards the quorum of a rule set, a policy, or a model card (a
//! model card only after this node's own re-verification confirmed it);
//! once active, the executors a rule set names write one outcome per claim
//! by themselves when they sync. `outcomes` lists them as FHIR
//! `ClaimResponse`s; `verify` re-evaluates every outcome (or one, or one
//! handed over as a file) on this replica and names the step of a mismatch
//! (exit 2); `run` makes an executor go over every record now.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::entry::{AuthorId, Entry, EntryId};
use careledger::node::{NetworkId, Node, OutcomeCheck, RuleSetInfo, StoredOutcome};
use careledger::rules::governance::{FactBody, Stance, Target};
use careledger::rules::outcome::OutcomeRecord;
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;

use crate::ai::{node_name, resolve_card, resolve_node};
use crate::context::{now_ms, resolve_network, Context};
use crate::dates::format_instant_u64;
use crate::output::{align_right, multi_progress, print_json, short, spinner, table};

/// `rules` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set the network's policy: a rule set, model card or later policy is
    /// active once QUORUM members endorse it.
    Policy(PolicyArgs),
    /// Store a rule set document (JSON with CEL expressions) in the network;
    /// it is checked and compiled first, a refused document stores nothing.
    Add(AddArgs),
    /// Endorse (or --withdraw from) a rule set, a model card or a policy. A
    /// model card is endorsed only after this node re-verified it (confirmed).
    Endorse(EndorseArgs),
    /// List the rule sets: hash, version, endorsements of the quorum, active.
    List(NetworkArgs),
    /// List the outcomes (one per claim version) with their ClaimResponse
    /// outcome, amount and reason; --json gives each as a FHIR ClaimResponse.
    Outcomes(NetworkArgs),
    /// Run the rule sets this node executes over every record now (sync
    /// does this by itself for records that change).
    Run(NetworkArgs),
    /// Re-evaluate every outcome (or one) on this replica; exit 2 if any
    /// does not re-check, naming the step that differs.
    Verify(VerifyArgs),
}

/// The network a command works on.
#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    /// Network: hex id or unique label.
    #[arg(long)]
    network: String,
}

/// Arguments of `rules policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Endorsements needed (k of the network's n members).
    #[arg(long, value_name = "K")]
    quorum: u32,
    /// The policy entry this one replaces (it takes effect once endorsed by
    /// the replaced policy's quorum).
    #[arg(long, value_name = "ENTRY")]
    replaces: Option<String>,
}

/// Arguments of `rules add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// The rule set document (careledger.rule_set JSON), stored byte for byte.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
}

/// What an endorsement is about.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// A rule set: its hash or a unique prefix of it (at least 4 hex digits).
    #[arg(long, value_name = "HASH")]
    rule_set: Option<String>,
    /// A model card: its entry id or a unique prefix of it.
    #[arg(long, value_name = "ENTRY")]
    card: Option<String>,
    /// A policy: its entry id or a unique prefix of it.
    #[arg(long, value_name = "ENTRY")]
    policy: Option<String>,
}

/// Arguments of `rules endorse`.
#[derive(Debug, clap::Args)]
pub struct EndorseArgs {
    #[command(flatten)]
    network: NetworkArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Take this node's endorsement back instead.
    #[arg(long)]
    withdraw: bool,
}

/// Arguments of `rules verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Only this outcome: its entry id or a unique prefix of it.
    #[arg(long, value_name = "ENTRY", conflicts_with = "outcome_file")]
    outcome: Option<String>,
    /// Check the outcomes against this rule set document instead of the one
    /// they cite (a copy handed over by other means).
    #[arg(long, value_name = "FILE")]
    rule_file: Option<PathBuf>,
    /// Check an outcome handed over as a file (the `record` of `rules
    /// outcomes --json`) instead of those on the ledger.
    #[arg(long, value_name = "FILE", requires = "executor")]
    outcome_file: Option<PathBuf>,
    /// Who wrote the --outcome-file outcome: full author id or member name.
    #[arg(long, value_name = "NODE", requires = "outcome_file")]
    executor: Option<String>,
}

/// Run a `rules` subcommand.
pub fn run(context: &Context, command: Command) -> Result<ExitCode> {
    match command {
        Command::Policy(args) => policy(context, args),
        Command::Add(args) => add(context, args),
        Command::Endorse(args) => endorse(context, args),
        Command::List(args) => list(context, args),
        Command::Outcomes(args) => outcomes(context, args),
        Command::Run(args) => run_rules(context, args),
        Command::Verify(args) => verify(context, args),
    }
}

/// The author-claimed time of every entry of a network, by entry id.
pub fn entry_times(node: &Node, network: &NetworkId) -> Result<BTreeMap<EntryId, u64>> {
    let mut times = BTreeMap::new();
    for bytes in node
        .ledger_entries(network)
        .context("cannot read the ledger")?
    {
        if let Ok(entry) = Entry::decode(&bytes) {
            times.insert(Entry::id_of(&bytes), entry.header.time_ms);
        }
    }
    Ok(times)
}

/// One hex id among `ids` named by a unique prefix (at least 4 hex digits).
fn unique_prefix<'a>(what: &str, ids: impl Iterator<Item = &'a str>, text: &str) -> Result<String> {
    let wanted = text.trim().to_ascii_lowercase();
    if wanted.len() < 4 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("a {what} is named by its hex id or a prefix of at least 4 hex digits");
    }
    let found: Vec<&str> = ids.filter(|id| id.starts_with(&wanted)).collect();
    match found.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!(
            "no {what} `{wanted}` in this network (sync first if it was just written); \
             see `careledger rules list` and `careledger audit`"
        ),
        many => bail!(
            "{} {what}s start with `{wanted}`; give more hex digits",
            many.len()
        ),
    }
}

/// A policy entry named by its id or a unique prefix of it.
fn resolve_policy(node: &Node, network: &NetworkId, text: &str) -> Result<String> {
    let ids: Vec<String> = node
        .governance_facts(network)
        .context("cannot read the network's policies")?
        .iter()
        .filter(|f| matches!(f.body, FactBody::Policy(_)))
        .map(|f| f.entry.to_hex())
        .collect();
    unique_prefix("policy", ids.iter().map(String::as_str), text)
}

#[derive(Serialize)]
struct PolicySet {
    network: String,
    policy: String,
    quorum: u32,
    members: usize,
}

fn policy(context: &Context, args: PolicyArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network.network)?;
    let replaces = match &args.replaces {
        Some(text) => EntryId::from_hex(&resolve_policy(&node, &info.id, text)?),
        None => None,
    };
    let entry = node
        .set_policy(&info.id, args.quorum, replaces, now_ms())
        .context("cannot set the policy")?;
    let members = node.members(&info.id)?.len();
    let set = PolicySet {
        network: info.id.to_hex(),
        policy: entry.to_hex(),
        quorum: args.quorum,
        members,
    };
    if context.json {
        print_json(&set)?;
    } else {
        outln!(
            "policy {} for {}: {} of {} members activate a rule set, model card or policy",
            set.policy,
            info.label,
            set.quorum,
            set.members
        )?;
        outln!("run `careledger sync` to publish")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A rule set for people and scripts.
#[derive(Serialize)]
struct RuleSetView {
    entry: String,
    /// SHA-256 of the document's bytes (hex).
    hash: String,
    name: String,
    version: u64,
    author: String,
    author_name: String,
    /// When its entry was written (author's clock).
    time: String,
    executors: Vec<String>,
    rules: Vec<String>,
    /// The policy in force, if any.
    policy: Option<String>,
    quorum: u32,
    /// Standing endorsements (entry ids).
    endorsements: Vec<String>,
    /// Endorsed by the quorum under the policy in force.
    active: bool,
    /// Active and the highest active version of its name: its executors apply it.
    in_force: bool,
}

fn rule_set_view(
    node: &mut Node,
    network: &NetworkId,
    info: &RuleSetInfo,
    times: &BTreeMap<EntryId, u64>,
) -> RuleSetView {
    RuleSetView {
        entry: info.entry.to_hex(),
        hash: info.set.hash_hex(),
        name: info.set.doc.name.clone(),
        version: info.set.doc.version,
        author: info.author.to_hex(),
        author_name: node_name(node, network, &info.author),
        time: times
            .get(&info.entry)
            .map(|t| format_instant_u64(*t))
            .unwrap_or_default(),
        executors: info.set.doc.executors.clone(),
        rules: info.set.doc.rules.iter().map(|r| r.id.clone()).collect(),
        policy: info.activation.policy.map(|p| p.to_hex()),
        quorum: info.activation.quorum,
        endorsements: info
            .activation
            .endorsements
            .iter()
            .map(EntryId::to_hex)
            .collect(),
        active: info.activation.active,
        in_force: info.in_force,
    }
}

fn add(context: &Context, args: AddArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network.network)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let (entry, hash) = node
        .add_rule_set(&info.id, &bytes, now_ms())
        .with_context(|| format!("{} was not stored", args.file.display()))?;
    let hash = hex::encode(hash);
    let sets = node.rule_sets(&info.id)?;
    let times = entry_times(&node, &info.id)?;
    let Some(stored) = sets.iter().find(|s| s.set.hash_hex() == hash) else {
        bail!("the rule set {hash} was stored but cannot be read back");
    };
    let mut view = rule_set_view(&mut node, &info.id, stored, &times);
    // The same document stored earlier keeps the smaller entry; say which
    // entry this command wrote.
    view.entry = entry.to_hex();
    if context.json {
        print_json(&view)?;
    } else {
        outln!(
            "rule set {} version {} stored in {} as entry {}",
            view.name,
            view.version,
            info.label,
            view.entry
        )?;
        outln!("hash {}", view.hash)?;
        outln!(
            "rules: {}; executors: {}",
            view.rules.join(", "),
            executor_names(&mut node, &info.id, &view.executors)
        )?;
        outln!("{}", activation_line(&view))?;
        outln!("run `careledger sync` to publish")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn executor_names(node: &mut Node, network: &NetworkId, executors: &[String]) -> String {
    executors
        .iter()
        .map(|hex| match AuthorId::from_hex(hex) {
            Some(author) => node_name(node, network, &author),
            None => hex.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn activation_line(view: &RuleSetView) -> String {
    match (&view.policy, view.active) {
        (None, _) => "inactive: the network has no policy yet (`careledger rules policy`)".into(),
        (Some(_), true) => format!(
            "active: {} of {} endorsements{}",
            view.endorsements.len(),
            view.quorum,
            if view.in_force {
                ""
            } else {
                " (a higher version is in force)"
            }
        ),
        (Some(_), false) => format!(
            "inactive: {} of {} endorsements",
            view.endorsements.len(),
            view.quorum
        ),
    }
}

#[derive(Serialize)]
struct Endorsed {
    network: String,
    entry: String,
    /// `rule_set`, `model_card` or `policy`.
    target_kind: &'static str,
    target: String,
    /// `endorse` or `withdraw`.
    stance: &'static str,
    /// The target's activation after this entry.
    active: bool,
    quorum: u32,
    endorsements: usize,
}

fn endorse(context: &Context, args: EndorseArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network.network)?;
    let target = match (
        &args.target.rule_set,
        &args.target.card,
        &args.target.policy,
    ) {
        (Some(text), _, _) => {
            let sets = node.rule_sets(&info.id)?;
            let hashes: Vec<String> = sets.iter().map(|s| s.set.hash_hex()).collect();
            Target::RuleSet(unique_prefix(
                "rule set",
                hashes.iter().map(String::as_str),
                text,
            )?)
        }
        (None, Some(text), _) => {
            Target::ModelCard(resolve_card(&mut node, &info.id, text)?.to_hex())
        }
        (None, None, Some(text)) => Target::Policy(resolve_policy(&node, &info.id, text)?),
        (None, None, None) => bail!("give --rule-set HASH, --card ENTRY or --policy ENTRY"),
    };
    let stance = if args.withdraw {
        Stance::Withdraw
    } else {
        Stance::Endorse
    };
    let progress = multi_progress(context.quiet || context.json);
    let bar = matches!(target, Target::ModelCard(_) if !args.withdraw).then(|| {
        spinner(
            &progress,
            "re-verifying the model card before endorsing it".into(),
        )
    });
    let result = node.endorse(&info.id, target.clone(), stance, now_ms());
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let entry = result.with_context(|| {
        format!(
            "cannot {} the {} {}",
            if args.withdraw {
                "withdraw from"
            } else {
                "endorse"
            },
            target.kind_name(),
            target.id()
        )
    })?;
    let activation = node.activation(&info.id, &target)?;
    let endorsed = Endorsed {
        network: info.id.to_hex(),
        entry: entry.to_hex(),
        target_kind: match target {
            Target::RuleSet(_) => "rule_set",
            Target::ModelCard(_) => "model_card",
            Target::Policy(_) => "policy",
        },
        target: target.id().to_owned(),
        stance: if args.withdraw { "withdraw" } else { "endorse" },
        active: activation.active,
        quorum: activation.quorum,
        endorsements: activation.endorsements.len(),
    };
    if context.json {
        print_json(&endorsed)?;
    } else {
        outln!(
            "{} {} {} (entry {})",
            if args.withdraw {
                "withdrew from"
            } else {
                "endorsed"
            },
            target.kind_name(),
            endorsed.target,
            endorsed.entry
        )?;
        outln!(
            "{}: {} of {} endorsements",
            if endorsed.active {
                "active"
            } else {
                "inactive"
            },
            endorsed.endorsements,
            endorsed.quorum
        )?;
        outln!("run `careledger sync` to publish")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list(context: &Context, args: NetworkArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let sets = node
        .rule_sets(&info.id)
        .context("cannot list the rule sets")?;
    let times = entry_times(&node, &info.id)?;
    let views: Vec<RuleSetView> = sets
        .iter()
        .map(|s| rule_set_view(&mut node, &info.id, s, &times))
        .collect();
    if context.json {
        print_json(&views)?;
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        outln!("{}: no rule set on the ledger", info.label)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table([
        "time",
        "name",
        "version",
        "hash",
        "author",
        "endorsements",
        "active",
        "in force",
    ]);
    for view in &views {
        table.add_row([
            view.time.clone(),
            view.name.clone(),
            view.version.to_string(),
            short(&view.hash, 12),
            view.author_name.clone(),
            format!("{}/{}", view.endorsements.len(), view.quorum),
            yes_no(view.active).into(),
            yes_no(view.in_force).into(),
        ]);
    }
    align_right(&mut table, &[2, 5]);
    outln!("{table}")?;
    Ok(ExitCode::SUCCESS)
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// An outcome for people and scripts.
#[derive(Serialize)]
struct OutcomeView {
    entry: String,
    executor: String,
    executor_name: String,
    /// The triggering entry's time: the rule's "now".
    time: String,
    /// Outcomes of racing executors for the same claim version.
    duplicates: Vec<String>,
    /// What the executor wrote.
    record: OutcomeRecord,
    /// The same as a FHIR R4 ClaimResponse.
    claim_response: Value,
}

fn outcome_view(node: &mut Node, network: &NetworkId, stored: &StoredOutcome) -> OutcomeView {
    let entry = stored.entry.to_hex();
    let executor = stored.author.to_hex();
    OutcomeView {
        claim_response: stored.record.to_claim_response(&entry, &executor),
        executor_name: node_name(node, network, &stored.author),
        time: format_instant_u64(stored.record.trigger_time_ms),
        duplicates: stored.duplicates.iter().map(EntryId::to_hex).collect(),
        record: stored.record.clone(),
        entry,
        executor,
    }
}

/// `approve 215.74 USD`, `deny`, `pend`.
fn decided(record: &OutcomeRecord) -> (String, String) {
    let amount = match &record.amount {
        Some(amount) => format!("{amount} {}", record.currency),
        None => String::new(),
    };
    (record.outcome.name().to_owned(), amount)
}

fn outcomes(context: &Context, args: NetworkArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let stored = node
        .rule_outcomes(&info.id)
        .context("cannot list the outcomes")?;
    let views: Vec<OutcomeView> = stored
        .iter()
        .map(|s| outcome_view(&mut node, &info.id, s))
        .collect();
    if context.json {
        print_json(&views)?;
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        outln!("{}: no outcome on the ledger", info.label)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table([
        "created", "outcome", "amount", "reason", "claim", "entry", "executor",
    ]);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for view in &views {
        let (outcome, amount) = decided(&view.record);
        *counts.entry(view.record.outcome.name()).or_default() += 1;
        table.add_row([
            view.time.clone(),
            outcome,
            amount,
            view.record.reason.clone(),
            short(&view.record.subject.id, 8),
            short(&view.entry, 12),
            view.executor_name.clone(),
        ]);
    }
    align_right(&mut table, &[2]);
    outln!("{table}")?;
    outln!(
        "{} outcome(s): {}",
        views.len(),
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Ran {
    network: String,
    outcomes_written: usize,
    decisions_written: usize,
    consent_denied: usize,
    failures: Vec<String>,
}

fn run_rules(context: &Context, args: NetworkArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let progress = multi_progress(context.quiet || context.json);
    let bar = spinner(&progress, format!("running the rules of {}", info.label));
    let result = node.run_rules(&info.id, now_ms());
    bar.finish_and_clear();
    let activity = result.context("cannot run the rules")?;
    let ran = Ran {
        network: info.id.to_hex(),
        outcomes_written: activity.outcomes_written,
        decisions_written: activity.decisions_written,
        consent_denied: activity.consent_denied,
        failures: activity.failures,
    };
    if context.json {
        print_json(&ran)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table(["", "count"]);
    for (what, count) in [
        ("outcomes written", ran.outcomes_written),
        ("decisions written", ran.decisions_written),
        ("resources consent kept from the rules", ran.consent_denied),
        ("evaluations refused", ran.failures.len()),
    ] {
        table.add_row([what.to_owned(), count.to_string()]);
    }
    align_right(&mut table, &[1]);
    outln!("{table}")?;
    for failure in &ran.failures {
        outln!("refused: {failure}")?;
    }
    if ran.outcomes_written > 0 {
        outln!("run `careledger sync` to publish")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One re-checked outcome.
#[derive(Serialize)]
struct Checked {
    /// The outcome entry, or the file it came from.
    outcome: String,
    executor: String,
    claim: String,
    decision: String,
    amount: Option<String>,
    reason: String,
    #[serde(flatten)]
    check: OutcomeCheck,
}

#[derive(Serialize)]
struct Verified {
    network: String,
    /// The document checked against instead of the cited one, if any.
    rule_file: Option<String>,
    confirmed: usize,
    mismatches: usize,
    waiting: usize,
    outcomes: Vec<Checked>,
}

fn checked(
    outcome: String,
    executor: String,
    record: &OutcomeRecord,
    check: OutcomeCheck,
) -> Checked {
    Checked {
        outcome,
        executor,
        claim: record.subject.id.clone(),
        decision: record.outcome.name().to_owned(),
        amount: record.amount.clone(),
        reason: record.reason.clone(),
        check,
    }
}

fn verify(context: &Context, args: VerifyArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network.network)?;
    let rule_bytes = match &args.rule_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => None,
    };
    let progress = multi_progress(context.quiet || context.json);
    let bar = spinner(&progress, "re-evaluating outcomes".into());
    let result = check_all(&mut node, &info.id, &args, rule_bytes.as_deref());
    bar.finish_and_clear();
    let outcomes = result?;
    let count = |f: fn(&OutcomeCheck) -> bool| outcomes.iter().filter(|c| f(&c.check)).count();
    let verified = Verified {
        network: info.id.to_hex(),
        rule_file: args.rule_file.as_ref().map(|p| p.display().to_string()),
        confirmed: count(|c| matches!(c, OutcomeCheck::Confirmed)),
        mismatches: count(|c| matches!(c, OutcomeCheck::Mismatch { .. })),
        waiting: count(|c| matches!(c, OutcomeCheck::Waiting { .. })),
        outcomes,
    };
    if context.json {
        print_json(&verified)?;
    } else {
        print_verified(&mut node, &info.id, &verified, args.outcome_file.is_some())?;
    }
    Ok(if verified.mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn check_all(
    node: &mut Node,
    network: &NetworkId,
    args: &VerifyArgs,
    rule_bytes: Option<&[u8]>,
) -> Result<Vec<Checked>> {
    if let (Some(path), Some(executor)) = (&args.outcome_file, &args.executor) {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let record = OutcomeRecord::decode(&bytes)
            .with_context(|| format!("{} is not a rule outcome", path.display()))?;
        let executor = resolve_node(node, network, executor)?;
        let check = node
            .check_outcome(network, executor, &record, rule_bytes)
            .context("the outcome could not be re-checked")?;
        return Ok(vec![checked(
            path.display().to_string(),
            executor.to_hex(),
            &record,
            check,
        )]);
    }
    let mut stored = node
        .rule_outcomes(network)
        .context("cannot list the outcomes")?;
    if let Some(text) = &args.outcome {
        let ids: Vec<String> = stored
            .iter()
            .flat_map(|s| std::iter::once(&s.entry).chain(&s.duplicates))
            .map(EntryId::to_hex)
            .collect();
        let hex = unique_prefix("outcome", ids.iter().map(String::as_str), text)?;
        let id = EntryId::from_hex(&hex).context("an outcome id is 32 bytes")?;
        let Some(outcome) = stored
            .iter()
            .find(|s| s.entry == id || s.duplicates.contains(&id))
        else {
            bail!("no outcome {hex} in this network");
        };
        let (author, record) = (outcome.author, outcome.record.clone());
        let check = match rule_bytes {
            Some(bytes) => node.check_outcome(network, author, &record, Some(bytes)),
            None => node.verify_outcome(network, &id),
        }
        .context("the outcome could not be re-checked")?;
        return Ok(vec![checked(hex, author.to_hex(), &record, check)]);
    }
    if let Some(bytes) = rule_bytes {
        stored.sort_by_key(|s| s.entry);
        let mut out = Vec::with_capacity(stored.len());
        for outcome in &stored {
            let check = node
                .check_outcome(network, outcome.author, &outcome.record, Some(bytes))
                .context("an outcome could not be re-checked")?;
            out.push(checked(
                outcome.entry.to_hex(),
                outcome.author.to_hex(),
                &outcome.record,
                check,
            ));
        }
        return Ok(out);
    }
    Ok(node
        .verify_outcomes(network)
        .context("cannot re-check the outcomes")?
        .into_iter()
        .map(|(stored, check)| {
            checked(
                stored.entry.to_hex(),
                stored.author.to_hex(),
                &stored.record,
                check,
            )
        })
        .collect())
}

fn print_verified(
    node: &mut Node,
    network: &NetworkId,
    verified: &Verified,
    handed_over: bool,
) -> Result<()> {
    if verified.outcomes.is_empty() {
        outln!("no outcome to re-check")?;
        return Ok(());
    }
    let mut table = table([
        "outcome", "claim", "decision", "amount", "executor", "check",
    ]);
    for c in &verified.outcomes {
        let executor = AuthorId::from_hex(&c.executor)
            .map(|a| node_name(node, network, &a))
            .unwrap_or_else(|| c.executor.clone());
        table.add_row([
            if c.outcome.len() == 64 {
                short(&c.outcome, 12)
            } else {
                c.outcome.clone()
            },
            short(&c.claim, 8),
            c.decision.clone(),
            c.amount.clone().unwrap_or_default(),
            executor,
            check_text(&c.check),
        ]);
    }
    align_right(&mut table, &[3]);
    outln!("{table}")?;
    outln!(
        "{} confirmed, {} mismatch(es), {} waiting for entries not synced yet",
        verified.confirmed,
        verified.mismatches,
        verified.waiting
    )?;
    if verified.mismatches > 0 && verified.rule_file.is_none() && !handed_over {
        outln!(
            "an outcome on the ledger that does not re-check stays there as evidence; \
             `careledger ledger verify` lists its executor as flagged"
        )?;
    }
    Ok(())
}

/// `confirmed`, `mismatch at <step>: <detail>` or `waiting: <detail>`.
pub fn check_text(check: &OutcomeCheck) -> String {
    match check {
        OutcomeCheck::Confirmed => "confirmed".into(),
        OutcomeCheck::Mismatch { step, detail } => {
            format!("mismatch at {}: {detail}", step.name())
        }
        OutcomeCheck::Waiting { detail } => format!("waiting: {detail}"),
    }
}
