//! Everything the store keeps per patient record, found by its *record tag*.
//!
//! A record's id is the patient's id, so it never appears in a column: rows
//! are looked up by the tag `HMAC-SHA256(tag key, network ‖ 0 ‖ record)[..16]`
//! (the tag key is derived from the storage key), and where the id itself is
//! needed (listing patients, granting keys) it is sealed in the row. Tags
//! differ per network, so the file does not even link one patient's charts
//! across networks.

use hmac::{Hmac, Mac};
use rusqlite::params;
use sha2::Sha256;

use super::tables::{
    Put, CONSENT_DUE, ERASED, RECORDS, RECORD_INCREMENTS, RECORD_KEYS, SHARES, SHREDDED_KEYS,
    WITHHELD_KEYS, WITHHOLDING,
};
use super::{blob_u64, Store, StoreError};
use crate::body::{RecordKeyGrant, RecordKeyId};
use crate::entry::{AuthorId, EntryId};
use crate::keys::{SecretKey, KEY_LEN};

/// Length of a record tag.
pub(super) const TAG_LEN: usize = 16;

/// A record's tag in one network.
pub(super) type RecordTag = [u8; TAG_LEN];

fn label(kind: &[u8], network: &[u8], tag: &RecordTag, extra: &[u8]) -> Vec<u8> {
    let mut label = b"careledger/v1/".to_vec();
    label.extend_from_slice(kind);
    label.push(0);
    label.extend_from_slice(&(network.len() as u16).to_be_bytes());
    label.extend_from_slice(network);
    label.extend_from_slice(tag);
    label.extend_from_slice(extra);
    label
}

/// The label a record's materialised document is sealed under (bound to
/// network and record, so rows cannot be swapped).
pub(super) fn doc_label(network: &[u8], record: &str) -> Vec<u8> {
    let mut label = b"careledger/v1/record-doc/".to_vec();
    label.extend_from_slice(network);
    label.push(0);
    label.extend_from_slice(record.as_bytes());
    label
}

/// A chart erased by an erase entry: what is left of it in this store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    /// The record (patient id); kept sealed, like every record name.
    pub record: String,
    /// The erase entry that shredded it.
    pub entry: EntryId,
    /// Who wrote the erase entry.
    pub author: AuthorId,
    /// When, as its author claimed (ms since the Unix epoch).
    pub time_ms: u64,
    /// 1: the whole chart; 2: some of its resources (the rest was written again).
    pub scope: u8,
}

/// A chart shared into a network whose consent decision may change at `due_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentDue {
    /// The network the chart was shared into.
    pub network: Vec<u8>,
    /// The record (patient id).
    pub record: String,
    /// The network it was shared from.
    pub from_network: Vec<u8>,
    /// The purpose it was shared for (ActReason code).
    pub purpose: String,
    /// The instant the decision must be taken again.
    pub due_ms: u64,
}

impl Store {
    /// The record's tag in `network`.
    pub(super) fn record_tag(&self, network: &[u8], record: &str) -> RecordTag {
        tag_of(&self.tag_key, network, record)
    }

    fn seal_name(
        &self,
        network: &[u8],
        tag: &RecordTag,
        record: &str,
    ) -> Result<Vec<u8>, StoreError> {
        self.wrap(&label(b"record-name", network, tag, &[]), record.as_bytes())
    }

    fn open_name(&self, network: &[u8], tag: &[u8], sealed: &[u8]) -> Result<String, StoreError> {
        let tag: RecordTag = tag
            .try_into()
            .map_err(|_| StoreError::Corrupt("record_tag"))?;
        let plain = self
            .storage_key
            .unwrap_secret(&label(b"record-name", network, &tag, &[]), sealed)
            .map_err(|_| StoreError::Unwrap("record name"))?;
        let name = String::from_utf8(plain).map_err(|_| StoreError::Corrupt("record name"))?;
        if self.record_tag(network, &name) != tag {
            return Err(StoreError::Tampered(
                "a record name does not match its tag".into(),
            ));
        }
        Ok(name)
    }

    // ---- record keys ------------------------------------------------------

    fn wrap_record_key(
        &self,
        network: &[u8],
        tag: &RecordTag,
        grant: &RecordKeyGrant,
    ) -> Result<Vec<u8>, StoreError> {
        let mut plain =
            zeroize::Zeroizing::new(Vec::with_capacity(1 + grant.record.len() + KEY_LEN));
        plain.push(grant.record.len() as u8);
        plain.extend_from_slice(grant.record.as_bytes());
        plain.extend_from_slice(grant.key.as_bytes());
        self.wrap(&label(b"record-key", network, tag, &grant.key_id), &plain)
    }

    fn unwrap_record_key(
        &self,
        network: &[u8],
        tag: &[u8],
        key_id: &[u8],
        wrapped: &[u8],
    ) -> Result<RecordKeyGrant, StoreError> {
        let tag: RecordTag = tag
            .try_into()
            .map_err(|_| StoreError::Corrupt("record_tag"))?;
        let key_id: RecordKeyId = key_id
            .try_into()
            .map_err(|_| StoreError::Corrupt("record_keys.key_id"))?;
        let plain = zeroize::Zeroizing::new(
            self.storage_key
                .unwrap_secret(&label(b"record-key", network, &tag, &key_id), wrapped)
                .map_err(|_| StoreError::Unwrap("record key"))?,
        );
        let (&len, rest) = plain
            .split_first()
            .ok_or(StoreError::Corrupt("record key"))?;
        let len = usize::from(len);
        if rest.len() != len + KEY_LEN {
            return Err(StoreError::Corrupt("record key"));
        }
        let record = String::from_utf8(rest[..len].to_vec())
            .map_err(|_| StoreError::Corrupt("record key"))?;
        if self.record_tag(network, &record) != tag {
            return Err(StoreError::Tampered(
                "a record key does not match its tag".into(),
            ));
        }
        Ok(RecordKeyGrant {
            record,
            key_id,
            key: SecretKey::from_slice(&rest[len..]).ok_or(StoreError::Corrupt("record key"))?,
        })
    }

    pub(crate) fn put_record_key(
        &self,
        network: &[u8],
        grant: &RecordKeyGrant,
    ) -> Result<(), StoreError> {
        let tag = self.record_tag(network, &grant.record);
        if self.record_key_row(network, &tag, &grant.key_id)?.is_some() {
            return Ok(());
        }
        let wrapped = self.wrap_record_key(network, &tag, grant)?;
        let ordinal: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(ordinal), 0) + 1 FROM record_keys")?
            .query_row([], |r| r.get(0))?;
        self.put(
            &RECORD_KEYS,
            Put::Insert,
            &[
                &ordinal,
                &network,
                &tag.as_slice(),
                &grant.key_id.as_slice(),
                &wrapped,
            ],
        )?;
        Ok(())
    }

    fn record_key_row(
        &self,
        network: &[u8],
        tag: &RecordTag,
        key_id: &RecordKeyId,
    ) -> Result<Option<RecordKeyGrant>, StoreError> {
        let wrapped = self.select_one(
            &RECORD_KEYS,
            "WHERE network = ?1 AND record_tag = ?2 AND key_id = ?3",
            params![network, tag.as_slice(), key_id.as_slice()],
            |r| r.get::<Vec<u8>>("key"),
        )?;
        wrapped
            .map(|w| self.unwrap_record_key(network, tag, key_id, &w))
            .transpose()
    }

    pub(crate) fn record_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<Option<SecretKey>, StoreError> {
        let tag = self.record_tag(network, record);
        Ok(self.record_key_row(network, &tag, key_id)?.map(|g| g.key))
    }

    /// The most recently stored key of a record: the one new changes are sealed under.
    pub(crate) fn current_record_key(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<RecordKeyGrant>, StoreError> {
        let tag = self.record_tag(network, record);
        let row = self.select_one(
            &RECORD_KEYS,
            "WHERE network = ?1 AND record_tag = ?2 ORDER BY ordinal DESC LIMIT 1",
            params![network, tag.as_slice()],
            |r| Ok((r.get::<Vec<u8>>("key_id")?, r.get::<Vec<u8>>("key")?)),
        )?;
        row.map(|(key_id, wrapped)| self.unwrap_record_key(network, &tag, &key_id, &wrapped))
            .transpose()
    }

    /// Every key id this node holds for a record.
    pub(crate) fn record_key_ids(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Vec<RecordKeyId>, StoreError> {
        let tag = self.record_tag(network, record);
        let ids = self.select(
            &RECORD_KEYS,
            "WHERE network = ?1 AND record_tag = ?2 ORDER BY ordinal",
            params![network, tag.as_slice()],
            |r| r.get::<Vec<u8>>("key_id"),
        )?;
        ids.into_iter()
            .map(|id| {
                id.as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("record_keys.key_id"))
            })
            .collect()
    }

    /// Every record key of a network that may be granted to it (withheld
    /// keys excluded), oldest first (so the last per record is current).
    pub(crate) fn record_key_grants(
        &self,
        network: &[u8],
    ) -> Result<Vec<RecordKeyGrant>, StoreError> {
        let withheld: std::collections::HashSet<(Vec<u8>, Vec<u8>)> = self
            .select(&WITHHELD_KEYS, "WHERE network = ?1", [network], |r| {
                Ok((r.get("record_tag")?, r.get("key_id")?))
            })?
            .into_iter()
            .collect();
        let rows = self.select(
            &RECORD_KEYS,
            "WHERE network = ?1 ORDER BY ordinal",
            [network],
            |r| {
                Ok((
                    r.get::<Vec<u8>>("record_tag")?,
                    r.get::<Vec<u8>>("key_id")?,
                    r.get::<Vec<u8>>("key")?,
                ))
            },
        )?;
        rows.into_iter()
            .filter(|(tag, id, _)| !withheld.contains(&(tag.clone(), id.clone())))
            .map(|(tag, id, wrapped)| self.unwrap_record_key(network, &tag, &id, &wrapped))
            .collect()
    }

    /// Records (with a key) in `network`, by name.
    #[cfg(test)]
    pub(crate) fn keyed_records(&self, network: &[u8]) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .record_key_grants(network)?
            .into_iter()
            .map(|g| g.record)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Every key id of a record this node knows of: held, and withheld from
    /// the network by others.
    pub(crate) fn all_record_key_ids(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Vec<RecordKeyId>, StoreError> {
        let tag = self.record_tag(network, record);
        let mut ids = self.record_key_ids(network, record)?;
        let withheld = self.select(
            &WITHHELD_KEYS,
            "WHERE network = ?1 AND record_tag = ?2",
            params![network, tag.as_slice()],
            |r| r.get::<Vec<u8>>("key_id"),
        )?;
        for id in withheld {
            let id: RecordKeyId = id
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("withheld_keys.key_id"))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Shred every key of a record: returns the ids known (held or
    /// withheld). With `secure_delete`, nothing of the wrapped keys stays in
    /// the file.
    pub(crate) fn delete_record_keys(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Vec<RecordKeyId>, StoreError> {
        let ids = self.all_record_key_ids(network, record)?;
        let tag = self.record_tag(network, record);
        for table in ["record_keys", "withheld_keys", "withholding"] {
            self.conn
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE network = ?1 AND record_tag = ?2"
                ))?
                .execute(params![network, tag.as_slice()])?;
        }
        Ok(ids)
    }

    /// Mark a record key as withheld from the network (never granted).
    pub(crate) fn put_withheld_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<(), StoreError> {
        self.put_key_mark(&WITHHELD_KEYS, network, record, key_id)
    }

    /// Whether a record key is known to be withheld from the network.
    pub(crate) fn is_withheld_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<bool, StoreError> {
        self.has_key_mark(&WITHHELD_KEYS, network, record, key_id)
    }

    /// Start (`Some`) or stop (`None`) writing a record under a withheld key.
    pub(crate) fn set_withholding(
        &self,
        network: &[u8],
        record: &str,
        key_id: Option<&RecordKeyId>,
    ) -> Result<(), StoreError> {
        let tag = self.record_tag(network, record);
        match key_id {
            Some(key_id) => {
                self.put(
                    &WITHHOLDING,
                    Put::OrReplace,
                    &[&network, &tag.as_slice(), &key_id.as_slice()],
                )?;
            }
            None => {
                self.conn
                    .prepare_cached(
                        "DELETE FROM withholding WHERE network = ?1 AND record_tag = ?2",
                    )?
                    .execute(params![network, tag.as_slice()])?;
            }
        }
        Ok(())
    }

    /// The withheld key this node writes a record under, if it withholds it.
    pub(crate) fn withholding_key(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<RecordKeyGrant>, StoreError> {
        let tag = self.record_tag(network, record);
        let key_id = self.select_one(
            &WITHHOLDING,
            "WHERE network = ?1 AND record_tag = ?2",
            params![network, tag.as_slice()],
            |r| r.get::<Vec<u8>>("key_id"),
        )?;
        let Some(key_id) = key_id else {
            return Ok(None);
        };
        let key_id: RecordKeyId = key_id
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("withholding.key_id"))?;
        self.record_key_row(network, &tag, &key_id)?
            .ok_or(StoreError::Corrupt("withholding"))
            .map(Some)
    }

    // ---- materialised records ---------------------------------------------

    /// Make sure the record has its row (name sealed, no base document yet).
    fn ensure_record_row(&self, network: &[u8], record: &str) -> Result<RecordTag, StoreError> {
        let tag = self.record_tag(network, record);
        if !self.has_record(network, record)? {
            let name = self.seal_name(network, &tag, record)?;
            let none: Option<Vec<u8>> = None;
            self.put(
                &RECORDS,
                Put::Insert,
                &[&network, &tag.as_slice(), &name, &none],
            )?;
        }
        Ok(tag)
    }

    /// Store a materialised record, sealed under the storage key (bound to
    /// network and record, so rows cannot be swapped).
    pub(crate) fn save_record(
        &self,
        network: &[u8],
        record: &str,
        doc: &[u8],
    ) -> Result<(), StoreError> {
        let tag = self.record_tag(network, record);
        let doc = self.wrap(&doc_label(network, record), doc)?;
        let name = self.seal_name(network, &tag, record)?;
        self.conn
            .prepare_cached("DELETE FROM record_increments WHERE network = ?1 AND record_tag = ?2")?
            .execute(params![network, tag.as_slice()])?;
        self.put(
            &RECORDS,
            Put::OrReplace,
            &[&network, &tag.as_slice(), &name, &Some(doc)],
        )?;
        Ok(())
    }

    pub(crate) fn load_record(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let tag = self.record_tag(network, record);
        let sealed = self.select_one(
            &RECORDS,
            "WHERE network = ?1 AND record_tag = ?2",
            params![network, tag.as_slice()],
            |r| r.get::<Option<Vec<u8>>>("doc"),
        )?;
        sealed
            .flatten()
            .map(|sealed| {
                self.storage_key
                    .unwrap_secret(&doc_label(network, record), &sealed)
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
        let tag = self.ensure_record_row(network, record)?;
        let count: i64 = self
            .conn
            .prepare_cached(
                "SELECT coalesce(max(seq) + 1, 0) FROM record_increments
                 WHERE network = ?1 AND record_tag = ?2",
            )?
            .query_row(params![network, tag.as_slice()], |r| r.get(0))?;
        let sealed = self.wrap(&doc_label(network, record), increment)?;
        self.put(
            &RECORD_INCREMENTS,
            Put::Insert,
            &[&network, &tag.as_slice(), &count, &sealed],
        )?;
        Ok(count.max(0) as usize + 1)
    }

    /// The increments saved after a record's base, in order.
    pub(crate) fn record_increments(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let tag = self.record_tag(network, record);
        let rows = self.select(
            &RECORD_INCREMENTS,
            "WHERE network = ?1 AND record_tag = ?2 ORDER BY seq",
            params![network, tag.as_slice()],
            |r| r.get::<Vec<u8>>("bytes"),
        )?;
        rows.into_iter()
            .map(|sealed| {
                self.storage_key
                    .unwrap_secret(&doc_label(network, record), &sealed)
                    .map_err(|_| StoreError::Unwrap("record increment"))
            })
            .collect()
    }

    /// Whether a materialised record exists (without reading it).
    pub(crate) fn has_record(&self, network: &[u8], record: &str) -> Result<bool, StoreError> {
        let tag = self.record_tag(network, record);
        Ok(self
            .select_one(
                &RECORDS,
                "WHERE network = ?1 AND record_tag = ?2",
                params![network, tag.as_slice()],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// The materialised records of a network, by name.
    pub(crate) fn records(&self, network: &[u8]) -> Result<Vec<String>, StoreError> {
        let rows = self.select(&RECORDS, "WHERE network = ?1", [network], |r| {
            Ok((r.get::<Vec<u8>>("record_tag")?, r.get::<Vec<u8>>("name")?))
        })?;
        let mut names = rows
            .into_iter()
            .map(|(tag, name)| self.open_name(network, &tag, &name))
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        Ok(names)
    }

    /// Drop one materialised record (base and increments).
    pub(crate) fn delete_record(&self, network: &[u8], record: &str) -> Result<(), StoreError> {
        let tag = self.record_tag(network, record);
        for table in ["record_increments", "records"] {
            self.conn
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE network = ?1 AND record_tag = ?2"
                ))?
                .execute(params![network, tag.as_slice()])?;
        }
        Ok(())
    }

    pub(crate) fn clear_records(&self, network: &[u8]) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM record_increments WHERE network = ?1")?
            .execute([network])?;
        self.conn
            .execute("DELETE FROM records WHERE network = ?1", [network])?;
        Ok(())
    }

    // ---- erasure ----------------------------------------------------------

    /// Record that a chart was erased (replacing an older tombstone).
    pub(crate) fn put_tombstone(
        &self,
        network: &[u8],
        stone: &Tombstone,
    ) -> Result<(), StoreError> {
        let tag = self.record_tag(network, &stone.record);
        let name = self.seal_name(network, &tag, &stone.record)?;
        self.put(
            &ERASED,
            Put::OrReplace,
            &[
                &network,
                &tag.as_slice(),
                &name,
                &stone.entry.0.as_slice(),
                &stone.author.0.as_slice(),
                &(stone.time_ms as i64),
                &stone.scope,
            ],
        )?;
        Ok(())
    }

    fn tombstone_row(
        &self,
        network: &[u8],
        r: &super::tables::Verified<'_, '_>,
    ) -> Result<Tombstone, StoreError> {
        let tag: Vec<u8> = r.get("record_tag")?;
        Ok(Tombstone {
            record: self.open_name(network, &tag, &r.get::<Vec<u8>>("name")?)?,
            entry: EntryId::from_slice(&r.get::<Vec<u8>>("entry_id")?)
                .ok_or(StoreError::Corrupt("erased.entry_id"))?,
            author: AuthorId::from_slice(&r.get::<Vec<u8>>("author")?)
                .ok_or(StoreError::Corrupt("erased.author"))?,
            time_ms: blob_u64(r.get("time_ms")?),
            scope: r.get("scope")?,
        })
    }

    /// The tombstone of a record, if it was erased.
    pub(crate) fn tombstone(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<Tombstone>, StoreError> {
        let tag = self.record_tag(network, record);
        self.select_one(
            &ERASED,
            "WHERE network = ?1 AND record_tag = ?2",
            params![network, tag.as_slice()],
            |r| self.tombstone_row(network, r),
        )
    }

    /// Every erased chart of a network, by record name.
    pub(crate) fn tombstones(&self, network: &[u8]) -> Result<Vec<Tombstone>, StoreError> {
        let mut stones = self.select(&ERASED, "WHERE network = ?1", [network], |r| {
            self.tombstone_row(network, r)
        })?;
        stones.sort_by(|a, b| a.record.cmp(&b.record));
        Ok(stones)
    }

    /// Remember that a record key was shredded (changes under it stay unreadable).
    pub(crate) fn put_shredded_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<(), StoreError> {
        self.put_key_mark(&SHREDDED_KEYS, network, record, key_id)
    }

    /// Whether a record key was shredded by an erasure.
    pub(crate) fn is_shredded_key(
        &self,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<bool, StoreError> {
        self.has_key_mark(&SHREDDED_KEYS, network, record, key_id)
    }

    /// A (network, record, key id) row in a table of marked keys (withheld, shredded).
    fn put_key_mark(
        &self,
        table: &'static super::tables::Table,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<(), StoreError> {
        let tag = self.record_tag(network, record);
        self.put(
            table,
            Put::OrIgnore,
            &[&network, &tag.as_slice(), &key_id.as_slice()],
        )?;
        Ok(())
    }

    fn has_key_mark(
        &self,
        table: &'static super::tables::Table,
        network: &[u8],
        record: &str,
        key_id: &RecordKeyId,
    ) -> Result<bool, StoreError> {
        let tag = self.record_tag(network, record);
        Ok(self
            .select_one(
                table,
                "WHERE network = ?1 AND record_tag = ?2 AND key_id = ?3",
                params![network, tag.as_slice(), key_id.as_slice()],
                |_| Ok(()),
            )?
            .is_some())
    }

    // ---- shares and consent deadlines --------------------------------------

    /// Remember that this node shares `from` into `to` for `purpose`.
    pub(crate) fn put_share(
        &self,
        from: &[u8],
        to: &[u8],
        purpose: &str,
    ) -> Result<(), StoreError> {
        self.put(&SHARES, Put::OrIgnore, &[&from, &to, &purpose])?;
        Ok(())
    }

    /// `(to network, purpose)` of every share out of `from`.
    pub(crate) fn shares_from(&self, from: &[u8]) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
        self.select(
            &SHARES,
            "WHERE from_network = ?1 ORDER BY to_network, purpose",
            [from],
            |r| Ok((r.get("to_network")?, r.get("purpose")?)),
        )
    }

    /// Set (or, with `None`, clear) when a shared chart's consent must be
    /// decided again.
    pub(crate) fn set_consent_due(
        &self,
        network: &[u8],
        record: &str,
        due: Option<(&[u8], &str, u64)>,
    ) -> Result<(), StoreError> {
        let tag = self.record_tag(network, record);
        match due {
            Some((from, purpose, due_ms)) => {
                let name = self.seal_name(network, &tag, record)?;
                self.put(
                    &CONSENT_DUE,
                    Put::OrReplace,
                    &[
                        &network,
                        &tag.as_slice(),
                        &name,
                        &from,
                        &purpose,
                        &(due_ms as i64),
                    ],
                )?;
            }
            None => {
                self.conn
                    .prepare_cached(
                        "DELETE FROM consent_due WHERE network = ?1 AND record_tag = ?2",
                    )?
                    .execute(params![network, tag.as_slice()])?;
            }
        }
        Ok(())
    }

    fn consent_due_row(
        &self,
        r: &super::tables::Verified<'_, '_>,
    ) -> Result<ConsentDue, StoreError> {
        let network: Vec<u8> = r.get("network")?;
        let tag: Vec<u8> = r.get("record_tag")?;
        Ok(ConsentDue {
            record: self.open_name(&network, &tag, &r.get::<Vec<u8>>("name")?)?,
            network,
            from_network: r.get("from_network")?,
            purpose: r.get("purpose")?,
            due_ms: blob_u64(r.get("due_ms")?),
        })
    }

    /// Shared charts whose consent must be decided again at or before `now_ms`.
    pub(crate) fn consent_due_by(&self, now_ms: u64) -> Result<Vec<ConsentDue>, StoreError> {
        self.select(
            &CONSENT_DUE,
            "WHERE due_ms <= ?1 ORDER BY due_ms, network, record_tag",
            [i64::try_from(now_ms).unwrap_or(i64::MAX)],
            |r| self.consent_due_row(r),
        )
    }

    /// The deadline of one shared chart.
    pub(crate) fn consent_due_of(
        &self,
        network: &[u8],
        record: &str,
    ) -> Result<Option<ConsentDue>, StoreError> {
        let tag = self.record_tag(network, record);
        self.select_one(
            &CONSENT_DUE,
            "WHERE network = ?1 AND record_tag = ?2",
            params![network, tag.as_slice()],
            |r| self.consent_due_row(r),
        )
    }
}

/// `HMAC-SHA256(key, network length ‖ network ‖ record)[..16]`.
pub(super) fn tag_of(key: &[u8; 32], network: &[u8], record: &str) -> RecordTag {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(&(network.len() as u16).to_be_bytes());
    mac.update(network);
    mac.update(record.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}
