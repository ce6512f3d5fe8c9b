//! The TFHE backend's files: `keyparams.json` with `"backend": "tfhe"`, the
//! compiled model, the data owner's secret key (tfhe-rs's client key), the
//! evaluation keys (the compressed server key and the output public key) and
//! ciphertexts, all in the shared container under [`TAG`].

use std::path::Path;

use heman_compiler::tfhe::{Bits, BudgetReport, Plan, PlanInput, PlanOutput};
use heman_tfhe::{ClientKey, CompressedServerKey, LweVector, Preset, SeededLweVector};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::container::{hex, write_file, Container, ContainerView, Expected, Kind, Role};
use crate::error::{invalid, io, ArtifactError, Result};
use crate::{KEYPARAMS_FORMAT as FORMAT, KEYPARAMS_VERSION as VERSION};

/// The name in keyparams.json and on the command line.
pub const BACKEND: &str = "tfhe";

/// The TFHE backend's tag in container headers.
pub const TAG: u8 = 2;

/// The format version of each role's files.
pub fn version(role: Role) -> u16 {
    match role {
        Role::CompiledModel => heman_compiler::tfhe::Plan::FORMAT_VERSION,
        _ => 1,
    }
}

/// The kind of TFHE files of `role`.
pub const fn kind(role: Role) -> Kind {
    Kind::new(TAG, role)
}

/// What a TFHE file of `role` must be, bound to `fingerprint` when given.
pub fn expected(role: Role, fingerprint: Option<&[u8; 32]>) -> Expected<'_> {
    Expected {
        kind: kind(role),
        version: version(role),
        fingerprint,
    }
}

fn container(role: Role, fingerprint: [u8; 32], payload: Vec<u8>) -> Container {
    Container::new(kind(role), version(role), fingerprint, payload)
}

fn tfhe_error(path: &Path) -> impl Fn(heman_tfhe::TfheError) -> ArtifactError + '_ {
    move |e| invalid(path, e.to_string())
}

/// The tfhe-rs parameter set, for readers of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// tfhe-rs's name of the parameter set.
    pub tfhe_rs_name: String,
    /// Dimension of the ciphertexts computed on (GLWE dimension x N).
    pub lwe_dimension: usize,
    /// Dimension after the keyswitch, input of the bootstrap.
    pub small_lwe_dimension: usize,
    /// The bootstrap's polynomial size N.
    pub polynomial_size: usize,
    /// log2 of the failure probability tfhe-rs states at its nominal
    /// message size (message and carry bits) and weight norm.
    pub log2_p_fail: f64,
    /// Values the preset is specified for (message times carry).
    pub nominal_values: u64,
    /// The largest weight 2-norm tfhe-rs's failure probability covers.
    pub max_weight_norm: u64,
}

impl Parameters {
    /// The parameters of `preset`.
    pub fn of(preset: Preset) -> Self {
        Self {
            tfhe_rs_name: preset.tfhe_name().into(),
            lwe_dimension: preset.lwe_dimension(),
            small_lwe_dimension: preset.small_lwe_dimension(),
            polynomial_size: preset.polynomial_size(),
            log2_p_fail: preset.log2_p_fail(),
            nominal_values: preset.nominal_values(),
            max_weight_norm: preset.max_noise_level(),
        }
    }
}

/// The input or output tensor the data owner handles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec<Q> {
    /// The graph value's name.
    pub name: String,
    /// How values map to the encrypted integers.
    pub quantisation: Q,
    /// The [min, max] calibration saw.
    pub calibrated_range: Option<(f64, f64)>,
}

/// What the compiler chose and what it guarantees, for the data owner to see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The bit widths chosen.
    pub bits: Bits,
    /// Bootstraps per inference.
    pub bootstraps: usize,
    /// Ciphertext multiply-adds per inference.
    pub multiply_adds: usize,
    /// Every read right with probability 1 - 2^max_log2_error (exact mode).
    pub exact: bool,
    /// log2 of the largest probability that one value is misread.
    pub worst_log2_error: f64,
    /// log2 of the probability that any value of an inference is misread.
    pub any_log2_error: f64,
}

/// The TFHE keyparams.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyParams {
    /// `heman-keyparams`.
    pub format: String,
    /// The keyparams version.
    pub version: u32,
    /// `tfhe`.
    pub backend: String,
    /// The security claim.
    pub security: String,
    /// `2_2`, `2_3` or `3_3`.
    pub preset: Preset,
    /// The preset's parameters, for readers.
    pub parameters: Parameters,
    /// The model's input and its quantisation.
    pub input: TensorSpec<PlanInput>,
    /// The model's output and how it decodes.
    pub output: TensorSpec<PlanOutput>,
    /// The model's outputs, concatenated in `output`, each with the
    /// weightless operators the data owner applies after decryption.
    pub outputs: Vec<heman_compiler::graph::OutputTensor>,
    /// What the compiler chose and guarantees.
    pub summary: Summary,
    /// SHA-256 of the preset and of the input and output encodings (hex):
    /// keys and ciphertexts carry it.
    pub params_fingerprint: String,
    /// SHA-256 of the compiled plan (hex): binds this file to its `.heman`.
    pub model_fingerprint: String,
}

/// SHA-256 of a plan's serialisation (hex).
pub fn plan_fingerprint(plan: &Plan) -> String {
    hex(&Sha256::digest(
        bincode::serialize(plan).expect("plan serialises"),
    ))
}

fn params_fingerprint(preset: Preset, input: &PlanInput, output: &PlanOutput) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(preset.fingerprint());
    h.update(bincode::serialize(input).expect("serialises"));
    h.update(bincode::serialize(output).expect("serialises"));
    h.finalize().into()
}

impl KeyParams {
    /// The keyparams of `plan`, compiled with `bits` under `budget`.
    #[allow(clippy::too_many_arguments)]
    pub fn for_plan(
        plan: &Plan,
        bits: Bits,
        budget: &BudgetReport,
        exact: bool,
        input_name: String,
        input_range: Option<(f64, f64)>,
        output_name: String,
        output_range: Option<(f64, f64)>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            backend: BACKEND.into(),
            security: format!(
                "128-bit, tfhe-rs preset {} (Gaussian noise, failure probability 2^{:.1} per bootstrap at its nominal message size)",
                plan.preset.tfhe_name(),
                plan.preset.log2_p_fail()
            ),
            preset: plan.preset,
            parameters: Parameters::of(plan.preset),
            input: TensorSpec {
                name: input_name,
                quantisation: plan.input.clone(),
                calibrated_range: input_range,
            },
            output: TensorSpec {
                name: output_name,
                quantisation: plan.output.clone(),
                calibrated_range: output_range,
            },
            outputs: plan.outputs.clone(),
            summary: Summary {
                bits,
                bootstraps: plan.bootstraps(),
                multiply_adds: plan.multiply_adds(),
                exact,
                worst_log2_error: budget.worst_log2_error(),
                any_log2_error: budget.log2_any_error(),
            },
            params_fingerprint: hex(&params_fingerprint(plan.preset, &plan.input, &plan.output)),
            model_fingerprint: plan_fingerprint(plan),
        }
    }

    /// The fingerprint keys and ciphertexts carry, checked against the
    /// description it summarises (an edited file is refused).
    pub fn fingerprint(&self, path: &Path) -> Result<[u8; 32]> {
        let f = params_fingerprint(
            self.preset,
            &self.input.quantisation,
            &self.output.quantisation,
        );
        if hex(&f) != self.params_fingerprint {
            return Err(invalid(
                path,
                "the parameter description does not reproduce its fingerprint (edited or damaged?)",
            ));
        }
        Ok(f)
    }

    /// Reads a keyparams file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        Self::from_json(&bytes, path)
    }

    /// Parses keyparams text read from (or received as) `path`.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let value: Self = crate::parse_keyparams(bytes, BACKEND, path)?;
        // Every length the data owner indexes by agrees, before decoding.
        let output = &value.output.quantisation;
        let values = &output.values;
        let elements = output
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements != Some(values.len())
            || values.scale.len() != values.len()
            || values.offset.len() != values.len()
        {
            return Err(invalid(
                path,
                format!(
                    "output shape {:?} for {} scales, {} offsets and {} windows",
                    output.shape,
                    values.scale.len(),
                    values.offset.len(),
                    values.len()
                ),
            ));
        }
        crate::check_outputs(&value.outputs, output.values.len(), path)?;
        Ok(value)
    }

    /// Writes the keyparams file (pretty JSON).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("keyparams serialise");
        write_file(path, &json, false)
    }
}

/// The model owner's compiled TFHE model (weights: written 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompiledModel {
    /// The keyparams it was compiled with.
    pub keyparams: KeyParams,
    /// The plan (integer weights, lookup tables).
    pub plan: Plan,
}

impl CompiledModel {
    /// The compiled model file.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>> {
        let fingerprint = self.keyparams.fingerprint(path)?;
        let payload = bincode::serialize(self).expect("model serialises");
        Ok(container(Role::CompiledModel, fingerprint, payload).to_bytes())
    }

    /// Writes the compiled model file (mode 0600: it holds the weights).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_file(path, &self.to_bytes(path)?, true)
    }

    /// Reads a compiled model file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses a compiled model file read from `path`: the plan must match
    /// its keyparams and its integer maps be well formed.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let container = ContainerView::expecting(bytes, path, expected(Role::CompiledModel, None))?;
        let model: Self = bincode::deserialize(container.payload)
            .map_err(|e| invalid(path, format!("malformed TFHE compiled model: {e}")))?;
        if plan_fingerprint(&model.plan) != model.keyparams.model_fingerprint
            || model.keyparams.fingerprint(path)? != container.fingerprint
        {
            return Err(invalid(
                path,
                "the plan does not match its keyparams fingerprint",
            ));
        }
        for stage in &model.plan.stages {
            if let heman_compiler::tfhe::PlanStage::Linear(l) = stage {
                l.rows.validate().map_err(tfhe_error(path))?;
            }
        }
        model
            .plan
            .check_wiring()
            .map_err(|e| invalid(path, format!("malformed TFHE plan: {e}")))?;
        Ok(model)
    }
}

/// The data owner's secret key file (tfhe-rs's client key; to be written
/// with mode 0600).
pub fn secret_key_to_bytes(fingerprint: [u8; 32], key: &ClientKey) -> Vec<u8> {
    // Moved out of its Zeroizing wrapper, not copied: the one copy left is
    // the container's, wiped below.
    let mut payload = key.to_bytes();
    let mut container = container(Role::SecretKey, fingerprint, std::mem::take(&mut *payload));
    let bytes = container.to_bytes();
    zeroize::Zeroize::zeroize(&mut container.payload);
    bytes
}

/// Parses a secret key file read from `path`.
pub fn secret_key_from_bytes(
    bytes: &[u8],
    path: &Path,
    preset: Preset,
    fingerprint: &[u8; 32],
) -> Result<ClientKey> {
    let mut container =
        Container::from_bytes_expecting(bytes, path, expected(Role::SecretKey, Some(fingerprint)))?;
    let key = ClientKey::from_bytes(preset, &container.payload).map_err(tfhe_error(path));
    // The payload copy holds the secret too.
    zeroize::Zeroize::zeroize(&mut container.payload);
    key
}

/// Writes the data owner's secret key file (mode 0600).
pub fn write_secret_key(path: &Path, fingerprint: [u8; 32], key: &ClientKey) -> Result<()> {
    let bytes = zeroize::Zeroizing::new(secret_key_to_bytes(fingerprint, key));
    write_file(path, &bytes, true)
}

/// Reads the data owner's secret key file.
pub fn read_secret_key(path: &Path, preset: Preset, fingerprint: &[u8; 32]) -> Result<ClientKey> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| io(path, e))?);
    secret_key_from_bytes(&bytes, path, preset, fingerprint)
}

/// The evaluation keys file: the compressed server key and the output
/// public key, no secret.
pub fn evaluation_keys_to_bytes(fingerprint: [u8; 32], key: &CompressedServerKey) -> Vec<u8> {
    container(Role::EvaluationKeys, fingerprint, key.to_bytes()).to_bytes()
}

/// Writes the evaluation keys file.
pub fn write_evaluation_keys(
    path: &Path,
    fingerprint: [u8; 32],
    key: &CompressedServerKey,
) -> Result<()> {
    write_file(path, &evaluation_keys_to_bytes(fingerprint, key), false)
}

/// Reads an evaluation keys file.
pub fn read_evaluation_keys(
    path: &Path,
    preset: Preset,
    fingerprint: &[u8; 32],
) -> Result<CompressedServerKey> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    evaluation_keys_from_bytes(&bytes, path, preset, fingerprint)
}

/// As [`read_evaluation_keys`] on bytes read from `path` (or received).
pub fn evaluation_keys_from_bytes(
    bytes: &[u8],
    path: &Path,
    preset: Preset,
    fingerprint: &[u8; 32],
) -> Result<CompressedServerKey> {
    let container = ContainerView::expecting(
        bytes,
        path,
        expected(Role::EvaluationKeys, Some(fingerprint)),
    )?;
    CompressedServerKey::from_bytes(preset, container.payload).map_err(tfhe_error(path))
}

/// Encrypted values: fresh ones in seeded form, computed ones expanded.
pub enum Ciphertexts {
    /// Fresh encryptions: masks as one seed.
    Seeded(SeededLweVector),
    /// Computed values (outputs).
    Expanded(LweVector),
}

impl Ciphertexts {
    /// The ciphertexts with their masks.
    pub fn into_expanded(self) -> LweVector {
        match self {
            Ciphertexts::Seeded(s) => s.expand(),
            Ciphertexts::Expanded(v) => v,
        }
    }

    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            Ciphertexts::Seeded(s) => s.len(),
            Ciphertexts::Expanded(v) => v.len(),
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ciphertexts file, bound to `fingerprint`.
    pub fn to_bytes(&self, fingerprint: [u8; 32]) -> Vec<u8> {
        let payload = match self {
            Ciphertexts::Seeded(s) => s.to_bytes(),
            Ciphertexts::Expanded(v) => v.to_bytes(),
        };
        container(Role::Ciphertexts, fingerprint, payload).to_bytes()
    }

    /// Writes the ciphertexts file.
    pub fn write(&self, path: &Path, fingerprint: [u8; 32]) -> Result<()> {
        write_file(path, &self.to_bytes(fingerprint), false)
    }

    /// Reads a ciphertexts file.
    pub fn read(path: &Path, preset: Preset, fingerprint: &[u8; 32]) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        Self::from_bytes(&bytes, path, preset, fingerprint)
    }

    /// As [`Ciphertexts::read`] on bytes read from `path` (or received).
    pub fn from_bytes(
        bytes: &[u8],
        path: &Path,
        preset: Preset,
        fingerprint: &[u8; 32],
    ) -> Result<Self> {
        let container =
            ContainerView::expecting(bytes, path, expected(Role::Ciphertexts, Some(fingerprint)))?;
        let payload = container.payload;
        if heman_tfhe::lwe::is_seeded(payload) {
            SeededLweVector::from_bytes(preset, payload)
                .map(Ciphertexts::Seeded)
                .map_err(tfhe_error(path))
        } else {
            LweVector::from_bytes(preset, payload)
                .map(Ciphertexts::Expanded)
                .map_err(tfhe_error(path))
        }
    }
}
