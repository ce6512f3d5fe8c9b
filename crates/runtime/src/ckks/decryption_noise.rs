//! Decrypt-side noise: the data owner's protection when decrypted results,
//! or actions that reveal them, reach another party.
//!
//! A CKKS decryption is `m + e`, and `e` depends on the secret key: Li and
//! Micciancio (EUROCRYPT 2021) recover the key from a few such results and
//! the ciphertexts they came from, which the model owner holds. The defence
//! is to add fresh noise to a result before it is released, sized from the
//! result's own error (OpenFHE's `NOISE_FLOODING_DECRYPT` follows the same
//! principle, with an error estimated beforehand). Here the error is
//! estimated from the decoded slots' imaginary parts: heman's messages are
//! real, so an imaginary part is pure error, and the real and imaginary parts
//! of a slot's error have the same distribution (the error polynomial is
//! real). Each ciphertext gives `N/2` such samples.
//!
//! The noise is derived from a key and the ciphertext's bytes, so decrypting
//! one ciphertext twice releases the same values: repeated releases cannot
//! be averaged. The sizing is heuristic (a multiple of the estimated error),
//! as the model owner's default flooding is: the provable sizing of Li,
//! Micciancio, Schultz and Sorrell (CRYPTO 2022) would need about 40 more
//! bits of precision than the parameters have (docs/SECURITY.md).

use heman_ckks::{Ciphertext, CkksParameters, Complex64, Decryptor, Encoder};
use heman_compiler::ckks::SlotLayout;
use heman_model::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::error::{Result, RuntimeError};

/// What decrypt-side noise did to a result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReleaseNoise {
    /// The estimated standard deviation of the decryption's error, per
    /// output value (from the imaginary parts).
    pub estimated_error: f64,
    /// The standard deviation of the Gaussian added to every value.
    pub added: f64,
}

/// Decrypts ciphertexts laid out as `layout` into a tensor of `shape`, then
/// adds to every value a Gaussian of `2^factor_log2` times the estimated
/// decryption error, drawn from a generator seeded with `seed` (derive it
/// from a secret and the ciphertexts' bytes: same ciphertexts, same noise).
pub fn decrypt_tensor_for_release(
    params: &CkksParameters,
    decryptor: &Decryptor,
    (layout, shape): (&SlotLayout, &[usize]),
    cts: &[Ciphertext],
    factor_log2: f64,
    seed: [u8; 32],
) -> Result<(Tensor, ReleaseNoise)> {
    super::client::check_count(layout, cts)?;
    if !factor_log2.is_finite() {
        return Err(RuntimeError::Input(format!(
            "decryption noise factor 2^{factor_log2} is not a number"
        )));
    }
    let encoder = Encoder::new(params);
    let slots = cts
        .iter()
        .map(|ct| Ok(encoder.decode_complex(&decryptor.decrypt(ct)?)))
        .collect::<Result<Vec<Vec<Complex64>>>>()?;
    let estimated_error = imaginary_rms(&slots);
    let added = estimated_error * factor_log2.exp2();
    let mut rng = ChaCha20Rng::from_seed(seed);
    let real: Vec<Vec<f64>> = slots
        .iter()
        .map(|cs| {
            cs.iter()
                .map(|c| c.re + added * standard_normal(&mut rng))
                .collect()
        })
        .collect();
    let noise = ReleaseNoise {
        estimated_error,
        added,
    };
    Ok((Tensor::new(shape.to_vec(), layout.unpack(&real)), noise))
}

/// The root mean square of the slots' imaginary parts: the error's
/// standard deviation per real value.
fn imaginary_rms(slots: &[Vec<Complex64>]) -> f64 {
    let (sum, count) = slots
        .iter()
        .flatten()
        .fold((0.0, 0usize), |(s, n), c| (s + c.im * c.im, n + 1));
    (sum / count.max(1) as f64).sqrt()
}

/// A standard normal sample (Box-Muller). Floating-point timing is no
/// concern here: the noise protects the key, not itself, and its seed is
/// fresh per ciphertext.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 - u lies in (0, 1]: its logarithm is finite.
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_estimate_is_the_imaginary_spread() {
        let slots = vec![vec![Complex64::new(1.0, 0.5), Complex64::new(2.0, -0.5)]];
        assert!((imaginary_rms(&slots) - 0.5).abs() < 1e-12);
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let draws: Vec<f64> = (0..20000).map(|_| standard_normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
