//! Three institutions as separate `careledger` processes, syncing a care
//! network through a real NATS JetStream server and through a 3-node cluster.
//! Skipped (with a message on stderr) when `CARELEDGER_NATS_URL` is not set;
//! tests/run-all.sh and CI start the servers and set it.
#![cfg(feature = "nats")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn careledger(home: &Path, relay: &str, replicas: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_careledger"));
    command
        .env_remove("CARELEDGER_HOME")
        .env_remove("CARELEDGER_RELAY")
        .env_remove("CARELEDGER_STORAGE_KEY")
        .args([
            "--quiet",
            "--json",
            "--relay",
            relay,
            "--nats-replicas",
            replicas,
            "--home",
        ])
        .arg(home);
    command
}

fn check(output: Output, what: &str) -> Value {
    assert!(
        output.status.success(),
        "careledger {what} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/fhir")
        .join(relative)
}

fn three_institutions(relay: &str, replicas: &str) {
    let root = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|n| root.path().join(n))
        .collect();
    let run = |i: usize, args: &[&str]| {
        let output = careledger(&homes[i], relay, replicas)
            .args(args)
            .output()
            .unwrap();
        check(output, &format!("{args:?} at site {i}"))
    };
    for (i, name) in ["hospital-a.example", "clinic-b.example", "lab-c.example"]
        .iter()
        .enumerate()
    {
        run(i, &["init", "--name", name]);
    }
    let id = run(0, &["network", "create", "care"])["network"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 1..3 {
        let key_package = root.path().join(format!("{i}.keypackage"));
        run(i, &["key-package", "--out", key_package.to_str().unwrap()]);
        run(
            0,
            &[
                "network",
                "invite",
                "care",
                "--key-package",
                key_package.to_str().unwrap(),
            ],
        );
        run(i, &["network", "join", &id, "--label", "care"]);
    }
    let patients = data("bulk-10-patients/Patient.000.ndjson");
    let conditions = data("bulk-10-patients/Condition.000.ndjson");
    run(
        0,
        &[
            "import",
            "care",
            patients.to_str().unwrap(),
            conditions.to_str().unwrap(),
        ],
    );
    let allergies = data("bulk-10-patients/AllergyIntolerance.000.ndjson");
    run(
        1,
        &[
            "import",
            "care",
            patients.to_str().unwrap(),
            allergies.to_str().unwrap(),
        ],
    );
    // The three processes sync at the same time, twice.
    for _ in 0..2 {
        let children: Vec<_> = (0..3)
            .map(|i| {
                careledger(&homes[i], relay, replicas)
                    .arg("sync")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let synced = check(child.wait_with_output().unwrap(), "sync");
            assert_eq!(synced[0]["rejected"], 0, "{synced}");
        }
    }
    let listed: Vec<Value> = (0..3).map(|i| run(i, &["patients", "care"])).collect();
    assert_eq!(listed[0].as_array().unwrap().len(), 13);
    assert!(listed.iter().all(|l| *l == listed[0]), "{listed:?}");
    let ledgers: Vec<Value> = (0..3)
        .map(|i| run(i, &["ledger", "verify", "care"]))
        .collect();
    for ledger in &ledgers {
        assert_eq!(ledger["clean"], true, "{ledger}");
    }
}

fn url(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {variable} is not set, so no NATS server to test against; \
                 run `eval \"$(bash tests/nats/servers.sh start)\"` or `bash tests/run-all.sh`"
            );
            None
        }
    }
}

#[test]
fn three_processes_share_a_network_through_one_nats_server() {
    if let Some(relay) = url("CARELEDGER_NATS_URL") {
        three_institutions(&relay, "1");
    }
}

#[test]
fn three_processes_share_a_network_through_a_nats_cluster() {
    if url("CARELEDGER_NATS_URL").is_some() {
        let cluster = std::env::var("CARELEDGER_NATS_CLUSTER")
            .expect("CARELEDGER_NATS_CLUSTER set beside CARELEDGER_NATS_URL");
        three_institutions(&cluster, "3");
    }
}
