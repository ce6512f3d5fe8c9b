//! The model owner's side of a TFHE model: the compiled plan, the server
//! key checked and expanded, and inference on fresh encryptions only, whose
//! outputs the executor re-randomises and floods.

use std::path::{Path, PathBuf};

use heman_artifacts::tfhe::{evaluation_keys_from_bytes, Ciphertexts, CompiledModel};
use heman_artifacts::Role;
use heman_compiler::tfhe::{Noise, NoiseProfile};
use heman_model::Tensor;
use heman_runtime::tfhe::Executor;
use heman_tfhe::{SeededLweVector, ServerKey};
use rand::SeedableRng;

use crate::error::{refused, runtime_error, BackendError, Result};
use crate::interface::{Backend, EvaluationKeys, Inference, ModelOwner, StageTiming, TensorInfo};

/// A loaded TFHE model.
pub struct TfheModel {
    model: CompiledModel,
    fingerprint: [u8; 32],
    keyparams: String,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
    origin: PathBuf,
}

/// Loads a compiled model file.
pub fn load(bytes: &[u8], origin: &Path) -> Result<TfheModel> {
    let model = CompiledModel::from_bytes(bytes, origin)?;
    let fingerprint = model.keyparams.fingerprint(origin)?;
    let keyparams = serde_json::to_string(&model.keyparams)
        .map_err(|e| BackendError::Internal(format!("keyparams as JSON: {e}")))?;
    Ok(TfheModel {
        input: super::tensor_info(&model.keyparams),
        outputs: crate::input::output_infos(
            &model.keyparams.outputs,
            model.keyparams.output.calibrated_range,
        ),
        model,
        fingerprint,
        keyparams,
        origin: origin.to_path_buf(),
    })
}

impl TfheModel {
    /// The input ciphertexts of a request: fresh encryptions only (the
    /// seeded form `heman encrypt` writes), since the plan's noise budget
    /// starts from a fresh encryption's noise.
    fn fresh_input(&self, input: &[u8], origin: &Path) -> Result<SeededLweVector> {
        crate::registry::check_kind(input, origin, &super::TFHE, Role::Ciphertexts)
            .map_err(|e| e.context("input ciphertext refused"))?;
        let cts = Ciphertexts::from_bytes(
            input,
            origin,
            self.model.keyparams.preset,
            &self.fingerprint,
        )
        .map_err(refused("input ciphertext"))?;
        match cts {
            Ciphertexts::Seeded(seeded) => Ok(seeded),
            _ => Err(crate::error::not_a_fresh_input()),
        }
    }
}

impl ModelOwner for TfheModel {
    fn backend(&self) -> &'static dyn Backend {
        &super::TFHE
    }

    fn keyparams(&self) -> &str {
        &self.keyparams
    }

    fn key_fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    fn check_key_header(&self, bytes: &[u8], origin: &Path) -> Result<()> {
        crate::registry::check_key_header(
            bytes,
            origin,
            &super::TFHE,
            heman_artifacts::tfhe::expected(Role::EvaluationKeys, Some(&self.fingerprint)),
        )
    }

    /// Parses and expands the server key (its masks regenerated, its
    /// bootstrapping key moved to the Fourier domain).
    fn parse_keys(&self, bytes: &[u8], origin: &Path) -> Result<EvaluationKeys> {
        self.check_key_header(bytes, origin)?;
        let compressed = evaluation_keys_from_bytes(
            bytes,
            origin,
            self.model.keyparams.preset,
            &self.fingerprint,
        )
        .map_err(refused("evaluation keys"))?;
        let key = compressed.expand();
        let memory = key.expanded_size();
        Ok(EvaluationKeys::new(key, memory))
    }

    /// A server key serves every plan of its preset.
    fn check_keys(&self, keys: &EvaluationKeys) -> Result<()> {
        keys.get::<ServerKey>().map(|_| ())
    }

    fn input_masks_digest(&self, input: &[u8], origin: &Path) -> Result<[u8; 32]> {
        let seed = self.fresh_input(input, origin)?.seed();
        crate::input::masks_digest(b"tfhe", [Ok(seed.to_le_bytes())].into_iter())
    }

    fn infer(
        &self,
        keys: &EvaluationKeys,
        input: &[u8],
        origin: &Path,
        on_stage: &mut dyn FnMut(&StageTiming),
    ) -> Result<Inference> {
        let key: &ServerKey = keys.get()?;
        let seeded = self.fresh_input(input, origin)?;
        // The executor re-randomises and floods the outputs before they leave.
        let executor = Executor::new(key, &self.model.plan).map_err(runtime_error)?;
        let (out, timings) = executor
            .run_fresh(&seeded, |t| {
                on_stage(&StageTiming {
                    name: t.name.clone(),
                    seconds: t.seconds,
                })
            })
            .map_err(runtime_error)?;
        Ok(Inference {
            output: Ciphertexts::Expanded(out).to_bytes(self.fingerprint),
            stages: timings
                .into_iter()
                .map(|t| StageTiming {
                    name: t.name,
                    seconds: t.seconds,
                })
                .collect(),
        })
    }

    /// The quantised model: the integers the encrypted run computes, noise
    /// aside (or drawn from the noise model, misreads included).
    fn simulate(&self, x: &Tensor, noise: Option<u64>) -> Result<Vec<Tensor>> {
        let x = crate::input::fit_input(x, &self.input, "simulated input")?;
        let plan = &self.model.plan;
        let simulated = match noise {
            None => plan.evaluate::<rand_chacha::ChaCha8Rng>(&x, None),
            Some(seed) => {
                let profile = NoiseProfile::of(plan);
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                plan.evaluate(
                    &x,
                    Some(Noise {
                        profile: &profile,
                        rng: &mut rng,
                    }),
                )
            }
        }
        .map_err(|e| {
            BackendError::Internal(format!("simulating {}: {e}", self.origin.display()))
        })?;
        Ok(heman_compiler::graph::split_outputs(
            &simulated,
            &plan.outputs,
        ))
    }

    fn stage_count(&self) -> usize {
        self.model.plan.stages.len()
    }

    fn describe(&self) -> Vec<String> {
        super::describe::model(&self.model)
    }
}
