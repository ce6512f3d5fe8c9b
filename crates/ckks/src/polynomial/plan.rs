//! The baby-step giant-step evaluation of a Chebyshev series, written once over an abstract
//! arithmetic ([`Backend`]) so that the same code runs on ciphertexts and, in tests, on plain
//! f64 values that only track levels.
//!
//! Algorithm (Bossuat-Mouchet-Troncoso-Pastoriza-Hubaux, "Efficient Bootstrapping for
//! Approximate Homomorphic Encryption with Non-Sparse Keys", Eurocrypt 2021, Alg. 2, after
//! Han-Ki, "Better Bootstrapping for Approximate Homomorphic Encryption", CT-RSA 2020, and
//! Paterson-Stockmeyer 1973):
//! - baby steps T_1 .. T_{2^l}, giant steps T_{2^l}, T_{2^(l+1)}, ..., each T_k (k >= 2)
//!   from T_k = 2 T_p T_r - T_{p-r} with p the largest power of two below k and r = k - p, so
//!   T_k sits exactly ceil(log2 k) levels below T_1;
//! - p = q T_g + r for the largest power of two g <= deg p, using T_g T_j = (T_{g+j} +
//!   T_{g-j}) / 2, recursively on q and r, down to leaves sum_k c_k T_k with k < 2^l.
//!
//! Depth. Write R(p) for the number of levels below T_1 at which p can be produced *before*
//! its final rescale; a leaf needs R = ceil(log2 deg) (its highest T_k), a split needs
//! R = max(log2 g, R(q) + 1, R(r)), and the rescaled result is one level lower. Giving the
//! root the budget ceil(log2(d + 1)) - 1 and each quotient one level less than its parent,
//! and splitting a node further whenever a leaf would exceed its budget, always succeeds
//! (a node with budget B has degree <= 2^(B+1) - 1) and reaches the optimal depth
//! ceil(log2(d + 1)): the "lead" chain, the quotient multiplied by every giant step, is split
//! down to degree-1 leaves, which costs about log2(d) extra products (Bossuat et al. do the
//! same when they re-split the leading leaf).
//!
//! Scales (as in Lattigo's polynomial evaluator, in spirit). Every node is evaluated for a
//! *target* (level, scale) fixed in advance by its parent: a leaf multiplies each T_k by its
//! coefficient encoded at scale target / scale(T_k), so every term lands exactly on the
//! target before the sum; a split evaluates q for target scale target / scale(T_g) one level
//! up, so that q T_g lands exactly on the target. Terms are therefore only ever added at
//! identical scales, whatever the primes, and the root comes out at exactly the requested
//! scale after its single final rescale.

use crate::error::{CkksError, Result};

/// ceil(log2(d + 1)): the optimal depth of a degree-d polynomial.
pub(crate) fn chebyshev_depth(degree: usize) -> usize {
    (usize::BITS - degree.leading_zeros()) as usize
}

/// Levels below T_1 of T_k: ceil(log2 k) (0 for k <= 1).
fn power_depth(k: usize) -> usize {
    if k <= 1 {
        0
    } else {
        (usize::BITS - (k - 1).leading_zeros()) as usize
    }
}

/// The largest power of two <= k (k >= 1).
fn floor_pow2(k: usize) -> usize {
    1 << (usize::BITS - 1 - k.leading_zeros())
}

/// How T_k (k >= 2) is computed: T_k = 2 T_p T_r - T_{p-r}.
fn recurrence(k: usize) -> (usize, usize, usize) {
    let p = floor_pow2(k - 1);
    let r = k - p;
    (p, r, p - r)
}

/// A node of the evaluation tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// sum_k c_k T_k with the coefficients c_0 ..
    Leaf(Vec<f64>),
    /// quotient * T_giant + remainder.
    Split {
        giant: usize,
        quotient: Box<Node>,
        remainder: Box<Node>,
    },
}

/// Divides sum_k c_k T_k (degree e, g <= e < 2g) by T_g: returns (q, r) with deg q = e - g,
/// deg r < g. T_g = T_g T_0 and, for g < k < 2g, T_k = 2 T_g T_{k-g} - T_{2g-k}.
fn divide(coeffs: &[f64], g: usize) -> (Vec<f64>, Vec<f64>) {
    let e = coeffs.len() - 1;
    debug_assert!(g <= e && e < 2 * g);
    let mut q = vec![0.0; e - g + 1];
    let mut r = coeffs[..g].to_vec();
    q[0] = coeffs[g];
    for k in g + 1..=e {
        q[k - g] += 2.0 * coeffs[k];
        r[2 * g - k] -= coeffs[k];
    }
    (q, r)
}

fn build(coeffs: &[f64], budget: usize, baby: usize) -> Node {
    let e = coeffs.len() - 1;
    if e < baby.max(2) && power_depth(e) <= budget {
        return Node::Leaf(coeffs.to_vec());
    }
    // Here e >= 2, so budget >= 1 by the invariant e <= 2^(budget + 1) - 1, which both
    // children inherit (see the module documentation).
    let g = floor_pow2(e);
    let (q, r) = divide(coeffs, g);
    Node::Split {
        giant: g,
        quotient: Box::new(build(&q, budget - 1, baby)),
        remainder: Box::new(build(&r, budget, baby)),
    }
}

fn is_zero(coeffs: &[f64]) -> bool {
    coeffs.iter().all(|&c| c == 0.0)
}

fn node_is_zero_above_constant(node: &Node) -> bool {
    match node {
        Node::Leaf(c) => is_zero(&c[1..]),
        Node::Split {
            quotient,
            remainder,
            ..
        } => node_is_zero(quotient) && node_is_zero_above_constant(remainder),
    }
}

fn node_is_zero(node: &Node) -> bool {
    match node {
        Node::Leaf(c) => is_zero(c),
        Node::Split {
            quotient,
            remainder,
            ..
        } => node_is_zero(quotient) && node_is_zero(remainder),
    }
}

/// The evaluation tree of one series, with the powers T_k it needs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    degree: usize,
    /// c_0, returned as is for a degree-0 series.
    constant: f64,
    root: Option<Node>,
    /// Indices k >= 2 of the T_k to compute, ascending (closed under the recurrence).
    powers: Vec<usize>,
    products: usize,
}

impl Plan {
    /// The cheapest tree (fewest ciphertext products) over the baby-step sizes 2^l.
    pub(crate) fn new(coeffs: &[f64]) -> Self {
        let degree = coeffs.len() - 1;
        let depth = chebyshev_depth(degree);
        if depth == 0 {
            return Self {
                degree,
                constant: coeffs[0],
                root: None,
                powers: Vec::new(),
                products: 0,
            };
        }
        (1..=depth)
            .map(|l| Self::with_baby_steps(coeffs, 1 << l))
            .min_by_key(|p| p.products)
            .expect("depth >= 1")
    }

    fn with_baby_steps(coeffs: &[f64], baby: usize) -> Self {
        let degree = coeffs.len() - 1;
        let root = build(coeffs, chebyshev_depth(degree) - 1, baby);
        let mut needed = vec![false; degree + 1];
        let mut splits = 0;
        mark(&root, &mut needed, &mut splits);
        // Close under the recurrence, from the top down (dependencies have smaller indices).
        for k in (2..=degree).rev() {
            if needed[k] {
                let (p, r, s) = recurrence(k);
                needed[p] = true;
                needed[r] = true;
                needed[s] = true;
            }
        }
        let powers: Vec<usize> = (2..=degree).filter(|&k| needed[k]).collect();
        let products = powers.len() + splits;
        Self {
            degree,
            constant: coeffs[0],
            root: Some(root),
            powers,
            products,
        }
    }

    /// Ciphertext-ciphertext products: one per computed power T_k (k >= 2) and one per split
    /// whose quotient is not a constant.
    pub(crate) fn multiplications(&self) -> usize {
        self.products
    }

    /// Evaluates the series on `t1` (already mapped to [-1, 1]) so that the result is at
    /// level `level(t1) - ceil(log2(d + 1))` with scale exactly `target_scale`.
    pub(crate) fn evaluate<B: Backend>(
        &self,
        backend: &B,
        t1: &B::Value,
        target_scale: f64,
    ) -> Result<B::Value> {
        let depth = chebyshev_depth(self.degree);
        let top = backend.level(t1);
        if top < depth {
            return Err(CkksError::InvalidParameters(format!(
                "a Chebyshev series of degree {} needs {depth} levels but its input is at level {top}",
                self.degree
            )));
        }
        let out_level = top - depth;
        let Some(root) = &self.root else {
            // Degree 0: a public constant, returned as a value at the promised level.
            return backend.constant(t1, self.constant, out_level, target_scale);
        };
        let mut powers: Vec<Option<B::Value>> = vec![None; self.degree + 1];
        powers[1] = Some(t1.clone());
        for &k in &self.powers {
            let (p, r, s) = recurrence(k);
            let get = |i: usize| {
                powers[i]
                    .as_ref()
                    .expect("plan closed under the recurrence")
            };
            let c = if s == 0 { None } else { Some(get(s)) };
            let t = backend.chebyshev_step(get(p), get(r), c)?;
            powers[k] = Some(t);
        }
        let eval = Evaluation {
            backend,
            powers: &powers,
        };
        // The root is produced one level above the output, at target * q, so that its single
        // final rescale lands exactly on the target.
        let pre_level = out_level + 1;
        let pre_scale = target_scale * backend.prime(pre_level);
        match eval.unrescaled(root, pre_level, pre_scale)? {
            Eval::Const(c) => backend.constant(t1, c, out_level, target_scale),
            Eval::Value(v) => backend.rescale(&v, target_scale),
        }
    }
}

struct Evaluation<'a, B: Backend> {
    backend: &'a B,
    powers: &'a [Option<B::Value>],
}

impl<B: Backend> Evaluation<'_, B> {
    fn power(&self, k: usize) -> Result<&B::Value> {
        self.powers[k].as_ref().ok_or_else(|| {
            CkksError::InvalidParameters(format!("internal: T_{k} was not computed"))
        })
    }

    /// The node at `level` with scale exactly `scale`, before its rescale.
    fn unrescaled(&self, node: &Node, level: usize, scale: f64) -> Result<Eval<B::Value>> {
        let b = self.backend;
        match node {
            Node::Leaf(c) => {
                let mut terms = Vec::with_capacity(c.len());
                for (k, &ck) in c.iter().enumerate().skip(1) {
                    if ck != 0.0 {
                        terms.push((ck, self.power(k)?));
                    }
                }
                b.linear_combination(&terms, c[0], level, scale)
            }
            Node::Split {
                giant,
                quotient,
                remainder,
            } => {
                let head = if node_is_zero(quotient) {
                    Eval::Const(0.0)
                } else {
                    let tg = self.power(*giant)?;
                    // q must come out (rescaled) at this level with scale / scale(T_g), so
                    // that q T_g has exactly `scale`; it is therefore produced one level up.
                    let q_scale = scale / b.scale(tg);
                    let q_pre_scale = q_scale * b.prime(level + 1);
                    match self.unrescaled(quotient, level + 1, q_pre_scale)? {
                        Eval::Const(c) => b.linear_combination(&[(c, tg)], 0.0, level, scale)?,
                        Eval::Value(q) => {
                            let q = b.rescale(&q, q_scale)?;
                            Eval::Value(b.product(&q, tg, level, scale)?)
                        }
                    }
                };
                let tail = self.unrescaled(remainder, level, scale)?;
                Ok(match (head, tail) {
                    (Eval::Const(x), Eval::Const(y)) => Eval::Const(x + y),
                    (Eval::Value(v), Eval::Const(c)) | (Eval::Const(c), Eval::Value(v)) => {
                        if c == 0.0 {
                            Eval::Value(v)
                        } else {
                            Eval::Value(b.add_const(&v, c)?)
                        }
                    }
                    (Eval::Value(x), Eval::Value(y)) => Eval::Value(b.add(&x, &y)?),
                })
            }
        }
    }
}

fn mark(node: &Node, needed: &mut [bool], splits: &mut usize) {
    match node {
        Node::Leaf(c) => {
            for (k, &ck) in c.iter().enumerate().skip(1) {
                if ck != 0.0 {
                    needed[k] = true;
                }
            }
        }
        Node::Split {
            giant,
            quotient,
            remainder,
        } => {
            if !node_is_zero(quotient) {
                needed[*giant] = true;
                if !node_is_zero_above_constant(quotient) {
                    *splits += 1;
                }
            }
            mark(quotient, needed, splits);
            mark(remainder, needed, splits);
        }
    }
}

/// Result of a node: a public constant (every non-constant coefficient is zero) or a value.
pub(crate) enum Eval<V> {
    Const(f64),
    Value(V),
}

/// The arithmetic the evaluation needs. Levels and scales are those of CKKS: a rescale
/// lowers the level by one and divides the scale by the dropped prime.
pub(crate) trait Backend {
    type Value: Clone;
    fn level(&self, v: &Self::Value) -> usize;
    fn scale(&self, v: &Self::Value) -> f64;
    /// The prime q_level (what a rescale at `level` divides by).
    fn prime(&self, level: usize) -> f64;
    /// 2 a b - c (c = None: c = T_0 = 1), rescaled once.
    fn chebyshev_step(
        &self,
        a: &Self::Value,
        b: &Self::Value,
        c: Option<&Self::Value>,
    ) -> Result<Self::Value>;
    /// c0 + sum c_i v_i at `level`, with scale exactly `scale` (not rescaled); Const if every
    /// term vanishes.
    fn linear_combination(
        &self,
        terms: &[(f64, &Self::Value)],
        c0: f64,
        level: usize,
        scale: f64,
    ) -> Result<Eval<Self::Value>>;
    /// a b at `level` with scale exactly `scale` (= scale(a) scale(b) up to rounding), not
    /// rescaled.
    fn product(
        &self,
        a: &Self::Value,
        b: &Self::Value,
        level: usize,
        scale: f64,
    ) -> Result<Self::Value>;
    /// a + b (same level and scale).
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value>;
    /// a + c.
    fn add_const(&self, a: &Self::Value, c: f64) -> Result<Self::Value>;
    /// Rescales once and records exactly `scale` (= scale(a) / prime up to rounding).
    fn rescale(&self, a: &Self::Value, scale: f64) -> Result<Self::Value>;
    /// The constant c as a value at `level` with scale `scale`, shaped like `like`.
    fn constant(&self, like: &Self::Value, c: f64, level: usize, scale: f64)
        -> Result<Self::Value>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polynomial::chebyshev::clenshaw;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Plain f64 arithmetic that tracks levels like CKKS and refuses every operation a
    /// ciphertext could not do at those levels (operands too low, additions across levels),
    /// so the planner's depth accounting is checked without encryption. Scales are all 1.
    #[derive(Clone, Copy, Debug)]
    struct Plain {
        v: f64,
        level: usize,
    }

    struct PlainBackend;

    fn too_low(what: &str) -> CkksError {
        CkksError::InvalidParameters(format!("plain backend: {what}"))
    }

    impl Backend for PlainBackend {
        type Value = Plain;
        fn level(&self, v: &Plain) -> usize {
            v.level
        }
        fn scale(&self, _: &Plain) -> f64 {
            1.0
        }
        fn prime(&self, _: usize) -> f64 {
            1.0
        }
        fn chebyshev_step(&self, a: &Plain, b: &Plain, c: Option<&Plain>) -> Result<Plain> {
            let level = a.level.min(b.level);
            if level == 0 || c.is_some_and(|c| c.level < level) {
                return Err(too_low("chebyshev step"));
            }
            Ok(Plain {
                v: 2.0 * a.v * b.v - c.map_or(1.0, |c| c.v),
                level: level - 1,
            })
        }
        fn linear_combination(
            &self,
            terms: &[(f64, &Plain)],
            c0: f64,
            level: usize,
            _: f64,
        ) -> Result<Eval<Plain>> {
            if terms.iter().any(|(_, t)| t.level < level) {
                return Err(too_low("linear combination"));
            }
            if terms.is_empty() {
                return Ok(Eval::Const(c0));
            }
            let v = c0 + terms.iter().map(|(c, t)| c * t.v).sum::<f64>();
            Ok(Eval::Value(Plain { v, level }))
        }
        fn product(&self, a: &Plain, b: &Plain, level: usize, _: f64) -> Result<Plain> {
            if a.level.min(b.level) != level {
                return Err(too_low("product"));
            }
            Ok(Plain {
                v: a.v * b.v,
                level,
            })
        }
        fn add(&self, a: &Plain, b: &Plain) -> Result<Plain> {
            if a.level != b.level {
                return Err(too_low("add across levels"));
            }
            Ok(Plain {
                v: a.v + b.v,
                level: a.level,
            })
        }
        fn add_const(&self, a: &Plain, c: f64) -> Result<Plain> {
            Ok(Plain {
                v: a.v + c,
                level: a.level,
            })
        }
        fn rescale(&self, a: &Plain, _: f64) -> Result<Plain> {
            if a.level == 0 {
                return Err(too_low("rescale at level 0"));
            }
            Ok(Plain {
                v: a.v,
                level: a.level - 1,
            })
        }
        fn constant(&self, like: &Plain, c: f64, level: usize, _: f64) -> Result<Plain> {
            if like.level < level {
                return Err(too_low("constant"));
            }
            Ok(Plain { v: c, level })
        }
    }

    fn random_coeffs(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        // Decaying like a smooth function's series, so values stay O(1).
        (0..n)
            .map(|k| rng.random_range(-1.0..1.0) / (1.0 + k as f64))
            .collect()
    }

    #[test]
    fn bsgs_matches_clenshaw_at_optimal_depth_for_every_degree() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for d in 0..=130usize {
            let coeffs = random_coeffs(d + 1, &mut rng);
            let plan = Plan::new(&coeffs);
            let depth = chebyshev_depth(d);
            for _ in 0..5 {
                let y: f64 = rng.random_range(-1.0..1.0);
                let top = depth + 2;
                let out = plan
                    .evaluate(&PlainBackend, &Plain { v: y, level: top }, 1.0)
                    .unwrap_or_else(|e| panic!("degree {d}: {e}"));
                assert_eq!(out.level, top - depth, "degree {d}");
                let want = clenshaw(&coeffs, y);
                assert!(
                    (out.v - want).abs() < 1e-11,
                    "degree {d}: {} vs {want}",
                    out.v
                );
            }
            // Exactly enough levels works, one less is an error, not a panic.
            let exact = Plain {
                v: 0.5,
                level: depth,
            };
            assert_eq!(plan.evaluate(&PlainBackend, &exact, 1.0).unwrap().level, 0);
            if depth > 0 {
                let short = Plain {
                    v: 0.5,
                    level: depth - 1,
                };
                assert!(plan.evaluate(&PlainBackend, &short, 1.0).is_err());
            }
        }
    }

    #[test]
    fn sparse_series_skip_work_but_keep_levels() {
        // An odd series (even coefficients exactly zero) and one with a single top term.
        let mut odd = vec![0.0; 64];
        for k in (1..64).step_by(2) {
            odd[k] = 1.0 / k as f64;
        }
        let mut top = vec![0.0; 32];
        top[31] = 1.0;
        top[0] = 0.25;
        for coeffs in [odd, top] {
            let plan = Plan::new(&coeffs);
            let depth = chebyshev_depth(coeffs.len() - 1);
            for y in [-0.9, -0.3, 0.0, 0.4, 1.0] {
                let out = plan
                    .evaluate(&PlainBackend, &Plain { v: y, level: 9 }, 1.0)
                    .unwrap();
                assert_eq!(out.level, 9 - depth);
                assert!((out.v - clenshaw(&coeffs, y)).abs() < 1e-11);
            }
        }
        // All-zero series above the constant: a constant at the promised level.
        let plan = Plan::new(&[1.5, 0.0, 0.0, 0.0, 0.0]);
        let out = plan
            .evaluate(&PlainBackend, &Plain { v: 0.3, level: 5 }, 1.0)
            .unwrap();
        assert_eq!((out.v, out.level), (1.5, 2));
    }

    #[test]
    fn multiplication_count_is_about_two_sqrt_d_plus_log_d() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for d in [7usize, 15, 31, 63, 127, 255, 511] {
            let plan = Plan::new(&random_coeffs(d + 1, &mut rng));
            let bound = 2.0 * ((d + 1) as f64).sqrt() + ((d + 1) as f64).log2() + 2.0;
            assert!(
                (plan.multiplications() as f64) <= bound,
                "degree {d}: {} products > {bound}",
                plan.multiplications()
            );
        }
    }

    #[test]
    fn division_by_giant_step_is_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let coeffs = random_coeffs(14, &mut rng);
        let (q, r) = divide(&coeffs, 8);
        assert_eq!((q.len(), r.len()), (6, 8));
        for y in [-0.7, 0.1, 0.95] {
            let t8 = clenshaw(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], y);
            let got = clenshaw(&q, y) * t8 + clenshaw(&r, y);
            assert!((got - clenshaw(&coeffs, y)).abs() < 1e-13);
        }
    }
}
