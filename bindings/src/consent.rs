//! Consent on `Network`: the patient's phone grants and revokes, everyone
//! reads a chart's consents, and institutions share and export only what
//! consent permits (the core's `node::consent`).
//!
//! Flow: the hospital imports the chart and lists the patient's phone with
//! [`Network::link_patient_node`]; the phone (a member of the care network)
//! writes [`Network::grant_consent`] / [`Network::revoke_consent`] and syncs;
//! the hospital syncs and runs [`Network::share_to_network`] into the study,
//! which copies what consent permits and cuts the study off (rotates and
//! withholds the record key) once nothing may go there any more.

use std::sync::Arc;

use careledger::consent::{self as core, Actor, Consent as CoreConsent, Period};
use careledger::entry::AuthorId;
use careledger::node::{self as node, ExportFormat as CoreExportFormat, NetworkId};

use crate::error::ApiError;
use crate::network::Network;
use crate::node::{network_id, now_ms};

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(crate) fn author_id(hex: &str) -> Result<AuthorId, ApiError> {
    AuthorId::from_hex(hex.trim())
        .ok_or_else(|| ApiError::invalid_argument("author id must be 64 hex digits"))
}

/// Why data is used: an HL7 v3 ActReason code.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Purpose {
    /// `TREAT`: treatment (the care network's default).
    Treatment,
    /// `HRESCH`: healthcare research.
    Research,
    /// `CLMATTCH`: claim attachment (insurers).
    Claims,
    /// Any other ActReason code; it matches only the same code.
    Other {
        /// The code.
        code: String,
    },
}

impl From<Purpose> for core::Purpose {
    fn from(purpose: Purpose) -> Self {
        match purpose {
            Purpose::Treatment => core::Purpose::Treat,
            Purpose::Research => core::Purpose::Research,
            Purpose::Claims => core::Purpose::Claims,
            // A known code given as `Other` is that purpose.
            Purpose::Other { code } => core::Purpose::from_code(&code),
        }
    }
}

impl From<&core::Purpose> for Purpose {
    fn from(purpose: &core::Purpose) -> Self {
        match purpose {
            core::Purpose::Treat => Purpose::Treatment,
            core::Purpose::Research => Purpose::Research,
            core::Purpose::Claims => Purpose::Claims,
            core::Purpose::Other(code) => Purpose::Other { code: code.clone() },
        }
    }
}

/// Whom a consent grants to.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Grantee {
    /// Every node acting in one network (a study), by network id (hex).
    Network {
        /// The network id (hex).
        network_id: String,
    },
    /// One node (an institution's installation, a phone), by author id.
    Node {
        /// The author id (64 hex digits).
        author_id: String,
    },
}

impl Grantee {
    fn to_core(&self) -> Result<core::Grantee, ApiError> {
        Ok(match self {
            Grantee::Network { network_id: id } => core::Grantee::Network(network_id(id)?),
            Grantee::Node { author_id: id } => core::Grantee::Node(author_id(id)?),
        })
    }
}

impl From<&core::Grantee> for Grantee {
    fn from(grantee: &core::Grantee) -> Self {
        match grantee {
            core::Grantee::Network(id) => Grantee::Network {
                network_id: id.to_hex(),
            },
            core::Grantee::Node(id) => Grantee::Node {
                author_id: id.to_hex(),
            },
        }
    }
}

/// `Consent.status`: only `Active` consents take part in decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ConsentStatus {
    /// Being written.
    Draft,
    /// Offered, not yet agreed.
    Proposed,
    /// In force.
    Active,
    /// Declined by the patient.
    Rejected,
    /// Revoked or replaced.
    Inactive,
    /// Recorded by mistake.
    EnteredInError,
}

impl From<core::ConsentStatus> for ConsentStatus {
    fn from(status: core::ConsentStatus) -> Self {
        match status {
            core::ConsentStatus::Draft => ConsentStatus::Draft,
            core::ConsentStatus::Proposed => ConsentStatus::Proposed,
            core::ConsentStatus::Active => ConsentStatus::Active,
            core::ConsentStatus::Rejected => ConsentStatus::Rejected,
            core::ConsentStatus::Inactive => ConsentStatus::Inactive,
            core::ConsentStatus::EnteredInError => ConsentStatus::EnteredInError,
        }
    }
}

/// A patient's consent, as stored in the chart (a FHIR R4 `Consent`).
///
/// `grantees`, `purposes`, `classes` and the period are those of the root
/// provision (the grant itself); `exceptions` counts its nested provisions.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Consent {
    /// The resource id (what decisions and model cards cite).
    pub id: String,
    /// The patient's id.
    pub patient_id: String,
    /// Whether it is in force.
    pub status: ConsentStatus,
    /// Whom it concerns; empty means anyone.
    pub grantees: Vec<Grantee>,
    /// For which purposes; empty means all.
    pub purposes: Vec<Purpose>,
    /// For which resource types (`Observation`, …); empty means all.
    pub classes: Vec<String>,
    /// First instant of validity (Unix ms, UTC), if bounded.
    pub start_ms: Option<i64>,
    /// Last instant of validity (Unix ms, UTC), if bounded.
    pub end_ms: Option<i64>,
    /// Nested provisions (exceptions within the grant).
    pub exceptions: u32,
    /// The node that recorded it on the patient's behalf (author id), as
    /// marked in the resource; `None` if marked as the patient's own.
    pub recorded_on_behalf_by: Option<String>,
    /// The resource as FHIR JSON.
    pub fhir_json: String,
}

impl From<&CoreConsent> for Consent {
    fn from(consent: &CoreConsent) -> Self {
        let root = consent.provision();
        Consent {
            id: consent.id().to_owned(),
            patient_id: consent.patient_id().to_owned(),
            status: consent.status().into(),
            grantees: root
                .actors
                .iter()
                .filter_map(|actor| match actor {
                    Actor::Grantee(grantee) => Some(Grantee::from(grantee)),
                    Actor::Other(_) => None,
                })
                .collect(),
            purposes: root.purposes.iter().map(Purpose::from).collect(),
            classes: root.classes.clone(),
            start_ms: root.period.start_ms,
            end_ms: root.period.end_ms,
            exceptions: u32::try_from(root.provisions.len()).unwrap_or(u32::MAX),
            recorded_on_behalf_by: consent.recorded_on_behalf_by().map(AuthorId::to_hex),
            fhir_json: consent.to_json(),
        }
    }
}

/// Who wrote a consent into the chart, as the record's authorship shows.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ConsentSource {
    /// One of the patient's own nodes (their phone, listed with
    /// `Network.link_patient_node`).
    PatientNode {
        /// Its author id.
        author_id: String,
    },
    /// A member institution, recording it on the patient's behalf.
    OnBehalf {
        /// The recording node's author id.
        recorder_author_id: String,
    },
}

impl From<&core::ConsentSource> for ConsentSource {
    fn from(source: &core::ConsentSource) -> Self {
        match source {
            core::ConsentSource::PatientNode(author) => ConsentSource::PatientNode {
                author_id: author.to_hex(),
            },
            core::ConsentSource::OnBehalf { recorder } => ConsentSource::OnBehalf {
                recorder_author_id: recorder.to_hex(),
            },
        }
    }
}

/// A consent read from a chart, with who wrote it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PatientConsent {
    /// The consent.
    pub consent: Consent,
    /// Who wrote it.
    pub source: ConsentSource,
    /// Whether its recorded-on-behalf mark agrees with who wrote it (a
    /// consent whose mark disagrees misstates who recorded it).
    pub mark_matches: bool,
}

/// A chart's consents.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ChartConsents {
    /// The readable consents.
    pub consents: Vec<PatientConsent>,
    /// Ids of `Consent` resources that could not be read. While there is
    /// one, every use of the chart that needs consent is refused.
    pub unreadable_ids: Vec<String>,
}

impl From<node::ChartConsents> for ChartConsents {
    fn from(chart: node::ChartConsents) -> Self {
        ChartConsents {
            consents: chart
                .consents
                .iter()
                .map(|c| PatientConsent {
                    consent: Consent::from(&c.consent),
                    source: ConsentSource::from(&c.source),
                    mark_matches: c.mark_matches,
                })
                .collect(),
            unreadable_ids: chart.unreadable,
        }
    }
}

/// What `Network.share_to_network` did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ShareReport {
    /// Patients of the source network looked at.
    pub patients: u64,
    /// Patients with at least one resource shared (new or unchanged).
    pub patients_shared: u64,
    /// Resources consent allowed (consents themselves not counted).
    pub resources_permitted: u64,
    /// Resources consent did not allow.
    pub resources_withheld: u64,
    /// Records cut off in this run: their key in the target was rotated and
    /// withheld, so the target's members cannot read what follows.
    pub records_cut_off: u64,
    /// Records whose key was granted again (consent permits again).
    pub records_restored: u64,
    /// Charts skipped because a `Consent` in them is unreadable.
    pub unreadable_charts: u64,
    /// Entries written to the target network.
    pub entries: u64,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
}

impl From<node::ShareReport> for ShareReport {
    fn from(report: node::ShareReport) -> Self {
        ShareReport {
            patients: count(report.patients),
            patients_shared: count(report.patients_shared),
            resources_permitted: count(report.resources_permitted),
            resources_withheld: count(report.resources_withheld),
            records_cut_off: count(report.records_cut_off),
            records_restored: count(report.records_restored),
            unreadable_charts: count(report.unreadable_charts),
            entries: count(report.entries),
            consent_ids: report.consent_ids,
        }
    }
}

/// The FHIR shape of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ExportFormat {
    /// One `Bundle` of type `collection`, JSON text.
    Bundle,
    /// NDJSON: one resource per line.
    Ndjson,
}

impl From<ExportFormat> for CoreExportFormat {
    fn from(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Bundle => CoreExportFormat::Bundle,
            ExportFormat::Ndjson => CoreExportFormat::Ndjson,
        }
    }
}

/// A chart filtered for a grantee.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GranteeExport {
    /// The permitted resources, in the requested format.
    pub text: String,
    /// Resources included.
    pub included: u64,
    /// Resources left out.
    pub withheld: u64,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
}

impl From<node::GranteeExport> for GranteeExport {
    fn from(export: node::GranteeExport) -> Self {
        GranteeExport {
            text: export.text,
            included: count(export.included),
            withheld: count(export.withheld),
            consent_ids: export.consent_ids,
        }
    }
}

fn instant(ms: u64, field: &str) -> Result<i64, ApiError> {
    i64::try_from(ms).map_err(|_| ApiError::InvalidConsent {
        reason: format!("invalid consent: {field} is out of range"),
    })
}

#[uniffi::export]
impl Network {
    /// Write a consent granting `grantee` the `purposes` (all if empty) on
    /// the resource types `classes` (all if empty), valid from `start_ms`
    /// through `end_ms` (Unix ms, both inclusive; open where `None`), into
    /// `patient_id`'s chart. Returns the consent as stored.
    ///
    /// Written by one of the patient's own nodes (the phone, see
    /// `link_patient_node`) it is the patient's consent; written by anyone
    /// else it is marked as recorded on the patient's behalf by this node.
    /// Writing an existing `consent_id` again replaces that consent.
    ///
    /// Errors: `InvalidConsent` (id, period), `InvalidArgument` (grantee
    /// id), `InvalidFhir` (the consent's FHIR refused on import, every
    /// problem listed), `UnknownPatient`, `Record`.
    #[allow(clippy::too_many_arguments)]
    #[uniffi::method(default(classes = [], start_ms = None, end_ms = None))]
    pub fn grant_consent(
        &self,
        consent_id: String,
        patient_id: String,
        grantee: Grantee,
        purposes: Vec<Purpose>,
        classes: Vec<String>,
        start_ms: Option<u64>,
        end_ms: Option<u64>,
    ) -> Result<Consent, ApiError> {
        let grantee = grantee.to_core()?;
        let purposes: Vec<core::Purpose> = purposes.into_iter().map(Into::into).collect();
        let consent = match (start_ms, end_ms) {
            (Some(start), Some(end)) => CoreConsent::grant(
                &consent_id,
                &patient_id,
                grantee,
                purposes,
                classes,
                Some((start, end)),
            )?,
            (None, None) => {
                CoreConsent::grant(&consent_id, &patient_id, grantee, purposes, classes, None)?
            }
            // Half-open: the same grant, one bound set; `build` re-validates.
            (start, end) => {
                let mut draft =
                    CoreConsent::grant(&consent_id, &patient_id, grantee, purposes, classes, None)?
                        .to_draft();
                draft.provision.period = Period {
                    start_ms: start
                        .map(|ms| instant(ms, "provision.period.start"))
                        .transpose()?,
                    end_ms: end
                        .map(|ms| instant(ms, "provision.period.end"))
                        .transpose()?,
                };
                draft.build()?
            }
        };
        self.shared.with(|node| {
            let stored = node.record_consent(&self.id, &consent, now_ms())?;
            Ok(Consent::from(&stored))
        })
    }

    /// Revoke consent `consent_id` of `patient_id`: store it again with
    /// status `inactive`. It stops applying at once here, in other networks
    /// once the next `share_to_network` carries the revocation there.
    /// Returns the consent as stored.
    ///
    /// Errors: `UnknownConsent`, `InvalidFhir`, `UnknownPatient`, `Record`.
    pub fn revoke_consent(
        &self,
        patient_id: String,
        consent_id: String,
    ) -> Result<Consent, ApiError> {
        self.shared.with(|node| {
            let chart = node.consents(&self.id, &patient_id)?;
            let consent = chart
                .consents
                .into_iter()
                .map(|c| c.consent)
                .find(|c| c.id() == consent_id)
                .ok_or_else(|| ApiError::UnknownConsent {
                    reason: "no readable consent with that id in the patient's chart".into(),
                })?;
            let stored = node.record_consent(&self.id, &consent.revoked(), now_ms())?;
            Ok(Consent::from(&stored))
        })
    }

    /// The consents in `patient_id`'s chart, with who wrote each.
    ///
    /// Errors: `UnknownPatient`, `Record`.
    pub fn consents(&self, patient_id: String) -> Result<ChartConsents, ApiError> {
        self.shared
            .with(|node| Ok(ChartConsents::from(node.consents(&self.id, &patient_id)?)))
    }

    /// List the node `author_id` (the patient's phone) as one of the
    /// patient's own nodes in the chart's `Patient` resource, so consents it
    /// writes count as the patient's. `false` if it was listed already.
    ///
    /// Errors: `InvalidArgument`, `UnknownPatient`, `Record` (no `Patient`
    /// resource with the patient's id).
    pub fn link_patient_node(
        &self,
        patient_id: String,
        author_id: String,
    ) -> Result<bool, ApiError> {
        let author = self::author_id(&author_id)?;
        self.shared
            .with(|node| Ok(node.link_patient_node(&self.id, &patient_id, &author, now_ms())?))
    }

    /// Share this network's charts into `target` (another network of the
    /// same node), each resource only if consent permits `purpose` for every
    /// other member of `target`; cut off the charts nothing of which may go
    /// there any more (their record key in `target` is rotated and kept
    /// from the other members). Running it again with nothing changed
    /// writes nothing. Sync `target` afterwards.
    ///
    /// Errors: `InvalidArgument` (the same network, or a `target` of another
    /// node), `NotAMember`, `Record`.
    pub fn share_to_network(
        &self,
        target: Arc<Network>,
        purpose: Purpose,
    ) -> Result<ShareReport, ApiError> {
        if !Arc::ptr_eq(&self.shared, &target.shared) {
            return Err(ApiError::invalid_argument(
                "the target network object belongs to another node",
            ));
        }
        let to: &NetworkId = &target.id;
        self.shared.with(|node| {
            let report = node.share_to_network(&self.id, to, purpose.into(), now_ms())?;
            Ok(ShareReport::from(report))
        })
    }

    /// `patient_id`'s chart with only what consent permits `grantees` to use
    /// for `purpose` now (charts without a covering consent follow the
    /// network default: treatment by this network's members). Consents
    /// themselves are left out.
    ///
    /// Errors: `InvalidArgument` (a grantee id), `UnknownPatient`, `Record`.
    pub fn export_for_grantee(
        &self,
        patient_id: String,
        grantees: Vec<Grantee>,
        purpose: Purpose,
        format: ExportFormat,
    ) -> Result<GranteeExport, ApiError> {
        let grantees = grantees
            .iter()
            .map(Grantee::to_core)
            .collect::<Result<Vec<_>, _>>()?;
        self.shared.with(|node| {
            let export = node.export_for_grantee(
                &self.id,
                &patient_id,
                &grantees,
                purpose.into(),
                now_ms(),
                format.into(),
            )?;
            Ok(GranteeExport::from(export))
        })
    }
}
