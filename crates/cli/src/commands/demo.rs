//! `heman demo`: the whole two-party flow on the repository's example.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use heman_compiler::flooding::FloodingTarget;
use heman_model::io::dataset::LabelledSet;
use heman_model::io::npy::{read_npy, write_npy, NpyDtype};
use heman_model::load_onnx;

use crate::workflow::{self, file_size, human, EVAL_KEYS, KEYPARAMS, SECRET_KEY};

/// Run keyparams, keygen, encrypt, inference and decrypt on the bundled digits example.
#[derive(Args)]
pub struct DemoArgs {
    /// How many test digits to classify encrypted.
    #[arg(short, long, default_value_t = 20)]
    count: usize,
    /// Keep the files here (default: a temporary directory, removed afterwards).
    #[arg(long)]
    workdir: Option<PathBuf>,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let example = workflow::example_dir();
    let model = example.join("digits_square.onnx");
    let temporary = args.workdir.is_none();
    let work = args
        .workdir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("heman-demo-{}", std::process::id())));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let (owner, data) = (work.join("model-owner"), work.join("data-owner"));
    std::fs::create_dir_all(&owner)?;
    std::fs::create_dir_all(&data)?;
    println!("model: {} (x*x CNN, 8x8 digits)", model.display());

    let t = Instant::now();
    let kp_path = data.join(KEYPARAMS);
    let compiled = owner.join("digits_square.heman");
    let compiled_model = workflow::keyparams(
        &model,
        &example.join("calibration.npz"),
        FloodingTarget::NoiseBound,
        &kp_path,
        &compiled,
    )?;
    let kp = &compiled_model.model.keyparams;
    println!(
        "1. keyparams   {:>8.3} s  N = 2^{}, depth {}, scale 2^{}, log2(QP) {:.0}/{}, {} rotation keys, output flooding sigma 2^{:.1}; model {}",
        t.elapsed().as_secs_f64(),
        kp.log_n,
        kp.depth,
        kp.log_scale,
        kp.log_qp,
        kp.max_log_qp,
        kp.rotation_steps.len(),
        kp.output_flooding.sigma_log2,
        human(file_size(&compiled))
    );

    let t = Instant::now();
    let keys = data.join("keys");
    workflow::keygen(&kp_path, &keys)?;
    println!(
        "2. keygen      {:>8.3} s  eval.keys {}, secret.key {}",
        t.elapsed().as_secs_f64(),
        human(file_size(&keys.join(EVAL_KEYS))),
        human(file_size(&keys.join(SECRET_KEY)))
    );

    let set = LabelledSet::load(&example.join("test"), Some(args.count))?;
    let graph = load_onnx(&model)?;
    let (mut agree, mut correct) = (0, 0);
    let (mut t_enc, mut t_inf, mut t_dec) = (0.0, 0.0, 0.0);
    let mut sizes = (0, 0);
    for (index, sample) in set.inputs.iter().enumerate() {
        let input = data.join("input.npy");
        write_npy(&input, &sample.tensor, NpyDtype::F64)?;
        let (enc, out_enc, out) = (
            data.join("input.enc"),
            data.join("output.enc"),
            data.join("output.npy"),
        );
        let t = Instant::now();
        workflow::encrypt(&keys, &input, &enc)?;
        t_enc += t.elapsed().as_secs_f64();
        let t = Instant::now();
        workflow::inference(&compiled, &keys.join(EVAL_KEYS), &enc, &out_enc)?;
        t_inf += t.elapsed().as_secs_f64();
        let t = Instant::now();
        workflow::decrypt(&keys, &out_enc, &out)?;
        t_dec += t.elapsed().as_secs_f64();
        sizes = (file_size(&enc), file_size(&out_enc));
        let decrypted = read_npy(&out)?;
        let plain = graph.run(std::slice::from_ref(&sample.tensor))?.remove(0);
        agree += (decrypted.argmax() == plain.argmax()) as usize;
        correct += set.is_correct(index, &decrypted) as usize;
    }
    let n = set.inputs.len().max(1) as f64;
    println!(
        "3. encrypt     {:>8.3} s  per image, input.enc {}",
        t_enc / n,
        human(sizes.0)
    );
    println!(
        "4. inference   {:>8.3} s  per image, output.enc {}",
        t_inf / n,
        human(sizes.1)
    );
    println!("5. decrypt     {:>8.3} s  per image", t_dec / n);
    println!(
        "encrypted accuracy {correct}/{} ({:.1}%), same prediction as plaintext on {agree}/{}",
        set.inputs.len(),
        100.0 * correct as f64 / n,
        set.inputs.len()
    );
    if temporary {
        std::fs::remove_dir_all(&work).ok();
    } else {
        println!("files kept in {}", work.display());
    }
    Ok(())
}
