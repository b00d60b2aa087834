//! The store's content sealed at rest under the storage key.
//!
//! Secrets and records are AEAD-wrapped and entries are signed, but the
//! plaintext columns around them (sequence numbers, epochs, cursors, rosters,
//! MLS state written by `openmls_sqlite_storage`) are read as they are. A
//! changed byte there would be used silently. So every row of every table is
//! authenticated: SQLite triggers keep, per table, the XOR of an HMAC-SHA256
//! (keyed from the storage key) over each row's table name, rowid and column
//! values, started from a per-table secret base (an XOR-MAC over the set of
//! rows: a changed, removed or added row changes it). The schema itself
//! (`sqlite_master`) has its own digest, refreshed only when a migration ran.
//!
//! [`verify`] runs when a store is opened: `PRAGMA integrity_check` (which
//! also checks indexes against their tables), then every digest against the
//! rows, then the AUTOINCREMENT counters against the rows. Any mismatch
//! refuses the file with [`StoreError::Tampered`]. Cost: one read of the
//! whole file per open, and one HMAC per written row.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::StoreError;
use crate::keys::StorageKey;

type HmacSha256 = Hmac<Sha256>;

/// The table holding the digests (itself unsealed: its values are secret XOR-MACs).
pub(super) const DIGESTS: &str = "row_digests";
const SCHEMA: &str = "sqlite_master";
const MAC_FN: &str = "careledger_row_mac";
const XOR_FN: &str = "careledger_xor";
const TRIGGER_PREFIX: &str = "careledger_seal_";
const DIGEST_LEN: usize = 32;

fn mac_key(storage_key: &StorageKey) -> Zeroizing<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(storage_key.secret().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(b"careledger/v1/store-seal");
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn new_mac(key: &[u8; 32]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes any key length")
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

/// The digest of an empty table: a secret per table, so emptying a table
/// cannot be matched by a guessable value.
fn base(key: &[u8; 32], table: &str) -> [u8; DIGEST_LEN] {
    let mut mac = new_mac(key);
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
    let key = mac_key(storage_key);
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function(MAC_FN, -1, flags, move |ctx| {
        let mut mac = new_mac(&key);
        for i in 0..ctx.len() {
            update_value(&mut mac, ctx.get_raw(i));
        }
        Ok(mac.finalize().into_bytes().to_vec())
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

/// Tables under the seal: every table but SQLite's own and the digests.
fn sealed_tables(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name != ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([DIGESTS], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(1))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `careledger_row_mac('<table>', <prefix>rowid, <prefix>"c1", …)`.
fn mac_call(table: &str, columns: &[String], prefix: &str) -> String {
    let mut call = format!("{MAC_FN}('{}', {prefix}rowid", table.replace('\'', "''"));
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

fn table_digest(
    conn: &Connection,
    key: &[u8; 32],
    table: &str,
) -> Result<[u8; DIGEST_LEN], StoreError> {
    let columns = columns(conn, table)?;
    let sql = format!(
        "SELECT {} FROM {}",
        mac_call(table, &columns, ""),
        quote(table)
    );
    fold_macs(conn, &sql, base(key, table))
}

fn schema_digest(conn: &Connection, key: &[u8; 32]) -> Result<[u8; DIGEST_LEN], StoreError> {
    let sql = format!(
        "SELECT {MAC_FN}('{SCHEMA}', type, name, tbl_name, rootpage, sql) FROM sqlite_master"
    );
    fold_macs(conn, &sql, base(key, SCHEMA))
}

/// Recreate the triggers for the current schema and recompute every digest
/// from the current content. Run inside the migration's transaction, only
/// after a migration changed the schema (the content was verified before).
pub(super) fn reseal(conn: &Connection, storage_key: &StorageKey) -> Result<(), StoreError> {
    let key = mac_key(storage_key);
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {DIGESTS} (tbl TEXT PRIMARY KEY, digest BLOB NOT NULL)"
    ))?;
    let triggers: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?1")?;
        let rows = stmt.query_map([format!("{TRIGGER_PREFIX}%")], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for trigger in triggers {
        conn.execute_batch(&format!("DROP TRIGGER {}", quote(&trigger)))?;
    }
    conn.execute(&format!("DELETE FROM {DIGESTS}"), [])?;
    for table in sealed_tables(conn)? {
        let columns = columns(conn, &table)?;
        let target = format!(
            "UPDATE {DIGESTS} SET digest = {XOR_FN}(digest, {{}}) WHERE tbl = '{}';",
            table.replace('\'', "''")
        );
        let new_row = target.replace("{}", &mac_call(&table, &columns, "NEW."));
        let old_row = target.replace("{}", &mac_call(&table, &columns, "OLD."));
        let name = quote(&table);
        let stem = format!(
            "{TRIGGER_PREFIX}{}",
            table.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        conn.execute_batch(&format!(
            "CREATE TRIGGER {ins} AFTER INSERT ON {name} BEGIN {new_row} END;
             CREATE TRIGGER {del} AFTER DELETE ON {name} BEGIN {old_row} END;
             CREATE TRIGGER {upd} AFTER UPDATE ON {name} BEGIN {old_row} {new_row} END;",
            ins = quote(&format!("{stem}_insert")),
            del = quote(&format!("{stem}_delete")),
            upd = quote(&format!("{stem}_update")),
        ))?;
        let digest = table_digest(conn, &key, &table)?;
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

/// Check the whole file against its seal (see the module docs).
pub(super) fn verify(conn: &Connection, storage_key: &StorageKey) -> Result<(), StoreError> {
    let key = mac_key(storage_key);
    conn.execute_batch("BEGIN")?;
    let outcome = verify_in_snapshot(conn, &key);
    let _ = conn.execute_batch("COMMIT");
    outcome
}

fn verify_in_snapshot(conn: &Connection, key: &[u8; 32]) -> Result<(), StoreError> {
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
    for table in sealed_tables(conn)? {
        check(&table, table_digest(conn, key, &table)?)?;
    }
    if let Some(table) = stored.keys().next() {
        return Err(StoreError::Tampered(format!(
            "digest for unknown table `{table}`"
        )));
    }
    // AUTOINCREMENT counters (SQLite's own table, no triggers): never below
    // the rows they numbered. A raised counter only leaves a gap.
    let sequences: Vec<(String, i64)> = {
        let exists = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            Vec::new()
        } else {
            let mut stmt = conn.prepare("SELECT name, seq FROM sqlite_sequence")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        }
    };
    for (table, seq) in sequences {
        let tables = sealed_tables(conn)?;
        if !tables.contains(&table) {
            return Err(StoreError::Tampered(format!(
                "counter for unknown table `{table}`"
            )));
        }
        let max: Option<i64> = conn.query_row(
            &format!("SELECT max(rowid) FROM {}", quote(&table)),
            [],
            |r| r.get(0),
        )?;
        if max.is_some_and(|max| max > seq) {
            return Err(StoreError::Tampered(format!(
                "counter of `{table}` below its rows"
            )));
        }
    }
    Ok(())
}
