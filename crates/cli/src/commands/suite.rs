//! HE-MAN's models and the data each is scored on, for `eval --suite` and
//! `bench --suite`: one table, with the backends each model runs on and
//! the compile options it needs there (data, not dispatch).

use std::path::Path;

use anyhow::{bail, Result};
use heman_backend::{Backend, CompileOptions};

/// One model of the suite.
pub struct SuiteModel {
    /// The ONNX file, under HE-MAN's data folder.
    pub model: &'static str,
    /// Its calibration set.
    pub calibration: &'static str,
    /// Its evaluation set.
    pub data: &'static str,
    /// The backends it is benchmarked on, with the options it needs there.
    pub backends: &'static [(&'static str, &'static [(&'static str, &'static str)])],
}

/// HE-MAN's networks, each on TFHE at the preset `keyparams` chooses:
/// cryptonets keeps its plaintext accuracy at 2_2 since the windows are
/// validated on held-out samples (98.0% with simulated noise on the 1000
/// images, as at 2_3, 3.4x faster); lenet5 and the x*x variants run on CKKS
/// only (TFHE would take minutes per image).
pub const SUITE: &[SuiteModel] = &[
    SuiteModel {
        model: "demo/mnist.onnx",
        calibration: "demo/calibration-data.zip",
        data: "demo/test-data",
        backends: &[("ckks", &[]), ("tfhe", &[])],
    },
    SuiteModel {
        model: "models/cryptonets_square.onnx",
        calibration: "mnist/calibration-data.zip",
        data: "mnist",
        backends: &[("ckks", &[])],
    },
    SuiteModel {
        model: "models/cryptonets.onnx",
        calibration: "mnist/calibration-data.zip",
        data: "mnist",
        backends: &[("ckks", &[]), ("tfhe", &[])],
    },
    SuiteModel {
        model: "models/lenet5_square.onnx",
        calibration: "mnist/calibration-data.zip",
        data: "mnist",
        backends: &[("ckks", &[])],
    },
    SuiteModel {
        model: "models/lenet5.onnx",
        calibration: "mnist/calibration-data.zip",
        data: "mnist",
        backends: &[("ckks", &[])],
    },
    SuiteModel {
        model: "models/mobilefacenets.onnx",
        calibration: "lfw/calibration",
        data: "lfw",
        backends: &[("ckks", &[]), ("tfhe", &[])],
    },
];

/// HE-MAN's small per-operator test models (`tests/models`, calibrated by
/// every set of `tests/calibration-data` that fits): the backends that
/// sweep them and their options (TFHE in exact mode: the decrypted
/// integers must equal the quantised model's).
pub const TEST_MODELS: &[(&str, &[(&str, &str)])] = &[("tfhe", &[("exact", "true")])];

/// The name a backend's suite settings are listed under: its own, or for a
/// simulation the simulated backend's.
pub fn settings_name(backend: &dyn Backend) -> &'static str {
    backend.base().map_or(backend.name(), |base| base.name())
}

impl SuiteModel {
    /// The options of `backend` for this model (`None`: not run there),
    /// with the command line's on top.
    pub fn options(
        &self,
        backend: &dyn Backend,
        overrides: &CompileOptions,
    ) -> Result<Option<CompileOptions>> {
        let name = settings_name(backend);
        let Some((_, settings)) = self.backends.iter().find(|(b, _)| *b == name) else {
            return Ok(None);
        };
        options_of(settings, overrides).map(Some)
    }
}

/// Compile options from a suite's settings, the command line's on top.
pub fn options_of(settings: &[(&str, &str)], overrides: &CompileOptions) -> Result<CompileOptions> {
    let mut options = CompileOptions::default();
    for (name, value) in settings {
        options.set(name, value)?;
    }
    if overrides.preset.is_some() {
        options.preset = overrides.preset.clone();
    }
    options.exact |= overrides.exact;
    options.accumulator_margin = overrides.accumulator_margin.or(options.accumulator_margin);
    options.noise |= overrides.noise;
    options.flooding_tail_bound |= overrides.flooding_tail_bound;
    options.flooding_security = overrides.flooding_security.or(options.flooding_security);
    options.security = overrides.security.or(options.security);
    options.bootstrapping = overrides.bootstrapping.clone().or(options.bootstrapping);
    options.activation_margin = overrides.activation_margin.or(options.activation_margin);
    options.packing = overrides.packing.clone().or(options.packing);
    options.batch = overrides.batch.or(options.batch);
    Ok(options)
}

/// HE-MAN's data folder, checked.
pub fn root(path: &Path) -> Result<&Path> {
    if !path.is_dir() {
        bail!("{}: HE-MAN data folder not found", path.display());
    }
    Ok(path)
}
