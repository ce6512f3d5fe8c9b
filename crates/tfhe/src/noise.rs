//! Noise of the ciphertexts a network computes on, from tfhe-rs's published
//! noise formulas for its Gaussian presets, and the probability that a
//! bootstrap reads a value other than the one encrypted.
//!
//! All variances are fractions of the torus squared (the torus is
//! `[0, 2^64)` scaled to `[0, 1)`). A bootstrap's input is a weighted sum
//! `sum_i w_i c_i` of ciphertexts; its noise when the bootstrap rotates the
//! lookup table is
//!
//! ```text
//! var = sum_i w_i^2 var(c_i) + var(keyswitch) + var(modulus switch to 2N)
//! ```
//!
//! (Chillotti, Joye, Paillier, "Programmable bootstrapping enables efficient
//! homomorphic inference of deep neural networks", CSCML 2021, section 3: the
//! weights' 2-norm scales the input noise, the last two terms are fixed).

use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::noise_formulas::centered_mean_shifted_modulus_switch::centered_binary_shifted_modulus_switch_additive_variance_impl;
use tfhe::core_crypto::commons::noise_formulas::lwe_keyswitch::keyswitch_additive_variance_132_bits_security_gaussian_impl;
use tfhe::core_crypto::commons::noise_formulas::lwe_programmable_bootstrap::pbs_variance_132_bits_security_gaussian_fft_mul_impl;

use crate::params::{std_dev, KeyChoice, Preset};

/// The torus modulus as a float.
const MODULUS: f64 = 18446744073709551616.0;
/// Mantissa bits of the f64 FFT the bootstrap multiplies with.
const FFT_MANTISSA: f64 = 53.0;

/// Noise variances (fractions of the torus squared) of a preset's fresh
/// encryptions and of each step of a bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseModel {
    /// A fresh encryption by the data owner under the big key.
    pub fresh: f64,
    /// A fresh encryption by the data owner under the small key (the
    /// preset's LWE noise, as in the keyswitching key).
    pub fresh_small: f64,
    /// The output of a bootstrap.
    pub bootstrap: f64,
    /// Added by the keyswitch before a bootstrap.
    pub keyswitch: f64,
    /// Added by the modulus switch to 2N before the blind rotation.
    pub modulus_switch: f64,
    /// A public-key encryption of zero under the big key (before any
    /// flooding): `k N` products of binary randomness with GLWE noise on
    /// each side, `k N * fresh` (see [`crate::OutputPublicKey`]).
    pub public_zero: f64,
}

impl NoiseModel {
    /// The model of `preset`, from its noise distributions and decomposition
    /// parameters.
    pub fn of(preset: Preset) -> Self {
        let p = preset.parameters();
        let (n_small, k, big_n) = (
            p.lwe_dimension.0 as f64,
            p.glwe_dimension.0 as f64,
            p.polynomial_size.0 as f64,
        );
        let fresh = std_dev(p.glwe_noise_distribution).powi(2);
        let bootstrap = pbs_variance_132_bits_security_gaussian_fft_mul_impl(
            n_small,
            k,
            big_n,
            2f64.powi(p.pbs_base_log.0 as i32),
            p.pbs_level.0 as f64,
            FFT_MANTISSA,
            MODULUS,
        );
        let keyswitch = keyswitch_additive_variance_132_bits_security_gaussian_impl(
            k * big_n,
            n_small,
            2f64.powi(p.ks_base_log.0 as i32),
            p.ks_level.0 as f64,
            MODULUS,
            MODULUS,
        );
        let modulus_switch = centered_binary_shifted_modulus_switch_additive_variance_impl(
            n_small,
            MODULUS,
            2.0 * big_n,
        );
        Self {
            fresh,
            fresh_small: std_dev(p.lwe_noise_distribution).powi(2),
            bootstrap,
            keyswitch,
            modulus_switch,
            public_zero: k * big_n * fresh,
        }
    }

    /// A fresh encryption under `key`.
    pub fn fresh_under(&self, key: KeyChoice) -> f64 {
        match key {
            KeyChoice::Big => self.fresh,
            KeyChoice::Small => self.fresh_small,
        }
    }

    /// Noise at the blind rotation of a bootstrap whose input, under `key`,
    /// has variance `input` (a big-key input is keyswitched first).
    pub fn at_rotation(&self, input: f64, key: KeyChoice) -> f64 {
        let keyswitch = match key {
            KeyChoice::Big => self.keyswitch,
            KeyChoice::Small => 0.0,
        };
        input + keyswitch + self.modulus_switch
    }
}

/// Probability that Gaussian noise of variance `variance` moves a value by
/// at least `half_width` (both as fractions of the torus) in either direction.
pub fn error_probability(half_width: f64, variance: f64) -> f64 {
    if variance <= 0.0 {
        return 0.0;
    }
    erfc(half_width / (2.0 * variance).sqrt())
}

/// log2 of [`error_probability`], finite even where the probability
/// underflows an f64 (far below 2^-1000).
pub fn log2_error_probability(half_width: f64, variance: f64) -> f64 {
    if variance <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let z = half_width / (2.0 * variance).sqrt();
    log_erfc(z) / std::f64::consts::LN_2
}

/// The complementary error function, fractional error below 1.2e-7
/// everywhere (Chebyshev fit of Press et al., Numerical Recipes, 6.2).
pub fn erfc(x: f64) -> f64 {
    let value = log_erfc(x.abs()).exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

/// `ln erfc(x)` for `x >= 0`.
fn log_erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    t.ln() + poly
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (3.0, 2.209049699858544e-5),
            (-1.0, 1.8427007929497148),
        ] {
            assert!((erfc(x) - expected).abs() <= 2e-7 * expected, "erfc({x})");
        }
        // erfc(10) = 2.088e-45
        assert!(
            (log2_error_probability(10.0 * 2f64.sqrt(), 1.0) - (2.088e-45f64).log2()).abs() < 1e-3
        );
    }

    /// At the preset's nominal message size and its maximum weight norm, the
    /// model must reproduce the failure probability tfhe-rs states (2^-128),
    /// within a few bits.
    #[test]
    fn model_reproduces_the_presets_failure_probability() {
        for preset in Preset::ALL {
            let model = NoiseModel::of(preset);
            let nu = preset.max_noise_level() as f64;
            let variance = model.at_rotation(nu * nu * model.bootstrap, KeyChoice::Big);
            // Values occupy boxes of 1 / (2 * values) with a padding bit.
            let half_box = 0.5 / (2.0 * preset.nominal_values() as f64);
            let log2_p = log2_error_probability(half_box, variance);
            assert!(
                (log2_p - preset.log2_p_fail()).abs() < 8.0,
                "{}: model gives 2^{log2_p:.1}, tfhe-rs states 2^{:.1}",
                preset.name(),
                preset.log2_p_fail()
            );
        }
    }
}
