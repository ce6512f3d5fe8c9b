//! Hybrid key switching (Han-Ki 2020, "Better bootstrapping for approximate homomorphic
//! encryption", Sec. 3): decompose the input into dnum digit groups of alpha primes, raise
//! each digit to Q_l ∪ P (ModUp), take the inner product with the key, and divide by P
//! (ModDown). Basis conversions are the fast approximate ones of the full-RNS CKKS variant
//! (Cheon-Han-Kim-Kim-Song 2018).

use super::Evaluator;
use crate::keys::SwitchingKey;
use crate::ring::context::for_each_limb;
use crate::ring::{BasisConverter, Poly};
use rayon::prelude::*;

/// A polynomial decomposed and raised to Q_l ∪ P once (ModUp), ready to be switched with
/// any number of keys: the hoisting of Halevi-Shoup 2018 ("Faster homomorphic linear
/// transformations in HElib", Sec. 5) as used in Lattigo (Bossuat et al. 2021).
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
        let digits = groups
            .par_iter()
            .map(|&(start, end)| {
                let src: Vec<usize> = (start..end).collect();
                let dst: Vec<usize> = ext.iter().copied().filter(|i| !src.contains(i)).collect();
                let input = Poly::from_data(n, coeff.data()[start * n..end * n].to_vec());
                let mut conv = BasisConverter::new(ring, &src, &dst).convert(ring, &input);
                ring.ntt_forward(&mut conv, &dst);
                let mut digit = Poly::zero(n, ext.len());
                let mut next_conv = 0;
                for (k, &idx) in ext.iter().enumerate() {
                    if (start..end).contains(&idx) {
                        digit.limb_mut(k).copy_from_slice(d.limb(idx));
                    } else {
                        digit.limb_mut(k).copy_from_slice(conv.limb(next_conv));
                        next_conv += 1;
                    }
                }
                digit
            })
            .collect();
        Decomposed { level, digits }
    }

    /// sum_j digit_j * (b_j, a_j) over Q_level ∪ P, with the automorphism `perm` applied to
    /// the digits first when given (hoisted rotation).
    pub(crate) fn key_inner_product(
        &self,
        dec: &Decomposed,
        key: &SwitchingKey,
        perm: Option<&[u32]>,
    ) -> (Poly, Poly) {
        let ring = self.params.ring();
        let n = ring.n();
        let ext = self.params.qp_basis(dec.level);
        let mut acc = Poly::zero(n, 2 * ext.len());
        // Limbs 0..len hold the b-part, len..2len the a-part: one parallel loop over both.
        let len = ext.len();
        for_each_limb(acc.data_mut(), n, |k2, out| {
            let (k, a_part) = if k2 < len {
                (k2, false)
            } else {
                (k2 - len, true)
            };
            let idx = ext[k];
            let mut tmp = if perm.is_some() {
                vec![0u64; n]
            } else {
                Vec::new()
            };
            for (j, digit) in dec.digits.iter().enumerate() {
                let key_poly = if a_part { &key.a[j] } else { &key.b[j] };
                let d = digit.limb(k);
                let d = match perm {
                    Some(p) => {
                        for (t, &pi) in tmp.iter_mut().zip(p) {
                            *t = d[pi as usize];
                        }
                        &tmp[..]
                    }
                    None => d,
                };
                ring.mul_acc_limb(idx, out, d, key_poly.limb(idx));
            }
        });
        let data = acc.data();
        (
            Poly::from_data(n, data[..len * n].to_vec()),
            Poly::from_data(n, data[len * n..].to_vec()),
        )
    }

    /// ModDown: (c - Conv_{P->Q}([c]_P)) * P^-1 over Q_level, rounding to nearest.
    pub(crate) fn mod_down(&self, c: &Poly, level: usize) -> Poly {
        let params = &self.params;
        let ring = params.ring();
        let n = ring.n();
        let q_basis = params.q_basis(level);
        let p_idx = params.p_indices();
        let lq = q_basis.len();
        let mut cp = Poly::from_data(n, c.data()[lq * n..].to_vec());
        ring.ntt_inverse(&mut cp, &p_idx);
        let mut conv = BasisConverter::new(ring, &p_idx, &q_basis).convert(ring, &cp);
        ring.ntt_forward(&mut conv, &q_basis);
        let mut out = Poly::from_data(n, c.data()[..lq * n].to_vec());
        for_each_limb(out.data_mut(), n, |i, limb| {
            let m = ring.modulus(i);
            let p_inv = params
                .p()
                .iter()
                .fold(1u64, |acc, &p| m.mul(acc, m.reduce(p)));
            let p_inv = m.inv(p_inv).unwrap_or(0);
            let ps = m.shoup(p_inv);
            for (x, &y) in limb.iter_mut().zip(conv.limb(i)) {
                *x = m.mul_shoup(m.sub(*x, y), p_inv, ps);
            }
        });
        out
    }

    /// Switches `d` (NTT over Q_level, decrypting under s') to a pair (u0, u1) with
    /// u0 + u1 s ~ d s' (mod Q_level).
    pub(crate) fn key_switch(&self, d: &Poly, level: usize, key: &SwitchingKey) -> (Poly, Poly) {
        let dec = self.decompose(d, level);
        self.finish_switch(&dec, key, None)
    }

    /// Inner product then ModDown of both components.
    pub(crate) fn finish_switch(
        &self,
        dec: &Decomposed,
        key: &SwitchingKey,
        perm: Option<&[u32]>,
    ) -> (Poly, Poly) {
        let (c0, c1) = self.key_inner_product(dec, key, perm);
        rayon::join(
            || self.mod_down(&c0, dec.level),
            || self.mod_down(&c1, dec.level),
        )
    }
}
