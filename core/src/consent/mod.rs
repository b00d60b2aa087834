//! Patient consent: the FHIR R4 `Consent` model and the one pure evaluator
//! every use of a record asks (DESIGN §6).
//!
//! # Flow
//!
//! 1. **Write.** The patient's phone (or a member institution, on the
//!    patient's behalf) builds a consent with [`Consent::grant`],
//!    [`Consent::with_exception`] or a [`ConsentDraft`], marks who recorded
//!    it with [`Consent::marked_for`], and stores [`Consent::to_fhir`] in the
//!    patient's record as an ordinary `Consent` resource. Revoking is
//!    storing [`Consent::revoked`] (status `inactive`) under the same id.
//! 2. **Read.** Whoever is about to use the record reads the `Consent`
//!    resources of the chart with [`Consent::from_fhir`] (or
//!    [`Consent::from_json`]). Errors name the field, never the value.
//!    When the consent arrived in a ledger entry, [`classify`] its signer
//!    against the patient's nodes and check [`Consent::mark_matches`].
//! 3. **Decide.** [`permits`] takes all of the patient's consents and one
//!    [`Request`] (who, why, which resource type, when, and the home care
//!    network) and returns a [`Decision`]: allowed or not, why, and the
//!    consent ids relied on, for model cards and decision entries.
//!
//! ```
//! use careledger::consent::{permits, Consent, DecisionReason, Grantee, Provision, Purpose, Request};
//! use careledger::node::NetworkId;
//!
//! let study = NetworkId(vec![0x57; 16]);
//! let care = NetworkId(vec![0xCA; 16]);
//! // The patient lets the study use their chart for research, except conditions.
//! let consent = Consent::grant(
//!     "consent-1", "p1", Grantee::Network(study.clone()), vec![Purpose::Research], vec![], None,
//! )
//! .unwrap()
//! .with_exception(Provision::deny().class("Condition"))
//! .unwrap();
//! // It travels as FHIR JSON inside the record.
//! let consents = [Consent::from_json(consent.to_json().as_bytes()).unwrap()];
//!
//! let ask = |grantee: &NetworkId, purpose: Purpose, resource_type: &'static str| {
//!     let grantees = [Grantee::Network(grantee.clone())];
//!     let request = Request {
//!         grantees: &grantees, purpose, resource_type, time_ms: 1_767_225_600_000, home_network: &care,
//!     };
//!     permits(&consents, &request)
//! };
//! let observation = ask(&study, Purpose::Research, "Observation");
//! assert!(observation.allowed);
//! assert_eq!(observation.relied_on, ["consent-1"]);
//! assert!(!ask(&study, Purpose::Research, "Condition").allowed);
//! // Not covered by any consent: the network default.
//! assert_eq!(ask(&care, Purpose::Treat, "Condition").reason, DecisionReason::DefaultTreatment);
//! assert_eq!(ask(&study, Purpose::Treat, "Condition").reason, DecisionReason::DefaultDeny);
//! ```
//!
//! # The rules
//!
//! A consent holds a tree of provisions. The root provision's effect is the
//! consent's *base decision*; nested provisions are exceptions within their
//! parent. [`permits`] applies these rules, and nothing else:
//!
//! 1. **Taking part.** Only consents with status `active` and scope
//!    `patient-privacy` or `research` take part. `inactive` (revoked or
//!    replaced), `entered-in-error`, `rejected`, `draft` and `proposed`
//!    consents never apply, nor do treatment consents and advance directives.
//! 2. **Coverage.** A provision *covers* a request if each of its constraints
//!    matches, an absent (empty) constraint matching everything — actor: any
//!    listed actor is a [`Grantee`] among the request's grantees; purpose:
//!    any listed code equals the request's; class: any listed resource type
//!    equals the request's — *and* its parent covers the request. So a
//!    nested provision never covers more than its parent: nested provisions
//!    never widen. Actors of any other shape ([`Actor::Other`], e.g.
//!    `Organization/x`) never match a careledger requester, so a provision
//!    whose actors are all of that kind covers nothing. The period does not
//!    affect coverage (rule 4).
//! 3. **Effects.** Every provision says `permit` or `deny`. The root's is the
//!    base decision: R4 defines `provision.type` as "not permitted in root
//!    rule, required in all nested rules", the base coming from
//!    `Consent.policyRule`. So the base is `policyRule` v3-ActCode
//!    `OPTIN`/`OPTINR` (permit) or `OPTOUT`/`OPTOUTE` (deny); a root `type`,
//!    which many writers put there anyway, is accepted when it agrees (a
//!    contradiction is an error); with neither, the base is **deny** (what a
//!    consent does not grant, it withholds). [`Consent::to_fhir`] writes the
//!    base as `policyRule` only. A nested provision must state its `type`
//!    (reading one without is an error): it may repeat or reverse its
//!    parent's. The **deciding** provisions of a consent for a request are
//!    the covering provisions none of whose nested provisions covers it —
//!    the most specific ones; only they speak.
//! 4. **Expired means deny.** A deciding provision whose own period, or any
//!    ancestor's, does not contain the request time says *expired*, which
//!    denies: an expired grant does not fall back to its parent or to the
//!    network default. Periods are inclusive at both ends.
//! 5. **Deny overrides permit.** A consent answers *deny* if any deciding
//!    provision denies, else *expired* if any is expired, else *permit*. Over
//!    all consents: any *deny* → [`DecisionReason::Denied`]; else any
//!    *expired* → [`DecisionReason::Expired`]; else any *permit* →
//!    [`DecisionReason::Permitted`]. Input order never changes the outcome;
//!    the reason names the first such consent and `relied_on` lists all of them.
//! 6. **Network default.** If no consent that takes part covers the request
//!    (at its root), the request is allowed only for purpose `TREAT` by a
//!    requester whose grantees include [`Grantee::Network`] of the home care
//!    network ([`DecisionReason::DefaultTreatment`]); everything else is
//!    denied ([`DecisionReason::DefaultDeny`]).
//!
//! Examples. A research grant to study S (root permit, purpose `HRESCH`,
//! actor S) with a nested deny for class `Condition`: S's research use of
//! an Observation is permitted (the root decides), of a Condition denied
//! (the nested deny decides). An opt-out for S (root deny, actor S) with a
//! nested permit for `HRESCH` on `Observation`: S may use Observations for
//! research and nothing else. A nested permit for `CLMATTCH` under a root
//! covering only `HRESCH` covers nothing, so it permits nothing.
//!
//! Because an expired consent still denies (rules 4–5), renewing a grant
//! means revoking the old consent ([`Consent::revoked`]) as well as storing
//! the new one; otherwise the expired one keeps denying what it covered.
//!
//! # FHIR shape
//!
//! ```text
//! { "resourceType": "Consent", "id": "…",
//!   "extension": [ { "url": "urn:careledger:recorded-on-behalf-by",     (only if recorded
//!       "valueIdentifier": { "system": "urn:careledger:node",             on the patient's
//!                            "value": "<64 hex recorder author id>" } } ],  behalf)
//!   "status": "active",
//!   "scope": { "coding": [ { "system": ".../consentscope", "code": "patient-privacy" } ] },
//!   "patient": { "reference": "Patient/<id>" },  "dateTime": "2026-01-15",
//!   "policyRule": { "coding": [ { "system": ".../v3-ActCode", "code": "OPTIN" } ] },
//!   "provision": {
//!     "period": { "start": "2026-01-15", "end": "2027-01-15" },
//!     "actor": [ { "role": …, "reference": { "identifier": {
//!         "system": "urn:careledger:network", "value": "<network id hex>" } } } ],
//!     "purpose": [ { "system": ".../v3-ActReason", "code": "HRESCH" } ],
//!     "class": [ { "system": "http://hl7.org/fhir/resource-types", "code": "Observation" } ],
//!     "provision": [ { "type": "deny", "class": [ … "Condition" ] } ] } }
//! ```
//!
//! Dates: a `start` that is a date (or year, or month) means its first
//! millisecond, an `end` its last, in UTC; times carry their offset. See
//! [`Consent::from_fhir`] for what is rejected.

mod eval;
mod fhir;
mod provision;
mod resource;
mod source;
mod time;

pub use eval::{permits, Decision, DecisionReason, Request};
pub use fhir::{
    ParseConsentError, ACT_CODE_SYSTEM, ACT_REASON_SYSTEM, CONSENT_SCOPE_SYSTEM,
    MAX_PROVISION_DEPTH, ON_BEHALF_EXTENSION, RESOURCE_TYPES_SYSTEM,
};
pub use provision::{
    Actor, Effect, Grantee, OtherActor, Period, Provision, Purpose, NETWORK_SYSTEM, NODE_SYSTEM,
};
pub use resource::{Consent, ConsentDraft, ConsentScope, ConsentStatus};
pub use source::{classify, ConsentSource};

/// `ms` (Unix milliseconds, UTC) as a FHIR `instant`.
pub(crate) fn format_instant(ms: u64) -> String {
    time::format_instant(i64::try_from(ms).unwrap_or(i64::MAX))
}
