//! Training: standardise on the training rows, fit with linfa, check the
//! result, and keep the parameters in this library's own format.
//!
//! Determinism: the scaler sums rows in order; linfa's logistic regression,
//! linear regression and tree fits are sequential; k-means++ draws from a
//! `Xoshiro256Plus` seeded with the caller's seed, and its assignment step
//! (parallel over rows on rayon's pool, through ndarray) writes each row's
//! result independently, so the thread count does not change any number.
//! Training twice on the same dataset gives byte-identical model files.
//!
//! Across platforms, bit-identity is not promised: ndarray's matrix
//! products go through `matrixmultiply`, which picks an FMA, AVX, SSE2 or
//! NEON kernel at run time, and `exp`/`ln` come from the platform's libm.
//! Two machines of the same kind (OS and CPU family) agree bit for bit; a
//! phone and a server may differ in the last bits of logistic-regression
//! parameters (and so in the model hash). Federated averaging is plain
//! IEEE arithmetic and agrees everywhere.
//!
//! Threads: linfa-clustering's k-means runs its assignment step with
//! `par_for_each` on rayon's global pool (ndarray's `rayon` feature, which
//! linfa-clustering turns on), so [`ModelKind::KMeans`] training is the one
//! place this crate uses threads other than the caller's. The other kinds
//! run on the calling thread.

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use linfa_logistic::LogisticRegression;
use linfa_nn::distance::{Distance, L2Dist};
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2, ArrayView, ArrayView1, ArrayView2, Dimension, ShapeBuilder};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use std::sync::{Arc, Mutex};

use super::dataset::Dataset;
use super::model::{
    leaf_of, nearest_centroid, sigmoid, LinearParams, ModelKind, ModelOrigin, ModelParams,
    StandardScaler, TrainedModel, TreeNode, MAX_TREE_DEPTH,
};

/// Extra weight of a class-1 row in a tree fit. linfa picks a node's class
/// with a fold over a `HashMap` of class weights, so on an exact tie the
/// winner depends on hash order, which changes from run to run; with this
/// weight two classes tie only in nodes holding thousands of rows in an
/// exact 4096:4097 ratio.
const TREE_TIE_BREAK: f32 = 1.0 / 4096.0;

/// Training failed. No variant carries a value from the data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainModelError {
    /// A hyperparameter breaks its rule.
    #[error("hyperparameter {name}: {rule}")]
    InvalidHyperparameter {
        /// Its name.
        name: &'static str,
        /// The rule.
        rule: &'static str,
    },
    /// The dataset has no row.
    #[error("dataset is empty")]
    EmptyDataset,
    /// A supervised model was given a dataset without targets (a spec without label).
    #[error("{model} needs targets; the dataset has none")]
    MissingTargets {
        /// The model kind's name.
        model: &'static str,
    },
    /// A classifier's target is not 0 or 1.
    #[error("row {row}: a classifier's target must be 0 or 1")]
    TargetNotBinary {
        /// The first such row.
        row: usize,
    },
    /// A classifier's targets hold one class only.
    #[error("targets hold a single class; a classifier needs both 0 and 1")]
    SingleClass,
    /// Fewer rows than the model needs (k-means: k).
    #[error("{needed} rows needed, {found} given")]
    TooFewRows {
        /// Rows needed.
        needed: usize,
        /// Rows given.
        found: usize,
    },
    /// The fit stopped before meeting its tolerance: for logistic regression
    /// `residual` is the L2 norm of the mean-loss gradient at the result;
    /// for k-means the centroid shift of the last iteration of a run that
    /// reached `max_iterations`.
    #[error("fit did not converge (residual {residual:e} above tolerance {tolerance:e})")]
    NotConverged {
        /// How far from converged.
        residual: f64,
        /// The tolerance asked for.
        tolerance: f64,
    },
    /// The fit produced NaN or infinite parameters.
    #[error("fit produced non-finite parameters")]
    NonFiniteParameters,
    /// linfa refused the fit (its message names shapes and rules, not data).
    #[error("linfa: {reason}")]
    Fit {
        /// linfa's error text.
        reason: String,
    },
}

fn fit_error(e: impl std::fmt::Display) -> TrainModelError {
    TrainModelError::Fit {
        reason: e.to_string(),
    }
}

fn invalid(name: &'static str, rule: &'static str) -> TrainModelError {
    TrainModelError::InvalidHyperparameter { name, rule }
}

fn check_hyperparameters(kind: &ModelKind) -> Result<(), TrainModelError> {
    match *kind {
        ModelKind::LogisticRegression {
            alpha,
            max_iterations,
            gradient_tolerance,
        } => {
            if !alpha.is_finite() || alpha < 0.0 {
                return Err(invalid("alpha", "must be finite and >= 0"));
            }
            if max_iterations == 0 {
                return Err(invalid("max_iterations", "must be >= 1"));
            }
            if !gradient_tolerance.is_finite() || gradient_tolerance <= 0.0 {
                return Err(invalid("gradient_tolerance", "must be finite and > 0"));
            }
        }
        ModelKind::DecisionTree {
            max_depth,
            min_samples_split,
        } => {
            if !(1..=MAX_TREE_DEPTH).contains(&max_depth) {
                return Err(invalid("max_depth", "must be between 1 and 64"));
            }
            if min_samples_split < 2 {
                return Err(invalid("min_samples_split", "must be >= 2"));
            }
        }
        ModelKind::KMeans {
            k,
            max_iterations,
            tolerance,
            n_runs,
        } => {
            if k == 0 {
                return Err(invalid("k", "must be >= 1"));
            }
            if max_iterations == 0 {
                return Err(invalid("max_iterations", "must be >= 1"));
            }
            if !tolerance.is_finite() || tolerance <= 0.0 {
                return Err(invalid("tolerance", "must be finite and > 0"));
            }
            if n_runs == 0 {
                return Err(invalid("n_runs", "must be >= 1"));
            }
        }
        ModelKind::LinearRegression => {}
    }
    Ok(())
}

/// Binary targets as class indices, after checking both classes occur.
fn binary_targets(targets: ArrayView1<'_, f64>) -> Result<Array1<usize>, TrainModelError> {
    if let Some(row) = targets.iter().position(|&t| t != 0.0 && t != 1.0) {
        return Err(TrainModelError::TargetNotBinary { row });
    }
    let positives = targets.iter().filter(|&&t| t == 1.0).count();
    if positives == 0 || positives == targets.len() {
        return Err(TrainModelError::SingleClass);
    }
    Ok(targets.mapv(|t| usize::from(t == 1.0)))
}

/// Trains a model of `kind` on every row of `data`.
///
/// The features are standardised with a [`StandardScaler`] fitted on these
/// rows (stored in the model). `seed` drives k-means initialisation; the
/// other kinds are deterministic without it (it is recorded either way).
/// Split off held-out rows first (e.g. [`Dataset::split_holdout`]).
pub fn train(kind: &ModelKind, data: &Dataset, seed: u64) -> Result<TrainedModel, TrainModelError> {
    check_hyperparameters(kind)?;
    if data.is_empty() {
        return Err(TrainModelError::EmptyDataset);
    }
    let targets = match (kind.is_supervised(), data.targets()) {
        (true, None) => {
            return Err(TrainModelError::MissingTargets { model: kind.name() });
        }
        (_, targets) => targets,
    };
    let scaler = StandardScaler::fit(data.features());
    let z = scaler.transform(data.features());
    let params = match (kind, targets) {
        (
            ModelKind::LogisticRegression {
                alpha,
                max_iterations,
                gradient_tolerance,
            },
            Some(y),
        ) => fit_logistic(z, y, *alpha, *max_iterations, *gradient_tolerance)?,
        (
            ModelKind::DecisionTree {
                max_depth,
                min_samples_split,
            },
            Some(y),
        ) => fit_tree(z.view(), y, *max_depth, *min_samples_split)?,
        (
            ModelKind::KMeans {
                k,
                max_iterations,
                tolerance,
                n_runs,
            },
            _,
        ) => fit_k_means(z, *k, *max_iterations, *tolerance, *n_runs, seed)?,
        (ModelKind::LinearRegression, Some(y)) => fit_linear(z.view(), y)?,
        _ => return Err(TrainModelError::MissingTargets { model: kind.name() }),
    };
    let model = TrainedModel::new(
        kind.clone(),
        data.feature_spec_hash(),
        data.len() as u64,
        ModelOrigin::Trained { seed },
        scaler,
        params,
    );
    model
        .check()
        .map_err(|_| TrainModelError::NonFiniteParameters)?;
    Ok(model)
}

fn fit_logistic(
    z: Array2<f64>,
    y: ArrayView1<'_, f64>,
    alpha: f64,
    max_iterations: u64,
    tolerance: f64,
) -> Result<ModelParams, TrainModelError> {
    let classes = binary_targets(y)?;
    let n = z.nrows();
    // linfa's gradient is Xᵀ·r, which ndarray (without BLAS) computes as one
    // dot product per column: a strided pass over a row-major X for each.
    // In column-major layout every pass is contiguous (≈ 5× faster at
    // 100,000 × 30).
    let mut columns = Array2::zeros(z.raw_dim().f());
    columns.assign(&z);
    drop(z);
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(max_iterations)
        .gradient_tolerance(tolerance * n as f64)
        .fit(&DatasetBase::new(columns.view(), classes))
        .map_err(fit_error)?;
    // linfa models P(larger class by count); keep P(class 1).
    let sign = if fitted.labels().pos.class == 1 {
        1.0
    } else {
        -1.0
    };
    let weights: Vec<f64> = fitted.params().iter().map(|w| sign * w).collect();
    let intercept = sign * fitted.intercept();
    if weights.iter().chain([&intercept]).any(|w| !w.is_finite()) {
        return Err(TrainModelError::NonFiniteParameters);
    }
    let residual = mean_gradient_norm(columns.view(), y, alpha, &weights, intercept);
    // NaN is not converged either.
    if residual.is_nan() || residual >= tolerance {
        return Err(TrainModelError::NotConverged {
            residual,
            tolerance,
        });
    }
    Ok(ModelParams::LogisticRegression(LinearParams {
        weights,
        intercept,
    }))
}

/// ‖∇‖₂ of `(Σ log-loss + alpha/2·‖w‖²) / n` at `(w, b)`, labels 0/1.
fn mean_gradient_norm(
    z: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    alpha: f64,
    weights: &[f64],
    intercept: f64,
) -> f64 {
    let w = ArrayView1::from(weights);
    let residuals = (z.dot(&w) + intercept).mapv(sigmoid) - y;
    let mut gradient = z.t().dot(&residuals) + &w * alpha;
    let bias = residuals.sum();
    let n = z.nrows() as f64;
    gradient /= n;
    (gradient.dot(&gradient) + (bias / n) * (bias / n)).sqrt()
}

fn fit_tree(
    z: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    max_depth: u32,
    min_samples_split: u32,
) -> Result<ModelParams, TrainModelError> {
    let classes = binary_targets(y)?;
    let weights = classes.mapv(|c| if c == 1 { 1.0 + TREE_TIE_BREAK } else { 1.0 });
    let tree = DecisionTree::params()
        .max_depth(Some(max_depth as usize))
        .min_weight_split(min_samples_split as f32)
        .fit(&DatasetBase::new(z, classes.clone()).with_weights(weights))
        .map_err(fit_error)?;
    let mut nodes = Vec::new();
    flatten(tree.root_node(), &mut nodes, 0)?;
    // Leaf probabilities: the share of class-1 training rows reaching each leaf.
    let mut counts = vec![(0u64, 0u64); nodes.len()];
    for (row, class) in z.outer_iter().zip(&classes) {
        let leaf = leaf_of(&nodes, &row.to_vec());
        counts[leaf].0 += 1;
        counts[leaf].1 += *class as u64;
    }
    for (node, (samples, positives)) in nodes.iter_mut().zip(counts) {
        if let TreeNode::Leaf {
            class,
            positive_fraction,
            samples: leaf_samples,
        } = node
        {
            *leaf_samples = samples;
            *positive_fraction = if samples == 0 {
                f64::from(*class)
            } else {
                positives as f64 / samples as f64
            };
        }
    }
    Ok(ModelParams::DecisionTree { nodes })
}

/// Pre-order copy of linfa's tree (depth is bounded by `max_depth`).
fn flatten(
    node: &linfa_trees::TreeNode<f64, usize>,
    out: &mut Vec<TreeNode>,
    depth: u32,
) -> Result<u32, TrainModelError> {
    let malformed = || TrainModelError::Fit {
        reason: "tree from linfa is malformed".into(),
    };
    if depth > MAX_TREE_DEPTH {
        return Err(malformed());
    }
    let at = out.len();
    if let Some(class) = node.prediction() {
        if class > 1 {
            return Err(malformed());
        }
        out.push(TreeNode::Leaf {
            class: class as u32,
            positive_fraction: 0.0,
            samples: 0,
        });
        return Ok(at as u32);
    }
    out.push(TreeNode::Leaf {
        class: 0,
        positive_fraction: 0.0,
        samples: 0,
    });
    let (feature, threshold, _) = node.split();
    let children = node.children();
    let (Some(Some(left)), Some(Some(right))) = (children.first(), children.get(1)) else {
        return Err(malformed());
    };
    let left = flatten(left, out, depth + 1)?;
    let right = flatten(right, out, depth + 1)?;
    out[at] = TreeNode::Split {
        feature: feature as u32,
        threshold,
        left,
        right,
    };
    Ok(at as u32)
}

fn fit_k_means(
    z: Array2<f64>,
    k: u32,
    max_iterations: u64,
    tolerance: f64,
    n_runs: u32,
    seed: u64,
) -> Result<ModelParams, TrainModelError> {
    let k = k as usize;
    if z.nrows() < k {
        return Err(TrainModelError::TooFewRows {
            needed: k,
            found: z.nrows(),
        });
    }
    let shifts = ShiftLog::default();
    let dataset = DatasetBase::from(z);
    let model = KMeans::params_with(k, Xoshiro256Plus::seed_from_u64(seed), shifts.clone())
        .n_runs(n_runs as usize)
        .tolerance(tolerance)
        .max_n_iterations(max_iterations)
        .init_method(KMeansInit::KMeansPlusPlus)
        .fit(&dataset)
        .map_err(fit_error)?;
    shifts.check(n_runs, max_iterations, tolerance)?;
    let centroids: Vec<Vec<f64>> = model.centroids().outer_iter().map(|c| c.to_vec()).collect();
    if centroids.iter().flatten().any(|v| !v.is_finite()) {
        return Err(TrainModelError::NonFiniteParameters);
    }
    let mut sizes = vec![0u64; k];
    for row in dataset.records().outer_iter() {
        sizes[nearest_centroid(&centroids, &row.to_vec()).0] += 1;
    }
    Ok(ModelParams::KMeans {
        centroids,
        cluster_sizes: sizes,
    })
}

/// linfa's L2 distance, recording every `distance` call. linfa's k-means
/// calls `distance` exactly once per iteration, for its convergence check
/// (old against new centroids; assignment and k-means++ use `rdistance`),
/// and does not say whether a run stopped by converging or by running out
/// of iterations. The log says it.
#[derive(Clone, Default)]
struct ShiftLog {
    shifts: Arc<Mutex<Vec<f64>>>,
}

impl Distance<f64> for ShiftLog {
    fn distance<D: Dimension>(&self, a: ArrayView<'_, f64, D>, b: ArrayView<'_, f64, D>) -> f64 {
        let shift = L2Dist.distance(a, b);
        if let Ok(mut shifts) = self.shifts.lock() {
            shifts.push(shift);
        }
        shift
    }

    fn rdistance<D: Dimension>(&self, a: ArrayView<'_, f64, D>, b: ArrayView<'_, f64, D>) -> f64 {
        L2Dist.rdistance(a, b)
    }

    fn rdist_to_dist(&self, rdist: f64) -> f64 {
        rdist.sqrt()
    }

    fn dist_to_rdist(&self, dist: f64) -> f64 {
        dist * dist
    }
}

impl ShiftLog {
    /// Replays linfa's loop (`shift < tolerance || iteration == max` ends a
    /// run): every run must end below the tolerance.
    fn check(
        &self,
        n_runs: u32,
        max_iterations: u64,
        tolerance: f64,
    ) -> Result<(), TrainModelError> {
        let inconsistent = TrainModelError::Fit {
            reason: "k-means iteration log does not match linfa's loop".into(),
        };
        let shifts = self.shifts.lock().map_err(|_| inconsistent.clone())?;
        let (mut runs, mut iteration) = (0u32, 0u64);
        for &shift in shifts.iter() {
            iteration += 1;
            if shift < tolerance {
                (runs, iteration) = (runs + 1, 0);
            } else if iteration == max_iterations {
                return Err(TrainModelError::NotConverged {
                    residual: shift,
                    tolerance,
                });
            }
        }
        if runs != n_runs || iteration != 0 {
            return Err(inconsistent);
        }
        Ok(())
    }
}

fn fit_linear(
    z: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
) -> Result<ModelParams, TrainModelError> {
    let fitted = linfa_linear::LinearRegression::new()
        .fit(&DatasetBase::new(z, y.to_owned()))
        .map_err(fit_error)?;
    let weights = fitted.params().to_vec();
    let intercept = fitted.intercept();
    if weights.iter().chain([&intercept]).any(|w| !w.is_finite()) {
        return Err(TrainModelError::NonFiniteParameters);
    }
    Ok(ModelParams::LinearRegression(LinearParams {
        weights,
        intercept,
    }))
}
