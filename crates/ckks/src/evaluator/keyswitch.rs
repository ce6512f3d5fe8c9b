//! Hybrid key switching (Han-Ki 2020, "Better bootstrapping for approximate homomorphic
//! encryption", Sec. 3): decompose the input into dnum digit groups of alpha primes, raise
//! each digit to Q_l ∪ P (ModUp), take the inner product with the key, and divide by P
//! (ModDown). Basis conversions are the fast approximate ones of the full-RNS CKKS variant
//! (Cheon-Han-Kim-Kim-Song 2018).

use super::Evaluator;
use crate::keys::SwitchingKey;
use crate::ring::context::for_each_limb;
use crate::ring::{BasisConverter, Poly};

thread_local! {
    /// One limb of scratch per thread for ModDown (a fresh vector per limb and call would
    /// be megabytes of zeroed pages per key switch at N = 2^16).
    static LIMB: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A polynomial decomposed and raised to Q_l ∪ P once (ModUp), ready to be switched with
/// any number of keys: the hoisting of Halevi-Shoup 2018 ("Faster homomorphic linear
/// transformations in HElib", Sec. 5) as used in Lattigo (Bossuat et al. 2021).
/// Obtained from [`Evaluator::decompose_for_rotation`].
pub struct Decomposed {
    pub(crate) level: usize,
    /// One poly per digit, NTT form over the extended basis Q_level ∪ P.
    pub(crate) digits: Vec<Poly>,
}

impl Evaluator {
    /// ModUp: digits of `d` (NTT form over Q_level) in NTT form over Q_level ∪ P.
    pub(crate) fn decompose(&self, d: &Poly, level: usize) -> Decomposed {
        let params = &self.params;
        let ring = params.ring();
        let n = ring.n();
        let q_basis = params.q_basis(level);
        let ext = params.qp_basis(level);
        let alpha = params.alpha();
        let mut coeff = d.clone();
        ring.ntt_inverse(&mut coeff, &q_basis);
        let groups: Vec<(usize, usize)> = (0..params.dnum())
            .map(|j| (j * alpha, ((j + 1) * alpha).min(level + 1)))
            .take_while(|&(s, _)| s <= level)
            .collect();
        let digits = crate::parallel::map(&groups, |&(start, end)| {
            let src: Vec<usize> = (start..end).collect();
            let dst: Vec<usize> = ext.iter().copied().filter(|i| !src.contains(i)).collect();
            let conv = BasisConverter::new(ring, &src, &dst);
            let y = conv.prepare(ring, &coeff.data()[start * n..end * n]);
            let mut digit = Poly::zero(n, ext.len());
            // Limbs of the group are d itself (already NTT); the others are converted from
            // the group's coefficients, then transformed, limb by limb while in cache.
            for_each_limb(digit.data_mut(), n, |k, limb| {
                if (start..end).contains(&k) {
                    limb.copy_from_slice(d.limb(k));
                } else {
                    let t = if k < start { k } else { k - (end - start) };
                    conv.convert_limb(ring, &y, t, limb);
                    ring.ntt_forward_limb(limb, ext[k]);
                }
            });
            digit
        });
        Decomposed { level, digits }
    }

    /// sum_j digit_j * (b_j, a_j) over Q_level ∪ P.
    pub(crate) fn key_inner_product(&self, dec: &Decomposed, key: &SwitchingKey) -> (Poly, Poly) {
        let ring = self.params.ring();
        let n = ring.n();
        let ext = self.params.qp_basis(dec.level);
        let inner = |key_polys: &[Poly]| {
            let mut acc = Poly::zero(n, ext.len());
            for_each_limb(acc.data_mut(), n, |k, out| {
                let idx = ext[k];
                for (digit, key_poly) in dec.digits.iter().zip(key_polys) {
                    ring.mul_acc_limb(idx, out, digit.limb(k), key_poly.limb(idx));
                }
            });
            acc
        };
        crate::parallel::join(|| inner(&key.b), || inner(&key.a))
    }

    /// ModDown: (c - Conv_{P->Q}([c]_P)) * P^-1 over Q_level, rounding to nearest.
    pub(crate) fn mod_down(&self, mut c: Poly, level: usize) -> Poly {
        let params = &self.params;
        let ring = params.ring();
        let n = ring.n();
        let q_basis = params.q_basis(level);
        let p_idx = params.p_indices();
        let lq = q_basis.len();
        let mut cp = Poly::from_data(n, c.data()[lq * n..].to_vec());
        c.truncate_limbs(lq);
        ring.ntt_inverse(&mut cp, &p_idx);
        let conv = BasisConverter::new(ring, &p_idx, &q_basis);
        let y = conv.prepare(ring, cp.data());
        for_each_limb(c.data_mut(), n, |i, limb| {
            let m = ring.modulus(i);
            let p_mod = params
                .p()
                .iter()
                .fold(1u64, |acc, &p| m.mul(acc, m.reduce(p)));
            let p_inv = m.inv(p_mod).unwrap_or(0);
            LIMB.with(|t| {
                let mut t = t.borrow_mut();
                t.resize(n, 0);
                conv.convert_limb(ring, &y, i, &mut t);
                ring.ntt_forward_limb(&mut t, i);
                crate::ring::kernels::sub_mod(limb, &t, m.value());
            });
            ring.mul_const_limb(i, limb, p_inv);
        });
        c
    }

    /// Switches `d` (NTT over Q_level, decrypting under s') to a pair (u0, u1) with
    /// u0 + u1 s ~ d s' (mod Q_level).
    pub(crate) fn key_switch(&self, d: &Poly, level: usize, key: &SwitchingKey) -> (Poly, Poly) {
        let dec = self.decompose(d, level);
        self.finish_switch(&dec, key)
    }

    /// Inner product then ModDown of both components.
    pub(crate) fn finish_switch(&self, dec: &Decomposed, key: &SwitchingKey) -> (Poly, Poly) {
        let (c0, c1) = self.key_inner_product(dec, key);
        crate::parallel::join(
            || self.mod_down(c0, dec.level),
            || self.mod_down(c1, dec.level),
        )
    }
}
