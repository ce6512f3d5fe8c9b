//! HE-MAN's five commands, with HE-MAN's flags, for every backend.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use heman_backend::keys_dir::{EVAL_KEYS, PUBLIC_KEY, SECRET_KEY};
use heman_backend::DecryptionNoise;

use crate::workflow::{self, file_size, human, BackendArgs};

/// Model owner: calibrate, derive parameters (CKKS) or quantise (TFHE), compile the model.
#[derive(Args)]
pub struct KeyparamsArgs {
    /// The ONNX model.
    #[arg(short, long)]
    model: PathBuf,
    /// Calibration inputs: a .zip or .npz of .npy arrays, a directory of them, or one .npy
    /// of samples stacked along its first axis.
    #[arg(short, long)]
    calibration: PathBuf,
    /// Where to write the key parameters (JSON, for the data owner).
    #[arg(short, long, default_value = "keyparams.json")]
    output: PathBuf,
    /// Where to write the compiled model (default: beside the keyparams, named after the model).
    #[arg(long)]
    compiled: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn keyparams(args: KeyparamsArgs) -> Result<()> {
    let compiled = args.compiled.clone().unwrap_or_else(|| {
        let stem = args
            .model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        args.output.with_file_name(format!("{stem}.heman"))
    });
    let result = workflow::keyparams(
        &args.model,
        &args.calibration,
        &args.backend,
        &args.output,
        &compiled,
    )?;
    for line in &result.report.lines {
        println!("{line}");
    }
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
    /// Decrypted output: .npy, or .npz holding every output by name (needed
    /// for a model with several outputs).
    #[arg(short, long)]
    output: PathBuf,
    /// Before the result reaches anyone else (the model owner among them):
    /// add noise of `matched` (the decryption's estimated error) or 2^K times
    /// it, against key recovery from released CKKS results (docs/SECURITY.md).
    #[arg(long, value_parser = DecryptionNoise::parse)]
    decryption_noise: Option<DecryptionNoise>,
}

pub fn decrypt(args: DecryptArgs) -> Result<()> {
    let outputs = workflow::decrypt(&args.keys, &args.input, &args.output, args.decryption_noise)?;
    println!("{}", workflow::describe_outputs(&args.output, &outputs));
    Ok(())
}
