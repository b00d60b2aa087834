//! A second process on a node's store, as a phone's notification extension
//! would be: `store_reader STORE NETWORK_HEX ROUNDS` opens the store (with
//! the test key), reads the patient list and one chart, and closes it,
//! ROUNDS times, while another process writes. Each round prints `ok
//! <patients> <entries>`; any error goes to stderr with status 1.

use std::io::Write;

use careledger::keys::StorageKey;
use careledger::node::{ExportFormat, NetworkId, Node};
use careledger::store::Store;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: store_reader STORE NETWORK_HEX ROUNDS");
        std::process::exit(2);
    }
    let path = std::path::PathBuf::from(&args[1]);
    let Some(net) = NetworkId::from_hex(&args[2]) else {
        eprintln!("NETWORK_HEX must be a network id");
        std::process::exit(2);
    };
    let Ok(rounds) = args[3].parse::<u32>() else {
        eprintln!("ROUNDS must be a number");
        std::process::exit(2);
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for round in 0..rounds {
        let outcome = (|| -> Result<(usize, usize), String> {
            let store = Store::open(&path, &StorageKey::from_bytes([7; 32]))
                .map_err(|e| format!("open: {e}"))?;
            let mut node = Node::open(store).map_err(|e| format!("node: {e}"))?;
            let patients = node.patients(&net).map_err(|e| format!("patients: {e}"))?;
            if let Some(first) = patients.first() {
                node.export_patient(&net, first, ExportFormat::Bundle)
                    .map_err(|e| format!("export: {e}"))?;
            }
            let entries = node
                .ledger_entries(&net)
                .map_err(|e| format!("entries: {e}"))?
                .len();
            Ok((patients.len(), entries))
        })();
        match outcome {
            Ok((patients, entries)) => {
                writeln!(out, "ok {patients} {entries}").expect("stdout");
            }
            Err(error) => {
                eprintln!("round {round}: {error}");
                std::process::exit(1);
            }
        }
    }
}
