//! One-shot federated averaging (FedAvg) of logistic and linear regression.
//!
//! Flow: each site trains on its own records ([`super::train`]), turns its
//! model into a [`ModelUpdate`] with [`TrainedModel::to_update`] and
//! publishes [`ModelUpdate::to_bytes`]; any member collects the updates and
//! calls [`fedavg`], and every member gets a bit-identical global model.
//!
//! **Parameterisation.** Each site standardises with its own training
//! statistics, so its weights live in its own coordinates; averaging those
//! would mix units. An update therefore carries the parameters mapped back to
//! the *raw* feature space, `[w_raw_0, …, w_raw_{d−1}, b_raw]`
//! ([`TrainedModel::raw_parameters`]). The map is linear, so this is the
//! same as averaging in any shared coordinate system; the global model uses
//! the identity scaler.
//!
//! **Arithmetic.** Updates are sorted by site id (byte order); parameter `j`
//! is `(Σ_s samples_s · p_s[j]) / Σ_s samples_s`, summed sequentially in that
//! order in IEEE-754 double precision (Rust never fuses or reorders these
//! operations), so every member computes the same bits whatever order the
//! updates arrived in.
//!
//! **What it is not.** One-shot averaging of logistic regressions is not the
//! model centralised training on the pooled rows would give (the logistic
//! loss is not quadratic, and each site's penalty acts on its own data).
//! The tests pin the documented bound on the breast-cancer split: three
//! sites, held-out accuracy within 2 points of centralised training.

use serde::{Deserialize, Serialize};

use super::model::{
    hex32, LinearParams, ModelKind, ModelOrigin, ModelParams, SiteContribution, StandardScaler,
    TrainedModel,
};

/// The model-update wire format this library reads and writes.
pub const MODEL_UPDATE_FORMAT_VERSION: u32 = 1;

const MODEL_UPDATE_FORMAT: &str = "careledger.model_update";

/// One site's contribution to a federated average.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelUpdate {
    /// The site's id (e.g. its node name); unique among the updates averaged.
    pub site: String,
    /// Model kind and hyperparameters; equal across the updates averaged.
    pub kind: ModelKind,
    /// The feature spec the site trained with; equal across the updates.
    pub feature_spec_hash: [u8; 32],
    /// Raw-feature-space weights followed by the intercept.
    pub params: Vec<f64>,
    /// Training rows at the site (the averaging weight).
    pub samples: u64,
}

/// The wire form: the update's members after `format` and `format_version`
/// (no `#[serde(flatten)]`: it breaks numbers under `arbitrary_precision`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateFile {
    format: String,
    format_version: u32,
    site: String,
    kind: ModelKind,
    #[serde(with = "hex32")]
    feature_spec_hash: [u8; 32],
    params: Vec<f64>,
    samples: u64,
}

/// Building, reading or averaging updates failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AverageModelsError {
    /// No update was given.
    #[error("no model updates to average")]
    NoUpdates,
    /// Only logistic and linear regression can be averaged.
    #[error("{model} models cannot be averaged")]
    NotAveragable {
        /// The kind's name.
        model: &'static str,
    },
    /// The updates differ in model kind or hyperparameters.
    #[error("update {index} has another model kind or hyperparameters than the first")]
    KindMismatch {
        /// Position of the update in the input.
        index: usize,
    },
    /// The updates follow different feature specs.
    #[error("update {index} follows another feature spec than the first")]
    SpecMismatch {
        /// Position of the update in the input.
        index: usize,
    },
    /// The updates differ in parameter count (or have fewer than two).
    #[error("update {index} has a parameter count that differs from the first or is below 2")]
    ParameterCountMismatch {
        /// Position of the update in the input.
        index: usize,
    },
    /// A parameter is NaN or infinite.
    #[error("update {index} holds a non-finite parameter")]
    NonFinite {
        /// Position of the update in the input.
        index: usize,
    },
    /// An update has zero samples.
    #[error("update {index} has no samples")]
    NoSamples {
        /// Position of the update in the input.
        index: usize,
    },
    /// Two updates carry one site id.
    #[error("two updates carry the same site id")]
    DuplicateSite,
    /// The sample counts overflow.
    #[error("total sample count overflows")]
    TooManySamples,
    /// The bytes are not a model update of a supported version.
    #[error("not a model update of format version {supported}")]
    Malformed {
        /// [`MODEL_UPDATE_FORMAT_VERSION`].
        supported: u32,
    },
}

impl ModelUpdate {
    /// The update as JSON, with format and version members.
    pub fn to_bytes(&self) -> Vec<u8> {
        let file = UpdateFile {
            format: MODEL_UPDATE_FORMAT.to_owned(),
            format_version: MODEL_UPDATE_FORMAT_VERSION,
            site: self.site.clone(),
            kind: self.kind.clone(),
            feature_spec_hash: self.feature_spec_hash,
            params: self.params.clone(),
            samples: self.samples,
        };
        // Strings, integers and finite floats always serialize.
        serde_json::to_vec(&file).unwrap_or_default()
    }

    /// Read an update written by [`ModelUpdate::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AverageModelsError> {
        let malformed = AverageModelsError::Malformed {
            supported: MODEL_UPDATE_FORMAT_VERSION,
        };
        let file: UpdateFile = serde_json::from_slice(bytes).map_err(|_| malformed.clone())?;
        if file.format != MODEL_UPDATE_FORMAT || file.format_version != MODEL_UPDATE_FORMAT_VERSION
        {
            return Err(malformed);
        }
        Ok(ModelUpdate {
            site: file.site,
            kind: file.kind,
            feature_spec_hash: file.feature_spec_hash,
            params: file.params,
            samples: file.samples,
        })
    }
}

impl TrainedModel {
    /// This model as a federated-averaging update from `site`: raw-space
    /// parameters and the training row count.
    pub fn to_update(&self, site: &str) -> Result<ModelUpdate, AverageModelsError> {
        let (mut params, intercept) =
            self.raw_parameters()
                .ok_or(AverageModelsError::NotAveragable {
                    model: self.kind().name(),
                })?;
        params.push(intercept);
        Ok(ModelUpdate {
            site: site.to_owned(),
            kind: self.kind().clone(),
            feature_spec_hash: self.feature_spec_hash(),
            params,
            samples: self.training_rows(),
        })
    }
}

/// Sample-weighted average of `updates` (see the [module docs](self) for the
/// parameterisation and the summation order). The result predicts with the
/// identity scaler and records the sites in its [`ModelOrigin`].
pub fn fedavg(updates: &[ModelUpdate]) -> Result<TrainedModel, AverageModelsError> {
    let first = updates.first().ok_or(AverageModelsError::NoUpdates)?;
    if !matches!(
        first.kind,
        ModelKind::LogisticRegression { .. } | ModelKind::LinearRegression
    ) {
        return Err(AverageModelsError::NotAveragable {
            model: first.kind.name(),
        });
    }
    let width = first.params.len();
    let mut total: u64 = 0;
    for (index, update) in updates.iter().enumerate() {
        if update.kind != first.kind {
            return Err(AverageModelsError::KindMismatch { index });
        }
        if update.feature_spec_hash != first.feature_spec_hash {
            return Err(AverageModelsError::SpecMismatch { index });
        }
        if update.params.len() != width || width < 2 {
            return Err(AverageModelsError::ParameterCountMismatch { index });
        }
        if update.params.iter().any(|p| !p.is_finite()) {
            return Err(AverageModelsError::NonFinite { index });
        }
        if update.samples == 0 {
            return Err(AverageModelsError::NoSamples { index });
        }
        total = total
            .checked_add(update.samples)
            .ok_or(AverageModelsError::TooManySamples)?;
    }
    let mut sorted: Vec<&ModelUpdate> = updates.iter().collect();
    sorted.sort_by(|a, b| a.site.as_bytes().cmp(b.site.as_bytes()));
    if sorted.windows(2).any(|w| w[0].site == w[1].site) {
        return Err(AverageModelsError::DuplicateSite);
    }

    let mut averaged = vec![0.0f64; width];
    for update in &sorted {
        let weight = update.samples as f64;
        for (sum, p) in averaged.iter_mut().zip(&update.params) {
            *sum += weight * p;
        }
    }
    let total_weight = total as f64;
    averaged.iter_mut().for_each(|p| *p /= total_weight);

    let intercept = averaged.pop().unwrap_or(0.0);
    let linear = LinearParams {
        weights: averaged,
        intercept,
    };
    let params = match first.kind {
        ModelKind::LinearRegression => ModelParams::LinearRegression(linear),
        _ => ModelParams::LogisticRegression(linear),
    };
    let sites = sorted
        .iter()
        .map(|u| SiteContribution {
            site: u.site.clone(),
            samples: u.samples,
        })
        .collect();
    let model = TrainedModel::new(
        first.kind.clone(),
        first.feature_spec_hash,
        total,
        ModelOrigin::FederatedAverage { sites },
        StandardScaler::identity(width - 1),
        params,
    );
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(site: &str, params: Vec<f64>, samples: u64) -> ModelUpdate {
        ModelUpdate {
            site: site.into(),
            kind: ModelKind::logistic_regression(),
            feature_spec_hash: [3; 32],
            params,
            samples,
        }
    }

    #[test]
    fn weighted_mean_by_hand() {
        let updates = [
            update("b", vec![1.0, 2.0, 3.0], 1),
            update("a", vec![4.0, 5.0, 6.0], 3),
        ];
        let model = fedavg(&updates).unwrap();
        let (weights, intercept) = model.raw_parameters().unwrap();
        assert_eq!(weights, vec![13.0 / 4.0, 17.0 / 4.0]);
        assert_eq!(intercept, 21.0 / 4.0);
        assert_eq!(model.training_rows(), 4);
        let reversed = fedavg(&[updates[1].clone(), updates[0].clone()]).unwrap();
        assert_eq!(reversed.to_bytes(), model.to_bytes());
        let round = TrainedModel::from_bytes(&model.to_bytes()).unwrap();
        assert_eq!(round, model);
    }

    #[test]
    fn typed_errors() {
        assert_eq!(fedavg(&[]).unwrap_err(), AverageModelsError::NoUpdates);
        let mut tree = update("a", vec![1.0, 2.0], 1);
        tree.kind = ModelKind::decision_tree();
        assert_eq!(
            fedavg(&[tree]).unwrap_err(),
            AverageModelsError::NotAveragable {
                model: "decision_tree"
            }
        );
        let a = update("a", vec![1.0, 2.0], 1);
        let mut other_spec = update("b", vec![1.0, 2.0], 1);
        other_spec.feature_spec_hash = [4; 32];
        assert_eq!(
            fedavg(&[a.clone(), other_spec]).unwrap_err(),
            AverageModelsError::SpecMismatch { index: 1 }
        );
        assert_eq!(
            fedavg(&[a.clone(), update("b", vec![1.0], 1)]).unwrap_err(),
            AverageModelsError::ParameterCountMismatch { index: 1 }
        );
        assert_eq!(
            fedavg(&[a.clone(), update("b", vec![1.0, f64::NAN], 1)]).unwrap_err(),
            AverageModelsError::NonFinite { index: 1 }
        );
        assert_eq!(
            fedavg(&[a.clone(), update("b", vec![1.0, 2.0], 0)]).unwrap_err(),
            AverageModelsError::NoSamples { index: 1 }
        );
        assert_eq!(
            fedavg(&[a.clone(), a.clone()]).unwrap_err(),
            AverageModelsError::DuplicateSite
        );
        assert_eq!(
            fedavg(&[a.clone(), update("b", vec![1.0, 2.0], u64::MAX)]).unwrap_err(),
            AverageModelsError::TooManySamples
        );
    }

    #[test]
    fn update_bytes_round_trip() {
        let u = update("site-a", vec![0.1, -2.5e-7, 3.0], 42);
        assert_eq!(ModelUpdate::from_bytes(&u.to_bytes()).unwrap(), u);
        let text = String::from_utf8(u.to_bytes()).unwrap();
        assert!(text.starts_with(r#"{"format":"careledger.model_update","format_version":1,"#));
        let newer = text.replace(r#""format_version":1"#, r#""format_version":2"#);
        assert_eq!(
            ModelUpdate::from_bytes(newer.as_bytes()).unwrap_err(),
            AverageModelsError::Malformed { supported: 1 }
        );
    }
}
