//! careledger's RDP accountant against Google's `dp_accounting`
//! (`RdpAccountant`, PyPI `dp-accounting`): ε for the Poisson-subsampled
//! Gaussian mechanism over a seeded grid of (q, σ, steps, δ), with the same
//! Rényi orders. The figures are in `core/test_vectors/dp_accounting_eps.json`,
//! written by `tests/dp/dp_accounting_reference.py`; `bash tests/dp/crosscheck.sh
//! 2000` compares a larger grid (`CARELEDGER_DP_REFERENCE` names the file).

use careledger::analytics::dp::{epsilon, Composition};

#[test]
fn epsilon_agrees_with_dp_accounting() {
    let path = std::env::var("CARELEDGER_DP_REFERENCE").unwrap_or_else(|_| {
        format!(
            "{}/test_vectors/dp_accounting_eps.json",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let text = std::fs::read_to_string(&path).expect("reference file");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let cases = reference["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut worst: f64 = 0.0;
    for (i, case) in cases.iter().enumerate() {
        let compositions: Vec<Composition> = case["compositions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Composition {
                sampling_rate: c[0].as_f64().unwrap(),
                noise_multiplier: c[1].as_f64().unwrap(),
                steps: c[2].as_u64().unwrap(),
            })
            .collect();
        let delta = case["delta"].as_f64().unwrap();
        let want = case["epsilon"].as_f64().unwrap();
        let (got, _) = epsilon(&compositions, delta);
        let relative = (got - want).abs() / want.abs().max(1e-12);
        worst = worst.max(relative);
        assert!(
            relative < 1e-6,
            "case {i} {compositions:?} δ {delta}: careledger {got}, dp_accounting {want}"
        );
    }
    eprintln!(
        "{} cases from {}: largest relative difference {worst:e}",
        cases.len(),
        reference["source"]
    );
}
