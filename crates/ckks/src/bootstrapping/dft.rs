//! The encoding map of n slots as a product of sparse factors: the "special FFT" of
//! Cheon-Han-Kim-Kim-Song (HEAAN; "Improved bootstrapping for approximate homomorphic
//! encryption", EUROCRYPT 2019, Sec. 3), whose factors have three diagonals each and are
//! grouped into a few levels (Chen-Chillotti-Song, EUROCRYPT 2019, Sec. 4).
//!
//! With n slots, a message polynomial of the subring Z[Y], Y = X^(N/2n), of degree 2n has
//! slots z_j = sum_k a_k xi^(5^j k), xi = exp(2 pi i / 4n), k < 2n. Since xi^(5^j n) = i for
//! every j, z = E w with w = a_lo + i a_hi (n complex values) and
//! E_jk = xi^((5^j mod 4n) k), j, k < n.
//!
//! E = S_n S_(n/2) ... S_2 B, where B is the bit-reversal permutation and S_len is the
//! butterfly stage of blocks of `len` with twiddles xi_len(j) = exp(2 pi i (5^j mod 4 len) /
//! (4 len)). Bootstrapping never applies B: CoeffToSlot computes B w = S_2^-1 ... S_n^-1 z
//! (coefficients in bit-reversed order, which the slot-wise EvalMod does not mind) and
//! SlotToCoeff takes B w and applies the stages only.

use crate::error::Result;
use crate::linear_transform::LinearTransform;
use num_complex::Complex64;
use std::f64::consts::PI;

/// 5^j mod m.
#[cfg(test)]
fn pow5(j: usize, m: usize) -> usize {
    let mut x = 1usize;
    for _ in 0..j {
        x = x * 5 % m;
    }
    x
}

/// Twiddles xi_len(j) for j < len / 2.
fn twiddles(len: usize) -> Vec<Complex64> {
    let m = 4 * len;
    let mut g = 1usize;
    (0..len / 2)
        .map(|_| {
            let w = Complex64::from_polar(1.0, 2.0 * PI * g as f64 / m as f64);
            g = g * 5 % m;
            w
        })
        .collect()
}

/// A stage of butterflies on pairs (i + j, i + j + len/2) of every block i of `len`:
/// `entries(w_j)` gives the top output's weights on (top, bottom) and the bottom output's
/// weights on (top, bottom).
fn butterflies(
    n: usize,
    len: usize,
    entries: impl Fn(Complex64) -> [Complex64; 4],
) -> Result<LinearTransform> {
    let half = len / 2;
    let w = twiddles(len);
    let mut t = LinearTransform::zero(n)?;
    for block in (0..n).step_by(len) {
        for (j, &wj) in w.iter().enumerate() {
            let (top, bottom) = (block + j, block + j + half);
            let [top_top, top_bottom, bottom_top, bottom_bottom] = entries(wj);
            t.add_entry(0, top, top_top);
            t.add_entry(half as i64, top, top_bottom);
            t.add_entry(-(half as i64), bottom, bottom_top);
            t.add_entry(0, bottom, bottom_bottom);
        }
    }
    Ok(t)
}

/// The butterfly stage S_len on vectors of length n:
/// (u, v) -> (u + w v, u - w v) on entries (i + j, i + j + len/2) of every block i.
pub(crate) fn stage(n: usize, len: usize) -> Result<LinearTransform> {
    let one = Complex64::new(1.0, 0.0);
    butterflies(n, len, |w| [one, w, one, -w])
}

/// S_len^-1: (a, b) -> ((a + b) / 2, (a - b) / (2 w)).
pub(crate) fn inverse_stage(n: usize, len: usize) -> Result<LinearTransform> {
    let h = Complex64::new(0.5, 0.0);
    butterflies(n, len, |w| {
        let inv = 1.0 / (2.0 * w);
        [h, h, inv, -inv]
    })
}

/// Stage lengths 2, 4, ..., n.
fn lengths(n: usize) -> impl DoubleEndedIterator<Item = usize> {
    (1..=n.trailing_zeros()).map(|k| 1usize << k)
}

/// The factors of SlotToCoeff in the order they apply: S_2, S_4, ..., S_n.
pub(crate) fn slots_to_coeffs_factors(n: usize) -> Result<Vec<LinearTransform>> {
    lengths(n).map(|len| stage(n, len)).collect()
}

/// The factors of CoeffToSlot in the order they apply: S_n^-1, ..., S_2^-1.
pub(crate) fn coeffs_to_slots_factors(n: usize) -> Result<Vec<LinearTransform>> {
    lengths(n).rev().map(|len| inverse_stage(n, len)).collect()
}

/// Splits `factors` (in application order) into `groups` consecutive runs as even as
/// possible and multiplies each run out. The longer runs come first, or last with
/// `longer_last`: SlotToCoeff's factors are CoeffToSlot's in reverse order, so grouping
/// them the other way round gives both transforms the same stage strides per group, the
/// same diagonals and so the same rotations, whose keys they then share.
pub(crate) fn group(
    factors: &[LinearTransform],
    groups: usize,
    longer_last: bool,
) -> Result<Vec<LinearTransform>> {
    let groups = groups.clamp(1, factors.len().max(1));
    let (base, extra) = (factors.len() / groups, factors.len() % groups);
    let mut lengths: Vec<usize> = (0..groups).map(|g| base + usize::from(g < extra)).collect();
    if longer_last {
        lengths.reverse();
    }
    let mut out = Vec::with_capacity(groups);
    let mut rest = factors;
    for take in lengths {
        let (run, tail) = rest.split_at(take);
        rest = tail;
        let mut product = run[0].clone();
        for f in &run[1..] {
            product = product.then(f)?;
        }
        out.push(product);
    }
    Ok(out)
}

/// E w computed directly from its definition (O(n^2), for tests).
#[cfg(test)]
pub(crate) fn encode_directly(w: &[Complex64]) -> Vec<Complex64> {
    let n = w.len();
    let m = 4 * n;
    (0..n)
        .map(|j| {
            let g = pow5(j, m);
            w.iter()
                .enumerate()
                .map(|(k, &x)| {
                    x * Complex64::from_polar(1.0, 2.0 * PI * ((g * k) % m) as f64 / m as f64)
                })
                .sum()
        })
        .collect()
}

/// The bit-reversal permutation of a vector of power-of-two length.
#[cfg(test)]
pub(crate) fn bit_reversed<T: Copy>(v: &[T]) -> Vec<T> {
    let n = v.len();
    let bits = n.trailing_zeros();
    (0..n)
        .map(|i| {
            v[if bits == 0 {
                0
            } else {
                i.reverse_bits() >> (usize::BITS - bits)
            }]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<Complex64> {
        (0..n)
            .map(|i| Complex64::new((i as f64 * 0.7).sin(), (i as f64 * 1.3).cos()))
            .collect()
    }

    fn apply_all(fs: &[LinearTransform], mut x: Vec<Complex64>) -> Vec<Complex64> {
        for f in fs {
            x = f.apply(&x).unwrap();
        }
        x
    }

    #[test]
    fn stages_compute_the_encoding_map() {
        for n in [1, 2, 4, 16, 64] {
            let w = sample(n);
            let want = encode_directly(&w);
            let got = apply_all(&slots_to_coeffs_factors(n).unwrap(), bit_reversed(&w));
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).norm() < 1e-9 * n as f64, "n = {n}");
            }
            let back = apply_all(&coeffs_to_slots_factors(n).unwrap(), want);
            for (a, b) in back.iter().zip(&bit_reversed(&w)) {
                assert!((a - b).norm() < 1e-9 * n as f64, "n = {n}");
            }
        }
    }

    #[test]
    fn grouped_factors_are_the_same_map_with_few_diagonals() {
        let n = 256;
        let w = sample(n);
        let grouped = group(&slots_to_coeffs_factors(n).unwrap(), 3, false).unwrap();
        assert_eq!(grouped.len(), 3);
        let got = apply_all(&grouped, bit_reversed(&w));
        for (a, b) in got.iter().zip(&encode_directly(&w)) {
            assert!((a - b).norm() < 1e-8);
        }
        // Runs of 3, 3, 2 stages: at most 2^(s+1) - 1 diagonals each.
        for g in &grouped {
            assert!(g.diagonals().len() <= 15, "{}", g.diagonals().len());
        }
    }
}
