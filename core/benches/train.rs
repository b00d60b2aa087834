//! Training: careledger's [`train`] (linfa underneath) against scikit-learn on
//! the same rows, in the same run.
//!
//! Two datasets: the breast-cancer CSV (569 rows × 30, fixed split: 426
//! train, 143 test) and 100,000 × 30 synthetic rows (generated from a fixed
//! seed, written to a temporary CSV that both sides read; every fifth row is
//! held out). Timed on both sides: standard scaling fitted on the training
//! rows plus the fit. Logistic regression is `C = 1` / `alpha = 1`, tolerance
//! 1e-4 on the mean-loss gradient, 100 iterations; k-means is k-means++ with
//! one initialisation, k = 8, 300 iterations, stopping when centroids move
//! less than 0.01 (L2 over all coordinates; scikit-learn's `tol = 1e-4`
//! on standardised data is the same rule, squared).
//!
//! The scikit-learn side is `core/benches/train_sklearn.py`, run with
//! `python3` (override with `CARELEDGER_PYTHON`); without scikit-learn it is
//! skipped with a message. It times each fit with its default threading and
//! with one thread; the ratio is against the faster of the two. A third
//! line times linfa's logistic regression called the plain way (row-major
//! data, its absolute gradient tolerance 1e-4 on the summed loss) to show
//! what [`train`]'s configuration gains. The ratios print at the end; the
//! careledger fits are then registered with criterion.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use careledger::analytics::example_data::BreastCancerData;
use careledger::analytics::{evaluate, train, Dataset, Metrics, ModelKind};
use criterion::{Criterion, SamplingMode};
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

mod common;
use common::{median, ms, ratio_row, Goal};

const SYNTHETIC_ROWS: usize = 100_000;
const COLUMNS: usize = 30;
const K: u32 = 8;
const KMEANS_TOLERANCE: f64 = 0.01;
const TARGET_RATIO: f64 = 2.0;

fn logistic() -> ModelKind {
    ModelKind::logistic_regression()
}

fn k_means() -> ModelKind {
    ModelKind::KMeans {
        k: K,
        max_iterations: 300,
        tolerance: KMEANS_TOLERANCE,
        n_runs: 1,
    }
}

/// One dataset as both sides see it.
struct Case {
    name: &'static str,
    csv: String,
    test_idx: String,
    train: Dataset,
    test: Dataset,
    reps: usize,
}

fn case(name: &'static str, csv: String, test_idx: String, reps: usize) -> Case {
    let data = BreastCancerData::parse(&std::fs::read_to_string(&csv).expect("csv")).expect("csv");
    let held_out: std::collections::BTreeSet<usize> = std::fs::read_to_string(&test_idx)
        .expect("test idx")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let (test_rows, train_rows): (Vec<usize>, Vec<usize>) =
        (0..data.len()).partition(|r| held_out.contains(r));
    let pick = |rows: &[usize]| {
        Dataset::from_arrays(
            data.features().select(Axis(0), rows),
            Some(data.targets().select(Axis(0), rows)),
            [0; 32],
        )
        .expect("dataset")
    };
    Case {
        name,
        train: pick(&train_rows),
        test: pick(&test_rows),
        csv,
        test_idx,
        reps,
    }
}

/// 100,000 × 30 rows: correlated features on different scales, labels from a
/// noisy logistic model. Written as CSV with its held-out index file.
fn synthetic(dir: &Path) -> (String, String) {
    let mut rng = ChaCha20Rng::seed_from_u64(20_251_124);
    let mut normal = move || {
        // Box–Muller.
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let beta: Vec<f64> = (0..COLUMNS).map(|_| normal() * 0.5).collect();
    let scale: Vec<f64> = (0..COLUMNS).map(|j| 10f64.powi(j as i32 % 4 - 1)).collect();
    let mut x = Array2::zeros((SYNTHETIC_ROWS, COLUMNS));
    let mut y = Array1::zeros(SYNTHETIC_ROWS);
    for i in 0..SYNTHETIC_ROWS {
        let shared = normal();
        let mut logit = 0.0;
        for j in 0..COLUMNS {
            let z = 0.6 * normal() + 0.4 * shared;
            logit += beta[j] * z;
            x[[i, j]] = z * scale[j] + j as f64;
        }
        let noise = normal();
        y[i] = if logit + noise > 0.0 { 1.0 } else { 0.0 };
    }
    let csv = dir.join("synthetic.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).expect("csv"));
    let header: Vec<String> = (0..COLUMNS).map(|j| format!("f{j}")).collect();
    writeln!(out, "{},target", header.join(",")).expect("write");
    for (row, target) in x.outer_iter().zip(&y) {
        let fields: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        writeln!(out, "{},{target}", fields.join(",")).expect("write");
    }
    out.flush().expect("flush");
    let idx = dir.join("synthetic_test_idx.txt");
    let held_out: Vec<String> = (0..SYNTHETIC_ROWS)
        .step_by(5)
        .map(|i| i.to_string())
        .collect();
    std::fs::write(&idx, held_out.join("\n")).expect("idx");
    (
        csv.to_string_lossy().into_owned(),
        idx.to_string_lossy().into_owned(),
    )
}

struct Ours {
    plain_linfa: Duration,
    logistic: Duration,
    accuracy: f64,
    kmeans: Duration,
    inertia_per_row: f64,
}

/// linfa's logistic regression as a straightforward call makes it: the
/// same standardisation, row-major data, `gradient_tolerance(1e-4)` on
/// linfa's summed loss, 100 iterations (it may stop at the limit).
fn plain_linfa(train: &Dataset) {
    use linfa::prelude::*;
    let x = train.features();
    let n = x.nrows() as f64;
    let mean = x.sum_axis(Axis(0)) / n;
    let std = x
        .map_axis(Axis(0), |c| {
            let m = c.sum() / n;
            (c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt()
        })
        .mapv(|s| if s > 0.0 { s } else { 1.0 });
    let z = (&x - &mean) / &std;
    let y = train.targets().expect("targets").mapv(|t| t as usize);
    let fitted = linfa_logistic::LogisticRegression::default()
        .alpha(1.0)
        .max_iterations(100)
        .gradient_tolerance(1e-4)
        .fit(&linfa::DatasetBase::new(z, y))
        .expect("linfa fit");
    black_box(fitted);
}

fn time_ours(case: &Case) -> Ours {
    let mut plain_times = Vec::new();
    let mut logistic_times = Vec::new();
    let mut kmeans_times = Vec::new();
    let mut accuracy = f64::NAN;
    let mut inertia_per_row = f64::NAN;
    let mut logistic_model = None;
    let mut kmeans_model = None;
    for _ in 0..case.reps {
        let start = Instant::now();
        plain_linfa(&case.train);
        plain_times.push(start.elapsed());

        let start = Instant::now();
        logistic_model = Some(train(&logistic(), &case.train, 0).expect("logistic"));
        logistic_times.push(start.elapsed());

        let start = Instant::now();
        kmeans_model = Some(train(&k_means(), &case.train, 0).expect("k-means"));
        kmeans_times.push(start.elapsed());
    }
    if let Some(Ok(Metrics::Classification(m))) =
        logistic_model.map(|model| evaluate(&model, &case.test))
    {
        accuracy = m.accuracy;
    }
    if let Some(Ok(Metrics::Clustering(m))) =
        kmeans_model.map(|model| evaluate(&model, &case.train))
    {
        inertia_per_row = m.inertia / m.rows.max(1) as f64;
    }
    Ours {
        plain_linfa: median(plain_times),
        logistic: median(logistic_times),
        accuracy,
        kmeans: median(kmeans_times),
        inertia_per_row,
    }
}

/// scikit-learn's figures, or why there are none.
fn time_sklearn(case: &Case) -> Result<serde_json::Value, String> {
    let python = std::env::var("CARELEDGER_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/train_sklearn.py");
    let output = Command::new(&python)
        .args([
            script,
            &case.csv,
            &case.test_idx,
            &case.reps.to_string(),
            &K.to_string(),
            &(KMEANS_TOLERANCE * KMEANS_TOLERANCE).to_string(),
        ])
        .output()
        .map_err(|e| format!("{python} not runnable ({e})"))?;
    if !output.status.success() {
        return Err(format!(
            "{} (pip install scikit-learn)",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("unreadable output: {e}"))
}

fn report(case: &Case, ours: &Ours, sklearn: &Result<serde_json::Value, String>) {
    eprintln!();
    eprintln!(
        "TRAIN {} ({} train rows × {COLUMNS}, {} test rows, median of {}):",
        case.name,
        case.train.len(),
        case.test.len(),
        case.reps
    );
    match sklearn {
        Ok(sk) => {
            let seconds = |model: &str| sk[model]["median_s"].as_f64().unwrap_or(f64::NAN);
            let threads = |model: &str| {
                format!(
                    "default threads {:.1} ms, one thread {:.1} ms",
                    sk[model]["default_threads_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
                    sk[model]["one_thread_s"].as_f64().unwrap_or(f64::NAN) * 1e3
                )
            };
            let (sk_log, sk_km) = (seconds("logistic"), seconds("kmeans"));
            let log_ratio = ours.logistic.as_secs_f64() / sk_log;
            let km_ratio = ours.kmeans.as_secs_f64() / sk_km;
            eprintln!(
                "  logistic regression: careledger {:.1} ms (test accuracy {:.4}), scikit-learn {} {:.1} ms \
                 (accuracy {:.4}, {} iterations; {}): ratio {log_ratio:.2} (target <= {TARGET_RATIO:.1}: {})",
                ms(ours.logistic),
                ours.accuracy,
                sk["sklearn"].as_str().unwrap_or("?"),
                sk_log * 1e3,
                sk["logistic"]["accuracy"].as_f64().unwrap_or(f64::NAN),
                sk["logistic"]["n_iter"],
                threads("logistic"),
                if log_ratio <= TARGET_RATIO { "met" } else { "MISSED" },
            );
            ratio_row(
                "train",
                &format!("train logistic regression, {} vs scikit-learn", case.name),
                &format!("{:.1} ms", ms(ours.logistic)),
                &format!("{:.1} ms", sk_log * 1e3),
                log_ratio,
                Goal::AtMost(TARGET_RATIO),
            );
            ratio_row(
                "train",
                &format!("train k-means k={K}, {} vs scikit-learn", case.name),
                &format!("{:.1} ms", ms(ours.kmeans)),
                &format!("{:.1} ms", sk_km * 1e3),
                km_ratio,
                Goal::AtMost(TARGET_RATIO),
            );
            eprintln!(
                "  (linfa logistic regression called plainly: {:.1} ms, ratio {:.2})",
                ms(ours.plain_linfa),
                ours.plain_linfa.as_secs_f64() / sk_log
            );
            eprintln!(
                "  k-means k={K}: careledger {:.1} ms (inertia/row {:.3}), scikit-learn {:.1} ms \
                 (inertia/row {:.3}, {} iterations; {}): ratio {km_ratio:.2} (target <= {TARGET_RATIO:.1}: {})",
                ms(ours.kmeans),
                ours.inertia_per_row,
                sk_km * 1e3,
                sk["kmeans"]["inertia_per_row"].as_f64().unwrap_or(f64::NAN),
                sk["kmeans"]["n_iter"],
                threads("kmeans"),
                if km_ratio <= TARGET_RATIO { "met" } else { "MISSED" },
            );
        }
        Err(why) => {
            eprintln!(
                "  logistic regression: careledger {:.1} ms (test accuracy {:.4}); k-means: careledger {:.1} ms",
                ms(ours.logistic),
                ours.accuracy,
                ms(ours.kmeans)
            );
            eprintln!("  scikit-learn side skipped: {why}");
        }
    }
}

fn register(c: &mut Criterion, case: &Case, ours: &Ours) {
    let mut group = c.benchmark_group(format!("train_{}", case.name));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    group.measurement_time(ours.logistic * 12);
    group.bench_function("logistic_regression", |b| {
        b.iter(|| black_box(train(&logistic(), &case.train, 0).expect("train")))
    });
    group.measurement_time(ours.kmeans * 12);
    group.bench_function("k_means", |b| {
        b.iter(|| black_box(train(&k_means(), &case.train, 0).expect("train")))
    });
    group.finish();
}

fn main() {
    let started = Instant::now();
    let data_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/ml/");
    let tmp = tempfile::tempdir().expect("temp dir");
    let (csv, idx) = synthetic(tmp.path());
    let cases = [
        case(
            "breast_cancer_569",
            format!("{data_dir}breast_cancer.csv"),
            format!("{data_dir}breast_cancer_split_test_idx.txt"),
            15,
        ),
        case("synthetic_100k", csv, idx, 5),
    ];
    let measured: Vec<(Ours, Result<serde_json::Value, String>)> = cases
        .iter()
        .map(|case| (time_ours(case), time_sklearn(case)))
        .collect();

    let mut criterion = Criterion::default().configure_from_args();
    for (case, (ours, _)) in cases.iter().zip(&measured) {
        register(&mut criterion, case, ours);
    }
    criterion.final_summary();

    for (case, (ours, sklearn)) in cases.iter().zip(&measured) {
        report(case, ours, sklearn);
    }
    eprintln!("TRAIN bench took {:.1} s", started.elapsed().as_secs_f64());
}
