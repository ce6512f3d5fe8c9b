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
        return run_suite(&root, args.limit.unwrap_or(1000));
    }
    let (Some(model), Some(data)) = (args.model, args.data) else {
        bail!("--model and --data are required without --suite");
    };
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
