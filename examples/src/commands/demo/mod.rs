//! `careledger demo`: the whole story on one machine, with checks.
//!
//! Three institutions (`hospital-a.example`, `hospital-b.example`,
//! `lab.example`) each get a real file-backed node (`Store::open`) in a
//! temporary directory and exchange everything through one `LocalRelay`
//! file, exactly as the other subcommands would with `--home` and `--relay`:
//!
//! 1. A creates a care network and invites B and the lab with their key
//!    packages; they join from the relay.
//! 2. A imports the embedded Synthea bulk NDJSON and one HIV Bundle; all sync
//!    and every replica exports byte-identical charts.
//! 3. The lab imports results (Observations with LOINC codes) for patients
//!    of the network; the hospitals receive them.
//! 4. A and B edit one Patient while offline: different members and the same
//!    member. After a sync both export the same bytes, both different-member
//!    edits survive and both sides report the same-member conflict.
//! 5. A removes the lab and writes at least 20 more entries; the lab syncs
//!    and can open none of them, though it can open everything from before.
//! 6. Every node's ledger verifies clean.
//!
//! Then consent and verifiable AI ([`study`]), with a researcher
//! (`research.example`) and a patient's phone (`patient-phone.example`):
//!
//! 7. A and the researcher form a study network; the phone joins the care
//!    network.
//! 8. A imports the breast-cancer example (569 patients) as FHIR with a
//!    research consent per patient, recorded on the patients' behalf, except
//!    one patient whose phone signs their own.
//! 9. A shares into the study what consent permits; the researcher receives
//!    exactly the consenting patients' charts.
//! 10. The researcher trains a logistic regression on the published split:
//!     test accuracy at least 0.979.
//! 11. A re-verifies the model card (confirmed); with one bit of the model
//!     bytes flipped, verification names the step (model bytes).
//! 12. One prediction is exactly one decision entry.
//! 13. The phone's patient revokes; the next share cuts the study off from
//!     the chart; retraining leaves the patient out and a membership proof
//!     against the new card says not included.
//! 14. The patient erases their chart from the phone: A shreds it in the
//!     care network and in the study it shared it into, the researcher
//!     shreds it too; every ledger still verifies and A's store audit is
//!     clean.
//!
//! Then federated learning that reveals only the sum ([`federated`]), with
//! a coordinator and three clinics that each hold a non-IID share of the
//! breast-cancer rows:
//!
//! 15. The clinics join a federated study; one sets its privacy budget.
//! 16. Under secure aggregation they compute feature statistics, then train
//!     by FedAvg; one clinic stops mid-round and the round completes
//!     without it; another clinic re-verifies every round card.
//! 17. A differentially private task spends ε = 3; a task that would exceed
//!     the budget is refused before any record is read.
//!
//! Then rules that act by themselves ([`claims`]), with an insurer
//! (`insurer.example`):
//!
//! 18. The insurer joins a claims network; hospital A records a claims
//!     consent (CLMATTCH) for the HIV Bundle's patient and shares only the
//!     types the rules read.
//! 19. Both members endorse the insurer's rule set (policy 2 of 2); the
//!     insurer writes one outcome per claim by itself on its next sync.
//! 20. Hospital A re-checks every outcome: confirmed.
//! 21. A changed byte in the rule set and a forged outcome are named.
//!
//! Exit 0 only if every check held (2 otherwise); `--json` prints a summary.

mod claims;
mod data;
mod federated;
mod story;
mod study;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use careledger::entry::{AuthorId, Entry};
use careledger::node::{ExportFormat, ImportReport, NetworkId, Node};
use careledger::relay::Relay;
use careledger::sync::join_from_relay;
use indicatif::MultiProgress;
use serde_json::json;

use self::data::{DataFile, BULK, HIV_BUNDLE};
use self::story::Story;
use crate::commands::ledger::verification;
use crate::context::{
    create_node, generate_storage_key, now_ms, open_local_relay, write_storage_key_file, Context,
    RELAY_FILE, STORAGE_KEY_FILE,
};
use crate::exchange::{merge, sync_network, sync_until_committed, SyncSummary};
use crate::output::{multi_progress, rate, seconds, short, spinner};

const HOSPITAL_A: &str = "hospital-a.example";
const HOSPITAL_B: &str = "hospital-b.example";
const LAB: &str = "lab.example";
const LABEL: &str = "care";
/// Sync rounds after which a quiet network is expected.
const SETTLE_ROUNDS: usize = 10;
/// Entries A must write after removing the lab (the brief's "at least 20").
const ENTRIES_AFTER_REMOVAL: usize = 20;
/// Id prefixes of the Observations the demo writes.
const LAB_PREFIX: &str = "lab-result";
const FOLLOW_UP_PREFIX: &str = "follow-up";

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the nodes and the relay in DIR (new or empty) instead of a
    /// temporary directory, e.g. to inspect them with
    /// `careledger --home DIR/hospital-a.example ledger verify care`.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// How many of the 13 bulk patients hospital A imports (the HIV Bundle adds one).
    #[arg(long, value_name = "N", default_value_t = 13, value_parser = clap::value_parser!(u16).range(1..))]
    patients: u16,
}

/// The workspace directory, removed at the end unless kept.
enum Workspace {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Workspace {
    fn prepare(keep: Option<PathBuf>) -> Result<Self> {
        match keep {
            None => Ok(Workspace::Temporary(
                tempfile::Builder::new()
                    .prefix("careledger-demo-")
                    .tempdir()
                    .context("cannot create a temporary directory")?,
            )),
            Some(dir) => {
                if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
                    bail!(
                        "--keep {} is not empty; give a new or empty directory",
                        dir.display()
                    );
                }
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                Ok(Workspace::Kept(dir))
            }
        }
    }

    fn path(&self) -> &Path {
        match self {
            Workspace::Temporary(dir) => dir.path(),
            Workspace::Kept(dir) => dir,
        }
    }
}

/// One institution: a node in `<workspace>/<name>` with its own storage key,
/// laid out like `careledger init` does.
fn institution(workspace: &Path, name: &str) -> Result<Node> {
    let home = workspace.join(name);
    std::fs::create_dir_all(&home)?;
    let (key, text) = generate_storage_key();
    write_storage_key_file(&home.join(STORAGE_KEY_FILE), &text)?;
    create_node(&home, name, &key)
}

/// Sync every node of the care network until a whole round changes nothing.
/// Returns each node's totals.
fn settle(
    nodes: &mut [&mut Node],
    relay: &mut dyn Relay,
    network: &NetworkId,
    progress: &MultiProgress,
) -> Result<Vec<SyncSummary>> {
    settle_network(nodes, relay, network, LABEL, progress)
}

/// Sync every node of the network labelled `label` until a whole round
/// changes nothing. Returns each node's totals.
fn settle_network(
    nodes: &mut [&mut Node],
    relay: &mut dyn Relay,
    network: &NetworkId,
    label: &str,
    progress: &MultiProgress,
) -> Result<Vec<SyncSummary>> {
    let mut totals: Vec<SyncSummary> = nodes
        .iter()
        .map(|_| SyncSummary::new(network, label))
        .collect();
    for _ in 0..SETTLE_ROUNDS {
        let mut quiet = true;
        for (node, total) in nodes.iter_mut().zip(totals.iter_mut()) {
            let label = format!("{label} ({})", node.identity().name());
            let round = sync_network(node, relay, network, &label, progress)?;
            quiet &= !round.changed();
            merge(total, round);
        }
        if quiet {
            return Ok(totals);
        }
    }
    bail!("the network `{label}` did not settle after {SETTLE_ROUNDS} sync rounds")
}

/// Every chart of a node, exported canonically, for byte comparison.
fn charts(node: &mut Node, network: &NetworkId) -> Result<Vec<(String, String)>> {
    let mut patients = node.patients(network)?;
    patients.sort();
    patients
        .into_iter()
        .map(|patient| {
            let bundle = node.export_patient(network, &patient, ExportFormat::Bundle)?;
            Ok((patient, bundle))
        })
        .collect()
}

/// How many charts differ between two replicas (or are missing on one side).
fn differing(a: &[(String, String)], b: &[(String, String)]) -> usize {
    let mut differ = a.len().abs_diff(b.len());
    differ += a.iter().zip(b).filter(|(x, y)| x != y).count();
    differ
}

fn import(
    node: &mut Node,
    network: &NetworkId,
    name: &str,
    bytes: &[u8],
    progress: &MultiProgress,
) -> Result<(ImportReport, Duration)> {
    let bar = spinner(
        progress,
        format!("{} imports {name}", node.identity().name()),
    );
    let started = Instant::now();
    let result = node.import_fhir(network, name, bytes, now_ms());
    bar.finish_and_clear();
    let report = result.with_context(|| format!("import of {name} failed"))?;
    Ok((report, started.elapsed()))
}

/// One author's encoded entries, split at a chain position.
struct Split {
    /// Entries with `seq <= boundary`.
    before: Vec<Vec<u8>>,
    /// Entries with `seq > boundary`.
    after: Vec<Vec<u8>>,
}

/// `author`'s entries in `node`'s ledger, split at `boundary`.
fn entries_of(node: &Node, network: &NetworkId, author: &AuthorId, boundary: u64) -> Result<Split> {
    let mut split = Split {
        before: Vec::new(),
        after: Vec::new(),
    };
    for bytes in node.ledger_entries(network)? {
        let entry = Entry::decode(&bytes).context("a stored entry does not decode")?;
        if entry.header.author != *author {
            continue;
        }
        if entry.header.seq > boundary {
            split.after.push(bytes);
        } else {
            split.before.push(bytes);
        }
    }
    Ok(split)
}

fn readable(node: &mut Node, network: &NetworkId, entries: &[Vec<u8>]) -> usize {
    entries
        .iter()
        .filter(|bytes| node.can_read_entry(network, bytes).is_ok())
        .count()
}

fn head_seq(node: &Node, network: &NetworkId, author: &AuthorId) -> Result<u64> {
    Ok(node
        .heads(network)?
        .into_iter()
        .find(|h| h.author == *author)
        .map(|h| h.seq)
        .unwrap_or(0))
}

/// Run the story.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let workspace = Workspace::prepare(args.keep)?;
    let dir = workspace.path().to_path_buf();
    let progress = multi_progress(context.quiet);
    let mut story = Story::new(context.json);
    let mut relay = open_local_relay(&dir.join(RELAY_FILE))?;
    story
        .say("careledger demo: three institutions share patient records through one local relay, then a study uses them as consent permits")?;
    match &workspace {
        Workspace::Temporary(_) => {
            story.say("(a temporary directory, removed at the end; --keep DIR keeps it)")?
        }
        Workspace::Kept(path) => {
            story.say(format!("(nodes and relay kept in {})", path.display()))?
        }
    }
    story.set(
        "workspace",
        match &workspace {
            Workspace::Kept(path) => Some(path.display().to_string()),
            Workspace::Temporary(_) => None,
        },
    );

    // 1. Identities and the care network.
    story.step("Three institutions form a care network")?;
    let mut a = institution(&dir, HOSPITAL_A)?;
    let mut b = institution(&dir, HOSPITAL_B)?;
    let mut lab = institution(&dir, LAB)?;
    let mut nodes_json = Vec::new();
    for node in [&a, &b, &lab] {
        let identity = node.identity();
        story.line(format!(
            "{:<19} author {}…  fingerprint {}",
            identity.name(),
            short(&identity.author_id().to_hex(), 16),
            identity.fingerprint()
        ))?;
        nodes_json.push(json!({
            "name": identity.name(),
            "author": identity.author_id().to_hex(),
            "fingerprint": identity.fingerprint(),
        }));
    }
    story.set("nodes", nodes_json);
    let net = a
        .create_network(LABEL)
        .context("cannot create the network")?;
    story.set("network", net.to_hex());
    story.line(format!(
        "{HOSPITAL_A} created network `{LABEL}` ({})",
        net.to_hex()
    ))?;
    for joiner in [&mut b, &mut lab] {
        let key_package = joiner.key_package()?;
        a.invite(&net, &key_package).context("invite failed")?;
        sync_until_committed(&mut a, &mut relay, &net, LABEL, &progress)?;
        join_from_relay(joiner, &mut relay, &net, LABEL, now_ms())
            .with_context(|| format!("{} could not join", joiner.identity().name()))?;
        story.line(format!(
            "{HOSPITAL_A} invited {} with its key package: epoch {}; it joined from the relay",
            joiner.identity().name(),
            a.epoch(&net)?
        ))?;
    }
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, &progress)?;
    let epochs = [a.epoch(&net)?, b.epoch(&net)?, lab.epoch(&net)?];
    let rosters = [a.members(&net)?, b.members(&net)?, lab.members(&net)?];
    let formed = rosters.iter().all(|r| r.len() == 3 && *r == rosters[0])
        && epochs.iter().all(|e| *e == epochs[0]);
    story.fact("epoch", epochs[0]);
    story.fact("members", rosters[0].len());
    story.check(
        "network_formed",
        formed,
        format!("all three see the same 3 members at epoch {}", epochs[0]),
        || {
            format!(
                "epochs {epochs:?}, roster sizes {:?}",
                rosters.iter().map(Vec::len).collect::<Vec<_>>()
            )
        },
    )?;
    story.end_step()?;

    // 2. Hospital A imports the Synthea data; everyone syncs.
    story.step("Hospital A imports Synthea FHIR data")?;
    let bulk_ids = data::bulk_patient_ids()?;
    let selected: BTreeSet<String> = bulk_ids
        .iter()
        .take(usize::from(args.patients))
        .cloned()
        .collect();
    let files: Vec<(&DataFile, std::borrow::Cow<'static, [u8]>)> = BULK
        .iter()
        .map(|file| (file, true))
        .chain(std::iter::once((&HIV_BUNDLE, false)))
        .map(|(file, is_bulk)| {
            let bytes = if is_bulk && selected.len() < bulk_ids.len() {
                data::select_patients(file, &selected)?.into()
            } else {
                file.bytes.into()
            };
            Ok((file, bytes))
        })
        .collect::<Result<_>>()?;
    let mut totals = ImportReport::default();
    let mut import_time = Duration::ZERO;
    for (file, bytes) in &files {
        if bytes.is_empty() {
            story.line(format!("{:<46} none for the selected patients", file.name))?;
            continue;
        }
        let (report, elapsed) = import(&mut a, &net, file.name, bytes, &progress)?;
        story.line(format!(
            "{:<46} {:>5} resources {:>3} {:<8} {:>3} entries  {}",
            file.name,
            report.resources,
            report.patients,
            if report.patients == 1 {
                "patient"
            } else {
                "patients"
            },
            report.entries,
            seconds(elapsed)
        ))?;
        totals.resources += report.resources;
        totals.entries += report.entries;
        import_time += elapsed;
    }
    let patients_a = a.patients(&net)?.len();
    story.line(format!(
        "total: {} resources for {} patients in {} ledger entries, {} ({} resources/s)",
        totals.resources,
        patients_a,
        totals.entries,
        seconds(import_time),
        rate(totals.resources, import_time)
    ))?;
    story.fact("resources", totals.resources);
    story.fact("patients", patients_a);
    story.fact("entries", totals.entries);
    story.fact("import_seconds", import_time.as_secs_f64());
    story.fact("resources_per_second", rate(totals.resources, import_time));
    let sync_started = Instant::now();
    let synced = settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, &progress)?;
    story.line(format!(
        "synced: {HOSPITAL_B} accepted {} entries, {LAB} accepted {} ({})",
        synced[1].accepted,
        synced[2].accepted,
        seconds(sync_started.elapsed())
    ))?;
    let charts_a = charts(&mut a, &net)?;
    let (charts_b, charts_lab) = (charts(&mut b, &net)?, charts(&mut lab, &net)?);
    let identical = patients_a > 0 && charts_a == charts_b && charts_a == charts_lab;
    story.check(
        "import_replicated",
        identical,
        format!("all three replicas export byte-identical charts for {patients_a} patients"),
        || {
            format!(
                "{} chart(s) differ at {HOSPITAL_B}, {} at {LAB}",
                differing(&charts_a, &charts_b),
                differing(&charts_a, &charts_lab)
            )
        },
    )?;
    story.end_step()?;

    // 3. The lab adds results.
    story.step("The lab adds results for patients of the network")?;
    let mut patients = lab.patients(&net)?;
    patients.sort();
    let samples = 6;
    let assignments: Vec<(String, usize)> = (0..samples)
        .map(|n| (patients[n % patients.len()].clone(), n))
        .collect();
    let touched: BTreeSet<&String> = assignments.iter().map(|(p, _)| p).collect();
    let (results, codes) = data::observations(&assignments, LAB_PREFIX)?;
    let (report, elapsed) = import(&mut lab, &net, "lab-results.ndjson", &results, &progress)?;
    story.line(format!(
        "{LAB} imported {} Observations (LOINC {}) for {} patients: {} entries, {}",
        report.resources,
        codes.join(", "),
        touched.len(),
        report.entries,
        seconds(elapsed)
    ))?;
    story.fact("observations", report.resources);
    story.fact("loinc", &codes);
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, &progress)?;
    let mut seen = [0usize; 3];
    for patient in &touched {
        for (count, node) in seen.iter_mut().zip([&mut a, &mut b, &mut lab]) {
            let ndjson = node.export_patient(&net, patient, ExportFormat::Ndjson)?;
            *count += data::count_observations(&ndjson, &format!("{LAB_PREFIX}-"));
        }
    }
    let charts_after = [
        charts(&mut a, &net)?,
        charts(&mut b, &net)?,
        charts(&mut lab, &net)?,
    ];
    let results_shared = seen.iter().all(|n| *n == samples)
        && charts_after[0] == charts_after[1]
        && charts_after[0] == charts_after[2];
    story.check(
        "lab_results_replicated",
        results_shared,
        format!(
            "both hospitals hold all {samples} results; all charts identical on the three nodes"
        ),
        || format!("results seen at A, B, lab: {seen:?}"),
    )?;
    story.end_step()?;

    // 4. Concurrent offline edits of one Patient.
    story.step("Hospitals A and B edit one Patient concurrently while offline")?;
    let patient = bulk_ids[0].clone();
    let telecom = json!([{ "system": "phone", "value": "555-0100", "use": "work" }]);
    let marital = json!({ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
        "code": "M"
    }] });
    let now = now_ms();
    a.edit_member(
        &net,
        &patient,
        "Patient",
        &patient,
        "telecom",
        Some(&telecom.to_string()),
        now,
    )?;
    a.edit_member(
        &net,
        &patient,
        "Patient",
        &patient,
        "active",
        Some("true"),
        now,
    )?;
    b.edit_member(
        &net,
        &patient,
        "Patient",
        &patient,
        "maritalStatus",
        Some(&marital.to_string()),
        now,
    )?;
    b.edit_member(
        &net,
        &patient,
        "Patient",
        &patient,
        "active",
        Some("false"),
        now,
    )?;
    story.line(format!("patient {patient}"))?;
    story.line(format!(
        "{HOSPITAL_A} sets Patient.telecom and sets Patient.active"
    ))?;
    story.line(format!(
        "{HOSPITAL_B} sets Patient.maritalStatus and sets Patient.active (another value)"
    ))?;
    settle(&mut [&mut a, &mut b, &mut lab], &mut relay, &net, &progress)?;
    story.line("then both sync")?;
    let bundle_a = a.export_patient(&net, &patient, ExportFormat::Bundle)?;
    let bundle_b = b.export_patient(&net, &patient, ExportFormat::Bundle)?;
    story.check(
        "concurrent_exports_identical",
        bundle_a == bundle_b,
        "both replicas export byte-identical charts",
        || {
            format!(
                "exports differ ({} vs {} bytes)",
                bundle_a.len(),
                bundle_b.len()
            )
        },
    )?;
    let kept_telecom = data::patient_member(&bundle_a, &patient, "telecom") == Some(telecom);
    let kept_marital = data::patient_member(&bundle_a, &patient, "maritalStatus") == Some(marital);
    story.check(
        "different_member_edits_survived",
        kept_telecom && kept_marital,
        "A's telecom and B's maritalStatus both survived",
        || format!("telecom kept: {kept_telecom}, maritalStatus kept: {kept_marital}"),
    )?;
    let conflict_on = |node: &mut Node| -> Result<usize> {
        Ok(node
            .conflicts(&net, &patient)?
            .iter()
            .filter(|c| c.resource_type == "Patient" && c.id == patient && c.member == "active")
            .map(|c| c.candidates)
            .max()
            .unwrap_or(0))
    };
    let (candidates_a, candidates_b) = (conflict_on(&mut a)?, conflict_on(&mut b)?);
    let active_a = data::patient_member(&bundle_a, &patient, "active");
    let active_b = data::patient_member(&bundle_b, &patient, "active");
    story.check(
        "same_member_conflict_reported",
        candidates_a >= 2 && candidates_a == candidates_b && active_a == active_b,
        format!("both sides report the conflict on Patient.active ({candidates_a} candidates) and show the same winner"),
        || format!("candidates at A {candidates_a}, at B {candidates_b}; same winner: {}", active_a == active_b),
    )?;
    story.end_step()?;

    // 5. Removal of the lab, then more writes by A.
    story.step("Hospital A removes the lab, then keeps writing")?;
    let a_author = a.identity().author_id();
    let lab_author = lab.identity().author_id();
    let boundary = head_seq(&a, &net, &a_author)?;
    a.remove(&net, &lab_author)
        .context("cannot remove the lab")?;
    sync_until_committed(&mut a, &mut relay, &net, LABEL, &progress)?;
    let removal_epoch = a.epoch(&net)?;
    story.line(format!(
        "{HOSPITAL_A} removed {LAB}: epoch {removal_epoch}, record keys rotated"
    ))?;
    let lab_sync = sync_network(&mut lab, &mut relay, &net, LABEL, &progress)?;
    settle(&mut [&mut a, &mut b], &mut relay, &net, &progress)?;
    if lab_sync.removed {
        story.line(format!("{LAB} synced and learned it was removed"))?;
    }
    let mut patients = a.patients(&net)?;
    patients.sort();
    let follow_ups: Vec<(String, usize)> = patients.iter().cloned().zip(0..).collect();
    let (vitals, _) = data::observations(&follow_ups, FOLLOW_UP_PREFIX)?;
    let (report, _) = import(&mut a, &net, "follow-up-vitals.ndjson", &vitals, &progress)?;
    let mut edits = 0usize;
    for round in 0..ENTRIES_AFTER_REMOVAL * 4 {
        if report.entries + edits >= ENTRIES_AFTER_REMOVAL + 4 {
            break;
        }
        let patient = &patients[round % patients.len()];
        let value = if (round / patients.len()) % 2 == 0 {
            "true"
        } else {
            "false"
        };
        if a.edit_member(
            &net,
            patient,
            "Patient",
            patient,
            "active",
            Some(value),
            now_ms(),
        )? {
            edits += 1;
        }
    }
    let Split { before, after } = entries_of(&a, &net, &a_author, boundary)?;
    story.line(format!(
        "{HOSPITAL_A} wrote {} entries after the removal: a key rotation, {} follow-up Observations ({} entries), {edits} edits",
        after.len(),
        report.resources,
        report.entries
    ))?;
    settle(&mut [&mut a, &mut b], &mut relay, &net, &progress)?;
    let lab_late = sync_network(&mut lab, &mut relay, &net, LABEL, &progress)?;
    let first_reason = lab_late
        .rejections
        .first()
        .cloned()
        .unwrap_or_else(|| "none".into());
    story.line(format!(
        "{LAB} synced again: fetched {} messages, accepted {}, rejected {} (first: {first_reason})",
        lab_late.fetched, lab_late.accepted, lab_late.rejected
    ))?;
    let removed =
        !lab.is_member(&net)? && a.members(&net)?.len() == 2 && b.members(&net)?.len() == 2;
    story.check(
        "lab_removed",
        removed,
        format!("{LAB} is no longer a member; A and B see 2 members"),
        || "the lab still looks like a member somewhere".into(),
    )?;
    let lab_after = readable(&mut lab, &net, &after);
    let lab_before = readable(&mut lab, &net, &before);
    let b_after = readable(&mut b, &net, &after);
    let lab_store: BTreeSet<Vec<u8>> = lab.ledger_entries(&net)?.into_iter().collect();
    let lab_stored_after = after.iter().filter(|e| lab_store.contains(*e)).count();
    story.fact("entries_before_removal", before.len());
    story.fact("entries_after_removal", after.len());
    story.fact("lab_readable_after", lab_after);
    story.fact("lab_readable_before", lab_before);
    story.check(
        "lab_reads_nothing_after_removal",
        after.len() >= ENTRIES_AFTER_REMOVAL && lab_after == 0 && lab_stored_after == 0,
        format!(
            "{LAB} can open 0 of the {} entries A wrote after the removal (and stored none)",
            after.len()
        ),
        || {
            format!(
                "{lab_after} of {} readable, {lab_stored_after} stored",
                after.len()
            )
        },
    )?;
    story.check(
        "lab_reads_everything_before_removal",
        !before.is_empty() && lab_before == before.len(),
        format!(
            "{LAB} can still open all {} entries A wrote before it",
            before.len()
        ),
        || format!("only {lab_before} of {} readable", before.len()),
    )?;
    story.check(
        "remaining_member_reads_after_removal",
        b_after == after.len(),
        format!("{HOSPITAL_B} can open all {} of them", after.len()),
        || format!("only {b_after} of {} readable", after.len()),
    )?;
    story.end_step()?;

    // 6. Audit.
    story.step("Every ledger verifies")?;
    let mut clean = true;
    let mut verified = Vec::new();
    for node in [&mut a, &mut b, &mut lab] {
        let name = node.identity().name().to_owned();
        let v = verification(node, &net)?;
        story.line(format!(
            "{name:<19} {:>3} entries from {} authors: {} signatures, {} seals, {} record seals ok; {}",
            v.report.entries,
            v.report.authors,
            v.report.signatures_ok,
            v.report.seals_ok,
            v.report.record_seals_ok,
            if v.clean { "clean" } else { "NOT CLEAN" }
        ))?;
        clean &= v.clean;
        verified.push((name, v));
    }
    story.fact(
        "ledgers",
        verified
            .iter()
            .map(|(n, v)| json!({ "node": n, "report": v }))
            .collect::<Vec<_>>(),
    );
    story.check(
        "ledgers_verify_clean",
        clean,
        "no problem, fork or flagged author on any node",
        || {
            verified
                .iter()
                .filter(|(_, v)| !v.clean)
                .map(|(n, v)| {
                    format!(
                        "{n}: {}",
                        v.problem_lines()
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "forks or flagged authors".into())
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    )?;
    let (final_a, final_b) = (charts(&mut a, &net)?, charts(&mut b, &net)?);
    story.check(
        "final_replicas_identical",
        final_a == final_b,
        format!("{HOSPITAL_A} and {HOSPITAL_B} still export identical charts"),
        || format!("{} chart(s) differ", differing(&final_a, &final_b)),
    )?;
    story.end_step()?;

    study::run(
        &mut story,
        study::Care {
            dir: &dir,
            relay: &mut relay,
            hospital: &mut a,
            network: &net,
            progress: &progress,
        },
    )?;

    federated::run(&mut story, &dir, &mut relay, &progress)?;

    claims::run(
        &mut story,
        claims::Claims {
            dir: &dir,
            relay: &mut relay,
            hospital: &mut a,
            care: &net,
            progress: &progress,
        },
    )?;

    story.finish()?;
    if let Workspace::Kept(path) = &workspace {
        story.say(format!(
            "Inspect a node: careledger --home {} ledger verify {LABEL}",
            path.join(HOSPITAL_A).display()
        ))?;
    }
    Ok(if story.all_held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
