//! Large receive batches: record changes are applied on a second thread while
//! the ledger goes on, and a batch where that speculation fails (a change
//! arrives before one it depends on) is rolled back and received again one
//! entry at a time. Either way the outcome is the one of receiving each
//! message on its own.

use careledger::entry::{Entry, EntryKind};
use careledger::node::{NetworkId, Node};
use careledger::relay::MemoryRelay;
use careledger::wire::WireMessage;
use careledger_scenarios::{canonical_state, form_network, import_bulk, memory_node, settle, T0};

/// Everything `node` has queued for the relay, in order.
fn drain(node: &mut Node) -> Vec<Vec<u8>> {
    let mut log = Vec::new();
    while let Some(out) = node.poll_outgoing().unwrap() {
        log.push(out.message);
        node.ack_outgoing(out.id).unwrap();
    }
    log
}

/// Four members; A imports the 13 Synthea patients (14 entries) and B, having
/// received them, edits every chart (13 changes that depend on A's). Returns
/// (A's messages, B's messages).
fn two_authors(nodes: &mut [&mut Node; 4]) -> (NetworkId, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut relay = MemoryRelay::new();
    let net = form_network(nodes, &mut relay, "care");
    settle(nodes, &mut relay, &net, T0, 5);
    for node in nodes.iter_mut() {
        assert!(drain(node).is_empty(), "settled: nothing left to send");
    }
    import_bulk(nodes[0], &net, "Patient", T0);
    let from_a = drain(nodes[0]);
    // 13 record changes and the key grant for their records.
    assert_eq!(from_a.len(), 14);
    let report = nodes[1].receive(&net, &from_a, None, T0).unwrap();
    assert_eq!(report.accepted, 14);
    for patient in nodes[1].patients(&net).unwrap() {
        nodes[1]
            .edit_member(
                &net,
                &patient,
                "Patient",
                &patient,
                "language",
                Some("\"fr\""),
                T0 + 1,
            )
            .unwrap();
    }
    let from_b = drain(nodes[1]);
    assert_eq!(from_b.len(), 13);
    (net, from_a, from_b)
}

/// `messages` split into (key grants, the rest), each in order.
fn grants_first(messages: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    messages.iter().cloned().partition(|message| {
        let Ok(WireMessage::Entry(bytes)) = WireMessage::decode(message) else {
            return false;
        };
        Entry::decode(&bytes).unwrap().header.kind == EntryKind::KeyGrant
    })
}

#[test]
fn a_batch_in_causal_order_is_accepted_whole() {
    let (mut a, mut b, mut c, mut d) = (
        memory_node("a.example"),
        memory_node("b.example"),
        memory_node("c.example"),
        memory_node("d.example"),
    );
    let (net, from_a, from_b) = two_authors(&mut [&mut a, &mut b, &mut c, &mut d]);
    let batch: Vec<Vec<u8>> = from_a.iter().chain(&from_b).cloned().collect();

    let report = c.receive(&net, &batch, None, T0 + 2).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!((report.accepted, report.held), (27, 0));
    for message in &batch {
        d.receive(&net, std::slice::from_ref(message), None, T0 + 2)
            .unwrap();
    }
    assert_eq!(canonical_state(&mut c, &net), canonical_state(&mut b, &net));
    assert_eq!(canonical_state(&mut d, &net), canonical_state(&mut b, &net));
    assert_eq!(c.heads(&net).unwrap(), b.heads(&net).unwrap());
}

#[test]
fn a_batch_with_changes_before_their_dependencies_ends_as_one_by_one() {
    let (mut a, mut b, mut c, mut d) = (
        memory_node("a.example"),
        memory_node("b.example"),
        memory_node("c.example"),
        memory_node("d.example"),
    );
    let (net, from_a, from_b) = two_authors(&mut [&mut a, &mut b, &mut c, &mut d]);
    // The record keys, then B's edits: each can be opened but needs A's
    // change to its chart, later in the batch.
    let (grants, changes_a) = grants_first(&from_a);
    assert_eq!(grants.len(), 1);
    let batch: Vec<Vec<u8>> = grants
        .iter()
        .chain(&from_b)
        .chain(&changes_a)
        .cloned()
        .collect();

    let report = c.receive(&net, &batch, None, T0 + 2).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.held, 0, "held edits applied once A's changes came");
    assert_eq!(report.accepted, 27);
    assert!(c.held_entries(&net).unwrap().is_empty());

    // The same messages one at a time: B's edits wait, then A's release them.
    for message in &batch {
        d.receive(&net, std::slice::from_ref(message), None, T0 + 2)
            .unwrap();
    }
    assert!(d.held_entries(&net).unwrap().is_empty());
    let expected = canonical_state(&mut b, &net);
    assert!(expected.iter().all(|(_, bundle)| bundle.contains("\"fr\"")));
    assert_eq!(canonical_state(&mut c, &net), expected);
    assert_eq!(canonical_state(&mut d, &net), expected);
    assert_eq!(c.heads(&net).unwrap(), d.heads(&net).unwrap());
    assert!(c.verify_ledger(&net).unwrap().is_clean());
}

#[test]
fn a_batch_cut_short_holds_what_it_cannot_apply_yet() {
    let (mut a, mut b, mut c, mut d) = (
        memory_node("a.example"),
        memory_node("b.example"),
        memory_node("c.example"),
        memory_node("d.example"),
    );
    let (net, from_a, from_b) = two_authors(&mut [&mut a, &mut b, &mut c, &mut d]);
    // B's edits and only some of A's changes: the other edits are held.
    let (grants, changes_a) = grants_first(&from_a);
    let batch: Vec<Vec<u8>> = grants
        .iter()
        .chain(&from_b)
        .chain(&changes_a[..5])
        .cloned()
        .collect();
    let report = c.receive(&net, &batch, None, T0 + 2).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    // B's chain stops at its first edit whose chart C lacks; the rest waits.
    let first = report.accepted;
    assert!(report.held > 0);
    assert_eq!(first + report.held, 19);
    assert_eq!(c.held_entries(&net).unwrap().len(), report.held);

    let report = c.receive(&net, &changes_a[5..], None, T0 + 3).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!((first + report.accepted, report.held), (27, 0));
    assert_eq!(canonical_state(&mut c, &net), canonical_state(&mut b, &net));
}
