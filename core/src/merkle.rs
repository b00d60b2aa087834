//! RFC 6962 Merkle trees over SHA-256: roots, inclusion proofs (audit paths)
//! and consistency proofs, for [checkpoints](crate::checkpoint) and
//! [dataset commitments](crate::checkpoint::dataset).
//!
//! Flow: whoever holds the leaves builds a [`MerkleTree`], publishes its
//! [`root`](MerkleTree::root) and size (inside a signed checkpoint or model
//! card), and answers questions with [`MerkleTree::prove_inclusion`] ("leaf
//! `i` is this") or [`MerkleTree::prove_consistency`] ("the tree of `m`
//! leaves you saw is a prefix of this one"). Whoever holds only a root and a
//! size checks the answers with [`verify_inclusion`] and
//! [`verify_consistency`].
//!
//! Hashing is exactly RFC 6962 §2.1 (RFC 9162 §2.1): a leaf hashes as
//! `SHA-256(0x00 ‖ data)`, an inner node as `SHA-256(0x01 ‖ left ‖ right)`,
//! a tree of `n > 1` leaves splits at the largest power of two below `n`, and
//! the empty tree's root is `SHA-256("")` ([`EMPTY_ROOT`]). The tree math and
//! the proof algorithms come from the `ct-merkle` crate (0.2, the release
//! built on the `sha2 0.10` this crate uses); this module adds the guards
//! that make every verifier total (no panic on any size or index) and plain
//! `[u8; 32]` types. Known-answer tests pin the output to the Certificate
//! Transparency reference vectors (`core/test_vectors/merkle_rfc6962.json`).
//!
//! ```
//! use careledger::merkle::{verify_consistency, verify_inclusion, MerkleTree};
//!
//! let mut tree: MerkleTree = MerkleTree::from_leaves([b"a".to_vec(), b"b".to_vec()]);
//! let (old_root, old_size) = (tree.root(), tree.len());
//! tree.push(b"c".to_vec());
//!
//! let path = tree.prove_inclusion(1).unwrap();
//! verify_inclusion(&tree.root(), tree.len(), 1, b"b", &path).unwrap();
//! assert!(verify_inclusion(&tree.root(), tree.len(), 1, b"x", &path).is_err());
//!
//! let proof = tree.prove_consistency(old_size).unwrap();
//! verify_consistency(&old_root, old_size, &tree.root(), tree.len(), &proof).unwrap();
//! ```

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};

/// A SHA-256 node or root hash.
pub type Hash = [u8; 32];

/// Root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Largest tree any proof may claim (2^48 leaves). Far beyond any ledger,
/// and it keeps every index inside the range the tree math is defined on, so
/// a hostile size can never reach a panic.
pub const MAX_TREE_SIZE: u64 = 1 << 48;

/// Longest audit or consistency path a tree of [`MAX_TREE_SIZE`] leaves
/// needs; decoders refuse longer lists before allocating.
pub const MAX_PATH_LEN: usize = 2 * 48;

/// The RFC 6962 hash of one leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The RFC 6962 hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// An in-memory RFC 6962 tree whose leaves are byte strings of type `L`
/// (`Vec<u8>` by default; `[u8; 32]` for trees of ids).
#[derive(Clone)]
pub struct MerkleTree<L: AsRef<[u8]> = Vec<u8>> {
    tree: MemoryBackedTree<Sha256, L>,
}

impl<L: AsRef<[u8]>> std::fmt::Debug for MerkleTree<L> {
    // Leaves may be patient-derived; show only the shape.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("len", &self.len())
            .field("root", &hex::encode(self.root()))
            .finish()
    }
}

impl<L: AsRef<[u8]>> Default for MerkleTree<L> {
    fn default() -> Self {
        Self::new()
    }
}

/// A proof was asked for that the tree cannot give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProveMerkleError {
    /// The leaf index is not below the tree's size.
    #[error("leaf index is outside the tree")]
    IndexOutOfRange,
    /// The older size is larger than the tree.
    #[error("older tree size exceeds the tree's size")]
    OldSizeTooLarge,
}

/// A proof did not verify; the variant names the rule that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyMerkleError {
    /// A tree size exceeds [`MAX_TREE_SIZE`].
    #[error("tree size exceeds the supported maximum")]
    SizeTooLarge,
    /// The leaf index is not below the tree size.
    #[error("leaf index is outside the tree")]
    IndexOutOfRange,
    /// The older tree is larger than the newer one.
    #[error("older tree is larger than the newer tree")]
    OldSizeTooLarge,
    /// The path does not have the length the sizes and index require.
    #[error("proof path has the wrong length")]
    WrongPathLength,
    /// Hashing up the path does not give the expected root(s).
    #[error("proof does not lead to the root")]
    RootMismatch,
}

impl<L: AsRef<[u8]>> MerkleTree<L> {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            tree: MemoryBackedTree::new(),
        }
    }

    /// A tree of `leaves` in the order given.
    pub fn from_leaves(leaves: impl IntoIterator<Item = L>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Append one leaf.
    pub fn push(&mut self, leaf: L) {
        self.tree.push(leaf);
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: u64) -> Option<&L> {
        self.tree.get(usize::try_from(index).ok()?)
    }

    /// All leaves in order.
    pub fn leaves(&self) -> &[L] {
        self.tree.items()
    }

    /// The Merkle Tree Hash of all leaves ([`EMPTY_ROOT`] when empty).
    pub fn root(&self) -> Hash {
        self.tree
            .root()
            .as_bytes()
            .as_slice()
            .try_into()
            .unwrap_or(EMPTY_ROOT)
    }

    /// The audit path `PATH(index, D[n])` of the leaf at `index`, bottom up.
    pub fn prove_inclusion(&self, index: u64) -> Result<Vec<Hash>, ProveMerkleError> {
        let index = usize::try_from(index)
            .ok()
            .filter(|i| (*i as u64) < self.len())
            .ok_or(ProveMerkleError::IndexOutOfRange)?;
        Ok(split_path(self.tree.prove_inclusion(index).as_bytes()))
    }

    /// The consistency proof `PROOF(old_size, D[n])` that the first
    /// `old_size` leaves form a prefix of this tree. Empty when `old_size`
    /// is 0 or the tree's own size: both are consistent with any tree
    /// (respectively, with itself) without further hashes.
    pub fn prove_consistency(&self, old_size: u64) -> Result<Vec<Hash>, ProveMerkleError> {
        if old_size > self.len() {
            return Err(ProveMerkleError::OldSizeTooLarge);
        }
        if old_size == 0 {
            return Ok(Vec::new());
        }
        let additions = usize::try_from(self.len() - old_size)
            .map_err(|_| ProveMerkleError::OldSizeTooLarge)?;
        Ok(split_path(
            self.tree.prove_consistency(additions).as_bytes(),
        ))
    }

    /// The root of the tree's first `size` leaves (rebuilt, so linear in `size`).
    pub fn prefix_root(&self, size: u64) -> Result<Hash, ProveMerkleError> {
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (*s as u64) <= self.len())
            .ok_or(ProveMerkleError::OldSizeTooLarge)?;
        let mut prefix = MemoryBackedTree::<Sha256, &[u8]>::new();
        for leaf in &self.leaves()[..size] {
            prefix.push(leaf.as_ref());
        }
        Ok(prefix
            .root()
            .as_bytes()
            .as_slice()
            .try_into()
            .unwrap_or(EMPTY_ROOT))
    }
}

fn split_path(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks_exact(32)
        .filter_map(|chunk| Hash::try_from(chunk).ok())
        .collect()
}

fn join_path(path: &[Hash]) -> Vec<u8> {
    path.concat()
}

fn root_hash(root: &Hash, size: u64) -> RootHash<Sha256> {
    RootHash::new((*root).into(), size)
}

/// Check that `leaf` is the leaf at `index` of the tree of `size` leaves
/// whose root is `root`, given its audit path. Never panics.
pub fn verify_inclusion(
    root: &Hash,
    size: u64,
    index: u64,
    leaf: &[u8],
    path: &[Hash],
) -> Result<(), VerifyMerkleError> {
    if size > MAX_TREE_SIZE {
        return Err(VerifyMerkleError::SizeTooLarge);
    }
    if index >= size {
        return Err(VerifyMerkleError::IndexOutOfRange);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(VerifyMerkleError::WrongPathLength);
    }
    // ct-merkle checks the path length against (size, index) itself; the
    // guards above keep size and index where its index math is defined.
    let proof = InclusionProof::<Sha256>::try_from_bytes(join_path(path))
        .map_err(|_| VerifyMerkleError::WrongPathLength)?;
    root_hash(root, size)
        .verify_inclusion(&leaf, index, &proof)
        .map_err(|error| match error {
            ct_merkle::InclusionVerifError::MalformedProof => VerifyMerkleError::WrongPathLength,
            ct_merkle::InclusionVerifError::IndexOutOfRange
            | ct_merkle::InclusionVerifError::TreeEmpty => VerifyMerkleError::IndexOutOfRange,
            ct_merkle::InclusionVerifError::IncorrectHash => VerifyMerkleError::RootMismatch,
        })
}

/// Check that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
/// The empty tree is a prefix of every tree, with an empty proof. Never panics.
pub fn verify_consistency(
    old_root: &Hash,
    old_size: u64,
    new_root: &Hash,
    new_size: u64,
    path: &[Hash],
) -> Result<(), VerifyMerkleError> {
    if new_size > MAX_TREE_SIZE {
        return Err(VerifyMerkleError::SizeTooLarge);
    }
    if old_size > new_size {
        return Err(VerifyMerkleError::OldSizeTooLarge);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(VerifyMerkleError::WrongPathLength);
    }
    if old_size == 0 {
        // ct-merkle refuses an empty old tree; RFC 9162 treats it as
        // trivially consistent. Still insist on the one root an empty tree has.
        if !path.is_empty() {
            return Err(VerifyMerkleError::WrongPathLength);
        }
        if *old_root != EMPTY_ROOT || (new_size == 0 && *new_root != EMPTY_ROOT) {
            return Err(VerifyMerkleError::RootMismatch);
        }
        return Ok(());
    }
    let proof = ConsistencyProof::<Sha256>::try_from_bytes(join_path(path))
        .map_err(|_| VerifyMerkleError::WrongPathLength)?;
    root_hash(new_root, new_size)
        .verify_consistency(&root_hash(old_root, old_size), &proof)
        .map_err(|error| match error {
            ct_merkle::ConsistencyVerifError::MalformedProof => VerifyMerkleError::WrongPathLength,
            ct_merkle::ConsistencyVerifError::OldTreeLarger => VerifyMerkleError::OldSizeTooLarge,
            ct_merkle::ConsistencyVerifError::NewTreeTooBig => VerifyMerkleError::SizeTooLarge,
            ct_merkle::ConsistencyVerifError::OldTreeEmpty
            | ct_merkle::ConsistencyVerifError::VerificationFailure => {
                VerifyMerkleError::RootMismatch
            }
        })
}

/// Serde helpers: hashes as lowercase hex in JSON.
pub(crate) mod hex_serde {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn parse(text: &str) -> Option<Hash> {
        let bytes = hex::decode(text).ok()?;
        Hash::try_from(bytes.as_slice()).ok()
    }

    /// One hash.
    pub(crate) mod hash {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&hex::encode(hash))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
            let text = String::deserialize(d)?;
            parse(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
        }
    }

    /// A list of hashes.
    pub(crate) mod hashes {
        use super::*;
        use serde::ser::SerializeSeq;

        pub(crate) fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(hashes.len()))?;
            for hash in hashes {
                seq.serialize_element(&hex::encode(hash))?;
            }
            seq.end()
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            let texts = Vec::<String>::deserialize(d)?;
            texts
                .iter()
                .map(|text| {
                    parse(text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
                })
                .collect()
        }
    }
}

/// Binary helpers shared by the proof formats: a path is a one-byte count
/// then that many 32-byte hashes.
pub(crate) mod path_codec {
    use super::{Hash, MAX_PATH_LEN};
    use crate::codec::{CodecError, Reader};

    pub(crate) fn put(out: &mut Vec<u8>, path: &[Hash]) {
        // Proofs are built by this crate or decoded through `read`, so the
        // count fits; clamp rather than wrap should that ever change.
        let count = path.len().min(MAX_PATH_LEN);
        out.push(count as u8);
        for hash in &path[..count] {
            out.extend_from_slice(hash);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<Hash>, CodecError> {
        let count = r.u8(field)? as usize;
        if count > MAX_PATH_LEN {
            return Err(CodecError::TooLong(field));
        }
        (0..count).map(|_| r.array(field)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(MerkleTree::<Vec<u8>>::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn hashes_use_the_rfc_prefixes() {
        // RFC 6962 vectors: the leaf hash of the empty string, and the root
        // of the two leaves "" and 00 (transparency-dev testonly/constants.go).
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let tree = MerkleTree::from_leaves([vec![], vec![0u8]]);
        assert_eq!(tree.root(), node_hash(&leaf_hash(b""), &leaf_hash(&[0])));
        assert_eq!(
            hex::encode(tree.root()),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
    }

    /// RFC 6962 §2.1 written out directly, as an independent reference.
    fn reference_root(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn proving_outside_the_tree_is_an_error() {
        let tree = MerkleTree::from_leaves([vec![1u8], vec![2]]);
        assert_eq!(
            tree.prove_inclusion(2),
            Err(ProveMerkleError::IndexOutOfRange)
        );
        assert_eq!(
            tree.prove_consistency(3),
            Err(ProveMerkleError::OldSizeTooLarge)
        );
        assert_eq!(tree.prefix_root(3), Err(ProveMerkleError::OldSizeTooLarge));
        assert_eq!(tree.prove_consistency(0), Ok(vec![]));
        assert_eq!(
            MerkleTree::<Vec<u8>>::new().prove_inclusion(0),
            Err(ProveMerkleError::IndexOutOfRange)
        );
    }

    #[test]
    fn empty_tree_consistency() {
        let tree = MerkleTree::from_leaves([vec![1u8]]);
        assert_eq!(
            verify_consistency(&EMPTY_ROOT, 0, &tree.root(), 1, &[]),
            Ok(())
        );
        assert_eq!(
            verify_consistency(&EMPTY_ROOT, 0, &EMPTY_ROOT, 0, &[]),
            Ok(())
        );
        assert_eq!(
            verify_consistency(&tree.root(), 0, &tree.root(), 1, &[]),
            Err(VerifyMerkleError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(&EMPTY_ROOT, 0, &tree.root(), 1, &[EMPTY_ROOT]),
            Err(VerifyMerkleError::WrongPathLength)
        );
    }

    fn leaves_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..100)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn root_matches_the_rfc_definition(leaves in leaves_strategy()) {
            let tree = MerkleTree::from_leaves(leaves.clone());
            prop_assert_eq!(tree.root(), reference_root(&leaves));
            for size in 0..=leaves.len() {
                prop_assert_eq!(tree.prefix_root(size as u64).unwrap(), reference_root(&leaves[..size]));
            }
        }

        #[test]
        fn every_inclusion_proof_verifies_and_any_change_fails(
            leaves in leaves_strategy(), flip in any::<(usize, usize, u8)>()
        ) {
            let tree = MerkleTree::from_leaves(leaves.clone());
            let (root, size) = (tree.root(), tree.len());
            for (index, leaf) in leaves.iter().enumerate() {
                let index = index as u64;
                let path = tree.prove_inclusion(index).unwrap();
                prop_assert_eq!(verify_inclusion(&root, size, index, leaf, &path), Ok(()));

                let mut other_leaf = leaf.clone();
                other_leaf.push(flip.2);
                prop_assert!(verify_inclusion(&root, size, index, &other_leaf, &path).is_err());
                if size > 1 {
                    let other = (index + 1 + (flip.0 as u64) % (size - 1)) % size;
                    // Another index fails unless its leaf is identical.
                    if leaves[other as usize] != *leaf {
                        prop_assert!(verify_inclusion(&root, size, other, leaf, &path).is_err());
                    }
                }
                // A tree twice as tall needs a longer path (the size alone
                // is not bound by RFC 6962 when heights agree).
                prop_assert!(verify_inclusion(&root, size * 2, index, leaf, &path).is_err());
                let mut bad_root = root;
                bad_root[flip.1 % 32] ^= 1 << (flip.2 % 8);
                prop_assert!(verify_inclusion(&bad_root, size, index, leaf, &path).is_err());
                if !path.is_empty() {
                    let mut bad_path = path.clone();
                    let i = flip.0 % bad_path.len();
                    bad_path[i][flip.1 % 32] ^= 1 << (flip.2 % 8);
                    prop_assert!(verify_inclusion(&root, size, index, leaf, &bad_path).is_err());
                    prop_assert!(verify_inclusion(&root, size, index, leaf, &path[1..]).is_err());
                }
                let mut longer = path.clone();
                longer.push(root);
                prop_assert!(verify_inclusion(&root, size, index, leaf, &longer).is_err());
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_any_change_fails(
            leaves in leaves_strategy(), flip in any::<(usize, usize, u8)>()
        ) {
            let tree = MerkleTree::from_leaves(leaves.clone());
            let (new_root, new_size) = (tree.root(), tree.len());
            for old_size in 0..=new_size {
                let old_root = tree.prefix_root(old_size).unwrap();
                let path = tree.prove_consistency(old_size).unwrap();
                prop_assert_eq!(
                    verify_consistency(&old_root, old_size, &new_root, new_size, &path),
                    Ok(())
                );
                if old_root != new_root {
                    prop_assert!(verify_consistency(&new_root, old_size, &old_root, new_size, &path).is_err());
                }
                // Every tree extends the empty one, whatever its root.
                if old_size > 0 {
                    let mut bad = new_root;
                    bad[flip.1 % 32] ^= 1 << (flip.2 % 8);
                    prop_assert!(verify_consistency(&old_root, old_size, &bad, new_size, &path).is_err());
                }
                let mut bad = old_root;
                bad[flip.1 % 32] ^= 1 << (flip.2 % 8);
                prop_assert!(verify_consistency(&bad, old_size, &new_root, new_size, &path).is_err());
                if !path.is_empty() {
                    let mut bad_path = path.clone();
                    let i = flip.0 % bad_path.len();
                    bad_path[i][flip.1 % 32] ^= 1 << (flip.2 % 8);
                    prop_assert!(verify_consistency(&old_root, old_size, &new_root, new_size, &bad_path).is_err());
                    prop_assert!(verify_consistency(&old_root, old_size, &new_root, new_size, &path[1..]).is_err());
                }
                let mut longer = path.clone();
                longer.push(old_root);
                prop_assert!(verify_consistency(&old_root, old_size, &new_root, new_size, &longer).is_err());
            }
        }

        #[test]
        fn verifiers_never_panic(
            root in any::<[u8; 32]>(), other in any::<[u8; 32]>(),
            size in any::<u64>(), index in any::<u64>(),
            path in proptest::collection::vec(any::<[u8; 32]>(), 0..70),
            leaf in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let _ = verify_inclusion(&root, size, index, &leaf, &path);
            let _ = verify_inclusion(&root, size % 300, index % 300, &leaf, &path);
            let _ = verify_consistency(&root, index, &other, size, &path);
            let _ = verify_consistency(&root, index % 300, &other, size % 300, &path);
        }
    }
}
