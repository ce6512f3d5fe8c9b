//! The CKKS backend (RNS-CKKS, heman-ckks): activations as polynomials,
//! linear layers as diagonal products in slot layouts, parameters chosen by
//! encrypted dry runs.

mod compile;
mod data_owner;
mod describe;
mod model_owner;

use std::path::Path;

use heman_artifacts::ckks::{KeyParams, TensorSpec, BACKEND, TAG};

use crate::error::{BackendError, Result};
use crate::interface::{
    Backend, Compilation, CompileOptions, DataOwner, KeyFiles, ModelOwner, ModelSource,
    ServingOptions, TensorInfo,
};
use crate::progress::Progress;

pub use compile::{compile as compile_model, Compiled, ParameterCheck};

/// The CKKS backend.
pub struct Ckks;

/// The registry's entry.
pub static CKKS: Ckks = Ckks;

/// What the data owner sees of a tensor crossing the boundary.
/// Bytes a set of evaluation keys takes in memory: every switching key (relinearisation
/// and `galois_keys` Galois keys) expanded to (b, a) per residue polynomial, and the
/// public key, two polynomials over the `q_primes` ciphertext primes.
fn evaluation_key_bytes(
    n: usize,
    switching_key_limbs: usize,
    q_primes: usize,
    galois_keys: usize,
) -> u64 {
    let polynomial = (n * 8) as u64;
    let switching = 2 * switching_key_limbs as u64 * polynomial;
    let public = 2 * q_primes as u64 * polynomial;
    (1 + galois_keys as u64) * switching + public
}

/// Refuses ciphertexts packed other than the model (`batch`: the file's
/// throughput batch, `None` for latency packing), naming both.
fn check_packing(
    packing: heman_compiler::ckks::Packing,
    batch: Option<usize>,
    origin: &std::path::Path,
) -> Result<()> {
    use heman_compiler::ckks::Packing;
    match (packing, batch) {
        (Packing::Latency, None) | (Packing::Throughput, Some(_)) => Ok(()),
        (Packing::Latency, Some(b)) => Err(BackendError::Refused(format!(
            "{}: a throughput batch of {b} inputs, and the model is compiled for latency packing (one input per file)",
            origin.display()
        ))),
        (Packing::Throughput, None) => Err(BackendError::Refused(format!(
            "{}: ciphertexts of one input in latency packing, and the model is compiled for throughput packing (a batch per file)",
            origin.display()
        ))),
    }
}

fn tensor_info(spec: &TensorSpec) -> TensorInfo {
    TensorInfo {
        name: spec.name.clone(),
        shape: spec.shape.clone(),
        calibrated_range: spec.calibrated_range,
    }
}

impl Backend for Ckks {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn tag(&self) -> u8 {
        TAG
    }

    fn about(&self) -> &'static str {
        "RNS-CKKS: approximate arithmetic, activations as polynomials"
    }

    fn exact_activations(&self) -> bool {
        false
    }

    fn compile(
        &self,
        source: &ModelSource,
        options: &CompileOptions,
        progress: &dyn Progress,
    ) -> Result<Compilation> {
        let compiled = compile::compile(source, options, progress)?;
        let keyparams = serde_json::to_string_pretty(&compiled.model.keyparams)
            .map_err(|e| crate::BackendError::Internal(format!("keyparams as JSON: {e}")))?;
        Ok(Compilation {
            backend: &CKKS,
            keyparams,
            model: compiled.model.to_bytes(&compiled.compiled.params),
            report: compile::report(&compiled),
        })
    }

    fn load_model(
        &self,
        bytes: &[u8],
        origin: &Path,
        options: ServingOptions,
    ) -> Result<Box<dyn ModelOwner>> {
        Ok(Box::new(model_owner::load(bytes, origin, options)?))
    }

    fn keygen(&self, keyparams: &[u8], origin: &Path, progress: &dyn Progress) -> Result<KeyFiles> {
        data_owner::keygen(keyparams, origin, progress)
    }

    fn data_owner(
        &self,
        keyparams: &[u8],
        secret_key: &[u8],
        origin: &Path,
    ) -> Result<Box<dyn DataOwner>> {
        Ok(Box::new(data_owner::open(keyparams, secret_key, origin)?))
    }

    fn describe_keyparams(&self, keyparams: &[u8], origin: &Path) -> Result<Vec<String>> {
        Ok(describe::keyparams(&KeyParams::from_json(
            keyparams, origin,
        )?))
    }
}
