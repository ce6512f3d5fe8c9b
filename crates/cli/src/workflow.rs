//! The two-party workflow's steps over the backend seam, shared by the five
//! commands, `demo` and `query`: files in, files out, whatever the backend.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use heman_backend::{
    registry, Compilation, CompileOptions, DecryptionNoise, Inference, KeysDir, ModelSource,
};
use heman_model::Tensor;

use crate::progress::Bars;

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

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Reads a whole file, naming it when it cannot.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes a whole file, readable by its owner only when `private`.
pub fn write(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    heman_artifacts::container::write_file(path, bytes, private)?;
    Ok(())
}

/// The backend and its compile options on the command line.
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// The encryption scheme.
    #[arg(long, default_value = "ckks", value_parser = clap::builder::PossibleValuesParser::new(registry::names()))]
    pub backend: String,
    /// Size the output flooding for this many bits of statistical security
    /// (CKKS; Li-Micciancio-Schultz-Sorrell 2022); refused, with the
    /// precision it needs, where the parameters cannot carry it. Default:
    /// flooding at the measured output noise.
    #[arg(long, value_name = "BITS")]
    pub flooding_security: Option<u32>,
    /// Flood outputs (CKKS) at a Gaussian tail bound drawn from the dry runs
    /// instead of the largest noise they showed: covers inputs noisier than
    /// the two measured, for about 1.5 bits of output precision, which may
    /// take a larger ring (docs/SECURITY.md).
    #[arg(long)]
    pub flooding_tail_bound: bool,
    /// Classical security level, in bits: 128 (the default), 192 or 256.
    /// CKKS takes the modulus bound of that level's HomomorphicEncryption.org
    /// table (a larger ring for the same depth); TFHE's presets are 128-bit.
    #[arg(long, value_name = "BITS")]
    pub security: Option<u32>,
    /// tfhe-rs parameter preset (TFHE): 2_2 (N = 2048, fastest), 2_3
    /// (N = 4096, half the read noise, about 3.3x slower bootstraps) or 3_3
    /// (N = 8192, about 7x slower). Default: the cheapest whose quantised
    /// model keeps the float model's class on 90% of the held-out
    /// calibration samples with simulated noise (else the one that keeps
    /// the most); 2_2 with --exact.
    #[arg(long)]
    pub preset: Option<String>,
    /// TFHE: only bit widths whose every bootstrap and output read is right
    /// with probability 1 - 2^-40 (the encrypted result is then exactly the
    /// quantised model's); small models only.
    #[arg(long)]
    pub exact: bool,
    /// TFHE: widen each calibrated accumulator window by this share of its
    /// calibrated range on both sides (a narrow margin keeps finer weights,
    /// a wide one wraps fewer values of inputs beyond the calibration).
    /// Default: the one of 0.125, 0.25 and 0.5 that keeps the most classes
    /// on a quarter of the calibration samples held out.
    #[arg(long, value_name = "SHARE")]
    pub accumulator_margin: Option<f64>,
    /// Simulations (ckks-sim, tfhe-sim): draw the encryption noise at every
    /// inference.
    #[arg(long)]
    pub noise: bool,
    /// CKKS: bootstrap only when no modulus chain holds the network's depth
    /// (auto, the default), always (at N = 2^16), or never.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["auto", "always", "never"]))]
    pub bootstrapping: Option<String>,
    /// CKKS: extend each activation polynomial's interval past its input's
    /// calibrated range by this share of the range's width on both sides
    /// (default 0.1). Inputs beyond the interval break a polynomial (a deep
    /// network's outputs become garbage); a wider interval approximates
    /// less closely near zero, which `keyparams` reports as calibration
    /// agreement.
    #[arg(long, value_name = "SHARE")]
    pub activation_margin: Option<f64>,
    /// CKKS: latency (one input spread over the slots, the default) or
    /// throughput (one input per slot: a batch of thousands of inputs per
    /// ciphertext, linear layers without rotations; `encrypt` then takes
    /// and `decrypt` returns tensors with the batch axis first).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["latency", "throughput"]))]
    pub packing: Option<String>,
    /// CKKS throughput packing (implied): the inputs one ciphertext holds
    /// at least, which may ask for a larger ring (default: the slots of the
    /// ring the model's depth needs).
    #[arg(long, value_name = "B")]
    pub batch: Option<usize>,
}

impl BackendArgs {
    /// The chosen backend.
    pub fn backend(&self) -> Result<&'static dyn heman_backend::Backend> {
        Ok(registry::by_name(&self.backend)?)
    }

    /// The compile options the flags ask for.
    pub fn options(&self) -> CompileOptions {
        CompileOptions {
            flooding_security: self.flooding_security,
            flooding_tail_bound: self.flooding_tail_bound,
            security: self.security,
            preset: self.preset.clone(),
            exact: self.exact,
            accumulator_margin: self.accumulator_margin,
            noise: self.noise,
            bootstrapping: self.bootstrapping.clone(),
            activation_margin: self.activation_margin,
            packing: self.packing.clone(),
            batch: self.batch,
        }
    }
}

/// The model owner: loads the model and its calibration, compiles.
pub fn compile(
    model: &Path,
    calibration: &Path,
    args: &BackendArgs,
) -> Result<(ModelSource, Compilation)> {
    compile_with(model, calibration, args.backend()?, &args.options())
}

/// [`compile`] with a backend and options of the caller's.
pub fn compile_with(
    model: &Path,
    calibration: &Path,
    backend: &'static dyn heman_backend::Backend,
    options: &CompileOptions,
) -> Result<(ModelSource, Compilation)> {
    let bars = Bars::default();
    let source = ModelSource::load(model, calibration, &bars)?;
    let compilation = backend
        .compile(&source, options, &bars)
        .with_context(|| format!("compiling {} for {}", model.display(), backend.name()))?;
    for warning in &compilation.report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok((source, compilation))
}

/// `heman keyparams`: compiles and writes the keyparams (JSON, for the data
/// owner) and the compiled model (mode 0600).
pub fn keyparams(
    model: &Path,
    calibration: &Path,
    args: &BackendArgs,
    keyparams_out: &Path,
    compiled_out: &Path,
) -> Result<Compilation> {
    let (_, compilation) = compile(model, calibration, args)?;
    write(keyparams_out, compilation.keyparams.as_bytes(), false)?;
    write(compiled_out, &compilation.model, true)?;
    Ok(compilation)
}

/// `heman keygen`: the keys directory for a keyparams file.
pub fn keygen(keyparams: &Path, out: &Path) -> Result<()> {
    KeysDir::at(out).generate(keyparams, &Bars::default())?;
    Ok(())
}

/// `heman encrypt`: an `.npy` input encrypted with the data owner's keys.
pub fn encrypt(keys: &Path, input: &Path, output: &Path) -> Result<()> {
    let owner = KeysDir::at(keys).open()?;
    let tensor = heman_model::io::npy::read_npy(input)?;
    let bytes = owner.encrypt(&tensor, &input.display().to_string())?;
    write(output, &bytes, false)
}

/// `heman inference`: the model owner runs the compiled model on an
/// encrypted input with the evaluation keys only.
pub fn inference(model: &Path, eval_keys: &Path, input: &Path, output: &Path) -> Result<Inference> {
    let model_bytes = read(model)?;
    let backend = registry::for_file(&model_bytes, model)?;
    let owner = backend.load_model(&model_bytes, model, Default::default())?;
    let keys = owner
        .parse_keys(&read(eval_keys)?, eval_keys)
        .with_context(|| format!("evaluation keys for {}", model.display()))?;
    owner.check_keys(&keys)?;
    let bar = crate::progress::bar(owner.stage_count(), "inference");
    let result = owner.infer(&keys, &read(input)?, input, &mut |_| bar.inc(1));
    bar.finish_and_clear();
    let result = result.with_context(|| format!("running {}", model.display()))?;
    write(output, &result.output, false)?;
    Ok(result)
}

/// The model's outputs, each with its name, in the model's order.
pub type NamedOutputs = Vec<(String, Tensor)>;

/// `heman decrypt`: the outputs decrypted and post-processed, written to
/// `output` (see [`write_outputs`]).
pub fn decrypt(
    keys: &Path,
    input: &Path,
    output: &Path,
    noise: Option<DecryptionNoise>,
) -> Result<NamedOutputs> {
    let owner = KeysDir::at(keys).open()?;
    check_output_path(output, owner.outputs())?;
    let (outputs, note) = decrypt_output(owner.as_ref(), &read(input)?, input, noise)?;
    if let Some(note) = note {
        println!("{note}");
    }
    write_outputs(output, &outputs)?;
    Ok(outputs)
}

/// An output file decrypted into the model's named outputs, for release
/// with decrypt-side `noise` if asked, and the line saying what the noise
/// added.
pub fn decrypt_output(
    owner: &dyn heman_backend::DataOwner,
    bytes: &[u8],
    origin: &Path,
    noise: Option<DecryptionNoise>,
) -> Result<(NamedOutputs, Option<String>)> {
    let (tensors, note) = match noise {
        None => (owner.decrypt(bytes, origin)?, None),
        Some(noise) => {
            let (tensors, note) = owner.decrypt_for_release(bytes, origin, noise)?;
            (tensors, Some(note))
        }
    };
    let names = owner.outputs().iter().map(|o| o.name.clone());
    Ok((names.zip(tensors).collect(), note))
}

/// Whether `path` can hold the model's `outputs`: an `.npz` holds any
/// number, an `.npy` one. Checked before decrypting.
pub fn check_output_path(path: &Path, outputs: &[heman_backend::TensorInfo]) -> Result<()> {
    let npz = is_npz(path);
    if outputs.len() > 1 && !npz {
        let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
        bail!(
            "{}: the model has {} outputs ({}); give an .npz path to hold them all",
            path.display(),
            outputs.len(),
            names.join(", ")
        );
    }
    Ok(())
}

/// Whether `path` names an `.npz` archive.
fn is_npz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

/// Writes decrypted outputs: an `.npz` path gets every output under its
/// name (characters other than letters, digits, `_`, `-` and `.` become
/// `_`), any other path the only output as `.npy`.
pub fn write_outputs(path: &Path, outputs: &[(String, Tensor)]) -> Result<()> {
    use heman_model::io::npy::{write_npy, write_npz, NpyDtype};
    let npz = is_npz(path);
    match outputs {
        [(_, only)] if !npz => write_npy(path, only, NpyDtype::F32)?,
        _ if npz => {
            let names = archive_names(outputs.iter().map(|(name, _)| name.as_str()));
            let arrays: Vec<(&str, &Tensor)> = names
                .iter()
                .map(String::as_str)
                .zip(outputs.iter().map(|(_, t)| t))
                .collect();
            write_npz(path, &arrays, NpyDtype::F32)?
        }
        _ => bail!(
            "{}: {} outputs need an .npz path",
            path.display(),
            outputs.len()
        ),
    }
    Ok(())
}

/// Output names as archive member names: no path separators or other
/// characters an unpacker could misread, and distinct (a repeat gets `_k`).
fn archive_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    names
        .map(|name| {
            let clean: String = name
                .chars()
                .map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
                    '.' if !name.starts_with('.') => c,
                    _ => '_',
                })
                .collect();
            let clean = if clean.is_empty() {
                "output".into()
            } else {
                clean
            };
            let mut candidate = clean.clone();
            let mut k = 1;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{clean}_{k}");
                k += 1;
            }
            candidate
        })
        .collect()
}

/// One line on decrypted outputs written to `path`: each output's shape and
/// largest element (the class, for logits); of each row's, for a batch of
/// rows (`[B, C]`, a throughput model's).
pub fn describe_outputs(path: &Path, outputs: &[(String, Tensor)]) -> String {
    const SHOWN: usize = 8;
    let parts: Vec<String> = outputs
        .iter()
        .map(|(name, t)| {
            let what = match t.shape() {
                &[rows, columns] if rows > 1 && columns > 0 => {
                    let classes: Vec<usize> = t
                        .data()
                        .chunks(columns)
                        .take(SHOWN)
                        .map(|row| {
                            (0..columns)
                                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                                .unwrap_or(0)
                        })
                        .collect();
                    let more = if rows > SHOWN { ", ..." } else { "" };
                    format!(
                        "shape {:?}, argmax of each row {classes:?}{more}",
                        t.shape()
                    )
                }
                _ => format!("shape {:?}, argmax {}", t.shape(), t.argmax().unwrap_or(0)),
            };
            match outputs.len() {
                1 => what,
                _ => format!("{name}: {what}"),
            }
        })
        .collect();
    format!("{} {}", path.display(), parts.join("; "))
}

/// The example network `backend` runs by default: the ReLU CNN where
/// activations are exact (TFHE), the x*x one where they are approximated
/// (CKKS).
pub fn example_model(backend: &dyn heman_backend::Backend) -> PathBuf {
    let stem = if backend.exact_activations() {
        "digits_relu"
    } else {
        "digits_square"
    };
    example_dir().join(format!("{stem}.onnx"))
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
