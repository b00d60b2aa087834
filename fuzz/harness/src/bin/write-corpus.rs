//! Writes every target's seeds to `fuzz/corpus/<target>/` (the committed seed
//! corpora): `cargo run -p careledger-fuzz-harness --bin write-corpus [TARGET...]`.
//! Existing seed files of the same name are replaced; other files are kept.

use std::path::Path;

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for target in careledger_fuzz_harness::TARGETS {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == target.name) {
            continue;
        }
        let dir = root.join(target.name);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let seeds = (target.seeds)();
        let mut total = 0;
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).expect("write seed");
            total += bytes.len();
        }
        println!("{}: {} seeds, {} bytes", target.name, seeds.len(), total);
    }
}
