//! The model owner's last step: every output ciphertext re-randomised with
//! the data owner's public key and flooded with Gaussian noise (sized by
//! [`heman_compiler::ckks::flooding`]); and the measurement of the output noise
//! that sizes it.

use heman_ckks::{Ciphertext, CkksParameters, Encoder, Encryptor, KeyGenerator};
use heman_compiler::ckks::flooding::NoiseSpread;
use heman_compiler::ckks::simulate::simulate_slots;
use heman_compiler::ckks::Plan;
use heman_model::Tensor;
use rayon::prelude::*;

use heman_compiler::ckks::plan::input_level;

use super::client::{encrypt_tensor_at, InputKey};
use super::executor::{replicated, Executor, PreparedPlan};
use crate::error::Result;

/// Re-randomises and floods every output ciphertext (in parallel).
pub(crate) fn flood_outputs(
    encryptor: &Encryptor,
    cts: Vec<Ciphertext>,
    sigma: f64,
) -> Result<Vec<Ciphertext>> {
    cts.par_iter()
        .map(|ct| Ok(encryptor.rerandomise(ct, sigma)?))
        .collect()
}

/// What an encrypted dry run saw of the output ciphertexts.
#[derive(Debug, Clone)]
pub struct OutputNoise {
    /// The largest |coefficient| of decrypted minus exact output, unscaled.
    pub max_coefficient: f64,
    /// Each input's noise spread (its deviation on the coefficients that
    /// carry it), from which the flooding's bound is drawn
    /// ([`heman_compiler::ckks::flooding::MeasuredNoise::bound`]).
    pub spreads: Vec<NoiseSpread>,
    /// The output ciphertexts' scale.
    pub scale: f64,
    /// The largest error of a decrypted output element (the slots the output
    /// layout reads), in output units. Noise the computation concentrates in
    /// the few slots a small output uses is diluted over all slots in the
    /// coefficient measure; this is what the data owner reads.
    pub max_slot_error: f64,
}

/// The largest coefficient-domain noise of the plan's output ciphertexts on
/// `inputs`, measured by running the plan encrypted under throw-away keys
/// (made here, dropped on return) against its exact slot simulation. Inputs
/// are encrypted with the public key, whose fresh noise is the larger of the
/// two encryptions a data owner may use.
pub fn measure_output_noise(
    params: &CkksParameters,
    plan: &Plan,
    inputs: &[Tensor],
) -> Result<OutputNoise> {
    let mut keygen = KeyGenerator::new(params)?;
    let sk = keygen.gen_secret_key();
    let pk = keygen.gen_public_key(&sk)?;
    let relin = keygen.gen_relin_key(&sk)?;
    let circuit = super::bootstrapping::circuit(params, plan, true)?;
    let steps: Vec<i64> = super::bootstrapping::rotation_steps(plan, circuit.as_ref())
        .iter()
        .map(|&s| s as i64)
        .collect();
    let galois = keygen.gen_galois_keys(&sk, &steps, circuit.is_some())?;
    let encapsulation = match circuit.as_ref().and_then(|c| c.shape().ephemeral_weight) {
        Some(w) => Some(keygen.gen_encapsulation_keys(&sk, w)?),
        None => None,
    };
    let encryptor = Encryptor::new(params, &pk)?;
    let decryptor = heman_ckks::Decryptor::new(params, &sk)?;
    let mut executor = Executor::new(params, &relin, &galois, &pk)?;
    if let Some(c) = &circuit {
        executor = executor.with_bootstrapping(c, encapsulation.as_ref());
    }
    let level = input_level(plan.bootstrapping.as_ref(), params.max_level());
    let prepared = PreparedPlan::new(plan, params, 1 << 28);
    let encoder = Encoder::new(params);
    let mut worst = OutputNoise {
        max_coefficient: 0.0,
        spreads: Vec::with_capacity(inputs.len()),
        scale: params.default_scale(),
        max_slot_error: 0.0,
    };
    for input in inputs {
        let cts = encrypt_tensor_at(
            params,
            InputKey::Public(&encryptor),
            &plan.input_layout,
            input,
            level,
        )?;
        let out = executor.run_unchecked(&prepared, cts, |_| {})?;
        let expected = simulate_slots(plan, input);
        let mut decoded = Vec::with_capacity(out.len());
        let mut errors = Vec::with_capacity(out.len() * params.n());
        for (ct, want) in out.iter().zip(&expected) {
            let pt = decryptor.decrypt(ct)?;
            errors.extend(encoder.coefficient_errors(&pt, &replicated(want, params.slots())));
            worst.scale = ct.scale();
            decoded.push(encoder.decode(&pt));
        }
        let largest = errors.iter().fold(0.0f64, |m, e| m.max(e.abs()));
        worst.max_coefficient = worst.max_coefficient.max(largest);
        worst.spreads.push(NoiseSpread::of(&errors));
        let (got, want) = (
            plan.output_layout.unpack(&decoded),
            plan.output_layout.unpack(&expected),
        );
        for (a, b) in got.iter().zip(&want) {
            worst.max_slot_error = worst.max_slot_error.max((a - b).abs());
        }
    }
    Ok(worst)
}
