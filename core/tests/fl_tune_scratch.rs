use careledger::analytics::example_data::BreastCancerData;
use careledger::analytics::secure_fl::simulation::Simulation;
use careledger::analytics::secure_fl::*;
use careledger::analytics::dp::{DpParameters, noise_multiplier_for};
use careledger::analytics::{evaluate, Dataset, Metrics};
use std::collections::BTreeSet;

fn file(name: &str) -> String { std::fs::read_to_string(format!("{}/../examples/data/ml/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap() }

#[test]
fn tune() {
    let bc = BreastCancerData::parse(&file("breast_cancer.csv")).unwrap();
    let test: BTreeSet<usize> = file("breast_cancer_split_test_idx.txt").lines().map(|l| l.trim().parse().unwrap()).collect();
    let x = bc.features(); let y = bc.targets();
    let train: Vec<usize> = (0..bc.len()).filter(|r| !test.contains(r)).collect();
    let mut radius: Vec<f64> = train.iter().map(|&r| x[[r,0]]).collect(); radius.sort_by(|a,b| a.partial_cmp(b).unwrap());
    let (c1, c2) = (radius[radius.len()/3], radius[2*radius.len()/3]);
    let mut sites = vec![(vec![], vec![]), (vec![], vec![]), (vec![], vec![])];
    for &r in &train { let v = x[[r,0]]; let s = if v < c1 {0} else if v < c2 {1} else {2}; sites[s].0.push(x.row(r).to_vec()); sites[s].1.push(y[r]); }
    for s in &sites { eprintln!("site rows {} benign {}", s.0.len(), s.1.iter().sum::<f64>()); }
    let data: Vec<LocalData> = sites.iter().map(|(r, l)| LocalData::new(r.clone(), l.clone()).unwrap()).collect();
    let spec = bc.spec();
    let plan = Simulation::plan(Objective::Moments, spec.clone(), None, 3, 2, 1, 1e-5).unwrap();
    let mut sim = Simulation::new(plan, data.clone(), 1).unwrap();
    sim.run_round(&[]).unwrap();
    let scaling = sim.scaling().unwrap().clone();
    let test_rows: Vec<usize> = test.iter().copied().collect();
    let tx = x.select(ndarray::Axis(0), &test_rows); let ty = y.select(ndarray::Axis(0), &test_rows);
    let test_ds = Dataset::from_arrays(tx, Some(ty), spec.hash()).unwrap();
    let acc = |m: &careledger::analytics::TrainedModel| match evaluate(m, &test_ds).unwrap() { Metrics::Classification(c) => c.accuracy, _ => 0.0 };
    for (steps, lr, rounds) in [(1u32, 1.0, 50u32), (5, 0.5, 20), (10, 0.5, 20), (20, 0.5, 30)] {
        let plan = Simulation::plan(Objective::LogisticRegression { rule: UpdateRule::FedAvg { local_steps: steps, learning_rate: lr }, l2: 1e-3 }, spec.clone(), Some(scaling.clone()), 3, 2, rounds, 1e-5).unwrap();
        let mut sim = Simulation::new(plan, data.clone(), 1).unwrap();
        let t = std::time::Instant::now();
        for r in 0..rounds { sim.run_round(&[]).unwrap(); if r % 5 == 4 { eprintln!("fedavg steps {steps} lr {lr} round {} acc {:.4}", r+1, acc(&sim.model().unwrap())); } }
        eprintln!("  time {:?}", t.elapsed());
    }
    for eps in [1.0, 3.0, 8.0] {
        for (q, rounds, lr, clip) in [(1.0, 30u32, 1.0, 1.0), (0.3, 60, 1.0, 1.0), (1.0, 60, 1.0, 0.5)] {
            let sigma = noise_multiplier_for(&[], q, rounds as u64, eps, 1e-5).unwrap();
            let mut accs = vec![];
            for seed in 0..5 {
                let plan = Simulation::plan(Objective::LogisticRegression { rule: UpdateRule::DpSgd { learning_rate: lr, dp: DpParameters { clip_norm: clip, noise_multiplier: sigma, sampling_rate: q } }, l2: 1e-3 }, spec.clone(), Some(scaling.clone()), 3, 2, rounds, 1e-5).unwrap();
                let mut sim = Simulation::new(plan, data.clone(), seed).unwrap();
                for _ in 0..rounds { sim.run_round(&[]).unwrap(); }
                accs.push(acc(&sim.model().unwrap()));
            }
            eprintln!("eps {eps} q {q} rounds {rounds} sigma {sigma:.2} lr {lr} clip {clip}: acc {:?}", accs);
        }
    }
}
