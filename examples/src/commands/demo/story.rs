//! The demo's account: numbered steps with lines and checks for people, a
//! JSON summary for scripts. Only ids, names of institutions and counts are
//! ever shown, never patient data.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::output::{print_json, seconds};

/// One step as the JSON summary records it.
#[derive(Debug, Serialize)]
struct Step {
    step: usize,
    title: &'static str,
    seconds: f64,
    facts: BTreeMap<&'static str, Value>,
}

/// The whole account.
pub struct Story {
    json: bool,
    started: Instant,
    step_started: Instant,
    steps: Vec<Step>,
    checks: Vec<(&'static str, bool, String)>,
    header: BTreeMap<&'static str, Value>,
}

impl Story {
    /// Start the account.
    pub fn new(json: bool) -> Self {
        Story {
            json,
            started: Instant::now(),
            step_started: Instant::now(),
            steps: Vec::new(),
            checks: Vec::new(),
            header: BTreeMap::new(),
        }
    }

    /// A top-level fact of the JSON summary (nodes, network id, workspace).
    pub fn set(&mut self, key: &'static str, value: impl Serialize) {
        self.header
            .insert(key, serde_json::to_value(value).unwrap_or(Value::Null));
    }

    /// A line outside any step.
    pub fn say(&self, text: impl AsRef<str>) -> Result<()> {
        if !self.json {
            outln!("{}", text.as_ref())?;
        }
        Ok(())
    }

    /// Open the next step.
    pub fn step(&mut self, title: &'static str) -> Result<()> {
        self.step_started = Instant::now();
        self.steps.push(Step {
            step: self.steps.len() + 1,
            title,
            seconds: 0.0,
            facts: BTreeMap::new(),
        });
        if !self.json {
            outln!("\n{}. {title}", self.steps.len())?;
        }
        Ok(())
    }

    /// A line of the current step.
    pub fn line(&self, text: impl AsRef<str>) -> Result<()> {
        if !self.json {
            outln!("   {}", text.as_ref())?;
        }
        Ok(())
    }

    /// A fact of the current step (JSON only).
    pub fn fact(&mut self, key: &'static str, value: impl Serialize) {
        if let Some(step) = self.steps.last_mut() {
            step.facts
                .insert(key, serde_json::to_value(value).unwrap_or(Value::Null));
        }
    }

    /// Record a check: `claim` is what holds when it passes; `failure` says
    /// what was found instead.
    pub fn check(
        &mut self,
        name: &'static str,
        ok: bool,
        claim: impl AsRef<str>,
        failure: impl FnOnce() -> String,
    ) -> Result<()> {
        let detail = if ok { String::new() } else { failure() };
        if !self.json {
            if ok {
                outln!("   ✓ {}", claim.as_ref())?;
            } else {
                outln!("   ✗ {}: FAILED: {detail}", claim.as_ref())?;
            }
        }
        self.checks.push((name, ok, detail));
        Ok(())
    }

    /// Close the current step with its time.
    pub fn end_step(&mut self) -> Result<()> {
        let elapsed = self.step_started.elapsed();
        if let Some(step) = self.steps.last_mut() {
            step.seconds = elapsed.as_secs_f64();
        }
        self.line(format!("({})", seconds(elapsed)))
    }

    /// Whether every check held.
    pub fn all_held(&self) -> bool {
        self.checks.iter().all(|(_, ok, _)| *ok)
    }

    /// The closing line, or the JSON summary.
    pub fn finish(&self) -> Result<()> {
        let failed: Vec<&(&str, bool, String)> =
            self.checks.iter().filter(|(_, ok, _)| !ok).collect();
        let elapsed = self.started.elapsed();
        if self.json {
            let checks: BTreeMap<&str, bool> =
                self.checks.iter().map(|(n, ok, _)| (*n, *ok)).collect();
            let failures: Vec<String> =
                failed.iter().map(|(n, _, d)| format!("{n}: {d}")).collect();
            let mut summary = serde_json::Map::new();
            summary.insert("ok".into(), Value::Bool(failed.is_empty()));
            summary.insert(
                "seconds".into(),
                serde_json::to_value(elapsed.as_secs_f64())?,
            );
            for (key, value) in &self.header {
                summary.insert((*key).into(), value.clone());
            }
            summary.insert("steps".into(), serde_json::to_value(&self.steps)?);
            summary.insert("checks".into(), serde_json::to_value(checks)?);
            summary.insert("failures".into(), serde_json::to_value(failures)?);
            return print_json(&summary);
        }
        outln!()?;
        if failed.is_empty() {
            outln!(
                "All {} checks held ({} in all).",
                self.checks.len(),
                seconds(elapsed)
            )?;
        } else {
            outln!("{} of {} checks FAILED:", failed.len(), self.checks.len())?;
            for (name, _, detail) in failed {
                outln!("  {name}: {detail}")?;
            }
        }
        Ok(())
    }
}
