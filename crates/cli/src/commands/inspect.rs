//! `heman inspect`: what a file holds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use heman_artifacts::container::hex;
use heman_artifacts::tfhe::{TfheCompiledModel, TfheKeyParams};
use heman_artifacts::{CompiledModel, Container, KeyParams, Kind};
use heman_compiler::PlanStage;
use heman_model::io::npy::read_npy;
use heman_model::load_onnx;

use crate::tfhe_workflow;
use crate::workflow::human;

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
            if heman_artifacts::tfhe::keyparams_backend(path)? == "tfhe" {
                let kp = TfheKeyParams::read(path)?;
                for line in tfhe_workflow::describe(&kp) {
                    println!("{line}");
                }
                return Ok(());
            }
            let kp = KeyParams::read(path)?;
            print_keyparams(&kp);
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

fn print_keyparams(kp: &KeyParams) {
    println!(
        "keyparams ({} backend, format version {})",
        kp.backend, kp.version
    );
    println!("  security: {}", kp.security);
    println!(
        "  N = 2^{} ({} slots), log2(QP) = {:.1} of {} allowed, scale 2^{}, depth {}",
        kp.log_n, kp.slots, kp.log_qp, kp.max_log_qp, kp.log_scale, kp.depth
    );
    println!("  q: {:?}", kp.q);
    println!("  p: {:?}", kp.p);
    println!(
        "  rotation steps ({}): {:?}",
        kp.rotation_steps.len(),
        kp.rotation_steps
    );
    for (role, spec) in [("input", &kp.input), ("output", &kp.output)] {
        println!(
            "  {role} '{}' {:?} in {} ciphertext(s){}",
            spec.name,
            spec.shape,
            spec.layout.ciphertexts,
            spec.calibrated_range
                .map_or(String::new(), |(lo, hi)| format!(
                    ", calibrated range [{lo:.4}, {hi:.4}]"
                ))
        );
    }
    println!("  parameter fingerprint {}", &kp.params_fingerprint[..16]);
    println!("  model fingerprint {}", &kp.model_fingerprint[..16]);
}

fn inspect_container(path: &Path) -> Result<()> {
    let container = Container::read(path)?;
    println!(
        "{}: heman {} (format version {}), {} payload, parameters {}",
        path.display(),
        container.kind.name(),
        container.version,
        human(container.payload.len() as u64),
        hex(&container.fingerprint[..8])
    );
    if container.kind == Kind::TfheCompiledModel {
        let model = TfheCompiledModel::read(path)?;
        for line in tfhe_workflow::describe(&model.keyparams) {
            println!("{line}");
        }
        for (index, stage) in model.plan.stages.iter().enumerate() {
            println!("  stage {index}: {stage}");
        }
        for line in
            tfhe_workflow::describe_reads(&heman_compiler::tfhe::BudgetReport::of(&model.plan))
        {
            println!("{line}");
        }
    }
    if container.kind == Kind::CompiledModel {
        let model = CompiledModel::read(path)?;
        print_keyparams(&model.keyparams);
        for (index, stage) in model.plan.stages.iter().enumerate() {
            match stage {
                PlanStage::Linear(l) => println!("  stage {index}: linear {l}"),
                PlanStage::Square => println!("  stage {index}: square"),
                PlanStage::Activation {
                    function,
                    interval,
                    polynomial,
                } => println!(
                    "  stage {index}: {} on [{:.3}, {:.3}], depth {}",
                    heman_compiler::approximation::describe(function, polynomial),
                    interval.0,
                    interval.1,
                    polynomial.depth()
                ),
            }
        }
    }
    Ok(())
}
