//! The one error type of the bindings, and the one place core errors map into it.
//!
//! Every core error (`OpenStoreError`, `OpenNodeError`, `StoreError`,
//! `NetworkError`, `ImportError`, `ExportError`, `ReceiveError`, `SyncError`,
//! `RelayError`, `ConsentError`, `EraseError`, `ParseConsentError`, `AiError`,
//! `InvalidSpecError`, `FlError`, `RulesError`, the proof decoders, …) becomes
//! an [`ApiError`] here and nowhere else. Variants are grouped by what an app
//! can do about them; each carries the core's text in `reason`, which names
//! fields and rules, never patient data (STYLE §5).
//!
//! Swift sees `ApiError.wrongStorageKey(reason:)`, Kotlin
//! `ApiException.WrongStorageKey`, Python `ApiError.WrongStorageKey`.
//!
//! A panic inside Rust is not an `ApiError`: uniffi catches it at the
//! boundary and raises its own internal error (Python `InternalError`, Kotlin
//! `InternalException`, Swift `UniffiInternalError`). The node the panic
//! happened in then answers [`ApiError::NodeUnusable`] until it is reopened.

use careledger::analytics::{AnalyticsError, ExtractDatasetError, InvalidSpecError};
use careledger::checkpoint::dataset::{DecodeDatasetCommitmentError, VerifyMembershipError};
use careledger::checkpoint::DecodeProofError;
use careledger::consent::ParseConsentError;
use careledger::identity::CreateIdentityError;
use careledger::node::{
    AiError, ConsentError, EraseError, ExportError, FlError, ImportError, NetworkError,
    OpenNodeError, ReceiveError, ReceiveReport, RulesError,
};
use careledger::relay::RelayError;
use careledger::store::{OpenStoreError, StoreError};
use careledger::sync::SyncError;

/// Everything that can go wrong in a careledger call.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// An argument is malformed: a storage key that is not 32 bytes, an id
    /// that is not hex of the right length, a node name that is not 1–255
    /// printable ASCII characters without spaces.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong with which argument.
        reason: String,
    },
    /// The store file exists but was written under another storage key.
    #[error("{reason}")]
    WrongStorageKey {
        /// The core's message.
        reason: String,
    },
    /// The store cannot be opened, read or written (I/O, corrupt or tampered
    /// file, a file from a newer careledger, randomness failure).
    #[error("{reason}")]
    Store {
        /// The core's message.
        reason: String,
    },
    /// The store holds no identity yet (use `Node.create`), or already holds
    /// one (use `Node.open`).
    #[error("{reason}")]
    Identity {
        /// The core's message.
        reason: String,
    },
    /// No network with that id in this store.
    #[error("{reason}")]
    UnknownNetwork {
        /// The core's message.
        reason: String,
    },
    /// This node is not (or no longer) a member of the network.
    #[error("{reason}")]
    NotAMember {
        /// The core's message.
        reason: String,
    },
    /// A membership change of ours is still waiting for its turn: sync first.
    #[error("{reason}")]
    CommitPending {
        /// The core's message.
        reason: String,
    },
    /// The bytes are not a valid MLS KeyPackage for careledger's ciphersuite.
    #[error("{reason}")]
    InvalidKeyPackage {
        /// The core's message.
        reason: String,
    },
    /// The bytes are not a Welcome for one of this node's key packages, or the
    /// relay holds none (yet): has the inviter synced since inviting?
    #[error("{reason}")]
    InvalidWelcome {
        /// The core's message.
        reason: String,
    },
    /// No member with that author id in the network.
    #[error("{reason}")]
    UnknownMember {
        /// The core's message.
        reason: String,
    },
    /// No record for that patient in the network.
    #[error("{reason}")]
    UnknownPatient {
        /// The core's message.
        reason: String,
    },
    /// The patient's chart was erased (its keys shredded): it cannot be
    /// read, exported or erased again.
    #[error("{reason}")]
    ChartErased {
        /// The core's message.
        reason: String,
    },
    /// The chart has no resource of that type and id to erase (or none was named).
    #[error("{reason}")]
    UnknownResource {
        /// The core's message (names the resource type, never the id).
        reason: String,
    },
    /// This store is older than entries this node already wrote in the
    /// network (restored from a backup): sync first, which catches its own
    /// chain up; writing before that would fork it.
    #[error("{reason}")]
    BehindOwnChain {
        /// The core's message.
        reason: String,
    },
    /// The data is not valid FHIR R4; nothing was stored. Problems name the
    /// source, line and field, never the value. Also raised when the core's
    /// importer refuses a consent that `grant_consent` or `revoke_consent`
    /// wrote.
    #[error("{reason}")]
    InvalidFhir {
        /// A summary (the first problem and how many there are).
        reason: String,
        /// The first problems, in input order.
        problems: Vec<String>,
    },
    /// openmls refused a membership operation.
    #[error("{reason}")]
    Mls {
        /// The core's message.
        reason: String,
    },
    /// A patient's record could not be written or read back.
    #[error("{reason}")]
    Record {
        /// The core's message.
        reason: String,
    },
    /// The relay could not be opened, read or written; nothing was lost and
    /// the call can be retried.
    #[error("{reason}")]
    Relay {
        /// The core's message.
        reason: String,
    },
    /// `Network.receive` refused `count` messages of the batch (tampered,
    /// forged, from a non-member, …). The batch's other messages **were**
    /// applied and stored, and the relay position was saved: do not resend
    /// the batch, carry on with the next one.
    #[error("{count} message(s) refused: {reason}")]
    MessageRejected {
        /// How many messages were refused.
        count: u32,
        /// Why, one reason per refused message, joined by `; `.
        reason: String,
    },
    /// The consent cannot be written: an id that is not
    /// `[A-Za-z0-9-.]{1,64}`, a period that ends before it starts or lies
    /// outside the years 0001–9999, … The reason names the FHIR field.
    #[error("{reason}")]
    InvalidConsent {
        /// The core's message (names the field, never the value).
        reason: String,
    },
    /// No consent with that id in the patient's chart.
    #[error("{reason}")]
    UnknownConsent {
        /// What was looked for where.
        reason: String,
    },
    /// Consent does not permit this use of this patient's record (for
    /// instance a prediction for a purpose the patient has not granted).
    /// Nothing was written.
    #[error("{reason}")]
    ConsentDenied {
        /// The core's message (names the purpose).
        reason: String,
    },
    /// Consent left no record to train on: every chart of the network was
    /// excluded for the purpose. No model card was written.
    #[error("{reason}")]
    EmptyAfterConsent {
        /// The core's message.
        reason: String,
        /// How many charts consent excluded.
        excluded: u64,
    },
    /// No model card with that entry id in this network (or not yet: sync).
    #[error("{reason}")]
    UnknownModelCard {
        /// The core's message.
        reason: String,
    },
    /// The feature spec JSON is not a valid careledger feature spec, or the
    /// records do not fit it.
    #[error("{reason}")]
    InvalidSpec {
        /// What is wrong (names the feature and the rule).
        reason: String,
    },
    /// This replica does not hold the ledger state the call needs (a model
    /// card's checkpoint): it is behind, or holds other entries. Sync and
    /// retry; the reason says which.
    #[error("{reason}")]
    NotCaughtUp {
        /// The core's message.
        reason: String,
    },
    /// Feature extraction, fitting or evaluation failed (no convergence, a
    /// single class, too few rows, a missing value under the `fail`
    /// policy, invalid hyperparameters, …). No model card was written.
    #[error("{reason}")]
    TrainingFailed {
        /// The core's message (names the rule, never a record value).
        reason: String,
    },
    /// An analytics entry on the ledger (model card, decision, model update)
    /// cannot be read, or does not apply to the call: for instance a
    /// federated card has no dataset of its own to prove membership in.
    #[error("{reason}")]
    InvalidLedgerEntry {
        /// The core's message.
        reason: String,
    },
    /// A dataset commitment or membership proof is malformed, or does not
    /// verify against the commitment.
    #[error("{reason}")]
    InvalidProof {
        /// Which rule the proof breaks.
        reason: String,
    },
    /// A federated task would take a site's dataset above the network's
    /// privacy budget (or is not differentially private where the policy
    /// requires it). Nothing was written and no record was read.
    #[error("{reason}")]
    BudgetExceeded {
        /// The core's message (names the site and the ε).
        reason: String,
    },
    /// No federated task or round card with that id in the network.
    #[error("{reason}")]
    UnknownTask {
        /// The core's message.
        reason: String,
    },
    /// A federated plan, policy or secure-aggregation step breaks a rule
    /// (a field out of range, a malformed message from a site, too few
    /// valid shares).
    #[error("{reason}")]
    FederationFailed {
        /// The core's message.
        reason: String,
    },
    /// The rule-set document was refused: not JSON of the rule-set shape, a
    /// field that breaks a rule of the format, or an expression that does
    /// not compile or is beyond the engine's limits (size, nesting,
    /// comprehensions). Nothing was stored.
    #[error("{reason}")]
    InvalidRuleSet {
        /// The core's message (names the rule, the field and the limit).
        reason: String,
    },
    /// A rules policy's quorum is 0 or above the members of the network.
    #[error("{reason}")]
    InvalidPolicy {
        /// The core's message.
        reason: String,
    },
    /// No rule set with that hash in the network.
    #[error("{reason}")]
    UnknownRuleSet {
        /// The core's message.
        reason: String,
    },
    /// No rules policy with that entry id in the network.
    #[error("{reason}")]
    UnknownPolicy {
        /// The core's message.
        reason: String,
    },
    /// No rule outcome with that entry id in the network.
    #[error("{reason}")]
    UnknownOutcome {
        /// The core's message.
        reason: String,
    },
    /// A model card is endorsed only after this node's own verification
    /// confirms it, and it answered mismatch. Nothing was written.
    #[error("{reason}")]
    NotConfirmed {
        /// The core's message.
        reason: String,
        /// The verification step that differed.
        step: String,
    },
    /// An earlier call panicked inside Rust while using this node, so its
    /// in-memory state cannot be trusted. Drop every object of this node and
    /// open the store again (the store itself is transactional).
    #[error("{reason}")]
    NodeUnusable {
        /// What to do.
        reason: String,
    },
}

impl ApiError {
    pub(crate) fn invalid_argument(reason: impl Into<String>) -> Self {
        ApiError::InvalidArgument {
            reason: reason.into(),
        }
    }

    pub(crate) fn node_unusable() -> Self {
        ApiError::NodeUnusable {
            reason: "an earlier internal error (a panic) left this node unusable; \
                     open the store again"
                .into(),
        }
    }

    /// `Some` when a receive report lists refused messages.
    pub(crate) fn rejections(report: &ReceiveReport) -> Option<Self> {
        let reasons: Vec<String> = report
            .rejected
            .iter()
            .map(ToString::to_string)
            .chain(
                report
                    .mls_errors
                    .iter()
                    .map(|e| format!("MLS message: {e}")),
            )
            .collect();
        if reasons.is_empty() {
            return None;
        }
        Some(ApiError::MessageRejected {
            count: u32::try_from(reasons.len()).unwrap_or(u32::MAX),
            reason: reasons.join("; "),
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Store {
            reason: error.to_string(),
        }
    }
}

impl From<OpenStoreError> for ApiError {
    fn from(error: OpenStoreError) -> Self {
        match error {
            OpenStoreError::WrongStorageKey => ApiError::WrongStorageKey {
                reason: error.to_string(),
            },
            OpenStoreError::Store(error) => error.into(),
            OpenStoreError::SchemaTooNew { .. }
            | OpenStoreError::Sqlite(_)
            | OpenStoreError::MlsMigration(_) => ApiError::Store {
                reason: error.to_string(),
            },
        }
    }
}

impl From<CreateIdentityError> for ApiError {
    fn from(error: CreateIdentityError) -> Self {
        ApiError::invalid_argument(error.to_string())
    }
}

impl From<OpenNodeError> for ApiError {
    fn from(error: OpenNodeError) -> Self {
        match error {
            OpenNodeError::NoIdentity | OpenNodeError::AlreadyCreated => ApiError::Identity {
                reason: error.to_string(),
            },
            OpenNodeError::Identity(error) => error.into(),
            OpenNodeError::Store(error) => error.into(),
        }
    }
}

impl From<NetworkError> for ApiError {
    fn from(error: NetworkError) -> Self {
        let reason = error.to_string();
        match error {
            NetworkError::UnknownNetwork => ApiError::UnknownNetwork { reason },
            NetworkError::NotAMember => ApiError::NotAMember { reason },
            NetworkError::CommitPending => ApiError::CommitPending { reason },
            NetworkError::InvalidKeyPackage(_) => ApiError::InvalidKeyPackage { reason },
            NetworkError::InvalidWelcome(_) => ApiError::InvalidWelcome { reason },
            NetworkError::UnknownMember => ApiError::UnknownMember { reason },
            NetworkError::Mls(_) => ApiError::Mls { reason },
            NetworkError::BehindOwnChain { .. } => ApiError::BehindOwnChain { reason },
            NetworkError::ConsentDecision(_) => ApiError::Record { reason },
            NetworkError::Store(error) => error.into(),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Fhir(fhir) => ApiError::InvalidFhir {
                reason: fhir.to_string(),
                problems: fhir.problems.iter().map(ToString::to_string).collect(),
            },
            ImportError::Network(error) => error.into(),
            ImportError::Record(_) => ApiError::Record {
                reason: error.to_string(),
            },
            ImportError::Store(error) => error.into(),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::UnknownPatient => ApiError::UnknownPatient {
                reason: error.to_string(),
            },
            ExportError::Erased => ApiError::ChartErased {
                reason: error.to_string(),
            },
            ExportError::Record(_) => ApiError::Record {
                reason: error.to_string(),
            },
            ExportError::Network(error) => error.into(),
            ExportError::Store(error) => error.into(),
        }
    }
}

impl From<ReceiveError> for ApiError {
    fn from(error: ReceiveError) -> Self {
        match error {
            ReceiveError::Network(error) => error.into(),
            ReceiveError::Store(error) => error.into(),
        }
    }
}

impl From<RelayError> for ApiError {
    fn from(error: RelayError) -> Self {
        ApiError::Relay {
            reason: error.to_string(),
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Relay(error) => error.into(),
            SyncError::Receive(error) => error.into(),
            SyncError::Network(error) => error.into(),
            SyncError::Store(error) => error.into(),
            SyncError::NoWelcome => ApiError::InvalidWelcome {
                reason: error.to_string(),
            },
            SyncError::Consent(error) => error.into(),
        }
    }
}

impl From<ParseConsentError> for ApiError {
    fn from(error: ParseConsentError) -> Self {
        ApiError::InvalidConsent {
            reason: format!("invalid consent: {error}"),
        }
    }
}

impl From<ConsentError> for ApiError {
    fn from(error: ConsentError) -> Self {
        match error {
            ConsentError::UnknownPatient => ApiError::UnknownPatient {
                reason: error.to_string(),
            },
            ConsentError::Erased => ApiError::ChartErased {
                reason: error.to_string(),
            },
            ConsentError::SameNetwork => ApiError::invalid_argument(error.to_string()),
            ConsentError::Record(_) => ApiError::Record {
                reason: error.to_string(),
            },
            // The core refused the consent's FHIR like any other import: the
            // app gets the same `InvalidFhir` with the full problem list as
            // from `import_fhir` (nothing was stored), not a flattened
            // `InvalidConsent` that would lose which fields broke which rule.
            ConsentError::Import(error) => error.into(),
            ConsentError::Network(error) => error.into(),
            ConsentError::Store(error) => error.into(),
        }
    }
}

impl From<EraseError> for ApiError {
    fn from(error: EraseError) -> Self {
        let reason = error.to_string();
        match error {
            EraseError::UnknownPatient => ApiError::UnknownPatient { reason },
            EraseError::AlreadyErased => ApiError::ChartErased { reason },
            EraseError::UnknownResource(_) | EraseError::NothingToErase => {
                ApiError::UnknownResource { reason }
            }
            EraseError::Record(_) => ApiError::Record { reason },
            EraseError::Network(error) => error.into(),
            EraseError::Store(error) => error.into(),
        }
    }
}

impl From<InvalidSpecError> for ApiError {
    fn from(error: InvalidSpecError) -> Self {
        ApiError::InvalidSpec {
            reason: error.to_string(),
        }
    }
}

impl From<AnalyticsError> for ApiError {
    fn from(error: AnalyticsError) -> Self {
        match error {
            AnalyticsError::Spec(error)
            | AnalyticsError::Extract(ExtractDatasetError::InvalidSpec(error)) => error.into(),
            AnalyticsError::Predict(_) => ApiError::invalid_argument(error.to_string()),
            AnalyticsError::Load(_) => ApiError::InvalidLedgerEntry {
                reason: format!("model: {error}"),
            },
            AnalyticsError::Extract(_)
            | AnalyticsError::Dataset(_)
            | AnalyticsError::Train(_)
            | AnalyticsError::Evaluate(_)
            | AnalyticsError::Average(_) => ApiError::TrainingFailed {
                reason: error.to_string(),
            },
        }
    }
}

impl From<AiError> for ApiError {
    fn from(error: AiError) -> Self {
        let reason = error.to_string();
        match error {
            AiError::EmptyAfterConsent { excluded, .. } => ApiError::EmptyAfterConsent {
                reason,
                excluded: u64::try_from(excluded).unwrap_or(u64::MAX),
            },
            AiError::ConsentDenied { .. } => ApiError::ConsentDenied { reason },
            AiError::UnknownModelCard => ApiError::UnknownModelCard { reason },
            AiError::UnknownPatient => ApiError::UnknownPatient { reason },
            AiError::Checkpoint(_) => ApiError::NotCaughtUp { reason },
            AiError::Holdout(_) | AiError::NoDataset => ApiError::InvalidArgument { reason },
            AiError::NoUpdates(_) | AiError::DuplicateSite { .. } | AiError::MixedRound { .. } => {
                ApiError::TrainingFailed { reason }
            }
            AiError::Body(_) => ApiError::InvalidLedgerEntry { reason },
            AiError::Analytics(error) => error.into(),
            AiError::Network(error) => error.into(),
            AiError::Store(error) => error.into(),
        }
    }
}

impl From<FlError> for ApiError {
    fn from(error: FlError) -> Self {
        let reason = error.to_string();
        match error {
            FlError::BudgetExceeded { .. } | FlError::NonPrivateRefused => {
                ApiError::BudgetExceeded { reason }
            }
            FlError::UnknownTask | FlError::UnknownRoundCard => ApiError::UnknownTask { reason },
            FlError::Plan(_)
            | FlError::Scaling(_)
            | FlError::NotAMember(_)
            | FlError::NotCoordinator
            | FlError::Protocol(_) => ApiError::FederationFailed { reason },
            FlError::Body(_) => ApiError::InvalidLedgerEntry { reason },
            FlError::Dataset(error) => error.into(),
            FlError::Network(error) => error.into(),
            FlError::Store(error) => error.into(),
        }
    }
}

impl From<RulesError> for ApiError {
    fn from(error: RulesError) -> Self {
        let reason = error.to_string();
        match error {
            RulesError::InvalidRuleSet(_) => ApiError::InvalidRuleSet { reason },
            RulesError::InvalidPolicy(_) => ApiError::InvalidPolicy { reason },
            RulesError::Unknown("rule set") => ApiError::UnknownRuleSet { reason },
            RulesError::Unknown("policy") => ApiError::UnknownPolicy { reason },
            RulesError::Unknown("model card") => ApiError::UnknownModelCard { reason },
            RulesError::Unknown(_) => ApiError::UnknownOutcome { reason },
            RulesError::NotConfirmed { step } => ApiError::NotConfirmed { reason, step },
            RulesError::Ai(error) => error.into(),
            RulesError::Network(error) => error.into(),
            RulesError::Store(error) => error.into(),
        }
    }
}

impl From<DecodeDatasetCommitmentError> for ApiError {
    fn from(error: DecodeDatasetCommitmentError) -> Self {
        ApiError::InvalidProof {
            reason: error.to_string(),
        }
    }
}

impl From<DecodeProofError> for ApiError {
    fn from(error: DecodeProofError) -> Self {
        ApiError::InvalidProof {
            reason: error.to_string(),
        }
    }
}

impl From<VerifyMembershipError> for ApiError {
    fn from(error: VerifyMembershipError) -> Self {
        ApiError::InvalidProof {
            reason: format!("membership proof does not verify: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_storage_key_keeps_its_own_variant() {
        assert!(matches!(
            ApiError::from(OpenStoreError::WrongStorageKey),
            ApiError::WrongStorageKey { .. }
        ));
    }

    #[test]
    fn network_errors_nested_in_operations_map_like_direct_ones() {
        let nested = ApiError::from(ImportError::Network(NetworkError::NotAMember));
        assert!(matches!(nested, ApiError::NotAMember { .. }));
        let nested = ApiError::from(SyncError::Receive(ReceiveError::Network(
            NetworkError::UnknownNetwork,
        )));
        assert!(matches!(nested, ApiError::UnknownNetwork { .. }));
    }

    #[test]
    fn consent_and_ai_errors_keep_their_meaning() {
        assert!(matches!(
            ApiError::from(AiError::Checkpoint("behind".into())),
            ApiError::NotCaughtUp { .. }
        ));
        assert!(matches!(
            ApiError::from(AiError::EmptyAfterConsent {
                purpose: "HRESCH".into(),
                excluded: 3
            }),
            ApiError::EmptyAfterConsent { excluded: 3, .. }
        ));
        // A bad spec is a bad spec, whether parsing or extraction finds it.
        let spec = || InvalidSpecError::NoFeatures;
        assert!(matches!(
            ApiError::from(AiError::Analytics(AnalyticsError::Spec(spec()))),
            ApiError::InvalidSpec { .. }
        ));
        assert!(matches!(
            ApiError::from(AiError::Analytics(AnalyticsError::Extract(
                ExtractDatasetError::InvalidSpec(spec())
            ))),
            ApiError::InvalidSpec { .. }
        ));
        assert!(matches!(
            ApiError::from(AiError::Analytics(AnalyticsError::Extract(
                ExtractDatasetError::EmptyDataset { dropped: 2 }
            ))),
            ApiError::TrainingFailed { .. }
        ));
        assert!(matches!(
            ApiError::from(AiError::Network(NetworkError::NotAMember)),
            ApiError::NotAMember { .. }
        ));
        assert!(matches!(
            ApiError::from(ConsentError::SameNetwork),
            ApiError::InvalidArgument { .. }
        ));
        assert!(matches!(
            ApiError::from(ConsentError::Network(NetworkError::UnknownNetwork)),
            ApiError::UnknownNetwork { .. }
        ));
    }

    #[test]
    fn a_refused_consent_keeps_every_fhir_problem() {
        // Two consents, valid R4 but for one problem each: a numeric inner
        // reference, and an array where a Reference object belongs.
        let consents = concat!(
            r#"{"resourceType":"Consent","id":"a","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/p"},"provision":{"actor":[{"role":{"text":"grantee"},"reference":{"reference":7}}]}}"#,
            "\n",
            r#"{"resourceType":"Consent","id":"b","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/p"},"provision":{"actor":[{"role":{"text":"grantee"},"reference":[]}]}}"#,
        );
        let Err(fhir) = careledger::record::fhir::parse_ndjson("consent.json", consents) else {
            panic!("the importer accepted malformed actor references");
        };
        let expected: Vec<String> = fhir.problems.iter().map(ToString::to_string).collect();
        assert_eq!(expected.len(), 2);
        match ApiError::from(ConsentError::Import(ImportError::Fhir(fhir))) {
            ApiError::InvalidFhir { reason, problems } => {
                assert_eq!(problems, expected);
                assert!(
                    reason.contains(&expected[0]),
                    "the summary names the first problem"
                );
            }
            other => panic!("expected InvalidFhir, got {other:?}"),
        }
        assert!(matches!(
            ApiError::from(ConsentError::Import(ImportError::Record("merge".into()))),
            ApiError::Record { .. }
        ));
    }

    #[test]
    fn rules_errors_keep_their_meaning() {
        assert!(matches!(
            ApiError::from(RulesError::Unknown("rule set")),
            ApiError::UnknownRuleSet { .. }
        ));
        assert!(matches!(
            ApiError::from(RulesError::Unknown("model card")),
            ApiError::UnknownModelCard { .. }
        ));
        assert!(matches!(
            ApiError::from(RulesError::Unknown("outcome")),
            ApiError::UnknownOutcome { .. }
        ));
        match ApiError::from(RulesError::NotConfirmed {
            step: "model".into(),
        }) {
            ApiError::NotConfirmed { step, reason } => {
                assert_eq!(step, "model");
                assert!(reason.contains("mismatch at model"), "{reason}");
            }
            other => panic!("expected NotConfirmed, got {other:?}"),
        }
        assert!(matches!(
            ApiError::from(RulesError::Network(NetworkError::NotAMember)),
            ApiError::NotAMember { .. }
        ));
    }

    #[test]
    fn a_clean_receive_report_is_no_error() {
        assert!(ApiError::rejections(&ReceiveReport::default()).is_none());
        let report = ReceiveReport {
            mls_errors: vec!["bad commit".into()],
            ..ReceiveReport::default()
        };
        assert!(matches!(
            ApiError::rejections(&report),
            Some(ApiError::MessageRejected { count: 1, .. })
        ));
    }
}
