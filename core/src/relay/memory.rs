//! An in-memory relay that can drop, duplicate, reorder and delay messages.

use std::collections::HashMap;

use super::{Relay, RelayError, RelayMessage};
use crate::node::NetworkId;

/// Fault probabilities (0.0–1.0) applied to each publish.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// The message is lost (the publisher is not told).
    pub drop: f64,
    /// The message is stored twice.
    pub duplicate: f64,
    /// The message becomes visible only after up to `max_delay` later publishes
    /// (which also reorders it behind them).
    pub delay: f64,
    /// Longest delay, in publishes.
    pub max_delay: u32,
    /// A fetch returns a random prefix of what is available.
    pub short_fetch: f64,
}

/// SplitMix64: small, seedable, good enough to schedule faults.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        p > 0.0 && unit < p
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// The in-memory relay. Without faults it is a perfect ordered log.
#[derive(Clone, Debug)]
pub struct MemoryRelay {
    logs: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    delayed: Vec<(u64, Vec<u8>, Vec<u8>)>,
    publishes: u64,
    faults: FaultConfig,
    rng: SplitMix,
    stats: FaultStats,
}

/// What the faults did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Messages lost.
    pub dropped: u64,
    /// Messages stored twice.
    pub duplicated: u64,
    /// Messages delayed.
    pub delayed: u64,
}

impl Default for MemoryRelay {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRelay {
    /// A relay without faults.
    pub fn new() -> Self {
        Self::with_faults(FaultConfig::default(), 0)
    }

    /// A relay injecting `faults`, scheduled by `seed`.
    pub fn with_faults(faults: FaultConfig, seed: u64) -> Self {
        Self {
            logs: HashMap::new(),
            delayed: Vec::new(),
            publishes: 0,
            faults,
            rng: SplitMix(seed),
            stats: FaultStats::default(),
        }
    }

    /// Change the faults (e.g. turn them off to let the network settle).
    pub fn set_faults(&mut self, faults: FaultConfig) {
        self.faults = faults;
    }

    /// Deliver every delayed message now.
    pub fn flush_delayed(&mut self) {
        for (_, network, message) in std::mem::take(&mut self.delayed) {
            self.logs.entry(network).or_default().push(message);
        }
    }

    /// Fault counters.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// Every message of a network, in order (for inspection in tests).
    pub fn log(&self, network: &NetworkId) -> &[Vec<u8>] {
        self.logs.get(&network.0).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Replace a stored message (for in-flight tamper tests).
    pub fn tamper(&mut self, network: &NetworkId, index: usize, bytes: Vec<u8>) -> bool {
        match self
            .logs
            .get_mut(&network.0)
            .and_then(|log| log.get_mut(index))
        {
            Some(slot) => {
                *slot = bytes;
                true
            }
            None => false,
        }
    }

    fn release_due(&mut self) {
        let now = self.publishes;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.delayed = later;
        for (_, network, message) in due {
            self.logs.entry(network).or_default().push(message);
        }
    }
}

impl Relay for MemoryRelay {
    fn publish(&mut self, network: &NetworkId, message: &[u8]) -> Result<(), RelayError> {
        self.publishes += 1;
        self.release_due();
        if self.rng.chance(self.faults.drop) {
            self.stats.dropped += 1;
            return Ok(());
        }
        let copies = if self.rng.chance(self.faults.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.rng.chance(self.faults.delay) {
                self.stats.delayed += 1;
                let at =
                    self.publishes + 1 + self.rng.below(u64::from(self.faults.max_delay.max(1)));
                self.delayed.push((at, network.0.clone(), message.to_vec()));
            } else {
                self.logs
                    .entry(network.0.clone())
                    .or_default()
                    .push(message.to_vec());
            }
        }
        Ok(())
    }

    fn fetch(
        &mut self,
        network: &NetworkId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RelayMessage>, RelayError> {
        let log = self.logs.get(&network.0).map(Vec::as_slice).unwrap_or(&[]);
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
        let mut end = start.saturating_add(limit).min(log.len());
        if end > start && self.rng.chance(self.faults.short_fetch) {
            end = start + 1 + self.rng.below((end - start) as u64) as usize;
        }
        Ok(log[start..end]
            .iter()
            .enumerate()
            .map(|(i, bytes)| RelayMessage {
                seq: (start + i + 1) as u64,
                bytes: bytes.clone(),
            })
            .collect())
    }
}
