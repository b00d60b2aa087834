//! careledger for Swift, Kotlin and Python: a thin [uniffi] wrapper around the
//! `careledger` core, with no logic of its own.
//!
//! Flow (every call synchronous; the wrapper reads the system clock for the
//! core's `now_ms`):
//!
//! 1. [`Node::create`] once (new identity, new store sealed under a 32-byte
//!    storage key from the platform keychain), [`Node::open`] afterwards.
//! 2. A member makes a network ([`Node::create_network`]) and invites the
//!    phone's [`Node::key_package`] with [`Network::invite`]; the phone joins
//!    with [`Node::join_from_local_relay`] or, with its own transport,
//!    [`Node::join_network`] and the Welcome bytes.
//! 3. Transport: [`Network::sync_local_relay`] against a relay file, or the
//!    sans-IO path: [`Node::outgoing`] / [`Node::ack_outgoing`] out,
//!    [`Network::receive`] in, in relay order.
//! 4. Records: [`Network::import_fhir`], [`Network::patients`],
//!    [`Network::export_patient`]; audit with [`Network::verify_ledger`].
//! 5. Consent: the hospital lists the patient's phone with
//!    [`Network::link_patient_node`]; the phone writes
//!    [`Network::grant_consent`] / [`Network::revoke_consent`] (an
//!    institution writing them records on the patient's behalf);
//!    [`Network::consents`] reads them; [`Network::share_to_network`] copies
//!    what consent permits into a study network and cuts off the rest;
//!    [`Network::export_for_grantee`] filters one chart.
//! 6. Verifiable AI: [`Network::train`] writes a model card,
//!    [`Network::verify_model`] re-derives it on another replica,
//!    [`Network::predict`] records each decision, [`Network::audit`] lists
//!    them; [`Network::prove_membership`] answers a patient, who checks it
//!    with [`verify_membership`] against [`model_card_dataset_commitment`].
//!
//! 7. Federated tasks under secure aggregation and differential privacy:
//!    a site loops on [`Network::fl_site_step`]; a coordinator writes
//!    [`Network::fl_plan`] and loops on [`Network::fl_coordinator_step`];
//!    anyone checks [`Network::fl_verify_round`] and [`Network::fl_budget`].
//! 8. The patient's rights: [`Network::erase_chart`] and
//!    [`Network::erase_resources`] crypto-shred a chart,
//!    [`Network::erased_charts`] lists what was erased, [`Node::tick`] ends
//!    grants whose period is over (the sync functions call it too), and
//!    [`Node::verify_store`] audits the whole store file.
//! 9. Rules that act by themselves (an insurer's auto-adjudication):
//!    [`Network::share_types_to_network`] shares consented claims,
//!    [`Network::set_rules_policy`] sets the quorum, [`Network::add_rule_set`]
//!    stores a CEL rule set, [`Network::endorse`] /
//!    [`Network::withdraw_endorsement`] govern it; executors then write
//!    outcomes by themselves while they sync, and every member lists them
//!    ([`Network::rule_outcomes`]) and re-checks them
//!    ([`Network::verify_outcome`], [`Network::verify_outcomes`]).
//!
//! Every failure is an [`ApiError`] (mapped from the core's errors in
//! `error.rs` only); a panic surfaces as uniffi's internal error.
//!
//! ```
//! use careledger_uniffi::Node;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("phone.sqlite").to_string_lossy().into_owned();
//! let phone = Node::create(path.clone(), vec![7; 32], "phone.example".into()).unwrap();
//! let network = phone.create_network("my chart".into()).unwrap();
//! let ndjson = br#"{"resourceType":"Patient","id":"p1","birthDate":"1970-01-01"}"#;
//! network.import_fhir("inline.ndjson".into(), ndjson.to_vec()).unwrap();
//! assert!(network.export_patient("p1".into()).unwrap().contains("1970-01-01"));
//! drop((phone, network));
//! assert!(Node::open(path, vec![8; 32]).is_err(), "wrong storage key");
//! ```
//!
//! [uniffi]: https://mozilla.github.io/uniffi-rs/

#![warn(missing_docs)]

mod analytics;
mod consent;
mod error;
mod federated;
mod network;
mod node;
#[cfg(feature = "panic-probe")]
pub mod probe;
mod rights;
mod rules;
mod types;

pub use analytics::{
    model_card_dataset_commitment, verify_membership, AuditEntry, AuditRecord, Decision,
    MembershipProofBytes, ModelKind, ModelMetrics, PredictInput, Prediction, TrainResult,
    Verification, VerifyStep,
};
pub use consent::{
    ChartConsents, Consent, ConsentSource, ConsentStatus, ExportFormat, Grantee, GranteeExport,
    PatientConsent, Purpose, ShareReport,
};
pub use error::ApiError;
pub use federated::{FlPolicy, FlStep, FlTask, RoundVerification, SiteBudget};
pub use network::Network;
pub use node::Node;
pub use rights::{EraseReport, ErasedChart, ResourceRef, StoreAudit, TickReport};
pub use rules::{
    Activation, EndorsementTarget, OutcomeVerification, RuleDecision, RuleOutcome, RuleSetAdded,
    RuleSetInfo, RulesActivity,
};
pub use types::{
    ImportReport, LedgerReport, MemberInfo, MessageKind, NetworkInfo, OutgoingMessage,
    ReceiveReport, SyncReport,
};

uniffi::setup_scaffolding!("careledger");
