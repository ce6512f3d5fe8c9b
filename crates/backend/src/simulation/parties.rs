//! The data owner's side of a simulation: empty keys, tensors in the clear.

use std::path::Path;

use heman_artifacts::Role;
use heman_model::Tensor;
use zeroize::Zeroizing;

use super::files::{self, KeyParams};
use super::Simulation;
use crate::error::Result;
use crate::input::fit_input;
use crate::interface::{DataOwner, DecryptionNoise, KeyFiles, TensorInfo};

/// Empty keys bound to the model's fingerprint: nothing is secret, but a
/// simulation's files still refuse another model's.
pub fn keygen(simulation: &Simulation, keyparams: &[u8], origin: &Path) -> Result<KeyFiles> {
    let keyparams = KeyParams::from_json(simulation, keyparams, origin)?;
    let fingerprint = keyparams.fingerprint(origin)?;
    Ok(KeyFiles {
        secret: Zeroizing::new(files::container(
            simulation,
            Role::SecretKey,
            fingerprint,
            Vec::new(),
        )),
        evaluation: files::container(simulation, Role::EvaluationKeys, fingerprint, Vec::new()),
        public: None,
    })
}

/// The data owner of a simulated model.
pub struct SimulatedDataOwner {
    simulation: Simulation,
    fingerprint: [u8; 32],
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
}

/// Opens the data owner's side (its "secret key" checked for the model).
pub fn open(
    simulation: &Simulation,
    keyparams: &[u8],
    secret_key: &[u8],
    origin: &Path,
) -> Result<SimulatedDataOwner> {
    let simulation = *simulation;
    let keyparams = KeyParams::from_json(&simulation, keyparams, origin)?;
    let fingerprint = keyparams.fingerprint(origin)?;
    files::payload(
        &simulation,
        Role::SecretKey,
        secret_key,
        origin,
        Some(&fingerprint),
    )?;
    Ok(SimulatedDataOwner {
        simulation,
        fingerprint,
        input: keyparams.input.clone(),
        outputs: keyparams.outputs.clone(),
    })
}

impl DataOwner for SimulatedDataOwner {
    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    fn encrypt(&self, x: &Tensor, origin: &str) -> Result<Vec<u8>> {
        let x = fit_input(x, &self.input, origin)?;
        Ok(files::container(
            &self.simulation,
            Role::Ciphertexts,
            self.fingerprint,
            files::tensor_bytes(&x),
        ))
    }

    /// The simulated output, post-processed by the model owner's simulation
    /// already.
    fn decrypt(&self, output: &[u8], origin: &Path) -> Result<Vec<Tensor>> {
        let payload = files::payload(
            &self.simulation,
            Role::Ciphertexts,
            output,
            origin,
            Some(&self.fingerprint),
        )?;
        let tensors = files::tensors_from_bytes(&payload, self.outputs.len(), origin)?;
        for (tensor, output) in tensors.iter().zip(&self.outputs) {
            if tensor.shape() != output.shape.as_slice() {
                return Err(crate::BackendError::Refused(format!(
                    "{}: output '{}' of shape {:?}, the model's is {:?}",
                    origin.display(),
                    output.name,
                    tensor.shape(),
                    output.shape
                )));
            }
        }
        Ok(tensors)
    }

    /// A simulation encrypts nothing: nothing to hide, nothing added.
    fn decrypt_for_release(
        &self,
        output: &[u8],
        origin: &Path,
        _: DecryptionNoise,
    ) -> Result<(Vec<Tensor>, String)> {
        Ok(crate::interface::released_unchanged(
            self.decrypt(output, origin)?,
            "a simulation encrypts nothing",
        ))
    }
}
