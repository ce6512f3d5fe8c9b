//! The model owner's side of a simulation: the base backend's model, run in
//! cleartext on cleartext inputs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use heman_artifacts::Role;
use heman_model::Tensor;

use super::files::{self, KeyParams};
use super::Simulation;
use crate::error::{BackendError, Result};
use crate::interface::{
    Backend, EvaluationKeys, Inference, ModelOwner, ServingOptions, StageTiming, TensorInfo,
};

/// A loaded simulation model.
pub struct SimulatedModel {
    simulation: Simulation,
    base: Box<dyn ModelOwner>,
    keyparams: KeyParams,
    keyparams_json: String,
    fingerprint: [u8; 32],
    input: TensorInfo,
    origin: PathBuf,
}

/// Loads a simulation's compiled model file.
pub fn load(
    simulation: &Simulation,
    bytes: &[u8],
    origin: &Path,
    options: ServingOptions,
) -> Result<SimulatedModel> {
    let simulation = *simulation;
    let (keyparams, base) = files::read_model(&simulation, bytes, origin)?;
    let base = simulation.base.load_model(&base, origin, options)?;
    let fingerprint = keyparams.fingerprint(origin)?;
    if fingerprint != base.key_fingerprint() {
        return Err(BackendError::Refused(format!(
            "{}: the keyparams do not belong to the simulated model",
            origin.display()
        )));
    }
    Ok(SimulatedModel {
        simulation,
        input: keyparams.input.clone(),
        keyparams_json: keyparams.to_json()?,
        keyparams,
        base,
        fingerprint,
        origin: origin.to_path_buf(),
    })
}

impl SimulatedModel {
    /// The payload of an input file for this model (the cleartext tensor).
    fn input_payload(&self, input: &[u8], origin: &Path) -> Result<Vec<u8>> {
        files::payload(
            &self.simulation,
            Role::Ciphertexts,
            input,
            origin,
            Some(&self.fingerprint),
        )
    }
}

impl ModelOwner for SimulatedModel {
    fn backend(&self) -> &'static dyn Backend {
        self.simulation.registered()
    }

    fn keyparams(&self) -> &str {
        &self.keyparams_json
    }

    fn key_fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        self.base.outputs()
    }

    fn check_key_header(&self, bytes: &[u8], origin: &Path) -> Result<()> {
        files::payload(
            &self.simulation,
            Role::EvaluationKeys,
            bytes,
            origin,
            Some(&self.fingerprint),
        )
        .map(|_| ())
    }

    /// A simulation's keys are empty: checked, nothing to parse.
    fn parse_keys(&self, bytes: &[u8], origin: &Path) -> Result<EvaluationKeys> {
        self.check_key_header(bytes, origin)?;
        Ok(EvaluationKeys::new((), 0))
    }

    fn check_keys(&self, keys: &EvaluationKeys) -> Result<()> {
        keys.get::<()>().map(|_| ())
    }

    fn input_masks_digest(&self, input: &[u8], origin: &Path) -> Result<[u8; 32]> {
        // A simulated input is cleartext: nothing masks it, and answering
        // one twice reveals nothing the first answer did not.
        let payload = self.input_payload(input, origin)?;
        crate::input::masks_digest(b"simulation", [Ok(payload)].into_iter())
    }

    fn infer(
        &self,
        _: &EvaluationKeys,
        input: &[u8],
        origin: &Path,
        on_stage: &mut dyn FnMut(&StageTiming),
    ) -> Result<Inference> {
        let x = files::tensor_from_bytes(&self.input_payload(input, origin)?, origin)?;
        let start = Instant::now();
        // A fresh draw of the noise per inference, as encryption would give.
        let noise = self.keyparams.noise.then(rand::random::<u64>);
        let y = self.simulate(&x, noise)?;
        let timing = StageTiming {
            name: format!("simulated {}", self.simulation.base.name()),
            seconds: start.elapsed().as_secs_f64(),
        };
        on_stage(&timing);
        Ok(Inference {
            output: files::container(
                &self.simulation,
                Role::Ciphertexts,
                self.fingerprint,
                files::tensors_bytes(&y),
            ),
            stages: vec![timing],
        })
    }

    fn simulate(&self, x: &Tensor, noise: Option<u64>) -> Result<Vec<Tensor>> {
        self.base.simulate(x, noise)
    }

    fn stage_count(&self) -> usize {
        1
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "a cleartext simulation of {} ({}), nothing is encrypted: {}",
            self.simulation.base.name(),
            if self.keyparams.noise {
                "noise drawn"
            } else {
                "no noise"
            },
            self.origin.display()
        )];
        lines.extend(self.base.describe());
        lines
    }
}
