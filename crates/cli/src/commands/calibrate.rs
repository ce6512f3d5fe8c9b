//! `heman calibrate`: per-value ranges of a model over a calibration set.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges};

use crate::progress;

/// Measure the range of every intermediate value over a calibration set.
#[derive(Args)]
pub struct CalibrateArgs {
    /// The ONNX model.
    #[arg(short, long)]
    model: PathBuf,
    /// Calibration inputs: a .zip or .npz of .npy arrays, a directory of .npy, or one .npy
    /// of samples stacked along its first axis.
    #[arg(short, long)]
    calibration: PathBuf,
    /// Write the ranges as JSON here.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    let graph = load_onnx(&args.model)?;
    let samples = load_arrays(&args.calibration)?;
    let bar = progress::bar(samples.len(), "calibrating");
    let ranges = CalibrationRanges::measure_with_progress(&graph, &samples, |_| bar.inc(1))
        .with_context(|| format!("calibration set {}", args.calibration.display()))?;
    bar.finish_and_clear();
    println!(
        "{} samples from {}",
        ranges.samples,
        args.calibration.display()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:>12}",
        "value", "min", "max", "mean", "std"
    );
    let ordered = graph
        .inputs
        .iter()
        .chain(graph.nodes.iter().map(|n| &n.output))
        .map(|&id| &graph.value(id).name);
    for name in ordered {
        if let Some(r) = ranges.get(name) {
            println!(
                "{name:<28} {:>12.4} {:>12.4} {:>12.4} {:>12.4}",
                r.min, r.max, r.mean, r.std
            );
        }
    }
    if let Some(path) = args.output {
        std::fs::write(&path, serde_json::to_vec_pretty(&ranges)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("ranges written to {}", path.display());
    }
    Ok(())
}
