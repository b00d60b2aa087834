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
        StoreError::from(rusqlite::Error::SqliteFailure(
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
    assert!(failure(rusqlite::ffi::SQLITE_CORRUPT).contains("altered at rest"));
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

/// A raw connection that can write past the seal's triggers without the
/// storage key: its MACs are a constant.
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
fn rows_altered_at_rest_fail_the_read_that_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    for (n, alter) in [
        "UPDATE networks SET relay_cursor = 7",
        "UPDATE networks SET joined_epoch = 1",
        "UPDATE networks SET mac = zeroblob(32)",
        "INSERT INTO networks (id, label, state, joined_epoch, mac) VALUES (x'00', 'x', 'active', 0, zeroblob(32))",
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("node{n}.sqlite"));
        let key = sealed_store(&path);
        let store = Store::open(&path, &key).unwrap();
        assert_eq!(store.network(b"net").unwrap().unwrap().relay_cursor, 42);
        assert!(store.verify().unwrap().is_clean());
        drop(store);
        forger(&path).execute_batch(alter).unwrap();
        // The open does not read the table; the first read of it fails.
        let store = Store::open(&path, &key).expect("the open costs nothing per row");
        match store.networks() {
            Err(StoreError::Tampered(_)) => {}
            other => panic!("`{alter}` went unnoticed: {other:?}"),
        }
        let report = store.verify().unwrap();
        assert!(!report.is_clean(), "`{alter}`: the audit finds it");
    }
}

#[test]
fn removed_rows_and_schema_changes_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("removed.sqlite");
    let key = sealed_store(&path);
    forger(&path).execute_batch("DELETE FROM networks").unwrap();
    let store = Store::open(&path, &key).unwrap();
    let report = store.verify().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("`networks`")),
        "{report:?}"
    );
    drop(store);
    let path = dir.path().join("schema.sqlite");
    let key = sealed_store(&path);
    forger(&path)
        .execute_batch("DROP TRIGGER careledger_seal_networks_update")
        .unwrap();
    match Store::open(&path, &key) {
        Err(OpenStoreError::Store(StoreError::Tampered(_))) => {}
        other => panic!("a dropped trigger went unnoticed: {other:?}"),
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

/// A raw connection with the seal's functions under `key`.
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
fn an_altered_mls_row_is_found_before_use_and_never_resealed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.sqlite");
    let key = StorageKey::from_bytes([1; 32]);
    drop(Store::open(&path, &key).unwrap());
    let conn = sealing(&path, &key);
    conn.execute(
        "INSERT INTO openmls_psks (provider_version, psk_id, psk_bundle)
         VALUES (1, x'01', x'CAFEBABECAFEBABE')",
        [],
    )
    .unwrap();
    drop(conn);
    assert!(Store::open(&path, &key).unwrap().verify_mls_rows().is_ok());
    // Changed on disk, below SQLite: no trigger saw it.
    let mut file = std::fs::read(&path).unwrap();
    let at = file
        .windows(8)
        .position(|w| w == [0xCA, 0xFE, 0xBA, 0xBE, 0xCA, 0xFE, 0xBA, 0xBE])
        .expect("value on disk");
    file[at..at + 8].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF]);
    std::fs::write(&path, &file).unwrap();
    let store = Store::open(&path, &key).unwrap();
    assert!(matches!(
        store.verify_mls_rows(),
        Err(StoreError::Tampered(_))
    ));
    assert!(!store.verify().unwrap().is_clean());
    drop(store);
    // An update through the store's own functions does not launder it: the
    // digest takes the altered row out and the new one in.
    let conn = sealing(&path, &key);
    conn.execute(
        "UPDATE openmls_psks SET psk_bundle = x'04' WHERE psk_id = x'01'",
        [],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path, &key).unwrap();
    assert!(matches!(
        store.verify_mls_rows(),
        Err(StoreError::Tampered(_))
    ));
}

#[test]
fn version_one_file_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.sqlite");
    let conn = Connection::open(&path).unwrap();
    let migrate::Migration::Sql(v1) = &migrate::MIGRATIONS[0] else {
        unreachable!()
    };
    conn.execute_batch(v1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    let id = tables::content_id(b"entry bytes");
    conn.execute(
        "INSERT INTO entries (network, id, author, seq, epoch, kind, bytes)
         VALUES (x'01', ?1, x'03', 1, 0, 1, CAST('entry bytes' AS BLOB))",
        [id.as_slice()],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path, &StorageKey::from_bytes([1; 32])).unwrap();
    assert_eq!(store.user_version().unwrap(), SCHEMA_VERSION);
    let ids: Vec<Vec<u8>> = store
        .select(&tables::ENTRIES, "", [], |r| r.get("id"))
        .unwrap();
    assert_eq!(ids, vec![id.to_vec()], "existing rows keep their data");
    assert_eq!(store.entries(&[1]).unwrap(), vec![b"entry bytes".to_vec()]);
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn record_ids_never_reach_a_column() {
    use crate::body::RecordKeyGrant;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.sqlite");
    let key = StorageKey::from_bytes([1; 32]);
    let store = Store::open(&path, &key).unwrap();
    let record = "patient-0123456789";
    store
        .put_record_key(
            b"net",
            &RecordKeyGrant {
                record: record.into(),
                key_id: [1; 16],
                key: SecretKey::from_bytes([2; 32]),
            },
        )
        .unwrap();
    store.save_record(b"net", record, b"doc").unwrap();
    store.put_withheld_key(b"net", record, &[3; 16]).unwrap();
    assert_eq!(store.records(b"net").unwrap(), [record]);
    assert_eq!(store.keyed_records(b"net").unwrap(), [record]);
    assert_eq!(store.load_record(b"net", record).unwrap().unwrap(), b"doc");
    drop(store);
    for suffix in ["", "-wal"] {
        let file = std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default();
        assert!(
            !file.windows(record.len()).any(|w| w == record.as_bytes()),
            "the record id is readable in the file{suffix}"
        );
    }
}

fn synchronous(store: &Store) -> i64 {
    store
        .conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap()
}

#[test]
fn relaxed_transactions_wait_for_the_disk_only_when_they_queue_for_the_relay() {
    const NORMAL: i64 = 1;
    const FULL: i64 = 2;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("node.sqlite"),
        &StorageKey::from_bytes([1; 32]),
    )
    .unwrap();
    assert_eq!(synchronous(&store), FULL);

    store.begin_relaxed().unwrap();
    assert_eq!(synchronous(&store), NORMAL);
    // A nested begin joins the relaxed transaction as it is.
    store.begin().unwrap();
    store.set_meta("received", b"1").unwrap();
    store.commit().unwrap();
    assert_eq!(synchronous(&store), NORMAL);
    store.commit().unwrap();
    assert_eq!(
        synchronous(&store),
        FULL,
        "FULL again after a relaxed commit"
    );
    assert!(!store.queued.get());

    // Queuing for the relay makes the commit sync the WAL itself.
    store.begin_relaxed().unwrap();
    store.push_outbox(b"network", b"message").unwrap();
    assert!(store.queued.get());
    store.commit().unwrap();
    assert_eq!(synchronous(&store), FULL);
    assert_eq!(store.outbox(10).unwrap().len(), 1);

    // A rolled-back relaxed transaction also leaves FULL behind, and an
    // ordinary transaction starts afresh.
    store.begin_relaxed().unwrap();
    store.set_meta("lost", b"1").unwrap();
    store.rollback();
    assert_eq!(synchronous(&store), FULL);
    assert_eq!(store.meta("lost").unwrap(), None);
    store.begin().unwrap();
    assert!(!store.queued.get());
    assert_eq!(synchronous(&store), FULL);
    store.commit().unwrap();

    // Inside an ordinary transaction, a relaxed begin changes nothing.
    store.begin().unwrap();
    store.begin_relaxed().unwrap();
    assert_eq!(synchronous(&store), FULL);
    store.commit().unwrap();
    store.commit().unwrap();
    assert_eq!(synchronous(&store), FULL);
}

#[test]
fn member_spans_stay_open_until_the_member_leaves() {
    let store = Store::open_in_memory(&StorageKey::from_bytes([1; 32])).unwrap();
    let network = b"network";
    let span = |key: u8, from: u64, to: u64| MemberSpan {
        public_key: vec![key; 32],
        name: format!("member-{key}"),
        from_epoch: from,
        to_epoch: to,
    };
    let author = |key: u8| AuthorId::of_public_key(&[key; 32]);
    store
        .add_member_span(network, &span(1, 0, OPEN_SPAN))
        .unwrap();
    store
        .add_member_span(network, &span(2, 3, OPEN_SPAN))
        .unwrap();
    // Open spans answer for every epoch from their start.
    assert!(store
        .roster_public_key(network, 9, &author(1))
        .unwrap()
        .is_some());
    assert!(store
        .roster_public_key(network, 2, &author(2))
        .unwrap()
        .is_none());
    // They travel ending at the epoch the grant is written in.
    assert_eq!(
        store.member_spans(network, 5).unwrap(),
        vec![span(1, 0, 5), span(2, 3, 5)]
    );

    let open = store.open_member_spans(network).unwrap();
    assert_eq!(open.len(), 2);
    let leaving = open.iter().find(|s| s.public_key == vec![2; 32]).unwrap();
    store.close_member_span(network, leaving, 6).unwrap();
    assert!(store
        .roster_public_key(network, 6, &author(2))
        .unwrap()
        .is_some());
    assert!(store
        .roster_public_key(network, 7, &author(2))
        .unwrap()
        .is_none());
    assert_eq!(
        store.member_spans(network, 8).unwrap(),
        vec![span(1, 0, 8), span(2, 3, 6)]
    );

    // A granted span that ends where an open one starts (a store written
    // before spans stayed open, or a joiner's own first epoch) merges into it.
    store
        .add_member_span(network, &span(3, 10, OPEN_SPAN))
        .unwrap();
    store.add_member_span(network, &span(3, 4, 9)).unwrap();
    let spans = store.member_spans(network, 12).unwrap();
    assert_eq!(spans.last(), Some(&span(3, 4, 12)));
    assert_eq!(store.open_member_spans(network).unwrap().len(), 2);
    assert_eq!(
        store.member_names(network).unwrap().len(),
        3,
        "one name per member"
    );
}
