//! Reading and writing FHIR R4 Consent: a realistic research consent, the
//! errors for malformed ones (by field, never by value), the canonical output
//! pinned by a snapshot, the recorded-on-behalf mark, and round trips.

use careledger::consent::{
    classify, permits, Actor, Consent, ConsentDraft, ConsentScope, ConsentSource, ConsentStatus,
    DecisionReason, Effect, Grantee, ParseConsentError, Period, Provision, Purpose, Request,
};
use careledger::entry::AuthorId;
use careledger::node::NetworkId;
use proptest::prelude::*;
use serde_json::{json, Value};

fn study() -> NetworkId {
    NetworkId(vec![0x57; 16])
}

fn care() -> NetworkId {
    NetworkId(vec![0xCA; 16])
}

fn hospital() -> AuthorId {
    AuthorId([0x40; 32])
}

fn partner_lab() -> AuthorId {
    AuthorId([0x1A; 32])
}

/// A research consent as an EHR would write it, after the R4 examples
/// (`consent-example-*`): OPTIN policy, a dated research grant to a study
/// network with the hospital as custodian, and two exceptions.
const RESEARCH_CONSENT: &str = r#"{
  "resourceType": "Consent",
  "id": "consent-heart-study-0042",
  "meta": { "lastUpdated": "2026-01-15T09:31:02+01:00" },
  "text": {
    "status": "generated",
    "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Consent to share observations, conditions and prescriptions with the heart-failure study for one year; conditions and the partner lab excluded.</div>"
  },
  "extension": [ {
    "url": "urn:careledger:recorded-on-behalf-by",
    "valueIdentifier": {
      "system": "urn:careledger:node",
      "value": "4040404040404040404040404040404040404040404040404040404040404040"
    }
  } ],
  "status": "active",
  "scope": {
    "coding": [ { "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research" } ]
  },
  "category": [ { "coding": [ { "system": "http://loinc.org", "code": "59284-0" } ] } ],
  "patient": { "reference": "Patient/pt-0042" },
  "dateTime": "2026-01-15T09:30:00+01:00",
  "performer": [ { "reference": "Patient/pt-0042" } ],
  "organization": [ { "reference": "Organization/hospital-a" } ],
  "sourceAttachment": { "title": "Heart-failure study consent form, version 2" },
  "policyRule": {
    "coding": [ { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" } ]
  },
  "verification": [ { "verified": true, "verifiedWith": { "reference": "Patient/pt-0042" }, "verificationDate": "2026-01-15" } ],
  "provision": {
    "period": { "start": "2026-01-15", "end": "2027-01-15" },
    "actor": [ {
      "role": { "coding": [ { "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP" } ] },
      "reference": { "identifier": { "system": "urn:careledger:network", "value": "57575757575757575757575757575757" } }
    }, {
      "role": { "coding": [ { "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "CST" } ] },
      "reference": { "reference": "Organization/hospital-a" }
    } ],
    "purpose": [ {
      "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
      "code": "HRESCH",
      "display": "healthcare research"
    } ],
    "class": [
      { "system": "http://hl7.org/fhir/resource-types", "code": "Observation" },
      { "system": "http://hl7.org/fhir/resource-types", "code": "Condition" },
      { "system": "http://hl7.org/fhir/resource-types", "code": "MedicationRequest" }
    ],
    "provision": [ {
      "type": "deny",
      "class": [ { "system": "http://hl7.org/fhir/resource-types", "code": "Condition" } ]
    }, {
      "type": "deny",
      "actor": [ {
        "role": { "coding": [ { "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP" } ] },
        "reference": { "identifier": { "system": "urn:careledger:node", "value": "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a" } }
      } ]
    } ]
  }
}"#;

/// 2026-01-15T00:00:00Z
const JAN_15_2026: i64 = 1_768_435_200_000;
const DAY: i64 = 86_400_000;

#[test]
fn reads_a_realistic_research_consent() {
    let consent = Consent::from_json(RESEARCH_CONSENT.as_bytes()).unwrap();
    assert_eq!(consent.id(), "consent-heart-study-0042");
    assert_eq!(consent.patient_id(), "pt-0042");
    assert_eq!(consent.status(), ConsentStatus::Active);
    assert_eq!(consent.scope(), ConsentScope::Research);
    assert_eq!(
        consent.date_time_ms(),
        Some(JAN_15_2026 + 8 * 3_600_000 + 30 * 60_000)
    );
    assert_eq!(consent.recorded_on_behalf_by(), Some(&hospital()));
    let root = consent.provision();
    assert_eq!(root.effect, Effect::Permit, "OPTIN is a permit base");
    assert_eq!(
        root.period,
        Period::between(JAN_15_2026, JAN_15_2026 + 366 * DAY - 1),
        "a date end includes its whole day"
    );
    assert_eq!(root.actors[0], Actor::Grantee(Grantee::Network(study())));
    assert!(matches!(root.actors[1], Actor::Other(_)));
    assert_eq!(root.purposes, [Purpose::Research]);
    assert_eq!(
        root.classes,
        ["Observation", "Condition", "MedicationRequest"]
    );
    assert_eq!(root.provisions.len(), 2);
    assert_eq!(root.provisions[0].effect, Effect::Deny);
    assert_eq!(root.provisions[0].classes, ["Condition"]);
    assert_eq!(
        root.provisions[1].actors,
        [Actor::Grantee(Grantee::Node(partner_lab()))]
    );
    // Debug shows no ids and no choices.
    let shown = format!("{consent:?}");
    assert!(
        !shown.contains("pt-0042") && !shown.contains("heart") && !shown.contains("Condition"),
        "{shown}"
    );

    // What it decides, through the year and after.
    let consents = [consent];
    let ask = |grantees: &[Grantee], purpose: Purpose, class: &str, time_ms: i64| {
        let home = care();
        permits(
            &consents,
            &Request {
                grantees,
                purpose,
                resource_type: class,
                time_ms: u64::try_from(time_ms).unwrap(),
                home_network: &home,
            },
        )
        .reason
    };
    let in_study = [Grantee::Network(study())];
    let lab_in_study = [Grantee::Node(partner_lab()), Grantee::Network(study())];
    let march = JAN_15_2026 + 45 * DAY;
    let id = || "consent-heart-study-0042".to_owned();
    assert_eq!(
        ask(&in_study, Purpose::Research, "Observation", march),
        DecisionReason::Permitted { consent_id: id() }
    );
    assert_eq!(
        ask(&in_study, Purpose::Research, "Condition", march),
        DecisionReason::Denied { consent_id: id() }
    );
    assert_eq!(
        ask(&lab_in_study, Purpose::Research, "Observation", march),
        DecisionReason::Denied { consent_id: id() }
    );
    assert_eq!(
        ask(&in_study, Purpose::Research, "Immunization", march),
        DecisionReason::DefaultDeny
    );
    let last_hour = JAN_15_2026 + 366 * DAY - 3_600_000;
    assert_eq!(
        ask(&in_study, Purpose::Research, "Observation", last_hour),
        DecisionReason::Permitted { consent_id: id() }
    );
    assert_eq!(
        ask(
            &in_study,
            Purpose::Research,
            "Observation",
            last_hour + 3_600_000
        ),
        DecisionReason::Expired { consent_id: id() }
    );
    assert_eq!(
        ask(
            &[Grantee::Network(care())],
            Purpose::Treat,
            "Condition",
            march
        ),
        DecisionReason::DefaultTreatment
    );
}

#[test]
fn the_realistic_consent_writes_back_canonically() {
    let consent = Consent::from_json(RESEARCH_CONSENT.as_bytes()).unwrap();
    let written = consent.to_fhir();
    assert_eq!(Consent::from_fhir(&written).unwrap(), consent);
    // The other actor survives verbatim; the dates come back at their precision.
    let provision = &written["provision"];
    assert_eq!(
        provision["actor"][1]["reference"],
        json!({ "reference": "Organization/hospital-a" })
    );
    assert_eq!(
        provision["period"],
        json!({ "start": "2026-01-15", "end": "2027-01-15" })
    );
    assert_eq!(written["dateTime"], json!("2026-01-15T08:30:00Z"));
    assert!(
        provision.get("type").is_none(),
        "R4: no type in the root rule"
    );
    assert_eq!(written["policyRule"]["coding"][0]["code"], json!("OPTIN"));
}

// ---------------------------------------------------------------------------
// Malformed consents: each names its field, none repeats the value.
// ---------------------------------------------------------------------------

fn base() -> Value {
    serde_json::from_str(RESEARCH_CONSENT).unwrap()
}

/// Applies `edit` to the fixture and returns the error, checking that the
/// message names `field` and does not contain `secret`.
fn rejected(edit: impl FnOnce(&mut Value), field: &str, secret: &str) -> ParseConsentError {
    let mut value = base();
    edit(&mut value);
    let err = Consent::from_fhir(&value).unwrap_err();
    assert_eq!(err.field(), field, "{err}");
    let shown = err.to_string();
    assert!(shown.contains(field), "{shown}");
    if !secret.is_empty() {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!format!("{err:?}").contains(secret), "{err:?}");
    }
    err
}

#[test]
fn missing_or_unknown_status_is_rejected() {
    let err = rejected(
        |v| {
            v.as_object_mut().unwrap().remove("status");
        },
        "status",
        "",
    );
    assert!(matches!(err, ParseConsentError::MissingField { .. }));
    let err = rejected(
        |v| v["status"] = json!("revoked-secret"),
        "status",
        "revoked-secret",
    );
    assert!(matches!(err, ParseConsentError::UnknownStatus { .. }));
    let err = rejected(|v| v["status"] = json!(1), "status", "");
    assert!(matches!(
        err,
        ParseConsentError::WrongType {
            expected: "string",
            ..
        }
    ));
}

#[test]
fn wrong_resource_ids_and_references_are_rejected() {
    let err = rejected(|v| v["resourceType"] = json!("Patient"), "resourceType", "");
    assert_eq!(err, ParseConsentError::NotAConsent);
    let err = rejected(|v| v["id"] = json!("jane doe"), "id", "jane");
    assert!(matches!(err, ParseConsentError::InvalidId { .. }));
    let err = rejected(
        |v| v["patient"]["reference"] = json!("Group/jane-doe"),
        "patient.reference",
        "jane",
    );
    assert!(matches!(
        err,
        ParseConsentError::InvalidPatientReference { .. }
    ));
    let err = rejected(
        |v| {
            v.as_object_mut().unwrap().remove("patient");
        },
        "patient",
        "",
    );
    assert!(matches!(err, ParseConsentError::MissingField { .. }));
    let err = rejected(|v| v["patient"] = json!("Patient/x"), "patient", "");
    assert!(matches!(
        err,
        ParseConsentError::WrongType {
            expected: "object",
            ..
        }
    ));
    // Versioned patient references are fine.
    let mut value = base();
    value["patient"]["reference"] = json!("Patient/pt-0042/_history/3");
    assert_eq!(Consent::from_fhir(&value).unwrap().patient_id(), "pt-0042");
}

#[test]
fn bad_periods_name_the_bound() {
    let err = rejected(
        |v| v["provision"]["provision"][1]["period"] = json!({ "end": "2026-02-30" }),
        "provision.provision[1].period.end",
        "2026-02-30",
    );
    assert!(matches!(err, ParseConsentError::InvalidDateTime { .. }));
    let err = rejected(
        |v| v["provision"]["period"]["start"] = json!("2026-01-15T10:00:00"),
        "provision.period.start",
        "10:00",
    );
    assert!(matches!(err, ParseConsentError::InvalidDateTime { .. }));
    let err = rejected(
        |v| v["provision"]["period"] = json!({ "start": "2027-01-16", "end": "2027-01-15" }),
        "provision.period",
        "2027",
    );
    assert!(matches!(err, ParseConsentError::InvalidPeriod { .. }));
    let err = rejected(
        |v| v["provision"]["period"] = json!(["2026"]),
        "provision.period",
        "",
    );
    assert!(matches!(
        err,
        ParseConsentError::WrongType {
            expected: "object",
            ..
        }
    ));
    let err = rejected(
        |v| v["dateTime"] = json!("yesterday"),
        "dateTime",
        "yesterday",
    );
    assert!(matches!(err, ParseConsentError::InvalidDateTime { .. }));
    // A same-day start and end, and timezone offsets, are fine.
    let mut value = base();
    value["provision"]["period"] =
        json!({ "start": "2027-01-15T23:00:00-05:00", "end": "2027-01-16" });
    let period = Consent::from_fhir(&value).unwrap().provision().period;
    assert_eq!(
        period.start_ms,
        Some(JAN_15_2026 + 366 * DAY + 4 * 3_600_000)
    );
    assert_eq!(period.end_ms, Some(JAN_15_2026 + 367 * DAY - 1));
}

#[test]
fn provision_types_follow_r4() {
    let err = rejected(
        |v| {
            v["provision"]["provision"][0]
                .as_object_mut()
                .unwrap()
                .remove("type");
        },
        "provision.provision[0].type",
        "",
    );
    assert!(matches!(err, ParseConsentError::NestedTypeMissing { .. }));
    let err = rejected(
        |v| v["provision"]["provision"][0]["type"] = json!("maybe"),
        "provision.provision[0].type",
        "maybe",
    );
    assert!(matches!(
        err,
        ParseConsentError::UnknownProvisionType { .. }
    ));
    let err = rejected(
        |v| v["provision"]["type"] = json!("deny"),
        "provision.type",
        "",
    );
    assert!(matches!(
        err,
        ParseConsentError::ConflictingBaseDecision { .. }
    ));
    let err = rejected(
        |v| {
            v["policyRule"]["coding"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT" }));
        },
        "policyRule",
        "",
    );
    assert!(matches!(
        err,
        ParseConsentError::ConflictingBaseDecision { .. }
    ));
    // A root type that agrees with policyRule is accepted; alone it decides.
    let mut value = base();
    value["provision"]["type"] = json!("permit");
    assert_eq!(
        Consent::from_fhir(&value).unwrap().provision().effect,
        Effect::Permit
    );
    value.as_object_mut().unwrap().remove("policyRule");
    value["provision"]["type"] = json!("deny");
    assert_eq!(
        Consent::from_fhir(&value).unwrap().provision().effect,
        Effect::Deny
    );
    // A regulation code names no direction: with no root type the base is deny.
    value["provision"].as_object_mut().unwrap().remove("type");
    value["policyRule"] = json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentpolicycodes", "code": "hipaa-auth" }] });
    assert_eq!(
        Consent::from_fhir(&value).unwrap().provision().effect,
        Effect::Deny
    );
    // No provision at all: the base covers everything.
    value.as_object_mut().unwrap().remove("provision");
    value["policyRule"] = json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT" }] });
    let opt_out = Consent::from_fhir(&value).unwrap();
    assert_eq!(*opt_out.provision(), Provision::deny());
}

#[test]
fn codes_outside_the_interpreted_systems_are_rejected() {
    let err = rejected(
        |v| v["provision"]["purpose"][0]["system"] = json!("http://example.org/secret-purposes"),
        "provision.purpose[0].system",
        "secret",
    );
    assert!(matches!(err, ParseConsentError::UnknownCodeSystem { .. }));
    let err = rejected(
        |v| {
            v["provision"]["purpose"][0]
                .as_object_mut()
                .unwrap()
                .remove("system");
        },
        "provision.purpose[0].system",
        "",
    );
    assert!(matches!(err, ParseConsentError::UnknownCodeSystem { .. }));
    let err = rejected(
        |v| v["provision"]["purpose"][0]["code"] = json!(" HRESCH"),
        "provision.purpose[0].code",
        "",
    );
    assert!(matches!(err, ParseConsentError::InvalidCode { .. }));
    let err = rejected(
        |v| v["provision"]["class"][2]["code"] = json!("application/hl7-cda+xml"),
        "provision.class[2].code",
        "cda",
    );
    assert!(matches!(err, ParseConsentError::InvalidCode { .. }));
    let err = rejected(
        |v| v["provision"]["provision"][0]["class"][0]["system"] = json!("urn:ietf:bcp:13"),
        "provision.provision[0].class[0].system",
        "bcp",
    );
    assert!(matches!(err, ParseConsentError::UnknownCodeSystem { .. }));
    let err = rejected(
        |v| v["scope"]["coding"][0]["code"] = json!("everything"),
        "scope.coding[0].code",
        "everything",
    );
    assert!(matches!(err, ParseConsentError::InvalidCode { .. }));
    // The pre-R4 ActReason address still reads.
    let mut value = base();
    value["provision"]["purpose"][0]["system"] = json!("http://hl7.org/fhir/v3/ActReason");
    assert_eq!(
        Consent::from_fhir(&value).unwrap().provision().purposes,
        [Purpose::Research]
    );
}

#[test]
fn malformed_grantees_are_rejected_not_ignored() {
    let err = rejected(
        |v| {
            v["provision"]["provision"][1]["actor"][0]["reference"]["identifier"]["value"] =
                json!("1a1a-not-hex")
        },
        "provision.provision[1].actor[0].reference.identifier.value",
        "not-hex",
    );
    assert!(matches!(err, ParseConsentError::InvalidGrantee { .. }));
    let err = rejected(
        |v| v["provision"]["actor"][0]["reference"]["identifier"]["value"] = json!(""),
        "provision.actor[0].reference.identifier.value",
        "",
    );
    assert!(matches!(err, ParseConsentError::InvalidGrantee { .. }));
    let err = rejected(
        |v| {
            v["provision"]["actor"][0]
                .as_object_mut()
                .unwrap()
                .remove("reference");
        },
        "provision.actor[0].reference",
        "",
    );
    assert!(matches!(err, ParseConsentError::MissingField { .. }));
    let err = rejected(
        |v| v["provision"]["actor"] = json!({}),
        "provision.actor",
        "",
    );
    assert!(matches!(
        err,
        ParseConsentError::WrongType {
            expected: "array",
            ..
        }
    ));
}

#[test]
fn elements_that_would_widen_a_permit_are_rejected() {
    for member in [
        "action",
        "securityLabel",
        "code",
        "data",
        "dataPeriod",
        "modifierExtension",
    ] {
        let field = format!("provision.provision[0].{member}");
        let err = rejected(
            |v| v["provision"]["provision"][0][member] = json!([{ "text": "secret" }]),
            &field,
            "secret",
        );
        assert!(
            matches!(err, ParseConsentError::UnsupportedElement { .. }),
            "{member}"
        );
    }
    let err = rejected(
        |v| v["modifierExtension"] = json!([]),
        "modifierExtension",
        "",
    );
    assert!(matches!(err, ParseConsentError::UnsupportedElement { .. }));
    let err = rejected(
        |v| v["provision"]["purpse"] = json!([]),
        "provision.purpse",
        "",
    );
    assert!(matches!(err, ParseConsentError::UnknownElement { .. }));
    // A member name that could be data is masked.
    let err = rejected(
        |v| v["provision"]["Jane Doe, 1970-01-01"] = json!(1),
        "provision.<member>",
        "Jane",
    );
    assert!(matches!(err, ParseConsentError::UnknownElement { .. }));
}

#[test]
fn structural_limits_and_syntax() {
    let mut nested = json!({ "type": "deny" });
    for _ in 0..20 {
        nested = json!({ "type": "deny", "provision": [nested] });
    }
    let field = format!("provision{}", ".provision[0]".repeat(17));
    let err = rejected(
        |v| v["provision"]["provision"] = json!([nested]),
        &field,
        "",
    );
    assert!(matches!(err, ParseConsentError::TooDeep { .. }));
    let err = Consent::from_json(b"{\"resourceType\": \"Consent\",").unwrap_err();
    assert!(
        matches!(err, ParseConsentError::NotJson { line: 1, .. }),
        "{err}"
    );
    let err = Consent::from_json(b"[]").unwrap_err();
    assert_eq!(err.field(), "(root)");
    let err = Consent::from_json(&[0xff, 0xfe]).unwrap_err();
    assert!(matches!(err, ParseConsentError::NotJson { .. }));
}

// ---------------------------------------------------------------------------
// The recorded-on-behalf mark.
// ---------------------------------------------------------------------------

#[test]
fn recorded_on_behalf_is_marked_and_checked() {
    let phone = AuthorId([0x0F; 32]);
    let grant = Consent::grant(
        "c1",
        "pt-1",
        Grantee::Network(study()),
        vec![Purpose::Research],
        vec![],
        None,
    )
    .unwrap();
    let by_phone = classify(&phone, &[phone]);
    assert_eq!(by_phone, ConsentSource::PatientNode(phone));
    assert!(!by_phone.is_on_behalf());
    let by_hospital = classify(&hospital(), &[phone]);
    assert_eq!(
        by_hospital,
        ConsentSource::OnBehalf {
            recorder: hospital()
        }
    );
    assert_eq!(by_hospital.author(), &hospital());

    // Signed by the phone: no mark.
    assert!(grant.mark_matches(&by_phone));
    assert!(grant.to_fhir().get("extension").is_none());
    // Recorded by the hospital: the mark names it and survives FHIR.
    let marked = grant.marked_for(&by_hospital);
    assert_eq!(marked.recorded_on_behalf_by(), Some(&hospital()));
    let read = Consent::from_json(marked.to_json().as_bytes()).unwrap();
    assert_eq!(read, marked);
    assert!(read.mark_matches(&by_hospital));
    // A mark that misstates the signer does not match.
    assert!(!grant.mark_matches(&by_hospital));
    assert!(!marked.mark_matches(&by_phone));
    assert!(!marked.mark_matches(&classify(&partner_lab(), &[phone])));
    assert!(!marked
        .marked_for(&by_phone)
        .to_fhir()
        .to_string()
        .contains("on-behalf"));
}

#[test]
fn malformed_or_repeated_marks_are_rejected() {
    let err = rejected(
        |v| v["extension"][0]["valueIdentifier"]["value"] = json!("hospital-a"),
        "extension[0]",
        "hospital-a",
    );
    assert!(matches!(err, ParseConsentError::InvalidMark { .. }));
    let err = rejected(
        |v| {
            let mark = v["extension"][0].clone();
            v["extension"].as_array_mut().unwrap().push(mark);
        },
        "extension[1]",
        "",
    );
    assert!(matches!(err, ParseConsentError::InvalidMark { .. }));
    // Other extensions are not ours to judge.
    let mut value = base();
    value["extension"].as_array_mut().unwrap().insert(
        0,
        json!({ "url": "http://example.org/other", "valueString": "x" }),
    );
    assert_eq!(
        Consent::from_fhir(&value).unwrap().recorded_on_behalf_by(),
        Some(&hospital())
    );
}

// ---------------------------------------------------------------------------
// Builders and canonical output.
// ---------------------------------------------------------------------------

fn snapshot_consent() -> Consent {
    let consent = Consent::grant(
        "consent-2026-001",
        "pt-1",
        Grantee::Network(study()),
        vec![Purpose::Research],
        vec!["Observation".into(), "Condition".into()],
        Some((
            u64::try_from(JAN_15_2026).unwrap(),
            u64::try_from(JAN_15_2026 + 366 * DAY - 1).unwrap(),
        )),
    )
    .unwrap()
    .with_exception(
        Provision::deny()
            .class("Condition")
            .actor(Grantee::Node(partner_lab())),
    )
    .unwrap()
    .marked_for(&ConsentSource::OnBehalf {
        recorder: hospital(),
    });
    let mut draft = consent.to_draft();
    draft.date_time_ms = Some(JAN_15_2026 + 8 * 3_600_000 + 30 * 60_000);
    draft.build().unwrap()
}

#[test]
fn builder_output_is_canonical_r4() {
    let consent = snapshot_consent();
    insta::assert_snapshot!(
        "consent_grant_canonical",
        serde_json::to_string_pretty(&consent.to_fhir()).unwrap()
    );
    assert_eq!(Consent::from_fhir(&consent.to_fhir()).unwrap(), consent);
    let revoked = consent.revoked();
    assert_eq!(revoked.status(), ConsentStatus::Inactive);
    assert_eq!(revoked.to_fhir()["status"], json!("inactive"));
    assert_eq!(revoked.provision(), consent.provision());
}

#[test]
fn builders_validate_like_the_parser() {
    let grant = |id: &str, classes: Vec<String>, period| {
        Consent::grant(
            id,
            "pt-1",
            Grantee::Network(study()),
            vec![],
            classes,
            period,
        )
    };
    let err = grant("bad id", vec![], None).unwrap_err();
    assert!(matches!(err, ParseConsentError::InvalidId { .. }));
    let err = grant("c1", vec!["Observation".into(), "lab results".into()], None).unwrap_err();
    assert_eq!(err.field(), "provision.class[1].code");
    let err = grant("c1", vec![], Some((10, 5))).unwrap_err();
    assert!(matches!(err, ParseConsentError::InvalidPeriod { .. }));
    let err = grant("c1", vec![], Some((0, u64::MAX))).unwrap_err();
    assert_eq!(err.field(), "provision.period.end");
    let err = Consent::grant(
        "c1",
        "Patient/x",
        Grantee::Network(study()),
        vec![],
        vec![],
        None,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ParseConsentError::InvalidPatientReference { .. }
    ));
    let err = ConsentDraft::new(
        "c1",
        "p1",
        Provision::permit().purpose(Purpose::Other(String::new())),
    )
    .build()
    .unwrap_err();
    assert_eq!(err.field(), "provision.purpose[0].code");
    // Purposes come out canonical.
    let built = ConsentDraft::new(
        "c1",
        "p1",
        Provision::permit().purpose(Purpose::Other("TREAT".into())),
    )
    .build()
    .unwrap();
    assert_eq!(built.provision().purposes, [Purpose::Treat]);
}

// ---------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------

const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;

fn period_strategy() -> impl Strategy<Value = Period> {
    (
        proptest::option::of(MIN_MS..=MAX_MS),
        proptest::option::of(MIN_MS..=MAX_MS),
    )
        .prop_map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => Period::between(a.min(b), a.max(b)),
            (start_ms, end_ms) => Period { start_ms, end_ms },
        })
}

fn actor_strategy() -> impl Strategy<Value = Actor> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|b| Actor::Grantee(Grantee::Node(AuthorId(b)))),
        proptest::collection::vec(any::<u8>(), 1..40)
            .prop_map(|b| Actor::Grantee(Grantee::Network(NetworkId(b)))),
        "[A-Za-z0-9.-]{1,20}".prop_map(|id| {
            Actor::from_fhir(&json!({ "reference": { "reference": format!("Practitioner/{id}") } }))
                .unwrap()
        }),
    ]
}

fn purpose_strategy() -> impl Strategy<Value = Purpose> {
    prop_oneof![
        Just(Purpose::Treat),
        Just(Purpose::Research),
        Just(Purpose::Claims),
        "(HOPERAT|PUBHLTH|ETREAT|[a-z]{1,5} [A-Z]{1,5})".prop_map(Purpose::Other),
    ]
}

fn provision_strategy() -> impl Strategy<Value = Provision> {
    let node = (
        any::<bool>(),
        period_strategy(),
        proptest::collection::vec(actor_strategy(), 0..3),
        proptest::collection::vec(purpose_strategy(), 0..3),
        proptest::collection::vec("[A-Z][a-zA-Z]{1,20}", 0..3),
    )
        .prop_map(|(deny, period, actors, purposes, classes)| Provision {
            effect: if deny { Effect::Deny } else { Effect::Permit },
            period,
            actors,
            purposes,
            classes,
            provisions: vec![],
        });
    node.prop_recursive(4, 24, 3, |inner| {
        (
            any::<bool>(),
            period_strategy(),
            proptest::collection::vec(purpose_strategy(), 0..2),
            proptest::collection::vec(inner, 0..3),
        )
            .prop_map(|(deny, period, purposes, provisions)| Provision {
                effect: if deny { Effect::Deny } else { Effect::Permit },
                period,
                actors: vec![],
                purposes,
                classes: vec![],
                provisions,
            })
    })
}

fn draft_strategy() -> impl Strategy<Value = ConsentDraft> {
    (
        "[A-Za-z0-9.-]{1,64}",
        "[A-Za-z0-9.-]{1,64}",
        proptest::sample::select(ConsentStatus::ALL.to_vec()),
        proptest::sample::select(ConsentScope::ALL.to_vec()),
        proptest::option::of(MIN_MS..=MAX_MS),
        proptest::option::of(any::<[u8; 32]>()),
        provision_strategy(),
    )
        .prop_map(
            |(id, patient_id, status, scope, date_time_ms, recorder, provision)| ConsentDraft {
                id,
                patient_id,
                status,
                scope,
                date_time_ms,
                recorded_on_behalf_by: recorder.map(AuthorId),
                provision,
            },
        )
}

/// Leaves only JSON values that are fit to appear anywhere in a consent.
fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("permit".to_owned()),
            Just("deny".to_owned()),
            Just("active".to_owned()),
            Just("2026-01-15".to_owned()),
            Just("Patient/p1".to_owned()),
            Just("urn:careledger:node".to_owned()),
            "\\PC{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("provision".to_owned()),
            Just("type".to_owned()),
            Just("period".to_owned()),
            Just("start".to_owned()),
            Just("end".to_owned()),
            Just("actor".to_owned()),
            Just("reference".to_owned()),
            Just("identifier".to_owned()),
            Just("system".to_owned()),
            Just("value".to_owned()),
            Just("purpose".to_owned()),
            Just("class".to_owned()),
            Just("code".to_owned()),
            Just("coding".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((keys, inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Model → FHIR → model is the identity, and the FHIR is stable.
    #[test]
    fn drafts_round_trip_through_fhir(draft in draft_strategy()) {
        let expected = draft.provision.clone();
        let consent = draft.clone().build().unwrap();
        prop_assert_eq!(consent.provision(), &expected);
        prop_assert_eq!(consent.id(), draft.id.as_str());
        prop_assert_eq!(consent.patient_id(), draft.patient_id.as_str());
        prop_assert_eq!(consent.status(), draft.status);
        prop_assert_eq!(consent.scope(), draft.scope);
        prop_assert_eq!(consent.date_time_ms(), draft.date_time_ms);
        prop_assert_eq!(consent.recorded_on_behalf_by(), draft.recorded_on_behalf_by.as_ref());
        let text = consent.to_json();
        let read = Consent::from_json(text.as_bytes()).unwrap();
        prop_assert_eq!(read.to_json(), text);
        prop_assert!(read == consent);
    }

    /// Arbitrary JSON in any position never panics the reader.
    #[test]
    fn reading_never_panics(
        provision in json_strategy(),
        status in json_strategy(),
        extra in json_strategy(),
    ) {
        let mut value = base();
        value["provision"]["provision"][0] = provision.clone();
        let _ = Consent::from_fhir(&value);
        value["provision"] = provision;
        let _ = Consent::from_fhir(&value);
        value["status"] = status;
        value["extension"] = extra.clone();
        let _ = Consent::from_fhir(&value);
        let _ = Consent::from_fhir(&extra);
    }

    #[test]
    fn reading_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Consent::from_json(&bytes);
    }
}
