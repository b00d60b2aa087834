//! Consent parsing and evaluation. Input: framed chunks (see [`chunks`]);
//! the first chunk is the request (purpose, resource type, time, grantees),
//! every other chunk a FHIR Consent resource in JSON.
//!
//! Properties of `consent::permits` beyond not panicking: the decision does
//! not depend on the order of the consents; a consent and its JSON round trip
//! decide alike; revoked copies change nothing; an active deny for one of the
//! request's grantees with no other constraint always denies.

use careledger::consent::{
    permits, Consent, ConsentDraft, Decision, Grantee, Period, Provision, Purpose, Request,
};
use careledger::entry::AuthorId;
use careledger::node::NetworkId;

use crate::{chunks, fixture};

const RESOURCE_TYPES: [&str; 5] = ["Patient", "Observation", "Condition", "Encounter", "X"];
const PURPOSES: [&str; 4] = ["TREAT", "HRESCH", "CLMATTCH", "ETREAT"];

fn home() -> NetworkId {
    NetworkId(vec![0xab; 16])
}

fn grantees_of(bits: u8) -> Vec<Grantee> {
    let mut out = Vec::new();
    if bits & 1 != 0 {
        out.push(Grantee::Network(home()));
    }
    if bits & 2 != 0 {
        out.push(Grantee::Network(NetworkId(vec![0xcd; 16])));
    }
    if bits & 4 != 0 {
        out.push(Grantee::Node(AuthorId([0x11; 32])));
    }
    out
}

fn same(a: &Decision, b: &Decision) -> bool {
    let mut x = a.relied_on.clone();
    let mut y = b.relied_on.clone();
    x.sort();
    y.sort();
    a.allowed == b.allowed
        && std::mem::discriminant(&a.reason) == std::mem::discriminant(&b.reason)
        && x == y
}

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let parts = chunks::split(data);
    let Some((request_bytes, consent_parts)) = parts.split_first() else {
        return;
    };
    let byte = |i: usize| request_bytes.get(i).copied().unwrap_or(0);
    let mut time = [0u8; 8];
    for (i, slot) in time.iter_mut().enumerate() {
        *slot = byte(3 + i);
    }
    let grantees = grantees_of(byte(2));
    let purpose = Purpose::from_code(PURPOSES[byte(0) as usize % PURPOSES.len()]);
    let resource_type = RESOURCE_TYPES[byte(1) as usize % RESOURCE_TYPES.len()];
    let home = home();
    let request = Request {
        grantees: &grantees,
        purpose,
        resource_type,
        time_ms: u64::from_be_bytes(time),
        home_network: &home,
    };
    let consents: Vec<Consent> = consent_parts
        .iter()
        .filter_map(|bytes| Consent::from_json(bytes).ok())
        .collect();
    let decision = permits(&consents, &request);
    assert_eq!(decision, permits(&consents, &request), "not deterministic");
    if decision.allowed {
        assert!(
            !decision.relied_on.is_empty() || decision.reason.consent_id().is_none(),
            "a permit names no consent"
        );
    }
    for id in &decision.relied_on {
        assert!(
            consents.iter().any(|c| c.id() == id && c.takes_part()),
            "relied on a consent that is not in force"
        );
    }
    let mut reversed = consents.clone();
    reversed.reverse();
    assert!(
        same(&decision, &permits(&reversed, &request)),
        "the decision depends on consent order"
    );
    let round_tripped: Vec<Consent> = consents
        .iter()
        .map(|c| Consent::from_json(c.to_json().as_bytes()).expect("own JSON parses"))
        .collect();
    assert!(
        same(&decision, &permits(&round_tripped, &request)),
        "a JSON round trip changed the decision"
    );
    let mut with_revoked = consents.clone();
    with_revoked.extend(consents.iter().map(Consent::revoked));
    let revoked_decision = permits(&with_revoked, &request);
    assert_eq!(
        decision.allowed, revoked_decision.allowed,
        "a revoked consent changed the decision"
    );
    if let Some(grantee) = grantees.first() {
        let deny = ConsentDraft::new(
            "fuzz-deny",
            "fuzz-patient",
            Provision::deny()
                .actor(grantee.clone())
                .during(Period::ALWAYS),
        )
        .build()
        .expect("a blanket deny builds");
        let mut denied = consents;
        denied.push(deny);
        let decision = permits(&denied, &request);
        assert!(!decision.allowed, "an active blanket deny did not deny");
    }
}

/// Consents the library writes for real Synthea patients: plain grants, a
/// grant with a period, one with a deny exception, a revoked one; with
/// requests for treatment and research at the home network.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8(fixture::ndjson_lines(
        "bulk-10-patients/Patient.000.ndjson",
        3,
    ))
    .expect("UTF-8");
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            v["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let net = Grantee::Network(home());
    let node = Grantee::Node(AuthorId([0x11; 32]));
    let grant = |id: &str, patient: &str, grantee: &Grantee, purposes, classes, period| {
        Consent::grant(id, patient, grantee.clone(), purposes, classes, period).expect("grant")
    };
    let plain = grant("c1", &ids[0], &net, vec![Purpose::Research], vec![], None);
    let period = grant(
        "c2",
        &ids[1],
        &node,
        vec![Purpose::Treat],
        vec!["Observation".into()],
        Some((fixture::T0 - 1000, fixture::T0 + 1000)),
    );
    let except = plain
        .with_exception(Provision::deny().class("Condition"))
        .expect("exception");
    let revoked = period.revoked();
    let request_at = |purpose: u8, class: u8, grantees: u8, time: u64| {
        let mut r = vec![purpose, class, grantees];
        r.extend_from_slice(&time.to_be_bytes());
        r
    };
    let request = |purpose, class, grantees| request_at(purpose, class, grantees, fixture::T0);
    let json = |c: &Consent| c.to_json().into_bytes();
    let mut out = vec![
        (
            "research-at-home".to_string(),
            chunks::join(&[request(1, 0, 1), json(&plain)]),
        ),
        (
            "treat-node-period".to_string(),
            chunks::join(&[request(0, 1, 4), json(&period), json(&revoked)]),
        ),
        (
            "deny-exception".to_string(),
            chunks::join(&[request(1, 2, 3), json(&except), json(&plain)]),
        ),
        (
            "default-treatment".to_string(),
            chunks::join(&[request(0, 3, 1)]),
        ),
    ];
    out.push((
        "expired".to_string(),
        chunks::join(&[
            request_at(0, 1, 7, fixture::T0 + 5000),
            json(&period),
            json(&except),
        ]),
    ));
    out
}
