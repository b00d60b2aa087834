//! Forged, replayed, foreign, mis-keyed, mis-attributed and forked entries:
//! each is rejected or flagged with its own typed error, and nothing already
//! stored changes.

use careledger::body::{RecordChangeBody, RecordKeyGrant};
use careledger::entry::{AuthorId, Entry, EntryHeader, EntryId, EntryKind};
use careledger::keys::{seal, EpochKey};
use careledger::node::{NetworkId, Node, RejectEntryError};
use careledger::relay::{MemoryRelay, Relay};
use careledger::sync::sync;
use careledger::wire::WireMessage;
use careledger_scenarios::*;
use ed25519_dalek::SigningKey;

struct World {
    a: Node,
    b: Node,
    relay: MemoryRelay,
    net: NetworkId,
}

fn world() -> World {
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let mut relay = MemoryRelay::new();
    let net = network_sharing_patients(&mut [&mut a, &mut b], &mut relay);
    World { a, b, relay, net }
}

/// Deliver one entry to `node` and return its single rejection.
fn deliver(node: &mut Node, net: &NetworkId, entry: &[u8]) -> careledger::node::ReceiveReport {
    node.receive(
        net,
        &[WireMessage::Entry(entry.to_vec()).encode()],
        None,
        T0,
    )
    .unwrap()
}

fn fingerprint(
    node: &mut Node,
    net: &NetworkId,
) -> (Vec<(String, String)>, Vec<careledger::node::Head>) {
    (canonical_state(node, net), node.heads(net).unwrap())
}

/// A header continuing `author`'s chain in `node`'s view.
fn next_header(
    node: &Node,
    net: &NetworkId,
    author: AuthorId,
    kind: EntryKind,
    epoch: u64,
) -> EntryHeader {
    let head = node
        .heads(net)
        .unwrap()
        .into_iter()
        .find(|h| h.author == author);
    EntryHeader {
        kind,
        network: net.0.clone(),
        author,
        seq: head.map_or(1, |h| h.seq + 1),
        prev: head.map_or(EntryId::ZERO, |h| h.id),
        epoch,
        time_ms: T0 + 1,
    }
}

/// A record change entry signed by `signing`, sealed with the given keys.
fn record_change(
    header: EntryHeader,
    epoch_key: &EpochKey,
    record_key: &RecordKeyGrant,
    change: &[u8],
    signing: &SigningKey,
) -> Vec<u8> {
    let aad = RecordChangeBody::inner_aad(&header.encode(), &record_key.record);
    let inner = seal(&record_key.key, &aad, change, [9; 24]).unwrap();
    let body = RecordChangeBody {
        record: record_key.record.clone(),
        key_id: record_key.key_id,
        change: inner.to_bytes(),
    };
    Entry::seal_and_sign(header, epoch_key, &body.encode(), [8; 24], signing)
        .unwrap()
        .encode()
}

/// An honest Automerge change by B on a patient record (B's own actor).
fn honest_change_by_b(w: &mut World) -> (String, Vec<u8>) {
    let patient = w.b.patients(&w.net).unwrap()[0].clone();
    let before = w.b.ledger_entries(&w.net).unwrap().len();
    w.b.edit_member(
        &w.net,
        &patient,
        "Patient",
        &patient,
        "active",
        Some("true"),
        T0 + 5,
    )
    .unwrap();
    let entries = w.b.ledger_entries(&w.net).unwrap();
    assert!(entries.len() > before);
    let entry = Entry::decode(entries.last().unwrap()).unwrap();
    let epoch_key =
        w.b.epoch_key_for_testing(&w.net, entry.header.epoch)
            .unwrap();
    let body = RecordChangeBody::decode(&entry.open(&epoch_key).unwrap()).unwrap();
    let key = w.b.record_key_for_testing(&w.net, &patient).unwrap();
    let aad = RecordChangeBody::inner_aad(&entry.header.encode(), &patient);
    let sealed = careledger::keys::Sealed::from_bytes(&body.change).unwrap();
    (
        patient,
        careledger::keys::open(&key.key, &aad, &sealed).unwrap(),
    )
}

/// An empty key-grant entry claiming `author`, continuing its chain as B sees
/// it, at the current epoch: sealed under `key` (the real epoch key if
/// `None`) and signed with `signing`. Returns the epoch and the bytes.
fn forged_grant(
    w: &mut World,
    author: AuthorId,
    key: Option<EpochKey>,
    signing: &SigningKey,
) -> (u64, Vec<u8>) {
    let epoch = w.a.epoch(&w.net).unwrap();
    let key = key.unwrap_or_else(|| w.a.epoch_key_for_testing(&w.net, epoch).unwrap());
    let header = next_header(&w.b, &w.net, author, EntryKind::KeyGrant, epoch);
    let body = [0; 6]; // no epochs, no members, no record keys
    let entry = Entry::seal_and_sign(header, &key, &body, [1; 24], signing).unwrap();
    (epoch, entry.encode())
}

#[test]
fn forged_author_is_rejected() {
    let mut w = world();
    let before = fingerprint(&mut w.b, &w.net);
    // An outsider who even holds the epoch key signs as hospital A.
    let outsider = SigningKey::from_bytes(&[42; 32]);
    let a_id = w.a.identity().author_id();
    let (_, forged) = forged_grant(&mut w, a_id, None, &outsider);
    let report = deliver(&mut w.b, &w.net, &forged);
    assert_eq!(report.accepted, 0);
    assert!(matches!(
        report.rejected.as_slice(),
        [RejectEntryError::Signature(_)]
    ));
    assert_eq!(fingerprint(&mut w.b, &w.net), before);
    assert!(
        w.b.flagged_authors(&w.net).unwrap().is_empty(),
        "forgery must not frame A"
    );
}

#[test]
fn replayed_entry_changes_nothing() {
    let mut w = world();
    let before = fingerprint(&mut w.b, &w.net);
    let entries = w.a.ledger_entries(&w.net).unwrap();
    let messages: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| WireMessage::Entry(e.clone()).encode())
        .collect();
    let report = w.b.receive(&w.net, &messages, None, T0).unwrap();
    assert_eq!(report.accepted, 0);
    assert_eq!(report.duplicates, entries.len());
    assert!(report.rejected.is_empty());
    assert_eq!(fingerprint(&mut w.b, &w.net), before);
    // Replayed into another network, the same entry is foreign.
    let other = w.b.create_network("other").unwrap();
    let report = deliver(&mut w.b, &other, &entries[0]);
    assert_eq!(report.rejected, vec![RejectEntryError::WrongNetwork]);
}

#[test]
fn entry_from_non_member_is_rejected() {
    let mut w = world();
    let before = fingerprint(&mut w.b, &w.net);
    let outsider = SigningKey::from_bytes(&[43; 32]);
    let author = AuthorId::of_public_key(outsider.verifying_key().as_bytes());
    let (epoch, entry) = forged_grant(&mut w, author, None, &outsider);
    let report = deliver(&mut w.b, &w.net, &entry);
    assert_eq!(
        report.rejected,
        vec![RejectEntryError::NotAMember { epoch }]
    );
    assert_eq!(fingerprint(&mut w.b, &w.net), before);
}

#[test]
fn entry_sealed_under_wrong_epoch_key_is_rejected() {
    let mut w = world();
    let before = fingerprint(&mut w.b, &w.net);
    // A real member signs, but seals under a key that is not the epoch's.
    let a_id = w.a.identity().author_id();
    let signing = w.a.signing_key_for_testing();
    let wrong = EpochKey::from_bytes([0x5A; 32]);
    let (_, entry) = forged_grant(&mut w, a_id, Some(wrong), &signing);
    let report = deliver(&mut w.b, &w.net, &entry);
    assert!(matches!(
        report.rejected.as_slice(),
        [RejectEntryError::Seal(_)]
    ));
    assert_eq!(fingerprint(&mut w.b, &w.net), before);
}

#[test]
fn change_whose_actor_is_not_the_signer_is_rejected_and_flagged() {
    let mut w = world();
    // B makes an honest change but does not publish it to A.
    let (patient, change) = honest_change_by_b(&mut w);
    let before = fingerprint(&mut w.a, &w.net);
    // A malicious A wraps B's change in an entry of its own.
    let epoch = w.a.epoch(&w.net).unwrap();
    let epoch_key = w.a.epoch_key_for_testing(&w.net, epoch).unwrap();
    let record_key = w.a.record_key_for_testing(&w.net, &patient).unwrap();
    let header = next_header(
        &w.a,
        &w.net,
        w.a.identity().author_id(),
        EntryKind::RecordChange,
        epoch,
    );
    let entry = record_change(
        header,
        &epoch_key,
        &record_key,
        &change,
        &w.a.signing_key_for_testing(),
    );
    // B receives it: the entry is A's, the change inside is B's.
    let report = deliver(&mut w.b, &w.net, &entry);
    assert_eq!(report.rejected, vec![RejectEntryError::ActorMismatch]);
    let flagged = w.b.flagged_authors(&w.net).unwrap();
    assert_eq!(
        flagged,
        vec![(w.a.identity().author_id(), "actor mismatch".to_string())]
    );
    assert_eq!(fingerprint(&mut w.a, &w.net), before);
}

#[test]
fn fork_is_kept_as_evidence_and_flags_the_author() {
    let mut w = world();
    let before = fingerprint(&mut w.b, &w.net);
    let a_id = w.a.identity().author_id();
    let head =
        w.b.heads(&w.net)
            .unwrap()
            .into_iter()
            .find(|h| h.author == a_id)
            .unwrap();
    let stored = w.b.ledger_entries(&w.net).unwrap();
    let original = stored
        .iter()
        .map(|bytes| Entry::decode(bytes).unwrap())
        .find(|e| e.header.author == a_id && e.header.seq == head.seq)
        .unwrap();
    // A signs a second, different entry at a seq it already used.
    let epoch_key =
        w.a.epoch_key_for_testing(&w.net, original.header.epoch)
            .unwrap();
    let fork = Entry::seal_and_sign(
        original.header.clone(),
        &epoch_key,
        &[0; 6],
        [3; 24],
        &w.a.signing_key_for_testing(),
    )
    .unwrap();
    assert_ne!(fork.id(), original.id());
    let report = deliver(&mut w.b, &w.net, &fork.encode());
    assert_eq!(
        report.rejected,
        vec![RejectEntryError::Fork { seq: head.seq }]
    );
    assert_eq!(
        w.b.flagged_authors(&w.net).unwrap(),
        vec![(a_id, "fork".to_string())]
    );
    let verify = w.b.verify_ledger(&w.net).unwrap();
    assert_eq!(verify.forks, 1, "the fork is kept as evidence");
    assert!(
        verify.problems.is_empty(),
        "the kept chain itself is intact"
    );
    assert!(!verify.is_clean(), "a ledger with a fork is not clean");
    assert_eq!(fingerprint(&mut w.b, &w.net), before, "nothing merged");
    // The same fork found by a second route is not double-counted.
    sync(&mut w.b, &mut w.relay, &w.net, T0).unwrap();
    deliver(&mut w.b, &w.net, &fork.encode());
    assert_eq!(w.b.verify_ledger(&w.net).unwrap().forks, 1);
}

#[test]
fn removed_member_cannot_write_into_later_epochs() {
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let mut lab = memory_node("lab.example");
    let mut relay = MemoryRelay::new();
    let net = form_network(&mut [&mut a, &mut b, &mut lab], &mut relay, "care");
    let lab_id = lab.identity().author_id();
    a.remove(&net, &lab_id).unwrap();
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, T0, 5);
    let epoch = b.epoch(&net).unwrap();
    // Even holding the new epoch key (leaked to it somehow), the removed lab
    // is no member of that epoch: its span ended at the removal.
    let leaked = a.epoch_key_for_testing(&net, epoch).unwrap();
    let header = next_header(&b, &net, lab_id, EntryKind::KeyGrant, epoch);
    let entry = Entry::seal_and_sign(
        header,
        &leaked,
        &[0; 10],
        [1; 24],
        &lab.signing_key_for_testing(),
    )
    .unwrap()
    .encode();
    let report = deliver(&mut b, &net, &entry);
    assert_eq!(
        report.rejected,
        vec![RejectEntryError::NotAMember { epoch }]
    );
}

#[test]
fn a_removed_member_cannot_back_date_entries_to_before_its_removal() {
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let mut lab = memory_node("lab.example");
    let mut relay = MemoryRelay::new();
    let net = network_sharing_patients(&mut [&mut a, &mut b, &mut lab], &mut relay);
    let lab_id = lab.identity().author_id();
    // The lab writes while a member: accepted everywhere.
    let p = lab.patients(&net).unwrap()[0].clone();
    lab.edit_member(&net, &p, "Patient", &p, "active", Some("true"), T0)
        .unwrap();
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, T0, 5);
    let old_epoch = lab.epoch(&net).unwrap();
    let lab_head = a
        .heads(&net)
        .unwrap()
        .into_iter()
        .find(|h| h.author == lab_id);
    a.remove(&net, &lab_id).unwrap();
    settle(&mut [&mut a, &mut b], &mut relay, &net, T0, 5);
    assert!(a.epoch(&net).unwrap() > old_epoch);
    // After the removal commit, in relay order, the lab signs an entry that
    // claims its last epoch, sealed under that epoch's key (it has it).
    let old_key = lab.epoch_key_for_testing(&net, old_epoch).unwrap();
    let record = lab.record_key_for_testing(&net, &p).unwrap();
    let header = next_header(&lab, &net, lab_id, EntryKind::RecordChange, old_epoch);
    let seq = header.seq;
    let change = b"not a real change".to_vec();
    let entry = record_change(
        header,
        &old_key,
        &record,
        &change,
        &lab.signing_key_for_testing(),
    );
    relay
        .publish(&net, &WireMessage::Entry(entry.clone()).encode())
        .unwrap();
    for node in [&mut a, &mut b] {
        let report = sync(node, &mut relay, &net, T0 + 1).unwrap();
        assert_eq!(
            report.received.rejected,
            vec![RejectEntryError::AfterRemoval { seq }]
        );
        assert_eq!(
            node.heads(&net)
                .unwrap()
                .into_iter()
                .find(|h| h.author == lab_id),
            lab_head
        );
    }
    // A member who joins later never saw the removal commit: the remover's
    // member-removed entry tells it where the lab's chain ended.
    let mut d = memory_node("registry.example");
    a.invite(&net, &d.key_package().unwrap()).unwrap();
    sync(&mut a, &mut relay, &net, T0 + 2).unwrap();
    let joined =
        careledger::sync::join_from_relay(&mut d, &mut relay, &net, "care", T0 + 2).unwrap();
    assert!(joined
        .received
        .rejected
        .contains(&RejectEntryError::AfterRemoval { seq }));
    settle(&mut [&mut a, &mut b, &mut d], &mut relay, &net, T0 + 3, 5);
    assert_eq!(d.heads(&net).unwrap(), a.heads(&net).unwrap());
    assert!(d.verify_ledger(&net).unwrap().is_clean());
    assert_eq!(d.held_entries(&net).unwrap(), Vec::<String>::new());
}

#[test]
fn waiting_entries_are_capped_and_fetched_again_later() {
    use careledger::node::HoldLimits;
    let mut a = memory_node("hospital-a.example");
    let mut b = memory_node("hospital-b.example");
    let mut c = memory_node("clinic-c.example");
    let mut relay = MemoryRelay::new();
    let net = network_sharing_patients(&mut [&mut a, &mut b, &mut c], &mut relay);
    let start = relay.log(&net).len();
    // A and C each write 20 entries; the relay carries each one's first
    // entry last, so everything else of theirs waits for a predecessor.
    let mut batches = Vec::new();
    for (node, decade) in [(&mut a, 1950), (&mut c, 1980)] {
        let p = node.patients(&net).unwrap()[0].clone();
        for n in 0..20 {
            let value = format!("\"{}-01-01\"", decade + n);
            node.edit_member(&net, &p, "Patient", &p, "birthDate", Some(&value), T0 + n)
                .unwrap();
        }
        let mut batch: Vec<Vec<u8>> = node
            .outgoing(100)
            .unwrap()
            .into_iter()
            .filter(|m| matches!(WireMessage::decode(&m.message), Ok(WireMessage::Entry(_))))
            .map(|m| m.message)
            .collect();
        assert_eq!(batch.len(), 20);
        batch.rotate_left(1);
        batches.push(batch);
    }
    let mut reordered = MemoryRelay::new();
    for message in &relay.log(&net)[..start] {
        reordered.publish(&net, message).unwrap();
    }
    for message in batches.iter().flatten() {
        reordered.publish(&net, message).unwrap();
    }
    b.set_hold_limits(HoldLimits {
        per_author: 5,
        total: 8,
    });
    // One page of what B has not seen yet: the caps hold.
    let cursor = b.relay_cursor(&net).unwrap();
    let page = reordered.fetch(&net, cursor, 1_000).unwrap();
    let report = b.receive_from_relay(&net, &page, T0 + 100).unwrap();
    assert!(report.held <= 8, "held {}", report.held);
    assert!(report.deferred >= 20, "deferred {}", report.deferred);
    assert!(report
        .rejected
        .iter()
        .all(|r| matches!(r, RejectEntryError::HoldLimit { .. })));
    assert!(b.refetch_after(&net).unwrap().is_some());
    // The pump reads the refused ones again once the held ones moved on.
    let synced = sync(&mut b, &mut reordered, &net, T0 + 101).unwrap();
    assert!(synced.refetched > 0);
    assert_eq!(b.refetch_after(&net).unwrap(), None);
    assert_eq!(b.held_entries(&net).unwrap(), Vec::<String>::new());
    for writer in [&a, &c] {
        let me = writer.identity().author_id();
        let mine = |node: &Node| {
            node.heads(&net)
                .unwrap()
                .into_iter()
                .find(|h| h.author == me)
        };
        assert_eq!(mine(&b), mine(writer), "nothing was lost");
    }
    assert!(b.verify_ledger(&net).unwrap().is_clean());
}
