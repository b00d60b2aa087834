//! The patient's rights: erasure (crypto-shredding), grants that expire by
//! themselves (`Node.tick`), and the store audit.

use careledger::body::EraseScope;
use careledger::node as core;

use crate::error::ApiError;
use crate::network::Network;
use crate::node::{now_ms, Node};

/// One resource of a chart, by type and id.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ResourceRef {
    /// The FHIR resource type (`Observation`, …).
    pub resource_type: String,
    /// Its id.
    pub id: String,
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EraseReport {
    /// The networks (hex ids) the chart was erased in: this one, then the
    /// networks this node had shared it into.
    pub network_ids: Vec<String>,
    /// Record keys shredded here.
    pub keys_shredded: u64,
    /// Resources written again (erasing some resources only).
    pub resources_kept: u64,
    /// Ledger entries written.
    pub entries: u64,
    /// Whether this node wrote as one of the patient's own nodes (otherwise
    /// the erasure is marked as recorded on the patient's behalf).
    pub by_patient: bool,
}

impl From<core::EraseReport> for EraseReport {
    fn from(report: core::EraseReport) -> Self {
        EraseReport {
            network_ids: report.networks.iter().map(|n| n.to_hex()).collect(),
            keys_shredded: report.keys_shredded as u64,
            resources_kept: report.resources_kept as u64,
            entries: report.entries as u64,
            by_patient: report.by_patient,
        }
    }
}

/// A chart erased in a network.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ErasedChart {
    /// The patient id.
    pub patient_id: String,
    /// The erase entry (hex).
    pub entry_id: String,
    /// Who wrote it (hex author id).
    pub author_id: String,
    /// When, as its author claimed (ms since the Unix epoch).
    pub time_ms: u64,
    /// The whole chart, or only some of its resources.
    pub whole_chart: bool,
}

/// What `Node.tick` did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TickReport {
    /// Shared charts whose consent was decided again.
    pub charts_decided: u64,
    /// Of those, charts cut off (key rotated and withheld).
    pub records_cut_off: u64,
    /// Ledger entries written.
    pub entries: u64,
    /// When the next decision is due (ms), if any: call `tick` again by then.
    pub next_due_ms: Option<u64>,
}

/// What a full audit of the store file found.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StoreAudit {
    /// Tables checked.
    pub tables: u64,
    /// Rows whose MAC was checked.
    pub rows: u64,
    /// What does not match (names tables, never values); empty when intact.
    pub problems: Vec<String>,
    /// No problems.
    pub clean: bool,
}

#[uniffi::export]
impl Network {
    /// Erase a patient's whole chart by crypto-shredding: an erase entry, and
    /// every key of the chart and its local copy deleted here (every member
    /// does the same when it syncs; the chart is erased too in the networks
    /// this node shared it into). The ciphertext stays in the ledger,
    /// unreadable. What another node already decrypted or exported cannot
    /// be taken back.
    ///
    /// Errors: `UnknownPatient`, `ChartErased`, `NotAMember`, `BehindOwnChain`.
    pub fn erase_chart(&self, patient_id: String) -> Result<EraseReport, ApiError> {
        self.erase(&patient_id, EraseScope::Chart)
    }

    /// Erase some resources of a chart: the chart is shredded as by
    /// `erase_chart`, then the rest of it is written again under a fresh key.
    ///
    /// Errors: as `erase_chart`, and `UnknownResource`.
    pub fn erase_resources(
        &self,
        patient_id: String,
        resources: Vec<ResourceRef>,
    ) -> Result<EraseReport, ApiError> {
        let list = resources
            .into_iter()
            .map(|r| (r.resource_type, r.id))
            .collect();
        self.erase(&patient_id, EraseScope::Resources(list))
    }

    /// The charts erased in this network.
    pub fn erased_charts(&self) -> Result<Vec<ErasedChart>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .erased_charts(&self.id)?
                .into_iter()
                .map(|chart| ErasedChart {
                    patient_id: chart.patient,
                    entry_id: chart.entry.to_hex(),
                    author_id: chart.author.to_hex(),
                    time_ms: chart.time_ms,
                    whole_chart: chart.whole_chart,
                })
                .collect())
        })
    }
}

impl Network {
    fn erase(&self, patient_id: &str, scope: EraseScope) -> Result<EraseReport, ApiError> {
        self.shared
            .with(|node| Ok(node.erase(&self.id, patient_id, scope, now_ms())?.into()))
    }
}

#[uniffi::export]
impl Node {
    /// Take the consent decisions that are due: every chart this node shared
    /// into another network whose consent period ended since is cut off
    /// there (its key rotated and withheld). Call it from a timer or when
    /// the app wakes; `sync_local_relay` calls it too. `now_ms` defaults to
    /// the system clock.
    pub fn tick(&self, now_ms: Option<u64>) -> Result<TickReport, ApiError> {
        let now = now_ms.unwrap_or_else(crate::node::now_ms);
        self.shared.with(|node| {
            let report = node.tick(now)?;
            Ok(TickReport {
                charts_decided: report.charts_decided as u64,
                records_cut_off: report.records_cut_off as u64,
                entries: report.entries as u64,
                next_due_ms: report.next_due_ms,
            })
        })
    }

    /// Audit the whole store file (reads all of it; opening and every read
    /// check only what they touch): integrity, every row's MAC, every
    /// table's digest, the schema.
    pub fn verify_store(&self) -> Result<StoreAudit, ApiError> {
        self.shared.with(|node| {
            let report = node.store().verify()?;
            Ok(StoreAudit {
                tables: report.tables as u64,
                rows: report.rows,
                clean: report.is_clean(),
                problems: report.problems,
            })
        })
    }
}
