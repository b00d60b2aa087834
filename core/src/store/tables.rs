//! The store's own tables and the one way their rows are read and written.
//!
//! Every row carries a `mac` column: HMAC-SHA256 under a key derived from
//! the storage key over the table name and the row's data columns, in the
//! order listed here (see [`super::seal`]). Writes compute it in Rust and
//! store it with the row; reads select every data column and the MAC and
//! check it before a value is used, so an altered, forged or swapped row
//! becomes [`StoreError::Tampered`] at the read that would have used it.
//! Where a row's position matters (ledger order, the newest record key) it
//! is an explicit `INTEGER PRIMARY KEY` column, so the MAC covers it.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Params, Row, ToSql};

use super::{seal, Store, StoreError};

/// One of the store's own tables: its name and data columns (MAC order).
pub(super) struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    /// A column of content-addressed bytes, outside the MAC: the MAC covers
    /// its SHA-256 id column, and a read that takes the bytes checks them
    /// against it (so reads that do not need the bytes do not read them).
    pub hashed: Option<Hashed>,
}

/// `bytes` hashes (SHA-256) to `id`.
pub(super) struct Hashed {
    pub bytes: &'static str,
    pub id: &'static str,
}

macro_rules! tables {
    ($($ident:ident = $name:literal [$($column:literal),+ $(,)?] $(hashed($bytes:literal by $id:literal))?;)+) => {
        $(pub(super) const $ident: Table = Table {
            name: $name,
            columns: &[$($column),+],
            hashed: tables!(@hashed $($bytes, $id)?),
        };)+
        /// Every table of the store's own schema.
        pub(super) const ALL: &[&Table] = &[$(&$ident),+];
    };
    (@hashed) => { None };
    (@hashed $bytes:literal, $id:literal) => { Some(Hashed { bytes: $bytes, id: $id }) };
}

tables! {
    META = "meta" ["key", "value"];
    NETWORKS = "networks" ["id", "label", "state", "joined_epoch", "relay_cursor", "refetch_after"];
    EPOCHS = "epochs" ["network", "epoch", "key"];
    MEMBERS = "members" ["network", "author", "public_key", "name", "from_epoch", "to_epoch"];
    RECORD_KEYS = "record_keys" ["ordinal", "network", "record_tag", "key_id", "key"];
    ENTRIES = "entries" ["local_order", "network", "id", "author", "seq", "epoch", "kind"]
        hashed("bytes" by "id");
    RELAYED = "relayed" ["network", "id"];
    PENDING = "pending" ["network", "id", "author", "seq", "reason", "relay_pos"]
        hashed("bytes" by "id");
    FORKS = "forks" ["network", "author", "seq", "kept_id", "other_id"]
        hashed("other_bytes" by "other_id");
    FLAGGED = "flagged" ["network", "author", "reason"];
    RECORDS = "records" ["network", "record_tag", "name", "doc"];
    RECORD_INCREMENTS = "record_increments" ["network", "record_tag", "seq", "bytes"];
    PENDING_COMMIT = "pending_commit" ["network", "epoch", "commit_msg", "welcome", "intent"];
    OUTBOX = "outbox" ["id", "network", "message", "entry_id"];
    WITHHELD_KEYS = "withheld_keys" ["network", "record_tag", "key_id"];
    WITHHOLDING = "withholding" ["network", "record_tag", "key_id"];
    ERASED = "erased" ["network", "record_tag", "name", "entry_id", "author", "time_ms", "scope"];
    SHREDDED_KEYS = "shredded_keys" ["network", "record_tag", "key_id"];
    SHARES = "shares" ["from_network", "to_network", "purpose"];
    CONSENT_DUE = "consent_due" ["network", "record_tag", "name", "from_network", "purpose", "due_ms"];
    REMOVED_MEMBERS = "removed_members" ["network", "author", "removed_epoch", "last_seq"];
}

/// SHA-256 of `bytes`.
pub(super) fn content_id(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The table named `name`, if it is one of ours.
pub(super) fn ours(name: &str) -> Option<&'static Table> {
    ALL.iter().copied().find(|t| t.name == name)
}

impl Table {
    /// `c1, c2, …` for a SELECT or an INSERT column list.
    fn column_list(&self) -> String {
        self.columns.join(", ")
    }

    /// Where `column` is in a row [`Store::select`] returns.
    fn index(&self, column: &str) -> usize {
        if let Some(hashed) = &self.hashed {
            if hashed.bytes == column {
                return self.columns.len() + 2;
            }
        }
        self.columns
            .iter()
            .position(|c| *c == column)
            .unwrap_or_else(|| unreachable!("column `{column}` of `{}`", self.name))
    }
}

/// A row read from one of our tables whose MAC checked out.
pub(super) struct Verified<'r, 's> {
    row: &'r Row<'s>,
    table: &'static Table,
}

impl Verified<'_, '_> {
    /// The value of `column`.
    pub fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> Result<T, StoreError> {
        Ok(self.row.get(self.table.index(column))?)
    }
}

/// How [`Store::put`] treats a row with the same key.
#[derive(Clone, Copy)]
pub(super) enum Put {
    /// A conflict is an error.
    Insert,
    /// Keep the existing row.
    OrIgnore,
    /// Replace the existing row.
    OrReplace,
}

fn value_of<'a>(param: &'a ToSqlOutput<'a>) -> ValueRef<'a> {
    match param {
        ToSqlOutput::Borrowed(v) => *v,
        ToSqlOutput::Owned(v) => v.into(),
        // Only zero-blobs and array pointers produce the other variants; our
        // columns never take them, so MAC the value as NULL (a mismatch on read).
        _ => ValueRef::Null,
    }
}

impl Store {
    /// The MAC of a row of `table` with these data values.
    fn row_mac(&self, table: &Table, values: &[&dyn ToSql]) -> Result<Vec<u8>, StoreError> {
        let outputs: Vec<ToSqlOutput<'_>> = values
            .iter()
            .map(|v| v.to_sql())
            .collect::<Result<_, _>>()?;
        let refs: Vec<ValueRef<'_>> = outputs.iter().map(value_of).collect();
        Ok(seal::row_mac(&self.seal_key, table.name, &refs).to_vec())
    }

    /// Write one row of `table` (every data column, in order, then the
    /// hashed bytes if the table has them) with its MAC; returns how many
    /// rows changed.
    pub(super) fn put(
        &self,
        table: &'static Table,
        mode: Put,
        values: &[&dyn ToSql],
    ) -> Result<usize, StoreError> {
        let macced = table.columns.len();
        debug_assert_eq!(
            values.len(),
            macced + usize::from(table.hashed.is_some()),
            "{}",
            table.name
        );
        let mac = self.row_mac(table, &values[..macced])?;
        let verb = match mode {
            Put::Insert => "INSERT",
            Put::OrIgnore => "INSERT OR IGNORE",
            Put::OrReplace => "INSERT OR REPLACE",
        };
        let placeholders: Vec<String> = (1..=values.len() + 1).map(|i| format!("?{i}")).collect();
        let hashed = table
            .hashed
            .as_ref()
            .map_or(String::new(), |h| format!(", {}", h.bytes));
        let sql = format!(
            "{verb} INTO {} ({}, mac{hashed}) VALUES ({})",
            table.name,
            table.column_list(),
            placeholders.join(", ")
        );
        let mut params: Vec<&dyn ToSql> = values[..macced].to_vec();
        params.push(&mac);
        params.extend_from_slice(&values[macced..]);
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(params))?)
    }

    /// Rewrite the row at `rowid` of `table` with new data values and MAC.
    pub(super) fn rewrite(
        &self,
        table: &'static Table,
        rowid: i64,
        values: &[&dyn ToSql],
    ) -> Result<(), StoreError> {
        let mac = self.row_mac(table, values)?;
        let sets: Vec<String> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect();
        let n = values.len();
        let sql = format!(
            "UPDATE {} SET {}, mac = ?{} WHERE rowid = ?{}",
            table.name,
            sets.join(", "),
            n + 1,
            n + 2
        );
        let mut params: Vec<&dyn ToSql> = values.to_vec();
        params.push(&mac);
        params.push(&rowid);
        self.conn
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(())
    }

    /// Read rows of `table` (`tail` is everything after `FROM table`, e.g.
    /// a WHERE and ORDER BY), check each row's MAC, and map it. A table's
    /// hashed bytes are not read (see [`Store::select_bytes`]).
    pub(super) fn select<T, P: Params>(
        &self,
        table: &'static Table,
        tail: &str,
        params: P,
        map: impl FnMut(&Verified<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(table, false, tail, params, map)
    }

    /// [`Store::select`] with the table's hashed bytes too, checked against
    /// their id.
    pub(super) fn select_bytes<T, P: Params>(
        &self,
        table: &'static Table,
        tail: &str,
        params: P,
        map: impl FnMut(&Verified<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(table, true, tail, params, map)
    }

    fn query<T, P: Params>(
        &self,
        table: &'static Table,
        with_bytes: bool,
        tail: &str,
        params: P,
        mut map: impl FnMut(&Verified<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let bytes = match (&table.hashed, with_bytes) {
            (Some(hashed), true) => format!(", {}", hashed.bytes),
            _ => String::new(),
        };
        let sql = format!(
            "SELECT {}, mac, rowid{bytes} FROM {} {tail}",
            table.column_list(),
            table.name
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            self.check_row(table, row)?;
            if with_bytes {
                check_hashed(table, row)?;
            }
            out.push(map(&Verified { row, table })?);
        }
        Ok(out)
    }

    /// Like [`Store::select`], also giving each row's rowid (for [`Store::rewrite`]).
    pub(super) fn select_with_rowid<T, P: Params>(
        &self,
        table: &'static Table,
        tail: &str,
        params: P,
        mut map: impl FnMut(&Verified<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Vec<(i64, T)>, StoreError> {
        let n = table.columns.len();
        let mut rowids = Vec::new();
        let rows = self.select(table, tail, params, |row| {
            rowids.push(row.row.get::<_, i64>(n + 1)?);
            map(row)
        })?;
        Ok(rowids.into_iter().zip(rows).collect())
    }

    /// At most one row (the query's key is unique).
    pub(super) fn select_one<T, P: Params>(
        &self,
        table: &'static Table,
        tail: &str,
        params: P,
        map: impl FnMut(&Verified<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.select(table, tail, params, map)?.into_iter().next())
    }

    fn check_row(&self, table: &'static Table, row: &Row<'_>) -> Result<(), StoreError> {
        let n = table.columns.len();
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(row.get_ref(i)?);
        }
        let mac = row.get_ref(n)?;
        seal::check_row_mac(&self.seal_key, table.name, &values, mac)
    }
}

/// The hashed bytes of a row (read as the last column) match its id.
fn check_hashed(table: &'static Table, row: &Row<'_>) -> Result<(), StoreError> {
    let Some(hashed) = &table.hashed else {
        return Ok(());
    };
    let id: Vec<u8> = row.get(table.index(hashed.id))?;
    let bytes = row.get_ref(table.columns.len() + 2)?;
    match bytes.as_blob() {
        Ok(bytes) if content_id(bytes).as_slice() == id.as_slice() => Ok(()),
        _ => Err(StoreError::Tampered(format!(
            "a row of `{}` does not hash to its id",
            table.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_unique() {
        let mut names: Vec<&str> = ALL.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
