//! The [`Consent`] resource as careledger models it, and its builders.

use std::fmt;

use crate::entry::AuthorId;

use super::fhir::ParseConsentError;
use super::provision::{Grantee, Period, Provision, Purpose};
use super::time;

/// `Consent.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsentStatus {
    /// `draft`: being written; never applies.
    Draft,
    /// `proposed`: offered, not yet agreed; never applies.
    Proposed,
    /// `active`: in force; the only status that takes part in decisions.
    Active,
    /// `rejected`: the patient declined it; never applies.
    Rejected,
    /// `inactive`: revoked, or replaced by another consent; never applies.
    Inactive,
    /// `entered-in-error`: recorded by mistake; never applies.
    EnteredInError,
}

impl ConsentStatus {
    /// Every status, in FHIR's order.
    pub const ALL: [ConsentStatus; 6] = [
        ConsentStatus::Draft,
        ConsentStatus::Proposed,
        ConsentStatus::Active,
        ConsentStatus::Rejected,
        ConsentStatus::Inactive,
        ConsentStatus::EnteredInError,
    ];

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            ConsentStatus::Draft => "draft",
            ConsentStatus::Proposed => "proposed",
            ConsentStatus::Active => "active",
            ConsentStatus::Rejected => "rejected",
            ConsentStatus::Inactive => "inactive",
            ConsentStatus::EnteredInError => "entered-in-error",
        }
    }

    /// The status a FHIR code names.
    pub fn from_code(code: &str) -> Option<ConsentStatus> {
        ConsentStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// `Consent.scope`: what the consent is about.
///
/// Only information-sharing consents ([`ConsentScope::PatientPrivacy`] and
/// [`ConsentScope::Research`]) take part in access decisions; a consent to a
/// treatment or an advance directive in the same chart says nothing about
/// who may read the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsentScope {
    /// `patient-privacy`: collecting, accessing, using or disclosing information.
    PatientPrivacy,
    /// `research`: taking part in research, with the sharing it needs.
    Research,
    /// `treatment`: consent to a treatment; not about access.
    Treatment,
    /// `adr`: an advance directive; not about access.
    AdvanceDirective,
}

impl ConsentScope {
    /// Every scope.
    pub const ALL: [ConsentScope; 4] = [
        ConsentScope::PatientPrivacy,
        ConsentScope::Research,
        ConsentScope::Treatment,
        ConsentScope::AdvanceDirective,
    ];

    /// The code in `http://terminology.hl7.org/CodeSystem/consentscope`.
    pub fn code(self) -> &'static str {
        match self {
            ConsentScope::PatientPrivacy => "patient-privacy",
            ConsentScope::Research => "research",
            ConsentScope::Treatment => "treatment",
            ConsentScope::AdvanceDirective => "adr",
        }
    }

    /// The scope a consentscope code names.
    pub fn from_code(code: &str) -> Option<ConsentScope> {
        ConsentScope::ALL.into_iter().find(|s| s.code() == code)
    }

    /// True for the scopes that govern access to the record.
    pub fn governs_access(self) -> bool {
        matches!(self, ConsentScope::PatientPrivacy | ConsentScope::Research)
    }
}

/// A patient's FHIR R4 Consent, as careledger reads and evaluates it.
///
/// A `Consent` is always valid and canonical: it is made only by
/// [`Consent::from_fhir`] / [`Consent::from_json`] or by [`ConsentDraft::build`]
/// (and the builders on top of it), which read the draft's FHIR back through
/// the same parser. So `Consent::from_fhir(&c.to_fhir()) == Ok(c)` always.
///
/// `Debug` shows the status, scope and rule shape, never the ids or the
/// patient's choices.
#[derive(Clone, PartialEq, Eq)]
pub struct Consent {
    pub(crate) id: String,
    pub(crate) patient_id: String,
    pub(crate) status: ConsentStatus,
    pub(crate) scope: ConsentScope,
    pub(crate) date_time_ms: Option<i64>,
    pub(crate) recorded_on_behalf_by: Option<AuthorId>,
    pub(crate) provision: Provision,
}

impl fmt::Debug for Consent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consent")
            .field("status", &self.status)
            .field("scope", &self.scope)
            .field("on_behalf", &self.recorded_on_behalf_by.is_some())
            .field("provision", &self.provision)
            .finish_non_exhaustive()
    }
}

/// The fields of a [`Consent`], free to edit; [`ConsentDraft::build`] validates.
///
/// `Debug` hides the ids and the patient's choices, as for [`Consent`].
#[derive(Clone)]
pub struct ConsentDraft {
    /// The resource id (`[A-Za-z0-9\-\.]{1,64}`).
    pub id: String,
    /// The patient's id, as in `Patient/<id>`.
    pub patient_id: String,
    /// The status.
    pub status: ConsentStatus,
    /// The scope.
    pub scope: ConsentScope,
    /// When the consent was given (`Consent.dateTime`), Unix ms UTC.
    pub date_time_ms: Option<i64>,
    /// The member node that recorded it on the patient's behalf; `None` when
    /// the patient's own node signed it.
    pub recorded_on_behalf_by: Option<AuthorId>,
    /// The root provision: its effect is the consent's base decision.
    pub provision: Provision,
}

impl fmt::Debug for ConsentDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsentDraft")
            .field("status", &self.status)
            .field("scope", &self.scope)
            .field("on_behalf", &self.recorded_on_behalf_by.is_some())
            .field("provision", &self.provision)
            .finish_non_exhaustive()
    }
}

impl ConsentDraft {
    /// An active patient-privacy consent with the given root provision.
    pub fn new(id: impl Into<String>, patient_id: impl Into<String>, provision: Provision) -> Self {
        ConsentDraft {
            id: id.into(),
            patient_id: patient_id.into(),
            status: ConsentStatus::Active,
            scope: ConsentScope::PatientPrivacy,
            date_time_ms: None,
            recorded_on_behalf_by: None,
            provision,
        }
    }

    /// Validates the draft by the rules of [`Consent::from_fhir`]: the draft
    /// is written as FHIR and read back, so errors name the FHIR field
    /// (e.g. `provision.provision[0].class[1].code`) and the result is
    /// canonical (an `Other` purpose with a known code becomes that purpose).
    pub fn build(self) -> Result<Consent, ParseConsentError> {
        let draft = Consent {
            id: self.id,
            patient_id: self.patient_id,
            status: self.status,
            scope: self.scope,
            date_time_ms: self.date_time_ms,
            recorded_on_behalf_by: self.recorded_on_behalf_by,
            provision: self.provision,
        };
        Consent::from_fhir(&draft.to_fhir())
    }
}

impl Consent {
    /// A consent granting `grantee` the `purposes` (all purposes if empty)
    /// on the resource types `classes` (all types if empty) during `period`
    /// (`(start_ms, end_ms)`, both inclusive; always if `None`).
    ///
    /// The consent is active and patient-privacy; its root provision is a
    /// permit covering exactly the grant, so it says nothing about any other
    /// request (those fall to other consents or the network default).
    pub fn grant(
        id: &str,
        patient_id: &str,
        grantee: Grantee,
        purposes: Vec<Purpose>,
        classes: Vec<String>,
        period: Option<(u64, u64)>,
    ) -> Result<Consent, ParseConsentError> {
        let period = match period {
            None => Period::ALWAYS,
            Some((start, end)) => {
                let bound = |ms: u64, field: &str| {
                    i64::try_from(ms)
                        .ok()
                        .filter(|ms| time::in_range(*ms))
                        .ok_or_else(|| ParseConsentError::InvalidDateTime {
                            field: field.to_owned(),
                        })
                };
                Period::between(
                    bound(start, "provision.period.start")?,
                    bound(end, "provision.period.end")?,
                )
            }
        };
        let provision = Provision {
            purposes,
            classes,
            period,
            ..Provision::permit().actor(grantee)
        };
        ConsentDraft::new(id, patient_id, provision).build()
    }

    /// The same consent with status `inactive`: revoked, it no longer applies.
    pub fn revoked(&self) -> Consent {
        self.with_status(ConsentStatus::Inactive)
    }

    /// The same consent with another status.
    pub fn with_status(&self, status: ConsentStatus) -> Consent {
        Consent {
            status,
            ..self.clone()
        }
    }

    /// The same consent with `nested` added under its root provision, e.g. a
    /// deny for one resource type inside a research grant.
    pub fn with_exception(&self, nested: Provision) -> Result<Consent, ParseConsentError> {
        let mut draft = self.to_draft();
        draft.provision.provisions.push(nested);
        draft.build()
    }

    /// The consent's fields as an editable draft.
    pub fn to_draft(&self) -> ConsentDraft {
        ConsentDraft {
            id: self.id.clone(),
            patient_id: self.patient_id.clone(),
            status: self.status,
            scope: self.scope,
            date_time_ms: self.date_time_ms,
            recorded_on_behalf_by: self.recorded_on_behalf_by,
            provision: self.provision.clone(),
        }
    }

    /// The resource id: what decisions cite in `relied_on`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The patient's id (`Consent.patient` is `Patient/<id>`).
    pub fn patient_id(&self) -> &str {
        &self.patient_id
    }

    /// The status.
    pub fn status(&self) -> ConsentStatus {
        self.status
    }

    /// The scope.
    pub fn scope(&self) -> ConsentScope {
        self.scope
    }

    /// When the consent was given, Unix ms UTC, if stated.
    pub fn date_time_ms(&self) -> Option<i64> {
        self.date_time_ms
    }

    /// The member node that recorded the consent on the patient's behalf, as
    /// marked in the resource; `None` if marked as signed by the patient.
    pub fn recorded_on_behalf_by(&self) -> Option<&AuthorId> {
        self.recorded_on_behalf_by.as_ref()
    }

    /// The root provision.
    pub fn provision(&self) -> &Provision {
        &self.provision
    }

    /// True if the consent takes part in decisions (rule 1): status `active`
    /// and a scope that governs access.
    pub fn takes_part(&self) -> bool {
        self.status == ConsentStatus::Active && self.scope.governs_access()
    }
}
