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
//! A second process (say a phone's notification extension) may open the same
//! file while the app has it open (busy timeout 5 s).
//!
//! Nothing readable at rest: secrets, charts and record names are sealed
//! under the storage key; MLS state is sealed by its codec
//! ([`mls_codec`]); columns that look a record up hold a keyed hash of the
//! patient id (a *record tag*), never the id. `secure_delete` overwrites
//! deleted content, so a shredded key leaves no copy in free pages.
//!
//! Tampering at rest: every row carries a MAC under a key derived from the
//! storage key, checked by the read that uses it (see `seal`). Opening
//! checks only the storage key and the schema, in constant time;
//! [`Store::verify`] audits the whole file.
//!
//! ```
//! use careledger::keys::StorageKey;
//! use careledger::store::{OpenStoreError, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("node.sqlite");
//! let store = Store::open(&path, &StorageKey::from_bytes([1; 32])).unwrap();
//! assert!(store.verify().unwrap().is_clean());
//! drop(store);
//! let wrong = Store::open(&path, &StorageKey::from_bytes([2; 32]));
//! assert!(matches!(wrong, Err(OpenStoreError::WrongStorageKey)));
//! ```

use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::SqliteStorageProvider;
use openmls_traits::random::OpenMlsRand;
use rusqlite::{params, Connection, OptionalExtension};

use crate::body::{EpochGrant, MemberSpan};
use crate::entry::{AuthorId, EntryHeader, EntryId};
use crate::keys::{SecretKey, StorageKey, NONCE_LEN};

pub(crate) mod chain_marker;
mod migrate;
pub mod mls_codec;
mod records;
mod rules;
mod seal;
mod tables;

pub use records::{ConsentDue, Tombstone};
pub use seal::StoreVerifyReport;

use mls_codec::{CodecScope, MlsCodec, MlsKeys};
use tables::{Put, ENTRIES, EPOCHS, FLAGGED, FORKS, MEMBERS, META, NETWORKS, OUTBOX, PENDING};
use tables::{PENDING_COMMIT, RELAYED, REMOVED_MEMBERS};

/// Current schema version; [`Store::open`] migrates older files up to it.
pub const SCHEMA_VERSION: i64 = migrate::MIGRATIONS.len() as i64;

/// First schema version whose content is sealed with whole-table digests only
/// (verified in full before such a store is migrated).
const SEALED_V4: i64 = 4;

const KEY_CHECK_LABEL: &[u8] = b"careledger/v1/storage-key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"careledger storage key check";

/// The openmls storage provider on the store's connection.
pub(crate) type MlsStorage<'a> = SqliteStorageProvider<MlsCodec, &'a Connection>;

/// The provider openmls calls need: RustCrypto plus storage on our
/// connection, sealing MLS state under the storage key while it lives.
pub(crate) struct Provider<'a> {
    crypto: &'a RustCrypto,
    storage: MlsStorage<'a>,
    _scope: CodecScope,
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
    /// SQLite reported an error (disk full, locked…).
    #[error("store I/O failed: {}", describe_sqlite(.0))]
    Sqlite(#[source] rusqlite::Error),
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

impl From<rusqlite::Error> for StoreError {
    /// SQLite's own corruption reports are tampering as far as the caller goes.
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &error {
            rusqlite::Error::SqliteFailure(failure, message)
                if matches!(
                    failure.code,
                    ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase
                ) =>
            {
                StoreError::Tampered(format!(
                    "SQLite: {}",
                    message
                        .as_deref()
                        .unwrap_or("database disk image is malformed")
                ))
            }
            _ => StoreError::Sqlite(error),
        }
    }
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
    /// Relay position after which messages refused over the hold caps must
    /// be fetched again (`None`: nothing to fetch again).
    pub refetch_after: Option<u64>,
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

/// One entry held back: who wrote it, where, and where the relay had it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingRow {
    pub id: EntryId,
    pub author: AuthorId,
    pub seq: u64,
    pub bytes: Vec<u8>,
    pub relay_pos: Option<u64>,
}

/// `(outbox id, network, message)`.
pub(crate) type OutboxRow = (i64, Vec<u8>, Vec<u8>);

/// A node's SQLite file.
pub struct Store {
    conn: Connection,
    storage_key: StorageKey,
    seal_key: seal::MacBase,
    tag_key: seal::SealKey,
    mls_keys: Arc<MlsKeys>,
    crypto: RustCrypto,
    depth: Cell<u32>,
    /// The open transaction commits without waiting for the disk (see
    /// [`Store::begin_relaxed`]).
    relaxed: Cell<bool>,
    /// [`Store::begin_relaxed`] is beginning (so `begin` keeps NORMAL).
    relaxing: Cell<bool>,
    /// The open transaction queued something for the relay.
    queued: Cell<bool>,
    path: Option<PathBuf>,
    /// The row checks of the MLS tables (see [`Store::verify_mls_rows`]).
    foreign_checks: std::cell::OnceCell<Vec<(String, String)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// `to_epoch` of a member of the current epoch: its span is open until the
/// member leaves (then it ends at the last epoch it was in). Keeping current
/// members open makes a new epoch cost a write per member who joined or
/// left, not one per member.
pub(crate) const OPEN_SPAN: u64 = i64::MAX as u64;
const OPEN_SPAN_SQL: i64 = i64::MAX;

/// A member's span that is still open (see [`OPEN_SPAN`]).
#[derive(Clone, Debug)]
pub(crate) struct OpenSpan {
    rowid: i64,
    pub public_key: Vec<u8>,
    pub name: String,
    pub from_epoch: u64,
}

/// An epoch as the members table stores it.
fn span_epoch(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(OPEN_SPAN_SQL)
}

fn blob_u64(value: i64) -> u64 {
    value.max(0) as u64
}

impl Store {
    /// Open (or create) the store at `path`. Costs the same whatever the
    /// store holds: rows are authenticated when read, not here.
    pub fn open(path: &Path, storage_key: &StorageKey) -> Result<Store, OpenStoreError> {
        if !path.exists() {
            Self::create_file(path, storage_key)?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut store = Self::init(conn, storage_key)?;
        store.path = Some(path.to_path_buf());
        Ok(store)
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
        // Deleted content (a shredded record key, an erased chart) is
        // overwritten, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        seal::register(&conn, storage_key)?;
        // Every read is a cached statement (the store has some sixty).
        conn.set_prepared_statement_cache_capacity(256);
        let mut store = Store {
            conn,
            storage_key: storage_key.clone(),
            seal_key: seal::mac_base(storage_key),
            tag_key: seal::derive(storage_key, b"careledger/v1/record-tag"),
            mls_keys: MlsKeys::new(storage_key),
            crypto: RustCrypto::default(),
            depth: Cell::new(0),
            relaxed: Cell::new(false),
            relaxing: Cell::new(false),
            queued: Cell::new(false),
            path: None,
            foreign_checks: std::cell::OnceCell::new(),
        };
        store.migrate()?;
        store.check_storage_key(true)?;
        Ok(store)
    }

    fn user_version(&self) -> Result<i64, rusqlite::Error> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
    }

    fn migrate(&mut self) -> Result<(), OpenStoreError> {
        let version = self.user_version()?;
        if version > SCHEMA_VERSION {
            return Err(OpenStoreError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version >= SEALED_V4 {
            // The key first (a wrong key is not tampering), read without the
            // row MAC the key is needed to check.
            self.check_storage_key_raw()?;
        }
        if version == SCHEMA_VERSION {
            // Constant cost: the key check row and the schema.
            seal::check_schema(&self.conn, &self.storage_key)?;
        } else if version >= SEALED_V4 {
            // The old seal is checked in full once: the migration re-seals
            // what it finds, so it must find genuine content.
            seal::verify_v4(&self.conn, &self.storage_key)?;
        }
        self.check_mls_migration_history()?;
        let mls_before = self.mls_migrations()?;
        self.run_mls_migrations()?;
        let mls_changed = self.mls_migrations()? != mls_before;
        if version < SCHEMA_VERSION {
            let keys = migrate::Keys {
                storage: &self.storage_key,
                tag: &self.tag_key,
                mls: &self.mls_keys,
                crypto: &self.crypto,
            };
            let tx = self.conn.transaction()?;
            seal::drop_triggers(&tx)?;
            for (index, migration) in migrate::MIGRATIONS
                .iter()
                .enumerate()
                .skip(version as usize)
            {
                migration.apply(&tx, &keys)?;
                tx.pragma_update(None, "user_version", index as i64 + 1)?;
            }
            seal::reseal(&tx, &self.storage_key)?;
            tx.commit()?;
        } else if mls_changed {
            // A newer openmls storage schema: our own rows are checked in
            // full before the seal is remade over the new tables (MLS values
            // are authenticated by their codec).
            let report = seal::verify_full(&self.conn, &self.storage_key)?;
            if let Some(problem) = report.problems.iter().find(|p| {
                tables::ALL
                    .iter()
                    .any(|t| p.contains(&format!("`{}`", t.name)))
            }) {
                return Err(StoreError::Tampered(problem.clone()).into());
            }
            let tx = self.conn.transaction()?;
            seal::reseal(&tx, &self.storage_key)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn mls_migrations(&self) -> Result<i64, rusqlite::Error> {
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table'
             AND name = 'openmls_sqlite_storage_migrations')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(0);
        }
        self.conn.query_row(
            "SELECT count(*) FROM openmls_sqlite_storage_migrations",
            [],
            |r| r.get(0),
        )
    }

    fn run_mls_migrations(&mut self) -> Result<(), OpenStoreError> {
        let mut mls = SqliteStorageProvider::<MlsCodec, &mut Connection>::new(&mut self.conn);
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
        })
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
            Some(wrapped) => self.check_key_value(&wrapped),
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

    fn check_key_value(&self, wrapped: &[u8]) -> Result<(), OpenStoreError> {
        match self.storage_key.unwrap_secret(KEY_CHECK_LABEL, wrapped) {
            Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(OpenStoreError::WrongStorageKey),
        }
    }

    /// The key check value read as it is (schema 4 rows have no MAC yet; a
    /// wrong key cannot check one).
    fn check_storage_key_raw(&self) -> Result<(), OpenStoreError> {
        let wrapped: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'storage_key_check'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match wrapped {
            Some(wrapped) => self.check_key_value(&wrapped),
            None => Err(StoreError::Tampered("storage key check missing".into()).into()),
        }
    }

    /// Audit the whole file: SQLite's integrity check, every row's MAC,
    /// every table's digest (which also shows rows removed or put back from an
    /// older copy), the schema and the AUTOINCREMENT counters. Reads
    /// everything, so its cost grows with the store; `Err` only when the
    /// file cannot be read. Problems name tables, never values.
    pub fn verify(&self) -> Result<StoreVerifyReport, StoreError> {
        seal::verify_full(&self.conn, &self.storage_key)
    }

    /// The file this store lives in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn provider(&self) -> Provider<'_> {
        Provider {
            crypto: &self.crypto,
            storage: SqliteStorageProvider::new(&self.conn),
            _scope: CodecScope::enter(&self.mls_keys),
        }
    }

    /// Check the MAC of every MLS row before openmls reads them (a group is
    /// loaded, a Welcome is processed).
    pub(crate) fn verify_mls_rows(&self) -> Result<(), StoreError> {
        let checks = match self.foreign_checks.get() {
            Some(checks) => checks,
            None => {
                let checks = seal::foreign_checks(&self.conn)?;
                self.foreign_checks.get_or_init(|| checks)
            }
        };
        if self.depth.get() > 0 {
            return seal::verify_foreign_rows(&self.conn, &self.seal_key, checks);
        }
        // One read snapshot, so another process's commit cannot land between
        // the rows and their digest.
        self.conn.execute_batch("BEGIN")?;
        let outcome = seal::verify_foreign_rows(&self.conn, &self.seal_key, checks);
        let _ = self.conn.execute_batch("COMMIT");
        outcome
    }

    pub(crate) fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }

    pub(crate) fn storage_key(&self) -> &StorageKey {
        &self.storage_key
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
            if !self.relaxing.get() {
                // A relaxed commit that could not restore FULL: do it now.
                self.end_relaxed()?;
            }
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.queued.set(false);
        }
        self.depth.set(depth + 1);
        Ok(())
    }

    /// Begin a transaction whose content can be had again from the relay
    /// (entries received, the relay cursor moved past them): it commits
    /// without waiting for the disk, unless it queued something for the
    /// relay, which must be durable before it can be sent. A power loss may
    /// then undo the last such commits, never tear one, and the next sync
    /// receives the same entries again. Joins an open transaction as is.
    pub(crate) fn begin_relaxed(&self) -> Result<(), StoreError> {
        if self.depth.get() == 0 && self.path.is_some() {
            // SQLite refuses to change it inside a transaction.
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
            self.relaxed.set(true);
        }
        self.relaxing.set(true);
        let begun = self.begin();
        self.relaxing.set(false);
        if begun.is_err() {
            let _ = self.end_relaxed();
        }
        begun
    }

    /// Back to `synchronous = FULL` after a relaxed transaction. Should that
    /// fail, the next [`Store::begin`] tries again before it begins.
    fn end_relaxed(&self) -> Result<(), StoreError> {
        if self.relaxed.get() {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
            self.relaxed.set(false);
        }
        Ok(())
    }

    /// Commit the outermost transaction (inner levels just unwind).
    pub(crate) fn commit(&self) -> Result<(), StoreError> {
        let depth = self.depth.get().saturating_sub(1);
        self.depth.set(depth);
        if depth == 0 {
            if let Err(error) = self.conn.execute_batch("COMMIT") {
                let _ = self.conn.execute_batch("ROLLBACK");
                let _ = self.end_relaxed();
                return Err(error.into());
            }
            if self.relaxed.get() && self.queued.get() {
                self.sync_wal()?;
            }
            let _ = self.end_relaxed();
        }
        Ok(())
    }

    /// Make every commit so far durable: what `synchronous = FULL` does at
    /// a commit, for a relaxed one that turned out to need it. The WAL file
    /// is opened only to sync it (SQLite keeps no lock on it, so closing it
    /// releases none).
    fn sync_wal(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::File::open(&wal)
            .and_then(|file| file.sync_data())
            .map_err(|error| {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC),
                    Some(format!("syncing the write-ahead log failed: {error}")),
                ))
            })
    }

    /// Roll back everything since the outermost [`Store::begin`].
    pub(crate) fn rollback(&self) {
        if self.depth.get() > 0 {
            self.depth.set(0);
            // A failed ROLLBACK means SQLite already rolled back on its own.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let _ = self.end_relaxed();
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

    /// Copy what the WAL holds into the file and empty the WAL, so deleted
    /// content (a shredded key) has no copy left there. Best effort: a
    /// reader in another process may keep the WAL in use.
    pub(crate) fn checkpoint_wal(&self) {
        if self.path.is_some() && self.depth.get() == 0 {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }

    /// Every MLS value in the store, opened (feature `test-hooks`): lets a
    /// test name the private keys it must not find on disk.
    #[cfg(feature = "test-hooks")]
    pub fn mls_values_for_testing(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let Ok(tables) = seal::sealed_tables(&self.conn) else {
            return out;
        };
        for table in tables
            .iter()
            .filter(|t| t.starts_with("openmls_") && !t.ends_with("migrations"))
        {
            let Ok(mut stmt) = self.conn.prepare(&format!("SELECT * FROM \"{table}\"")) else {
                continue;
            };
            let columns = stmt.column_count();
            let Ok(mut rows) = stmt.query([]) else {
                continue;
            };
            while let Ok(Some(row)) = rows.next() {
                for i in 0..columns {
                    if let Ok(rusqlite::types::ValueRef::Blob(blob)) = row.get_ref(i) {
                        if let Ok(plain) = self.mls_keys.open(blob) {
                            out.push(plain);
                        }
                    }
                }
            }
        }
        out
    }

    // ---- meta -------------------------------------------------------------

    pub(crate) fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.select_one(&META, "WHERE key = ?1", [key], |r| r.get("value"))
    }

    pub(crate) fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put(&META, Put::OrReplace, &[&key, &value])?;
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
        let none: Option<i64> = None;
        self.put(
            &NETWORKS,
            Put::Insert,
            &[&id, &label, &"active", &(joined_epoch as i64), &0i64, &none],
        )?;
        Ok(())
    }

    fn network_row(r: &tables::Verified<'_, '_>) -> Result<NetworkRow, StoreError> {
        Ok(NetworkRow {
            id: r.get("id")?,
            label: r.get("label")?,
            state: r.get("state")?,
            joined_epoch: blob_u64(r.get("joined_epoch")?),
            relay_cursor: blob_u64(r.get("relay_cursor")?),
            refetch_after: r.get::<Option<i64>>("refetch_after")?.map(blob_u64),
        })
    }

    /// All networks this node belongs or belonged to.
    pub fn networks(&self) -> Result<Vec<NetworkRow>, StoreError> {
        self.select(&NETWORKS, "ORDER BY label, id", [], Self::network_row)
    }

    pub(crate) fn network(&self, id: &[u8]) -> Result<Option<NetworkRow>, StoreError> {
        let row = self.select_one(&NETWORKS, "WHERE id = ?1", [id], Self::network_row)?;
        match row {
            Some(row) if row.id != id => Err(StoreError::Tampered(
                "a network row answered for another network".into(),
            )),
            other => Ok(other),
        }
    }

    fn write_network(&self, row: &NetworkRow) -> Result<(), StoreError> {
        self.put(
            &NETWORKS,
            Put::OrReplace,
            &[
                &row.id,
                &row.label,
                &row.state,
                &(row.joined_epoch as i64),
                &(row.relay_cursor as i64),
                &row.refetch_after.map(|p| p as i64),
            ],
        )?;
        Ok(())
    }

    fn update_network(
        &self,
        id: &[u8],
        change: impl FnOnce(&mut NetworkRow),
    ) -> Result<(), StoreError> {
        let Some(mut row) = self.network(id)? else {
            return Ok(());
        };
        change(&mut row);
        self.write_network(&row)
    }

    pub(crate) fn set_network_state(&self, id: &[u8], state: &str) -> Result<(), StoreError> {
        self.update_network(id, |row| row.state = state.to_owned())
    }

    pub(crate) fn set_relay_cursor(&self, id: &[u8], cursor: u64) -> Result<(), StoreError> {
        self.update_network(id, |row| row.relay_cursor = cursor)
    }

    /// Lower (or, with `None`, clear) the position after which the relay
    /// must be read again.
    pub(crate) fn set_refetch_after(&self, id: &[u8], mark: Option<u64>) -> Result<(), StoreError> {
        self.update_network(id, |row| row.refetch_after = mark)
    }

    // ---- epochs and rosters -----------------------------------------------

    pub(crate) fn put_epoch_key(
        &self,
        network: &[u8],
        grant: &EpochGrant,
    ) -> Result<(), StoreError> {
        if self.epoch_key(network, grant.epoch)?.is_some() {
            // Epoch keys never change once recorded.
            return Ok(());
        }
        let wrapped = self.wrap(&epoch_label(network, grant.epoch), grant.key.as_bytes())?;
        self.put(
            &EPOCHS,
            Put::Insert,
            &[&network, &(grant.epoch as i64), &wrapped],
        )?;
        Ok(())
    }

    /// Record that a key was a member over `[from_epoch, to_epoch]`, extending
    /// an overlapping or adjacent span of the same key when there is one.
    /// `to_epoch` may be [`OPEN_SPAN`]: a member of the current epoch.
    pub(crate) fn add_member_span(
        &self,
        network: &[u8],
        span: &MemberSpan,
    ) -> Result<(), StoreError> {
        let author = AuthorId::of_public_key(&span.public_key);
        let from = span_epoch(span.from_epoch);
        let to = span_epoch(span.to_epoch);
        // `to_epoch >= from - 1` rather than `to_epoch + 1 >= from`: an open
        // span's end is the largest integer.
        let spans = self.select_with_rowid(
            &MEMBERS,
            "WHERE network = ?1 AND author = ?2 AND public_key = ?3
             AND from_epoch - 1 <= ?5 AND to_epoch >= ?4 - 1",
            params![network, author.0.as_slice(), span.public_key, from, to],
            |r| {
                Ok((
                    r.get::<String>("name")?,
                    r.get::<i64>("from_epoch")?,
                    r.get::<i64>("to_epoch")?,
                ))
            },
        )?;
        if spans.is_empty() {
            self.put(
                &MEMBERS,
                Put::Insert,
                &[
                    &network,
                    &author.0.as_slice(),
                    &span.public_key,
                    &span.name,
                    &from,
                    &to,
                ],
            )?;
            return Ok(());
        }
        for (rowid, (name, old_from, old_to)) in spans {
            let (new_from, new_to) = (old_from.min(from), old_to.max(to));
            if (new_from, new_to) != (old_from, old_to) {
                self.write_span(rowid, network, &span.public_key, &name, new_from, new_to)?;
            }
        }
        Ok(())
    }

    fn write_span(
        &self,
        rowid: i64,
        network: &[u8],
        public_key: &[u8],
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<(), StoreError> {
        let author = AuthorId::of_public_key(public_key);
        self.rewrite(
            &MEMBERS,
            rowid,
            &[
                &network,
                &author.0.as_slice(),
                &public_key,
                &name,
                &from,
                &to,
            ],
        )
    }

    /// The spans of the current members, as [`Store::add_member_span`] left
    /// them open: `(rowid, public key, name)`.
    pub(crate) fn open_member_spans(&self, network: &[u8]) -> Result<Vec<OpenSpan>, StoreError> {
        Ok(self
            .select_with_rowid(
                &MEMBERS,
                "WHERE network = ?1 AND to_epoch = ?2",
                params![network, OPEN_SPAN_SQL],
                |r| {
                    Ok(OpenSpan {
                        rowid: 0,
                        public_key: r.get("public_key")?,
                        name: r.get("name")?,
                        from_epoch: blob_u64(r.get("from_epoch")?),
                    })
                },
            )?
            .into_iter()
            .map(|(rowid, span)| OpenSpan { rowid, ..span })
            .collect())
    }

    /// Whether any span of the network is open (none in a store written
    /// before spans stayed open).
    pub(crate) fn has_open_member_span(&self, network: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .select_one(
                &MEMBERS,
                "WHERE network = ?1 AND to_epoch = ?2 LIMIT 1",
                params![network, OPEN_SPAN_SQL],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// End an open span at `to_epoch`: its member left after that epoch.
    pub(crate) fn close_member_span(
        &self,
        network: &[u8],
        span: &OpenSpan,
        to_epoch: u64,
    ) -> Result<(), StoreError> {
        self.write_span(
            span.rowid,
            network,
            &span.public_key,
            &span.name,
            span_epoch(span.from_epoch),
            span_epoch(to_epoch.max(span.from_epoch)),
        )
    }

    pub(crate) fn epoch_key(
        &self,
        network: &[u8],
        epoch: u64,
    ) -> Result<Option<SecretKey>, StoreError> {
        let wrapped = self.select_one(
            &EPOCHS,
            "WHERE network = ?1 AND epoch = ?2",
            params![network, epoch as i64],
            |r| r.get::<Vec<u8>>("key"),
        )?;
        wrapped
            .map(|w| self.unwrap_secret(&epoch_label(network, epoch), &w, "epoch key"))
            .transpose()
    }

    /// The author's public key if it was a member at `epoch`.
    pub(crate) fn roster_public_key(
        &self,
        network: &[u8],
        epoch: u64,
        author: &AuthorId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let keys = self.select(
            &MEMBERS,
            "WHERE network = ?1 AND author = ?2 AND from_epoch <= ?3 AND to_epoch >= ?3 LIMIT 1",
            params![network, author.0.as_slice(), epoch as i64],
            |r| r.get::<Vec<u8>>("public_key"),
        )?;
        // The MAC binds the key to the row; the author id is the key's hash.
        Ok(keys
            .into_iter()
            .find(|key| AuthorId::of_public_key(key) == *author))
    }

    /// Every membership span of a network, the open ones (current members)
    /// ending at `through_epoch`, the network's current epoch.
    pub(crate) fn member_spans(
        &self,
        network: &[u8],
        through_epoch: u64,
    ) -> Result<Vec<MemberSpan>, StoreError> {
        self.select(
            &MEMBERS,
            "WHERE network = ?1 ORDER BY from_epoch, author",
            [network],
            |r| {
                let to: i64 = r.get("to_epoch")?;
                Ok(MemberSpan {
                    public_key: r.get("public_key")?,
                    name: r.get("name")?,
                    from_epoch: blob_u64(r.get("from_epoch")?),
                    to_epoch: if to == OPEN_SPAN_SQL {
                        through_epoch
                    } else {
                        blob_u64(to)
                    },
                })
            },
        )
    }

    /// The name every key that was ever a member of the network goes by.
    pub(crate) fn member_names(
        &self,
        network: &[u8],
    ) -> Result<Vec<(AuthorId, String)>, StoreError> {
        self.select(
            &MEMBERS,
            "WHERE network = ?1 ORDER BY from_epoch, author",
            [network],
            |r| {
                let key: Vec<u8> = r.get("public_key")?;
                Ok((AuthorId::of_public_key(&key), r.get("name")?))
            },
        )
    }

    /// The epochs whose keys this node holds for a network (the keys stay sealed).
    pub(crate) fn epoch_numbers(&self, network: &[u8]) -> Result<BTreeSet<u64>, StoreError> {
        Ok(self
            .select(&EPOCHS, "WHERE network = ?1", [network], |r| {
                Ok(blob_u64(r.get("epoch")?))
            })?
            .into_iter()
            .collect())
    }

    /// Every epoch key of a network, oldest first.
    pub(crate) fn epoch_grants(&self, network: &[u8]) -> Result<Vec<EpochGrant>, StoreError> {
        let rows = self.select(
            &EPOCHS,
            "WHERE network = ?1 ORDER BY epoch",
            [network],
            |r| Ok((blob_u64(r.get("epoch")?), r.get::<Vec<u8>>("key")?)),
        )?;
        rows.into_iter()
            .map(|(epoch, wrapped)| {
                Ok(EpochGrant {
                    epoch,
                    key: self.unwrap_secret(&epoch_label(network, epoch), &wrapped, "epoch key")?,
                })
            })
            .collect()
    }

    /// A member removed from a network, with the last of its entries that
    /// arrived before the removal commit in relay order.
    pub(crate) fn put_removed_member(
        &self,
        network: &[u8],
        author: &AuthorId,
        removed_epoch: u64,
        last_seq: u64,
    ) -> Result<(), StoreError> {
        self.put(
            &REMOVED_MEMBERS,
            Put::OrIgnore,
            &[
                &network,
                &author.0.as_slice(),
                &(removed_epoch as i64),
                &(last_seq as i64),
            ],
        )?;
        Ok(())
    }

    /// `(removed at epoch, last accepted seq)` of a removed member.
    pub(crate) fn removed_member(
        &self,
        network: &[u8],
        author: &AuthorId,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        self.select_one(
            &REMOVED_MEMBERS,
            "WHERE network = ?1 AND author = ?2",
            params![network, author.0.as_slice()],
            |r| {
                Ok((
                    blob_u64(r.get("removed_epoch")?),
                    blob_u64(r.get("last_seq")?),
                ))
            },
        )
    }

    // ---- entries ----------------------------------------------------------

    pub(crate) fn insert_entry(
        &self,
        network: &[u8],
        id: &EntryId,
        header: &EntryHeader,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        // The ledger order is a MAC'd column: the next AUTOINCREMENT value.
        let next: i64 = self
            .conn
            .prepare_cached(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0),
                            coalesce((SELECT max(local_order) FROM entries), 0)) + 1",
            )?
            .query_row([], |r| r.get(0))?;
        self.put(
            &ENTRIES,
            Put::Insert,
            &[
                &next,
                &network,
                &id.0.as_slice(),
                &header.author.0.as_slice(),
                &(header.seq as i64),
                &(header.epoch as i64),
                &(header.kind as u8),
                &bytes,
            ],
        )?;
        Ok(())
    }

    /// The stored bytes of an entry (checked against its id by the read).
    fn entry_bytes(r: &tables::Verified<'_, '_>) -> Result<Vec<u8>, StoreError> {
        r.get("bytes")
    }

    /// Whether the entry is stored. An existence check reads no data: a row
    /// forged to make it answer yes can only hide an entry, as deleting one
    /// would, and the audit (`Store::verify`) finds both.
    pub(crate) fn has_entry(&self, network: &[u8], id: &EntryId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM entries WHERE network = ?1 AND id = ?2")?
            .exists(params![network, id.0.as_slice()])?)
    }

    pub(crate) fn entry_at(
        &self,
        network: &[u8],
        author: &AuthorId,
        seq: u64,
    ) -> Result<Option<EntryId>, StoreError> {
        let id = self.select_one(
            &ENTRIES,
            "WHERE network = ?1 AND author = ?2 AND seq = ?3",
            params![network, author.0.as_slice(), seq as i64],
            |r| r.get::<Vec<u8>>("id"),
        )?;
        id.map(|id| EntryId::from_slice(&id).ok_or(StoreError::Corrupt("entries.id")))
            .transpose()
    }

    /// The latest entry of one author: `(seq, id)`.
    pub(crate) fn head_of(
        &self,
        network: &[u8],
        author: &AuthorId,
    ) -> Result<Option<(u64, EntryId)>, StoreError> {
        let row = self.select_one(
            &ENTRIES,
            "WHERE network = ?1 AND author = ?2 ORDER BY seq DESC LIMIT 1",
            params![network, author.0.as_slice()],
            |r| Ok((r.get::<i64>("seq")?, r.get::<Vec<u8>>("id")?)),
        )?;
        row.map(|(seq, id)| {
            Ok((
                blob_u64(seq),
                EntryId::from_slice(&id).ok_or(StoreError::Corrupt("entries.id"))?,
            ))
        })
        .transpose()
    }

    /// Per-author heads: `(author, seq, id)` of each author's latest entry.
    pub(crate) fn heads(
        &self,
        network: &[u8],
    ) -> Result<Vec<(AuthorId, u64, EntryId)>, StoreError> {
        let rows = self.select(
            &ENTRIES,
            "WHERE network = ?1 AND (author, seq) IN
               (SELECT author, MAX(seq) FROM entries WHERE network = ?1 GROUP BY author)
             ORDER BY author",
            [network],
            |r| {
                Ok((
                    r.get::<Vec<u8>>("author")?,
                    r.get::<i64>("seq")?,
                    r.get::<Vec<u8>>("id")?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(author, seq, id)| {
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
        self.put(&RELAYED, Put::OrIgnore, &[&network, &id.0.as_slice()])?;
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
        let relayed: std::collections::HashSet<Vec<u8>> = self
            .select(&RELAYED, "WHERE network = ?1", [network], |r| r.get("id"))?
            .into_iter()
            .collect();
        let ids = self.select(
            &ENTRIES,
            "WHERE network = ?1 AND author = ?2 AND seq > ?3 ORDER BY seq",
            params![network, author.0.as_slice(), after as i64],
            |r| r.get::<Vec<u8>>("id"),
        )?;
        let mut out = Vec::new();
        for id in ids
            .into_iter()
            .filter(|id| !relayed.contains(id))
            .take(limit)
        {
            let bytes = self.select_bytes(
                &ENTRIES,
                "WHERE network = ?1 AND id = ?2",
                params![network, id],
                Self::entry_bytes,
            )?;
            out.extend(bytes);
        }
        Ok(out)
    }

    /// Every stored entry of a network in local append order.
    pub(crate) fn entries(&self, network: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.select_bytes(
            &ENTRIES,
            "WHERE network = ?1 ORDER BY local_order",
            [network],
            Self::entry_bytes,
        )
    }

    /// Overwrite one stored entry's bytes as an insider holding the storage
    /// key could (the row re-sealed, its id the new bytes' hash), so only the
    /// ledger's own checks can tell (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
    pub fn overwrite_entry_bytes_for_testing(
        &self,
        network: &[u8],
        local_index: usize,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let rows = self.select_with_rowid(
            &ENTRIES,
            "WHERE network = ?1 ORDER BY local_order LIMIT 1 OFFSET ?2",
            params![network, local_index as i64],
            |r| {
                Ok((
                    r.get::<i64>("local_order")?,
                    r.get::<Vec<u8>>("author")?,
                    r.get::<i64>("seq")?,
                    r.get::<i64>("epoch")?,
                    r.get::<i64>("kind")?,
                ))
            },
        )?;
        let Some((rowid, (order, author, seq, epoch, kind))) = rows.into_iter().next() else {
            return Ok(false);
        };
        let id = tables::content_id(bytes);
        self.rewrite(
            &ENTRIES,
            rowid,
            &[
                &order,
                &network,
                &id.as_slice(),
                &author,
                &seq,
                &epoch,
                &kind,
            ],
        )?;
        self.conn
            .prepare_cached("UPDATE entries SET bytes = ?1 WHERE rowid = ?2")?
            .execute(params![bytes, rowid])?;
        Ok(true)
    }

    // ---- pending, forks, flags --------------------------------------------

    pub(crate) fn put_pending(
        &self,
        network: &[u8],
        header: &EntryHeader,
        id: &EntryId,
        bytes: &[u8],
        reason: &str,
        relay_pos: Option<u64>,
    ) -> Result<(), StoreError> {
        // Keep where the relay first had it (a hint for reading it again:
        // a wrong one costs a re-read, never data).
        let known: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT relay_pos FROM pending WHERE network = ?1 AND id = ?2")?
            .query_row(params![network, id.0.as_slice()], |r| r.get(0))
            .optional()?;
        let position = known.flatten().map(blob_u64).or(relay_pos);
        self.put(
            &PENDING,
            Put::OrReplace,
            &[
                &network,
                &id.0.as_slice(),
                &header.author.0.as_slice(),
                &(header.seq as i64),
                &reason,
                &position.map(|p| p as i64),
                &bytes,
            ],
        )?;
        Ok(())
    }

    /// Whether an entry is held (an existence check; see [`Store::has_entry`]).
    pub(crate) fn is_pending(&self, network: &[u8], id: &EntryId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM pending WHERE network = ?1 AND id = ?2")?
            .exists(params![network, id.0.as_slice()])?)
    }

    fn pending_row(r: &tables::Verified<'_, '_>) -> Result<PendingRow, StoreError> {
        let bytes: Vec<u8> = r.get("bytes")?;
        Ok(PendingRow {
            id: EntryId::from_slice(&r.get::<Vec<u8>>("id")?)
                .ok_or(StoreError::Corrupt("pending.id"))?,
            author: AuthorId::from_slice(&r.get::<Vec<u8>>("author")?)
                .ok_or(StoreError::Corrupt("pending.author"))?,
            seq: blob_u64(r.get("seq")?),
            bytes,
            relay_pos: r.get::<Option<i64>>("relay_pos")?.map(blob_u64),
        })
    }

    /// Every held entry of a network, in arrival order.
    pub(crate) fn pending(&self, network: &[u8]) -> Result<Vec<PendingRow>, StoreError> {
        self.select_bytes(
            &PENDING,
            "WHERE network = ?1 ORDER BY rowid",
            [network],
            Self::pending_row,
        )
    }

    /// `(seq, relay position, id)` of an author's held entries, highest seq
    /// first, without their bytes.
    pub(crate) fn pending_seqs(
        &self,
        network: &[u8],
        author: &AuthorId,
    ) -> Result<Vec<(u64, Option<u64>, EntryId)>, StoreError> {
        self.select(
            &PENDING,
            "WHERE network = ?1 AND author = ?2 ORDER BY seq DESC",
            params![network, author.0.as_slice()],
            |r| {
                Ok((
                    blob_u64(r.get("seq")?),
                    r.get::<Option<i64>>("relay_pos")?.map(blob_u64),
                    EntryId::from_slice(&r.get::<Vec<u8>>("id")?)
                        .ok_or(StoreError::Corrupt("pending.id"))?,
                ))
            },
        )
    }

    /// `(held entries in the network, of them by `author`)`, counted from the index.
    pub(crate) fn pending_counts(
        &self,
        network: &[u8],
        author: &AuthorId,
    ) -> Result<(usize, usize), StoreError> {
        let (total, mine): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum(author = ?2), 0) FROM pending WHERE network = ?1",
            )?
            .query_row(params![network, author.0.as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok((total.max(0) as usize, mine.max(0) as usize))
    }

    /// The author holding the most entries, with its highest held one.
    pub(crate) fn largest_pending_author(
        &self,
        network: &[u8],
    ) -> Result<Option<AuthorId>, StoreError> {
        let author: Option<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT author FROM pending WHERE network = ?1
                 GROUP BY author ORDER BY count(*) DESC, author LIMIT 1",
            )?
            .query_row([network], |r| r.get(0))
            .optional()?;
        Ok(author.and_then(|a| AuthorId::from_slice(&a)))
    }

    pub(crate) fn pending_reasons(&self, network: &[u8]) -> Result<Vec<String>, StoreError> {
        self.select(
            &PENDING,
            "WHERE network = ?1 ORDER BY rowid",
            [network],
            |r| r.get("reason"),
        )
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
        self.put(
            &FORKS,
            Put::OrIgnore,
            &[
                &network,
                &author.0.as_slice(),
                &(seq as i64),
                &kept.0.as_slice(),
                &other.0.as_slice(),
                &other_bytes,
            ],
        )?;
        Ok(())
    }

    pub(crate) fn fork_count(&self, network: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .select(&FORKS, "WHERE network = ?1", [network], |_| Ok(()))?
            .len() as u64)
    }

    pub(crate) fn flag_author(
        &self,
        network: &[u8],
        author: &AuthorId,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.put(
            &FLAGGED,
            Put::OrIgnore,
            &[&network, &author.0.as_slice(), &reason],
        )?;
        Ok(())
    }

    pub(crate) fn flagged(&self, network: &[u8]) -> Result<Vec<(AuthorId, String)>, StoreError> {
        self.select(
            &FLAGGED,
            "WHERE network = ?1 ORDER BY author, reason",
            [network],
            |r| {
                Ok((
                    AuthorId::from_slice(&r.get::<Vec<u8>>("author")?)
                        .ok_or(StoreError::Corrupt("flagged.author"))?,
                    r.get("reason")?,
                ))
            },
        )
    }

    // ---- pending commits --------------------------------------------------

    pub(crate) fn set_pending_commit(
        &self,
        network: &[u8],
        row: &PendingCommitRow,
    ) -> Result<(), StoreError> {
        self.put(
            &PENDING_COMMIT,
            Put::OrReplace,
            &[
                &network,
                &(row.epoch as i64),
                &row.commit,
                &row.welcome,
                &row.intent,
            ],
        )?;
        Ok(())
    }

    pub(crate) fn pending_commit(
        &self,
        network: &[u8],
    ) -> Result<Option<PendingCommitRow>, StoreError> {
        self.select_one(&PENDING_COMMIT, "WHERE network = ?1", [network], |r| {
            Ok(PendingCommitRow {
                epoch: blob_u64(r.get("epoch")?),
                commit: r.get("commit_msg")?,
                welcome: r.get("welcome")?,
                intent: r.get("intent")?,
            })
        })
    }

    pub(crate) fn clear_pending_commit(&self, network: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pending_commit WHERE network = ?1", [network])?;
        Ok(())
    }

    // ---- outbox -----------------------------------------------------------

    fn next_outbox_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
                            coalesce((SELECT max(id) FROM outbox), 0)) + 1",
            )?
            .query_row([], |r| r.get(0))?)
    }

    pub(crate) fn push_outbox(&self, network: &[u8], message: &[u8]) -> Result<(), StoreError> {
        self.queued.set(true);
        let id = self.next_outbox_id()?;
        let none: Option<Vec<u8>> = None;
        self.put(&OUTBOX, Put::Insert, &[&id, &network, &message, &none])?;
        Ok(())
    }

    /// Queue one of the stored entries for the relay (by reference).
    pub(crate) fn push_outbox_entry(&self, network: &[u8], id: &EntryId) -> Result<(), StoreError> {
        self.queued.set(true);
        let outbox_id = self.next_outbox_id()?;
        let empty: &[u8] = &[];
        self.put(
            &OUTBOX,
            Put::Insert,
            &[&outbox_id, &network, &empty, &id.0.as_slice()],
        )?;
        Ok(())
    }

    /// `(outbox id, network, message)`, oldest first; entry rows are wrapped
    /// as [`WireMessage::Entry`](crate::wire::WireMessage::Entry) here.
    pub(crate) fn outbox(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = self.select(&OUTBOX, "ORDER BY id LIMIT ?1", [limit as i64], |r| {
            Ok((
                r.get::<i64>("id")?,
                r.get::<Vec<u8>>("network")?,
                r.get::<Vec<u8>>("message")?,
                r.get::<Option<Vec<u8>>>("entry_id")?,
            ))
        })?;
        rows.into_iter()
            .map(|(id, network, message, entry)| {
                let message = match entry {
                    None => message,
                    Some(entry_id) => {
                        let bytes = self
                            .select_bytes(
                                &ENTRIES,
                                "WHERE network = ?1 AND id = ?2",
                                params![network, entry_id],
                                Self::entry_bytes,
                            )?
                            .into_iter()
                            .next()
                            .ok_or(StoreError::Corrupt("outbox.entry_id"))?;
                        crate::wire::WireMessage::Entry(bytes).encode()
                    }
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

/// The label an epoch key is wrapped under: bound to its network and epoch.
fn epoch_label(network: &[u8], epoch: u64) -> Vec<u8> {
    let mut label = b"careledger/v1/epoch-key\0".to_vec();
    label.extend_from_slice(network);
    label.extend_from_slice(&epoch.to_be_bytes());
    label
}

#[cfg(test)]
mod tests;
