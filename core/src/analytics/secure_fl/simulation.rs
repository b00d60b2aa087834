//! A whole task in memory: every site's and the aggregator's steps with the
//! same functions the ledger path calls, without a ledger. For benchmarks,
//! the accuracy-versus-ε sweep, and tests of the protocol itself.
//!
//! ```
//! use careledger::analytics::secure_fl::simulation::Simulation;
//! use careledger::analytics::secure_fl::{LocalData, Objective, Plan};
//! # use careledger::analytics::{Feature, FeatureSpec, MissingPolicy};
//! # let spec = FeatureSpec::new(vec![Feature::Sex], None, MissingPolicy::DropRow);
//! let plan = Simulation::plan(Objective::Moments, spec, None, 3, 2, 1, 1e-5).unwrap();
//! let data: Vec<LocalData> = (0..3)
//!     .map(|s| LocalData::new(vec![vec![s as f64], vec![s as f64 + 1.0]], vec![]).unwrap())
//!     .collect();
//! let mut sim = Simulation::new(plan, data, 7).unwrap();
//! let round = sim.run_round(&[2]).unwrap(); // site 2 drops; its masks are recovered
//! assert_eq!(round.survivors, vec![1, 3]);
//! let scaling = sim.scaling().unwrap();
//! assert_eq!(scaling.center, vec![1.5]); // rows 0, 1, 2, 3 of sites 1 and 3
//! ```

use std::collections::BTreeMap;

use super::{
    aggregate, channel_public, final_model, make_shares, masked_input, next_parameters,
    open_envelope, site_update, unmask_message, Aggregate, FeatureScaling, FlProtocolError,
    LocalData, MaskedMessage, Objective, Participant, Plan, RoundInputs, RoundResult,
    SharesMessage, SiteBudget, SurvivorsMessage, FL_FORMAT_VERSION,
};
use crate::analytics::dp::{noise_multiplier_for, DpParameters};
use crate::analytics::model::SiteContribution;
use crate::analytics::secagg::SiteSecrets;
use crate::analytics::{evaluate, Dataset, FeatureSpec, Metrics, TrainedModel};
use crate::checkpoint::Checkpoint;
use crate::node::NetworkId;

/// One in-memory site.
struct SimSite {
    name: String,
    secrets: SiteSecrets,
    data: LocalData,
}

/// A task run in memory.
pub struct Simulation {
    plan: Plan,
    sites: Vec<SimSite>,
    channel: Vec<String>,
    shares: Vec<SharesMessage>,
    active: Vec<u32>,
    theta: Vec<f64>,
    scaling: Option<FeatureScaling>,
    round: u32,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("sites", &self.sites.len())
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

/// One simulated round.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatedRound {
    /// The round.
    pub round: u32,
    /// Survivors (Shamir indices).
    pub survivors: Vec<u32>,
    /// The recovered sum and refusals.
    pub aggregate: Aggregate,
    /// The survivors' plain quantised updates summed without masks (what
    /// the aggregate must equal).
    pub plain_sum: Vec<u64>,
    /// Every survivor's masked input.
    pub masked: Vec<Vec<u64>>,
    /// Every survivor's quantised update before masking.
    pub quantised: Vec<Vec<u64>>,
}

impl Simulation {
    /// A plan for `sites` in-memory sites (named `site-1` …) with
    /// threshold `threshold` and `rounds` rounds, without a budget policy.
    pub fn plan(
        objective: Objective,
        spec: FeatureSpec,
        scaling: Option<FeatureScaling>,
        sites: usize,
        threshold: u32,
        rounds: u32,
        delta: f64,
    ) -> Result<Plan, FlProtocolError> {
        let participants: Vec<Participant> = (0..sites)
            .map(|i| Participant {
                author: hex::encode([i as u8 + 1; 32]),
                name: format!("site-{}", i + 1),
            })
            .collect();
        let (format, format_version) = Plan::header();
        let budgets: Vec<SiteBudget> = participants
            .iter()
            .map(|p| SiteBudget::empty(&p.author, &p.name, delta))
            .collect();
        let mut projected = budgets.clone();
        let dp = match &objective {
            Objective::LogisticRegression {
                rule: super::UpdateRule::DpSgd { dp, .. },
                ..
            } => Some(*dp),
            _ => None,
        };
        projected
            .iter_mut()
            .for_each(|b| b.add(dp.as_ref(), u64::from(rounds)));
        let plan = Plan {
            format,
            format_version,
            task: hex::encode([0x5e; 16]),
            objective,
            participants,
            threshold,
            rounds,
            feature_spec_hash: hex::encode(spec.hash()),
            feature_spec: spec,
            purpose: "HRESCH".into(),
            scaling,
            scaling_from: None,
            frac_bits: crate::analytics::secagg::DEFAULT_FRAC_BITS,
            delta,
            policy: None,
            checkpoint: Checkpoint::compute(NetworkId(vec![0; 16]), Vec::new())
                .map_err(|e| FlProtocolError::Data(e.to_string()))?,
            prior: budgets,
            projected,
            phase_timeout_ms: 1,
        };
        debug_assert_eq!(plan.format_version, FL_FORMAT_VERSION);
        plan.validate()?;
        Ok(plan)
    }

    /// Set up every site (keys and shares) from `seed`.
    pub fn new(plan: Plan, data: Vec<LocalData>, seed: u64) -> Result<Self, FlProtocolError> {
        plan.validate()?;
        if data.len() != plan.participants.len() {
            return Err(FlProtocolError::Data("one dataset per participant".into()));
        }
        let task = hex::decode(&plan.task).unwrap_or_default();
        let sites: Vec<SimSite> = data
            .into_iter()
            .enumerate()
            .map(|(i, data)| {
                let mut secret = [0u8; 32];
                secret[..8].copy_from_slice(&seed.to_be_bytes());
                secret[8] = i as u8;
                SimSite {
                    name: plan.participants[i].name.clone(),
                    secrets: SiteSecrets::new(secret, &task),
                    data,
                }
            })
            .collect();
        let channel: Vec<String> = sites.iter().map(|s| channel_public(&s.secrets)).collect();
        let shares = sites
            .iter()
            .enumerate()
            .map(|(i, s)| make_shares(&plan, i as u32 + 1, &s.name, &s.secrets, &channel))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Simulation {
            active: (1..=sites.len() as u32).collect(),
            theta: plan.initial_parameters(),
            plan,
            sites,
            channel,
            shares,
            scaling: None,
            round: 0,
        })
    }

    /// Run the next round; sites in `drop` (Shamir indices) send no masked
    /// input and leave the task.
    pub fn run_round(&mut self, drop: &[u32]) -> Result<SimulatedRound, FlProtocolError> {
        let round = self.round + 1;
        let plan = &self.plan;
        if round > plan.rounds {
            return Err(FlProtocolError::Data("the task has no more rounds".into()));
        }
        let shares_of = |v: u32| self.shares.get(v as usize - 1);
        let mut masked = BTreeMap::new();
        let mut quantised = Vec::new();
        let mut plain = vec![0u64; plan.vector_len()];
        let fp = crate::analytics::secagg::FixedPoint::new(plan.frac_bits)?;
        for &u in &self.active {
            if drop.contains(&u) {
                continue;
            }
            let site = &self.sites[u as usize - 1];
            let update = site_update(plan, round, &self.theta, &site.data, &site.secrets)?;
            let q = fp.encode(&update, self.active.len() as u64)?;
            crate::analytics::secagg::add_into(&mut plain, &q);
            quantised.push(q);
            let y = masked_input(
                plan,
                round,
                u,
                &site.secrets,
                &update,
                &self.active,
                &shares_of,
            )?;
            let (format, format_version) = MaskedMessage::header();
            masked.insert(
                u,
                MaskedMessage {
                    format,
                    format_version,
                    task: plan.task.clone(),
                    round,
                    site: site.name.clone(),
                    masked: y,
                },
            );
        }
        let (format, format_version) = SurvivorsMessage::header();
        let survivors = SurvivorsMessage {
            format,
            format_version,
            task: plan.task.clone(),
            round,
            survivors: masked.keys().copied().collect(),
            dropped: self
                .active
                .iter()
                .copied()
                .filter(|u| !masked.contains_key(u))
                .collect(),
        };
        let mut unmasks = Vec::new();
        for &u in &survivors.survivors {
            let site = &self.sites[u as usize - 1];
            let opened = |dealer: u32| {
                open_envelope(
                    plan,
                    u,
                    &site.secrets,
                    dealer,
                    &self.channel[dealer as usize - 1],
                    &self.shares[dealer as usize - 1],
                )
            };
            unmasks.push((
                u,
                unmask_message(
                    plan,
                    round,
                    u,
                    &site.name,
                    &site.secrets,
                    &self.active,
                    &survivors,
                    &opened,
                )?,
            ));
        }
        let masked_refs: BTreeMap<u32, &MaskedMessage> =
            masked.iter().map(|(k, v)| (*k, v)).collect();
        let shares_refs: BTreeMap<u32, &SharesMessage> = self
            .shares
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, s))
            .collect();
        let unmask_refs: Vec<(u32, &super::UnmaskMessage)> =
            unmasks.iter().map(|(u, m)| (*u, m)).collect();
        let result = aggregate(&RoundInputs {
            plan,
            round,
            survivors: &survivors,
            active: &self.active,
            masked: &masked_refs,
            shares: &shares_refs,
            unmasks: &unmask_refs,
        })?;
        let samples: u64 = survivors
            .survivors
            .iter()
            .map(|u| self.sites[*u as usize - 1].data.len() as u64)
            .sum();
        match next_parameters(plan, &self.theta, &result.sum, samples)? {
            RoundResult::Parameters(theta) => self.theta = theta,
            RoundResult::Scaling(scaling) => self.scaling = Some(scaling),
        }
        self.active = survivors.survivors.clone();
        self.round = round;
        Ok(SimulatedRound {
            round,
            survivors: survivors.survivors,
            aggregate: result,
            plain_sum: plain,
            masked: masked.into_values().map(|m| m.masked).collect(),
            quantised,
        })
    }

    /// The current parameters.
    pub fn parameters(&self) -> &[f64] {
        &self.theta
    }

    /// The pooled scaling of a moments task, once its round ran.
    pub fn scaling(&self) -> Option<&FeatureScaling> {
        self.scaling.as_ref()
    }

    /// The plan.
    pub fn plan_ref(&self) -> &Plan {
        &self.plan
    }

    /// The model after the rounds run so far (logistic regression).
    pub fn model(&self) -> Result<TrainedModel, FlProtocolError> {
        let sites = self
            .active
            .iter()
            .map(|u| {
                let site = &self.sites[*u as usize - 1];
                SiteContribution {
                    site: site.name.clone(),
                    samples: site.data.len() as u64,
                }
            })
            .collect();
        final_model(&self.plan, &self.theta, self.round, sites)
    }
}

/// Settings of an accuracy-versus-ε sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSettings {
    /// DP-SGD rounds per task.
    pub rounds: u32,
    /// Poisson sampling rate.
    pub sampling_rate: f64,
    /// Per-record clipping norm.
    pub clip_norm: f64,
    /// DP-SGD step size.
    pub learning_rate: f64,
    /// L2 penalty.
    pub l2: f64,
    /// Seeds per ε (sampling and noise differ).
    pub seeds: u64,
    /// The δ of every ε.
    pub delta: f64,
    /// The non-private reference: FedAvg rounds and local steps.
    pub fedavg_rounds: u32,
    /// FedAvg local steps.
    pub fedavg_local_steps: u32,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            rounds: 30,
            sampling_rate: 1.0,
            clip_norm: 1.0,
            learning_rate: 1.0,
            l2: 1e-3,
            seeds: 5,
            delta: 1e-5,
            fedavg_rounds: 12,
            fedavg_local_steps: 10,
        }
    }
}

/// Test accuracy at one ε (or without DP).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepPoint {
    /// The ε (`None`: secure FedAvg without DP).
    pub epsilon: Option<f64>,
    /// The noise multiplier that spends exactly that ε in the rounds.
    pub noise_multiplier: Option<f64>,
    /// Accuracy per seed.
    pub accuracies: Vec<f64>,
}

impl SweepPoint {
    /// Mean accuracy over the seeds.
    pub fn mean(&self) -> f64 {
        self.accuracies.iter().sum::<f64>() / self.accuracies.len().max(1) as f64
    }
}

fn test_accuracy(model: &TrainedModel, test: &Dataset) -> Result<f64, FlProtocolError> {
    match evaluate(model, test).map_err(|e| FlProtocolError::Data(e.to_string()))? {
        Metrics::Classification(m) => Ok(m.accuracy),
        _ => Err(FlProtocolError::Data("not a classifier".into())),
    }
}

/// Secure-aggregation logistic regression over `sites` in memory: first a
/// moments round for the scaling, then secure FedAvg (no DP) and, for each
/// of `epsilons`, DP-SGD with the noise multiplier that spends that ε in
/// `settings.rounds` rounds; test accuracy on `test` for each seed.
pub fn accuracy_sweep(
    spec: &FeatureSpec,
    sites: &[LocalData],
    test: &Dataset,
    epsilons: &[f64],
    settings: &SweepSettings,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<SweepPoint>, FlProtocolError> {
    let n = sites.len();
    let threshold = (n / 2 + 1) as u32;
    let stats = Simulation::plan(
        Objective::Moments,
        spec.clone(),
        None,
        n,
        threshold,
        1,
        settings.delta,
    )?;
    let mut sim = Simulation::new(stats, sites.to_vec(), 0)?;
    sim.run_round(&[])?;
    let scaling = sim
        .scaling()
        .cloned()
        .ok_or(FlProtocolError::Data("no scaling".into()))?;
    let total = 1 + epsilons.len() * settings.seeds as usize;
    let mut done = 0;
    let run = |objective: Objective, rounds: u32, seed: u64| -> Result<f64, FlProtocolError> {
        let plan = Simulation::plan(
            objective,
            spec.clone(),
            Some(scaling.clone()),
            n,
            threshold,
            rounds,
            settings.delta,
        )?;
        let mut sim = Simulation::new(plan, sites.to_vec(), seed)?;
        for _ in 0..rounds {
            sim.run_round(&[])?;
        }
        test_accuracy(&sim.model()?, test)
    };
    let fedavg = Objective::LogisticRegression {
        rule: super::UpdateRule::FedAvg {
            local_steps: settings.fedavg_local_steps,
            learning_rate: 0.5,
        },
        l2: settings.l2,
    };
    let mut points = vec![SweepPoint {
        epsilon: None,
        noise_multiplier: None,
        accuracies: vec![run(fedavg, settings.fedavg_rounds, 0)?],
    }];
    done += 1;
    progress(done, total);
    for &epsilon in epsilons {
        let sigma = noise_multiplier_for(
            &[],
            settings.sampling_rate,
            u64::from(settings.rounds),
            epsilon,
            settings.delta,
        )
        .ok_or_else(|| {
            FlProtocolError::Data(format!("no noise multiplier reaches ε = {epsilon}"))
        })?;
        let mut accuracies = Vec::with_capacity(settings.seeds as usize);
        for seed in 0..settings.seeds {
            let objective = Objective::LogisticRegression {
                rule: super::UpdateRule::DpSgd {
                    learning_rate: settings.learning_rate,
                    dp: DpParameters {
                        clip_norm: settings.clip_norm,
                        noise_multiplier: sigma,
                        sampling_rate: settings.sampling_rate,
                    },
                },
                l2: settings.l2,
            };
            accuracies.push(run(objective, settings.rounds, seed + 1)?);
            done += 1;
            progress(done, total);
        }
        points.push(SweepPoint {
            epsilon: Some(epsilon),
            noise_multiplier: Some(sigma),
            accuracies,
        });
    }
    Ok(points)
}
