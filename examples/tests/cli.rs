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

/// Replace what changes from run to run (times, rates, keys, ids).
fn redact(output: &str) -> String {
    let rules = [
        (r"\d+\.\d{2} s\b", "[time]"),
        (r"\d+ resources/s", "[rate] resources/s"),
        (r"([0-9a-f]{4} ){7}[0-9a-f]{4}", "[fingerprint]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[patient]",
        ),
        (r"\b[0-9a-f]{32}\b", "[network]"),
        (r"\b[0-9a-f]{16}…", "[author]…"),
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
