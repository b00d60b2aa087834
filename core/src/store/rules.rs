//! Store queries the rules engine needs: entries by kind, by id, and those
//! appended since a point in local order (what one receive batch added).

use rusqlite::OptionalExtension;

use super::{Store, StoreError};
use crate::entry::{EntryId, EntryKind};

impl Store {
    /// The highest local append position of a network's entries (0 if none).
    pub(crate) fn last_local_order(&self, network: &[u8]) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(local_order), 0) FROM entries WHERE network = ?1")?
            .query_row([network], |r| r.get(0))?)
    }

    /// Entries appended after local position `after`, in order.
    pub(crate) fn entries_since(
        &self,
        network: &[u8],
        after: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM entries WHERE network = ?1 AND local_order > ?2 ORDER BY local_order",
        )?;
        let rows = stmt.query_map(rusqlite::params![network, after], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Entries of the given kinds, in local order.
    pub(crate) fn entries_of_kinds(
        &self,
        network: &[u8],
        kinds: &[EntryKind],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes, kind FROM entries WHERE network = ?1 AND kind >= ?2 AND kind <= ?3
             ORDER BY local_order",
        )?;
        let low = kinds.iter().map(|k| *k as u8).min().unwrap_or(0);
        let high = kinds.iter().map(|k| *k as u8).max().unwrap_or(0);
        let rows = stmt.query_map(rusqlite::params![network, low, high], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (bytes, kind) = row?;
            if kinds.iter().any(|k| *k as i64 == kind) {
                out.push(bytes);
            }
        }
        Ok(out)
    }

    /// One entry by id.
    pub(crate) fn entry_by_id(
        &self,
        network: &[u8],
        id: &EntryId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT bytes FROM entries WHERE network = ?1 AND id = ?2")?
            .query_row(rusqlite::params![network, id.0.as_slice()], |r| r.get(0))
            .optional()?)
    }
}
