//! HE-MAN's five commands, with HE-MAN's flags.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use heman_compiler::flooding::FloodingTarget;

use crate::tfhe_workflow::{self, TfheArgs};
use crate::workflow::{self, file_size, human, Backend, EVAL_KEYS, PUBLIC_KEY, SECRET_KEY};

/// Model owner: calibrate, derive parameters (CKKS) or quantise (TFHE), compile the model.
#[derive(Args)]
pub struct KeyparamsArgs {
    /// The ONNX model.
    #[arg(short, long)]
    model: PathBuf,
    /// Calibration inputs: a .zip or .npz of .npy arrays, or a directory.
    #[arg(short, long)]
    calibration: PathBuf,
    /// Where to write the key parameters (JSON, for the data owner).
    #[arg(short, long, default_value = "keyparams.json")]
    output: PathBuf,
    /// Where to write the compiled model (default: beside the keyparams, named after the model).
    #[arg(long)]
    compiled: Option<PathBuf>,
    /// Size the output flooding for this many bits of statistical security
    /// (Li-Micciancio-Schultz-Sorrell 2022); refused, with the precision it
    /// needs, where the parameters cannot carry it. Default: flooding at the
    /// measured output noise.
    #[arg(long, value_name = "BITS")]
    flooding_security: Option<u32>,
    /// The encryption scheme.
    #[arg(long, value_enum, default_value = "ckks")]
    backend: Backend,
    #[command(flatten)]
    tfhe: TfheArgs,
}

/// The flooding target `--flooding-security` asks for.
pub fn flooding_target(bits: Option<u32>) -> FloodingTarget {
    bits.map_or(FloodingTarget::NoiseBound, FloodingTarget::Statistical)
}

/// `keyparams --backend tfhe`: compile, write, and say what was chosen.
fn tfhe_keyparams(args: &KeyparamsArgs, compiled: &std::path::Path) -> Result<()> {
    let result = tfhe_workflow::keyparams(
        &args.model,
        &args.calibration,
        &args.output,
        compiled,
        args.tfhe.options()?,
    )?;
    for line in tfhe_workflow::describe(&result.model.keyparams) {
        println!("{line}");
    }
    for (index, stage) in result.compiled.plan.stages.iter().enumerate() {
        println!("  stage {index}: {stage}");
    }
    for line in tfhe_workflow::describe_reads(&result.compiled.budget) {
        println!("{line}");
    }
    let f = &result.compiled.fidelity;
    println!(
        "quantised model vs float on {} calibration samples: same class on {} ({} with simulated encryption noise), mean relative output error {:.4} ({:.4})",
        f.samples, f.same_argmax, f.noisy_same_argmax, f.mean_relative_error, f.noisy_mean_relative_error
    );
    // Exact mode on a small preset can leave too few bits for the network
    // to mean anything (the repository's digits_relu keeps 18 of 200
    // classes on 2_2): say so rather than let it pass as a working model.
    if f.noisy_same_argmax * 10 < f.samples * 9 {
        let hint = if args.tfhe.exact {
            "drop --exact or choose a larger --preset"
        } else {
            "choose a larger --preset"
        };
        eprintln!(
            "warning: the quantised model keeps the float model's class on only {} of {} calibration samples; {hint}",
            f.noisy_same_argmax, f.samples
        );
    }
    println!(
        "keyparams: {} ({})",
        args.output.display(),
        human(file_size(&args.output))
    );
    println!(
        "compiled model: {} ({})",
        compiled.display(),
        human(file_size(compiled))
    );
    Ok(())
}

pub fn keyparams(args: KeyparamsArgs) -> Result<()> {
    let compiled = args.compiled.clone().unwrap_or_else(|| {
        let stem = args
            .model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        args.output.with_file_name(format!("{stem}.heman"))
    });
    if args.backend == Backend::Tfhe {
        return tfhe_keyparams(&args, &compiled);
    }
    let result = workflow::keyparams(
        &args.model,
        &args.calibration,
        flooding_target(args.flooding_security),
        &args.output,
        &compiled,
    )?;
    let kp = &result.model.keyparams;
    if let Some(a) = result.agreement {
        println!(
            "activations replaced by polynomials: the approximated model picks the exact model's class on {}/{} calibration samples ({:.2}%), max relative output deviation {:.2e}",
            a.same_argmax,
            a.samples,
            100.0 * a.fraction(),
            a.max_relative_error
        );
    }
    println!(
        "CKKS N = 2^{}, {} slots, log2(QP) = {:.1} of {} allowed (128-bit), scale 2^{}, depth {}",
        kp.log_n, kp.slots, kp.log_qp, kp.max_log_qp, kp.log_scale, kp.depth
    );
    for line in workflow::describe_parameter_check(&result) {
        println!("{line}");
    }
    let f = &kp.output_flooding;
    println!(
        "output flooding: Gaussian sigma = 2^{:.1} over a measured output noise of 2^{:.1}, about {:.1e} added per output; LMSS22 statistical security {}",
        f.sigma_log2,
        f.measured_noise_log2,
        f.slot_error,
        if f.statistical_security >= 0.0 {
            format!("{:.0} bits", f.statistical_security)
        } else {
            "none provable (flooding at the noise bound; see docs/SECURITY.md)".into()
        }
    );
    println!(
        "{} rotation keys needed: {:?}",
        kp.rotation_steps.len(),
        kp.rotation_steps
    );
    println!(
        "keyparams: {} ({})",
        args.output.display(),
        human(file_size(&args.output))
    );
    println!(
        "compiled model: {} ({})",
        compiled.display(),
        human(file_size(&compiled))
    );
    Ok(())
}

/// Data owner: secret key, public key and evaluation keys.
#[derive(Args)]
pub struct KeygenArgs {
    /// The keyparams.json from the model owner.
    #[arg(short, long)]
    input: PathBuf,
    /// Directory for the keys.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn keygen(args: KeygenArgs) -> Result<()> {
    workflow::keygen(&args.input, &args.output)?;
    for (name, note) in [
        (SECRET_KEY, "keep it: never leaves the data owner"),
        (PUBLIC_KEY, ""),
        (EVAL_KEYS, "send to the model owner"),
    ] {
        let path = args.output.join(name);
        if path.exists() {
            println!("{} ({}) {note}", path.display(), human(file_size(&path)));
        }
    }
    Ok(())
}

/// Data owner: encrypt an input.
#[derive(Args)]
pub struct EncryptArgs {
    /// Keys directory from `heman keygen`.
    #[arg(short, long)]
    keys: PathBuf,
    /// Input .npy.
    #[arg(short, long)]
    input: PathBuf,
    /// Encrypted output.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn encrypt(args: EncryptArgs) -> Result<()> {
    workflow::encrypt(&args.keys, &args.input, &args.output)?;
    println!(
        "{} ({})",
        args.output.display(),
        human(file_size(&args.output))
    );
    Ok(())
}

/// Model owner: run the compiled model on an encrypted input.
#[derive(Args)]
pub struct InferenceArgs {
    /// The compiled model from `heman keyparams`.
    #[arg(short, long)]
    model: PathBuf,
    /// The data owner's evaluation keys (eval.keys).
    #[arg(short, long)]
    keys: PathBuf,
    /// Encrypted input.
    #[arg(short, long)]
    input: PathBuf,
    /// Encrypted output.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn inference(args: InferenceArgs) -> Result<()> {
    let start = std::time::Instant::now();
    workflow::inference(&args.model, &args.keys, &args.input, &args.output)?;
    println!(
        "{} ({}) in {:.3} s",
        args.output.display(),
        human(file_size(&args.output)),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Data owner: decrypt an output.
#[derive(Args)]
pub struct DecryptArgs {
    /// Keys directory from `heman keygen`.
    #[arg(short, long)]
    keys: PathBuf,
    /// Encrypted output from `heman inference`.
    #[arg(short, long)]
    input: PathBuf,
    /// Decrypted .npy.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn decrypt(args: DecryptArgs) -> Result<()> {
    let tensor = workflow::decrypt(&args.keys, &args.input, &args.output)?;
    let argmax = tensor.argmax().unwrap_or(0);
    println!(
        "{} shape {:?}, argmax {argmax}",
        args.output.display(),
        tensor.shape()
    );
    Ok(())
}
