//! The consent evaluator, tested Cedar-style: a small reference evaluator
//! written here as literally as the rules read (every provision path
//! enumerated, coverage by plain loops), and random (consent set, request)
//! pairs on which it and [`careledger::consent::permits`] must agree. Every
//! random consent also travels through its FHIR JSON before the library sees
//! it (as a `serde_json::Value`, and every tenth case also as text). Named
//! tests below pin each rule of the `consent` module docs.
//!
//! `CARELEDGER_CONSENT_CASES` sets the number of random pairs (default 10,000).

use std::collections::BTreeMap;
use std::time::Instant;

use careledger::consent::{
    permits, Actor, Consent, ConsentDraft, ConsentScope, ConsentStatus, Decision, DecisionReason,
    Effect, Grantee, Period, Provision, Purpose, Request,
};
use careledger::entry::AuthorId;
use careledger::node::NetworkId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// The request time every random case asks at.
const T: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const DAY: i64 = 86_400_000;

fn node(i: usize) -> AuthorId {
    AuthorId([u8::try_from(i + 1).unwrap(); 32])
}

fn network(i: usize) -> NetworkId {
    NetworkId(vec![0xA0 + u8::try_from(i).unwrap(); 16])
}

/// An actor whose reference careledger does not model.
fn stranger() -> Actor {
    Actor::from_fhir(&json!({
        "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "CST" }] },
        "reference": { "reference": "Organization/other" }
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------
// The reference: test-side consents and the rules applied literally.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum RefActor {
    Node(usize),
    Network(usize),
    Stranger,
}

#[derive(Clone, Debug)]
struct RefProvision {
    deny: bool,
    start: Option<i64>,
    end: Option<i64>,
    actors: Vec<RefActor>,
    purposes: Vec<&'static str>,
    classes: Vec<&'static str>,
    children: Vec<RefProvision>,
}

#[derive(Clone, Debug)]
struct RefConsent {
    id: String,
    status: ConsentStatus,
    scope: ConsentScope,
    root: RefProvision,
}

#[derive(Clone, Debug)]
struct RefRequest {
    nodes: Vec<usize>,
    networks: Vec<usize>,
    purpose: &'static str,
    resource_type: &'static str,
    home: usize,
}

#[derive(Clone, Debug, PartialEq)]
struct RefDecision {
    allowed: bool,
    /// "permitted", "denied", "expired", "default-treatment" or "default-deny".
    kind: &'static str,
    relied_on: Vec<String>,
}

/// Every provision of a tree by its index path from the root (`[]` is the root).
fn all_paths(root: &RefProvision) -> Vec<Vec<usize>> {
    let mut paths = vec![vec![]];
    let mut i = 0;
    while i < paths.len() {
        let node = provisions_on(root, &paths[i]).pop().unwrap();
        for child in 0..node.children.len() {
            let mut path = paths[i].clone();
            path.push(child);
            paths.push(path);
        }
        i += 1;
    }
    paths
}

/// The provisions from the root down to the one at `path`.
fn provisions_on<'a>(root: &'a RefProvision, path: &[usize]) -> Vec<&'a RefProvision> {
    let mut chain = vec![root];
    for &step in path {
        let last = chain[chain.len() - 1];
        chain.push(&last.children[step]);
    }
    chain
}

fn own_constraints_match(p: &RefProvision, r: &RefRequest) -> bool {
    let mut actor_ok = p.actors.is_empty();
    for actor in &p.actors {
        match actor {
            RefActor::Node(i) if r.nodes.contains(i) => actor_ok = true,
            RefActor::Network(i) if r.networks.contains(i) => actor_ok = true,
            _ => {}
        }
    }
    let purpose_ok = p.purposes.is_empty() || p.purposes.contains(&r.purpose);
    let class_ok = p.classes.is_empty() || p.classes.contains(&r.resource_type);
    actor_ok && purpose_ok && class_ok
}

/// Rule 2: this provision and every ancestor match.
fn covers(root: &RefProvision, path: &[usize], r: &RefRequest) -> bool {
    provisions_on(root, path)
        .iter()
        .all(|p| own_constraints_match(p, r))
}

/// Rule 4: this provision's period and every ancestor's contain T.
fn in_period(root: &RefProvision, path: &[usize]) -> bool {
    provisions_on(root, path)
        .iter()
        .all(|p| p.start.is_none_or(|s| s <= T) && p.end.is_none_or(|e| T <= e))
}

/// What one consent says: None (does not apply), "deny", "expired" or "permit".
fn reference_consent(c: &RefConsent, r: &RefRequest, stats: &mut Stats) -> Option<&'static str> {
    // Rule 1.
    if c.status != ConsentStatus::Active {
        return None;
    }
    if c.scope != ConsentScope::PatientPrivacy && c.scope != ConsentScope::Research {
        return None;
    }
    // Rule 3: deciding = covering paths with no covering path one level deeper below them.
    let paths = all_paths(&c.root);
    let mut deciding = Vec::new();
    for p in &paths {
        if !covers(&c.root, p, r) {
            continue;
        }
        let mut child_covers = false;
        for q in &paths {
            if q.len() == p.len() + 1 && q.starts_with(p) && covers(&c.root, q, r) {
                child_covers = true;
            }
        }
        if !child_covers {
            deciding.push(p.clone());
        }
    }
    if deciding.is_empty() {
        return None;
    }
    if deciding.iter().any(|p| !p.is_empty()) {
        stats.bump("decided by a nested provision");
    }
    // Rules 4 and 5 within the consent.
    let mut says_deny = false;
    let mut says_expired = false;
    for p in &deciding {
        let effect_deny = provisions_on(&c.root, p).pop().unwrap().deny;
        if !in_period(&c.root, p) {
            says_expired = true;
        } else if effect_deny {
            says_deny = true;
        }
    }
    if says_deny {
        Some("deny")
    } else if says_expired {
        Some("expired")
    } else {
        Some("permit")
    }
}

fn reference(consents: &[RefConsent], r: &RefRequest, stats: &mut Stats) -> RefDecision {
    let mut deny = Vec::new();
    let mut expired = Vec::new();
    let mut permit = Vec::new();
    for c in consents {
        let list = match reference_consent(c, r, stats) {
            None => continue,
            Some("deny") => &mut deny,
            Some("expired") => &mut expired,
            Some(_) => &mut permit,
        };
        if !list.contains(&c.id) {
            list.push(c.id.clone());
        }
    }
    let some_deny = !deny.is_empty() || !expired.is_empty();
    if some_deny && !permit.is_empty() {
        stats.bump("a deny or expiry overrode a permit");
    }
    // Rule 5 across consents, then rule 6.
    if !deny.is_empty() {
        RefDecision {
            allowed: false,
            kind: "denied",
            relied_on: deny,
        }
    } else if !expired.is_empty() {
        RefDecision {
            allowed: false,
            kind: "expired",
            relied_on: expired,
        }
    } else if !permit.is_empty() {
        RefDecision {
            allowed: true,
            kind: "permitted",
            relied_on: permit,
        }
    } else if r.purpose == "TREAT" && r.networks.contains(&r.home) {
        RefDecision {
            allowed: true,
            kind: "default-treatment",
            relied_on: vec![],
        }
    } else {
        RefDecision {
            allowed: false,
            kind: "default-deny",
            relied_on: vec![],
        }
    }
}

// ---------------------------------------------------------------------------
// From test-side values to the library's.
// ---------------------------------------------------------------------------

fn to_provision(p: &RefProvision) -> Provision {
    Provision {
        effect: if p.deny { Effect::Deny } else { Effect::Permit },
        period: Period {
            start_ms: p.start,
            end_ms: p.end,
        },
        actors: p
            .actors
            .iter()
            .map(|a| match a {
                RefActor::Node(i) => Actor::Grantee(Grantee::Node(node(*i))),
                RefActor::Network(i) => Actor::Grantee(Grantee::Network(network(*i))),
                RefActor::Stranger => stranger(),
            })
            .collect(),
        purposes: p.purposes.iter().map(|c| Purpose::from_code(c)).collect(),
        classes: p.classes.iter().map(|c| (*c).to_owned()).collect(),
        provisions: p.children.iter().map(to_provision).collect(),
    }
}

/// Builds the library consent, which writes it as FHIR and reads it back;
/// with `as_text`, it also travels once more as JSON text.
fn to_consent(c: &RefConsent, as_text: bool) -> Consent {
    let draft = ConsentDraft {
        status: c.status,
        scope: c.scope,
        ..ConsentDraft::new(c.id.clone(), "patient-1", to_provision(&c.root))
    };
    let built = draft.build().unwrap();
    if !as_text {
        return built;
    }
    let read = Consent::from_json(built.to_json().as_bytes()).unwrap();
    assert_eq!(read, built);
    read
}

fn kind(reason: &DecisionReason) -> &'static str {
    match reason {
        DecisionReason::Permitted { .. } => "permitted",
        DecisionReason::Denied { .. } => "denied",
        DecisionReason::Expired { .. } => "expired",
        DecisionReason::DefaultTreatment => "default-treatment",
        DecisionReason::DefaultDeny => "default-deny",
    }
}

fn library(consents: &[Consent], r: &RefRequest) -> Decision {
    let mut grantees: Vec<Grantee> = r.nodes.iter().map(|&i| Grantee::Node(node(i))).collect();
    grantees.extend(r.networks.iter().map(|&i| Grantee::Network(network(i))));
    let home = network(r.home);
    permits(
        consents,
        &Request {
            grantees: &grantees,
            purpose: Purpose::from_code(r.purpose),
            resource_type: r.resource_type,
            time_ms: u64::try_from(T).unwrap(),
            home_network: &home,
        },
    )
}

// ---------------------------------------------------------------------------
// The generator.
// ---------------------------------------------------------------------------

const PURPOSES: [&str; 4] = ["TREAT", "HRESCH", "CLMATTCH", "HOPERAT"];
const CLASSES: [&str; 5] = [
    "Observation",
    "Condition",
    "Patient",
    "MedicationRequest",
    "Encounter",
];

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// 0–2 distinct items, none with probability `none`.
fn some_of<T: Copy + PartialEq>(rng: &mut ChaCha8Rng, items: &[T], none: f64) -> Vec<T> {
    let mut out = Vec::new();
    if rng.random_bool(none) {
        return out;
    }
    for _ in 0..rng.random_range(1..=2) {
        let item = pick(rng, items);
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn gen_actors(rng: &mut ChaCha8Rng, none: f64) -> Vec<RefActor> {
    let universe = [
        RefActor::Node(0),
        RefActor::Node(1),
        RefActor::Node(2),
        RefActor::Network(0),
        RefActor::Network(1),
    ];
    let mut actors = some_of(rng, &universe, none);
    if rng.random_bool(0.05) {
        actors.push(RefActor::Stranger);
    }
    actors
}

fn gen_period(rng: &mut ChaCha8Rng) -> (Option<i64>, Option<i64>) {
    if rng.random_bool(0.55) {
        return (None, None);
    }
    let starts = [
        None,
        Some(T - 2 * DAY),
        Some(T - DAY),
        Some(T),
        Some(T + 1),
        Some(T + DAY),
    ];
    let ends = [
        None,
        Some(T - DAY),
        Some(T - 1),
        Some(T),
        Some(T + DAY),
        Some(T + 2 * DAY),
    ];
    let (start, end) = (pick(rng, &starts), pick(rng, &ends));
    match (start, end) {
        (Some(s), Some(e)) if s > e => (Some(e), Some(s)),
        other => other,
    }
}

fn gen_provision(rng: &mut ChaCha8Rng, depth: usize) -> RefProvision {
    let (start, end) = gen_period(rng);
    let mut children = Vec::new();
    if depth < 3 {
        let count = pick(rng, &[0, 0, 1, 1, 2]);
        for _ in 0..count {
            children.push(gen_provision(rng, depth + 1));
        }
    }
    // Roots are left unconstrained more often, so consents overlap and
    // the cross-consent rules get exercised.
    let none = if depth == 0 { 0.55 } else { 0.4 };
    RefProvision {
        deny: rng.random_bool(if depth == 0 { 0.3 } else { 0.5 }),
        start,
        end,
        actors: gen_actors(rng, none),
        purposes: some_of(rng, &PURPOSES, none),
        classes: some_of(rng, &CLASSES, none),
        children,
    }
}

fn gen_consents(rng: &mut ChaCha8Rng) -> Vec<RefConsent> {
    let count = pick(rng, &[0, 1, 2, 2, 3, 3]);
    (0..count)
        .map(|i| RefConsent {
            // Occasionally two entries share an id (an old and a new version).
            id: format!("consent-{}", if rng.random_bool(0.05) { 0 } else { i }),
            status: if rng.random_bool(0.75) {
                ConsentStatus::Active
            } else {
                pick(rng, &ConsentStatus::ALL)
            },
            scope: if rng.random_bool(0.9) {
                pick(rng, &[ConsentScope::PatientPrivacy, ConsentScope::Research])
            } else {
                pick(rng, &ConsentScope::ALL)
            },
            root: gen_provision(rng, 0),
        })
        .collect()
}

fn gen_request(rng: &mut ChaCha8Rng) -> RefRequest {
    let mut nodes = Vec::new();
    let mut networks = Vec::new();
    if rng.random_bool(0.7) {
        nodes.push(rng.random_range(0..3));
    }
    if rng.random_bool(0.8) || nodes.is_empty() {
        networks.push(rng.random_range(0..2));
        if rng.random_bool(0.1) {
            networks.push(1 - networks[0]);
        }
    }
    RefRequest {
        nodes,
        networks,
        purpose: pick(rng, &["TREAT", "TREAT", "HRESCH", "CLMATTCH", "HOPERAT"]),
        resource_type: pick(
            rng,
            &[
                "Observation",
                "Condition",
                "Patient",
                "MedicationRequest",
                "Encounter",
                "Immunization",
            ],
        ),
        home: rng.random_range(0..2),
    }
}

#[derive(Default)]
struct Stats(BTreeMap<&'static str, usize>);

impl Stats {
    fn bump(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
}

fn case_count() -> usize {
    std::env::var("CARELEDGER_CONSENT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[test]
fn library_agrees_with_the_reference_on_random_cases() {
    let cases = case_count();
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0xC0_45E7);
    let mut stats = Stats::default();
    for case in 0..cases {
        let ref_consents = gen_consents(&mut rng);
        let request = gen_request(&mut rng);
        // Text costs most of the time in a debug build; every tenth case is enough.
        let as_text = case % 10 == 0;
        let consents: Vec<Consent> = ref_consents
            .iter()
            .map(|c| to_consent(c, as_text))
            .collect();
        let expected = reference(&ref_consents, &request, &mut stats);
        let got = library(&consents, &request);
        let context = || {
            let json: Vec<String> = consents.iter().map(Consent::to_json).collect();
            format!("case {case}: request {request:?}\nconsents {json:#?}")
        };
        assert_eq!(got.allowed, expected.allowed, "{}", context());
        assert_eq!(kind(&got.reason), expected.kind, "{}", context());
        assert_eq!(got.relied_on, expected.relied_on, "{}", context());
        assert_eq!(
            got.reason.consent_id(),
            expected.relied_on.first().map(String::as_str),
            "{}",
            context()
        );
        // Input order never changes the outcome.
        let mut reversed = consents.clone();
        reversed.reverse();
        let flipped = library(&reversed, &request);
        assert_eq!(
            (flipped.allowed, kind(&flipped.reason)),
            (got.allowed, kind(&got.reason))
        );
        stats.bump(expected.kind);
        stats.bump(if expected.allowed {
            "allowed"
        } else {
            "not allowed"
        });
    }
    println!(
        "{cases} random consent cases agree in {:.2?}: {:?}",
        started.elapsed(),
        stats.0
    );
    if cases >= 1_000 {
        // The generator reaches every rule often, so agreement means something.
        let floor = cases / 200;
        for what in [
            "permitted",
            "denied",
            "expired",
            "default-treatment",
            "default-deny",
            "decided by a nested provision",
            "a deny or expiry overrode a permit",
        ] {
            let hits = stats.0.get(what).copied().unwrap_or(0);
            assert!(hits >= floor, "`{what}` hit {hits} times, want >= {floor}");
        }
    }
}

// ---------------------------------------------------------------------------
// Named cases, one or more per rule.
// ---------------------------------------------------------------------------

const NOW: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn study() -> NetworkId {
    NetworkId(vec![0x57; 16])
}

fn care() -> NetworkId {
    NetworkId(vec![0xCA; 16])
}

fn other_care() -> NetworkId {
    NetworkId(vec![0xCB; 16])
}

fn hospital() -> AuthorId {
    AuthorId([0x40; 32])
}

fn ask_at(
    consents: &[Consent],
    grantees: &[Grantee],
    purpose: Purpose,
    resource_type: &str,
    time_ms: u64,
) -> Decision {
    let home = care();
    permits(
        consents,
        &Request {
            grantees,
            purpose,
            resource_type,
            time_ms,
            home_network: &home,
        },
    )
}

fn ask(consents: &[Consent], grantee: Grantee, purpose: Purpose, resource_type: &str) -> Decision {
    ask_at(consents, &[grantee], purpose, resource_type, NOW)
}

fn build(id: &str, provision: Provision) -> Consent {
    ConsentDraft::new(id, "p1", provision).build().unwrap()
}

fn research_grant(id: &str) -> Consent {
    Consent::grant(
        id,
        "p1",
        Grantee::Network(study()),
        vec![Purpose::Research],
        vec![],
        None,
    )
    .unwrap()
}

fn permitted(id: &str) -> DecisionReason {
    DecisionReason::Permitted {
        consent_id: id.to_owned(),
    }
}

fn denied(id: &str) -> DecisionReason {
    DecisionReason::Denied {
        consent_id: id.to_owned(),
    }
}

fn expired(id: &str) -> DecisionReason {
    DecisionReason::Expired {
        consent_id: id.to_owned(),
    }
}

// Rule 1 -------------------------------------------------------------------

#[test]
fn rule1_revoked_consent_no_longer_applies() {
    let grant = research_grant("c1");
    let on = ask(
        std::slice::from_ref(&grant),
        Grantee::Network(study()),
        Purpose::Research,
        "Observation",
    );
    assert!(on.allowed);
    assert_eq!(on.reason, permitted("c1"));
    let off = ask(
        &[grant.revoked()],
        Grantee::Network(study()),
        Purpose::Research,
        "Observation",
    );
    assert!(!off.allowed);
    assert_eq!(off.reason, DecisionReason::DefaultDeny);
    assert!(off.relied_on.is_empty());
}

#[test]
fn rule1_only_active_consents_apply() {
    let opt_out = build("out", Provision::deny());
    for status in ConsentStatus::ALL {
        let consent = opt_out.with_status(status);
        let decision = ask(
            &[consent],
            Grantee::Network(care()),
            Purpose::Treat,
            "Condition",
        );
        if status == ConsentStatus::Active {
            assert_eq!(decision.reason, denied("out"));
        } else {
            assert_eq!(
                decision.reason,
                DecisionReason::DefaultTreatment,
                "{status:?}"
            );
        }
    }
}

#[test]
fn rule1_treatment_consents_and_directives_say_nothing_about_access() {
    for scope in ConsentScope::ALL {
        let mut draft = ConsentDraft::new("out", "p1", Provision::deny());
        draft.scope = scope;
        let decision = ask(
            &[draft.build().unwrap()],
            Grantee::Network(care()),
            Purpose::Treat,
            "Condition",
        );
        assert_eq!(decision.allowed, !scope.governs_access(), "{scope:?}");
    }
}

// Rule 2 -------------------------------------------------------------------

#[test]
fn rule2_nested_permit_never_widens_its_parent() {
    // Root grants HRESCH to the study; a nested permit for claims sits under it.
    let consent = research_grant("c1")
        .with_exception(Provision::permit().purpose(Purpose::Claims))
        .unwrap();
    let claims = ask(
        std::slice::from_ref(&consent),
        Grantee::Network(study()),
        Purpose::Claims,
        "Observation",
    );
    assert!(!claims.allowed);
    assert_eq!(claims.reason, DecisionReason::DefaultDeny);
    // Nor does a nested permit for another grantee reach that grantee.
    let consent = research_grant("c2")
        .with_exception(Provision::permit().actor(Grantee::Node(hospital())))
        .unwrap();
    let hospital_research = ask(
        &[consent],
        Grantee::Node(hospital()),
        Purpose::Research,
        "Observation",
    );
    assert_eq!(hospital_research.reason, DecisionReason::DefaultDeny);
}

#[test]
fn rule2_constraints_narrow_by_purpose_class_and_actor() {
    let consent = Consent::grant(
        "c1",
        "p1",
        Grantee::Network(study()),
        vec![Purpose::Research, Purpose::Claims],
        vec!["Observation".into(), "Condition".into()],
        None,
    )
    .unwrap();
    let consents = [consent];
    let study_net = || Grantee::Network(study());
    assert!(ask(&consents, study_net(), Purpose::Research, "Observation").allowed);
    assert!(ask(&consents, study_net(), Purpose::Claims, "Condition").allowed);
    // Wrong purpose, wrong class, wrong grantee: not covered, so the default.
    for (grantee, purpose, class) in [
        (study_net(), Purpose::Treat, "Observation"),
        (study_net(), Purpose::Other("HOPERAT".into()), "Observation"),
        (study_net(), Purpose::Research, "Patient"),
        (
            Grantee::Network(other_care()),
            Purpose::Research,
            "Observation",
        ),
        (Grantee::Node(hospital()), Purpose::Research, "Observation"),
    ] {
        assert_eq!(
            ask(&consents, grantee, purpose, class).reason,
            DecisionReason::DefaultDeny
        );
    }
}

#[test]
fn rule2_any_requester_identity_matches_any_actor() {
    let consent = build(
        "c1",
        Provision::permit()
            .actor(Grantee::Node(hospital()))
            .actor(Grantee::Network(study()))
            .purpose(Purpose::Research),
    );
    let consents = [consent];
    // The hospital node acting inside another network still matches by node.
    let decision = ask_at(
        &consents,
        &[Grantee::Network(other_care()), Grantee::Node(hospital())],
        Purpose::Research,
        "Observation",
        NOW,
    );
    assert_eq!(decision.reason, permitted("c1"));
    // Any node acting in the study network matches by network.
    let decision = ask_at(
        &consents,
        &[Grantee::Node(AuthorId([9; 32])), Grantee::Network(study())],
        Purpose::Research,
        "Observation",
        NOW,
    );
    assert_eq!(decision.reason, permitted("c1"));
}

#[test]
fn rule2_unknown_actor_shapes_never_match() {
    let json = json!({
        "resourceType": "Consent", "id": "c1", "status": "active",
        "patient": { "reference": "Patient/p1" },
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" }] },
        "provision": {
            "actor": [
                { "reference": { "reference": "Organization/f001" } },
                { "reference": { "identifier": { "system": "urn:oid:1.2.3", "value": hex::encode(study().0) } } },
                { "reference": { "display": "anyone" } }
            ]
        }
    });
    let consent = Consent::from_fhir(&json).unwrap();
    assert!(consent
        .provision()
        .actors
        .iter()
        .all(|a| matches!(a, Actor::Other(_))));
    let consents = [consent];
    for grantee in [
        Grantee::Network(study()),
        Grantee::Network(care()),
        Grantee::Node(hospital()),
    ] {
        let decision = ask(&consents, grantee.clone(), Purpose::Research, "Observation");
        assert_eq!(decision.reason, DecisionReason::DefaultDeny, "{grantee}");
    }
    // The network default still applies to treatment at home.
    assert_eq!(
        ask(
            &consents,
            Grantee::Network(care()),
            Purpose::Treat,
            "Observation"
        )
        .reason,
        DecisionReason::DefaultTreatment
    );
    // Next to a careledger grantee, the other actor changes nothing.
    let mut provision = Provision::permit().actor(Grantee::Network(study()));
    provision.actors.push(stranger());
    let consents = [build("c2", provision)];
    assert!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Research,
            "Observation"
        )
        .allowed
    );
}

// Rule 3 -------------------------------------------------------------------

#[test]
fn rule3_nested_deny_carves_out_of_a_permit() {
    let consent = research_grant("c1")
        .with_exception(Provision::deny().class("Condition"))
        .unwrap();
    let consents = [consent];
    let observation = ask(
        &consents,
        Grantee::Network(study()),
        Purpose::Research,
        "Observation",
    );
    assert_eq!(observation.reason, permitted("c1"));
    let condition = ask(
        &consents,
        Grantee::Network(study()),
        Purpose::Research,
        "Condition",
    );
    assert_eq!(condition.reason, denied("c1"));
    assert_eq!(condition.relied_on, ["c1"]);
}

#[test]
fn rule3_nested_permit_carves_out_of_an_opt_out() {
    // Opt out of everything for the study, except research on Observations.
    let consent = build(
        "c1",
        Provision::deny().actor(Grantee::Network(study())).except(
            Provision::permit()
                .purpose(Purpose::Research)
                .class("Observation"),
        ),
    );
    let consents = [consent];
    let study_net = || Grantee::Network(study());
    assert_eq!(
        ask(&consents, study_net(), Purpose::Research, "Observation").reason,
        permitted("c1")
    );
    assert_eq!(
        ask(&consents, study_net(), Purpose::Research, "Condition").reason,
        denied("c1")
    );
    // Even treatment is denied to the study: the opt-out covers it.
    assert_eq!(
        ask(&consents, study_net(), Purpose::Treat, "Observation").reason,
        denied("c1")
    );
}

#[test]
fn rule3_an_exception_to_an_exception_decides() {
    let consent = research_grant("c1")
        .with_exception(
            Provision::deny()
                .class("Condition")
                .except(Provision::permit().actor(Grantee::Node(hospital()))),
        )
        .unwrap();
    let consents = [consent];
    // The hospital acting in the study is the deepest exception: permitted.
    let decision = ask_at(
        &consents,
        &[Grantee::Network(study()), Grantee::Node(hospital())],
        Purpose::Research,
        "Condition",
        NOW,
    );
    assert_eq!(decision.reason, permitted("c1"));
    // Anyone else in the study: the deny decides.
    let decision = ask(
        &consents,
        Grantee::Network(study()),
        Purpose::Research,
        "Condition",
    );
    assert_eq!(decision.reason, denied("c1"));
}

#[test]
fn rule3_root_without_type_or_policy_is_a_deny_base() {
    let json = json!({
        "resourceType": "Consent", "id": "c1", "status": "active",
        "patient": { "reference": "Patient/p1" },
        "provision": {
            "actor": [{ "reference": { "identifier": { "system": "urn:careledger:network", "value": hex::encode(study().0) } } }],
            "provision": [{ "type": "permit", "purpose": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH" }] }]
        }
    });
    let consent = Consent::from_fhir(&json).unwrap();
    assert_eq!(consent.provision().effect, Effect::Deny);
    let consents = [consent];
    assert!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Research,
            "Condition"
        )
        .allowed
    );
    assert_eq!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Claims,
            "Condition"
        )
        .reason,
        denied("c1")
    );
}

// Rule 4 -------------------------------------------------------------------

fn dated_grant(id: &str, start: u64, end: u64) -> Consent {
    Consent::grant(
        id,
        "p1",
        Grantee::Network(care()),
        vec![Purpose::Treat, Purpose::Research],
        vec![],
        Some((start, end)),
    )
    .unwrap()
}

#[test]
fn rule4_before_start_means_deny() {
    let day = 86_400_000;
    let consents = [dated_grant("c1", NOW + day, NOW + 2 * day)];
    let decision = ask(
        &consents,
        Grantee::Network(care()),
        Purpose::Research,
        "Observation",
    );
    assert!(!decision.allowed);
    assert_eq!(decision.reason, expired("c1"));
    assert_eq!(decision.relied_on, ["c1"]);
}

#[test]
fn rule4_after_end_means_deny_even_for_treatment_at_home() {
    let day = 86_400_000;
    let consents = [dated_grant("c1", NOW - 2 * day, NOW - day)];
    // Without the consent the network default would allow this; expiry does not fall back to it.
    let decision = ask(
        &consents,
        Grantee::Network(care()),
        Purpose::Treat,
        "Observation",
    );
    assert!(!decision.allowed);
    assert_eq!(decision.reason, expired("c1"));
}

#[test]
fn rule4_periods_include_both_ends() {
    let consents = [dated_grant("c1", NOW, NOW)];
    let at = |time| {
        ask_at(
            &consents,
            &[Grantee::Network(care())],
            Purpose::Research,
            "Observation",
            time,
        )
        .reason
    };
    assert_eq!(at(NOW), permitted("c1"));
    assert_eq!(at(NOW - 1), expired("c1"));
    assert_eq!(at(NOW + 1), expired("c1"));
}

#[test]
fn rule4_an_expired_exception_denies_and_an_expired_parent_expires_its_exceptions() {
    let day = 86_400_000i64;
    let now = i64::try_from(NOW).unwrap();
    // A permit for Observations whose own window closed yesterday.
    let consent = research_grant("c1")
        .with_exception(
            Provision::permit()
                .class("Observation")
                .during(Period::between(now - 2 * day, now - day)),
        )
        .unwrap();
    let consents = [consent];
    let study_net = || Grantee::Network(study());
    assert_eq!(
        ask(&consents, study_net(), Purpose::Research, "Observation").reason,
        expired("c1")
    );
    assert_eq!(
        ask(&consents, study_net(), Purpose::Research, "Condition").reason,
        permitted("c1")
    );
    // The parent's expired window reaches every exception under it.
    let consent = build(
        "c2",
        Provision::permit()
            .actor(Grantee::Network(study()))
            .during(Period::between(now - 2 * day, now - day))
            .except(Provision::deny().class("Condition")),
    );
    let consents = [consent];
    for class in ["Observation", "Condition"] {
        assert_eq!(
            ask(&consents, study_net(), Purpose::Research, class).reason,
            expired("c2")
        );
    }
}

// Rule 5 -------------------------------------------------------------------

#[test]
fn rule5_deny_overrides_permit_across_consents_in_any_order() {
    let grant = research_grant("grant");
    let opt_out = build(
        "opt-out",
        Provision::deny()
            .purpose(Purpose::Research)
            .class("Condition"),
    );
    for consents in [
        [grant.clone(), opt_out.clone()],
        [opt_out.clone(), grant.clone()],
    ] {
        let condition = ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Research,
            "Condition",
        );
        assert!(!condition.allowed);
        assert_eq!(condition.reason, denied("opt-out"));
        assert_eq!(condition.relied_on, ["opt-out"]);
        let observation = ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Research,
            "Observation",
        );
        assert_eq!(observation.reason, permitted("grant"));
    }
}

#[test]
fn rule5_deny_overrides_permit_between_sibling_exceptions() {
    let consent = build(
        "c1",
        Provision::deny()
            .actor(Grantee::Network(study()))
            .except(Provision::permit().purpose(Purpose::Research))
            .except(Provision::deny().class("Condition")),
    );
    let consents = [consent];
    assert_eq!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Research,
            "Observation"
        )
        .reason,
        permitted("c1")
    );
    assert_eq!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Research,
            "Condition"
        )
        .reason,
        denied("c1")
    );
}

#[test]
fn rule5_an_expired_consent_denies_until_revoked() {
    let day = 86_400_000;
    let old = Consent::grant(
        "old",
        "p1",
        Grantee::Network(study()),
        vec![Purpose::Research],
        vec![],
        Some((NOW - 2 * day, NOW - day)),
    )
    .unwrap();
    let renewed = Consent::grant(
        "new",
        "p1",
        Grantee::Network(study()),
        vec![Purpose::Research],
        vec![],
        Some((NOW - day + 1, NOW + day)),
    )
    .unwrap();
    let both = [old.clone(), renewed.clone()];
    assert_eq!(
        ask(
            &both,
            Grantee::Network(study()),
            Purpose::Research,
            "Observation"
        )
        .reason,
        expired("old")
    );
    let revoked = [old.revoked(), renewed];
    assert_eq!(
        ask(
            &revoked,
            Grantee::Network(study()),
            Purpose::Research,
            "Observation"
        )
        .reason,
        permitted("new")
    );
}

#[test]
fn rule5_relied_on_lists_every_permitting_consent_once() {
    let a = research_grant("a");
    let b = Consent::grant(
        "b",
        "p1",
        Grantee::Network(study()),
        vec![],
        vec!["Observation".into()],
        None,
    )
    .unwrap();
    let unrelated =
        Consent::grant("c", "p1", Grantee::Node(hospital()), vec![], vec![], None).unwrap();
    let consents = [a.clone(), unrelated, b, a];
    let decision = ask(
        &consents,
        Grantee::Network(study()),
        Purpose::Research,
        "Observation",
    );
    assert_eq!(decision.reason, permitted("a"));
    assert_eq!(decision.relied_on, ["a", "b"]);
}

// Rule 6 -------------------------------------------------------------------

#[test]
fn rule6_no_consent_means_treatment_inside_the_care_network_only() {
    let none: [Consent; 0] = [];
    let home = ask(&none, Grantee::Network(care()), Purpose::Treat, "Condition");
    assert!(home.allowed);
    assert_eq!(home.reason, DecisionReason::DefaultTreatment);
    assert!(home.relied_on.is_empty());
    let elsewhere = ask(
        &none,
        Grantee::Network(other_care()),
        Purpose::Treat,
        "Condition",
    );
    assert!(!elsewhere.allowed);
    assert_eq!(elsewhere.reason, DecisionReason::DefaultDeny);
    for purpose in [
        Purpose::Research,
        Purpose::Claims,
        Purpose::Other("HOPERAT".into()),
    ] {
        let decision = ask(&none, Grantee::Network(care()), purpose, "Condition");
        assert_eq!(decision.reason, DecisionReason::DefaultDeny);
    }
    // A node alone is not the care network.
    let node_only = ask(
        &none,
        Grantee::Node(hospital()),
        Purpose::Treat,
        "Condition",
    );
    assert_eq!(node_only.reason, DecisionReason::DefaultDeny);
    // A node acting in the care network is.
    let in_network = ask_at(
        &none,
        &[Grantee::Node(hospital()), Grantee::Network(care())],
        Purpose::Treat,
        "Condition",
        NOW,
    );
    assert_eq!(in_network.reason, DecisionReason::DefaultTreatment);
}

#[test]
fn rule6_consents_for_others_leave_the_default_alone() {
    let consents = [research_grant("c1")];
    assert_eq!(
        ask(
            &consents,
            Grantee::Network(care()),
            Purpose::Treat,
            "Condition"
        )
        .reason,
        DecisionReason::DefaultTreatment
    );
}

#[test]
fn purposes_match_by_code() {
    let consents = [build(
        "c1",
        Provision::permit().purpose(Purpose::Other("PUBHLTH".into())),
    )];
    assert!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Other("PUBHLTH".into()),
            "Patient"
        )
        .allowed
    );
    assert_eq!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Other("HOPERAT".into()),
            "Patient"
        )
        .reason,
        DecisionReason::DefaultDeny
    );
    // A hand-made `Other("HRESCH")` is the same purpose as `Research`.
    let consents = [research_grant("c2")];
    assert!(
        ask(
            &consents,
            Grantee::Network(study()),
            Purpose::Other("HRESCH".into()),
            "Patient"
        )
        .allowed
    );
}
