//! What the benchmarks share: the Synthea bulk data, simulated time, and
//! interleaved side-by-side timing. Each bench uses a subset.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::store::Store;
use tempfile::TempDir;

/// Folder of the Synthea bulk NDJSON.
pub const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/fhir/bulk-10-patients/"
);

/// Patients first, as an export would be imported.
pub const FILES: [&str; 6] = [
    "Patient.000.ndjson",
    "AllergyIntolerance.000.ndjson",
    "Condition.000.ndjson",
    "Encounter.000.ndjson",
    "Immunization.000.ndjson",
    "MedicationRequest.000.ndjson",
];

/// Resources in [`FILES`].
pub const RESOURCES: usize = 3_700;

/// Simulated start time (ms).
pub const T0: u64 = 1_764_000_000_000;

/// Every file of [`FILES`] with its bytes.
pub fn load_files() -> Vec<(&'static str, Vec<u8>)> {
    FILES
        .iter()
        .map(|name| {
            let bytes = std::fs::read(format!("{DATA}{name}")).expect("bench data present");
            (*name, bytes)
        })
        .collect()
}

/// The median of some samples.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Milliseconds.
pub fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

/// Items per second.
pub fn rate(items: usize, time: Duration) -> f64 {
    items as f64 / time.as_secs_f64()
}

/// `12345.6` → `"12,346"`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Medians of the project side and the peer side.
pub struct Measured {
    /// careledger.
    pub careledger: Duration,
    /// The peer.
    pub plain: Duration,
}

/// Time `project` and `peer` in `reps` interleaved repetitions, so drift on a
/// shared machine hits both alike. Each closure prepares untimed state with
/// `setup` first and returns what it timed.
pub fn measure_side_by_side<S, P>(
    reps: usize,
    setup: impl FnMut() -> S,
    project: impl FnMut(&mut S),
    mut peer: impl FnMut() -> P,
) -> Measured {
    // The peer's output lands in its state, so dropping it is not timed.
    measure_both(reps, setup, project, || None, |out| *out = Some(peer()))
}

/// [`measure_side_by_side`] where the peer has untimed setup too.
pub fn measure_both<S, T>(
    reps: usize,
    mut setup: impl FnMut() -> S,
    mut project: impl FnMut(&mut S),
    mut peer_setup: impl FnMut() -> T,
    mut peer: impl FnMut(&mut T),
) -> Measured {
    let mut careledger = Vec::with_capacity(reps);
    let mut plain = Vec::with_capacity(reps);
    for _ in 0..reps {
        let mut state = setup();
        let start = Instant::now();
        project(&mut state);
        careledger.push(start.elapsed());
        drop(state);

        let mut state = peer_setup();
        let start = Instant::now();
        peer(&mut state);
        plain.push(start.elapsed());
        drop(state);
    }
    Measured {
        careledger: median(careledger),
        plain: median(plain),
    }
}

/// A new file-backed node with one network; the directory lives as long as it.
pub struct FreshNode {
    /// The node (hospital-a.example).
    pub node: Node,
    /// Its network `care`.
    pub network: NetworkId,
    _dir: TempDir,
}

/// A [`FreshNode`] in a new temporary directory.
pub fn fresh_node() -> FreshNode {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = StorageKey::from_bytes([7; 32]);
    let store = Store::open(&dir.path().join("node.sqlite"), &key).expect("store");
    let mut node = Node::create(store, "hospital-a.example").expect("node");
    let network = node.create_network("care").expect("network");
    FreshNode {
        node,
        network,
        _dir: dir,
    }
}

/// CPU time this thread has run (Linux `/proc/thread-self/schedstat`), so a
/// rate is not skewed by other processes on a busy machine; `None` elsewhere.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// How a ratio is judged against its goal.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// Ours / peer time must be at most this.
    AtMost(f64),
    /// Ours / peer rate must be at least this.
    AtLeast(f64),
    /// Reported only.
    None,
}

impl Goal {
    fn text(self) -> String {
        match self {
            Goal::AtMost(x) => format!("≤ {x:.2}"),
            Goal::AtLeast(x) => format!("≥ {x:.2}"),
            Goal::None => "—".into(),
        }
    }

    fn verdict(self, ratio: f64) -> &'static str {
        match self {
            Goal::AtMost(x) if ratio <= x => "met",
            Goal::AtLeast(x) if ratio >= x => "met",
            Goal::None => "",
            _ => "not met",
        }
    }
}

/// One row of the ratio table `tests/bench.sh` collects: a tab-separated
/// line starting with `RATIO` on stdout (bench, case, ours, peer, ratio, goal, verdict).
pub fn ratio_row(bench: &str, case: &str, ours: &str, peer: &str, ratio: f64, goal: Goal) {
    let shown = if ratio < 0.095 {
        format!("{ratio:.3}")
    } else {
        format!("{ratio:.2}")
    };
    println!(
        "RATIO\t{bench}\t{case}\t{ours}\t{peer}\t{shown}\t{}\t{}",
        goal.text(),
        goal.verdict(ratio)
    );
}
