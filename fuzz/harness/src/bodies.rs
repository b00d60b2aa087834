//! Opened entry bodies of every kind (record change, key grant, key
//! withheld, model card, decision, model update): the first byte is the
//! entry kind code, the rest the body. Also the model card's JSON alone.

use careledger::analytics::ledger::ModelCard;
use careledger::body::{KeyGrantBody, KeyWithheldBody, PairBody};
use careledger::entry::{Entry, EntryKind};
use careledger::wire::WireMessage;

use crate::{entry, fixture};

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let Some((&code, body)) = data.split_first() else {
        return;
    };
    match EntryKind::from_code(code) {
        Some(kind) => entry::decode_body(kind, body),
        None => {
            let _ = ModelCard::from_json(body);
            let _ = PairBody::decode(body);
        }
    }
    if let Ok(grant) = KeyGrantBody::decode(body) {
        assert_eq!(grant.encode(), body, "key grant body not canonical");
    }
    if let Ok(withheld) = KeyWithheldBody::decode(body) {
        assert_eq!(withheld.encode(), body, "key withheld body not canonical");
    }
}

fn vec32(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The opened bodies of the fixture's entries, and framed analytics bodies.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let fx = fixture::get();
    let mut out = Vec::new();
    for (i, message) in fx.log.iter().enumerate() {
        let Ok(WireMessage::Entry(bytes)) = WireMessage::decode(message) else {
            continue;
        };
        let entry = Entry::decode(&bytes).expect("fixture entry");
        let Some(key) = fixture::epoch_key(entry.header.epoch) else {
            continue;
        };
        let body = entry.open(key).expect("fixture entry opens");
        if body.len() < 8192 {
            let mut seed = vec![entry.header.kind as u8];
            seed.extend_from_slice(&body);
            out.push((format!("{}-{i:02}", entry.header.kind.name()), seed));
        }
    }
    for (kind, name, parts) in [
        (
            EntryKind::ModelCard,
            "model-card",
            vec![&b"{}"[..], b"model"],
        ),
        (EntryKind::Decision, "decision", vec![&b"{}"[..]]),
        (
            EntryKind::ModelUpdate,
            "model-update",
            vec![&b"{}"[..], b"update"],
        ),
    ] {
        let mut seed = vec![kind as u8];
        for part in parts {
            vec32(&mut seed, part);
        }
        out.push((name.to_string(), seed));
    }
    out
}
