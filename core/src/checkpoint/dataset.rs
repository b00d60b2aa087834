//! Dataset commitments: one Merkle root over every record a dataset used, at
//! the exact Automerge heads it was read at, with proofs a patient can check
//! that their record is or is not in it.
//!
//! Flow: the analytics side selects records at a [checkpoint](super), reads
//! each at its heads, and calls [`DatasetCommitment::build`] with
//! `(record id, heads)` for every record used; the resulting
//! [`DatasetTree::commitment`] (root and size) goes into the model card.
//! Later, a patient's phone asks for its record id; the holder of the tree
//! answers [`DatasetTree::prove`], the phone checks the answer against the
//! model card's commitment with [`verify_membership`] and learns either
//! *included, read at these heads* or *not included*.
//!
//! Leaves are sorted by record id (bytewise, which is UTF-8 code point
//! order), one per record:
//!
//! ```text
//! struct {
//!     opaque record<0..255>;                 // record id (UTF-8)
//!     uint16 head_count;
//!     opaque heads[32][head_count];          // Automerge change hashes, strictly ascending
//! } RecordLeaf;                              // leaf hash = SHA-256(0x00 ‖ RecordLeaf)
//! ```
//!
//! Non-inclusion of id `x` is shown by the two leaves at indices `i` and
//! `i + 1` whose ids bracket `x` (or by leaf 0 when `x` sorts first, by leaf
//! `n − 1` when it sorts last, or by the empty tree). The verifier takes the
//! indices from the proof and checks that they are adjacent and at the
//! ends where they must be, so a prover cannot skip over the leaf it wants
//! to hide. This relies on the tree being sorted, which the committer
//! guarantees and anyone rebuilding the dataset (`verify` of a model card)
//! re-checks by recomputing the root.
//!
//! **Disclosure**: a non-inclusion proof shows the neighbouring leaves, i.e.
//! two other records' ids and heads. Where record ids identify patients,
//! commit to keyed pseudonyms of the ids (the same code, other strings).
//!
//! Encodings (after the proof preamble shared with the checkpoint proofs, kind 3):
//!
//! ```text
//! struct { uint64 index; RecordLeaf leaf; Path path; } RecordLeafProof;
//! struct {
//!     uint8 version = 1; uint8 kind = 3;
//!     uint8 case;            // 1 included, 2 empty, 3 before first, 4 after last, 5 between
//!     RecordLeafProof leaves[case == 2 ? 0 : case == 5 ? 2 : 1];
//! } MembershipProof;
//! struct { uint8 version = 1; uint64 size; opaque root[32]; } DatasetCommitment;
//! ```
//!
//! ```
//! use careledger::checkpoint::dataset::{verify_membership, DatasetCommitment, Membership};
//!
//! let tree = DatasetCommitment::build([
//!     ("patient-a".to_string(), vec![[1; 32]]),
//!     ("patient-c".to_string(), vec![[3; 32], [2; 32]]),
//! ])
//! .unwrap();
//! let commitment = tree.commitment();
//!
//! let proof = tree.prove("patient-c");
//! assert_eq!(
//!     verify_membership(&commitment.root, commitment.size, "patient-c", &proof).unwrap(),
//!     Membership::Included { heads: vec![[2; 32], [3; 32]] }
//! );
//! let proof = tree.prove("patient-b");
//! assert_eq!(
//!     verify_membership(&commitment.root, commitment.size, "patient-b", &proof).unwrap(),
//!     Membership::NotIncluded
//! );
//! ```

use std::cmp::Ordering;

use crate::codec::{put_vec8, Reader};
use crate::merkle::{
    hex_serde, path_codec, verify_inclusion, Hash, MerkleTree, VerifyMerkleError, EMPTY_ROOT,
    MAX_TREE_SIZE,
};

use super::proofs::{read_preamble, DecodeProofError, KIND_MEMBERSHIP, PROOF_VERSION};

/// The dataset commitment format version this library writes and reads.
pub const DATASET_COMMITMENT_VERSION: u8 = 1;
/// Longest record id (bytes), as in record-change bodies.
pub const MAX_RECORD_ID_LEN: usize = 255;
/// Most heads one record may be committed at.
pub const MAX_HEADS: usize = u16::MAX as usize;

/// What a model card records of its dataset: the root over every record
/// leaf and how many records there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetCommitment {
    /// Number of records.
    pub size: u64,
    /// RFC 6962 root over the record leaves.
    #[serde(with = "hex_serde::hash")]
    pub root: Hash,
}

/// Building a dataset commitment failed. Errors never carry record ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildDatasetError {
    /// A record id appears twice.
    #[error("a record id appears twice")]
    DuplicateRecord,
    /// A record id is longer than [`MAX_RECORD_ID_LEN`] bytes.
    #[error("a record id is longer than 255 bytes")]
    RecordIdTooLong,
    /// A record has more than [`MAX_HEADS`] heads.
    #[error("a record has too many heads")]
    TooManyHeads,
    /// More records than [`MAX_TREE_SIZE`].
    #[error("too many records")]
    TooLarge,
}

/// Decoding a dataset commitment failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeDatasetCommitmentError {
    /// The bytes end before the named field is complete.
    #[error("dataset commitment truncated in field `{0}`")]
    Truncated(&'static str),
    /// The version is not one this library reads.
    #[error("dataset commitment version {0} is not supported (this library reads version 1)")]
    UnsupportedVersion(u8),
    /// The named field breaks a rule of the format.
    #[error("dataset commitment field `{0}` is invalid")]
    Invalid(&'static str),
    /// Bytes remain after the root.
    #[error("dataset commitment has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl DatasetCommitment {
    /// Build the tree over `(record id, heads)` of every record used, in
    /// any order. Heads are sorted and deduplicated; a record id given
    /// twice is refused rather than merged.
    pub fn build(
        records: impl IntoIterator<Item = (String, Vec<Hash>)>,
    ) -> Result<DatasetTree, BuildDatasetError> {
        let mut records: Vec<RecordLeaf> = records
            .into_iter()
            .map(|(record_id, mut heads)| {
                if record_id.len() > MAX_RECORD_ID_LEN {
                    return Err(BuildDatasetError::RecordIdTooLong);
                }
                heads.sort_unstable();
                heads.dedup();
                if heads.len() > MAX_HEADS {
                    return Err(BuildDatasetError::TooManyHeads);
                }
                Ok(RecordLeaf { record_id, heads })
            })
            .collect::<Result<_, _>>()?;
        if records.len() as u64 > MAX_TREE_SIZE {
            return Err(BuildDatasetError::TooLarge);
        }
        records.sort_unstable_by(|a, b| a.record_id.cmp(&b.record_id));
        if records.windows(2).any(|w| w[0].record_id == w[1].record_id) {
            return Err(BuildDatasetError::DuplicateRecord);
        }
        let tree = MerkleTree::from_leaves(records.iter().map(RecordLeaf::encode));
        Ok(DatasetTree { records, tree })
    }

    /// Check a membership proof against this commitment ([`verify_membership`]).
    pub fn verify(
        &self,
        record_id: &str,
        proof: &MembershipProof,
    ) -> Result<Membership, VerifyMembershipError> {
        verify_membership(&self.root, self.size, record_id, proof)
    }

    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 8 + 32);
        out.push(DATASET_COMMITMENT_VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out
    }

    /// Decode; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeDatasetCommitmentError> {
        use crate::codec::CodecError;
        let mut r = Reader::new(bytes);
        let convert = |e: CodecError| match e {
            CodecError::Truncated(f) => DecodeDatasetCommitmentError::Truncated(f),
            CodecError::TooLong(f) | CodecError::Invalid(f) => {
                DecodeDatasetCommitmentError::Invalid(f)
            }
            CodecError::Trailing(n) => DecodeDatasetCommitmentError::TrailingBytes(n),
        };
        let version = r.u8("version").map_err(convert)?;
        if version != DATASET_COMMITMENT_VERSION {
            return Err(DecodeDatasetCommitmentError::UnsupportedVersion(version));
        }
        let size = r.u64("size").map_err(convert)?;
        let root = r.array("root").map_err(convert)?;
        r.finish().map_err(convert)?;
        if size > MAX_TREE_SIZE {
            return Err(DecodeDatasetCommitmentError::Invalid("size"));
        }
        if size == 0 && root != EMPTY_ROOT {
            return Err(DecodeDatasetCommitmentError::Invalid("root"));
        }
        Ok(DatasetCommitment { size, root })
    }
}

/// One record as committed: its id and the heads it was read at.
#[derive(Clone, PartialEq, Eq)]
struct RecordLeaf {
    record_id: String,
    heads: Vec<Hash>,
}

impl RecordLeaf {
    fn encode(&self) -> Vec<u8> {
        encode_leaf(&self.record_id, &self.heads)
    }
}

/// Callers guarantee `record_id.len() <= 255` and `heads.len() <= MAX_HEADS`.
fn encode_leaf(record_id: &str, heads: &[Hash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + record_id.len() + 2 + 32 * heads.len());
    put_leaf(&mut out, record_id, heads);
    out
}

fn put_leaf(out: &mut Vec<u8>, record_id: &str, heads: &[Hash]) {
    put_vec8(out, record_id.as_bytes());
    let count = heads.len().min(MAX_HEADS);
    out.extend_from_slice(&(count as u16).to_be_bytes());
    for head in &heads[..count] {
        out.extend_from_slice(head);
    }
}

/// The records of a dataset and the tree over them.
#[derive(Clone)]
pub struct DatasetTree {
    /// Sorted by record id, unique.
    records: Vec<RecordLeaf>,
    tree: MerkleTree,
}

impl std::fmt::Debug for DatasetTree {
    // Record ids are patient identifiers: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetTree")
            .field("commitment", &self.commitment())
            .finish_non_exhaustive()
    }
}

impl DatasetTree {
    /// The root over all record leaves.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// Whether the dataset has no records.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Root and size, as a model card records them.
    pub fn commitment(&self) -> DatasetCommitment {
        DatasetCommitment {
            size: self.len(),
            root: self.root(),
        }
    }

    /// The heads `record_id` was committed at, if it is in the dataset.
    pub fn heads(&self, record_id: &str) -> Option<&[Hash]> {
        let i = self.find(record_id).ok()?;
        self.records.get(i).map(|r| r.heads.as_slice())
    }

    fn find(&self, record_id: &str) -> Result<usize, usize> {
        self.records
            .binary_search_by(|r| r.record_id.as_str().cmp(record_id))
    }

    fn leaf_proof(&self, index: usize) -> RecordLeafProof {
        let record = &self.records[index];
        RecordLeafProof {
            index: index as u64,
            record_id: record.record_id.clone(),
            heads: record.heads.clone(),
            // The index comes from this tree, so the path exists.
            path: self.tree.prove_inclusion(index as u64).unwrap_or_default(),
        }
    }

    /// Whether `record_id` is in the dataset, as a proof anyone holding the
    /// commitment can check.
    pub fn prove(&self, record_id: &str) -> MembershipProof {
        let n = self.records.len();
        match self.find(record_id) {
            Ok(i) => MembershipProof::Included(self.leaf_proof(i)),
            Err(_) if n == 0 => MembershipProof::NotIncluded(NonInclusionProof::Empty),
            Err(0) => {
                MembershipProof::NotIncluded(NonInclusionProof::BeforeFirst(self.leaf_proof(0)))
            }
            Err(i) if i == n => {
                MembershipProof::NotIncluded(NonInclusionProof::AfterLast(self.leaf_proof(n - 1)))
            }
            Err(i) => MembershipProof::NotIncluded(NonInclusionProof::Between {
                lower: self.leaf_proof(i - 1),
                upper: self.leaf_proof(i),
            }),
        }
    }
}

/// One committed leaf with its audit path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLeafProof {
    /// The leaf's index in the sorted tree.
    pub index: u64,
    /// The leaf's record id.
    pub record_id: String,
    /// The heads the record was committed at, strictly ascending.
    #[serde(with = "hex_serde::hashes")]
    pub heads: Vec<Hash>,
    /// Audit path of the leaf.
    #[serde(with = "hex_serde::hashes")]
    pub path: Vec<Hash>,
}

/// Proof that a record id is absent from a dataset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NonInclusionProof {
    /// The dataset has no records.
    Empty,
    /// The id sorts before the first leaf (index 0).
    BeforeFirst(RecordLeafProof),
    /// The id sorts after the last leaf (index `size − 1`).
    AfterLast(RecordLeafProof),
    /// The id sorts strictly between two adjacent leaves.
    Between {
        /// The leaf just below the id.
        lower: RecordLeafProof,
        /// The leaf just above the id, at the next index.
        upper: RecordLeafProof,
    },
}

/// Proof that a record id is, or is not, in a dataset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MembershipProof {
    /// The record's own leaf.
    Included(RecordLeafProof),
    /// The leaves around where it would be.
    NotIncluded(NonInclusionProof),
}

/// What a verified membership proof establishes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    /// The record is in the dataset, read at these heads.
    Included {
        /// The record's Automerge heads, ascending.
        #[serde(with = "hex_serde::hashes")]
        heads: Vec<Hash>,
    },
    /// The record is not in the dataset.
    NotIncluded,
}

/// A membership proof did not verify; the variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyMembershipError {
    /// The inclusion proof is for another record id.
    #[error("the proof is for another record")]
    OtherRecord,
    /// A leaf's record id is longer than 255 bytes.
    #[error("a record id in the proof is longer than 255 bytes")]
    RecordIdTooLong,
    /// A leaf's heads are not strictly ascending, or too many.
    #[error("a leaf's heads are not in canonical order")]
    NonCanonicalHeads,
    /// The empty-dataset proof was given for a non-empty dataset.
    #[error("the dataset is not empty")]
    NotEmpty,
    /// A boundary leaf is not at the first or last index.
    #[error("the boundary leaf is not at the end of the tree")]
    NotAtBoundary,
    /// The two leaves are not at adjacent indices.
    #[error("the bracketing leaves are not adjacent")]
    NotAdjacent,
    /// The leaves' ids do not bracket the asked id.
    #[error("the leaves do not bracket the record id")]
    NotBracketing,
    /// A leaf's path does not lead to the root.
    #[error("leaf path: {0}")]
    Path(VerifyMerkleError),
}

fn verify_leaf(
    root: &Hash,
    size: u64,
    leaf: &RecordLeafProof,
) -> Result<(), VerifyMembershipError> {
    if leaf.record_id.len() > MAX_RECORD_ID_LEN {
        return Err(VerifyMembershipError::RecordIdTooLong);
    }
    if leaf.heads.len() > MAX_HEADS || leaf.heads.windows(2).any(|w| w[0] >= w[1]) {
        return Err(VerifyMembershipError::NonCanonicalHeads);
    }
    verify_inclusion(
        root,
        size,
        leaf.index,
        &encode_leaf(&leaf.record_id, &leaf.heads),
        &leaf.path,
    )
    .map_err(VerifyMembershipError::Path)
}

/// Check `proof` for `record_id` against a dataset's root and size. Never panics.
pub fn verify_membership(
    root: &Hash,
    size: u64,
    record_id: &str,
    proof: &MembershipProof,
) -> Result<Membership, VerifyMembershipError> {
    let asked = record_id.as_bytes();
    match proof {
        MembershipProof::Included(leaf) => {
            if leaf.record_id != record_id {
                return Err(VerifyMembershipError::OtherRecord);
            }
            verify_leaf(root, size, leaf)?;
            return Ok(Membership::Included {
                heads: leaf.heads.clone(),
            });
        }
        MembershipProof::NotIncluded(NonInclusionProof::Empty) => {
            if size != 0 || *root != EMPTY_ROOT {
                return Err(VerifyMembershipError::NotEmpty);
            }
        }
        MembershipProof::NotIncluded(NonInclusionProof::BeforeFirst(first)) => {
            if first.index != 0 {
                return Err(VerifyMembershipError::NotAtBoundary);
            }
            if asked.cmp(first.record_id.as_bytes()) != Ordering::Less {
                return Err(VerifyMembershipError::NotBracketing);
            }
            verify_leaf(root, size, first)?;
        }
        MembershipProof::NotIncluded(NonInclusionProof::AfterLast(last)) => {
            if size.checked_sub(1) != Some(last.index) {
                return Err(VerifyMembershipError::NotAtBoundary);
            }
            if asked.cmp(last.record_id.as_bytes()) != Ordering::Greater {
                return Err(VerifyMembershipError::NotBracketing);
            }
            verify_leaf(root, size, last)?;
        }
        MembershipProof::NotIncluded(NonInclusionProof::Between { lower, upper }) => {
            if lower.index.checked_add(1) != Some(upper.index) {
                return Err(VerifyMembershipError::NotAdjacent);
            }
            if lower.record_id.as_bytes() >= asked || asked >= upper.record_id.as_bytes() {
                return Err(VerifyMembershipError::NotBracketing);
            }
            verify_leaf(root, size, lower)?;
            verify_leaf(root, size, upper)?;
        }
    }
    Ok(Membership::NotIncluded)
}

const CASE_INCLUDED: u8 = 1;
const CASE_EMPTY: u8 = 2;
const CASE_BEFORE_FIRST: u8 = 3;
const CASE_AFTER_LAST: u8 = 4;
const CASE_BETWEEN: u8 = 5;

impl RecordLeafProof {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index.to_be_bytes());
        put_leaf(out, &self.record_id, &self.heads);
        path_codec::put(out, &self.path);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeProofError> {
        let index = r.u64("index")?;
        let record_id = r.string8("record")?;
        let count = r.u16("heads")? as usize;
        let heads = r
            .take(count * 32, "heads")?
            .chunks_exact(32)
            .filter_map(|c| Hash::try_from(c).ok())
            .collect::<Vec<_>>();
        // Canonical: one encoding per proof, and only proofs that can verify.
        if heads.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DecodeProofError::Invalid("heads"));
        }
        let path = path_codec::read(r, "path")?;
        Ok(RecordLeafProof {
            index,
            record_id,
            heads,
            path,
        })
    }
}

impl MembershipProof {
    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROOF_VERSION, KIND_MEMBERSHIP];
        match self {
            MembershipProof::Included(leaf) => {
                out.push(CASE_INCLUDED);
                leaf.put(&mut out);
            }
            MembershipProof::NotIncluded(NonInclusionProof::Empty) => out.push(CASE_EMPTY),
            MembershipProof::NotIncluded(NonInclusionProof::BeforeFirst(leaf)) => {
                out.push(CASE_BEFORE_FIRST);
                leaf.put(&mut out);
            }
            MembershipProof::NotIncluded(NonInclusionProof::AfterLast(leaf)) => {
                out.push(CASE_AFTER_LAST);
                leaf.put(&mut out);
            }
            MembershipProof::NotIncluded(NonInclusionProof::Between { lower, upper }) => {
                out.push(CASE_BETWEEN);
                lower.put(&mut out);
                upper.put(&mut out);
            }
        }
        out
    }

    /// Decode; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeProofError> {
        let mut r = Reader::new(bytes);
        read_preamble(&mut r, KIND_MEMBERSHIP)?;
        let proof = match r.u8("case")? {
            CASE_INCLUDED => MembershipProof::Included(RecordLeafProof::read(&mut r)?),
            CASE_EMPTY => MembershipProof::NotIncluded(NonInclusionProof::Empty),
            CASE_BEFORE_FIRST => MembershipProof::NotIncluded(NonInclusionProof::BeforeFirst(
                RecordLeafProof::read(&mut r)?,
            )),
            CASE_AFTER_LAST => MembershipProof::NotIncluded(NonInclusionProof::AfterLast(
                RecordLeafProof::read(&mut r)?,
            )),
            CASE_BETWEEN => MembershipProof::NotIncluded(NonInclusionProof::Between {
                lower: RecordLeafProof::read(&mut r)?,
                upper: RecordLeafProof::read(&mut r)?,
            }),
            _ => return Err(DecodeProofError::Invalid("case")),
        };
        r.finish()?;
        Ok(proof)
    }
}
