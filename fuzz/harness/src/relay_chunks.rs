//! Chunked relay messages (`careledger::relay::chunk`, used by the NATS relay
//! for messages above the server's `max_payload`): the manifest and frame
//! decoders on arbitrary bytes (a manifest that decodes re-encodes to the same
//! bytes), then a real message split into frames whose frames and manifest the
//! rest of the input alters (flip, drop, swap, truncate, forge). Reassembly
//! must yield the original message or a typed error, never other bytes.

use std::collections::HashMap;

use careledger::relay::chunk::{reassemble, split, ChunkFrame, Manifest};

use crate::chunks::Program;

/// Runs one input.
pub fn fuzz(data: &[u8]) {
    if let Ok(manifest) = Manifest::decode(data) {
        assert_eq!(
            manifest.encode(),
            data,
            "manifest encoding is not canonical"
        );
    }
    let _ = ChunkFrame::decode(data);

    let mut program = Program::new(data);
    let len = program.u16() % 6_000;
    let message: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
    let parts = split(&message, 1_024, [program.byte(); 16]).expect("1 KiB frames take 6 KB");
    let positions: Vec<u64> = (0..parts.frames.len() as u64).map(|i| 10 + 3 * i).collect();
    let mut manifest = parts
        .manifest(&positions)
        .expect("one position per frame")
        .encode();
    let mut store: HashMap<u64, Vec<u8>> = positions
        .iter()
        .copied()
        .zip(parts.frames.iter().cloned())
        .collect();
    while !program.data.is_empty() {
        let (op, which, at) = (program.byte(), program.byte() as u64, program.u16());
        let position = positions[which as usize % positions.len()];
        match op % 6 {
            0 if !manifest.is_empty() => {
                let i = at % manifest.len();
                manifest[i] ^= 1 << (op % 8);
            }
            1 => {
                if let Some(frame) = store.get_mut(&position).filter(|f| !f.is_empty()) {
                    let i = at % frame.len();
                    frame[i] ^= 1 << (op % 8);
                }
            }
            2 => {
                store.remove(&position);
            }
            3 => {
                let other = positions[at % positions.len()];
                if let (Some(a), Some(b)) = (store.remove(&position), store.remove(&other)) {
                    store.insert(position, b);
                    store.insert(other, a);
                }
            }
            4 => {
                if let Some(frame) = store.get_mut(&position) {
                    frame.truncate(at % (frame.len() + 1));
                }
            }
            _ => {
                let forged = program.short_bytes();
                store.insert(position, forged);
            }
        }
    }
    let Ok(manifest) = Manifest::decode(&manifest) else {
        return;
    };
    let joined = reassemble(&manifest, |p| Ok::<_, ()>(store.get(&p).cloned()))
        .expect("the in-memory store never fails");
    if let Ok(bytes) = joined {
        assert_eq!(
            bytes, message,
            "altered chunks reassembled into other bytes"
        );
    }
}

/// An intact message, each kind of alteration once, and a real manifest and frame.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let header = |len: u16, transfer: u8| {
        let mut out = len.to_be_bytes().to_vec();
        out.push(transfer);
        out
    };
    let mut out = vec![("intact-3-chunks".to_owned(), header(2_500, 7))];
    for (name, op) in [
        ("flip-manifest", 0u8),
        ("flip-frame", 1),
        ("drop-frame", 2),
        ("swap-frames", 3),
        ("truncate-frame", 4),
    ] {
        let mut seed = header(4_000, 9);
        seed.extend_from_slice(&[op, 1, 0, 40]);
        out.push((name.to_owned(), seed));
    }
    let mut forged = header(4_000, 9);
    forged.extend_from_slice(&[5, 2, 0, 0, 4, 1, 2, 3, 4]);
    out.push(("forge-frame".to_owned(), forged));
    let parts = split(&[1; 1_500], 1_024, [3; 16]).expect("split");
    out.push((
        "manifest".to_owned(),
        parts.manifest(&[4, 8]).expect("manifest").encode(),
    ));
    out.push(("frame".to_owned(), parts.frames[1].clone()));
    out
}
