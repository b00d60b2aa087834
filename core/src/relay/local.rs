//! A relay in one SQLite file that several nodes on one machine share: the
//! embedded default. Its rowid is the total order; identical messages are
//! stored once (like a JetStream message id), so resends are idempotent. The
//! relay does not judge content (receivers do), but a stored copy altered on
//! disk is replaced when the genuine message is published again. A batch
//! ([`Relay::publish_batch`]) is one transaction: one fsync for all of it.

use std::path::Path;

use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use super::{Relay, RelayError, RelayMessage};
use crate::node::NetworkId;

/// A relay file.
pub struct LocalRelay {
    conn: Connection,
}

impl std::fmt::Debug for LocalRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRelay").finish_non_exhaustive()
    }
}

fn io(error: rusqlite::Error) -> RelayError {
    RelayError::Io(error.to_string())
}

impl LocalRelay {
    /// Open or create the relay file at `path`.
    pub fn open(path: &Path) -> Result<Self, RelayError> {
        let conn = Connection::open(path).map_err(|e| RelayError::Unavailable(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(io)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(io)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(io)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                network BLOB NOT NULL, message_id BLOB NOT NULL, bytes BLOB NOT NULL,
                UNIQUE (network, message_id));
             CREATE INDEX IF NOT EXISTS messages_by_network ON messages (network, seq);",
        )
        .map_err(|e| RelayError::Unavailable(e.to_string()))?;
        Ok(Self { conn })
    }

    /// Messages stored for a network (for reports and tests).
    pub fn len(&self, network: &NetworkId) -> Result<u64, RelayError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE network = ?1",
                [&network.0],
                |r| r.get(0),
            )
            .map_err(io)?;
        Ok(n.max(0) as u64)
    }

    /// Whether the network has no messages.
    pub fn is_empty(&self, network: &NetworkId) -> Result<bool, RelayError> {
        Ok(self.len(network)? == 0)
    }
}

impl Relay for LocalRelay {
    fn publish(&mut self, network: &NetworkId, message: &[u8]) -> Result<(), RelayError> {
        self.publish_batch(network, &[message])
    }

    /// One transaction (one fsync) for the whole batch.
    fn publish_batch(&mut self, network: &NetworkId, messages: &[&[u8]]) -> Result<(), RelayError> {
        let tx = self.conn.unchecked_transaction().map_err(io)?;
        {
            // A stored copy whose bytes no longer match its id was altered on
            // disk: drop it so the genuine message is appended afresh and
            // readers whose cursor passed the damaged copy receive it.
            let mut repair = tx
                .prepare_cached(
                    "DELETE FROM messages WHERE network = ?1 AND message_id = ?2 AND bytes != ?3",
                )
                .map_err(io)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages (network, message_id, bytes) VALUES (?1, ?2, ?3)",
                )
                .map_err(io)?;
            for message in messages {
                let id: [u8; 32] = Sha256::digest(message).into();
                repair
                    .execute(params![network.0, id.as_slice(), message])
                    .map_err(io)?;
                insert
                    .execute(params![network.0, id.as_slice(), message])
                    .map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    fn fetch(
        &mut self,
        network: &NetworkId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RelayMessage>, RelayError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, bytes FROM messages WHERE network = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(io)?;
        let rows = stmt
            .query_map(
                params![
                    network.0,
                    after.min(i64::MAX as u64) as i64,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(RelayMessage {
                        seq: r.get::<_, i64>(0)?.max(0) as u64,
                        bytes: r.get(1)?,
                    })
                },
            )
            .map_err(io)?;
        rows.collect::<Result<_, _>>().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_stored_in_order_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut relay = LocalRelay::open(&dir.path().join("relay.sqlite")).unwrap();
        let net = NetworkId(vec![1; 16]);
        relay.publish(&net, b"zero").unwrap();
        relay
            .publish_batch(&net, &[b"one", b"two", b"zero", b"one", b"three"])
            .unwrap();
        let got: Vec<Vec<u8>> = relay
            .fetch(&net, 0, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.bytes)
            .collect();
        assert_eq!(got, [&b"zero"[..], b"one", b"two", b"three"]);
        relay.publish_batch(&net, &[]).unwrap();
        assert_eq!(relay.len(&net).unwrap(), 4);
    }

    #[test]
    fn republishing_repairs_a_tampered_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.sqlite");
        let mut relay = LocalRelay::open(&path).unwrap();
        let net = NetworkId(vec![1; 16]);
        relay.publish(&net, b"genuine").unwrap();
        relay.publish(&net, b"genuine").unwrap();
        assert_eq!(relay.len(&net).unwrap(), 1, "duplicates are stored once");
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE messages SET bytes = x'00'", [])
            .unwrap();
        let seen = relay.fetch(&net, 0, 10).unwrap();
        assert_eq!(seen[0].bytes, vec![0], "the relay delivers what it holds");
        relay.publish(&net, b"genuine").unwrap();
        let fresh = relay.fetch(&net, seen[0].seq, 10).unwrap();
        assert_eq!(
            fresh.len(),
            1,
            "a reader past the damaged copy gets the genuine one"
        );
        assert_eq!(fresh[0].bytes, b"genuine");
        assert_eq!(relay.len(&net).unwrap(), 1);
    }
}
