//! Grants that expire by themselves: [`Node::tick`].
//!
//! When a node shares a chart into another network
//! ([`Node::share_to_network`]) it notes the next instant the consent
//! decision for that chart can change: a provision's period starting or
//! ending. [`Node::tick`] takes every chart whose instant has come, decides
//! again at `now_ms` and, if nothing of it may go to that network any more,
//! cuts it off as a share would: the record key is rotated and withheld, so
//! whatever is written to the chart in that network from then on is sealed
//! under a key its members never get. It writes nothing new otherwise.
//!
//! Nothing in the library runs by itself (it has no clock or thread): the
//! sync pump ([`crate::sync::sync`]), the CLI, the C API and the bindings
//! call `tick`. And a write into a shared chart whose instant has come
//! decides first ([`Node::write_changes`] calls it), so a change written
//! after a grant's end is never sealed under a key the grantee holds, even
//! if no tick ran in between.
//!
//! ```
//! use careledger::keys::StorageKey;
//! use careledger::node::Node;
//! use careledger::store::Store;
//! let store = Store::open_in_memory(&StorageKey::from_bytes([1; 32])).unwrap();
//! let mut node = Node::create(store, "hospital-a.example").unwrap();
//! // Nothing shared: nothing due.
//! assert_eq!(node.tick(1_700_000_000_000).unwrap().charts_decided, 0);
//! ```

use std::collections::BTreeSet;

use super::consent::{Share, ShareMode};
use super::{ConsentError, NetworkError, NetworkId, Node, ShareReport};
use crate::consent::Purpose;
use crate::store::ConsentDue;

/// What [`Node::tick`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Shared charts whose consent was decided again.
    pub charts_decided: usize,
    /// Of those, charts cut off (key rotated and withheld).
    pub records_cut_off: usize,
    /// Entries written.
    pub entries: usize,
    /// When the next chart is due, if any.
    pub next_due_ms: Option<u64>,
}

impl Node {
    /// Decide again every shared chart whose consent may have changed by
    /// `now_ms` (a period ended), and cut off those nothing of which may go
    /// to the network they were shared into. One transaction; cheap when
    /// nothing is due (one indexed read). See the [module docs](self).
    pub fn tick(&mut self, now_ms: u64) -> Result<TickReport, ConsentError> {
        let due = self.store.consent_due_by(now_ms)?;
        let mut report = if due.is_empty() {
            TickReport::default()
        } else {
            self.atomically(|node| {
                let mut report = TickReport::default();
                for chart in &due {
                    node.decide_again(chart, now_ms, &mut report)?;
                }
                Ok::<_, ConsentError>(report)
            })?
        };
        report.next_due_ms = self
            .store
            .consent_due_by(u64::MAX)?
            .first()
            .map(|d| d.due_ms);
        Ok(report)
    }

    /// Before writing to `record` in `network` at `now_ms`: if its consent
    /// decision is due, take it first.
    pub(crate) fn decide_if_due(
        &mut self,
        network: &NetworkId,
        record: &str,
        now_ms: u64,
    ) -> Result<(), ConsentError> {
        match self.store.consent_due_of(&network.0, record)? {
            Some(due) if due.due_ms <= now_ms => {
                let mut report = TickReport::default();
                self.decide_again(&due, now_ms, &mut report)
            }
            _ => Ok(()),
        }
    }

    fn decide_again(
        &mut self,
        due: &ConsentDue,
        now_ms: u64,
        report: &mut TickReport,
    ) -> Result<(), ConsentError> {
        let to = NetworkId(due.network.clone());
        let from = NetworkId(due.from_network.clone());
        // Taken first: deciding may write to the chart, which asks again.
        self.store.set_consent_due(&to.0, &due.record, None)?;
        let usable = |node: &mut Self, network: &NetworkId| match node.is_member(network) {
            Ok(member) => Ok(member),
            Err(NetworkError::Store(error)) => Err(error),
            Err(_) => Ok(false),
        };
        if !usable(self, &from)?
            || !usable(self, &to)?
            || !self.store.has_record(&from.0, &due.record)?
        {
            return Ok(());
        }
        let requesters = self.share_requesters(&to)?;
        let purpose = Purpose::from_code(&due.purpose);
        let share = Share {
            from: &from,
            to: &to,
            patient: &due.record,
            requesters: &requesters,
            purpose: &purpose,
            // Cutting off looks at every type the chart has: a share limited
            // to some types is cut off only when nothing at all is permitted.
            only: None,
            now_ms,
        };
        let mut shared = ShareReport::default();
        self.share_chart(
            &share,
            ShareMode::CutOffOnly,
            &mut shared,
            &mut BTreeSet::new(),
        )?;
        report.charts_decided += 1;
        report.records_cut_off += shared.records_cut_off;
        report.entries += shared.entries;
        Ok(())
    }
}
