//! A node receiving arbitrary relay messages: a fresh receiver (the one whose
//! key package the fixture log's second Welcome answers) runs a program of
//! operations over real and altered messages of a real three-node network.
//!
//! Program bytes, one operation after another (missing bytes read as 0):
//! - `0 i`: try log message `i` as a Welcome;
//! - `1 i n`: receive log messages `i..i+n` as one batch;
//! - `2 i p x`: receive log message `i` with byte `p` (u16) xored with `x`;
//! - `3 len(u16) bytes`: receive raw bytes;
//! - `4 len(u16) bytes`: try raw bytes as a Welcome;
//! - `5`: drain the outbox, announce heads, verify the ledger;
//! - `6`: restart (close and reopen the store).
//!
//! Invariants: nothing panics, receive fails only on a store failure, and the
//! ledger of a member verifies clean (no fuzzed byte gets past the checks).

use careledger::node::{NetworkError, Node, ReceiveError};

use crate::chunks::Program;
use crate::{chunks, fixture, node_util};

fn receive(node: &mut Node, messages: &[Vec<u8>]) {
    let fx = fixture::get();
    match node.receive(&fx.network, messages, None, fixture::T0 + 10) {
        Ok(_) | Err(ReceiveError::Network(NetworkError::UnknownNetwork)) => {}
        Err(error) => panic!("receive failed on relay input: {error}"),
    }
}

fn check(node: &mut Node) {
    let fx = fixture::get();
    if node.is_member(&fx.network).unwrap_or(false) {
        let report = node.verify_ledger(&fx.network).expect("verify ledger");
        assert!(report.is_clean(), "ledger not clean: {report:?}");
        let _ = node.patients(&fx.network).expect("patients");
        let _ = node.heads(&fx.network).expect("heads");
    }
}

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    let fx = fixture::get();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = node_util::open_copy(dir.path(), &fx.receiver_store);
    let mut program = Program::new(data);
    let log = &fx.log;
    let mut steps = 0;
    while !program.data.is_empty() && steps < 64 {
        steps += 1;
        match program.byte() % 7 {
            0 => {
                let i = program.byte() as usize % log.len();
                node_util::try_join(&mut node, &log[i]);
            }
            1 => {
                let i = program.byte() as usize % log.len();
                let n = program.byte() as usize;
                let end = (i + n).min(log.len());
                receive(&mut node, &log[i..end]);
            }
            2 => {
                let mut message = log[program.byte() as usize % log.len()].clone();
                let p = program.u16();
                let x = program.byte();
                if !message.is_empty() {
                    let at = p % message.len();
                    message[at] ^= x;
                }
                receive(&mut node, &[message]);
            }
            3 => {
                let raw = program.bytes();
                receive(&mut node, &[raw]);
            }
            4 => {
                let raw = program.bytes();
                node_util::try_join(&mut node, &raw);
            }
            5 => {
                node_util::drain_outbox(&mut node);
                if node.is_member(&fx.network).unwrap_or(false) {
                    node.announce_heads(&fx.network).expect("announce heads");
                }
                check(&mut node);
            }
            _ => {
                drop(node);
                node = node_util::reopen(dir.path());
            }
        }
    }
    check(&mut node);
}

/// Programs over the real log: join then receive everything in order, in
/// reverse, twice, with restarts; and each real message alone, raw.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let fx = fixture::get();
    let n = fx.log.len() as u8;
    let welcome = fx
        .log
        .iter()
        .rposition(|m| m.get(1) == Some(&3))
        .expect("the log holds a Welcome") as u8;
    let mut out = vec![
        ("join-then-all".to_string(), vec![0, welcome, 1, 0, n, 5]),
        (
            "join-all-twice-restart".to_string(),
            vec![0, welcome, 1, 0, n, 6, 1, 0, n, 5],
        ),
        (
            "all-before-join".to_string(),
            vec![1, 0, n, 0, welcome, 1, 0, n, 5],
        ),
    ];
    let mut reversed = vec![0, welcome];
    for i in (0..n).rev() {
        reversed.extend_from_slice(&[1, i, 1]);
    }
    reversed.push(5);
    out.push(("join-then-reversed".into(), reversed));
    let mut flips = vec![0, welcome];
    for i in 0..n {
        flips.extend_from_slice(&[2, i, 0, 40, 1]);
    }
    flips.extend_from_slice(&[1, 0, n, 5]);
    out.push(("join-flipped-then-all".into(), flips));
    for (i, message) in fx.log.iter().enumerate() {
        if message.len() < 60_000 {
            let mut raw = vec![0, welcome, 3];
            raw.extend_from_slice(&chunks::join(&[message]));
            out.push((format!("raw-{i:02}"), raw));
        }
    }
    out
}
