//! EvalMod: t / q_0 = m / q_0 + I  ->  sin(2 pi t / q_0) ~ 2 pi m / q_0, removing the
//! multiple of q_0 that ModRaise added. The sine is the cosine shifted by a quarter period,
//! interpolated on a range 2^r times narrower and brought back by r double-angle steps
//! cos 2a = 2 cos^2 a - 1 (Han-Ki, "Better bootstrapping for approximate homomorphic
//! encryption", CT-RSA 2020, Sec. 4), then optionally straightened by the arcsine.

use super::BootstrappingParameters;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::keys::RelinearizationKey;
use crate::plaintext::Ciphertext;
use crate::polynomial::{ChebyshevApproximation, PolynomialEvaluator};
use std::f64::consts::PI;

/// The EvalMod circuit for inputs y = (t / q_0) / k in [-1, 1].
#[derive(Debug, Clone)]
pub(crate) struct EvalMod {
    cosine: ChebyshevApproximation,
    double_angle: u32,
    /// g(v) = G arcsin(v / G) on [-1, 1], applied to v = G sin(2 pi x) for the integer gain
    /// G: the output is G * 2 pi (x - I).
    arcsine: Option<(i64, ChebyshevApproximation)>,
}

impl EvalMod {
    pub(crate) fn new(bp: &BootstrappingParameters) -> Result<Self> {
        let k = bp.k as f64;
        let r = 2f64.powi(bp.double_angle as i32);
        let cosine = ChebyshevApproximation::interpolate(
            |y| (2.0 * PI * (k * y - 0.25) / r).cos(),
            -1.0,
            1.0,
            bp.cosine_degree,
        )?;
        let arcsine = if bp.arcsine_degree == 0 {
            None
        } else {
            let g = bp.arcsine_gain();
            let gf = g as f64;
            let p = ChebyshevApproximation::interpolate(
                |v| gf * (v / gf).clamp(-1.0, 1.0).asin(),
                -1.0,
                1.0,
                bp.arcsine_degree,
            )?;
            Some((g, p))
        };
        Ok(Self {
            cosine,
            double_angle: bp.double_angle,
            arcsine,
        })
    }

    /// What the output is multiplied by beyond 2 pi (x - I): the arcsine's gain, or 1.
    pub(crate) fn gain(&self) -> f64 {
        self.arcsine.as_ref().map_or(1.0, |(g, _)| *g as f64)
    }

    /// The plain function the circuit computes, for precision checks: G 2 pi (k y - I) near
    /// the integers I (sin(2 pi k y) without the arcsine).
    #[cfg(test)]
    pub(crate) fn reference(&self, y: f64) -> f64 {
        let mut c = self.cosine.evaluate(y);
        for _ in 0..self.double_angle {
            c = 2.0 * c * c - 1.0;
        }
        match &self.arcsine {
            None => c,
            Some((g, p)) => p.evaluate(*g as f64 * c),
        }
    }

    /// sin(2 pi k y) slot-wise; the input's scale should be close to its level's prime. The
    /// output's scale is the circuit's own divided by `shrink` (>= 1), which divides the
    /// message the following SlotToCoeff reads out by `shrink` at no level: how an
    /// amplified bootstrap gives its amplification back.
    pub(crate) fn evaluate(
        &self,
        eval: &Evaluator,
        poly: &PolynomialEvaluator,
        ct: &Ciphertext,
        rlk: &RelinearizationKey,
        shrink: f64,
    ) -> Result<Ciphertext> {
        // Without the arcsine, the cosine's scale is squared by every double angle: it
        // takes the 2^r-th root of the shrink.
        let cosine_shrink = match self.arcsine {
            Some(_) => 1.0,
            None => shrink.powf(0.5f64.powi(self.double_angle as i32)),
        };
        let mut c = poly.evaluate(ct, &self.cosine, rlk, ct.scale() / cosine_shrink)?;
        for _ in 0..self.double_angle {
            let sq = eval.rescale_owned(eval.square_relin(&c, rlk)?)?;
            c = eval.add_const(&eval.mul_integer(&sq, 2), -1.0)?;
        }
        match &self.arcsine {
            None => Ok(c),
            Some((g, p)) => {
                let v = eval.mul_integer(&c, *g);
                poly.evaluate(&v, p, rlk, v.scale() / shrink)
            }
        }
    }
}
