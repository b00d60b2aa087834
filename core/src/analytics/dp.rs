//! Differential privacy for federated rounds: per-record clipping, Gaussian
//! noise, and a Rényi-DP accountant for the Poisson-subsampled Gaussian
//! mechanism.
//!
//! # Flow
//!
//! 1. A plan fixes a [`DpParameters`]: clipping norm `C`, noise multiplier
//!    `σ`, Poisson sampling rate `q` and the `δ` the budget is stated at.
//! 2. Before anything is read, [`Composition`]s already spent by a dataset
//!    plus the ones a plan would add are turned into `(ε, δ)` with
//!    [`epsilon`]; a plan that would exceed the network's [`BudgetPolicy`]
//!    is refused.
//! 3. Each round, each site samples its rows with probability `q`
//!    ([`poisson_sample`]), clips every row's gradient to L2 norm `C`
//!    ([`clip_l2`]), sums, and adds its share of the noise
//!    ([`gaussian_vector`]). Secure aggregation then releases only the sum.
//!
//! # The mechanism and its accountant
//!
//! Each round releases `Σ_i clip_C(g_i) + N(0, σ²C²·I)` over the rows that
//! the Poisson sample kept, one row being one patient (add/remove
//! neighbouring datasets). That is the sampled Gaussian mechanism of
//! DP-SGD (Abadi et al. 2016). Its Rényi DP at order `α` is computed as in
//! Mironov, Talwar and Zhang, *Rényi Differential Privacy of the Sampled
//! Gaussian Mechanism* (2019): exactly by the binomial expansion for integer
//! orders, by the two-sided series for fractional ones. This is the same
//! analysis as TensorFlow Privacy, Opacus and Google's `dp_accounting`
//! (`RdpAccountant`), and the tests check this implementation against the
//! figures published in `dp_accounting`'s test suite;
//! `tests/dp/crosscheck.sh` (with `tests/dp/dp_accounting_reference.py`) compares it with `dp_accounting`
//! itself on random parameters. RDP composes by addition over rounds; the
//! conversion to `(ε, δ)` is Proposition 12 of Canonne, Kamath and Steinke
//! (2020), as `dp_accounting` does it.
//!
//! **Distributed noise.** No single party may add all the noise: every
//! member can recompute the unmasked sum, so noise added after aggregation
//! would protect nothing. Each of the `s` surviving sites adds
//! `N(0, σ²C²/t)` where `t` is the plan's secure-aggregation threshold, the
//! fewest sites a round can complete with. The released noise then has
//! variance `s·σ²C²/t ≥ σ²C²`: at least what the accountant assumes, more
//! when more sites survive. The guarantee assumes fewer than `t` sites
//! collude to subtract their own noise.
//!
//! **Floating point.** Noise is drawn in double precision (polar method on
//! a ChaCha20 stream) and the noisy sum is rounded to the secure-aggregation
//! grid (2⁻²⁴ by default). Like every floating-point implementation of the
//! Gaussian mechanism, this is not the idealised real-valued mechanism the
//! analysis covers (Mironov 2012); the coarse grid removes the low-order bits
//! the known attacks read. A discrete Gaussian would close the gap and is
//! not implemented.
//!
//! ```
//! use careledger::analytics::dp::{epsilon, Composition};
//! // DP-SGD on MNIST-like settings: q = 256/60000, σ = 1.1, 60 epochs.
//! let steps = (60.0 * 60000.0 / 256.0) as u64;
//! let spent = [Composition { sampling_rate: 256.0 / 60000.0, noise_multiplier: 1.1, steps }];
//! let (eps, order) = epsilon(&spent, 1e-5);
//! assert!(eps > 1.5 && eps < 3.5, "{eps} at order {order}");
//! ```

use rand_core_10::Rng;
use serde::{Deserialize, Serialize};

/// The Rényi orders the accountant evaluates: Opacus's default alphas
/// (1.1 … 10.9 by 0.1, then 12 … 63) and the large orders
/// `dp_accounting` adds (128 … 1024), which matter for small noise.
pub fn default_orders() -> Vec<f64> {
    let mut orders: Vec<f64> = (1..100).map(|x| 1.0 + x as f64 / 10.0).collect();
    orders.extend((12..64).map(f64::from));
    orders.extend([128.0, 256.0, 512.0, 1024.0]);
    orders
}

/// `steps` rounds of the Poisson-subsampled Gaussian mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Composition {
    /// Poisson sampling rate `q` in (0, 1].
    pub sampling_rate: f64,
    /// Noise standard deviation over the clipping norm, `σ`.
    pub noise_multiplier: f64,
    /// How many times it ran.
    pub steps: u64,
}

/// The DP settings of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpParameters {
    /// Per-record L2 clipping norm `C` (> 0).
    pub clip_norm: f64,
    /// Noise multiplier `σ` (> 0): total noise standard deviation is `σ·C`.
    pub noise_multiplier: f64,
    /// Poisson sampling rate `q` in (0, 1].
    pub sampling_rate: f64,
}

/// A network's privacy budget: every dataset (one per site) may spend at
/// most `max_epsilon` at `delta`. A network has no policy until a member
/// writes one; the effective policy is the strictest of every member's
/// latest (see [`BudgetPolicy::strictest`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetPolicy {
    /// Largest ε any dataset may reach (> 0).
    pub max_epsilon: f64,
    /// The δ budgets are stated at, in (0, 1).
    pub delta: f64,
    /// Whether rounds without differential privacy (plain secure
    /// aggregation, feature statistics) are allowed. Their ε is infinite, so
    /// a network that says no refuses them.
    pub allow_non_private: bool,
}

/// Why a DP parameter set or policy is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDpError {
    /// A parameter is out of its range.
    #[error("{field} must be {rule}")]
    OutOfRange {
        /// The parameter.
        field: &'static str,
        /// Its range.
        rule: &'static str,
    },
}

fn check(ok: bool, field: &'static str, rule: &'static str) -> Result<(), InvalidDpError> {
    if ok {
        Ok(())
    } else {
        Err(InvalidDpError::OutOfRange { field, rule })
    }
}

impl DpParameters {
    /// Check every range.
    pub fn validate(&self) -> Result<(), InvalidDpError> {
        check(
            self.clip_norm.is_finite() && self.clip_norm > 0.0,
            "clip_norm",
            "a finite number above 0",
        )?;
        check(
            self.noise_multiplier.is_finite() && self.noise_multiplier > 0.0,
            "noise_multiplier",
            "a finite number above 0",
        )?;
        check(
            self.sampling_rate > 0.0 && self.sampling_rate <= 1.0,
            "sampling_rate",
            "above 0 and at most 1",
        )
    }

    /// `rounds` rounds of this mechanism.
    pub fn composition(&self, rounds: u64) -> Composition {
        Composition {
            sampling_rate: self.sampling_rate,
            noise_multiplier: self.noise_multiplier,
            steps: rounds,
        }
    }
}

impl BudgetPolicy {
    /// Check every range.
    pub fn validate(&self) -> Result<(), InvalidDpError> {
        check(
            self.max_epsilon.is_finite() && self.max_epsilon > 0.0,
            "max_epsilon",
            "a finite number above 0",
        )?;
        check(
            self.delta > 0.0 && self.delta < 1.0,
            "delta",
            "above 0 and below 1",
        )
    }

    /// The strictest of several policies: the smallest ε cap, the smallest
    /// δ, and non-private rounds only if every policy allows them.
    pub fn strictest<'a>(policies: impl IntoIterator<Item = &'a BudgetPolicy>) -> Option<Self> {
        policies.into_iter().fold(None, |acc, p| {
            Some(match acc {
                None => *p,
                Some(a) => BudgetPolicy {
                    max_epsilon: a.max_epsilon.min(p.max_epsilon),
                    delta: a.delta.min(p.delta),
                    allow_non_private: a.allow_non_private && p.allow_non_private,
                },
            })
        })
    }
}

fn log_add(x: f64, y: f64) -> f64 {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    if a == f64::NEG_INFINITY {
        return b;
    }
    (a - b).exp().ln_1p() + b
}

/// `ln |binom(n, k)|` for real `n` (log-gamma, as `scipy.special.gammaln`).
fn log_binom(n: f64, k: f64) -> f64 {
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

/// `ln erfc(x)`, with the asymptotic series where `erfc` underflows.
fn log_erfc(x: f64) -> f64 {
    let r = libm::erfc(x);
    if r > 0.0 {
        return r.ln();
    }
    let x2 = x * x;
    -std::f64::consts::PI.ln() / 2.0 - x.ln() - x2 - 0.5 / x2 + 0.625 / (x2 * x2)
        - 37.0 / 24.0 / (x2 * x2 * x2)
        + 353.0 / 64.0 / (x2 * x2 * x2 * x2)
}

/// `ln A_α` for integer `α` (binomial expansion).
fn log_a_integer(q: f64, sigma: f64, alpha: u64) -> f64 {
    let mut log_a = f64::NEG_INFINITY;
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let s2 = 2.0 * sigma * sigma;
    for i in 0..=alpha {
        let fi = i as f64;
        let term =
            log_binom(alpha as f64, fi) + fi * lq + (alpha - i) as f64 * l1q + (fi * fi - fi) / s2;
        log_a = log_add(log_a, term);
    }
    log_a
}

/// Terms of the fractional-order series summed at most (then the order is
/// given up as infinite, as `dp_accounting` does).
const MAX_FRACTIONAL_TERMS: u32 = 1000;

/// `ln A_α` for fractional `α`: the two integrals over (−∞, z₀] and
/// [z₀, ∞) of Mironov et al. (2019, §3.3) as series, summed until both terms
/// decrease and fall 30 nats below the total (`dp_accounting`'s rule).
fn log_a_fractional(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let (mut last_s0, mut last_s1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let s2 = 2.0 * sigma * sigma;
    let root2sigma = std::f64::consts::SQRT_2 * sigma;
    for i in 0..MAX_FRACTIONAL_TERMS {
        let fi = f64::from(i);
        let log_coef = log_binom(alpha, fi);
        let j = alpha - fi;
        let log_t0 = log_coef + fi * lq + j * l1q;
        let log_t1 = log_coef + j * lq + fi * l1q;
        let log_e0 = 0.5f64.ln() + log_erfc((fi - z0) / root2sigma);
        let log_e1 = 0.5f64.ln() + log_erfc((z0 - j) / root2sigma);
        let log_s0 = log_t0 + (fi * fi - fi) / s2 + log_e0;
        let log_s1 = log_t1 + (j * j - j) / s2 + log_e1;
        log_a0 = log_add(log_a0, log_s0);
        log_a1 = log_add(log_a1, log_s1);
        let total = log_add(log_a0, log_a1);
        if log_s0 < last_s0 && log_s1 < last_s1 && log_s0.max(log_s1) < total - 30.0 {
            return total;
        }
        (last_s0, last_s1) = (log_s0, log_s1);
    }
    f64::INFINITY
}

/// RDP at order `alpha` of one run of the Poisson-subsampled Gaussian
/// mechanism with sampling rate `q` and noise multiplier `sigma`.
pub fn rdp_sampled_gaussian(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q <= 0.0 {
        return 0.0;
    }
    if sigma <= 0.0 || alpha.is_infinite() {
        return f64::INFINITY;
    }
    if q >= 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    let log_a = if alpha.fract() == 0.0 && alpha <= 1e6 {
        log_a_integer(q, sigma, alpha as u64)
    } else {
        log_a_fractional(q, sigma, alpha)
    };
    log_a / (alpha - 1.0)
}

/// RDP of a list of compositions at each of `orders` (summed).
pub fn compute_rdp(compositions: &[Composition], orders: &[f64]) -> Vec<f64> {
    orders
        .iter()
        .map(|&alpha| {
            compositions
                .iter()
                .map(|c| {
                    if c.steps == 0 {
                        0.0
                    } else {
                        c.steps as f64
                            * rdp_sampled_gaussian(c.sampling_rate, c.noise_multiplier, alpha)
                    }
                })
                .sum()
        })
        .collect()
}

/// The smallest ε such that the RDP curve gives `(ε, δ)`-DP, and the order
/// that gives it (Canonne, Kamath and Steinke 2020, Proposition 12; orders
/// at most 1.01 are not used, as in `dp_accounting`). Infinite when no
/// order gives a finite bound (e.g. a mechanism without noise).
pub fn epsilon_from_rdp(orders: &[f64], rdp: &[f64], delta: f64) -> (f64, f64) {
    let mut best = (f64::INFINITY, orders.first().copied().unwrap_or(0.0));
    for (&a, &r) in orders.iter().zip(rdp) {
        let eps = if r.is_nan() || r < 0.0 {
            f64::INFINITY
        } else if delta * delta + (-r).exp_m1() > 0.0 {
            0.0
        } else if a > 1.01 {
            r + (-1.0 / a).ln_1p() - (delta * a).ln() / (a - 1.0)
        } else {
            f64::INFINITY
        };
        if eps < best.0 {
            best = (eps, a);
        }
    }
    (best.0.max(0.0), best.1)
}

/// `(ε, order)` of a list of compositions at `delta`, over
/// [`default_orders`].
pub fn epsilon(compositions: &[Composition], delta: f64) -> (f64, f64) {
    let orders = default_orders();
    epsilon_from_rdp(&orders, &compute_rdp(compositions, &orders), delta)
}

/// The smallest noise multiplier (to 0.1 %) such that `already` plus
/// `rounds` rounds at sampling rate `q` stay within `target_epsilon` at
/// `delta`; `None` if even σ = 10⁴ does not.
pub fn noise_multiplier_for(
    already: &[Composition],
    q: f64,
    rounds: u64,
    target_epsilon: f64,
    delta: f64,
) -> Option<f64> {
    let spend = |sigma: f64| {
        let mut all = already.to_vec();
        all.push(Composition {
            sampling_rate: q,
            noise_multiplier: sigma,
            steps: rounds,
        });
        epsilon(&all, delta).0
    };
    let (mut lo, mut hi) = (1e-3, 1e4);
    if spend(hi) > target_epsilon {
        return None;
    }
    while hi / lo > 1.001 {
        let mid = (lo * hi).sqrt();
        if spend(mid) <= target_epsilon {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Scale `v` down to L2 norm at most `clip_norm`; whether it was clipped.
pub fn clip_l2(v: &mut [f64], clip_norm: f64) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > clip_norm && norm > 0.0 {
        let scale = clip_norm / norm;
        v.iter_mut().for_each(|x| *x *= scale);
        true
    } else {
        false
    }
}

/// A uniform double in (0, 1) from 53 random bits.
fn uniform_open(rng: &mut impl Rng) -> f64 {
    loop {
        let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        if u > 0.0 {
            return u;
        }
    }
}

/// `len` independent draws of `N(0, std²)` (Marsaglia's polar method).
pub fn gaussian_vector(rng: &mut impl Rng, std: f64, len: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(len + 1);
    while out.len() < len {
        let (u, v) = (2.0 * uniform_open(rng) - 1.0, 2.0 * uniform_open(rng) - 1.0);
        let s = u * u + v * v;
        if s >= 1.0 || s == 0.0 {
            continue;
        }
        let factor = (-2.0 * s.ln() / s).sqrt() * std;
        out.push(u * factor);
        out.push(v * factor);
    }
    out.truncate(len);
    out
}

/// Each of `rows` kept with probability `q` (Poisson sampling), in order.
pub fn poisson_sample(rng: &mut impl Rng, rows: usize, q: f64) -> Vec<usize> {
    if q >= 1.0 {
        return (0..rows).collect();
    }
    (0..rows).filter(|_| uniform_open(rng) < q).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core_10::SeedableRng;

    /// `dp_accounting`'s `test_compute_rdp_poisson_sampled_gaussian`.
    #[test]
    fn rdp_matches_dp_accounting_published_figures() {
        let orders = [1.5, 2.5, 5.0, 50.0, 100.0, f64::INFINITY];
        let rdp = compute_rdp(
            &[Composition {
                sampling_rate: 0.01,
                noise_multiplier: 2.5,
                steps: 50,
            }],
            &orders,
        );
        let published = [
            6.70579741e-04,
            1.08548710e-03,
            2.18075656e-03,
            2.38460375e-02,
            1.67416308e02,
        ];
        for (got, want) in rdp.iter().zip(published) {
            assert!(((got - want) / want).abs() < 1e-4, "{got} vs {want}");
        }
        assert!(rdp[5].is_infinite());
    }

    /// `dp_accounting`'s `test_compute_epsilon_delta_pure_dp`.
    #[test]
    fn pure_dp_conversion_matches() {
        let orders: Vec<f64> = (2..33).map(f64::from).collect();
        let rdp = vec![1.1; orders.len()];
        let (eps, order) = epsilon_from_rdp(&orders, &rdp, 1e-5);
        assert!((eps - 1.327_838_061_76).abs() < 1e-9, "{eps}");
        assert_eq!(order, 32.0);
    }

    /// `dp_accounting`'s `test_compute_epsilon_delta_gaussian`: σ chosen for
    /// exactly (1, 1e-6)-DP of the full-batch Gaussian.
    #[test]
    fn gaussian_noise_multiplier_for_exactly_one_epsilon() {
        let orders: Vec<f64> = (1000..100_000).map(|i| 0.001 * i as f64).collect();
        let rdp = compute_rdp(
            &[Composition {
                sampling_rate: 1.0,
                noise_multiplier: 4.530_877_117,
                steps: 1,
            }],
            &orders,
        );
        let (eps, _) = epsilon_from_rdp(&orders, &rdp, 1e-6);
        assert!((eps - 1.0).abs() < 1e-6, "{eps}");
    }

    #[test]
    fn edge_cases() {
        assert_eq!(rdp_sampled_gaussian(0.0, 1.0, 2.0), 0.0);
        assert!(rdp_sampled_gaussian(0.5, 0.0, 2.0).is_infinite());
        let (eps, _) = epsilon(
            &[Composition {
                sampling_rate: 0.5,
                noise_multiplier: 0.0,
                steps: 1,
            }],
            1e-5,
        );
        assert!(eps.is_infinite());
        assert_eq!(epsilon(&[], 1e-5).0, 0.0);
    }

    #[test]
    fn more_rounds_cost_more_and_more_noise_costs_less() {
        let c = |sigma, steps| Composition {
            sampling_rate: 0.2,
            noise_multiplier: sigma,
            steps,
        };
        let e = |x| epsilon(&[x], 1e-5).0;
        assert!(e(c(1.0, 10)) < e(c(1.0, 20)));
        assert!(e(c(2.0, 10)) < e(c(1.0, 10)));
        let sigma = noise_multiplier_for(&[], 0.2, 30, 3.0, 1e-5).unwrap();
        let spent = epsilon(&[c(sigma, 30)], 1e-5).0;
        assert!(spent <= 3.0 && spent > 2.99, "{spent}");
    }

    #[test]
    fn clipping_and_noise() {
        let mut v = vec![3.0, 4.0];
        assert!(clip_l2(&mut v, 1.0));
        assert!((v[0] - 0.6).abs() < 1e-15 && (v[1] - 0.8).abs() < 1e-15);
        assert!(!clip_l2(&mut v, 2.0));
        let mut rng = rand_chacha_10::ChaCha20Rng::from_seed([9; 32]);
        let noise = gaussian_vector(&mut rng, 2.0, 20_001);
        let mean = noise.iter().sum::<f64>() / noise.len() as f64;
        let var = noise.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / noise.len() as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 4.0).abs() < 0.15, "{var}");
        let kept = poisson_sample(&mut rng, 10_000, 0.3);
        assert!((2800..3200).contains(&kept.len()), "{}", kept.len());
    }

    #[test]
    fn strictest_policy() {
        let a = BudgetPolicy {
            max_epsilon: 8.0,
            delta: 1e-5,
            allow_non_private: true,
        };
        let b = BudgetPolicy {
            max_epsilon: 3.0,
            delta: 1e-6,
            allow_non_private: false,
        };
        let s = BudgetPolicy::strictest([&a, &b]).unwrap();
        assert_eq!(s.max_epsilon, 3.0);
        assert_eq!(s.delta, 1e-6);
        assert!(!s.allow_non_private);
        assert!(BudgetPolicy::strictest([]).is_none());
    }
}
