//! AEAD: careledger's [`seal`] / [`open`] (XChaCha20-Poly1305: HChaCha20 from
//! RustCrypto `chacha20`, ChaCha20-Poly1305 from `ring`) against
//! `openssl speed -evp chacha20-poly1305`, run by this bench in the same run,
//! interleaved, at 1 KiB and 16 KiB. For reference it also times RustCrypto's
//! `chacha20poly1305` 0.11 `XChaCha20Poly1305` (the previous backend) and
//! OpenSSL restricted to AVX2 (`OPENSSL_ia32cap=:~0x10000` masks AVX-512F),
//! the widest instructions the Rust-side code uses.
//!
//! Both sides are measured the way `openssl speed` measures: run for about a
//! second, divide the bytes processed by the CPU time the process (here: the
//! thread) was given, so load from other processes on a shared machine does
//! not skew the rate. Each case is the median of [`ROUNDS`] rounds.
//!
//! Peers: `openssl speed -evp` streams one long encryption (no per-message
//! nonce, tag or allocation), the figure the goal is set against;
//! `openssl speed -aead -evp` is the per-message TLS-like sequence (nonce,
//! 13-byte AAD, update, tag), the like-for-like comparison with [`seal`],
//! which also derives the XChaCha subkey and allocates its output per message.
//!
//! Without `openssl` on the PATH the bench prints SKIPPED.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use careledger::keys::{open, seal, SecretKey};

mod common;
use common::{ratio_row, thread_cpu_time, Goal};

const ROUNDS: usize = 3;
/// The AAD `openssl speed -aead` uses (a TLS record header).
const AAD_LEN: usize = 13;
const SIZES: [(usize, &str, f64); 2] = [(1_024, "1 KiB", 0.5), (16_384, "16 KiB", 0.9)];

/// Bytes per second of CPU time `op` sustains on `size`-byte messages.
fn our_rate(size: usize, op: &mut dyn FnMut()) -> f64 {
    let cpu = thread_cpu_time;
    let started = Instant::now();
    let cpu_start = cpu();
    let mut messages = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..64 {
            op();
        }
        messages += 64;
    }
    let spent = match (cpu_start, cpu()) {
        (Some(a), Some(b)) => b - a,
        _ => started.elapsed(),
    };
    messages as f64 * size as f64 / spent.as_secs_f64()
}

/// `openssl speed` for one size: bytes per second (of its user CPU time).
fn openssl_rate(size: usize, extra: &[&str]) -> Option<f64> {
    openssl_rate_with(size, extra, None)
}

fn openssl_rate_with(size: usize, extra: &[&str], ia32cap: Option<&str>) -> Option<f64> {
    let mut command = Command::new("openssl");
    if let Some(cap) = ia32cap {
        command.env("OPENSSL_ia32cap", cap);
    }
    let output = command
        .arg("speed")
        .args(["-mr", "-seconds", "1", "-bytes", &size.to_string()])
        .args(extra)
        .args(["-evp", "chacha20-poly1305"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // `+F:<n>:ChaCha20-Poly1305:<bytes per second>`
    text.lines()
        .find(|l| l.starts_with("+F:"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
}

fn openssl_version() -> Option<String> {
    let output = Command::new("openssl").arg("version").output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn gbps(rate: f64) -> String {
    format!("{:.2} GB/s", rate / 1e9)
}

#[allow(unexpected_cfgs)]
fn backend() -> String {
    let avx2 = std::is_x86_feature_detected!("avx2");
    let avx512 =
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl");
    format!(
        "CPU: AVX2 {avx2}, AVX-512F/VL {avx512}. careledger: ring 0.17 ChaCha20-Poly1305 \
         (BoringSSL assembly, stitched AVX2 seal/open when the CPU has AVX2; no AVX-512 code). \
         Reference RustCrypto chacha20poly1305 0.11: chacha20 0.10 picks its backend at run time \
         (AVX2, else SSE2; AVX-512 only if built with --cfg chacha20_avx512: {}), poly1305 0.9 \
         picks AVX2 at run time (no AVX-512 backend); here ChaCha20 {}, Poly1305 {}. \
         OpenSSL picks AVX-512 when the CPU has it",
        cfg!(chacha20_avx512),
        if cfg!(chacha20_avx512) && avx512 {
            "AVX-512"
        } else if avx2 {
            "AVX2"
        } else {
            "SSE2"
        },
        if avx2 { "AVX2" } else { "portable" },
    )
}

/// RustCrypto's XChaCha20-Poly1305, as `seal` did before (allocating its output).
fn rustcrypto_seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    chacha20poly1305::XChaCha20Poly1305::new(key.into())
        .encrypt(
            &[9u8; 24].into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("seal")
}

/// AVX-512F masked off for OpenSSL (CPUID leaf 7 EBX bit 16).
const NO_AVX512: &str = ":~0x10000";

fn main() {
    let Some(version) = openssl_version() else {
        println!("SKIPPED: openssl is not on the PATH");
        return;
    };
    println!("{version}; {}", backend());
    let key = SecretKey::from_bytes([7; 32]);
    let aad = [0x17u8; AAD_LEN];
    for (size, label, goal) in SIZES {
        let plaintext = vec![0x5Au8; size];
        let sealed = seal(&key, &aad, &plaintext, [9; 24]).expect("seal");
        let (mut seal_r, mut open_r, mut ssl_enc, mut ssl_dec, mut ssl_aead) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut rustcrypto, mut ssl_avx2) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            rustcrypto.push(our_rate(size, &mut || {
                black_box(rustcrypto_seal(&[7; 32], &aad, black_box(&plaintext)));
            }));
            ssl_avx2
                .push(openssl_rate_with(size, &[], Some(NO_AVX512)).expect("openssl speed output"));
            seal_r.push(our_rate(size, &mut || {
                black_box(seal(&key, &aad, black_box(&plaintext), [9; 24]).expect("seal"));
            }));
            ssl_enc.push(openssl_rate(size, &[]).expect("openssl speed output"));
            open_r.push(our_rate(size, &mut || {
                black_box(open(&key, &aad, black_box(&sealed)).expect("open"));
            }));
            ssl_dec.push(openssl_rate(size, &["-decrypt"]).expect("openssl speed output"));
            ssl_aead.push(openssl_rate(size, &["-aead"]).expect("openssl speed output"));
        }
        let m = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (seal_r, open_r, ssl_enc, ssl_dec, ssl_aead) =
            (m(seal_r), m(open_r), m(ssl_enc), m(ssl_dec), m(ssl_aead));
        let (rustcrypto, ssl_avx2) = (m(rustcrypto), m(ssl_avx2));
        println!(
            "AEAD {label} (median of {ROUNDS}, per CPU second): careledger seal {} open {}; \
             openssl -evp encrypt {} decrypt {}; openssl -aead -evp {}; \
             openssl -evp without AVX-512 {}; RustCrypto XChaCha20Poly1305 seal {}",
            gbps(seal_r),
            gbps(open_r),
            gbps(ssl_enc),
            gbps(ssl_dec),
            gbps(ssl_aead),
            gbps(ssl_avx2),
            gbps(rustcrypto),
        );
        ratio_row(
            "aead",
            &format!("seal {label} vs `openssl speed -evp chacha20-poly1305`"),
            &gbps(seal_r),
            &gbps(ssl_enc),
            seal_r / ssl_enc,
            Goal::AtLeast(goal),
        );
        ratio_row(
            "aead",
            &format!("open {label} vs `openssl speed -decrypt -evp chacha20-poly1305`"),
            &gbps(open_r),
            &gbps(ssl_dec),
            open_r / ssl_dec,
            Goal::AtLeast(goal),
        );
        ratio_row(
            "aead",
            &format!("seal {label} vs `openssl speed -aead -evp chacha20-poly1305` (per message)"),
            &gbps(seal_r),
            &gbps(ssl_aead),
            seal_r / ssl_aead,
            Goal::None,
        );
        ratio_row(
            "aead",
            &format!("seal {label} vs `openssl speed -evp chacha20-poly1305` limited to AVX2"),
            &gbps(seal_r),
            &gbps(ssl_avx2),
            seal_r / ssl_avx2,
            Goal::None,
        );
        ratio_row(
            "aead",
            &format!(
                "RustCrypto chacha20poly1305 0.11 (the previous backend) seal {label} vs `openssl speed -evp`"
            ),
            &gbps(rustcrypto),
            &gbps(ssl_enc),
            rustcrypto / ssl_enc,
            Goal::None,
        );
    }
}
