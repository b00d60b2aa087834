//! Governance: the network's policy (a quorum, k of n members) and the
//! endorsements that make rule sets, model cards and later policies active.
//!
//! Entries: a **policy** ([`EntryKind::Policy`](crate::entry::EntryKind::Policy))
//! names the quorum `k` (and, for readers, the `n` members it was written
//! for); an **endorsement** ([`EntryKind::Endorsement`](crate::entry::EntryKind::Endorsement))
//! endorses or withdraws one target: a rule set (by hash), a model card or a
//! policy (by entry id). Endorsing a model card records the *confirmed*
//! verification the endorser ran first.
//!
//! [`Governance::at`] decides everything from the governance entries inside
//! a **cut** (per-author chain heads), so the executor that writes an
//! outcome and every member that re-checks it later decide alike:
//!
//! 1. The policy in force: among policies that replace none, the one with
//!    the smallest entry id (a network's first policy takes effect by
//!    itself). A policy that names the one in force in `replaces` takes its
//!    place once endorsed by that policy's quorum; repeat.
//! 2. An endorser's stance on a target is its last endorsement entry for
//!    that target in its own chain: endorse or withdraw. A target is
//!    **active** when at least `k` distinct members stand endorsed. A
//!    withdrawal below the quorum deactivates it.
//! 3. Without a policy nothing is active.
//!
//! ```
//! use careledger::rules::governance::{Fact, FactBody, Governance, PolicyBody, EndorsementBody, Target, Stance};
//! use careledger::entry::{AuthorId, EntryId};
//! let (a, b) = (AuthorId([1; 32]), AuthorId([2; 32]));
//! let target = Target::RuleSet("ab".repeat(32));
//! let facts = vec![
//!     Fact { entry: EntryId([9; 32]), author: a, seq: 1, body: FactBody::Policy(PolicyBody::new(2, 3, None)) },
//!     Fact { entry: EntryId([5; 32]), author: a, seq: 2, body: FactBody::Endorsement(EndorsementBody::new(target.clone(), Stance::Endorse)) },
//! ];
//! assert!(!Governance::at(&facts).activation(&target).active);
//! let mut more = facts.clone();
//! more.push(Fact { entry: EntryId([6; 32]), author: b, seq: 1, body: FactBody::Endorsement(EndorsementBody::new(target.clone(), Stance::Endorse)) });
//! assert!(Governance::at(&more).activation(&target).active);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::entry::{AuthorId, EntryId};

/// The policy format this library writes and reads.
pub const POLICY_FORMAT_VERSION: u32 = 1;
/// The endorsement format this library writes and reads.
pub const ENDORSEMENT_FORMAT_VERSION: u32 = 1;
const POLICY_FORMAT: &str = "careledger.policy";
const ENDORSEMENT_FORMAT: &str = "careledger.endorsement";

/// A network policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// `careledger.policy`.
    pub format: String,
    /// [`POLICY_FORMAT_VERSION`].
    pub format_version: u32,
    /// Endorsements needed: k.
    pub quorum: u32,
    /// Members when written: n (informative).
    pub members: u32,
    /// The policy this one replaces (entry id, hex), if any.
    #[serde(default)]
    pub replaces: Option<String>,
}

impl PolicyBody {
    /// A policy of `quorum` of `members`.
    pub fn new(quorum: u32, members: u32, replaces: Option<EntryId>) -> PolicyBody {
        PolicyBody {
            format: POLICY_FORMAT.into(),
            format_version: POLICY_FORMAT_VERSION,
            quorum,
            members,
            replaces: replaces.map(|id| id.to_hex()),
        }
    }
}

/// What an endorsement is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Target {
    /// A rule set, by its hash (hex).
    RuleSet(String),
    /// A model card, by its entry id (hex).
    ModelCard(String),
    /// A policy, by its entry id (hex).
    Policy(String),
}

impl Target {
    /// `rule set`, `model card` or `policy`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Target::RuleSet(_) => "rule set",
            Target::ModelCard(_) => "model card",
            Target::Policy(_) => "policy",
        }
    }

    /// The hash or entry id, hex.
    pub fn id(&self) -> &str {
        match self {
            Target::RuleSet(id) | Target::ModelCard(id) | Target::Policy(id) => id,
        }
    }
}

/// Endorse or withdraw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stance {
    /// Counts towards the quorum.
    Endorse,
    /// Takes an earlier endorsement back.
    Withdraw,
}

/// An endorsement entry's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndorsementBody {
    /// `careledger.endorsement`.
    pub format: String,
    /// [`ENDORSEMENT_FORMAT_VERSION`].
    pub format_version: u32,
    /// What.
    pub target: Target,
    /// Endorse or withdraw.
    pub stance: Stance,
    /// For a model card: the steps of the endorser's own *confirmed* verification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_steps: Vec<String>,
}

impl EndorsementBody {
    /// An endorsement (or withdrawal) of `target`.
    pub fn new(target: Target, stance: Stance) -> EndorsementBody {
        EndorsementBody {
            format: ENDORSEMENT_FORMAT.into(),
            format_version: ENDORSEMENT_FORMAT_VERSION,
            target,
            stance,
            verified_steps: Vec::new(),
        }
    }
}

/// A governance body that does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} body malformed: {detail}")]
pub struct DecodeGovernanceError {
    /// `policy` or `endorsement`.
    pub kind: &'static str,
    /// What is wrong.
    pub detail: String,
}

impl PolicyBody {
    /// Encode as JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode and check.
    pub fn decode(bytes: &[u8]) -> Result<PolicyBody, DecodeGovernanceError> {
        let bad = |detail: String| DecodeGovernanceError {
            kind: "policy",
            detail,
        };
        let body: PolicyBody = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if body.format != POLICY_FORMAT || body.format_version != POLICY_FORMAT_VERSION {
            return Err(bad("unknown format or version".into()));
        }
        if body.quorum == 0 {
            return Err(bad("quorum must be at least 1".into()));
        }
        if body
            .replaces
            .as_deref()
            .is_some_and(|r| EntryId::from_hex(r).is_none())
        {
            return Err(bad("replaces is not an entry id".into()));
        }
        Ok(body)
    }
}

impl EndorsementBody {
    /// Encode as JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode and check.
    pub fn decode(bytes: &[u8]) -> Result<EndorsementBody, DecodeGovernanceError> {
        let bad = |detail: String| DecodeGovernanceError {
            kind: "endorsement",
            detail,
        };
        let body: EndorsementBody =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if body.format != ENDORSEMENT_FORMAT || body.format_version != ENDORSEMENT_FORMAT_VERSION {
            return Err(bad("unknown format or version".into()));
        }
        let id = body.target.id();
        if id.len() != 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad("target id is not 64 lowercase hex digits".into()));
        }
        Ok(body)
    }
}

/// One governance entry inside a cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The entry id.
    pub entry: EntryId,
    /// Its author.
    pub author: AuthorId,
    /// Its position in the author's chain.
    pub seq: u64,
    /// What it says.
    pub body: FactBody,
}

/// A policy or an endorsement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactBody {
    /// A policy.
    Policy(PolicyBody),
    /// An endorsement or withdrawal.
    Endorsement(EndorsementBody),
}

/// Whether a target is active, and on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    /// Active under the policy in force.
    pub active: bool,
    /// The policy in force (entry id), if any.
    pub policy: Option<EntryId>,
    /// Its quorum (0 without a policy).
    pub quorum: u32,
    /// The endorsement entries of the members standing endorsed, sorted by entry id.
    pub endorsements: Vec<EntryId>,
}

/// The governance state of a cut.
#[derive(Clone, Debug, Default)]
pub struct Governance {
    policy: Option<(EntryId, u32)>,
    /// Per target: per endorser, its last stance and that entry.
    stances: BTreeMap<Target, BTreeMap<AuthorId, (u64, Stance, EntryId)>>,
}

impl Governance {
    /// Decide from the governance entries of a cut (any order).
    pub fn at(facts: &[Fact]) -> Governance {
        let mut stances: BTreeMap<Target, BTreeMap<AuthorId, (u64, Stance, EntryId)>> =
            BTreeMap::new();
        let mut policies: BTreeMap<EntryId, &PolicyBody> = BTreeMap::new();
        for fact in facts {
            match &fact.body {
                FactBody::Policy(policy) => {
                    policies.insert(fact.entry, policy);
                }
                FactBody::Endorsement(e) => {
                    let slot = stances.entry(e.target.clone()).or_default();
                    let newer = slot
                        .get(&fact.author)
                        .is_none_or(|(seq, _, _)| fact.seq > *seq);
                    if newer {
                        slot.insert(fact.author, (fact.seq, e.stance, fact.entry));
                    }
                }
            }
        }
        let mut governance = Governance {
            policy: None,
            stances,
        };
        let mut current = policies
            .iter()
            .find(|(_, p)| p.replaces.is_none())
            .map(|(id, p)| (*id, p.quorum));
        let mut seen = BTreeSet::new();
        while let Some((id, quorum)) = current {
            governance.policy = Some((id, quorum));
            if !seen.insert(id) {
                break;
            }
            let hex = id.to_hex();
            current = policies
                .iter()
                .filter(|(_, p)| p.replaces.as_deref() == Some(hex.as_str()))
                .find(|(next, _)| {
                    governance.count(&Target::Policy(next.to_hex())) >= quorum as usize
                })
                .map(|(next, p)| (*next, p.quorum));
        }
        governance
    }

    fn endorsers(&self, target: &Target) -> Vec<EntryId> {
        let mut out: Vec<EntryId> = self
            .stances
            .get(target)
            .map(|m| {
                m.values()
                    .filter(|(_, stance, _)| *stance == Stance::Endorse)
                    .map(|(_, _, entry)| *entry)
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn count(&self, target: &Target) -> usize {
        self.endorsers(target).len()
    }

    /// The policy in force: `(entry, quorum)`.
    pub fn policy(&self) -> Option<(EntryId, u32)> {
        self.policy
    }

    /// Whether `target` is active, citing what it relies on.
    pub fn activation(&self, target: &Target) -> Activation {
        let endorsements = self.endorsers(target);
        match self.policy {
            Some((policy, quorum)) => Activation {
                active: endorsements.len() >= quorum as usize,
                policy: Some(policy),
                quorum,
                endorsements,
            },
            None => Activation {
                active: false,
                policy: None,
                quorum: 0,
                endorsements,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn author(n: u8) -> AuthorId {
        AuthorId([n; 32])
    }

    fn endorse(entry: u8, by: u8, seq: u64, target: &Target, stance: Stance) -> Fact {
        Fact {
            entry: EntryId([entry; 32]),
            author: author(by),
            seq,
            body: FactBody::Endorsement(EndorsementBody::new(target.clone(), stance)),
        }
    }

    fn policy(entry: u8, quorum: u32, replaces: Option<u8>) -> Fact {
        Fact {
            entry: EntryId([entry; 32]),
            author: author(1),
            seq: 100 + entry as u64,
            body: FactBody::Policy(PolicyBody::new(
                quorum,
                5,
                replaces.map(|r| EntryId([r; 32])),
            )),
        }
    }

    #[test]
    fn policy_replacement_needs_the_old_quorum() {
        let p2 = Target::Policy(EntryId([20; 32]).to_hex());
        let mut facts = vec![policy(10, 2, None), policy(20, 1, Some(10))];
        assert_eq!(
            Governance::at(&facts).policy(),
            Some((EntryId([10; 32]), 2))
        );
        facts.push(endorse(30, 2, 1, &p2, Stance::Endorse));
        assert_eq!(Governance::at(&facts).policy().map(|p| p.1), Some(2));
        facts.push(endorse(31, 3, 1, &p2, Stance::Endorse));
        assert_eq!(
            Governance::at(&facts).policy(),
            Some((EntryId([20; 32]), 1))
        );
    }

    #[test]
    fn bodies_round_trip_and_refuse_bad_input() {
        let body = EndorsementBody::new(Target::ModelCard("ab".repeat(32)), Stance::Withdraw);
        assert_eq!(EndorsementBody::decode(&body.encode()), Ok(body));
        assert!(EndorsementBody::decode(br#"{"format":"careledger.endorsement","format_version":1,"target":{"kind":"rule_set","id":"zz"},"stance":"endorse"}"#).is_err());
        let policy = PolicyBody::new(2, 3, None);
        assert_eq!(PolicyBody::decode(&policy.encode()), Ok(policy));
        assert!(PolicyBody::decode(&PolicyBody::new(0, 3, None).encode()).is_err());
    }

    proptest! {
        /// Activation equals a direct count: members whose last action on
        /// the target is an endorsement, compared with the quorum.
        #[test]
        fn activation_follows_the_quorum_exactly(
            quorum in 1u32..5,
            actions in proptest::collection::vec((0u8..6, any::<bool>()), 0..30),
            with_policy in any::<bool>(),
        ) {
            let target = Target::RuleSet("cd".repeat(32));
            let mut facts = Vec::new();
            if with_policy {
                facts.push(policy(200, quorum, None));
            }
            let mut seqs = [0u64; 6];
            let mut last = [None::<bool>; 6];
            for (i, (member, endorse_it)) in actions.iter().enumerate() {
                seqs[*member as usize] += 1;
                last[*member as usize] = Some(*endorse_it);
                let stance = if *endorse_it { Stance::Endorse } else { Stance::Withdraw };
                facts.push(endorse(i as u8, *member + 10, seqs[*member as usize], &target, stance));
            }
            // Facts arrive in any order: reverse them.
            facts.reverse();
            let standing = last.iter().filter(|l| **l == Some(true)).count();
            let activation = Governance::at(&facts).activation(&target);
            prop_assert_eq!(activation.endorsements.len(), standing);
            prop_assert_eq!(activation.active, with_policy && standing >= quorum as usize);
        }
    }
}
