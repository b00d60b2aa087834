//! Federated tasks on the ledger: secure aggregation and differential
//! privacy across institutions (DESIGN §7), every step an entry.
//!
//! # Flow
//!
//! Sans IO: nothing here waits or talks to a relay. A host loop calls
//! [`crate::sync::sync`] and then the step function of its role, again and
//! again, until the task is done.
//!
//! 1. Anyone may write a budget policy ([`Node::fl_set_policy`]); the
//!    network's effective policy is the strictest of every member's latest.
//! 2. The coordinator (often the researcher) writes a plan with
//!    [`Node::fl_plan`]. The plan is refused, before any data is read
//!    anywhere, if any participant's dataset would exceed the policy.
//! 3. Each site calls [`Node::fl_site_step`] with its own data network: it
//!    checks the budget itself, builds its dataset from its consented
//!    records, and then publishes keys, shares, masked inputs and unmask
//!    shares as the task needs them ([`crate::analytics::secure_fl`]).
//! 4. The coordinator calls [`Node::fl_coordinator_step`]: it confirms the
//!    setup (or gives up after [`SETUP_PHASES`] phase timeouts without
//!    every site's keys and shares), names each round's survivors (all active sites, or those in
//!    time once the phase timeout passed, if at least the threshold), and
//!    writes each round's card with the exact sum, the new parameters and
//!    the budget spent. The last card carries the model.
//! 5. Any member calls [`Node::fl_verify_round`] on a card and gets
//!    *confirmed* or the first step that differs (naming the site where one
//!    is to blame). [`Node::fl_budget`] shows what each dataset has spent.
//!
//! # Ordering rules every replica applies alike
//!
//! * A site's first keys, shares, masked input (per round) and unmask
//!   message (per round) in its hash chain count; later ones are ignored
//!   (and an unmask refused). Messages from non-participants are ignored.
//! * The coordinator's first survivor list and first card per round count.
//! * Budget "before a plan" means: every task whose plan lies within the
//!   plan's checkpoint. A finished task counts the rounds each site
//!   survived; an unfinished one counts all its planned rounds for every
//!   participant (reserved), so concurrent tasks cannot overspend.
//!
//! A site keeps one 32-byte secret per task, wrapped under the storage key,
//! plus the checkpoint its dataset was built at, so it can stop and restart
//! at any step; it deletes the secret when the task's last card arrives.

use std::collections::BTreeMap;

use super::analytics::DatasetInputs;
use super::{NetworkError, NetworkId, Node};
use crate::analytics::dp::BudgetPolicy;
use crate::analytics::ledger::{sha256_hex, DatasetRef};
use crate::analytics::secagg::SiteSecrets;
use crate::analytics::secure_fl::{
    aggregate, channel_public, check_shares, check_survivors, final_model, make_shares,
    masked_input, next_parameters, open_envelope, site_update, unmask_message, FeatureScaling,
    FlProtocolError, InvalidPlanError, KeysMessage, LocalData, MaskedMessage, Objective,
    Participant, Plan, PolicyMessage, Refusal, RoundCard, RoundInputs, RoundOutcome, RoundResult,
    SharesMessage, SiteBudget, SurvivorsMessage, UnmaskMessage,
};
use crate::analytics::{FeatureSpec, SiteContribution};
use crate::checkpoint::Checkpoint;
use crate::consent::Purpose;
use crate::entry::{AuthorId, Entry, EntryId, EntryKind};
use crate::keys::EpochKey;
use crate::store::StoreError;

/// Setup (sites build their datasets) may take this many phase timeouts.
pub const SETUP_PHASES: u64 = 10;

/// The δ budgets are stated at when no policy names one.
pub const DEFAULT_DELTA: f64 = 1e-5;

const SEED_LABEL: &[u8] = b"careledger/v1/fl-site-seed";

/// A federated-task operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FlError {
    /// The plan breaks a rule.
    #[error(transparent)]
    Plan(#[from] InvalidPlanError),
    /// A dataset would exceed the network's budget policy; nothing was
    /// written and no data was read.
    #[error("refused: site {site}'s dataset would reach ε = {projected:.3} (δ = {delta:e}), above the network's budget of ε = {max_epsilon}")]
    BudgetExceeded {
        /// The site.
        site: String,
        /// Its ε after the task.
        projected: f64,
        /// The policy's cap.
        max_epsilon: f64,
        /// The policy's δ.
        delta: f64,
    },
    /// The network's policy refuses rounds without differential privacy.
    #[error(
        "refused: the network's budget policy does not allow rounds without differential privacy"
    )]
    NonPrivateRefused,
    /// No task with that id in this network.
    #[error("no federated task with that id in this network")]
    UnknownTask,
    /// No round card with that entry id in this network.
    #[error("no federated round card with that entry id in this network")]
    UnknownRoundCard,
    /// This node is not the task's coordinator.
    #[error("this node is not the task's coordinator")]
    NotCoordinator,
    /// A named site is not a member of the network.
    #[error("site {0} is not a member of the network")]
    NotAMember(String),
    /// The scaling cannot be taken from the named card.
    #[error("scaling unavailable: {0}")]
    Scaling(String),
    /// A protocol computation failed.
    #[error(transparent)]
    Protocol(#[from] FlProtocolError),
    /// A ledger body could not be read.
    #[error("{0}")]
    Body(String),
    /// Building the site's dataset failed (consent, features).
    #[error(transparent)]
    Dataset(#[from] super::AiError),
    /// The network is not usable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a logistic-regression plan's feature scaling comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ScalingSource {
    /// Given by the coordinator (public reference values).
    Given(FeatureScaling),
    /// The last round card of a moments task in this network.
    Moments(EntryId),
}

/// What a coordinator asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRequest {
    /// What to compute.
    pub objective: Objective,
    /// The sites (members of the network), in any order; Shamir order is
    /// by author id.
    pub sites: Vec<AuthorId>,
    /// Survivors a round needs; default more than half of the sites.
    pub threshold: Option<u32>,
    /// Rounds (1 for moments).
    pub rounds: u32,
    /// Features and label.
    pub spec: FeatureSpec,
    /// Purpose consent must permit.
    pub purpose: Purpose,
    /// Feature scaling (logistic regression).
    pub scaling: Option<ScalingSource>,
    /// Fixed-point fractional bits.
    pub frac_bits: u32,
    /// δ for the budget (default: the policy's, else [`DEFAULT_DELTA`]).
    pub delta: Option<f64>,
    /// Phase timeout, milliseconds.
    pub phase_timeout_ms: u64,
}

/// The JSON form of a [`PlanRequest`] (C API and bindings).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanRequestJson {
    objective: Objective,
    sites: Vec<String>,
    rounds: u32,
    spec: FeatureSpec,
    #[serde(default)]
    threshold: Option<u32>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    scaling: Option<FeatureScaling>,
    #[serde(default)]
    scaling_from: Option<String>,
    #[serde(default)]
    frac_bits: Option<u32>,
    #[serde(default)]
    delta: Option<f64>,
    #[serde(default)]
    phase_timeout_ms: Option<u64>,
}

impl PlanRequest {
    /// Read a request from JSON: `{"objective": "moments" |
    /// {"logistic_regression": {"rule": {"fed_avg": {"local_steps": 10,
    /// "learning_rate": 0.5}} | {"dp_sgd": {"learning_rate": 1.0, "dp":
    /// {"clip_norm": 1.0, "noise_multiplier": 2.0, "sampling_rate": 0.5}}},
    /// "l2": 0.001}}, "sites": ["<author id hex>", …], "rounds": 20,
    /// "spec": {feature spec}}`, and optionally `threshold`, `purpose`
    /// (default `HRESCH`), `scaling` (`{"center": […], "scale": […]}`) or
    /// `scaling_from` (a moments task's last round card, hex), `frac_bits`,
    /// `delta`, `phase_timeout_ms`.
    pub fn from_json(text: &str) -> Result<PlanRequest, FlError> {
        let json: PlanRequestJson = serde_json::from_str(text)
            .map_err(|e| FlError::Body(format!("plan request JSON: {e}")))?;
        let sites = json
            .sites
            .iter()
            .map(|s| AuthorId::from_hex(s).ok_or_else(|| FlError::NotAMember(s.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let scaling = match (json.scaling, json.scaling_from) {
            (Some(_), Some(_)) => {
                return Err(FlError::Scaling(
                    "give scaling or scaling_from, not both".into(),
                ))
            }
            (Some(given), None) => Some(ScalingSource::Given(given)),
            (None, Some(card)) => Some(ScalingSource::Moments(
                EntryId::from_hex(&card)
                    .ok_or_else(|| FlError::Scaling("scaling_from is not an entry id".into()))?,
            )),
            (None, None) => None,
        };
        let mut request = PlanRequest::new(json.objective, sites, json.rounds, json.spec);
        request.threshold = json.threshold;
        if let Some(purpose) = json.purpose {
            request.purpose = Purpose::from_code(&purpose);
        }
        request.scaling = scaling;
        if let Some(bits) = json.frac_bits {
            request.frac_bits = bits;
        }
        request.delta = json.delta;
        if let Some(timeout) = json.phase_timeout_ms {
            request.phase_timeout_ms = timeout;
        }
        Ok(request)
    }

    /// A request with defaults: threshold majority, 24 fractional bits,
    /// research purpose, 30 s phase timeout.
    pub fn new(objective: Objective, sites: Vec<AuthorId>, rounds: u32, spec: FeatureSpec) -> Self {
        PlanRequest {
            objective,
            sites,
            threshold: None,
            rounds,
            spec,
            purpose: Purpose::Research,
            scaling: None,
            frac_bits: crate::analytics::secagg::DEFAULT_FRAC_BITS,
            delta: None,
            phase_timeout_ms: 30_000,
        }
    }
}

/// What one call of a step function did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum FlAction {
    /// Published this site's keys and dataset facts.
    Keys {
        /// The task.
        task: String,
        /// Rows of the site's dataset.
        samples: u64,
    },
    /// Published this site's commitments and envelopes.
    Shares {
        /// The task.
        task: String,
    },
    /// Published this site's masked input.
    Masked {
        /// The task.
        task: String,
        /// The round.
        round: u32,
    },
    /// Published this site's unmask shares.
    Unmask {
        /// The task.
        task: String,
        /// The round.
        round: u32,
    },
    /// (Coordinator) named a round's survivors.
    Survivors {
        /// The task.
        task: String,
        /// The round.
        round: u32,
        /// How many survived.
        survivors: usize,
        /// How many dropped.
        dropped: usize,
    },
    /// (Coordinator) wrote a round card.
    Card {
        /// The task.
        task: String,
        /// The round (0: setup).
        round: u32,
        /// The card entry.
        entry: String,
        /// Whether the task ended.
        last: bool,
        /// Whether the round completed.
        completed: bool,
    },
}

/// A task as this node sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TaskStatus {
    /// The task id.
    pub task: String,
    /// The plan entry.
    pub plan_entry: String,
    /// The coordinator's name.
    pub coordinator: String,
    /// `moments` or `logistic_regression`.
    pub objective: &'static str,
    /// Whether its rounds are differentially private.
    pub private: bool,
    /// Participants by name, Shamir order.
    pub participants: Vec<String>,
    /// Planned rounds.
    pub rounds: u32,
    /// Last round with a card (0: setup only; `None`: not set up).
    pub last_card_round: Option<u32>,
    /// Whether the task has ended.
    pub finished: bool,
    /// How it ended, if it did.
    pub outcome: Option<RoundOutcome>,
    /// The last card's entry.
    pub last_card: Option<String>,
}

/// A step of [`Node::fl_verify_round`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlVerifyStep {
    /// The plan is valid and its budget figures and policy follow from the
    /// ledger at its checkpoint.
    Plan,
    /// Every site's keys and shares are present and well formed.
    Setup,
    /// The card names the first masked input of each survivor.
    Inputs,
    /// The survivor list is the coordinator's first, and consistent.
    Survivors,
    /// The same shares are refused, and the rest recover every secret.
    Shares,
    /// The recovered sum equals the card's.
    Aggregate,
    /// The parameters (or scaling) follow from the sum.
    Parameters,
    /// The budget follows from the plan and the rounds survived.
    Budget,
    /// The model bytes are the final parameters' model.
    Model,
}

impl FlVerifyStep {
    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            FlVerifyStep::Plan => "plan",
            FlVerifyStep::Setup => "setup",
            FlVerifyStep::Inputs => "masked inputs",
            FlVerifyStep::Survivors => "survivors",
            FlVerifyStep::Shares => "shares",
            FlVerifyStep::Aggregate => "aggregate",
            FlVerifyStep::Parameters => "parameters",
            FlVerifyStep::Budget => "budget",
            FlVerifyStep::Model => "model",
        }
    }
}

/// The answer of [`Node::fl_verify_round`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RoundVerification {
    /// Whether every step matched.
    pub confirmed: bool,
    /// The first step that differed.
    pub mismatch: Option<FlVerifyStep>,
    /// The site to blame, if one is.
    pub site: Option<String>,
    /// What differed (no record data).
    pub detail: Option<String>,
    /// Steps that passed, in order.
    pub passed: Vec<FlVerifyStep>,
}

/// One opened federated entry.
#[derive(Clone, Debug)]
struct FlEntry {
    id: EntryId,
    author: AuthorId,
    seq: u64,
    time_ms: u64,
    kind: EntryKind,
    body: Vec<u8>,
}

/// Everything on the ledger about one task.
#[derive(Clone, Debug)]
struct TaskView {
    plan_entry: EntryId,
    plan_time: u64,
    plan: Plan,
    coordinator: AuthorId,
    keys: BTreeMap<u32, (EntryId, KeysMessage)>,
    shares: BTreeMap<u32, (EntryId, SharesMessage)>,
    masked: BTreeMap<(u32, u32), (EntryId, MaskedMessage)>,
    survivors: BTreeMap<u32, (EntryId, u64, SurvivorsMessage)>,
    unmasks: BTreeMap<u32, Vec<(u32, EntryId, UnmaskMessage)>>,
    cards: BTreeMap<u32, (EntryId, u64, RoundCard, Vec<u8>)>,
}

impl TaskView {
    fn last_card(&self) -> Option<&(EntryId, u64, RoundCard, Vec<u8>)> {
        self.cards.values().next_back()
    }

    fn finished(&self) -> bool {
        self.last_card().is_some_and(|(_, _, card, _)| card.last)
    }

    /// Active sites of round `round` (≥ 1): the participants less every
    /// site dropped in an earlier round.
    fn active(&self, round: u32) -> Vec<u32> {
        let mut active: Vec<u32> = (1..=self.plan.participants.len() as u32).collect();
        for r in 1..round {
            if let Some((_, _, card, _)) = self.cards.get(&r) {
                active.retain(|u| card.survivors.contains(u));
            }
        }
        active
    }

    fn name(&self, index: u32) -> String {
        self.plan
            .participants
            .get(index as usize - 1)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("#{index}"))
    }

    fn samples(&self, index: u32) -> u64 {
        self.keys.get(&index).map(|(_, k)| k.samples).unwrap_or(0)
    }

    /// Parameters round `round` starts from.
    fn parameters_before(&self, round: u32) -> Vec<f64> {
        match self.cards.get(&(round - 1)) {
            Some((_, _, card, _)) if round > 1 => card.parameters.clone(),
            _ => self.plan.initial_parameters(),
        }
    }
}

fn decode_err<E: std::fmt::Display>(e: E) -> FlError {
    FlError::Body(e.to_string())
}

fn meta_key(network: &NetworkId, task: &str, what: &str) -> String {
    format!("fl/{}/{task}/{what}", network.to_hex())
}

/// What a site keeps (not secret) to rebuild its dataset after a restart.
#[derive(serde::Serialize, serde::Deserialize)]
struct SiteSession {
    source: String,
    checkpoint: Checkpoint,
    salt: String,
    as_of_ms: u64,
}

impl Node {
    /// Every federated entry of a network, opened, in local order.
    fn fl_entries(&self, network: &NetworkId) -> Result<Vec<FlEntry>, FlError> {
        self.network_row(network)?;
        let mut out = Vec::new();
        for bytes in self.store.entries(&network.0)? {
            let entry = Entry::decode(&bytes).map_err(|_| StoreError::Corrupt("entries.bytes"))?;
            let h = &entry.header;
            if !matches!(
                h.kind,
                EntryKind::FlPolicy
                    | EntryKind::FlPlan
                    | EntryKind::FlKeys
                    | EntryKind::FlShares
                    | EntryKind::FlMasked
                    | EntryKind::FlSurvivors
                    | EntryKind::FlUnmask
                    | EntryKind::FlRound
            ) {
                continue;
            }
            let Some(key) = self.store.epoch_key(&network.0, h.epoch)? else {
                continue;
            };
            let Ok(body) = entry.open(&EpochKey::from(key)) else {
                continue;
            };
            out.push(FlEntry {
                id: Entry::id_of(&bytes),
                author: h.author,
                seq: h.seq,
                time_ms: h.time_ms,
                kind: h.kind,
                body,
            });
        }
        // Per author, chain order; across authors the order does not matter
        // for any rule below.
        out.sort_by_key(|e| (e.author, e.seq));
        Ok(out)
    }

    /// Every task of a network, by task id.
    fn fl_tasks_view(
        &self,
        network: &NetworkId,
        within: Option<&Checkpoint>,
    ) -> Result<BTreeMap<String, TaskView>, FlError> {
        let entries: Vec<FlEntry> = self
            .fl_entries(network)?
            .into_iter()
            .filter(|e| match within {
                Some(checkpoint) => checkpoint.head(&e.author).is_some_and(|h| e.seq <= h.seq),
                None => true,
            })
            .collect();
        let mut tasks: BTreeMap<String, TaskView> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.kind == EntryKind::FlPlan) {
            let Ok(plan) = Plan::decode(&e.body) else {
                continue;
            };
            if plan.validate().is_err() || tasks.contains_key(&plan.task) {
                continue;
            }
            tasks.insert(
                plan.task.clone(),
                TaskView {
                    plan_entry: e.id,
                    plan_time: e.time_ms,
                    plan,
                    coordinator: e.author,
                    keys: BTreeMap::new(),
                    shares: BTreeMap::new(),
                    masked: BTreeMap::new(),
                    survivors: BTreeMap::new(),
                    unmasks: BTreeMap::new(),
                    cards: BTreeMap::new(),
                },
            );
        }
        for e in &entries {
            let author = e.author.to_hex();
            let task_of = |task: &str| tasks.contains_key(task);
            match e.kind {
                EntryKind::FlKeys => {
                    let Ok(m) = KeysMessage::decode(&e.body) else {
                        continue;
                    };
                    if !task_of(&m.task) {
                        continue;
                    }
                    let view = tasks.get_mut(&m.task).ok_or(FlError::UnknownTask)?;
                    if let Some(i) = view.plan.index_of(&author) {
                        view.keys.entry(i).or_insert((e.id, m));
                    }
                }
                EntryKind::FlShares => {
                    let Ok(m) = SharesMessage::decode(&e.body) else {
                        continue;
                    };
                    if !task_of(&m.task) {
                        continue;
                    }
                    let view = tasks.get_mut(&m.task).ok_or(FlError::UnknownTask)?;
                    if let Some(i) = view.plan.index_of(&author) {
                        view.shares.entry(i).or_insert((e.id, m));
                    }
                }
                EntryKind::FlMasked => {
                    let Ok(m) = MaskedMessage::decode(&e.body) else {
                        continue;
                    };
                    if !task_of(&m.task) {
                        continue;
                    }
                    let view = tasks.get_mut(&m.task).ok_or(FlError::UnknownTask)?;
                    if let Some(i) = view.plan.index_of(&author) {
                        view.masked.entry((m.round, i)).or_insert((e.id, m));
                    }
                }
                EntryKind::FlSurvivors => {
                    let Ok(m) = SurvivorsMessage::decode(&e.body) else {
                        continue;
                    };
                    if !task_of(&m.task) {
                        continue;
                    }
                    let view = tasks.get_mut(&m.task).ok_or(FlError::UnknownTask)?;
                    if e.author == view.coordinator {
                        view.survivors
                            .entry(m.round)
                            .or_insert((e.id, e.time_ms, m));
                    }
                }
                EntryKind::FlUnmask => {
                    let Ok(m) = UnmaskMessage::decode(&e.body) else {
                        continue;
                    };
                    if !task_of(&m.task) {
                        continue;
                    }
                    let view = tasks.get_mut(&m.task).ok_or(FlError::UnknownTask)?;
                    if let Some(i) = view.plan.index_of(&author) {
                        view.unmasks.entry(m.round).or_default().push((i, e.id, m));
                    }
                }
                EntryKind::FlRound => {
                    let Ok((card, model)) = RoundCard::decode_body(&e.body) else {
                        continue;
                    };
                    if !task_of(&card.task) {
                        continue;
                    }
                    let view = tasks.get_mut(&card.task).ok_or(FlError::UnknownTask)?;
                    if e.author == view.coordinator {
                        view.cards
                            .entry(card.round)
                            .or_insert((e.id, e.time_ms, card, model));
                    }
                }
                _ => {}
            }
        }
        // Unmask messages: per holder in chain order, holders by index.
        for view in tasks.values_mut() {
            for list in view.unmasks.values_mut() {
                list.sort_by_key(|(i, _, _)| *i);
            }
        }
        Ok(tasks)
    }

    /// Every member's latest policy, `within` a checkpoint if given.
    fn fl_policies(
        &self,
        network: &NetworkId,
        within: Option<&Checkpoint>,
    ) -> Result<Option<BudgetPolicy>, FlError> {
        let mut latest: BTreeMap<AuthorId, BudgetPolicy> = BTreeMap::new();
        for e in self.fl_entries(network)? {
            if e.kind != EntryKind::FlPolicy {
                continue;
            }
            if let Some(checkpoint) = within {
                if checkpoint.head(&e.author).is_none_or(|h| e.seq > h.seq) {
                    continue;
                }
            }
            if let Ok(m) = PolicyMessage::decode(&e.body) {
                if m.policy.validate().is_ok() {
                    latest.insert(e.author, m.policy);
                }
            }
        }
        Ok(BudgetPolicy::strictest(latest.values()))
    }

    /// Write this member's budget policy for a network. The effective policy
    /// is the strictest of every member's latest, so a member can tighten
    /// the budget of everyone's data but loosen only its own earlier word.
    pub fn fl_set_policy(
        &mut self,
        network: &NetworkId,
        policy: BudgetPolicy,
        now_ms: u64,
    ) -> Result<EntryId, FlError> {
        policy
            .validate()
            .map_err(|e| FlError::Body(format!("invalid policy: {e}")))?;
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        let (format, format_version) = PolicyMessage::header();
        let body = PolicyMessage {
            format,
            format_version,
            policy,
        }
        .encode();
        Ok(self.atomically(|node| node.append_entry(network, EntryKind::FlPolicy, &body, now_ms))?)
    }

    /// The network's effective budget policy (strictest of every member's
    /// latest), if any member wrote one.
    pub fn fl_policy(&self, network: &NetworkId) -> Result<Option<BudgetPolicy>, FlError> {
        self.fl_policies(network, None)
    }

    /// What each site's dataset has spent in a network, by the rule in the
    /// [module docs](self) (unfinished tasks reserve all their rounds).
    pub fn fl_budget(&self, network: &NetworkId) -> Result<Vec<SiteBudget>, FlError> {
        let tasks = self.fl_tasks_view(network, None)?;
        let delta = self
            .fl_policies(network, None)?
            .map(|p| p.delta)
            .unwrap_or(DEFAULT_DELTA);
        Ok(spent(&tasks, None, delta).into_values().collect())
    }

    /// Every task of a network.
    pub fn fl_tasks(&self, network: &NetworkId) -> Result<Vec<TaskStatus>, FlError> {
        let names = self.member_names(network)?;
        Ok(self
            .fl_tasks_view(network, None)?
            .into_values()
            .map(|view| {
                let last = view.last_card();
                TaskStatus {
                    task: view.plan.task.clone(),
                    plan_entry: view.plan_entry.to_hex(),
                    coordinator: names
                        .get(&view.coordinator)
                        .cloned()
                        .unwrap_or_else(|| view.coordinator.to_hex()),
                    objective: match view.plan.objective {
                        Objective::Moments => "moments",
                        Objective::LogisticRegression { .. } => "logistic_regression",
                    },
                    private: view.plan.dp().is_some(),
                    participants: view
                        .plan
                        .participants
                        .iter()
                        .map(|p| p.name.clone())
                        .collect(),
                    rounds: view.plan.rounds,
                    last_card_round: last.map(|(_, _, c, _)| c.round),
                    finished: view.finished(),
                    outcome: last
                        .filter(|(_, _, c, _)| c.last)
                        .map(|(_, _, c, _)| c.outcome.clone()),
                    last_card: last.map(|(id, _, _, _)| id.to_hex()),
                }
            })
            .collect())
    }

    /// The plan of a task.
    pub fn fl_plan_of(&self, network: &NetworkId, task: &str) -> Result<(EntryId, Plan), FlError> {
        let tasks = self.fl_tasks_view(network, None)?;
        let view = tasks.get(task).ok_or(FlError::UnknownTask)?;
        Ok((view.plan_entry, view.plan.clone()))
    }

    /// Every round card of a network (any author), in chain order, with its
    /// entry id. Cards not written by their task's coordinator are left out.
    pub fn fl_round_cards(
        &self,
        network: &NetworkId,
    ) -> Result<Vec<(EntryId, RoundCard)>, FlError> {
        let tasks = self.fl_tasks_view(network, None)?;
        let mut out: Vec<(EntryId, RoundCard)> = tasks
            .values()
            .flat_map(|view| {
                view.cards
                    .values()
                    .map(|(id, _, card, _)| (*id, card.clone()))
            })
            .collect();
        out.sort_by(|a, b| (&a.1.task, a.1.round).cmp(&(&b.1.task, b.1.round)));
        Ok(out)
    }

    /// A round card by entry id: `(card, model bytes)`.
    pub fn fl_round_card(
        &self,
        network: &NetworkId,
        card: &EntryId,
    ) -> Result<(RoundCard, Vec<u8>), FlError> {
        let entry = self
            .fl_entries(network)?
            .into_iter()
            .find(|e| e.id == *card && e.kind == EntryKind::FlRound)
            .ok_or(FlError::UnknownRoundCard)?;
        RoundCard::decode_body(&entry.body).map_err(decode_err)
    }

    fn member_names(&self, network: &NetworkId) -> Result<BTreeMap<AuthorId, String>, FlError> {
        Ok(self.store.member_names(&network.0)?.into_iter().collect())
    }

    /// Write a task plan as coordinator (see the [module docs](self)).
    /// Refused, with nothing written, if a participant's dataset would
    /// exceed the network's budget policy.
    pub fn fl_plan(
        &mut self,
        network: &NetworkId,
        request: &PlanRequest,
        now_ms: u64,
    ) -> Result<(EntryId, Plan), FlError> {
        if !self.is_member(network)? {
            return Err(NetworkError::NotAMember.into());
        }
        let members = self.members(network)?;
        let mut sites: Vec<AuthorId> = request.sites.clone();
        sites.sort();
        sites.dedup();
        let mut participants = Vec::with_capacity(sites.len());
        for site in &sites {
            let member = members
                .iter()
                .find(|m| m.author == *site)
                .ok_or_else(|| FlError::NotAMember(site.to_hex()))?;
            participants.push(Participant {
                author: site.to_hex(),
                name: member.name.clone(),
            });
        }
        let checkpoint = self.checkpoint(network)?.checkpoint().clone();
        let policy = self.fl_policies(network, Some(&checkpoint))?;
        let delta = request
            .delta
            .or(policy.map(|p| p.delta))
            .unwrap_or(DEFAULT_DELTA);
        let tasks = self.fl_tasks_view(network, Some(&checkpoint))?;
        let spent_before = spent(&tasks, None, delta);
        let prior: Vec<SiteBudget> = participants
            .iter()
            .map(|p| {
                let mut b = SiteBudget::empty(&p.author, &p.name, delta);
                if let Some(s) = spent_before.get(&p.author) {
                    b.merge(s);
                }
                b
            })
            .collect();
        let dp = match &request.objective {
            Objective::LogisticRegression {
                rule: crate::analytics::secure_fl::UpdateRule::DpSgd { dp, .. },
                ..
            } => Some(*dp),
            _ => None,
        };
        let projected: Vec<SiteBudget> = prior
            .iter()
            .map(|b| {
                let mut b = b.clone();
                b.add(dp.as_ref(), u64::from(request.rounds));
                b
            })
            .collect();
        let (scaling, scaling_from) = match &request.scaling {
            None => (None, None),
            Some(ScalingSource::Given(scaling)) => (Some(scaling.clone()), None),
            Some(ScalingSource::Moments(card)) => {
                let (found, _) = self
                    .fl_round_card(network, card)
                    .map_err(|_| FlError::Scaling("no round card with that entry id".into()))?;
                let scaling = found.scaling.filter(|_| found.last).ok_or_else(|| {
                    FlError::Scaling("the card is not the last card of a moments task".into())
                })?;
                (Some(scaling), Some(card.to_hex()))
            }
        };
        let n = participants.len() as u32;
        let (format, format_version) = Plan::header();
        let plan = Plan {
            format,
            format_version,
            task: hex::encode(self.store.random::<16>()?),
            objective: request.objective.clone(),
            participants,
            threshold: request.threshold.unwrap_or(n / 2 + 1),
            rounds: request.rounds,
            feature_spec_hash: hex::encode(request.spec.hash()),
            feature_spec: request.spec.clone(),
            purpose: request.purpose.code().to_owned(),
            scaling,
            scaling_from,
            frac_bits: request.frac_bits,
            delta,
            policy,
            checkpoint,
            prior,
            projected,
            phase_timeout_ms: request.phase_timeout_ms,
        };
        plan.validate()?;
        check_budget(&plan)?;
        let body = plan.encode();
        let entry =
            self.atomically(|node| node.append_entry(network, EntryKind::FlPlan, &body, now_ms))?;
        Ok((entry, plan))
    }

    /// One step of every open task in which this node is a site, with
    /// `source` as its data network: publish whatever the task needs from
    /// this site now. Returns what was published (empty: nothing to do yet).
    pub fn fl_site_step(
        &mut self,
        network: &NetworkId,
        source: &NetworkId,
        now_ms: u64,
    ) -> Result<Vec<FlAction>, FlError> {
        let me = self.identity.author_id().to_hex();
        let tasks = self.fl_tasks_view(network, None)?;
        let mut actions = Vec::new();
        for view in tasks.values() {
            let Some(index) = view.plan.index_of(&me) else {
                continue;
            };
            if view.finished() {
                self.forget_task(network, &view.plan.task)?;
                continue;
            }
            if let Some(action) = self.site_step_task(network, source, view, index, now_ms)? {
                actions.push(action);
            }
        }
        Ok(actions)
    }

    fn forget_task(&mut self, network: &NetworkId, task: &str) -> Result<(), FlError> {
        let key = meta_key(network, task, "seed");
        if self.store.meta(&key)?.is_some_and(|v| !v.is_empty()) {
            self.store.transaction(|| -> Result<(), StoreError> {
                self.store.set_meta(&key, &[])?;
                self.store
                    .set_meta(&meta_key(network, task, "session"), &[])
            })?;
            self.fl_data.remove(&(network.clone(), task.to_owned()));
        }
        Ok(())
    }

    fn site_secrets(
        &self,
        network: &NetworkId,
        task: &str,
    ) -> Result<Option<SiteSecrets>, FlError> {
        let Some(wrapped) = self
            .store
            .meta(&meta_key(network, task, "seed"))?
            .filter(|v| !v.is_empty())
        else {
            return Ok(None);
        };
        let secret = self
            .store
            .unwrap_secret(SEED_LABEL, &wrapped, "federated task secret")?;
        let task_bytes = hex::decode(task).unwrap_or_default();
        Ok(Some(SiteSecrets::new(*secret.as_bytes(), &task_bytes)))
    }

    /// This site's rows for a task, rebuilt at the stored checkpoint after a
    /// restart.
    fn site_data(&mut self, network: &NetworkId, plan: &Plan) -> Result<LocalData, FlError> {
        let cache_key = (network.clone(), plan.task.clone());
        if let Some(data) = self.fl_data.get(&cache_key) {
            return Ok(data.clone());
        }
        let session: SiteSession = self
            .store
            .meta(&meta_key(network, &plan.task, "session"))?
            .filter(|v| !v.is_empty())
            .and_then(|v| serde_json::from_slice(&v).ok())
            .ok_or(StoreError::Corrupt("federated task session"))?;
        let source = NetworkId::from_hex(&session.source)
            .ok_or(StoreError::Corrupt("federated task session"))?;
        let salt = hex::decode(&session.salt)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or(StoreError::Corrupt("federated task session"))?;
        let (data, _) = self.build_site_data(
            network,
            &source,
            plan,
            &session.checkpoint,
            salt,
            session.as_of_ms,
        )?;
        self.fl_data.insert(cache_key, data.clone());
        Ok(data)
    }

    fn build_site_data(
        &mut self,
        network: &NetworkId,
        source: &NetworkId,
        plan: &Plan,
        checkpoint: &Checkpoint,
        salt: [u8; 32],
        as_of_ms: u64,
    ) -> Result<(LocalData, super::BuiltDataset), FlError> {
        let purpose = Purpose::from_code(&plan.purpose);
        let inputs = DatasetInputs {
            checkpoint,
            spec: &plan.feature_spec,
            purpose: &purpose,
            grantee_network: network,
            requester: self.identity.author_id(),
            as_of_ms,
            salt,
        };
        let built = self.build_dataset_with(source, &inputs, &mut |_| {})?;
        let dataset = &built.extracted.dataset;
        let targets: Option<Vec<f64>> = dataset.targets().map(|t| t.to_vec());
        let data = LocalData::from_arrays(dataset.features(), targets.as_deref())?;
        Ok((data, built))
    }

    fn site_step_task(
        &mut self,
        network: &NetworkId,
        source: &NetworkId,
        view: &TaskView,
        me: u32,
        now_ms: u64,
    ) -> Result<Option<FlAction>, FlError> {
        let plan = &view.plan;
        let task = plan.task.clone();
        // 1. Keys: check the budget first, then read the data.
        if !view.keys.contains_key(&me) {
            let tasks = self.fl_tasks_view(network, None)?;
            let policy = self.fl_policies(network, None)?;
            let mine = self.identity.author_id().to_hex();
            let others: BTreeMap<String, TaskView> =
                tasks.into_iter().filter(|(t, _)| *t != task).collect();
            let mut budget = SiteBudget::empty(&mine, self.identity.name(), plan.delta);
            if let Some(s) = spent(&others, None, plan.delta).get(&mine) {
                budget.merge(s);
            }
            budget.add(plan.dp(), u64::from(plan.rounds));
            let strictest = BudgetPolicy::strictest(policy.iter().chain(plan.policy.iter()));
            check_budget_against(
                strictest.as_ref(),
                plan.dp().is_some(),
                std::slice::from_ref(&budget),
            )?;
            let checkpoint = self.checkpoint(source)?.checkpoint().clone();
            let salt: [u8; 32] = self.store.random()?;
            let (data, built) =
                self.build_site_data(network, source, plan, &checkpoint, salt, now_ms)?;
            let seed: [u8; 32] = self.store.random()?;
            let secrets = SiteSecrets::new(seed, &hex::decode(&task).unwrap_or_default());
            let commitment = built.tree.commitment();
            let (format, format_version) = KeysMessage::header();
            let keys = KeysMessage {
                format,
                format_version,
                task: task.clone(),
                site: self.identity.name().to_owned(),
                channel_public: channel_public(&secrets),
                source_network: source.to_hex(),
                source_checkpoint_digest: hex::encode(checkpoint.digest()),
                dataset: DatasetRef {
                    size: commitment.size,
                    root: hex::encode(commitment.root),
                },
                consent_ids: built.consent_ids.clone(),
                excluded_by_consent: built.excluded_by_consent as u64,
                samples: data.len() as u64,
            };
            let wrapped = self.store.wrap(SEED_LABEL, &seed)?;
            let session = serde_json::to_vec(&SiteSession {
                source: source.to_hex(),
                checkpoint,
                salt: hex::encode(salt),
                as_of_ms: now_ms,
            })
            .map_err(decode_err)?;
            let body = keys.encode();
            self.atomically(|node| {
                node.store
                    .set_meta(&meta_key(network, &task, "seed"), &wrapped)?;
                node.store
                    .set_meta(&meta_key(network, &task, "session"), &session)?;
                node.append_entry(network, EntryKind::FlKeys, &body, now_ms)
            })?;
            self.fl_data
                .insert((network.clone(), task.clone()), data.clone());
            return Ok(Some(FlAction::Keys {
                task,
                samples: data.len() as u64,
            }));
        }
        let Some(secrets) = self.site_secrets(network, &task)? else {
            // Keys written by another installation of this identity, or the
            // secret was already forgotten: nothing this node can do.
            return Ok(None);
        };
        // 2. Shares, once every participant's keys are in.
        if !view.shares.contains_key(&me) {
            if view.keys.len() < plan.participants.len() {
                return Ok(None);
            }
            let channels: Vec<String> = (1..=plan.participants.len() as u32)
                .map(|i| {
                    view.keys
                        .get(&i)
                        .map(|(_, k)| k.channel_public.clone())
                        .unwrap_or_default()
                })
                .collect();
            let shares = make_shares(plan, me, self.identity.name(), &secrets, &channels)?;
            let body = shares.encode();
            self.atomically(|node| node.append_entry(network, EntryKind::FlShares, &body, now_ms))?;
            return Ok(Some(FlAction::Shares { task }));
        }
        let Some((_, _, last, _)) = view.last_card() else {
            return Ok(None);
        };
        if last.outcome != RoundOutcome::Completed {
            return Ok(None);
        }
        // 4. Unmask the current round, if this site is a survivor.
        let current = last.round + 1;
        if let Some((_, _, survivors)) = view.survivors.get(&current) {
            let already = view
                .unmasks
                .get(&current)
                .is_some_and(|l| l.iter().any(|(i, _, _)| *i == me));
            if already || !survivors.survivors.contains(&me) {
                return Ok(None);
            }
            let active = view.active(current);
            let opened = |dealer: u32| {
                let keys = view
                    .keys
                    .get(&dealer)
                    .ok_or_else(|| FlProtocolError::Site {
                        site: dealer,
                        problem: "no keys".into(),
                    })?;
                let shares = view
                    .shares
                    .get(&dealer)
                    .ok_or_else(|| FlProtocolError::Site {
                        site: dealer,
                        problem: "no shares".into(),
                    })?;
                open_envelope(
                    plan,
                    me,
                    &secrets,
                    dealer,
                    &keys.1.channel_public,
                    &shares.1,
                )
            };
            let message = unmask_message(
                plan,
                current,
                me,
                self.identity.name(),
                &secrets,
                &active,
                survivors,
                &opened,
            )?;
            let body = message.encode();
            self.atomically(|node| node.append_entry(network, EntryKind::FlUnmask, &body, now_ms))?;
            return Ok(Some(FlAction::Unmask {
                task,
                round: current,
            }));
        }
        // 3. Masked input for the current round.
        let active = view.active(current);
        if current > plan.rounds
            || !active.contains(&me)
            || view.masked.contains_key(&(current, me))
        {
            return Ok(None);
        }
        let data = self.site_data(network, plan)?;
        let theta = view.parameters_before(current);
        let update = site_update(plan, current, &theta, &data, &secrets)?;
        let shares_of = |v: u32| view.shares.get(&v).map(|(_, s)| s);
        let masked = masked_input(plan, current, me, &secrets, &update, &active, &shares_of)?;
        let (format, format_version) = MaskedMessage::header();
        let body = MaskedMessage {
            format,
            format_version,
            task: task.clone(),
            round: current,
            site: self.identity.name().to_owned(),
            masked,
        }
        .encode();
        self.atomically(|node| node.append_entry(network, EntryKind::FlMasked, &body, now_ms))?;
        Ok(Some(FlAction::Masked {
            task,
            round: current,
        }))
    }

    /// One step of every open task this node coordinates: confirm setup,
    /// name survivors, write round cards (see the [module docs](self)).
    pub fn fl_coordinator_step(
        &mut self,
        network: &NetworkId,
        now_ms: u64,
    ) -> Result<Vec<FlAction>, FlError> {
        let me = self.identity.author_id();
        let tasks = self.fl_tasks_view(network, None)?;
        let mut actions = Vec::new();
        for view in tasks.values() {
            if view.coordinator != me || view.finished() {
                continue;
            }
            if let Some(action) = self.coordinate_task(network, view, &tasks, now_ms)? {
                actions.push(action);
            }
        }
        Ok(actions)
    }

    fn coordinate_task(
        &mut self,
        network: &NetworkId,
        view: &TaskView,
        tasks: &BTreeMap<String, TaskView>,
        now_ms: u64,
    ) -> Result<Option<FlAction>, FlError> {
        let plan = &view.plan;
        let n = plan.participants.len() as u32;
        let timeout = plan.phase_timeout_ms;
        let Some((_, last_time, last, _)) = view.last_card() else {
            // Setup: every site's keys and well-formed shares.
            let problems: Vec<String> = (1..=n)
                .filter_map(|i| match (view.keys.get(&i), view.shares.get(&i)) {
                    (None, _) => Some(format!("{} published no keys", view.name(i))),
                    (_, None) => Some(format!("{} published no shares", view.name(i))),
                    (_, Some((_, s))) => check_shares(plan, i, s)
                        .err()
                        .map(|e| format!("{}: {e}", view.name(i))),
                })
                .collect();
            // Setup is when sites read their records: it gets ten phases.
            let expired = now_ms
                >= view
                    .plan_time
                    .saturating_add(timeout.saturating_mul(SETUP_PHASES));
            if !problems.is_empty() && !expired {
                return Ok(None);
            }
            let mut card = self.new_card(view, 0);
            card.inputs = (1..=n)
                .flat_map(|i| {
                    [
                        view.keys.get(&i).map(|(id, _)| id.to_hex()),
                        view.shares.get(&i).map(|(id, _)| id.to_hex()),
                    ]
                })
                .flatten()
                .collect();
            card.parameters = plan.initial_parameters();
            if !problems.is_empty() {
                card.outcome = RoundOutcome::Aborted {
                    reason: format!("setup incomplete: {}", problems.join("; ")),
                };
                card.last = true;
            }
            return self.write_card(network, card, Vec::new(), now_ms);
        };
        let round = last.round + 1;
        let active = view.active(round);
        let Some((survivors_id, survivors_time, survivors)) = view.survivors.get(&round) else {
            let arrived: Vec<u32> = active
                .iter()
                .copied()
                .filter(|u| view.masked.contains_key(&(round, *u)))
                .collect();
            let expired = now_ms >= last_time.saturating_add(timeout);
            if arrived.len() < active.len() && !expired {
                return Ok(None);
            }
            if arrived.len() < plan.threshold as usize {
                let mut card = self.new_card(view, round);
                card.outcome = RoundOutcome::Aborted {
                    reason: format!(
                        "{} masked input(s) in time, the threshold is {}",
                        arrived.len(),
                        plan.threshold
                    ),
                };
                card.last = true;
                card.parameters = view.parameters_before(round);
                return self.write_card(network, card, Vec::new(), now_ms);
            }
            let (format, format_version) = SurvivorsMessage::header();
            let message = SurvivorsMessage {
                format,
                format_version,
                task: plan.task.clone(),
                round,
                dropped: active
                    .iter()
                    .copied()
                    .filter(|u| !arrived.contains(u))
                    .collect(),
                survivors: arrived,
            };
            let body = message.encode();
            self.atomically(|node| {
                node.append_entry(network, EntryKind::FlSurvivors, &body, now_ms)
            })?;
            return Ok(Some(FlAction::Survivors {
                task: plan.task.clone(),
                round,
                survivors: message.survivors.len(),
                dropped: message.dropped.len(),
            }));
        };
        let unmasks = view.unmasks.get(&round).cloned().unwrap_or_default();
        let all_in = survivors
            .survivors
            .iter()
            .all(|u| unmasks.iter().any(|(i, _, _)| i == u));
        let expired = now_ms >= survivors_time.saturating_add(timeout);
        let computed = compute_round(view, round, survivors, &unmasks, tasks);
        let mut card = self.new_card(view, round);
        card.survivors_entry = Some(survivors_id.to_hex());
        card.survivors = survivors.survivors.clone();
        card.dropped = survivors.dropped.clone();
        card.unmask_entries = unmasks.iter().map(|(_, id, _)| id.to_hex()).collect();
        card.inputs = survivors
            .survivors
            .iter()
            .filter_map(|u| view.masked.get(&(round, *u)).map(|(id, _)| id.to_hex()))
            .collect();
        let model = match computed {
            Ok(result) => {
                if !all_in && !expired {
                    // Recoverable already, but give every survivor its say.
                    return Ok(None);
                }
                card.refused = result.refused;
                card.aggregate = result.sum;
                card.samples = result.samples;
                card.parameters = result.parameters;
                card.scaling = result.scaling;
                card.budget = result.budget;
                card.last = round == plan.rounds;
                match (&plan.objective, card.last) {
                    (Objective::LogisticRegression { .. }, true) => {
                        let model =
                            final_model(plan, &card.parameters, round, result.contributions)?;
                        model.to_bytes()
                    }
                    _ => Vec::new(),
                }
            }
            Err(error) => {
                if !expired {
                    return Ok(None);
                }
                card.outcome = RoundOutcome::Aborted {
                    reason: error.to_string(),
                };
                card.last = true;
                card.parameters = view.parameters_before(round);
                Vec::new()
            }
        };
        self.write_card(network, card, model, now_ms)
    }

    fn new_card(&self, view: &TaskView, round: u32) -> RoundCard {
        let (format, format_version) = RoundCard::header();
        RoundCard {
            format,
            format_version,
            task: view.plan.task.clone(),
            plan_entry: view.plan_entry.to_hex(),
            round,
            outcome: RoundOutcome::Completed,
            inputs: Vec::new(),
            survivors_entry: None,
            survivors: Vec::new(),
            dropped: Vec::new(),
            unmask_entries: Vec::new(),
            refused: Vec::new(),
            aggregate: Vec::new(),
            samples: 0,
            parameters: Vec::new(),
            scaling: None,
            budget: Vec::new(),
            last: false,
            model_hash: None,
        }
    }

    fn write_card(
        &mut self,
        network: &NetworkId,
        mut card: RoundCard,
        model: Vec<u8>,
        now_ms: u64,
    ) -> Result<Option<FlAction>, FlError> {
        card.model_hash = (!model.is_empty()).then(|| sha256_hex(&model));
        let body = card.encode_body(&model);
        let entry =
            self.atomically(|node| node.append_entry(network, EntryKind::FlRound, &body, now_ms))?;
        Ok(Some(FlAction::Card {
            task: card.task,
            round: card.round,
            entry: entry.to_hex(),
            last: card.last,
            completed: card.outcome == RoundOutcome::Completed,
        }))
    }

    /// Re-check a round card from this replica's ledger: plan, setup, the
    /// masked inputs and survivors it names, every revealed share, the sum,
    /// the parameters, the budget and the model.
    pub fn fl_verify_round(
        &mut self,
        network: &NetworkId,
        card_id: &EntryId,
    ) -> Result<RoundVerification, FlError> {
        let (card, model) = self.fl_round_card(network, card_id)?;
        self.fl_verify_card(network, &card, &model)
    }

    /// Re-check a round card handed over by other means (a file), against
    /// this replica's ledger, as [`Node::fl_verify_round`] does.
    pub fn fl_verify_card(
        &mut self,
        network: &NetworkId,
        card: &RoundCard,
        model: &[u8],
    ) -> Result<RoundVerification, FlError> {
        let tasks = self.fl_tasks_view(network, None)?;
        let view = tasks.get(&card.task).ok_or(FlError::UnknownTask)?;
        let mut passed = Vec::new();
        let mismatch = |passed: Vec<FlVerifyStep>, step, site: Option<String>, detail: String| {
            Ok(RoundVerification {
                confirmed: false,
                mismatch: Some(step),
                site,
                detail: Some(detail),
                passed,
            })
        };
        // Plan: valid, and its budget figures follow from its checkpoint.
        if card.plan_entry != view.plan_entry.to_hex() {
            return mismatch(
                passed,
                FlVerifyStep::Plan,
                None,
                "the card names another plan entry".into(),
            );
        }
        let plan = &view.plan;
        let before = self.fl_tasks_view(network, Some(&plan.checkpoint))?;
        let policy = self.fl_policies(network, Some(&plan.checkpoint))?;
        let spent_before = spent(&before, Some(&plan.task), plan.delta);
        for (i, p) in plan.participants.iter().enumerate() {
            let mut expected = SiteBudget::empty(&p.author, &p.name, plan.delta);
            if let Some(s) = spent_before.get(&p.author) {
                expected.merge(s);
            }
            if !budget_close(&plan.prior[i], &expected) {
                return mismatch(
                    passed,
                    FlVerifyStep::Plan,
                    Some(p.name.clone()),
                    "the plan's prior budget does not follow from the ledger at its checkpoint"
                        .into(),
                );
            }
            let mut projected = expected;
            projected.add(plan.dp(), u64::from(plan.rounds));
            if !budget_close(&plan.projected[i], &projected) {
                return mismatch(
                    passed,
                    FlVerifyStep::Plan,
                    Some(p.name.clone()),
                    "the plan's projected budget is not prior plus its rounds".into(),
                );
            }
        }
        if plan.policy != policy {
            return mismatch(
                passed,
                FlVerifyStep::Plan,
                None,
                "the plan's policy is not the network's at its checkpoint".into(),
            );
        }
        if let Err(error) = check_budget(plan) {
            return mismatch(passed, FlVerifyStep::Plan, None, error.to_string());
        }
        passed.push(FlVerifyStep::Plan);
        // Setup.
        let n = plan.participants.len() as u32;
        for i in 1..=n {
            let problem = match (view.keys.get(&i), view.shares.get(&i)) {
                (None, _) => Some("published no keys".to_owned()),
                (_, None) => Some("published no shares".to_owned()),
                (_, Some((_, s))) => check_shares(plan, i, s).err().map(|e| e.to_string()),
            };
            if let Some(problem) = problem {
                let aborted_setup =
                    card.round == 0 && matches!(card.outcome, RoundOutcome::Aborted { .. });
                if !aborted_setup {
                    return mismatch(passed, FlVerifyStep::Setup, Some(view.name(i)), problem);
                }
            }
        }
        passed.push(FlVerifyStep::Setup);
        if card.round == 0 {
            return Ok(RoundVerification {
                confirmed: true,
                mismatch: None,
                site: None,
                detail: None,
                passed,
            });
        }
        // Inputs and survivors.
        let round = card.round;
        let Some((survivors_id, _, survivors)) = view.survivors.get(&round) else {
            if let RoundOutcome::Aborted { .. } = card.outcome {
                passed.push(FlVerifyStep::Inputs);
                return Ok(RoundVerification {
                    confirmed: true,
                    mismatch: None,
                    site: None,
                    detail: None,
                    passed,
                });
            }
            return mismatch(
                passed,
                FlVerifyStep::Survivors,
                None,
                "no survivor list for the round".into(),
            );
        };
        for (k, u) in survivors.survivors.iter().enumerate() {
            let listed = card.inputs.get(k);
            let first = view.masked.get(&(round, *u)).map(|(id, _)| id.to_hex());
            if first.is_none() || listed != first.as_ref() {
                return mismatch(
                    passed,
                    FlVerifyStep::Inputs,
                    Some(view.name(*u)),
                    "the card does not name this site's first masked input of the round".into(),
                );
            }
        }
        if card.inputs.len() != survivors.survivors.len() {
            return mismatch(
                passed,
                FlVerifyStep::Inputs,
                None,
                "the card names extra masked inputs".into(),
            );
        }
        passed.push(FlVerifyStep::Inputs);
        let active = view.active(round);
        if card.survivors_entry.as_deref() != Some(survivors_id.to_hex().as_str())
            || card.survivors != survivors.survivors
            || card.dropped != survivors.dropped
        {
            return mismatch(
                passed,
                FlVerifyStep::Survivors,
                None,
                "the card's survivors are not the coordinator's first list".into(),
            );
        }
        if let Err(error) = check_survivors(plan, &active, survivors) {
            return mismatch(passed, FlVerifyStep::Survivors, None, error.to_string());
        }
        passed.push(FlVerifyStep::Survivors);
        // Shares and the sum, from exactly the unmask entries the card names.
        let all = view.unmasks.get(&round).cloned().unwrap_or_default();
        let named: Vec<(u32, EntryId, UnmaskMessage)> = all
            .into_iter()
            .filter(|(_, id, _)| card.unmask_entries.contains(&id.to_hex()))
            .collect();
        if named.len() != card.unmask_entries.len() {
            return mismatch(
                passed,
                FlVerifyStep::Shares,
                None,
                "an unmask entry the card names is not in this replica's ledger".into(),
            );
        }
        let computed = match compute_round(view, round, survivors, &named, &tasks) {
            Ok(computed) => computed,
            Err(error) => {
                if let RoundOutcome::Aborted { .. } = card.outcome {
                    passed.push(FlVerifyStep::Shares);
                    return Ok(RoundVerification {
                        confirmed: true,
                        mismatch: None,
                        site: None,
                        detail: None,
                        passed,
                    });
                }
                let site = match &error {
                    FlProtocolError::TooFewShares { dealer, .. } => Some(view.name(*dealer)),
                    FlProtocolError::Site { site, .. } => Some(view.name(*site)),
                    _ => None,
                };
                return mismatch(passed, FlVerifyStep::Shares, site, error.to_string());
            }
        };
        if computed.refused != card.refused {
            let site = computed
                .refused
                .iter()
                .chain(&card.refused)
                .find(|r| !(computed.refused.contains(r) && card.refused.contains(r)))
                .map(|r: &Refusal| view.name(r.site));
            return mismatch(
                passed,
                FlVerifyStep::Shares,
                site,
                "the shares refused differ from the card's".into(),
            );
        }
        passed.push(FlVerifyStep::Shares);
        if computed.sum != card.aggregate || computed.samples != card.samples {
            return mismatch(
                passed,
                FlVerifyStep::Aggregate,
                None,
                "the recovered sum differs from the card's".into(),
            );
        }
        passed.push(FlVerifyStep::Aggregate);
        if computed.parameters != card.parameters || computed.scaling != card.scaling {
            return mismatch(
                passed,
                FlVerifyStep::Parameters,
                None,
                "the parameters do not follow from the sum".into(),
            );
        }
        passed.push(FlVerifyStep::Parameters);
        if computed.budget.len() != card.budget.len()
            || computed
                .budget
                .iter()
                .zip(&card.budget)
                .any(|(a, b)| !budget_close(a, b))
        {
            return mismatch(
                passed,
                FlVerifyStep::Budget,
                None,
                "the budget spent does not follow from the plan and the rounds".into(),
            );
        }
        passed.push(FlVerifyStep::Budget);
        if card.last && matches!(plan.objective, Objective::LogisticRegression { .. }) {
            let expected = final_model(plan, &card.parameters, round, computed.contributions)?;
            if expected.to_bytes() != model {
                return mismatch(
                    passed,
                    FlVerifyStep::Model,
                    None,
                    "the model bytes are not the final parameters' model".into(),
                );
            }
        } else if !model.is_empty() {
            return mismatch(
                passed,
                FlVerifyStep::Model,
                None,
                "an unexpected model".into(),
            );
        }
        passed.push(FlVerifyStep::Model);
        Ok(RoundVerification {
            confirmed: true,
            mismatch: None,
            site: None,
            detail: None,
            passed,
        })
    }
}

/// What a round's entries give.
struct Computed {
    sum: Vec<u64>,
    refused: Vec<Refusal>,
    samples: u64,
    parameters: Vec<f64>,
    scaling: Option<FeatureScaling>,
    budget: Vec<SiteBudget>,
    contributions: Vec<SiteContribution>,
}

fn compute_round(
    view: &TaskView,
    round: u32,
    survivors: &SurvivorsMessage,
    unmasks: &[(u32, EntryId, UnmaskMessage)],
    _tasks: &BTreeMap<String, TaskView>,
) -> Result<Computed, FlProtocolError> {
    let plan = &view.plan;
    let active = view.active(round);
    let masked: BTreeMap<u32, &MaskedMessage> = survivors
        .survivors
        .iter()
        .filter_map(|u| view.masked.get(&(round, *u)).map(|(_, m)| (*u, m)))
        .collect();
    let shares: BTreeMap<u32, &SharesMessage> =
        view.shares.iter().map(|(i, (_, s))| (*i, s)).collect();
    let list: Vec<(u32, &UnmaskMessage)> = unmasks.iter().map(|(i, _, m)| (*i, m)).collect();
    let result = aggregate(&RoundInputs {
        plan,
        round,
        survivors,
        active: &active,
        masked: &masked,
        shares: &shares,
        unmasks: &list,
    })?;
    let samples: u64 = survivors.survivors.iter().map(|u| view.samples(*u)).sum();
    let theta = view.parameters_before(round);
    let (parameters, scaling) = match next_parameters(plan, &theta, &result.sum, samples)? {
        RoundResult::Parameters(p) => (p, None),
        RoundResult::Scaling(s) => (Vec::new(), Some(s)),
    };
    let budget = survivors
        .survivors
        .iter()
        .map(|u| {
            let mut b = plan.prior[*u as usize - 1].clone();
            let rounds_survived = (1..=round)
                .filter(|r| {
                    *r == round
                        || view
                            .cards
                            .get(r)
                            .is_some_and(|(_, _, c, _)| c.survivors.contains(u))
                })
                .count() as u64;
            b.add(plan.dp(), rounds_survived);
            b
        })
        .collect();
    let contributions = survivors
        .survivors
        .iter()
        .map(|u| SiteContribution {
            site: view.name(*u),
            samples: view.samples(*u),
        })
        .collect();
    Ok(Computed {
        sum: result.sum,
        refused: result.refused,
        samples,
        parameters,
        scaling,
        budget,
        contributions,
    })
}

/// What each site (author hex) has spent across `tasks` (except `skip`).
fn spent(
    tasks: &BTreeMap<String, TaskView>,
    skip: Option<&str>,
    delta: f64,
) -> BTreeMap<String, SiteBudget> {
    let mut out: BTreeMap<String, SiteBudget> = BTreeMap::new();
    for view in tasks
        .values()
        .filter(|v| Some(v.plan.task.as_str()) != skip)
    {
        let plan = &view.plan;
        for (i, p) in plan.participants.iter().enumerate() {
            let index = i as u32 + 1;
            let rounds = if view.finished() {
                view.cards
                    .values()
                    .filter(|(_, _, c, _)| {
                        c.round > 0
                            && c.outcome == RoundOutcome::Completed
                            && c.survivors.contains(&index)
                    })
                    .count() as u64
            } else {
                u64::from(plan.rounds)
            };
            let budget = out
                .entry(p.author.clone())
                .or_insert_with(|| SiteBudget::empty(&p.author, &p.name, delta));
            budget.add(plan.dp(), rounds);
        }
    }
    out
}

fn budget_close(a: &SiteBudget, b: &SiteBudget) -> bool {
    a.site == b.site
        && a.non_private_rounds == b.non_private_rounds
        && a.compositions == b.compositions
        && a.delta == b.delta
        && (a.epsilon - b.epsilon).abs() <= 1e-9 * a.epsilon.abs().max(1.0)
}

fn check_budget(plan: &Plan) -> Result<(), FlError> {
    check_budget_against(plan.policy.as_ref(), plan.dp().is_some(), &plan.projected)
}

/// Refuse a plan that is not differentially private where the policy
/// forbids that, or that would take a dataset's ε (at the policy's δ) above
/// the cap.
fn check_budget_against(
    policy: Option<&BudgetPolicy>,
    private: bool,
    projected: &[SiteBudget],
) -> Result<(), FlError> {
    let Some(policy) = policy else {
        return Ok(());
    };
    if !private && !policy.allow_non_private {
        return Err(FlError::NonPrivateRefused);
    }
    for b in projected {
        let eps = crate::analytics::dp::epsilon(&b.compositions, policy.delta)
            .0
            .max(b.epsilon);
        if eps > policy.max_epsilon {
            return Err(FlError::BudgetExceeded {
                site: b.name.clone(),
                projected: eps,
                max_epsilon: policy.max_epsilon,
                delta: policy.delta,
            });
        }
    }
    Ok(())
}
