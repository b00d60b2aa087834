//! Evaluation metrics: accuracy, ROC curve and AUC, calibration for
//! classifiers; inertia and silhouette for k-means; R² and RMSE for linear
//! regression. Everything is computed in a fixed order, so the same model
//! and dataset give bit-identical metrics (fit for a model card).

use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use super::model::{Prediction, TrainedModel};

/// Silhouette is exact up to this many rows and computed on the first this
/// many rows (in pseudonym order, so an unbiased sample) beyond: it costs
/// O(rows²).
pub const SILHOUETTE_MAX_ROWS: usize = 5_000;

/// Calibration bins: `[0, 0.1), [0.1, 0.2), … [0.9, 1.0]`.
pub const CALIBRATION_BINS: usize = 10;

/// One point of a ROC curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RocPoint {
    /// Rows scoring at or above this are called positive; `None` for the
    /// origin (above every score).
    pub threshold: Option<f64>,
    /// False positive rate at this threshold.
    pub false_positive_rate: f64,
    /// True positive rate at this threshold.
    pub true_positive_rate: f64,
}

/// One calibration bin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationBin {
    /// Lower edge of predicted probability (inclusive).
    pub lower: f64,
    /// Upper edge (exclusive, except the last bin's 1.0).
    pub upper: f64,
    /// Rows whose predicted probability falls in the bin.
    pub rows: u64,
    /// Mean predicted probability of those rows.
    pub mean_predicted: Option<f64>,
    /// Share of them that are class 1.
    pub observed_rate: Option<f64>,
}

/// Metrics of a classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationMetrics {
    /// Rows evaluated.
    pub rows: u64,
    /// Share of rows whose predicted class is the target.
    pub accuracy: f64,
    /// Area under the ROC curve (ties count one half); `None` when the
    /// targets hold one class only.
    pub auc: Option<f64>,
    /// ROC curve from the origin to (1, 1), collinear points dropped.
    pub roc: Vec<RocPoint>,
    /// Reliability diagram, [`CALIBRATION_BINS`] bins.
    pub calibration: Vec<CalibrationBin>,
}

/// Metrics of k-means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusteringMetrics {
    /// Rows evaluated.
    pub rows: u64,
    /// Sum of squared distances to the nearest centroid (standardised units,
    /// scikit-learn's definition).
    pub inertia: f64,
    /// Mean silhouette coefficient (Euclidean); `None` with fewer than two
    /// clusters present.
    pub silhouette: Option<f64>,
    /// Rows the silhouette was computed on (see [`SILHOUETTE_MAX_ROWS`]).
    pub silhouette_rows: u64,
    /// Rows per cluster.
    pub cluster_sizes: Vec<u64>,
}

/// Metrics of linear regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionMetrics {
    /// Rows evaluated.
    pub rows: u64,
    /// Coefficient of determination; `None` when the targets are constant.
    pub r2: Option<f64>,
    /// Root mean squared error, in target units.
    pub rmse: f64,
}

/// What [`evaluate`] measured, by model family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metrics {
    /// Logistic regression, decision tree.
    Classification(ClassificationMetrics),
    /// k-means.
    Clustering(ClusteringMetrics),
    /// Linear regression.
    Regression(RegressionMetrics),
}

/// Evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateModelError {
    /// The dataset was built with another feature spec than the model's.
    #[error("dataset and model follow different feature specs")]
    SpecMismatch,
    /// The dataset has another number of columns than the model.
    #[error("model takes {expected} features, the dataset has {found}")]
    WrongFeatureCount {
        /// The model's.
        expected: usize,
        /// The dataset's.
        found: usize,
    },
    /// The dataset has no row.
    #[error("dataset is empty")]
    EmptyDataset,
    /// A supervised model needs targets to be evaluated.
    #[error("dataset has no targets")]
    MissingTargets,
    /// A classifier's target is not 0 or 1.
    #[error("row {row}: a classifier's target must be 0 or 1")]
    TargetNotBinary {
        /// The first such row.
        row: usize,
    },
}

/// Evaluates `model` on every row of `data` (normally held-out rows).
pub fn evaluate(model: &TrainedModel, data: &Dataset) -> Result<Metrics, EvaluateModelError> {
    if model.feature_spec_hash() != data.feature_spec_hash() {
        return Err(EvaluateModelError::SpecMismatch);
    }
    if model.n_features() != data.n_features() {
        return Err(EvaluateModelError::WrongFeatureCount {
            expected: model.n_features(),
            found: data.n_features(),
        });
    }
    if data.is_empty() {
        return Err(EvaluateModelError::EmptyDataset);
    }
    let z = model.scaler().transform(data.features());
    let predictions: Vec<Prediction> = z
        .outer_iter()
        .map(|row| model.predict_scaled(&row.to_vec()))
        .collect();
    let targets = data.targets();
    if model.kind().is_supervised() && targets.is_none() {
        return Err(EvaluateModelError::MissingTargets);
    }
    let targets: Vec<f64> = targets.map(|t| t.to_vec()).unwrap_or_default();
    let rows = data.len() as u64;
    if model.kind().is_classifier() {
        if let Some(row) = targets.iter().position(|&t| t != 0.0 && t != 1.0) {
            return Err(EvaluateModelError::TargetNotBinary { row });
        }
        let labels: Vec<bool> = targets.iter().map(|&t| t == 1.0).collect();
        let mut scores = Vec::with_capacity(predictions.len());
        let mut correct = 0u64;
        for (prediction, &label) in predictions.iter().zip(&labels) {
            if let Prediction::Class {
                class,
                positive_probability,
            } = *prediction
            {
                scores.push(positive_probability);
                correct += u64::from((class == 1) == label);
            }
        }
        let (roc, auc) = roc(&scores, &labels);
        return Ok(Metrics::Classification(ClassificationMetrics {
            rows,
            accuracy: correct as f64 / rows as f64,
            auc,
            roc,
            calibration: calibration(&scores, &labels),
        }));
    }
    match model.kind() {
        super::ModelKind::KMeans { k, .. } => {
            let mut inertia = 0.0;
            let mut clusters = Vec::with_capacity(predictions.len());
            let mut cluster_sizes = vec![0u64; *k as usize];
            for prediction in &predictions {
                if let Prediction::Cluster { cluster, distance } = *prediction {
                    inertia += distance * distance;
                    clusters.push(cluster as usize);
                    if let Some(size) = cluster_sizes.get_mut(cluster as usize) {
                        *size += 1;
                    }
                }
            }
            let sample = z.nrows().min(SILHOUETTE_MAX_ROWS);
            let points: Vec<Vec<f64>> = z.outer_iter().take(sample).map(|r| r.to_vec()).collect();
            Ok(Metrics::Clustering(ClusteringMetrics {
                rows,
                inertia,
                silhouette: silhouette(&points, &clusters[..sample]),
                silhouette_rows: sample as u64,
                cluster_sizes,
            }))
        }
        _ => {
            let estimates: Vec<f64> = predictions
                .iter()
                .map(|p| match *p {
                    Prediction::Value { value } => value,
                    _ => f64::NAN,
                })
                .collect();
            let (r2, rmse) = regression(&estimates, &targets);
            Ok(Metrics::Regression(RegressionMetrics { rows, r2, rmse }))
        }
    }
}

/// The ROC curve (collinear points dropped) and the exact AUC, computed on
/// integer counts: AUC = Σ Δfp·(tp + tp_prev) / (2·P·N), which equals the
/// Mann–Whitney statistic with ties counted one half.
pub(crate) fn roc(scores: &[f64], labels: &[bool]) -> (Vec<RocPoint>, Option<f64>) {
    let positives = labels.iter().filter(|&&l| l).count() as u64;
    let negatives = labels.len() as u64 - positives;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    // (threshold, fp, tp) after each distinct score.
    let mut steps: Vec<(Option<f64>, u64, u64)> = vec![(None, 0, 0)];
    let (mut fp, mut tp) = (0u64, 0u64);
    let mut i = 0;
    while i < order.len() {
        let score = scores[order[i]];
        while i < order.len() && scores[order[i]].total_cmp(&score).is_eq() {
            if labels[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        steps.push((Some(score), fp, tp));
    }
    let auc = (positives > 0 && negatives > 0).then(|| {
        let twice_area: u128 = steps
            .windows(2)
            .map(|w| u128::from(w[1].1 - w[0].1) * u128::from(w[1].2 + w[0].2))
            .sum();
        twice_area as f64 / (2.0 * positives as f64 * negatives as f64)
    });
    let rate = |count: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        }
    };
    let mut roc = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        let keep = match (k.checked_sub(1).map(|p| steps[p]), steps.get(k + 1)) {
            (Some(prev), Some(next)) => {
                let cross = i128::from(step.1 - prev.1) * i128::from(next.2 - step.2)
                    - i128::from(step.2 - prev.2) * i128::from(next.1 - step.1);
                cross != 0
            }
            _ => true,
        };
        if keep {
            roc.push(RocPoint {
                threshold: step.0,
                false_positive_rate: rate(step.1, negatives),
                true_positive_rate: rate(step.2, positives),
            });
        }
    }
    (roc, auc)
}

fn calibration(scores: &[f64], labels: &[bool]) -> Vec<CalibrationBin> {
    let mut sums = [(0u64, 0.0f64, 0u64); CALIBRATION_BINS];
    for (&score, &label) in scores.iter().zip(labels) {
        let bin =
            ((score * CALIBRATION_BINS as f64).floor().max(0.0) as usize).min(CALIBRATION_BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += score;
        sums[bin].2 += u64::from(label);
    }
    sums.iter()
        .enumerate()
        .map(|(b, &(rows, total, positives))| CalibrationBin {
            lower: b as f64 / CALIBRATION_BINS as f64,
            upper: (b + 1) as f64 / CALIBRATION_BINS as f64,
            rows,
            mean_predicted: (rows > 0).then(|| total / rows as f64),
            observed_rate: (rows > 0).then(|| positives as f64 / rows as f64),
        })
        .collect()
}

/// Mean silhouette (Euclidean); a point alone in its cluster scores 0.
pub(crate) fn silhouette(points: &[Vec<f64>], clusters: &[usize]) -> Option<f64> {
    let k = clusters.iter().max()? + 1;
    let mut sizes = vec![0usize; k];
    for &c in clusters {
        sizes[c] += 1;
    }
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return None;
    }
    let mut total = 0.0;
    let mut sums = vec![0.0; k];
    for (i, p) in points.iter().enumerate() {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for (j, q) in points.iter().enumerate() {
            if i != j {
                let d: f64 = p.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
                sums[clusters[j]] += d.sqrt();
            }
        }
        let own = clusters[i];
        if sizes[own] < 2 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let scale = a.max(b);
        if scale > 0.0 {
            total += (b - a) / scale;
        }
    }
    Some(total / points.len() as f64)
}

fn regression(estimates: &[f64], targets: &[f64]) -> (Option<f64>, f64) {
    let n = targets.len() as f64;
    let mean = targets.iter().sum::<f64>() / n;
    let residual: f64 = estimates
        .iter()
        .zip(targets)
        .map(|(e, t)| (t - e) * (t - e))
        .sum();
    let spread: f64 = targets.iter().map(|t| (t - mean) * (t - mean)).sum();
    let r2 = (spread > 0.0).then(|| 1.0 - residual / spread);
    (r2, (residual / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_known_rankings() {
        // Perfect ranking.
        let (_, auc) = roc(&[0.9, 0.8, 0.3, 0.1], &[true, true, false, false]);
        assert_eq!(auc, Some(1.0));
        // Reversed.
        let (_, auc) = roc(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]);
        assert_eq!(auc, Some(0.0));
        // Positives at ranks 1 and 3 of 4 (descending): pairs (P,N) ordered
        // correctly: p1 beats both negatives (2), p3 beats one (1) → 3/4.
        let (_, auc) = roc(&[0.9, 0.8, 0.7, 0.6], &[true, false, true, false]);
        assert_eq!(auc, Some(0.75));
        // All tied: one half.
        let (curve, auc) = roc(&[0.5; 4], &[true, false, true, false]);
        assert_eq!(auc, Some(0.5));
        assert_eq!(curve.len(), 2);
        // A tie between one positive and one negative counts one half:
        // scores P: 0.9, 0.5; N: 0.5, 0.1 → pairs: (0.9>0.5)=1, (0.9>0.1)=1,
        // (0.5=0.5)=0.5, (0.5>0.1)=1 → 3.5/4.
        let (_, auc) = roc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]);
        assert_eq!(auc, Some(0.875));
        // One class only.
        let (_, auc) = roc(&[0.9, 0.5], &[true, true]);
        assert_eq!(auc, None);
    }

    #[test]
    fn roc_curve_points() {
        let (curve, _) = roc(&[0.9, 0.8, 0.7, 0.6], &[true, false, true, false]);
        let points: Vec<(f64, f64)> = curve
            .iter()
            .map(|p| (p.false_positive_rate, p.true_positive_rate))
            .collect();
        assert_eq!(
            points,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        assert_eq!(curve[0].threshold, None);
        assert_eq!(curve[1].threshold, Some(0.9));
        // Collinear points are dropped: a perfect ranking is a corner.
        let (curve, _) = roc(&[0.9, 0.8, 0.3, 0.1], &[true, true, false, false]);
        let points: Vec<(f64, f64)> = curve
            .iter()
            .map(|p| (p.false_positive_rate, p.true_positive_rate))
            .collect();
        assert_eq!(points, vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]);
    }

    #[test]
    fn calibration_bins() {
        let bins = calibration(
            &[0.05, 0.15, 0.95, 1.0, 0.9],
            &[false, true, true, true, false],
        );
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[0].rows, 1);
        assert_eq!(bins[0].observed_rate, Some(0.0));
        assert_eq!(bins[1].observed_rate, Some(1.0));
        assert_eq!(bins[9].rows, 3);
        assert_eq!(bins[9].observed_rate, Some(2.0 / 3.0));
        assert_eq!(bins[9].mean_predicted, Some((0.95 + 1.0 + 0.9) / 3.0));
        assert_eq!(bins[5].mean_predicted, None);
    }

    #[test]
    fn silhouette_by_hand() {
        // Two clusters on a line: {0, 1} and {10, 11}.
        let points = vec![vec![0.0], vec![1.0], vec![10.0], vec![11.0]];
        // For 0: a = 1, b = (10 + 11) / 2 = 10.5 → s = 9.5 / 10.5.
        // For 1: a = 1, b = (9 + 10) / 2 = 9.5 → s = 8.5 / 9.5. Symmetric for the others.
        let expected = (9.5 / 10.5 + 8.5 / 9.5) / 2.0;
        let s = silhouette(&points, &[0, 0, 1, 1]).unwrap();
        assert!((s - expected).abs() < 1e-15);
        assert_eq!(silhouette(&points, &[0, 0, 0, 0]), None);
        // A singleton scores 0: {0} alone; {1, 10, 11}.
        let s = silhouette(&points, &[0, 1, 1, 1]).unwrap();
        // For 1: a = (9 + 10) / 2 = 9.5, b = 1 → (1 − 9.5) / 9.5.
        // For 10: a = (9 + 1) / 2 = 5, b = 10 → 5 / 10. For 11: a = (10 + 1) / 2 = 5.5, b = 11 → 5.5 / 11.
        let expected = ((1.0 - 9.5) / 9.5 + 0.5 + 0.5) / 4.0;
        assert!((s - expected).abs() < 1e-15);
    }

    #[test]
    fn regression_by_hand() {
        let (r2, rmse) = regression(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        // mean 7/3; spread = (4/3)² + (1/3)² + (5/3)² = 42/9; residual = 1.
        assert!((r2.unwrap() - (1.0 - 9.0 / 42.0)).abs() < 1e-15);
        assert!((rmse - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(regression(&[1.0, 1.0], &[2.0, 2.0]).0, None);
    }
}
