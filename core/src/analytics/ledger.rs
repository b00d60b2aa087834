//! What analytics writes to the ledger: model cards, decisions and federated
//! model updates (DESIGN §7), as the sealed bodies of entries of kinds
//! [`EntryKind::ModelCard`], [`EntryKind::Decision`] and
//! [`EntryKind::ModelUpdate`].
//!
//! Bodies are canonical JSON (serde, fixed member order, `format` and
//! `format_version` first) so that an auditor can read them with any tool;
//! the model card and the model update carry their binary part (the
//! serialized model, the update) beside the JSON in a
//! [`PairBody`](crate::body::PairBody). Hashes and ids are lowercase hex.
//!
//! A model card commits to everything `verify` needs to rebuild and retrain
//! (see [`crate::node::Node::verify_model`]): model kind and hyperparameters,
//! seed and hold-out, the feature spec (in full) and its hash, the checkpoint
//! (in full) and its digest, the time consent was evaluated at and the
//! purpose, the pseudonym salt, the dataset commitment (Merkle root over
//! (record id, heads)), the consent ids relied on, library and linfa
//! versions, metrics, and the hash of the serialized model. A federated card
//! names its round and the update entries it averaged instead of a dataset.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{FeatureSpec, Metrics, ModelKind, Prediction};
use crate::body::PairBody;
use crate::checkpoint::Checkpoint;
use crate::entry::EntryKind;

/// The model-card format this library writes and reads.
pub const MODEL_CARD_FORMAT_VERSION: u32 = 1;
/// The decision format this library writes and reads.
pub const DECISION_FORMAT_VERSION: u32 = 1;
/// The model-update-entry format this library writes and reads.
pub const UPDATE_FACTS_FORMAT_VERSION: u32 = 1;

const MODEL_CARD_FORMAT: &str = "careledger.model_card";
const DECISION_FORMAT: &str = "careledger.decision";
const UPDATE_FACTS_FORMAT: &str = "careledger.model_update_entry";

/// Which rows were held out for evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Holdout {
    /// Rows whose pseudonym falls below this fraction
    /// ([`super::Dataset::split_holdout`]).
    Fraction(f64),
    /// Exactly these records (ids) are the test rows, e.g. a published split.
    Records(Vec<String>),
}

/// A dataset commitment as the card shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    /// Records in the dataset.
    pub size: u64,
    /// Merkle root over (record id, heads), hex.
    pub root: String,
}

/// Where a card's model came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CardOrigin {
    /// Trained by the card's author on the dataset the card commits to.
    Trained,
    /// Weighted FedAvg of the model-update entries of one round.
    Federated {
        /// The round label.
        round: String,
        /// The update entries averaged (entry ids, hex), in averaging order.
        updates: Vec<String>,
    },
}

/// A model card (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// `careledger.model_card`.
    pub format: String,
    /// [`MODEL_CARD_FORMAT_VERSION`].
    pub format_version: u32,
    /// How the model was made.
    pub origin: CardOrigin,
    /// Model kind and hyperparameters.
    pub kind: ModelKind,
    /// Training seed.
    pub seed: u64,
    /// Hold-out rule (trained cards).
    pub holdout: Option<Holdout>,
    /// Purpose code consent was checked for (`HRESCH`, …).
    pub purpose: String,
    /// The network whose consent grants were required (hex): the network
    /// the data was used for.
    pub grantee_network: String,
    /// The feature spec, in full.
    pub feature_spec: FeatureSpec,
    /// Its hash, hex.
    pub feature_spec_hash: String,
    /// The ledger state the dataset was read at.
    pub checkpoint: Checkpoint,
    /// The checkpoint's digest, hex.
    pub checkpoint_digest: String,
    /// Consent was evaluated at this instant (Unix ms).
    pub as_of_ms: u64,
    /// Pseudonym salt, hex (the card is sealed to the network's members).
    pub pseudonym_salt: String,
    /// Dataset commitment (trained cards).
    pub dataset: Option<DatasetRef>,
    /// Records left out because consent did not permit the purpose.
    pub excluded_by_consent: u64,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
    /// Training rows.
    pub training_rows: u64,
    /// Held-out rows evaluated.
    pub test_rows: u64,
    /// careledger version.
    pub library_version: String,
    /// linfa version.
    pub linfa_version: String,
    /// Metrics on the held-out rows (trained cards).
    pub metrics: Option<Metrics>,
    /// SHA-256 of the serialized model, hex.
    pub model_hash: String,
}

/// One prediction made through the library.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRecord {
    /// `careledger.decision`.
    pub format: String,
    /// [`DECISION_FORMAT_VERSION`].
    pub format_version: u32,
    /// The model card entry (hex id).
    pub model_card: String,
    /// The model's hash, hex.
    pub model_hash: String,
    /// SHA-256 commitment to the input (spec hash, features, record and its heads), hex.
    pub input_commitment: String,
    /// The record predicted for, if the input was a record.
    pub subject: Option<String>,
    /// What the model said.
    pub output: Prediction,
    /// When (Unix ms).
    pub time_ms: u64,
    /// Purpose code.
    pub purpose: String,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
}

/// What a model-update entry says beside the update itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFacts {
    /// `careledger.model_update_entry`.
    pub format: String,
    /// [`UPDATE_FACTS_FORMAT_VERSION`].
    pub format_version: u32,
    /// Round label.
    pub round: String,
    /// The site (node name).
    pub site: String,
    /// Model kind.
    pub kind: ModelKind,
    /// Feature spec, in full.
    pub feature_spec: FeatureSpec,
    /// Feature spec hash, hex.
    pub feature_spec_hash: String,
    /// The site's own data network (hex), where its dataset lives.
    pub source_network: String,
    /// Digest of the site's checkpoint of its data network, hex.
    pub source_checkpoint_digest: String,
    /// The site's dataset commitment.
    pub dataset: DatasetRef,
    /// Consent ids relied on at the site, sorted.
    pub consent_ids: Vec<String>,
    /// Purpose code consent was checked for at the site.
    pub purpose: String,
    /// Charts the site left out because consent did not permit the purpose.
    pub excluded_by_consent: u64,
    /// Training rows (the averaging weight).
    pub samples: u64,
    /// The site's metrics on its own hold-out.
    pub local_metrics: Option<Metrics>,
    /// SHA-256 of the update bytes, hex.
    pub update_hash: String,
}

/// A ledger body that does not hold what its kind says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} body malformed: {detail}")]
pub struct DecodeAnalyticsBodyError {
    /// The entry kind's name.
    pub kind: &'static str,
    /// What is wrong (never a value).
    pub detail: String,
}

fn bad(kind: EntryKind, detail: impl Into<String>) -> DecodeAnalyticsBodyError {
    DecodeAnalyticsBodyError {
        kind: kind.name(),
        detail: detail.into(),
    }
}

/// SHA-256, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain data with finite floats always serializes.
    serde_json::to_vec(value).unwrap_or_default()
}

fn check_format(
    kind: EntryKind,
    format: &str,
    version: u32,
    want: &str,
    supported: u32,
) -> Result<(), DecodeAnalyticsBodyError> {
    if format != want {
        return Err(bad(kind, format!("format is not {want}")));
    }
    if version != supported {
        return Err(bad(
            kind,
            format!("format version {version}, this library reads {supported}"),
        ));
    }
    Ok(())
}

impl ModelCard {
    /// The model-card entry body: card JSON and model bytes.
    pub fn encode_body(&self, model: &[u8]) -> Vec<u8> {
        PairBody {
            json: to_json(self),
            bytes: model.to_vec(),
        }
        .encode()
    }

    /// Read a model-card entry body: `(card, model bytes)`.
    pub fn decode_body(body: &[u8]) -> Result<(ModelCard, Vec<u8>), DecodeAnalyticsBodyError> {
        let kind = EntryKind::ModelCard;
        let pair = PairBody::decode(body).map_err(|e| bad(kind, e.to_string()))?;
        let card = ModelCard::from_json(&pair.json)?;
        Ok((card, pair.bytes))
    }

    /// The card as JSON.
    pub fn to_json(&self) -> String {
        String::from_utf8(to_json(self)).unwrap_or_default()
    }

    /// Read a card from JSON (e.g. a file handed to `verify`).
    pub fn from_json(bytes: &[u8]) -> Result<ModelCard, DecodeAnalyticsBodyError> {
        let kind = EntryKind::ModelCard;
        let card: ModelCard =
            serde_json::from_slice(bytes).map_err(|e| bad(kind, format!("card JSON: {e}")))?;
        check_format(
            kind,
            &card.format,
            card.format_version,
            MODEL_CARD_FORMAT,
            MODEL_CARD_FORMAT_VERSION,
        )?;
        Ok(card)
    }

    pub(crate) fn header() -> (String, u32) {
        (MODEL_CARD_FORMAT.to_owned(), MODEL_CARD_FORMAT_VERSION)
    }
}

impl DecisionRecord {
    /// The decision entry body.
    pub fn encode_body(&self) -> Vec<u8> {
        to_json(self)
    }

    /// Read a decision entry body.
    pub fn decode_body(body: &[u8]) -> Result<DecisionRecord, DecodeAnalyticsBodyError> {
        let kind = EntryKind::Decision;
        let decision: DecisionRecord =
            serde_json::from_slice(body).map_err(|e| bad(kind, format!("JSON: {e}")))?;
        check_format(
            kind,
            &decision.format,
            decision.format_version,
            DECISION_FORMAT,
            DECISION_FORMAT_VERSION,
        )?;
        Ok(decision)
    }

    pub(crate) fn header() -> (String, u32) {
        (DECISION_FORMAT.to_owned(), DECISION_FORMAT_VERSION)
    }

    /// The decision as a FHIR R4 `Provenance` resource: target the patient
    /// (or the input commitment), agent the deciding node, entities the
    /// model and the input, policy the consents relied on, reason the purpose.
    pub fn to_provenance(&self, entry_id: &str, author: &str) -> serde_json::Value {
        use serde_json::json;
        let target = match &self.subject {
            Some(patient) => json!({ "reference": format!("Patient/{patient}") }),
            None => json!({ "identifier": {
                "system": "urn:careledger:input", "value": self.input_commitment } }),
        };
        let output = serde_json::to_string(&self.output).unwrap_or_default();
        let mut provenance = json!({
            "resourceType": "Provenance",
            "id": entry_id,
            "target": [target],
            "recorded": crate::consent::format_instant(self.time_ms),
            "policy": self.consent_ids.iter()
                .map(|id| format!("urn:careledger:consent:{id}")).collect::<Vec<_>>(),
            "reason": [{ "coding": [{
                "system": crate::consent::ACT_REASON_SYSTEM, "code": self.purpose }] }],
            "activity": { "text": "prediction" },
            "agent": [{
                "type": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "performer" }] },
                "who": { "identifier": { "system": crate::consent::NODE_SYSTEM, "value": author } }
            }],
            "entity": [
                { "role": "source", "what": { "identifier": {
                    "system": "urn:careledger:model", "value": self.model_hash } } },
                { "role": "source", "what": { "identifier": {
                    "system": "urn:careledger:model-card", "value": self.model_card } } },
                { "role": "source", "what": { "identifier": {
                    "system": "urn:careledger:input", "value": self.input_commitment } } }
            ],
            "extension": [{ "url": "urn:careledger:prediction", "valueString": output }]
        });
        // FHIR JSON has no empty arrays: a prediction from bare features relied on no consent.
        if self.consent_ids.is_empty() {
            if let Some(object) = provenance.as_object_mut() {
                object.remove("policy");
            }
        }
        provenance
    }
}

impl UpdateFacts {
    /// The model-update entry body: facts JSON and update bytes.
    pub fn encode_body(&self, update: &[u8]) -> Vec<u8> {
        PairBody {
            json: to_json(self),
            bytes: update.to_vec(),
        }
        .encode()
    }

    /// Read a model-update entry body: `(facts, update bytes)`; checks the
    /// update's hash.
    pub fn decode_body(body: &[u8]) -> Result<(UpdateFacts, Vec<u8>), DecodeAnalyticsBodyError> {
        let kind = EntryKind::ModelUpdate;
        let pair = PairBody::decode(body).map_err(|e| bad(kind, e.to_string()))?;
        let facts: UpdateFacts =
            serde_json::from_slice(&pair.json).map_err(|e| bad(kind, format!("JSON: {e}")))?;
        check_format(
            kind,
            &facts.format,
            facts.format_version,
            UPDATE_FACTS_FORMAT,
            UPDATE_FACTS_FORMAT_VERSION,
        )?;
        if sha256_hex(&pair.bytes) != facts.update_hash {
            return Err(bad(kind, "update bytes do not match update_hash"));
        }
        Ok((facts, pair.bytes))
    }

    pub(crate) fn header() -> (String, u32) {
        (UPDATE_FACTS_FORMAT.to_owned(), UPDATE_FACTS_FORMAT_VERSION)
    }
}

/// Check that an opened body of an analytics entry kind decodes (receive
/// refuses entries that do not).
pub(crate) fn check_body(kind: EntryKind, body: &[u8]) -> Result<(), String> {
    let result = match kind {
        EntryKind::ModelCard => ModelCard::decode_body(body).map(drop),
        EntryKind::Decision => DecisionRecord::decode_body(body).map(drop),
        EntryKind::ModelUpdate => UpdateFacts::decode_body(body).map(drop),
        _ => return super::secure_fl::check_body(kind, body),
    };
    result.map_err(|e| e.to_string())
}
