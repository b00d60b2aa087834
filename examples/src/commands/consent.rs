//! `careledger consent …`: record, revoke and read a patient's consents, and
//! link the patient's own node (their phone).
//!
//! A consent is an ordinary FHIR `Consent` resource in the patient's chart.
//! Written by one of the patient's own nodes it is the patient's; written by
//! any other node it is marked as recorded on the patient's behalf by that
//! node, and `show` says so.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::consent::{
    Actor, ConsentDraft, ConsentSource, ConsentStatus, Grantee, Period, Provision, Purpose,
};
use careledger::node::{NetworkId, Node, PatientConsent};
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;

use crate::ai::{node_name, parse_purpose, resolve_grantee_network, resolve_node};
use crate::context::{now_ms, resolve_network, Context};
use crate::dates::{format_instant, parse_instant, Bound};
use crate::output::{print_json, short};

/// `consent` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record a consent granting a network or a node the use of the chart
    /// for some purposes (recorded on the patient's behalf unless this node
    /// is the patient's own).
    Grant(GrantArgs),
    /// Revoke a consent: it stays in the chart with status inactive and no
    /// longer permits anything.
    Revoke(RevokeArgs),
    /// Show a patient's consents: status, purposes, grantees, period, who
    /// recorded each, and whether its recorded-on-behalf mark is true.
    Show(ChartArgs),
    /// List a node as the patient's own (their phone), so consents it signs
    /// count as the patient's.
    LinkNode(LinkArgs),
}

/// The chart a consent command works on.
#[derive(Debug, clap::Args)]
pub struct ChartArgs {
    /// Network holding the chart: hex id or unique label.
    #[arg(long)]
    network: String,
    /// The patient's id.
    #[arg(long)]
    patient: String,
}

/// Whom a consent grants to.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct GranteeArgs {
    /// Grant to every node acting in this network (e.g. a study): a label or
    /// id this node knows, or a full network id.
    #[arg(long, value_name = "NETWORK")]
    to_network: Option<String>,
    /// Grant to one node: its full author id, or the name of a member of --network.
    #[arg(long, value_name = "NODE")]
    to_node: Option<String>,
}

/// Arguments of `consent grant`.
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    #[command(flatten)]
    chart: ChartArgs,
    /// The consent's resource id; granting again under the same id replaces it.
    #[arg(long, value_name = "ID")]
    consent_id: String,
    #[command(flatten)]
    grantee: GranteeArgs,
    /// Purpose granted: HRESCH (research), TREAT or CLMATTCH (claims); repeat for several.
    #[arg(long = "purpose", required = true, value_name = "CODE", value_parser = parse_purpose)]
    purposes: Vec<Purpose>,
    /// Resource type the grant covers (repeat; every type if none), e.g. Observation.
    #[arg(long = "class", value_name = "TYPE")]
    classes: Vec<String>,
    /// First day (UTC) or RFC 3339 instant of validity [default: always].
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Last day (UTC, inclusive) or RFC 3339 instant of validity [default: until revoked].
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Resource type withheld inside the grant (a nested deny; repeat), e.g. Condition.
    #[arg(long = "deny-class", value_name = "TYPE")]
    deny_classes: Vec<String>,
}

/// Arguments of `consent revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    chart: ChartArgs,
    /// The consent's resource id.
    #[arg(long, value_name = "ID")]
    consent_id: String,
}

/// Arguments of `consent link-node`.
#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    #[command(flatten)]
    chart: ChartArgs,
    /// The patient's node: its full author id, or the name of a member of --network.
    #[arg(long, value_name = "NODE")]
    node: String,
}

/// Run a `consent` subcommand.
pub fn run(context: &Context, command: Command) -> Result<ExitCode> {
    match command {
        Command::Grant(args) => grant(context, args),
        Command::Revoke(args) => revoke(context, args),
        Command::Show(args) => show(context, args),
        Command::LinkNode(args) => link_node(context, args),
    }
}

/// A grantee for people and scripts.
#[derive(Debug, Serialize)]
struct GranteeView {
    /// `network`, `node` or `other` (an actor careledger does not evaluate).
    kind: &'static str,
    /// The id (hex), if a careledger grantee.
    id: Option<String>,
    /// The network's label or the member's name, if this node knows it.
    name: Option<String>,
}

/// A provision's constraints, without its nested provisions.
#[derive(Debug, Serialize)]
struct RuleView {
    /// `permit` or `deny`.
    effect: &'static str,
    /// Purpose codes; empty means any.
    purposes: Vec<String>,
    /// Grantees; empty means anyone.
    grantees: Vec<GranteeView>,
    /// Resource types; empty means every type.
    classes: Vec<String>,
    /// First instant of validity (date or RFC 3339); `None` = always.
    from: Option<String>,
    /// Last instant of validity; `None` = until revoked.
    until: Option<String>,
    /// Nested provisions below this one.
    exceptions: Vec<RuleView>,
}

/// Who wrote a consent into the chart.
#[derive(Debug, Serialize)]
struct RecorderView {
    /// `patient_node` or `on_behalf`.
    kind: &'static str,
    /// The writing node's author id.
    node: String,
    /// Its name, if a current member.
    name: String,
}

/// One consent for people and scripts.
#[derive(Debug, Serialize)]
struct ConsentView {
    id: String,
    status: &'static str,
    scope: &'static str,
    /// The root rule and its exceptions.
    rule: RuleView,
    /// When the consent was given (`Consent.dateTime`).
    given: Option<String>,
    recorded_by: RecorderView,
    /// Whether the consent's recorded-on-behalf mark names its writer.
    mark_matches: bool,
    /// The resource as stored.
    fhir: Value,
}

struct Names<'a> {
    node: &'a mut Node,
    network: &'a NetworkId,
}

impl Names<'_> {
    fn grantee(&mut self, actor: &Actor) -> GranteeView {
        match actor {
            Actor::Grantee(Grantee::Network(id)) => GranteeView {
                kind: "network",
                id: Some(id.to_hex()),
                name: self
                    .node
                    .networks()
                    .ok()
                    .and_then(|all| all.into_iter().find(|n| n.id == *id))
                    .map(|n| n.label),
            },
            Actor::Grantee(Grantee::Node(author)) => GranteeView {
                kind: "node",
                id: Some(author.to_hex()),
                name: self
                    .node
                    .members(self.network)
                    .ok()
                    .and_then(|all| all.into_iter().find(|m| m.author == *author))
                    .map(|m| m.name),
            },
            Actor::Other(_) => GranteeView {
                kind: "other",
                id: None,
                name: None,
            },
        }
    }

    fn rule(&mut self, provision: &Provision) -> RuleView {
        RuleView {
            effect: provision.effect.code(),
            purposes: provision
                .purposes
                .iter()
                .map(|p| p.code().to_owned())
                .collect(),
            grantees: provision.actors.iter().map(|a| self.grantee(a)).collect(),
            classes: provision.classes.clone(),
            from: provision.period.start_ms.map(format_instant),
            until: provision.period.end_ms.map(format_instant),
            exceptions: provision.provisions.iter().map(|p| self.rule(p)).collect(),
        }
    }

    fn consent(&mut self, read: &PatientConsent) -> ConsentView {
        let consent = &read.consent;
        let (kind, author) = match &read.source {
            ConsentSource::PatientNode(author) => ("patient_node", author),
            ConsentSource::OnBehalf { recorder } => ("on_behalf", recorder),
        };
        ConsentView {
            id: consent.id().to_owned(),
            status: consent.status().code(),
            scope: consent.scope().code(),
            rule: self.rule(consent.provision()),
            given: consent.date_time_ms().map(format_instant),
            recorded_by: RecorderView {
                kind,
                node: author.to_hex(),
                name: node_name(self.node, self.network, author),
            },
            mark_matches: read.mark_matches,
            fhir: consent.to_fhir(),
        }
    }
}

fn grantee_text(grantee: &GranteeView) -> String {
    let id = grantee.id.as_deref().map(|id| short(id, 16));
    match (grantee.kind, &grantee.name, id) {
        (kind, Some(name), Some(id)) => format!("{kind} {name} ({id}…)"),
        (kind, None, Some(id)) => format!("{kind} {id}…"),
        _ => "an actor careledger does not evaluate (matches no request)".into(),
    }
}

/// `permit HRESCH, TREAT to network study (…) on Observation from … until …`.
/// A nested rule never covers more than its parent, so its empty
/// constraints are not spelled out as "every …".
fn rule_text(rule: &RuleView, nested: bool) -> String {
    let mut text = rule.effect.to_owned();
    if !rule.purposes.is_empty() {
        text.push_str(&format!(" {}", rule.purposes.join(", ")));
    } else if !nested {
        text.push_str(" every purpose");
    }
    if !rule.grantees.is_empty() {
        let grantees: Vec<String> = rule.grantees.iter().map(grantee_text).collect();
        text.push_str(&format!(" to {}", grantees.join(" or ")));
    }
    if !rule.classes.is_empty() {
        text.push_str(&format!(" on {}", rule.classes.join(", ")));
    } else if !nested {
        text.push_str(" on every resource type");
    }
    match (&rule.from, &rule.until) {
        (None, None) => {}
        (Some(from), None) => text.push_str(&format!(" from {from}")),
        (None, Some(until)) => text.push_str(&format!(" until {until}")),
        (Some(from), Some(until)) => text.push_str(&format!(" from {from} until {until}")),
    }
    text
}

fn print_consent(view: &ConsentView) -> Result<()> {
    outln!("consent {}: {} ({})", view.id, view.status, view.scope)?;
    outln!("  rule         {}", rule_text(&view.rule, false))?;
    let mut stack: Vec<(usize, &RuleView)> =
        view.rule.exceptions.iter().rev().map(|r| (1, r)).collect();
    while let Some((depth, rule)) = stack.pop() {
        outln!(
            "  {:<12} {}{}",
            "except",
            "  ".repeat(depth - 1),
            rule_text(rule, true)
        )?;
        stack.extend(rule.exceptions.iter().rev().map(|r| (depth + 1, r)));
    }
    if let Some(given) = &view.given {
        outln!("  given        {given}")?;
    }
    let recorder = &view.recorded_by;
    let who = match recorder.kind {
        "patient_node" => format!("the patient's own node ({})", recorder.name),
        _ => format!("recorded on behalf by {}", recorder.name),
    };
    outln!("  recorded by  {who}")?;
    outln!(
        "  mark         {}",
        if view.mark_matches {
            "ok (the consent says who recorded it truthfully)"
        } else {
            "MISMATCH: the recorded-on-behalf mark does not name the node that wrote the consent"
        }
    )?;
    Ok(())
}

/// Read one consent back from the chart, as every reader will see it.
fn read_back(node: &mut Node, network: &NetworkId, patient: &str, id: &str) -> Result<ConsentView> {
    let chart = node
        .consents(network, patient)
        .context("cannot read the chart's consents")?;
    let read = chart
        .consents
        .iter()
        .find(|c| c.consent.id() == id)
        .context("the consent just recorded does not read back from the chart")?;
    Ok(Names { node, network }.consent(read))
}

#[derive(Serialize)]
struct Recorded {
    network: String,
    patient: String,
    /// Whether a consent with this id was replaced (`grant`) or changed (`revoke`).
    changed: bool,
    consent: ConsentView,
}

fn grant(context: &Context, args: GrantArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.chart.network)?;
    let network = info.id;
    let grantee = match (&args.grantee.to_network, &args.grantee.to_node) {
        (Some(text), _) => Grantee::Network(resolve_grantee_network(&mut node, text)?),
        (None, Some(text)) => Grantee::Node(resolve_node(&mut node, &network, text)?),
        (None, None) => bail!("give the grantee: --to-network NETWORK or --to-node NODE"),
    };
    let start_ms = match &args.from {
        Some(text) => Some(parse_instant(text, Bound::Start).context("--from")?),
        None => None,
    };
    let end_ms = match &args.until {
        Some(text) => Some(parse_instant(text, Bound::End).context("--until")?),
        None => None,
    };
    let now = now_ms();
    let mut provision = Provision::permit().actor(grantee).during(Period {
        start_ms: start_ms.map(ms_i64),
        end_ms: end_ms.map(ms_i64),
    });
    provision.purposes = args.purposes;
    provision.classes = args.classes;
    if !args.deny_classes.is_empty() {
        provision = provision.except(Provision {
            classes: args.deny_classes,
            ..Provision::deny()
        });
    }
    let mut draft = ConsentDraft::new(&args.consent_id, &args.chart.patient, provision);
    draft.date_time_ms = Some(ms_i64(now));
    let consent = draft
        .build()
        .context("the consent is not valid FHIR as given")?;
    let existed = node
        .consents(&network, &args.chart.patient)
        .context("cannot read the patient's chart")?
        .consents
        .iter()
        .any(|c| c.consent.id() == args.consent_id);
    node.record_consent(&network, &consent, now)
        .with_context(|| format!("cannot record consent `{}`", args.consent_id))?;
    let view = read_back(&mut node, &network, &args.chart.patient, &args.consent_id)?;
    let recorded = Recorded {
        network: network.to_hex(),
        patient: args.chart.patient,
        changed: existed,
        consent: view,
    };
    if context.json {
        print_json(&recorded)?;
    } else {
        outln!(
            "{} consent {} in the chart of patient {} ({})",
            if existed { "replaced" } else { "recorded" },
            recorded.consent.id,
            recorded.patient,
            info.label
        )?;
        print_consent(&recorded.consent)?;
        outln!("run `careledger sync` to share it with the network")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn revoke(context: &Context, args: RevokeArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.chart.network)?;
    let network = info.id;
    let chart = node
        .consents(&network, &args.chart.patient)
        .context("cannot read the patient's chart")?;
    let Some(found) = chart
        .consents
        .iter()
        .find(|c| c.consent.id() == args.consent_id)
    else {
        if chart.unreadable.contains(&args.consent_id) {
            bail!(
                "consent `{}` cannot be read, so it cannot be revoked through careledger \
                 (it already permits nothing: the chart fails closed)",
                args.consent_id
            );
        }
        bail!(
            "the chart of patient {} has no consent `{}`; see `careledger consent show`",
            args.chart.patient,
            args.consent_id
        );
    };
    let changed = found.consent.status() != ConsentStatus::Inactive;
    if changed {
        node.record_consent(&network, &found.consent.revoked(), now_ms())
            .with_context(|| format!("cannot revoke consent `{}`", args.consent_id))?;
    }
    let view = read_back(&mut node, &network, &args.chart.patient, &args.consent_id)?;
    let recorded = Recorded {
        network: network.to_hex(),
        patient: args.chart.patient,
        changed,
        consent: view,
    };
    if context.json {
        print_json(&recorded)?;
    } else {
        if changed {
            outln!(
                "revoked consent {} of patient {} ({})",
                recorded.consent.id,
                recorded.patient,
                info.label
            )?;
        } else {
            outln!(
                "consent {} of patient {} was already revoked; nothing written",
                recorded.consent.id,
                recorded.patient
            )?;
        }
        print_consent(&recorded.consent)?;
        if changed {
            outln!("run `careledger sync`, then `careledger share` to cut off networks that relied on it")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Shown {
    network: String,
    patient: String,
    consents: Vec<ConsentView>,
    /// Ids of Consent resources that cannot be read (the chart fails closed).
    unreadable: Vec<String>,
}

fn show(context: &Context, args: ChartArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let network = info.id;
    let chart = node
        .consents(&network, &args.patient)
        .context("cannot read the patient's chart")?;
    let mut names = Names {
        node: &mut node,
        network: &network,
    };
    let shown = Shown {
        network: network.to_hex(),
        patient: args.patient,
        consents: chart.consents.iter().map(|c| names.consent(c)).collect(),
        unreadable: chart.unreadable,
    };
    if context.json {
        print_json(&shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    if shown.consents.is_empty() && shown.unreadable.is_empty() {
        outln!(
            "patient {} has no consent in {}: only treatment within the care network is allowed (the default)",
            shown.patient,
            info.label
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for (n, view) in shown.consents.iter().enumerate() {
        if n > 0 {
            outln!()?;
        }
        print_consent(view)?;
    }
    if !shown.unreadable.is_empty() {
        outln!(
            "{} Consent resource(s) cannot be read ({}): every use of this chart that needs consent is refused",
            shown.unreadable.len(),
            shown.unreadable.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Linked {
    network: String,
    patient: String,
    node: String,
    /// False if the node was already linked.
    linked: bool,
}

fn link_node(context: &Context, args: LinkArgs) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.chart.network)?;
    let network = info.id;
    let author = resolve_node(&mut node, &network, &args.node)?;
    let linked = node
        .link_patient_node(&network, &args.chart.patient, &author, now_ms())
        .context("cannot link the node to the patient's chart")?;
    let name = node_name(&mut node, &network, &author);
    let result = Linked {
        network: network.to_hex(),
        patient: args.chart.patient,
        node: author.to_hex(),
        linked,
    };
    if context.json {
        print_json(&result)?;
    } else if linked {
        outln!(
            "{name} is now listed as patient {}'s own node: consents it signs count as the patient's",
            result.patient
        )?;
        outln!("run `careledger sync` to share it with the network")?;
    } else {
        outln!(
            "{name} was already listed as patient {}'s own node; nothing written",
            result.patient
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
