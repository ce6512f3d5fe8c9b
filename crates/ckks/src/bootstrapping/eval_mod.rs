//! EvalMod: t / q_0 = m / q_0 + I  ->  sin(2 pi t / q_0) ~ 2 pi m / q_0, removing the
//! multiple of q_0 that ModRaise added. The sine is the cosine shifted by a quarter period,
//! interpolated on a range 2^r times narrower and brought back by r double-angle steps
//! cos 2a = 2 cos^2 a - 1 (Han-Ki, "Better bootstrapping for approximate homomorphic
//! encryption", CT-RSA 2020, Sec. 4).

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
        Ok(Self {
            cosine,
            double_angle: bp.double_angle,
        })
    }

    /// The plain function the circuit computes, for precision checks: sin(2 pi k y).
    #[cfg(test)]
    pub(crate) fn reference(&self, y: f64) -> f64 {
        let mut c = self.cosine.evaluate(y);
        for _ in 0..self.double_angle {
            c = 2.0 * c * c - 1.0;
        }
        c
    }

    /// sin(2 pi k y) slot-wise; the input's scale should be close to its level's prime.
    pub(crate) fn evaluate(
        &self,
        eval: &Evaluator,
        poly: &PolynomialEvaluator,
        ct: &Ciphertext,
        rlk: &RelinearizationKey,
    ) -> Result<Ciphertext> {
        let mut c = poly.evaluate(ct, &self.cosine, rlk, ct.scale())?;
        for _ in 0..self.double_angle {
            let sq = eval.rescale(&eval.square_relin(&c, rlk)?)?;
            c = eval.add_const(&eval.mul_integer(&sq, 2), -1.0)?;
        }
        Ok(c)
    }
}
