//! Homomorphic evaluation of a Chebyshev series on a CKKS ciphertext.

use super::chebyshev::ChebyshevApproximation;
use super::plan::{Backend, Eval, Plan};
use crate::error::{CkksError, Result};
use crate::evaluator::Evaluator;
use crate::keys::RelinearizationKey;
use crate::params::CkksParameters;
use crate::plaintext::Ciphertext;

/// Evaluates [`ChebyshevApproximation`]s on ciphertexts.
///
/// Level accounting: for an input at level L, the output is at level
/// `L - poly.depth()` where `depth() = ceil(log2(d + 1)) + change_of_variable_depth()`, and its
/// scale is exactly the requested target scale, so the caller can budget levels in advance
/// and keep computing (e.g. add the result to another ciphertext at the default scale).
/// The slots must lie in the approximation interval [a, b]: outside it the Chebyshev
/// polynomials grow like (2|y|)^d and the result is meaningless (and may overflow the
/// modulus).
#[derive(Clone)]
pub struct PolynomialEvaluator {
    eval: Evaluator,
}

impl PolynomialEvaluator {
    /// An evaluator for `params`.
    pub fn new(params: &CkksParameters) -> Self {
        Self {
            eval: Evaluator::new(params),
        }
    }

    /// The level the output of [`PolynomialEvaluator::evaluate`] will have for an input at
    /// `input_level`, or an error if the levels do not suffice.
    pub fn output_level(&self, input_level: usize, poly: &ChebyshevApproximation) -> Result<usize> {
        let depth = poly.depth();
        input_level.checked_sub(depth).ok_or_else(|| {
            CkksError::InvalidParameters(format!(
                "polynomial of degree {} on [{}, {}] needs {depth} levels ({} for the series, {} for the change of variable) but the input is at level {input_level}",
                poly.degree(),
                poly.interval().0,
                poly.interval().1,
                poly.chebyshev_depth(),
                poly.change_of_variable_depth(),
            ))
        })
    }

    /// p(ct) slot-wise, at level `ct.level() - poly.depth()` and scale exactly
    /// `target_scale`.
    ///
    /// Costs [`ChebyshevApproximation::ciphertext_multiplications`] relinearised products
    /// (about 2 sqrt(d) + log2(d)) plus one constant multiplication per nonzero coefficient.
    /// The target scale should be close to the primes (e.g. the default scale); a target far
    /// from them only moves precision between this result and the following operations.
    /// The input's scale should also be close to the primes (as after encryption at the
    /// default scale, or after a rescale) when the change of variable is free
    /// (`change_of_variable_depth() == 0`): the powers T_k inherit it and would otherwise
    /// drift. When the change of variable costs its level, T_1 is put on the default scale
    /// whatever the input's scale.
    pub fn evaluate(
        &self,
        ct: &Ciphertext,
        poly: &ChebyshevApproximation,
        rlk: &RelinearizationKey,
        target_scale: f64,
    ) -> Result<Ciphertext> {
        if !(target_scale.is_finite() && target_scale >= 1.0) {
            return Err(CkksError::InvalidParameters(format!(
                "target scale {target_scale} must be finite and >= 1"
            )));
        }
        if ct.degree() != 1 {
            return Err(CkksError::InvalidDegree(ct.degree()));
        }
        let out_level = self.output_level(ct.level(), poly)?;
        let t1 = self.change_of_variable(ct, poly)?;
        let backend = CkksBackend {
            eval: &self.eval,
            rlk,
        };
        let out = Plan::new(poly.coefficients()).evaluate(&backend, &t1, target_scale)?;
        // Both are guaranteed by construction; checked so that a planner bug is an error
        // rather than a silently wrong ciphertext.
        if out.level() != out_level {
            return Err(CkksError::LevelMismatch(out.level(), out_level));
        }
        Evaluator::check_scales(out.scale(), target_scale)?;
        Ok(out)
    }

    /// T_1 = alpha x + beta, mapping [a, b] onto [-1, 1].
    fn change_of_variable(
        &self,
        ct: &Ciphertext,
        poly: &ChebyshevApproximation,
    ) -> Result<Ciphertext> {
        let e = &self.eval;
        let (alpha, beta) = poly.change_of_variable();
        let y = if poly.change_of_variable_depth() == 0 {
            // alpha is a (small) integer: no scale growth, no level.
            if alpha == 1.0 {
                ct.clone()
            } else {
                e.mul_integer(ct, alpha as i64)
            }
        } else {
            // One constant multiplication and a rescale. The constant's scale is chosen so
            // that T_1 lands exactly on the default scale, whatever the input's scale was:
            // the powers T_k then keep scales close to the primes.
            let params = e.params();
            let level = ct.level();
            let target = params.default_scale();
            let const_scale = params.q()[level] as f64 * target / ct.scale();
            let y = e.mul_const(ct, alpha, const_scale)?;
            let mut y = e.rescale(&y)?;
            Evaluator::check_scales(y.scale(), target)?;
            y.set_scale(target);
            y
        };
        if beta == 0.0 {
            Ok(y)
        } else {
            e.add_const(&y, beta)
        }
    }
}

/// The ciphertext arithmetic behind [`Plan::evaluate`].
struct CkksBackend<'a> {
    eval: &'a Evaluator,
    rlk: &'a RelinearizationKey,
}

impl CkksBackend<'_> {
    /// Records the intended scale `scale` on `ct` after checking that it equals the tracked
    /// one up to f64 rounding: the plan computes scales as products and quotients in a
    /// different order than the evaluator, and the last-bit differences would otherwise pile
    /// up in the final result.
    fn pin_scale(mut ct: Ciphertext, scale: f64) -> Result<Ciphertext> {
        Evaluator::check_scales(ct.scale(), scale)?;
        ct.set_scale(scale);
        Ok(ct)
    }

    fn check_level(ct: &Ciphertext, level: usize) -> Result<()> {
        if ct.level() < level {
            Err(CkksError::LevelMismatch(ct.level(), level))
        } else {
            Ok(())
        }
    }
}

impl Backend for CkksBackend<'_> {
    type Value = Ciphertext;

    fn level(&self, v: &Ciphertext) -> usize {
        v.level()
    }

    fn scale(&self, v: &Ciphertext) -> f64 {
        v.scale()
    }

    fn prime(&self, level: usize) -> f64 {
        // The plan never asks above the input's level; a wrong level must still not panic:
        // the operation at that level then fails with a level error.
        self.eval.params().q().get(level).map_or(1.0, |&q| q as f64)
    }

    fn chebyshev_step(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        c: Option<&Ciphertext>,
    ) -> Result<Ciphertext> {
        let e = self.eval;
        let prod = e.mul_relin(a, b, self.rlk)?;
        let scale = prod.scale();
        let twice = e.mul_integer(&prod, 2);
        let sum = match c {
            // T_0 = 1 at the product's scale (before the rescale: the constant is exact to
            // 2^-80 or so instead of 2^-40).
            None => e.add_const(&twice, -1.0)?,
            Some(c) => {
                // -T_c brought onto the product's scale with a constant of scale
                // scale / scale(T_c) (about one prime): exact up to 2^-40 relative.
                Self::check_level(c, prod.level())?;
                let c = e.drop_to_level(c, prod.level())?;
                let neg = e.mul_const(&c, -1.0, scale / c.scale())?;
                e.add(&twice, &Self::pin_scale(neg, scale)?)?
            }
        };
        e.rescale(&sum)
    }

    fn linear_combination(
        &self,
        terms: &[(f64, &Ciphertext)],
        c0: f64,
        level: usize,
        scale: f64,
    ) -> Result<Eval<Ciphertext>> {
        let e = self.eval;
        let mut acc: Option<Ciphertext> = None;
        for &(c, t) in terms {
            Self::check_level(t, level)?;
            // The coefficient is encoded at scale / scale(T_k), so c T_k has exactly `scale`
            // and all terms add up without any scale error.
            let const_scale = scale / t.scale();
            if (c * const_scale).abs() < 0.5 {
                // Encodes to the integer 0: the term is exactly zero, skip the work.
                continue;
            }
            let t = e.drop_to_level(t, level)?;
            let term = Self::pin_scale(e.mul_const(&t, c, const_scale)?, scale)?;
            acc = Some(match acc {
                None => term,
                Some(a) => e.add(&a, &term)?,
            });
        }
        Ok(match acc {
            None => Eval::Const(c0),
            Some(a) if c0 == 0.0 => Eval::Value(a),
            Some(a) => Eval::Value(e.add_const(&a, c0)?),
        })
    }

    fn product(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext> {
        let p = self.eval.mul_relin(a, b, self.rlk)?;
        if p.level() != level {
            return Err(CkksError::LevelMismatch(p.level(), level));
        }
        Self::pin_scale(p, scale)
    }

    fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.eval.add(a, b)
    }

    fn add_const(&self, a: &Ciphertext, c: f64) -> Result<Ciphertext> {
        self.eval.add_const(a, c)
    }

    fn rescale(&self, a: &Ciphertext, scale: f64) -> Result<Ciphertext> {
        Self::pin_scale(self.eval.rescale(a)?, scale)
    }

    fn constant(&self, like: &Ciphertext, c: f64, level: usize, scale: f64) -> Result<Ciphertext> {
        // A public constant as a (trivial, noiseless) ciphertext: 0 * like, then + c.
        let z = self.eval.drop_to_level(like, level)?;
        let mut z = self.eval.mul_integer(&z, 0);
        z.set_scale(scale);
        self.eval.add_const(&z, c)
    }
}
