//! Checkpoints and Merkle proofs: entry inclusion in a checkpoint, extension
//! (consistency) between checkpoints, dataset membership and non-membership,
//! and the raw RFC 6962 checks. Input: framed chunks (see [`chunks`]); the
//! first byte of the first chunk picks the check.
//!
//! Besides not panicking, every check is sound against the real trees built
//! from the fixture's ledger: a proof that verifies against a real root
//! proves only what is true of that tree.

use std::sync::OnceLock;

use careledger::checkpoint::dataset::{
    verify_membership, DatasetCommitment, DatasetTree, Membership, MembershipProof,
};
use careledger::checkpoint::{
    verify_entry_inclusion, verify_extension, Checkpoint, CheckpointTree, EntryInclusionProof,
    ExtensionProof,
};
use careledger::entry::{Entry, EntryId};
use careledger::merkle::{verify_consistency, verify_inclusion, Hash, MerkleTree};
use careledger::wire::WireMessage;

use crate::{chunks, fixture};

struct Real {
    entries: Vec<Vec<u8>>,
    earlier: CheckpointTree,
    later: CheckpointTree,
    records: Vec<(String, Vec<Hash>)>,
    dataset: DatasetTree,
    leaves: MerkleTree,
}

static REAL: OnceLock<Real> = OnceLock::new();

fn real() -> &'static Real {
    REAL.get_or_init(|| {
        let fx = fixture::get();
        let entries: Vec<Vec<u8>> = fx
            .log
            .iter()
            .filter_map(|m| match WireMessage::decode(m) {
                Ok(WireMessage::Entry(bytes)) => Some(bytes),
                _ => None,
            })
            .collect();
        let tree = |n: usize| {
            CheckpointTree::from_encoded_entries(
                fx.network.clone(),
                entries[..n].iter().map(Vec::as_slice),
            )
            .expect("checkpoint of the fixture ledger")
        };
        let records: Vec<(String, Vec<Hash>)> = (0..5)
            .map(|i| (format!("patient-{i}"), vec![[i as u8; 32], [0xee; 32]]))
            .collect();
        let dataset = DatasetCommitment::build(records.clone()).expect("dataset");
        Real {
            earlier: tree(entries.len() / 2),
            later: tree(entries.len()),
            leaves: MerkleTree::from_leaves(entries.clone()),
            entries,
            records,
            dataset,
        }
    })
}

fn hash(bytes: &[u8]) -> Hash {
    let mut out = [0; 32];
    for (slot, b) in out.iter_mut().zip(bytes) {
        *slot = *b;
    }
    out
}

fn u64_of(bytes: &[u8]) -> u64 {
    let mut out = [0; 8];
    for (slot, b) in out.iter_mut().zip(bytes) {
        *slot = *b;
    }
    u64::from_be_bytes(out)
}

fn path(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks(32).map(hash).collect()
}

fn roundtrip_checkpoint(bytes: &[u8]) -> Option<Checkpoint> {
    let checkpoint = Checkpoint::decode(bytes).ok()?;
    assert_eq!(
        checkpoint.encode(),
        bytes,
        "checkpoint encoding not canonical"
    );
    Some(checkpoint)
}

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let parts = chunks::split(data);
    let part = |i: usize| parts.get(i).copied().unwrap_or(&[]);
    let real = real();
    let mode = part(0).first().copied().unwrap_or(0);
    match mode % 6 {
        // Entry inclusion against a decoded checkpoint, and against the real one.
        0 => {
            let Ok(proof) = EntryInclusionProof::decode(part(2)) else {
                return;
            };
            assert_eq!(proof.encode(), part(2), "proof encoding not canonical");
            let entry = EntryId(hash(part(3)));
            if let Some(checkpoint) = roundtrip_checkpoint(part(1)) {
                let _ = verify_entry_inclusion(&checkpoint, &entry, &proof);
            }
            if verify_entry_inclusion(real.later.checkpoint(), &entry, &proof).is_ok() {
                assert!(
                    real.entries.iter().any(|e| Entry::id_of(e) == entry),
                    "inclusion proven for an entry not in the checkpoint"
                );
            }
        }
        // Extension between decoded checkpoints, and from the real earlier one.
        1 => {
            let Ok(proof) = ExtensionProof::decode(part(3)) else {
                return;
            };
            assert_eq!(proof.encode(), part(3), "proof encoding not canonical");
            if let (Some(a), Some(b)) =
                (roundtrip_checkpoint(part(1)), roundtrip_checkpoint(part(2)))
            {
                let _ = verify_extension(&a, &b, &proof);
                let _ = b.extends(&a);
            }
            if let Some(later) = roundtrip_checkpoint(part(2)) {
                if verify_extension(real.earlier.checkpoint(), &later, &proof).is_ok() {
                    // The proof ties `later` to the real history: the real
                    // earlier heads are still in it.
                    for head in real.earlier.checkpoint().heads() {
                        let now = later.head(&head.author).expect("author kept");
                        assert!(now.seq >= head.seq, "a proven extension lost entries");
                    }
                }
            }
        }
        // Dataset membership against a decoded commitment and the real one.
        2 => {
            let Ok(proof) = MembershipProof::decode(part(2)) else {
                return;
            };
            assert_eq!(proof.encode(), part(2), "proof encoding not canonical");
            let record = String::from_utf8_lossy(part(3));
            if let Ok(commitment) = DatasetCommitment::decode(part(1)) {
                assert_eq!(commitment.encode(), part(1));
                let _ = commitment.verify(&record, &proof);
            }
            let root = real.dataset.root();
            match verify_membership(&root, real.dataset.len(), &record, &proof) {
                Ok(Membership::Included { heads }) => {
                    let (_, real_heads) = real
                        .records
                        .iter()
                        .find(|(id, _)| *id == record)
                        .expect("membership proven for a record not in the dataset");
                    let mut real_heads = real_heads.clone();
                    real_heads.sort();
                    assert_eq!(heads, real_heads, "proven heads are not the real ones");
                }
                Ok(Membership::NotIncluded) => assert!(
                    !real.records.iter().any(|(id, _)| *id == record),
                    "non-membership proven for a record in the dataset"
                ),
                Err(_) => {}
            }
        }
        // Raw inclusion against the real leaf tree.
        3 => {
            let index = u64_of(part(1));
            let leaf = part(2);
            let proof = path(part(3));
            let root = real.leaves.root();
            if verify_inclusion(&root, real.leaves.len(), index, leaf, &proof).is_ok() {
                assert_eq!(
                    real.leaves.leaf(index).map(Vec::as_slice),
                    Some(leaf),
                    "inclusion proven for a leaf not in the tree"
                );
            }
            let _ = verify_inclusion(&hash(part(4)), u64_of(part(5)), index, leaf, &proof);
        }
        // Raw consistency against the real leaf tree's prefixes.
        4 => {
            let old_size = u64_of(part(1));
            let old_root = hash(part(2));
            let proof = path(part(3));
            let (root, size) = (real.leaves.root(), real.leaves.len());
            if verify_consistency(&old_root, old_size, &root, size, &proof).is_ok() && old_size > 0
            {
                assert_eq!(
                    real.leaves.prefix_root(old_size).ok(),
                    Some(old_root),
                    "consistency proven with a root that is not a real prefix"
                );
            }
            let _ =
                verify_consistency(&old_root, old_size, &hash(part(4)), u64_of(part(5)), &proof);
        }
        // Decoders alone.
        _ => {
            let _ = roundtrip_checkpoint(part(1));
            let _ = EntryInclusionProof::decode(part(2));
            let _ = ExtensionProof::decode(part(3));
            let _ = MembershipProof::decode(part(4));
            let _ = DatasetCommitment::decode(part(5));
        }
    }
}

/// Real proofs over the fixture's ledger and a dataset of five records.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let real = real();
    let mut out = Vec::new();
    for (i, entry) in real.entries.iter().enumerate().step_by(3) {
        let id = Entry::id_of(entry);
        let proof = real.later.prove_inclusion(&id).expect("proof");
        out.push((
            format!("inclusion-{i:02}"),
            chunks::join(&[
                vec![0],
                real.later.checkpoint().encode(),
                proof.encode(),
                id.0.to_vec(),
            ]),
        ));
    }
    let extension = real
        .later
        .prove_extension(real.earlier.checkpoint())
        .expect("extension");
    out.push((
        "extension".into(),
        chunks::join(&[
            vec![1],
            real.earlier.checkpoint().encode(),
            real.later.checkpoint().encode(),
            extension.encode(),
        ]),
    ));
    let commitment = real.dataset.commitment().encode();
    for record in ["patient-0", "patient-3", "patient-5", "a", "zzz"] {
        out.push((
            format!("membership-{record}"),
            chunks::join(&[
                vec![2],
                commitment.clone(),
                real.dataset.prove(record).encode(),
                record.as_bytes().to_vec(),
            ]),
        ));
    }
    let size = real.leaves.len();
    for index in [0, size / 2, size - 1] {
        let proof: Vec<u8> = real.leaves.prove_inclusion(index).expect("proof").concat();
        out.push((
            format!("merkle-inclusion-{index}"),
            chunks::join(&[
                vec![3],
                index.to_be_bytes().to_vec(),
                real.leaves.leaf(index).expect("leaf").clone(),
                proof,
            ]),
        ));
    }
    for old in [1, size / 2, size] {
        let proof: Vec<u8> = real.leaves.prove_consistency(old).expect("proof").concat();
        out.push((
            format!("merkle-consistency-{old}"),
            chunks::join(&[
                vec![4],
                old.to_be_bytes().to_vec(),
                real.leaves.prefix_root(old).expect("root").to_vec(),
                proof,
            ]),
        ));
    }
    out
}
