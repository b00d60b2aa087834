use careledger::node::ExportFormat;
use careledger::relay::MemoryRelay;
use careledger_scenarios::*;

#[test]
fn three_institutions_share_and_remove() {
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let mut lab = memory_node("lab.example");
    let mut relay = MemoryRelay::new();
    let net = form_network(&mut [&mut a, &mut b, &mut lab], &mut relay, "care");
    assert_eq!(a.members(&net).unwrap().len(), 3);
    let report = import_bulk(&mut a, &net, "Patient", T0);
    assert_eq!(report.patients, 13);
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, T0, 10);
    assert_eq!(b.patients(&net).unwrap().len(), 13);
    assert_eq!(canonical_state(&mut a, &net), canonical_state(&mut b, &net));
    assert_eq!(
        canonical_state(&mut a, &net),
        canonical_state(&mut lab, &net)
    );
    let lab_id = lab.identity().author_id();
    a.remove(&net, &lab_id).unwrap();
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, T0, 10);
    assert!(!lab.is_member(&net).unwrap());
    assert_eq!(b.members(&net).unwrap().len(), 2);
    let patient = a.patients(&net).unwrap()[0].clone();
    let t = a
        .export_patient(&net, &patient, ExportFormat::Bundle)
        .unwrap();
    assert!(!t.is_empty());
    for report in [
        a.verify_ledger(&net).unwrap(),
        b.verify_ledger(&net).unwrap(),
    ] {
        assert!(report.is_clean(), "{report:?}");
    }
}

#[test]
fn key_package_names_its_owner_before_invite() {
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let info = a.inspect_key_package(&b.key_package().unwrap()).unwrap();
    assert_eq!(info.name, "hospital-b.example");
    assert_eq!(info.fingerprint, b.identity().fingerprint());
    assert_eq!(info.author, b.identity().author_id());
    let err = a.inspect_key_package(b"not a key package").unwrap_err();
    assert!(matches!(
        err,
        careledger::node::NetworkError::InvalidKeyPackage(_)
    ));
    let net = a.create_network("care").unwrap();
    assert!(matches!(
        a.invite(&net, &[0u8; 40]),
        Err(careledger::node::NetworkError::InvalidKeyPackage(_))
    ));
    assert!(
        !a.commit_pending(&net).unwrap(),
        "a rejected invite leaves no pending commit"
    );
}
