//! `heman inspect`: what a file holds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use heman_artifacts::container::hex;
use heman_artifacts::{Container, Role};
use heman_backend::registry;
use heman_model::io::npy::read_npy;
use heman_model::load_onnx;

use crate::workflow::{human, read};

/// Show what a file holds: ONNX model, .npy array, keyparams.json, or any
/// heman file (compiled model, keys, ciphertexts).
#[derive(Args)]
pub struct InspectArgs {
    file: PathBuf,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let path = &args.file;
    let head = {
        use std::io::Read;
        let mut buf = [0u8; 5];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut buf))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        buf[..n].to_vec()
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if head == b"HEMAN" {
        return inspect_container(path);
    }
    match extension {
        "onnx" => inspect_onnx(path),
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
            Ok(())
        }
        "json" => {
            let text = read(path)?;
            let backend = registry::for_keyparams(&text, path)?;
            for line in backend.describe_keyparams(&text, path)? {
                println!("{line}");
            }
            Ok(())
        }
        _ => bail!(
            "{}: unknown kind of file (expected .onnx, .npy, keyparams .json or a heman file)",
            path.display()
        ),
    }
}

fn inspect_onnx(path: &Path) -> Result<()> {
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
    Ok(())
}

fn inspect_container(path: &Path) -> Result<()> {
    let bytes = read(path)?;
    let container = Container::from_bytes(&bytes, path)?;
    println!(
        "{}: heman {} (format version {}), {} payload, parameters {}",
        path.display(),
        registry::kind_name(container.kind),
        container.version,
        human(container.payload.len() as u64),
        hex(&container.fingerprint[..8])
    );
    if container.kind.role == Role::CompiledModel {
        let backend = registry::by_kind(container.kind, path)?;
        let model = backend.load_model(&bytes, path, Default::default())?;
        for line in model.describe() {
            println!("{line}");
        }
    }
    Ok(())
}
