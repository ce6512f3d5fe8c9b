//! Chebyshev approximation of real functions on an interval, in plain f64.
//!
//! A function f on [a, b] is approximated by p(x) = sum_k c_k T_k(y) with y = (2x - a - b) /
//! (b - a) in [-1, 1], interpolating f at the d + 1 Chebyshev nodes of the first kind
//! (Mason-Handscomb, "Chebyshev Polynomials", 2003, Sec. 6.3; Trefethen, "Approximation Theory
//! and Approximation Practice", 2013, Ch. 3-4). The interpolant is within a factor
//! 2 + (2/pi) log(d + 1) of the best (minimax) approximation of degree d, and its error
//! decays geometrically for analytic functions (sigmoid, tanh) but only like (b - a) / d for
//! functions with a kink (ReLU, leaky ReLU, clip): the caller chooses the degree.

use super::plan;
use crate::error::{CkksError, Result};
use std::f64::consts::PI;

/// Largest degree accepted: the coefficients are computed with O(d^2) cosine sums and the
/// homomorphic evaluation keeps about 2 sqrt(d) ciphertexts alive, so larger degrees are a
/// sign of a mistake rather than a useful request.
pub const MAX_DEGREE: usize = 4095;

/// Largest integer factor of the change of variable applied without consuming a level
/// (see [`ChebyshevApproximation::change_of_variable_depth`]).
const MAX_FREE_INTEGER_FACTOR: f64 = 65536.0;

/// A polynomial p(x) = sum_{k=0}^{d} c_k T_k((2x - a - b) / (b - a)) approximating a real
/// function on [a, b].
#[derive(Debug, Clone, PartialEq)]
pub struct ChebyshevApproximation {
    a: f64,
    b: f64,
    coeffs: Vec<f64>,
}

fn check_interval(a: f64, b: f64) -> Result<()> {
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(CkksError::InvalidParameters(format!(
            "invalid approximation interval [{a}, {b}]"
        )));
    }
    Ok(())
}

impl ChebyshevApproximation {
    /// The polynomial with the given Chebyshev coefficients (c_0 first) on [a, b].
    pub fn from_coefficients(coeffs: Vec<f64>, a: f64, b: f64) -> Result<Self> {
        check_interval(a, b)?;
        if coeffs.is_empty() || coeffs.len() > MAX_DEGREE + 1 {
            return Err(CkksError::InvalidParameters(format!(
                "{} Chebyshev coefficients given (1..={} allowed)",
                coeffs.len(),
                MAX_DEGREE + 1
            )));
        }
        if let Some(c) = coeffs.iter().find(|c| !c.is_finite()) {
            return Err(CkksError::InvalidParameters(format!(
                "non-finite Chebyshev coefficient {c}"
            )));
        }
        Ok(Self { a, b, coeffs })
    }

    /// Interpolates `f` at the `degree + 1` Chebyshev nodes of the first kind on [a, b].
    ///
    /// With n = d + 1 nodes y_j = cos(pi (j + 1/2) / n), the discrete orthogonality of the
    /// T_k on these nodes gives c_k = (2 / n) sum_j f(x_j) cos(pi k (j + 1/2) / n), halved for
    /// k = 0 (a DCT-II; computed directly in O(d^2), which is negligible for d <= 4095).
    /// Coefficients below 1e-14 times the largest one are round-off of the sums (e.g. the
    /// even coefficients of an odd function) and are set to exactly zero so that the
    /// homomorphic evaluation can skip them.
    pub fn interpolate<F: Fn(f64) -> f64>(f: F, a: f64, b: f64, degree: usize) -> Result<Self> {
        check_interval(a, b)?;
        if degree > MAX_DEGREE {
            return Err(CkksError::InvalidParameters(format!(
                "degree {degree} exceeds {MAX_DEGREE}"
            )));
        }
        let n = degree + 1;
        let half_width = (b - a) / 2.0;
        let mid = (a + b) / 2.0;
        let values: Vec<f64> = (0..n)
            .map(|j| {
                let y = (PI * (j as f64 + 0.5) / n as f64).cos();
                f(mid + half_width * y)
            })
            .collect();
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(CkksError::InvalidParameters(format!(
                "function value {v} at a Chebyshev node is not finite"
            )));
        }
        let mut coeffs: Vec<f64> = (0..n)
            .map(|k| {
                let s: f64 = values
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        // Reduce k (j + 1/2) modulo 2n before the cosine to keep its argument
                        // small (the product reaches ~d^2 and would lose digits otherwise).
                        let num = (k * (2 * j + 1)) % (4 * n);
                        v * (PI * num as f64 / (2 * n) as f64).cos()
                    })
                    .sum();
                2.0 * s / n as f64
            })
            .collect();
        coeffs[0] /= 2.0;
        let max = coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        for c in coeffs.iter_mut() {
            if c.abs() <= 1e-14 * max {
                *c = 0.0;
            }
        }
        Self::from_coefficients(coeffs, a, b)
    }

    /// The interpolant of the smallest depth whose maximum error on a dense grid of [a, b]
    /// is at most `max_error`, with degree at most `max_degree`.
    ///
    /// Candidates are d = 2^k - 1 for k = 1, 2, ... (then `max_degree` itself if it is not
    /// of that form): every degree in [2^(k-1), 2^k - 1] costs the same depth k, and the
    /// largest of them is the most accurate, so these are the degrees that use the levels
    /// best. Fails with the best error reached if no candidate meets the tolerance.
    pub fn fit_to_tolerance<F: Fn(f64) -> f64>(
        f: F,
        a: f64,
        b: f64,
        max_error: f64,
        max_degree: usize,
    ) -> Result<Self> {
        check_interval(a, b)?;
        if max_error.is_nan() || max_error <= 0.0 {
            return Err(CkksError::InvalidParameters(format!(
                "tolerance {max_error} must be positive"
            )));
        }
        let max_degree = max_degree.min(MAX_DEGREE);
        let mut candidates = Vec::new();
        let mut d = 1usize;
        while d <= max_degree {
            candidates.push(d);
            d = 2 * d + 1;
        }
        if candidates.last() != Some(&max_degree) {
            candidates.push(max_degree);
        }
        let mut best = f64::INFINITY;
        for d in candidates {
            let p = Self::interpolate(&f, a, b, d)?;
            let err = p.max_error(&f, default_grid(d));
            if err <= max_error {
                return Ok(p);
            }
            best = best.min(err);
        }
        Err(CkksError::InvalidParameters(format!(
            "no Chebyshev approximation of degree <= {max_degree} reaches error {max_error:e} on [{a}, {b}] (best {best:e})"
        )))
    }

    /// The degree d (number of coefficients minus one, trailing zeros included: the depth is
    /// a function of this declared degree).
    pub fn degree(&self) -> usize {
        self.coeffs.len() - 1
    }

    /// The Chebyshev coefficients c_0 .. c_d.
    pub fn coefficients(&self) -> &[f64] {
        &self.coeffs
    }

    /// The interval [a, b].
    pub fn interval(&self) -> (f64, f64) {
        (self.a, self.b)
    }

    /// The affine map y = alpha x + beta sending [a, b] onto [-1, 1].
    pub fn change_of_variable(&self) -> (f64, f64) {
        let w = self.b - self.a;
        (2.0 / w, -(self.a + self.b) / w)
    }

    /// Levels spent on the change of variable: 0 when alpha is an integer (including the
    /// common [-1, 1] and [0, 1]; then y = alpha x + beta is an integer multiplication and a
    /// constant addition, neither of which needs a rescale), otherwise 1 (a constant
    /// multiplication and a rescale). It cannot be folded away in general: the Chebyshev
    /// recurrence must run on values in [-1, 1], so the ciphertext itself (not only its
    /// recorded scale) has to be shrunk, or the scales drift doubly exponentially along the
    /// squarings T_{2n} = 2 T_n^2 - 1.
    pub fn change_of_variable_depth(&self) -> usize {
        let (alpha, _) = self.change_of_variable();
        usize::from(!is_small_integer(alpha))
    }

    /// Levels consumed by the Chebyshev series itself: ceil(log2(d + 1)).
    pub fn chebyshev_depth(&self) -> usize {
        plan::chebyshev_depth(self.degree())
    }

    /// Total levels consumed by [`super::PolynomialEvaluator::evaluate`]: the output is at
    /// `input_level - depth()`.
    pub fn depth(&self) -> usize {
        self.chebyshev_depth() + self.change_of_variable_depth()
    }

    /// Number of ciphertext-ciphertext multiplications (each with a relinearisation) that the
    /// homomorphic evaluation performs: about 2 sqrt(d) + log2(d) for a dense series.
    pub fn ciphertext_multiplications(&self) -> usize {
        plan::Plan::new(&self.coeffs).multiplications()
    }

    /// p(x) in f64 by Clenshaw's recurrence (Clenshaw 1955): b_k = c_k + 2 y b_{k+1} -
    /// b_{k+2}, p = c_0 + y b_1 - b_2, which is backward stable on [-1, 1].
    pub fn evaluate(&self, x: f64) -> f64 {
        let (alpha, beta) = self.change_of_variable();
        clenshaw(&self.coeffs, alpha * x + beta)
    }

    /// Largest |f(x) - p(x)| over `samples` equally spaced points of [a, b] (endpoints
    /// included; at least 2).
    pub fn max_error<F: Fn(f64) -> f64>(&self, f: F, samples: usize) -> f64 {
        let samples = samples.max(2);
        (0..samples)
            .map(|i| {
                let x = self.a + (self.b - self.a) * i as f64 / (samples - 1) as f64;
                (f(x) - self.evaluate(x)).abs()
            })
            .fold(0.0, f64::max)
    }

    /// Smallest and largest value of p on a dense grid of [a, b] (for the caller's range
    /// analysis of the next layer).
    pub fn output_range(&self) -> (f64, f64) {
        let samples = default_grid(self.degree());
        (0..samples).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), i| {
            let x = self.a + (self.b - self.a) * i as f64 / (samples - 1) as f64;
            let v = self.evaluate(x);
            (lo.min(v), hi.max(v))
        })
    }
}

/// Grid size for error checks: dense enough to see the oscillations of a degree-d
/// polynomial (about d extrema) between grid points.
fn default_grid(degree: usize) -> usize {
    (64 * (degree + 1)).max(4097)
}

fn is_small_integer(x: f64) -> bool {
    x.fract() == 0.0 && x.abs() >= 1.0 && x.abs() <= MAX_FREE_INTEGER_FACTOR
}

/// Clenshaw's recurrence for sum_k c_k T_k(y).
pub(crate) fn clenshaw(coeffs: &[f64], y: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    for &c in coeffs.iter().skip(1).rev() {
        let b0 = c + 2.0 * y * b1 - b2;
        b2 = b1;
        b1 = b0;
    }
    coeffs[0] + y * b1 - b2
}

/// Common activation functions, as plain f64 functions to pass to
/// [`ChebyshevApproximation::interpolate`] or [`ChebyshevApproximation::fit_to_tolerance`].
pub mod functions {
    /// max(x, 0).
    pub fn relu(x: f64) -> f64 {
        x.max(0.0)
    }

    /// 1 / (1 + e^-x), written to avoid overflow for large |x|.
    pub fn sigmoid(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    }

    /// Hyperbolic tangent.
    pub fn tanh(x: f64) -> f64 {
        x.tanh()
    }

    /// x for x >= 0, slope * x otherwise.
    pub fn leaky_relu(slope: f64) -> impl Fn(f64) -> f64 + Copy {
        move |x| if x >= 0.0 { x } else { slope * x }
    }

    /// x clamped to [lo, hi].
    pub fn clip(lo: f64, hi: f64) -> impl Fn(f64) -> f64 + Copy {
        move |x| x.max(lo).min(hi)
    }

    /// x * sigmoid(x) (SiLU / swish).
    pub fn silu(x: f64) -> f64 {
        x * sigmoid(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_reproduces_polynomials_exactly() {
        // 3x^3 - x + 0.5 on [-2, 3] is its own degree-3 interpolant.
        let f = |x: f64| 3.0 * x * x * x - x + 0.5;
        let p = ChebyshevApproximation::interpolate(f, -2.0, 3.0, 3).unwrap();
        assert!(p.max_error(f, 1001) < 1e-11, "{}", p.max_error(f, 1001));
        // Higher degrees add (numerically) zero coefficients.
        let p = ChebyshevApproximation::interpolate(f, -2.0, 3.0, 9).unwrap();
        assert!(p.coefficients()[4..].iter().all(|c| c.abs() < 1e-12));
    }

    #[test]
    fn clenshaw_matches_direct_sum() {
        let coeffs = [0.3, -1.2, 0.7, 0.05, -0.4, 0.9];
        for i in 0..=20 {
            let y = -1.0 + i as f64 / 10.0;
            let t = y.clamp(-1.0, 1.0).acos();
            let direct: f64 = coeffs
                .iter()
                .enumerate()
                .map(|(k, c)| c * (k as f64 * t).cos())
                .sum();
            assert!((clenshaw(&coeffs, y) - direct).abs() < 1e-13);
        }
    }

    #[test]
    fn change_of_variable_depth_rules() {
        let p = |a, b| ChebyshevApproximation::from_coefficients(vec![0.0, 1.0], a, b).unwrap();
        assert_eq!(p(-1.0, 1.0).change_of_variable_depth(), 0);
        assert_eq!(p(0.0, 1.0).change_of_variable_depth(), 0);
        assert_eq!(p(-0.25, 0.25).change_of_variable_depth(), 0);
        assert_eq!(p(-8.0, 8.0).change_of_variable_depth(), 1);
        assert_eq!(p(-1.0, 2.0).change_of_variable_depth(), 1);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(ChebyshevApproximation::interpolate(f64::sin, 1.0, 1.0, 3).is_err());
        assert!(ChebyshevApproximation::interpolate(f64::sin, 0.0, f64::NAN, 3).is_err());
        assert!(ChebyshevApproximation::interpolate(f64::ln, -1.0, 1.0, 3).is_err());
        assert!(ChebyshevApproximation::from_coefficients(vec![], 0.0, 1.0).is_err());
        assert!(
            ChebyshevApproximation::fit_to_tolerance(functions::relu, -1.0, 1.0, 1e-9, 63).is_err()
        );
    }
}
