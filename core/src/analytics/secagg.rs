//! Secure aggregation by pairwise masking (Bonawitz et al., CCS 2017), with
//! dropout recovery through Feldman-verifiable Shamir shares (`vsss-rs`)
//! over ristretto255.
//!
//! # Flow
//!
//! This module holds the arithmetic and cryptography; [`super::secure_fl`]
//! drives it through a federated task and `crate::node` puts every message
//! on the ledger.
//!
//! 1. **Keys.** Each site derives all of its secrets for a task from one
//!    32-byte seed it keeps wrapped in its own store ([`SiteSecrets`]): a
//!    channel key, and for every round `r` a mask key `s_r` and a self-mask
//!    key `b_r`. It publishes the channel public key `c·G` in a signed
//!    ledger entry.
//! 2. **Shares.** Once every participant's channel key is on the ledger,
//!    each site splits every `s_r` and `b_r` with [`deal`] (threshold `t` of
//!    `n`, Feldman commitments) and publishes the commitments and, per other
//!    participant, an envelope holding that participant's shares, sealed
//!    with XChaCha20-Poly1305 under a key from `DH(c_u, c_v)`
//!    ([`envelope_key`]). The constant commitment of `s_r` *is* the round's
//!    mask public key `S_{u,r} = s_r·G`.
//! 3. **Masking.** In round `r`, site `u` quantises its update to fixed
//!    point ([`FixedPoint`]) and adds, modulo 2⁶⁴, the stream of `b_r` and,
//!    for every other active site `v`, plus or minus the stream of the pair
//!    seed `DH(s_{u,r}, S_{v,r})` (plus if `u < v`) — see [`apply_masks`].
//! 4. **Unmasking.** The coordinator names the survivors (sites whose masked
//!    input it takes) and the dropped. Each survivor reveals its shares of
//!    `b_r` for every survivor and of `s_r` for every dropped site, never
//!    both for one site and round. Anyone checks each revealed share against
//!    the dealer's commitments ([`verify_share`]), interpolates ([`combine`]),
//!    removes the survivors' self masks and the dropped sites' pair masks,
//!    and gets the exact sum modulo 2⁶⁴ of the survivors' quantised updates.
//!
//! # Why no one sees a single site's update
//!
//! The ledger is a broadcast: every member, not just the coordinator, reads
//! every masked input and every revealed share, so the argument is made
//! against all of them.
//!
//! * A masked input `y_u = x_u + PRG(b_r) ± Σ_v PRG(s_uv)` is uniformly
//!   distributed to anyone without `b_r`: the self mask alone is a one-time
//!   pad over `Z_{2^64}^d`.
//! * `b_r` is revealed only when `u` is named a survivor, and then every pair
//!   seed `s_uv` with another survivor still hides `x_u`. A pair seed is a
//!   Diffie-Hellman value of two secret scalars; only `u` and `v` can compute
//!   it until one of their `s_r` is reconstructed, which happens only when
//!   that site is named dropped in round `r` — and then its `b_r` is never
//!   revealed, so its late masked input (if any) stays padded. Keys are per
//!   round, so reconstructing a dropped site's `s_r` opens nothing of the
//!   rounds it took part in.
//! * Shamir with threshold `t`: fewer than `t` shares of a secret reveal
//!   nothing about it. Honest sites answer only the first survivor list a
//!   round has on the coordinator's hash chain (a second list for the same
//!   round is ignored), and each reveals once per round, so the
//!   coordinator cannot obtain both `b_r` and `s_r` of one site by telling
//!   different sites different stories — on the ledger everyone sees the
//!   same signed story. With `t > n/2` two disjoint halves cannot both reach
//!   the threshold either.
//! * Why not the MLS exporter for the pair seeds: every member of the MLS
//!   group derives every exporter secret, so a seed "for the pair (u, v)"
//!   exported from the group would be known to all members, and anyone could
//!   strip every mask. The seeds must come from keys only the two sites
//!   hold: the per-round scalars here, bound to each site's credential
//!   because they arrive in entries signed with its MLS signature key.
//!
//! What the aggregate itself reveals (the sum of the survivors' updates,
//! hence a site's update to anyone who knows all the others) is the job of
//! differential privacy ([`super::dp`]), not of masking. A round with fewer
//! than `t` survivors is not unmasked.
//!
//! ```
//! use careledger::analytics::secagg::{
//!     add_into, apply_masks, combine, deal, remove_self_mask, FixedPoint,
//! };
//! use curve25519_dalek::scalar::Scalar;
//! let fp = FixedPoint::new(24).unwrap();
//! let (x1, x2) = (fp.encode(&[0.5, -1.25], 2).unwrap(), fp.encode(&[1.0, 2.0], 2).unwrap());
//! let (pair, b1, b2) = ([7u8; 32], [1u8; 32], [2u8; 32]);
//! let mut y1 = x1.clone();
//! apply_masks(&mut y1, 1, &b1, &[(2, pair)]);
//! let mut y2 = x2.clone();
//! apply_masks(&mut y2, 2, &b2, &[(1, pair)]);
//! assert_ne!(y1, x1);
//! let mut sum = vec![0u64; 2];
//! add_into(&mut sum, &y1);
//! add_into(&mut sum, &y2); // the pair masks cancel
//! remove_self_mask(&mut sum, &b1);
//! remove_self_mask(&mut sum, &b2);
//! assert_eq!(fp.decode(&sum), vec![1.5, 0.75]);
//!
//! let dealt = deal(&Scalar::from(42u64), 2, 3, [5; 32]).unwrap();
//! let back = combine(&[(1, dealt.shares[0]), (3, dealt.shares[2])]).unwrap();
//! assert_eq!(back, Scalar::from(42u64));
//! ```

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use rand_chacha_10::ChaCha20Rng;
use rand_core_10::{Rng, SeedableRng};
use sha2::Sha256;
use vsss_rs::{
    feldman, DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ReadableShareSet,
    ShareVerifierGroup, ValueGroup,
};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::SecretKey;

/// Fractional bits of the default fixed-point grid (2⁻²⁴ ≈ 6·10⁻⁸).
pub const DEFAULT_FRAC_BITS: u32 = 24;

type VssShare = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type VssVerifier = ShareVerifierGroup<RistrettoPoint>;

/// A secure-aggregation step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecAggError {
    /// A value does not fit the fixed-point grid for this many parties.
    #[error(
        "value {index} does not fit the fixed-point range (|x| < {bound}) for the parties summed"
    )]
    OutOfRange {
        /// Position in the vector.
        index: usize,
        /// The bound, as text.
        bound: String,
    },
    /// A value is NaN or infinite.
    #[error("value {index} is not finite")]
    NonFinite {
        /// Position in the vector.
        index: usize,
    },
    /// The fixed-point fractional bits are outside 1–48.
    #[error("fixed-point fractional bits must be 1 to 48")]
    FracBits,
    /// A public key or commitment is not a valid ristretto255 point.
    #[error("{what} is not a valid ristretto255 point")]
    BadPoint {
        /// Which value.
        what: &'static str,
    },
    /// A share is not a canonical scalar.
    #[error("a share is not a canonical scalar")]
    BadScalar,
    /// Threshold and holder count do not make a sharing (need 2 ≤ t ≤ n).
    #[error("cannot share with threshold {threshold} among {holders}")]
    Threshold {
        /// t.
        threshold: usize,
        /// n.
        holders: usize,
    },
    /// Interpolation failed (duplicate or too few shares).
    #[error("the shares do not combine: {0}")]
    Combine(String),
    /// An envelope does not open (wrong key, wrong context, or tampered).
    #[error("envelope does not open for this holder")]
    Envelope,
}

/// Fixed-point encoding of doubles into `Z_{2^64}` (two's complement), so
/// that sums modulo 2⁶⁴ are exact and decode to the sum of the rounded
/// values as long as the true sum stays within ±2⁶³⁻ᶠ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedPoint {
    frac_bits: u32,
}

impl FixedPoint {
    /// A grid of `2^-frac_bits` (1 to 48 bits).
    pub fn new(frac_bits: u32) -> Result<Self, SecAggError> {
        if (1..=48).contains(&frac_bits) {
            Ok(FixedPoint { frac_bits })
        } else {
            Err(SecAggError::FracBits)
        }
    }

    /// Fractional bits.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// Largest magnitude one party's value may have when `parties` values
    /// are summed (the sum must not wrap).
    pub fn bound(&self, parties: u64) -> f64 {
        2f64.powi(63 - self.frac_bits as i32) / parties.max(1) as f64
    }

    /// Round each value to the grid (ties away from zero).
    pub fn encode(&self, values: &[f64], parties: u64) -> Result<Vec<u64>, SecAggError> {
        let bound = self.bound(parties);
        let scale = 2f64.powi(self.frac_bits as i32);
        values
            .iter()
            .enumerate()
            .map(|(index, &v)| {
                if !v.is_finite() {
                    return Err(SecAggError::NonFinite { index });
                }
                if v.abs() >= bound {
                    return Err(SecAggError::OutOfRange {
                        index,
                        bound: format!("{bound:e}"),
                    });
                }
                Ok((v * scale).round() as i64 as u64)
            })
            .collect()
    }

    /// Read sums back as doubles.
    pub fn decode(&self, sums: &[u64]) -> Vec<f64> {
        let scale = 2f64.powi(-(self.frac_bits as i32));
        sums.iter().map(|&s| s as i64 as f64 * scale).collect()
    }
}

/// `acc += x` modulo 2⁶⁴, element-wise.
pub fn add_into(acc: &mut [u64], x: &[u64]) {
    acc.iter_mut()
        .zip(x)
        .for_each(|(a, b)| *a = a.wrapping_add(*b));
}

/// `acc -= x` modulo 2⁶⁴, element-wise.
pub fn sub_from(acc: &mut [u64], x: &[u64]) {
    acc.iter_mut()
        .zip(x)
        .for_each(|(a, b)| *a = a.wrapping_sub(*b));
}

/// The ChaCha20 stream of `seed` as `len` words modulo 2⁶⁴.
pub fn mask_stream(seed: &[u8; 32], len: usize) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    (0..len).map(|_| rng.next_u64()).collect()
}

/// Mask `input` as site `me` (1-based index): add the self-mask stream of
/// `self_seed`, then for each `(other, pair_seed)` add its stream if
/// `me < other` and subtract it if `me > other`. Summed over sites whose
/// pairs are all present, the pair streams cancel.
pub fn apply_masks(input: &mut [u64], me: u32, self_seed: &[u8; 32], pairs: &[(u32, [u8; 32])]) {
    add_into(input, &mask_stream(self_seed, input.len()));
    for (other, seed) in pairs {
        let stream = mask_stream(seed, input.len());
        if me < *other {
            add_into(input, &stream);
        } else {
            sub_from(input, &stream);
        }
    }
}

/// Remove from an aggregate the pair stream between a survivor
/// `survivor` and a dropped site `dropped`: the survivor's masked input
/// carried `+stream` if `survivor < dropped`, else `−stream`.
pub fn remove_pair_mask(sum: &mut [u64], survivor: u32, dropped: u32, seed: &[u8; 32]) {
    let stream = mask_stream(seed, sum.len());
    if survivor < dropped {
        sub_from(sum, &stream);
    } else {
        add_into(sum, &stream);
    }
}

/// Remove a self-mask stream from an aggregate.
pub fn remove_self_mask(sum: &mut [u64], seed: &[u8; 32]) {
    sub_from(sum, &mask_stream(seed, sum.len()));
}

/// All of one site's secrets for one task, derived from a 32-byte seed with
/// HKDF-SHA256 (so the store keeps 32 bytes, wrapped). Wiped on drop.
pub struct SiteSecrets {
    seed: Zeroizing<[u8; 32]>,
    task: Vec<u8>,
}

impl std::fmt::Debug for SiteSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteSecrets").finish_non_exhaustive()
    }
}

impl SiteSecrets {
    /// Secrets of the task `task` (its id bytes) from `seed`.
    pub fn new(seed: [u8; 32], task: &[u8]) -> Self {
        SiteSecrets {
            seed: Zeroizing::new(seed),
            task: task.to_vec(),
        }
    }

    fn expand(&self, label: &str, round: u32, out: &mut [u8]) {
        let hk = Hkdf::<Sha256>::new(Some(&self.task), self.seed.as_ref());
        let mut info = Vec::with_capacity(64);
        info.extend_from_slice(b"careledger/v1/secagg/");
        info.extend_from_slice(label.as_bytes());
        info.extend_from_slice(&round.to_be_bytes());
        // 64 bytes is far below HKDF-SHA256's 8160-byte limit.
        let _ = hk.expand(&info, out);
    }

    fn scalar(&self, label: &str, round: u32) -> Scalar {
        let mut wide = Zeroizing::new([0u8; 64]);
        self.expand(label, round, wide.as_mut());
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    /// 32 bytes for a deterministic stream (share polynomials, sampling,
    /// noise) under `label` and `round`.
    pub fn stream_seed(&self, label: &str, round: u32) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        self.expand(label, round, out.as_mut());
        out
    }

    /// The channel key (envelopes).
    pub fn channel_secret(&self) -> Scalar {
        self.scalar("channel", 0)
    }

    /// Round `round`'s mask key `s_r`.
    pub fn mask_secret(&self, round: u32) -> Scalar {
        self.scalar("mask", round)
    }

    /// Round `round`'s self-mask key `b_r`.
    pub fn self_secret(&self, round: u32) -> Scalar {
        self.scalar("self", round)
    }
}

/// `s·G`, compressed.
pub fn public_of(secret: &Scalar) -> [u8; 32] {
    (RISTRETTO_BASEPOINT_POINT * secret).compress().to_bytes()
}

fn point(bytes: &[u8; 32], what: &'static str) -> Result<RistrettoPoint, SecAggError> {
    CompressedRistretto(*bytes)
        .decompress()
        .filter(|p| *p != RistrettoPoint::default())
        .ok_or(SecAggError::BadPoint { what })
}

fn scalar(bytes: &[u8; 32]) -> Result<Scalar, SecAggError> {
    Option::from(Scalar::from_canonical_bytes(*bytes)).ok_or(SecAggError::BadScalar)
}

/// `DH(secret, public)`: the compressed point `secret·public`. The identity
/// and non-canonical encodings are refused.
pub fn diffie_hellman(secret: &Scalar, public: &[u8; 32]) -> Result<[u8; 32], SecAggError> {
    Ok((point(public, "public key")? * secret)
        .compress()
        .to_bytes())
}

fn kdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    let _ = hk.expand(info, out.as_mut());
    out
}

/// The pair seed of sites `a` and `b` (1-based; order does not matter) in
/// a round, from their Diffie-Hellman value. `context` names task and round.
pub fn pair_seed(shared: &[u8; 32], context: &[u8], a: u32, b: u32) -> [u8; 32] {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    let mut info = b"careledger/v1/secagg/pair".to_vec();
    info.extend_from_slice(&low.to_be_bytes());
    info.extend_from_slice(&high.to_be_bytes());
    *kdf(shared, context, &info)
}

/// The self-mask seed of `b_r`. `context` names task and round.
pub fn self_seed(b: &Scalar, context: &[u8]) -> [u8; 32] {
    *kdf(b.as_bytes(), context, b"careledger/v1/secagg/self")
}

/// A secret split `t` of `n` with Feldman commitments.
#[derive(Clone, PartialEq, Eq)]
pub struct Dealt {
    /// Share for holder `i + 1` at index `i` (canonical scalars).
    pub shares: Vec<[u8; 32]>,
    /// `t` commitments `a_k·G` to the polynomial's coefficients; the first
    /// is `secret·G`.
    pub commitments: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Dealt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dealt")
            .field("holders", &self.shares.len())
            .field("threshold", &self.commitments.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Dealt {
    fn drop(&mut self) {
        self.shares.iter_mut().for_each(|s| s.zeroize());
    }
}

/// Split `secret` among `holders` (identifiers 1..=holders) so that any
/// `threshold` recover it, with Feldman commitments. The polynomial comes
/// from a ChaCha20 stream of `rng_seed`, so a dealer can recompute its own
/// share later.
pub fn deal(
    secret: &Scalar,
    threshold: usize,
    holders: usize,
    rng_seed: [u8; 32],
) -> Result<Dealt, SecAggError> {
    if threshold < 2 || threshold > holders {
        return Err(SecAggError::Threshold { threshold, holders });
    }
    let mut rng = ChaCha20Rng::from_seed(rng_seed);
    let (shares, verifiers) = feldman::split_secret::<VssShare, VssVerifier>(
        threshold,
        holders,
        &IdentifierPrimeField(*secret),
        None,
        &mut rng,
    )
    .map_err(|e| SecAggError::Combine(e.to_string()))?;
    let commitments =
        <Vec<VssVerifier> as FeldmanVerifierSet<VssShare, VssVerifier>>::verifiers(&verifiers)
            .iter()
            .map(|v| v.0.compress().to_bytes())
            .collect();
    let shares = shares.iter().map(|s| s.value.0.to_bytes()).collect();
    Ok(Dealt {
        shares,
        commitments,
    })
}

/// Whether `share` is holder `holder`'s share of the secret committed to
/// by `commitments` (Feldman: `share·G = Σ_k C_k·holder^k`).
pub fn verify_share(commitments: &[[u8; 32]], holder: u32, share: &[u8; 32]) -> bool {
    let Ok(value) = scalar(share) else {
        return false;
    };
    let mut set: Vec<VssVerifier> = vec![ValueGroup(RISTRETTO_BASEPOINT_POINT)];
    for c in commitments {
        match CompressedRistretto(*c).decompress() {
            Some(p) => set.push(ValueGroup(p)),
            None => return false,
        }
    }
    if set.len() < 2 || holder == 0 {
        return false;
    }
    let share = VssShare {
        identifier: IdentifierPrimeField(Scalar::from(u64::from(holder))),
        value: IdentifierPrimeField(value),
    };
    <Vec<VssVerifier> as FeldmanVerifierSet<VssShare, VssVerifier>>::verify_share(&set, &share)
        .is_ok()
}

/// [`verify_share`] for many holders' shares of one secret at once: one
/// multi-scalar multiplication checks a random linear combination of all the
/// Feldman equations, `(Σ rᵢsᵢ)·G = Σ_k (Σ rᵢhᵢᵏ)·C_k`, with the `rᵢ` a
/// SHA-512 hash of the commitments and every share (so no share can be chosen
/// to cancel another's error). Only when that fails is each share checked on
/// its own, to name the bad ones. The answer per share is exactly
/// [`verify_share`]'s.
pub fn verify_shares(commitments: &[[u8; 32]], shares: &[(u32, [u8; 32])]) -> Vec<bool> {
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use sha2::{Digest, Sha512};
    let mut out = vec![false; shares.len()];
    let points: Option<Vec<RistrettoPoint>> = commitments
        .iter()
        .map(|c| CompressedRistretto(*c).decompress())
        .collect();
    let Some(points) = points.filter(|p| !p.is_empty()) else {
        return out;
    };
    let values: Vec<(usize, Scalar, Scalar)> = shares
        .iter()
        .enumerate()
        .filter(|(_, (holder, _))| *holder != 0)
        .filter_map(|(i, (holder, share))| {
            scalar(share)
                .ok()
                .map(|v| (i, Scalar::from(u64::from(*holder)), v))
        })
        .collect();
    let check = |items: &[(usize, Scalar, Scalar)], weights: &[Scalar]| -> bool {
        let mut coefficients = vec![Scalar::ZERO; points.len() + 1];
        for ((_, holder, value), r) in items.iter().zip(weights) {
            coefficients[0] += r * value;
            let mut power = -r;
            for c in coefficients.iter_mut().skip(1) {
                *c += power;
                power *= holder;
            }
        }
        let bases = std::iter::once(RISTRETTO_BASEPOINT_POINT).chain(points.iter().copied());
        RistrettoPoint::vartime_multiscalar_mul(coefficients.iter(), bases).is_identity()
    };
    let mut hash = Sha512::new();
    hash.update(b"careledger secagg share batch v1");
    for c in commitments {
        hash.update(c);
    }
    for (i, _, _) in &values {
        hash.update(shares[*i].0.to_le_bytes());
        hash.update(shares[*i].1);
    }
    let seed = hash.finalize();
    let weights: Vec<Scalar> = (0..values.len() as u64)
        .map(|k| {
            let wide: [u8; 64] = Sha512::new()
                .chain_update(seed)
                .chain_update(k.to_le_bytes())
                .finalize()
                .into();
            Scalar::from_bytes_mod_order_wide(&wide)
        })
        .collect();
    if check(&values, &weights) {
        for (i, _, _) in &values {
            out[*i] = true;
        }
    } else {
        for item in &values {
            out[item.0] = check(std::slice::from_ref(item), &[Scalar::ONE]);
        }
    }
    out
}

/// Interpolate the secret from `(holder, share)` pairs (at least the
/// threshold, distinct holders).
pub fn combine(shares: &[(u32, [u8; 32])]) -> Result<Scalar, SecAggError> {
    let mut set = Vec::with_capacity(shares.len());
    for (holder, bytes) in shares {
        set.push(VssShare {
            identifier: IdentifierPrimeField(Scalar::from(u64::from(*holder))),
            value: IdentifierPrimeField(scalar(bytes)?),
        });
    }
    let secret = set
        .combine()
        .map_err(|e| SecAggError::Combine(e.to_string()))?;
    Ok(secret.0)
}

/// The envelope key from dealer `dealer` to holder `holder` (1-based), from
/// `DH(own channel secret, other's channel public)`; `context` names the task.
pub fn envelope_key(
    own_channel: &Scalar,
    other_channel_public: &[u8; 32],
    context: &[u8],
    dealer: u32,
    holder: u32,
) -> Result<SecretKey, SecAggError> {
    let shared = Zeroizing::new(diffie_hellman(own_channel, other_channel_public)?);
    let mut info = b"careledger/v1/secagg/envelope".to_vec();
    info.extend_from_slice(&dealer.to_be_bytes());
    info.extend_from_slice(&holder.to_be_bytes());
    Ok(SecretKey::from_bytes(*kdf(shared.as_ref(), context, &info)))
}

/// Whether a 32-byte value is a valid, non-identity ristretto255 point.
pub fn is_point(bytes: &[u8; 32]) -> bool {
    point(bytes, "point").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_round_trip_and_range() {
        let fp = FixedPoint::new(24).unwrap();
        let enc = fp.encode(&[1.5, -2.25, 0.0], 3).unwrap();
        assert_eq!(fp.decode(&enc), vec![1.5, -2.25, 0.0]);
        let bound = fp.bound(3);
        assert!(matches!(
            fp.encode(&[bound], 3),
            Err(SecAggError::OutOfRange { index: 0, .. })
        ));
        assert_eq!(
            fp.encode(&[f64::NAN], 1),
            Err(SecAggError::NonFinite { index: 0 })
        );
        assert_eq!(FixedPoint::new(0), Err(SecAggError::FracBits));
    }

    #[test]
    fn batched_share_checks_agree_with_single_ones() {
        let dealt = deal(&Scalar::from(77u64), 3, 5, [9; 32]).unwrap();
        let mut shares: Vec<(u32, [u8; 32])> = dealt
            .shares
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, *s))
            .collect();
        assert_eq!(verify_shares(&dealt.commitments, &shares), vec![true; 5]);
        shares[1].1[0] ^= 1; // a forged value
        shares[3].0 = 2; // a share claimed by another holder
        shares.push((0, dealt.shares[0])); // holder 0
        shares.push((6, [0xff; 32])); // not a canonical scalar
        let batch = verify_shares(&dealt.commitments, &shares);
        let single: Vec<bool> = shares
            .iter()
            .map(|(h, s)| verify_share(&dealt.commitments, *h, s))
            .collect();
        assert_eq!(batch, single);
        assert_eq!(batch, vec![true, false, true, false, true, false, false]);
        assert_eq!(verify_shares(&[], &shares[..1]), vec![false]);
    }

    #[test]
    fn feldman_shares_verify_and_combine() {
        let secret = Scalar::from(123_456_789u64);
        let dealt = deal(&secret, 3, 5, [1; 32]).unwrap();
        assert_eq!(dealt.commitments[0], public_of(&secret));
        for (i, share) in dealt.shares.iter().enumerate() {
            assert!(verify_share(&dealt.commitments, i as u32 + 1, share));
            assert!(!verify_share(&dealt.commitments, i as u32 + 2, share));
        }
        let mut forged = dealt.shares[1];
        forged[0] ^= 1;
        assert!(!verify_share(&dealt.commitments, 2, &forged));
        let picked = [
            (2, dealt.shares[1]),
            (4, dealt.shares[3]),
            (5, dealt.shares[4]),
        ];
        assert_eq!(combine(&picked).unwrap(), secret);
        // The same seed deals the same polynomial.
        assert_eq!(deal(&secret, 3, 5, [1; 32]).unwrap(), dealt);
        assert!(deal(&secret, 1, 5, [1; 32]).is_err());
        assert!(deal(&secret, 6, 5, [1; 32]).is_err());
    }

    #[test]
    fn diffie_hellman_agrees_and_refuses_identity() {
        let secrets = SiteSecrets::new([3; 32], b"task");
        let other = SiteSecrets::new([4; 32], b"task");
        let (a, b) = (secrets.mask_secret(1), other.mask_secret(1));
        assert_eq!(
            diffie_hellman(&a, &public_of(&b)).unwrap(),
            diffie_hellman(&b, &public_of(&a)).unwrap()
        );
        assert_ne!(secrets.mask_secret(1), secrets.mask_secret(2));
        assert!(diffie_hellman(&a, &[0; 32]).is_err());
    }
}
