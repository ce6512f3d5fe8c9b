//! Homomorphic evaluation: arithmetic, multiplication with relinearisation, rescaling,
//! hybrid key switching and (hoisted) rotations.

mod arith;
mod keyswitch;
mod mult;
mod rescale;
mod rotation;
mod weighted_sum;

pub use keyswitch::Decomposed;
pub use weighted_sum::WeightedTerms;

use crate::error::{CkksError, Result};
use crate::params::CkksParameters;
use crate::plaintext::Ciphertext;

/// Evaluates operations on ciphertexts. Holds no key: keys are passed to the operations
/// that need them, so one evaluator serves any key set of its parameters.
#[derive(Clone)]
pub struct Evaluator {
    params: CkksParameters,
}

/// Relative tolerance when comparing scales (they are tracked as f64 products/quotients).
const SCALE_TOLERANCE: f64 = 1e-9;

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &CkksParameters) -> Self {
        Self {
            params: params.clone(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &CkksParameters {
        &self.params
    }

    pub(crate) fn check_scales(a: f64, b: f64) -> Result<()> {
        if ((a - b) / a.max(b)).abs() > SCALE_TOLERANCE {
            Err(CkksError::ScaleMismatch(a.log2(), b.log2()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_fingerprint(&self, fp: &[u8; 32]) -> Result<()> {
        if *fp != self.params.fingerprint() {
            Err(CkksError::FingerprintMismatch)
        } else {
            Ok(())
        }
    }

    /// Drops `levels` primes from the top of the ciphertext without changing the message
    /// or scale (modulus switching by truncation, exact in RNS).
    pub fn drop_level(&self, ct: &Ciphertext, levels: usize) -> Result<Ciphertext> {
        if levels > ct.level {
            return Err(CkksError::InvalidLevel {
                requested: levels,
                max: ct.level,
            });
        }
        self.drop_to_level(ct, ct.level - levels)
    }

    /// Brings the ciphertext down to `level` (<= its current level) by truncation.
    pub fn drop_to_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        if level > ct.level {
            return Err(CkksError::InvalidLevel {
                requested: level,
                max: ct.level,
            });
        }
        let limbs = level + 1;
        Ok(Ciphertext {
            parts: ct.parts.iter().map(|p| p.prefix(limbs)).collect(),
            level,
            scale: ct.scale,
            seed: None,
        })
    }
}
