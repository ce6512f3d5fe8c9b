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
use std::collections::BTreeMap;
use zeroize::Zeroize;

/// Generates secret, public and evaluation keys from an OS-seeded ChaCha20 CSPRNG.
pub struct KeyGenerator {
    pub(crate) params: CkksParameters,
    pub(crate) sampler: Sampler,
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

    pub(crate) fn check(&self, sk: &SecretKey) -> Result<()> {
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
        let mut s = sk.ntt.prefix(basis.len());
        let mut b = self.error_ntt(&basis);
        let mut as_ = ring.mul(&a, &s, &basis);
        ring.sub_assign(&mut b, &as_, &basis);
        // Both are the secret key in other clothes (a is public).
        as_.zeroize();
        s.zeroize();
        Ok(PublicKey {
            fingerprint: self.params.fingerprint(),
            b,
            a,
            seed,
        })
    }

    /// Key switching key from `s_prime` to `sk` (both NTT over the full basis).
    pub(crate) fn gen_switching_key(&mut self, sk: &SecretKey, s_prime: &Poly) -> SwitchingKey {
        self.gen_switching_key_under(&sk.ntt, s_prime)
    }

    /// Key switching key from `s_prime` to the secret `s` (both NTT over the full basis):
    /// b_j = -a_j s + e_j + P [Q~_j] s'.
    fn gen_switching_key_under(&mut self, s: &Poly, s_prime: &Poly) -> SwitchingKey {
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
        let indexed: Vec<(usize, Poly)> = errors.into_iter().enumerate().collect();
        let pairs: Vec<(Poly, Poly)> = crate::parallel::map_owned(indexed, |(j, mut b)| {
            let a = uniform_from_seed(ring, &seed, j as u64, &basis);
            let mut as_ = ring.mul(&a, s, &basis);
            ring.sub_assign(&mut b, &as_, &basis);
            // a is public: a s would give the secret key away.
            as_.zeroize();
            let group = j * alpha..((j + 1) * alpha).min(num_q);
            for (i, &w) in p_mod_q.iter().enumerate().take(group.end).skip(group.start) {
                let m = ring.modulus(i);
                let ws = m.shoup(w);
                let sp = s_prime.limb(i);
                for (x, &y) in b.limb_mut(i).iter_mut().zip(sp) {
                    *x = m.add(*x, m.mul_shoup(y, w, ws));
                }
            }
            (b, a)
        });
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

    /// Key for the automorphism sigma_g: X -> X^g. It switches s to sigma_g^-1(s), i.e. it
    /// is encrypted under sigma_g^-1(s). The evaluator then key-switches c1 *before* the
    /// automorphism and permutes only the two outputs: sigma_g(u0 + u1 sigma_g^-1(s)) =
    /// sigma_g(u0) + sigma_g(u1) s ~ sigma_g(c1) sigma_g(s). This keeps the digits of a
    /// hoisted decomposition unpermuted (as in Lattigo, Bossuat et al. 2021).
    fn gen_galois_key(&mut self, sk: &SecretKey, g: u64) -> SwitchingKey {
        let params = self.params.clone();
        let ring = params.ring();
        let two_n = 2 * params.n() as u64;
        // The Galois group Z_2N^* has order N, so g^-1 = g^(N-1) mod 2N.
        let mut g_inv = 1u64;
        for _ in 1..params.n() {
            g_inv = g_inv * g % two_n;
        }
        let perm = ring.automorphism_permutation(g_inv);
        let mut s_inv = ring.permute(&sk.ntt, &perm);
        let key = self.gen_switching_key_under(&s_inv, &sk.ntt);
        s_inv.zeroize();
        key
    }
}
