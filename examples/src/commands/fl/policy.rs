//! `careledger fl policy`: the study's privacy-budget policy. Every member
//! may write one; the study's effective policy is the strictest of every
//! member's latest, so a member can tighten the budget for everyone's data.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use careledger::analytics::dp::BudgetPolicy;
use serde::Serialize;

use crate::ai::print_lines;
use crate::context::{now_ms, resolve_network, Context};
use crate::output::print_json;

/// Arguments of `fl policy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The study network: hex id or unique label.
    #[arg(long, value_name = "NETWORK")]
    study: String,
    /// Set this node's policy: the largest ε any site's dataset may reach.
    #[arg(long, value_name = "EPSILON")]
    max_epsilon: Option<f64>,
    /// The δ the budget is stated at (with --max-epsilon).
    #[arg(long, default_value_t = 1e-5, requires = "max_epsilon")]
    delta: f64,
    /// Refuse tasks without differential privacy (feature statistics,
    /// plain secure aggregation) in this study (with --max-epsilon).
    #[arg(long, requires = "max_epsilon")]
    refuse_non_private: bool,
}

#[derive(Serialize)]
struct Shown {
    study: String,
    written: Option<String>,
    policy: Option<BudgetPolicy>,
}

/// Set (with --max-epsilon) and show the policy.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut node = context.open_node()?;
    let study = resolve_network(&mut node, &args.study)?;
    let written = match args.max_epsilon {
        Some(max_epsilon) => {
            let policy = BudgetPolicy {
                max_epsilon,
                delta: args.delta,
                allow_non_private: !args.refuse_non_private,
            };
            Some(
                node.fl_set_policy(&study.id, policy, now_ms())
                    .context("cannot write the budget policy")?
                    .to_hex(),
            )
        }
        None => None,
    };
    let shown = Shown {
        study: study.id.to_hex(),
        written,
        policy: node.fl_policy(&study.id)?,
    };
    if context.json {
        print_json(&shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(entry) = &shown.written {
        outln!("wrote this node's budget policy to {} (entry {entry}); run `careledger sync` to publish it", study.label)?;
    }
    match &shown.policy {
        None => outln!(
            "{} has no budget policy: tasks are not limited",
            study.label
        )?,
        Some(policy) => print_lines(&[
            (
                "effective policy",
                "the strictest of every member's latest".into(),
            ),
            ("max ε per dataset", format!("{}", policy.max_epsilon)),
            ("δ", format!("{:e}", policy.delta)),
            (
                "non-private tasks",
                if policy.allow_non_private {
                    "allowed".into()
                } else {
                    "refused".into()
                },
            ),
        ])?,
    }
    Ok(ExitCode::SUCCESS)
}
