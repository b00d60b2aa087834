//! Relay messages larger than a transport allows, carried as authenticated
//! chunks plus a manifest (the NATS relay uses it: a server refuses messages
//! above its `max_payload`, 1 MB by default).
//!
//! Flow, publisher: [`split`] cuts an encoded wire message into chunk frames
//! of at most `max_frame` bytes. The transport stores every frame *outside*
//! the network's ordered log (NATS: the network stream's chunk subject) and
//! learns each frame's position there, then [`Split::manifest`] gives the
//! manifest, which is published *in* the ordered log like any other message.
//! Reader: a manifest met in relay order is [`Manifest::decode`]d and
//! [`reassemble`]d by reading each listed position; the result is delivered
//! at the manifest's place in relay order, so every member sees the same
//! order (the first Commit of an epoch stays the first) and a cursor never
//! stops halfway through a message. Frames of a publish that died before its
//! manifest are never referenced; a retried publish simply makes a new
//! transfer.
//!
//! Authentication runs in one chain. The manifest lists the SHA-256 of each
//! frame; each frame names its transfer, its index and the chunk count, so a
//! frame from another message or from another place fails. The reassembled
//! bytes must hash to the manifest's message hash; and the message itself (a
//! signed entry, an MLS message) is then authenticated end to end by the
//! receiving node exactly as an unchunked one. A missing, reordered, forged
//! or truncated chunk is reported by a [`ChunkError`] naming the chunk; it
//! never yields bytes.
//!
//! ```text
//! struct {
//!     uint8  version = 1;
//!     opaque transfer[16];         // random per publish
//!     uint32 index;                // 0 .. count-1
//!     uint32 count;
//!     opaque data<0..2^32-1>;      // message[index * step ..]
//! } ChunkFrame;
//! struct {
//!     uint8  version = 1;
//!     opaque transfer[16];
//!     opaque message_hash[32];     // SHA-256 of the whole message
//!     uint32 message_len;
//!     uint32 count;                // 1 .. MAX_CHUNKS
//!     struct { uint64 position; opaque frame_hash[32]; } chunks[count];
//! } Manifest;                      // positions strictly increasing
//! ```
//!
//! ```
//! use careledger::relay::chunk::{reassemble, split, Manifest};
//! let message = vec![7u8; 10_000];
//! let parts = split(&message, 4_096, [1; 16]).unwrap();
//! // The transport stores the frames somewhere and reports their positions.
//! let positions: Vec<u64> = (0..parts.frames.len() as u64).map(|i| 100 + i).collect();
//! let manifest = Manifest::decode(&parts.manifest(&positions).unwrap().encode()).unwrap();
//! let frame_at = |position: u64| -> Result<_, ()> {
//!     Ok(parts.frames.get((position - 100) as usize).cloned())
//! };
//! assert_eq!(reassemble(&manifest, frame_at).unwrap().unwrap(), message);
//! ```

use sha2::{Digest, Sha256};

use crate::codec::{put_vec32, CodecError, Reader};

/// Version byte of chunk frames and manifests.
pub const CHUNK_VERSION: u8 = 1;
/// Most chunks one message may have.
pub const MAX_CHUNKS: usize = 4_096;
/// Largest message that may be chunked (64 MiB; entries are at most 16 MiB).
pub const MAX_MESSAGE_LEN: usize = 64 << 20;
/// Bytes a frame adds around its data.
pub const FRAME_OVERHEAD: usize = 1 + 16 + 4 + 4 + 4;
/// Smallest frame [`split`] accepts: below it the manifest would outgrow the chunks.
pub const MIN_FRAME: usize = 1_024;

/// A chunked message could not be reassembled. The variant names the chunk
/// (0-based) when one chunk is at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The manifest's bytes are not a manifest.
    #[error("chunk manifest malformed: {0}")]
    MalformedManifest(CodecError),
    /// The manifest lists positions out of order.
    #[error("chunk {index} is listed out of order in its manifest")]
    ListedOutOfOrder {
        /// The chunk.
        index: u32,
    },
    /// Nothing is stored at a listed position.
    #[error("chunk {index} of {count} is missing")]
    Missing {
        /// The chunk.
        index: u32,
        /// Chunks in the message.
        count: u32,
    },
    /// The frame at a listed position does not hash to what the manifest says.
    #[error("chunk {index} does not match its manifest (forged or altered)")]
    Forged {
        /// The chunk.
        index: u32,
    },
    /// The frame is authentic but belongs at another index (the manifest lists
    /// genuine chunks in the wrong order).
    #[error("chunk {index} holds chunk {found} of the message: chunks reordered")]
    Reordered {
        /// Where it is listed.
        index: u32,
        /// The index it carries.
        found: u32,
    },
    /// The frame belongs to another message (its transfer or chunk count differs).
    #[error("chunk {index} belongs to another message")]
    ForeignChunk {
        /// The chunk.
        index: u32,
    },
    /// The frames are authentic but do not add up to the message the manifest names.
    #[error("reassembled message does not match the manifest's length or hash")]
    MessageMismatch,
}

/// Splitting a message failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The message is larger than [`MAX_MESSAGE_LEN`] or needs more than [`MAX_CHUNKS`] chunks.
    #[error("a {len} byte message cannot be chunked into frames of {max_frame} bytes (at most {MAX_CHUNKS} chunks, {MAX_MESSAGE_LEN} bytes)")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The frame size asked for.
        max_frame: usize,
    },
    /// Frames this small cannot carry a message.
    #[error("frames of {0} bytes are too small to chunk a message (at least {MIN_FRAME})")]
    FrameTooSmall(usize),
    /// The positions given do not match the frames.
    #[error("{given} positions for {frames} frames")]
    PositionCount {
        /// Positions given.
        given: usize,
        /// Frames made.
        frames: usize,
    },
}

/// One chunk location and its frame's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// Where the transport stored the frame (NATS: its stream sequence).
    pub position: u64,
    /// SHA-256 of the whole frame.
    pub frame_hash: [u8; 32],
}

/// What a reader needs to find, check and join a chunked message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Random per publish: frames of two publishes of one message never mix.
    pub transfer: [u8; 16],
    /// SHA-256 of the whole message.
    pub message_hash: [u8; 32],
    /// Length of the whole message.
    pub message_len: u32,
    /// The frames, in message order.
    pub chunks: Vec<ChunkRef>,
}

/// A message cut into frames, waiting for their positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The transfer id written into every frame.
    pub transfer: [u8; 16],
    /// The frames to store, in order.
    pub frames: Vec<Vec<u8>>,
    message_hash: [u8; 32],
    message_len: u32,
}

/// Cut `message` into frames of at most `max_frame` bytes for one transfer.
pub fn split(message: &[u8], max_frame: usize, transfer: [u8; 16]) -> Result<Split, SplitError> {
    if max_frame < MIN_FRAME {
        return Err(SplitError::FrameTooSmall(max_frame));
    }
    let step = max_frame - FRAME_OVERHEAD;
    let count = message.len().div_ceil(step).max(1);
    if message.len() > MAX_MESSAGE_LEN || count > MAX_CHUNKS {
        return Err(SplitError::TooLarge {
            len: message.len(),
            max_frame,
        });
    }
    let frames = (0..count)
        .map(|index| {
            let data = &message
                [(index * step).min(message.len())..((index + 1) * step).min(message.len())];
            let mut frame = Vec::with_capacity(FRAME_OVERHEAD + data.len());
            frame.push(CHUNK_VERSION);
            frame.extend_from_slice(&transfer);
            frame.extend_from_slice(&(index as u32).to_be_bytes());
            frame.extend_from_slice(&(count as u32).to_be_bytes());
            put_vec32(&mut frame, data);
            frame
        })
        .collect();
    Ok(Split {
        transfer,
        frames,
        message_hash: Sha256::digest(message).into(),
        // Fits: checked against MAX_MESSAGE_LEN above.
        message_len: message.len() as u32,
    })
}

impl Split {
    /// The manifest once each frame's position is known (same order as `frames`).
    pub fn manifest(&self, positions: &[u64]) -> Result<Manifest, SplitError> {
        if positions.len() != self.frames.len() {
            return Err(SplitError::PositionCount {
                given: positions.len(),
                frames: self.frames.len(),
            });
        }
        Ok(Manifest {
            transfer: self.transfer,
            message_hash: self.message_hash,
            message_len: self.message_len,
            chunks: positions
                .iter()
                .zip(&self.frames)
                .map(|(&position, frame)| ChunkRef {
                    position,
                    frame_hash: Sha256::digest(frame).into(),
                })
                .collect(),
        })
    }
}

impl Manifest {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 16 + 32 + 8 + self.chunks.len() * 40);
        out.push(CHUNK_VERSION);
        out.extend_from_slice(&self.transfer);
        out.extend_from_slice(&self.message_hash);
        out.extend_from_slice(&self.message_len.to_be_bytes());
        out.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        for chunk in &self.chunks {
            out.extend_from_slice(&chunk.position.to_be_bytes());
            out.extend_from_slice(&chunk.frame_hash);
        }
        out
    }

    /// Decode; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, ChunkError> {
        Self::read(bytes).map_err(ChunkError::MalformedManifest)
    }

    fn read(bytes: &[u8]) -> Result<Manifest, CodecError> {
        let mut r = Reader::new(bytes);
        if r.u8("version")? != CHUNK_VERSION {
            return Err(CodecError::Invalid("version"));
        }
        let transfer = r.array("transfer")?;
        let message_hash = r.array("message_hash")?;
        let message_len = r.u32("message_len")?;
        if message_len as usize > MAX_MESSAGE_LEN {
            return Err(CodecError::TooLong("message_len"));
        }
        let count = r.u32("count")? as usize;
        if count == 0 {
            return Err(CodecError::Invalid("count"));
        }
        if count > MAX_CHUNKS {
            return Err(CodecError::TooLong("chunks"));
        }
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            chunks.push(ChunkRef {
                position: r.u64("position")?,
                frame_hash: r.array("frame_hash")?,
            });
        }
        r.finish()?;
        Ok(Manifest {
            transfer,
            message_hash,
            message_len,
            chunks,
        })
    }
}

/// A decoded chunk frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkFrame<'a> {
    /// The transfer it belongs to.
    pub transfer: [u8; 16],
    /// Its index.
    pub index: u32,
    /// Chunks in its message.
    pub count: u32,
    /// Its share of the message.
    pub data: &'a [u8],
}

impl<'a> ChunkFrame<'a> {
    /// Decode; never panics.
    pub fn decode(bytes: &'a [u8]) -> Result<ChunkFrame<'a>, CodecError> {
        let mut r = Reader::new(bytes);
        if r.u8("version")? != CHUNK_VERSION {
            return Err(CodecError::Invalid("version"));
        }
        let frame = ChunkFrame {
            transfer: r.array("transfer")?,
            index: r.u32("index")?,
            count: r.u32("count")?,
            data: r.vec32("data")?,
        };
        r.finish()?;
        Ok(frame)
    }
}

/// A chunked message being joined, frame by frame in manifest order (for
/// transports whose reads are asynchronous; [`reassemble`] drives it for
/// synchronous ones). Stops at the first bad chunk.
#[derive(Debug)]
pub struct Reassembly<'m> {
    manifest: &'m Manifest,
    message: Vec<u8>,
    next: u32,
}

impl<'m> Reassembly<'m> {
    /// Start joining; refuses a manifest listing positions out of order.
    pub fn new(manifest: &'m Manifest) -> Result<Self, ChunkError> {
        for (index, pair) in manifest.chunks.windows(2).enumerate() {
            if pair[1].position <= pair[0].position {
                return Err(ChunkError::ListedOutOfOrder {
                    index: index as u32 + 1,
                });
            }
        }
        Ok(Reassembly {
            manifest,
            // Grown as authentic frames arrive: a forged length costs nothing.
            message: Vec::new(),
            next: 0,
        })
    }

    /// The position of the next frame to read, `None` when all are in.
    pub fn next_position(&self) -> Option<u64> {
        self.manifest
            .chunks
            .get(self.next as usize)
            .map(|c| c.position)
    }

    /// Add the frame read at [`Reassembly::next_position`] (`None`: nothing stored there).
    pub fn push(&mut self, frame: Option<&[u8]>) -> Result<(), ChunkError> {
        let index = self.next;
        let count = self.manifest.chunks.len() as u32;
        let Some(chunk) = self.manifest.chunks.get(index as usize) else {
            return Err(ChunkError::MessageMismatch);
        };
        let Some(frame) = frame else {
            return Err(ChunkError::Missing { index, count });
        };
        if <[u8; 32]>::from(Sha256::digest(frame)) != chunk.frame_hash {
            return Err(ChunkError::Forged { index });
        }
        let Ok(decoded) = ChunkFrame::decode(frame) else {
            // Hashes match, so the manifest's author listed a non-frame.
            return Err(ChunkError::Forged { index });
        };
        if decoded.transfer != self.manifest.transfer || decoded.count != count {
            return Err(ChunkError::ForeignChunk { index });
        }
        if decoded.index != index {
            return Err(ChunkError::Reordered {
                index,
                found: decoded.index,
            });
        }
        if self.message.len() + decoded.data.len() > self.manifest.message_len as usize {
            return Err(ChunkError::MessageMismatch);
        }
        self.message.extend_from_slice(decoded.data);
        self.next += 1;
        Ok(())
    }

    /// The whole message, once every frame is in and it hashes right.
    pub fn finish(self) -> Result<Vec<u8>, ChunkError> {
        if self.next as usize != self.manifest.chunks.len()
            || self.message.len() != self.manifest.message_len as usize
            || <[u8; 32]>::from(Sha256::digest(&self.message)) != self.manifest.message_hash
        {
            return Err(ChunkError::MessageMismatch);
        }
        Ok(self.message)
    }
}

/// Join a chunked message, reading each frame with `frame_at(position)`
/// (`Ok(None)`: nothing stored there). `Err` only for the transport's own
/// failures (retry later); `Ok(Err(_))` when the chunks are not the message
/// the manifest names.
pub fn reassemble<E>(
    manifest: &Manifest,
    mut frame_at: impl FnMut(u64) -> Result<Option<Vec<u8>>, E>,
) -> Result<Result<Vec<u8>, ChunkError>, E> {
    let mut joining = match Reassembly::new(manifest) {
        Ok(joining) => joining,
        Err(error) => return Ok(Err(error)),
    };
    while let Some(position) = joining.next_position() {
        let frame = frame_at(position)?;
        if let Err(error) = joining.push(frame.as_deref()) {
            return Ok(Err(error));
        }
    }
    Ok(joining.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn stored(parts: &Split, first: u64) -> (Manifest, HashMap<u64, Vec<u8>>) {
        // Every other position, as if other messages sat in between.
        let positions: Vec<u64> = (0..parts.frames.len() as u64)
            .map(|i| first + 2 * i)
            .collect();
        let store = positions
            .iter()
            .copied()
            .zip(parts.frames.iter().cloned())
            .collect();
        (parts.manifest(&positions).unwrap(), store)
    }

    fn join(manifest: &Manifest, store: &HashMap<u64, Vec<u8>>) -> Result<Vec<u8>, ChunkError> {
        reassemble(manifest, |p| Ok::<_, ()>(store.get(&p).cloned())).unwrap()
    }

    fn message(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trip_with_frame_limit() {
        let msg = message(10_000);
        let parts = split(&msg, 2_048, [3; 16]).unwrap();
        assert_eq!(parts.frames.len(), 5);
        assert!(parts.frames.iter().all(|f| f.len() <= 2_048));
        let (manifest, store) = stored(&parts, 10);
        let decoded = Manifest::decode(&manifest.encode()).unwrap();
        assert_eq!(decoded, manifest);
        assert_eq!(join(&decoded, &store).unwrap(), msg);
    }

    #[test]
    fn missing_chunk_is_named() {
        let parts = split(&message(5_000), 1_024, [1; 16]).unwrap();
        let (manifest, mut store) = stored(&parts, 1);
        store.remove(&manifest.chunks[3].position);
        assert_eq!(
            join(&manifest, &store),
            Err(ChunkError::Missing {
                index: 3,
                count: parts.frames.len() as u32
            })
        );
    }

    #[test]
    fn forged_chunk_is_named() {
        let parts = split(&message(5_000), 1_024, [1; 16]).unwrap();
        let (manifest, mut store) = stored(&parts, 1);
        let last = store.get_mut(&manifest.chunks[2].position).unwrap();
        let at = last.len() - 1;
        last[at] ^= 1;
        assert_eq!(
            join(&manifest, &store),
            Err(ChunkError::Forged { index: 2 })
        );
    }

    #[test]
    fn reordered_chunks_are_named() {
        let parts = split(&message(5_000), 1_024, [1; 16]).unwrap();
        let (mut manifest, store) = stored(&parts, 1);
        // Positions swapped (still listed in increasing order: the hashes follow).
        let (a, b) = (manifest.chunks[1], manifest.chunks[2]);
        manifest.chunks[1] = ChunkRef {
            position: a.position,
            frame_hash: b.frame_hash,
        };
        manifest.chunks[2] = ChunkRef {
            position: b.position,
            frame_hash: a.frame_hash,
        };
        let swapped: HashMap<u64, Vec<u8>> = store
            .iter()
            .map(|(&p, f)| {
                let p = if p == a.position {
                    b.position
                } else if p == b.position {
                    a.position
                } else {
                    p
                };
                (p, f.clone())
            })
            .collect();
        assert_eq!(
            join(&manifest, &swapped),
            Err(ChunkError::Reordered { index: 1, found: 2 })
        );
        // Listed in decreasing positions.
        let (mut backwards, _) = stored(&parts, 1);
        backwards.chunks.swap(1, 2);
        assert_eq!(
            join(&backwards, &store),
            Err(ChunkError::ListedOutOfOrder { index: 2 })
        );
    }

    #[test]
    fn chunk_of_another_transfer_is_refused() {
        let msg = message(5_000);
        let ours = split(&msg, 1_024, [1; 16]).unwrap();
        let theirs = split(&msg, 1_024, [2; 16]).unwrap();
        let (_, mut store) = stored(&ours, 1);
        let positions: Vec<u64> = (0..ours.frames.len() as u64).map(|i| 1 + 2 * i).collect();
        let mut manifest = ours.manifest(&positions).unwrap();
        // A genuine frame of another publish, listed with its true hash.
        store.insert(positions[1], theirs.frames[1].clone());
        manifest.chunks[1].frame_hash = Sha256::digest(&theirs.frames[1]).into();
        assert_eq!(
            join(&manifest, &store),
            Err(ChunkError::ForeignChunk { index: 1 })
        );
    }

    #[test]
    fn wrong_message_hash_or_length_is_refused() {
        let parts = split(&message(3_000), 1_024, [1; 16]).unwrap();
        let (mut manifest, store) = stored(&parts, 1);
        manifest.message_hash[0] ^= 1;
        assert_eq!(join(&manifest, &store), Err(ChunkError::MessageMismatch));
        let (mut manifest, store) = stored(&parts, 1);
        manifest.message_len -= 1;
        assert_eq!(join(&manifest, &store), Err(ChunkError::MessageMismatch));
    }

    #[test]
    fn limits() {
        assert_eq!(
            split(b"x", 100, [0; 16]),
            Err(SplitError::FrameTooSmall(100))
        );
        let big = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert!(matches!(
            split(&big, 1 << 20, [0; 16]),
            Err(SplitError::TooLarge { .. })
        ));
        let parts = split(&message(10), 1_024, [0; 16]).unwrap();
        assert_eq!(parts.frames.len(), 1);
        assert_eq!(
            parts.manifest(&[1, 2]),
            Err(SplitError::PositionCount {
                given: 2,
                frames: 1
            })
        );
        let mut zero = parts.manifest(&[1]).unwrap().encode();
        zero[1 + 16 + 32 + 4..1 + 16 + 32 + 8].copy_from_slice(&0u32.to_be_bytes());
        zero.truncate(1 + 16 + 32 + 8);
        assert_eq!(
            Manifest::decode(&zero),
            Err(ChunkError::MalformedManifest(CodecError::Invalid("count")))
        );
    }

    #[test]
    fn manifest_v1_layout() {
        let parts = split(&message(2_500), 1_024, [0xAB; 16]).unwrap();
        let manifest = parts.manifest(&[5, 9, 12]).unwrap();
        insta::assert_snapshot!("manifest_v1_hex", hex::encode(manifest.encode()));
        insta::assert_snapshot!("frame_v1_hex", hex::encode(&parts.frames[2]));
    }

    proptest! {
        #[test]
        fn any_message_round_trips(len in 0usize..20_000, frame in 1_024usize..6_000, first in 1u64..1_000) {
            let msg = message(len);
            let parts = split(&msg, frame, [9; 16]).unwrap();
            prop_assert!(parts.frames.iter().all(|f| f.len() <= frame));
            let (manifest, store) = stored(&parts, first);
            prop_assert_eq!(join(&Manifest::decode(&manifest.encode()).unwrap(), &store).unwrap(), msg);
        }

        #[test]
        fn any_single_bit_flip_is_caught(len in 1usize..6_000, chunk in 0usize..8, bit in 0usize..8 * 1_100) {
            let msg = message(len);
            let parts = split(&msg, 1_024, [9; 16]).unwrap();
            let (manifest, mut store) = stored(&parts, 1);
            let index = chunk % parts.frames.len();
            let frame = store.get_mut(&manifest.chunks[index].position).unwrap();
            let bit = bit % (frame.len() * 8);
            frame[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(join(&manifest, &store), Err(ChunkError::Forged { index: index as u32 }));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Manifest::decode(&bytes);
            let _ = ChunkFrame::decode(&bytes);
        }
    }
}
