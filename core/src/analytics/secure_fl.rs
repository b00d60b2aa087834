//! Federated tasks under secure aggregation and differential privacy: the
//! plan, the messages every step writes to the ledger, and the pure
//! computations of sites and aggregator. `crate::node` runs them on the
//! ledger (`Node::fl_plan`, `Node::fl_site_step`,
//! `Node::fl_coordinator_step`, `Node::fl_verify_round`); benchmarks and
//! the accuracy-versus-ε sweep run the same functions in memory.
//!
//! # A task, step by step
//!
//! | step | who | message (entry kind) | what it holds |
//! | --- | --- | --- | --- |
//! | plan | coordinator | [`Plan`] (`fl-plan`) | participants in Shamir order, threshold `t`, rounds, objective and update rule, scaling, DP parameters, the budget already spent and projected |
//! | keys | each site | [`KeysMessage`] (`fl-keys`) | channel public key; dataset commitment and size, consents relied on |
//! | shares | each site | [`SharesMessage`] (`fl-shares`) | Feldman commitments to every round's mask key `s_r` and self-mask key `b_r`; one sealed envelope of shares per other site |
//! | setup card | coordinator | [`RoundCard`] round 0 (`fl-round`) | every site's keys and shares are in; the starting parameters |
//! | masked input | each active site | [`MaskedMessage`] (`fl-masked`) | its quantised update, masked ([`super::secagg`]) |
//! | survivors | coordinator | [`SurvivorsMessage`] (`fl-survivors`) | whose masked inputs count, who dropped |
//! | unmask | each survivor | [`UnmaskMessage`] (`fl-unmask`) | its shares of `b_r` of survivors, of `s_r` of dropped sites |
//! | round card | coordinator | [`RoundCard`] (`fl-round`) | the exact sum, the new parameters, refused shares, the entries used, the privacy budget spent; the model on the last round |
//!
//! A site that dropped is out of the rest of the task. Round `r + 1` starts
//! with round `r`'s card. Everything a card states is recomputed by
//! [`aggregate`] and [`next_parameters`] from the entries it names.
//!
//! # Objectives and update rules
//!
//! * [`Objective::Moments`] (one round): each site sends `[n, Σx_j, Σx_j²]`;
//!   the card publishes pooled means and standard deviations, the feature
//!   scaling of later tasks. It is not differentially private.
//! * [`Objective::LogisticRegression`] over features scaled by the plan's
//!   [`FeatureScaling`], with an L2 penalty `l2` on the weights:
//!   * [`UpdateRule::FedAvg`]: each site runs `local_steps` full-batch
//!     gradient steps on its mean loss from the current parameters and sends
//!     `n_u·(θ_u − θ)`; the new parameters are `θ + Σ/Σn_u` over survivors
//!     (FedAvg, McMahan et al. 2017). Not differentially private.
//!   * [`UpdateRule::DpSgd`]: each site Poisson-samples its rows with
//!     rate `q`, clips each row's gradient to norm `C`, sums, and adds its
//!     share of the Gaussian noise ([`super::dp`]); the new parameters are
//!     `θ − η·(Σ/(q·N) + l2·w)` where `N` is the survivors' total rows, as
//!     in DP-SGD with Poisson sampling. One row is one patient.
//!
//! Sites publish their row counts (`n_u`) as before secure aggregation; the
//! DP guarantee covers the records, not the counts.
//!
//! # Determinism
//!
//! A site's sampling and noise come from streams keyed by its task secret,
//! so a site restarted mid-round recomputes exactly what it would have
//! sent. Aggregation and parameter updates are integer sums and sequential
//! double-precision arithmetic in participant order: every member
//! recomputes them bit for bit.

use std::collections::{BTreeMap, BTreeSet};

use ndarray::ArrayView2;
use rand_chacha_10::ChaCha20Rng;
use rand_core_10::SeedableRng;
use serde::{Deserialize, Serialize};

use super::dp::{self, Composition, DpParameters};
use super::ledger::DatasetRef;
use super::model::{
    sigmoid, LinearParams, ModelOrigin, ModelParams, SiteContribution, StandardScaler,
};
use super::secagg::{
    self, apply_masks, combine, deal, diffie_hellman, envelope_key, pair_seed, public_of,
    remove_pair_mask, remove_self_mask, self_seed, verify_shares, FixedPoint, SiteSecrets,
};
use super::{FeatureSpec, ModelKind, TrainedModel};
use crate::body::PairBody;
use crate::checkpoint::Checkpoint;
use crate::keys::{open, seal, Sealed, NONCE_LEN};

/// The format version of every federated-task message.
pub const FL_FORMAT_VERSION: u32 = 1;

/// Most participants in one task.
pub const MAX_PARTICIPANTS: usize = 255;
/// Most rounds in one task.
pub const MAX_ROUNDS: u32 = 1000;

const PLAN_FORMAT: &str = "careledger.fl_plan";
const KEYS_FORMAT: &str = "careledger.fl_keys";
const SHARES_FORMAT: &str = "careledger.fl_shares";
const MASKED_FORMAT: &str = "careledger.fl_masked";
const SURVIVORS_FORMAT: &str = "careledger.fl_survivors";
const UNMASK_FORMAT: &str = "careledger.fl_unmask";
const ROUND_FORMAT: &str = "careledger.fl_round";
const POLICY_FORMAT: &str = "careledger.fl_policy";

/// Per-feature centre and scale: a model sees `(x − center) / scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureScaling {
    /// Subtracted from each feature.
    pub center: Vec<f64>,
    /// Each feature is divided by this (> 0).
    pub scale: Vec<f64>,
}

/// How a logistic-regression task moves its parameters each round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum UpdateRule {
    /// Local full-batch gradient steps, averaged by rows (not DP).
    FedAvg {
        /// Gradient steps per round at each site (≥ 1).
        local_steps: u32,
        /// Step size (> 0).
        learning_rate: f64,
    },
    /// One noisy gradient step per round (DP-SGD with Poisson sampling).
    DpSgd {
        /// Step size (> 0).
        learning_rate: f64,
        /// Clipping, noise and sampling.
        dp: DpParameters,
    },
}

/// What a task computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Objective {
    /// Pooled row count, means and standard deviations of the features.
    Moments,
    /// Binary logistic regression on the spec's label.
    LogisticRegression {
        /// The update rule.
        rule: UpdateRule,
        /// L2 penalty on the weights of the mean loss (≥ 0).
        l2: f64,
    },
}

/// One participant, in Shamir order (index = position + 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    /// Author id, hex.
    pub author: String,
    /// Node name as the roster shows it.
    pub name: String,
}

/// What one site's dataset has spent (or would spend).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteBudget {
    /// The site's author id, hex.
    pub site: String,
    /// Its name.
    pub name: String,
    /// Differentially private rounds, merged by parameters.
    pub compositions: Vec<Composition>,
    /// Releases without differential privacy (statistics, FedAvg rounds):
    /// not covered by ε, listed so nobody mistakes them for private ones.
    pub non_private_rounds: u64,
    /// ε of the differentially private rounds at [`Self::delta`].
    pub epsilon: f64,
    /// The δ ε is stated at.
    pub delta: f64,
}

impl SiteBudget {
    /// An empty budget for a site.
    pub fn empty(site: &str, name: &str, delta: f64) -> Self {
        SiteBudget {
            site: site.to_owned(),
            name: name.to_owned(),
            compositions: Vec::new(),
            non_private_rounds: 0,
            epsilon: 0.0,
            delta,
        }
    }

    /// Add `steps` rounds of `rule` (DP or not) and recompute ε.
    pub fn add(&mut self, dp: Option<&DpParameters>, steps: u64) {
        if steps == 0 {
            return;
        }
        match dp {
            Some(params) => {
                match self.compositions.iter_mut().find(|c| {
                    c.sampling_rate == params.sampling_rate
                        && c.noise_multiplier == params.noise_multiplier
                }) {
                    Some(c) => c.steps += steps,
                    None => self.compositions.push(params.composition(steps)),
                }
            }
            None => self.non_private_rounds += steps,
        }
        self.recompute();
    }

    /// Fold another budget of the same site in.
    pub fn merge(&mut self, other: &SiteBudget) {
        for c in &other.compositions {
            let params = DpParameters {
                clip_norm: 1.0,
                noise_multiplier: c.noise_multiplier,
                sampling_rate: c.sampling_rate,
            };
            self.add(Some(&params), c.steps);
        }
        self.add(None, other.non_private_rounds);
        self.recompute();
    }

    /// Recompute ε from the compositions.
    pub fn recompute(&mut self) {
        self.epsilon = dp::epsilon(&self.compositions, self.delta).0;
    }
}

/// A task plan (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// `careledger.fl_plan`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// Task id: 16 random bytes, hex.
    pub task: String,
    /// What to compute.
    pub objective: Objective,
    /// Participants in Shamir order.
    pub participants: Vec<Participant>,
    /// Shares needed to recover a secret; fewest survivors a round needs.
    pub threshold: u32,
    /// Rounds (1 for moments).
    pub rounds: u32,
    /// Feature spec, in full.
    pub feature_spec: FeatureSpec,
    /// Its hash, hex.
    pub feature_spec_hash: String,
    /// Purpose code consent must permit (`HRESCH`).
    pub purpose: String,
    /// Feature scaling (logistic regression).
    pub scaling: Option<FeatureScaling>,
    /// The moments task's last round card the scaling came from, if any.
    pub scaling_from: Option<String>,
    /// Fixed-point fractional bits.
    pub frac_bits: u32,
    /// The δ budgets are stated at.
    pub delta: f64,
    /// The network's effective budget policy at the plan's checkpoint.
    pub policy: Option<dp::BudgetPolicy>,
    /// The study network's ledger state the plan was made at.
    pub checkpoint: Checkpoint,
    /// What each participant's dataset had spent at the checkpoint.
    pub prior: Vec<SiteBudget>,
    /// What each would have spent after every round of this task.
    pub projected: Vec<SiteBudget>,
    /// How long the coordinator waits for a phase before going on without
    /// the missing sites (milliseconds).
    pub phase_timeout_ms: u64,
}

/// Why a plan is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlanError {
    /// A field breaks its rule.
    #[error("plan field {field}: {rule}")]
    Field {
        /// The field.
        field: &'static str,
        /// The rule.
        rule: &'static str,
    },
}

fn rule(ok: bool, field: &'static str, rule: &'static str) -> Result<(), InvalidPlanError> {
    if ok {
        Ok(())
    } else {
        Err(InvalidPlanError::Field { field, rule })
    }
}

impl Plan {
    /// Check every rule that does not need the ledger.
    pub fn validate(&self) -> Result<(), InvalidPlanError> {
        rule(
            self.format == PLAN_FORMAT && self.format_version == FL_FORMAT_VERSION,
            "format",
            "must be careledger.fl_plan version 1",
        )?;
        rule(
            hex::decode(&self.task).is_ok_and(|b| b.len() == 16),
            "task",
            "must be 16 bytes of hex",
        )?;
        let n = self.participants.len();
        rule(
            (2..=MAX_PARTICIPANTS).contains(&n),
            "participants",
            "must be 2 to 255 sites",
        )?;
        let distinct: BTreeSet<&str> = self
            .participants
            .iter()
            .map(|p| p.author.as_str())
            .collect();
        rule(distinct.len() == n, "participants", "must be distinct")?;
        rule(
            self.participants
                .iter()
                .all(|p| hex::decode(&p.author).is_ok_and(|b| b.len() == 32)),
            "participants",
            "author ids must be 32 bytes of hex",
        )?;
        let t = self.threshold as usize;
        rule(
            t >= 2 && t <= n && 2 * t > n,
            "threshold",
            "must be at least 2, at most the participants, and more than half of them",
        )?;
        rule(
            (1..=MAX_ROUNDS).contains(&self.rounds),
            "rounds",
            "must be 1 to 1000",
        )?;
        rule(
            hex::encode(self.feature_spec.hash()) == self.feature_spec_hash,
            "feature_spec_hash",
            "must be the hash of feature_spec",
        )?;
        rule(
            !self.feature_spec.features.is_empty(),
            "feature_spec",
            "must have at least one feature",
        )?;
        rule(
            (1..=48).contains(&self.frac_bits),
            "frac_bits",
            "must be 1 to 48",
        )?;
        rule(
            self.delta > 0.0 && self.delta < 1.0,
            "delta",
            "must be above 0 and below 1",
        )?;
        rule(
            self.phase_timeout_ms > 0,
            "phase_timeout_ms",
            "must be positive",
        )?;
        let d = self.feature_spec.features.len();
        match &self.objective {
            Objective::Moments => {
                rule(self.rounds == 1, "rounds", "a moments task has one round")?;
                rule(
                    self.scaling.is_none(),
                    "scaling",
                    "a moments task takes no scaling",
                )?;
            }
            Objective::LogisticRegression { rule: update, l2 } => {
                rule(
                    self.feature_spec.label.is_some(),
                    "feature_spec",
                    "logistic regression needs a label",
                )?;
                rule(l2.is_finite() && *l2 >= 0.0, "l2", "must be finite and ≥ 0")?;
                let scaling = self.scaling.as_ref().ok_or(InvalidPlanError::Field {
                    field: "scaling",
                    rule: "logistic regression needs a feature scaling",
                })?;
                rule(
                    scaling.center.len() == d
                        && scaling.scale.len() == d
                        && scaling.center.iter().all(|c| c.is_finite())
                        && scaling.scale.iter().all(|s| s.is_finite() && *s > 0.0),
                    "scaling",
                    "needs one finite centre and one finite positive scale per feature",
                )?;
                match update {
                    UpdateRule::FedAvg {
                        local_steps,
                        learning_rate,
                    } => {
                        rule(
                            (1..=10_000).contains(local_steps),
                            "local_steps",
                            "must be 1 to 10000",
                        )?;
                        rule(
                            learning_rate.is_finite() && *learning_rate > 0.0,
                            "learning_rate",
                            "must be finite and above 0",
                        )?;
                    }
                    UpdateRule::DpSgd { learning_rate, dp } => {
                        rule(
                            learning_rate.is_finite() && *learning_rate > 0.0,
                            "learning_rate",
                            "must be finite and above 0",
                        )?;
                        dp.validate().map_err(|_| InvalidPlanError::Field {
                            field: "dp",
                            rule: "clip norm and noise multiplier must be finite and above 0, sampling rate in (0, 1]",
                        })?;
                    }
                }
            }
        }
        rule(
            self.prior.len() == n && self.projected.len() == n,
            "prior",
            "must hold one budget per participant",
        )?;
        Ok(())
    }

    /// The DP parameters, if the task is differentially private.
    pub fn dp(&self) -> Option<&DpParameters> {
        match &self.objective {
            Objective::LogisticRegression {
                rule: UpdateRule::DpSgd { dp, .. },
                ..
            } => Some(dp),
            _ => None,
        }
    }

    /// Shamir index (1-based) of an author id (hex).
    pub fn index_of(&self, author_hex: &str) -> Option<u32> {
        self.participants
            .iter()
            .position(|p| p.author == author_hex)
            .map(|i| i as u32 + 1)
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.feature_spec.features.len()
    }

    /// Length of the vectors summed each round.
    pub fn vector_len(&self) -> usize {
        match self.objective {
            Objective::Moments => 1 + 2 * self.features(),
            Objective::LogisticRegression { .. } => self.features() + 1,
        }
    }

    /// The parameters round 1 starts from (zeros; moments: none).
    pub fn initial_parameters(&self) -> Vec<f64> {
        match self.objective {
            Objective::Moments => Vec::new(),
            Objective::LogisticRegression { .. } => vec![0.0; self.features() + 1],
        }
    }

    /// Bytes binding a seed or envelope to this task (and round).
    pub fn context(&self, round: u32) -> Vec<u8> {
        let mut context = hex::decode(&self.task).unwrap_or_default();
        context.extend_from_slice(&round.to_be_bytes());
        context
    }

    fn fixed_point(&self) -> Result<FixedPoint, FlProtocolError> {
        FixedPoint::new(self.frac_bits).map_err(FlProtocolError::SecAgg)
    }
}

/// A site's first message: its channel key and what its dataset is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysMessage {
    /// `careledger.fl_keys`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// The site's name.
    pub site: String,
    /// Channel public key (ristretto255, hex).
    pub channel_public: String,
    /// The site's own data network (hex).
    pub source_network: String,
    /// Digest of the site's checkpoint of it (hex).
    pub source_checkpoint_digest: String,
    /// The dataset commitment: Merkle root over (record id, heads).
    pub dataset: DatasetRef,
    /// Consent ids relied on, sorted.
    pub consent_ids: Vec<String>,
    /// Charts left out because consent did not permit the purpose.
    pub excluded_by_consent: u64,
    /// Rows the site computes on (`n_u`).
    pub samples: u64,
}

/// One sealed envelope of shares for one holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The holder's Shamir index.
    pub holder: u32,
    /// `Sealed::to_bytes`, hex: for each round, the holder's share of `s_r`
    /// then of `b_r` (32 bytes each).
    pub sealed: String,
}

/// A site's second message: commitments and envelopes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharesMessage {
    /// `careledger.fl_shares`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// The site's name.
    pub site: String,
    /// Per round, Feldman commitments to `s_r` (hex points; the first is the
    /// round's mask public key).
    pub mask_commitments: Vec<Vec<String>>,
    /// Per round, Feldman commitments to `b_r`.
    pub self_commitments: Vec<Vec<String>>,
    /// One envelope per other participant, by holder index.
    pub envelopes: Vec<Envelope>,
}

/// A site's masked input for one round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskedMessage {
    /// `careledger.fl_masked`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// The round (1-based).
    pub round: u32,
    /// The site's name.
    pub site: String,
    /// The masked vector, elements of `Z_{2^64}`.
    pub masked: Vec<u64>,
}

/// The coordinator's list of whose masked inputs count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurvivorsMessage {
    /// `careledger.fl_survivors`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// The round.
    pub round: u32,
    /// Shamir indices whose masked inputs are summed, ascending.
    pub survivors: Vec<u32>,
    /// Active indices without a masked input in time, ascending.
    pub dropped: Vec<u32>,
}

/// One revealed share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealedShare {
    /// The dealer's Shamir index.
    pub dealer: u32,
    /// The share, hex scalar.
    pub share: String,
}

/// A survivor's revealed shares for one round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmaskMessage {
    /// `careledger.fl_unmask`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// The round.
    pub round: u32,
    /// The site's name.
    pub site: String,
    /// Shares of the survivors' `b_r`.
    pub self_shares: Vec<RevealedShare>,
    /// Shares of the dropped sites' `s_r`.
    pub mask_shares: Vec<RevealedShare>,
}

/// A share the aggregator did not use, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// The Shamir index of the site whose message it was.
    pub site: u32,
    /// The dealer the share claimed to be of (0: the whole message).
    pub dealer: u32,
    /// Why.
    pub reason: String,
}

/// How a round ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RoundOutcome {
    /// The sum was recovered and the parameters moved.
    Completed,
    /// The task stopped here.
    Aborted {
        /// Why (names sites and steps, never data).
        reason: String,
    },
}

/// The coordinator's record of one round (round 0: setup).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundCard {
    /// `careledger.fl_round`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// The plan entry (hex).
    pub plan_entry: String,
    /// The round (0 = setup).
    pub round: u32,
    /// How it ended.
    pub outcome: RoundOutcome,
    /// Setup: the keys and shares entries, by participant. Rounds: the
    /// masked-input entries summed, in survivor order.
    pub inputs: Vec<String>,
    /// The survivors entry (rounds).
    pub survivors_entry: Option<String>,
    /// Survivors, ascending.
    pub survivors: Vec<u32>,
    /// Dropped this round, ascending.
    pub dropped: Vec<u32>,
    /// The unmask entries whose shares were considered.
    pub unmask_entries: Vec<String>,
    /// Shares not used, and why.
    pub refused: Vec<Refusal>,
    /// The exact sum modulo 2⁶⁴ of the survivors' quantised updates.
    pub aggregate: Vec<u64>,
    /// Rows of the survivors (`Σ n_u`).
    pub samples: u64,
    /// Parameters after the round (logistic regression; scaled space,
    /// weights then intercept).
    pub parameters: Vec<f64>,
    /// The pooled scaling (moments).
    pub scaling: Option<FeatureScaling>,
    /// Privacy budget of each survivor's dataset after this round.
    pub budget: Vec<SiteBudget>,
    /// Whether the task ends with this card.
    pub last: bool,
    /// SHA-256 of the model bytes carried beside the card (last round).
    pub model_hash: Option<String>,
}

/// A member's privacy-budget policy for a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyMessage {
    /// `careledger.fl_policy`.
    pub format: String,
    /// [`FL_FORMAT_VERSION`].
    pub format_version: u32,
    /// The policy.
    pub policy: dp::BudgetPolicy,
}

/// A message body that does not hold what its kind says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} body malformed: {detail}")]
pub struct DecodeFlBodyError {
    /// The message kind.
    pub kind: &'static str,
    /// What is wrong (never a value).
    pub detail: String,
}

macro_rules! message {
    ($ty:ident, $format:ident, $kind:literal) => {
        impl $ty {
            /// The entry body (canonical JSON).
            pub fn encode(&self) -> Vec<u8> {
                // Plain data with finite floats always serializes.
                serde_json::to_vec(self).unwrap_or_default()
            }

            /// Read an entry body.
            pub fn decode(body: &[u8]) -> Result<Self, DecodeFlBodyError> {
                let value: $ty = serde_json::from_slice(body).map_err(|e| DecodeFlBodyError {
                    kind: $kind,
                    detail: format!("JSON: {e}"),
                })?;
                if value.format != $format || value.format_version != FL_FORMAT_VERSION {
                    return Err(DecodeFlBodyError {
                        kind: $kind,
                        detail: format!("not {} version {}", $format, FL_FORMAT_VERSION),
                    });
                }
                Ok(value)
            }

            /// `(format, format_version)` for a new message.
            pub fn header() -> (String, u32) {
                ($format.to_owned(), FL_FORMAT_VERSION)
            }
        }
    };
}

message!(Plan, PLAN_FORMAT, "fl-plan");
message!(KeysMessage, KEYS_FORMAT, "fl-keys");
message!(SharesMessage, SHARES_FORMAT, "fl-shares");
message!(MaskedMessage, MASKED_FORMAT, "fl-masked");
message!(SurvivorsMessage, SURVIVORS_FORMAT, "fl-survivors");
message!(UnmaskMessage, UNMASK_FORMAT, "fl-unmask");
message!(PolicyMessage, POLICY_FORMAT, "fl-policy");

impl RoundCard {
    /// The entry body: card JSON and, on the last round, the model bytes.
    pub fn encode_body(&self, model: &[u8]) -> Vec<u8> {
        PairBody {
            json: serde_json::to_vec(self).unwrap_or_default(),
            bytes: model.to_vec(),
        }
        .encode()
    }

    /// Read a round-card body: `(card, model bytes)`.
    pub fn decode_body(body: &[u8]) -> Result<(RoundCard, Vec<u8>), DecodeFlBodyError> {
        let bad = |detail: String| DecodeFlBodyError {
            kind: "fl-round",
            detail,
        };
        let pair = PairBody::decode(body).map_err(|e| bad(e.to_string()))?;
        let card: RoundCard =
            serde_json::from_slice(&pair.json).map_err(|e| bad(format!("JSON: {e}")))?;
        if card.format != ROUND_FORMAT || card.format_version != FL_FORMAT_VERSION {
            return Err(bad(format!(
                "not {ROUND_FORMAT} version {FL_FORMAT_VERSION}"
            )));
        }
        let hash = (!pair.bytes.is_empty()).then(|| super::ledger::sha256_hex(&pair.bytes));
        if hash != card.model_hash {
            return Err(bad("model bytes do not match model_hash".into()));
        }
        Ok((card, pair.bytes))
    }

    /// `(format, format_version)` for a new card.
    pub fn header() -> (String, u32) {
        (ROUND_FORMAT.to_owned(), FL_FORMAT_VERSION)
    }
}

/// Check that an opened body of a federated-task kind decodes (receive
/// refuses entries that do not).
pub fn check_body(kind: crate::entry::EntryKind, body: &[u8]) -> Result<(), String> {
    use crate::entry::EntryKind;
    let result = match kind {
        EntryKind::FlPolicy => PolicyMessage::decode(body).map(drop),
        EntryKind::FlPlan => Plan::decode(body).map(drop),
        EntryKind::FlKeys => KeysMessage::decode(body).map(drop),
        EntryKind::FlShares => SharesMessage::decode(body).map(drop),
        EntryKind::FlMasked => MaskedMessage::decode(body).map(drop),
        EntryKind::FlSurvivors => SurvivorsMessage::decode(body).map(drop),
        EntryKind::FlUnmask => UnmaskMessage::decode(body).map(drop),
        EntryKind::FlRound => RoundCard::decode_body(body).map(drop),
        _ => Ok(()),
    };
    result.map_err(|e| e.to_string())
}

/// A protocol step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlProtocolError {
    /// Cryptography or fixed point.
    #[error(transparent)]
    SecAgg(#[from] secagg::SecAggError),
    /// The plan is unusable.
    #[error(transparent)]
    Plan(#[from] InvalidPlanError),
    /// A site's message is missing or inconsistent.
    #[error("site {site}: {problem}")]
    Site {
        /// Shamir index.
        site: u32,
        /// What is wrong.
        problem: String,
    },
    /// Not enough valid shares to recover a dealer's secret.
    #[error("only {valid} valid share(s) of site {dealer}'s {what}, {needed} needed")]
    TooFewShares {
        /// The dealer.
        dealer: u32,
        /// Which secret.
        what: &'static str,
        /// Valid shares found.
        valid: usize,
        /// The threshold.
        needed: usize,
    },
    /// The survivor list breaks a rule.
    #[error("survivor list: {0}")]
    Survivors(String),
    /// The local data does not fit the plan.
    #[error("local data: {0}")]
    Data(String),
}

fn site_error(site: u32, problem: impl Into<String>) -> FlProtocolError {
    FlProtocolError::Site {
        site,
        problem: problem.into(),
    }
}

/// A site's own rows: raw features and labels.
#[derive(Clone, PartialEq)]
pub struct LocalData {
    rows: Vec<Vec<f64>>,
    labels: Vec<f64>,
}

impl std::fmt::Debug for LocalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalData")
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl LocalData {
    /// Rows (all of one width) and their labels (0 or 1; empty for moments).
    pub fn new(rows: Vec<Vec<f64>>, labels: Vec<f64>) -> Result<Self, FlProtocolError> {
        let width = rows.first().map(Vec::len).unwrap_or(0);
        if rows.is_empty() || rows.iter().any(|r| r.len() != width) {
            return Err(FlProtocolError::Data(
                "needs at least one row, all of one width".into(),
            ));
        }
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            return Err(FlProtocolError::Data(
                "feature values must be finite".into(),
            ));
        }
        if !labels.is_empty()
            && (labels.len() != rows.len() || labels.iter().any(|y| *y != 0.0 && *y != 1.0))
        {
            return Err(FlProtocolError::Data(
                "labels must be 0 or 1, one per row".into(),
            ));
        }
        Ok(LocalData { rows, labels })
    }

    /// From a feature matrix and optional targets.
    pub fn from_arrays(
        features: ArrayView2<'_, f64>,
        targets: Option<&[f64]>,
    ) -> Result<Self, FlProtocolError> {
        let rows = features.outer_iter().map(|r| r.to_vec()).collect();
        LocalData::new(rows, targets.map(<[f64]>::to_vec).unwrap_or_default())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row (never, once built).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn scaled(row: &[f64], scaling: &FeatureScaling, out: &mut Vec<f64>) {
    out.clear();
    out.extend(
        row.iter()
            .zip(scaling.center.iter().zip(&scaling.scale))
            .map(|(x, (c, s))| (x - c) / s),
    );
    out.push(1.0);
}

/// Gradient of one row's log-loss at `theta` (features scaled, 1 appended).
fn row_gradient(theta: &[f64], z: &[f64], y: f64, out: &mut [f64]) {
    let margin: f64 = theta.iter().zip(z).map(|(w, x)| w * x).sum();
    let residual = sigmoid(margin) - y;
    out.iter_mut().zip(z).for_each(|(g, x)| *g = residual * x);
}

/// What site `me` contributes to round `round`, before quantisation and
/// masking (see the [module docs](self) for each objective).
pub fn site_update(
    plan: &Plan,
    round: u32,
    theta: &[f64],
    data: &LocalData,
    secrets: &SiteSecrets,
) -> Result<Vec<f64>, FlProtocolError> {
    let d = plan.features();
    if data.rows[0].len() != d {
        return Err(FlProtocolError::Data(format!(
            "{} features per row, the plan has {d}",
            data.rows[0].len()
        )));
    }
    let n = data.len() as f64;
    match &plan.objective {
        Objective::Moments => {
            let mut out = vec![0.0; 1 + 2 * d];
            out[0] = n;
            for row in &data.rows {
                for (j, x) in row.iter().enumerate() {
                    out[1 + j] += x;
                    out[1 + d + j] += x * x;
                }
            }
            Ok(out)
        }
        Objective::LogisticRegression { rule, l2 } => {
            let scaling = plan
                .scaling
                .as_ref()
                .ok_or(FlProtocolError::Data("the plan has no scaling".into()))?;
            if data.labels.len() != data.len() {
                return Err(FlProtocolError::Data("rows need labels".into()));
            }
            if theta.len() != d + 1 {
                return Err(FlProtocolError::Data("parameter count".into()));
            }
            let z: Vec<Vec<f64>> = data
                .rows
                .iter()
                .map(|row| {
                    let mut out = Vec::with_capacity(d + 1);
                    scaled(row, scaling, &mut out);
                    out
                })
                .collect();
            let mut g = vec![0.0; d + 1];
            match rule {
                UpdateRule::FedAvg {
                    local_steps,
                    learning_rate,
                } => {
                    let mut local = theta.to_vec();
                    let mut sum = vec![0.0; d + 1];
                    for _ in 0..*local_steps {
                        sum.iter_mut().for_each(|s| *s = 0.0);
                        for (zi, yi) in z.iter().zip(&data.labels) {
                            row_gradient(&local, zi, *yi, &mut g);
                            sum.iter_mut().zip(&g).for_each(|(s, gi)| *s += gi);
                        }
                        for j in 0..=d {
                            let penalty = if j < d { l2 * local[j] } else { 0.0 };
                            local[j] -= learning_rate * (sum[j] / n + penalty);
                        }
                    }
                    Ok(local.iter().zip(theta).map(|(a, b)| n * (a - b)).collect())
                }
                UpdateRule::DpSgd { dp, .. } => {
                    let mut sampler = ChaCha20Rng::from_seed(*secrets.stream_seed("sample", round));
                    let kept = dp::poisson_sample(&mut sampler, data.len(), dp.sampling_rate);
                    let mut sum = vec![0.0; d + 1];
                    for i in kept {
                        row_gradient(theta, &z[i], data.labels[i], &mut g);
                        dp::clip_l2(&mut g, dp.clip_norm);
                        sum.iter_mut().zip(&g).for_each(|(s, gi)| *s += gi);
                    }
                    let std = dp.noise_multiplier * dp.clip_norm / f64::from(plan.threshold).sqrt();
                    let mut noise_rng =
                        ChaCha20Rng::from_seed(*secrets.stream_seed("noise", round));
                    let noise = dp::gaussian_vector(&mut noise_rng, std, d + 1);
                    sum.iter_mut().zip(&noise).for_each(|(s, e)| *s += e);
                    Ok(sum)
                }
            }
        }
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
}

/// The channel public key a site publishes.
pub fn channel_public(secrets: &SiteSecrets) -> String {
    hex::encode(public_of(&secrets.channel_secret()))
}

fn deal_round(
    plan: &Plan,
    secrets: &SiteSecrets,
    round: u32,
) -> Result<(secagg::Dealt, secagg::Dealt), FlProtocolError> {
    let (t, n) = (plan.threshold as usize, plan.participants.len());
    let mask = deal(
        &secrets.mask_secret(round),
        t,
        n,
        *secrets.stream_seed("deal-mask", round),
    )?;
    let own = deal(
        &secrets.self_secret(round),
        t,
        n,
        *secrets.stream_seed("deal-self", round),
    )?;
    Ok((mask, own))
}

fn envelope_aad(plan: &Plan, dealer: u32, holder: u32) -> Vec<u8> {
    let mut aad = b"careledger/v1/secagg/envelope".to_vec();
    aad.extend_from_slice(&plan.context(0));
    aad.extend_from_slice(&dealer.to_be_bytes());
    aad.extend_from_slice(&holder.to_be_bytes());
    aad
}

/// Site `me`'s shares message, given every participant's channel public key
/// (hex, in Shamir order).
pub fn make_shares(
    plan: &Plan,
    me: u32,
    site_name: &str,
    secrets: &SiteSecrets,
    channel_publics: &[String],
) -> Result<SharesMessage, FlProtocolError> {
    let n = plan.participants.len();
    if channel_publics.len() != n {
        return Err(FlProtocolError::Data(
            "one channel key per participant".into(),
        ));
    }
    let mut mask_commitments = Vec::with_capacity(plan.rounds as usize);
    let mut self_commitments = Vec::with_capacity(plan.rounds as usize);
    let mut plaintexts: Vec<zeroize::Zeroizing<Vec<u8>>> = (0..n)
        .map(|_| zeroize::Zeroizing::new(Vec::new()))
        .collect();
    for round in 1..=plan.rounds {
        let (mask, own) = deal_round(plan, secrets, round)?;
        mask_commitments.push(mask.commitments.iter().map(hex::encode).collect());
        self_commitments.push(own.commitments.iter().map(hex::encode).collect());
        for (holder, plaintext) in plaintexts.iter_mut().enumerate() {
            plaintext.extend_from_slice(&mask.shares[holder]);
            plaintext.extend_from_slice(&own.shares[holder]);
        }
    }
    let channel = secrets.channel_secret();
    let mut envelopes = Vec::with_capacity(n - 1);
    for (i, plaintext) in plaintexts.iter().enumerate() {
        let holder = i as u32 + 1;
        if holder == me {
            continue;
        }
        let public = hex32(&channel_publics[i])
            .ok_or_else(|| site_error(holder, "channel key is not 32 bytes of hex"))?;
        let key = envelope_key(&channel, &public, &plan.context(0), me, holder)
            .map_err(|_| site_error(holder, "channel key is not a valid point"))?;
        let nonce_seed = secrets.stream_seed("envelope-nonce", holder);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&nonce_seed[..NONCE_LEN]);
        let sealed = seal(&key, &envelope_aad(plan, me, holder), plaintext, nonce)
            .map_err(|_| FlProtocolError::Data("envelope too large".into()))?;
        envelopes.push(Envelope {
            holder,
            sealed: hex::encode(sealed.to_bytes()),
        });
    }
    let (format, format_version) = SharesMessage::header();
    Ok(SharesMessage {
        format,
        format_version,
        task: plan.task.clone(),
        site: site_name.to_owned(),
        mask_commitments,
        self_commitments,
        envelopes,
    })
}

/// Check a shares message against the plan: one commitment list of `t`
/// valid points per round and secret, one envelope per other participant.
pub fn check_shares(
    plan: &Plan,
    dealer: u32,
    shares: &SharesMessage,
) -> Result<(), FlProtocolError> {
    let t = plan.threshold as usize;
    let rounds = plan.rounds as usize;
    let well_formed = |lists: &Vec<Vec<String>>| {
        lists.len() == rounds
            && lists.iter().all(|list| {
                list.len() == t
                    && list
                        .iter()
                        .all(|c| hex32(c).is_some_and(|p| secagg::is_point(&p)))
            })
    };
    if shares.task != plan.task {
        return Err(site_error(dealer, "shares of another task"));
    }
    if !well_formed(&shares.mask_commitments) || !well_formed(&shares.self_commitments) {
        return Err(site_error(
            dealer,
            "commitments are not t valid points per round",
        ));
    }
    let holders: BTreeSet<u32> = shares.envelopes.iter().map(|e| e.holder).collect();
    let expected: BTreeSet<u32> = (1..=plan.participants.len() as u32)
        .filter(|h| *h != dealer)
        .collect();
    if holders != expected || shares.envelopes.len() != expected.len() {
        return Err(site_error(
            dealer,
            "needs exactly one envelope per other participant",
        ));
    }
    Ok(())
}

fn commitments(list: &[Vec<String>], round: u32) -> Vec<[u8; 32]> {
    list.get(round as usize - 1)
        .map(|l| l.iter().filter_map(|c| hex32(c)).collect())
        .unwrap_or_default()
}

/// The mask public key `S_{u,r}` in a dealer's shares message.
pub fn mask_public(shares: &SharesMessage, round: u32) -> Option<[u8; 32]> {
    commitments(&shares.mask_commitments, round)
        .first()
        .copied()
}

/// Site `me`'s masked input for `round`: `update` quantised for
/// `active.len()` parties and masked with its self mask and a pair mask for
/// every other active site. `shares_of(v)` gives site `v`'s shares message.
pub fn masked_input<'a>(
    plan: &Plan,
    round: u32,
    me: u32,
    secrets: &SiteSecrets,
    update: &[f64],
    active: &[u32],
    shares_of: &dyn Fn(u32) -> Option<&'a SharesMessage>,
) -> Result<Vec<u64>, FlProtocolError> {
    let fp = plan.fixed_point()?;
    let mut masked = fp.encode(update, active.len() as u64)?;
    let context = plan.context(round);
    let mask_secret = secrets.mask_secret(round);
    let mut pairs = Vec::with_capacity(active.len());
    for &other in active.iter().filter(|v| **v != me) {
        let public = shares_of(other)
            .and_then(|s| mask_public(s, round))
            .ok_or_else(|| site_error(other, "no mask key for this round"))?;
        let shared = zeroize::Zeroizing::new(
            diffie_hellman(&mask_secret, &public)
                .map_err(|_| site_error(other, "mask key is not a valid point"))?,
        );
        pairs.push((other, pair_seed(&shared, &context, me, other)));
    }
    let own = self_seed(&secrets.self_secret(round), &context);
    apply_masks(&mut masked, me, &own, &pairs);
    Ok(masked)
}

/// Per round, a holder's share of a dealer's `s_r` and of its `b_r`.
pub type RoundShares = Vec<([u8; 32], [u8; 32])>;

/// Open the envelope dealer `dealer` sealed for `me`: per round, the share
/// of `s_r` and of `b_r`.
pub fn open_envelope(
    plan: &Plan,
    me: u32,
    secrets: &SiteSecrets,
    dealer: u32,
    dealer_channel_public: &str,
    shares: &SharesMessage,
) -> Result<RoundShares, FlProtocolError> {
    let envelope = shares
        .envelopes
        .iter()
        .find(|e| e.holder == me)
        .ok_or_else(|| site_error(dealer, "no envelope for this holder"))?;
    let public = hex32(dealer_channel_public)
        .ok_or_else(|| site_error(dealer, "channel key is not 32 bytes of hex"))?;
    let key = envelope_key(
        &secrets.channel_secret(),
        &public,
        &plan.context(0),
        dealer,
        me,
    )
    .map_err(|_| site_error(dealer, "channel key is not a valid point"))?;
    let sealed = hex::decode(&envelope.sealed)
        .ok()
        .and_then(|b| Sealed::from_bytes(&b).ok())
        .ok_or_else(|| site_error(dealer, "envelope is malformed"))?;
    let plain = zeroize::Zeroizing::new(
        open(&key, &envelope_aad(plan, dealer, me), &sealed)
            .map_err(|_| site_error(dealer, "envelope does not open"))?,
    );
    if plain.len() != plan.rounds as usize * 64 {
        return Err(site_error(
            dealer,
            "envelope holds the wrong number of shares",
        ));
    }
    Ok(plain
        .chunks_exact(64)
        .map(|c| {
            let mut s = [0u8; 32];
            let mut b = [0u8; 32];
            s.copy_from_slice(&c[..32]);
            b.copy_from_slice(&c[32..]);
            (s, b)
        })
        .collect())
}

/// Check a survivor list against the round's active sites and threshold.
pub fn check_survivors(
    plan: &Plan,
    active: &[u32],
    survivors: &SurvivorsMessage,
) -> Result<(), FlProtocolError> {
    let s: BTreeSet<u32> = survivors.survivors.iter().copied().collect();
    let d: BTreeSet<u32> = survivors.dropped.iter().copied().collect();
    let a: BTreeSet<u32> = active.iter().copied().collect();
    if s.len() != survivors.survivors.len() || d.len() != survivors.dropped.len() {
        return Err(FlProtocolError::Survivors("a site is listed twice".into()));
    }
    if !s.is_disjoint(&d) {
        return Err(FlProtocolError::Survivors(
            "a site is both a survivor and dropped".into(),
        ));
    }
    if s.union(&d).copied().collect::<BTreeSet<_>>() != a {
        return Err(FlProtocolError::Survivors(
            "survivors and dropped must be exactly the round's active sites".into(),
        ));
    }
    if s.len() < plan.threshold as usize {
        return Err(FlProtocolError::Survivors(format!(
            "{} survivor(s), the threshold is {}",
            s.len(),
            plan.threshold
        )));
    }
    Ok(())
}

/// Site `me`'s unmask message for a round: its shares of every survivor's
/// `b_r` and every dropped site's `s_r` (never both for one site). `opened`
/// gives the shares of each other dealer (from [`open_envelope`]).
#[allow(clippy::too_many_arguments)] // one per protocol input, all needed
pub fn unmask_message(
    plan: &Plan,
    round: u32,
    me: u32,
    site_name: &str,
    secrets: &SiteSecrets,
    active: &[u32],
    survivors: &SurvivorsMessage,
    opened: &dyn Fn(u32) -> Result<RoundShares, FlProtocolError>,
) -> Result<UnmaskMessage, FlProtocolError> {
    check_survivors(plan, active, survivors)?;
    if !survivors.survivors.contains(&me) {
        return Err(FlProtocolError::Survivors(
            "this site is not a survivor of the round, so it reveals nothing".into(),
        ));
    }
    let r = round as usize - 1;
    let share_of = |dealer: u32, mask: bool| -> Result<String, FlProtocolError> {
        if dealer == me {
            let (m, b) = deal_round(plan, secrets, round)?;
            let own = if mask { &m } else { &b };
            Ok(hex::encode(own.shares[me as usize - 1]))
        } else {
            let shares = opened(dealer)?;
            let (s, b) = shares
                .get(r)
                .ok_or_else(|| site_error(dealer, "no share for this round"))?;
            Ok(hex::encode(if mask { s } else { b }))
        }
    };
    let mut self_shares = Vec::with_capacity(survivors.survivors.len());
    for &u in &survivors.survivors {
        self_shares.push(RevealedShare {
            dealer: u,
            share: share_of(u, false)?,
        });
    }
    let mut mask_shares = Vec::with_capacity(survivors.dropped.len());
    for &u in &survivors.dropped {
        mask_shares.push(RevealedShare {
            dealer: u,
            share: share_of(u, true)?,
        });
    }
    let (format, format_version) = UnmaskMessage::header();
    Ok(UnmaskMessage {
        format,
        format_version,
        task: plan.task.clone(),
        round,
        site: site_name.to_owned(),
        self_shares,
        mask_shares,
    })
}

/// Everything [`aggregate`] reads for one round.
pub struct RoundInputs<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The round.
    pub round: u32,
    /// The survivor list.
    pub survivors: &'a SurvivorsMessage,
    /// Active sites of the round.
    pub active: &'a [u32],
    /// Masked input of each survivor.
    pub masked: &'a BTreeMap<u32, &'a MaskedMessage>,
    /// Shares message of each participant.
    pub shares: &'a BTreeMap<u32, &'a SharesMessage>,
    /// Unmask messages, each with its author's Shamir index, in the order
    /// considered (the first per site counts).
    pub unmasks: &'a [(u32, &'a UnmaskMessage)],
}

/// What [`aggregate`] recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// The exact sum modulo 2⁶⁴ of the survivors' quantised updates.
    pub sum: Vec<u64>,
    /// Shares and messages not used, and why.
    pub refused: Vec<Refusal>,
}

/// Recover the survivors' sum: add the masked inputs, verify every revealed
/// share against its dealer's Feldman commitments, interpolate each
/// survivor's `b_r` and each dropped site's `s_r` from the first `t` valid
/// shares (by holder index), and remove the masks.
pub fn aggregate(inputs: &RoundInputs<'_>) -> Result<Aggregate, FlProtocolError> {
    let plan = inputs.plan;
    let round = inputs.round;
    check_survivors(plan, inputs.active, inputs.survivors)?;
    let len = plan.vector_len();
    let mut sum = vec![0u64; len];
    for &u in &inputs.survivors.survivors {
        let masked = inputs
            .masked
            .get(&u)
            .ok_or_else(|| site_error(u, "no masked input for a survivor"))?;
        if masked.task != plan.task || masked.round != round || masked.masked.len() != len {
            return Err(site_error(
                u,
                "masked input of the wrong task, round or length",
            ));
        }
        secagg::add_into(&mut sum, &masked.masked);
    }
    let mut refused = Vec::new();
    let survivors: BTreeSet<u32> = inputs.survivors.survivors.iter().copied().collect();
    let dropped: BTreeSet<u32> = inputs.survivors.dropped.iter().copied().collect();
    // Valid shares per (dealer, is-mask), first message per holder only.
    let mut valid: BTreeMap<(u32, bool), BTreeMap<u32, [u8; 32]>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    enum Pending {
        Check {
            dealer: u32,
            mask: bool,
            index: usize,
        },
    }
    type Checks = BTreeMap<(u32, bool), (Vec<[u8; 32]>, Vec<(u32, [u8; 32])>)>;
    let mut checks: Checks = BTreeMap::new();
    let mut order: Vec<Pending> = Vec::new();
    // For each pending check, how many refusals came before it.
    let mut refused_before: Vec<usize> = Vec::new();
    for (holder, message) in inputs.unmasks {
        let holder = *holder;
        let refuse = |refused: &mut Vec<Refusal>, dealer: u32, reason: &str| {
            refused.push(Refusal {
                site: holder,
                dealer,
                reason: reason.to_owned(),
            })
        };
        if message.task != plan.task || message.round != round {
            refuse(&mut refused, 0, "unmask message of another task or round");
            continue;
        }
        if !survivors.contains(&holder) {
            refuse(&mut refused, 0, "only survivors reveal shares");
            continue;
        }
        if !seen.insert(holder) {
            refuse(&mut refused, 0, "second unmask message for this round");
            continue;
        }
        for (list, mask) in [(&message.self_shares, false), (&message.mask_shares, true)] {
            for revealed in list {
                let dealer = revealed.dealer;
                let wanted = if mask {
                    dropped.contains(&dealer)
                } else {
                    survivors.contains(&dealer)
                };
                if !wanted {
                    refuse(
                        &mut refused,
                        dealer,
                        if mask {
                            "mask-key share of a site that is not dropped"
                        } else {
                            "self-mask share of a site that is not a survivor"
                        },
                    );
                    continue;
                }
                let Some(shares) = inputs.shares.get(&dealer) else {
                    refuse(&mut refused, dealer, "no commitments from this dealer");
                    continue;
                };
                let list = if mask {
                    &shares.mask_commitments
                } else {
                    &shares.self_commitments
                };
                match hex32(&revealed.share) {
                    Some(share) => {
                        // Checked below, all of one dealer's key at once.
                        let group = checks
                            .entry((dealer, mask))
                            .or_insert_with(|| (commitments(list, round), Vec::new()));
                        group.1.push((holder, share));
                        order.push(Pending::Check {
                            dealer,
                            mask,
                            index: group.1.len() - 1,
                        });
                        refused_before.push(refused.len());
                    }
                    None => refuse(
                        &mut refused,
                        dealer,
                        "share does not match the dealer's commitments",
                    ),
                }
            }
        }
    }
    // Feldman checks, batched per (dealer, key); refusals keep their order.
    let verdicts: BTreeMap<(u32, bool), Vec<bool>> = checks
        .iter()
        .map(|(key, (commitments, shares))| (*key, verify_shares(commitments, shares)))
        .collect();
    let mut merged = Vec::with_capacity(refused.len() + order.len());
    let mut taken = 0;
    for (
        Pending::Check {
            dealer,
            mask,
            index,
        },
        before,
    ) in order.iter().zip(&refused_before)
    {
        merged.extend(refused[taken..*before].iter().cloned());
        taken = *before;
        let (holder, share) = checks[&(*dealer, *mask)].1[*index];
        if verdicts[&(*dealer, *mask)][*index] {
            valid
                .entry((*dealer, *mask))
                .or_default()
                .entry(holder)
                .or_insert(share);
        } else {
            merged.push(Refusal {
                site: holder,
                dealer: *dealer,
                reason: "share does not match the dealer's commitments".to_owned(),
            });
        }
    }
    merged.extend(refused[taken..].iter().cloned());
    let refused = merged;
    let t = plan.threshold as usize;
    let context = plan.context(round);
    let mut recover =
        |dealer: u32, mask: bool| -> Result<curve25519_dalek::scalar::Scalar, FlProtocolError> {
            let found = valid.remove(&(dealer, mask)).unwrap_or_default();
            let what = if mask { "mask key" } else { "self-mask key" };
            if found.len() < t {
                return Err(FlProtocolError::TooFewShares {
                    dealer,
                    what,
                    valid: found.len(),
                    needed: t,
                });
            }
            let picked: Vec<(u32, [u8; 32])> = found.into_iter().take(t).collect();
            Ok(combine(&picked)?)
        };
    for &u in &inputs.survivors.survivors {
        let b = recover(u, false)?;
        remove_self_mask(&mut sum, &self_seed(&b, &context));
    }
    for &d in &inputs.survivors.dropped {
        let s = recover(d, true)?;
        let expected = inputs.shares.get(&d).and_then(|m| mask_public(m, round));
        if expected != Some(public_of(&s)) {
            return Err(site_error(
                d,
                "recovered mask key does not match its public key",
            ));
        }
        for &u in &inputs.survivors.survivors {
            let public = inputs
                .shares
                .get(&u)
                .and_then(|m| mask_public(m, round))
                .ok_or_else(|| site_error(u, "no mask key for this round"))?;
            let shared = zeroize::Zeroizing::new(
                diffie_hellman(&s, &public)
                    .map_err(|_| site_error(u, "mask key is not a valid point"))?,
            );
            remove_pair_mask(&mut sum, u, d, &pair_seed(&shared, &context, u, d));
        }
    }
    Ok(Aggregate { sum, refused })
}

/// What a round's sum turns into.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundResult {
    /// New parameters (logistic regression).
    Parameters(Vec<f64>),
    /// Pooled scaling (moments).
    Scaling(FeatureScaling),
}

/// Apply a round's decoded sum: new parameters from `theta`, or the pooled
/// scaling. `samples` is the survivors' total rows.
pub fn next_parameters(
    plan: &Plan,
    theta: &[f64],
    sum: &[u64],
    samples: u64,
) -> Result<RoundResult, FlProtocolError> {
    let fp = plan.fixed_point()?;
    let sum = fp.decode(sum);
    let d = plan.features();
    match &plan.objective {
        Objective::Moments => {
            let n = sum[0];
            if n.round() < 1.0 {
                return Err(FlProtocolError::Data("the pooled row count is zero".into()));
            }
            let mut center = Vec::with_capacity(d);
            let mut scale = Vec::with_capacity(d);
            for j in 0..d {
                let mean = sum[1 + j] / n;
                let var = (sum[1 + d + j] / n - mean * mean).max(0.0);
                let sd = var.sqrt();
                center.push(mean);
                scale.push(if sd.is_finite() && sd > 1e-12 {
                    sd
                } else {
                    1.0
                });
            }
            Ok(RoundResult::Scaling(FeatureScaling { center, scale }))
        }
        Objective::LogisticRegression { rule, l2 } => {
            if theta.len() != d + 1 || sum.len() != d + 1 {
                return Err(FlProtocolError::Data("parameter count".into()));
            }
            if samples == 0 {
                return Err(FlProtocolError::Data("the survivors hold no rows".into()));
            }
            let n = samples as f64;
            let next: Vec<f64> = match rule {
                UpdateRule::FedAvg { .. } => {
                    theta.iter().zip(&sum).map(|(t, s)| t + s / n).collect()
                }
                UpdateRule::DpSgd { learning_rate, dp } => {
                    let batch = dp.sampling_rate * n;
                    (0..=d)
                        .map(|j| {
                            let penalty = if j < d { l2 * theta[j] } else { 0.0 };
                            theta[j] - learning_rate * (sum[j] / batch + penalty)
                        })
                        .collect()
                }
            };
            if next.iter().any(|p| !p.is_finite()) {
                return Err(FlProtocolError::Data("the parameters diverged".into()));
            }
            Ok(RoundResult::Parameters(next))
        }
    }
}

/// The model a logistic-regression task ends with: its parameters over the
/// plan's scaling.
pub fn final_model(
    plan: &Plan,
    theta: &[f64],
    rounds: u32,
    sites: Vec<SiteContribution>,
) -> Result<TrainedModel, FlProtocolError> {
    let (Objective::LogisticRegression { l2, .. }, Some(scaling)) =
        (&plan.objective, &plan.scaling)
    else {
        return Err(FlProtocolError::Data(
            "only logistic regression makes a model".into(),
        ));
    };
    let d = plan.features();
    if theta.len() != d + 1 {
        return Err(FlProtocolError::Data("parameter count".into()));
    }
    let rows: u64 = sites.iter().map(|s| s.samples).sum();
    let spec_hash = hex32(&plan.feature_spec_hash).unwrap_or_default();
    let model = TrainedModel::new(
        ModelKind::LogisticRegression {
            alpha: *l2,
            max_iterations: u64::from(rounds.max(1)),
            gradient_tolerance: 0.0,
        },
        spec_hash,
        rows.max(1),
        ModelOrigin::SecureAggregation {
            task: plan.task.clone(),
            rounds,
            sites,
        },
        StandardScaler::from_parts(scaling.center.clone(), scaling.scale.clone()),
        ModelParams::LogisticRegression(LinearParams {
            weights: theta[..d].to_vec(),
            intercept: theta[d],
        }),
    );
    model
        .check()
        .map_err(|rule| FlProtocolError::Data(format!("model: {rule}")))?;
    Ok(model)
}

pub mod simulation;

#[cfg(test)]
mod tests;
