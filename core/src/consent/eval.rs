//! The evaluator: one pure function from consents and a request to a decision.

use crate::node::NetworkId;

use super::provision::{Effect, Grantee, Provision, Purpose};
use super::resource::Consent;

/// One intended use of one patient's data.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// Every identity the requester acts as: typically its node and the
    /// network it acts in. An actor matches if it names any of them.
    pub grantees: &'a [Grantee],
    /// Why the data is used.
    pub purpose: Purpose,
    /// The resource type used, e.g. `Observation`.
    pub resource_type: &'a str,
    /// When, in Unix milliseconds UTC.
    pub time_ms: u64,
    /// The care network where the record lives: the network default (rule 6)
    /// allows treatment to this network only.
    pub home_network: &'a NetworkId,
}

/// Why a [`Decision`] came out as it did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DecisionReason {
    /// An active consent permits the use and none denies it (rule 5).
    Permitted {
        /// The first consent (in input order) that permits.
        consent_id: String,
    },
    /// An active consent denies the use (rule 5).
    Denied {
        /// The first consent (in input order) that denies.
        consent_id: String,
    },
    /// An active consent covers the use outside the period of the provision
    /// that decides it, and no consent denies it outright (rule 4).
    Expired {
        /// The first consent (in input order) that is expired for the use.
        consent_id: String,
    },
    /// No active consent covers the use; the network default allows
    /// treatment inside the home care network (rule 6).
    DefaultTreatment,
    /// No active consent covers the use, and the network default denies it (rule 6).
    DefaultDeny,
}

impl DecisionReason {
    /// The consent the reason names, if any.
    pub fn consent_id(&self) -> Option<&str> {
        match self {
            DecisionReason::Permitted { consent_id }
            | DecisionReason::Denied { consent_id }
            | DecisionReason::Expired { consent_id } => Some(consent_id),
            DecisionReason::DefaultTreatment | DecisionReason::DefaultDeny => None,
        }
    }
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// True if the use may go ahead.
    pub allowed: bool,
    /// Why.
    pub reason: DecisionReason,
    /// Ids of every consent the decision rests on, in input order without
    /// repeats: all consents that permit (when permitted), deny (when
    /// denied) or are expired for the use (when expired); empty for a
    /// network default. This is what a model card or decision entry cites.
    pub relied_on: Vec<String>,
}

/// What one consent says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// The consent does not take part, or its root does not cover the request.
    NotApplicable,
    Permit,
    Deny,
    Expired,
}

/// Outcomes of the deciding provisions of one consent.
#[derive(Default)]
struct Outcomes {
    permit: bool,
    deny: bool,
    expired: bool,
}

/// Records the outcome of every deciding provision under `provision`, which
/// covers the request; `in_period` is true if it and all its ancestors are
/// in period.
fn decide(provision: &Provision, in_period: bool, request: &Request<'_>, outcomes: &mut Outcomes) {
    let mut nested_covers = false;
    for nested in &provision.provisions {
        if covers_locally(nested, request) {
            nested_covers = true;
            let nested_in_period = in_period && nested.period.contains(request.time_ms);
            decide(nested, nested_in_period, request, outcomes);
        }
    }
    if nested_covers {
        return;
    }
    if !in_period {
        outcomes.expired = true;
    } else {
        match provision.effect {
            Effect::Permit => outcomes.permit = true,
            Effect::Deny => outcomes.deny = true,
        }
    }
}

fn covers_locally(provision: &Provision, request: &Request<'_>) -> bool {
    provision.constraints_match(request.grantees, &request.purpose, request.resource_type)
}

fn answer(consent: &Consent, request: &Request<'_>) -> Answer {
    let root = consent.provision();
    if !consent.takes_part() || !covers_locally(root, request) {
        return Answer::NotApplicable;
    }
    let mut outcomes = Outcomes::default();
    decide(
        root,
        root.period.contains(request.time_ms),
        request,
        &mut outcomes,
    );
    if outcomes.deny {
        Answer::Deny
    } else if outcomes.expired {
        Answer::Expired
    } else if outcomes.permit {
        Answer::Permit
    } else {
        // A covering root always yields at least one deciding provision.
        Answer::NotApplicable
    }
}

/// Decides whether the consents allow the request. Pure: no clock, no IO.
///
/// `consents` are the patient's consents as found in the record, in any
/// status; only those that take part count (rule 1). See the module
/// documentation for the rules.
pub fn permits(consents: &[Consent], request: &Request<'_>) -> Decision {
    let mut denying = Vec::new();
    let mut expired = Vec::new();
    let mut permitting = Vec::new();
    for consent in consents {
        let list = match answer(consent, request) {
            Answer::NotApplicable => continue,
            Answer::Deny => &mut denying,
            Answer::Expired => &mut expired,
            Answer::Permit => &mut permitting,
        };
        let id = consent.id().to_owned();
        if !list.contains(&id) {
            list.push(id);
        }
    }
    let (allowed, relied_on, reason): (bool, Vec<String>, fn(String) -> DecisionReason) =
        if !denying.is_empty() {
            (false, denying, |consent_id| DecisionReason::Denied {
                consent_id,
            })
        } else if !expired.is_empty() {
            (false, expired, |consent_id| DecisionReason::Expired {
                consent_id,
            })
        } else if !permitting.is_empty() {
            (true, permitting, |consent_id| DecisionReason::Permitted {
                consent_id,
            })
        } else {
            let treatment_at_home = request.purpose.code() == Purpose::Treat.code()
                && request.grantees.iter().any(
                    |grantee| matches!(grantee, Grantee::Network(network) if network == request.home_network),
                );
            return Decision {
                allowed: treatment_at_home,
                reason: if treatment_at_home {
                    DecisionReason::DefaultTreatment
                } else {
                    DecisionReason::DefaultDeny
                },
                relied_on: Vec::new(),
            };
        };
    let first = relied_on.first().cloned().unwrap_or_default();
    Decision {
        allowed,
        reason: reason(first),
        relied_on,
    }
}
