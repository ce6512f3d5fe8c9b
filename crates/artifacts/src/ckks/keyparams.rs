//! `keyparams.json`: everything the data owner needs to make keys, encrypt
//! inputs and decode outputs, and nothing of the model's weights.

use std::path::Path;

use heman_ckks::CkksParameters;
use heman_compiler::ckks::flooding::OutputFlooding;
use heman_compiler::ckks::parameters::ParameterChoice;
use heman_compiler::ckks::plan::input_level;
use heman_compiler::ckks::{Bootstrapping, Packing, Plan, SlotLayout};
use heman_compiler::graph::OutputTensor;
use serde::{Deserialize, Serialize};

use crate::container::{hex, write_file};
use crate::error::{invalid, io, Result};
use crate::{KEYPARAMS_FORMAT as FORMAT, KEYPARAMS_VERSION as VERSION};

/// The most rotation keys a keyparams file may ask for. Plans use tens to a
/// few hundred; each key is `2 dnum` polynomials over QP (megabytes at
/// N = 2^15), so a file asking for thousands would exhaust the data owner.
pub const MAX_ROTATION_KEYS: usize = 1024;

/// A tensor crossing the encryption boundary and its place in the slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// The graph value's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Where its elements lie in the slots.
    pub layout: SlotLayout,
    /// The [min, max] calibration saw (the parameters hold values in it
    /// with margin; far outside it, results degrade).
    pub calibrated_range: Option<(f64, f64)>,
}

/// The CKKS keyparams.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyParams {
    /// `heman-keyparams`.
    pub format: String,
    /// The keyparams version.
    pub version: u32,
    /// `ckks`.
    pub backend: String,
    /// The security claim.
    pub security: String,
    /// Ring degree N = 2^log_n.
    pub log_n: u32,
    /// Slots per ciphertext, N / 2.
    pub slots: usize,
    /// The ciphertext moduli q_0..q_L and the special primes.
    pub q: Vec<u64>,
    /// The special primes (key switching).
    pub p: Vec<u64>,
    /// The scale is 2^log_scale.
    pub log_scale: u32,
    /// log2 of the whole modulus QP.
    pub log_qp: f64,
    /// The 128-bit table's bound on log2(QP) for this N.
    pub max_log_qp: u32,
    /// The bit sizes that regenerate the moduli.
    pub parameters: ParameterChoice,
    /// Levels the plan consumes.
    pub depth: usize,
    /// The only rotations the plan performs (its bootstrapping circuit's
    /// included): the Galois keys to generate.
    pub rotation_steps: Vec<usize>,
    /// The bootstrapping circuit, when the plan bootstraps: the data owner
    /// then also makes the conjugation key and the circuit's encapsulation
    /// keys, encrypts at the top of the compute levels, and packs the input
    /// replicated every 2^log_slots slots.
    #[serde(default)]
    pub bootstrapping: Option<Bootstrapping>,
    /// How inputs lie in the slots: latency (one input spread over the
    /// slots) or throughput (a batch of up to `slots` inputs, one per slot).
    #[serde(default)]
    pub packing: Packing,
    /// The model's input.
    pub input: TensorSpec,
    /// The model's output.
    pub output: TensorSpec,
    /// The model's outputs, concatenated in `output`, each with the
    /// weightless operators the data owner applies after decryption.
    pub outputs: Vec<OutputTensor>,
    /// The noise flooding every output ciphertext gets before it leaves the
    /// model owner.
    pub output_flooding: OutputFlooding,
    /// SHA-256 of the CKKS parameter set (hex).
    pub params_fingerprint: String,
    /// SHA-256 of the compiled model's plan (hex): binds this file to it.
    pub model_fingerprint: String,
}

impl KeyParams {
    /// The keyparams of `plan`, compiled for `params` (described by
    /// `parameters`), consuming `depth` levels, its outputs flooded as
    /// `output_flooding`; `rotation_steps` are the plan's and its
    /// bootstrapping circuit's.
    pub fn for_plan(
        (params, parameters): (&CkksParameters, ParameterChoice),
        depth: usize,
        (plan, rotation_steps): (&Plan, Vec<usize>),
        input: TensorSpec,
        output: TensorSpec,
        output_flooding: OutputFlooding,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            backend: super::BACKEND.into(),
            security: format!(
                "{}-bit classical, HomomorphicEncryption.org standard table, ternary secret, sigma 3.2",
                parameters.security_bits
            ),
            log_n: params.log_n(),
            slots: params.slots(),
            q: params.q().to_vec(),
            p: params.p().to_vec(),
            log_scale: params.log_scale(),
            log_qp: params.log_qp(),
            max_log_qp: parameters
                .security()
                .ok()
                .and_then(|level| level.max_log_qp(params.log_n()))
                .unwrap_or(0),
            parameters,
            depth,
            rotation_steps,
            bootstrapping: plan.bootstrapping,
            packing: plan.packing,
            input,
            output,
            outputs: plan.outputs.clone(),
            output_flooding,
            params_fingerprint: hex(&params.fingerprint()),
            model_fingerprint: super::files::plan_fingerprint(plan),
        }
    }

    /// Rebuilds the CKKS parameters and checks they are the ones described.
    pub fn ckks_parameters(&self, path: &Path) -> Result<CkksParameters> {
        let params = self
            .parameters
            .build()
            .map_err(|e| invalid(path, format!("parameters: {e}")))?;
        if hex(&params.fingerprint()) != self.params_fingerprint
            || params.q() != self.q
            || params.p() != self.p
        {
            return Err(invalid(
                path,
                "the parameter description does not reproduce its moduli and fingerprint (edited or damaged?)",
            ));
        }
        Ok(params)
    }

    /// The level fresh inputs are encrypted at under `params` (these
    /// keyparams' parameters).
    pub fn input_level(&self, params: &CkksParameters) -> usize {
        input_level(self.bootstrapping.as_ref(), params.max_level())
    }

    /// Slots the layouts use: N/2, or the bootstrapping circuit's (each
    /// vector replicated).
    pub fn layout_slots(&self) -> usize {
        self.bootstrapping
            .map_or(self.slots, |b| 1usize << b.log_slots.min(30))
    }

    /// Reads a keyparams file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        Self::from_json(&bytes, path)
    }

    /// Parses keyparams text read from (or received as) `path`.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let value: Self = crate::parse_keyparams(bytes, super::BACKEND, path)?;
        value.check_shapes(path)?;
        Ok(value)
    }

    /// Refuses what would make the data owner crash or exhaust itself on a
    /// hostile file before anything is generated: a ring outside the
    /// security table's range, slot layouts that do not fit the slots or the
    /// tensors (see [`SlotLayout::check`]), rotation steps that are out of
    /// range, repeated, or more than [`MAX_ROTATION_KEYS`] (each is a key
    /// the data owner makes and sends).
    fn check_shapes(&self, path: &Path) -> Result<()> {
        if !(10..=17).contains(&self.log_n) || self.slots != 1usize << (self.log_n - 1) {
            return Err(invalid(
                path,
                format!("log_n {} with {} slots", self.log_n, self.slots),
            ));
        }
        if let Some(b) = self.bootstrapping {
            if b.log_slots == 0 || b.log_slots + 1 >= self.log_n {
                return Err(invalid(
                    path,
                    format!(
                        "bootstrapping {} slots: between 2 and N/4 = {}",
                        self.layout_slots(),
                        self.slots / 2
                    ),
                ));
            }
            b.check()
                .map_err(|e| invalid(path, format!("bootstrapping: {e}")))?;
        }
        if self.packing == Packing::Throughput {
            let batched = |spec: &TensorSpec| spec.layout.is_batched(self.slots);
            if self.bootstrapping.is_some() || !batched(&self.input) || !batched(&self.output) {
                return Err(invalid(
                    path,
                    "throughput packing with a bootstrapping circuit or a layout other than one ciphertext per element",
                ));
            }
        }
        for (what, spec) in [("input", &self.input), ("output", &self.output)] {
            let elements = spec
                .shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .ok_or_else(|| invalid(path, format!("{what} shape {:?} overflows", spec.shape)))?;
            spec.layout
                .check(self.layout_slots(), elements)
                .map_err(|e| invalid(path, format!("{what} layout: {e}")))?;
            if what == "output" {
                crate::check_outputs(&self.outputs, elements, path)?;
            }
        }
        let steps = &self.rotation_steps;
        if steps.len() > MAX_ROTATION_KEYS
            || steps.windows(2).any(|w| w[0] >= w[1])
            || steps.iter().any(|&s| s == 0 || s >= self.slots)
        {
            return Err(invalid(
                path,
                format!(
                    "rotation steps must be distinct, increasing, in 1..{} and at most {MAX_ROTATION_KEYS}; found {} of them",
                    self.slots,
                    steps.len()
                ),
            ));
        }
        Ok(())
    }

    /// Writes the keyparams file (pretty JSON).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("keyparams serialise");
        write_file(path, &json, false)
    }
}
