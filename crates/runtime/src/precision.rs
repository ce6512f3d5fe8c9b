//! The model owner's choice among a plan's parameter sets, by measurement:
//! the smallest keys whose outputs, flooded as asked, keep
//! [`KEPT_PRECISION_BITS`](heman_compiler::flooding::KEPT_PRECISION_BITS)
//! of the largest calibrated output
//! ([`heman_compiler::parameters::choose_by_precision`] decides; encrypted
//! dry runs under throw-away keys measure).

use heman_compiler::flooding::{FloodingTarget, OutputFlooding};
use heman_compiler::parameters::{choose_by_precision, PrecisionChoice};
use heman_compiler::pipeline::CompiledCkks;
use heman_model::Tensor;
use tracing::info;

use crate::error::Result;
use crate::flooding::{measure_output_noise, OutputNoise};

/// What [`choose_parameters`] found.
#[derive(Debug, Clone)]
pub struct ParameterCheck {
    /// The choice and every dry run behind it (indices into the compiled
    /// model's candidates).
    pub choice: PrecisionChoice,
    /// The largest error per output slot allowed.
    pub allowed: f64,
    /// The chosen parameters' output noise.
    pub noise: OutputNoise,
}

/// Measures the candidates of `compiled` that [`choose_by_precision`] asks
/// for on `inputs` and switches `compiled` to the chosen one. `output_max`
/// is the largest calibrated output magnitude, `target` the flooding the
/// outputs will get; `on_measure` is told each dry run as it starts (for
/// progress).
pub fn choose_parameters(
    compiled: &mut CompiledCkks,
    inputs: &[Tensor],
    output_max: f64,
    target: FloodingTarget,
    mut on_measure: impl FnMut(usize),
) -> Result<ParameterCheck> {
    let allowed = OutputFlooding::allowed_slot_error(output_max);
    let mut noises: Vec<(usize, OutputNoise)> = Vec::new();
    let candidates = compiled.candidates.clone();
    let choice = choose_by_precision(&candidates, allowed, |index| -> Result<f64> {
        let candidate = &candidates[index];
        on_measure(noises.len());
        let params = candidate.build()?;
        let noise = measure_output_noise(&params, &compiled.plan, inputs)?;
        let slot_error = OutputFlooding::slot_error_for(
            target,
            params.log_n(),
            noise.scale.log2(),
            noise.max_coefficient,
        );
        info!(
            log_scale = candidate.log_scale,
            special_primes = candidate.p_bits.len(),
            key_limbs = candidate.switching_key_limbs(),
            noise_log2 = noise.max_coefficient.log2(),
            slot_error,
            allowed,
            "parameter candidate measured"
        );
        noises.push((index, noise));
        Ok(slot_error)
    })?;
    let noise = noises
        .iter()
        .find(|(i, _)| *i == choice.chosen)
        .map(|(_, n)| *n)
        .expect("the chosen candidate was measured");
    compiled.use_parameters(candidates[choice.chosen].clone())?;
    Ok(ParameterCheck {
        choice,
        allowed,
        noise,
    })
}
