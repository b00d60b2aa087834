//! Verifiable AI on `Network` (the core's `node::analytics`): train on the
//! consented records at a checkpoint and write a model card, predict and
//! record the decision, re-verify a card, audit, and prove to a patient
//! whether their record is in a card's dataset.
//!
//! Flow: the researcher calls [`Network::train`] on the study network (the
//! card goes on the ledger); any member [`Network::verify_model`]s it after
//! syncing; [`Network::predict`] writes one decision entry per prediction;
//! [`Network::prove_membership`] answers a patient, who checks the answer
//! with [`verify_membership`] (no node needed) against the commitment the
//! card names ([`model_card_dataset_commitment`]).

use careledger::analytics::ledger::Holdout;
use careledger::analytics::ledger::{DecisionRecord, ModelCard};
use careledger::analytics::{self as core, FeatureSpec};
use careledger::checkpoint::dataset::{
    verify_membership as core_verify_membership, DatasetCommitment, Membership, MembershipProof,
};
use careledger::entry::{AuthorId, EntryId};
use careledger::node::{
    AuditEntry as CoreAuditEntry, AuditRecord as CoreAuditRecord, DecisionOutcome,
    PredictInput as CorePredictInput, TrainRequest, Verification as CoreVerification,
    VerifyOutcome, VerifyStep as CoreVerifyStep,
};

use crate::consent::Purpose;
use crate::error::ApiError;
use crate::network::Network;
use crate::node::now_ms;

fn entry_id(hex: &str) -> Result<EntryId, ApiError> {
    EntryId::from_hex(hex.trim())
        .ok_or_else(|| ApiError::invalid_argument("entry id must be 64 hex digits"))
}

/// A model kind and its hyperparameters (defaults as scikit-learn's where
/// it has the same model).
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum ModelKind {
    /// Binary logistic regression (L-BFGS) on standardised features.
    LogisticRegression {
        /// L2 penalty (≥ 0); 1 is scikit-learn's `C = 1`.
        #[uniffi(default = 1.0)]
        alpha: f64,
        /// Iteration limit (≥ 1).
        #[uniffi(default = 100)]
        max_iterations: u64,
        /// Converged when the mean loss's gradient norm is below this.
        #[uniffi(default = 0.0001)]
        gradient_tolerance: f64,
    },
    /// Binary classification tree (Gini).
    DecisionTree {
        /// Maximum depth, 1 to 64.
        #[uniffi(default = 8)]
        max_depth: u32,
        /// A node with fewer rows is not split (≥ 2).
        #[uniffi(default = 2)]
        min_samples_split: u32,
    },
    /// k-means (k-means++ initialisation).
    KMeans {
        /// Number of clusters (≥ 1, ≤ rows).
        k: u32,
        /// Iteration limit per run (≥ 1).
        #[uniffi(default = 300)]
        max_iterations: u64,
        /// Converged when centroids move less than this.
        #[uniffi(default = 0.0001)]
        tolerance: f64,
        /// Independent initialisations; the lowest inertia wins (≥ 1).
        #[uniffi(default = 10)]
        n_runs: u32,
    },
    /// Ordinary least squares.
    LinearRegression,
}

impl From<ModelKind> for core::ModelKind {
    fn from(kind: ModelKind) -> Self {
        match kind {
            ModelKind::LogisticRegression {
                alpha,
                max_iterations,
                gradient_tolerance,
            } => core::ModelKind::LogisticRegression {
                alpha,
                max_iterations,
                gradient_tolerance,
            },
            ModelKind::DecisionTree {
                max_depth,
                min_samples_split,
            } => core::ModelKind::DecisionTree {
                max_depth,
                min_samples_split,
            },
            ModelKind::KMeans {
                k,
                max_iterations,
                tolerance,
                n_runs,
            } => core::ModelKind::KMeans {
                k,
                max_iterations,
                tolerance,
                n_runs,
            },
            ModelKind::LinearRegression => core::ModelKind::LinearRegression,
        }
    }
}

/// Metrics on the held-out rows, by model family (the card's JSON has the
/// ROC curve and calibration bins too).
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum ModelMetrics {
    /// Logistic regression, decision tree.
    Classification {
        /// Rows evaluated.
        rows: u64,
        /// Share of rows classified right.
        accuracy: f64,
        /// Area under the ROC curve; `None` when the rows hold one class.
        auc: Option<f64>,
    },
    /// k-means.
    Clustering {
        /// Rows evaluated.
        rows: u64,
        /// Sum of squared distances to the nearest centroid.
        inertia: f64,
        /// Mean silhouette; `None` with fewer than two clusters present.
        silhouette: Option<f64>,
    },
    /// Linear regression.
    Regression {
        /// Rows evaluated.
        rows: u64,
        /// Coefficient of determination; `None` for constant targets.
        r2: Option<f64>,
        /// Root mean squared error, in target units.
        rmse: f64,
    },
}

impl From<&core::Metrics> for ModelMetrics {
    fn from(metrics: &core::Metrics) -> Self {
        match metrics {
            core::Metrics::Classification(m) => ModelMetrics::Classification {
                rows: m.rows,
                accuracy: m.accuracy,
                auc: m.auc,
            },
            core::Metrics::Clustering(m) => ModelMetrics::Clustering {
                rows: m.rows,
                inertia: m.inertia,
                silhouette: m.silhouette,
            },
            core::Metrics::Regression(m) => ModelMetrics::Regression {
                rows: m.rows,
                r2: m.r2,
                rmse: m.rmse,
            },
        }
    }
}

/// A model card written by `Network.train`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct TrainResult {
    /// The model card's entry id (hex): pass it to `predict`,
    /// `verify_model` and `prove_membership`.
    pub entry_id: String,
    /// The card as JSON (everything `verify_model` rebuilds from).
    pub card_json: String,
    /// Records in the dataset (the commitment's size).
    pub dataset_size: u64,
    /// Records left out because consent did not permit the purpose.
    pub excluded_by_consent: u64,
    /// Training rows.
    pub training_rows: u64,
    /// Held-out rows evaluated.
    pub test_rows: u64,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
    /// Metrics on the held-out rows; `None` when none were held out.
    pub metrics: Option<ModelMetrics>,
    /// SHA-256 of the serialized model (hex).
    pub model_hash: String,
}

/// The input of a prediction.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum PredictInput {
    /// A patient's chart in the network: features are read from it (missing
    /// ones take the training mean) and consent is checked.
    Record {
        /// The patient's id.
        patient_id: String,
    },
    /// Feature values in the spec's column order; the caller answers for
    /// consent.
    Features {
        /// One value per feature column.
        values: Vec<f64>,
    },
}

impl From<PredictInput> for CorePredictInput {
    fn from(input: PredictInput) -> Self {
        match input {
            PredictInput::Record { patient_id } => CorePredictInput::Record(patient_id),
            PredictInput::Features { values } => CorePredictInput::Features(values),
        }
    }
}

/// What a model said.
#[derive(Clone, Copy, Debug, PartialEq, uniffi::Enum)]
pub enum Prediction {
    /// A classifier's answer.
    Classification {
        /// 0 or 1.
        predicted_class: u32,
        /// Probability of class 1.
        positive_probability: f64,
    },
    /// k-means: the nearest centroid.
    Cluster {
        /// Its index.
        cluster: u32,
        /// Distance to it, in standardised units.
        distance: f64,
    },
    /// Linear regression's estimate.
    Regression {
        /// In target units.
        value: f64,
    },
}

impl From<core::Prediction> for Prediction {
    fn from(prediction: core::Prediction) -> Self {
        match prediction {
            core::Prediction::Class {
                class,
                positive_probability,
            } => Prediction::Classification {
                predicted_class: class,
                positive_probability,
            },
            core::Prediction::Cluster { cluster, distance } => {
                Prediction::Cluster { cluster, distance }
            }
            core::Prediction::Value { value } => Prediction::Regression { value },
        }
    }
}

/// A prediction recorded on the ledger (one decision entry).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Decision {
    /// The decision entry's id (hex).
    pub entry_id: String,
    /// The model card it used (entry id, hex).
    pub model_card_id: String,
    /// The patient predicted for, if the input was a record.
    pub patient_id: Option<String>,
    /// What the model said.
    pub output: Prediction,
    /// The purpose consent was checked for.
    pub purpose: Purpose,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
    /// SHA-256 commitment to the input (hex).
    pub input_commitment: String,
    /// When (Unix ms).
    pub time_ms: u64,
    /// The decision as a FHIR R4 `Provenance` resource, JSON text.
    pub provenance_json: String,
}

impl Decision {
    fn new(entry: &EntryId, decision: &DecisionRecord, author: &AuthorId) -> Self {
        let entry_id = entry.to_hex();
        Decision {
            provenance_json: decision
                .to_provenance(&entry_id, &author.to_hex())
                .to_string(),
            entry_id,
            model_card_id: decision.model_card.clone(),
            patient_id: decision.subject.clone(),
            output: decision.output.into(),
            purpose: Purpose::from(&careledger::consent::Purpose::from_code(&decision.purpose)),
            consent_ids: decision.consent_ids.clone(),
            input_commitment: decision.input_commitment.clone(),
            time_ms: decision.time_ms,
        }
    }
}

/// A step of `Network.verify_model`, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum VerifyStep {
    /// The model bytes hash to the card's model hash and load.
    ModelBytes,
    /// The feature spec hashes to the card's.
    FeatureSpec,
    /// This replica reproduces the card's checkpoint.
    Checkpoint,
    /// The rebuilt dataset has the card's commitment.
    Dataset,
    /// The same consents were relied on.
    Consent,
    /// A federated card's update entries are present and consistent.
    Updates,
    /// Retraining gives the card's model.
    Model,
    /// Re-evaluating gives the card's metrics.
    Metrics,
}

impl From<CoreVerifyStep> for VerifyStep {
    fn from(step: CoreVerifyStep) -> Self {
        match step {
            CoreVerifyStep::ModelBytes => VerifyStep::ModelBytes,
            CoreVerifyStep::FeatureSpec => VerifyStep::FeatureSpec,
            CoreVerifyStep::Checkpoint => VerifyStep::Checkpoint,
            CoreVerifyStep::Dataset => VerifyStep::Dataset,
            CoreVerifyStep::Consent => VerifyStep::Consent,
            CoreVerifyStep::Updates => VerifyStep::Updates,
            CoreVerifyStep::Model => VerifyStep::Model,
            CoreVerifyStep::Metrics => VerifyStep::Metrics,
        }
    }
}

/// The answer of `Network.verify_model`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Verification {
    /// Every step matched (exactly, or within the floating-point tolerance).
    pub confirmed: bool,
    /// The retrained model is byte-identical to the card's.
    pub exact: bool,
    /// Largest relative parameter difference, when confirmed within tolerance.
    pub max_relative_difference: Option<f64>,
    /// The first step that differed, if any.
    pub mismatch_step: Option<VerifyStep>,
    /// What differed (never record data), if anything.
    pub detail: Option<String>,
    /// Steps that passed, in order.
    pub passed: Vec<VerifyStep>,
}

impl From<CoreVerification> for Verification {
    fn from(verification: CoreVerification) -> Self {
        let confirmed = verification.is_confirmed();
        let passed = verification.passed.into_iter().map(Into::into).collect();
        let (exact, max_relative_difference, mismatch_step, detail) = match verification.outcome {
            VerifyOutcome::Confirmed => (true, None, None, None),
            VerifyOutcome::ConfirmedWithinTolerance {
                max_relative_difference,
            } => (false, Some(max_relative_difference), None, None),
            VerifyOutcome::Mismatch { step, detail } => {
                (false, None, Some(step.into()), Some(detail))
            }
        };
        Verification {
            confirmed,
            exact,
            max_relative_difference,
            mismatch_step,
            detail,
            passed,
        }
    }
}

/// What one audited entry says.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum AuditRecord {
    /// A model card.
    ModelCard {
        /// The card as JSON.
        card_json: String,
        /// Size of the serialized model.
        model_bytes: u64,
    },
    /// A prediction.
    DecisionMade {
        /// The decision.
        decision: Decision,
    },
    /// A federated model update.
    ModelUpdate {
        /// The round label.
        round: String,
        /// The site (node name) that trained it.
        site: String,
        /// Its training rows (the averaging weight).
        samples: u64,
        /// Consent ids relied on at the site, sorted.
        consent_ids: Vec<String>,
    },
    /// A member's privacy-budget policy for federated tasks.
    FlPolicy {
        /// Largest ε a site's dataset may reach.
        max_epsilon: f64,
        /// The δ it is stated at.
        delta: f64,
        /// Whether tasks without differential privacy are allowed.
        allow_non_private: bool,
    },
    /// A federated task's plan, as JSON.
    FlPlan {
        /// The plan (sites, rounds, DP parameters, budget prior and projected).
        plan_json: String,
    },
    /// A federated round card, as JSON (sum, parameters, budget spent).
    FlRound {
        /// The card.
        card_json: String,
    },
    /// A record cut off by consent: its key withheld from the network.
    KeyWithheld {
        /// The record (patient id).
        record_id: String,
        /// Why (`consent denies`, `consent expired`, `consent revoked`, `no
        /// consent`).
        reason: String,
        /// The consent that decided, if one did.
        consent_id: Option<String>,
    },
}

/// One analytics entry of a network's ledger.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct AuditEntry {
    /// Entry id (hex).
    pub entry_id: String,
    /// Author id (hex).
    pub author_id: String,
    /// The author's node name.
    pub author_name: String,
    /// Author-claimed time (Unix ms).
    pub time_ms: u64,
    /// What it says.
    pub record: AuditRecord,
}

impl From<CoreAuditEntry> for AuditEntry {
    fn from(entry: CoreAuditEntry) -> Self {
        let record = match entry.record {
            CoreAuditRecord::ModelCard { card, model_bytes } => AuditRecord::ModelCard {
                card_json: card.to_json(),
                model_bytes: u64::try_from(model_bytes).unwrap_or(u64::MAX),
            },
            CoreAuditRecord::Decision(decision) => AuditRecord::DecisionMade {
                decision: Decision::new(&entry.entry, &decision, &entry.author),
            },
            CoreAuditRecord::ModelUpdate(facts) => AuditRecord::ModelUpdate {
                round: facts.round,
                site: facts.site,
                samples: facts.samples,
                consent_ids: facts.consent_ids,
            },
            CoreAuditRecord::FlPolicy(policy) => AuditRecord::FlPolicy {
                max_epsilon: policy.max_epsilon,
                delta: policy.delta,
                allow_non_private: policy.allow_non_private,
            },
            CoreAuditRecord::FlPlan(plan) => AuditRecord::FlPlan {
                plan_json: String::from_utf8_lossy(&plan.encode()).into_owned(),
            },
            CoreAuditRecord::FlRound(card) => AuditRecord::FlRound {
                card_json: serde_json::to_string(&card).unwrap_or_default(),
            },
            CoreAuditRecord::KeyWithheld {
                record,
                reason,
                consent,
            } => AuditRecord::KeyWithheld {
                record_id: record,
                reason,
                consent_id: Some(consent).filter(|c| !c.is_empty()),
            },
        };
        AuditEntry {
            entry_id: entry.entry.to_hex(),
            author_id: entry.author.to_hex(),
            author_name: entry.author_name,
            time_ms: entry.time_ms,
            record,
        }
    }
}

/// A membership proof and the commitment it was made against, as bytes to
/// hand to the patient.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MembershipProofBytes {
    /// The dataset commitment (version, size, Merkle root).
    pub commitment: Vec<u8>,
    /// The proof that the record is, or is not, in the dataset.
    pub proof: Vec<u8>,
}

#[uniffi::export]
impl Network {
    /// Train a model on this network's records as they are now, keeping
    /// only what consent permits for research by this network and this
    /// node, and write its model card to the ledger. `spec_json` is a
    /// careledger feature spec; `holdout_fraction` of the rows (by
    /// pseudonym, in [0, 1)) is held out for the card's metrics.
    ///
    /// Errors: `InvalidSpec`, `EmptyAfterConsent`, `TrainingFailed`,
    /// `InvalidArgument` (hold-out), `NotAMember`.
    #[uniffi::method(default(seed = 42, holdout_fraction = 0.2))]
    pub fn train(
        &self,
        spec_json: String,
        kind: ModelKind,
        seed: u64,
        holdout_fraction: f64,
    ) -> Result<TrainResult, ApiError> {
        let spec = FeatureSpec::from_json(&spec_json)?;
        let mut request = TrainRequest::new(spec, kind.into());
        request.seed = seed;
        request.holdout = Holdout::Fraction(holdout_fraction);
        self.shared.with(|node| {
            let outcome = node.train_model(&self.id, &request, now_ms(), &mut |_| {})?;
            let card = &outcome.card;
            Ok(TrainResult {
                entry_id: outcome.entry.to_hex(),
                card_json: card.to_json(),
                dataset_size: card.dataset.as_ref().map_or(0, |d| d.size),
                excluded_by_consent: card.excluded_by_consent,
                training_rows: card.training_rows,
                test_rows: card.test_rows,
                consent_ids: card.consent_ids.clone(),
                metrics: card.metrics.as_ref().map(ModelMetrics::from),
                model_hash: card.model_hash.clone(),
            })
        })
    }

    /// Predict with the model of card `card_id` and record the decision:
    /// exactly one decision entry per successful prediction, none for a
    /// refused one.
    ///
    /// Errors: `ConsentDenied` (a record input whose consent does not permit
    /// `purpose` for this node), `UnknownModelCard`, `UnknownPatient`,
    /// `InvalidArgument` (ids, feature count or values).
    pub fn predict(
        &self,
        card_id: String,
        input: PredictInput,
        purpose: Purpose,
    ) -> Result<Decision, ApiError> {
        let card = entry_id(&card_id)?;
        self.shared.with(|node| {
            let DecisionOutcome { entry, decision } =
                node.predict(&self.id, &card, &input.into(), purpose.into(), now_ms())?;
            Ok(Decision::new(
                &entry,
                &decision,
                &node.identity().author_id(),
            ))
        })
    }

    /// Re-verify model card `card_id` from this replica: rebuild its dataset
    /// at its checkpoint, retrain, compare. A difference is an answer
    /// (`confirmed` false, with the step), not an error.
    ///
    /// Errors: `UnknownModelCard`, `InvalidLedgerEntry`, `InvalidArgument`.
    pub fn verify_model(&self, card_id: String) -> Result<Verification, ApiError> {
        let card = entry_id(&card_id)?;
        self.shared
            .with(|node| Ok(Verification::from(node.verify_model(&self.id, &card)?)))
    }

    /// Model cards, decisions, model updates and consent cut-offs on this
    /// network's ledger, in local order.
    pub fn audit(&self) -> Result<Vec<AuditEntry>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .audit(&self.id)?
                .into_iter()
                .map(AuditEntry::from)
                .collect())
        })
    }

    /// A proof that `record_id` (a patient id) is, or is not, in the
    /// dataset of model card `card_id`, for the patient to check with
    /// `verify_membership`.
    ///
    /// Errors: `UnknownModelCard`, `NotCaughtUp`, `InvalidLedgerEntry` (a
    /// federated card has no dataset of its own).
    pub fn prove_membership(
        &self,
        card_id: String,
        record_id: String,
    ) -> Result<MembershipProofBytes, ApiError> {
        let card = entry_id(&card_id)?;
        self.shared.with(|node| {
            let (commitment, proof) = node.prove_dataset_membership(&self.id, &card, &record_id)?;
            Ok(MembershipProofBytes {
                commitment: commitment.encode(),
                proof: proof.encode(),
            })
        })
    }
}

/// Check a membership proof for `record_id` against a dataset commitment
/// (both from `Network.prove_membership`): `true` if the record is in the
/// dataset, `false` if the proof shows it is not. Needs no node: a phone
/// that is not a member of the study can check.
///
/// Errors: `InvalidProof` (malformed bytes, or a proof that does not
/// verify against the commitment).
#[uniffi::export]
pub fn verify_membership(
    commitment: Vec<u8>,
    record_id: String,
    proof: Vec<u8>,
) -> Result<bool, ApiError> {
    let commitment = DatasetCommitment::decode(&commitment)?;
    let proof = MembershipProof::decode(&proof)?;
    match core_verify_membership(&commitment.root, commitment.size, &record_id, &proof)? {
        Membership::Included { .. } => Ok(true),
        Membership::NotIncluded => Ok(false),
    }
}

/// The dataset commitment a model card names (its JSON, as in
/// `TrainResult.card_json`), encoded as `verify_membership` takes it: check
/// a proof against the card itself rather than the prover's word.
///
/// Errors: `InvalidLedgerEntry` (not a model card, or a federated card,
/// which has no dataset of its own).
#[uniffi::export]
pub fn model_card_dataset_commitment(card_json: String) -> Result<Vec<u8>, ApiError> {
    let invalid = |reason: String| ApiError::InvalidLedgerEntry { reason };
    let card = ModelCard::from_json(card_json.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let dataset = card
        .dataset
        .ok_or_else(|| invalid("a federated card has no dataset of its own".into()))?;
    let root = hex::decode(&dataset.root)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| invalid("the card's dataset root is not 32 bytes of hex".into()))?;
    let commitment = DatasetCommitment {
        size: dataset.size,
        root,
    };
    // Round-trip through the decoder so the bytes obey its rules.
    Ok(DatasetCommitment::decode(&commitment.encode())?.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> careledger::checkpoint::dataset::DatasetTree {
        DatasetCommitment::build([
            ("pt-a".to_string(), vec![[1; 32]]),
            ("pt-c".to_string(), vec![[3; 32], [2; 32]]),
        ])
        .unwrap()
    }

    #[test]
    fn membership_is_answered_from_bytes_alone() {
        let tree = tree();
        let commitment = tree.commitment().encode();
        let proof = |record: &str| tree.prove(record).encode();
        assert!(verify_membership(commitment.clone(), "pt-a".into(), proof("pt-a")).unwrap());
        assert!(!verify_membership(commitment.clone(), "pt-b".into(), proof("pt-b")).unwrap());
        assert!(!verify_membership(commitment.clone(), "pt-d".into(), proof("pt-d")).unwrap());
    }

    #[test]
    fn a_proof_for_another_record_or_malformed_bytes_is_refused() {
        let tree = tree();
        let commitment = tree.commitment().encode();
        let refused =
            |result: Result<bool, ApiError>| matches!(result, Err(ApiError::InvalidProof { .. }));
        let for_a = tree.prove("pt-a").encode();
        assert!(refused(verify_membership(
            commitment.clone(),
            "pt-c".into(),
            for_a.clone()
        )));
        assert!(refused(verify_membership(vec![1], "pt-a".into(), for_a)));
        assert!(refused(verify_membership(
            commitment,
            "pt-a".into(),
            vec![1, 3]
        )));
    }

    #[test]
    fn only_a_model_card_with_a_dataset_names_a_commitment() {
        assert!(matches!(
            model_card_dataset_commitment("{}".into()),
            Err(ApiError::InvalidLedgerEntry { .. })
        ));
    }
}
