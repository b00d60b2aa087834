//! Ledger entries as a relay delivers them: decode, verify the signature
//! against every fixture author, open with the fixture's epoch key, and decode
//! the opened body by kind.

use careledger::analytics::ledger::{DecisionRecord, ModelCard, UpdateFacts};
use careledger::body::{
    EraseBody, KeyGrantBody, KeyWithheldBody, MemberRemovedBody, RecordChangeBody,
};
use careledger::entry::{Entry, EntryKind};
use careledger::wire::WireMessage;

use crate::fixture;

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let Ok(entry) = Entry::decode(data) else {
        return;
    };
    // The encoding is canonical: what decodes re-encodes to the same bytes.
    assert_eq!(entry.encode(), data, "entry encoding is not canonical");
    assert_eq!(entry.id(), Entry::id_of(data));
    for public_key in &fixture::get().public_keys {
        let decoded = entry.verify(public_key).is_ok();
        let encoded = Entry::verify_encoded(data, &entry.header.author, public_key).is_ok();
        assert_eq!(decoded, encoded, "the two signature checks disagree");
    }
    let Some(key) = fixture::epoch_key(entry.header.epoch) else {
        return;
    };
    let Ok(body) = entry.open(key) else {
        return;
    };
    decode_body(entry.header.kind, &body);
}

/// Decodes an opened body as its kind says; errors are fine, panics are not.
pub fn decode_body(kind: EntryKind, body: &[u8]) {
    match kind {
        EntryKind::RecordChange => {
            if let Ok(decoded) = RecordChangeBody::decode(body) {
                assert_eq!(decoded.encode(), body, "record change body not canonical");
            }
        }
        EntryKind::KeyGrant => {
            let _ = KeyGrantBody::decode(body);
        }
        EntryKind::KeyWithheld => {
            let _ = KeyWithheldBody::decode(body);
        }
        EntryKind::ModelCard => {
            let _ = ModelCard::decode_body(body);
        }
        EntryKind::Decision => {
            let _ = DecisionRecord::decode_body(body);
        }
        EntryKind::ModelUpdate => {
            let _ = UpdateFacts::decode_body(body);
        }
        EntryKind::RuleSet => {
            let _ = careledger::rules::document::RuleSet::parse(
                body,
                &careledger::rules::engine::Limits::default(),
            );
        }
        EntryKind::RuleOutcome => {
            let _ = careledger::rules::outcome::OutcomeRecord::decode(body);
        }
        EntryKind::Policy => {
            let _ = careledger::rules::governance::PolicyBody::decode(body);
        }
        EntryKind::Endorsement => {
            let _ = careledger::rules::governance::EndorsementBody::decode(body);
        }
        EntryKind::FlPolicy
        | EntryKind::FlPlan
        | EntryKind::FlKeys
        | EntryKind::FlShares
        | EntryKind::FlMasked
        | EntryKind::FlSurvivors
        | EntryKind::FlUnmask
        | EntryKind::FlRound => {
            let _ = careledger::analytics::secure_fl::check_body(kind, body);
        }
        EntryKind::Erase => {
            if let Ok(decoded) = EraseBody::decode(body) {
                assert_eq!(decoded.encode(), body, "erase body not canonical");
            }
        }
        EntryKind::MemberRemoved => {
            let _ = MemberRemovedBody::decode(body);
        }
    }
}

/// Every entry of the fixture's relay log.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    fixture::get()
        .log
        .iter()
        .filter_map(|m| match WireMessage::decode(m) {
            Ok(WireMessage::Entry(bytes)) => Some(bytes),
            _ => None,
        })
        .enumerate()
        .map(|(i, bytes)| {
            let kind = Entry::decode(&bytes).map_or("bad", |e| e.header.kind.name());
            (format!("entry-{i:02}-{kind}"), bytes)
        })
        .collect()
}
