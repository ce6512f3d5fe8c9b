//! Linear maps of the slot vector in diagonal form (Halevi-Shoup 2014, "Algorithms in
//! HElib", Sec. 4.1), evaluated by the baby-step giant-step algorithm with hoisted baby
//! steps (Halevi-Shoup 2018, "Faster homomorphic linear transformations in HElib", Sec. 4;
//! Bossuat et al. 2021 Sec. 4 for its use in bootstrapping).
//!
//! A map A on vectors of period `dim` (a power of two dividing N/2: a vector of `dim`
//! values replicated over the N/2 slots) is held as its diagonals,
//! `(A x)[p] = sum_k d_k[p] x[(p + k) mod dim]`, so that `A x = sum_k d_k * rot_k(x)`.
//! Rotating a `dim`-periodic slot vector by k is rotating its period by k mod dim, so the
//! same diagonals serve whatever N is.

use crate::encoding::Encoder;
use crate::error::{CkksError, Result};
use crate::evaluator::Evaluator;
use crate::keys::GaloisKeys;
use crate::plaintext::{Ciphertext, Plaintext};
use num_complex::Complex64;
use std::collections::BTreeMap;

/// A linear map of `dim`-periodic slot vectors by its nonzero diagonals.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearTransform {
    dim: usize,
    diagonals: BTreeMap<usize, Vec<Complex64>>,
}

impl LinearTransform {
    /// The zero map on vectors of period `dim` (a power of two).
    pub fn zero(dim: usize) -> Result<Self> {
        if !dim.is_power_of_two() {
            return Err(CkksError::InvalidParameters(format!(
                "a linear transform's period must be a power of two, not {dim}"
            )));
        }
        Ok(Self {
            dim,
            diagonals: BTreeMap::new(),
        })
    }

    /// The diagonal map x -> d * x.
    pub fn diagonal(d: Vec<Complex64>) -> Result<Self> {
        let mut t = Self::zero(d.len())?;
        t.diagonals.insert(0, d);
        Ok(t)
    }

    /// The period of the vectors it maps.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The nonzero diagonals by rotation index in `0..dim`.
    pub fn diagonals(&self) -> &BTreeMap<usize, Vec<Complex64>> {
        &self.diagonals
    }

    /// Adds `v` to entry `p` of diagonal `k` (both taken modulo `dim`).
    pub fn add_entry(&mut self, k: i64, p: usize, v: Complex64) {
        let dim = self.dim;
        let k = k.rem_euclid(dim as i64) as usize;
        self.diagonals
            .entry(k)
            .or_insert_with(|| vec![Complex64::new(0.0, 0.0); dim])[p % dim] += v;
    }

    /// A x on one period of plain values (the reference the encrypted evaluation must match).
    pub fn apply(&self, x: &[Complex64]) -> Result<Vec<Complex64>> {
        if x.len() != self.dim {
            return Err(CkksError::TooManyValues {
                given: x.len(),
                slots: self.dim,
            });
        }
        let mut out = vec![Complex64::new(0.0, 0.0); self.dim];
        for (&k, d) in &self.diagonals {
            for (p, o) in out.iter_mut().enumerate() {
                *o += d[p] * x[(p + k) % self.dim];
            }
        }
        Ok(out)
    }

    /// The same map on vectors of period `dim` (a multiple of the current period): the
    /// diagonals repeat.
    pub fn with_period(&self, dim: usize) -> Result<Self> {
        if !dim.is_power_of_two() || dim < self.dim {
            return Err(CkksError::InvalidParameters(format!(
                "cannot extend a transform of period {} to {dim}",
                self.dim
            )));
        }
        // Index k of the short period stands for k, k + dim_0, k + 2 dim_0, ... of the long
        // one; on a vector with the short period they all agree, so k alone is kept.
        let diagonals = self
            .diagonals
            .iter()
            .map(|(&k, d)| (k, d.iter().cycle().take(dim).copied().collect()))
            .collect();
        Ok(Self { dim, diagonals })
    }

    /// The composition `after ∘ self` (self applied first): diagonal i of `after` and j of
    /// `self` contribute `a_i[p] b_j[p + i]` to diagonal i + j.
    pub fn then(&self, after: &LinearTransform) -> Result<Self> {
        let dim = self.dim.max(after.dim);
        let (first, second) = (self.with_period(dim)?, after.with_period(dim)?);
        let mut out = Self::zero(dim)?;
        for (&i, a) in &second.diagonals {
            for (&j, b) in &first.diagonals {
                let k = (i + j) % dim;
                let d = out
                    .diagonals
                    .entry(k)
                    .or_insert_with(|| vec![Complex64::new(0.0, 0.0); dim]);
                for (p, x) in d.iter_mut().enumerate() {
                    *x += a[p] * b[(p + i) % dim];
                }
            }
        }
        out.diagonals
            .retain(|_, d| d.iter().any(|z| z.norm() > 0.0));
        Ok(out)
    }

    /// c A.
    pub fn scaled(&self, c: Complex64) -> Self {
        let mut out = self.clone();
        for d in out.diagonals.values_mut() {
            for x in d.iter_mut() {
                *x *= c;
            }
        }
        out
    }

    /// The largest |entry|.
    pub fn max_abs(&self) -> f64 {
        self.diagonals
            .values()
            .flatten()
            .fold(0.0f64, |m, z| m.max(z.norm()))
    }
}

/// The baby-step giant-step split of a set of rotation indices: index k = g + b with g a
/// multiple of `baby_span` and b < `baby_span`.
fn split(indices: &[usize], baby_span: usize) -> (Vec<usize>, Vec<usize>) {
    let mut babies: Vec<usize> = indices.iter().map(|k| k % baby_span).collect();
    let mut giants: Vec<usize> = indices.iter().map(|k| k - k % baby_span).collect();
    babies.sort_unstable();
    babies.dedup();
    giants.sort_unstable();
    giants.dedup();
    (babies, giants)
}

/// The baby-step span (a power of two) that needs the fewest rotations, babies and giants
/// together.
fn best_baby_span(indices: &[usize], dim: usize) -> usize {
    let mut best = (usize::MAX, 1);
    let mut span = 1;
    while span <= dim {
        let (b, g) = split(indices, span);
        // Rotation 0 is free on either side.
        let cost = b.iter().filter(|&&x| x != 0).count() + g.iter().filter(|&&x| x != 0).count();
        if cost < best.0 {
            best = (cost, span);
        }
        span *= 2;
    }
    best.1
}

/// One giant step: its rotation and, for each baby step, the diagonal pre-rotated by minus
/// the giant step.
#[derive(Debug, Clone)]
struct GiantStep {
    rotation: usize,
    terms: Vec<(usize, Plaintext)>,
}

/// A [`LinearTransform`] encoded for ciphertexts at one level, ready to evaluate with
/// [`Evaluator::apply_linear_transform`].
#[derive(Debug, Clone)]
pub struct EncodedLinearTransform {
    level: usize,
    scale: f64,
    babies: Vec<usize>,
    giants: Vec<GiantStep>,
}

impl EncodedLinearTransform {
    /// Encodes `t`'s diagonals at `level` with `scale`, split into baby and giant steps.
    pub fn new(enc: &Encoder, t: &LinearTransform, level: usize, scale: f64) -> Result<Self> {
        let slots = enc.slots();
        if t.dim > slots {
            return Err(CkksError::InvalidParameters(format!(
                "a transform of period {} does not fit {slots} slots",
                t.dim
            )));
        }
        let indices: Vec<usize> = t.diagonals.keys().copied().collect();
        let span = best_baby_span(&indices, t.dim);
        let (babies, giant_rotations) = split(&indices, span);
        let mut giants = Vec::with_capacity(giant_rotations.len());
        for g in giant_rotations {
            let mut terms = Vec::new();
            for (&k, d) in t.diagonals.range(g..g + span) {
                // rot_g(rot_-g(d) * rot_b(x)) = d * rot_(g+b)(x).
                let rotated: Vec<Complex64> = (0..slots)
                    .map(|p| d[(p + t.dim - g % t.dim) % t.dim])
                    .collect();
                terms.push((k - g, enc.encode_complex(&rotated, level, scale)?));
            }
            giants.push(GiantStep { rotation: g, terms });
        }
        Ok(Self {
            level,
            scale,
            babies,
            giants,
        })
    }

    /// The level the input ciphertext must have.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The scale of the encoded diagonals (the output's scale is the input's times this).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The rotation steps whose Galois keys the evaluation needs.
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut steps: Vec<i64> = self
            .babies
            .iter()
            .chain(self.giants.iter().map(|g| &g.rotation))
            .filter(|&&s| s != 0)
            .map(|&s| s as i64)
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// Number of key switches one evaluation costs (hoisted baby steps included).
    pub fn rotations(&self) -> usize {
        self.rotation_steps().len()
    }
}

impl Evaluator {
    /// A x for the encoded map A: baby-step rotations of `ct` share one decomposition,
    /// each giant step's inner product is rotated once. The output has the input's level
    /// and the product of the scales (rescale afterwards).
    pub fn apply_linear_transform(
        &self,
        ct: &Ciphertext,
        t: &EncodedLinearTransform,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        if ct.level() != t.level {
            return Err(CkksError::LevelMismatch(ct.level(), t.level));
        }
        let steps: Vec<i64> = t.babies.iter().map(|&b| b as i64).collect();
        let rotated = self.rotate_hoisted(ct, &steps, gk)?;
        let baby = |b: usize| -> &Ciphertext {
            let i = t
                .babies
                .binary_search(&b)
                .expect("baby steps cover every term");
            &rotated[i]
        };
        let partial = crate::parallel::map(&t.giants, |giant| -> Result<Ciphertext> {
            let mut acc: Option<Ciphertext> = None;
            for (b, pt) in &giant.terms {
                let term = self.mul_plain(baby(*b), pt)?;
                acc = Some(match acc {
                    None => term,
                    Some(a) => self.add(&a, &term)?,
                });
            }
            let inner = acc.ok_or_else(|| {
                CkksError::InvalidParameters("a giant step without diagonals".into())
            })?;
            self.rotate(&inner, giant.rotation as i64, gk)
        });
        let mut out: Option<Ciphertext> = None;
        for p in partial {
            let p = p?;
            out = Some(match out {
                None => p,
                Some(a) => self.add(&a, &p)?,
            });
        }
        out.ok_or_else(|| {
            CkksError::InvalidParameters("a linear transform without diagonals".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(re: f64, im: f64) -> Complex64 {
        Complex64::new(re, im)
    }

    fn random_transform(dim: usize, indices: &[i64], seed: u64) -> LinearTransform {
        let mut t = LinearTransform::zero(dim).unwrap();
        let mut x = seed;
        for &k in indices {
            for p in 0..dim {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let a = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let b = (x >> 7 & 0xffff) as f64 / 65536.0 - 0.5;
                t.add_entry(k, p, c(a, b));
            }
        }
        t
    }

    #[test]
    fn composition_matches_applying_twice() {
        let a = random_transform(16, &[0, 1, -4], 1);
        let b = random_transform(16, &[2, 8], 2);
        let x: Vec<Complex64> = (0..16).map(|i| c(i as f64, -(i as f64) / 3.0)).collect();
        let ab = b.then(&a).unwrap();
        let want = a.apply(&b.apply(&x).unwrap()).unwrap();
        for (u, v) in ab.apply(&x).unwrap().iter().zip(&want) {
            assert!((u - v).norm() < 1e-12);
        }
    }

    #[test]
    fn extending_the_period_repeats_the_map() {
        let a = random_transform(4, &[1, 3], 3);
        let long = a.with_period(16).unwrap();
        let x: Vec<Complex64> = (0..16).map(|i| c((i % 4) as f64, 1.0)).collect();
        let short = a.apply(&x[..4]).unwrap();
        for (p, v) in long.apply(&x).unwrap().iter().enumerate() {
            assert!((v - short[p % 4]).norm() < 1e-12);
        }
    }

    #[test]
    fn baby_giant_split_covers_every_index() {
        let idx = [0, 1, 2, 3, 60, 61, 62, 63];
        let span = best_baby_span(&idx, 64);
        let (b, g) = split(&idx, span);
        for k in idx {
            assert!(b.contains(&(k % span)) && g.contains(&(k - k % span)));
        }
        assert!(b.len() + g.len() <= 6, "{span}: {b:?} {g:?}");
    }
}
