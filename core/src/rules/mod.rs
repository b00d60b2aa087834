//! Rules that act by themselves (DESIGN §8).
pub mod decimal;
pub mod document;
pub mod engine;
pub mod governance;
pub mod outcome;

use crate::entry::EntryKind;

/// Check that an opened body of a rules entry kind decodes (receive refuses
/// entries that do not). A rule set must parse and compile under the
/// default [`engine::Limits`]: a hostile rule set is refused and nothing of
/// it is stored.
pub(crate) fn check_body(kind: EntryKind, body: &[u8]) -> Result<(), String> {
    let result = match kind {
        EntryKind::RuleSet => document::RuleSet::parse(body, &engine::Limits::default())
            .map(drop)
            .map_err(|e| e.to_string()),
        EntryKind::RuleOutcome => outcome::OutcomeRecord::decode(body)
            .map(drop)
            .map_err(|e| e.to_string()),
        EntryKind::Policy => governance::PolicyBody::decode(body)
            .map(drop)
            .map_err(|e| e.to_string()),
        EntryKind::Endorsement => governance::EndorsementBody::decode(body)
            .map(drop)
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    };
    result
}
