//! The `careledger` binary, run as a person or a script would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;
use serde_json::Value;

fn careledger() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_careledger"));
    // Tests choose every location themselves.
    command
        .env_remove("CARELEDGER_HOME")
        .env_remove("CARELEDGER_RELAY")
        .env_remove("CARELEDGER_STORAGE_KEY");
    command
}

fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/fhir")
        .join(relative)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run with `--home <home>`; the relay defaults to `<home>/../relay.sqlite`.
fn at(home: &Path, args: &[&str]) -> Output {
    careledger()
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Run and insist on success.
fn ok(home: &Path, args: &[&str]) -> Output {
    let output = at(home, args);
    assert!(
        output.status.success(),
        "careledger {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// Run with `--json` and parse stdout.
fn json(home: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = ok(home, &all);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "careledger {args:?}: stdout is not JSON ({e}):\n{}",
            text(&output.stdout)
        )
    })
}

/// Replace what changes from run to run (times, rates, keys, ids, hashes,
/// the last digits of a prediction's probability).
fn redact(output: &str) -> String {
    let rules = [
        (r"\d+\.\d{2} s\b", "[time]"),
        (r"\d+ resources/s", "[rate] resources/s"),
        (r"([0-9a-f]{4} ){7}[0-9a-f]{4}", "[fingerprint]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[patient]",
        ),
        // Exactly the CLI's one instant form: any other would show unredacted.
        (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "[instant]"),
        (r"\b[0-9a-f]{64}\b", "[hash]"),
        (r"\b[0-9a-f]{32}\b", "[network]"),
        (r"author [0-9a-f]{16}…", "author [author]…"),
        (r"\b[0-9a-f]{16}…", "[id]…"),
        (r"\b[0-9a-f]{12}\b", "[id]"),
        (
            r"probability of class 1: \d\.\d{4}",
            "probability of class 1: [p]",
        ),
    ];
    rules
        .iter()
        .fold(output.to_owned(), |text, (pattern, with)| {
            Regex::new(pattern)
                .unwrap()
                .replace_all(&text, *with)
                .into_owned()
        })
}

#[test]
fn help_lists_every_command() {
    let output = careledger().arg("--help").output().unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!("help", text(&output.stdout));
}

#[test]
fn demo_prints_a_readable_account() {
    let scratch = tempfile::tempdir().unwrap();
    let output = careledger()
        .current_dir(scratch.path())
        .arg("demo")
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed ({:?}):\n{stdout}\n{}",
        output.status.code(),
        text(&output.stderr)
    );
    // No patient names: every name in the data is a Synthea name with digits.
    assert!(
        !Regex::new(r"[A-Z][a-z]+\d{2,3}").unwrap().is_match(&stdout),
        "{stdout}"
    );
    insta::assert_snapshot!("demo", redact(&stdout));
}

#[test]
fn demo_json_summary_holds_every_check_and_kept_nodes_work_with_the_cli() {
    let scratch = tempfile::tempdir().unwrap();
    let kept = scratch.path().join("kept");
    let output = careledger()
        .args(["--json", "--quiet", "demo", "--patients", "4", "--keep"])
        .arg(&kept)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["ok"], true, "{summary:#}");
    let checks = summary["checks"].as_object().unwrap();
    assert!(checks.len() >= 12, "{checks:?}");
    for (name, held) in checks {
        assert_eq!(held, true, "check {name} failed: {summary:#}");
    }
    assert!(summary["failures"].as_array().unwrap().is_empty());
    let step2 = &summary["steps"][1]["facts"];
    assert_eq!(step2["patients"], 5, "4 bulk patients and the HIV Bundle's");
    let step5 = &summary["steps"][4]["facts"];
    assert!(step5["entries_after_removal"].as_u64().unwrap() >= 20);
    assert_eq!(step5["lab_readable_after"], 0);
    assert_eq!(
        step5["lab_readable_before"],
        step5["entries_before_removal"]
    );

    // The kept directory is laid out like `init` homes beside one relay file.
    let a = kept.join("hospital-a.example");
    let verify = json(&a, &["ledger", "verify", "care"]);
    assert_eq!(verify["clean"], true);
    let lab = kept.join("lab.example");
    let networks = json(&lab, &["network", "list"]);
    assert_eq!(networks[0]["active"], false, "the lab was removed");

    // The study half: the researcher's audit and the hospital's consents.
    let study = &summary["steps"][9]["facts"];
    assert!(study["test_accuracy"].as_f64().unwrap() >= 0.979, "{study}");
    assert_eq!(study["dataset_size"], 569);
    let researcher = kept.join("research.example");
    let audit = json(&researcher, &["audit", "--network", "study"]);
    let kinds: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["model_card", "decision", "key_withheld", "model_card"],
        "{audit:#}"
    );
    assert_eq!(audit[0]["entry"], study["model_card"]);
    assert_eq!(audit[0]["card"]["dataset"]["size"], 569);
    assert_eq!(audit[3]["card"]["dataset"]["size"], 568);
    assert_eq!(audit[2]["reason"], "consent revoked");
    let hospital = kept.join("hospital-a.example");
    // The phone's patient revoked, then asked to be erased (step 14): the
    // chart, consents included, can no longer be read anywhere.
    let erased = expect_code(
        &hospital,
        &[
            "consent",
            "show",
            "--network",
            "care",
            "--patient",
            "wdbc-0",
        ],
        1,
    );
    assert!(
        text(&erased.stderr).contains("the patient's chart was erased"),
        "{}",
        text(&erased.stderr)
    );
    let other = json(
        &hospital,
        &[
            "consent",
            "show",
            "--network",
            "care",
            "--patient",
            "wdbc-1",
        ],
    );
    assert_eq!(other["consents"][0]["recorded_by"]["kind"], "on_behalf");
    assert_eq!(
        other["consents"][0]["recorded_by"]["name"],
        "hospital-a.example"
    );

    // The claims chapter: the insurer adjudicated every claim by itself,
    // and the kept hospital re-checks every outcome through the CLI.
    let adjudicated = &summary["steps"][18]["facts"];
    assert_eq!(
        adjudicated["outcomes"],
        summary["steps"][17]["facts"]["claims"]
    );
    let verified = json(&hospital, &["rules", "verify", "--network", "claims"]);
    assert_eq!(
        verified["confirmed"], adjudicated["outcomes"],
        "{verified:#}"
    );
    assert_eq!(verified["mismatches"], 0);
    let insurer = kept.join("insurer.example");
    let sets = json(&insurer, &["rules", "list", "--network", "claims"]);
    assert_eq!(sets[0]["active"], true);
    assert_eq!(sets[0]["endorsements"].as_array().unwrap().len(), 2);
}

#[test]
fn two_nodes_share_records_through_the_cli() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let created = json(&a, &["init", "--name", "hospital-a.example"]);
    assert_eq!(created["name"], "hospital-a.example");
    assert_eq!(created["author"].as_str().unwrap().len(), 64);
    ok(&b, &["init", "--name", "hospital-b.example"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(a.join("storage.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let key_package = root.path().join("b.keypackage");
    ok(&b, &["key-package", "--out", key_package.to_str().unwrap()]);
    let network = json(&a, &["network", "create", "care"]);
    let id = network["network"].as_str().unwrap().to_owned();
    assert_eq!(network["epoch"], 0);
    let invited = json(
        &a,
        &[
            "network",
            "invite",
            "care",
            "--key-package",
            key_package.to_str().unwrap(),
        ],
    );
    assert_eq!(invited["epoch"], 1);
    assert_eq!(invited["changed"][0]["name"], "hospital-b.example");
    let joined = json(&b, &["network", "join", &id, "--label", "care"]);
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);

    let patients_file = data("bulk-10-patients/Patient.000.ndjson");
    let conditions_file = data("bulk-10-patients/Condition.000.ndjson");
    let imported = json(
        &a,
        &[
            "import",
            "care",
            patients_file.to_str().unwrap(),
            conditions_file.to_str().unwrap(),
        ],
    );
    assert_eq!(imported["total"]["resources"], 13 + 555);
    assert_eq!(imported["total"]["patients"], 13);
    ok(&a, &["sync"]);
    let synced = json(&b, &["sync"]);
    assert_eq!(synced[0]["accepted"], imported["total"]["entries"]);
    assert_eq!(synced[0]["rejected"], 0);

    let patients = json(&b, &["patients", "care"]);
    assert_eq!(patients.as_array().unwrap().len(), 13);
    assert_eq!(patients, json(&a, &["patients", "care"]));
    let patient = patients[0].as_str().unwrap();
    for format in ["bundle", "ndjson"] {
        let from_a = ok(&a, &["export", "care", patient, "--format", format]).stdout;
        let from_b = ok(&b, &["export", "care", patient, "--format", format]).stdout;
        assert!(from_a.len() > 100);
        assert_eq!(from_a, from_b, "{format} exports differ");
    }
    let doc = root.path().join("chart.automerge");
    ok(
        &b,
        &[
            "export-doc",
            "care",
            patient,
            "--out",
            doc.to_str().unwrap(),
        ],
    );
    assert!(std::fs::metadata(&doc).unwrap().len() > 0);
    for home in [&a, &b] {
        let verified = ok(home, &["ledger", "verify", "care"]);
        assert!(text(&verified.stdout).contains("clean"));
    }
    let heads = json(&b, &["ledger", "heads", &id[..8]]);
    assert_eq!(heads[0]["name"], "hospital-a.example");

    // A relay that flips a byte of a stored entry cannot make B accept it.
    let before = json(&b, &["ledger", "verify", "care"]);
    ok(
        &a,
        &[
            "import",
            "care",
            data("bulk-10-patients/Immunization.000.ndjson")
                .to_str()
                .unwrap(),
        ],
    );
    ok(&a, &["sync"]);
    tamper_last_entry(&root.path().join("relay.sqlite"));
    let synced = ok(&b, &["sync", "care"]);
    let report = text(&synced.stdout);
    assert!(
        report.contains("rejected a message: signature check failed"),
        "{report}"
    );
    assert!(report.contains("were not stored"), "{report}");
    let after = json(&b, &["ledger", "verify", "care"]);
    assert_eq!(after["clean"], true);
    assert!(after["entries"].as_u64() >= before["entries"].as_u64());
    assert_eq!(json(&b, &["patients", "care"]), patients);
    ok(&b, &["export", "care", patient]);

    // Invalid FHIR: the whole batch is rejected, naming file, line and field.
    let bad = root.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        concat!(
            r#"{"resourceType":"Patient","id":"new-patient","gender":"female"}"#,
            "\n",
            r#"{"resourceType":"Observation","id":"not valid!","status":"final","subject":{"reference":"Patient/new-patient"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let rejected = at(&a, &["import", "care", bad.to_str().unwrap()]);
    assert_eq!(rejected.status.code(), Some(1));
    let error = text(&rejected.stderr);
    assert!(error.contains("bad.ndjson, line 2, field `id`"), "{error}");
    assert!(error.contains("rejected whole"), "{error}");
    assert_eq!(
        json(&a, &["patients", "care"]),
        patients,
        "nothing was stored"
    );

    // A wrong storage key is refused with a clear message.
    let wrong = root.path().join("wrong.key");
    std::fs::write(&wrong, "11".repeat(32)).unwrap();
    let refused = at(
        &a,
        &[
            "--storage-key-file",
            wrong.to_str().unwrap(),
            "patients",
            "care",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    let error = text(&refused.stderr);
    assert!(error.contains("wrong storage key"), "{error}");
    assert!(!error.contains(&"11".repeat(32)), "key material in {error}");
    let malformed = careledger()
        .arg("--home")
        .arg(&a)
        .env("CARELEDGER_STORAGE_KEY", "not-a-key")
        .args(["patients", "care"])
        .output()
        .unwrap();
    assert_eq!(malformed.status.code(), Some(1));
    let error = text(&malformed.stderr);
    assert!(
        error.contains("64 hex characters") && error.contains("CARELEDGER_STORAGE_KEY"),
        "{error}"
    );
    assert!(!error.contains("not-a-key"));
}

/// Flip one byte inside the last entry message stored in a relay file.
fn tamper_last_entry(relay: &Path) {
    let conn = rusqlite::Connection::open(relay).unwrap();
    let (seq, mut bytes): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT seq, bytes FROM messages WHERE substr(bytes, 1, 2) = x'0101' ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    conn.execute(
        "UPDATE messages SET bytes = ?1 WHERE seq = ?2",
        rusqlite::params![bytes, seq],
    )
    .unwrap();
}

#[test]
fn errors_explain_themselves() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("none");
    let missing = at(&home, &["patients", "care"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("run `careledger --home"),
        "{}",
        text(&missing.stderr)
    );

    let a = root.path().join("a");
    ok(&a, &["init", "--name", "a.example"]);
    let again = at(&a, &["init", "--name", "a.example"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"));
    // Nothing listens on port 1: a clear error after the retry window.
    let nats = at(
        &a,
        &["--relay", "nats://127.0.0.1:1", "--nats-retry", "1", "sync"],
    );
    assert_eq!(nats.status.code(), Some(1));
    let stderr = text(&nats.stderr);
    assert!(
        stderr.contains("cannot use the NATS relay nats://127.0.0.1:1")
            && stderr.contains("cannot reach the NATS server"),
        "{stderr}"
    );
    let unknown = at(&a, &["patients", "nope"]);
    assert!(text(&unknown.stderr).contains("no network `nope`"));
    let bad_name = at(&root.path().join("c"), &["init", "--name", "has space"]);
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(
        !root.path().join("c/storage.key").exists(),
        "nothing written for a bad name"
    );
}

/// The breast-cancer example rows `keep` selects, as FHIR NDJSON: each
/// patient's resources, then the line `consent` gives for the patient.
fn example_charts(
    keep: impl Fn(usize) -> bool,
    consent: impl Fn(&str) -> Option<String>,
) -> String {
    use careledger::analytics::example_data::BreastCancerData;
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ml/breast_cancer.csv"),
    )
    .unwrap();
    let data = BreastCancerData::parse(&csv).unwrap();
    let mut out = String::new();
    let mut current: Option<String> = None;
    let close = |patient: &Option<String>, out: &mut String| {
        if let Some(line) = patient.as_deref().and_then(&consent) {
            out.push_str(&line);
            out.push('\n');
        }
    };
    for line in data.to_ndjson().lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        let patient = match value["subject"]["reference"].as_str() {
            Some(reference) => reference.trim_start_matches("Patient/").to_owned(),
            None => value["id"].as_str().unwrap().to_owned(),
        };
        if !keep(BreastCancerData::row_of(&patient).unwrap()) {
            continue;
        }
        if current.as_deref() != Some(patient.as_str()) {
            close(&current, &mut out);
            current = Some(patient);
        }
        out.push_str(line);
        out.push('\n');
    }
    close(&current, &mut out);
    out
}

/// Exit code and stdout of a run expected to end with `code`.
fn expect_code(home: &Path, args: &[&str], code: i32) -> Output {
    let output = at(home, args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "careledger {args:?}\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

#[test]
fn consent_share_train_verify_predict_audit_through_the_cli() {
    use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
    use careledger::entry::AuthorId;
    use careledger::node::NetworkId;

    let root = tempfile::tempdir().unwrap();
    let (a, r) = (root.path().join("a"), root.path().join("r"));
    let created = json(&a, &["init", "--name", "hospital-a.example"]);
    let hospital = AuthorId::from_hex(created["author"].as_str().unwrap()).unwrap();
    let researcher = json(&r, &["init", "--name", "research.example"])["author"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&a, &["network", "create", "care"]);
    let study_id = json(&a, &["network", "create", "study"])["network"]
        .as_str()
        .unwrap()
        .to_owned();
    let study = NetworkId::from_hex(&study_id).unwrap();
    let key_package = root.path().join("r.keypackage");
    ok(&r, &["key-package", "--out", key_package.to_str().unwrap()]);
    ok(
        &a,
        &[
            "network",
            "invite",
            "study",
            "--key-package",
            key_package.to_str().unwrap(),
        ],
    );
    ok(&r, &["network", "join", &study_id, "--label", "study"]);

    // 114 example patients (every fifth row). wdbc-0 and wdbc-5 get their
    // consent through the CLI, wdbc-10 one whose mark misstates who wrote
    // it, wdbc-15 none, wdbc-20 one for claims only; the rest a research
    // consent recorded on their behalf by the hospital.
    let research = |patient: &str| {
        Consent::grant(
            &format!("research-{patient}"),
            patient,
            Grantee::Network(study.clone()),
            vec![Purpose::Research],
            vec![],
            None,
        )
        .unwrap()
    };
    let charts = example_charts(
        |row| row % 5 == 0,
        |patient| match patient {
            "wdbc-0" | "wdbc-5" | "wdbc-15" => None,
            "wdbc-10" => Some(research(patient).to_json()),
            "wdbc-20" => Some(
                Consent::grant(
                    "claims-wdbc-20",
                    patient,
                    Grantee::Network(study.clone()),
                    vec![Purpose::Claims],
                    vec![],
                    None,
                )
                .unwrap()
                .marked_for(&ConsentSource::OnBehalf { recorder: hospital })
                .to_json(),
            ),
            _ => Some(
                research(patient)
                    .marked_for(&ConsentSource::OnBehalf { recorder: hospital })
                    .to_json(),
            ),
        },
    );
    let charts_file = root.path().join("wdbc.ndjson");
    std::fs::write(&charts_file, charts).unwrap();
    let imported = json(&a, &["import", "care", charts_file.to_str().unwrap()]);
    assert_eq!(imported["total"]["patients"], 114);

    // Consent through the CLI.
    let granted = json(
        &a,
        &[
            "consent",
            "grant",
            "--network",
            "care",
            "--patient",
            "wdbc-0",
            "--consent-id",
            "research-wdbc-0",
            "--to-network",
            "study",
            "--purpose",
            "HRESCH",
            "--from",
            "2020-01-01",
            "--until",
            "2099-12-31",
        ],
    );
    assert_eq!(granted["changed"], false);
    let consent = &granted["consent"];
    assert_eq!(consent["status"], "active");
    assert_eq!(consent["rule"]["effect"], "permit");
    assert_eq!(consent["rule"]["purposes"], serde_json::json!(["HRESCH"]));
    assert_eq!(consent["rule"]["grantees"][0]["id"], study_id.as_str());
    assert_eq!(consent["rule"]["grantees"][0]["name"], "study");
    assert_eq!(consent["rule"]["from"], "2020-01-01T00:00:00.000Z");
    assert_eq!(consent["rule"]["until"], "2099-12-31T23:59:59.999Z");
    assert_eq!(consent["recorded_by"]["kind"], "on_behalf");
    assert_eq!(consent["mark_matches"], true);
    assert_eq!(consent["fhir"]["resourceType"], "Consent");
    let granted = ok(
        &a,
        &[
            "consent",
            "grant",
            "--network",
            "care",
            "--patient",
            "wdbc-5",
            "--consent-id",
            "research-wdbc-5",
            "--to-network",
            &study_id,
            "--purpose",
            "hresch",
            "--deny-class",
            "Condition",
        ],
    );
    insta::assert_snapshot!("consent_grant", redact(&text(&granted.stdout)));
    let shown = ok(
        &a,
        &[
            "consent",
            "show",
            "--network",
            "care",
            "--patient",
            "wdbc-0",
        ],
    );
    // The period, before the snapshot's redaction hides it: typed as dates,
    // printed as the first and last millisecond they stand for.
    assert!(
        text(&shown.stdout)
            .contains("from 2020-01-01T00:00:00.000Z until 2099-12-31T23:59:59.999Z"),
        "{}",
        text(&shown.stdout)
    );
    insta::assert_snapshot!("consent_show", redact(&text(&shown.stdout)));
    let misstated = text(
        &ok(
            &a,
            &[
                "consent",
                "show",
                "--network",
                "care",
                "--patient",
                "wdbc-10",
            ],
        )
        .stdout,
    );
    assert!(misstated.contains("recorded by  recorded on behalf by hospital-a.example"));
    assert!(
        misstated.contains("MISMATCH: the recorded-on-behalf mark does not name"),
        "{misstated}"
    );
    let none = text(
        &ok(
            &a,
            &[
                "consent",
                "show",
                "--network",
                "care",
                "--patient",
                "wdbc-15",
            ],
        )
        .stdout,
    );
    assert!(none.contains("has no consent"), "{none}");
    // Bad consents are refused before anything is written, naming the rule.
    let backwards = expect_code(
        &a,
        &[
            "consent",
            "grant",
            "--network",
            "care",
            "--patient",
            "wdbc-25",
            "--consent-id",
            "x",
            "--to-network",
            "study",
            "--purpose",
            "HRESCH",
            "--from",
            "2030-01-01",
            "--until",
            "2029-01-01",
        ],
        1,
    );
    assert!(text(&backwards.stderr).contains("start must not be after end"));
    let typo = expect_code(
        &a,
        &[
            "consent",
            "grant",
            "--network",
            "care",
            "--patient",
            "wdbc-25",
            "--consent-id",
            "x",
            "--to-network",
            "study",
            "--purpose",
            "HRESH",
        ],
        1,
    );
    assert!(text(&typo.stderr).contains("a purpose is HRESCH"));
    let stranger = expect_code(
        &a,
        &[
            "consent",
            "grant",
            "--network",
            "care",
            "--patient",
            "wdbc-25",
            "--consent-id",
            "x",
            "--to-node",
            "research.example",
            "--purpose",
            "HRESCH",
        ],
        1,
    );
    assert!(text(&stranger.stderr).contains("full author id"));
    // A node outside the network by its full author id: a patient's phone
    // linked to their chart, and a claims grant to one node.
    let phone = "ab".repeat(32);
    let chart = ["--network", "care", "--patient", "wdbc-25"];
    let link = |args: &[&str]| {
        let mut all = vec!["consent", "link-node"];
        all.extend_from_slice(&chart);
        all.extend_from_slice(args);
        json(&a, &all)
    };
    assert_eq!(link(&["--node", &phone])["linked"], true);
    assert_eq!(link(&["--node", &phone])["linked"], false);
    let mut grant = vec!["consent", "grant"];
    grant.extend_from_slice(&chart);
    grant.extend_from_slice(&[
        "--consent-id",
        "claims-wdbc-25",
        "--to-node",
        &phone,
        "--purpose",
        "CLMATTCH",
        "--class",
        "Observation",
    ]);
    let to_node = json(&a, &grant);
    let grantee = &to_node["consent"]["rule"]["grantees"][0];
    assert_eq!(grantee["kind"], "node");
    assert_eq!(grantee["id"], phone.as_str());
    assert_eq!(grantee["name"], Value::Null);
    assert_eq!(
        to_node["consent"]["rule"]["classes"],
        serde_json::json!(["Observation"])
    );
    let mut show = vec!["consent", "show"];
    show.extend_from_slice(&chart);
    let shown = json(&a, &show);
    assert_eq!(shown["consents"].as_array().unwrap().len(), 2);
    let withheld = json(
        &a,
        &[
            "consent",
            "show",
            "--network",
            "care",
            "--patient",
            "wdbc-5",
        ],
    );
    let exception = &withheld["consents"][0]["rule"]["exceptions"][0];
    assert_eq!(exception["effect"], "deny");
    assert_eq!(exception["classes"], serde_json::json!(["Condition"]));

    // Share into the study: what consent permits, nothing else.
    let shared = ok(&a, &["share", "--from", "care", "--to-network", "study"]);
    insta::assert_snapshot!("share", redact(&text(&shared.stdout)));
    let again = json(&a, &["share", "--from", "care", "--to-network", "study"]);
    assert_eq!(again["entries"], 0, "nothing changed: {again:#}");
    assert_eq!(again["patients"], 114);
    assert_eq!(again["patients_shared"], 112);
    assert_eq!(again["resources_withheld"], 2 * 32 + 1);
    assert_eq!(again["consent_ids"].as_array().unwrap().len(), 112);
    assert!(!again["consent_ids"]
        .as_array()
        .unwrap()
        .contains(&Value::from("claims-wdbc-20")));
    ok(&a, &["sync"]);
    ok(&r, &["sync"]);
    assert_eq!(
        json(&r, &["patients", "study"]).as_array().unwrap().len(),
        112
    );
    // wdbc-5's consent withholds Condition, which the spec's label reads:
    // the chart is shared but left out of datasets.

    // The researcher builds the dataset and trains on a fixed split.
    let built = json(
        &r,
        &[
            "dataset",
            "build",
            "--network",
            "study",
            "--example",
            "breast-cancer",
        ],
    );
    assert_eq!(built["rows"], 111);
    assert_eq!(built["columns"].as_array().unwrap().len(), 30);
    assert_eq!(built["excluded_by_consent"], 1);
    assert_eq!(built["commitment_size"], 111);
    let built_text = ok(
        &r,
        &[
            "dataset",
            "build",
            "--network",
            "study",
            "--example",
            "breast-cancer",
        ],
    );
    insta::assert_snapshot!("dataset_build", redact(&text(&built_text.stdout)));
    let split = root.path().join("split.txt");
    std::fs::write(
        &split,
        "# held-out rows\n0\n40\n80\n120\n160\n200\n240\n280\n320\n360\n400\n440\n480\n520\n560\n",
    )
    .unwrap();
    let out = |name: &str| root.path().join(name).to_str().unwrap().to_owned();
    let trained = ok(
        &r,
        &[
            "train",
            "--network",
            "study",
            "--example",
            "breast-cancer",
            "--model",
            "logistic",
            "--holdout-file",
            split.to_str().unwrap(),
            "--roc",
            &out("roc.svg"),
            "--calibration",
            &out("calibration.png"),
            "--card-out",
            &out("card.json"),
            "--model-out",
            &out("model.bin"),
        ],
    );
    let trained_text = text(&trained.stdout);
    let metrics_redacted =
        Regex::new(r"accuracy \d\.\d{5} \(\d+/15 held-out rows\), AUC \d\.\d{5}")
            .unwrap()
            .replace(
                &redact(&trained_text),
                "accuracy [accuracy] ([n]/15 held-out rows), AUC [auc]",
            )
            .replace(root.path().to_str().unwrap(), "[dir]");
    insta::assert_snapshot!("train", metrics_redacted);
    let card_id = Regex::new(r"model card\s+([0-9a-f]{64})")
        .unwrap()
        .captures(&trained_text)
        .unwrap()[1]
        .to_owned();
    assert!(std::fs::read_to_string(out("roc.svg"))
        .unwrap()
        .contains("<svg"));
    assert!(std::fs::read(out("calibration.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    let card: Value = serde_json::from_slice(&std::fs::read(out("card.json")).unwrap()).unwrap();
    assert_eq!(card["format"], "careledger.model_card");
    assert_eq!(card["test_rows"], 15);
    assert_eq!(card["training_rows"], 111 - 15);

    let kmeans = json(
        &r,
        &[
            "train",
            "--network",
            "study",
            "--example",
            "breast-cancer",
            "--model",
            "kmeans",
            "--k",
            "2",
            "--holdout",
            "0",
        ],
    );
    assert_eq!(kmeans["card"]["model"], "k_means");
    assert_eq!(kmeans["card"]["metrics"], Value::Null);
    assert_eq!(kmeans["card"]["consents_relied_on"], 111);
    assert_eq!(kmeans["consent_ids"].as_array().unwrap().len(), 111);
    let no_plot = expect_code(
        &r,
        &[
            "train",
            "--network",
            "study",
            "--example",
            "breast-cancer",
            "--model",
            "kmeans",
            "--roc",
            &out("k.svg"),
        ],
        1,
    );
    assert!(text(&no_plot.stderr).contains("k_means is not a classifier"));
    assert!(!root.path().join("k.svg").exists());
    let stray_k = expect_code(
        &r,
        &[
            "train",
            "--network",
            "study",
            "--example",
            "breast-cancer",
            "--model",
            "tree",
            "--k",
            "4",
        ],
        1,
    );
    assert!(text(&stray_k.stderr).contains("--k applies to --model kmeans only"));

    // A prediction is a decision entry.
    let predicted = json(
        &r,
        &[
            "predict",
            "--network",
            "study",
            "--card",
            &card_id[..10],
            "--patient",
            "wdbc-40",
        ],
    );
    assert_eq!(predicted["decision_entry"].as_str().unwrap().len(), 64);
    assert_eq!(predicted["decision"]["subject"], "wdbc-40");
    assert_eq!(predicted["decision"]["model_card"], card_id.as_str());
    assert_eq!(
        predicted["decision"]["consent_ids"],
        serde_json::json!(["research-wdbc-40"])
    );
    let features = vec!["0.5"; 30].join(",");
    let by_features = text(
        &ok(
            &r,
            &[
                "predict",
                "--network",
                "study",
                "--card",
                &card_id,
                "--features",
                &features,
            ],
        )
        .stdout,
    );
    assert!(
        by_features.contains("a feature vector (commitment"),
        "{by_features}"
    );
    let outsider = expect_code(
        &r,
        &[
            "predict",
            "--network",
            "study",
            "--card",
            &card_id,
            "--patient",
            "wdbc-15",
        ],
        1,
    );
    assert!(text(&outsider.stderr).contains("no record for that patient"));
    let claims = expect_code(
        &r,
        &[
            "predict",
            "--network",
            "study",
            "--card",
            &card_id,
            "--patient",
            "wdbc-40",
            "--purpose",
            "CLMATTCH",
        ],
        1,
    );
    assert!(text(&claims.stderr).contains("consent does not permit CLMATTCH use"));

    // The hospital re-verifies from its own replica; tampering is named.
    ok(&r, &["sync"]);
    ok(&a, &["sync"]);
    let verified = ok(
        &a,
        &["verify", "--network", "study", "--card", &card_id[..8]],
    );
    let verified = text(&verified.stdout);
    assert_eq!(verified.lines().last(), Some("confirmed"), "{verified}");
    assert!(verified.contains("written by research.example"));
    let from_files = [
        "verify",
        "--network",
        "study",
        "--card-file",
        &out("card.json"),
        "--model-file",
        &out("model.bin"),
        "--trainer",
        &researcher,
    ];
    let confirmed = json(&a, &from_files);
    assert_eq!(confirmed["confirmed"], true);
    assert_eq!(confirmed["outcome"], "confirmed");
    assert_eq!(confirmed["passed"].as_array().unwrap().len(), 7);
    let mut model = std::fs::read(out("model.bin")).unwrap();
    let last = model.len() - 2;
    model[last] ^= 1;
    std::fs::write(out("model.bin"), &model).unwrap();
    let tampered = expect_code(&a, &from_files, 2);
    let tampered = text(&tampered.stdout);
    assert_eq!(
        tampered.lines().last(),
        Some("mismatch at model bytes: the model bytes do not hash to the card's model hash"),
        "{tampered}"
    );
    model[last] ^= 1;
    std::fs::write(out("model.bin"), &model).unwrap();
    let mut forged = card.clone();
    forged["consent_ids"]
        .as_array_mut()
        .unwrap()
        .push(Value::from("research-made-up"));
    std::fs::write(out("card.json"), forged.to_string()).unwrap();
    let mut args = vec!["--json"];
    args.extend_from_slice(&from_files);
    let forged = serde_json::from_slice::<Value>(&expect_code(&a, &args, 2).stdout).unwrap();
    assert_eq!(forged["confirmed"], false);
    assert_eq!(forged["outcome"], "mismatch");
    assert_eq!(forged["step"], "consent");
    assert_eq!(
        forged["passed"],
        serde_json::json!(["model_bytes", "feature_spec", "checkpoint", "dataset"])
    );

    // The audit lists cards and decisions; JSON has the Provenance form.
    let audit = ok(&a, &["audit", "--network", "study"]);
    insta::assert_snapshot!(
        "audit",
        Regex::new(r"accuracy \d\.\d{5} \(\d+/15 held-out rows\), AUC \d\.\d{5}")
            .unwrap()
            .replace(
                &redact(&text(&audit.stdout)),
                "accuracy [accuracy] ([n]/15 held-out rows), AUC [auc]"
            )
    );
    let audit = json(&a, &["audit", "--network", "study"]);
    let kinds: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["model_card", "model_card", "decision", "decision"]);
    assert_eq!(audit[0]["entry"], card_id.as_str());
    assert_eq!(audit[0]["card"], card);
    assert!(audit[0]["model_bytes"].as_u64().unwrap() > 0);
    let decision = &audit[2];
    assert_eq!(decision["author_name"], "research.example");
    assert_eq!(decision["provenance"]["resourceType"], "Provenance");
    assert_eq!(decision["provenance"]["id"], decision["entry"]);
    assert_eq!(
        decision["provenance"]["target"][0]["reference"],
        "Patient/wdbc-40"
    );
    assert_eq!(
        decision["provenance"]["policy"],
        serde_json::json!(["urn:careledger:consent:research-wdbc-40"])
    );
    assert_eq!(audit[3]["decision"]["subject"], Value::Null);

    // Endorsing a model card re-verifies it first; with a 1-of-2 policy the
    // hospital's endorsement activates it, and the withdrawal deactivates.
    let policy = json(
        &a,
        &["rules", "policy", "--network", "study", "--quorum", "1"],
    );
    assert_eq!(policy["members"], 2);
    let endorse = [
        "rules",
        "endorse",
        "--network",
        "study",
        "--card",
        &card_id[..8],
    ];
    let endorsed = json(&a, &endorse);
    assert_eq!(endorsed["target_kind"], "model_card");
    assert_eq!(endorsed["target"], card_id.as_str());
    assert_eq!(endorsed["active"], true);
    let mut withdraw = endorse.to_vec();
    withdraw.push("--withdraw");
    let withdrawn = ok(&a, &withdraw);
    assert!(
        text(&withdrawn.stdout).contains("inactive: 0 of 1 endorsements"),
        "{}",
        text(&withdrawn.stdout)
    );
    let audit = json(&a, &["audit", "--network", "study"]);
    let endorsements: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "endorsement")
        .collect();
    assert_eq!(endorsements.len(), 2);
    assert_eq!(endorsements[0]["stance"], "endorse");
    assert_eq!(
        endorsements[0]["verified_steps"].as_array().unwrap().len(),
        7
    );
    assert_eq!(endorsements[1]["stance"], "withdraw");
    let policy_id = &policy["policy"].as_str().unwrap()[..8];
    let unknown = expect_code(
        &a,
        &["rules", "endorse", "--network", "study", "--card", "0000"],
        1,
    );
    assert!(text(&unknown.stderr).contains("no model card `0000`"));
    assert_eq!(
        json(
            &a,
            &[
                "rules",
                "endorse",
                "--network",
                "study",
                "--policy",
                policy_id
            ]
        )["target_kind"],
        "policy"
    );

    // Membership, then a revocation that cuts the study off.
    let included = json(
        &r,
        &[
            "membership",
            "--network",
            "study",
            "--card",
            &card_id,
            "--patient",
            "wdbc-0",
        ],
    );
    assert_eq!(included["membership"], "included");
    assert_eq!(included["commitment_matches_card"], true);
    assert!(!included["heads"].as_array().unwrap().is_empty());
    let absent = ok(
        &r,
        &[
            "membership",
            "--network",
            "study",
            "--card",
            &card_id,
            "--patient",
            "wdbc-15",
        ],
    );
    assert!(text(&absent.stdout).starts_with("not included: patient wdbc-15's chart"));
    ok(
        &a,
        &[
            "consent",
            "revoke",
            "--network",
            "care",
            "--patient",
            "wdbc-0",
            "--consent-id",
            "research-wdbc-0",
        ],
    );
    let cut = json(&a, &["share", "--from", "care", "--to-network", "study"]);
    assert_eq!(cut["charts_cut_off"], 1);
    assert_eq!(cut["patients_shared"], 111);
    ok(&a, &["sync"]);
    ok(&r, &["sync"]);
    let retrained = json(
        &r,
        &[
            "train",
            "--network",
            "study",
            "--example",
            "breast-cancer",
            "--model",
            "logistic",
            "--holdout-file",
            split.to_str().unwrap(),
        ],
    );
    assert_eq!(retrained["card"]["dataset"]["size"], 110);
    assert_eq!(retrained["card"]["excluded_by_consent"], 2);
    let excluded = json(
        &r,
        &[
            "membership",
            "--network",
            "study",
            "--card",
            retrained["card"]["entry"].as_str().unwrap(),
            "--patient",
            "wdbc-0",
        ],
    );
    assert_eq!(excluded["membership"], "not_included");
    assert_eq!(excluded["commitment_matches_card"], true);

    // One federated round with the hospital as the only site.
    let published = json(
        &a,
        &[
            "fl",
            "publish",
            "--source",
            "care",
            "--study",
            "study",
            "--round",
            "r1",
            "--example",
            "breast-cancer",
            "--model",
            "logistic",
        ],
    );
    assert_eq!(published["site"], "hospital-a.example");
    assert_eq!(published["dataset"]["size"], 110);
    ok(&a, &["sync"]);
    ok(&r, &["sync"]);
    let round = json(&r, &["fl", "round", "--study", "study", "--round", "r1"]);
    assert_eq!(round["card"]["origin"], "federated");
    assert_eq!(
        round["updates"],
        serde_json::json!([published["update_entry"]])
    );
    ok(&r, &["sync"]);
    ok(&a, &["sync"]);
    let federated = json(
        &a,
        &[
            "verify",
            "--network",
            "study",
            "--card",
            round["card"]["entry"].as_str().unwrap(),
        ],
    );
    assert_eq!(federated["confirmed"], true, "{federated:#}");
    let missing = expect_code(&r, &["fl", "round", "--study", "study", "--round", "r9"], 1);
    assert!(text(&missing.stderr).contains("no model updates"));
}

/// The claims rule set of `examples/data/rules`, executed by `insurer`.
fn claims_rules(insurer: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rules/claims-adjudication.json");
    std::fs::read_to_string(path)
        .unwrap()
        .replace("INSURER", insurer)
        .into_bytes()
}

/// Invite the node at `home` into `network` (labelled the same at both).
fn invite_and_join(root: &Path, host: &Path, home: &Path, network: &str, id: &str) {
    let key_package = root.join(format!(
        "{}.keypackage",
        home.file_name().unwrap().to_string_lossy()
    ));
    ok(
        home,
        &["key-package", "--out", key_package.to_str().unwrap()],
    );
    ok(
        host,
        &[
            "network",
            "invite",
            network,
            "--key-package",
            key_package.to_str().unwrap(),
        ],
    );
    ok(home, &["network", "join", id, "--label", network]);
}

#[test]
fn an_insurer_adjudicates_claims_by_itself_and_others_recheck_through_the_cli() {
    let root = tempfile::tempdir().unwrap();
    let (a, i, c) = (
        root.path().join("a"),
        root.path().join("i"),
        root.path().join("c"),
    );
    ok(&a, &["init", "--name", "hospital-a.example"]);
    let insurer = json(&i, &["init", "--name", "insurer.example"])["author"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&c, &["init", "--name", "auditor.example"]);

    // The hospital's care network holds one Synthea patient (33 claims;
    // the core's tests adjudicate all ten bundles' 457).
    ok(&a, &["network", "create", "care"]);
    let bundle = data("synthea-hiv-bundles/bundle_0.json");
    ok(&a, &["import", "care", bundle.to_str().unwrap()]);
    let patient = json(&a, &["patients", "care"])[0]
        .as_str()
        .unwrap()
        .to_owned();

    // A claims network of the hospital, the insurer and an auditor.
    let claims = json(&a, &["network", "create", "claims"])["network"]
        .as_str()
        .unwrap()
        .to_owned();
    invite_and_join(root.path(), &a, &i, "claims", &claims);
    invite_and_join(root.path(), &a, &c, "claims", &claims);
    ok(&i, &["sync"]);

    // The patient's claims consent; only the types the rules read are shared.
    let mut grant = vec![
        "consent",
        "grant",
        "--network",
        "care",
        "--patient",
        &patient,
        "--consent-id",
        "claims-consent",
        "--to-network",
        "claims",
        "--purpose",
        "CLMATTCH",
    ];
    let types = ["Claim", "Coverage", "Condition", "Patient"];
    for t in &types {
        grant.extend(["--class", t]);
    }
    ok(&a, &grant);
    let mut share = vec![
        "share",
        "--from",
        "care",
        "--to-network",
        "claims",
        "--purpose",
        "CLMATTCH",
    ];
    for t in &types {
        share.extend(["--type", t]);
    }
    let shared = json(&a, &share);
    assert_eq!(shared["patients_shared"], 1, "{shared:#}");
    for home in [&a, &i, &c] {
        ok(home, &["sync"]);
    }

    // Governance: 2 of 3. The insurer adds and endorses the rule set; one
    // endorsement activates nothing.
    let policy = json(
        &i,
        &["rules", "policy", "--network", "claims", "--quorum", "2"],
    );
    assert_eq!(policy["members"], 3);
    let rules_file = root.path().join("claims-rules.json");
    std::fs::write(&rules_file, claims_rules(&insurer)).unwrap();
    let added = json(
        &i,
        &[
            "rules",
            "add",
            "--network",
            "claims",
            "--file",
            rules_file.to_str().unwrap(),
        ],
    );
    let hash = added["hash"].as_str().unwrap().to_owned();
    assert_eq!(added["active"], false);
    assert_eq!(added["executors"][0], insurer.as_str());
    let endorsed = json(
        &i,
        &[
            "rules",
            "endorse",
            "--network",
            "claims",
            "--rule-set",
            &hash[..8],
        ],
    );
    assert_eq!(endorsed["active"], false);
    assert_eq!(endorsed["endorsements"], 1);
    ok(&i, &["sync"]);
    ok(&c, &["sync"]);
    assert_eq!(
        json(&i, &["rules", "outcomes", "--network", "claims"]),
        serde_json::json!([])
    );
    let inactive = ok(&c, &["rules", "list", "--network", "claims"]);
    insta::assert_snapshot!("rules_list_inactive", redact(&text(&inactive.stdout)));

    // The auditor's endorsement reaches the quorum; the insurer's next sync
    // adjudicates every shared claim without being asked.
    let endorsed = json(
        &c,
        &[
            "rules",
            "endorse",
            "--network",
            "claims",
            "--rule-set",
            &hash,
        ],
    );
    assert_eq!(endorsed["active"], true);
    ok(&c, &["sync"]);
    ok(&i, &["sync"]);
    let outcomes = json(&i, &["rules", "outcomes", "--network", "claims"]);
    let outcomes = outcomes.as_array().unwrap();
    assert_eq!(outcomes.len(), 33, "one outcome per claim");
    for outcome in outcomes {
        assert_eq!(outcome["record"]["rule_set"]["hash"], hash.as_str());
        assert_eq!(outcome["claim_response"]["resourceType"], "ClaimResponse");
        assert!(outcome["duplicates"].as_array().unwrap().is_empty());
    }
    let again = json(&i, &["rules", "run", "--network", "claims"]);
    assert_eq!(
        again["outcomes_written"], 0,
        "exactly one outcome per claim"
    );
    let listed = ok(&i, &["rules", "outcomes", "--network", "claims"]);
    insta::assert_snapshot!("rules_outcomes", redact(&text(&listed.stdout)));
    let sets = ok(&i, &["rules", "list", "--network", "claims"]);
    insta::assert_snapshot!("rules_list_active", redact(&text(&sets.stdout)));
    // JSON: a rule set and one outcome with its ClaimResponse (Unix ms and
    // ledger sequence numbers redacted besides what `redact` covers).
    let numbers = Regex::new(r#"("\w*time_ms": )\d+|(\[\s*"\[hash\]",\s*)\d+(\s*\])"#).unwrap();
    let redact_json = |value: &Value| {
        numbers
            .replace_all(
                &redact(&serde_json::to_string_pretty(value).unwrap()),
                "${1}${2}[n]${3}",
            )
            .into_owned()
    };
    let sets = json(&i, &["rules", "list", "--network", "claims"]);
    insta::assert_snapshot!("rules_list_json", redact_json(&sets));
    insta::assert_snapshot!("rules_outcome_json", redact_json(&outcomes[0]));

    // The hospital and the auditor re-check every outcome: confirmed.
    for home in [&a, &c] {
        ok(home, &["sync"]);
        let verified = json(home, &["rules", "verify", "--network", "claims"]);
        assert_eq!(verified["confirmed"], 33, "{verified:#}");
        assert_eq!(verified["mismatches"], 0);
        assert_eq!(json(home, &["ledger", "verify", "claims"])["clean"], true);
    }
    let verified = ok(&a, &["rules", "verify", "--network", "claims"]);
    insta::assert_snapshot!("rules_verify", redact(&text(&verified.stdout)));
    let first = outcomes[0]["entry"].as_str().unwrap();
    let one = json(
        &a,
        &[
            "rules",
            "verify",
            "--network",
            "claims",
            "--outcome",
            &first[..10],
        ],
    );
    assert_eq!(one["outcomes"][0]["result"], "confirmed");

    // One changed byte in the rule file is another hash, and every outcome
    // checked against it is a mismatch at the rule set.
    let mut changed = claims_rules(&insurer);
    let at = changed.windows(4).position(|w| w == b"0.80").unwrap();
    changed[at + 2] = b'9';
    let changed_file = root.path().join("claims-rules-changed.json");
    std::fs::write(&changed_file, &changed).unwrap();
    let output = expect_code(
        &c,
        &[
            "--json",
            "rules",
            "verify",
            "--network",
            "claims",
            "--rule-file",
            changed_file.to_str().unwrap(),
        ],
        2,
    );
    let against: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(against["mismatches"], 33);
    assert_eq!(against["outcomes"][0]["result"], "mismatch");
    assert_eq!(against["outcomes"][0]["step"], "rule_set");
    let other = json(
        &a,
        &[
            "rules",
            "add",
            "--network",
            "claims",
            "--file",
            changed_file.to_str().unwrap(),
        ],
    );
    assert_ne!(other["hash"], hash.as_str());
    assert_eq!(other["active"], false);
    ok(&a, &["sync"]);
    ok(&c, &["sync"]);
    let two = json(&c, &["rules", "list", "--network", "claims"]);
    assert_eq!(two.as_array().unwrap().len(), 2);

    // A forged outcome (one digit of an approved amount changed) is named
    // as a mismatch at the outcome; the same outcome said to come from a
    // member that is no executor, at the executor.
    let approved = outcomes
        .iter()
        .find(|o| o["record"]["outcome"] == "approve")
        .unwrap();
    let mut forged = approved["record"].clone();
    let amount = forged["amount"].as_str().unwrap().to_owned();
    let last = amount.chars().last().unwrap();
    let digit = if last == '1' { '2' } else { '1' };
    forged["amount"] = Value::String(format!("{}{digit}", &amount[..amount.len() - 1]));
    let forged_file = root.path().join("forged-outcome.json");
    std::fs::write(&forged_file, serde_json::to_vec(&forged).unwrap()).unwrap();
    let output = expect_code(
        &c,
        &[
            "rules",
            "verify",
            "--network",
            "claims",
            "--outcome-file",
            forged_file.to_str().unwrap(),
            "--executor",
            "insurer.example",
        ],
        2,
    );
    let report = text(&output.stdout);
    assert!(report.contains("mismatch at outcome"), "{report}");
    insta::assert_snapshot!(
        "rules_verify_forged",
        redact(&report.replace(forged_file.to_str().unwrap(), "[file]"))
    );
    let genuine_file = root.path().join("genuine-outcome.json");
    std::fs::write(
        &genuine_file,
        serde_json::to_vec(&approved["record"]).unwrap(),
    )
    .unwrap();
    let output = expect_code(
        &c,
        &[
            "--json",
            "rules",
            "verify",
            "--network",
            "claims",
            "--outcome-file",
            genuine_file.to_str().unwrap(),
            "--executor",
            "hospital-a.example",
        ],
        2,
    );
    let by_other: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(by_other["outcomes"][0]["step"], "executor");

    // Typed errors: an unknown rule set, a bad quorum, a refused document.
    let output = expect_code(
        &c,
        &[
            "rules",
            "endorse",
            "--network",
            "claims",
            "--rule-set",
            "abcdef",
        ],
        1,
    );
    assert!(text(&output.stderr).contains("no rule set `abcdef`"));
    let output = expect_code(
        &c,
        &["rules", "policy", "--network", "claims", "--quorum", "4"],
        1,
    );
    assert!(
        text(&output.stderr).contains("quorum must be between 1 and the 3 member(s)"),
        "{}",
        text(&output.stderr)
    );
    let hostile = root.path().join("hostile.json");
    std::fs::write(
        &hostile,
        String::from_utf8(claims_rules(&insurer)).unwrap().replace(
            "resource.total.value > decimal('750')",
            &format!("{}true{}", "(".repeat(300), ")".repeat(300)),
        ),
    )
    .unwrap();
    let output = expect_code(
        &c,
        &[
            "rules",
            "add",
            "--network",
            "claims",
            "--file",
            hostile.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        text(&output.stderr).contains("invalid rule set"),
        "{}",
        text(&output.stderr)
    );

    // Withdrawing below the quorum deactivates the rule set.
    let withdrawn = json(
        &c,
        &[
            "rules",
            "endorse",
            "--network",
            "claims",
            "--rule-set",
            &hash,
            "--withdraw",
        ],
    );
    assert_eq!(withdrawn["active"], false);
    assert_eq!(withdrawn["endorsements"], 1);

    // The audit lists the rule sets, the policy, endorsements and outcomes.
    let audit = json(&c, &["audit", "--network", "claims"]);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for entry in audit.as_array().unwrap() {
        let kind = entry["kind"].as_str().unwrap().to_owned();
        *kinds.entry(kind).or_default() += 1;
    }
    assert_eq!(
        kinds,
        [
            ("endorsement", 3),
            ("policy", 1),
            ("rule_outcome", 33),
            ("rule_set", 2)
        ]
        .into_iter()
        .map(|(k, n)| (k.to_owned(), n))
        .collect(),
        "{audit:#}"
    );
    let audited = ok(&c, &["audit", "--network", "claims"]);
    let table: String = text(&audited.stdout)
        .lines()
        .filter(|line| !line.contains(" outcome "))
        .map(|line| format!("{line}\n"))
        .collect();
    insta::assert_snapshot!("rules_audit", redact(&table));
}
