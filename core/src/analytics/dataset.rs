//! The de-identified dataset a model is fitted on.

use std::fmt;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use sha2::{Digest, Sha256};

/// A row's pseudonym: HMAC-SHA-256 of the record id under the dataset salt
/// (see [`super::extract`]), or for [`Dataset::from_arrays`] SHA-256 of the
/// row index. It carries no record id, name or date.
pub type Pseudonym = [u8; 32];

/// Building a [`Dataset`] from arrays, or selecting rows of one, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildDatasetError {
    /// Targets and feature rows differ in number.
    #[error("{targets} targets for {rows} feature rows")]
    ShapeMismatch {
        /// Feature rows.
        rows: usize,
        /// Targets given.
        targets: usize,
    },
    /// The matrix has no column.
    #[error("a dataset needs at least one feature column")]
    NoColumns,
    /// A feature or target is NaN or infinite.
    #[error("row {row}: values must be finite")]
    NonFinite {
        /// The first row holding one.
        row: usize,
    },
    /// A selected row index is past the end.
    #[error("row index {row} is out of range ({rows} rows)")]
    RowOutOfRange {
        /// The index asked for.
        row: usize,
        /// Rows in the dataset.
        rows: usize,
    },
}

/// A de-identified dataset: a feature matrix, optional targets and one
/// opaque pseudonym per row. Nothing else about a patient reaches a fit.
///
/// `Debug` shows the shape only.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    features: Array2<f64>,
    targets: Option<Array1<f64>>,
    pseudonyms: Vec<Pseudonym>,
    feature_spec_hash: [u8; 32],
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("rows", &self.len())
            .field("columns", &self.n_features())
            .field("has_targets", &self.targets.is_some())
            .finish_non_exhaustive()
    }
}

impl Dataset {
    pub(crate) fn from_parts(
        features: Array2<f64>,
        targets: Option<Array1<f64>>,
        pseudonyms: Vec<Pseudonym>,
        feature_spec_hash: [u8; 32],
    ) -> Self {
        Dataset {
            features,
            targets,
            pseudonyms,
            feature_spec_hash,
        }
    }

    /// A dataset from plain arrays (synthetic data, benchmarks, data that was
    /// de-identified elsewhere). Row `i`'s pseudonym is SHA-256 of
    /// `"row" || i as u64 big-endian`. `feature_spec_hash` names the spec the
    /// columns follow (any 32 bytes the caller chooses).
    pub fn from_arrays(
        features: Array2<f64>,
        targets: Option<Array1<f64>>,
        feature_spec_hash: [u8; 32],
    ) -> Result<Self, BuildDatasetError> {
        if features.ncols() == 0 {
            return Err(BuildDatasetError::NoColumns);
        }
        if let Some(targets) = &targets {
            if targets.len() != features.nrows() {
                return Err(BuildDatasetError::ShapeMismatch {
                    rows: features.nrows(),
                    targets: targets.len(),
                });
            }
        }
        for (row, values) in features.outer_iter().enumerate() {
            let target_ok = targets.as_ref().is_none_or(|t| t[row].is_finite());
            if !target_ok || values.iter().any(|v| !v.is_finite()) {
                return Err(BuildDatasetError::NonFinite { row });
            }
        }
        let pseudonyms = (0..features.nrows() as u64)
            .map(|i| {
                let mut hasher = Sha256::new();
                hasher.update(b"row");
                hasher.update(i.to_be_bytes());
                hasher.finalize().into()
            })
            .collect();
        Ok(Dataset {
            features,
            targets,
            pseudonyms,
            feature_spec_hash,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.features.nrows()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.features.ncols()
    }

    /// The feature matrix (rows × columns), unscaled.
    pub fn features(&self) -> ArrayView2<'_, f64> {
        self.features.view()
    }

    /// The targets, if the spec has a label.
    pub fn targets(&self) -> Option<ArrayView1<'_, f64>> {
        self.targets.as_ref().map(Array1::view)
    }

    /// One pseudonym per row, in row order.
    pub fn pseudonyms(&self) -> &[Pseudonym] {
        &self.pseudonyms
    }

    /// Hash of the feature spec the columns follow.
    pub fn feature_spec_hash(&self) -> [u8; 32] {
        self.feature_spec_hash
    }

    /// The rows at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Result<Dataset, BuildDatasetError> {
        if let Some(&row) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(BuildDatasetError::RowOutOfRange {
                row,
                rows: self.len(),
            });
        }
        Ok(Dataset {
            features: self.features.select(Axis(0), rows),
            targets: self.targets.as_ref().map(|t| t.select(Axis(0), rows)),
            pseudonyms: rows.iter().map(|&r| self.pseudonyms[r]).collect(),
            feature_spec_hash: self.feature_spec_hash,
        })
    }

    /// Deterministic train/test split by pseudonym: a row is held out when
    /// the first 8 bytes of its pseudonym, read as a big-endian `u64`, fall
    /// below `test_fraction × 2⁶⁴`. Every party holding the same dataset gets
    /// the same split; its size is close to, not exactly, the fraction.
    /// Returns `(train, test)`.
    pub fn split_holdout(&self, test_fraction: f64) -> (Dataset, Dataset) {
        let fraction = if test_fraction.is_finite() {
            test_fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (row, pseudonym) in self.pseudonyms.iter().enumerate() {
            let mut prefix = [0u8; 8];
            prefix.copy_from_slice(&pseudonym[..8]);
            let position = u64::from_be_bytes(prefix) as f64 / 18_446_744_073_709_551_616.0;
            if position < fraction {
                test.push(row);
            } else {
                train.push(row);
            }
        }
        // Indices come from this dataset, so selection cannot fail.
        let pick = |rows: &[usize]| Dataset {
            features: self.features.select(Axis(0), rows),
            targets: self.targets.as_ref().map(|t| t.select(Axis(0), rows)),
            pseudonyms: rows.iter().map(|&r| self.pseudonyms[r]).collect(),
            feature_spec_hash: self.feature_spec_hash,
        };
        (pick(&train), pick(&test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn from_arrays_checks_shape_and_values() {
        let x = array![[1.0, 2.0], [3.0, 4.0]];
        assert_eq!(
            Dataset::from_arrays(x.clone(), Some(array![1.0]), [0; 32]),
            Err(BuildDatasetError::ShapeMismatch {
                rows: 2,
                targets: 1
            })
        );
        assert_eq!(
            Dataset::from_arrays(array![[1.0], [f64::NAN]], None, [0; 32]),
            Err(BuildDatasetError::NonFinite { row: 1 })
        );
        assert_eq!(
            Dataset::from_arrays(Array2::zeros((3, 0)), None, [0; 32]),
            Err(BuildDatasetError::NoColumns)
        );
        let d = Dataset::from_arrays(x, Some(array![0.0, 1.0]), [7; 32]).unwrap();
        assert_eq!(
            format!("{d:?}"),
            "Dataset { rows: 2, columns: 2, has_targets: true, .. }"
        );
        assert_eq!(d.select(&[1]).unwrap().features(), array![[3.0, 4.0]]);
        assert_eq!(
            d.select(&[2]),
            Err(BuildDatasetError::RowOutOfRange { row: 2, rows: 2 })
        );
    }

    #[test]
    fn holdout_split_is_a_partition() {
        let x = Array2::from_shape_fn((1000, 1), |(i, _)| i as f64);
        let d = Dataset::from_arrays(x, None, [0; 32]).unwrap();
        let (train, test) = d.split_holdout(0.2);
        assert_eq!(train.len() + test.len(), 1000);
        assert!((150..250).contains(&test.len()));
        let (all_train, none) = d.split_holdout(0.0);
        assert_eq!((all_train.len(), none.len()), (1000, 0));
        assert_eq!(d.split_holdout(0.2), (train, test));
    }
}
