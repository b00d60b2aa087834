//! Writer process for the kill -9 durability test (`tests/crash_kill9.rs`).
//!
//! `crash_writer DIR SEED [OPS]` opens the world in DIR (made by
//! `careledger_scenarios::crash::create_world`) and runs up to OPS (default:
//! unbounded) random operations picked from SEED. After each one returns
//! success it prints, per node, an `ack` line with the node's epoch and the
//! ids of the entries that node stored during the operation (in either
//! network), and flushes
//! stdout before starting the next. An operation that fails is reported on
//! stderr and ends the process with status 1.

use std::io::Write;

use careledger_scenarios::crash::{entry_ids, open_world, run, splitmix64, Ack, Op};
use careledger_scenarios::T0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: crash_writer DIR SEED [OPS]");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(&args[1]);
    let Ok(mut rng) = args[2].parse::<u64>() else {
        eprintln!("SEED must be a number");
        std::process::exit(2);
    };
    let ops = match args.get(3).map(|n| n.parse::<u64>()) {
        None => u64::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("OPS must be a number");
            std::process::exit(2);
        }
    };
    let mut world = open_world(&dir);
    let networks = [world.net.clone(), world.study.clone()];
    let all_ids = |node: &careledger::node::Node| -> Vec<String> {
        networks
            .iter()
            .flat_map(|net| entry_ids(node, net))
            .collect()
    };
    let mut known = [all_ids(&world.writer), all_ids(&world.peer)];
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let start = T0 + (rng % 1_000_000) * 1_000;
    for n in 0..ops {
        let op = Op::pick(splitmix64(&mut rng));
        if let Err(error) = run(&mut world, op, start + n) {
            eprintln!("operation {n} ({op:?}) failed: {error}");
            std::process::exit(1);
        }
        for (index, tag) in [(0, 'w'), (1, 'p')] {
            let node = if index == 0 {
                &mut world.writer
            } else {
                &mut world.peer
            };
            let ids = all_ids(node);
            let seen: std::collections::HashSet<&String> = known[index].iter().collect();
            let new: Vec<String> = ids
                .iter()
                .filter(|id| !seen.contains(id))
                .cloned()
                .collect();
            let ack = Ack {
                op: n,
                node: tag,
                epoch: node.epoch(&networks[0]).expect("epoch"),
                entries: new,
            };
            known[index] = ids;
            writeln!(out, "{}", ack.line()).expect("stdout");
        }
        out.flush().expect("stdout");
    }
}
