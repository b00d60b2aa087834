//! Messages as they travel through a relay.
//!
//! Every relay message is one [`WireMessage`]: an entry, an MLS Commit, an MLS
//! Welcome, or a heads announcement (the sender's per-author chain heads, which
//! lets peers resend what it lacks). Entries and MLS messages are already
//! authenticated end to end; a forged heads announcement can only cause resends.
//!
//! ```text
//! struct { uint8 version = 1; uint8 tag; select (tag) {
//!     case 1: opaque entry<0..2^32-1>;
//!     case 2: opaque mls_commit<0..2^32-1>;
//!     case 3: opaque mls_welcome<0..2^32-1>;
//!     case 4: opaque sender[32]; uint32 n; struct { opaque author[32]; uint64 seq; } heads[n];
//! } } WireMessage;
//! ```

use crate::codec::{put_vec32, CodecError, Reader};
use crate::entry::AuthorId;

/// Version byte of the wire envelope.
pub const WIRE_VERSION: u8 = 1;

/// One relay message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireMessage {
    /// An encoded [`Entry`](crate::entry::Entry).
    Entry(Vec<u8>),
    /// A serialized MLS Commit (an `MlsMessageOut`).
    Commit(Vec<u8>),
    /// A serialized MLS Welcome (an `MlsMessageOut`).
    Welcome(Vec<u8>),
    /// The sender's per-author heads: `(author, highest contiguous seq)`.
    Heads {
        /// Who announces.
        sender: AuthorId,
        /// Its heads.
        heads: Vec<(AuthorId, u64)>,
    },
}

/// A relay message could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeWireError {
    /// Unknown envelope version.
    #[error("wire message version {0} is not supported")]
    UnsupportedVersion(u8),
    /// Unknown message tag.
    #[error("wire message tag {0} is unknown")]
    UnknownTag(u8),
    /// Malformed fields.
    #[error("wire message malformed: {0}")]
    Malformed(#[from] CodecError),
}

impl WireMessage {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![WIRE_VERSION];
        match self {
            Self::Entry(bytes) => {
                out.push(1);
                put_vec32(&mut out, bytes);
            }
            Self::Commit(bytes) => {
                out.push(2);
                put_vec32(&mut out, bytes);
            }
            Self::Welcome(bytes) => {
                out.push(3);
                put_vec32(&mut out, bytes);
            }
            Self::Heads { sender, heads } => {
                out.push(4);
                out.extend_from_slice(&sender.0);
                out.extend_from_slice(&(heads.len() as u32).to_be_bytes());
                for (author, seq) in heads {
                    out.extend_from_slice(&author.0);
                    out.extend_from_slice(&seq.to_be_bytes());
                }
            }
        }
        out
    }

    /// Decode; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeWireError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != WIRE_VERSION {
            return Err(DecodeWireError::UnsupportedVersion(version));
        }
        let message = match r.u8("tag")? {
            1 => Self::Entry(r.vec32("entry")?.to_vec()),
            2 => Self::Commit(r.vec32("mls_commit")?.to_vec()),
            3 => Self::Welcome(r.vec32("mls_welcome")?.to_vec()),
            4 => {
                let sender = AuthorId(r.array("sender")?);
                let n = r.u32("heads")? as usize;
                if n > 1 << 20 {
                    return Err(CodecError::TooLong("heads").into());
                }
                let mut heads = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    heads.push((AuthorId(r.array("author")?), r.u64("seq")?));
                }
                Self::Heads { sender, heads }
            }
            tag => return Err(DecodeWireError::UnknownTag(tag)),
        };
        r.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        for message in [
            WireMessage::Entry(vec![1, 2, 3]),
            WireMessage::Commit(vec![]),
            WireMessage::Welcome(vec![9; 300]),
            WireMessage::Heads {
                sender: AuthorId([1; 32]),
                heads: vec![(AuthorId([2; 32]), 5)],
            },
        ] {
            assert_eq!(WireMessage::decode(&message.encode()).unwrap(), message);
        }
        assert_eq!(
            WireMessage::decode(&[1, 9]),
            Err(DecodeWireError::UnknownTag(9))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = WireMessage::decode(&bytes);
        }
    }
}
