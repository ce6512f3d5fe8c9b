//! RNS basis operations: fast (approximate) basis conversion used by ModUp/ModDown
//! (Cheon-Han-Kim-Kim-Song 2018, "A full RNS variant of approximate homomorphic
//! encryption", Sec. 2.2) and exact CRT reconstruction for decoding.

use super::context::{for_each_limb, RingContext};
use super::modular::Modulus;
use super::poly::Poly;

thread_local! {
    /// A source limb reduced modulo the target, per thread (reused across conversions).
    static REDUCED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Precomputed constants to convert residues from a source basis {q_i} to target primes:
/// x ~ sum_i [x_i * (Q/q_i)^-1]_{q_i} * (Q/q_i)  (mod p), exact up to a small multiple of Q.
pub struct BasisConverter {
    src: Vec<usize>,
    dst: Vec<usize>,
    /// [(Q/q_i)^-1]_{q_i} and its Shoup companion.
    qhat_inv: Vec<(u64, u64)>,
    /// (Q/q_i) mod p_k, indexed [k][i].
    qhat_mod_dst: Vec<Vec<u64>>,
}

impl BasisConverter {
    /// Constants for converting from modulus indices `src` to `dst` (disjoint lists).
    pub fn new(ctx: &RingContext, src: &[usize], dst: &[usize]) -> Self {
        let qhat_inv = src
            .iter()
            .map(|&i| {
                let m = ctx.modulus(i);
                let mut prod = 1u64;
                for &j in src {
                    if j != i {
                        prod = m.mul(prod, m.reduce(ctx.modulus(j).value()));
                    }
                }
                // Distinct primes: the product is invertible.
                let inv = m.inv(prod).unwrap_or(0);
                (inv, m.shoup(inv))
            })
            .collect();
        let qhat_mod_dst = dst
            .iter()
            .map(|&k| {
                let p = ctx.modulus(k);
                src.iter()
                    .map(|&i| {
                        let mut prod = 1u64;
                        for &j in src {
                            if j != i {
                                prod = p.mul(prod, p.reduce(ctx.modulus(j).value()));
                            }
                        }
                        prod
                    })
                    .collect()
            })
            .collect();
        Self {
            src: src.to_vec(),
            dst: dst.to_vec(),
            qhat_inv,
            qhat_mod_dst,
        }
    }

    /// First step of a conversion: y_i = [x_i * (Q/q_i)^-1]_{q_i} for limb-major
    /// coefficient-domain `input` modulo `src` (a no-op for a single source prime, whose
    /// conversion is exact and uses the centred value instead).
    pub fn prepare<'a>(&self, ctx: &RingContext, input: &'a [u64]) -> std::borrow::Cow<'a, [u64]> {
        let n = ctx.n();
        debug_assert_eq!(input.len(), n * self.src.len());
        if self.src.len() == 1 {
            return std::borrow::Cow::Borrowed(input);
        }
        let mut y = input.to_vec();
        for_each_limb(&mut y, n, |i, limb| {
            ctx.mul_const_limb(self.src[i], limb, self.qhat_inv[i].0);
        });
        std::borrow::Cow::Owned(y)
    }

    /// Second step: the residues modulo target `dst[k]` (coefficient domain) of the
    /// prepared `y`, written to `out`.
    pub fn convert_limb(&self, ctx: &RingContext, y: &[u64], k: usize, out: &mut [u64]) {
        let n = ctx.n();
        if self.src.len() == 1 {
            lift_centered(ctx, out, y, ctx.modulus(self.src[0]).value(), self.dst[k]);
            return;
        }
        out.fill(0);
        let p = ctx.modulus(self.dst[k]).value();
        let small_sources = self.src.iter().all(|&i| ctx.modulus(i).value() < 1 << 52);
        if super::ifma::available() && p < 1 << 50 && small_sources {
            // The IFMA kernel takes unreduced inputs below 2^52 directly (residues of larger
            // source primes are reduced first, below).
            for (i, &c) in self.qhat_mod_dst[k].iter().enumerate() {
                let yi = &y[i * n..(i + 1) * n];
                super::ifma::mul_const_acc(out, yi, c, super::ifma::shoup52(c, p), p);
            }
            return;
        }
        REDUCED.with(|t| {
            let mut t = t.borrow_mut();
            t.resize(n, 0);
            for (i, &c) in self.qhat_mod_dst[k].iter().enumerate() {
                let yi = &y[i * n..(i + 1) * n];
                let q = ctx.modulus(self.src[i]).value();
                reduce_into(ctx, &mut t, yi, q, self.dst[k]);
                ctx.mul_const_acc_limb(self.dst[k], out, &t, c);
            }
        });
    }

    /// Converts the coefficient-domain limbs `input` (modulo `src`) into a new poly with one
    /// limb per `dst` modulus (coefficient domain).
    pub fn convert(&self, ctx: &RingContext, input: &Poly) -> Poly {
        let n = ctx.n();
        let y = self.prepare(ctx, input.data());
        let mut out = Poly::zero(n, self.dst.len());
        for_each_limb(out.data_mut(), n, |k, limb| {
            self.convert_limb(ctx, &y, k, limb)
        });
        out
    }
}

/// out = x mod p_idx for residues x < q: a plain copy when q <= p, one branch-free
/// conditional subtraction when q <= 2p (a chain of similar-sized primes), otherwise
/// tfhe-ntt's IFMA Barrett kernel (x * 1 accumulated onto zero), else scalar Shoup.
///
/// The IFMA kernel estimates floor(x / p) within 2 for any x < 2^51 when p >= 2^26
/// (Barrett's two truncation errors are each below one; checked by `reduce_kernel_is_exact`)
/// and `mul_accumulate` applies two conditional subtractions, so its output is exact. Its
/// other code paths are only used with reduced inputs, as documented upstream.
pub fn reduce_into(ctx: &RingContext, out: &mut [u64], x: &[u64], q: u64, p_idx: usize) {
    let p = ctx.modulus(p_idx);
    let pv = p.value();
    if q <= pv {
        out.copy_from_slice(x);
    } else if q <= 2 * pv {
        super::kernels::cond_sub(out, x, pv);
    } else if q < (1 << 52) && pv < (1 << 50) && super::ifma::available() {
        super::ifma::mul_const_into(out, x, 1, super::ifma::shoup52(1, pv), pv);
    } else if q < (1 << 51) && p.bits() >= 27 && ctx.uses_ifma(p_idx) {
        out.fill(0);
        ctx.mul_const_acc_limb(p_idx, out, x, 1);
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = p.reduce(v);
        }
    }
}

/// out = `[x]_q mod p_idx`, where `[x]_q` is the centred representative in (-q/2, q/2] of
/// x < q. Centring makes basis extension and rescaling round to nearest.
pub fn lift_centered(ctx: &RingContext, out: &mut [u64], x: &[u64], q: u64, p_idx: usize) {
    let p = ctx.modulus(p_idx);
    let pv = p.value();
    let half = q / 2;
    // Adding (p - q mod p) maps x to x - q modulo p.
    let shift = p.neg(p.reduce(q));
    reduce_into(ctx, out, x, q, p_idx);
    super::kernels::center_shift(out, x, half, shift, pv);
}

/// Exact CRT reconstruction of centered integers from residues, for decoding.
pub struct CrtReconstructor {
    moduli: Vec<Modulus>,
    /// Q as little-endian 64-bit words.
    big_q: Vec<u64>,
    /// Q/q_i as words.
    qhat: Vec<Vec<u64>>,
    /// [(Q/q_i)^-1]_{q_i}.
    qhat_inv: Vec<u64>,
}

fn mul_word(a: &[u64], w: u64, out: &mut [u64]) {
    let mut carry = 0u128;
    for (o, &x) in out.iter_mut().zip(a) {
        let t = x as u128 * w as u128 + carry;
        *o = t as u64;
        carry = t >> 64;
    }
    let len = a.len();
    if len < out.len() {
        out[len] = carry as u64;
    }
}

fn add_assign_words(a: &mut [u64], b: &[u64]) {
    let mut carry = 0u64;
    for (i, x) in a.iter_mut().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        let (s1, c1) = x.overflowing_add(y);
        let (s2, c2) = s1.overflowing_add(carry);
        *x = s2;
        carry = (c1 as u64) + (c2 as u64);
    }
}

fn sub_assign_words(a: &mut [u64], b: &[u64]) {
    let mut borrow = 0u64;
    for (i, x) in a.iter_mut().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        let (s1, b1) = x.overflowing_sub(y);
        let (s2, b2) = s1.overflowing_sub(borrow);
        *x = s2;
        borrow = (b1 as u64) + (b2 as u64);
    }
}

fn geq_words(a: &[u64], b: &[u64]) -> bool {
    let len = a.len().max(b.len());
    for i in (0..len).rev() {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        if x != y {
            return x > y;
        }
    }
    true
}

fn words_to_f64(a: &[u64]) -> f64 {
    a.iter()
        .rev()
        .fold(0.0, |acc, &w| acc * 18446744073709551616.0 + w as f64)
}

impl CrtReconstructor {
    /// Constants for the given moduli.
    pub fn new(moduli: &[Modulus]) -> Self {
        let words = moduli.len() + 1;
        let mut big_q = vec![0u64; words];
        big_q[0] = 1;
        for m in moduli {
            let mut t = vec![0u64; words];
            mul_word(&big_q, m.value(), &mut t);
            big_q = t;
        }
        let mut qhat = Vec::new();
        let mut qhat_inv = Vec::new();
        for (i, m) in moduli.iter().enumerate() {
            let mut h = vec![0u64; words];
            h[0] = 1;
            let mut r = 1u64;
            for (j, o) in moduli.iter().enumerate() {
                if i != j {
                    let mut t = vec![0u64; words];
                    mul_word(&h, o.value(), &mut t);
                    h = t;
                    r = m.mul(r, m.reduce(o.value()));
                }
            }
            qhat.push(h);
            qhat_inv.push(m.inv(r).unwrap_or(0));
        }
        Self {
            moduli: moduli.to_vec(),
            big_q,
            qhat,
            qhat_inv,
        }
    }

    /// The centered integer (in (-Q/2, Q/2]) with the given residues, as f64.
    pub fn centered_f64(&self, residues: &[u64]) -> f64 {
        if self.moduli.len() == 1 {
            return self.moduli[0].center(residues[0]) as f64;
        }
        let words = self.big_q.len() + 1;
        let mut acc = vec![0u64; words];
        let mut t = vec![0u64; words];
        for (i, m) in self.moduli.iter().enumerate() {
            let y = m.mul(residues[i], self.qhat_inv[i]);
            t.iter_mut().for_each(|x| *x = 0);
            mul_word(&self.qhat[i], y, &mut t);
            add_assign_words(&mut acc, &t);
        }
        while geq_words(&acc, &self.big_q) {
            sub_assign_words(&mut acc, &self.big_q);
        }
        // Centre: if 2*acc > Q, the value is acc - Q.
        let mut twice = acc.clone();
        let copy = acc.clone();
        add_assign_words(&mut twice, &copy);
        if geq_words(&twice, &self.big_q) && twice != self.big_q {
            let mut neg = self.big_q.clone();
            neg.push(0);
            sub_assign_words(&mut neg, &acc);
            -words_to_f64(&neg)
        } else {
            words_to_f64(&acc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::primes::generate_primes;
    use proptest::prelude::*;

    #[test]
    fn reduce_kernel_is_exact() {
        // Every prime size the kernel path may see, with random and extreme inputs < 2^51.
        let n = 16;
        for bits in 27..=50u32 {
            let p = generate_primes(bits, 1, n, &[]).unwrap()[0];
            let ctx = RingContext::new(n, &[p]).unwrap();
            let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ bits as u64;
            for round in 0..200 {
                let x: Vec<u64> = (0..n)
                    .map(|i| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        match (round + i) % 5 {
                            0 => (1u64 << 51) - 1 - (s % 1000),
                            1 => (s % ((1u64 << 51) / p)) * p + (s % 3),
                            2 => (s % ((1u64 << 51) / p - 1) + 1) * p - 1 - (s % 2),
                            _ => s % (1u64 << 51),
                        }
                    })
                    .collect();
                let mut out = vec![0u64; n];
                reduce_into(&ctx, &mut out, &x, 1 << 51, 0);
                for (o, v) in out.iter().zip(&x) {
                    assert_eq!(*o, v % p, "bits {bits} x {v}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn crt_reconstructs_signed_values(x in any::<i64>(), k in 1usize..5) {
            let qs = generate_primes(40, k, 1024, &[]).unwrap();
            let moduli: Vec<Modulus> = qs.iter().map(|&q| Modulus::new(q)).collect();
            let crt = CrtReconstructor::new(&moduli);
            let x = if k == 1 { x % (1 << 38) } else { x };
            let res: Vec<u64> = moduli.iter().map(|m| m.reduce_i64(x)).collect();
            prop_assert_eq!(crt.centered_f64(&res), x as f64);
        }

        #[test]
        fn basis_conversion_is_exact_up_to_multiple_of_q(
            vals in proptest::collection::vec(any::<i64>(), 16),
            k in 1usize..3,
            // Sources above 2^52 must not reach the IFMA kernel unreduced.
            (src_bits, dst_bits) in prop_oneof![Just((40, 45)), Just((61, 45)), Just((45, 61))],
        ) {
            let n = 16;
            let qs = generate_primes(src_bits, k, n, &[]).unwrap();
            let ps = generate_primes(dst_bits, 2, n, &qs).unwrap();
            let all: Vec<u64> = qs.iter().chain(&ps).copied().collect();
            let ctx = RingContext::new(n, &all).unwrap();
            let src: Vec<usize> = (0..k).collect();
            let dst: Vec<usize> = (k..k + 2).collect();
            let big_q: i128 = qs.iter().map(|&q| q as i128).product();
            let vals: Vec<i128> = vals.iter().map(|&v| if k == 1 { (v % (1 << 38)) as i128 } else { v as i128 }).collect();
            let mut input = Poly::zero(n, k);
            for i in 0..k {
                for (c, &v) in vals.iter().enumerate() {
                    input.limb_mut(i)[c] = ctx.modulus(i).reduce_i128(v);
                }
            }
            let out = BasisConverter::new(&ctx, &src, &dst).convert(&ctx, &input);
            for (kk, &d) in dst.iter().enumerate() {
                let p = ctx.modulus(d);
                for (c, &v) in vals.iter().enumerate() {
                    // The result is v + u*Q with |u| <= k.
                    let got = out.limb(kk)[c];
                    let ok = (-(k as i128)..=(k as i128)).any(|u| p.reduce_i128(v + u * big_q) == got);
                    prop_assert!(ok);
                }
            }
        }
    }
}
