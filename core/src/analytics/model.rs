//! Trained models: what they hold, their file format, and prediction.
//!
//! A model file is JSON (`to_bytes`), written in one fixed member order so
//! that equal models give equal bytes:
//!
//! ```text
//! {"format":"careledger.model","format_version":1,"library_version":"0.1.0",
//!  "linfa_version":"0.8.1","kind":{...},"feature_spec_hash":"<64 hex>",
//!  "n_features":30,"training_rows":426,"origin":{...},
//!  "scaler":{"mean":[...],"std":[...]},"params":{...}}
//! ```
//!
//! The parameters are this library's own flat structures, not linfa's
//! serialized types: linfa's fitted types have no public constructors (a
//! federated average could not become one), their private field layout may
//! change between linfa releases, and linfa's tree prediction unwraps child
//! nodes, so a crafted file would panic. Loading checks every structural
//! rule, so prediction never panics on a loaded model.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The model file format this library reads and writes.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// The `format` member of a model file.
pub(crate) const MODEL_FORMAT: &str = "careledger.model";

/// The linfa release models are trained with (recorded in every model file).
pub const LINFA_VERSION: &str = "0.8.1";

/// Deepest decision tree accepted (linfa grows trees recursively).
pub const MAX_TREE_DEPTH: u32 = 64;

/// A model kind and its hyperparameters.
///
/// Serialized externally tagged (`{"logistic_regression":{...}}`,
/// `"linear_regression"`): the workspace builds serde_json with
/// `arbitrary_precision`, which breaks numbers inside internally tagged enums.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelKind {
    /// Binary logistic regression (linfa-logistic, L-BFGS). Minimises
    /// `Σ log-loss + alpha/2·‖w‖²` over standardised features (intercept not
    /// penalised), so `alpha = 1` is scikit-learn's `C = 1`.
    LogisticRegression {
        /// L2 penalty (≥ 0).
        alpha: f64,
        /// L-BFGS iteration limit (≥ 1).
        max_iterations: u64,
        /// Converged when the L2 norm of the gradient of the *mean* loss
        /// (the objective divided by the number of rows, as scikit-learn
        /// scales it) is below this; linfa gets `gradient_tolerance × rows`
        /// because its objective is a sum. A fit that stops above it is
        /// [`super::TrainModelError::NotConverged`].
        gradient_tolerance: f64,
    },
    /// Binary classification tree (linfa-trees, Gini). Class-1 rows weigh
    /// 1 + 2⁻¹² in the fit: linfa settles an exact class tie in a node by
    /// `HashMap` order, which changes between runs, and the weight keeps
    /// ties from happening. The reported probability is the leaf's
    /// unweighted share of class-1 training rows.
    DecisionTree {
        /// Maximum depth, 1 to [`MAX_TREE_DEPTH`].
        max_depth: u32,
        /// A node with fewer rows is not split (≥ 2).
        min_samples_split: u32,
    },
    /// k-means (linfa-clustering, k-means++ initialisation, Lloyd iterations).
    KMeans {
        /// Number of clusters (≥ 1, ≤ rows).
        k: u32,
        /// Iteration limit per run (≥ 1).
        max_iterations: u64,
        /// A run has converged when its centroids move less than this (L2
        /// norm over all centroid coordinates, standardised units).
        tolerance: f64,
        /// Independent initialisations; the run with the lowest inertia wins
        /// (≥ 1). Every run must converge, else the fit is
        /// [`super::TrainModelError::NotConverged`].
        n_runs: u32,
    },
    /// Ordinary least squares (linfa-linear).
    LinearRegression,
}

impl ModelKind {
    /// Logistic regression with scikit-learn's defaults (`C = 1`, 100
    /// iterations, tolerance 1e-4).
    pub fn logistic_regression() -> Self {
        ModelKind::LogisticRegression {
            alpha: 1.0,
            max_iterations: 100,
            gradient_tolerance: 1e-4,
        }
    }

    /// A decision tree of depth at most 8 that splits nodes of 2 or more rows.
    pub fn decision_tree() -> Self {
        ModelKind::DecisionTree {
            max_depth: 8,
            min_samples_split: 2,
        }
    }

    /// k-means with `k` clusters, 300 iterations, tolerance 1e-4, 10 runs.
    pub fn k_means(k: u32) -> Self {
        ModelKind::KMeans {
            k,
            max_iterations: 300,
            tolerance: 1e-4,
            n_runs: 10,
        }
    }

    /// Short name: `logistic_regression`, `decision_tree`, `k_means`, `linear_regression`.
    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::LogisticRegression { .. } => "logistic_regression",
            ModelKind::DecisionTree { .. } => "decision_tree",
            ModelKind::KMeans { .. } => "k_means",
            ModelKind::LinearRegression => "linear_regression",
        }
    }

    /// Whether the model predicts a class (targets must be 0 or 1).
    pub fn is_classifier(&self) -> bool {
        matches!(
            self,
            ModelKind::LogisticRegression { .. } | ModelKind::DecisionTree { .. }
        )
    }

    /// Whether the model needs targets.
    pub fn is_supervised(&self) -> bool {
        !matches!(self, ModelKind::KMeans { .. })
    }
}

/// Per-column standardisation fitted on the training rows: `z = (x − mean) / std`
/// with the population standard deviation; a constant column gets `std = 1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardScaler {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl StandardScaler {
    /// Fit on the rows of `x` (sequential sums in row order: deterministic).
    pub(crate) fn fit(x: ndarray::ArrayView2<'_, f64>) -> Self {
        let n = x.nrows().max(1) as f64;
        let mut mean = vec![0.0; x.ncols()];
        for row in x.outer_iter() {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; x.ncols()];
        for row in x.outer_iter() {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let std = var
            .into_iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd.is_finite() && sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        StandardScaler { mean, std }
    }

    /// A scaler with given centres and scales (all finite, scales positive;
    /// [`TrainedModel::check`] enforces it on load).
    pub(crate) fn from_parts(mean: Vec<f64>, std: Vec<f64>) -> Self {
        StandardScaler { mean, std }
    }

    /// The identity on `n` columns.
    pub(crate) fn identity(n: usize) -> Self {
        StandardScaler {
            mean: vec![0.0; n],
            std: vec![1.0; n],
        }
    }

    /// Column means of the training rows.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Column standard deviations of the training rows (1 for constant columns).
    pub fn std(&self) -> &[f64] {
        &self.std
    }

    pub(crate) fn transform_row(&self, row: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(
            row.iter()
                .zip(self.mean.iter().zip(&self.std))
                .map(|(v, (m, s))| (v - m) / s),
        );
    }

    pub(crate) fn transform(&self, x: ndarray::ArrayView2<'_, f64>) -> ndarray::Array2<f64> {
        let mut z = x.to_owned();
        for mut row in z.outer_iter_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        z
    }
}

/// Weights and intercept of a linear predictor over standardised features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinearParams {
    pub(crate) weights: Vec<f64>,
    pub(crate) intercept: f64,
}

/// One node of a flattened decision tree. Children always come after their
/// parent, so the node list is a tree by construction once checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum TreeNode {
    /// `x[feature] < threshold` goes to `left`, else to `right` (linfa's rule).
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
    },
    /// A leaf: linfa's class, and the share of class-1 training rows that reached it.
    Leaf {
        class: u32,
        positive_fraction: f64,
        samples: u64,
    },
}

/// The fitted parameters of each kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ModelParams {
    /// `P(y = 1) = σ(w·z + b)`.
    LogisticRegression(LinearParams),
    /// `y = w·z + b`.
    LinearRegression(LinearParams),
    /// Pre-order node list, root first.
    DecisionTree { nodes: Vec<TreeNode> },
    /// Centroids in standardised units, and training rows per cluster.
    KMeans {
        centroids: Vec<Vec<f64>>,
        cluster_sizes: Vec<u64>,
    },
}

/// One site's share of a federated average.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteContribution {
    /// The site id its update carried.
    pub site: String,
    /// Its training rows.
    pub samples: u64,
}

/// How a model came to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelOrigin {
    /// [`super::train`] with this seed.
    Trained {
        /// The seed passed to `train`.
        seed: u64,
    },
    /// [`super::fedavg`] of these updates, in summation order.
    FederatedAverage {
        /// Sites by id (byte order), with their weights.
        sites: Vec<SiteContribution>,
    },
    /// Rounds of a federated task under secure aggregation
    /// ([`super::secure_fl`]).
    SecureAggregation {
        /// The task id (hex).
        task: String,
        /// Rounds that completed.
        rounds: u32,
        /// Sites that contributed to the last round, with their rows.
        sites: Vec<SiteContribution>,
    },
}

/// A trained model: kind and hyperparameters, the scaler fitted on the
/// training rows, the parameters, and provenance (feature spec hash, rows,
/// origin, library versions).
///
/// `Debug` shows kind, shape and provenance, not parameters.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedModel {
    format: String,
    format_version: u32,
    library_version: String,
    linfa_version: String,
    kind: ModelKind,
    #[serde(with = "hex32")]
    feature_spec_hash: [u8; 32],
    n_features: u32,
    training_rows: u64,
    origin: ModelOrigin,
    scaler: StandardScaler,
    params: ModelParams,
}

impl std::fmt::Debug for TrainedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedModel")
            .field("kind", &self.kind)
            .field("n_features", &self.n_features)
            .field("training_rows", &self.training_rows)
            .field("origin", &self.origin)
            .field("library_version", &self.library_version)
            .finish_non_exhaustive()
    }
}

/// Loading a model file failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadModelError {
    /// The bytes are not a careledger model file.
    #[error("not a careledger model file")]
    NotAModel,
    /// The file is in a format version this library does not read.
    #[error(
        "model format version {found} is not supported (this library reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// [`MODEL_FORMAT_VERSION`].
        supported: u32,
    },
    /// The file does not decode as a model of this format version.
    #[error("malformed model file: {reason}")]
    Malformed {
        /// serde's description (a model file holds parameters, not patient data).
        reason: String,
    },
    /// The file decodes but breaks a structural rule.
    #[error("invalid model file: {rule}")]
    Invalid {
        /// The rule that does not hold.
        rule: &'static str,
    },
}

/// Prediction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PredictError {
    /// The input has another number of features than the model.
    #[error("model takes {expected} features, {found} given")]
    WrongFeatureCount {
        /// The model's feature count.
        expected: usize,
        /// The input's.
        found: usize,
    },
    /// An input value is NaN or infinite.
    #[error("feature {column} must be finite")]
    NonFinite {
        /// Its column.
        column: usize,
    },
}

/// What a model says about one row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// A classifier's answer.
    Class {
        /// 0 or 1.
        class: u32,
        /// Probability of class 1 (logistic: σ(w·z + b); tree: share of
        /// class-1 training rows in the leaf).
        positive_probability: f64,
    },
    /// k-means: the nearest centroid.
    Cluster {
        /// Its index.
        cluster: u32,
        /// Euclidean distance to it, in standardised units.
        distance: f64,
    },
    /// Linear regression's estimate.
    Value {
        /// The estimate, in target units.
        value: f64,
    },
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn dot(w: &[f64], z: &[f64]) -> f64 {
    w.iter().zip(z).map(|(a, b)| a * b).sum()
}

impl TrainedModel {
    pub(crate) fn new(
        kind: ModelKind,
        feature_spec_hash: [u8; 32],
        training_rows: u64,
        origin: ModelOrigin,
        scaler: StandardScaler,
        params: ModelParams,
    ) -> Self {
        TrainedModel {
            format: MODEL_FORMAT.to_owned(),
            format_version: MODEL_FORMAT_VERSION,
            library_version: crate::VERSION.to_owned(),
            linfa_version: LINFA_VERSION.to_owned(),
            kind,
            feature_spec_hash,
            n_features: scaler.mean.len() as u32,
            training_rows,
            origin,
            scaler,
            params,
        }
    }

    /// Kind and hyperparameters.
    pub fn kind(&self) -> &ModelKind {
        &self.kind
    }

    /// Hash of the feature spec of the training data.
    pub fn feature_spec_hash(&self) -> [u8; 32] {
        self.feature_spec_hash
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.n_features as usize
    }

    /// Rows the model was trained on (the sum over sites for a federated average).
    pub fn training_rows(&self) -> u64 {
        self.training_rows
    }

    /// How the model was made.
    pub fn origin(&self) -> &ModelOrigin {
        &self.origin
    }

    /// The careledger version that wrote the model.
    pub fn library_version(&self) -> &str {
        &self.library_version
    }

    /// The linfa version the model was trained with.
    pub fn linfa_version(&self) -> &str {
        &self.linfa_version
    }

    /// The model file format version ([`MODEL_FORMAT_VERSION`]).
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// The scaler fitted on the training rows (the identity for a federated average).
    pub fn scaler(&self) -> &StandardScaler {
        &self.scaler
    }

    /// Training means of the features, to impute missing inputs as
    /// [`super::MissingPolicy::ImputeMean`] did (imputing a column with its
    /// mean leaves the mean unchanged). All zeros for a federated average.
    pub fn feature_means(&self) -> &[f64] {
        &self.scaler.mean
    }

    /// For logistic and linear regression, the weights and intercept over
    /// the *raw* (unscaled) features: `w_raw[j] = w[j] / std[j]`,
    /// `b_raw = b − Σ w[j]·mean[j] / std[j]`. This is the parameter vector
    /// federated averaging works on.
    pub fn raw_parameters(&self) -> Option<(Vec<f64>, f64)> {
        let linear = match &self.params {
            ModelParams::LogisticRegression(p) | ModelParams::LinearRegression(p) => p,
            _ => return None,
        };
        let weights: Vec<f64> = linear
            .weights
            .iter()
            .zip(&self.scaler.std)
            .map(|(w, s)| w / s)
            .collect();
        let shift: f64 = weights
            .iter()
            .zip(&self.scaler.mean)
            .map(|(w, m)| w * m)
            .sum();
        Some((weights, linear.intercept - shift))
    }

    /// The model file: JSON in a fixed member order (equal models, equal bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain structs of strings, integers and finite floats always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of [`TrainedModel::to_bytes`].
    pub fn model_hash(&self) -> [u8; 32] {
        Sha256::digest(self.to_bytes()).into()
    }

    /// Read a model file, checking format, version and every structural rule.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadModelError> {
        #[derive(Deserialize)]
        struct Envelope {
            format: String,
            format_version: u32,
        }
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|_| LoadModelError::NotAModel)?;
        if envelope.format != MODEL_FORMAT {
            return Err(LoadModelError::NotAModel);
        }
        if envelope.format_version != MODEL_FORMAT_VERSION {
            return Err(LoadModelError::UnsupportedVersion {
                found: envelope.format_version,
                supported: MODEL_FORMAT_VERSION,
            });
        }
        let model: TrainedModel =
            serde_json::from_slice(bytes).map_err(|e| LoadModelError::Malformed {
                reason: e.to_string(),
            })?;
        model
            .check()
            .map_err(|rule| LoadModelError::Invalid { rule })?;
        Ok(model)
    }

    /// Every structural rule a model must satisfy.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let n = self.n_features as usize;
        if n == 0 {
            return Err("a model needs at least one feature");
        }
        if self.training_rows == 0 {
            return Err("training_rows must be positive");
        }
        if self.scaler.mean.len() != n || self.scaler.std.len() != n {
            return Err("scaler length must equal n_features");
        }
        if self.scaler.mean.iter().any(|m| !m.is_finite())
            || self.scaler.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
        {
            return Err("scaler means must be finite and deviations finite and positive");
        }
        match (&self.kind, &self.params) {
            (ModelKind::LogisticRegression { .. }, ModelParams::LogisticRegression(p))
            | (ModelKind::LinearRegression, ModelParams::LinearRegression(p)) => {
                if p.weights.len() != n {
                    return Err("weights length must equal n_features");
                }
                if p.weights
                    .iter()
                    .chain([&p.intercept])
                    .any(|w| !w.is_finite())
                {
                    return Err("weights must be finite");
                }
            }
            (ModelKind::DecisionTree { .. }, ModelParams::DecisionTree { nodes }) => {
                check_tree(nodes, n)?
            }
            (
                ModelKind::KMeans { k, .. },
                ModelParams::KMeans {
                    centroids,
                    cluster_sizes,
                },
            ) => {
                if centroids.is_empty()
                    || centroids.len() != *k as usize
                    || cluster_sizes.len() != centroids.len()
                {
                    return Err("k-means must hold k centroids and k cluster sizes");
                }
                if centroids
                    .iter()
                    .any(|c| c.len() != n || c.iter().any(|v| !v.is_finite()))
                {
                    return Err("centroids must have n_features finite coordinates");
                }
            }
            _ => return Err("parameters do not match the model kind"),
        }
        Ok(())
    }

    /// Predict on an already standardised row of the right length.
    pub(crate) fn predict_scaled(&self, z: &[f64]) -> Prediction {
        match &self.params {
            ModelParams::LogisticRegression(p) => {
                let probability = sigmoid(dot(&p.weights, z) + p.intercept);
                Prediction::Class {
                    class: u32::from(probability >= 0.5),
                    positive_probability: probability,
                }
            }
            ModelParams::LinearRegression(p) => Prediction::Value {
                value: dot(&p.weights, z) + p.intercept,
            },
            ModelParams::DecisionTree { nodes } => {
                let (class, positive_probability) = match nodes.get(leaf_of(nodes, z)) {
                    Some(TreeNode::Leaf {
                        class,
                        positive_fraction,
                        ..
                    }) => (*class, *positive_fraction),
                    // check() guarantees the walk ends on a leaf.
                    _ => (0, 0.0),
                };
                Prediction::Class {
                    class,
                    positive_probability,
                }
            }
            ModelParams::KMeans { centroids, .. } => {
                let (cluster, squared) = nearest_centroid(centroids, z);
                Prediction::Cluster {
                    cluster: cluster as u32,
                    distance: squared.sqrt(),
                }
            }
        }
    }
}

/// Predicts one row of raw (unscaled) features, in the model's column order.
///
/// Errors: wrong feature count, NaN or infinite inputs. Never panics, also
/// on models read with [`TrainedModel::from_bytes`].
pub fn predict(model: &TrainedModel, features: &[f64]) -> Result<Prediction, PredictError> {
    if features.len() != model.n_features() {
        return Err(PredictError::WrongFeatureCount {
            expected: model.n_features(),
            found: features.len(),
        });
    }
    if let Some(column) = features.iter().position(|v| !v.is_finite()) {
        return Err(PredictError::NonFinite { column });
    }
    let mut z = Vec::with_capacity(features.len());
    model.scaler.transform_row(features, &mut z);
    Ok(model.predict_scaled(&z))
}

/// Index of the centroid nearest to `z` (the first on ties) and the squared distance.
pub(crate) fn nearest_centroid(centroids: &[Vec<f64>], z: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d: f64 = c.iter().zip(z).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// The leaf a row reaches. Assumes `check_tree` holds; stops at a malformed
/// node rather than looping.
pub(crate) fn leaf_of(nodes: &[TreeNode], z: &[f64]) -> usize {
    let mut at = 0usize;
    while let Some(TreeNode::Split {
        feature,
        threshold,
        left,
        right,
    }) = nodes.get(at)
    {
        let value = z.get(*feature as usize).copied().unwrap_or(f64::NAN);
        let next = if value < *threshold { *left } else { *right } as usize;
        if next <= at {
            break;
        }
        at = next;
    }
    at
}

fn check_tree(nodes: &[TreeNode], n_features: usize) -> Result<(), &'static str> {
    if nodes.is_empty() {
        return Err("a tree needs at least one node");
    }
    let mut parents = vec![0u32; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        match node {
            TreeNode::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                if *feature as usize >= n_features || !threshold.is_finite() {
                    return Err("a split must name a feature and a finite threshold");
                }
                for child in [*left, *right] {
                    let child = child as usize;
                    if child <= i || child >= nodes.len() {
                        return Err("children must come after their parent");
                    }
                    parents[child] += 1;
                }
                if left == right {
                    return Err("a split needs two distinct children");
                }
            }
            TreeNode::Leaf {
                class,
                positive_fraction,
                ..
            } => {
                if *class > 1 || !(0.0..=1.0).contains(positive_fraction) {
                    return Err("a leaf holds class 0 or 1 and a fraction in [0, 1]");
                }
            }
        }
    }
    if parents[0] != 0 || parents[1..].iter().any(|&p| p != 1) {
        return Err("every node but the root must have exactly one parent");
    }
    Ok(())
}

/// Serde for `[u8; 32]` as 64 lowercase hex characters.
pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out)
            .map_err(|_| serde::de::Error::custom("expected 64 hex characters"))?;
        Ok(out)
    }
}
