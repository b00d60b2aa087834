//! RFC 6962 known answers (`core/test_vectors/merkle_rfc6962.json`): the
//! Certificate Transparency reference vectors (transparency-dev/merkle,
//! the same data as certificate-transparency-go and trillian), plus the
//! tampered variants their verifier tests reject.

use careledger::merkle::{
    leaf_hash, verify_consistency, verify_inclusion, Hash, MerkleTree, EMPTY_ROOT,
};
use serde_json::Value;

const VECTORS: &str = include_str!("../test_vectors/merkle_rfc6962.json");

fn hash(value: &Value) -> Hash {
    hex::decode(value.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(value: &Value) -> Vec<Hash> {
    value.as_array().unwrap().iter().map(hash).collect()
}

/// `(index, size, root, leaf, path, what the probe changed)`.
type InclusionProbe = (u64, u64, Hash, Vec<u8>, Vec<Hash>, String);
/// `(old size, new size, old root, new root, path, what the probe changed)`.
type ConsistencyProbe = (u64, u64, Hash, Hash, Vec<Hash>, String);

struct Vectors {
    leaves: Vec<Vec<u8>>,
    roots: Vec<Hash>,
    json: Value,
}

fn vectors() -> Vectors {
    let json: Value = serde_json::from_str(VECTORS).unwrap();
    let leaves = json["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| hex::decode(l.as_str().unwrap()).unwrap())
        .collect();
    let roots = hashes(&json["roots"]);
    Vectors {
        leaves,
        roots,
        json,
    }
}

fn tree(v: &Vectors, size: usize) -> MerkleTree {
    MerkleTree::from_leaves(v.leaves[..size].iter().cloned())
}

#[test]
fn leaf_hashes_and_roots_of_every_size() {
    let v = vectors();
    assert_eq!(v.roots[0], EMPTY_ROOT);
    for (leaf, expected) in v.leaves.iter().zip(hashes(&v.json["leaf_hashes"])) {
        assert_eq!(leaf_hash(leaf), expected);
    }
    for size in 0..=v.leaves.len() {
        assert_eq!(tree(&v, size).root(), v.roots[size], "size {size}");
        assert_eq!(tree(&v, 8).prefix_root(size as u64).unwrap(), v.roots[size]);
    }
}

/// The inclusion probes of transparency-dev's `corruptInclusionProof`.
fn assert_inclusion_probes_fail(root: &Hash, size: u64, index: u64, leaf: &[u8], path: &[Hash]) {
    let some_hash = [0xab; 32];
    let mut probes: Vec<InclusionProbe> = vec![
        (
            index.wrapping_sub(1),
            size,
            *root,
            leaf.to_vec(),
            path.to_vec(),
            "index - 1".into(),
        ),
        (
            index + 1,
            size,
            *root,
            leaf.to_vec(),
            path.to_vec(),
            "index + 1".into(),
        ),
        (
            index ^ 2,
            size,
            *root,
            leaf.to_vec(),
            path.to_vec(),
            "index ^ 2".into(),
        ),
        (
            index,
            size * 2,
            *root,
            leaf.to_vec(),
            path.to_vec(),
            "size * 2".into(),
        ),
        (
            index,
            size / 2,
            *root,
            leaf.to_vec(),
            path.to_vec(),
            "size / 2".into(),
        ),
        (
            index,
            size,
            *root,
            b"WrongLeaf".to_vec(),
            path.to_vec(),
            "wrong leaf".into(),
        ),
        (
            index,
            size,
            EMPTY_ROOT,
            leaf.to_vec(),
            path.to_vec(),
            "empty root".into(),
        ),
        (
            index,
            size,
            some_hash,
            leaf.to_vec(),
            path.to_vec(),
            "random root".into(),
        ),
        (
            index,
            size,
            *root,
            leaf.to_vec(),
            [path, &[*root]].concat(),
            "trailing root".into(),
        ),
        (
            index,
            size,
            *root,
            leaf.to_vec(),
            [&[*root], path].concat(),
            "preceding root".into(),
        ),
        (
            index,
            size,
            *root,
            leaf.to_vec(),
            [path, &[[0; 32]]].concat(),
            "trailing zeros".into(),
        ),
    ];
    for i in 0..path.len() {
        let mut wrong = path.to_vec();
        wrong[i][0] ^= 8;
        probes.push((
            index,
            size,
            *root,
            leaf.to_vec(),
            wrong,
            format!("flip in path[{i}]"),
        ));
    }
    if !path.is_empty() {
        probes.push((
            index,
            size,
            *root,
            leaf.to_vec(),
            path[..path.len() - 1].to_vec(),
            "removed".into(),
        ));
    }
    if path.len() > 1 {
        let inserted = [&[path[0], some_hash], &path[1..]].concat();
        probes.push((
            index,
            size,
            *root,
            leaf.to_vec(),
            inserted,
            "inserted".into(),
        ));
    }
    for (index, size, root, leaf, path, what) in probes {
        assert!(
            verify_inclusion(&root, size, index, &leaf, &path).is_err(),
            "inclusion probe `{what}` verified"
        );
    }
}

#[test]
fn inclusion_paths_match_and_verify() {
    let v = vectors();
    for case in v.json["inclusion"].as_array().unwrap() {
        let index = case["index"].as_u64().unwrap();
        let size = case["size"].as_u64().unwrap();
        let expected = hashes(&case["path"]);
        let t = tree(&v, size as usize);
        assert_eq!(
            t.prove_inclusion(index).unwrap(),
            expected,
            "{index}/{size}"
        );
        let root = v.roots[size as usize];
        let leaf = &v.leaves[index as usize];
        assert_eq!(
            verify_inclusion(&root, size, index, leaf, &expected),
            Ok(())
        );
        assert_inclusion_probes_fail(&root, size, index, leaf, &expected);
    }
}

#[test]
fn every_index_of_every_vector_tree_verifies() {
    let v = vectors();
    for size in 1..=v.leaves.len() {
        let t = tree(&v, size);
        for index in 0..size {
            let path = t.prove_inclusion(index as u64).unwrap();
            let (root, size, index) = (v.roots[size], size as u64, index as u64);
            let leaf = &v.leaves[index as usize];
            assert_eq!(verify_inclusion(&root, size, index, leaf, &path), Ok(()));
            assert_inclusion_probes_fail(&root, size, index, leaf, &path);
        }
    }
}

/// The consistency probes of transparency-dev's `corruptConsistencyProof`.
fn assert_consistency_probes_fail(old: u64, new: u64, r1: &Hash, r2: &Hash, path: &[Hash]) {
    let mut probes: Vec<ConsistencyProbe> = vec![
        (
            old.wrapping_sub(1),
            new,
            *r1,
            *r2,
            path.to_vec(),
            "old - 1".into(),
        ),
        (old + 1, new, *r1, *r2, path.to_vec(), "old + 1".into()),
        (old ^ 2, new, *r1, *r2, path.to_vec(), "old ^ 2".into()),
        (old, new * 2, *r1, *r2, path.to_vec(), "new * 2".into()),
        (old, new / 2, *r1, *r2, path.to_vec(), "new / 2".into()),
        (
            old,
            new,
            [0x11; 32],
            *r2,
            path.to_vec(),
            "wrong root1".into(),
        ),
        (
            old,
            new,
            *r1,
            [0x22; 32],
            path.to_vec(),
            "wrong root2".into(),
        ),
        (old, new, *r2, *r1, path.to_vec(), "swapped roots".into()),
        (old, new, *r1, *r2, vec![], "empty proof".into()),
        (
            old,
            new,
            *r1,
            *r2,
            [path, &[*r1]].concat(),
            "trailing root1".into(),
        ),
        (
            old,
            new,
            *r1,
            *r2,
            [path, &[*r2]].concat(),
            "trailing root2".into(),
        ),
        (
            old,
            new,
            *r1,
            *r2,
            [&[*r1], path].concat(),
            "preceding root1".into(),
        ),
        (
            old,
            new,
            *r1,
            *r2,
            [&[*r2], path].concat(),
            "preceding root2".into(),
        ),
        (
            old,
            new,
            *r1,
            *r2,
            [&[path[0]], path].concat(),
            "preceding path[0]".into(),
        ),
        (
            old,
            new,
            *r1,
            *r2,
            path[..path.len() - 1].to_vec(),
            "truncated".into(),
        ),
    ];
    for i in 0..path.len() {
        let mut wrong = path.to_vec();
        wrong[i][0] ^= 16;
        probes.push((old, new, *r1, *r2, wrong, format!("flip in path[{i}]")));
    }
    for (old, new, r1, r2, path, what) in probes {
        assert!(
            verify_consistency(&r1, old, &r2, new, &path).is_err(),
            "consistency probe `{what}` verified"
        );
    }
}

#[test]
fn consistency_paths_match_and_verify() {
    let v = vectors();
    for case in v.json["consistency"].as_array().unwrap() {
        let old = case["old_size"].as_u64().unwrap();
        let new = case["new_size"].as_u64().unwrap();
        let expected = hashes(&case["path"]);
        let t = tree(&v, new as usize);
        assert_eq!(t.prove_consistency(old).unwrap(), expected, "{old}->{new}");
        let (r1, r2) = (v.roots[old as usize], v.roots[new as usize]);
        assert_eq!(verify_consistency(&r1, old, &r2, new, &expected), Ok(()));
        if !expected.is_empty() {
            assert_consistency_probes_fail(old, new, &r1, &r2, &expected);
        }
    }
}

#[test]
fn every_size_pair_of_the_vector_trees_is_consistent() {
    let v = vectors();
    for new in 0..=v.leaves.len() {
        let t = tree(&v, new);
        for old in 0..=new {
            let path = t.prove_consistency(old as u64).unwrap();
            let (r1, r2) = (v.roots[old], v.roots[new]);
            assert_eq!(
                verify_consistency(&r1, old as u64, &r2, new as u64, &path),
                Ok(()),
                "{old}->{new}"
            );
            if !path.is_empty() {
                assert_consistency_probes_fail(old as u64, new as u64, &r1, &r2, &path);
            }
        }
    }
}

#[test]
fn trivial_consistency_cases() {
    // transparency-dev's TestVerifyConsistency table, with the empty tree's
    // root made explicit (this verifier insists on it).
    let (r1, r2) = ([0x11; 32], [0x22; 32]);
    assert!(verify_consistency(&EMPTY_ROOT, 0, &EMPTY_ROOT, 0, &[]).is_ok());
    assert!(verify_consistency(&EMPTY_ROOT, 0, &r2, 1, &[]).is_ok());
    assert!(verify_consistency(&r2, 1, &r2, 1, &[]).is_ok());
    assert!(verify_consistency(&r1, 1, &r2, 1, &[]).is_err());
    assert!(verify_consistency(&r1, 1, &r2, 0, &[]).is_err());
    assert!(verify_consistency(&r1, 2, &r2, 1, &[]).is_err());
    assert!(verify_consistency(&r1, 1, &r2, 2, &[]).is_err());
    assert!(verify_consistency(&EMPTY_ROOT, 1, &r2, 1, &[]).is_err());
    for (old, new) in [(0, 0), (0, 1), (1, 1)] {
        assert!(
            verify_consistency(&EMPTY_ROOT, old, &EMPTY_ROOT, new, &[EMPTY_ROOT]).is_err(),
            "{old}->{new} with a needless hash"
        );
    }
    // Single entry: the leaf hash is the root and the path is empty.
    let root = leaf_hash(b"data");
    assert!(verify_inclusion(&root, 1, 0, b"data", &[]).is_ok());
    assert!(verify_inclusion(&root, 1, 0, b"other", &[]).is_err());
    assert!(verify_inclusion(&EMPTY_ROOT, 1, 0, b"data", &[]).is_err());
    for (index, size) in [(0, 0), (1, 0), (2, 1)] {
        assert!(verify_inclusion(&EMPTY_ROOT, size, index, b"", &[]).is_err());
    }
}
