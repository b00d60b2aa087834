//! `careledger network …`: create networks, invite, join, remove, list.
//!
//! Membership changes are MLS Commits that take effect only when they come
//! back first for their epoch in relay order, so `invite` and `remove` sync
//! right away and report the epoch the change produced.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::node::{MemberInfo, NetworkId, Node};
use careledger::sync::join_from_relay;
use clap::Subcommand;
use serde::Serialize;

use crate::context::{now_ms, resolve_member, resolve_network, Context};
use crate::exchange::{sync_until_committed, SyncSummary};
use crate::output::{align_right, multi_progress, print_json, short, table};

/// `network` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a network with this node as its only member.
    Create {
        /// A local label for the network (other nodes choose their own).
        label: String,
    },
    /// Invite the owner of a key package; syncs so the change takes effect.
    Invite {
        /// Network: hex id or unique label.
        network: String,
        /// The invitee's key package (from `careledger key-package`).
        #[arg(long, value_name = "FILE")]
        key_package: PathBuf,
    },
    /// Join a network from the Welcome an inviter left on the relay.
    Join {
        /// The network's hex id (as the inviter's `network list` shows it).
        network: String,
        /// Local label [default: `net-` and the first 8 hex digits of the id].
        #[arg(long)]
        label: Option<String>,
    },
    /// Remove a member; records are re-keyed so it cannot read anything written later.
    Remove {
        /// Network: hex id or unique label.
        network: String,
        /// Member name, or a prefix of its author id in hex.
        member: String,
    },
    /// List a network's current members.
    Members {
        /// Network: hex id or unique label.
        network: String,
    },
    /// List this node's networks.
    List,
}

#[derive(Clone, Serialize)]
struct Member {
    name: String,
    author: String,
    fingerprint: String,
    this_node: bool,
}

#[derive(Serialize)]
struct Network {
    id: String,
    label: String,
    epoch: u64,
    active: bool,
    commit_pending: bool,
    members: Option<usize>,
    patients: usize,
}

#[derive(Clone, Serialize)]
struct Membership {
    network: String,
    label: String,
    epoch: u64,
    members: Vec<Member>,
    /// Members added or removed by this command.
    changed: Vec<Member>,
    sync: Option<SyncSummary>,
}

/// Run a `network` subcommand.
pub fn run(context: &Context, command: Command) -> Result<ExitCode> {
    match command {
        Command::Create { label } => create(context, &label),
        Command::Invite {
            network,
            key_package,
        } => invite(context, &network, &key_package),
        Command::Join { network, label } => join(context, &network, label),
        Command::Remove { network, member } => remove(context, &network, &member),
        Command::Members { network } => members(context, &network),
        Command::List => list(context),
    }
}

fn member_rows(node: &Node, members: &[MemberInfo]) -> Vec<Member> {
    let me = node.identity().author_id();
    members
        .iter()
        .map(|m| Member {
            name: m.name.clone(),
            author: m.author.to_hex(),
            fingerprint: m.fingerprint.clone(),
            this_node: m.author == me,
        })
        .collect()
}

fn print_members(members: &[Member]) -> Result<()> {
    let mut table = table(["member", "author id", "fingerprint", ""]);
    for m in members {
        table.add_row([
            m.name.clone(),
            short(&m.author, 16),
            m.fingerprint.clone(),
            if m.this_node { "this node" } else { "" }.to_owned(),
        ]);
    }
    outln!("{table}")?;
    Ok(())
}

fn report(context: &Context, membership: &Membership, verb: &str) -> Result<ExitCode> {
    if context.json {
        print_json(membership)?;
        return Ok(ExitCode::SUCCESS);
    }
    for m in &membership.changed {
        outln!("{verb} {} (fingerprint {})", m.name, m.fingerprint)?;
    }
    outln!(
        "network {} ({}) is at epoch {} with {} member(s)",
        membership.label,
        membership.network,
        membership.epoch,
        membership.members.len()
    )?;
    print_members(&membership.members)?;
    if let Some(sync) = &membership.sync {
        super::sync::print_summary_line(sync)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn create(context: &Context, label: &str) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let network = node
        .create_network(label)
        .context("cannot create the network")?;
    let members = node.members(&network)?;
    let membership = Membership {
        network: network.to_hex(),
        label: label.to_owned(),
        epoch: node.epoch(&network)?,
        members: member_rows(&node, &members),
        changed: Vec::new(),
        sync: None,
    };
    if !context.json {
        outln!("created network {label}")?;
        outln!("  id {}", membership.network)?;
        outln!("Invite others with `careledger network invite {label} --key-package FILE`.")?;
        return Ok(ExitCode::SUCCESS);
    }
    report(context, &membership, "")
}

fn invite(context: &Context, network: &str, key_package: &std::path::Path) -> Result<ExitCode> {
    let key_package = std::fs::read(key_package)
        .with_context(|| format!("cannot read the key package {}", key_package.display()))?;
    let mut node = context.open_node()?;
    let mut relay = context.open_relay(&node)?;
    let info = resolve_network(&mut node, network)?;
    let before = node.members(&info.id)?;
    node.invite(&info.id, &key_package)
        .context("cannot invite the key package's owner")?;
    let progress = multi_progress(context.quiet);
    let sync = sync_until_committed(&mut node, relay.as_mut(), &info.id, &info.label, &progress)?;
    membership_after(&mut node, &info.id, &info.label, &before, sync)
        .and_then(|m| report(context, &m, "invited"))
}

fn remove(context: &Context, network: &str, member: &str) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let mut relay = context.open_relay(&node)?;
    let info = resolve_network(&mut node, network)?;
    let before = node.members(&info.id)?;
    let author = resolve_member(&before, member)?;
    if author == node.identity().author_id() {
        anyhow::bail!("a node cannot remove itself here; ask another member to remove it");
    }
    node.remove(&info.id, &author)
        .context("cannot remove the member")?;
    let progress = multi_progress(context.quiet);
    let sync = sync_until_committed(&mut node, relay.as_mut(), &info.id, &info.label, &progress)?;
    membership_after(&mut node, &info.id, &info.label, &before, sync)
        .and_then(|m| report(context, &m, "removed"))
}

/// The membership after a change, with the members that changed.
fn membership_after(
    node: &mut Node,
    network: &NetworkId,
    label: &str,
    before: &[MemberInfo],
    sync: SyncSummary,
) -> Result<Membership> {
    let after = node.members(network)?;
    let changed: Vec<MemberInfo> = after
        .iter()
        .filter(|m| !before.iter().any(|b| b.author == m.author))
        .chain(
            before
                .iter()
                .filter(|b| !after.iter().any(|m| m.author == b.author)),
        )
        .cloned()
        .collect();
    Ok(Membership {
        network: network.to_hex(),
        label: label.to_owned(),
        epoch: node.epoch(network)?,
        members: member_rows(node, &after),
        changed: member_rows(node, &changed),
        sync: Some(sync),
    })
}

fn join(context: &Context, network: &str, label: Option<String>) -> Result<ExitCode> {
    let id = NetworkId::from_hex(network).with_context(|| {
        format!("`{network}` is not a network id: joining needs the hex id the inviter sees")
    })?;
    let label = label.unwrap_or_else(|| format!("net-{}", short(&id.to_hex(), 8)));
    let mut node = context.open_node()?;
    let mut relay = context.open_relay(&node)?;
    let started = std::time::Instant::now();
    let report = join_from_relay(&mut node, relay.as_mut(), &id, &label, now_ms()).context(
        "cannot join the network: has the inviter synced since inviting this node's key package?",
    )?;
    let mut sync = SyncSummary::new(&id, &label);
    sync.add(&report);
    sync.seconds = started.elapsed().as_secs_f64();
    let members = node.members(&id)?;
    let me = node.identity().author_id();
    let membership = Membership {
        network: id.to_hex(),
        label: label.clone(),
        epoch: node.epoch(&id)?,
        changed: member_rows(&node, &members)
            .into_iter()
            .filter(|m| m.author == me.to_hex())
            .collect(),
        members: member_rows(&node, &members),
        sync: Some(sync),
    };
    report_join(context, &membership)
}

fn report_join(context: &Context, membership: &Membership) -> Result<ExitCode> {
    if !context.json {
        outln!(
            "joined network {} as `{}`",
            membership.network,
            membership.label
        )?;
    }
    let quiet = Membership {
        changed: Vec::new(),
        ..membership.clone()
    };
    report(context, if context.json { membership } else { &quiet }, "")
}

fn members(context: &Context, network: &str) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, network)?;
    let members = node.members(&info.id)?;
    let rows = member_rows(&node, &members);
    if context.json {
        print_json(&rows)?;
    } else {
        if !info.active {
            outln!(
                "this node was removed from {}; members as of epoch {}",
                info.label,
                info.epoch
            )?;
        }
        print_members(&rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list(context: &Context) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let mut rows = Vec::new();
    for info in node.networks()? {
        let members = if info.active {
            Some(node.members(&info.id)?.len())
        } else {
            None
        };
        rows.push(Network {
            id: info.id.to_hex(),
            label: info.label.clone(),
            epoch: info.epoch,
            active: info.active,
            commit_pending: info.commit_pending,
            members,
            patients: node.patients(&info.id)?.len(),
        });
    }
    if context.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!(
            "no networks yet: `careledger network create LABEL` or `careledger network join ID`"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table(["label", "id", "epoch", "state", "members", "patients"]);
    for n in &rows {
        let state = match (n.active, n.commit_pending) {
            (false, _) => "removed",
            (true, true) => "commit pending",
            (true, false) => "active",
        };
        table.add_row([
            n.label.clone(),
            n.id.clone(),
            n.epoch.to_string(),
            state.to_owned(),
            n.members
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-".into()),
            n.patients.to_string(),
        ]);
    }
    align_right(&mut table, &[2, 4, 5]);
    outln!("{table}")?;
    Ok(ExitCode::SUCCESS)
}
