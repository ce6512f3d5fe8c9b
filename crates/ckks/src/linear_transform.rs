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

/// Diagonal index k of period `dim` as a signed rotation in (-dim/2, dim/2]: the shorter
/// way round, so that the giant steps of a band around 0 are consecutive.
fn signed(k: usize, dim: usize) -> i64 {
    if k > dim / 2 {
        k as i64 - dim as i64
    } else {
        k as i64
    }
}

/// The baby-step giant-step split of signed indices: k = g + b with g a multiple of
/// `span` and 0 <= b < span.
fn split(indices: &[i64], span: i64) -> (Vec<i64>, Vec<i64>) {
    let mut babies: Vec<i64> = indices.iter().map(|k| k.rem_euclid(span)).collect();
    let mut giants: Vec<i64> = indices.iter().map(|k| k - k.rem_euclid(span)).collect();
    babies.sort_unstable();
    babies.dedup();
    giants.sort_unstable();
    giants.dedup();
    (babies, giants)
}

/// Sorted giant steps cut into runs of consecutive multiples of `span`.
fn runs(giants: &[i64], span: i64) -> Vec<Vec<i64>> {
    let mut out: Vec<Vec<i64>> = Vec::new();
    for &g in giants {
        match out.last_mut() {
            Some(run) if run.last() == Some(&(g - span)) => run.push(g),
            _ => out.push(vec![g]),
        }
    }
    out
}

/// What a split costs: (key switches, weighing a hoisted baby step as half a giant step
/// since it shares the decomposition; Galois keys).
fn cost(indices: &[i64], span: i64) -> (f64, usize) {
    let (babies, giants) = split(indices, span);
    let runs = runs(&giants, span);
    let baby_keys = babies.iter().filter(|&&b| b != 0).count();
    let horner: usize = runs.iter().map(|r| r.len() - 1).sum();
    let starts = runs.iter().filter(|r| r[0] != 0).count();
    let keys = baby_keys + starts + usize::from(horner > 0);
    (0.5 * baby_keys as f64 + (horner + starts) as f64, keys)
}

/// The baby-step span (a power of two) of the cheapest evaluation, fewer keys breaking ties.
fn best_baby_span(indices: &[i64], dim: usize) -> i64 {
    let mut best: Option<((f64, usize), i64)> = None;
    let mut span = 1i64;
    while span <= dim as i64 {
        let c = cost(indices, span);
        if best.is_none_or(|(b, _)| c.0 < b.0 || (c.0 == b.0 && c.1 < b.1)) {
            best = Some((c, span));
        }
        span *= 2;
    }
    best.map_or(1, |(_, s)| s)
}

/// Consecutive giant steps evaluated by Horner's rule: with `inner_j` the inner product of
/// giant step start + j span, sum_j rot_(start + j span)(inner_j) =
/// rot_start(inner_0 + rot_span(inner_1 + rot_span(...))), so the whole run needs the key
/// of `span` and that of its start only (Halevi-Shoup 2018 Sec. 4.3 count the same way).
#[derive(Debug, Clone)]
struct GiantRun {
    start: i64,
    /// For each step, (baby step, diagonal pre-rotated by minus the giant step).
    steps: Vec<Vec<(i64, Diagonal)>>,
}

/// A diagonal ready for its product: encoded once (a polynomial of the whole level, the
/// fast choice), or one period of slot values encoded each time it is used (a period of
/// complex numbers instead of level + 1 limbs: at N = 2^16 and 23 limbs, 20 to 500 times
/// less memory, for an FFT and level + 1 NTTs per use).
#[derive(Debug, Clone)]
enum Diagonal {
    Encoded(Plaintext),
    Slots(Vec<Complex64>),
}

/// A [`LinearTransform`] prepared for ciphertexts at one level, ready to evaluate with
/// [`Evaluator::apply_linear_transform`].
#[derive(Clone)]
pub struct EncodedLinearTransform {
    level: usize,
    scale: f64,
    span: i64,
    babies: Vec<i64>,
    runs: Vec<GiantRun>,
    /// The encoder of diagonals kept as slots.
    encoder: Option<std::sync::Arc<Encoder>>,
}

impl std::fmt::Debug for EncodedLinearTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedLinearTransform")
            .field("level", &self.level)
            .field("scale", &self.scale)
            .field("span", &self.span)
            .field("babies", &self.babies)
            .field("runs", &self.runs)
            .field("encoded_when_used", &self.encoder.is_some())
            .finish()
    }
}

impl EncodedLinearTransform {
    /// Encodes `t`'s diagonals at `level` with `scale`, split into baby and giant steps.
    pub fn new(enc: &Encoder, t: &LinearTransform, level: usize, scale: f64) -> Result<Self> {
        Self::build(enc, t, level, scale, false)
    }

    /// As [`EncodedLinearTransform::new`], keeping the diagonals as slot values and
    /// encoding each when it is used: far less memory, some time per evaluation.
    pub fn encoded_when_used(
        enc: std::sync::Arc<Encoder>,
        t: &LinearTransform,
        level: usize,
        scale: f64,
    ) -> Result<Self> {
        let mut out = Self::build(&enc, t, level, scale, true)?;
        out.encoder = Some(enc);
        Ok(out)
    }

    fn build(
        enc: &Encoder,
        t: &LinearTransform,
        level: usize,
        scale: f64,
        lazy: bool,
    ) -> Result<Self> {
        enc.params().check_level(level)?;
        let slots = enc.slots();
        let dim = t.dim;
        if dim > slots {
            return Err(CkksError::InvalidParameters(format!(
                "a transform of period {dim} does not fit {slots} slots"
            )));
        }
        let indexed: Vec<(i64, &Vec<Complex64>)> = t
            .diagonals
            .iter()
            .map(|(&k, d)| (signed(k, dim), d))
            .collect();
        let indices: Vec<i64> = indexed.iter().map(|(k, _)| *k).collect();
        let span = best_baby_span(&indices, dim);
        let (babies, giants) = split(&indices, span);
        let mut encoded_runs = Vec::new();
        for run in runs(&giants, span) {
            let mut steps = Vec::with_capacity(run.len());
            for &g in &run {
                let mut terms = Vec::new();
                for (k, d) in indexed.iter().filter(|(k, _)| k - k.rem_euclid(span) == g) {
                    // rot_g(rot_-g(d) * rot_b(x)) = d * rot_(g+b)(x).
                    let shift = g.rem_euclid(dim as i64) as usize;
                    let rotated: Vec<Complex64> =
                        (0..dim).map(|p| d[(p + dim - shift) % dim]).collect();
                    let diagonal = if lazy {
                        Diagonal::Slots(rotated)
                    } else {
                        Diagonal::Encoded(enc.encode_periodic(&rotated, level, scale)?)
                    };
                    terms.push((k - g, diagonal));
                }
                steps.push(terms);
            }
            encoded_runs.push(GiantRun {
                start: run[0],
                steps,
            });
        }
        Ok(Self {
            level,
            scale,
            span,
            babies,
            runs: encoded_runs,
            encoder: None,
        })
    }

    /// The plaintext of a diagonal.
    fn plaintext<'a>(&self, d: &'a Diagonal) -> Result<std::borrow::Cow<'a, Plaintext>> {
        match (d, &self.encoder) {
            (Diagonal::Encoded(pt), _) => Ok(std::borrow::Cow::Borrowed(pt)),
            (Diagonal::Slots(v), Some(enc)) => Ok(std::borrow::Cow::Owned(
                enc.encode_periodic(v, self.level, self.scale)?,
            )),
            (Diagonal::Slots(_), None) => Err(CkksError::InvalidParameters(
                "a diagonal kept as slots without its encoder".into(),
            )),
        }
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
        let mut steps: Vec<i64> = self.babies.clone();
        steps.extend(self.runs.iter().map(|r| r.start));
        if self.runs.iter().any(|r| r.steps.len() > 1) {
            steps.push(self.span);
        }
        steps.retain(|&s| s != 0);
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// Number of key switches one evaluation costs (hoisted baby steps included).
    pub fn rotations(&self) -> usize {
        let babies = self.babies.iter().filter(|&&b| b != 0).count();
        let giants: usize = self
            .runs
            .iter()
            .map(|r| r.steps.len() - 1 + usize::from(r.start != 0))
            .sum();
        babies + giants
    }
}

impl Evaluator {
    /// A x for the encoded map A: baby-step rotations of `ct` share one decomposition; each
    /// run of giant steps is summed by Horner's rule. The output has the input's level and
    /// the product of the scales (rescale afterwards).
    pub fn apply_linear_transform(
        &self,
        ct: &Ciphertext,
        t: &EncodedLinearTransform,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        if ct.level() != t.level {
            return Err(CkksError::LevelMismatch(ct.level(), t.level));
        }
        // Baby step 0 is the input itself (no copy).
        let steps: Vec<i64> = t.babies.iter().copied().filter(|&b| b != 0).collect();
        let rotated = self.rotate_hoisted(ct, &steps, gk)?;
        let baby = |b: i64| -> &Ciphertext {
            if b == 0 {
                return ct;
            }
            let i = steps
                .binary_search(&b)
                .expect("baby steps cover every term");
            &rotated[i]
        };
        let partial = crate::parallel::map(&t.runs, |run| -> Result<Ciphertext> {
            let mut acc: Option<Ciphertext> = None;
            for terms in run.steps.iter().rev() {
                let inner = self.inner_product(ct, t, terms, baby)?;
                acc = Some(match acc {
                    None => inner,
                    Some(a) => {
                        let mut rotated = self.rotate(&a, t.span, gk)?;
                        self.add_assign(&mut rotated, &inner)?;
                        rotated
                    }
                });
            }
            let acc =
                acc.ok_or_else(|| CkksError::InvalidParameters("an empty giant run".into()))?;
            if run.start == 0 {
                Ok(acc)
            } else {
                self.rotate(&acc, run.start, gk)
            }
        });
        let mut partial = partial.into_iter();
        let mut out = partial.next().ok_or_else(|| {
            CkksError::InvalidParameters("a linear transform without diagonals".into())
        })??;
        for p in partial {
            self.add_assign(&mut out, &p?)?;
        }
        Ok(out)
    }
}

impl Evaluator {
    /// sum_b pt_b * rot_b(x), accumulated in place (one pair of polynomials for the sum,
    /// none per term: a term's product would otherwise be a fresh ciphertext of the whole
    /// level).
    fn inner_product<'a>(
        &self,
        ct: &Ciphertext,
        t: &EncodedLinearTransform,
        terms: &[(i64, Diagonal)],
        baby: impl Fn(i64) -> &'a Ciphertext,
    ) -> Result<Ciphertext> {
        let pt_scale = t.scale;
        let ring = self.params().ring();
        let basis = self.params().q_basis(ct.level());
        let limbs = basis.len();
        let n = ring.n();
        let mut parts = vec![
            crate::ring::Poly::zero(n, limbs),
            crate::ring::Poly::zero(n, limbs),
        ];
        if terms.is_empty() {
            return Err(CkksError::InvalidParameters(
                "a giant step without diagonals".into(),
            ));
        }
        for (b, d) in terms {
            let pt = t.plaintext(d)?;
            let x = baby(*b);
            if pt.level() < ct.level() {
                return Err(CkksError::LevelMismatch(ct.level(), pt.level()));
            }
            let m = &pt.poly().data()[..limbs * n];
            for (acc, part) in parts.iter_mut().zip(x.parts()) {
                ring.mul_acc_data(acc, part.data(), m, &basis);
            }
        }
        Ok(Ciphertext {
            parts,
            level: ct.level(),
            scale: ct.scale() * pt_scale,
            seed: None,
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
    fn encrypted_evaluation_matches_the_plain_map() {
        use crate::{Decryptor, KeyGenerator, SecretDistribution};
        let params = crate::CkksParameters::insecure_for_tests(
            11,
            &[60, 50, 50],
            &[61, 61],
            50,
            SecretDistribution::UniformTernary,
        )
        .unwrap();
        let enc = Encoder::new(&params);
        let mut kg = KeyGenerator::new(&params).unwrap();
        let sk = kg.gen_secret_key();
        let dec = Decryptor::new(&params, &sk).unwrap();
        let eval = Evaluator::new(&params);
        // A band around 0, a far band (two giant runs) and a period shorter than the slots.
        for (dim, indices) in [
            (1024usize, vec![0i64, 1, 2, -1, -2, -3, 5, 300, 301, 303]),
            (64, vec![0, 1, -1, 7, 32, -17]),
        ] {
            let t = random_transform(dim, &indices, dim as u64);
            let level = 2;
            let lt =
                EncodedLinearTransform::new(&enc, &t, level, params.q()[level] as f64).unwrap();
            let gk = kg
                .gen_galois_keys(&sk, &lt.rotation_steps(), false)
                .unwrap();
            let x: Vec<Complex64> = (0..dim)
                .map(|i| c((i as f64).sin(), (i as f64 * 0.3).cos()))
                .collect();
            let ct = dec
                .encrypt_symmetric(&enc.encode_periodic(&x, level, 2f64.powi(50)).unwrap())
                .unwrap();
            let out = eval
                .rescale(&eval.apply_linear_transform(&ct, &lt, &gk).unwrap())
                .unwrap();
            let got = enc.decode_complex(&dec.decrypt(&out).unwrap());
            let want = t.apply(&x).unwrap();
            for (p, g) in got.iter().enumerate() {
                assert!(
                    (g - want[p % dim]).norm() < 1e-9,
                    "dim {dim} slot {p}: {g} vs {}",
                    want[p % dim]
                );
            }
        }
    }

    #[test]
    fn baby_giant_split_covers_every_index() {
        // A band around 0 (as a DFT stage group has): -4..=3 seen the short way round.
        let idx: Vec<i64> = [0, 1, 2, 3, 60, 61, 62, 63]
            .iter()
            .map(|&k| signed(k, 64))
            .collect();
        let span = best_baby_span(&idx, 64);
        let (b, g) = split(&idx, span);
        for k in &idx {
            assert!(b.contains(&k.rem_euclid(span)) && g.contains(&(k - k.rem_euclid(span))));
        }
        // One run of consecutive giant steps: Horner needs the span's key and the start's.
        assert_eq!(runs(&g, span).len(), 1, "{span}: {g:?}");
        let (_, keys) = cost(&idx, span);
        assert!(keys <= 5, "{span}: {b:?} {g:?}");
    }
}
