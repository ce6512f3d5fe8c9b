//! The two-party workflow's steps, shared by the five commands and `demo`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use heman_artifacts::{
    read_secret_key, write_public_key, write_secret_key, CiphertextFile, CompiledModel, Container,
    EvaluationKeys, KeyParams, Kind, TensorSpec,
};
use heman_ckks::{
    Ciphertext, CkksParameters, Decryptor, Encryptor, KeyGenerator, PublicKey, SecretKey,
};
use heman_compiler::flooding::{FloodingTarget, OutputFlooding};
use heman_compiler::pipeline::{compile_ckks, CompileOptions};
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges, Tensor};
use heman_runtime::{
    choose_parameters, decrypt_tensor, encrypt_tensor, flood_outputs, Executor, InputKey,
    ParameterCheck,
};
use tracing::{info, warn};

use crate::progress;

/// File names inside a keys directory.
pub const SECRET_KEY: &str = "secret.key";
pub const PUBLIC_KEY: &str = "public.key";
pub const EVAL_KEYS: &str = "eval.keys";
pub const KEYPARAMS: &str = "keyparams.json";

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The homomorphic encryption scheme a model is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// RNS-CKKS: approximate arithmetic, activations as polynomials.
    Ckks,
    /// TFHE (tfhe-rs): quantised integers, exact activations by
    /// programmable bootstrapping.
    Tfhe,
}

/// Whether a keyparams file (or a keys directory's copy) is for TFHE.
pub(crate) fn is_tfhe_keyparams(path: &Path) -> bool {
    heman_artifacts::tfhe::keyparams_backend(path).is_ok_and(|b| b == "tfhe")
}

/// A model compiled for CKKS, in memory.
pub struct Compiled {
    pub graph: heman_model::Graph,
    /// The approximated model against the exact one on calibration samples.
    pub agreement: Option<heman_compiler::approximation::Agreement>,
    pub model: CompiledModel,
    pub params: CkksParameters,
    /// The parameter sets the plan could run under (most precise first) and
    /// the dry runs that chose among them.
    pub candidates: Vec<heman_compiler::parameters::ParameterChoice>,
    pub parameter_check: ParameterCheck,
}

/// Calibration inputs the encrypted dry run that sizes the output flooding
/// runs on.
const NOISE_SAMPLES: usize = 2;

/// The model owner: calibrate, derive parameters, compile, and size the
/// output flooding by an encrypted dry run.
pub fn compile(model: &Path, calibration: &Path, flooding: FloodingTarget) -> Result<Compiled> {
    let graph = load_onnx(model)?;
    let samples = load_arrays(calibration)?;
    let bar = progress::bar(samples.len(), "calibrating");
    let ranges = CalibrationRanges::measure_with_progress(&graph, &samples, |_| bar.inc(1))
        .with_context(|| format!("calibration set {}", calibration.display()))?;
    bar.finish_and_clear();
    let start = Instant::now();
    let mut compiled = compile_ckks(&graph, &samples, &ranges, CompileOptions::default())
        .with_context(|| format!("compiling {}", model.display()))?;
    info!(seconds = start.elapsed().as_secs_f64(), "compiled");
    let spec = |id, shape: &[usize], layout: &heman_compiler::SlotLayout| {
        let name = graph.value(id).name.clone();
        TensorSpec {
            calibrated_range: ranges.get(&name).map(|r| (r.min, r.max)),
            name,
            shape: shape.to_vec(),
            layout: layout.clone(),
        }
    };
    let output = spec(
        graph.outputs[0],
        &compiled.plan.output_shape,
        &compiled.plan.output_layout,
    );
    let output_max = output
        .calibrated_range
        .map_or(1.0, |(lo, hi)| lo.abs().max(hi.abs()));
    let parameter_check =
        check_parameters(&graph, &samples, &mut compiled, output_max, flooding)
            .with_context(|| format!("measuring the output noise of {}", model.display()))?;
    let output_flooding = OutputFlooding::size(
        flooding,
        compiled.params.log_n(),
        parameter_check.noise.scale.log2(),
        parameter_check.noise.max_coefficient,
        output_max,
    )
    .with_context(|| format!("sizing the output flooding of {}", model.display()))?;
    let plan = &compiled.plan;
    let keyparams = KeyParams::for_plan(
        &compiled.params,
        compiled.choice.clone(),
        compiled.depth,
        plan,
        spec(graph.inputs[0], &plan.input_shape, &plan.input_layout),
        output,
        output_flooding,
    );
    Ok(Compiled {
        model: CompiledModel {
            keyparams,
            plan: compiled.plan,
        },
        params: compiled.params,
        candidates: compiled.candidates,
        parameter_check,
        agreement: compiled.agreement,
        graph,
    })
}

/// Chooses among the compiled model's parameter sets by encrypted dry runs on
/// a few calibration inputs (throw-away keys): the smallest keys whose
/// flooded outputs keep their precision.
fn check_parameters(
    graph: &heman_model::Graph,
    samples: &[heman_model::io::dataset::Sample],
    compiled: &mut heman_compiler::pipeline::CompiledCkks,
    output_max: f64,
    target: FloodingTarget,
) -> Result<ParameterCheck> {
    let inputs = samples
        .iter()
        .take(NOISE_SAMPLES)
        .map(|s| graph.check_input(0, &s.tensor))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let spinner = progress::spinner("measuring the output noise (encrypted dry runs)");
    let start = Instant::now();
    let check = choose_parameters(compiled, &inputs, output_max, target, |run| {
        spinner.set_message(format!(
            "measuring the output noise (encrypted dry run {})",
            run + 1
        ))
    })?;
    spinner.finish_and_clear();
    info!(
        seconds = start.elapsed().as_secs_f64(),
        dry_runs = check.choice.measured.len(),
        noise_log2 = check.noise.max_coefficient.log2(),
        "parameters chosen by measured precision"
    );
    if !check.choice.meets && target == FloodingTarget::NoiseBound {
        warn!(
            "even the most precise parameters leave an error of {:.2e} per output, above the {:.2e} wanted ({} bits of the largest calibrated output)",
            check.choice.measured[0].slot_error,
            check.allowed,
            heman_compiler::flooding::KEPT_PRECISION_BITS
        );
    }
    Ok(check)
}

/// What the parameter choice measured, for `keyparams` to print.
pub fn describe_parameter_check(compiled: &Compiled) -> Vec<String> {
    let check = &compiled.parameter_check;
    let chosen = &compiled.candidates[check.choice.chosen];
    let mut lines = vec![format!(
        "parameters: {} special prime(s), {} key-switching digit(s), {} residue polynomials per switching key: {} of {} candidates in this ring, {}",
        chosen.p_bits.len(),
        chosen.digits(),
        chosen.switching_key_limbs(),
        if check.choice.chosen == 0 { "the most precise" } else { "the smallest keys" },
        compiled.candidates.len(),
        if check.choice.meets {
            format!(
                "whose flooded outputs keep {} bits (error per output at most {:.1e})",
                heman_compiler::flooding::KEPT_PRECISION_BITS,
                check.allowed
            )
        } else {
            format!(
                "and still short of {} bits (error per output above {:.1e})",
                heman_compiler::flooding::KEPT_PRECISION_BITS,
                check.allowed
            )
        }
    )];
    for m in &check.choice.measured {
        let c = &compiled.candidates[m.candidate];
        lines.push(format!(
            "  dry run: scale 2^{}, {} special prime(s), {} polynomials per key: error per output {:.1e}",
            c.log_scale,
            c.p_bits.len(),
            c.switching_key_limbs(),
            m.slot_error
        ));
    }
    lines
}

/// `heman keyparams`: writes the keyparams (JSON, for the data owner) and the
/// compiled model.
pub fn keyparams(
    model: &Path,
    calibration: &Path,
    flooding: FloodingTarget,
    keyparams_out: &Path,
    compiled_out: &Path,
) -> Result<Compiled> {
    let compiled = compile(model, calibration, flooding)?;
    compiled.model.keyparams.write(keyparams_out)?;
    compiled.model.write(compiled_out, &compiled.params)?;
    Ok(compiled)
}

/// The data owner's keys.
pub struct KeySet {
    pub secret: SecretKey,
    pub public: PublicKey,
    pub evaluation: EvaluationKeys,
}

/// Makes a secret key, a public key and evaluation keys for exactly the
/// rotations the plan uses.
pub fn make_keys(keyparams: &KeyParams, params: &CkksParameters) -> Result<KeySet> {
    let bar = progress::bar(3, "keygen");
    let mut generator = KeyGenerator::new(params)?;
    let secret = generator.gen_secret_key();
    let public = generator.gen_public_key(&secret)?;
    let relin = generator.gen_relin_key(&secret)?;
    bar.inc(1);
    let steps: Vec<i64> = keyparams.rotation_steps.iter().map(|&s| s as i64).collect();
    let galois = generator.gen_galois_keys(&secret, &steps, false)?;
    bar.finish_and_clear();
    Ok(KeySet {
        secret,
        evaluation: EvaluationKeys {
            relin,
            galois,
            public: public.clone(),
        },
        public,
    })
}

/// `heman keygen`: secret key (0600), public key, evaluation keys, and a copy
/// of the keyparams.
pub fn keygen(keyparams_path: &Path, out: &Path) -> Result<()> {
    if is_tfhe_keyparams(keyparams_path) {
        return crate::tfhe_workflow::keygen(keyparams_path, out);
    }
    let keyparams = KeyParams::read(keyparams_path)?;
    let params = keyparams.ckks_parameters(keyparams_path)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let keys = make_keys(&keyparams, &params)?;
    write_secret_key(&out.join(SECRET_KEY), &params, &keys.secret)?;
    write_public_key(&out.join(PUBLIC_KEY), &params, &keys.public)?;
    keys.evaluation.write(&out.join(EVAL_KEYS), &params)?;
    keyparams.write(&out.join(KEYPARAMS))?;
    Ok(())
}

/// The data owner's side, opened from a keys directory: keyparams,
/// parameters and the secret key (as a decryptor).
pub struct DataOwner {
    pub keyparams: KeyParams,
    pub params: CkksParameters,
    pub decryptor: Decryptor,
}

impl DataOwner {
    pub fn open(keys: &Path) -> Result<Self> {
        let keyparams_path = keys.join(KEYPARAMS);
        let keyparams = KeyParams::read(&keyparams_path).with_context(|| {
            format!(
                "{} is not a keys directory made by `heman keygen`",
                keys.display()
            )
        })?;
        let params = keyparams.ckks_parameters(&keyparams_path)?;
        let sk = read_secret_key(&keys.join(SECRET_KEY), &params)?;
        let decryptor = Decryptor::new(&params, &sk)?;
        Ok(Self {
            keyparams,
            params,
            decryptor,
        })
    }

    /// Encrypts an input tensor with the secret key (lowest noise, seeded
    /// form); `origin` names it in messages.
    pub fn encrypt(&self, tensor: &Tensor, origin: &str) -> Result<CiphertextFile> {
        let tensor = fit_input(tensor, &self.keyparams.input, origin)?;
        let cts = encrypt_tensor(
            &self.params,
            InputKey::Secret(&self.decryptor),
            &self.keyparams.input.layout,
            &tensor,
        )?;
        Ok(CiphertextFile { ciphertexts: cts })
    }

    /// Decrypts the model's output, post-processing included.
    pub fn decrypt(&self, cts: &[heman_ckks::Ciphertext]) -> Result<Tensor> {
        decrypt_output(&self.keyparams, &self.params, &self.decryptor, cts)
    }
}

/// Encrypts an `.npy` input with the secret key.
pub fn encrypt(keys: &Path, input: &Path, output: &Path) -> Result<()> {
    if is_tfhe_keyparams(&keys.join(KEYPARAMS)) {
        return crate::tfhe_workflow::encrypt(keys, input, output);
    }
    let owner = DataOwner::open(keys)?;
    let tensor = heman_model::io::npy::read_npy(input)?;
    owner
        .encrypt(&tensor, &input.display().to_string())?
        .write(output, &owner.params)?;
    Ok(())
}

/// Warns (and says by how much) when an input leaves the calibrated range.
fn warn_outside_calibration(tensor: &Tensor, calibrated: Option<(f64, f64)>, origin: &str) {
    let Some((lo, hi)) = calibrated else {
        return;
    };
    let (min, max) = tensor
        .data()
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let excess = (lo - min).max(max - hi);
    if excess > 0.0 {
        warn!(
            "{origin}: values in [{min}, {max}] exceed the calibrated input range [{lo}, {hi}] by {excess:.4} ({:.1}% of its width); encrypted results may lose accuracy",
            100.0 * excess / (hi - lo).max(f64::MIN_POSITIVE)
        );
    }
}

/// Checks an input against the model's input: same shape (extents of 1
/// aside) and finite values.
pub fn fit_input(tensor: &Tensor, spec: &TensorSpec, origin: &str) -> Result<Tensor> {
    fit_to(
        tensor,
        &spec.name,
        &spec.shape,
        spec.calibrated_range,
        origin,
    )
}

/// [`fit_input`] for an input named `name` of `shape`.
pub fn fit_to(
    tensor: &Tensor,
    name: &str,
    shape: &[usize],
    calibrated: Option<(f64, f64)>,
    origin: &str,
) -> Result<Tensor> {
    let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
    if squeeze(tensor.shape()) != squeeze(shape) {
        bail!(
            "{origin}: shape {:?}, the model's input '{name}' is {shape:?}",
            tensor.shape(),
        );
    }
    if let Some((i, v)) = tensor
        .data()
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        bail!("{origin}: element {i} is {v}");
    }
    warn_outside_calibration(tensor, calibrated, origin);
    Ok(tensor.clone().reshaped(shape.to_vec()))
}

/// The model owner: runs the compiled model on an encrypted input with the
/// evaluation keys only.
pub fn inference(model: &Path, eval_keys: &Path, input: &Path, output: &Path) -> Result<()> {
    if Container::peek_kind(model)? == Some(Kind::TfheCompiledModel) {
        return crate::tfhe_workflow::inference(model, eval_keys, input, output).map(|_| ());
    }
    let compiled = CompiledModel::read(model)?;
    let params = compiled.keyparams.ckks_parameters(model)?;
    let keys = EvaluationKeys::read(eval_keys, &params)
        .with_context(|| format!("evaluation keys do not belong to {}", model.display()))?;
    let cts = CiphertextFile::read(input, &params)?.ciphertexts;
    let executor = Executor::new(&params, &keys.relin, &keys.galois);
    let bar = progress::bar(compiled.plan.stages.len(), "inference");
    let out = executor.run(&compiled.plan, cts, |_| bar.inc(1))?;
    bar.finish_and_clear();
    let out = flood(&compiled.keyparams, &params, &keys, out)?;
    CiphertextFile { ciphertexts: out }.write(output, &params)?;
    Ok(())
}

/// The model owner's last step before outputs leave: re-randomisation with
/// the data owner's public key and the keyparams' flooding.
pub fn flood(
    keyparams: &KeyParams,
    params: &CkksParameters,
    keys: &EvaluationKeys,
    outputs: Vec<Ciphertext>,
) -> Result<Vec<Ciphertext>> {
    let encryptor = Encryptor::new(params, &keys.public)?;
    Ok(flood_outputs(
        &encryptor,
        outputs,
        keyparams.output_flooding.sigma(),
    )?)
}

pub fn decrypt(keys: &Path, input: &Path, output: &Path) -> Result<Tensor> {
    if is_tfhe_keyparams(&keys.join(KEYPARAMS)) {
        return crate::tfhe_workflow::decrypt(keys, input, output);
    }
    let owner = DataOwner::open(keys)?;
    let cts = CiphertextFile::read(input, &owner.params)?.ciphertexts;
    let tensor = owner.decrypt(&cts)?;
    heman_model::io::npy::write_npy(output, &tensor, heman_model::io::npy::NpyDtype::F32)?;
    Ok(tensor)
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Decrypts the model's output and applies the post-processing the model
/// owner left to the data owner (Softmax).
pub fn decrypt_output(
    keyparams: &KeyParams,
    params: &CkksParameters,
    decryptor: &Decryptor,
    cts: &[heman_ckks::Ciphertext],
) -> Result<Tensor> {
    let spec = &keyparams.output;
    let raw = decrypt_tensor(params, decryptor, &spec.layout, &spec.shape, cts)?;
    Ok(keyparams
        .postprocess
        .iter()
        .fold(raw, |t, op| op.eval(&[&t])))
}

/// The repository's own example (`examples/digits`), wherever heman runs from.
pub fn example_dir() -> PathBuf {
    let built_in = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/digits"
    ));
    if built_in.is_dir() {
        built_in
    } else {
        PathBuf::from("examples/digits")
    }
}
