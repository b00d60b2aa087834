//! Consent at every use of a record (DESIGN §6): reading a patient's
//! consents out of the chart, recording one, sharing a chart into another
//! network, exporting to a grantee.
//!
//! # Where consent lives
//!
//! A patient's `Consent` resources are ordinary resources of their chart in
//! the care network. Who recorded one is read from the record itself: the
//! author of the Automerge changes that wrote it, which the ledger binds to
//! the entry signer. The patient's own nodes (their phone) are listed in the
//! `Patient` resource as identifiers with system
//! [`NODE_SYSTEM`](crate::consent::NODE_SYSTEM) ([`Node::link_patient_node`]);
//! a consent written by any other node is *recorded on the patient's behalf*
//! and [`Node::record_consent`] marks it so.
//!
//! # Enforcement
//!
//! - **Sharing** ([`Node::share_to_network`]): for each patient of the source
//!   network, each resource type is shared into the target network only if
//!   [`permits`] allows the purpose for *every* other member of the target
//!   (each acting as `[Network(target), Node(member)]`). The consents that
//!   permitted it travel along, so the target's members can check them too,
//!   and so does every later version of a consent already shared (a
//!   revocation reaches the study).
//! - **Cryptographic cut-off.** When nothing of a patient may go to the
//!   target any more (revoked, expired, denied), the sharer rotates the
//!   record's key in the target network and keeps the new key to itself,
//!   announcing it in a key-withheld entry. Everything this node writes to
//!   that record in the target from then on — through `share`, an import,
//!   an edit, anything — is sealed under a key no other member holds: the
//!   grantees cannot read it, whatever the software on either side does.
//!   What they already read stays read: revocation is never retroactive.
//!   When consent permits again, a fresh key is granted.
//! - **Datasets** and **export to a grantee** filter resources the same way.
//!
//! Who wrote a consent is read per network: in a network a chart was shared
//! into, the copy is written by the sharer, so there it shows as recorded
//! by the sharer (and an unmarked copy of a phone-signed consent has
//! `mark_matches == false`). The patient's own signature is visible in the
//! network the patient's node wrote it in. Access decisions do not depend
//! on who wrote a consent.
//!
//! A `Consent` resource that cannot be read (malformed provisions, unknown
//! dates) makes every use of the chart that needs consent fail closed: such
//! charts are neither shared nor used in datasets, and exports to grantees
//! return nothing but the error count.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{ExportError, ExportFormat, ImportError, NetworkError, NetworkId, Node};
use crate::body::{KeyGrantBody, KeyWithheldBody, WithholdReason};
use crate::consent::{
    classify, permits, Consent, ConsentSource, ConsentStatus, Decision, DecisionReason, Grantee,
    Purpose, Request, NODE_SYSTEM,
};
use crate::entry::{AuthorId, EntryKind};
use crate::record::doc::RecordDoc;
use crate::record::fhir::{self, Resource};
use crate::store::StoreError;

/// A consent read from a chart, with who recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientConsent {
    /// The consent.
    pub consent: Consent,
    /// Who wrote it: the patient's node or an institution on their behalf.
    pub source: ConsentSource,
    /// Whether its recorded-on-behalf mark agrees with who wrote it.
    pub mark_matches: bool,
}

/// A chart's consents: the readable ones and how many were not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChartConsents {
    /// Readable consents, by id.
    pub consents: Vec<PatientConsent>,
    /// Ids of `Consent` resources that could not be read (fail closed).
    pub unreadable: Vec<String>,
}

impl ChartConsents {
    fn list(&self) -> Vec<Consent> {
        self.consents.iter().map(|c| c.consent.clone()).collect()
    }
}

/// A consent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// No record for that patient in this network.
    #[error("no record for that patient in this network")]
    UnknownPatient,
    /// The patient's chart was erased.
    #[error("the patient's chart was erased")]
    Erased,
    /// Source and target network are the same.
    #[error("source and target network are the same")]
    SameNetwork,
    /// The chart could not be read or written.
    #[error("record: {0}")]
    Record(String),
    /// The consent could not be stored (e.g. its FHIR was refused; the
    /// import error lists every problem).
    #[error("consent not stored: {0}")]
    Import(ImportError),
    /// The network is not usable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ExportError> for ConsentError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::UnknownPatient => ConsentError::UnknownPatient,
            ExportError::Erased => ConsentError::Erased,
            ExportError::Record(text) => ConsentError::Record(text),
            ExportError::Network(error) => ConsentError::Network(error),
            ExportError::Store(error) => ConsentError::Store(error),
        }
    }
}

/// What [`Node::share_to_network`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShareReport {
    /// Patients of the source network looked at.
    pub patients: usize,
    /// Patients with at least one resource shared (new or unchanged).
    pub patients_shared: usize,
    /// Resources consent allowed (consents themselves not counted).
    pub resources_permitted: usize,
    /// Resources consent did not allow.
    pub resources_withheld: usize,
    /// Records whose key was rotated and withheld in this run.
    pub records_cut_off: usize,
    /// Records whose key was granted again in this run (consent permits again).
    pub records_restored: usize,
    /// Charts skipped because a `Consent` in them is unreadable.
    pub unreadable_charts: usize,
    /// Entries written to the target network.
    pub entries: usize,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
}

/// A chart filtered for a grantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GranteeExport {
    /// The permitted resources, as a Bundle or NDJSON.
    pub text: String,
    /// Resources included.
    pub included: usize,
    /// Resources left out.
    pub withheld: usize,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
}

/// The resource types a use needs, decided one by one.
pub(crate) struct TypeDecisions {
    /// Allowed resource types.
    pub allowed: BTreeSet<String>,
    /// Consent ids relied on by the allowed types.
    pub relied_on: BTreeSet<String>,
    /// The first refusal, for reporting (reason of a denied type).
    pub refusal: Option<DecisionReason>,
}

/// Decide each resource type of `resources` for every one of `requesters`
/// (each a set of grantees); a type is allowed only if all are allowed.
pub(crate) fn decide_types(
    consents: &[Consent],
    types: &BTreeSet<String>,
    requesters: &[Vec<Grantee>],
    purpose: &Purpose,
    time_ms: u64,
    home: &NetworkId,
) -> TypeDecisions {
    let mut out = TypeDecisions {
        allowed: BTreeSet::new(),
        relied_on: BTreeSet::new(),
        refusal: None,
    };
    for resource_type in types {
        let mut ok = true;
        let mut relied = Vec::new();
        for grantees in requesters {
            let request = Request {
                grantees,
                purpose: purpose.clone(),
                resource_type,
                time_ms,
                home_network: home,
            };
            let Decision {
                allowed,
                reason,
                relied_on,
            } = permits(consents, &request);
            if !allowed {
                ok = false;
                out.refusal.get_or_insert(reason);
                break;
            }
            relied.extend(relied_on);
        }
        if ok {
            out.allowed.insert(resource_type.clone());
            out.relied_on.extend(relied);
        }
    }
    out
}

/// Every resource type in a chart other than `Consent`.
fn data_types(resources: &[Resource]) -> BTreeSet<String> {
    resources
        .iter()
        .map(|r| r.resource_type().to_owned())
        .filter(|t| t != "Consent")
        .collect()
}

/// The patient's own nodes, listed in the Patient resource.
pub(crate) fn patient_nodes(resources: &[Resource]) -> Vec<AuthorId> {
    let mut nodes = Vec::new();
    for resource in resources.iter().filter(|r| r.resource_type() == "Patient") {
        let Some(Ok(Value::Array(identifiers))) = resource
            .fields()
            .get("identifier")
            .map(|text| serde_json::from_str::<Value>(text))
        else {
            continue;
        };
        for identifier in &identifiers {
            if identifier.get("system").and_then(Value::as_str) == Some(NODE_SYSTEM) {
                if let Some(author) = identifier
                    .get("value")
                    .and_then(Value::as_str)
                    .and_then(AuthorId::from_hex)
                {
                    nodes.push(author);
                }
            }
        }
    }
    nodes
}

/// Read the consents of a chart (`resources` read from `doc`).
pub(crate) fn chart_consents(doc: &RecordDoc, resources: &[Resource]) -> ChartConsents {
    let nodes = patient_nodes(resources);
    let mut out = ChartConsents::default();
    for resource in resources.iter().filter(|r| r.resource_type() == "Consent") {
        let consent = match Consent::from_fhir(&resource.to_value()) {
            Ok(consent) => consent,
            Err(_) => {
                out.unreadable.push(resource.id().to_owned());
                continue;
            }
        };
        let authors: Vec<AuthorId> = doc
            .resource_authors("Consent", resource.id())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| AuthorId::from_slice(a))
            .collect();
        // Written by the patient's nodes only, or else by the first other writer.
        let source = match authors.iter().find(|a| !nodes.contains(a)) {
            Some(other) => classify(other, &nodes),
            None => match authors.first() {
                Some(author) => classify(author, &nodes),
                None => continue,
            },
        };
        out.consents.push(PatientConsent {
            mark_matches: consent.mark_matches(&source),
            consent,
            source,
        });
    }
    out
}

impl Node {
    /// The consents in a patient's chart, with who recorded each.
    pub fn consents(
        &mut self,
        network: &NetworkId,
        patient: &str,
    ) -> Result<ChartConsents, ConsentError> {
        let doc = self.existing_doc(network, patient)?;
        let resources = doc
            .resources()
            .map_err(|e| ConsentError::Record(e.to_string()))?;
        Ok(chart_consents(doc, &resources))
    }

    /// List `node` as one of the patient's own nodes (their phone) in the
    /// chart's Patient resource, so consents it signs count as the patient's.
    pub fn link_patient_node(
        &mut self,
        network: &NetworkId,
        patient: &str,
        node: &AuthorId,
        now_ms: u64,
    ) -> Result<bool, ConsentError> {
        let doc = self.existing_doc(network, patient)?;
        let Some(resource) = doc
            .resource("Patient", patient)
            .map_err(|e| ConsentError::Record(e.to_string()))?
        else {
            return Err(ConsentError::Record(
                "the chart has no Patient resource with the patient's id".into(),
            ));
        };
        let mut identifiers = match resource.fields().get("identifier") {
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(items)) => items,
                _ => {
                    return Err(ConsentError::Record(
                        "Patient.identifier is not a list".into(),
                    ))
                }
            },
            None => Vec::new(),
        };
        let value = node.to_hex();
        if identifiers.iter().any(|i| {
            i.get("system").and_then(Value::as_str) == Some(NODE_SYSTEM)
                && i.get("value").and_then(Value::as_str) == Some(value.as_str())
        }) {
            return Ok(false);
        }
        identifiers.push(serde_json::json!({ "system": NODE_SYSTEM, "value": value }));
        let json = Value::Array(identifiers).to_string();
        self.edit_member(
            network,
            patient,
            "Patient",
            patient,
            "identifier",
            Some(&json),
            now_ms,
        )
        .map_err(|e| ConsentError::Record(e.to_string()))
    }

    /// Write a consent (new, changed or revoked) into the patient's chart.
    /// If this node is not one of the patient's own nodes, the consent is
    /// marked as recorded on the patient's behalf by this node. Returns the
    /// consent as stored.
    pub fn record_consent(
        &mut self,
        network: &NetworkId,
        consent: &Consent,
        now_ms: u64,
    ) -> Result<Consent, ConsentError> {
        let patient = consent.patient_id().to_owned();
        let me = self.identity.author_id();
        let nodes = {
            let doc = self.existing_doc(network, &patient)?;
            let resources = doc
                .resources()
                .map_err(|e| ConsentError::Record(e.to_string()))?;
            patient_nodes(&resources)
        };
        let stored = consent.marked_for(&classify(&me, &nodes));
        let json = stored.to_json();
        self.import_fhir(network, "consent.json", json.as_bytes(), now_ms)
            .map_err(|error| match error {
                ImportError::Network(error) => ConsentError::Network(error),
                ImportError::Store(error) => ConsentError::Store(error),
                other => ConsentError::Import(other),
            })?;
        Ok(stored)
    }

    /// A patient's chart with only what consent permits `grantees` to use
    /// for `purpose` at `now_ms` (the network default applies to charts
    /// without a covering consent). Consents themselves are not included.
    #[allow(clippy::too_many_arguments)]
    pub fn export_for_grantee(
        &mut self,
        network: &NetworkId,
        patient: &str,
        grantees: &[Grantee],
        purpose: Purpose,
        now_ms: u64,
        format: ExportFormat,
    ) -> Result<GranteeExport, ConsentError> {
        let doc = self.existing_doc(network, patient)?;
        let resources = doc
            .resources()
            .map_err(|e| ConsentError::Record(e.to_string()))?;
        let consents = chart_consents(doc, &resources);
        let decided = if consents.unreadable.is_empty() {
            decide_types(
                &consents.list(),
                &data_types(&resources),
                &[grantees.to_vec()],
                &purpose,
                now_ms,
                network,
            )
            .allowed
        } else {
            BTreeSet::new()
        };
        let (kept, left): (Vec<Resource>, Vec<Resource>) = resources
            .into_iter()
            .filter(|r| r.resource_type() != "Consent")
            .partition(|r| decided.contains(r.resource_type()));
        let relied_on = if kept.is_empty() {
            Vec::new()
        } else {
            decide_types(
                &consents.list(),
                &decided,
                &[grantees.to_vec()],
                &purpose,
                now_ms,
                network,
            )
            .relied_on
            .into_iter()
            .collect()
        };
        let text = match format {
            ExportFormat::Bundle => fhir::export_bundle(&kept),
            ExportFormat::Ndjson => fhir::export_ndjson(&kept),
        };
        Ok(GranteeExport {
            text,
            included: kept.len(),
            withheld: left.len(),
            consent_ids: relied_on,
        })
    }

    /// Share the charts of network `from` into network `to`, each resource
    /// only if consent permits `purpose` for every other member of `to`, at
    /// `now_ms`; cut off (rotate and withhold the record key in `to`) the
    /// charts nothing of which may go there any more. Idempotent: running it
    /// again with nothing changed writes nothing. See the [module docs](self).
    pub fn share_to_network(
        &mut self,
        from: &NetworkId,
        to: &NetworkId,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<ShareReport, ConsentError> {
        self.share_filtered(from, to, purpose, None, now_ms)
    }

    /// [`Node::share_to_network`] limited to the resource types `types`
    /// (e.g. the `Claim`, `Coverage` and `Condition` a claims network's
    /// rules read): other types are never shared, whatever consent allows.
    pub fn share_types_to_network(
        &mut self,
        from: &NetworkId,
        to: &NetworkId,
        purpose: Purpose,
        types: &[String],
        now_ms: u64,
    ) -> Result<ShareReport, ConsentError> {
        let only: BTreeSet<String> = types.iter().cloned().collect();
        self.share_filtered(from, to, purpose, Some(&only), now_ms)
    }

    fn share_filtered(
        &mut self,
        from: &NetworkId,
        to: &NetworkId,
        purpose: Purpose,
        only: Option<&BTreeSet<String>>,
        now_ms: u64,
    ) -> Result<ShareReport, ConsentError> {
        if from == to {
            return Err(ConsentError::SameNetwork);
        }
        if !self.is_member(from)? || !self.is_member(to)? {
            return Err(NetworkError::NotAMember.into());
        }
        let requesters = self.share_requesters(to)?;
        let patients = self.store.records(&from.0)?;
        self.atomically(|node| {
            node.store.put_share(&from.0, &to.0, purpose.code())?;
            let mut report = ShareReport {
                patients: patients.len(),
                ..ShareReport::default()
            };
            let mut relied_on = BTreeSet::new();
            for patient in &patients {
                let share = Share {
                    from,
                    to,
                    patient,
                    requesters: &requesters,
                    purpose: &purpose,
                    only,
                    now_ms,
                };
                node.share_chart(&share, ShareMode::Full, &mut report, &mut relied_on)?;
            }
            report.consent_ids = relied_on.into_iter().collect();
            Ok(report)
        })
    }

    /// Who in `to` must be permitted: every other member, each acting as
    /// `[Network(to), Node(member)]` (the network alone if there is none).
    pub(crate) fn share_requesters(
        &mut self,
        to: &NetworkId,
    ) -> Result<Vec<Vec<Grantee>>, ConsentError> {
        let me = self.identity.author_id();
        let mut requesters: Vec<Vec<Grantee>> = self
            .members(to)?
            .into_iter()
            .filter(|m| m.author != me)
            .map(|m| vec![Grantee::Network(to.clone()), Grantee::Node(m.author)])
            .collect();
        if requesters.is_empty() {
            requesters.push(vec![Grantee::Network(to.clone())]);
        }
        Ok(requesters)
    }

    /// Decide one chart for one share at `now_ms`: share what is permitted
    /// (`Full`), or only cut it off if nothing is any more (`CutOffOnly`,
    /// what [`Node::tick`] does when a consent's period ends). Schedules the
    /// next instant the decision may change.
    pub(crate) fn share_chart(
        &mut self,
        share: &Share<'_>,
        mode: ShareMode,
        report: &mut ShareReport,
        relied_on: &mut BTreeSet<String>,
    ) -> Result<(), ConsentError> {
        let Share {
            from,
            to,
            patient,
            requesters,
            purpose,
            only,
            now_ms,
        } = *share;
        let me = self.identity.author_id();
        let (resources, consents) = {
            let doc = self.doc_mut(from, patient, me)?;
            let resources = doc
                .resources()
                .map_err(|e| ConsentError::Record(e.to_string()))?;
            let consents = chart_consents(doc, &resources);
            (resources, consents)
        };
        let mut types = data_types(&resources);
        if let Some(only) = only {
            types.retain(|t| only.contains(t));
        }
        let decided = if consents.unreadable.is_empty() {
            decide_types(&consents.list(), &types, requesters, purpose, now_ms, from)
        } else {
            report.unreadable_charts += 1;
            TypeDecisions {
                allowed: BTreeSet::new(),
                relied_on: BTreeSet::new(),
                refusal: None,
            }
        };
        let data_count = resources
            .iter()
            .filter(|r| r.resource_type() != "Consent")
            .filter(|r| only.is_none_or(|only| only.contains(r.resource_type())))
            .count();
        let permitted: Vec<&Resource> = resources
            .iter()
            .filter(|r| decided.allowed.contains(r.resource_type()))
            .collect();
        report.resources_permitted += permitted.len();
        report.resources_withheld += data_count - permitted.len();

        let shared_before = self.store.has_record(&to.0, patient)?;
        // Consents that permitted something, and new versions of
        // consents the target already holds (revocations travel).
        let mut already: BTreeSet<String> = BTreeSet::new();
        if shared_before {
            let doc = self.doc_mut(to, patient, me)?;
            for r in doc
                .resources()
                .map_err(|e| ConsentError::Record(e.to_string()))?
            {
                if r.resource_type() == "Consent" {
                    already.insert(r.id().to_owned());
                }
            }
        }
        let consent_resources: Vec<&Resource> = resources
            .iter()
            .filter(|r| {
                r.resource_type() == "Consent"
                    && (decided.relied_on.contains(r.id()) || already.contains(r.id()))
            })
            .collect();
        let next_change = next_consent_change(&consents.list(), now_ms);
        let schedule = |node: &mut Self, keep: bool| -> Result<(), ConsentError> {
            let due = next_change.filter(|_| keep);
            node.store.set_consent_due(
                &to.0,
                patient,
                due.map(|due| (from.0.as_slice(), purpose.code(), due)),
            )?;
            Ok(())
        };

        if permitted.is_empty() {
            if shared_before && self.store.withholding_key(&to.0, patient)?.is_none() {
                // Let the target see the revocation, then cut it off.
                // Nothing is written while cut off, so a later
                // restore builds only on what the target could read.
                report.entries += self.write_shared(to, patient, &consent_resources, now_ms)?;
                let (reason, consent) =
                    withhold_reason(decided.refusal.as_ref(), &consents, |consent| {
                        !decide_types(
                            std::slice::from_ref(consent),
                            &types,
                            requesters,
                            purpose,
                            now_ms,
                            from,
                        )
                        .allowed
                        .is_empty()
                    });
                self.withhold_record(to, patient, reason, &consent, now_ms)?;
                report.records_cut_off += 1;
                report.entries += 1;
            }
            // Cut off (or never shared): a later consent needs a share.
            return schedule(self, false);
        }
        if mode == ShareMode::CutOffOnly {
            return schedule(self, shared_before);
        }
        if self.store.withholding_key(&to.0, patient)?.is_some() {
            self.restore_record(to, patient, now_ms)?;
            report.records_restored += 1;
            report.entries += 1;
        }
        let mut batch = permitted;
        batch.extend(consent_resources);
        report.entries += self.write_shared(to, patient, &batch, now_ms)?;
        report.patients_shared += 1;
        relied_on.extend(decided.relied_on);
        schedule(self, true)
    }

    /// Upsert resources into a chart of `network`; returns entries written.
    fn write_shared(
        &mut self,
        network: &NetworkId,
        patient: &str,
        resources: &[&Resource],
        now_ms: u64,
    ) -> Result<usize, ConsentError> {
        if resources.is_empty() {
            return Ok(0);
        }
        let owned: Vec<Resource> = resources.iter().map(|r| (*r).clone()).collect();
        let me = self.identity.author_id();
        let change = self
            .doc_mut(network, patient, me)?
            .upsert(&owned, now_ms as i64)
            .map_err(|e| ConsentError::Record(e.to_string()))?;
        match change {
            Some(change) => {
                Ok(self.write_changes(network, vec![(patient.to_owned(), change)], now_ms)?)
            }
            None => Ok(0),
        }
    }

    /// Rotate a record's key in `network` and keep the new one to this node.
    fn withhold_record(
        &mut self,
        network: &NetworkId,
        record: &str,
        reason: WithholdReason,
        consent: &str,
        now_ms: u64,
    ) -> Result<(), ConsentError> {
        let grant = self.fresh_record_key(record)?;
        self.store.put_record_key(&network.0, &grant)?;
        self.store
            .put_withheld_key(&network.0, record, &grant.key_id)?;
        self.store
            .set_withholding(&network.0, record, Some(&grant.key_id))?;
        let body = KeyWithheldBody {
            record: record.to_owned(),
            key_id: grant.key_id,
            reason,
            consent: truncate_bytes(consent, 255).to_owned(),
        };
        self.append_entry(network, EntryKind::KeyWithheld, &body.encode(), now_ms)?;
        Ok(())
    }

    /// Consent permits again: a fresh record key, granted to the network.
    fn restore_record(
        &mut self,
        network: &NetworkId,
        record: &str,
        now_ms: u64,
    ) -> Result<(), ConsentError> {
        let grant = self.fresh_record_key(record)?;
        self.store.put_record_key(&network.0, &grant)?;
        self.store.set_withholding(&network.0, record, None)?;
        let body = KeyGrantBody {
            epochs: Vec::new(),
            members: Vec::new(),
            record_keys: vec![grant],
        };
        self.append_entry(network, EntryKind::KeyGrant, &body.encode(), now_ms)?;
        Ok(())
    }

    /// Whether this node currently withholds a record's key from a network.
    pub fn is_withholding(&self, network: &NetworkId, record: &str) -> Result<bool, StoreError> {
        Ok(self.store.withholding_key(&network.0, record)?.is_some())
    }
}

/// One chart of one share: from where, into where, for what, when.
#[derive(Clone, Copy)]
pub(crate) struct Share<'a> {
    pub from: &'a NetworkId,
    pub to: &'a NetworkId,
    pub patient: &'a str,
    pub requesters: &'a [Vec<Grantee>],
    pub purpose: &'a Purpose,
    /// Only these resource types travel (a claims network's), if given.
    pub only: Option<&'a BTreeSet<String>>,
    pub now_ms: u64,
}

/// What deciding a shared chart again may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShareMode {
    /// Share what consent permits, cut off what it no longer does.
    Full,
    /// Only cut off (a consent's period ended): nothing new is shared.
    CutOffOnly,
}

/// The first instant after `now_ms` at which a decision over `consents`
/// can change: a provision's period starts, or the instant after it ends
/// (periods are inclusive).
pub(crate) fn next_consent_change(consents: &[Consent], now_ms: u64) -> Option<u64> {
    fn walk(provision: &crate::consent::Provision, now: i128, best: &mut Option<i128>) {
        let bounds = [
            provision.period.start_ms.map(i128::from),
            provision.period.end_ms.map(|end| i128::from(end) + 1),
        ];
        for bound in bounds.into_iter().flatten() {
            if bound > now && best.is_none_or(|b| bound < b) {
                *best = Some(bound);
            }
        }
        for nested in &provision.provisions {
            walk(nested, now, best);
        }
    }
    let mut best = None;
    for consent in consents {
        walk(consent.provision(), i128::from(now_ms), &mut best);
    }
    best.and_then(|b| u64::try_from(b).ok())
}

/// Why a chart is cut off: the deciding consent; else a revoked consent
/// that would still permit the use were it active (`would_permit`); else
/// no consent.
fn withhold_reason(
    refusal: Option<&DecisionReason>,
    chart: &ChartConsents,
    would_permit: impl Fn(&Consent) -> bool,
) -> (WithholdReason, String) {
    match refusal {
        Some(DecisionReason::Denied { consent_id }) => (WithholdReason::Denied, consent_id.clone()),
        Some(DecisionReason::Expired { consent_id }) => {
            (WithholdReason::Expired, consent_id.clone())
        }
        _ => match chart.consents.iter().find(|c| {
            c.consent.status() == ConsentStatus::Inactive
                && would_permit(&c.consent.with_status(ConsentStatus::Active))
        }) {
            Some(revoked) => (WithholdReason::Revoked, revoked.consent.id().to_owned()),
            None => (WithholdReason::NoConsent, String::new()),
        },
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn truncate_bytes(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
