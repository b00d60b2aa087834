//! `careledger fl site | coordinate`: the loops a site and a coordinator
//! run while a task is under way. Each pass syncs the study through the
//! relay (a local relay file or NATS) and takes the next step the ledger
//! allows; the core decides everything, the loop only waits in between.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use careledger::node::{FlAction, NetworkInfo, Node};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::context::{now_ms, resolve_network, Context};
use crate::exchange::sync_network;
use crate::output::{multi_progress, print_json, short, spinner};

/// Arguments of `fl site`.
#[derive(Debug, clap::Args)]
pub struct SiteArgs {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
    /// This site's own network holding the records: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    source: String,
    /// Stop when this task (id or prefix) has ended [default: when every
    /// task naming this node that was open during the run has ended].
    #[arg(long, value_name = "TASK")]
    task: Option<String>,
    /// Milliseconds between passes.
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// Fault injection for tests: stop the process (exit 3) right after
    /// publishing this step, e.g. `masked:1` or `unmask:2`.
    #[arg(long, hide = true, value_name = "STEP:ROUND")]
    exit_after: Option<String>,
}

/// Arguments of `fl coordinate`.
#[derive(Debug, clap::Args)]
pub struct CoordinateArgs {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
    /// Stop when this task (id or prefix) has ended [default: when every
    /// task this node coordinates that was open during the run has ended].
    #[arg(long, value_name = "TASK")]
    task: Option<String>,
    /// Milliseconds between passes.
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
}

#[derive(Serialize)]
struct Ran {
    study: String,
    actions: Vec<FlAction>,
    seconds: f64,
}

fn describe(action: &FlAction) -> String {
    match action {
        FlAction::Keys { task, samples } => {
            format!("task {}: published keys ({samples} rows)", short(task, 8))
        }
        FlAction::Shares { task } => format!("task {}: published shares", short(task, 8)),
        FlAction::Masked { task, round } => {
            format!(
                "task {}: round {round}: published masked input",
                short(task, 8)
            )
        }
        FlAction::Unmask { task, round } => {
            format!("task {}: round {round}: revealed shares", short(task, 8))
        }
        FlAction::Survivors {
            task,
            round,
            survivors,
            dropped,
        } => format!(
            "task {}: round {round}: {survivors} survivor(s), {dropped} dropped",
            short(task, 8)
        ),
        FlAction::Card {
            task,
            round,
            last,
            completed,
            ..
        } => format!(
            "task {}: round {round} card{}{}",
            short(task, 8),
            if *completed { "" } else { " (aborted)" },
            if *last { ", task ended" } else { "" }
        ),
    }
}

fn matches_exit(exit_after: Option<&str>, action: &FlAction) -> bool {
    let Some(spec) = exit_after else {
        return false;
    };
    let (step, round) = spec.split_once(':').unwrap_or((spec, "0"));
    let round: u32 = round.parse().unwrap_or(0);
    match action {
        FlAction::Masked { round: r, .. } => step == "masked" && *r == round,
        FlAction::Unmask { round: r, .. } => step == "unmask" && *r == round,
        FlAction::Keys { .. } => step == "keys",
        FlAction::Shares { .. } => step == "shares",
        _ => false,
    }
}

/// The study's tasks that concern this node as site (`site == true`) or
/// coordinator, or only `task`: `(any open, any at all)`.
fn open_tasks(
    node: &Node,
    study: &NetworkInfo,
    site: bool,
    task: Option<&str>,
) -> Result<(bool, bool)> {
    let me = node.identity().name().to_owned();
    let tasks = node.fl_tasks(&study.id)?;
    let mine: Vec<_> = tasks
        .iter()
        .filter(|t| match task {
            Some(prefix) => t.task.starts_with(prefix),
            None if site => t.participants.contains(&me),
            None => t.coordinator == me,
        })
        .collect();
    Ok((mine.iter().any(|t| !t.finished), !mine.is_empty()))
}

fn run_loop(
    context: &Context,
    study_text: &str,
    task: Option<&str>,
    poll_ms: u64,
    max_seconds: u64,
    site: Option<(&str, Option<&str>)>,
) -> Result<ExitCode> {
    let task = task.map(|t| t.trim().to_ascii_lowercase());
    let mut node = context.open_node()?;
    let study = resolve_network(&mut node, study_text)?;
    let source = match site {
        Some((source, _)) => Some(resolve_network(&mut node, source)?),
        None => None,
    };
    let mut relay = context.open_relay(&node)?;
    let multi = multi_progress(context.quiet || context.json);
    let hidden = multi_progress(true);
    let bar: ProgressBar = spinner(
        &multi,
        format!(
            "{} on {}: waiting for a task",
            if source.is_some() {
                "site"
            } else {
                "coordinator"
            },
            study.label
        ),
    );
    let started = Instant::now();
    let mut actions = Vec::new();
    let mut seen_open = false;
    loop {
        sync_network(&mut node, relay.as_mut(), &study.id, &study.label, &hidden)?;
        let now = now_ms();
        let done = match &source {
            Some(source) => node.fl_site_step(&study.id, &source.id, now),
            None => node.fl_coordinator_step(&study.id, now),
        }
        .context("the federated step failed")?;
        let acted = !done.is_empty();
        for action in done {
            bar.set_message(describe(&action));
            if !context.json {
                multi.suspend(|| outln!("{}", describe(&action)))?;
            }
            let stop = matches!(site, Some((_, exit)) if matches_exit(exit, &action));
            actions.push(action);
            if stop {
                // Publish what was just written, then vanish mid-task.
                sync_network(&mut node, relay.as_mut(), &study.id, &study.label, &hidden)?;
                bar.finish_and_clear();
                if let Some(last) = actions.last() {
                    eprintln!("stopping after {} as --exit-after asked", describe(last));
                }
                std::process::exit(3);
            }
        }
        if acted {
            // Publish right away; the next pass may find more to do.
            sync_network(&mut node, relay.as_mut(), &study.id, &study.label, &hidden)?;
            continue;
        }
        let (open, any) = open_tasks(&node, &study, source.is_some(), task.as_deref())?;
        seen_open |= open;
        // A named task that already ended counts as done; otherwise wait
        // for a task to open and then to end.
        if !open && (seen_open || (task.is_some() && any)) {
            break;
        }
        if started.elapsed() > Duration::from_secs(max_seconds) {
            bar.finish_and_clear();
            bail!(
                "gave up after {max_seconds} s: {}",
                if seen_open {
                    "the task has not ended"
                } else {
                    "no open task names this node"
                }
            );
        }
        std::thread::sleep(Duration::from_millis(poll_ms));
    }
    bar.finish_and_clear();
    let ran = Ran {
        study: study.id.to_hex(),
        actions,
        seconds: started.elapsed().as_secs_f64(),
    };
    if context.json {
        print_json(&ran)?;
    } else {
        outln!(
            "every task on {} that names this node has ended ({} step(s) taken)",
            study.label,
            ran.actions.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Take part as a site until every task naming this node has ended.
pub fn site(context: &Context, args: SiteArgs) -> Result<ExitCode> {
    run_loop(
        context,
        &args.study,
        args.task.as_deref(),
        args.poll_ms,
        args.max_seconds,
        Some((&args.source, args.exit_after.as_deref())),
    )
}

/// Coordinate until every task this node planned has ended.
pub fn coordinate(context: &Context, args: CoordinateArgs) -> Result<ExitCode> {
    run_loop(
        context,
        &args.study,
        args.task.as_deref(),
        args.poll_ms,
        args.max_seconds,
        None,
    )
}
