//! Federated logistic regression under secure aggregation on the
//! breast-cancer data's published split, three non-IID sites (split by
//! `mean radius` terciles of the training rows, so one site sees mostly
//! benign tumours and another mostly malignant ones), through the in-memory
//! protocol (`secure_fl::simulation`, the functions the ledger path calls).
//!
//! The accuracy-versus-ε figures over more seeds are in
//! `cargo bench -p careledger --bench secure_fl` and `careledger fl sweep`.

use std::collections::BTreeSet;

use careledger::analytics::dp::{noise_multiplier_for, DpParameters};
use careledger::analytics::example_data::BreastCancerData;
use careledger::analytics::secure_fl::simulation::Simulation;
use careledger::analytics::secure_fl::{LocalData, Objective, UpdateRule};
use careledger::analytics::{evaluate, Dataset, Metrics, TrainedModel};

fn file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../examples/data/ml/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test data present")
}

struct Split {
    data: BreastCancerData,
    sites: Vec<LocalData>,
    test: Dataset,
}

fn split() -> Split {
    let data = BreastCancerData::parse(&file("breast_cancer.csv")).unwrap();
    let test: BTreeSet<usize> = file("breast_cancer_split_test_idx.txt")
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let (x, y) = (data.features(), data.targets());
    let train: Vec<usize> = (0..data.len()).filter(|r| !test.contains(r)).collect();
    let mut radius: Vec<f64> = train.iter().map(|&r| x[[r, 0]]).collect();
    radius.sort_by(f64::total_cmp);
    let (low, high) = (radius[radius.len() / 3], radius[2 * radius.len() / 3]);
    let mut parts = vec![(Vec::new(), Vec::new()); 3];
    for &r in &train {
        let s = if x[[r, 0]] < low {
            0
        } else if x[[r, 0]] < high {
            1
        } else {
            2
        };
        parts[s].0.push(x.row(r).to_vec());
        parts[s].1.push(y[r]);
    }
    let benign: Vec<f64> = parts
        .iter()
        .map(|(_, l)| l.iter().sum::<f64>() / l.len() as f64)
        .collect();
    // Non-IID by construction: the small-radius site is almost all benign,
    // the large-radius one mostly malignant.
    assert!(benign[0] > 0.9 && benign[2] < 0.4, "{benign:?}");
    let sites = parts
        .into_iter()
        .map(|(rows, labels)| LocalData::new(rows, labels).unwrap())
        .collect();
    let rows: Vec<usize> = test.into_iter().collect();
    let test = Dataset::from_arrays(
        x.select(ndarray::Axis(0), &rows),
        Some(y.select(ndarray::Axis(0), &rows)),
        data.spec().hash(),
    )
    .unwrap();
    Split { data, sites, test }
}

fn accuracy(model: &TrainedModel, test: &Dataset) -> f64 {
    match evaluate(model, test).unwrap() {
        Metrics::Classification(m) => m.accuracy,
        _ => panic!("not a classifier"),
    }
}

fn scaling(s: &Split) -> careledger::analytics::secure_fl::FeatureScaling {
    let plan = Simulation::plan(Objective::Moments, s.data.spec(), None, 3, 2, 1, 1e-5).unwrap();
    let mut sim = Simulation::new(plan, s.sites.clone(), 1).unwrap();
    sim.run_round(&[]).unwrap();
    sim.scaling().unwrap().clone()
}

#[test]
fn secure_fedavg_over_three_non_iid_sites_reaches_the_bar() {
    let s = split();
    let plan = Simulation::plan(
        Objective::LogisticRegression {
            rule: UpdateRule::FedAvg {
                local_steps: 10,
                learning_rate: 0.5,
            },
            l2: 1e-3,
        },
        s.data.spec(),
        Some(scaling(&s)),
        3,
        2,
        12,
        1e-5,
    )
    .unwrap();
    let mut sim = Simulation::new(plan, s.sites.clone(), 1).unwrap();
    for _ in 0..12 {
        let round = sim.run_round(&[]).unwrap();
        assert_eq!(round.aggregate.sum, round.plain_sum);
    }
    let accuracy = accuracy(&sim.model().unwrap(), &s.test);
    eprintln!("secure FedAvg, 3 non-IID sites, 12 rounds: test accuracy {accuracy:.4} (centralised 0.986)");
    assert!(accuracy >= 0.97, "{accuracy}");
}

#[test]
fn dp_sgd_at_epsilon_8_stays_useful() {
    let s = split();
    let scaling = scaling(&s);
    let (rounds, q) = (30u32, 1.0);
    let sigma = noise_multiplier_for(&[], q, u64::from(rounds), 8.0, 1e-5).unwrap();
    let mut accuracies = Vec::new();
    for seed in 0..3 {
        let plan = Simulation::plan(
            Objective::LogisticRegression {
                rule: UpdateRule::DpSgd {
                    learning_rate: 1.0,
                    dp: DpParameters {
                        clip_norm: 1.0,
                        noise_multiplier: sigma,
                        sampling_rate: q,
                    },
                },
                l2: 1e-3,
            },
            s.data.spec(),
            Some(scaling.clone()),
            3,
            2,
            rounds,
            1e-5,
        )
        .unwrap();
        let mut sim = Simulation::new(plan, s.sites.clone(), seed).unwrap();
        for _ in 0..rounds {
            sim.run_round(&[]).unwrap();
        }
        accuracies.push(accuracy(&sim.model().unwrap(), &s.test));
    }
    eprintln!("DP-SGD ε = 8 (σ = {sigma:.2}, {rounds} rounds): test accuracy {accuracies:?}");
    assert!(accuracies.iter().all(|a| *a >= 0.93), "{accuracies:?}");
}
