//! Key generation.

use super::public::{
    galois_element_conjugate, galois_element_for_step, GaloisKeys, PublicKey, RelinearizationKey,
    SwitchingKey,
};
use super::secret::SecretKey;
use crate::error::{CkksError, Result};
use crate::params::{CkksParameters, SecretDistribution};
use crate::ring::Poly;
use crate::sampling::{uniform_from_seed, Sampler};
use rayon::prelude::*;
use std::collections::BTreeMap;
use zeroize::Zeroize;

/// Generates secret, public and evaluation keys from an OS-seeded ChaCha20 CSPRNG.
pub struct KeyGenerator {
    params: CkksParameters,
    sampler: Sampler,
}

impl KeyGenerator {
    /// A key generator seeded by the operating system.
    pub fn new(params: &CkksParameters) -> Result<Self> {
        Ok(Self {
            params: params.clone(),
            sampler: Sampler::from_os()?,
        })
    }

    /// Samples a new secret key.
    pub fn gen_secret_key(&mut self) -> SecretKey {
        let n = self.params.n();
        let coeffs = match self.params.secret_distribution() {
            SecretDistribution::UniformTernary => self.sampler.ternary(n),
            SecretDistribution::HammingWeight(h) => self.sampler.hamming_weight(n, h),
        };
        SecretKey::from_coeffs(&self.params, coeffs)
    }

    fn check(&self, sk: &SecretKey) -> Result<()> {
        if sk.fingerprint != self.params.fingerprint() {
            Err(CkksError::FingerprintMismatch)
        } else {
            Ok(())
        }
    }

    /// Samples an error polynomial in NTT form over `basis`.
    fn error_ntt(&mut self, basis: &[usize]) -> Poly {
        let ring = self.params.ring();
        let mut e = self.sampler.gaussian(ring.n());
        let mut p = ring.poly_from_i64(&e, basis);
        e.zeroize();
        ring.ntt_forward(&mut p, basis);
        p
    }

    /// Public key (b, a) = (-a s + e, a) over Q_L.
    pub fn gen_public_key(&mut self, sk: &SecretKey) -> Result<PublicKey> {
        self.check(sk)?;
        let params = self.params.clone();
        let ring = params.ring();
        let basis = params.q_basis(params.max_level());
        let seed = self.sampler.seed();
        let a = uniform_from_seed(ring, &seed, 0, &basis);
        let s = sk.ntt.prefix(basis.len());
        let mut b = self.error_ntt(&basis);
        let mut as_ = ring.mul(&a, &s, &basis);
        ring.sub_assign(&mut b, &as_, &basis);
        as_.zeroize();
        Ok(PublicKey {
            fingerprint: self.params.fingerprint(),
            b,
            a,
            seed,
        })
    }

    /// Key switching key from `s_prime` (NTT over the full basis) to `sk`.
    pub(crate) fn gen_switching_key(&mut self, sk: &SecretKey, s_prime: &Poly) -> SwitchingKey {
        let params = self.params.clone();
        let ring = params.ring();
        let basis = params.full_basis();
        let seed = self.sampler.seed();
        let dnum = params.dnum();
        let alpha = params.alpha();
        let num_q = params.max_level() + 1;
        // P mod q_i for the gadget factor.
        let p_mod_q: Vec<u64> = (0..num_q)
            .map(|i| {
                let m = ring.modulus(i);
                params
                    .p()
                    .iter()
                    .fold(1u64, |acc, &p| m.mul(acc, m.reduce(p)))
            })
            .collect();
        let errors: Vec<Poly> = (0..dnum).map(|_| self.error_ntt(&basis)).collect();
        let pairs: Vec<(Poly, Poly)> = errors
            .into_par_iter()
            .enumerate()
            .map(|(j, mut b)| {
                let a = uniform_from_seed(ring, &seed, j as u64, &basis);
                let as_ = ring.mul(&a, &sk.ntt, &basis);
                ring.sub_assign(&mut b, &as_, &basis);
                for i in j * alpha..((j + 1) * alpha).min(num_q) {
                    let m = ring.modulus(i);
                    let w = p_mod_q[i];
                    let ws = m.shoup(w);
                    let sp = s_prime.limb(i);
                    for (x, &y) in b.limb_mut(i).iter_mut().zip(sp) {
                        *x = m.add(*x, m.mul_shoup(y, w, ws));
                    }
                }
                (b, a)
            })
            .collect();
        let (b, a) = pairs.into_iter().unzip();
        SwitchingKey { b, a, seed }
    }

    /// Relinearisation key (switches s^2 to s).
    pub fn gen_relin_key(&mut self, sk: &SecretKey) -> Result<RelinearizationKey> {
        self.check(sk)?;
        let params = self.params.clone();
        let ring = params.ring();
        let basis = params.full_basis();
        let mut s2 = ring.mul(&sk.ntt, &sk.ntt, &basis);
        let key = self.gen_switching_key(sk, &s2);
        s2.zeroize();
        Ok(RelinearizationKey {
            fingerprint: self.params.fingerprint(),
            key,
        })
    }

    /// Galois keys for left rotations by each of `steps` (negative = right), plus complex
    /// conjugation if `conjugate`. Steps that are multiples of N/2 need no key and are skipped.
    pub fn gen_galois_keys(
        &mut self,
        sk: &SecretKey,
        steps: &[i64],
        conjugate: bool,
    ) -> Result<GaloisKeys> {
        self.check(sk)?;
        let n = self.params.n();
        let mut elements: Vec<u64> = steps
            .iter()
            .map(|&s| galois_element_for_step(s, n))
            .filter(|&g| g != 1)
            .collect();
        if conjugate {
            elements.push(galois_element_conjugate(n));
        }
        elements.sort_unstable();
        elements.dedup();
        let mut keys = BTreeMap::new();
        for g in elements {
            keys.insert(g, self.gen_galois_key(sk, g));
        }
        Ok(GaloisKeys {
            fingerprint: self.params.fingerprint(),
            keys,
        })
    }

    /// Key switching key for the automorphism X -> X^g.
    fn gen_galois_key(&mut self, sk: &SecretKey, g: u64) -> SwitchingKey {
        let params = self.params.clone();
        let ring = params.ring();
        // sigma_g(s) in NTT form is a permutation of s's evaluations. The key switches
        // sigma_g(s) back to s, so that sigma_g applied to a ciphertext under s can be
        // re-encrypted under s.
        let perm = ring.automorphism_permutation(g);
        let mut s_g = ring.permute(&sk.ntt, &perm);
        let key = self.gen_switching_key(sk, &s_g);
        s_g.zeroize();
        key
    }
}
