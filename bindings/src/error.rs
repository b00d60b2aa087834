//! The one error type of the bindings, and the one place core errors map into it.
//!
//! Every core error (`OpenStoreError`, `OpenNodeError`, `StoreError`,
//! `NetworkError`, `ImportError`, `ExportError`, `ReceiveError`, `SyncError`,
//! `RelayError`, …) becomes an [`ApiError`] here and nowhere else. Variants are
//! grouped by what an app can do about them; each carries the core's text in
//! `reason`, which names fields and rules, never patient data (STYLE §5).
//!
//! Swift sees `ApiError.wrongStorageKey(reason:)`, Kotlin
//! `ApiException.WrongStorageKey`, Python `ApiError.WrongStorageKey`.
//!
//! A panic inside Rust is not an `ApiError`: uniffi catches it at the
//! boundary and raises its own internal error (Python `InternalError`, Kotlin
//! `InternalException`, Swift `UniffiInternalError`). The node the panic
//! happened in then answers [`ApiError::NodeUnusable`] until it is reopened.

use careledger::identity::CreateIdentityError;
use careledger::node::{
    ExportError, ImportError, NetworkError, OpenNodeError, ReceiveError, ReceiveReport,
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
    /// The data is not valid FHIR R4; nothing was stored. Problems name the
    /// source, line and field, never the value.
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
