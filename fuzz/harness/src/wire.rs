//! Relay envelopes and heads announcements: decode (canonical round trip),
//! then deliver to a receiver that has joined the fixture network and holds
//! its whole ledger, so heads drive the resend logic against real chains.

use std::sync::{Mutex, OnceLock};

use careledger::entry::AuthorId;
use careledger::node::Node;
use careledger::wire::WireMessage;

use crate::{fixture, node_util};

struct Member {
    _dir: tempfile::TempDir,
    node: Node,
}

static MEMBER: OnceLock<Mutex<Member>> = OnceLock::new();

fn member() -> &'static Mutex<Member> {
    MEMBER.get_or_init(|| {
        let fx = fixture::get();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = node_util::open_copy(dir.path(), &fx.receiver_store);
        assert!(
            fx.log.iter().any(|m| node_util::try_join(&mut node, m)),
            "the fixture log welcomes the receiver"
        );
        node.receive(&fx.network, &fx.log, None, fixture::T0 + 10)
            .expect("receive the fixture log");
        node_util::drain_outbox(&mut node);
        Mutex::new(Member { _dir: dir, node })
    })
}

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let Ok(message) = WireMessage::decode(data) else {
        return;
    };
    assert_eq!(message.encode(), data, "wire encoding is not canonical");
    let fx = fixture::get();
    let mut member = member().lock().unwrap_or_else(|p| p.into_inner());
    let node = &mut member.node;
    let before = node.heads(&fx.network).expect("heads");
    node.receive(&fx.network, &[data.to_vec()], None, fixture::T0 + 10)
        .expect("receive fails only on a store failure");
    node_util::drain_outbox(node);
    // Only authenticated entries move a chain; the fixture log is already
    // complete, so a fuzzed message may add nothing.
    let after = node.heads(&fx.network).expect("heads");
    assert_eq!(before, after, "a fuzzed message changed the ledger");
}

/// Every heads announcement of the fixture log, one of each other kind, and
/// heads claiming far-ahead or unknown chains.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let fx = fixture::get();
    let mut out = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (i, message) in fx.log.iter().enumerate() {
        let kind = match WireMessage::decode(message) {
            Ok(WireMessage::Entry(_)) => "entry",
            Ok(WireMessage::Commit(_)) => "commit",
            Ok(WireMessage::Welcome(_)) => "welcome",
            Ok(WireMessage::Heads { .. }) => "heads",
            Err(_) => "bad",
        };
        if kind == "heads" || kinds.insert(kind) {
            out.push((format!("log-{i:02}-{kind}"), message.clone()));
        }
    }
    let author = AuthorId::of_public_key(&fx.public_keys[0]);
    let far = WireMessage::Heads {
        sender: AuthorId::of_public_key(&fx.public_keys[2]),
        heads: vec![(author, u64::MAX), (AuthorId([9; 32]), 1)],
    };
    out.push(("heads-far-ahead".into(), far.encode()));
    let behind = WireMessage::Heads {
        sender: AuthorId([1; 32]),
        heads: vec![(author, 0)],
    };
    out.push(("heads-behind".into(), behind.encode()));
    out
}
