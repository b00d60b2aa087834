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

/// Four members: A imported the 13 Synthea patients (14 entries: 13 record
/// changes and the key grant for their records) and B, having received them,
/// edited every chart (13 changes that depend on A's). C and D have seen
/// neither.
struct TwoAuthors {
    _a: Node,
    b: Node,
    c: Node,
    d: Node,
    net: NetworkId,
    /// A's key grant.
    grants: Vec<Vec<u8>>,
    /// A's record changes, in order.
    changes_a: Vec<Vec<u8>>,
    /// B's edits, in order.
    from_b: Vec<Vec<u8>>,
}

impl TwoAuthors {
    fn new() -> Self {
        let mut nodes = ["a", "b", "c", "d"].map(|name| memory_node(&format!("{name}.example")));
        let mut relay = MemoryRelay::new();
        let [a, b, c, d] = &mut nodes;
        let members = &mut [a, b, c, d];
        let net = form_network(members, &mut relay, "care");
        settle(members, &mut relay, &net, T0, 5);
        for node in members.iter_mut() {
            assert!(drain(node).is_empty(), "settled: nothing left to send");
        }
        let [a, b, ..] = members;
        import_bulk(a, &net, "Patient", T0);
        let from_a = drain(a);
        assert_eq!(from_a.len(), 14);
        let report = b.receive(&net, &from_a, None, T0).unwrap();
        assert_eq!(report.accepted, 14);
        for patient in b.patients(&net).unwrap() {
            b.edit_member(
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
        let from_b = drain(b);
        assert_eq!(from_b.len(), 13);
        let (grants, changes_a) = from_a.into_iter().partition(|message| {
            let Ok(WireMessage::Entry(bytes)) = WireMessage::decode(message) else {
                return false;
            };
            Entry::decode(&bytes).unwrap().header.kind == EntryKind::KeyGrant
        });
        let [_a, b, c, d] = nodes;
        Self {
            _a,
            b,
            c,
            d,
            net,
            grants,
            changes_a,
            from_b,
        }
    }

    /// Concatenated batches.
    fn batch(parts: &[&[Vec<u8>]]) -> Vec<Vec<u8>> {
        parts.iter().flat_map(|part| part.iter().cloned()).collect()
    }

    /// D receives `batch` one message at a time; it then holds nothing.
    fn d_one_by_one(&mut self, batch: &[Vec<u8>]) {
        for message in batch {
            self.d
                .receive(&self.net, std::slice::from_ref(message), None, T0 + 2)
                .unwrap();
        }
        assert!(self.d.held_entries(&self.net).unwrap().is_empty());
    }
}

#[test]
fn a_batch_in_causal_order_is_accepted_whole() {
    let mut t = TwoAuthors::new();
    let batch = TwoAuthors::batch(&[&t.grants, &t.changes_a, &t.from_b]);

    let report = t.c.receive(&t.net, &batch, None, T0 + 2).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!((report.accepted, report.held), (27, 0));
    t.d_one_by_one(&batch);
    let expected = canonical_state(&mut t.b, &t.net);
    assert_eq!(canonical_state(&mut t.c, &t.net), expected);
    assert_eq!(canonical_state(&mut t.d, &t.net), expected);
    assert_eq!(t.c.heads(&t.net).unwrap(), t.b.heads(&t.net).unwrap());
}

#[test]
fn a_batch_with_changes_before_their_dependencies_ends_as_one_by_one() {
    let mut t = TwoAuthors::new();
    // The record keys, then B's edits: each can be opened but needs A's
    // change to its chart, later in the batch.
    assert_eq!(t.grants.len(), 1);
    let batch = TwoAuthors::batch(&[&t.grants, &t.from_b, &t.changes_a]);

    let report = t.c.receive(&t.net, &batch, None, T0 + 2).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.held, 0, "held edits applied once A's changes came");
    assert_eq!(report.accepted, 27);
    assert!(t.c.held_entries(&t.net).unwrap().is_empty());

    // The same messages one at a time: B's edits wait, then A's release them.
    t.d_one_by_one(&batch);
    let expected = canonical_state(&mut t.b, &t.net);
    assert!(expected.iter().all(|(_, bundle)| bundle.contains("\"fr\"")));
    assert_eq!(canonical_state(&mut t.c, &t.net), expected);
    assert_eq!(canonical_state(&mut t.d, &t.net), expected);
    assert_eq!(t.c.heads(&t.net).unwrap(), t.d.heads(&t.net).unwrap());
    assert!(t.c.verify_ledger(&t.net).unwrap().is_clean());
}

#[test]
fn a_batch_cut_short_holds_what_it_cannot_apply_yet() {
    let mut t = TwoAuthors::new();
    // B's edits and only some of A's changes: the other edits are held.
    let batch = TwoAuthors::batch(&[&t.grants, &t.from_b, &t.changes_a[..5]]);
    let report = t.c.receive(&t.net, &batch, None, T0 + 2).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    // B's chain stops at its first edit whose chart C lacks; the rest waits.
    let first = report.accepted;
    assert!(report.held > 0);
    assert_eq!(first + report.held, 19);
    assert_eq!(t.c.held_entries(&t.net).unwrap().len(), report.held);

    let report =
        t.c.receive(&t.net, &t.changes_a[5..], None, T0 + 3)
            .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!((first + report.accepted, report.held), (27, 0));
    assert_eq!(
        canonical_state(&mut t.c, &t.net),
        canonical_state(&mut t.b, &t.net)
    );
}
