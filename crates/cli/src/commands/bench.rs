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
        for index in 0..set.inputs.len() {
            measured.push(log.result_of(&set.inputs[index].name, || session.measure(&set, index))?);
            bar.inc(1);
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
        Ok(())
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
            item: sample.name.clone(),
            plaintext: set.is_correct(index, &plain[0]),
            simulated: set.is_correct(index, &simulated[0]),
            encrypted: set.is_correct(index, &y[0]),
            same_as_plaintext: set.same_decision(index, &y[0], &plain[0]),
            same_as_simulated: set.same_decision(index, &y[0], &simulated[0]),
            same_output: y == simulated,
            deviation: deviation(&y, &simulated),
            non_finite: y
                .iter()
                .chain(&simulated)
                .any(|t| t.data().iter().any(|v| !v.is_finite())),
            seconds,
            input_bytes: input.len(),
            output_bytes: inference.output.len(),
            stages: inference
                .stages
                .into_iter()
                .map(|t| (t.name, t.seconds))
                .collect(),
        })
    }
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
