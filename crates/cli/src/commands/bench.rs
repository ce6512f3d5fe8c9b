//! `heman bench`: encrypted accuracy, agreement with the plaintext model and
//! with the compiled model's cleartext simulation, latency and the time per
//! stage, key and ciphertext sizes, with keys held in memory (what a serving
//! model owner sees): one loop for every backend.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use heman_backend::{
    Backend, Compilation, CompileOptions, DataOwner, EvaluationKeys, ModelOwner, ModelSource,
    ServingOptions,
};
use heman_model::io::dataset::LabelledSet;
use heman_model::Tensor;

use crate::commands::bench_results::{self, ItemResult, Summary};
use crate::commands::suite::{self, SUITE, TEST_MODELS};
use crate::commands::test_models;
use crate::progress;
use crate::workflow::{self, human, BackendArgs};

/// Encrypted accuracy and latency of models on their data.
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
    /// Memory for encoded weights kept across inferences, in MiB (default: a quarter of
    /// this machine's memory, at least 1024).
    #[arg(long)]
    cache_mib: Option<usize>,
    /// Throughput models: run each batch's inference this many times and
    /// report the median (the batch is one measurement otherwise).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let backend = args.backend.backend()?;
    let overrides = args.backend.options();
    let serving = ServingOptions {
        cache_bytes: args
            .cache_mib
            .map_or_else(heman_backend::default_cache_bytes, |m| m << 20),
    };
    if let Some(root) = &args.suite {
        let root = suite::root(root)?;
        if let Some((_, settings)) = TEST_MODELS
            .iter()
            .find(|(b, _)| *b == suite::settings_name(backend))
        {
            let options = suite::options_of(settings, &overrides)?;
            test_models::sweep(root, backend, &options, 2)?;
            println!();
        }
        header();
        for entry in SUITE {
            let Some(options) = entry.options(backend, &overrides)? else {
                continue;
            };
            let model = root.join(entry.model);
            let results = bench_results::results_path(args.results.as_deref(), true, &model);
            let bench = Bench {
                backend,
                options,
                serving,
                limit: args.limit,
                repeat: args.repeat as usize,
                results: results.as_deref(),
            };
            if let Err(e) = bench.model(
                &model,
                &root.join(entry.calibration),
                &root.join(entry.data),
            ) {
                println!("| {} | {} | not run: {e:#} |", entry.model, backend.name());
            }
        }
        return Ok(());
    }
    let example = workflow::example_dir();
    let model = args
        .model
        .unwrap_or_else(|| workflow::example_model(backend));
    let calibration = args
        .calibration
        .unwrap_or_else(|| example.join("calibration.npz"));
    let data = args.data.unwrap_or_else(|| example.join("test"));
    header();
    Bench {
        backend,
        options: overrides,
        serving,
        limit: args.limit,
        repeat: args.repeat as usize,
        results: args.results.as_deref(),
    }
    .model(&model, &calibration, &data)
}

fn header() {
    println!(
        "| model | backend: parameters | items | plaintext acc. | simulated acc. | encrypted acc. | same decision as plaintext | as simulation | output vs simulation: exact, max deviation | inference median (p90) | per stage (median) | eval keys (file / in memory) | input / output |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

/// How every model of a run is benchmarked.
struct Bench<'a> {
    backend: &'static dyn Backend,
    options: CompileOptions,
    serving: ServingOptions,
    limit: usize,
    /// Inferences per throughput batch.
    repeat: usize,
    /// The results file of this model, when kept.
    results: Option<&'a Path>,
}

impl Bench<'_> {
    /// Benchmarks one model on its data, printing one table row; with a
    /// results file, each item is kept there as it is measured.
    fn model(&self, model: &Path, calibration: &Path, data: &Path) -> Result<()> {
        let (source, compilation) =
            workflow::compile_with(model, calibration, self.backend, &self.options)?;
        let mut log =
            bench_results::open_for(self.results, model, fingerprints(&compilation)?.as_ref())?;
        let session = Session::new(source, &compilation, self.serving)?;
        let set = LabelledSet::load(data, Some(self.limit))?;
        let bar = progress::bar(set.inputs.len(), "encrypted");
        let mut measured = Vec::with_capacity(set.inputs.len());
        let mut batches = Vec::new();
        if let Some(batch) = session.owner.max_batch() {
            for first in (0..set.inputs.len()).step_by(batch) {
                let indices: Vec<usize> = (first..(first + batch).min(set.inputs.len())).collect();
                if indices
                    .iter()
                    .all(|&i| log.recorded(&set.inputs[i].name).is_some())
                {
                    measured.extend(indices.iter().map(|&i| {
                        log.recorded(&set.inputs[i].name)
                            .cloned()
                            .expect("recorded")
                    }));
                } else {
                    let (results, timing) =
                        session.measure_batch(&set, &indices, (batch, self.repeat))?;
                    for result in results {
                        measured.push(log.result_of(&result.item.clone(), || Ok(result))?);
                    }
                    batches.push(timing);
                }
                bar.inc(indices.len() as u64);
            }
        } else {
            for index in 0..set.inputs.len() {
                measured
                    .push(log.result_of(&set.inputs[index].name, || session.measure(&set, index))?);
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        let s = Summary::of(&measured);
        let name = model
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned());
        let split: Vec<String> = s
            .stage_medians
            .iter()
            .map(|(stage, t)| format!("{stage} {t:.3} s"))
            .collect();
        println!(
            "| {name} | {}: {} | {} | {:.1}% | {:.1}% | {:.1}% | {}/{} | {}/{} | {}/{}, {:.1e}{} | {:.3} s ({:.3} s) | {} | {} / {} | {} / {} |",
            self.backend.name(),
            compilation.report.summary,
            s.items,
            s.plaintext,
            s.simulated,
            s.encrypted,
            s.same_as_plaintext,
            s.items,
            s.same_as_simulated,
            s.items,
            s.same_output,
            s.items,
            s.max_deviation,
            if s.non_finite > 0 {
                format!(" ({} not finite)", s.non_finite)
            } else {
                String::new()
            },
            s.median,
            s.p90,
            split.join(", "),
            human(session.evaluation_bytes as u64),
            human(session.keys.memory_bytes),
            human(s.input_bytes as u64),
            human(s.output_bytes as u64),
        );
        if let Some(line) = BatchTiming::summary(&batches) {
            println!("{name}: {line}");
        }
        Ok(())
    }
}

/// One throughput batch measured: a full batch (the set's items repeated
/// to fill the slots), timed per step.
#[derive(Debug, Clone, Copy)]
pub struct BatchTiming {
    /// Inputs the batch held (the slots).
    pub inputs: usize,
    /// The data owner's encryption of the batch, seconds.
    pub encrypt: f64,
    /// The model owner's inference, seconds.
    pub inference: f64,
    /// The data owner's decryption, seconds.
    pub decrypt: f64,
    /// The encrypted batch's size, bytes.
    pub upload_bytes: usize,
}

impl BatchTiming {
    /// A line on the batches: the medians per image and the images per
    /// second of the model owner's inference.
    fn summary(batches: &[Self]) -> Option<String> {
        let median = |f: &dyn Fn(&Self) -> f64| {
            let mut v: Vec<f64> = batches.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let per_image = |f: &dyn Fn(&Self) -> f64| median(&|b| f(b) / b.inputs as f64);
        Some(format!(
            "throughput packing, {} batch(es) of {} inputs: inference {:.1} images/s ({:.3} s per batch, median), per image: inference {:.3} ms, encryption {:.3} ms, decryption {:.3} ms, upload {}",
            batches.len(),
            batches.first()?.inputs,
            1.0 / per_image(&|b| b.inference)?,
            median(&|b| b.inference)?,
            1e3 * per_image(&|b| b.inference)?,
            1e3 * per_image(&|b| b.encrypt)?,
            1e3 * per_image(&|b| b.decrypt)?,
            human(per_image(&|b| b.upload_bytes as f64)? as u64),
        ))
    }
}

/// The fingerprints of a compilation (its keyparams' `model_fingerprint`
/// and `params_fingerprint`), which bind a results file to it.
fn fingerprints(compilation: &Compilation) -> Result<Owned> {
    let value: serde_json::Value =
        serde_json::from_str(&compilation.keyparams).context("the compilation's keyparams")?;
    let field = |name: &str| value[name].as_str().unwrap_or_default().to_string();
    Ok(Owned {
        model: field("model_fingerprint"),
        params: field("params_fingerprint"),
    })
}

/// Owned fingerprints, lent as [`bench_results::Fingerprints`].
struct Owned {
    model: String,
    params: String,
}

impl Owned {
    fn as_ref(&self) -> bench_results::Fingerprints<'_> {
        bench_results::Fingerprints {
            model: &self.model,
            params: &self.params,
        }
    }
}

/// One model compiled and keyed, both parties in memory.
pub struct Session {
    /// The model and its calibration.
    pub source: ModelSource,
    /// The model owner's side.
    pub owner: Box<dyn ModelOwner>,
    /// The data owner's side.
    pub data_owner: Box<dyn DataOwner>,
    /// The evaluation keys, parsed by the model owner.
    pub keys: EvaluationKeys,
    /// Their file's size.
    pub evaluation_bytes: usize,
}

impl Session {
    /// Loads the compiled model, makes keys, registers them.
    pub fn new(
        source: ModelSource,
        compilation: &Compilation,
        serving: ServingOptions,
    ) -> Result<Self> {
        let backend = compilation.backend;
        let origin = Path::new(&source.name);
        let owner = backend.load_model(&compilation.model, origin, serving)?;
        let bars = progress::Bars::default();
        let files = backend.keygen(compilation.keyparams.as_bytes(), origin, &bars)?;
        let data_owner =
            backend.data_owner(compilation.keyparams.as_bytes(), &files.secret, origin)?;
        let keys = owner.parse_keys(&files.evaluation, Path::new("eval.keys"))?;
        owner.check_keys(&keys)?;
        Ok(Self {
            source,
            owner,
            data_owner,
            keys,
            evaluation_bytes: files.evaluation.len(),
        })
    }

    /// Items `indices` of `set` in one throughput batch of `slots` inputs
    /// (the items repeated to fill it): each plaintext, simulated and
    /// encrypted, its time the batch's share; and the batch's timing.
    pub fn measure_batch(
        &self,
        set: &LabelledSet,
        indices: &[usize],
        (slots, repeat): (usize, usize),
    ) -> Result<(Vec<ItemResult>, BatchTiming)> {
        let inputs = indices
            .iter()
            .map(|&i| {
                let sample = &set.inputs[i];
                heman_backend::input::fit_input(
                    &sample.tensor,
                    self.data_owner.input(),
                    &sample.name,
                )
            })
            .collect::<heman_backend::Result<Vec<_>>>()?;
        let data: Vec<f64> = inputs
            .iter()
            .cycle()
            .take(slots)
            .flat_map(|x| x.data().to_vec())
            .collect();
        let shape = std::iter::once(slots).chain(inputs[0].shape().iter().copied());
        let batch = Tensor::new(shape.collect(), data);
        let origin = format!("batch of {} from {}", indices.len(), set.root.display());
        let start = Instant::now();
        let input = self.data_owner.encrypt(&batch, &origin)?;
        let encrypt = start.elapsed().as_secs_f64();
        let mut runs = Vec::with_capacity(repeat);
        for _ in 0..repeat.max(1) {
            let start = Instant::now();
            let inference =
                self.owner
                    .infer(&self.keys, &input, Path::new(&origin), &mut |_| {})?;
            runs.push((start.elapsed().as_secs_f64(), inference));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (seconds, inference) = runs.swap_remove(runs.len() / 2);
        let start = Instant::now();
        let outputs = self
            .data_owner
            .decrypt(&inference.output, Path::new(&origin))?;
        let decrypt = start.elapsed().as_secs_f64();
        let share = |bytes: usize| bytes.div_ceil(slots);
        let results = indices
            .iter()
            .zip(&inputs)
            .enumerate()
            .map(|(b, (&index, x))| {
                let y: Vec<Tensor> = outputs.iter().map(|t| batch_item(t, b)).collect();
                let plain = self.source.graph.run(std::slice::from_ref(x))?;
                let simulated = self.owner.simulate(x, None)?;
                Ok(ItemResult {
                    seconds: seconds / slots as f64,
                    input_bytes: share(input.len()),
                    output_bytes: share(inference.output.len()),
                    stages: inference
                        .stages
                        .iter()
                        .map(|t| (t.name.clone(), t.seconds / slots as f64))
                        .collect(),
                    ..compare(set, index, &plain, &simulated, &y)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let timing = BatchTiming {
            inputs: slots,
            encrypt,
            inference: seconds,
            decrypt,
            upload_bytes: input.len(),
        };
        Ok((results, timing))
    }

    /// Item `index` of `set`: plaintext, simulated and encrypted. The set's
    /// labels score the model's first output; the outputs compared are all.
    pub fn measure(&self, set: &LabelledSet, index: usize) -> Result<ItemResult> {
        let sample = &set.inputs[index];
        let x =
            heman_backend::input::fit_input(&sample.tensor, self.data_owner.input(), &sample.name)?;
        let plain = self.source.graph.run(std::slice::from_ref(&x))?;
        let simulated = self.owner.simulate(&x, None)?;
        let input = self.data_owner.encrypt(&x, &sample.name)?;
        let start = Instant::now();
        let inference =
            self.owner
                .infer(&self.keys, &input, Path::new(&sample.name), &mut |_| {})?;
        let seconds = start.elapsed().as_secs_f64();
        let y = self
            .data_owner
            .decrypt(&inference.output, Path::new(&sample.name))?;
        Ok(ItemResult {
            seconds,
            input_bytes: input.len(),
            output_bytes: inference.output.len(),
            stages: inference
                .stages
                .into_iter()
                .map(|t| (t.name, t.seconds))
                .collect(),
            ..compare(set, index, &plain, &simulated, &y)
        })
    }
}

/// Item `index` of `set` scored: its plaintext, simulated and decrypted
/// outputs compared (no timing or sizes yet).
fn compare(
    set: &LabelledSet,
    index: usize,
    plain: &[Tensor],
    simulated: &[Tensor],
    y: &[Tensor],
) -> ItemResult {
    ItemResult {
        item: set.inputs[index].name.clone(),
        plaintext: set.is_correct(index, &plain[0]),
        simulated: set.is_correct(index, &simulated[0]),
        encrypted: set.is_correct(index, &y[0]),
        same_as_plaintext: set.same_decision(index, &y[0], &plain[0]),
        same_as_simulated: set.same_decision(index, &y[0], &simulated[0]),
        same_output: y == simulated,
        deviation: deviation(y, simulated),
        non_finite: y
            .iter()
            .chain(simulated)
            .any(|t| t.data().iter().any(|v| !v.is_finite())),
        seconds: 0.0,
        input_bytes: 0,
        output_bytes: 0,
        stages: Vec::new(),
    }
}

/// Input `b`'s tensor of a batched output (`[B, ...]`), with the batch axis
/// left as an extent of 1.
fn batch_item(batched: &Tensor, b: usize) -> Tensor {
    let inner: Vec<usize> = batched.shape()[1..].to_vec();
    let size: usize = inner.iter().product();
    let shape = std::iter::once(1).chain(inner).collect();
    Tensor::new(shape, batched.data()[b * size..(b + 1) * size].to_vec())
}

/// The largest elementwise difference of two sets of outputs, over the
/// elements both hold as finite numbers (the others are counted apart:
/// [`ItemResult::non_finite`]).
fn deviation(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(a, b)| a.data().iter().zip(b.data()))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NaN output is counted apart, not read as no deviation at all
    /// (`f64::max` drops NaN, which made two broken ResNet-20 outputs read
    /// as a deviation of 0).
    #[test]
    fn outputs_that_are_not_finite_are_counted_not_hidden() {
        let got = [Tensor::new(vec![3], vec![1.0, f64::NAN, 2.5])];
        let want = [Tensor::new(vec![3], vec![1.5, 0.0, 2.0])];
        assert_eq!(deviation(&got, &want), 0.5);
        let mut item: ItemResult = serde_json::from_str(
            r#"{"item":"a","plaintext":true,"simulated":true,"encrypted":true,"same_as_plaintext":true,"same_as_simulated":true,"same_output":false,"deviation":0.5,"seconds":1.0,"input_bytes":1,"output_bytes":1,"stages":[]}"#,
        )
        .unwrap();
        assert!(
            !item.non_finite,
            "results written before the field read as finite"
        );
        item.non_finite = true;
        let summary = Summary::of(&[item]);
        assert_eq!((summary.non_finite, summary.max_deviation), (1, 0.5));
    }
}
