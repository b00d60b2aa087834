//! The store's content sealed at rest under the storage key.
//!
//! Secrets, records and MLS state are AEAD-sealed and entries are signed, but
//! the plaintext columns around them (sequence numbers, epochs, cursors,
//! rosters, the keys of MLS rows) are read as they are. So every row is
//! authenticated: HMAC-SHA256, under a key derived from the storage key,
//! over the table's name and the row's data columns (see [`row_mac`]).
//! Where a row's position matters it is an explicit integer key column, so
//! the MAC covers it.
//!
//! - **The store's own rows** carry their MAC in a `mac` column, computed in
//!   Rust when written and checked by the read that uses the row
//!   ([`super::tables`]).
//! - **MLS rows**, written by `openmls_sqlite_storage`, are covered by their
//!   table's digest (below), which SQLite triggers keep as the rows change,
//!   and which is checked whenever a group is loaded
//!   ([`verify_foreign_rows`]): a changed, removed, added or swapped MLS row,
//!   or one put back from an older copy, is found before openmls reads it.
//!   (Their values are also AEAD-sealed by the MLS codec.)
//! - **Digests.** Triggers keep, per table, the XOR of its rows' MACs,
//!   started from a per-table secret, so a set of rows has one digest.
//! - **Opening** checks only the storage key and the schema's digest, so it
//!   costs the same for a store of 100 charts or of 100,000.
//! - **Audit.** [`verify_full`] reads everything: `PRAGMA integrity_check`,
//!   every row's MAC, every digest (which also reveals a deleted row, or a
//!   row put back from an older copy of the file), the schema digest and the
//!   AUTOINCREMENT counters.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{tables, StoreError};
use crate::keys::StorageKey;

type HmacSha256 = Hmac<Sha256>;

/// The table holding the digests (itself unsealed: its values are secret XOR-MACs).
pub(super) const DIGESTS: &str = "row_digests";
const SCHEMA: &str = "sqlite_master";
const MAC_FN: &str = "careledger_row_mac";
const XOR_FN: &str = "careledger_xor";
const TRIGGER_PREFIX: &str = "careledger_seal_";
const DIGEST_LEN: usize = 32;

/// A derived key.
pub(super) type SealKey = Zeroizing<[u8; 32]>;

/// HMAC-SHA256 keyed with the row-MAC key, ready to clone for each row (the
/// key schedule is done once).
pub(super) type MacBase = HmacSha256;

/// The keyed HMAC row MACs are made with, derived from the storage key.
pub(super) fn mac_base(storage_key: &StorageKey) -> MacBase {
    let key = derive(storage_key, b"careledger/v1/store-seal");
    new_mac(&key)
}

/// A 32-byte key for one purpose, derived from the storage key.
pub(super) fn derive(storage_key: &StorageKey, purpose: &[u8]) -> SealKey {
    let mut mac = new_mac(storage_key.secret().as_bytes());
    mac.update(purpose);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn new_mac(key: &[u8; 32]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn update_value(mac: &mut HmacSha256, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => mac.update(&[0]),
        ValueRef::Integer(i) => {
            mac.update(&[1]);
            mac.update(&i.to_be_bytes());
        }
        ValueRef::Real(f) => {
            mac.update(&[2]);
            mac.update(&f.to_bits().to_be_bytes());
        }
        ValueRef::Text(t) => {
            mac.update(&[3]);
            mac.update(&(t.len() as u64).to_be_bytes());
            mac.update(t);
        }
        ValueRef::Blob(b) => {
            mac.update(&[4]);
            mac.update(&(b.len() as u64).to_be_bytes());
            mac.update(b);
        }
    }
}

fn mac_of<'a>(base: &MacBase, values: impl IntoIterator<Item = ValueRef<'a>>) -> HmacSha256 {
    let mut mac = base.clone();
    for value in values {
        update_value(&mut mac, value);
    }
    mac
}

/// A row's MAC: what `careledger_row_mac('<table>', c1, …)` computes in SQL.
pub(super) fn row_mac(base: &MacBase, table: &str, values: &[ValueRef<'_>]) -> [u8; DIGEST_LEN] {
    let all = std::iter::once(ValueRef::Text(table.as_bytes())).chain(values.iter().copied());
    mac_of(base, all).finalize().into_bytes().into()
}

/// Check a row read from `table` against its stored MAC (constant time).
pub(super) fn check_row_mac(
    key: &MacBase,
    table: &str,
    values: &[ValueRef<'_>],
    stored: ValueRef<'_>,
) -> Result<(), StoreError> {
    let all = std::iter::once(ValueRef::Text(table.as_bytes())).chain(values.iter().copied());
    let ok = match stored {
        ValueRef::Blob(stored) => mac_of(key, all).verify_slice(stored).is_ok(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Tampered(format!(
            "a row of `{table}` does not match its MAC"
        )))
    }
}

/// The digest of an empty table: a secret per table, so emptying a table
/// cannot be matched by a guessable value.
fn base(key: &MacBase, table: &str) -> [u8; DIGEST_LEN] {
    let mut mac = key.clone();
    mac.update(b"empty\0");
    mac.update(table.as_bytes());
    mac.finalize().into_bytes().into()
}

fn xor_into(acc: &mut [u8; DIGEST_LEN], other: &[u8]) -> Result<(), StoreError> {
    if other.len() != DIGEST_LEN {
        return Err(StoreError::Tampered(
            "row digest has the wrong length".into(),
        ));
    }
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
    Ok(())
}

/// Register the SQL functions the seal triggers call on `conn`.
pub(super) fn register(conn: &Connection, storage_key: &StorageKey) -> rusqlite::Result<()> {
    let key = mac_base(storage_key);
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function(MAC_FN, -1, flags, move |ctx| {
        let values = (0..ctx.len()).map(|i| ctx.get_raw(i));
        Ok(mac_of(&key, values).finalize().into_bytes().to_vec())
    })?;
    conn.create_scalar_function(XOR_FN, 2, flags, |ctx| {
        let a = ctx
            .get_raw(0)
            .as_blob()
            .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
        let b = ctx
            .get_raw(1)
            .as_blob()
            .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
        if a.len() != b.len() {
            return Err(rusqlite::Error::UserFunctionError(
                "row digest has the wrong length (store tampered or corrupt)".into(),
            ));
        }
        Ok(a.iter().zip(b).map(|(x, y)| x ^ y).collect::<Vec<u8>>())
    })?;
    Ok(())
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Tables under the seal: every table but SQLite's own and the digests.
pub(super) fn sealed_tables(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name != ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([DIGESTS], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn physical_columns(conn: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(1))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The data columns a table's row MAC covers, in MAC order: ours as
/// [`tables`] lists them, others' (MLS storage) as the schema does.
fn mac_columns(conn: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    match tables::ours(table) {
        Some(def) => Ok(def.columns.iter().map(|c| (*c).to_owned()).collect()),
        None => Ok(physical_columns(conn, table)?
            .into_iter()
            .filter(|c| c != "mac")
            .collect()),
    }
}

/// `careledger_row_mac('<table>', <prefix>"c1", …)`.
fn mac_call(table: &str, columns: &[String], prefix: &str) -> String {
    let mut call = format!("{MAC_FN}({}", literal(table));
    for column in columns {
        call.push_str(", ");
        call.push_str(prefix);
        call.push_str(&quote(column));
    }
    call.push(')');
    call
}

fn fold_macs(
    conn: &Connection,
    sql: &str,
    start: [u8; DIGEST_LEN],
) -> Result<[u8; DIGEST_LEN], StoreError> {
    let mut acc = start;
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mac = row
            .get_ref(0)?
            .as_blob()
            .map_err(|_| StoreError::Tampered("row MAC is not a blob".into()))?;
        xor_into(&mut acc, mac)?;
    }
    Ok(acc)
}

fn schema_digest(conn: &Connection, key: &MacBase) -> Result<[u8; DIGEST_LEN], StoreError> {
    let sql = format!(
        "SELECT {MAC_FN}('{SCHEMA}', type, name, tbl_name, rootpage, sql) FROM sqlite_master"
    );
    fold_macs(conn, &sql, base(key, SCHEMA))
}

/// Drop every seal trigger (before a migration rewrites tables).
pub(super) fn drop_triggers(conn: &Connection) -> Result<(), StoreError> {
    let triggers: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?1")?;
        let rows = stmt.query_map([format!("{TRIGGER_PREFIX}%")], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for trigger in triggers {
        conn.execute_batch(&format!("DROP TRIGGER {}", quote(&trigger)))?;
    }
    Ok(())
}

/// Give our tables their MAC column, every table its triggers for the
/// current schema, and compute every MAC and digest from the current
/// content. Run inside the migration's transaction, only after a migration
/// changed the schema (the content was verified before it).
pub(super) fn reseal(conn: &Connection, storage_key: &StorageKey) -> Result<(), StoreError> {
    let key = mac_base(storage_key);
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {DIGESTS} (tbl TEXT PRIMARY KEY, digest BLOB NOT NULL)"
    ))?;
    drop_triggers(conn)?;
    conn.execute(&format!("DELETE FROM {DIGESTS}"), [])?;
    for table in sealed_tables(conn)? {
        let ours = tables::ours(&table).is_some();
        let columns = mac_columns(conn, &table)?;
        let name = quote(&table);
        if ours {
            if !physical_columns(conn, &table)?.iter().any(|c| c == "mac") {
                conn.execute_batch(&format!("ALTER TABLE {name} ADD COLUMN mac BLOB"))?;
            }
            conn.execute_batch(&format!(
                "UPDATE {name} SET mac = {}",
                mac_call(&table, &columns, "")
            ))?;
        }
        let digest_of = |expression: &str| {
            format!(
                "UPDATE {DIGESTS} SET digest = {expression} WHERE tbl = {};",
                literal(&table)
            )
        };
        let stem = format!(
            "{TRIGGER_PREFIX}{}",
            table.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let (ins, del, upd) = (
            quote(&format!("{stem}_insert")),
            quote(&format!("{stem}_delete")),
            quote(&format!("{stem}_update")),
        );
        // Our writes carry the MAC they computed; rows written by another
        // crate are MAC'd here.
        let (new_mac, old_mac) = if ours {
            ("NEW.mac".to_owned(), "OLD.mac".to_owned())
        } else {
            (
                mac_call(&table, &columns, "NEW."),
                mac_call(&table, &columns, "OLD."),
            )
        };
        conn.execute_batch(&format!(
            "CREATE TRIGGER {ins} AFTER INSERT ON {name} BEGIN {} END;
             CREATE TRIGGER {del} AFTER DELETE ON {name} BEGIN {} END;
             CREATE TRIGGER {upd} AFTER UPDATE ON {name} BEGIN {} END;",
            digest_of(&format!("{XOR_FN}(digest, {new_mac})")),
            digest_of(&format!("{XOR_FN}(digest, {old_mac})")),
            digest_of(&format!("{XOR_FN}({XOR_FN}(digest, {old_mac}), {new_mac})")),
        ))?;
        let digest = fold_macs(
            conn,
            &format!("SELECT {} FROM {name}", mac_call(&table, &columns, "")),
            base(&key, &table),
        )?;
        conn.execute(
            &format!("INSERT INTO {DIGESTS} (tbl, digest) VALUES (?1, ?2)"),
            rusqlite::params![table, digest.as_slice()],
        )?;
    }
    let schema = schema_digest(conn, &key)?;
    conn.execute(
        &format!("INSERT INTO {DIGESTS} (tbl, digest) VALUES (?1, ?2)"),
        rusqlite::params![SCHEMA, schema.as_slice()],
    )?;
    Ok(())
}

fn stored_digest(conn: &Connection, table: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT digest FROM {DIGESTS} WHERE tbl = ?1"),
            [table],
            |r| r.get(0),
        )
        .optional()?)
}

/// At open: the schema (tables, indexes, triggers) is the one sealed.
/// Constant cost: the schema is small and does not grow with the content.
pub(super) fn check_schema(conn: &Connection, storage_key: &StorageKey) -> Result<(), StoreError> {
    let key = mac_base(storage_key);
    match stored_digest(conn, SCHEMA)? {
        Some(stored) if stored == schema_digest(conn, &key)? => Ok(()),
        Some(_) => Err(StoreError::Tampered(
            "the schema does not match its digest".into(),
        )),
        None => Err(StoreError::Tampered("the schema has no digest".into())),
    }
}

/// For each table written by other crates (MLS storage): the query giving
/// each row's MAC. Made once per open store (the schema does not change
/// after the open).
pub(super) fn foreign_checks(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for table in sealed_tables(conn)? {
        if tables::ours(&table).is_some() {
            continue;
        }
        let columns = mac_columns(conn, &table)?;
        let sql = format!(
            "SELECT {} FROM {}",
            mac_call(&table, &columns, ""),
            quote(&table)
        );
        out.push((table, sql));
    }
    Ok(out)
}

/// Check the tables written by other crates (MLS storage) against their
/// digests before their rows are used. The caller holds a read snapshot
/// (a transaction), so a writer in another process cannot interleave.
pub(super) fn verify_foreign_rows(
    conn: &Connection,
    base_key: &MacBase,
    checks: &[(String, String)],
) -> Result<(), StoreError> {
    for (table, sql) in checks {
        let mut acc = base(base_key, table);
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mac = row
                .get_ref(0)?
                .as_blob()
                .map_err(|_| StoreError::Tampered("row MAC is not a blob".into()))?;
            xor_into(&mut acc, mac)?;
        }
        if stored_digest(conn, table)?.as_deref() != Some(acc.as_slice()) {
            return Err(StoreError::Tampered(format!(
                "MLS state in `{table}` was altered at rest"
            )));
        }
    }
    Ok(())
}

/// What a full audit of the store file found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreVerifyReport {
    /// Tables checked (the schema counts as one).
    pub tables: usize,
    /// Rows whose MAC was checked.
    pub rows: u64,
    /// Everything that does not match, in order; empty when the file is intact.
    pub problems: Vec<String>,
}

impl StoreVerifyReport {
    /// Nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Read and check the whole file (see the module docs), in one read
/// snapshot. `Err` only when the file cannot be read at all.
pub(super) fn verify_full(
    conn: &Connection,
    storage_key: &StorageKey,
) -> Result<StoreVerifyReport, StoreError> {
    let key = mac_base(storage_key);
    conn.execute_batch("BEGIN")?;
    let outcome = verify_in_snapshot(conn, &key);
    let _ = conn.execute_batch("COMMIT");
    outcome
}

fn verify_in_snapshot(conn: &Connection, key: &MacBase) -> Result<StoreVerifyReport, StoreError> {
    let mut report = StoreVerifyReport::default();
    let integrity: Vec<String> = {
        let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if integrity != ["ok"] {
        report.problems.extend(
            integrity
                .into_iter()
                .map(|p| format!("integrity check: {p}")),
        );
    }
    let mut stored: BTreeMap<String, Vec<u8>> = {
        let mut stmt = conn.prepare(&format!("SELECT tbl, digest FROM {DIGESTS}"))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut compare =
        |table: &str, digest: [u8; DIGEST_LEN], report: &mut StoreVerifyReport| match stored
            .remove(table)
        {
            Some(recorded) if recorded == digest => {}
            Some(_) => report.problems.push(format!(
                "table `{table}` does not match its digest (a row was removed, added or put back)"
            )),
            None => report
                .problems
                .push(format!("table `{table}` has no digest")),
        };
    report.tables += 1;
    compare(SCHEMA, schema_digest(conn, key)?, &mut report);
    let tables = sealed_tables(conn)?;
    for table in &tables {
        report.tables += 1;
        let columns = mac_columns(conn, table)?;
        if tables::ours(table).is_none() {
            // MLS tables: the digest over every row's MAC.
            let sql = format!(
                "SELECT {} FROM {}",
                mac_call(table, &columns, ""),
                quote(table)
            );
            let digest = fold_macs(conn, &sql, base(key, table))?;
            report.rows += conn
                .query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
                    r.get::<_, i64>(0)
                })?
                .max(0) as u64;
            compare(table, digest, &mut report);
            continue;
        }
        let select: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let sql = format!(
            "SELECT mac{}{} FROM {}",
            if select.is_empty() { "" } else { ", " },
            select.join(", "),
            quote(table)
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut digest = base(key, table);
        let mut altered = 0u64;
        while let Some(row) = rows.next()? {
            report.rows += 1;
            let values: Vec<ValueRef<'_>> = (1..=columns.len())
                .map(|i| row.get_ref(i))
                .collect::<Result<_, _>>()?;
            let mac = row.get_ref(0)?;
            if check_row_mac(key, table, &values, mac).is_err() {
                altered += 1;
            }
            match mac.as_blob() {
                Ok(mac) if mac.len() == DIGEST_LEN => {
                    let _ = xor_into(&mut digest, mac);
                }
                _ => {}
            }
        }
        if altered > 0 {
            report.problems.push(format!(
                "{altered} row(s) of `{table}` do not match their MAC"
            ));
        }
        if let Some(hashed) = tables::ours(table).and_then(|t| t.hashed.as_ref()) {
            let misfits = hash_misfits(conn, table, hashed)?;
            if misfits > 0 {
                report.problems.push(format!(
                    "{misfits} row(s) of `{table}` do not hash to their id"
                ));
            }
        }
        compare(table, digest, &mut report);
    }
    for table in stored.keys() {
        report
            .problems
            .push(format!("digest for unknown table `{table}`"));
    }
    report.problems.extend(check_counters(conn, &tables)?);
    Ok(report)
}

/// Rows whose content-addressed bytes do not hash to their (MAC'd) id.
fn hash_misfits(
    conn: &Connection,
    table: &str,
    hashed: &tables::Hashed,
) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {}, {} FROM {}",
        quote(hashed.id),
        quote(hashed.bytes),
        quote(table)
    ))?;
    let mut rows = stmt.query([])?;
    let mut misfits = 0;
    while let Some(row) = rows.next()? {
        let fits = match (row.get_ref(0)?.as_blob(), row.get_ref(1)?.as_blob()) {
            (Ok(id), Ok(bytes)) => tables::content_id(bytes).as_slice() == id,
            _ => false,
        };
        misfits += u64::from(!fits);
    }
    Ok(misfits)
}

/// AUTOINCREMENT counters (SQLite's own table, no triggers): never below
/// the rows they numbered. A raised counter only leaves a gap.
fn check_counters(conn: &Connection, tables: &[String]) -> Result<Vec<String>, StoreError> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Ok(Vec::new());
    }
    let sequences: Vec<(String, i64)> = {
        let mut stmt = conn.prepare("SELECT name, seq FROM sqlite_sequence")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut problems = Vec::new();
    for (table, seq) in sequences {
        if !tables.contains(&table) {
            problems.push(format!("counter for unknown table `{table}`"));
            continue;
        }
        let max: Option<i64> = conn.query_row(
            &format!("SELECT max(rowid) FROM {}", quote(&table)),
            [],
            |r| r.get(0),
        )?;
        if max.is_some_and(|max| max > seq) {
            problems.push(format!("counter of `{table}` below its rows"));
        }
    }
    Ok(problems)
}

/// Schema 4's seal (whole-table digests over `rowid` and every column),
/// checked once before such a store is migrated: the migration re-seals
/// what it finds, so it must find genuine content.
pub(super) fn verify_v4(conn: &Connection, storage_key: &StorageKey) -> Result<(), StoreError> {
    let key = mac_base(storage_key);
    conn.execute_batch("BEGIN")?;
    let outcome = verify_v4_in_snapshot(conn, &key);
    let _ = conn.execute_batch("COMMIT");
    outcome
}

fn verify_v4_in_snapshot(conn: &Connection, key: &MacBase) -> Result<(), StoreError> {
    let problems: Vec<String> = {
        let mut stmt = conn.prepare("PRAGMA integrity_check(1)")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if problems != ["ok"] {
        return Err(StoreError::Tampered(format!(
            "integrity check failed: {}",
            problems.join("; ")
        )));
    }
    let mut stored: BTreeMap<String, Vec<u8>> = {
        let mut stmt = conn.prepare(&format!("SELECT tbl, digest FROM {DIGESTS}"))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut check = |table: &str, digest: [u8; DIGEST_LEN]| match stored.remove(table) {
        Some(recorded) if recorded == digest => Ok(()),
        Some(_) => Err(StoreError::Tampered(format!(
            "table `{table}` does not match its digest"
        ))),
        None => Err(StoreError::Tampered(format!(
            "table `{table}` has no digest"
        ))),
    };
    check(SCHEMA, schema_digest(conn, key)?)?;
    let tables = sealed_tables(conn)?;
    for table in &tables {
        let mut call = format!("{MAC_FN}({}, rowid", literal(table));
        for column in physical_columns(conn, table)? {
            call.push_str(", ");
            call.push_str(&quote(&column));
        }
        call.push(')');
        let sql = format!("SELECT {call} FROM {}", quote(table));
        check(table, fold_macs(conn, &sql, base(key, table))?)?;
    }
    if let Some(table) = stored.keys().next() {
        return Err(StoreError::Tampered(format!(
            "digest for unknown table `{table}`"
        )));
    }
    if let Some(problem) = check_counters(conn, &tables)?.into_iter().next() {
        return Err(StoreError::Tampered(problem));
    }
    Ok(())
}
