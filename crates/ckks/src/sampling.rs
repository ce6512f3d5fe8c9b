//! Randomness: an OS-seeded ChaCha20 CSPRNG for secrets and errors, and seeded expansion of
//! uniform polynomials (so that keys and fresh ciphertexts can be stored as a 32-byte seed).

use crate::error::{CkksError, Result};
use crate::params::{ERROR_BOUND, ERROR_STD_DEV};
use crate::ring::{Poly, RingContext};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A 32-byte seed for the uniform part of a key or ciphertext.
pub type Seed = [u8; 32];

/// ChaCha20 seeded from the operating system (getrandom).
pub(crate) struct Sampler {
    rng: ChaCha20Rng,
}

impl Sampler {
    /// A sampler seeded by the OS random source.
    pub fn from_os() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| CkksError::Randomness(e.to_string()))?;
        let rng = ChaCha20Rng::from_seed(seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(Self { rng })
    }

    /// A fresh 32-byte seed.
    pub fn seed(&mut self) -> Seed {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    /// N coefficients uniform in {-1, 0, 1}.
    pub fn ternary(&mut self, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            // 32 two-bit draws per word; rejecting 3 keeps the values exactly equiprobable.
            let mut w = self.rng.next_u64();
            for _ in 0..32 {
                let r = w & 3;
                w >>= 2;
                if r < 3 && out.len() < n {
                    out.push(r as i64 - 1);
                }
            }
        }
        out
    }

    /// N integers from a Gaussian of standard deviation `sigma` (>= 1, < 2^50), rounded:
    /// the wide distribution of noise flooding, where the Rényi-divergence argument of
    /// Li-Micciancio-Schultz-Sorrell (CRYPTO 2022) needs Gaussian, not uniform, noise. For
    /// sigma this large the rounded continuous Gaussian is statistically as close to the
    /// discrete one as f64 sampling allows. Box-Muller on 53-bit uniforms; the logarithm's
    /// argument is never 0, so samples are bounded by sigma * sqrt(2 * 53 ln 2) ~ 8.6 sigma.
    pub fn gaussian_wide(&mut self, n: usize, sigma: f64) -> Vec<i64> {
        let uniform =
            |rng: &mut ChaCha20Rng| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let (u1, u2) = (uniform(&mut self.rng), uniform(&mut self.rng));
            let r = sigma * (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            out.push((r * t.cos()).round() as i64);
            out.push((r * t.sin()).round() as i64);
        }
        out.truncate(n);
        out
    }

    /// N coefficients with exactly h nonzero entries, each +-1 (positions uniform).
    pub fn hamming_weight(&mut self, n: usize, h: usize) -> Vec<i64> {
        let mut out = vec![0i64; n];
        let mut placed = 0;
        while placed < h {
            let i = self.rng.random_range(0..n);
            if out[i] == 0 {
                out[i] = if self.rng.next_u32() & 1 == 0 { 1 } else { -1 };
                placed += 1;
            }
        }
        out
    }

    /// N samples of the discrete Gaussian of parameter sigma = 3.2 restricted to
    /// |x| <= 6 sigma, by inversion of a 64-bit cumulative table of |x| plus a sign bit.
    pub fn gaussian(&mut self, n: usize) -> Vec<i64> {
        let table = gaussian_cdt();
        let mut out = Vec::with_capacity(n);
        let mut signs = 0u64;
        for i in 0..n {
            if i % 64 == 0 {
                signs = self.rng.next_u64();
            }
            let r = self.rng.next_u64();
            // Constant time: every entry is compared and counted, with no
            // early exit and no branch on the sample, so the time taken says
            // nothing of the error's magnitude or sign.
            let below = table.iter().map(|&t| u64::from(r >= t)).sum::<u64>();
            let mag = below.min(table.len() as u64 - 1) as i64;
            let neg = ((signs >> (i % 64)) & 1) as i64;
            out.push((mag ^ -neg) + neg);
        }
        out
    }
}

/// Cumulative distribution of |x| for the discrete Gaussian exp(-x^2 / (2 sigma^2)) on
/// |x| <= ERROR_BOUND, scaled to 2^64 (the sign is drawn separately, so |x| = 0 gets half
/// the weight of each nonzero magnitude's two signs combined).
fn gaussian_cdt() -> &'static [u64] {
    static TABLE: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let weights: Vec<f64> = (0..=ERROR_BOUND)
            .map(|x| {
                let w = (-((x * x) as f64) / (2.0 * ERROR_STD_DEV * ERROR_STD_DEV)).exp();
                if x == 0 {
                    w
                } else {
                    2.0 * w
                }
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut table: Vec<u64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                (acc * 18446744073709551616.0).min(u64::MAX as f64) as u64
            })
            .collect();
        if let Some(last) = table.last_mut() {
            *last = u64::MAX;
        }
        table
    })
}

/// Expands `seed` (stream `stream`) into a uniform polynomial over `basis`, read as NTT
/// evaluations (uniform in one domain is uniform in the other, so no transform is needed).
/// Deterministic: the same seed and stream always give the same polynomial.
pub(crate) fn uniform_from_seed(
    ctx: &RingContext,
    seed: &Seed,
    stream: u64,
    basis: &[usize],
) -> Poly {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    rng.set_stream(stream);
    let n = ctx.n();
    let mut p = Poly::zero(n, basis.len());
    for (j, &idx) in basis.iter().enumerate() {
        let m = ctx.modulus(idx);
        let q = m.value();
        let mask = (1u64 << m.bits()) - 1;
        for x in p.limb_mut(j).iter_mut() {
            *x = loop {
                let r = rng.next_u64() & mask;
                if r < q {
                    break r;
                }
            };
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_has_the_right_moments_and_bound() {
        let mut s = Sampler::from_os().unwrap();
        let v = s.gaussian(1 << 16);
        let n = v.len() as f64;
        let mean = v.iter().sum::<i64>() as f64 / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert!(
            (var.sqrt() - ERROR_STD_DEV).abs() < 0.1,
            "std {}",
            var.sqrt()
        );
        assert!(v.iter().all(|x| x.abs() <= ERROR_BOUND));
        assert!(v.iter().any(|&x| x < -6) && v.iter().any(|&x| x > 6));
    }

    #[test]
    fn wide_gaussian_has_the_right_moments() {
        let mut s = Sampler::from_os().unwrap();
        let sigma = 2f64.powi(30);
        let v = s.gaussian_wide((1 << 16) + 1, sigma);
        assert_eq!(v.len(), (1 << 16) + 1);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let std = (v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.02 * sigma, "mean {mean}");
        assert!((std / sigma - 1.0).abs() < 0.02, "std {std}");
        assert!(v.iter().all(|x| (x.abs() as f64) < 9.0 * sigma));
    }

    #[test]
    fn ternary_is_balanced() {
        let mut s = Sampler::from_os().unwrap();
        let v = s.ternary(30_000);
        for t in -1..=1 {
            let c = v.iter().filter(|&&x| x == t).count();
            assert!((9_000..11_000).contains(&c), "{t}: {c}");
        }
        let h = s.hamming_weight(1024, 64);
        assert_eq!(h.iter().filter(|&&x| x != 0).count(), 64);
    }

    #[test]
    fn seeded_expansion_is_deterministic() {
        let ctx = RingContext::new(
            64,
            &[crate::ring::primes::generate_primes(40, 1, 64, &[]).unwrap()[0]],
        )
        .unwrap();
        let a = uniform_from_seed(&ctx, &[7u8; 32], 3, &[0]);
        assert_eq!(a, uniform_from_seed(&ctx, &[7u8; 32], 3, &[0]));
        assert_ne!(a, uniform_from_seed(&ctx, &[7u8; 32], 4, &[0]));
        assert!(a.limb(0).iter().all(|&x| x < ctx.modulus(0).value()));
    }
}
