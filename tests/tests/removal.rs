//! A removed member reads nothing written after its removal, and everything
//! written before.

use careledger::entry::Entry;
use careledger::node::ExportFormat;
use careledger::relay::MemoryRelay;
use careledger::sync::sync;
use careledger::wire::WireMessage;
use careledger_scenarios::*;

#[test]
fn removed_member_reads_nothing_new_and_everything_old() {
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let mut lab = memory_node("lab.example");
    let mut relay = MemoryRelay::new();
    let net = network_sharing_patients(&mut [&mut a, &mut b, &mut lab], &mut relay);
    let patients = a.patients(&net).unwrap();
    // 200+ entries before the removal, from two authors.
    for i in 0..100 {
        let p = &patients[i % patients.len()];
        a.edit_member(
            &net,
            p,
            "Patient",
            p,
            "active",
            Some(&format!("{}", i % 2 == 0)),
            T0 + i as u64,
        )
        .unwrap();
    }
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, T0, 10);
    for i in 0..100 {
        let p = &patients[i % patients.len()];
        b.edit_member(
            &net,
            p,
            "Patient",
            p,
            "language",
            Some(&format!("\"en-{i}\"")),
            T0 + i as u64,
        )
        .unwrap();
    }
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, T0, 10);
    let lab_view_before = canonical_state(&mut lab, &net);
    assert_eq!(lab_view_before, canonical_state(&mut a, &net));

    a.remove(&net, &lab.identity().author_id()).unwrap();
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, T0, 10);
    assert!(!lab.is_member(&net).unwrap());
    let removal_epoch = a.epoch(&net).unwrap();

    for i in 0..120 {
        let p = &patients[i % patients.len()];
        a.edit_member(
            &net,
            p,
            "Patient",
            p,
            "active",
            Some(&format!("{}", i % 3 == 0)),
            T0 + 500 + i as u64,
        )
        .unwrap();
        b.edit_member(
            &net,
            p,
            "Patient",
            p,
            "language",
            Some(&format!("\"fr-{i}\"")),
            T0 + 500 + i as u64,
        )
        .unwrap();
    }
    import_bulk(&mut a, &net, "AllergyIntolerance", T0 + 900);
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 10);
    // The removed lab keeps fetching everything the relay carries.
    let report = sync(&mut lab, &mut relay, &net, T0).unwrap();
    assert_eq!(report.received.accepted, 0);

    let (mut before, mut after, mut read_before, mut read_after) = (0, 0, 0, 0);
    for message in relay.log(&net) {
        let Ok(WireMessage::Entry(bytes)) = WireMessage::decode(message) else {
            continue;
        };
        let entry = Entry::decode(&bytes).unwrap();
        let readable = lab.can_read_entry(&net, &bytes).is_ok();
        if entry.header.epoch >= removal_epoch {
            after += 1;
            read_after += usize::from(readable);
        } else {
            before += 1;
            read_before += usize::from(readable);
        }
    }
    assert!(after >= 200, "only {after} entries after removal");
    assert!(before >= 200, "only {before} entries before removal");
    assert_eq!(
        read_after, 0,
        "removed lab decrypted entries written after its removal"
    );
    assert_eq!(
        read_before, before,
        "removed lab lost access to history it had"
    );
    // Its materialised view is frozen at the removal; the others moved on.
    assert_eq!(canonical_state(&mut lab, &net), lab_view_before);
    assert_ne!(canonical_state(&mut a, &net), lab_view_before);
    assert_eq!(canonical_state(&mut a, &net), canonical_state(&mut b, &net));
    // The lab's remaining records are still exportable.
    let p = &patients[0];
    assert!(lab.export_patient(&net, p, ExportFormat::Bundle).is_ok());
    assert!(a.verify_ledger(&net).unwrap().is_clean());
    assert!(b.verify_ledger(&net).unwrap().is_clean());
}
