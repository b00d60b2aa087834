//! `careledger fl sweep`: test accuracy against ε for federated logistic
//! regression on the built-in breast-cancer example, split over sites by a
//! feature (non-IID), with the secure-aggregation protocol run in memory
//! (the same computations as on the ledger, without one). Writes the
//! accuracy-versus-ε plot as SVG or PNG.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use careledger::analytics::secure_fl::simulation::{accuracy_sweep, SweepPoint, SweepSettings};
use careledger::analytics::secure_fl::LocalData;
use careledger::analytics::Dataset;
use serde::Serialize;

use crate::ai::{breast_cancer, breast_cancer_test_ids};
use crate::context::Context;
use crate::output::{align_right, multi_progress, print_json, steps_bar, table};
use crate::plots::write_accuracy_vs_epsilon;

/// Arguments of `fl sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ε values to train at (δ fixed by --delta).
    #[arg(long, value_delimiter = ',', default_value = "1,3,8")]
    epsilons: Vec<f64>,
    /// Sites the training rows are split over.
    #[arg(long, default_value_t = 3)]
    sites: usize,
    /// The feature (CSV column name) whose quantiles split the rows.
    #[arg(long, default_value = "mean radius")]
    split_by: String,
    /// DP-SGD rounds.
    #[arg(long, default_value_t = 30)]
    rounds: u32,
    /// Poisson sampling rate.
    #[arg(long, default_value_t = 1.0)]
    sampling_rate: f64,
    /// Per-record clipping norm.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Seeds per ε.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// δ.
    #[arg(long, default_value_t = 1e-5)]
    delta: f64,
    /// Write the accuracy-versus-ε plot here (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

#[derive(Serialize)]
struct Swept {
    sites: Vec<usize>,
    split_by: String,
    rounds: u32,
    delta: f64,
    points: Vec<SweepPoint>,
}

/// Run the sweep.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    if args.sites < 2 || args.sites > 50 {
        bail!("--sites must be 2 to 50");
    }
    if args.epsilons.iter().any(|e| !(e.is_finite() && *e > 0.0)) {
        bail!("every ε must be a positive number");
    }
    let data = breast_cancer()?;
    let column = data
        .columns()
        .iter()
        .position(|c| *c == args.split_by)
        .with_context(|| format!("the example has no column `{}`", args.split_by))?;
    let test_ids = breast_cancer_test_ids()?;
    let test: Vec<usize> = test_ids
        .iter()
        .filter_map(|id| careledger::analytics::example_data::BreastCancerData::row_of(id))
        .collect();
    let train: Vec<usize> = (0..data.len()).filter(|r| !test.contains(r)).collect();
    let groups = data.split_by_feature(&train, column, args.sites);
    let sites = groups
        .iter()
        .map(|rows| {
            LocalData::new(
                rows.iter()
                    .map(|&r| data.features().row(r).to_vec())
                    .collect(),
                rows.iter().map(|&r| data.targets()[r]).collect(),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .context("a site has no rows; use fewer --sites")?;
    let test_set = Dataset::from_arrays(
        data.features().select(ndarray::Axis(0), &test),
        Some(data.targets().select(ndarray::Axis(0), &test)),
        data.spec().hash(),
    )?;
    let settings = SweepSettings {
        rounds: args.rounds,
        sampling_rate: args.sampling_rate,
        clip_norm: args.clip,
        seeds: args.seeds.max(1),
        delta: args.delta,
        ..SweepSettings::default()
    };
    let multi = multi_progress(context.quiet || context.json);
    let total = 1 + args.epsilons.len() as u64 * settings.seeds;
    let bar = steps_bar(&multi, total, "trainings");
    let points = accuracy_sweep(
        &data.spec(),
        &sites,
        &test_set,
        &args.epsilons,
        &settings,
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    if let Some(path) = &args.plot {
        let series: Vec<(f64, f64, f64, f64)> = points
            .iter()
            .filter_map(|p| {
                let eps = p.epsilon?;
                let low = p.accuracies.iter().copied().fold(1.0, f64::min);
                let high = p.accuracies.iter().copied().fold(0.0, f64::max);
                Some((eps, p.mean(), low, high))
            })
            .collect();
        let reference = points
            .iter()
            .find(|p| p.epsilon.is_none())
            .map(SweepPoint::mean);
        write_accuracy_vs_epsilon(
            path,
            &format!("{} non-IID sites, breast cancer", args.sites),
            &series,
            reference,
        )?;
    }
    let swept = Swept {
        sites: groups.iter().map(Vec::len).collect(),
        split_by: args.split_by,
        rounds: args.rounds,
        delta: args.delta,
        points,
    };
    if context.json {
        print_json(&swept)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "federated logistic regression over {} sites split by `{}` ({} training rows each), test split of {} rows",
        swept.sites.len(),
        swept.split_by,
        swept.sites.iter().map(ToString::to_string).collect::<Vec<_>>().join("/"),
        test.len()
    )?;
    let mut t = table([
        "ε",
        "noise multiplier",
        "mean accuracy",
        "lowest",
        "highest",
        "seeds",
    ]);
    for p in &swept.points {
        let low = p.accuracies.iter().copied().fold(1.0, f64::min);
        let high = p.accuracies.iter().copied().fold(0.0, f64::max);
        t.add_row([
            p.epsilon
                .map(|e| format!("{e}"))
                .unwrap_or_else(|| "no DP".into()),
            p.noise_multiplier
                .map(|s| format!("{s:.3}"))
                .unwrap_or_else(|| "-".into()),
            format!("{:.4}", p.mean()),
            format!("{low:.4}"),
            format!("{high:.4}"),
            p.accuracies.len().to_string(),
        ]);
    }
    align_right(&mut t, &[0, 1, 2, 3, 4, 5]);
    outln!("{t}")?;
    if let Some(path) = &args.plot {
        outln!("plot written to {}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
