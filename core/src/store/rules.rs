//! Store queries the rules engine needs: entries by kind, by id, and those
//! appended since a point in local order (what one receive batch added).
//! Every row read is checked like any other (its MAC, and its bytes against
//! their content id).

use rusqlite::params;

use super::tables::ENTRIES;
use super::{Store, StoreError};
use crate::entry::{EntryId, EntryKind};

impl Store {
    /// The highest local append position of a network's entries (0 if none).
    pub(crate) fn last_local_order(&self, network: &[u8]) -> Result<i64, StoreError> {
        let last = self.select_one(
            &ENTRIES,
            "WHERE network = ?1 ORDER BY local_order DESC LIMIT 1",
            [network],
            |r| r.get::<i64>("local_order"),
        )?;
        Ok(last.unwrap_or(0))
    }

    /// Entries of the given kinds, in local order.
    pub(crate) fn entries_of_kinds(
        &self,
        network: &[u8],
        kinds: &[EntryKind],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.entries_since_of_kinds(network, i64::MIN, kinds)
    }

    /// Entries of the given kinds stored after local order `after`, in
    /// local order (only those rows are read and opened).
    pub(crate) fn entries_since_of_kinds(
        &self,
        network: &[u8],
        after: i64,
        kinds: &[EntryKind],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let low = kinds.iter().map(|k| *k as u8).min().unwrap_or(0);
        let high = kinds.iter().map(|k| *k as u8).max().unwrap_or(0);
        let rows = self.select_bytes(
            &ENTRIES,
            "WHERE network = ?1 AND kind >= ?2 AND kind <= ?3 AND local_order > ?4 \
             ORDER BY local_order",
            params![network, low, high, after],
            |r| Ok((r.get::<i64>("kind")?, r.get::<Vec<u8>>("bytes")?)),
        )?;
        Ok(rows
            .into_iter()
            .filter(|(kind, _)| kinds.iter().any(|k| *k as i64 == *kind))
            .map(|(_, bytes)| bytes)
            .collect())
    }

    /// One entry by id.
    pub(crate) fn entry_by_id(
        &self,
        network: &[u8],
        id: &EntryId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.select_bytes(
            &ENTRIES,
            "WHERE network = ?1 AND id = ?2",
            params![network, id.0.as_slice()],
            Self::entry_bytes,
        )?;
        Ok(rows.into_iter().next())
    }
}
