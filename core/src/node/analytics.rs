//! Verifiable AI on a network's records (DESIGN §7): datasets at a
//! checkpoint filtered by consent, training with a model card on the
//! ledger, re-verification, decisions, federated rounds, audit, and
//! dataset-membership proofs for patients.
//!
//! # One code path for the trainer and the verifier
//!
//! [`Node::train_model`] and [`Node::verify_model`] both build the dataset
//! with the same function from the same inputs, all of which the model card
//! names: the checkpoint (per-author heads), the network whose consent
//! grants are required, the trainer's node, the purpose and the instant
//! consent is evaluated at, the feature spec and the pseudonym salt.
//!
//! 1. **Records at the checkpoint.** The entries of the ledger up to each
//!    author's head in the checkpoint are collected and their checkpoint
//!    recomputed: if it differs, this replica does not hold that ledger
//!    state (mismatch at *checkpoint*). Each record change among them is
//!    opened and its Automerge change hash noted; each chart is then read
//!    at exactly those changes (Automerge reads a document at historical
//!    heads), whatever was written since.
//! 2. **Consent.** For each chart, each resource type the spec reads
//!    (Patient for age and sex, Observation, Condition, MedicationRequest) is
//!    decided by [`permits`](crate::consent::permits) with the chart's own
//!    consents at that checkpoint, for `[Network(grantee), Node(trainer)]`.
//!    A chart is used only if every type the spec reads is permitted (a
//!    withheld Condition would otherwise read as "no condition", a wrong
//!    label); the others, and charts with an unreadable consent, are left
//!    out and counted.
//! 3. **Features** are extracted and de-identified by
//!    [`extract`](crate::analytics::extract) (HMAC pseudonyms under the salt).
//! 4. **Commitment.** The dataset commitment is the Merkle root over
//!    (record id, heads) of every chart that gave a row.
//! 5. **Fit** on the training rows (hold-out by pseudonym fraction or by a
//!    list of record ids), evaluate on the held-out rows.
//!
//! `verify` then compares, in order, and stops at the first difference:
//! model bytes (their hash against the card), feature spec (its hash),
//! checkpoint, dataset commitment, consent ids, the retrained model, the
//! metrics. Linear models whose retrained parameters differ from the card's
//! only in the last bits (another CPU's floating point) are *confirmed
//! within tolerance* (relative 1e-9), with the largest difference reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use super::consent::{chart_consents, decide_types};
use super::{ExportError, NetworkError, NetworkId, Node, RejectEntryError};
use crate::analytics::ledger::{
    sha256_hex, CardOrigin, DatasetRef, DecisionRecord, Holdout, ModelCard, UpdateFacts,
};
use crate::analytics::{
    evaluate, extract, extract_features, fedavg, predict, train, AnalyticsError, Dataset,
    ExtractedDataset, Feature, FeatureSpec, Metrics, ModelKind, ModelUpdate, PatientRecord,
    Prediction, TrainedModel, LINFA_VERSION,
};
use crate::checkpoint::dataset::{DatasetCommitment, DatasetTree, MembershipProof};
use crate::checkpoint::{Checkpoint, CheckpointTree};
use crate::consent::{Grantee, Purpose};
use crate::entry::{AuthorId, Entry, EntryId, EntryKind};
use crate::keys::EpochKey;
use crate::record::doc::RecordDoc;
use crate::store::StoreError;

/// Relative tolerance for parameters retrained on another platform.
pub const PARAMETER_TOLERANCE: f64 = 1e-9;

/// An analytics operation on the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// Consent left no record to use (every chart was excluded).
    #[error("no record may be used: consent for {purpose} excluded all {excluded} record(s)")]
    EmptyAfterConsent {
        /// The purpose code.
        purpose: String,
        /// Records excluded.
        excluded: usize,
    },
    /// Consent does not permit this use of this record.
    #[error("consent does not permit {purpose} use of this record")]
    ConsentDenied {
        /// The purpose code.
        purpose: String,
    },
    /// No model card with that entry id in this network.
    #[error("no model card with that entry id in this network")]
    UnknownModelCard,
    /// No record for that patient in this network.
    #[error("no record for that patient in this network")]
    UnknownPatient,
    /// This replica does not hold the ledger state a checkpoint describes.
    #[error("this replica does not reproduce the checkpoint: {0}")]
    Checkpoint(String),
    /// A round has no updates.
    #[error("round {0:?} has no model updates in this network")]
    NoUpdates(String),
    /// A site published twice in one round.
    #[error("site {site:?} published more than one update in round {round:?}")]
    DuplicateSite {
        /// The round.
        round: String,
        /// The site.
        site: String,
    },
    /// A federated card has no dataset of its own to prove membership in
    /// (each site's update commits to its site's dataset).
    #[error("a federated model card has no dataset of its own; ask the sites")]
    NoDataset,
    /// The updates of a round were made for different purposes.
    #[error("the updates of round {round:?} were trained for different purposes")]
    MixedRound {
        /// The round.
        round: String,
    },
    /// A hold-out list or fraction is unusable.
    #[error("invalid hold-out: {0}")]
    Holdout(String),
    /// A ledger body could not be read.
    #[error("{0}")]
    Body(String),
    /// Feature extraction, training, evaluation or averaging failed.
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
    /// The network is not usable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn analytics<E: Into<AnalyticsError>>(error: E) -> AiError {
    AiError::Analytics(error.into())
}

/// What to train.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRequest {
    /// Features and label.
    pub spec: FeatureSpec,
    /// Model kind and hyperparameters.
    pub kind: ModelKind,
    /// Seed.
    pub seed: u64,
    /// Purpose consent must permit (normally [`Purpose::Research`]).
    pub purpose: Purpose,
    /// Which rows are held out for the card's metrics.
    pub holdout: Holdout,
    /// Evaluate consent at this instant (default: now).
    pub as_of_ms: Option<u64>,
}

impl TrainRequest {
    /// Research use, 20 % held out, seed 42.
    pub fn new(spec: FeatureSpec, kind: ModelKind) -> TrainRequest {
        TrainRequest {
            spec,
            kind,
            seed: 42,
            purpose: Purpose::Research,
            holdout: Holdout::Fraction(0.2),
            as_of_ms: None,
        }
    }
}

/// Where training is, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainStage {
    /// Computing the checkpoint.
    Checkpoint,
    /// Reading charts at the checkpoint: `done` of `total`.
    Records {
        /// Charts read.
        done: usize,
        /// Charts to read.
        total: usize,
    },
    /// Extracting features.
    Extract,
    /// Fitting.
    Fit,
    /// Evaluating on the held-out rows.
    Evaluate,
    /// Writing the entry.
    Write,
}

/// A dataset built from the records at a checkpoint.
#[derive(Clone, Debug)]
pub struct BuiltDataset {
    /// The de-identified dataset and, beside it, the record ids of its rows.
    pub extracted: ExtractedDataset,
    /// The dataset commitment tree (answers membership proofs).
    pub tree: DatasetTree,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
    /// Charts left out by consent.
    pub excluded_by_consent: usize,
    /// Charts of the network erased (crypto-shredded): in no dataset.
    pub erased_charts: usize,
}

/// The result of training (or of a federated round).
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The model card entry.
    pub entry: EntryId,
    /// The card.
    pub card: ModelCard,
    /// The model.
    pub model: TrainedModel,
}

/// The result of publishing a model update.
#[derive(Clone, Debug)]
pub struct UpdateOutcome {
    /// The model-update entry.
    pub entry: EntryId,
    /// What it says.
    pub facts: UpdateFacts,
    /// The site's model.
    pub model: TrainedModel,
}

/// A step of [`Node::verify_model`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyStep {
    /// The model bytes hash to the card's model hash and load.
    ModelBytes,
    /// The feature spec hashes to the card's spec hash.
    FeatureSpec,
    /// This replica reproduces the card's checkpoint.
    Checkpoint,
    /// The rebuilt dataset has the card's commitment.
    Dataset,
    /// The same consents were relied on.
    Consent,
    /// The update entries of a federated card are present and consistent.
    Updates,
    /// Retraining (or re-averaging) gives the card's model.
    Model,
    /// Re-evaluating gives the card's metrics.
    Metrics,
}

impl VerifyStep {
    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            VerifyStep::ModelBytes => "model bytes",
            VerifyStep::FeatureSpec => "feature spec",
            VerifyStep::Checkpoint => "checkpoint",
            VerifyStep::Dataset => "dataset commitment",
            VerifyStep::Consent => "consent ids",
            VerifyStep::Updates => "model updates",
            VerifyStep::Model => "model",
            VerifyStep::Metrics => "metrics",
        }
    }
}

/// The answer of [`Node::verify_model`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum VerifyOutcome {
    /// Everything matched bit for bit.
    Confirmed,
    /// Everything matched; retrained parameters differ from the card's by at
    /// most [`PARAMETER_TOLERANCE`] relative.
    ConfirmedWithinTolerance {
        /// Largest relative difference seen.
        max_relative_difference: f64,
    },
    /// A commitment differs.
    Mismatch {
        /// The first step that differed.
        step: VerifyStep,
        /// What differed (no record data).
        detail: String,
    },
}

/// A verification report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Verification {
    /// The answer.
    pub outcome: VerifyOutcome,
    /// Steps that passed, in order.
    pub passed: Vec<VerifyStep>,
}

impl Verification {
    /// Confirmed (exactly or within tolerance).
    pub fn is_confirmed(&self) -> bool {
        !matches!(self.outcome, VerifyOutcome::Mismatch { .. })
    }

    /// The step that differed, if any.
    pub fn mismatch(&self) -> Option<VerifyStep> {
        match self.outcome {
            VerifyOutcome::Mismatch { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// The input of a prediction.
#[derive(Clone, Debug, PartialEq)]
pub enum PredictInput {
    /// A patient's chart in the network (consent is checked).
    Record(String),
    /// A feature vector in the spec's order (the caller answers for consent).
    Features(Vec<f64>),
}

/// A recorded prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionOutcome {
    /// The decision entry.
    pub entry: EntryId,
    /// What it records.
    pub decision: DecisionRecord,
}

/// What one analytics-related entry says, for audits.
#[derive(Clone, Debug, PartialEq)]
pub enum AuditRecord {
    /// A model card (the model bytes' length beside it).
    ModelCard {
        /// The card.
        card: Box<ModelCard>,
        /// Serialized model size.
        model_bytes: usize,
    },
    /// A prediction.
    Decision(Box<DecisionRecord>),
    /// A federated model update.
    ModelUpdate(Box<UpdateFacts>),
    /// A member's privacy-budget policy for federated tasks.
    FlPolicy(crate::analytics::dp::BudgetPolicy),
    /// A federated task's plan (sites, rounds, DP parameters, budget).
    FlPlan(Box<crate::analytics::secure_fl::Plan>),
    /// A federated round card: the sum, parameters and the budget spent.
    FlRound(Box<crate::analytics::secure_fl::RoundCard>),
    /// A record cut off by consent.
    KeyWithheld {
        /// The record.
        record: String,
        /// Why.
        reason: String,
        /// The consent that decided, if any.
        consent: String,
    },
}

/// One audited entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Entry id.
    pub entry: EntryId,
    /// Author.
    pub author: AuthorId,
    /// Author's name as the roster shows it.
    pub author_name: String,
    /// Author-claimed time.
    pub time_ms: u64,
    /// What it says.
    pub record: AuditRecord,
}

/// A card as found on the ledger.
#[derive(Clone, Debug)]
pub struct StoredCard {
    /// The card.
    pub card: ModelCard,
    /// The serialized model.
    pub model: Vec<u8>,
    /// Who wrote the card (the trainer).
    pub author: AuthorId,
}

/// Resource types a spec reads.
fn spec_types(spec: &FeatureSpec) -> BTreeSet<String> {
    spec.features
        .iter()
        .chain(spec.label.iter())
        .map(|feature| match feature {
            Feature::LatestObservation { .. } => "Observation",
            Feature::AgeAt { .. } | Feature::Sex => "Patient",
            Feature::HasCondition { .. } => "Condition",
            Feature::MedicationClass { .. } => "MedicationRequest",
        })
        .map(str::to_owned)
        .collect()
}

/// Everything the dataset depends on besides the ledger.
pub(crate) struct DatasetInputs<'a> {
    pub(crate) checkpoint: &'a Checkpoint,
    pub(crate) spec: &'a FeatureSpec,
    pub(crate) purpose: &'a Purpose,
    pub(crate) grantee_network: &'a NetworkId,
    pub(crate) requester: AuthorId,
    pub(crate) as_of_ms: u64,
    pub(crate) salt: [u8; 32],
}

/// An opened entry of one of the analytics kinds.
struct OpenedEntry {
    id: EntryId,
    author: AuthorId,
    time_ms: u64,
    kind: EntryKind,
    body: Vec<u8>,
}

fn parse_hex32(text: &str, what: &str) -> Result<[u8; 32], AiError> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| AiError::Body(format!("{what} is not 32 bytes of hex")))
}

impl Node {
    /// The checkpoint of a network's ledger as this node holds it now.
    pub fn checkpoint(&self, network: &NetworkId) -> Result<CheckpointTree, AiError> {
        self.network_row(network)?;
        let entries = self.store.entries(&network.0)?;
        CheckpointTree::from_encoded_entries(network.clone(), entries.iter().map(Vec::as_slice))
            .map_err(|e| AiError::Checkpoint(e.to_string()))
    }

    /// Every chart as it was at `checkpoint`, by record id.
    fn records_at(
        &mut self,
        network: &NetworkId,
        checkpoint: &Checkpoint,
        progress: &mut dyn FnMut(TrainStage),
    ) -> Result<BTreeMap<String, RecordDoc>, AiError> {
        if checkpoint.network() != network {
            return Err(AiError::Checkpoint(
                "the checkpoint is of another network".into(),
            ));
        }
        let mut ids = Vec::new();
        let mut changes: BTreeMap<String, Vec<[u8; 32]>> = BTreeMap::new();
        for bytes in self.store.entries(&network.0)? {
            let entry = Entry::decode(&bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
            let h = &entry.header;
            match checkpoint.head(&h.author) {
                Some(head) if h.seq <= head.seq => {}
                _ => continue,
            }
            ids.push((h.author, h.seq, Entry::id_of(&bytes)));
            if h.kind != EntryKind::RecordChange {
                continue;
            }
            let key = self
                .store
                .epoch_key(&network.0, h.epoch)?
                .ok_or(StoreError::Corrupt("epochs"))?;
            let body = entry
                .open(&EpochKey::from(key))
                .map_err(|_| StoreError::Corrupt("entries.bytes"))?;
            match self.open_record_change(network, &entry, &body)? {
                Ok((record, change)) => {
                    let info = RecordDoc::inspect_change(&change)
                        .map_err(|_| StoreError::Corrupt("entries.bytes"))?;
                    changes.entry(record).or_default().push(info.hash);
                }
                Err(RejectEntryError::NoRecordKey) => {}
                Err(_) => return Err(StoreError::Corrupt("entries.bytes").into()),
            }
        }
        let rebuilt = CheckpointTree::build(network.clone(), ids)
            .map_err(|e| AiError::Checkpoint(e.to_string()))?;
        if rebuilt.checkpoint() != checkpoint {
            let behind = checkpoint
                .heads()
                .iter()
                .filter(|head| {
                    rebuilt
                        .checkpoint()
                        .head(&head.author)
                        .is_none_or(|mine| mine.seq < head.seq)
                })
                .count();
            return Err(AiError::Checkpoint(if behind > 0 {
                format!("{behind} author chain(s) are behind the checkpoint here; sync first")
            } else {
                "the entries up to the checkpoint's heads differ".into()
            }));
        }
        let total = changes.len();
        let me = self.identity.author_id();
        let mut out = BTreeMap::new();
        for (done, (record, hashes)) in changes.into_iter().enumerate() {
            progress(TrainStage::Records { done, total });
            let doc = self
                .doc_mut(network, &record, me)?
                .at(&hashes)
                .map_err(|e| AiError::Body(format!("record at checkpoint: {e}")))?;
            out.insert(record, doc);
        }
        progress(TrainStage::Records { done: total, total });
        Ok(out)
    }

    pub(crate) fn build_dataset_with(
        &mut self,
        network: &NetworkId,
        inputs: &DatasetInputs<'_>,
        progress: &mut dyn FnMut(TrainStage),
    ) -> Result<BuiltDataset, AiError> {
        let charts = self.records_at(network, inputs.checkpoint, progress)?;
        progress(TrainStage::Extract);
        let needed = spec_types(inputs.spec);
        let requester = vec![
            Grantee::Network(inputs.grantee_network.clone()),
            Grantee::Node(inputs.requester),
        ];
        let mut excluded = 0;
        let mut records = Vec::new();
        let mut facts: HashMap<String, (Vec<[u8; 32]>, BTreeSet<String>)> = HashMap::new();
        for (id, mut doc) in charts {
            let Ok(resources) = doc.resources() else {
                excluded += 1;
                continue;
            };
            let consents = chart_consents(&doc, &resources);
            if !consents.unreadable.is_empty() {
                excluded += 1;
                continue;
            }
            let list: Vec<_> = consents.consents.into_iter().map(|c| c.consent).collect();
            let decided = decide_types(
                &list,
                &needed,
                std::slice::from_ref(&requester),
                inputs.purpose,
                inputs.as_of_ms,
                network,
            );
            // Every type the spec reads must be permitted: a withheld type
            // would read as absent (a condition flag as 0), not as missing.
            if decided.allowed.len() < needed.len() {
                excluded += 1;
                continue;
            }
            let kept: Vec<_> = resources
                .into_iter()
                .filter(|r| decided.allowed.contains(r.resource_type()))
                .collect();
            records.push(PatientRecord::from_resources(id.clone(), &kept));
            facts.insert(id, (doc.heads(), decided.relied_on));
        }
        if records.is_empty() {
            return Err(AiError::EmptyAfterConsent {
                purpose: inputs.purpose.code().to_owned(),
                excluded,
            });
        }
        let extracted = extract(inputs.spec, records, &inputs.salt).map_err(analytics)?;
        let mut consent_ids = BTreeSet::new();
        let mut leaves = Vec::with_capacity(extracted.record_ids.len());
        for id in &extracted.record_ids {
            if let Some((heads, relied_on)) = facts.remove(id) {
                consent_ids.extend(relied_on);
                leaves.push((id.clone(), heads));
            }
        }
        let tree = DatasetCommitment::build(leaves)
            .map_err(|e| AiError::Body(format!("dataset commitment: {e}")))?;
        let mut erased_charts = 0;
        for stone in self.store.tombstones(&network.0)? {
            if !self.store.has_record(&network.0, &stone.record)? {
                erased_charts += 1;
            }
        }
        Ok(BuiltDataset {
            extracted,
            tree,
            consent_ids: consent_ids.into_iter().collect(),
            excluded_by_consent: excluded,
            erased_charts,
        })
    }

    /// Build the dataset `request` describes from the network's records as
    /// they are now (without training or writing anything): for a
    /// researcher's `dataset build`.
    pub fn build_dataset(
        &mut self,
        network: &NetworkId,
        request: &TrainRequest,
        now_ms: u64,
    ) -> Result<(Checkpoint, BuiltDataset), AiError> {
        let checkpoint = self.checkpoint(network)?.checkpoint().clone();
        let salt = self.store.random()?;
        let inputs = DatasetInputs {
            checkpoint: &checkpoint,
            spec: &request.spec,
            purpose: &request.purpose,
            grantee_network: network,
            requester: self.identity.author_id(),
            as_of_ms: request.as_of_ms.unwrap_or(now_ms),
            salt,
        };
        let built = self.build_dataset_with(network, &inputs, &mut |_| {})?;
        Ok((checkpoint, built))
    }

    /// Train on the network's consented records at the current checkpoint
    /// and write a model card entry. See the [module docs](self).
    pub fn train_model(
        &mut self,
        network: &NetworkId,
        request: &TrainRequest,
        now_ms: u64,
        progress: &mut dyn FnMut(TrainStage),
    ) -> Result<TrainOutcome, AiError> {
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        progress(TrainStage::Checkpoint);
        let checkpoint = self.checkpoint(network)?.checkpoint().clone();
        let salt: [u8; 32] = self.store.random()?;
        let as_of_ms = request.as_of_ms.unwrap_or(now_ms);
        let inputs = DatasetInputs {
            checkpoint: &checkpoint,
            spec: &request.spec,
            purpose: &request.purpose,
            grantee_network: network,
            requester: self.identity.author_id(),
            as_of_ms,
            salt,
        };
        let built = self.build_dataset_with(network, &inputs, progress)?;
        let (model, metrics, training_rows, test_rows) = fit(
            &built,
            &request.kind,
            request.seed,
            &request.holdout,
            progress,
        )?;
        let bytes = model.to_bytes();
        let (format, format_version) = ModelCard::header();
        let commitment = built.tree.commitment();
        let card = ModelCard {
            format,
            format_version,
            origin: CardOrigin::Trained,
            kind: request.kind.clone(),
            seed: request.seed,
            holdout: Some(request.holdout.clone()),
            purpose: request.purpose.code().to_owned(),
            grantee_network: network.to_hex(),
            feature_spec: request.spec.clone(),
            feature_spec_hash: hex::encode(request.spec.hash()),
            checkpoint_digest: hex::encode(checkpoint.digest()),
            checkpoint,
            as_of_ms,
            pseudonym_salt: hex::encode(salt),
            dataset: Some(DatasetRef {
                size: commitment.size,
                root: hex::encode(commitment.root),
            }),
            excluded_by_consent: built.excluded_by_consent as u64,
            consent_ids: built.consent_ids.clone(),
            training_rows,
            test_rows,
            library_version: crate::VERSION.to_owned(),
            linfa_version: LINFA_VERSION.to_owned(),
            metrics,
            model_hash: sha256_hex(&bytes),
        };
        progress(TrainStage::Write);
        let body = card.encode_body(&bytes);
        let entry = self
            .atomically(|node| node.append_entry(network, EntryKind::ModelCard, &body, now_ms))?;
        Ok(TrainOutcome { entry, card, model })
    }

    /// Entries of the analytics kinds (and key-withheld notices), opened, in
    /// local order.
    fn opened_entries(&self, network: &NetworkId) -> Result<Vec<OpenedEntry>, AiError> {
        self.network_row(network)?;
        let mut out = Vec::new();
        for bytes in self.store.entries(&network.0)? {
            let entry = Entry::decode(&bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
            let h = &entry.header;
            if !matches!(
                h.kind,
                EntryKind::ModelCard
                    | EntryKind::Decision
                    | EntryKind::ModelUpdate
                    | EntryKind::KeyWithheld
                    | EntryKind::FlPolicy
                    | EntryKind::FlPlan
                    | EntryKind::FlRound
            ) {
                continue;
            }
            let Some(key) = self.store.epoch_key(&network.0, h.epoch)? else {
                continue;
            };
            let Ok(body) = entry.open(&EpochKey::from(key)) else {
                continue;
            };
            out.push(OpenedEntry {
                id: Entry::id_of(&bytes),
                author: h.author,
                time_ms: h.time_ms,
                kind: h.kind,
                body,
            });
        }
        Ok(out)
    }

    /// The model card entry `id` of a network.
    pub fn model_card(&self, network: &NetworkId, id: &EntryId) -> Result<StoredCard, AiError> {
        let opened = self
            .opened_entries(network)?
            .into_iter()
            .find(|e| e.id == *id && e.kind == EntryKind::ModelCard)
            .ok_or(AiError::UnknownModelCard)?;
        let (card, model) =
            ModelCard::decode_body(&opened.body).map_err(|e| AiError::Body(e.to_string()))?;
        Ok(StoredCard {
            card,
            model,
            author: opened.author,
        })
    }

    /// Re-verify the model card entry `id`: rebuild its dataset from this
    /// replica, retrain, compare (see the [module docs](self)).
    pub fn verify_model(
        &mut self,
        network: &NetworkId,
        id: &EntryId,
    ) -> Result<Verification, AiError> {
        let stored = self.model_card(network, id)?;
        self.verify_card(network, &stored.card, &stored.model, &stored.author)
    }

    /// Verify a card and model handed over by other means (a file), as
    /// trained by `trainer`.
    pub fn verify_card(
        &mut self,
        network: &NetworkId,
        card: &ModelCard,
        model_bytes: &[u8],
        trainer: &AuthorId,
    ) -> Result<Verification, AiError> {
        let mut passed = Vec::new();
        let mismatch = |passed: Vec<VerifyStep>, step: VerifyStep, detail: String| {
            Ok(Verification {
                outcome: VerifyOutcome::Mismatch { step, detail },
                passed,
            })
        };
        // 1. Model bytes.
        if sha256_hex(model_bytes) != card.model_hash {
            return mismatch(
                passed,
                VerifyStep::ModelBytes,
                "the model bytes do not hash to the card's model hash".into(),
            );
        }
        let given = match TrainedModel::from_bytes(model_bytes) {
            Ok(model) => model,
            Err(error) => return mismatch(passed, VerifyStep::ModelBytes, error.to_string()),
        };
        passed.push(VerifyStep::ModelBytes);
        // 2. Feature spec.
        let spec_hash = hex::encode(card.feature_spec.hash());
        if spec_hash != card.feature_spec_hash
            || hex::encode(given.feature_spec_hash()) != spec_hash
        {
            return mismatch(
                passed,
                VerifyStep::FeatureSpec,
                "the feature spec does not hash to the card's feature spec hash".into(),
            );
        }
        passed.push(VerifyStep::FeatureSpec);
        // 3. Checkpoint.
        if hex::encode(card.checkpoint.digest()) != card.checkpoint_digest {
            return mismatch(
                passed,
                VerifyStep::Checkpoint,
                "the checkpoint does not match the card's checkpoint digest".into(),
            );
        }
        let grantee = NetworkId::from_hex(&card.grantee_network)
            .ok_or_else(|| AiError::Body("grantee network is not hex".into()))?;
        if let CardOrigin::Federated { round, updates } = &card.origin {
            return self.verify_federated(network, card, &given, round, updates, passed);
        }
        let salt = parse_hex32(&card.pseudonym_salt, "pseudonym salt")?;
        let purpose = Purpose::from_code(&card.purpose);
        let inputs = DatasetInputs {
            checkpoint: &card.checkpoint,
            spec: &card.feature_spec,
            purpose: &purpose,
            grantee_network: &grantee,
            requester: *trainer,
            as_of_ms: card.as_of_ms,
            salt,
        };
        let built = match self.build_dataset_with(network, &inputs, &mut |_| {}) {
            Ok(built) => built,
            Err(AiError::Checkpoint(detail)) => {
                return mismatch(passed, VerifyStep::Checkpoint, detail)
            }
            Err(AiError::EmptyAfterConsent { excluded, .. }) => {
                return mismatch(
                    passed,
                    VerifyStep::Dataset,
                    format!(
                        "the rebuilt dataset is empty ({excluded} record(s) excluded by consent)"
                    ),
                )
            }
            Err(error) => return Err(error),
        };
        passed.push(VerifyStep::Checkpoint);
        // 4. Dataset commitment.
        let commitment = built.tree.commitment();
        let rebuilt = DatasetRef {
            size: commitment.size,
            root: hex::encode(commitment.root),
        };
        match &card.dataset {
            Some(claimed) if *claimed == rebuilt => passed.push(VerifyStep::Dataset),
            Some(claimed) => {
                return mismatch(
                    passed,
                    VerifyStep::Dataset,
                    format!(
                        "the card commits to {} record(s) with root {}, this replica rebuilds {} with root {}",
                        claimed.size, claimed.root, rebuilt.size, rebuilt.root
                    ),
                )
            }
            None => {
                return mismatch(
                    passed,
                    VerifyStep::Dataset,
                    "a trained card without a dataset commitment".into(),
                )
            }
        }
        // 5. Consent ids.
        if built.consent_ids != card.consent_ids {
            return mismatch(
                passed,
                VerifyStep::Consent,
                format!(
                    "the card relies on {} consent(s), the rebuild on {}",
                    card.consent_ids.len(),
                    built.consent_ids.len()
                ),
            );
        }
        passed.push(VerifyStep::Consent);
        // 6. Model.
        let holdout = card
            .holdout
            .clone()
            .ok_or_else(|| AiError::Body("a trained card without a hold-out".into()))?;
        let (model, metrics, _, _) = fit(&built, &card.kind, card.seed, &holdout, &mut |_| {})?;
        let exact = model.to_bytes() == model_bytes;
        let mut difference = 0.0;
        if !exact {
            match parameter_difference(&model, &given) {
                Some(d) if d <= PARAMETER_TOLERANCE => difference = d,
                _ => {
                    return mismatch(
                        passed,
                        VerifyStep::Model,
                        "retraining on the rebuilt dataset gives a different model".into(),
                    )
                }
            }
        }
        passed.push(VerifyStep::Model);
        // 7. Metrics.
        if !metrics_close(&metrics, &card.metrics, exact) {
            return mismatch(
                passed,
                VerifyStep::Metrics,
                "re-evaluating on the held-out rows gives other metrics".into(),
            );
        }
        passed.push(VerifyStep::Metrics);
        Ok(Verification {
            outcome: if exact {
                VerifyOutcome::Confirmed
            } else {
                VerifyOutcome::ConfirmedWithinTolerance {
                    max_relative_difference: difference,
                }
            },
            passed,
        })
    }

    fn verify_federated(
        &mut self,
        network: &NetworkId,
        card: &ModelCard,
        given: &TrainedModel,
        round: &str,
        updates: &[String],
        mut passed: Vec<VerifyStep>,
    ) -> Result<Verification, AiError> {
        let mismatch = |passed, step, detail| {
            Ok(Verification {
                outcome: VerifyOutcome::Mismatch { step, detail },
                passed,
            })
        };
        match self.checkpoint(network) {
            Ok(tree)
                if card.checkpoint.heads().iter().all(|h| {
                    tree.checkpoint()
                        .head(&h.author)
                        .is_some_and(|mine| mine.seq >= h.seq)
                }) =>
            {
                passed.push(VerifyStep::Checkpoint)
            }
            _ => {
                return mismatch(
                    passed,
                    VerifyStep::Checkpoint,
                    "this replica is behind the card's checkpoint; sync first".into(),
                )
            }
        }
        let opened = self.opened_entries(network)?;
        let mut found = Vec::new();
        for id in updates {
            let Some(entry) = opened
                .iter()
                .find(|e| e.kind == EntryKind::ModelUpdate && e.id.to_hex() == *id)
            else {
                return mismatch(
                    passed,
                    VerifyStep::Updates,
                    format!("update entry {id} is not in this replica's ledger"),
                );
            };
            let (facts, bytes) =
                UpdateFacts::decode_body(&entry.body).map_err(|e| AiError::Body(e.to_string()))?;
            if facts.round != round {
                return mismatch(
                    passed,
                    VerifyStep::Updates,
                    format!("update entry {id} belongs to another round"),
                );
            }
            found.push((facts, bytes));
        }
        let consent: BTreeSet<String> = found
            .iter()
            .flat_map(|(facts, _)| facts.consent_ids.iter().cloned())
            .collect();
        passed.push(VerifyStep::Updates);
        if consent.into_iter().collect::<Vec<_>>() != card.consent_ids {
            return mismatch(
                passed,
                VerifyStep::Consent,
                "the card's consent ids are not those of its updates".into(),
            );
        }
        passed.push(VerifyStep::Consent);
        let parsed = found
            .iter()
            .map(|(_, bytes)| ModelUpdate::from_bytes(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(analytics)?;
        let model = fedavg(&parsed).map_err(analytics)?;
        if model.to_bytes() != given.to_bytes() {
            return mismatch(
                passed,
                VerifyStep::Model,
                "re-averaging the updates gives a different model".into(),
            );
        }
        passed.push(VerifyStep::Model);
        Ok(Verification {
            outcome: VerifyOutcome::Confirmed,
            passed,
        })
    }

    /// A proof that `record` is, or is not, in the dataset of the model card
    /// `id`, against the card's commitment (check it with
    /// [`verify_membership`](crate::checkpoint::dataset::verify_membership)).
    pub fn prove_dataset_membership(
        &mut self,
        network: &NetworkId,
        id: &EntryId,
        record: &str,
    ) -> Result<(DatasetCommitment, MembershipProof), AiError> {
        let stored = self.model_card(network, id)?;
        let card = &stored.card;
        if card.dataset.is_none() {
            return Err(AiError::NoDataset);
        }
        let grantee = NetworkId::from_hex(&card.grantee_network)
            .ok_or_else(|| AiError::Body("grantee network is not hex".into()))?;
        let purpose = Purpose::from_code(&card.purpose);
        let inputs = DatasetInputs {
            checkpoint: &card.checkpoint,
            spec: &card.feature_spec,
            purpose: &purpose,
            grantee_network: &grantee,
            requester: stored.author,
            as_of_ms: card.as_of_ms,
            salt: parse_hex32(&card.pseudonym_salt, "pseudonym salt")?,
        };
        let built = self.build_dataset_with(network, &inputs, &mut |_| {})?;
        Ok((built.tree.commitment(), built.tree.prove(record)))
    }

    /// Predict with the model of card `id` and record the decision entry.
    /// Exactly one decision entry per successful prediction; a refused or
    /// failed prediction writes nothing.
    pub fn predict(
        &mut self,
        network: &NetworkId,
        id: &EntryId,
        input: &PredictInput,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<DecisionOutcome, AiError> {
        let decision = self.decide_prediction(network, id, input, purpose, now_ms)?;
        let body = decision.encode_body();
        let entry =
            self.atomically(|node| node.append_entry(network, EntryKind::Decision, &body, now_ms))?;
        Ok(DecisionOutcome { entry, decision })
    }

    /// Everything [`Node::predict`] does but writing the entry: the rules
    /// engine writes it inside its own transaction.
    pub(crate) fn decide_prediction(
        &mut self,
        network: &NetworkId,
        id: &EntryId,
        input: &PredictInput,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<DecisionRecord, AiError> {
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        let stored = self.model_card(network, id)?;
        let model = TrainedModel::from_bytes(&stored.model).map_err(analytics)?;
        let spec = &stored.card.feature_spec;
        let mut commitment = Sha256::new();
        commitment.update(b"careledger/v1/decision-input");
        commitment.update(spec.hash());
        let (features, subject, consent_ids) = match input {
            PredictInput::Features(values) => (values.clone(), None, Vec::new()),
            PredictInput::Record(patient) => {
                let me = self.identity.author_id();
                let doc = self
                    .existing_doc(network, patient)
                    .map_err(|error| match error {
                        ExportError::UnknownPatient | ExportError::Erased => {
                            AiError::UnknownPatient
                        }
                        ExportError::Record(text) => AiError::Body(text),
                        ExportError::Network(error) => AiError::Network(error),
                        ExportError::Store(error) => AiError::Store(error),
                    })?;
                let resources = doc.resources().map_err(|e| AiError::Body(e.to_string()))?;
                let consents = chart_consents(doc, &resources);
                let heads = doc.heads();
                let list: Vec<_> = consents.consents.into_iter().map(|c| c.consent).collect();
                let needed = spec_types(spec);
                let decided = decide_types(
                    &list,
                    &needed,
                    &[vec![Grantee::Network(network.clone()), Grantee::Node(me)]],
                    &purpose,
                    now_ms,
                    network,
                );
                if decided.allowed.len() < needed.len() || !consents.unreadable.is_empty() {
                    return Err(AiError::ConsentDenied {
                        purpose: purpose.code().to_owned(),
                    });
                }
                let kept: Vec<_> = resources
                    .into_iter()
                    .filter(|r| decided.allowed.contains(r.resource_type()))
                    .collect();
                let values = extract_features(spec, &PatientRecord::from_resources(patient, &kept))
                    .map_err(analytics)?;
                let means = model.feature_means();
                let features = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v.unwrap_or_else(|| means.get(i).copied().unwrap_or(0.0)))
                    .collect();
                commitment.update((patient.len() as u64).to_be_bytes());
                commitment.update(patient.as_bytes());
                for head in heads {
                    commitment.update(head);
                }
                (
                    features,
                    Some(patient.clone()),
                    decided.relied_on.into_iter().collect(),
                )
            }
        };
        for value in &features {
            commitment.update(value.to_be_bytes());
        }
        let output: Prediction = predict(&model, &features).map_err(analytics)?;
        let (format, format_version) = DecisionRecord::header();
        let decision = DecisionRecord {
            format,
            format_version,
            model_card: id.to_hex(),
            model_hash: stored.card.model_hash.clone(),
            input_commitment: hex::encode(commitment.finalize()),
            subject,
            output,
            time_ms: now_ms,
            purpose: purpose.code().to_owned(),
            consent_ids,
        };
        Ok(decision)
    }

    /// Train on this node's consented records of `source` (consent must
    /// grant the purpose to the `study` network) and publish the parameters
    /// and sample count as a sealed model-update entry in `study`, for round
    /// `round`. Raw records never leave `source`.
    pub fn publish_model_update(
        &mut self,
        source: &NetworkId,
        study: &NetworkId,
        round: &str,
        request: &TrainRequest,
        now_ms: u64,
    ) -> Result<UpdateOutcome, AiError> {
        if !self.is_member(study)? {
            return Err(NetworkError::NotAMember.into());
        }
        let checkpoint = self.checkpoint(source)?.checkpoint().clone();
        let inputs = DatasetInputs {
            checkpoint: &checkpoint,
            spec: &request.spec,
            purpose: &request.purpose,
            grantee_network: study,
            requester: self.identity.author_id(),
            as_of_ms: request.as_of_ms.unwrap_or(now_ms),
            salt: self.store.random()?,
        };
        let built = self.build_dataset_with(source, &inputs, &mut |_| {})?;
        let (model, metrics, _, _) = fit(
            &built,
            &request.kind,
            request.seed,
            &request.holdout,
            &mut |_| {},
        )?;
        let site = self.identity.name().to_owned();
        let update = model.to_update(&site).map_err(analytics)?.to_bytes();
        let commitment = built.tree.commitment();
        let (format, format_version) = UpdateFacts::header();
        let facts = UpdateFacts {
            format,
            format_version,
            round: round.to_owned(),
            site,
            kind: request.kind.clone(),
            feature_spec: request.spec.clone(),
            feature_spec_hash: hex::encode(request.spec.hash()),
            source_network: source.to_hex(),
            source_checkpoint_digest: hex::encode(checkpoint.digest()),
            dataset: DatasetRef {
                size: commitment.size,
                root: hex::encode(commitment.root),
            },
            consent_ids: built.consent_ids,
            purpose: request.purpose.code().to_owned(),
            excluded_by_consent: built.excluded_by_consent as u64,
            samples: model.training_rows(),
            local_metrics: metrics,
            update_hash: sha256_hex(&update),
        };
        let body = facts.encode_body(&update);
        let entry = self
            .atomically(|node| node.append_entry(study, EntryKind::ModelUpdate, &body, now_ms))?;
        Ok(UpdateOutcome {
            entry,
            facts,
            model,
        })
    }

    /// Average the model updates of `round` in `study` (weighted FedAvg,
    /// updates ordered by site name) and write the global model's card.
    /// Any member recomputes it with [`Node::verify_model`].
    pub fn federated_round(
        &mut self,
        study: &NetworkId,
        round: &str,
        now_ms: u64,
    ) -> Result<TrainOutcome, AiError> {
        if !self.is_member(study)? {
            return Err(NetworkError::NotAMember.into());
        }
        let mut found = Vec::new();
        for entry in self.opened_entries(study)? {
            if entry.kind != EntryKind::ModelUpdate {
                continue;
            }
            let (facts, bytes) =
                UpdateFacts::decode_body(&entry.body).map_err(|e| AiError::Body(e.to_string()))?;
            if facts.round == round {
                found.push((facts.site.clone(), entry.id, facts, bytes));
            }
        }
        if found.is_empty() {
            return Err(AiError::NoUpdates(round.to_owned()));
        }
        found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        if let Some(pair) = found.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(AiError::DuplicateSite {
                round: round.to_owned(),
                site: pair[0].0.clone(),
            });
        }
        let updates = found
            .iter()
            .map(|(_, _, _, bytes)| ModelUpdate::from_bytes(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(analytics)?;
        let model = fedavg(&updates).map_err(analytics)?;
        let bytes = model.to_bytes();
        let first = &found[0].2;
        if found
            .iter()
            .any(|(_, _, facts, _)| facts.purpose != first.purpose)
        {
            return Err(AiError::MixedRound {
                round: round.to_owned(),
            });
        }
        let consent_ids: BTreeSet<String> = found
            .iter()
            .flat_map(|(_, _, facts, _)| facts.consent_ids.iter().cloned())
            .collect();
        let checkpoint = self.checkpoint(study)?.checkpoint().clone();
        let (format, format_version) = ModelCard::header();
        let card = ModelCard {
            format,
            format_version,
            origin: CardOrigin::Federated {
                round: round.to_owned(),
                updates: found.iter().map(|(_, id, _, _)| id.to_hex()).collect(),
            },
            kind: first.kind.clone(),
            seed: 0,
            holdout: None,
            purpose: first.purpose.clone(),
            grantee_network: study.to_hex(),
            feature_spec: first.feature_spec.clone(),
            feature_spec_hash: first.feature_spec_hash.clone(),
            checkpoint_digest: hex::encode(checkpoint.digest()),
            checkpoint,
            as_of_ms: now_ms,
            pseudonym_salt: String::new(),
            dataset: None,
            excluded_by_consent: found
                .iter()
                .map(|(_, _, facts, _)| facts.excluded_by_consent)
                .sum(),
            consent_ids: consent_ids.into_iter().collect(),
            training_rows: model.training_rows(),
            test_rows: 0,
            library_version: crate::VERSION.to_owned(),
            linfa_version: LINFA_VERSION.to_owned(),
            metrics: None,
            model_hash: sha256_hex(&bytes),
        };
        let body = card.encode_body(&bytes);
        let entry =
            self.atomically(|node| node.append_entry(study, EntryKind::ModelCard, &body, now_ms))?;
        Ok(TrainOutcome { entry, card, model })
    }

    /// Model cards, decisions, model updates, consent cut-offs, and the
    /// budget policies, plans and round cards of federated tasks (with the
    /// privacy budget each round spent) of a network, in local order.
    pub fn audit(&mut self, network: &NetworkId) -> Result<Vec<AuditEntry>, AiError> {
        let names: HashMap<AuthorId, String> =
            self.store.member_names(&network.0)?.into_iter().collect();
        let mut out = Vec::new();
        for entry in self.opened_entries(network)? {
            let record = match entry.kind {
                EntryKind::ModelCard => {
                    let (card, model) = ModelCard::decode_body(&entry.body)
                        .map_err(|e| AiError::Body(e.to_string()))?;
                    AuditRecord::ModelCard {
                        card: Box::new(card),
                        model_bytes: model.len(),
                    }
                }
                EntryKind::Decision => AuditRecord::Decision(Box::new(
                    DecisionRecord::decode_body(&entry.body)
                        .map_err(|e| AiError::Body(e.to_string()))?,
                )),
                EntryKind::ModelUpdate => AuditRecord::ModelUpdate(Box::new(
                    UpdateFacts::decode_body(&entry.body)
                        .map_err(|e| AiError::Body(e.to_string()))?
                        .0,
                )),
                EntryKind::FlPolicy => AuditRecord::FlPolicy(
                    crate::analytics::secure_fl::PolicyMessage::decode(&entry.body)
                        .map_err(|e| AiError::Body(e.to_string()))?
                        .policy,
                ),
                EntryKind::FlPlan => AuditRecord::FlPlan(Box::new(
                    crate::analytics::secure_fl::Plan::decode(&entry.body)
                        .map_err(|e| AiError::Body(e.to_string()))?,
                )),
                EntryKind::FlRound => AuditRecord::FlRound(Box::new(
                    crate::analytics::secure_fl::RoundCard::decode_body(&entry.body)
                        .map_err(|e| AiError::Body(e.to_string()))?
                        .0,
                )),
                EntryKind::KeyWithheld => {
                    let body = crate::body::KeyWithheldBody::decode(&entry.body)
                        .map_err(|e| AiError::Body(e.to_string()))?;
                    AuditRecord::KeyWithheld {
                        record: body.record,
                        reason: body.reason.name().to_owned(),
                        consent: body.consent,
                    }
                }
                _ => continue,
            };
            out.push(AuditEntry {
                author_name: names
                    .get(&entry.author)
                    .cloned()
                    .unwrap_or_else(|| entry.author.to_hex()),
                entry: entry.id,
                author: entry.author,
                time_ms: entry.time_ms,
                record,
            });
        }
        Ok(out)
    }
}

/// Split, fit and evaluate: `(model, metrics, training rows, test rows)`.
fn fit(
    built: &BuiltDataset,
    kind: &ModelKind,
    seed: u64,
    holdout: &Holdout,
    progress: &mut dyn FnMut(TrainStage),
) -> Result<(TrainedModel, Option<Metrics>, u64, u64), AiError> {
    let dataset = &built.extracted.dataset;
    let (train_set, test_set): (Dataset, Dataset) = match holdout {
        Holdout::Fraction(fraction) => {
            if !(0.0..1.0).contains(fraction) {
                return Err(AiError::Holdout(
                    "the fraction must be at least 0 and below 1".into(),
                ));
            }
            dataset.split_holdout(*fraction)
        }
        Holdout::Records(ids) => {
            let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
            let (mut train_rows, mut test_rows) = (Vec::new(), Vec::new());
            for (row, id) in built.extracted.record_ids.iter().enumerate() {
                if wanted.contains(id.as_str()) {
                    test_rows.push(row);
                } else {
                    train_rows.push(row);
                }
            }
            (
                dataset.select(&train_rows).map_err(analytics)?,
                dataset.select(&test_rows).map_err(analytics)?,
            )
        }
    };
    progress(TrainStage::Fit);
    let model = train(kind, &train_set, seed).map_err(analytics)?;
    progress(TrainStage::Evaluate);
    let metrics = if test_set.is_empty() {
        None
    } else {
        Some(evaluate(&model, &test_set).map_err(analytics)?)
    };
    Ok((
        model,
        metrics,
        train_set.len() as u64,
        test_set.len() as u64,
    ))
}

/// Largest relative difference between two linear models' parameters, or
/// `None` if they are not comparable that way.
fn parameter_difference(a: &TrainedModel, b: &TrainedModel) -> Option<f64> {
    let (wa, ia) = a.raw_parameters()?;
    let (wb, ib) = b.raw_parameters()?;
    if wa.len() != wb.len() || a.kind() != b.kind() {
        return None;
    }
    let mut worst: f64 = 0.0;
    for (x, y) in wa.iter().chain([&ia]).zip(wb.iter().chain([&ib])) {
        let scale = x.abs().max(y.abs()).max(1e-300);
        worst = worst.max((x - y).abs() / scale);
    }
    Some(worst)
}

/// Metrics equal (bit for bit when the model was), else within 1e-6.
fn metrics_close(a: &Option<Metrics>, b: &Option<Metrics>, exact: bool) -> bool {
    if exact {
        return a == b;
    }
    let (Ok(a), Ok(b)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return false;
    };
    json_close(&a, &b)
}

fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}
