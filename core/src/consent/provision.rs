//! The rule tree of a consent: provisions and what they constrain.

use std::fmt;

use crate::entry::AuthorId;
use crate::node::NetworkId;

/// Identifier system naming a careledger node by its author id (64 hex digits).
pub const NODE_SYSTEM: &str = "urn:careledger:node";
/// Identifier system naming a careledger network by its network id (hex).
pub const NETWORK_SYSTEM: &str = "urn:careledger:network";

/// Whom a provision grants to or withholds from, as careledger knows requesters.
///
/// In FHIR a grantee is an actor whose reference is a logical reference by
/// identifier: system [`NODE_SYSTEM`] or [`NETWORK_SYSTEM`], value the id in
/// lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grantee {
    /// One node: an institution's installation or a patient's phone.
    Node(AuthorId),
    /// Every node acting in one network (a care network, a study).
    Network(NetworkId),
}

impl Grantee {
    /// The identifier system that names this kind of grantee.
    pub fn system(&self) -> &'static str {
        match self {
            Grantee::Node(_) => NODE_SYSTEM,
            Grantee::Network(_) => NETWORK_SYSTEM,
        }
    }

    /// The identifier value: the id in lowercase hex.
    pub fn value(&self) -> String {
        match self {
            Grantee::Node(author) => author.to_hex(),
            Grantee::Network(network) => network.to_hex(),
        }
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::Node(author) => write!(f, "node {author}"),
            Grantee::Network(network) => write!(f, "network {network}"),
        }
    }
}

/// One `provision.actor` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A careledger node or network; matches a request that names it.
    Grantee(Grantee),
    /// Any other actor shape (`Organization/x`, an identifier of another
    /// system, …). Kept so the consent writes back as read, but it never
    /// matches a careledger requester.
    Other(OtherActor),
}

/// An actor careledger does not evaluate, kept as its FHIR JSON.
///
/// `Debug` does not show the JSON: it may name people.
#[derive(Clone, PartialEq, Eq)]
pub struct OtherActor(pub(crate) serde_json::Value);

impl OtherActor {
    /// The actor as FHIR JSON (`{"role": …, "reference": …}`).
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }
}

impl fmt::Debug for OtherActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtherActor(..)")
    }
}

/// Why data is used: a v3 ActReason code (`provision.purpose`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// `TREAT`: treatment.
    Treat,
    /// `HRESCH`: healthcare research.
    Research,
    /// `CLMATTCH`: claim attachment (insurers).
    Claims,
    /// Any other ActReason code; it matches only the same code.
    Other(String),
}

impl Purpose {
    /// The ActReason code.
    pub fn code(&self) -> &str {
        match self {
            Purpose::Treat => "TREAT",
            Purpose::Research => "HRESCH",
            Purpose::Claims => "CLMATTCH",
            Purpose::Other(code) => code,
        }
    }

    /// The purpose an ActReason code stands for (`Other` for codes without a variant).
    pub fn from_code(code: &str) -> Purpose {
        match code {
            "TREAT" => Purpose::Treat,
            "HRESCH" => Purpose::Research,
            "CLMATTCH" => Purpose::Claims,
            other => Purpose::Other(other.to_owned()),
        }
    }

    /// The ActReason display text, for the purposes with a variant.
    pub(crate) fn display(&self) -> Option<&'static str> {
        match self {
            Purpose::Treat => Some("treatment"),
            Purpose::Research => Some("healthcare research"),
            Purpose::Claims => Some("claim attachment"),
            Purpose::Other(_) => None,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What a provision says when it decides a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The covered use is allowed.
    Permit,
    /// The covered use is withheld.
    Deny,
}

impl Effect {
    /// The FHIR code (`permit` / `deny`).
    pub fn code(self) -> &'static str {
        match self {
            Effect::Permit => "permit",
            Effect::Deny => "deny",
        }
    }
}

/// When a provision is valid, as Unix milliseconds UTC, both ends inclusive.
///
/// An absent end is open. From FHIR, a `start` that is a date means the
/// first millisecond of that day (UTC), an `end` that is a date the last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Period {
    /// First instant of validity; `None` = since always.
    pub start_ms: Option<i64>,
    /// Last instant of validity; `None` = until revoked.
    pub end_ms: Option<i64>,
}

impl Period {
    /// No bounds: valid at every time.
    pub const ALWAYS: Period = Period {
        start_ms: None,
        end_ms: None,
    };

    /// Valid from `start_ms` through `end_ms`, both inclusive.
    pub fn between(start_ms: i64, end_ms: i64) -> Period {
        Period {
            start_ms: Some(start_ms),
            end_ms: Some(end_ms),
        }
    }

    /// True if `time_ms` lies within the period.
    pub fn contains(&self, time_ms: u64) -> bool {
        let time = i128::from(time_ms);
        self.start_ms.is_none_or(|start| i128::from(start) <= time)
            && self.end_ms.is_none_or(|end| time <= i128::from(end))
    }

    /// True if the period has neither bound.
    pub fn is_always(&self) -> bool {
        self.start_ms.is_none() && self.end_ms.is_none()
    }
}

/// One rule of a consent: its effect, the constraints that say which
/// requests it covers, its period, and nested exceptions.
///
/// An empty constraint list means "any". See the module documentation for
/// how provisions combine.
///
/// `Debug` shows the shape (effect and how many of each constraint), never
/// the constraints: they are the patient's choices.
#[derive(Clone, PartialEq, Eq)]
pub struct Provision {
    /// What the provision says about the requests it decides.
    pub effect: Effect,
    /// When the provision is valid.
    pub period: Period,
    /// Who it concerns (`provision.actor`); any one matching is enough.
    pub actors: Vec<Actor>,
    /// Why (`provision.purpose`); any one matching is enough.
    pub purposes: Vec<Purpose>,
    /// Resource types (`provision.class`); any one matching is enough.
    pub classes: Vec<String>,
    /// Nested provisions: exceptions within this one's coverage.
    pub provisions: Vec<Provision>,
}

impl fmt::Debug for Provision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provision")
            .field("effect", &self.effect)
            .field("bounded_period", &!self.period.is_always())
            .field("actors", &self.actors.len())
            .field("purposes", &self.purposes.len())
            .field("classes", &self.classes.len())
            .field("provisions", &self.provisions)
            .finish()
    }
}

impl Provision {
    fn with_effect(effect: Effect) -> Provision {
        Provision {
            effect,
            period: Period::ALWAYS,
            actors: Vec::new(),
            purposes: Vec::new(),
            classes: Vec::new(),
            provisions: Vec::new(),
        }
    }

    /// A permit covering every request, to narrow with the methods below.
    pub fn permit() -> Provision {
        Provision::with_effect(Effect::Permit)
    }

    /// A deny covering every request, to narrow with the methods below.
    pub fn deny() -> Provision {
        Provision::with_effect(Effect::Deny)
    }

    /// Adds a grantee actor.
    pub fn actor(mut self, grantee: Grantee) -> Provision {
        self.actors.push(Actor::Grantee(grantee));
        self
    }

    /// Adds a purpose.
    pub fn purpose(mut self, purpose: Purpose) -> Provision {
        self.purposes.push(purpose);
        self
    }

    /// Adds a resource type.
    pub fn class(mut self, resource_type: impl Into<String>) -> Provision {
        self.classes.push(resource_type.into());
        self
    }

    /// Sets the period.
    pub fn during(mut self, period: Period) -> Provision {
        self.period = period;
        self
    }

    /// Adds a nested provision (an exception within this one's coverage).
    pub fn except(mut self, nested: Provision) -> Provision {
        self.provisions.push(nested);
        self
    }

    /// True if the provision's own constraints match; the parent chain and
    /// the period are the evaluator's business (rules 2 and 4).
    pub(crate) fn constraints_match(
        &self,
        grantees: &[Grantee],
        purpose: &Purpose,
        resource_type: &str,
    ) -> bool {
        let actor_ok = self.actors.is_empty()
            || self.actors.iter().any(|actor| match actor {
                Actor::Grantee(grantee) => grantees.contains(grantee),
                Actor::Other(_) => false,
            });
        let purpose_ok =
            self.purposes.is_empty() || self.purposes.iter().any(|p| p.code() == purpose.code());
        let class_ok =
            self.classes.is_empty() || self.classes.iter().any(|class| class == resource_type);
        actor_ok && purpose_ok && class_ok
    }
}
