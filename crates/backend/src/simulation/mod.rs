//! Simulation backends (`ckks-sim`, `tfhe-sim`): another backend's compiled
//! model run in cleartext, in milliseconds, so that a model owner sees the
//! accuracy a compilation will reach before paying for encryption (the
//! reference users know is Concrete ML's `fhe="simulate"`). CKKS's
//! polynomials, slot layouts and rescaling, or TFHE's quantisation and lookup
//! tables, computed exactly as the encrypted run computes them; with
//! `--noise`, the encryption noise drawn at every inference as well.
//!
//! Nothing here is encrypted: "keys" are empty and "ciphertexts" hold the
//! tensors in the clear. Files carry their own tag, so none is ever taken
//! for an encrypted one, and `heman serve` refuses simulation models.

mod files;
mod model_owner;
mod parties;

use std::path::Path;

use crate::error::{BackendError, Result};
use crate::interface::{
    Backend, Compilation, CompileOptions, DataOwner, KeyFiles, ModelOwner, ModelSource,
    ServingOptions,
};
use crate::progress::Progress;

/// Another backend's compiled models, run in cleartext.
#[derive(Clone, Copy)]
pub struct Simulation {
    base: &'static dyn Backend,
    name: &'static str,
    tag: u8,
}

/// CKKS simulated.
#[cfg(feature = "ckks")]
pub static CKKS_SIM: Simulation = Simulation {
    base: &crate::ckks::CKKS,
    name: "ckks-sim",
    tag: 3,
};

/// TFHE simulated.
#[cfg(feature = "tfhe")]
pub static TFHE_SIM: Simulation = Simulation {
    base: &crate::tfhe::TFHE,
    name: "tfhe-sim",
    tag: 4,
};

impl Backend for Simulation {
    fn name(&self) -> &'static str {
        self.name
    }

    fn tag(&self) -> u8 {
        self.tag
    }

    fn about(&self) -> &'static str {
        "a cleartext simulation of a compiled model: nothing is encrypted"
    }

    fn exact_activations(&self) -> bool {
        self.base.exact_activations()
    }

    fn encrypts(&self) -> bool {
        false
    }

    fn base(&self) -> Option<&'static dyn Backend> {
        Some(self.base)
    }

    /// Compiles with the base backend (its options), then wraps the
    /// compiled model and describes it in keyparams of its own.
    fn compile(
        &self,
        source: &ModelSource,
        options: &CompileOptions,
        progress: &dyn Progress,
    ) -> Result<Compilation> {
        let base_options = CompileOptions {
            noise: false,
            ..options.clone()
        };
        let base = self.base.compile(source, &base_options, progress)?;
        self.wrap(&base, options.noise, Path::new(&source.name))
    }

    fn load_model(
        &self,
        bytes: &[u8],
        origin: &Path,
        options: ServingOptions,
    ) -> Result<Box<dyn ModelOwner>> {
        Ok(Box::new(model_owner::load(self, bytes, origin, options)?))
    }

    fn keygen(&self, keyparams: &[u8], origin: &Path, _: &dyn Progress) -> Result<KeyFiles> {
        parties::keygen(self, keyparams, origin)
    }

    fn data_owner(
        &self,
        keyparams: &[u8],
        secret_key: &[u8],
        origin: &Path,
    ) -> Result<Box<dyn DataOwner>> {
        Ok(Box::new(parties::open(
            self, keyparams, secret_key, origin,
        )?))
    }

    fn describe_keyparams(&self, keyparams: &[u8], origin: &Path) -> Result<Vec<String>> {
        let kp = files::KeyParams::from_json(self, keyparams, origin)?;
        let mut lines = vec![
            format!(
                "keyparams ({} backend: a cleartext simulation of {}, {}; nothing is encrypted)",
                self.name,
                self.base.name(),
                if kp.noise { "noise drawn" } else { "no noise" }
            ),
            format!("  input '{}' {:?}", kp.input.name, kp.input.shape),
        ];
        let base = serde_json::to_vec(&kp.base)
            .map_err(|e| BackendError::Internal(format!("keyparams as JSON: {e}")))?;
        lines.extend(self.base.describe_keyparams(&base, origin)?);
        Ok(lines)
    }
}

impl Simulation {
    /// A compilation of the base backend as one of this simulation's.
    pub fn wrap(&self, base: &Compilation, noise: bool, origin: &Path) -> Result<Compilation> {
        let owner = self
            .base
            .load_model(&base.model, origin, ServingOptions::default())?;
        let keyparams = files::KeyParams::new(self, &base.keyparams, owner.as_ref(), noise)?;
        let mut report = base.report.clone();
        report.summary = format!("simulating {}: {}", self.base.name(), report.summary);
        report.warnings.push(format!(
            "{} is a cleartext simulation: nothing is encrypted; compile with --backend {} to serve the model",
            self.name,
            self.base.name()
        ));
        Ok(Compilation {
            backend: self.registered(),
            model: files::model_file(self, &keyparams, &base.model)?,
            keyparams: keyparams.to_json()?,
            report,
        })
    }

    /// This simulation as the registry holds it.
    pub(crate) fn registered(&self) -> &'static dyn Backend {
        crate::registry::by_name(self.name).expect("simulations are registered")
    }
}
