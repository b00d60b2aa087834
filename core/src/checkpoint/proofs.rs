//! Proofs about checkpoints, their encodings and their verifiers.
//!
//! Every proof starts with a version byte and a kind byte, so bytes meant
//! for one decoder are refused by the others:
//!
//! ```text
//! struct { uint8 count; opaque hash[32][count]; } Path;     // count <= 96
//!
//! struct {
//!     uint8  version = 1;
//!     uint8  kind = 1;                 // entry inclusion
//!     opaque author[32];
//!     uint64 seq;
//!     opaque chain_root[32];           // root of the author's chain at the checkpoint
//!     Path   chain_path;               // entry id at index seq-1 of the chain tree
//!     Path   author_path;              // chain leaf at the author's position
//! } EntryInclusionProof;
//!
//! struct {
//!     uint8  version = 1;
//!     uint8  kind = 2;                 // extension
//!     uint32 earlier_count; opaque earlier_chain_roots[32][earlier_count];
//!     uint32 later_count;   opaque later_chain_roots[32][later_count];
//!     Path   consistency[earlier_count];  // per earlier author, in head order
//! } ExtensionProof;
//! ```
//!
//! Kind 3 is the dataset membership proof ([`super::dataset`]).

use crate::codec::{CodecError, Reader};
use crate::entry::{AuthorId, EntryId};
use crate::merkle::{
    hex_serde, path_codec, verify_consistency, verify_inclusion, Hash, VerifyMerkleError,
};

use super::{author_level_root, chain_leaf, CheckExtensionError, Checkpoint};

/// The proof format version this library writes and reads.
pub const PROOF_VERSION: u8 = 1;

/// Kind byte of an [`EntryInclusionProof`].
pub(crate) const KIND_ENTRY_INCLUSION: u8 = 1;
/// Kind byte of an [`ExtensionProof`].
pub(crate) const KIND_EXTENSION: u8 = 2;
/// Kind byte of a dataset membership proof.
pub(crate) const KIND_MEMBERSHIP: u8 = 3;

/// Decoding a proof failed; the variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeProofError {
    /// The bytes end before the named field is complete.
    #[error("proof truncated in field `{0}`")]
    Truncated(&'static str),
    /// The version is not one this library reads.
    #[error("proof format version {0} is not supported (this library reads version 1)")]
    UnsupportedVersion(u8),
    /// The kind byte is not the one this decoder reads.
    #[error("proof kind {0} is not the kind expected here")]
    WrongKind(u8),
    /// A length or count exceeds the format's limit.
    #[error("proof field `{0}` is longer than allowed")]
    TooLong(&'static str),
    /// The named field breaks a rule of the format.
    #[error("proof field `{0}` is invalid")]
    Invalid(&'static str),
    /// Bytes remain after the last field.
    #[error("proof has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl From<CodecError> for DecodeProofError {
    fn from(error: CodecError) -> Self {
        match error {
            CodecError::Truncated(field) => Self::Truncated(field),
            CodecError::TooLong(field) => Self::TooLong(field),
            CodecError::Invalid(field) => Self::Invalid(field),
            CodecError::Trailing(n) => Self::TrailingBytes(n),
        }
    }
}

/// Read and check the version and kind bytes.
pub(crate) fn read_preamble(r: &mut Reader<'_>, kind: u8) -> Result<(), DecodeProofError> {
    let version = r.u8("version")?;
    if version != PROOF_VERSION {
        return Err(DecodeProofError::UnsupportedVersion(version));
    }
    let found = r.u8("kind")?;
    if found != kind {
        return Err(DecodeProofError::WrongKind(found));
    }
    Ok(())
}

/// A list of hashes with a four-byte count; the bytes are taken before any
/// allocation, so a hostile count fails as truncation.
fn read_hashes(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<Hash>, DecodeProofError> {
    let count = r.u32(field)? as usize;
    let bytes = r.take(count.saturating_mul(32), field)?;
    Ok(bytes
        .chunks_exact(32)
        .filter_map(|c| Hash::try_from(c).ok())
        .collect())
}

fn put_hashes(out: &mut Vec<u8>, hashes: &[Hash]) {
    out.extend_from_slice(&(hashes.len() as u32).to_be_bytes());
    for hash in hashes {
        out.extend_from_slice(hash);
    }
}

mod author_hex {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(author: &AuthorId, s: S) -> Result<S::Ok, S::Error> {
        hex_serde::hash::serialize(&author.0, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AuthorId, D::Error> {
        hex_serde::hash::deserialize(d).map(AuthorId)
    }
}

/// Proof that one entry is in a checkpoint: its place in its author's chain
/// tree and that chain's place among the authors.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInclusionProof {
    /// The entry's author.
    #[serde(with = "author_hex")]
    pub author: AuthorId,
    /// The entry's seq in that author's chain.
    pub seq: u64,
    /// Root of the author's chain tree at the checkpoint.
    #[serde(with = "hex_serde::hash")]
    pub chain_root: Hash,
    /// Audit path of the entry id in the chain tree.
    #[serde(with = "hex_serde::hashes")]
    pub chain_path: Vec<Hash>,
    /// Audit path of the chain leaf in the author-level tree.
    #[serde(with = "hex_serde::hashes")]
    pub author_path: Vec<Hash>,
}

impl EntryInclusionProof {
    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            2 + 32 + 8 + 32 + 2 + 32 * (self.chain_path.len() + self.author_path.len()),
        );
        out.extend_from_slice(&[PROOF_VERSION, KIND_ENTRY_INCLUSION]);
        out.extend_from_slice(&self.author.0);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.chain_root);
        path_codec::put(&mut out, &self.chain_path);
        path_codec::put(&mut out, &self.author_path);
        out
    }

    /// Decode; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeProofError> {
        let mut r = Reader::new(bytes);
        read_preamble(&mut r, KIND_ENTRY_INCLUSION)?;
        let proof = EntryInclusionProof {
            author: AuthorId(r.array("author")?),
            seq: r.u64("seq")?,
            chain_root: r.array("chain_root")?,
            chain_path: path_codec::read(&mut r, "chain_path")?,
            author_path: path_codec::read(&mut r, "author_path")?,
        };
        r.finish()?;
        Ok(proof)
    }
}

/// An entry inclusion proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyEntryInclusionError {
    /// The proof's author has no chain in the checkpoint.
    #[error("the proof's author has no entries in the checkpoint")]
    AuthorNotInCheckpoint,
    /// The proof's seq is 0 or beyond the author's head.
    #[error("the proof's seq is outside the author's chain")]
    SeqOutOfRange,
    /// The proof is for the head's seq but the entry is not the head.
    #[error("the entry is not the author's head at that seq")]
    HeadMismatch,
    /// The entry is not at its seq in the chain tree.
    #[error("chain path: {0}")]
    ChainPath(VerifyMerkleError),
    /// The chain is not at its author's place in the checkpoint root.
    #[error("author path: {0}")]
    AuthorPath(VerifyMerkleError),
}

/// Check that `entry` is in `checkpoint`. The positions come from the
/// checkpoint's heads, so a proof cannot place an entry anywhere but at its
/// author's chain and seq.
pub fn verify_entry_inclusion(
    checkpoint: &Checkpoint,
    entry: &EntryId,
    proof: &EntryInclusionProof,
) -> Result<(), VerifyEntryInclusionError> {
    let position = checkpoint
        .position(&proof.author)
        .ok_or(VerifyEntryInclusionError::AuthorNotInCheckpoint)?;
    let head = &checkpoint.heads()[position];
    if proof.seq == 0 || proof.seq > head.seq {
        return Err(VerifyEntryInclusionError::SeqOutOfRange);
    }
    if proof.seq == head.seq && *entry != head.id {
        return Err(VerifyEntryInclusionError::HeadMismatch);
    }
    verify_inclusion(
        &proof.chain_root,
        head.seq,
        proof.seq - 1,
        &entry.0,
        &proof.chain_path,
    )
    .map_err(VerifyEntryInclusionError::ChainPath)?;
    verify_inclusion(
        checkpoint.root(),
        checkpoint.heads().len() as u64,
        position as u64,
        &chain_leaf(head, &proof.chain_root),
        &proof.author_path,
    )
    .map_err(VerifyEntryInclusionError::AuthorPath)
}

/// Proof that a later checkpoint extends an earlier one: every author chain
/// of both (so both roots can be recomputed from their heads) and, per
/// earlier author, an RFC 6962 consistency proof from its earlier chain to
/// its later chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionProof {
    /// Chain roots of the earlier checkpoint, in its head order.
    #[serde(with = "hex_serde::hashes")]
    pub earlier_chain_roots: Vec<Hash>,
    /// Chain roots of the later checkpoint, in its head order.
    #[serde(with = "hex_serde::hashes")]
    pub later_chain_roots: Vec<Hash>,
    /// Per earlier head, the consistency path from its chain in the earlier
    /// checkpoint to the same author's chain in the later one.
    #[serde(with = "consistency_hex")]
    pub consistency: Vec<Vec<Hash>>,
}

mod consistency_hex {
    use super::*;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Path(#[serde(with = "hex_serde::hashes")] Vec<Hash>);

    pub(super) fn serialize<S: Serializer>(paths: &[Vec<Hash>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(paths.iter().map(|p| Path(p.clone())))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<Hash>>, D::Error> {
        Ok(Vec::<Path>::deserialize(d)?
            .into_iter()
            .map(|p| p.0)
            .collect())
    }
}

impl ExtensionProof {
    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROOF_VERSION, KIND_EXTENSION];
        put_hashes(&mut out, &self.earlier_chain_roots);
        put_hashes(&mut out, &self.later_chain_roots);
        // One path per earlier root by construction; a hand-made proof with
        // a different count encodes what a decoder will read back.
        for i in 0..self.earlier_chain_roots.len() {
            path_codec::put(
                &mut out,
                self.consistency.get(i).map(Vec::as_slice).unwrap_or(&[]),
            );
        }
        out
    }

    /// Decode; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeProofError> {
        let mut r = Reader::new(bytes);
        read_preamble(&mut r, KIND_EXTENSION)?;
        let earlier_chain_roots = read_hashes(&mut r, "earlier_chain_roots")?;
        let later_chain_roots = read_hashes(&mut r, "later_chain_roots")?;
        let consistency = earlier_chain_roots
            .iter()
            .map(|_| path_codec::read(&mut r, "consistency"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(ExtensionProof {
            earlier_chain_roots,
            later_chain_roots,
            consistency,
        })
    }
}

/// An extension proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyExtensionError {
    /// The heads already rule out an extension.
    #[error(transparent)]
    NotExtended(#[from] CheckExtensionError),
    /// The proof's lists do not match the checkpoints' head counts.
    #[error("proof lists do not match the checkpoints' heads")]
    WrongCount,
    /// The earlier chain roots do not give the earlier checkpoint's root.
    #[error("earlier chain roots do not match the earlier checkpoint")]
    EarlierRootMismatch,
    /// The later chain roots do not give the later checkpoint's root.
    #[error("later chain roots do not match the later checkpoint")]
    LaterRootMismatch,
    /// An author's earlier chain is not a prefix of its later chain.
    #[error("author {author}'s chain is not consistent: {error}")]
    Consistency {
        /// The author.
        author: AuthorId,
        /// Why the consistency proof failed.
        error: VerifyMerkleError,
    },
}

/// Check that `later` extends `earlier`: the heads allow it
/// ([`Checkpoint::extends`]) and every earlier author chain is a prefix of
/// the same author's later chain.
pub fn verify_extension(
    earlier: &Checkpoint,
    later: &Checkpoint,
    proof: &ExtensionProof,
) -> Result<(), VerifyExtensionError> {
    later.extends(earlier)?;
    if proof.earlier_chain_roots.len() != earlier.heads().len()
        || proof.later_chain_roots.len() != later.heads().len()
        || proof.consistency.len() != earlier.heads().len()
    {
        return Err(VerifyExtensionError::WrongCount);
    }
    if author_level_root(earlier.heads(), &proof.earlier_chain_roots) != *earlier.root() {
        return Err(VerifyExtensionError::EarlierRootMismatch);
    }
    if author_level_root(later.heads(), &proof.later_chain_roots) != *later.root() {
        return Err(VerifyExtensionError::LaterRootMismatch);
    }
    for ((old, old_root), path) in earlier
        .heads()
        .iter()
        .zip(&proof.earlier_chain_roots)
        .zip(&proof.consistency)
    {
        let author = old.author;
        let position = later
            .position(&author)
            .ok_or(CheckExtensionError::AuthorMissing { author })?;
        let new = &later.heads()[position];
        verify_consistency(
            old_root,
            old.seq,
            &proof.later_chain_roots[position],
            new.seq,
            path,
        )
        .map_err(|error| VerifyExtensionError::Consistency { author, error })?;
    }
    Ok(())
}
