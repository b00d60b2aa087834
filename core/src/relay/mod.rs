//! Relays carry entries and MLS messages between nodes.
//!
//! A relay is an append-only log per network with a total order: whatever it
//! is (the in-memory [`MemoryRelay`] in tests, a [`LocalRelay`] file shared by
//! nodes on one machine, NATS JetStream between institutions), it only has to
//! [`publish`](Relay::publish) (or [`publish_batch`](Relay::publish_batch)) and
//! [`fetch`](Relay::fetch) after a cursor.
//! Relay order decides MLS commit races (DESIGN §5); nodes remember their
//! cursor in their own store. Relays see ciphertext and clear headers only.
//!
//! ```
//! use careledger::node::NetworkId;
//! use careledger::relay::{MemoryRelay, Relay};
//! let mut relay = MemoryRelay::new();
//! let net = NetworkId(vec![1; 16]);
//! relay.publish(&net, b"one").unwrap();
//! relay.publish(&net, b"two").unwrap();
//! let got = relay.fetch(&net, 0, 10).unwrap();
//! assert_eq!(got.len(), 2);
//! assert!(relay.fetch(&net, got[1].seq, 10).unwrap().is_empty());
//! ```

pub mod chunk;
mod local;
mod memory;
#[cfg(feature = "nats")]
pub mod nats;

pub use local::LocalRelay;
pub use memory::{FaultConfig, MemoryRelay};

use crate::node::NetworkId;

/// One message in relay order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayMessage {
    /// Position in the network's log; strictly increasing, starting above 0.
    pub seq: u64,
    /// The message bytes (an encoded [`WireMessage`](crate::wire::WireMessage)).
    pub bytes: Vec<u8>,
}

/// A relay operation failed; nothing was lost (publish can be retried).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay cannot be reached or opened.
    #[error("relay unavailable: {0}")]
    Unavailable(String),
    /// The relay failed while reading or writing.
    #[error("relay I/O failed: {0}")]
    Io(String),
}

/// Anything that totally orders a network's messages.
pub trait Relay {
    /// Append a message to the network's log. Publishing the same bytes twice
    /// may or may not store them twice; receivers tolerate both.
    fn publish(&mut self, network: &NetworkId, message: &[u8]) -> Result<(), RelayError>;

    /// Append several messages, in order, as one durable write where the
    /// relay can (one transaction of the relay file, pipelined JetStream
    /// publishes awaited together). `Ok` means every message is stored; on
    /// `Err` some may be, and publishing them all again is safe.
    fn publish_batch(&mut self, network: &NetworkId, messages: &[&[u8]]) -> Result<(), RelayError> {
        for message in messages {
            self.publish(network, message)?;
        }
        Ok(())
    }

    /// Up to `limit` messages with `seq > after`, in relay order.
    fn fetch(
        &mut self,
        network: &NetworkId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RelayMessage>, RelayError>;
}
