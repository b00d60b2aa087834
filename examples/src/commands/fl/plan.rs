//! `careledger fl plan`: write a federated task's plan as its coordinator.
//!
//! The plan names the sites, the threshold of survivors every round needs,
//! the rounds, what is computed (feature statistics, or logistic regression
//! by FedAvg or by DP-SGD), and the privacy budget each site's dataset has
//! spent and would spend. A plan that would take any dataset above the
//! study's budget policy is refused before anything is written or read.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::analytics::dp::{noise_multiplier_for, DpParameters};
use careledger::analytics::secure_fl::{Objective, Plan, UpdateRule};
use careledger::node::{PlanRequest, ScalingSource};
use serde::Serialize;

use super::status::{budget_rows, resolve_round_card};
use crate::ai::{print_lines, SpecArgs};
use crate::context::{now_ms, resolve_member, resolve_network, Context};
use crate::output::print_json;

/// What a task computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectiveChoice {
    /// Pooled feature means and standard deviations (one round; not
    /// differentially private): the scaling of later tasks.
    Moments,
    /// Logistic regression by FedAvg (local gradient steps, not DP).
    Fedavg,
    /// Logistic regression by DP-SGD (per-record clipping, Gaussian noise).
    DpSgd,
}

/// Arguments of `fl plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
    /// The sites, comma-separated: member names or author-id prefixes.
    #[arg(long, value_delimiter = ',', required = true, value_name = "SITES")]
    sites: Vec<String>,
    /// What the task computes.
    #[arg(long, value_enum, default_value = "fedavg")]
    objective: ObjectiveChoice,
    #[command(flatten)]
    spec: SpecArgs,
    /// Rounds [default: 1 for moments, 20 for fedavg, 30 for dp-sgd].
    #[arg(long)]
    rounds: Option<u32>,
    /// Feature scaling: the last round card of a moments task (entry id or
    /// prefix). Required for logistic regression.
    #[arg(long, value_name = "CARD")]
    scaling_from: Option<String>,
    /// Survivors each round needs [default: more than half of the sites].
    #[arg(long)]
    threshold: Option<u32>,
    /// Step size [default: 0.5 for fedavg, 1.0 for dp-sgd].
    #[arg(long)]
    learning_rate: Option<f64>,
    /// FedAvg: gradient steps per round at each site.
    #[arg(long, default_value_t = 10)]
    local_steps: u32,
    /// L2 penalty on the weights.
    #[arg(long, default_value_t = 1e-3)]
    l2: f64,
    /// DP-SGD: the ε each site's dataset may spend in this task (the noise
    /// multiplier is chosen for it); or give --noise-multiplier.
    #[arg(long, conflicts_with = "noise_multiplier")]
    epsilon: Option<f64>,
    /// DP-SGD: the noise multiplier σ.
    #[arg(long)]
    noise_multiplier: Option<f64>,
    /// DP-SGD: per-record clipping norm C.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// DP-SGD: Poisson sampling rate q.
    #[arg(long, default_value_t = 1.0)]
    sampling_rate: f64,
    /// The δ budgets are stated at [default: the policy's, else 1e-5].
    #[arg(long)]
    delta: Option<f64>,
    /// Seconds the coordinator waits for a phase before going on without
    /// the sites that are missing.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    phase_timeout: f64,
}

#[derive(Serialize)]
struct Planned {
    study: String,
    plan_entry: String,
    plan: Plan,
}

/// Write the plan.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let spec = args.spec.load()?;
    let mut node = context.open_node()?;
    let study = resolve_network(&mut node, &args.study)?;
    let members = node.members(&study.id)?;
    let sites = args
        .sites
        .iter()
        .map(|s| resolve_member(&members, s))
        .collect::<Result<Vec<_>>>()?;
    let default_rounds = match args.objective {
        ObjectiveChoice::Moments => 1,
        ObjectiveChoice::Fedavg => 20,
        ObjectiveChoice::DpSgd => 30,
    };
    let rounds = args.rounds.unwrap_or(default_rounds);
    let delta = args
        .delta
        .or(node.fl_policy(&study.id)?.map(|p| p.delta))
        .unwrap_or(careledger::node::DEFAULT_DELTA);
    let objective = match args.objective {
        ObjectiveChoice::Moments => Objective::Moments,
        ObjectiveChoice::Fedavg => Objective::LogisticRegression {
            rule: UpdateRule::FedAvg {
                local_steps: args.local_steps,
                learning_rate: args.learning_rate.unwrap_or(0.5),
            },
            l2: args.l2,
        },
        ObjectiveChoice::DpSgd => {
            let noise_multiplier = match (args.noise_multiplier, args.epsilon) {
                (Some(sigma), _) => sigma,
                (None, Some(epsilon)) => {
                    noise_multiplier_for(&[], args.sampling_rate, u64::from(rounds), epsilon, delta)
                        .with_context(|| {
                            format!("no noise multiplier reaches ε = {epsilon} in {rounds} rounds")
                        })?
                }
                (None, None) => bail!("dp-sgd needs --epsilon or --noise-multiplier"),
            };
            Objective::LogisticRegression {
                rule: UpdateRule::DpSgd {
                    learning_rate: args.learning_rate.unwrap_or(1.0),
                    dp: DpParameters {
                        clip_norm: args.clip,
                        noise_multiplier,
                        sampling_rate: args.sampling_rate,
                    },
                },
                l2: args.l2,
            }
        }
    };
    let scaling = match (&args.scaling_from, args.objective) {
        (Some(card), _) => Some(ScalingSource::Moments(resolve_round_card(
            &mut node, &study.id, card,
        )?)),
        (None, ObjectiveChoice::Moments) => None,
        (None, _) => {
            bail!("logistic regression needs --scaling-from (the last card of a moments task)")
        }
    };
    if !(args.phase_timeout.is_finite() && args.phase_timeout > 0.0) {
        bail!("--phase-timeout must be a positive number of seconds");
    }
    let request = PlanRequest {
        threshold: args.threshold,
        scaling,
        delta: Some(delta),
        phase_timeout_ms: (args.phase_timeout * 1000.0) as u64,
        ..PlanRequest::new(objective, sites, rounds, spec)
    };
    let (entry, plan) = node
        .fl_plan(&study.id, &request, now_ms())
        .context("the plan was not written")?;
    let planned = Planned {
        study: study.id.to_hex(),
        plan_entry: entry.to_hex(),
        plan,
    };
    if context.json {
        print_json(&planned)?;
        return Ok(ExitCode::SUCCESS);
    }
    let plan = &planned.plan;
    outln!("planned task {} on {}", plan.task, study.label)?;
    let mut lines = vec![
        ("plan entry", planned.plan_entry.clone()),
        (
            "sites",
            plan.participants
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "threshold",
            format!(
                "{} of {} must survive each round",
                plan.threshold,
                plan.participants.len()
            ),
        ),
        ("rounds", plan.rounds.to_string()),
    ];
    if let Some(dp) = plan.dp() {
        lines.push((
            "privacy",
            format!(
                "DP-SGD: clip {}, noise multiplier {:.3}, sampling rate {}",
                dp.clip_norm, dp.noise_multiplier, dp.sampling_rate
            ),
        ));
    } else {
        lines.push((
            "privacy",
            "secure aggregation only (not differentially private)".into(),
        ));
    }
    print_lines(&lines)?;
    outln!("budget after this task, per site:")?;
    outln!("{}", budget_rows(&plan.projected))?;
    outln!(
        "run `careledger fl coordinate --study {}` to run it",
        study.label
    )?;
    Ok(ExitCode::SUCCESS)
}
