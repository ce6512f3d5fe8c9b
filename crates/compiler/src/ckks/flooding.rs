//! Sizing of the noise flooding applied to output ciphertexts before they
//! leave the model owner (model-owner privacy: an output's randomness and
//! noise should say nothing about the weights that shaped them).
//!
//! Li, Micciancio, Schultz and Sorrell, "Securing Approximate Homomorphic
//! Encryption Using Differential Privacy" (CRYPTO 2022, section 4.4): Gaussian
//! flooding of standard deviation `sigma = sqrt(24 N a) 2^(s/2) B` hides noise
//! bounded by `B` (coefficient domain) over `a` decryptions with `s` bits of
//! statistical security (any adversary succeeds with probability at most
//! 2^-s), by a Rényi-divergence argument instead of statistical distance
//! (which would need 2^s B).
//!
//! The flooded output decrypts with about `sigma sqrt(N/2) / scale` more error
//! per slot, so `s` costs `s/2 + log2 sqrt(24 N a)` bits of output precision
//! above the computation's own noise. Measured on HE-MAN's models at scales of
//! 2^28 to 2^31, the output noise `B` is 2^15 to 2^20, about 2^-11 of the scale
//! (see `heman keyparams`): s = 40 would need a flooding far above the scale,
//! destroying the output. So heman offers two sizings: flooding at the noise
//! bound (the default: the output's noise is drowned in fresh Gaussian noise
//! of its own size, at a cost of a few bits of precision, without a provable
//! `s`), or a requested `s`, refused with the precision it would need when the
//! parameters cannot carry it.

use serde::{Deserialize, Serialize};

use crate::error::{CompileError, Result};

/// Bits by which the measured output noise is raised to serve as the bound
/// `B` of the statistical sizing: the measurement covers a few calibration
/// inputs, the bound must hold for all inputs.
pub const NOISE_MARGIN_BITS: f64 = 2.0;

/// `log2 a` of the statistical sizing: decryptions covered (output
/// ciphertexts summed over inferences). The server's per-key query budget
/// (`--queries-per-key`) defaults to it; new keys do not reset what earlier
/// answers taught, since the secret they protect is the weights.
pub const DECRYPTIONS_LOG2: u32 = 10;

/// Bits of precision, relative to the largest calibrated output, that the
/// flooded output must keep (the argmax of logits a few percent apart).
pub const KEPT_PRECISION_BITS: f64 = 8.0;

/// How large the flooding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FloodingTarget {
    /// Gaussian of deviation the measured output noise bound.
    NoiseBound,
    /// The LMSS22 sizing for `s` bits of statistical security.
    Statistical(u32),
}

/// The flooding of every output ciphertext, recorded in keyparams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFlooding {
    /// The sizing chosen.
    pub target: FloodingTarget,
    /// `log2` of the largest coefficient-domain output noise measured by an
    /// encrypted dry run on calibration inputs.
    pub measured_noise_log2: f64,
    /// `log2 sigma` of the Gaussian added to every output coefficient.
    pub sigma_log2: f64,
    /// The LMSS22 statistical security `sigma` gives for `B` = measured noise
    /// raised by [`NOISE_MARGIN_BITS`] and `a` = 2^[`DECRYPTIONS_LOG2`]
    /// (negative: no provable hiding).
    pub statistical_security: f64,
    /// Expected added error per output slot, in output units.
    pub slot_error: f64,
}

/// `log2 sqrt(24 N a)`, the LMSS22 factor beyond `2^(s/2) B`.
fn lmss22_log2(log_n: u32) -> f64 {
    0.5 * (24f64.log2() + log_n as f64 + DECRYPTIONS_LOG2 as f64)
}

impl OutputFlooding {
    /// The flooding for `target`, for outputs of measured noise
    /// `measured_noise` (largest |coefficient|) at scale 2^`log_scale` in a
    /// ring of 2^`log_n`, whose values reach `output_max` in magnitude.
    /// Refuses a statistical target whose flooding would leave fewer than
    /// [`KEPT_PRECISION_BITS`] bits of the output.
    pub fn size(
        target: FloodingTarget,
        log_n: u32,
        log_scale: f64,
        measured_noise: f64,
        output_max: f64,
    ) -> Result<Self> {
        let measured_noise_log2 = measured_noise.max(1.0).log2();
        let bound_log2 = measured_noise_log2 + NOISE_MARGIN_BITS;
        let sigma_log2 = Self::sigma_log2_for(target, log_n, measured_noise);
        let slot_error = Self::slot_error_for(target, log_n, log_scale, measured_noise);
        let allowed = Self::allowed_slot_error(output_max);
        if let FloodingTarget::Statistical(s) = target {
            if slot_error > allowed {
                return Err(CompileError::Parameters(format!(
                    "flooding for {s} bits of statistical security (LMSS22) needs sigma = 2^{sigma_log2:.1} over an output noise of 2^{measured_noise_log2:.1} at scale 2^{log_scale:.0}: it would add an error of about {slot_error:.3e} per output (outputs reach {output_max:.3}), {:.1} bits more precision than these parameters have; choose a smaller --flooding-security or the default flooding at the noise bound",
                    (slot_error / allowed).log2()
                )));
            }
        }
        Ok(Self {
            target,
            measured_noise_log2,
            sigma_log2,
            statistical_security: 2.0 * (sigma_log2 - bound_log2 - lmss22_log2(log_n)),
            slot_error,
        })
    }

    /// `log2 sigma` of the flooding for `target` over a measured output
    /// noise (largest |coefficient|) in a ring of 2^`log_n`.
    pub fn sigma_log2_for(target: FloodingTarget, log_n: u32, measured_noise: f64) -> f64 {
        let measured_noise_log2 = measured_noise.max(1.0).log2();
        match target {
            FloodingTarget::NoiseBound => measured_noise_log2,
            FloodingTarget::Statistical(s) => {
                lmss22_log2(log_n) + s as f64 / 2.0 + measured_noise_log2 + NOISE_MARGIN_BITS
            }
        }
    }

    /// The error that flooding adds to each output slot at scale
    /// 2^`log_scale`: a coefficient Gaussian of deviation sigma reaches the
    /// real part of each slot with deviation sigma sqrt(N / 2).
    pub fn slot_error_for(
        target: FloodingTarget,
        log_n: u32,
        log_scale: f64,
        measured_noise: f64,
    ) -> f64 {
        (Self::sigma_log2_for(target, log_n, measured_noise) + (log_n as f64 - 1.0) / 2.0
            - log_scale)
            .exp2()
    }

    /// The largest error per slot that keeps [`KEPT_PRECISION_BITS`] of
    /// outputs reaching `output_max`.
    pub fn allowed_slot_error(output_max: f64) -> f64 {
        output_max.max(1.0) * (-KEPT_PRECISION_BITS).exp2()
    }

    /// The standard deviation of the flooding Gaussian.
    pub fn sigma(&self) -> f64 {
        self.sigma_log2.exp2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistical_sizing_follows_lmss22() {
        // N = 2^14, a = 2^10, s = 20, measured 2^8 (B = 2^10), scale 2^50:
        // sqrt(24 * 2^24) = 2^14.29, so sigma = 2^(14.29 + 10 + 10).
        let f =
            OutputFlooding::size(FloodingTarget::Statistical(20), 14, 50.0, 256.0, 10.0).unwrap();
        assert!((f.sigma_log2 - 34.29).abs() < 0.01, "{}", f.sigma_log2);
        assert!((f.statistical_security - 20.0).abs() < 1e-9);
        assert!((f.sigma() / 2f64.powf(34.29) - 1.0).abs() < 0.01);
        // slot error 2^(34.29 + 6.5 - 50) = 2^-9.2.
        assert!(
            (f.slot_error.log2() + 9.21).abs() < 0.01,
            "{}",
            f.slot_error
        );
    }

    #[test]
    fn unaffordable_security_is_refused_with_the_missing_precision() {
        // HE-MAN's cryptonets at scale 2^30: output noise about 2^20.
        let e = OutputFlooding::size(
            FloodingTarget::Statistical(40),
            14,
            30.0,
            2f64.powi(20),
            20.0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bits more precision"), "{e}");
    }

    #[test]
    fn noise_bound_flooding_costs_a_few_bits_and_proves_nothing() {
        let f = OutputFlooding::size(FloodingTarget::NoiseBound, 14, 30.0, 2f64.powi(20), 20.0)
            .unwrap();
        assert_eq!(f.sigma_log2, 20.0);
        assert!(f.statistical_security < 0.0);
        assert!(f.slot_error < 0.1, "{}", f.slot_error);
    }
}
