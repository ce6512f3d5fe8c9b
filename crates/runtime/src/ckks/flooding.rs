//! The model owner's last step: every output ciphertext re-randomised with
//! the data owner's public key and flooded with Gaussian noise (sized by
//! [`heman_compiler::ckks::flooding`]); and the measurement of the output noise
//! that sizes it.

use heman_ckks::{
    Ciphertext, CkksParameters, Complex64, Encoder, Encryptor, Flooding, KeyGenerator,
};
use heman_compiler::ckks::flooding::{CoefficientNoise, OutputFlooding};
use heman_compiler::ckks::simulate::simulate_packed;
use heman_compiler::ckks::{Packing, Plan};
use heman_model::Tensor;
use rayon::prelude::*;

use heman_compiler::ckks::plan::input_level;

use super::client::{encrypt_slots, InputKey};
use super::executor::{replicated, Executor, PreparedPlan};
use crate::error::Result;

/// Re-randomises and floods every output ciphertext (in parallel).
pub(crate) fn flood_outputs(
    encryptor: &Encryptor,
    cts: Vec<Ciphertext>,
    flooding: &Flooding,
) -> Result<Vec<Ciphertext>> {
    cts.par_iter()
        .map(|ct| Ok(encryptor.rerandomise(ct, flooding)?))
        .collect()
}

/// The flooding keyparams record, as the encryptor draws it.
pub fn flooding_of(recorded: &OutputFlooding) -> Flooding {
    Flooding {
        sigma: recorded.sigma(),
        stride: recorded.stride as usize,
        off_stride_sigma: recorded.off_stride_sigma(),
    }
}

/// What an encrypted dry run saw of the output ciphertexts.
#[derive(Debug, Clone)]
pub struct OutputNoise {
    /// Each input's decrypted minus exact output coefficients, unscaled,
    /// from which the flooding is sized
    /// ([`heman_compiler::ckks::flooding::OutputFlooding::least`]).
    pub coefficients: CoefficientNoise,
    /// The output ciphertexts' scale.
    pub scale: f64,
    /// The largest error of a decrypted output element (the slots the output
    /// layout reads), in output units. Noise the computation concentrates in
    /// the few slots a small output uses is diluted over all slots in the
    /// coefficient measure; this is what the data owner reads.
    pub max_slot_error: f64,
    /// Each stage's output against its exact slot simulation, worst over
    /// the inputs: where a plan loses its precision (a bootstrap, a steep
    /// polynomial, a wide sum).
    pub stages: Vec<StagePrecision>,
}

/// How precise one stage's output was in a dry run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StagePrecision {
    /// The largest |decrypted - exact| over the stage's slots.
    pub max_error: f64,
    /// The largest |exact| over the same slots.
    pub magnitude: f64,
    /// The largest |imaginary part| over the slots: values are real, so
    /// all of it is error, which the data owner does not read but which
    /// the output's coefficients (and so its flooding) carry.
    pub max_imaginary: f64,
}

impl StagePrecision {
    /// Bits of the value's largest magnitude the error leaves:
    /// `log2(magnitude / max_error)` (infinite for an exact value).
    pub fn bits(&self) -> f64 {
        (self.magnitude / self.max_error).log2()
    }

    /// This measurement's worst with `other`'s: the larger error, and the
    /// larger magnitude it is read against.
    fn worst(self, other: Self) -> Self {
        Self {
            max_error: self.max_error.max(other.max_error),
            magnitude: self.magnitude.max(other.magnitude),
            max_imaginary: self.max_imaginary.max(other.max_imaginary),
        }
    }

    /// `got` (decrypted stage output) against `want` (its exact slots).
    fn of(got: &[Vec<Complex64>], want: &[Vec<f64>]) -> Self {
        let mut measured = Self::default();
        for (g, w) in got.iter().zip(want) {
            for (a, b) in g.iter().zip(w.iter().cycle()) {
                measured.max_error = measured.max_error.max((a.re - b).abs());
                measured.magnitude = measured.magnitude.max(b.abs());
                measured.max_imaginary = measured.max_imaginary.max(a.im.abs());
            }
        }
        measured
    }
}

/// Ciphertexts of each stage's output the dry runs decrypt to measure the
/// stage's precision.
const STAGE_CIPHERTEXTS: usize = 64;

/// The dry runs' packed inputs: one per input for a latency plan; for a
/// throughput plan one full batch, the inputs repeated over its slots (a
/// batch's products carry noise from every slot, so a lone input would
/// understate it).
fn dry_run_batches(plan: &Plan, inputs: &[Tensor]) -> Vec<Vec<Vec<f64>>> {
    match plan.packing {
        Packing::Latency => inputs
            .iter()
            .map(|x| plan.input_layout.pack(x.data()))
            .collect(),
        Packing::Throughput => {
            let values: Vec<&[f64]> = (0..packed_inputs(plan, inputs.len()))
                .map(|b| inputs[b % inputs.len()].data())
                .collect();
            vec![plan.input_layout.pack_batch(&values)]
        }
    }
}

/// Inputs one dry run packs: one, or a throughput plan's full batch.
fn packed_inputs(plan: &Plan, inputs: usize) -> usize {
    match plan.packing {
        Packing::Throughput if inputs > 0 => plan.slots,
        _ => 1,
    }
}

/// Every output element of a dry run's decoded slot vectors: the output
/// layout's, for each of the batch's inputs.
fn output_values(plan: &Plan, slots: &[Vec<f64>], batch: usize) -> Vec<f64> {
    match plan.packing {
        Packing::Latency => plan.output_layout.unpack(slots),
        Packing::Throughput => plan.output_layout.unpack_batch(slots, batch).concat(),
    }
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
        coefficients: CoefficientNoise {
            n: params.n(),
            runs: Vec::with_capacity(inputs.len()),
        },
        scale: params.default_scale(),
        max_slot_error: 0.0,
        stages: vec![StagePrecision::default(); plan.stages.len()],
    };
    for packed in dry_run_batches(plan, inputs) {
        let exact = simulate_packed(plan, packed.clone());
        let cts = encrypt_slots(params, InputKey::Public(&encryptor), &packed, level)?;
        let mut decrypted = Ok(());
        let out = executor.run_unchecked(&prepared, cts, |index, output| {
            // A stage's precision from its first ciphertexts: a throughput
            // layer has thousands, all alike.
            let got: Result<Vec<Vec<Complex64>>> = output[..output.len().min(STAGE_CIPHERTEXTS)]
                .par_iter()
                .map(|ct| Ok(encoder.decode_complex(&decryptor.decrypt(ct)?)))
                .collect();
            match got {
                Ok(got) => {
                    let here = StagePrecision::of(&got, &exact[index + 1]);
                    worst.stages[index] = worst.stages[index].worst(here);
                }
                Err(e) => decrypted = Err(e),
            }
        })?;
        decrypted?;
        let expected = exact.last().expect("the input at least");
        let mut decoded = Vec::with_capacity(out.len());
        let mut errors = Vec::with_capacity(out.len() * params.n());
        for (ct, want) in out.iter().zip(expected) {
            let pt = decryptor.decrypt(ct)?;
            errors.extend(encoder.coefficient_errors(&pt, &replicated(want, params.slots())));
            worst.scale = ct.scale();
            decoded.push(encoder.decode(&pt));
        }
        worst.coefficients.runs.push(errors);
        let batch = packed_inputs(plan, inputs.len());
        let (got, want) = (
            output_values(plan, &decoded, batch),
            output_values(plan, expected, batch),
        );
        for (a, b) in got.iter().zip(&want) {
            worst.max_slot_error = worst.max_slot_error.max((a - b).abs());
        }
    }
    Ok(worst)
}
