//! `heman bench --backend tfhe`: encrypted accuracy, agreement with the
//! quantised plaintext model, bootstraps, key sizes and the time split per
//! stage, with keys in memory (one key pair per preset: TFHE keys do not
//! depend on the model).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use heman_compiler::tfhe::{compile_tfhe, TfheOptions};
use heman_model::io::dataset::{load_arrays, LabelledSet, Sample, Task};
use heman_model::{load_onnx, CalibrationRanges, Graph, Tensor};
use heman_runtime::tfhe::{decrypt_integers, encrypt_input, StageTiming, TfheExecutor};
use heman_tfhe::{ClientKey, CompressedServerKey, Preset, ServerKey};

use crate::commands::bench_results::{self, median, ItemResult, Summary};
use crate::progress;
use crate::tfhe_workflow::{self, TfheArgs};
use crate::workflow::{fit_to, human};

/// One key pair of a preset, kept for every model of a run.
pub struct Keys {
    pub client: ClientKey,
    pub server: ServerKey,
    pub compressed_bytes: usize,
    pub expanded_bytes: u64,
}

impl Keys {
    pub fn generate(options: &TfheOptions) -> Keys {
        let bar = progress::bar(2, "keygen");
        let client = ClientKey::generate(options.preset);
        let compressed: CompressedServerKey = client.compressed_server_key();
        bar.inc(1);
        let compressed_bytes = compressed.to_bytes().len();
        let server = compressed.expand();
        bar.finish_and_clear();
        let expanded_bytes = server.expanded_size();
        Keys {
            client,
            server,
            compressed_bytes,
            expanded_bytes,
        }
    }
}

/// HE-MAN's models for the TFHE rows: (model, calibration, data, preset).
/// cryptonets needs 2_3's finer reads to stay within a point of its
/// plaintext accuracy; the others meet their targets on 2_2.
pub const SUITE: &[(&str, &str, &str, Preset)] = &[
    (
        "demo/mnist.onnx",
        "demo/calibration-data.zip",
        "demo/test-data",
        Preset::Message2Carry2,
    ),
    (
        "models/cryptonets.onnx",
        "mnist/calibration-data.zip",
        "mnist",
        Preset::Message2Carry3,
    ),
    (
        "models/mobilefacenets.onnx",
        "lfw/calibration",
        "lfw",
        Preset::Message2Carry2,
    ),
];

pub fn header() {
    println!(
        "| model | preset, bits (in/act/window/out) | bootstraps | items | plaintext acc. | quantised acc. | encrypted acc. | encrypted = quantised decisions | encrypted = quantised outputs | inference median (p90) | per stage (median) | server key (compressed / expanded) | input / output |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

/// Benchmarks one model on its data, printing one table row; with
/// `results`, each item is kept there as it is measured (see
/// [`bench_results`]).
pub fn bench_model(
    model: &Path,
    calibration: &Path,
    data: &Path,
    limit: usize,
    options: TfheOptions,
    keys: &Keys,
    results: Option<&Path>,
) -> Result<()> {
    let compiled = tfhe_workflow::compile(model, calibration, options)?;
    let plan = &compiled.compiled.plan;
    let kp = &compiled.model.keyparams;
    let mut log = bench_results::open_for(
        results,
        model,
        bench_results::Compilation {
            model: &kp.model_fingerprint,
            params: &kp.params_fingerprint,
        },
    )?;
    let set = LabelledSet::load(data, Some(limit))?;
    let executor = TfheExecutor::new(&keys.server, plan)?;
    let bar = progress::bar(set.inputs.len(), "encrypted");
    let mut measured = Vec::with_capacity(set.inputs.len());
    for (index, sample) in set.inputs.iter().enumerate() {
        let result = log.result_of(&sample.name, || {
            let x = fit_to(
                &sample.tensor,
                &kp.input.name,
                &plan.input.shape,
                None,
                &sample.name,
            )?;
            let post = |t: Tensor| plan.postprocess.iter().fold(t, |t, op| op.eval(&[&t]));
            let plain = compiled.graph.run(std::slice::from_ref(&x))?.remove(0);
            let reference_u = plan.run_exact(&plan.quantise_input(&x)?)?;
            let quantised = post(plan.dequantise_output(&reference_u));
            let seeded = encrypt_input(&plan.input, &keys.client, &x)?;
            let input_bytes = seeded.to_bytes().len();
            let start = Instant::now();
            let (out, timings) = executor.run(seeded.expand(), |_| {})?;
            let seconds = start.elapsed().as_secs_f64();
            let mut stage_seconds = vec![0.0; plan.stages.len()];
            for t in &timings {
                stage_seconds[t.stage] += t.seconds;
            }
            let output_bytes = out.to_bytes().len();
            let u = decrypt_integers(&plan.output, &keys.client, &out)?;
            let encrypted = post(plan.dequantise_output(&u));
            let (q, e) = (
                set.is_correct(index, &quantised),
                set.is_correct(index, &encrypted),
            );
            let same_decision = match set.task {
                Task::Verification { .. } => q == e,
                Task::Classification { .. } => quantised.argmax() == encrypted.argmax(),
            };
            Ok(ItemResult {
                item: sample.name.clone(),
                plaintext: set.is_correct(index, &plain),
                encrypted: e,
                same_decision,
                seconds,
                input_bytes,
                output_bytes,
                quantised: Some(q),
                same_output: Some(u == reference_u),
                stage_seconds,
            })
        })?;
        measured.push(result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let s = Summary::of(&measured);
    let name = model
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned());
    let split: Vec<String> = plan
        .stages
        .iter()
        .zip(&s.stage_medians)
        .map(|(stage, t)| format!("{} {t:.3} s", stage.name()))
        .collect();
    let b = compiled.compiled.bits;
    println!(
        "| {name} | {} {}/{}/{}/{}{} | {} | {} | {:.1}% | {:.1}% | {:.1}% | {}/{} | {}/{} | {:.3} s ({:.3} s) | {} | {} / {} | {} / {} |",
        plan.preset.name(),
        b.input,
        b.activation,
        b.window,
        b.output,
        if options.exact { " exact" } else { "" },
        plan.bootstraps(),
        s.items,
        s.plaintext,
        s.quantised,
        s.encrypted,
        s.same_decision,
        s.items,
        s.same_output,
        s.items,
        s.median,
        s.p90,
        split.join(", "),
        human(keys.compressed_bytes as u64),
        human(keys.expanded_bytes),
        human(s.input_bytes as u64),
        human(s.output_bytes as u64),
    );
    Ok(())
}

/// `count` inputs of `shape` uniform in `[lo, hi]` (deterministic; the
/// first two are all `lo` and all `hi`).
fn uniform_samples(shape: &[usize], lo: f64, hi: f64, count: usize) -> Vec<Sample> {
    let volume: usize = shape.iter().product();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..count)
        .map(|k| {
            let data = (0..volume)
                .map(|_| match k {
                    0 => lo,
                    1 => hi,
                    _ => {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64)
                    }
                })
                .collect();
            Sample {
                name: format!("uniform-{k}"),
                tensor: Tensor::new(shape.to_vec(), data),
            }
        })
        .collect()
}

/// The calibration of a HE-MAN test model: an archive of inputs, or (as
/// HE-MAN's Concrete tests give them) a `[lower, upper]` pair, from which
/// uniform inputs are drawn.
fn test_calibration(graph: &Graph, path: &Path) -> Result<Vec<Sample>> {
    let samples = load_arrays(path)?;
    let shape = graph.shape(graph.inputs[0]).to_vec();
    match &samples[..] {
        [range] if range.tensor.len() == 2 && shape.iter().product::<usize>() != 2 => {
            let (lo, hi) = (range.tensor.data()[0], range.tensor.data()[1]);
            Ok(uniform_samples(&shape, lo, hi, 32))
        }
        _ => Ok(samples),
    }
}

/// The calibration sets of `dir` that fit a model's input.
fn calibrations_for(graph: &Graph, dir: &Path) -> Result<Vec<(PathBuf, Vec<Sample>)>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries
        .into_iter()
        .filter_map(|path| {
            let samples = test_calibration(graph, &path).ok()?;
            graph.check_input(0, &samples.first()?.tensor).ok()?;
            Some((path, samples))
        })
        .collect())
}

/// HE-MAN's small test models in exact mode: for every calibration set that
/// fits, compile, run encrypted on the first inputs, compare with the
/// quantised plaintext model.
pub fn bench_test_models(
    root: &Path,
    options: TfheOptions,
    keys: &Keys,
    inputs: usize,
) -> Result<()> {
    let (models_dir, calibration_dir) = (
        root.join("tests/models"),
        root.join("tests/calibration-data"),
    );
    let mut models: Vec<PathBuf> = std::fs::read_dir(&models_dir)
        .with_context(|| format!("reading {}", models_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    models.sort();
    println!("| test model | calibration sets | compiled (exact, {}) | bootstraps | encrypted = quantised plaintext | inference median |", options.preset.name());
    println!("|---|---|---|---|---|---|");
    for model in models {
        let name = model
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned());
        let graph = match load_onnx(&model) {
            Ok(g) => g,
            Err(e) => {
                println!("| {name} | - | not loaded: {e} | | | |");
                continue;
            }
        };
        let sets = calibrations_for(&graph, &calibration_dir)?;
        let (mut compiled_count, mut equal, mut total) = (0, 0, 0);
        // Plans differ per calibration set (a ReLU whose calibrated input
        // is never negative compiles to no bootstrap): the range of counts.
        let mut bootstraps: Vec<usize> = Vec::new();
        let mut failures = Vec::new();
        let mut times = Vec::new();
        for (path, samples) in &sets {
            let set_name = path
                .file_name()
                .map_or(String::new(), |f| f.to_string_lossy().into_owned());
            let ranges = CalibrationRanges::measure(&graph, samples)?;
            let exact = TfheOptions {
                exact: true,
                search_samples: 16,
                report_samples: 16,
                ..options
            };
            let compiled = match compile_tfhe(&graph, samples, &ranges, exact) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{set_name}: {e}"));
                    continue;
                }
            };
            compiled_count += 1;
            let plan = &compiled.plan;
            bootstraps.push(plan.bootstraps());
            let executor = TfheExecutor::new(&keys.server, plan)?;
            for sample in samples.iter().take(inputs) {
                let x = &sample.tensor;
                let reference = plan.run_exact(&plan.quantise_input(x)?)?;
                let input = encrypt_input(&plan.input, &keys.client, x)?.expand();
                let start = Instant::now();
                let (out, _): (_, Vec<StageTiming>) = executor.run(input, |_| {})?;
                times.push(start.elapsed().as_secs_f64());
                equal +=
                    (decrypt_integers(&plan.output, &keys.client, &out)? == reference) as usize;
                total += 1;
            }
        }
        let shown: Vec<String> = failures.iter().take(2).cloned().collect();
        println!(
            "| {name} | {} | {compiled_count}/{}{} | {} | {equal}/{total} | {:.3} s |",
            sets.len(),
            sets.len(),
            if shown.is_empty() {
                String::new()
            } else {
                format!(" ({})", shown.join("; "))
            },
            match (bootstraps.iter().min(), bootstraps.iter().max()) {
                (Some(lo), Some(hi)) if lo != hi => format!("{lo} to {hi}"),
                (Some(n), _) => n.to_string(),
                _ => "-".into(),
            },
            median(&mut times)
        );
    }
    Ok(())
}

/// The key pair of `options`' preset, made on first use.
fn keys_for<'a>(keys: &'a mut HashMap<Preset, Keys>, options: &TfheOptions) -> &'a Keys {
    keys.entry(options.preset)
        .or_insert_with(|| Keys::generate(options))
}

/// The TFHE rows of `heman bench --suite`: HE-MAN's test models in exact
/// mode, then its networks, each on its preset unless `--preset` names one.
pub fn run_suite(root: &Path, limit: usize, args: &TfheArgs, results: Option<&Path>) -> Result<()> {
    if !root.is_dir() {
        bail!("{}: HE-MAN data folder not found", root.display());
    }
    let mut keys: HashMap<Preset, Keys> = HashMap::new();
    let options = args.options()?;
    bench_test_models(root, options, keys_for(&mut keys, &options), 2)?;
    println!();
    header();
    for &(model, calibration, data, preset) in SUITE {
        let options = args.options_or(preset)?;
        let keys = keys_for(&mut keys, &options);
        let model = root.join(model);
        let results = bench_results::results_path(results, true, &model);
        if let Err(e) = bench_model(
            &model,
            &root.join(calibration),
            &root.join(data),
            limit,
            options,
            keys,
            results.as_deref(),
        ) {
            println!("| {} | not run: {e:#} |", model.display());
        }
    }
    Ok(())
}
