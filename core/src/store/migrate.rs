//! Schema migrations, oldest first. [`super::Store::open`] runs the ones a
//! file lacks in one transaction, then re-seals (`seal::reseal`).
//!
//! Version 5 ("nothing readable at rest", verify on read) cannot be written
//! in SQL alone: patient ids in record columns become keyed tags with the id
//! sealed beside them, record and epoch keys are re-wrapped under labels
//! bound to their row, and MLS state written by the old JSON codec is
//! sealed by [`MlsCodec`](super::mls_codec::MlsCodec)'s.

use std::sync::Arc;

use openmls_rust_crypto::RustCrypto;
use openmls_traits::random::OpenMlsRand;
use rusqlite::{params, Connection};

use super::mls_codec::MlsKeys;
use super::records::{doc_label, tag_of, RecordTag};
use super::{seal, StoreError};
use crate::entry::Entry;
use crate::keys::{StorageKey, KEY_LEN, NONCE_LEN};

/// What a code migration needs.
pub(super) struct Keys<'a> {
    pub storage: &'a StorageKey,
    pub tag: &'a seal::SealKey,
    pub mls: &'a Arc<MlsKeys>,
    pub crypto: &'a RustCrypto,
}

/// One step of the schema.
pub(super) enum Migration {
    Sql(&'static str),
    Code(fn(&Connection, &Keys<'_>) -> Result<(), StoreError>),
}

impl Migration {
    pub(super) fn apply(&self, conn: &Connection, keys: &Keys<'_>) -> Result<(), StoreError> {
        match self {
            Migration::Sql(sql) => Ok(conn.execute_batch(sql)?),
            Migration::Code(step) => step(conn, keys),
        }
    }
}

pub(super) const MIGRATIONS: &[Migration] = &[
    // Version 1.
    Migration::Sql(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE networks (
        id BLOB PRIMARY KEY, label TEXT NOT NULL, state TEXT NOT NULL,
        joined_epoch INTEGER NOT NULL, relay_cursor INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE epochs (
        network BLOB NOT NULL, epoch INTEGER NOT NULL, key BLOB NOT NULL,
        PRIMARY KEY (network, epoch));
     CREATE TABLE members (
        network BLOB NOT NULL, author BLOB NOT NULL, public_key BLOB NOT NULL,
        name TEXT NOT NULL, from_epoch INTEGER NOT NULL, to_epoch INTEGER NOT NULL);
     CREATE INDEX members_by_author ON members (network, author);
     CREATE TABLE record_keys (
        network BLOB NOT NULL, record TEXT NOT NULL, key_id BLOB NOT NULL, key BLOB NOT NULL,
        PRIMARY KEY (network, record, key_id));
     CREATE TABLE entries (
        local_order INTEGER PRIMARY KEY AUTOINCREMENT,
        network BLOB NOT NULL, id BLOB NOT NULL, author BLOB NOT NULL, seq INTEGER NOT NULL,
        epoch INTEGER NOT NULL, kind INTEGER NOT NULL, bytes BLOB NOT NULL,
        UNIQUE (network, id), UNIQUE (network, author, seq));
     CREATE TABLE pending (
        network BLOB NOT NULL, id BLOB NOT NULL, bytes BLOB NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (network, id));
     CREATE TABLE forks (
        network BLOB NOT NULL, author BLOB NOT NULL, seq INTEGER NOT NULL,
        kept_id BLOB NOT NULL, other_id BLOB NOT NULL, other_bytes BLOB NOT NULL,
        PRIMARY KEY (network, other_id));
     CREATE TABLE flagged (
        network BLOB NOT NULL, author BLOB NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (network, author, reason));
     CREATE TABLE records (
        network BLOB NOT NULL, record TEXT NOT NULL, doc BLOB NOT NULL,
        PRIMARY KEY (network, record));
     CREATE TABLE pending_commit (
        network BLOB PRIMARY KEY, epoch INTEGER NOT NULL, commit_msg BLOB NOT NULL,
        welcome BLOB, intent BLOB NOT NULL);
     CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, network BLOB NOT NULL, message BLOB NOT NULL);",
    ),
    // Version 2: remember which of our entries came back through the relay,
    // so heads announcements only trigger resends of entries lost in transit.
    // Outbox rows for our entries point at the stored entry instead of
    // holding a second copy of it.
    // Records are saved as a base plus increments (the changes of each
    // later transaction), compacted now and then.
    Migration::Sql(
        "ALTER TABLE entries ADD COLUMN relayed INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE outbox ADD COLUMN entry_id BLOB;
     CREATE TABLE record_increments (
        network BLOB NOT NULL, record TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL,
        PRIMARY KEY (network, record, seq));",
    ),
    // Version 3: consent enforcement. `withheld_keys` lists record keys that
    // are never granted to a network (announced by key-withheld entries,
    // ours or others'); `withholding` names the records this node currently
    // writes under such a key, one per record.
    Migration::Sql(
        "CREATE TABLE withheld_keys (
        network BLOB NOT NULL, record TEXT NOT NULL, key_id BLOB NOT NULL,
        PRIMARY KEY (network, record, key_id));
     CREATE TABLE withholding (
        network BLOB NOT NULL, record TEXT NOT NULL, key_id BLOB NOT NULL,
        PRIMARY KEY (network, record));",
    ),
    // Version 4: every row of every table is sealed under the storage key
    // (see `seal`); the triggers and digests are (re)made after migrating.
    Migration::Sql("CREATE TABLE row_digests (tbl TEXT PRIMARY KEY, digest BLOB NOT NULL);"),
    // Version 5: see the module docs; also erasure, consent deadlines,
    // removed members and bounded holding.
    Migration::Code(to_v5),
];

const V5_TABLES: &str = "
    CREATE TABLE record_keys_v5 (
        ordinal INTEGER PRIMARY KEY, network BLOB NOT NULL, record_tag BLOB NOT NULL,
        key_id BLOB NOT NULL, key BLOB NOT NULL, UNIQUE (network, record_tag, key_id));
    CREATE TABLE records_v5 (
        network BLOB NOT NULL, record_tag BLOB NOT NULL, name BLOB NOT NULL, doc BLOB,
        PRIMARY KEY (network, record_tag));
    CREATE TABLE record_increments_v5 (
        network BLOB NOT NULL, record_tag BLOB NOT NULL, seq INTEGER NOT NULL,
        bytes BLOB NOT NULL, PRIMARY KEY (network, record_tag, seq));
    CREATE TABLE withheld_keys_v5 (
        network BLOB NOT NULL, record_tag BLOB NOT NULL, key_id BLOB NOT NULL,
        PRIMARY KEY (network, record_tag, key_id));
    CREATE TABLE withholding_v5 (
        network BLOB NOT NULL, record_tag BLOB NOT NULL, key_id BLOB NOT NULL,
        PRIMARY KEY (network, record_tag));
    CREATE TABLE pending_v5 (
        network BLOB NOT NULL, id BLOB NOT NULL, author BLOB NOT NULL, seq INTEGER NOT NULL,
        bytes BLOB NOT NULL, reason TEXT NOT NULL, relay_pos INTEGER,
        PRIMARY KEY (network, id));
    CREATE TABLE relayed (
        network BLOB NOT NULL, id BLOB NOT NULL, PRIMARY KEY (network, id));
    CREATE TABLE erased (
        network BLOB NOT NULL, record_tag BLOB NOT NULL, name BLOB NOT NULL,
        entry_id BLOB NOT NULL, author BLOB NOT NULL, time_ms INTEGER NOT NULL,
        scope INTEGER NOT NULL, PRIMARY KEY (network, record_tag));
    CREATE TABLE shredded_keys (
        network BLOB NOT NULL, record_tag BLOB NOT NULL, key_id BLOB NOT NULL,
        PRIMARY KEY (network, record_tag, key_id));
    CREATE TABLE shares (
        from_network BLOB NOT NULL, to_network BLOB NOT NULL, purpose TEXT NOT NULL,
        PRIMARY KEY (from_network, to_network, purpose));
    CREATE TABLE consent_due (
        network BLOB NOT NULL, record_tag BLOB NOT NULL, name BLOB NOT NULL,
        from_network BLOB NOT NULL, purpose TEXT NOT NULL, due_ms INTEGER NOT NULL,
        PRIMARY KEY (network, record_tag));
    CREATE INDEX consent_due_by_time ON consent_due (due_ms);
    CREATE TABLE removed_members (
        network BLOB NOT NULL, author BLOB NOT NULL, removed_epoch INTEGER NOT NULL,
        last_seq INTEGER NOT NULL, PRIMARY KEY (network, author));
    ALTER TABLE networks ADD COLUMN refetch_after INTEGER;";

const V5_SWAP: &str = "
    DROP TABLE record_keys; ALTER TABLE record_keys_v5 RENAME TO record_keys;
    DROP TABLE records; ALTER TABLE records_v5 RENAME TO records;
    DROP TABLE record_increments; ALTER TABLE record_increments_v5 RENAME TO record_increments;
    DROP TABLE withheld_keys; ALTER TABLE withheld_keys_v5 RENAME TO withheld_keys;
    DROP TABLE withholding; ALTER TABLE withholding_v5 RENAME TO withholding;
    DROP TABLE pending; ALTER TABLE pending_v5 RENAME TO pending;
    CREATE INDEX pending_by_author ON pending (network, author, seq);
    ALTER TABLE entries DROP COLUMN relayed;";

struct Sealer<'a> {
    keys: &'a Keys<'a>,
}

impl Sealer<'_> {
    fn tag(&self, network: &[u8], record: &str) -> RecordTag {
        tag_of(self.keys.tag, network, record)
    }

    fn wrap(&self, label: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; NONCE_LEN] = self
            .keys
            .crypto
            .random_array()
            .map_err(|_| StoreError::Randomness)?;
        self.keys
            .storage
            .wrap(label, plain, nonce)
            .map_err(|_| StoreError::Corrupt("secret"))
    }

    fn unwrap(
        &self,
        label: &[u8],
        wrapped: &[u8],
        what: &'static str,
    ) -> Result<Vec<u8>, StoreError> {
        self.keys
            .storage
            .unwrap_secret(label, wrapped)
            .map_err(|_| StoreError::Unwrap(what))
    }
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], map)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The label scheme of [`super::records`], reproduced for the move.
fn row_label(kind: &[u8], network: &[u8], tag: &RecordTag, extra: &[u8]) -> Vec<u8> {
    let mut label = b"careledger/v1/".to_vec();
    label.extend_from_slice(kind);
    label.push(0);
    label.extend_from_slice(&(network.len() as u16).to_be_bytes());
    label.extend_from_slice(network);
    label.extend_from_slice(tag);
    label.extend_from_slice(extra);
    label
}

fn to_v5(conn: &Connection, keys: &Keys<'_>) -> Result<(), StoreError> {
    let sealer = Sealer { keys };
    conn.execute_batch(V5_TABLES)?;

    // Epoch keys: re-wrapped under a label bound to network and epoch.
    for (rowid, network, epoch, wrapped) in
        rows(conn, "SELECT rowid, network, epoch, key FROM epochs", |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?
    {
        let key = zeroize::Zeroizing::new(sealer.unwrap(
            b"careledger/v1/epoch-key",
            &wrapped,
            "epoch key",
        )?);
        let label = super::epoch_label(&network, epoch.max(0) as u64);
        conn.execute(
            "UPDATE epochs SET key = ?1 WHERE rowid = ?2",
            params![sealer.wrap(&label, &key)?, rowid],
        )?;
    }

    // Record keys: by tag, the record's name sealed with the key.
    let old_keys = rows(
        conn,
        "SELECT network, record, key_id, key FROM record_keys ORDER BY rowid",
        |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        },
    )?;
    for (ordinal, (network, record, key_id, wrapped)) in old_keys.into_iter().enumerate() {
        let key = zeroize::Zeroizing::new(sealer.unwrap(
            b"careledger/v1/record-key",
            &wrapped,
            "record key",
        )?);
        if key.len() != KEY_LEN || record.len() > 255 {
            return Err(StoreError::Corrupt("record_keys"));
        }
        let tag = sealer.tag(&network, &record);
        let mut plain = zeroize::Zeroizing::new(vec![record.len() as u8]);
        plain.extend_from_slice(record.as_bytes());
        plain.extend_from_slice(&key);
        let sealed = sealer.wrap(&row_label(b"record-key", &network, &tag, &key_id), &plain)?;
        conn.execute(
            "INSERT INTO record_keys_v5 (ordinal, network, record_tag, key_id, key)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ordinal as i64 + 1, network, tag.as_slice(), key_id, sealed],
        )?;
    }

    // Materialised records: one row per record (name sealed), base if any,
    // increments by tag (their seal already binds network and record).
    let names = rows(
        conn,
        "SELECT network, record FROM records UNION SELECT network, record FROM record_increments",
        |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)),
    )?;
    for (network, record) in names {
        let tag = sealer.tag(&network, &record);
        let doc: Option<Vec<u8>> = conn
            .query_row(
                "SELECT doc FROM records WHERE network = ?1 AND record = ?2",
                params![network, record],
                |r| r.get(0),
            )
            .ok();
        let name = sealer.wrap(
            &row_label(b"record-name", &network, &tag, &[]),
            record.as_bytes(),
        )?;
        conn.execute(
            "INSERT INTO records_v5 (network, record_tag, name, doc) VALUES (?1, ?2, ?3, ?4)",
            params![network, tag.as_slice(), name, doc],
        )?;
        // A base sealed under the old label still opens: the label is unchanged.
        debug_assert!(!doc_label(&network, &record).is_empty());
        conn.execute(
            "INSERT INTO record_increments_v5 (network, record_tag, seq, bytes)
             SELECT network, ?3, seq, bytes FROM record_increments
             WHERE network = ?1 AND record = ?2",
            params![network, record, tag.as_slice()],
        )?;
    }

    for (table, has_key) in [("withheld_keys", true), ("withholding", true)] {
        debug_assert!(has_key);
        for (network, record, key_id) in rows(
            conn,
            &format!("SELECT network, record, key_id FROM {table}"),
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            },
        )? {
            let tag = sealer.tag(&network, &record);
            conn.execute(
                &format!(
                    "INSERT OR IGNORE INTO {table}_v5 (network, record_tag, key_id) VALUES (?1, ?2, ?3)"
                ),
                params![network, tag.as_slice(), key_id],
            )?;
        }
    }

    // Held entries: with their author and seq (for the caps); relay
    // position unknown.
    for (network, id, bytes, reason) in rows(
        conn,
        "SELECT network, id, bytes, reason FROM pending ORDER BY rowid",
        |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    )? {
        let Ok(entry) = Entry::decode(&bytes) else {
            continue;
        };
        conn.execute(
            "INSERT INTO pending_v5 (network, id, author, seq, bytes, reason, relay_pos)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
            params![
                network,
                id,
                entry.header.author.0.as_slice(),
                entry.header.seq as i64,
                bytes,
                reason
            ],
        )?;
    }

    conn.execute_batch(
        "INSERT INTO relayed (network, id) SELECT network, id FROM entries WHERE relayed = 1;",
    )?;
    conn.execute_batch(V5_SWAP)?;
    seal_mls_values(conn, keys.mls)
}

/// Tables of the store's own schema and refinery's history: not MLS state.
fn is_mls_table(name: &str) -> bool {
    super::tables::ours(name).is_none()
        && name != seal::DIGESTS
        && name != "openmls_sqlite_storage_migrations"
        && !name.starts_with("sqlite_")
}

/// Seal every BLOB column of the MLS tables (keys and values alike: the
/// storage crate encodes both through its codec).
fn seal_mls_values(conn: &Connection, keys: &MlsKeys) -> Result<(), StoreError> {
    for table in seal::sealed_tables(conn)? {
        if !is_mls_table(&table) {
            continue;
        }
        let blob_columns = rows(conn, &format!("PRAGMA table_info(\"{table}\")"), |r| {
            Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?
        .into_iter()
        .filter(|(_, kind)| kind.eq_ignore_ascii_case("BLOB"))
        .map(|(name, _)| name);
        for column in blob_columns {
            for (rowid, plain) in rows(
                conn,
                &format!(
                    "SELECT rowid, \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"
                ),
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )? {
                let sealed = keys
                    .seal(&plain)
                    .map_err(|_| StoreError::Corrupt("MLS state"))?;
                conn.execute(
                    &format!("UPDATE \"{table}\" SET \"{column}\" = ?1 WHERE rowid = ?2"),
                    params![sealed, rowid],
                )?;
            }
        }
    }
    Ok(())
}
