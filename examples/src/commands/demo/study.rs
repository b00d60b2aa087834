//! The demo's second half: consent and verifiable AI.
//!
//! Hospital A and a researcher form a study network; a patient's phone joins
//! the care network. A imports the breast-cancer example (569 patients) into
//! the care network as FHIR, with a research consent for each patient
//! recorded on the patient's behalf, except one patient whose phone signs
//! their own. A shares into the study what consent permits; the researcher
//! trains on the published split and the hospital re-verifies the model
//! card, and names the tampered step when the model bytes are altered. One
//! prediction is one decision entry. The patient then revokes from the
//! phone: the next share cuts the study off from the chart, the retrained
//! model's dataset leaves the patient out, and a membership proof shows it.
//! Finally the patient erases their chart from the phone: the hospital
//! shreds it in the care network and in the study it shared it into, the
//! researcher shreds it too, and every ledger still verifies.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use careledger::analytics::ledger::Holdout;
use careledger::analytics::ModelKind;
use careledger::body::EraseScope;
use careledger::checkpoint::dataset::Membership;
use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
use careledger::entry::EntryId;
use careledger::node::{
    AuditRecord, ExportError, ExportFormat, NetworkId, Node, PredictInput, TrainOutcome,
    TrainRequest, VerifyStep,
};
use careledger::relay::Relay;
use careledger::sync::{join_from_relay, publish_outbox};
use indicatif::MultiProgress;

use super::story::Story;
use super::{data, import, institution, settle_network, HOSPITAL_A, LABEL};
use crate::ai::{accuracy, breast_cancer, breast_cancer_test_ids, metrics_line};
use crate::commands::predict::prediction_text;
use crate::commands::train::show_stage;
use crate::commands::verify::verdict;
use crate::context::now_ms;
use crate::exchange::sync_until_committed;
use crate::output::{seconds, short, spinner, stage_bar};

const RESEARCHER: &str = "research.example";
const PHONE: &str = "patient-phone.example";
const STUDY: &str = "study";
/// Test accuracy the model must reach on the published split
/// (scikit-learn's logistic regression reaches 0.98601 on it).
const MIN_TEST_ACCURACY: f64 = 0.979;

/// Hospital A, the care network it shares with its peers, and what they share.
pub struct Care<'a> {
    /// The workspace directory.
    pub dir: &'a Path,
    /// The relay every node uses.
    pub relay: &'a mut dyn Relay,
    /// Hospital A.
    pub hospital: &'a mut Node,
    /// The care network.
    pub network: &'a NetworkId,
    /// Progress bars.
    pub progress: &'a MultiProgress,
}

fn consent_id(patient: &str) -> String {
    format!("research-{patient}")
}

fn research_consent(patient: &str, study: &NetworkId) -> Result<Consent> {
    Consent::grant(
        &consent_id(patient),
        patient,
        Grantee::Network(study.clone()),
        vec![Purpose::Research],
        Vec::new(),
        None,
    )
    .context("cannot build a research consent")
}

fn train(
    researcher: &mut Node,
    study: &NetworkId,
    request: &TrainRequest,
    progress: &MultiProgress,
) -> Result<TrainOutcome> {
    let bar = stage_bar(progress, "records");
    let result = researcher.train_model(study, request, now_ms(), &mut |stage| {
        show_stage(&bar, stage)
    });
    bar.finish_and_clear();
    result.context("training failed")
}

/// Whether `patient` is in the dataset of `card`, proved by the researcher's
/// node and checked against the card's own commitment.
fn membership(
    researcher: &mut Node,
    study: &NetworkId,
    card: &EntryId,
    patient: &str,
) -> Result<Option<bool>> {
    let claimed = researcher
        .model_card(study, card)?
        .card
        .dataset
        .context("a trained card has a dataset commitment")?;
    let (commitment, proof) = researcher
        .prove_dataset_membership(study, card, patient)
        .context("cannot prove dataset membership")?;
    if commitment.size != claimed.size || hex::encode(commitment.root) != claimed.root {
        return Ok(None);
    }
    Ok(match commitment.verify(patient, &proof) {
        Ok(Membership::Included { .. }) => Some(true),
        Ok(Membership::NotIncluded) => Some(false),
        Err(_) => None,
    })
}

/// Run steps 7 to 13.
pub fn run(story: &mut Story, care: Care<'_>) -> Result<()> {
    let Care {
        dir,
        relay,
        hospital: a,
        network: care_net,
        progress,
    } = care;
    let data = breast_cancer()?;
    let test_ids = breast_cancer_test_ids()?;
    let held_out: BTreeSet<&String> = test_ids.iter().collect();
    // The phone's patient: the first training row, so revoking changes what trains.
    let phone_patient = (0..data.len())
        .map(careledger::analytics::example_data::BreastCancerData::patient_id)
        .find(|id| !held_out.contains(id))
        .context("the example split holds out every row")?;

    // 7. A study network; the patient's phone joins the care network.
    story.step("A study network forms; a patient's phone joins the care network")?;
    let mut r = institution(dir, RESEARCHER)?;
    let mut phone = institution(dir, PHONE)?;
    let study = a
        .create_network(STUDY)
        .context("cannot create the study network")?;
    story.set("study_network", study.to_hex());
    let key_package = r.key_package()?;
    a.invite(&study, &key_package)
        .context("cannot invite the researcher")?;
    sync_until_committed(a, relay, &study, STUDY, progress)?;
    join_from_relay(&mut r, relay, &study, STUDY, now_ms())
        .context("the researcher could not join the study")?;
    story.line(format!(
        "{HOSPITAL_A} created network `{STUDY}` ({}) and invited {RESEARCHER}",
        study.to_hex()
    ))?;
    let key_package = phone.key_package()?;
    a.invite(care_net, &key_package)
        .context("cannot invite the phone")?;
    sync_until_committed(a, relay, care_net, LABEL, progress)?;
    join_from_relay(&mut phone, relay, care_net, LABEL, now_ms())
        .context("the phone could not join the care network")?;
    story.line(format!(
        "{HOSPITAL_A} invited {PHONE} (patient {phone_patient}'s phone) into `{LABEL}`"
    ))?;
    settle_network(&mut [&mut *a, &mut r], relay, &study, STUDY, progress)?;
    let formed =
        r.is_member(&study)? && a.members(&study)?.len() == 2 && phone.is_member(care_net)?;
    story.check(
        "study_formed",
        formed,
        format!("{RESEARCHER} is in `{STUDY}`; {PHONE} is in `{LABEL}`"),
        || "a membership did not take effect".into(),
    )?;
    story.end_step()?;

    // 8. The breast-cancer charts with consents.
    story.step("Hospital A imports 569 breast-cancer charts with research consents")?;
    let all = data.to_ndjson();
    let hospital_author = a.identity().author_id();
    let on_behalf = ConsentSource::OnBehalf {
        recorder: hospital_author,
    };
    // The phone's patient first: their phone signs their consent before the
    // other charts arrive, so the phone never has to download those.
    let (phone_chart, _) = data::with_consents(&all, |p| p == phone_patient, |_| Ok(None))?;
    let (first_report, first_time) =
        import(a, care_net, "breast-cancer.ndjson", &phone_chart, progress)?;
    let phone_author = phone.identity().author_id();
    a.link_patient_node(care_net, &phone_patient, &phone_author, now_ms())
        .context("cannot link the phone to its patient")?;
    settle_network(&mut [&mut *a, &mut phone], relay, care_net, LABEL, progress)?;
    phone
        .record_consent(
            care_net,
            &research_consent(&phone_patient, &study)?,
            now_ms(),
        )
        .context("the phone cannot record its consent")?;
    settle_network(&mut [&mut *a, &mut phone], relay, care_net, LABEL, progress)?;
    story.line(format!(
        "patient {phone_patient}'s chart lists {PHONE} as the patient's own node; the phone signed their research consent"
    ))?;
    let (others, mut patients) = data::with_consents(
        &all,
        |p| p != phone_patient,
        |patient| {
            Ok(Some(
                research_consent(patient, &study)?
                    .marked_for(&on_behalf)
                    .to_json(),
            ))
        },
    )?;
    let (report, elapsed) = import(a, care_net, "breast-cancer.ndjson", &others, progress)?;
    story.line(format!(
        "{} more charts, each with a research consent recorded on the patient's behalf: {} resources in {} entries, {}",
        report.patients,
        report.resources,
        report.entries,
        seconds(elapsed)
    ))?;
    story.fact("resources", first_report.resources + report.resources);
    story.fact("patients", first_report.patients + report.patients);
    story.fact("import_seconds", (first_time + elapsed).as_secs_f64());
    let mut on_behalf_ok = 0usize;
    for patient in &patients {
        let chart = a.consents(care_net, patient)?;
        if let [one] = chart.consents.as_slice() {
            if one.source == on_behalf && one.mark_matches {
                on_behalf_ok += 1;
            }
        }
    }
    story.fact("consents_on_behalf", on_behalf_ok);
    story.check(
        "consents_recorded_on_behalf",
        on_behalf_ok == patients.len(),
        format!(
            "{on_behalf_ok} consents read back as recorded on behalf by {HOSPITAL_A}, marked so"
        ),
        || format!("only {on_behalf_ok} of {} did", patients.len()),
    )?;
    let phone_consents = a.consents(care_net, &phone_patient)?;
    let phone_signed = matches!(
        phone_consents.consents.as_slice(),
        [one] if one.source == ConsentSource::PatientNode(phone_author) && one.mark_matches
    );
    patients.push(phone_patient.clone());
    story.check(
        "phone_signed_consent",
        phone_signed,
        format!("patient {phone_patient}'s consent reads back as signed by the patient's own node"),
        || "it does not".into(),
    )?;
    story.end_step()?;

    // 9. Share into the study.
    story.step("Hospital A shares into the study what consent permits")?;
    let bar = spinner(
        progress,
        format!("{HOSPITAL_A} shares {LABEL} into {STUDY}"),
    );
    let started = Instant::now();
    let shared = a.share_to_network(care_net, &study, Purpose::Research, now_ms());
    bar.finish_and_clear();
    let shared = shared.context("sharing into the study failed")?;
    story.line(format!(
        "{} of {} patients shared: {} resources permitted, {} withheld, {} consents relied on ({})",
        shared.patients_shared,
        shared.patients,
        shared.resources_permitted,
        shared.resources_withheld,
        shared.consent_ids.len(),
        seconds(started.elapsed())
    ))?;
    let synced = settle_network(&mut [&mut *a, &mut r], relay, &study, STUDY, progress)?;
    let at_researcher = r.patients(&study)?.len();
    story.line(format!(
        "{RESEARCHER} synced: accepted {} entries, holds {at_researcher} charts",
        synced[1].accepted
    ))?;
    story.fact("patients_shared", shared.patients_shared);
    story.fact("resources_withheld", shared.resources_withheld);
    story.fact("consents_relied_on", shared.consent_ids.len());
    story.check(
        "share_follows_consent",
        shared.patients_shared == patients.len()
            && shared.consent_ids.len() == patients.len()
            && at_researcher == patients.len(),
        format!(
            "exactly the {} consenting patients reached the study; the {} without consent did not",
            patients.len(),
            shared.patients - shared.patients_shared
        ),
        || {
            format!(
                "{} shared, {} consents relied on, {at_researcher} at the researcher",
                shared.patients_shared,
                shared.consent_ids.len()
            )
        },
    )?;
    story.end_step()?;

    // 10. Training on the published split.
    story.step("The researcher trains a logistic regression on the published split")?;
    let request = TrainRequest {
        holdout: Holdout::Records(test_ids.clone()),
        ..TrainRequest::new(data.spec(), ModelKind::logistic_regression())
    };
    let started = Instant::now();
    let first = train(&mut r, &study, &request, progress)?;
    let card = &first.card;
    let dataset_size = card.dataset.as_ref().map(|d| d.size).unwrap_or(0);
    story.line(format!(
        "model card {}…: {} records (root {}…), {} consents relied on, {} training rows, {} held out ({})",
        short(&first.entry.to_hex(), 16),
        dataset_size,
        short(card.dataset.as_ref().map(|d| d.root.as_str()).unwrap_or(""), 16),
        card.consent_ids.len(),
        card.training_rows,
        card.test_rows,
        seconds(started.elapsed())
    ))?;
    story.line(format!("test {}", metrics_line(card.metrics.as_ref())))?;
    let test_accuracy = accuracy(card.metrics.as_ref()).unwrap_or(0.0);
    story.fact("model_card", first.entry.to_hex());
    story.fact("test_accuracy", test_accuracy);
    story.fact("dataset_size", dataset_size);
    story.check(
        "test_accuracy",
        test_accuracy >= MIN_TEST_ACCURACY && card.test_rows == test_ids.len() as u64,
        format!(
            "test accuracy {test_accuracy:.5} ≥ {MIN_TEST_ACCURACY} on the {} held-out rows",
            test_ids.len()
        ),
        || {
            format!(
                "test accuracy {test_accuracy:.5} on {} rows",
                card.test_rows
            )
        },
    )?;
    story.end_step()?;

    // 11. Verification and tampering.
    story.step("Hospital A re-verifies the model card; tampering is named")?;
    settle_network(&mut [&mut *a, &mut r], relay, &study, STUDY, progress)?;
    let bar = spinner(progress, format!("{HOSPITAL_A} rebuilds and retrains"));
    let started = Instant::now();
    let verified = a.verify_model(&study, &first.entry);
    bar.finish_and_clear();
    let verified = verified.context("verification could not run")?;
    story.line(format!(
        "{HOSPITAL_A}: {} ({} steps passed, {})",
        verdict(&verified.outcome),
        verified.passed.len(),
        seconds(started.elapsed())
    ))?;
    story.check(
        "model_card_confirmed",
        verified.is_confirmed(),
        "the hospital rebuilt the dataset from its own replica and reproduced the model",
        || verdict(&verified.outcome),
    )?;
    let stored = a.model_card(&study, &first.entry)?;
    let mut tampered = stored.model.clone();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 1;
    }
    let tamper = a
        .verify_card(&study, &stored.card, &tampered, &stored.author)
        .context("verification could not run")?;
    story.line(format!(
        "with one bit of the model bytes flipped: {}",
        verdict(&tamper.outcome)
    ))?;
    story.check(
        "tampered_model_named",
        tamper.mismatch() == Some(VerifyStep::ModelBytes),
        "the tampered model is a mismatch at model bytes",
        || verdict(&tamper.outcome),
    )?;
    story.end_step()?;

    // 12. A prediction.
    story.step("One prediction is one decision entry")?;
    let subject = test_ids
        .first()
        .context("the split holds out no row")?
        .clone();
    let decided = r
        .predict(
            &study,
            &first.entry,
            &PredictInput::Record(subject),
            Purpose::Research,
            now_ms(),
        )
        .context("the prediction failed")?;
    story.line(format!(
        "{RESEARCHER} predicted for a held-out patient: {}; decision entry {}…",
        prediction_text(&decided.decision.output),
        short(&decided.entry.to_hex(), 16)
    ))?;
    settle_network(&mut [&mut *a, &mut r], relay, &study, STUDY, progress)?;
    let decisions: Vec<(EntryId, String)> = a
        .audit(&study)?
        .into_iter()
        .filter_map(|e| match e.record {
            AuditRecord::Decision(d) => Some((e.entry, d.model_card)),
            _ => None,
        })
        .collect();
    let provenance = decided
        .decision
        .to_provenance(&decided.entry.to_hex(), &r.identity().author_id().to_hex());
    story.line(format!(
        "{HOSPITAL_A}'s audit shows {} decision(s); as FHIR it is a {}",
        decisions.len(),
        provenance["resourceType"].as_str().unwrap_or("?")
    ))?;
    story.check(
        "decision_recorded",
        decisions == [(decided.entry, first.entry.to_hex())],
        "the hospital's replica holds exactly one decision entry, citing the model card",
        || format!("{} decision entries", decisions.len()),
    )?;
    story.end_step()?;

    // 13. Revocation.
    story.step("The patient revokes from the phone; the study is cut off")?;
    let consent = phone
        .consents(care_net, &phone_patient)?
        .consents
        .into_iter()
        .next()
        .context("the phone's patient has no consent")?
        .consent;
    phone
        .record_consent(care_net, &consent.revoked(), now_ms())
        .context("the phone cannot revoke")?;
    // The phone only publishes: it has no use for the other patients' charts.
    publish_outbox(&mut phone, relay).context("the phone cannot publish")?;
    settle_network(&mut [&mut *a], relay, care_net, LABEL, progress)?;
    let bar = spinner(progress, format!("{HOSPITAL_A} shares again"));
    let again = a.share_to_network(care_net, &study, Purpose::Research, now_ms());
    bar.finish_and_clear();
    let again = again.context("sharing into the study failed")?;
    let withholding = a.is_withholding(&study, &phone_patient)?;
    story.line(format!(
        "{PHONE} revoked consent {}; {HOSPITAL_A} shared again: {} chart(s) cut off (key rotated and withheld)",
        consent.id(),
        again.records_cut_off
    ))?;
    story.check(
        "revocation_cuts_off",
        again.records_cut_off == 1 && withholding,
        format!("patient {phone_patient}'s chart is cut off from the study"),
        || {
            format!(
                "{} cut off, withholding: {withholding}",
                again.records_cut_off
            )
        },
    )?;
    settle_network(&mut [&mut *a, &mut r], relay, &study, STUDY, progress)?;
    let second = train(&mut r, &study, &request, progress)?;
    let second_size = second.card.dataset.as_ref().map(|d| d.size).unwrap_or(0);
    story.line(format!(
        "{RESEARCHER} retrained: model card {}…, {second_size} records, {} excluded by consent, test {}",
        short(&second.entry.to_hex(), 16),
        second.card.excluded_by_consent,
        metrics_line(second.card.metrics.as_ref())
    ))?;
    story.check(
        "retrain_leaves_patient_out",
        second_size + 1 == dataset_size && second.card.excluded_by_consent == 1,
        format!("the new dataset has {second_size} records: the patient is excluded by consent"),
        || {
            format!(
                "{second_size} records, {} excluded",
                second.card.excluded_by_consent
            )
        },
    )?;
    let proved = membership(&mut r, &study, &second.entry, &phone_patient)?;
    story.line(format!(
        "membership proof for patient {phone_patient} against the new card: {}",
        membership_text(proved)
    ))?;
    story.check(
        "membership_proves_exclusion",
        proved == Some(false),
        "the proof checks against the card's commitment: not included",
        || membership_text(proved).into(),
    )?;
    story.end_step()?;

    // 14. Erasure.
    story.step("The patient asks to be erased; every node shreds the chart")?;
    let entries_before = (
        a.ledger_entries(care_net)?.len(),
        r.ledger_entries(&study)?.len(),
    );
    let erased = phone
        .erase(care_net, &phone_patient, EraseScope::Chart, now_ms())
        .context("the phone cannot erase the chart")?;
    publish_outbox(&mut phone, relay).context("the phone cannot publish")?;
    settle_network(&mut [&mut *a], relay, care_net, LABEL, progress)?;
    settle_network(&mut [&mut *a, &mut r], relay, &study, STUDY, progress)?;
    story.line(format!(
        "{PHONE} erased patient {phone_patient}'s chart ({} key(s) shredded, signed by the patient's own node: {}); {HOSPITAL_A} erased it in `{STUDY}` too, where it had shared it",
        erased.keys_shredded, erased.by_patient
    ))?;
    let gone = |node: &mut Node, network: &NetworkId| {
        matches!(
            node.export_patient(network, &phone_patient, ExportFormat::Bundle),
            Err(ExportError::Erased)
        ) && !node
            .patients(network)
            .is_ok_and(|p| p.contains(&phone_patient))
    };
    let shredded = gone(a, care_net) && gone(a, &study) && gone(&mut r, &study);
    story.check(
        "erasure_shreds_the_chart",
        shredded && erased.by_patient,
        format!(
            "{HOSPITAL_A} (care, {STUDY}) and {RESEARCHER} show patient {phone_patient}'s chart as erased; no node can read it"
        ),
        || "the chart is still readable somewhere".into(),
    )?;
    let clean = a.verify_ledger(care_net)?.is_clean()
        && a.verify_ledger(&study)?.is_clean()
        && r.verify_ledger(&study)?.is_clean();
    let kept = a.ledger_entries(care_net)?.len() > entries_before.0
        && r.ledger_entries(&study)?.len() > entries_before.1;
    let audit = a.store().verify().context("cannot audit the store")?;
    story.line(format!(
        "the ciphertext stays: {} entries in `{LABEL}` at {HOSPITAL_A}, {} in `{STUDY}` at {RESEARCHER}; {HOSPITAL_A}'s store audit: {} rows, {}",
        a.ledger_entries(care_net)?.len(),
        r.ledger_entries(&study)?.len(),
        audit.rows,
        if audit.is_clean() { "intact" } else { "ALTERED" }
    ))?;
    story.check(
        "ledgers_verify_after_erasure",
        clean && kept && audit.is_clean(),
        "every ledger still verifies, nothing was removed from it, and the store audit is clean",
        || {
            format!(
                "ledgers clean: {clean}, entries kept: {kept}, audit: {:?}",
                audit.problems
            )
        },
    )?;
    story.end_step()?;
    Ok(())
}

fn membership_text(answer: Option<bool>) -> &'static str {
    match answer {
        Some(true) => "included",
        Some(false) => "not included",
        None => "proof does not check",
    }
}
