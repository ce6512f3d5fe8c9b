//! `heman eval`: plaintext accuracy of a model on an evaluation set, or of all
//! of HE-MAN's models on their data (`--suite`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use heman_model::io::dataset::{LabelledSet, Task};
use heman_model::{load_onnx, Graph};
use rayon::prelude::*;

use crate::progress;
use crate::tfhe_workflow::{self, TfheArgs};
use crate::workflow::Backend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Plaintext (unencrypted) accuracy of ONNX models.
#[derive(Args)]
pub struct EvalArgs {
    /// The ONNX model.
    #[arg(short, long, required_unless_present = "suite")]
    model: Option<PathBuf>,
    /// Evaluation set: `<label>-<k>.npy` files, `<i>.npy` + `labels.npy`, or
    /// `data/` + `verification/` (LFW pairs).
    #[arg(short, long, required_unless_present = "suite")]
    data: Option<PathBuf>,
    /// Evaluate every HE-MAN model on its data, from HE-MAN's data folder
    /// (e.g. ../shared/data/heman).
    #[arg(long, conflicts_with_all = ["model", "data"])]
    suite: Option<PathBuf>,
    /// Use the first N items only (default: all; 1000 with --suite).
    #[arg(short, long)]
    limit: Option<usize>,
    /// `tfhe`: also the quantised plaintext model the TFHE backend compiles
    /// (exact, and with simulated encryption noise); needs --calibration.
    #[arg(long, value_enum, default_value = "ckks")]
    backend: Backend,
    /// Calibration set (with --backend tfhe).
    #[arg(
        short,
        long,
        required_if_eq("backend", "tfhe"),
        conflicts_with = "suite"
    )]
    calibration: Option<PathBuf>,
    #[command(flatten)]
    tfhe: TfheArgs,
}

/// Plaintext, quantised and noisy-quantised accuracy of a TFHE compilation.
fn evaluate_quantised(
    model: &Path,
    calibration: &Path,
    data: &Path,
    limit: Option<usize>,
    options: heman_compiler::tfhe::TfheOptions,
) -> Result<()> {
    let compiled = tfhe_workflow::compile(model, calibration, options)?;
    let plan = &compiled.compiled.plan;
    let graph = &compiled.graph;
    let set = LabelledSet::load(data, limit)?;
    let profile = heman_compiler::tfhe::NoiseProfile::of(plan);
    let bar = progress::bar(set.inputs.len(), "quantised");
    let verdicts: Vec<(bool, bool, bool)> = set
        .inputs
        .par_iter()
        .enumerate()
        .map(|(index, sample)| {
            let x = graph.check_input(0, &sample.tensor)?;
            let post =
                |t: heman_model::Tensor| plan.postprocess.iter().fold(t, |t, op| op.eval(&[&t]));
            let plain = graph.run(std::slice::from_ref(&x))?.remove(0);
            let quantised = post(plan.evaluate::<ChaCha8Rng>(&x, None)?);
            let mut rng = ChaCha8Rng::seed_from_u64(1_000_003 * index as u64 + 7);
            let noisy = post(plan.evaluate(
                &x,
                Some(heman_compiler::tfhe::Noise {
                    profile: &profile,
                    rng: &mut rng,
                }),
            )?);
            bar.inc(1);
            Ok((
                set.is_correct(index, &plain),
                set.is_correct(index, &quantised),
                set.is_correct(index, &noisy),
            ))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let n = verdicts.len().max(1) as f64;
    let pct = |f: fn(&(bool, bool, bool)) -> bool| {
        100.0 * verdicts.iter().filter(|v| f(v)).count() as f64 / n
    };
    let b = compiled.compiled.bits;
    println!(
        "{}: {} {}: plaintext {:.2}%, quantised {:.2}%, quantised with simulated encryption noise {:.2}% on {} items ({} preset, bits in/act/window/out {}/{}/{}/{}, {} bootstraps)",
        model.display(),
        data.display(),
        task_name(&set),
        pct(|v| v.0),
        pct(|v| v.1),
        pct(|v| v.2),
        verdicts.len(),
        plan.preset.name(),
        b.input,
        b.activation,
        b.window,
        b.output,
        plan.bootstraps()
    );
    Ok(())
}

/// One evaluated model.
pub struct Evaluation {
    pub correct: usize,
    pub total: usize,
    pub seconds_per_item: f64,
}

impl Evaluation {
    pub fn accuracy(&self) -> f64 {
        100.0 * self.correct as f64 / self.total.max(1) as f64
    }
}

pub fn evaluate(graph: &Graph, set: &LabelledSet, label: &str) -> Result<Evaluation> {
    let bar = progress::bar(set.inputs.len(), label);
    let start = Instant::now();
    let verdicts: Vec<bool> = set
        .inputs
        .par_iter()
        .enumerate()
        .map(|(index, sample)| {
            let output = graph
                .run(std::slice::from_ref(&sample.tensor))
                .with_context(|| format!("{}: item '{}'", set.root.display(), sample.name))?;
            bar.inc(1);
            Ok(set.is_correct(index, &output[0]))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let total = verdicts.len();
    Ok(Evaluation {
        correct: verdicts.iter().filter(|&&v| v).count(),
        total,
        seconds_per_item: start.elapsed().as_secs_f64() / total.max(1) as f64,
    })
}

fn task_name(set: &LabelledSet) -> &'static str {
    match set.task {
        Task::Classification { .. } => "accuracy",
        Task::Verification { .. } => "verification accuracy",
    }
}

fn evaluate_one(
    model: &Path,
    data: &Path,
    limit: Option<usize>,
) -> Result<(Evaluation, &'static str)> {
    let graph = load_onnx(model)?;
    let set = LabelledSet::load(data, limit)?;
    let name = model
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned());
    Ok((evaluate(&graph, &set, &name)?, task_name(&set)))
}

pub fn run(args: EvalArgs) -> Result<()> {
    if let Some(root) = args.suite {
        if args.backend == Backend::Tfhe {
            for &(model, calibration, data, preset) in crate::commands::bench_tfhe::SUITE {
                evaluate_quantised(
                    &root.join(model),
                    &root.join(calibration),
                    &root.join(data),
                    Some(args.limit.unwrap_or(1000)),
                    args.tfhe.options_or(preset)?,
                )?;
            }
            return Ok(());
        }
        return run_suite(&root, args.limit.unwrap_or(1000));
    }
    let (Some(model), Some(data)) = (args.model, args.data) else {
        bail!("--model and --data are required without --suite");
    };
    if args.backend == Backend::Tfhe {
        let calibration = args
            .calibration
            .context("--backend tfhe needs --calibration")?;
        return evaluate_quantised(
            &model,
            &calibration,
            &data,
            args.limit,
            args.tfhe.options()?,
        );
    }
    let (eval, task) = evaluate_one(&model, &data, args.limit)?;
    println!(
        "{}: plaintext {task} {:.2}% ({}/{}) on {}, {:.2} ms per item",
        model.display(),
        eval.accuracy(),
        eval.correct,
        eval.total,
        data.display(),
        eval.seconds_per_item * 1e3
    );
    Ok(())
}

/// HE-MAN's models with the data each is scored on.
const SUITE: &[(&str, &str)] = &[
    ("demo/mnist.onnx", "demo/test-data"),
    ("models/cryptonets.onnx", "mnist"),
    ("models/cryptonets_square.onnx", "mnist"),
    ("models/lenet5.onnx", "mnist"),
    ("models/lenet5_square.onnx", "mnist"),
    ("models/mobilefacenets.onnx", "lfw"),
];

fn run_suite(root: &Path, limit: usize) -> Result<()> {
    if !root.is_dir() {
        bail!("{}: HE-MAN data folder not found", root.display());
    }
    println!("| model | data | items | plaintext accuracy | ms per item |");
    println!("|---|---|---|---|---|");
    for (model, data) in SUITE {
        let (eval, task) = evaluate_one(&root.join(model), &root.join(data), Some(limit))?;
        println!(
            "| {model} | {data} ({task}) | {} | {:.2}% | {:.3} |",
            eval.total,
            eval.accuracy(),
            eval.seconds_per_item * 1e3
        );
    }
    Ok(())
}
