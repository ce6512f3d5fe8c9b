//! `heman eval`: accuracy of a model on an evaluation set in plaintext and,
//! given its calibration, of the compiled model simulated in cleartext
//! (exactly, and with the encryption noise drawn) and, where asked,
//! encrypted; or all of HE-MAN's models on their data (`--suite`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use heman_backend::{Backend, CompileOptions, ServingOptions};
use heman_model::io::dataset::LabelledSet;
use heman_model::{load_onnx, Graph};
use rayon::prelude::*;

use crate::commands::bench::Session;
use crate::commands::suite::{self, SUITE};
use crate::progress;
use crate::workflow::{self, BackendArgs};

/// Accuracy of ONNX models: plaintext, simulated, encrypted.
#[derive(Args)]
pub struct EvalArgs {
    /// The ONNX model.
    #[arg(short, long, required_unless_present = "suite")]
    model: Option<PathBuf>,
    /// Evaluation set: `<label>-<k>.npy` files, `<i>.npy` + `labels.npy`, a stacked
    /// `inputs.npy` + `labels.npy`, or `data/` + `verification/` (LFW pairs).
    #[arg(short, long, required_unless_present = "suite")]
    data: Option<PathBuf>,
    /// Calibration set: compile the model for the backend and report its
    /// simulated accuracy too.
    #[arg(short, long, conflicts_with = "suite")]
    calibration: Option<PathBuf>,
    /// Every HE-MAN model on its data, from HE-MAN's data folder
    /// (e.g. ../shared/data/heman): plaintext and simulated.
    #[arg(long, conflicts_with_all = ["model", "data"])]
    suite: Option<PathBuf>,
    /// Use the first N items only (default: all; 1000 with --suite).
    #[arg(short, long)]
    limit: Option<usize>,
    /// Also run the first N items encrypted and compare with the simulation.
    #[arg(long, value_name = "N", default_value_t = 0)]
    encrypted: usize,
    #[command(flatten)]
    backend: BackendArgs,
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

/// The plaintext model's accuracy on `set`.
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

/// Accuracies of one compiled model, in percent, and the agreement of its
/// encrypted and simulated decisions.
struct Simulated {
    items: usize,
    plaintext: f64,
    simulated: f64,
    noisy: f64,
    /// Encrypted items, their accuracy and how many made the simulation's
    /// decision.
    encrypted: Option<(usize, f64, usize)>,
    summary: String,
}

/// Compiles `model` for `backend` and scores plaintext, simulated (exact
/// and noisy) and, for the first `encrypted` items, encrypted answers.
fn simulate(
    model: &Path,
    calibration: &Path,
    set: &LabelledSet,
    backend: &'static dyn Backend,
    options: &CompileOptions,
    encrypted: usize,
) -> Result<Simulated> {
    let (source, compilation) = workflow::compile_with(model, calibration, backend, options)?;
    let owner = backend.load_model(&compilation.model, model, ServingOptions::default())?;
    let bar = progress::bar(set.inputs.len(), "simulated");
    let verdicts: Vec<[bool; 3]> = set
        .inputs
        .par_iter()
        .enumerate()
        .map(|(index, sample)| {
            let x = heman_backend::input::fit_input(&sample.tensor, owner.input(), &sample.name)?;
            // The set's labels score the model's first output.
            let plain = source.graph.run(std::slice::from_ref(&x))?;
            let exact = owner.simulate(&x, None)?;
            let noisy = owner.simulate(&x, Some(1_000_003 * index as u64 + 7))?;
            bar.inc(1);
            Ok([plain, exact, noisy].map(|y| set.is_correct(index, &y[0])))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let n = verdicts.len().max(1) as f64;
    let pct = |k: usize| 100.0 * verdicts.iter().filter(|v| v[k]).count() as f64 / n;
    let encrypted = (encrypted > 0)
        .then(|| -> Result<(usize, f64, usize)> {
            let session = Session::new(source, &compilation, ServingOptions::default())?;
            let count = encrypted.min(set.inputs.len());
            let bar = progress::bar(count, "encrypted");
            let mut right = 0;
            let mut same = 0;
            for index in 0..count {
                let item = session.measure(set, index)?;
                right += item.encrypted as usize;
                same += item.same_as_simulated as usize;
                bar.inc(1);
            }
            bar.finish_and_clear();
            Ok((count, 100.0 * right as f64 / count.max(1) as f64, same))
        })
        .transpose()?;
    Ok(Simulated {
        items: verdicts.len(),
        plaintext: pct(0),
        simulated: pct(1),
        noisy: pct(2),
        encrypted,
        summary: compilation.report.summary.clone(),
    })
}

fn table_header() {
    println!("| model | data | items | plaintext | simulated | simulated with noise | encrypted (items) | encrypted = simulated decisions | backend: parameters |");
    println!("|---|---|---|---|---|---|---|---|---|");
}

fn table_row(model: &str, data: &str, set: &LabelledSet, s: &Simulated, backend: &dyn Backend) {
    let (encrypted, agreement) = match s.encrypted {
        Some((n, acc, same)) => (format!("{acc:.2}% ({n})"), format!("{same}/{n}")),
        None => ("-".into(), "-".into()),
    };
    println!(
        "| {model} | {data} ({}) | {} | {:.2}% | {:.2}% | {:.2}% | {encrypted} | {agreement} | {}: {} |",
        set.task_name(),
        s.items,
        s.plaintext,
        s.simulated,
        s.noisy,
        backend.name(),
        s.summary
    );
}

pub fn run(args: EvalArgs) -> Result<()> {
    let backend = args.backend.backend()?;
    let overrides = args.backend.options();
    if let Some(root) = &args.suite {
        let root = suite::root(root)?;
        let limit = Some(args.limit.unwrap_or(1000));
        table_header();
        for entry in SUITE {
            let Some(options) = entry.options(backend, &overrides)? else {
                continue;
            };
            let set = LabelledSet::load(&root.join(entry.data), limit)?;
            match simulate(
                &root.join(entry.model),
                &root.join(entry.calibration),
                &set,
                backend,
                &options,
                args.encrypted,
            ) {
                Ok(s) => table_row(entry.model, entry.data, &set, &s, backend),
                Err(e) => println!("| {} | {} | not run: {e:#} |", entry.model, entry.data),
            }
        }
        return Ok(());
    }
    let (Some(model), Some(data)) = (args.model, args.data) else {
        bail!("--model and --data are required without --suite");
    };
    let set = LabelledSet::load(&data, args.limit)?;
    if let Some(calibration) = &args.calibration {
        let s = simulate(
            &model,
            calibration,
            &set,
            backend,
            &overrides,
            args.encrypted,
        )?;
        table_header();
        table_row(
            &model.display().to_string(),
            &data.display().to_string(),
            &set,
            &s,
            backend,
        );
        return Ok(());
    }
    let name = model
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned());
    let eval = evaluate(&load_onnx(&model)?, &set, &name)?;
    println!(
        "{}: plaintext {} {:.2}% ({}/{}) on {}, {:.2} ms per item",
        model.display(),
        set.task_name(),
        eval.accuracy(),
        eval.correct,
        eval.total,
        data.display(),
        eval.seconds_per_item * 1e3
    );
    Ok(())
}
