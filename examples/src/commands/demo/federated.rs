//! The demo's third part: federated learning that reveals only the sum.
//!
//! Three clinics each hold a non-IID share of the breast-cancer training
//! rows (split by `mean radius`, so one sees mostly benign tumours and one
//! mostly malignant ones) in a network of their own, with research consents
//! to a federated study coordinated by a researcher. One clinic sets the
//! study's privacy budget. Under secure aggregation the clinics compute
//! pooled feature statistics, then train a logistic regression by FedAvg;
//! one clinic stops in the middle of a round and the round completes
//! without it. Another clinic re-verifies every round card. A
//! differentially private task then spends ε = 3; a further one that would
//! exceed the budget is refused before any record is read, and the audit
//! shows the budget spent.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use careledger::analytics::dp::{noise_multiplier_for, BudgetPolicy, DpParameters};
use careledger::analytics::example_data::BreastCancerData;
use careledger::analytics::secure_fl::{Objective, RoundOutcome, UpdateRule};
use careledger::analytics::{evaluate, Dataset, Metrics, TrainedModel};
use careledger::consent::{Consent, ConsentSource, Grantee, Purpose};
use careledger::entry::EntryId;
use careledger::node::{FlAction, FlError, NetworkId, Node, PlanRequest, ScalingSource};
use careledger::relay::Relay;
use careledger::sync::join_from_relay;
use indicatif::MultiProgress;

use super::story::Story;
use super::{import, institution, settle_network};
use crate::ai::{breast_cancer, breast_cancer_test_ids};
use crate::context::now_ms;
use crate::exchange::sync_until_committed;

const COORDINATOR: &str = "fl-research.example";
const CLINICS: [&str; 3] = [
    "clinic-north.example",
    "clinic-central.example",
    "clinic-south.example",
];
const STUDY: &str = "fl-study";
const PHASE_MS: u64 = 2_000;
/// Every fourth training row of each tercile, to keep the demo quick.
const EVERY: usize = 4;

struct Federation<'a> {
    coordinator: Node,
    clinics: Vec<Node>,
    sources: Vec<NetworkId>,
    study: NetworkId,
    relay: &'a mut dyn Relay,
    progress: &'a MultiProgress,
}

impl Federation<'_> {
    fn settle(&mut self) -> Result<()> {
        let [a, b, c] = &mut self.clinics[..] else {
            anyhow::bail!("three clinics");
        };
        settle_network(
            &mut [&mut self.coordinator, a, b, c],
            self.relay,
            &self.study,
            STUDY,
            self.progress,
        )?;
        Ok(())
    }

    /// Step the clinics (but `stopped`) and the coordinator until the
    /// coordinator writes a last card; returns every card written.
    fn run(&mut self, stop_after: Option<(usize, u32)>) -> Result<Vec<EntryId>> {
        let mut cards = Vec::new();
        let mut halted = [false; 3];
        for _ in 0..400 {
            for (s, clinic) in self.clinics.iter_mut().enumerate() {
                if halted[s] {
                    continue;
                }
                for action in clinic.fl_site_step(&self.study, &self.sources[s], now_ms())? {
                    if let (FlAction::Masked { round, .. }, Some((who, after))) =
                        (&action, stop_after)
                    {
                        halted[s] |= who == s && *round == after;
                    }
                }
            }
            let mut last = false;
            for action in self
                .coordinator
                .fl_coordinator_step(&self.study, now_ms())?
            {
                if let FlAction::Card { entry, last: l, .. } = action {
                    cards.extend(EntryId::from_hex(&entry));
                    last |= l;
                }
            }
            self.settle()?;
            if last {
                return Ok(cards);
            }
            std::thread::sleep(Duration::from_millis(PHASE_MS / 6));
        }
        anyhow::bail!("the federated task did not finish")
    }
}

fn accuracy(model: &TrainedModel, data: &BreastCancerData, test: &[usize]) -> Result<f64> {
    let set = Dataset::from_arrays(
        data.features().select(ndarray::Axis(0), test),
        Some(data.targets().select(ndarray::Axis(0), test)),
        data.spec().hash(),
    )?;
    Ok(match evaluate(model, &set)? {
        Metrics::Classification(m) => m.accuracy,
        _ => 0.0,
    })
}

/// Run steps 14 to 16.
pub fn run(
    story: &mut Story,
    dir: &Path,
    relay: &mut dyn Relay,
    progress: &MultiProgress,
) -> Result<()> {
    let data = breast_cancer()?;
    let test: Vec<usize> = breast_cancer_test_ids()?
        .iter()
        .filter_map(|id| BreastCancerData::row_of(id))
        .collect();
    let train: Vec<usize> = (0..data.len()).filter(|r| !test.contains(r)).collect();

    // 14. The clinics and the study.
    story.step("Three clinics with non-IID data join a federated study under a privacy budget")?;
    let mut coordinator = institution(dir, COORDINATOR)?;
    let study = coordinator.create_network(STUDY)?;
    let mut clinics = Vec::new();
    for name in CLINICS {
        let mut clinic = institution(dir, name)?;
        coordinator.invite(&study, &clinic.key_package()?)?;
        sync_until_committed(&mut coordinator, relay, &study, STUDY, progress)?;
        join_from_relay(&mut clinic, relay, &study, STUDY, now_ms())
            .with_context(|| format!("{name} could not join the study"))?;
        clinics.push(clinic);
    }
    let groups = data.split_by_feature(&train, 0, 3);
    let all = data.to_ndjson();
    let mut sources = Vec::new();
    let mut benign = Vec::new();
    for (s, clinic) in clinics.iter_mut().enumerate() {
        let rows: Vec<usize> = groups[s].iter().copied().step_by(EVERY).collect();
        benign.push(
            rows.iter().filter(|r| data.targets()[**r] == 1.0).count() * 100 / rows.len().max(1),
        );
        let keep: Vec<String> = rows
            .iter()
            .map(|r| BreastCancerData::patient_id(*r))
            .collect();
        let recorder = clinic.identity().author_id();
        let (ndjson, _) = super::data::with_consents(
            &all,
            |p| keep.iter().any(|k| k == p),
            |p| {
                Ok(Some(
                    Consent::grant(
                        &format!("fl-{p}"),
                        p,
                        Grantee::Network(study.clone()),
                        vec![Purpose::Research],
                        vec![],
                        None,
                    )?
                    .marked_for(&ConsentSource::OnBehalf { recorder })
                    .to_json(),
                ))
            },
        )?;
        let own = clinic.create_network("clinic-records")?;
        import(clinic, &own, "breast-cancer share", &ndjson, progress)?;
        sources.push(own);
    }
    let mut f = Federation {
        coordinator,
        clinics,
        sources,
        study,
        relay,
        progress,
    };
    f.settle()?;
    f.clinics[0].fl_set_policy(
        &f.study,
        BudgetPolicy {
            max_epsilon: 8.0,
            delta: 1e-5,
            allow_non_private: true,
        },
        now_ms(),
    )?;
    f.settle()?;
    story.line(format!(
        "{COORDINATOR} coordinates `{STUDY}`; the clinics hold {} charts, {}% / {}% / {}% benign (split by mean radius)",
        groups.iter().map(|g| g.len().div_ceil(EVERY)).sum::<usize>(),
        benign[0],
        benign[1],
        benign[2]
    ))?;
    let policy = f.coordinator.fl_policy(&f.study)?;
    story.check(
        "fl_budget_policy",
        policy.is_some_and(|p| p.max_epsilon == 8.0),
        format!(
            "{} set the study's budget: ε ≤ 8 per dataset at δ = 1e-5",
            CLINICS[0]
        ),
        || "the policy did not arrive".into(),
    )?;
    story.end_step()?;

    // 15. Secure aggregation, with a dropout.
    story.step("Secure aggregation: statistics, then FedAvg; one clinic stops mid-round")?;
    let sites: Vec<_> = f.clinics.iter().map(|c| c.identity().author_id()).collect();
    let spec = data.spec();
    let request = PlanRequest {
        phase_timeout_ms: PHASE_MS,
        ..PlanRequest::new(Objective::Moments, sites.clone(), 1, spec.clone())
    };
    f.coordinator.fl_plan(&f.study, &request, now_ms())?;
    f.settle()?;
    let moments = *f.run(None)?.last().context("no card")?;
    let rounds = 4;
    let request = PlanRequest {
        phase_timeout_ms: PHASE_MS,
        scaling: Some(ScalingSource::Moments(moments)),
        ..PlanRequest::new(
            Objective::LogisticRegression {
                rule: UpdateRule::FedAvg {
                    local_steps: 10,
                    learning_rate: 0.5,
                },
                l2: 1e-3,
            },
            sites.clone(),
            rounds,
            spec.clone(),
        )
    };
    f.coordinator.fl_plan(&f.study, &request, now_ms())?;
    f.settle()?;
    // clinic-south stops right after its masked input of round 2.
    let cards = f.run(Some((2, 2)))?;
    let (round3, _) = f.coordinator.fl_round_card(&f.study, &cards[3])?;
    let (last, model) = f
        .coordinator
        .fl_round_card(&f.study, cards.last().context("no card")?)?;
    story.line(format!(
        "round 3: {} survivors, {} dropped; the dropped clinic's masks were recovered from the others' shares",
        round3.survivors.len(),
        round3.dropped.len()
    ))?;
    story.check(
        "fl_dropout_recovered",
        round3.outcome == RoundOutcome::Completed && round3.dropped.len() == 1 && last.last,
        format!("the round with a dropout completed, and all {rounds} rounds ran"),
        || {
            format!(
                "round 3 {:?}, {} dropped",
                round3.outcome,
                round3.dropped.len()
            )
        },
    )?;
    let model = TrainedModel::from_bytes(&model)?;
    let test_accuracy = accuracy(&model, &data, &test)?;
    story.fact("fl_test_accuracy", test_accuracy);
    story.check(
        "fl_model_useful",
        test_accuracy >= 0.93,
        format!("the federated model's test accuracy on the published split: {test_accuracy:.3}"),
        || format!("test accuracy {test_accuracy:.3}"),
    )?;
    let mut confirmed = 0;
    for card in std::iter::once(&moments).chain(&cards) {
        confirmed += usize::from(f.clinics[1].fl_verify_round(&f.study, card)?.confirmed);
    }
    story.check(
        "fl_cards_verify",
        confirmed == cards.len() + 1,
        format!(
            "{} re-verified all {} round cards from its own ledger: confirmed",
            CLINICS[1],
            cards.len() + 1
        ),
        || format!("{confirmed} of {} confirmed", cards.len() + 1),
    )?;
    story.end_step()?;

    // 16. Differential privacy and the budget.
    story.step("Differential privacy spends the budget; a plan beyond it is refused")?;
    let survivors: Vec<_> = sites[..2].to_vec();
    let dp_rounds = 10;
    let sigma = noise_multiplier_for(&[], 1.0, dp_rounds, 3.0, 1e-5).context("no σ")?;
    let dp_request = |sigma: f64| PlanRequest {
        phase_timeout_ms: PHASE_MS,
        threshold: Some(2),
        scaling: Some(ScalingSource::Moments(moments)),
        ..PlanRequest::new(
            Objective::LogisticRegression {
                rule: UpdateRule::DpSgd {
                    learning_rate: 1.0,
                    dp: DpParameters {
                        clip_norm: 1.0,
                        noise_multiplier: sigma,
                        sampling_rate: 1.0,
                    },
                },
                l2: 1e-3,
            },
            survivors.clone(),
            dp_rounds as u32,
            spec.clone(),
        )
    };
    f.coordinator
        .fl_plan(&f.study, &dp_request(sigma), now_ms())?;
    f.settle()?;
    f.run(None)?;
    let budget = f.clinics[0].fl_budget(&f.study)?;
    let spent = budget.iter().map(|b| b.epsilon).fold(0.0, f64::max);
    story.line(format!(
        "DP-SGD, σ = {sigma:.2}, {dp_rounds} rounds: each clinic's dataset has spent ε = {spent:.2} (δ = 1e-5)"
    ))?;
    story.check(
        "fl_budget_spent",
        (spent - 3.0).abs() < 0.05,
        "the ledger's accountant shows ε ≈ 3 spent",
        || format!("ε {spent}"),
    )?;
    // A task that would spend ε = 8 on its own, on top of the 3 spent.
    let greedy = noise_multiplier_for(&[], 1.0, dp_rounds, 8.0, 1e-5).context("no σ")?;
    let before = f.coordinator.ledger_entries(&f.study)?.len();
    let refused = match f
        .coordinator
        .fl_plan(&f.study, &dp_request(greedy), now_ms())
    {
        Err(FlError::BudgetExceeded { projected, .. }) => Some(projected),
        _ => None,
    };
    story.check(
        "fl_budget_refusal",
        refused.is_some() && f.coordinator.ledger_entries(&f.study)?.len() == before,
        format!(
            "a task that would take the clinics to ε = {:.1} was refused before any record was read; nothing was written",
            refused.unwrap_or(0.0)
        ),
        || "the plan was accepted".into(),
    )?;
    let audit = f.clinics[2].audit(&f.study)?;
    let rounds_audited = audit
        .iter()
        .filter(|e| matches!(e.record, careledger::node::AuditRecord::FlRound(_)))
        .count();
    story.line(format!(
        "the audit lists {rounds_audited} round cards with the budget each spent"
    ))?;
    story.end_step()?;
    Ok(())
}
