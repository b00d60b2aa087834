//! Checkpoints: a statement of a network's ledger that every member computes
//! identically from the same entries, with proofs that an entry is in it and
//! that a later checkpoint extends an earlier one.
//!
//! Flow: a node lists its accepted entries of a network as
//! `(author, seq, entry id)` (or hands over the encoded entries), builds a
//! [`CheckpointTree`], and publishes [`CheckpointTree::checkpoint`] (signed
//! and stored by the caller; [`Checkpoint::digest`] is its id, cited by audit
//! entries, model cards and analytics runs). Asked about one entry, it
//! answers [`CheckpointTree::prove_inclusion`]; asked how an older checkpoint
//! relates to this one, it answers [`CheckpointTree::prove_extension`]. Anyone
//! holding only the checkpoints checks the answers with
//! [`verify_entry_inclusion`] and [`verify_extension`]. Datasets commit to
//! their records separately ([`dataset`]).
//!
//! # The tree: one append-only chain per author
//!
//! A network has no single append-only order that all members agree on
//! without consensus: entries of different authors arrive in different orders
//! at different nodes (DESIGN §4), so a tree over local arrival order would
//! give every node a different root, and a tree over all entries sorted by
//! `(author, seq)` is not append-only (a new entry of an early author lands
//! in the middle). What *is* append-only and identical everywhere is each
//! author's chain: seq 1, 2, 3 … with each entry hashing its predecessor. So
//! the root is two-level, RFC 6962 hashing throughout:
//!
//! ```text
//! chain root(A) = MTH(entry ids of A in seq order)                  // RFC 6962 tree, append-only
//! chain leaf(A) = author[32] ‖ uint64 seq ‖ head id[32] ‖ chain root(A)[32]
//! root          = MTH(chain leaf of every author, sorted by author id)
//! ```
//!
//! The leaves are still the entry ids in `(author, seq)` order; the chain
//! level groups them so that:
//! - the root does not depend on arrival order, forks or duplicates;
//! - an inclusion proof ([`EntryInclusionProof`]) is an RFC audit path in the
//!   author's chain plus one in the author level, whose positions the
//!   verifier derives from the checkpoint's heads, not from the prover;
//! - consistency is an RFC 6962 consistency proof *per author chain*: a later
//!   checkpoint **extends** an earlier one when they share the network, every
//!   author of the earlier one is in the later one with a head at least as
//!   far along (the same id if equally far: [`Checkpoint::extends`]), and each
//!   earlier chain tree is a prefix of the later chain tree
//!   ([`ExtensionProof`]). Authors may appear; none may vanish or rewrite.
//!   Because entry ids hash their predecessor, a chain prefix is also the
//!   same ledger content, not just the same leaves. A fork (two entries for
//!   one `(author, seq)`) held by two nodes shows up as two checkpoints
//!   neither of which extends the other.
//!
//! Accepted ledgers have gap-free chains starting at seq 1 (the ledger holds
//! an entry back until its predecessor arrives), so a checkpoint is fully
//! described by its heads: `size` is the sum of the head seqs, and
//! [`CheckpointTree::build`] refuses gaps and forks rather than guess.
//!
//! # Encoding
//!
//! ```text
//! struct {
//!     uint8  version = 1;
//!     opaque network<1..255>;        // MLS group id
//!     uint64 size;                   // number of entries = sum of head seqs
//!     opaque root[32];
//!     uint32 head_count;
//!     struct { opaque author[32]; uint64 seq; opaque id[32]; } heads[head_count];
//!                                    // strictly ascending by author, seq >= 1
//! } Checkpoint;
//! ```
//!
//! The encoding is canonical (decoding rejects unsorted heads, a wrong size,
//! trailing bytes), so [`Checkpoint::digest`] names exactly one checkpoint.
//!
//! ```
//! use careledger::checkpoint::{verify_entry_inclusion, verify_extension, CheckpointTree};
//! use careledger::entry::{AuthorId, EntryId};
//! use careledger::node::NetworkId;
//!
//! let (a, b) = (AuthorId([1; 32]), AuthorId([2; 32]));
//! let network = NetworkId(vec![9; 16]);
//! let earlier = CheckpointTree::build(
//!     network.clone(),
//!     [(a, 1, EntryId([10; 32])), (b, 1, EntryId([20; 32]))],
//! )
//! .unwrap();
//! // Arrival order does not matter, nor do duplicates.
//! let later = CheckpointTree::build(
//!     network,
//!     [(b, 1, EntryId([20; 32])), (a, 2, EntryId([11; 32])), (a, 1, EntryId([10; 32])), (b, 1, EntryId([20; 32]))],
//! )
//! .unwrap();
//!
//! let proof = later.prove_inclusion(&EntryId([11; 32])).unwrap();
//! verify_entry_inclusion(later.checkpoint(), &EntryId([11; 32]), &proof).unwrap();
//!
//! later.checkpoint().extends(earlier.checkpoint()).unwrap();
//! let extension = later.prove_extension(earlier.checkpoint()).unwrap();
//! verify_extension(earlier.checkpoint(), later.checkpoint(), &extension).unwrap();
//! ```

pub mod dataset;
mod proofs;

use std::collections::{btree_map, BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::codec::{CodecError, Reader};
use crate::entry::{AuthorId, DecodeEntryError, Entry, EntryId};
use crate::merkle::{Hash, MerkleTree, ProveMerkleError, EMPTY_ROOT, MAX_TREE_SIZE};
use crate::node::{Head, NetworkId};

pub use proofs::{
    verify_entry_inclusion, verify_extension, DecodeProofError, EntryInclusionProof,
    ExtensionProof, VerifyEntryInclusionError, VerifyExtensionError, PROOF_VERSION,
};

/// The checkpoint format version this library writes and reads.
pub const CHECKPOINT_VERSION: u8 = 1;

/// Bytes of one encoded head: author, seq, id.
const HEAD_LEN: usize = 32 + 8 + 32;

/// A network's ledger state: per-author heads and the Merkle root over every
/// entry id (see the [module docs](self) for the tree). Built by
/// [`CheckpointTree::build`] or [`Checkpoint::decode`]; its fields obey the
/// format's rules whichever way it was made.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "json::CheckpointJson", try_from = "json::CheckpointJson")]
pub struct Checkpoint {
    network: NetworkId,
    heads: Vec<Head>,
    size: u64,
    root: Hash,
}

/// Decoding a checkpoint failed; the variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeCheckpointError {
    /// The bytes end before the named field is complete.
    #[error("checkpoint truncated in field `{0}`")]
    Truncated(&'static str),
    /// The version is not one this library reads.
    #[error("checkpoint format version {0} is not supported (this library reads version 1)")]
    UnsupportedVersion(u8),
    /// A length or count exceeds the format's limit.
    #[error("checkpoint field `{0}` is longer than allowed")]
    TooLong(&'static str),
    /// The named field breaks a rule of the format (heads out of order, a
    /// seq of 0, a size that is not the sum of the head seqs, …).
    #[error("checkpoint field `{0}` is invalid")]
    Invalid(&'static str),
    /// Bytes remain after the last head.
    #[error("checkpoint has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl From<CodecError> for DecodeCheckpointError {
    fn from(error: CodecError) -> Self {
        match error {
            CodecError::Truncated(field) => Self::Truncated(field),
            CodecError::TooLong(field) => Self::TooLong(field),
            CodecError::Invalid(field) => Self::Invalid(field),
            CodecError::Trailing(n) => Self::TrailingBytes(n),
        }
    }
}

/// Building a checkpoint from entries failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildCheckpointError {
    /// The network id is empty or longer than 255 bytes.
    #[error("network id must be 1 to 255 bytes")]
    InvalidNetwork,
    /// An entry claims seq 0; chains start at 1.
    #[error("author {author} has an entry with seq 0")]
    SeqZero {
        /// The author.
        author: AuthorId,
    },
    /// Two different entries claim one `(author, seq)`: a fork. The ledger
    /// keeps only one of them; checkpoint what it kept.
    #[error("author {author} has two different entries at seq {seq}")]
    Fork {
        /// The author.
        author: AuthorId,
        /// The contested seq.
        seq: u64,
    },
    /// One entry id appears at two positions.
    #[error("entry {id} appears at two chain positions")]
    DuplicateEntryId {
        /// The id.
        id: EntryId,
    },
    /// An author's chain misses an entry below its head.
    #[error("author {author} has no entry at seq {missing}")]
    Gap {
        /// The author.
        author: AuthorId,
        /// The first seq missing.
        missing: u64,
    },
    /// More entries than [`MAX_TREE_SIZE`].
    #[error("too many entries for one checkpoint")]
    TooLarge,
    /// An encoded entry did not decode.
    #[error("an entry did not decode: {0}")]
    Entry(#[from] DecodeEntryError),
    /// An encoded entry belongs to another network.
    #[error("an entry belongs to another network")]
    OtherNetwork,
}

/// A later checkpoint does not extend an earlier one; the variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckExtensionError {
    /// The checkpoints belong to different networks.
    #[error("checkpoints belong to different networks")]
    NetworkMismatch,
    /// An author of the earlier checkpoint is missing from the later one.
    #[error("author {author} is missing from the later checkpoint")]
    AuthorMissing {
        /// The author.
        author: AuthorId,
    },
    /// An author's chain is shorter in the later checkpoint.
    #[error("author {author}'s chain is shorter in the later checkpoint")]
    ChainShorter {
        /// The author.
        author: AuthorId,
    },
    /// An author has the same seq but a different head id: a fork.
    #[error("author {author} has a different head at the same seq")]
    HeadDiffers {
        /// The author.
        author: AuthorId,
    },
}

impl Checkpoint {
    /// Build the checkpoint of `entries` (see [`CheckpointTree::build`]);
    /// build the tree instead to answer proofs.
    pub fn compute(
        network: NetworkId,
        entries: impl IntoIterator<Item = (AuthorId, u64, EntryId)>,
    ) -> Result<Checkpoint, BuildCheckpointError> {
        Ok(CheckpointTree::build(network, entries)?.checkpoint)
    }

    /// The network the ledger belongs to.
    pub fn network(&self) -> &NetworkId {
        &self.network
    }

    /// Each author's last entry, ascending by author.
    pub fn heads(&self) -> &[Head] {
        &self.heads
    }

    /// The head of `author`, if the author has entries.
    pub fn head(&self, author: &AuthorId) -> Option<&Head> {
        self.position(author).map(|i| &self.heads[i])
    }

    /// Number of entries: the sum of the head seqs.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle root over all entry ids.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// Position of `author` among the heads.
    fn position(&self, author: &AuthorId) -> Option<usize> {
        self.heads.binary_search_by(|h| h.author.cmp(author)).ok()
    }

    /// Check the rules every checkpoint obeys, whatever built it.
    fn from_parts(
        network: NetworkId,
        heads: Vec<Head>,
        size: u64,
        root: Hash,
    ) -> Result<Checkpoint, DecodeCheckpointError> {
        if network.0.is_empty() || network.0.len() > 255 {
            return Err(DecodeCheckpointError::Invalid("network"));
        }
        if heads.iter().any(|h| h.seq == 0) {
            return Err(DecodeCheckpointError::Invalid("seq"));
        }
        if heads.windows(2).any(|w| w[0].author >= w[1].author) {
            return Err(DecodeCheckpointError::Invalid("heads"));
        }
        let sum = heads
            .iter()
            .try_fold(0u64, |sum, h| sum.checked_add(h.seq))
            .filter(|sum| *sum <= MAX_TREE_SIZE)
            .ok_or(DecodeCheckpointError::Invalid("size"))?;
        if sum != size {
            return Err(DecodeCheckpointError::Invalid("size"));
        }
        // The empty ledger has exactly one root; anything else there is not canonical.
        if heads.is_empty() && root != EMPTY_ROOT {
            return Err(DecodeCheckpointError::Invalid("root"));
        }
        Ok(Checkpoint {
            network,
            heads,
            size,
            root,
        })
    }

    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            1 + 1 + self.network.0.len() + 8 + 32 + 4 + HEAD_LEN * self.heads.len(),
        );
        out.push(CHECKPOINT_VERSION);
        // Invariant: 1..=255 bytes, checked by every constructor.
        crate::codec::put_vec8(&mut out, &self.network.0);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&(self.heads.len() as u32).to_be_bytes());
        for head in &self.heads {
            out.extend_from_slice(&head.author.0);
            out.extend_from_slice(&head.seq.to_be_bytes());
            out.extend_from_slice(&head.id.0);
        }
        out
    }

    /// Decode and check a checkpoint; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, DecodeCheckpointError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != CHECKPOINT_VERSION {
            return Err(DecodeCheckpointError::UnsupportedVersion(version));
        }
        let network = NetworkId(r.vec8("network")?.to_vec());
        let size = r.u64("size")?;
        let root = r.array("root")?;
        let count = r.u32("head_count")? as usize;
        // Take the heads' bytes first: a hostile count fails here, before
        // anything is allocated for it.
        let head_bytes = count
            .checked_mul(HEAD_LEN)
            .ok_or(DecodeCheckpointError::TooLong("heads"))
            .and_then(|len| Ok(r.take(len, "heads")?))?;
        let heads = head_bytes
            .chunks_exact(HEAD_LEN)
            .map(|chunk| {
                let mut h = Reader::new(chunk);
                Ok(Head {
                    author: AuthorId(h.array("author")?),
                    seq: h.u64("seq")?,
                    id: EntryId(h.array("id")?),
                })
            })
            .collect::<Result<Vec<_>, CodecError>>()?;
        r.finish()?;
        Checkpoint::from_parts(network, heads, size, root)
    }

    /// SHA-256 of the encoding: the checkpoint's id.
    pub fn digest(&self) -> Hash {
        Sha256::digest(self.encode()).into()
    }

    /// Whether this checkpoint can extend `earlier`, judged by the heads
    /// alone: same network, every earlier author present with a head at
    /// least as far along, and the same head id where equally far. The
    /// Merkle trees' agreement is what [`verify_extension`] adds.
    pub fn extends(&self, earlier: &Checkpoint) -> Result<(), CheckExtensionError> {
        if self.network != earlier.network {
            return Err(CheckExtensionError::NetworkMismatch);
        }
        for old in &earlier.heads {
            let author = old.author;
            let new = self
                .head(&author)
                .ok_or(CheckExtensionError::AuthorMissing { author })?;
            if new.seq < old.seq {
                return Err(CheckExtensionError::ChainShorter { author });
            }
            if new.seq == old.seq && new.id != old.id {
                return Err(CheckExtensionError::HeadDiffers { author });
            }
        }
        Ok(())
    }
}

/// Bytes of one author-level leaf: author, head seq, head id, chain root.
const CHAIN_LEAF_LEN: usize = 32 + 8 + 32 + 32;

/// The author-level leaf that binds a head to its chain's root.
fn chain_leaf(head: &Head, chain_root: &Hash) -> [u8; CHAIN_LEAF_LEN] {
    let mut leaf = [0u8; CHAIN_LEAF_LEN];
    leaf[..32].copy_from_slice(&head.author.0);
    leaf[32..40].copy_from_slice(&head.seq.to_be_bytes());
    leaf[40..72].copy_from_slice(&head.id.0);
    leaf[72..].copy_from_slice(chain_root);
    leaf
}

/// The root over `heads` given each head's chain root (same order).
fn author_level_root(heads: &[Head], chain_roots: &[Hash]) -> Hash {
    MerkleTree::from_leaves(
        heads
            .iter()
            .zip(chain_roots)
            .map(|(head, root)| chain_leaf(head, root)),
    )
    .root()
}

/// A checkpoint together with the trees that answer proofs about it.
#[derive(Clone)]
pub struct CheckpointTree {
    checkpoint: Checkpoint,
    /// One tree per head (same order), leaves = entry ids in seq order.
    chains: Vec<MerkleTree<[u8; 32]>>,
    chain_roots: Vec<Hash>,
    authors: MerkleTree<[u8; CHAIN_LEAF_LEN]>,
    /// Entry id → (position among the heads, seq).
    positions: HashMap<EntryId, (usize, u64)>,
}

impl std::fmt::Debug for CheckpointTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointTree")
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

/// Asking the tree for an extension proof failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProveExtensionError {
    /// The heads already rule out an extension.
    #[error(transparent)]
    NotExtended(#[from] CheckExtensionError),
    /// The earlier checkpoint's head of `author` is not this ledger's entry at
    /// that seq: the two ledgers hold different branches of a fork.
    #[error("author {author}'s chain diverges from the earlier checkpoint")]
    Diverged {
        /// The author.
        author: AuthorId,
    },
    /// The earlier checkpoint's root is not the root of this ledger's
    /// prefix it names: it was not computed from these entries.
    #[error("the earlier checkpoint's root does not match this ledger's prefix")]
    EarlierRootMismatch,
}

impl CheckpointTree {
    /// Build the checkpoint of a network's accepted entries, given as
    /// `(author, seq, entry id)` in any order. Repeats of one entry are
    /// ignored; two entries at one `(author, seq)` (a fork) and chains with
    /// gaps are refused, since accepted ledgers have neither.
    pub fn build(
        network: NetworkId,
        entries: impl IntoIterator<Item = (AuthorId, u64, EntryId)>,
    ) -> Result<CheckpointTree, BuildCheckpointError> {
        if network.0.is_empty() || network.0.len() > 255 {
            return Err(BuildCheckpointError::InvalidNetwork);
        }
        let mut chains: BTreeMap<AuthorId, BTreeMap<u64, EntryId>> = BTreeMap::new();
        let mut seen: HashMap<EntryId, (AuthorId, u64)> = HashMap::new();
        for (author, seq, id) in entries {
            if seq == 0 {
                return Err(BuildCheckpointError::SeqZero { author });
            }
            match chains.entry(author).or_default().entry(seq) {
                btree_map::Entry::Vacant(slot) => {
                    slot.insert(id);
                }
                btree_map::Entry::Occupied(slot) if *slot.get() == id => continue,
                btree_map::Entry::Occupied(_) => {
                    return Err(BuildCheckpointError::Fork { author, seq })
                }
            }
            if seen.insert(id, (author, seq)).is_some() {
                return Err(BuildCheckpointError::DuplicateEntryId { id });
            }
        }

        let mut heads = Vec::with_capacity(chains.len());
        let mut trees = Vec::with_capacity(chains.len());
        let mut positions = HashMap::with_capacity(seen.len());
        let mut size = 0u64;
        for (author, chain) in chains {
            let position = heads.len();
            // Seqs are distinct and >= 1, so the chain is 1..=len exactly
            // when the n-th smallest seq is n throughout.
            if let Some(missing) = chain
                .keys()
                .zip(1u64..)
                .find(|(seq, expected)| **seq != *expected)
                .map(|(_, expected)| expected)
            {
                return Err(BuildCheckpointError::Gap { author, missing });
            }
            let (seq, id) = match chain.last_key_value() {
                Some((seq, id)) => (*seq, *id),
                None => continue,
            };
            size = size
                .checked_add(seq)
                .filter(|size| *size <= MAX_TREE_SIZE)
                .ok_or(BuildCheckpointError::TooLarge)?;
            for (seq, id) in &chain {
                positions.insert(*id, (position, *seq));
            }
            trees.push(MerkleTree::from_leaves(chain.into_values().map(|id| id.0)));
            heads.push(Head { author, seq, id });
        }

        let chain_roots: Vec<Hash> = trees.iter().map(MerkleTree::root).collect();
        let authors = MerkleTree::from_leaves(
            heads
                .iter()
                .zip(&chain_roots)
                .map(|(head, root)| chain_leaf(head, root)),
        );
        let checkpoint = Checkpoint {
            network,
            heads,
            size,
            root: authors.root(),
        };
        Ok(CheckpointTree {
            checkpoint,
            chains: trees,
            chain_roots,
            authors,
            positions,
        })
    }

    /// Build from a network's encoded entries as the ledger stores them
    /// (e.g. `Node::ledger_entries`): each is decoded for its author and seq
    /// and hashed for its id.
    pub fn from_encoded_entries<'a>(
        network: NetworkId,
        encoded: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<CheckpointTree, BuildCheckpointError> {
        let entries = encoded
            .into_iter()
            .map(|bytes| {
                let entry = Entry::decode(bytes)?;
                if entry.header.network != network.0 {
                    return Err(BuildCheckpointError::OtherNetwork);
                }
                Ok((entry.header.author, entry.header.seq, Entry::id_of(bytes)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        CheckpointTree::build(network, entries)
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The proof that `entry` is in the checkpoint, or `None` if it is not.
    pub fn prove_inclusion(&self, entry: &EntryId) -> Option<EntryInclusionProof> {
        let (position, seq) = *self.positions.get(entry)?;
        let chain = self.chains.get(position)?;
        Some(EntryInclusionProof {
            author: self.checkpoint.heads.get(position)?.author,
            seq,
            chain_root: *self.chain_roots.get(position)?,
            chain_path: chain.prove_inclusion(seq - 1).ok()?,
            author_path: self.authors.prove_inclusion(position as u64).ok()?,
        })
    }

    /// The proof that this checkpoint extends `earlier`: each earlier chain
    /// is a prefix of this one's. Fails when it does not, which is itself an
    /// answer (a fork, or an earlier checkpoint not computed from these entries).
    /// Linear in the earlier checkpoint's size: each earlier chain root is
    /// rebuilt from this tree's leaves.
    pub fn prove_extension(
        &self,
        earlier: &Checkpoint,
    ) -> Result<ExtensionProof, ProveExtensionError> {
        self.checkpoint.extends(earlier)?;
        let mut earlier_chain_roots = Vec::with_capacity(earlier.heads.len());
        let mut consistency = Vec::with_capacity(earlier.heads.len());
        for old in &earlier.heads {
            let author = old.author;
            let chain = self
                .checkpoint
                .position(&author)
                .and_then(|position| self.chains.get(position))
                .ok_or(CheckExtensionError::AuthorMissing { author })?;
            if chain.leaf(old.seq - 1) != Some(&old.id.0) {
                return Err(ProveExtensionError::Diverged { author });
            }
            let diverged = |_: ProveMerkleError| ProveExtensionError::Diverged { author };
            earlier_chain_roots.push(chain.prefix_root(old.seq).map_err(diverged)?);
            consistency.push(chain.prove_consistency(old.seq).map_err(diverged)?);
        }
        if author_level_root(&earlier.heads, &earlier_chain_roots) != earlier.root {
            return Err(ProveExtensionError::EarlierRootMismatch);
        }
        Ok(ExtensionProof {
            earlier_chain_roots,
            later_chain_roots: self.chain_roots.clone(),
            consistency,
        })
    }
}

/// The JSON form, for the CLI: hex for bytes, the same rules as the binary form.
mod json {
    use super::*;
    use crate::merkle::hex_serde;

    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct CheckpointJson {
        version: u8,
        network: String,
        size: u64,
        #[serde(with = "hex_serde::hash")]
        root: Hash,
        heads: Vec<HeadJson>,
    }

    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HeadJson {
        #[serde(with = "hex_serde::hash")]
        author: Hash,
        seq: u64,
        #[serde(with = "hex_serde::hash")]
        id: Hash,
    }

    impl From<Checkpoint> for CheckpointJson {
        fn from(c: Checkpoint) -> Self {
            CheckpointJson {
                version: CHECKPOINT_VERSION,
                network: c.network.to_hex(),
                size: c.size,
                root: c.root,
                heads: c
                    .heads
                    .iter()
                    .map(|h| HeadJson {
                        author: h.author.0,
                        seq: h.seq,
                        id: h.id.0,
                    })
                    .collect(),
            }
        }
    }

    impl TryFrom<CheckpointJson> for Checkpoint {
        type Error = DecodeCheckpointError;

        fn try_from(j: CheckpointJson) -> Result<Self, Self::Error> {
            if j.version != CHECKPOINT_VERSION {
                return Err(DecodeCheckpointError::UnsupportedVersion(j.version));
            }
            let network = hex::decode(&j.network)
                .map(NetworkId)
                .map_err(|_| DecodeCheckpointError::Invalid("network"))?;
            let heads = j
                .heads
                .iter()
                .map(|h| Head {
                    author: AuthorId(h.author),
                    seq: h.seq,
                    id: EntryId(h.id),
                })
                .collect();
            Checkpoint::from_parts(network, heads, j.size, j.root)
        }
    }
}
