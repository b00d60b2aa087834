//! One SQLite file per node (DESIGN §9).
//!
//! Flow: the host calls [`Store::open`] with a path and its 32-byte
//! [`StorageKey`] (or [`Store::open_in_memory`] in tests), then hands the store
//! to [`Node`](crate::node::Node). The store holds entries as received, the
//! key store (every secret wrapped under the storage key), MLS state (through
//! `openmls_sqlite_storage` on the same connection, so one transaction covers
//! both), materialised records (a cache rebuildable from entries), the outbox
//! and relay cursors.
//!
//! Durability: WAL mode with `synchronous = FULL`; the node wraps each ingest
//! batch in one transaction ([`Store::transaction`]), and only after it commits
//! does it acknowledge the batch, so a crash leaves no torn ledger or MLS state.
//! A second process may open the same file (busy timeout 5 s).
//!
//! The in-memory store is the same code on SQLite's in-memory database, so
//! tests exercise the real schema and transactions.
//!
//! Known limit: MLS transport secrets written by `openmls_sqlite_storage`
//! (HPKE leaf keys, ratchet secrets of recent epochs) are stored as that crate
//! writes them, not wrapped under the storage key; the identity key and all
//! content keys (epoch and record keys) are wrapped.
//!
//! Tampering at rest: every row of every table, MLS state included, is
//! authenticated under the storage key (`seal`: triggers keep a per-table
//! XOR of row HMACs). Opening verifies the whole file (`PRAGMA
//! integrity_check` and every digest) and refuses an altered one with
//! [`StoreError::Tampered`].
//!
//! ```
//! use careledger::keys::StorageKey;
//! use careledger::store::{OpenStoreError, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("node.sqlite");
//! drop(Store::open(&path, &StorageKey::from_bytes([1; 32])).unwrap());
//! let wrong = Store::open(&path, &StorageKey::from_bytes([2; 32]));
//! assert!(matches!(wrong, Err(OpenStoreError::WrongStorageKey)));
//! ```

use std::cell::Cell;
use std::path::Path;

use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::{Codec, SqliteStorageProvider};
use openmls_traits::random::OpenMlsRand;
use rusqlite::{params, Connection, OptionalExtension};

use crate::body::{EpochGrant, MemberSpan, RecordKeyGrant, RecordKeyId};
use crate::entry::{AuthorId, EntryHeader, EntryId};
use crate::keys::{SecretKey, StorageKey, NONCE_LEN};

mod rules;
mod seal;

/// Current schema version; [`Store::open`] migrates older files up to it.
pub const SCHEMA_VERSION: i64 = 4;

/// First schema version whose content is sealed (verified on open).
const SEALED_SINCE: i64 = 4;

const KEY_CHECK_LABEL: &[u8] = b"careledger/v1/storage-key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"careledger storage key check";

const MIGRATIONS: &[&str] = &[
    // Version 1.
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
    // Version 2: remember which of our entries came back through the relay,
    // so heads announcements only trigger resends of entries lost in transit.
    // Outbox rows for our entries point at the stored entry instead of
    // holding a second copy of it.
    // Records are saved as a base plus increments (the changes of each
    // later transaction), compacted now and then.
    "ALTER TABLE entries ADD COLUMN relayed INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE outbox ADD COLUMN entry_id BLOB;
     CREATE TABLE record_increments (
        network BLOB NOT NULL, record TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL,
        PRIMARY KEY (network, record, seq));",
    // Version 3: consent enforcement. `withheld_keys` lists record keys that
    // are never granted to a network (announced by key-withheld entries,
    // ours or others'); `withholding` names the records this node currently
    // writes under such a key, one per record.
    "CREATE TABLE withheld_keys (
        network BLOB NOT NULL, record TEXT NOT NULL, key_id BLOB NOT NULL,
        PRIMARY KEY (network, record, key_id));
     CREATE TABLE withholding (
        network BLOB NOT NULL, record TEXT NOT NULL, key_id BLOB NOT NULL,
        PRIMARY KEY (network, record));",
    // Version 4: every row of every table is sealed under the storage key
    // (see `seal`); the triggers and digests are (re)made after migrating.
    "CREATE TABLE row_digests (tbl TEXT PRIMARY KEY, digest BLOB NOT NULL);",
];

/// JSON codec for openmls state; openmls types are plain serde structs.
#[derive(Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    type Error = serde_json::Error;

    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(value)
    }

    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(slice)
    }
}

/// The openmls storage provider on the store's connection.
pub(crate) type MlsStorage<'a> = SqliteStorageProvider<JsonCodec, &'a Connection>;

/// The provider openmls calls need: RustCrypto plus storage on our connection.
pub(crate) struct Provider<'a> {
    crypto: &'a RustCrypto,
    storage: MlsStorage<'a>,
}

impl<'a> openmls_traits::OpenMlsProvider for Provider<'a> {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MlsStorage<'a>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        self.crypto
    }
}

/// Opening a store failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The file exists but was written under another storage key.
    #[error("wrong storage key for this store")]
    WrongStorageKey,
    /// The file was written by a newer version of careledger.
    #[error("store schema version {found} is newer than this library supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this library knows.
        supported: i64,
    },
    /// SQLite could not open or migrate the file (e.g. not a database, no permission).
    #[error("cannot open store: {}", describe_sqlite(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// The MLS storage tables could not be created.
    #[error("cannot migrate MLS storage: {0}")]
    MlsMigration(String),
    /// The store's contents are inconsistent.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A store read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (disk full, locked, corrupt file…).
    #[error("store I/O failed: {}", describe_sqlite(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// A wrapped secret in the store does not open under the storage key.
    #[error("a secret in the store cannot be unwrapped (store tampered or corrupt): {0}")]
    Unwrap(&'static str),
    /// A stored value has the wrong shape.
    #[error("store value `{0}` is corrupt")]
    Corrupt(&'static str),
    /// The randomness source failed.
    #[error("randomness source failed")]
    Randomness,
    /// The file's content does not match its seal: changed on disk.
    #[error("store content altered at rest (tampered or corrupt): {0}")]
    Tampered(String),
}

/// SQLite's message for `error`, naming the file operation that failed when
/// SQLite's extended code tells it (its message alone is just "disk I/O
/// error" for a failed write, fsync or truncate alike).
fn describe_sqlite(error: &rusqlite::Error) -> String {
    use rusqlite::ffi;
    let rusqlite::Error::SqliteFailure(failure, _) = error else {
        return error.to_string();
    };
    let operation = match failure.extended_code {
        ffi::SQLITE_IOERR_READ | ffi::SQLITE_IOERR_SHORT_READ => "reading the file failed",
        ffi::SQLITE_IOERR_WRITE => "writing the file failed",
        ffi::SQLITE_IOERR_FSYNC | ffi::SQLITE_IOERR_DIR_FSYNC => {
            "fsync (flushing the file to disk) failed"
        }
        ffi::SQLITE_IOERR_TRUNCATE => "truncating the file failed",
        ffi::SQLITE_IOERR_FSTAT => "reading the file's size failed",
        ffi::SQLITE_IOERR_DELETE | ffi::SQLITE_IOERR_DELETE_NOENT => {
            "deleting a journal file failed"
        }
        ffi::SQLITE_IOERR_LOCK
        | ffi::SQLITE_IOERR_RDLOCK
        | ffi::SQLITE_IOERR_UNLOCK
        | ffi::SQLITE_IOERR_CHECKRESERVEDLOCK => "locking the file failed",
        ffi::SQLITE_IOERR_SHMOPEN
        | ffi::SQLITE_IOERR_SHMSIZE
        | ffi::SQLITE_IOERR_SHMMAP
        | ffi::SQLITE_IOERR_SHMLOCK => "the shared-memory WAL index failed",
        _ => return error.to_string(),
    };
    format!("{error} ({operation})")
}

/// A network row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRow {
    /// MLS group id.
    pub id: Vec<u8>,
    /// Human label.
    pub label: String,
    /// `active` or `removed`.
    pub state: String,
    /// First epoch this node was a member of.
    pub joined_epoch: u64,
    /// Relay position already consumed.
    pub relay_cursor: u64,
}

/// The pending commit of a network awaiting its turn in relay order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCommitRow {
    /// The epoch the commit was made for.
    pub epoch: u64,
    /// The serialized Commit message.
    pub commit: Vec<u8>,
    /// The serialized Welcome, when the commit adds members.
    pub welcome: Option<Vec<u8>>,
    /// The encoded intent, to re-propose if the commit loses.
    pub intent: Vec<u8>,
}

fn record_label(network: &[u8], record: &str) -> Vec<u8> {
    let mut label = b"careledger/v1/record-doc/".to_vec();
    label.extend_from_slice(network);
    label.push(0);
    label.extend_from_slice(record.as_bytes());
    label
}

/// `(outbox id, network, message)`.
pub(crate) type OutboxRow = (i64, Vec<u8>, Vec<u8>);

/// A node's SQLite file.
pub struct Store {
    conn: Connection,
    storage_key: StorageKey,
    crypto: RustCrypto,
    depth: Cell<u32>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn blob_u64(value: i64) -> u64 {
    value.max(0) as u64
}

impl Store {
    /// Open (or create) the store at `path`.
    pub fn open(path: &Path, storage_key: &StorageKey) -> Result<Store, OpenStoreError> {
        if !path.exists() {
            Self::create_file(path, storage_key)?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Self::init(conn, storage_key)
    }

    /// Build a new store as `<path>.creating` and move it to `path` only once
    /// its schema and key check are complete, so a failing disk (full, I/O
    /// error) cannot leave a half-made store behind: the MLS storage
    /// migrations record each step in a transaction of its own, and a file
    /// interrupted between two of them could never be opened again ("table
    /// already exists"). A leftover `.creating` file is simply rebuilt.
    fn create_file(path: &Path, storage_key: &StorageKey) -> Result<(), OpenStoreError> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".creating");
        let building = path.with_file_name(name);
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut leftover = building.clone().into_os_string();
            leftover.push(suffix);
            let _ = std::fs::remove_file(leftover);
        }
        // Rollback-journal mode while building: everything committed is in
        // the file itself when it is moved (WAL mode is set on first open).
        let conn = Connection::open(&building)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let Store { conn, .. } = Self::init(conn, storage_key)?;
        conn.close().map_err(|(_, error)| error)?;
        let moved = |error: std::io::Error| {
            OpenStoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("cannot move the new store into place: {error}")),
            ))
        };
        std::fs::rename(&building, path).map_err(moved)?;
        // Make the rename durable where directories can be synced.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }

    /// A store in SQLite's in-memory database (tests, benchmarks).
    pub fn open_in_memory(storage_key: &StorageKey) -> Result<Store, OpenStoreError> {
        Self::init(Connection::open_in_memory()?, storage_key)
    }

    fn init(conn: Connection, storage_key: &StorageKey) -> Result<Store, OpenStoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // REPLACE must fire the delete triggers that keep the seal.
        conn.pragma_update(None, "recursive_triggers", "ON")?;
        seal::register(&conn, storage_key)?;
        let mut store = Store {
            conn,
            storage_key: storage_key.clone(),
            crypto: RustCrypto::default(),
            depth: Cell::new(0),
        };
        store.migrate()?;
        store.check_storage_key(true)?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), OpenStoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(OpenStoreError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version >= SEALED_SINCE {
            // Before anything is written: the key, then the whole content.
            self.check_storage_key(false)?;
            seal::verify(&self.conn, &self.storage_key)?;
        }
        let tx = self.conn.transaction()?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
        }
        tx.commit()?;
        self.check_mls_migration_history()?;
        let mls_migrations = |conn: &Connection| -> Result<i64, rusqlite::Error> {
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                 AND name = 'openmls_sqlite_storage_migrations'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .and_then(|exists| {
                if exists == 0 {
                    return Ok(0);
                }
                conn.query_row(
                    "SELECT count(*) FROM openmls_sqlite_storage_migrations",
                    [],
                    |r| r.get(0),
                )
            })
        };
        let mls_before = mls_migrations(&self.conn)?;
        let mut mls = SqliteStorageProvider::<JsonCodec, &mut Connection>::new(&mut self.conn);
        mls.run_migrations().map_err(|error| {
            // Keep SQLite's own error (disk full, I/O) typed, so callers
            // can tell a failing disk from a broken schema.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(inner) = cause {
                if let Some(rusqlite::Error::SqliteFailure(failure, message)) =
                    inner.downcast_ref::<rusqlite::Error>()
                {
                    return OpenStoreError::Sqlite(rusqlite::Error::SqliteFailure(
                        *failure,
                        message.clone(),
                    ));
                }
                cause = inner.source();
            }
            OpenStoreError::MlsMigration(error.to_string())
        })?;
        if version < SCHEMA_VERSION || mls_migrations(&self.conn)? != mls_before {
            let tx = self.conn.transaction()?;
            seal::reseal(&tx, &self.storage_key)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// refinery, which runs the MLS storage migrations, unwraps the
    /// timestamp and checksum it reads back from its history table, so a
    /// corrupt row would panic it: such a store is refused as corrupt first.
    fn check_mls_migration_history(&self) -> Result<(), OpenStoreError> {
        use time::format_description::well_known::Rfc3339;
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = 'openmls_sqlite_storage_migrations')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT applied_on, checksum FROM openmls_sqlite_storage_migrations")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            // Values of another type make refinery's own read fail cleanly.
            if let (Ok(applied_on), Ok(checksum)) =
                (row.get::<_, String>(0), row.get::<_, String>(1))
            {
                if time::OffsetDateTime::parse(&applied_on, &Rfc3339).is_err()
                    || checksum.parse::<u64>().is_err()
                {
                    return Err(StoreError::Corrupt("openmls_sqlite_storage_migrations").into());
                }
            }
        }
        Ok(())
    }

    /// Check the storage key against the file; a new file (`create`) gets its check value.
    fn check_storage_key(&self, create: bool) -> Result<(), OpenStoreError> {
        match self.meta("storage_key_check")? {
            Some(wrapped) => match self.storage_key.unwrap_secret(KEY_CHECK_LABEL, &wrapped) {
                Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
                _ => Err(OpenStoreError::WrongStorageKey),
            },
            None if !create => Err(StoreError::Tampered("storage key check missing".into()).into()),
            None => {
                let wrapped = self
                    .storage_key
                    .wrap(KEY_CHECK_LABEL, KEY_CHECK_PLAINTEXT, self.nonce()?)
                    .map_err(|_| StoreError::Corrupt("storage_key_check"))?;
                self.set_meta("storage_key_check", &wrapped)?;
                Ok(())
            }
        }
    }

    pub(crate) fn provider(&self) -> Provider<'_> {
        Provider {
            crypto: &self.crypto,
            storage: SqliteStorageProvider::new(&self.conn),
        }
    }

    pub(crate) fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }

    /// Fresh random bytes from the provider's randomness.
    pub(crate) fn random<const N: usize>(&self) -> Result<[u8; N], StoreError> {
        self.crypto
            .random_array::<N>()
            .map_err(|_| StoreError::Randomness)
    }

    fn nonce(&self) -> Result<[u8; NONCE_LEN], StoreError> {
        self.random()
    }

    /// Begin a transaction, or join the one already open.
    pub(crate) fn begin(&self) -> Result<(), StoreError> {
        let depth = self.depth.get();
        if depth == 0 {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        self.depth.set(depth + 1);
        Ok(())
    }

    /// Commit the outermost transaction (inner levels just unwind).
    pub(crate) fn commit(&self) -> Result<(), StoreError> {
        let depth = self.depth.get().saturating_sub(1);
        self.depth.set(depth);
        if depth == 0 {
            if let Err(error) = self.conn.execute_batch("COMMIT") {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Roll back everything since the outermost [`Store::begin`].
    pub(crate) fn rollback(&self) {
        if self.depth.get() > 0 {
            self.depth.set(0);
            // A failed ROLLBACK means SQLite already rolled back on its own.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Run `f` in one SQLite transaction; on error everything it wrote,
    /// including MLS state, is rolled back.
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.begin()?;
        match f() {
            Ok(value) => {
                self.commit()?;
                Ok(value)
            }
            Err(error) => {
                self.rollback();
                Err(error)
            }
        }
    }

    // ---- meta -------------------------------------------------------------

    pub(crate) fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub(crate) fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        Ok(())
    }

    pub(crate) fn wrap(&self, label: &[u8], secret: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.storage_key
            .wrap(label, secret, self.nonce()?)
            .map_err(|_| StoreError::Corrupt("secret"))
    }

    pub(crate) fn unwrap_secret(
        &self,
        label: &[u8],
        wrapped: &[u8],
        what: &'static str,
    ) -> Result<SecretKey, StoreError> {
        let plain = self
            .storage_key
            .unwrap_secret(label, wrapped)
            .map_err(|_| StoreError::Unwrap(what))?;
        SecretKey::from_slice(&plain).ok_or(StoreError::Corrupt(what))
    }

    // ---- networks ---------------------------------------------------------

    pub(crate) fn insert_network(
        &self,
        id: &[u8],
        label: &str,
        joined_epoch: u64,
    ) -> Result<(), StoreError> {
        self.conn.prepare_cached(
            "INSERT INTO networks (id, label, state, joined_epoch) VALUES (?1, ?2, 'active', ?3)",
        )?.execute(
            params![id, label, joined_epoch as i64],
        )?;
        Ok(())
    }

    /// All networks this node belongs or belonged to.
    pub fn networks(&self) -> Result<Vec<NetworkRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, label, state, joined_epoch, relay_cursor FROM networks ORDER BY label, id",
        )?;
        let rows = stmt.query_map([], Self::network_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn network(&self, id: &[u8]) -> Result<Option<NetworkRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, label, state, joined_epoch, relay_cursor FROM networks WHERE id = ?1",
            )?
            .query_row([id], Self::network_row)
            .optional()?)
    }

    fn network_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRow> {
        Ok(NetworkRow {
            id: r.get(0)?,
            label: r.get(1)?,
            state: r.get(2)?,
            joined_epoch: blob_u64(r.get(3)?),
            relay_cursor: blob_u64(r.get(4)?),
        })
    }

    pub(crate) fn set_network_state(&self, id: &[u8], state: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE networks SET state = ?2 WHERE id = ?1")?
            .execute(params![id, state])?;
        Ok(())
    }

    pub(crate) fn set_relay_cursor(&self, id: &[u8], cursor: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE networks SET relay_cursor = ?2 WHERE id = ?1")?
            .execute(params![id, cursor as i64])?;
        Ok(())
    }

    // ---- epochs and rosters -----------------------------------------------

    pub(crate) fn put_epoch_key(
        &self,
        network: &[u8],
        grant: &EpochGrant,
    ) -> Result<(), StoreError> {
        let known = self
            .conn
            .prepare_cached("SELECT 1 FROM epochs WHERE network = ?1 AND epoch = ?2")?
            .exists(params![network, grant.epoch as i64])?;
        if known {
            // Epoch keys never change once recorded.
            return Ok(());
        }
        let wrapped = self.wrap(b"careledger/v1/epoch-key", grant.key.as_bytes())?;
        self.conn
            .prepare_cached("INSERT INTO epochs (network, epoch, key) VALUES (?1, ?2, ?3)")?
            .execute(params![network, grant.epoch as i64, wrapped])?;
        Ok(())
    }

    /// Record that a key was a member over `[from_epoch, to_epoch]`, extending
    /// an overlapping or adjacent span of the same key when there is one.
    pub(crate) fn add_member_span(
        &self,
        network: &[u8],
        span: &MemberSpan,
    ) -> Result<(), StoreError> {
        let author = AuthorId::of_public_key(&span.public_key);
        let (from, to) = (span.from_epoch as i64, span.to_epoch as i64);
        let extended = self
            .conn
            .prepare_cached(
                "UPDATE members SET from_epoch = min(from_epoch, ?4), to_epoch = max(to_epoch, ?5)
                 WHERE network = ?1 AND author = ?2 AND public_key = ?3
                   AND from_epoch <= ?5 + 1 AND to_epoch + 1 >= ?4",
            )?
            .execute(params![
                network,
                author.0.as_slice(),
                span.public_key,
                from,
                to
            ])?;
        if extended == 0 {
            self.conn
                .prepare_cached(
                    "INSERT INTO members (network, author, public_key, name, from_epoch, to_epoch)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    network,
                    author.0.as_slice(),
                    span.public_key,
                    span.name,
                    from,
                    to
                ])?;
        }
        Ok(())
    }

    pub(crate) fn epoch_key(
        &self,
        network: &[u8],
        epoch: u64,
    ) -> Result<Option<SecretKey>, StoreError> {
        let wrapped: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT key FROM epochs WHERE network = ?1 AND epoch = ?2")?
            .query_row(params![network, epoch as i64], |r| r.get(0))
            .optional()?;
        wrapped
            .map(|w| self.unwrap_secret(b"careledger/v1/epoch-key", &w, "epoch key"))
            .transpose()
    }

    /// The author's public key if it was a member at `epoch`.
    pub(crate) fn roster_public_key(
        &self,
        network: &[u8],
        epoch: u64,
        author: &AuthorId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT public_key FROM members WHERE network = ?1 AND author = ?2
                 AND from_epoch <= ?3 AND to_epoch >= ?3 LIMIT 1",
            )?
            .query_row(params![network, author.0.as_slice(), epoch as i64], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Every membership span of a network.
    pub(crate) fn member_spans(&self, network: &[u8]) -> Result<Vec<MemberSpan>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT public_key, name, from_epoch, to_epoch FROM members WHERE network = ?1
             ORDER BY from_epoch, author",
        )?;
        let rows = stmt.query_map([network], |r| {
            Ok(MemberSpan {
                public_key: r.get(0)?,
                name: r.get(1)?,
                from_epoch: blob_u64(r.get(2)?),
                to_epoch: blob_u64(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every epoch key of a network, oldest first.
    pub(crate) fn epoch_grants(&self, network: &[u8]) -> Result<Vec<EpochGrant>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT epoch, key FROM epochs WHERE network = ?1 ORDER BY epoch")?;
        let rows = stmt.query_map([network], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        rows.map(|row| {
            let (epoch, wrapped) = row?;
            Ok(EpochGrant {
                epoch: blob_u64(epoch),
                key: self.unwrap_secret(b"careledger/v1/epoch-key", &wrapped, "epoch key")?,
            })
        })
        .collect()
    }

    // ---- record keys ------------------------------------------------------

    pub(crate) fn put_record_key(
        &self,
        network: &[u8],
        grant: &RecordKeyGrant,
    ) -> Result<(), StoreError> {
        let wrapped = self.wrap(b"careledger/v1/record-key", grant.key.as_bytes())?;
        self.conn.prepare_cached(
            "INSERT OR IGNORE INTO record_keys (network, record, key_id, key) VALUES (?1, ?2, ?3, ?4)",
        )?.execute(
            params![network, grant.record, grant.key_id.as_slice(), wrapped],
        )?;
        Ok(())
    }

    pub(crate) fn record_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<Option<SecretKey>, StoreError> {
        let wrapped: Option<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT key FROM record_keys WHERE network = ?1 AND record = ?2 AND key_id = ?3",
            )?
            .query_row(params![network, record, key_id.as_slice()], |r| r.get(0))
            .optional()?;
        wrapped
            .map(|w| self.unwrap_secret(b"careledger/v1/record-key", &w, "record key"))
            .transpose()
    }

    /// The most recently stored key of a record: the one new changes are sealed under.
    pub(crate) fn current_record_key(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<RecordKeyGrant>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT key_id, key FROM record_keys WHERE network = ?1 AND record = ?2
                 ORDER BY rowid DESC LIMIT 1",
            )?
            .query_row(params![network, record], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(id, wrapped)| {
            Ok(RecordKeyGrant {
                record: record.to_owned(),
                key_id: id
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("record_keys.key_id"))?,
                key: self.unwrap_secret(b"careledger/v1/record-key", &wrapped, "record key")?,
            })
        })
        .transpose()
    }

    /// Mark a record key as withheld from the network (never granted).
    pub(crate) fn put_withheld_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO withheld_keys (network, record, key_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![network, record, key_id.as_slice()])?;
        Ok(())
    }

    /// Whether a record key is known to be withheld from the network.
    pub(crate) fn is_withheld_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM withheld_keys WHERE network = ?1 AND record = ?2 AND key_id = ?3",
            )?
            .exists(params![network, record, key_id.as_slice()])?)
    }

    /// Start (`Some`) or stop (`None`) writing a record under a withheld key.
    pub(crate) fn set_withholding(
        &self,
        network: &[u8],
        record: &str,
        key_id: Option<&RecordKeyId>,
    ) -> Result<(), StoreError> {
        match key_id {
            Some(key_id) => self
                .conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO withholding (network, record, key_id) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![network, record, key_id.as_slice()])?,
            None => self
                .conn
                .prepare_cached("DELETE FROM withholding WHERE network = ?1 AND record = ?2")?
                .execute(params![network, record])?,
        };
        Ok(())
    }

    /// The withheld key this node writes a record under, if it withholds it.
    pub(crate) fn withholding_key(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<RecordKeyGrant>, StoreError> {
        let key_id: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT key_id FROM withholding WHERE network = ?1 AND record = ?2")?
            .query_row(params![network, record], |r| r.get(0))
            .optional()?;
        let Some(key_id) = key_id else {
            return Ok(None);
        };
        let key_id: RecordKeyId = key_id
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("withholding.key_id"))?;
        let key = self
            .record_key(network, record, &key_id)?
            .ok_or(StoreError::Corrupt("withholding"))?;
        Ok(Some(RecordKeyGrant {
            record: record.to_owned(),
            key_id,
            key,
        }))
    }

    /// Every record key of a network that may be granted to it (withheld
    /// keys excluded), oldest first (so the last per record is current).
    pub(crate) fn record_key_grants(
        &self,
        network: &[u8],
    ) -> Result<Vec<RecordKeyGrant>, StoreError> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT record, key_id, key FROM record_keys k WHERE network = ?1
                 AND NOT EXISTS (SELECT 1 FROM withheld_keys w WHERE w.network = k.network
                                 AND w.record = k.record AND w.key_id = k.key_id)
                 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([network], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        rows.into_iter()
            .map(|(record, id, wrapped)| {
                Ok(RecordKeyGrant {
                    record,
                    key_id: id
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("record_keys.key_id"))?,
                    key: self.unwrap_secret(b"careledger/v1/record-key", &wrapped, "record key")?,
                })
            })
            .collect()
    }

    // ---- entries ----------------------------------------------------------

    pub(crate) fn insert_entry(
        &self,
        network: &[u8],
        id: &EntryId,
        header: &EntryHeader,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO entries (network, id, author, seq, epoch, kind, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                network,
                id.0.as_slice(),
                header.author.0.as_slice(),
                header.seq as i64,
                header.epoch as i64,
                header.kind as u8,
                bytes
            ])?;
        Ok(())
    }

    pub(crate) fn has_entry(&self, network: &[u8], id: &EntryId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM entries WHERE network = ?1 AND id = ?2")?
            .query_row(params![network, id.0.as_slice()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub(crate) fn entry_at(
        &self,
        network: &[u8],
        author: &AuthorId,
        seq: u64,
    ) -> Result<Option<EntryId>, StoreError> {
        let id: Option<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT id FROM entries WHERE network = ?1 AND author = ?2 AND seq = ?3",
            )?
            .query_row(params![network, author.0.as_slice(), seq as i64], |r| {
                r.get(0)
            })
            .optional()?;
        id.map(|id| EntryId::from_slice(&id).ok_or(StoreError::Corrupt("entries.id")))
            .transpose()
    }

    /// Per-author heads: `(author, seq, id)` of each author's latest entry.
    /// The latest entry of one author: `(seq, id)`.
    pub(crate) fn head_of(
        &self,
        network: &[u8],
        author: &AuthorId,
    ) -> Result<Option<(u64, EntryId)>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT seq, id FROM entries WHERE network = ?1 AND author = ?2
                 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![network, author.0.as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(seq, id)| {
            Ok((
                blob_u64(seq),
                EntryId::from_slice(&id).ok_or(StoreError::Corrupt("entries.id"))?,
            ))
        })
        .transpose()
    }

    pub(crate) fn heads(
        &self,
        network: &[u8],
    ) -> Result<Vec<(AuthorId, u64, EntryId)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT author, MAX(seq), id FROM entries WHERE network = ?1 GROUP BY author ORDER BY author",
        )?;
        let rows = stmt.query_map([network], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (author, seq, id) = row?;
            Ok((
                AuthorId::from_slice(&author).ok_or(StoreError::Corrupt("entries.author"))?,
                blob_u64(seq),
                EntryId::from_slice(&id).ok_or(StoreError::Corrupt("entries.id"))?,
            ))
        })
        .collect()
    }

    /// Our entry came back through the relay: it reached the log.
    pub(crate) fn mark_relayed(&self, network: &[u8], id: &EntryId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE entries SET relayed = 1 WHERE network = ?1 AND id = ?2 AND relayed = 0",
            )?
            .execute(params![network, id.0.as_slice()])?;
        Ok(())
    }

    /// Encoded entries of `author` with `seq > after` that were never seen on
    /// the relay, in chain order.
    pub(crate) fn unrelayed_entries_after(
        &self,
        network: &[u8],
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM entries WHERE network = ?1 AND author = ?2 AND seq > ?3
             AND relayed = 0 ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![network, author.0.as_slice(), after as i64, limit as i64],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every stored entry of a network in local append order.
    pub(crate) fn entries(&self, network: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bytes FROM entries WHERE network = ?1 ORDER BY local_order")?;
        let rows = stmt.query_map([network], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Overwrite one stored entry's bytes, to model a tampered disk (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
    pub fn overwrite_entry_bytes_for_testing(
        &self,
        network: &[u8],
        local_index: usize,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let changed = self.conn.prepare_cached(
            "UPDATE entries SET bytes = ?3 WHERE network = ?1 AND local_order =
               (SELECT local_order FROM entries WHERE network = ?1 ORDER BY local_order LIMIT 1 OFFSET ?2)",
        )?.execute(
            params![network, local_index as i64, bytes],
        )?;
        Ok(changed == 1)
    }

    // ---- pending, forks, flags --------------------------------------------

    pub(crate) fn put_pending(
        &self,
        network: &[u8],
        id: &EntryId,
        bytes: &[u8],
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO pending (network, id, bytes, reason) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (network, id) DO UPDATE SET reason = excluded.reason",
            )?
            .execute(params![network, id.0.as_slice(), bytes, reason])?;
        Ok(())
    }

    pub(crate) fn pending(&self, network: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bytes FROM pending WHERE network = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([network], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn pending_reasons(&self, network: &[u8]) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT reason FROM pending WHERE network = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([network], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn delete_pending(&self, network: &[u8], id: &EntryId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM pending WHERE network = ?1 AND id = ?2")?
            .execute(params![network, id.0.as_slice()])?;
        Ok(())
    }

    pub(crate) fn put_fork(
        &self,
        network: &[u8],
        author: &AuthorId,
        seq: u64,
        kept: &EntryId,
        other: &EntryId,
        other_bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO forks (network, author, seq, kept_id, other_id, other_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                network,
                author.0.as_slice(),
                seq as i64,
                kept.0.as_slice(),
                other.0.as_slice(),
                other_bytes
            ])?;
        Ok(())
    }

    pub(crate) fn fork_count(&self, network: &[u8]) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM forks WHERE network = ?1")?
            .query_row([network], |r| r.get(0))?;
        Ok(blob_u64(n))
    }

    pub(crate) fn flag_author(
        &self,
        network: &[u8],
        author: &AuthorId,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO flagged (network, author, reason) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![network, author.0.as_slice(), reason])?;
        Ok(())
    }

    pub(crate) fn flagged(&self, network: &[u8]) -> Result<Vec<(AuthorId, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT author, reason FROM flagged WHERE network = ?1 ORDER BY author, reason",
        )?;
        let rows = stmt.query_map([network], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (author, reason) = row?;
            Ok((
                AuthorId::from_slice(&author).ok_or(StoreError::Corrupt("flagged.author"))?,
                reason,
            ))
        })
        .collect()
    }

    // ---- records ----------------------------------------------------------

    /// Store a materialised record, sealed under the storage key (bound to
    /// network and record, so rows cannot be swapped).
    pub(crate) fn save_record(
        &self,
        network: &[u8],
        record: &str,
        doc: &[u8],
    ) -> Result<(), StoreError> {
        let doc = self.wrap(&record_label(network, record), doc)?;
        let doc = doc.as_slice();
        self.conn
            .prepare_cached("DELETE FROM record_increments WHERE network = ?1 AND record = ?2")?
            .execute(params![network, record])?;
        self.conn
            .prepare_cached(
                "INSERT INTO records (network, record, doc) VALUES (?1, ?2, ?3)
             ON CONFLICT (network, record) DO UPDATE SET doc = excluded.doc",
            )?
            .execute(params![network, record, doc])?;
        Ok(())
    }

    pub(crate) fn load_record(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT doc FROM records WHERE network = ?1 AND record = ?2")?
            .query_row(params![network, record], |r| r.get(0))
            .optional()?;
        sealed
            .map(|sealed| {
                self.storage_key
                    .unwrap_secret(&record_label(network, record), &sealed)
                    .map_err(|_| StoreError::Unwrap("record"))
            })
            .transpose()
    }

    /// Append the changes of one transaction to a saved record; returns how
    /// many increments the record now has.
    pub(crate) fn append_record_increment(
        &self,
        network: &[u8],
        record: &str,
        increment: &[u8],
    ) -> Result<usize, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM record_increments WHERE network = ?1 AND record = ?2",
            )?
            .query_row(params![network, record], |r| r.get(0))?;
        let sealed = self.wrap(&record_label(network, record), increment)?;
        self.conn
            .prepare_cached(
                "INSERT INTO record_increments (network, record, seq, bytes) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![network, record, count, sealed])?;
        Ok(count.max(0) as usize + 1)
    }

    /// The increments saved after a record's base, in order.
    pub(crate) fn record_increments(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM record_increments WHERE network = ?1 AND record = ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![network, record], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|sealed| {
            self.storage_key
                .unwrap_secret(&record_label(network, record), &sealed?)
                .map_err(|_| StoreError::Unwrap("record increment"))
        })
        .collect()
    }

    /// Whether a materialised record exists (without reading it).
    pub(crate) fn has_record(&self, network: &[u8], record: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM records WHERE network = ?1 AND record = ?2
                 UNION ALL
                 SELECT 1 FROM record_increments WHERE network = ?1 AND record = ?2 LIMIT 1",
            )?
            .exists(params![network, record])?)
    }

    pub(crate) fn records(&self, network: &[u8]) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT record FROM records WHERE network = ?1
             UNION
             SELECT record FROM record_increments WHERE network = ?1
             ORDER BY record",
        )?;
        let rows = stmt.query_map([network], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn clear_records(&self, network: &[u8]) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM record_increments WHERE network = ?1")?
            .execute([network])?;
        self.conn
            .execute("DELETE FROM records WHERE network = ?1", [network])?;
        Ok(())
    }

    // ---- pending commits --------------------------------------------------

    pub(crate) fn set_pending_commit(
        &self,
        network: &[u8],
        row: &PendingCommitRow,
    ) -> Result<(), StoreError> {
        self.conn.prepare_cached(
            "INSERT INTO pending_commit (network, epoch, commit_msg, welcome, intent)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (network) DO UPDATE SET epoch = excluded.epoch,
               commit_msg = excluded.commit_msg, welcome = excluded.welcome, intent = excluded.intent",
        )?.execute(
            params![network, row.epoch as i64, row.commit, row.welcome, row.intent],
        )?;
        Ok(())
    }

    pub(crate) fn pending_commit(
        &self,
        network: &[u8],
    ) -> Result<Option<PendingCommitRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT epoch, commit_msg, welcome, intent FROM pending_commit WHERE network = ?1",
            )?
            .query_row([network], |r| {
                Ok(PendingCommitRow {
                    epoch: blob_u64(r.get(0)?),
                    commit: r.get(1)?,
                    welcome: r.get(2)?,
                    intent: r.get(3)?,
                })
            })
            .optional()?)
    }

    pub(crate) fn clear_pending_commit(&self, network: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pending_commit WHERE network = ?1", [network])?;
        Ok(())
    }

    // ---- outbox -----------------------------------------------------------

    pub(crate) fn push_outbox(&self, network: &[u8], message: &[u8]) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO outbox (network, message) VALUES (?1, ?2)")?
            .execute(params![network, message])?;
        Ok(())
    }

    /// Queue one of the stored entries for the relay (by reference).
    pub(crate) fn push_outbox_entry(&self, network: &[u8], id: &EntryId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO outbox (network, message, entry_id) VALUES (?1, x'', ?2)")?
            .execute(params![network, id.0.as_slice()])?;
        Ok(())
    }

    /// `(outbox id, network, message)`, oldest first; entry rows are wrapped
    /// as [`WireMessage::Entry`](crate::wire::WireMessage::Entry) here.
    pub(crate) fn outbox(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, o.network, o.message, o.entry_id IS NOT NULL, e.bytes
             FROM outbox o LEFT JOIN entries e ON e.network = o.network AND e.id = o.entry_id
             ORDER BY o.id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, network, message, is_entry, entry) = row?;
            let message = match (is_entry, entry) {
                (false, _) => message,
                (true, Some(entry)) => crate::wire::WireMessage::Entry(entry).encode(),
                (true, None) => return Err(StoreError::Corrupt("outbox.entry_id")),
            };
            Ok((id, network, message))
        })
        .collect()
    }

    pub(crate) fn ack_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let key = StorageKey::from_bytes([1; 32]);
        drop(Store::open(&path, &key).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        match Store::open(&path, &key) {
            Err(OpenStoreError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION + 1);
    }

    #[test]
    fn io_errors_name_the_failed_file_operation() {
        let failure = |code| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some("disk I/O error".into()),
            ))
            .to_string()
        };
        assert_eq!(
            failure(rusqlite::ffi::SQLITE_IOERR_FSYNC),
            "store I/O failed: disk I/O error (fsync (flushing the file to disk) failed)"
        );
        assert!(failure(rusqlite::ffi::SQLITE_IOERR_WRITE).ends_with("(writing the file failed)"));
        assert!(failure(rusqlite::ffi::SQLITE_IOERR_TRUNCATE).contains("truncating"));
    }

    #[test]
    fn failed_transaction_leaves_nothing_behind() {
        let store = Store::open_in_memory(&StorageKey::from_bytes([1; 32])).unwrap();
        let outcome: Result<(), StoreError> = store.transaction(|| {
            store.set_meta("half", b"written")?;
            Err(StoreError::Corrupt("simulated failure"))
        });
        assert!(outcome.is_err());
        assert_eq!(store.meta("half").unwrap(), None);
        store
            .transaction(|| -> Result<(), StoreError> { store.set_meta("whole", b"written") })
            .unwrap();
        assert_eq!(
            store.meta("whole").unwrap().as_deref(),
            Some(&b"written"[..])
        );
    }

    /// A raw connection that can write past the seal's triggers without
    /// the storage key: its row MAC is a constant, so digests stay as they were.
    fn forger(path: &Path) -> Connection {
        use rusqlite::functions::FunctionFlags;
        let conn = Connection::open(path).unwrap();
        let flags = FunctionFlags::SQLITE_UTF8;
        conn.create_scalar_function("careledger_row_mac", -1, flags, |_| Ok(vec![0u8; 32]))
            .unwrap();
        conn.create_scalar_function("careledger_xor", 2, flags, |ctx| ctx.get::<Vec<u8>>(0))
            .unwrap();
        conn
    }

    fn sealed_store(path: &Path) -> StorageKey {
        let key = StorageKey::from_bytes([1; 32]);
        let store = Store::open(path, &key).unwrap();
        store.insert_network(b"net", "care", 0).unwrap();
        store.set_relay_cursor(b"net", 42).unwrap();
        key
    }

    #[test]
    fn plaintext_columns_altered_at_rest_refuse_the_open() {
        let dir = tempfile::tempdir().unwrap();
        for (n, alter) in [
            "UPDATE networks SET relay_cursor = 7",
            "UPDATE networks SET joined_epoch = 1",
            "DELETE FROM networks",
            "INSERT INTO flagged (network, author, reason) VALUES (x'00', x'00', 'x')",
            "INSERT INTO meta (key, value) VALUES ('identity_name', x'41')",
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path().join(format!("node{n}.sqlite"));
            let key = sealed_store(&path);
            // Untouched, it reopens.
            assert_eq!(
                Store::open(&path, &key)
                    .unwrap()
                    .network(b"net")
                    .unwrap()
                    .unwrap()
                    .relay_cursor,
                42
            );
            forger(&path).execute_batch(alter).unwrap();
            match Store::open(&path, &key) {
                Err(OpenStoreError::Store(StoreError::Tampered(_))) => {}
                other => panic!("`{alter}` went unnoticed: {other:?}"),
            }
        }
    }

    #[test]
    fn writes_without_the_seal_functions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let key = sealed_store(&path);
        let raw = Connection::open(&path).unwrap();
        assert!(raw
            .execute("UPDATE networks SET relay_cursor = 7", [])
            .is_err());
        drop(raw);
        let store = Store::open(&path, &key).unwrap();
        assert_eq!(store.network(b"net").unwrap().unwrap().relay_cursor, 42);
    }

    /// A raw connection with the seal's functions under `key`: its writes
    /// are sealed as the store's own are.
    fn sealing(path: &Path, key: &StorageKey) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "recursive_triggers", "ON")
            .unwrap();
        seal::register(&conn, key).unwrap();
        conn
    }

    /// Found by the `store_open` fuzz target: refinery panicked on a history
    /// row whose timestamp does not parse.
    #[test]
    fn corrupt_mls_migration_history_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let key = StorageKey::from_bytes([1; 32]);
        drop(Store::open(&path, &key).unwrap());
        for (column, value) in [
            ("applied_on", "2025-13-99T99:00:00+99:00"),
            ("checksum", "x"),
        ] {
            // Sealed like the store's own writes, so the seal passes and
            // the history check is what refuses the file.
            let conn = sealing(&path, &key);
            conn.execute(
                &format!("UPDATE openmls_sqlite_storage_migrations SET {column} = ?1"),
                [value],
            )
            .unwrap();
            drop(conn);
            let Err(error) = Store::open(&path, &key) else {
                panic!("a corrupt migration history was accepted");
            };
            assert!(
                matches!(error, OpenStoreError::Store(StoreError::Corrupt(_))),
                "{error:?}"
            );
            let conn = sealing(&path, &key);
            conn.execute(
                "UPDATE openmls_sqlite_storage_migrations \
                 SET applied_on = '2025-11-24T16:00:00Z', checksum = '1'",
                [],
            )
            .unwrap();
        }
    }

    #[test]
    fn version_one_file_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO entries (network, id, author, seq, epoch, kind, bytes)
             VALUES (x'01', x'02', x'03', 1, 0, 1, x'04')",
            [],
        )
        .unwrap();
        drop(conn);
        let store = Store::open(&path, &StorageKey::from_bytes([1; 32])).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let relayed: i64 = store
            .conn
            .query_row("SELECT relayed FROM entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            relayed, 0,
            "existing rows keep their data and get the default"
        );
    }
}
