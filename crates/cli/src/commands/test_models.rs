//! HE-MAN's small per-operator test models (`tests/models`), each compiled
//! with every calibration set of `tests/calibration-data` that fits its
//! input and run encrypted on a few inputs: the decrypted output must equal
//! the compiled model's simulation (exactly, for TFHE in exact mode).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use heman_backend::{Backend, CompileOptions, ModelSource, ServingOptions, Silent};
use heman_model::io::dataset::{load_arrays, Sample};
use heman_model::{load_onnx, Graph, Tensor};

use crate::commands::bench::Session;
use crate::commands::bench_results::median;

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

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned())
}

/// What one test model's compilations and runs gave.
#[derive(Default)]
struct Row {
    sets: usize,
    compiled: usize,
    equal: usize,
    total: usize,
    summaries: Vec<String>,
    failures: Vec<String>,
    times: Vec<f64>,
}

/// Compiles `graph` with one calibration set and runs it encrypted on its
/// first `inputs` samples.
fn run_set(
    row: &mut Row,
    backend: &'static dyn Backend,
    options: &CompileOptions,
    graph: &Graph,
    (path, samples): (&Path, &[Sample]),
    inputs: usize,
) -> Result<()> {
    let source = ModelSource::new(file_name(path), graph.clone(), samples.to_vec(), &Silent)?;
    let compilation = match backend.compile(&source, options, &Silent) {
        Ok(c) => c,
        Err(e) => {
            row.failures.push(format!("{}: {e}", file_name(path)));
            return Ok(());
        }
    };
    row.compiled += 1;
    if !row.summaries.contains(&compilation.report.summary) {
        row.summaries.push(compilation.report.summary.clone());
    }
    let session = Session::new(source, &compilation, ServingOptions::default())?;
    for sample in samples.iter().take(inputs) {
        let x = &sample.tensor;
        let reference = session.owner.simulate(x, None)?;
        let input = session.data_owner.encrypt(x, &sample.name)?;
        let start = Instant::now();
        let inference =
            session
                .owner
                .infer(&session.keys, &input, Path::new(&sample.name), &mut |_| {})?;
        row.times.push(start.elapsed().as_secs_f64());
        let y = session
            .data_owner
            .decrypt(&inference.output, Path::new(&sample.name))?;
        row.equal += (y == reference) as usize;
        row.total += 1;
    }
    Ok(())
}

/// The sweep's table: per test model, the calibration sets that fit, how
/// many compiled, and how many encrypted runs equal the simulation.
pub fn sweep(
    root: &Path,
    backend: &'static dyn Backend,
    options: &CompileOptions,
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
    println!(
        "| test model | calibration sets | compiled ({}, {options:?}) | plans | encrypted = simulated | inference median |",
        backend.name()
    );
    println!("|---|---|---|---|---|---|");
    for model in models {
        let name = file_name(&model);
        let graph = match load_onnx(&model) {
            Ok(g) => g,
            Err(e) => {
                println!("| {name} | - | not loaded: {e} | | | |");
                continue;
            }
        };
        let sets = calibrations_for(&graph, &calibration_dir)?;
        let mut row = Row {
            sets: sets.len(),
            ..Row::default()
        };
        for (path, samples) in &sets {
            run_set(&mut row, backend, options, &graph, (path, samples), inputs)?;
        }
        let shown: Vec<String> = row.failures.iter().take(2).cloned().collect();
        println!(
            "| {name} | {} | {}/{}{} | {} | {}/{} | {:.3} s |",
            row.sets,
            row.compiled,
            row.sets,
            if shown.is_empty() {
                String::new()
            } else {
                format!(" ({})", shown.join("; "))
            },
            row.summaries.join("; "),
            row.equal,
            row.total,
            median(&mut row.times)
        );
    }
    Ok(())
}
