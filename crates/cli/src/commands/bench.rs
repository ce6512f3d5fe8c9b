//! `heman bench`: encrypted accuracy and latency, per model, with keys held
//! in memory (what a serving model owner sees).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use heman_artifacts::CiphertextFile;
use heman_ckks::Decryptor;
use heman_compiler::flooding::FloodingTarget;
use heman_model::io::dataset::{LabelledSet, Task};
use heman_runtime::{encrypt_tensor, Executor, InputKey, PreparedPlan};

use crate::commands::bench_results::{self, ItemResult, Summary};
use crate::commands::bench_tfhe;
use crate::progress;
use crate::tfhe_workflow::TfheArgs;
use crate::workflow::{self, fit_input, human, Backend};

/// Encrypted accuracy and latency of models on their data (CKKS, or TFHE
/// with `--backend tfhe`).
#[derive(Args)]
pub struct BenchArgs {
    /// The ONNX model (default: the repository's digits example).
    #[arg(short, long, requires_all = ["calibration", "data"])]
    model: Option<PathBuf>,
    /// Calibration set for the model.
    #[arg(short, long)]
    calibration: Option<PathBuf>,
    /// Evaluation set (see `heman eval`).
    #[arg(short, long)]
    data: Option<PathBuf>,
    /// Every HE-MAN model on its data, from HE-MAN's data folder.
    #[arg(long, conflicts_with_all = ["model", "calibration", "data"])]
    suite: Option<PathBuf>,
    /// Encrypted items per model.
    #[arg(short, long, default_value_t = 20)]
    limit: usize,
    /// Keep each item's result in this JSON-lines file (a folder of them with
    /// `--suite`) as it is measured; a rerun resumes after the items there.
    #[arg(long, value_name = "PATH")]
    results: Option<PathBuf>,
    /// Memory for encoded weight diagonals kept across inferences, in MiB.
    #[arg(long, default_value_t = 1024)]
    cache_mib: usize,
    /// Output flooding for this many bits of statistical security (see
    /// `heman keyparams --flooding-security`).
    #[arg(long, value_name = "BITS")]
    flooding_security: Option<u32>,
    /// The encryption scheme.
    #[arg(long, value_enum, default_value = "ckks")]
    backend: Backend,
    #[command(flatten)]
    tfhe: TfheArgs,
}

/// HE-MAN's models: (model, calibration, data).
const SUITE: &[(&str, &str, &str)] = &[
    (
        "demo/mnist.onnx",
        "demo/calibration-data.zip",
        "demo/test-data",
    ),
    (
        "models/cryptonets_square.onnx",
        "mnist/calibration-data.zip",
        "mnist",
    ),
    (
        "models/cryptonets.onnx",
        "mnist/calibration-data.zip",
        "mnist",
    ),
    (
        "models/lenet5_square.onnx",
        "mnist/calibration-data.zip",
        "mnist",
    ),
    ("models/lenet5.onnx", "mnist/calibration-data.zip", "mnist"),
    ("models/mobilefacenets.onnx", "lfw/calibration", "lfw"),
];

pub fn run(args: BenchArgs) -> Result<()> {
    if args.backend == Backend::Tfhe {
        return run_tfhe(args);
    }
    println!(
        "| model | N | depth | items | plaintext acc. | encrypted acc. | same as plaintext | inference median (p90) | eval keys | input | output | flooding sigma |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let settings = Settings {
        limit: args.limit,
        results: args.results.clone(),
        suite: args.suite.is_some(),
        cache_mib: args.cache_mib,
        flooding: super::workflow::flooding_target(args.flooding_security),
    };
    if let Some(root) = args.suite {
        if !root.is_dir() {
            bail!("{}: HE-MAN data folder not found", root.display());
        }
        for (model, calibration, data) in SUITE {
            if let Err(e) = bench_one(
                &root.join(model),
                &root.join(calibration),
                &root.join(data),
                &settings,
            ) {
                println!("| {model} | - | - | - | - | not run: {e:#} | | | | | | |");
            }
        }
        return Ok(());
    }
    let example = workflow::example_dir();
    let model = args
        .model
        .unwrap_or_else(|| example.join("digits_square.onnx"));
    let calibration = args
        .calibration
        .unwrap_or_else(|| example.join("calibration.npz"));
    let data = args.data.unwrap_or_else(|| example.join("test"));
    bench_one(&model, &calibration, &data, &settings)
}

/// The TFHE rows: HE-MAN's suite (test models, then its networks), or one model.
fn run_tfhe(args: BenchArgs) -> Result<()> {
    if let Some(root) = &args.suite {
        return bench_tfhe::run_suite(root, args.limit, &args.tfhe, args.results.as_deref());
    }
    let options = args.tfhe.options()?;
    let example = workflow::example_dir();
    let model = args
        .model
        .unwrap_or_else(|| example.join("digits_relu.onnx"));
    let calibration = args
        .calibration
        .unwrap_or_else(|| example.join("calibration.npz"));
    let data = args.data.unwrap_or_else(|| example.join("test"));
    let keys = bench_tfhe::Keys::generate(&options);
    bench_tfhe::header();
    let results = args.results.as_deref();
    bench_tfhe::bench_model(
        &model,
        &calibration,
        &data,
        args.limit,
        options,
        &keys,
        results,
    )
}

/// What every benchmarked model shares.
struct Settings {
    limit: usize,
    /// `--results`: the file (one model) or folder (a suite).
    results: Option<PathBuf>,
    suite: bool,
    cache_mib: usize,
    flooding: FloodingTarget,
}

fn bench_one(model: &Path, calibration: &Path, data: &Path, settings: &Settings) -> Result<()> {
    let compiled = workflow::compile(model, calibration, settings.flooding)?;
    let (kp, params) = (&compiled.model.keyparams, &compiled.params);
    let results_path =
        bench_results::results_path(settings.results.as_deref(), settings.suite, model);
    let mut log = bench_results::open_for(
        results_path.as_deref(),
        model,
        bench_results::Compilation {
            model: &kp.model_fingerprint,
            params: &kp.params_fingerprint,
        },
    )?;
    let keys = workflow::make_keys(kp, params)?;
    let eval_bytes = keys.evaluation.to_bytes(params).len();
    let decryptor = Decryptor::new(params, &keys.secret)?;
    let executor = Executor::new(params, &keys.evaluation.relin, &keys.evaluation.galois);
    let prepared = PreparedPlan::new(&compiled.model.plan, params, settings.cache_mib << 20);
    let set = LabelledSet::load(data, Some(settings.limit))?;
    let bar = progress::bar(set.inputs.len(), "encrypted");
    let mut results = Vec::with_capacity(set.inputs.len());
    for (index, sample) in set.inputs.iter().enumerate() {
        let result = log.result_of(&sample.name, || {
            let x = fit_input(&sample.tensor, &kp.input, &sample.name)?;
            let plain = compiled.graph.run(std::slice::from_ref(&x))?.remove(0);
            let cts = encrypt_tensor(params, InputKey::Secret(&decryptor), &kp.input.layout, &x)?;
            let input_bytes = CiphertextFile {
                ciphertexts: cts.clone(),
            }
            .to_bytes(params)
            .len();
            let start = Instant::now();
            let out = executor.run_prepared(&prepared, cts, |_| {})?;
            let out = workflow::flood(kp, params, &keys.evaluation, out)?;
            let seconds = start.elapsed().as_secs_f64();
            let output_bytes = CiphertextFile {
                ciphertexts: out.clone(),
            }
            .to_bytes(params)
            .len();
            let y = workflow::decrypt_output(kp, params, &decryptor, &out)?;
            let (plaintext, encrypted) = (set.is_correct(index, &plain), set.is_correct(index, &y));
            let same_decision = plaintext == encrypted
                && (matches!(set.task, Task::Verification { .. }) || plain.argmax() == y.argmax());
            Ok(ItemResult {
                item: sample.name.clone(),
                plaintext,
                encrypted,
                same_decision,
                seconds,
                input_bytes,
                output_bytes,
                quantised: None,
                same_output: None,
                stage_seconds: Vec::new(),
            })
        })?;
        results.push(result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let s = Summary::of(&results);
    let name = model
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned());
    println!(
        "| {name} | 2^{} | {} | {} | {:.1}% | {:.1}% | {}/{} | {:.3} s ({:.3} s) | {} | {} | {} | 2^{:.1} |",
        kp.log_n,
        kp.depth,
        s.items,
        s.plaintext,
        s.encrypted,
        s.same_decision,
        s.items,
        s.median,
        s.p90,
        human(eval_bytes as u64),
        human(s.input_bytes as u64),
        human(s.output_bytes as u64),
        kp.output_flooding.sigma_log2,
    );
    Ok(())
}
