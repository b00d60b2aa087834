//! Federated tasks under secure aggregation and differential privacy on
//! `Network` (the core's `node::federated`), for a hospital's site and for
//! a coordinator.
//!
//! Flow for a site: sync the study network ([`Network::sync_local_relay`]
//! or the sans-IO path), call [`Network::fl_site_step`] with the site's own
//! data network id, and repeat while [`Network::fl_tasks`] shows an open
//! task naming the site. The coordinator writes [`Network::fl_plan`] and
//! loops on [`Network::fl_coordinator_step`]. Any member re-checks a round
//! with [`Network::fl_verify_round`] and reads the budget spent with
//! [`Network::fl_budget`].

use careledger::analytics::dp::BudgetPolicy;
use careledger::node::{FlAction, PlanRequest, TaskStatus};

use crate::error::ApiError;
use crate::network::Network;
use crate::node::{network_id, now_ms};

/// A network's privacy-budget policy.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FlPolicy {
    /// Largest ε any site's dataset may reach.
    pub max_epsilon: f64,
    /// The δ it is stated at.
    pub delta: f64,
    /// Whether tasks without differential privacy are allowed.
    pub allow_non_private: bool,
}

/// What one site's dataset has spent.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SiteBudget {
    /// The site's author id (hex).
    pub site_id: String,
    /// Its name.
    pub name: String,
    /// ε of its differentially private rounds.
    pub epsilon: f64,
    /// The δ ε is stated at.
    pub delta: f64,
    /// Differentially private rounds.
    pub dp_rounds: u64,
    /// Releases without differential privacy (statistics, FedAvg rounds).
    pub non_private_rounds: u64,
}

/// A federated task as this node sees it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FlTask {
    /// Task id (hex).
    pub task_id: String,
    /// The plan entry (hex).
    pub plan_entry_id: String,
    /// The coordinator's name.
    pub coordinator: String,
    /// `moments` or `logistic_regression`.
    pub objective: String,
    /// Whether its rounds are differentially private.
    pub private: bool,
    /// Participants' names, in Shamir order.
    pub participants: Vec<String>,
    /// Planned rounds.
    pub rounds: u32,
    /// Last round with a card (0 = setup), if any.
    pub last_card_round: Option<u32>,
    /// Whether the task has ended.
    pub finished: bool,
    /// Whether it ended with every round completed (`None` while running).
    pub completed: Option<bool>,
    /// The last card's entry id.
    pub last_card_id: Option<String>,
}

/// One step a node took.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FlStep {
    /// `keys`, `shares`, `masked`, `unmask`, `survivors` or `card`.
    pub action: String,
    /// The task id (hex).
    pub task_id: String,
    /// The round, for round steps.
    pub round: Option<u32>,
    /// The card's entry id, for `card`.
    pub card_id: Option<String>,
}

/// A round card's re-verification.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RoundVerification {
    /// Every step matched.
    pub confirmed: bool,
    /// The first step that differed (`plan`, `setup`, `inputs`,
    /// `survivors`, `shares`, `aggregate`, `parameters`, `budget`, `model`).
    pub mismatch_step: Option<String>,
    /// The site to blame, if one is.
    pub site: Option<String>,
    /// What differed.
    pub detail: Option<String>,
    /// Steps that passed, in order.
    pub passed: Vec<String>,
}

fn step(action: FlAction) -> FlStep {
    let (name, task, round, card) = match action {
        FlAction::Keys { task, .. } => ("keys", task, None, None),
        FlAction::Shares { task } => ("shares", task, None, None),
        FlAction::Masked { task, round } => ("masked", task, Some(round), None),
        FlAction::Unmask { task, round } => ("unmask", task, Some(round), None),
        FlAction::Survivors { task, round, .. } => ("survivors", task, Some(round), None),
        FlAction::Card {
            task, round, entry, ..
        } => ("card", task, Some(round), Some(entry)),
    };
    FlStep {
        action: name.to_owned(),
        task_id: task,
        round,
        card_id: card,
    }
}

fn task(status: TaskStatus) -> FlTask {
    FlTask {
        task_id: status.task,
        plan_entry_id: status.plan_entry,
        coordinator: status.coordinator,
        objective: status.objective.to_owned(),
        private: status.private,
        participants: status.participants,
        rounds: status.rounds,
        last_card_round: status.last_card_round,
        finished: status.finished,
        completed: status
            .outcome
            .map(|o| o == careledger::analytics::secure_fl::RoundOutcome::Completed),
        last_card_id: status.last_card,
    }
}

#[uniffi::export]
impl Network {
    /// Write this node's privacy-budget policy for the network; the
    /// effective policy is the strictest of every member's latest. Returns
    /// the entry id.
    ///
    /// Errors: `InvalidLedgerEntry` (ε not positive, δ not in (0, 1)), `NotAMember`.
    pub fn fl_set_policy(
        &self,
        max_epsilon: f64,
        delta: f64,
        allow_non_private: bool,
    ) -> Result<String, ApiError> {
        let policy = BudgetPolicy {
            max_epsilon,
            delta,
            allow_non_private,
        };
        self.shared
            .with(|node| Ok(node.fl_set_policy(&self.id, policy, now_ms())?.to_hex()))
    }

    /// The network's effective budget policy, if any member wrote one.
    pub fn fl_policy(&self) -> Result<Option<FlPolicy>, ApiError> {
        self.shared.with(|node| {
            Ok(node.fl_policy(&self.id)?.map(|p| FlPolicy {
                max_epsilon: p.max_epsilon,
                delta: p.delta,
                allow_non_private: p.allow_non_private,
            }))
        })
    }

    /// What each site's dataset has spent (unfinished tasks count with all
    /// their rounds).
    pub fn fl_budget(&self) -> Result<Vec<SiteBudget>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .fl_budget(&self.id)?
                .into_iter()
                .map(|b| SiteBudget {
                    dp_rounds: b.compositions.iter().map(|c| c.steps).sum(),
                    site_id: b.site,
                    name: b.name,
                    epsilon: b.epsilon,
                    delta: b.delta,
                    non_private_rounds: b.non_private_rounds,
                })
                .collect())
        })
    }

    /// The network's federated tasks.
    pub fn fl_tasks(&self) -> Result<Vec<FlTask>, ApiError> {
        self.shared
            .with(|node| Ok(node.fl_tasks(&self.id)?.into_iter().map(task).collect()))
    }

    /// One site step in every open task naming this node, with
    /// `source_network_id` as its data network (see the module docs).
    ///
    /// Errors: `BudgetExceeded` (the site refuses before reading a record),
    /// `EmptyAfterConsent`, `TrainingFailed`, `FederationFailed`, `NotAMember`.
    pub fn fl_site_step(&self, source_network_id: String) -> Result<Vec<FlStep>, ApiError> {
        let source = network_id(&source_network_id)?;
        self.shared.with(|node| {
            Ok(node
                .fl_site_step(&self.id, &source, now_ms())?
                .into_iter()
                .map(step)
                .collect())
        })
    }

    /// Write a task plan as coordinator from the request JSON of the core's
    /// `PlanRequest::from_json`; returns the plan as JSON.
    ///
    /// Errors: `BudgetExceeded` (nothing written), `FederationFailed`
    /// (a field breaks a rule), `InvalidLedgerEntry` (request JSON), `NotAMember`.
    pub fn fl_plan(&self, request_json: String) -> Result<String, ApiError> {
        let request = PlanRequest::from_json(&request_json)?;
        self.shared.with(|node| {
            let (_, plan) = node.fl_plan(&self.id, &request, now_ms())?;
            Ok(String::from_utf8_lossy(&plan.encode()).into_owned())
        })
    }

    /// One coordinator step in every open task this node planned.
    pub fn fl_coordinator_step(&self) -> Result<Vec<FlStep>, ApiError> {
        self.shared.with(|node| {
            Ok(node
                .fl_coordinator_step(&self.id, now_ms())?
                .into_iter()
                .map(step)
                .collect())
        })
    }

    /// Re-check round card `card_id` from this replica. A difference is an
    /// answer (`confirmed` false, with the step), not an error.
    ///
    /// Errors: `UnknownTask` (no such card), `InvalidArgument`.
    pub fn fl_verify_round(&self, card_id: String) -> Result<RoundVerification, ApiError> {
        let card = careledger::entry::EntryId::from_hex(card_id.trim())
            .ok_or_else(|| ApiError::invalid_argument("card id must be 64 hex digits"))?;
        self.shared.with(|node| {
            let v = node.fl_verify_round(&self.id, &card)?;
            Ok(RoundVerification {
                confirmed: v.confirmed,
                mismatch_step: v.mismatch.map(|s| s.name().to_owned()),
                site: v.site,
                detail: v.detail,
                passed: v.passed.iter().map(|s| s.name().to_owned()).collect(),
            })
        })
    }
}
