//! Status codes and the one place core errors become them.

use std::ffi::{c_char, CStr};

use careledger::analytics::{
    AnalyticsError, ExtractDatasetError, InvalidSpecError, TrainModelError,
};
use careledger::checkpoint::dataset::{DecodeDatasetCommitmentError, VerifyMembershipError};
use careledger::checkpoint::DecodeProofError;
use careledger::consent::ParseConsentError;
use careledger::identity::CreateIdentityError;
use careledger::node::{
    AiError, ConsentError, EditError, EraseError, ExportError, FlError, ImportError, NetworkError,
    OpenNodeError, ReceiveError, RulesError,
};
use careledger::relay::RelayError;
use careledger::store::{OpenStoreError, StoreError};
use careledger::sync::SyncError;

/// What a call did. `CARELEDGER_OK` is 0; every other code is a failure whose
/// detail `careledger_last_error` gives. Codes are grouped by subsystem in
/// hundreds and are never renumbered; new codes only get new numbers.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum careledger_status {
    /// Success.
    CARELEDGER_OK = 0,

    // 1–99: the calling convention.
    /// Rust code panicked; the call had no effect beyond what the store's
    /// transaction rolled back. The handle may be unusable
    /// (`CARELEDGER_NODE_UNUSABLE`): free it and open the store again.
    CARELEDGER_PANIC = 1,
    /// A required pointer argument was NULL.
    CARELEDGER_NULL_PARAMETER = 2,
    /// A string argument was not valid UTF-8.
    CARELEDGER_INVALID_UTF8 = 3,
    /// A caller-supplied output buffer is too small; the needed length was written.
    CARELEDGER_BUFFER_TOO_SMALL = 4,
    /// An argument is malformed (wrong key length, not a hex id, foreign handle…).
    CARELEDGER_INVALID_ARGUMENT = 5,
    /// An earlier call on this node panicked; free the node and open the store again.
    CARELEDGER_NODE_UNUSABLE = 6,
    /// A handle argument is not live: it was freed already, was never
    /// returned by careledger, or is a handle of another type. Nothing was
    /// touched; such handles never cause undefined behaviour.
    CARELEDGER_STALE_HANDLE = 7,

    // 100–199: the node's store.
    /// SQLite failed (I/O error, disk full, locked, not a database).
    CARELEDGER_STORE_IO = 100,
    /// The store file was written under another storage key.
    CARELEDGER_WRONG_STORAGE_KEY = 101,
    /// The store's contents are inconsistent or tampered with.
    CARELEDGER_STORE_CORRUPT = 102,
    /// The store was written by a newer careledger.
    CARELEDGER_STORE_TOO_NEW = 103,
    /// The store has no node identity yet: use `careledger_node_create`.
    CARELEDGER_NO_IDENTITY = 104,
    /// The store already holds an identity: use `careledger_node_open`.
    CARELEDGER_ALREADY_CREATED = 105,
    /// A node name must be 1–255 printable ASCII characters without spaces.
    CARELEDGER_INVALID_NAME = 106,

    // 200–299: networks and membership.
    /// No network with that id in this store.
    CARELEDGER_UNKNOWN_NETWORK = 200,
    /// This node is not (or no longer) a member of the network.
    CARELEDGER_NOT_A_MEMBER = 201,
    /// A membership change of this node is still waiting for its turn: sync first.
    CARELEDGER_COMMIT_PENDING = 202,
    /// The bytes are not an acceptable MLS KeyPackage.
    CARELEDGER_INVALID_KEY_PACKAGE = 203,
    /// The bytes are not a Welcome for one of this node's key packages.
    CARELEDGER_INVALID_WELCOME = 204,
    /// No member with that author id.
    CARELEDGER_UNKNOWN_MEMBER = 205,
    /// The MLS layer refused the operation.
    CARELEDGER_MLS_FAILED = 206,
    /// The relay holds no Welcome for this node (yet).
    CARELEDGER_NO_WELCOME = 207,

    // 300–399: records.
    /// The FHIR input is not valid FHIR R4 JSON (malformed JSON, an element R4
    /// does not define, a missing required element, a value that breaks its
    /// datatype such as a `date` or `code`, a code outside a required value
    /// set, two types for one choice element) or breaks an import rule;
    /// nothing was stored. The detail names the first problem by file, line,
    /// JSON field and element path (`Patient.birthDate`), never by value.
    CARELEDGER_INVALID_FHIR = 300,
    /// No record for that patient in this network.
    CARELEDGER_UNKNOWN_PATIENT = 301,
    /// A record could not be written or read.
    CARELEDGER_RECORD_FAILED = 302,

    // 400–499: the ledger.
    /// At least one received message was refused (forged, tampered, malformed,
    /// from a non-member, a fork). The other messages were kept.
    CARELEDGER_MESSAGE_REJECTED = 400,
    /// Ledger verification found problems, forks or flagged authors.
    CARELEDGER_LEDGER_PROBLEMS = 401,

    // 500–599: relays.
    /// The relay cannot be opened or reached; nothing was lost, retry later.
    CARELEDGER_RELAY_UNAVAILABLE = 500,
    /// The relay failed while reading or writing; nothing was lost, retry later.
    CARELEDGER_RELAY_IO = 501,

    // 600–699: consent.
    /// The consent cannot be written or read: a malformed id, patient id,
    /// grantee, purpose or resource type, a period outside years 0001–9999
    /// or starting after it ends, or a `Consent` in the chart that cannot be
    /// read. The detail names the FHIR field and the rule (never a value).
    CARELEDGER_INVALID_CONSENT = 600,
    /// No consent with that id in the patient's chart.
    CARELEDGER_UNKNOWN_CONSENT = 601,
    /// Consent does not permit this use of this patient's record.
    CARELEDGER_CONSENT_DENIED = 602,
    /// Sharing needs two different networks.
    CARELEDGER_SAME_NETWORK = 603,

    // 700–799: analytics.
    /// The feature spec JSON is not a valid feature spec (the detail names
    /// the member and the rule).
    CARELEDGER_INVALID_SPEC = 700,
    /// The model kind JSON is not a model kind, or a hyperparameter breaks
    /// its rule.
    CARELEDGER_INVALID_MODEL_KIND = 701,
    /// No row to train on: consent excluded every record, or no record has
    /// the values the spec needs.
    CARELEDGER_EMPTY_DATASET = 702,
    /// The dataset cannot be fitted or evaluated (one class only, too few
    /// rows, no convergence, a code no record has, …); nothing was written.
    CARELEDGER_TRAINING_FAILED = 703,
    /// No model card with that entry id in the network.
    CARELEDGER_UNKNOWN_MODEL_CARD = 704,
    /// This replica does not hold the ledger state the operation needs
    /// (behind a model card's checkpoint): sync first.
    CARELEDGER_NOT_CAUGHT_UP = 705,
    /// The feature values do not fit the model (count, or a value that is
    /// not finite).
    CARELEDGER_INVALID_FEATURES = 706,
    /// Re-verifying a model card found a difference; the verification JSON
    /// names the step.
    CARELEDGER_MODEL_MISMATCH = 707,
    /// An analytics entry on the ledger (model card, decision, model update)
    /// cannot be read, or does not support the operation (a federated card
    /// has no dataset of its own).
    CARELEDGER_ANALYTICS_ENTRY_INVALID = 708,
    /// The bytes are not a dataset commitment or membership proof.
    CARELEDGER_INVALID_PROOF = 709,
    /// The membership proof does not verify against the commitment.
    CARELEDGER_PROOF_REJECTED = 710,
    /// The federated round has no model updates in the network.
    CARELEDGER_NO_UPDATES = 711,
    /// The round's model updates cannot be averaged (a site published twice,
    /// different kinds or specs, …).
    CARELEDGER_FEDERATION_FAILED = 712,

    // 800–899: rules (rule sets, policy, endorsements, outcomes).
    /// The rule set document was refused: not JSON of the rule-set shape, a
    /// field that breaks a rule of the format, or an expression that does
    /// not compile or is beyond the limits (size, nesting, comprehensions).
    /// The detail names the rule and the field. Nothing was stored.
    CARELEDGER_INVALID_RULE_SET = 800,
    /// A policy's quorum is 0 or above the members of the network.
    CARELEDGER_INVALID_POLICY = 801,
    /// No rule set with that hash in the network.
    CARELEDGER_UNKNOWN_RULE_SET = 802,
    /// No policy with that entry id in the network.
    CARELEDGER_UNKNOWN_POLICY = 803,
    /// No rule outcome with that entry id in the network.
    CARELEDGER_UNKNOWN_OUTCOME = 804,
    /// A model card is endorsed only after this node's own verification
    /// confirms it; it answered mismatch (the detail names the step).
    /// Nothing was written.
    CARELEDGER_ENDORSEMENT_NOT_CONFIRMED = 805,
    /// Re-evaluating a rule outcome on this replica gave another result; the
    /// verification JSON names the step. The executor is flagged.
    CARELEDGER_OUTCOME_MISMATCH = 806,
    /// This replica lacks what the outcome cites (its rule set, trigger,
    /// inputs or decision have not arrived): sync and verify again.
    CARELEDGER_OUTCOME_WAITING = 807,

    // 900–999: the patient's rights (erasure, expiry) and restored stores.
    /// The patient's chart was erased (its keys shredded): nothing of it can
    /// be read, exported or erased again.
    CARELEDGER_CHART_ERASED = 900,
    /// The chart has no resource of that type and id to erase, or none was named.
    CARELEDGER_UNKNOWN_RESOURCE = 901,
    /// The store is older than entries this node already wrote in the network
    /// (restored from a backup): sync first, which catches its chain up.
    CARELEDGER_BEHIND_OWN_CHAIN = 902,
    /// A shared chart's consent was due to be decided again before the
    /// write, and deciding failed; nothing was written.
    CARELEDGER_CONSENT_DECISION_FAILED = 903,

    // 1000–1099: federated tasks (secure aggregation, differential privacy).
    /// A site's dataset would exceed the network's privacy budget; nothing
    /// was written and no record was read. The detail names the site.
    CARELEDGER_FL_BUDGET_EXCEEDED = 1000,
    /// The network's budget policy refuses tasks without differential privacy.
    CARELEDGER_FL_NON_PRIVATE_REFUSED = 1001,
    /// No federated task with that id in the network.
    CARELEDGER_FL_UNKNOWN_TASK = 1002,
    /// No federated round card with that entry id in the network.
    CARELEDGER_FL_UNKNOWN_ROUND_CARD = 1003,
    /// A plan or policy breaks a rule (the detail names the field).
    CARELEDGER_FL_INVALID_PLAN = 1004,
    /// A secure-aggregation step failed (a value out of the fixed-point
    /// range, a malformed message from a site, too few valid shares).
    CARELEDGER_FL_PROTOCOL = 1005,
    /// Re-verifying a round card found a difference; the verification JSON
    /// names the step and, where one is to blame, the site.
    CARELEDGER_FL_ROUND_MISMATCH = 1006,
}

use careledger_status::*;

/// Every status, in code order.
const ALL_STATUSES: [careledger_status; 66] = [
    CARELEDGER_OK,
    CARELEDGER_PANIC,
    CARELEDGER_NULL_PARAMETER,
    CARELEDGER_INVALID_UTF8,
    CARELEDGER_BUFFER_TOO_SMALL,
    CARELEDGER_INVALID_ARGUMENT,
    CARELEDGER_NODE_UNUSABLE,
    CARELEDGER_STALE_HANDLE,
    CARELEDGER_STORE_IO,
    CARELEDGER_WRONG_STORAGE_KEY,
    CARELEDGER_STORE_CORRUPT,
    CARELEDGER_STORE_TOO_NEW,
    CARELEDGER_NO_IDENTITY,
    CARELEDGER_ALREADY_CREATED,
    CARELEDGER_INVALID_NAME,
    CARELEDGER_UNKNOWN_NETWORK,
    CARELEDGER_NOT_A_MEMBER,
    CARELEDGER_COMMIT_PENDING,
    CARELEDGER_INVALID_KEY_PACKAGE,
    CARELEDGER_INVALID_WELCOME,
    CARELEDGER_UNKNOWN_MEMBER,
    CARELEDGER_MLS_FAILED,
    CARELEDGER_NO_WELCOME,
    CARELEDGER_INVALID_FHIR,
    CARELEDGER_UNKNOWN_PATIENT,
    CARELEDGER_RECORD_FAILED,
    CARELEDGER_MESSAGE_REJECTED,
    CARELEDGER_LEDGER_PROBLEMS,
    CARELEDGER_RELAY_UNAVAILABLE,
    CARELEDGER_RELAY_IO,
    CARELEDGER_INVALID_CONSENT,
    CARELEDGER_UNKNOWN_CONSENT,
    CARELEDGER_CONSENT_DENIED,
    CARELEDGER_SAME_NETWORK,
    CARELEDGER_INVALID_SPEC,
    CARELEDGER_INVALID_MODEL_KIND,
    CARELEDGER_EMPTY_DATASET,
    CARELEDGER_TRAINING_FAILED,
    CARELEDGER_UNKNOWN_MODEL_CARD,
    CARELEDGER_NOT_CAUGHT_UP,
    CARELEDGER_INVALID_FEATURES,
    CARELEDGER_MODEL_MISMATCH,
    CARELEDGER_ANALYTICS_ENTRY_INVALID,
    CARELEDGER_INVALID_PROOF,
    CARELEDGER_PROOF_REJECTED,
    CARELEDGER_NO_UPDATES,
    CARELEDGER_FEDERATION_FAILED,
    CARELEDGER_INVALID_RULE_SET,
    CARELEDGER_INVALID_POLICY,
    CARELEDGER_UNKNOWN_RULE_SET,
    CARELEDGER_UNKNOWN_POLICY,
    CARELEDGER_UNKNOWN_OUTCOME,
    CARELEDGER_ENDORSEMENT_NOT_CONFIRMED,
    CARELEDGER_OUTCOME_MISMATCH,
    CARELEDGER_OUTCOME_WAITING,
    CARELEDGER_CHART_ERASED,
    CARELEDGER_UNKNOWN_RESOURCE,
    CARELEDGER_BEHIND_OWN_CHAIN,
    CARELEDGER_CONSENT_DECISION_FAILED,
    CARELEDGER_FL_BUDGET_EXCEEDED,
    CARELEDGER_FL_NON_PRIVATE_REFUSED,
    CARELEDGER_FL_UNKNOWN_TASK,
    CARELEDGER_FL_UNKNOWN_ROUND_CARD,
    CARELEDGER_FL_INVALID_PLAN,
    CARELEDGER_FL_PROTOCOL,
    CARELEDGER_FL_ROUND_MISMATCH,
];

impl careledger_status {
    /// Static, NUL-terminated text for a status.
    pub fn text(self) -> &'static CStr {
        match self {
            CARELEDGER_OK => c"ok",
            CARELEDGER_PANIC => c"internal error (panic) in careledger",
            CARELEDGER_NULL_PARAMETER => c"a required pointer argument was NULL",
            CARELEDGER_INVALID_UTF8 => c"a string argument is not valid UTF-8",
            CARELEDGER_BUFFER_TOO_SMALL => c"output buffer too small",
            CARELEDGER_INVALID_ARGUMENT => c"invalid argument",
            CARELEDGER_NODE_UNUSABLE => {
                c"node unusable after an internal error; free it and open the store again"
            }
            CARELEDGER_STALE_HANDLE => {
                c"a handle argument is not live (freed, never issued, or of another type)"
            }
            CARELEDGER_STORE_IO => c"store I/O failed",
            CARELEDGER_WRONG_STORAGE_KEY => c"wrong storage key for this store",
            CARELEDGER_STORE_CORRUPT => c"store is corrupt or was tampered with",
            CARELEDGER_STORE_TOO_NEW => c"store was written by a newer careledger",
            CARELEDGER_NO_IDENTITY => c"store has no node identity; create one first",
            CARELEDGER_ALREADY_CREATED => c"store already holds a node identity",
            CARELEDGER_INVALID_NAME => {
                c"node name must be 1-255 printable ASCII characters without spaces"
            }
            CARELEDGER_UNKNOWN_NETWORK => c"unknown network",
            CARELEDGER_NOT_A_MEMBER => c"this node is not a member of the network",
            CARELEDGER_COMMIT_PENDING => c"a membership change is already pending; sync first",
            CARELEDGER_INVALID_KEY_PACKAGE => c"invalid key package",
            CARELEDGER_INVALID_WELCOME => c"invalid welcome",
            CARELEDGER_UNKNOWN_MEMBER => c"no such member in the network",
            CARELEDGER_MLS_FAILED => c"MLS operation failed",
            CARELEDGER_NO_WELCOME => c"no welcome for this node on the relay yet",
            CARELEDGER_INVALID_FHIR => c"input is not valid FHIR R4; nothing was stored",
            CARELEDGER_UNKNOWN_PATIENT => c"no record for that patient in this network",
            CARELEDGER_RECORD_FAILED => c"record update failed",
            CARELEDGER_MESSAGE_REJECTED => c"a received message was rejected",
            CARELEDGER_LEDGER_PROBLEMS => c"ledger verification found problems",
            CARELEDGER_RELAY_UNAVAILABLE => c"relay unavailable",
            CARELEDGER_RELAY_IO => c"relay I/O failed",
            CARELEDGER_INVALID_CONSENT => c"invalid consent",
            CARELEDGER_UNKNOWN_CONSENT => c"no consent with that id in the patient's chart",
            CARELEDGER_CONSENT_DENIED => c"consent does not permit this use of the record",
            CARELEDGER_SAME_NETWORK => c"source and target network are the same",
            CARELEDGER_INVALID_SPEC => c"invalid feature spec",
            CARELEDGER_INVALID_MODEL_KIND => c"invalid model kind or hyperparameters",
            CARELEDGER_EMPTY_DATASET => c"no record left to train on",
            CARELEDGER_TRAINING_FAILED => c"training failed; nothing was written",
            CARELEDGER_UNKNOWN_MODEL_CARD => c"no model card with that entry id in this network",
            CARELEDGER_NOT_CAUGHT_UP => {
                c"this replica is behind the ledger state needed; sync first"
            }
            CARELEDGER_INVALID_FEATURES => c"feature values do not fit the model",
            CARELEDGER_MODEL_MISMATCH => c"model card verification found a difference",
            CARELEDGER_ANALYTICS_ENTRY_INVALID => {
                c"analytics entry cannot be read or used for this operation"
            }
            CARELEDGER_INVALID_PROOF => c"not a dataset commitment or membership proof",
            CARELEDGER_PROOF_REJECTED => c"membership proof does not verify",
            CARELEDGER_NO_UPDATES => c"no model updates for this round",
            CARELEDGER_FEDERATION_FAILED => c"model updates cannot be averaged",
            CARELEDGER_INVALID_RULE_SET => c"rule set refused; nothing was stored",
            CARELEDGER_INVALID_POLICY => {
                c"policy quorum must be between 1 and the members of the network"
            }
            CARELEDGER_UNKNOWN_RULE_SET => c"no rule set with that hash in this network",
            CARELEDGER_UNKNOWN_POLICY => c"no policy with that entry id in this network",
            CARELEDGER_UNKNOWN_OUTCOME => c"no rule outcome with that entry id in this network",
            CARELEDGER_ENDORSEMENT_NOT_CONFIRMED => {
                c"model card not endorsed: this node's verification did not confirm it"
            }
            CARELEDGER_OUTCOME_MISMATCH => c"rule outcome verification found a difference",
            CARELEDGER_OUTCOME_WAITING => {
                c"this replica lacks what the rule outcome cites; sync and verify again"
            }
            CARELEDGER_CHART_ERASED => c"the patient's chart was erased",
            CARELEDGER_UNKNOWN_RESOURCE => c"the chart has no such resource to erase",
            CARELEDGER_BEHIND_OWN_CHAIN => {
                c"this store is older than the node's own chain (restored?); sync first"
            }
            CARELEDGER_CONSENT_DECISION_FAILED => {
                c"deciding a shared chart's consent failed; nothing was written"
            }
            CARELEDGER_FL_BUDGET_EXCEEDED => {
                c"refused: a dataset would exceed the network's privacy budget"
            }
            CARELEDGER_FL_NON_PRIVATE_REFUSED => {
                c"refused: the network's budget policy requires differential privacy"
            }
            CARELEDGER_FL_UNKNOWN_TASK => c"no federated task with that id in this network",
            CARELEDGER_FL_UNKNOWN_ROUND_CARD => {
                c"no federated round card with that entry id in this network"
            }
            CARELEDGER_FL_INVALID_PLAN => c"invalid federated plan or policy",
            CARELEDGER_FL_PROTOCOL => c"secure aggregation step failed",
            CARELEDGER_FL_ROUND_MISMATCH => c"round card verification found a difference",
        }
    }

    /// The status with this code, if any.
    pub fn from_code(code: u32) -> Option<Self> {
        ALL_STATUSES.into_iter().find(|s| *s as u32 == code)
    }
}

/// Static, NUL-terminated English text for a status code, for logs. Unknown
/// codes give "unknown status code".
///
/// Ownership: the returned string is static; never free it. Never NULL.
/// Thread safety: safe from any thread.
#[no_mangle]
pub extern "C" fn careledger_status_str(status: u32) -> *const c_char {
    // Pure lookup: nothing here can panic.
    careledger_status::from_code(status)
        .map(careledger_status::text)
        .unwrap_or(c"unknown status code")
        .as_ptr()
}

/// A failed call: its status and the detail for `careledger_last_error`.
#[derive(Debug)]
pub struct Failure {
    pub status: careledger_status,
    pub detail: String,
}

impl Failure {
    pub fn new(status: careledger_status, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }
}

fn fail(status: careledger_status, error: &dyn std::fmt::Display) -> Failure {
    Failure::new(status, error.to_string())
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unwrap(_) | StoreError::Corrupt(_) | StoreError::Tampered(_) => {
                fail(CARELEDGER_STORE_CORRUPT, &e)
            }
            StoreError::Sqlite(_) | StoreError::Randomness => fail(CARELEDGER_STORE_IO, &e),
        }
    }
}

impl From<OpenStoreError> for Failure {
    fn from(e: OpenStoreError) -> Self {
        match e {
            OpenStoreError::WrongStorageKey => fail(CARELEDGER_WRONG_STORAGE_KEY, &e),
            OpenStoreError::SchemaTooNew { .. } => fail(CARELEDGER_STORE_TOO_NEW, &e),
            OpenStoreError::Sqlite(_) => fail(CARELEDGER_STORE_IO, &e),
            OpenStoreError::MlsMigration(_) => fail(CARELEDGER_STORE_CORRUPT, &e),
            OpenStoreError::Store(e) => e.into(),
        }
    }
}

impl From<OpenNodeError> for Failure {
    fn from(e: OpenNodeError) -> Self {
        match e {
            OpenNodeError::NoIdentity => fail(CARELEDGER_NO_IDENTITY, &e),
            OpenNodeError::AlreadyCreated => fail(CARELEDGER_ALREADY_CREATED, &e),
            OpenNodeError::Identity(CreateIdentityError::InvalidName) => {
                fail(CARELEDGER_INVALID_NAME, &e)
            }
            OpenNodeError::Store(e) => e.into(),
        }
    }
}

impl From<NetworkError> for Failure {
    fn from(e: NetworkError) -> Self {
        let status = match e {
            NetworkError::UnknownNetwork => CARELEDGER_UNKNOWN_NETWORK,
            NetworkError::NotAMember => CARELEDGER_NOT_A_MEMBER,
            NetworkError::CommitPending => CARELEDGER_COMMIT_PENDING,
            NetworkError::InvalidKeyPackage(_) => CARELEDGER_INVALID_KEY_PACKAGE,
            NetworkError::InvalidWelcome(_) => CARELEDGER_INVALID_WELCOME,
            NetworkError::UnknownMember => CARELEDGER_UNKNOWN_MEMBER,
            NetworkError::Mls(_) => CARELEDGER_MLS_FAILED,
            NetworkError::BehindOwnChain { .. } => CARELEDGER_BEHIND_OWN_CHAIN,
            NetworkError::ConsentDecision(_) => CARELEDGER_CONSENT_DECISION_FAILED,
            NetworkError::Store(e) => return e.into(),
        };
        fail(status, &e)
    }
}

impl From<ImportError> for Failure {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Fhir(_) => fail(CARELEDGER_INVALID_FHIR, &e),
            ImportError::Record(_) => fail(CARELEDGER_RECORD_FAILED, &e),
            ImportError::Network(e) => e.into(),
            ImportError::Store(e) => e.into(),
        }
    }
}

impl From<ExportError> for Failure {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::UnknownPatient => fail(CARELEDGER_UNKNOWN_PATIENT, &e),
            ExportError::Erased => fail(CARELEDGER_CHART_ERASED, &e),
            ExportError::Record(_) => fail(CARELEDGER_RECORD_FAILED, &e),
            ExportError::Network(e) => e.into(),
            ExportError::Store(e) => e.into(),
        }
    }
}

impl From<EditError> for Failure {
    fn from(e: EditError) -> Self {
        match e {
            EditError::UnknownPatient => fail(CARELEDGER_UNKNOWN_PATIENT, &e),
            EditError::Record(_) => fail(CARELEDGER_RECORD_FAILED, &e),
            EditError::Network(e) => e.into(),
            EditError::Store(e) => e.into(),
        }
    }
}

impl From<ReceiveError> for Failure {
    fn from(e: ReceiveError) -> Self {
        match e {
            ReceiveError::Network(e) => e.into(),
            ReceiveError::Store(e) => e.into(),
        }
    }
}

impl From<RelayError> for Failure {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::Unavailable(_) => fail(CARELEDGER_RELAY_UNAVAILABLE, &e),
            RelayError::Io(_) => fail(CARELEDGER_RELAY_IO, &e),
        }
    }
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Relay(e) => e.into(),
            SyncError::Receive(e) => e.into(),
            SyncError::Network(e) => e.into(),
            SyncError::Store(e) => e.into(),
            SyncError::NoWelcome => fail(CARELEDGER_NO_WELCOME, &e),
            SyncError::Consent(e) => e.into(),
        }
    }
}

/// The error's text followed by the text of each error it wraps, so a
/// detail keeps the rule a wrapper names only as its source.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

fn fail_chain(status: careledger_status, error: &dyn std::error::Error) -> Failure {
    Failure::new(status, chain(error))
}

impl From<ParseConsentError> for Failure {
    fn from(e: ParseConsentError) -> Self {
        fail(CARELEDGER_INVALID_CONSENT, &e)
    }
}

impl From<InvalidSpecError> for Failure {
    fn from(e: InvalidSpecError) -> Self {
        fail(CARELEDGER_INVALID_SPEC, &e)
    }
}

impl From<ConsentError> for Failure {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::UnknownPatient => fail(CARELEDGER_UNKNOWN_PATIENT, &e),
            ConsentError::Erased => fail(CARELEDGER_CHART_ERASED, &e),
            ConsentError::Import(e) => e.into(),
            ConsentError::SameNetwork => fail(CARELEDGER_SAME_NETWORK, &e),
            ConsentError::Record(_) => fail(CARELEDGER_RECORD_FAILED, &e),
            ConsentError::Network(e) => e.into(),
            ConsentError::Store(e) => e.into(),
        }
    }
}

impl From<EraseError> for Failure {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::UnknownPatient => fail(CARELEDGER_UNKNOWN_PATIENT, &e),
            EraseError::AlreadyErased => fail(CARELEDGER_CHART_ERASED, &e),
            EraseError::UnknownResource(_) | EraseError::NothingToErase => {
                fail(CARELEDGER_UNKNOWN_RESOURCE, &e)
            }
            EraseError::Record(_) => fail(CARELEDGER_RECORD_FAILED, &e),
            EraseError::Network(e) => e.into(),
            EraseError::Store(e) => e.into(),
        }
    }
}

impl From<AnalyticsError> for Failure {
    fn from(e: AnalyticsError) -> Self {
        let status = match &e {
            AnalyticsError::Spec(_) => CARELEDGER_INVALID_SPEC,
            AnalyticsError::Extract(extract) => match extract {
                ExtractDatasetError::InvalidSpec(_) => CARELEDGER_INVALID_SPEC,
                ExtractDatasetError::EmptyDataset { .. } => CARELEDGER_EMPTY_DATASET,
                ExtractDatasetError::DuplicateRecord { .. }
                | ExtractDatasetError::UnknownFeatureCode { .. }
                | ExtractDatasetError::MissingValue { .. }
                | ExtractDatasetError::Library(_) => CARELEDGER_TRAINING_FAILED,
            },
            AnalyticsError::Train(train) => match train {
                TrainModelError::InvalidHyperparameter { .. } => CARELEDGER_INVALID_MODEL_KIND,
                TrainModelError::EmptyDataset => CARELEDGER_EMPTY_DATASET,
                TrainModelError::MissingTargets { .. }
                | TrainModelError::TargetNotBinary { .. }
                | TrainModelError::SingleClass
                | TrainModelError::TooFewRows { .. }
                | TrainModelError::NotConverged { .. }
                | TrainModelError::NonFiniteParameters
                | TrainModelError::Fit { .. } => CARELEDGER_TRAINING_FAILED,
            },
            AnalyticsError::Dataset(_) | AnalyticsError::Evaluate(_) => CARELEDGER_TRAINING_FAILED,
            AnalyticsError::Load(_) => CARELEDGER_ANALYTICS_ENTRY_INVALID,
            AnalyticsError::Predict(_) => CARELEDGER_INVALID_FEATURES,
            AnalyticsError::Average(_) => CARELEDGER_FEDERATION_FAILED,
        };
        fail_chain(status, &e)
    }
}

impl From<AiError> for Failure {
    fn from(e: AiError) -> Self {
        let status = match e {
            AiError::EmptyAfterConsent { .. } => CARELEDGER_EMPTY_DATASET,
            AiError::ConsentDenied { .. } => CARELEDGER_CONSENT_DENIED,
            AiError::UnknownModelCard => CARELEDGER_UNKNOWN_MODEL_CARD,
            AiError::UnknownPatient => CARELEDGER_UNKNOWN_PATIENT,
            AiError::Checkpoint(_) => CARELEDGER_NOT_CAUGHT_UP,
            AiError::NoUpdates(_) => CARELEDGER_NO_UPDATES,
            AiError::DuplicateSite { .. } | AiError::MixedRound { .. } => {
                CARELEDGER_FEDERATION_FAILED
            }
            AiError::Holdout(_) => CARELEDGER_INVALID_ARGUMENT,
            AiError::Body(_) => CARELEDGER_ANALYTICS_ENTRY_INVALID,
            AiError::NoDataset => CARELEDGER_ANALYTICS_ENTRY_INVALID,
            AiError::Analytics(e) => return e.into(),
            AiError::Network(e) => return e.into(),
            AiError::Store(e) => return e.into(),
        };
        fail(status, &e)
    }
}

impl From<FlError> for Failure {
    fn from(e: FlError) -> Self {
        let status = match e {
            FlError::BudgetExceeded { .. } => CARELEDGER_FL_BUDGET_EXCEEDED,
            FlError::NonPrivateRefused => CARELEDGER_FL_NON_PRIVATE_REFUSED,
            FlError::UnknownTask => CARELEDGER_FL_UNKNOWN_TASK,
            FlError::UnknownRoundCard => CARELEDGER_FL_UNKNOWN_ROUND_CARD,
            FlError::Plan(_) | FlError::Scaling(_) | FlError::NotAMember(_) => {
                CARELEDGER_FL_INVALID_PLAN
            }
            FlError::NotCoordinator => CARELEDGER_INVALID_ARGUMENT,
            FlError::Protocol(_) => CARELEDGER_FL_PROTOCOL,
            FlError::Body(_) => CARELEDGER_ANALYTICS_ENTRY_INVALID,
            FlError::Dataset(e) => return e.into(),
            FlError::Network(e) => return e.into(),
            FlError::Store(e) => return e.into(),
        };
        fail(status, &e)
    }
}

impl From<RulesError> for Failure {
    fn from(e: RulesError) -> Self {
        let status = match e {
            RulesError::Ai(e) => return e.into(),
            RulesError::Network(e) => return e.into(),
            RulesError::Store(e) => return e.into(),
            RulesError::InvalidRuleSet(_) => CARELEDGER_INVALID_RULE_SET,
            RulesError::InvalidPolicy(_) => CARELEDGER_INVALID_POLICY,
            RulesError::Unknown("rule set") => CARELEDGER_UNKNOWN_RULE_SET,
            RulesError::Unknown("policy") => CARELEDGER_UNKNOWN_POLICY,
            RulesError::Unknown("model card") => CARELEDGER_UNKNOWN_MODEL_CARD,
            RulesError::Unknown(_) => CARELEDGER_UNKNOWN_OUTCOME,
            RulesError::NotConfirmed { .. } => CARELEDGER_ENDORSEMENT_NOT_CONFIRMED,
        };
        fail_chain(status, &e)
    }
}

impl From<DecodeDatasetCommitmentError> for Failure {
    fn from(e: DecodeDatasetCommitmentError) -> Self {
        fail(CARELEDGER_INVALID_PROOF, &e)
    }
}

impl From<DecodeProofError> for Failure {
    fn from(e: DecodeProofError) -> Self {
        fail(CARELEDGER_INVALID_PROOF, &e)
    }
}

impl From<VerifyMembershipError> for Failure {
    fn from(e: VerifyMembershipError) -> Self {
        fail(CARELEDGER_PROOF_REJECTED, &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_stable_and_have_text() {
        let all: Vec<_> = ALL_STATUSES
            .into_iter()
            .filter(|s| *s != CARELEDGER_OK)
            .collect();
        let codes: HashSet<u32> = all.iter().map(|s| *s as u32).collect();
        assert_eq!(codes.len(), all.len(), "duplicate status in ALL");
        // The published numbering; changing any of these breaks integrators.
        assert_eq!(CARELEDGER_OK as u32, 0);
        assert_eq!(CARELEDGER_NULL_PARAMETER as u32, 2);
        assert_eq!(CARELEDGER_WRONG_STORAGE_KEY as u32, 101);
        assert_eq!(CARELEDGER_INVALID_FHIR as u32, 300);
        assert_eq!(CARELEDGER_MESSAGE_REJECTED as u32, 400);
        assert_eq!(CARELEDGER_RELAY_IO as u32, 501);
        assert_eq!(CARELEDGER_INVALID_CONSENT as u32, 600);
        assert_eq!(CARELEDGER_SAME_NETWORK as u32, 603);
        assert_eq!(CARELEDGER_INVALID_SPEC as u32, 700);
        assert_eq!(CARELEDGER_MODEL_MISMATCH as u32, 707);
        assert_eq!(CARELEDGER_FEDERATION_FAILED as u32, 712);
        assert_eq!(CARELEDGER_INVALID_RULE_SET as u32, 800);
        assert_eq!(CARELEDGER_OUTCOME_WAITING as u32, 807);
        assert_eq!(CARELEDGER_CHART_ERASED as u32, 900);
        assert_eq!(CARELEDGER_BEHIND_OWN_CHAIN as u32, 902);
        assert_eq!(CARELEDGER_FL_BUDGET_EXCEEDED as u32, 1000);
        assert_eq!(CARELEDGER_FL_ROUND_MISMATCH as u32, 1006);
        for status in all {
            let code = status as u32;
            assert_eq!(careledger_status::from_code(code), Some(status));
            assert!(!status.text().to_bytes().is_empty());
        }
        assert_eq!(CARELEDGER_STALE_HANDLE as u32, 7);
        assert_eq!(careledger_status::from_code(8), None);
        let unknown = unsafe { CStr::from_ptr(careledger_status_str(9999)) };
        assert_eq!(unknown, c"unknown status code");
    }
}
