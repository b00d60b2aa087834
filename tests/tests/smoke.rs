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

/// An integrator with its own transport: messages leave through the outbox as
/// bytes, the Welcome is handed over as it travelled, the rest is received in
/// the transport's order.
#[test]
fn own_transport_carries_welcome_and_history() {
    use careledger::wire::WireMessage;
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let net = a.create_network("care").unwrap();
    import_bulk(&mut a, &net, "Patient", T0);
    a.invite(&net, &b.key_package().unwrap()).unwrap();
    let mut log: Vec<Vec<u8>> = Vec::new();
    let drain = |node: &mut careledger::node::Node, log: &mut Vec<Vec<u8>>| {
        while let Some(out) = node.poll_outgoing().unwrap() {
            log.push(out.message);
            node.ack_outgoing(out.id).unwrap();
        }
    };
    drain(&mut a, &mut log);
    // The commit comes back in transport order and wins; the Welcome follows.
    a.receive(&net, &log, None, T0).unwrap();
    drain(&mut a, &mut log);
    let welcome = log
        .iter()
        .find(|m| matches!(WireMessage::decode(m), Ok(WireMessage::Welcome(_))))
        .expect("a Welcome in the outbox")
        .clone();
    assert_eq!(b.join(&welcome, "care").unwrap(), net);
    b.receive(&net, &log, None, T0).unwrap();
    drain(&mut b, &mut log);
    a.receive(&net, &log, None, T0).unwrap();
    drain(&mut a, &mut log);
    b.receive(&net, &log, None, T0).unwrap();
    assert_eq!(b.patients(&net).unwrap().len(), 13);
    assert_eq!(canonical_state(&mut a, &net), canonical_state(&mut b, &net));
}
