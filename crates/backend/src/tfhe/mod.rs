//! The TFHE backend (tfhe-rs through heman-tfhe): quantised integers, linear
//! layers as integer weighted sums, every activation one programmable
//! bootstrap (Chillotti, Joye, Paillier, CSCML 2021).

mod compile;
mod data_owner;
mod describe;
mod model_owner;

use std::path::Path;

use heman_artifacts::tfhe::{KeyParams, BACKEND, TAG};

use crate::error::Result;
use crate::interface::{
    Backend, Compilation, CompileOptions, DataOwner, KeyFiles, ModelOwner, ModelSource,
    ServingOptions, TensorInfo,
};
use crate::progress::Progress;

pub use compile::{compile as compile_model, Compiled};

/// The TFHE backend.
pub struct Tfhe;

/// The registry's entry.
pub static TFHE: Tfhe = Tfhe;

/// What the data owner sees of the model's input.
fn tensor_info(kp: &KeyParams) -> TensorInfo {
    TensorInfo {
        name: kp.input.name.clone(),
        shape: kp.input.quantisation.shape.clone(),
        calibrated_range: kp.input.calibrated_range,
    }
}

impl Backend for Tfhe {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn tag(&self) -> u8 {
        TAG
    }

    fn about(&self) -> &'static str {
        "TFHE (tfhe-rs): quantised integers, exact activations by programmable bootstrapping"
    }

    fn exact_activations(&self) -> bool {
        true
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
            backend: &TFHE,
            keyparams,
            model: compiled.model.to_bytes(Path::new(&source.name))?,
            report: compile::report(&compiled),
        })
    }

    fn load_model(
        &self,
        bytes: &[u8],
        origin: &Path,
        _: ServingOptions,
    ) -> Result<Box<dyn ModelOwner>> {
        Ok(Box::new(model_owner::load(bytes, origin)?))
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
