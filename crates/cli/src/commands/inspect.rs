//! `heman inspect`: what a file holds.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use heman_model::io::npy::read_npy;
use heman_model::load_onnx;

/// Show what a file holds (ONNX model, .npy array).
#[derive(Args)]
pub struct InspectArgs {
    file: PathBuf,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let path = &args.file;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    match extension {
        "onnx" => {
            let graph = load_onnx(path)?;
            println!(
                "{}: ONNX model, {} parameters",
                path.display(),
                graph.parameter_count()
            );
            let counts: Vec<String> = graph
                .op_counts()
                .iter()
                .map(|(op, n)| format!("{op} x{n}"))
                .collect();
            println!("operators (after simplification): {}", counts.join(", "));
            print!("{graph}");
        }
        "npy" => {
            let tensor = read_npy(path)?;
            let (min, max) = tensor
                .data()
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            println!(
                "{}: array of shape {:?}, min {min}, max {max}",
                path.display(),
                tensor.shape()
            );
        }
        _ => bail!(
            "{}: unknown kind of file (expected .onnx or .npy)",
            path.display()
        ),
    }
    Ok(())
}
