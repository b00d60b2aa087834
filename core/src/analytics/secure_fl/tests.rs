//! The protocol in memory: exact sums, masking, dropouts, refused shares.

use std::collections::BTreeMap;

use super::simulation::Simulation;
use super::*;
use crate::analytics::{Feature, MissingPolicy};

fn spec(d: usize) -> FeatureSpec {
    FeatureSpec::new(
        (0..d)
            .map(|j| Feature::LatestObservation {
                system: "urn:test".into(),
                code: format!("f{j}"),
            })
            .collect(),
        Some(Feature::HasCondition {
            system: "urn:test".into(),
            codes: vec!["y".into()],
        }),
        MissingPolicy::Fail,
    )
}

fn data(site: usize, rows: usize, d: usize) -> LocalData {
    let rows_v: Vec<Vec<f64>> = (0..rows)
        .map(|r| {
            (0..d)
                .map(|j| ((site * 31 + r * 7 + j * 3) % 11) as f64 - 5.0)
                .collect()
        })
        .collect();
    let labels = (0..rows).map(|r| ((r + site) % 2) as f64).collect();
    LocalData::new(rows_v, labels).unwrap()
}

fn fedavg_plan(sites: usize, threshold: u32, rounds: u32, d: usize) -> Plan {
    Simulation::plan(
        Objective::LogisticRegression {
            rule: UpdateRule::FedAvg {
                local_steps: 2,
                learning_rate: 0.5,
            },
            l2: 0.01,
        },
        spec(d),
        Some(FeatureScaling {
            center: vec![0.0; d],
            scale: vec![3.0; d],
        }),
        sites,
        threshold,
        rounds,
        1e-5,
    )
    .unwrap()
}

#[test]
fn masked_sum_equals_plain_sum_exactly() {
    let plan = fedavg_plan(5, 3, 3, 4);
    let mut sim = Simulation::new(plan, (0..5).map(|s| data(s, 20, 4)).collect(), 1).unwrap();
    for drop in [vec![], vec![4], vec![2]] {
        let round = sim.run_round(&drop).unwrap();
        assert_eq!(round.aggregate.sum, round.plain_sum);
        assert!(round.aggregate.refused.is_empty());
    }
}

#[test]
fn a_dropout_is_recovered() {
    let plan = fedavg_plan(3, 2, 4, 3);
    let mut sim = Simulation::new(plan, (0..3).map(|s| data(s, 15, 3)).collect(), 2).unwrap();
    let round = sim.run_round(&[3]).unwrap();
    assert_eq!(round.survivors, vec![1, 2]);
    assert_eq!(round.aggregate.sum, round.plain_sum);
    // Without recovering site 3's pair masks the sum would be garbage.
    let mut naive = vec![0u64; round.plain_sum.len()];
    for y in &round.masked {
        crate::analytics::secagg::add_into(&mut naive, y);
    }
    assert_ne!(naive, round.plain_sum);
    // The next round runs with the two survivors only.
    let next = sim.run_round(&[]).unwrap();
    assert_eq!(next.survivors, vec![1, 2]);
    assert_eq!(next.aggregate.sum, next.plain_sum);
    // Below the threshold nothing is unmasked.
    assert!(matches!(
        sim.run_round(&[1]),
        Err(FlProtocolError::Survivors(_))
    ));
}

/// One round's messages built by hand, so tests can tamper with them.
struct Round {
    plan: Plan,
    secrets: Vec<SiteSecrets>,
    channel: Vec<String>,
    shares: Vec<SharesMessage>,
    masked: BTreeMap<u32, MaskedMessage>,
    survivors: SurvivorsMessage,
    active: Vec<u32>,
}

impl Round {
    fn new(plan: Plan, round: u32, drop: &[u32]) -> Round {
        let n = plan.participants.len();
        let task = hex::decode(&plan.task).unwrap();
        let secrets: Vec<SiteSecrets> = (0..n)
            .map(|i| SiteSecrets::new([i as u8 + 10; 32], &task))
            .collect();
        let channel: Vec<String> = secrets.iter().map(channel_public).collect();
        let shares: Vec<SharesMessage> = (0..n)
            .map(|i| make_shares(&plan, i as u32 + 1, "s", &secrets[i], &channel).unwrap())
            .collect();
        let active: Vec<u32> = (1..=n as u32).collect();
        let mut masked = BTreeMap::new();
        for &u in active.iter().filter(|u| !drop.contains(u)) {
            let update = site_update(
                &plan,
                round,
                &plan.initial_parameters(),
                &data(u as usize, 12, plan.features()),
                &secrets[u as usize - 1],
            )
            .unwrap();
            let shares_of = |v: u32| shares.get(v as usize - 1);
            let y = masked_input(
                &plan,
                round,
                u,
                &secrets[u as usize - 1],
                &update,
                &active,
                &shares_of,
            )
            .unwrap();
            let (format, format_version) = MaskedMessage::header();
            masked.insert(
                u,
                MaskedMessage {
                    format,
                    format_version,
                    task: plan.task.clone(),
                    round,
                    site: "s".into(),
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
            dropped: drop.to_vec(),
        };
        Round {
            plan,
            secrets,
            channel,
            shares,
            masked,
            survivors,
            active,
        }
    }

    fn unmask(&self, u: u32) -> UnmaskMessage {
        let opened = |dealer: u32| {
            open_envelope(
                &self.plan,
                u,
                &self.secrets[u as usize - 1],
                dealer,
                &self.channel[dealer as usize - 1],
                &self.shares[dealer as usize - 1],
            )
        };
        unmask_message(
            &self.plan,
            self.survivors.round,
            u,
            "s",
            &self.secrets[u as usize - 1],
            &self.active,
            &self.survivors,
            &opened,
        )
        .unwrap()
    }

    fn aggregate(&self, unmasks: &[(u32, UnmaskMessage)]) -> Result<Aggregate, FlProtocolError> {
        let masked: BTreeMap<u32, &MaskedMessage> =
            self.masked.iter().map(|(k, v)| (*k, v)).collect();
        let shares: BTreeMap<u32, &SharesMessage> = self
            .shares
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, s))
            .collect();
        let refs: Vec<(u32, &UnmaskMessage)> = unmasks.iter().map(|(u, m)| (*u, m)).collect();
        aggregate(&RoundInputs {
            plan: &self.plan,
            round: self.survivors.round,
            survivors: &self.survivors,
            active: &self.active,
            masked: &masked,
            shares: &shares,
            unmasks: &refs,
        })
    }

    fn plain_sum(&self) -> Vec<u64> {
        let fp = crate::analytics::secagg::FixedPoint::new(self.plan.frac_bits).unwrap();
        let mut sum = vec![0u64; self.plan.vector_len()];
        for &u in &self.survivors.survivors {
            let update = site_update(
                &self.plan,
                self.survivors.round,
                &self.plan.initial_parameters(),
                &data(u as usize, 12, self.plan.features()),
                &self.secrets[u as usize - 1],
            )
            .unwrap();
            crate::analytics::secagg::add_into(
                &mut sum,
                &fp.encode(&update, self.active.len() as u64).unwrap(),
            );
        }
        sum
    }
}

#[test]
fn forged_shares_are_refused_and_named() {
    let seven = hex::encode(curve25519_dalek::scalar::Scalar::from(7u64).to_bytes());
    // Five sites, threshold 3, site 5 drops: four survivors reveal shares.
    let round = Round::new(fedavg_plan(5, 3, 2, 3), 1, &[5]);
    let mut unmasks: Vec<(u32, UnmaskMessage)> = (1..=4).map(|u| (u, round.unmask(u))).collect();
    assert_eq!(round.aggregate(&unmasks).unwrap().sum, round.plain_sum());
    // Site 2 forges its share of site 1's self mask and of site 5's mask key.
    unmasks[1].1.self_shares[0].share = seven.clone();
    unmasks[1].1.mask_shares[0].share = seven.clone();
    let result = round.aggregate(&unmasks).unwrap();
    assert_eq!(
        result.sum,
        round.plain_sum(),
        "three honest shares still recover both"
    );
    assert_eq!(
        result.refused,
        vec![
            Refusal {
                site: 2,
                dealer: 1,
                reason: "share does not match the dealer's commitments".into()
            },
            Refusal {
                site: 2,
                dealer: 5,
                reason: "share does not match the dealer's commitments".into()
            },
        ]
    );
    // Four sites, threshold 3, one dropped: a forged share leaves two valid
    // ones, and nothing is unmasked with a wrong value.
    let round = Round::new(fedavg_plan(4, 3, 2, 3), 1, &[4]);
    let mut unmasks: Vec<(u32, UnmaskMessage)> = (1..=3).map(|u| (u, round.unmask(u))).collect();
    unmasks[1].1.self_shares[0].share = seven;
    assert_eq!(
        round.aggregate(&unmasks).unwrap_err(),
        FlProtocolError::TooFewShares {
            dealer: 1,
            what: "self-mask key",
            valid: 2,
            needed: 3
        }
    );
}

#[test]
fn replayed_and_misdirected_shares_are_refused() {
    let plan = fedavg_plan(5, 3, 3, 2);
    let first = Round::new(plan.clone(), 1, &[5]);
    let second = Round::new(plan, 2, &[5]);
    let mut unmasks: Vec<(u32, UnmaskMessage)> = (1..=4).map(|u| (u, second.unmask(u))).collect();
    // Site 1 replays its round-1 message, relabelled as round 2: its shares
    // are of round 1's secrets and fail round 2's commitments.
    let mut replayed = first.unmask(1);
    replayed.round = 2;
    unmasks[0].1 = replayed;
    // Site 2 sends a second message; only its first counts.
    unmasks.push((2, second.unmask(2)));
    // Site 3 reveals a mask-key share of a survivor (would unmask it).
    let mut greedy = unmasks[2].1.clone();
    greedy.mask_shares.push(RevealedShare {
        dealer: 4,
        share: greedy.self_shares[3].share.clone(),
    });
    unmasks[2].1 = greedy;
    // A non-survivor speaks.
    unmasks.push((
        5,
        UnmaskMessage {
            site: "s".into(),
            ..unmasks[3].1.clone()
        },
    ));
    let result = second.aggregate(&unmasks).unwrap();
    assert_eq!(result.sum, second.plain_sum());
    let reasons: Vec<(u32, u32, &str)> = result
        .refused
        .iter()
        .map(|r| (r.site, r.dealer, r.reason.as_str()))
        .collect();
    let replayed: Vec<_> = reasons.iter().filter(|r| r.0 == 1).collect();
    assert_eq!(replayed.len(), 5, "{reasons:?}");
    assert!(replayed
        .iter()
        .all(|r| r.2 == "share does not match the dealer's commitments"));
    assert!(reasons.contains(&(2, 0, "second unmask message for this round")));
    assert!(reasons.contains(&(3, 4, "mask-key share of a site that is not dropped")));
    assert!(reasons.contains(&(5, 0, "only survivors reveal shares")));
    // A message of another round is not considered at all.
    let mut stale = vec![(1, first.unmask(1))];
    stale.extend((2..=4).map(|u| (u, second.unmask(u))));
    let result = second.aggregate(&stale).unwrap();
    assert_eq!(
        result.refused[0].reason,
        "unmask message of another task or round"
    );
    assert_eq!(result.sum, second.plain_sum());
}

/// A masked input is not the update, and looks independent of it: its
/// words are uniform (chi-square on the top 4 bits) and uncorrelated with
/// the quantised update across coordinates and seeds.
#[test]
fn a_masked_update_is_not_the_update_and_fails_an_independence_test() {
    let d = 63;
    let plan = Simulation::plan(Objective::Moments, spec(d), None, 3, 2, 1, 1e-5).unwrap();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for seed in 0..16 {
        let data: Vec<LocalData> = (0..3).map(|s| data(s + seed as usize, 5, d)).collect();
        let mut sim = Simulation::new(plan.clone(), data, seed).unwrap();
        let round = sim.run_round(&[]).unwrap();
        assert_eq!(round.aggregate.sum, round.plain_sum);
        let (x, y) = (&round.quantised[0], &round.masked[0]);
        assert_ne!(x, y);
        assert!(x.iter().zip(y).filter(|(a, b)| a == b).count() == 0);
        xs.extend(x.iter().map(|v| *v as i64 as f64));
        ys.extend(y.iter().map(|v| *v as f64));
    }
    let n = ys.len() as f64;
    let mut buckets = [0f64; 16];
    for y in &ys {
        buckets[(*y / 2f64.powi(60)).min(15.0) as usize] += 1.0;
    }
    let expected = n / 16.0;
    let chi2: f64 = buckets
        .iter()
        .map(|b| (b - expected).powi(2) / expected)
        .sum();
    // 15 degrees of freedom: 37.7 is the 0.1 % critical value.
    assert!(chi2 < 37.7, "chi-square {chi2} over {buckets:?}");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&xs), mean(&ys));
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let r = cov / (vx.sqrt() * vy.sqrt());
    // |r| < 0.1 with n ≈ 1000 samples: no linear dependence.
    assert!(r.abs() < 0.1, "correlation {r}");
}

#[test]
fn moments_give_pooled_mean_and_std() {
    let d = 2;
    let plan = Simulation::plan(Objective::Moments, spec(d), None, 3, 2, 1, 1e-5).unwrap();
    let sites: Vec<LocalData> = (0..3).map(|s| data(s, 10, d)).collect();
    let mut pooled: Vec<Vec<f64>> = Vec::new();
    for s in 0..3 {
        pooled.extend(data(s, 10, d).rows);
    }
    let mut sim = Simulation::new(plan, sites, 3).unwrap();
    sim.run_round(&[]).unwrap();
    let scaling = sim.scaling().unwrap();
    for j in 0..d {
        let mean = pooled.iter().map(|r| r[j]).sum::<f64>() / 30.0;
        let sd = (pooled.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / 30.0).sqrt();
        assert!((scaling.center[j] - mean).abs() < 1e-6);
        assert!((scaling.scale[j] - sd).abs() < 1e-6);
    }
}

#[test]
fn plans_are_validated() {
    let mut plan = fedavg_plan(4, 3, 2, 2);
    assert!(plan.validate().is_ok());
    plan.threshold = 2; // not more than half of 4
    assert!(matches!(
        plan.validate(),
        Err(InvalidPlanError::Field {
            field: "threshold",
            ..
        })
    ));
    let mut plan = fedavg_plan(3, 2, 2, 2);
    plan.feature_spec_hash = "00".repeat(32);
    assert!(matches!(
        plan.validate(),
        Err(InvalidPlanError::Field {
            field: "feature_spec_hash",
            ..
        })
    ));
    let mut plan = fedavg_plan(3, 2, 2, 2);
    plan.scaling = None;
    assert!(plan.validate().is_err());
    let bytes = fedavg_plan(3, 2, 2, 2).encode();
    assert_eq!(Plan::decode(&bytes).unwrap(), fedavg_plan(3, 2, 2, 2));
    assert!(Plan::decode(b"{}").is_err());
}
