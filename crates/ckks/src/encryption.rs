//! Encryption (public or secret key) and decryption.

use crate::error::{CkksError, Result};
use crate::keys::{PublicKey, SecretKey};
use crate::params::CkksParameters;
use crate::plaintext::{Ciphertext, Plaintext};
use crate::ring::Poly;
use crate::sampling::{uniform_from_seed, Sampler};
use std::sync::Mutex;
use zeroize::Zeroize;

/// Encrypts plaintexts under a public key.
pub struct Encryptor {
    params: CkksParameters,
    pk: PublicKey,
    sampler: Mutex<Sampler>,
}

impl Encryptor {
    /// An encryptor for `pk` with its own OS-seeded CSPRNG.
    pub fn new(params: &CkksParameters, pk: &PublicKey) -> Result<Self> {
        if pk.fingerprint != params.fingerprint() {
            return Err(CkksError::FingerprintMismatch);
        }
        Ok(Self {
            params: params.clone(),
            pk: pk.clone(),
            sampler: Mutex::new(Sampler::from_os()?),
        })
    }

    /// (c0, c1) = (u b + e0 + m, u a + e1) with u ternary, e0, e1 Gaussian
    /// (Cheon-Kim-Kim-Song 2017, Sec. 3.4).
    pub fn encrypt(&self, pt: &Plaintext) -> Result<Ciphertext> {
        let level = pt.level();
        self.params.check_level(level)?;
        let ring = self.params.ring();
        let n = ring.n();
        let basis = self.params.q_basis(level);
        let (mut u, e0, e1) = {
            let mut s = self
                .sampler
                .lock()
                .map_err(|_| CkksError::Randomness("sampler lock poisoned".into()))?;
            (s.ternary(n), s.gaussian(n), s.gaussian(n))
        };
        let mut polys = [
            ring.poly_from_i64(&u, &basis),
            ring.poly_from_i64(&e0, &basis),
            ring.poly_from_i64(&e1, &basis),
        ];
        u.zeroize();
        // The three transforms are independent: one parallel batch.
        if crate::parallel::enabled() {
            rayon::scope(|sc| {
                for p in polys.iter_mut() {
                    let b = &basis;
                    sc.spawn(move |_| ring.ntt_forward(p, b));
                }
            });
        } else {
            for p in polys.iter_mut() {
                ring.ntt_forward(p, &basis);
            }
        }
        let [mut u_ntt, e0_ntt, e1_ntt] = polys;
        // The public key lives at the top level; limb-wise products read its first limbs.
        let mut c0 = e0_ntt;
        ring.mul_acc(&mut c0, &u_ntt, &self.pk.b, &basis);
        ring.add_assign(&mut c0, pt.poly(), &basis);
        let mut c1 = e1_ntt;
        ring.mul_acc(&mut c1, &u_ntt, &self.pk.a, &basis);
        u_ntt.zeroize();
        Ok(Ciphertext {
            parts: vec![c0, c1],
            level,
            scale: pt.scale(),
            seed: None,
        })
    }
}

/// The Gaussian noise [`Encryptor::rerandomise`] floods a ciphertext's `c0` with:
/// deviation `sigma` on the coefficients at multiples of `stride`, `off_stride_sigma` on
/// the others. The flooding must be as large as the noise it hides coefficient by
/// coefficient (Li-Micciancio-Schultz-Sorrell, CRYPTO 2022, bound each coordinate), and a
/// computation's noise need not be spread evenly: outputs whose slots repeat with period
/// `P` were summed over rotations by `P` (a trace), which concentrates their noise on the
/// subring `Z[X^(N/2P)]`, the coefficients at multiples of `N/2P`. Flooding those at their
/// own size and the rest at theirs costs far less precision per slot than flooding all
/// `N` at the largest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flooding {
    /// Deviation on the coefficients at multiples of `stride`.
    pub sigma: f64,
    /// A power of two dividing N (1: every coefficient gets `sigma`).
    pub stride: usize,
    /// Deviation on the other coefficients.
    pub off_stride_sigma: f64,
}

impl Flooding {
    /// No flooding: a re-randomisation only.
    pub const NONE: Self = Self::uniform(0.0);

    /// The same deviation on every coefficient.
    pub const fn uniform(sigma: f64) -> Self {
        Self {
            sigma,
            stride: 1,
            off_stride_sigma: sigma,
        }
    }

    /// Refuses deviations outside [0, 2^50] and a stride that is not a power of two
    /// dividing `n`.
    fn check(&self, n: usize) -> Result<()> {
        for sigma in [self.sigma, self.off_stride_sigma] {
            if !(sigma.is_finite() && (0.0..=2f64.powi(50)).contains(&sigma)) {
                return Err(CkksError::InvalidParameters(format!(
                    "flooding noise of standard deviation {sigma:e} is outside [0, 2^50]"
                )));
            }
        }
        if !self.stride.is_power_of_two() || self.stride > n {
            return Err(CkksError::InvalidParameters(format!(
                "flooding stride {} is not a power of two at most N = {n}",
                self.stride
            )));
        }
        Ok(())
    }

    /// The `n` flooding coefficients, each drawn at its class's deviation.
    fn sample(&self, sampler: &mut Sampler, n: usize) -> Vec<i64> {
        let on = sampler.gaussian_wide(n / self.stride, self.sigma);
        if self.stride == 1 {
            return on;
        }
        let mut off = sampler
            .gaussian_wide(n - n / self.stride, self.off_stride_sigma)
            .into_iter();
        let mut on = on.into_iter();
        (0..n)
            .map(|i| {
                let class = if i % self.stride == 0 {
                    &mut on
                } else {
                    &mut off
                };
                class
                    .next()
                    .expect("one sample per coefficient of its class")
            })
            .collect()
    }
}

impl Encryptor {
    /// Re-randomises a ciphertext before it leaves the evaluator (noise flooding): adds a
    /// fresh public-key encryption of zero whose c0 error is Gaussian as `flooding` says,
    /// so that neither the randomness of c1 nor, for a flooding well above the
    /// ciphertext's own noise, the noise of the result depends on the computation that
    /// produced it. Sizing: Li-Micciancio-Schultz-Sorrell (CRYPTO 2022) show that
    /// sigma = sqrt(24 N a) 2^(s/2) B hides noise bounded by B for a decryptions with s bits
    /// of statistical security. The message and scale are unchanged; the result decrypts with
    /// about sqrt(sum of the coefficients' sigma^2 / 2) / scale more error per slot.
    pub fn rerandomise(&self, ct: &Ciphertext, flooding: &Flooding) -> Result<Ciphertext> {
        if ct.degree() != 1 {
            return Err(CkksError::InvalidDegree(ct.degree()));
        }
        flooding.check(self.params.n())?;
        let level = ct.level;
        self.params.check_level(level)?;
        let ring = self.params.ring();
        let n = ring.n();
        let basis = self.params.q_basis(level);
        let (mut u, flood, e1) = {
            let mut s = self
                .sampler
                .lock()
                .map_err(|_| CkksError::Randomness("sampler lock poisoned".into()))?;
            (s.ternary(n), flooding.sample(&mut s, n), s.gaussian(n))
        };
        let mut polys = [
            ring.poly_from_i64(&u, &basis),
            ring.poly_from_i64(&flood, &basis),
            ring.poly_from_i64(&e1, &basis),
        ];
        u.zeroize();
        for p in polys.iter_mut() {
            ring.ntt_forward(p, &basis);
        }
        let [mut u_ntt, mut c0, mut c1] = polys;
        ring.mul_acc(&mut c0, &u_ntt, &self.pk.b, &basis);
        ring.mul_acc(&mut c1, &u_ntt, &self.pk.a, &basis);
        u_ntt.zeroize();
        ring.add_assign(&mut c0, &ct.parts[0], &basis);
        ring.add_assign(&mut c1, &ct.parts[1], &basis);
        Ok(Ciphertext {
            parts: vec![c0, c1],
            level,
            scale: ct.scale,
            seed: None,
        })
    }
}

/// Encrypts with and decrypts under the secret key.
pub struct Decryptor {
    params: CkksParameters,
    sk: SecretKey,
    sampler: Mutex<Sampler>,
}

impl Decryptor {
    /// A decryptor (and secret-key encryptor) holding a copy of the secret key.
    pub fn new(params: &CkksParameters, sk: &SecretKey) -> Result<Self> {
        if sk.fingerprint != params.fingerprint() {
            return Err(CkksError::FingerprintMismatch);
        }
        Ok(Self {
            params: params.clone(),
            sk: SecretKey {
                fingerprint: sk.fingerprint,
                coeffs: sk.coeffs.clone(),
                ntt: sk.ntt.clone(),
            },
            sampler: Mutex::new(Sampler::from_os()?),
        })
    }

    /// Secret-key encryption (c0, c1) = (-a s + e + m, a) with a = uniform(seed): the
    /// ciphertext keeps the seed, so its serialised seeded form is half the size.
    pub fn encrypt_symmetric(&self, pt: &Plaintext) -> Result<Ciphertext> {
        let level = pt.level();
        self.params.check_level(level)?;
        let ring = self.params.ring();
        let basis = self.params.q_basis(level);
        let (seed, e) = {
            let mut s = self
                .sampler
                .lock()
                .map_err(|_| CkksError::Randomness("sampler lock poisoned".into()))?;
            (s.seed(), s.gaussian(ring.n()))
        };
        let a = uniform_from_seed(ring, &seed, 0, &basis);
        let mut c0 = ring.poly_from_i64(&e, &basis);
        ring.ntt_forward(&mut c0, &basis);
        let mut s = self.sk.ntt.prefix(basis.len());
        let mut as_ = ring.mul(&a, &s, &basis);
        s.zeroize();
        ring.sub_assign(&mut c0, &as_, &basis);
        as_.zeroize();
        ring.add_assign(&mut c0, pt.poly(), &basis);
        Ok(Ciphertext {
            parts: vec![c0, a],
            level,
            scale: pt.scale(),
            seed: Some(seed),
        })
    }

    /// m = c0 + c1 s (+ c2 s^2).
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        let level = ct.level;
        self.params.check_level(level)?;
        let ring = self.params.ring();
        let basis = self.params.q_basis(level);
        let mut s = self.sk.ntt.prefix(basis.len());
        let mut m: Poly = ct.parts[0].clone();
        let mut s_pow = s.clone();
        for (i, c) in ct.parts.iter().enumerate().skip(1) {
            if i > 1 {
                let next = ring.mul(&s_pow, &s, &basis);
                std::mem::replace(&mut s_pow, next).zeroize();
            }
            ring.mul_acc(&mut m, c, &s_pow, &basis);
        }
        s_pow.zeroize();
        s.zeroize();
        Ok(Plaintext::new(m, level, ct.scale))
    }
}
