//! The two-party workflow on the TFHE backend: the same five steps and
//! files as CKKS (`workflow.rs` dispatches here on the keyparams' backend
//! or the compiled model's kind).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use heman_artifacts::tfhe::{
    read_client_key, read_server_key, write_client_key, write_server_key, TfheCiphertexts,
    TfheCompiledModel, TfheKeyParams,
};
use heman_compiler::tfhe::{compile_tfhe, CompiledTfhe, TfheOptions};
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges, Graph, Tensor};
use heman_runtime::tfhe::{
    decrypt_output as decrypt_tensor, encrypt_input, StageTiming, TfheExecutor,
};
use heman_tfhe::{ClientKey, CompressedServerKey, KeyChoice, LweVector, Preset, ServerKey};
use tracing::info;

use crate::progress;
use crate::workflow::{fit_to, EVAL_KEYS, KEYPARAMS, SECRET_KEY};

/// The TFHE backend's knobs on the command line.
#[derive(Args, Debug, Clone)]
pub struct TfheArgs {
    /// tfhe-rs parameter preset (TFHE backend): 2_2 (N = 2048, fastest; the
    /// default), 2_3 (N = 4096, half the read noise, about 3.3x slower
    /// bootstraps) or 3_3 (N = 8192, about 7x slower).
    #[arg(long)]
    pub preset: Option<String>,
    /// TFHE backend: only bit widths whose every bootstrap and output read is
    /// right with probability 1 - 2^-40 (the encrypted result is then
    /// exactly the quantised model's); small models only.
    #[arg(long)]
    pub exact: bool,
}

impl TfheArgs {
    pub fn options(&self) -> Result<TfheOptions> {
        self.options_or(Preset::Message2Carry2)
    }

    /// The options, with `preset` unless one was given.
    pub fn options_or(&self, preset: Preset) -> Result<TfheOptions> {
        Ok(TfheOptions {
            preset: match &self.preset {
                Some(name) => Preset::from_name(name)?,
                None => preset,
            },
            exact: self.exact,
            ..TfheOptions::default()
        })
    }
}

/// A model compiled for TFHE, in memory.
pub struct Compiled {
    pub graph: Graph,
    pub compiled: CompiledTfhe,
    pub model: TfheCompiledModel,
}

/// The model owner: calibrate, quantise, choose bit widths, compile.
pub fn compile(model: &Path, calibration: &Path, options: TfheOptions) -> Result<Compiled> {
    let graph = load_onnx(model)?;
    let samples = load_arrays(calibration)?;
    let bar = progress::bar(samples.len(), "calibrating");
    let ranges = CalibrationRanges::measure_with_progress(&graph, &samples, |_| bar.inc(1))
        .with_context(|| format!("calibration set {}", calibration.display()))?;
    bar.finish_and_clear();
    let start = Instant::now();
    let compiled = compile_tfhe(&graph, &samples, &ranges, options)
        .with_context(|| format!("compiling {} for TFHE", model.display()))?;
    info!(seconds = start.elapsed().as_secs_f64(), "compiled");
    let range = |id: usize| ranges.get(&graph.value(id).name).map(|r| (r.min, r.max));
    let (input, output) = (graph.inputs[0], graph.outputs[0]);
    let keyparams = TfheKeyParams::for_plan(
        &compiled.plan,
        compiled.bits,
        &compiled.budget,
        options.exact,
        graph.value(input).name.clone(),
        range(input),
        graph.value(output).name.clone(),
        range(output),
    );
    let model = TfheCompiledModel {
        keyparams,
        plan: compiled.plan.clone(),
    };
    Ok(Compiled {
        graph,
        compiled,
        model,
    })
}

/// `heman keyparams --backend tfhe`.
pub fn keyparams(
    model: &Path,
    calibration: &Path,
    keyparams_out: &Path,
    compiled_out: &Path,
    options: TfheOptions,
) -> Result<Compiled> {
    let compiled = compile(model, calibration, options)?;
    compiled.model.keyparams.write(keyparams_out)?;
    compiled.model.write(compiled_out)?;
    Ok(compiled)
}

/// The data owner's keys.
pub struct KeySet {
    pub client: ClientKey,
    pub server: CompressedServerKey,
}

pub fn make_keys(keyparams: &TfheKeyParams) -> KeySet {
    let bar = progress::bar(2, "keygen");
    let client = ClientKey::generate(keyparams.preset);
    bar.inc(1);
    let server = client.compressed_server_key();
    bar.finish_and_clear();
    KeySet { client, server }
}

/// `heman keygen` for TFHE: client key (0600) and compressed server key.
pub fn keygen(keyparams_path: &Path, out: &Path) -> Result<()> {
    let keyparams = TfheKeyParams::read(keyparams_path)?;
    let fingerprint = keyparams.fingerprint(keyparams_path)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let keys = make_keys(&keyparams);
    write_client_key(&out.join(SECRET_KEY), fingerprint, &keys.client)?;
    write_server_key(&out.join(EVAL_KEYS), fingerprint, &keys.server)?;
    keyparams.write(&out.join(KEYPARAMS))?;
    Ok(())
}

/// The data owner of a TFHE model: keyparams, their fingerprint and the
/// client key, from a keys directory.
pub struct TfheDataOwner {
    pub keyparams: TfheKeyParams,
    pub fingerprint: [u8; 32],
    client: ClientKey,
}

impl TfheDataOwner {
    pub fn open(keys: &Path) -> Result<Self> {
        let path = keys.join(KEYPARAMS);
        let keyparams = TfheKeyParams::read(&path)?;
        let fingerprint = keyparams.fingerprint(&path)?;
        let client = read_client_key(&keys.join(SECRET_KEY), &keyparams, &fingerprint)?;
        Ok(Self {
            keyparams,
            fingerprint,
            client,
        })
    }

    /// Quantises and encrypts an input tensor (seeded form); `origin` names
    /// it in messages.
    pub fn encrypt(&self, tensor: &Tensor, origin: &str) -> Result<TfheCiphertexts> {
        let kp = &self.keyparams;
        let tensor = fit_to(
            tensor,
            &kp.input.name,
            &kp.input.quantisation.shape,
            kp.input.calibrated_range,
            origin,
        )?;
        let cts = encrypt_input(&kp.input.quantisation, &self.client, &tensor)?;
        Ok(TfheCiphertexts::Seeded(cts))
    }

    /// Decrypts an inference output and applies the post-processing left
    /// to the data owner; fresh (input) ciphertexts are refused.
    pub fn decrypt(&self, cts: TfheCiphertexts, origin: &str) -> Result<Tensor> {
        if let TfheCiphertexts::Seeded(_) = cts {
            bail!("{origin}: fresh input ciphertexts, not an inference output");
        }
        decrypt_output(&self.keyparams, &self.client, &cts.into_expanded())
    }
}

pub fn encrypt(keys: &Path, input: &Path, output: &Path) -> Result<()> {
    let owner = TfheDataOwner::open(keys)?;
    let tensor = heman_model::io::npy::read_npy(input)?;
    owner
        .encrypt(&tensor, &input.display().to_string())?
        .write(output, owner.fingerprint)?;
    Ok(())
}

/// Expands the model owner's server key (parallel).
pub fn expand_server_key(
    keys: &Path,
    model: &TfheCompiledModel,
    model_path: &Path,
) -> Result<ServerKey> {
    let fingerprint = model.keyparams.fingerprint(model_path)?;
    let compressed = read_server_key(keys, model.keyparams.preset, &fingerprint)
        .with_context(|| format!("evaluation keys do not belong to {}", model_path.display()))?;
    Ok(compressed.expand())
}

/// Runs a compiled model on ciphertexts with a progress bar per stage.
pub fn run(
    model: &TfheCompiledModel,
    key: &ServerKey,
    input: LweVector,
) -> Result<(LweVector, Vec<StageTiming>)> {
    let bar = progress::bar(model.plan.stages.len(), "inference");
    let result = TfheExecutor::new(key, &model.plan)?.run(input, |_| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(result)
}

pub fn inference(
    model_path: &Path,
    eval_keys: &Path,
    input: &Path,
    output: &Path,
) -> Result<Vec<StageTiming>> {
    let model = TfheCompiledModel::read(model_path)?;
    let fingerprint = model.keyparams.fingerprint(model_path)?;
    let key = expand_server_key(eval_keys, &model, model_path)?;
    let cts = TfheCiphertexts::read(input, model.keyparams.preset, &fingerprint)?;
    let (out, timings) = run(&model, &key, cts.into_expanded())?;
    TfheCiphertexts::Expanded(out).write(output, fingerprint)?;
    Ok(timings)
}

/// Decrypts and applies the post-processing left to the data owner.
pub fn decrypt_output(
    keyparams: &TfheKeyParams,
    client: &ClientKey,
    cts: &LweVector,
) -> Result<Tensor> {
    let raw = decrypt_tensor(&keyparams.output.quantisation, client, cts)?;
    Ok(keyparams
        .postprocess
        .iter()
        .fold(raw, |t, op| op.eval(&[&t])))
}

pub fn decrypt(keys: &Path, input: &Path, output: &Path) -> Result<Tensor> {
    let owner = TfheDataOwner::open(keys)?;
    let cts = TfheCiphertexts::read(input, owner.keyparams.preset, &owner.fingerprint)?;
    let tensor = owner.decrypt(cts, &input.display().to_string())?;
    heman_model::io::npy::write_npy(output, &tensor, heman_model::io::npy::NpyDtype::F32)?;
    Ok(tensor)
}

/// One line per read of a plan's budget (bootstrap inputs, the output).
pub fn describe_reads(budget: &heman_compiler::tfhe::BudgetReport) -> Vec<String> {
    budget
        .reads
        .iter()
        .map(|r| {
            format!(
                "  read '{}': {} values, windows up to {} values, weight 2-norm {:.1}, noise {:.3} values, misread 2^{:.1}",
                r.name, r.values, r.widest_window, r.weight_norm, r.noise_std, r.log2_error
            )
        })
        .collect()
}

/// The keyparams summary `keyparams` and `inspect` print.
pub fn describe(kp: &TfheKeyParams) -> Vec<String> {
    let p = &kp.parameters;
    let s = &kp.summary;
    vec![
        format!("keyparams (tfhe backend, format version {})", kp.version),
        format!("  security: {}", kp.security),
        format!(
            "  preset {}: N = {}, LWE dimension {} (bootstrap input {})",
            kp.preset.name(),
            p.polynomial_size,
            p.lwe_dimension,
            p.small_lwe_dimension
        ),
        format!(
            "  bit widths: input {}, activations {}, bootstrap windows 2^{} values, output window 2^{} values{}",
            s.bits.input,
            s.bits.activation,
            s.bits.window,
            s.bits.output,
            if s.exact { " (exact mode)" } else { "" }
        ),
        format!(
            "  {} bootstraps and {} ciphertext multiply-adds per inference; misread probability per value <= 2^{:.1}, any misread 2^{:.1}",
            s.bootstraps, s.multiply_adds, s.worst_log2_error, s.any_log2_error
        ),
        format!(
            "  input '{}' {:?}: {} levels{}, encrypted under the {} key (dimension {}){}",
            kp.input.name,
            kp.input.quantisation.shape,
            kp.input.quantisation.levels,
            kp.input
                .calibrated_range
                .map_or(String::new(), |(lo, hi)| format!(", calibrated range [{lo:.4}, {hi:.4}]")),
            kp.input.quantisation.key.name(),
            kp.preset.dimension(kp.input.quantisation.key),
            match kp.input.quantisation.key {
                KeyChoice::Small => ": its first bootstraps skip the keyswitch",
                KeyChoice::Big => "",
            }
        ),
        format!(
            "  output '{}' {:?}",
            kp.output.name, kp.output.quantisation.shape
        ),
        format!("  parameter fingerprint {}", &kp.params_fingerprint[..16]),
        format!("  model fingerprint {}", &kp.model_fingerprint[..16]),
    ]
}
