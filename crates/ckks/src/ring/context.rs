//! The ring `Z_Q[X]/(X^N+1)` over a list of NTT-friendly primes: NTT plans (tfhe-ntt),
//! limb-wise arithmetic and automorphisms in the NTT domain.

use super::kernels;
use super::modular::Modulus;
use super::poly::Poly;
use crate::error::{CkksError, Result};
use rayon::prelude::*;
use tfhe_ntt::prime64::Plan;

thread_local! {
    /// Per-thread buffer for constant vectors fed to tfhe-ntt's vectorised kernels.
    static SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Below this degree the per-limb work is too small for rayon to pay off.
const PARALLEL_MIN_N: usize = 1 << 12;

/// Moduli, NTT plans and the NTT index permutation shared by everything built on one
/// parameter set. Moduli are addressed by index: the caller passes the list of modulus
/// indices (the "basis") a polynomial's limbs are taken modulo.
pub struct RingContext {
    n: usize,
    log_n: u32,
    moduli: Vec<Modulus>,
    plans: Vec<Plan>,
    /// For each NTT output index, the odd exponent e such that the slot holds a(psi^e).
    ntt_exponent: Vec<u32>,
    /// Inverse of `ntt_exponent`: for an odd exponent e (indexed by (e-1)/2), its NTT index.
    ntt_index_of_exponent: Vec<u32>,
}

impl std::fmt::Debug for RingContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingContext")
            .field("n", &self.n)
            .field(
                "moduli",
                &self.moduli.iter().map(|m| m.value()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Runs `f(limb_index, limb)` over the limbs of `data`, in parallel for large N.
pub(crate) fn for_each_limb<F>(data: &mut [u64], n: usize, f: F)
where
    F: Fn(usize, &mut [u64]) + Sync + Send,
{
    if n >= PARALLEL_MIN_N && data.len() > n && crate::parallel::enabled() {
        data.par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, l)| f(i, l));
    } else {
        data.chunks_mut(n).enumerate().for_each(|(i, l)| f(i, l));
    }
}

impl RingContext {
    /// Builds NTT plans for every modulus. Fails if a modulus is not an NTT prime for N.
    pub fn new(n: usize, moduli: &[u64]) -> Result<Self> {
        if !n.is_power_of_two() || n < 16 {
            return Err(CkksError::InvalidParameters(format!(
                "ring degree {n} is not a power of two >= 16"
            )));
        }
        let mut plans = Vec::with_capacity(moduli.len());
        for &q in moduli {
            let plan = Plan::try_new(n, q).ok_or_else(|| {
                CkksError::InvalidParameters(format!(
                    "{q} is not an NTT-friendly prime for N = {n}"
                ))
            })?;
            plans.push(plan);
        }
        let moduli: Vec<Modulus> = moduli.iter().map(|&q| Modulus::new(q)).collect();
        let mut ntt_exponent: Option<Vec<u32>> = None;
        // tfhe-ntt returns evaluations in bit-reversed order at powers of its own root;
        // we recover, per prime, which odd power of a primitive 2N-th root each output index
        // holds. Relative to the root found at index 0 the pattern must be the same for every
        // prime; we check that so that a single permutation table serves all limbs.
        for (m, plan) in moduli.iter().zip(&plans) {
            let exps = ntt_exponents(n, m, plan)?;
            match &ntt_exponent {
                None => ntt_exponent = Some(exps),
                Some(e) if *e == exps => {}
                Some(_) => {
                    return Err(CkksError::InvalidParameters(
                        "NTT evaluation order differs between primes".into(),
                    ))
                }
            }
        }
        let ntt_exponent = ntt_exponent.unwrap_or_default();
        let mut ntt_index_of_exponent = vec![0u32; n];
        for (i, &e) in ntt_exponent.iter().enumerate() {
            ntt_index_of_exponent[(e as usize - 1) / 2] = i as u32;
        }
        Ok(Self {
            n,
            log_n: n.trailing_zeros(),
            moduli,
            plans,
            ntt_exponent,
            ntt_index_of_exponent,
        })
    }

    /// Ring degree N.
    #[inline]
    pub fn n(&self) -> usize {
        self.n
    }

    /// log2(N).
    #[inline]
    pub fn log_n(&self) -> u32 {
        self.log_n
    }

    /// Modulus number `i`.
    #[inline]
    pub fn modulus(&self, i: usize) -> &Modulus {
        &self.moduli[i]
    }

    /// All moduli.
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// Forward negacyclic NTT of every limb (limb j modulo `basis[j]`).
    pub fn ntt_forward(&self, p: &mut Poly, basis: &[usize]) {
        debug_assert_eq!(p.num_limbs(), basis.len());
        for_each_limb(p.data_mut(), self.n, |j, limb| {
            self.plans[basis[j]].fwd(limb)
        });
    }

    /// Inverse negacyclic NTT of every limb, including the 1/N normalisation.
    pub fn ntt_inverse(&self, p: &mut Poly, basis: &[usize]) {
        debug_assert_eq!(p.num_limbs(), basis.len());
        for_each_limb(p.data_mut(), self.n, |j, limb| {
            let plan = &self.plans[basis[j]];
            plan.inv(limb);
            plan.normalize(limb);
        });
    }

    /// Whether tfhe-ntt runs its AVX-512 IFMA kernels for modulus `idx` on this CPU.
    #[inline]
    pub fn uses_ifma(&self, idx: usize) -> bool {
        self.plans[idx].use_ifma()
    }

    /// Forward NTT of one limb modulo modulus `idx`.
    #[inline]
    pub fn ntt_forward_limb(&self, limb: &mut [u64], idx: usize) {
        self.plans[idx].fwd(limb);
    }

    /// Inverse NTT (normalised) of one limb modulo modulus `idx`.
    #[inline]
    pub fn ntt_inverse_limb(&self, limb: &mut [u64], idx: usize) {
        let plan = &self.plans[idx];
        plan.inv(limb);
        plan.normalize(limb);
    }

    /// a += b, limb-wise (b may have more limbs than a).
    pub fn add_assign(&self, a: &mut Poly, b: &Poly, basis: &[usize]) {
        for_each_limb(a.data_mut(), self.n, |j, limb| {
            kernels::add_mod(limb, b.limb(j), self.moduli[basis[j]].value());
        });
    }

    /// a -= b, limb-wise (b may have more limbs than a).
    pub fn sub_assign(&self, a: &mut Poly, b: &Poly, basis: &[usize]) {
        for_each_limb(a.data_mut(), self.n, |j, limb| {
            kernels::sub_mod(limb, b.limb(j), self.moduli[basis[j]].value());
        });
    }

    /// a = -a, limb-wise.
    pub fn neg_assign(&self, a: &mut Poly, basis: &[usize]) {
        for_each_limb(a.data_mut(), self.n, |j, limb| {
            kernels::neg_mod(limb, self.moduli[basis[j]].value());
        });
    }

    /// acc += a * b (NTT domain, point-wise), using tfhe-ntt's IFMA kernel where available.
    pub fn mul_acc(&self, acc: &mut Poly, a: &Poly, b: &Poly, basis: &[usize]) {
        self.mul_acc_data(acc, a.data(), b.data(), basis);
    }

    /// acc += a * b where a and b are limb-major residue slices with at least as many limbs
    /// as `basis` (lets callers use a prefix of a higher-level operand without copying).
    pub fn mul_acc_data(&self, acc: &mut Poly, a: &[u64], b: &[u64], basis: &[usize]) {
        let n = self.n;
        for_each_limb(acc.data_mut(), n, |j, limb| {
            self.plans[basis[j]].mul_accumulate(
                limb,
                &a[j * n..(j + 1) * n],
                &b[j * n..(j + 1) * n],
            );
        });
    }

    /// acc += a * b on single limbs modulo modulus `idx`.
    #[inline]
    pub fn mul_acc_limb(&self, idx: usize, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.plans[idx].mul_accumulate(acc, a, b);
    }

    /// Returns a * b (NTT domain, point-wise).
    pub fn mul(&self, a: &Poly, b: &Poly, basis: &[usize]) -> Poly {
        let mut out = Poly::zero(self.n, basis.len());
        self.mul_acc(&mut out, a, b, basis);
        out
    }

    /// limb *= w modulo modulus `idx` (limb values and w reduced). tfhe-ntt's
    /// `mul_assign_normalize` computes lhs * rhs / N with its vectorised (AVX-512 IFMA when
    /// present) kernel; feeding rhs = w * N makes it a fast constant multiplication.
    pub fn mul_const_limb(&self, idx: usize, limb: &mut [u64], w: u64) {
        let m = &self.moduli[idx];
        if super::ifma::available() && m.value() < 1 << 50 {
            let p = m.value();
            let ws = super::ifma::shoup52(w, p);
            super::ifma::mul_const_assign(limb, w, ws, p);
            return;
        }
        let wn = m.mul(w, m.reduce(self.n as u64));
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.resize(limb.len(), wn);
            self.plans[idx].mul_assign_normalize(limb, &s);
        });
    }

    /// acc += a * w modulo modulus `idx` (acc and w reduced; a < p, or any a < 2^51 on
    /// IFMA hardware), vectorised.
    pub fn mul_const_acc_limb(&self, idx: usize, acc: &mut [u64], a: &[u64], w: u64) {
        let p = self.moduli[idx].value();
        if super::ifma::available() && p < 1 << 50 {
            super::ifma::mul_const_acc(acc, a, w, super::ifma::shoup52(w, p), p);
            return;
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.resize(a.len(), w);
            self.plans[idx].mul_accumulate(acc, a, &s);
        });
    }

    /// a *= c where c is given per limb (already reduced modulo each limb's prime).
    pub fn mul_scalar_assign(&self, a: &mut Poly, c: &[u64], basis: &[usize]) {
        for_each_limb(a.data_mut(), self.n, |j, limb| {
            self.mul_const_limb(basis[j], limb, c[j]);
        });
    }

    /// a += c where c is given per limb (NTT domain: adds the constant polynomial c, whose
    /// evaluations are all equal to c).
    pub fn add_scalar_assign(&self, a: &mut Poly, c: &[u64], basis: &[usize]) {
        for_each_limb(a.data_mut(), self.n, |j, limb| {
            kernels::add_scalar_mod(limb, c[j], self.moduli[basis[j]].value());
        });
    }

    /// Index permutation realising X -> X^g on NTT-domain limbs:
    /// `out[i] = in[perm[i]]`.
    pub fn automorphism_permutation(&self, g: u64) -> Vec<u32> {
        // 2N is a power of two: reduce with a mask.
        let mask = 2 * self.n as u64 - 1;
        let g = g & mask;
        self.ntt_exponent
            .iter()
            .map(|&e| {
                let t = (e as u64).wrapping_mul(g) & mask;
                self.ntt_index_of_exponent[(t >> 1) as usize]
            })
            .collect()
    }

    /// Applies a precomputed automorphism permutation to every limb (NTT domain).
    pub fn permute(&self, src: &Poly, perm: &[u32]) -> Poly {
        let mut out = Poly::zero(self.n, src.num_limbs());
        for_each_limb(out.data_mut(), self.n, |j, limb| {
            kernels::gather(limb, src.limb(j), perm);
        });
        out
    }

    /// X -> X^g on a coefficient-domain polynomial (used for secret keys in key generation
    /// and in tests).
    pub fn automorphism_coeff_i64(&self, coeffs: &[i64], g: u64) -> Vec<i64> {
        let n = self.n;
        let two_n = 2 * n as u64;
        let mut out = vec![0i64; n];
        for (i, &c) in coeffs.iter().enumerate() {
            let t = (i as u64 * g) % two_n;
            if t < n as u64 {
                out[t as usize] += c;
            } else {
                out[(t - n as u64) as usize] -= c;
            }
        }
        out
    }

    /// Reduces signed coefficients into every limb of `basis` (coefficient domain).
    pub fn poly_from_i64(&self, coeffs: &[i64], basis: &[usize]) -> Poly {
        let mut p = Poly::zero(self.n, basis.len());
        let max_abs = coeffs.iter().map(|c| c.unsigned_abs()).max().unwrap_or(0);
        for_each_limb(p.data_mut(), self.n, |j, limb| {
            let m = &self.moduli[basis[j]];
            if max_abs < m.value() {
                // Small values (secrets, errors): branch-free, vectorisable.
                for (x, &c) in limb.iter_mut().zip(coeffs) {
                    *x = m.reduce_small_i64(c);
                }
            } else {
                for (x, &c) in limb.iter_mut().zip(coeffs) {
                    *x = m.reduce_i64(c);
                }
            }
        });
        p
    }
}

/// Odd exponents (relative to the root at output index 0) held by each NTT output index.
fn ntt_exponents(n: usize, m: &Modulus, plan: &Plan) -> Result<Vec<u32>> {
    let mut x = vec![0u64; n];
    x[1] = 1;
    plan.fwd(&mut x);
    // x[i] = psi_i, a primitive 2N-th root. Take psi = x[0] and tabulate its odd powers.
    let psi = x[0];
    let psi2 = m.mul(psi, psi);
    let mut table = std::collections::HashMap::with_capacity(n);
    let mut pw = psi;
    for k in 0..n {
        table.insert(pw, (2 * k + 1) as u32);
        pw = m.mul(pw, psi2);
    }
    x.iter()
        .map(|v| {
            table.get(v).copied().ok_or_else(|| {
                CkksError::InvalidParameters("unexpected NTT evaluation points".into())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::primes::generate_primes;
    use proptest::prelude::*;

    fn schoolbook(a: &[u64], b: &[u64], m: &Modulus) -> Vec<u64> {
        let n = a.len();
        let mut out = vec![0u64; n];
        for i in 0..n {
            for j in 0..n {
                let p = m.mul(a[i], b[j]);
                if i + j < n {
                    out[i + j] = m.add(out[i + j], p);
                } else {
                    out[i + j - n] = m.sub(out[i + j - n], p);
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn ntt_mult_is_negacyclic(seed in any::<u64>(), bits in 30u32..=50) {
            let n = 64;
            let q = generate_primes(bits, 1, n, &[]).unwrap()[0];
            let ctx = RingContext::new(n, &[q]).unwrap();
            let m = *ctx.modulus(0);
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s % q };
            let a: Vec<u64> = (0..n).map(|_| next()).collect();
            let b: Vec<u64> = (0..n).map(|_| next()).collect();
            let expect = schoolbook(&a, &b, &m);
            let mut pa = Poly::from_data(n, a.clone());
            let mut pb = Poly::from_data(n, b.clone());
            ctx.ntt_forward(&mut pa, &[0]);
            ctx.ntt_forward(&mut pb, &[0]);
            let mut pc = ctx.mul(&pa, &pb, &[0]);
            ctx.ntt_inverse(&mut pc, &[0]);
            prop_assert_eq!(pc.limb(0), &expect[..]);
            ctx.ntt_inverse(&mut pa, &[0]);
            prop_assert_eq!(pa.limb(0), &a[..]);
        }
    }

    #[test]
    fn automorphism_in_ntt_matches_coefficient_domain() {
        let n = 256;
        let qs = generate_primes(45, 2, n, &[]).unwrap();
        let ctx = RingContext::new(n, &qs).unwrap();
        let coeffs: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 1000 - 500).collect();
        for g in [5u64, 25, 2 * n as u64 - 1, 125] {
            let expect = ctx.poly_from_i64(&ctx.automorphism_coeff_i64(&coeffs, g), &[0, 1]);
            let mut p = ctx.poly_from_i64(&coeffs, &[0, 1]);
            ctx.ntt_forward(&mut p, &[0, 1]);
            let perm = ctx.automorphism_permutation(g);
            let mut r = ctx.permute(&p, &perm);
            ctx.ntt_inverse(&mut r, &[0, 1]);
            assert_eq!(r, expect, "g = {g}");
        }
    }
}
