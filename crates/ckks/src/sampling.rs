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
        (0..n)
            .map(|_| {
                // Rejection from 2 bits keeps the three values exactly equiprobable.
                loop {
                    let r = self.rng.next_u32() & 3;
                    if r < 3 {
                        return r as i64 - 1;
                    }
                }
            })
            .collect()
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

    /// N samples of a rounded Gaussian of standard deviation 3.2, rejected beyond 6 sigma.
    pub fn gaussian(&mut self, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            // Box-Muller from two 53-bit uniforms in (0, 1].
            let u1 = ((self.rng.next_u64() >> 11) as f64 + 1.0) * (1.0 / 9007199254740992.0);
            let u2 = (self.rng.next_u64() >> 11) as f64 * (1.0 / 9007199254740992.0);
            let r = (-2.0 * u1.ln()).sqrt() * ERROR_STD_DEV;
            let theta = 2.0 * std::f64::consts::PI * u2;
            for z in [r * theta.cos(), r * theta.sin()] {
                let x = z.round() as i64;
                if x.abs() <= ERROR_BOUND && out.len() < n {
                    out.push(x);
                }
            }
        }
        out
    }
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
