//! Dataset commitments: membership proofs verify, encode canonically, and
//! can be forged in neither direction.

use std::collections::BTreeMap;

use careledger::checkpoint::dataset::{
    verify_membership, BuildDatasetError, DatasetCommitment, DatasetTree,
    DecodeDatasetCommitmentError, Membership, MembershipProof, NonInclusionProof, RecordLeafProof,
    VerifyMembershipError,
};
use careledger::checkpoint::DecodeProofError;
use careledger::merkle::{Hash, EMPTY_ROOT};
use proptest::prelude::*;

fn fixed() -> DatasetTree {
    DatasetCommitment::build([
        ("patient-b".to_string(), vec![[0xb2; 32], [0xb1; 32]]),
        ("patient-d".to_string(), vec![[0xd1; 32]]),
        ("patient-f".to_string(), vec![]),
    ])
    .unwrap()
}

#[test]
fn encoding_is_pinned() {
    let tree = fixed();
    let commitment = tree.commitment();
    insta::assert_snapshot!(
        "dataset_commitment_v1_hex",
        hex::encode(commitment.encode())
    );
    insta::assert_snapshot!(
        "membership_included_v1_hex",
        hex::encode(tree.prove("patient-b").encode())
    );
    insta::assert_snapshot!(
        "membership_between_v1_hex",
        hex::encode(tree.prove("patient-c").encode())
    );
    insta::assert_snapshot!(
        "membership_between_v1_json",
        serde_json::to_string_pretty(&tree.prove("patient-c")).unwrap()
    );
}

#[test]
fn every_case_of_the_fixed_dataset() {
    let tree = fixed();
    let DatasetCommitment { root, size } = tree.commitment();
    let included = |id: &str| verify_membership(&root, size, id, &tree.prove(id));
    assert_eq!(
        included("patient-b"),
        Ok(Membership::Included {
            heads: vec![[0xb1; 32], [0xb2; 32]]
        })
    );
    assert_eq!(
        included("patient-f"),
        Ok(Membership::Included { heads: vec![] })
    );
    for (id, shape) in [
        ("patient-a", "before_first"),
        ("patient-c", "between"),
        ("patient-e", "between"),
        ("patient-g", "after_last"),
        ("", "before_first"),
        ("patient-b ", "between"),
    ] {
        let proof = tree.prove(id);
        let json = serde_json::to_value(&proof).unwrap();
        assert!(json["not_included"].get(shape).is_some(), "{id}: {json}");
        assert_eq!(included(id), Ok(Membership::NotIncluded), "{id}");
    }
    assert_eq!(tree.heads("patient-d"), Some(&[[0xd1; 32]][..]));
    assert_eq!(tree.heads("patient-c"), None);
    assert_eq!(tree.len(), 3);
}

#[test]
fn empty_dataset() {
    let tree = DatasetCommitment::build([]).unwrap();
    assert!(tree.is_empty());
    assert_eq!(tree.root(), EMPTY_ROOT);
    let proof = tree.prove("anyone");
    assert_eq!(
        proof,
        MembershipProof::NotIncluded(NonInclusionProof::Empty)
    );
    assert_eq!(
        verify_membership(&EMPTY_ROOT, 0, "anyone", &proof),
        Ok(Membership::NotIncluded)
    );
    let full = fixed();
    assert_eq!(
        verify_membership(&full.root(), full.len(), "anyone", &proof),
        Err(VerifyMembershipError::NotEmpty)
    );
    assert_eq!(
        DatasetCommitment::decode(&tree.commitment().encode()).unwrap(),
        tree.commitment()
    );
}

#[test]
fn build_refuses_duplicates_and_long_ids() {
    assert_eq!(
        DatasetCommitment::build([("p".to_string(), vec![]), ("p".to_string(), vec![[1; 32]])])
            .unwrap_err(),
        BuildDatasetError::DuplicateRecord
    );
    assert_eq!(
        DatasetCommitment::build([("x".repeat(256), vec![])]).unwrap_err(),
        BuildDatasetError::RecordIdTooLong
    );
    // Heads are a set: order and repeats do not matter.
    let a = DatasetCommitment::build([("p".to_string(), vec![[2; 32], [1; 32], [2; 32]])]).unwrap();
    let b = DatasetCommitment::build([("p".to_string(), vec![[1; 32], [2; 32]])]).unwrap();
    assert_eq!(a.root(), b.root());
}

#[test]
fn a_prover_cannot_skip_or_misplace_leaves() {
    let tree = fixed();
    let DatasetCommitment { root, size } = tree.commitment();
    let leaf = |id: &str| match tree.prove(id) {
        MembershipProof::Included(leaf) => leaf,
        other => panic!("{other:?}"),
    };
    let (b, d, f) = (leaf("patient-b"), leaf("patient-d"), leaf("patient-f"));
    // Hide patient-d by bracketing it with b and f, which are not adjacent.
    let skip = MembershipProof::NotIncluded(NonInclusionProof::Between {
        lower: b.clone(),
        upper: f.clone(),
    });
    assert_eq!(
        verify_membership(&root, size, "patient-d", &skip),
        Err(VerifyMembershipError::NotAdjacent)
    );
    // Claim adjacency by lying about an index: the path no longer verifies.
    let mut f_moved = f.clone();
    f_moved.index = 1;
    let lie = MembershipProof::NotIncluded(NonInclusionProof::Between {
        lower: b.clone(),
        upper: f_moved,
    });
    assert!(matches!(
        verify_membership(&root, size, "patient-d", &lie),
        Err(VerifyMembershipError::Path(_))
    ));
    // Boundary leaves must be at the boundary.
    let not_first = MembershipProof::NotIncluded(NonInclusionProof::BeforeFirst(d.clone()));
    assert_eq!(
        verify_membership(&root, size, "patient-c", &not_first),
        Err(VerifyMembershipError::NotAtBoundary)
    );
    let not_last = MembershipProof::NotIncluded(NonInclusionProof::AfterLast(d.clone()));
    assert_eq!(
        verify_membership(&root, size, "patient-e", &not_last),
        Err(VerifyMembershipError::NotAtBoundary)
    );
    // An inclusion proof is for its own record only.
    assert_eq!(
        verify_membership(
            &root,
            size,
            "patient-c",
            &MembershipProof::Included(d.clone())
        ),
        Err(VerifyMembershipError::OtherRecord)
    );
    let mut renamed = d.clone();
    renamed.record_id = "patient-c".into();
    assert!(matches!(
        verify_membership(
            &root,
            size,
            "patient-c",
            &MembershipProof::Included(renamed)
        ),
        Err(VerifyMembershipError::Path(_))
    ));
    // Non-canonical heads are refused before hashing.
    let mut shuffled = b.clone();
    shuffled.heads.reverse();
    assert_eq!(
        verify_membership(
            &root,
            size,
            "patient-b",
            &MembershipProof::Included(shuffled)
        ),
        Err(VerifyMembershipError::NonCanonicalHeads)
    );
    // An id longer than any record id cannot pose as a truncated one.
    let mut long = b;
    long.record_id = format!("patient-b{}", "x".repeat(250));
    assert_eq!(
        verify_membership(
            &root,
            size,
            &long.record_id.clone(),
            &MembershipProof::Included(long)
        ),
        Err(VerifyMembershipError::RecordIdTooLong)
    );
}

#[test]
fn decoding_errors_are_typed() {
    let tree = fixed();
    let bytes = tree.prove("patient-c").encode();
    for len in 0..bytes.len() {
        assert!(
            matches!(
                MembershipProof::decode(&bytes[..len]),
                Err(DecodeProofError::Truncated(_))
            ),
            "prefix of {len} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        MembershipProof::decode(&longer),
        Err(DecodeProofError::TrailingBytes(1))
    );
    let mut bad_case = bytes.clone();
    bad_case[2] = 9;
    assert_eq!(
        MembershipProof::decode(&bad_case),
        Err(DecodeProofError::Invalid("case"))
    );
    let mut wrong_kind = bytes;
    wrong_kind[1] = 1;
    assert_eq!(
        MembershipProof::decode(&wrong_kind),
        Err(DecodeProofError::WrongKind(1))
    );
    // Heads out of order do not decode.
    let included = tree.prove("patient-b").encode();
    let heads_at = 3 + 8 + 1 + "patient-b".len() + 2;
    let mut swapped = included.clone();
    let (first, second) = swapped[heads_at..].split_at_mut(32);
    first.swap_with_slice(&mut second[..32]);
    assert_eq!(
        MembershipProof::decode(&swapped),
        Err(DecodeProofError::Invalid("heads"))
    );

    let commitment = tree.commitment().encode();
    assert_eq!(
        DatasetCommitment::decode(&commitment[..40]),
        Err(DecodeDatasetCommitmentError::Truncated("root"))
    );
    let mut v2 = commitment.clone();
    v2[0] = 2;
    assert_eq!(
        DatasetCommitment::decode(&v2),
        Err(DecodeDatasetCommitmentError::UnsupportedVersion(2))
    );
    let mut huge = commitment.clone();
    huge[1] = 0xff;
    assert_eq!(
        DatasetCommitment::decode(&huge),
        Err(DecodeDatasetCommitmentError::Invalid("size"))
    );
    let mut trailing = commitment;
    trailing.push(0);
    assert_eq!(
        DatasetCommitment::decode(&trailing),
        Err(DecodeDatasetCommitmentError::TrailingBytes(1))
    );
}

/// Record ids from a small alphabet, so neighbours and near-misses abound.
fn id_strategy() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-d]{0,3}").unwrap()
}

fn dataset_strategy() -> impl Strategy<Value = BTreeMap<String, Vec<Hash>>> {
    proptest::collection::btree_map(
        id_strategy(),
        proptest::collection::vec(any::<[u8; 32]>(), 0..3),
        0..12,
    )
}

/// Every leaf proof the honest tree can produce.
fn all_leaves(tree: &DatasetTree, ids: &BTreeMap<String, Vec<Hash>>) -> Vec<RecordLeafProof> {
    ids.keys()
        .map(|id| match tree.prove(id) {
            MembershipProof::Included(leaf) => leaf,
            other => panic!("{other:?}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_answer_verifies_and_round_trips(
        records in dataset_strategy(), asked in proptest::collection::vec(id_strategy(), 1..8),
    ) {
        let tree = DatasetCommitment::build(records.clone()).unwrap();
        let commitment = tree.commitment();
        prop_assert_eq!(DatasetCommitment::decode(&commitment.encode()).unwrap(), commitment);
        for id in records.keys().chain(asked.iter()) {
            let proof = tree.prove(id);
            let membership = commitment.verify(id, &proof).unwrap();
            match records.get(id) {
                Some(heads) => {
                    let mut heads = heads.clone();
                    heads.sort_unstable();
                    heads.dedup();
                    prop_assert_eq!(membership, Membership::Included { heads });
                }
                None => prop_assert_eq!(membership, Membership::NotIncluded),
            }
            let bytes = proof.encode();
            prop_assert_eq!(&MembershipProof::decode(&bytes).unwrap(), &proof);
            let json = serde_json::to_string(&proof).unwrap();
            prop_assert_eq!(&serde_json::from_str::<MembershipProof>(&json).unwrap(), &proof);
            for i in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[i] ^= 0x02;
                let accepted = MembershipProof::decode(&flipped)
                    .is_ok_and(|p| commitment.verify(id, &p).is_ok());
                prop_assert!(!accepted, "flip at byte {} verified", i);
            }
        }
    }

    #[test]
    fn no_assembly_of_honest_leaves_flips_the_answer(
        records in dataset_strategy(), asked in proptest::collection::vec(id_strategy(), 1..6),
    ) {
        let tree = DatasetCommitment::build(records.clone()).unwrap();
        let DatasetCommitment { root, size } = tree.commitment();
        let leaves = all_leaves(&tree, &records);
        let mut candidates = vec![MembershipProof::NotIncluded(NonInclusionProof::Empty)];
        for a in &leaves {
            candidates.push(MembershipProof::Included(a.clone()));
            candidates.push(MembershipProof::NotIncluded(NonInclusionProof::BeforeFirst(a.clone())));
            candidates.push(MembershipProof::NotIncluded(NonInclusionProof::AfterLast(a.clone())));
            for b in &leaves {
                candidates.push(MembershipProof::NotIncluded(NonInclusionProof::Between {
                    lower: a.clone(), upper: b.clone(),
                }));
            }
        }
        for id in records.keys().chain(asked.iter()) {
            let truth = records.contains_key(id);
            for proof in &candidates {
                if let Ok(membership) = verify_membership(&root, size, id, proof) {
                    let says_included = matches!(membership, Membership::Included { .. });
                    prop_assert_eq!(says_included, truth, "{:?} for {:?}", proof, id);
                }
            }
            // An inclusion proof made up for an absent id, from any leaf's path.
            if !truth {
                for leaf in &leaves {
                    let mut forged = leaf.clone();
                    forged.record_id = id.clone();
                    prop_assert!(verify_membership(&root, size, id, &MembershipProof::Included(forged)).is_err());
                }
            }
        }
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = MembershipProof::decode(&bytes);
        let _ = DatasetCommitment::decode(&bytes);
        let mut tagged = vec![1, 3];
        tagged.extend_from_slice(&bytes);
        let _ = MembershipProof::decode(&tagged);
    }
}
